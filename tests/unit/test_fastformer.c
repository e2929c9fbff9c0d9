/* test_fastformer: the engine (model/fastformer.c) against a naive
 * double-precision encoder written here loop by loop from docs/fastformer.md
 * sections 2-4, on random weights and shapes the PyTorch fixtures do not cover
 * (head_dim 1, 3 and 50, odd sizes, 1 and 3 layers), on ragged batches with
 * empty sequences, padding rows and all-padding sequences; plus the workspace
 * sizing contract and the GEMM FLOP count. Every shape runs on every engine
 * variant: weights not packed (cblas_sgemm), packed for each GEMM kernel
 * path the CPU supports, and on teams of 2 and 3 lanes (whole chunks per
 * lane, or each product split by rows when there are fewer sequences than
 * lanes). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fastformer.h"

/* ---- random model ------------------------------------------------------------ */

typedef struct {
    uint64_t s;
} rng;

static float rng_uniform(rng *r, float lo, float hi)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return lo + (hi - lo) * (float)((r->s >> 40) * (1.0 / 16777216.0));
}

/* All buffers of one random encoder live in `pool` (freed at once). */
typedef struct {
    fastformer_encoder enc;
    fastformer_layer layers[4];
    float *pool;
    size_t used, cap;
} rand_model;

static float *take(rand_model *m, rng *r, size_t n, float lo, float hi)
{
    assert_true(m->used + n <= m->cap);
    float *p = m->pool + m->used;
    m->used += n;
    for (size_t i = 0; i < n; i++)
        p[i] = rng_uniform(r, lo, hi);
    return p;
}

static void rand_model_init(rand_model *m, const fastformer_dims *d, uint64_t seed)
{
    const size_t D = (size_t)d->hidden_size, H = (size_t)d->num_attention_heads,
                 I = (size_t)d->intermediate_size, L = (size_t)d->num_hidden_layers,
                 P = (size_t)d->max_position_embeddings;
    assert_true(L <= 4);
    memset(m, 0, sizeof *m);
    m->cap = P * D + 2 * D + D * D + 2 * D + 1 +
             L * (2 * D * D + 2 * D + 2 * (H * D + H) + 2 * (D * D + D) + 2 * D + I * D + I +
                  D * I + D + 2 * D);
    m->pool = malloc(m->cap * sizeof(float));
    assert_non_null(m->pool);
    rng r = {seed};
    const float w = 1.0f / sqrtf((float)D), wi = 1.0f / sqrtf((float)I);
    m->enc.dims = *d;
    m->enc.position_embeddings = take(m, &r, P * D, -0.5f, 0.5f);
    m->enc.ln_weight = take(m, &r, D, 0.5f, 1.5f);
    m->enc.ln_bias = take(m, &r, D, -0.3f, 0.3f);
    for (size_t l = 0; l < L; l++) {
        fastformer_layer *y = &m->layers[l];
        y->qk_weight = take(m, &r, 2 * D * D, -w, w);
        y->qk_bias = take(m, &r, 2 * D, -0.3f, 0.3f);
        y->query_att_weight = take(m, &r, H * D, -3 * w, 3 * w);
        y->query_att_bias = take(m, &r, H, -0.3f, 0.3f);
        y->key_att_weight = take(m, &r, H * D, -3 * w, 3 * w);
        y->key_att_bias = take(m, &r, H, -0.3f, 0.3f);
        y->transform_weight = take(m, &r, D * D, -w, w);
        y->transform_bias = take(m, &r, D, -0.3f, 0.3f);
        y->attn_out_weight = take(m, &r, D * D, -w, w);
        y->attn_out_bias = take(m, &r, D, -0.3f, 0.3f);
        y->attn_ln_weight = take(m, &r, D, 0.5f, 1.5f);
        y->attn_ln_bias = take(m, &r, D, -0.3f, 0.3f);
        y->inter_weight = take(m, &r, I * D, -w, w);
        y->inter_bias = take(m, &r, I, -0.3f, 0.3f);
        y->out_weight = take(m, &r, D * I, -wi, wi);
        y->out_bias = take(m, &r, D, -0.3f, 0.3f);
        y->out_ln_weight = take(m, &r, D, 0.5f, 1.5f);
        y->out_ln_bias = take(m, &r, D, -0.3f, 0.3f);
    }
    m->enc.layers = m->layers;
    m->enc.pool_fc1_weight = take(m, &r, D * D, -w, w);
    m->enc.pool_fc1_bias = take(m, &r, D, -0.3f, 0.3f);
    m->enc.pool_fc2_weight = take(m, &r, D, -2 * w, 2 * w);
    m->enc.pool_fc2_bias = take(m, &r, 1, -0.3f, 0.3f);
}

/* ---- the naive reference (double, one sequence at a time) ------------------- */

/* y (n, out) = x (n, in) W^T + b, W [out, in] */
static void linear(const double *x, int n, int in, const float *w, const float *b, int out,
                   double *y)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b[o];
            for (int k = 0; k < in; k++)
                acc += x[i * in + k] * w[o * in + k];
            y[i * out + o] = acc;
        }
}

static void layer_norm(double *x, int n, int d, const float *g, const float *b, double eps)
{
    for (int i = 0; i < n; i++) {
        double mean = 0, var = 0;
        for (int j = 0; j < d; j++)
            mean += x[i * d + j];
        mean /= d;
        for (int j = 0; j < d; j++)
            var += (x[i * d + j] - mean) * (x[i * d + j] - mean);
        var /= d;
        for (int j = 0; j < d; j++)
            x[i * d + j] = (x[i * d + j] - mean) / sqrt(var + eps) * g[j] + b[j];
    }
}

/* softmax over tokens of (logits[i*H+h] / sqrt(dh) + ext[i]) for each head */
static void token_softmax(double *a, int n, int H, int dh, const float *mask)
{
    for (int h = 0; h < H; h++) {
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < n; i++) {
            a[i * H + h] = a[i * H + h] / sqrt((double)dh) + (1.0 - mask[i]) * -10000.0;
            mx = fmax(mx, a[i * H + h]);
        }
        for (int i = 0; i < n; i++) {
            a[i * H + h] = exp(a[i * H + h] - mx);
            sum += a[i * H + h];
        }
        for (int i = 0; i < n; i++)
            a[i * H + h] /= sum;
    }
}

static void naive_sequence(const fastformer_encoder *e, const float *emb, const float *mask, int n,
                           double *pooled)
{
    const fastformer_dims *d = &e->dims;
    const int D = d->hidden_size, H = d->num_attention_heads, I = d->intermediate_size, dh = D / H;
    if (n == 0) {
        for (int j = 0; j < D; j++)
            pooled[j] = 0.0;
        return;
    }
    double *x = calloc((size_t)n * D, sizeof(double)), *q = calloc((size_t)n * D, sizeof(double));
    double *k = calloc((size_t)n * D, sizeof(double)), *u = calloc((size_t)n * D, sizeof(double));
    double *o = calloc((size_t)n * D, sizeof(double)), *g = calloc((size_t)n * I, sizeof(double));
    double *a = calloc((size_t)n * H, sizeof(double)), *t = calloc((size_t)n * D, sizeof(double));
    double qg[256], kg[256];
    assert_true(x && q && k && u && o && g && a && t && D <= 256);

    for (int i = 0; i < n; i++)
        for (int j = 0; j < D; j++)
            x[i * D + j] = (double)emb[i * D + j] + e->position_embeddings[i * D + j];
    layer_norm(x, n, D, e->ln_weight, e->ln_bias, d->layer_norm_eps);

    for (int l = 0; l < d->num_hidden_layers; l++) {
        const fastformer_layer *y = &e->layers[l];
        linear(x, n, D, y->qk_weight, y->qk_bias, D, q);
        linear(x, n, D, y->qk_weight + (size_t)D * D, y->qk_bias + D, D, k);
        linear(q, n, D, y->query_att_weight, y->query_att_bias, H, a);
        token_softmax(a, n, H, dh, mask);
        for (int f = 0; f < D; f++) {
            qg[f] = 0;
            for (int i = 0; i < n; i++)
                qg[f] += a[i * H + f / dh] * q[i * D + f];
        }
        for (int i = 0; i < n; i++)
            for (int f = 0; f < D; f++)
                k[i * D + f] *= qg[f]; /* P */
        linear(k, n, D, y->key_att_weight, y->key_att_bias, H, a);
        token_softmax(a, n, H, dh, mask);
        for (int f = 0; f < D; f++) {
            kg[f] = 0;
            for (int i = 0; i < n; i++)
                kg[f] += a[i * H + f / dh] * k[i * D + f];
        }
        for (int i = 0; i < n; i++)
            for (int f = 0; f < D; f++)
                u[i * D + f] = kg[f] * q[i * D + f];
        linear(u, n, D, y->transform_weight, y->transform_bias, D, o);
        for (int i = 0; i < n * D; i++)
            o[i] += q[i];
        linear(o, n, D, y->attn_out_weight, y->attn_out_bias, D, t);
        for (int i = 0; i < n * D; i++)
            x[i] += t[i];
        layer_norm(x, n, D, y->attn_ln_weight, y->attn_ln_bias, d->layer_norm_eps);
        linear(x, n, D, y->inter_weight, y->inter_bias, I, g);
        for (int i = 0; i < n * I; i++)
            g[i] = 0.5 * g[i] * (1.0 + erf(g[i] / sqrt(2.0)));
        linear(g, n, I, y->out_weight, y->out_bias, D, t);
        for (int i = 0; i < n * D; i++)
            x[i] += t[i];
        layer_norm(x, n, D, y->out_ln_weight, y->out_ln_bias, d->layer_norm_eps);
    }

    linear(x, n, D, e->pool_fc1_weight, e->pool_fc1_bias, D, t);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double s = e->pool_fc2_bias[0];
        for (int j = 0; j < D; j++)
            s += tanh(t[i * D + j]) * e->pool_fc2_weight[j];
        a[i] = exp(s) * mask[i];
        sum += a[i];
    }
    for (int j = 0; j < D; j++) {
        pooled[j] = 0;
        for (int i = 0; i < n; i++)
            pooled[j] += a[i] / (sum + 1e-8) * x[i * D + j];
    }
    free(x);
    free(q);
    free(k);
    free(u);
    free(o);
    free(g);
    free(a);
    free(t);
}

/* ---- engine vs reference ---------------------------------------------------- */

/* ---- teams of lent threads ------------------------------------------------------ */

typedef struct {
    parallel_team *team;
    pthread_t threads[4];
    int n_lanes;
} test_team;

typedef struct {
    parallel_team *team;
    int lane;
} lent_thread;

static void *serve_main(void *arg)
{
    lent_thread *t = arg;
    parallel_team_serve(t->team, t->lane);
    free(t);
    return NULL;
}

static void team_start(test_team *t, int n_lanes)
{
    assert_true(n_lanes >= 1 && n_lanes <= 5);
    t->n_lanes = n_lanes;
    t->team = parallel_team_new(n_lanes);
    assert_non_null(t->team);
    for (int i = 1; i < n_lanes; i++) {
        lent_thread *lt = malloc(sizeof *lt);
        assert_non_null(lt);
        *lt = (lent_thread){t->team, i};
        assert_int_equal(pthread_create(&t->threads[i - 1], NULL, serve_main, lt), 0);
    }
}

static void team_stop(test_team *t)
{
    parallel_team_stop(t->team);
    for (int i = 1; i < t->n_lanes; i++)
        pthread_join(t->threads[i - 1], NULL);
    parallel_team_free(t->team);
}

/* ---- the engine against the reference -------------------------------------------- */

/* One engine variant: packed for `path` (or not packed when path < 0), on a
 * team of n_lanes lanes. */
static void check_variant(fastformer_dims dims, const int *lens, int n_seqs, uint64_t seed,
                          int path, int n_lanes)
{
    rand_model m;
    rand_model_init(&m, &dims, seed);
    float *packed = NULL;
    if (path >= 0) {
        size_t n = fastformer_packed_floats(&dims, (gemm_path)path);
        packed = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
        assert_non_null(packed);
        fastformer_pack(&m.enc, m.layers, (gemm_path)path, packed);
    }
    const int D = dims.hidden_size;
    int total = 0;
    for (int s = 0; s < n_seqs; s++)
        total += lens[s];
    fastformer_workspace *ws =
        fastformer_workspace_new_lanes(&dims, total + 3, n_seqs + 1, n_lanes);
    assert_non_null(ws);
    test_team team = {0};
    if (n_lanes > 1) {
        team_start(&team, n_lanes);
        fastformer_workspace_set_team(ws, team.team);
    }

    rng r = {seed * 7 + 1};
    float *emb = malloc((size_t)(total ? total : 1) * D * sizeof(float));
    float *mask = malloc((size_t)(total ? total : 1) * sizeof(float));
    assert_non_null(emb);
    assert_non_null(mask);
    for (int i = 0; i < total * D; i++)
        emb[i] = rng_uniform(&r, -1.5f, 1.5f);
    ws->seq_start[0] = 0;
    for (int s = 0, row = 0; s < n_seqs; s++) {
        for (int i = 0; i < lens[s]; i++, row++) {
            /* padding inside sequences: every 4th row of odd sequences, and
             * every row of sequence 2 (an all-padding sequence) */
            mask[row] = (s == 2 || (s % 2 == 1 && i % 4 == 3)) ? 0.0f : 1.0f;
        }
        ws->seq_start[s + 1] = ws->seq_start[s] + lens[s];
    }
    fastformer_set_rows(ws, 0, emb, total);
    memcpy(ws->mask, mask, (size_t)total * sizeof(float)); /* after set_rows: its mask is 1 */
    float *pooled = malloc((size_t)n_seqs * D * sizeof(float));
    assert_non_null(pooled);
    fastformer_encode(&m.enc, ws, n_seqs, pooled);

    double want[256];
    for (int s = 0; s < n_seqs; s++) {
        const int r0 = ws->seq_start[s];
        naive_sequence(&m.enc, emb + (size_t)r0 * D, mask + r0, lens[s], want);
        int all_padding = 1;
        for (int i = 0; i < lens[s]; i++)
            all_padding &= mask[r0 + i] == 0.0f;
        for (int j = 0; j < D; j++) {
            const float got = pooled[(size_t)s * D + j];
            if (all_padding)
                assert_true(got == 0.0f);
            else if (!(fabs(got - want[j]) <= 2e-5 * fabs(want[j]) + 2e-5))
                fail_msg("D=%d H=%d I=%d L=%d (%s, %d lanes) seq %d (len %d) [%d]: got %.9g "
                         "want %.9g",
                         D, dims.num_attention_heads, dims.intermediate_size,
                         dims.num_hidden_layers, path < 0 ? "cblas" : gemm_path_name(path), n_lanes,
                         s, lens[s], j, (double)got, want[j]);
        }
    }
    if (n_lanes > 1)
        team_stop(&team);
    free(packed);
    fastformer_workspace_free(ws);
    free(emb);
    free(mask);
    free(pooled);
    free(m.pool);
}

/* Every variant: not packed on one lane and on two, then packed for each
 * supported path on 1, 2 and 3 lanes. */
static void check_shape(fastformer_dims dims, const int *lens, int n_seqs, uint64_t seed)
{
    check_variant(dims, lens, n_seqs, seed, -1, 1);
    check_variant(dims, lens, n_seqs, seed, -1, 2);
    for (int p = 0; p < GEMM_N_PATHS; p++) {
        if (!gemm_path_supported((gemm_path)p))
            continue;
        for (int lanes = 1; lanes <= 3; lanes++)
            check_variant(dims, lens, n_seqs, seed, p, lanes);
    }
}

static void test_engine_matches_naive(void **state)
{
    (void)state;
    /* seq 0 empty, seq 2 all padding, others mixed; one at P. Sequences of
     * more than about H + 1 rows (here 7 and 10) take the folded key side,
     * shorter ones compute K's rows (fastformer.c). Sequences of at least 20
     * rows (test_gemm_flops pins the 20; here lens_c's 33, and from lens_h
     * on) fold transform into dense when the weights are packed, shorter ones
     * run both products: every branch on every variant, and folded and
     * unfolded sequences mixed in one chunk (lens_c, lens_j and the chunk
     * tests). */
    const int lens_a[] = {0, 7, 3, 1, 10, 2};
    check_shape((fastformer_dims){24, 3, 40, 2, 10, 1e-12f}, lens_a, 6, 11);
    const int lens_b[] = {5, 4, 2, 5};
    check_shape((fastformer_dims){16, 16, 8, 1, 5, 1e-12f}, lens_b, 4, 12); /* head_dim 1 */
    const int lens_c[] = {33, 1, 6, 0, 17};
    check_shape((fastformer_dims){100, 2, 36, 3, 33, 1e-5f}, lens_c, 5, 13); /* head_dim 50 */
    /* more rows than D: the engine folds the residual's bias through dense */
    const int lens_e[] = {8, 0, 3, 8, 8, 5, 7};
    check_shape((fastformer_dims){12, 4, 20, 2, 8, 1e-12f}, lens_e, 7, 15);
    const int lens_d[] = {1};
    check_shape((fastformer_dims){8, 1, 4, 0, 3, 1e-12f}, lens_d, 1, 14); /* no layers */
    /* One sequence on a team: every large product split across the lanes,
     * by columns (few rows) or by rows. */
    const int lens_h[] = {60};
    check_shape((fastformer_dims){128, 4, 256, 2, 60, 1e-12f}, lens_h, 1, 18);
    const int lens_i[] = {300};
    check_shape((fastformer_dims){64, 4, 128, 1, 300, 1e-12f}, lens_i, 1, 19);
    /* D = 256: a folded dense's D x D matrix is formed by panels across the
     * lanes; the second sequence is one row short of the fold */
    const int lens_j[] = {40, 7};
    check_shape((fastformer_dims){256, 8, 64, 1, 40, 1e-12f}, lens_j, 2, 20);
    check_shape((fastformer_dims){256, 8, 64, 1, 40, 1e-12f}, lens_j, 1, 21);
    /* A folded sequence whose rows of X (520 x 256 floats) outgrow the
     * blocked fold's 512 KiB: Ms formed whole, the product split by rows. */
    const int lens_k[] = {520};
    check_shape((fastformer_dims){256, 8, 64, 1, 520, 1e-12f}, lens_k, 1, 22);
}

/* Batches of more rows than one chunk (512): the engine runs them chunk by
 * chunk of whole sequences; every sequence must still match, whichever chunk
 * it lands in, including empty ones at chunk edges and, when P > 512, a chunk
 * of one P-row sequence. */
static void test_engine_chunks_match_naive(void **state)
{
    (void)state;
    const int lens_f[] = {300, 250, 40, 200, 0, 0, 120, 1, 300, 12};
    check_shape((fastformer_dims){16, 4, 24, 2, 300, 1e-12f}, lens_f, 10, 16);
    const int lens_g[] = {600, 5, 590, 512};
    check_shape((fastformer_dims){8, 2, 8, 1, 600, 1e-12f}, lens_g, 4, 17);
}

static void test_no_rows(void **state)
{
    (void)state;
    fastformer_dims dims = {16, 4, 8, 1, 8, 1e-12f};
    rand_model m;
    rand_model_init(&m, &dims, 5);
    fastformer_workspace *ws = fastformer_workspace_new(&dims, 4, 3);
    assert_non_null(ws);
    float pooled[3 * 16];
    for (int i = 0; i < 3 * 16; i++)
        pooled[i] = 1.0f;
    ws->seq_start[0] = ws->seq_start[1] = ws->seq_start[2] = ws->seq_start[3] = 0;
    fastformer_encode(&m.enc, ws, 3, pooled);
    for (int i = 0; i < 3 * 16; i++)
        assert_true(pooled[i] == 0.0f);
    fastformer_encode(&m.enc, ws, 0, pooled); /* no sequences: a no-op */
    fastformer_workspace_free(ws);
    free(m.pool);
}

static void test_gather(void **state)
{
    (void)state;
    fastformer_dims dims = {4, 2, 4, 1, 8, 1e-12f};
    fastformer_workspace *ws = fastformer_workspace_new(&dims, 6, 2);
    assert_non_null(ws);
    const float table[3 * 4] = {0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    const embedding_table emb = {
        .dtype = EMBEDDING_F32, .n_rows = 3, .dim = 4, .width = 4, .block = 4, .f32 = table};
    const int32_t ids[3] = {2, 0, 1};
    fastformer_gather(ws, 0, &emb, ids, 1);
    fastformer_gather(ws, 1, &emb, ids, 3);
    /* rows point into the table (no copies), mask = id != 0 */
    assert_ptr_equal(ws->row_table, &emb);
    assert_ptr_equal(ws->row_src[1], table + 2 * 4);
    assert_ptr_equal(ws->row_src[2], table + 0 * 4);
    assert_ptr_equal(ws->row_src[3], table + 1 * 4);
    assert_true(ws->mask[1] == 1.0f && ws->mask[2] == 0.0f && ws->mask[3] == 1.0f);
    /* an int8 table: rows point at its int8 rows */
    const int8_t q[3 * 4] = {0, 0, 0, 0, 1, -2, 3, -128, 127, 6, 7, 8};
    const float scale[3] = {0.0f, 0.5f, 0.25f};
    const embedding_table emb8 = {.dtype = EMBEDDING_I8,
                                  .n_rows = 3,
                                  .dim = 4,
                                  .width = 4,
                                  .block = 4,
                                  .i8 = q,
                                  .scale = scale};
    fastformer_gather(ws, 0, &emb8, ids, 3);
    assert_ptr_equal(ws->row_table, &emb8);
    assert_ptr_equal(ws->row_src[0], q + 2 * 4);
    assert_ptr_equal(ws->row_src[2], q + 1 * 4);
    /* vectors: consecutive rows, mask 1, no table */
    fastformer_set_rows(ws, 0, table + 4, 2);
    assert_null(ws->row_table);
    assert_ptr_equal(ws->row_src[0], table + 4);
    assert_ptr_equal(ws->row_src[1], table + 8);
    assert_true(ws->mask[0] == 1.0f && ws->mask[1] == 1.0f);
    fastformer_workspace_free(ws);
}

static void test_workspace_sizes(void **state)
{
    (void)state;
    fastformer_dims dims = {256, 16, 256, 2, 256, 1e-12f};
    const size_t small = fastformer_workspace_bytes(&dims, 128, 4);
    const size_t big = fastformer_workspace_bytes(&dims, 8192, 64);
    assert_true(small != SIZE_MAX && big != SIZE_MAX && big > small);
    /* per row of the batch: an input pointer and a mask; per row of one chunk
     * of 512 rows: X, Q|K, attention logits, intermediate, score */
    const size_t chunk_floats = (size_t)512 * (256 + 512 + 16 + 256 + 1);
    const size_t want = 8192 * (sizeof(float *) + sizeof(float)) + chunk_floats * sizeof(float);
    assert_true(big >= want);
    /* and only alignment, a few vectors and the folded key path's H x D
     * matrices (two, and one packed in a panel of up to 32 rows) more; the
     * folded dense's packed D x D matrix shares the intermediate rows */
    const size_t key_side = (size_t)(2 * 16 + 32) * 256 * sizeof(float);
    assert_true(big >= want + key_side);
    assert_true(big < want + key_side + 64 * 1024);
    /* a model longer than a chunk gets a chunk of one whole sequence */
    fastformer_dims long_dims = dims;
    long_dims.max_position_embeddings = 4096;
    const size_t big_long = fastformer_workspace_bytes(&long_dims, 8192, 64);
    assert_true(big_long >= 8192 * (sizeof(float *) + sizeof(float)) +
                                (size_t)4096 * (256 + 512 + 16 + 256 + 1) * sizeof(float));
    /* and a workspace smaller than a chunk only as much scratch as rows,
     * except that the intermediate rows (128 x 256 floats) grow to hold the
     * folded dense's D x D matrix */
    const size_t dense_fold = (size_t)(256 * 256 - 128 * 256) * sizeof(float);
    assert_true(small >= (size_t)128 * (1 + 256 + 512 + 16 + 256 + 1) * sizeof(float) + key_side +
                             dense_fold);
    assert_true(small <
                (size_t)128 * (sizeof(float *) + (1 + 256 + 512 + 16 + 256 + 1) * sizeof(float)) +
                    key_side + dense_fold + 64 * 1024);

    /* Bad sizes: NULL and SIZE_MAX, never a crash. */
    fastformer_dims bad = dims;
    bad.num_attention_heads = 7; /* does not divide 256 */
    assert_null(fastformer_workspace_new(&bad, 16, 1));
    assert_int_equal(fastformer_workspace_bytes(&bad, 16, 1), SIZE_MAX);
    assert_null(fastformer_workspace_new(&dims, 0, 1));
    assert_null(fastformer_workspace_new(&dims, 16, 0));
    assert_null(fastformer_workspace_new(&dims, -5, 1));
    fastformer_dims huge = {1 << 30, 1, 1 << 30, 1, 1 << 30, 1e-12f};
    assert_int_equal(fastformer_workspace_bytes(&huge, 1 << 30, 1 << 30), SIZE_MAX);
    assert_null(fastformer_workspace_new(&huge, 1 << 30, 1 << 30));

    fastformer_workspace *ws = fastformer_workspace_new(&dims, 64, 4);
    assert_non_null(ws);
    assert_int_equal(ws->max_tokens, 64);
    assert_int_equal(ws->max_seqs, 4);
    assert_true(((uintptr_t)ws->scratch & 63) == 0); /* GEMM-friendly alignment */
    fastformer_workspace_free(ws);
    fastformer_workspace_free(NULL);
}

static void test_gemm_flops(void **state)
{
    (void)state;
    fastformer_dims dims = {256, 16, 256, 2, 256, 1e-12f};
    const int32_t starts[7] = {0, 100, 128, 128, 138, 157, 177};
    /* per token per layer: 2*(D*D + D*H + D*D + 2*D*I) outside the key side
     * for sequences of at least 20 rows (100, 28, 20), which fold transform
     * into dense (one D*D product in place of two), 2*D*D more for shorter
     * ones (10, 19); pooling 2*D*D. The key side: sequences of more than
     * 18.1 rows (100, 28, 19, 20) fold it (2*(H*D*D + n*H*D) each), the one
     * of 10 rows computes K and key_att (2*(n*D*D + n*D*H)), the empty one
     * nothing. */
    const double D = 256, H = 16, I = 256;
    const double per_token = 2 * (D * D + D * H + D * D + 2 * D * I);
    const double key_folded[4] = {100, 28, 19, 20};
    double folded = 0.0;
    for (int i = 0; i < 4; i++)
        folded += 2 * (H * D * D + key_folded[i] * H * D);
    const double rows = 2 * (10 * D * D + 10 * D * H);
    const double want =
        177 * (2 * per_token + 2 * D * D) + 2 * (folded + rows) + 2 * 29 * (2 * D * D);
    assert_true(fabs(fastformer_gemm_flops(&dims, starts, 6) - want) < 1.0);
    assert_true(fastformer_gemm_flops(&dims, starts, 0) == 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_matches_naive),
        cmocka_unit_test(test_engine_chunks_match_naive),
        cmocka_unit_test(test_no_rows),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_workspace_sizes),
        cmocka_unit_test(test_gemm_flops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
