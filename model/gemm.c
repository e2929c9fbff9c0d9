/* gemm: packing, run-time dispatch and the row-block driver of the engine's
 * own GEMM (gemm.h); the micro-kernels are in gemm_plain.c, gemm_avx2.c and
 * gemm_avx512.c. */
#include "gemm.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "gemm_kernels.h"
#include "kernels.h"

typedef struct {
    const char *name;
    int mr, nr;
    gemm_block_fn *block;
} path_info;

static const path_info paths[GEMM_N_PATHS] = {
    [GEMM_PATH_PLAIN] = {"plain", GEMM_PLAIN_MR, GEMM_PLAIN_NR, gemm_block_plain},
    [GEMM_PATH_AVX2] = {"avx2", GEMM_AVX2_MR, GEMM_AVX2_NR, gemm_block_avx2},
    [GEMM_PATH_AVX512] = {"avx512", GEMM_AVX512_MR, GEMM_AVX512_NR, gemm_block_avx512},
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

gemm_weights gemm_pack(gemm_path p, const float *w, int n, int k, int ldw, float *dst)
{
    const int nr = info(p)->nr;
    const int n_panels = (n + nr - 1) / nr;
    for (int pi = 0; pi < n_panels; pi++)
        for (int kk = 0; kk < k; kk++) {
            float *o = dst + ((size_t)pi * (size_t)k + (size_t)kk) * (size_t)nr;
            for (int j = 0; j < nr; j++) {
                const int row = pi * nr + j;
                o[j] = row < n ? w[(size_t)row * (size_t)ldw + (size_t)kk] : 0.0f;
            }
        }
    return (gemm_weights){.path = p, .n = n, .k = k, .nr = nr, .panels = dst};
}

/* ---- the driver ------------------------------------------------------------------- */

void gemm_run(const gemm_weights *w, int m, const float *a, int lda, bool accumulate, float *c,
              int ldc, const gemm_epilogue *epi)
{
    assert(m >= 0 && lda >= w->k && ldc >= w->n);
    const path_info *pi = info(w->path);
    const gemm_epilogue_kind kind = epi ? epi->kind : GEMM_EPI_NONE;
    for (int i = 0; i < m; i += pi->mr) {
        const int mr = m - i < pi->mr ? m - i : pi->mr;
        float *ci = c + (size_t)i * (size_t)ldc;
        pi->block(w, mr, a + (size_t)i * (size_t)lda, lda, accumulate, ci, ldc);
        /* The block's rows are still in L1: finish them now. */
        switch (kind) {
        case GEMM_EPI_NONE:
            break;
        case GEMM_EPI_BIAS_GELU:
            kernels_bias_gelu_rows(ci, ldc, mr, w->n, epi->bias);
            break;
        case GEMM_EPI_BIAS_LN:
            kernels_layernorm_rows(ci, ldc, mr, w->n, epi->bias, epi->gamma, epi->beta, epi->eps);
            break;
        }
    }
}
