/* keyed_hash: SipHash-2-4 (Aumasson and Bernstein) under a random 128-bit key
 * drawn once per process from getrandom, for the in-memory hash tables whose
 * keys come from clients (the news catalog's ids, the news cache's token
 * sequences). Without the key an attacker cannot compute which ids collide,
 * so crafted ids cannot build long probe chains: a lookup stays O(1)
 * expected, and its worst case is the longest cluster the table's own load
 * (at most one half) produces by chance. Any thread. */
#ifndef FF_KEYED_HASH_H
#define FF_KEYED_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The keyed hash of n bytes of data. The key is set on the first call (or by
 * keyed_hash_set_key); every call in one process uses the same key. */
uint64_t keyed_hash(const void *data, size_t n);

/* Replaces the process key (for tests that need a fixed key: SipHash's test
 * vectors use key bytes 00..0f). Call before any table is built. */
void keyed_hash_set_key(const uint8_t key[16]);

/* SipHash-2-4 of n bytes under `key`, without the process key. Pure. */
uint64_t keyed_hash_with(const uint8_t key[16], const void *data, size_t n);

#endif
