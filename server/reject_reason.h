/* reject_reason: why a request was refused, or dropped without compute. One
 * closed set shared by the transport (http.c), the API (api*.c, oip.c), the
 * metrics and the access log, so that a reason is an enum from where it
 * happens to its counter: a misspelt reason does not compile. */
#ifndef FF_REJECT_REASON_H
#define FF_REJECT_REASON_H

typedef enum {
    REJECT_NONE = 0,         /* not rejected (a request's initial state) */
    REJECT_QUEUE_FULL,       /* queue at max_queue -> 429 */
    REJECT_DEADLINE,         /* deadline passed while queued -> 504 */
    REJECT_DISCONNECTED,     /* client went away before compute -> 499 (logged only) */
    REJECT_DRAINING,         /* shutting down -> 503 */
    REJECT_NOT_READY,        /* the model is still loading or failed to load -> 503 */
    REJECT_TOO_LARGE,        /* body or batch too large -> 413 */
    REJECT_CONNECTION_LIMIT, /* max_connections reached */
    REJECT_UNAUTHORIZED,     /* missing or wrong API key -> 401 */
} reject_reason;

/* One past the last reason: arrays indexed by reason have this many slots. */
#define REJECT_N_REASONS (REJECT_UNAUTHORIZED + 1)

/* The label value of a reason: "queue_full", "deadline", "disconnected",
 * "draining", "not_ready", "too_large", "connection_limit" or
 * "unauthorized"; NULL for REJECT_NONE. A static string; any thread. */
const char *reject_reason_name(reject_reason reason);

#endif
