/* kernels: vectorisable elementwise and reduction loops for the Fastformer
 * engine. The transcendental functions are branch-free scalar "lane" functions
 * (clamp, polynomial, select) so that loops calling them auto-vectorise; the
 * reductions keep 32 independent partial sums for the same reason
 * (float addition is not associative, so the compiler will not reorder a plain
 * sum without -ffast-math). */
#include "kernels.h"

/* The lane functions compute both sides of every select. GCC's default
 * -ftrapping-math forbids if-converting them (an unused side might raise a
 * floating-point exception), which would leave every loop here scalar. We never
 * read the FP exception flags, so drop that guarantee for this file only.
 * Clang does not model FP traps by default and needs nothing. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "fp-contract=fast")
#endif

#include <assert.h>
#include <stdint.h>
#include <string.h>

/* Each kernel body is compiled for AVX-512, AVX2 and baseline x86-64 and
 * picked at load time (an ifunc), since the build targets baseline x86-64.
 * The clones are static and called through plain exported wrappers: gcc and
 * clang name multiversioned symbols differently, so none may cross a TU.
 * -DKERNELS_NO_CLONES (make tsan) keeps only the baseline body: TSan would
 * instrument the ifunc resolvers, which run before its runtime starts. */
#if defined(__x86_64__) && !defined(KERNELS_NO_CLONES) &&                                          \
    (defined(__clang__) ? __clang_major__ >= 14 : __GNUC__ >= 6)
#define KERNELS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KERNELS_CLONES
#endif

#define KERNELS_CHUNK 64 /* elements per stack-buffered chunk */

/* ---- scalar lane functions (inlined into vector loops) ------------------- */

/* e^x (Cephes expf): x = n*ln2 + r with |r| <= ln2/2, degree-6 polynomial for
 * e^r, 2^n built in the exponent bits. Rounding uses the 1.5*2^23 trick
 * instead of rintf so no libm call blocks vectorisation. Results below
 * FLT_MIN flush to 0 (the -10000 attention mask must give exactly 0). */
static inline float exp_lane(float x)
{
    const float hi = 88.3762626647949f;  /* largest x with n <= 127 */
    const float lo = -87.3365447505531f; /* ln(FLT_MIN) */
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    float fx = xc * 1.44269504088896341f;
    fx = (fx + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = xc - fx * 0.693359375f;
    r = r - fx * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t n = (int32_t)fx;
    uint32_t bits = (uint32_t)(n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    y *= scale;
    y = x < lo ? 0.0f : y;
    y = x > hi ? __builtin_inff() : y;
    return y;
}

/* erf(x), two branches computed and one selected (so loops vectorise):
 *   |x| < 1:  x * P(x^2), P of degree 6;
 *   |x| >= 1: 1 - exp(-x^2) * S(|x| - 2.45), S ~ erfc(x) e^{x^2} of degree 9.
 * |x| is clamped at 3.9, where 1 - erf < 3.5e-8. The rounding of x^2 costs
 * at most x^2 * 6e-8 relative on erfc(x), i.e. < 1e-8 absolute. Coefficients
 * are a Lawson (minimax) fit in double; the float evaluation's max absolute
 * error is 1.3e-7 (asserted in tests/unit/test_kernels.c). */
static inline float erf_lane(float x)
{
    const float ax = x < 0.0f ? -x : x;
    const float xc = ax > 3.9f ? 3.9f : ax;
    const float t = xc * xc;
    float p = 7.647132588e-05f;
    p = p * t + -7.942361408e-04f;
    p = p * t + 5.179750267e-03f;
    p = p * t + -2.684859186e-02f;
    p = p * t + 1.128343046e-01f;
    p = p * t + -3.761260509e-01f;
    p = p * t + 1.128379107e+00f;
    const float small = xc * p;
    const float v = xc - 2.45f;
    float q = -2.799701178e-05f;
    q = q * v + -4.519747745e-05f;
    q = q * v + -1.156497383e-04f;
    q = q * v + 2.675613505e-04f;
    q = q * v + -7.230428164e-04f;
    q = q * v + 2.691971371e-03f;
    q = q * v + -8.521140553e-03f;
    q = q * v + 2.616820857e-02f;
    q = q * v + -7.690361887e-02f;
    q = q * v + 2.145871371e-01f;
    const float big = 1.0f - exp_lane(-t) * q;
    const float y = ax < 1.0f ? small : big;
    return x < 0.0f ? -y : y;
}

/* tanh(x) (Cephes tanhf): odd polynomial below |x| = 0.625, otherwise
 * 1 - 2/(e^{2|x|} + 1) with the sign restored. Both branches are computed and
 * one is selected, so it vectorises. */
static inline float tanh_lane(float x)
{
    const float ax = x < 0.0f ? -x : x;
    const float z = x * x;
    float small = -5.70498872745e-3f;
    small = small * z + 2.06390887954e-2f;
    small = small * z - 5.37397155531e-2f;
    small = small * z + 1.33314422036e-1f;
    small = small * z - 3.33332819422e-1f;
    small = small * z * x + x;
    const float e = exp_lane(2.0f * ax);
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0.0f ? -big : big;
    return ax < 0.625f ? small : big;
}

static inline float gelu_lane(float x)
{
    return 0.5f * x * (1.0f + erf_lane(x * 0.70710678118654752f));
}

/* ---- elementwise maps ----------------------------------------------------- */

KERNELS_CLONES static void exp_impl(const float *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = exp_lane(in[i]);
}

void kernels_exp(const float *in, float *out, size_t n)
{
    exp_impl(in, out, n);
}

KERNELS_CLONES static void erf_impl(const float *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = erf_lane(in[i]);
}

void kernels_erf(const float *in, float *out, size_t n)
{
    erf_impl(in, out, n);
}

KERNELS_CLONES static void tanh_impl(const float *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = tanh_lane(in[i]);
}

void kernels_tanh(const float *in, float *out, size_t n)
{
    tanh_impl(in, out, n);
}

KERNELS_CLONES static void gelu_impl(const float *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = gelu_lane(in[i]);
}

void kernels_gelu(const float *in, float *out, size_t n)
{
    gelu_impl(in, out, n);
}

/* ---- reductions ----------------------------------------------------------- */

/* Reductions use GNU vector types (gcc and clang; no intrinsics): two
 * independent 16-lane accumulators, lowered to whatever the clone's ISA has.
 * Vectors only pass through pointers, so no function has a vector ABI. */
typedef float kv16 __attribute__((vector_size(64)));

static inline void kv_load(kv16 *v, const float *p)
{
    memcpy(v, p, sizeof *v);
}

static inline float kv_hsum(const kv16 *a, const kv16 *b)
{
    float t[16], u[16];
    memcpy(t, a, sizeof t);
    memcpy(u, b, sizeof u);
    for (int k = 0; k < 16; k++)
        t[k] += u[k];
    for (int w = 8; w > 0; w /= 2)
        for (int k = 0; k < w; k++)
            t[k] += t[k + w];
    return t[0];
}

static inline float sum_blocked(const float *x, size_t n)
{
    kv16 a0 = {0}, a1 = {0}, v0, v1;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        kv_load(&v0, x + i);
        kv_load(&v1, x + i + 16);
        a0 += v0;
        a1 += v1;
    }
    if (i + 16 <= n) {
        kv_load(&v0, x + i);
        a0 += v0;
        i += 16;
    }
    float s = kv_hsum(&a0, &a1);
    for (; i < n; i++)
        s += x[i];
    return s;
}

static inline float dot_blocked(const float *x, const float *y, size_t n)
{
    kv16 a0 = {0}, a1 = {0}, v0, v1, w0, w1;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        kv_load(&v0, x + i);
        kv_load(&v1, x + i + 16);
        kv_load(&w0, y + i);
        kv_load(&w1, y + i + 16);
        a0 += v0 * w0;
        a1 += v1 * w1;
    }
    if (i + 16 <= n) {
        kv_load(&v0, x + i);
        kv_load(&w0, y + i);
        a0 += v0 * w0;
        i += 16;
    }
    float s = kv_hsum(&a0, &a1);
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

/* sum of (x[i] - mean)^2 */
static inline float sqdev_blocked(const float *x, size_t n, float mean)
{
    kv16 a0 = {0}, a1 = {0}, v0, v1;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        kv_load(&v0, x + i);
        kv_load(&v1, x + i + 16);
        v0 -= mean;
        v1 -= mean;
        a0 += v0 * v0;
        a1 += v1 * v1;
    }
    if (i + 16 <= n) {
        kv_load(&v0, x + i);
        v0 -= mean;
        a0 += v0 * v0;
        i += 16;
    }
    float s = kv_hsum(&a0, &a1);
    for (; i < n; i++)
        s += (x[i] - mean) * (x[i] - mean);
    return s;
}

KERNELS_CLONES static float sum_impl(const float *x, size_t n)
{
    return sum_blocked(x, n);
}

float kernels_sum(const float *x, size_t n)
{
    return sum_impl(x, n);
}

KERNELS_CLONES static float dot_impl(const float *x, const float *y, size_t n)
{
    return dot_blocked(x, y, n);
}

float kernels_dot(const float *x, const float *y, size_t n)
{
    return dot_impl(x, y, n);
}

/* ---- row kernels ---------------------------------------------------------- */

static inline void layernorm_row(float *x, const float *add, int d, const float *gamma,
                                 const float *beta, float eps)
{
    assert(d > 0);
    if (add)
        for (int j = 0; j < d; j++)
            x[j] += add[j];
    const float mean = sum_blocked(x, (size_t)d) / (float)d;
    const float var = sqdev_blocked(x, (size_t)d, mean) / (float)d;
    /* 1/sqrt via division keeps this libm-free; one value per row. */
    const float rstd = 1.0f / __builtin_sqrtf(var + eps);
    for (int j = 0; j < d; j++)
        x[j] = (x[j] - mean) * rstd * gamma[j] + beta[j];
}

KERNELS_CLONES static void add_layernorm_impl(float *x, const float *add, int d, const float *gamma,
                                              const float *beta, float eps)
{
    layernorm_row(x, add, d, gamma, beta, eps);
}

void kernels_add_layernorm(float *x, const float *add, int d, const float *gamma, const float *beta,
                           float eps)
{
    add_layernorm_impl(x, add, d, gamma, beta, eps);
}

KERNELS_CLONES static void layernorm_rows_impl(float *x, int ld, int n_rows, int d,
                                               const float *bias, const float *gamma,
                                               const float *beta, float eps)
{
    for (int i = 0; i < n_rows; i++)
        layernorm_row(x + (size_t)i * (size_t)ld, bias, d, gamma, beta, eps);
}

void kernels_layernorm_rows(float *x, int ld, int n_rows, int d, const float *bias,
                            const float *gamma, const float *beta, float eps)
{
    layernorm_rows_impl(x, ld, n_rows, d, bias, gamma, beta, eps);
}

KERNELS_CLONES static void bias_add_rows_impl(float *x, int ld, int n_rows, int d,
                                              const float *bias)
{
    for (int i = 0; i < n_rows; i++) {
        float *r = x + (size_t)i * (size_t)ld;
        for (int j = 0; j < d; j++)
            r[j] += bias[j];
    }
}

void kernels_bias_add_rows(float *x, int ld, int n_rows, int d, const float *bias)
{
    bias_add_rows_impl(x, ld, n_rows, d, bias);
}

KERNELS_CLONES static void scale_rows_add_impl(float *dst, const float *a, const float *scale,
                                               const float *b, int n_rows, int d)
{
    for (int i = 0; i < n_rows; i++) {
        const size_t at = (size_t)i * (size_t)d;
        const float si = scale[i];
        for (int j = 0; j < d; j++)
            dst[at + j] = a[at + j] * si + b[at + j];
    }
}

void kernels_scale_rows_add(float *dst, const float *a, const float *scale, const float *b,
                            int n_rows, int d)
{
    scale_rows_add_impl(dst, a, scale, b, n_rows, d);
}

KERNELS_CLONES static void bias_gelu_rows_impl(float *x, int ld, int n_rows, int d,
                                               const float *bias)
{
    for (int i = 0; i < n_rows; i++) {
        float *r = x + (size_t)i * (size_t)ld;
        for (int j = 0; j < d; j++)
            r[j] = gelu_lane(r[j] + bias[j]);
    }
}

void kernels_bias_gelu_rows(float *x, int ld, int n_rows, int d, const float *bias)
{
    bias_gelu_rows_impl(x, ld, n_rows, d, bias);
}

KERNELS_CLONES static void softmax_masked_cols_impl(float *a, int n_rows, int n_cols,
                                                    const float *bias, float inv_scale,
                                                    const float *mask, float *col_tmp)
{
    assert(n_rows >= 1 && n_cols >= 1);
    float *mx = col_tmp;
    float *sum = col_tmp + n_cols;
    for (int c = 0; c < n_cols; c++) {
        mx[c] = -__builtin_inff();
        sum[c] = 0.0f;
    }
    for (int i = 0; i < n_rows; i++) {
        float *r = a + (size_t)i * (size_t)n_cols;
        const float ext = (1.0f - mask[i]) * -10000.0f;
        for (int c = 0; c < n_cols; c++) {
            const float v = (r[c] + bias[c]) * inv_scale + ext;
            r[c] = v;
            mx[c] = v > mx[c] ? v : mx[c];
        }
    }
    for (int i = 0; i < n_rows; i++) {
        float *r = a + (size_t)i * (size_t)n_cols;
        for (int c = 0; c < n_cols; c++) {
            const float e = exp_lane(r[c] - mx[c]);
            r[c] = e;
            sum[c] += e;
        }
    }
    for (int c = 0; c < n_cols; c++)
        sum[c] = 1.0f / sum[c];
    for (int i = 0; i < n_rows; i++) {
        float *r = a + (size_t)i * (size_t)n_cols;
        for (int c = 0; c < n_cols; c++)
            r[c] *= sum[c];
    }
}

void kernels_softmax_masked_cols(float *a, int n_rows, int n_cols, const float *bias,
                                 float inv_scale, const float *mask, float *col_tmp)
{
    softmax_masked_cols_impl(a, n_rows, n_cols, bias, inv_scale, mask, col_tmp);
}

KERNELS_CLONES static void head_weighted_sum_impl(float *g, const float *w, const float *x, int ldx,
                                                  int n_rows, int n_heads, int head_dim)
{
    const int d = n_heads * head_dim;
    for (int j = 0; j < d; j++)
        g[j] = 0.0f;
    for (int i = 0; i < n_rows; i++) {
        const float *xr = x + (size_t)i * (size_t)ldx;
        const float *wr = w + (size_t)i * (size_t)n_heads;
        for (int h = 0; h < n_heads; h++) {
            const float wv = wr[h];
            const float *xs = xr + h * head_dim;
            float *gs = g + h * head_dim;
            for (int j = 0; j < head_dim; j++)
                gs[j] += wv * xs[j];
        }
    }
}

void kernels_head_weighted_sum(float *g, const float *w, const float *x, int ldx, int n_rows,
                               int n_heads, int head_dim)
{
    head_weighted_sum_impl(g, w, x, ldx, n_rows, n_heads, head_dim);
}

KERNELS_CLONES static void head_row_sums_impl(float *y, float *wsum, const float *w, const float *x,
                                              int ldx, int n_rows, int n_heads, int d)
{
    for (int h = 0; h < n_heads; h++) {
        wsum[h] = 0.0f;
        for (int j = 0; j < d; j++)
            y[(size_t)h * (size_t)d + j] = 0.0f;
    }
    for (int i = 0; i < n_rows; i++) {
        const float *xr = x + (size_t)i * (size_t)ldx;
        const float *wr = w + (size_t)i * (size_t)n_heads;
        for (int h = 0; h < n_heads; h++) {
            const float wv = wr[h];
            float *yh = y + (size_t)h * (size_t)d;
            wsum[h] += wv;
            for (int j = 0; j < d; j++)
                yh[j] += wv * xr[j];
        }
    }
}

void kernels_head_row_sums(float *y, float *wsum, const float *w, const float *x, int ldx,
                           int n_rows, int n_heads, int d)
{
    head_row_sums_impl(y, wsum, w, x, ldx, n_rows, n_heads, d);
}

KERNELS_CLONES static void head_matvec_scale_impl(float *g, const float *w, const float *y,
                                                  const float *bias, const float *wsum, int d,
                                                  int head_dim)
{
    for (int j = 0; j < d; j++) {
        const int h = j / head_dim;
        g[j] *= dot_blocked(w + (size_t)j * (size_t)d, y + (size_t)h * (size_t)d, (size_t)d) +
                bias[j] * wsum[h];
    }
}

void kernels_head_matvec_scale(float *g, const float *w, const float *y, const float *bias,
                               const float *wsum, int d, int head_dim)
{
    head_matvec_scale_impl(g, w, y, bias, wsum, d, head_dim);
}

KERNELS_CLONES static void bias_mul_rows_impl(float *dst, int ldd, const float *src, int lds,
                                              int n_rows, int d, const float *bias, const float *g)
{
    for (int i = 0; i < n_rows; i++) {
        float *o = dst + (size_t)i * (size_t)ldd;
        const float *r = src + (size_t)i * (size_t)lds;
        if (bias)
            for (int j = 0; j < d; j++)
                o[j] = (r[j] + bias[j]) * g[j];
        else
            for (int j = 0; j < d; j++)
                o[j] = r[j] * g[j];
    }
}

void kernels_bias_mul_rows(float *dst, int ldd, const float *src, int lds, int n_rows, int d,
                           const float *bias, const float *g)
{
    bias_mul_rows_impl(dst, ldd, src, lds, n_rows, d, bias, g);
}

KERNELS_CLONES static void tanh_dot_rows_impl(const float *x, int ld, int n_rows, int d,
                                              const float *b1, const float *w2, float b2, float *s)
{
    float t[KERNELS_CHUNK];
    for (int i = 0; i < n_rows; i++) {
        const float *r = x + (size_t)i * (size_t)ld;
        kv16 a0 = {0}, a1 = {0}, v0, v1, u0, u1;
        float tail = 0.0f;
        for (int j0 = 0; j0 < d; j0 += KERNELS_CHUNK) {
            const int m = d - j0 < KERNELS_CHUNK ? d - j0 : KERNELS_CHUNK;
            for (int k = 0; k < m; k++)
                t[k] = tanh_lane(r[j0 + k] + b1[j0 + k]);
            int k = 0;
            for (; k + 32 <= m; k += 32) {
                kv_load(&v0, t + k);
                kv_load(&v1, t + k + 16);
                kv_load(&u0, w2 + j0 + k);
                kv_load(&u1, w2 + j0 + k + 16);
                a0 += v0 * u0;
                a1 += v1 * u1;
            }
            for (; k < m; k++)
                tail += t[k] * w2[j0 + k];
        }
        s[i] = kv_hsum(&a0, &a1) + tail + b2;
    }
}

void kernels_tanh_dot_rows(const float *x, int ld, int n_rows, int d, const float *b1,
                           const float *w2, float b2, float *s)
{
    tanh_dot_rows_impl(x, ld, n_rows, d, b1, w2, b2, s);
}

KERNELS_CLONES static void attention_pool_impl(float *s, const float *mask, const float *x, int ld,
                                               int n_rows, int d, float *out)
{
    for (int i = 0; i < n_rows; i++)
        s[i] = exp_lane(s[i]) * mask[i];
    const float denom = sum_blocked(s, (size_t)n_rows) + 1e-8f;
    for (int i = 0; i < n_rows; i++)
        s[i] = s[i] / denom;
    for (int j = 0; j < d; j++)
        out[j] = 0.0f;
    for (int i = 0; i < n_rows; i++) {
        const float *r = x + (size_t)i * (size_t)ld;
        const float w = s[i];
        for (int j = 0; j < d; j++)
            out[j] += w * r[j];
    }
}

void kernels_attention_pool(float *s, const float *mask, const float *x, int ld, int n_rows, int d,
                            float *out)
{
    attention_pool_impl(s, mask, x, ld, n_rows, d, out);
}
