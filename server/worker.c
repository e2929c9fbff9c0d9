/* worker: inference threads that pull batches from the batcher, run the
 * engine in their own workspaces and complete requests (see worker.h). */
#include "worker.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_team.h"
#include "model_registry.h"
#include "mono_clock.h"

/* How long an idle worker sleeps before it proves it is alive again. */
#define WORKER_IDLE_WAKE_US 500000

typedef struct {
    worker_pool *pool;
    int index;
    pthread_t thread;
    engine_team team; /* engine_threads lanes: this worker and the threads it lends */
    batcher_work *work;
    _Atomic int64_t busy_since_us; /* 0 while idle */
    _Atomic int64_t last_beat_us;
} worker;

struct worker_pool {
    batcher *b;
    worker_options opt;
    worker *workers;
    int n_started;
    _Atomic bool stop; /* only for a failed start: exit at the next idle wake-up */
};

/* ==== completing requests =================================================== */

static void atomic_max64(_Atomic int64_t *x, int64_t v)
{
    int64_t cur = atomic_load(x);
    while (v > cur && !atomic_compare_exchange_weak(x, &cur, v)) {
    }
}

static void atomic_max_int(_Atomic int *x, int v)
{
    int cur = atomic_load(x);
    while (v > cur && !atomic_compare_exchange_weak(x, &cur, v)) {
    }
}

/* Candidate a ranks before b: higher score first, NaN last, ties by index. */
static bool ranks_before(const float *scores, int32_t a, int32_t b)
{
    float sa = scores[a], sb = scores[b];
    bool na = isnan(sa), nb = isnan(sb);
    if (na != nb)
        return nb;
    if (!na && sa != sb)
        return sa > sb;
    return a < b;
}

/* A max-heap by "ranks after", so that heapsort leaves the best first. */
static void sift_down(int32_t *h, int n, int i, const float *scores)
{
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && ranks_before(scores, h[c], h[c + 1]))
            c++; /* h[c + 1] ranks after h[c] */
        if (!ranks_before(scores, h[i], h[c]))
            return; /* h[i] already ranks after its children */
        int32_t t = h[i];
        h[i] = h[c];
        h[c] = t;
        i = c;
    }
}

/* Heapsort (no allocation, unlike glibc's qsort): candidate indices, best first. */
static void rank_candidates(const float *scores, int n, int32_t *ranking)
{
    for (int i = 0; i < n; i++)
        ranking[i] = i;
    for (int i = n / 2 - 1; i >= 0; i--)
        sift_down(ranking, n, i, scores);
    for (int end = n - 1; end > 0; end--) {
        int32_t t = ranking[0];
        ranking[0] = ranking[end];
        ranking[end] = t;
        sift_down(ranking, end, 0, scores);
    }
}

/* The catalog-wide head: the user vector (zero for an empty history), then
 * the best catalog_k items of the whole catalog, the scan split over the
 * worker's team like the encoder's products. */
static void recommend_catalog(int worker_index, parallel_team *team, infer_request *req)
{
    const served_model *sm = req->sm;
    if (req->n_history > 0) {
        int32_t hist[2] = {0, req->n_history};
        model_encode_users(sm->model, sm->ws[worker_index], req->vectors, hist, 1,
                           req->user_vector);
    } else {
        memset(req->user_vector, 0, (size_t)req->dim * sizeof *req->user_vector);
    }
    int n_skip = 0;
    for (int i = 0; req->exclude_history && i < req->n_history; i++) {
        if (req->history_id_len[i] == 0)
            continue;
        req->skip[n_skip] = req->history_ids + (size_t)i * (NEWS_CATALOG_ID_MAX + 1);
        req->skip_len[n_skip] = req->history_id_len[i];
        n_skip++;
    }
    news_catalog_query q = {.user = req->n_history > 0 ? req->user_vector : NULL,
                            .k = req->catalog_k,
                            .since_ms = req->since_ms,
                            .skip = req->skip,
                            .skip_len = req->skip_len,
                            .n_skip = n_skip,
                            .scratch = req->user_i16,
                            .team = team};
    req->n_hits = news_catalog_top_k(sm->catalog, &q, req->hits);
}

/* The task head, on the worker that completed the last item (on its team). */
static void run_head(int worker_index, parallel_team *team, infer_request *req)
{
    const served_model *sm = req->sm;
    const model *m = sm->model;
    fastformer_workspace_set_team(sm->ws[worker_index], team);
    switch (req->task) {
    case INFER_EMBED:
        break;
    case INFER_CLASSIFY:
        model_classify(m, req->vectors, req->n_items, req->logits, req->probs);
        break;
    case INFER_RECOMMEND: {
        if (req->catalog_k > 0) {
            recommend_catalog(worker_index, team, req);
            break;
        }
        int32_t hist[2] = {0, req->n_history};
        int n_cand = req->n_items - req->n_history;
        model_encode_users(m, sm->ws[worker_index], req->vectors, hist, 1, req->user_vector);
        model_score(m, req->user_vector, req->vectors + (size_t)req->n_history * req->dim, n_cand,
                    req->scores);
        rank_candidates(req->scores, n_cand, req->ranking);
        break;
    }
    }
}

static infer_status drop_status_of(batcher_drop_reason r)
{
    switch (r) {
    case BATCHER_DROP_CANCELLED:
        return INFER_CANCELLED;
    case BATCHER_DROP_DEADLINE:
        return INFER_DEADLINE;
    case BATCHER_DROP_SHUTDOWN:
        return INFER_SHUTDOWN;
    }
    return INFER_SHUTDOWN;
}

/* One queue entry of req is finished (computed, or dropped with `dropped` !=
 * INFER_PENDING). The last one finishes the request: head, callback, and the
 * batcher's reference. Must not touch req afterwards. */
static void complete_entry(int worker_index, parallel_team *team, batcher *b, infer_request *req,
                           infer_status dropped)
{
    if (dropped != INFER_PENDING) {
        int expected = 0;
        atomic_compare_exchange_strong(&req->drop_status, &expected, (int)dropped);
    }
    if (atomic_fetch_sub_explicit(&req->pending, 1, memory_order_acq_rel) != 1)
        return;
    infer_status st = (infer_status)atomic_load(&req->drop_status);
    if (st == INFER_PENDING)
        st = atomic_load(&req->cancelled) ? INFER_CANCELLED : INFER_OK;
    if (st == INFER_OK)
        run_head(worker_index, team, req);
    atomic_store(&req->status, (int)st);
    if (req->done)
        req->done(req, req->done_user);
    infer_request_release(req); /* the batcher's reference */
    batcher_request_done(b);
}

/* worker_run on the worker's team (NULL: the calling thread alone). */
static void run_on_team(int worker_index, parallel_team *team, batcher *b, const batcher_work *w,
                        const worker_observer *obs)
{
    assert(worker_index >= 0 && b && w);
    for (int k = 0; k < w->n_drop; k++) {
        if (obs && obs->on_drop)
            obs->on_drop(obs->user, w->drop_reqs[k]->sm->name, w->drop_reasons[k], 1);
        complete_entry(worker_index, team, b, w->drop_reqs[k], drop_status_of(w->drop_reasons[k]));
    }
    if (w->n == 0) {
        batcher_work_done(b, w);
        return;
    }

    served_model *sm = (served_model *)w->group;
    assert(sm && worker_index < sm->n_workers);
    const model *m = sm->model;
    const int D = m->config.encoder.hidden_size;
    float *pooled = sm->pooled[worker_index];
    int n_c = 0;
    for (int k = 0; k < w->n; k++) {
        infer_request *req = w->reqs[k];
        assert(req->sm == sm);
        if (w->items[k] < 0) {
            w->seq_row[k] = -1;
            continue;
        }
        w->seq_ids[n_c] = infer_request_item_ids(req, w->items[k]);
        w->seq_len[n_c] = req->n_ids[w->items[k]];
        w->seq_row[k] = n_c++;
    }
    int64_t t0 = mono_clock_us();
    fastformer_workspace_set_team(sm->ws[worker_index], team);
    if (n_c > 0)
        model_encode_ids(m, sm->ws[worker_index], w->seq_ids, w->seq_len, n_c, pooled);
    int64_t infer_us = mono_clock_us() - t0;
    if (n_c > 0 && obs && obs->on_batch)
        obs->on_batch(obs->user, sm->name, n_c, w->padded_tokens, (double)infer_us * 1e-6);

    /* Copy every output first: completing an entry may free its request. */
    for (int k = 0; k < w->n; k++) {
        infer_request *req = w->reqs[k];
        atomic_max64(&req->queue_us_max, w->queue_us[k]);
        if (obs && obs->on_queue_wait)
            obs->on_queue_wait(obs->user, sm->name, (double)w->queue_us[k] * 1e-6);
        if (w->seq_row[k] < 0)
            continue;
        int item = w->items[k];
        float *dst = req->vectors + (size_t)item * (size_t)D;
        memcpy(dst, pooled + (size_t)w->seq_row[k] * D, (size_t)D * sizeof *dst);
        atomic_max64(&req->infer_us_max, infer_us);
        atomic_max_int(&req->batch_size_max, n_c);
        if (req->item_cache[item] && sm->cache)
            news_cache_put(sm->cache, infer_request_item_ids(req, item), req->n_ids[item], dst);
    }
    for (int k = 0; k < w->n; k++)
        complete_entry(worker_index, team, b, w->reqs[k], INFER_PENDING);
    batcher_work_done(b, w);
}

void worker_run(int worker_index, batcher *b, const batcher_work *w, const worker_observer *obs)
{
    run_on_team(worker_index, NULL, b, w, obs);
}

/* ==== the pool ================================================================ */

static void *worker_main(void *arg)
{
    worker *wk = arg;
    worker_pool *p = wk->pool;
    for (;;) {
        atomic_store(&wk->last_beat_us, mono_clock_us());
        batcher_next_status st = batcher_next(p->b, wk->work, WORKER_IDLE_WAKE_US);
        if (st == BATCHER_NEXT_CLOSED)
            break;
        if (st == BATCHER_NEXT_IDLE) {
            if (atomic_load(&p->stop))
                break;
            continue;
        }
        atomic_store(&wk->busy_since_us, mono_clock_us());
        run_on_team(wk->index, wk->team.team, p->b, wk->work, &p->opt.observer);
        atomic_store(&wk->busy_since_us, 0);
    }
    return NULL;
}

/* The batcher's warm hook (batcher_expect_work, under its lock): a request
 * is on its way, so the idle workers' lent engine threads are woken now
 * rather than by the request's first product. At one connection they sleep
 * between requests (they poll only some tens of microseconds after a run),
 * and the wake-up, tens of microseconds on a virtual machine, then overlaps
 * the request's parsing instead of its forward. Busy workers are left alone. */
static void pool_warm(void *user)
{
    worker_pool *p = user;
    for (int i = 0; i < p->n_started; i++)
        if (atomic_load(&p->workers[i].busy_since_us) == 0)
            parallel_team_warm(p->workers[i].team.team);
}

/* Stops every worker's team and joins its lent threads (the workers have
 * exited, so no encode is running on them). */
static void teams_stop(worker_pool *p)
{
    for (int i = 0; i < p->opt.n_workers; i++)
        engine_team_stop(&p->workers[i].team);
}

/* Each worker's team and its engine_threads - 1 lent threads; -1 with a
 * message. */
static int teams_start(worker_pool *p, int lanes, char *err, size_t err_cap)
{
    for (int i = 0; i < p->opt.n_workers; i++) {
        char why[160];
        if (engine_team_start(&p->workers[i].team, lanes, why, sizeof why) != 0) {
            snprintf(err, err_cap, "worker %d: %s", i, why);
            return -1;
        }
    }
    return 0;
}

static void pool_free(worker_pool *p)
{
    teams_stop(p);
    for (int i = 0; i < p->opt.n_workers; i++)
        engine_team_free(&p->workers[i].team);
    for (int i = 0; i < p->opt.n_workers; i++)
        batcher_work_free(p->workers[i].work);
    free(p->workers);
    free(p);
}

int worker_pool_start(batcher *b, const worker_options *opt, worker_pool **out, char *err,
                      size_t err_cap)
{
    assert(b && opt && out && opt->n_workers >= 1 && opt->blas_threads >= 1);
    *out = NULL;
    worker_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->workers = calloc((size_t)opt->n_workers, sizeof *p->workers))) {
        free(p);
        snprintf(err, err_cap, "out of memory for %d workers", opt->n_workers);
        return -1;
    }
    p->b = b;
    p->opt = *opt;
    for (int i = 0; i < opt->n_workers; i++) {
        worker *wk = &p->workers[i];
        wk->pool = p;
        wk->index = i;
        atomic_init(&wk->busy_since_us, 0);
        atomic_init(&wk->last_beat_us, mono_clock_us());
        if (!(wk->work = batcher_work_new(b))) {
            pool_free(p);
            snprintf(err, err_cap, "out of memory for %d workers", opt->n_workers);
            return -1;
        }
    }
    if (teams_start(p, opt->engine_threads > 1 ? opt->engine_threads : 1, err, err_cap) != 0) {
        pool_free(p);
        return -1;
    }
    /* One BLAS pool for the process, shared by the workers' GEMMs. */
    openblas_set_num_threads(opt->blas_threads);
    for (int i = 0; i < opt->n_workers; i++) {
        int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
        if (rc != 0) {
            snprintf(err, err_cap, "cannot start worker %d: %s", i, strerror(rc));
            atomic_store(&p->stop, true);
            for (int j = 0; j < i; j++)
                pthread_join(p->workers[j].thread, NULL);
            pool_free(p);
            return -1;
        }
        p->n_started++;
    }
    batcher_set_warm(b, pool_warm, p, p->n_started);
    *out = p;
    return 0;
}

void worker_pool_join(worker_pool *p)
{
    if (!p)
        return;
    batcher_set_warm(p->b, NULL, NULL, 0);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->workers[i].thread, NULL);
    pool_free(p);
}

bool worker_pool_alive(const worker_pool *p, int64_t now_us, int64_t stall_us)
{
    worker_pool *m = (worker_pool *)p; /* atomic reads only */
    for (int i = 0; i < m->n_started; i++) {
        int64_t busy = atomic_load(&m->workers[i].busy_since_us);
        int64_t t = busy != 0 ? busy : atomic_load(&m->workers[i].last_beat_us);
        if (now_us - t >= stall_us)
            return false;
    }
    return true;
}
