/* test_news_store_postgresql: the PostgreSQL news store through the
 * news_store interface, against a real server (Debian's postgresql, a fresh
 * cluster in a temporary directory: without FASTFORMERD_TEST_PG_DSN the test
 * re-runs itself through tests/integration/pgserver.py, which starts one).
 *
 * Upsert (created / replaced), delete (found / unknown), get, scan with the
 * vectors of the store's digest only, put_vectors skipping items written
 * since, the seeded mark, all-or-nothing batches, one model's rows apart from
 * another's, poll between two stores (another writer's changes in order, not
 * one's own; deletes), the statuses: unreachable at open, a DSN that does not
 * parse, a newer schema, a wrong-size vector, a read-only database; the
 * server stopped (writes UNAVAILABLE at once, reachable() false, poll quiet)
 * and started again (both stores recover, a write made meanwhile by the
 * other is polled); a rewound table read again. And news_catalog_sync over
 * such stores: another catalog's writes applied, with the store's vectors
 * or, under other weights, the encoder's; an encoder that fails skips the
 * item with its message; concurrent writers on three replicas (shared ids
 * written and deleted by several), each replica syncing and one serving
 * reads (run under TSan by make tsan): every replica ends equal to the
 * table. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "mono_clock.h"
#include "news_catalog.h"
#include "news_store.h"

enum { DIM = 4 };
static const char DIGEST_A[] = "aaaa";
static const char DIGEST_B[] = "bbbb";
static const char *dsn;
static int model_counter;

/* Each test uses its own model name: the table is shared, as by replicas. */
typedef struct {
    char model[32];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->model, sizeof f->model, "rec%d-%ld", ++model_counter, (long)getpid());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void admin_sql(const char *sql)
{
    PGconn *c = PQconnectdb(dsn);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

static void pg_ctl(const char *action)
{
    const char *ctl = getenv("FASTFORMERD_TEST_PG_CTL");
    assert_non_null(ctl);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null", ctl, action);
    assert_int_equal(system(cmd), 0);
}

static news_store *open_ok(const char *model_name, const char *digest)
{
    news_store_config cfg = {
        .location = dsn, .model_name = model_name, .digest = digest, .dim = DIM};
    news_store *s = NULL;
    char err[256] = "";
    news_store_status st = news_store_open(&cfg, &s, err, sizeof err);
    if (st != NEWS_STORE_OK)
        fail_msg("open %s: %s", dsn, err);
    assert_string_equal(s->kind, "postgresql");
    assert_null(strstr(s->location, "fastformerd@")); /* no user name in messages */
    return s;
}

static news_store_status open_status(const char *location, const char *model_name, char *err,
                                     size_t cap)
{
    news_store_config cfg = {
        .location = location, .model_name = model_name, .digest = DIGEST_A, .dim = DIM};
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
                                    .category = "news",
                                    .category_len = 4,
                                    .updated_ms = ms,
                                    .vector = vec}};
}

static news_store_op delete_op(const char *id, int64_t ms)
{
    return (news_store_op){.kind = NEWS_STORE_DELETE,
                           .item = {.id = id, .id_len = strlen(id), .updated_ms = ms}};
}

static void write_ok(news_store *s, const news_store_op *ops, size_t n, int flags, bool *existed)
{
    char err[256] = "";
    news_store_status st = news_store_write(s, ops, n, flags, existed, err, sizeof err);
    if (st != NEWS_STORE_OK)
        fail_msg("write: %s: %s", news_store_status_name(st), err);
}

/* What scan, get and poll saw, in order. */
typedef struct {
    int n;
    char ids[16][16];
    char titles[16][32];
    bool deleted[16];
    bool has_vec[16];
    float vec0[16];
    int64_t updated_ms[16];
} seen;

static int see(seen *w, const news_store_item *it, bool deleted)
{
    assert_true(w->n < 16);
    snprintf(w->ids[w->n], sizeof w->ids[0], "%.*s", (int)it->id_len, it->id);
    snprintf(w->titles[w->n], sizeof w->titles[0], "%.*s", (int)it->title_len,
             it->title ? it->title : "");
    w->deleted[w->n] = deleted;
    w->has_vec[w->n] = it->vector != NULL;
    w->vec0[w->n] = it->vector ? it->vector[0] : 0;
    w->updated_ms[w->n] = it->updated_ms;
    w->n++;
    return 0;
}

static int see_item(void *user, const news_store_item *it)
{
    return see(user, it, false);
}

static int see_change(void *user, const news_store_item *it, bool deleted)
{
    return see(user, it, deleted);
}

static int find(const seen *w, const char *id)
{
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->ids[i], id))
            return i;
    return -1;
}

static seen scan_all(news_store *s)
{
    seen w = {0};
    char err[256];
    assert_int_equal(news_store_scan(s, see_item, &w, err, sizeof err), NEWS_STORE_OK);
    return w;
}

/* Polls until fn saw at least `want` changes (the notification is
 * asynchronous) or 20 s passed. */
static seen poll_until(news_store *s, int want)
{
    seen w = {0};
    char err[256] = "";
    int64_t deadline = mono_clock_us() + 20 * 1000000;
    while (w.n < want && mono_clock_us() < deadline) {
        news_store_status st = news_store_poll(s, see_change, &w, err, sizeof err);
        if (st != NEWS_STORE_OK)
            fail_msg("poll: %s: %s", news_store_status_name(st), err);
        usleep(20000);
    }
    return w;
}

static void test_write_get_scan_delete(void **state)
{
    fixture *f = *state;
    news_store *s = open_ok(f->model, DIGEST_A);
    float v1[DIM] = {1, 2, 3, 4}, v2[DIM] = {5, 6, 7, 8};
    news_store_op ops[2] = {upsert("N1", "first \"quoted\" \\ title", v1, 1000),
                            upsert("N2", "second", NULL, 1001)};
    bool existed[2] = {true, true};
    write_ok(s, ops, 2, NEWS_STORE_MARK_SEEDED, existed);
    assert_false(existed[0]);
    assert_false(existed[1]);

    ops[0] = upsert("N1", "first, again", v2, 2000);
    write_ok(s, ops, 1, 0, existed);
    assert_true(existed[0]);

    seen g = {0};
    char err[256];
    assert_int_equal(news_store_get(s, "N1", 2, see_item, &g, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.titles[0], "first, again");
    assert_true(g.has_vec[0]);
    assert_true(g.vec0[0] == 5.0f);
    assert_int_equal(g.updated_ms[0], 2000);

    seen all = scan_all(s);
    assert_int_equal(all.n, 2);
    int i2 = find(&all, "N2");
    assert_true(i2 >= 0);
    assert_false(all.has_vec[i2]);

    news_store_info info;
    assert_int_equal(news_store_info_get(s, &info, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(info.n_items, 2);
    assert_true(info.seeded);

    news_store_op del[2] = {delete_op("N2", 3000), delete_op("nope", 3000)};
    write_ok(s, del, 2, 0, existed);
    assert_true(existed[0]);
    assert_false(existed[1]);
    assert_int_equal(news_store_get(s, "N2", 2, see_item, &g, err, sizeof err),
                     NEWS_STORE_NOT_FOUND);
    assert_non_null(strstr(err, "N2"));
    assert_int_equal(news_store_info_get(s, &info, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(info.n_items, 1);

    /* Re-created after a delete: created again. */
    ops[0] = upsert("N2", "back", NULL, 4000);
    write_ok(s, ops, 1, 0, existed);
    assert_false(existed[0]);
    assert_int_equal(news_store_up(s), 1);
    news_store_close(s);

    /* Another model in the same table sees nothing of this one. */
    char other[40];
    snprintf(other, sizeof other, "%s-other", f->model);
    news_store *o = open_ok(other, DIGEST_A);
    assert_int_equal(scan_all(o).n, 0);
    assert_int_equal(news_store_info_get(o, &info, err, sizeof err), NEWS_STORE_OK);
    assert_false(info.seeded);
    news_store_close(o);
}

/* Two replicas started together both seed the empty store: one seed wins
 * whole, the other writes nothing. */
static void test_seed_once(void **state)
{
    fixture *f = *state;
    news_store *a = open_ok(f->model, DIGEST_A);
    news_store *b = open_ok(f->model, DIGEST_A);
    news_store_info info;
    char err[256];
    assert_int_equal(news_store_info_get(b, &info, err, sizeof err), NEWS_STORE_OK);
    assert_false(info.seeded);
    float v[DIM] = {1, 2, 3, 4};
    news_store_op seed_a[2] = {upsert("N1", "from a", v, 1), upsert("N2", "from a", v, 1)};
    news_store_op seed_b[3] = {upsert("N1", "from b", v, 2), upsert("N3", "from b", v, 2),
                               upsert("N4", "from b", v, 2)};
    write_ok(a, seed_a, 2, NEWS_STORE_MARK_SEEDED, NULL);
    bool existed[3] = {true, true, true};
    write_ok(b, seed_b, 3, NEWS_STORE_MARK_SEEDED, existed);
    assert_false(existed[0] || existed[1] || existed[2]);
    seen all = scan_all(b);
    assert_int_equal(all.n, 2);
    assert_string_equal(all.titles[find(&all, "N1")], "from a");
    assert_int_equal(find(&all, "N3"), -1);
    /* A plain write after the seed is written, of course. */
    write_ok(b, seed_b + 1, 1, 0, NULL);
    assert_int_equal(scan_all(a).n, 3);
    news_store_close(a);
    news_store_close(b);
}

static void test_digests_and_put_vectors(void **state)
{
    fixture *f = *state;
    news_store *a = open_ok(f->model, DIGEST_A);
    float va[DIM] = {1, 1, 1, 1}, vb[DIM] = {2, 2, 2, 2};
    news_store_op ops[2] = {upsert("N1", "one", va, 100), upsert("N2", "two", va, 100)};
    write_ok(a, ops, 2, 0, NULL);

    news_store *b = open_ok(f->model, DIGEST_B);
    seen all = scan_all(b);
    assert_int_equal(all.n, 2);
    assert_false(all.has_vec[0] || all.has_vec[1]);
    /* N2 was written again since b read it (updated 100 -> 200): skipped. */
    ops[0] = upsert("N2", "two, new", va, 200);
    write_ok(a, ops, 1, 0, NULL);
    news_store_item items[2] = {{.id = "N1", .id_len = 2, .updated_ms = 100, .vector = vb},
                                {.id = "N2", .id_len = 2, .updated_ms = 100, .vector = vb}};
    char err[256];
    assert_int_equal(news_store_put_vectors(b, items, 2, err, sizeof err), NEWS_STORE_OK);
    all = scan_all(b);
    assert_true(all.has_vec[find(&all, "N1")]);
    assert_true(all.vec0[find(&all, "N1")] == 2.0f);
    assert_false(all.has_vec[find(&all, "N2")]);
    /* a's vectors are still there; a new title drops b's. */
    all = scan_all(a);
    assert_true(all.vec0[find(&all, "N1")] == 1.0f);
    ops[0] = upsert("N1", "one, new", va, 300);
    write_ok(a, ops, 1, 0, NULL);
    all = scan_all(b);
    assert_false(all.has_vec[find(&all, "N1")]);
    news_store_close(a);
    news_store_close(b);
}

static void test_all_or_nothing(void **state)
{
    fixture *f = *state;
    news_store *s = open_ok(f->model, DIGEST_A);
    float v[DIM] = {1, 2, 3, 4};
    /* The second title is not UTF-8: the server refuses it, and the first
     * op is not written either. */
    news_store_op ops[2] = {upsert("N1", "fine", v, 1), upsert("N2", "bad \xff", v, 1)};
    char err[256] = "";
    bool existed[2];
    news_store_status st =
        news_store_write(s, ops, 2, NEWS_STORE_MARK_SEEDED, existed, err, sizeof err);
    assert_int_equal(st, NEWS_STORE_IO);
    assert_non_null(strstr(err, "postgresql://127.0.0.1:"));
    assert_non_null(strstr(err, "UTF8"));
    assert_int_equal(scan_all(s).n, 0);
    news_store_info info;
    assert_int_equal(news_store_info_get(s, &info, err, sizeof err), NEWS_STORE_OK);
    assert_false(info.seeded);
    /* The connection is still good. */
    write_ok(s, ops, 1, 0, existed);
    assert_int_equal(scan_all(s).n, 1);
    news_store_close(s);
}

static void test_poll_between_stores(void **state)
{
    fixture *f = *state;
    news_store *a = open_ok(f->model, DIGEST_A);
    news_store *b = open_ok(f->model, DIGEST_A);
    float v[DIM] = {9, 9, 9, 9};
    news_store_op ops[3] = {upsert("N1", "one", v, 10), upsert("N2", "two", NULL, 10),
                            upsert("N1", "one, twice", v, 11)};
    write_ok(a, ops, 3, 0, NULL);
    seen w = poll_until(b, 2);
    assert_int_equal(w.n, 2); /* each changed row once, in its current state */
    assert_string_equal(w.ids[0], "N2");
    assert_string_equal(w.ids[1], "N1");
    assert_string_equal(w.titles[1], "one, twice");
    assert_true(w.has_vec[1] && w.vec0[1] == 9.0f);
    assert_false(w.deleted[0] || w.deleted[1]);

    /* b's own writes are not polled back by b; a sees them, and a delete. */
    news_store_op mine[2] = {upsert("N3", "three", v, 12), delete_op("N2", 13)};
    write_ok(b, mine, 2, 0, NULL);
    w = poll_until(a, 2);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.ids[0], "N3");
    assert_string_equal(w.ids[1], "N2");
    assert_true(w.deleted[1]);
    assert_null(strstr(w.titles[1], "two"));
    seen none = {0};
    char err[256];
    usleep(300000);
    assert_int_equal(news_store_poll(b, see_change, &none, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(none.n, 0);
    news_store_close(a);
    news_store_close(b);
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    /* Nothing listens on port 1. */
    assert_int_equal(
        open_status("postgresql://nobody:secret@127.0.0.1:1/db", f->model, err, sizeof err),
        NEWS_STORE_UNAVAILABLE);
    assert_non_null(strstr(err, "postgresql://127.0.0.1:1/db: "));
    assert_non_null(strstr(err, "Connection refused"));
    assert_null(strstr(err, "secret"));
    assert_int_equal(
        open_status("postgresql://127.0.0.1/db?nosuchoption=1", f->model, err, sizeof err),
        NEWS_STORE_IO);
    assert_non_null(strstr(err, "postgresql://(invalid DSN): invalid URI query parameter"));

    /* A schema newer than this build's. */
    news_store_close(open_ok(f->model, DIGEST_A));
    admin_sql("UPDATE fastformerd_news_schema SET version = 2");
    assert_int_equal(open_status(dsn, f->model, err, sizeof err), NEWS_STORE_CORRUPT);
    assert_non_null(strstr(err, "schema version 2, this fastformerd reads 1"));
    admin_sql("UPDATE fastformerd_news_schema SET version = 1");

    /* A vector of the wrong size. */
    news_store *s = open_ok(f->model, DIGEST_A);
    float v[DIM] = {1, 2, 3, 4};
    news_store_op op = upsert("N1", "one", v, 1);
    write_ok(s, &op, 1, 0, NULL);
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE fastformerd_news_vectors SET vector = '\\x000102' WHERE model = '%s'",
             f->model);
    admin_sql(sql);
    seen w = {0};
    assert_int_equal(news_store_scan(s, see_item, &w, err, sizeof err), NEWS_STORE_CORRUPT);
    assert_non_null(strstr(err, "item 'N1' has a vector of the wrong size"));
    news_store_close(s);

    /* A database that refuses writes (as a standby does). */
    admin_sql("ALTER DATABASE fastformerd SET default_transaction_read_only = on");
    s = open_ok(f->model, DIGEST_A);
    news_store_status st = news_store_write(s, &op, 1, 0, NULL, err, sizeof err);
    admin_sql(
        "BEGIN READ WRITE; ALTER DATABASE fastformerd SET default_transaction_read_only = off; "
        "COMMIT");
    assert_int_equal(st, NEWS_STORE_READ_ONLY);
    assert_non_null(strstr(err, "read-only transaction"));
    news_store_close(s);
}

static void wait_reachable(news_store *s, bool want)
{
    int64_t deadline = mono_clock_us() + 30 * 1000000;
    while (news_store_up(s) != (int)want && mono_clock_us() < deadline)
        usleep(20000);
    assert_int_equal(news_store_up(s), (int)want);
}

static void test_server_down_and_back(void **state)
{
    fixture *f = *state;
    news_store *a = open_ok(f->model, DIGEST_A);
    news_store *b = open_ok(f->model, DIGEST_A);
    float v[DIM] = {1, 2, 3, 4};
    news_store_op op = upsert("N1", "before", v, 1);
    write_ok(a, &op, 1, 0, NULL);
    assert_int_equal(poll_until(b, 1).n, 1);

    pg_ctl("stop -m fast");
    wait_reachable(a, false);
    wait_reachable(b, false);
    char err[512] = "";
    op = upsert("N2", "while down", v, 2);
    assert_int_equal(news_store_write(a, &op, 1, 0, NULL, err, sizeof err), NEWS_STORE_UNAVAILABLE);
    assert_non_null(strstr(err, "unreachable"));
    seen w = {0};
    assert_int_equal(news_store_poll(b, see_change, &w, err, sizeof err), NEWS_STORE_OK);
    assert_int_equal(w.n, 0);
    assert_int_equal(news_store_scan(b, see_item, &w, err, sizeof err), NEWS_STORE_UNAVAILABLE);

    pg_ctl("start");
    wait_reachable(a, true);
    wait_reachable(b, true);
    op = upsert("N2", "after", v, 3);
    write_ok(a, &op, 1, 0, NULL);
    w = poll_until(b, 1);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.titles[0], "after");
    assert_int_equal(scan_all(b).n, 2);
    news_store_close(a);
    news_store_close(b);
}

/* Sends sig to the test's own PostgreSQL server: its postmaster (the pid in
 * DATA/postmaster.pid) and the postmaster's children. */
static void pg_signal_all(int sig)
{
    const char *data = getenv("FASTFORMERD_TEST_PG_DATA");
    assert_non_null(data);
    char path[1024];
    snprintf(path, sizeof path, "%s/postmaster.pid", data);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long master = 0;
    assert_int_equal(fscanf(f, "%ld", &master), 1);
    fclose(f);
    assert_true(master > 1);
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1)
            continue;
        char stat_path[64], buf[512];
        snprintf(stat_path, sizeof stat_path, "/proc/%ld/stat", pid);
        FILE *sf = fopen(stat_path, "r");
        if (!sf)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, sf);
        fclose(sf);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        long ppid = 0;
        if (rp && sscanf(rp + 1, " %*c %ld", &ppid) == 1 && ppid == master)
            kill((pid_t)pid, sig);
    }
    closedir(d);
    kill((pid_t)master, sig);
}

/* A server that stops answering (here: every process of it stopped) costs
 * a write the statement deadline, not a hung thread: UNAVAILABLE with the
 * deadline in the message; the store notices, and recovers once it answers. */
static void test_statement_deadline(void **state)
{
    fixture *f = *state;
    news_store *s = open_ok(f->model, DIGEST_A);
    float v[DIM] = {1, 2, 3, 4};
    news_store_op op = upsert("N1", "one", v, 1);
    char err[512] = "";
    pg_signal_all(SIGSTOP);
    news_store_status st = news_store_write(s, &op, 1, 0, NULL, err, sizeof err);
    int64_t deadline = mono_clock_us() + 30 * 1000000;
    while (news_store_up(s) != 0 && mono_clock_us() < deadline)
        usleep(20000);
    int up_while_stopped = news_store_up(s);
    pg_signal_all(SIGCONT);
    assert_int_equal(st, NEWS_STORE_UNAVAILABLE);
    assert_non_null(
        strstr(err, "write: no answer from the database within 5001 ms")); /* 5 s + 1 ms an item */
    assert_int_equal(up_while_stopped, 0);
    wait_reachable(s, true);
    write_ok(s, &op, 1, 0, NULL);
    news_store_close(s);
}

static void test_rewound_table(void **state)
{
    fixture *f = *state;
    news_store *a = open_ok(f->model, DIGEST_A);
    news_store *b = open_ok(f->model, DIGEST_A);
    float v[DIM] = {1, 2, 3, 4};
    news_store_op ops[2] = {upsert("N1", "one", v, 1), upsert("N2", "two", v, 1)};
    write_ok(a, ops, 2, 0, NULL);
    assert_int_equal(poll_until(b, 2).n, 2);
    /* As a restore from an older backup: the sequence numbers go back. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE fastformerd_news SET seq = 1, writer = 'restored' WHERE model = '%s'",
             f->model);
    admin_sql(sql);
    seen w = poll_until(b, 2); /* at the next resync (5 s) */
    assert_int_equal(w.n, 2);
    news_store_close(a);
    news_store_close(b);
}

/* A fake news encoder: every component is the title's length. */
static int encode_len(void *user, const char *title, size_t title_len, float *out, char *err,
                      size_t err_cap)
{
    (void)title;
    (*(int *)user)++;
    for (int i = 0; i < DIM; i++)
        out[i] = (float)title_len;
    (void)err;
    (void)err_cap;
    return 0;
}

static int encode_fails(void *user, const char *title, size_t title_len, float *out, char *err,
                        size_t err_cap)
{
    (void)user;
    (void)title;
    (void)title_len;
    (void)out;
    snprintf(err, err_cap, "title: the tokenizer refused it");
    return -1;
}

static news_catalog *catalog_on(const char *model_name, const char *digest)
{
    news_catalog *c = news_catalog_new(DIM, 16);
    assert_non_null(c);
    news_catalog_attach_store(c, open_ok(model_name, digest));
    return c;
}

/* Syncs c until it holds `want` items (at most 20 s); returns the last result. */
static news_sync_result sync_until(news_catalog *c, size_t want, news_catalog_encode_fn enc,
                                   void *user)
{
    news_sync_result res = {0}, last = {0};
    char err[256] = "";
    int64_t deadline = mono_clock_us() + 20 * 1000000;
    do {
        assert_int_equal(news_catalog_sync(c, enc, user, &res, err, sizeof err), NEWS_STORE_OK);
        if (res.applied || res.skipped)
            last = res;
        if (news_catalog_count(c) == want && (last.applied || last.skipped))
            break;
        usleep(20000);
    } while (mono_clock_us() < deadline);
    return last;
}

static void test_catalog_sync(void **state)
{
    fixture *f = *state;
    news_catalog *a = catalog_on(f->model, DIGEST_A);
    news_catalog *b = catalog_on(f->model, DIGEST_A);
    news_catalog *other_weights = catalog_on(f->model, DIGEST_B);
    news_catalog *failing = catalog_on(f->model, DIGEST_B);
    assert_int_equal(news_catalog_store_up(a), 1);
    news_catalog *mem = news_catalog_new(DIM, 16);
    assert_int_equal(news_catalog_store_up(mem), -1);
    news_sync_result none;
    char err[256];
    assert_int_equal(news_catalog_sync(mem, NULL, NULL, &none, err, sizeof err), NEWS_STORE_OK);
    news_catalog_release(mem);

    float v[DIM] = {0.5f, 1, 2, 3};
    news_store_op ops[2] = {upsert("N1", "one", v, 0), upsert("N22", "twenty-two", v, 0)};
    news_write_result wr;
    assert_int_equal(news_catalog_write(a, ops, 2, NULL, &wr), NEWS_WRITE_OK);

    news_sync_result r = sync_until(b, 2, NULL, NULL);
    assert_int_equal(r.applied, 2);
    float got[DIM];
    assert_true(news_catalog_get(b, "N22", 3, got));
    assert_memory_equal(got, v, sizeof v);

    int calls = 0;
    r = sync_until(other_weights, 2, encode_len, &calls);
    assert_int_equal(r.applied, 2);
    assert_int_equal(calls, 2);
    assert_true(news_catalog_get(other_weights, "N22", 3, got));
    assert_true(got[0] == 10.0f); /* strlen("twenty-two") */

    r = sync_until(failing, 0, encode_fails, NULL);
    assert_int_equal(r.skipped, 2);
    assert_int_equal(news_catalog_count(failing), 0);
    assert_string_equal(r.first_skip, "news 'N1': title: the tokenizer refused it");
    /* Without an encoder, such an item cannot be applied either. */
    news_catalog *no_encoder = catalog_on(f->model, DIGEST_B);
    news_store_op touch = upsert("N1", "one again", v, 0);
    assert_int_equal(news_catalog_write(a, &touch, 1, NULL, &wr), NEWS_WRITE_OK);
    r = sync_until(no_encoder, 0, NULL, NULL);
    assert_int_equal(r.skipped, 1);
    assert_string_equal(r.first_skip, "news 'N1': no vector for these weights");

    news_store_op del = delete_op("N1", 0);
    assert_int_equal(news_catalog_write(a, &del, 1, NULL, &wr), NEWS_WRITE_OK);
    sync_until(b, 1, NULL, NULL);
    assert_int_equal(news_catalog_count(b), 1);
    assert_false(news_catalog_get(b, "N1", 2, got));

    news_catalog_release(a);
    news_catalog_release(b);
    news_catalog_release(other_weights);
    news_catalog_release(failing);
    news_catalog_release(no_encoder);
}

/* ---- concurrency: writers on three replicas, each syncing, reads on one ---- */

/* Writers 0 and 1 write through replica a, writer 2 through b, writer 3
 * through c: three connections whose transactions overlap, as replicas
 * behind one Service. Each writer upserts its own ids W<t>-<i>, deletes one
 * of them two ops later, and every fifth op writes one of a few ids all
 * writers share (S0..S3: upserted by even writers, deleted by odd ones).
 * Meanwhile each replica syncs in a thread of its own and b serves reads. */
enum { REPLICAS = 3, WRITERS = 4, WRITES = 30, SHARED_IDS = 4 };

typedef struct {
    news_catalog *on; /* the replica this thread writes through, syncs or reads */
    int t;
    atomic_bool *stop;
} conc_arg;

static void *writer_main(void *p)
{
    conc_arg *x = p;
    for (int i = 0; i < WRITES; i++) {
        char id[32];
        float v[DIM] = {(float)x->t, (float)i, 1, 1};
        news_write_result wr;
        news_store_op op;
        if (i % 5 == 3) {
            snprintf(id, sizeof id, "S%d", (i / 5 + x->t) % SHARED_IDS);
            op = x->t % 2 ? delete_op(id, 0) : upsert(id, "shared title", v, 0);
        } else if (i % 5 == 4) {
            snprintf(id, sizeof id, "W%d-%d", x->t, i - 2);
            op = delete_op(id, 0);
        } else {
            snprintf(id, sizeof id, "W%d-%d", x->t, i);
            op = upsert(id, "concurrent title", v, 0);
        }
        assert_int_equal(news_catalog_write(x->on, &op, 1, NULL, &wr), NEWS_WRITE_OK);
    }
    return NULL;
}

static void *syncer_main(void *p)
{
    conc_arg *x = p;
    while (!atomic_load(x->stop)) {
        news_sync_result r;
        char err[256];
        assert_int_equal(news_catalog_sync(x->on, NULL, NULL, &r, err, sizeof err), NEWS_STORE_OK);
        usleep(1000);
    }
    return NULL;
}

static void *reader_main(void *p)
{
    conc_arg *x = p;
    float user[DIM] = {1, 1, 1, 1}, v[DIM];
    news_catalog_hit hits[8];
    while (!atomic_load(x->stop)) {
        int16_t scratch[NEWS_CATALOG_SCRATCH(DIM)];
        news_catalog_query q = {.user = user, .k = 8, .since_ms = INT64_MIN, .scratch = scratch};
        int n = news_catalog_top_k(x->on, &q, hits);
        assert_true(n >= 0 && n <= 8);
        for (int i = 0; i < n; i++)
            (void)news_catalog_get(x->on, hits[i].id, strlen(hits[i].id), v);
    }
    return NULL;
}

/* The table as a fresh replica reads it. */
typedef struct {
    int n;
    char ids[WRITERS * WRITES + SHARED_IDS][16];
    float vecs[WRITERS * WRITES + SHARED_IDS][DIM];
} table_rows;

static int table_row(void *user, const news_store_item *it)
{
    table_rows *t = user;
    assert_true(t->n < WRITERS * WRITES + SHARED_IDS && it->vector);
    snprintf(t->ids[t->n], sizeof t->ids[0], "%.*s", (int)it->id_len, it->id);
    memcpy(t->vecs[t->n], it->vector, sizeof t->vecs[0]);
    t->n++;
    return 0;
}

/* How many of the table's rows replica c lacks or holds with another
 * vector, plus its surplus (it holds more items than the table). */
static int differences(news_catalog *c, const table_rows *t)
{
    int bad = 0;
    for (int i = 0; i < t->n; i++) {
        float v[DIM];
        if (!news_catalog_get(c, t->ids[i], strlen(t->ids[i]), v) ||
            memcmp(v, t->vecs[i], sizeof v) != 0)
            bad++;
    }
    size_t n = news_catalog_count(c);
    return bad + (n > (size_t)t->n ? (int)(n - (size_t)t->n) : 0);
}

static void test_concurrent_writes_sync_and_reads(void **state)
{
    fixture *f = *state;
    news_catalog *r[REPLICAS];
    for (int i = 0; i < REPLICAS; i++)
        r[i] = catalog_on(f->model, DIGEST_A);
    /* A slow server: each row written waits up to 4 ms before its
     * transaction goes on to commit, so that transactions overlap between
     * taking their sequence numbers and committing (a replica reading "seq >
     * the last seen" would skip one that commits after a higher one). */
    char sql[512];
    admin_sql("CREATE OR REPLACE FUNCTION fastformerd_test_delay() RETURNS trigger"
              " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(random() * 0.004);"
              " RETURN NEW; END $$");
    snprintf(sql, sizeof sql,
             "CREATE TRIGGER fastformerd_test_delay AFTER INSERT OR UPDATE ON fastformerd_news"
             " FOR EACH ROW WHEN (NEW.model = '%s') EXECUTE FUNCTION fastformerd_test_delay()",
             f->model);
    admin_sql(sql);
    atomic_bool stop_sync = false, stop_read = false;
    enum { N_THREADS = WRITERS + REPLICAS + 1 };
    conc_arg args[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        void *(*fn)(void *) = writer_main;
        /* Writers 0 and 1 share replica 0; writers 2 and 3 write through 1 and 2. */
        if (i < WRITERS)
            args[i] = (conc_arg){.on = r[i < 2 ? 0 : i - 1], .t = i};
        if (i >= WRITERS && i < WRITERS + REPLICAS) {
            fn = syncer_main;
            args[i] = (conc_arg){.on = r[i - WRITERS], .stop = &stop_sync};
        } else if (i == WRITERS + REPLICAS) {
            fn = reader_main;
            args[i] = (conc_arg){.on = r[1], .stop = &stop_read};
        }
        assert_int_equal(pthread_create(&th[i], NULL, fn, &args[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    /* Every write is committed: the table is final. */
    news_store *fresh = open_ok(f->model, DIGEST_A);
    table_rows *table = calloc(1, sizeof *table);
    assert_non_null(table);
    char err[256];
    assert_int_equal(news_store_scan(fresh, table_row, table, err, sizeof err), NEWS_STORE_OK);
    news_store_close(fresh);
    /* Each writer's own ids: i % 5 in {0, 1} stay, i % 5 == 2 was deleted. */
    int own = 0;
    for (int i = 0; i < table->n; i++)
        own += table->ids[i][0] == 'W';
    assert_int_equal(own, WRITERS * (WRITES / 5) * 2);
    /* Convergence: each replica, once it has polled after the last commit,
     * holds exactly the table. Its syncer is stopped first and the checks
     * run between complete syncs: in the middle of applying one poll's
     * changes (or before applying them) a replica can hold the right
     * number of items with the wrong ones, e.g. an item whose delete is
     * still to come in place of one upserted just before it. */
    atomic_store(&stop_sync, true);
    for (int i = WRITERS; i < WRITERS + REPLICAS; i++)
        pthread_join(th[i], NULL);
    int64_t deadline = mono_clock_us() + 20 * 1000000;
    int bad[REPLICAS];
    for (;;) {
        int total = 0;
        for (int i = 0; i < REPLICAS; i++) {
            news_sync_result res;
            assert_int_equal(news_catalog_sync(r[i], NULL, NULL, &res, err, sizeof err),
                             NEWS_STORE_OK);
            total += bad[i] = differences(r[i], table);
        }
        if (total == 0 || mono_clock_us() > deadline)
            break;
        usleep(20000);
    }
    atomic_store(&stop_read, true);
    pthread_join(th[WRITERS + REPLICAS], NULL);
    admin_sql("DROP TRIGGER fastformerd_test_delay ON fastformerd_news");
    for (int i = 0; i < REPLICAS; i++) {
        if (bad[i] != 0)
            fail_msg("replica %d differs from the table in %d items after 20 s", i, bad[i]);
        assert_int_equal(news_catalog_count(r[i]), table->n);
        news_catalog_release(r[i]);
    }
    free(table);
}

int main(int argc, char **argv)
{
    (void)argc;
    dsn = getenv("FASTFORMERD_TEST_PG_DSN");
    if (!dsn) {
        /* Run again with a fresh server (the test runner's cwd is the repository). */
        execl("/usr/bin/python3", "python3", "tests/integration/pgserver.py", "run", argv[0],
              (char *)NULL);
        perror("test_news_store_postgresql: cannot run tests/integration/pgserver.py");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_get_scan_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digests_and_put_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll_between_stores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_down_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statement_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewound_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writes_sync_and_reads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
