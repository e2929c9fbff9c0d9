/* test_utf8: strict UTF-8 validation against a table of malformed inputs and
 * against a naive reference decoder over every 1-, 2- and 3-byte sequence and
 * a large sample of 4-byte ones; encode/decode round trip of every scalar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

/* Copies bytes into a block of exactly len bytes so ASan catches any read
 * past the end. */
static unsigned char *exact_copy(const void *bytes, size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len)
        memcpy(p, bytes, len);
    return p;
}

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
    BAD("truncated 2-byte at end", "ab\xC3", 2),
    BAD("truncated 3-byte at end", "a\xE2\x82", 1),
    BAD("truncated 4-byte at end", "xyz\xF0\x9F\x98", 3),
    BAD("truncated 3-byte before ASCII",
        "\xE2\x82"
        "a",
        0),
    BAD("truncated 4-byte before lead", "\xF0\x9F\xC3\xA9", 0),
    BAD("lone continuation", "ab\x80", 2),
    BAD("lone continuation after valid", "\xC3\xA9\xBF", 2),
    BAD("overlong slash C0 AF", "\xC0\xAF", 0),
    BAD("overlong C1 BF", "ok\xC1\xBF", 2),
    BAD("overlong 3-byte slash", "\xE0\x80\xAF", 0),
    BAD("overlong 3-byte U+07FF", "\xE0\x9F\xBF", 0),
    BAD("overlong 4-byte slash", "\xF0\x80\x80\xAF", 0),
    BAD("overlong 4-byte U+FFFF", "\xF0\x8F\xBF\xBF", 0),
    BAD("surrogate U+D800", "a\xED\xA0\x80", 1),
    BAD("surrogate U+DFFF", "\xED\xBF\xBF", 0),
    BAD("above U+10FFFF", "\xF4\x90\x80\x80", 0),
    BAD("F5 lead", "\xF5\x80\x80\x80", 0),
    BAD("FF byte", "abc\xFF", 3),
    BAD("FE byte", "\xFE", 0),
    BAD("bad third byte", "\xE2\x82\x41", 0),
    BAD("bad fourth byte", "\xF0\x9F\x98\x41", 0),
    BAD("first error wins", "\xC3\xA9\x80\xFF", 2),
};

static void test_bad_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BAD_CASES / sizeof BAD_CASES[0]; i++) {
        const bad_case *c = &BAD_CASES[i];
        unsigned char *p = exact_copy(c->bytes, c->len);
        size_t off = (size_t)-1;
        if (utf8_validate(p, c->len, &off) != -1)
            fail_msg("%s: accepted", c->name);
        if (off != c->bad_offset)
            fail_msg("%s: offset %zu, expected %zu", c->name, off, c->bad_offset);
        free(p);
    }
}

static void test_valid_boundaries(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        int32_t cp;
    } ok[] = {
        {"\x00", 0x0},
        {"\x7F", 0x7F},
        {"\xC2\x80", 0x80},
        {"\xDF\xBF", 0x7FF},
        {"\xE0\xA0\x80", 0x800},
        {"\xED\x9F\xBF", 0xD7FF},
        {"\xEE\x80\x80", 0xE000},
        {"\xEF\xBF\xBF", 0xFFFF},
        {"\xF0\x90\x80\x80", 0x10000},
        {"\xF4\x8F\xBF\xBF", 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t len = ok[i].cp == 0 ? 1 : strlen(ok[i].bytes);
        unsigned char *p = exact_copy(ok[i].bytes, len);
        int32_t cp = -1;
        size_t off = 0;
        assert_int_equal(utf8_decode(p, len, &cp), len);
        assert_int_equal(cp, ok[i].cp);
        assert_int_equal(utf8_validate(p, len, &off), 0);
        free(p);
    }
    size_t off = 0;
    assert_int_equal(utf8_validate(NULL, 0, &off), 0);
}

/* The naive reference: decode by the bit patterns alone, then reject what the
 * standard forbids by value (overlong, surrogate, too large). */
static size_t naive_decode(const unsigned char *s, size_t n, int32_t *cp)
{
    size_t len;
    int32_t v;
    if (s[0] < 0x80)
        len = 1, v = s[0];
    else if ((s[0] & 0xE0) == 0xC0)
        len = 2, v = s[0] & 0x1F;
    else if ((s[0] & 0xF0) == 0xE0)
        len = 3, v = s[0] & 0x0F;
    else if ((s[0] & 0xF8) == 0xF0)
        len = 4, v = s[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    static const int32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_for_len[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static void check_against_naive(const unsigned char *s, size_t n)
{
    int32_t a = -1, b = -2;
    size_t la = utf8_decode(s, n, &a), lb = naive_decode(s, n, &b);
    if (la != lb || (la && a != b))
        fail_msg("bytes %02X %02X %02X %02X (n=%zu): decode %zu/%X, naive %zu/%X", s[0],
                 n > 1 ? s[1] : 0, n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, n, la, (unsigned)a, lb,
                 (unsigned)b);
}

static void test_exhaustive_against_naive(void **state)
{
    (void)state;
    unsigned char s[4];
    for (unsigned b0 = 0; b0 < 256; b0++) {
        s[0] = (unsigned char)b0;
        check_against_naive(s, 1);
        for (unsigned b1 = 0; b1 < 256; b1++) {
            s[1] = (unsigned char)b1;
            check_against_naive(s, 2);
            for (unsigned b2 = 0; b2 < 256; b2++) {
                s[2] = (unsigned char)b2;
                check_against_naive(s, 3);
            }
        }
    }
    static const unsigned char tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                          0x9F, 0xA0, 0xBF, 0xC0, 0xF4, 0xFF};
    for (unsigned b0 = 0xC0; b0 < 256; b0++)
        for (unsigned b1 = 0; b1 < 256; b1++)
            for (size_t i = 0; i < sizeof tails; i++)
                for (size_t j = 0; j < sizeof tails; j++) {
                    s[0] = (unsigned char)b0, s[1] = (unsigned char)b1;
                    s[2] = tails[i], s[3] = tails[j];
                    check_against_naive(s, 4);
                }
}

static void test_roundtrip_every_scalar(void **state)
{
    (void)state;
    for (int32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp == 0xD800)
            cp = 0xE000;
        char buf[4];
        size_t len = utf8_encode(cp, buf);
        int32_t back = -1, fast = -1;
        size_t off;
        assert_int_equal(utf8_decode((const unsigned char *)buf, len, &back), len);
        assert_int_equal(back, cp);
        assert_int_equal(utf8_decode_valid((const unsigned char *)buf, &fast), len);
        assert_int_equal(fast, cp);
        assert_int_equal(utf8_validate(buf, len, &off), 0);
        if (len > 1) /* every proper prefix is truncated */
            assert_int_equal(utf8_decode((const unsigned char *)buf, len - 1, &back), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_table),
        cmocka_unit_test(test_valid_boundaries),
        cmocka_unit_test(test_exhaustive_against_naive),
        cmocka_unit_test(test_roundtrip_every_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
