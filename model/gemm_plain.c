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

void gemm_tile_plain(const float *b, int kc, int mr, int nc, const float *a, int lda,
                     bool accumulate, float *c, int ldc)
{
    const float *ar[MR];
    for (int i = 0; i < MR; i++)
        ar[i] = a + (size_t)(i < mr ? i : mr - 1) * (size_t)lda;
    v4 acc[MR][2] = {{{0}}};
    for (int kk = 0; kk < kc; kk++, b += NR) {
        const v4 b0 = load4(b), b1 = load4(b + 4);
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
    gemm_store_edge(t, NR, mr, nc, accumulate, c, ldc);
}
