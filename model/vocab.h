/* vocab: the token <-> id table of vocab.txt (one token per line; line number = id; id 0 =
 * padding). */
#ifndef FF_VOCAB_H
#define FF_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

typedef struct vocab vocab;

/* Parses vocab.txt from a buffer (LF or CRLF line ends; a final line without
 * LF counts). Duplicate tokens: the first id wins. Returns a new vocab in
 * *out (free with vocab_free) or -1 with a message naming the line. */
FF_MUST_CHECK int vocab_parse(const void *buf, size_t len, vocab **out, char *err, size_t err_cap);
void vocab_free(vocab *v);

size_t vocab_size(const vocab *v);
/* Returns the id of the token (bytes [tok, tok+len)), or -1 when absent. Thread-safe. */
int32_t vocab_lookup(const vocab *v, const char *tok, size_t len);
/* A hint, with no effect on any result: the token whose FNV-1a hash
 * (fnv1a.h) is `hash` will be looked up soon. Stage 0 starts loading its hash
 * slot; stage 1, issued once stage 0 has had time to land, starts loading the
 * token's text that the slot points to. A lookup misses the cache twice
 * otherwise (the table is megabytes, and the inference workers evict it), so
 * hinting a text's words in two passes before looking them up overlaps those
 * misses instead of paying them one after the other. Thread-safe. */
void vocab_prefetch(const vocab *v, uint64_t hash, int stage);
/* Returns the token text of `id` (NUL-terminated, borrowed), or NULL when out of range. */
const char *vocab_token(const vocab *v, int32_t id);
/* Heap bytes the vocab holds (for the daemon's memory estimate). */
size_t vocab_bytes(const vocab *v);

#endif
