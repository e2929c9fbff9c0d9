/* test_tokenizer: both pipelines against ids from independent implementations:
 * `word` against Python's re/str.lower() (tools/make_tokenizer_fixtures.py),
 * `wordpiece` against Hugging Face tokenizers (tools/wordpiece_reference.mjs),
 * the word character classes against Python over every code point, plus
 * invalid UTF-8, truncation, argument errors and concurrent use. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <utf8proc.h>

#include "fnv1a.h"
#include "tokenizer.h"
#include "tokenizer_impl.h"
#include "utf8.h"
#include "vocab.h"

#define FIXTURES "tests/fixtures/tokenizer/"

/* ---- helpers ------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    buf[size] = '\0';
    *len = (size_t)size;
    return buf;
}

static vocab *load_vocab(const char *path)
{
    size_t len;
    char *buf = read_file(path, &len);
    vocab *v = NULL;
    char err[256];
    if (vocab_parse(buf, len, &v, err, sizeof err) != 0)
        fail_msg("%s: %s", path, err);
    free(buf);
    return v;
}

static json_t *load_json(const char *path)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!doc)
        fail_msg("%s:%d: %s (run from the repository root)", path, jerr.line, jerr.text);
    return doc;
}

static tokenizer *make(tokenizer_kind kind, bool lowercase, const vocab *v)
{
    tokenizer *t = NULL;
    char err[256];
    if (tokenizer_new(kind, lowercase, v, &t, err, sizeof err) != 0)
        fail_msg("tokenizer_new: %s", err);
    return t;
}

/* Encodes a copy of the text in a block of exactly its length (not
 * NUL-terminated), so ASan catches any read past the end. */
static int encode_exact(const tokenizer *t, const char *text, size_t len, int32_t *ids,
                        size_t max_ids, size_t *n_ids, bool *truncated, char *err, size_t cap)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, text, len);
    int rc = tokenizer_encode(t, len ? copy : NULL, len, ids, max_ids, n_ids, truncated, err, cap);
    free(copy);
    return rc;
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s (%zu):", what, n);
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 64 ? " ..." : "");
}

/* Runs one encode and compares with the expected ids and truncation flag. */
static void check_encode(const tokenizer *t, const char *name, const char *text, size_t len,
                         size_t max_ids, json_t *expected, size_t n_expected, bool exp_trunc)
{
    int32_t *ids = malloc((max_ids ? max_ids : 1) * sizeof *ids);
    int32_t *want = malloc((n_expected ? n_expected : 1) * sizeof *want);
    assert_non_null(ids);
    assert_non_null(want);
    for (size_t i = 0; i < n_expected; i++)
        want[i] = (int32_t)json_integer_value(json_array_get(expected, i));
    size_t n = 12345;
    bool truncated = !exp_trunc;
    char err[128] = "";
    if (encode_exact(t, text, len, max_ids ? ids : NULL, max_ids, &n, &truncated, err,
                     sizeof err) != 0)
        fail_msg("%s: encode failed: %s", name, err);
    if (n != n_expected || truncated != exp_trunc ||
        (n && memcmp(ids, want, n * sizeof *ids) != 0)) {
        print_ids("got", ids, n);
        print_ids("expected", want, n_expected);
        fail_msg("%s (max_ids %zu): got %zu ids truncated=%d, expected %zu ids truncated=%d", name,
                 max_ids, n, truncated, n_expected, exp_trunc);
    }
    free(ids);
    free(want);
}

/* ---- API ---------------------------------------------------------------- */

static void test_kind_names(void **state)
{
    (void)state;
    tokenizer_kind k;
    assert_int_equal(tokenizer_kind_parse("word", &k), 0);
    assert_int_equal(k, TOKENIZER_WORD);
    assert_int_equal(tokenizer_kind_parse("wordpiece", &k), 0);
    assert_int_equal(k, TOKENIZER_WORDPIECE);
    assert_int_equal(tokenizer_kind_parse("bpe", &k), -1);
    assert_int_equal(tokenizer_kind_parse("", &k), -1);
    assert_int_equal(tokenizer_kind_parse("Word", &k), -1);
    assert_string_equal(tokenizer_kind_name(TOKENIZER_WORD), "word");
    assert_string_equal(tokenizer_kind_name(TOKENIZER_WORDPIECE), "wordpiece");
}

static void test_new_without_unk(void **state)
{
    (void)state;
    static const char text[] = "[PAD]\nhello\n[unk]\n";
    vocab *v = NULL;
    char err[256] = "";
    assert_int_equal(vocab_parse(text, sizeof text - 1, &v, err, sizeof err), 0);
    tokenizer *t = (tokenizer *)1;
    assert_int_equal(tokenizer_new(TOKENIZER_WORD, true, v, &t, err, sizeof err), -1);
    assert_null(t);
    assert_non_null(strstr(err, "[UNK]"));
    assert_int_equal(tokenizer_new(TOKENIZER_WORDPIECE, true, v, &t, NULL, 0), -1);
    vocab_free(v);
    tokenizer_free(NULL);
}

/* ---- word --------------------------------------------------------------- */

static void test_word_cases(void **state)
{
    (void)state;
    vocab *v = load_vocab(FIXTURES "word-vocab.txt");
    tokenizer *lower = make(TOKENIZER_WORD, true, v), *keep = make(TOKENIZER_WORD, false, v);
    json_t *doc = load_json(FIXTURES "word_cases.json");
    json_t *cases = json_object_get(doc, "cases");
    assert_true(json_array_size(cases) >= 30);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        json_t *text = json_object_get(c, "text");
        json_t *expected = json_object_get(c, "expected_ids");
        check_encode(json_is_true(json_object_get(c, "lowercase")) ? lower : keep,
                     json_string_value(json_object_get(c, "name")), json_string_value(text),
                     json_string_length(text),
                     (size_t)json_integer_value(json_object_get(c, "max_ids")), expected,
                     json_array_size(expected),
                     json_is_true(json_object_get(c, "expected_truncated")));
    }
    json_decref(doc);
    tokenizer_free(lower);
    tokenizer_free(keep);
    vocab_free(v);
}

static bool in_ranges(json_t *ranges, int32_t cp, size_t *cursor)
{
    /* ranges are sorted and code points are visited in order */
    while (*cursor < json_array_size(ranges)) {
        json_t *r = json_array_get(ranges, *cursor);
        if (cp > json_integer_value(json_array_get(r, 1))) {
            (*cursor)++;
            continue;
        }
        return cp >= json_integer_value(json_array_get(r, 0));
    }
    return false;
}

/* \w, \s and str.lower() of every code point that both Python's Unicode
 * database and utf8proc's know (a code point one of them does not know yet is
 * skipped). */
static void test_word_classes_every_code_point(void **state)
{
    (void)state;
    json_t *doc = load_json(FIXTURES "word_unicode.json");
    json_t *assigned = json_object_get(doc, "assigned"), *word = json_object_get(doc, "word");
    json_t *space = json_object_get(doc, "space"), *lower = json_object_get(doc, "lower");
    size_t ca = 0, cw = 0, cs = 0, cl = 0, n_checked = 0, n_bad = 0;
    for (int32_t cp = 0; cp <= 0x10FFFF; cp++) {
        bool is_assigned = in_ranges(assigned, cp, &ca);
        bool py_word = in_ranges(word, cp, &cw), py_space = in_ranges(space, cp, &cs);
        int32_t py_low[3] = {cp, -1, -1};
        size_t n_py_low = 1;
        json_t *entry = json_array_get(lower, cl);
        if (entry && json_integer_value(json_array_get(entry, 0)) == cp) {
            n_py_low = json_array_size(entry) - 1;
            assert_in_range(n_py_low, 1, 2);
            for (size_t k = 0; k < n_py_low; k++)
                py_low[k] = (int32_t)json_integer_value(json_array_get(entry, k + 1));
            cl++;
        }
        if (!is_assigned || utf8proc_category(cp) == UTF8PROC_CATEGORY_CN ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            continue;
        n_checked++;
        char buf[4];
        size_t len = utf8_encode(cp, buf);
        int32_t low[2] = {-1, -1};
        size_t n_low = tokenizer_word_lower((const unsigned char *)buf, len, 0, cp, low);
        bool ok = tokenizer_word_is_word(cp) == py_word &&
                  tokenizer_word_is_space(cp) == py_space && n_low == n_py_low &&
                  low[0] == py_low[0] && (n_low < 2 || low[1] == py_low[1]);
        if (!ok && n_bad++ < 20)
            fprintf(stderr, "  U+%04X: word %d/%d space %d/%d lower %zu:%X/%zu:%X\n", (unsigned)cp,
                    tokenizer_word_is_word(cp), py_word, tokenizer_word_is_space(cp), py_space,
                    n_low, (unsigned)low[0], n_py_low, (unsigned)py_low[0]);
    }
    assert_int_equal(cl, json_array_size(lower));
    assert_true(n_checked > 140000);
    if (n_bad)
        fail_msg("%zu code points differ from Python", n_bad);
    json_decref(doc);
}

/* The final-sigma rule of str.lower(): for every code point c both Unicode
 * databases know, "cΣ", "ΑcΣ" and "ΑΣc" lower Σ as Python does. */
static void test_word_final_sigma_every_code_point(void **state)
{
    (void)state;
    json_t *doc = load_json(FIXTURES "word_unicode.json");
    json_t *assigned = json_object_get(doc, "assigned");
    json_t *after = json_object_get(doc, "sigma_after");
    json_t *after_alpha = json_object_get(doc, "sigma_after_alpha");
    size_t ca = 0, c1 = 0, c2 = 0, n_bad = 0;
    for (int32_t cp = 0; cp <= 0x10FFFF; cp++) {
        bool is_assigned = in_ranges(assigned, cp, &ca);
        bool f1 = in_ranges(after, cp, &c1), f2 = in_ranges(after_alpha, cp, &c2);
        if (!is_assigned || utf8proc_category(cp) == UTF8PROC_CATEGORY_CN ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            continue;
        char c[4];
        size_t len = utf8_encode(cp, c);
        unsigned char text[12];
        int32_t low[2];
        /* c Σ */
        memcpy(text, c, len);
        memcpy(text + len, "\xCE\xA3", 2);
        tokenizer_word_lower(text, len + 2, len, 0x3A3, low);
        bool g1 = low[0] == 0x3C2;
        /* Α c Σ */
        memcpy(text, "\xCE\x91", 2);
        memcpy(text + 2, c, len);
        memcpy(text + 2 + len, "\xCE\xA3", 2);
        tokenizer_word_lower(text, len + 4, len + 2, 0x3A3, low);
        bool g2 = low[0] == 0x3C2;
        /* Α Σ c: final unless c is cased and not case-ignorable (= f1) */
        memcpy(text, "\xCE\x91\xCE\xA3", 4);
        memcpy(text + 4, c, len);
        tokenizer_word_lower(text, len + 4, 2, 0x3A3, low);
        bool g3 = low[0] == 0x3C2;
        if ((g1 != f1 || g2 != f2 || g3 != !f1) && n_bad++ < 20)
            fprintf(stderr, "  U+%04X: cΣ %d/%d ΑcΣ %d/%d ΑΣc %d/%d\n", (unsigned)cp, g1, f1, g2,
                    f2, g3, !f1);
    }
    if (n_bad)
        fail_msg("%zu code points give another final sigma than Python", n_bad);
    json_decref(doc);
}

/* ---- wordpiece ---------------------------------------------------------- */

static void test_wordpiece_cases(void **state)
{
    (void)state;
    vocab *v = load_vocab(FIXTURES "bert-base-uncased-vocab.txt");
    assert_int_equal(vocab_size(v), 30522);
    assert_int_equal(vocab_lookup(v, "[UNK]", 5), 100);
    assert_int_equal(vocab_lookup(v, "the", 3), 1996);
    tokenizer *lower = make(TOKENIZER_WORDPIECE, true, v);
    tokenizer *keep = make(TOKENIZER_WORDPIECE, false, v);
    json_t *doc = load_json(FIXTURES "wordpiece_cases.json");
    json_t *cases = json_object_get(doc, "cases");
    assert_true(json_array_size(cases) >= 30);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *text = json_object_get(c, "text");
        json_t *expected = json_object_get(c, "expected_ids");
        const tokenizer *t = json_is_true(json_object_get(c, "lowercase")) ? lower : keep;
        size_t n = json_array_size(expected);
        const char *s = json_string_value(text);
        size_t len = json_string_length(text);
        check_encode(t, name, s, len, 4096, expected, n, false);
        check_encode(t, name, s, len, n, expected, n, false);
        if (n > 0) /* stopping early keeps the prefix and says so */
            check_encode(t, name, s, len, n - 1, expected, n - 1, true);
        if (n > 2)
            check_encode(t, name, s, len, n / 2, expected, n / 2, true);
    }
    json_decref(doc);
    tokenizer_free(lower);
    tokenizer_free(keep);
    vocab_free(v);
}

/* Code points whose general category changed after Unicode 8.0 (the
 * version of Hugging Face's category tables); we follow utf8proc's newer
 * data. */
static bool category_changed_after_8_0(int32_t cp)
{
    switch (cp) {
    case 0x166D:  /* CANADIAN SYLLABICS CHI SIGN: Po -> So */
    case 0x1734:  /* HANUNOO SIGN PAMUDPOD: Mn -> Mc */
    case 0x1885:  /* MONGOLIAN LETTER ALI GALI BALUDA: Lo -> Mn */
    case 0x1886:  /* MONGOLIAN LETTER ALI GALI THREE BALUDA: Lo -> Mn */
    case 0xA9BD:  /* JAVANESE CONSONANT SIGN KERET: Mc -> Mn */
    case 0x111C9: /* SHARADA SANDHI MARK: Po -> Mn */
        return true;
    default:
        return false;
    }
}

/* BertNormalizer and BertPreTokenizer on every code point alone, against
 * Hugging Face tokenizers; code points assigned after Unicode 8.0 or whose
 * category changed since are left out (see above). */
static void test_wordpiece_every_code_point(void **state)
{
    (void)state;
    json_t *doc = load_json(FIXTURES "wordpiece_unicode.json");
    json_t *dropped = json_object_get(doc, "dropped"), *space = json_object_get(doc, "space");
    json_t *cjk = json_object_get(doc, "cjk"), *punct = json_object_get(doc, "punct");
    json_t *split = json_object_get(doc, "split"), *mapped = json_object_get(doc, "mapped");
    json_t *newer = json_object_get(doc, "assigned_after_unicode_8_0");
    assert_true(json_array_size(newer) > 100);
    size_t cd = 0, cs = 0, cc = 0, cp_ = 0, csp = 0, cm = 0, cn = 0, n_checked = 0, n_bad = 0;
    for (int32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        bool hf_dropped = in_ranges(dropped, cp, &cd), hf_space = in_ranges(space, cp, &cs);
        bool hf_cjk = in_ranges(cjk, cp, &cc), hf_punct = in_ranges(punct, cp, &cp_);
        bool hf_split = in_ranges(split, cp, &csp);
        int32_t hf[TOKENIZER_WORDPIECE_MAX_NORM] = {cp};
        size_t n_hf = hf_dropped ? 0 : 1;
        if (hf_space)
            hf[0] = ' ';
        json_t *entry = json_array_get(mapped, cm);
        if (entry && json_integer_value(json_array_get(entry, 0)) == cp) {
            n_hf = json_array_size(entry) - 1;
            assert_in_range(n_hf, 1, TOKENIZER_WORDPIECE_MAX_NORM);
            for (size_t k = 0; k < n_hf; k++)
                hf[k] = (int32_t)json_integer_value(json_array_get(entry, k + 1));
            cm++;
        }
        if (in_ranges(newer, cp, &cn) || category_changed_after_8_0(cp))
            continue;
        n_checked++;
        int32_t out[TOKENIZER_WORDPIECE_MAX_NORM];
        bool is_cjk;
        size_t n = tokenizer_wordpiece_normalize(cp, true, out, &is_cjk);
        bool ok = n == n_hf && is_cjk == hf_cjk && memcmp(out, hf, n * sizeof *out) == 0 &&
                  tokenizer_wordpiece_is_punct(cp) == hf_punct &&
                  tokenizer_wordpiece_is_whitespace(cp) == hf_split;
        if (!ok && n_bad++ < 40)
            fprintf(stderr,
                    "  U+%04X cat %d: n %zu/%zu first %X/%X cjk %d/%d punct %d/%d split %d/%d\n",
                    (unsigned)cp, (int)utf8proc_category(cp), n, n_hf, n ? (unsigned)out[0] : 0,
                    n_hf ? (unsigned)hf[0] : 0, is_cjk, hf_cjk, tokenizer_wordpiece_is_punct(cp),
                    hf_punct, tokenizer_wordpiece_is_whitespace(cp), hf_split);
    }
    assert_int_equal(cm, json_array_size(mapped));
    assert_true(n_checked > 1000000);
    if (n_bad)
        fail_msg("%zu of %zu code points differ from Hugging Face tokenizers", n_bad, n_checked);
    json_decref(doc);
}

static void test_wordpiece_classes(void **state)
{
    (void)state;
    /* BERT's _is_punctuation counts all of ASCII's non-alphanumeric symbols */
    for (const char *p = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"; *p; p++)
        assert_true(tokenizer_wordpiece_is_punct(*p));
    assert_false(tokenizer_wordpiece_is_punct('a'));
    assert_false(tokenizer_wordpiece_is_punct(0x20AC)); /* euro sign: Sc */
    assert_true(tokenizer_wordpiece_is_punct(0x201C));  /* left double quote: Pi */
    assert_true(tokenizer_wordpiece_is_cjk(0x4E2D));
    assert_false(tokenizer_wordpiece_is_cjk(0x3042)); /* hiragana */
    assert_true(tokenizer_wordpiece_is_control(0));
    assert_true(tokenizer_wordpiece_is_control(0x200B));
    assert_false(tokenizer_wordpiece_is_control('\n'));
    assert_true(tokenizer_wordpiece_is_whitespace(0x3000));
    assert_false(tokenizer_wordpiece_is_whitespace(0x200B));
}

/* ---- invalid UTF-8, errors, truncation ---------------------------------- */

typedef struct {
    const char *name;
    const char *bytes;
    size_t len;
    size_t bad_offset;
} bad_case;

#define BAD(name, lit, off)                                                                        \
    {                                                                                              \
        name, lit, sizeof(lit) - 1, off                                                            \
    }

static const bad_case BAD_CASES[] = {
    BAD("truncated multibyte", "hello \xE4\xB8", 6),
    BAD("truncated in the middle", "caf\xC3 ok", 3),
    BAD("lone continuation", "the \x80 movie", 4),
    BAD("overlong slash",
        "a\xC0\xAF"
        "b",
        1),
    BAD("surrogate", "x \xED\xA0\x80", 2),
    BAD("above U+10FFFF", "\xF4\x90\x80\x80", 0),
    BAD("0xFF", "good text then \xFF", 15),
    BAD("after valid multibyte", "\xE4\xB8\xAD\xE6\x96\x87 \xFE", 7),
};

static void test_invalid_utf8(void **state)
{
    (void)state;
    vocab *wv = load_vocab(FIXTURES "word-vocab.txt");
    vocab *bv = load_vocab(FIXTURES "bert-base-uncased-vocab.txt");
    tokenizer *ts[2] = {make(TOKENIZER_WORD, true, wv), make(TOKENIZER_WORDPIECE, true, bv)};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof BAD_CASES / sizeof BAD_CASES[0]; i++) {
            const bad_case *c = &BAD_CASES[i];
            int32_t ids[64];
            size_t n = 99;
            bool truncated = true;
            char err[128] = "", want[64];
            if (encode_exact(ts[k], c->bytes, c->len, ids, 64, &n, &truncated, err, sizeof err) !=
                -1)
                fail_msg("%s: %s accepted", tokenizer_kind_name((tokenizer_kind)k), c->name);
            snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", c->bad_offset);
            if (strcmp(err, want) != 0)
                fail_msg("%s: error '%s', expected '%s'", c->name, err, want);
            assert_int_equal(n, 0);
            assert_false(truncated);
            /* a NULL error buffer is allowed */
            assert_int_equal(
                encode_exact(ts[k], c->bytes, c->len, ids, 64, &n, &truncated, NULL, 0), -1);
        }
    tokenizer_free(ts[0]);
    tokenizer_free(ts[1]);
    vocab_free(wv);
    vocab_free(bv);
}

static void test_small_error_buffer(void **state)
{
    (void)state;
    vocab *v = load_vocab(FIXTURES "word-vocab.txt");
    tokenizer *t = make(TOKENIZER_WORD, true, v);
    size_t n;
    bool truncated;
    char err[8];
    memset(err, 'x', sizeof err);
    assert_int_equal(encode_exact(t, "\xFF", 1, NULL, 0, &n, &truncated, err, sizeof err), -1);
    assert_string_equal(err, "invalid");
    tokenizer_free(t);
    vocab_free(v);
}

/* The word pipeline with lowercase=false keeps case; with true it lowers. */
static void test_word_lowercase_flag(void **state)
{
    (void)state;
    static const char text[] = "[PAD]\n[UNK]\nmovie\nMovie\n";
    vocab *v = NULL;
    assert_int_equal(vocab_parse(text, sizeof text - 1, &v, NULL, 0), 0);
    tokenizer *lower = make(TOKENIZER_WORD, true, v), *keep = make(TOKENIZER_WORD, false, v);
    int32_t ids[4];
    size_t n;
    bool truncated;
    assert_int_equal(tokenizer_encode(lower, "Movie MOVIE", 11, ids, 4, &n, &truncated, NULL, 0),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 2);
    assert_int_equal(tokenizer_encode(keep, "Movie MOVIE", 11, ids, 4, &n, &truncated, NULL, 0), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 1);
    tokenizer_free(lower);
    tokenizer_free(keep);
    vocab_free(v);
}

/* ---- random input --------------------------------------------------------- */

static uint32_t rng_next(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

/* Random code points from every plane (and some corrupted bytes): no crash,
 * no read out of bounds (ASan), ids in range, the error offset is the
 * validator's, and a smaller max_ids gives a prefix. */
static void test_random_input(void **state)
{
    (void)state;
    vocab *wv = load_vocab(FIXTURES "word-vocab.txt");
    vocab *bv = load_vocab(FIXTURES "bert-base-uncased-vocab.txt");
    tokenizer *ts[3] = {make(TOKENIZER_WORD, true, wv), make(TOKENIZER_WORDPIECE, true, bv),
                        make(TOKENIZER_WORDPIECE, false, bv)};
    const vocab *vs[3] = {wv, bv, bv};
    uint64_t rng = 42;
    static const int32_t common[] = {' ',   'a',    'E',    '.',     '!', '_',  0x3A3,  0x130,
                                     0x301, 0x4E2D, 0xAC00, 0x1F600, 0,   '\t', 0x200B, 0xFFFD};
    for (int iter = 0; iter < 3000; iter++) {
        char text[1200];
        size_t len = 0, n_cp = rng_next(&rng) % 250;
        for (size_t k = 0; k < n_cp; k++) {
            uint32_t r = rng_next(&rng);
            int32_t cp;
            if (r % 4 == 0)
                cp = (int32_t)(rng_next(&rng) % 0x110000);
            else if (r % 4 == 1)
                cp = (int32_t)(rng_next(&rng) % 0x3000);
            else if (r % 4 == 2)
                cp = 'a' + (int32_t)(rng_next(&rng) % 26);
            else
                cp = common[rng_next(&rng) % (sizeof common / sizeof common[0])];
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xE000;
            len += utf8_encode(cp, text + len);
        }
        if (len > 0 && rng_next(&rng) % 8 == 0) /* corrupt one byte */
            text[rng_next(&rng) % len] = (char)(rng_next(&rng) & 0xFF);
        size_t bad = 0;
        bool valid = utf8_validate(text, len, &bad) == 0;
        for (size_t k = 0; k < 3; k++) {
            int32_t full[1200], part[1200];
            size_t n_full, n_part;
            bool truncated;
            char err[64] = "", want[64];
            int rc =
                encode_exact(ts[k], text, len, full, 1200, &n_full, &truncated, err, sizeof err);
            if (!valid) {
                assert_int_equal(rc, -1);
                snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", bad);
                assert_string_equal(err, want);
                continue;
            }
            assert_int_equal(rc, 0);
            assert_false(truncated);
            for (size_t i = 0; i < n_full; i++)
                assert_in_range(full[i], 0, (int32_t)vocab_size(vs[k]) - 1);
            if (n_full == 0)
                continue;
            size_t max = rng_next(&rng) % n_full;
            assert_int_equal(encode_exact(ts[k], text, len, max ? part : NULL, max, &n_part,
                                          &truncated, err, sizeof err),
                             0);
            assert_int_equal(n_part, max);
            assert_true(truncated);
            assert_memory_equal(part, full, max * sizeof *part);
        }
    }
    for (size_t k = 0; k < 3; k++)
        tokenizer_free(ts[k]);
    vocab_free(wv);
    vocab_free(bv);
}

/* ---- concurrency -------------------------------------------------------- */

typedef struct {
    const tokenizer *t;
    const char *text;
    const int32_t *want;
    size_t n_want;
    int ok;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    a->ok = 1;
    for (int round = 0; round < 50; round++) {
        int32_t ids[512];
        size_t n;
        bool truncated;
        if (tokenizer_encode(a->t, a->text, strlen(a->text), ids, 512, &n, &truncated, NULL, 0) !=
                0 ||
            n != a->n_want || memcmp(ids, a->want, n * sizeof *ids) != 0)
            a->ok = 0;
    }
    return NULL;
}

static void test_concurrent_encode(void **state)
{
    (void)state;
    vocab *v = load_vocab(FIXTURES "bert-base-uncased-vocab.txt");
    tokenizer *t = make(TOKENIZER_WORDPIECE, true, v);
    static const char *texts[2] = {"Café naïve Ångström: 中文字符 and emoji 😀!!!",
                                   "The quick brown fox jumps over the lazy dog, unaffable."};
    int32_t want[2][512];
    size_t n_want[2];
    for (int k = 0; k < 2; k++) {
        bool truncated;
        assert_int_equal(tokenizer_encode(t, texts[k], strlen(texts[k]), want[k], 512, &n_want[k],
                                          &truncated, NULL, 0),
                         0);
    }
    pthread_t th[4];
    worker_arg args[4];
    for (int k = 0; k < 4; k++) {
        args[k] = (worker_arg){
            .t = t, .text = texts[k % 2], .want = want[k % 2], .n_want = n_want[k % 2]};
        assert_int_equal(pthread_create(&th[k], NULL, worker, &args[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(pthread_join(th[k], NULL), 0);
        assert_true(args[k].ok);
    }
    tokenizer_free(t);
    vocab_free(v);
}

/* The hashes the word pipeline hints to the vocabulary are those of the
 * pieces it then looks up (ASCII ones; the others are skipped), in order. */
static void test_word_hint_hashes(void **state)
{
    (void)state;
    const char *text = "Hello, World!!  foo_bar\t42 na\xc3\xafve x...y";
    const char *pieces[] = {"hello", ",", "world", "!!", "foo_bar", "42", "x", "...", "y"};
    const size_t n_pieces = sizeof pieces / sizeof pieces[0];
    uint64_t got[16];
    size_t n =
        tokenizer_word_ascii_hashes((const unsigned char *)text, strlen(text), true, got, 16);
    assert_int_equal(n, n_pieces);
    for (size_t i = 0; i < n_pieces; i++)
        assert_true(got[i] == fnv1a_64(pieces[i], strlen(pieces[i])));
    /* Not lowercased, and at most cap. */
    n = tokenizer_word_ascii_hashes((const unsigned char *)text, strlen(text), false, got, 2);
    assert_int_equal(n, 2);
    assert_true(got[0] == fnv1a_64("Hello", 5));
    assert_true(got[1] == fnv1a_64(",", 1));
    assert_int_equal(tokenizer_word_ascii_hashes((const unsigned char *)"", 0, true, got, 16), 0);
    assert_int_equal(tokenizer_word_ascii_hashes((const unsigned char *)" \n ", 3, true, got, 16),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_new_without_unk),
        cmocka_unit_test(test_word_cases),
        cmocka_unit_test(test_word_classes_every_code_point),
        cmocka_unit_test(test_word_final_sigma_every_code_point),
        cmocka_unit_test(test_word_lowercase_flag),
        cmocka_unit_test(test_wordpiece_cases),
        cmocka_unit_test(test_wordpiece_every_code_point),
        cmocka_unit_test(test_wordpiece_classes),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_small_error_buffer),
        cmocka_unit_test(test_random_input),
        cmocka_unit_test(test_concurrent_encode),
        cmocka_unit_test(test_word_hint_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
