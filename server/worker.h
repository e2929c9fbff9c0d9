/* worker: the pool of inference threads. Each worker takes a batch from the
 * batcher, gathers the items' ids into its own workspace of the batch's
 * model (served_model.ws[worker index], sized once from the batching limits),
 * runs model_encode_ids, copies each pooled vector into its request and
 * completes the items. The worker that completes a request's last item runs
 * the task head in the same thread with the same workspace (model_classify;
 * model_encode_users + model_score + ranking for recommendations), puts new
 * text-news vectors in the news cache, then calls the request's done
 * callback. Dropped items (cancelled, deadline) are completed the same way
 * without compute. Nothing here allocates per batch.
 *
 * Each worker runs its forward passes on engine_threads threads: itself and
 * engine_threads - 1 threads it lends to the engine (a parallel.h team per
 * worker, set on the workspace before each encode). Workers and engine
 * threads are configured together: workers * engine_threads should not
 * exceed the cores (default for 2 cores: 1 worker x 2 engine threads); the
 * engine's own kernels use no BLAS threads. */
#ifndef FF_WORKER_H
#define FF_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "batcher.h"
#include "compiler.h"

typedef struct worker_pool worker_pool;

/* Observer of what the workers do, for metrics. Every function may be NULL;
 * each is called on a worker thread outside every lock and must not block.
 * `model` is the served model's name (borrowed for the call). */
typedef struct {
    void *user;
    /* one computed batch: items, padded tokens (n * longest), compute seconds */
    void (*on_batch)(void *user, const char *model, int n_items, int padded_tokens,
                     double infer_seconds);
    /* one item left the queue into a batch after waiting queue_seconds */
    void (*on_queue_wait)(void *user, const char *model, double queue_seconds);
    /* n items dropped before compute */
    void (*on_drop)(void *user, const char *model, batcher_drop_reason reason, int n_items);
} worker_observer;

typedef struct {
    int n_workers;      /* >= 1; must equal model_registry's n_workers */
    int blas_threads;   /* >= 1; passed to openblas_set_num_threads once at start */
    int engine_threads; /* >= 1 (0 is taken as 1): threads per worker's forward pass; the
                           served models' workspaces must hold as many lanes */
    worker_observer observer;
} worker_options;

/* Sets the BLAS thread count and starts n_workers threads pulling from `b`
 * (borrowed; must outlive the pool). Returns 0, or -1 with a message
 * ("cannot start worker 1: Resource temporarily unavailable") after joining
 * any worker already started. Main thread. */
FF_MUST_CHECK int worker_pool_start(batcher *b, const worker_options *opt, worker_pool **out,
                                    char *err, size_t err_cap);

/* Waits for every worker to exit (they exit once batcher_drain was called and
 * the queue is empty, or after batcher_abort) and frees the pool. Main thread. */
void worker_pool_join(worker_pool *p);

/* Watchdog support: true when every worker is either idle (and woke up in the
 * last stall_us) or has been in its current batch for less than stall_us.
 * Workers wake at least every 500 ms while idle. Any thread, lock-free. */
bool worker_pool_alive(const worker_pool *p, int64_t now_us, int64_t stall_us);

/* Runs one unit of work from batcher_next on the calling thread: completes
 * the dropped items, computes the batch in served_model.ws[worker_index],
 * completes its items (running the heads and the done callbacks of the
 * requests that finish), then calls batcher_work_done. The pool's threads use
 * it; tests call it to drive batcher_try_next by hand without threads. */
void worker_run(int worker_index, batcher *b, const batcher_work *w, const worker_observer *obs);

#endif
