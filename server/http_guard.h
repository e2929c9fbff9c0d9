/* http_guard: the transport's strict checks on what a client sends before
 * any handler runs: request framing (Content-Length / Transfer-Encoding),
 * the Host header against server.allowed_hosts, the body's Content-Type, and
 * path captures (news ids, model names). Pure string functions, so they are
 * unit-tested and fuzzable; http.c feeds them the headers MHD parsed. Each
 * returns NULL when the input is acceptable, or writes a message naming the
 * problem into err and returns err. Any thread. */
#ifndef FF_HTTP_GUARD_H
#define FF_HTTP_GUARD_H

#include <stdbool.h>
#include <stddef.h>

/* Longest path capture (news id, model name) in bytes. */
#define HTTP_GUARD_CAPTURE_MAX 128

/* The framing headers of one request, as counted by the transport. */
typedef struct {
    int n_content_length;          /* occurrences of Content-Length */
    const char *content_length;    /* the first one's value, or NULL */
    int n_transfer_encoding;       /* occurrences of Transfer-Encoding */
    const char *transfer_encoding; /* the first one's value, or NULL */
} http_guard_framing;

/* Refuses (message for a 400 that closes the connection): both
 * Content-Length and Transfer-Encoding; a repeated Content-Length or
 * Transfer-Encoding; a Content-Length that is not a plain decimal; a
 * transfer coding other than "chunked". These are the request-smuggling
 * preconditions behind proxies that frame requests differently. */
const char *http_guard_check_framing(const http_guard_framing *f, char *err, size_t err_cap);

/* Checks the Host header against `allowed`: a comma-separated list of host
 * names or addresses (IPv6 without brackets), matched case-insensitively
 * with any ":port" removed; "*" allows any host; NULL or "" allows any host.
 * A missing Host (NULL) is accepted only from an HTTP/1.0 client
 * (http_1_0), which may omit it. */
const char *http_guard_check_host(const char *allowed, const char *host, bool http_1_0, char *err,
                                  size_t err_cap);

/* The allowed_hosts default for a listen host: the loopback names
 * ("localhost,127.0.0.1,::1") when `listen_host` is a loopback address or
 * "localhost", NULL (any host) otherwise. Static string. */
const char *http_guard_default_hosts(const char *listen_host);

/* The Open Inference Protocol's binary tensor extension header (oip_binary.h's
 * OIP_HEADER_LENGTH; test_http_guard holds them equal). */
#define HTTP_GUARD_BINARY_HEADER "Inference-Header-Content-Length"

/* A POST or PUT body's Content-Type must be application/json, parameters
 * (such as "; charset=utf-8") allowed. For a 415. The rule stops cross-site
 * "simple" requests, which a browser sends without a CORS preflight: their
 * Content-Type is text/plain, a form type, or (a Blob body) none, and then
 * they always carry Origin. So a request without Content-Type passes when it
 * has no Origin either (`origin` NULL: not from a browser; Triton's Python
 * client sends neither). With the binary extension's header (`binary_header`
 * non-NULL) the route checks the type itself (Triton's C++ client sends
 * application/octet-stream): a simple request cannot carry that header. */
const char *http_guard_check_content_type(const char *content_type, const char *binary_header,
                                          const char *origin, char *err, size_t err_cap);

/* A path capture (s[0..n)) named `what` ("news id", "model name"): 1 to
 * HTTP_GUARD_CAPTURE_MAX bytes of valid UTF-8 without NUL or other control
 * characters (C0, DEL, C1). For a 400. */
const char *http_guard_check_capture(const char *what, const char *s, size_t n, char *err,
                                     size_t err_cap);

#endif
