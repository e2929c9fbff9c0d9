/* gemm: the engine's own matrix products against constant weights.
 *
 * A linear layer's weight W (N, K) (PyTorch [out, in], row-major) is packed
 * once at model load into panels of NR output columns (gemm_pack); each call
 * then computes C (M, N) = A (M, K) * W^T (+ C) with a register-blocked
 * micro-kernel of MR x NR, with no per-call packing. There are three kernel
 * paths, compiled with per-function target attributes (the build targets
 * baseline x86-64) and chosen at run time by CPU flags:
 *   avx512  8 x 32 tile (AVX-512F), 16 zmm accumulators
 *   avx2    6 x 16 tile (AVX2 + FMA), 12 ymm accumulators, and one of
 *           1 to 5 rows for the rest
 *   plain   4 x 8 tile in portable C
 * A packed matrix remembers the path it was packed for, and every product
 * with it runs that path, so paths can be forced per model (tests do).
 * While a group's tiles pass over one panel, each prefetches an equal share
 * of the next panel (a product of few rows would otherwise wait on memory at
 * the start of every panel). Epilogues run on each group of output rows (at
 * most 384 KB of A, see gemm.c) right after the group is computed, while it
 * is still in L2:
 * bias + GELU, or bias + LayerNorm (the residual being the C that is
 * accumulated into).
 * Pure compute: no threads, no globals; a packed matrix is read-only once
 * packed and may be shared by any number of threads. */
#ifndef FF_GEMM_H
#define FF_GEMM_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    GEMM_PATH_PLAIN,
    GEMM_PATH_AVX2,
    GEMM_PATH_AVX512,
} gemm_path;
#define GEMM_N_PATHS 3

/* "plain", "avx2", "avx512". */
const char *gemm_path_name(gemm_path p);
/* Parses a path name as above; false for anything else. */
bool gemm_path_parse(const char *name, gemm_path *out);
/* Whether this CPU can run path p (plain: always). Any thread. */
bool gemm_path_supported(gemm_path p);
/* The fastest path this CPU supports. Any thread. */
gemm_path gemm_path_best(void);
/* The CPU flags the dispatch looks at, present ones only, space-separated
 * into buf ("avx2 fma avx512f"), for benchmark headers. */
void gemm_cpu_flags(char *buf, size_t cap);
/* Rows of the path's micro-kernel tile (MR): row splits between threads
 * should be multiples of it. */
int gemm_path_rows(gemm_path p);

/* A packed weight matrix: n x k logical, stored as ceil(n / NR) panels of
 * k x NR floats (column j of panel p is W row p*NR + j; zero past n). */
typedef struct {
    gemm_path path;
    int n, k;
    int nr;              /* panel width of the path */
    const float *panels; /* borrowed from the caller's buffer (gemm_pack's dst) */
} gemm_weights;

/* Floats of the packed form of an n x k matrix for path p (a multiple of
 * 16, so consecutive packs in one buffer stay 64-byte aligned when the
 * buffer is). */
size_t gemm_packed_floats(gemm_path p, int n, int k);

/* Packs w (n, k; row stride ldw) for path p into dst (gemm_packed_floats
 * floats, 64-byte aligned) and returns the view; dst stays owned by the
 * caller and must outlive the view. */
gemm_weights gemm_pack(gemm_path p, const float *w, int n, int k, int ldw, float *dst);

/* gemm_pack of the transpose: packs the n x k matrix W = w^T, where w is
 * (k, n) with row stride ldw (so that C = A w, a product by a weight used
 * the other way round). Same contract as gemm_pack. */
gemm_weights gemm_pack_transposed(gemm_path p, const float *w, int n, int k, int ldw, float *dst);

/* The packed form of the n x k matrix A diag(scale) + B, for the panels
 * [p0, p1) of a and b, both packed for the same path and shape: each
 * column kk of A (the reduction index) scaled by scale[kk] (k floats), plus
 * B, written to dst at those panels' place (dst: gemm_packed_floats floats,
 * 64-byte aligned; panels outside [p0, p1) untouched, so threads may fill
 * disjoint ranges of one dst). Returns the view of all of dst: a weight
 * built per call on the hot path (k multiply-adds per element, no
 * transposes). Allocates nothing. */
gemm_weights gemm_pack_scaled_sum(const gemm_weights *a, const float *scale, const gemm_weights *b,
                                  int p0, int p1, float *dst);

typedef enum {
    GEMM_EPI_NONE,      /* C = A W^T (+ C) */
    GEMM_EPI_BIAS_GELU, /* C = gelu(A W^T (+ C) + bias), exact-erf GELU */
    GEMM_EPI_BIAS_LN,   /* C = LayerNorm(A W^T (+ C) + bias) over the n columns
                           (n must be the full row), gamma, beta, eps; bias may be NULL */
} gemm_epilogue_kind;

typedef struct {
    gemm_epilogue_kind kind;
    const float *bias;  /* (n) */
    const float *gamma; /* (n) GEMM_EPI_BIAS_LN */
    const float *beta;  /* (n) GEMM_EPI_BIAS_LN */
    float eps;
} gemm_epilogue;

/* C (m, w->n; row stride ldc) = A (m, w->k; row stride lda) * W^T, plus the
 * old C when accumulate, then the epilogue (NULL: none). m >= 0. A and C
 * must not overlap. Allocates nothing. */
void gemm_run(const gemm_weights *w, int m, const float *a, int lda, bool accumulate, float *c,
              int ldc, const gemm_epilogue *epi);

/* Panels of NR columns that W is stored in: the units of gemm_run_panels. */
int gemm_panels(const gemm_weights *w);

/* gemm_run restricted to the columns of panels [p0, p1) (c, bias: still
 * those of column 0), so that threads can split one product by columns and
 * each read only its share of W. epi may be NULL, GEMM_EPI_NONE or
 * GEMM_EPI_BIAS_GELU (a LayerNorm needs whole rows: run it after). */
void gemm_run_panels(const gemm_weights *w, int p0, int p1, int m, const float *a, int lda,
                     bool accumulate, float *c, int ldc, const gemm_epilogue *epi);

#endif
