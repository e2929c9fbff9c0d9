/* test_vocab: vocab.txt parsing (LF, CRLF, final line without LF, empty
 * lines as empty tokens, arbitrary bytes, duplicates) and hash lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/mman.h>

#include "fnv1a.h"
#include "vocab.h"

static vocab *parse_ok(const char *text, size_t len)
{
    char err[256] = "";
    vocab *v = NULL;
    if (vocab_parse(text, len, &v, err, sizeof err) != 0)
        fail_msg("unexpected error: %s", err);
    return v;
}

static int32_t lookup(const vocab *v, const char *s)
{
    return vocab_lookup(v, s, strlen(s));
}

static void test_lf(void **state)
{
    (void)state;
    const char text[] = "[PAD]\n[UNK]\nthe\n##ing\n";
    vocab *v = parse_ok(text, sizeof text - 1);
    assert_int_equal(vocab_size(v), 4);
    assert_int_equal(lookup(v, "[PAD]"), 0);
    assert_int_equal(lookup(v, "[UNK]"), 1);
    assert_int_equal(lookup(v, "the"), 2);
    assert_int_equal(lookup(v, "##ing"), 3);
    assert_int_equal(lookup(v, "th"), -1);
    assert_int_equal(lookup(v, "thee"), -1);
    assert_int_equal(lookup(v, ""), -1);
    assert_string_equal(vocab_token(v, 2), "the");
    assert_null(vocab_token(v, 4));
    assert_null(vocab_token(v, -1));
    /* lookup takes a length: the text need not be NUL-terminated */
    assert_int_equal(vocab_lookup(v, "there", 3), 2);
    vocab_free(v);
}

static void test_crlf_and_no_final_newline(void **state)
{
    (void)state;
    const char text[] = "[PAD]\r\n[UNK]\r\nthe\r\nlast";
    vocab *v = parse_ok(text, sizeof text - 1);
    assert_int_equal(vocab_size(v), 4);
    assert_int_equal(lookup(v, "the"), 2);
    assert_int_equal(lookup(v, "the\r"), -1);
    assert_int_equal(lookup(v, "last"), 3);
    assert_string_equal(vocab_token(v, 1), "[UNK]");
    vocab_free(v);
    const char text2[] = "a\nb\r";
    v = parse_ok(text2, sizeof text2 - 1);
    assert_int_equal(vocab_size(v), 2);
    assert_int_equal(lookup(v, "b"), 1);
    vocab_free(v);
}

static void test_empty_lines_are_empty_tokens(void **state)
{
    (void)state;
    /* ids are line numbers: an empty line keeps its id and shifts nothing */
    const char text[] = "[PAD]\n\nafter\n\r\nend\n";
    vocab *v = parse_ok(text, sizeof text - 1);
    assert_int_equal(vocab_size(v), 5);
    assert_string_equal(vocab_token(v, 1), "");
    assert_string_equal(vocab_token(v, 3), "");
    assert_int_equal(lookup(v, "after"), 2);
    assert_int_equal(lookup(v, "end"), 4);
    assert_int_equal(lookup(v, ""), 1); /* first empty line wins */
    vocab_free(v);
    v = parse_ok("\n", 1);
    assert_int_equal(vocab_size(v), 1);
    vocab_free(v);
}

static void test_any_bytes(void **state)
{
    (void)state;
    const char text[] = "a b\n\xff\xfe\nx\0y\n\xc3\xa9t\xc3\xa9\n\tq\r\r\n";
    vocab *v = parse_ok(text, sizeof text - 1);
    assert_int_equal(vocab_size(v), 5);
    assert_int_equal(lookup(v, "a b"), 0);
    assert_int_equal(lookup(v, "\xff\xfe"), 1);
    assert_int_equal(vocab_lookup(v, "x\0y", 3), 2);
    assert_int_equal(lookup(v, "x"), -1);
    assert_int_equal(lookup(v, "\xc3\xa9t\xc3\xa9"), 3);
    assert_int_equal(lookup(v, "\tq\r"), 4); /* only one CR before LF is a line end */
    vocab_free(v);
}

static void test_duplicates_first_wins(void **state)
{
    (void)state;
    const char text[] = "a\nb\na\nb\nc\n";
    vocab *v = parse_ok(text, sizeof text - 1);
    assert_int_equal(vocab_size(v), 5);
    assert_int_equal(lookup(v, "a"), 0);
    assert_int_equal(lookup(v, "b"), 1);
    assert_int_equal(lookup(v, "c"), 4);
    assert_string_equal(vocab_token(v, 2), "a");
    vocab_free(v);
}

static void test_empty_file(void **state)
{
    (void)state;
    char err[256] = "";
    vocab *v = (vocab *)1;
    assert_int_equal(vocab_parse("", 0, &v, err, sizeof err), -1);
    assert_null(v);
    assert_string_equal(err, "vocab.txt: empty (no tokens)");
}

static void test_too_many_lines(void **state)
{
    (void)state;
    size_t n = (1u << 24) + 1; /* one line more than the limit */
    char *text = malloc(n);
    memset(text, '\n', n);
    char err[256] = "";
    vocab *v = (vocab *)1;
    assert_int_equal(vocab_parse(text, n, &v, err, sizeof err), -1);
    assert_null(v);
    assert_string_equal(err, "vocab.txt: 16777217 lines, more than the limit of 16777216");
    v = parse_ok(text, n - 1);
    assert_int_equal(vocab_size(v), 1u << 24);
    vocab_free(v);
    free(text);
}

/* The slots keep 32-bit offsets: a file of 4 GiB or more is refused before
 * any byte of it is read (the mapping here is never touched). */
static void test_too_many_bytes(void **state)
{
    (void)state;
    size_t n = (size_t)UINT32_MAX;
    void *big = mmap(NULL, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(big != MAP_FAILED);
    char err[256] = "";
    vocab *v = (vocab *)1;
    assert_int_equal(vocab_parse(big, n, &v, err, sizeof err), -1);
    assert_null(v);
    assert_string_equal(err, "vocab.txt: 4294967295 bytes, more than the limit of 4294967294");
    munmap(big, n);
}

/* The file's bytes plus one (tokens with NULs), an offset per token (size_t)
 * and 16-byte slots (tag, id, length, offset), at least 2 per token in a
 * power of two; the struct on top. */
static void test_bytes(void **state)
{
    (void)state;
    vocab *v = parse_ok("a\nbb\nccc\n", 9);
    const size_t want = 10 + 3 * sizeof(size_t) + 8 * 16;
    assert_true(vocab_bytes(v) >= want);
    assert_true(vocab_bytes(v) <= want + 256);
    vocab_free(v);
}

static void test_large_vocab(void **state)
{
    (void)state;
    enum { N = 100000 };
    char *text = malloc((size_t)N * 12);
    size_t at = 0;
    for (int i = 0; i < N; i++)
        at += (size_t)sprintf(text + at, "tok%d\n", i);
    vocab *v = parse_ok(text, at);
    assert_int_equal(vocab_size(v), N);
    char buf[16];
    for (int i = 0; i < N; i += 7) {
        snprintf(buf, sizeof buf, "tok%d", i);
        assert_int_equal(lookup(v, buf), i);
        assert_string_equal(vocab_token(v, i), buf);
    }
    assert_int_equal(lookup(v, "tok100000"), -1);
    vocab_free(v);
    free(text);
}

/* vocab_prefetch is a hint: at either stage, for present, absent and any
 * hash at all, it reads nothing out of bounds (ASan) and changes no lookup. */
static void test_prefetch_is_only_a_hint(void **state)
{
    (void)state;
    const char text[] = "[PAD]\n[UNK]\nthe\nmovie\n,\nwas\n";
    vocab *v;
    char err[256];
    assert_int_equal(vocab_parse(text, strlen(text), &v, err, sizeof err), 0);
    const char *toks[] = {"the", "movie", ",", "was", "absent", ""};
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
        for (int stage = 0; stage < 2; stage++)
            vocab_prefetch(v, fnv1a_64(toks[i], strlen(toks[i])), stage);
    for (uint64_t h = 0; h < 4096; h++)
        vocab_prefetch(v, h * 0x9e3779b97f4a7c15ull, (int)(h & 1));
    assert_int_equal(vocab_lookup(v, "the", 3), 2);
    assert_int_equal(vocab_lookup(v, "movie", 5), 3);
    assert_int_equal(vocab_lookup(v, "absent", 6), -1);
    vocab_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lf),
        cmocka_unit_test(test_too_many_bytes),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_crlf_and_no_final_newline),
        cmocka_unit_test(test_empty_lines_are_empty_tokens),
        cmocka_unit_test(test_any_bytes),
        cmocka_unit_test(test_duplicates_first_wins),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_too_many_lines),
        cmocka_unit_test(test_large_vocab),
        cmocka_unit_test(test_prefetch_is_only_a_hint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
