/* model_registry: the served set of models, loaded whole and swapped in under
 * a mutex; served_models are reference counted so that requests in flight
 * keep the old ones alive (see model_registry.h). */
#include "model_registry.h"
#include "mono_clock.h"
#include "news_catalog_load.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    char *name, *path, *news_catalog, *state_dir, *news_store;
    int news_cache_entries, max_batch_size, max_batch_tokens, news_bulk_max_items;
    size_t max_catalog_items;
} spec_copy;

struct model_registry {
    pthread_mutex_t mu;
    int n_workers;
    int n_lanes;
    model_registry_events ev;

    served_model **set; /* current set (one reference each), configuration order */
    int n_set;

    /* the most recent load: its names and per-model state */
    char **load_names;
    served_model_state *load_states;
    int n_load;

    _Atomic bool loading;
    bool thread_started;
    pthread_t thread;
    char first_error[512]; /* the failure of the first load, while nothing was ever served */

    _Atomic uint64_t loads_ok, loads_failed, generation;
};

/* ==== served_model ========================================================== */

void served_model_retain(served_model *sm)
{
    assert(sm);
    int old = atomic_fetch_add_explicit(&sm->refs, 1, memory_order_relaxed);
    assert(old >= 1);
    (void)old;
}

void served_model_release(served_model *sm)
{
    if (!sm)
        return;
    int old = atomic_fetch_sub_explicit(&sm->refs, 1, memory_order_acq_rel);
    assert(old >= 1);
    if (old != 1)
        return;
    if (sm->ws)
        for (int i = 0; i < sm->n_workers; i++)
            fastformer_workspace_free(sm->ws[i]);
    if (sm->pooled)
        for (int i = 0; i < sm->n_workers; i++)
            free(sm->pooled[i]);
    free(sm->ws);
    free(sm->pooled);
    news_catalog_release(sm->catalog);
    news_cache_free(sm->cache);
    model_free(sm->model);
    free(sm->name);
    free(sm->path);
    free(sm);
}

/* ==== loading one model ===================================================== */

static void catalog_progress(void *user, const char *message)
{
    model_registry *reg = user;
    if (reg->ev.on_progress)
        reg->ev.on_progress(reg->ev.user, message);
}

static double mono_seconds(void)
{
    return (double)mono_clock_us() * 1e-6;
}

int model_registry_workspace_tokens(const model *m, int max_batch_size, int max_batch_tokens)
{
    assert(m && max_batch_size >= 1 && max_batch_tokens >= model_max_tokens(m));
    /* The batcher (and news_catalog_build) packs at most max_batch_size texts
     * whose padded total is <= max_batch_tokens; each text has at most
     * model_max_tokens rows. */
    int64_t texts = (int64_t)max_batch_size * model_max_tokens(m);
    int rows = texts < max_batch_tokens ? (int)texts : max_batch_tokens;
    /* The recommend head encodes one user: the last max_history clicks. */
    if (model_has_user_encoder(m) && m->config.user_encoder.max_position_embeddings > rows)
        rows = m->config.user_encoder.max_position_embeddings;
    return rows;
}

/* Creates the state directory when it is missing (not its parents). */
static int state_dir_make(const char *dir, char *err, size_t err_cap)
{
    if (mkdir(dir, 0750) == 0 || errno == EEXIST)
        return 0;
    snprintf(err, err_cap, "state directory %s: cannot create: %s", dir, strerror(errno));
    return -1;
}

/* sm->catalog for spec: the previous set's catalog of the model when it has
 * the same identity (same weights, same store: no acknowledged write is
 * lost and nothing is read again), else a new one built with sm's first
 * workspace, after retiring the previous one (*retired: the caller
 * reinstates it if the load fails). Messages start with "model 'NAME': ". */
static int load_catalog(model_registry *reg, const spec_copy *spec, served_model *sm,
                        news_catalog *previous, news_catalog **retired, char *err, size_t err_cap)
{
    char e[1024], store_path[4096];
    news_catalog_source src = {.m = sm->model,
                               .ws = sm->ws[0],
                               .max_batch_size = sm->max_batch_size,
                               .max_batch_tokens = sm->max_batch_tokens,
                               .model_name = spec->name,
                               .store_location = NULL,
                               .news_tsv = spec->news_catalog,
                               .max_items =
                                   spec->max_catalog_items ? spec->max_catalog_items : SIZE_MAX,
                               .progress = catalog_progress,
                               .progress_user = reg};
    if (spec->news_store) {
        src.store_location = spec->news_store; /* shared by replicas: no state_dir file */
    } else if (spec->state_dir) {
        if (news_store_path(spec->state_dir, spec->name, store_path, sizeof store_path) != 0) {
            snprintf(err, err_cap, "model '%s': state directory path too long", spec->name);
            return -1;
        }
        if (state_dir_make(spec->state_dir, e, sizeof e) != 0) {
            snprintf(err, err_cap, "model '%s': %s", spec->name, e);
            return -1;
        }
        src.store_location = store_path;
    }
    char key[1024];
    if (previous && news_catalog_source_key(&src, key, sizeof key) == 0 &&
        strcmp(key, news_catalog_key(previous)) == 0) {
        news_catalog_retain(previous);
        news_catalog_set_limit(previous, src.max_items);
        sm->catalog = previous;
        if (reg->ev.on_progress) {
            snprintf(e, sizeof e,
                     "model '%s': news catalog kept (%zu items, same weights and store)",
                     spec->name, news_catalog_count(previous));
            reg->ev.on_progress(reg->ev.user, e);
        }
        return 0;
    }
    if (previous) {
        news_catalog_retire(previous);
        *retired = previous;
    }
    if (news_catalog_load(&src, &sm->catalog, e, sizeof e) != 0) {
        snprintf(err, err_cap, "model '%s': %s", spec->name, e);
        return -1;
    }
    if (!spec->state_dir && reg->ev.on_progress) {
        snprintf(e, sizeof e,
                 "model '%s': news catalog in memory only (no server.state_dir): news writes "
                 "survive SIGHUP, not a restart",
                 spec->name);
        reg->ev.on_progress(reg->ev.user, e);
    }
    return 0;
}

/* The "ready" progress line: load time and the workspaces' sizes. */
static void report_ready(const model_registry *reg, const served_model *sm)
{
    if (!reg->ev.on_progress)
        return;
    char msg[600];
    double mib = (double)model_workspace_bytes_lanes(sm->model, sm->workspace_tokens,
                                                     sm->max_batch_size, sm->n_lanes) *
                 reg->n_workers / (1024.0 * 1024.0);
    snprintf(msg, sizeof msg,
             "model '%s' (%s) ready in %.2f s: %d workspace%s of %d tokens / %d sequences, "
             "%.1f MiB; %s kernels",
             sm->name, model_task_name(sm->model->config.task), sm->load_seconds, reg->n_workers,
             reg->n_workers == 1 ? "" : "s", sm->workspace_tokens, sm->max_batch_size, mib,
             gemm_path_name(sm->model->kernel_path));
    reg->ev.on_progress(reg->ev.user, msg);
}

/* Loads, sizes, builds the catalog and warms up one model. */
static int load_one(model_registry *reg, const spec_copy *spec, news_catalog *previous,
                    news_catalog **retired, served_model **out, char *err, size_t err_cap)
{
    *out = NULL;
    double t0 = mono_seconds();
    char e[768];
    served_model *sm = calloc(1, sizeof *sm);
    if (!sm) {
        snprintf(err, err_cap, "model '%s': out of memory", spec->name);
        return -1;
    }
    atomic_init(&sm->refs, 1);
    atomic_init(&sm->queued_items, 0);
    sm->name = strdup(spec->name);
    sm->path = strdup(spec->path);
    sm->n_workers = reg->n_workers;
    sm->news_bulk_max_items = spec->news_bulk_max_items > 0 ? spec->news_bulk_max_items : 1000;
    sm->n_lanes = reg->n_lanes;
    if (!sm->name || !sm->path) {
        snprintf(err, err_cap, "model '%s': out of memory", spec->name);
        goto fail;
    }
    if (model_load(spec->path, &sm->model, e, sizeof e) != 0) {
        snprintf(err, err_cap, "model '%s': %s", spec->name, e);
        goto fail;
    }
    const model *m = sm->model;
    const bool rec = model_has_user_encoder(m);
    const int D = m->config.encoder.hidden_size, P = model_max_tokens(m);
    sm->max_batch_size = spec->max_batch_size >= 1 ? spec->max_batch_size : 1;
    /* A single text of the model's maximum length must always fit a batch. */
    sm->max_batch_tokens = spec->max_batch_tokens > P ? spec->max_batch_tokens : P;
    if (spec->max_batch_tokens < P && reg->ev.on_progress) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "model '%s': max_batch_tokens %d raised to %d, the model's longest text",
                 spec->name, spec->max_batch_tokens, P);
        reg->ev.on_progress(reg->ev.user, msg);
    }
    const int ws_tokens =
        model_registry_workspace_tokens(m, sm->max_batch_size, sm->max_batch_tokens);
    sm->workspace_tokens = ws_tokens;

    sm->ws = calloc((size_t)reg->n_workers, sizeof *sm->ws);
    sm->pooled = calloc((size_t)reg->n_workers, sizeof *sm->pooled);
    if (!sm->ws || !sm->pooled)
        goto oom;
    for (int i = 0; i < reg->n_workers; i++) {
        sm->ws[i] = model_workspace_new_lanes(m, ws_tokens, sm->max_batch_size, sm->n_lanes);
        /* one spare row for the warm-up's user vector */
        sm->pooled[i] = malloc(((size_t)sm->max_batch_size + 1) * (size_t)D * sizeof(float));
        if (!sm->ws[i] || !sm->pooled[i])
            goto oom;
    }

    if (spec->news_catalog) {
        if (!rec) {
            snprintf(err, err_cap,
                     "model '%s': news_catalog is only for news-recommendation models, this one "
                     "is a %s model",
                     spec->name, model_task_name(m->config.task));
            goto fail;
        }
    }
    if (spec->news_store && !rec) {
        snprintf(err, err_cap,
                 "model '%s': news_store is only for news-recommendation models, this one is a "
                 "%s model",
                 spec->name, model_task_name(m->config.task));
        goto fail;
    }
    if (rec && (spec->news_catalog || spec->state_dir || spec->news_store) &&
        load_catalog(reg, spec, sm, previous, retired, err, err_cap) != 0)
        goto fail;
    if (rec && spec->news_cache_entries > 0) {
        sm->cache = news_cache_new((size_t)spec->news_cache_entries, D, P);
        if (!sm->cache)
            goto oom;
    }

    /* Warm-up: one tiny forward per workspace (faults in weights and scratch). */
    for (int i = 0; i < reg->n_workers; i++) {
        int32_t id = m->config.vocab_size > 1 ? 1 : 0, n = 1;
        const int32_t *rows[1] = {&id};
        model_encode_ids(m, sm->ws[i], rows, &n, 1, sm->pooled[i]);
        if (rec) {
            int32_t hist[2] = {0, 1};
            model_encode_users(m, sm->ws[i], sm->pooled[i], hist, 1, sm->pooled[i] + D);
        }
    }
    sm->load_seconds = mono_seconds() - t0;
    report_ready(reg, sm);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    sm->load_time_unix_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    *out = sm;
    return 0;

oom:
    snprintf(err, err_cap, "model '%s': out of memory for %d workspaces", spec->name,
             reg->n_workers);
fail:
    served_model_release(sm);
    return -1;
}

/* ==== the registry ========================================================== */

model_registry *model_registry_new(int n_workers, const model_registry_events *events)
{
    assert(n_workers >= 1);
    model_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return NULL;
    if (pthread_mutex_init(&reg->mu, NULL) != 0) {
        free(reg);
        return NULL;
    }
    reg->n_workers = n_workers;
    reg->n_lanes = 1;
    if (events)
        reg->ev = *events;
    return reg;
}

void model_registry_set_lanes(model_registry *reg, int n_lanes)
{
    assert(n_lanes >= 1);
    reg->n_lanes = n_lanes;
}

static void free_load_names(model_registry *reg)
{
    for (int i = 0; i < reg->n_load; i++)
        free(reg->load_names[i]);
    free(reg->load_names);
    free(reg->load_states);
    reg->load_names = NULL;
    reg->load_states = NULL;
    reg->n_load = 0;
}

void model_registry_free(model_registry *reg)
{
    if (!reg)
        return;
    model_registry_join_loader(reg);
    for (int i = 0; i < reg->n_set; i++)
        served_model_release(reg->set[i]);
    free(reg->set);
    free_load_names(reg);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

static void free_specs(spec_copy *s, int n)
{
    if (!s)
        return;
    for (int i = 0; i < n; i++) {
        free(s[i].name);
        free(s[i].path);
        free(s[i].news_catalog);
        free(s[i].state_dir);
        free(s[i].news_store);
    }
    free(s);
}

static spec_copy *copy_specs(const model_spec *specs, int n)
{
    spec_copy *c = calloc((size_t)(n > 0 ? n : 1), sizeof *c);
    if (!c)
        return NULL;
    for (int i = 0; i < n; i++) {
        assert(specs[i].name && specs[i].path);
        c[i].name = strdup(specs[i].name);
        c[i].path = strdup(specs[i].path);
        c[i].news_catalog = specs[i].news_catalog ? strdup(specs[i].news_catalog) : NULL;
        c[i].state_dir = specs[i].state_dir ? strdup(specs[i].state_dir) : NULL;
        c[i].news_store = specs[i].news_store ? strdup(specs[i].news_store) : NULL;
        c[i].max_catalog_items = specs[i].max_catalog_items;
        c[i].news_bulk_max_items = specs[i].news_bulk_max_items;
        c[i].news_cache_entries = specs[i].news_cache_entries;
        c[i].max_batch_size = specs[i].max_batch_size;
        c[i].max_batch_tokens = specs[i].max_batch_tokens;
        if (!c[i].name || !c[i].path || (specs[i].news_catalog && !c[i].news_catalog) ||
            (specs[i].state_dir && !c[i].state_dir) || (specs[i].news_store && !c[i].news_store)) {
            free_specs(c, i + 1);
            return NULL;
        }
    }
    return c;
}

static void set_state(model_registry *reg, int i, served_model_state st)
{
    pthread_mutex_lock(&reg->mu);
    if (i < reg->n_load)
        reg->load_states[i] = st;
    pthread_mutex_unlock(&reg->mu);
}

/* Publishes the names being loaded, each loading (for per-model readiness
 * and the model list). Returns 0, or -1 out of memory (nothing changed). */
static int publish_load_names(model_registry *reg, const spec_copy *specs, int n)
{
    char **names = calloc((size_t)(n > 0 ? n : 1), sizeof *names);
    served_model_state *states = calloc((size_t)(n > 0 ? n : 1), sizeof *states);
    bool ok = names && states;
    for (int i = 0; ok && i < n; i++) {
        names[i] = strdup(specs[i].name);
        states[i] = SERVED_MODEL_LOADING;
        ok = names[i] != NULL;
    }
    if (!ok) {
        for (int i = 0; names && i < n; i++)
            free(names[i]);
        free(names);
        free(states);
        return -1;
    }
    pthread_mutex_lock(&reg->mu);
    free_load_names(reg);
    reg->load_names = names;
    reg->load_states = states;
    reg->n_load = n;
    pthread_mutex_unlock(&reg->mu);
    return 0;
}

/* The load proper; reg->loading is already true and stays true. */
static int load_specs(model_registry *reg, const spec_copy *specs, int n, char *err, size_t err_cap)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(specs[i].name, specs[j].name) == 0) {
                snprintf(err, err_cap, "model '%s' is configured twice", specs[i].name);
                atomic_fetch_add(&reg->loads_failed, 1);
                return -1;
            }

    served_model **set = calloc((size_t)(n > 0 ? n : 1), sizeof *set);
    if (!set || publish_load_names(reg, specs, n) != 0) {
        free(set);
        snprintf(err, err_cap, "out of memory loading %d models", n);
        atomic_fetch_add(&reg->loads_failed, 1);
        return -1;
    }

    /* The catalogs of the set being replaced, by the new set's order; those
     * a new catalog replaces are retired until the load ends. */
    news_catalog **previous = calloc((size_t)(n > 0 ? n : 1), sizeof *previous);
    news_catalog **retired = calloc((size_t)(n > 0 ? n : 1), sizeof *retired);
    if (!previous || !retired) {
        free(previous);
        free(retired);
        snprintf(err, err_cap, "out of memory loading %d models", n);
        atomic_fetch_add(&reg->loads_failed, 1);
        free(set);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        served_model *old = model_registry_get(reg, specs[i].name);
        if (old && old->catalog) {
            news_catalog_retain(old->catalog);
            previous[i] = old->catalog;
        }
        served_model_release(old);
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (reg->ev.on_progress) {
            char msg[600];
            snprintf(msg, sizeof msg, "loading model '%s' from %s", specs[i].name, specs[i].path);
            reg->ev.on_progress(reg->ev.user, msg);
        }
        if (load_one(reg, &specs[i], previous[i], &retired[i], &set[i], err, err_cap) != 0) {
            set_state(reg, i, SERVED_MODEL_FAILED);
            rc = -1;
            break;
        }
        set_state(reg, i, SERVED_MODEL_READY);
    }
    for (int i = 0; i < n; i++) {
        if (rc != 0 && retired[i])
            news_catalog_unretire(retired[i]); /* the old set keeps serving, writes too */
        news_catalog_release(previous[i]);
    }
    free(previous);
    free(retired);
    if (rc != 0) {
        for (int i = 0; i < n; i++)
            served_model_release(set[i]);
        free(set);
        pthread_mutex_lock(&reg->mu);
        for (int i = 0; i < reg->n_load; i++)
            reg->load_states[i] = SERVED_MODEL_FAILED;
        if (atomic_load(&reg->generation) == 0)
            snprintf(reg->first_error, sizeof reg->first_error, "%s", err);
        pthread_mutex_unlock(&reg->mu);
        atomic_fetch_add(&reg->loads_failed, 1);
        return -1;
    }

    pthread_mutex_lock(&reg->mu);
    served_model **old = reg->set;
    int n_old = reg->n_set;
    reg->set = set;
    reg->n_set = n;
    reg->first_error[0] = '\0';
    atomic_fetch_add(&reg->generation, 1);
    pthread_mutex_unlock(&reg->mu);
    atomic_fetch_add(&reg->loads_ok, 1);
    /* Requests in flight keep their own references to the old models. */
    for (int i = 0; i < n_old; i++)
        served_model_release(old[i]);
    free(old);
    return 0;
}

int model_registry_load(model_registry *reg, const model_spec *specs, int n_specs, char *err,
                        size_t err_cap)
{
    assert(reg && n_specs >= 0 && (specs || n_specs == 0));
    bool expected = false;
    if (!atomic_compare_exchange_strong(&reg->loading, &expected, true)) {
        snprintf(err, err_cap, "a model load is already running");
        return -1;
    }
    spec_copy *c = copy_specs(specs, n_specs);
    int rc;
    if (!c) {
        snprintf(err, err_cap, "out of memory loading %d models", n_specs);
        rc = -1;
    } else {
        rc = load_specs(reg, c, n_specs, err, err_cap);
    }
    free_specs(c, n_specs);
    atomic_store(&reg->loading, false);
    return rc;
}

typedef struct {
    model_registry *reg;
    spec_copy *specs;
    int n;
    bool one; /* model_registry_load_one_async: specs[0] joins the served set */
    void (*done)(void *user, bool ok, const char *message);
    void *done_user;
} loader_args;

/* Sets the state of `name` in the latest load's list, adding it when it is
 * not there (a model loaded or unloaded on its own). Caller holds reg->mu.
 * Out of memory leaves the list as it was (the state is then not shown). */
static void load_entry_set_locked(model_registry *reg, const char *name, served_model_state st)
{
    for (int i = 0; i < reg->n_load; i++)
        if (strcmp(reg->load_names[i], name) == 0) {
            reg->load_states[i] = st;
            return;
        }
    char **names = realloc(reg->load_names, sizeof *names * (size_t)(reg->n_load + 1));
    if (!names)
        return;
    reg->load_names = names;
    served_model_state *states =
        realloc(reg->load_states, sizeof *states * (size_t)(reg->n_load + 1));
    if (!states)
        return;
    reg->load_states = states;
    names[reg->n_load] = strdup(name);
    if (!names[reg->n_load])
        return;
    states[reg->n_load++] = st;
}

/* The served set's index of `name`, or -1. Caller holds reg->mu. */
static int set_index_locked(const model_registry *reg, const char *name)
{
    for (int i = 0; i < reg->n_set; i++)
        if (strcmp(reg->set[i]->name, name) == 0)
            return i;
    return -1;
}

/* One model in, swapped into the set; reg->loading is already true. */
static int load_single(model_registry *reg, const spec_copy *spec, char *err, size_t err_cap)
{
    pthread_mutex_lock(&reg->mu);
    load_entry_set_locked(reg, spec->name, SERVED_MODEL_LOADING);
    pthread_mutex_unlock(&reg->mu);
    if (reg->ev.on_progress) {
        char msg[600];
        snprintf(msg, sizeof msg, "loading model '%s' from %s", spec->name, spec->path);
        reg->ev.on_progress(reg->ev.user, msg);
    }
    served_model *sm = NULL, *old = NULL;
    /* The model's current catalog is kept when it has the same identity,
     * else retired while the new one loads (see load_specs). */
    served_model *current = model_registry_get(reg, spec->name);
    news_catalog *previous = current ? current->catalog : NULL, *retired = NULL;
    if (previous)
        news_catalog_retain(previous);
    served_model_release(current);
    int rc = load_one(reg, spec, previous, &retired, &sm, err, err_cap);
    pthread_mutex_lock(&reg->mu);
    if (rc == 0) {
        int i = set_index_locked(reg, spec->name);
        served_model **grown =
            i >= 0 ? reg->set : realloc(reg->set, sizeof *grown * (size_t)(reg->n_set + 1));
        if (!grown) {
            snprintf(err, err_cap, "model '%s': out of memory", spec->name);
            rc = -1;
        } else if (i >= 0) {
            old = reg->set[i];
            reg->set[i] = sm;
        } else {
            reg->set = grown;
            reg->set[reg->n_set++] = sm;
        }
    }
    load_entry_set_locked(reg, spec->name, rc == 0 ? SERVED_MODEL_READY : SERVED_MODEL_FAILED);
    if (rc == 0) {
        reg->first_error[0] = '\0';
        atomic_fetch_add(&reg->generation, 1);
    }
    pthread_mutex_unlock(&reg->mu);
    atomic_fetch_add(rc == 0 ? &reg->loads_ok : &reg->loads_failed, 1);
    if (rc != 0 && retired)
        news_catalog_unretire(retired); /* the served model keeps serving, writes too */
    news_catalog_release(previous);
    if (rc != 0)
        served_model_release(sm);
    served_model_release(old); /* requests in flight keep their own references */
    return rc;
}

static void *loader_main(void *arg)
{
    loader_args *a = arg;
    model_registry *reg = a->reg;
    char err[1024] = "";
    double t0 = mono_seconds();
    int rc = a->one ? load_single(reg, &a->specs[0], err, sizeof err)
                    : load_specs(reg, a->specs, a->n, err, sizeof err);
    char msg[1200];
    if (rc != 0)
        snprintf(msg, sizeof msg, "%s", err);
    else if (a->one)
        snprintf(msg, sizeof msg, "loaded model '%s' in %.2f s", a->specs[0].name,
                 mono_seconds() - t0);
    else
        snprintf(msg, sizeof msg, "loaded %d model%s in %.2f s", a->n, a->n == 1 ? "" : "s",
                 mono_seconds() - t0);
    if (reg->ev.on_loaded)
        reg->ev.on_loaded(reg->ev.user, rc == 0, msg);
    free_specs(a->specs, a->n);
    void (*done)(void *, bool, const char *) = a->done;
    void *done_user = a->done_user;
    free(a);
    atomic_store(&reg->loading, false);
    if (done)
        done(done_user, rc == 0, msg);
    return NULL;
}

/* Starts the loader thread on a's specs (reg->loading already true).
 * Returns 0, or -1 with err (then a and its specs are freed and loading is
 * false again). */
static int loader_start(model_registry *reg, loader_args *a, char *err, size_t err_cap)
{
    pthread_mutex_lock(&reg->mu);
    bool had = reg->thread_started;
    pthread_t old = reg->thread;
    reg->thread_started = false;
    pthread_mutex_unlock(&reg->mu);
    if (had)
        pthread_join(old, NULL); /* finished, or finishing: `loading` was false */
    pthread_mutex_lock(&reg->mu);
    int rc = pthread_create(&reg->thread, NULL, loader_main, a);
    reg->thread_started = rc == 0;
    pthread_mutex_unlock(&reg->mu);
    if (rc != 0) {
        free_specs(a->specs, a->n);
        free(a);
        atomic_store(&reg->loading, false);
        snprintf(err, err_cap, "cannot start the model loader thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}

int model_registry_load_one_async(model_registry *reg, const model_spec *spec,
                                  void (*done)(void *user, bool ok, const char *message),
                                  void *user, char *err, size_t err_cap)
{
    assert(reg && spec);
    bool expected = false;
    if (!atomic_compare_exchange_strong(&reg->loading, &expected, true)) {
        snprintf(err, err_cap, "a model load is already running");
        return -1;
    }
    loader_args *a = calloc(1, sizeof *a);
    spec_copy *c = copy_specs(spec, 1);
    if (!a || !c) {
        free(a);
        free_specs(c, 1);
        atomic_store(&reg->loading, false);
        snprintf(err, err_cap, "out of memory loading model '%s'", spec->name);
        return -1;
    }
    *a =
        (loader_args){.reg = reg, .specs = c, .n = 1, .one = true, .done = done, .done_user = user};
    return loader_start(reg, a, err, err_cap);
}

int model_registry_unload(model_registry *reg, const char *name, char *err, size_t err_cap)
{
    assert(reg && name);
    bool expected = false;
    if (!atomic_compare_exchange_strong(&reg->loading, &expected, true)) {
        snprintf(err, err_cap, "a model load is running");
        return -1;
    }
    pthread_mutex_lock(&reg->mu);
    int i = set_index_locked(reg, name);
    served_model *old = NULL;
    if (i >= 0) {
        old = reg->set[i];
        memmove(reg->set + i, reg->set + i + 1, sizeof *reg->set * (size_t)(reg->n_set - i - 1));
        reg->n_set--;
        load_entry_set_locked(reg, name, SERVED_MODEL_UNLOADED);
    }
    pthread_mutex_unlock(&reg->mu);
    if (old) {
        served_model_release(old); /* requests in flight keep their own references */
        if (reg->ev.on_loaded) {
            char msg[200];
            snprintf(msg, sizeof msg, "unloaded model '%.80s'", name);
            reg->ev.on_loaded(reg->ev.user, true, msg);
        }
    }
    atomic_store(&reg->loading, false);
    return old ? 1 : 0;
}

int model_registry_load_async(model_registry *reg, const model_spec *specs, int n_specs, char *err,
                              size_t err_cap)
{
    assert(reg && n_specs >= 0 && (specs || n_specs == 0));
    bool expected = false;
    if (!atomic_compare_exchange_strong(&reg->loading, &expected, true)) {
        snprintf(err, err_cap, "a model load is already running");
        return -1;
    }
    loader_args *a = calloc(1, sizeof *a);
    spec_copy *c = copy_specs(specs, n_specs);
    if (!a || !c) {
        free(a);
        free_specs(c, n_specs);
        atomic_store(&reg->loading, false);
        snprintf(err, err_cap, "out of memory loading %d models", n_specs);
        return -1;
    }
    *a = (loader_args){.reg = reg, .specs = c, .n = n_specs};
    return loader_start(reg, a, err, err_cap);
}

int model_registry_announce(model_registry *reg, const model_spec *specs, int n_specs)
{
    assert(reg && n_specs >= 0 && (specs || n_specs == 0));
    spec_copy *c = copy_specs(specs, n_specs);
    int rc = c ? publish_load_names(reg, c, n_specs) : -1;
    free_specs(c, n_specs);
    return rc;
}

bool model_registry_loading(const model_registry *reg)
{
    return atomic_load(&((model_registry *)reg)->loading);
}

void model_registry_join_loader(model_registry *reg)
{
    pthread_mutex_lock(&reg->mu);
    bool had = reg->thread_started;
    pthread_t t = reg->thread;
    reg->thread_started = false;
    pthread_mutex_unlock(&reg->mu);
    if (had)
        pthread_join(t, NULL);
}

served_model *model_registry_get(model_registry *reg, const char *name)
{
    assert(reg && name);
    served_model *found = NULL;
    pthread_mutex_lock(&reg->mu);
    for (int i = 0; i < reg->n_set; i++)
        if (strcmp(reg->set[i]->name, name) == 0) {
            found = reg->set[i];
            served_model_retain(found);
            break;
        }
    pthread_mutex_unlock(&reg->mu);
    return found;
}

int model_registry_list(model_registry *reg, served_model **out, int cap)
{
    assert(reg && cap >= 0 && (out || cap == 0));
    pthread_mutex_lock(&reg->mu);
    int n = reg->n_set;
    for (int i = 0; i < n && i < cap; i++) {
        out[i] = reg->set[i];
        served_model_retain(out[i]);
    }
    pthread_mutex_unlock(&reg->mu);
    return n;
}

bool model_registry_ready(const model_registry *reg_c, char *reason, size_t reason_cap)
{
    model_registry *reg = (model_registry *)reg_c; /* the lock is not part of the value */
    pthread_mutex_lock(&reg->mu);
    bool ready = atomic_load(&reg->generation) > 0;
    if (!ready && reason && reason_cap > 0) {
        if (reg->first_error[0] && !atomic_load(&reg->loading))
            snprintf(reason, reason_cap, "failed: %s", reg->first_error);
        else
            snprintf(reason, reason_cap, "loading");
    }
    pthread_mutex_unlock(&reg->mu);
    return ready;
}

/* Whether the served set has a model of this name. Caller holds reg->mu. */
static bool set_has_locked(const model_registry *reg, const char *name)
{
    return set_index_locked(reg, name) >= 0;
}

/* LOADING, FAILED or UNLOADED: the state of entry i of the latest load, for
 * a model the set does not have. Caller holds reg->mu. */
static served_model_state load_state_locked(const model_registry *reg, int i)
{
    served_model_state st = reg->load_states[i];
    return st == SERVED_MODEL_FAILED || st == SERVED_MODEL_UNLOADED ? st : SERVED_MODEL_LOADING;
}

served_model_state model_registry_state(model_registry *reg, const char *name)
{
    assert(reg && name);
    served_model_state st = SERVED_MODEL_UNKNOWN;
    pthread_mutex_lock(&reg->mu);
    if (set_has_locked(reg, name))
        st = SERVED_MODEL_READY;
    for (int i = 0; st == SERVED_MODEL_UNKNOWN && i < reg->n_load; i++)
        if (strcmp(reg->load_names[i], name) == 0)
            st = load_state_locked(reg, i);
    pthread_mutex_unlock(&reg->mu);
    return st;
}

int model_registry_unserved(model_registry *reg, char (*names)[MODEL_REGISTRY_NAME_CAP],
                            served_model_state *states, int cap)
{
    assert(reg && cap >= 0 && (cap == 0 || (names && states)));
    int n = 0;
    pthread_mutex_lock(&reg->mu);
    for (int i = 0; i < reg->n_load; i++) {
        if (set_has_locked(reg, reg->load_names[i]))
            continue;
        if (n < cap) {
            snprintf(names[n], MODEL_REGISTRY_NAME_CAP, "%s", reg->load_names[i]);
            states[n] = load_state_locked(reg, i);
        }
        n++;
    }
    pthread_mutex_unlock(&reg->mu);
    return n;
}

void model_registry_stats_get(const model_registry *reg, model_registry_stats *out)
{
    model_registry *r = (model_registry *)reg; /* atomic reads only */
    out->loads_ok = atomic_load(&r->loads_ok);
    out->loads_failed = atomic_load(&r->loads_failed);
    out->generation = atomic_load(&r->generation);
}
