/* safetensors: parser for the safetensors weight format.
 *
 * Layout, byte by byte:
 *   [0, 8)        u64 little-endian N: the JSON header's length in bytes
 *   [8, 8+N)      UTF-8 JSON object: {"name": {"dtype": "F32"|"F16"|"BF16",
 *                 "shape": [d0, ...], "data_offsets": [begin, end]}, ...,
 *                 optionally "__metadata__": {string: string}}
 *   [8+N, EOF)    the data area; offsets are relative to its start.
 * Every tensor's [begin, end) must lie inside the data area, equal
 * product(shape) * dtype size, and not overlap another tensor. */
#ifndef FF_SAFETENSORS_H
#define FF_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

#define SAFETENSORS_MAX_DIMS 8

typedef enum {
    SAFETENSORS_F32,
    SAFETENSORS_F16,
    SAFETENSORS_BF16,
} safetensors_dtype;

typedef struct {
    const char *name; /* owned by the safetensors object */
    safetensors_dtype dtype;
    int n_dims;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    size_t n_elements;
    const void *data; /* borrowed: points into the parsed buffer */
    size_t n_bytes;
} safetensors_tensor;

typedef struct safetensors safetensors;

/* Parses and validates a whole file image. Borrows `buf`: tensor data pointers
 * point into it, so it must outlive the result. Returns a new object in *out
 * (free with safetensors_free) or -1 with a message naming the problem and,
 * where there is one, the tensor (e.g. "tensor 'x': data_offsets [0,12] do not
 * match shape [4,4] of F32 (64 bytes)"). Never reads outside [buf, buf+len). */
FF_MUST_CHECK int safetensors_parse(const void *buf, size_t len, safetensors **out, char *err,
                                    size_t err_cap);
void safetensors_free(safetensors *st);

size_t safetensors_count(const safetensors *st);
const safetensors_tensor *safetensors_at(const safetensors *st, size_t i);
/* Returns the tensor called `name`, or NULL. */
const safetensors_tensor *safetensors_find(const safetensors *st, const char *name);

const char *safetensors_dtype_name(safetensors_dtype dtype);

/* Converts the tensor's elements to F32 into `out` (n_elements floats). */
void safetensors_to_f32(const safetensors_tensor *t, float *out);

#endif
