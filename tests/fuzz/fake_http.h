/* fake_http: a socket-free stand-in for server/http.c, so that fuzz targets
 * can drive the API's route handlers (api_v1.c, oip.c) in-process with a
 * body of arbitrary bytes. It implements every http_request_* function of
 * http.h (not the server ones) and checks the transport's contract on the
 * way: a handler answers exactly once, or parks and is resumed exactly once
 * and then answers; at most 4 response headers; every response is JSON that
 * jansson can dump. Breaking the contract aborts (a fuzzer finding).
 *
 * Single-threaded: fuzz targets run the workers on the calling thread
 * (worker_run), so a request is never touched by two threads. */
#ifndef FF_FAKE_HTTP_H
#define FF_FAKE_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* A request as the transport would hand it to the handler of `route` (an
 * element of the route table, borrowed: http_request_route returns it). All
 * strings are copied; params may be NULL. The body may contain NULs. */
http_request *fake_http_request_new(const http_route *route, const char *path, const char *param0,
                                    const char *param1, const void *body, size_t body_bytes);

/* Adds a request header (copied) that http_request_header returns (names
 * compared without case). At most 4. */
void fake_http_request_set_header(http_request *r, const char *name, const char *value);

/* The value of the answer's header `name` (http_request_add_header), or NULL. */
const char *fake_http_response_header(const http_request *r, const char *name);

/* The bytes of a non-JSON answer (borrowed), or NULL for a JSON one. */
const char *fake_http_request_raw_response(const http_request *r, size_t *bytes);

/* True while the request is parked and no one has called http_request_resume. */
bool fake_http_request_waiting(const http_request *r);

/* After the handler returned and any parked request was woken: runs the
 * resume callback (if the request was parked), checks that exactly one answer
 * was given, runs the handler state's free function and returns the answer's
 * status. The response body stays readable until fake_http_request_free. */
int fake_http_request_finish(http_request *r);

/* The answer's JSON (borrowed), or NULL for a non-JSON answer. */
const json_t *fake_http_request_response(const http_request *r);

/* The answer's Content-Type (a static string), or "" before the answer. */
const char *fake_http_request_content_type(const http_request *r);

void fake_http_request_free(http_request *r);

#endif
