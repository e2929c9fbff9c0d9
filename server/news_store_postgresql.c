/* news_store_postgresql: the news store as PostgreSQL tables shared by every
 * replica (news_store: "postgresql://..." in a model's config).
 *
 *   fastformerd_news         (model, news_id) -> title, category, updated_ms,
 *                            deleted, seq, writer
 *   fastformerd_news_vectors (model, news_id, digest) -> vector (D float32, little-endian)
 *   fastformerd_news_meta    model -> seeded
 *   fastformerd_news_schema  version
 *
 * A write with NEWS_STORE_MARK_SEEDED to a model that is seeded already
 * writes nothing (replicas that start together on an empty table all seed
 * it: the first one does; the others then read what it wrote).
 *
 * Every write runs one PL/pgSQL function (created at open) that takes a
 * per-model advisory lock for its transaction and stamps each row it changes
 * with nextval('fastformerd_news_seq') and the writing store's tag. Under the
 * lock, seq order is commit order for a model, so a replica that has read
 * every change up to seq S finds all later ones with "seq > S". A delete
 * leaves a tombstone (deleted, no title, no vectors) that other replicas read
 * the same way. Each write ends with NOTIFY fastformerd_news '<model>'.
 *
 * A listener thread holds a second connection that LISTENs: a notification
 * for this model sets a flag, which the next poll turns into one catch-up
 * query; poll also catches up every RESYNC_MS (the safety net for a
 * notification lost while reconnecting) and starts again from the beginning
 * when the table was rewound (restored from a backup). When the server goes
 * away, the thread logs it once, reconnects with backoff and logs the
 * recovery; meanwhile writes return NEWS_STORE_UNAVAILABLE at once and poll
 * reports nothing, so the catalog in memory keeps serving reads.
 *
 * Locks: `mu` guards the writers' connection between the caller's thread
 * (the store's ops, serialized by the caller) and the listener thread, which
 * only swaps it. */
#include "news_store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "error_message.h"
#include "log.h"
#include "mono_clock.h"
#include "pg_conn.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "vectors are stored as little-endian float32: add a byte swap for this host");

#define SCHEMA_VERSION 1
#define STATEMENT_TIMEOUT_MS 5000
#define RESYNC_MS 5000
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 4000
#define POLL_BATCH 1000 /* rows per catch-up statement */

typedef struct {
    news_store base; /* first: a news_store * is a pg_store * */
    char *dsn;
    char *model;
    char writer[64]; /* this store's tag on the rows it writes */

    pthread_mutex_t mu;
    PGconn *wconn;         /* guarded by mu: the ops' connection; NULL while lost */
    char down_reason[256]; /* guarded by mu: why wconn is NULL */

    int64_t cursor;         /* caller's thread: every change up to here was polled */
    int64_t next_resync_us; /* caller's thread */
    float *vec;             /* caller's thread: an aligned copy of one row's vector */

    PGconn *lconn; /* the listener thread's */
    int wake_fd;   /* eventfd: stop, or an op lost wconn */
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    atomic_bool pending; /* a notification (or a reconnect) since the last catch-up */
    atomic_bool up;
    _Atomic int64_t down_since_us;
} pg_store;

/* ---- SQL ---------------------------------------------------------------------------- */

/* Run at every open, by every replica: idempotent, and serialized across
 * replicas by an advisory lock (concurrent CREATE ... IF NOT EXISTS can fail). */
static const char SCHEMA_SQL[] =
    "BEGIN;\n"
    "SELECT pg_advisory_xact_lock(hashtext('fastformerd_news schema'));\n"
    "CREATE TABLE IF NOT EXISTS fastformerd_news_schema (version integer NOT NULL);\n"
    "INSERT INTO fastformerd_news_schema SELECT 1\n"
    "  WHERE NOT EXISTS (SELECT 1 FROM fastformerd_news_schema);\n"
    "CREATE TABLE IF NOT EXISTS fastformerd_news (\n"
    "  model text NOT NULL, news_id text NOT NULL, title text NOT NULL,\n"
    "  category text NOT NULL DEFAULT '', updated_ms bigint NOT NULL,\n"
    "  deleted boolean NOT NULL DEFAULT false, seq bigint NOT NULL, writer text NOT NULL,\n"
    "  PRIMARY KEY (model, news_id));\n"
    "CREATE TABLE IF NOT EXISTS fastformerd_news_vectors (\n"
    "  model text NOT NULL, news_id text NOT NULL, digest text NOT NULL, vector bytea NOT NULL,\n"
    "  PRIMARY KEY (model, news_id, digest));\n"
    "CREATE TABLE IF NOT EXISTS fastformerd_news_meta (\n"
    "  model text PRIMARY KEY, seeded boolean NOT NULL);\n"
    "CREATE SEQUENCE IF NOT EXISTS fastformerd_news_seq;\n"
    "CREATE INDEX IF NOT EXISTS fastformerd_news_model_seq ON fastformerd_news (model, seq);\n";

/* The second part of the schema's transaction (C strings stay under 4095 bytes). */
static const char SCHEMA_WRITE_SQL[] =
    /* The ops of one news_store_write, in order: existed[i] as the contract
     * says. p_vectors holds the vectors of the ops with p_has_vector, back to
     * back, p_bytes each. */
    "CREATE OR REPLACE FUNCTION fastformerd_news_write(p_model text, p_writer text,\n"
    "    p_digest text, p_delete boolean[], p_ids text[], p_titles text[],\n"
    "    p_categories text[], p_updated bigint[], p_has_vector boolean[], p_vectors bytea,\n"
    "    p_bytes integer, p_mark_seeded boolean, OUT existed boolean[])\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "  k integer := 0;\n"
    "  live boolean;\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(hashtext('fastformerd_news'), hashtext(p_model));\n"
    "  existed := '{}';\n"
    /* Replicas started together each find the store unseeded and seed it:
     * the first one does, the others' seeds write nothing. */
    "  IF p_mark_seeded AND EXISTS (SELECT 1 FROM fastformerd_news_meta m\n"
    "      WHERE m.model = p_model AND m.seeded) THEN\n"
    "    existed := array_fill(false, ARRAY[coalesce(array_length(p_ids, 1), 0)]);\n"
    "    RETURN;\n"
    "  END IF;\n"
    "  FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP\n"
    "    live := NULL;\n"
    "    SELECT NOT f.deleted INTO live FROM fastformerd_news f\n"
    "      WHERE f.model = p_model AND f.news_id = p_ids[i];\n"
    "    live := coalesce(live, false);\n"
    "    existed := existed || live;\n"
    "    IF p_delete[i] THEN\n"
    "      IF live THEN\n"
    "        UPDATE fastformerd_news f SET deleted = true, title = '', category = '',\n"
    "            updated_ms = p_updated[i], seq = nextval('fastformerd_news_seq'),\n"
    "            writer = p_writer\n"
    "          WHERE f.model = p_model AND f.news_id = p_ids[i];\n"
    "        DELETE FROM fastformerd_news_vectors v\n"
    "          WHERE v.model = p_model AND v.news_id = p_ids[i];\n"
    "      END IF;\n"
    "    ELSE\n"
    "      INSERT INTO fastformerd_news AS f (model, news_id, title, category, updated_ms,\n"
    "          deleted, seq, writer)\n"
    "        VALUES (p_model, p_ids[i], p_titles[i], p_categories[i], p_updated[i], false,\n"
    "          nextval('fastformerd_news_seq'), p_writer)\n"
    "        ON CONFLICT (model, news_id) DO UPDATE SET title = EXCLUDED.title,\n"
    "          category = EXCLUDED.category, updated_ms = EXCLUDED.updated_ms,\n"
    "          deleted = false, seq = EXCLUDED.seq, writer = EXCLUDED.writer;\n"
    "      DELETE FROM fastformerd_news_vectors v\n"
    "        WHERE v.model = p_model AND v.news_id = p_ids[i];\n"
    "      IF p_has_vector[i] THEN\n"
    "        INSERT INTO fastformerd_news_vectors VALUES (p_model, p_ids[i], p_digest,\n"
    "          substring(p_vectors FROM k * p_bytes + 1 FOR p_bytes));\n"
    "        k := k + 1;\n"
    "      END IF;\n"
    "    END IF;\n"
    "  END LOOP;\n"
    "  IF p_mark_seeded THEN\n"
    "    INSERT INTO fastformerd_news_meta VALUES (p_model, true)\n"
    "      ON CONFLICT (model) DO UPDATE SET seeded = true;\n"
    "  END IF;\n"
    "  PERFORM pg_notify('fastformerd_news', p_model);\n"
    "END $$;\n";

/* The last part: the second function, and the commit. */
static const char SCHEMA_PUT_VECTORS_SQL[] =
    /* Vectors for p_digest of items still at p_updated (others were written since). */
    "CREATE OR REPLACE FUNCTION fastformerd_news_put_vectors(p_model text, p_digest text,\n"
    "    p_ids text[], p_updated bigint[], p_vectors bytea, p_bytes integer)\n"
    "RETURNS void LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(hashtext('fastformerd_news'), hashtext(p_model));\n"
    "  FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP\n"
    "    INSERT INTO fastformerd_news_vectors\n"
    "      SELECT p_model, p_ids[i], p_digest,\n"
    "             substring(p_vectors FROM (i - 1) * p_bytes + 1 FOR p_bytes)\n"
    "        FROM fastformerd_news f WHERE f.model = p_model AND f.news_id = p_ids[i]\n"
    "          AND NOT f.deleted AND f.updated_ms = p_updated[i]\n"
    "      ON CONFLICT (model, news_id, digest) DO UPDATE SET vector = EXCLUDED.vector;\n"
    "  END LOOP;\n"
    "END $$;\n"
    "COMMIT;\n";

/* Binary results, columns in this order for scan, get and poll. A scan
 * joins the vectors of the whole model; get and poll fetch each row's
 * vector by its primary key, so that a few rows never cost a pass over all
 * the vectors, whatever the planner believes (right after a bulk load the
 * statistics say the table is nearly empty). */
#define ITEM_FIELDS "f.seq, f.news_id, f.deleted, f.title, f.category, f.updated_ms, "
#define ITEM_COLUMNS_JOINED                                                                        \
    ITEM_FIELDS "v.vector FROM fastformerd_news f LEFT JOIN fastformerd_news_vectors v"            \
                " ON v.model = f.model AND v.news_id = f.news_id AND v.digest = $2"
#define ITEM_COLUMNS_BY_ROW                                                                        \
    ITEM_FIELDS "(SELECT v.vector FROM fastformerd_news_vectors v WHERE v.model = f.model"         \
                " AND v.news_id = f.news_id AND v.digest = $2) FROM fastformerd_news f"
enum { COL_SEQ, COL_ID, COL_DELETED, COL_TITLE, COL_CATEGORY, COL_UPDATED, COL_VECTOR };

static const char SCAN_SQL[] =
    "SELECT " ITEM_COLUMNS_JOINED " WHERE f.model = $1 AND NOT f.deleted";
static const char GET_SQL[] =
    "SELECT " ITEM_COLUMNS_BY_ROW " WHERE f.model = $1 AND NOT f.deleted AND f.news_id = $3";
static const char POLL_SQL[] =
    "SELECT " ITEM_COLUMNS_BY_ROW " WHERE f.model = $1 AND f.seq > $3::bigint AND f.writer <> $4"
    " ORDER BY f.seq LIMIT 1000";
_Static_assert(POLL_BATCH == 1000, "keep the LIMIT above in step");
static const char MAX_SEQ_SQL[] =
    "SELECT coalesce(max(seq), 0) FROM fastformerd_news WHERE model = $1";
static const char INFO_SQL[] =
    "SELECT (SELECT count(*) FROM fastformerd_news WHERE model = $1 AND NOT deleted),"
    " coalesce((SELECT seeded FROM fastformerd_news_meta WHERE model = $1), false)";
static const char WRITE_SQL[] =
    "SELECT existed FROM fastformerd_news_write($1, $2, $3, $4::boolean[], $5::text[],"
    " $6::text[], $7::text[], $8::bigint[], $9::boolean[], $10::bytea, $11::integer,"
    " $12::boolean)";
static const char PUT_VECTORS_SQL[] =
    "SELECT fastformerd_news_put_vectors($1, $2, $3::text[], $4::bigint[], $5::bytea,"
    " $6::integer)";

/* ---- statuses and messages ----------------------------------------------------------- */

/* The news_store status of a failed statement. */
static news_store_status status_of(const pg_conn_failure *f)
{
    const char *st = f->sqlstate;
    if (f->lost || !strncmp(st, "08", 2) || !strncmp(st, "57P", 3) || !strcmp(st, "57014") ||
        !strcmp(st, "40001") || !strcmp(st, "40P01") || !strcmp(st, "55P03") ||
        !strcmp(st, "53300") || !strcmp(st, "53400"))
        return NEWS_STORE_UNAVAILABLE; /* connection, shutdown, timeout, conflict, limits */
    if (!strcmp(st, "53100"))
        return NEWS_STORE_FULL; /* disk_full */
    if (!strcmp(st, "53200"))
        return NEWS_STORE_NO_MEMORY; /* the server's out_of_memory */
    if (!strcmp(st, "25006") || !strcmp(st, "42501"))
        return NEWS_STORE_READ_ONLY; /* read-only transaction (a standby), no privilege */
    return NEWS_STORE_IO;
}

static news_store_status fail(pg_store *s, news_store_status st, const char *what, const char *msg,
                              char *err, size_t err_cap)
{
    error_message_set(err, err_cap, "%s: %s: %s", s->base.location, what, msg);
    return st;
}

static int64_t be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (uint8_t)p[i];
    return (int64_t)v;
}

/* ---- up and down ----------------------------------------------------------------------- */

static void wake(pg_store *s)
{
    uint64_t one = 1;
    ssize_t rc = write(s->wake_fd, &one, sizeof one);
    (void)rc; /* fails only when the counter is full: the thread is awake anyway */
}

/* The database was lost or not reached: logged once per loss. */
static void set_down(pg_store *s, const char *reason)
{
    pthread_mutex_lock(&s->mu);
    error_message_set(s->down_reason, sizeof s->down_reason, "%s", reason);
    pthread_mutex_unlock(&s->mu);
    bool was_up = true;
    if (!atomic_compare_exchange_strong(&s->up, &was_up, false))
        return;
    atomic_store(&s->down_since_us, mono_clock_us());
    log_warn("news store %s of model '%s' is unreachable: %s; news writes answer 503 until it is "
             "back, recommend serves the catalog in memory",
             s->base.location, s->model, reason);
}

static void set_up(pg_store *s)
{
    bool was_up = false;
    if (!atomic_compare_exchange_strong(&s->up, &was_up, true))
        return;
    int64_t since = atomic_load(&s->down_since_us);
    log_info("news store %s of model '%s' is reachable again after %.1f s; news writes resume",
             s->base.location, s->model, (double)(mono_clock_us() - since) / 1e6);
}

/* An op found wconn broken (under mu): drop it and let the thread reconnect. */
static void lose_wconn_locked(pg_store *s, const char *reason)
{
    PQfinish(s->wconn);
    s->wconn = NULL;
    error_message_set(s->down_reason, sizeof s->down_reason, "%s", reason);
    wake(s);
}

/* A failed op's status and message; a lost connection is dropped. Under mu. */
static news_store_status op_failed(pg_store *s, const pg_conn_failure *f, const char *what,
                                   const char *msg, char *err, size_t err_cap)
{
    if (f->lost)
        lose_wconn_locked(s, msg);
    return fail(s, status_of(f), what, msg, err, err_cap);
}

/* Locks mu and checks that wconn is there; otherwise unlocks and fails
 * with UNAVAILABLE at once (no connection attempt on a request's path). */
static news_store_status lock_wconn(pg_store *s, const char *what, char *err, size_t err_cap)
{
    pthread_mutex_lock(&s->mu);
    if (s->wconn)
        return NEWS_STORE_OK;
    error_message_set(err, err_cap, "%s: %s: the database is unreachable (%s)", s->base.location,
                      what, s->down_reason);
    pthread_mutex_unlock(&s->mu);
    return NEWS_STORE_UNAVAILABLE;
}

/* ---- the listener thread ------------------------------------------------------------- */

static void lose_lconn(pg_store *s, const char *reason)
{
    PQfinish(s->lconn);
    s->lconn = NULL;
    pthread_mutex_lock(&s->mu);
    PQfinish(s->wconn); /* the same server: the ops fail fast instead of finding out */
    s->wconn = NULL;
    pthread_mutex_unlock(&s->mu);
    set_down(s, reason);
}

/* Opens whichever connection is missing; LISTENs on a new one. Returns 0
 * when both are open. */
static int reconnect(pg_store *s, char *err, size_t err_cap)
{
    if (!s->lconn) {
        PGconn *c = pg_conn_open(s->dsn, err, err_cap);
        if (!c)
            return -1;
        pg_conn_statement st = {.sql = "LISTEN fastformerd_news",
                                .timeout_ms = STATEMENT_TIMEOUT_MS};
        pg_conn_failure f;
        PGresult *r = pg_conn_exec(c, &st, &f, err, err_cap);
        if (!r) {
            PQfinish(c);
            return -1;
        }
        PQclear(r);
        s->lconn = c;
        atomic_store(&s->pending, true); /* what was missed while not listening */
    }
    pthread_mutex_lock(&s->mu);
    bool have_w = s->wconn != NULL;
    pthread_mutex_unlock(&s->mu);
    if (!have_w) {
        PGconn *c = pg_conn_open(s->dsn, err, err_cap);
        if (!c)
            return -1;
        pthread_mutex_lock(&s->mu);
        PQfinish(s->wconn);
        s->wconn = c;
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

static void drain_wake(pg_store *s)
{
    uint64_t v;
    ssize_t rc = read(s->wake_fd, &v, sizeof v);
    (void)rc; /* EAGAIN: nothing to drain */
}

/* Waits for a notification or a wake-up; flags this model's notifications. */
static void listen_once(pg_store *s)
{
    struct pollfd p[2] = {{.fd = PQsocket(s->lconn), .events = POLLIN},
                          {.fd = s->wake_fd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0)
        return; /* EINTR */
    if (p[1].revents)
        drain_wake(s);
    if (!p[0].revents)
        return;
    if (!PQconsumeInput(s->lconn)) {
        char reason[256];
        const char *m = PQerrorMessage(s->lconn);
        snprintf(reason, sizeof reason, "%.*s", (int)strcspn(m, "\n"), m);
        lose_lconn(s, reason[0] ? reason : "the server closed the connection");
        return;
    }
    PGnotify *note;
    while ((note = PQnotifies(s->lconn)) != NULL) {
        if (note->extra && strcmp(note->extra, s->model) == 0)
            atomic_store(&s->pending, true);
        PQfreemem(note);
    }
}

static void *listener_main(void *arg)
{
    pg_store *s = arg;
    int backoff_ms = BACKOFF_MIN_MS;
    while (!atomic_load(&s->stopping)) {
        pthread_mutex_lock(&s->mu);
        bool have_w = s->wconn != NULL;
        pthread_mutex_unlock(&s->mu);
        if (!s->lconn || !have_w) {
            char err[256];
            if (reconnect(s, err, sizeof err) != 0) {
                set_down(s, err);
                struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
                if (poll(&p, 1, backoff_ms) > 0)
                    drain_wake(s);
                backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
                continue;
            }
            backoff_ms = BACKOFF_MIN_MS;
            set_up(s);
        }
        listen_once(s);
    }
    return NULL;
}

/* ---- reading rows ------------------------------------------------------------------------ */

typedef struct {
    pg_store *s;
    news_store_item_fn item_fn;     /* scan, get */
    news_store_change_fn change_fn; /* poll */
    void *user;
    size_t rows;
    int64_t last_seq;
    bool corrupt;
    char corrupt_id[NEWS_STORE_ID_MAX + 1];
} row_reader;

/* Calls the reader's callback with row 0 of r. */
static int read_row(void *user, const PGresult *r)
{
    row_reader *rd = user;
    pg_store *s = rd->s;
    if (PQgetlength(r, 0, COL_SEQ) != 8 || PQgetlength(r, 0, COL_DELETED) != 1 ||
        PQgetlength(r, 0, COL_UPDATED) != 8)
        return 1; /* defensive: the query fixes these types */
    rd->rows++;
    rd->last_seq = be64(PQgetvalue(r, 0, COL_SEQ));
    bool deleted = PQgetvalue(r, 0, COL_DELETED)[0] != 0;
    news_store_item it = {
        .id = PQgetvalue(r, 0, COL_ID),
        .id_len = (size_t)PQgetlength(r, 0, COL_ID),
        .title = deleted ? NULL : PQgetvalue(r, 0, COL_TITLE),
        .title_len = deleted ? 0 : (size_t)PQgetlength(r, 0, COL_TITLE),
        .category = deleted ? NULL : PQgetvalue(r, 0, COL_CATEGORY),
        .category_len = deleted ? 0 : (size_t)PQgetlength(r, 0, COL_CATEGORY),
        .updated_ms = be64(PQgetvalue(r, 0, COL_UPDATED)),
    };
    size_t vec_bytes = (size_t)s->base.dim * sizeof(float);
    if (!deleted && !PQgetisnull(r, 0, COL_VECTOR)) {
        if ((size_t)PQgetlength(r, 0, COL_VECTOR) != vec_bytes) {
            rd->corrupt = true;
            snprintf(rd->corrupt_id, sizeof rd->corrupt_id, "%.*s", (int)it.id_len, it.id);
            return 1;
        }
        memcpy(s->vec, PQgetvalue(r, 0, COL_VECTOR), vec_bytes);
        it.vector = s->vec;
    }
    if (rd->change_fn)
        return rd->change_fn(rd->user, &it, deleted);
    return rd->item_fn(rd->user, &it);
}

/* Runs a reading statement (params: model, digest, then extra) on wconn
 * (under mu) and feeds each row to rd. */
static news_store_status read_rows(pg_store *s, const char *sql, const char *what,
                                   const char *const *extra, const int *extra_len, int n_extra,
                                   row_reader *rd, char *err, size_t err_cap)
{
    const char *values[4] = {s->model, s->base.digest};
    int lengths[4] = {0, 0};
    int formats[4] = {0, 0, 0, 0};
    for (int i = 0; i < n_extra; i++) {
        values[2 + i] = extra[i];
        lengths[2 + i] = extra_len ? extra_len[i] : 0;
    }
    pg_conn_statement st = {.sql = sql,
                            .n = 2 + n_extra,
                            .values = values,
                            .lengths = lengths,
                            .formats = formats,
                            .result_format = 1,
                            .timeout_ms = STATEMENT_TIMEOUT_MS};
    char msg[256];
    pg_conn_failure f;
    if (pg_conn_each_row(s->wconn, &st, read_row, rd, &f, msg, sizeof msg) != 0)
        return op_failed(s, &f, what, msg, err, err_cap);
    if (rd->corrupt) {
        error_message_set(err, err_cap, "%s: %s: item '%s' has a vector of the wrong size",
                          s->base.location, what, rd->corrupt_id);
        return NEWS_STORE_CORRUPT;
    }
    return NEWS_STORE_OK;
}

static news_store_status pg_scan(news_store *base, news_store_item_fn fn, void *user, char *err,
                                 size_t err_cap)
{
    pg_store *s = (pg_store *)base;
    news_store_status st = lock_wconn(s, "scan", err, err_cap);
    if (st != NEWS_STORE_OK)
        return st;
    row_reader rd = {.s = s, .item_fn = fn, .user = user};
    st = read_rows(s, SCAN_SQL, "scan", NULL, NULL, 0, &rd, err, err_cap);
    pthread_mutex_unlock(&s->mu);
    return st;
}

static news_store_status pg_get(news_store *base, const char *id, size_t id_len,
                                news_store_item_fn fn, void *user, char *err, size_t err_cap)
{
    pg_store *s = (pg_store *)base;
    news_store_status st = lock_wconn(s, "get", err, err_cap);
    if (st != NEWS_STORE_OK)
        return st;
    char id_z[NEWS_STORE_ID_MAX + 1];
    snprintf(id_z, sizeof id_z, "%.*s",
             (int)(id_len < NEWS_STORE_ID_MAX ? id_len : NEWS_STORE_ID_MAX), id);
    const char *extra[1] = {id_z};
    row_reader rd = {.s = s, .item_fn = fn, .user = user};
    st = read_rows(s, GET_SQL, "get", extra, NULL, 1, &rd, err, err_cap);
    pthread_mutex_unlock(&s->mu);
    if (st == NEWS_STORE_OK && rd.rows == 0) {
        error_message_set(err, err_cap, "%s: no news item '%s'", s->base.location, id_z);
        return NEWS_STORE_NOT_FOUND;
    }
    return st;
}

/* A one-row, text-format query on wconn (under mu). */
static PGresult *query_within(pg_store *s, const char *sql, int n, const char *const *values,
                              const int *lengths, const int *formats, int timeout_ms,
                              pg_conn_failure *f, char *msg, size_t msg_cap)
{
    pg_conn_statement st = {.sql = sql,
                            .n = n,
                            .values = values,
                            .lengths = lengths,
                            .formats = formats,
                            .timeout_ms = timeout_ms};
    return pg_conn_exec(s->wconn, &st, f, msg, msg_cap);
}

static PGresult *query(pg_store *s, const char *sql, int n, const char *const *values,
                       const int *lengths, const int *formats, pg_conn_failure *f, char *msg,
                       size_t msg_cap)
{
    return query_within(s, sql, n, values, lengths, formats, STATEMENT_TIMEOUT_MS, f, msg, msg_cap);
}

/* The longest wait for a write of n items: the statement timeout plus 1 ms
 * per item (the news.tsv seed of 100,000 items is one transaction of about
 * 10 s here, longer on a busy server). */
static int write_timeout_ms(size_t n)
{
    size_t ms = (size_t)STATEMENT_TIMEOUT_MS + n;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static news_store_status pg_info(news_store *base, news_store_info *out, char *err, size_t err_cap)
{
    pg_store *s = (pg_store *)base;
    news_store_status st = lock_wconn(s, "info", err, err_cap);
    if (st != NEWS_STORE_OK)
        return st;
    const char *values[1] = {s->model};
    char msg[256];
    pg_conn_failure f;
    PGresult *r = query(s, INFO_SQL, 1, values, NULL, NULL, &f, msg, sizeof msg);
    if (!r) {
        st = op_failed(s, &f, "info", msg, err, err_cap);
    } else {
        out->n_items = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        out->seeded = PQgetvalue(r, 0, 1)[0] == 't';
        PQclear(r);
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- poll ------------------------------------------------------------------------------- */

/* The safety net's second half: a table whose newest change is older than
 * the cursor was rewound (restored from a backup): read it all again. */
static news_store_status check_rewind(pg_store *s, char *err, size_t err_cap)
{
    const char *values[1] = {s->model};
    char msg[256];
    pg_conn_failure f;
    PGresult *r = query(s, MAX_SEQ_SQL, 1, values, NULL, NULL, &f, msg, sizeof msg);
    if (!r)
        return op_failed(s, &f, "resync", msg, err, err_cap);
    int64_t max_seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (max_seq < s->cursor) {
        log_warn("news store %s of model '%s': the newest change in the table (%" PRId64
                 ") is older than the last one read (%" PRId64
                 "), as after a restore from a backup: reading the table again",
                 s->base.location, s->model, max_seq, s->cursor);
        s->cursor = 0;
    }
    return NEWS_STORE_OK;
}

static news_store_status poll_locked(pg_store *s, news_store_change_fn fn, void *user, char *err,
                                     size_t err_cap)
{
    int64_t now = mono_clock_us();
    bool resync = now >= s->next_resync_us;
    if (!atomic_exchange(&s->pending, false) && !resync)
        return NEWS_STORE_OK;
    if (resync) {
        s->next_resync_us = now + (int64_t)RESYNC_MS * 1000;
        news_store_status st = check_rewind(s, err, err_cap);
        if (st != NEWS_STORE_OK) {
            atomic_store(&s->pending, true);
            return st;
        }
    }
    for (;;) {
        char cursor[24];
        snprintf(cursor, sizeof cursor, "%" PRId64, s->cursor);
        const char *extra[2] = {cursor, s->writer};
        row_reader rd = {.s = s, .change_fn = fn, .user = user, .last_seq = s->cursor};
        news_store_status st = read_rows(s, POLL_SQL, "poll", extra, NULL, 2, &rd, err, err_cap);
        s->cursor = rd.last_seq; /* the rows given to fn stay given */
        if (st != NEWS_STORE_OK) {
            atomic_store(&s->pending, true);
            return st;
        }
        if (rd.rows < POLL_BATCH)
            return NEWS_STORE_OK;
    }
}

static news_store_status pg_poll(news_store *base, news_store_change_fn fn, void *user, char *err,
                                 size_t err_cap)
{
    pg_store *s = (pg_store *)base;
    pthread_mutex_lock(&s->mu);
    /* While the database is lost there is nothing to read; the loss is
     * logged once by the listener thread, and reachable() tells. */
    news_store_status st = s->wconn ? poll_locked(s, fn, user, err, err_cap) : NEWS_STORE_OK;
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- writes ------------------------------------------------------------------------------ */

/* A growing text buffer for array literals; `failed` once out of memory. */
typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} text_buf;

static void text_reserve(text_buf *t, size_t more)
{
    if (t->failed || t->len + more + 1 <= t->cap)
        return;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *b = realloc(t->buf, cap);
    if (!b) {
        t->failed = true;
        return;
    }
    t->buf = b;
    t->cap = cap;
}

static void text_add(text_buf *t, const char *s, size_t len)
{
    text_reserve(t, len);
    if (t->failed)
        return;
    memcpy(t->buf + t->len, s, len);
    t->len += len;
    t->buf[t->len] = '\0';
}

/* Appends one quoted array element (a leading ',' unless first). */
static void text_element(text_buf *t, const char *s, size_t len, bool first)
{
    text_reserve(t, pg_conn_array_bytes(len));
    if (!t->failed && pg_conn_array_append(t->buf, t->cap, &t->len, s, len, first) != 0)
        t->failed = true; /* defensive: reserved above */
}

typedef struct {
    text_buf deletes, ids, titles, categories, updated, has_vector;
    char *vectors;
    size_t vectors_bytes;
} write_params;

static void write_params_free(write_params *p)
{
    free(p->deletes.buf);
    free(p->ids.buf);
    free(p->titles.buf);
    free(p->categories.buf);
    free(p->updated.buf);
    free(p->has_vector.buf);
    free(p->vectors);
}

/* Returns 0, or -1 when out of memory. */
static int write_params_build(const pg_store *s, const news_store_op *ops, size_t n,
                              write_params *p)
{
    memset(p, 0, sizeof *p);
    size_t vec_bytes = (size_t)s->base.dim * sizeof(float);
    size_t n_vec = 0;
    for (size_t i = 0; i < n; i++)
        n_vec += ops[i].kind == NEWS_STORE_UPSERT && ops[i].item.vector;
    p->vectors_bytes = n_vec * vec_bytes;
    p->vectors = malloc(p->vectors_bytes ? p->vectors_bytes : 1);
    text_buf *all[6] = {&p->deletes,    &p->ids,     &p->titles,
                        &p->categories, &p->updated, &p->has_vector};
    for (int k = 0; k < 6; k++)
        text_add(all[k], "{", 1);
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        const news_store_item *it = &ops[i].item;
        bool del = ops[i].kind == NEWS_STORE_DELETE;
        bool has_vec = !del && it->vector;
        const char *sep = i ? "," : "";
        char num[32];
        text_add(&p->deletes, sep, strlen(sep));
        text_add(&p->deletes, del ? "t" : "f", 1);
        text_element(&p->ids, it->id, it->id_len, i == 0);
        text_element(&p->titles, del ? "" : it->title, del ? 0 : it->title_len, i == 0);
        text_element(&p->categories, del || !it->category ? "" : it->category,
                     del || !it->category ? 0 : it->category_len, i == 0);
        int len = snprintf(num, sizeof num, "%s%" PRId64, sep, it->updated_ms);
        text_add(&p->updated, num, (size_t)len);
        text_add(&p->has_vector, sep, strlen(sep));
        text_add(&p->has_vector, has_vec ? "t" : "f", 1);
        if (has_vec && p->vectors)
            memcpy(p->vectors + (v++) * vec_bytes, it->vector, vec_bytes);
    }
    bool failed = !p->vectors;
    for (int k = 0; k < 6; k++) {
        text_add(all[k], "}", 1);
        failed |= all[k]->failed;
    }
    if (failed) {
        write_params_free(p);
        return -1;
    }
    return 0;
}

/* existed[] from the function's boolean[] answer, "{t,f,...}". */
static void parse_existed(const char *text, bool *existed, size_t n)
{
    size_t i = 0;
    for (const char *c = text; *c && i < n; c++)
        if (*c == 't' || *c == 'f')
            existed[i++] = *c == 't';
    for (; i < n; i++)
        existed[i] = false; /* defensive: the function answers n values */
}

static news_store_status pg_write(news_store *base, const news_store_op *ops, size_t n, int flags,
                                  bool *existed, char *err, size_t err_cap)
{
    pg_store *s = (pg_store *)base;
    write_params p;
    if (write_params_build(s, ops, n, &p) != 0)
        return fail(s, NEWS_STORE_NO_MEMORY, "write", "out of memory", err, err_cap);
    news_store_status st = lock_wconn(s, "write", err, err_cap);
    if (st != NEWS_STORE_OK) {
        write_params_free(&p);
        return st;
    }
    char bytes[24];
    snprintf(bytes, sizeof bytes, "%zu", (size_t)s->base.dim * sizeof(float));
    const char *values[12] = {
        s->model,         s->writer,     s->base.digest,
        p.deletes.buf,    p.ids.buf,     p.titles.buf,
        p.categories.buf, p.updated.buf, p.has_vector.buf,
        p.vectors,        bytes,         (flags & NEWS_STORE_MARK_SEEDED) ? "t" : "f"};
    int lengths[12] = {[9] = (int)p.vectors_bytes};
    int formats[12] = {[9] = 1};
    char msg[256];
    pg_conn_failure f;
    PGresult *r = query_within(s, WRITE_SQL, 12, values, lengths, formats, write_timeout_ms(n), &f,
                               msg, sizeof msg);
    write_params_free(&p);
    if (!r) {
        st = op_failed(s, &f, "write", msg, err, err_cap);
    } else {
        if (existed)
            parse_existed(PQgetvalue(r, 0, 0), existed, n);
        PQclear(r);
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

static news_store_status pg_put_vectors(news_store *base, const news_store_item *items, size_t n,
                                        char *err, size_t err_cap)
{
    pg_store *s = (pg_store *)base;
    size_t vec_bytes = (size_t)s->base.dim * sizeof(float);
    text_buf ids = {0}, updated = {0};
    char *vectors = malloc(n * vec_bytes);
    text_add(&ids, "{", 1);
    text_add(&updated, "{", 1);
    for (size_t i = 0; i < n; i++) {
        char num[32];
        int len = snprintf(num, sizeof num, "%s%" PRId64, i ? "," : "", items[i].updated_ms);
        text_element(&ids, items[i].id, items[i].id_len, i == 0);
        text_add(&updated, num, (size_t)len);
        if (vectors)
            memcpy(vectors + i * vec_bytes, items[i].vector, vec_bytes);
    }
    text_add(&ids, "}", 1);
    text_add(&updated, "}", 1);
    news_store_status st = NEWS_STORE_OK;
    if (!vectors || ids.failed || updated.failed)
        st = fail(s, NEWS_STORE_NO_MEMORY, "put vectors", "out of memory", err, err_cap);
    else
        st = lock_wconn(s, "put vectors", err, err_cap);
    if (st == NEWS_STORE_OK) {
        char bytes[24];
        snprintf(bytes, sizeof bytes, "%zu", vec_bytes);
        const char *values[6] = {s->model, s->base.digest, ids.buf, updated.buf, vectors, bytes};
        int lengths[6] = {[4] = (int)(n * vec_bytes)};
        int formats[6] = {[4] = 1};
        char msg[256];
        pg_conn_failure f;
        PGresult *r = query_within(s, PUT_VECTORS_SQL, 6, values, lengths, formats,
                                   write_timeout_ms(n), &f, msg, sizeof msg);
        if (!r)
            st = op_failed(s, &f, "put vectors", msg, err, err_cap);
        PQclear(r);
        pthread_mutex_unlock(&s->mu);
    }
    free(ids.buf);
    free(updated.buf);
    free(vectors);
    return st;
}

/* ---- open and close ------------------------------------------------------------------ */

static bool pg_reachable(news_store *base)
{
    return atomic_load(&((pg_store *)base)->up);
}

static void pg_close(news_store *base)
{
    pg_store *s = (pg_store *)base;
    if (!s)
        return;
    if (s->thread_started) {
        atomic_store(&s->stopping, true);
        wake(s);
        pthread_join(s->thread, NULL);
    }
    PQfinish(s->lconn);
    PQfinish(s->wconn);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    pthread_mutex_destroy(&s->mu);
    free(s->vec);
    free(s->dsn);
    free(s->model);
    free(s->base.location);
    free(s);
}

static const news_store_ops pg_ops = {
    .write = pg_write,
    .put_vectors = pg_put_vectors,
    .scan = pg_scan,
    .get = pg_get,
    .info = pg_info,
    .poll = pg_poll,
    .close = pg_close,
    .reachable = pg_reachable,
};

/* This store's tag on its rows: host, pid and 64 random bits. */
static void make_writer_tag(char *out, size_t cap)
{
    char host[32] = "";
    uint64_t r = 0;
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)mono_clock_us() ^ (uint64_t)(uintptr_t)out;
    snprintf(out, cap, "%s/%ld/%016" PRIx64, host, (long)getpid(), r);
}

/* Creates the tables and functions and checks the schema version; sets
 * the cursor to the model's newest change. */
static news_store_status prepare(pg_store *s, char *err, size_t err_cap)
{
    char msg[256];
    pg_conn_failure f;
    static const char *const parts[] = {SCHEMA_SQL, SCHEMA_WRITE_SQL, SCHEMA_PUT_VECTORS_SQL};
    PGresult *r = NULL;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        pg_conn_statement script = {.sql = parts[i], .n = -1, .timeout_ms = STATEMENT_TIMEOUT_MS};
        PQclear(r);
        if (!(r = pg_conn_exec(s->wconn, &script, &f, msg, sizeof msg)))
            break;
    }
    if (!r && status_of(&f) != NEWS_STORE_READ_ONLY)
        return fail(s, status_of(&f), "creating the tables", msg, err, err_cap);
    if (!r) {
        /* A database that refuses writes (a standby) can still be read when
         * the tables are there: the version check below says whether. */
        log_warn("news store %s of model '%s': %s; opened for reading only", s->base.location,
                 s->model, msg);
        PQclear(pg_conn_exec(
            s->wconn,
            &(pg_conn_statement){.sql = "ROLLBACK", .n = -1, .timeout_ms = STATEMENT_TIMEOUT_MS},
            &f, msg, sizeof msg));
    }
    PQclear(r);
    r = query(s, "SELECT max(version) FROM fastformerd_news_schema", 0, NULL, NULL, NULL, &f, msg,
              sizeof msg);
    if (!r)
        return fail(s, status_of(&f), "reading the schema version", msg, err, err_cap);
    long version = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (version != SCHEMA_VERSION) {
        error_message_set(err, err_cap,
                          "%s: news store schema version %ld, this fastformerd reads %d",
                          s->base.location, version, SCHEMA_VERSION);
        return NEWS_STORE_CORRUPT;
    }
    const char *values[1] = {s->model};
    r = query(s, MAX_SEQ_SQL, 1, values, NULL, NULL, &f, msg, sizeof msg);
    if (!r)
        return fail(s, status_of(&f), "reading the newest change", msg, err, err_cap);
    s->cursor = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return NEWS_STORE_OK;
}

static news_store_status pg_open(const news_store_config *cfg, news_store **out, char *err,
                                 size_t err_cap)
{
    char where[256];
    pg_conn_describe(cfg->location, where, sizeof where);
    if (strlen(cfg->digest) > NEWS_STORE_DIGEST_MAX) {
        error_message_set(err, err_cap, "%s: weights digest longer than %d characters", where,
                          NEWS_STORE_DIGEST_MAX);
        return NEWS_STORE_CORRUPT;
    }
    char msg[256];
    if (pg_conn_check_dsn(cfg->location, msg, sizeof msg) != 0) {
        error_message_set(err, err_cap, "%s: %s", where, msg);
        return NEWS_STORE_IO;
    }
    pg_store *s = calloc(1, sizeof *s);
    if (!s) {
        error_message_set(err, err_cap, "%s: out of memory", where);
        return NEWS_STORE_NO_MEMORY;
    }
    s->wake_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    s->base.ops = &pg_ops;
    s->base.kind = "postgresql";
    s->base.dim = cfg->dim;
    snprintf(s->base.digest, sizeof s->base.digest, "%s", cfg->digest);
    s->base.location = strdup(where);
    s->dsn = strdup(cfg->location);
    s->model = strdup(cfg->model_name);
    s->vec = aligned_alloc(64, ((size_t)cfg->dim * sizeof(float) + 63) / 64 * 64);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    make_writer_tag(s->writer, sizeof s->writer);
    news_store_status st = NEWS_STORE_OK;
    if (!s->base.location || !s->dsn || !s->model || !s->vec) {
        error_message_set(err, err_cap, "%s: out of memory", where);
        st = NEWS_STORE_NO_MEMORY;
    } else if (s->wake_fd < 0) {
        error_message_set(err, err_cap, "%s: eventfd: %s", where, strerror(errno));
        st = NEWS_STORE_IO;
    } else if (!(s->wconn = pg_conn_open(s->dsn, msg, sizeof msg))) {
        error_message_set(err, err_cap, "%s: %s", where, msg);
        st = NEWS_STORE_UNAVAILABLE;
    } else {
        st = prepare(s, err, err_cap);
    }
    if (st == NEWS_STORE_OK) {
        atomic_store(&s->up, true);
        s->next_resync_us = mono_clock_us() + (int64_t)RESYNC_MS * 1000;
        if (pthread_create(&s->thread, NULL, listener_main, s) != 0) {
            error_message_set(err, err_cap, "%s: cannot start the listener thread", where);
            st = NEWS_STORE_NO_MEMORY;
        } else {
            s->thread_started = true;
        }
    }
    if (st != NEWS_STORE_OK) {
        pg_close(&s->base);
        return st;
    }
    *out = &s->base;
    return NEWS_STORE_OK;
}

static bool accepts_uri(const char *location)
{
    return !strncmp(location, "postgresql://", 13) || !strncmp(location, "postgres://", 11);
}

const news_store_backend news_store_postgresql = {
    .kind = "postgresql",
    .accepts = accepts_uri,
    .open = pg_open,
};
