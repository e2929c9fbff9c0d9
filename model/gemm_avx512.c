/* gemm_avx512: the 8 x 32 AVX-512F micro-kernel (gemm_kernels.h). Per step
 * of k: two 16-float loads of the packed panel, eight broadcasts of A and 16
 * FMAs into 16 zmm accumulators, and a prefetch of up to two lines of the
 * next panel into L2 while any are asked for. Compiled with a target
 * attribute, so the rest of the build stays baseline x86-64; gemm.c calls it
 * only where the CPU has AVX-512F. */
#include <stddef.h>

#include "gemm_kernels.h"

#define MR GEMM_AVX512_MR
#define NR GEMM_AVX512_NR

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,fma")))

#define ROW_FMA(i)                                                                                 \
    do {                                                                                           \
        const __m512 x = _mm512_set1_ps(a##i[kk]);                                                 \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                                                 \
        c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                                                 \
    } while (0)

#define ROW_STORE(i)                                                                               \
    do {                                                                                           \
        float *ci = cp + (size_t)(i) * (size_t)ldc;                                                \
        if (accumulate) {                                                                          \
            c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(ci));                                 \
            c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(ci + 16));                            \
        }                                                                                          \
        _mm512_storeu_ps(ci, c##i##0);                                                             \
        _mm512_storeu_ps(ci + 16, c##i##1);                                                        \
    } while (0)

#define ROW_SPILL(i)                                                                               \
    do {                                                                                           \
        _mm512_storeu_ps(t + (i)*NR, c##i##0);                                                     \
        _mm512_storeu_ps(t + (i)*NR + 16, c##i##1);                                                \
    } while (0)

TARGET void gemm_block_avx512(const float *panels, int n, int k, int p0, int p1, int mr,
                              const float *a, int lda, bool accumulate, float *c, int ldc,
                              const float *prefetch, int prefetch_lines)
{
#define ROW_PTR(i) (a + (size_t)((i) < mr ? (i) : mr - 1) * (size_t)lda)
    const float *a0 = ROW_PTR(0), *a1 = ROW_PTR(1), *a2 = ROW_PTR(2), *a3 = ROW_PTR(3);
    const float *a4 = ROW_PTR(4), *a5 = ROW_PTR(5), *a6 = ROW_PTR(6), *a7 = ROW_PTR(7);
#undef ROW_PTR
    for (int p = p0; p < p1; p++) {
        const float *bp = panels + (size_t)p * (size_t)k * NR;
        __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00;
        __m512 c61 = c00, c70 = c00, c71 = c00;
        /* One line per step, two when more lines than steps are asked for
         * (the same line twice otherwise: cheaper than a branch). */
        const int per_step = prefetch_lines > k ? 2 : 1;
        const int pf_steps = (prefetch_lines + per_step - 1) / per_step;
        const size_t pf_stride = (size_t)per_step * GEMM_LINE_FLOATS;
        const size_t pf_second = (size_t)(per_step - 1) * GEMM_LINE_FLOATS;
        for (int kk = 0; kk < k; kk++, bp += NR) {
            const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
            if (kk < pf_steps) {
                const float *pf = prefetch + (size_t)kk * pf_stride;
                _mm_prefetch((const char *)pf, _MM_HINT_T1);
                _mm_prefetch((const char *)(pf + pf_second), _MM_HINT_T1);
            }
            ROW_FMA(0);
            ROW_FMA(1);
            ROW_FMA(2);
            ROW_FMA(3);
            ROW_FMA(4);
            ROW_FMA(5);
            ROW_FMA(6);
            ROW_FMA(7);
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
            ROW_STORE(6);
            ROW_STORE(7);
        } else {
            float t[MR * NR];
            ROW_SPILL(0);
            ROW_SPILL(1);
            ROW_SPILL(2);
            ROW_SPILL(3);
            ROW_SPILL(4);
            ROW_SPILL(5);
            ROW_SPILL(6);
            ROW_SPILL(7);
            gemm_store_edge(t, NR, mr, nc, accumulate, cp, ldc);
        }
    }
}

#else /* not x86-64: never dispatched (gemm_path_supported is false) */

void gemm_block_avx512(const float *panels, int n, int k, int p0, int p1, int mr, const float *a,
                       int lda, bool accumulate, float *c, int ldc, const float *prefetch,
                       int prefetch_lines)
{
    gemm_block_plain(panels, n, k, p0, p1, mr, a, lda, accumulate, c, ldc, prefetch,
                     prefetch_lines);
}

#endif
