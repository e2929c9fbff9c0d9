/* api_ops: the operational endpoints, /healthz, /readyz, /metrics and
 * /openapi.json. They never touch the inference path. */
#include "api.h"

#include <pthread.h>
#include <stdio.h>

#include "openapi.h"

void api_healthz(http_request *r, void *ctx)
{
    (void)ctx;
    http_request_respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(http_request *r, void *vctx)
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
/* Returns the bytes the served models' news catalogs hold now. */
static size_t per_model_sync(api_context *ctx)
{
    size_t catalogs = 0;
    served_model *list[METRICS_MAX_MODELS];
    int n = model_registry_list(ctx->registry, list, METRICS_MAX_MODELS);
    if (n > METRICS_MAX_MODELS)
        n = METRICS_MAX_MODELS;
    for (int i = 0; i < n; i++) {
        if (list[i]->catalog)
            catalogs += news_catalog_bytes(list[i]->catalog);
        metrics_model_id id = metrics_model_find(ctx->metrics, list[i]->name);
        if (id >= 0) {
            metrics_queue_depth_set(ctx->metrics, id, atomic_load(&list[i]->queued_items));
            metrics_news_catalog_items_set(
                ctx->metrics, id,
                list[i]->catalog ? (int64_t)news_catalog_count(list[i]->catalog) : -1);
            for (int k = NEWS_STORE_OK + 1; list[i]->catalog && k <= NEWS_STORE_NO_MEMORY; k++)
                metrics_news_store_errors_set(
                    ctx->metrics, id, k,
                    news_catalog_store_errors(list[i]->catalog, (news_store_status)k));
            metrics_news_store_up(ctx->metrics, id,
                                  list[i]->catalog ? news_catalog_store_up(list[i]->catalog) : -1);
        }
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
    return catalogs;
}

/* /metrics is served by the main listener's thread and by the health
 * listener's: one scrape at a time updates cache_seen. */
static pthread_mutex_t scrape_lock = PTHREAD_MUTEX_INITIALIZER;

void api_metrics(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    batcher_stats st;
    batcher_stats_get(ctx->batcher, &st);
    pthread_mutex_lock(&scrape_lock);
    metrics_queue_depth_set(ctx->metrics, METRICS_NO_MODEL, st.queue_items);
    size_t catalogs = per_model_sync(ctx);
    if (ctx->http)
        metrics_connections_evicted_set(ctx->metrics, http_server_connections_evicted(ctx->http));
    size_t fixed = atomic_load(&ctx->memory_fixed_bytes);
    if (fixed > 0) /* 0 until the first model set is in */
        metrics_memory_estimate_set(
            ctx->metrics, fixed + catalogs + (ctx->http ? http_server_body_bytes(ctx->http) : 0));
    char *text = NULL;
    size_t len = 0;
    int rendered = metrics_render(ctx->metrics, &text, &len);
    pthread_mutex_unlock(&scrape_lock);
    if (rendered != 0) {
        http_request_respond_error(r, 500, "out of memory while rendering metrics");
        return;
    }
    http_request_respond_owned(r, 200, METRICS_CONTENT_TYPE, text, len);
}

void api_openapi(http_request *r, void *ctx)
{
    (void)ctx;
    http_request_respond_bytes(r, 200, "application/json", openapi_json, openapi_json_bytes);
}
