/* fastformerd: the inference daemon. Reads the config (and flags), listens
 * at once, loads the models on a background thread, serves the API, reloads
 * on SIGHUP and drains on SIGTERM/SIGINT (a second signal exits at once).
 * The main thread owns start-up and shutdown and otherwise only waits for
 * signals, ticking the systemd watchdog in between. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "api_fields.h"
#include "batcher.h"
#include "http.h"
#include "http_guard.h"
#include "log.h"
#include "memory_estimate.h"
#include "metrics.h"
#include "model_registry.h"
#include "mono_clock.h"
#include "news_sync.h"
#include "notify.h"
#include "settings.h"
#include "task_pool.h"
#include "tls_identity.h"
#include "tls_probe.h"
#include "worker.h"

#define FASTFORMERD_VERSION "0.1.0"

/* A worker that has held one batch this long is considered stuck (watchdog). */
#define WORKER_STALL_US (60 * 1000000LL)
/* Main-loop wake-up period while waiting for signals; also how often parked
 * requests are checked for clients that went away. */
#define MAIN_TICK_MS 100
/* At exit, how long answers already computed may take to go out. */
#define TEARDOWN_FLUSH_US (2 * 1000000LL)

static const char usage[] =
    "Usage: fastformerd [--config FILE] [--listen HOST:PORT] [--state-dir DIR] [--model "
    "NAME=DIR]...\n"
    "       fastformerd --check-config [--config FILE] [--model NAME=DIR]...\n"
    "       fastformerd --healthcheck [--config FILE] [--listen HOST:PORT]\n"
    "\n"
    "Serves Fastformer models (classification, news recommendation) over HTTP.\n"
    "\n"
    "  -c, --config FILE      YAML configuration (see conf/fastformerd.yaml)\n"
    "  -l, --listen HOST:PORT listen address (default 127.0.0.1:8080; port 0 = any free port)\n"
    "  -m, --model NAME=DIR   serve the model directory DIR as NAME (repeatable)\n"
    "      --state-dir DIR    keep the recommenders' news stores in DIR (server.state_dir)\n"
    "      --check-config     validate the config and load every model, then exit 0 or 1\n"
    "      --healthcheck      GET /healthz on the configured address; exit 0 if it answers 200\n"
    "  -V, --version          print the version and exit\n"
    "  -h, --help             print this help and exit\n"
    "\n"
    "Signals: SIGHUP reloads the config and models; SIGTERM/SIGINT drain and exit 0\n"
    "(a second one exits at once).\n";

typedef struct {
    const char *config_path;
    const char *listen;
    const char *state_dir;
    const char **models;
    size_t n_models;
    bool check_config;
    bool healthcheck;
} cli_args;

/* Everything the daemon owns, torn down in reverse order by main. */
typedef struct {
    cli_args args;
    settings cfg;
    metrics *metrics;
    model_registry *registry;
    batcher *batcher;
    worker_pool *workers;
    news_sync *news_sync;
    http_server *http;
    api_context api;
    atomic_int first_load; /* 0 pending, 1 ok, -1 failed */
    atomic_bool reloading;
    bool reload_pending; /* a SIGHUP came during a load: reload again after it (main thread) */
    /* metrics slots of the set being served (loader thread only), so that a
     * reload that drops a model turns its ready gauge to 0 */
    metrics_model_id served_ids[METRICS_MAX_MODELS];
    int n_served;
    settings repository; /* the config as the model repository last read it (HTTP thread) */
} daemon_state;

/* ---- configuration ------------------------------------------------------------ */

static int config_read(const cli_args *a, settings *out, char *err, size_t err_cap)
{
    settings_init(out);
    if (a->config_path && settings_load(out, a->config_path, err, err_cap) != 0)
        return -1;
    settings_overrides o = {.listen = a->listen,
                            .state_dir = a->state_dir,
                            .models = a->models,
                            .n_models = a->n_models};
    if (settings_apply_overrides(out, &o, err, err_cap) != 0)
        return -1;
    return settings_resolve_api_key(out, getenv("FASTFORMERD_API_KEY"), err, err_cap);
}

/* The transport's options from the config: at start, and on SIGHUP for the
 * settings a running server can change (http_server_reconfigure). */
static http_options http_options_from(const settings *cfg, daemon_state *d)
{
    const settings_server *sv = &cfg->server;
    const char *tls =
        sv->tls_cert_file ? tls_priorities((tls_min_version)sv->tls_min_version) : NULL;
    const char *hosts =
        sv->allowed_hosts ? sv->allowed_hosts : http_guard_default_hosts(sv->listen.host);
    return (http_options){.host = sv->listen.host,
                          .port = sv->listen.port,
                          .body_limit_bytes = (size_t)sv->max_body_bytes,
                          .connection_limit = sv->max_connections,
                          .connection_timeout_s = sv->connection_timeout_s,
                          .header_timeout_s = sv->header_timeout_s,
                          .per_ip_connection_limit = sv->max_connections_per_ip,
                          .api_key = sv->api_key,
                          .allowed_hosts = hosts,
                          .default_timeout_ms = (int)sv->request_timeout_ms,
                          .probe_host = sv->health_listen.text[0] ? sv->health_listen.host : NULL,
                          .probe_port = sv->health_listen.port,
                          .tls_priorities = tls,
                          .routes = api_routes,
                          .n_routes = api_n_routes,
                          .route_ctx = &d->api,
                          .on_complete = api_on_complete,
                          .on_connection = api_on_connection,
                          .on_headers = api_on_headers,
                          .complete_ctx = &d->api};
}

/* The registry's view of the configured models. Returns a malloc'ed array
 * borrowing strings from cfg, or NULL when out of memory. */
static model_spec *specs_from(const settings *cfg)
{
    model_spec *specs = calloc(cfg->n_models ? cfg->n_models : 1, sizeof *specs);
    if (!specs)
        return NULL;
    for (size_t i = 0; i < cfg->n_models; i++)
        specs[i] = api_model_spec(cfg, &cfg->models[i]);
    return specs;
}

/* The model repository's view of the config (api_context.repository_config):
 * the config file as it is now, with the command line's overrides, so that
 * loading one model re-reads its entry as SIGHUP does. HTTP thread. */
static const settings *repository_config(void *user, char *err, size_t err_cap)
{
    daemon_state *d = user;
    settings_free(&d->repository);
    if (config_read(&d->args, &d->repository, err, err_cap) != 0)
        return NULL;
    return &d->repository;
}

/* ---- loader events (loader thread) ---------------------------------------------- */

static void on_load_progress(void *user, const char *message)
{
    (void)user;
    log_info("%s", message);
    notify_status("%s", message);
}

static void on_loaded(void *user, bool ok, const char *message)
{
    daemon_state *d = user;
    bool first = atomic_load(&d->first_load) == 0;
    if (!first)
        metrics_reload(d->metrics, ok);
    if (!ok) {
        log_error("%s: %s",
                  first ? "loading models failed" : "reload failed, old models keep serving",
                  message);
        if (first)
            atomic_store(&d->first_load, -1);
        else
            notify_ready(); /* the reload ended; the old set is still serving */
        atomic_store(&d->reloading, false);
        return;
    }
    served_model *list[METRICS_MAX_MODELS];
    int n = model_registry_list(d->registry, list, METRICS_MAX_MODELS);
    if (n > METRICS_MAX_MODELS)
        n = METRICS_MAX_MODELS;
    for (int i = 0; i < d->n_served; i++)
        metrics_model_set_ready(d->metrics, d->served_ids[i], 0);
    d->n_served = 0;
    memory_estimate mem;
    memory_estimate_init(&mem, (int)d->cfg.batching.workers, (int)d->cfg.server.max_connections);
    for (int i = 0; i < n; i++) {
        memory_estimate_add_model(&mem, list[i]);
        metrics_model_id id = metrics_model_register(d->metrics, list[i]->name);
        metrics_model_set_ready(d->metrics, id, 1);
        d->served_ids[d->n_served++] = id;
        log_info("serving model '%s' (%s, %s)", list[i]->name,
                 model_task_name(list[i]->model->config.task), list[i]->path);
        served_model_release(list[i]);
    }
    log_info("%s: %d model%s ready", first ? "start-up complete" : "reload complete", n,
             n == 1 ? "" : "s");
    char mem_line[300];
    memory_estimate_format(&mem, mem_line, sizeof mem_line);
    log_info("%s", mem_line);
    metrics_memory_estimate_set(d->metrics, memory_estimate_total_bytes(&mem));
    /* /metrics adds the catalogs as they grow and the bodies held. */
    atomic_store(&d->api.memory_fixed_bytes, memory_estimate_total_bytes(&mem) - mem.catalogs);
    notify_status("serving %d model%s", n, n == 1 ? "" : "s");
    notify_ready();
    if (first)
        atomic_store(&d->first_load, 1);
    atomic_store(&d->reloading, false);
}

/* ---- worker observer (worker threads) --------------------------------------------- */

static void obs_batch(void *user, const char *model_name, int n_items, int padded_tokens,
                      double infer_seconds)
{
    metrics *m = user;
    metrics_observe_batch(m, metrics_model_find(m, model_name), (uint64_t)(infer_seconds * 1e9),
                          (uint32_t)n_items, (uint64_t)padded_tokens);
}

static void obs_queue_wait(void *user, const char *model_name, double queue_seconds)
{
    metrics *m = user;
    metrics_observe_queue(m, metrics_model_find(m, model_name), (uint64_t)(queue_seconds * 1e9));
}

static bool workers_alive(void *ctx)
{
    daemon_state *d = ctx;
    return worker_pool_alive(d->workers, mono_clock_us(), WORKER_STALL_US);
}

/* ---- signals ------------------------------------------------------------------------ */

static void signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    /* Blocked before any thread starts, so every thread inherits the mask and
     * only the main thread's sigtimedwait receives them. */
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Waits up to timeout_ms for one of the signals in set; returns it or 0. */
static int signal_wait(const sigset_t *set, int timeout_ms)
{
    struct timespec ts = {.tv_sec = timeout_ms / 1000,
                          .tv_nsec = (long)(timeout_ms % 1000) * 1000000};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* Reads the TLS certificate and key at start. Returns 0, or -1 with the
 * error logged. */
static int tls_start(const settings_server *sv, metrics *m)
{
    tls_identity *id;
    char err[1024], about[512];
    if (tls_identity_load(sv->tls_cert_file, sv->tls_key_file, &id, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    tls_identity_describe(id, about, sizeof about);
    if (tls_identity_not_after(id) < (long long)time(NULL))
        log_warn("TLS certificate %s has expired; serving it anyway", about);
    log_info("TLS certificate %s", about);
    metrics_tls_expiration_set(m, tls_identity_not_after(id));
    tls_identity_serve(id);
    return 0;
}

/* SIGHUP: re-reads the certificate and key; a renewed pair serves new
 * handshakes, a bad file keeps the served pair. */
static void tls_reload(const settings_server *sv, metrics *m)
{
    tls_identity *id;
    char err[1024], about[512];
    if (tls_identity_load(sv->tls_cert_file, sv->tls_key_file, &id, err, sizeof err) != 0) {
        log_error("reload: %s; the served TLS certificate stays", err);
        return;
    }
    if (tls_identity_same(id, tls_identity_served())) {
        tls_identity_free(id);
        return;
    }
    tls_identity_describe(id, about, sizeof about);
    if (tls_identity_not_after(id) < (long long)time(NULL))
        log_warn("reload: TLS certificate %s has expired; serving it anyway", about);
    log_info("reload: TLS certificate renewed: %s", about);
    metrics_tls_expiration_set(m, tls_identity_not_after(id));
    tls_identity_serve(id);
}

/* Applies what a reload can change without a restart, and names what it
 * cannot. Takes *fresh into d->cfg (keeping the restart-only values). */
static void reload_apply_settings(daemon_state *d, settings *fresh)
{
    unsigned changed = settings_restart_diff(&d->cfg, fresh);
    for (unsigned i = 0; settings_restart_keys[i]; i++)
        if (changed & (1u << i))
            log_error("reload: %s changed, which needs a restart; the running value stays until "
                      "then",
                      settings_restart_keys[i]);
    metrics_restart_required_set(d->metrics, changed);
    settings_keep_restart_keys(&d->cfg, fresh);
    if (fresh->server.tls_cert_file)
        tls_reload(&fresh->server, d->metrics);
    http_options ho = http_options_from(fresh, d);
    if (http_server_reconfigure(d->http, &ho) != 0) {
        log_error("reload: out of memory: the server settings stay as they were");
    } else {
        log_info("reload: server settings applied (API key %s, max_body_bytes %llu, "
                 "request_timeout_ms %u, connection_timeout_s %u, header_timeout_s %u)",
                 fresh->server.api_key ? "set" : "none",
                 (unsigned long long)fresh->server.max_body_bytes, fresh->server.request_timeout_ms,
                 fresh->server.connection_timeout_s, fresh->server.header_timeout_s);
    }
    metrics_request_timeout_set(d->metrics, fresh->server.request_timeout_ms);
    log_configure(fresh->logging.format, fresh->logging.level);
    settings_free(&d->cfg);
    d->cfg = *fresh;
    settings_init(fresh);
}

static void reload(daemon_state *d)
{
    if (atomic_load(&d->reloading) || model_registry_loading(d->registry)) {
        if (!d->reload_pending)
            log_info("SIGHUP queued: a load is running; reloading again once it ends");
        d->reload_pending = true;
        return;
    }
    d->reload_pending = false;
    notify_reloading();
    log_info("SIGHUP: reloading %s", d->args.config_path ? d->args.config_path : "the models");
    settings fresh;
    char err[1024];
    if (config_read(&d->args, &fresh, err, sizeof err) != 0 ||
        settings_check(&fresh, err, sizeof err) != 0) {
        log_error("reload failed, old models keep serving: %s", err);
        metrics_reload(d->metrics, 0);
        settings_free(&fresh);
        notify_ready();
        return;
    }
    reload_apply_settings(d, &fresh);
    model_spec *specs = specs_from(&d->cfg);
    atomic_store(&d->reloading, true);
    if (!specs ||
        model_registry_load_async(d->registry, specs, (int)d->cfg.n_models, err, sizeof err) != 0) {
        log_error("reload failed, old models keep serving: %s", specs ? err : "out of memory");
        metrics_reload(d->metrics, 0);
        atomic_store(&d->reloading, false);
        notify_ready();
    }
    /* load_async copied the specs. */
    free(specs);
}

/* Drains: readiness goes 503, new requests get 503, accepted ones finish.
 * Returns when everything is answered or drain_timeout passed. A second
 * SIGTERM/SIGINT ends the process at once. */
static void drain(daemon_state *d, const sigset_t *set, bool quiet)
{
    notify_stopping();
    atomic_store(&d->api.draining, true);
    http_server_set_draining(d->http, true);
    batcher_drain(d->batcher);
    int64_t deadline = mono_clock_us() + (int64_t)d->cfg.server.drain_timeout_s * 1000000;
    if (!quiet)
        log_info("draining: %ld request(s) in flight, up to %u s", http_server_in_flight(d->http),
                 d->cfg.server.drain_timeout_s);
    bool aborted = false;
    for (;;) {
        if (batcher_wait_idle(d->batcher, 0) && http_server_in_flight(d->http) == 0)
            break;
        if (!aborted && mono_clock_us() >= deadline) {
            log_warn("drain timeout: dropping %ld unfinished request(s) with 503",
                     http_server_in_flight(d->http));
            batcher_abort(d->batcher);
            aborted = true;
            deadline = mono_clock_us() + 2000000; /* let the 503s go out */
        } else if (aborted && mono_clock_us() >= deadline) {
            break;
        }
        int sig = signal_wait(set, 20);
        log_flush();
        http_server_probe_disconnects(d->http);
        http_server_cut_slow_clients(d->http);
        if (sig == SIGTERM || sig == SIGINT) {
            log_warn("second %s: exiting at once", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            _exit(1);
        }
    }
}

/* ---- --healthcheck ----------------------------------------------------------------- */

/* GET /healthz on the configured address (a wildcard address is reached via
 * loopback). Returns the process exit code: 0 when it answered 200. */
static int healthcheck(const settings *cfg)
{
    const char *host = cfg->server.listen.host;
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    char port[16];
    snprintf(port, sizeof port, "%u", cfg->server.listen.port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
        fprintf(stderr, "healthcheck: cannot resolve %s\n", host);
        return 1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 3};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "healthcheck: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    freeaddrinfo(ai);
    char req[128];
    int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n", host);
    char resp[64] = "";
    ssize_t got = 0;
    if (cfg->server.tls_cert_file) {
        char err[256];
        got = tls_probe_exchange(fd, host, req, resp, sizeof resp, err, sizeof err);
        if (got < 0) {
            fprintf(stderr, "healthcheck: %s:%s: %s\n", host, port, err);
            close(fd);
            return 1;
        }
    } else if (write(fd, req, (size_t)n) == n) {
        got = read(fd, resp, sizeof resp - 1);
    }
    close(fd);
    if (got > 0)
        resp[got] = 0;
    int code = 0;
    if (got <= 0 || sscanf(resp, "HTTP/%*d.%*d %d", &code) != 1 || code != 200) {
        fprintf(stderr, "healthcheck: /healthz answered %d\n", code);
        return 1;
    }
    printf("healthy\n");
    return 0;
}

/* ---- --check-config ---------------------------------------------------------------- */

static int check_config(const settings *cfg)
{
    char err[1024];
    if (settings_check(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "fastformerd: %s\n", err);
        return 1;
    }
    model_registry *reg = model_registry_new(1, NULL);
    model_spec *specs = specs_from(cfg);
    if (!reg || !specs) {
        fprintf(stderr, "fastformerd: out of memory\n");
        model_registry_free(reg);
        free(specs);
        return 1;
    }
    int rc = model_registry_load(reg, specs, (int)cfg->n_models, err, sizeof err);
    free(specs);
    model_registry_free(reg);
    if (rc != 0) {
        fprintf(stderr, "fastformerd: %s\n", err);
        return 1;
    }
    if (cfg->server.tls_cert_file) {
        tls_identity *id;
        if (tls_identity_load(cfg->server.tls_cert_file, cfg->server.tls_key_file, &id, err,
                              sizeof err) != 0) {
            fprintf(stderr, "fastformerd: %s\n", err);
            return 1;
        }
        tls_identity_free(id);
    }
    printf("config OK: %zu model%s loaded\n", cfg->n_models, cfg->n_models == 1 ? "" : "s");
    return 0;
}

/* ---- arguments ---------------------------------------------------------------------- */

/* Returns -1 to continue, or an exit code. */
static int args_parse(int argc, char **argv, cli_args *a)
{
    enum { OPT_CHECK = 1000, OPT_HEALTH, OPT_STATE_DIR };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"model", required_argument, NULL, 'm'},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"healthcheck", no_argument, NULL, OPT_HEALTH},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    a->models = calloc((size_t)argc, sizeof *a->models);
    if (!a->models) {
        fprintf(stderr, "fastformerd: out of memory\n");
        return 1;
    }
    int c;
    while ((c = getopt_long(argc, argv, "c:l:m:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->config_path = optarg;
            break;
        case 'l':
            a->listen = optarg;
            break;
        case 'm':
            a->models[a->n_models++] = optarg;
            break;
        case OPT_STATE_DIR:
            a->state_dir = optarg;
            break;
        case OPT_CHECK:
            a->check_config = true;
            break;
        case OPT_HEALTH:
            a->healthcheck = true;
            break;
        case 'V':
            printf("fastformerd %s\n", FASTFORMERD_VERSION);
            return 0;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fastformerd: unexpected argument '%s'\n%s", argv[optind], usage);
        return 2;
    }
    return -1;
}

/* ---- serving -------------------------------------------------------------------------- */

/* The start-up lines that say where the daemon listens and with how many threads. */
static void log_listening(const settings *cfg, const http_server *http)
{
    const char *host = cfg->server.listen.host;
    bool v6 = strchr(host, ':') != NULL;
    log_info("fastformerd %s listening on %s://%s%s%s:%d (%u worker%s x %u engine thread%s)",
             FASTFORMERD_VERSION, cfg->server.tls_cert_file ? "https" : "http", v6 ? "[" : "", host,
             v6 ? "]" : "", http_server_port(http), cfg->batching.workers,
             cfg->batching.workers == 1 ? "" : "s", cfg->batching.engine_threads,
             cfg->batching.engine_threads == 1 ? "" : "s");
    if (http_server_probe_port(http) > 0) {
        const char *ph = cfg->server.health_listen.host;
        bool pv6 = strchr(ph, ':') != NULL;
        log_info("health listener (open routes only) on http://%s%s%s:%d", pv6 ? "[" : "", ph,
                 pv6 ? "]" : "", http_server_probe_port(http));
    }
}

static int serve(daemon_state *d)
{
    char err[1024];
    settings *cfg = &d->cfg;
    sigset_t set;
    signals_block(&set);

    d->metrics = metrics_new(api_route_labels, (int)api_n_routes);
    model_registry_events ev = {.user = d, .on_progress = on_load_progress, .on_loaded = on_loaded};
    d->registry = model_registry_new((int)cfg->batching.workers, &ev);
    if (d->registry)
        model_registry_set_lanes(d->registry, (int)cfg->batching.engine_threads);
    int max_batch = 1;
    for (size_t i = 0; i < cfg->n_models; i++) {
        int b = (int)settings_model_max_batch_size(cfg, &cfg->models[i]);
        max_batch = b > max_batch ? b : max_batch;
    }
    batcher_limits lim = {.max_queue = (int)cfg->batching.max_queue,
                          .max_queue_items = 0,
                          .max_batch_size = max_batch,
                          .max_queue_delay_us = cfg->batching.max_queue_delay_us};
    d->batcher = batcher_new(&lim);
    if (!d->metrics || !d->registry || !d->batcher) {
        log_error("out of memory at start-up");
        return 1;
    }
    d->news_sync = news_sync_start(d->registry, NEWS_SYNC_INTERVAL_MS, err, sizeof err);
    if (!d->news_sync) {
        log_error("%s", err);
        return 1;
    }
    worker_options wo = {.n_workers = (int)cfg->batching.workers,
                         .blas_threads = (int)cfg->batching.blas_threads,
                         .engine_threads = (int)cfg->batching.engine_threads,
                         .observer = {.user = d->metrics,
                                      .on_batch = obs_batch,
                                      .on_queue_wait = obs_queue_wait,
                                      /* Drops (deadline, disconnect) are counted per
                                         request when it finishes (api.c). */
                                      .on_drop = NULL}};
    if (worker_pool_start(d->batcher, &wo, &d->workers, err, sizeof err) != 0) {
        log_error("%s", err);
        return 1;
    }

    d->api.registry = d->registry;
    d->api.batcher = d->batcher;
    d->api.metrics = d->metrics;
    d->api.version = FASTFORMERD_VERSION;
    d->api.cors_origins = cfg->server.cors_allow_origins.items;
    d->api.n_cors_origins = cfg->server.cors_allow_origins.n;
    d->api.model_control = cfg->server.model_control != 0;
    d->api.repository_config = repository_config;
    d->api.repository_user = d;
    metrics_request_timeout_set(d->metrics, cfg->server.request_timeout_ms);
    atomic_store(&d->api.draining, false);
    /* Model requests' bodies are parsed off the HTTP thread (api_frame.c). */
    d->api.parse_pool = cfg->server.parse_threads
                            ? task_pool_new((int)cfg->server.parse_threads, "ff-parse",
                                            (int)cfg->server.parse_threads_nice)
                            : NULL;
    if (cfg->server.parse_threads && !d->api.parse_pool) {
        log_error("cannot start the request parsing threads");
        return 1;
    }
    if (cfg->server.tls_cert_file && tls_start(&cfg->server, d->metrics) != 0)
        return 1;
    model_spec *specs = specs_from(cfg);
    /* The model list names what is coming from the first request on. */
    if (!specs || model_registry_announce(d->registry, specs, (int)cfg->n_models) != 0) {
        log_error("cannot start loading the models: out of memory");
        free(specs);
        return 1;
    }
    http_options ho = http_options_from(cfg, d);
    if (http_server_start(&ho, &d->http, err, sizeof err) != 0) {
        log_error("%s", err);
        free(specs);
        return 1;
    }
    d->api.http = d->http;
    log_listening(cfg, d->http);
    notify_status("listening; loading %zu model%s", cfg->n_models, cfg->n_models == 1 ? "" : "s");

    if (model_registry_load_async(d->registry, specs, (int)cfg->n_models, err, sizeof err) != 0) {
        log_error("cannot start loading the models: %s", err);
        free(specs);
        return 1;
    }
    free(specs);

    notify_watchdog wd;
    notify_watchdog_init(&wd, workers_alive, d);
    int rc = 0;
    for (;;) {
        int timeout = notify_watchdog_tick(&wd, (uint64_t)mono_clock_us());
        if (timeout < 0 || timeout > MAIN_TICK_MS)
            timeout = MAIN_TICK_MS;
        int sig = signal_wait(&set, timeout);
        log_flush(); /* the access lines of the last <= 100 ms (log.h) */
        http_server_probe_disconnects(d->http);
        http_server_cut_slow_clients(d->http);
        if (atomic_load(&d->first_load) < 0) {
            /* Start-up failure (already logged): a bad model directory is a
             * configuration error, so exit 1 rather than serve nothing. */
            rc = 1;
            break;
        }
        if (sig == SIGHUP || (d->reload_pending && !atomic_load(&d->reloading) &&
                              !model_registry_loading(d->registry))) {
            reload(d);
        } else if (sig == SIGTERM || sig == SIGINT) {
            log_info("%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
    }
    drain(d, &set, rc != 0);
    return rc;
}

static void teardown(daemon_state *d)
{
    /* Workers exit once the drained queue is empty; only then is no request
     * parked, so the HTTP server can stop. */
    if (d->batcher)
        batcher_abort(d->batcher);
    if (d->workers)
        worker_pool_join(d->workers);
    /* A model repository load parks its request until the loader is done:
     * let it resume while the server still runs. */
    if (d->registry)
        model_registry_join_loader(d->registry);
    /* Requests still waiting for a parse are parsed and refused by the
     * aborted batcher; later ones parse inline. Freed once HTTP has stopped. */
    task_pool_stop(d->api.parse_pool);
    /* A batch that outlasted the drain timeout was computed all the same
     * (worker_pool_join waited for it): its answers go out before HTTP stops. */
    if (d->http)
        for (int64_t give_up = mono_clock_us() + TEARDOWN_FLUSH_US;
             http_server_in_flight(d->http) > 0 && mono_clock_us() < give_up;)
            usleep(10000);
    http_server_stop(d->http);
    tls_identity_shutdown();
    task_pool_free(d->api.parse_pool);
    news_sync_stop(d->news_sync);
    if (d->registry) {
        model_registry_join_loader(d->registry);
        model_registry_free(d->registry);
    }
    if (d->batcher)
        batcher_free(d->batcher);
    metrics_free(d->metrics);
    settings_free(&d->repository);
    settings_free(&d->cfg);
    free(d->args.models);
}

int main(int argc, char **argv)
{
    static daemon_state d;
    api_json_alloc_install(NULL); /* before any thread uses jansson */
    int rc = args_parse(argc, argv, &d.args);
    if (rc >= 0) {
        free(d.args.models);
        return rc;
    }
    char err[1024];
    if (config_read(&d.args, &d.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "fastformerd: %s\n", err);
        settings_free(&d.cfg);
        free(d.args.models);
        return 1;
    }
    log_configure(d.cfg.logging.format, d.cfg.logging.level);
    if (d.args.healthcheck) {
        rc = healthcheck(&d.cfg);
    } else if (d.args.check_config) {
        rc = check_config(&d.cfg);
    } else if (settings_check(&d.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "fastformerd: %s\n", err);
        rc = 1;
    } else {
        rc = serve(&d);
        teardown(&d);
        log_info("exiting with status %d", rc);
        log_flush(); /* the last access lines, whatever the level */
        return rc;
    }
    settings_free(&d.cfg);
    free(d.args.models);
    return rc;
}
