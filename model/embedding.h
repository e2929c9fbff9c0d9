/* embedding: a word embedding table as the engine reads it, either F32 rows
 * or int8 rows with F32 scales, optionally factored through a shared F32
 * projection (the "int8 embeddings" extension described in safetensors.h),
 * and reading one row as F32. The engine keeps only pointers to the rows of
 * a batch and dequantizes (and projects) each one as it copies it into the
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
/* The projection of a factored int8 table NAME is NAME EMBEDDING_PROJECTION_SUFFIX. */
#define EMBEDDING_PROJECTION_SUFFIX "_projection"
/* The largest rank K of a factored table: embedding_row_read dequantizes a
 * row into a stack buffer of this many floats (4 KiB). */
#define EMBEDDING_MAX_RANK 1024

typedef enum {
    EMBEDDING_F32,
    EMBEDDING_I8,
} embedding_dtype;

/* A (n_rows, dim) table. Pointers are borrowed (the model owns them).
 * Factored (projection != NULL, I8 only): row r is stored as K = width int8
 * values and read as out[d] = sum_k projection[d, k] * q[r, k] *
 * scale[r, k / block]. */
typedef struct {
    embedding_dtype dtype;
    int n_rows;              /* V */
    int dim;                 /* D: floats of a row as read */
    int width;               /* values stored per row: D, or K of a factored table */
    int block;               /* I8: elements per scale, divides width (width: one per row) */
    const float *f32;        /* F32: (V, D) */
    const int8_t *i8;        /* I8: (V, width) */
    const float *scale;      /* I8: (V, width / block), each in [0, EMBEDDING_MAX_SCALE] */
    const float *projection; /* factored I8: (D, K) row-major, finite; NULL otherwise */
} embedding_table;

/* Validates the scale tensor of the I8 table `q` (already checked to be
 * [n_rows, width], where width is D, or K for a factored table): `scale`
 * (NULL when the file has none) must be F32 of shape [n_rows, G] with G >= 1
 * dividing width, and every value in [0, EMBEDDING_MAX_SCALE] (finite, >= 0,
 * and q * scale finite).
 * Returns 0 with G in *n_groups, or -1 with a message naming the tensor, e.g.
 * "tensor 'word_embedding.weight_scale' has shape [7,3]: expected [7,G] with
 * G dividing 8". Reads the scales (unaligned data is fine); never reads out
 * of bounds on a parsed file. */
FF_MUST_CHECK int embedding_check_i8(const safetensors_tensor *q, const safetensors_tensor *scale,
                                     int64_t n_rows, int64_t width, int *n_groups, char *err,
                                     size_t err_cap);

/* Checks the shape of the I8 table `q` of a factored table of rows of `dim`
 * floats (the file has NAME_projection): [n_rows, K] with 1 <= K <= dim and
 * K <= EMBEDDING_MAX_RANK. Returns 0 with K in *rank, or -1 with a message
 * naming q, e.g. "tensor 'word_embedding.weight' has shape [7,9]: with a
 * projection it must be [7,K] with 1 <= K <= 8". */
FF_MUST_CHECK int embedding_check_rank(const safetensors_tensor *q, int64_t n_rows, int64_t dim,
                                       int *rank, char *err, size_t err_cap);

/* Validates the projection of a factored table whose q (n_rows, rank) and
 * `scale` (F32, [n_rows, G]) passed embedding_check_rank and
 * embedding_check_i8: `projection` must be F32 of shape [dim, rank], every
 * value finite, and, with maxP = max|projection|, every scale at most
 * FLT_MAX / (256 * rank * maxP): then each of a row's rank products is at
 * most FLT_MAX / (2 * rank) and every output is finite, float rounding of the
 * sum included (the factor 2 covers it). Returns 0, or -1 with a message
 * naming the tensor, e.g. "tensor 'word_embedding.weight_projection' has
 * shape [8,3], expected [8,4]". Reads unaligned data; never reads out of
 * bounds on a parsed file. */
FF_MUST_CHECK int embedding_check_projection(const safetensors_tensor *projection,
                                             const safetensors_tensor *scale, int64_t dim,
                                             int64_t rank, char *err, size_t err_cap);

/* The stored data of row id (0 <= id < n_rows, asserted): dim floats, or
 * width int8 values. */
const void *embedding_row(const embedding_table *t, int32_t id);

/* Bytes of one stored row: dim * 4 (F32) or width (I8; K when factored). */
size_t embedding_row_bytes(const embedding_table *t);

/* Writes the row whose stored data is `row` (from embedding_row) to out as
 * dim floats: a copy for F32; q * scale, one float multiply per element, for
 * I8; for a factored table the K values q * scale (into a stack buffer, no
 * allocation), then dim dot products of length K with the projection's rows,
 * summed in float in an order of the implementation's choosing. */
void embedding_row_read(const embedding_table *t, const void *row, float *out);

/* Writes the row's stored values, dequantized, to out: width floats (q *
 * scale for I8, a copy for F32). For a factored table these are the K
 * factors, and the row is projection (D, K) times them: the engine projects
 * a whole chunk's factors in one product instead of row by row. */
void embedding_row_read_stored(const embedding_table *t, const void *row, float *out);

/* Bytes of the table as stored: V*D*4 (F32), or V*W + V*(W/block)*4 (I8,
 * W = width), plus D*K*4 for a factored table's projection. */
size_t embedding_table_bytes(const embedding_table *t);

#endif
