/* gemm_avx2: the 6 x 16 AVX2 + FMA micro-kernel (gemm_kernels.h), in one
 * version per row count 1 to 6, so that a tile of fewer rows costs only its
 * rows. Per step of k: two 8-float loads of the packed panel, one broadcast
 * of A and two FMAs per row into 2 ymm accumulators per row (15 of the 16
 * registers in use at 6 rows), and, every few steps, a prefetch of one line
 * of the next panel. Compiled with a target attribute; gemm.c calls it only
 * where the CPU has AVX2 and FMA. */
#include <stddef.h>

#include "gemm_kernels.h"

#define MR GEMM_AVX2_MR
#define NR GEMM_AVX2_NR

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE __attribute__((always_inline)) inline

/* The tile of R rows (a constant once inlined: the loops over rows unroll and
 * the accumulators stay in registers) for panels [p0, p1).
 * The prefetches are spread evenly over the k steps: issued in a burst, one
 * per step, the next panel's lines (k of them for one tile, k / 6 each for 6)
 * came faster than memory could answer, and the kernel stalled on the full
 * miss buffers. Spread, over the burst into L1 (2026-12-04, branch engine6,
 * Zen 4, W from memory, CPU time, one process alternating, medians of 31):
 * 32 x 3072 x 768, 32 x 1536 x 768 and 32 x 768 x 768 +22-33%, 32 x 768 x
 * 3072 +12-19%. When a tile has more than one line per 3 steps to fetch (a
 * group of one or two tiles), they go to L2 only (prefetcht1): 6 and 12 x 768
 * x 768 and x 3072 x 768 +12-37% over prefetcht0, which fills L1 with lines
 * needed only a tile later. With 3 or more tiles prefetcht0 is 1-4% faster
 * with W from memory (32 rows, k = 768 and 3072) and 0-3% slower with W in
 * L3 (32 x 1536 x 384, 32 x 384 x 384). Against main's burst into L2
 * (gemm.c; this kernel, tile_rows and group_rows together): 32-row products
 * with W from memory +11-18%, 12 x 768 x 768 +15-18%, W in L3 +6-10%. */
static TARGET ALWAYS_INLINE void block_rows(const int R, const bool to_l2, const float *panels,
                                            int n, int k, int p0, int p1, const float *a, int lda,
                                            bool accumulate, float *c, int ldc,
                                            const float *prefetch, int prefetch_lines)
{
    const float *ar[MR];
    for (int i = 0; i < R; i++)
        ar[i] = a + (size_t)i * (size_t)lda;
    const int every = prefetch_lines > 0 ? k / prefetch_lines : 0;
    for (int p = p0; p < p1; p++) {
        const float *bp = panels + (size_t)p * (size_t)k * NR;
        __m256 acc[MR][2];
#pragma GCC unroll 6
        for (int i = 0; i < R; i++)
            acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        /* The step of the next prefetch (none: past k), the lines left. */
        int pf_step = prefetch_lines > 0 && p == p0 ? 0 : k, pf_left = prefetch_lines;
        const float *pf = prefetch;
        for (int kk = 0; kk < k; kk++, bp += NR) {
            const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
            if (kk == pf_step) {
                if (to_l2)
                    _mm_prefetch((const char *)pf, _MM_HINT_T1);
                else
                    _mm_prefetch((const char *)pf, _MM_HINT_T0);
                pf += GEMM_LINE_FLOATS;
                pf_step = --pf_left > 0 ? pf_step + every : k;
            }
#pragma GCC unroll 6
            for (int i = 0; i < R; i++) {
                const __m256 x = _mm256_broadcast_ss(ar[i] + kk);
                acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
            }
        }
        float *cp = c + (size_t)p * NR;
        const int nc = n - p * NR < NR ? n - p * NR : NR;
        if (nc == NR) {
#pragma GCC unroll 6
            for (int i = 0; i < R; i++) {
                float *ci = cp + (size_t)i * (size_t)ldc;
                if (accumulate) {
                    acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
                    acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
                }
                _mm256_storeu_ps(ci, acc[i][0]);
                _mm256_storeu_ps(ci + 8, acc[i][1]);
            }
        } else {
            float t[MR * NR];
#pragma GCC unroll 6
            for (int i = 0; i < R; i++) {
                _mm256_storeu_ps(t + i * NR, acc[i][0]);
                _mm256_storeu_ps(t + i * NR + 8, acc[i][1]);
            }
            gemm_store_edge(t, NR, R, nc, accumulate, cp, ldc);
        }
    }
}

#define BLOCK_ROWS(R, to_l2)                                                                       \
    block_rows(R, to_l2, panels, n, k, p0, p1, a, lda, accumulate, c, ldc, prefetch, prefetch_lines)

#define BLOCK_ROWS_HINT(R)                                                                         \
    do {                                                                                           \
        if (to_l2)                                                                                 \
            BLOCK_ROWS(R, true);                                                                   \
        else                                                                                       \
            BLOCK_ROWS(R, false);                                                                  \
    } while (0)

TARGET void gemm_block_avx2(const float *panels, int n, int k, int p0, int p1, int mr,
                            const float *a, int lda, bool accumulate, float *c, int ldc,
                            const float *prefetch, int prefetch_lines)
{
    const bool to_l2 = 3 * prefetch_lines > k;
    switch (mr) {
    case 1:
        BLOCK_ROWS_HINT(1);
        break;
    case 2:
        BLOCK_ROWS_HINT(2);
        break;
    case 3:
        BLOCK_ROWS_HINT(3);
        break;
    case 4:
        BLOCK_ROWS_HINT(4);
        break;
    case 5:
        BLOCK_ROWS_HINT(5);
        break;
    default:
        BLOCK_ROWS_HINT(MR);
        break;
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
