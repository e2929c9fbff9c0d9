/* fake_http: the request half of http.h without libmicrohttpd (see fake_http.h).
 * Contract violations call fake_fail(), which prints the reason and aborts so
 * that libFuzzer records the input. */
#include "fake_http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_errors.h"

#define FAKE_MAX_HEADERS 4 /* HTTP_MAX_HEADERS in http.c */
#define FAKE_MAX_REQUEST_HEADERS 4

struct http_request {
    const http_route *route;
    http_method method;
    char *path;
    char *param[2];
    int n_params;
    char *body;
    size_t body_bytes;
    char model[128];
    http_request_stats stats;
    void *state;
    void (*state_free)(void *);
    http_resume_fn resume_fn;
    void *resume_ctx;
    bool suspended, resumed;
    int n_answers;
    int status;
    const char *content_type;
    json_t *response;
    char *raw; /* a non-JSON answer's bytes (owned), raw_bytes long */
    size_t raw_bytes;
    int n_headers;
    char header_names[FAKE_MAX_HEADERS][40]; /* the answer's headers */
    char header_values[FAKE_MAX_HEADERS][96];
    char *req_header_names[FAKE_MAX_REQUEST_HEADERS]; /* the request's (owned) */
    char *req_header_values[FAKE_MAX_REQUEST_HEADERS];
    int n_req_headers;
};

static void fake_fail(const char *fmt, ...) FF_PRINTF(1, 2);
static void fake_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fake_http: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);
    if (!d)
        fake_fail("out of memory");
    return d;
}

http_request *fake_http_request_new(const http_route *route, const char *path, const char *param0,
                                    const char *param1, const void *body, size_t body_bytes)
{
    http_request *r = calloc(1, sizeof *r);
    if (!r)
        fake_fail("out of memory");
    r->route = route;
    r->method = route->method;
    r->content_type = "";
    r->path = dup_or_die(path);
    if (param0)
        r->param[r->n_params++] = dup_or_die(param0);
    if (param0 && param1)
        r->param[r->n_params++] = dup_or_die(param1);
    /* Like http.c: NUL-terminated after body_bytes. */
    r->body = malloc(body_bytes + 1);
    if (!r->body)
        fake_fail("out of memory");
    if (body_bytes)
        memcpy(r->body, body, body_bytes);
    r->body[body_bytes] = 0;
    r->body_bytes = body_bytes;
    r->stats.queue_us = -1;
    r->stats.infer_us = -1;
    return r;
}

void fake_http_request_set_header(http_request *r, const char *name, const char *value)
{
    if (r->n_req_headers == FAKE_MAX_REQUEST_HEADERS)
        fake_fail("more than %d request headers", FAKE_MAX_REQUEST_HEADERS);
    r->req_header_names[r->n_req_headers] = dup_or_die(name);
    r->req_header_values[r->n_req_headers++] = dup_or_die(value);
}

const char *fake_http_response_header(const http_request *r, const char *name)
{
    for (int i = 0; i < r->n_headers && i < FAKE_MAX_HEADERS; i++)
        if (strcasecmp(r->header_names[i], name) == 0)
            return r->header_values[i];
    return NULL;
}

const char *fake_http_request_raw_response(const http_request *r, size_t *bytes)
{
    *bytes = r->raw_bytes;
    return r->raw;
}

bool fake_http_request_waiting(const http_request *r)
{
    return r->suspended && !r->resumed;
}

int fake_http_request_finish(http_request *r)
{
    if (r->suspended) {
        if (!r->resumed)
            fake_fail("%s: finished while parked and never resumed", r->path);
        if (r->n_answers != 0)
            fake_fail("%s: answered while parked", r->path);
        r->resume_fn(r, r->resume_ctx);
    }
    if (r->n_answers != 1)
        fake_fail("%s: answered %d times (expected exactly once)", r->path, r->n_answers);
    if (r->state_free)
        r->state_free(r->state);
    r->state = NULL;
    r->state_free = NULL;
    return r->status;
}

const json_t *fake_http_request_response(const http_request *r)
{
    return r->response;
}

const char *fake_http_request_content_type(const http_request *r)
{
    return r->content_type;
}

void fake_http_request_free(http_request *r)
{
    if (!r)
        return;
    if (r->state_free)
        r->state_free(r->state);
    json_decref(r->response);
    free(r->raw);
    for (int i = 0; i < r->n_req_headers; i++) {
        free(r->req_header_names[i]);
        free(r->req_header_values[i]);
    }
    free(r->path);
    free(r->param[0]);
    free(r->param[1]);
    free(r->body);
    free(r);
}

/* ---- http.h: request accessors -------------------------------------------- */

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
    return r->body;
}

void http_request_remote_addr(const http_request *r, char *buf, size_t cap)
{
    (void)r;
    snprintf(buf, cap, "127.0.0.1:9");
}

const char *http_request_header(const http_request *r, const char *name)
{
    for (int i = 0; i < r->n_req_headers; i++)
        if (strcasecmp(r->req_header_names[i], name) == 0)
            return r->req_header_values[i];
    return NULL;
}

const char *http_request_id(const http_request *r)
{
    (void)r;
    return "fuzz";
}

const http_route *http_request_route(const http_request *r)
{
    return r->route;
}

const char *http_request_method_name(const http_request *r)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OTHER"};
    return names[r->method];
}

int64_t http_request_start_us(const http_request *r)
{
    (void)r;
    return 0;
}

int64_t http_request_deadline_us(const http_request *r)
{
    (void)r;
    return 0;
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
    snprintf(r->model, sizeof r->model, "%s", model_name ? model_name : "");
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
    if (r->state_free)
        fake_fail("%s: handler state set twice", r->path);
    r->state = state;
    r->state_free = free_fn;
}

void *http_request_state(const http_request *r)
{
    return r->state;
}

/* ---- http.h: answering ------------------------------------------------------ */

/* Records one answer; `text` is what would go on the wire. */
static void answer(http_request *r, int status, const char *content_type, const char *text,
                   size_t len)
{
    if (r->suspended && !r->resumed)
        fake_fail("%s: answered while parked", r->path);
    if (++r->n_answers > 1)
        fake_fail("%s: answered twice (%d, then %d)", r->path, r->status, status);
    if (status < 100 || status > 599)
        fake_fail("%s: status %d", r->path, status);
    r->status = status;
    r->content_type = content_type;
    if (strcmp(content_type, "application/json") == 0) {
        json_error_t jerr;
        r->response = json_loadb(text, len, 0, &jerr);
        if (!r->response)
            fake_fail("%s: response is not JSON (%s): %.*s", r->path, jerr.text, (int)len, text);
    } else {
        r->raw = malloc(len ? len : 1);
        if (!r->raw)
            fake_fail("out of memory");
        if (len)
            memcpy(r->raw, text, len);
        r->raw_bytes = len;
    }
}

void http_request_respond_json(http_request *r, int status, json_t *body)
{
    /* http.c answers a NULL body (out of memory) with a bare 500. */
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(body);
    if (!text) {
        answer(r, 500, "none", "", 0);
        return;
    }
    answer(r, status, "application/json", text, strlen(text));
    free(text);
}

void http_request_respond_error(http_request *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_request_respond_json(r, status, api_error_json_for_path(r->path, status, msg));
}

void http_request_respond_bytes(http_request *r, int status, const char *content_type,
                                const char *body, size_t body_bytes)
{
    answer(r, status, content_type, body, body_bytes);
}

void http_request_respond_owned(http_request *r, int status, const char *content_type, char *body,
                                size_t body_bytes)
{
    answer(r, status, content_type, body, body_bytes);
    free(body);
}

void http_request_add_header(http_request *r, const char *name, const char *value)
{
    if (r->n_headers == FAKE_MAX_HEADERS)
        fake_fail("%s: more than %d response headers", r->path, FAKE_MAX_HEADERS);
    snprintf(r->header_names[r->n_headers], sizeof r->header_names[0], "%s", name);
    snprintf(r->header_values[r->n_headers], sizeof r->header_values[0], "%s", value);
    r->n_headers++;
}

void http_request_suspend(http_request *r, http_resume_fn fn, void *ctx)
{
    if (r->suspended)
        fake_fail("%s: suspended twice", r->path);
    if (r->n_answers)
        fake_fail("%s: suspended after answering", r->path);
    if (!fn)
        fake_fail("%s: suspended without a resume callback", r->path);
    r->suspended = true;
    r->resume_fn = fn;
    r->resume_ctx = ctx;
}

void http_request_set_cancel(http_request *r, void (*fn)(http_request *r, void *ctx), void *ctx)
{
    (void)r;
    (void)fn;
    (void)ctx;
}

void http_request_resume(http_request *r)
{
    if (!r->suspended)
        fake_fail("%s: resumed without being parked", r->path);
    if (r->resumed)
        fake_fail("%s: resumed twice", r->path);
    r->resumed = true;
}

/* The fuzzer has no server: api_metrics reads no bodies (api_context.http is NULL). */
size_t http_server_body_bytes(const http_server *s)
{
    (void)s;
    return 0;
}

uint64_t http_server_connections_evicted(const http_server *s)
{
    (void)s;
    return 0;
}
