/* bench_engine: the engine side of `make bench` (tests/bench/run_bench.py).
 * Loads one model directory and answers timing commands read from stdin, one
 * reply line per command on stdout, so that the driver can interleave these
 * measurements with others (GEMM-only, PyTorch) and take medians.
 *
 * The GEMM-only figure replays the exact products of one forward: this
 * binary is linked with -Wl,--wrap=cblas_sgemm,--wrap=gemm_run, so every
 * product the engine computes (its own packed GEMM, or cblas_sgemm for an
 * encoder that is not packed) goes through a wrapper that records its
 * arguments (shapes, strides, pointers into the real weights and workspace)
 * when asked to. The replay then runs the real products with those arguments
 * and nothing else (the packed ones without their fused epilogues: the
 * products alone). Not a test: it prints timings only. */
#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

static const char usage[] =
    "usage: bench_engine --model DIR [--threads N]\n"
    "\n"
    "--threads N: the engine's threads, a team of N lanes (this thread and N-1 lent\n"
    "ones, model/parallel.h), each with 1 OpenBLAS thread, as the daemon runs one\n"
    "worker; FASTFORMER_KERNELS in the environment forces the GEMM kernel path.\n"
    "\n"
    "Reads commands from stdin, answers one line each on stdout:\n"
    "  info          -> ok D H I L P V corename kernel_path lanes\n"
    "  fwd B L N     -> ok SECONDS GFLOP CPU        N forwards of B x L random ids "
    "(model_encode_ids)\n"
    "  gemm B L N    -> ok SECONDS GFLOP CPU CALLS  N replays of that forward's products\n"
    "  par W B L N   -> ok SECONDS GFLOP CPU        W threads, each with its own workspace, each\n"
    "                                               running N forwards at once (1 BLAS thread "
    "each)\n"
    "  pooled B L    -> ok v0 v1 ...                pooled vectors (B x D) of the ids, for checks\n"
    "  threads N     -> ok                          openblas_set_num_threads(N)\n"
    "  wsmin T S     -> ok                          later workspaces hold >= T tokens, S "
    "sequences\n"
    "  quit\n"
    "SECONDS is wall time for all N, CPU the process's CPU seconds over them, GFLOP\n"
    "fastformer_gemm_flops of one forward, CALLS the products (gemm_run or cblas_sgemm\n"
    "calls) per forward; recorded and replayed on the calling thread, so use them\n"
    "with --threads 1.\n"
    "Ids: id(s, t) = 1 + mix(s * 1000003 + t * 7919 + 12345) % (V - 1), the same\n"
    "function as tests/bench/torch_bench.py.\n";

/* ---- recording cblas_sgemm ------------------------------------------------------ */

void __real_cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                        const enum CBLAS_TRANSPOSE tb, const blasint m, const blasint n,
                        const blasint k, const float alpha, const float *a, const blasint lda,
                        const float *b, const blasint ldb, const float beta, float *c,
                        const blasint ldc);
void __wrap_cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                        const enum CBLAS_TRANSPOSE tb, const blasint m, const blasint n,
                        const blasint k, const float alpha, const float *a, const blasint lda,
                        const float *b, const blasint ldb, const float beta, float *c,
                        const blasint ldc);

void __real_gemm_run(const gemm_weights *w, int m, const float *a, int lda, bool accumulate,
                     float *c, int ldc, const gemm_epilogue *epi);
void __wrap_gemm_run(const gemm_weights *w, int m, const float *a, int lda, bool accumulate,
                     float *c, int ldc, const gemm_epilogue *epi);

typedef struct {
    bool packed; /* a gemm_run call (w, m, a, lda, accumulate, c, ldc), else cblas_sgemm */
    gemm_weights w;
    bool accumulate;
    enum CBLAS_ORDER order;
    enum CBLAS_TRANSPOSE ta, tb;
    blasint m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
} sgemm_call;

/* Calls of the forward being recorded; only the main thread records. */
static sgemm_call *recording;
static size_t n_recorded, recording_cap;
static int recording_on, recording_overflow;

void __wrap_cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                        const enum CBLAS_TRANSPOSE tb, const blasint m, const blasint n,
                        const blasint k, const float alpha, const float *a, const blasint lda,
                        const float *b, const blasint ldb, const float beta, float *c,
                        const blasint ldc)
{
    if (recording_on) {
        if (n_recorded < recording_cap)
            recording[n_recorded++] = (sgemm_call){.order = order,
                                                   .ta = ta,
                                                   .tb = tb,
                                                   .m = m,
                                                   .n = n,
                                                   .k = k,
                                                   .lda = lda,
                                                   .ldb = ldb,
                                                   .ldc = ldc,
                                                   .alpha = alpha,
                                                   .beta = beta,
                                                   .a = a,
                                                   .b = b,
                                                   .c = c};
        else
            recording_overflow = 1;
    }
    __real_cblas_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void __wrap_gemm_run(const gemm_weights *w, int m, const float *a, int lda, bool accumulate,
                     float *c, int ldc, const gemm_epilogue *epi)
{
    if (recording_on) {
        if (n_recorded < recording_cap)
            recording[n_recorded++] = (sgemm_call){.packed = true,
                                                   .w = *w,
                                                   .accumulate = accumulate,
                                                   .m = m,
                                                   .lda = lda,
                                                   .ldc = ldc,
                                                   .a = a,
                                                   .c = c};
        else
            recording_overflow = 1;
    }
    __real_gemm_run(w, m, a, lda, accumulate, c, ldc, epi);
}

/* ---- shapes: workspace, ids and recorded GEMMs per batch x length --------------- */

#define MAX_SHAPES 16
#define MAX_CALLS 4096

typedef struct {
    int batch, length, slot;
    unsigned long last_use; /* use_clock at the last shape_get */
    fastformer_workspace *ws;
    int32_t *ids;         /* batch * length */
    int32_t *n_ids;       /* batch */
    const int32_t **rows; /* batch */
    float *pooled;        /* batch * D */
    sgemm_call *calls;    /* recorded GEMMs of one forward, NULL until recorded */
    size_t n_calls;
    double gflop;
} shape;

static shape shapes[MAX_SHAPES];
static unsigned long use_clock;
/* "wsmin T S": later workspaces hold at least T tokens and S sequences, like
 * the daemon's, which are sized from the batching limits. */
static int ws_min_tokens, ws_min_seqs;

/* The engine's team: lanes - 1 lent threads serve it for the process's life. */
static parallel_team *team;
static int lanes = 1;

static void *lent_main(void *arg)
{
    parallel_team_serve(team, (int)(intptr_t)arg);
    return NULL;
}

static int team_start(int n)
{
    static pthread_t lent[64];
    if (n < 1 || n > 64 || !(team = parallel_team_new(n)))
        return -1;
    lanes = n;
    for (int i = 1; i < n; i++)
        if (pthread_create(&lent[i - 1], NULL, lent_main, (void *)(intptr_t)i) != 0)
            return -1;
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (every thread, BLAS's included): on a
 * shared machine this measures the work, whatever share of the cores the
 * scheduler gave us. */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int32_t bench_id(int s, int t, int vocab_size)
{
    uint32_t x = (uint32_t)s * 1000003u + (uint32_t)t * 7919u + 12345u;
    x *= 2654435761u;
    x ^= x >> 16;
    return 1 + (int32_t)(x % (uint32_t)(vocab_size - 1));
}

static void shape_free(shape *s)
{
    if (s->ws)
        fastformer_workspace_free(s->ws);
    free(s->ids);
    free(s->n_ids);
    free(s->rows);
    free(s->pooled);
    free(s->calls);
    memset(s, 0, sizeof *s);
}

/* Fills *s for batch x length; -1 when out of memory. */
static int shape_init(shape *s, const model *m, int batch, int length)
{
    const int d = m->config.encoder.hidden_size;
    s->batch = batch;
    s->length = length;
    s->ws = model_workspace_new_lanes(
        m, batch * length > ws_min_tokens ? batch * length : ws_min_tokens,
        batch > ws_min_seqs ? batch : ws_min_seqs, lanes);
    s->ids = calloc((size_t)batch * (size_t)length, sizeof *s->ids);
    s->n_ids = calloc((size_t)batch, sizeof *s->n_ids);
    s->rows = calloc((size_t)batch, sizeof *s->rows);
    s->pooled = calloc((size_t)batch * (size_t)d, sizeof *s->pooled);
    if (!s->ws || !s->ids || !s->n_ids || !s->rows || !s->pooled) {
        shape_free(s);
        return -1;
    }
    fastformer_workspace_set_team(s->ws, team);
    for (int i = 0; i < batch; i++) {
        s->rows[i] = s->ids + (size_t)i * (size_t)length;
        s->n_ids[i] = length;
        for (int t = 0; t < length; t++)
            s->ids[(size_t)i * (size_t)length + t] = bench_id(i, t, m->config.vocab_size);
    }
    return 0;
}

static void shape_forward(const model *m, shape *s)
{
    model_encode_ids(m, s->ws, s->rows, s->n_ids, s->batch, s->pooled);
}

/* The cached shape for batch x length in slot `slot` (par uses slots 0..W-1),
 * creating it (and evicting the least recently used) when needed. */
static shape *shape_get(const model *m, int batch, int length, int slot)
{
    use_clock++;
    shape *lru = &shapes[0];
    for (int i = 0; i < MAX_SHAPES; i++) {
        shape *s = &shapes[i];
        if (s->ws && s->batch == batch && s->length == length && s->slot == slot) {
            s->last_use = use_clock;
            return s;
        }
        if (!s->ws || (lru->ws && s->last_use < lru->last_use))
            lru = s;
    }
    shape_free(lru);
    if (shape_init(lru, m, batch, length) != 0)
        return NULL;
    lru->slot = slot;
    lru->last_use = use_clock;
    shape_forward(m, lru); /* fills seq_start and touches every page */
    lru->gflop = 1e-9 * fastformer_gemm_flops(&m->config.encoder, lru->ws->seq_start, batch);
    return lru;
}

/* Records the GEMM calls of one forward of s (once). -1 if there were too many. */
static int shape_record(const model *m, shape *s)
{
    if (s->calls)
        return 0;
    sgemm_call *calls = calloc(MAX_CALLS, sizeof *calls);
    if (!calls)
        return -1;
    recording = calls;
    recording_cap = MAX_CALLS;
    n_recorded = 0;
    recording_overflow = 0;
    recording_on = 1;
    shape_forward(m, s);
    recording_on = 0;
    recording = NULL;
    if (recording_overflow) {
        free(calls);
        return -1;
    }
    s->calls = calls;
    s->n_calls = n_recorded;
    return 0;
}

static void shape_replay(const shape *s)
{
    for (size_t i = 0; i < s->n_calls; i++) {
        const sgemm_call *c = &s->calls[i];
        if (c->packed) {
            __real_gemm_run(&c->w, c->m, c->a, c->lda, c->accumulate, c->c, c->ldc, NULL);
            continue;
        }
        __real_cblas_sgemm(c->order, c->ta, c->tb, c->m, c->n, c->k, c->alpha, c->a, c->lda, c->b,
                           c->ldb, c->beta, c->c, c->ldc);
    }
}

/* ---- par: W concurrent forwards ------------------------------------------------- */

typedef struct {
    const model *m;
    shape *s;
    int reps;
    pthread_barrier_t *start;
    double t_start, t_end; /* this worker's own clock readings */
} par_arg;

static void *par_main(void *varg)
{
    par_arg *a = varg;
    pthread_barrier_wait(a->start);
    a->t_start = now_seconds();
    for (int i = 0; i < a->reps; i++)
        shape_forward(a->m, a->s);
    a->t_end = now_seconds();
    return NULL;
}

/* Returns wall seconds for `workers` threads each running `reps` forwards, or
 * a negative value when memory is missing. */
static double par_run(const model *m, int workers, int batch, int length, int reps, double *gflop)
{
    enum { MAX_WORKERS = 8 };
    if (workers < 1 || workers > MAX_WORKERS)
        return -1.0;
    par_arg args[MAX_WORKERS];
    pthread_t tids[MAX_WORKERS];
    pthread_barrier_t start;
    for (int w = 0; w < workers; w++) {
        shape *s = shape_get(m, batch, length, w);
        if (!s)
            return -1.0;
        args[w] = (par_arg){.m = m, .s = s, .reps = reps, .start = &start};
        *gflop = s->gflop;
    }
    /* shape_get may have evicted an earlier slot of this call: check again. */
    for (int w = 0; w < workers; w++)
        if (!args[w].s->ws || args[w].s->slot != w || args[w].s->batch != batch ||
            args[w].s->length != length)
            return -1.0;
    /* Each worker runs alone on its thread: the team is for single forwards. */
    for (int w = 0; w < workers; w++)
        fastformer_workspace_set_team(args[w].s->ws, NULL);
    pthread_barrier_init(&start, NULL, (unsigned)workers + 1);
    for (int w = 0; w < workers; w++) {
        if (pthread_create(&tids[w], NULL, par_main, &args[w]) != 0) {
            /* The started threads wait at the barrier for ever: give up. */
            fprintf(stderr, "bench_engine: cannot start worker thread %d\n", w);
            exit(1);
        }
    }
    pthread_barrier_wait(&start);
    for (int w = 0; w < workers; w++)
        pthread_join(tids[w], NULL);
    pthread_barrier_destroy(&start);
    for (int w = 0; w < workers; w++)
        fastformer_workspace_set_team(args[w].s->ws, team);
    /* Wall time from the first worker's start to the last one's end, read
     * by the workers themselves: on a busy machine this thread may be
     * scheduled long after the barrier opens. */
    double first = args[0].t_start, last = args[0].t_end;
    for (int w = 1; w < workers; w++) {
        first = args[w].t_start < first ? args[w].t_start : first;
        last = args[w].t_end > last ? args[w].t_end : last;
    }
    return last - first;
}

/* ---- command loop ---------------------------------------------------------------- */

static int valid_shape(const model *m, int batch, int length)
{
    return batch >= 1 && batch <= 4096 && length >= 1 && length <= model_max_tokens(m) &&
           (long)batch * length <= (1L << 22);
}

static void command(const model *m, const char *line)
{
    int b = 0, len = 0, n = 0, w = 0;
    if (strncmp(line, "info", 4) == 0) {
        const fastformer_dims *d = &m->config.encoder;
        printf("ok %d %d %d %d %d %d %s %s %d\n", d->hidden_size, d->num_attention_heads,
               d->intermediate_size, d->num_hidden_layers, d->max_position_embeddings,
               m->config.vocab_size, openblas_get_corename(), gemm_path_name(m->kernel_path),
               lanes);
    } else if (sscanf(line, "fwd %d %d %d", &b, &len, &n) == 3 && n >= 1 &&
               valid_shape(m, b, len)) {
        shape *s = shape_get(m, b, len, 0);
        if (!s) {
            printf("error out of memory for %d x %d\n", b, len);
            return;
        }
        double t0 = now_seconds(), c0 = cpu_seconds();
        for (int i = 0; i < n; i++)
            shape_forward(m, s);
        printf("ok %.9f %.6f %.9f\n", now_seconds() - t0, s->gflop, cpu_seconds() - c0);
    } else if (sscanf(line, "gemm %d %d %d", &b, &len, &n) == 3 && n >= 1 &&
               valid_shape(m, b, len)) {
        shape *s = shape_get(m, b, len, 0);
        if (!s || shape_record(m, s) != 0) {
            printf("error cannot record the GEMMs of %d x %d\n", b, len);
            return;
        }
        /* Replayed calls read what earlier replays wrote, not what the
         * kernels between them would have; start from zeros so that values
         * cannot drift to infinities or NaNs over many replays. */
        memset(s->ws->scratch, 0, s->ws->scratch_floats * sizeof(float));
        double t0 = now_seconds(), c0 = cpu_seconds();
        for (int i = 0; i < n; i++)
            shape_replay(s);
        printf("ok %.9f %.6f %.9f %zu\n", now_seconds() - t0, s->gflop, cpu_seconds() - c0,
               s->n_calls);
    } else if (sscanf(line, "par %d %d %d %d", &w, &b, &len, &n) == 4 && n >= 1 &&
               valid_shape(m, b, len)) {
        double gflop = 0.0, c0 = cpu_seconds();
        double t = par_run(m, w, b, len, n, &gflop);
        if (t < 0)
            printf("error cannot run %d workers at %d x %d\n", w, b, len);
        else
            printf("ok %.9f %.6f %.9f\n", t, gflop, cpu_seconds() - c0);
    } else if (sscanf(line, "pooled %d %d", &b, &len) == 2 && valid_shape(m, b, len)) {
        shape *s = shape_get(m, b, len, 0);
        if (!s) {
            printf("error out of memory for %d x %d\n", b, len);
            return;
        }
        shape_forward(m, s);
        printf("ok");
        for (long i = 0; i < (long)b * m->config.encoder.hidden_size; i++)
            printf(" %.9g", s->pooled[i]);
        printf("\n");
    } else if (sscanf(line, "wsmin %d %d", &len, &b) == 2 && len >= 0 && len <= (1 << 22) &&
               b >= 0 && b <= 4096) {
        for (int i = 0; i < MAX_SHAPES; i++)
            shape_free(&shapes[i]);
        ws_min_tokens = len;
        ws_min_seqs = b;
        printf("ok\n");
    } else if (sscanf(line, "threads %d", &n) == 1 && n >= 1 && n <= 256) {
        openblas_set_num_threads(n);
        printf("ok\n");
    } else {
        printf("error bad command: %s", line);
        if (!strchr(line, '\n'))
            printf("\n");
    }
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            fputs(usage, strcmp(argv[i], "--help") == 0 ? stdout : stderr);
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (!dir) {
        fputs(usage, stderr);
        return 2;
    }
    /* One OpenBLAS thread per lane: the engine's threads are its team's. */
    openblas_set_num_threads(1);
    if (team_start(threads > 0 ? threads : 1) != 0) {
        fprintf(stderr, "bench_engine: cannot start a team of %d threads\n", threads);
        return 1;
    }
    model *m = NULL;
    char err[512];
    if (model_load(dir, &m, err, sizeof err) != 0) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    if (m->config.vocab_size < 2) {
        fprintf(stderr, "bench_engine: %s: vocab_size %d leaves no non-padding id\n", dir,
                m->config.vocab_size);
        model_free(m);
        return 1;
    }
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "quit", 4) == 0)
            break;
        command(m, line);
        fflush(stdout);
    }
    for (int i = 0; i < MAX_SHAPES; i++)
        shape_free(&shapes[i]);
    model_free(m);
    /* The lent threads are left serving: the process ends here. */
    return 0;
}
