/* test_fnv1a: the one FNV-1a against the published 64-bit test vectors
 * (Fowler/Noll/Vo), and the incremental form against the one-shot one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fnv1a.h"

static void test_published_vectors(void **state)
{
    (void)state;
    assert_true(fnv1a_64("", 0) == 0xcbf29ce484222325ull);
    assert_true(fnv1a_64("a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(fnv1a_64("foobar", 6) == 0x85944171f73967e8ull);
}

static void test_incremental_equals_one_shot(void **state)
{
    (void)state;
    uint64_t h = fnv1a_64_add(FNV1A_64_OFFSET, "foo", 3);
    h = fnv1a_64_add(h, "bar", 3);
    assert_true(h == fnv1a_64("foobar", 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_vectors),
        cmocka_unit_test(test_incremental_equals_one_shot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
