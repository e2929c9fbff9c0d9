/* kernels: the elementwise and reduction work of the Fastformer engine, written
 * as plain loops that gcc/clang -O3 auto-vectorise (no intrinsics, no libm
 * calls inside loops). Float reductions use blocked partial sums so that they
 * vectorise without -ffast-math. Each kernel is checked against a naive
 * double-precision reference in tests/unit/test_kernels.c.
 * Pure functions of their arguments: no allocation, no globals, thread-safe. */
#ifndef FF_KERNELS_H
#define FF_KERNELS_H

#include <stddef.h>

/* Elementwise maps over n floats; out may equal in.
 * kernels_exp: e^x, relative error ~2 ulp; 0 below -87.33, +inf above 88.72.
 * kernels_erf: erf(x), absolute error < 1e-7 everywhere (rational fit, |x| clamped at 4).
 * kernels_tanh: tanh(x), absolute error < 2e-7.
 * kernels_gelu: exact-erf GELU 0.5*x*(1+erf(x/sqrt(2))) as HF "gelu". */
void kernels_exp(const float *in, float *out, size_t n);
void kernels_erf(const float *in, float *out, size_t n);
void kernels_tanh(const float *in, float *out, size_t n);
void kernels_gelu(const float *in, float *out, size_t n);

/* Sum of x[0..n) and dot product of x and y, in float with blocked partial sums. */
float kernels_sum(const float *x, size_t n);
float kernels_dot(const float *x, const float *y, size_t n);

/* x = LayerNorm(x + add) over d features: biased variance, (v-mean)/sqrt(var+eps)*gamma+beta.
 * add may be NULL. In place on one row. */
void kernels_add_layernorm(float *x, const float *add, int d, const float *gamma, const float *beta,
                           float eps);

/* Rows of x (stride ld): x[i] = LayerNorm(x[i] + bias) as above; bias may be NULL. */
void kernels_layernorm_rows(float *x, int ld, int n_rows, int d, const float *bias,
                            const float *gamma, const float *beta, float eps);

/* Rows [0, n_rows) of x (row stride ld): x[i][j] += bias[j] for j < d. */
void kernels_bias_add_rows(float *x, int ld, int n_rows, int d, const float *bias);

/* Contiguous rows i < n_rows of d floats: dst[i][j] = a[i][j] * scale[i] + b[i][j]
 * (a matrix scaled along its rows plus another: gemm_pack_scaled_sum). dst may
 * equal a or b. */
void kernels_scale_rows_add(float *dst, const float *a, const float *scale, const float *b,
                            int n_rows, int d);

/* Rows of x (stride ld): x[i][j] = gelu(x[i][j] + bias[j]) for j < d. */
void kernels_bias_gelu_rows(float *x, int ld, int n_rows, int d, const float *bias);

/* Softmax over the rows of each column of a (n_rows, n_cols) block (row stride
 * n_cols), the Fastformer additive attention of one sequence:
 *   v[i][c] = (a[i][c] + bias[c]) * inv_scale + (1 - mask[i]) * -10000
 *   a[i][c] = exp(v[i][c] - max_i v) / sum_i exp(...)
 * col_tmp holds 2*n_cols floats of scratch. n_rows >= 1. */
void kernels_softmax_masked_cols(float *a, int n_rows, int n_cols, const float *bias,
                                 float inv_scale, const float *mask, float *col_tmp);

/* Per-head weighted sum of the rows of x (stride ldx, d = n_heads*head_dim
 * features): g[h*head_dim+j] = sum_i w[i][h] * x[i][h*head_dim+j], with w
 * (n_rows, n_heads). Overwrites g (d floats). */
void kernels_head_weighted_sum(float *g, const float *w, const float *x, int ldx, int n_rows,
                               int n_heads, int head_dim);

/* Weighted sums of whole rows of x (stride ldx, d features), one per head:
 * y[h][j] = sum_i w[i][h] * x[i][j] (y: n_heads rows of stride d) and
 * wsum[h] = sum_i w[i][h], with w (n_rows, n_heads). Overwrites y and wsum. */
void kernels_head_row_sums(float *y, float *wsum, const float *w, const float *x, int ldx,
                           int n_rows, int n_heads, int d);

/* The Fastformer global key from the head row sums (see fastformer.c):
 * g[j] *= dot(w[j], y[h]) + bias[j] * wsum[h] for j < d, h = j / head_dim,
 * with w (d, d) row-major (the key projection) and y (d / head_dim, d). */
void kernels_head_matvec_scale(float *g, const float *w, const float *y, const float *bias,
                               const float *wsum, int d, int head_dim);

/* Rows i < n_rows, j < d: dst[i][j] = (src[i][j] + bias[j]) * g[j]. bias may be
 * NULL; dst may equal src (in place, with ldd == lds). */
void kernels_bias_mul_rows(float *dst, int ldd, const float *src, int lds, int n_rows, int d,
                           const float *bias, const float *g);

/* Pooling scores: s[i] = dot(tanh(x[i] + b1), w2) + b2 for rows of x (stride ld). */
void kernels_tanh_dot_rows(const float *x, int ld, int n_rows, int d, const float *b1,
                           const float *w2, float b2, float *s);

/* AttentionPooling of one sequence as the official code computes it:
 * w[i] = exp(s[i]) * mask[i]; w /= (sum w + 1e-8); out = sum_i w[i] * x[i].
 * s is overwritten with the weights. out: d floats. No max-subtraction. */
void kernels_attention_pool(float *s, const float *mask, const float *x, int ld, int n_rows, int d,
                            float *out);

#endif
