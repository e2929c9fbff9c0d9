/* api_v1: the REST routes under /v1: the model list and descriptions, and
 * the model routes classify, embed, recommend and PUT of one news item into
 * a recommender's catalog. A model route is a pure parser (the body -> one
 * infer_request, or a status and a message) and an answer from the computed
 * request; the frame (api_frame.c) runs them. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_fields.h"
#include "api_frame.h"
#include "api_inputs.h"

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
        json_array_append_new(arr, json_pack("{s:s,s:b,s:s}", "name", names[i], "ready", 0, "state",
                                             states[i] == SERVED_MODEL_FAILED     ? "failed"
                                             : states[i] == SERVED_MODEL_UNLOADED ? "unloaded"
                                                                                  : "loading"));
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

/* ---- request parsing shared by the model routes --------------------------------- */

/* 400 unless the model has what the route needs (`want`: the task's name). */
static int model_needs(const api_call *call, bool has, const char *route, const char *want,
                       api_verdict *v)
{
    if (has)
        return 0;
    return api_fail(v, 400, "model '%s' is a %s model; %s needs a %s model", call->sm->name,
                    model_task_name(call->sm->model->config.task), route, want);
}

/* The array body[key] with its size checked, or NULL with the verdict. */
static json_t *inputs_get(json_t *body, const char *key, bool allow_empty, api_verdict *v)
{
    json_t *a = api_require(body, key, v);
    if (!a || !api_expect(a, API_KIND_ARRAY, key, "an array", v))
        return NULL;
    size_t n = json_array_size(a);
    if (n == 0 && !allow_empty) {
        api_fail(v, 400, "%s: must not be empty", key);
        return NULL;
    }
    if (n > API_MAX_INPUTS) {
        api_fail(v, 413, "%s: %zu inputs, more than the limit of %d per request", key, n,
                 API_MAX_INPUTS);
        return NULL;
    }
    return a;
}

/* Fills items [first, first + size(arr)) from arr; false with the verdict. */
static bool items_fill(const api_call *call, infer_request *req, int first, json_t *arr,
                       const char *key, const api_input_rules *rules, api_verdict *v)
{
    size_t i;
    json_t *input;
    json_array_foreach(arr, i, input)
    {
        char path[64];
        snprintf(path, sizeof path, "%s[%zu]", key, i);
        if (api_input_parse(call->sm, req, first + (int)i, input, rules, path, v) != 0)
            return false;
    }
    return true;
}

/* ---- classify and embed ---------------------------------------------------------- */

static int classify_check(const api_call *call, api_verdict *v)
{
    return model_needs(call, model_has_classifier(call->sm->model), "classify", "classification",
                       v);
}

/* {"inputs": [...], "truncate": bool}. A recommender embeds news: the
 * news-cache rule applies, news ids do not (their vectors are in the
 * catalog already). */
static int texts_parse(const api_call *call, json_t *body, infer_task task, api_parsed *out)
{
    static const char *const keys[] = {"inputs", "truncate", NULL};
    api_verdict *v = &out->verdict;
    bool truncate = true;
    if (!api_keys_allowed(body, "", keys, v) ||
        !api_optional_bool(body, "truncate", "truncate", &truncate, v))
        return v->status;
    json_t *inputs = inputs_get(body, "inputs", false, v);
    if (!inputs)
        return v->status;
    out->req = api_request_new(call, task, (int)json_array_size(inputs), 0, v);
    if (!out->req)
        return v->status;
    api_input_rules rules = {.truncate = truncate, .news = false};
    items_fill(call, out->req, 0, inputs, "inputs", &rules, v);
    return v->status;
}

static int classify_parse(const api_call *call, json_t *body, api_parsed *out)
{
    return texts_parse(call, body, INFER_CLASSIFY, out);
}

static int embed_parse(const api_call *call, json_t *body, api_parsed *out)
{
    return texts_parse(call, body, INFER_EMBED, out);
}

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

const api_model_route api_v1_classify = {
    .check = classify_check, .parse = classify_parse, .finish = finish_classify};

const api_model_route api_v1_embed = {.parse = embed_parse, .finish = finish_embed};

/* ---- recommend --------------------------------------------------------------------- */

typedef struct {
    int top_k;
} recommend_job;

static int recommend_check(const api_call *call, api_verdict *v)
{
    return model_needs(call, model_has_user_encoder(call->sm->model), "recommend",
                       "news-recommendation", v);
}

/* top_k into *out: at most n_candidates, which is also its default. */
static bool top_k_get(json_t *body, int n_candidates, int *out, api_verdict *v)
{
    *out = n_candidates;
    json_t *tk = json_object_get(body, "top_k");
    if (!tk)
        return true;
    if (!api_expect(tk, API_KIND_INTEGER, "top_k", "an integer >= 1", v))
        return false;
    json_int_t k = json_integer_value(tk);
    if (k < 1) {
        api_fail(v, 400, "top_k: expected an integer >= 1, got %" JSON_INTEGER_FORMAT, k);
        return false;
    }
    if (k < n_candidates)
        *out = (int)k;
    return true;
}

/* {"history": [...], "candidates": [...], "top_k": n, "truncate": bool} */
static int recommend_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {"history", "candidates", "top_k", "truncate", NULL};
    api_verdict *v = &out->verdict;
    recommend_job *job = out->job;
    bool truncate = true;
    if (!api_keys_allowed(body, "", keys, v) ||
        !api_optional_bool(body, "truncate", "truncate", &truncate, v))
        return v->status;
    json_t *history = inputs_get(body, "history", true, v);
    json_t *cands = history ? inputs_get(body, "candidates", false, v) : NULL;
    if (!cands)
        return v->status;
    int nh = (int)json_array_size(history), nc = (int)json_array_size(cands);
    if (nh + nc > API_MAX_INPUTS)
        return api_fail(v, 413, "history and candidates: %d news, more than the limit of %d",
                        nh + nc, API_MAX_INPUTS);
    if (!top_k_get(body, nc, &job->top_k, v))
        return v->status;
    out->req = api_request_new(call, INFER_RECOMMEND, nh + nc, nh, v);
    if (!out->req)
        return v->status;
    api_input_rules rules = {.truncate = truncate, .news = true};
    if (items_fill(call, out->req, 0, history, "history", &rules, v))
        items_fill(call, out->req, nh, cands, "candidates", &rules, v);
    return v->status;
}

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

const api_model_route api_v1_recommend = {.check = recommend_check,
                                          .parse = recommend_parse,
                                          .finish = finish_recommend,
                                          .job_bytes = sizeof(recommend_job)};

/* ---- PUT one news item --------------------------------------------------------------- */

typedef struct {
    char id[NEWS_CATALOG_ID_MAX + 1];
    size_t id_len;
} news_job;

/* The model has a catalog, and the path's id fits it. */
static int news_put_check(const api_call *call, api_verdict *v)
{
    if (model_needs(call, model_has_user_encoder(call->sm->model), "news", "news-recommendation",
                    v) != 0)
        return v->status;
    if (!call->sm->catalog)
        return api_fail(v, 400, "model '%s' has no news catalog (configure models[].news_catalog)",
                        call->sm->name);
    size_t id_len = call->param ? strlen(call->param) : 0;
    if (id_len == 0 || id_len > NEWS_CATALOG_ID_MAX)
        return api_fail(v, 400, "news id: expected 1 to %d bytes, got %zu", NEWS_CATALOG_ID_MAX,
                        id_len);
    return 0;
}

/* {"title": "..."}: one item to embed, the id to store it under. */
static int news_put_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {"title", NULL};
    api_verdict *v = &out->verdict;
    news_job *job = out->job;
    if (!api_keys_allowed(body, "", keys, v))
        return v->status;
    json_t *title = api_require(body, "title", v);
    if (!title || !api_expect(title, API_KIND_STRING, "title", "a string", v))
        return v->status;
    job->id_len = strlen(call->param); /* news_put_check bounded it */
    memcpy(job->id, call->param, job->id_len + 1);
    out->req = api_request_new(call, INFER_EMBED, 1, 0, v);
    if (!out->req)
        return v->status;
    api_input_rules rules = {.truncate = true, .news = false};
    return api_input_text(call->sm, out->req, 0, json_string_value(title),
                          json_string_length(title), &rules, "title", v);
}

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

const api_model_route api_v1_news_put = {.check = news_put_check,
                                         .parse = news_put_parse,
                                         .finish = finish_news_put,
                                         .job_bytes = sizeof(news_job)};
