/* api_frame: model lookup, the pure parse, the one error answer, the submit
 * and resume glue and the clean-up shared by every model route. */
#include "api_frame.h"

#include <assert.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "batcher.h"
#include "task_pool.h"

/* ---- the pure part ------------------------------------------------------------- */

static void job_free(const api_model_route *route, void *job)
{
    if (job && route->job_release)
        route->job_release(job);
    free(job);
}

void api_parsed_release(const api_model_route *route, api_parsed *out)
{
    infer_request_release(out->req);
    out->req = NULL;
    job_free(route, out->job);
    out->job = NULL;
}

int api_route_parse(const api_model_route *route, const api_call *call, const char *body,
                    size_t body_bytes, api_parsed *out)
{
    out->verdict.status = 0;
    out->verdict.message[0] = 0;
    out->req = NULL;
    out->job = NULL;
    if (route->check && route->check(call, &out->verdict) != 0)
        return out->verdict.status;
    size_t json_bytes = body_bytes;
    if (route->json_part && route->json_part(call, body_bytes, &json_bytes, &out->verdict) != 0)
        return out->verdict.status;
    assert(json_bytes <= body_bytes);
    api_call with_tail = *call;
    with_tail.tail = body + json_bytes;
    with_tail.tail_bytes = body_bytes - json_bytes;
    json_t *json = json_bytes == 0 && route->raw_body
                       ? json_object()
                       : api_body_json(body, json_bytes, &out->verdict);
    if (!json && out->verdict.status == 0)
        api_fail(&out->verdict, 503, "out of memory");
    if (!json)
        return out->verdict.status;
    if (route->job_bytes > 0) {
        out->job = calloc(1, route->job_bytes);
        if (!out->job) {
            json_decref(json);
            return api_fail(&out->verdict, 503, "out of memory");
        }
    }
    int status = route->parse(&with_tail, json, out);
    json_decref(json);
    assert(status == out->verdict.status && (status != 0 || out->req));
    if (status != 0)
        api_parsed_release(route, out);
    return status;
}

int api_model_needs(const api_call *call, bool has, const char *route, const char *want,
                    api_verdict *v)
{
    if (has)
        return 0;
    return api_fail(v, 400, "model '%s' is a %s model; %s needs a %s model", call->sm->name,
                    model_task_name(call->sm->model->config.task), route, want);
}

infer_request *api_request_new(const api_call *call, infer_task task, int n_items, int n_history,
                               api_verdict *v)
{
    infer_request *req = infer_request_new(call->sm, task, n_items, n_history);
    if (!req)
        api_fail(v, 503, "out of memory for %d inputs", n_items);
    return req;
}

/* ---- the frame ------------------------------------------------------------------- */

served_model *api_model_get(api_context *ctx, http_request *r)
{
    const char *name = http_request_param(r, 0);
    if (!name)
        name = "";
    http_request_set_model(r, name);
    served_model *sm = model_registry_get(ctx->registry, name);
    if (sm)
        return sm;
    switch (model_registry_state(ctx->registry, name)) {
    case SERVED_MODEL_LOADING:
        http_request_stats_of(r)->reject = REJECT_NOT_READY;
        http_request_add_header(r, "Retry-After", "1");
        http_request_respond_error(r, 503, "model '%.64s' is still loading", name);
        return NULL;
    case SERVED_MODEL_FAILED:
        http_request_stats_of(r)->reject = REJECT_NOT_READY;
        http_request_respond_error(r, 503, "model '%.64s' failed to load", name);
        return NULL;
    case SERVED_MODEL_UNLOADED:
        http_request_set_model(r, "");
        http_request_respond_error(r, 404,
                                   "model '%.64s' is unloaded (POST "
                                   "/v2/repository/models/%.64s/load serves it again)",
                                   name, name);
        return NULL;
    default:
        /* Unknown names must not become metric labels. */
        http_request_set_model(r, "");
        http_request_respond_error(r, 404, "model '%.64s' not found", name);
        return NULL;
    }
}

void api_verdict_respond(http_request *r, const api_verdict *v)
{
    if (v->status == 413)
        http_request_stats_of(r)->reject = REJECT_TOO_LARGE;
    http_request_respond_error(r, v->status, "%s", v->message);
}

/* ---- submit and resume --------------------------------------------------------- */

/* A parked model request. With a parse pool it is parked from the moment
 * its body is in: the pool parses and submits it, and the HTTP thread only
 * answers once it is resumed. */
typedef struct {
    task_pool_task task; /* first: the pool hands it back */
    api_context *ctx;
    const api_model_route *route;
    http_request *r;
    served_model *sm; /* held until parsed (pool path) */
    /* The headers the parser reads, looked up on the HTTP thread (MHD's
     * connection memory: valid until the request completes). */
    const char *content_type;
    const char *inference_header_length;
    infer_request *req;
    void *job;
    batcher_status submit;
    bool parse_failed; /* verdict holds the answer */
    api_verdict verdict;
    /* The client went away (main thread), and the request it may cancel
     * (published by the pool thread): see on_client_gone. */
    atomic_bool gone;
    _Atomic(infer_request *) cancellable;
} api_pending;

static void pending_free(void *p)
{
    api_pending *pd = p;
    if (pd->sm)
        served_model_release(pd->sm);
    infer_request_release(pd->req);
    job_free(pd->route, pd->job);
    free(pd);
}

/* Main thread (http_server_probe_disconnects): the client went away. */
static void on_client_gone(http_request *r, void *ctx)
{
    (void)ctx;
    api_pending *pd = http_request_state(r);
    atomic_store(&pd->gone, true);
    infer_request *req = atomic_load(&pd->cancellable);
    if (req)
        infer_request_cancel(req);
}

/* Worker thread: the request's last item is done. */
static void on_infer_done(infer_request *req, void *user)
{
    (void)req;
    http_request_resume(user);
}

/* An error answer of the frame, in the route's shape. */
static void frame_error(http_request *r, const api_model_route *route, int status, const char *fmt,
                        ...) FF_PRINTF(4, 5);
static void frame_error(http_request *r, const api_model_route *route, int status, const char *fmt,
                        ...)
{
    char msg[API_MESSAGE_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (route->respond_error)
        route->respond_error(r, status, msg);
    else
        http_request_respond_error(r, status, "%s", msg);
}

/* Answers a submit the batcher refused. */
static void refusal_respond(http_request *r, api_pending *pd)
{
    http_request_stats *st = http_request_stats_of(r);
    char retry[16];
    switch (pd->submit) {
    case BATCHER_OK:
        assert(!"refusal_respond on an accepted submit");
        return;
    case BATCHER_FULL:
        st->reject = REJECT_QUEUE_FULL;
        snprintf(retry, sizeof retry, "%d", batcher_retry_after_s(pd->ctx->batcher));
        http_request_add_header(r, "Retry-After", retry);
        frame_error(r, pd->route, 429, "the request queue is full; retry after %s s", retry);
        return;
    case BATCHER_DRAINING:
        st->reject = REJECT_DRAINING;
        http_request_add_header(r, "Retry-After", "1");
        frame_error(r, pd->route, 503, "server is draining (shutting down)");
        return;
    case BATCHER_TOO_BIG:
        st->reject = REJECT_TOO_LARGE;
        frame_error(r, pd->route, 413, "request has %d items, more than the queue can hold",
                    pd->req->n_items);
        return;
    }
}

static void on_resume(http_request *r, void *vctx)
{
    (void)vctx;
    api_pending *pd = http_request_state(r);
    if (pd->parse_failed) {
        api_verdict_respond(r, &pd->verdict);
        return;
    }
    if (!pd->req) {
        /* The client left before its body was parsed. */
        http_request_stats_of(r)->reject = REJECT_DISCONNECTED;
        http_request_respond_error(r, 499, "the client closed the connection");
        return;
    }
    if (pd->submit != BATCHER_OK) {
        refusal_respond(r, pd);
        return;
    }
    http_request_stats *st = http_request_stats_of(r);
    infer_request *req = pd->req;
    st->queue_us = atomic_load(&req->queue_us_max);
    st->infer_us = atomic_load(&req->infer_us_max);
    st->batch_size = atomic_load(&req->batch_size_max);
    switch (infer_request_status(req)) {
    case INFER_OK:
        pd->route->finish(r, req, pd->job);
        return;
    case INFER_DEADLINE:
        st->reject = REJECT_DEADLINE;
        frame_error(r, pd->route, 504, "the request's deadline passed while it was queued");
        return;
    case INFER_CANCELLED:
        /* The client went away (http_server_probe_disconnects): nobody reads
         * this answer; 499 (nginx's "client closed request") is for the log. */
        st->reject = REJECT_DISCONNECTED;
        frame_error(r, pd->route, 499, "the client closed the connection");
        return;
    case INFER_SHUTDOWN:
    case INFER_PENDING:
        break;
    }
    /* INFER_PENDING cannot reach here: the done callback runs after the
     * status is final. */
    st->reject = REJECT_DRAINING;
    frame_error(r, pd->route, 503, "server shut down before the request was computed");
}

void api_submit(api_context *ctx, http_request *r, const api_model_route *route, api_parsed *parsed)
{
    api_pending *pd = calloc(1, sizeof *pd);
    if (!pd) {
        api_parsed_release(route, parsed);
        http_request_respond_error(r, 503, "out of memory");
        return;
    }
    pd->ctx = ctx;
    pd->route = route;
    pd->req = parsed->req;
    pd->job = parsed->job;
    parsed->req = NULL;
    parsed->job = NULL;
    infer_request *req = pd->req;
    http_request_set_state(r, pd, pending_free);
    http_request_stats_of(r)->n_items = req->n_items;
    infer_request_set_deadline(req, http_request_deadline_us(r));
    infer_request_set_done(req, on_infer_done, r);
    atomic_store(&pd->cancellable, req);
    http_request_set_cancel(r, on_client_gone, NULL);
    /* Park first: the done callback may run before batcher_submit returns. */
    http_request_suspend(r, on_resume, ctx);
    pd->submit = batcher_submit(ctx->batcher, req);
    if (pd->submit != BATCHER_OK)
        http_request_resume(r); /* on_resume answers the refusal */
}

/* Pool thread: parses the parked request's body and submits it; any answer
 * other than a submit is left for on_resume (HTTP thread). The request is
 * parked, so this thread is the only one touching it until it resumes it. */
static void parse_task(task_pool_task *t)
{
    api_pending *pd = (api_pending *)t;
    http_request *r = pd->r;
    if (atomic_load(&pd->gone)) {
        http_request_resume(r); /* on_resume answers 499 */
        return;
    }
    size_t body_bytes;
    const char *body = http_request_body(r, &body_bytes);
    api_call call = {.sm = pd->sm,
                     .param = http_request_param(r, 1),
                     .content_type = pd->content_type,
                     .inference_header_length = pd->inference_header_length};
    api_parsed parsed;
    int status = api_route_parse(pd->route, &call, body, body_bytes, &parsed);
    served_model_release(pd->sm);
    pd->sm = NULL;
    if (status != 0) {
        pd->verdict = parsed.verdict;
        pd->parse_failed = true;
        http_request_resume(r);
        return;
    }
    pd->req = parsed.req;
    pd->job = parsed.job;
    infer_request *req = pd->req;
    http_request_stats_of(r)->n_items = req->n_items;
    infer_request_set_deadline(req, http_request_deadline_us(r));
    infer_request_set_done(req, on_infer_done, r);
    /* Publish, then look again: whichever of this thread and on_client_gone
     * comes second sees the other's write, so a cancel is never lost. */
    atomic_store(&pd->cancellable, req);
    if (atomic_load(&pd->gone))
        infer_request_cancel(req);
    /* Once submitted, a worker may finish the request and the HTTP thread
     * free pd: only a refusal (which nobody else sees) is written back. */
    pd->submit = BATCHER_OK;
    batcher_status st = batcher_submit(pd->ctx->batcher, req);
    if (st != BATCHER_OK) {
        pd->submit = st;
        http_request_resume(r); /* on_resume answers the refusal */
    }
}

bool api_frame_parses_here(const api_context *ctx, size_t body_bytes)
{
    return !ctx->parse_pool || body_bytes <= API_PARSE_HERE_MAX_BYTES;
}

void api_frame_handle(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    const api_model_route *route = api_route_info_of(http_request_route(r))->model;
    assert(route && "api_frame_handle serves API_MODEL_ROUTE routes only");
    served_model *sm = api_model_get(ctx, r);
    if (!sm)
        return;
    batcher_expect_work(ctx->batcher);
    size_t body_bytes;
    const char *body = http_request_body(r, &body_bytes);
    api_pending *pd = api_frame_parses_here(ctx, body_bytes) ? NULL : calloc(1, sizeof *pd);
    if (!pd) {
        /* A small body, no pool (tests, the fuzzer), or out of memory: parse here. */
        api_call call = {.sm = sm,
                         .param = http_request_param(r, 1),
                         .content_type = http_request_header(r, "Content-Type"),
                         .inference_header_length =
                             http_request_header(r, "Inference-Header-Content-Length")};
        api_parsed parsed;
        if (api_route_parse(route, &call, body, body_bytes, &parsed) == 0)
            api_submit(ctx, r, route, &parsed);
        else
            api_verdict_respond(r, &parsed.verdict);
        served_model_release(sm);
        return;
    }
    pd->task.run = parse_task;
    pd->ctx = ctx;
    pd->route = route;
    pd->r = r;
    pd->sm = sm; /* released by parse_task, or by pending_free */
    pd->content_type = http_request_header(r, "Content-Type");
    pd->inference_header_length = http_request_header(r, "Inference-Header-Content-Length");
    http_request_set_state(r, pd, pending_free);
    http_request_set_cancel(r, on_client_gone, NULL);
    http_request_suspend(r, on_resume, ctx);
    task_pool_submit(ctx->parse_pool, &pd->task);
}
