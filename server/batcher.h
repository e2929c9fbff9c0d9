/* batcher: the bounded queue of items (one token sequence each, from many
 * requests) between the HTTP front and the worker threads, and the scheduling
 * decision that turns queued items into batches.
 *
 * Policy (batcher_schedule, a pure function of the queue and the clock):
 *  - Dead items go first: an item whose request was cancelled or whose
 *    deadline has passed is dropped before compute (and counted).
 *  - An idle worker takes a batch at once: a lone request never waits for
 *    company. Items only wait while every worker is busy; while they wait
 *    they accumulate, and the next free worker gets a full batch. (Outside
 *    this function, batcher_next lets one idle worker poll the queue briefly
 *    before it sleeps, so "at once" does not include a thread wake-up.)
 *  - A batch holds items of one model and is closed when it reaches the
 *    model's max_batch_size items or the next item would push the padded
 *    size (n_items * longest item) over max_batch_tokens.
 *  - The batch always contains the oldest live item. Items that have waited
 *    at least max_queue_delay_us ("overdue") come next, oldest first. The rest
 *    of the batch is filled with the items closest in length to the oldest
 *    one (ties: older first), so padding stays small. The delay thus bounds
 *    how long length grouping may pass an item over.
 *  - Only the oldest BATCHER_SCAN_ITEMS live items of the batch's model are
 *    candidates, which bounds the work under the queue lock.
 *  - Drops are decided when a worker looks for work: an item whose deadline
 *    passes while every worker is busy is dropped when the next one frees up.
 * Items of one request may span batches. The queue is bounded: submit fails
 * fast (BATCHER_FULL) rather than queueing without limit.
 *
 * Threads: the front calls batcher_submit (HTTP thread); worker threads call
 * batcher_next (worker.h does this); main calls the drain functions and
 * readers of the stats. Everything here is thread-safe unless stated. */
#ifndef FF_BATCHER_H
#define FF_BATCHER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "infer_request.h"

/* ---- the pure scheduling function --------------------------------------- */

/* Candidates examined per decision (see the policy above). */
#define BATCHER_SCAN_ITEMS 1024

/* One queued item as the scheduler sees it. `req` and `item` are carried
 * through untouched; the scheduler reads only the other fields. */
typedef struct {
    int64_t enqueue_us;       /* when it was queued */
    int64_t deadline_us;      /* 0 = none; dropped when now >= deadline */
    const void *group;        /* items batch together only within one group (the served_model) */
    int32_t n_tokens;         /* sequence length (trailing padding trimmed); may be 0 */
    int32_t max_batch_size;   /* the group's limits (>= 1) */
    int32_t max_batch_tokens; /* >= every n_tokens of the group (asserted) */
    bool cancelled;
    infer_request *req;
    int32_t item; /* index in req, or -1 for a "head only" entry (all items were cached) */
} batcher_item;

typedef enum {
    BATCHER_DROP_CANCELLED,
    BATCHER_DROP_DEADLINE,
    BATCHER_DROP_SHUTDOWN, /* batcher_abort; never decided by batcher_schedule */
} batcher_drop_reason;
const char *
batcher_drop_reason_name(batcher_drop_reason r); /* "cancelled", "deadline", "shutdown" */

/* The decision. Caller-provided arrays: take has room for the group's
 * max_batch_size entries (cap_take), drop and drop_reason for n_items. */
typedef struct {
    int *take;  /* indices into the queue, in the order they were chosen (oldest first) */
    int n_take; /* 0 = no batch now */
    int cap_take;
    int *drop; /* indices into the queue, ascending */
    batcher_drop_reason *drop_reason;
    int n_drop;
    int32_t padded_tokens;    /* n_take * longest taken item */
    int64_t next_deadline_us; /* earliest deadline among the items kept in the queue; 0 = none */
} batcher_plan;

typedef struct {
    int64_t max_queue_delay_us;
} batcher_policy;

/* Decides what to drop and which items form the next batch at time now_us.
 * `items` is the queue in arrival order (n_items >= 0). With n_idle_workers
 * == 0 only drops are decided. `scratch` holds n_items bytes. Pure: no
 * clock, no locks, no allocation; allocates nothing and writes only *plan
 * and scratch. Deterministic. */
void batcher_schedule(const batcher_policy *policy, const batcher_item *items, int n_items,
                      int n_idle_workers, int64_t now_us, uint8_t *scratch, batcher_plan *plan);

/* ---- the queue ------------------------------------------------------------ */

typedef struct batcher batcher;

typedef struct {
    int max_queue;       /* requests admitted and not yet completed (>= 1) */
    int max_queue_items; /* queued items at once (>= 1); 0 = max_queue * 64 */
    int max_batch_size;  /* the largest model max_batch_size (sizes the workers' buffers); a
                            model configured larger (e.g. after a SIGHUP) is capped at this */
    int64_t max_queue_delay_us;
} batcher_limits;

/* Returns a new, empty batcher accepting requests, or NULL when out of
 * memory. Main thread. */
batcher *batcher_new(const batcher_limits *lim);

/* Frees it. Precondition: no worker uses it (worker_pool_join) and no request
 * is in it (after a finished drain). */
void batcher_free(batcher *b);

typedef enum {
    BATCHER_OK = 0,
    BATCHER_FULL,     /* max_queue requests or max_queue_items items -> 429 + Retry-After */
    BATCHER_DRAINING, /* shutting down -> 503 */
    BATCHER_TOO_BIG,  /* the request alone has more items than max_queue_items -> 413 */
} batcher_status;

/* Queues every not-yet-computed item of `req` (all items must have been set:
 * asserted) and takes a reference to it. On BATCHER_OK the request's done
 * callback will run exactly once, later, on a worker thread (even when all its
 * items came from the cache: the task head runs on a worker). On any other
 * status nothing was queued, no reference was taken and the callback will
 * not run. Never blocks on compute; takes the queue lock briefly. */
FF_MUST_CHECK batcher_status batcher_submit(batcher *b, infer_request *req);
const char *batcher_status_name(batcher_status s); /* "ok", "queue_full", "draining", "too_big" */

/* Seconds a client should wait before retrying after BATCHER_FULL (the
 * Retry-After value; at least 1). */
int batcher_retry_after_s(const batcher *b);

/* ---- worker side (worker.c) ------------------------------------------------ */

/* What batcher_next hands to one worker: dropped items to complete without
 * compute, and a batch to compute. Sized once per worker (batcher_work_new).
 * The request pointers are borrowed: the batcher's reference to each request
 * lives until the worker completes the request's last item. */
typedef struct {
    int n;                 /* items in the batch; 0 = none */
    const void *group;     /* the batch's served_model */
    infer_request **reqs;  /* (n) */
    int32_t *items;        /* (n) item index in reqs[i], or -1 for a "head only" entry */
    int64_t *queue_us;     /* (n) how long each item waited */
    int32_t padded_tokens; /* n * longest item */

    int n_drop;                        /* items dropped before compute */
    infer_request **drop_reqs;         /* (n_drop) */
    int32_t *drop_items;               /* (n_drop) */
    batcher_drop_reason *drop_reasons; /* (n_drop) */

    /* scratch for the worker that computes the batch (worker.c), (cap) each */
    const int32_t **seq_ids;
    int32_t *seq_len;
    int32_t *seq_row;

    /* private */
    int cap, cap_drop;
} batcher_work;

/* A work buffer sized from b's limits. NULL when out of memory. */
batcher_work *batcher_work_new(const batcher *b);
void batcher_work_free(batcher_work *w);

typedef enum {
    BATCHER_NEXT_WORK,   /* *w holds drops and/or a batch */
    BATCHER_NEXT_IDLE,   /* nothing to do (timeout passed, or try_next on an empty queue) */
    BATCHER_NEXT_CLOSED, /* drained and empty: the worker must exit */
} batcher_next_status;

/* Blocks until there is work, timeout_us passes, or the batcher is drained
 * and empty. When *w holds a batch (w->n > 0) the worker counts as busy until
 * batcher_work_done. Worker threads only. */
batcher_next_status batcher_next(batcher *b, batcher_work *w, int64_t timeout_us);

/* Non-blocking variant (tests, and single-threaded use). */
batcher_next_status batcher_try_next(batcher *b, batcher_work *w);

/* The worker has finished the batch of *w (computed and completed its items). */
void batcher_work_done(batcher *b, const batcher_work *w);

/* An admitted request has completed (its callback ran): frees its queue
 * slot. Called once per admitted request by whoever completed it (worker.c). */
void batcher_request_done(batcher *b);

/* ---- warming idle workers ---------------------------------------------------- */

/* Runs with the batcher's lock held (batcher_expect_work): must be short and
 * must not call into the batcher. */
typedef void (*batcher_warm_fn)(void *user);

/* Sets (fn non-NULL) or clears the hook batcher_expect_work runs, for a pool
 * of n_workers workers. The worker pool sets it once its workers run and
 * clears it before it frees them: once this returns, no call of the old hook
 * is running or will run. Any thread. */
void batcher_set_warm(batcher *b, batcher_warm_fn fn, void *user, int n_workers);

/* A request is on its way (its body is in; it is about to be parsed and
 * submitted): runs the warm hook, if any, so that an idle worker's engine
 * threads are awake when the request reaches it (worker.c). A hint: while
 * every worker holds a batch it returns at once (no lock); otherwise it
 * takes the lock. Any thread (the HTTP thread, or a parse thread). */
void batcher_expect_work(batcher *b);

/* ---- draining -------------------------------------------------------------- */

/* Stops accepting: from now on batcher_submit returns BATCHER_DRAINING.
 * Queued items are still computed; once the queue is empty, batcher_next
 * returns BATCHER_NEXT_CLOSED to every worker. Any thread; idempotent. */
void batcher_drain(batcher *b);

/* Waits until every admitted request has completed or timeout_us passes
 * (0 = no wait). Returns true when it is empty. */
bool batcher_wait_idle(batcher *b, int64_t timeout_us);

/* Drain timeout: every queued item is dropped (their requests end with
 * INFER_SHUTDOWN; the workers complete them) so that the workers exit after
 * their current batch. Implies batcher_drain. Any thread. */
void batcher_abort(batcher *b);

/* ---- stats (lock-free reads; never enter the inference path) --------------- */

typedef struct {
    int queue_items;        /* items waiting now (the queue-depth gauge) */
    int queue_requests;     /* admitted requests not yet completed */
    int busy_workers;       /* workers holding a batch */
    uint64_t submitted;     /* requests admitted */
    uint64_t rejected_full; /* BATCHER_FULL */
    uint64_t rejected_draining;
    uint64_t rejected_too_big;
    uint64_t dropped_cancelled; /* items dropped before compute */
    uint64_t dropped_deadline;
    uint64_t dropped_shutdown;
    uint64_t batches;     /* batches handed out */
    uint64_t batch_items; /* items in those batches */
} batcher_stats;

void batcher_stats_get(const batcher *b, batcher_stats *out);

#endif
