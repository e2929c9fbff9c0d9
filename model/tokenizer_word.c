/* tokenizer_word: the official Fastformer `word` pipeline, Python's
 * re.findall(r"\w+|[^\w\s]+", text.lower()), streamed one code point at a
 * time into a bounded piece buffer: the pieces are the maximal runs of \w
 * characters and the maximal runs of characters that are neither \w nor \s. */
#include <string.h>
#include <utf8proc.h>

#include "fnv1a.h"
#include "tokenizer_impl.h"
#include "utf8.h"
#include "vocab.h"

bool tokenizer_word_is_space(int32_t cp)
{
    /* Python's Py_UNICODE_ISSPACE: bidi class WS, B or S, or category Zs. */
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool tokenizer_word_is_word(int32_t cp)
{
    /* str.isalnum() is exactly the L* and N* categories; '_' is added by \w.
     * Combining marks (M*) are not \w. */
    if (cp == '_')
        return true;
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return true;
    default:
        return false;
    }
}

/* Unicode "Cased" (Lu, Ll, Lt, Other_Lowercase, Other_Uppercase), from
 * utf8proc: a cased letter category or a case mapping covers all but the
 * Other_* characters listed here (the rest of those are case-ignorable, which
 * is checked first). Tested against Python for every code point. */
static bool is_cased(int32_t cp)
{
    if (cp == 0xAA || cp == 0xBA || (cp >= 0x1F130 && cp <= 0x1F149) ||
        (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189))
        return true;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT ||
           utf8proc_tolower(cp) != cp || utf8proc_toupper(cp) != cp;
}

/* Unicode "Case_Ignorable": Mn, Me, Cf, Lm, Sk, and Word_Break MidLetter,
 * MidNumLet and Single_Quote. */
static bool is_case_ignorable(int32_t cp)
{
    switch (cp) {
    case 0x27:
    case 0x2E:
    case 0x3A:
    case 0xB7:
    case 0x387:
    case 0x55F:
    case 0x5F4:
    case 0x2018:
    case 0x2019:
    case 0x2024:
    case 0x2027:
    case 0xFE13:
    case 0xFE52:
    case 0xFE55:
    case 0xFF07:
    case 0xFF0E:
    case 0xFF1A:
        return true;
    default:
        break;
    }
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME || c == UTF8PROC_CATEGORY_CF ||
           c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_SK;
}

/* Python's handle_capital_sigma: U+03A3 lowers to final sigma U+03C2 after
 * a cased letter (skipping case-ignorables) and when no cased letter follows
 * (skipping case-ignorables); otherwise to U+03C3. */
static bool is_final_sigma(const unsigned char *text, size_t n, size_t i)
{
    int32_t cp = 0;
    size_t j = i;
    bool found = false;
    while (j > 0) {
        do /* step back to the previous lead byte */
            j--;
        while (j > 0 && (text[j] & 0xC0) == 0x80);
        (void)utf8_decode_valid(text + j, &cp);
        if (!is_case_ignorable(cp)) {
            found = true;
            break;
        }
    }
    if (!found || !is_cased(cp))
        return false;
    j = i + 2; /* U+03A3 is two bytes */
    while (j < n) {
        j += utf8_decode_valid(text + j, &cp);
        if (!is_case_ignorable(cp))
            return !is_cased(cp);
    }
    return true;
}

size_t tokenizer_word_lower(const unsigned char *text, size_t n, size_t i, int32_t cp,
                            int32_t out[2])
{
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    if (cp == 0x130) { /* the one unconditional multi-character lowercase mapping */
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    if (cp == 0x3A3) {
        out[0] = is_final_sigma(text, n, i) ? 0x3C2 : 0x3C3;
        return 1;
    }
    out[0] = utf8proc_tolower(cp);
    return 1;
}

enum piece_class { PIECE_NONE, PIECE_WORD, PIECE_OTHER };

typedef struct {
    const tokenizer *t;
    tokenizer_sink *out;
    enum piece_class cls;
    bool too_long;
    size_t n_bytes;
    char bytes[TOKENIZER_WORD_PIECE_BYTES];
} piece;

/* Emits the current piece, if any. Returns false once the sink is full. */
static bool piece_flush(piece *p)
{
    if (p->cls == PIECE_NONE)
        return true;
    int32_t id = p->too_long ? -1 : vocab_lookup(p->t->v, p->bytes, p->n_bytes);
    p->cls = PIECE_NONE;
    p->too_long = false;
    p->n_bytes = 0;
    return tokenizer_sink_push(p->out, id < 0 ? p->t->unk_id : id);
}

/* Feeds one (lowercased) code point. Returns false once the sink is full. */
static bool piece_feed(piece *p, int32_t cp)
{
    if (tokenizer_word_is_space(cp))
        return piece_flush(p);
    enum piece_class cls = tokenizer_word_is_word(cp) ? PIECE_WORD : PIECE_OTHER;
    if (cls != p->cls) {
        if (!piece_flush(p))
            return false;
        p->cls = cls;
    }
    char enc[4];
    size_t len = utf8_encode(cp, enc);
    if (p->n_bytes + len > sizeof p->bytes) {
        p->too_long = true;
    } else if (!p->too_long) {
        memcpy(p->bytes + p->n_bytes, enc, len);
        p->n_bytes += len;
    }
    return true;
}

/* ---- vocabulary hints ---------------------------------------------------------- */

/* Most pieces of one text hinted to the vocabulary (see hint_vocab). */
#define WORD_HINT_PIECES 256

static bool ascii_is_word(unsigned char c)
{
    return c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static bool ascii_is_space(unsigned char c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
}

/* Pieces are runs of \w, or of neither \w nor \s, as in the real pass; a
 * piece with a byte >= 0x80 is skipped, since this is only a cheap first look
 * for vocab_prefetch and the real pass (piece_feed) decides every piece. */
size_t tokenizer_word_ascii_hashes(const unsigned char *text, size_t n, bool lower,
                                   uint64_t *hashes, size_t cap)
{
    size_t n_hashes = 0, i = 0;
    while (i < n && n_hashes < cap) {
        if (ascii_is_space(text[i])) {
            i++;
            continue;
        }
        const bool word = ascii_is_word(text[i]);
        bool ascii = true;
        uint64_t h = FNV1A_64_OFFSET;
        for (; i < n; i++) {
            unsigned char c = text[i];
            if (c >= 0x80) {
                ascii = false;
                continue;
            }
            if (ascii_is_space(c) || ascii_is_word(c) != word)
                break;
            unsigned char b = lower && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
            h = fnv1a_64_add(h, &b, 1);
        }
        if (ascii)
            hashes[n_hashes++] = h;
    }
    return n_hashes;
}

/* Starts loading the vocabulary entries of the text's first pieces, all at
 * once, before they are looked up one by one: each lookup otherwise waits
 * for two cache misses in turn (its slot, then its text), which made up a
 * third of a request's parsing CPU in the daemon (perf: 64 words, ~30 us). */
static void hint_vocab(const tokenizer *t, const unsigned char *text, size_t n,
                       const tokenizer_sink *out)
{
    uint64_t hashes[WORD_HINT_PIECES];
    size_t room = out->max_ids - out->n_ids;
    size_t n_hashes = tokenizer_word_ascii_hashes(
        text, n, t->lowercase, hashes, room < WORD_HINT_PIECES ? room : WORD_HINT_PIECES);
    for (size_t k = 0; k < n_hashes; k++)
        vocab_prefetch(t->v, hashes[k], 0);
    for (size_t k = 0; k < n_hashes; k++)
        vocab_prefetch(t->v, hashes[k], 1);
}

void tokenizer_word_encode(const tokenizer *t, const unsigned char *text, size_t n,
                           tokenizer_sink *out)
{
    hint_vocab(t, text, n, out);
    piece p = {.t = t, .out = out, .cls = PIECE_NONE};
    size_t i = 0;
    while (i < n) {
        int32_t cp, low[2];
        size_t len = utf8_decode_valid(text + i, &cp);
        size_t n_low = 1;
        low[0] = cp;
        if (t->lowercase)
            n_low = tokenizer_word_lower(text, n, i, cp, low);
        for (size_t k = 0; k < n_low; k++)
            if (!piece_feed(&p, low[k]))
                return;
        i += len;
    }
    (void)piece_flush(&p);
}
