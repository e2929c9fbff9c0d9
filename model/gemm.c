/* gemm: packing, run-time dispatch and the row-block driver of the engine's
 * own GEMM (gemm.h); the micro-kernels are in gemm_plain.c, gemm_avx2.c and
 * gemm_avx512.c. */
#include "gemm.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "gemm_kernels.h"
#include "kernels.h"

/* rows_cost: the kernel's time follows the rows it is asked for (avx2: one
 * version per row count), so a short rest of rows is better shared with the
 * last full tile (tile_rows); the others compute a short tile as a full one. */
typedef struct {
    const char *name;
    int mr, nr;
    bool rows_cost;
    gemm_block_fn *block;
} path_info;

static const path_info paths[GEMM_N_PATHS] = {
    [GEMM_PATH_PLAIN] = {"plain", GEMM_PLAIN_MR, GEMM_PLAIN_NR, false, gemm_block_plain},
    [GEMM_PATH_AVX2] = {"avx2", GEMM_AVX2_MR, GEMM_AVX2_NR, true, gemm_block_avx2},
    [GEMM_PATH_AVX512] = {"avx512", GEMM_AVX512_MR, GEMM_AVX512_NR, false, gemm_block_avx512},
};

static const path_info *info(gemm_path p)
{
    assert((unsigned)p < GEMM_N_PATHS);
    return &paths[p];
}

const char *gemm_path_name(gemm_path p)
{
    return info(p)->name;
}

bool gemm_path_parse(const char *name, gemm_path *out)
{
    for (int p = 0; p < GEMM_N_PATHS; p++)
        if (strcmp(name, paths[p].name) == 0) {
            *out = (gemm_path)p;
            return true;
        }
    return false;
}

/* ---- CPU flags ------------------------------------------------------------------ */

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
static bool cpu_has(const char *flag)
{
    /* __builtin_cpu_supports wants a literal: one branch per flag. */
    __builtin_cpu_init();
    if (strcmp(flag, "avx2") == 0)
        return __builtin_cpu_supports("avx2");
    if (strcmp(flag, "fma") == 0)
        return __builtin_cpu_supports("fma");
    if (strcmp(flag, "avx512f") == 0)
        return __builtin_cpu_supports("avx512f");
    return false;
}
#else
static bool cpu_has(const char *flag)
{
    (void)flag;
    return false;
}
#endif

bool gemm_path_supported(gemm_path p)
{
    switch (p) {
    case GEMM_PATH_PLAIN:
        return true;
    case GEMM_PATH_AVX2:
        return cpu_has("avx2") && cpu_has("fma");
    case GEMM_PATH_AVX512:
        return cpu_has("avx512f") && cpu_has("fma");
    }
    return false;
}

gemm_path gemm_path_best(void)
{
    if (gemm_path_supported(GEMM_PATH_AVX512))
        return GEMM_PATH_AVX512;
    if (gemm_path_supported(GEMM_PATH_AVX2))
        return GEMM_PATH_AVX2;
    return GEMM_PATH_PLAIN;
}

void gemm_cpu_flags(char *buf, size_t cap)
{
    static const char *const flags[] = {"avx2", "fma", "avx512f"};
    size_t at = 0;
    if (cap > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (cpu_has(flags[i]) && at < cap)
            at += (size_t)snprintf(buf + at, cap - at, "%s%s", at ? " " : "", flags[i]);
}

int gemm_path_rows(gemm_path p)
{
    return info(p)->mr;
}

/* ---- packing ---------------------------------------------------------------------- */

size_t gemm_packed_floats(gemm_path p, int n, int k)
{
    assert(n > 0 && k > 0);
    const size_t nr = (size_t)info(p)->nr;
    const size_t panels = ((size_t)n + nr - 1) / nr;
    return (panels * (size_t)k * nr + 15) / 16 * 16;
}

/* Packs the n x k matrix whose element (row, kk) is w[row * rs + kk * cs],
 * row by row (with cs = 1 the reads are sequential: sequences' key matrices
 * are packed on the hot path), the columns past n zeroed. */
static gemm_weights pack_strided(gemm_path p, const float *w, int n, int k, size_t rs, size_t cs,
                                 float *dst)
{
    const int nr = info(p)->nr;
    const int n_panels = (n + nr - 1) / nr;
    for (int pi = 0; pi < n_panels; pi++) {
        float *panel = dst + (size_t)pi * (size_t)k * (size_t)nr;
        const int rows = n - pi * nr < nr ? n - pi * nr : nr;
        if (rows < nr)
            memset(panel, 0, (size_t)k * (size_t)nr * sizeof(float));
        for (int j = 0; j < rows; j++) {
            const float *src = w + (size_t)(pi * nr + j) * rs;
            for (int kk = 0; kk < k; kk++)
                panel[(size_t)kk * (size_t)nr + (size_t)j] = src[(size_t)kk * cs];
        }
    }
    return (gemm_weights){.path = p, .n = n, .k = k, .nr = nr, .panels = dst};
}

gemm_weights gemm_pack(gemm_path p, const float *w, int n, int k, int ldw, float *dst)
{
    return pack_strided(p, w, n, k, (size_t)ldw, 1, dst);
}

gemm_weights gemm_pack_transposed(gemm_path p, const float *w, int n, int k, int ldw, float *dst)
{
    return pack_strided(p, w, n, k, 1, (size_t)ldw, dst);
}

gemm_weights gemm_pack_scaled_sum(const gemm_weights *a, const float *scale, const gemm_weights *b,
                                  int p0, int p1, float *dst)
{
    assert(a->path == b->path && a->n == b->n && a->k == b->k && a->nr == b->nr);
    assert(0 <= p0 && p0 <= p1 && p1 <= gemm_panels(a));
    /* A panel is k rows of NR floats, its row kk holding column kk of NR
     * rows of the matrix: one scale per row of the panel. */
    const size_t panel = (size_t)a->k * (size_t)a->nr;
    for (int p = p0; p < p1; p++)
        kernels_scale_rows_add(dst + (size_t)p * panel, a->panels + (size_t)p * panel, scale,
                               b->panels + (size_t)p * panel, a->k, a->nr);
    return (gemm_weights){.path = a->path, .n = a->n, .k = a->k, .nr = a->nr, .panels = dst};
}

/* ---- the driver ------------------------------------------------------------------- */

/* Rows of A kept in L2 while every panel of W streams past them: about
 * 384 KiB of A (a multiple of the tile's rows but on AVX2, see group_rows;
 * at least one tile), which
 * leaves room in a 1 MiB L2 for a panel of W (k x NR floats). Each panel is
 * then read once per group of rows instead of once per tile of rows: at M =
 * 32 and weights that do not fit the caches, 4x less traffic from memory.
 * Blocking k as well (BLIS's kc: a kc x NR part of a panel kept in L1 over
 * every tile of the group, C accumulated across blocks) did not pay on Zen 4
 * nor on Zen 5 (2026-12-03, branch gemm3, CPU time, kc 128 to 1536, both
 * orders of blocks and panels): equal or up to 10% slower at k = 768 and 3072
 * on AVX-512 and AVX2 at load 3 (an AVX2 gain at k = 3072 under heavier load
 * did not repeat). A tile runs all of k in registers, and one 512 x 768 x 768
 * product reaches 93-100% of the FMA peak.
 * A taller AVX-512 tile, 12 x 32 (24 zmm accumulators) with the 8 x 32 one
 * for a rest of at most 8 rows (3 passes over each panel at M = 32 instead
 * of 4), did not pay either (2026-12-03, branch engine4, Zen 5, CPU time,
 * interleaved, medians of 15): +4% on 32 x 3072 x 768 with W from memory
 * before the prefetch below, 1-3% slower with W in cache (32 to 512 rows) and
 * on 32 x 768 x 3072 from memory (12 rows of A streamed from L2 at once);
 * forward 32 x 128 of the mid model (D = 384, I = 1536) 9% slower in CPU
 * time at load 3 (one pair of processes: pairs of the same binaries were
 * later seen to differ by up to 10%, so that figure is weak; the products'
 * are from one process, alternating). What the small products lacked was
 * memory overlap: a group's first pass over a panel waited on memory while
 * the other passes left it idle. So each tile of a group prefetches an equal
 * share of the next panel (panel_tiles). With W from memory, in GFLOP/s
 * (one process, alternating, medians of 15): 32 x 3072 x 768 152 -> 185,
 * 32 x 768 x 3072 145 -> 163, 32 x 384 x 1536 164 -> 181; AVX2 32 x 3072 x
 * 768 73 -> 79, 6 x 3072 x 768 47 -> 83. W in L3: equal; in L2: 1-4% slower
 * (so weights under GEMM_PREFETCH_MIN_BYTES are not prefetched).
 * The AVX-512 prefetches go to L2 (_MM_HINT_T1), not L1: a panel (k x NR
 * floats, 96 KiB at k = 768 on AVX-512) does not fit L1 and the kernel reads
 * the current one from L2 anyway, so prefetching the next into L1 only
 * evicted the lines in use. On Zen 4 (2026-12-04, forward of the D = 768
 * model, 1 x 32, weights from memory, two binaries alternating, 5-7 rounds,
 * the machine otherwise quiet): AVX-512 1 thread 8.8 -> 8.4 ms (-6%), 2
 * threads -12%; AVX2 (forced) 1 thread 12.2 -> 9.7 ms (-21%); D = 384 1 x
 * 32, 32 x 128 at D = 384 and 768, and the default D = 256 model (not
 * prefetched): equal within noise.
 * The AVX2 kernel spreads its share over its k steps instead of one line per
 * step from the first (gemm_avx2.c); with that and tile_rows, AVX2 at M = 32
 * is within 0-5% of the AVX-512 path with its L2 hint (2026-12-04, branch
 * engine6, Zen 4, GFLOP/s: W from memory 32 x 3072 x 768 100 vs 100, 32 x
 * 768 x 3072 101 vs 106; W in L3 32 x 1536 x 384 110 vs 115; 12 x 768 x 768
 * from memory 88 vs 75). The same spread on AVX-512, over its burst into L1 (before the L2
 * hint above), gained 14% at 32 x 3072 x 768 from memory but lost 3% with W
 * in L3 (32 x 768 x 768, 32 x 1536 x 384): not kept, and not tried against
 * the L2 hint. */
#define GEMM_GROUP_A_BYTES (384 * 1024)

/* Where a kernel's cost follows its rows (tile_rows), a group need not be
 * whole tiles: at k = 3072 it is 32 rows, not 30 and a second pass over all
 * of W for the other 2. AVX2, W from memory (2026-12-04, branch engine6, Zen
 * 4, CPU time, one process alternating, medians of 31): 32 x 768 x 3072 92
 * -> 103 GFLOP/s, 64 x 768 x 3072 +5%; from L3 32 x 768 x 3072 +17%. Also
 * better than whole-tile groups with the rest of less than a tile joined to
 * the last: 252 x 768 x 3072 from L3 +3.5%, 64 x 768 x 3072 +2.5% (fewer
 * passes over W). */
static int group_rows(const path_info *pi, int k)
{
    int rows = GEMM_GROUP_A_BYTES / (k * (int)sizeof(float));
    if (!pi->rows_cost)
        rows = rows / pi->mr * pi->mr;
    return rows > pi->mr ? rows : pi->mr;
}

int gemm_panels(const gemm_weights *w)
{
    return (w->n + w->nr - 1) / w->nr;
}

/* The columns [col0, col0 + n_cols) of rows [0, rows) of C after the product. */
static void epilogue_cols(const gemm_epilogue *epi, float *c, int ldc, int rows, int col0,
                          int n_cols)
{
    switch (epi ? epi->kind : GEMM_EPI_NONE) {
    case GEMM_EPI_NONE:
        break;
    case GEMM_EPI_BIAS_GELU:
        kernels_bias_gelu_rows(c + col0, ldc, rows, n_cols, epi->bias + col0);
        break;
    case GEMM_EPI_BIAS_LN:
        assert(col0 == 0);
        kernels_layernorm_rows(c, ldc, rows, n_cols, epi->bias, epi->gamma, epi->beta, epi->eps);
        break;
    }
}

/* Weights smaller than this are not prefetched: they may still be in L2
 * from the last call, where the prefetches only cost issue slots (1-4%
 * slower at 32 x 256 x 256 from L2; official model 1 x 32 forward about 3%
 * slower in CPU time with them). */
#define GEMM_PREFETCH_MIN_BYTES (512 * 1024)

/* The lines of the next panel that tile t of a group's `tiles` prefetches:
 * its share of the panel's `lines`, split evenly over the tiles, from line
 * *first on (0 lines once the panel is shared out). */
static int prefetch_share(int lines, int tiles, int t, int *first)
{
    const int share = (lines + tiles - 1) / tiles, start = t * share;
    *first = start;
    if (start >= lines)
        return 0;
    return lines - start < share ? lines - start : share;
}

/* Rows of the tile from row i of a group of gm: MR, the rest at the end.
 * Where a kernel's cost follows its rows, a rest of at most MR / 2 rows is
 * shared with the last full tile instead (M = 32 on 6-row tiles: 6 6 6 6 4 4,
 * not 6 6 6 6 6 2): a tile of 1 or 2 rows has too few accumulators to hide
 * the FMA latency. The number of tiles stays ceil(gm / MR).
 * With W from memory or L3 (2026-12-04, branch engine6, Zen 4, AVX2, CPU
 * time, one process alternating, medians of 31), over computing the rest as
 * a full 6-row tile: 32 x 768 x 768, 32 x 1536 x 768, 32 x 1536 x 384 +5-15%,
 * a little more than an exact 2-row rest (+0-10%). */
static int tile_rows(const path_info *pi, int gm, int i)
{
    const int left = gm - i, mr = pi->mr;
    if (left <= mr)
        return left;
    if (!pi->rows_cost || left >= 2 * mr || left - mr > mr / 2)
        return mr;
    return (left + 1) / 2;
}

/* The tiles of one panel over the group's gm rows, each prefetching its
 * share of `next` (NULL: none; kernels with no lines to prefetch get a valid
 * pointer all the same). */
static void panel_tiles(const path_info *pi, const gemm_weights *w, int p, const float *next,
                        int gm, const float *ag, int lda, bool accumulate, float *cg, int ldc)
{
    const int tiles = (gm + pi->mr - 1) / pi->mr;
    const int lines = next ? (int)((size_t)w->k * (size_t)pi->nr / GEMM_LINE_FLOATS) : 0;
    for (int i = 0, t = 0, rows; i < gm; i += rows, t++) {
        rows = tile_rows(pi, gm, i);
        int first;
        const int n_lines = prefetch_share(lines, tiles, t, &first);
        const float *pf = n_lines ? next + (size_t)first * GEMM_LINE_FLOATS : w->panels;
        pi->block(w->panels, w->n, w->k, p, p + 1, rows, ag + (size_t)i * (size_t)lda, lda,
                  accumulate, cg + (size_t)i * (size_t)ldc, ldc, pf, n_lines);
    }
}

void gemm_run_panels(const gemm_weights *w, int p0, int p1, int m, const float *a, int lda,
                     bool accumulate, float *c, int ldc, const gemm_epilogue *epi)
{
    assert(m >= 0 && lda >= w->k && ldc >= w->n && 0 <= p0 && p0 <= p1 && p1 <= gemm_panels(w));
    const path_info *pi = info(w->path);
    const int group = group_rows(pi, w->k), col0 = p0 * pi->nr;
    const int col1 = p1 * pi->nr < w->n ? p1 * pi->nr : w->n;
    const size_t panel = (size_t)w->k * (size_t)pi->nr;
    const bool prefetch =
        (size_t)gemm_panels(w) * panel * sizeof(float) >= (size_t)GEMM_PREFETCH_MIN_BYTES;
    assert(!epi || epi->kind != GEMM_EPI_BIAS_LN || (p0 == 0 && col1 == w->n));
    for (int g = 0; g < m; g += group) {
        const int gm = m - g < group ? m - g : group;
        const float *ag = a + (size_t)g * (size_t)lda;
        float *cg = c + (size_t)g * (size_t)ldc;
        for (int p = p0; p < p1; p++) {
            const float *next = prefetch && p + 1 < p1 ? w->panels + (size_t)(p + 1) * panel : NULL;
            panel_tiles(pi, w, p, next, gm, ag, lda, accumulate, cg, ldc);
        }
        /* The group's rows are still in L2: finish them now. */
        if (col1 > col0)
            epilogue_cols(epi, cg, ldc, gm, col0, col1 - col0);
    }
}

void gemm_run(const gemm_weights *w, int m, const float *a, int lda, bool accumulate, float *c,
              int ldc, const gemm_epilogue *epi)
{
    gemm_run_panels(w, 0, gemm_panels(w), m, a, lda, accumulate, c, ldc, epi);
}
