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
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "engine_team.h"
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

/* Changes made elsewhere (a shared store's poll) applied in memory only. */
static void test_apply_remote_changes(void **state)
{
    (void)state;
    news_catalog *c = news_catalog_new(DIM, 2);
    float v[DIM], got[DIM];
    char err[128];
    vec_of(3.0f, v);
    news_store_item it = {
        .id = "R1", .id_len = 2, .title = "remote", .title_len = 6, .updated_ms = 42, .vector = v};
    assert_int_equal(news_catalog_apply(c, &it, false, err, sizeof err), 0);
    assert_true(news_catalog_get(c, "R1", 2, got) && got[0] == 3.0f);
    news_catalog_entry e;
    assert_int_equal(news_catalog_describe(c, "R1", 2, &e), 1);
    assert_string_equal(e.title, "remote");
    assert_int_equal(e.updated_ms, 42);
    free(e.title);
    free(e.category);
    news_store_item gone = {.id = "R1", .id_len = 2};
    assert_int_equal(news_catalog_apply(c, &gone, true, err, sizeof err), 0);
    assert_false(news_catalog_get(c, "R1", 2, got));
    assert_int_equal(news_catalog_apply(c, &gone, true, err, sizeof err), 0); /* unknown: no-op */
    news_store_item bad = {.id = "", .id_len = 0, .vector = v};
    assert_int_equal(news_catalog_apply(c, &bad, false, err, sizeof err), -1);
    assert_string_equal(err, "news id is empty");
    assert_int_equal(news_catalog_count(c), 0);
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
 * floats, D int8 and a float scale, (D + 1) / 2 bytes of int4 and three floats, an 8-byte
 * pointer, three 8-byte fields (id length, title length, updated); each row's text (id, title,
 * category, a NUL each) as a glibc chunk (len + 8 rounded up to 16, at least 32); 4 bytes per slot.
 * The struct itself is private: it cancels in differences, and is bounded here by 512. */
static void test_bytes(void **state)
{
    (void)state;
    news_catalog *c = news_catalog_new(DIM, 5); /* room for 16: 32 slots */
    const size_t row = DIM * 5 + 36 + (DIM + 1) / 2 + 12;
    const size_t empty = 16 * row + 32 * 4;
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
    const size_t full = 32 * row + 18 * 32 + 32 + 48 + 64 + 64 * 4;
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

/* news_catalog_top_k against a brute force in double: random vectors with
 * a wide spread of row norms (so the int8 bounds are loose for some rows),
 * some exact ties (equal vectors: newer, then smaller id first), deletes
 * (rows move), skipped ids and a time filter; each query alone and split
 * over a team of 2 and of 3 lanes (lent threads started here), which must
 * give the same answer. */
enum { TK_D = 48, TK_N = 9000 };

/* A team of n lanes with n - 1 lent threads serving it. */
static void tk_team_start(engine_team *t, int n)
{
    char why[160];
    assert_int_equal(engine_team_start(t, n, why, sizeof why), 0);
}

typedef struct {
    char id[16];
    double score;
    int64_t updated;
    bool alive;
} tk_ref;

static int tk_cmp(const void *a, const void *b)
{
    const tk_ref *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->updated != y->updated)
        return x->updated > y->updated ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void test_top_k_equals_brute_force(void **state)
{
    (void)state;
    static float vecs[TK_N][TK_D];
    static tk_ref ref[TK_N];
    news_catalog *c = news_catalog_new(TK_D, 16);
    uint32_t seed = 12345;
    char err[128];
    for (int r = 0; r < TK_N; r++) {
        float norm = (float)(1 + r % 7) * ((r % 11) == 0 ? 20.0f : 1.0f);
        for (int i = 0; i < TK_D; i++) {
            seed = seed * 1664525u + 1013904223u;
            vecs[r][i] = norm * ((float)(seed >> 8) / 16777216.0f - 0.5f);
        }
        if (r % 97 == 5)
            memcpy(vecs[r], vecs[r - 1], sizeof vecs[r]); /* a tie with the previous row */
        snprintf(ref[r].id, sizeof ref[r].id, "T%04d", r);
        ref[r].updated = 1000 + r % 50;
        ref[r].alive = true;
        news_store_item it = {.id = ref[r].id,
                              .id_len = strlen(ref[r].id),
                              .title = "t",
                              .title_len = 1,
                              .updated_ms = ref[r].updated,
                              .vector = vecs[r]};
        assert_int_equal(news_catalog_put_item(c, &it, NULL, err, sizeof err), 0);
    }
    for (int r = 0; r < TK_N; r += 13) {
        news_store_op op = {.kind = NEWS_STORE_DELETE,
                            .item = {.id = ref[r].id, .id_len = strlen(ref[r].id)}};
        news_write_result res;
        assert_int_equal(news_catalog_write(c, &op, 1, NULL, &res), NEWS_WRITE_OK);
        ref[r].alive = false;
    }
    float user[TK_D];
    for (int i = 0; i < TK_D; i++)
        user[i] = (float)((i * 7919) % 23) / 11.0f - 1.0f;
    const char *skip[2] = {"T0001", "T0002"};
    size_t skip_len[2] = {5, 5};
    static news_catalog_hit hits[NEWS_CATALOG_TOP_K_MAX], split[NEWS_CATALOG_TOP_K_MAX];
    static tk_ref want[TK_N];
    int16_t scratch[NEWS_CATALOG_SCRATCH(TK_D)];
    engine_team teams[2];
    tk_team_start(&teams[0], 2);
    tk_team_start(&teams[1], 3);
    for (int mode = 0; mode < 3; mode++) {
        int64_t since = mode == 2 ? 1040 : INT64_MIN;
        int n_want = 0;
        for (int r = 0; r < TK_N; r++) {
            if (!ref[r].alive || ref[r].updated < since || (mode >= 1 && (r == 1 || r == 2)))
                continue;
            want[n_want] = ref[r];
            double s = 0;
            for (int i = 0; i < TK_D; i++)
                s += (double)vecs[r][i] * user[i];
            want[n_want].score = (float)s; /* float scores: ties stay ties */
            n_want++;
        }
        qsort(want, (size_t)n_want, sizeof *want, tk_cmp);
        int ks[] = {1, 10, 200};
        for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
            news_catalog_query q = {.user = user,
                                    .k = ks[t],
                                    .since_ms = since,
                                    .skip = skip,
                                    .skip_len = skip_len,
                                    .n_skip = mode >= 1 ? 2 : 0,
                                    .scratch = scratch};
            int n = news_catalog_top_k(c, &q, hits);
            assert_int_equal(n, ks[t] < n_want ? ks[t] : n_want);
            for (int tm = 0; tm < 2; tm++) {
                q.team = teams[tm].team;
                assert_int_equal(news_catalog_top_k(c, &q, split), n);
                for (int i = 0; i < n; i++) {
                    assert_string_equal(split[i].id, hits[i].id);
                    assert_true(split[i].score == hits[i].score);
                }
            }
            for (int i = 0; i < n; i++) {
                if (fabs(hits[i].score - want[i].score) > 1e-3 * (1 + fabs(want[i].score)))
                    fail_msg("mode %d k %d rank %d: %s %.6f, brute force %s %.6f", mode, ks[t], i,
                             hits[i].id, (double)hits[i].score, want[i].id, want[i].score);
                /* Same item unless two scores are within float rounding. */
                if (strcmp(hits[i].id, want[i].id) != 0 &&
                    fabs(hits[i].score - want[i].score) > 1e-5 * (1 + fabs(want[i].score)))
                    fail_msg("mode %d k %d rank %d: %s, brute force %s", mode, ks[t], i, hits[i].id,
                             want[i].id);
            }
        }
    }
    /* Many random users (rows near the k-th score are where a bound too
     * tight would show), each query split over 3 lanes. */
    for (int u = 0; u < 40; u++) {
        for (int i = 0; i < TK_D; i++) {
            seed = seed * 1664525u + 1013904223u;
            user[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
        }
        int n_want = 0;
        for (int r = 0; r < TK_N; r++) {
            if (!ref[r].alive)
                continue;
            want[n_want] = ref[r];
            double sc = 0;
            for (int i = 0; i < TK_D; i++)
                sc += (double)vecs[r][i] * user[i];
            want[n_want++].score = (float)sc;
        }
        qsort(want, (size_t)n_want, sizeof *want, tk_cmp);
        news_catalog_query q = {.user = user,
                                .k = 50,
                                .since_ms = INT64_MIN,
                                .scratch = scratch,
                                .team = teams[1].team};
        assert_int_equal(news_catalog_top_k(c, &q, hits), 50);
        for (int i = 0; i < 50; i++)
            if (strcmp(hits[i].id, want[i].id) != 0 &&
                fabs(hits[i].score - want[i].score) > 1e-5 * (1 + fabs(want[i].score)))
                fail_msg("user %d rank %d: %s %.6f, brute force %s %.6f", u, i, hits[i].id,
                         (double)hits[i].score, want[i].id, want[i].score);
    }
    /* The zero user: every score 0, the newest first, then the smaller id. */
    news_catalog_query q0 = {.user = NULL, .k = 3, .since_ms = INT64_MIN};
    assert_int_equal(news_catalog_top_k(c, &q0, hits), 3);
    assert_string_equal(hits[0].id, "T0049");
    assert_string_equal(hits[1].id, "T0099");
    assert_true(hits[0].score == 0.0f);
    q0.team = teams[0].team;
    assert_int_equal(news_catalog_top_k(c, &q0, split), 3);
    assert_string_equal(split[1].id, "T0099");
    /* The zero vector given as a vector, and one that is not finite: every
     * row scored in float, still ranked (the NaN scores last or first, but
     * no crash and k results). */
    float zero[TK_D] = {0};
    news_catalog_query qz = {.user = zero, .k = 3, .since_ms = INT64_MIN, .scratch = scratch};
    assert_int_equal(news_catalog_top_k(c, &qz, split), 3);
    assert_string_equal(split[0].id, "T0049");
    assert_true(split[0].score == 0.0f);
    float inf_user[TK_D] = {INFINITY};
    qz.user = inf_user;
    assert_int_equal(news_catalog_top_k(c, &qz, split), 3);
    engine_team_free(&teams[0]);
    engine_team_free(&teams[1]);
    news_catalog_release(c);
}

/* Writers (upserts and deletes through a real SQLite store) and readers
 * (catalog-wide top-k, get, describe) at once; run under TSan by make tsan.
 * Afterwards the store holds exactly what the catalog serves. */
enum { CW_D = 8, CW_IDS = 64, CW_OPS = 300 };

typedef struct {
    news_catalog *c;
    int seed;
    int failures;
} cw_arg;

static void *cw_writer(void *p)
{
    cw_arg *a = p;
    uint32_t x = (uint32_t)a->seed;
    float v[CW_D];
    for (int i = 0; i < CW_OPS; i++) {
        x = x * 1664525u + 1013904223u;
        char id[16];
        snprintf(id, sizeof id, "W%u", (x >> 10) % CW_IDS);
        for (int k = 0; k < CW_D; k++)
            v[k] = (float)((x >> (k + 3)) % 100) / 50.0f - 1.0f;
        news_store_op op = {.kind = (x >> 20) % 3 == 0 ? NEWS_STORE_DELETE : NEWS_STORE_UPSERT,
                            .item = {.id = id,
                                     .id_len = strlen(id),
                                     .title = "a title",
                                     .title_len = 7,
                                     .category = "c",
                                     .category_len = 1,
                                     .vector = v}};
        news_write_result res;
        if (news_catalog_write(a->c, &op, 1, NULL, &res) != NEWS_WRITE_OK)
            a->failures++;
    }
    return NULL;
}

static void *cw_reader(void *p)
{
    cw_arg *a = p;
    float user[CW_D] = {1, -1, 0.5f, 0, 2, 0, -0.5f, 1}, got[CW_D];
    static _Thread_local news_catalog_hit hits[10];
    for (int i = 0; i < CW_OPS; i++) {
        int16_t scratch[NEWS_CATALOG_SCRATCH(CW_D)];
        news_catalog_query q = {.user = user, .k = 10, .since_ms = INT64_MIN, .scratch = scratch};
        int n = news_catalog_top_k(a->c, &q, hits);
        for (int k = 1; k < n; k++)
            if (hits[k].score > hits[k - 1].score)
                a->failures++;
        (void)news_catalog_get(a->c, "W1", 2, got);
        news_catalog_entry e;
        if (news_catalog_describe(a->c, "W2", 2, &e) == 1) {
            if (strcmp(e.title, "a title") != 0)
                a->failures++;
            free(e.title);
            free(e.category);
        }
    }
    return NULL;
}

static int cw_count(void *user, const news_store_item *it)
{
    (void)it;
    ++*(size_t *)user;
    return 0;
}

static void test_concurrent_writers_and_readers_with_a_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_news_catalog.XXXXXX", path[128], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/rec.news.sqlite", dir);
    news_store_config cfg = {.location = path, .model_name = "rec", .digest = "d", .dim = CW_D};
    news_store *store;
    assert_int_equal(news_store_open(&cfg, &store, err, sizeof err), NEWS_STORE_OK);
    news_catalog *c = news_catalog_new(CW_D, 16);
    news_catalog_attach_store(c, store);
    cw_arg args[4] = {{c, 1, 0}, {c, 2, 0}, {c, 3, 0}, {c, 4, 0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, i < 2 ? cw_writer : cw_reader, &args[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    size_t served = news_catalog_count(c);
    news_catalog_release(c); /* closes the store */
    assert_int_equal(news_store_open(&cfg, &store, err, sizeof err), NEWS_STORE_OK);
    size_t stored = 0;
    assert_int_equal(news_store_scan(store, cw_count, &stored, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(stored, served);
    news_store_close(store);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_id_errors),
        cmocka_unit_test(test_apply_remote_changes),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_concurrent_readers_see_whole_vectors),
        cmocka_unit_test(test_top_k_equals_brute_force),
        cmocka_unit_test(test_concurrent_writers_and_readers_with_a_store),
        cmocka_unit_test_setup_teardown(test_build_matches_single_encodes, bsetup, bteardown),
        cmocka_unit_test_setup_teardown(test_build_errors, bsetup, bteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
