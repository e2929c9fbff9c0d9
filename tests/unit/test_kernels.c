/* test_kernels: every kernel of model/kernels.c against a naive
 * double-precision reference written here. The transcendental functions are
 * swept over dense grids including their tails, with the maximum absolute
 * (or relative) error asserted. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels.h"

/* Deterministic uniform floats in [lo, hi) (xorshift; no global state). */
static float rnd(uint64_t *s, float lo, float hi)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return lo + (hi - lo) * (float)((*s >> 40) * (1.0 / 16777216.0));
}

static float *rnd_vec(uint64_t *s, size_t n, float lo, float hi)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = rnd(s, lo, hi);
    return v;
}

/* A dense grid over [lo, hi] with n points, in floats. */
static float *grid(double lo, double hi, size_t n)
{
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * (double)i / (double)(n - 1));
    return x;
}

static double gelu_ref(double x)
{
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

/* ---- transcendental maps over dense grids ----------------------------------- */

static void test_erf_grid(void **state)
{
    (void)state;
    const size_t n = 4000001;
    float *x = grid(-12.0, 12.0, n), *y = malloc(n * sizeof *y);
    assert_non_null(y);
    kernels_erf(x, y, n);
    double worst = 0.0, at = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)y[i] - erf((double)x[i]));
        if (e > worst) {
            worst = e;
            at = x[i];
        }
    }
    if (worst > 1.5e-7)
        fail_msg("erf: max abs error %.3g at x = %.9g", worst, at);
    /* Exact values and symmetry. */
    const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, INFINITY, -INFINITY, 3.9f, 100.0f};
    float out[8];
    kernels_erf(special, out, 8);
    assert_true(out[0] == 0.0f && out[1] == 0.0f);
    assert_true(fabsf(out[2] - 1.1283791e-30f) < 1e-36f);
    assert_true(out[3] == -out[2]);
    assert_true(fabsf(out[4] - 1.0f) < 1e-7f && fabsf(out[5] + 1.0f) < 1e-7f);
    assert_true(fabsf(out[7] - 1.0f) < 1e-7f);
    for (size_t i = 0; i < n; i += 997) {
        float a = x[i], b = -x[i], ya, yb;
        kernels_erf(&a, &ya, 1);
        kernels_erf(&b, &yb, 1);
        assert_true(ya == -yb);
    }
    free(x);
    free(y);
}

static void test_gelu_grid(void **state)
{
    (void)state;
    const size_t n = 4000001;
    float *x = grid(-20.0, 20.0, n), *y = malloc(n * sizeof *y);
    assert_non_null(y);
    kernels_gelu(x, y, n);
    double worst = 0.0, at = 0.0;
    for (size_t i = 0; i < n; i++) {
        /* absolute, scaled by |x| above 1 (one float ulp of x is ~1.2e-7 |x|) */
        const double ref = gelu_ref((double)x[i]);
        const double e = fabs((double)y[i] - ref) / fmax(1.0, fabs((double)x[i]));
        if (e > worst) {
            worst = e;
            at = x[i];
        }
    }
    if (worst > 1.5e-7)
        fail_msg("gelu: max scaled error %.3g at x = %.9g", worst, at);
    free(x);
    free(y);
}

static void test_tanh_grid(void **state)
{
    (void)state;
    const size_t n = 4000001;
    float *x = grid(-30.0, 30.0, n), *y = malloc(n * sizeof *y);
    assert_non_null(y);
    kernels_tanh(x, y, n);
    double worst = 0.0, at = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)y[i] - tanh((double)x[i]));
        if (e > worst) {
            worst = e;
            at = x[i];
        }
        assert_true(y[i] >= -1.0f && y[i] <= 1.0f);
    }
    if (worst > 2e-7)
        fail_msg("tanh: max abs error %.3g at x = %.9g", worst, at);
    /* Small arguments keep relative accuracy (odd polynomial branch). */
    const float small[] = {1e-3f, -1e-6f, 0.3f, 0.6f};
    float out[4];
    kernels_tanh(small, out, 4);
    for (int i = 0; i < 4; i++)
        assert_true(fabs(out[i] - tanh(small[i])) <= 3e-7 * fabs(tanh(small[i])));
    free(x);
    free(y);
}

static void test_exp_grid(void **state)
{
    (void)state;
    const size_t n = 4000001;
    float *x = grid(-87.3, 88.3, n), *y = malloc(n * sizeof *y);
    assert_non_null(y);
    kernels_exp(x, y, n);
    double worst = 0.0, at = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double ref = exp((double)x[i]);
        const double e = fabs((double)y[i] - ref) / ref;
        if (e > worst) {
            worst = e;
            at = x[i];
        }
    }
    if (worst > 2.5e-7)
        fail_msg("exp: max rel error %.3g at x = %.9g", worst, at);
    /* The masked-softmax case: exp(-10000) and below FLT_MIN are exactly 0. */
    const float tails[] = {-10000.0f, -88.0f, -INFINITY, 0.0f, 89.0f, INFINITY};
    float out[6];
    kernels_exp(tails, out, 6);
    assert_true(out[0] == 0.0f && out[1] == 0.0f && out[2] == 0.0f);
    assert_true(out[3] == 1.0f);
    assert_true(isinf(out[4]) && isinf(out[5]));
    free(x);
    free(y);
}

/* ---- reductions --------------------------------------------------------------- */

static void test_sum_dot(void **state)
{
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15u;
    const size_t lens[] = {0, 1, 3, 15, 16, 17, 31, 100, 1000, 4099};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        const size_t n = lens[k];
        float *x = rnd_vec(&s, n, -1.0f, 1.0f), *y = rnd_vec(&s, n, -2.0f, 2.0f);
        double ref_s = 0.0, ref_d = 0.0, abs_s = 0.0, abs_d = 0.0;
        for (size_t i = 0; i < n; i++) {
            ref_s += x[i];
            abs_s += fabs(x[i]);
            ref_d += (double)x[i] * y[i];
            abs_d += fabs((double)x[i] * y[i]);
        }
        /* blocked float sums: error <= (n/16 + 16) ulp of the absolute sum */
        const double bound_s = ((double)n / 16 + 16) * 6e-8 * abs_s + 1e-30;
        const double bound_d = ((double)n / 16 + 16) * 1.2e-7 * abs_d + 1e-30;
        assert_true(fabs(kernels_sum(x, n) - ref_s) <= bound_s);
        assert_true(fabs(kernels_dot(x, y, n) - ref_d) <= bound_d);
        free(x);
        free(y);
    }
}

/* ---- row kernels --------------------------------------------------------------- */

static void layernorm_ref(const float *x, const float *add, int d, const float *g, const float *b,
                          double eps, double *out)
{
    double mean = 0.0, var = 0.0;
    for (int j = 0; j < d; j++)
        mean += (double)x[j] + (add ? add[j] : 0.0);
    mean /= d;
    for (int j = 0; j < d; j++) {
        const double c = (double)x[j] + (add ? add[j] : 0.0) - mean;
        var += c * c;
    }
    var /= d; /* biased, as torch.nn.LayerNorm */
    for (int j = 0; j < d; j++)
        out[j] = ((double)x[j] + (add ? add[j] : 0.0) - mean) / sqrt(var + eps) * g[j] + b[j];
}

static void test_add_layernorm(void **state)
{
    (void)state;
    uint64_t s = 12345;
    const int dims[] = {1, 2, 7, 16, 32, 33, 256, 777};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        const int d = dims[k];
        for (int with_add = 0; with_add < 2; with_add++) {
            float *x = rnd_vec(&s, (size_t)d, -3.0f, 5.0f);
            float *add = with_add ? rnd_vec(&s, (size_t)d, -1.0f, 1.0f) : NULL;
            float *g = rnd_vec(&s, (size_t)d, 0.5f, 1.5f), *b = rnd_vec(&s, (size_t)d, -1.0f, 1.0f);
            double *ref = malloc((size_t)d * sizeof *ref);
            assert_non_null(ref);
            layernorm_ref(x, add, d, g, b, 1e-12, ref);
            kernels_add_layernorm(x, add, d, g, b, 1e-12f);
            for (int j = 0; j < d; j++)
                if (fabs(x[j] - ref[j]) > 2e-6 * (1.0 + fabs(ref[j])))
                    fail_msg("layernorm d=%d add=%d [%d]: %.9g vs %.9g", d, with_add, j,
                             (double)x[j], ref[j]);
            free(x);
            free(add);
            free(g);
            free(b);
            free(ref);
        }
    }
    /* The rows variant equals the single-row kernel, row by row, and leaves
     * the columns past d alone. */
    enum { RR = 4, RD = 48, RLD = 50 };
    float *rows = rnd_vec(&s, RR * RLD, -2.0f, 3.0f), *copy = malloc(RR * RLD * sizeof *copy);
    float *rb = rnd_vec(&s, RD, -1, 1), *rg = rnd_vec(&s, RD, 0.5f, 1.5f);
    float *rbeta = rnd_vec(&s, RD, -1, 1);
    assert_non_null(copy);
    memcpy(copy, rows, RR * RLD * sizeof *copy);
    kernels_layernorm_rows(rows, RLD, RR, RD, rb, rg, rbeta, 1e-12f);
    for (int i = 0; i < RR; i++) {
        float one_row[RLD];
        memcpy(one_row, copy + i * RLD, sizeof one_row);
        kernels_add_layernorm(one_row, rb, RD, rg, rbeta, 1e-12f);
        assert_memory_equal(rows + i * RLD, one_row, RD * sizeof(float));
        assert_true(rows[i * RLD + RD] == copy[i * RLD + RD]);
    }
    free(rows);
    free(copy);
    free(rb);
    free(rg);
    free(rbeta);

    /* A constant row has variance 0: the output is beta, not NaN. */
    float row[8] = {2, 2, 2, 2, 2, 2, 2, 2}, g[8], b[8];
    for (int j = 0; j < 8; j++) {
        g[j] = 1.0f + (float)j;
        b[j] = -0.5f * (float)j;
    }
    kernels_add_layernorm(row, NULL, 8, g, b, 1e-12f);
    for (int j = 0; j < 8; j++)
        assert_true(row[j] == b[j]);
    /* A large eps matters (it is added to the variance, not the std). */
    float r2[2] = {-1.0f, 1.0f}, one[2] = {1, 1}, zero[2] = {0, 0};
    kernels_add_layernorm(r2, NULL, 2, one, zero, 1.0f);
    assert_true(fabsf(r2[1] - (float)(1.0 / sqrt(2.0))) < 1e-7f);
}

static void test_bias_rows(void **state)
{
    (void)state;
    uint64_t s = 777;
    enum { R = 5, D = 37, LD = 41 };
    float *x = rnd_vec(&s, R * LD, -6.0f, 6.0f), *orig = malloc(R * LD * sizeof *orig);
    float *bias = rnd_vec(&s, D, -1.0f, 1.0f);
    assert_non_null(orig);
    memcpy(orig, x, R * LD * sizeof *orig);

    kernels_bias_add_rows(x, LD, R, D, bias);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < LD; j++)
            assert_true(x[i * LD + j] == (j < D ? orig[i * LD + j] + bias[j] : orig[i * LD + j]));

    memcpy(x, orig, R * LD * sizeof *orig);
    kernels_bias_gelu_rows(x, LD, R, D, bias);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < LD; j++) {
            if (j >= D) {
                assert_true(x[i * LD + j] == orig[i * LD + j]);
                continue;
            }
            const float in = orig[i * LD + j] + bias[j];
            const double ref = gelu_ref((double)in);
            assert_true(fabs(x[i * LD + j] - ref) <= 1.5e-7 * fmax(1.0, fabs((double)in)));
        }

    float *g = rnd_vec(&s, D, -2.0f, 2.0f);
    /* in place, with and without bias */
    memcpy(x, orig, R * LD * sizeof *orig);
    kernels_bias_mul_rows(x, LD, x, LD, R, D, bias, g);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < LD; j++)
            assert_true(x[i * LD + j] ==
                        (j < D ? (orig[i * LD + j] + bias[j]) * g[j] : orig[i * LD + j]));
    memcpy(x, orig, R * LD * sizeof *orig);
    kernels_bias_mul_rows(x, LD, x, LD, R, D, NULL, g);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < D; j++)
            assert_true(x[i * LD + j] == orig[i * LD + j] * g[j]);
    /* out of place: src untouched, dst columns past d untouched */
    float *dst = calloc(R * LD, sizeof *dst);
    assert_non_null(dst);
    kernels_bias_mul_rows(dst, LD, orig, LD, R, D, bias, g);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < LD; j++)
            assert_true(dst[i * LD + j] == (j < D ? (orig[i * LD + j] + bias[j]) * g[j] : 0.0f));
    free(dst);
    free(g);
    free(x);
    free(orig);
    free(bias);
}

/* dst = a * scale (per row) + b, out of place and in place on a and on b;
 * one rounding of a fused multiply-add allowed. */
static void test_scale_rows_add(void **state)
{
    (void)state;
    uint64_t s = 4321;
    enum { R = 7, D = 45 };
    float *a = rnd_vec(&s, R * D, -3.0f, 3.0f), *b = rnd_vec(&s, R * D, -3.0f, 3.0f);
    float *scale = rnd_vec(&s, R, -2.0f, 2.0f), *dst = malloc(R * D * sizeof *dst);
    double *want = malloc(R * D * sizeof *want);
    assert_non_null(dst);
    assert_non_null(want);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < D; j++)
            want[i * D + j] = (double)a[i * D + j] * scale[i] + b[i * D + j];
    for (int variant = 0; variant < 3; variant++) {
        float *out = dst;
        memcpy(dst, variant == 2 ? b : a, R * D * sizeof *dst);
        if (variant == 0)
            kernels_scale_rows_add(out, a, scale, b, R, D);
        else if (variant == 1)
            kernels_scale_rows_add(out, out, scale, b, R, D);
        else
            kernels_scale_rows_add(out, a, scale, out, R, D);
        for (int i = 0; i < R * D; i++)
            if (!(fabs(out[i] - want[i]) <= 6e-8 * (fabs(want[i]) + 6.0 * 2.0)))
                fail_msg("variant %d [%d]: got %.9g want %.9g", variant, i, (double)out[i],
                         want[i]);
    }
    free(a);
    free(b);
    free(scale);
    free(dst);
    free(want);
}

static void test_softmax_masked_cols(void **state)
{
    (void)state;
    uint64_t s = 4242;
    const int shapes[][2] = {{1, 1}, {1, 16}, {2, 4}, {17, 16}, {128, 16}, {9, 5}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int n = shapes[k][0], h = shapes[k][1];
        float *a = rnd_vec(&s, (size_t)n * h, -8.0f, 8.0f), *bias = rnd_vec(&s, (size_t)h, -1, 1);
        float *mask = malloc((size_t)n * sizeof *mask), *tmp = malloc(2 * (size_t)h * sizeof *tmp);
        double *ref = malloc((size_t)n * h * sizeof *ref);
        assert_non_null(mask);
        assert_non_null(tmp);
        assert_non_null(ref);
        for (int i = 0; i < n; i++)
            mask[i] = (i % 3 == 1) ? 0.0f : 1.0f; /* row 1, 4, ... are padding */
        const float inv_scale = 0.35355339f;      /* 1/sqrt(8) */
        for (int c = 0; c < h; c++) {
            double mx = -INFINITY, sum = 0.0;
            for (int i = 0; i < n; i++) {
                double v =
                    ((double)a[i * h + c] + bias[c]) * inv_scale + (1.0 - mask[i]) * -10000.0;
                ref[i * h + c] = v;
                mx = fmax(mx, v);
            }
            for (int i = 0; i < n; i++) {
                ref[i * h + c] = exp(ref[i * h + c] - mx);
                sum += ref[i * h + c];
            }
            for (int i = 0; i < n; i++)
                ref[i * h + c] /= sum;
        }
        kernels_softmax_masked_cols(a, n, h, bias, inv_scale, mask, tmp);
        for (int c = 0; c < h; c++) {
            double total = 0.0;
            for (int i = 0; i < n; i++) {
                const float v = a[i * h + c];
                total += v;
                if (fabs(v - ref[i * h + c]) > 1e-6 * ref[i * h + c] + 1e-9)
                    fail_msg("softmax %dx%d [%d,%d]: %.9g vs %.9g", n, h, i, c, (double)v,
                             ref[i * h + c]);
                if (mask[i] == 0.0f && n > 1)
                    assert_true(v == 0.0f); /* padding gets exactly 0 */
            }
            assert_true(fabs(total - 1.0) < 1e-5);
        }
        free(a);
        free(bias);
        free(mask);
        free(tmp);
        free(ref);
    }
    /* Every row masked: finite weights that still sum to 1 (the official
     * all-padding case; the pooling then zeroes the result). */
    float a[6] = {0.1f, 2.0f, -3.0f, 0.5f, 1.0f, 0.0f}, bias[2] = {0, 0}, mask[3] = {0, 0, 0};
    float tmp[4];
    kernels_softmax_masked_cols(a, 3, 2, bias, 1.0f, mask, tmp);
    for (int c = 0; c < 2; c++) {
        double total = 0;
        for (int i = 0; i < 3; i++) {
            assert_true(isfinite(a[i * 2 + c]));
            total += a[i * 2 + c];
        }
        assert_true(fabs(total - 1.0) < 1e-6);
    }
}

static void test_head_weighted_sum(void **state)
{
    (void)state;
    uint64_t s = 99;
    enum { N = 13, H = 4, DH = 8, D = H * DH, LD = 2 * D };
    float *w = rnd_vec(&s, N * H, 0.0f, 1.0f), *x = rnd_vec(&s, N * LD, -3.0f, 3.0f);
    float g[D];
    kernels_head_weighted_sum(g, w, x, LD, N, H, DH);
    for (int f = 0; f < D; f++) {
        double ref = 0.0;
        for (int i = 0; i < N; i++)
            ref += (double)w[i * H + f / DH] * x[i * LD + f];
        assert_true(fabs(g[f] - ref) < 1e-5);
    }
    free(w);
    free(x);
}

/* Whole-row sums per head, and the global key's scaled mat-vec, against
 * double loops. */
static void test_head_row_sums(void **state)
{
    (void)state;
    uint64_t s = 4242;
    enum { N = 11, H = 3, DH = 7, D = H * DH, LDX = D + 5 };
    float *w = rnd_vec(&s, N * H, 0.0f, 1.0f), *x = rnd_vec(&s, N * LDX, -3.0f, 3.0f);
    float *wk = rnd_vec(&s, D * D, -1.0f, 1.0f), *bias = rnd_vec(&s, D, -1.0f, 1.0f);
    float *g = rnd_vec(&s, D, -2.0f, 2.0f);
    float y[H * D], wsum[H], g0[D];
    memcpy(g0, g, sizeof g0);
    kernels_head_row_sums(y, wsum, w, x, LDX, N, H, D);
    for (int h = 0; h < H; h++) {
        double ws = 0.0;
        for (int i = 0; i < N; i++)
            ws += w[i * H + h];
        assert_true(fabs(wsum[h] - ws) < 1e-5);
        for (int j = 0; j < D; j++) {
            double ref = 0.0;
            for (int i = 0; i < N; i++)
                ref += (double)w[i * H + h] * x[i * LDX + j];
            assert_true(fabs(y[h * D + j] - ref) < 1e-5);
        }
    }
    kernels_head_matvec_scale(g, wk, y, bias, wsum, D, DH);
    for (int j = 0; j < D; j++) {
        const int h = j / DH;
        double dot = 0.0;
        for (int t = 0; t < D; t++)
            dot += (double)wk[j * D + t] * y[h * D + t];
        const double ref = g0[j] * (dot + (double)bias[j] * wsum[h]);
        assert_true(fabs(g[j] - ref) < 1e-4 * (1.0 + fabs(ref)));
    }
    free(w);
    free(x);
    free(wk);
    free(bias);
    free(g);
}

static void test_tanh_dot_rows(void **state)
{
    (void)state;
    uint64_t s = 2024;
    enum { R = 6, D = 300, LD = 301 }; /* crosses the 64-element chunks */
    float *x = rnd_vec(&s, R * LD, -4.0f, 4.0f), *b1 = rnd_vec(&s, D, -1, 1);
    float *w2 = rnd_vec(&s, D, -1, 1), out[R];
    kernels_tanh_dot_rows(x, LD, R, D, b1, w2, 0.25f, out);
    for (int i = 0; i < R; i++) {
        double ref = 0.25;
        for (int j = 0; j < D; j++)
            ref += tanh((double)x[i * LD + j] + b1[j]) * w2[j];
        assert_true(fabs(out[i] - ref) < 2e-5);
    }
    free(x);
    free(b1);
    free(w2);
}

static void test_attention_pool(void **state)
{
    (void)state;
    uint64_t s = 31337;
    enum { N = 11, D = 19, LD = 23 };
    float *x = rnd_vec(&s, N * LD, -2.0f, 2.0f), score[N], mask[N], out[D];
    double sc[N];
    for (int i = 0; i < N; i++) {
        score[i] = rnd(&s, -5.0f, 40.0f); /* large: no max-subtraction, still finite */
        sc[i] = score[i];
        mask[i] = i == 3 || i == 7 ? 0.0f : 1.0f;
    }
    kernels_attention_pool(score, mask, x, LD, N, D, out);
    double sum = 0.0;
    for (int i = 0; i < N; i++)
        sum += exp(sc[i]) * mask[i];
    for (int j = 0; j < D; j++) {
        double ref = 0.0;
        for (int i = 0; i < N; i++)
            ref += exp(sc[i]) * mask[i] / (sum + 1e-8) * x[i * LD + j];
        assert_true(fabs(out[j] - ref) < 2e-6);
    }
    assert_true(score[3] == 0.0f && score[7] == 0.0f);

    /* All masked: 0 / (0 + 1e-8) = exactly the zero vector. */
    for (int i = 0; i < N; i++) {
        score[i] = 1.0f;
        mask[i] = 0.0f;
    }
    kernels_attention_pool(score, mask, x, LD, N, D, out);
    for (int j = 0; j < D; j++)
        assert_true(out[j] == 0.0f);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_erf_grid),
        cmocka_unit_test(test_gelu_grid),
        cmocka_unit_test(test_tanh_grid),
        cmocka_unit_test(test_exp_grid),
        cmocka_unit_test(test_sum_dot),
        cmocka_unit_test(test_add_layernorm),
        cmocka_unit_test(test_bias_rows),
        cmocka_unit_test(test_scale_rows_add),
        cmocka_unit_test(test_softmax_masked_cols),
        cmocka_unit_test(test_head_weighted_sum),
        cmocka_unit_test(test_head_row_sums),
        cmocka_unit_test(test_tanh_dot_rows),
        cmocka_unit_test(test_attention_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
