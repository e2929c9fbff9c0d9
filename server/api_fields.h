/* api_fields: the checks a request parser makes on JSON fields, each with
 * the API's one wording, so that no parser writes its own "expected X, got Y":
 *   truncate: expected a boolean, got string
 *   missing key 'inputs'
 *   unknown key 'x' (allowed: inputs, truncate)
 * A failed check fills an api_verdict: the HTTP status (400 unless said
 * otherwise) and the message the one error answer carries. Pure: no HTTP, no
 * globals; any thread. */
#ifndef FF_API_FIELDS_H
#define FF_API_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

/* Longest error message (http_request_respond_error's limit). */
#define API_MESSAGE_CAP 512

/* A parser's verdict: status 0 (accepted) or the status of the error answer
 * (400, 413, 422 or 503), with its message. */
typedef struct {
    int status;
    char message[API_MESSAGE_CAP];
} api_verdict;

/* Sets the verdict to `status` (not 0) with a printf-formatted message
 * (truncated to API_MESSAGE_CAP). Returns status. */
int api_fail(api_verdict *v, int status, const char *fmt, ...) FF_PRINTF(3, 4);

/* Routes jansson's allocations through `alloc` (malloc when NULL) and notes
 * each failure per thread, so that api_body_json answers an allocation that
 * failed while the body was read with 503, not with the syntax error jansson
 * reports for some of them. Call before any thread uses jansson (main, at
 * start-up); tests pass a failing `alloc` to inject out of memory. Without
 * it, such a failure is a 400. */
void api_json_alloc_install(void *(*alloc)(size_t));

/* The JSON kinds a field can be required to have. */
typedef enum {
    API_KIND_OBJECT,
    API_KIND_ARRAY,
    API_KIND_STRING,
    API_KIND_INTEGER,
    API_KIND_BOOLEAN,
} api_kind;

/* The body as one JSON object (duplicate keys rejected, NUL allowed in
 * strings). Returns a new reference, or NULL with a 400 naming the problem:
 * "request body is empty: expected a JSON object", "invalid JSON at line L,
 * column C: ...", "request body: expected a JSON object, got array"; or
 * NULL with 503 "out of memory" (see api_json_alloc_install). */
json_t *api_body_json(const char *body, size_t body_bytes, api_verdict *v);

/* True when every key of `obj` is in the NULL-terminated `allowed`; else
 * false with "<where>: unknown key 'k' (allowed: a, b)" (no prefix when
 * `where` is ""). */
bool api_keys_allowed(json_t *obj, const char *where, const char *const *allowed, api_verdict *v);

/* True when `value` has `kind`; else false with "<path>: expected <what>,
 * got <its kind>" ("nothing" for NULL). `what` is the expectation as the
 * message says it, e.g. "a boolean" or "an array of tensors". */
bool api_expect(const json_t *value, api_kind kind, const char *path, const char *what,
                api_verdict *v);

/* obj[key] (borrowed), or NULL with "missing key '<key>'". */
json_t *api_require(json_t *obj, const char *key, api_verdict *v);

/* The optional boolean obj[key] into *out (left as is when absent). False
 * with "<path>: expected a boolean, got ..." when it is not a boolean. */
bool api_optional_bool(json_t *obj, const char *key, const char *path, bool *out, api_verdict *v);

#endif
