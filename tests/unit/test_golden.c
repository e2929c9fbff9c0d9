/* test_golden: the C engine against PyTorch. Loads every fixture directory
 * under tests/fixtures written by tools/make_fixtures.py (tiny random models
 * with golden.json from tools/fastformer.py, cross-checked there against
 * tests/reference/official_style.py) and checks, for every case:
 * probabilities within 1e-5 absolute; logits, pooled vectors, news and user
 * vectors and scores within 1e-4 relative (1e-5 absolute floor). It also checks
 * that a batch gives the outputs of its sequences run one by one, that right
 * padding run through the engine does not change a result, and that
 * all-padding input pools to exactly zero (logits = classifier bias), and
 * that the F16/BF16 fixtures are served with their file unmapped. The _i8
 * fixtures store the word embedding table in int8 (golden.json
 * "embedding_dtype": "I8"); PyTorch computed their outputs on the
 * dequantized table, and the engine reads the int8 rows as stored.
 * classifier_factored stores an F32 classifier's rank-12 table factored
 * (int8 (V, 12) rows, blocks of 6, and the F32 projection, golden.json
 * "embedding_rank"); PyTorch ran dequant(q, scale) @ P^T.
 * classifier_long runs sequences of up to 64 tokens through both branches of
 * each of the engine's folds.
 * Every check runs once per GEMM kernel path the CPU supports (plain, avx2,
 * avx512), each forced through FASTFORMER_KERNELS before the models load;
 * a path the CPU lacks is skipped with its reason. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>

#include "gemm.h"
#include "model.h"

#define FIXTURES "tests/fixtures"
#define REL_TOL 1e-4
#define ABS_FLOOR 1e-5
#define PROB_TOL 1e-5
/* Batch vs one-by-one and padded vs unpadded: only the summation order of the
 * GEMMs may differ. */
#define SAME_REL 1e-5
#define SAME_ABS 1e-6

enum { MAX_TOKENS = 2048, MAX_SEQS = 256, MAX_D = 64, MAX_C = 8 };

/* ---- helpers ---------------------------------------------------------------- */

typedef struct {
    model *m;
    fastformer_workspace *ws;
    json_t *golden;
    int d;
} fixture;

static void fixture_open(fixture *f, const char *name)
{
    char dir[256], path[300], err[512] = "";
    snprintf(dir, sizeof dir, "%s/%s", FIXTURES, name);
    if (model_load(dir, &f->m, err, sizeof err) != 0)
        fail_msg("model_load(%s): %s", dir, err);
    snprintf(path, sizeof path, "%s/golden.json", dir);
    json_error_t jerr;
    f->golden = json_load_file(path, 0, &jerr);
    if (!f->golden)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    f->ws = model_workspace_new(f->m, MAX_TOKENS, MAX_SEQS);
    assert_non_null(f->ws);
    f->d = f->m->config.encoder.hidden_size;
    assert_true(f->d <= MAX_D);
}

static void fixture_close(fixture *f)
{
    fastformer_workspace_free(f->ws);
    model_free(f->m);
    json_decref(f->golden);
}

static json_t *get(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        fail_msg("golden.json: missing key '%s'", key);
    return v;
}

/* Checks |got - want| <= rel*|want| + abs_floor elementwise. */
static void check_close(const char *what, const char *case_name, int row, const float *got,
                        const double *want, int n, double rel, double abs_floor)
{
    for (int i = 0; i < n; i++) {
        const double diff = fabs((double)got[i] - want[i]);
        if (!(diff <= rel * fabs(want[i]) + abs_floor))
            fail_msg("%s: case '%s' row %d [%d]: got %.9g, want %.9g (diff %.3g)", what, case_name,
                     row, i, (double)got[i], want[i], diff);
    }
}

static void check_same(const char *what, const char *case_name, int row, const float *got,
                       const float *want, int n)
{
    double w[MAX_D];
    assert_true(n <= MAX_D);
    for (int i = 0; i < n; i++)
        w[i] = want[i];
    check_close(what, case_name, row, got, w, n, SAME_REL, SAME_ABS);
}

/* Reads a JSON array of n numbers into out. */
static void read_vec(json_t *arr, double *out, int n)
{
    assert_true(json_is_array(arr));
    assert_int_equal((int)json_array_size(arr), n);
    for (int i = 0; i < n; i++)
        out[i] = json_number_value(json_array_get(arr, (size_t)i));
}

/* Reads a JSON array of ids; returns the count. */
static int read_ids(json_t *arr, int32_t *ids, int cap)
{
    assert_true(json_is_array(arr));
    const int n = (int)json_array_size(arr);
    assert_true(n <= cap);
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)json_integer_value(json_array_get(arr, (size_t)i));
    return n;
}

/* A batch of id sequences from a JSON array of arrays, owned by the struct. */
typedef struct {
    int n;
    int32_t ids[MAX_SEQS][64];
    int32_t len[MAX_SEQS];
    const int32_t *ptr[MAX_SEQS];
} id_batch;

static void batch_read(id_batch *b, json_t *seqs)
{
    assert_true(json_is_array(seqs));
    b->n = (int)json_array_size(seqs);
    assert_true(b->n <= MAX_SEQS);
    for (int s = 0; s < b->n; s++) {
        b->len[s] = read_ids(json_array_get(seqs, (size_t)s), b->ids[s], 64);
        b->ptr[s] = b->ids[s];
    }
}

/* ---- classifier fixtures ---------------------------------------------------- */

/* Runs one case as a batch and checks it against golden.json; returns the
 * pooled vectors and logits through out params for further comparisons. */
static void classifier_case(fixture *f, json_t *c, float *pooled, float *logits)
{
    const char *name = json_string_value(get(c, "name"));
    const int d = f->d, nc = f->m->config.num_labels;
    static id_batch b;
    batch_read(&b, get(c, "input_ids"));
    static float probs[MAX_SEQS * MAX_C];
    model_encode_ids(f->m, f->ws, b.ptr, b.len, b.n, pooled);
    model_classify(f->m, pooled, b.n, logits, probs);
    for (int s = 0; s < b.n; s++) {
        double want[MAX_D];
        read_vec(json_array_get(get(c, "pooled"), (size_t)s), want, d);
        check_close("pooled", name, s, pooled + (size_t)s * d, want, d, REL_TOL, ABS_FLOOR);
        read_vec(json_array_get(get(c, "logits"), (size_t)s), want, nc);
        check_close("logits", name, s, logits + (size_t)s * nc, want, nc, REL_TOL, ABS_FLOOR);
        read_vec(json_array_get(get(c, "probabilities"), (size_t)s), want, nc);
        check_close("probabilities", name, s, probs + (size_t)s * nc, want, nc, 0.0, PROB_TOL);
    }
}

/* mapped: whether model.safetensors stays mapped after load (F32 tensors are
 * read in place), or was released because every tensor was converted (F16,
 * BF16): the outputs below are then computed with no mapping at all. */
/* The model's word embedding table is int8, and factored at rank K, exactly
 * when golden.json says so. */
static void check_embedding_dtype(const fixture *f)
{
    const embedding_table *t = &f->m->word_embedding;
    json_t *e = json_object_get(f->golden, "embedding_dtype");
    const bool i8 = e != NULL && strcmp(json_string_value(e), "I8") == 0;
    assert_int_equal(t->dtype, i8 ? EMBEDDING_I8 : EMBEDDING_F32);
    json_t *rank = json_object_get(f->golden, "embedding_rank");
    assert_int_equal(t->projection != NULL, rank != NULL);
    assert_int_equal(t->width, rank ? json_integer_value(rank) : f->d);
    json_t *block = json_object_get(f->golden, "embedding_block");
    if (i8)
        assert_int_equal(t->block, block ? json_integer_value(block) : t->width);
}

static void classifier_fixture(const char *fixture_name, bool mapped)
{
    fixture f;
    fixture_open(&f, fixture_name);
    assert_int_equal(f.m->config.task, MODEL_TASK_CLASSIFICATION);
    check_embedding_dtype(&f);
    assert_int_equal(f.m->mapped_bytes, mapped ? f.m->weights_bytes : 0);
    assert_true((f.m->file.data != NULL) == mapped);
    const int d = f.d, nc = f.m->config.num_labels;
    assert_true(nc <= MAX_C);
    json_t *cases = get(f.golden, "cases");
    assert_true(json_array_size(cases) >= 10);

    static float pooled[MAX_SEQS * MAX_D], logits[MAX_SEQS * MAX_C];
    static float one_pooled[MAX_D], one_logits[MAX_C];
    static float base_pooled[MAX_D];
    int have_base = 0, checked_padding = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(get(c, "name"));
        classifier_case(&f, c, pooled, logits);

        /* The batch equals its sequences one by one. */
        static id_batch b;
        batch_read(&b, get(c, "input_ids"));
        for (int s = 0; s < b.n; s++) {
            model_encode_ids(f.m, f.ws, &b.ptr[s], &b.len[s], 1, one_pooled);
            model_classify(f.m, one_pooled, 1, one_logits, NULL);
            check_same("batch vs single pooled", name, s, one_pooled, pooled + (size_t)s * d, d);
            check_same("batch vs single logits", name, s, one_logits, logits + (size_t)s * nc, nc);
        }

        /* All padding: exactly the zero vector, logits exactly the bias. */
        for (int s = 0; s < b.n; s++) {
            int any = 0;
            for (int k = 0; k < b.len[s]; k++)
                any |= b.ids[s][k] != 0;
            if (any)
                continue;
            for (int k = 0; k < d; k++)
                assert_true(pooled[(size_t)s * d + k] == 0.0f);
            for (int k = 0; k < nc; k++)
                assert_true(logits[(size_t)s * nc + k] == f.m->classifier_bias[k]);
        }

        if (strcmp(name, "right_padding_base") == 0) {
            memcpy(base_pooled, pooled, (size_t)d * sizeof(float));
            have_base = 1;
        }
        if (json_object_get(c, "same_as")) {
            /* model_encode_ids drops trailing padding; run the padded rows
             * through the engine itself, so the -10000 mask is exercised. */
            assert_true(have_base);
            assert_int_equal(b.n, 1);
            assert_int_equal(b.ids[0][b.len[0] - 1], 0);
            f.ws->seq_start[0] = 0;
            fastformer_gather(f.ws, 0, &f.m->word_embedding, b.ids[0], b.len[0]);
            f.ws->seq_start[1] = b.len[0];
            fastformer_encode(&f.m->encoder, f.ws, 1, one_pooled);
            check_same("right padding through the engine", name, 0, one_pooled, base_pooled, d);
            double want[MAX_D];
            read_vec(json_array_get(get(c, "pooled"), 0), want, d);
            check_close("padded pooled", name, 0, one_pooled, want, d, REL_TOL, ABS_FLOOR);
            checked_padding = 1;
        }
    }
    assert_true(checked_padding);

    /* Every sequence of every case in one ragged batch. */
    static id_batch all;
    all.n = 0;
    static double want_pooled[MAX_SEQS][MAX_D];
    json_array_foreach(cases, i, c)
    {
        json_t *seqs = get(c, "input_ids");
        for (size_t s = 0; s < json_array_size(seqs); s++) {
            assert_true(all.n < MAX_SEQS);
            all.len[all.n] = read_ids(json_array_get(seqs, s), all.ids[all.n], 64);
            all.ptr[all.n] = all.ids[all.n];
            read_vec(json_array_get(get(c, "pooled"), s), want_pooled[all.n], d);
            all.n++;
        }
    }
    model_encode_ids(f.m, f.ws, all.ptr, all.len, all.n, pooled);
    for (int s = 0; s < all.n; s++)
        check_close("pooled (all cases in one batch)", "all", s, pooled + (size_t)s * d,
                    want_pooled[s], d, REL_TOL, ABS_FLOOR);
    fixture_close(&f);
}

/* Forces the kernel path of the test's prestate (a gemm_path) for the
 * models it loads, or skips the test when the CPU cannot run it. */
static void use_path(void **state)
{
    const gemm_path p = *(const gemm_path *)*state;
    if (!gemm_path_supported(p)) {
        printf("skip reason: this CPU cannot run the %s kernels\n", gemm_path_name(p));
        skip();
    }
    setenv("FASTFORMER_KERNELS", gemm_path_name(p), 1);
}

static void test_classifier_f32(void **state)
{
    use_path(state);
    classifier_fixture("classifier_f32", true);
}

static void test_classifier_f16(void **state)
{
    use_path(state);
    classifier_fixture("classifier_f16", false);
}

/* Sequences of up to 64 tokens: both sides of the lengths where the engine
 * folds the key side and transform into dense (model/fastformer.c). */
static void test_classifier_long(void **state)
{
    use_path(state);
    classifier_fixture("classifier_long", true);
}

static void test_classifier_bf16(void **state)
{
    use_path(state);
    classifier_fixture("classifier_bf16", false);
}

/* F16 with an int8 table: nothing is read in place, the table was copied. */
static void test_classifier_i8(void **state)
{
    use_path(state);
    classifier_fixture("classifier_i8", false);
}

/* F32 with a factored int8 table (rank 12 < D, blocks of 6): the int8 rows
 * are read in place, the projection from the model's own copy. */
static void test_classifier_factored(void **state)
{
    use_path(state);
    classifier_fixture("classifier_factored", true);
}

/* ---- news recommender fixture ------------------------------------------------ */

/* Encodes a JSON array of titles into vecs (n, D); returns n. */
static int encode_titles(fixture *f, json_t *titles, float *vecs)
{
    static id_batch b;
    batch_read(&b, titles);
    model_encode_ids(f->m, f->ws, b.ptr, b.len, b.n, vecs);
    return b.n;
}

static void newsrec_fixture(const char *fixture_name)
{
    fixture f;
    fixture_open(&f, fixture_name);
    assert_int_equal(f.m->config.task, MODEL_TASK_NEWS_RECOMMENDATION);
    check_embedding_dtype(&f);
    const int d = f.d;
    const int max_history = (int)json_integer_value(get(f.golden, "max_history"));
    assert_int_equal(f.m->config.user_encoder.max_position_embeddings, max_history);
    static float vecs[MAX_SEQS * MAX_D], user[MAX_SEQS * MAX_D], scores[MAX_SEQS];
    double want[MAX_D];

    /* News vectors of every title, in one batch. */
    json_t *news = get(f.golden, "news");
    const int n_titles = encode_titles(&f, get(news, "input_ids"), vecs);
    for (int s = 0; s < n_titles; s++) {
        read_vec(json_array_get(get(news, "news_vectors"), (size_t)s), want, d);
        check_close("news vector", "news", s, vecs + (size_t)s * d, want, d, REL_TOL, ABS_FLOOR);
    }

    /* Each user alone: history -> news vectors -> user vector; candidates -> scores. */
    json_t *users = get(f.golden, "users");
    static float hist_vecs[MAX_SEQS * MAX_D];
    static int32_t all_start[MAX_SEQS + 1];
    static float all_hist[MAX_SEQS * MAX_D];
    static float single_user[MAX_SEQS * MAX_D];
    int n_all_rows = 0;
    all_start[0] = 0;
    size_t u;
    json_t *c;
    json_array_foreach(users, u, c)
    {
        const char *name = json_string_value(get(c, "name"));
        json_t *history = get(c, "history");
        const int n_hist = (int)json_array_size(history);
        if (n_hist > 0)
            encode_titles(&f, history, hist_vecs);
        int32_t start[2] = {0, n_hist};
        model_encode_users(f.m, f.ws, hist_vecs, start, 1, user);
        read_vec(get(c, "user_vector"), want, d);
        check_close("user vector", name, 0, user, want, d, REL_TOL, ABS_FLOOR);
        if (n_hist == 0)
            for (int k = 0; k < d; k++)
                assert_true(user[k] == 0.0f);
        memcpy(single_user + u * (size_t)d, user, (size_t)d * sizeof(float));

        const int n_cand = encode_titles(&f, get(c, "candidates"), vecs);
        for (int s = 0; s < n_cand; s++) {
            read_vec(json_array_get(get(c, "candidate_vectors"), (size_t)s), want, d);
            check_close("candidate vector", name, s, vecs + (size_t)s * d, want, d, REL_TOL,
                        ABS_FLOOR);
        }
        model_score(f.m, user, vecs, n_cand, scores);
        double want_scores[MAX_SEQS];
        read_vec(get(c, "scores"), want_scores, n_cand);
        check_close("scores", name, 0, scores, want_scores, n_cand, REL_TOL, ABS_FLOOR);

        assert_true(n_all_rows + n_hist <= MAX_SEQS);
        memcpy(all_hist + (size_t)n_all_rows * d, hist_vecs, (size_t)n_hist * d * sizeof(float));
        n_all_rows += n_hist;
        all_start[u + 1] = n_all_rows;
    }

    /* All users in one batch (histories longer than max_history trimmed by
     * model_encode_users) give the same vectors as one by one. */
    const int n_users = (int)json_array_size(users);
    model_encode_users(f.m, f.ws, all_hist, all_start, n_users, user);
    for (int k = 0; k < n_users; k++)
        check_same("user batch vs single", "users", k, user + (size_t)k * d,
                   single_user + (size_t)k * d, d);
    fixture_close(&f);
}

static void test_newsrec(void **state)
{
    use_path(state);
    newsrec_fixture("newsrec");
}

/* F32 with an int8 news table in blocks of 8: the table is read in place. */
static void test_newsrec_i8(void **state)
{
    use_path(state);
    newsrec_fixture("newsrec_i8");
}

/* Every fixture directory tools/make_fixtures.py wrote is one of the above,
 * so a new fixture cannot be left untested. */
static void test_every_fixture_is_checked(void **state)
{
    use_path(state);
    static const char *const known[] = {"classifier_f32",  "classifier_f16",     "classifier_bf16",
                                        "newsrec",         "classifier_i8",      "newsrec_i8",
                                        "classifier_long", "classifier_factored"};
    DIR *dir = opendir(FIXTURES);
    assert_non_null(dir);
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/golden.json", FIXTURES, e->d_name);
        json_t *g = json_load_file(path, 0, NULL);
        if (!g)
            continue;
        json_t *gen = json_object_get(g, "generator");
        if (json_is_string(gen) && strcmp(json_string_value(gen), "tools/make_fixtures.py") == 0) {
            int found = 0;
            for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
                found |= strcmp(known[k], e->d_name) == 0;
            if (!found)
                fail_msg("%s: fixture not covered by test_golden", e->d_name);
            seen++;
        }
        json_decref(g);
    }
    closedir(dir);
    assert_int_equal(seen, (int)(sizeof known / sizeof known[0]));
}

int main(void)
{
    int failed = 0;
    for (int p = 0; p < GEMM_N_PATHS; p++) {
        gemm_path path = (gemm_path)p;
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_prestate(test_classifier_f32, &path),
            cmocka_unit_test_prestate(test_classifier_f16, &path),
            cmocka_unit_test_prestate(test_classifier_bf16, &path),
            cmocka_unit_test_prestate(test_classifier_i8, &path),
            cmocka_unit_test_prestate(test_newsrec, &path),
            cmocka_unit_test_prestate(test_newsrec_i8, &path),
            cmocka_unit_test_prestate(test_classifier_long, &path),
            cmocka_unit_test_prestate(test_classifier_factored, &path),
            cmocka_unit_test_prestate(test_every_fixture_is_checked, &path),
        };
        failed += cmocka_run_group_tests_name(gemm_path_name(path), tests, NULL, NULL);
    }
    unsetenv("FASTFORMER_KERNELS");
    return failed;
}
