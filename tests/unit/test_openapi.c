/* test_openapi: the embedded OpenAPI document is valid JSON, is OpenAPI 3,
 * and holds exactly the routes of the route table (api_routes.def), each
 * with its method, family (tag) and access (security); every $ref resolves,
 * and it is byte-identical to server/openapi.json (not stale). */
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

#include "api.h"
#include "api_errors.h"
#include "api_frame.h"
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

static const char *method_key(http_method m)
{
    switch (m) {
    case HTTP_GET:
        return "get";
    case HTTP_HEAD:
        return "head";
    case HTTP_POST:
        return "post";
    case HTTP_PUT:
        return "put";
    case HTTP_DELETE:
        return "delete";
    case HTTP_OPTIONS:
    case HTTP_OTHER:
        break;
    }
    fail_msg("a route with method HTTP_OPTIONS or HTTP_OTHER");
    return "";
}

/* The operation's tags hold exactly `tag`. */
static bool tagged(json_t *op, const char *tag)
{
    json_t *tags = json_object_get(op, "tags");
    const char *only = json_string_value(json_array_get(tags, 0));
    return json_array_size(tags) == 1 && only && strcmp(only, tag) == 0;
}

/* An operation is open (no API key) when its security is the empty list. */
static bool open_in_document(json_t *op)
{
    json_t *security = json_object_get(op, "security");
    return json_is_array(security) && json_array_size(security) == 0;
}

/* Every route of the table (api_routes.def) is in the document with its
 * method, its family as the tag, its access and a 200 answer. */
static void test_every_route_is_documented(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    assert_true(json_is_object(paths));
    for (size_t i = 0; i < api_n_routes; i++) {
        const http_route *rt = &api_routes[i];
        const char *method = method_key(rt->method);
        json_t *op = json_object_get(json_object_get(paths, rt->path), method);
        if (!json_is_object(op))
            fail_msg("%s %s is in the route table but not in openapi.json", method, rt->path);
        const char *tag = api_family_tag(api_route_infos[i].family);
        if (!tagged(op, tag))
            fail_msg("%s %s: the table says family '%s', the document's tags differ", method,
                     rt->path, tag);
        if (open_in_document(op) != rt->open)
            fail_msg("%s %s: the table says %s, the document's security says otherwise", method,
                     rt->path, rt->open ? "open" : "API key");
        if (!json_object_get(json_object_get(op, "responses"), "200"))
            fail_msg("%s %s has no 200 response", method, rt->path);
        assert_string_equal(api_route_labels[i], rt->path);
    }
    json_decref(doc);
}

/* ...and every operation of the document is a route of the table. */
static void test_every_documented_route_exists(void **state)
{
    (void)state;
    static const char *const methods[] = {"get",  "put",   "post",  "delete", "options",
                                          "head", "patch", "trace", NULL};
    json_t *doc = load_doc();
    const char *path;
    json_t *item;
    size_t n_ops = 0;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        for (const char *const *m = methods; *m; m++) {
            if (!json_object_get(item, *m))
                continue;
            n_ops++;
            bool found = false;
            for (size_t i = 0; i < api_n_routes && !found; i++)
                found = strcmp(api_routes[i].path, path) == 0 &&
                        strcmp(method_key(api_routes[i].method), *m) == 0;
            if (!found)
                fail_msg("%s %s is in openapi.json but not in the route table", *m, path);
        }
    }
    assert_int_equal(n_ops, api_n_routes);
    json_decref(doc);
}

/* The route table drives the dispatcher: each model route runs the frame
 * with its parser, each other route its own handler. */
static void test_table_consistency(void **state)
{
    (void)state;
    assert_true(api_n_routes >= 16);
    for (size_t i = 0; i < api_n_routes; i++) {
        const api_route_info *info = api_route_info_of(&api_routes[i]);
        assert_ptr_equal(info, &api_route_infos[i]);
        /* the error shape is chosen by the path: the V2 family is exactly /v2 */
        if ((info->family == API_FAMILY_V2) != api_error_path_is_oip(api_routes[i].path))
            fail_msg("%s: family %s, but %s /v2", api_routes[i].path, api_family_tag(info->family),
                     api_error_path_is_oip(api_routes[i].path) ? "under" : "not under");
        /* ... and the TEI family exactly /tei */
        bool tei_path = api_error_shape_of_path(api_routes[i].path) == API_ERROR_SHAPE_TEI;
        if ((info->family == API_FAMILY_TEI) != tei_path)
            fail_msg("%s: family %s, but %s /tei", api_routes[i].path, api_family_tag(info->family),
                     tei_path ? "under" : "not under");
        /* ... and the TorchServe family exactly /ping and /predictions */
        bool ts_path = api_error_shape_of_path(api_routes[i].path) == API_ERROR_SHAPE_TORCHSERVE;
        if ((info->family == API_FAMILY_TORCHSERVE) != ts_path)
            fail_msg("%s: family %s, but %s TorchServe's paths", api_routes[i].path,
                     api_family_tag(info->family), ts_path ? "on" : "not on");
        assert_int_equal(api_route_index(&api_routes[i]), (int)i);
        if (info->model) {
            assert_ptr_equal(api_routes[i].handler, api_frame_handle);
            assert_non_null(info->model->parse);
            assert_non_null(info->model->finish);
            assert_false(api_routes[i].open);
            /* the frame takes the model from the path's first parameter */
            const char *brace = strchr(api_routes[i].path, '{');
            assert_non_null(brace);
            assert_memory_equal(brace, "{name}", 6);
        } else {
            assert_ptr_not_equal(api_routes[i].handler, api_frame_handle);
        }
    }
    assert_int_equal(api_route_index(NULL), METRICS_ROUTE_OTHER);
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
        cmocka_unit_test(test_every_route_is_documented),
        cmocka_unit_test(test_every_documented_route_exists),
        cmocka_unit_test(test_table_consistency),
        cmocka_unit_test(test_error_shape),
        cmocka_unit_test(test_refs_resolve),
        cmocka_unit_test(test_embedded_copy_is_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
