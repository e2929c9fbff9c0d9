/* api_frame: the one handler frame of every model route. A model route is
 * described by an api_model_route: a pure parser that turns the model and the
 * request body into an infer_request (or into a status and a message), and
 * the function that answers once the request is computed. The frame does the
 * rest, the same way for every route:
 *   look the model up (404, 503 while loading) -> api_route_parse ->
 *   one error answer, or park the request and submit it (429, 503, 413 on a
 *   refusal; 504 past its deadline) -> the route's answer -> clean-up.
 * api_route_parse makes no HTTP call, so the fuzzer and the unit tests call
 * it directly, on any thread. */
#ifndef FF_API_FRAME_H
#define FF_API_FRAME_H

#include <jansson.h>
#include <stddef.h>

#include "api.h"
#include "api_fields.h"
#include "compiler.h"
#include "http.h"
#include "infer_request.h"
#include "model_registry.h"

/* What a model route's parser is given besides the body's JSON. */
typedef struct {
    served_model *sm;  /* the model named by the path (borrowed; requests retain it) */
    const char *param; /* the path's capture after the model name ({id}, {version}), or NULL */
    /* Request headers a route reads (NULL when absent): */
    const char *content_type;
    const char *inference_header_length; /* Inference-Header-Content-Length (oip_binary.h) */
    /* Set by api_route_parse for route->parse: the body after its JSON part
     * (route->json_part), e.g. binary tensor data; tail_bytes 0 without one. */
    const char *tail;
    size_t tail_bytes;
} api_call;

/* What a parser builds. On status 0: req (owned) and job are what the frame
 * submits and later hands to the route's answer. */
typedef struct {
    api_verdict verdict; /* status and message */
    infer_request *req;  /* the request to submit; NULL until built */
    void *job;           /* the route's job_bytes of zeroed state (NULL if job_bytes is 0) */
} api_parsed;

/* HTTP thread: answers from a request that finished with INFER_OK. */
typedef void (*api_finish_fn)(http_request *r, infer_request *req, void *job);

struct api_model_route {
    /* Optional: what is decided before the body is read (the model's task,
     * the path's id). Returns 0, or a status with v filled. Pure. */
    int (*check)(const api_call *call, api_verdict *v);
    /* Optional: how many of the body's body_bytes are its JSON (the rest is
     * the tail, e.g. binary tensor data), into *json_bytes. Returns 0, or a
     * status (400, 415) with v filled. Pure. NULL: the whole body is JSON. */
    int (*json_part)(const api_call *call, size_t body_bytes, size_t *json_bytes, api_verdict *v);
    /* With json_part: a JSON part of 0 bytes means a body without JSON (raw
     * text), for which parse gets an empty object and the whole body as the
     * tail; false: such a body is the 400 of an empty JSON body. */
    bool raw_body;
    /* Parses the body (a JSON object) into out->req and out->job. Returns 0,
     * or the status of out->verdict (400, 404, 413, 422, 503); on failure it may
     * leave a partly built out->req and job for api_route_parse to release.
     * Pure: no HTTP, no globals. */
    int (*parse)(const api_call *call, json_t *body, api_parsed *out);
    api_finish_fn finish;
    size_t job_bytes;               /* size of the job the answer needs (0: none) */
    void (*job_release)(void *job); /* frees what a job owns (not the job); may be NULL */
    /* Answers the frame's own errors (429, 503, 504, 413 after parsing) in
     * the route family's shape; NULL: http_request_respond_error's. */
    void (*respond_error)(http_request *r, int status, const char *message);
};

/* Runs route->check, route->json_part, the JSON part's parse (api_body_json)
 * and route->parse (with call->tail set to the rest of the body).
 * Returns 0 with out->req (and out->job) to submit or to release with
 * api_parsed_release, or the error status with out->verdict, nothing left to
 * release. Out of memory is 503. Pure: no HTTP call and no state of its own
 * (it reads the model, its news catalog and its news cache, which lock
 * themselves); any thread. */
FF_MUST_CHECK int api_route_parse(const api_model_route *route, const api_call *call,
                                  const char *body, size_t body_bytes, api_parsed *out);

/* Releases out->req and out->job (NULL fields are skipped). */
void api_parsed_release(const api_model_route *route, api_parsed *out);

/* Looks up the model named by path parameter 0 and records it on the request.
 * Returns a new reference, or NULL after answering 404 (unknown) or 503
 * (still loading, or failed to load). For routes outside the frame too. */
served_model *api_model_get(api_context *ctx, http_request *r);

/* Answers the verdict of a failed parse: its status and message (a 413 is
 * counted as a too_large rejection). */
void api_verdict_respond(http_request *r, const api_verdict *v);

/* Parks `r`, submits parsed->req and, once it is done, runs route->finish on
 * the HTTP thread (or answers 504 / 503 / 499 itself for deadline / shutdown
 * / cancel). On a refused submit answers 429 (queue full, with Retry-After),
 * 503 (draining) or 413 (too big). Takes parsed->req and parsed->job
 * whatever happens. HTTP thread. */
void api_submit(api_context *ctx, http_request *r, const api_model_route *route,
                api_parsed *parsed);

/* Bodies of at most this many bytes are parsed on the HTTP thread even when
 * there is a parse pool: for a body this small (a few texts) the hand-off to
 * a pool thread and back (a futex wake-up each way, and the pool's lock
 * contended with the HTTP thread) costs about as much CPU as the parse
 * itself, and a wake-up's latency on every request. Larger bodies still go
 * to the pool, so that a flood of big bodies never holds the HTTP thread. */
#define API_PARSE_HERE_MAX_BYTES 4096

/* Whether api_frame_handle parses a model route's body of body_bytes on the
 * HTTP thread (no parse pool, or a small body) rather than on the pool. Pure. */
bool api_frame_parses_here(const api_context *ctx, size_t body_bytes);

/* 0 when the model has what the route needs (`has`); else 400 "model 'x' is a
 * TASK model; ROUTE needs a WANT model" in v (`want`: the task's name). Pure. */
int api_model_needs(const api_call *call, bool has, const char *route, const char *want,
                    api_verdict *v);

/* A new request for n_items items (n_history of them a recommend's history)
 * of call's model, or NULL with 503 "out of memory for N inputs". */
infer_request *api_request_new(const api_call *call, infer_task task, int n_items, int n_history,
                               api_verdict *v);

#endif
