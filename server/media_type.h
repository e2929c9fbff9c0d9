/* media_type: matching a Content-Type header value against one media type.
 * The transport's JSON check (http_guard.c), the binary tensor extension's
 * (oip_binary.c) and TorchServe's raw-or-JSON body (api_torchserve.c) all ask
 * the same question, so they share this one answer. Pure, any thread. */
#ifndef FF_MEDIA_TYPE_H
#define FF_MEDIA_TYPE_H

#include <stdbool.h>

/* True when `type`, a Content-Type value, names the media type `want`
 * (lowercase, e.g. "application/json"): compared without regard to case,
 * after leading spaces or tabs, and followed by nothing but spaces or tabs
 * and, optionally, parameters after ';' ("application/json; charset=utf-8").
 * False for NULL, for another type, and for one that only starts like `want`
 * ("application/jsonx"). */
bool media_type_is(const char *type, const char *want);

#endif
