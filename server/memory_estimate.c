/* memory_estimate: what each served model keeps resident, term by term (see
 * memory_estimate.h). Every term asks the module that owns the memory: the
 * model (mapped_bytes, owned_bytes, model_workspace_bytes), the vocab
 * (vocab_bytes), the news catalog (news_catalog_bytes) and the news cache
 * (news_cache_bytes); nothing here knows their layouts. */
#include "memory_estimate.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ==== the runtime term ========================================================
 *
 * Measured on the reference machine (2-core AMD EPYC, Debian 12, OpenBLAS
 * 0.3.21 pthread, libmicrohttpd 0.9.75), VmHWM from /proc/PID/status:
 *   - serving only tests/fixtures/classifier_f32 (model terms < 0.2 MiB), 1
 *     worker: 9.0 MiB idle, of which 7.9 MiB are file pages (the binary,
 *     libc, libopenblas, libgfortran, libgnutls, libmicrohttpd, libjansson,
 *     ...) and 1.1 MiB anonymous (libraries' data, thread stacks); 10.6 MiB
 *     after 2,000 classify requests on 32 connections.
 *   - serving conf/fastformerd.yaml's three D = 256 models, after 1,200
 *     mixed classify / recommend requests on 32 connections and 300 long
 *     classify requests on 64: peak minus the model terms below was 13.8,
 *     14.4 and 16.3 MiB with 1, 2 and 4 workers. So about 0.8 MiB per worker
 *     (its stack and malloc arena, and OpenBLAS's packing buffer for the
 *     calling thread: the engine's GEMMs have at most 512-row chunks, so
 *     only about 1 MiB of OpenBLAS's 32 MiB reservation is ever touched),
 *     and about 2.5 MiB more than the tiny model's base: glibc arenas keep
 *     what the loader freed (news.tsv, the parsed title table, the catalog
 *     build's batches, the safetensors tables).
 *   - with 200 instead of 64 connections the peak rose by 7.0 MiB: about
 *     40 KiB per open connection (libmicrohttpd's 32 KiB pool, the request
 *     body of about 8 KB and its state).
 * Hence 12 MiB + 1 MiB per worker + 40 KiB per allowed connection; with the
 * default 2 workers and 256 connections, 24 MiB. Request bodies are bounded
 * by max_body_bytes only, so connections that all send near-limit bodies at
 * once exceed this (by up to max_connections x max_body_bytes). */

void memory_estimate_init(memory_estimate *e, int n_workers, int max_connections)
{
    assert(e && n_workers >= 1 && max_connections >= 1);
    memset(e, 0, sizeof *e);
    e->runtime = MEMORY_ESTIMATE_RUNTIME_BASE_BYTES +
                 (size_t)n_workers * MEMORY_ESTIMATE_RUNTIME_PER_WORKER_BYTES +
                 (size_t)max_connections * MEMORY_ESTIMATE_RUNTIME_PER_CONNECTION_BYTES;
}

/* ==== per-model terms ========================================================== */

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* The weights as they sit in memory. model.safetensors stays mapped only
 * while aligned F32 tensors are read in place, and then every page of it is
 * resident (model_load hashed the whole file); F16/BF16 files are unmapped
 * after conversion (mapped_bytes = 0). Converted tensors and the
 * concatenated query|key projections live in the model's owned buffer. An
 * int8 word embedding table counts as stored, one byte per element: inside
 * the mapping when it stays, else as the model's owned int8 copy; its scales
 * are owned F32. The encoders' weights packed for the GEMM kernels at load
 * are a further copy (packed_bytes). */
static size_t weights_bytes(const model *m)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return round_up(m->mapped_bytes, page) + m->owned_bytes + m->packed_bytes;
}

void memory_estimate_add_model(memory_estimate *e, const served_model *sm)
{
    assert(e && sm && sm->model && sm->n_workers >= 1 && sm->workspace_tokens >= 1);
    const model *m = sm->model;
    const int D = m->config.encoder.hidden_size;
    size_t ws = model_workspace_bytes_lanes(m, sm->workspace_tokens, sm->max_batch_size,
                                            sm->n_lanes >= 1 ? sm->n_lanes : 1);
    size_t pooled = ((size_t)sm->max_batch_size + 1) * (size_t)D * sizeof(float);

    e->weights += weights_bytes(m);
    e->workspaces += (size_t)sm->n_workers * (ws + pooled);
    e->tables += vocab_bytes(m->vocab);
    if (sm->catalog)
        e->catalogs += news_catalog_bytes(sm->catalog);
    if (sm->cache)
        e->caches += news_cache_bytes(sm->cache);
}

size_t memory_estimate_total_bytes(const memory_estimate *e)
{
    return e->weights + e->workspaces + e->catalogs + e->caches + e->tables + e->runtime;
}

static double mib(size_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

void memory_estimate_format(const memory_estimate *e, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "memory estimate %.1f MiB: weights %.1f + workspaces %.1f + catalogs %.1f + "
             "caches %.1f + tables %.1f + runtime %.1f",
             mib(memory_estimate_total_bytes(e)), mib(e->weights), mib(e->workspaces),
             mib(e->catalogs), mib(e->caches), mib(e->tables), mib(e->runtime));
}
