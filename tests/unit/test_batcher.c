/* test_batcher: batcher_schedule (the pure scheduling function) with a fake
 * clock and hand-made queues: idle worker takes at once, no batch without an
 * idle worker, size and padded-token limits, length grouping, the delay that
 * stops grouping from passing items over, groups (models), cancellation and
 * deadline drops. Then the bounded queue itself without threads: queue full,
 * item capacity, too big, draining, drops and batches via batcher_try_next,
 * abort, and the stats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batcher.h"
#include "model_registry.h"
#include "tiny_model.h"
#include "worker.h"

/* ==== the pure function ====================================================== */

#define QMAX 64

typedef struct {
    batcher_item items[QMAX];
    int n;
    int take[QMAX];
    int drop[QMAX];
    batcher_drop_reason reasons[QMAX];
    uint8_t scratch[QMAX];
    batcher_plan plan;
} fixture;

static const int G1 = 1, G2 = 2; /* two "models" */

static void push(fixture *f, const void *group, int64_t enqueue_us, int32_t n_tokens,
                 int32_t max_size, int32_t max_tokens)
{
    assert_true(f->n < QMAX);
    batcher_item *it = &f->items[f->n];
    memset(it, 0, sizeof *it);
    it->enqueue_us = enqueue_us;
    it->group = group;
    it->n_tokens = n_tokens;
    it->max_batch_size = max_size;
    it->max_batch_tokens = max_tokens;
    it->item = f->n;
    f->n++;
}

static const batcher_plan *run(fixture *f, int64_t delay_us, int n_idle, int64_t now_us)
{
    batcher_policy pol = {.max_queue_delay_us = delay_us};
    memset(&f->plan, 0, sizeof f->plan);
    f->plan.take = f->take;
    f->plan.cap_take = QMAX;
    f->plan.drop = f->drop;
    f->plan.drop_reason = f->reasons;
    batcher_schedule(&pol, f->items, f->n, n_idle, now_us, f->scratch, &f->plan);
    return &f->plan;
}

static void expect_take(const batcher_plan *p, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    if (p->n_take != n) {
        va_end(ap);
        fail_msg("took %d items, expected %d", p->n_take, n);
    }
    for (int i = 0; i < n; i++) {
        int want = va_arg(ap, int);
        if (p->take[i] != want) {
            va_end(ap);
            fail_msg("take[%d] = %d, expected %d", i, p->take[i], want);
        }
    }
    va_end(ap);
}

static void test_empty_queue(void **state)
{
    (void)state;
    fixture f = {0};
    const batcher_plan *p = run(&f, 1000, 1, 0);
    assert_int_equal(p->n_take, 0);
    assert_int_equal(p->n_drop, 0);
    assert_int_equal(p->next_deadline_us, 0);
}

/* A lone fresh item goes at once to an idle worker: it never waits for company. */
static void test_idle_worker_takes_at_once(void **state)
{
    (void)state;
    fixture f = {0};
    push(&f, &G1, 1000, 7, 32, 1024);
    const batcher_plan *p = run(&f, 1000000, 1, 1000); /* waited 0 of a 1 s delay */
    expect_take(p, 1, 0);
    assert_int_equal(p->padded_tokens, 7);
}

/* While every worker is busy, nothing is taken, however full the queue is. */
static void test_no_idle_worker_no_batch(void **state)
{
    (void)state;
    fixture f = {0};
    for (int i = 0; i < 10; i++)
        push(&f, &G1, 0, 5, 4, 1024);
    const batcher_plan *p = run(&f, 0, 0, 5000000);
    assert_int_equal(p->n_take, 0);
    assert_int_equal(p->n_drop, 0);
}

static void test_size_limit(void **state)
{
    (void)state;
    fixture f = {0};
    for (int i = 0; i < 10; i++)
        push(&f, &G1, i, 5, 4, 1024);
    const batcher_plan *p = run(&f, 1000, 1, 10);
    expect_take(p, 4, 0, 1, 2, 3);
    assert_int_equal(p->padded_tokens, 20);
}

/* The plan's own capacity (the worker's buffer) also bounds the batch. */
static void test_cap_take_limit(void **state)
{
    (void)state;
    fixture f = {0};
    for (int i = 0; i < 10; i++)
        push(&f, &G1, i, 5, 8, 1024);
    batcher_policy pol = {.max_queue_delay_us = 1000};
    memset(&f.plan, 0, sizeof f.plan);
    f.plan.take = f.take;
    f.plan.cap_take = 3;
    f.plan.drop = f.drop;
    f.plan.drop_reason = f.reasons;
    batcher_schedule(&pol, f.items, f.n, 1, 10, f.scratch, &f.plan);
    expect_take(&f.plan, 3, 0, 1, 2);
}

/* Padded tokens = n_items * longest: 3 x 10 = 30 fits 35, a 4th would be 40. */
static void test_token_limit(void **state)
{
    (void)state;
    fixture f = {0};
    for (int i = 0; i < 6; i++)
        push(&f, &G1, i, 10, 32, 35);
    const batcher_plan *p = run(&f, 1000, 1, 10);
    expect_take(p, 3, 0, 1, 2);
    assert_int_equal(p->padded_tokens, 30);
}

/* The padding counts: with a 12-token item in the batch, 3 items are 36 > 35,
 * even though their real tokens (12 + 2 + 2 = 16) are few. */
static void test_token_limit_counts_padding(void **state)
{
    (void)state;
    fixture f = {0};
    push(&f, &G1, 0, 12, 32, 35);
    push(&f, &G1, 1, 2, 32, 35);
    push(&f, &G1, 2, 2, 32, 35);
    const batcher_plan *p = run(&f, 1000000, 1, 10);
    expect_take(p, 2, 0, 1); /* both are 2 long: the older wins; a 3rd would be 36 */
    assert_int_equal(p->padded_tokens, 24);
}

/* A shorter item that still fits is taken after a closer one that does not. */
static void test_token_limit_skips_items_that_do_not_fit(void **state)
{
    (void)state;
    fixture f = {0};
    push(&f, &G1, 0, 10, 32, 30);
    push(&f, &G1, 1, 16, 32, 30); /* closest, but 2 x 16 = 32 > 30 */
    push(&f, &G1, 2, 3, 32, 30);  /* fits: 2 x 10 = 20 */
    const batcher_plan *p = run(&f, 1000000, 1, 10);
    expect_take(p, 2, 0, 2);
    assert_int_equal(p->padded_tokens, 20);
}

/* Within the waiting window, items close in length to the oldest one are chosen. */
static void test_length_grouping(void **state)
{
    (void)state;
    fixture f = {0};
    push(&f, &G1, 0, 5, 4, 1024);  /* 0: the oldest, seeds the batch */
    push(&f, &G1, 1, 50, 4, 1024); /* 1 */
    push(&f, &G1, 2, 6, 4, 1024);  /* 2 */
    push(&f, &G1, 3, 48, 4, 1024); /* 3 */
    push(&f, &G1, 4, 4, 4, 1024);  /* 4 */
    push(&f, &G1, 5, 5, 4, 1024);  /* 5 */
    const batcher_plan *p = run(&f, 1000000, 1, 100);
    expect_take(p, 4, 0, 5, 2, 4); /* |5-5| = 0, then 6 and 4 at distance 1 (older first) */
    assert_int_equal(p->padded_tokens, 24);
    /* and the next worker gets the long ones together */
    fixture g = {0};
    push(&g, &G1, 1, 50, 4, 1024);
    push(&g, &G1, 3, 48, 4, 1024);
    p = run(&g, 1000000, 1, 100);
    expect_take(p, 2, 0, 1);
    assert_int_equal(p->padded_tokens, 100);
}

/* An item that waited max_queue_delay_us is no longer passed over for a
 * better length match: overdue items go first, oldest first. */
static void test_delay_overdue_items_first(void **state)
{
    (void)state;
    fixture f = {0};
    push(&f, &G1, 0, 5, 3, 1024);    /* 0 seed */
    push(&f, &G1, 100, 40, 3, 1024); /* 1: overdue at now=2000 with delay 1000 */
    push(&f, &G1, 1500, 5, 3, 1024); /* 2: fresh, same length as the seed */
    push(&f, &G1, 1600, 6, 3, 1024); /* 3: fresh */
    const batcher_plan *p = run(&f, 1000, 1, 2000);
    expect_take(p, 3, 0, 1, 2);
    /* the same queue a little earlier: item 1 is not overdue yet and is passed over */
    p = run(&f, 1000, 1, 1000);
    expect_take(p, 3, 0, 2, 3);
}

/* With no delay every item is overdue: plain arrival order. */
static void test_zero_delay_is_fifo(void **state)
{
    (void)state;
    fixture f = {0};
    int lens[5] = {5, 40, 6, 39, 5};
    for (int i = 0; i < 5; i++)
        push(&f, &G1, i, lens[i], 3, 1024);
    const batcher_plan *p = run(&f, 0, 1, 10);
    expect_take(p, 3, 0, 1, 2);
}

/* A batch holds one model's items, with that model's limits. */
static void test_groups_do_not_mix(void **state)
{
    (void)state;
    fixture f = {0};
    push(&f, &G2, 0, 5, 2, 1024);
    push(&f, &G1, 1, 5, 8, 1024);
    push(&f, &G2, 2, 5, 2, 1024);
    push(&f, &G2, 3, 5, 2, 1024);
    push(&f, &G1, 4, 5, 8, 1024);
    const batcher_plan *p = run(&f, 0, 1, 10);
    expect_take(p, 2, 0, 2); /* G2's max_batch_size is 2 */
    fixture g = {0};
    push(&g, &G1, 1, 5, 8, 1024);
    push(&g, &G2, 3, 5, 2, 1024);
    push(&g, &G1, 4, 5, 8, 1024);
    p = run(&g, 0, 1, 10);
    expect_take(p, 2, 0, 2);
}

static void test_cancelled_and_expired_are_dropped(void **state)
{
    (void)state;
    fixture f = {0};
    push(&f, &G1, 0, 5, 8, 1024);
    f.items[0].cancelled = true;
    push(&f, &G1, 1, 5, 8, 1024);
    f.items[1].deadline_us = 500; /* passed at now=500 */
    push(&f, &G1, 2, 5, 8, 1024);
    f.items[2].deadline_us = 501; /* still alive */
    push(&f, &G1, 3, 5, 8, 1024);
    const batcher_plan *p = run(&f, 0, 1, 500);
    assert_int_equal(p->n_drop, 2);
    assert_int_equal(p->drop[0], 0);
    assert_int_equal(p->drop_reason[0], BATCHER_DROP_CANCELLED);
    assert_int_equal(p->drop[1], 1);
    assert_int_equal(p->drop_reason[1], BATCHER_DROP_DEADLINE);
    expect_take(p, 2, 2, 3);
    assert_int_equal(p->next_deadline_us, 0); /* item 2 with the deadline was taken */
}

/* Drops happen even while every worker is busy; the plan reports the next
 * deadline among the items left, so a caller can wake up for it. */
static void test_drops_without_idle_worker(void **state)
{
    (void)state;
    fixture f = {0};
    push(&f, &G1, 0, 5, 8, 1024);
    f.items[0].deadline_us = 100;
    push(&f, &G1, 1, 5, 8, 1024);
    f.items[1].deadline_us = 900;
    push(&f, &G1, 2, 5, 8, 1024);
    f.items[2].deadline_us = 700;
    const batcher_plan *p = run(&f, 0, 0, 200);
    assert_int_equal(p->n_take, 0);
    assert_int_equal(p->n_drop, 1);
    assert_int_equal(p->drop[0], 0);
    assert_int_equal(p->drop_reason[0], BATCHER_DROP_DEADLINE);
    assert_int_equal(p->next_deadline_us, 700);
}

/* Everything dead: drops only, no batch. */
static void test_all_dropped(void **state)
{
    (void)state;
    fixture f = {0};
    for (int i = 0; i < 3; i++) {
        push(&f, &G1, i, 5, 8, 1024);
        f.items[i].cancelled = true;
    }
    const batcher_plan *p = run(&f, 0, 1, 10);
    assert_int_equal(p->n_take, 0);
    assert_int_equal(p->n_drop, 3);
}

/* Defensive: the oldest item goes even when it alone exceeds the token budget
 * (the registry prevents that configuration), so nothing can starve. */
static void test_oversized_seed_still_taken(void **state)
{
    (void)state;
    fixture f = {0};
    push(&f, &G1, 0, 50, 8, 40);
    push(&f, &G1, 1, 1, 8, 40);
    const batcher_plan *p = run(&f, 0, 1, 10);
    expect_take(p, 1, 0);
    assert_int_equal(p->padded_tokens, 50);
}

/* Empty sequences (n_tokens 0, e.g. head-only entries) fit anywhere. */
static void test_zero_length_items(void **state)
{
    (void)state;
    fixture f = {0};
    push(&f, &G1, 0, 10, 8, 10);
    push(&f, &G1, 1, 0, 8, 10);
    push(&f, &G1, 2, 10, 8, 10);
    const batcher_plan *p = run(&f, 0, 1, 10);
    /* an empty item still costs a padded row: 2 x 10 = 20 > 10 */
    expect_take(p, 1, 0);
    fixture g = {0};
    push(&g, &G1, 0, 0, 8, 10);
    push(&g, &G1, 1, 0, 8, 10);
    push(&g, &G1, 2, 5, 8, 10);
    p = run(&g, 0, 1, 10);
    expect_take(p, 2, 0, 1);
    assert_int_equal(p->padded_tokens, 0);
}

/* Length grouping looks at the oldest BATCHER_SCAN_ITEMS candidates only: a
 * perfect match further back waits for a later batch. */
static void test_scan_window(void **state)
{
    (void)state;
    enum { N = BATCHER_SCAN_ITEMS + 10 };
    batcher_item *items = calloc(N, sizeof *items);
    int take[4], drop[N];
    batcher_drop_reason reasons[N];
    uint8_t *scratch = malloc(N);
    for (int i = 0; i < N; i++) {
        items[i].enqueue_us = 1000;
        items[i].group = &G1;
        items[i].n_tokens = i == 0 ? 5 : (i < N - 1 ? 50 : 5);
        items[i].max_batch_size = 2;
        items[i].max_batch_tokens = 4096;
    }
    batcher_policy pol = {.max_queue_delay_us = 1000000};
    batcher_plan plan = {.take = take, .cap_take = 4, .drop = drop, .drop_reason = reasons};
    batcher_schedule(&pol, items, N, 1, 1000, scratch, &plan);
    expect_take(&plan, 2, 0, 1); /* the 5-token twin at N-1 is beyond the window */
    items[N - 1].n_tokens = 50;
    items[5].n_tokens = 5; /* inside the window it is found */
    batcher_schedule(&pol, items, N, 1, 1000, scratch, &plan);
    expect_take(&plan, 2, 0, 5);
    free(items);
    free(scratch);
}

/* ==== the queue (no threads) ================================================= */

typedef struct {
    char *dir;
    model_registry *reg;
    served_model *sm;
    int done_calls;
    infer_status last_status;
} qfix;

static int qsetup(void **state)
{
    qfix *q = calloc(1, sizeof *q);
    q->dir = tiny_model_dir(false, 1);
    q->reg = model_registry_new(1, NULL);
    model_spec spec = {.name = "tiny", .path = q->dir, .max_batch_size = 4, .max_batch_tokens = 64};
    char err[512];
    if (model_registry_load(q->reg, &spec, 1, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    q->sm = model_registry_get(q->reg, "tiny");
    assert_non_null(q->sm);
    *state = q;
    return 0;
}

static int qteardown(void **state)
{
    qfix *q = *state;
    served_model_release(q->sm);
    model_registry_free(q->reg);
    tiny_remove(q->dir);
    free(q);
    return 0;
}

static void on_done(infer_request *req, void *user)
{
    qfix *q = user;
    q->done_calls++;
    q->last_status = infer_request_status(req);
}

/* A classify request of n items, each `len` ids long. */
static infer_request *make_req(qfix *q, int n, int len)
{
    infer_request *req = infer_request_new(q->sm, INFER_CLASSIFY, n, 0);
    assert_non_null(req);
    for (int i = 0; i < n; i++) {
        int32_t ids[TINY_P];
        for (int k = 0; k < len; k++)
            ids[k] = 2 + (i + k) % (TINY_V - 2);
        char err[128];
        assert_int_equal(infer_request_set_item_ids(req, i, ids, (size_t)len, err, sizeof err), 0);
    }
    infer_request_set_done(req, on_done, q);
    return req;
}

/* Runs everything queued on this thread, like one worker would. */
static void drain_by_hand(batcher *b)
{
    batcher_work *w = batcher_work_new(b);
    assert_non_null(w);
    while (batcher_try_next(b, w) == BATCHER_NEXT_WORK)
        worker_run(0, b, w, NULL);
    batcher_work_free(w);
}

static void test_queue_full_and_item_capacity(void **state)
{
    qfix *q = *state;
    batcher_limits lim = {.max_queue = 2, .max_queue_items = 5, .max_batch_size = 4};
    batcher *b = batcher_new(&lim);
    assert_non_null(b);
    infer_request *r1 = make_req(q, 3, 4), *r2 = make_req(q, 3, 4), *r3 = make_req(q, 2, 4),
                  *r4 = make_req(q, 1, 4), *big = make_req(q, 6, 2);
    assert_int_equal(batcher_submit(b, r1), BATCHER_OK);
    /* 3 + 3 items > max_queue_items 5 */
    assert_int_equal(batcher_submit(b, r2), BATCHER_FULL);
    assert_int_equal(batcher_submit(b, r3), BATCHER_OK);
    /* 2 requests admitted = max_queue */
    assert_int_equal(batcher_submit(b, r4), BATCHER_FULL);
    /* alone larger than the item capacity */
    assert_int_equal(batcher_submit(b, big), BATCHER_TOO_BIG);
    batcher_stats st;
    batcher_stats_get(b, &st);
    assert_int_equal(st.queue_items, 5);
    assert_int_equal(atomic_load(&q->sm->queued_items), 5);
    assert_int_equal(st.queue_requests, 2);
    assert_int_equal(st.submitted, 2);
    assert_int_equal(st.rejected_full, 2);
    assert_int_equal(st.rejected_too_big, 1);
    assert_true(batcher_retry_after_s(b) >= 1);
    assert_string_equal(batcher_status_name(BATCHER_FULL), "queue_full");

    drain_by_hand(b);
    assert_int_equal(q->done_calls, 2);
    assert_int_equal(infer_request_status(r1), INFER_OK);
    assert_int_equal(infer_request_status(r3), INFER_OK);
    assert_int_equal(infer_request_status(r2), INFER_PENDING); /* never admitted */
    batcher_stats_get(b, &st);
    assert_int_equal(st.queue_items, 0);
    assert_int_equal(atomic_load(&q->sm->queued_items), 0);
    assert_int_equal(st.queue_requests, 0);
    assert_int_equal(st.batches, 2); /* 4 items (max_batch_size), then 1 */
    assert_int_equal(st.batch_items, 5);
    /* room again */
    assert_int_equal(batcher_submit(b, r4), BATCHER_OK);
    drain_by_hand(b);
    assert_int_equal(q->done_calls, 3);
    assert_true(batcher_wait_idle(b, 0));

    infer_request *all[] = {r1, r2, r3, r4, big};
    for (int i = 0; i < 5; i++)
        infer_request_release(all[i]);
    batcher_free(b);
}

static void test_draining_rejects_and_closes(void **state)
{
    qfix *q = *state;
    batcher_limits lim = {.max_queue = 8, .max_batch_size = 4};
    batcher *b = batcher_new(&lim);
    infer_request *r1 = make_req(q, 2, 3), *r2 = make_req(q, 1, 3);
    assert_int_equal(batcher_submit(b, r1), BATCHER_OK);
    batcher_drain(b);
    assert_int_equal(batcher_submit(b, r2), BATCHER_DRAINING);
    assert_false(batcher_wait_idle(b, 1000)); /* r1 is still queued */
    batcher_work *w = batcher_work_new(b);
    /* queued work is still served while draining, then the workers are closed */
    assert_int_equal(batcher_try_next(b, w), BATCHER_NEXT_WORK);
    assert_int_equal(w->n, 2);
    worker_run(0, b, w, NULL);
    assert_int_equal(batcher_try_next(b, w), BATCHER_NEXT_CLOSED);
    assert_int_equal(batcher_next(b, w, 1000), BATCHER_NEXT_CLOSED);
    assert_true(batcher_wait_idle(b, 1000));
    assert_int_equal(q->done_calls, 1);
    assert_int_equal(infer_request_status(r1), INFER_OK);
    batcher_stats st;
    batcher_stats_get(b, &st);
    assert_int_equal(st.rejected_draining, 1);
    batcher_work_free(w);
    infer_request_release(r1);
    infer_request_release(r2);
    batcher_free(b);
}

static void test_empty_queue_is_idle(void **state)
{
    (void)state;
    batcher_limits lim = {.max_queue = 8, .max_batch_size = 4};
    batcher *b = batcher_new(&lim);
    batcher_work *w = batcher_work_new(b);
    assert_int_equal(batcher_try_next(b, w), BATCHER_NEXT_IDLE);
    assert_int_equal(batcher_next(b, w, 1000), BATCHER_NEXT_IDLE); /* times out */
    batcher_work_free(w);
    batcher_free(b);
}

static void count_warm(void *user)
{
    (*(int *)user)++;
}

/* batcher_expect_work runs the warm hook while one is set and some worker
 * holds no batch, and only then. */
static void test_expect_work_runs_the_warm_hook(void **state)
{
    qfix *q = *state;
    batcher_limits lim = {.max_queue = 8, .max_batch_size = 4};
    batcher *b = batcher_new(&lim);
    int n = 0;
    batcher_expect_work(b); /* no hook */
    batcher_set_warm(b, count_warm, &n, 1);
    batcher_expect_work(b);
    batcher_expect_work(b);
    assert_int_equal(n, 2);
    /* While the one worker holds a batch, there is nobody to warm. */
    infer_request *r = make_req(q, 1, 3);
    assert_int_equal(batcher_submit(b, r), BATCHER_OK);
    batcher_work *w = batcher_work_new(b);
    assert_int_equal(batcher_try_next(b, w), BATCHER_NEXT_WORK);
    batcher_expect_work(b);
    assert_int_equal(n, 2);
    worker_run(0, b, w, NULL); /* computes and completes it: the worker is free again */
    batcher_expect_work(b);
    assert_int_equal(n, 3);
    batcher_set_warm(b, NULL, NULL, 0);
    batcher_expect_work(b);
    assert_int_equal(n, 3);
    assert_int_equal(q->done_calls, 1);
    infer_request_release(r);
    batcher_work_free(w);
    batcher_free(b);
}

static void test_cancel_and_deadline_via_queue(void **state)
{
    qfix *q = *state;
    batcher_limits lim = {.max_queue = 8, .max_batch_size = 4};
    batcher *b = batcher_new(&lim);
    infer_request *rc = make_req(q, 3, 3), *rd = make_req(q, 2, 3), *ok = make_req(q, 1, 3);
    infer_request_set_deadline(rd, 1); /* long gone */
    assert_int_equal(batcher_submit(b, rc), BATCHER_OK);
    assert_int_equal(batcher_submit(b, rd), BATCHER_OK);
    assert_int_equal(batcher_submit(b, ok), BATCHER_OK);
    infer_request_cancel(rc);
    batcher_work *w = batcher_work_new(b);
    assert_int_equal(batcher_try_next(b, w), BATCHER_NEXT_WORK);
    assert_int_equal(w->n_drop, 5);
    assert_int_equal(w->n, 1);
    assert_ptr_equal(w->reqs[0], ok);
    worker_run(0, b, w, NULL);
    batcher_work_free(w);
    assert_int_equal(infer_request_status(rc), INFER_CANCELLED);
    assert_int_equal(infer_request_status(rd), INFER_DEADLINE);
    assert_int_equal(infer_request_status(ok), INFER_OK);
    assert_int_equal(q->done_calls, 3);
    batcher_stats st;
    batcher_stats_get(b, &st);
    assert_int_equal(st.dropped_cancelled, 3);
    assert_int_equal(st.dropped_deadline, 2);
    assert_int_equal(atomic_load(&q->sm->queued_items), 0);
    assert_int_equal(st.queue_requests, 0);
    infer_request_release(rc);
    infer_request_release(rd);
    infer_request_release(ok);
    batcher_free(b);
}

static void test_abort_drops_everything(void **state)
{
    qfix *q = *state;
    batcher_limits lim = {.max_queue = 8, .max_batch_size = 4};
    batcher *b = batcher_new(&lim);
    infer_request *r1 = make_req(q, 3, 3), *r2 = make_req(q, 2, 3), *r3 = make_req(q, 1, 3);
    assert_int_equal(batcher_submit(b, r1), BATCHER_OK);
    assert_int_equal(batcher_submit(b, r2), BATCHER_OK);
    batcher_abort(b);
    assert_int_equal(batcher_submit(b, r3), BATCHER_DRAINING);
    batcher_work *w = batcher_work_new(b);
    assert_int_equal(batcher_try_next(b, w), BATCHER_NEXT_WORK);
    assert_int_equal(w->n, 0);
    assert_int_equal(w->n_drop, 5);
    worker_run(0, b, w, NULL);
    assert_int_equal(batcher_try_next(b, w), BATCHER_NEXT_CLOSED);
    batcher_work_free(w);
    assert_int_equal(infer_request_status(r1), INFER_SHUTDOWN);
    assert_int_equal(infer_request_status(r2), INFER_SHUTDOWN);
    assert_int_equal(q->done_calls, 2);
    assert_true(batcher_wait_idle(b, 0));
    batcher_stats st;
    batcher_stats_get(b, &st);
    assert_int_equal(st.dropped_shutdown, 5);
    assert_int_equal(atomic_load(&q->sm->queued_items), 0);
    assert_string_equal(batcher_drop_reason_name(BATCHER_DROP_SHUTDOWN), "shutdown");
    infer_request_release(r1);
    infer_request_release(r2);
    infer_request_release(r3);
    batcher_free(b);
}

/* The front may drop its reference before the workers finish: the batcher's
 * own reference keeps the request alive until its callback ran. */
static void test_front_releases_early(void **state)
{
    qfix *q = *state;
    batcher_limits lim = {.max_queue = 8, .max_batch_size = 4};
    batcher *b = batcher_new(&lim);
    infer_request *r = make_req(q, 2, 3);
    assert_int_equal(batcher_submit(b, r), BATCHER_OK);
    infer_request_release(r);
    drain_by_hand(b); /* ASan would catch a use after free here */
    assert_int_equal(q->done_calls, 1);
    assert_int_equal(q->last_status, INFER_OK);
    batcher_free(b);
}

/* A request whose items are all known already (given vectors, catalog or
 * cache hits) is queued as one "head only" entry, and its head still runs on
 * a worker: here the classifier over the given vectors. */
static void test_all_items_known_is_one_head_entry(void **state)
{
    qfix *q = *state;
    batcher_limits lim = {.max_queue = 8, .max_batch_size = 4};
    batcher *b = batcher_new(&lim);
    infer_request *r = infer_request_new(q->sm, INFER_CLASSIFY, 3, 0);
    float vecs[3 * TINY_D];
    for (int i = 0; i < 3 * TINY_D; i++)
        vecs[i] = 0.01f * (float)(i % 17) - 0.08f;
    for (int i = 0; i < 3; i++)
        infer_request_set_item_vector(r, i, vecs + i * TINY_D);
    assert_int_equal(r->n_cached, 3);
    infer_request_set_done(r, on_done, q);
    assert_int_equal(batcher_submit(b, r), BATCHER_OK);
    batcher_stats st;
    batcher_stats_get(b, &st);
    assert_int_equal(st.queue_items, 1);
    batcher_work *w = batcher_work_new(b);
    assert_int_equal(batcher_try_next(b, w), BATCHER_NEXT_WORK);
    assert_int_equal(w->n, 1);
    assert_int_equal(w->items[0], -1);
    worker_run(0, b, w, NULL);
    assert_int_equal(batcher_try_next(b, w), BATCHER_NEXT_IDLE);
    batcher_work_free(w);
    assert_int_equal(q->done_calls, 1);
    assert_int_equal(infer_request_status(r), INFER_OK);
    float probs[3 * TINY_C];
    model_classify(q->sm->model, vecs, 3, NULL, probs);
    assert_memory_equal(r->probs, probs, sizeof probs);
    infer_request_release(r);
    batcher_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_queue),
        cmocka_unit_test(test_idle_worker_takes_at_once),
        cmocka_unit_test(test_no_idle_worker_no_batch),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_cap_take_limit),
        cmocka_unit_test(test_token_limit),
        cmocka_unit_test(test_token_limit_counts_padding),
        cmocka_unit_test(test_token_limit_skips_items_that_do_not_fit),
        cmocka_unit_test(test_length_grouping),
        cmocka_unit_test(test_delay_overdue_items_first),
        cmocka_unit_test(test_zero_delay_is_fifo),
        cmocka_unit_test(test_groups_do_not_mix),
        cmocka_unit_test(test_cancelled_and_expired_are_dropped),
        cmocka_unit_test(test_drops_without_idle_worker),
        cmocka_unit_test(test_all_dropped),
        cmocka_unit_test(test_oversized_seed_still_taken),
        cmocka_unit_test(test_zero_length_items),
        cmocka_unit_test(test_scan_window),
        cmocka_unit_test_setup_teardown(test_queue_full_and_item_capacity, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_draining_rejects_and_closes, qsetup, qteardown),
        cmocka_unit_test(test_empty_queue_is_idle),
        cmocka_unit_test_setup_teardown(test_expect_work_runs_the_warm_hook, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_deadline_via_queue, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_abort_drops_everything, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_front_releases_early, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_all_items_known_is_one_head_entry, qsetup, qteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
