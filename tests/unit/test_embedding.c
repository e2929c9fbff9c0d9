/* test_embedding: reading rows of F32 and int8 tables against a naive
 * reference (the product in double, which is exact for an int8 times a
 * float, rounded once to float: what one float multiply gives), for row
 * lengths and block sizes that do and do not fill vector registers, the
 * extreme int8 values, zero scales and the table sizes; rows of factored
 * int8 tables against a naive double loop over the projection (within the
 * rounding bound of a float sum); and the scale, rank and projection checks
 * on parsed tensors (the model loader's messages are tested in
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
        .dtype = EMBEDDING_F32, .n_rows = 3, .dim = 5, .width = 5, .block = 5, .f32 = table};
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
                               .width = dim,
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
    const embedding_table table = {.dtype = EMBEDDING_I8,
                                   .n_rows = 3,
                                   .dim = 4,
                                   .width = 4,
                                   .block = 2,
                                   .i8 = t->data,
                                   .scale = scales};
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

/* Rows of a V x D table factored at rank K with blocks of `block` (dividing
 * K): every row against out[d] = sum_k P[d,k] * q[k] * s, summed in double.
 * Float sums of K terms are within (K + 1) * 2^-24 * sum |term| of it
 * (2 * (K + 2) * FLT_EPSILON / 2 is a safe bound for any summation order). */
static void check_factored(int n_rows, int dim, int rank, int block)
{
    const int groups = rank / block;
    int8_t *q = malloc((size_t)n_rows * (size_t)rank);
    float *scale = malloc((size_t)n_rows * (size_t)groups * sizeof(float));
    float *projection = malloc((size_t)dim * (size_t)rank * sizeof(float));
    float *out = malloc((size_t)dim * sizeof(float));
    float *stored = malloc((size_t)rank * sizeof(float));
    assert_true(q && scale && projection && out && stored);
    for (int i = 0; i < n_rows * rank; i++)
        q[i] = (int8_t)(next_u32() & 0xff);
    q[rank] = -128; /* the extremes, in row 1 */
    if (rank > 1)
        q[rank + 1] = 127;
    for (int i = 0; i < n_rows * groups; i++)
        scale[i] = (float)(next_u32() % 100000u + 1u) * 1e-7f;
    for (int g = 0; g < groups; g++)
        scale[g] = 0.0f; /* row 0: nonzero q, zero scales: zeros */
    for (int i = 0; i < dim * rank; i++)
        projection[i] = ((float)(next_u32() % 200001u) - 100000.0f) * 1e-5f;
    const embedding_table t = {.dtype = EMBEDDING_I8,
                               .n_rows = n_rows,
                               .dim = dim,
                               .width = rank,
                               .block = block,
                               .i8 = q,
                               .scale = scale,
                               .projection = projection};
    for (int r = 0; r < n_rows; r++) {
        const int8_t *row = embedding_row(&t, r);
        assert_ptr_equal(row, q + (size_t)r * (size_t)rank);
        embedding_row_read(&t, row, out);
        /* the stored values the engine projects a chunk at a time: exactly q * scale */
        embedding_row_read_stored(&t, row, stored);
        for (int k = 0; k < rank; k++)
            if (stored[k] !=
                (float)((double)q[r * rank + k] * (double)scale[r * groups + k / block]))
                fail_msg("K=%d block=%d row %d stored [%d]: %.9g, expected q * scale", rank, block,
                         r, k, (double)stored[k]);
        for (int d = 0; d < dim; d++) {
            double want = 0.0, magnitude = 0.0;
            for (int k = 0; k < rank; k++) {
                const double term =
                    (double)projection[(size_t)d * rank + k] *
                    ((double)q[r * rank + k] * (double)scale[r * groups + k / block]);
                want += term;
                magnitude += fabs(term);
            }
            const double tol = (double)(rank + 2) * FLT_EPSILON * magnitude;
            if (!(fabs((double)out[d] - want) <= tol))
                fail_msg("D=%d K=%d block=%d row %d [%d]: %.9g, expected %.9g (tolerance %.3g)",
                         dim, rank, block, r, d, (double)out[d], want, tol);
            if (r == 0)
                assert_true(out[d] == 0.0f);
        }
    }
    assert_int_equal(embedding_row_bytes(&t), (size_t)rank);
    assert_int_equal(embedding_table_bytes(&t), (size_t)n_rows * (size_t)rank +
                                                    (size_t)n_rows * (size_t)groups * 4 +
                                                    (size_t)dim * (size_t)rank * 4);
    free(q);
    free(scale);
    free(projection);
    free(out);
    free(stored);
}

static void test_factored_rows_are_projected(void **state)
{
    (void)state;
    /* {D, K, block}: K below, at and above a multiple of 8, K = 1 and K = D,
     * one scale per row and blocks (G > 1), and the largest K */
    static const int shapes[][3] = {{256, 100, 100}, {256, 100, 25}, {256, 100, 4}, {32, 12, 12},
                                    {32, 12, 3},     {32, 16, 8},    {32, 17, 17},  {8, 1, 1},
                                    {8, 8, 2},       {5, 5, 5},      {3, 2, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_factored(9, shapes[i][0], shapes[i][1], shapes[i][2]);
    check_factored(2, EMBEDDING_MAX_RANK + 3, EMBEDDING_MAX_RANK, 32);
}

/* Parses the image that w holds; the caller frees *img and the result. */
static safetensors *parse_writer(st_writer *w, size_t misalign, unsigned char **img)
{
    size_t len;
    *img = st_writer_finish(w, misalign, &len);
    safetensors *st = NULL;
    char err[256] = "";
    if (safetensors_parse(*img, len, &st, err, sizeof err) != 0)
        fail_msg("parse: %s", err);
    return st;
}

/* embedding_check_rank: 1 <= K <= min(D, EMBEDDING_MAX_RANK). */
static void test_check_rank(void **state)
{
    (void)state;
    st_writer w = {0};
    static float zeros[2 * (EMBEDDING_MAX_RANK + 1)];
    const int64_t ok[2] = {2, 3}, wide[2] = {2, 9}, none[2] = {2, 0}, flat[1] = {6},
                  big[2] = {2, EMBEDDING_MAX_RANK + 1};
    st_writer_add(&w, "ok", "I8", 2, ok, zeros);
    st_writer_add(&w, "wide", "I8", 2, wide, zeros);
    st_writer_add(&w, "none", "I8", 2, none, zeros);
    st_writer_add(&w, "flat", "I8", 1, flat, zeros);
    st_writer_add(&w, "big", "I8", 2, big, zeros);
    unsigned char *img;
    safetensors *st = parse_writer(&w, 0, &img);
    char err[256] = "";
    int rank = 0;
    assert_int_equal(embedding_check_rank(safetensors_find(st, "ok"), 2, 8, &rank, err, sizeof err),
                     0);
    assert_int_equal(rank, 3);
    assert_int_equal(embedding_check_rank(safetensors_find(st, "ok"), 2, 3, &rank, err, sizeof err),
                     0); /* K = D */
    static const struct {
        const char *name;
        int64_t n_rows, dim;
        const char *want;
    } bad[] = {
        {"wide", 2, 8,
         "tensor 'wide' has shape [2,9]: with a projection it must be [2,K] with 1 <= "
         "K <= 8"},
        {"ok", 2, 2,
         "tensor 'ok' has shape [2,3]: with a projection it must be [2,K] with 1 <= K <= 2"},
        {"ok", 3, 8,
         "tensor 'ok' has shape [2,3]: with a projection it must be [3,K] with 1 <= K <= 8"},
        {"none", 2, 8,
         "tensor 'none' has shape [2,0]: with a projection it must be [2,K] with 1 <= "
         "K <= 8"},
        {"flat", 2, 8,
         "tensor 'flat' has shape [6]: with a projection it must be [2,K] with 1 <= K "
         "<= 8"},
        {"big", 2, 4096,
         "tensor 'big' has shape [2,1025]: with a projection it must be [2,K] with 1 "
         "<= K <= 1024 (the largest rank the engine reads)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(embedding_check_rank(safetensors_find(st, bad[i].name), bad[i].n_rows,
                                              bad[i].dim, &rank, err, sizeof err),
                         -1);
        assert_string_equal(err, bad[i].want);
    }
    safetensors_free(st);
    free(img);
}

/* embedding_check_projection: dtype, shape, finite values, and the scale
 * bound FLT_MAX / (256 K max|P|), at which a row of -128s through a
 * projection of max|P| everywhere is still finite. */
static void test_check_projection(void **state)
{
    (void)state;
    enum { V = 2, K = 4, D = 3 };
    const float bound = FLT_MAX / 2048.0f; /* 256 * K * max|P| = 256 * 4 * 2, exact */
    const float q[V * K] = {-128, -128, -128, -128, 1, 2, 3, 4};
    const float s[V] = {bound, 0.5f}, s_over[V] = {0.5f, nextafterf(bound, INFINITY)};
    float p[D * K], p_nan[D * K], p_inf[D * K];
    for (int i = 0; i < D * K; i++)
        p[i] = p_nan[i] = p_inf[i] = i % 3 == 0 ? 2.0f : -1.5f;
    p[1] = 2.0f; /* row 0 of P: all 2, so row 0 of the table sums 4 * 2 * -128 * bound */
    p[2] = p[3] = 2.0f;
    p_nan[7] = NAN;
    p_inf[10] = -INFINITY;
    const int64_t qs[2] = {V, K}, ss[2] = {V, 1}, ps[2] = {D, K}, pt[2] = {K, D}, p1[1] = {D * K};
    st_writer w = {0};
    st_writer_add(&w, "t", "I8", 2, qs, q);
    st_writer_add(&w, "t_scale", "F32", 2, ss, s);
    st_writer_add(&w, "over_scale", "F32", 2, ss, s_over);
    st_writer_add(&w, "p", "F32", 2, ps, p);
    st_writer_add(&w, "p_f16", "F16", 2, ps, p);
    st_writer_add(&w, "p_transposed", "F32", 2, pt, p);
    st_writer_add(&w, "p_flat", "F32", 1, p1, p);
    st_writer_add(&w, "p_nan", "F32", 2, ps, p_nan);
    st_writer_add(&w, "p_inf", "F32", 2, ps, p_inf);
    const float p_zero[D * K] = {0.0f, -0.0f};
    st_writer_add(&w, "p_zero", "F32", 2, ps, p_zero);
    unsigned char *img;
    safetensors *st = parse_writer(&w, 1, &img); /* misaligned F32 data is fine */
    const safetensors_tensor *t = safetensors_find(st, "t"),
                             *scale = safetensors_find(st, "t_scale");
    char err[512] = "";
    int groups = 0, rank = 0;
    assert_int_equal(embedding_check_rank(t, V, D, &rank, err, sizeof err), -1); /* K > D */
    assert_int_equal(embedding_check_rank(t, V, 8, &rank, err, sizeof err), 0);
    assert_int_equal(embedding_check_i8(t, scale, V, K, &groups, err, sizeof err), 0);
    assert_int_equal(
        embedding_check_projection(safetensors_find(st, "p"), scale, D, K, err, sizeof err), 0);

    /* at the bound, the extreme row is finite: -FLT_MAX / 2 */
    float scales[V], proj[D * K], row[D];
    safetensors_to_f32(scale, scales);
    safetensors_to_f32(safetensors_find(st, "p"), proj);
    const embedding_table table = {.dtype = EMBEDDING_I8,
                                   .n_rows = V,
                                   .dim = D,
                                   .width = K,
                                   .block = K,
                                   .i8 = t->data,
                                   .scale = scales,
                                   .projection = proj};
    embedding_row_read(&table, embedding_row(&table, 0), row);
    assert_true(row[0] == -FLT_MAX / 2.0f);
    for (int d = 0; d < D; d++)
        assert_true(isfinite(row[d]));

    static const struct {
        const char *projection, *scale;
        const char *want;
    } bad[] = {
        {"p_f16", "t_scale", "tensor 'p_f16' has dtype F16, expected F32"},
        {"p_transposed", "t_scale", "tensor 'p_transposed' has shape [4,3], expected [3,4]"},
        {"p_flat", "t_scale", "tensor 'p_flat' has shape [12], expected [3,4]"},
        {"p_nan", "t_scale",
         "tensor 'p_nan': element [1,3] is nan; projection values must be finite"},
        {"p_inf", "t_scale",
         "tensor 'p_inf': element [2,2] is -inf; projection values must be finite"},
        {"p", "over_scale",
         "tensor 'over_scale': scale [1,0] is 1.66153499e+35, above FLT_MAX / (256 * K * max|P|) "
         "= 1.6615349e+35 (K = 4, max|P| = 2 in 'p'), so the table's rows could overflow"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(embedding_check_projection(safetensors_find(st, bad[i].projection),
                                                    safetensors_find(st, bad[i].scale), D, K, err,
                                                    sizeof err),
                         -1);
        assert_string_equal(err, bad[i].want);
    }
    assert_int_equal(embedding_check_projection(safetensors_find(st, "p"),
                                                safetensors_find(st, "over_scale"), D, K, NULL, 0),
                     -1);
    /* a zero projection reads every row as zeros: no bound beyond the scale check's */
    assert_int_equal(embedding_check_projection(safetensors_find(st, "p_zero"),
                                                safetensors_find(st, "over_scale"), D, K, err,
                                                sizeof err),
                     0);
    safetensors_free(st);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_rows_are_copied),
        cmocka_unit_test(test_i8_rows_are_q_times_scale),
        cmocka_unit_test(test_check_scales),
        cmocka_unit_test(test_factored_rows_are_projected),
        cmocka_unit_test(test_check_rank),
        cmocka_unit_test(test_check_projection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
