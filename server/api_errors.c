/* api_errors: builds the single error JSON shape (http.c sends it). */
#include "api_errors.h"

#include <stdio.h>

const char *api_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_argument";
    case 401:
        return "unauthenticated";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
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

json_t *api_error_json(int status, const char *message)
{
    json_t *j = json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "type",
                          api_error_type(status), "message", message);
    if (j)
        return j;
    /* The message was not valid UTF-8 (a quoted request byte or a cut
     * sequence): send it with every non-ASCII byte replaced. */
    char safe[512];
    size_t i = 0;
    for (; message[i] && i + 1 < sizeof safe; i++)
        safe[i] = (unsigned char)message[i] < 0x80 ? message[i] : '?';
    safe[i] = 0;
    return json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "type", api_error_type(status),
                     "message", safe);
}
