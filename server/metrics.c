/* metrics: preallocated atomic counters and histograms indexed by model
 * slot, route, code and reason, and a renderer to Prometheus text format.
 *
 * Slot 0 of every per-model array is model="" (METRICS_NO_MODEL); model id
 * i lives in slot i + 1. Histogram buckets are stored non-cumulative (one
 * atomic increment per observation) and summed when rendering. */
#include "metrics.h"
#include "settings.h"

#include <assert.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "news_store.h"
#include "whole_file.h"

#define N_SLOTS (METRICS_MAX_MODELS + 1)
#define NAME_MAX_BYTES 64

/* Status codes with their own series; anything else is code="other". 499 is
 * "client closed request": the daemon logs and counts it for disconnects. */
static const int metrics_codes[] = {200, 201, 204, 400, 401, 404, 405, 408, 409,
                                    413, 415, 422, 429, 499, 500, 503, 504, 507};
#define N_CODES (sizeof metrics_codes / sizeof metrics_codes[0])
#define CODE_OTHER N_CODES

/* Bucket upper bounds. Durations are kept in nanoseconds (exact integer
 * sums) and rendered in seconds. */
static const uint64_t seconds_bounds_ns[] = {
    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,   25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000};
static const uint64_t batch_size_bounds[] = {1,   2,   4,   8,    16,   32,  64,
                                             128, 256, 512, 1024, 2048, 4096};
static const uint64_t batch_tokens_bounds[] = {16,    32,     64,     128,    256,    512,
                                               1024,  2048,   4096,   8192,   16384,  32768,
                                               65536, 131072, 262144, 524288, 1048576};
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_BOUNDS 17
/* Largest /proc file read (/proc/stat grows with the CPU count). */
#define PROC_FILE_MAX ((size_t)1 << 20)

typedef struct {
    _Atomic uint64_t buckets[MAX_BOUNDS + 1]; /* last: above every bound (+Inf) */
    _Atomic uint64_t sum;                     /* ns for durations, units otherwise */
} histogram;

typedef struct {
    const uint64_t *bounds;
    size_t n_bounds;
    double divisor; /* rendered value = stored / divisor */
} histogram_kind;

static const histogram_kind kind_seconds = {seconds_bounds_ns, ARRAY_LEN(seconds_bounds_ns), 1e9};
static const histogram_kind kind_batch_size = {batch_size_bounds, ARRAY_LEN(batch_size_bounds),
                                               1.0};
static const histogram_kind kind_batch_tokens = {batch_tokens_bounds,
                                                 ARRAY_LEN(batch_tokens_bounds), 1.0};

struct metrics {
    pthread_mutex_t register_lock;
    _Atomic int n_models; /* published with release after the name is written */
    char names[METRICS_MAX_MODELS][NAME_MAX_BYTES + 1];

    /* Routes: the labels given to metrics_new, then "other" (n_routes columns
     * in all, the last one for METRICS_ROUTE_OTHER). */
    size_t n_routes;
    const char **route_labels;  /* (n_routes) borrowed strings, owned array */
    size_t *route_col;          /* (n_routes) the first route with the same label: routes
                                   of one path (GET, PUT, DELETE) share their series */
    _Atomic uint64_t *requests; /* (N_SLOTS, n_routes, N_CODES + 1) */
    histogram *request_seconds; /* (N_SLOTS, n_routes) */
    histogram queue_seconds[N_SLOTS];
    histogram inference_seconds[N_SLOTS];
    histogram batch_size[N_SLOTS];
    histogram batch_tokens[N_SLOTS];
    _Atomic int64_t queue_depth[N_SLOTS];
    _Atomic uint64_t rejects[N_SLOTS][REJECT_N_REASONS]; /* [REJECT_NONE] unused */
    _Atomic int ready[N_SLOTS];
    _Atomic uint64_t cache_hits[N_SLOTS];
    _Atomic uint64_t cache_misses[N_SLOTS];
    _Atomic unsigned restart_required;      /* bits of settings_restart_keys */
    _Atomic int64_t catalog_items[N_SLOTS]; /* items + 1; 0: the model has no catalog */
    _Atomic uint64_t store_errors[N_SLOTS][NEWS_STORE_NO_MEMORY + 1];
    /* 0: no shared news store; 1: unreachable; 2: reachable */
    _Atomic int news_store_up[N_SLOTS];
    _Atomic uint64_t reloads[2]; /* [0] failure, [1] success */
    _Atomic int64_t connections;
    _Atomic uint64_t connections_evicted;
    _Atomic uint64_t memory_estimate_bytes;
    _Atomic uint32_t request_timeout_ms;
    _Atomic uint64_t traceparent_invalid;
    _Atomic int64_t tls_not_after_s; /* 0 = no TLS */

    double start_time_s; /* process_start_time_seconds; < 0 when unknown */
};

/* ---- /proc/self -------------------------------------------------------- */

typedef struct {
    double cpu_seconds;
    double rss_bytes;
    double vsize_bytes;
    double start_ticks; /* since boot */
} proc_stat;

/* Fields of /proc/self/stat after the command name (which may contain
 * spaces and parentheses, hence the last ')'). */
static bool proc_self_stat(proc_stat *out)
{
    char *buf;
    size_t len;
    if (whole_file_read("/proc/self/stat", PROC_FILE_MAX, &buf, &len, NULL, 0) != 0)
        return false;
    const char *p = strrchr(buf, ')');
    unsigned long long utime, stime, starttime, vsize;
    long long rss;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime priority nice threads itrealvalue starttime
     * vsize rss */
    int n = p == NULL ? 0
                      : sscanf(p + 1,
                               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
                               "%*d %*d %*d %*d %llu %llu %lld",
                               &utime, &stime, &starttime, &vsize, &rss);
    free(buf);
    if (n != 5)
        return false;
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (ticks <= 0 || page <= 0)
        return false;
    out->cpu_seconds = (double)(utime + stime) / (double)ticks;
    out->vsize_bytes = (double)vsize;
    out->rss_bytes = (double)rss * (double)page;
    out->start_ticks = (double)starttime / (double)ticks;
    return true;
}

static double boot_time_s(void)
{
    char *buf;
    size_t len;
    if (whole_file_read("/proc/stat", PROC_FILE_MAX, &buf, &len, NULL, 0) != 0)
        return -1;
    const char *p = strstr(buf, "\nbtime ");
    double btime = p ? strtod(p + 7, NULL) : -1;
    free(buf);
    return btime;
}

static long count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

/* ---- registry ---------------------------------------------------------- */

metrics *metrics_new(const char *const *route_labels, int n_routes)
{
    assert(n_routes >= 0 && (route_labels || n_routes == 0));
    metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->register_lock, NULL);
    m->n_routes = (size_t)n_routes + 1;
    m->route_labels = calloc(m->n_routes, sizeof *m->route_labels);
    m->route_col = calloc(m->n_routes, sizeof *m->route_col);
    m->requests = calloc(N_SLOTS * m->n_routes * (N_CODES + 1), sizeof *m->requests);
    m->request_seconds = calloc(N_SLOTS * m->n_routes, sizeof *m->request_seconds);
    if (!m->route_labels || !m->route_col || !m->requests || !m->request_seconds) {
        metrics_free(m);
        return NULL;
    }
    for (int r = 0; r < n_routes; r++)
        m->route_labels[r] = route_labels[r];
    m->route_labels[n_routes] = "other";
    for (size_t r = 0; r < m->n_routes; r++) {
        m->route_col[r] = r;
        for (size_t q = 0; q < r; q++)
            if (strcmp(m->route_labels[q], m->route_labels[r]) == 0) {
                m->route_col[r] = q;
                break;
            }
    }
    proc_stat ps;
    double boot = boot_time_s();
    m->start_time_s = (boot >= 0 && proc_self_stat(&ps)) ? boot + ps.start_ticks : -1;
    return m;
}

void metrics_free(metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->register_lock);
    free(m->route_labels);
    free(m->route_col);
    free(m->requests);
    free(m->request_seconds);
    free(m);
}

static bool model_name_ok(const char *name)
{
    if (name == NULL)
        return false;
    size_t n = strnlen(name, NAME_MAX_BYTES + 1);
    return n >= 1 && n <= NAME_MAX_BYTES;
}

metrics_model_id metrics_model_find(const metrics *m, const char *name)
{
    if (!model_name_ok(name))
        return METRICS_NO_MODEL;
    int n = atomic_load_explicit(&((metrics *)m)->n_models, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (strcmp(m->names[i], name) == 0)
            return i;
    return METRICS_NO_MODEL;
}

metrics_model_id metrics_model_register(metrics *m, const char *name)
{
    if (!model_name_ok(name))
        return METRICS_NO_MODEL;
    pthread_mutex_lock(&m->register_lock);
    metrics_model_id id = metrics_model_find(m, name);
    if (id == METRICS_NO_MODEL) {
        int n = atomic_load_explicit(&m->n_models, memory_order_relaxed);
        if (n < METRICS_MAX_MODELS) {
            snprintf(m->names[n], sizeof m->names[n], "%s", name);
            atomic_store_explicit(&m->n_models, n + 1, memory_order_release);
            id = n;
        }
    }
    pthread_mutex_unlock(&m->register_lock);
    return id;
}

/* Column of a route: its index, or the last one for METRICS_ROUTE_OTHER. */
static size_t route_column(const metrics *m, int route)
{
    assert(route == METRICS_ROUTE_OTHER || (route >= 0 && (size_t)route < m->n_routes - 1));
    return route == METRICS_ROUTE_OTHER ? m->n_routes - 1 : m->route_col[route];
}

const char *metrics_route_name(const metrics *m, int route)
{
    return m->route_labels[route_column(m, route)];
}

/* ---- updates ----------------------------------------------------------- */

/* Slot of a model id; ids out of range (a programmer error, but cheap to
 * tolerate on the hot path) fall back to model="". */
static size_t slot_of(const metrics *m, metrics_model_id id)
{
    (void)m;
    return (id >= 0 && id < METRICS_MAX_MODELS) ? (size_t)id + 1 : 0;
}

static size_t code_index(int code)
{
    for (size_t i = 0; i < N_CODES; i++)
        if (metrics_codes[i] == code)
            return i;
    return CODE_OTHER;
}

static void histogram_observe(histogram *h, const histogram_kind *k, uint64_t v)
{
    size_t b = 0;
    while (b < k->n_bounds && v > k->bounds[b])
        b++;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

void metrics_request_done(metrics *m, metrics_model_id model, int route, int code,
                          uint64_t latency_ns)
{
    size_t cell = slot_of(m, model) * m->n_routes + route_column(m, route);
    atomic_fetch_add_explicit(&m->requests[cell * (N_CODES + 1) + code_index(code)], 1,
                              memory_order_relaxed);
    histogram_observe(&m->request_seconds[cell], &kind_seconds, latency_ns);
}

void metrics_observe_queue(metrics *m, metrics_model_id model, uint64_t wait_ns)
{
    histogram_observe(&m->queue_seconds[slot_of(m, model)], &kind_seconds, wait_ns);
}

void metrics_observe_batch(metrics *m, metrics_model_id model, uint64_t inference_ns,
                           uint32_t n_items, uint64_t padded_tokens)
{
    size_t s = slot_of(m, model);
    histogram_observe(&m->inference_seconds[s], &kind_seconds, inference_ns);
    histogram_observe(&m->batch_size[s], &kind_batch_size, n_items);
    histogram_observe(&m->batch_tokens[s], &kind_batch_tokens, padded_tokens);
}

void metrics_queue_depth_set(metrics *m, metrics_model_id model, int64_t depth)
{
    atomic_store_explicit(&m->queue_depth[slot_of(m, model)], depth, memory_order_relaxed);
}

void metrics_queue_depth_add(metrics *m, metrics_model_id model, int64_t delta)
{
    atomic_fetch_add_explicit(&m->queue_depth[slot_of(m, model)], delta, memory_order_relaxed);
}

void metrics_reject(metrics *m, metrics_model_id model, reject_reason reason)
{
    assert(reason > REJECT_NONE && reason < REJECT_N_REASONS);
    atomic_fetch_add_explicit(&m->rejects[slot_of(m, model)][reason], 1, memory_order_relaxed);
}

void metrics_model_set_ready(metrics *m, metrics_model_id model, int ready)
{
    atomic_store_explicit(&m->ready[slot_of(m, model)], ready ? 1 : 0, memory_order_relaxed);
}

void metrics_news_cache(metrics *m, metrics_model_id model, uint64_t hits, uint64_t misses)
{
    size_t s = slot_of(m, model);
    if (hits)
        atomic_fetch_add_explicit(&m->cache_hits[s], hits, memory_order_relaxed);
    if (misses)
        atomic_fetch_add_explicit(&m->cache_misses[s], misses, memory_order_relaxed);
}

void metrics_restart_required_set(metrics *m, unsigned mask)
{
    atomic_store_explicit(&m->restart_required, mask, memory_order_relaxed);
}

void metrics_news_catalog_items_set(metrics *m, metrics_model_id model, int64_t items)
{
    atomic_store_explicit(&m->catalog_items[slot_of(m, model)], items < 0 ? 0 : items + 1,
                          memory_order_relaxed);
}

void metrics_news_store_errors_set(metrics *m, metrics_model_id model, int status, uint64_t count)
{
    if (status <= NEWS_STORE_OK || status > NEWS_STORE_NO_MEMORY)
        return;
    atomic_store_explicit(&m->store_errors[slot_of(m, model)][status], count, memory_order_relaxed);
}

void metrics_news_store_up(metrics *m, metrics_model_id model, int up)
{
    int state = 0;
    if (up >= 0)
        state = up ? 2 : 1;
    atomic_store_explicit(&m->news_store_up[slot_of(m, model)], state, memory_order_relaxed);
}

void metrics_reload(metrics *m, int success)
{
    atomic_fetch_add_explicit(&m->reloads[success ? 1 : 0], 1, memory_order_relaxed);
}

void metrics_connections_add(metrics *m, int64_t delta)
{
    atomic_fetch_add_explicit(&m->connections, delta, memory_order_relaxed);
}

void metrics_connections_evicted_set(metrics *m, uint64_t count)
{
    atomic_store_explicit(&m->connections_evicted, count, memory_order_relaxed);
}

void metrics_memory_estimate_set(metrics *m, uint64_t bytes)
{
    atomic_store_explicit(&m->memory_estimate_bytes, bytes, memory_order_relaxed);
}

void metrics_tls_expiration_set(metrics *m, int64_t not_after_s)
{
    atomic_store_explicit(&m->tls_not_after_s, not_after_s, memory_order_relaxed);
}

void metrics_request_timeout_set(metrics *m, uint32_t timeout_ms)
{
    atomic_store_explicit(&m->request_timeout_ms, timeout_ms, memory_order_relaxed);
}

void metrics_traceparent_invalid(metrics *m)
{
    atomic_fetch_add_explicit(&m->traceparent_invalid, 1, memory_order_relaxed);
}

/* ---- rendering --------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} out_buf;

static void out_reserve(out_buf *o, size_t extra)
{
    if (o->oom || o->len + extra + 1 <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 16384;
    while (cap < o->len + extra + 1)
        cap *= 2;
    char *p = realloc(o->buf, cap);
    if (p == NULL) {
        o->oom = true;
        return;
    }
    o->buf = p;
    o->cap = cap;
}

static void out_printf(out_buf *o, const char *fmt, ...) FF_PRINTF(2, 3);
static void out_printf(out_buf *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        out_reserve(o, (size_t)n);
        if (o->oom)
            return;
        memcpy(o->buf + o->len, tmp, (size_t)n + 1);
        o->len += (size_t)n;
        return;
    }
    out_reserve(o, (size_t)n);
    if (o->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

/* A label value escaped per the text format: backslash, double quote and
 * newline. */
static void out_label_value(out_buf *o, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            out_printf(o, "\\\\");
        else if (*p == '"')
            out_printf(o, "\\\"");
        else if (*p == '\n')
            out_printf(o, "\\n");
        else
            out_printf(o, "%c", *p);
    }
}

static void out_family(out_buf *o, const char *name, const char *type, const char *help)
{
    out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *slot_name(const metrics *m, size_t slot)
{
    return slot == 0 ? "" : m->names[slot - 1];
}

/* Renders `{model="..."` without the closing brace. */
static void out_model_labels(out_buf *o, const metrics *m, size_t slot)
{
    out_printf(o, "{model=\"");
    out_label_value(o, slot_name(m, slot));
    out_printf(o, "\"");
}

static void out_double(out_buf *o, double v)
{
    if (v == (double)(int64_t)v && v < 1e15 && v > -1e15)
        out_printf(o, "%" PRId64, (int64_t)v);
    else
        out_printf(o, "%.9g", v);
}

/* One histogram series (nothing if it has no observations): cumulative
 * buckets, +Inf, _sum and _count, labelled by model and, when not NULL, route. */
static void out_histogram(out_buf *o, const char *name, const histogram *h, const histogram_kind *k,
                          const metrics *m, size_t slot, const char *route)
{
    uint64_t counts[MAX_BOUNDS + 1];
    uint64_t total = 0;
    for (size_t b = 0; b <= k->n_bounds; b++) {
        counts[b] = atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
        total += counts[b];
    }
    if (total == 0)
        return;
    uint64_t sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= k->n_bounds; b++) {
        cumulative += counts[b];
        out_printf(o, "%s_bucket", name);
        out_model_labels(o, m, slot);
        if (route)
            out_printf(o, ",route=\"%s\"", route);
        if (b < k->n_bounds) {
            out_printf(o, ",le=\"");
            out_double(o, (double)k->bounds[b] / k->divisor);
            out_printf(o, "\"} %" PRIu64 "\n", cumulative);
        } else {
            out_printf(o, ",le=\"+Inf\"} %" PRIu64 "\n", cumulative);
        }
    }
    out_printf(o, "%s_sum", name);
    out_model_labels(o, m, slot);
    if (route)
        out_printf(o, ",route=\"%s\"", route);
    out_printf(o, "} ");
    if (k->divisor == 1.0)
        out_printf(o, "%" PRIu64, sum);
    else
        out_printf(o, "%.9f", (double)sum / k->divisor);
    out_printf(o, "\n%s_count", name);
    out_model_labels(o, m, slot);
    if (route)
        out_printf(o, ",route=\"%s\"", route);
    out_printf(o, "} %" PRIu64 "\n", cumulative);
}

static void render_per_model_histogram(out_buf *o, const metrics *m, size_t n_slots,
                                       const char *name, const char *help, const histogram *h,
                                       const histogram_kind *k)
{
    out_family(o, name, "histogram", help);
    for (size_t s = 0; s < n_slots; s++)
        out_histogram(o, name, &h[s], k, m, s, NULL);
}

static void render_per_model_counter(out_buf *o, const metrics *m, size_t n_slots, const char *name,
                                     const char *help, const _Atomic uint64_t *v)
{
    out_family(o, name, "counter", help);
    for (size_t s = 0; s < n_slots; s++) {
        uint64_t x = atomic_load_explicit(&v[s], memory_order_relaxed);
        if (x == 0 && s == 0)
            continue;
        out_printf(o, "%s", name);
        out_model_labels(o, m, s);
        out_printf(o, "} %" PRIu64 "\n", x);
    }
}

/* The news catalogs' size gauge and their stores' refused writes. */
static void render_news_catalog(out_buf *o, const metrics *m, size_t n_slots)
{
    metrics *mm = (metrics *)m; /* atomics are read-only here */
    out_family(o, "fastformerd_news_catalog_items", "gauge",
               "Items in the model's news catalog (recommenders with a catalog).");
    for (size_t s = 1; s < n_slots; s++) {
        int64_t x = atomic_load_explicit(&mm->catalog_items[s], memory_order_relaxed);
        if (x == 0)
            continue;
        out_printf(o, "fastformerd_news_catalog_items");
        out_model_labels(o, m, s);
        out_printf(o, "} %" PRId64 "\n", x - 1);
    }
    out_family(o, "fastformerd_news_store_errors_total", "counter",
               "News writes the store refused, by cause (full, read-only, unavailable, ...).");
    for (size_t s = 1; s < n_slots; s++) {
        for (int k = NEWS_STORE_OK + 1; k <= NEWS_STORE_NO_MEMORY; k++) {
            uint64_t x = atomic_load_explicit(&mm->store_errors[s][k], memory_order_relaxed);
            if (x == 0)
                continue;
            out_printf(o, "fastformerd_news_store_errors_total");
            out_model_labels(o, m, s);
            out_printf(o, ",kind=\"%s\"} %" PRIu64 "\n",
                       news_store_status_name((news_store_status)k), x);
        }
    }
}

/* The shared news stores' state (PostgreSQL): 1 reachable, 0 not. */
static void render_news_store_up(out_buf *o, const metrics *m, size_t n_slots)
{
    metrics *mm = (metrics *)m; /* atomics are read-only here */
    out_family(o, "fastformerd_news_store_up", "gauge",
               "1 while the model's shared news store (PostgreSQL) can be reached, else 0 "
               "(news writes answer 503 meanwhile).");
    for (size_t s = 1; s < n_slots; s++) {
        int up = atomic_load_explicit(&mm->news_store_up[s], memory_order_relaxed);
        if (up == 0)
            continue;
        out_printf(o, "fastformerd_news_store_up");
        out_model_labels(o, m, s);
        out_printf(o, "} %d\n", up == 2);
    }
}

/* Every news family: the catalogs', then the shared stores'. */
static void render_news(out_buf *o, const metrics *m, size_t n_slots)
{
    render_news_catalog(o, m, n_slots);
    render_news_store_up(o, m, n_slots);
}

static void render_process(out_buf *o, const metrics *m)
{
    proc_stat ps;
    if (proc_self_stat(&ps)) {
        out_family(o, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.");
        out_printf(o, "process_cpu_seconds_total %.2f\n", ps.cpu_seconds);
        out_family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        out_printf(o, "process_resident_memory_bytes ");
        out_double(o, ps.rss_bytes);
        out_printf(o, "\n");
        out_family(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        out_printf(o, "process_virtual_memory_bytes ");
        out_double(o, ps.vsize_bytes);
        out_printf(o, "\n");
    }
    long fds = count_open_fds();
    if (fds >= 0) {
        out_family(o, "process_open_fds", "gauge", "Number of open file descriptors.");
        out_printf(o, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        out_family(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        if (rl.rlim_cur == RLIM_INFINITY)
            out_printf(o, "process_max_fds +Inf\n");
        else
            out_printf(o, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
    if (m->start_time_s >= 0) {
        out_family(o, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
        out_printf(o, "process_start_time_seconds %.2f\n", m->start_time_s);
    }
}

/* One series per settings_restart_keys entry: 1 when a reload found it changed. */
static void render_restart_required(out_buf *o, metrics *mm)
{
    out_family(o, "fastformerd_restart_required", "gauge",
               "1 when the config file changed a setting that only a restart applies.");
    unsigned restart = atomic_load_explicit(&mm->restart_required, memory_order_relaxed);
    for (unsigned i = 0; settings_restart_keys[i]; i++)
        out_printf(o, "fastformerd_restart_required{setting=\"%s\"} %u\n", settings_restart_keys[i],
                   (restart >> i) & 1u);
}

/* The request deadline gauge, the malformed-traceparent counter and the TLS
 * certificate's expiry. */
static void render_deadline_and_trace(out_buf *o, metrics *mm)
{
    out_family(o, "fastformerd_request_timeout_seconds", "gauge",
               "The default request deadline (server.request_timeout_ms).");
    out_printf(o, "fastformerd_request_timeout_seconds %.3f\n",
               atomic_load_explicit(&mm->request_timeout_ms, memory_order_relaxed) / 1000.0);
    out_family(o, "fastformerd_traceparent_invalid_total", "counter",
               "Malformed traceparent headers (ignored: the request started a new trace).");
    out_printf(o, "fastformerd_traceparent_invalid_total %" PRIu64 "\n",
               atomic_load_explicit(&mm->traceparent_invalid, memory_order_relaxed));
    int64_t not_after = atomic_load_explicit(&mm->tls_not_after_s, memory_order_relaxed);
    if (not_after != 0) {
        out_family(o, "fastformerd_tls_certificate_expiration_timestamp_seconds", "gauge",
                   "When the served TLS certificate expires (notAfter, Unix seconds).");
        out_printf(o, "fastformerd_tls_certificate_expiration_timestamp_seconds %" PRId64 "\n",
                   not_after);
    }
}

/* Requests answered and their durations, by model, route and status code. */
static void render_http_requests(out_buf *o, const metrics *m, size_t n_slots)
{
    metrics *mm = (metrics *)m; /* atomics are read-only here */
    out_family(o, "fastformerd_http_requests_total", "counter",
               "HTTP requests answered, by model, route and status code.");
    for (size_t s = 0; s < n_slots; s++) {
        for (size_t r = 0; r < m->n_routes; r++) {
            if (m->route_col[r] != r)
                continue;
            _Atomic uint64_t *row = &mm->requests[(s * m->n_routes + r) * (N_CODES + 1)];
            for (size_t c = 0; c <= N_CODES; c++) {
                uint64_t x = atomic_load_explicit(&row[c], memory_order_relaxed);
                if (x == 0)
                    continue;
                out_printf(o, "fastformerd_http_requests_total");
                out_model_labels(o, m, s);
                out_printf(o, ",route=\"%s\",code=\"", m->route_labels[r]);
                if (c == CODE_OTHER)
                    out_printf(o, "other");
                else
                    out_printf(o, "%d", metrics_codes[c]);
                out_printf(o, "\"} %" PRIu64 "\n", x);
            }
        }
    }

    out_family(o, "fastformerd_request_duration_seconds", "histogram",
               "Time from request received to response queued, by model and route.");
    for (size_t s = 0; s < n_slots; s++)
        for (size_t r = 0; r < m->n_routes; r++)
            if (m->route_col[r] == r)
                out_histogram(o, "fastformerd_request_duration_seconds",
                              &m->request_seconds[s * m->n_routes + r], &kind_seconds, m, s,
                              m->route_labels[r]);
}

int metrics_render(const metrics *m, char **out, size_t *out_len)
{
    out_buf o = {0};
    metrics *mm = (metrics *)m; /* atomics are read-only here */
    size_t n_slots = (size_t)atomic_load_explicit(&mm->n_models, memory_order_acquire) + 1;

    render_http_requests(&o, m, n_slots);

    render_per_model_histogram(&o, m, n_slots, "fastformerd_queue_duration_seconds",
                               "Time an item waited in the batching queue.", m->queue_seconds,
                               &kind_seconds);
    render_per_model_histogram(&o, m, n_slots, "fastformerd_inference_duration_seconds",
                               "Wall time of one batched forward pass.", m->inference_seconds,
                               &kind_seconds);
    render_per_model_histogram(&o, m, n_slots, "fastformerd_batch_size",
                               "Items (sequences) per batched forward pass.", m->batch_size,
                               &kind_batch_size);
    render_per_model_histogram(&o, m, n_slots, "fastformerd_batch_tokens",
                               "Padded tokens (items times longest) per batched forward pass.",
                               m->batch_tokens, &kind_batch_tokens);

    out_family(&o, "fastformerd_queue_depth", "gauge", "Items waiting in the batching queue.");
    for (size_t s = 0; s < n_slots; s++) {
        int64_t d = atomic_load_explicit(&mm->queue_depth[s], memory_order_relaxed);
        if (s == 0 && d == 0)
            continue;
        out_printf(&o, "fastformerd_queue_depth");
        out_model_labels(&o, m, s);
        out_printf(&o, "} %" PRId64 "\n", d);
    }

    out_family(&o, "fastformerd_rejected_requests_total", "counter",
               "Requests refused or dropped without compute, by reason.");
    for (size_t s = 0; s < n_slots; s++) {
        for (size_t r = REJECT_NONE + 1; r < REJECT_N_REASONS; r++) {
            uint64_t x = atomic_load_explicit(&mm->rejects[s][r], memory_order_relaxed);
            if (x == 0)
                continue;
            out_printf(&o, "fastformerd_rejected_requests_total");
            out_model_labels(&o, m, s);
            out_printf(&o, ",reason=\"%s\"} %" PRIu64 "\n", reject_reason_name((reject_reason)r),
                       x);
        }
    }

    out_family(&o, "fastformerd_model_ready", "gauge",
               "1 when the model is loaded and warmed up, else 0.");
    for (size_t s = 1; s < n_slots; s++) {
        out_printf(&o, "fastformerd_model_ready");
        out_model_labels(&o, m, s);
        out_printf(&o, "} %d\n", atomic_load_explicit(&mm->ready[s], memory_order_relaxed));
    }

    render_per_model_counter(&o, m, n_slots, "fastformerd_news_cache_hits_total",
                             "News vectors served from the cache.", mm->cache_hits);
    render_per_model_counter(&o, m, n_slots, "fastformerd_news_cache_misses_total",
                             "News vectors that had to be encoded.", mm->cache_misses);

    render_news(&o, m, n_slots);
    out_family(&o, "fastformerd_reloads_total", "counter",
               "Configuration and model reloads (SIGHUP), by result.");
    out_printf(&o, "fastformerd_reloads_total{result=\"success\"} %" PRIu64 "\n",
               atomic_load_explicit(&mm->reloads[1], memory_order_relaxed));
    out_printf(&o, "fastformerd_reloads_total{result=\"failure\"} %" PRIu64 "\n",
               atomic_load_explicit(&mm->reloads[0], memory_order_relaxed));

    render_restart_required(&o, mm);

    out_family(&o, "fastformerd_http_connections", "gauge", "Open HTTP connections.");
    out_printf(&o, "fastformerd_http_connections %" PRId64 "\n",
               atomic_load_explicit(&mm->connections, memory_order_relaxed));
    out_family(&o, "fastformerd_http_connections_evicted_total", "counter",
               "Connections cut at the connection limit while waiting for request headers.");
    out_printf(&o, "fastformerd_http_connections_evicted_total %" PRIu64 "\n",
               atomic_load_explicit(&mm->connections_evicted, memory_order_relaxed));

    out_family(&o, "fastformerd_memory_estimate_bytes", "gauge",
               "The daemon's estimate of its resident memory for the models it serves.");
    out_printf(&o, "fastformerd_memory_estimate_bytes %" PRIu64 "\n",
               atomic_load_explicit(&mm->memory_estimate_bytes, memory_order_relaxed));
    render_deadline_and_trace(&o, mm);

    render_process(&o, m);

    if (o.oom) {
        free(o.buf);
        *out = NULL;
        if (out_len)
            *out_len = 0;
        return -1;
    }
    *out = o.buf;
    if (out_len)
        *out_len = o.len;
    return 0;
}
