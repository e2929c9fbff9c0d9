/* api: the daemon's HTTP API on top of the transport (http.h): the route
 * table (api_routes.def, the one place a route is spelled), the shared
 * context the handlers read and the per-request hook that feeds metrics and
 * the access log. The operational endpoints (/healthz, /readyz, /metrics,
 * /openapi.json) are in api_ops.c; the model routes in api_v1.c (REST) and
 * oip.c (KServe Open Inference Protocol v2), run by the frame of
 * api_frame.c; field checks in api_fields.c, input parsing in api_inputs.c,
 * the error shape in api_errors.c. */
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
#include "settings.h"

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
    /* server.cors_allow_origins (cors.h), borrowed from the daemon's settings */
    char *const *cors_origins;
    size_t n_cors_origins;
    /* server.model_control: the repository routes answer (api_repository.c) */
    bool model_control;
    /* The repository: the config file as it is now, with the command line's
     * overrides (main.c), valid until the next call; or NULL with err when it
     * no longer parses. HTTP thread. NULL: no repository (the routes answer
     * 403 as when model_control is off). */
    const settings *(*repository_config)(void *user, char *err, size_t err_cap);
    void *repository_user;
    /* Where model routes parse their bodies (api_frame.c), off the HTTP
     * thread; NULL parses on the HTTP thread (unit tests, the fuzzer). */
    struct task_pool *parse_pool;
    /* The memory estimate of the model set being served (main.c, at each
     * load) without its catalogs: /metrics adds the catalogs as they are now
     * and the request bodies held, so the gauge follows PUTs and uploads. */
    _Atomic size_t memory_fixed_bytes;
    const http_server *http; /* for the bodies held; NULL = none */

    /* News-cache counters already passed to the metrics, per metrics model
     * slot (HTTP thread only: updated when /metrics is scraped). */
    struct {
        const void *cache;
        uint64_t hits, misses;
    } cache_seen[METRICS_MAX_MODELS];
} api_context;

/* ---- the route table ------------------------------------------------------ */

/* A route's family: the tag its operation has in server/openapi.json (a unit
 * test checks them). The V2 family's routes are exactly those under /v2,
 * which answer errors in the Open Inference Protocol's shape
 * {"error": "message", ...} (api_errors.h decides by the path, so that an
 * unmatched /v2 path is answered the same way; test_openapi holds the
 * family to the paths). */
typedef enum {
    API_FAMILY_V1,         /* "v1": the REST API */
    API_FAMILY_V2,         /* "v2": the KServe Open Inference Protocol */
    API_FAMILY_OPERATIONS, /* "operations": health, readiness, metrics, the document */
    API_FAMILY_OPENAI,     /* "openai": OpenAI-compatible routes, OpenAI's error shape
                              {"error": {"message", "type", "param", "code"}} (api_openai.c) */
    API_FAMILY_TEI,        /* "tei": Hugging Face Text Embeddings Inference's routes under
                              /tei/{name}, TEI's error shape {"error", "error_type"} (api_tei.c) */
    API_FAMILY_TORCHSERVE, /* "torchserve": TorchServe's /predictions/{name} and /ping, its
                              error shape {"code", "type", "message"} (api_torchserve.c) */
} api_family;

/* "v1", "v2", "operations", "openai", "tei" or "torchserve". */
const char *api_family_tag(api_family family);

typedef struct api_model_route api_model_route; /* api_frame.h */

/* What the API knows of a route besides what the transport needs. */
typedef struct {
    api_family family;
    /* A route on one model ("{name}" first) whose body becomes an
     * infer_request: its parser and answer, run by api_frame_handle. NULL for
     * a route whose handler answers by itself. */
    const api_model_route *model;
} api_route_info;

/* Every route, in the order of api_routes.def: api_routes (for
 * http_options.routes, route_ctx = api_context *), api_route_infos[i] and
 * api_route_labels[i] (its path, the metrics' route label) describe the same
 * route. Static, read-only. */
extern const http_route api_routes[];
extern const api_route_info api_route_infos[];
extern const char *const api_route_labels[];
extern const size_t api_n_routes;

/* The http_handler of every API_MODEL_ROUTE (ctx = api_context *): the frame
 * of api_frame.h, with the route's api_model_route from api_route_infos.
 * HTTP thread. (Declared here, where the table needs it.) */
void api_frame_handle(http_request *r, void *ctx);

/* The index of `route` in api_routes, or METRICS_ROUTE_OTHER for NULL (no
 * route matched). `route` must be NULL or an element of api_routes. */
int api_route_index(const http_route *route);

/* The info of `route` (an element of api_routes). */
const api_route_info *api_route_info_of(const http_route *route);

/* The handlers and the model routes' parsers the table names, declared from
 * the table itself, so that adding a route declares its handler too. */
#define API_ROUTE(method, path, family, access, handler) void handler(http_request *r, void *ctx);
#define API_MODEL_ROUTE(method, path, family, route) extern const api_model_route route;
#include "api_routes.def"
#undef API_ROUTE
#undef API_MODEL_ROUTE

/* ---- hooks for http_options ------------------------------------------------ */

/* http_options.on_complete (ctx = api_context *): counts the request in the
 * metrics and writes the access-log line. HTTP thread. */
void api_on_complete(const http_request *r, void *ctx);

/* http_options.on_connection (ctx = api_context *): the open-connections gauge. */
void api_on_connection(int delta, void *ctx);

/* http_options.on_headers (ctx = api_context *; api_headers.c): the W3C
 * trace context (traceparent in, the request's trace and span in its stats
 * and a traceparent out) and CORS (the origin headers, and the answer to an
 * allowed origin's preflight). HTTP thread. */
bool api_on_headers(http_request *r, void *ctx);

/* ---- answers shared by the routes ------------------------------------------- */

/* json_real for a float that may not be finite (JSON has no NaN): returns
 * null for NaN/Inf. A new reference, or NULL when out of memory. */
json_t *api_json_float(float v);
/* A JSON array of n floats (new reference, NULL when out of memory). */
json_t *api_json_floats(const float *v, int n);

/* The registry's spec of the configured model m (strings borrowed from cfg):
 * its effective batch limits resolved (api_repository.c). */
model_spec api_model_spec(const settings *cfg, const settings_model *m);

/* A model's description for /v1/models (full = false: name, task, ready) and
 * /v1/models/{name} (full = true). New reference, NULL when out of memory. */
json_t *api_model_json(const served_model *sm, bool full);

#endif
