/* fuzz_safetensors: safetensors_parse on arbitrary bytes. On success every
 * tensor must be a consistent view inside the buffer: the data range lies in
 * [buf, buf+len), its size is n_elements * dtype size, lookups by name agree,
 * and converting it to F32 reads only that range (ASan checks). Every 2-D I8
 * tensor goes through the int8 embedding checks with its NAME_scale tensor
 * (and NAME_projection when there is one: a factored table), as the model
 * loader does; when they pass, every row is read as the engine reads it and
 * must be finite. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "embedding.h"
#include "fuzz_common.h"
#include "safetensors.h"

/* The loader's path for an int8 table t: with a NAME_projection tensor the
 * rank check, then the scale checks (and the projection's), then every row,
 * which must be finite. */
static void check_int8_table(const safetensors *st, const safetensors_tensor *t)
{
    if (t->n_dims != 2 || t->shape[0] > INT_MAX || t->shape[1] > INT_MAX)
        return;
    char scale_name[600], projection_name[600], err[512] = "";
    snprintf(scale_name, sizeof scale_name, "%s%s", t->name, EMBEDDING_SCALE_SUFFIX);
    snprintf(projection_name, sizeof projection_name, "%s%s", t->name, EMBEDDING_PROJECTION_SUFFIX);
    const safetensors_tensor *scale = safetensors_find(st, scale_name);
    const safetensors_tensor *projection = safetensors_find(st, projection_name);
    /* a factored table's D is its projection's first dimension */
    int64_t dim = t->shape[1];
    if (projection != NULL) {
        if (projection->n_dims < 1 || projection->shape[0] < 1 || projection->shape[0] > INT_MAX)
            return;
        dim = projection->shape[0];
    }
    int groups = 0, width = (int)t->shape[1];
    if ((projection != NULL &&
         embedding_check_rank(t, t->shape[0], dim, &width, err, sizeof err) != 0) ||
        embedding_check_i8(t, scale, t->shape[0], width, &groups, err, sizeof err) != 0 ||
        (projection != NULL &&
         embedding_check_projection(projection, scale, dim, width, err, sizeof err) != 0)) {
        FUZZ_CHECK(err[0] != 0, "'%s': int8 check failed without a message", t->name);
        return;
    }
    FUZZ_CHECK(groups >= 1 && width % groups == 0, "'%s': %d groups", t->name, groups);
    FUZZ_CHECK(scale->n_elements == (size_t)t->shape[0] * (size_t)groups, "'%s': scale count",
               t->name);
    float *scales = malloc(scale->n_elements ? scale->n_elements * sizeof(float) : 1);
    float *proj = NULL;
    float *row = malloc((size_t)dim * sizeof(float));
    FUZZ_CHECK(scales && row, "out of memory");
    safetensors_to_f32(scale, scales); /* the loader's aligned copies */
    if (projection != NULL) {
        proj = malloc(projection->n_elements * sizeof(float));
        FUZZ_CHECK(proj, "out of memory");
        safetensors_to_f32(projection, proj);
    }
    const embedding_table table = {.dtype = EMBEDDING_I8,
                                   .n_rows = (int)t->shape[0],
                                   .dim = (int)dim,
                                   .width = width,
                                   .block = width / groups,
                                   .i8 = t->data,
                                   .scale = scales,
                                   .projection = proj};
    for (int r = 0; r < table.n_rows; r++) {
        embedding_row_read(&table, embedding_row(&table, r), row);
        for (int j = 0; j < table.dim; j++)
            FUZZ_CHECK(isfinite(row[j]), "'%s': row %d [%d] is not finite", t->name, r, j);
    }
    free(proj);
    free(row);
    free(scales);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy, so that ASan sees any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf, "out of memory");
    memcpy(buf, data, size);
    safetensors *st = NULL;
    char err[256] = "";
    if (safetensors_parse(buf, size, &st, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != 0, "failure without a message");
        free(buf);
        return 0;
    }
    size_t n = safetensors_count(st);
    float *f32 = NULL;
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor *t = safetensors_at(st, i);
        FUZZ_CHECK(t && t->name, "tensor %zu has no name", i);
        FUZZ_CHECK(t->n_dims >= 0 && t->n_dims <= SAFETENSORS_MAX_DIMS, "'%s': %d dims", t->name,
                   t->n_dims);
        size_t elements = 1;
        for (int d = 0; d < t->n_dims; d++) {
            FUZZ_CHECK(t->shape[d] >= 0, "'%s': negative dim", t->name);
            elements *= (size_t)t->shape[d];
        }
        FUZZ_CHECK(elements == t->n_elements, "'%s': n_elements %zu != product %zu", t->name,
                   t->n_elements, elements);
        size_t esize = t->dtype == SAFETENSORS_F32 ? 4 : t->dtype == SAFETENSORS_I8 ? 1 : 2;
        FUZZ_CHECK(safetensors_dtype_bytes(t->dtype) == esize, "'%s': dtype size", t->name);
        FUZZ_CHECK(t->n_bytes == t->n_elements * esize, "'%s': %zu bytes for %zu elements", t->name,
                   t->n_bytes, t->n_elements);
        const uint8_t *p = t->data;
        FUZZ_CHECK(t->n_bytes == 0 || (p >= buf && p + t->n_bytes <= buf + size),
                   "'%s': data outside the buffer", t->name);
        FUZZ_CHECK(safetensors_find(st, t->name) == t, "'%s': find disagrees", t->name);
        FUZZ_CHECK(safetensors_dtype_name(t->dtype) != NULL, "'%s': dtype", t->name);
        if (t->n_elements > 0) {
            float *g = realloc(f32, t->n_elements * sizeof *g);
            FUZZ_CHECK(g, "out of memory");
            f32 = g;
            safetensors_to_f32(t, f32);
        }
        if (t->dtype == SAFETENSORS_I8)
            check_int8_table(st, t);
    }
    FUZZ_CHECK(safetensors_find(st, "") == NULL || safetensors_find(st, "")->name[0] == 0,
               "find('') returned a named tensor");
    free(f32);
    safetensors_free(st);
    free(buf);
    return 0;
}
