/* tokenizer_wordpiece: BERT uncased, as Hugging Face tokenizers' BertNormalizer
 * (clean text, pad CJK ideographs, NFD and drop Mn, lowercase), BertPreTokenizer
 * (split on whitespace, isolate punctuation) and WordPiece (greedy longest
 * match first, "##" continuations, over 100 chars -> [UNK]), streamed one code
 * point at a time through a bounded word buffer. */
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_impl.h"
#include "utf8.h"
#include "vocab.h"

bool tokenizer_wordpiece_is_whitespace(int32_t cp)
{
    /* Rust char::is_whitespace (the White_Space property). */
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

bool tokenizer_wordpiece_is_control(int32_t cp)
{
    /* Cc, Cf, Cs and Co, except tab, LF and CR. Unassigned code points (Cn)
     * are kept as ordinary characters, as Hugging Face tokenizers does
     * (Python's BertTokenizer would drop them). */
    if (cp == '\t' || cp == '\n' || cp == '\r')
        return false;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        return true;
    default:
        return false;
    }
}

bool tokenizer_wordpiece_is_punct(int32_t cp)
{
    /* ASCII punctuation (which includes symbols such as $ + < = > ^ ` | ~)
     * or any P* category. */
    if (cp < 0x80)
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
               (cp >= 123 && cp <= 126);
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return true;
    default:
        return false;
    }
}

bool tokenizer_wordpiece_is_cjk(int32_t cp)
{
    /* BERT's _is_chinese_char: the CJK Unified Ideographs blocks. Extension E
     * starts at 0x2B920 as in Hugging Face tokenizers (Python's BertTokenizer
     * has 0x2B820, so U+2B820..2B91F are not padded here). */
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* The word being collected: its first TOKENIZER_WORDPIECE_MAX_CHARS
 * characters, their byte offsets, and the total character count. */
typedef struct {
    const tokenizer *t;
    tokenizer_sink *out;
    size_t n_chars;
    size_t n_bytes;
    size_t offset[TOKENIZER_WORDPIECE_MAX_CHARS + 1];
    char bytes[4 * TOKENIZER_WORDPIECE_MAX_CHARS];
} word;

/* WordPiece on the collected word. Returns false once the sink is full. */
static bool word_flush(word *w)
{
    if (w->n_chars == 0)
        return true;
    const tokenizer *t = w->t;
    size_t n_chars = w->n_chars;
    w->n_chars = 0;
    w->n_bytes = 0;
    if (n_chars > TOKENIZER_WORDPIECE_MAX_CHARS)
        return tokenizer_sink_push(w->out, t->unk_id);

    int32_t pieces[TOKENIZER_WORDPIECE_MAX_CHARS];
    size_t n_pieces = 0;
    char cand[2 + sizeof w->bytes];
    cand[0] = '#';
    cand[1] = '#';
    size_t start = 0;
    while (start < n_chars) {
        int32_t id = -1;
        size_t end = n_chars;
        for (; end > start; end--) {
            size_t b0 = w->offset[start], len = w->offset[end] - b0;
            if (start == 0) {
                id = vocab_lookup(t->v, w->bytes, len);
            } else {
                memcpy(cand + 2, w->bytes + b0, len);
                id = vocab_lookup(t->v, cand, len + 2);
            }
            if (id >= 0)
                break;
        }
        if (id < 0) /* no piece matches here: the whole word is [UNK] */
            return tokenizer_sink_push(w->out, t->unk_id);
        pieces[n_pieces++] = id;
        start = end;
    }
    for (size_t k = 0; k < n_pieces; k++)
        if (!tokenizer_sink_push(w->out, pieces[k]))
            return false;
    return true;
}

static void word_append(word *w, int32_t cp)
{
    if (w->n_chars < TOKENIZER_WORDPIECE_MAX_CHARS) {
        w->offset[w->n_chars] = w->n_bytes;
        w->n_bytes += utf8_encode(cp, w->bytes + w->n_bytes);
        w->offset[w->n_chars + 1] = w->n_bytes;
    }
    w->n_chars++; /* keeps counting past the limit: the word is then [UNK] */
}

/* Pre-tokenizes one normalized code point. Returns false once the sink is full. */
static bool word_feed(word *w, int32_t cp)
{
    if (tokenizer_wordpiece_is_whitespace(cp))
        return word_flush(w);
    if (tokenizer_wordpiece_is_punct(cp)) {
        if (!word_flush(w))
            return false;
        word_append(w, cp);
        return word_flush(w);
    }
    word_append(w, cp);
    return true;
}

size_t tokenizer_wordpiece_normalize(int32_t cp, bool lowercase,
                                     int32_t out[TOKENIZER_WORDPIECE_MAX_NORM], bool *cjk)
{
    *cjk = false;
    if (cp == 0 || cp == 0xFFFD || tokenizer_wordpiece_is_control(cp))
        return 0;
    if (tokenizer_wordpiece_is_whitespace(cp)) {
        out[0] = ' ';
        return 1;
    }
    *cjk = tokenizer_wordpiece_is_cjk(cp);
    if (!lowercase) {
        out[0] = cp;
        return 1;
    }
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    /* Strip accents (canonical decomposition, drop Mn), then lowercase. */
    utf8proc_int32_t dec[TOKENIZER_WORDPIECE_MAX_NORM];
    utf8proc_ssize_t n_dec =
        utf8proc_decompose_char(cp, dec, TOKENIZER_WORDPIECE_MAX_NORM, UTF8PROC_DECOMPOSE, NULL);
    if (n_dec < 1 || n_dec > TOKENIZER_WORDPIECE_MAX_NORM) { /* defensive: never happens */
        dec[0] = cp;
        n_dec = 1;
    }
    size_t n = 0;
    for (utf8proc_ssize_t k = 0; k < n_dec; k++)
        if (utf8proc_category(dec[k]) != UTF8PROC_CATEGORY_MN)
            out[n++] = utf8proc_tolower(dec[k]);
    return n;
}

/* Normalizes one code point of the text and feeds the result on. Returns
 * false once the sink is full. */
static bool normalize_feed(word *w, int32_t cp)
{
    int32_t norm[TOKENIZER_WORDPIECE_MAX_NORM];
    bool cjk;
    size_t n = tokenizer_wordpiece_normalize(cp, w->t->lowercase, norm, &cjk);
    if (cjk && !word_feed(w, ' '))
        return false;
    for (size_t k = 0; k < n; k++)
        if (!word_feed(w, norm[k]))
            return false;
    if (cjk && !word_feed(w, ' '))
        return false;
    return true;
}

void tokenizer_wordpiece_encode(const tokenizer *t, const unsigned char *text, size_t n,
                                tokenizer_sink *out)
{
    word w = {.t = t, .out = out};
    size_t i = 0;
    while (i < n) {
        int32_t cp;
        i += utf8_decode_valid(text + i, &cp);
        if (!normalize_feed(&w, cp))
            return;
    }
    (void)word_flush(&w);
}
