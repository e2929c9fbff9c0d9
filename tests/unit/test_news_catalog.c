/* test_news_catalog: id lookup, add and replace, id errors, growth past the
 * initial capacity, readers concurrent with a writer never seeing a torn
 * vector, and building from a MIND news.tsv with a tiny recommender: every
 * row equals the title encoded alone, and the errors name file and line;
 * news_catalog_bytes against the layout documented in news_catalog.h. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "news_catalog.h"
#include "news_catalog_load.h"
#include "tiny_model.h"

enum { DIM = 4 };

static void vec_of(float v, float *out)
{
    for (int i = 0; i < DIM; i++)
        out[i] = v;
}

static void test_put_get_replace(void **state)
{
    (void)state;
    news_catalog *c = news_catalog_new(DIM, 2);
    assert_non_null(c);
    float v[DIM], got[DIM];
    char err[128];
    bool replaced = true;
    vec_of(1.0f, v);
    assert_int_equal(news_catalog_put(c, "N1", 2, v, &replaced, err, sizeof err), 0);
    assert_false(replaced);
    vec_of(2.0f, v);
    assert_int_equal(news_catalog_put(c, "N2", 2, v, &replaced, err, sizeof err), 0);
    assert_true(news_catalog_get(c, "N1", 2, got));
    assert_true(got[0] == 1.0f && got[3] == 1.0f);
    assert_false(news_catalog_get(c, "N3", 2, got));
    assert_false(news_catalog_get(c, "N", 1, got)); /* a prefix is another id */
    assert_false(news_catalog_get(c, "", 0, got));
    vec_of(9.0f, v);
    assert_int_equal(news_catalog_put(c, "N1", 2, v, &replaced, err, sizeof err), 0);
    assert_true(replaced);
    assert_true(news_catalog_get(c, "N1", 2, got));
    assert_true(got[0] == 9.0f);
    assert_true(news_catalog_get(c, "N2", 2, got));
    assert_true(got[0] == 2.0f);
    assert_int_equal(news_catalog_count(c), 2);
    assert_int_equal(news_catalog_dim(c), DIM);
    news_catalog_release(c);
}

static void test_id_errors(void **state)
{
    (void)state;
    news_catalog *c = news_catalog_new(DIM, 4);
    float v[DIM] = {0};
    char err[128], longid[NEWS_CATALOG_ID_MAX + 2];
    assert_int_equal(news_catalog_put(c, "", 0, v, NULL, err, sizeof err), -1);
    assert_string_equal(err, "news id is empty");
    memset(longid, 'x', sizeof longid);
    assert_int_equal(news_catalog_put(c, longid, NEWS_CATALOG_ID_MAX + 1, v, NULL, err, sizeof err),
                     -1);
    assert_string_equal(err, "news id longer than 128 bytes");
    assert_int_equal(news_catalog_put(c, longid, NEWS_CATALOG_ID_MAX, v, NULL, err, sizeof err), 0);
    assert_int_equal(news_catalog_put(c, "a\0b", 3, v, NULL, err, sizeof err), -1);
    assert_string_equal(err, "news id contains a NUL byte");
    assert_int_equal(news_catalog_count(c), 1);
    news_catalog_release(c);
}

/* Far past the initial capacity: every id keeps its own vector across rehashes. */
static void test_growth(void **state)
{
    (void)state;
    news_catalog *c = news_catalog_new(DIM, 1);
    char id[32], err[128];
    float v[DIM], got[DIM];
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(id, sizeof id, "N%d", i);
        vec_of((float)i, v);
        assert_int_equal(news_catalog_put(c, id, (size_t)n, v, NULL, err, sizeof err), 0);
    }
    assert_int_equal(news_catalog_count(c), 3000);
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(id, sizeof id, "N%d", i);
        assert_true(news_catalog_get(c, id, (size_t)n, got));
        assert_true(got[0] == (float)i && got[DIM - 1] == (float)i);
    }
    news_catalog_release(c);
}

/* news_catalog_bytes, from news_catalog.h's layout: per row of capacity D
 * floats + an 8-byte pointer + three 8-byte fields (id length, title length,
 * updated); each row's text (id, title, category, a NUL each) as a glibc
 * chunk (len + 8 rounded up to 16, at least 32); 4 bytes per slot. The
 * struct itself is private: it cancels in differences, and is bounded here
 * by 512. */
static void test_bytes(void **state)
{
    (void)state;
    news_catalog *c = news_catalog_new(DIM, 5); /* room for 16: 32 slots */
    const size_t empty = 16 * (DIM * 4 + 32) + 32 * 4;
    size_t base = news_catalog_bytes(c);
    assert_true(base >= empty && base <= empty + 512);

    char id[64], err[128];
    float v[DIM];
    vec_of(1.0f, v);
    for (int i = 0; i < 18; i++) { /* "N0" .. "N17": 5 or 6 bytes with the NULs, 32 */
        int n = snprintf(id, sizeof id, "N%d", i);
        assert_int_equal(news_catalog_put(c, id, (size_t)n, v, NULL, err, sizeof err), 0);
    }
    memset(id, 'x', sizeof id);
    assert_int_equal(news_catalog_put(c, id, 21, v, NULL, err, sizeof err), 0); /* 24 + 8: 32 */
    assert_int_equal(news_catalog_put(c, id, 22, v, NULL, err, sizeof err), 0); /* 25 + 8: 48 */
    assert_int_equal(news_catalog_put(c, id, 40, v, NULL, err, sizeof err), 0); /* 43 + 8: 64 */
    /* replacing an item keeps the size of its text */
    assert_int_equal(news_catalog_put(c, "N3", 2, v, NULL, err, sizeof err), 0);
    assert_int_equal(news_catalog_count(c), 21);
    /* 21 rows grew the room to 32, and the slots to 64 */
    const size_t full = 32 * (DIM * 4 + 32) + 18 * 32 + 32 + 48 + 64 + 64 * 4;
    assert_int_equal(news_catalog_bytes(c) - base, full - empty);
    news_catalog_release(c);
}

/* Readers copy while a writer replaces: every copy is one whole vector. */
typedef struct {
    news_catalog *c;
    int torn;
} race;

static void *reader(void *arg)
{
    race *r = arg;
    float got[DIM];
    for (int i = 0; i < 20000; i++) {
        if (!news_catalog_get(r->c, "N1", 2, got))
            continue;
        for (int k = 1; k < DIM; k++)
            if (got[k] != got[0])
                r->torn++;
    }
    return NULL;
}

static void test_concurrent_readers_see_whole_vectors(void **state)
{
    (void)state;
    news_catalog *c = news_catalog_new(DIM, 1);
    race r[2] = {{.c = c}, {.c = c}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &r[i]), 0);
    char err[64], id[16];
    float v[DIM];
    for (int i = 0; i < 5000; i++) {
        vec_of((float)i, v);
        assert_int_equal(news_catalog_put(c, "N1", 2, v, NULL, err, sizeof err), 0);
        int n = snprintf(id, sizeof id, "X%d", i % 200); /* and growth meanwhile */
        assert_int_equal(news_catalog_put(c, id, (size_t)n, v, NULL, err, sizeof err), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].torn, 0);
    }
    news_catalog_release(c);
}

/* ---- building from news.tsv with a tiny recommender ------------------------- */

typedef struct {
    char *dir;
    model *m;
    fastformer_workspace *ws;
} bfix;

static int bsetup(void **state)
{
    bfix *f = calloc(1, sizeof *f);
    f->dir = tiny_model_dir(true, 7);
    char err[512];
    if (model_load(f->dir, &f->m, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    f->ws = model_workspace_new(f->m, 64, 8);
    assert_non_null(f->ws);
    *state = f;
    return 0;
}

static int bteardown(void **state)
{
    bfix *f = *state;
    fastformer_workspace_free(f->ws);
    model_free(f->m);
    tiny_remove(f->dir);
    free(f);
    return 0;
}

static size_t progress_calls;
static char progress_last[256];
static void on_progress(void *user, const char *message)
{
    (void)user;
    snprintf(progress_last, sizeof progress_last, "%s", message);
    progress_calls++;
}

static news_catalog_source source_of(const bfix *f)
{
    return (news_catalog_source){.m = f->m,
                                 .ws = f->ws,
                                 .max_batch_size = 4,
                                 .max_batch_tokens = 30,
                                 .model_name = "rec",
                                 .max_items = SIZE_MAX,
                                 .progress = on_progress};
}

/* Title k's words: lengths vary so that batches are ragged and split. */
static void test_build_matches_single_encodes(void **state)
{
    bfix *f = *state;
    char tsv[8192];
    size_t at = 0;
    const int n_news = 23;
    for (int k = 0; k < n_news; k++) {
        at += (size_t)snprintf(tsv + at, sizeof tsv - at, "N%d\tcat\tsub\t", 100 + k);
        int words = 1 + (k * 5) % (TINY_P + 3); /* some are truncated at P */
        for (int w = 0; w < words; w++)
            at += (size_t)snprintf(tsv + at, sizeof tsv - at, "%sW%d", w ? " " : "",
                                   2 + (k + w * 3) % (TINY_V - 2));
        at += (size_t)snprintf(tsv + at, sizeof tsv - at, "\tabstract\turl\t[]\t[]\r\n");
    }
    news_catalog *c = NULL;
    char err[256] = "";
    progress_calls = 0;
    news_catalog_source src = source_of(f);
    if (news_catalog_build(&src, tsv, at, "news.tsv", &c, err, sizeof err) != 0)
        fail_msg("build: %s", err);
    assert_int_equal(news_catalog_count(c), n_news);
    assert_string_equal(progress_last, "model 'rec': encoded 23/23 news titles");
    assert_int_equal(progress_calls, 1);

    fastformer_workspace *one = model_workspace_new(f->m, TINY_P, 1);
    for (int k = 0; k < n_news; k++) {
        char id[16], title[512];
        int idn = snprintf(id, sizeof id, "N%d", 100 + k);
        size_t tl = 0;
        int words = 1 + (k * 5) % (TINY_P + 3);
        for (int w = 0; w < words; w++)
            tl += (size_t)snprintf(title + tl, sizeof title - tl, "%sW%d", w ? " " : "",
                                   2 + (k + w * 3) % (TINY_V - 2));
        int32_t ids[TINY_P];
        size_t n = 0;
        bool trunc = false;
        assert_int_equal(model_tokenize(f->m, title, tl, ids, &n, &trunc, err, sizeof err), 0);
        assert_int_equal(trunc, words > TINY_P);
        const int32_t *rows[1] = {ids};
        int32_t len = (int32_t)n;
        float want[TINY_D], got[TINY_D];
        model_encode_ids(f->m, one, rows, &len, 1, want);
        assert_true(news_catalog_get(c, id, (size_t)idn, got));
        for (int d = 0; d < TINY_D; d++)
            if (fabsf(got[d] - want[d]) > 1e-5f * (1.0f + fabsf(want[d])))
                fail_msg("N%d[%d] = %.9g, encoded alone %.9g", 100 + k, d, (double)got[d],
                         (double)want[d]);
    }
    fastformer_workspace_free(one);
    news_catalog_release(c);
}

static void test_build_errors(void **state)
{
    bfix *f = *state;
    news_catalog *c = (news_catalog *)1;
    char err[256];
    const char missing[] = "N1\tcat\tsub\tw2 w3\n"
                           "N2\tcat\n";
    news_catalog_source src = source_of(f);
    assert_int_equal(
        news_catalog_build(&src, missing, sizeof missing - 1, "x/news.tsv", &c, err, sizeof err),
        -1);
    assert_null(c);
    assert_string_equal(err, "x/news.tsv:2: column 4 (title) is missing (the line has 2 columns)");

    const char bad_utf8[] = "N1\tcat\tsub\tw2 w3\n"
                            "N2\tcat\tsub\tw2 \xff w3\n";
    c = (news_catalog *)1;
    assert_int_equal(
        news_catalog_build(&src, bad_utf8, sizeof bad_utf8 - 1, "news.tsv", &c, err, sizeof err),
        -1);
    assert_null(c);
    if (strncmp(err, "news.tsv:2: title: ", 19) != 0)
        fail_msg("unexpected error: %s", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_id_errors),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_concurrent_readers_see_whole_vectors),
        cmocka_unit_test_setup_teardown(test_build_matches_single_encodes, bsetup, bteardown),
        cmocka_unit_test_setup_teardown(test_build_errors, bsetup, bteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
