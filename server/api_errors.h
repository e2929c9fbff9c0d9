/* api_errors: the error shapes. The API's (/v1 and the operational routes):
 *   {"error": {"code": 400, "type": "invalid_argument", "message": "..."}},
 * with the type fixed by the status so that clients can switch on either; and
 * the Open Inference Protocol's on every path under /v2, where "error" is the
 * message itself (KServe's and Triton's clients read it as a string), with
 * the same code and type beside it:
 *   {"error": "...", "code": 400, "type": "invalid_argument"}
 * Hugging Face Text Embeddings Inference's on every path under /tei (its
 * clients read "error" as the message):
 *   {"error": "...", "error_type": "Validation"}
 * and TorchServe's on /ping and every path under /predictions:
 *   {"code": 404, "type": "ModelNotFoundException", "message": "..."} */
#ifndef FF_API_ERRORS_H
#define FF_API_ERRORS_H

#include <jansson.h>
#include <stdbool.h>

#include "compiler.h"

/* The error type of a status: 400 invalid_argument, 401 unauthenticated,
 * 404 not_found, 405 method_not_allowed, 413 payload_too_large,
 * 415 unsupported_media_type, 422 unprocessable_entity, 429 resource_exhausted, 500 internal,
 * 503 unavailable, 504 deadline_exceeded; anything else "error". */
const char *api_error_type(int status);

/* Returns a new reference to the error object for `status` and `message`,
 * or NULL when out of memory. */
json_t *api_error_json(int status, const char *message);

/* Which shape answers an error on a path. */
typedef enum {
    API_ERROR_SHAPE_API,        /* {"error": {"code", "type", "message"}} */
    API_ERROR_SHAPE_OIP,        /* "/v2" and under: {"error": message, "code", "type"} */
    API_ERROR_SHAPE_TEI,        /* "/tei" and under: {"error": message, "error_type"} */
    API_ERROR_SHAPE_TORCHSERVE, /* "/ping", "/predictions" and under: {"code", "type", "message"} */
} api_error_shape;

api_error_shape api_error_shape_of_path(const char *path);

/* TEI's error_type of a status: 429 Overloaded, 503 and 504 Unhealthy, other
 * 5xx Backend, anything else Validation. */
const char *api_error_tei_type(int status);

/* TorchServe's exception name for a status: 400, 413, 415 and 422
 * BadRequestException, 401 and 403 UnauthorizedException, 404
 * ModelNotFoundException, 405 MethodNotAllowedException, 429 and 503
 * ServiceUnavailableException, 504 RequestTimeoutException, other 5xx
 * InternalServerException, anything else BadRequestException. */
const char *api_error_torchserve_type(int status);

/* True for "/v2" and every path under "/v2/": the Open Inference Protocol's
 * routes, matched or not (a unit test holds the route table's V2 family to
 * exactly these paths). */
bool api_error_path_is_oip(const char *path);

/* The error object for a request to `path` (either shape, as above). A new
 * reference, or NULL when out of memory. */
json_t *api_error_json_for_path(const char *path, int status, const char *message);

#endif
