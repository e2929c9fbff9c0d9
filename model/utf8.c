/* utf8: strict UTF-8 validation and decoding, by the well-formed byte
 * sequence table of Unicode (Table 3-7), which rules out overlong forms,
 * surrogates and code points above U+10FFFF by the range of the second byte. */
#include "utf8.h"

#include <assert.h>

static int is_cont(unsigned char b)
{
    return (b & 0xC0) == 0x80;
}

size_t utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
    assert(s != NULL && n >= 1 && cp != NULL);
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates U+D800..DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 (overlong) or F5..FF */
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (!is_cont(s[k]))
            return 0;
    return utf8_decode_valid(s, cp);
}

int utf8_validate(const void *s, size_t n, size_t *bad_offset)
{
    assert(bad_offset != NULL && (s != NULL || n == 0));
    const unsigned char *p = s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) { /* ASCII fast path */
            i++;
            continue;
        }
        int32_t cp;
        size_t len = utf8_decode(p + i, n - i, &cp);
        if (len == 0) {
            *bad_offset = i;
            return -1;
        }
        i += len;
    }
    return 0;
}

size_t utf8_encode(int32_t cp, char out[4])
{
    assert(cp >= 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF));
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
