/* news_cache: an LRU cache of news vectors keyed by the token ids of a title,
 * so that titles sent as text by recommendation requests are encoded once.
 * Keys are compared in full (the hash only picks the bucket), so two titles
 * with equal hashes never share a vector. Fixed capacity, allocated once:
 * lookups and inserts allocate nothing. Hits and misses are counted.
 *
 * Concurrency: one mutex; get copies the vector out, put copies it in, so no
 * caller holds a pointer into the cache. Any thread. */
#ifndef FF_NEWS_CACHE_H
#define FF_NEWS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct news_cache news_cache;

/* A cache of `capacity` entries (>= 1) of `dim` floats, for keys of at most
 * max_ids ids. NULL when out of memory or when the sizes overflow. */
news_cache *news_cache_new(size_t capacity, int dim, int max_ids);
void news_cache_free(news_cache *c);

/* On a hit copies the vector into out (dim floats), makes the entry the most
 * recently used and returns true; on a miss returns false. Counts either. */
bool news_cache_get(news_cache *c, const int32_t *ids, int n_ids, float *out);

/* Inserts (or refreshes) the vector for ids, evicting the least recently used
 * entry when full. n_ids <= max_ids (asserted). */
void news_cache_put(news_cache *c, const int32_t *ids, int n_ids, const float *vec);

typedef struct {
    uint64_t hits;
    uint64_t misses;
    uint64_t evictions;
    size_t entries;
    size_t capacity;
} news_cache_stats;

/* Lock-free snapshot of the counters. */
void news_cache_stats_get(const news_cache *c, news_cache_stats *out);

/* Heap bytes of the cache at full capacity (for the daemon's memory
 * estimate): everything is allocated by news_cache_new, but pages are only
 * touched as entries fill, so this is the resident size once every entry has
 * been used. The struct; per entry D floats, max_ids int32 ids (at least 1),
 * its id count, bucket chain, LRU prev and next (4 bytes each) and its 64-bit
 * hash; and a uint32 table of the smallest power of two >= 2 x capacity
 * buckets. Any thread. */
size_t news_cache_bytes(const news_cache *c);

#endif
