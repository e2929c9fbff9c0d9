/* safetensors: parser for the safetensors weight format.
 *
 * Layout, byte by byte:
 *   [0, 8)        u64 little-endian N: the JSON header's length in bytes
 *   [8, 8+N)      UTF-8 JSON object: {"name": {"dtype": "F32"|"F16"|"BF16"|"I8",
 *                 "shape": [d0, ...], "data_offsets": [begin, end]}, ...,
 *                 optionally "__metadata__": {string: string}}
 *   [8+N, EOF)    the data area; offsets are relative to its start.
 * Every tensor's [begin, end) must lie inside the data area, equal
 * product(shape) * dtype size, and not overlap another tensor. Elements are
 * little-endian and row-major: F32 IEEE binary32 (4 bytes), F16 IEEE binary16
 * (2), BF16 the top half of a binary32 (2), I8 two's-complement int8 (1).
 *
 * int8 embeddings (fastformerd's extension; README "int8 embeddings"). A
 * word embedding table NAME of shape [V, D] may be stored as
 *   NAME         dtype "I8",  shape [V, D]: q, V*D bytes, row r at r*D
 *   NAME_scale   dtype "F32", shape [V, G]: the scales, V*G*4 bytes, where
 *                G >= 1 divides D; G = 1 is one scale per row (what
 *                tools/export.py writes), G = D/32 is ggml Q8_0's blocks of 32
 * and element (r, j) of the table is the F32 product q[r, j] * NAME_scale[r,
 * j / (D/G)], computed in float. Writers quantize symmetrically with
 * round-to-nearest: scale = max|x| / 127 over the block, q = round(x /
 * scale) in [-127, 127], and scale = 0 with q = 0 for an all-zero block (the
 * padding row 0 stays exactly zero). Every scale must lie in [0, FLT_MAX /
 * 128] (0x1.fffffep+120): finite, and q * scale finite for every q.
 *
 * Factored int8 embeddings. A table of rank K (every row a combination of K
 * fixed vectors, e.g. GloVe vectors through a fixed projection) may instead
 * be stored as
 *   NAME            dtype "I8",  shape [V, K], 1 <= K <= min(D, 1024): row r at r*K
 *   NAME_scale      dtype "F32", shape [V, G], G >= 1 dividing K (as above, over K)
 *   NAME_projection dtype "F32", shape [D, K]: P, row-major (the layout of a
 *                   PyTorch nn.Linear(K, D).weight), D*K*4 bytes
 * and row r of the table is the D floats out[d] = sum over k of P[d, k] *
 * (q[r, k] * NAME_scale[r, k / (K/G)]), i.e. W = dequant(q, scale) @ P^T;
 * the engine sums in float, in an order of its choosing. Writers that hold a
 * table W in the column space of a P with orthonormal columns store F = W @
 * P, quantized as above (tools/model_dir.py refuses W farther than 1e-4 *
 * max(1, max|W|) from that space). Every value of P must be finite and, with
 * maxP = max|P|, every scale at most FLT_MAX / (256 * K * maxP), so that
 * every output is finite with room for rounding. Without NAME_projection
 * NAME must be [V, D], as above.
 *
 * Only the word embedding tables may be I8: word_embedding.weight
 * (classifier) and news_encoder.word_embedding.weight (recommender); a
 * NAME_scale or NAME_projection tensor next to a table that is not I8, and
 * any other tensor named *_projection, are refused. The model loader
 * (model.c, embedding.h) enforces all of this. This parser only knows I8 as
 * a dtype: safetensors_to_f32 gives the integer values. Any safetensors
 * reader can read such a file, and any tool can write one; the header needs
 * no "__metadata__" entry. */
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
    SAFETENSORS_I8,
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
/* Bytes of one element: 4, 2, 2 or 1. */
size_t safetensors_dtype_bytes(safetensors_dtype dtype);

/* Converts the tensor's elements to F32 into `out` (n_elements floats); I8
 * elements become their integer values. Reads unaligned data safely. */
void safetensors_to_f32(const safetensors_tensor *t, float *out);

#endif
