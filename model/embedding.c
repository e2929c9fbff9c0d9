/* embedding: validating an int8 table's scales (and a factored table's
 * projection), and reading one row of an F32 or int8 table as F32. The
 * dequantizing loop is plain C that the compiler vectorises (int8 -> int32 ->
 * float, times one broadcast scale per block), as are a factored row's dot
 * products (eight independent partial sums); it runs once per token, next to
 * a LayerNorm over the same row. */
#include "embedding.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* "[d0,d1,...]" of a tensor's shape into buf (at most 4 dims, then ",..."). */
static void format_shape(const safetensors_tensor *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "[");
    for (int i = 0; i < t->n_dims && i < 4; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%lld", i ? "," : "",
                 (long long)t->shape[i]);
    snprintf(buf + strlen(buf), cap - strlen(buf), "%s]", t->n_dims > 4 ? ",..." : "");
}

int embedding_check_i8(const safetensors_tensor *q, const safetensors_tensor *scale, int64_t n_rows,
                       int64_t width, int *n_groups, char *err, size_t err_cap)
{
    assert(q->dtype == SAFETENSORS_I8 && q->n_dims == 2 && q->shape[0] == n_rows &&
           q->shape[1] == width);
    if (scale == NULL) {
        snprintf(err, err_cap, "tensor '%s' is I8, but its scales '%s%s' are missing", q->name,
                 q->name, EMBEDDING_SCALE_SUFFIX);
        return -1;
    }
    if (scale->dtype != SAFETENSORS_F32) {
        snprintf(err, err_cap, "tensor '%s' has dtype %s, expected F32", scale->name,
                 safetensors_dtype_name(scale->dtype));
        return -1;
    }
    const int64_t groups = scale->n_dims == 2 ? scale->shape[1] : 0;
    if (scale->n_dims != 2 || scale->shape[0] != n_rows || groups < 1 || groups > width ||
        width % groups != 0) {
        char have[128];
        format_shape(scale, have, sizeof have);
        snprintf(err, err_cap, "tensor '%s' has shape %s: expected [%lld,G] with G dividing %lld",
                 scale->name, have, (long long)n_rows, (long long)width);
        return -1;
    }
    /* n_rows * groups <= n_rows * width = q's element count: no overflow. */
    const unsigned char *p = scale->data;
    for (size_t i = 0; i < scale->n_elements; i++) {
        float s;
        memcpy(&s, p + i * sizeof s, sizeof s);
        /* NaN fails both comparisons; the bound keeps q * s finite for every q. */
        if (!(s >= 0.0f && s <= EMBEDDING_MAX_SCALE)) {
            snprintf(err, err_cap,
                     "tensor '%s': scale [%zu,%zu] is %.9g; scales must be in [0, %.9g] (finite, "
                     "and q * scale finite for every int8 q)",
                     scale->name, i / (size_t)groups, i % (size_t)groups, (double)s,
                     (double)EMBEDDING_MAX_SCALE);
            return -1;
        }
    }
    *n_groups = (int)groups;
    return 0;
}

int embedding_check_rank(const safetensors_tensor *q, int64_t n_rows, int64_t dim, int *rank,
                         char *err, size_t err_cap)
{
    assert(q->dtype == SAFETENSORS_I8 && dim >= 1);
    const int64_t k = q->n_dims == 2 ? q->shape[1] : 0;
    if (q->n_dims != 2 || q->shape[0] != n_rows || k < 1 || k > dim || k > EMBEDDING_MAX_RANK) {
        const bool capped = dim > EMBEDDING_MAX_RANK;
        char have[128];
        format_shape(q, have, sizeof have);
        snprintf(err, err_cap,
                 "tensor '%s' has shape %s: with a projection it must be [%lld,K] with 1 <= K <= "
                 "%lld%s",
                 q->name, have, (long long)n_rows,
                 capped ? (long long)EMBEDDING_MAX_RANK : (long long)dim,
                 capped ? " (the largest rank the engine reads)" : "");
        return -1;
    }
    *rank = (int)k;
    return 0;
}

/* Element i of an F32 tensor, which may be unaligned. */
static float f32_at(const safetensors_tensor *t, size_t i)
{
    float v;
    memcpy(&v, (const unsigned char *)t->data + i * sizeof v, sizeof v);
    return v;
}

int embedding_check_projection(const safetensors_tensor *projection,
                               const safetensors_tensor *scale, int64_t dim, int64_t rank,
                               char *err, size_t err_cap)
{
    assert(scale->dtype == SAFETENSORS_F32 && scale->n_dims == 2 && rank >= 1 &&
           rank <= EMBEDDING_MAX_RANK);
    if (projection->dtype != SAFETENSORS_F32) {
        snprintf(err, err_cap, "tensor '%s' has dtype %s, expected F32", projection->name,
                 safetensors_dtype_name(projection->dtype));
        return -1;
    }
    if (projection->n_dims != 2 || projection->shape[0] != dim || projection->shape[1] != rank) {
        char have[128];
        format_shape(projection, have, sizeof have);
        snprintf(err, err_cap, "tensor '%s' has shape %s, expected [%lld,%lld]", projection->name,
                 have, (long long)dim, (long long)rank);
        return -1;
    }
    float max_p = 0.0f;
    for (size_t i = 0; i < projection->n_elements; i++) {
        const float p = f32_at(projection, i);
        if (!isfinite(p)) {
            snprintf(err, err_cap,
                     "tensor '%s': element [%zu,%zu] is %.9g; projection values must be finite",
                     projection->name, i / (size_t)rank, i % (size_t)rank, (double)p);
            return -1;
        }
        if (fabsf(p) > max_p)
            max_p = fabsf(p);
    }
    if (max_p == 0.0f) /* every row reads as zeros, whatever the scales */
        return 0;
    /* |q * s| <= 128 s, so each product is at most FLT_MAX / (2K) and their
     * sum, with the relative rounding error of K float additions (< K *
     * 2^-24 < 1), stays below FLT_MAX. In double, the bound is exact enough. */
    const double bound = (double)FLT_MAX / (256.0 * (double)rank * (double)max_p);
    const size_t groups = (size_t)scale->shape[1];
    for (size_t i = 0; i < scale->n_elements; i++) {
        const float s = f32_at(scale, i);
        if ((double)s > bound) {
            snprintf(err, err_cap,
                     "tensor '%s': scale [%zu,%zu] is %.9g, above FLT_MAX / (256 * K * max|P|) = "
                     "%.9g (K = %lld, max|P| = %.9g in '%s'), so the table's rows could overflow",
                     scale->name, i / groups, i % groups, (double)s, bound, (long long)rank,
                     (double)max_p, projection->name);
            return -1;
        }
    }
    return 0;
}

const void *embedding_row(const embedding_table *t, int32_t id)
{
    assert(id >= 0 && id < t->n_rows);
    switch (t->dtype) {
    case EMBEDDING_F32:
        return t->f32 + (size_t)id * (size_t)t->dim;
    case EMBEDDING_I8:
        return t->i8 + (size_t)id * (size_t)t->width;
    }
    return NULL;
}

size_t embedding_row_bytes(const embedding_table *t)
{
    switch (t->dtype) {
    case EMBEDDING_F32:
        return (size_t)t->dim * sizeof(float);
    case EMBEDDING_I8:
        return (size_t)t->width;
    }
    return 0;
}

/* out[j] = q[j] * scale[j / block] for j < n. */
static void dequantize(const int8_t *q, const float *scale, size_t n, size_t block, float *out)
{
    for (size_t b = 0; b < n; b += block) {
        const float s = *scale++;
        for (size_t j = b; j < b + block; j++)
            out[j] = (float)q[j] * s;
    }
}

/* sum a[i] * b[i] over i < n, in eight independent partial sums so that the
 * compiler can keep them in vector registers without reassociating floats. */
static float dot(const float *a, const float *b, size_t n)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float tail = 0.0f;
    for (; i < n; i++)
        tail += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

void embedding_row_read(const embedding_table *t, const void *row, float *out)
{
    const size_t d = (size_t)t->dim;
    switch (t->dtype) {
    case EMBEDDING_F32:
        memcpy(out, row, d * sizeof(float));
        return;
    case EMBEDDING_I8: {
        const int8_t *q = row;
        const size_t w = (size_t)t->width, block = (size_t)t->block;
        const size_t r = (size_t)(q - t->i8) / w;
        const float *scale = t->scale + r * (w / block);
        if (t->projection == NULL) {
            dequantize(q, scale, w, block, out);
            return;
        }
        assert(w <= EMBEDDING_MAX_RANK && block >= 1 && w % block == 0);
        float f[EMBEDDING_MAX_RANK];
        dequantize(q, scale, w, block, f);
        for (size_t j = 0; j < d; j++)
            out[j] = dot(t->projection + j * w, f, w);
        return;
    }
    }
}

void embedding_row_read_stored(const embedding_table *t, const void *row, float *out)
{
    if (t->dtype == EMBEDDING_F32 || t->projection == NULL) {
        embedding_row_read(t, row, out);
        return;
    }
    const int8_t *q = row;
    const size_t w = (size_t)t->width, block = (size_t)t->block;
    dequantize(q, t->scale + (size_t)(q - t->i8) / w * (w / block), w, block, out);
}

size_t embedding_table_bytes(const embedding_table *t)
{
    const size_t v = (size_t)t->n_rows;
    switch (t->dtype) {
    case EMBEDDING_F32:
        return v * (size_t)t->dim * sizeof(float);
    case EMBEDDING_I8: {
        const size_t w = (size_t)t->width;
        const size_t projection = t->projection ? (size_t)t->dim * w * sizeof(float) : 0;
        return v * w + v * (w / (size_t)t->block) * sizeof(float) + projection;
    }
    }
    return 0;
}
