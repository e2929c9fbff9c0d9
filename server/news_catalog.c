/* news_catalog: news vectors by id (see news_catalog.h). Rows live in one
 * (capacity, D) matrix; an open-addressing table of row + 1 finds them by id.
 * A read-write lock lets readers copy vectors concurrently while a put
 * writes under the exclusive lock. */
#include "news_catalog.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyed_hash.h"
#include "mind.h"

struct news_catalog {
    pthread_rwlock_t lock;
    int dim;
    size_t n_rows;
    size_t cap_rows;
    float *vecs;     /* (cap_rows, dim) */
    char **ids;      /* (cap_rows) owned NUL-terminated copies */
    size_t *id_len;  /* (cap_rows) */
    uint32_t *slots; /* (n_slots) row + 1, 0 = empty */
    size_t n_slots;  /* power of two, >= 2 * cap_rows */
};

/* Keyed (ids come from clients): see keyed_hash.h for the worst case. */
static uint64_t id_hash(const char *id, size_t len)
{
    return keyed_hash(id, len);
}

static size_t slots_for(size_t rows)
{
    size_t n = 16;
    while (n < rows * 2)
        n <<= 1;
    return n;
}

news_catalog *news_catalog_new(int dim, size_t capacity)
{
    assert(dim >= 1);
    if (capacity < 16)
        capacity = 16;
    if (capacity >= UINT32_MAX / 4 || capacity > SIZE_MAX / sizeof(float) / (size_t)dim)
        return NULL;
    news_catalog *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (pthread_rwlock_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    /* From here on news_catalog_free takes the partly built catalog. */
    c->dim = dim;
    c->cap_rows = capacity;
    c->n_slots = slots_for(capacity);
    c->vecs = malloc(capacity * (size_t)dim * sizeof *c->vecs);
    c->ids = calloc(capacity, sizeof *c->ids);
    c->id_len = calloc(capacity, sizeof *c->id_len);
    c->slots = calloc(c->n_slots, sizeof *c->slots);
    if (!c->vecs || !c->ids || !c->id_len || !c->slots) {
        news_catalog_free(c);
        return NULL;
    }
    return c;
}

void news_catalog_free(news_catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->ids && i < c->n_rows; i++) /* n_rows is 0 while ids is NULL */
        free(c->ids[i]);
    pthread_rwlock_destroy(&c->lock);
    free(c->vecs);
    free(c->ids);
    free(c->id_len);
    free(c->slots);
    free(c);
}

/* Slot of id, or of the empty slot where it would go. */
static size_t find_slot(const news_catalog *c, const char *id, size_t len)
{
    size_t mask = c->n_slots - 1, s = id_hash(id, len) & mask;
    for (;;) {
        uint32_t r = c->slots[s];
        if (r == 0)
            return s;
        if (c->id_len[r - 1] == len && memcmp(c->ids[r - 1], id, len) == 0)
            return s;
        s = (s + 1) & mask;
    }
}

/* Doubles the rows (and rehashes) under the exclusive lock. */
static int grow_locked(news_catalog *c)
{
    size_t cap = c->cap_rows * 2;
    if (cap >= UINT32_MAX / 4 || cap > SIZE_MAX / sizeof(float) / (size_t)c->dim)
        return -1;
    float *vecs = realloc(c->vecs, cap * (size_t)c->dim * sizeof *vecs);
    if (!vecs)
        return -1;
    c->vecs = vecs;
    char **ids = realloc(c->ids, cap * sizeof *ids);
    if (!ids)
        return -1;
    c->ids = ids;
    size_t *id_len = realloc(c->id_len, cap * sizeof *id_len);
    if (!id_len)
        return -1;
    c->id_len = id_len;
    size_t n_slots = slots_for(cap);
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return -1;
    free(c->slots);
    c->slots = slots;
    c->n_slots = n_slots;
    c->cap_rows = cap;
    for (size_t r = 0; r < c->n_rows; r++)
        c->slots[find_slot(c, c->ids[r], c->id_len[r])] = (uint32_t)(r + 1);
    return 0;
}

int news_catalog_put(news_catalog *c, const char *id, size_t id_len, const float *vec,
                     bool *replaced, char *err, size_t err_cap)
{
    assert(c && vec && (id || id_len == 0));
    if (replaced)
        *replaced = false;
    if (id_len == 0) {
        snprintf(err, err_cap, "news id is empty");
        return -1;
    }
    if (id_len > NEWS_CATALOG_ID_MAX) {
        snprintf(err, err_cap, "news id longer than %d bytes", NEWS_CATALOG_ID_MAX);
        return -1;
    }
    if (memchr(id, '\0', id_len)) {
        snprintf(err, err_cap, "news id contains a NUL byte");
        return -1;
    }
    pthread_rwlock_wrlock(&c->lock);
    size_t s = find_slot(c, id, id_len);
    uint32_t r = c->slots[s];
    if (r == 0) {
        if (c->n_rows == c->cap_rows) {
            if (grow_locked(c) != 0) {
                pthread_rwlock_unlock(&c->lock);
                snprintf(err, err_cap, "out of memory adding news '%.*s'", (int)id_len, id);
                return -1;
            }
            s = find_slot(c, id, id_len);
        }
        char *copy = malloc(id_len + 1);
        if (!copy) {
            pthread_rwlock_unlock(&c->lock);
            snprintf(err, err_cap, "out of memory adding news '%.*s'", (int)id_len, id);
            return -1;
        }
        memcpy(copy, id, id_len);
        copy[id_len] = '\0';
        r = (uint32_t)(++c->n_rows);
        c->ids[r - 1] = copy;
        c->id_len[r - 1] = id_len;
        c->slots[s] = r;
    } else if (replaced) {
        *replaced = true;
    }
    memcpy(c->vecs + (size_t)(r - 1) * (size_t)c->dim, vec, (size_t)c->dim * sizeof *vec);
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

bool news_catalog_get(news_catalog *c, const char *id, size_t id_len, float *out)
{
    assert(c && out && (id || id_len == 0));
    if (id_len == 0 || id_len > NEWS_CATALOG_ID_MAX)
        return false;
    pthread_rwlock_rdlock(&c->lock);
    uint32_t r = c->slots[find_slot(c, id, id_len)];
    if (r != 0)
        memcpy(out, c->vecs + (size_t)(r - 1) * (size_t)c->dim, (size_t)c->dim * sizeof *out);
    pthread_rwlock_unlock(&c->lock);
    return r != 0;
}

size_t news_catalog_count(news_catalog *c)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t n = c->n_rows;
    pthread_rwlock_unlock(&c->lock);
    return n;
}

int news_catalog_dim(const news_catalog *c)
{
    return c->dim;
}

/* glibc's chunk for a malloc of n bytes on a 64-bit host: n plus an 8-byte
 * size header, rounded up to 16, and never below its 32-byte minimum. */
static size_t heap_chunk_bytes(size_t n)
{
    size_t chunk = (n + 8 + 15) & ~(size_t)15;
    return chunk < 32 ? 32 : chunk;
}

size_t news_catalog_bytes(const news_catalog *c)
{
    /* The lock is not part of the catalog's value: readers lock a const one. */
    news_catalog *m = (news_catalog *)c;
    pthread_rwlock_rdlock(&m->lock);
    size_t ids = 0;
    for (size_t r = 0; r < c->n_rows; r++)
        ids += heap_chunk_bytes(c->id_len[r] + 1);
    size_t bytes =
        sizeof *c +
        c->cap_rows * ((size_t)c->dim * sizeof *c->vecs + sizeof *c->ids + sizeof *c->id_len) +
        ids + c->n_slots * sizeof *c->slots;
    pthread_rwlock_unlock(&m->lock);
    return bytes;
}

/* ---- building from news.tsv ------------------------------------------------ */

int news_catalog_build(const model *m, fastformer_workspace *ws, const void *buf, size_t len,
                       const char *source_name, int max_batch_size, int max_batch_tokens,
                       news_catalog_progress_fn progress, void *progress_user, news_catalog **out,
                       char *err, size_t err_cap)
{
    assert(m && ws && out && max_batch_size >= 1);
    *out = NULL;
    const char *src = source_name ? source_name : "news.tsv";
    const int D = m->config.encoder.hidden_size, P = model_max_tokens(m);
    if (max_batch_size > ws->max_seqs)
        max_batch_size = ws->max_seqs;
    if (max_batch_tokens > ws->max_tokens)
        max_batch_tokens = ws->max_tokens;
    assert(max_batch_tokens >= P);

    mind_news_table *t = NULL;
    if (mind_news_parse(buf, len, src, &t, err, err_cap) != 0)
        return -1;
    news_catalog *c = news_catalog_new(D, t->n_news);
    /* One spare row: the title that does not fit is tokenized before the flush. */
    int32_t *ids = malloc(((size_t)max_batch_size + 1) * (size_t)P * sizeof *ids);
    int32_t *n_ids = malloc((size_t)max_batch_size * sizeof *n_ids);
    const int32_t **rows = malloc((size_t)max_batch_size * sizeof *rows);
    float *pooled = malloc((size_t)max_batch_size * (size_t)D * sizeof *pooled);
    if (!c || !ids || !n_ids || !rows || !pooled) {
        snprintf(err, err_cap, "%s: out of memory for %zu news", src, t->n_news);
        goto fail;
    }

    size_t first = 0; /* news index of the batch's first row */
    int n = 0;
    int32_t longest = 0;
    for (size_t k = 0; k <= t->n_news; k++) {
        int32_t len_k = 0;
        if (k < t->n_news) {
            const mind_news *nw = &t->news[k];
            int32_t *row = ids + (size_t)n * (size_t)P;
            size_t got = 0;
            bool truncated = false;
            char terr[160];
            if (model_tokenize(m, nw->title, nw->title_bytes, row, &got, &truncated, terr,
                               sizeof terr) != 0) {
                snprintf(err, err_cap, "%s:%zu: title: %s", src, nw->line, terr);
                goto fail;
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
        /* Flush the batch (and at the end). */
        if (n > 0) {
            model_encode_ids(m, ws, rows, n_ids, n, pooled);
            for (int i = 0; i < n; i++) {
                const mind_news *nw = &t->news[first + (size_t)i];
                if (news_catalog_put(c, nw->id, strlen(nw->id), pooled + (size_t)i * D, NULL, err,
                                     err_cap) != 0)
                    goto fail;
            }
            first += (size_t)n;
            if (progress)
                progress(progress_user, first, t->n_news);
        }
        if (k < t->n_news) {
            /* Item k starts the next batch: move its ids to row 0. */
            memmove(ids, ids + (size_t)n * (size_t)P, (size_t)len_k * sizeof *ids);
            n_ids[0] = len_k;
            rows[0] = ids;
            longest = len_k;
            n = 1;
        }
    }
    assert(first == t->n_news);
    free(ids);
    free(n_ids);
    free(rows);
    free(pooled);
    mind_news_free(t);
    *out = c;
    return 0;

fail:
    free(ids);
    free(n_ids);
    free(rows);
    free(pooled);
    news_catalog_free(c);
    mind_news_free(t);
    return -1;
}
