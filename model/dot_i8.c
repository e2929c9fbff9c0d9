/* dot_i8: int8 rows times an int16 vector (see dot_i8.h). The x86 paths
 * sign-extend 16 or 32 int8 components to int16 and multiply-add pairs
 * into int32 lanes (vpmaddwd): exact, like the portable loop. In the TSan
 * build (KERNELS_NO_CLONES) and off x86 only the portable loop exists. */
#include "dot_i8.h"

#include <assert.h>
#include <stdatomic.h>

static const char *const path_names[DOT_I8_N_PATHS] = {"plain", "avx2", "avx512"};

const char *dot_i8_path_name(dot_i8_path p)
{
    assert((int)p >= 0 && p < DOT_I8_N_PATHS);
    return path_names[p];
}

int dot_i8_w_max(int d)
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
        __m256i a = _mm256_add_epi32(a0, a1);
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
        out[r] = _mm_cvtsi128_si32(h) + dot_plain(row, w, i, d);
    }
}
#endif

bool dot_i8_path_supported(dot_i8_path p)
{
    switch (p) {
    case DOT_I8_PLAIN:
        return true;
    case DOT_I8_AVX2:
#ifdef HAVE_X86_PATHS
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
#else
        return false;
#endif
    case DOT_I8_AVX512:
#ifdef HAVE_X86_PATHS
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#else
        return false;
#endif
    }
    return false;
}

dot_i8_path dot_i8_path_best(void)
{
    /* Idempotent: racing first calls store the same value. */
    static _Atomic int best = -1;
    int b = atomic_load_explicit(&best, memory_order_relaxed);
    if (b < 0) {
        b = dot_i8_path_supported(DOT_I8_AVX512) ? DOT_I8_AVX512
            : dot_i8_path_supported(DOT_I8_AVX2) ? DOT_I8_AVX2
                                                 : DOT_I8_PLAIN;
        atomic_store_explicit(&best, b, memory_order_relaxed);
    }
    return (dot_i8_path)b;
}

void dot_i8_rows(dot_i8_path p, const int8_t *q, size_t n_rows, int d, const int16_t *w,
                 int32_t *out)
{
    assert(d >= 1 && dot_i8_path_supported(p));
    switch (p) {
    case DOT_I8_PLAIN:
        rows_plain(q, n_rows, d, w, out);
        return;
    case DOT_I8_AVX2:
#ifdef HAVE_X86_PATHS
        rows_avx2(q, n_rows, d, w, out);
#endif
        return;
    case DOT_I8_AVX512:
#ifdef HAVE_X86_PATHS
        rows_avx512(q, n_rows, d, w, out);
#endif
        return;
    }
}
