/* http: the HTTP transport of fastformerd on libmicrohttpd. One internal
 * polling thread (epoll, or whatever MHD_USE_AUTO picks) accepts connections,
 * reads headers and bodies and runs route handlers; nothing in it blocks on
 * inference. A handler either answers at once or parks its request
 * (http_request_suspend) until a worker thread finishes and calls
 * http_request_resume; the HTTP thread then runs the request's resume
 * callback, which answers.
 *
 * The transport owns: routing (404 / 405 with Allow), the API key check
 * (401, constant time; routes marked `open` skip it), the body limit (413
 * before the body is read when Content-Length is too large, and as soon as
 * the limit is crossed without one), draining (503 for non-open routes),
 * X-Request-Id (echoed when well formed, generated otherwise) and the
 * X-Request-Timeout-Ms deadline. Every response is JSON (or a handler-chosen
 * content type) and carries X-Request-Id. */
#ifndef FF_HTTP_H
#define FF_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "reject_reason.h"

typedef enum {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS, /* no route has it: a CORS preflight is answered by on_headers */
    HTTP_OTHER,
} http_method;

typedef struct http_server http_server;
typedef struct http_request http_request;

/* A route handler. Runs on the HTTP thread once the whole body is in. It must
 * either answer (http_request_respond_*) or call http_request_suspend before
 * it returns. `ctx` is the route table's context pointer. */
typedef void (*http_handler)(http_request *r, void *ctx);

/* Runs on the HTTP thread after http_request_resume; must answer. */
typedef void (*http_resume_fn)(http_request *r, void *ctx);

/* One route. The path is a template (route_path.h): a "{...}" segment
 * matches exactly one non-empty segment and captures it (see
 * http_request_param), e.g. "/v1/models/{name}/classify". */
typedef struct {
    http_method method;
    const char *path;
    http_handler handler;
    bool open; /* no API key needed, still served while draining */
} http_route;

/* Called on the HTTP thread when a request is finished (answered or
 * aborted), for metrics and the access log. Must not block. */
typedef void (*http_complete_fn)(const http_request *r, void *ctx);

typedef struct {
    const char *host; /* numeric IPv4/IPv6 address or "localhost" */
    int port;         /* 0 picks a free port (see http_server_port) */
    size_t body_limit_bytes;
    unsigned connection_limit;        /* at it, see http_server_connections_evicted */
    unsigned connection_timeout_s;    /* idle / slow-client cut-off; 0 = none */
    unsigned header_timeout_s;        /* opening (or first byte) to complete headers; 0 = none */
    unsigned per_ip_connection_limit; /* per client address; 0 = none */
    const char *api_key;              /* NULL or "" = no key required; copied */
    const char *allowed_hosts;        /* http_guard_check_host's list; NULL = any; copied */
    int default_timeout_ms;           /* request deadline without a header; 0 = none */
    /* An optional second listener that serves only the `open` routes (health,
     * readiness, metrics), on its own thread and connection limit, so that
     * probes are answered whatever holds the main listener's slots. NULL =
     * none. */
    const char *probe_host;
    int probe_port;
    /* Non-NULL: the main listener speaks TLS only (HTTPS), with this GnuTLS
     * priority string (tls_priorities()) and the certificate tls_identity
     * serves; the probe listener stays plain HTTP. NULL = plain HTTP. */
    const char *tls_priorities;
    const http_route *routes; /* borrowed, must outlive the server */
    size_t n_routes;
    void *route_ctx;
    http_complete_fn on_complete; /* may be NULL */
    void *complete_ctx;
    /* Called on the HTTP thread with +1 when a connection opens and -1 when
     * it closes (for an open-connections gauge); may be NULL. Uses complete_ctx. */
    void (*on_connection)(int delta, void *ctx);
    /* Called on the HTTP thread once a request's headers are in, before
     * routing and the API key check (ctx = route_ctx). It may add response
     * headers, which every answer to the request then carries (CORS, trace
     * context), and it may answer the request itself and return true (a CORS
     * preflight); false lets the request go on. May be NULL. */
    bool (*on_headers)(http_request *r, void *ctx);
} http_options;

/* Binds, listens and starts the HTTP thread. Returns 0 with *out, or -1 with a
 * message naming the address (e.g. "listen 127.0.0.1:8080: Address already
 * in use"). Called from the main thread. */
FF_MUST_CHECK int http_server_start(const http_options *opt, http_server **out, char *err,
                                    size_t err_cap);

/* The bound port (useful with port 0), and the probe listener's (0 = none). */
int http_server_port(const http_server *s);
int http_server_probe_port(const http_server *s);

/* Applies the settings a running server can change (SIGHUP): api_key,
 * allowed_hosts, body_limit_bytes, connection_timeout_s, header_timeout_s
 * and default_timeout_ms of `opt` (copied); requests already read keep the
 * values they started with. The others (addresses, connection limits) need a
 * restart: the caller compares them. Returns 0, or -1 when out of memory
 * (nothing changed). Main thread. */
FF_MUST_CHECK int http_server_reconfigure(http_server *s, const http_options *opt);

/* From draining on, non-open routes answer 503 "server is draining". Any thread. */
void http_server_set_draining(http_server *s, bool draining);
bool http_server_draining(const http_server *s);

/* Bytes of request bodies held now (buffers of requests being read or
 * served). Any thread. */
size_t http_server_body_bytes(const http_server *s);

/* Connections cut because a new one took their listener's last slot while
 * they were still waiting for a request's headers (a slow client or an idle
 * keep-alive connection; the longest waiting first), since the start. At the
 * limit MHD stops accepting, so without this a flood of connections that
 * never finish their headers would keep every other client in the listen
 * backlog. Any thread. */
uint64_t http_server_connections_evicted(const http_server *s);

/* Requests that were accepted and have not finished yet (parked ones included). */
long http_server_in_flight(const http_server *s);

/* Looks at every parked request's socket and calls its cancel hook (see
 * http_request_set_cancel) once when the client has closed or reset the
 * connection: MHD does not watch parked connections. A client that only
 * half-closes (shutdown(SHUT_WR)) looks gone too. Returns the number of
 * hooks called. Call periodically from one thread (main). */
int http_server_probe_disconnects(http_server *s);

/* Cuts off (shutdown) every connection that is waiting for a request and
 * either has not delivered it in full within connection_timeout_s of
 * opening or of its previous answer (MHD's own timeout only counts idle
 * time, so a client sending a byte a second would hold its connection
 * forever), or has not delivered its headers within header_timeout_s of
 * opening (or of the first byte after a previous answer), or whose peer has
 * closed its side (CLOSE-WAIT: MHD keeps such a connection until its
 * timeout). Also, on a listener whose slots are all taken while clients wait
 * in its accept queue, cuts as many connections still waiting for their
 * headers, the longest waiting first (see http_server_connections_evicted).
 * Returns the number cut. Call periodically from one thread (main). */
int http_server_cut_slow_clients(http_server *s);

/* Stops the HTTP thread, closes every connection and frees the server.
 * Precondition: no request is parked without having been resumed (join the
 * workers first, so that every done callback has run): a parked request is
 * leaked rather than freed, and a later http_request_resume would touch freed
 * memory. Main thread; NULL is ignored. */
void http_server_stop(http_server *s);

/* ---- request accessors (HTTP thread, or the worker holding a parked request) ---- */

http_method http_request_method(const http_request *r);
const char *http_request_path(const http_request *r);
/* The i-th "{...}" capture of the route path (percent-decoded, NUL-terminated), or NULL. */
const char *http_request_param(const http_request *r, int i);
/* The body (NUL-terminated after body_bytes for convenience; may contain NULs). */
const char *http_request_body(const http_request *r, size_t *body_bytes);
/* The client's address as "ip:port" or "[ipv6]:port" into buf (empty when unknown or
 * when it does not fit in cap). HTTP thread. */
void http_request_remote_addr(const http_request *r, char *buf, size_t cap);
/* A request header, or NULL. HTTP thread only. */
const char *http_request_header(const http_request *r, const char *name);
const char *http_request_id(const http_request *r);
/* The matched route: an element of http_options.routes, or NULL when no
 * route matched (404, 405) or before routing. */
const http_route *http_request_route(const http_request *r);
const char *http_request_method_name(const http_request *r); /* "GET", ... */
/* Monotonic microseconds: when the headers arrived, and the deadline (0 = none). */
int64_t http_request_start_us(const http_request *r);
int64_t http_request_deadline_us(const http_request *r);
int http_request_status(const http_request *r);
const char *http_request_model(const http_request *r); /* "" when none */
void http_request_set_model(http_request *r, const char *model_name);

/* Facts for the access log and metrics, filled in by the API layer. */
typedef struct {
    int64_t queue_us;     /* longest queue wait of the request's items; -1 = none */
    int64_t infer_us;     /* longest compute time of one of its batches; -1 = none */
    int batch_size;       /* largest batch one of its items ran in; 0 = none */
    int n_items;          /* sequences the request was split into; 0 = none */
    reject_reason reject; /* why the request was refused, or REJECT_NONE */
    /* W3C trace context (trace_context.h): lowercase hex, "" when unset */
    char trace_id[33];  /* the trace the request belongs to */
    char span_id[17];   /* the daemon's own span for this request */
    char parent_id[17]; /* the caller's span (traceparent's parent-id), "" when none */
} http_request_stats;
http_request_stats *http_request_stats_of(http_request *r);
const http_request_stats *http_request_stats_get(const http_request *r);

/* Per-request state owned by the handler: freed with free_fn when the request
 * finishes (on the HTTP thread), whatever happened to the connection. */
void http_request_set_state(http_request *r, void *state, void (*free_fn)(void *));
void *http_request_state(const http_request *r);

/* ---- answering (HTTP thread only; exactly once per request) ---- */

/* Takes `body` (a new reference is stolen) and answers with it as JSON. */
void http_request_respond_json(http_request *r, int status, json_t *body);
/* Answers with the error shape of the request's path (api_errors.h: the
 * Open Inference Protocol's under /v2, the API's elsewhere) for `status`; the
 * message is printf-formatted and truncated to 512 bytes. */
void http_request_respond_error(http_request *r, int status, const char *fmt, ...) FF_PRINTF(3, 4);
/* Answers with bytes the transport copies. */
void http_request_respond_bytes(http_request *r, int status, const char *content_type,
                                const char *body, size_t body_bytes);
/* Takes `body` (malloc'ed, freed by the transport). */
void http_request_respond_owned(http_request *r, int status, const char *content_type, char *body,
                                size_t body_bytes);
/* Adds a response header (e.g. Retry-After). Copied (a name of up to 47
 * bytes, a value of up to 255). At most 10 per response. */
void http_request_add_header(http_request *r, const char *name, const char *value);

/* Parks the request; `fn` runs on the HTTP thread after http_request_resume. */
void http_request_suspend(http_request *r, http_resume_fn fn, void *ctx);
/* Sets the hook http_server_probe_disconnects calls (on its thread, with an
 * internal lock held: keep it short, e.g. infer_request_cancel) when the
 * client of the parked request went away. Set it before suspending. */
void http_request_set_cancel(http_request *r, void (*fn)(http_request *r, void *ctx), void *ctx);
/* Wakes a parked request. Any thread; exactly once per suspend. The caller
 * must not touch `r` afterwards. */
void http_request_resume(http_request *r);

#endif
