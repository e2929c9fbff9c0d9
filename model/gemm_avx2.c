/* gemm_avx2: the 6 x 16 AVX2 + FMA micro-kernel (gemm_kernels.h). Per step
 * of k: two 8-float loads of the packed panel, six broadcasts of A and 12
 * FMAs into 12 ymm accumulators (15 of the 16 registers in use), and a
 * prefetch of one line of the next panel into L2 while any are asked for.
 * Compiled with a target attribute; gemm.c calls it only where the CPU has
 * AVX2 and FMA. */
#include <stddef.h>

#include "gemm_kernels.h"

#define MR GEMM_AVX2_MR
#define NR GEMM_AVX2_NR

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))

#define ROW_FMA(i)                                                                                 \
    do {                                                                                           \
        const __m256 x = _mm256_broadcast_ss(a##i + kk);                                           \
        c##i##0 = _mm256_fmadd_ps(x, b0, c##i##0);                                                 \
        c##i##1 = _mm256_fmadd_ps(x, b1, c##i##1);                                                 \
    } while (0)

#define ROW_STORE(i)                                                                               \
    do {                                                                                           \
        float *ci = cp + (size_t)(i) * (size_t)ldc;                                                \
        if (accumulate) {                                                                          \
            c##i##0 = _mm256_add_ps(c##i##0, _mm256_loadu_ps(ci));                                 \
            c##i##1 = _mm256_add_ps(c##i##1, _mm256_loadu_ps(ci + 8));                             \
        }                                                                                          \
        _mm256_storeu_ps(ci, c##i##0);                                                             \
        _mm256_storeu_ps(ci + 8, c##i##1);                                                         \
    } while (0)

#define ROW_SPILL(i)                                                                               \
    do {                                                                                           \
        _mm256_storeu_ps(t + (i)*NR, c##i##0);                                                     \
        _mm256_storeu_ps(t + (i)*NR + 8, c##i##1);                                                 \
    } while (0)

TARGET void gemm_block_avx2(const float *panels, int n, int k, int p0, int p1, int mr,
                            const float *a, int lda, bool accumulate, float *c, int ldc,
                            const float *prefetch, int prefetch_lines)
{
#define ROW_PTR(i) (a + (size_t)((i) < mr ? (i) : mr - 1) * (size_t)lda)
    const float *a0 = ROW_PTR(0), *a1 = ROW_PTR(1), *a2 = ROW_PTR(2), *a3 = ROW_PTR(3);
    const float *a4 = ROW_PTR(4), *a5 = ROW_PTR(5);
#undef ROW_PTR
    for (int p = p0; p < p1; p++) {
        const float *bp = panels + (size_t)p * (size_t)k * NR;
        __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        /* A panel has one line per step (NR = 16 floats): one per step. */
        for (int kk = 0; kk < k; kk++, bp += NR) {
            const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
            if (kk < prefetch_lines)
                _mm_prefetch((const char *)(prefetch + (size_t)kk * GEMM_LINE_FLOATS),
                             GEMM_PREFETCH_HINT);
            ROW_FMA(0);
            ROW_FMA(1);
            ROW_FMA(2);
            ROW_FMA(3);
            ROW_FMA(4);
            ROW_FMA(5);
        }
        float *cp = c + (size_t)p * NR;
        const int nc = n - p * NR < NR ? n - p * NR : NR;
        if (mr == MR && nc == NR) {
            ROW_STORE(0);
            ROW_STORE(1);
            ROW_STORE(2);
            ROW_STORE(3);
            ROW_STORE(4);
            ROW_STORE(5);
        } else {
            float t[MR * NR];
            ROW_SPILL(0);
            ROW_SPILL(1);
            ROW_SPILL(2);
            ROW_SPILL(3);
            ROW_SPILL(4);
            ROW_SPILL(5);
            gemm_store_edge(t, NR, mr, nc, accumulate, cp, ldc);
        }
    }
}

#else /* not x86-64: never dispatched (gemm_path_supported is false) */

void gemm_block_avx2(const float *panels, int n, int k, int p0, int p1, int mr, const float *a,
                     int lda, bool accumulate, float *c, int ldc, const float *prefetch,
                     int prefetch_lines)
{
    gemm_block_plain(panels, n, k, p0, p1, mr, a, lda, accumulate, c, ldc, prefetch,
                     prefetch_lines);
}

#endif
