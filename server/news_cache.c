/* news_cache: fixed-capacity LRU of news vectors keyed by token ids (see
 * news_cache.h). Entries live in arrays allocated once; a hash table of
 * chained entry indices finds them and a doubly linked list (indices, most
 * recent at the head) orders them for eviction. */
#include "news_cache.h"

#include "keyed_hash.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

struct news_cache {
    pthread_mutex_t mu;
    size_t capacity;
    int dim;
    int max_ids;
    size_t n_buckets;      /* power of two */
    uint32_t *buckets;     /* (n_buckets) first entry or NIL */
    uint32_t *chain;       /* (capacity) next entry in the bucket */
    uint32_t *prev, *next; /* (capacity) LRU list */
    uint32_t head, tail;   /* most / least recently used */
    uint64_t *hash;        /* (capacity) */
    int32_t *n_ids;        /* (capacity) */
    int32_t *ids;          /* (capacity, max_ids) */
    float *vecs;           /* (capacity, dim) */
    size_t used;

    _Atomic uint64_t hits, misses, evictions;
    _Atomic size_t entries;
};

/* Keyed (titles come from clients; see keyed_hash.h) over the ids' bytes in
 * memory: the table lives in one process, so byte order does not matter. */
static uint64_t ids_hash(const int32_t *ids, int n)
{
    return keyed_hash(ids, (size_t)n * sizeof *ids);
}

news_cache *news_cache_new(size_t capacity, int dim, int max_ids)
{
    assert(capacity >= 1 && dim >= 1 && max_ids >= 0);
    if (capacity >= NIL || capacity > SIZE_MAX / 2)
        return NULL;
    size_t nb = 1;
    while (nb < capacity * 2)
        nb <<= 1;
    size_t row_ids = max_ids > 0 ? (size_t)max_ids : 1;
    if (capacity > SIZE_MAX / sizeof(int32_t) / row_ids ||
        capacity > SIZE_MAX / sizeof(float) / (size_t)dim)
        return NULL;
    news_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    /* From here on news_cache_free takes the partly built cache. */
    c->capacity = capacity;
    c->dim = dim;
    c->max_ids = max_ids;
    c->n_buckets = nb;
    c->buckets = malloc(nb * sizeof *c->buckets);
    c->chain = malloc(capacity * sizeof *c->chain);
    c->prev = malloc(capacity * sizeof *c->prev);
    c->next = malloc(capacity * sizeof *c->next);
    c->hash = malloc(capacity * sizeof *c->hash);
    c->n_ids = malloc(capacity * sizeof *c->n_ids);
    c->ids = malloc(capacity * row_ids * sizeof *c->ids);
    c->vecs = malloc(capacity * (size_t)dim * sizeof *c->vecs);
    if (!c->buckets || !c->chain || !c->prev || !c->next || !c->hash || !c->n_ids || !c->ids ||
        !c->vecs) {
        news_cache_free(c);
        return NULL;
    }
    for (size_t i = 0; i < nb; i++)
        c->buckets[i] = NIL;
    c->head = c->tail = NIL;
    return c;
}

void news_cache_free(news_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c->chain);
    free(c->prev);
    free(c->next);
    free(c->hash);
    free(c->n_ids);
    free(c->ids);
    free(c->vecs);
    free(c);
}

static int32_t *entry_ids(news_cache *c, uint32_t e)
{
    return c->ids + (size_t)e * (size_t)(c->max_ids > 0 ? c->max_ids : 1);
}

static uint32_t find_locked(news_cache *c, uint64_t h, const int32_t *ids, int n)
{
    for (uint32_t e = c->buckets[h & (c->n_buckets - 1)]; e != NIL; e = c->chain[e])
        if (c->hash[e] == h && c->n_ids[e] == n &&
            (n == 0 || memcmp(entry_ids(c, e), ids, (size_t)n * sizeof *ids) == 0))
            return e;
    return NIL;
}

static void lru_unlink(news_cache *c, uint32_t e)
{
    if (c->prev[e] != NIL)
        c->next[c->prev[e]] = c->next[e];
    else
        c->head = c->next[e];
    if (c->next[e] != NIL)
        c->prev[c->next[e]] = c->prev[e];
    else
        c->tail = c->prev[e];
}

static void lru_push_front(news_cache *c, uint32_t e)
{
    c->prev[e] = NIL;
    c->next[e] = c->head;
    if (c->head != NIL)
        c->prev[c->head] = e;
    c->head = e;
    if (c->tail == NIL)
        c->tail = e;
}

static void bucket_remove(news_cache *c, uint32_t e)
{
    uint32_t *p = &c->buckets[c->hash[e] & (c->n_buckets - 1)];
    while (*p != e) {
        assert(*p != NIL);
        p = &c->chain[*p];
    }
    *p = c->chain[e];
}

bool news_cache_get(news_cache *c, const int32_t *ids, int n_ids, float *out)
{
    assert(c && n_ids >= 0 && (ids || n_ids == 0) && out);
    if (n_ids > c->max_ids) {
        atomic_fetch_add(&c->misses, 1);
        return false;
    }
    uint64_t h = ids_hash(ids, n_ids);
    pthread_mutex_lock(&c->mu);
    uint32_t e = find_locked(c, h, ids, n_ids);
    if (e != NIL) {
        lru_unlink(c, e);
        lru_push_front(c, e);
        memcpy(out, c->vecs + (size_t)e * (size_t)c->dim, (size_t)c->dim * sizeof *out);
    }
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add(e != NIL ? &c->hits : &c->misses, 1);
    return e != NIL;
}

void news_cache_put(news_cache *c, const int32_t *ids, int n_ids, const float *vec)
{
    assert(c && n_ids >= 0 && n_ids <= c->max_ids && (ids || n_ids == 0) && vec);
    uint64_t h = ids_hash(ids, n_ids);
    pthread_mutex_lock(&c->mu);
    uint32_t e = find_locked(c, h, ids, n_ids);
    if (e != NIL) {
        lru_unlink(c, e);
    } else {
        if (c->used < c->capacity) {
            e = (uint32_t)c->used++;
            atomic_store(&c->entries, c->used);
        } else {
            e = c->tail;
            lru_unlink(c, e);
            bucket_remove(c, e);
            atomic_fetch_add(&c->evictions, 1);
        }
        c->hash[e] = h;
        c->n_ids[e] = n_ids;
        if (n_ids > 0)
            memcpy(entry_ids(c, e), ids, (size_t)n_ids * sizeof *ids);
        size_t b = h & (c->n_buckets - 1);
        c->chain[e] = c->buckets[b];
        c->buckets[b] = e;
    }
    memcpy(c->vecs + (size_t)e * (size_t)c->dim, vec, (size_t)c->dim * sizeof *vec);
    lru_push_front(c, e);
    pthread_mutex_unlock(&c->mu);
}

void news_cache_stats_get(const news_cache *c, news_cache_stats *out)
{
    news_cache *m = (news_cache *)c; /* atomic reads only */
    out->hits = atomic_load(&m->hits);
    out->misses = atomic_load(&m->misses);
    out->evictions = atomic_load(&m->evictions);
    out->entries = atomic_load(&m->entries);
    out->capacity = c->capacity;
}

size_t news_cache_bytes(const news_cache *c)
{
    /* Fixed at news_cache_new: no lock needed. */
    size_t row_ids = c->max_ids > 0 ? (size_t)c->max_ids : 1;
    size_t per_entry = (size_t)c->dim * sizeof *c->vecs + row_ids * sizeof *c->ids +
                       sizeof *c->n_ids + sizeof *c->chain + sizeof *c->prev + sizeof *c->next +
                       sizeof *c->hash;
    return sizeof *c + c->capacity * per_entry + c->n_buckets * sizeof *c->buckets;
}
