/* api_openai: POST /v1/embeddings, OpenAI's embeddings route as Hugging Face
 * TEI, infinity, llama.cpp and OpenVINO Model Server serve it, so that the
 * official clients and RAG frameworks work unchanged:
 *   {"model": NAME, "input": "text" | ["text", ...] | [ids] | [[ids], ...],
 *    "encoding_format": "float" | "base64", "dimensions": D, "user": "..."}
 *   -> {"object": "list", "data": [{"object": "embedding", "index": 0,
 *       "embedding": [floats] | "base64 of little-endian float32"}],
 *       "model": NAME, "usage": {"prompt_tokens": n, "total_tokens": n}}
 * The vectors are the embed route's (the pooled text, or news, encoder
 * output), texts are truncated at the model's maximum as embed does, and
 * prompt_tokens counts the tokens the model was given. Token ids must be the
 * model's own (< vocab_size). Every error this route answers itself is in
 * OpenAI's shape: {"error": {"message", "type", "param", "code"}}. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_fields.h"
#include "api_frame.h"
#include "api_inputs.h"
#include "utf8.h"

/* ---- OpenAI's error shape ------------------------------------------------------- */

static const char *openai_error_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 404:
        return "invalid_request_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

/* OpenAI's error body. `param` is the request field at fault (the leading
 * key of the message, e.g. "input" for "input[3]: ...") when there is one. */
static json_t *openai_error_json(int status, const char *code, const char *message)
{
    char safe[API_MESSAGE_CAP];
    size_t bad;
    if (utf8_validate(message, strlen(message), &bad) != 0) {
        /* a quoted request byte or a cut sequence: every non-ASCII byte becomes '?' */
        size_t i = 0;
        for (; message[i] && i + 1 < sizeof safe; i++)
            safe[i] = (unsigned char)message[i] < 0x80 ? message[i] : '?';
        safe[i] = 0;
        message = safe;
    }
    char param[32] = "";
    size_t n = strspn(message, "abcdefghijklmnopqrstuvwxyz_");
    if (n > 0 && n < sizeof param && strchr(":[.", message[n]) && message[n])
        snprintf(param, sizeof param, "%.*s", (int)n, message);
    json_t *e =
        json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", message, "type",
                  openai_error_type(status), "param", param[0] ? param : NULL, "code", code);
    return e;
}

static void openai_error(http_request *r, int status, const char *code, const char *message)
{
    http_request_respond_json(r, status, openai_error_json(status, code, message));
}

/* The frame's own errors (queue full, deadline, draining) for this route. */
static void frame_error(http_request *r, int status, const char *message)
{
    openai_error(r, status, status == 429 ? "queue_full" : NULL, message);
}

/* ---- the request ---------------------------------------------------------------- */

typedef struct {
    bool base64;
    long prompt_tokens;
} embeddings_job;

/* What `input` is: texts, one id sequence, or id sequences. */
typedef enum { INPUT_TEXTS, INPUT_ONE_IDS, INPUT_IDS_LIST } input_form;

/* The form of a non-empty `input` array, or -1 with the verdict. */
static int input_form_of(json_t *input, api_verdict *v)
{
    json_t *first = json_array_get(input, 0);
    input_form form = json_is_string(first)    ? INPUT_TEXTS
                      : json_is_integer(first) ? INPUT_ONE_IDS
                      : json_is_array(first)   ? INPUT_IDS_LIST
                                               : (input_form)-1;
    if ((int)form < 0) {
        api_fail(v, 400,
                 "input: expected a string, an array of strings, an array of token ids or an "
                 "array of arrays of token ids");
        return -1;
    }
    size_t i;
    json_t *x;
    json_array_foreach(input, i, x)
    {
        bool same = form == INPUT_TEXTS     ? json_is_string(x)
                    : form == INPUT_ONE_IDS ? json_is_integer(x)
                                            : json_is_array(x);
        if (!same) {
            api_fail(v, 400, "input[%zu]: expected %s like input[0]", i,
                     form == INPUT_TEXTS     ? "a string"
                     : form == INPUT_ONE_IDS ? "an integer"
                                             : "an array of token ids");
            return -1;
        }
    }
    return (int)form;
}

/* "encoding_format" and "dimensions" into the job; false with the verdict. */
static bool options_parse(const api_call *call, json_t *body, embeddings_job *job, api_verdict *v)
{
    json_t *fmt = json_object_get(body, "encoding_format");
    if (fmt) {
        const char *f = json_string_value(fmt);
        if (!f || (strcmp(f, "float") != 0 && strcmp(f, "base64") != 0)) {
            api_fail(v, 400, "encoding_format: expected \"float\" or \"base64\"");
            return false;
        }
        job->base64 = strcmp(f, "base64") == 0;
    }
    json_t *dims = json_object_get(body, "dimensions");
    int d = call->sm->model->config.encoder.hidden_size;
    if (dims && (!json_is_integer(dims) || json_integer_value(dims) != d)) {
        api_fail(v, 400, "dimensions: model '%s' gives %d dimensions; no other number is supported",
                 call->sm->name, d);
        return false;
    }
    json_t *user = json_object_get(body, "user");
    return !user || api_expect(user, API_KIND_STRING, "user", "a string", v);
}

static int embeddings_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {"model",      "input", "encoding_format",
                                       "dimensions", "user",  NULL};
    api_verdict *v = &out->verdict;
    embeddings_job *job = out->job;
    if (!api_keys_allowed(body, "", keys, v) || !options_parse(call, body, job, v))
        return v->status;
    json_t *input = api_require(body, "input", v);
    if (!input)
        return v->status;
    json_t *list = json_is_string(input) ? json_pack("[O]", input) : json_incref(input);
    if (!list)
        return api_fail(v, 503, "out of memory");
    size_t n = json_array_size(list);
    int form = -1;
    if (!json_is_array(list))
        api_fail(v, 400,
                 "input: expected a string, an array of strings, an array of token ids or an "
                 "array of arrays of token ids");
    else if (n == 0)
        api_fail(v, 400, "input: must not be empty");
    else if ((form = input_form_of(list, v)) >= 0 && form != INPUT_ONE_IDS && n > API_MAX_INPUTS)
        api_fail(v, 413, "input: %zu inputs, more than the limit of %d per request", n,
                 API_MAX_INPUTS);
    if (v->status != 0) {
        json_decref(list);
        return v->status;
    }
    int n_items = form == INPUT_ONE_IDS ? 1 : (int)n;
    out->req = api_request_new(call, INFER_EMBED, n_items, 0, v);
    api_input_rules rules = {.truncate = true, .news = false};
    for (int i = 0; out->req && i < n_items && v->status == 0; i++) {
        char path[48];
        snprintf(path, sizeof path, "input[%d]", i);
        json_t *x = json_array_get(list, (size_t)i);
        if (form == INPUT_TEXTS)
            api_input_text(call->sm, out->req, i, json_string_value(x), json_string_length(x),
                           &rules, path, v);
        else if (form == INPUT_ONE_IDS)
            api_input_ids(call->sm, out->req, 0, list, 0, n, &rules, "input", 0, v);
        else
            api_input_ids(call->sm, out->req, i, x, 0, json_array_size(x), &rules, path, 0, v);
        if (v->status == 0)
            job->prompt_tokens += out->req->n_ids[i];
    }
    json_decref(list);
    return v->status;
}

/* ---- the answer ----------------------------------------------------------------- */

/* Standard base64 (RFC 4648, with padding) of n bytes. New reference or NULL. */
static json_t *base64_json(const unsigned char *b, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out_len = 4 * ((n + 2) / 3);
    char *s = malloc(out_len + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)b[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)b[i + 1] << 8;
        if (i + 2 < n)
            v |= b[i + 2];
        s[o++] = alphabet[(v >> 18) & 63];
        s[o++] = alphabet[(v >> 12) & 63];
        s[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        s[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    s[o] = 0;
    json_t *j = json_stringn_nocheck(s, o);
    free(s);
    return j;
}

/* One vector: floats, or base64 of its little-endian float32 bytes (the
 * daemon runs on little-endian x86-64, so the bytes are the floats'). */
static json_t *vector_json(const float *x, int d, bool base64)
{
    _Static_assert(sizeof(float) == 4, "float32");
    return base64 ? base64_json((const unsigned char *)x, (size_t)d * sizeof(float))
                  : api_json_floats(x, d);
}

static void finish_embeddings(http_request *r, infer_request *req, void *vjob)
{
    embeddings_job *job = vjob;
    json_t *data = json_array();
    for (int i = 0; data && i < req->n_items; i++) {
        json_t *vec =
            vector_json(req->vectors + (size_t)i * (size_t)req->dim, req->dim, job->base64);
        if (!vec || json_array_append_new(data, json_pack("{s:s,s:i,s:o}", "object", "embedding",
                                                          "index", i, "embedding", vec)) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    json_t *answer =
        data ? json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                         req->sm->name, "usage", "prompt_tokens", (json_int_t)job->prompt_tokens,
                         "total_tokens", (json_int_t)job->prompt_tokens)
             : NULL;
    if (!answer) {
        openai_error(r, 503, NULL, "out of memory");
        return;
    }
    http_request_respond_json(r, 200, answer);
}

static const api_model_route embeddings_route = {.parse = embeddings_parse,
                                                 .finish = finish_embeddings,
                                                 .job_bytes = sizeof(embeddings_job),
                                                 .respond_error = frame_error};

/* ---- the handler ---------------------------------------------------------------- */

/* The model the body names, or NULL after answering 400/404/503. */
static served_model *model_of(api_context *ctx, http_request *r, json_t *body)
{
    json_t *name = json_object_get(body, "model");
    if (!name) {
        openai_error(r, 400, NULL, "model: missing key 'model' (the name of a served model)");
        return NULL;
    }
    if (!json_is_string(name)) {
        openai_error(r, 400, NULL, "model: expected a string");
        return NULL;
    }
    const char *n = json_string_value(name);
    served_model *sm = model_registry_get(ctx->registry, n);
    char msg[200];
    if (sm) {
        http_request_set_model(r, n);
        return sm;
    }
    switch (model_registry_state(ctx->registry, n)) {
    case SERVED_MODEL_LOADING:
        http_request_stats_of(r)->reject = REJECT_NOT_READY;
        http_request_add_header(r, "Retry-After", "1");
        snprintf(msg, sizeof msg, "model: '%.64s' is still loading", n);
        openai_error(r, 503, NULL, msg);
        return NULL;
    case SERVED_MODEL_FAILED:
        http_request_stats_of(r)->reject = REJECT_NOT_READY;
        snprintf(msg, sizeof msg, "model: '%.64s' failed to load", n);
        openai_error(r, 503, NULL, msg);
        return NULL;
    case SERVED_MODEL_UNLOADED:
        snprintf(msg, sizeof msg, "model: '%.64s' is unloaded", n);
        openai_error(r, 404, "model_not_found", msg);
        return NULL;
    default:
        snprintf(msg, sizeof msg, "model: the model '%.64s' does not exist", n);
        openai_error(r, 404, "model_not_found", msg);
        return NULL;
    }
}

void api_openai_embeddings(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    size_t body_bytes;
    const char *body = http_request_body(r, &body_bytes);
    api_parsed parsed = {.verdict = {0}};
    json_t *json = api_body_json(body, body_bytes, &parsed.verdict);
    if (!json) {
        openai_error(r, parsed.verdict.status, NULL, parsed.verdict.message);
        return;
    }
    served_model *sm = model_of(ctx, r, json);
    if (!sm) {
        json_decref(json);
        return;
    }
    api_call call = {.sm = sm};
    parsed.job = calloc(1, sizeof(embeddings_job));
    int status = parsed.job ? embeddings_parse(&call, json, &parsed)
                            : api_fail(&parsed.verdict, 503, "out of memory");
    json_decref(json);
    if (status == 0) {
        api_submit(ctx, r, &embeddings_route, &parsed);
    } else {
        if (status == 413)
            http_request_stats_of(r)->reject = REJECT_TOO_LARGE;
        api_parsed_release(&embeddings_route, &parsed);
        openai_error(r, status, NULL, parsed.verdict.message);
    }
    served_model_release(sm);
}
