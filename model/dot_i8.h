/* dot_i8: int8 rows times an int16 vector, summed exactly in int32: the
 * first pass of a catalog-wide ranking, which reads every row's int8 copy
 * (memory bound: one byte per component) and keeps only the rows whose
 * bound may still enter the top k for an exact float score.
 *
 * Three paths, compiled with per-function target attributes (the build
 * targets baseline x86-64) and chosen at run time by CPU flags, like gemm.h:
 *   avx512  AVX-512BW: 32 components per step (vpmovsxbw + vpmaddwd)
 *   avx2    AVX2: 16 components per step (the same two instructions)
 *   plain   portable C
 * Every path returns the same integers (no rounding anywhere), so a caller
 * may force any supported path (tests do) and get identical results.
 * Pure compute: no allocation, no globals but the CPU check; any thread. */
#ifndef FF_DOT_I8_H
#define FF_DOT_I8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    DOT_I8_PLAIN,
    DOT_I8_AVX2,
    DOT_I8_AVX512,
} dot_i8_path;
#define DOT_I8_N_PATHS 3

/* "plain", "avx2", "avx512". */
const char *dot_i8_path_name(dot_i8_path p);
/* Whether this CPU can run path p (plain: always). */
bool dot_i8_path_supported(dot_i8_path p);
/* The fastest supported path (checked once). */
dot_i8_path dot_i8_path_best(void);

/* The largest |w[i]| that keeps every sum of d products with int8 entries
 * in [-127, 127] inside int32: min(32767, (2^31 - 1) / (127 d)). d >= 1. */
int dot_i8_w_max(int d);

/* out[r] = sum_i q[r * d + i] * w[i] for r < n_rows, exact, on path p
 * (asserted supported). Entries of q must lie in [-127, 127] and |w[i]| <=
 * dot_i8_w_max(d); then no partial sum overflows. */
void dot_i8_rows(dot_i8_path p, const int8_t *q, size_t n_rows, int d, const int16_t *w,
                 int32_t *out);

#endif
