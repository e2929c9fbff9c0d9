/* quant_dot: int8 and int4 rows times an integer vector (see quant_dot.h).
 * int8 rows: the x86 paths sign-extend 16 or 32 components to int16 lanes
 * and multiply-add pairs into int32 lanes (vpmaddwd). int4 rows: each byte
 * is split into its two nibbles (and, shift), unsigned bytes that multiply
 * the signed int8 vector four at a time into int32 lanes (vpdpbusd) or two
 * at a time into int16 lanes, then pairs into int32 (vpmaddubsw +
 * vpmaddwd); the nibbles' offset of 8 comes off once per row. Every path is
 * exact, like the portable loops. In the TSan build (KERNELS_NO_CLONES) and
 * off x86 only the portable loops exist. */
#include "quant_dot.h"

#include <assert.h>
#include <stdatomic.h>

static const char *const path_names[QUANT_DOT_N_PATHS] = {"plain", "avx2", "avx512", "avx512vnni"};

const char *quant_dot_path_name(quant_dot_path p)
{
    assert((int)p >= 0 && p < QUANT_DOT_N_PATHS);
    return path_names[p];
}

int quant_dot_w_max(int d)
{
    assert(d >= 1);
    long m = 2147483647L / (127L * d);
    return m > 32767 ? 32767 : (int)m;
}

size_t quant_dot_i4_row_bytes(int d)
{
    assert(d >= 1);
    return ((size_t)d + 1) / 2;
}

/* ---- portable ------------------------------------------------------------------ */

static int32_t dot_plain(const int8_t *q, const int16_t *w, int from, int d)
{
    int32_t s = 0;
    for (int i = from; i < d; i++)
        s += (int32_t)q[i] * w[i];
    return s;
}

static void rows_plain(const int8_t *q, size_t n_rows, int d, const int16_t *w, int32_t *out)
{
    for (size_t r = 0; r < n_rows; r++)
        out[r] = dot_plain(q + r * (size_t)d, w, 0, d);
}

/* sum_j lo(q[j]) w_even[j] + hi(q[j]) w_odd[j] over bytes [from, nb), the
 * nibbles unsigned (the caller takes off their offset). */
static int32_t dot4_plain(const uint8_t *q, const int8_t *w_even, const int8_t *w_odd, size_t from,
                          size_t nb)
{
    int32_t s = 0;
    for (size_t j = from; j < nb; j++)
        s += (int32_t)(q[j] & 15u) * w_even[j] + (int32_t)(q[j] >> 4) * w_odd[j];
    return s;
}

static void rows4_plain(const uint8_t *q, size_t n_rows, size_t nb, const int8_t *w_even,
                        const int8_t *w_odd, int32_t offset, int32_t *out)
{
    for (size_t r = 0; r < n_rows; r++)
        out[r] = dot4_plain(q + r * nb, w_even, w_odd, 0, nb) - offset;
}

#if defined(__x86_64__) && !defined(KERNELS_NO_CLONES)
#include <immintrin.h>

#define HAVE_X86_PATHS 1

/* ---- AVX-512 ------------------------------------------------------------------- */

__attribute__((target("avx512f,avx512bw"))) static void
rows_avx512(const int8_t *q, size_t n_rows, int d, const int16_t *w, int32_t *out)
{
    for (size_t r = 0; r < n_rows; r++) {
        const int8_t *row = q + r * (size_t)d;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
        int i = 0;
        for (; i + 64 <= d; i += 64) {
            __m512i x0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(row + i)));
            __m512i x1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(row + i + 32)));
            a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(x0, _mm512_loadu_si512(w + i)));
            a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(x1, _mm512_loadu_si512(w + i + 32)));
        }
        if (i + 32 <= d) {
            __m512i x0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(row + i)));
            a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(x0, _mm512_loadu_si512(w + i)));
            i += 32;
        }
        out[r] = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1)) + dot_plain(row, w, i, d);
    }
}

__attribute__((target("avx512f,avx512bw"))) static void
rows4_avx512(const uint8_t *q, size_t n_rows, size_t nb, const int8_t *w_even, const int8_t *w_odd,
             int32_t offset, int32_t *out)
{
    const __m512i low = _mm512_set1_epi8(15), ones = _mm512_set1_epi16(1);
    for (size_t r = 0; r < n_rows; r++) {
        const uint8_t *row = q + r * nb;
        __m512i acc = _mm512_setzero_si512();
        size_t j = 0;
        for (; j + 64 <= nb; j += 64) {
            __m512i x = _mm512_loadu_si512(row + j);
            __m512i lo = _mm512_and_si512(x, low);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
            /* each int16 lane at most 2 * 2 * 15 * 128 = 7680: no saturation */
            __m512i s = _mm512_add_epi16(_mm512_maddubs_epi16(lo, _mm512_loadu_si512(w_even + j)),
                                         _mm512_maddubs_epi16(hi, _mm512_loadu_si512(w_odd + j)));
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(s, ones));
        }
        out[r] = _mm512_reduce_add_epi32(acc) + dot4_plain(row, w_even, w_odd, j, nb) - offset;
    }
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
rows4_avx512vnni(const uint8_t *q, size_t n_rows, size_t nb, const int8_t *w_even,
                 const int8_t *w_odd, int32_t offset, int32_t *out)
{
    const __m512i low = _mm512_set1_epi8(15);
    size_t r = 0;
    /* Two rows at a time share the loads of w. */
    for (; r + 2 <= n_rows; r += 2) {
        const uint8_t *r0 = q + r * nb, *r1 = r0 + nb;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
        size_t j = 0;
        for (; j + 64 <= nb; j += 64) {
            __m512i we = _mm512_loadu_si512(w_even + j), wo = _mm512_loadu_si512(w_odd + j);
            __m512i x0 = _mm512_loadu_si512(r0 + j), x1 = _mm512_loadu_si512(r1 + j);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(x0, low), we);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(_mm512_srli_epi16(x0, 4), low), wo);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(x1, low), we);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(_mm512_srli_epi16(x1, 4), low), wo);
        }
        out[r] = _mm512_reduce_add_epi32(a0) + dot4_plain(r0, w_even, w_odd, j, nb) - offset;
        out[r + 1] = _mm512_reduce_add_epi32(a1) + dot4_plain(r1, w_even, w_odd, j, nb) - offset;
    }
    for (; r < n_rows; r++) {
        const uint8_t *row = q + r * nb;
        __m512i acc = _mm512_setzero_si512();
        size_t j = 0;
        for (; j + 64 <= nb; j += 64) {
            __m512i x = _mm512_loadu_si512(row + j);
            acc =
                _mm512_dpbusd_epi32(acc, _mm512_and_si512(x, low), _mm512_loadu_si512(w_even + j));
            acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(x, 4), low),
                                      _mm512_loadu_si512(w_odd + j));
        }
        out[r] = _mm512_reduce_add_epi32(acc) + dot4_plain(row, w_even, w_odd, j, nb) - offset;
    }
}

/* ---- AVX2 ---------------------------------------------------------------------- */

__attribute__((target("avx2"))) static int32_t sum_avx2(__m256i a)
{
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(h);
}

__attribute__((target("avx2"))) static void rows_avx2(const int8_t *q, size_t n_rows, int d,
                                                      const int16_t *w, int32_t *out)
{
    for (size_t r = 0; r < n_rows; r++) {
        const int8_t *row = q + r * (size_t)d;
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        int i = 0;
        for (; i + 32 <= d; i += 32) {
            __m256i x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + i)));
            __m256i x1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + i + 16)));
            a0 = _mm256_add_epi32(
                a0, _mm256_madd_epi16(x0, _mm256_loadu_si256((const __m256i *)(w + i))));
            a1 = _mm256_add_epi32(
                a1, _mm256_madd_epi16(x1, _mm256_loadu_si256((const __m256i *)(w + i + 16))));
        }
        if (i + 16 <= d) {
            __m256i x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + i)));
            a0 = _mm256_add_epi32(
                a0, _mm256_madd_epi16(x0, _mm256_loadu_si256((const __m256i *)(w + i))));
            i += 16;
        }
        out[r] = sum_avx2(_mm256_add_epi32(a0, a1)) + dot_plain(row, w, i, d);
    }
}

__attribute__((target("avx2"))) static void rows4_avx2(const uint8_t *q, size_t n_rows, size_t nb,
                                                       const int8_t *w_even, const int8_t *w_odd,
                                                       int32_t offset, int32_t *out)
{
    const __m256i low = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    for (size_t r = 0; r < n_rows; r++) {
        const uint8_t *row = q + r * nb;
        __m256i acc = _mm256_setzero_si256();
        size_t j = 0;
        for (; j + 32 <= nb; j += 32) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(row + j));
            __m256i lo = _mm256_and_si256(x, low);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
            __m256i s = _mm256_add_epi16(
                _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(w_even + j))),
                _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(w_odd + j))));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s, ones));
        }
        out[r] = sum_avx2(acc) + dot4_plain(row, w_even, w_odd, j, nb) - offset;
    }
}
#endif

/* ---- dispatch ------------------------------------------------------------------- */

bool quant_dot_path_supported(quant_dot_path p)
{
#ifdef HAVE_X86_PATHS
    __builtin_cpu_init();
    switch (p) {
    case QUANT_DOT_PLAIN:
        return true;
    case QUANT_DOT_AVX2:
        return __builtin_cpu_supports("avx2");
    case QUANT_DOT_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    case QUANT_DOT_AVX512VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
    }
    return false;
#else
    return p == QUANT_DOT_PLAIN;
#endif
}

quant_dot_path quant_dot_path_best(void)
{
    /* Idempotent: racing first calls store the same value. */
    static _Atomic int best = -1;
    int b = atomic_load_explicit(&best, memory_order_relaxed);
    if (b < 0) {
        b = QUANT_DOT_PLAIN;
        for (int p = QUANT_DOT_N_PATHS - 1; p > QUANT_DOT_PLAIN && b == QUANT_DOT_PLAIN; p--)
            if (quant_dot_path_supported((quant_dot_path)p))
                b = p;
        atomic_store_explicit(&best, b, memory_order_relaxed);
    }
    return (quant_dot_path)b;
}

void quant_dot_i8_rows(quant_dot_path p, const int8_t *q, size_t n_rows, int d, const int16_t *w,
                       int32_t *out)
{
    assert(d >= 1 && quant_dot_path_supported(p));
    switch (p) {
    case QUANT_DOT_PLAIN:
        rows_plain(q, n_rows, d, w, out);
        return;
    case QUANT_DOT_AVX2:
#ifdef HAVE_X86_PATHS
        rows_avx2(q, n_rows, d, w, out);
#endif
        return;
    case QUANT_DOT_AVX512:
    case QUANT_DOT_AVX512VNNI:
#ifdef HAVE_X86_PATHS
        rows_avx512(q, n_rows, d, w, out);
#endif
        return;
    }
}

void quant_dot_i4_rows(quant_dot_path p, const uint8_t *q4, size_t n_rows, int d,
                       const int8_t *w_even, const int8_t *w_odd, int32_t *out)
{
    assert(d >= 1 && quant_dot_path_supported(p));
    size_t nb = quant_dot_i4_row_bytes(d);
    int32_t offset = 0; /* 8 * sum(w): the nibbles hold q + 8 */
    for (size_t j = 0; j < nb; j++)
        offset += 8 * ((int32_t)w_even[j] + w_odd[j]);
    switch (p) {
    case QUANT_DOT_PLAIN:
        rows4_plain(q4, n_rows, nb, w_even, w_odd, offset, out);
        return;
    case QUANT_DOT_AVX2:
#ifdef HAVE_X86_PATHS
        rows4_avx2(q4, n_rows, nb, w_even, w_odd, offset, out);
#endif
        return;
    case QUANT_DOT_AVX512:
#ifdef HAVE_X86_PATHS
        rows4_avx512(q4, n_rows, nb, w_even, w_odd, offset, out);
#endif
        return;
    case QUANT_DOT_AVX512VNNI:
#ifdef HAVE_X86_PATHS
        rows4_avx512vnni(q4, n_rows, nb, w_even, w_odd, offset, out);
#endif
        return;
    }
}
