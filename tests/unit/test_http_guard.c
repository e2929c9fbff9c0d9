/* test_http_guard: the transport's strict checks, each rule with a case on
 * either side of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http_guard.h"
#include "oip_binary.h"

static char err[256];

static const char *framing(int n_cl, const char *cl, int n_te, const char *te)
{
    http_guard_framing f = {n_cl, cl, n_te, te};
    return http_guard_check_framing(&f, err, sizeof err);
}

static void test_framing(void **state)
{
    (void)state;
    assert_null(framing(0, NULL, 0, NULL));
    assert_null(framing(1, "0", 0, NULL));
    assert_null(framing(1, "1048576", 0, NULL));
    assert_null(framing(0, NULL, 1, "chunked"));
    assert_null(framing(0, NULL, 1, "Chunked"));
    assert_string_equal(framing(1, "5", 1, "chunked"),
                        "both Content-Length and Transfer-Encoding: send exactly one of them");
    assert_string_equal(framing(2, "5", 0, NULL), "Content-Length is repeated: send it once");
    assert_string_equal(framing(0, NULL, 2, "chunked"),
                        "Transfer-Encoding is repeated: send it once");
    for (const char *bad = "-1\0+1\0 1\0"
                           "1 \0"
                           "0x10\0\0";
         *bad || bad[1]; bad += strlen(bad) + 1)
        assert_string_equal(framing(1, bad, 0, NULL),
                            "Content-Length: expected a non-negative decimal integer");
    assert_string_equal(framing(1, "", 0, NULL),
                        "Content-Length: expected a non-negative decimal integer");
    assert_string_equal(framing(0, NULL, 1, "gzip, chunked"),
                        "Transfer-Encoding: only 'chunked' is supported");
    assert_string_equal(framing(0, NULL, 1, "identity"),
                        "Transfer-Encoding: only 'chunked' is supported");
}

static const char *host(const char *allowed, const char *h, bool v10)
{
    return http_guard_check_host(allowed, h, v10, err, sizeof err);
}

static void test_host(void **state)
{
    (void)state;
    const char *lo = http_guard_default_hosts("127.0.0.1");
    assert_string_equal(lo, "localhost,127.0.0.1,::1");
    assert_string_equal(http_guard_default_hosts("::1"), lo);
    assert_string_equal(http_guard_default_hosts("localhost"), lo);
    assert_string_equal(http_guard_default_hosts("127.0.0.2"), lo);
    assert_null(http_guard_default_hosts("0.0.0.0"));
    assert_null(http_guard_default_hosts("::"));
    assert_null(http_guard_default_hosts("10.1.2.3"));

    assert_null(host(lo, "localhost", false));
    assert_null(host(lo, "LocalHost:8080", false));
    assert_null(host(lo, "127.0.0.1:1", false));
    assert_null(host(lo, "[::1]:8080", false));
    assert_null(host(lo, "::1", false));
    assert_string_equal(host(lo, "evil.example", false),
                        "Host 'evil.example' is not allowed here (server.allowed_hosts)");
    assert_non_null(host(lo, "localhost.evil.example", false));
    assert_non_null(host(lo, "127.0.0.1.nip.io:80", false));
    assert_non_null(host(lo, "[::2]:80", false));
    assert_non_null(host(lo, "", false));
    assert_string_equal(host(lo, NULL, false), "missing Host header (required by HTTP/1.1)");
    assert_null(host(lo, NULL, true));
    /* The client's bytes are shown printable only. */
    assert_string_equal(host(lo, "a\x01\xff", false),
                        "Host 'a?"
                        "?' is not allowed here (server.allowed_hosts)");

    assert_null(host(NULL, "anything", false));
    assert_null(host("", NULL, false));
    assert_null(host("*", "anything", false));
    assert_null(host("api.example, *", "x", false));
    assert_null(host(" api.example , other ", "other:443", false));
    assert_non_null(host("api.example", "api.example.evil", false));
    assert_non_null(host("api.example", "api", false));
}

static void test_content_type(void **state)
{
    (void)state;
    assert_null(
        http_guard_check_content_type("application/json", NULL, "http://a", err, sizeof err));
    assert_null(http_guard_check_content_type("Application/JSON; charset=utf-8", NULL, "http://a",
                                              err, sizeof err));
    assert_null(
        http_guard_check_content_type(" application/json ;x=y", NULL, "http://a", err, sizeof err));
    const char *bad[] = {NULL,
                         "",
                         "text/plain",
                         "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x",
                         "application/jsonp",
                         "application/json-seq",
                         "text/json"};
    /* No Content-Type and no Origin: not a browser (Triton's Python client). */
    assert_null(http_guard_check_content_type(NULL, NULL, NULL, err, sizeof err));
    assert_non_null(http_guard_check_content_type("text/plain", NULL, NULL, err, sizeof err));
    /* The binary tensor extension's requests are left to the route. */
    assert_string_equal(HTTP_GUARD_BINARY_HEADER, OIP_HEADER_LENGTH);
    assert_null(http_guard_check_content_type(NULL, "42", "http://a", err, sizeof err));
    assert_null(
        http_guard_check_content_type("application/octet-stream", "42", NULL, err, sizeof err));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_string_equal(
            http_guard_check_content_type(bad[i], NULL, "http://a", err, sizeof err),
            "Content-Type: expected 'application/json'");
}

static const char *cap(const char *s, size_t n)
{
    return http_guard_check_capture("news id", s, n, err, sizeof err);
}

static void test_capture(void **state)
{
    (void)state;
    assert_null(cap("N1", 2));
    assert_null(cap("caf\xc3\xa9", 5));
    assert_null(cap("\xe2\x82\xac \xf0\x9f\x98\x80", 8));
    char big[HTTP_GUARD_CAPTURE_MAX + 1];
    memset(big, 'a', sizeof big);
    assert_null(cap(big, HTTP_GUARD_CAPTURE_MAX));
    assert_string_equal(cap(big, HTTP_GUARD_CAPTURE_MAX + 1),
                        "news id: expected 1 to 128 bytes, got 129");
    assert_string_equal(cap("", 0), "news id: expected 1 to 128 bytes, got 0");
    assert_string_equal(cap("N\xff", 2), "news id: invalid UTF-8 at byte 1");
    assert_string_equal(cap("ab\xc3", 3), "news id: invalid UTF-8 at byte 2");
    assert_string_equal(cap("\xc0\xaf", 2), "news id: invalid UTF-8 at byte 0");     /* overlong */
    assert_string_equal(cap("\xed\xa0\x80", 3), "news id: invalid UTF-8 at byte 0"); /* surrogate */
    assert_string_equal(cap("a\0b", 3), "news id: control character U+0000 at byte 1");
    assert_string_equal(cap("a\tb", 3), "news id: control character U+0009 at byte 1");
    assert_string_equal(cap("\x7f", 1), "news id: control character U+007F at byte 0");
    assert_string_equal(cap("x\xc2\x9b", 3), "news id: control character U+009B at byte 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_capture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
