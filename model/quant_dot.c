/* quant_dot: int8 and int4 rows times an int16 vector (see quant_dot.h).
 * The x86 paths widen 16 or 32 bytes to int16 lanes (sign-extending int8;
 * for int4, shifting each nibble to the top of its lane and back, which
 * sign-extends it) and multiply-add pairs into int32 lanes (vpmaddwd):
 * exact, like the portable loops. In the TSan
 * build (KERNELS_NO_CLONES) and off x86 only the portable loop exists. */
#include "quant_dot.h"

#include <assert.h>
#include <stdatomic.h>

static const char *const path_names[QUANT_DOT_N_PATHS] = {"plain", "avx2", "avx512"};

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

static int32_t dot_plain(const int8_t *q, const int16_t *w, int from, int d)
{
    int32_t s = 0;
    for (int i = from; i < d; i++)
        s += (int32_t)q[i] * w[i];
    return s;
}

size_t quant_dot_i4_row_bytes(int d)
{
    assert(d >= 1);
    return ((size_t)d + 1) / 2;
}

/* The int4 row's bytes [from, nb) against the split vector. */
static int32_t dot4_plain(const uint8_t *q, const int16_t *w_even, const int16_t *w_odd,
                          size_t from, size_t nb)
{
    int32_t s = 0;
    for (size_t j = from; j < nb; j++) {
        int lo = (int)(q[j] & 15u), hi = (int)(q[j] >> 4);
        s += (lo >= 8 ? lo - 16 : lo) * (int32_t)w_even[j] +
             (hi >= 8 ? hi - 16 : hi) * (int32_t)w_odd[j];
    }
    return s;
}

static void rows4_plain(const uint8_t *q, size_t n_rows, size_t nb, const int16_t *w_even,
                        const int16_t *w_odd, int32_t *out)
{
    for (size_t r = 0; r < n_rows; r++)
        out[r] = dot4_plain(q + r * nb, w_even, w_odd, 0, nb);
}

static void rows_plain(const int8_t *q, size_t n_rows, int d, const int16_t *w, int32_t *out)
{
    for (size_t r = 0; r < n_rows; r++)
        out[r] = dot_plain(q + r * (size_t)d, w, 0, d);
}

#if defined(__x86_64__) && !defined(KERNELS_NO_CLONES)
#include <immintrin.h>

#define HAVE_X86_PATHS 1

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
rows4_avx512(const uint8_t *q, size_t n_rows, size_t nb, const int16_t *w_even,
             const int16_t *w_odd, int32_t *out)
{
    for (size_t r = 0; r < n_rows; r++) {
        const uint8_t *row = q + r * nb;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
        size_t j = 0;
        for (; j + 32 <= nb; j += 32) {
            __m512i x = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(row + j)));
            __m512i lo = _mm512_srai_epi16(_mm512_slli_epi16(x, 12), 12);
            __m512i hi = _mm512_srai_epi16(_mm512_slli_epi16(x, 8), 12);
            a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(lo, _mm512_loadu_si512(w_even + j)));
            a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(hi, _mm512_loadu_si512(w_odd + j)));
        }
        out[r] = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1)) +
                 dot4_plain(row, w_even, w_odd, j, nb);
    }
}

__attribute__((target("avx2"))) static int32_t sum_avx2(__m256i a)
{
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(h);
}

__attribute__((target("avx2"))) static void rows4_avx2(const uint8_t *q, size_t n_rows, size_t nb,
                                                       const int16_t *w_even, const int16_t *w_odd,
                                                       int32_t *out)
{
    for (size_t r = 0; r < n_rows; r++) {
        const uint8_t *row = q + r * nb;
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        size_t j = 0;
        for (; j + 16 <= nb; j += 16) {
            __m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(row + j)));
            __m256i lo = _mm256_srai_epi16(_mm256_slli_epi16(x, 12), 12);
            __m256i hi = _mm256_srai_epi16(_mm256_slli_epi16(x, 8), 12);
            a0 = _mm256_add_epi32(
                a0, _mm256_madd_epi16(lo, _mm256_loadu_si256((const __m256i *)(w_even + j))));
            a1 = _mm256_add_epi32(
                a1, _mm256_madd_epi16(hi, _mm256_loadu_si256((const __m256i *)(w_odd + j))));
        }
        out[r] = sum_avx2(_mm256_add_epi32(a0, a1)) + dot4_plain(row, w_even, w_odd, j, nb);
    }
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
#endif

bool quant_dot_path_supported(quant_dot_path p)
{
    switch (p) {
    case QUANT_DOT_PLAIN:
        return true;
    case QUANT_DOT_AVX2:
#ifdef HAVE_X86_PATHS
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
#else
        return false;
#endif
    case QUANT_DOT_AVX512:
#ifdef HAVE_X86_PATHS
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#else
        return false;
#endif
    }
    return false;
}

quant_dot_path quant_dot_path_best(void)
{
    /* Idempotent: racing first calls store the same value. */
    static _Atomic int best = -1;
    int b = atomic_load_explicit(&best, memory_order_relaxed);
    if (b < 0) {
        b = quant_dot_path_supported(QUANT_DOT_AVX512) ? QUANT_DOT_AVX512
            : quant_dot_path_supported(QUANT_DOT_AVX2) ? QUANT_DOT_AVX2
                                                       : QUANT_DOT_PLAIN;
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
#ifdef HAVE_X86_PATHS
        rows_avx512(q, n_rows, d, w, out);
#endif
        return;
    }
}

void quant_dot_i4_rows(quant_dot_path p, const uint8_t *q4, size_t n_rows, int d,
                       const int16_t *w_even, const int16_t *w_odd, int32_t *out)
{
    assert(d >= 1 && quant_dot_path_supported(p));
    size_t nb = quant_dot_i4_row_bytes(d);
    switch (p) {
    case QUANT_DOT_PLAIN:
        rows4_plain(q4, n_rows, nb, w_even, w_odd, out);
        return;
    case QUANT_DOT_AVX2:
#ifdef HAVE_X86_PATHS
        rows4_avx2(q4, n_rows, nb, w_even, w_odd, out);
#endif
        return;
    case QUANT_DOT_AVX512:
#ifdef HAVE_X86_PATHS
        rows4_avx512(q4, n_rows, nb, w_even, w_odd, out);
#endif
        return;
    }
}
