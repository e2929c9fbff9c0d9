/* test_quant_dot: int8 rows times an int16 vector and int4 rows times an
 * int8 one (model/quant_dot.h) on every kernel path this CPU supports
 * (plain always; avx2, avx512 and avx512vnni when present, each forced by
 * name), against int64 sums written here: widths around every step of the
 * vector bodies and their tails (odd ones for the int4 packing), random
 * entries, and the extremes (+-127 against +-quant_dot_w_max(d), +-7
 * against -128 and 127, up to d = 4096) that must not overflow or
 * saturate. The paths must agree exactly. A path the CPU lacks is skipped
 * with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "quant_dot.h"

enum { ROWS = 9, DMAX = 4096 };

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void skip_unless_supported(quant_dot_path p)
{
    if (!quant_dot_path_supported(p)) {
        printf("skip reason: this CPU cannot run the %s int8 kernels\n", quant_dot_path_name(p));
        skip();
    }
}

/* Runs path p on q (ROWS x d) and w and compares each row with int64 sums. */
static void check_rows(quant_dot_path p, const int8_t *q, int d, const int16_t *w, const char *what)
{
    int32_t out[ROWS];
    memset(out, 0x5a, sizeof out);
    quant_dot_i8_rows(p, q, ROWS, d, w, out);
    for (int r = 0; r < ROWS; r++) {
        int64_t want = 0;
        for (int i = 0; i < d; i++)
            want += (int64_t)q[(size_t)r * d + i] * w[i];
        if (out[r] != want)
            fail_msg("%s, d %d, %s, row %d: %d, reference %lld", quant_dot_path_name(p), d, what, r,
                     out[r], (long long)want);
    }
}

/* Packs the int4 values v (ROWS x d, each in [-7, 7]) as quant_dot.h says
 * (q + 8 a nibble, an odd d's last nibble 8), runs path p with the int8 w
 * split, and compares each row with int64 sums. */
static void check_rows4(quant_dot_path p, const int8_t *v, int d, const int8_t *w, const char *what)
{
    static uint8_t q4[ROWS * (DMAX / 2 + 1)];
    static int8_t w_even[DMAX / 2 + 1], w_odd[DMAX / 2 + 1];
    size_t nb = quant_dot_i4_row_bytes(d);
    assert_int_equal(nb, (size_t)(d + 1) / 2);
    memset(q4, 0x88, sizeof q4);
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < d; i++) {
            uint8_t *b = &q4[(size_t)r * nb + (size_t)i / 2];
            int shift = 4 * (i % 2);
            *b = (uint8_t)((*b & ~(15u << shift)) | (unsigned)(v[(size_t)r * d + i] + 8) << shift);
        }
    for (size_t j = 0; j < nb; j++) {
        w_even[j] = w[2 * j];
        w_odd[j] = 2 * (int)j + 1 < d ? w[2 * j + 1] : 0;
    }
    int32_t out[ROWS];
    memset(out, 0x5a, sizeof out);
    quant_dot_i4_rows(p, q4, ROWS, d, w_even, w_odd, out);
    for (int r = 0; r < ROWS; r++) {
        int64_t want = 0;
        for (int i = 0; i < d; i++)
            want += (int64_t)v[(size_t)r * d + i] * w[i];
        if (out[r] != want)
            fail_msg("%s int4, d %d, %s, row %d: %d, reference %lld", quant_dot_path_name(p), d,
                     what, r, out[r], (long long)want);
    }
}

static void check_path(quant_dot_path p)
{
    skip_unless_supported(p);
    static int8_t q[ROWS * DMAX];
    static int16_t w[DMAX];
    static int8_t w8[DMAX];
    static const int widths[] = {1,  2,  15, 16,  17,  31,  32,  33,  47,  48,   63,
                                 64, 65, 95, 127, 128, 129, 256, 300, 768, 1000, 4096};
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < sizeof widths / sizeof widths[0]; k++) {
        int d = widths[k], w_max = quant_dot_w_max(d);
        for (int i = 0; i < ROWS * d; i++)
            q[i] = (int8_t)((int)(next(&s) % 255) - 127);
        for (int i = 0; i < d; i++)
            w[i] = (int16_t)((int)(next(&s) % (uint64_t)(2 * w_max + 1)) - w_max);
        check_rows(p, q, d, w, "random");
        for (int i = 0; i < ROWS * d; i++)
            q[i] = (int8_t)((int)(next(&s) % 15) - 7);
        for (int i = 0; i < d; i++)
            w8[i] = (int8_t)((int)(next(&s) % 256) - 128);
        check_rows4(p, q, d, w8, "random");
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
        /* int4: rows all +7 or all -7 against w all -128, all +127, then
         * alternating. */
        for (int i = 0; i < ROWS * d; i++)
            q[i] = (int8_t)((i / d) % 2 ? -7 : 7);
        for (int i = 0; i < d; i++)
            w8[i] = -128;
        check_rows4(p, q, d, w8, "+-7 x -128");
        for (int i = 0; i < d; i++)
            w8[i] = 127;
        check_rows4(p, q, d, w8, "+-7 x 127");
        for (int i = 0; i < d; i++)
            w8[i] = (int8_t)(i % 2 ? -128 : 127);
        check_rows4(p, q, d, w8, "+-7 x +-128");
    }
}

static void test_plain(void **state)
{
    (void)state;
    check_path(QUANT_DOT_PLAIN);
}

static void test_avx2(void **state)
{
    (void)state;
    check_path(QUANT_DOT_AVX2);
}

static void test_avx512(void **state)
{
    (void)state;
    check_path(QUANT_DOT_AVX512);
}

static void test_avx512vnni(void **state)
{
    (void)state;
    check_path(QUANT_DOT_AVX512VNNI);
}

/* The bound on w keeps the largest sum inside int32; names; the best path
 * is supported. */
static void test_limits_and_paths(void **state)
{
    (void)state;
    assert_int_equal(quant_dot_w_max(1), 32767);
    assert_int_equal(quant_dot_w_max(256), 32767);
    assert_int_equal(quant_dot_w_max(768), 2147483647 / (127 * 768));
    for (int d = 1; d <= 70000; d = d * 3 + 1) {
        int m = quant_dot_w_max(d);
        assert_true(m >= 1 && m <= 32767);
        assert_true((int64_t)127 * m * d <= INT32_MAX);
    }
    assert_string_equal(quant_dot_path_name(QUANT_DOT_PLAIN), "plain");
    assert_string_equal(quant_dot_path_name(QUANT_DOT_AVX2), "avx2");
    assert_string_equal(quant_dot_path_name(QUANT_DOT_AVX512), "avx512");
    assert_string_equal(quant_dot_path_name(QUANT_DOT_AVX512VNNI), "avx512vnni");
    assert_true(quant_dot_path_supported(QUANT_DOT_PLAIN));
    assert_true(quant_dot_path_supported(quant_dot_path_best()));
    for (int p = QUANT_DOT_N_PATHS - 1; p >= 0; p--)
        if (quant_dot_path_supported((quant_dot_path)p)) {
            assert_int_equal(quant_dot_path_best(), p); /* the last path listed that runs */
            break;
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_and_paths),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avx512),
        cmocka_unit_test(test_avx512vnni),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
