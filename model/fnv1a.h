/* fnv1a: the one FNV-1a hash (64-bit), for the in-memory hash tables of the
 * vocabulary, the MIND parsers, the news catalog and the news cache. Unkeyed
 * (no secret seed). Header-only so the tokenizer's lookups can inline it. */
#ifndef FF_FNV1A_H
#define FF_FNV1A_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_64_OFFSET 0xcbf29ce484222325ull
#define FNV1A_64_PRIME 0x100000001b3ull

/* Continues a hash h (start with FNV1A_64_OFFSET) over n bytes of data. */
static inline uint64_t fnv1a_64_add(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV1A_64_PRIME;
    }
    return h;
}

/* The FNV-1a hash of n bytes of data. */
static inline uint64_t fnv1a_64(const void *data, size_t n)
{
    return fnv1a_64_add(FNV1A_64_OFFSET, data, n);
}

#endif
