/* infer_request: one accepted inference request (classify, embed or
 * recommend) split into items, one token sequence each. It is allocated once
 * when the request is accepted, sized for its items and outputs, so nothing
 * on the compute path allocates. The front fills it, submits it to the
 * batcher (batcher.h), and reads the outputs after its completion callback.
 *
 * Lifecycle (all threads):
 *   req = infer_request_new(sm, task, n_items, n_history)   front, HTTP thread
 *   infer_request_set_item_ids / _set_item_news_id / _set_item_vector   front
 *   infer_request_set_deadline(req, deadline_us)                      front, optional
 *   infer_request_set_done(req, fn, user)                             front
 *   http_request_suspend(...)   (park BEFORE submit: `fn` may run at once)
 *   batcher_submit(b, req)      on failure, answer 429/503 and release
 *   ... workers compute; the worker that completes the last item runs the
 *   task head (classify / user encoder + scores) and then `fn` exactly once.
 *   fn: e.g. http_request_resume(); the HTTP thread then reads the outputs
 *   infer_request_release(req)  when the front is done with it
 *
 * Reference counting: infer_request_new returns one reference (the front's).
 * batcher_submit takes another one that is dropped after `fn` returns, so the
 * front may release at any time (e.g. when the client went away) without
 * waiting for the workers. The request holds a reference to its
 * served_model, so a SIGHUP swap never frees a model in use. */
#ifndef FF_INFER_REQUEST_H
#define FF_INFER_REQUEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

typedef struct served_model served_model; /* model_registry.h */
typedef struct infer_request infer_request;

typedef enum {
    INFER_CLASSIFY,  /* items: texts; out: vectors (pooled) + probs/logits */
    INFER_EMBED,     /* items: texts; out: vectors (pooled; news vectors for recommenders) */
    INFER_RECOMMEND, /* items: n_history clicked news, then candidates; out: user_vector,
                        scores, ranking (and the news vectors) */
} infer_task;

/* Outcome, final when the done callback runs. */
typedef enum {
    INFER_PENDING = 0, /* not finished (never seen by the callback) */
    INFER_OK,          /* every output is valid */
    INFER_CANCELLED,   /* infer_request_cancel was called before it finished -> no answer needed */
    INFER_DEADLINE,    /* the deadline passed while items were still queued -> 504 */
    INFER_SHUTDOWN,    /* dropped by batcher_abort (drain timeout) -> 503 */
} infer_status;

/* Called exactly once per request that batcher_submit accepted, on a worker
 * thread (never inside batcher_submit itself, never on the caller's stack of
 * infer_request_cancel). Must be short and must not block: typically
 * http_request_resume. The request is still referenced while it runs. */
typedef void (*infer_done_fn)(infer_request *req, void *user);

struct infer_request {
    /* ---- read-only for everyone once submitted ---- */
    served_model *sm; /* the model (the request holds a reference) */
    infer_task task;
    int n_items;         /* sequences (history + candidates for RECOMMEND) */
    int n_history;       /* RECOMMEND: items [0, n_history) are the clicked news */
    int dim;             /* D of the pooled vectors */
    int n_labels;        /* C for CLASSIFY, else 0 */
    int max_ids;         /* capacity of each item's ids: model_max_tokens() */
    int64_t accept_us;   /* monotonic time of infer_request_new */
    int64_t deadline_us; /* monotonic; 0 = none */

    /* ---- outputs: valid once status == INFER_OK (read after the callback) ---- */
    float *vectors;     /* (n_items, D) pooled text/news vectors, in item order */
    float *logits;      /* (n_items, C) CLASSIFY only, else NULL */
    float *probs;       /* (n_items, C) CLASSIFY only, else NULL */
    float *user_vector; /* (D) RECOMMEND only, else NULL. An empty history (n_history 0)
                           gives the zero vector (the user encoder pools no rows to 0), so
                           every score is 0 and the ranking is the input order. */
    float *scores;      /* (n_items - n_history) RECOMMEND only: dot(user, candidate) */
    int32_t *ranking;   /* (n_items - n_history) RECOMMEND only: candidate indices, best first
                           (ties keep the lower index first) */

    /* ---- RECOMMEND over the whole news catalog (infer_request_new_catalog) ---- */
    int catalog_k;                 /* > 0: rank the catalog's items, best catalog_k */
    int64_t since_ms;              /* only items updated at or after (INT64_MIN: all) */
    bool exclude_history;          /* leave out the history's catalog items */
    struct news_catalog_hit *hits; /* (catalog_k) output, best first */
    int n_hits;                    /* valid hits (<= catalog_k) */
    char *history_ids;             /* (n_history, NEWS_CATALOG_ID_MAX + 1) ids given by news_id */
    size_t *history_id_len;        /* (n_history) 0: the item was not a catalog id */
    const char **skip;             /* (n_history) scratch for the head */
    size_t *skip_len;              /* (n_history) scratch for the head */
    int16_t *user_i16;             /* (NEWS_CATALOG_SCRATCH(D)) scratch for the head */

    /* ---- facts for logs and metrics (valid after the callback) ---- */
    _Atomic int64_t queue_us_max; /* longest queue wait of one of its items; -1 = none computed */
    _Atomic int64_t infer_us_max; /* longest compute time of one of its batches; -1 = none */
    _Atomic int batch_size_max;   /* largest batch one of its items ran in; 0 = none */
    int n_cached;                 /* items not computed: catalog, news cache or given vectors */
    int n_cache_hits;   /* RECOMMEND text news found in the news cache (for metrics_news_cache) */
    int n_cache_misses; /* RECOMMEND text news looked up and not found (computed, then cached) */

    /* ---- private (infer_request.c, batcher.c, worker.c) ---- */
    _Atomic int refs;
    _Atomic int status;      /* infer_status, set just before the callback */
    _Atomic int drop_status; /* first reason an item was dropped (infer_status), or 0 */
    _Atomic bool cancelled;
    _Atomic int pending; /* items not finished yet, +1 for the head until it has run */
    infer_done_fn done;
    void *done_user;
    int32_t *ids;        /* (n_items, max_ids) */
    int32_t *n_ids;      /* (n_items): real length after trailing-padding trim; -1 = unset */
    uint8_t *item_ready; /* (n_items): 1 when the vector came from catalog/cache */
    uint8_t *item_cache; /* (n_items): 1 = put the computed vector in the news cache */
};

/* Allocates a request for `n_items` items of model `sm` (acquires its own
 * reference to sm; the caller keeps its own). RECOMMEND: n_history in
 * [0, n_items], candidates = n_items - n_history >= 1 (asserted: the front
 * validates counts first). One allocation; NULL when out of memory (the front
 * answers 503). Any thread. */
infer_request *infer_request_new(served_model *sm, infer_task task, int n_items, int n_history);

/* A RECOMMEND request over sm's whole news catalog: n_history items (>= 0:
 * an empty history scores every item 0, so the newest come first), then the
 * head ranks every item and keeps the best k (1..NEWS_CATALOG_TOP_K_MAX) in
 * hits. since_ms and exclude_history filter them. NULL when out of memory.
 * Any thread. */
infer_request *infer_request_new_catalog(served_model *sm, int n_history, int k, int64_t since_ms,
                                         bool exclude_history);

/* Writable ids buffer of item i, capacity req->max_ids, for tokenizing in
 * place (model_tokenize); follow with infer_request_set_item_len. */
int32_t *infer_request_item_ids(infer_request *req, int i);

/* Sets item i's length after tokenizing into infer_request_item_ids (ids must
 * be valid: the tokenizer only emits ids < vocab_size). n <= max_ids (asserted). */
void infer_request_set_item_len(infer_request *req, int i, int n);

/* Copies n client-given ids into item i and validates them. Returns 0, or -1
 * with a message the front prefixes with the input's path, e.g.
 *   "input_ids[7]: id 99999 >= vocab_size 30000"
 *   "input_ids[2]: id -1 is negative"
 *   "input_ids: 600 ids, more than the model's maximum of 512"
 * (the front truncates first when the request allows it). Trailing zeros
 * (padding) are dropped. For RECOMMEND, looks the ids up in the model's news
 * cache: a hit fills the vector at once (no compute), a miss marks the
 * computed vector for insertion. */
FF_MUST_CHECK int infer_request_set_item_ids(infer_request *req, int i, const int32_t *ids,
                                             size_t n, char *err, size_t err_cap);

/* Like infer_request_set_item_len, but applies the RECOMMEND news-cache rule
 * of infer_request_set_item_ids (for text news tokenized in place). */
void infer_request_set_item_text_news(infer_request *req, int i, int n);

/* RECOMMEND: item i is the catalog news `id` (id_len bytes): copies its vector.
 * Returns 0, or -1 "unknown news_id 'N123'" / "model has no news catalog". */
FF_MUST_CHECK int infer_request_set_item_news_id(infer_request *req, int i, const char *id,
                                                 size_t id_len, char *err, size_t err_cap);

/* Item i's vector is known already (D floats, copied); it is not computed. */
void infer_request_set_item_vector(infer_request *req, int i, const float *vec);

/* Absolute deadline in monotonic microseconds (mono_clock_us clock); 0 = none.
 * Items still queued when it passes are dropped and the request ends with
 * INFER_DEADLINE. Before submit only. */
void infer_request_set_deadline(infer_request *req, int64_t deadline_us);

/* Completion callback (see infer_done_fn). Before submit only. */
void infer_request_set_done(infer_request *req, infer_done_fn fn, void *user);

/* Marks the request cancelled (client disconnected): its queued items are
 * dropped before compute and counted, and the callback still runs once with
 * INFER_CANCELLED unless it had already finished. Any thread; idempotent. */
void infer_request_cancel(infer_request *req);

/* The final status (INFER_PENDING until the callback runs). Any thread. */
infer_status infer_request_status(const infer_request *req);
const char *infer_status_name(infer_status s); /* "ok", "cancelled", "deadline", "shutdown" */

/* Reference counting. Any thread. Releasing the last reference frees the
 * request and releases its served_model. NULL is ignored by release. */
void infer_request_retain(infer_request *req);
void infer_request_release(infer_request *req);

#endif
