/* api_repository: the model repository extension of the Open Inference
 * Protocol (Triton's and KServe's), over the models of the config file:
 *   POST /v2/repository/index                 -> [{"name", "version", "state", "reason"}]
 *   POST /v2/repository/models/{name}/load    re-reads the model's config entry, loads it
 *                                             and swaps it in (as SIGHUP does for all)
 *   POST /v2/repository/models/{name}/unload  takes it out of service
 * Other models keep serving throughout. Off (403) unless server.model_control
 * is true; the routes need the API key when one is set. A load runs on the
 * registry's loader thread: the request is parked until it is done, and a
 * second load (or a SIGHUP reload) meanwhile is refused (409). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_fields.h"
#include "api_frame.h"

model_spec api_model_spec(const settings *cfg, const settings_model *m)
{
    return (model_spec){
        .name = m->name,
        .path = m->path,
        .news_catalog = m->news_catalog,
        .state_dir = cfg->server.state_dir,
        .news_store = m->news_store,
        .max_catalog_items = m->max_catalog_items,
        .news_bulk_max_items = (int)cfg->server.news_bulk_max_items,
        .news_cache_entries = (int)m->news_cache_entries,
        .max_batch_size = (int)settings_model_max_batch_size(cfg, m),
        .max_batch_tokens = (int)settings_model_max_batch_tokens(cfg, m),
    };
}

/* 403 unless the routes are on. */
static bool repository_on(api_context *ctx, http_request *r)
{
    if (ctx->model_control && ctx->repository_config)
        return true;
    http_request_respond_error(r, 403,
                               "the model repository API is off: set server.model_control: true "
                               "(and server.api_key) to load and unload models at run time");
    return false;
}

/* The body as an object with only `allowed` keys; an empty body is {}.
 * NULL after answering 400. */
static json_t *body_object(http_request *r, const char *const *allowed)
{
    size_t n;
    const char *body = http_request_body(r, &n);
    if (n == 0)
        return json_object();
    api_verdict v = {0};
    json_t *j = api_body_json(body, n, &v);
    if (j && !api_keys_allowed(j, "", allowed, &v)) {
        json_decref(j);
        j = NULL;
    }
    if (!j)
        api_verdict_respond(r, &v);
    return j;
}

/* The current config, or NULL after answering 500 with its error. */
static const settings *config_now(api_context *ctx, http_request *r)
{
    char err[600];
    const settings *cfg = ctx->repository_config(ctx->repository_user, err, sizeof err);
    if (!cfg)
        http_request_respond_error(r, 500, "cannot read the configuration: %s", err);
    return cfg;
}

/* ---- index ------------------------------------------------------------------------ */

static const char *state_name(served_model_state st)
{
    switch (st) {
    case SERVED_MODEL_READY:
        return "READY";
    case SERVED_MODEL_LOADING:
        return "LOADING";
    case SERVED_MODEL_UNKNOWN:
    case SERVED_MODEL_FAILED:
    case SERVED_MODEL_UNLOADED:
        break;
    }
    return "UNAVAILABLE";
}

static const char *state_reason(served_model_state st)
{
    switch (st) {
    case SERVED_MODEL_READY:
    case SERVED_MODEL_LOADING:
        return "";
    case SERVED_MODEL_UNKNOWN:
        return "not loaded";
    case SERVED_MODEL_FAILED:
        return "failed to load (see the daemon's log)";
    case SERVED_MODEL_UNLOADED:
        return "unloaded";
    }
    return "";
}

static json_t *index_entry(api_context *ctx, const char *name)
{
    served_model_state st = model_registry_state(ctx->registry, name);
    return json_pack("{s:s,s:s,s:s,s:s}", "name", name, "version", "1", "state", state_name(st),
                     "reason", state_reason(st));
}

/* Triton's body: {"ready": true} lists only the models ready to serve. */
void api_repository_index(http_request *r, void *vctx)
{
    static const char *const keys[] = {"ready", NULL};
    api_context *ctx = vctx;
    if (!repository_on(ctx, r))
        return;
    json_t *body = body_object(r, keys);
    if (!body)
        return;
    bool only_ready = false;
    api_verdict v = {0};
    bool ok = api_optional_bool(body, "ready", "ready", &only_ready, &v);
    json_decref(body);
    if (!ok) {
        api_verdict_respond(r, &v);
        return;
    }
    const settings *cfg = config_now(ctx, r);
    if (!cfg)
        return;
    json_t *list = json_array();
    /* The config's models, then served ones it no longer has (until a SIGHUP). */
    for (size_t i = 0; list && i < cfg->n_models; i++)
        json_array_append_new(list, index_entry(ctx, cfg->models[i].name));
    served_model *served[METRICS_MAX_MODELS];
    int n = model_registry_list(ctx->registry, served, METRICS_MAX_MODELS);
    for (int i = 0; i < n && i < METRICS_MAX_MODELS; i++) {
        if (list && !settings_find_model(cfg, served[i]->name))
            json_array_append_new(list, index_entry(ctx, served[i]->name));
        served_model_release(served[i]);
    }
    if (list && only_ready) {
        for (size_t i = json_array_size(list); i-- > 0;)
            if (strcmp(json_string_value(json_object_get(json_array_get(list, i), "state")),
                       "READY") != 0)
                json_array_remove(list, i);
    }
    http_request_respond_json(r, 200, list);
}

/* ---- load and unload ------------------------------------------------------------- */

/* The name of the path, known to the config; NULL after answering 404. */
static const settings_model *configured(http_request *r, const settings *cfg)
{
    const char *name = http_request_param(r, 0);
    const settings_model *m = settings_find_model(cfg, name);
    if (!m)
        http_request_respond_error(r, 404, "model '%.64s' is not in the configuration (%s)", name,
                                   cfg->source ? cfg->source
                                               : "no config file: only --model models");
    return m;
}

static void respond_busy(http_request *r, const char *err)
{
    http_request_add_header(r, "Retry-After", "1");
    http_request_respond_error(r, 409, "%s; retry when it is done", err);
}

/* What the loader thread hands back to the parked request. */
typedef struct {
    http_request *r;
    bool ok;
    bool busy; /* the load never started: another one runs (409) */
    char message[API_MESSAGE_CAP];
    char name[SETTINGS_MODEL_NAME_MAX + 1];
} load_job;

static void load_job_free(void *p)
{
    free(p);
}

/* Loader thread: the load is over. */
static void on_loaded_one(void *user, bool ok, const char *message)
{
    load_job *job = user;
    job->ok = ok;
    snprintf(job->message, sizeof job->message, "%s", message);
    http_request_resume(job->r);
}

/* HTTP thread, once resumed. */
static void load_answer(http_request *r, void *vctx)
{
    (void)vctx;
    load_job *job = http_request_state(r);
    if (job->busy)
        respond_busy(r, job->message);
    else if (job->ok)
        http_request_respond_json(
            r, 200,
            json_pack("{s:s,s:s,s:s}", "name", job->name, "version", "1", "state", "READY"));
    else
        http_request_respond_error(r, 422, "%s (a version already served keeps serving)",
                                   job->message);
}

/* Triton's body may carry {"parameters": {...}}: only an empty one is taken. */
void api_repository_load(http_request *r, void *vctx)
{
    static const char *const keys[] = {"parameters", NULL};
    api_context *ctx = vctx;
    if (!repository_on(ctx, r))
        return;
    json_t *body = body_object(r, keys);
    if (!body)
        return;
    json_t *params = json_object_get(body, "parameters");
    bool params_ok = !params || (json_is_object(params) && json_object_size(params) == 0);
    json_decref(body);
    if (!params_ok) {
        http_request_respond_error(r, 400,
                                   "parameters: not supported (a model is loaded from its entry "
                                   "in the configuration file); send {} or no body");
        return;
    }
    const settings *cfg = config_now(ctx, r);
    const settings_model *m = cfg ? configured(r, cfg) : NULL;
    if (!m)
        return;
    load_job *job = calloc(1, sizeof *job);
    if (!job) {
        http_request_respond_error(r, 503, "out of memory");
        return;
    }
    job->r = r;
    snprintf(job->name, sizeof job->name, "%s", m->name);
    http_request_set_model(r, m->name);
    http_request_set_state(r, job, load_job_free);
    /* Park first: the loader may finish before model_registry_load_one_async returns. */
    http_request_suspend(r, load_answer, ctx);
    model_spec spec = api_model_spec(cfg, m);
    char err[300];
    if (model_registry_load_one_async(ctx->registry, &spec, on_loaded_one, job, err, sizeof err) !=
        0) {
        job->busy = true;
        snprintf(job->message, sizeof job->message, "%s", err);
        http_request_resume(r);
    }
}

void api_repository_unload(http_request *r, void *vctx)
{
    static const char *const keys[] = {"parameters", NULL};
    api_context *ctx = vctx;
    if (!repository_on(ctx, r))
        return;
    json_t *body = body_object(r, keys);
    if (!body)
        return;
    json_decref(body);
    const settings *cfg = config_now(ctx, r);
    const char *name = http_request_param(r, 0);
    /* A model served but no longer configured can be unloaded too. */
    served_model *sm = cfg ? model_registry_get(ctx->registry, name) : NULL;
    bool known = sm != NULL;
    served_model_release(sm);
    if (!cfg || (!known && !configured(r, cfg)))
        return;
    char err[300];
    int rc = model_registry_unload(ctx->registry, name, err, sizeof err);
    if (rc < 0) {
        respond_busy(r, err);
        return;
    }
    http_request_respond_json(r, 200,
                              json_pack("{s:s,s:s,s:s,s:s}", "name", name, "version", "1", "state",
                                        "UNAVAILABLE", "reason", "unloaded"));
}
