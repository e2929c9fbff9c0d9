/* cors: which browser origins may call the daemon (server.cors_allow_origins)
 * and the headers that say so (https://fetch.spec.whatwg.org/#http-cors-protocol).
 * Pure; any thread.
 *
 * The list holds origins ("https://app.example.com", "http://localhost:3000")
 * or "*". An empty list turns CORS off: no response carries a CORS header. A
 * listed origin is echoed in Access-Control-Allow-Origin with
 * Access-Control-Allow-Credentials: true; "*" answers any other origin with
 * "*" and never with credentials, which browsers forbid together. */
#ifndef FF_CORS_H
#define FF_CORS_H

#include <stdbool.h>
#include <stddef.h>

/* Longest configured origin (scheme://host:port); the Origin header a
 * browser sends is never longer for a listed origin. */
#define CORS_ORIGIN_MAX 200

/* Headers a preflight allows and a response exposes, and the preflight cache. */
#define CORS_ALLOW_HEADERS                                                                         \
    "Authorization, Content-Type, X-API-Key, X-Request-Id, X-Request-Timeout-Ms, traceparent, "    \
    "tracestate"
#define CORS_EXPOSE_HEADERS "X-Request-Id, traceparent, Retry-After"
#define CORS_MAX_AGE_S "600"

/* "*", or an origin as browsers serialize it: a scheme ([a-z][a-z0-9+.-]*),
 * "://", a host of letters, digits, '-', '.', or an IPv6 address in
 * brackets, an optional ":PORT" (1 to 5 digits), no path, no trailing '/',
 * at most CORS_ORIGIN_MAX bytes. s need not be NUL-terminated. */
bool cors_origin_valid(const char *s, size_t n);

typedef enum {
    CORS_DENIED, /* no CORS headers */
    CORS_ANY,    /* Access-Control-Allow-Origin: * (no credentials) */
    CORS_LISTED, /* echo the origin, with credentials */
} cors_verdict;

/* The verdict for a request's Origin header (NULL: not a CORS request) under
 * the list origins[0..n). A listed origin wins over "*". Comparison ignores
 * ASCII case (hosts and schemes are case-insensitive). */
cors_verdict cors_check(char *const *origins, size_t n, const char *origin);

#endif
