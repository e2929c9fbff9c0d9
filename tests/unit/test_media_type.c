/* test_media_type: media_type_is on either side of each rule: case, blanks,
 * parameters, a longer type that only starts like the wanted one, NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "media_type.h"

static void test_matches(void **state)
{
    (void)state;
    assert_true(media_type_is("application/json", "application/json"));
    assert_true(media_type_is("Application/JSON", "application/json"));
    assert_true(media_type_is(" \tapplication/json", "application/json"));
    assert_true(media_type_is("application/json ", "application/json"));
    assert_true(media_type_is("application/json; charset=utf-8", "application/json"));
    assert_true(media_type_is("application/json ;x=y", "application/json"));
    assert_true(media_type_is("application/octet-stream", "application/octet-stream"));
}

static void test_refuses(void **state)
{
    (void)state;
    assert_false(media_type_is(NULL, "application/json"));
    assert_false(media_type_is("", "application/json"));
    assert_false(media_type_is("application/jsonx", "application/json"));
    assert_false(media_type_is("application/json-seq", "application/json"));
    assert_false(media_type_is("application/jso", "application/json"));
    assert_false(media_type_is("text/plain", "application/json"));
    assert_false(media_type_is("application/json x", "application/json"));
    assert_false(media_type_is("x application/json", "application/json"));
    assert_false(media_type_is("application/json", "application/octet-stream"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches),
        cmocka_unit_test(test_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
