/* api: the route table, the operational endpoints, the submit/resume glue
 * shared by every inference route, and the per-request metrics/access-log hook. */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_inputs.h"
#include "log.h"
#include "mono_clock.h"
#include "openapi.h"
#include "value_kind.h"

/* ---- operational endpoints (never touch the inference path) ---------------- */

static void api_healthz(http_request *r, void *ctx)
{
    (void)ctx;
    http_request_respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void api_readyz(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    char reason[256];
    if (atomic_load(&ctx->draining)) {
        http_request_respond_json(
            r, 503, json_pack("{s:s,s:s}", "status", "not_ready", "reason", "draining"));
        return;
    }
    if (!model_registry_ready(ctx->registry, reason, sizeof reason)) {
        http_request_respond_json(r, 503,
                                  json_pack("{s:s,s:s}", "status", "not_ready", "reason", reason));
        return;
    }
    http_request_respond_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

/* Per-model state the metrics read at scrape time: each model's queued items
 * (the gauge) and its news cache's hits and misses. The caches count
 * themselves; the metrics take increments, so pass on what changed since the
 * last scrape (a reload brings a new cache, whose counts start from zero). */
static void per_model_sync(api_context *ctx)
{
    served_model *list[METRICS_MAX_MODELS];
    int n = model_registry_list(ctx->registry, list, METRICS_MAX_MODELS);
    if (n > METRICS_MAX_MODELS)
        n = METRICS_MAX_MODELS;
    for (int i = 0; i < n; i++) {
        metrics_model_id id = metrics_model_find(ctx->metrics, list[i]->name);
        if (id >= 0)
            metrics_queue_depth_set(ctx->metrics, id, atomic_load(&list[i]->queued_items));
        if (list[i]->cache && id >= 0 && id < METRICS_MAX_MODELS) {
            news_cache_stats cs;
            news_cache_stats_get(list[i]->cache, &cs);
            if (ctx->cache_seen[id].cache != list[i]->cache || cs.hits < ctx->cache_seen[id].hits ||
                cs.misses < ctx->cache_seen[id].misses) {
                ctx->cache_seen[id].cache = list[i]->cache;
                ctx->cache_seen[id].hits = 0;
                ctx->cache_seen[id].misses = 0;
            }
            uint64_t dh = cs.hits - ctx->cache_seen[id].hits;
            uint64_t dm = cs.misses - ctx->cache_seen[id].misses;
            metrics_news_cache(ctx->metrics, id, dh, dm);
            ctx->cache_seen[id].hits = cs.hits;
            ctx->cache_seen[id].misses = cs.misses;
        }
        served_model_release(list[i]);
    }
}

static void api_metrics(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    batcher_stats st;
    batcher_stats_get(ctx->batcher, &st);
    metrics_queue_depth_set(ctx->metrics, METRICS_NO_MODEL, st.queue_items);
    per_model_sync(ctx);
    char *text = NULL;
    size_t len = 0;
    if (metrics_render(ctx->metrics, &text, &len) != 0) {
        http_request_respond_error(r, 500, "out of memory while rendering metrics");
        return;
    }
    http_request_respond_owned(r, 200, METRICS_CONTENT_TYPE, text, len);
}

static void api_openapi(http_request *r, void *ctx)
{
    (void)ctx;
    http_request_respond_bytes(r, 200, "application/json", openapi_json, openapi_json_bytes);
}

/* ---- the route table --------------------------------------------------------- */

const http_route api_routes[] = {
    {HTTP_GET, "/healthz", api_healthz, "/healthz", true, METRICS_ROUTE_HEALTHZ},
    {HTTP_GET, "/readyz", api_readyz, "/readyz", true, METRICS_ROUTE_READYZ},
    {HTTP_GET, "/metrics", api_metrics, "/metrics", true, METRICS_ROUTE_METRICS},
    {HTTP_GET, "/openapi.json", api_openapi, "/openapi.json", true, METRICS_ROUTE_OPENAPI},
    {HTTP_GET, "/v1/models", api_v1_models, "/v1/models", false, METRICS_ROUTE_V1_MODELS},
    {HTTP_GET, "/v1/models/{}", api_v1_model, "/v1/models/{name}", false, METRICS_ROUTE_V1_MODEL},
    {HTTP_POST, "/v1/models/{}/classify", api_v1_classify, "/v1/models/{name}/classify", false,
     METRICS_ROUTE_V1_CLASSIFY},
    {HTTP_POST, "/v1/models/{}/embed", api_v1_embed, "/v1/models/{name}/embed", false,
     METRICS_ROUTE_V1_EMBED},
    {HTTP_POST, "/v1/models/{}/recommend", api_v1_recommend, "/v1/models/{name}/recommend", false,
     METRICS_ROUTE_V1_RECOMMEND},
    {HTTP_PUT, "/v1/models/{}/news/{}", api_v1_news_put, "/v1/models/{name}/news/{id}", false,
     METRICS_ROUTE_V1_NEWS_PUT},
    {HTTP_GET, "/v2", oip_server_metadata, "/v2", false, METRICS_ROUTE_V2},
    {HTTP_GET, "/v2/health/live", oip_health_live, "/v2/health/live", true, METRICS_ROUTE_V2_LIVE},
    {HTTP_GET, "/v2/health/ready", oip_health_ready, "/v2/health/ready", true,
     METRICS_ROUTE_V2_READY},
    {HTTP_GET, "/v2/models/{}", oip_model_metadata, "/v2/models/{name}", false,
     METRICS_ROUTE_V2_MODEL},
    {HTTP_GET, "/v2/models/{}/ready", oip_model_ready, "/v2/models/{name}/ready", false,
     METRICS_ROUTE_V2_MODEL_READY},
    {HTTP_POST, "/v2/models/{}/infer", oip_infer, "/v2/models/{name}/infer", false,
     METRICS_ROUTE_V2_INFER},
};
const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];

/* ---- metrics and access log -------------------------------------------------- */

void api_on_complete(const http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    int64_t latency_us = mono_clock_us() - http_request_start_us(r);
    if (latency_us < 0)
        latency_us = 0;
    int tag = http_request_route_tag(r);
    metrics_route route = tag >= 0 ? (metrics_route)tag : METRICS_ROUTE_OTHER;
    const char *model_name = http_request_model(r);
    metrics_model_id mid =
        model_name[0] ? metrics_model_find(ctx->metrics, model_name) : METRICS_NO_MODEL;
    metrics_request_done(ctx->metrics, mid, route, http_request_status(r),
                         (uint64_t)latency_us * 1000);
    const http_request_stats *st = http_request_stats_get(r);
    if (st->reject != REJECT_NONE) {
        metrics_reject(ctx->metrics, mid, st->reject);
    } else if (http_request_status(r) == 499) {
        /* The transport saw the client leave before any answer (while the
         * body was read, or before the request was parked): a disconnect the
         * parked-request probe never had the chance to cancel and count. */
        metrics_reject(ctx->metrics, mid, REJECT_DISCONNECTED);
    }

    char addr[96];
    http_request_remote_addr(r, addr, sizeof addr);
    log_access_entry e = {
        .request_id = http_request_id(r),
        .method = http_request_method_name(r),
        .path = http_request_path(r),
        .route = metrics_route_name(route),
        .model = model_name[0] ? model_name : NULL,
        .remote_addr = addr[0] ? addr : NULL,
        .status = http_request_status(r),
        .latency_ns = (uint64_t)latency_us * 1000,
        .queue_ns = st->queue_us > 0 ? (uint64_t)st->queue_us * 1000 : 0,
        .batch_size = st->batch_size > 0 ? (uint32_t)st->batch_size : 0,
        .n_items = st->n_items > 0 ? (uint32_t)st->n_items : 0,
        .error = reject_reason_name(st->reject),
    };
    log_access(&e);
}

void api_on_connection(int delta, void *vctx)
{
    api_context *ctx = vctx;
    metrics_connections_add(ctx->metrics, delta);
}

/* ---- shared helpers for the model routes ------------------------------------- */

served_model *api_model_get(api_context *ctx, http_request *r)
{
    const char *name = http_request_param(r, 0);
    if (!name)
        name = "";
    http_request_set_model(r, name);
    served_model *sm = model_registry_get(ctx->registry, name);
    if (sm)
        return sm;
    switch (model_registry_state(ctx->registry, name)) {
    case SERVED_MODEL_LOADING:
        http_request_stats_of(r)->reject = REJECT_NOT_READY;
        http_request_add_header(r, "Retry-After", "1");
        http_request_respond_error(r, 503, "model '%.64s' is still loading", name);
        return NULL;
    case SERVED_MODEL_FAILED:
        http_request_stats_of(r)->reject = REJECT_NOT_READY;
        http_request_respond_error(r, 503, "model '%.64s' failed to load", name);
        return NULL;
    default:
        /* Unknown names must not become metric labels. */
        http_request_set_model(r, "");
        http_request_respond_error(r, 404, "model '%.64s' not found", name);
        return NULL;
    }
}

json_t *api_body_parse(http_request *r)
{
    size_t len;
    const char *body = http_request_body(r, &len);
    if (len == 0) {
        http_request_respond_error(r, 400, "request body is empty: expected a JSON object");
        return NULL;
    }
    json_error_t jerr;
    json_t *j =
        json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!j) {
        http_request_respond_error(r, 400, "invalid JSON at line %d, column %d: %s", jerr.line,
                                   jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        http_request_respond_error(r, 400, "request body: expected a JSON object, got %s",
                                   value_kind_name(j));
        json_decref(j);
        return NULL;
    }
    return j;
}

bool api_keys_check(http_request *r, json_t *obj, const char *where, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok = ok || strcmp(key, *a) == 0;
        if (ok)
            continue;
        char list[160] = "";
        for (const char *const *a = allowed; *a; a++) {
            size_t n = strlen(list);
            snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *a);
        }
        http_request_respond_error(r, 400, "%s%sunknown key '%.64s' (allowed: %s)", where,
                                   where[0] ? ": " : "", key, list);
        return false;
    }
    return true;
}

json_t *api_json_float(float v)
{
    if (!isfinite(v))
        return json_null();
    return json_real((double)v);
}

json_t *api_json_floats(const float *v, int n)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (int i = 0; i < n; i++) {
        if (json_array_append_new(a, api_json_float(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ---- submit and resume --------------------------------------------------------- */

typedef struct {
    api_context *ctx;
    infer_request *req;
    api_finish_fn finish;
    void *job;
    void (*job_free)(void *);
    batcher_status submit;
} api_pending;

static void pending_free(void *p)
{
    api_pending *pd = p;
    infer_request_release(pd->req);
    if (pd->job_free)
        pd->job_free(pd->job);
    free(pd);
}

/* Main thread (http_server_probe_disconnects): the client went away. */
static void on_client_gone(http_request *r, void *ctx)
{
    (void)ctx;
    api_pending *pd = http_request_state(r);
    infer_request_cancel(pd->req);
}

/* Worker thread: the request's last item is done. */
static void on_infer_done(infer_request *req, void *user)
{
    (void)req;
    http_request_resume(user);
}

static void on_resume(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    api_pending *pd = http_request_state(r);
    http_request_stats *st = http_request_stats_of(r);
    char retry[16];
    switch (pd->submit) {
    case BATCHER_OK:
        break;
    case BATCHER_FULL:
        st->reject = REJECT_QUEUE_FULL;
        snprintf(retry, sizeof retry, "%d", batcher_retry_after_s(ctx->batcher));
        http_request_add_header(r, "Retry-After", retry);
        http_request_respond_error(r, 429, "the request queue is full; retry after %s s", retry);
        return;
    case BATCHER_DRAINING:
        st->reject = REJECT_DRAINING;
        http_request_add_header(r, "Retry-After", "1");
        http_request_respond_error(r, 503, "server is draining (shutting down)");
        return;
    case BATCHER_TOO_BIG:
        st->reject = REJECT_TOO_LARGE;
        http_request_respond_error(r, 413, "request has %d items, more than the queue can hold",
                                   pd->req->n_items);
        return;
    }
    infer_request *req = pd->req;
    st->queue_us = atomic_load(&req->queue_us_max);
    st->infer_us = atomic_load(&req->infer_us_max);
    st->batch_size = atomic_load(&req->batch_size_max);
    switch (infer_request_status(req)) {
    case INFER_OK:
        pd->finish(r, req, pd->job);
        return;
    case INFER_DEADLINE:
        st->reject = REJECT_DEADLINE;
        http_request_respond_error(r, 504, "the request's deadline passed while it was queued");
        return;
    case INFER_CANCELLED:
        /* The client went away (http_server_probe_disconnects): nobody reads
         * this answer; 499 (nginx's "client closed request") is for the log. */
        st->reject = REJECT_DISCONNECTED;
        http_request_respond_error(r, 499, "the client closed the connection");
        return;
    case INFER_SHUTDOWN:
    default:
        st->reject = REJECT_DRAINING;
        http_request_respond_error(r, 503, "server shut down before the request was computed");
        return;
    }
}

void api_submit(api_context *ctx, http_request *r, infer_request *req, api_finish_fn finish,
                void *job, void (*job_free)(void *))
{
    api_pending *pd = calloc(1, sizeof *pd);
    if (!pd) {
        infer_request_release(req);
        if (job_free)
            job_free(job);
        http_request_respond_error(r, 503, "out of memory");
        return;
    }
    pd->ctx = ctx;
    pd->req = req;
    pd->finish = finish;
    pd->job = job;
    pd->job_free = job_free;
    http_request_set_state(r, pd, pending_free);
    http_request_stats_of(r)->n_items = req->n_items;
    infer_request_set_deadline(req, http_request_deadline_us(r));
    infer_request_set_done(req, on_infer_done, r);
    http_request_set_cancel(r, on_client_gone, NULL);
    /* Park first: the done callback may run before batcher_submit returns. */
    http_request_suspend(r, on_resume, ctx);
    pd->submit = batcher_submit(ctx->batcher, req);
    if (pd->submit != BATCHER_OK)
        http_request_resume(r); /* on_resume answers the refusal */
}
