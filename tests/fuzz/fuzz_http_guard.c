/* fuzz_http_guard: the transport's strict checks on arbitrary bytes. The
 * input is split at its first two NULs into a Host, an allowed-hosts list and
 * the rest (used as a path capture, a Content-Type and framing values). Every
 * check must return NULL or its err buffer holding a NUL-terminated message,
 * and a capture that passes must be valid UTF-8 without control bytes. */
#include <string.h>

#include "fuzz_common.h"
#include "http_guard.h"
#include "utf8.h"

static void check_verdict(const char *got, const char *err, const char *what)
{
    FUZZ_CHECK(got == NULL || (got == err && memchr(err, 0, 256) && err[0]),
               "%s: a verdict that is not the message buffer", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3);
    FUZZ_CHECK(buf, "out of memory");
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = 0;
    const char *host = buf;
    const char *allowed = host + strlen(host) + 1;
    const char *rest = allowed + strlen(allowed) + 1;
    size_t rest_len = (size_t)(rest - buf) <= size ? size - (size_t)(rest - buf) : 0;
    char err[256];

    check_verdict(http_guard_check_host(allowed, host, size % 2, err, sizeof err), err, "host");
    check_verdict(http_guard_check_host(allowed, NULL, false, err, sizeof err), err, "no host");
    check_verdict(http_guard_check_content_type(size % 7 ? rest : NULL, size % 5 ? NULL : host,
                                                size % 3 ? allowed : NULL, err, sizeof err),
                  err, "content type");
    http_guard_framing f = {(int)(size % 3), rest, (int)(size / 3 % 3), host};
    check_verdict(http_guard_check_framing(&f, err, sizeof err), err, "framing");

    const char *v = http_guard_check_capture("id", rest, rest_len, err, sizeof err);
    check_verdict(v, err, "capture");
    if (!v) {
        size_t bad;
        FUZZ_CHECK(rest_len >= 1 && rest_len <= HTTP_GUARD_CAPTURE_MAX, "length %zu passed",
                   rest_len);
        FUZZ_CHECK(utf8_validate(rest, rest_len, &bad) == 0, "invalid UTF-8 passed");
        for (size_t i = 0; i < rest_len; i++)
            FUZZ_CHECK((unsigned char)rest[i] >= 0x20 && rest[i] != 0x7f, "control byte passed");
    }
    free(buf);
    return 0;
}
