/* infer_request: one allocation per accepted request holding its items' ids
 * and every output, so that the workers never allocate (see infer_request.h). */
#include "infer_request.h"

#include <assert.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input_ids.h"
#include "model_registry.h"
#include "mono_clock.h"

/* Bump allocation inside one block: each array starts on a max_align_t
 * boundary. Returns false on size_t overflow. */
static bool layout_add(size_t *off, size_t count, size_t elem, size_t *at)
{
    size_t a = alignof(max_align_t);
    size_t o = (*off + a - 1) / a * a;
    if (elem != 0 && count > (SIZE_MAX - o) / elem)
        return false;
    *at = o;
    *off = o + count * elem;
    return true;
}

/* Where the arrays every request has (each item's ids, length, flags and
 * vector) sit in its block. */
typedef struct {
    size_t ids, n_ids, ready, cache, vec;
} item_offsets;

static bool layout_items(size_t *off, size_t n, int max_ids, int dim, item_offsets *at)
{
    return n <= SIZE_MAX / (size_t)max_ids && layout_add(off, n * (size_t)max_ids, 4, &at->ids) &&
           layout_add(off, n, 4, &at->n_ids) && layout_add(off, n, 1, &at->ready) &&
           layout_add(off, n, 1, &at->cache) && n <= SIZE_MAX / (size_t)dim &&
           layout_add(off, n * (size_t)dim, sizeof(float), &at->vec);
}

/* Fills in what every request starts with, in a zeroed block laid out by
 * layout_items; the request takes a reference on sm. */
static infer_request *request_init(char *block, const item_offsets *at, served_model *sm,
                                   infer_task task, int n_items, int n_history)
{
    infer_request *req = (infer_request *)block;
    served_model_retain(sm);
    req->sm = sm;
    req->task = task;
    req->n_items = n_items;
    req->n_history = n_history;
    req->dim = sm->model->config.encoder.hidden_size;
    req->max_ids = model_max_tokens(sm->model);
    req->accept_us = mono_clock_us();
    req->deadline_us = 0;
    req->ids = (int32_t *)(block + at->ids);
    req->n_ids = (int32_t *)(block + at->n_ids);
    req->item_ready = (uint8_t *)(block + at->ready);
    req->item_cache = (uint8_t *)(block + at->cache);
    req->vectors = (float *)(block + at->vec);
    for (int i = 0; i < n_items; i++)
        req->n_ids[i] = -1;
    atomic_init(&req->queue_us_max, -1);
    atomic_init(&req->infer_us_max, -1);
    atomic_init(&req->batch_size_max, 0);
    atomic_init(&req->refs, 1);
    atomic_init(&req->status, INFER_PENDING);
    atomic_init(&req->drop_status, 0);
    atomic_init(&req->cancelled, false);
    atomic_init(&req->pending, 0);
    return req;
}

infer_request *infer_request_new(served_model *sm, infer_task task, int n_items, int n_history)
{
    assert(sm && sm->model && n_items >= 1);
    const model *m = sm->model;
    int dim = m->config.encoder.hidden_size;
    int n_labels = 0, n_cand = 0; /* n_cand > 0: the recommend head's outputs */
    switch (task) {
    case INFER_CLASSIFY:
        assert(model_has_classifier(m));
        n_labels = m->config.num_labels;
        n_history = 0;
        break;
    case INFER_EMBED:
        n_history = 0;
        break;
    case INFER_RECOMMEND:
        assert(model_has_user_encoder(m));
        assert(n_history >= 0 && n_history < n_items);
        n_cand = n_items - n_history;
        break;
    }

    size_t n = (size_t)n_items, off = sizeof(infer_request);
    item_offsets at;
    size_t at_logits = 0, at_probs = 0, at_user = 0, at_scores = 0, at_rank = 0;
    bool ok = layout_items(&off, n, model_max_tokens(m), dim, &at);
    if (ok && n_labels > 0)
        ok = n <= SIZE_MAX / (size_t)n_labels &&
             layout_add(&off, n * (size_t)n_labels, sizeof(float), &at_logits) &&
             layout_add(&off, n * (size_t)n_labels, sizeof(float), &at_probs);
    if (ok && n_cand > 0)
        ok = layout_add(&off, (size_t)dim, sizeof(float), &at_user) &&
             layout_add(&off, (size_t)n_cand, sizeof(float), &at_scores) &&
             layout_add(&off, (size_t)n_cand, sizeof(int32_t), &at_rank);
    if (!ok)
        return NULL;
    char *block = calloc(1, off);
    if (!block)
        return NULL;

    infer_request *req = request_init(block, &at, sm, task, n_items, n_history);
    req->n_labels = n_labels;
    if (n_labels > 0) {
        req->logits = (float *)(block + at_logits);
        req->probs = (float *)(block + at_probs);
    }
    if (n_cand > 0) {
        req->user_vector = (float *)(block + at_user);
        req->scores = (float *)(block + at_scores);
        req->ranking = (int32_t *)(block + at_rank);
    }
    return req;
}

infer_request *infer_request_new_catalog(served_model *sm, int n_history, int k, int64_t since_ms,
                                         bool exclude_history)
{
    assert(sm && sm->catalog && n_history >= 0 && k >= 1 && k <= NEWS_CATALOG_TOP_K_MAX);
    const model *m = sm->model;
    assert(model_has_user_encoder(m));
    int dim = m->config.encoder.hidden_size;
    size_t n = (size_t)n_history, off = sizeof(infer_request);
    item_offsets at;
    size_t at_user, at_hits, at_hid, at_hlen, at_skip, at_slen, at_user_i16;
    bool ok = layout_items(&off, n, model_max_tokens(m), dim, &at) &&
              layout_add(&off, (size_t)dim, sizeof(float), &at_user) &&
              layout_add(&off, (size_t)k, sizeof(news_catalog_hit), &at_hits) &&
              layout_add(&off, n, NEWS_CATALOG_ID_MAX + 1, &at_hid) &&
              layout_add(&off, n, sizeof(size_t), &at_hlen) &&
              layout_add(&off, n, sizeof(char *), &at_skip) &&
              layout_add(&off, n, sizeof(size_t), &at_slen) &&
              layout_add(&off, NEWS_CATALOG_SCRATCH(dim), sizeof(int16_t), &at_user_i16);
    if (!ok)
        return NULL;
    char *block = calloc(1, off);
    if (!block)
        return NULL;
    infer_request *req = request_init(block, &at, sm, INFER_RECOMMEND, n_history, n_history);
    req->user_vector = (float *)(block + at_user);
    req->catalog_k = k;
    req->since_ms = since_ms;
    req->exclude_history = exclude_history;
    req->hits = (news_catalog_hit *)(block + at_hits);
    req->history_ids = block + at_hid;
    req->history_id_len = (size_t *)(block + at_hlen);
    req->skip = (const char **)(block + at_skip);
    req->skip_len = (size_t *)(block + at_slen);
    req->user_i16 = (int16_t *)(block + at_user_i16);
    return req;
}

int32_t *infer_request_item_ids(infer_request *req, int i)
{
    assert(req && i >= 0 && i < req->n_items);
    return req->ids + (size_t)i * (size_t)req->max_ids;
}

/* Drops trailing padding (id 0): it changes no result and costs compute. */
static int trim_padding(const int32_t *ids, int n)
{
    while (n > 0 && ids[n - 1] == 0)
        n--;
    return n;
}

void infer_request_set_item_len(infer_request *req, int i, int n)
{
    assert(req && i >= 0 && i < req->n_items && n >= 0 && n <= req->max_ids);
    req->n_ids[i] = trim_padding(infer_request_item_ids(req, i), n);
    req->item_ready[i] = 0;
    req->item_cache[i] = 0;
}

/* The news cache serves the news of recommend requests; classify and embed
 * items are always computed. */
static bool task_uses_news_cache(infer_task task)
{
    switch (task) {
    case INFER_CLASSIFY:
    case INFER_EMBED:
        return false;
    case INFER_RECOMMEND:
        return true;
    }
    return false;
}

void infer_request_set_item_text_news(infer_request *req, int i, int n)
{
    infer_request_set_item_len(req, i, n);
    news_cache *cache = req->sm->cache;
    if (!task_uses_news_cache(req->task) || !cache)
        return;
    float *row = req->vectors + (size_t)i * (size_t)req->dim;
    if (news_cache_get(cache, infer_request_item_ids(req, i), req->n_ids[i], row)) {
        req->item_ready[i] = 1;
        req->n_cached++;
        req->n_cache_hits++;
    } else {
        req->item_cache[i] = 1;
        req->n_cache_misses++;
    }
}

int infer_request_set_item_ids(infer_request *req, int i, const int32_t *ids, size_t n, char *err,
                               size_t err_cap)
{
    assert(req && i >= 0 && i < req->n_items && (ids || n == 0));
    if (n > (size_t)req->max_ids) {
        snprintf(err, err_cap, "input_ids: %zu ids, more than the model's maximum of %d", n,
                 req->max_ids);
        return -1;
    }
    int vocab_size = req->sm->model->config.vocab_size;
    for (size_t k = 0; k < n; k++)
        if (input_id_check(ids[k], vocab_size, "input_ids", k, err, err_cap) != 0)
            return -1;
    if (n > 0)
        memcpy(infer_request_item_ids(req, i), ids, n * sizeof *ids);
    infer_request_set_item_text_news(req, i, (int)n);
    return 0;
}

int infer_request_set_item_news_id(infer_request *req, int i, const char *id, size_t id_len,
                                   char *err, size_t err_cap)
{
    assert(req && i >= 0 && i < req->n_items && (id || id_len == 0));
    if (!req->sm->catalog) {
        snprintf(err, err_cap, "model '%s' has no news catalog", req->sm->name);
        return -1;
    }
    float *row = req->vectors + (size_t)i * (size_t)req->dim;
    if (!news_catalog_get(req->sm->catalog, id, id_len, row)) {
        int shown = id_len > 64 ? 64 : (int)id_len;
        snprintf(err, err_cap, "unknown news_id '%.*s%s'", shown, id, id_len > 64 ? "..." : "");
        return -1;
    }
    if (req->catalog_k > 0 && i < req->n_history) {
        memcpy(req->history_ids + (size_t)i * (NEWS_CATALOG_ID_MAX + 1), id, id_len);
        req->history_id_len[i] = id_len;
    }
    req->n_ids[i] = 0;
    req->item_ready[i] = 1;
    req->item_cache[i] = 0;
    req->n_cached++;
    return 0;
}

void infer_request_set_item_vector(infer_request *req, int i, const float *vec)
{
    assert(req && i >= 0 && i < req->n_items && vec);
    memcpy(req->vectors + (size_t)i * (size_t)req->dim, vec, (size_t)req->dim * sizeof *vec);
    req->n_ids[i] = 0;
    req->item_ready[i] = 1;
    req->item_cache[i] = 0;
    req->n_cached++;
}

void infer_request_set_deadline(infer_request *req, int64_t deadline_us)
{
    assert(req && deadline_us >= 0);
    req->deadline_us = deadline_us;
}

void infer_request_set_done(infer_request *req, infer_done_fn fn, void *user)
{
    assert(req);
    req->done = fn;
    req->done_user = user;
}

void infer_request_cancel(infer_request *req)
{
    assert(req);
    atomic_store(&req->cancelled, true);
}

infer_status infer_request_status(const infer_request *req)
{
    infer_request *r = (infer_request *)req; /* atomic read only */
    return (infer_status)atomic_load(&r->status);
}

const char *infer_status_name(infer_status s)
{
    switch (s) {
    case INFER_PENDING:
        return "pending";
    case INFER_OK:
        return "ok";
    case INFER_CANCELLED:
        return "cancelled";
    case INFER_DEADLINE:
        return "deadline";
    case INFER_SHUTDOWN:
        return "shutdown";
    }
    return "unknown";
}

void infer_request_retain(infer_request *req)
{
    assert(req);
    int old = atomic_fetch_add_explicit(&req->refs, 1, memory_order_relaxed);
    assert(old >= 1);
    (void)old;
}

void infer_request_release(infer_request *req)
{
    if (!req)
        return;
    int old = atomic_fetch_sub_explicit(&req->refs, 1, memory_order_acq_rel);
    assert(old >= 1);
    if (old == 1) {
        served_model_release(req->sm);
        free(req);
    }
}
