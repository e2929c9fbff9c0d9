/* test_trace_context: traceparent parsing (every malformation of the W3C
 * Trace Context spec), formatting and fresh ids; cors: the origin syntax and
 * the match of a request's Origin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cors.h"
#include "trace_context.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"

static void test_parse_valid(void **state)
{
    (void)state;
    trace_parent p;
    assert_true(trace_parent_parse("00-" TID "-" PID "-01", &p));
    assert_string_equal(p.trace_id, TID);
    assert_string_equal(p.parent_id, PID);
    assert_int_equal(p.flags, 1);
    assert_true(trace_parent_parse("00-" TID "-" PID "-00", &p));
    assert_int_equal(p.flags, 0);
    /* a later version may carry more fields after a '-' */
    assert_true(trace_parent_parse("01-" TID "-" PID "-03-what-ever", &p));
    assert_int_equal(p.flags, 3);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "junk",
        "00-" TID "-" PID,                                /* no flags */
        "00-" TID "-" PID "-0",                           /* short flags */
        "00-" TID "-" PID "-01-extra",                    /* version 00 is exactly 55 */
        "01-" TID "-" PID "-01extra",                     /* later version: needs a '-' */
        "ff-" TID "-" PID "-01",                          /* version ff is invalid */
        "0g-" TID "-" PID "-01",                          /* non-hex version */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01", /* upper case */
        "00-00000000000000000000000000000000-" PID "-01", /* all-zero trace id */
        "00-" TID "-0000000000000000-01",                 /* all-zero parent id */
        "00_" TID "-" PID "-01",                          /* separators */
        "00-" TID "_" PID "-01",
        "00-" TID "-" PID "_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-" PID "-01x", /* a short trace id */
        "00-" TID "-" PID "-0z",                          /* non-hex flags */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        trace_parent p;
        if (trace_parent_parse(bad[i], &p))
            fail_msg("accepted '%s'", bad[i]);
    }
    trace_parent p;
    assert_false(trace_parent_parse(NULL, &p));
}

static bool all_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

static void test_new_ids_and_format(void **state)
{
    (void)state;
    char t1[TRACE_ID_HEX + 1], s1[TRACE_SPAN_HEX + 1], t2[TRACE_ID_HEX + 1], s2[TRACE_SPAN_HEX + 1];
    trace_ids_new(t1, s1);
    trace_ids_new(t2, s2);
    assert_true(all_hex(t1, 32) && all_hex(t2, 32) && all_hex(s1, 16) && all_hex(s2, 16));
    assert_string_not_equal(t1, t2);
    assert_string_not_equal(s1, s2);
    char out[TRACEPARENT_LEN + 1];
    trace_parent_format(TID, s1, 0x03, out);
    assert_int_equal(strlen(out), TRACEPARENT_LEN);
    trace_parent p;
    assert_true(trace_parent_parse(out, &p)); /* what we send parses */
    assert_string_equal(p.trace_id, TID);
    assert_string_equal(p.parent_id, s1);
    assert_int_equal(p.flags, 1); /* only the sampled bit is kept */
    char want[TRACEPARENT_LEN + 8];
    snprintf(want, sizeof want, "00-%s-%s-01", TID, s1);
    assert_string_equal(out, want);
    trace_parent_format(t2, s2, 0x02, out);
    snprintf(want, sizeof want, "00-%s-%s-00", t2, s2);
    assert_string_equal(out, want);
}

static void test_cors_origin_syntax(void **state)
{
    (void)state;
    static const char *const good[] = {"*",
                                       "https://app.example.com",
                                       "http://localhost:3000",
                                       "http://127.0.0.1:8080",
                                       "http://[::1]:8080",
                                       "chrome-extension://abcdef",
                                       "https://Mixed.Example"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!cors_origin_valid(good[i], strlen(good[i])))
            fail_msg("refused '%s'", good[i]);
    static const char *const bad[] = {"",
                                      "**",
                                      "app.example.com",
                                      "https://",
                                      "https://app.example.com/",
                                      "https://app.example.com/path",
                                      "HTTPS://app.example.com",
                                      "https://app.example.com:",
                                      "https://app.example.com:123456",
                                      "https://a b",
                                      "https://[::1",
                                      "https://[]",
                                      "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cors_origin_valid(bad[i], strlen(bad[i])))
            fail_msg("accepted '%s'", bad[i]);
    char longest[CORS_ORIGIN_MAX + 2] = "http://";
    memset(longest + 7, 'a', CORS_ORIGIN_MAX - 7);
    assert_true(cors_origin_valid(longest, CORS_ORIGIN_MAX));
    longest[CORS_ORIGIN_MAX] = 'a';
    assert_false(cors_origin_valid(longest, CORS_ORIGIN_MAX + 1));
}

static void test_cors_check(void **state)
{
    (void)state;
    char *listed[] = {"https://app.example.com", "http://localhost:3000"};
    char *with_any[] = {"https://app.example.com", "*"};
    assert_int_equal(cors_check(listed, 2, "https://app.example.com"), CORS_LISTED);
    assert_int_equal(cors_check(listed, 2, "HTTPS://APP.example.com"), CORS_LISTED);
    assert_int_equal(cors_check(listed, 2, "http://localhost:3000"), CORS_LISTED);
    assert_int_equal(cors_check(listed, 2, "http://localhost:3001"), CORS_DENIED);
    assert_int_equal(cors_check(listed, 2, "https://app.example.com.evil.net"), CORS_DENIED);
    assert_int_equal(cors_check(listed, 2, NULL), CORS_DENIED);
    assert_int_equal(cors_check(listed, 0, "https://app.example.com"), CORS_DENIED);
    assert_int_equal(cors_check(with_any, 2, "https://app.example.com"), CORS_LISTED);
    assert_int_equal(cors_check(with_any, 2, "https://other.example"), CORS_ANY);
    assert_int_equal(cors_check(with_any, 2, NULL), CORS_DENIED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_new_ids_and_format), cmocka_unit_test(test_cors_origin_syntax),
        cmocka_unit_test(test_cors_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
