/* memory_estimate: what each served model keeps resident, term by term (see
 * memory_estimate.h). The workspace term asks the engine
 * (fastformer_workspace_bytes) and the vocabulary term the vocab
 * (vocab_bytes); the catalog and cache terms follow the layouts documented
 * in news_catalog.c and news_cache.c, which expose no size of their own. */
#include "memory_estimate.h"

#include <assert.h>
#include <malloc.h>
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
 *     build's batches) and the safetensors tables.
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

/* Smallest power of two >= n and >= min (the hash tables' sizing rule). */
static size_t pow2_at_least(size_t n, size_t min)
{
    size_t p = min;
    while (p < n)
        p <<= 1;
    return p;
}

/* model.safetensors stays mapped for the model's life, and every page of it
 * is resident: model_load hashes the whole file (sha256), and aligned F32
 * tensors are read in place by every forward. Converted tensors (F16/BF16,
 * misaligned F32, the concatenated query|key projections) live in the
 * model's one owned buffer, whose size only the allocator knows; model.h has
 * no field for it (f32_bytes counts views and copies together). */
static size_t weights_bytes(const model *m)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t owned = m->owned ? malloc_usable_size(m->owned) : 0;
    return round_up(m->weights_bytes, page) + owned;
}

/* Heap bytes of one news id string (MIND ids are a few bytes): glibc's
 * smallest chunk, which holds up to 24 bytes. */
#define CATALOG_ID_ALLOC_BYTES 32

/* news_catalog.c: built with room for exactly the news in news.tsv (at least
 * 16): a (rows, D) float matrix, an id pointer and length per row, the id
 * strings, and a uint32 table of >= 2 slots per row. PUTs of new ids grow it
 * by doubling later; that growth is not predicted. */
static size_t catalog_bytes(news_catalog *c)
{
    size_t rows = news_catalog_count(c), cap = rows > 16 ? rows : 16;
    size_t dim = (size_t)news_catalog_dim(c);
    return cap * (dim * sizeof(float) + sizeof(char *) + sizeof(size_t)) +
           rows * CATALOG_ID_ALLOC_BYTES + pow2_at_least(2 * cap, 16) * sizeof(uint32_t);
}

/* news_cache.c at full capacity: per entry a vector (D floats), its key
 * (max_ids int32 ids), and chain, LRU prev/next, length (4 bytes each) and
 * hash (8); plus a uint32 bucket table of >= 2 buckets per entry. */
static size_t cache_bytes(const news_cache *c, int dim, int max_ids)
{
    news_cache_stats st;
    news_cache_stats_get(c, &st);
    size_t per_entry = (size_t)dim * sizeof(float) + (size_t)(max_ids > 0 ? max_ids : 1) * 4 +
                       4 * sizeof(uint32_t) + sizeof(uint64_t);
    return st.capacity * per_entry + pow2_at_least(2 * st.capacity, 1) * sizeof(uint32_t);
}

void memory_estimate_add_model(memory_estimate *e, const served_model *sm)
{
    assert(e && sm && sm->model && sm->n_workers >= 1 && sm->workspace_tokens >= 1);
    const model *m = sm->model;
    const int D = m->config.encoder.hidden_size;
    size_t ws =
        fastformer_workspace_bytes(&m->config.encoder, sm->workspace_tokens, sm->max_batch_size);
    size_t pooled = ((size_t)sm->max_batch_size + 1) * (size_t)D * sizeof(float);

    e->weights += weights_bytes(m);
    e->workspaces += (size_t)sm->n_workers * (ws + pooled);
    e->tables += vocab_bytes(m->vocab);
    if (sm->catalog)
        e->catalogs += catalog_bytes(sm->catalog);
    if (sm->cache)
        e->caches += cache_bytes(sm->cache, D, model_max_tokens(m));
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
