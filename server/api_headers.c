/* api_headers: what the API adds to every request before routing: the W3C
 * trace context and CORS (http_options.on_headers). */
#include "api.h"

#include <stdio.h>
#include <string.h>

#include "cors.h"
#include "route_path.h"
#include "trace_context.h"

/* traceparent in -> the request's trace (the caller's, or a new one) and the
 * daemon's span, in the stats (for the access log) and in the answer. */
static void trace_begin(api_context *ctx, http_request *r)
{
    http_request_stats *st = http_request_stats_of(r);
    const char *header = http_request_header(r, "traceparent");
    trace_parent parent;
    uint8_t flags = 1; /* a new trace is recorded: the access log has it */
    if (header && trace_parent_parse(header, &parent)) {
        memcpy(st->trace_id, parent.trace_id, sizeof st->trace_id);
        memcpy(st->parent_id, parent.parent_id, sizeof st->parent_id);
        flags = parent.flags;
        trace_ids_new(NULL, st->span_id);
    } else {
        if (header)
            metrics_traceparent_invalid(ctx->metrics);
        st->parent_id[0] = 0;
        trace_ids_new(st->trace_id, st->span_id);
    }
    char out[TRACEPARENT_LEN + 1];
    trace_parent_format(st->trace_id, st->span_id, flags, out);
    http_request_add_header(r, "traceparent", out);
}

/* The methods the route table has for `path`, as "GET, POST"; empty when
 * no route has that path. */
static void path_methods(const char *path, char *out, size_t cap)
{
    static const char *const names[] = {
        [HTTP_GET] = "GET",    [HTTP_HEAD] = "HEAD",     [HTTP_POST] = "POST",
        [HTTP_PUT] = "PUT",    [HTTP_DELETE] = "DELETE", [HTTP_OPTIONS] = "OPTIONS",
        [HTTP_OTHER] = "OTHER"};
    out[0] = 0;
    for (size_t i = 0; i < api_n_routes; i++) {
        route_path_span caps[ROUTE_PATH_MAX_CAPTURES];
        if (route_path_match(api_routes[i].path, path, caps) < 0)
            continue;
        const char *m = names[api_routes[i].method];
        if (strstr(out, m))
            continue;
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", len ? ", " : "", m);
    }
}

/* A preflight (OPTIONS with Access-Control-Request-Method) of an allowed
 * origin for a method the path has: 204 with what the browser asked about.
 * Returns false for anything else, which then goes on to routing (an
 * OPTIONS gets 405 there). */
static bool preflight(http_request *r)
{
    const char *want = http_request_header(r, "Access-Control-Request-Method");
    if (http_request_method(r) != HTTP_OPTIONS || !want)
        return false;
    char methods[64];
    path_methods(http_request_path(r), methods, sizeof methods);
    /* the asked method must be one of the path's (a whole word) */
    size_t n = strlen(want);
    const char *hit = n ? strstr(methods, want) : NULL;
    while (hit && ((hit != methods && hit[-1] != ' ') || (hit[n] != 0 && hit[n] != ',')))
        hit = strstr(hit + 1, want);
    if (!hit)
        return false;
    http_request_add_header(r, "Access-Control-Allow-Methods", methods);
    http_request_add_header(r, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    http_request_add_header(r, "Access-Control-Max-Age", CORS_MAX_AGE_S);
    http_request_respond_bytes(r, 204, "text/plain", "", 0);
    return true;
}

bool api_on_headers(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    trace_begin(ctx, r);
    if (ctx->n_cors_origins == 0)
        return false;
    const char *origin = http_request_header(r, "Origin");
    cors_verdict v = cors_check(ctx->cors_origins, ctx->n_cors_origins, origin);
    switch (v) {
    case CORS_DENIED:
        break;
    case CORS_ANY:
        http_request_add_header(r, "Access-Control-Allow-Origin", "*");
        break;
    case CORS_LISTED:
        http_request_add_header(r, "Access-Control-Allow-Origin", origin);
        http_request_add_header(r, "Access-Control-Allow-Credentials", "true");
        break;
    }
    /* The answer depends on Origin whenever an origin is echoed. */
    bool echoes = !(ctx->n_cors_origins == 1 && strcmp(ctx->cors_origins[0], "*") == 0);
    if (echoes)
        http_request_add_header(r, "Vary", "Origin");
    if (v == CORS_DENIED)
        return false;
    if (preflight(r))
        return true;
    http_request_add_header(r, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
    return false;
}
