/* api: the daemon's HTTP API on top of the transport (http.h): the route
 * table, the shared context the handlers read, the operational endpoints
 * (/healthz, /readyz, /metrics, /openapi.json) and the per-request hook that
 * feeds metrics and the access log. The model routes live in api_v1.c (REST)
 * and oip.c (KServe Open Inference Protocol v2); input parsing in
 * api_inputs.c; the error shape in api_errors.c. */
#ifndef FF_API_H
#define FF_API_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "batcher.h"
#include "compiler.h"
#include "http.h"
#include "infer_request.h"
#include "metrics.h"
#include "model_registry.h"

/* Most inputs (items) in one request; more -> 413. Keeps the per-request
 * allocation (items x max tokens ids) bounded whatever the body limit. */
#define API_MAX_INPUTS 1024

/* Everything the handlers share. Borrowed pointers; main owns them and keeps
 * them alive until the HTTP server is stopped. Handlers run on the HTTP thread. */
typedef struct {
    model_registry *registry;
    batcher *batcher;
    metrics *metrics;
    atomic_bool draining; /* set by main on SIGTERM: /readyz says "draining" */
    const char *version;  /* daemon version string */

    /* News-cache counters already passed to the metrics, per metrics model
     * slot (HTTP thread only: updated when /metrics is scraped). */
    struct {
        const void *cache;
        uint64_t hits, misses;
    } cache_seen[METRICS_MAX_MODELS];
} api_context;

/* The route table, for http_options.routes (route_ctx = api_context *). */
extern const http_route api_routes[];
extern const size_t api_n_routes;

/* http_options.on_complete (ctx = api_context *): counts the request in the
 * metrics and writes the access-log line. HTTP thread. */
void api_on_complete(const http_request *r, void *ctx);

/* http_options.on_connection (ctx = api_context *): the open-connections gauge. */
void api_on_connection(int delta, void *ctx);

/* ---- shared by the model routes (api_v1.c, oip.c) ------------------------ */

/* Looks up the model named by path parameter 0 and records it on the request.
 * Returns a new reference, or NULL after answering 404 (unknown) or 503
 * (still loading, or the server is not ready). */
served_model *api_model_get(api_context *ctx, http_request *r);

/* Parses the request body as one JSON object (duplicate keys rejected, NUL
 * allowed in strings). Returns a new reference, or NULL after answering 400
 * with the position of the error. */
json_t *api_body_parse(http_request *r);

/* Rejects keys of `obj` not listed in the NULL-terminated `allowed` (400
 * "unknown key 'x' (allowed: a, b)"; `where` prefixes the message, may be "").
 * Returns false after answering. */
bool api_keys_check(http_request *r, json_t *obj, const char *where, const char *const *allowed);

/* Called on the HTTP thread with the finished infer_request (status OK)
 * to answer. `job` is the handler's state given to api_submit. */
typedef void (*api_finish_fn)(http_request *r, infer_request *req, void *job);

/* Parks `r`, submits `req` (items set) and, once it is done, runs `finish`
 * on the HTTP thread (or answers 504 / 503 itself for deadline / shutdown /
 * cancel). On a refused submit answers 429 (queue full, with Retry-After),
 * 503 (draining) or 413 (too big). Takes the caller's reference to req and
 * takes `job` (freed with job_free, may be NULL) whatever happens. */
void api_submit(api_context *ctx, http_request *r, infer_request *req, api_finish_fn finish,
                void *job, void (*job_free)(void *));

/* json_real for a float that may not be finite (JSON has no NaN): returns
 * null for NaN/Inf. A new reference, or NULL when out of memory. */
json_t *api_json_float(float v);
/* A JSON array of n floats (new reference, NULL when out of memory). */
json_t *api_json_floats(const float *v, int n);

/* ---- route handlers ----------------------------------------------------- */

void api_v1_models(http_request *r, void *ctx);
void api_v1_model(http_request *r, void *ctx);
void api_v1_classify(http_request *r, void *ctx);
void api_v1_embed(http_request *r, void *ctx);
void api_v1_recommend(http_request *r, void *ctx);
void api_v1_news_put(http_request *r, void *ctx);

void oip_server_metadata(http_request *r, void *ctx);
void oip_health_live(http_request *r, void *ctx);
void oip_health_ready(http_request *r, void *ctx);
void oip_model_metadata(http_request *r, void *ctx);
void oip_model_ready(http_request *r, void *ctx);
void oip_infer(http_request *r, void *ctx);

/* A model's description for /v1/models (full = false: name, task, ready) and
 * /v1/models/{name} (full = true). New reference, NULL when out of memory. */
json_t *api_model_json(const served_model *sm, bool full);

#endif
