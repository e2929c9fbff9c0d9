/* news_catalog_top_k: the best k items of the whole catalog for a user
 * vector (news_catalog.h), exact, without allocating.
 *
 * The scan is memory bound, so it reads as few bytes as it can. Three
 * tiers, each an upper bound on a row's float score (quant_dot.h: exact
 * integer sums, the fastest kernel the CPU has):
 *   1. every row's int4 copy (D / 2 bytes a row, 12.8 MB for 100,000 items
 *      at D=256) against the user rounded to int8: the bound is the
 *      rounding's residual norm times |u|_2 (loose: about 5% of the rows
 *      pass it);
 *   2. for those, the int8 copy against the user rounded to int16, fetched
 *      a block at a time (tight: a few dozen pass);
 *   3. for those, the float score from the float vector.
 * A row whose bound cannot reach the k-th best float score known so far
 * (the floor) is skipped. So the result is the exact float top k. Before
 * the scan, 8 spread blocks are probed for a first floor.
 *
 * The rows are cut into blocks of SCORE_BLOCK, handed out over the caller's
 * team (parallel.h; the caller takes part and never waits for a lane that
 * has not started). Each run of blocks keeps its own heap on its stack and
 * merges it into the shared one at its end, under a mutex; the k-th best
 * score of the shared heap (and of a run's own full heap) is the floor
 * below which every lane skips rows. The shared heap lives on the caller's
 * stack. */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "news_catalog.h"
#include "news_catalog_impl.h"
#include "quant_dot.h"

/* Rows scored per kernel call: the sums and bounds of a block live on the stack. */
#define SCORE_BLOCK 512
/* Most skipped ids whose rows are looked up (the rest are ignored). */
#define SKIP_MAX 1024
/* Runs of blocks per lane: enough for a late lane to still take a share,
 * few enough that the per-run heaps (each refilled to k) cost little. */
#define RUNS_PER_LANE 4

/* A row while ranking. */
typedef struct {
    float score;
    uint32_t row;
    int64_t updated_ms;
} ranked;

typedef struct {
    const news_catalog *c;
    const float *user;              /* NULL: the zero user (every score 0) */
    const int16_t *w;               /* the user in int16 for the int8 rows, or NULL: no bounds */
    const int8_t *w8_even, *w8_odd; /* the user in int8, split, for the int4 rows */
    float t;                        /* the user is t * w, each component within t / 2 */
    float t8;                       /* the user is t8 * w8, each component within t8 / 2 */
    float err8;  /* |float score - q8_scale[r] t (q8_r.w)| <= q8_scale[r] * this */
    float err4;  /* |float score - q4_scale[r] t8 (q4_r.w8)| <= q4_scale[r] * (this + */
    float f8_l2; /* q4_norm[r] * this) + q4_residual[r] * user_l2 */
    float user_l2;
    quant_dot_path path;
    int k;
    int64_t since_ms;
    const uint32_t *skip_rows; /* sorted */
    int n_skip;
    pthread_mutex_t mu; /* guards best and n_best */
    ranked *best;       /* (k) the shared heap, worst on top */
    int n_best;
    _Atomic float floor; /* best[0].score once n_best == k, else -inf */
} scan_ctx;

/* a ranks before b: higher score, then newer, then the smaller id. */
static bool ranks_before(const news_catalog *c, const ranked *a, const ranked *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    if (a->updated_ms != b->updated_ms)
        return a->updated_ms > b->updated_ms;
    size_t la = c->id_len[a->row], lb = c->id_len[b->row];
    int cmp = memcmp(c->text[a->row], c->text[b->row], la < lb ? la : lb);
    return cmp != 0 ? cmp < 0 : la < lb;
}

/* h[0] is the worst of the kept rows (a heap on "ranks before" reversed). */
static void heap_down(const news_catalog *c, ranked *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, w = i;
        if (l < n && ranks_before(c, &h[w], &h[l]))
            w = l;
        if (l + 1 < n && ranks_before(c, &h[w], &h[l + 1]))
            w = l + 1;
        if (w == i)
            return;
        ranked t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Keeps e if it is among the best k of h (n kept so far). */
static void heap_offer(const news_catalog *c, ranked *h, int *n, int k, const ranked *e)
{
    if (*n < k) {
        int i = (*n)++;
        h[i] = *e;
        while (i > 0) {
            int p = (i - 1) / 2;
            if (!ranks_before(c, &h[p], &h[i]))
                return;
            ranked t = h[i];
            h[i] = h[p];
            h[p] = t;
            i = p;
        }
    } else if (ranks_before(c, e, &h[0])) {
        h[0] = *e;
        heap_down(c, h, *n, 0);
    }
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static bool skipped(const scan_ctx *x, uint32_t row)
{
    return x->n_skip > 0 &&
           bsearch(&row, x->skip_rows, (size_t)x->n_skip, sizeof row, u32_cmp) != NULL;
}

static void floor_raise(scan_ctx *x, float s)
{
    float cur = atomic_load_explicit(&x->floor, memory_order_relaxed);
    while (s > cur && !atomic_compare_exchange_weak_explicit(
                          &x->floor, &cur, s, memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* parallel_items_fn: blocks [begin, end) into a heap of their own, then
 * merged into the shared one. */
static void scan_blocks(void *arg, int lane, int begin, int end)
{
    (void)lane;
    scan_ctx *x = arg;
    const int k = x->k;
    assert(k >= 1 && k <= NEWS_CATALOG_TOP_K_MAX);
    const news_catalog *c = x->c;
    const size_t D = (size_t)c->dim, nb = quant_dot_i4_row_bytes(c->dim);
    ranked heap[NEWS_CATALOG_TOP_K_MAX];
    int n = 0;
    int32_t sums[SCORE_BLOCK];
    float bound[SCORE_BLOCK];
    for (int b = begin; b < end; b++) {
        size_t a = (size_t)b * SCORE_BLOCK, m = SCORE_BLOCK;
        if (a + m > c->n_rows)
            m = c->n_rows - a;
        if (x->w) {
            quant_dot_i4_rows(x->path, c->q4 + a * nb, m, (int)D, x->w8_even, x->w8_odd, sums);
            for (size_t i = 0; i < m; i++)
                bound[i] = c->q4_scale[a + i] *
                               ((float)sums[i] * x->t8 + x->err4 + c->q4_norm[a + i] * x->f8_l2) +
                           c->q4_residual[a + i] * x->user_l2;
        } else {
            for (size_t i = 0; i < m; i++)
                bound[i] = x->user ? INFINITY : 0.0f; /* no bounds, or every score 0 */
        }
        float floor = atomic_load_explicit(&x->floor, memory_order_relaxed);
        if (n == k && heap[0].score > floor)
            floor = heap[0].score;
        /* The rows that pass, their int8 copies fetched all at once (they
         * are scattered: one by one, each would wait for memory). */
        uint16_t pass[SCORE_BLOCK];
        size_t n_pass = 0;
        for (size_t i = 0; i < m; i++) {
            if (bound[i] < floor) /* cannot reach k rows that score at least floor */
                continue;
            pass[n_pass++] = (uint16_t)i;
            __builtin_prefetch(&c->updated_ms[a + i]);
            __builtin_prefetch(&c->q8_scale[a + i]);
            for (size_t o = 0; x->w && o < D; o += 64)
                __builtin_prefetch(c->q8 + (a + i) * D + o);
        }
        for (size_t p = 0; p < n_pass; p++) {
            size_t i = pass[p];
            if (bound[i] < floor) /* the floor may have risen since */
                continue;
            uint32_t row = (uint32_t)(a + i);
            if (c->updated_ms[row] < x->since_ms || skipped(x, row))
                continue;
            if (x->w) { /* the int8 copy's tighter bound */
                int32_t s8;
                quant_dot_i8_rows(x->path, c->q8 + row * D, 1, (int)D, x->w, &s8);
                if (c->q8_scale[row] * ((float)s8 * x->t + x->err8) < floor)
                    continue;
            }
            ranked e = {.score = x->user ? kernels_dot(c->vecs + row * D, x->user, D) : 0.0f,
                        .row = row,
                        .updated_ms = c->updated_ms[row]};
            heap_offer(c, heap, &n, k, &e);
            if (n == k && heap[0].score > floor)
                floor = heap[0].score;
        }
        if (n == k)
            floor_raise(x, heap[0].score);
    }
    pthread_mutex_lock(&x->mu);
    for (int i = 0; i < n; i++)
        heap_offer(c, x->best, &x->n_best, k, &heap[i]);
    if (x->n_best == k)
        floor_raise(x, x->best[0].score);
    pthread_mutex_unlock(&x->mu);
}

/* Blocks probed before the scan to set a first floor (spread over the rows). */
#define SEED_BLOCKS 8

/* A first floor before the scan: the k eligible rows of SEED_BLOCKS blocks
 * with the best int4 estimates are scored in float, and the k-th of those
 * scores is a floor (k rows score at least that). Without it each run
 * starts from an empty heap and passes every row to the int8 bound until
 * its own floor has risen. Rows probed here are scanned again later (only
 * the floor is kept, not the rows). */
static void seed_floor(scan_ctx *x)
{
    const news_catalog *c = x->c;
    const size_t D = (size_t)c->dim, nb = quant_dot_i4_row_bytes(c->dim);
    const int k = x->k;
    assert(k >= 1 && k <= NEWS_CATALOG_TOP_K_MAX && x->w);
    size_t n_blocks = (c->n_rows + SCORE_BLOCK - 1) / SCORE_BLOCK;
    if (n_blocks < 2 * SEED_BLOCKS)
        return; /* a small catalog: the scan's own floor rises soon enough */
    ranked cand[NEWS_CATALOG_TOP_K_MAX];
    int32_t sums[SCORE_BLOCK];
    int n = 0;
    for (size_t p = 0; p < SEED_BLOCKS; p++) {
        size_t a = p * n_blocks / SEED_BLOCKS * SCORE_BLOCK, m = SCORE_BLOCK;
        if (a + m > c->n_rows)
            m = c->n_rows - a;
        quant_dot_i4_rows(x->path, c->q4 + a * nb, m, (int)D, x->w8_even, x->w8_odd, sums);
        for (size_t i = 0; i < m; i++) {
            uint32_t row = (uint32_t)(a + i);
            if (c->updated_ms[row] < x->since_ms || skipped(x, row))
                continue;
            ranked e = {.score = c->q4_scale[row] * x->t8 * (float)sums[i],
                        .row = row,
                        .updated_ms = c->updated_ms[row]};
            heap_offer(c, cand, &n, k, &e);
        }
    }
    if (n < k)
        return;
    float floor = INFINITY;
    for (int i = 0; i < n; i++) {
        float s = kernels_dot(c->vecs + cand[i].row * D, x->user, D);
        floor = s < floor ? s : floor;
    }
    floor_raise(x, floor);
}

/* Rounds the user to int16 for the int8 rows and to int8 (split) for the
 * int4 rows, into scratch, and sets the bounds: see the comment inside.
 * Leaves x->w NULL when the user is zero or not finite. */
static void user_quantize(scan_ctx *x, const float *u, size_t D, int16_t *scratch)
{
    float max_abs = 0.0f, l1 = 0.0f;
    double l2 = 0.0;
    for (size_t i = 0; i < D; i++) {
        float a = fabsf(u[i]);
        max_abs = a > max_abs ? a : max_abs;
        l1 += a;
        l2 += (double)a * a;
    }
    if (!(max_abs > 0.0f) || !isfinite(max_abs) || !isfinite(l1))
        return; /* zero: every score 0; NaN or inf: every row scored in float */
    const int w_max = quant_dot_w_max((int)D);
    const float t = max_abs / (float)w_max, inv = (float)w_max / max_abs;
    const float t8 = max_abs / 127.0f, inv8 = 127.0f / max_abs;
    const size_t nb = quant_dot_i4_row_bytes((int)D);
    int16_t *w = scratch;
    int8_t *w8 = (int8_t *)(scratch + D); /* 2 nb bytes: even, then odd components */
    double f8 = 0.0;                      /* |u - t8 w8|_2^2 */
    for (size_t i = 0; i < D; i++) {
        float r = nearbyintf(u[i] * inv);
        w[i] = (int16_t)(r > (float)w_max ? w_max : r < (float)-w_max ? -w_max : r);
        float r8 = nearbyintf(u[i] * inv8);
        int8_t q = (int8_t)(r8 > 127.0f ? 127 : r8 < -127.0f ? -127 : r8);
        w8[(i % 2) * nb + i / 2] = q;
        double f = (double)u[i] - (double)t8 * q;
        f8 += f * f;
    }
    if (D % 2)
        w8[2 * nb - 1] = 0;
    /* With v = scale * q + e and u = t * w + f (|f_i| <= t / 2):
     *   v.u - scale * t * (q.w) = e.u + scale * q.f.
     * int8 rows: |e_i| <= scale / 2 (quantize_row), so |e.u| <= scale / 2 *
     * |u|_1, and |scale q.f| <= scale * t / 2 * 127 D.
     * int4 rows, against w8: |e.u| <= |e|_2 |u|_2 = q4_residual |u|_2
     * (quantize_row4), and |scale q.f8| <= scale |q|_2 |f8|_2 = scale q4_norm
     * |f8|_2, |f8|_2 computed above.
     * The float score itself is within 1.2e-7 D * sum |v_i u_i| <= scale * Q
     * |u|_1 * 1.2e-7 D of the real one (Q = 127 or 7), and the bound's own
     * float arithmetic (|q.w| <= Q D max|u| / t) is within a few 6e-8 of Q D
     * max|u| per scale. The last factors cover the roundings of l1, l2, f8,
     * t and these terms. */
    const float d = (float)D;
    x->err8 = (0.5f * l1 + 0.5f * t * 127.0f * d + 127.0f * d * 1.2e-7f * l1 +
               127.0f * d * max_abs * 4e-7f) *
              1.001f;
    x->err4 = (7.0f * d * 1.2e-7f * l1 + 7.0f * d * max_abs * 4e-7f) * 1.001f;
    x->f8_l2 = (float)(sqrt(f8) * 1.001);
    x->user_l2 = (float)(sqrt(l2) * 1.001);
    x->t = t;
    x->t8 = t8;
    x->w = w;
    x->w8_even = w8;
    x->w8_odd = w8 + nb;
}

/* The shared heap sorted best first into out, with the ids. Shared lock held. */
static void emit(const news_catalog *c, ranked *best, int n, news_catalog_hit *out)
{
    for (int end = n - 1; end > 0; end--) { /* heap sort: the worst goes last */
        ranked t = best[0];
        best[0] = best[end];
        best[end] = t;
        heap_down(c, best, end, 0);
    }
    for (int i = 0; i < n; i++) {
        size_t len = c->id_len[best[i].row];
        memcpy(out[i].id, c->text[best[i].row], len);
        out[i].id[len] = '\0';
        out[i].score = best[i].score;
    }
}

int news_catalog_top_k(news_catalog *c, const news_catalog_query *q, news_catalog_hit *out)
{
    assert(c && q && out && q->k >= 1 && q->k <= NEWS_CATALOG_TOP_K_MAX);
    assert(!q->user || q->scratch);
    ranked best[NEWS_CATALOG_TOP_K_MAX];
    uint32_t skip_rows[SKIP_MAX];
    scan_ctx x = {.c = c,
                  .user = q->user,
                  .path = quant_dot_path_best(),
                  .k = q->k,
                  .since_ms = q->since_ms,
                  .skip_rows = skip_rows,
                  .mu = PTHREAD_MUTEX_INITIALIZER,
                  .best = best};
    atomic_init(&x.floor, -INFINITY);
    if (q->user)
        user_quantize(&x, q->user, (size_t)c->dim, q->scratch);
    pthread_rwlock_rdlock(&c->lock);
    for (int i = 0; i < q->n_skip && x.n_skip < SKIP_MAX; i++) {
        long row = news_catalog_find_row(c, q->skip[i], q->skip_len[i]);
        if (row >= 0)
            skip_rows[x.n_skip++] = (uint32_t)row;
    }
    if (x.n_skip > 1)
        qsort(skip_rows, (size_t)x.n_skip, sizeof *skip_rows, u32_cmp);
    int n_blocks = (int)((c->n_rows + SCORE_BLOCK - 1) / SCORE_BLOCK);
    int lanes = q->team ? parallel_team_lanes(q->team) : 1;
    int grain = (n_blocks + lanes * RUNS_PER_LANE - 1) / (lanes * RUNS_PER_LANE);
    if (x.w)
        seed_floor(&x);
    if (n_blocks > 0)
        parallel_for(lanes > 1 ? q->team : NULL, n_blocks, grain > 0 ? grain : 1, scan_blocks, &x);
    emit(c, best, x.n_best, out);
    pthread_rwlock_unlock(&c->lock);
    return x.n_best;
}
