/* cli_bench: `fastformer-cli bench`: throughput of the text/news encoder at
 * fixed batch x length shapes on random ids, as a Markdown table. Each shape
 * gets a warm-up run, then repetitions for at least --min-seconds. */
#include <cblas.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "mono_clock.h"

static const char bench_usage[] =
    "usage: fastformer-cli bench --model DIR [--threads N] [--kernels PATH] [--min-seconds S]\n"
    "\n"
    "Encodes random ids (1..vocab_size-1) at batch x length 1x32, 1x128, 32x32, 32x128\n"
    "and 64x256 (a length above the model's max_position_embeddings is capped, and\n"
    "the table says so) and prints a Markdown table of ms/batch, docs/s, tokens/s and\n"
    "GFLOP/s (GEMM flops, fastformer_gemm_flops). Not a test: numbers vary by machine.\n"
    "The header names the CPU flags the GEMM kernels dispatch on and the kernel path\n"
    "that ran.\n"
    "\n"
    "options:\n"
    "  --model DIR        model directory (a recommender's news encoder is measured)\n"
    "  --threads N        engine threads: this one and N-1 lent to the engine, each with\n"
    "                     1 OpenBLAS thread (default 1)\n"
    "  --kernels PATH     force the GEMM kernel path: plain, avx2 or avx512 (default: the\n"
    "                     FASTFORMER_KERNELS environment variable, else the fastest the\n"
    "                     CPU supports)\n"
    "  --min-seconds S    time spent per shape after the warm-up (default 1)\n"
    "  --help             this text\n";

static const struct {
    int batch, length;
} shapes[] = {{1, 32}, {1, 128}, {32, 32}, {32, 128}, {64, 256}};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static double now_seconds(void)
{
    return (double)mono_clock_us() * 1e-6;
}

/* xorshift64*: reproducible random ids. */
static uint32_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545f4914f6cdd1dull) >> 32);
}

typedef struct {
    int batch, length;
    bool capped;
    double ms_per_batch, docs_per_s, tokens_per_s, gflops;
    int reps;
} bench_row;

static void bench_shape(const model *m, fastformer_workspace *ws, int32_t *ids, int32_t *n_ids,
                        const int32_t **rows, float *pooled, double min_seconds, bench_row *r)
{
    int B = r->batch, L = r->length;
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(B * 1000 + L);
    for (int s = 0; s < B; s++) {
        rows[s] = ids + (size_t)s * L;
        n_ids[s] = L;
        for (int t = 0; t < L; t++)
            ids[(size_t)s * L + t] =
                1 + (int32_t)(next_random(&rng) % (uint32_t)(m->config.vocab_size - 1));
    }
    model_encode_ids(m, ws, rows, n_ids, B, pooled); /* warm-up */
    double flops = fastformer_gemm_flops(&m->config.encoder, ws->seq_start, B);
    int reps = 0;
    double t0 = now_seconds(), elapsed = 0.0;
    do {
        model_encode_ids(m, ws, rows, n_ids, B, pooled);
        reps++;
        elapsed = now_seconds() - t0;
    } while (elapsed < min_seconds || reps < 3);
    double per_batch = elapsed / reps;
    r->reps = reps;
    r->ms_per_batch = 1e3 * per_batch;
    r->docs_per_s = B / per_batch;
    r->tokens_per_s = (double)B * L / per_batch;
    r->gflops = flops / per_batch * 1e-9;
}

/* The engine's lent threads: each serves the team until it stops. */
typedef struct {
    parallel_team *team;
    pthread_t threads[256];
    int n_started;
} bench_team;

typedef struct {
    parallel_team *team;
    int lane;
} lent_lane;

static void *lent_main(void *arg)
{
    lent_lane *l = arg;
    parallel_team_serve(l->team, l->lane);
    return NULL;
}

/* A team of n lanes with n-1 lent threads; -1 when it cannot start. */
static int bench_team_start(bench_team *t, int n, lent_lane *lanes)
{
    t->n_started = 0;
    if (!(t->team = parallel_team_new(n)))
        return -1;
    for (int i = 1; i < n; i++) {
        lanes[i] = (lent_lane){t->team, i};
        if (pthread_create(&t->threads[i - 1], NULL, lent_main, &lanes[i]) != 0)
            return -1;
        t->n_started++;
    }
    return 0;
}

static void bench_team_stop(bench_team *t)
{
    if (!t->team)
        return;
    parallel_team_stop(t->team);
    for (int i = 0; i < t->n_started; i++)
        pthread_join(t->threads[i], NULL);
    parallel_team_free(t->team);
    t->team = NULL;
}

int cli_bench(int argc, char **argv)
{
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},   {"threads", required_argument, NULL, 't'},
        {"kernels", required_argument, NULL, 'k'}, {"min-seconds", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *model_dir = NULL;
    int threads = 1;
    const char *kernels = NULL;
    double min_seconds = 1.0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:m:t:k:s:h", options, NULL)) != -1) {
        switch (c) {
        case 'm':
            model_dir = optarg;
            break;
        case 't':
            if (cli_parse_int("bench", "--threads", optarg, 256, &threads) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'k': {
            gemm_path p;
            if (!gemm_path_parse(optarg, &p)) {
                cli_error("bench", "--kernels: expected plain, avx2 or avx512, got '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
            kernels = optarg;
            break;
        }
        case 's': {
            char *end = NULL;
            min_seconds = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(min_seconds >= 0.0 && min_seconds <= 3600.0)) {
                cli_error("bench", "--min-seconds: expected seconds from 0 to 3600, got '%s'",
                          optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        }
        case 'h':
            fputs(bench_usage, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("bench", c, argv);
        }
    }
    if (optind < argc) {
        cli_error("bench", "unexpected argument '%s' (see bench --help)", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!model_dir) {
        cli_error("bench", "missing --model DIR (see bench --help)");
        return CLI_EXIT_USAGE;
    }
    /* model_load reads the kernel path from the environment. */
    if (kernels && setenv("FASTFORMER_KERNELS", kernels, 1) != 0) {
        cli_error("bench", "cannot set FASTFORMER_KERNELS");
        return CLI_EXIT_FAILURE;
    }
    if (threads < 1) {
        cli_error("bench", "--threads: expected 1 to 256, got %d", threads);
        return CLI_EXIT_USAGE;
    }
    model *m = NULL;
    if (cli_model_load("bench", model_dir, &m) != 0)
        return CLI_EXIT_FAILURE;
    if (m->config.vocab_size < 2) {
        cli_error("bench", "%s: vocab_size %d leaves no non-padding id", model_dir,
                  m->config.vocab_size);
        model_free(m);
        return CLI_EXIT_FAILURE;
    }
    /* The engine's threads are its team's, one OpenBLAS thread each. */
    openblas_set_num_threads(1);
    static lent_lane lanes[256];
    bench_team team = {0};

    const fastformer_dims *d = &m->config.encoder;
    int max_len = model_max_tokens(m);
    bench_row rows_out[N_SHAPES];
    int max_tokens = 0, max_batch = 0;
    for (size_t i = 0; i < N_SHAPES; i++) {
        bench_row *r = &rows_out[i];
        *r = (bench_row){.batch = shapes[i].batch, .length = shapes[i].length};
        if (r->length > max_len) {
            r->length = max_len;
            r->capped = true;
        }
        max_tokens = r->batch * r->length > max_tokens ? r->batch * r->length : max_tokens;
        max_batch = r->batch > max_batch ? r->batch : max_batch;
    }
    fastformer_workspace *ws = model_workspace_new_lanes(m, max_tokens, max_batch, threads);
    int32_t *ids = calloc((size_t)max_tokens, sizeof *ids);
    int32_t *n_ids = calloc((size_t)max_batch, sizeof *n_ids);
    const int32_t **seq_rows = calloc((size_t)max_batch, sizeof *seq_rows);
    float *pooled = calloc((size_t)max_batch * (size_t)d->hidden_size, sizeof *pooled);
    int rc = CLI_EXIT_FAILURE;
    if (!ws || !ids || !n_ids || !seq_rows || !pooled) {
        cli_error("bench", "out of memory for a workspace of %d tokens", max_tokens);
        goto done;
    }
    if (bench_team_start(&team, threads, lanes) != 0) {
        cli_error("bench", "cannot start %d engine threads", threads);
        goto done;
    }
    fastformer_workspace_set_team(ws, team.team);
    char flags[128];
    gemm_cpu_flags(flags, sizeof flags);

    printf("model: %s (%s, hidden %d, heads %d, intermediate %d, layers %d, max positions %d, "
           "vocab %d)\n",
           model_dir, model_task_name(m->config.task), d->hidden_size, d->num_attention_heads,
           d->intermediate_size, d->num_hidden_layers, d->max_position_embeddings,
           m->config.vocab_size);
    printf("cpu flags: %s\n", flags[0] ? flags : "(none of avx2 fma avx512f)");
    printf("kernel path: %s (%d-row tiles, weights packed at load%s)\n",
           gemm_path_name(m->kernel_path), gemm_path_rows(m->kernel_path),
           kernels || getenv("FASTFORMER_KERNELS") ? ", forced" : "");
    printf("engine threads: %d (OpenBLAS threads: %d); at least %.3g s per shape after one "
           "warm-up run\n\n",
           threads, openblas_get_num_threads(), min_seconds);
    printf("| batch | length | ms/batch | docs/s | tokens/s | GFLOP/s |\n");
    printf("|------:|-------:|---------:|-------:|---------:|--------:|\n");
    bool any_capped = false;
    for (size_t i = 0; i < N_SHAPES; i++) {
        bench_row *r = &rows_out[i];
        bench_shape(m, ws, ids, n_ids, seq_rows, pooled, min_seconds, r);
        any_capped |= r->capped;
        printf("| %d | %d%s | %.3f | %.1f | %.0f | %.2f |\n", r->batch, r->length,
               r->capped ? "*" : "", r->ms_per_batch, r->docs_per_s, r->tokens_per_s, r->gflops);
        fflush(stdout);
    }
    if (any_capped)
        printf("\n* length capped at the model's max_position_embeddings (%d)\n", max_len);
    rc = CLI_EXIT_OK;
done:
    bench_team_stop(&team);
    if (ws)
        fastformer_workspace_free(ws);
    free(ids);
    free(n_ids);
    free(seq_rows);
    free(pooled);
    model_free(m);
    return rc;
}
