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

static json_t *error_pack(bool oip, int status, const char *message)
{
    if (oip)
        return json_pack("{s:s,s:i,s:s}", "error", message, "code", status, "type",
                         api_error_type(status));
    return json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "type", api_error_type(status),
                     "message", message);
}

static json_t *error_json(bool oip, int status, const char *message)
{
    json_t *j = error_pack(oip, status, message);
    if (j)
        return j;
    char safe[512];
    ascii_copy(safe, sizeof safe, message);
    return error_pack(oip, status, safe);
}

json_t *api_error_json(int status, const char *message)
{
    return error_json(false, status, message);
}

bool api_error_path_is_oip(const char *path)
{
    return strncmp(path, "/v2", 3) == 0 && (path[3] == 0 || path[3] == '/');
}

json_t *api_error_json_for_path(const char *path, int status, const char *message)
{
    return error_json(api_error_path_is_oip(path), status, message);
}
