/* test_metrics: the Prometheus registry: rendering of every family, label
 * escaping, cumulative histogram buckets with +Inf/_sum/_count, bounded
 * label sets, and a concurrency smoke test (exact totals after many threads).
 *
 * `test_metrics --render-sample` prints a registry filled with every kind of
 * series instead of running the tests; tests/integration/
 * test_metrics_promtool.py feeds that to `promtool check metrics`. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "metrics.h"

/* A registry with the daemon's routes (api_routes.def) as its route labels. */
static metrics *metrics_new_api(void)
{
    metrics *m = metrics_new(api_route_labels, (int)api_n_routes);
    assert_non_null(m);
    return m;
}

/* The index of the route with this path in the daemon's table. */
static int route(const char *path)
{
    for (size_t i = 0; i < api_n_routes; i++)
        if (strcmp(api_route_labels[i], path) == 0)
            return (int)i;
    fail_msg("no route %s", path);
    return METRICS_ROUTE_OTHER;
}

/* noinline: inlined, gcc 12 -O3 suspects the returned buffer of pointing
 * at this frame (-Wdangling-pointer false positive). */
__attribute__((noinline)) static char *render(const metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(m, &text, &len), 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* True when `line` is one whole line of `text`. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        bool starts = p == text || p[-1] == '\n';
        if (starts && p[n] == '\n')
            return true;
    }
    return false;
}

#define assert_line(text, line)                                                                    \
    do {                                                                                           \
        if (!has_line((text), (line)))                                                             \
            fail_msg("missing line: %s\n--- rendered:\n%s", (line), (text));                       \
    } while (0)

static int count_prefix(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; *p;) {
        if (strncmp(p, prefix, len) == 0)
            n++;
        const char *nl = strchr(p, '\n');
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return n;
}

static void test_empty_registry(void **state)
{
    (void)state;
    metrics *m = metrics_new_api();
    assert_non_null(m);
    char *t = render(m);
    static const char *const families[][2] = {
        {"fastformerd_http_requests_total", "counter"},
        {"fastformerd_request_duration_seconds", "histogram"},
        {"fastformerd_queue_duration_seconds", "histogram"},
        {"fastformerd_inference_duration_seconds", "histogram"},
        {"fastformerd_batch_size", "histogram"},
        {"fastformerd_batch_tokens", "histogram"},
        {"fastformerd_queue_depth", "gauge"},
        {"fastformerd_rejected_requests_total", "counter"},
        {"fastformerd_model_ready", "gauge"},
        {"fastformerd_news_cache_hits_total", "counter"},
        {"fastformerd_news_cache_misses_total", "counter"},
        {"fastformerd_news_store_up", "gauge"},
        {"fastformerd_reloads_total", "counter"},
        {"fastformerd_http_connections", "gauge"},
        {"fastformerd_http_connections_evicted_total", "counter"},
        {"process_cpu_seconds_total", "counter"},
        {"process_resident_memory_bytes", "gauge"},
        {"process_virtual_memory_bytes", "gauge"},
        {"process_open_fds", "gauge"},
        {"process_max_fds", "gauge"},
        {"process_start_time_seconds", "gauge"},
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "# TYPE %s %s", families[i][0], families[i][1]);
        assert_line(t, line);
        snprintf(line, sizeof line, "# HELP %s ", families[i][0]);
        assert_int_equal(count_prefix(t, line), 1);
    }
    /* untouched series are not rendered, except these */
    assert_line(t, "fastformerd_reloads_total{result=\"success\"} 0");
    assert_line(t, "fastformerd_reloads_total{result=\"failure\"} 0");
    assert_line(t, "fastformerd_http_connections 0");
    assert_line(t, "fastformerd_http_connections_evicted_total 0");
    assert_int_equal(count_prefix(t, "fastformerd_http_requests_total{"), 0);
    assert_int_equal(count_prefix(t, "fastformerd_request_duration_seconds_bucket"), 0);
    assert_int_equal(count_prefix(t, "fastformerd_model_ready{"), 0);
    assert_int_equal(count_prefix(t, "fastformerd_news_store_up{"), 0);
    assert_true(t[strlen(t) - 1] == '\n');
    free(t);
    metrics_free(m);
}

/* The number after the line prefix `name ` in text (the sample must exist). */
static double sample_value(const char *text, const char *name)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "\n%s ", name);
    const char *p = strstr(text, prefix);
    if (p == NULL)
        fail_msg("no sample %s", name);
    return strtod(p + strlen(prefix), NULL);
}

static void test_process_metrics_are_plausible(void **state)
{
    (void)state;
    metrics *m = metrics_new_api();
    char *t = render(m);
    double rss = sample_value(t, "process_resident_memory_bytes");
    assert_true(rss > 1e5 && rss < 1e11);
    double vsize = sample_value(t, "process_virtual_memory_bytes");
    assert_true(vsize >= rss);
    double fds = sample_value(t, "process_open_fds");
    assert_true(fds >= 3 && fds < 100000); /* stdin, stdout, stderr at least */
    assert_true(sample_value(t, "process_max_fds") >= fds);
    double start = sample_value(t, "process_start_time_seconds");
    assert_true(start > 1.6e9 && start < 4e9); /* after 2020, before 2096 */
    assert_true(sample_value(t, "process_cpu_seconds_total") >= 0);
    free(t);
    metrics_free(m);
}

static void test_model_registration(void **state)
{
    (void)state;
    metrics *m = metrics_new_api();
    metrics_model_id a = metrics_model_register(m, "imdb");
    metrics_model_id b = metrics_model_register(m, "agnews");
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(metrics_model_register(m, "imdb"), a);
    assert_int_equal(metrics_model_find(m, "agnews"), b);
    assert_int_equal(metrics_model_find(m, "nope"), METRICS_NO_MODEL);
    assert_int_equal(metrics_model_register(m, ""), METRICS_NO_MODEL);
    assert_int_equal(metrics_model_register(m, NULL), METRICS_NO_MODEL);
    char long_name[80];
    memset(long_name, 'x', 65);
    long_name[65] = '\0';
    assert_int_equal(metrics_model_register(m, long_name), METRICS_NO_MODEL);
    long_name[64] = '\0';
    assert_int_equal(metrics_model_register(m, long_name), 2);
    for (int i = 3; i < METRICS_MAX_MODELS; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        assert_int_equal(metrics_model_register(m, name), i);
    }
    assert_int_equal(metrics_model_register(m, "one-too-many"), METRICS_NO_MODEL);
    assert_int_equal(metrics_model_register(m, "m63"), 63); /* existing names still resolve */

    /* ready gauges appear for every registered model, 0 until set */
    metrics_model_set_ready(m, a, 1);
    char *t = render(m);
    assert_line(t, "fastformerd_model_ready{model=\"imdb\"} 1");
    assert_line(t, "fastformerd_model_ready{model=\"agnews\"} 0");
    assert_line(t, "fastformerd_model_ready{model=\"m63\"} 0");
    assert_int_equal(count_prefix(t, "fastformerd_model_ready{"), METRICS_MAX_MODELS);
    assert_line(t, "fastformerd_queue_depth{model=\"m63\"} 0");
    free(t);
    metrics_model_set_ready(m, a, 0);
    t = render(m);
    assert_line(t, "fastformerd_model_ready{model=\"imdb\"} 0");
    free(t);
    metrics_free(m);
}

static void test_request_counters(void **state)
{
    (void)state;
    metrics *m = metrics_new_api();
    metrics_model_id a = metrics_model_register(m, "imdb");
    metrics_request_done(m, a, route("/v1/models/{name}/classify"), 200, 1000000);
    metrics_request_done(m, a, route("/v1/models/{name}/classify"), 200, 1000000);
    metrics_request_done(m, a, route("/v1/models/{name}/classify"), 429, 1000);
    metrics_request_done(m, a, route("/v1/models/{name}/classify"), 499,
                         1000); /* client went away */
    metrics_request_done(m, a, route("/v2/models/{name}/infer"), 418, 1000);
    metrics_request_done(m, a, route("/v2/models/{name}/infer"), 999, 1000);
    metrics_request_done(m, METRICS_NO_MODEL, METRICS_ROUTE_OTHER, 404, 1000);
    metrics_request_done(m, METRICS_NO_MODEL, route("/healthz"), 200, 1000);
    metrics_request_done(m, 12345, route("/metrics"), 200, 1000); /* bad id -> model="" */
    char *t = render(m);
    assert_line(t, "fastformerd_http_requests_total{model=\"imdb\",route=\"/v1/models/{name}/"
                   "classify\",code=\"200\"} 2");
    assert_line(t, "fastformerd_http_requests_total{model=\"imdb\",route=\"/v1/models/{name}/"
                   "classify\",code=\"429\"} 1");
    assert_line(t, "fastformerd_http_requests_total{model=\"imdb\",route=\"/v1/models/{name}/"
                   "classify\",code=\"499\"} 1");
    assert_line(t, "fastformerd_http_requests_total{model=\"imdb\",route=\"/v2/models/{name}/"
                   "infer\",code=\"other\"} 2");
    assert_line(t, "fastformerd_http_requests_total{model=\"\",route=\"other\",code=\"404\"} 1");
    assert_line(t, "fastformerd_http_requests_total{model=\"\",route=\"/healthz\",code=\"200\"} 1");
    assert_line(t, "fastformerd_http_requests_total{model=\"\",route=\"/metrics\",code=\"200\"} 1");
    assert_int_equal(count_prefix(t, "fastformerd_http_requests_total{"), 7);
    free(t);
    metrics_free(m);
}

static void test_route_and_reason_names(void **state)
{
    (void)state;
    /* The labels are the caller's (copied array, borrowed strings), then "other". */
    static const char *const labels[] = {"/a/{name}", "/b"};
    metrics *m = metrics_new(labels, 2);
    assert_non_null(m);
    assert_string_equal(metrics_route_name(m, 0), "/a/{name}");
    assert_string_equal(metrics_route_name(m, 1), "/b");
    assert_string_equal(metrics_route_name(m, METRICS_ROUTE_OTHER), "other");
    metrics_request_done(m, METRICS_NO_MODEL, 1, 200, 1000);
    metrics_request_done(m, METRICS_NO_MODEL, METRICS_ROUTE_OTHER, 404, 1000);
    char *t = render(m);
    assert_line(t, "fastformerd_http_requests_total{model=\"\",route=\"/b\",code=\"200\"} 1");
    assert_line(t, "fastformerd_http_requests_total{model=\"\",route=\"other\",code=\"404\"} 1");
    free(t);
    metrics_free(m);
    m = metrics_new(NULL, 0); /* no routes: everything is "other" */
    assert_non_null(m);
    assert_string_equal(metrics_route_name(m, METRICS_ROUTE_OTHER), "other");
    metrics_free(m);
    /* The daemon's labels are its route paths: the methods of one path (GET,
     * PUT, DELETE of a news item) share one series. */
    m = metrics_new_api();
    for (int r = 0; r < (int)api_n_routes; r++)
        assert_string_equal(metrics_route_name(m, r), api_routes[r].path);
    metrics_free(m);
    static const char *const shared[] = {"/a", "/b", "/a"};
    m = metrics_new(shared, 3);
    metrics_request_done(m, METRICS_NO_MODEL, 0, 200, 1000);
    metrics_request_done(m, METRICS_NO_MODEL, 2, 200, 1000);
    t = render(m);
    assert_line(t, "fastformerd_http_requests_total{model=\"\",route=\"/a\",code=\"200\"} 2");
    free(t);
    metrics_free(m);
    static const char *const reasons[] = {"queue_full",       "deadline",    "disconnected",
                                          "draining",         "not_ready",   "too_large",
                                          "connection_limit", "unauthorized"};
    assert_int_equal(sizeof reasons / sizeof reasons[0], REJECT_N_REASONS - 1);
    assert_null(reject_reason_name(REJECT_NONE));
    for (int r = REJECT_NONE + 1; r < REJECT_N_REASONS; r++)
        assert_string_equal(reject_reason_name((reject_reason)r), reasons[r - 1]);
}

static void test_label_escaping(void **state)
{
    (void)state;
    metrics *m = metrics_new_api();
    /* backslash, double quote and newline are escaped; everything else as is */
    metrics_model_id id = metrics_model_register(m, "a\\b\"c\nd{e}=,f");
    assert_int_not_equal(id, METRICS_NO_MODEL);
    metrics_reject(m, id, REJECT_DEADLINE);
    char *t = render(m);
    assert_line(t, "fastformerd_rejected_requests_total{model=\"a\\\\b\\\"c\\nd{e}=,f\","
                   "reason=\"deadline\"} 1");
    assert_line(t, "fastformerd_model_ready{model=\"a\\\\b\\\"c\\nd{e}=,f\"} 0");
    free(t);
    metrics_free(m);
}

/* Walks the consecutive lines starting with `prefix` (one histogram
 * series), failing if a bucket count decreases; returns the last count. */
static long last_cumulative(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    const char *line = strstr(text, prefix);
    long prev = -1;
    while (line != NULL && strncmp(line, prefix, n) == 0) {
        long v = strtol(strchr(line, ' ') + 1, NULL, 10);
        if (v < prev)
            fail_msg("bucket count decreases: %ld after %ld", v, prev);
        prev = v;
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    return prev;
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    metrics *m = metrics_new_api();
    metrics_model_id a = metrics_model_register(m, "imdb");
    /* queue waits: exactly on a bound (le is inclusive), between bounds, above the top */
    metrics_observe_queue(m, a, 100000);      /* 0.0001 s: the first bucket */
    metrics_observe_queue(m, a, 100001);      /* just above: 0.00025 */
    metrics_observe_queue(m, a, 3000000);     /* 0.003 s: 0.005 */
    metrics_observe_queue(m, a, 30000000000); /* 30 s: only +Inf */
    metrics_observe_queue(m, a, 0);           /* 0: the first bucket */
    char *t = render(m);
    static const char *const expect[] = {
        "fastformerd_queue_duration_seconds_bucket{model=\"imdb\",le=\"0.0001\"} 2",
        "fastformerd_queue_duration_seconds_bucket{model=\"imdb\",le=\"0.00025\"} 3",
        "fastformerd_queue_duration_seconds_bucket{model=\"imdb\",le=\"0.0005\"} 3",
        "fastformerd_queue_duration_seconds_bucket{model=\"imdb\",le=\"0.001\"} 3",
        "fastformerd_queue_duration_seconds_bucket{model=\"imdb\",le=\"0.0025\"} 3",
        "fastformerd_queue_duration_seconds_bucket{model=\"imdb\",le=\"0.005\"} 4",
        "fastformerd_queue_duration_seconds_bucket{model=\"imdb\",le=\"0.01\"} 4",
        "fastformerd_queue_duration_seconds_bucket{model=\"imdb\",le=\"10\"} 4",
        "fastformerd_queue_duration_seconds_bucket{model=\"imdb\",le=\"+Inf\"} 5",
        "fastformerd_queue_duration_seconds_sum{model=\"imdb\"} 30.003200001",
        "fastformerd_queue_duration_seconds_count{model=\"imdb\"} 5",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        assert_line(t, expect[i]);
    assert_int_equal(count_prefix(t, "fastformerd_queue_duration_seconds_bucket{model=\"imdb\""),
                     17); /* 16 bounds + +Inf */

    /* buckets are cumulative: never decreasing, and +Inf equals _count */
    assert_int_equal(last_cumulative(t, "fastformerd_queue_duration_seconds_bucket"), 5);
    free(t);
    metrics_free(m);
}

static void test_batch_histograms(void **state)
{
    (void)state;
    metrics *m = metrics_new_api();
    metrics_model_id a = metrics_model_register(m, "agnews");
    metrics_observe_batch(m, a, 2000000, 1, 40);         /* 2 ms, 1 item, 40 tokens */
    metrics_observe_batch(m, a, 8000000, 5, 320);        /* 8 ms, 5 items */
    metrics_observe_batch(m, a, 9000000, 5000, 5000000); /* above every bound */
    char *t = render(m);
    static const char *const expect[] = {
        "fastformerd_batch_size_bucket{model=\"agnews\",le=\"1\"} 1",
        "fastformerd_batch_size_bucket{model=\"agnews\",le=\"4\"} 1",
        "fastformerd_batch_size_bucket{model=\"agnews\",le=\"8\"} 2",
        "fastformerd_batch_size_bucket{model=\"agnews\",le=\"4096\"} 2",
        "fastformerd_batch_size_bucket{model=\"agnews\",le=\"+Inf\"} 3",
        "fastformerd_batch_size_sum{model=\"agnews\"} 5006",
        "fastformerd_batch_size_count{model=\"agnews\"} 3",
        "fastformerd_batch_tokens_bucket{model=\"agnews\",le=\"32\"} 0",
        "fastformerd_batch_tokens_bucket{model=\"agnews\",le=\"64\"} 1",
        "fastformerd_batch_tokens_bucket{model=\"agnews\",le=\"512\"} 2",
        "fastformerd_batch_tokens_bucket{model=\"agnews\",le=\"1048576\"} 2",
        "fastformerd_batch_tokens_bucket{model=\"agnews\",le=\"+Inf\"} 3",
        "fastformerd_batch_tokens_sum{model=\"agnews\"} 5000360",
        "fastformerd_batch_tokens_count{model=\"agnews\"} 3",
        "fastformerd_inference_duration_seconds_bucket{model=\"agnews\",le=\"0.0025\"} 1",
        "fastformerd_inference_duration_seconds_bucket{model=\"agnews\",le=\"0.01\"} 3",
        "fastformerd_inference_duration_seconds_sum{model=\"agnews\"} 0.019000000",
        "fastformerd_inference_duration_seconds_count{model=\"agnews\"} 3",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        assert_line(t, expect[i]);
    free(t);
    metrics_free(m);
}

static void test_gauges_and_counters(void **state)
{
    (void)state;
    metrics *m = metrics_new_api();
    metrics_model_id a = metrics_model_register(m, "rec");
    metrics_queue_depth_set(m, a, 10);
    metrics_queue_depth_add(m, a, -3);
    metrics_queue_depth_add(m, METRICS_NO_MODEL, 2);
    metrics_news_cache(m, a, 5, 2);
    metrics_news_cache(m, a, 1, 0);
    metrics_reject(m, a, REJECT_QUEUE_FULL);
    metrics_reject(m, a, REJECT_QUEUE_FULL);
    metrics_reject(m, METRICS_NO_MODEL, REJECT_DRAINING);
    metrics_reload(m, 1);
    metrics_reload(m, 1);
    metrics_reload(m, 0);
    metrics_connections_add(m, 3);
    metrics_connections_evicted_set(m, 5);
    metrics_connections_add(m, -1);
    metrics_model_id shared = metrics_model_register(m, "shared");
    metrics_model_id gone = metrics_model_register(m, "gone");
    metrics_news_store_up(m, a, 1);
    metrics_news_store_up(m, a, 0); /* lost */
    metrics_news_store_up(m, shared, 1);
    metrics_news_store_up(m, gone, 1);
    metrics_news_store_up(m, gone, -1); /* its store went away in a reload */
    char *t = render(m);
    assert_line(t, "fastformerd_news_store_up{model=\"rec\"} 0");
    assert_line(t, "fastformerd_news_store_up{model=\"shared\"} 1");
    assert_int_equal(count_prefix(t, "fastformerd_news_store_up{model=\"gone\"}"), 0);
    assert_line(t, "fastformerd_queue_depth{model=\"rec\"} 7");
    assert_line(t, "fastformerd_queue_depth{model=\"\"} 2");
    assert_line(t, "fastformerd_news_cache_hits_total{model=\"rec\"} 6");
    assert_line(t, "fastformerd_news_cache_misses_total{model=\"rec\"} 2");
    assert_line(t, "fastformerd_rejected_requests_total{model=\"rec\",reason=\"queue_full\"} 2");
    assert_line(t, "fastformerd_rejected_requests_total{model=\"\",reason=\"draining\"} 1");
    assert_line(t, "fastformerd_reloads_total{result=\"success\"} 2");
    assert_line(t, "fastformerd_reloads_total{result=\"failure\"} 1");
    assert_line(t, "fastformerd_http_connections 2");
    assert_line(t, "fastformerd_http_connections_evicted_total 5");
    free(t);
    metrics_free(m);
}

/* ---- concurrency smoke ------------------------------------------------- */

#define SMOKE_THREADS 4
#define SMOKE_ITERS 20000

typedef struct {
    metrics *m;
    metrics_model_id id;
    int done;
} smoke_ctx;

static void *smoke_updater(void *arg)
{
    smoke_ctx *c = arg;
    for (int i = 0; i < SMOKE_ITERS; i++) {
        metrics_request_done(c->m, c->id, route("/v1/models/{name}/embed"), 200,
                             (uint64_t)i * 1000);
        metrics_observe_queue(c->m, c->id, 1000);
        metrics_observe_batch(c->m, c->id, 1000, 2, 16);
        metrics_queue_depth_add(c->m, c->id, 1);
        metrics_queue_depth_add(c->m, c->id, -1);
        metrics_news_cache(c->m, c->id, 1, 1);
    }
    return NULL;
}

static void *smoke_renderer(void *arg)
{
    smoke_ctx *c = arg;
    /* At least once: on a busy machine the updaters may finish before this
     * thread first runs. */
    do {
        char *t = NULL;
        size_t n;
        if (metrics_render(c->m, &t, &n) == 0)
            free(t);
        /* also registers concurrently with rendering */
        metrics_model_register(c->m, "late");
    } while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE));
    return NULL;
}

static void test_concurrency_smoke(void **state)
{
    (void)state;
    metrics *m = metrics_new_api();
    smoke_ctx c = {.m = m, .id = metrics_model_register(m, "embed")};
    pthread_t th[SMOKE_THREADS], renderer;
    assert_int_equal(pthread_create(&renderer, NULL, smoke_renderer, &c), 0);
    for (int i = 0; i < SMOKE_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, smoke_updater, &c), 0);
    for (int i = 0; i < SMOKE_THREADS; i++)
        pthread_join(th[i], NULL);
    __atomic_store_n(&c.done, 1, __ATOMIC_RELEASE);
    pthread_join(renderer, NULL);

    char *t = render(m);
    char line[256];
    int total = SMOKE_THREADS * SMOKE_ITERS;
    snprintf(line, sizeof line,
             "fastformerd_http_requests_total{model=\"embed\",route=\"/v1/models/{name}/embed\","
             "code=\"200\"} %d",
             total);
    assert_line(t, line);
    snprintf(line, sizeof line,
             "fastformerd_request_duration_seconds_count{model=\"embed\",route=\"/v1/models/"
             "{name}/embed\"} %d",
             total);
    assert_line(t, line);
    /* sum of i*1000 ns for i < ITERS, per thread */
    double sum_s = SMOKE_THREADS * ((double)SMOKE_ITERS * (SMOKE_ITERS - 1) / 2) * 1000 / 1e9;
    snprintf(line, sizeof line,
             "fastformerd_request_duration_seconds_sum{model=\"embed\",route=\"/v1/models/{name}/"
             "embed\"} %.9f",
             sum_s);
    assert_line(t, line);
    snprintf(line, sizeof line, "fastformerd_batch_size_sum{model=\"embed\"} %d", 2 * total);
    assert_line(t, line);
    snprintf(line, sizeof line, "fastformerd_news_cache_hits_total{model=\"embed\"} %d", total);
    assert_line(t, line);
    assert_line(t, "fastformerd_queue_depth{model=\"embed\"} 0");
    assert_line(t, "fastformerd_model_ready{model=\"late\"} 0");
    free(t);
    metrics_free(m);
}

/* ---- sample for promtool ---------------------------------------------- */

static void render_sample(void)
{
    metrics *m = metrics_new_api();
    metrics_model_id a = metrics_model_register(m, "review-sentiment");
    metrics_model_id b = metrics_model_register(m, "movielens-rec");
    metrics_model_id odd = metrics_model_register(m, "we\"ird\\name\n");
    metrics_model_set_ready(m, a, 1);
    metrics_model_set_ready(m, b, 1);
    for (int r = METRICS_ROUTE_OTHER; r < (int)api_n_routes; r++) {
        metrics_request_done(m, a, r, 200, 1500000);
        metrics_request_done(m, METRICS_NO_MODEL, r, 404, 20000);
    }
    static const int codes[] = {200, 201, 204, 400, 401, 404, 405, 408, 413,
                                415, 422, 429, 499, 500, 503, 504, 302};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        metrics_request_done(m, odd, route("/v2/models/{name}/infer"), codes[i], 40000000000ull);
    metrics_observe_queue(m, a, 300000);
    metrics_observe_queue(m, b, 0);
    metrics_observe_batch(m, a, 4000000, 8, 512);
    metrics_observe_batch(m, b, 40000000, 3000, 2000000);
    metrics_queue_depth_set(m, a, 3);
    for (int r = REJECT_NONE + 1; r < REJECT_N_REASONS; r++)
        metrics_reject(m, (r - 1) % 2 ? a : METRICS_NO_MODEL, (reject_reason)r);
    metrics_news_cache(m, b, 10, 3);
    metrics_reload(m, 1);
    metrics_reload(m, 0);
    metrics_connections_add(m, 5);
    char *t = NULL;
    size_t n = 0;
    if (metrics_render(m, &t, &n) != 0) {
        fprintf(stderr, "render failed\n");
        exit(1);
    }
    fwrite(t, 1, n, stdout);
    free(t);
    metrics_free(m);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--render-sample") == 0) {
        render_sample();
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_process_metrics_are_plausible),
        cmocka_unit_test(test_model_registration),
        cmocka_unit_test(test_request_counters),
        cmocka_unit_test(test_route_and_reason_names),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_batch_histograms),
        cmocka_unit_test(test_gauges_and_counters),
        cmocka_unit_test(test_concurrency_smoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
