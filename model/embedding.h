/* embedding: a word embedding table as the engine reads it, either F32 rows
 * or int8 rows with F32 scales (the "int8 embeddings" extension described in
 * safetensors.h), and reading one row as F32. The engine keeps only pointers
 * to the rows of a batch and dequantizes each one as it copies it into the
 * hidden state, so an int8 table is never expanded to F32 as a whole.
 * Pure: no allocation, no globals; a table is read-only and any number of
 * threads may read it. */
#ifndef FF_EMBEDDING_H
#define FF_EMBEDDING_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "safetensors.h"

/* The scale tensor of an int8 table NAME is NAME EMBEDDING_SCALE_SUFFIX. */
#define EMBEDDING_SCALE_SUFFIX "_scale"
/* The largest scale: FLT_MAX / 128, so that q * scale is finite for every q. */
#define EMBEDDING_MAX_SCALE 0x1.fffffep+120f

typedef enum {
    EMBEDDING_F32,
    EMBEDDING_I8,
} embedding_dtype;

/* A (n_rows, dim) table. Pointers are borrowed (the model owns them). */
typedef struct {
    embedding_dtype dtype;
    int n_rows;         /* V */
    int dim;            /* D */
    int block;          /* I8: elements per scale, divides D (D = one scale per row) */
    const float *f32;   /* F32: (V, D) */
    const int8_t *i8;   /* I8: (V, D) */
    const float *scale; /* I8: (V, D / block), each in [0, EMBEDDING_MAX_SCALE] */
} embedding_table;

/* Validates the scale tensor of the I8 table `q` (already checked to be
 * [n_rows, dim]): `scale` (NULL when the file has none) must be F32 of shape
 * [n_rows, G] with G >= 1 dividing dim, and every value in [0,
 * EMBEDDING_MAX_SCALE] (finite, >= 0, and q * scale finite).
 * Returns 0 with G in *n_groups, or -1 with a message naming the tensor, e.g.
 * "tensor 'word_embedding.weight_scale' has shape [7,3]: expected [7,G] with
 * G dividing 8". Reads the scales (unaligned data is fine); never reads out
 * of bounds on a parsed file. */
FF_MUST_CHECK int embedding_check_i8(const safetensors_tensor *q, const safetensors_tensor *scale,
                                     int64_t n_rows, int64_t dim, int *n_groups, char *err,
                                     size_t err_cap);

/* The stored data of row id (0 <= id < n_rows, asserted): dim floats or dim
 * int8 values. */
const void *embedding_row(const embedding_table *t, int32_t id);

/* Bytes of one stored row: dim * 4 (F32) or dim (I8). */
size_t embedding_row_bytes(const embedding_table *t);

/* Writes the row whose stored data is `row` (from embedding_row) to out as
 * dim floats: a copy for F32; q * scale, one float multiply per element, for
 * I8. */
void embedding_row_read(const embedding_table *t, const void *row, float *out);

/* Bytes of the table as stored: V*D*4 (F32), or V*D + V*(D/block)*4 (I8). */
size_t embedding_table_bytes(const embedding_table *t);

#endif
