/* ascii_digits: integers as ASCII digits, by hand, for the per-request paths
 * (request and trace ids, the client's port, access-log numbers). printf is
 * slow in this process: libquadmath, which OpenBLAS brings in through
 * libgfortran, registers printf extensions, and those send every printf call
 * down glibc's slow positional path. Header-only so the callers inline them. */
#ifndef FF_ASCII_DIGITS_H
#define FF_ASCII_DIGITS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Digits of the largest uint64_t in decimal. */
#define ASCII_DECIMAL_MAX 20

/* v as 16 lowercase hex digits, most significant first (no NUL). */
static inline void ascii_hex16(char out[16], uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
}

/* v in decimal into out (no NUL); returns the number of digits (1 to
 * ASCII_DECIMAL_MAX). */
static inline size_t ascii_decimal(char out[ASCII_DECIMAL_MAX], uint64_t v)
{
    char tmp[ASCII_DECIMAL_MAX];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    memcpy(out, tmp + i, sizeof tmp - i);
    return sizeof tmp - i;
}

#endif
