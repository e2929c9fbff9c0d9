/* gemm_plain: the portable 4 x 8 micro-kernel (gemm_kernels.h), for CPUs
 * without AVX2 + FMA and as the reference path the others must match. */
#include <stddef.h>

#include "gemm_kernels.h"

#define MR GEMM_PLAIN_MR
#define NR GEMM_PLAIN_NR

void gemm_block_plain(const gemm_weights *w, int mr, const float *a, int lda, bool accumulate,
                      float *c, int ldc)
{
    const int k = w->k, n = w->n;
    const float *ar[MR];
    for (int i = 0; i < MR; i++)
        ar[i] = a + (size_t)(i < mr ? i : mr - 1) * (size_t)lda;
    for (int p = 0; p * NR < n; p++) {
        const float *bp = w->panels + (size_t)p * (size_t)k * NR;
        float t[MR * NR] = {0};
        for (int kk = 0; kk < k; kk++, bp += NR)
            for (int i = 0; i < MR; i++) {
                const float x = ar[i][kk];
                for (int j = 0; j < NR; j++)
                    t[i * NR + j] += x * bp[j];
            }
        const int nc = n - p * NR < NR ? n - p * NR : NR;
        gemm_store_edge(t, NR, mr, nc, accumulate, c + (size_t)p * NR, ldc);
    }
}
