/* news_store_sqlite: the news store as one SQLite file per model (see
 * news_store.h). WAL journal with synchronous=FULL: a commit fsyncs the WAL
 * before it returns, so an acknowledged write survives kill -9 and power
 * loss; readers never block the writer. The file is marked with an
 * application_id and a schema version (user_version), so a file that is not
 * ours is refused at open instead of being written into.
 *
 *   news(id TEXT PRIMARY KEY, title TEXT, category TEXT, updated_ms INTEGER)
 *   vectors(id TEXT, digest TEXT, vec BLOB: dim little-endian floats,
 *           PRIMARY KEY (id, digest))
 *   meta(key TEXT PRIMARY KEY, value TEXT): "seeded" */
#include "news_store.h"

#include <assert.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "FFNS" */
#define APPLICATION_ID 0x46464e53
#define SCHEMA_VERSION 1
/* How long a write waits for another connection's lock (a backup, a second
 * connection during a reload) before NEWS_STORE_UNAVAILABLE. */
#define BUSY_TIMEOUT_MS 5000

enum {
    ST_EXISTS,
    ST_UPSERT,
    ST_DELETE,
    ST_DELETE_VECTORS,
    ST_PUT_VECTOR,
    ST_PUT_VECTOR_IF,
    ST_SCAN,
    ST_GET,
    ST_COUNT,
    ST_SEEDED,
    ST_MARK_SEEDED,
    ST_N
};

static const char *const statement_sql[ST_N] = {
    [ST_EXISTS] = "SELECT 1 FROM news WHERE id = ?1",
    [ST_UPSERT] = "INSERT INTO news(id, title, category, updated_ms) VALUES (?1, ?2, ?3, ?4) "
                  "ON CONFLICT(id) DO UPDATE SET title = excluded.title, "
                  "category = excluded.category, updated_ms = excluded.updated_ms",
    [ST_DELETE] = "DELETE FROM news WHERE id = ?1",
    [ST_DELETE_VECTORS] = "DELETE FROM vectors WHERE id = ?1",
    [ST_PUT_VECTOR] = "INSERT OR REPLACE INTO vectors(id, digest, vec) VALUES (?1, ?2, ?3)",
    [ST_PUT_VECTOR_IF] = "INSERT OR REPLACE INTO vectors(id, digest, vec) "
                         "SELECT ?1, ?2, ?3 FROM news WHERE id = ?1 AND updated_ms = ?4",
    [ST_SCAN] = "SELECT n.id, n.title, n.category, n.updated_ms, v.vec FROM news n "
                "LEFT JOIN vectors v ON v.id = n.id AND v.digest = ?1",
    [ST_GET] = "SELECT n.id, n.title, n.category, n.updated_ms, v.vec FROM news n "
               "LEFT JOIN vectors v ON v.id = n.id AND v.digest = ?1 WHERE n.id = ?2",
    [ST_COUNT] = "SELECT count(*) FROM news",
    [ST_SEEDED] = "SELECT 1 FROM meta WHERE key = 'seeded'",
    [ST_MARK_SEEDED] = "INSERT OR REPLACE INTO meta(key, value) "
                       "VALUES ('seeded', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
};

typedef struct {
    news_store base; /* first: a news_store * is a sqlite_store * */
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
} sqlite_store;

/* ---- statuses and messages ------------------------------------------------- */

/* The status of SQLite result code rc (extended), refined by the OS error. */
static news_store_status status_of(sqlite3 *db, int rc)
{
    int sys = db ? sqlite3_system_errno(db) : 0;
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return NEWS_STORE_OK;
    case SQLITE_FULL:
        return NEWS_STORE_FULL;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return NEWS_STORE_READ_ONLY;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return NEWS_STORE_UNAVAILABLE;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
        return NEWS_STORE_CORRUPT;
    case SQLITE_NOMEM:
        return NEWS_STORE_NO_MEMORY;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
        if (sys == ENOSPC || sys == EDQUOT || sys == EFBIG)
            return NEWS_STORE_FULL;
        if (sys == EROFS || sys == EACCES || sys == EPERM)
            return NEWS_STORE_READ_ONLY;
        return NEWS_STORE_IO;
    default:
        return NEWS_STORE_IO;
    }
}

/* SQLite reports a failed write as SQLITE_IOERR_* without a reliable errno:
 * ask the file system whether the store's files can be written at all
 * (EROFS: a read-only mount, EPERM: the immutable flag, EACCES: modes).
 * Returns that errno, or 0. */
static int write_refused_errno(const char *location)
{
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", location);
    const char *const files[] = {location, wal};
    for (size_t i = 0; i < 2; i++)
        if (access(files[i], W_OK) != 0 && (errno == EROFS || errno == EPERM || errno == EACCES))
            return errno;
    return 0;
}

/* Fills err with "LOCATION: what: sqlite's message (errno text)" and returns
 * the status of rc. */
static news_store_status fail(sqlite_store *s, const char *location, int rc, const char *what,
                              char *err, size_t err_cap)
{
    sqlite3 *db = s ? s->db : NULL;
    news_store_status st = status_of(db, rc);
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    int sys = db ? sqlite3_system_errno(db) : 0;
    if (st == NEWS_STORE_IO && (rc & 0xff) == SQLITE_IOERR) {
        int refused = write_refused_errno(location);
        if (refused) {
            st = NEWS_STORE_READ_ONLY;
            sys = refused;
        }
    }
    if (sys != 0 && (rc & 0xff) != SQLITE_CORRUPT && (rc & 0xff) != SQLITE_NOTADB)
        snprintf(err, err_cap, "%s: %s: %s (%s)", location, what, msg, strerror(sys));
    else
        snprintf(err, err_cap, "%s: %s: %s", location, what, msg);
    return st;
}

/* ---- open and close --------------------------------------------------------- */

static void store_close(news_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    if (!s)
        return;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close_v2(s->db);
    free(s->base.location);
    free(s);
}

static int pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Checks the file is ours (or empty) and creates the schema in an empty one. */
static news_store_status schema_check(sqlite_store *s, char *err, size_t err_cap)
{
    const char *loc = s->base.location;
    int app = 0, version = 0, n_tables = 0;
    int rc = pragma_int(s->db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = pragma_int(s->db, "PRAGMA user_version", &version);
    if (rc == SQLITE_OK)
        rc = pragma_int(s->db, "SELECT count(*) FROM sqlite_schema", &n_tables);
    if (rc != SQLITE_OK)
        return fail(s, loc, rc, "cannot read the file", err, err_cap);
    if (app == 0 && version == 0 && n_tables == 0) {
        static const char *const create =
            "BEGIN IMMEDIATE;"
            "CREATE TABLE news(id TEXT PRIMARY KEY NOT NULL, title TEXT NOT NULL,"
            " category TEXT NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
            /* A rowid table: a vector (1 KiB at D=256) is too big a row for a
             * WITHOUT ROWID b-tree, which would give each its own overflow page. */
            "CREATE TABLE vectors(id TEXT NOT NULL, digest TEXT NOT NULL, vec BLOB NOT NULL,"
            " PRIMARY KEY (id, digest));"
            "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
            "PRAGMA application_id = 1179012691;"
            "PRAGMA user_version = 1;"
            "COMMIT;";
        _Static_assert(APPLICATION_ID == 1179012691, "application_id literal");
        _Static_assert(SCHEMA_VERSION == 1, "user_version literal");
        rc = sqlite3_exec(s->db, create, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            news_store_status st = fail(s, loc, rc, "cannot create the news tables", err, err_cap);
            if (!sqlite3_get_autocommit(s->db))
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return st;
        }
        return NEWS_STORE_OK;
    }
    if (app != APPLICATION_ID) {
        snprintf(err, err_cap,
                 "%s: not a fastformerd news store (SQLite application_id 0x%08x, expected "
                 "0x%08x)",
                 loc, (unsigned)app, (unsigned)APPLICATION_ID);
        return NEWS_STORE_CORRUPT;
    }
    if (version != SCHEMA_VERSION) {
        snprintf(err, err_cap, "%s: news store schema version %d, this fastformerd reads %d", loc,
                 version, SCHEMA_VERSION);
        return NEWS_STORE_CORRUPT;
    }
    return NEWS_STORE_OK;
}

static const news_store_ops sqlite_ops;

static news_store_status store_open(const news_store_config *cfg, news_store **out, char *err,
                                    size_t err_cap)
{
    *out = NULL;
    if (strlen(cfg->digest) > NEWS_STORE_DIGEST_MAX) {
        snprintf(err, err_cap, "%s: weights digest longer than %d characters", cfg->location,
                 NEWS_STORE_DIGEST_MAX);
        return NEWS_STORE_IO;
    }
    sqlite_store *s = calloc(1, sizeof *s);
    if (!s || !(s->base.location = strdup(cfg->location))) {
        free(s);
        snprintf(err, err_cap, "%s: out of memory", cfg->location);
        return NEWS_STORE_NO_MEMORY;
    }
    s->base.ops = &sqlite_ops;
    s->base.kind = "sqlite";
    s->base.dim = cfg->dim;
    snprintf(s->base.digest, sizeof s->base.digest, "%s", cfg->digest);
    const char *loc = s->base.location;

    int rc = sqlite3_open_v2(
        loc, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    news_store_status st;
    if (rc != SQLITE_OK) {
        st = fail(s, loc, rc, "cannot open", err, err_cap);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /* A read-only file opens read-only without an error: say so now. */
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        snprintf(err, err_cap, "%s: cannot open for writing (read-only file or directory)", loc);
        st = NEWS_STORE_READ_ONLY;
        goto fail;
    }
    if ((st = schema_check(s, err, err_cap)) != NEWS_STORE_OK)
        goto fail;
    /* WAL + FULL: each commit fsyncs the log. quick_check reads every page of
     * the tables: a damaged file is refused here, not at a later write. */
    rc = sqlite3_exec(s->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", NULL, NULL,
                      NULL);
    if (rc != SQLITE_OK) {
        st = fail(s, loc, rc, "cannot set WAL mode", err, err_cap);
        goto fail;
    }
    char mode[16] = "";
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
    }
    if (strcmp(mode, "wal") != 0) {
        snprintf(err, err_cap, "%s: cannot use WAL mode (journal_mode is '%s')", loc, mode);
        st = NEWS_STORE_IO;
        goto fail;
    }
    rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &q, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            const char *r = (const char *)sqlite3_column_text(q, 0);
            if (!r || strcmp(r, "ok") != 0) {
                snprintf(err, err_cap, "%s: damaged news store: %s", loc, r ? r : "?");
                sqlite3_finalize(q);
                st = NEWS_STORE_CORRUPT;
                goto fail;
            }
            rc = SQLITE_OK;
        }
        sqlite3_finalize(q);
    }
    if (rc != SQLITE_OK) {
        st = fail(s, loc, rc, "integrity check", err, err_cap);
        goto fail;
    }
    for (int i = 0; i < ST_N; i++) {
        rc = sqlite3_prepare_v3(s->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                                NULL);
        if (rc != SQLITE_OK) {
            st = fail(s, loc, rc, "unexpected tables", err, err_cap);
            if (st == NEWS_STORE_IO)
                st = NEWS_STORE_CORRUPT; /* ours by its id, but not our tables */
            goto fail;
        }
    }
    *out = &s->base;
    return NEWS_STORE_OK;

fail:
    store_close(&s->base);
    return st;
}

static bool accepts_any(const char *location)
{
    (void)location;
    return true;
}

/* ---- statements ---------------------------------------------------------------- */

static sqlite3_stmt *stmt(sqlite_store *s, int which)
{
    sqlite3_stmt *st = s->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static int bind_bytes(sqlite3_stmt *st, int i, const char *p, size_t n)
{
    return sqlite3_bind_text64(st, i, p ? p : "", n, SQLITE_STATIC, SQLITE_UTF8);
}

/* Steps a statement that returns no row (or whose rows are ignored). */
static int step_done(sqlite3_stmt *st)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void rollback(sqlite_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int begin(sqlite_store *s, bool write)
{
    return sqlite3_exec(s->db, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL, NULL);
}

static int put_vector(sqlite_store *s, const news_store_item *it, bool only_if_current)
{
    sqlite3_stmt *st = stmt(s, only_if_current ? ST_PUT_VECTOR_IF : ST_PUT_VECTOR);
    int rc = bind_bytes(st, 1, it->id, it->id_len);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, s->base.digest, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 3, it->vector, (sqlite3_uint64)s->base.dim * sizeof(float),
                                 SQLITE_STATIC);
    if (rc == SQLITE_OK && only_if_current)
        rc = sqlite3_bind_int64(st, 4, it->updated_ms);
    return rc == SQLITE_OK ? step_done(st) : rc;
}

static int by_id(sqlite_store *s, int which, const char *id, size_t id_len)
{
    sqlite3_stmt *st = stmt(s, which);
    int rc = bind_bytes(st, 1, id, id_len);
    return rc == SQLITE_OK ? step_done(st) : rc;
}

static int exists(sqlite_store *s, const char *id, size_t id_len, bool *out)
{
    sqlite3_stmt *st = stmt(s, ST_EXISTS);
    int rc = bind_bytes(st, 1, id, id_len);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int apply_op(sqlite_store *s, const news_store_op *op, bool *existed)
{
    const news_store_item *it = &op->item;
    bool was = false;
    int rc = exists(s, it->id, it->id_len, &was);
    if (rc != SQLITE_OK)
        return rc;
    if (existed)
        *existed = was;
    if (op->kind == NEWS_STORE_DELETE) {
        if (!was)
            return SQLITE_OK;
        rc = by_id(s, ST_DELETE, it->id, it->id_len);
        return rc == SQLITE_OK ? by_id(s, ST_DELETE_VECTORS, it->id, it->id_len) : rc;
    }
    sqlite3_stmt *st = stmt(s, ST_UPSERT);
    rc = bind_bytes(st, 1, it->id, it->id_len);
    if (rc == SQLITE_OK)
        rc = bind_bytes(st, 2, it->title, it->title_len);
    if (rc == SQLITE_OK)
        rc = bind_bytes(st, 3, it->category, it->category_len);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 4, it->updated_ms);
    if (rc == SQLITE_OK)
        rc = step_done(st);
    if (rc == SQLITE_OK && was)
        rc = by_id(s, ST_DELETE_VECTORS, it->id, it->id_len);
    if (rc == SQLITE_OK && it->vector)
        rc = put_vector(s, it, false);
    return rc;
}

/* ---- the operations ------------------------------------------------------------- */

static news_store_status store_write(news_store *base, const news_store_op *ops, size_t n,
                                     int flags, bool *existed, char *err, size_t err_cap)
{
    sqlite_store *s = (sqlite_store *)base;
    int rc = begin(s, true);
    const char *what = "cannot start a write";
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        what = "cannot write";
        if (ops[i].item.id_len == 0 || ops[i].item.id_len > NEWS_STORE_ID_MAX) {
            rollback(s);
            snprintf(err, err_cap, "%s: news id of %zu bytes (1 to %d)", base->location,
                     ops[i].item.id_len, NEWS_STORE_ID_MAX);
            return NEWS_STORE_CORRUPT;
        }
        rc = apply_op(s, &ops[i], existed ? &existed[i] : NULL);
    }
    if (rc == SQLITE_OK && (flags & NEWS_STORE_MARK_SEEDED)) {
        sqlite3_stmt *st = stmt(s, ST_MARK_SEEDED);
        rc = step_done(st);
    }
    if (rc == SQLITE_OK) {
        what = "cannot commit";
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        news_store_status st = fail(s, base->location, rc, what, err, err_cap);
        rollback(s);
        return st;
    }
    return NEWS_STORE_OK;
}

static news_store_status store_put_vectors(news_store *base, const news_store_item *items, size_t n,
                                           char *err, size_t err_cap)
{
    sqlite_store *s = (sqlite_store *)base;
    int rc = begin(s, true);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
        if (items[i].vector)
            rc = put_vector(s, &items[i], true);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        news_store_status st = fail(s, base->location, rc, "cannot store vectors", err, err_cap);
        rollback(s);
        return st;
    }
    return NEWS_STORE_OK;
}

/* Reads the row of a scan or get statement into an item. CORRUPT for a row
 * that breaks the contract. */
static news_store_status row_item(sqlite_store *s, sqlite3_stmt *st, news_store_item *it, char *err,
                                  size_t err_cap)
{
    memset(it, 0, sizeof *it);
    it->id = (const char *)sqlite3_column_text(st, 0);
    it->id_len = (size_t)sqlite3_column_bytes(st, 0);
    it->title = (const char *)sqlite3_column_text(st, 1);
    it->title_len = (size_t)sqlite3_column_bytes(st, 1);
    it->category = (const char *)sqlite3_column_text(st, 2);
    it->category_len = (size_t)sqlite3_column_bytes(st, 2);
    it->updated_ms = sqlite3_column_int64(st, 3);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        size_t bytes = (size_t)sqlite3_column_bytes(st, 4);
        it->vector = sqlite3_column_blob(st, 4);
        if (bytes != (size_t)s->base.dim * sizeof(float)) {
            snprintf(err, err_cap, "%s: news '%.*s': vector of %zu bytes, expected %zu (D=%d)",
                     s->base.location, (int)(it->id_len < 64 ? it->id_len : 64),
                     it->id ? it->id : "", bytes, (size_t)s->base.dim * sizeof(float), s->base.dim);
            return NEWS_STORE_CORRUPT;
        }
    }
    if (!it->id || it->id_len == 0 || it->id_len > NEWS_STORE_ID_MAX || !it->title) {
        snprintf(err, err_cap, "%s: a news row with an invalid id or title", s->base.location);
        return NEWS_STORE_CORRUPT;
    }
    return NEWS_STORE_OK;
}

/* Runs a bound scan/get statement: fn per row. */
static news_store_status run_items(sqlite_store *s, sqlite3_stmt *st, news_store_item_fn fn,
                                   void *user, size_t *n_rows, char *err, size_t err_cap)
{
    int rc;
    *n_rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        news_store_item it;
        news_store_status bad = row_item(s, st, &it, err, err_cap);
        if (bad != NEWS_STORE_OK) {
            sqlite3_reset(st);
            return bad;
        }
        ++*n_rows;
        if (fn(user, &it) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(s, s->base.location, rc, "cannot read", err, err_cap);
    return NEWS_STORE_OK;
}

static news_store_status store_scan(news_store *base, news_store_item_fn fn, void *user, char *err,
                                    size_t err_cap)
{
    sqlite_store *s = (sqlite_store *)base;
    int rc = begin(s, false);
    if (rc != SQLITE_OK)
        return fail(s, base->location, rc, "cannot read", err, err_cap);
    sqlite3_stmt *st = stmt(s, ST_SCAN);
    rc = sqlite3_bind_text(st, 1, base->digest, -1, SQLITE_STATIC);
    size_t n;
    news_store_status out = rc == SQLITE_OK
                                ? run_items(s, st, fn, user, &n, err, err_cap)
                                : fail(s, base->location, rc, "cannot read", err, err_cap);
    rollback(s); /* ends the read transaction */
    return out;
}

static news_store_status store_get(news_store *base, const char *id, size_t id_len,
                                   news_store_item_fn fn, void *user, char *err, size_t err_cap)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = stmt(s, ST_GET);
    int rc = sqlite3_bind_text(st, 1, base->digest, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = bind_bytes(st, 2, id, id_len);
    if (rc != SQLITE_OK)
        return fail(s, base->location, rc, "cannot read", err, err_cap);
    size_t n;
    news_store_status out = run_items(s, st, fn, user, &n, err, err_cap);
    if (out == NEWS_STORE_OK && n == 0) {
        snprintf(err, err_cap, "%s: no news '%.*s'", base->location,
                 (int)(id_len < 64 ? id_len : 64), id);
        return NEWS_STORE_NOT_FOUND;
    }
    return out;
}

static news_store_status store_info(news_store *base, news_store_info *out, char *err,
                                    size_t err_cap)
{
    sqlite_store *s = (sqlite_store *)base;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = stmt(s, ST_COUNT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        out->n_items = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return fail(s, base->location, rc, "cannot read", err, err_cap);
    st = stmt(s, ST_SEEDED);
    rc = sqlite3_step(st);
    out->seeded = rc == SQLITE_ROW;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, base->location, rc, "cannot read", err, err_cap);
    return NEWS_STORE_OK;
}

news_store_status news_store_sqlite_limit_pages(news_store *base, long max_pages, char *err,
                                                size_t err_cap)
{
    assert(base && base->ops == &sqlite_ops);
    sqlite_store *s = (sqlite_store *)base;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %ld", max_pages);
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? NEWS_STORE_OK
                           : fail(s, base->location, rc, "cannot limit pages", err, err_cap);
}

static const news_store_ops sqlite_ops = {
    .write = store_write,
    .put_vectors = store_put_vectors,
    .scan = store_scan,
    .get = store_get,
    .info = store_info,
    .poll = NULL,
    .close = store_close,
};

const news_store_backend news_store_sqlite = {
    .kind = "sqlite",
    .accepts = accepts_any,
    .open = store_open,
};
