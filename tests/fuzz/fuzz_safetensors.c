/* fuzz_safetensors: safetensors_parse on arbitrary bytes. On success every
 * tensor must be a consistent view inside the buffer: the data range lies in
 * [buf, buf+len), its size is n_elements * dtype size, lookups by name agree,
 * and converting it to F32 reads only that range (ASan checks). */
#include <string.h>

#include "fuzz_common.h"
#include "safetensors.h"

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
    }
    FUZZ_CHECK(safetensors_find(st, "") == NULL || safetensors_find(st, "")->name[0] == 0,
               "find('') returned a named tensor");
    free(f32);
    safetensors_free(st);
    free(buf);
    return 0;
}
