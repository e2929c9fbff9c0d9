/* gemm_kernels: the micro-kernels behind gemm.h, one per path, private to
 * gemm.c. Each computes the rows [0, mr) of C (mr <= the path's MR) for the
 * columns of panels [p0, p1) (NR columns each from column p0 * NR; c points at
 * column 0) of the packed panels of an n x k weight (gemm.h),
 * from A (row stride lda, k columns): C = A W^T, plus the
 * old C when accumulate. Rows past mr are not stored (avx512 and plain
 * compute them from row mr-1; avx2 has one version per row count, and
 * computes only mr); columns past n are not stored. While it runs, a kernel
 * may prefetch the prefetch_lines cache lines (GEMM_LINE_FLOATS floats each)
 * from `prefetch` on (a hint: nothing is read, and the plain kernel ignores
 * it): avx512 at most 2 k of them, avx2 at most k, spread evenly over its
 * first panel's k steps (gemm.c asks for a share of the next panel, which has
 * that many). The avx2 and avx512 ones are
 * compiled with target attributes and may only run where gemm_path_supported
 * says so. */
#ifndef FF_GEMM_KERNELS_H
#define FF_GEMM_KERNELS_H

#include <stdbool.h>

/* Floats per 64-byte cache line: the unit of a kernel's prefetch. */
#define GEMM_LINE_FLOATS 16

#define GEMM_PLAIN_MR 4
#define GEMM_PLAIN_NR 8
#define GEMM_AVX2_MR 6
#define GEMM_AVX2_NR 16
#define GEMM_AVX512_MR 8
#define GEMM_AVX512_NR 32

typedef void gemm_block_fn(const float *panels, int n, int k, int p0, int p1, int mr,
                           const float *a, int lda, bool accumulate, float *c, int ldc,
                           const float *prefetch, int prefetch_lines);

gemm_block_fn gemm_block_plain;
gemm_block_fn gemm_block_avx2;
gemm_block_fn gemm_block_avx512;

/* Stores rows [0, mr) and columns [0, nc) of the tile t (MR x NR floats,
 * row stride nr) into c (row stride ldc), adding the old c when accumulate:
 * the edge of a matrix, where a full-tile store would write past it. */
static inline void gemm_store_edge(const float *t, int nr, int mr, int nc, bool accumulate,
                                   float *c, int ldc)
{
    for (int i = 0; i < mr; i++) {
        float *ci = c + (long)i * ldc;
        const float *ti = t + (long)i * nr;
        if (accumulate)
            for (int j = 0; j < nc; j++)
                ci[j] += ti[j];
        else
            for (int j = 0; j < nc; j++)
                ci[j] = ti[j];
    }
}

#endif
