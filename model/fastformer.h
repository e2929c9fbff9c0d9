/* fastformer: the Fastformer encoder of the official code (wuch15/Fastformer),
 * run over a ragged batch: position embeddings, embedding LayerNorm, L layers
 * of additive attention + FFN, then AttentionPooling to one vector per sequence.
 *
 * Sequences are packed back to back with no padding rows: sequence s owns rows
 * [seq_start[s], seq_start[s+1]) of every activation matrix. A row whose mask
 * is 0 is a padding token inside a sequence (the official code's id 0); it
 * keeps its position but gets -10000 in both attention softmaxes and weight 0
 * in the pooling, exactly as in PyTorch. A sequence with no rows pools to the
 * zero vector (the official result for all-padding input).
 *
 * The products run on the engine's own GEMM (gemm.h) once the encoder's
 * weights are packed (fastformer_pack, done by model_load); an encoder that
 * is not packed runs them through cblas_sgemm. An encode runs on the threads
 * of the workspace's team (parallel.h) when it has one: whole chunks of
 * sequences per lane when there are at least as many sequences as lanes,
 * otherwise every product split by rows across the lanes.
 * Pure compute: no threads of its own (lent ones only), no I/O, no globals. */
#ifndef FF_FASTFORMER_H
#define FF_FASTFORMER_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "embedding.h"
#include "gemm.h"
#include "parallel.h"

typedef struct {
    int hidden_size;             /* D */
    int num_attention_heads;     /* H; divides D */
    int intermediate_size;       /* I */
    int num_hidden_layers;       /* L */
    int max_position_embeddings; /* P; no sequence may be longer */
    float layer_norm_eps;
} fastformer_dims;

/* One FastformerLayer. Linear weights are [out, in] row-major (PyTorch layout).
 * All pointers are borrowed (owned by the model that bound them). */
typedef struct {
    const float *qk_weight; /* (2D, D): attention.self.query.weight rows, then key.weight rows */
    const float *qk_bias;   /* (2D): query.bias then key.bias */
    const float *query_att_weight; /* (H, D) */
    const float *query_att_bias;   /* (H) */
    const float *key_att_weight;   /* (H, D) */
    const float *key_att_bias;     /* (H) */
    const float *transform_weight; /* (D, D) */
    const float *transform_bias;   /* (D) */
    const float *attn_out_weight;  /* (D, D) attention.output.dense */
    const float *attn_out_bias;    /* (D) */
    const float *attn_ln_weight;   /* (D) attention.output.LayerNorm */
    const float *attn_ln_bias;     /* (D) */
    const float *inter_weight;     /* (I, D) intermediate.dense */
    const float *inter_bias;       /* (I) */
    const float *out_weight;       /* (D, I) output.dense */
    const float *out_bias;         /* (D) */
    const float *out_ln_weight;    /* (D) output.LayerNorm */
    const float *out_ln_bias;      /* (D) */
    /* Set by fastformer_pack (zeroed before, and then the products go
     * through cblas_sgemm on the weights above): the weights packed for the
     * engine's GEMM (query, key, and key transposed: the key projection is
     * folded into a per-sequence matrix, see fastformer.c; and Wd Wt, which
     * folds transform into attention.output.dense for long sequences), and
     * three biases folded once. */
    gemm_weights query_packed, key_packed, key_t_packed, query_att_packed, key_att_packed,
        transform_packed, attn_out_packed, dense_transform_packed, inter_packed, out_packed;
    const float *query_att_bias_folded;       /* (H) query_att_bias + Wa bq */
    const float *attn_out_bias_folded;        /* (D) attn_out_bias + Wd (bq + bt) */
    const float *dense_transform_bias_folded; /* (D) attn_out_bias + Wd bt */
} fastformer_layer;

/* FastformerEncoder + poolers.0 (AttentionPooling). Borrowed pointers. */
typedef struct {
    fastformer_dims dims;
    const float *position_embeddings; /* (P, D) */
    const float *ln_weight;           /* (D) embedding LayerNorm */
    const float *ln_bias;             /* (D) */
    const fastformer_layer *layers;   /* (L) */
    const float *pool_fc1_weight;     /* (D, D) att_fc1 */
    const float *pool_fc1_bias;       /* (D) */
    const float *pool_fc2_weight;     /* (1, D) att_fc2 */
    const float *pool_fc2_bias;       /* (1) */
    gemm_weights pool_fc1_packed;     /* set by fastformer_pack */
} fastformer_encoder;

/* Floats of the buffer fastformer_pack needs for an encoder of these dims
 * packed for path p (64-byte aligned parts). */
size_t fastformer_packed_floats(const fastformer_dims *dims, gemm_path p);

/* Packs every product's weights of enc for path p into buf
 * (fastformer_packed_floats floats, 64-byte aligned; owned by the caller, it
 * must outlive enc), folds the three constant biases and the product
 * attention.output.dense x transform (D^3 multiply-adds in double per layer):
 * fills the _packed and _folded fields of `layers`, which must be enc->layers
 * (writable), and enc->pool_fc1_packed. p must be supported by the CPU
 * (gemm_path_supported). Load time only: not thread-safe against encodes of
 * enc. */
void fastformer_pack(fastformer_encoder *enc, fastformer_layer *layers, gemm_path p, float *buf);

/* Activations for batches of up to max_tokens rows in up to max_seqs
 * sequences, allocated once. Before fastformer_encode the caller points every
 * row at its input vector and sets its mask (fastformer_gather for token ids,
 * fastformer_set_rows for vectors) and fills seq_start; the rest is private
 * scratch. The scratch holds one chunk of rows (see fastformer.c), not the
 * whole batch, so its size does not grow with max_tokens; it holds one
 * chunk per lane (n_lanes, see fastformer_workspace_set_team). One workspace
 * per calling thread: fastformer_encode may run concurrently on different
 * workspaces. */
typedef struct {
    fastformer_dims dims;
    int max_tokens;
    int max_seqs;
    const void **row_src; /* (max_tokens): row i's input vector (positions not yet added):
                             D floats, or a row of row_table; borrowed, read by
                             fastformer_encode */
    const embedding_table *row_table; /* the table of every row (fastformer_gather), or NULL
                                         when rows are F32 vectors (fastformer_set_rows) */
    float *mask;                      /* (max_tokens): 1 real token, 0 padding */
    int32_t *seq_start;               /* (max_seqs + 1): row offsets, seq_start[0] = 0 */
    float *scratch;                   /* private */
    size_t scratch_floats;
    int n_lanes;         /* chunks of scratch: the most lanes a team may have */
    parallel_team *team; /* borrowed; NULL: the calling thread alone */
    int32_t *chunk_seq;  /* private (max_seqs + 1) */
} fastformer_workspace;

/* Returns a new workspace (free with fastformer_workspace_free), or NULL when
 * out of memory or when the sizes overflow. dims->max_position_embeddings is
 * the longest sequence it will hold. */
fastformer_workspace *fastformer_workspace_new(const fastformer_dims *dims, int max_tokens,
                                               int max_seqs);
/* The same with scratch for n_lanes >= 1 lanes (fastformer_workspace_new: 1). */
fastformer_workspace *fastformer_workspace_new_lanes(const fastformer_dims *dims, int max_tokens,
                                                     int max_seqs, int n_lanes);
/* Lends ws the team whose lanes run its encodes (borrowed: it must outlive
 * its use by ws; NULL: the calling thread alone). The team may have at most
 * ws->n_lanes lanes (asserted). */
void fastformer_workspace_set_team(fastformer_workspace *ws, parallel_team *team);
void fastformer_workspace_free(fastformer_workspace *ws);
/* Bytes a workspace of these sizes allocates (for the daemon's memory estimate). */
size_t fastformer_workspace_bytes(const fastformer_dims *dims, int max_tokens, int max_seqs);
size_t fastformer_workspace_bytes_lanes(const fastformer_dims *dims, int max_tokens, int max_seqs,
                                        int n_lanes);

/* Points rows row0 .. row0+n-1 at the rows of `table` (F32 or int8, dim D)
 * for `n` ids and sets their mask (id != 0); fastformer_encode reads each row
 * as F32 (dequantizing int8) when it starts on its chunk. Ids must be in
 * [0, table->n_rows): callers validate. All rows of one batch come from one
 * table (asserted). table must stay valid until fastformer_encode returns. */
void fastformer_gather(fastformer_workspace *ws, int row0, const embedding_table *table,
                       const int32_t *ids, int n);

/* Points rows row0 .. row0+n-1 at the contiguous vectors `vecs` (n, D), with
 * mask 1 (e.g. news vectors as the user encoder's input). A batch mixes no
 * gathered rows with these (asserted). vecs must stay valid until
 * fastformer_encode returns. */
void fastformer_set_rows(fastformer_workspace *ws, int row0, const float *vecs, int n);

/* Runs the encoder over n_seqs sequences laid out in ws (row_src, mask,
 * seq_start[0..n_seqs]) and writes the pooled vectors to pooled (n_seqs, D).
 * Preconditions (asserted, programmer errors): n_seqs <= max_seqs, total rows
 * <= max_tokens, every sequence <= P rows of both enc and the workspace's
 * dims. Allocates nothing. */
void fastformer_encode(const fastformer_encoder *enc, fastformer_workspace *ws, int n_seqs,
                       float *pooled);

/* Floating-point operations of one encode of a packed encoder (multiply-add
 * = 2), counting the products it runs (a sequence's key side folded or not,
 * its transform and dense folded or not, see fastformer.c) and nothing else,
 * for GFLOP/s figures. seq_start: n_seqs + 1 offsets. */
double fastformer_gemm_flops(const fastformer_dims *dims, const int32_t *seq_start, int n_seqs);

#endif
