/* test_ascii_digits: ascii_hex16 and ascii_decimal against values written out
 * by hand, at both ends of their ranges, and that neither writes past what it
 * returns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ascii_digits.h"

static void test_hex16(void **state)
{
    (void)state;
    char out[17];
    memset(out, '#', sizeof out);
    ascii_hex16(out, 0);
    assert_memory_equal(out, "0000000000000000#", 17);
    ascii_hex16(out, 0x0123456789abcdefull);
    assert_memory_equal(out, "0123456789abcdef#", 17);
    ascii_hex16(out, UINT64_MAX);
    assert_memory_equal(out, "ffffffffffffffff#", 17);
}

static void check_decimal(uint64_t v, const char *want)
{
    char out[ASCII_DECIMAL_MAX + 1];
    memset(out, '#', sizeof out);
    size_t n = ascii_decimal(out, v);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    for (size_t i = n; i < sizeof out; i++)
        assert_int_equal(out[i], '#');
}

static void test_decimal(void **state)
{
    (void)state;
    check_decimal(0, "0");
    check_decimal(7, "7");
    check_decimal(10, "10");
    check_decimal(65535, "65535");
    check_decimal(1000000007, "1000000007");
    check_decimal(UINT64_MAX, "18446744073709551615");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex16),
        cmocka_unit_test(test_decimal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
