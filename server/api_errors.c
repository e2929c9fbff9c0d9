/* api_errors: builds the error JSON shapes (http.c sends them). */
#include "api_errors.h"

#include <stdio.h>
#include <string.h>

const char *api_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_argument";
    case 401:
        return "unauthenticated";
    case 403:
        return "permission_denied";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 409:
        return "conflict";
    case 413:
        return "payload_too_large";
    case 415:
        return "unsupported_media_type";
    case 422:
        return "unprocessable_entity";
    case 429:
        return "resource_exhausted";
    case 500:
        return "internal";
    case 503:
        return "unavailable";
    case 504:
        return "deadline_exceeded";
    default:
        return "error";
    }
}

/* Copies message with every non-ASCII byte replaced by '?', for a message
 * that is not valid UTF-8 (a quoted request byte or a cut sequence). */
static void ascii_copy(char *safe, size_t cap, const char *message)
{
    size_t i = 0;
    for (; message[i] && i + 1 < cap; i++)
        safe[i] = (unsigned char)message[i] < 0x80 ? message[i] : '?';
    safe[i] = 0;
}

const char *api_error_tei_type(int status)
{
    switch (status) {
    case 429:
        return "Overloaded";
    case 503:
    case 504:
        return "Unhealthy";
    default:
        return status >= 500 ? "Backend" : "Validation";
    }
}

const char *api_error_torchserve_type(int status)
{
    switch (status) {
    case 401:
    case 403:
        return "UnauthorizedException";
    case 404:
        return "ModelNotFoundException";
    case 405:
        return "MethodNotAllowedException";
    case 429:
    case 503:
        return "ServiceUnavailableException";
    case 504:
        return "RequestTimeoutException";
    default:
        return status >= 500 ? "InternalServerException" : "BadRequestException";
    }
}

static json_t *error_pack(api_error_shape shape, int status, const char *message)
{
    if (shape == API_ERROR_SHAPE_OIP)
        return json_pack("{s:s,s:i,s:s}", "error", message, "code", status, "type",
                         api_error_type(status));
    if (shape == API_ERROR_SHAPE_TEI)
        return json_pack("{s:s,s:s}", "error", message, "error_type", api_error_tei_type(status));
    if (shape == API_ERROR_SHAPE_TORCHSERVE)
        return json_pack("{s:i,s:s,s:s}", "code", status, "type", api_error_torchserve_type(status),
                         "message", message);
    return json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "type", api_error_type(status),
                     "message", message);
}

static json_t *error_json(api_error_shape shape, int status, const char *message)
{
    json_t *j = error_pack(shape, status, message);
    if (j)
        return j;
    char safe[512];
    ascii_copy(safe, sizeof safe, message);
    return error_pack(shape, status, safe);
}

json_t *api_error_json(int status, const char *message)
{
    return error_json(API_ERROR_SHAPE_API, status, message);
}

/* True for `prefix` itself and every path under `prefix` + "/". */
static bool path_under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == 0 || path[n] == '/');
}

api_error_shape api_error_shape_of_path(const char *path)
{
    if (path_under(path, "/v2"))
        return API_ERROR_SHAPE_OIP;
    if (path_under(path, "/tei"))
        return API_ERROR_SHAPE_TEI;
    if (path_under(path, "/predictions") || strcmp(path, "/ping") == 0)
        return API_ERROR_SHAPE_TORCHSERVE;
    return API_ERROR_SHAPE_API;
}

bool api_error_path_is_oip(const char *path)
{
    return api_error_shape_of_path(path) == API_ERROR_SHAPE_OIP;
}

json_t *api_error_json_for_path(const char *path, int status, const char *message)
{
    return error_json(api_error_shape_of_path(path), status, message);
}
