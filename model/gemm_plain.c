/* gemm_plain: the portable 4 x 8 micro-kernel (gemm_kernels.h), for CPUs
 * without AVX2 + FMA and as the reference path the others must match. It is
 * written with GNU vector types (gcc and clang; no intrinsics): eight 4-float
 * accumulators, which baseline x86-64 keeps in SSE registers. */
#include <stddef.h>
#include <string.h>

#include "gemm_kernels.h"

#define MR GEMM_PLAIN_MR
#define NR GEMM_PLAIN_NR

typedef float v4 __attribute__((vector_size(16)));

static inline v4 load4(const float *p)
{
    v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

void gemm_block_plain(const float *panels, int n, int k, int p0, int p1, int mr, const float *a,
                      int lda, bool accumulate, float *c, int ldc, const float *prefetch,
                      int prefetch_lines)
{
    (void)prefetch; /* portable C: no prefetch */
    (void)prefetch_lines;
    const float *ar[MR];
    for (int i = 0; i < MR; i++)
        ar[i] = a + (size_t)(i < mr ? i : mr - 1) * (size_t)lda;
    for (int p = p0; p < p1; p++) {
        const float *bp = panels + (size_t)p * (size_t)k * NR;
        v4 acc[MR][2] = {{{0}}};
        for (int kk = 0; kk < k; kk++, bp += NR) {
            const v4 b0 = load4(bp), b1 = load4(bp + 4);
            for (int i = 0; i < MR; i++) {
                const float x = ar[i][kk];
                acc[i][0] += x * b0;
                acc[i][1] += x * b1;
            }
        }
        float t[MR * NR];
        for (int i = 0; i < MR; i++)
            for (int h = 0; h < 2; h++)
                memcpy(t + i * NR + 4 * h, &acc[i][h], 4 * sizeof(float));
        const int nc = n - p * NR < NR ? n - p * NR : NR;
        gemm_store_edge(t, NR, mr, nc, accumulate, c + (size_t)p * NR, ldc);
    }
}
