/* test_worker: the worker pool with real (tiny) models. N threads submit
 * classify and embed requests concurrently and every result equals the same
 * input encoded alone (unbatched) with its own workspace; requests queued
 * before the workers start are computed in batches larger than 1; recommend
 * requests (catalog ids, text news through the LRU cache, given vectors, an
 * empty history, all items cached) equal the user encoder + dot products
 * computed by hand; draining finishes every admitted request. Runs under
 * TSan in `make tsan`. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "batcher.h"
#include "model_registry.h"
#include "mono_clock.h"
#include "tiny_model.h"
#include "worker.h"

/* The pools run N_WORKERS workers of N_LANES engine threads each (a team per
 * worker), as the daemon does; worker_run by hand runs on one thread. */
enum { N_WORKERS = 2, N_LANES = 2, MAX_BATCH = 8, MAX_TOKENS = 64 };

typedef struct {
    char *cls_dir, *rec_dir;
    model_registry *reg;
    served_model *cls, *rec;
    fastformer_workspace *ws_cls, *ws_rec; /* for the unbatched references (main thread) */
} fix;

static const char news_tsv[] = "N1\tc\ts\tw2 w3 w4\n"
                               "N2\tc\ts\tw5\n"
                               "N3\tc\ts\tw6 w7 w8 w9 w10 w11\n"
                               "N4\tc\ts\tw12 w2\n";

static int setup(void **state)
{
    fix *f = calloc(1, sizeof *f);
    f->cls_dir = tiny_model_dir(false, 3);
    f->rec_dir = tiny_model_dir(true, 4);
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/news.tsv", f->rec_dir);
    tiny_write(path, news_tsv);
    f->reg = model_registry_new(N_WORKERS, NULL);
    assert_non_null(f->reg);
    model_registry_set_lanes(f->reg, N_LANES);
    model_spec specs[2] = {
        {.name = "cls",
         .path = f->cls_dir,
         .max_batch_size = MAX_BATCH,
         .max_batch_tokens = MAX_TOKENS},
        {.name = "rec",
         .path = f->rec_dir,
         .news_catalog = path,
         .news_cache_entries = 16,
         .max_batch_size = MAX_BATCH,
         .max_batch_tokens = MAX_TOKENS},
    };
    if (model_registry_load(f->reg, specs, 2, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    f->cls = model_registry_get(f->reg, "cls");
    f->rec = model_registry_get(f->reg, "rec");
    assert_non_null(f->cls);
    assert_non_null(f->rec);
    f->ws_cls = model_workspace_new(f->cls->model, TINY_P, 1);
    f->ws_rec = model_workspace_new(f->rec->model, TINY_P > TINY_UP ? TINY_P : TINY_UP, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    fastformer_workspace_free(f->ws_cls);
    fastformer_workspace_free(f->ws_rec);
    served_model_release(f->cls);
    served_model_release(f->rec);
    model_registry_free(f->reg);
    tiny_remove(f->cls_dir);
    tiny_remove(f->rec_dir);
    free(f);
    return 0;
}

/* ---- completion tracking ------------------------------------------------------ */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} waiter;

static void waiter_init(waiter *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->done = 0;
}

static void waiter_destroy(waiter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void on_done(infer_request *req, void *user)
{
    (void)req;
    waiter *w = user;
    pthread_mutex_lock(&w->mu);
    w->done++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_wait(waiter *w, int n)
{
    pthread_mutex_lock(&w->mu);
    while (w->done < n)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

/* ---- observer: batch sizes ------------------------------------------------------ */

/* Observers run on worker threads, where a cmocka assert must not fire:
 * they count violations in `bad`, which the test checks afterwards. */
typedef struct {
    _Atomic int batches, max_items, items, queue_waits, drops, bad;
} counts;

static void obs_batch(void *user, const char *model_name, int n_items, int padded_tokens,
                      double infer_seconds)
{
    counts *c = user;
    if (!(strcmp(model_name, "cls") == 0 || strcmp(model_name, "rec") == 0) || n_items < 1 ||
        n_items > MAX_BATCH || padded_tokens > MAX_TOKENS || infer_seconds < 0.0)
        atomic_fetch_add(&c->bad, 1);
    atomic_fetch_add(&c->batches, 1);
    atomic_fetch_add(&c->items, n_items);
    int cur = atomic_load(&c->max_items);
    while (n_items > cur && !atomic_compare_exchange_weak(&c->max_items, &cur, n_items)) {
    }
}

static void obs_queue(void *user, const char *model_name, double s)
{
    (void)model_name;
    if (s < 0.0)
        atomic_fetch_add(&((counts *)user)->bad, 1);
    atomic_fetch_add(&((counts *)user)->queue_waits, 1);
}

static void obs_drop(void *user, const char *model_name, batcher_drop_reason r, int n)
{
    (void)model_name;
    (void)r;
    atomic_fetch_add(&((counts *)user)->drops, n);
}

static worker_options pool_options(counts *c)
{
    worker_options o = {
        .n_workers = N_WORKERS,
        .blas_threads = 1,
        .engine_threads = N_LANES,
        .observer = {
            .user = c, .on_batch = obs_batch, .on_queue_wait = obs_queue, .on_drop = obs_drop}};
    return o;
}

static batcher *new_batcher(void)
{
    batcher_limits lim = {.max_queue = 4096,
                          .max_queue_items = 16384,
                          .max_batch_size = MAX_BATCH,
                          .max_queue_delay_us = 2000};
    batcher *b = batcher_new(&lim);
    assert_non_null(b);
    return b;
}

/* ---- references ----------------------------------------------------------------- */

/* Deterministic item content: seq s of request r. Length 0..P, trailing
 * padding sometimes, ids in [0, V). */
static int item_ids(int r, int s, int32_t *ids)
{
    uint32_t h = (uint32_t)(r * 7919 + s * 104729 + 17);
    h = h * 2654435761u;
    int len = (int)(h % (TINY_P + 1));
    for (int k = 0; k < len; k++) {
        h = h * 1664525u + 1013904223u;
        ids[k] = (int32_t)((h >> 8) % TINY_V); /* 0 (padding) may appear inside */
    }
    if (len > 2 && (h & 1))
        ids[len - 1] = 0; /* trailing padding, trimmed */
    return len;
}

static void close_to(const float *got, const float *want, int n, const char *what, int r)
{
    for (int i = 0; i < n; i++)
        if (fabsf(got[i] - want[i]) > 1e-5f * (1.0f + fabsf(want[i])))
            fail_msg("%s of request %d [%d]: batched %.9g, alone %.9g", what, r, i, (double)got[i],
                     (double)want[i]);
}

static void encode_alone(const model *m, fastformer_workspace *ws, const int32_t *ids, int len,
                         float *out)
{
    const int32_t *rows[1] = {ids};
    int32_t n = len;
    model_encode_ids(m, ws, rows, &n, 1, out);
}

/* ---- concurrent submitters ------------------------------------------------------- */

enum { N_SUBMITTERS = 4, PER_SUBMITTER = 40 };

typedef struct {
    fix *f;
    batcher *b;
    int id;
    infer_request *reqs[PER_SUBMITTER];
    waiter w;
} submitter;

static void *submit_main(void *arg)
{
    submitter *s = arg;
    for (int k = 0; k < PER_SUBMITTER; k++) {
        int r = s->id * PER_SUBMITTER + k;
        bool classify = r % 3 != 0;
        int n_items = 1 + r % 4;
        infer_request *req =
            infer_request_new(s->f->cls, classify ? INFER_CLASSIFY : INFER_EMBED, n_items, 0);
        if (!req)
            return (void *)1;
        for (int i = 0; i < n_items; i++) {
            int32_t ids[TINY_P];
            int len = item_ids(r, i, ids);
            char err[128];
            if (infer_request_set_item_ids(req, i, ids, (size_t)len, err, sizeof err) != 0)
                return (void *)2;
        }
        infer_request_set_done(req, on_done, &s->w);
        batcher_expect_work(s->b); /* the front's hint, racing with the workers */
        if (batcher_submit(s->b, req) != BATCHER_OK)
            return (void *)3;
        s->reqs[k] = req;
    }
    waiter_wait(&s->w, PER_SUBMITTER);
    return NULL;
}

static void test_concurrent_submitters_equal_unbatched(void **state)
{
    fix *f = *state;
    batcher *b = new_batcher();
    counts c = {0};
    worker_options o = pool_options(&c);
    worker_pool *pool;
    char err[256];
    assert_int_equal(worker_pool_start(b, &o, &pool, err, sizeof err), 0);
    assert_true(worker_pool_alive(pool, mono_clock_us(), 60 * 1000000LL));
    /* a worker silent for longer than the allowed stall is reported (here: any) */
    assert_false(worker_pool_alive(pool, mono_clock_us() + 60 * 1000000LL, 1000000));

    submitter subs[N_SUBMITTERS];
    pthread_t t[N_SUBMITTERS];
    for (int i = 0; i < N_SUBMITTERS; i++) {
        memset(&subs[i], 0, sizeof subs[i]);
        subs[i].f = f;
        subs[i].b = b;
        subs[i].id = i;
        waiter_init(&subs[i].w);
        assert_int_equal(pthread_create(&t[i], NULL, submit_main, &subs[i]), 0);
    }
    for (int i = 0; i < N_SUBMITTERS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    batcher_drain(b);
    worker_pool_join(pool);
    batcher_expect_work(b); /* the pool took its warm hook away (ASan: no use after free) */

    const model *m = f->cls->model;
    int total_items = 0;
    for (int i = 0; i < N_SUBMITTERS; i++) {
        for (int k = 0; k < PER_SUBMITTER; k++) {
            infer_request *req = subs[i].reqs[k];
            int r = i * PER_SUBMITTER + k;
            assert_int_equal(infer_request_status(req), INFER_OK);
            assert_true(atomic_load(&req->queue_us_max) >= 0);
            assert_true(atomic_load(&req->batch_size_max) >= 1);
            for (int s = 0; s < req->n_items; s++) {
                int32_t ids[TINY_P];
                int len = item_ids(r, s, ids);
                float want[TINY_D], logits[TINY_C], probs[TINY_C];
                encode_alone(m, f->ws_cls, ids, len, want);
                close_to(req->vectors + (size_t)s * TINY_D, want, TINY_D, "vector", r);
                if (req->task == INFER_CLASSIFY) {
                    model_classify(m, want, 1, logits, probs);
                    close_to(req->probs + (size_t)s * TINY_C, probs, TINY_C, "probs", r);
                    close_to(req->logits + (size_t)s * TINY_C, logits, TINY_C, "logits", r);
                } else {
                    assert_null(req->probs);
                }
                total_items++;
            }
            infer_request_release(req);
        }
        waiter_destroy(&subs[i].w);
    }
    assert_int_equal(atomic_load(&c.items), total_items);
    assert_int_equal(atomic_load(&c.queue_waits), total_items);
    assert_int_equal(atomic_load(&c.drops), 0);
    assert_int_equal(atomic_load(&c.bad), 0);
    batcher_stats st;
    batcher_stats_get(b, &st);
    assert_int_equal(st.submitted, N_SUBMITTERS * PER_SUBMITTER);
    assert_int_equal(st.queue_requests, 0);
    assert_int_equal(st.batch_items, (uint64_t)total_items);
    batcher_free(b);
}

/* Requests queued while no worker is free are computed together: batches of
 * more than one item, with results still equal to the unbatched ones. */
static void test_queued_requests_are_batched(void **state)
{
    fix *f = *state;
    batcher *b = new_batcher();
    enum { N = 20 };
    infer_request *reqs[N];
    waiter w;
    waiter_init(&w);
    for (int r = 0; r < N; r++) {
        reqs[r] = infer_request_new(f->cls, INFER_CLASSIFY, 1, 0);
        int32_t ids[TINY_P];
        int len = item_ids(1000 + r, 0, ids);
        char err[128];
        assert_int_equal(infer_request_set_item_ids(reqs[r], 0, ids, (size_t)len, err, sizeof err),
                         0);
        infer_request_set_done(reqs[r], on_done, &w);
        assert_int_equal(batcher_submit(b, reqs[r]), BATCHER_OK);
    }
    counts c = {0};
    worker_options o = pool_options(&c);
    worker_pool *pool;
    char err[256];
    assert_int_equal(worker_pool_start(b, &o, &pool, err, sizeof err), 0);
    waiter_wait(&w, N);
    batcher_drain(b);
    worker_pool_join(pool);
    assert_true(atomic_load(&c.max_items) > 1);
    assert_int_equal(atomic_load(&c.bad), 0);
    assert_true(atomic_load(&c.batches) < N);
    int max_seen = 0;
    for (int r = 0; r < N; r++) {
        int32_t ids[TINY_P];
        int len = item_ids(1000 + r, 0, ids);
        float want[TINY_D], probs[TINY_C];
        encode_alone(f->cls->model, f->ws_cls, ids, len, want);
        model_classify(f->cls->model, want, 1, NULL, probs);
        close_to(reqs[r]->probs, probs, TINY_C, "probs", r);
        int bs = atomic_load(&reqs[r]->batch_size_max);
        if (bs > max_seen)
            max_seen = bs;
        infer_request_release(reqs[r]);
    }
    assert_true(max_seen > 1);
    waiter_destroy(&w);
    batcher_free(b);
}

/* ---- recommendation --------------------------------------------------------------- */

/* The user vector and scores computed by hand from the news vectors. */
static void recommend_reference(fix *f, const float *news, int n_history, int n_cand, float *user,
                                float *scores)
{
    const model *m = f->rec->model;
    int32_t hist[2] = {0, n_history};
    model_encode_users(m, f->ws_rec, news, hist, 1, user);
    model_score(m, user, news + (size_t)n_history * TINY_D, n_cand, scores);
}

static void check_ranking(const infer_request *req)
{
    int n = req->n_items - req->n_history;
    uint8_t seen[64] = {0};
    for (int i = 0; i < n; i++) {
        int32_t c = req->ranking[i];
        assert_true(c >= 0 && c < n && !seen[c]);
        seen[c] = 1;
        if (i > 0) {
            float a = req->scores[req->ranking[i - 1]], s = req->scores[c];
            assert_true(a > s || (a == s && req->ranking[i - 1] < c));
        }
    }
}

static void test_recommend(void **state)
{
    fix *f = *state;
    batcher *b = new_batcher();
    counts c = {0};
    worker_options o = pool_options(&c);
    worker_pool *pool;
    char err[256];
    assert_int_equal(worker_pool_start(b, &o, &pool, err, sizeof err), 0);
    waiter w;
    waiter_init(&w);

    /* history: N1 (catalog), text ids, a given vector; candidates: N3, text ids, N2 */
    const int n_hist = 3, n_cand = 3, n = 6;
    int32_t text_a[] = {5, 6, 7}, text_b[] = {9, 10};
    float given[TINY_D];
    for (int d = 0; d < TINY_D; d++)
        given[d] = 0.1f * (float)d - 0.5f;
    infer_request *reqs[2];
    for (int round = 0; round < 2; round++) {
        infer_request *req = infer_request_new(f->rec, INFER_RECOMMEND, n, n_hist);
        assert_non_null(req);
        assert_int_equal(infer_request_set_item_news_id(req, 0, "N1", 2, err, sizeof err), 0);
        assert_int_equal(infer_request_set_item_ids(req, 1, text_a, 3, err, sizeof err), 0);
        infer_request_set_item_vector(req, 2, given);
        assert_int_equal(infer_request_set_item_news_id(req, 3, "N3", 2, err, sizeof err), 0);
        assert_int_equal(infer_request_set_item_ids(req, 4, text_b, 2, err, sizeof err), 0);
        assert_int_equal(infer_request_set_item_news_id(req, 5, "N2", 2, err, sizeof err), 0);
        infer_request_set_done(req, on_done, &w);
        assert_int_equal(batcher_submit(b, req), BATCHER_OK);
        waiter_wait(&w, round + 1); /* the 2nd round must find the texts in the cache */
        reqs[round] = req;
    }
    assert_int_equal(reqs[0]->n_cached, 4); /* N1, given, N3, N2 */
    assert_int_equal(reqs[0]->n_cache_hits, 0);
    assert_int_equal(reqs[0]->n_cache_misses, 2);
    assert_int_equal(reqs[1]->n_cached, 6); /* + both texts from the LRU */
    assert_int_equal(reqs[1]->n_cache_hits, 2);
    assert_int_equal(reqs[1]->n_cache_misses, 0);
    news_cache_stats cs;
    news_cache_stats_get(f->rec->cache, &cs);
    assert_int_equal(cs.hits, 2);
    assert_int_equal(cs.misses, 2);

    /* the reference: catalog rows are checked against encoding their titles */
    const model *m = f->rec->model;
    float news[6 * TINY_D], user[TINY_D], scores[3];
    int32_t n1[] = {2, 3, 4}, n3[] = {6, 7, 8, 9, 10, 11}, n2[] = {5};
    encode_alone(m, f->ws_rec, n1, 3, news + 0 * TINY_D);
    encode_alone(m, f->ws_rec, text_a, 3, news + 1 * TINY_D);
    memcpy(news + 2 * TINY_D, given, sizeof given);
    encode_alone(m, f->ws_rec, n3, 6, news + 3 * TINY_D);
    encode_alone(m, f->ws_rec, text_b, 2, news + 4 * TINY_D);
    encode_alone(m, f->ws_rec, n2, 1, news + 5 * TINY_D);
    recommend_reference(f, news, n_hist, n_cand, user, scores);
    for (int round = 0; round < 2; round++) {
        infer_request *req = reqs[round];
        assert_int_equal(infer_request_status(req), INFER_OK);
        close_to(req->vectors, news, n * TINY_D, "news vectors", round);
        close_to(req->user_vector, user, TINY_D, "user vector", round);
        close_to(req->scores, scores, n_cand, "scores", round);
        check_ranking(req);
        infer_request_release(req);
    }

    /* every item cached (head-only entry) and an empty history */
    infer_request *req = infer_request_new(f->rec, INFER_RECOMMEND, 2, 0);
    assert_int_equal(infer_request_set_item_news_id(req, 0, "N4", 2, err, sizeof err), 0);
    assert_int_equal(infer_request_set_item_news_id(req, 1, "N2", 2, err, sizeof err), 0);
    infer_request_set_done(req, on_done, &w);
    assert_int_equal(batcher_submit(b, req), BATCHER_OK);
    waiter_wait(&w, 3);
    assert_int_equal(infer_request_status(req), INFER_OK);
    for (int d = 0; d < TINY_D; d++)
        assert_true(req->user_vector[d] == 0.0f); /* the empty user: zero vector */
    assert_true(req->scores[0] == 0.0f && req->scores[1] == 0.0f);
    assert_int_equal(req->ranking[0], 0); /* ties keep input order */
    assert_int_equal(req->ranking[1], 1);
    infer_request_release(req);

    /* a history longer than max_history keeps its last max_history items */
    enum { LONG = TINY_UP + 3 };
    req = infer_request_new(f->rec, INFER_RECOMMEND, LONG + 1, LONG);
    float hist[(LONG + 1) * TINY_D];
    for (int i = 0; i <= LONG; i++) {
        for (int d = 0; d < TINY_D; d++)
            hist[i * TINY_D + d] = 0.05f * (float)((i * 7 + d * 3) % 11) - 0.25f;
        infer_request_set_item_vector(req, i, hist + i * TINY_D);
    }
    infer_request_set_done(req, on_done, &w);
    assert_int_equal(batcher_submit(b, req), BATCHER_OK);
    waiter_wait(&w, 4);
    float kept_user[TINY_D], kept_score[1];
    int32_t h2[2] = {0, TINY_UP};
    model_encode_users(m, f->ws_rec, hist + 3 * TINY_D, h2, 1, kept_user);
    model_score(m, kept_user, hist + LONG * TINY_D, 1, kept_score);
    close_to(req->user_vector, kept_user, TINY_D, "long-history user vector", 0);
    close_to(req->scores, kept_score, 1, "long-history score", 0);
    infer_request_release(req);

    batcher_drain(b);
    worker_pool_join(pool);
    waiter_destroy(&w);
    batcher_free(b);
}

static void test_input_errors(void **state)
{
    fix *f = *state;
    char err[256];
    infer_request *req = infer_request_new(f->cls, INFER_CLASSIFY, 1, 0);
    int32_t big[] = {3, 99999}, neg[] = {3, 4, -1}, many[TINY_P + 1] = {0};
    assert_int_equal(infer_request_set_item_ids(req, 0, big, 2, err, sizeof err), -1);
    assert_string_equal(err, "input_ids[1]: id 99999 >= vocab_size 40");
    assert_int_equal(infer_request_set_item_ids(req, 0, neg, 3, err, sizeof err), -1);
    assert_string_equal(err, "input_ids[2]: id -1 is negative");
    assert_int_equal(infer_request_set_item_ids(req, 0, many, TINY_P + 1, err, sizeof err), -1);
    assert_string_equal(err, "input_ids: 13 ids, more than the model's maximum of 12");
    assert_int_equal(infer_request_set_item_news_id(req, 0, "N1", 2, err, sizeof err), -1);
    assert_string_equal(err, "model 'cls' has no news catalog");
    infer_request_release(req);

    req = infer_request_new(f->rec, INFER_RECOMMEND, 1, 0);
    assert_int_equal(infer_request_set_item_news_id(req, 0, "N99", 3, err, sizeof err), -1);
    assert_string_equal(err, "unknown news_id 'N99'");
    infer_request_release(req);
}

/* Drain: everything admitted before batcher_drain is answered, later
 * submissions are refused, and the workers exit. */
static void test_drain_finishes_admitted(void **state)
{
    fix *f = *state;
    batcher *b = new_batcher();
    counts c = {0};
    worker_options o = pool_options(&c);
    worker_pool *pool;
    char err[256];
    assert_int_equal(worker_pool_start(b, &o, &pool, err, sizeof err), 0);
    enum { N = 30 };
    infer_request *reqs[N];
    waiter w;
    waiter_init(&w);
    for (int r = 0; r < N; r++) {
        reqs[r] = infer_request_new(f->cls, INFER_EMBED, 2, 0);
        for (int i = 0; i < 2; i++) {
            int32_t ids[TINY_P];
            int len = item_ids(r, i, ids);
            assert_int_equal(
                infer_request_set_item_ids(reqs[r], i, ids, (size_t)len, err, sizeof err), 0);
        }
        infer_request_set_done(reqs[r], on_done, &w);
        assert_int_equal(batcher_submit(b, reqs[r]), BATCHER_OK);
    }
    batcher_drain(b);
    infer_request *late = infer_request_new(f->cls, INFER_EMBED, 1, 0);
    infer_request_set_item_len(late, 0, 0);
    assert_int_equal(batcher_submit(b, late), BATCHER_DRAINING);
    infer_request_release(late);
    assert_true(batcher_wait_idle(b, 60 * 1000000LL));
    worker_pool_join(pool);
    assert_int_equal(w.done, N);
    for (int r = 0; r < N; r++) {
        assert_int_equal(infer_request_status(reqs[r]), INFER_OK);
        infer_request_release(reqs[r]);
    }
    waiter_destroy(&w);
    batcher_free(b);
}

/* ---- against the PyTorch golden fixtures ------------------------------------------ */

/* Every classification case and every recommendation user of the committed
 * fixtures (tests/fixtures/{classifier_f32,newsrec}/golden.json, from the
 * PyTorch reference), submitted at once from three threads so that they are
 * batched with each other, must match the golden numbers. */
enum { GOLDEN_THREADS = 3, GOLDEN_MAX = 64 };

typedef struct {
    batcher *b;
    served_model *cls, *rec;
    json_t *cls_golden, *rec_golden;
    infer_request *reqs[GOLDEN_MAX];
    int n;
    waiter w;
    int error;
} golden_sub;

static int fill_ids(infer_request *req, int i, json_t *arr)
{
    int32_t ids[512];
    size_t n = json_array_size(arr);
    if (n > 512)
        return -1;
    for (size_t k = 0; k < n; k++)
        ids[k] = (int32_t)json_integer_value(json_array_get(arr, k));
    char err[128];
    return infer_request_set_item_ids(req, i, ids, n, err, sizeof err);
}

static void golden_add(golden_sub *g, infer_request *req)
{
    if (!req || g->n == GOLDEN_MAX) {
        g->error++;
        infer_request_release(req);
        return;
    }
    infer_request_set_done(req, on_done, &g->w);
    g->reqs[g->n++] = req;
}

static void *golden_main(void *arg)
{
    golden_sub *g = arg;
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(g->cls_golden, "cases"), i, c)
    {
        json_t *seqs = json_object_get(c, "input_ids");
        int n = (int)json_array_size(seqs);
        infer_request *req = infer_request_new(g->cls, INFER_CLASSIFY, n, 0);
        for (int k = 0; req && k < n; k++)
            if (fill_ids(req, k, json_array_get(seqs, (size_t)k)) != 0)
                g->error++;
        golden_add(g, req);
    }
    json_array_foreach(json_object_get(g->rec_golden, "users"), i, c)
    {
        json_t *h = json_object_get(c, "history"), *cd = json_object_get(c, "candidates");
        int nh = (int)json_array_size(h), nc = (int)json_array_size(cd);
        infer_request *req = infer_request_new(g->rec, INFER_RECOMMEND, nh + nc, nh);
        for (int k = 0; req && k < nh + nc; k++)
            if (fill_ids(req, k,
                         k < nh ? json_array_get(h, (size_t)k)
                                : json_array_get(cd, (size_t)(k - nh))) != 0)
                g->error++;
        golden_add(g, req);
    }
    int admitted = 0;
    for (int k = 0; k < g->n; k++)
        if (batcher_submit(g->b, g->reqs[k]) == BATCHER_OK)
            admitted++;
    if (admitted != g->n)
        g->error++;
    waiter_wait(&g->w, admitted);
    return NULL;
}

/* |got - want| <= rel * |want| + abs, element by element. */
static void golden_close(const float *got, json_t *want, size_t n, double rel, double abs_tol,
                         const char *what, const char *name)
{
    assert_int_equal(json_array_size(want), n);
    for (size_t k = 0; k < n; k++) {
        double w = json_number_value(json_array_get(want, k));
        if (fabs((double)got[k] - w) > rel * fabs(w) + abs_tol)
            fail_msg("%s %s[%zu]: runtime %.9g, PyTorch %.9g", name, what, k, (double)got[k], w);
    }
}

static json_t *load_json(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("%s:%d: %s", path, e.line, e.text);
    return j;
}

static void test_golden_through_the_runtime(void **state)
{
    (void)state;
    const char *cls_dir = "tests/fixtures/classifier_f32", *rec_dir = "tests/fixtures/newsrec";
    model_registry *reg = model_registry_new(N_WORKERS, NULL);
    assert_non_null(reg);
    model_registry_set_lanes(reg, N_LANES);
    model_spec specs[2] = {
        {.name = "cls", .path = cls_dir, .max_batch_size = 8, .max_batch_tokens = 64},
        {.name = "rec", .path = rec_dir, .max_batch_size = 8, .max_batch_tokens = 64},
    };
    char err[512];
    if (model_registry_load(reg, specs, 2, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    json_t *cg = load_json("tests/fixtures/classifier_f32/golden.json");
    json_t *rg = load_json("tests/fixtures/newsrec/golden.json");
    batcher *b = new_batcher();
    golden_sub subs[GOLDEN_THREADS];
    pthread_t t[GOLDEN_THREADS];
    for (int i = 0; i < GOLDEN_THREADS; i++) {
        memset(&subs[i], 0, sizeof subs[i]);
        subs[i].b = b;
        subs[i].cls = model_registry_get(reg, "cls");
        subs[i].rec = model_registry_get(reg, "rec");
        subs[i].cls_golden = cg;
        subs[i].rec_golden = rg;
        waiter_init(&subs[i].w);
    }
    counts c = {0};
    worker_options o = pool_options(&c);
    for (int i = 0; i < GOLDEN_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, golden_main, &subs[i]), 0);
    /* Every request is queued before the workers start, so batches mix
     * requests (and threads). */
    uint64_t expected = GOLDEN_THREADS * (json_array_size(json_object_get(cg, "cases")) +
                                          json_array_size(json_object_get(rg, "users")));
    for (;;) {
        batcher_stats st;
        batcher_stats_get(b, &st);
        if (st.submitted + st.rejected_full + st.rejected_too_big >= expected)
            break;
        sched_yield();
    }
    worker_pool *pool;
    assert_int_equal(worker_pool_start(b, &o, &pool, err, sizeof err), 0);
    for (int i = 0; i < GOLDEN_THREADS; i++)
        pthread_join(t[i], NULL);
    batcher_drain(b);
    worker_pool_join(pool);

    size_t n_cases = json_array_size(json_object_get(cg, "cases"));
    for (int i = 0; i < GOLDEN_THREADS; i++) {
        golden_sub *g = &subs[i];
        assert_int_equal(g->error, 0);
        for (int r = 0; r < g->n; r++) {
            infer_request *req = g->reqs[r];
            assert_int_equal(infer_request_status(req), INFER_OK);
            if ((size_t)r < n_cases) {
                json_t *cs = json_array_get(json_object_get(cg, "cases"), (size_t)r);
                const char *name = json_string_value(json_object_get(cs, "name"));
                for (int k = 0; k < req->n_items; k++) {
                    golden_close(req->probs + (size_t)k * req->n_labels,
                                 json_array_get(json_object_get(cs, "probabilities"), (size_t)k),
                                 (size_t)req->n_labels, 0.0, 1e-5, "probabilities", name);
                    golden_close(req->vectors + (size_t)k * req->dim,
                                 json_array_get(json_object_get(cs, "pooled"), (size_t)k),
                                 (size_t)req->dim, 1e-4, 1e-5, "pooled", name);
                }
            } else {
                json_t *u = json_array_get(json_object_get(rg, "users"), (size_t)r - n_cases);
                const char *name = json_string_value(json_object_get(u, "name"));
                int nc = req->n_items - req->n_history;
                golden_close(req->user_vector, json_object_get(u, "user_vector"), (size_t)req->dim,
                             1e-4, 1e-5, "user_vector", name);
                golden_close(req->scores, json_object_get(u, "scores"), (size_t)nc, 1e-4, 1e-5,
                             "scores", name);
            }
            infer_request_release(req);
        }
        served_model_release(g->cls);
        served_model_release(g->rec);
        waiter_destroy(&g->w);
    }
    batcher_stats st;
    batcher_stats_get(b, &st);
    assert_int_equal(st.submitted, expected);
    assert_true(atomic_load(&c.max_items) > 1); /* a full queue: batches of several items */
    assert_int_equal(atomic_load(&c.bad), 0);
    json_decref(cg);
    json_decref(rg);
    batcher_free(b);
    model_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_submitters_equal_unbatched),
        cmocka_unit_test(test_queued_requests_are_batched),
        cmocka_unit_test(test_recommend),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_drain_finishes_admitted),
        cmocka_unit_test(test_golden_through_the_runtime),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
