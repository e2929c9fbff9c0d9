/* trace_context: traceparent parsing and formatting, and fresh ids. */
#include "trace_context.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ascii_digits.h"

/* Lowercase hex only: the spec forbids upper case. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* n lowercase hex digits at s, not all zero when nonzero is set. */
static bool hex_field(const char *s, int n, bool nonzero)
{
    bool any = false;
    for (int i = 0; i < n; i++) {
        int v = hex_value(s[i]);
        if (v < 0)
            return false;
        any |= v != 0;
    }
    return any || !nonzero;
}

bool trace_parent_parse(const char *h, trace_parent *out)
{
    if (!h)
        return false;
    size_t len = strlen(h);
    if (len < TRACEPARENT_LEN || h[2] != '-' || h[35] != '-' || h[52] != '-')
        return false;
    if (!hex_field(h, 2, false) || !hex_field(h + 3, TRACE_ID_HEX, true) ||
        !hex_field(h + 36, TRACE_SPAN_HEX, true) || !hex_field(h + 53, 2, false))
        return false;
    int version = hex_value(h[0]) * 16 + hex_value(h[1]);
    if (version == 0xff)
        return false;
    /* Version 00 is exactly 55 bytes; a later one may carry more after a '-'. */
    if (len > TRACEPARENT_LEN && (version == 0 || h[TRACEPARENT_LEN] != '-'))
        return false;
    memcpy(out->trace_id, h + 3, TRACE_ID_HEX);
    out->trace_id[TRACE_ID_HEX] = 0;
    memcpy(out->parent_id, h + 36, TRACE_SPAN_HEX);
    out->parent_id[TRACE_SPAN_HEX] = 0;
    out->flags = (uint8_t)(hex_value(h[53]) * 16 + hex_value(h[54]));
    return true;
}

/* splitmix64: well-spread 64-bit values from a seed and a counter. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static _Atomic uint64_t trace_counter;
static _Atomic uint64_t trace_seed; /* 0 until the first id */

static uint64_t seed_get(void)
{
    uint64_t s = atomic_load_explicit(&trace_seed, memory_order_relaxed);
    if (s)
        return s;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    }
    s |= 1; /* never 0, so that 0 keeps meaning "not seeded" */
    uint64_t expected = 0;
    /* Two first callers may race: both keep whichever seed won. */
    if (!atomic_compare_exchange_strong(&trace_seed, &expected, s))
        s = expected;
    return s;
}

/* The next nonzero 64-bit id. */
static uint64_t next_id(uint64_t seed)
{
    for (;;) {
        uint64_t v = mix64(seed ^ mix64(atomic_fetch_add(&trace_counter, 1)));
        if (v)
            return v;
    }
}

void trace_ids_new(char trace_id[TRACE_ID_HEX + 1], char span_id[TRACE_SPAN_HEX + 1])
{
    uint64_t seed = seed_get();
    if (trace_id) {
        uint64_t hi = next_id(seed), lo = next_id(seed);
        ascii_hex16(trace_id, hi);
        ascii_hex16(trace_id + 16, lo);
        trace_id[TRACE_ID_HEX] = 0;
    }
    ascii_hex16(span_id, next_id(seed));
    span_id[TRACE_SPAN_HEX] = 0;
}

void trace_parent_format(const char *trace_id, const char *span_id, uint8_t flags,
                         char out[TRACEPARENT_LEN + 1])
{
    /* "00-%.32s-%.16s-%02x", by hand (see hex16). */
    char *p = out;
    *p++ = '0';
    *p++ = '0';
    *p++ = '-';
    for (size_t i = 0; i < TRACE_ID_HEX && trace_id[i]; i++)
        *p++ = trace_id[i];
    *p++ = '-';
    for (size_t i = 0; i < TRACE_SPAN_HEX && span_id[i]; i++)
        *p++ = span_id[i];
    memcpy(p, flags & 1 ? "-01" : "-00", 4);
}
