/* embedding: validating an int8 table's scales, and reading one row of an
 * F32 or int8 table as F32. The dequantizing loop is plain C that the
 * compiler vectorises (int8 -> int32 -> float, times one broadcast scale per
 * block); it runs once per token, next to a LayerNorm over the same row. */
#include "embedding.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

int embedding_check_i8(const safetensors_tensor *q, const safetensors_tensor *scale, int64_t n_rows,
                       int64_t dim, int *n_groups, char *err, size_t err_cap)
{
    assert(q->dtype == SAFETENSORS_I8 && q->n_dims == 2 && q->shape[0] == n_rows &&
           q->shape[1] == dim);
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
    if (scale->n_dims != 2 || scale->shape[0] != n_rows || groups < 1 || groups > dim ||
        dim % groups != 0) {
        char have[64] = "[";
        for (int i = 0; i < scale->n_dims && i < 4; i++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", i ? "," : "",
                     (long long)scale->shape[i]);
        snprintf(have + strlen(have), sizeof have - strlen(have), "%s]",
                 scale->n_dims > 4 ? ",..." : "");
        snprintf(err, err_cap, "tensor '%s' has shape %s: expected [%lld,G] with G dividing %lld",
                 scale->name, have, (long long)n_rows, (long long)dim);
        return -1;
    }
    /* n_rows * groups <= n_rows * dim = q's element count: no overflow. */
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

const void *embedding_row(const embedding_table *t, int32_t id)
{
    assert(id >= 0 && id < t->n_rows);
    const size_t at = (size_t)id * (size_t)t->dim;
    switch (t->dtype) {
    case EMBEDDING_F32:
        return t->f32 + at;
    case EMBEDDING_I8:
        return t->i8 + at;
    }
    return NULL;
}

size_t embedding_row_bytes(const embedding_table *t)
{
    switch (t->dtype) {
    case EMBEDDING_F32:
        return (size_t)t->dim * sizeof(float);
    case EMBEDDING_I8:
        return (size_t)t->dim;
    }
    return 0;
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
        const size_t r = (size_t)(q - t->i8) / d, block = (size_t)t->block;
        const float *scale = t->scale + r * (d / block);
        for (size_t b = 0; b < d; b += block) {
            const float s = *scale++;
            for (size_t j = b; j < b + block; j++)
                out[j] = (float)q[j] * s;
        }
        return;
    }
    }
}

size_t embedding_table_bytes(const embedding_table *t)
{
    const size_t n = (size_t)t->n_rows * (size_t)t->dim;
    switch (t->dtype) {
    case EMBEDDING_F32:
        return n * sizeof(float);
    case EMBEDDING_I8:
        return n + n / (size_t)t->block * sizeof(float);
    }
    return 0;
}
