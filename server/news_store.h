/* news_store: the durable home of a recommender's news catalog, behind one
 * small interface. A backend (the SQLite file of news_store_sqlite.c; a
 * PostgreSQL table shared by replicas) is a vtable; news_catalog.c keeps the
 * served copy in memory and calls the store on every write, before it
 * answers.
 *
 * What a store holds, per model:
 *   - items: news id -> title, category ("" when none), updated (unix ms);
 *   - vectors: (news id, weights digest) -> the news encoder's D floats for
 *     that item's current title under those weights. A store is opened for
 *     one digest and one D; it reads and writes only that digest's vectors.
 *     Writing an item (upsert) drops its vectors of every other digest, so a
 *     vector is never older than its title;
 *   - meta: "seeded" once the model's news.tsv has been imported (the file
 *     seeds an empty store once; after that the store is the truth).
 *
 * Contract every backend keeps:
 *   - DURABLE WHEN OK. A write (news_store_write) that returns NEWS_STORE_OK
 *     is on stable storage (fsync'd, or committed by the server) before it
 *     returns, so an acknowledged write survives kill -9 and power loss.
 *   - ALL OR NOTHING. The ops of one news_store_write call commit in one
 *     transaction: on any status but OK nothing of them is visible, before
 *     or after a restart. A failed write never damages earlier data.
 *   - ONE THREAD AT A TIME. A news_store is not thread-safe: its owner
 *     serializes calls (news_catalog holds its writer mutex around each).
 *     Two stores (even on the same file or table) may be used concurrently
 *     by different threads.
 *   - BORROWED POINTERS. Items passed in are borrowed for the call. Items
 *     passed to a callback are valid only during that callback: copy what
 *     you keep.
 *   - MESSAGES. Every status but OK comes with a message in err (err_cap
 *     bytes, NUL-terminated, may be cut) that names the store's location
 *     (the file path, or the DSN without its password) and the cause, e.g.
 *     "var/movielens-rec.news.sqlite: database or disk is full".
 *
 * How news_catalog and the API map the statuses (HTTP):
 *   NEWS_STORE_FULL          507 Insufficient Storage
 *   NEWS_STORE_READ_ONLY     503 + Retry-After
 *   NEWS_STORE_UNAVAILABLE   503 + Retry-After
 *   NEWS_STORE_IO            503 + Retry-After
 *   NEWS_STORE_NO_MEMORY     503
 *   NEWS_STORE_CORRUPT       at open: the daemon exits 1 naming the file (a
 *                            SIGHUP reload fails and keeps the old set);
 *                            later: 503
 *   NEWS_STORE_NOT_FOUND     404 (news_store_get only)
 *
 * Adding a backend: a file news_store_<kind>.c defining a
 * news_store_backend, and one line in news_store.c's backend table. */
#ifndef FF_NEWS_STORE_H
#define FF_NEWS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

/* Longest news id in bytes (MIND ids are like "N12345"); ids are 1..this
 * many bytes, any bytes but NUL. */
#define NEWS_STORE_ID_MAX 128
/* Longest weights digest (a sha256 in hex is 64). */
#define NEWS_STORE_DIGEST_MAX 64

typedef enum {
    NEWS_STORE_OK = 0,
    NEWS_STORE_NOT_FOUND,   /* news_store_get: no item with that id */
    NEWS_STORE_FULL,        /* disk, quota or database size limit reached (ENOSPC,
                               SQLITE_FULL, PostgreSQL 53100): nothing was written */
    NEWS_STORE_READ_ONLY,   /* the file or database refuses writes (EROFS, EACCES,
                               SQLITE_READONLY, a read-only PostgreSQL transaction) */
    NEWS_STORE_UNAVAILABLE, /* transient: locked or busy past the timeout, the
                               connection is down. Retrying may succeed; writes are
                               idempotent upserts/deletes, so a retry is safe */
    NEWS_STORE_CORRUPT,     /* not a news store, a malformed file, an unknown schema
                               version, or a row that breaks the contract (wrong vector
                               size, empty id) */
    NEWS_STORE_IO,          /* any other I/O or backend error */
    NEWS_STORE_NO_MEMORY,
} news_store_status;

/* "full", "read-only", ... for logs and metrics labels. Pure. */
const char *news_store_status_name(news_store_status s);

/* One news item. Strings are byte ranges, not necessarily NUL-terminated. */
typedef struct {
    const char *id; /* 1..NEWS_STORE_ID_MAX bytes, no NUL */
    size_t id_len;
    const char *title; /* UTF-8 */
    size_t title_len;
    const char *category; /* "" (len 0) when none; may then be NULL */
    size_t category_len;
    int64_t updated_ms;  /* unix time in ms of the last write, set by the caller */
    const float *vector; /* the store's D floats for its digest, or NULL: none stored */
} news_store_item;

typedef enum {
    NEWS_STORE_UPSERT, /* insert or replace item (its vector, if not NULL, for the
                          store's digest; its other digests' vectors are dropped) */
    NEWS_STORE_DELETE, /* delete item.id (and all its vectors); other fields ignored */
} news_store_op_kind;

typedef struct {
    news_store_op_kind kind;
    news_store_item item;
} news_store_op;

/* Flags of news_store_write. */
enum {
    NEWS_STORE_MARK_SEEDED = 1, /* also record, in the same transaction, that the
                                   news.tsv import is done (news_store_info.seeded) */
};

/* What a store's open tells its caller. */
typedef struct {
    size_t n_items;
    bool seeded; /* a write with NEWS_STORE_MARK_SEEDED has committed */
} news_store_info;

/* Called once per item by scan and get. Return 0 to go on, non-zero to stop
 * the scan (the scan then returns NEWS_STORE_OK). */
typedef int (*news_store_item_fn)(void *user, const news_store_item *item);

/* Called once per change made by another process, by poll (deleted: only
 * item->id is set, item->title is NULL). Return 0. */
typedef int (*news_store_change_fn)(void *user, const news_store_item *item, bool deleted);

typedef struct news_store news_store;

/* A backend's operations. Every function but close returns a status and,
 * unless OK, a message in err. */
typedef struct {
    /* Commits the n ops (n >= 1) in one transaction (see the contract), in
     * order; an id may appear more than once (the last op wins). existed[i]
     * (may be NULL) is set to whether op i's id existed just before op i ran
     * (upsert: replaced; delete: found). Deleting an unknown id is not an
     * error: existed[i] is false. */
    news_store_status (*write)(news_store *s, const news_store_op *ops, size_t n, int flags,
                               bool *existed, char *err, size_t err_cap);
    /* Stores vectors for the store's digest of the items n items (id,
     * updated_ms, vector), e.g. after re-encoding with new weights, in one
     * transaction. An item whose updated_ms differs in the store (written
     * since it was read) or that is gone is skipped: its writer stored its
     * own vector. */
    news_store_status (*put_vectors)(news_store *s, const news_store_item *items, size_t n,
                                     char *err, size_t err_cap);
    /* Calls fn for every item, in no particular order, with its vector for
     * the store's digest (NULL when not stored). One consistent snapshot. */
    news_store_status (*scan)(news_store *s, news_store_item_fn fn, void *user, char *err,
                              size_t err_cap);
    /* Calls fn once with item `id`, or returns NEWS_STORE_NOT_FOUND. */
    news_store_status (*get)(news_store *s, const char *id, size_t id_len, news_store_item_fn fn,
                             void *user, char *err, size_t err_cap);
    news_store_status (*info)(news_store *s, news_store_info *out, char *err, size_t err_cap);
    /* Optional (NULL for a store one process owns, like the SQLite file):
     * calls fn for every item that another process wrote or deleted since
     * the previous poll (or since open), with its vector for this digest
     * when stored. The backend keeps its own cursor. The caller applies
     * each change in memory with news_catalog_apply (an item without a
     * vector for this digest must be encoded first). */
    news_store_status (*poll)(news_store *s, news_store_change_fn fn, void *user, char *err,
                              size_t err_cap);
    /* Closes and frees (never fails; a NULL store is a no-op). */
    void (*close)(news_store *s);
    /* Optional (NULL: always reachable): false while a database server
     * cannot be reached, i.e. while writes answer UNAVAILABLE at once.
     * Lock-free, any thread (for the metrics and readiness). */
    bool (*reachable)(news_store *s);
} news_store_ops;

/* The head of every backend's store struct (its first member). */
struct news_store {
    const news_store_ops *ops;
    const char *kind; /* "sqlite", "postgresql" */
    char *location;   /* owned: the path, or the DSN without its password */
    char digest[NEWS_STORE_DIGEST_MAX + 1];
    int dim;
};

/* Where and for what a store is opened. */
typedef struct {
    const char *location;   /* a file path, or "postgresql://..." */
    const char *model_name; /* for messages and, in a shared database, the key */
    const char *digest;     /* the weights' sha256 in hex (model->weights_sha256) */
    int dim;                /* D: floats per vector */
} news_store_config;

/* A backend: whether it takes a location, and how to open it. */
typedef struct {
    const char *kind;
    bool (*accepts)(const char *location);
    /* Opens (creating an empty store when there is none, with its parent
     * directory existing) and checks it. NEWS_STORE_CORRUPT for a file that
     * is not a store, a malformed one or one of a newer schema. */
    news_store_status (*open)(const news_store_config *cfg, news_store **out, char *err,
                              size_t err_cap);
} news_store_backend;

/* Opens cfg->location with the first backend that accepts it (SQLite takes
 * any location no other backend claims). Returns OK with *out (close it with
 * news_store_close), or a status with a message naming the location. */
FF_MUST_CHECK news_store_status news_store_open(const news_store_config *cfg, news_store **out,
                                                char *err, size_t err_cap);

/* The store file of model `model_name` under dir: "DIR/NAME.news.sqlite".
 * Returns 0, or -1 when it does not fit out_cap. Pure. */
FF_MUST_CHECK int news_store_path(const char *dir, const char *model_name, char *out,
                                  size_t out_cap);

/* Thin wrappers over s->ops (see news_store_ops). */
FF_MUST_CHECK news_store_status news_store_write(news_store *s, const news_store_op *ops, size_t n,
                                                 int flags, bool *existed, char *err,
                                                 size_t err_cap);
FF_MUST_CHECK news_store_status news_store_put_vectors(news_store *s, const news_store_item *items,
                                                       size_t n, char *err, size_t err_cap);
FF_MUST_CHECK news_store_status news_store_scan(news_store *s, news_store_item_fn fn, void *user,
                                                char *err, size_t err_cap);
FF_MUST_CHECK news_store_status news_store_get(news_store *s, const char *id, size_t id_len,
                                               news_store_item_fn fn, void *user, char *err,
                                               size_t err_cap);
FF_MUST_CHECK news_store_status news_store_info_get(news_store *s, news_store_info *out, char *err,
                                                    size_t err_cap);
/* Returns OK at once (nothing to do) when the backend has no poll. */
FF_MUST_CHECK news_store_status news_store_poll(news_store *s, news_store_change_fn fn, void *user,
                                                char *err, size_t err_cap);
void news_store_close(news_store *s);
/* 1 while the store's server can be reached, 0 while it cannot (writes
 * answer UNAVAILABLE at once), -1 for a backend that has no server to
 * reach (the SQLite file). Any thread. */
int news_store_up(news_store *s);

/* The SQLite backend (news_store_sqlite.c). */
extern const news_store_backend news_store_sqlite;
/* The PostgreSQL backend (news_store_postgresql.c): locations
 * "postgresql://..." and "postgres://...". */
extern const news_store_backend news_store_postgresql;

/* SQLite only, for tests and benchmarks of a full disk: caps the file at
 * max_pages pages (PRAGMA max_page_count) on this connection. */
FF_MUST_CHECK news_store_status news_store_sqlite_limit_pages(news_store *s, long max_pages,
                                                              char *err, size_t err_cap);

#endif
