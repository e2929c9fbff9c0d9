/* model_registry: the set of served models by name. A set is loaded as a
 * whole by a loader thread (model_load, one workspace per worker, the news
 * catalog encoded in batches, a warm-up forward) and then swapped in
 * atomically. Models are reference counted: a request in flight keeps its
 * served_model (and its workspaces) alive after a SIGHUP swap until it
 * finishes. A failed load keeps the old set serving.
 *
 * Start-up: model_registry_new, model_registry_announce, then the daemon
 * listens, then model_registry_load_async; readiness (model_registry_ready)
 * is false with reason "loading" until the first set is in, and the
 * announced names are listed as loading from the first request on. */
#ifndef FF_MODEL_REGISTRY_H
#define FF_MODEL_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "model.h"
#include "news_cache.h"
#include "news_catalog.h"

/* One loaded model, shared read-only by every thread that holds a reference. */
struct served_model {
    char *name; /* owned */
    char *path; /* owned: the model directory */
    model *model;
    news_catalog *catalog;     /* recommenders with a news.tsv or a state_dir; NULL otherwise.
                                  One reference: the catalog may be shared with the
                                  served_model of the same name in the previous set */
    news_cache *cache;         /* recommenders with news_cache_entries > 0; NULL otherwise */
    int max_batch_size;        /* effective limits (per-model or the batching section's) */
    int max_batch_tokens;      /* >= model_max_tokens (raised at load if configured lower) */
    int workspace_tokens;      /* rows of each workspace: model_registry_workspace_tokens() */
    fastformer_workspace **ws; /* (n_workers) one per worker, worker i uses ws[i] only; each
                                  holds n_lanes lanes (the worker's engine threads) */
    float **pooled;            /* (n_workers) worker i's (max_batch_size + 1, D) output rows */
    int n_workers;
    int news_bulk_max_items; /* items of one bulk news upsert */
    int n_lanes;
    int64_t load_time_unix_ms; /* when it became ready (wall clock) */
    double load_seconds;       /* load + catalog + warm-up time */
    _Atomic int queued_items;  /* items of this model waiting in the batcher now (the
                                  per-model queue-depth gauge; maintained by batcher.c) */

    /* private */
    _Atomic int refs;
};
typedef struct served_model served_model;

/* Rows a workspace of model m needs for batches of at most max_batch_size
 * texts and max_batch_tokens padded tokens (max_batch_tokens >= the model's
 * longest text): no batch holds more than max_batch_size texts of at most
 * model_max_tokens rows each, so the smaller of the two limits; a
 * recommender's also holds one user's history (the user encoder's
 * max_position_embeddings rows). Pure. */
int model_registry_workspace_tokens(const model *m, int max_batch_size, int max_batch_tokens);

/* Acquire / release a reference. Any thread. The last release frees the
 * model, its workspaces, catalog and cache. Release of NULL is a no-op. */
void served_model_retain(served_model *sm);
void served_model_release(served_model *sm);

typedef struct {
    const char *name;         /* borrowed during the call (copied) */
    const char *path;         /* model directory */
    const char *news_catalog; /* MIND news.tsv or NULL */
    const char *state_dir;    /* recommenders' news stores live here; NULL = in memory */
    const char *news_store;   /* "postgresql://..." shared by replicas (instead of state_dir) */
    size_t max_catalog_items; /* 0 = no limit */
    int news_bulk_max_items;  /* items of one bulk news upsert (0: 1000) */
    int news_cache_entries;   /* 0 disables the cache */
    int max_batch_size;       /* effective values (see settings_model_max_batch_*) */
    int max_batch_tokens;
} model_spec;

/* Loader progress and results, for the log and sd-notify STATUS=. Called on
 * the loader thread; may be NULL. */
typedef struct {
    void *user;
    void (*on_progress)(void *user,
                        const char *message); /* "model 'mind': encoded 5000/51282 titles" */
    /* once per load: ok, and on failure the message naming the model and file */
    void (*on_loaded)(void *user, bool ok, const char *message);
} model_registry_events;

typedef struct model_registry model_registry;

/* An empty registry for n_workers workers. Main thread. NULL when out of memory. */
model_registry *model_registry_new(int n_workers, const model_registry_events *events);
/* Workspaces of models loaded from now on hold n_lanes >= 1 lanes, for
 * workers whose engine runs on that many threads (default 1). Main thread,
 * before the first load. */
void model_registry_set_lanes(model_registry *reg, int n_lanes);

/* Joins a running loader, releases the current set and frees. Requests still
 * holding served_models keep them alive. Main thread. */
void model_registry_free(model_registry *reg);

/* Loads every spec synchronously on the calling thread and swaps the new set
 * in only if all succeed. Returns 0, or -1 with the first error (e.g.
 * "model 'imdb': DIR/config.json: missing key 'vocab_size'"); on failure the
 * old set stays. Used by the loader thread, --check-config and tests. */
FF_MUST_CHECK int model_registry_load(model_registry *reg, const model_spec *specs, int n_specs,
                                      char *err, size_t err_cap);

/* Same on a loader thread (the specs are copied). Returns -1 with a message
 * when a load is already running or the thread cannot start. Reports the
 * result through events.on_loaded. Any thread (main, on start-up and SIGHUP). */
FF_MUST_CHECK int model_registry_load_async(model_registry *reg, const model_spec *specs,
                                            int n_specs, char *err, size_t err_cap);

/* Publishes the names of the specs as the latest load's, each loading
 * (model_registry_state, model_registry_unserved), without loading them: so
 * that a daemon that serves HTTP before its loader thread runs lists what is
 * coming. The load publishes them again. Returns 0, or -1 out of memory
 * (nothing changed). Any thread. */
FF_MUST_CHECK int model_registry_announce(model_registry *reg, const model_spec *specs,
                                          int n_specs);

/* Loads one model on the loader thread and swaps it into the served set:
 * it replaces the served model of the same name (requests in flight finish
 * on the old one) or joins the set; every other model keeps serving
 * throughout, as with a whole-set load. On failure the set is unchanged (an
 * older version of the model keeps serving) and the model's state is FAILED
 * until a later load. Reports through events.on_loaded, then, with `loading`
 * already false, calls done(user, ok, message) on the loader thread (may be
 * NULL). Returns 0, or -1 with a message when a load is already running or
 * the thread cannot start. Any thread. */
FF_MUST_CHECK int model_registry_load_one_async(model_registry *reg, const model_spec *spec,
                                                void (*done)(void *user, bool ok,
                                                             const char *message),
                                                void *user, char *err, size_t err_cap);

/* Takes the model `name` out of the served set; requests that hold it
 * finish on it, new ones get its state (UNLOADED). Returns 1 when it was
 * served, 0 when it was not (never loaded, failed or unloaded already), or
 * -1 with a message while a load is running. Reports a change through
 * events.on_loaded (on the calling thread). Any thread. */
FF_MUST_CHECK int model_registry_unload(model_registry *reg, const char *name, char *err,
                                        size_t err_cap);

/* True while a load (sync or async) is running. */
bool model_registry_loading(const model_registry *reg);

/* Waits for a running async load to finish. Main thread. */
void model_registry_join_loader(model_registry *reg);

/* Returns a new reference to the current model named `name`, or NULL when
 * there is none (not loaded yet, or unknown). Any thread; lock held briefly. */
served_model *model_registry_get(model_registry *reg, const char *name);

/* Snapshot of the current set: fills out[0..n) with new references (release
 * each) in configuration order and returns the number of models in the set
 * (which may exceed cap: then only cap are filled). Any thread. */
int model_registry_list(model_registry *reg, served_model **out, int cap);

/* Readiness: true once a set is in (every model in it is loaded and warm).
 * Otherwise writes the reason: "loading", or "failed: <message>" when the
 * first load failed. A failed reload keeps the old set and stays ready. */
bool model_registry_ready(const model_registry *reg, char *reason, size_t reason_cap);

/* Per-model state, for /v2/models/{name}/ready and /v1/models while
 * loading: READY when the model is in the served set (model_registry_get
 * finds it), else LOADING / FAILED when it is part of the latest load (a
 * failed load marks all of its models FAILED), else UNKNOWN. */
typedef enum {
    SERVED_MODEL_UNKNOWN, /* not configured */
    SERVED_MODEL_LOADING,
    SERVED_MODEL_READY,
    SERVED_MODEL_FAILED,
    SERVED_MODEL_UNLOADED, /* taken out of service by model_registry_unload */
} served_model_state;
served_model_state model_registry_state(model_registry *reg, const char *name);

/* The models of the latest load that are not served: still loading,
 * failed (while the previous set, if any, keeps serving), or unloaded. Copies up to cap
 * names (NUL-terminated, cut at MODEL_REGISTRY_NAME_CAP - 1 bytes) and their
 * states (LOADING, FAILED or UNLOADED) in load order; returns how many there are, which
 * may exceed cap. Any thread. */
#define MODEL_REGISTRY_NAME_CAP 80
int model_registry_unserved(model_registry *reg, char (*names)[MODEL_REGISTRY_NAME_CAP],
                            served_model_state *states, int cap);

/* Load statistics for metrics: completed loads, failed loads, generation
 * (number of successful swaps). Any thread, lock-free. */
typedef struct {
    uint64_t loads_ok;
    uint64_t loads_failed;
    uint64_t generation;
} model_registry_stats;
void model_registry_stats_get(const model_registry *reg, model_registry_stats *out);

#endif
