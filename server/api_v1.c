/* api_v1: the REST routes under /v1: classify, embed, recommend, the model
 * list and descriptions, and PUT of one news item into a recommender's
 * catalog. Each inference handler validates the whole request on the HTTP
 * thread, fills one infer_request and parks until the workers are done. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_inputs.h"
#include "value_kind.h"

/* ---- model descriptions -------------------------------------------------------- */

static json_t *dims_json(const fastformer_dims *d)
{
    return json_pack("{s:i,s:i,s:i,s:i,s:i,s:f}", "hidden_size", d->hidden_size,
                     "num_attention_heads", d->num_attention_heads, "intermediate_size",
                     d->intermediate_size, "num_hidden_layers", d->num_hidden_layers,
                     "max_position_embeddings", d->max_position_embeddings, "layer_norm_eps",
                     (double)d->layer_norm_eps);
}

json_t *api_model_json(const served_model *sm, bool full)
{
    const model_config *cfg = &sm->model->config;
    json_t *o = json_pack("{s:s,s:s,s:b,s:s}", "name", sm->name, "task", model_task_name(cfg->task),
                          "ready", 1, "state", "ready");
    if (!o || !full)
        return o;
    json_t *config = dims_json(&cfg->encoder);
    if (config) {
        json_object_set_new(config, "vocab_size", json_integer(cfg->vocab_size));
        json_object_set_new(config, "tokenizer", json_string(tokenizer_kind_name(cfg->tokenizer)));
        json_object_set_new(config, "lowercase", json_boolean(cfg->lowercase));
        if (model_has_user_encoder(sm->model)) {
            json_object_set_new(config, "user_num_hidden_layers",
                                json_integer(cfg->user_encoder.num_hidden_layers));
            json_object_set_new(config, "max_history",
                                json_integer(cfg->user_encoder.max_position_embeddings));
        }
        if (model_has_classifier(sm->model))
            json_object_set_new(config, "num_labels", json_integer(cfg->num_labels));
    }
    json_object_set_new(o, "architecture", json_string(model_task_architecture(cfg->task)));
    json_object_set_new(o, "config", config ? config : json_null());
    json_t *labels = json_array();
    for (int i = 0; labels && i < cfg->num_labels; i++)
        json_array_append_new(labels, json_string(cfg->id2label[i]));
    json_object_set_new(o, "labels", labels ? labels : json_null());
    json_object_set_new(o, "max_tokens", json_integer(model_max_tokens(sm->model)));
    json_object_set_new(o, "embedding_size", json_integer(cfg->encoder.hidden_size));
    json_object_set_new(o, "weights_sha256", json_string(sm->model->weights_sha256));
    json_object_set_new(o, "weights_bytes", json_integer((json_int_t)sm->model->weights_bytes));
    char when[40] = "";
    time_t secs = (time_t)(sm->load_time_unix_ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm)) {
        size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when + n, sizeof when - n, ".%03dZ", (int)(sm->load_time_unix_ms % 1000));
    }
    json_object_set_new(o, "load_time", json_string(when));
    json_object_set_new(o, "load_seconds", json_real(sm->load_seconds));
    json_object_set_new(o, "max_batch_size", json_integer(sm->max_batch_size));
    json_object_set_new(o, "max_batch_tokens", json_integer(sm->max_batch_tokens));
    if (model_has_user_encoder(sm->model))
        json_object_set_new(o, "news_catalog_items",
                            sm->catalog ? json_integer((json_int_t)news_catalog_count(sm->catalog))
                                        : json_integer(0));
    return o;
}

void api_v1_models(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    served_model *list[METRICS_MAX_MODELS];
    int n = model_registry_list(ctx->registry, list, METRICS_MAX_MODELS);
    if (n > METRICS_MAX_MODELS)
        n = METRICS_MAX_MODELS;
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        if (arr)
            json_array_append_new(arr, api_model_json(list[i], false));
        served_model_release(list[i]);
    }
    /* Then the configured models that are not served: loading, or failed. */
    char names[METRICS_MAX_MODELS][MODEL_REGISTRY_NAME_CAP];
    served_model_state states[METRICS_MAX_MODELS];
    int n_unserved = model_registry_unserved(ctx->registry, names, states, METRICS_MAX_MODELS);
    if (n_unserved > METRICS_MAX_MODELS)
        n_unserved = METRICS_MAX_MODELS;
    for (int i = 0; arr && i < n_unserved; i++)
        json_array_append_new(arr,
                              json_pack("{s:s,s:b,s:s}", "name", names[i], "ready", 0, "state",
                                        states[i] == SERVED_MODEL_FAILED ? "failed" : "loading"));
    http_request_respond_json(r, 200, arr ? json_pack("{s:o}", "models", arr) : NULL);
}

void api_v1_model(http_request *r, void *vctx)
{
    served_model *sm = api_model_get(vctx, r);
    if (!sm)
        return;
    http_request_respond_json(r, 200, api_model_json(sm, true));
    served_model_release(sm);
}

/* ---- request parsing shared by the inference routes ---------------------------- */

static bool task_check(http_request *r, const served_model *sm, model_task want, const char *route)
{
    model_task have = sm->model->config.task;
    if (have == want)
        return true;
    http_request_respond_error(r, 400, "model '%s' is a %s model; %s needs a %s model", sm->name,
                               model_task_name(have), route, model_task_name(want));
    return false;
}

static bool truncate_get(http_request *r, json_t *body, bool *out)
{
    json_t *t = json_object_get(body, "truncate");
    *out = true;
    if (!t)
        return true;
    if (!json_is_boolean(t)) {
        http_request_respond_error(r, 400, "truncate: expected a boolean, got %s",
                                   value_kind_name(t));
        return false;
    }
    *out = json_is_true(t);
    return true;
}

/* The array `key` of body with its size checked. Answers and returns NULL on error. */
static json_t *inputs_get(http_request *r, json_t *body, const char *key, bool allow_empty)
{
    json_t *a = json_object_get(body, key);
    if (!a) {
        http_request_respond_error(r, 400, "missing key '%s'", key);
        return NULL;
    }
    if (!json_is_array(a)) {
        http_request_respond_error(r, 400, "%s: expected an array, got %s", key,
                                   value_kind_name(a));
        return NULL;
    }
    size_t n = json_array_size(a);
    if (n == 0 && !allow_empty) {
        http_request_respond_error(r, 400, "%s: must not be empty", key);
        return NULL;
    }
    if (n > API_MAX_INPUTS) {
        http_request_stats_of(r)->reject = REJECT_TOO_LARGE;
        http_request_respond_error(r, 413, "%s: %zu inputs, more than the limit of %d per request",
                                   key, n, API_MAX_INPUTS);
        return NULL;
    }
    return a;
}

/* Fills items [first, first + size(arr)) from arr. Answers and returns false on error. */
static bool items_fill(http_request *r, const served_model *sm, infer_request *req, int first,
                       json_t *arr, const char *key, const api_input_rules *rules)
{
    size_t i;
    json_t *input;
    json_array_foreach(arr, i, input)
    {
        char path[64], err[512];
        snprintf(path, sizeof path, "%s[%zu]", key, i);
        int status = api_input_parse(sm, req, first + (int)i, input, rules, path, err, sizeof err);
        if (status != 0) {
            http_request_respond_error(r, status, "%s", err);
            return false;
        }
    }
    return true;
}

static infer_request *request_new(http_request *r, served_model *sm, infer_task task, int n_items,
                                  int n_history)
{
    infer_request *req = infer_request_new(sm, task, n_items, n_history);
    if (!req)
        http_request_respond_error(r, 503, "out of memory for %d inputs", n_items);
    return req;
}

/* ---- classify and embed ---------------------------------------------------------- */

static void finish_classify(http_request *r, infer_request *req, void *job)
{
    (void)job;
    const model_config *cfg = &req->sm->model->config;
    json_t *preds = json_array();
    for (int i = 0; preds && i < req->n_items; i++) {
        const float *p = req->probs + (size_t)i * (size_t)req->n_labels;
        int best = 0;
        for (int k = 1; k < req->n_labels; k++)
            if (p[k] > p[best])
                best = k;
        json_array_append_new(preds,
                              json_pack("{s:s,s:i,s:o*}", "label", cfg->id2label[best], "label_id",
                                        best, "probabilities", api_json_floats(p, req->n_labels)));
    }
    http_request_respond_json(
        r, 200,
        preds ? json_pack("{s:s,s:o}", "model", req->sm->name, "predictions", preds) : NULL);
}

static void finish_embed(http_request *r, infer_request *req, void *job)
{
    (void)job;
    json_t *embs = json_array();
    for (int i = 0; embs && i < req->n_items; i++)
        json_array_append_new(
            embs, api_json_floats(req->vectors + (size_t)i * (size_t)req->dim, req->dim));
    http_request_respond_json(
        r, 200, embs ? json_pack("{s:s,s:o}", "model", req->sm->name, "embeddings", embs) : NULL);
}

static void texts_route(http_request *r, api_context *ctx, infer_task task)
{
    static const char *const keys[] = {"inputs", "truncate", NULL};
    served_model *sm = api_model_get(ctx, r);
    if (!sm)
        return;
    json_t *body = NULL;
    infer_request *req = NULL;
    bool truncate;
    if (task == INFER_CLASSIFY && !task_check(r, sm, MODEL_TASK_CLASSIFICATION, "classify"))
        goto out;
    body = api_body_parse(r);
    if (!body || !api_keys_check(r, body, "", keys) || !truncate_get(r, body, &truncate))
        goto out;
    json_t *inputs = inputs_get(r, body, "inputs", false);
    if (!inputs)
        goto out;
    int n = (int)json_array_size(inputs);
    req = request_new(r, sm, task, n, 0);
    if (!req)
        goto out;
    /* A recommender embeds news: the news-cache rule applies, news ids do not
     * (their vectors are in the catalog already). */
    api_input_rules rules = {.truncate = truncate, .news = false};
    if (!items_fill(r, sm, req, 0, inputs, "inputs", &rules))
        goto out;
    api_submit(ctx, r, req, task == INFER_CLASSIFY ? finish_classify : finish_embed, NULL, NULL);
    req = NULL;
out:
    infer_request_release(req);
    json_decref(body);
    served_model_release(sm);
}

void api_v1_classify(http_request *r, void *ctx)
{
    texts_route(r, ctx, INFER_CLASSIFY);
}

void api_v1_embed(http_request *r, void *ctx)
{
    texts_route(r, ctx, INFER_EMBED);
}

/* ---- recommend --------------------------------------------------------------------- */

typedef struct {
    int top_k;
} recommend_job;

static void finish_recommend(http_request *r, infer_request *req, void *vjob)
{
    recommend_job *job = vjob;
    int n_cand = req->n_items - req->n_history;
    int k = job->top_k < n_cand ? job->top_k : n_cand;
    json_t *ranking = json_array();
    for (int i = 0; ranking && i < k; i++)
        json_array_append_new(ranking, json_integer(req->ranking[i]));
    json_t *scores = api_json_floats(req->scores, n_cand);
    if (!ranking || !scores) {
        json_decref(ranking);
        json_decref(scores);
        http_request_respond_json(r, 500, NULL);
        return;
    }
    http_request_respond_json(
        r, 200,
        json_pack("{s:s,s:o,s:o}", "model", req->sm->name, "scores", scores, "ranking", ranking));
}

void api_v1_recommend(http_request *r, void *vctx)
{
    static const char *const keys[] = {"history", "candidates", "top_k", "truncate", NULL};
    api_context *ctx = vctx;
    served_model *sm = api_model_get(ctx, r);
    if (!sm)
        return;
    json_t *body = NULL;
    infer_request *req = NULL;
    recommend_job *job = NULL;
    bool truncate;
    if (!task_check(r, sm, MODEL_TASK_NEWS_RECOMMENDATION, "recommend"))
        goto out;
    body = api_body_parse(r);
    if (!body || !api_keys_check(r, body, "", keys) || !truncate_get(r, body, &truncate))
        goto out;
    json_t *history = inputs_get(r, body, "history", true);
    if (!history)
        goto out;
    json_t *cands = inputs_get(r, body, "candidates", false);
    if (!cands)
        goto out;
    int nh = (int)json_array_size(history), nc = (int)json_array_size(cands);
    if (nh + nc > API_MAX_INPUTS) {
        http_request_stats_of(r)->reject = REJECT_TOO_LARGE;
        http_request_respond_error(r, 413,
                                   "history and candidates: %d news, more than the limit of %d",
                                   nh + nc, API_MAX_INPUTS);
        goto out;
    }
    int top_k = nc;
    json_t *tk = json_object_get(body, "top_k");
    if (tk) {
        if (!json_is_integer(tk)) {
            http_request_respond_error(r, 400, "top_k: expected an integer >= 1, got %s",
                                       value_kind_name(tk));
            goto out;
        }
        if (json_integer_value(tk) < 1) {
            http_request_respond_error(r, 400,
                                       "top_k: expected an integer >= 1, got %" JSON_INTEGER_FORMAT,
                                       json_integer_value(tk));
            goto out;
        }
        if (json_integer_value(tk) < nc)
            top_k = (int)json_integer_value(tk);
    }
    job = malloc(sizeof *job);
    if (!job) {
        http_request_respond_error(r, 503, "out of memory");
        goto out;
    }
    job->top_k = top_k;
    req = request_new(r, sm, INFER_RECOMMEND, nh + nc, nh);
    if (!req)
        goto out;
    api_input_rules rules = {.truncate = truncate, .news = true};
    if (!items_fill(r, sm, req, 0, history, "history", &rules) ||
        !items_fill(r, sm, req, nh, cands, "candidates", &rules))
        goto out;
    api_submit(ctx, r, req, finish_recommend, job, free);
    req = NULL;
    job = NULL;
out:
    free(job);
    infer_request_release(req);
    json_decref(body);
    served_model_release(sm);
}

/* ---- PUT one news item --------------------------------------------------------------- */

typedef struct {
    char id[NEWS_CATALOG_ID_MAX + 1];
    size_t id_len;
} news_job;

static void finish_news_put(http_request *r, infer_request *req, void *vjob)
{
    news_job *job = vjob;
    bool replaced = false;
    char err[200];
    if (news_catalog_put(req->sm->catalog, job->id, job->id_len, req->vectors, &replaced, err,
                         sizeof err) != 0) {
        http_request_respond_error(r, 503, "news '%s': %s", job->id, err);
        return;
    }
    http_request_respond_json(r, replaced ? 200 : 201,
                              json_pack("{s:s,s:s,s:b}", "model", req->sm->name, "news_id", job->id,
                                        "replaced", replaced));
}

void api_v1_news_put(http_request *r, void *vctx)
{
    static const char *const keys[] = {"title", NULL};
    api_context *ctx = vctx;
    served_model *sm = api_model_get(ctx, r);
    if (!sm)
        return;
    json_t *body = NULL;
    infer_request *req = NULL;
    news_job *job = NULL;
    const char *id = http_request_param(r, 1);
    size_t id_len = id ? strlen(id) : 0;
    if (!task_check(r, sm, MODEL_TASK_NEWS_RECOMMENDATION, "news"))
        goto out;
    if (!sm->catalog) {
        http_request_respond_error(
            r, 400, "model '%s' has no news catalog (configure models[].news_catalog)", sm->name);
        goto out;
    }
    if (id_len == 0 || id_len > NEWS_CATALOG_ID_MAX) {
        http_request_respond_error(r, 400, "news id: expected 1 to %d bytes, got %zu",
                                   NEWS_CATALOG_ID_MAX, id_len);
        goto out;
    }
    body = api_body_parse(r);
    if (!body || !api_keys_check(r, body, "", keys))
        goto out;
    json_t *title = json_object_get(body, "title");
    if (!title) {
        http_request_respond_error(r, 400, "missing key 'title'");
        goto out;
    }
    if (!json_is_string(title)) {
        http_request_respond_error(r, 400, "title: expected a string, got %s",
                                   value_kind_name(title));
        goto out;
    }
    job = malloc(sizeof *job);
    if (!job) {
        http_request_respond_error(r, 503, "out of memory");
        goto out;
    }
    memcpy(job->id, id, id_len + 1);
    job->id_len = id_len;
    req = request_new(r, sm, INFER_EMBED, 1, 0);
    if (!req)
        goto out;
    api_input_rules rules = {.truncate = true, .news = false};
    char err[512];
    int status = api_input_text(sm, req, 0, json_string_value(title), json_string_length(title),
                                &rules, "title", err, sizeof err);
    if (status != 0) {
        http_request_respond_error(r, status, "%s", err);
        goto out;
    }
    api_submit(ctx, r, req, finish_news_put, job, free);
    req = NULL;
    job = NULL;
out:
    free(job);
    infer_request_release(req);
    json_decref(body);
    served_model_release(sm);
}
