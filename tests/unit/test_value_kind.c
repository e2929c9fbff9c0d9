/* test_value_kind: the type words of error messages, for every JSON type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "value_kind.h"

static void test_every_type_has_its_word(void **state)
{
    (void)state;
    const char *docs[] = {"{}", "[]", "\"s\"", "1", "1.5", "true", "false", "null"};
    const char *names[] = {"object", "array",   "string",  "integer",
                           "number", "boolean", "boolean", "null"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_t *j = json_loads(docs[i], JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        assert_string_equal(value_kind_name(j), names[i]);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_has_its_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
