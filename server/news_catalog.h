/* news_catalog: the news vectors of a recommender, by news id. Built once at
 * load from a MIND news.tsv (every title tokenized and encoded in batches into
 * an (n_news, D) matrix with an id -> row hash) and updated at run time by
 * PUT /v1/models/{name}/news/{id} (add or replace one item).
 *
 * Concurrency: any number of readers and writers. A reader copies a vector
 * under a shared lock and never sees a half-written one; a writer (put) takes
 * the lock exclusively for the copy only. Growth beyond the initial capacity
 * reallocates under the exclusive lock (rare: PUTs of new ids). */
#ifndef FF_NEWS_CATALOG_H
#define FF_NEWS_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "model.h"

typedef struct news_catalog news_catalog;

/* Longest accepted news id in bytes (MIND ids are like "N12345"). */
#define NEWS_CATALOG_ID_MAX 128

/* An empty catalog of D-float vectors with room for `capacity` items before
 * it grows. NULL when out of memory. */
news_catalog *news_catalog_new(int dim, size_t capacity);
void news_catalog_free(news_catalog *c);

/* Progress of news_catalog_build, e.g. for the log every few thousand titles. */
typedef void (*news_catalog_progress_fn)(void *user, size_t done, size_t total);

/* Parses the MIND news.tsv in buf[0..len) (mind_news_parse; `source_name`
 * names it in messages), tokenizes every title with the model's tokenizer
 * (truncating at model_max_tokens) and encodes them in batches of at most
 * max_batch_size titles / max_batch_tokens padded tokens in `ws`, a
 * workspace of `m` that has room for them. Returns a new catalog in *out, or
 * -1 with a message naming the file and line ("news.tsv:3: column 4 (title)
 * is missing", "news.tsv:7: title: invalid UTF-8 at byte 12"). */
FF_MUST_CHECK int news_catalog_build(const model *m, fastformer_workspace *ws, const void *buf,
                                     size_t len, const char *source_name, int max_batch_size,
                                     int max_batch_tokens, news_catalog_progress_fn progress,
                                     void *progress_user, news_catalog **out, char *err,
                                     size_t err_cap);

/* Adds or replaces the vector of news `id` (id_len bytes, 1..NEWS_CATALOG_ID_MAX,
 * any bytes but NUL). Returns 0 (with *replaced set when it existed), or -1
 * with a message ("news id is empty", "news id longer than 128 bytes", "out of
 * memory"). Any thread. */
FF_MUST_CHECK int news_catalog_put(news_catalog *c, const char *id, size_t id_len, const float *vec,
                                   bool *replaced, char *err, size_t err_cap);

/* Copies the vector of `id` into out (D floats) and returns true, or returns
 * false when the id is unknown. Any thread. */
bool news_catalog_get(news_catalog *c, const char *id, size_t id_len, float *out);

size_t news_catalog_count(news_catalog *c);
int news_catalog_dim(const news_catalog *c);

/* Heap bytes the catalog holds now (for the daemon's memory estimate): the
 * struct; per row of capacity (the news of news.tsv after a build, at least
 * 16; doubled by each PUT that finds it full) D floats, an id pointer and an
 * id length; each id string as the allocator's chunk for it (len + 1 bytes
 * plus glibc's 8-byte header, rounded up to 16, at least 32); and a uint32
 * table of the smallest power of two >= 16 and >= 2 x capacity slots. Any
 * thread. */
size_t news_catalog_bytes(const news_catalog *c);

#endif
