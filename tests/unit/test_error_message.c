/* test_error_message: the one error formatter: formats, truncates, always
 * terminates, and accepts no buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "error_message.h"

static void test_formats_and_truncates(void **state)
{
    (void)state;
    char err[16];
    error_message_set(err, sizeof err, "%s: %d", "tensor", 42);
    assert_string_equal(err, "tensor: 42");
    error_message_set(err, sizeof err, "%s", "a message longer than the buffer");
    assert_string_equal(err, "a message longe");
    assert_int_equal(err[15], '\0');
}

static void test_no_buffer(void **state)
{
    (void)state;
    char err[4] = "abc";
    error_message_set(NULL, 0, "%s", "ignored");
    error_message_set(err, 0, "%s", "ignored");
    assert_string_equal(err, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_and_truncates),
        cmocka_unit_test(test_no_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
