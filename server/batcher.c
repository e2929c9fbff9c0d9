/* batcher: bounded item queue + the pure scheduling function (see batcher.h).
 * One mutex guards the queue; workers sleep on a condition variable
 * (CLOCK_MONOTONIC) and are woken one per submit. Counters are atomics so
 * that /metrics reads them without the lock. */
#include "batcher.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_registry.h"
#include "mono_clock.h"

/* How long one idle worker polls the queue before sleeping (poll_for_work). */
#define BATCHER_POLL_US 300

/* ==== the pure scheduling function ======================================== */

enum { SLOT_LIVE = 0, SLOT_DROPPED = 1, SLOT_TAKEN = 2, SLOT_OTHER_GROUP = 3 };

/* Whether adding an item of length len keeps n * longest within the budget. */
static bool batch_fits(int n_take, int32_t longest, int32_t len, int32_t max_tokens)
{
    int64_t l = len > longest ? len : longest;
    return (int64_t)(n_take + 1) * l <= (int64_t)max_tokens;
}

static void plan_take(batcher_plan *plan, int i, int32_t len, int32_t *longest, uint8_t *scratch)
{
    plan->take[plan->n_take++] = i;
    if (len > *longest)
        *longest = len;
    scratch[i] = SLOT_TAKEN;
}

void batcher_schedule(const batcher_policy *policy, const batcher_item *items, int n_items,
                      int n_idle_workers, int64_t now_us, uint8_t *scratch, batcher_plan *plan)
{
    assert(policy && plan && n_items >= 0 && (n_items == 0 || (items && scratch)));
    plan->n_take = 0;
    plan->n_drop = 0;
    plan->padded_tokens = 0;
    plan->next_deadline_us = 0;

    /* Dead items first, whatever the workers are doing. */
    int seed = -1;
    for (int i = 0; i < n_items; i++) {
        const batcher_item *it = &items[i];
        if (it->cancelled || (it->deadline_us > 0 && now_us >= it->deadline_us)) {
            plan->drop[plan->n_drop] = i;
            plan->drop_reason[plan->n_drop] =
                it->cancelled ? BATCHER_DROP_CANCELLED : BATCHER_DROP_DEADLINE;
            plan->n_drop++;
            scratch[i] = SLOT_DROPPED;
            continue;
        }
        scratch[i] = SLOT_LIVE;
        if (seed < 0)
            seed = i;
    }

    if (seed >= 0 && n_idle_workers > 0) {
        const batcher_item *s = &items[seed];
        assert(s->max_batch_size >= 1 && s->max_batch_tokens >= 1);
        int cap = s->max_batch_size < plan->cap_take ? s->max_batch_size : plan->cap_take;
        assert(cap >= 1);
        int32_t longest = 0;
        /* The oldest live item always goes, so nothing starves (defensive:
         * the registry makes max_batch_tokens >= the model's longest text). */
        plan_take(plan, seed, s->n_tokens, &longest, scratch);
        /* Only the oldest BATCHER_SCAN_ITEMS candidates are considered, which
         * bounds the work under the queue lock when the queue is deep. */
        int scan_end = seed + 1, n_scan = 0;
        for (; scan_end < n_items && n_scan < BATCHER_SCAN_ITEMS; scan_end++) {
            if (scratch[scan_end] != SLOT_LIVE)
                continue;
            if (items[scan_end].group != s->group)
                scratch[scan_end] = SLOT_OTHER_GROUP;
            else
                n_scan++;
        }

        /* Overdue items next, oldest first: length grouping may not pass
         * them over any longer. */
        for (int i = seed + 1; i < scan_end && plan->n_take < cap; i++) {
            if (scratch[i] != SLOT_LIVE)
                continue;
            if (now_us - items[i].enqueue_us < policy->max_queue_delay_us)
                continue;
            if (batch_fits(plan->n_take, longest, items[i].n_tokens, s->max_batch_tokens))
                plan_take(plan, i, items[i].n_tokens, &longest, scratch);
        }

        /* Then the closest in length to the oldest item (ties: older). */
        while (plan->n_take < cap) {
            int best = -1;
            int64_t best_dist = INT64_MAX;
            for (int i = seed + 1; i < scan_end; i++) {
                if (scratch[i] != SLOT_LIVE)
                    continue;
                int64_t d = (int64_t)items[i].n_tokens - s->n_tokens;
                if (d < 0)
                    d = -d;
                if (d >= best_dist)
                    continue;
                if (!batch_fits(plan->n_take, longest, items[i].n_tokens, s->max_batch_tokens))
                    continue;
                best = i;
                best_dist = d;
            }
            if (best < 0)
                break;
            plan_take(plan, best, items[best].n_tokens, &longest, scratch);
        }
        plan->padded_tokens = (int32_t)((int64_t)plan->n_take * longest);
    }

    for (int i = 0; i < n_items; i++) {
        if (scratch[i] == SLOT_LIVE || scratch[i] == SLOT_OTHER_GROUP) {
            int64_t d = items[i].deadline_us;
            if (d > 0 && (plan->next_deadline_us == 0 || d < plan->next_deadline_us))
                plan->next_deadline_us = d;
        }
    }
}

/* ==== the queue ============================================================ */

struct batcher {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* workers: items arrived, or drain/abort */
    pthread_cond_t idle_cv; /* batcher_wait_idle: a request completed */
    batcher_limits lim;
    batcher_policy policy;

    batcher_item *q; /* (cap_q) arrival order */
    int n_q;
    int cap_q;
    uint8_t *scratch;                  /* (cap_q) */
    int *take;                         /* (max_batch_size) */
    int *drop;                         /* (cap_q) */
    batcher_drop_reason *drop_reasons; /* (cap_q) */

    bool draining;
    bool aborting;
    batcher_warm_fn warm; /* batcher_set_warm's hook, or NULL */
    void *warm_user;
    _Atomic int warm_workers; /* the hook's pool size; 0 without a hook */

    _Atomic int n_requests; /* admitted, not completed */
    _Atomic int n_items_queued;
    _Atomic bool worker_polling; /* one idle worker is in poll_for_work */
    _Atomic int busy;
    _Atomic uint64_t submitted, rejected_full, rejected_draining, rejected_too_big;
    _Atomic uint64_t dropped_cancelled, dropped_deadline, dropped_shutdown;
    _Atomic uint64_t batches, batch_items;
};

/* The lock and the two condition variables (waits on CLOCK_MONOTONIC): all
 * of them, or none (what was made is undone). */
static bool sync_init(batcher *b)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return false;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool mu = pthread_mutex_init(&b->mu, NULL) == 0;
    bool work = mu && pthread_cond_init(&b->work_cv, &ca) == 0;
    bool idle = work && pthread_cond_init(&b->idle_cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (idle)
        return true;
    if (work)
        pthread_cond_destroy(&b->work_cv);
    if (mu)
        pthread_mutex_destroy(&b->mu);
    return false;
}

batcher *batcher_new(const batcher_limits *lim)
{
    assert(lim && lim->max_queue >= 1 && lim->max_batch_size >= 1 && lim->max_queue_items >= 0 &&
           lim->max_queue_delay_us >= 0);
    batcher *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    if (!sync_init(b)) {
        free(b);
        return NULL;
    }
    /* From here on batcher_free takes the partly built batcher. */
    b->lim = *lim;
    if (b->lim.max_queue_items == 0) {
        int64_t n = (int64_t)lim->max_queue * 64;
        b->lim.max_queue_items = n > (1 << 24) ? (1 << 24) : (int)n;
    }
    b->policy.max_queue_delay_us = lim->max_queue_delay_us;
    b->cap_q = b->lim.max_queue_items;
    size_t cap = (size_t)b->cap_q;
    b->q = calloc(cap, sizeof *b->q);
    b->scratch = calloc(cap, 1);
    b->take = calloc((size_t)lim->max_batch_size, sizeof *b->take);
    b->drop = calloc(cap, sizeof *b->drop);
    b->drop_reasons = calloc(cap, sizeof *b->drop_reasons);
    if (!b->q || !b->scratch || !b->take || !b->drop || !b->drop_reasons) {
        batcher_free(b);
        return NULL;
    }
    return b;
}

void batcher_free(batcher *b)
{
    if (!b)
        return;
    assert(b->n_q == 0 && atomic_load(&b->n_requests) == 0);
    pthread_cond_destroy(&b->work_cv);
    pthread_cond_destroy(&b->idle_cv);
    pthread_mutex_destroy(&b->mu);
    free(b->q);
    free(b->scratch);
    free(b->take);
    free(b->drop);
    free(b->drop_reasons);
    free(b);
}

const char *batcher_status_name(batcher_status s)
{
    switch (s) {
    case BATCHER_OK:
        return "ok";
    case BATCHER_FULL:
        return "queue_full";
    case BATCHER_DRAINING:
        return "draining";
    case BATCHER_TOO_BIG:
        return "too_big";
    }
    return "unknown";
}

const char *batcher_drop_reason_name(batcher_drop_reason r)
{
    switch (r) {
    case BATCHER_DROP_CANCELLED:
        return "cancelled";
    case BATCHER_DROP_DEADLINE:
        return "deadline";
    case BATCHER_DROP_SHUTDOWN:
        return "shutdown";
    }
    return "unknown";
}

int batcher_retry_after_s(const batcher *b)
{
    (void)b;
    return 1;
}

/* Items of req that need compute (not served from the catalog or cache). */
static int request_entries(const infer_request *req)
{
    int n = 0;
    for (int i = 0; i < req->n_items; i++) {
        assert(req->n_ids[i] >= 0 && "every item must be set before batcher_submit");
        if (!req->item_ready[i])
            n++;
    }
    return n;
}

batcher_status batcher_submit(batcher *b, infer_request *req)
{
    assert(b && req && req->sm);
    int n_compute = request_entries(req);
    int n_entries = n_compute > 0 ? n_compute : 1;
    if (n_entries > b->cap_q) {
        atomic_fetch_add(&b->rejected_too_big, 1);
        return BATCHER_TOO_BIG;
    }
    const served_model *sm = req->sm;
    int64_t now = mono_clock_us();

    pthread_mutex_lock(&b->mu);
    if (b->draining) {
        pthread_mutex_unlock(&b->mu);
        atomic_fetch_add(&b->rejected_draining, 1);
        return BATCHER_DRAINING;
    }
    if (atomic_load(&b->n_requests) >= b->lim.max_queue || b->n_q + n_entries > b->cap_q) {
        pthread_mutex_unlock(&b->mu);
        atomic_fetch_add(&b->rejected_full, 1);
        return BATCHER_FULL;
    }
    infer_request_retain(req); /* the batcher's reference, dropped by worker.c */
    atomic_store(&req->pending, n_entries);
    atomic_fetch_add(&b->n_requests, 1);
    /* One entry per item to compute; a request whose items are all known
     * (or that has none: a catalog-wide recommend for an empty history) gets
     * one "head only" entry so that a worker runs its head. */
    for (int i = 0; i < (req->n_items > 0 ? req->n_items : 1); i++) {
        if (n_compute > 0 && req->item_ready[i])
            continue;
        batcher_item *it = &b->q[b->n_q++];
        it->enqueue_us = now;
        it->deadline_us = req->deadline_us;
        it->group = sm;
        it->n_tokens = n_compute > 0 ? req->n_ids[i] : 0;
        it->max_batch_size = sm->max_batch_size;
        it->max_batch_tokens = sm->max_batch_tokens;
        it->cancelled = false;
        it->req = req;
        it->item = n_compute > 0 ? i : -1;
        if (n_compute == 0)
            break;
    }
    atomic_fetch_add(&req->sm->queued_items, n_entries);
    atomic_store(&b->n_items_queued, b->n_q);
    pthread_mutex_unlock(&b->mu);
    atomic_fetch_add(&b->submitted, 1);
    pthread_cond_signal(&b->work_cv);
    return BATCHER_OK;
}

batcher_work *batcher_work_new(const batcher *b)
{
    batcher_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    size_t cap = (size_t)b->lim.max_batch_size, cap_drop = (size_t)b->cap_q;
    w->cap = b->lim.max_batch_size;
    w->cap_drop = b->cap_q;
    w->reqs = calloc(cap, sizeof *w->reqs);
    w->items = calloc(cap, sizeof *w->items);
    w->queue_us = calloc(cap, sizeof *w->queue_us);
    w->drop_reqs = calloc(cap_drop, sizeof *w->drop_reqs);
    w->drop_items = calloc(cap_drop, sizeof *w->drop_items);
    w->drop_reasons = calloc(cap_drop, sizeof *w->drop_reasons);
    w->seq_ids = calloc(cap, sizeof *w->seq_ids);
    w->seq_len = calloc(cap, sizeof *w->seq_len);
    w->seq_row = calloc(cap, sizeof *w->seq_row);
    if (!w->reqs || !w->items || !w->queue_us || !w->drop_reqs || !w->drop_items ||
        !w->drop_reasons || !w->seq_ids || !w->seq_len || !w->seq_row) {
        batcher_work_free(w);
        return NULL;
    }
    return w;
}

void batcher_work_free(batcher_work *w)
{
    if (!w)
        return;
    free(w->reqs);
    free(w->items);
    free(w->queue_us);
    free(w->drop_reqs);
    free(w->drop_items);
    free(w->drop_reasons);
    free(w->seq_ids);
    free(w->seq_len);
    free(w->seq_row);
    free(w);
}

/* Under b->mu: moves dropped and taken items from the queue into *w and
 * compacts the queue. Returns true when *w holds anything. */
static bool take_work_locked(batcher *b, batcher_work *w, int64_t now)
{
    w->n = 0;
    w->n_drop = 0;
    w->group = NULL;
    w->padded_tokens = 0;
    if (b->n_q == 0)
        return false;

    if (b->aborting) {
        for (int i = 0; i < b->n_q; i++) {
            atomic_fetch_sub(&b->q[i].req->sm->queued_items, 1);
            w->drop_reqs[i] = b->q[i].req;
            w->drop_items[i] = b->q[i].item;
            w->drop_reasons[i] = BATCHER_DROP_SHUTDOWN;
        }
        w->n_drop = b->n_q;
        b->n_q = 0;
        atomic_store(&b->n_items_queued, 0);
        atomic_fetch_add(&b->dropped_shutdown, (uint64_t)w->n_drop);
        return true;
    }

    for (int i = 0; i < b->n_q; i++)
        b->q[i].cancelled = atomic_load(&b->q[i].req->cancelled);
    batcher_plan plan = {
        .take = b->take,
        .cap_take = w->cap,
        .drop = b->drop,
        .drop_reason = b->drop_reasons,
    };
    batcher_schedule(&b->policy, b->q, b->n_q, 1, now, b->scratch, &plan);
    for (int k = 0; k < plan.n_drop; k++) {
        const batcher_item *it = &b->q[plan.drop[k]];
        atomic_fetch_sub(&it->req->sm->queued_items, 1);
        w->drop_reqs[k] = it->req;
        w->drop_items[k] = it->item;
        w->drop_reasons[k] = plan.drop_reason[k];
        if (plan.drop_reason[k] == BATCHER_DROP_CANCELLED)
            atomic_fetch_add(&b->dropped_cancelled, 1);
        else
            atomic_fetch_add(&b->dropped_deadline, 1);
    }
    w->n_drop = plan.n_drop;
    for (int k = 0; k < plan.n_take; k++) {
        const batcher_item *it = &b->q[plan.take[k]];
        atomic_fetch_sub(&it->req->sm->queued_items, 1);
        w->reqs[k] = it->req;
        w->items[k] = it->item;
        w->queue_us[k] = now - it->enqueue_us;
        w->group = it->group;
    }
    w->n = plan.n_take;
    w->padded_tokens = plan.padded_tokens;

    int kept = 0;
    for (int i = 0; i < b->n_q; i++)
        if (b->scratch[i] != SLOT_DROPPED && b->scratch[i] != SLOT_TAKEN)
            b->q[kept++] = b->q[i];
    b->n_q = kept;
    atomic_store(&b->n_items_queued, kept);
    if (w->n > 0) {
        atomic_fetch_add(&b->busy, 1);
        atomic_fetch_add(&b->batches, 1);
        atomic_fetch_add(&b->batch_items, (uint64_t)w->n);
    }
    return w->n > 0 || w->n_drop > 0;
}

static batcher_next_status next_locked(batcher *b, batcher_work *w, bool block, int64_t timeout_us)
{
    int64_t start = mono_clock_us();
    for (;;) {
        int64_t now = mono_clock_us();
        if (take_work_locked(b, w, now)) {
            /* Another idle worker can take what is left at once. */
            if (b->n_q > 0)
                pthread_cond_signal(&b->work_cv);
            return BATCHER_NEXT_WORK;
        }
        if (b->draining && b->n_q == 0)
            return BATCHER_NEXT_CLOSED;
        if (!block)
            return BATCHER_NEXT_IDLE;
        int64_t until = timeout_us > 0 ? start + timeout_us : 0;
        if (until > 0 && now >= until)
            return BATCHER_NEXT_IDLE;
        if (until > 0) {
            struct timespec ts = {.tv_sec = until / 1000000,
                                  .tv_nsec = (long)(until % 1000000) * 1000};
            pthread_cond_timedwait(&b->work_cv, &b->mu, &ts);
        } else {
            pthread_cond_wait(&b->work_cv, &b->mu);
        }
    }
}

/* Before a worker sleeps on the condition variable, one idle worker at a
 * time polls the queue for BATCHER_POLL_US. A request that arrives meanwhile
 * (the usual case at low concurrency, where a client sends its next request
 * right after the previous answer) starts at once instead of after a futex
 * wake-up, which on a virtual machine means waking a halted vCPU: tens of
 * microseconds on every request. sched_yield keeps the poll from taking the
 * core from the HTTP thread or another worker. Only one worker polls, so an
 * idle daemon spends at most one core for BATCHER_POLL_US after its last
 * request. */
static void poll_for_work(batcher *b)
{
    bool expected = false;
    if (!atomic_compare_exchange_strong(&b->worker_polling, &expected, true))
        return;
    const int64_t until = mono_clock_us() + BATCHER_POLL_US;
    while (atomic_load(&b->n_items_queued) == 0 && mono_clock_us() < until)
        sched_yield();
    atomic_store(&b->worker_polling, false);
}

batcher_next_status batcher_next(batcher *b, batcher_work *w, int64_t timeout_us)
{
    if (atomic_load(&b->n_items_queued) == 0)
        poll_for_work(b);
    pthread_mutex_lock(&b->mu);
    batcher_next_status st = next_locked(b, w, true, timeout_us);
    pthread_mutex_unlock(&b->mu);
    return st;
}

batcher_next_status batcher_try_next(batcher *b, batcher_work *w)
{
    pthread_mutex_lock(&b->mu);
    batcher_next_status st = next_locked(b, w, false, 0);
    pthread_mutex_unlock(&b->mu);
    return st;
}

void batcher_work_done(batcher *b, const batcher_work *w)
{
    if (w->n > 0)
        atomic_fetch_sub(&b->busy, 1);
}

void batcher_request_done(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    int left = atomic_fetch_sub(&b->n_requests, 1) - 1;
    assert(left >= 0);
    if (left == 0)
        pthread_cond_broadcast(&b->idle_cv);
    pthread_mutex_unlock(&b->mu);
}

/* ==== warming idle workers ================================================= */

void batcher_set_warm(batcher *b, batcher_warm_fn fn, void *user, int n_workers)
{
    assert(!fn || n_workers >= 1);
    pthread_mutex_lock(&b->mu);
    b->warm = fn;
    b->warm_user = user;
    atomic_store(&b->warm_workers, fn ? n_workers : 0);
    pthread_mutex_unlock(&b->mu);
}

void batcher_expect_work(batcher *b)
{
    /* Every worker busy (or no hook): nobody to warm. Racy on purpose. */
    if (atomic_load(&b->busy) >= atomic_load(&b->warm_workers))
        return;
    pthread_mutex_lock(&b->mu);
    if (b->warm)
        b->warm(b->warm_user);
    pthread_mutex_unlock(&b->mu);
}

/* ==== draining ============================================================= */

void batcher_drain(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->draining = true;
    pthread_cond_broadcast(&b->work_cv);
    pthread_mutex_unlock(&b->mu);
}

void batcher_abort(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->draining = true;
    b->aborting = true;
    pthread_cond_broadcast(&b->work_cv);
    pthread_mutex_unlock(&b->mu);
}

bool batcher_wait_idle(batcher *b, int64_t timeout_us)
{
    int64_t until = mono_clock_us() + (timeout_us > 0 ? timeout_us : 0);
    struct timespec ts = {.tv_sec = until / 1000000, .tv_nsec = (long)(until % 1000000) * 1000};
    pthread_mutex_lock(&b->mu);
    while (atomic_load(&b->n_requests) > 0 && timeout_us > 0) {
        if (pthread_cond_timedwait(&b->idle_cv, &b->mu, &ts) == ETIMEDOUT)
            break;
    }
    bool idle = atomic_load(&b->n_requests) == 0;
    pthread_mutex_unlock(&b->mu);
    return idle;
}

/* ==== stats ================================================================ */

void batcher_stats_get(const batcher *b, batcher_stats *out)
{
    batcher *m = (batcher *)b; /* atomics are read-only here */
    out->queue_items = atomic_load(&m->n_items_queued);
    out->queue_requests = atomic_load(&m->n_requests);
    out->busy_workers = atomic_load(&m->busy);
    out->submitted = atomic_load(&m->submitted);
    out->rejected_full = atomic_load(&m->rejected_full);
    out->rejected_draining = atomic_load(&m->rejected_draining);
    out->rejected_too_big = atomic_load(&m->rejected_too_big);
    out->dropped_cancelled = atomic_load(&m->dropped_cancelled);
    out->dropped_deadline = atomic_load(&m->dropped_deadline);
    out->dropped_shutdown = atomic_load(&m->dropped_shutdown);
    out->batches = atomic_load(&m->batches);
    out->batch_items = atomic_load(&m->batch_items);
}
