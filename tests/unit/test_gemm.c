/* test_gemm: the engine's own GEMM (model/gemm.h) on every kernel path this
 * CPU supports (plain always; avx2 and avx512 when present, each forced by
 * packing for it), against a naive double-precision product written here:
 * full tiles and every kind of edge (rows and columns short of a tile, n
 * smaller than one panel), accumulate, both fused epilogues against the
 * unfused kernels, and the two packings built from others (a transpose, and
 * a scaled sum of two packed matrices). A path the CPU lacks is skipped with
 * its reason. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gemm.h"
#include "kernels.h"

static float rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((double)(*s >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *rnd_vec(uint64_t *s, size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = rnd(s);
    return v;
}

static float *packed_for(gemm_path p, const float *w, int n, int k, gemm_weights *out)
{
    float *buf = aligned_alloc(64, gemm_packed_floats(p, n, k) * sizeof(float));
    assert_non_null(buf);
    *out = gemm_pack(p, w, n, k, k, buf);
    assert_int_equal(out->n, n);
    assert_int_equal(out->k, k);
    assert_int_equal(out->path, p);
    return buf;
}

/* ref (m, n) = a (m, k; lda) w^T (n, k) (+ c0), in double. */
static void ref_product(int m, int n, int k, const float *a, int lda, const float *w,
                        const float *c0, int ldc, double *ref)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = c0 ? c0[(size_t)i * ldc + j] : 0.0;
            for (int kk = 0; kk < k; kk++)
                s += (double)a[(size_t)i * lda + kk] * (double)w[(size_t)j * k + kk];
            ref[(size_t)i * n + j] = s;
        }
}

static const struct {
    int m, n, k;
} shapes[] = {
    {1, 1, 1},      {3, 5, 7},    {8, 32, 16},   {6, 16, 33},   {13, 48, 32},
    {32, 256, 256}, {17, 12, 64}, {31, 100, 40}, {9, 512, 256}, {40, 64, 3072},
};

static void skip_unless_supported(gemm_path p)
{
    if (!gemm_path_supported(p)) {
        printf("skip reason: this CPU cannot run the %s kernels\n", gemm_path_name(p));
        skip();
    }
}

/* One m x n x k product, with and without accumulate, in strided A and C,
 * against the double-precision reference. */
static void check_product(gemm_path p, int m, int n, int k, uint64_t *s)
{
    const int lda = k + 3, ldc = n + 5;
    float *a = rnd_vec(s, (size_t)m * lda), *w = rnd_vec(s, (size_t)n * k);
    float *c = rnd_vec(s, (size_t)m * ldc), *c0 = malloc((size_t)m * ldc * sizeof *c0);
    double *ref = malloc((size_t)m * n * sizeof *ref);
    assert_non_null(c0);
    assert_non_null(ref);
    memcpy(c0, c, (size_t)m * ldc * sizeof *c0);
    gemm_weights gw;
    float *buf = packed_for(p, w, n, k, &gw);
    for (int acc = 0; acc < 2; acc++) {
        memcpy(c, c0, (size_t)m * ldc * sizeof *c);
        gemm_run(&gw, m, a, lda, acc, c, ldc, NULL);
        ref_product(m, n, k, a, lda, w, acc ? c0 : NULL, ldc, ref);
        double worst = 0.0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                const double e = fabs((double)c[(size_t)i * ldc + j] - ref[(size_t)i * n + j]);
                worst = e > worst ? e : worst;
            }
            /* The padding between rows is never written. */
            for (int j = n; j < ldc; j++)
                assert_true(c[(size_t)i * ldc + j] == c0[(size_t)i * ldc + j]);
        }
        /* Float accumulation over k terms of size <= 1. */
        if (worst > 1e-6 * (k + 1))
            fail_msg("%s %dx%dx%d acc %d: max error %g", gemm_path_name(p), m, n, k, acc, worst);
    }
    free(buf);
    free(a);
    free(w);
    free(c);
    free(c0);
    free(ref);
}

/* Every shape of the table. */
static void check_products(gemm_path p)
{
    skip_unless_supported(p);
    uint64_t s = 0x9e3779b97f4a7c15ull + (uint64_t)p;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        check_product(p, shapes[si].m, shapes[si].n, shapes[si].k, &s);
}

/* Every row count a group's last tiles can have (M = 1 to 13 covers each
 * rest of the 4-, 6- and 8-row tiles, alone and after full tiles, and the
 * avx2 rests shared with the last full tile; M = 32 is the short sequence),
 * with n not a multiple of any panel width: once with a small W, and once
 * with a W of more than 512 KiB, which the driver prefetches panel by panel
 * (each tile a share of the next panel's lines). */
static void check_row_counts(gemm_path p)
{
    skip_unless_supported(p);
    uint64_t s = 0x2545f4914f6cdd1dull + (uint64_t)p;
    static const int ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 32};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        check_product(p, ms[i], 40, 37, &s);
        check_product(p, ms[i], 200, 700, &s);
    }
}

/* The fused epilogues equal the product followed by the row kernels. */
static void check_epilogues(gemm_path p)
{
    skip_unless_supported(p);
    uint64_t s = 12345 + (uint64_t)p;
    const int m = 19, n = 72, k = 40;
    float *a = rnd_vec(&s, (size_t)m * k), *w = rnd_vec(&s, (size_t)n * k);
    float *bias = rnd_vec(&s, n), *gamma = rnd_vec(&s, n), *beta = rnd_vec(&s, n);
    float *res = rnd_vec(&s, (size_t)m * n);
    float *fused = malloc((size_t)m * n * sizeof(float)),
          *plain = malloc((size_t)m * n * sizeof(float));
    assert_non_null(fused);
    assert_non_null(plain);
    gemm_weights gw;
    float *buf = packed_for(p, w, n, k, &gw);

    gemm_epilogue gelu = {.kind = GEMM_EPI_BIAS_GELU, .bias = bias};
    gemm_run(&gw, m, a, k, false, fused, n, &gelu);
    gemm_run(&gw, m, a, k, false, plain, n, NULL);
    kernels_bias_gelu_rows(plain, n, m, n, bias);
    for (int i = 0; i < m * n; i++)
        assert_float_equal(fused[i], plain[i], 1e-6);

    gemm_epilogue ln = {
        .kind = GEMM_EPI_BIAS_LN, .bias = bias, .gamma = gamma, .beta = beta, .eps = 1e-12f};
    memcpy(fused, res, (size_t)m * n * sizeof(float));
    memcpy(plain, res, (size_t)m * n * sizeof(float));
    gemm_run(&gw, m, a, k, true, fused, n, &ln);
    gemm_run(&gw, m, a, k, true, plain, n, NULL);
    kernels_layernorm_rows(plain, n, m, n, bias, gamma, beta, 1e-12f);
    for (int i = 0; i < m * n; i++)
        assert_float_equal(fused[i], plain[i], 1e-6);

    free(buf);
    free(a);
    free(w);
    free(bias);
    free(gamma);
    free(beta);
    free(res);
    free(fused);
    free(plain);
}

/* gemm_pack_transposed of a (k, n) matrix with a row stride packs exactly
 * what gemm_pack packs from its explicit transpose. */
static void check_pack_transposed(gemm_path p)
{
    uint64_t s = 777 + (uint64_t)p;
    const int n = 45, k = 19, ldw = n + 2;
    float *w = rnd_vec(&s, (size_t)k * ldw), *wt = malloc((size_t)n * k * sizeof(float));
    assert_non_null(wt);
    for (int i = 0; i < n; i++)
        for (int kk = 0; kk < k; kk++)
            wt[(size_t)i * k + kk] = w[(size_t)kk * ldw + i];
    const size_t floats = gemm_packed_floats(p, n, k);
    float *want = aligned_alloc(64, floats * sizeof(float));
    float *got = aligned_alloc(64, floats * sizeof(float));
    assert_non_null(want);
    assert_non_null(got);
    memset(want, 0, floats * sizeof(float));
    memset(got, 0, floats * sizeof(float));
    gemm_pack(p, wt, n, k, k, want);
    gemm_weights g = gemm_pack_transposed(p, w, n, k, ldw, got);
    assert_int_equal(g.n, n);
    assert_int_equal(g.k, k);
    assert_memory_equal(got, want, floats * sizeof(float));
    free(w);
    free(wt);
    free(want);
    free(got);
}

/* gemm_pack_scaled_sum of packed A and B is the packed form of A diag(scale)
 * + B (each column of A, the reduction index, scaled), up to one rounding of
 * a fused multiply-add; panels outside the range it is given stay as they
 * were; and a product with it is the product with that matrix. */
static void check_pack_scaled_sum(gemm_path p)
{
    uint64_t s = 4242 + (uint64_t)p;
    const int n = 45, k = 19, m = 11;
    float *a = rnd_vec(&s, (size_t)n * k), *b = rnd_vec(&s, (size_t)n * k);
    float *scale = rnd_vec(&s, (size_t)k), *x = rnd_vec(&s, (size_t)m * k);
    float *sum = malloc((size_t)n * k * sizeof(float));
    assert_non_null(sum);
    for (int i = 0; i < n; i++)
        for (int kk = 0; kk < k; kk++) {
            const size_t at = (size_t)i * k + kk;
            sum[at] = (float)((double)a[at] * scale[kk] + b[at]);
        }
    gemm_weights ga, gb, gwant;
    float *pa = packed_for(p, a, n, k, &ga), *pb = packed_for(p, b, n, k, &gb);
    float *want = packed_for(p, sum, n, k, &gwant);
    const size_t floats = gemm_packed_floats(p, n, k);
    float *got = aligned_alloc(64, floats * sizeof(float));
    assert_non_null(got);
    for (size_t i = 0; i < floats; i++)
        got[i] = 7.0f;
    const int panels = gemm_panels(&ga), panel_floats = k * ga.nr;
    assert_true(panels >= 2);
    gemm_weights g = gemm_pack_scaled_sum(&ga, scale, &gb, 1, panels, got);
    assert_int_equal(g.n, n);
    assert_int_equal(g.k, k);
    assert_int_equal(g.path, p);
    assert_ptr_equal(g.panels, got);
    for (int i = 0; i < panel_floats; i++)
        assert_true(got[i] == 7.0f); /* panel 0 not in the range: untouched */
    gemm_pack_scaled_sum(&ga, scale, &gb, 0, 1, got);
    for (size_t i = 0; i < (size_t)panels * panel_floats; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-6f * (1.0f + fabsf(want[i]))))
            fail_msg("%s: packed float %zu: got %.9g want %.9g", gemm_path_name(p), i,
                     (double)got[i], (double)want[i]);
    float *c = malloc((size_t)m * n * sizeof(float));
    double *ref = malloc((size_t)m * n * sizeof(double));
    assert_non_null(c);
    assert_non_null(ref);
    gemm_run(&g, m, x, k, false, c, n, NULL);
    ref_product(m, n, k, x, k, sum, NULL, n, ref);
    for (int i = 0; i < m * n; i++)
        assert_true(fabs(c[i] - ref[i]) <= 1e-5 * (1.0 + fabs(ref[i])));
    free(a);
    free(b);
    free(scale);
    free(x);
    free(sum);
    free(pa);
    free(pb);
    free(want);
    free(got);
    free(c);
    free(ref);
}

static void test_plain(void **state)
{
    (void)state;
    check_products(GEMM_PATH_PLAIN);
    check_row_counts(GEMM_PATH_PLAIN);
    check_epilogues(GEMM_PATH_PLAIN);
    check_pack_transposed(GEMM_PATH_PLAIN);
    check_pack_scaled_sum(GEMM_PATH_PLAIN);
}

static void test_avx2(void **state)
{
    (void)state;
    check_products(GEMM_PATH_AVX2);
    check_row_counts(GEMM_PATH_AVX2);
    check_epilogues(GEMM_PATH_AVX2);
    check_pack_transposed(GEMM_PATH_AVX2);
    check_pack_scaled_sum(GEMM_PATH_AVX2);
}

static void test_avx512(void **state)
{
    (void)state;
    check_products(GEMM_PATH_AVX512);
    check_row_counts(GEMM_PATH_AVX512);
    check_epilogues(GEMM_PATH_AVX512);
    check_pack_transposed(GEMM_PATH_AVX512);
    check_pack_scaled_sum(GEMM_PATH_AVX512);
}

/* Names round-trip; the best path is supported; unknown names are refused. */
static void test_paths(void **state)
{
    (void)state;
    for (int p = 0; p < GEMM_N_PATHS; p++) {
        gemm_path back;
        assert_true(gemm_path_parse(gemm_path_name((gemm_path)p), &back));
        assert_int_equal(back, p);
        assert_true(gemm_path_rows((gemm_path)p) >= 1);
    }
    gemm_path q = GEMM_PATH_PLAIN;
    assert_false(gemm_path_parse("avx1024", &q));
    assert_false(gemm_path_parse("", &q));
    assert_true(gemm_path_supported(GEMM_PATH_PLAIN));
    assert_true(gemm_path_supported(gemm_path_best()));
    char flags[64];
    gemm_cpu_flags(flags, sizeof flags);
    if (gemm_path_supported(GEMM_PATH_AVX512))
        assert_non_null(strstr(flags, "avx512f"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avx512),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
