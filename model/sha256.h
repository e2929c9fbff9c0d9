/* sha256: a small SHA-256 (FIPS 180-4), used for the weights file digest that
 * /v1/models reports, so a client can tell exactly which weights are served. */
#ifndef FF_SHA256_H
#define FF_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_BYTES 32

typedef struct {
    uint32_t state[8];
    uint64_t n_bytes;   /* total bytes fed so far */
    uint8_t block[64];  /* pending partial block */
    size_t block_bytes; /* bytes used in block */
} sha256_ctx;

void sha256_init(sha256_ctx *ctx);
void sha256_update(sha256_ctx *ctx, const void *data, size_t n_bytes);
/* Writes the 32-byte digest; ctx must be re-initialised before reuse. */
void sha256_final(sha256_ctx *ctx, uint8_t digest[SHA256_DIGEST_BYTES]);

/* One-shot: the lowercase hex digest of [data, data+n_bytes) into hex (65 bytes, NUL-terminated).
 */
void sha256_hex(const void *data, size_t n_bytes, char hex[2 * SHA256_DIGEST_BYTES + 1]);

#endif
