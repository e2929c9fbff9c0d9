/* test_api_fields: the field checks the request parsers share: each kind's
 * "expected X, got Y" (and "nothing" for a missing value), missing and
 * unknown keys, optional booleans, the body as one JSON object, and verdict
 * messages cut at API_MESSAGE_CAP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_fields.h"

static json_t *obj(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_expect_each_kind(void **state)
{
    (void)state;
    json_t *o = obj("{\"o\": {}, \"a\": [], \"s\": \"x\", \"i\": 1, \"r\": 1.5, \"b\": true, "
                    "\"n\": null}");
    api_verdict v = {0};
    assert_true(api_expect(json_object_get(o, "o"), API_KIND_OBJECT, "o", "an object", &v));
    assert_true(api_expect(json_object_get(o, "a"), API_KIND_ARRAY, "a", "an array", &v));
    assert_true(api_expect(json_object_get(o, "s"), API_KIND_STRING, "s", "a string", &v));
    assert_true(api_expect(json_object_get(o, "i"), API_KIND_INTEGER, "i", "an integer", &v));
    assert_true(api_expect(json_object_get(o, "b"), API_KIND_BOOLEAN, "b", "a boolean", &v));
    assert_int_equal(v.status, 0);

    assert_false(
        api_expect(json_object_get(o, "r"), API_KIND_INTEGER, "top_k", "an integer >= 1", &v));
    assert_int_equal(v.status, 400);
    assert_string_equal(v.message, "top_k: expected an integer >= 1, got number");
    assert_false(api_expect(json_object_get(o, "n"), API_KIND_BOOLEAN, "t", "a boolean", &v));
    assert_string_equal(v.message, "t: expected a boolean, got null");
    assert_false(api_expect(json_object_get(o, "i"), API_KIND_STRING, "id", "a string", &v));
    assert_string_equal(v.message, "id: expected a string, got integer");
    assert_false(api_expect(json_object_get(o, "s"), API_KIND_ARRAY, "x", "an array", &v));
    assert_string_equal(v.message, "x: expected an array, got string");
    assert_false(api_expect(json_object_get(o, "a"), API_KIND_OBJECT, "p", "an object", &v));
    assert_string_equal(v.message, "p: expected an object, got array");
    assert_false(api_expect(json_object_get(o, "b"), API_KIND_INTEGER, "k", "an integer", &v));
    assert_string_equal(v.message, "k: expected an integer, got boolean");
    assert_false(api_expect(NULL, API_KIND_STRING, "inputs[0].name", "a string", &v));
    assert_string_equal(v.message, "inputs[0].name: expected a string, got nothing");
    json_decref(o);
}

static void test_require_keys_and_bools(void **state)
{
    (void)state;
    static const char *const allowed[] = {"inputs", "truncate", NULL};
    json_t *o = obj("{\"inputs\": [], \"truncate\": false}");
    api_verdict v = {0};
    assert_ptr_equal(api_require(o, "inputs", &v), json_object_get(o, "inputs"));
    assert_null(api_require(o, "title", &v));
    assert_int_equal(v.status, 400);
    assert_string_equal(v.message, "missing key 'title'");
    assert_true(api_keys_allowed(o, "", allowed, &v));
    bool t = true;
    assert_true(api_optional_bool(o, "truncate", "truncate", &t, &v));
    assert_false(t);
    t = true;
    assert_true(api_optional_bool(o, "absent", "absent", &t, &v));
    assert_true(t); /* left as is */
    json_decref(o);

    o = obj("{\"inputs\": [], \"truncate\": 0, \"zzz\": 1}");
    assert_false(api_optional_bool(o, "truncate", "parameters.truncate", &t, &v));
    assert_string_equal(v.message, "parameters.truncate: expected a boolean, got integer");
    assert_false(api_keys_allowed(o, "", allowed, &v));
    assert_string_equal(v.message, "unknown key 'zzz' (allowed: inputs, truncate)");
    assert_false(api_keys_allowed(o, "inputs[0]", allowed, &v));
    assert_string_equal(v.message, "inputs[0]: unknown key 'zzz' (allowed: inputs, truncate)");
    json_decref(o);
}

static void test_body_json(void **state)
{
    (void)state;
    api_verdict v = {0};
    assert_null(api_body_json("", 0, &v));
    assert_int_equal(v.status, 400);
    assert_string_equal(v.message, "request body is empty: expected a JSON object");
    assert_null(api_body_json("[]", 2, &v));
    assert_string_equal(v.message, "request body: expected a JSON object, got array");
    assert_null(api_body_json("7", 1, &v));
    assert_string_equal(v.message, "request body: expected a JSON object, got integer");
    assert_null(api_body_json("{\"a\":1} x", 9, &v));
    assert_memory_equal(v.message, "invalid JSON at line 1, column ", 31);
    assert_null(api_body_json("{\"a\":1,\"a\":2}", 13, &v));
    assert_memory_equal(v.message, "invalid JSON at line 1, column ", 31);
    /* NUL inside a string is allowed; the length, not a terminator, bounds the body */
    json_t *j = api_body_json("{\"a\":\"x\\u0000y\"}garbage", 16, &v);
    assert_non_null(j);
    assert_int_equal(json_string_length(json_object_get(j, "a")), 3);
    json_decref(j);
}

static void test_fail_truncates(void **state)
{
    (void)state;
    api_verdict v = {0};
    char long_text[2 * API_MESSAGE_CAP];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = 0;
    assert_int_equal(api_fail(&v, 413, "%s", long_text), 413);
    assert_int_equal(v.status, 413);
    assert_int_equal(strlen(v.message), API_MESSAGE_CAP - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expect_each_kind),
        cmocka_unit_test(test_require_keys_and_bools),
        cmocka_unit_test(test_body_json),
        cmocka_unit_test(test_fail_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
