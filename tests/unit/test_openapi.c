/* test_openapi: the embedded OpenAPI document is valid JSON, is OpenAPI 3,
 * describes every route of the daemon with the right methods, every $ref
 * resolves, and it is byte-identical to server/openapi.json (not stale). */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "openapi.h"

static json_t *load_doc(void)
{
    json_error_t e;
    json_t *doc = json_loadb(openapi_json, openapi_json_bytes, JSON_REJECT_DUPLICATES, &e);
    if (doc == NULL)
        fail_msg("openapi.json:%d:%d: %s", e.line, e.column, e.text);
    return doc;
}

static void test_valid_json_and_nul_terminated(void **state)
{
    (void)state;
    assert_true(openapi_json_bytes > 1000);
    assert_int_equal(openapi_json[openapi_json_bytes], '\0');
    assert_int_equal(strlen(openapi_json), openapi_json_bytes);
    json_t *doc = load_doc();
    const char *version = json_string_value(json_object_get(doc, "openapi"));
    assert_non_null(version);
    assert_memory_equal(version, "3.", 2);
    assert_non_null(json_string_value(json_object_get(json_object_get(doc, "info"), "title")));
    json_decref(doc);
}

static void test_every_route(void **state)
{
    (void)state;
    static const struct {
        const char *path, *method;
    } routes[] = {
        {"/v1/models", "get"},
        {"/v1/models/{name}", "get"},
        {"/v1/models/{name}/classify", "post"},
        {"/v1/models/{name}/embed", "post"},
        {"/v1/models/{name}/recommend", "post"},
        {"/v1/models/{name}/news/{id}", "put"},
        {"/v2", "get"},
        {"/v2/health/live", "get"},
        {"/v2/health/ready", "get"},
        {"/v2/models/{name}", "get"},
        {"/v2/models/{name}/ready", "get"},
        {"/v2/models/{name}/infer", "post"},
        {"/healthz", "get"},
        {"/readyz", "get"},
        {"/metrics", "get"},
        {"/openapi.json", "get"},
    };
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    assert_true(json_is_object(paths));
    assert_int_equal(json_object_size(paths), sizeof routes / sizeof routes[0]);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        json_t *item = json_object_get(paths, routes[i].path);
        if (!json_is_object(item))
            fail_msg("path %s missing", routes[i].path);
        json_t *op = json_object_get(item, routes[i].method);
        if (!json_is_object(op))
            fail_msg("%s %s missing", routes[i].method, routes[i].path);
        json_t *responses = json_object_get(op, "responses");
        assert_true(json_is_object(responses));
        if (!json_object_get(responses, "200"))
            fail_msg("%s %s has no 200 response", routes[i].method, routes[i].path);
        assert_true(json_object_size(item) == 1); /* one method per path */
    }
    json_decref(doc);
}

static void test_error_shape(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    json_t *err =
        json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "Error");
    json_t *inner = json_object_get(json_object_get(err, "properties"), "error");
    json_t *props = json_object_get(inner, "properties");
    assert_non_null(json_object_get(props, "code"));
    assert_non_null(json_object_get(props, "type"));
    assert_non_null(json_object_get(props, "message"));
    json_decref(doc);
}

/* Every "$ref": "#/a/b/c" names an existing node. */
static void check_refs(json_t *root, json_t *node, int *n_refs)
{
    if (json_is_object(node)) {
        const char *key;
        json_t *value;
        json_object_foreach(node, key, value)
        {
            if (strcmp(key, "$ref") == 0) {
                const char *ref = json_string_value(value);
                assert_non_null(ref);
                assert_memory_equal(ref, "#/", 2);
                json_t *target = root;
                char buf[256];
                snprintf(buf, sizeof buf, "%s", ref + 2);
                for (char *save = NULL, *tok = strtok_r(buf, "/", &save); tok;
                     tok = strtok_r(NULL, "/", &save))
                    target = json_object_get(target, tok);
                if (target == NULL)
                    fail_msg("dangling $ref %s", ref);
                (*n_refs)++;
            } else {
                check_refs(root, value, n_refs);
            }
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *value;
        json_array_foreach(node, i, value) check_refs(root, value, n_refs);
    }
}

static void test_refs_resolve(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    int n_refs = 0;
    check_refs(doc, doc, &n_refs);
    assert_true(n_refs > 50);
    json_decref(doc);
}

static void test_embedded_copy_is_current(void **state)
{
    (void)state;
    FILE *f = fopen("server/openapi.json", "rb"); /* tests run from the repository root */
    if (f == NULL)
        skip();
    char *buf = malloc(openapi_json_bytes + 2);
    assert_non_null(buf);
    size_t n = fread(buf, 1, openapi_json_bytes + 1, f);
    fclose(f);
    assert_int_equal(n, openapi_json_bytes);
    assert_memory_equal(buf, openapi_json, n);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_json_and_nul_terminated),
        cmocka_unit_test(test_every_route),
        cmocka_unit_test(test_error_shape),
        cmocka_unit_test(test_refs_resolve),
        cmocka_unit_test(test_embedded_copy_is_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
