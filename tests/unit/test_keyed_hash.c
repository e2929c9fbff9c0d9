/* test_keyed_hash: SipHash-2-4 against the reference implementation's test
 * vectors (key 00..0f, message 00..n-1), and the process key: stable within
 * the process, and not the all-zero or the reference key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyed_hash.h"

static void test_reference_vectors(void **state)
{
    (void)state;
    uint8_t key[16], msg[16];
    for (int i = 0; i < 16; i++)
        key[i] = msg[i] = (uint8_t)i;
    /* vectors.h of github.com/veorq/SipHash, read as little-endian words */
    assert_true(keyed_hash_with(key, msg, 0) == 0x726fdb47dd0e0e31ull);
    assert_true(keyed_hash_with(key, msg, 1) == 0x74f839c593dc67fdull);
    assert_true(keyed_hash_with(key, msg, 8) == 0x93f5f5799a932462ull);
    assert_true(keyed_hash_with(key, msg, 15) == 0xa129ca6149be45e5ull);
}

static void test_process_key_is_random_and_stable(void **state)
{
    (void)state;
    uint8_t zero[16] = {0}, ref[16];
    for (int i = 0; i < 16; i++)
        ref[i] = (uint8_t)i;
    const char id[] = "N12345";
    uint64_t h = keyed_hash(id, sizeof id - 1);
    assert_true(keyed_hash(id, sizeof id - 1) == h);
    assert_true(h != keyed_hash_with(zero, id, sizeof id - 1));
    assert_true(h != keyed_hash_with(ref, id, sizeof id - 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_process_key_is_random_and_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
