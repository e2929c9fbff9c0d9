/* news_catalog_load: a recommender's catalog from its store, seeded once
 * from news.tsv, with the titles that lack a vector for the model's weights
 * encoded in batches (see news_catalog_load.h). */
#include "news_catalog_load.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mind.h"
#include "whole_file.h"

/* Items per put_vectors transaction while storing re-encoded vectors. */
#define VECTOR_CHUNK 4096

FF_PRINTF(2, 3) static void progress(const news_catalog_source *src, const char *fmt, ...)
{
    if (!src->progress)
        return;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    src->progress(src->progress_user, msg);
}

int news_catalog_source_key(const news_catalog_source *src, char *out, size_t out_cap)
{
    int n = snprintf(
        out, out_cap, "%s|%s|%s", src->m->weights_sha256, src->store_location ? "store" : "memory",
        src->store_location ? src->store_location : (src->news_tsv ? src->news_tsv : ""));
    return n < 0 || (size_t)n >= out_cap ? -1 : 0;
}

int news_encode_titles(const news_catalog_source *src, const char *const *titles,
                       const size_t *lens, size_t n_titles, float *out, size_t *bad, char *err,
                       size_t err_cap)
{
    const model *m = src->m;
    fastformer_workspace *ws = src->ws;
    const int D = m->config.encoder.hidden_size, P = model_max_tokens(m);
    int max_batch_size = src->max_batch_size, max_batch_tokens = src->max_batch_tokens;
    if (max_batch_size > ws->max_seqs)
        max_batch_size = ws->max_seqs;
    if (max_batch_tokens > ws->max_tokens)
        max_batch_tokens = ws->max_tokens;
    assert(max_batch_size >= 1 && max_batch_tokens >= P);
    /* One spare row: the title that does not fit is tokenized before the flush. */
    int32_t *ids = malloc(((size_t)max_batch_size + 1) * (size_t)P * sizeof *ids);
    int32_t *n_ids = malloc((size_t)max_batch_size * sizeof *n_ids);
    const int32_t **rows = malloc((size_t)max_batch_size * sizeof *rows);
    if (!ids || !n_ids || !rows) {
        free(ids);
        free(n_ids);
        free(rows);
        snprintf(err, err_cap, "out of memory encoding %zu titles", n_titles);
        *bad = 0;
        return -1;
    }
    size_t first = 0, last_reported = 0; /* title index of the batch's first row */
    int n = 0;
    int32_t longest = 0;
    for (size_t k = 0; k <= n_titles; k++) {
        int32_t len_k = 0;
        if (k < n_titles) {
            int32_t *row = ids + (size_t)n * (size_t)P;
            size_t got = 0;
            bool truncated = false;
            if (model_tokenize(m, titles[k], lens[k], row, &got, &truncated, err, err_cap) != 0) {
                *bad = k;
                free(ids);
                free(n_ids);
                free(rows);
                return -1;
            }
            len_k = (int32_t)got;
            int32_t l = len_k > longest ? len_k : longest;
            if (n < max_batch_size && (int64_t)(n + 1) * l <= max_batch_tokens) {
                n_ids[n] = len_k;
                rows[n] = row;
                longest = l;
                n++;
                continue;
            }
        }
        if (n > 0) {
            model_encode_ids(m, ws, rows, n_ids, n, out + first * (size_t)D);
            first += (size_t)n;
            if (first == n_titles || first - last_reported >= 5000) {
                last_reported = first;
                progress(src, "model '%s': encoded %zu/%zu news titles", src->model_name, first,
                         n_titles);
            }
        }
        if (k < n_titles) {
            memmove(ids, ids + (size_t)n * (size_t)P, (size_t)len_k * sizeof *ids);
            n_ids[0] = len_k;
            rows[0] = ids;
            longest = len_k;
            n = 1;
        }
    }
    assert(first == n_titles);
    free(ids);
    free(n_ids);
    free(rows);
    return 0;
}

/* ---- news.tsv ------------------------------------------------------------------- */

/* Parses and encodes a news.tsv: the table and its vectors (t->n_news x D). */
static int tsv_encode(const news_catalog_source *src, const void *buf, size_t len, const char *name,
                      mind_news_table **t_out, float **vec_out, char *err, size_t err_cap)
{
    *t_out = NULL;
    *vec_out = NULL;
    mind_news_table *t = NULL;
    if (mind_news_parse(buf, len, name, &t, err, err_cap) != 0)
        return -1;
    const size_t D = (size_t)src->m->config.encoder.hidden_size;
    size_t n = t->n_news;
    const char **titles = calloc(n ? n : 1, sizeof *titles);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    float *vecs = malloc((n ? n : 1) * D * sizeof *vecs);
    if (!titles || !lens || !vecs) {
        snprintf(err, err_cap, "%s: out of memory for %zu news", name, n);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        titles[i] = t->news[i].title;
        lens[i] = t->news[i].title_bytes;
    }
    size_t bad;
    char e[200];
    if (news_encode_titles(src, titles, lens, n, vecs, &bad, e, sizeof e) != 0) {
        snprintf(err, err_cap, "%s:%zu: title: %s", name, bad < n ? t->news[bad].line : 0, e);
        goto fail;
    }
    free(titles);
    free(lens);
    *t_out = t;
    *vec_out = vecs;
    return 0;
fail:
    free(titles);
    free(lens);
    free(vecs);
    mind_news_free(t);
    return -1;
}

static news_store_item tsv_item(const mind_news_table *t, size_t i, const float *vecs, size_t D,
                                int64_t updated_ms)
{
    const mind_news *nw = &t->news[i];
    return (news_store_item){.id = nw->id,
                             .id_len = strlen(nw->id),
                             .title = nw->title,
                             .title_len = nw->title_bytes,
                             .category = nw->category,
                             .category_len = strlen(nw->category),
                             .updated_ms = updated_ms,
                             .vector = vecs + i * D};
}

int news_catalog_build(const news_catalog_source *src, const void *buf, size_t len,
                       const char *source_name, news_catalog **out, char *err, size_t err_cap)
{
    *out = NULL;
    const char *name = source_name ? source_name : "news.tsv";
    mind_news_table *t;
    float *vecs;
    if (tsv_encode(src, buf, len, name, &t, &vecs, err, err_cap) != 0)
        return -1;
    const size_t D = (size_t)src->m->config.encoder.hidden_size;
    news_catalog *c = news_catalog_new((int)D, t->n_news);
    int rc = c ? 0 : -1;
    if (!c)
        snprintf(err, err_cap, "%s: out of memory for %zu news", name, t->n_news);
    for (size_t i = 0; rc == 0 && i < t->n_news; i++) {
        news_store_item it = tsv_item(t, i, vecs, D, 0);
        rc = news_catalog_put_item(c, &it, NULL, err, err_cap);
    }
    free(vecs);
    mind_news_free(t);
    if (rc != 0) {
        news_catalog_release(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* ---- from the store ------------------------------------------------------------- */

static int64_t now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Imports news.tsv into the empty store, in one transaction marked seeded. */
static int seed(const news_catalog_source *src, news_store *store, char *err, size_t err_cap)
{
    char *buf;
    size_t len;
    if (whole_file_read(src->news_tsv, SIZE_MAX, &buf, &len, err, err_cap) != 0)
        return -1;
    mind_news_table *t;
    float *vecs;
    int rc = tsv_encode(src, buf, len, src->news_tsv, &t, &vecs, err, err_cap);
    free(buf);
    if (rc != 0)
        return -1;
    const size_t D = (size_t)src->m->config.encoder.hidden_size;
    if (t->n_news > src->max_items) {
        snprintf(err, err_cap, "%s: %zu news, more than max_catalog_items (%zu)", src->news_tsv,
                 t->n_news, src->max_items);
        rc = -1;
    }
    news_store_op *ops = rc == 0 ? calloc(t->n_news ? t->n_news : 1, sizeof *ops) : NULL;
    if (rc == 0 && !ops) {
        snprintf(err, err_cap, "%s: out of memory for %zu news", src->news_tsv, t->n_news);
        rc = -1;
    }
    if (rc == 0) {
        int64_t now = now_unix_ms();
        for (size_t i = 0; i < t->n_news; i++)
            ops[i] =
                (news_store_op){.kind = NEWS_STORE_UPSERT, .item = tsv_item(t, i, vecs, D, now)};
        /* An empty news.tsv still marks the store seeded: it is not read again. */
        news_store_op none = {.kind = NEWS_STORE_DELETE, .item = {.id = "-", .id_len = 1}};
        news_store_status st =
            t->n_news
                ? news_store_write(store, ops, t->n_news, NEWS_STORE_MARK_SEEDED, NULL, err,
                                   err_cap)
                : news_store_write(store, &none, 1, NEWS_STORE_MARK_SEEDED, NULL, err, err_cap);
        rc = st == NEWS_STORE_OK ? 0 : -1;
        if (rc == 0)
            progress(src, "model '%s': news store %s seeded with %zu items from %s",
                     src->model_name, store->location, t->n_news, src->news_tsv);
    }
    free(ops);
    free(vecs);
    mind_news_free(t);
    return rc;
}

/* Items of the store that have no vector for this digest. */
typedef struct {
    news_catalog *c;
    const float *zero;
    size_t n, cap;
    char **ids; /* owned copies */
    size_t *id_lens;
    char **titles; /* owned copies */
    size_t *title_lens;
    int64_t *updated;
    char err[300];
} scan_ctx;

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int on_item(void *user, const news_store_item *it)
{
    scan_ctx *x = user;
    news_store_item copy = *it;
    if (!copy.vector) {
        copy.vector = x->zero;
        if (x->n == x->cap) {
            size_t cap = x->cap ? x->cap * 2 : 1024;
            char **ids = realloc(x->ids, cap * sizeof *ids);
            if (ids)
                x->ids = ids;
            size_t *il = realloc(x->id_lens, cap * sizeof *il);
            if (il)
                x->id_lens = il;
            char **titles = realloc(x->titles, cap * sizeof *titles);
            if (titles)
                x->titles = titles;
            size_t *tl = realloc(x->title_lens, cap * sizeof *tl);
            if (tl)
                x->title_lens = tl;
            int64_t *up = realloc(x->updated, cap * sizeof *up);
            if (up)
                x->updated = up;
            if (!ids || !il || !titles || !tl || !up) {
                snprintf(x->err, sizeof x->err, "out of memory reading the news store");
                return 1;
            }
            x->cap = cap;
        }
        x->ids[x->n] = dup_n(it->id, it->id_len);
        x->titles[x->n] = dup_n(it->title, it->title_len);
        x->id_lens[x->n] = it->id_len;
        x->title_lens[x->n] = it->title_len;
        x->updated[x->n] = it->updated_ms;
        x->n++;
        if (!x->ids[x->n - 1] || !x->titles[x->n - 1]) {
            snprintf(x->err, sizeof x->err, "out of memory reading the news store");
            return 1;
        }
    }
    if (news_catalog_put_item(x->c, &copy, NULL, x->err, sizeof x->err) != 0)
        return 1;
    return 0;
}

static void scan_ctx_free(scan_ctx *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->ids[i]);
        free(x->titles[i]);
    }
    free(x->ids);
    free(x->id_lens);
    free(x->titles);
    free(x->title_lens);
    free(x->updated);
}

/* Encodes the titles the scan found without a vector, puts the vectors in
 * the catalog and (best effort) in the store. */
static int encode_missing(const news_catalog_source *src, news_store *store, scan_ctx *x, char *err,
                          size_t err_cap)
{
    if (x->n == 0)
        return 0;
    const size_t D = (size_t)src->m->config.encoder.hidden_size;
    progress(src,
             "model '%s': encoding %zu news titles that have no stored vector for weights %.12s",
             src->model_name, x->n, store->digest);
    float *vecs = malloc(x->n * D * sizeof *vecs);
    if (!vecs) {
        snprintf(err, err_cap, "%s: out of memory encoding %zu titles", store->location, x->n);
        return -1;
    }
    size_t bad;
    char e[200];
    if (news_encode_titles(src, (const char *const *)x->titles, x->title_lens, x->n, vecs, &bad, e,
                           sizeof e) != 0) {
        snprintf(err, err_cap, "%s: news '%.*s': title: %s", store->location,
                 (int)(bad < x->n ? x->id_lens[bad] : 0), bad < x->n ? x->ids[bad] : "", e);
        free(vecs);
        return -1;
    }
    for (size_t i = 0; i < x->n; i++) {
        float *dst = vecs + i * D;
        news_catalog_entry entry;
        /* The row is there (the scan put it): replace its zero vector. */
        int found = news_catalog_describe(x->c, x->ids[i], x->id_lens[i], &entry);
        if (found != 1) {
            snprintf(err, err_cap, "%s: out of memory", store->location);
            free(vecs);
            return -1;
        }
        news_store_item it = {.id = x->ids[i],
                              .id_len = x->id_lens[i],
                              .title = entry.title,
                              .title_len = strlen(entry.title),
                              .category = entry.category,
                              .category_len = strlen(entry.category),
                              .updated_ms = entry.updated_ms,
                              .vector = dst};
        int rc = news_catalog_put_item(x->c, &it, NULL, err, err_cap);
        free(entry.title);
        free(entry.category);
        if (rc != 0) {
            free(vecs);
            return -1;
        }
    }
    /* Store them for the next start; a failure (a full disk) only costs a
     * re-encode then. */
    news_store_item *items = malloc((x->n < VECTOR_CHUNK ? x->n : VECTOR_CHUNK) * sizeof *items);
    for (size_t a = 0; items && a < x->n; a += VECTOR_CHUNK) {
        size_t m = VECTOR_CHUNK;
        if (a + m > x->n)
            m = x->n - a;
        for (size_t i = 0; i < m; i++)
            items[i] = (news_store_item){.id = x->ids[a + i],
                                         .id_len = x->id_lens[a + i],
                                         .updated_ms = x->updated[a + i],
                                         .vector = vecs + (a + i) * D};
        char e2[400];
        if (news_store_put_vectors(store, items, m, e2, sizeof e2) != NEWS_STORE_OK) {
            if (src->progress) {
                char msg[500];
                snprintf(msg, sizeof msg,
                         "model '%s': vectors not stored (they will be encoded again at the next "
                         "start): %s",
                         src->model_name, e2);
                src->progress(src->progress_user, msg);
            }
            break;
        }
    }
    free(items);
    free(vecs);
    return 0;
}

static int load_from_store(const news_catalog_source *src, news_catalog **out, char *err,
                           size_t err_cap)
{
    const model *m = src->m;
    const int D = m->config.encoder.hidden_size;
    news_store_config cfg = {.location = src->store_location,
                             .model_name = src->model_name,
                             .digest = m->weights_sha256,
                             .dim = D};
    news_store *store = NULL;
    if (news_store_open(&cfg, &store, err, err_cap) != NEWS_STORE_OK)
        return -1;
    news_store_info info;
    if (news_store_info_get(store, &info, err, err_cap) != NEWS_STORE_OK)
        goto fail_store;
    if (!info.seeded && info.n_items == 0 && src->news_tsv) {
        if (seed(src, store, err, err_cap) != 0)
            goto fail_store;
        if (news_store_info_get(store, &info, err, err_cap) != NEWS_STORE_OK)
            goto fail_store;
    }
    float *zero = calloc((size_t)D, sizeof *zero);
    news_catalog *c = news_catalog_new(D, info.n_items);
    scan_ctx x = {.c = c, .zero = zero};
    if (!zero || !c) {
        snprintf(err, err_cap, "%s: out of memory for %zu news", store->location, info.n_items);
        goto fail_scan;
    }
    news_store_status st = news_store_scan(store, on_item, &x, err, err_cap);
    if (st == NEWS_STORE_OK && x.err[0]) {
        snprintf(err, err_cap, "%s: %s", store->location, x.err);
        goto fail_scan;
    }
    if (st != NEWS_STORE_OK)
        goto fail_scan;
    if (encode_missing(src, store, &x, err, err_cap) != 0)
        goto fail_scan;
    scan_ctx_free(&x);
    free(zero);
    progress(src, "model '%s': news catalog of %zu items read from %s", src->model_name,
             news_catalog_count(c), store->location);
    news_catalog_attach_store(c, store);
    *out = c;
    return 0;

fail_scan:
    scan_ctx_free(&x);
    free(zero);
    news_catalog_release(c);
fail_store:
    news_store_close(store);
    return -1;
}

int news_catalog_load(const news_catalog_source *src, news_catalog **out, char *err, size_t err_cap)
{
    assert(src && src->m && src->ws && out);
    *out = NULL;
    news_catalog *c = NULL;
    if (src->store_location) {
        if (load_from_store(src, &c, err, err_cap) != 0)
            return -1;
    } else if (src->news_tsv) {
        char *buf;
        size_t len;
        if (whole_file_read(src->news_tsv, SIZE_MAX, &buf, &len, err, err_cap) != 0)
            return -1;
        int rc = news_catalog_build(src, buf, len, src->news_tsv, &c, err, err_cap);
        free(buf);
        if (rc != 0)
            return -1;
    } else {
        c = news_catalog_new(src->m->config.encoder.hidden_size, 16);
        if (!c) {
            snprintf(err, err_cap, "out of memory");
            return -1;
        }
    }
    char key[1024];
    if (news_catalog_source_key(src, key, sizeof key) != 0 || news_catalog_set_key(c, key) != 0) {
        snprintf(err, err_cap, "out of memory");
        news_catalog_release(c);
        return -1;
    }
    news_catalog_set_limit(c, src->max_items);
    *out = c;
    return 0;
}
