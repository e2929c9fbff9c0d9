/* fastformer: the official Fastformer encoder over a packed, ragged batch.
 *
 * The batch runs in chunks of whole sequences of at most chunk_rows rows
 * (FF_CHUNK_ROWS, or one sequence when a sequence is longer): every layer and
 * the pooling run over one chunk before the next chunk starts, so that a
 * chunk's activations stay in the core's cache from one GEMM to the next
 * instead of streaming through memory once per pass. Sequences are
 * independent, so the order changes nothing in the results. Within a chunk
 * every projection is one product over all its rows, except the key side of
 * the additive attention, which runs per sequence (softmaxes, global query
 * and key, U); the pooling is per sequence too; the rest is fused row passes
 * from kernels.c.
 *
 * The key projection K = X Wk^T + bk is only ever seen through the global
 * query qg: key_att(K_i * qg) = (Wka diag(qg) Wk) X_i + const, and the global
 * key kg = qg * (Wk sum_i beta_i X_i + bk sum_i beta_i) (per head). So a
 * sequence of n rows that is longer than about H + 1 rows never computes K:
 * its H x D matrix Ms = (Wka diag(qg)) Wk (H D^2 multiply-adds) gives the
 * key_att logits as X_i Ms^T, and kg needs D^2 more, instead of n D^2 for K's
 * rows (7-14% of a layer's products at n = 128). Shorter sequences compute
 * K's rows, then P = K * qg, key_att(P) and kg = sum_i beta_i P_i.
 *
 * The attention output's two products fold the same way: with Q = Q0 + bq,
 * dense(transform(kg * Q) + Q) = Q (diag(kg) Wt^T Wd^T + Wd^T) + Wd bt + bd.
 * Wtd = Wd Wt is a constant (fastformer_pack computes it once, in double),
 * so a sequence of at least FF_DENSE_FOLD_MIN_ROWS rows forms its D x D
 * matrix Ms^T = Wtd diag(kg) + Wd straight in the GEMM's packed layout (D^2
 * multiply-adds from the packed Wtd and Wd: kg scales the reduction index)
 * and runs one n x D x D product instead of two: n D^2 multiply-adds fewer,
 * a quarter of a layer's products when I = D (formed and multiplied a block
 * of panels at a time, while the block is in L2). Shorter sequences run
 * transform and dense over the chunk's rows, consecutive ones together.
 *
 * Workspace layout (T = max_tokens rows, C = chunk_rows, each float region
 * 64-byte aligned):
 *   row_src (T)    pointers to each row's input vector, F32 or a row of
 *                  row_table (a separate array)
 *   mask  (T)
 *   x     (C, D)   the chunk's hidden state X: embeddings + positions, then
 *                  updated in place layer by layer
 *   qk    (C, 2D)  row i = [Q0_i | K_i], Q0_i the query projection without
 *                  bias; K_i is U_i (a short sequence's K0_i, then P_i, on
 *                  the way); Q0_i becomes out_i minus a constant bias that is
 *                  folded into the next LayerNorm (see layer_forward); also
 *                  the pooling's att_fc1 output (C, D), contiguous
 *   att   (C, H)   query_att / key_att logits, then softmax weights
 *   inter (C, I)   intermediate activations; before them, a folded
 *                  sequence's Ms packed (at least D^2 floats, see
 *                  layout_compute)
 *   score (C)      pooling scores
 *   vec   (4D)     global query qg / global key kg of the current sequence;
 *                  per layer: bq + transform.bias (D), the attention output's
 *                  folded bias (D) and query_att's folded bias (H)
 *   col   (2H)     softmax column max / sum
 *   amat  (H, D)   a folded sequence's Wka diag(qg), then its head row sums
 *   mmat  (H, D)   its key matrix Ms, and Ms packed for the GEMM (mpack)
 *   hvec  (2H)     its key_att logits' bias, and the sums of beta per head */
#include "fastformer.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define FF_ALIGN_BYTES 64
#define FF_ALIGN_FLOATS (FF_ALIGN_BYTES / sizeof(float))
/* Rows per chunk: about 4 KiB of activations per row at D = I = 256, so a
 * chunk's working set is about 2 MiB, which stays in the last-level cache
 * next to the weights; the GEMMs keep 512 rows, enough for full speed. */
#define FF_CHUNK_ROWS 512
/* How many rows ahead the embedding gather prefetches. */
#define FF_PREFETCH_ROWS 4

typedef struct {
    size_t mask;                               /* offset of the mask in floats */
    size_t lanes;                              /* offset of lane 0's scratch */
    size_t x, qk, att, inter, score, vec, col; /* offsets within one lane's scratch */
    size_t amat, mmat, mpack, hvec;            /* the same, folded key path */
    size_t lane_floats;                        /* one lane's scratch, 64-byte multiple */
    size_t total;                              /* floats of the whole block */
    int chunk_rows;                            /* C: rows of the per-chunk regions */
} ws_layout;

/* a*b, or SIZE_MAX if it overflows (SIZE_MAX then propagates through adds). */
static size_t mul_sat(size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a)
        return SIZE_MAX;
    return a * b;
}

static size_t add_region(size_t *cursor, size_t n_floats)
{
    const size_t at = *cursor;
    if (at == SIZE_MAX || n_floats > SIZE_MAX - at - FF_ALIGN_FLOATS) {
        *cursor = SIZE_MAX;
        return at;
    }
    *cursor = at + (n_floats + FF_ALIGN_FLOATS - 1) / FF_ALIGN_FLOATS * FF_ALIGN_FLOATS;
    return at;
}

static int dims_valid(const fastformer_dims *d)
{
    return d->hidden_size > 0 && d->num_attention_heads > 0 &&
           d->hidden_size % d->num_attention_heads == 0 && d->intermediate_size > 0 &&
           d->num_hidden_layers >= 0 && d->max_position_embeddings > 0;
}

/* Floats of an n x k matrix packed for the GEMM on the path with the widest
 * panels: a sequence's key matrix (H, D) or folded dense matrix (D, D). */
static size_t widest_packed_floats(int n, int k)
{
    size_t most = 0;
    for (int p = 0; p < GEMM_N_PATHS; p++) {
        const size_t f = gemm_packed_floats((gemm_path)p, n, k);
        most = f > most ? f : most;
    }
    return most;
}

/* Returns 0 and fills *l, or -1 when the sizes are invalid or overflow. */
static int layout_compute(const fastformer_dims *d, int max_tokens, int max_seqs, int n_lanes,
                          ws_layout *l)
{
    if (!dims_valid(d) || max_tokens <= 0 || max_seqs <= 0 || n_lanes <= 0 || n_lanes > 1024)
        return -1;
    const size_t t = (size_t)max_tokens;
    const size_t dd = (size_t)d->hidden_size;
    /* A chunk holds at least one sequence of the longest length. */
    int chunk =
        d->max_position_embeddings > FF_CHUNK_ROWS ? d->max_position_embeddings : FF_CHUNK_ROWS;
    if (chunk > max_tokens)
        chunk = max_tokens;
    l->chunk_rows = chunk;
    const size_t cr = (size_t)chunk;
    size_t c = 0;
    l->x = add_region(&c, mul_sat(cr, dd));
    l->qk = add_region(&c, mul_sat(cr, mul_sat(2, dd)));
    l->att = add_region(&c, mul_sat(cr, (size_t)d->num_attention_heads));
    /* inter also holds a sequence's Ms of the folded dense (see the top of
     * this file), which is dead before the FFN writes its activations. */
    size_t inter = mul_sat(cr, (size_t)d->intermediate_size);
    const size_t ms = widest_packed_floats(d->hidden_size, d->hidden_size);
    l->inter = add_region(&c, inter > ms ? inter : ms);
    l->score = add_region(&c, cr);
    l->vec = add_region(&c, mul_sat(4, dd));
    l->col = add_region(&c, 2 * (size_t)d->num_attention_heads);
    const size_t hd = mul_sat((size_t)d->num_attention_heads, dd);
    l->amat = add_region(&c, hd);
    l->mmat = add_region(&c, hd);
    l->mpack = add_region(&c, widest_packed_floats(d->num_attention_heads, d->hidden_size));
    l->hvec = add_region(&c, 2 * (size_t)d->num_attention_heads);
    l->lane_floats = c;
    size_t b = 0;
    l->mask = add_region(&b, t);
    l->lanes = add_region(&b, mul_sat(c, (size_t)n_lanes));
    l->total = b;
    if (c == SIZE_MAX || b == SIZE_MAX || b > SIZE_MAX / sizeof(float))
        return -1;
    if ((size_t)max_seqs > SIZE_MAX / (2 * sizeof(int32_t)) - 1 || t > SIZE_MAX / sizeof(float *))
        return -1;
    return 0;
}

size_t fastformer_workspace_bytes_lanes(const fastformer_dims *dims, int max_tokens, int max_seqs,
                                        int n_lanes)
{
    ws_layout l;
    if (layout_compute(dims, max_tokens, max_seqs, n_lanes, &l) != 0)
        return SIZE_MAX;
    return sizeof(fastformer_workspace) + l.total * sizeof(float) +
           (size_t)max_tokens * sizeof(const float *) +
           2 * ((size_t)max_seqs + 1) * sizeof(int32_t);
}

size_t fastformer_workspace_bytes(const fastformer_dims *dims, int max_tokens, int max_seqs)
{
    return fastformer_workspace_bytes_lanes(dims, max_tokens, max_seqs, 1);
}

fastformer_workspace *fastformer_workspace_new_lanes(const fastformer_dims *dims, int max_tokens,
                                                     int max_seqs, int n_lanes)
{
    ws_layout l;
    if (layout_compute(dims, max_tokens, max_seqs, n_lanes, &l) != 0)
        return NULL;
    fastformer_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    /* Owned from here on by ws, so fastformer_workspace_free takes a partly
     * built one; the block starts at mask. */
    float *block = aligned_alloc(FF_ALIGN_BYTES, l.total * sizeof(float));
    ws->mask = block;
    ws->row_src = calloc((size_t)max_tokens, sizeof *ws->row_src);
    ws->seq_start = calloc((size_t)max_seqs + 1, sizeof *ws->seq_start);
    ws->chunk_seq = calloc((size_t)max_seqs + 1, sizeof *ws->chunk_seq);
    if (!block || !ws->row_src || !ws->seq_start || !ws->chunk_seq) {
        fastformer_workspace_free(ws);
        return NULL;
    }
    /* Zeroed once so that a workspace never exposes stale heap contents. */
    memset(block, 0, l.total * sizeof(float));
    ws->dims = *dims;
    ws->max_tokens = max_tokens;
    ws->max_seqs = max_seqs;
    ws->n_lanes = n_lanes;
    ws->mask = block + l.mask;
    ws->scratch = block + l.lanes;
    ws->scratch_floats = l.total - l.lanes;
    return ws;
}

fastformer_workspace *fastformer_workspace_new(const fastformer_dims *dims, int max_tokens,
                                               int max_seqs)
{
    return fastformer_workspace_new_lanes(dims, max_tokens, max_seqs, 1);
}

void fastformer_workspace_set_team(fastformer_workspace *ws, parallel_team *team)
{
    assert(!team || parallel_team_lanes(team) <= ws->n_lanes);
    ws->team = team;
}

void fastformer_workspace_free(fastformer_workspace *ws)
{
    if (!ws)
        return;
    free(ws->mask); /* the block starts at mask */
    free(ws->row_src);
    free(ws->seq_start);
    free(ws->chunk_seq);
    free(ws);
}

void fastformer_gather(fastformer_workspace *ws, int row0, const embedding_table *table,
                       const int32_t *ids, int n)
{
    assert(row0 >= 0 && n >= 0 && row0 + n <= ws->max_tokens);
    assert(table->dim == ws->dims.hidden_size);
    assert(row0 == 0 || ws->row_table == table);
    ws->row_table = table;
    for (int i = 0; i < n; i++) {
        ws->row_src[row0 + i] = embedding_row(table, ids[i]);
        ws->mask[row0 + i] = ids[i] != 0 ? 1.0f : 0.0f;
    }
}

void fastformer_set_rows(fastformer_workspace *ws, int row0, const float *vecs, int n)
{
    const size_t d = (size_t)ws->dims.hidden_size;
    assert(row0 >= 0 && n >= 0 && row0 + n <= ws->max_tokens);
    assert(row0 == 0 || ws->row_table == NULL);
    ws->row_table = NULL;
    for (int i = 0; i < n; i++) {
        ws->row_src[row0 + i] = vecs + (size_t)i * d;
        ws->mask[row0 + i] = 1.0f;
    }
}

/* ---- packing ------------------------------------------------------------------- */

/* The biases folded at pack time (see layer_forward): query_att's (H) and
 * dense's two (D each), each rounded to 16 floats. */
static size_t folded_floats(const fastformer_dims *d)
{
    return ((size_t)d->num_attention_heads + 15) / 16 * 16 +
           2 * (((size_t)d->hidden_size + 15) / 16 * 16);
}

size_t fastformer_packed_floats(const fastformer_dims *d, gemm_path p)
{
    const int D = d->hidden_size, H = d->num_attention_heads, N_I = d->intermediate_size;
    /* query, key, key^T, transform, dense, Wd Wt; query_att, key_att; FFN */
    const size_t per_layer = 6 * gemm_packed_floats(p, D, D) + 2 * gemm_packed_floats(p, H, D) +
                             gemm_packed_floats(p, N_I, D) + gemm_packed_floats(p, D, N_I) +
                             folded_floats(d);
    return per_layer * (size_t)d->num_hidden_layers + gemm_packed_floats(p, D, D);
}

static gemm_weights pack_next(gemm_path p, const float *w, int n, int k, float **cursor)
{
    gemm_weights g = gemm_pack(p, w, n, k, k, *cursor);
    *cursor += gemm_packed_floats(p, n, k);
    return g;
}

/* query_att(Q0 + bq) = Q0 Wa^T + (Wa bq + ba); dense's input lacks bq + bt,
 * so its bias becomes bd + Wd (bq + bt). Writes H + D floats at out. */
static void fold_biases(const fastformer_layer *l, int d, int h, float *qatt_bias,
                        float *dense_bias, float *bq_bt)
{
    const float *bq = l->qk_bias;
    for (int hh = 0; hh < h; hh++)
        qatt_bias[hh] = l->query_att_bias[hh] +
                        kernels_dot(l->query_att_weight + (size_t)hh * d, bq, (size_t)d);
    for (int j = 0; j < d; j++)
        bq_bt[j] = bq[j] + l->transform_bias[j];
    for (int j = 0; j < d; j++)
        dense_bias[j] =
            l->attn_out_bias[j] + kernels_dot(l->attn_out_weight + (size_t)j * d, bq_bt, (size_t)d);
}

/* Columns of Wd Wt accumulated at a time by fold_dense_transform. */
#define FF_FOLD_COLUMNS 64

/* The folded dense (see the top of this file): wtd = Wd Wt (D x D row-major,
 * [out, in] like both) and its bias bd + Wd bt, summed in double and rounded
 * once. Each row of wtd in blocks of FF_FOLD_COLUMNS columns, so that the
 * sums fit on the stack and every read of Wt is a run of one of its rows. */
static void fold_dense_transform(const fastformer_layer *l, int d, float *wtd, float *bias)
{
    double acc[FF_FOLD_COLUMNS];
    for (int j = 0; j < d; j++) {
        const float *wd = l->attn_out_weight + (size_t)j * d;
        for (int i0 = 0; i0 < d; i0 += FF_FOLD_COLUMNS) {
            const int nb = d - i0 < FF_FOLD_COLUMNS ? d - i0 : FF_FOLD_COLUMNS;
            for (int b = 0; b < nb; b++)
                acc[b] = 0.0;
            for (int m = 0; m < d; m++) {
                const double w = wd[m];
                const float *wt = l->transform_weight + (size_t)m * d + i0;
                for (int b = 0; b < nb; b++)
                    acc[b] += w * wt[b];
            }
            for (int b = 0; b < nb; b++)
                wtd[(size_t)j * d + i0 + b] = (float)acc[b];
        }
        double c = l->attn_out_bias[j];
        for (int m = 0; m < d; m++)
            c += (double)wd[m] * l->transform_bias[m];
        bias[j] = (float)c;
    }
}

void fastformer_pack(fastformer_encoder *enc, fastformer_layer *layers, gemm_path p, float *buf)
{
    assert(layers == enc->layers && gemm_path_supported(p));
    const fastformer_dims *d = &enc->dims;
    const int D = d->hidden_size, H = d->num_attention_heads, N_I = d->intermediate_size;
    float *at = buf;
    for (int li = 0; li < d->num_hidden_layers; li++) {
        fastformer_layer *l = &layers[li];
        l->query_packed = pack_next(p, l->qk_weight, D, D, &at);
        l->key_packed = pack_next(p, l->qk_weight + (size_t)D * D, D, D, &at);
        l->key_t_packed = gemm_pack_transposed(p, l->qk_weight + (size_t)D * D, D, D, D, at);
        at += gemm_packed_floats(p, D, D);
        l->query_att_packed = pack_next(p, l->query_att_weight, H, D, &at);
        l->key_att_packed = pack_next(p, l->key_att_weight, H, D, &at);
        l->transform_packed = pack_next(p, l->transform_weight, D, D, &at);
        l->attn_out_packed = pack_next(p, l->attn_out_weight, D, D, &at);
        /* The layer ends with Wd Wt, the FFN and the folded biases. Past
         * them, the rest of buf (at least the pool's packed space, D^2 floats
         * or more, filled last) is scratch: Wd Wt row-major, then bq + bt. */
        float *qatt = at + gemm_packed_floats(p, D, D) + gemm_packed_floats(p, N_I, D) +
                      gemm_packed_floats(p, D, N_I);
        float *dense = qatt + ((size_t)H + 15) / 16 * 16;
        float *td_bias = dense + ((size_t)D + 15) / 16 * 16;
        float *scratch = qatt + folded_floats(d);
        fold_dense_transform(l, D, scratch, td_bias);
        l->dense_transform_packed = pack_next(p, scratch, D, D, &at);
        l->inter_packed = pack_next(p, l->inter_weight, N_I, D, &at);
        l->out_packed = pack_next(p, l->out_weight, D, N_I, &at);
        assert(at == qatt);
        fold_biases(l, D, H, qatt, dense, scratch);
        l->query_att_bias_folded = qatt;
        l->attn_out_bias_folded = dense;
        l->dense_transform_bias_folded = td_bias;
        at += folded_floats(d);
    }
    enc->pool_fc1_packed = pack_next(p, enc->pool_fc1_weight, D, D, &at);
    assert((size_t)(at - buf) == fastformer_packed_floats(d, p));
}

/* ---- one layer --------------------------------------------------------------- */

/* One chunk: sequences seq_start[0..n_seqs] (absolute row offsets in the
 * batch, the first being row0); x holds their rows, mask points at theirs,
 * row_src is the whole batch's. team: the lanes every product is split
 * across (NULL: this thread alone). */
typedef struct {
    int d, h, inter, dh, n_rows, n_seqs, row0;
    float inv_scale, eps;
    float *x, *qk, *att, *act, *score, *vec, *col;
    float *amat, *mmat, *mpack, *hvec;
    const float *mask;
    const void *const *row_src;
    const embedding_table *row_table;
    const int32_t *seq_start;
    parallel_team *team;
} run_state;

/* C (rows, n) = A (rows, k; stride lda) * W (n, k)^T (+ C), then epi: one
 * product, on the packed weights when there are some, else cblas_sgemm. */
typedef struct {
    const gemm_weights *packed;
    const float *w;
    int rows, n, k, lda, ldc;
    const float *a;
    float *c;
    bool accumulate;
    gemm_epilogue epi;
} linear_job;

static void linear_rows(const linear_job *j, int r0, int r1)
{
    if (r1 <= r0)
        return;
    const float *a = j->a + (size_t)r0 * (size_t)j->lda;
    float *c = j->c + (size_t)r0 * (size_t)j->ldc;
    const int m = r1 - r0;
    if (j->packed->panels) {
        gemm_run(j->packed, m, a, j->lda, j->accumulate, c, j->ldc, &j->epi);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, j->n, j->k, 1.0f, a, j->lda, j->w, j->k,
                j->accumulate ? 1.0f : 0.0f, c, j->ldc);
    switch (j->epi.kind) {
    case GEMM_EPI_NONE:
        break;
    case GEMM_EPI_BIAS_GELU:
        kernels_bias_gelu_rows(c, j->ldc, m, j->n, j->epi.bias);
        break;
    case GEMM_EPI_BIAS_LN:
        kernels_layernorm_rows(c, j->ldc, m, j->n, j->epi.bias, j->epi.gamma, j->epi.beta,
                               j->epi.eps);
        break;
    }
}

static int linear_align(const linear_job *j)
{
    return j->packed->panels ? gemm_path_rows(j->packed->path) : 8;
}

/* Items are blocks of linear_align rows. */
static void linear_blocks(void *arg, int lane, int begin, int end)
{
    (void)lane;
    const linear_job *j = arg;
    const int align = linear_align(j);
    linear_rows(j, begin * align, end * align < j->rows ? end * align : j->rows);
}

/* Items are panels of W's columns, for products of few rows: each lane reads
 * only its share of W (split by rows, every lane would read all of it). A
 * LayerNorm epilogue needs whole rows: it runs after, in linear. */
static void linear_panels(void *arg, int lane, int begin, int end)
{
    (void)lane;
    const linear_job *j = arg;
    const gemm_epilogue none = {.kind = GEMM_EPI_NONE};
    gemm_run_panels(j->packed, begin, end, j->rows, j->a, j->lda, j->accumulate, j->c, j->ldc,
                    j->epi.kind == GEMM_EPI_BIAS_LN ? &none : &j->epi);
}

/* Products below this many multiply-adds run on one lane: waking the others
 * would cost more than it saves. */
#define FF_SPLIT_MIN_MACS (1L << 18)
/* Products of at most this many rows split by columns (linear_panels). */
#define FF_SPLIT_COLUMNS_MAX_ROWS 64

static void linear(const run_state *s, const linear_job *j)
{
    const int align = linear_align(j);
    const bool split = s->team && (long)j->rows * j->n * j->k >= FF_SPLIT_MIN_MACS;
    if (split && j->packed->panels && j->rows <= FF_SPLIT_COLUMNS_MAX_ROWS &&
        gemm_panels(j->packed) >= 2) {
        parallel_for(s->team, gemm_panels(j->packed), 1, linear_panels, (void *)j);
        if (j->epi.kind == GEMM_EPI_BIAS_LN)
            kernels_layernorm_rows(j->c, j->ldc, j->rows, j->n, j->epi.bias, j->epi.gamma,
                                   j->epi.beta, j->epi.eps);
    } else if (split && j->rows >= 2 * align) {
        parallel_for(s->team, (j->rows + align - 1) / align, 1, linear_blocks, (void *)j);
    } else {
        linear_rows(j, 0, j->rows);
    }
}

/* Whether a sequence of n rows takes the folded key path (see the top of
 * this file): n D^2 multiply-adds for K's rows against about (H + 1) D^2 for
 * Ms and kg plus n H D for the head row sums. */
static bool key_folded(int n, int d, int h)
{
    return (long)n * (d - h) > (long)(h + 1) * d;
}

/* A short sequence's key side: K0 = X Wk^T in K's slot (ks), P = (K0 + bk) *
 * qg there, beta = softmax(key_att(P)) in att, and kg = sum_i beta_i P_i
 * (per head) in place of qg (s->vec). */
static void key_side_rows(const fastformer_layer *l, run_state *s, const float *xs, float *ks,
                          int n, float *att, const float *mask)
{
    const int d = s->d, h = s->h, ld = 2 * d;
    float *glob = s->vec;
    linear(s, &(linear_job){.packed = &l->key_packed,
                            .w = l->qk_weight + (size_t)d * d,
                            .rows = n,
                            .n = d,
                            .k = d,
                            .a = xs,
                            .lda = d,
                            .c = ks,
                            .ldc = ld});
    kernels_bias_mul_rows(ks, ld, ks, ld, n, d, l->qk_bias + d, glob);
    linear_rows(&(linear_job){.packed = &l->key_att_packed,
                              .w = l->key_att_weight,
                              .rows = n,
                              .n = h,
                              .k = d,
                              .a = ks,
                              .lda = ld,
                              .c = att,
                              .ldc = h},
                0, n);
    kernels_softmax_masked_cols(att, n, h, l->key_att_bias, s->inv_scale, mask, s->col);
    kernels_head_weighted_sum(glob, att, ks, ld, n, h, s->dh);
}

/* A longer sequence's key side without K: Ms = (Wka diag(qg)) Wk, logits
 * X_i Ms^T + key_att_bias + Wka diag(qg) bk, beta = their softmax in att, then
 * kg = qg * (Wk y_h + bk sum_i beta_ih) with y_h = sum_i beta_ih X_i, for the
 * features of head h, in place of qg (s->vec). */
static void key_side_folded(const fastformer_layer *l, run_state *s, const float *xs, int n,
                            float *att, const float *mask)
{
    const int d = s->d, h = s->h;
    const float *wk = l->qk_weight + (size_t)d * d, *bk = l->qk_bias + d;
    float *glob = s->vec, *a = s->amat, *ms = s->mmat, *bias = s->hvec, *wsum = s->hvec + h;
    kernels_bias_mul_rows(a, d, l->key_att_weight, d, h, d, NULL, glob);
    for (int hh = 0; hh < h; hh++)
        bias[hh] = l->key_att_bias[hh] + kernels_dot(a + (size_t)hh * d, bk, (size_t)d);
    gemm_weights ms_packed = {0};
    if (l->key_t_packed.panels) {
        linear(s, &(linear_job){.packed = &l->key_t_packed,
                                .rows = h,
                                .n = d,
                                .k = d,
                                .a = a,
                                .lda = d,
                                .c = ms,
                                .ldc = d});
        ms_packed = gemm_pack(l->key_t_packed.path, ms, h, d, d, s->mpack);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, h, d, d, 1.0f, a, d, wk, d, 0.0f, ms,
                    d);
    }
    linear_rows(&(linear_job){.packed = &ms_packed,
                              .w = ms,
                              .rows = n,
                              .n = h,
                              .k = d,
                              .a = xs,
                              .lda = d,
                              .c = att,
                              .ldc = h},
                0, n);
    kernels_softmax_masked_cols(att, n, h, bias, s->inv_scale, mask, s->col);
    kernels_head_row_sums(a, wsum, att, xs, d, n, h, d);
    kernels_head_matvec_scale(glob, wk, a, bk, wsum, d, s->dh);
}

/* Whether a sequence of n rows folds transform into dense (see the top of
 * this file). Forming Ms streams Wd Wt and Wd and writes Ms (3 D^2 floats),
 * which costs about as much as 16-20 rows of the product it saves, at D =
 * 256 (from L2) as at D = 768 (from L3 or memory); shorter sequences also
 * run their products with the chunk's other rows. Measured on Zen 4 against
 * the unfolded engine: a loss up to 16 rows in batches of short sequences, a
 * gain from 20. Needs the packed Wd Wt. */
#define FF_DENSE_FOLD_MIN_ROWS 20

static bool dense_fold_rows(int n)
{
    return n >= FF_DENSE_FOLD_MIN_ROWS;
}

static bool dense_folded(const fastformer_layer *l, int n)
{
    return l->dense_transform_packed.panels && dense_fold_rows(n);
}

/* Matrices below this many floats are formed (and multiplied) on one lane. */
#define FF_SPLIT_MIN_FLOATS (1L << 16)

/* Panels of Ms formed and multiplied at a time on one lane: about 512 KiB
 * of Ms (at least one panel), so that each block is still in L2 when the
 * product reads it, beside the sequence's rows of Q (at D = 768 Ms is 2.3
 * MiB: formed whole, it went to L3 and back). On a team, each lane forms
 * and multiplies the panels it takes: one parallel_for, not two. */
#define FF_FOLD_BLOCK_BYTES (512 * 1024)

/* The folded dense's product by column blocks: Ms's panels [begin, end)
 * formed from the packed Wd Wt and Wd (kg scaling the reduction index) in
 * blocks of FF_FOLD_BLOCK_BYTES, each multiplied into those columns of the
 * n rows of xs (X + Q Ms, accumulated) right after it is formed (n = 0:
 * formed only). The LayerNorm, which needs whole rows, runs after. */
typedef struct {
    const fastformer_layer *l;
    const float *kg;
    float *dst; /* Ms, packed */
    const float *q;
    float *xs;
    int n, d;
} dense_fold_job;

static void dense_fold_panels(void *arg, int lane, int begin, int end)
{
    (void)lane;
    const dense_fold_job *j = arg;
    const gemm_weights *wd = &j->l->attn_out_packed;
    const size_t panel_bytes = (size_t)wd->k * (size_t)wd->nr * sizeof(float);
    const int block =
        panel_bytes < FF_FOLD_BLOCK_BYTES ? (int)(FF_FOLD_BLOCK_BYTES / panel_bytes) : 1;
    for (int b = begin; b < end; b += block) {
        const int e = end - b < block ? end : b + block;
        const gemm_weights ms =
            gemm_pack_scaled_sum(&j->l->dense_transform_packed, j->kg, wd, b, e, j->dst);
        gemm_run_panels(&ms, b, e, j->n, j->q, 2 * j->d, true, j->xs, j->d, NULL);
    }
}

/* Whether a sequence of n rows runs its folded dense block by block
 * (dense_fold_panels) with its LayerNorm after: when its n rows of X fit in
 * L2 for that pass. Longer ones form Ms whole, then run the product with the
 * LayerNorm fused on each group of rows (split by rows on a team). */
static bool dense_fold_blocked(int n, int d)
{
    return (size_t)n * (size_t)d * sizeof(float) <= FF_FOLD_BLOCK_BYTES;
}

/* The attention sub-layer's output of one sequence whose transform is folded
 * into dense: A = LN(X + Q Ms + bd + Wd bt) into its rows xs, with Q = Q0 +
 * bq (made in place in qs) and Ms^T = Wd Wt diag(kg) + Wd, kg in s->vec,
 * packed into s->act (free until the FFN). */
static void attention_output_folded(const fastformer_layer *l, run_state *s, float *qs, float *xs,
                                    int n)
{
    const int d = s->d;
    kernels_bias_add_rows(qs, 2 * d, n, d, l->qk_bias);
    dense_fold_job job = {.l = l, .kg = s->vec, .dst = s->act, .q = qs, .xs = xs, .n = n, .d = d};
    const int n_panels = gemm_panels(&l->attn_out_packed);
    parallel_team *team = s->team && (long)d * d >= FF_SPLIT_MIN_FLOATS ? s->team : NULL;
    const gemm_epilogue ln = {GEMM_EPI_BIAS_LN, l->dense_transform_bias_folded, l->attn_ln_weight,
                              l->attn_ln_bias, s->eps};
    if (dense_fold_blocked(n, d)) {
        parallel_for(team, n_panels, 1, dense_fold_panels, &job);
        kernels_layernorm_rows(xs, d, n, d, ln.bias, ln.gamma, ln.beta, ln.eps);
        return;
    }
    job.n = 0; /* form Ms only */
    parallel_for(team, n_panels, 1, dense_fold_panels, &job);
    /* the view of the whole of Ms (no panel written) */
    const gemm_weights ms =
        gemm_pack_scaled_sum(&l->dense_transform_packed, s->vec, &l->attn_out_packed, 0, 0, s->act);
    linear(s, &(linear_job){.packed = &ms,
                            .rows = n,
                            .n = d,
                            .k = d,
                            .a = qs,
                            .lda = 2 * d,
                            .c = xs,
                            .ldc = d,
                            .accumulate = true,
                            .epi = ln});
}

/* The per-sequence part of the additive attention: for each sequence,
 * alpha's softmax (s->att holds its logits), qg, the key side (beta and kg),
 * then either U = kg * (Q0 + bq) in K's slot or, when transform is folded
 * into dense, the attention sub-layer's output A in X's rows. */
static void additive_attention(const fastformer_layer *l, run_state *s, const float *qatt_bias)
{
    const int d = s->d, h = s->h, ld = 2 * d;
    float *q = s->qk, *k = s->qk + d, *glob = s->vec;
    const float *bq = l->qk_bias;
    for (int si = 0; si < s->n_seqs; si++) {
        const int r0 = s->seq_start[si] - s->row0, n = s->seq_start[si + 1] - s->seq_start[si];
        if (n == 0)
            continue;
        float *att = s->att + (size_t)r0 * (size_t)h;
        float *qs = q + (size_t)r0 * ld, *ks = k + (size_t)r0 * ld;
        const float *xs = s->x + (size_t)r0 * d;
        kernels_softmax_masked_cols(att, n, h, qatt_bias, s->inv_scale, s->mask + r0, s->col);
        kernels_head_weighted_sum(glob, att, qs, ld, n, h, s->dh);
        for (int j = 0; j < d; j++)
            glob[j] += bq[j];
        if (key_folded(n, d, h))
            key_side_folded(l, s, xs, n, att, s->mask + r0);
        else
            key_side_rows(l, s, xs, ks, n, att, s->mask + r0);
        if (dense_folded(l, n))
            attention_output_folded(l, s, qs, s->x + (size_t)r0 * d, n);
        else
            kernels_bias_mul_rows(ks, ld, qs, ld, n, d, bq, glob);
    }
}

/* The attention sub-layer's output A = LN(dense(transform(U) + Q) + X) of the
 * chunk's rows [r0, r1) (sequences that do not fold transform into dense):
 * out0 = transform(U) + Q0 in Q's slot (out = out0 + bq + bt), then
 * A = LN(X + out0 Wd^T + bd + Wd (bq + bt)), the LayerNorm fused on each
 * block of rows of the product. */
static void attention_output_rows(const fastformer_layer *l, run_state *s, int r0, int r1,
                                  const float *dense_bias)
{
    const int d = s->d, ld = 2 * d;
    float *q = s->qk + (size_t)r0 * ld, *k = q + d;
    linear(s, &(linear_job){.packed = &l->transform_packed,
                            .w = l->transform_weight,
                            .rows = r1 - r0,
                            .n = d,
                            .k = d,
                            .a = k,
                            .lda = ld,
                            .c = q,
                            .ldc = ld,
                            .accumulate = true});
    linear(s, &(linear_job){.packed = &l->attn_out_packed,
                            .w = l->attn_out_weight,
                            .rows = r1 - r0,
                            .n = d,
                            .k = d,
                            .a = q,
                            .lda = ld,
                            .c = s->x + (size_t)r0 * d,
                            .ldc = d,
                            .accumulate = true,
                            .epi = {GEMM_EPI_BIAS_LN, dense_bias, l->attn_ln_weight,
                                    l->attn_ln_bias, s->eps}});
}

/* One FastformerLayer over all rows: X (s->x) becomes the layer's output Y. */
static void layer_forward(const fastformer_layer *l, run_state *s)
{
    const int d = s->d, h = s->h, ld = 2 * d, rows = s->n_rows;
    float *q = s->qk;

    /* Q0 = X Wq^T without bias (K: see additive_attention). Rather than passes adding biases to
     * Q0, they are carried along: query_att(Q0 + bq) = Q0 Wa^T + (Wa bq + ba);
     * qg gains bq (the softmax weights sum to 1); U gets it in the U pass; the
     * residual's bq + bt goes through dense as Wd (bq + bt) into dense's bias.
     * Both folded biases are constants of the weights: fastformer_pack
     * computes them once; an encoder that is not packed folds them here
     * (D*D multiply-adds per layer). bk joins the key side. */
    const float *qatt_bias = l->query_att_bias_folded, *dense_bias = l->attn_out_bias_folded;
    if (!qatt_bias || !dense_bias) {
        float *qb = s->vec + 3 * d, *db = s->vec + 2 * d;
        fold_biases(l, d, h, qb, db, s->vec + d);
        qatt_bias = qb;
        dense_bias = db;
    }
    linear(s, &(linear_job){.packed = &l->query_packed,
                            .w = l->qk_weight,
                            .rows = rows,
                            .n = d,
                            .k = d,
                            .a = s->x,
                            .lda = d,
                            .c = s->qk,
                            .ldc = ld});

    /* alpha = softmax(query_att(Q) / sqrt(dh) + ext) needs the logits of every
     * row: one GEMM. Then, one sequence at a time so that its rows stay in
     * L2 from the first read to the last: qg; the key side (beta and kg, with
     * or without K's rows); U = kg * (Q0 + bq) in K's slot, or for a long
     * sequence the sub-layer's output A (transform folded into dense). */
    linear(s, &(linear_job){.packed = &l->query_att_packed,
                            .w = l->query_att_weight,
                            .rows = rows,
                            .n = h,
                            .k = d,
                            .a = q,
                            .lda = ld,
                            .c = s->att,
                            .ldc = h});
    additive_attention(l, s, qatt_bias);

    /* A for the sequences that did not fold transform into dense, each run
     * of consecutive ones in two products over all its rows. */
    for (int s0 = 0, s1; s0 < s->n_seqs; s0 = s1) {
        s1 = s0 + 1;
        const int32_t *st = s->seq_start;
        if (dense_folded(l, st[s0 + 1] - st[s0]))
            continue;
        while (s1 < s->n_seqs && !dense_folded(l, st[s1 + 1] - st[s1]))
            s1++;
        attention_output_rows(l, s, st[s0] - s->row0, st[s1] - s->row0, dense_bias);
    }
    /* G = gelu(A Wi^T + bi); Y = LN(G Wo^T + bo + A), both epilogues fused. */
    linear(s, &(linear_job){.packed = &l->inter_packed,
                            .w = l->inter_weight,
                            .rows = rows,
                            .n = s->inter,
                            .k = d,
                            .a = s->x,
                            .lda = d,
                            .c = s->act,
                            .ldc = s->inter,
                            .epi = {.kind = GEMM_EPI_BIAS_GELU, .bias = l->inter_bias}});
    linear(s, &(linear_job){.packed = &l->out_packed,
                            .w = l->out_weight,
                            .rows = rows,
                            .n = d,
                            .k = s->inter,
                            .a = s->act,
                            .lda = s->inter,
                            .c = s->x,
                            .ldc = d,
                            .accumulate = true,
                            .epi = {GEMM_EPI_BIAS_LN, l->out_bias, l->out_ln_weight, l->out_ln_bias,
                                    s->eps}});
}

/* ---- encode ---------------------------------------------------------------- */

static void prefetch_row(const void *row, size_t bytes)
{
    for (size_t b = 0; b < bytes; b += FF_ALIGN_BYTES)
        __builtin_prefetch((const char *)row + b);
}

/* E for a factored table, into x: each row's K factors are dequantized into
 * qk (free until the first layer; K <= D <= 2D floats a row), then one
 * (rows, K) x (K, D) product through the projection. Row by row, the
 * projection is D dot products of length K per token: the default topic
 * model (D = 256, K = 100) ran 12-17% slower that way than with its earlier
 * unfactored table, 3% slower this way. */
static void project_factored_rows(run_state *s, const embedding_table *table, size_t row_bytes)
{
    static const gemm_weights unpacked; /* no panels: linear runs cblas_sgemm on .w */
    const int k = table->width, row_end = s->row0 + s->n_rows;
    for (int r = s->row0; r < row_end; r++) {
        if (r + FF_PREFETCH_ROWS < row_end)
            prefetch_row(s->row_src[r + FF_PREFETCH_ROWS], row_bytes);
        embedding_row_read_stored(table, s->row_src[r], s->qk + (size_t)(r - s->row0) * k);
    }
    linear(s, &(linear_job){.packed = &unpacked,
                            .w = table->projection,
                            .rows = s->n_rows,
                            .n = s->d,
                            .k = k,
                            .a = s->qk,
                            .lda = k,
                            .c = s->x,
                            .ldc = s->d});
}

/* Embedding LayerNorm, the layers and the pooling of one chunk; writes the
 * chunk's pooled vectors (s->n_seqs, D). */
static void chunk_forward(const fastformer_encoder *enc, run_state *s, float *pooled)
{
    const int d = s->d;
    const int32_t *starts = s->seq_start;

    /* X = LN(E + positions from 0 per sequence), E read through row_src
     * straight into the chunk's rows (int8 rows dequantized on the way).
     * Embedding rows are scattered over a table that rarely fits in cache:
     * the rows a few steps ahead are prefetched so that their misses overlap
     * (an int8 row's scales are a separate, smaller miss, left to the
     * hardware). The stored row is what is prefetched: K bytes for a
     * factored table, whose projection every row shares and stays cached. */
    const embedding_table *table = s->row_table;
    const size_t row_bytes = table ? embedding_row_bytes(table) : (size_t)d * sizeof(float);
    const int row_end = s->row0 + s->n_rows;
    const bool factored = table && table->projection;
    if (factored)
        project_factored_rows(s, table, row_bytes);
    for (int si = 0; si < s->n_seqs; si++)
        for (int r = starts[si]; r < starts[si + 1]; r++) {
            float *x = s->x + (size_t)(r - s->row0) * d;
            if (!factored) {
                if (r + FF_PREFETCH_ROWS < row_end)
                    prefetch_row(s->row_src[r + FF_PREFETCH_ROWS], row_bytes);
                if (table)
                    embedding_row_read(table, s->row_src[r], x);
                else
                    memcpy(x, s->row_src[r], row_bytes);
            }
            kernels_add_layernorm(x, enc->position_embeddings + (size_t)(r - starts[si]) * d, d,
                                  enc->ln_weight, enc->ln_bias, s->eps);
        }

    for (int li = 0; li < enc->dims.num_hidden_layers; li++)
        layer_forward(&enc->layers[li], s);

    /* Pooling: e = tanh(att_fc1(Y)); s = att_fc2(e); w = exp(s)*mask/(sum+1e-8). */
    linear(s, &(linear_job){.packed = &enc->pool_fc1_packed,
                            .w = enc->pool_fc1_weight,
                            .rows = s->n_rows,
                            .n = d,
                            .k = d,
                            .a = s->x,
                            .lda = d,
                            .c = s->qk,
                            .ldc = d});
    kernels_tanh_dot_rows(s->qk, d, s->n_rows, d, enc->pool_fc1_bias, enc->pool_fc2_weight,
                          enc->pool_fc2_bias[0], s->score);
    for (int si = 0; si < s->n_seqs; si++) {
        const int r0 = starts[si] - s->row0, n = starts[si + 1] - starts[si];
        float *out = pooled + (size_t)si * d;
        if (n == 0) {
            memset(out, 0, (size_t)d * sizeof(float));
            continue;
        }
        kernels_attention_pool(s->score + r0, s->mask + r0, s->x + (size_t)r0 * d, d, n, d, out);
    }
}

/* Sequences [chunk_seq[c], chunk_seq[c+1]) form chunk c. */
static void chunk_run(const fastformer_encoder *enc, const fastformer_workspace *ws, run_state *s,
                      int s0, int s1, float *pooled)
{
    const int32_t *starts = ws->seq_start;
    s->row0 = starts[s0];
    s->n_rows = starts[s1] - starts[s0];
    s->n_seqs = s1 - s0;
    s->seq_start = starts + s0;
    s->mask = ws->mask + s->row0;
    float *out = pooled + (size_t)s0 * (size_t)s->d;
    if (s->n_rows == 0)
        memset(out, 0, (size_t)s->n_seqs * (size_t)s->d * sizeof(float));
    else
        chunk_forward(enc, s, out);
}

/* Chunks of whole sequences, greedily up to max_rows rows each (a longer
 * sequence is a chunk of its own); returns how many, bounds in chunk_seq. */
static int chunks_plan(const int32_t *starts, int n_seqs, int max_rows, int32_t *chunk_seq)
{
    int n = 0;
    for (int s0 = 0, s1; s0 < n_seqs; s0 = s1) {
        s1 = s0 + 1;
        while (s1 < n_seqs && starts[s1 + 1] - starts[s0] <= max_rows)
            s1++;
        chunk_seq[n++] = s0;
    }
    chunk_seq[n] = n_seqs;
    return n;
}

/* A run_state on the scratch of lane `lane`. */
static run_state lane_state(const run_state *base, const fastformer_workspace *ws,
                            const ws_layout *l, int lane)
{
    float *sc = ws->scratch + (size_t)lane * l->lane_floats;
    run_state s = *base;
    s.x = sc + l->x;
    s.qk = sc + l->qk;
    s.att = sc + l->att;
    s.act = sc + l->inter;
    s.score = sc + l->score;
    s.vec = sc + l->vec;
    s.col = sc + l->col;
    s.amat = sc + l->amat;
    s.mmat = sc + l->mmat;
    s.mpack = sc + l->mpack;
    s.hvec = sc + l->hvec;
    return s;
}

/* Whole chunks per lane, each lane on its own scratch, taken one at a time
 * (so that a lane slowed by a busy machine takes fewer). */
typedef struct {
    const fastformer_encoder *enc;
    const fastformer_workspace *ws;
    const ws_layout *l;
    const run_state *base;
    float *pooled;
} chunks_job;

static void chunks_lane(void *arg, int lane, int begin, int end)
{
    const chunks_job *j = arg;
    run_state s = lane_state(j->base, j->ws, j->l, lane);
    for (int c = begin; c < end; c++)
        chunk_run(j->enc, j->ws, &s, j->ws->chunk_seq[c], j->ws->chunk_seq[c + 1], j->pooled);
}

void fastformer_encode(const fastformer_encoder *enc, fastformer_workspace *ws, int n_seqs,
                       float *pooled)
{
    const fastformer_dims *dims = &enc->dims;
    assert(dims->hidden_size == ws->dims.hidden_size);
    assert(dims->num_attention_heads == ws->dims.num_attention_heads);
    assert(dims->intermediate_size == ws->dims.intermediate_size);
    assert(n_seqs >= 0 && n_seqs <= ws->max_seqs);
    const int d = dims->hidden_size, h = dims->num_attention_heads;
    const int32_t *starts = ws->seq_start;
    assert(starts[0] == 0);

    ws_layout l;
    int ok = layout_compute(&ws->dims, ws->max_tokens, ws->max_seqs, ws->n_lanes, &l);
    assert(ok == 0);
    (void)ok;
    for (int si = 0; si < n_seqs; si++) {
        assert(starts[si + 1] >= starts[si]);
        assert(starts[si + 1] - starts[si] <= dims->max_position_embeddings);
        assert(starts[si + 1] - starts[si] <= l.chunk_rows);
    }
    const int total_rows = n_seqs > 0 ? starts[n_seqs] : 0;
    assert(total_rows <= ws->max_tokens);

    const run_state base = {
        .d = d,
        .h = h,
        .inter = dims->intermediate_size,
        .dh = d / h,
        .inv_scale = (float)(1.0 / sqrt((double)(d / h))),
        .eps = dims->layer_norm_eps,
        .row_src = ws->row_src,
        .row_table = ws->row_table,
    };
    const int n_lanes = ws->team ? parallel_team_lanes(ws->team) : 1;
    if (n_lanes > 1 && n_seqs >= n_lanes) {
        /* Enough sequences: whole chunks per lane, at most an equal share of
         * the rows each so that every lane gets work. */
        int share = (total_rows + n_lanes - 1) / n_lanes;
        int max_rows = share < l.chunk_rows ? (share > 0 ? share : 1) : l.chunk_rows;
        chunks_job j = {.enc = enc, .ws = ws, .l = &l, .base = &base, .pooled = pooled};
        parallel_for(ws->team, chunks_plan(starts, n_seqs, max_rows, ws->chunk_seq), 1, chunks_lane,
                     &j);
        return;
    }
    /* One lane's chunks in turn, each product split across the team. */
    run_state s = lane_state(&base, ws, &l, 0);
    s.team = n_lanes > 1 ? ws->team : NULL;
    const int n_chunks = chunks_plan(starts, n_seqs, l.chunk_rows, ws->chunk_seq);
    for (int c = 0; c < n_chunks; c++)
        chunk_run(enc, ws, &s, ws->chunk_seq[c], ws->chunk_seq[c + 1], pooled);
}

double fastformer_gemm_flops(const fastformer_dims *dims, const int32_t *seq_start, int n_seqs)
{
    const double d = dims->hidden_size, h = dims->num_attention_heads, i = dims->intermediate_size;
    double macs = 0.0;
    for (int si = 0; si < n_seqs; si++) {
        const int len = seq_start[si + 1] - seq_start[si];
        const double n = len;
        if (len == 0)
            continue;
        /* query, query_att, intermediate, output; transform and dense, or
         * their fold's one product (forming Ms is not a product); then the
         * key side: the sequence's key matrix and its logits, or K's rows and
         * key_att. */
        double per_layer = n * (d * d + d * h + d * i + i * d);
        per_layer += dense_fold_rows(len) ? n * d * d : 2 * n * d * d;
        per_layer += key_folded(len, dims->hidden_size, dims->num_attention_heads)
                         ? h * d * d + n * h * d
                         : n * d * d + n * d * h;
        /* pooling att_fc1 (att_fc2 is a fused dot product, not a GEMM). */
        macs += per_layer * dims->num_hidden_layers + n * d * d;
    }
    return 2.0 * macs;
}
