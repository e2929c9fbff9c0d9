/* api: the route table expanded from api_routes.def, the per-request
 * metrics/access-log hook and the JSON helpers the routes share. */
#include "api.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mono_clock.h"

/* ---- the route table ------------------------------------------------------------ */

#define API_ACCESS_OPEN true
#define API_ACCESS_KEY false

const http_route api_routes[] = {
#define API_ROUTE(method, path, family, access, handler)                                           \
    {HTTP_##method, path, handler, API_ACCESS_##access},
#define API_MODEL_ROUTE(method, path, family, route) {HTTP_##method, path, api_frame_handle, false},
#include "api_routes.def"
#undef API_ROUTE
#undef API_MODEL_ROUTE
};

const api_route_info api_route_infos[] = {
#define API_ROUTE(method, path, family, access, handler) {API_FAMILY_##family, NULL},
#define API_MODEL_ROUTE(method, path, family, route) {API_FAMILY_##family, &(route)},
#include "api_routes.def"
#undef API_ROUTE
#undef API_MODEL_ROUTE
};

const char *const api_route_labels[] = {
#define API_ROUTE(method, path, family, access, handler) path,
#define API_MODEL_ROUTE(method, path, family, route) path,
#include "api_routes.def"
#undef API_ROUTE
#undef API_MODEL_ROUTE
};

const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];

_Static_assert(sizeof api_route_infos / sizeof api_route_infos[0] ==
                       sizeof api_routes / sizeof api_routes[0] &&
                   sizeof api_route_labels / sizeof api_route_labels[0] ==
                       sizeof api_routes / sizeof api_routes[0],
               "the route tables come from one list");

int api_route_index(const http_route *route)
{
    if (!route)
        return METRICS_ROUTE_OTHER;
    assert(route >= api_routes && route < api_routes + api_n_routes);
    return (int)(route - api_routes);
}

const api_route_info *api_route_info_of(const http_route *route)
{
    assert(route);
    return &api_route_infos[api_route_index(route)];
}

const char *api_family_tag(api_family family)
{
    switch (family) {
    case API_FAMILY_V1:
        return "v1";
    case API_FAMILY_V2:
        return "v2";
    case API_FAMILY_OPERATIONS:
        return "operations";
    case API_FAMILY_OPENAI:
        return "openai";
    case API_FAMILY_TEI:
        return "tei";
    case API_FAMILY_TORCHSERVE:
        return "torchserve";
    }
    return "";
}

/* ---- metrics and access log -------------------------------------------------- */

void api_on_complete(const http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    int64_t latency_us = mono_clock_us() - http_request_start_us(r);
    if (latency_us < 0)
        latency_us = 0;
    int route = api_route_index(http_request_route(r));
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
        .route = metrics_route_name(ctx->metrics, route),
        .model = model_name[0] ? model_name : NULL,
        .remote_addr = addr[0] ? addr : NULL,
        .status = http_request_status(r),
        .latency_ns = (uint64_t)latency_us * 1000,
        .queue_ns = st->queue_us > 0 ? (uint64_t)st->queue_us * 1000 : 0,
        .batch_size = st->batch_size > 0 ? (uint32_t)st->batch_size : 0,
        .n_items = st->n_items > 0 ? (uint32_t)st->n_items : 0,
        .error = reject_reason_name(st->reject),
        .trace_id = st->trace_id[0] ? st->trace_id : NULL,
        .span_id = st->span_id[0] ? st->span_id : NULL,
        .parent_id = st->parent_id[0] ? st->parent_id : NULL,
    };
    log_access(&e);
}

void api_on_connection(int delta, void *vctx)
{
    api_context *ctx = vctx;
    metrics_connections_add(ctx->metrics, delta);
}

/* ---- JSON helpers ------------------------------------------------------------- */

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
