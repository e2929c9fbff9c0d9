/* test_route_path: path templates: literal segments, "{...}" captures of one
 * non-empty segment with their spans, and every way a path fails to match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route_path.h"

static void test_matches_and_captures(void **state)
{
    (void)state;
    route_path_span caps[ROUTE_PATH_MAX_CAPTURES];
    assert_int_equal(route_path_match("/healthz", "/healthz", caps), 0);
    assert_int_equal(route_path_match("/v2", "/v2", caps), 0);
    const char *path = "/v1/models/imdb/news/N%2F1";
    assert_int_equal(route_path_match("/v1/models/{name}/news/{id}", path, caps), 2);
    assert_int_equal(caps[0].off, 11);
    assert_int_equal(caps[0].len, 4);
    assert_memory_equal(path + caps[1].off, "N%2F1", 5);
    assert_int_equal(caps[1].len, 5);
    /* any name between the braces; "{}" too */
    assert_int_equal(route_path_match("/a/{}/b", "/a/x/b", caps), 1);
}

static void test_mismatches(void **state)
{
    (void)state;
    route_path_span caps[ROUTE_PATH_MAX_CAPTURES];
    assert_int_equal(route_path_match("/healthz", "/healthz/", caps), -1);
    assert_int_equal(route_path_match("/healthz", "/health", caps), -1);
    assert_int_equal(route_path_match("/healthz", "/healthzz", caps), -1);
    assert_int_equal(route_path_match("/healthz", "healthz", caps), -1);
    assert_int_equal(route_path_match("/healthz", "", caps), -1);
    assert_int_equal(route_path_match("/v2", "/v2/models", caps), -1);
    assert_int_equal(route_path_match("/v1/models/{name}", "/v1/models/", caps), -1);
    assert_int_equal(route_path_match("/v1/models/{name}", "/v1/models//", caps), -1);
    assert_int_equal(route_path_match("/v1/models/{name}", "/v1/models/a/b", caps), -1);
    assert_int_equal(route_path_match("/v1/models/{name}/embed", "/v1/models/a/embedx", caps), -1);
    /* "{" alone or "{x" is a literal segment */
    assert_int_equal(route_path_match("/a/{x", "/a/b", caps), -1);
    assert_int_equal(route_path_match("/a/{x", "/a/{x", caps), 0);
    /* more captures than ROUTE_PATH_MAX_CAPTURES never match */
    assert_int_equal(route_path_match("/{a}/{b}/{c}/{d}/{e}", "/1/2/3/4/5", caps), -1);
    assert_int_equal(route_path_match("/{a}/{b}/{c}/{d}", "/1/2/3/4", caps), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_and_captures),
        cmocka_unit_test(test_mismatches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
