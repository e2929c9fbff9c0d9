/* http: libmicrohttpd glue. Per-request state lives on MHD's *req_cls from
 * the first callback (headers in) to the completed notification, where it is
 * freed; every early rejection (404, 405, 401, 413, 503, bad header) is
 * queued on that first callback so that an unwanted body is never read. */
#include "http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received (glibc's lacks it) */
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_errors.h"
#include "ascii_digits.h"
#include "http_guard.h"
#include "mono_clock.h"
#include "route_path.h"
#include "settings.h"
#include "tls_identity.h"

#define HTTP_MAX_HEADERS 12
#define HTTP_REQUEST_ID_MAX 128
#define HTTP_MODEL_NAME_MAX 128
/* A body without Content-Length that crosses the limit is read and dropped
 * up to this many times the limit before the connection is cut. */
#define HTTP_DISCARD_FACTOR 16
/* At the connection limit, a connection that has waited this long for its
 * request's headers may be cut to make room (conn_evict_longest_waiting):
 * long enough for the HTTP thread to read headers that came with the
 * connection, and for a client to send them after a TLS handshake on a link
 * of up to about 100 ms round trip. It also bounds how fast slots turn over
 * when a flood refills them as they free: max_connections per 0.25 s, so a
 * client queued behind 1,000 such sockets waits under 1 s at 256 slots. */
#define HTTP_EVICT_MIN_WAIT_US 250000
/* Most connections one eviction pass cuts; each accept at the limit and each
 * main-thread tick runs one. */
#define HTTP_EVICT_BATCH 16
/* Connections of the probe listener (health, readiness, metrics). */
#define HTTP_PROBE_CONNECTION_LIMIT 64
/* Linux's TCP_CLOSE_WAIT (include/net/tcp_states.h, not in the uapi headers):
 * the peer sent its FIN. */
#define HTTP_TCP_CLOSE_WAIT 8

/* One listening socket (the main one or the probe one): what its callbacks
 * get, to tell the probe listener's requests (open routes only) and to count
 * its connections against its limit (see conn_evict_longest_waiting). */
typedef struct http_listener {
    http_server *srv;
    bool probes_only;          /* serves the `open` routes only; set before it starts */
    struct MHD_Daemon *daemon; /* set once started; read by the main thread only */
    unsigned connection_limit;
    unsigned n_open;    /* connections open now; guarded by srv->parked_lock */
    unsigned n_cutting; /* of those, cut and not closed yet; guarded by srv->parked_lock */
} http_listener;

/* One accepted connection (MHD_OPTION_NOTIFY_CONNECTION), for the deadline
 * on reading a whole request (http_server_cut_slow_clients) and the eviction
 * at the connection limit. Guarded by srv->parked_lock. */
typedef struct http_conn {
    int fd;
    http_listener *listener;  /* the socket it was accepted on */
    int64_t reading_since_us; /* waiting for a complete request since; 0 = not */
    bool headers_in;          /* the current request's headers arrived */
    bool url_has_nul;         /* the request line decoded a %00 (unescape callback) */
    int64_t header_clock_us;  /* the header deadline counts from here; 0 = not started */
    uint64_t bytes_at_idle;   /* TCP bytes received when the previous answer went out */
    int close_wait_ticks;     /* consecutive checks that saw the peer's FIN */
    bool cut;                 /* shut down by us; MHD closes it on its thread */
    struct http_conn *prev, *next;
} http_conn;

/* What a reload may change (http_server_reconfigure), guarded by live_lock. */
typedef struct {
    char *api_key; /* NULL = none */
    size_t api_key_len;
    char *allowed_hosts; /* NULL = any */
    size_t body_limit_bytes;
    unsigned connection_timeout_s;
    unsigned header_timeout_s;
    int default_timeout_ms;
} http_live;

struct http_server {
    struct MHD_Daemon *daemon;
    struct MHD_Daemon *probe_daemon; /* NULL without a probe listener */
    http_listener main_listener, probe_listener;
    http_options opt; /* as started; the live part is in `live` */
    pthread_mutex_t live_lock;
    http_live live;
    int port;
    int probe_port;
    atomic_bool draining;
    atomic_long in_flight;
    atomic_size_t body_bytes;       /* capacity of every body buffer held */
    atomic_uint_fast64_t n_evicted; /* connections cut at the limit (conn_evict_longest_waiting) */
    atomic_uint_fast64_t next_id;
    uint64_t id_seed;
    /* Parked requests, for http_server_probe_disconnects (main thread) */
    pthread_mutex_t parked_lock;
    http_request *parked_head;
    http_conn *conn_head; /* open connections (guarded by parked_lock) */
};

typedef enum {
    REQ_READING,  /* headers in, body arriving */
    REQ_PARKED,   /* suspended; `resumed` tells whether a worker woke it */
    REQ_ANSWERED, /* response queued (or answering failed) */
} request_phase;

typedef struct {
    char name[48];
    char value[256];
} response_header;

struct http_request {
    http_server *srv;
    struct MHD_Connection *conn;
    http_method method;
    char *path;   /* owned, decoded by MHD */
    char *params; /* owned: the captures back to back, NUL-separated */
    const char *param[ROUTE_PATH_MAX_CAPTURES];
    int n_params;
    const http_route *route; /* NULL until routed, and when no route matched */
    char request_id[HTTP_REQUEST_ID_MAX + 1];
    char model[HTTP_MODEL_NAME_MAX + 1];
    int64_t start_us;
    int64_t deadline_us;

    char *body; /* owned, body_cap + 1 bytes */
    size_t body_bytes;
    size_t body_cap;
    size_t body_limit;      /* server.max_body_bytes when the request started */
    bool too_large;         /* the body crossed the limit: the rest is dropped */
    bool out_of_memory;     /* the body could not be stored: the rest is dropped */
    size_t discarded_bytes; /* bytes dropped so far */

    request_phase phase; /* HTTP thread only */
    atomic_bool resumed; /* set by http_request_resume (any thread) */
    bool dispatched;     /* counted in in_flight */
    http_resume_fn resume_fn;
    void *resume_ctx;

    /* response, until queued */
    int status;
    bool has_response;
    char *resp_body; /* owned (malloc) */
    size_t resp_bytes;
    const char *content_type; /* static string */
    response_header headers[HTTP_MAX_HEADERS];
    int n_headers;

    http_request_stats stats;
    void *state;
    void (*state_free)(void *);

    /* disconnect detection while parked (guarded by srv->parked_lock) */
    int fd;
    bool listed;
    bool cancel_sent;
    http_request *parked_prev, *parked_next;
    void (*cancel_fn)(http_request *r, void *ctx);
    void *cancel_ctx;
};

/* ---- small helpers ---------------------------------------------------------- */

static http_method method_parse(const char *m)
{
    if (strcmp(m, "GET") == 0)
        return HTTP_GET;
    if (strcmp(m, "HEAD") == 0)
        return HTTP_HEAD;
    if (strcmp(m, "POST") == 0)
        return HTTP_POST;
    if (strcmp(m, "PUT") == 0)
        return HTTP_PUT;
    if (strcmp(m, "DELETE") == 0)
        return HTTP_DELETE;
    if (strcmp(m, "OPTIONS") == 0)
        return HTTP_OPTIONS;
    return HTTP_OTHER;
}

static const char *method_name(http_method m)
{
    switch (m) {
    case HTTP_GET:
        return "GET";
    case HTTP_HEAD:
        return "HEAD";
    case HTTP_POST:
        return "POST";
    case HTTP_PUT:
        return "PUT";
    case HTTP_DELETE:
        return "DELETE";
    case HTTP_OPTIONS:
        return "OPTIONS";
    default:
        return "OTHER";
    }
}

/* Compares `given` with the configured key in time that depends only on the
 * key's length, so that the answer time leaks nothing about the key. */
static bool key_equal(const char *key, size_t key_len, const char *given)
{
    size_t given_len = strlen(given);
    volatile unsigned char diff = (unsigned char)(given_len != key_len);
    for (size_t i = 0; i < key_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)key[i]);
    }
    return diff == 0;
}

static bool request_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HTTP_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

/* Copies src into dst[cap], cut to fit, as snprintf(dst, cap, "%s", src)
 * would, without printf: these copies run for every request, and printf is
 * slow in this process (libquadmath, which OpenBLAS brings in, registers
 * printf extensions, which send every printf call down glibc's slow path). */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* splitmix64: distinct-looking ids from a random seed and a counter. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Parses a decimal in [lo, hi]; false for anything else (sign, spaces, overflow). */
static bool parse_bounded(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return false;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        if (v > (hi - (*p - '0')) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v < lo)
        return false;
    *out = v;
    return true;
}

/* Copies the captures of the matched path into one allocation. */
static bool params_copy(http_request *r, const route_path_span *caps, int n)
{
    free(r->params);
    r->params = malloc(strlen(r->path) + ROUTE_PATH_MAX_CAPTURES + 1);
    if (!r->params)
        return false;
    char *out = r->params;
    for (r->n_params = 0; r->n_params < n; r->n_params++) {
        memcpy(out, r->path + caps[r->n_params].off, caps[r->n_params].len);
        out[caps[r->n_params].len] = 0;
        r->param[r->n_params] = out;
        out += caps[r->n_params].len + 1;
    }
    return true;
}

static void conn_set_reading(http_server *s, struct MHD_Connection *conn, bool reading);
static void conn_headers_in(http_server *s, struct MHD_Connection *conn);

/* ---- answering -------------------------------------------------------------- */

static void response_set(http_request *r, int status, const char *content_type, char *body,
                         size_t body_bytes)
{
    assert(!r->has_response && "a request was answered twice");
    r->status = status;
    r->content_type = content_type;
    r->resp_body = body;
    r->resp_bytes = body_bytes;
    r->has_response = true;
}

void http_request_respond_owned(http_request *r, int status, const char *content_type, char *body,
                                size_t body_bytes)
{
    response_set(r, status, content_type, body, body_bytes);
}

void http_request_respond_bytes(http_request *r, int status, const char *content_type,
                                const char *body, size_t body_bytes)
{
    char *copy = malloc(body_bytes ? body_bytes : 1);
    if (!copy) {
        response_set(r, 500, "application/json", NULL, 0);
        return;
    }
    memcpy(copy, body, body_bytes);
    response_set(r, status, content_type, copy, body_bytes);
}

void http_request_respond_error(http_request *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* A NULL body (out of memory) is answered by the transport as a bare 500. */
    http_request_respond_json(r, status, api_error_json_for_path(r->path, status, msg));
}

void http_request_respond_json(http_request *r, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(body);
    if (!text) {
        /* Out of memory: a bare 500 (no body to build it with). */
        response_set(r, 500, "application/json", NULL, 0);
        return;
    }
    size_t n = strlen(text);
    /* One trailing newline makes curl output readable. */
    char *with_nl = realloc(text, n + 2);
    if (with_nl) {
        with_nl[n] = '\n';
        with_nl[n + 1] = 0;
        text = with_nl;
        n++;
    }
    response_set(r, status, "application/json", text, n);
}

void http_request_add_header(http_request *r, const char *name, const char *value)
{
    assert(r->n_headers < HTTP_MAX_HEADERS && "too many response headers");
    response_header *h = &r->headers[r->n_headers++];
    copy_cut(h->name, sizeof h->name, name);
    copy_cut(h->value, sizeof h->value, value);
}

/* Hands the stored response to MHD. Returns MHD_NO only when MHD refused it,
 * which closes the connection. */
static enum MHD_Result response_queue(http_request *r)
{
    assert(r->has_response);
    r->phase = REQ_ANSWERED;
    conn_set_reading(r->srv, r->conn, false);
    struct MHD_Response *resp;
    if (r->resp_body) {
        resp = MHD_create_response_from_buffer(r->resp_bytes, r->resp_body, MHD_RESPMEM_MUST_FREE);
        if (resp)
            r->resp_body = NULL;
    } else {
        if (r->status != 500 && r->status != 0)
            r->status = 500;
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    for (int i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- request life cycle ----------------------------------------------------- */

static void parked_add(http_server *s, http_request *r)
{
    pthread_mutex_lock(&s->parked_lock);
    r->parked_prev = NULL;
    r->parked_next = s->parked_head;
    if (s->parked_head)
        s->parked_head->parked_prev = r;
    s->parked_head = r;
    r->listed = true;
    pthread_mutex_unlock(&s->parked_lock);
}

static void parked_remove(http_server *s, http_request *r)
{
    pthread_mutex_lock(&s->parked_lock);
    if (r->listed) {
        if (r->parked_prev)
            r->parked_prev->parked_next = r->parked_next;
        else
            s->parked_head = r->parked_next;
        if (r->parked_next)
            r->parked_next->parked_prev = r->parked_prev;
        r->listed = false;
    }
    pthread_mutex_unlock(&s->parked_lock);
}

static void request_free(http_request *r)
{
    if (r->body)
        atomic_fetch_sub(&r->srv->body_bytes, r->body_cap + 1);
    if (r->state_free)
        r->state_free(r->state);
    free(r->resp_body);
    free(r->body);
    free(r->params);
    free(r->path);
    free(r);
}

/* The headers whose count matters, from one pass over them. */
typedef struct {
    http_guard_framing framing;
    int n_authorization, n_api_key, n_host;
} header_counts;

static enum MHD_Result header_count(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    header_counts *hc = cls;
    (void)kind;
    if (!value)
        value = "";
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (hc->framing.n_content_length++ == 0)
            hc->framing.content_length = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        if (hc->framing.n_transfer_encoding++ == 0)
            hc->framing.transfer_encoding = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) {
        hc->n_authorization++;
    } else if (strcasecmp(key, "X-API-Key") == 0) {
        hc->n_api_key++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        hc->n_host++;
    }
    return MHD_YES;
}

/* Answers 400 and closes the connection after the answer, so that nothing
 * the client sent after a malformed request is read as another request. */
static void respond_and_close(http_request *r, const char *message)
{
    http_request_add_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    http_request_respond_error(r, 400, "%s", message);
}

/* The i-th "{...}" of a route template, named for messages: "{name}" is the
 * model name, "{id}" the news id. */
static const char *capture_what(const char *tmpl, int i, char *buf, size_t cap)
{
    const char *p = tmpl;
    for (int k = 0; (p = strchr(p, '{')) != NULL; k++, p++) {
        if (k != i)
            continue;
        const char *end = strchr(p, '}');
        size_t n = end ? (size_t)(end - p - 1) : 0;
        if (n == 4 && strncmp(p + 1, "name", 4) == 0)
            return "model name";
        if (n == 2 && strncmp(p + 1, "id", 2) == 0)
            return "news id";
        snprintf(buf, cap, "path segment '%.*s'", (int)n, p + 1);
        return buf;
    }
    return "path segment";
}

/* Framing, the path's bytes and the Host header: checked before routing.
 * Returns true when the request was answered (rejected) here. */
static bool request_screen_wire(http_server *s, http_request *r, const char *version,
                                const header_counts *hc)
{
    char err[256];
    if (http_guard_check_framing(&hc->framing, err, sizeof err)) {
        respond_and_close(r, err);
        return true;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    http_conn *c = ci ? ci->socket_context : NULL;
    if (c && c->url_has_nul) {
        respond_and_close(r, "the path contains a NUL byte (%00)");
        return true;
    }
    if (hc->n_host > 1) {
        respond_and_close(r, "Host is repeated: send it once");
        return true;
    }
    const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    bool http_1_0 = version && strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
    pthread_mutex_lock(&s->live_lock);
    const char *bad = http_guard_check_host(s->live.allowed_hosts, host, http_1_0, err, sizeof err);
    pthread_mutex_unlock(&s->live_lock);
    if (bad) {
        respond_and_close(r, err);
        return true;
    }
    return false;
}

/* The API key check: 400 for a repeated credential header, 401 for a
 * missing or wrong key. Returns true when the request was answered here. */
static bool request_screen_key(http_server *s, http_request *r, const header_counts *hc)
{
    if (hc->n_authorization > 1 || hc->n_api_key > 1) {
        respond_and_close(r, hc->n_authorization > 1 ? "Authorization is repeated: send it once"
                                                     : "X-API-Key is repeated: send it once");
        return true;
    }
    const char *given = NULL;
    const char *auth =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        given = auth + 7;
    if (!given)
        given = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-API-Key");
    pthread_mutex_lock(&s->live_lock);
    bool keyed = s->live.api_key != NULL;
    bool ok = !keyed || (given && key_equal(s->live.api_key, s->live.api_key_len, given));
    pthread_mutex_unlock(&s->live_lock);
    if (ok)
        return false;
    r->stats.reject = REJECT_UNAUTHORIZED;
    http_request_add_header(r, "WWW-Authenticate", "Bearer");
    if (!given)
        http_request_respond_error(
            r, 401, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'");
    else
        http_request_respond_error(r, 401, "invalid API key");
    return true;
}

/* Checks everything that can be decided from the headers alone. Returns true
 * when the request was answered (rejected) here. */
static bool request_screen(http_server *s, http_request *r, const char *method_str,
                           const header_counts *hc, bool probes_only)
{
    const http_options *o = &s->opt;
    http_method m = r->method == HTTP_HEAD ? HTTP_GET : r->method;

    bool path_known = false;
    const http_route *hit = NULL;
    route_path_span caps[ROUTE_PATH_MAX_CAPTURES];
    int n_caps = -1;
    char allow[64] = "";
    for (size_t i = 0; i < o->n_routes; i++) {
        const http_route *rt = &o->routes[i];
        if (probes_only && !rt->open)
            continue;
        n_caps = route_path_match(rt->path, r->path, caps);
        if (n_caps < 0)
            continue;
        path_known = true;
        if (rt->method == m) {
            hit = rt;
            break;
        }
        if (!strstr(allow, method_name(rt->method))) {
            size_t len = strlen(allow);
            snprintf(allow + len, sizeof allow - len, "%s%s", len ? ", " : "",
                     method_name(rt->method));
        }
    }
    if (!hit) {
        if (path_known) {
            http_request_add_header(r, "Allow", allow);
            http_request_respond_error(r, 405, "method %s is not allowed on %s (allowed: %s)",
                                       method_str, r->path, allow);
        } else {
            http_request_respond_error(r, 404, "no route for %s %s", method_str, r->path);
        }
        return true;
    }
    for (int i = 0; i < n_caps; i++) {
        char err[256], what[48];
        if (http_guard_check_capture(capture_what(hit->path, i, what, sizeof what),
                                     r->path + caps[i].off, caps[i].len, err, sizeof err)) {
            http_request_respond_error(r, 400, "%s", err);
            return true;
        }
    }
    r->route = hit;
    if (!params_copy(r, caps, n_caps)) {
        http_request_respond_error(r, 500, "out of memory");
        return true;
    }

    if (!hit->open && request_screen_key(s, r, hc))
        return true;

    if (!hit->open && atomic_load(&s->draining)) {
        r->stats.reject = REJECT_DRAINING;
        http_request_add_header(r, "Retry-After", "1");
        http_request_respond_error(r, 503, "server is draining (shutting down)");
        return true;
    }

    if (m == HTTP_POST || m == HTTP_PUT) {
        char err[128];
        const char *ct =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        const char *binary =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, HTTP_GUARD_BINARY_HEADER);
        const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
        if (http_guard_check_content_type(ct, binary, origin, err, sizeof err)) {
            http_request_respond_error(r, 415, "%s", err);
            return true;
        }
    }

    pthread_mutex_lock(&s->live_lock);
    int default_timeout_ms = s->live.default_timeout_ms;
    r->body_limit = s->live.body_limit_bytes;
    pthread_mutex_unlock(&s->live_lock);
    const char *to = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Timeout-Ms");
    if (to) {
        long ms;
        /* The header takes the range of server.request_timeout_ms. */
        const settings_spec *range = settings_spec_find("server", "request_timeout_ms");
        if (!parse_bounded(to, (long)range->min, (long)range->max, &ms)) {
            http_request_respond_error(
                r, 400, "header X-Request-Timeout-Ms: expected an integer in [%ld, %ld]",
                (long)range->min, (long)range->max);
            return true;
        }
        r->deadline_us = r->start_us + (int64_t)ms * 1000;
    } else if (default_timeout_ms > 0) {
        r->deadline_us = r->start_us + (int64_t)default_timeout_ms * 1000;
    }

    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        long n;
        if (!parse_bounded(cl, 0, (long)r->body_limit, &n)) {
            r->stats.reject = REJECT_TOO_LARGE;
            http_request_respond_error(r, 413,
                                       "request body of %s bytes exceeds the limit of %zu bytes",
                                       cl, r->body_limit);
            return true;
        }
        r->body_cap = (size_t)n;
    }
    return false;
}

static http_request *request_new(http_server *s, struct MHD_Connection *conn, const char *url,
                                 const char *method)
{
    http_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->path = strdup(url);
    if (!r->path) {
        free(r);
        return NULL;
    }
    r->srv = s;
    r->conn = conn;
    r->method = method_parse(method);
    r->start_us = mono_clock_us();
    r->stats.queue_us = -1;
    r->stats.infer_us = -1;
    r->content_type = "application/json";
    r->fd = -1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        r->fd = ci->connect_fd;
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && request_id_valid(rid)) {
        copy_cut(r->request_id, sizeof r->request_id, rid);
    } else {
        ascii_hex16(r->request_id, mix64(s->id_seed ^ atomic_fetch_add(&s->next_id, 1)));
        r->request_id[16] = 0;
    }
    return r;
}

/* Appends a chunk of body; false when it would cross the limit. */
static bool body_append(http_server *s, http_request *r, const char *data, size_t n)
{
    size_t limit = r->body_limit;
    if (n > limit - r->body_bytes)
        return false;
    size_t need = r->body_bytes + n;
    if (need > r->body_cap || !r->body) {
        /* Without Content-Length the buffer doubles; with it, it was sized once. */
        size_t cap = r->body_cap > need ? r->body_cap : need;
        if (!r->body && r->body_cap >= need)
            cap = r->body_cap;
        else if (cap < 2 * r->body_cap)
            cap = 2 * r->body_cap;
        if (cap < 4096)
            cap = need > 4096 ? need : 4096;
        if (cap > limit)
            cap = limit;
        char *nb = realloc(r->body, cap + 1);
        if (!nb) {
            r->out_of_memory = true;
            return false;
        }
        atomic_fetch_add(&s->body_bytes, cap + 1);
        if (r->body)
            atomic_fetch_sub(&s->body_bytes, r->body_cap + 1);
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_bytes, data, n);
    r->body_bytes += n;
    r->body[r->body_bytes] = 0;
    return true;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
    const http_listener *l = cls;
    http_server *s = l->srv;
    http_request *r = *req_cls;

    if (!r) {
        r = request_new(s, conn, url, method);
        if (!r)
            return MHD_NO; /* out of memory: MHD closes the connection */
        *req_cls = r;
        conn_headers_in(s, conn);
        /* Framing, the path's bytes and Host first: a malformed request gets
         * no CORS answer either. */
        header_counts hc = {0};
        MHD_get_connection_values(conn, MHD_HEADER_KIND, header_count, &hc);
        if (request_screen_wire(s, r, version, &hc))
            return response_queue(r);
        if (s->opt.on_headers && s->opt.on_headers(r, s->opt.route_ctx))
            return response_queue(r);
        if (request_screen(s, r, method, &hc, l->probes_only))
            return response_queue(r);
        return MHD_YES;
    }

    switch (r->phase) {
    case REQ_READING:
        if (*upload_data_size > 0) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            if (r->too_large) {
                /* MHD (0.9.75) cannot answer in the middle of a body, so the
                 * rest of a body without Content-Length is read and dropped;
                 * a client that keeps sending far past the limit is cut off. */
                r->discarded_bytes += n;
                return r->discarded_bytes > HTTP_DISCARD_FACTOR * r->body_limit ? MHD_NO : MHD_YES;
            }
            if (!body_append(s, r, upload_data, n)) {
                r->too_large = true;
                r->discarded_bytes = r->body_bytes + n;
                if (r->body)
                    atomic_fetch_sub(&s->body_bytes, r->body_cap + 1);
                free(r->body);
                r->body = NULL;
                r->body_bytes = 0;
            }
            return MHD_YES;
        }
        if (r->too_large && r->out_of_memory) {
            http_request_respond_error(r, 503, "out of memory while reading the request body");
            return response_queue(r);
        }
        if (r->too_large) {
            r->stats.reject = REJECT_TOO_LARGE;
            http_request_respond_error(r, 413, "request body exceeds the limit of %zu bytes",
                                       r->body_limit);
            return response_queue(r);
        }
        if (!r->body && !body_append(s, r, "", 0)) {
            http_request_respond_error(r, 500, "out of memory");
            return response_queue(r);
        }
        r->dispatched = true;
        conn_set_reading(s, conn, false);
        atomic_fetch_add(&s->in_flight, 1);
        r->route->handler(r, s->opt.route_ctx);
        /* Only this thread writes `phase`: a worker may already have resumed
         * the request, which is then picked up on MHD's next call. */
        if (r->phase == REQ_PARKED)
            return MHD_YES;
        assert(r->has_response && "a handler neither answered nor suspended");
        return response_queue(r);
    case REQ_PARKED:
        /* MHD calls a suspended request again only after a resume. */
        if (!atomic_load(&r->resumed))
            return MHD_YES;
        parked_remove(s, r);
        r->resume_fn(r, r->resume_ctx);
        assert(r->has_response && "a resume callback did not answer");
        return response_queue(r);
    case REQ_ANSWERED:
        /* Rest of a body after an early answer: drop it. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    http_request *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    /* Only a server stop can end a parked request; http_server_stop's
     * contract forbids that, and then we must leak rather than free memory a
     * worker still holds. */
    if (r->phase == REQ_PARKED && !atomic_load(&r->resumed))
        return;
    parked_remove(s, r);
    conn_set_reading(s, conn, true); /* keep-alive: the next request's clock starts */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->has_response)
        r->status = 499; /* nginx's "client closed request", for logs and metrics */
    if (s->opt.on_complete)
        s->opt.on_complete(r, s->opt.complete_ctx);
    if (r->dispatched)
        atomic_fetch_sub(&s->in_flight, 1);
    request_free(r);
}

/* Shuts a connection down: MHD sees the end of the stream and closes it on
 * its own thread (the fd stays valid until then, see on_connection). Under
 * parked_lock. */
static void conn_cut(http_conn *c)
{
    shutdown(c->fd, SHUT_RDWR);
    c->reading_since_us = 0;
    if (!c->cut) {
        c->cut = true;
        c->listener->n_cutting++;
    }
}

/* Connections waiting in the kernel's accept queue of d's listening socket
 * (TCP_INFO of a listening socket: tcpi_unacked); 0 when unknown. */
static unsigned listen_queue_length(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *di = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD) : NULL;
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (!di || getsockopt(di->listen_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return 0;
    return ti.tcpi_unacked;
}

/* At the connection limit MHD stops accepting, so connections that never
 * complete their headers (slowloris) would keep every later client, health
 * probes included, waiting in the listen backlog until header_timeout_s cuts
 * them, and the flood refills the slots at once. So while every slot of a
 * listener is taken and clients wait in its accept queue (`queued`), as many
 * of its connections as wait there (at most HTTP_EVICT_BATCH per call) are
 * cut: those that have waited longest for a request's headers (slow
 * clients, idle keep-alive connections), once they have waited at least
 * HTTP_EVICT_MIN_WAIT_US. MHD then accepts the waiting ones. A connection
 * whose headers are in (its body being read, its request being served or
 * parked) is never cut. One pass over the connections. Returns the number
 * cut. Under parked_lock. */
static unsigned conn_evict_longest_waiting(http_server *s, http_listener *l, unsigned queued)
{
    /* Slots free now, or once the connections already cut are closed. */
    unsigned staying = l->n_open - l->n_cutting;
    unsigned free_soon = staying < l->connection_limit ? l->connection_limit - staying : 0;
    unsigned want = queued > free_soon ? queued - free_soon : 0;
    if (want > HTTP_EVICT_BATCH)
        want = HTTP_EVICT_BATCH;
    if (want == 0)
        return 0;
    int64_t waiting_since = mono_clock_us() - HTTP_EVICT_MIN_WAIT_US;
    http_conn *oldest[HTTP_EVICT_BATCH]; /* the `want` longest waiting, longest first */
    unsigned n = 0;
    for (http_conn *c = s->conn_head; c; c = c->next) {
        if (c->listener != l || c->reading_since_us == 0 || c->headers_in ||
            c->reading_since_us > waiting_since)
            continue;
        if (n == want && c->reading_since_us >= oldest[n - 1]->reading_since_us)
            continue;
        unsigned i = n < want ? n++ : n - 1; /* append, or replace the youngest kept */
        for (; i > 0 && oldest[i - 1]->reading_since_us > c->reading_since_us; i--)
            oldest[i] = oldest[i - 1];
        oldest[i] = c;
    }
    for (unsigned i = 0; i < n; i++)
        conn_cut(oldest[i]);
    atomic_fetch_add(&s->n_evicted, n);
    return n; /* fewer than wanted: the other slots serve requests, the rest wait */
}

/* MHD thread: a connection opened or closed. MHD calls CLOSED before it
 * closes the socket, so an fd in the list is always the connection's own. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_listener *l = cls;
    http_server *s = l->srv;
    if (s->opt.on_connection)
        s->opt.on_connection(toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1, s->opt.complete_ctx);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        http_conn *c = ci ? calloc(1, sizeof *c) : NULL;
        *socket_context = c;
        if (!c)
            return; /* out of memory: only MHD's idle timeout applies */
        c->fd = ci->connect_fd;
        c->listener = l;
        c->reading_since_us = mono_clock_us();
        c->header_clock_us = c->reading_since_us; /* the first request's headers */
        pthread_mutex_lock(&s->live_lock);
        unsigned timeout_s = s->live.connection_timeout_s;
        pthread_mutex_unlock(&s->live_lock);
        /* MHD's idle timeout follows a reloaded connection_timeout_s. */
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, timeout_s);
        pthread_mutex_lock(&s->parked_lock);
        c->next = s->conn_head;
        if (s->conn_head)
            s->conn_head->prev = c;
        s->conn_head = c;
        l->n_open++;
        if (l->n_open - l->n_cutting >= l->connection_limit) {
            /* The last slot: keep accepting while others wait (see above). */
            const union MHD_ConnectionInfo *di =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
            unsigned queued = di ? listen_queue_length(di->daemon) : 0;
            conn_evict_longest_waiting(s, l, queued);
        }
        pthread_mutex_unlock(&s->parked_lock);
        return;
    }
    http_conn *c = *socket_context;
    if (!c)
        return;
    *socket_context = NULL;
    pthread_mutex_lock(&s->parked_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conn_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->n_open--;
    if (c->cut)
        l->n_cutting--;
    pthread_mutex_unlock(&s->parked_lock);
    free(c);
}

static http_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The kernel's view of a connection: its TCP state and the bytes received. */
static bool tcp_info_get(int fd, struct tcp_info *ti)
{
    socklen_t len = sizeof *ti;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) == 0;
}

/* MHD thread: the connection's request has been read in full (reading =
 * false), or it was answered and the connection waits for the next one. */
static void conn_set_reading(http_server *s, struct MHD_Connection *conn, bool reading)
{
    http_conn *c = conn_of(conn);
    if (!c)
        return;
    struct tcp_info ti;
    uint64_t bytes = reading && tcp_info_get(c->fd, &ti) ? ti.tcpi_bytes_received : 0;
    pthread_mutex_lock(&s->parked_lock);
    c->reading_since_us = reading ? mono_clock_us() : 0;
    if (reading) {
        /* Keep-alive: the next request's header clock starts with its first byte. */
        c->headers_in = false;
        c->url_has_nul = false;
        c->header_clock_us = 0;
        c->bytes_at_idle = bytes;
        c->close_wait_ticks = 0;
    }
    pthread_mutex_unlock(&s->parked_lock);
}

/* MHD thread: a request's headers are in. */
static void conn_headers_in(http_server *s, struct MHD_Connection *conn)
{
    http_conn *c = conn_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&s->parked_lock);
    c->headers_in = true;
    pthread_mutex_unlock(&s->parked_lock);
}

/* Why a connection waiting for a request is cut now, or NULL. Under parked_lock. */
static const char *conn_cut_reason(http_conn *c, int64_t now, int64_t whole_us, int64_t header_us)
{
    struct tcp_info ti;
    bool have_info = tcp_info_get(c->fd, &ti);
    /* Two checks in a row, so that a request that arrived with its FIN is
     * not cut before MHD had the chance to read it. */
    if (have_info && ti.tcpi_state == HTTP_TCP_CLOSE_WAIT) {
        if (++c->close_wait_ticks >= 2)
            return "peer closed";
    } else {
        c->close_wait_ticks = 0;
    }
    if (now - c->reading_since_us > whole_us)
        return "request timeout";
    if (c->headers_in || header_us <= 0)
        return NULL;
    if (c->header_clock_us == 0 && have_info && ti.tcpi_bytes_received > c->bytes_at_idle)
        c->header_clock_us = now; /* the next request's first bytes arrived */
    if (c->header_clock_us > 0 && now - c->header_clock_us > header_us)
        return "header timeout";
    return NULL;
}

int http_server_cut_slow_clients(http_server *s)
{
    int n = 0;
    pthread_mutex_lock(&s->live_lock);
    int64_t whole_us = (int64_t)s->live.connection_timeout_s * 1000000;
    int64_t header_us = (int64_t)s->live.header_timeout_s * 1000000;
    pthread_mutex_unlock(&s->live_lock);
    if (whole_us <= 0)
        whole_us = INT64_MAX / 2;
    int64_t now = mono_clock_us();
    pthread_mutex_lock(&s->parked_lock);
    for (http_conn *c = s->conn_head; c; c = c->next) {
        if (c->reading_since_us > 0 && conn_cut_reason(c, now, whole_us, header_us)) {
            conn_cut(c);
            n++;
        }
    }
    /* A listener at its limit with clients in its accept queue: the
     * connection that took the last slot could not see them coming. */
    http_listener *listeners[] = {&s->main_listener, &s->probe_listener};
    for (size_t i = 0; i < sizeof listeners / sizeof listeners[0]; i++) {
        http_listener *l = listeners[i];
        if (l->daemon && l->n_open - l->n_cutting >= l->connection_limit)
            n += (int)conn_evict_longest_waiting(s, l, listen_queue_length(l->daemon));
    }
    pthread_mutex_unlock(&s->parked_lock);
    return n;
}

/* MHD_OPTION_UNESCAPE_CALLBACK: MHD's own percent-decoding, noting a %00 on
 * the connection first: the decoded path is a C string, so a NUL would
 * silently cut a model name or news id (request_screen_wire answers 400). */
static size_t unescape_noting_nul(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    for (const char *p = s; (p = strchr(p, '%')) != NULL; p++) {
        if (p[1] == '0' && p[2] == '0') {
            http_conn *c = conn_of(conn);
            if (c)
                c->url_has_nul = true; /* MHD thread; read by the same thread */
            break;
        }
    }
    return MHD_http_unescape(s);
}

/* ---- suspend / resume ------------------------------------------------------- */

void http_request_suspend(http_request *r, http_resume_fn fn, void *ctx)
{
    assert(r->phase == REQ_READING && !r->has_response);
    r->resume_fn = fn;
    r->resume_ctx = ctx;
    r->phase = REQ_PARKED;
    parked_add(r->srv, r);
    /* Suspend before the caller hands the request to a worker, so that a
     * resume can never overtake the suspend. */
    MHD_suspend_connection(r->conn);
}

void http_request_resume(http_request *r)
{
    struct MHD_Connection *conn = r->conn;
    bool was = atomic_exchange(&r->resumed, true);
    assert(!was && "a request was resumed twice");
    (void)was;
    /* From here on the HTTP thread may finish and free r: touch only conn.
     * The atomic store and MHD's mutex publish everything written before. */
    MHD_resume_connection(conn);
}

void http_request_set_cancel(http_request *r, void (*fn)(http_request *r, void *ctx), void *ctx)
{
    pthread_mutex_lock(&r->srv->parked_lock);
    r->cancel_fn = fn;
    r->cancel_ctx = ctx;
    pthread_mutex_unlock(&r->srv->parked_lock);
}

int http_server_probe_disconnects(http_server *s)
{
    int n = 0;
    pthread_mutex_lock(&s->parked_lock);
    for (http_request *r = s->parked_head; r; r = r->parked_next) {
        if (r->cancel_sent || !r->cancel_fn || r->fd < 0 || atomic_load(&r->resumed))
            continue;
        /* A parked connection is not polled by MHD. Peeking tells an orderly
         * close (0) or a reset (error) from a live client (EAGAIN) or one
         * that pipelined its next request (> 0). */
        char c;
        ssize_t got = recv(r->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        bool gone =
            got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
        if (gone) {
            r->cancel_sent = true;
            /* MHD may close the connection on resume without calling the
             * handler again, so record the reason here (read under the lock
             * by on_completed's parked_remove, or later by the handler). */
            r->stats.reject = REJECT_DISCONNECTED;
            r->cancel_fn(r, r->cancel_ctx);
            n++;
        }
    }
    pthread_mutex_unlock(&s->parked_lock);
    return n;
}

/* ---- accessors -------------------------------------------------------------- */

http_method http_request_method(const http_request *r)
{
    return r->method;
}
const char *http_request_path(const http_request *r)
{
    return r->path;
}
const char *http_request_param(const http_request *r, int i)
{
    return i >= 0 && i < r->n_params ? r->param[i] : NULL;
}
const char *http_request_body(const http_request *r, size_t *body_bytes)
{
    *body_bytes = r->body_bytes;
    return r->body ? r->body : "";
}
const char *http_request_header(const http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}
void http_request_remote_addr(const http_request *r, char *buf, size_t cap)
{
    buf[0] = 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    /* inet_ntop, not getnameinfo: this runs for every access-log line. */
    char host[INET6_ADDRSTRLEN];
    unsigned port;
    bool v6 = ci->client_addr->sa_family == AF_INET6;
    if (v6) {
        struct sockaddr_in6 a;
        memcpy(&a, ci->client_addr, sizeof a);
        if (!inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host))
            return;
        port = ntohs(a.sin6_port);
    } else if (ci->client_addr->sa_family == AF_INET) {
        struct sockaddr_in a;
        memcpy(&a, ci->client_addr, sizeof a);
        if (!inet_ntop(AF_INET, &a.sin_addr, host, sizeof host))
            return;
        port = ntohs(a.sin_port);
    } else {
        return;
    }
    char port_text[ASCII_DECIMAL_MAX];
    size_t nh = strlen(host), nd = ascii_decimal(port_text, port);
    if (nh + nd + 4 > cap) /* [host]:port and the NUL */
        return;
    char *p = buf;
    if (v6)
        *p++ = '[';
    memcpy(p, host, nh);
    p += nh;
    if (v6)
        *p++ = ']';
    *p++ = ':';
    memcpy(p, port_text, nd);
    p[nd] = 0;
}
const char *http_request_id(const http_request *r)
{
    return r->request_id;
}
const http_route *http_request_route(const http_request *r)
{
    return r->route;
}

const char *http_request_method_name(const http_request *r)
{
    return method_name(r->method);
}
int64_t http_request_start_us(const http_request *r)
{
    return r->start_us;
}
int64_t http_request_deadline_us(const http_request *r)
{
    return r->deadline_us;
}
int http_request_status(const http_request *r)
{
    return r->status;
}
const char *http_request_model(const http_request *r)
{
    return r->model;
}
void http_request_set_model(http_request *r, const char *model_name)
{
    copy_cut(r->model, sizeof r->model, model_name);
}
http_request_stats *http_request_stats_of(http_request *r)
{
    return &r->stats;
}
const http_request_stats *http_request_stats_get(const http_request *r)
{
    return &r->stats;
}
void http_request_set_state(http_request *r, void *state, void (*free_fn)(void *))
{
    r->state = state;
    r->state_free = free_fn;
}
void *http_request_state(const http_request *r)
{
    return r->state;
}

/* ---- server ----------------------------------------------------------------- */

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)fmt;
    (void)ap;
    /* MHD's own messages (client resets and the like) are noise in the
     * daemon's structured log; errors that matter surface as return codes. */
}

/* The options that make a listener speak TLS (tls_priorities non-NULL):
 * GnuTLS's priority string and tls_identity's certificate callback, which
 * answers each handshake with the identity served now. Fills 3 items. */
static void tls_options(struct MHD_OptionItem *items, const char *tls_priorities)
{
    gnutls_certificate_retrieve_function2 *cb = tls_identity_retrieve;
    void *cb_ptr; /* MHD's option array carries the function as a pointer */
    memcpy(&cb_ptr, &cb, sizeof cb_ptr);
    items[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)tls_priorities};
    items[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, cb_ptr};
    items[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

/* Binds host:port and starts an MHD daemon (its own polling thread) whose
 * callbacks take `s` or `l` (filled in here, before the thread starts); over
 * TLS when tls_priorities is not NULL. NULL with a message naming the
 * address. */
static struct MHD_Daemon *listener_start(http_server *s, http_listener *l, bool probes_only,
                                         const char *host, int port, unsigned connection_limit,
                                         unsigned per_ip_limit, const char *tls_priorities,
                                         char *err, size_t err_cap)
{
    struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}};
    if (tls_priorities && (!MHD_is_feature_supported(MHD_FEATURE_TLS) ||
                           !MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK))) {
        snprintf(err, err_cap, "listen %s:%d: TLS: this libmicrohttpd was built without TLS", host,
                 port);
        return NULL;
    }
    if (tls_priorities)
        tls_options(tls, tls_priorities);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    char port_str[16];
    snprintf(port_str, sizeof port_str, "%d", port);
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, port_str, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, err_cap, "listen %s:%d: %s", host, port, gai_strerror(gai));
        return NULL;
    }
    struct sockaddr_storage addr;
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    bool v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);

    /* MHD_USE_TURBO (optimistic reads and writes, no shutdown() before
     * close) was measured and left out: strace -c at 32 connections counted
     * the same syscalls per request (recvfrom 2.2, epoll_ctl 1.9, sendmsg 1),
     * and without the shutdown a close with unread bytes becomes a reset. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    if (tls_priorities)
        flags |= MHD_USE_TLS;
    /* Over the limit MHD stops accepting (the backlog holds the rest), unless
     * conn_evict_longest_waiting frees a slot; over the per-IP limit it
     * accepts and closes at once. The timeout cuts off idle clients;
     * http_server_cut_slow_clients the slow ones. */
    *l =
        (http_listener){.srv = s, .probes_only = probes_only, .connection_limit = connection_limit};
    errno = 0;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_access, l, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        s->live.connection_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, l, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape_noting_nul, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!d) {
        int e = errno;
        snprintf(err, err_cap, "listen %s:%d: %s", host, port,
                 e                ? strerror(e)
                 : tls_priorities ? "cannot start the HTTPS server (TLS priorities or GnuTLS)"
                                  : "cannot start the HTTP server");
    }
    return d;
}

static int listener_port(struct MHD_Daemon *d, int configured)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : configured;
}

int http_server_start(const http_options *opt, http_server **out, char *err, size_t err_cap)
{
    assert(opt->routes && opt->n_routes > 0);
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    s->opt = *opt;
    pthread_mutex_init(&s->parked_lock, NULL);
    pthread_mutex_init(&s->live_lock, NULL);
    /* From here on http_server_stop takes the partly built server. */
    if (http_server_reconfigure(s, opt) != 0) {
        http_server_stop(s);
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    s->opt.api_key = NULL;
    s->opt.allowed_hosts = NULL;
    if (getrandom(&s->id_seed, sizeof s->id_seed, GRND_NONBLOCK) != sizeof s->id_seed)
        s->id_seed = (uint64_t)mono_clock_us() ^ ((uint64_t)getpid() << 32);

    s->daemon =
        listener_start(s, &s->main_listener, false, opt->host, opt->port, opt->connection_limit,
                       opt->per_ip_connection_limit, opt->tls_priorities, err, err_cap);
    if (!s->daemon) {
        http_server_stop(s);
        return -1;
    }
    s->port = listener_port(s->daemon, opt->port);
    s->main_listener.daemon = s->daemon;
    if (opt->probe_host) {
        s->probe_daemon =
            listener_start(s, &s->probe_listener, true, opt->probe_host, opt->probe_port,
                           HTTP_PROBE_CONNECTION_LIMIT, 0, NULL, err, err_cap);
        if (!s->probe_daemon) {
            http_server_stop(s);
            return -1;
        }
        s->probe_port = listener_port(s->probe_daemon, opt->probe_port);
        s->probe_listener.daemon = s->probe_daemon;
    }
    *out = s;
    return 0;
}

int http_server_reconfigure(http_server *s, const http_options *opt)
{
    char *key = opt->api_key && *opt->api_key ? strdup(opt->api_key) : NULL;
    char *hosts = opt->allowed_hosts && *opt->allowed_hosts ? strdup(opt->allowed_hosts) : NULL;
    if ((opt->api_key && *opt->api_key && !key) ||
        (opt->allowed_hosts && *opt->allowed_hosts && !hosts)) {
        free(key);
        free(hosts);
        return -1;
    }
    pthread_mutex_lock(&s->live_lock);
    char *old_key = s->live.api_key, *old_hosts = s->live.allowed_hosts;
    size_t old_key_len = s->live.api_key_len;
    s->live = (http_live){.api_key = key,
                          .api_key_len = key ? strlen(key) : 0,
                          .allowed_hosts = hosts,
                          .body_limit_bytes = opt->body_limit_bytes,
                          .connection_timeout_s = opt->connection_timeout_s,
                          .header_timeout_s = opt->header_timeout_s,
                          .default_timeout_ms = opt->default_timeout_ms};
    pthread_mutex_unlock(&s->live_lock);
    if (old_key)
        explicit_bzero(old_key, old_key_len);
    free(old_key);
    free(old_hosts);
    return 0;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

int http_server_probe_port(const http_server *s)
{
    return s->probe_port;
}

void http_server_set_draining(http_server *s, bool draining)
{
    atomic_store(&s->draining, draining);
}

bool http_server_draining(const http_server *s)
{
    return atomic_load(&((http_server *)s)->draining);
}

size_t http_server_body_bytes(const http_server *s)
{
    return atomic_load(&((http_server *)s)->body_bytes);
}

uint64_t http_server_connections_evicted(const http_server *s)
{
    return atomic_load(&((http_server *)s)->n_evicted);
}

long http_server_in_flight(const http_server *s)
{
    return atomic_load(&((http_server *)s)->in_flight);
}

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    if (s->probe_daemon)
        MHD_stop_daemon(s->probe_daemon);
    if (s->daemon) /* NULL when http_server_start failed */
        MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->parked_lock);
    pthread_mutex_destroy(&s->live_lock);
    if (s->live.api_key)
        explicit_bzero(s->live.api_key, s->live.api_key_len);
    free(s->live.api_key);
    free(s->live.allowed_hosts);
    free(s);
}
