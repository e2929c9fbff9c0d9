/* utf8: strict UTF-8 validation, decoding and encoding (RFC 3629).
 *
 * Strict means: no overlong forms (C0, C1, E0 80..9F, F0 80..8F), no UTF-16
 * surrogates (ED A0..BF), nothing above U+10FFFF (F4 90.., F5..FF), no lone
 * continuation bytes and no sequence cut short by the end of the buffer or by
 * a byte that is not a continuation byte. Pure functions; any thread. */
#ifndef FF_UTF8_H
#define FF_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

/* Decodes one code point from s[0..n) (n >= 1). Returns the sequence length
 * (1..4) and stores the code point in *cp, or returns 0 when the bytes at s
 * do not start a valid sequence. Never reads past s[n-1]. */
FF_MUST_CHECK size_t utf8_decode(const unsigned char *s, size_t n, int32_t *cp);

/* Checks that s[0..n) is valid UTF-8. Returns 0, or -1 with the byte offset
 * of the start of the first invalid sequence (the lone byte for a stray
 * continuation byte, the lead byte for a truncated or overlong sequence) in
 * *bad_offset. s may be NULL when n == 0. */
FF_MUST_CHECK int utf8_validate(const void *s, size_t n, size_t *bad_offset);

/* Writes the UTF-8 form of code point cp (0..0x10FFFF, not a surrogate) to
 * out and returns its length (1..4). */
size_t utf8_encode(int32_t cp, char out[4]);

/* Decodes the code point at s of already-validated text and returns its
 * length. For the hot loops after utf8_validate succeeded. */
static inline size_t utf8_decode_valid(const unsigned char *s, int32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = ((int32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        *cp = ((int32_t)(c & 0x0F) << 12) | ((int32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((int32_t)(c & 0x07) << 18) | ((int32_t)(s[1] & 0x3F) << 12) |
          ((int32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

#endif
