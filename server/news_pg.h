/* news_pg: a recommender's news catalog in PostgreSQL, one table shared by
 * every replica (news_store: "postgresql://..." in the model's config).
 *
 * The table (created at first use with the functions that write it):
 *
 *   fastformerd_news (model text, news_id text, title text, category text,
 *                     updated timestamptz, digest text, vector bytea,
 *                     deleted boolean, seq bigint,  PRIMARY KEY (model, news_id))
 *
 * `vector` is the item's encoded news vector, D float32 little-endian, made
 * by the weights whose digest is `digest`. Each write takes a per-model
 * advisory lock for its transaction and stamps every row it touches with
 * nextval('fastformerd_news_seq'), so for one model seq order is commit
 * order: a replica that has applied every change up to seq S gets all the
 * later ones, in order, from "seq > S". A delete leaves a tombstone (deleted,
 * no title, no vector) so that other replicas see it the same way. Each write
 * sends NOTIFY fastformerd_news '<model>'.
 *
 * Changes reach the caller's in-memory catalog through `apply`, in seq
 * order, never two at once: from the initial load (news_pg_open), from the
 * writer's thread right after its commit (read-your-writes), and from the
 * sync thread, which LISTENs and catches up on each notification and every
 * resync interval (the safety net for a notification lost while
 * reconnecting). The sync thread also reconnects with backoff when the
 * server goes away; meanwhile writes fail fast with NEWS_PG_UNAVAILABLE and
 * the caller keeps serving reads from memory. */
#ifndef FF_NEWS_PG_H
#define FF_NEWS_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

typedef struct news_pg news_pg;

/* One change of the table, borrowed for the apply call only. */
typedef struct {
    int64_t seq;
    const char *news_id; /* NUL-terminated */
    size_t id_len;
    bool deleted;         /* a tombstone: only news_id and updated_ms are set */
    const char *title;    /* NUL-terminated */
    const char *category; /* "" when none */
    int64_t updated_ms;   /* Unix ms, the database server's clock */
    /* D floats (aligned), or NULL when the row was encoded by other weights
     * (another digest, e.g. during a rolling upgrade) or its vector is not
     * D floats: re-encode the title. */
    const float *vector;
} news_pg_change;

typedef struct {
    void *user;
    /* Applies one change to the in-memory catalog. Serialized by the store
     * (one at a time, in seq order); on the loader, a writer's or the sync
     * thread. Must not call back into the store. */
    void (*apply)(void *user, const news_pg_change *change);
    /* The database became reachable (up) or not: called on the sync thread
     * at each transition, after the store logged it. May be NULL. */
    void (*on_state)(void *user, bool up);
} news_pg_events;

typedef struct {
    const char *dsn;    /* libpq URI or key=value string; borrowed during open */
    const char *model;  /* the model's name: its rows in the shared table */
    const char *digest; /* the model's weights digest (vectors it can use) */
    int dim;            /* D, floats per vector */
    int resync_ms;      /* catch-up interval without notifications (> 0) */
    int timeout_ms;     /* longest wait for one statement (> 0) */
    news_pg_events events;
} news_pg_config;

/* Returned by the writes when the database cannot be reached (not
 * connected, or the connection broke during the write). The write may or
 * may not have committed in the latter case; retrying it is safe. */
#define NEWS_PG_UNAVAILABLE (-2)

/* Connects (one attempt), creates the table and functions when missing,
 * loads every item of the model through events.apply and starts the sync
 * thread. Returns 0 with *out, or -1 with a message naming the database
 * ("news store postgresql://db:5432/news: connection to server at ...
 * failed: Connection refused"). Loader thread. */
FF_MUST_CHECK int news_pg_open(const news_pg_config *cfg, news_pg **out, char *err,
                               size_t err_cap);

/* Stops the sync thread and closes the connections. NULL ok. */
void news_pg_close(news_pg *s);

/* One item to write, borrowed for the call. */
typedef struct {
    const char *news_id;
    size_t id_len;
    const char *title;
    size_t title_len;
    const char *category; /* NULL or "" for none */
    size_t category_len;
    const float *vector; /* D floats, encoded by the model's weights */
} news_pg_item;

/* Upserts items[0..n) in one transaction (all or nothing) and applies the
 * result to the catalog before returning. Sets *created and *replaced (a
 * replaced item was live; one re-created after a delete counts as created)
 * and *updated_ms (the commit's timestamp, shared by every item). Returns 0;
 * NEWS_PG_UNAVAILABLE with a message when the database cannot be reached;
 * -1 with the database's message for any other failure. Any thread; writes
 * are serialized. */
FF_MUST_CHECK int news_pg_put(news_pg *s, const news_pg_item *items, size_t n, size_t *created,
                              size_t *replaced, int64_t *updated_ms, char *err, size_t err_cap);

/* Deletes one item (leaves a tombstone). Sets *found (false: no live item
 * with that id). Returns 0, NEWS_PG_UNAVAILABLE or -1 as news_pg_put. */
FF_MUST_CHECK int news_pg_delete(news_pg *s, const char *id, size_t id_len, bool *found, char *err,
                                 size_t err_cap);

/* Writes items[0..n) only when the model has no row at all (not even a
 * tombstone): the one-time seed of an empty table from news.tsv. Several
 * replicas may race: exactly one seeds. Sets *seeded. Returns as
 * news_pg_put. Loader thread, after news_pg_open. */
FF_MUST_CHECK int news_pg_seed(news_pg *s, const news_pg_item *items, size_t n, bool *seeded,
                               char *err, size_t err_cap);

typedef struct {
    bool up;                 /* both connections open */
    int64_t down_since_ms;   /* Unix ms of the last loss while down; 0 when up */
    uint64_t disconnects;    /* times the database was lost */
    uint64_t notifications;  /* NOTIFYs received for this model */
    uint64_t changes;        /* changes applied (load, writes, catch-ups) */
    int64_t last_seq;        /* the latest change applied */
} news_pg_stats;

/* Lock-free snapshot. Any thread. */
void news_pg_stats_get(const news_pg *s, news_pg_stats *out);

/* "postgresql://HOST:PORT/DB" of the store (no credentials), for messages. */
const char *news_pg_where(const news_pg *s);

#endif
