/* reject_reason: the label of each reason, by an exhaustive switch (a new
 * reason without a name is a -Wswitch error). */
#include "reject_reason.h"

#include <stddef.h>

const char *reject_reason_name(reject_reason reason)
{
    switch (reason) {
    case REJECT_NONE:
        return NULL;
    case REJECT_QUEUE_FULL:
        return "queue_full";
    case REJECT_DEADLINE:
        return "deadline";
    case REJECT_DISCONNECTED:
        return "disconnected";
    case REJECT_DRAINING:
        return "draining";
    case REJECT_NOT_READY:
        return "not_ready";
    case REJECT_TOO_LARGE:
        return "too_large";
    case REJECT_CONNECTION_LIMIT:
        return "connection_limit";
    case REJECT_UNAUTHORIZED:
        return "unauthorized";
    }
    return NULL; /* not a reject_reason */
}
