/* test_news_store: the SQLite news store through the news_store interface:
 * upsert (created / replaced), delete (found / unknown), get, scan with the
 * vectors of the store's digest only, a replaced title dropping the vectors
 * of other digests, put_vectors skipping items written since, the seeded
 * mark, all-or-nothing batches (a bad op, a full database), persistence
 * across reopen, and the refusals at open: a file that is not SQLite, a
 * SQLite file of another application, a newer schema, a damaged page, a
 * missing directory (a read-only disk is tested on a real read-only mount:
 * tests/integration/test_news_store.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "news_store.h"

enum { DIM = 4 };
static const char DIGEST_A[] = "aaaa";
static const char DIGEST_B[] = "bbbb";

typedef struct {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_news_store.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(news_store_path(f->dir, "rec", f->path, sizeof f->path), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static news_store *open_ok(const char *path, const char *digest)
{
    news_store_config cfg = {.location = path, .model_name = "rec", .digest = digest, .dim = DIM};
    news_store *s = NULL;
    char err[256] = "";
    news_store_status st = news_store_open(&cfg, &s, err, sizeof err);
    if (st != NEWS_STORE_OK)
        fail_msg("open %s: %s", path, err);
    return s;
}

static news_store_status open_status(const char *path, char *err, size_t cap)
{
    news_store_config cfg = {.location = path, .model_name = "rec", .digest = DIGEST_A, .dim = DIM};
    news_store *s = NULL;
    news_store_status st = news_store_open(&cfg, &s, err, cap);
    assert_true((st == NEWS_STORE_OK) == (s != NULL));
    news_store_close(s);
    return st;
}

static news_store_op upsert(const char *id, const char *title, const float *vec, int64_t ms)
{
    return (news_store_op){.kind = NEWS_STORE_UPSERT,
                           .item = {.id = id,
                                    .id_len = strlen(id),
                                    .title = title,
                                    .title_len = strlen(title),
                                    .category = "cat",
                                    .category_len = 3,
                                    .updated_ms = ms,
                                    .vector = vec}};
}

static news_store_op delete_op(const char *id)
{
    return (news_store_op){.kind = NEWS_STORE_DELETE, .item = {.id = id, .id_len = strlen(id)}};
}

/* What a scan or get saw. */
typedef struct {
    int n;
    int n_with_vector;
    char title[64];
    float first;
    int64_t updated_ms;
} seen;

static int see(void *user, const news_store_item *it)
{
    seen *s = user;
    s->n++;
    snprintf(s->title, sizeof s->title, "%.*s", (int)it->title_len, it->title);
    s->updated_ms = it->updated_ms;
    if (it->vector) {
        s->n_with_vector++;
        s->first = it->vector[0];
    }
    return 0;
}

static void write_ok(news_store *s, const news_store_op *ops, size_t n, int flags, bool *existed)
{
    char err[256] = "";
    news_store_status st = news_store_write(s, ops, n, flags, existed, err, sizeof err);
    if (st != NEWS_STORE_OK)
        fail_msg("write: %s", err);
}

static void test_write_get_scan_delete(void **state)
{
    fixture *f = *state;
    news_store *s = open_ok(f->path, DIGEST_A);
    float v1[DIM] = {1, 1, 1, 1}, v2[DIM] = {2, 2, 2, 2};
    news_store_op ops[2] = {upsert("N1", "first", v1, 10), upsert("N2", "second", v2, 11)};
    bool existed[2] = {true, true};
    write_ok(s, ops, 2, 0, existed);
    assert_false(existed[0]);
    assert_false(existed[1]);
    news_store_op again = upsert("N1", "first again", v2, 12);
    write_ok(s, &again, 1, 0, existed);
    assert_true(existed[0]);

    seen g = {0};
    char err[256];
    assert_int_equal(news_store_get(s, "N1", 2, see, &g, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.title, "first again");
    assert_true(g.first == 2.0f);
    assert_int_equal(g.updated_ms, 12);
    assert_int_equal(news_store_get(s, "N9", 2, see, &g, err, sizeof err), NEWS_STORE_NOT_FOUND);
    assert_non_null(strstr(err, "no news 'N9'"));

    news_store_op del[2] = {delete_op("N2"), delete_op("N9")};
    write_ok(s, del, 2, 0, existed);
    assert_true(existed[0]);
    assert_false(existed[1]); /* unknown: not an error */
    seen all = {0};
    assert_int_equal(news_store_scan(s, see, &all, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(all.n, 1);
    news_store_info info;
    assert_int_equal(news_store_info_get(s, &info, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(info.n_items, 1);
    assert_false(info.seeded);
    news_store_close(s);

    /* Persistent: a new connection sees exactly that. */
    s = open_ok(f->path, DIGEST_A);
    seen again_seen = {0};
    assert_int_equal(news_store_scan(s, see, &again_seen, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(again_seen.n, 1);
    assert_string_equal(again_seen.title, "first again");
    news_store_close(s);
}

static void test_digests_and_put_vectors(void **state)
{
    fixture *f = *state;
    news_store *a = open_ok(f->path, DIGEST_A);
    float va[DIM] = {1, 0, 0, 0}, vb[DIM] = {7, 0, 0, 0};
    news_store_op ops[2] = {upsert("N1", "t1", va, 100), upsert("N2", "t2", va, 100)};
    write_ok(a, ops, 2, NEWS_STORE_MARK_SEEDED, NULL);
    news_store_close(a);

    /* New weights: no vectors for digest B yet. */
    news_store *b = open_ok(f->path, DIGEST_B);
    char err[256];
    seen sb = {0};
    assert_int_equal(news_store_scan(b, see, &sb, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(sb.n, 2);
    assert_int_equal(sb.n_with_vector, 0);
    news_store_info info;
    assert_int_equal(news_store_info_get(b, &info, err, sizeof err), NEWS_STORE_OK);
    assert_true(info.seeded);
    /* Re-encoded vectors: N2's is stale (written at 100, now 200) and skipped. */
    news_store_op newer = upsert("N2", "t2 new", NULL, 200);
    write_ok(b, &newer, 1, 0, NULL);
    news_store_item items[2] = {{.id = "N1", .id_len = 2, .updated_ms = 100, .vector = vb},
                                {.id = "N2", .id_len = 2, .updated_ms = 100, .vector = vb}};
    assert_int_equal(news_store_put_vectors(b, items, 2, err, sizeof err), NEWS_STORE_OK);
    seen g = {0};
    assert_int_equal(news_store_get(b, "N1", 2, see, &g, err, sizeof err), NEWS_STORE_OK);
    assert_true(g.first == 7.0f);
    seen g2 = {0};
    assert_int_equal(news_store_get(b, "N2", 2, see, &g2, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(g2.n_with_vector, 0);
    news_store_close(b);

    /* Digest A still has N1's vector; N2's went with its old title. */
    a = open_ok(f->path, DIGEST_A);
    seen ga = {0};
    assert_int_equal(news_store_scan(a, see, &ga, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(ga.n, 2);
    assert_int_equal(ga.n_with_vector, 1);
    news_store_close(a);
}

static void test_all_or_nothing(void **state)
{
    fixture *f = *state;
    news_store *s = open_ok(f->path, DIGEST_A);
    float v[DIM] = {1, 2, 3, 4};
    news_store_op first = upsert("keep", "kept", v, 1);
    write_ok(s, &first, 1, 0, NULL);
    char long_id[NEWS_STORE_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    news_store_op ops[2] = {upsert("new", "n", v, 2), upsert(long_id, "bad", v, 2)};
    char err[256];
    assert_int_equal(news_store_write(s, ops, 2, 0, NULL, err, sizeof err), NEWS_STORE_CORRUPT);
    assert_non_null(strstr(err, "news id of 129 bytes"));
    seen g = {0};
    assert_int_equal(news_store_get(s, "new", 3, see, &g, err, sizeof err), NEWS_STORE_NOT_FOUND);

    /* A full database: nothing of the batch, the earlier item intact. */
    assert_int_equal(news_store_sqlite_limit_pages(s, 1, err, sizeof err), NEWS_STORE_OK);
    static char big[20000];
    memset(big, 'b', sizeof big - 1);
    news_store_op fill[3];
    char ids[3][16];
    for (int i = 0; i < 3; i++) {
        snprintf(ids[i], sizeof ids[i], "F%d", i);
        fill[i] = upsert(ids[i], big, v, 3);
    }
    news_store_status st = news_store_write(s, fill, 3, 0, NULL, err, sizeof err);
    assert_int_equal(st, NEWS_STORE_FULL);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "full"));
    seen all = {0};
    assert_int_equal(news_store_scan(s, see, &all, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(all.n, 1);
    assert_string_equal(all.title, "kept");
    news_store_close(s);
    s = open_ok(f->path, DIGEST_A);
    seen after = {0};
    assert_int_equal(news_store_scan(s, see, &after, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(after.n, 1);
    news_store_close(s);
}

static void write_bytes(const char *path, const char *bytes, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, n, fp), n);
    fclose(fp);
}

static void test_refused_files(void **state)
{
    fixture *f = *state;
    char err[512];
    /* Not SQLite at all. */
    static const char junk[4096] = "this is not a database, just text .......";
    write_bytes(f->path, junk, sizeof junk);
    assert_int_equal(open_status(f->path, err, sizeof err), NEWS_STORE_CORRUPT);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "not a database"));
    unlink(f->path);

    /* SQLite, but another application's. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(open_status(f->path, err, sizeof err), NEWS_STORE_CORRUPT);
    assert_non_null(strstr(err, "not a fastformerd news store"));
    unlink(f->path);

    /* Ours, from a newer fastformerd. */
    news_store *s = open_ok(f->path, DIGEST_A);
    news_store_close(s);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 9", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(open_status(f->path, err, sizeof err), NEWS_STORE_CORRUPT);
    assert_non_null(strstr(err, "schema version 9"));
    unlink(f->path);

    /* A page of the news table overwritten: quick_check refuses it. */
    s = open_ok(f->path, DIGEST_A);
    float v[DIM] = {0};
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "N%d", i);
        news_store_op op = upsert(id, "a title long enough to fill some pages of the tree", v, i);
        write_ok(s, &op, 1, 0, NULL);
    }
    news_store_close(s); /* checkpoints the WAL into the file */
    FILE *fp = fopen(f->path, "r+b");
    assert_non_null(fp);
    static char garbage[4096];
    memset(garbage, 0xA5, sizeof garbage);
    assert_int_equal(fseek(fp, 4096 * 2, SEEK_SET), 0);
    assert_int_equal(fwrite(garbage, 1, sizeof garbage, fp), sizeof garbage);
    fclose(fp);
    assert_int_equal(open_status(f->path, err, sizeof err), NEWS_STORE_CORRUPT);
    assert_non_null(strstr(err, f->path));
    unlink(f->path);

    /* A directory that does not exist. */
    char missing[256];
    snprintf(missing, sizeof missing, "%s/no/such/dir/rec.news.sqlite", f->dir);
    news_store_status st = open_status(missing, err, sizeof err);
    assert_int_not_equal(st, NEWS_STORE_OK);
    assert_non_null(strstr(err, missing));
}

static void test_path_and_names(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(news_store_path("var", "movielens-rec", out, sizeof out), 0);
    assert_string_equal(out, "var/movielens-rec.news.sqlite");
    assert_int_equal(news_store_path("var", "movielens-rec", out, 10), -1);
    assert_string_equal(news_store_status_name(NEWS_STORE_FULL), "full");
    assert_string_equal(news_store_status_name(NEWS_STORE_READ_ONLY), "read-only");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_get_scan_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digests_and_put_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_files, setup, teardown),
        cmocka_unit_test(test_path_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
