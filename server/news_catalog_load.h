/* news_catalog_load: builds a recommender's news catalog at load time.
 *
 * With a store (server.state_dir): opens DIR/NAME.news.sqlite (creating it),
 * seeds it once from the model's news.tsv when it is empty and was never
 * seeded (one transaction), reads every item with its vector for the
 * model's weights digest, and encodes the titles that have none (new
 * weights, or items written under other weights), storing those vectors
 * for the next start. A restart with the same weights encodes nothing.
 *
 * Without a store: encodes the news.tsv into an in-memory catalog (lost on
 * restart; kept across SIGHUP reloads by the registry).
 *
 * Runs on the loader thread with a workspace of the model; messages start
 * with the file they are about ("var/rec.news.sqlite: ...",
 * "models/rec/news.tsv:3: ..."). */
#ifndef FF_NEWS_CATALOG_LOAD_H
#define FF_NEWS_CATALOG_LOAD_H

#include <stddef.h>

#include "compiler.h"
#include "model.h"
#include "news_catalog.h"

/* Progress, e.g. for the log every few thousand titles. */
typedef void (*news_catalog_progress_fn)(void *user, const char *message);

typedef struct {
    const model *m;
    fastformer_workspace *ws; /* room for max_batch_size texts / max_batch_tokens tokens */
    int max_batch_size;
    int max_batch_tokens;
    const char *model_name;
    const char *store_location;        /* NULL: in memory only */
    const char *news_tsv;              /* MIND news.tsv, or NULL */
    size_t max_items;                  /* the catalog's limit (max_catalog_items) */
    news_catalog_progress_fn progress; /* may be NULL */
    void *progress_user;
} news_catalog_source;

/* The identity of the catalog src would build, for reuse across reloads:
 * the weights digest, the store (or the news.tsv of an in-memory catalog).
 * Returns 0, or -1 when it does not fit. Pure. */
FF_MUST_CHECK int news_catalog_source_key(const news_catalog_source *src, char *out,
                                          size_t out_cap);

/* Builds the catalog (see the top of this file) with its store attached, its
 * limit and key set. Returns 0 with *out (one reference), or -1 with a
 * message; nothing is left open. */
FF_MUST_CHECK int news_catalog_load(const news_catalog_source *src, news_catalog **out, char *err,
                                    size_t err_cap);

/* Encodes n titles (UTF-8, lens[i] bytes) into out (n x D floats) in
 * batches of at most max_batch_size titles / max_batch_tokens padded tokens,
 * truncating each at the model's maximum. Returns 0, or -1 with the
 * tokenizer's message about title i in err and *bad = i. */
FF_MUST_CHECK int news_encode_titles(const news_catalog_source *src, const char *const *titles,
                                     const size_t *lens, size_t n, float *out, size_t *bad,
                                     char *err, size_t err_cap);

/* Parses the MIND news.tsv in buf[0..len) (`source_name` names it in
 * messages) and encodes every title into a new in-memory catalog (ids,
 * titles, categories and vectors; updated_ms 0). Returns 0 with *out, or -1
 * with a message naming the file and line ("news.tsv:3: column 4 (title) is
 * missing", "news.tsv:7: title: invalid UTF-8 at byte 12"). */
FF_MUST_CHECK int news_catalog_build(const news_catalog_source *src, const void *buf, size_t len,
                                     const char *source_name, news_catalog **out, char *err,
                                     size_t err_cap);

#endif
