/* test_dot_i8: int8 rows times an int16 vector (model/dot_i8.h) on every
 * kernel path this CPU supports (plain always; avx2 and avx512 when present,
 * each forced by name), against an int64 sum written here: widths around
 * every step of the vector bodies and their tails, random entries, and the
 * extremes (every entry +-127 against +-dot_i8_w_max(d), up to d = 4096)
 * that must not overflow. The paths must agree exactly. A path the CPU
 * lacks is skipped with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dot_i8.h"

enum { ROWS = 9, DMAX = 4096 };

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void skip_unless_supported(dot_i8_path p)
{
    if (!dot_i8_path_supported(p)) {
        printf("skip reason: this CPU cannot run the %s int8 kernels\n", dot_i8_path_name(p));
        skip();
    }
}

/* Runs path p on q (ROWS x d) and w and compares each row with int64 sums. */
static void check_rows(dot_i8_path p, const int8_t *q, int d, const int16_t *w, const char *what)
{
    int32_t out[ROWS];
    memset(out, 0x5a, sizeof out);
    dot_i8_rows(p, q, ROWS, d, w, out);
    for (int r = 0; r < ROWS; r++) {
        int64_t want = 0;
        for (int i = 0; i < d; i++)
            want += (int64_t)q[(size_t)r * d + i] * w[i];
        if (out[r] != want)
            fail_msg("%s, d %d, %s, row %d: %d, reference %lld", dot_i8_path_name(p), d, what, r,
                     out[r], (long long)want);
    }
}

static void check_path(dot_i8_path p)
{
    skip_unless_supported(p);
    static int8_t q[ROWS * DMAX];
    static int16_t w[DMAX];
    static const int widths[] = {1,  2,  15, 16,  17,  31,  32,  33,  47,   48,  63,
                                 64, 65, 95, 127, 128, 129, 256, 300, 768, 1000, 4096};
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < sizeof widths / sizeof widths[0]; k++) {
        int d = widths[k], w_max = dot_i8_w_max(d);
        for (int i = 0; i < ROWS * d; i++)
            q[i] = (int8_t)((int)(next(&s) % 255) - 127);
        for (int i = 0; i < d; i++)
            w[i] = (int16_t)((int)(next(&s) % (uint64_t)(2 * w_max + 1)) - w_max);
        check_rows(p, q, d, w, "random");
        /* The extremes: row r is all +127 or all -127 (alternating rows),
         * against w all +w_max, then against w alternating in sign. */
        for (int r = 0; r < ROWS; r++)
            memset(q + (size_t)r * d, r % 2 ? 0x81 : 0x7f, (size_t)d); /* -127 : +127 */
        for (int i = 0; i < d; i++)
            w[i] = (int16_t)w_max;
        check_rows(p, q, d, w, "+-127 x w_max");
        for (int i = 0; i < d; i++)
            w[i] = (int16_t)(i % 2 ? -w_max : w_max);
        check_rows(p, q, d, w, "+-127 x +-w_max");
    }
}

static void test_plain(void **state)
{
    (void)state;
    check_path(DOT_I8_PLAIN);
}

static void test_avx2(void **state)
{
    (void)state;
    check_path(DOT_I8_AVX2);
}

static void test_avx512(void **state)
{
    (void)state;
    check_path(DOT_I8_AVX512);
}

/* The bound on w keeps the largest sum inside int32; names; the best path
 * is supported. */
static void test_limits_and_paths(void **state)
{
    (void)state;
    assert_int_equal(dot_i8_w_max(1), 32767);
    assert_int_equal(dot_i8_w_max(256), 32767);
    assert_int_equal(dot_i8_w_max(768), 2147483647 / (127 * 768));
    for (int d = 1; d <= 70000; d = d * 3 + 1) {
        int m = dot_i8_w_max(d);
        assert_true(m >= 1 && m <= 32767);
        assert_true((int64_t)127 * m * d <= INT32_MAX);
    }
    assert_string_equal(dot_i8_path_name(DOT_I8_PLAIN), "plain");
    assert_string_equal(dot_i8_path_name(DOT_I8_AVX2), "avx2");
    assert_string_equal(dot_i8_path_name(DOT_I8_AVX512), "avx512");
    assert_true(dot_i8_path_supported(DOT_I8_PLAIN));
    assert_true(dot_i8_path_supported(dot_i8_path_best()));
    if (dot_i8_path_supported(DOT_I8_AVX512))
        assert_int_equal(dot_i8_path_best(), DOT_I8_AVX512);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_and_paths),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avx512),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
