/* news_pg: the PostgreSQL news store shared by replicas (see news_pg.h).
 *
 * Two connections per store: the writers' (guarded by write_mu) and the
 * sync thread's, which LISTENs. Locks: write_mu before apply_mu, never the
 * other way. */
#include "news_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "error_message.h"
#include "log.h"
#include "mono_clock.h"
#include "pg_conn.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "vectors are stored as little-endian float32: add a byte swap for this host");

/* Rows fetched per catch-up statement (about 1 KiB each at D = 256). */
#define CATCH_UP_BATCH 2000
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 4000

struct news_pg {
    char *dsn;
    char *model;
    char *digest;
    int dim;
    int resync_ms;
    int timeout_ms;
    news_pg_events ev;
    char where[256];

    pthread_mutex_t write_mu;
    PGconn *wconn;        /* guarded by write_mu; NULL while the database is lost */
    char down_reason[256]; /* guarded by write_mu: why wconn is NULL */

    pthread_mutex_t apply_mu;
    int64_t last_seq; /* guarded by apply_mu */
    float *vec_buf;   /* guarded by apply_mu: D floats, an aligned copy of a row's vector */

    PGconn *lconn; /* the sync thread's (open's before it starts) */
    int wake_fd;   /* eventfd: stop, or a writer lost wconn */
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;

    atomic_bool up;
    _Atomic int64_t down_since_ms;
    _Atomic uint64_t disconnects;
    _Atomic uint64_t notifications;
    _Atomic uint64_t changes;
    _Atomic int64_t last_seq_seen;
};

/* ---- SQL ---------------------------------------------------------------------------- */

/* Run at every open, by every replica: idempotent, and serialized across
 * replicas by an advisory lock (concurrent CREATE ... IF NOT EXISTS can
 * otherwise fail). */
static const char SCHEMA_SQL[] =
    "BEGIN;\n"
    "SELECT pg_advisory_xact_lock(hashtext('fastformerd_news schema'));\n"
    "CREATE TABLE IF NOT EXISTS fastformerd_news (\n"
    "  model text NOT NULL,\n"
    "  news_id text NOT NULL,\n"
    "  title text NOT NULL,\n"
    "  category text NOT NULL DEFAULT '',\n"
    "  updated timestamptz NOT NULL,\n"
    "  digest text NOT NULL,\n"
    "  vector bytea,\n"
    "  deleted boolean NOT NULL DEFAULT false,\n"
    "  seq bigint NOT NULL,\n"
    "  PRIMARY KEY (model, news_id));\n"
    "CREATE SEQUENCE IF NOT EXISTS fastformerd_news_seq;\n"
    "CREATE INDEX IF NOT EXISTS fastformerd_news_model_seq ON fastformerd_news (model, seq);\n"
    /* Upsert of n items; p_vectors is their n vectors back to back. With
     * p_seed_only, writes only when the model has no row (created = -1
     * otherwise). */
    "CREATE OR REPLACE FUNCTION fastformerd_news_put(p_model text, p_ids text[],\n"
    "    p_titles text[], p_categories text[], p_digest text, p_vectors bytea,\n"
    "    p_seed_only boolean, OUT created integer, OUT replaced integer, OUT updated_ms bigint)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "  n integer := coalesce(array_length(p_ids, 1), 0);\n"
    "  bytes integer := CASE WHEN n = 0 THEN 0 ELSE length(p_vectors) / n END;\n"
    "  now_ts timestamptz := clock_timestamp();\n"
    "  live boolean;\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(hashtext('fastformerd_news'), hashtext(p_model));\n"
    "  created := 0; replaced := 0;\n"
    "  updated_ms := floor(extract(epoch FROM now_ts) * 1000);\n"
    "  IF p_seed_only AND EXISTS (SELECT 1 FROM fastformerd_news f WHERE f.model = p_model) THEN\n"
    "    created := -1; RETURN;\n"
    "  END IF;\n"
    "  FOR i IN 1 .. n LOOP\n"
    "    live := NULL;\n"
    "    SELECT NOT f.deleted INTO live FROM fastformerd_news f\n"
    "      WHERE f.model = p_model AND f.news_id = p_ids[i];\n"
    "    INSERT INTO fastformerd_news AS f (model, news_id, title, category, updated, digest,\n"
    "        vector, deleted, seq)\n"
    "      VALUES (p_model, p_ids[i], p_titles[i], p_categories[i], now_ts, p_digest,\n"
    "        substring(p_vectors FROM (i - 1) * bytes + 1 FOR bytes), false,\n"
    "        nextval('fastformerd_news_seq'))\n"
    "      ON CONFLICT (model, news_id) DO UPDATE SET title = EXCLUDED.title,\n"
    "        category = EXCLUDED.category, updated = EXCLUDED.updated, digest = EXCLUDED.digest,\n"
    "        vector = EXCLUDED.vector, deleted = false, seq = EXCLUDED.seq;\n"
    "    IF live THEN replaced := replaced + 1; ELSE created := created + 1; END IF;\n"
    "  END LOOP;\n"
    "  IF n > 0 THEN PERFORM pg_notify('fastformerd_news', p_model); END IF;\n"
    "END $$;\n"
    "CREATE OR REPLACE FUNCTION fastformerd_news_delete(p_model text, p_id text,\n"
    "    OUT was_live boolean)\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(hashtext('fastformerd_news'), hashtext(p_model));\n"
    "  UPDATE fastformerd_news f SET deleted = true, title = '', category = '', vector = NULL,\n"
    "      updated = clock_timestamp(), seq = nextval('fastformerd_news_seq')\n"
    "    WHERE f.model = p_model AND f.news_id = p_id AND NOT f.deleted;\n"
    "  was_live := FOUND;\n"
    "  IF was_live THEN PERFORM pg_notify('fastformerd_news', p_model); END IF;\n"
    "END $$;\n"
    "COMMIT;\n";

/* Binary results: seq int8, news_id text, deleted bool, title text,
 * category text, updated_ms int8, vector bytea (NULL unless our digest). */
static const char CATCH_UP_SQL[] =
    "SELECT seq, news_id, deleted, title, category,"
    " floor(extract(epoch FROM updated) * 1000)::bigint,"
    " CASE WHEN digest = $2 THEN vector END"
    " FROM fastformerd_news WHERE model = $1 AND seq > $3::bigint ORDER BY seq LIMIT 2000";
_Static_assert(CATCH_UP_BATCH == 2000, "keep the LIMIT above in step");

static const char MAX_SEQ_SQL[] =
    "SELECT coalesce(max(seq), 0) FROM fastformerd_news WHERE model = $1";

/* ---- state ------------------------------------------------------------------------- */

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake(news_pg *s)
{
    uint64_t one = 1;
    ssize_t rc = write(s->wake_fd, &one, sizeof one);
    (void)rc; /* an eventfd write fails only when the counter would overflow: already awake */
}

/* The database was lost (or not reached): logs the transition once. Sync
 * thread, or a writer that found its connection broken. */
static void set_down(news_pg *s, const char *reason)
{
    pthread_mutex_lock(&s->write_mu);
    error_message_set(s->down_reason, sizeof s->down_reason, "%s", reason);
    pthread_mutex_unlock(&s->write_mu);
    bool was_up = true;
    if (!atomic_compare_exchange_strong(&s->up, &was_up, false))
        return;
    atomic_store(&s->down_since_ms, unix_ms());
    atomic_fetch_add(&s->disconnects, 1);
    log_warn("news store %s of model '%s' is unreachable: %s; writes answer 503 until it is back, "
             "recommend serves the catalog in memory",
             s->where, s->model, reason);
    if (s->ev.on_state)
        s->ev.on_state(s->ev.user, false);
}

static void set_up(news_pg *s)
{
    bool was_up = false;
    if (!atomic_compare_exchange_strong(&s->up, &was_up, true))
        return;
    int64_t since = atomic_exchange(&s->down_since_ms, 0);
    log_info("news store %s of model '%s' is reachable again after %.1f s; writes resume",
             s->where, s->model, since ? (double)(unix_ms() - since) / 1000.0 : 0.0);
    if (s->ev.on_state)
        s->ev.on_state(s->ev.user, true);
}

/* ---- applying changes ---------------------------------------------------------------- */

static int64_t be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (uint8_t)p[i];
    return (int64_t)v;
}

/* Applies the rows of one catch-up result; returns how many. Under apply_mu. */
static int apply_rows(news_pg *s, const PGresult *r)
{
    int n = PQntuples(r);
    size_t vec_bytes = (size_t)s->dim * sizeof(float);
    for (int i = 0; i < n; i++) {
        if (PQgetlength(r, i, 0) != 8 || PQgetlength(r, i, 2) != 1 || PQgetlength(r, i, 5) != 8)
            continue; /* defensive: the query fixes these types */
        news_pg_change ch = {
            .seq = be64(PQgetvalue(r, i, 0)),
            .news_id = PQgetvalue(r, i, 1),
            .id_len = (size_t)PQgetlength(r, i, 1),
            .deleted = PQgetvalue(r, i, 2)[0] != 0,
            .title = PQgetvalue(r, i, 3),
            .category = PQgetvalue(r, i, 4),
            .updated_ms = be64(PQgetvalue(r, i, 5)),
            .vector = NULL,
        };
        if (!ch.deleted && !PQgetisnull(r, i, 6) && (size_t)PQgetlength(r, i, 6) == vec_bytes) {
            memcpy(s->vec_buf, PQgetvalue(r, i, 6), vec_bytes);
            ch.vector = s->vec_buf;
        }
        s->ev.apply(s->ev.user, &ch);
        s->last_seq = ch.seq;
    }
    atomic_store(&s->last_seq_seen, s->last_seq);
    atomic_fetch_add(&s->changes, (uint64_t)n);
    return n;
}

/* Applies every change after last_seq, in order, reading through c. Under
 * apply_mu. Returns 0, or -1 with a message (*lost: c is broken). */
static int catch_up_locked(news_pg *s, PGconn *c, bool *lost, char *err, size_t err_cap)
{
    for (;;) {
        char last[24];
        snprintf(last, sizeof last, "%" PRId64, s->last_seq);
        const char *params[3] = {s->model, s->digest, last};
        PGresult *r = pg_conn_exec(c, CATCH_UP_SQL, 3, params, NULL, NULL, 1, s->timeout_ms,
                                   lost, err, err_cap);
        if (!r)
            return -1;
        int n = apply_rows(s, r);
        PQclear(r);
        if (n < CATCH_UP_BATCH)
            return 0;
    }
}

static int catch_up(news_pg *s, PGconn *c, bool *lost, char *err, size_t err_cap)
{
    pthread_mutex_lock(&s->apply_mu);
    int rc = catch_up_locked(s, c, lost, err, err_cap);
    pthread_mutex_unlock(&s->apply_mu);
    return rc;
}

/* The safety net's second half: a table whose newest change is older than
 * ours was rewound (restored from a backup, or rows removed by hand): start
 * again from the beginning. */
static int check_rewind(news_pg *s, PGconn *c, bool *lost, char *err, size_t err_cap)
{
    const char *params[1] = {s->model};
    PGresult *r =
        pg_conn_exec(c, MAX_SEQ_SQL, 1, params, NULL, NULL, 0, s->timeout_ms, lost, err, err_cap);
    if (!r)
        return -1;
    int64_t max_seq = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    pthread_mutex_lock(&s->apply_mu);
    if (max_seq < s->last_seq) {
        log_warn("news store %s of model '%s': the table's newest change (%" PRId64
                 ") is older than the catalog's (%" PRId64 "), as after a restore: reloading it",
                 s->where, s->model, max_seq, s->last_seq);
        s->last_seq = 0;
    }
    pthread_mutex_unlock(&s->apply_mu);
    return 0;
}

/* ---- the sync thread ---------------------------------------------------------------- */

static void drop_wconn(news_pg *s)
{
    pthread_mutex_lock(&s->write_mu);
    PQfinish(s->wconn);
    s->wconn = NULL;
    pthread_mutex_unlock(&s->write_mu);
}

static void lost_db(news_pg *s, const char *reason)
{
    PQfinish(s->lconn);
    s->lconn = NULL;
    drop_wconn(s);
    set_down(s, reason);
}

/* Opens whichever connection is missing, LISTENs, and catches up. Returns 0
 * when both are open. */
static int reconnect(news_pg *s, char *err, size_t err_cap)
{
    if (!s->lconn) {
        PGconn *c = pg_conn_open(s->dsn, err, err_cap);
        if (!c)
            return -1;
        bool lost = false;
        PGresult *r = pg_conn_exec(c, "LISTEN fastformerd_news", 0, NULL, NULL, NULL, 0,
                                   s->timeout_ms, &lost, err, err_cap);
        if (!r) {
            PQfinish(c);
            return -1;
        }
        PQclear(r);
        s->lconn = c;
        /* After LISTEN: nothing committed from now on is missed. */
        if (catch_up(s, c, &lost, err, err_cap) != 0) {
            PQfinish(s->lconn);
            s->lconn = NULL;
            return -1;
        }
    }
    pthread_mutex_lock(&s->write_mu);
    bool have_w = s->wconn != NULL;
    pthread_mutex_unlock(&s->write_mu);
    if (!have_w) {
        PGconn *c = pg_conn_open(s->dsn, err, err_cap);
        if (!c)
            return -1;
        pthread_mutex_lock(&s->write_mu);
        PQfinish(s->wconn);
        s->wconn = c;
        pthread_mutex_unlock(&s->write_mu);
    }
    return 0;
}

/* Sleeps ms, or less when woken (stop). */
static void nap(news_pg *s, int ms)
{
    struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
    if (poll(&p, 1, ms) > 0) {
        uint64_t v;
        ssize_t rc = read(s->wake_fd, &v, sizeof v);
        (void)rc;
    }
}

/* Waits for a notification, a wake-up or the resync time; returns true when
 * a catch-up is due. On a broken connection calls lost_db. */
static bool wait_for_change(news_pg *s, int64_t *next_resync_us)
{
    int64_t left_us = *next_resync_us - mono_clock_us();
    struct pollfd p[2] = {{.fd = PQsocket(s->lconn), .events = POLLIN},
                          {.fd = s->wake_fd, .events = POLLIN}};
    int rc = poll(p, 2, left_us > 0 ? (int)((left_us + 999) / 1000) : 0);
    if (rc < 0 && errno != EINTR) {
        log_error("news store %s: poll: %s", s->where, strerror(errno));
        return false;
    }
    if (p[1].revents) {
        uint64_t v;
        ssize_t n = read(s->wake_fd, &v, sizeof v);
        (void)n;
    }
    bool due = false;
    if (p[0].revents) {
        if (!PQconsumeInput(s->lconn)) {
            char reason[256];
            snprintf(reason, sizeof reason, "%s", PQerrorMessage(s->lconn));
            reason[strcspn(reason, "\n")] = '\0';
            lost_db(s, reason[0] ? reason : "connection closed");
            return false;
        }
        PGnotify *note;
        while ((note = PQnotifies(s->lconn)) != NULL) {
            if (note->extra && strcmp(note->extra, s->model) == 0) {
                atomic_fetch_add(&s->notifications, 1);
                due = true;
            }
            PQfreemem(note);
        }
    }
    if (mono_clock_us() >= *next_resync_us) {
        *next_resync_us = mono_clock_us() + (int64_t)s->resync_ms * 1000;
        char err[256];
        bool lost = false;
        if (check_rewind(s, s->lconn, &lost, err, sizeof err) != 0) {
            if (lost)
                lost_db(s, err);
            else
                log_warn("news store %s of model '%s': resync: %s", s->where, s->model, err);
            return false;
        }
        due = true;
    }
    return due;
}

static void *sync_main(void *arg)
{
    news_pg *s = arg;
    int backoff_ms = BACKOFF_MIN_MS;
    int64_t next_resync_us = mono_clock_us() + (int64_t)s->resync_ms * 1000;
    while (!atomic_load(&s->stopping)) {
        pthread_mutex_lock(&s->write_mu);
        bool have_w = s->wconn != NULL;
        pthread_mutex_unlock(&s->write_mu);
        if (!s->lconn || !have_w) {
            char err[256];
            if (reconnect(s, err, sizeof err) != 0) {
                set_down(s, err);
                nap(s, backoff_ms);
                backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
                continue;
            }
            backoff_ms = BACKOFF_MIN_MS;
            set_up(s);
        }
        if (!wait_for_change(s, &next_resync_us) || atomic_load(&s->stopping) || !s->lconn)
            continue;
        char err[256];
        bool lost = false;
        if (catch_up(s, s->lconn, &lost, err, sizeof err) != 0) {
            if (lost)
                lost_db(s, err);
            else
                log_warn("news store %s of model '%s': catch-up: %s", s->where, s->model, err);
        }
    }
    return NULL;
}

/* ---- open / close --------------------------------------------------------------------- */

void news_pg_close(news_pg *s)
{
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
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->apply_mu);
    free(s->vec_buf);
    free(s->dsn);
    free(s->model);
    free(s->digest);
    free(s);
}

static int open_fail(news_pg *s, char *err, size_t err_cap, const char *msg)
{
    error_message_set(err, err_cap, "news store %s: %s", s->where, msg);
    news_pg_close(s);
    return -1;
}

int news_pg_open(const news_pg_config *cfg, news_pg **out, char *err, size_t err_cap)
{
    *out = NULL;
    news_pg *s = calloc(1, sizeof *s);
    if (!s) {
        error_message_set(err, err_cap, "out of memory");
        return -1;
    }
    s->wake_fd = -1;
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->apply_mu, NULL);
    pg_conn_describe(cfg->dsn, s->where, sizeof s->where);
    s->dim = cfg->dim;
    s->resync_ms = cfg->resync_ms;
    s->timeout_ms = cfg->timeout_ms;
    s->ev = cfg->events;
    s->dsn = strdup(cfg->dsn);
    s->model = strdup(cfg->model);
    s->digest = strdup(cfg->digest);
    s->vec_buf = aligned_alloc(64, ((size_t)cfg->dim * sizeof(float) + 63) / 64 * 64);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!s->dsn || !s->model || !s->digest || !s->vec_buf)
        return open_fail(s, err, err_cap, "out of memory");
    if (s->wake_fd < 0)
        return open_fail(s, err, err_cap, strerror(errno));

    char msg[512];
    bool lost = false;
    s->wconn = pg_conn_open(s->dsn, msg, sizeof msg);
    if (!s->wconn)
        return open_fail(s, err, err_cap, msg);
    PGresult *r = pg_conn_script(s->wconn, SCHEMA_SQL, s->timeout_ms, &lost, msg, sizeof msg);
    if (!r) {
        char full[600];
        snprintf(full, sizeof full, "creating the table fastformerd_news: %s", msg);
        return open_fail(s, err, err_cap, full);
    }
    PQclear(r);
    atomic_store(&s->up, true);
    /* The sync thread LISTENs and catches up again: a change committed
     * between this load and its LISTEN is not missed. */
    if (catch_up(s, s->wconn, &lost, msg, sizeof msg) != 0) {
        char full[600];
        snprintf(full, sizeof full, "loading the catalog: %s", msg);
        return open_fail(s, err, err_cap, full);
    }
    if (pthread_create(&s->thread, NULL, sync_main, s) != 0)
        return open_fail(s, err, err_cap, "cannot start the sync thread");
    s->thread_started = true;
    *out = s;
    return 0;
}

/* ---- writes ----------------------------------------------------------------------------- */

/* The parameters of fastformerd_news_put: three text[] literals and the
 * vectors back to back. Returns 0, or -1 when out of memory. */
typedef struct {
    char *ids, *titles, *categories;
    char *vectors;
    size_t vectors_bytes;
} put_params;

static void put_params_free(put_params *p)
{
    free(p->ids);
    free(p->titles);
    free(p->categories);
    free(p->vectors);
}

static char *array_literal(const news_pg_item *items, size_t n, size_t field)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++) {
        const news_pg_item *it = &items[i];
        size_t len = field == 0 ? it->id_len : field == 1 ? it->title_len : it->category_len;
        cap += pg_conn_array_bytes(len);
    }
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t pos = 1;
    buf[0] = '{';
    buf[1] = '\0';
    for (size_t i = 0; i < n; i++) {
        const news_pg_item *it = &items[i];
        const char *str = field == 0   ? it->news_id
                          : field == 1 ? it->title
                                       : (it->category ? it->category : "");
        size_t len = field == 0 ? it->id_len : field == 1 ? it->title_len : it->category_len;
        if (field == 2 && !it->category)
            len = 0;
        if (pg_conn_array_append(buf, cap - 1, &pos, str, len, i == 0) != 0) {
            free(buf); /* defensive: cap counted every element */
            return NULL;
        }
    }
    buf[pos++] = '}';
    buf[pos] = '\0';
    return buf;
}

static int put_params_build(const news_pg *s, const news_pg_item *items, size_t n, put_params *p)
{
    memset(p, 0, sizeof *p);
    size_t vec_bytes = (size_t)s->dim * sizeof(float);
    p->ids = array_literal(items, n, 0);
    p->titles = array_literal(items, n, 1);
    p->categories = array_literal(items, n, 2);
    p->vectors_bytes = n * vec_bytes;
    p->vectors = malloc(p->vectors_bytes ? p->vectors_bytes : 1);
    if (!p->ids || !p->titles || !p->categories || !p->vectors) {
        put_params_free(p);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(p->vectors + i * vec_bytes, items[i].vector, vec_bytes);
    return 0;
}

static int unavailable(news_pg *s, char *err, size_t err_cap)
{
    error_message_set(err, err_cap, "news store %s is unreachable: %s", s->where, s->down_reason);
    return NEWS_PG_UNAVAILABLE;
}

/* A statement failed on wconn (under write_mu): a broken connection makes
 * the store unavailable until the sync thread reconnects. */
static int write_failed(news_pg *s, bool lost, const char *msg, char *err, size_t err_cap)
{
    if (!lost) {
        error_message_set(err, err_cap, "news store %s: %s", s->where, msg);
        return -1;
    }
    PQfinish(s->wconn);
    s->wconn = NULL;
    error_message_set(s->down_reason, sizeof s->down_reason, "%s", msg);
    error_message_set(err, err_cap, "news store %s is unreachable: %s", s->where, msg);
    wake(s);
    return NEWS_PG_UNAVAILABLE;
}

/* After a commit: the catalog catches up through wconn (this write and any
 * earlier one, in order). When that read fails the write still stands: its
 * own items are applied directly and the sync thread fixes the order later. */
static void apply_after_write(news_pg *s, const news_pg_item *items, size_t n, int64_t updated_ms,
                              bool deleted)
{
    char msg[256];
    bool lost = false;
    pthread_mutex_lock(&s->apply_mu);
    if (catch_up_locked(s, s->wconn, &lost, msg, sizeof msg) != 0) {
        for (size_t i = 0; i < n; i++) {
            news_pg_change ch = {.seq = s->last_seq,
                                 .news_id = items[i].news_id,
                                 .id_len = items[i].id_len,
                                 .deleted = deleted,
                                 .title = deleted ? "" : items[i].title,
                                 .category = items[i].category ? items[i].category : "",
                                 .updated_ms = updated_ms,
                                 .vector = deleted ? NULL : items[i].vector};
            s->ev.apply(s->ev.user, &ch);
        }
        if (lost) {
            PQfinish(s->wconn);
            s->wconn = NULL;
            error_message_set(s->down_reason, sizeof s->down_reason, "%s", msg);
            wake(s);
        }
    }
    pthread_mutex_unlock(&s->apply_mu);
}

static int put_locked(news_pg *s, const news_pg_item *items, size_t n, bool seed_only,
                      size_t *created, size_t *replaced, int64_t *updated_ms, char *err,
                      size_t err_cap)
{
    if (!s->wconn)
        return unavailable(s, err, err_cap);
    put_params p;
    if (put_params_build(s, items, n, &p) != 0) {
        error_message_set(err, err_cap, "out of memory");
        return -1;
    }
    const char *values[7] = {s->model,  p.ids,     p.titles, p.categories,
                             s->digest, p.vectors, seed_only ? "t" : "f"};
    int lengths[7] = {0, 0, 0, 0, 0, (int)p.vectors_bytes, 0};
    int formats[7] = {0, 0, 0, 0, 0, 1, 0};
    char msg[512];
    bool lost = false;
    PGresult *r = pg_conn_exec(s->wconn,
                               "SELECT created, replaced, updated_ms FROM fastformerd_news_put("
                               "$1, $2::text[], $3::text[], $4::text[], $5, $6::bytea, $7::boolean)",
                               7, values, lengths, formats, 0, s->timeout_ms, &lost, msg, sizeof msg);
    put_params_free(&p);
    if (!r)
        return write_failed(s, lost, msg, err, err_cap);
    long long c = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    *replaced = PQntuples(r) == 1 ? (size_t)strtoull(PQgetvalue(r, 0, 1), NULL, 10) : 0;
    *updated_ms = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 2), NULL, 10) : 0;
    PQclear(r);
    *created = c < 0 ? 0 : (size_t)c;
    if (c < 0) /* seed_only and the model had rows */
        return 1;
    apply_after_write(s, items, n, *updated_ms, false);
    return 0;
}

int news_pg_put(news_pg *s, const news_pg_item *items, size_t n, size_t *created, size_t *replaced,
                int64_t *updated_ms, char *err, size_t err_cap)
{
    pthread_mutex_lock(&s->write_mu);
    int rc = put_locked(s, items, n, false, created, replaced, updated_ms, err, err_cap);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

int news_pg_seed(news_pg *s, const news_pg_item *items, size_t n, bool *seeded, char *err,
                 size_t err_cap)
{
    size_t created = 0, replaced = 0;
    int64_t updated_ms = 0;
    pthread_mutex_lock(&s->write_mu);
    int rc = put_locked(s, items, n, true, &created, &replaced, &updated_ms, err, err_cap);
    pthread_mutex_unlock(&s->write_mu);
    *seeded = rc == 0;
    return rc == 1 ? 0 : rc;
}

int news_pg_delete(news_pg *s, const char *id, size_t id_len, bool *found, char *err,
                   size_t err_cap)
{
    *found = false;
    pthread_mutex_lock(&s->write_mu);
    if (!s->wconn) {
        int rc = unavailable(s, err, err_cap);
        pthread_mutex_unlock(&s->write_mu);
        return rc;
    }
    char msg[512];
    bool lost = false;
    const char *values[2] = {s->model, id};
    int lengths[2] = {0, (int)id_len};
    PGresult *r = pg_conn_exec(s->wconn, "SELECT was_live FROM fastformerd_news_delete($1, $2)", 2,
                               values, lengths, NULL, 0, s->timeout_ms, &lost, msg, sizeof msg);
    if (!r) {
        int rc = write_failed(s, lost, msg, err, err_cap);
        pthread_mutex_unlock(&s->write_mu);
        return rc;
    }
    *found = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (*found) {
        news_pg_item it = {.news_id = id, .id_len = id_len, .title = "", .category = ""};
        apply_after_write(s, &it, 1, unix_ms(), true);
    }
    pthread_mutex_unlock(&s->write_mu);
    return 0;
}

/* ---- state ------------------------------------------------------------------------------ */

void news_pg_stats_get(const news_pg *s, news_pg_stats *out)
{
    out->up = atomic_load(&s->up);
    out->down_since_ms = atomic_load(&s->down_since_ms);
    out->disconnects = atomic_load(&s->disconnects);
    out->notifications = atomic_load(&s->notifications);
    out->changes = atomic_load(&s->changes);
    out->last_seq = atomic_load(&s->last_seq_seen);
}

const char *news_pg_where(const news_pg *s)
{
    return s->where;
}
