/* quant_dot: quantized rows (int8, or int4 packed two to a byte) times an
 * integer vector, summed exactly in int32: the passes of a catalog-wide
 * ranking, which reads every row's int4 copy (memory bound: half a byte per
 * component), then the int8 copy of the few rows whose bound may still
 * enter the top k, and keeps only those for an exact float score.
 *
 * Four paths, compiled with per-function target attributes (the build
 * targets baseline x86-64) and chosen at run time by CPU flags, like gemm.h:
 *   avx512vnni  AVX-512 VNNI: int4 rows 128 components per vpdpbusd pair
 *   avx512      AVX-512BW: int8 rows 32 int16 lanes per step (widen, then
 *               vpmaddwd); int4 rows 128 components per step (vpmaddubsw)
 *   avx2        AVX2: the same at half the width
 *   plain       portable C
 * Every path returns the same integers (no rounding anywhere), so a caller
 * may force any supported path (tests do) and get identical results.
 * Pure compute: no allocation, no globals but the CPU check; any thread. */
#ifndef FF_QUANT_DOT_H
#define FF_QUANT_DOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    QUANT_DOT_PLAIN,
    QUANT_DOT_AVX2,
    QUANT_DOT_AVX512,
    QUANT_DOT_AVX512VNNI,
} quant_dot_path;
#define QUANT_DOT_N_PATHS 4

/* "plain", "avx2", "avx512", "avx512vnni". */
const char *quant_dot_path_name(quant_dot_path p);
/* Whether this CPU can run path p (plain: always). */
bool quant_dot_path_supported(quant_dot_path p);
/* The fastest supported path (checked once). */
quant_dot_path quant_dot_path_best(void);

/* The largest |w[i]| that keeps every sum of d products with int8 entries
 * in [-127, 127] (or int4 ones in [-7, 7]) inside int32: min(32767,
 * (2^31 - 1) / (127 d)). d >= 1. */
int quant_dot_w_max(int d);

/* out[r] = sum_i q[r * d + i] * w[i] for r < n_rows, exact, on path p
 * (asserted supported). Entries of q must lie in [-127, 127] and |w[i]| <=
 * quant_dot_w_max(d); then no partial sum overflows. */
void quant_dot_i8_rows(quant_dot_path p, const int8_t *q, size_t n_rows, int d, const int16_t *w,
                       int32_t *out);

/* Bytes of one int4 row of d components: (d + 1) / 2. Component 2j is the
 * low nibble of byte j and 2j + 1 its high nibble, each holding q + 8 for a
 * value q in [-7, 7] (so 1..15); an odd d leaves the last high nibble 8
 * (a 0). */
size_t quant_dot_i4_row_bytes(int d);

/* out[r] = sum_i q4_r[i] * w[i] for r < n_rows int4 rows of d components
 * (quant_dot_i4_row_bytes(d) bytes each, back to back), exact, on path p,
 * with an int8 w given split: w_even[j] = w[2j] and w_odd[j] = w[2j + 1]
 * (0 past d), quant_dot_i4_row_bytes(d) of each. d <= 65536. */
void quant_dot_i4_rows(quant_dot_path p, const uint8_t *q4, size_t n_rows, int d,
                       const int8_t *w_even, const int8_t *w_odd, int32_t *out);

#endif
