/* test_input_ids: the one check of client-given token ids (model/input_ids.h),
 * with the exact messages the API, the CLI and infer_request give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "input_ids.h"

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_one_id_bounds(void **state)
{
    (void)state;
    char err[128] = "";
    assert_int_equal(input_id_check(0, 60, "input_ids", 0, err, sizeof err), 0);
    assert_int_equal(input_id_check(59, 60, "input_ids", 0, err, sizeof err), 0);
    assert_int_equal(input_id_check(60, 60, "inputs[0].input_ids", 3, err, sizeof err), -1);
    assert_string_equal(err, "inputs[0].input_ids[3]: id 60 >= vocab_size 60");
    assert_int_equal(input_id_check(-1, 60, "input_ids", 2, err, sizeof err), -1);
    assert_string_equal(err, "input_ids[2]: id -1 is negative");
    assert_int_equal(input_id_check(99999999999LL, 60, "x", 0, err, sizeof err), -1);
    assert_string_equal(err, "x[0]: id 99999999999 >= vocab_size 60");
}

static void test_json_ids_copied_and_padding_counted(void **state)
{
    (void)state;
    json_t *arr = parse("[5, 0, 7, 0, 0]");
    int32_t ids[8] = {0};
    size_t n_content = 99;
    char err[128] = "";
    assert_int_equal(
        input_ids_from_json(arr, 0, 5, 60, ids, 8, &n_content, "input_ids", 0, err, sizeof err), 0);
    assert_int_equal(n_content, 3);
    assert_int_equal(ids[0], 5);
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[2], 7);

    /* all padding: no content */
    json_t *pad = parse("[0, 0]");
    assert_int_equal(
        input_ids_from_json(pad, 0, 2, 60, ids, 8, &n_content, "input_ids", 0, err, sizeof err), 0);
    assert_int_equal(n_content, 0);
    json_decref(pad);
    json_decref(arr);
}

static void test_json_ids_past_capacity_are_checked_not_written(void **state)
{
    (void)state;
    json_t *arr = parse("[1, 2, 3, 4]");
    int32_t ids[3] = {-7, -7, -7};
    size_t n_content = 0;
    char err[128] = "";
    assert_int_equal(
        input_ids_from_json(arr, 0, 4, 60, ids, 2, &n_content, "input_ids", 0, err, sizeof err), 0);
    assert_int_equal(n_content, 4); /* the caller decides between cutting and 422 */
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], -7);

    json_t *bad = parse("[1, 2, 3, 60]");
    assert_int_equal(
        input_ids_from_json(bad, 0, 4, 60, ids, 2, &n_content, "input_ids", 0, err, sizeof err),
        -1);
    assert_string_equal(err, "input_ids[3]: id 60 >= vocab_size 60");
    json_decref(bad);
    json_decref(arr);
}

/* A slice of a flat array (the OIP tensor's rows) names elements by index_base. */
static void test_json_slice_names_the_flat_index(void **state)
{
    (void)state;
    json_t *arr = parse("[1, 2, 3, 4, true, 6]");
    int32_t ids[3];
    size_t n_content = 0;
    char err[128] = "";
    assert_int_equal(input_ids_from_json(arr, 3, 3, 60, ids, 3, &n_content, "inputs[0].data", 3,
                                         err, sizeof err),
                     -1);
    assert_string_equal(err, "inputs[0].data[4]: expected an integer id, got boolean");
    json_decref(arr);
}

static void test_json_each_rejection(void **state)
{
    (void)state;
    const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"[3, 1.5]", "inputs[0].input_ids[1]: expected an integer id, got number"},
        {"[\"7\"]", "inputs[0].input_ids[0]: expected an integer id, got string"},
        {"[null]", "inputs[0].input_ids[0]: expected an integer id, got null"},
        {"[[1]]", "inputs[0].input_ids[0]: expected an integer id, got array"},
        {"[4, -1]", "inputs[0].input_ids[1]: id -1 is negative"},
        {"[1, 2, 3, 4, 5, 6, 7, 99999]", "inputs[0].input_ids[7]: id 99999 >= vocab_size 60"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        json_t *arr = parse(cases[c].json);
        int32_t ids[16];
        size_t n_content = 0;
        char err[128] = "";
        assert_int_equal(input_ids_from_json(arr, 0, json_array_size(arr), 60, ids, 16, &n_content,
                                             "inputs[0].input_ids", 0, err, sizeof err),
                         -1);
        assert_string_equal(err, cases[c].message);
        json_decref(arr);
    }
}

/* Binary tensor data: little-endian INT64 and INT32, unaligned, each id
 * checked (also past capacity), trailing padding not counted. */
static void test_le_ids(void **state)
{
    (void)state;
    const unsigned char i64[] = {0, /* misaligns the rest */
                                 5,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                 59, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    int32_t ids[2] = {-1, -1};
    size_t n_content = 99;
    char err[128] = "";
    assert_int_equal(input_ids_from_le(i64 + 1, 8, 4, 60, ids, 2, &n_content, "inputs[0].data", 0,
                                       err, sizeof err),
                     0);
    assert_int_equal(n_content, 3); /* 5 0 59 0: the 59 is past the capacity, still counted */
    assert_int_equal(ids[0], 5);
    assert_int_equal(ids[1], 0);

    const unsigned char i32[] = {7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(
        input_ids_from_le(i32, 4, 2, 60, ids, 2, &n_content, "inputs[0].data", 6, err, sizeof err),
        -1);
    assert_string_equal(err, "inputs[0].data[7]: id -1 is negative");
    /* 2^32 as INT64 is not an id, though its low 32 bits are 0 */
    const unsigned char big[] = {0, 0, 0, 0, 1, 0, 0, 0};
    assert_int_equal(input_ids_from_le(big, 8, 1, 60, ids, 2, &n_content, "p", 0, err, sizeof err),
                     -1);
    assert_string_equal(err, "p[0]: id 4294967296 >= vocab_size 60");
    assert_int_equal(input_ids_from_le(NULL, 8, 0, 60, ids, 2, &n_content, "p", 0, err, sizeof err),
                     0);
    assert_int_equal(n_content, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_id_bounds),
        cmocka_unit_test(test_json_ids_copied_and_padding_counted),
        cmocka_unit_test(test_json_ids_past_capacity_are_checked_not_written),
        cmocka_unit_test(test_json_slice_names_the_flat_index),
        cmocka_unit_test(test_json_each_rejection),
        cmocka_unit_test(test_le_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
