/* gemm_kernels: the micro-kernels behind gemm.h, one per path, private to
 * gemm.c (and to tests/unit/test_gemm.c, which sizes its shapes by
 * gemm_k_block). Each computes one tile of C: rows [0, mr) (mr <= the path's
 * MR) and columns [0, nc) (nc <= NR) from kc steps of k: C = A B, plus the old
 * C when accumulate, where B is kc x NR floats of a packed panel (gemm.h: a
 * panel is k-major, so steps [k0, k0 + kc) of it are one contiguous run) and A
 * is the matching mr x kc block (row stride lda). Rows past mr are computed
 * from row mr-1 and not stored; columns past nc are not stored. The avx2 and
 * avx512 ones are compiled with target attributes and may only run where
 * gemm_path_supported says so. */
#ifndef FF_GEMM_KERNELS_H
#define FF_GEMM_KERNELS_H

#include <stdbool.h>

#define GEMM_PLAIN_MR 4
#define GEMM_PLAIN_NR 8
#define GEMM_AVX2_MR 6
#define GEMM_AVX2_NR 16
#define GEMM_AVX512_MR 8
#define GEMM_AVX512_NR 32

typedef void gemm_tile_fn(const float *b, int kc, int mr, int nc, const float *a, int lda,
                          bool accumulate, float *c, int ldc);

gemm_tile_fn gemm_tile_plain;
gemm_tile_fn gemm_tile_avx2;
gemm_tile_fn gemm_tile_avx512;

/* The steps of k that gemm_run runs in one go over a panel (on every path)
 * for a product of depth k (the last block may be shorter): k itself up to a
 * limit (gemm.c: GEMM_KC_MAX), else about equal blocks under it, each
 * accumulated into C, the epilogue after the last. Any thread. */
int gemm_k_block(int k);

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
