/* http_guard: strict checks on framing, Host, Content-Type and path
 * captures (see http_guard.h). */
#include "http_guard.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "media_type.h"
#include "utf8.h"

static const char *fail(char *err, size_t err_cap, const char *msg)
{
    snprintf(err, err_cap, "%s", msg);
    return err;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

const char *http_guard_check_framing(const http_guard_framing *f, char *err, size_t err_cap)
{
    if (f->n_content_length > 0 && f->n_transfer_encoding > 0)
        return fail(err, err_cap,
                    "both Content-Length and Transfer-Encoding: send exactly one of them");
    if (f->n_content_length > 1)
        return fail(err, err_cap, "Content-Length is repeated: send it once");
    if (f->n_transfer_encoding > 1)
        return fail(err, err_cap, "Transfer-Encoding is repeated: send it once");
    if (f->n_content_length == 1 && !all_digits(f->content_length))
        return fail(err, err_cap, "Content-Length: expected a non-negative decimal integer");
    if (f->n_transfer_encoding == 1 && strcasecmp(f->transfer_encoding, "chunked") != 0)
        return fail(err, err_cap, "Transfer-Encoding: only 'chunked' is supported");
    return NULL;
}

/* host[0..n) without its ":port" (and without brackets for "[v6]:port"). */
static void host_name(const char *host, const char **start, size_t *n)
{
    size_t len = strlen(host);
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        *start = host + 1;
        *n = close ? (size_t)(close - host - 1) : len - 1;
        return;
    }
    const char *colon = strchr(host, ':');
    /* A bare IPv6 address (more than one colon) has no port to remove. */
    if (colon && !strchr(colon + 1, ':'))
        len = (size_t)(colon - host);
    *start = host;
    *n = len;
}

const char *http_guard_check_host(const char *allowed, const char *host, bool http_1_0, char *err,
                                  size_t err_cap)
{
    if (!allowed || !*allowed)
        return NULL;
    if (!host) {
        if (http_1_0)
            return NULL;
        return fail(err, err_cap, "missing Host header (required by HTTP/1.1)");
    }
    const char *name;
    size_t n;
    host_name(host, &name, &n);
    for (const char *p = allowed; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if ((len == 1 && *p == '*') || (len == n && len > 0 && strncasecmp(p, name, n) == 0))
            return NULL;
        if (!end)
            break;
        p = end + 1;
    }
    int shown = n > 64 ? 64 : (int)n;
    /* Only printable ASCII of the client's bytes goes into the message. */
    char safe[65];
    for (int i = 0; i < shown; i++)
        safe[i] = name[i] > 0x20 && name[i] < 0x7f ? name[i] : '?';
    safe[shown] = 0;
    snprintf(err, err_cap, "Host '%s%s' is not allowed here (server.allowed_hosts)", safe,
             n > 64 ? "..." : "");
    return err;
}

const char *http_guard_default_hosts(const char *listen_host)
{
    if (strcmp(listen_host, "localhost") == 0 || strncmp(listen_host, "127.", 4) == 0 ||
        strcmp(listen_host, "::1") == 0)
        return "localhost,127.0.0.1,::1";
    return NULL;
}

const char *http_guard_check_content_type(const char *content_type, const char *binary_header,
                                          const char *origin, char *err, size_t err_cap)
{
    if (binary_header || (!content_type && !origin))
        return NULL;
    if (media_type_is(content_type, "application/json"))
        return NULL;
    return fail(err, err_cap, "Content-Type: expected 'application/json'");
}

const char *http_guard_check_capture(const char *what, const char *s, size_t n, char *err,
                                     size_t err_cap)
{
    if (n == 0 || n > HTTP_GUARD_CAPTURE_MAX) {
        snprintf(err, err_cap, "%s: expected 1 to %d bytes, got %zu", what, HTTP_GUARD_CAPTURE_MAX,
                 n);
        return err;
    }
    size_t bad;
    if (utf8_validate(s, n, &bad) != 0) {
        snprintf(err, err_cap, "%s: invalid UTF-8 at byte %zu", what, bad);
        return err;
    }
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t len = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
            snprintf(err, err_cap, "%s: control character U+%04X at byte %zu", what, (unsigned)cp,
                     i);
            return err;
        }
        i += len;
    }
    return NULL;
}
