/* test_embedding: reading rows of F32 and int8 tables against a naive
 * reference (the product in double, which is exact for an int8 times a
 * float, rounded once to float: what one float multiply gives), for row
 * lengths and block sizes that do and do not fill vector registers, the
 * extreme int8 values, zero scales and the table sizes; and the scale
 * checks on parsed tensors (the model loader's messages are tested in
 * test_model_load). */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "embedding.h"
#include "st_builder.h"

static uint32_t rng_state = 12345u;

static uint32_t next_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void test_f32_rows_are_copied(void **state)
{
    (void)state;
    const float table[3 * 5] = {0, 0, 0, 0, 0, 1, -2, 3.5f, 1e-30f, -0.0f, 7, 8, 9, 10, 11};
    const embedding_table t = {
        .dtype = EMBEDDING_F32, .n_rows = 3, .dim = 5, .block = 5, .f32 = table};
    float out[5];
    for (int r = 0; r < 3; r++) {
        assert_ptr_equal(embedding_row(&t, r), table + 5 * r);
        embedding_row_read(&t, embedding_row(&t, r), out);
        assert_memory_equal(out, table + 5 * r, sizeof out);
    }
    assert_int_equal(embedding_row_bytes(&t), 20);
    assert_int_equal(embedding_table_bytes(&t), 60);
}

/* Rows of V x D tables with blocks of `block`, every row against the reference. */
static void check_i8(int n_rows, int dim, int block)
{
    const int groups = dim / block;
    int8_t *q = malloc((size_t)n_rows * (size_t)dim);
    float *scale = malloc((size_t)n_rows * (size_t)groups * sizeof(float));
    float *out = malloc((size_t)dim * sizeof(float));
    assert_true(q && scale && out);
    for (int i = 0; i < n_rows * dim; i++)
        q[i] = (int8_t)(next_u32() & 0xff);
    q[dim] = -128; /* the extremes, in row 1 */
    q[dim + 1] = 127;
    for (int i = 0; i < n_rows * groups; i++)
        scale[i] = (float)(next_u32() % 100000u) * 1e-7f;
    for (int g = 0; g < groups; g++)
        scale[g] = 0.0f;              /* row 0 has nonzero q but zero scales: it reads as zeros */
    scale[groups] = 3.0e38f / 128.0f; /* near the top of the float range */
    const embedding_table t = {.dtype = EMBEDDING_I8,
                               .n_rows = n_rows,
                               .dim = dim,
                               .block = block,
                               .i8 = q,
                               .scale = scale};
    for (int r = 0; r < n_rows; r++) {
        const int8_t *row = embedding_row(&t, r);
        assert_ptr_equal(row, q + (size_t)r * (size_t)dim);
        embedding_row_read(&t, row, out);
        for (int j = 0; j < dim; j++) {
            const double want = (double)q[r * dim + j] * (double)scale[r * groups + j / block];
            if (out[j] != (float)want)
                fail_msg("D=%d block=%d row %d [%d]: %.9g, expected %.9g", dim, block, r, j,
                         (double)out[j], want);
            if (r == 0)
                assert_true(out[j] == 0.0f);
        }
    }
    assert_int_equal(embedding_row_bytes(&t), (size_t)dim);
    assert_int_equal(embedding_table_bytes(&t),
                     (size_t)n_rows * (size_t)dim + (size_t)n_rows * (size_t)groups * 4);
    free(q);
    free(scale);
    free(out);
}

static void test_i8_rows_are_q_times_scale(void **state)
{
    (void)state;
    static const int shapes[][2] = {{256, 256}, {256, 32}, {256, 1}, {32, 32}, {32, 8},
                                    {12, 12},   {12, 4},   {12, 3},  {1, 1},   {100, 25}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_i8(17, shapes[i][0], shapes[i][1]);
}

/* embedding_check_i8 on parsed tensors: the happy path gives G. */
static void test_check_scales(void **state)
{
    (void)state;
    st_writer w = {0};
    const int64_t qs[2] = {3, 4}, ss[2] = {3, 2}, bad[2] = {3, 3};
    const float qv[12] = {-128, 0, 0, 127}, sv[9] = {EMBEDDING_MAX_SCALE, 0, 1, 2, 3, 4, 0, 0, 0};
    st_writer_add(&w, "t", "I8", 2, qs, qv);
    st_writer_add(&w, "t_scale", "F32", 2, ss, sv);
    st_writer_add(&w, "u_scale", "F32", 2, bad, sv);
    size_t len;
    unsigned char *img = st_writer_finish(&w, 1, &len); /* misaligned scales are fine */
    safetensors *st = NULL;
    char err[256] = "";
    assert_int_equal(safetensors_parse(img, len, &st, err, sizeof err), 0);
    const safetensors_tensor *t = safetensors_find(st, "t");
    int groups = 0;
    assert_int_equal(
        embedding_check_i8(t, safetensors_find(st, "t_scale"), 3, 4, &groups, err, sizeof err), 0);
    assert_int_equal(groups, 2);
    /* the largest scale keeps q * scale finite, even for -128 */
    float scales[6], row[4];
    safetensors_to_f32(safetensors_find(st, "t_scale"), scales);
    const embedding_table table = {
        .dtype = EMBEDDING_I8, .n_rows = 3, .dim = 4, .block = 2, .i8 = t->data, .scale = scales};
    embedding_row_read(&table, embedding_row(&table, 0), row);
    assert_true(row[0] == -FLT_MAX && row[1] == 0.0f && row[2] == 0.0f && row[3] == 0.0f);
    assert_true(EMBEDDING_MAX_SCALE * 128.0f == FLT_MAX);
    assert_int_equal(
        embedding_check_i8(t, safetensors_find(st, "u_scale"), 3, 4, &groups, err, sizeof err), -1);
    assert_string_equal(err, "tensor 'u_scale' has shape [3,3]: expected [3,G] with G dividing 4");
    assert_int_equal(embedding_check_i8(t, NULL, 3, 4, &groups, err, sizeof err), -1);
    assert_string_equal(err, "tensor 't' is I8, but its scales 't_scale' are missing");
    assert_int_equal(embedding_check_i8(t, NULL, 3, 4, &groups, NULL, 0), -1);
    safetensors_free(st);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_rows_are_copied),
        cmocka_unit_test(test_i8_rows_are_q_times_scale),
        cmocka_unit_test(test_check_scales),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
