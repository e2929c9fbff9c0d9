/* memory_estimate: the daemon's prediction of its own resident memory
 * (issue 6, "memory is predictable"). Per served model: the weights as they
 * sit in memory, the workers' engine workspaces and output rows (sized from
 * the batching limits), the news catalog, the news cache at full capacity and
 * the vocabulary tables; plus a runtime term for the process itself (binary,
 * libraries, thread stacks, OpenBLAS buffers, HTTP) measured on the reference
 * machine. Peak RSS under load should stay within the total + 32 MB.
 *
 * main.c logs the total once a model set is in (start-up and each SIGHUP
 * reload) and publishes it as fastformerd_memory_estimate_bytes. It is the
 * steady state of one set: while a reload loads, the old and the new set are
 * both resident for a moment. */
#ifndef FF_MEMORY_ESTIMATE_H
#define FF_MEMORY_ESTIMATE_H

#include <stddef.h>

#include "model_registry.h"

/* The runtime term, measured on the reference machine (memory_estimate.c):
 * the process serving a negligible model, plus each worker thread (stack,
 * malloc arena, OpenBLAS's packing buffer for the calling thread), plus each
 * open connection (libmicrohttpd's 32 KiB connection pool and the request's
 * body and state). */
#define MEMORY_ESTIMATE_RUNTIME_BASE_BYTES ((size_t)12 << 20)
#define MEMORY_ESTIMATE_RUNTIME_PER_WORKER_BYTES ((size_t)1 << 20)
#define MEMORY_ESTIMATE_RUNTIME_PER_CONNECTION_BYTES ((size_t)40 << 10)

/* Bytes by term; every field is a sum over the models added. */
typedef struct {
    size_t weights;    /* model.safetensors while mapped + copies the model owns (F32, int8) */
    size_t workspaces; /* every worker's engine workspace and pooled output rows */
    size_t catalogs;   /* news catalogs: vectors, ids and their hash tables */
    size_t caches;     /* news caches at full capacity */
    size_t tables;     /* vocabularies (token text, offsets, hash table) */
    size_t runtime;    /* the process itself, its workers and its connections */
} memory_estimate;

/* Starts an estimate of a daemon with n_workers workers (>= 1) and at most
 * max_connections open connections: zero for every model term, the runtime
 * term set. */
void memory_estimate_init(memory_estimate *e, int n_workers, int max_connections);

/* Adds the terms of one loaded model (borrowed for the call). Reads only
 * values fixed at load, so any thread holding a reference may call it. */
void memory_estimate_add_model(memory_estimate *e, const served_model *sm);

/* The sum of every term, in bytes. */
size_t memory_estimate_total_bytes(const memory_estimate *e);

/* Writes "memory estimate 98.1 MiB: weights 34.2 + workspaces 36.0 + ..."
 * into buf (always NUL-terminated, truncated to cap). */
void memory_estimate_format(const memory_estimate *e, char *buf, size_t cap);

#endif
