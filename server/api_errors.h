/* api_errors: the one error shape of the API,
 *   {"error": {"code": 400, "type": "invalid_argument", "message": "..."}},
 * with the type fixed by the status so that clients can switch on either. */
#ifndef FF_API_ERRORS_H
#define FF_API_ERRORS_H

#include <jansson.h>

#include "compiler.h"

/* The error type of a status: 400 invalid_argument, 401 unauthenticated,
 * 404 not_found, 405 method_not_allowed, 413 payload_too_large,
 * 422 unprocessable_entity, 429 resource_exhausted, 500 internal,
 * 503 unavailable, 504 deadline_exceeded; anything else "error". */
const char *api_error_type(int status);

/* Returns a new reference to the error object for `status` and `message`,
 * or NULL when out of memory. */
json_t *api_error_json(int status, const char *message);

#endif
