/* fuzz_api: every route of the route table (api_routes.def), in-process:
 * the model routes' parsers called directly, then every route's real handler
 * with the real registry (tiny fixture models), batcher and worker, behind
 * the fake transport of fake_http.c. The worker runs on this thread, so an
 * accepted request is computed and answered by its route's answer too.
 *
 * Input: a first line "METHOD PATH" that picks the route the way the
 * dispatcher does (route_path_match against the table; no match, or a
 * capture that is not printable ASCII: the input is skipped), then the
 * request body, e.g.
 *   POST /v1/models/cls/classify\n{"inputs": ["a film"]}
 * Lines "Content-Type: V" and "Inference-Header-Content-Length: V" right
 * after the request line become request headers (the binary tensor data
 * extension of /v2/.../infer: JSON, then raw tensor bytes), e.g.
 *   POST /v2/models/cls/infer\nInference-Header-Content-Length: 97\n{...}<bytes>
 * The models are "cls" (a classifier), "rec" (a recommender with a catalog
 * and an 8-entry news cache) and "bare" (a recommender with neither); any
 * other name is unknown.
 *
 * Checks, besides ASan/UBSan:
 * - a model route's parser (api_route_parse) returns 0 with a request, or
 *   400/404/413/415/422/503 with a message and nothing left to release; the
 *   handler then answers exactly that status and message;
 * - a binary answer (application/octet-stream) starts with JSON of exactly
 *   Inference-Header-Content-Length bytes, and its outputs' binary_data_size
 *   add up to the rest;
 * - the transport contract (fake_http.h), no 500 (nothing runs out of memory
 *   here), every error is {"error": {"code": status, "type", "message"}}
 *   (under /v2: {"error": "message", "code": status, "type"}; OpenAI's
 *   {"error": {"message", "type", "param", "code"}} on the openai
 *   family's routes; TEI's under /tei; TorchServe's {"code", "type",
 *   "message"} on /ping and under /predictions), a
 *   200 JSON answer holds no null (a NaN or infinite output), and the queue
 *   is empty after every request.
 * State carried between inputs: PUT replaces news ids in the catalog, and
 * the news cache holds 8 vectors. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "api_errors.h"
#include "api_fields.h"
#include "api_frame.h"
#include "batcher.h"
#include "fake_http.h"
#include "fuzz_common.h"
#include "log.h"
#include "metrics.h"
#include "model_registry.h"
#include "route_path.h"
#include "worker.h"

static model_registry *fuzz_registry;
static batcher *fuzz_batcher;
static batcher_work *fuzz_work;
static metrics *fuzz_metrics;
static api_context fuzz_ctx;
static bool fuzz_verbose; /* FUZZ_VERBOSE=1: print every answer (for checking seeds) */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_verbose = getenv("FUZZ_VERBOSE") != NULL;
    api_json_alloc_install(NULL); /* as main does */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
        log_set_fd(devnull); /* the access log still formats every line */
    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_DEBUG);

    char cls[1024], rec[1024], news[1024], err[512];
    fuzz_fixture_path(cls, sizeof cls, "classifier_f32");
    fuzz_fixture_path(rec, sizeof rec, "newsrec");
    fuzz_fixture_path(news, sizeof news, "mind-tiny/news.tsv");
    model_spec specs[] = {
        {.name = "cls", .path = cls, .max_batch_size = 8, .max_batch_tokens = 64},
        {.name = "rec",
         .path = rec,
         .news_catalog = news,
         .news_cache_entries = 8,
         .max_batch_size = 8,
         .max_batch_tokens = 64},
        /* a recommender without catalog or cache */
        {.name = "bare", .path = rec, .max_batch_size = 3, .max_batch_tokens = 1},
    };
    fuzz_registry = model_registry_new(1, NULL);
    if (!fuzz_registry ||
        model_registry_load(fuzz_registry, specs, (int)(sizeof specs / sizeof specs[0]), err,
                            sizeof err) != 0) {
        fprintf(stderr, "fuzz_api: loading the fixture models: %s (set FUZZ_FIXTURES)\n", err);
        exit(2);
    }
    batcher_limits lim = {.max_queue = 4,
                          .max_queue_items = 2 * API_MAX_INPUTS,
                          .max_batch_size = 8,
                          .max_queue_delay_us = 0};
    fuzz_batcher = batcher_new(&lim);
    fuzz_work = fuzz_batcher ? batcher_work_new(fuzz_batcher) : NULL;
    fuzz_metrics = metrics_new(api_route_labels, (int)api_n_routes);
    if (!fuzz_work || !fuzz_metrics) {
        fprintf(stderr, "fuzz_api: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        metrics_model_register(fuzz_metrics, specs[i].name);
    fuzz_ctx.registry = fuzz_registry;
    fuzz_ctx.batcher = fuzz_batcher;
    fuzz_ctx.metrics = fuzz_metrics;
    fuzz_ctx.version = "fuzz";
    atomic_init(&fuzz_ctx.draining, false);
    return 0;
}

/* ---- the request line -------------------------------------------------------------- */

typedef struct {
    const http_route *route;
    char path[256];
    char params[ROUTE_PATH_MAX_CAPTURES][128];
    int n_params;
    const uint8_t *body;
    size_t body_bytes;
    char content_type[96];  /* "" when absent */
    char header_length[96]; /* Inference-Header-Content-Length, "" when absent */
    bool has_content_type, has_header_length;
} fuzz_request;

/* Takes "Name: value\n" off *data for the headers the API reads. */
static bool header_line_take(const uint8_t **data, size_t *size, fuzz_request *out)
{
    static const char ct[] = "Content-Type: ", hl[] = "Inference-Header-Content-Length: ";
    const uint8_t *nl = memchr(*data, '\n', *size);
    bool is_ct = *size >= sizeof ct - 1 && memcmp(*data, ct, sizeof ct - 1) == 0;
    bool is_hl = *size >= sizeof hl - 1 && memcmp(*data, hl, sizeof hl - 1) == 0;
    if (!nl || (!is_ct && !is_hl))
        return false;
    size_t skip = is_ct ? sizeof ct - 1 : sizeof hl - 1;
    size_t len = (size_t)(nl - *data) - skip;
    char *dst = is_ct ? out->content_type : out->header_length;
    if (len >= sizeof out->content_type || memchr(*data + skip, 0, len))
        return false;
    memcpy(dst, *data + skip, len);
    dst[len] = 0;
    *(is_ct ? &out->has_content_type : &out->has_header_length) = true;
    *size -= (size_t)(nl + 1 - *data);
    *data = nl + 1;
    return true;
}

static const char *method_name(http_method m)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "OTHER"};
    return names[m];
}

/* Captures (model names, news ids) are kept to printable ASCII: the
 * transport does not validate them yet, and a news id that is not UTF-8 is
 * stored and then answered with a bare 500 (a known finding of the
 * hardening issue, left to its strict-ids fix). */
static bool capture_printable(const char *path, route_path_span cap)
{
    for (size_t i = 0; i < cap.len; i++)
        if (path[cap.off + i] < 0x21 || path[cap.off + i] > 0x7e)
            return false;
    return true;
}

/* Splits "METHOD PATH\n" off the input and finds its route in the table.
 * False when the input names no route (not a finding). */
static bool request_line_parse(const uint8_t *data, size_t size, fuzz_request *out)
{
    const uint8_t *nl = memchr(data, '\n', size);
    const uint8_t *sp = memchr(data, ' ', size);
    if (!nl || !sp || sp > nl || (size_t)(nl - sp) > sizeof out->path)
        return false;
    size_t method_len = (size_t)(sp - data), path_len = (size_t)(nl - sp - 1);
    memcpy(out->path, sp + 1, path_len);
    out->path[path_len] = 0;
    if (strlen(out->path) != path_len)
        return false; /* a NUL: the transport's paths are C strings */
    out->body = nl + 1;
    out->body_bytes = size - (size_t)(nl + 1 - data);
    out->has_content_type = out->has_header_length = false;
    while (header_line_take(&out->body, &out->body_bytes, out))
        ;
    for (size_t i = 0; i < api_n_routes; i++) {
        const http_route *rt = &api_routes[i];
        const char *m = method_name(rt->method);
        route_path_span caps[ROUTE_PATH_MAX_CAPTURES];
        if (strlen(m) != method_len || memcmp(m, data, method_len) != 0)
            continue;
        out->n_params = route_path_match(rt->path, out->path, caps);
        if (out->n_params < 0)
            continue;
        for (int k = 0; k < out->n_params; k++) {
            if (caps[k].len >= sizeof out->params[k] || !capture_printable(out->path, caps[k]))
                return false;
            memcpy(out->params[k], out->path + caps[k].off, caps[k].len);
            out->params[k][caps[k].len] = 0;
        }
        out->route = rt;
        return true;
    }
    return false;
}

/* ---- checks ------------------------------------------------------------------------ */

/* True for the keys whose null is meant: TEI's /info "sha" and
 * "docker_label" (no build sha, no Docker label), as TEI answers them. */
static bool null_allowed(const char *path, const char *key)
{
    size_t n = strlen(path);
    return n > 5 && strcmp(path + n - 5, "/info") == 0 &&
           api_error_shape_of_path(path) == API_ERROR_SHAPE_TEI &&
           (strcmp(key, "sha") == 0 || strcmp(key, "docker_label") == 0);
}

/* A 200 answer must not hold null: api_json_float writes NaN and Inf as null. */
static void no_null_check(const json_t *j, const char *path)
{
    FUZZ_CHECK(!json_is_null(j), "%s: null in a 200 answer (NaN or Inf output?)", path);
    size_t i;
    const char *key;
    json_t *v;
    if (json_is_array(j)) {
        json_array_foreach((json_t *)j, i, v) no_null_check(v, path);
    } else if (json_is_object(j)) {
        json_object_foreach((json_t *)j, key, v)
        {
            if (!(json_is_null(v) && null_allowed(path, key)))
                no_null_check(v, path);
        }
    }
}

/* A binary answer: JSON of Inference-Header-Content-Length bytes, then
 * exactly the bytes its outputs' binary_data_size announce. */
static void binary_answer_check(const char *path, const http_request *r)
{
    size_t bytes;
    const char *raw = fake_http_request_raw_response(r, &bytes);
    const char *hl = fake_http_response_header(r, "Inference-Header-Content-Length");
    FUZZ_CHECK(raw && hl, "%s: a binary answer without its header", path);
    size_t n = strtoul(hl, NULL, 10);
    FUZZ_CHECK(n <= bytes, "%s: header length %zu > answer %zu", path, n, bytes);
    json_t *head = json_loadb(raw, n, 0, NULL);
    FUZZ_CHECK(head, "%s: the answer's JSON part does not parse", path);
    size_t k, sum = 0;
    json_t *o;
    json_array_foreach(json_object_get(head, "outputs"), k, o)
    {
        json_t *size = json_object_get(json_object_get(o, "parameters"), "binary_data_size");
        if (size)
            sum += (size_t)json_integer_value(size);
    }
    FUZZ_CHECK(sum == bytes - n, "%s: outputs announce %zu binary bytes, %zu follow", path, sum,
               bytes - n);
    json_decref(head);
}

static void answer_check(const char *path, const http_request *r, int status, bool openai)
{
    const json_t *resp = fake_http_request_response(r);
    FUZZ_CHECK(status != 500, "%s: 500", path);
    if (status == 200 &&
        strcmp(fake_http_request_content_type(r), "application/octet-stream") == 0) {
        binary_answer_check(path, r);
        return;
    }
    if (status < 400 && strcmp(fake_http_request_content_type(r), "application/json") != 0)
        return; /* /metrics: Prometheus text */
    FUZZ_CHECK(resp, "%s: status %d without a JSON body", path, status);
    if (status >= 400 && openai) {
        /* OpenAI's shape: {"error": {"message", "type", "param", "code"}} */
        json_t *e = json_object_get(resp, "error");
        FUZZ_CHECK(json_is_object(e) && json_object_size(resp) == 1 &&
                       json_is_string(json_object_get(e, "message")) &&
                       json_is_string(json_object_get(e, "type")) && json_object_get(e, "param") &&
                       json_object_get(e, "code"),
                   "%s: OpenAI error shape", path);
        return;
    }
    if (status >= 400 && api_error_shape_of_path(path) == API_ERROR_SHAPE_TEI) {
        /* Text Embeddings Inference's shape: {"error": message, "error_type"} */
        FUZZ_CHECK(json_is_string(json_object_get(resp, "error")) &&
                       json_is_string(json_object_get(resp, "error_type")) &&
                       json_object_size(resp) == 2,
                   "%s: TEI error shape", path);
        FUZZ_CHECK(strcmp(json_string_value(json_object_get(resp, "error_type")),
                          api_error_tei_type(status)) == 0,
                   "%s: error_type of status %d", path, status);
        return;
    }
    if (status >= 400 && api_error_shape_of_path(path) == API_ERROR_SHAPE_TORCHSERVE) {
        /* TorchServe's shape: {"code": status, "type", "message"} */
        json_t *code = json_object_get(resp, "code");
        FUZZ_CHECK(json_is_integer(code) && json_integer_value(code) == status &&
                       json_is_string(json_object_get(resp, "message")) &&
                       json_object_size(resp) == 3,
                   "%s: TorchServe error shape", path);
        FUZZ_CHECK(strcmp(json_string_value(json_object_get(resp, "type")),
                          api_error_torchserve_type(status)) == 0,
                   "%s: type of status %d", path, status);
        return;
    }
    if (status >= 400 && api_error_path_is_oip(path)) {
        /* the Open Inference Protocol's shape: the message is "error" */
        json_t *code = json_object_get(resp, "code");
        FUZZ_CHECK(json_is_string(json_object_get(resp, "error")) &&
                       json_is_string(json_object_get(resp, "type")) && json_object_size(resp) == 3,
                   "%s: error shape", path);
        FUZZ_CHECK(json_is_integer(code) && json_integer_value(code) == status,
                   "%s: error code != status %d", path, status);
        return;
    }
    if (status >= 400) {
        json_t *e = json_object_get(resp, "error");
        FUZZ_CHECK(json_is_object(e) && json_object_size(resp) == 1, "%s: error shape", path);
        json_t *code = json_object_get(e, "code");
        FUZZ_CHECK(json_is_integer(code) && json_integer_value(code) == status,
                   "%s: error code != status %d", path, status);
        FUZZ_CHECK(json_is_string(json_object_get(e, "type")) &&
                       json_is_string(json_object_get(e, "message")),
                   "%s: error type/message", path);
        return;
    }
    FUZZ_CHECK(status == 200 || status == 201, "%s: status %d", path, status);
    no_null_check(resp, path);
}

/* The parser alone, on the served model the path names (nothing to do for
 * an unknown model: the frame answers 404 before parsing). Returns its
 * status and message. */
static int parser_check(const fuzz_request *q, const api_model_route *route, char *message,
                        size_t cap)
{
    served_model *sm = model_registry_get(fuzz_registry, q->params[0]);
    if (!sm)
        return -1;
    api_call call = {.sm = sm,
                     .param = q->n_params > 1 ? q->params[1] : NULL,
                     .content_type = q->has_content_type ? q->content_type : NULL,
                     .inference_header_length = q->has_header_length ? q->header_length : NULL};
    api_parsed parsed;
    int status = api_route_parse(route, &call, (const char *)q->body, q->body_bytes, &parsed);
    FUZZ_CHECK(status == 0 || status == 400 || status == 404 || status == 413 || status == 415 ||
                   status == 422 || status == 503,
               "%s: parser status %d", q->path, status);
    FUZZ_CHECK(status == parsed.verdict.status, "%s: status %d, verdict %d", q->path, status,
               parsed.verdict.status);
    if (status == 0) {
        /* a catalog-wide recommend may have an empty history (it ranks the
         * newest items first); every other request has items */
        FUZZ_CHECK(parsed.req && (parsed.req->n_items >= 1 || parsed.req->catalog_k > 0),
                   "%s: accepted without items", q->path);
        for (int i = 0; i < parsed.req->n_items; i++)
            FUZZ_CHECK(parsed.req->n_ids[i] >= 0, "%s: item %d was never set", q->path, i);
        api_parsed_release(route, &parsed);
    } else {
        FUZZ_CHECK(!parsed.req && !parsed.job && parsed.verdict.message[0],
                   "%s: a %d without a message, or with something left to release", q->path,
                   status);
        snprintf(message, cap, "%s", parsed.verdict.message);
    }
    served_model_release(sm);
    return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_request q;
    if (!request_line_parse(data, size, &q))
        return 0;
    const api_model_route *model_route = api_route_info_of(q.route)->model;
    char parse_message[API_MESSAGE_CAP] = "";
    int parse_status =
        model_route ? parser_check(&q, model_route, parse_message, sizeof parse_message) : -1;

    http_request *r =
        fake_http_request_new(q.route, q.path, q.n_params > 0 ? q.params[0] : NULL,
                              q.n_params > 1 ? q.params[1] : NULL, q.body, q.body_bytes);
    if (q.has_content_type)
        fake_http_request_set_header(r, "Content-Type", q.content_type);
    if (q.has_header_length)
        fake_http_request_set_header(r, "Inference-Header-Content-Length", q.header_length);
    q.route->handler(r, &fuzz_ctx);
    while (fake_http_request_waiting(r)) {
        batcher_next_status st = batcher_try_next(fuzz_batcher, fuzz_work);
        FUZZ_CHECK(st == BATCHER_NEXT_WORK, "%s: parked, but the batcher has no work (%d)", q.path,
                   (int)st);
        worker_run(0, fuzz_batcher, fuzz_work, NULL);
    }
    int status = fake_http_request_finish(r);
    api_on_complete(r, &fuzz_ctx);
    if (fuzz_verbose) {
        char *text = json_dumps(fake_http_request_response(r), JSON_COMPACT);
        fprintf(stderr, "%s %s -> %d %.300s\n", method_name(q.route->method), q.path, status,
                text ? text : "(none)");
        free(text);
    }
    answer_check(q.path, r, status, api_route_info_of(q.route)->family == API_FAMILY_OPENAI);
    if (parse_status > 0) {
        /* The parser's message as the error shape carries it (invalid UTF-8
         * replaced, see api_error_json). */
        json_t *want = api_error_json_for_path(q.path, parse_status, parse_message);
        FUZZ_CHECK(want, "out of memory");
        FUZZ_CHECK(status == parse_status && json_equal(want, fake_http_request_response(r)),
                   "%s: the parser said %d '%s', the handler answered %d", q.path, parse_status,
                   parse_message, status);
        json_decref(want);
    }
    fake_http_request_free(r);

    batcher_stats bs;
    batcher_stats_get(fuzz_batcher, &bs);
    FUZZ_CHECK(bs.queue_items == 0 && bs.queue_requests == 0 && bs.busy_workers == 0,
               "%s: the queue is not empty afterwards (%d items, %d requests, %d busy)", q.path,
               bs.queue_items, bs.queue_requests, bs.busy_workers);
    return 0;
}
