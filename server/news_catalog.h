/* news_catalog: a recommender's news items in memory, by news id: each row
 * holds the news encoder's vector, the title, the category and when it was
 * last written. It is the served copy of the model's news store
 * (news_store.h): a write (news_catalog_write) commits to the store first
 * and changes the rows only once the store has acknowledged it, so what the
 * catalog serves is always on disk. Without a store (no state directory) the
 * catalog lives in memory only.
 *
 * Built at load (news_catalog_load.h: from the store, seeding it once from
 * the model's news.tsv, encoding the titles that have no vector for the
 * model's weights), then shared: a SIGHUP reload that keeps the model's
 * weights and store hands the same catalog to the new set (reference
 * counted), so no acknowledged write is lost across reloads. A reload that
 * builds a new catalog for the model retires the old one first: writes to a
 * retired catalog answer NEWS_WRITE_RETIRED (503, retry) until the load
 * fails (the old one is reinstated) or the new set is in.
 *
 * Concurrency: any number of readers and writers. Writers are serialized by
 * a mutex held across the store's commit; readers copy under a shared lock
 * that a writer takes exclusively only to change rows, after the commit, so
 * reads never wait for the disk. */
#ifndef FF_NEWS_CATALOG_H
#define FF_NEWS_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "model.h"
#include "news_store.h"
#include "parallel.h"

typedef struct news_catalog news_catalog;

/* Longest accepted news id in bytes (MIND ids are like "N12345"). */
#define NEWS_CATALOG_ID_MAX NEWS_STORE_ID_MAX
/* Most items a catalog-wide top-k returns. */
#define NEWS_CATALOG_TOP_K_MAX 1000

/* An empty in-memory catalog of D-float vectors with room for `capacity`
 * items before it grows, no store and no item limit. One reference. NULL
 * when out of memory. */
news_catalog *news_catalog_new(int dim, size_t capacity);

/* References: the last release frees the rows and closes the store. Any
 * thread; release of NULL is a no-op. */
void news_catalog_retain(news_catalog *c);
void news_catalog_release(news_catalog *c);

/* Set-up, before the catalog is shared (loader thread): the store it writes
 * through (taken: closed with the catalog), and its identity for reuse
 * across reloads (copied; e.g. the store's location and the weights'
 * digest). The limit (the most items it may hold: writes that would pass it
 * get NEWS_WRITE_LIMIT) may also change later, from any thread. */
void news_catalog_attach_store(news_catalog *c, news_store *store);
void news_catalog_set_limit(news_catalog *c, size_t max_items);
FF_MUST_CHECK int news_catalog_set_key(news_catalog *c, const char *key);
const char *news_catalog_key(const news_catalog *c);
/* The store's location, or NULL for an in-memory catalog. */
const char *news_catalog_store_location(const news_catalog *c);
size_t news_catalog_limit(news_catalog *c);

/* Adds or replaces a row in memory only (no store), for building a catalog
 * before it is shared: id (1..NEWS_CATALOG_ID_MAX bytes, no NUL), title,
 * category, updated_ms and vector (D floats, required) of `item`. Returns 0
 * (with *replaced when it existed), or -1 with a message ("news id is
 * empty", "news id longer than 128 bytes", "out of memory adding news 'X'"). */
FF_MUST_CHECK int news_catalog_put_item(news_catalog *c, const news_store_item *item,
                                        bool *replaced, char *err, size_t err_cap);

/* news_catalog_put_item with an empty title and category, updated_ms 0. */
FF_MUST_CHECK int news_catalog_put(news_catalog *c, const char *id, size_t id_len, const float *vec,
                                   bool *replaced, char *err, size_t err_cap);

/* ---- durable writes ---------------------------------------------------------- */

typedef enum {
    NEWS_WRITE_OK = 0,
    NEWS_WRITE_INVALID,   /* an id breaks the rules, or appears twice in one write: 400 */
    NEWS_WRITE_LIMIT,     /* the write would take the catalog past its limit: 409 */
    NEWS_WRITE_RETIRED,   /* a reload is replacing this catalog: 503, retry */
    NEWS_WRITE_STORE,     /* the store refused (see store): nothing changed */
    NEWS_WRITE_NO_MEMORY, /* 503: nothing changed */
} news_write_status;

typedef struct {
    news_write_status status;
    news_store_status store; /* NEWS_WRITE_STORE: the store's status, else OK */
    char message[400];       /* names the model's store and the cause */
} news_write_result;

/* Applies the n ops (upserts with their vector, deletes) as one unit: all
 * are committed to the store (one transaction) and then applied in memory,
 * or none is. Ids must be distinct. Sets each op's item.updated_ms to the
 * write's time (unix ms) and existed[i] (may be NULL) to whether op i's id
 * was in the catalog. Returns result->status. Any thread; blocks for the
 * store's commit (an fsync). */
news_write_status news_catalog_write(news_catalog *c, news_store_op *ops, size_t n, bool *existed,
                                     news_write_result *result);

/* Applies in memory only a change that is already durable elsewhere: an
 * item another process wrote to a shared store (news_store_poll), with its
 * vector for this catalog's weights, or its deletion (deleted: only id is
 * read). Returns 0, or -1 with a message (a bad id, out of memory). Any
 * thread; serialized with news_catalog_write. */
FF_MUST_CHECK int news_catalog_apply(news_catalog *c, const news_store_item *item, bool deleted,
                                     char *err, size_t err_cap);

/* ---- changes made by other replicas (a shared store) ------------------------------ */

/* Makes the vector (D floats into out) of a title with the model's news
 * encoder, for an item the store has no vector of these weights for.
 * Returns 0, or -1 with a message. */
typedef int (*news_catalog_encode_fn)(void *user, const char *title, size_t title_len, float *out,
                                      char *err, size_t err_cap);

typedef struct {
    size_t applied;       /* upserts and deletes now in memory */
    size_t skipped;       /* items that could not be applied (encoding failed, out of memory) */
    char first_skip[300]; /* why the first was skipped */
} news_sync_result;

/* Applies to the rows what other processes wrote to the catalog's store
 * since the previous call (news_store_poll: only a store shared by replicas
 * reports changes; each change as news_catalog_apply), upserts with their
 * vector made by encode when the store has none for these weights (encode
 * may be NULL: such items are skipped), and deletes. The writer mutex is
 * held across the poll, so no write of this catalog commits between the
 * store's read of a row and its application (which would bring back the
 * row's older state). Returns the store's
 * status (OK without a store); *out counts what was done. Any thread. */
news_store_status news_catalog_sync(news_catalog *c, news_catalog_encode_fn encode, void *user,
                                    news_sync_result *out, char *err, size_t err_cap);

/* news_store_up of the catalog's store: 1 reachable, 0 not, -1 no store or
 * one without a server (SQLite). Any thread. */
int news_catalog_store_up(news_catalog *c);

/* Writes the store refused with `status`, since the catalog was built. */
uint64_t news_catalog_store_errors(const news_catalog *c, news_store_status status);

/* Retire: writes answer NEWS_WRITE_RETIRED from the moment this returns
 * (it waits for a write in progress). Unretire undoes it. Any thread. */
void news_catalog_retire(news_catalog *c);
void news_catalog_unretire(news_catalog *c);

/* ---- reads ----------------------------------------------------------------------- */

/* Copies the vector of `id` into out (D floats) and returns true, or returns
 * false when the id is unknown. Any thread. */
bool news_catalog_get(news_catalog *c, const char *id, size_t id_len, float *out);

/* A copy of item `id`'s fields (not its vector). */
typedef struct {
    char *title;    /* malloc'ed, NUL-terminated: free both */
    char *category; /* "" when none */
    int64_t updated_ms;
} news_catalog_entry;

/* Fills *out and returns 1, 0 when the id is unknown, -1 when out of memory.
 * Any thread. */
int news_catalog_describe(news_catalog *c, const char *id, size_t id_len, news_catalog_entry *out);

size_t news_catalog_count(news_catalog *c);
int news_catalog_dim(const news_catalog *c);

/* One result of news_catalog_top_k. */
typedef struct news_catalog_hit {
    char id[NEWS_CATALOG_ID_MAX + 1]; /* NUL-terminated */
    float score;
} news_catalog_hit;

/* int16s of scratch a ranking of D-float vectors needs: the user in int16,
 * then in int8, split in two halves for the int4 rows. */
#define NEWS_CATALOG_SCRATCH(d) (2 * (size_t)(d) + 2)

/* What to rank. */
typedef struct {
    const float *user;       /* D floats; NULL = the zero vector (every score 0) */
    int k;                   /* 1..NEWS_CATALOG_TOP_K_MAX */
    int64_t since_ms;        /* only items updated at or after; INT64_MIN = all */
    const char *const *skip; /* ids to leave out (e.g. the history), n_skip of them */
    const size_t *skip_len;
    int n_skip;
    int16_t *scratch;    /* NEWS_CATALOG_SCRATCH(D) int16s the ranking overwrites (the
                            caller's, so that it allocates nothing); required with a user */
    parallel_team *team; /* lanes to split the scan over, owned by the calling thread
                            (parallel.h); NULL: the calling thread alone */
} news_catalog_query;

/* Scores every item (dot(user, vector)) and writes the best min(k, eligible
 * items) into out[0..k), best first: higher score, then the more recently
 * updated, then the smaller id. Returns how many. Exact: a first pass over
 * the rows' int4 copies, then the int8 copies of the few rows that pass
 * (both against the user rounded to int16, in integers) bound each score,
 * and only the rows whose bound may still enter the top k are scored in
 * float (see news_catalog_top_k.c). The rows are split in blocks over the
 * team's lanes; the result does not depend on how. Allocates nothing. Any
 * thread (shared lock); the team's owner only. */
int news_catalog_top_k(news_catalog *c, const news_catalog_query *q, news_catalog_hit *out);

/* Heap bytes the catalog holds now (for the daemon's memory estimate): the
 * struct; per row of capacity (the items after a load, at least 16; doubled
 * when full) D floats, their D-byte int8 copy and its float scale, their
 * (D + 1) / 2-byte int4 copy with three floats (scale, residual, norm), a text
 * pointer, an id length, a title length and an updated time (8 bytes each);
 * each row's text (id, title and category with a NUL each) as the
 * allocator's chunk for it (len + 8, rounded up to 16, at least 32); and a
 * uint32 table of the smallest power of two >= 16 and >= 2 x capacity
 * slots. Any thread. */
size_t news_catalog_bytes(const news_catalog *c);

#endif
