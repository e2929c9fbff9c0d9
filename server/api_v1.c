/* api_v1: the REST routes under /v1: the model list and descriptions, and
 * the model routes classify, embed, recommend and PUT of one news item into
 * a recommender's catalog. A model route is a pure parser (the body -> one
 * infer_request, or a status and a message) and an answer from the computed
 * request; the frame (api_frame.c) runs them. */
#include "api.h"

#include <limits.h>
#include <stdint.h>
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

/* OpenAI's model object (GET /v1/models/{model} of its API), so that its
 * clients' models.list() and models.retrieve() work here. */
static json_t *openai_model_json(const served_model *sm)
{
    return json_pack("{s:s,s:s,s:I,s:s}", "id", sm->name, "object", "model", "created",
                     (json_int_t)(sm->load_time_unix_ms / 1000), "owned_by", "fastformerd");
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
    json_t *openai = openai_model_json(sm);
    if (openai)
        json_object_update(o, openai);
    json_decref(openai);
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
    json_t *arr = json_array(), *data = json_array();
    for (int i = 0; i < n; i++) {
        if (arr)
            json_array_append_new(arr, api_model_json(list[i], false));
        if (data)
            json_array_append_new(data, openai_model_json(list[i]));
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
    /* "object" and "data": OpenAI's list of the served (ready) models. */
    http_request_respond_json(
        r, 200,
        arr && data ? json_pack("{s:s,s:o,s:o}", "object", "list", "data", data, "models", arr)
                    : NULL);
    if (!arr || !data) {
        json_decref(arr);
        json_decref(data);
    }
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
    return api_model_needs(call, model_has_classifier(call->sm->model), "classify",
                           "classification", v);
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
    bool catalog; /* ranked the whole catalog (no candidates) */
} recommend_job;

static int recommend_check(const api_call *call, api_verdict *v)
{
    return api_model_needs(call, model_has_user_encoder(call->sm->model), "recommend",
                           "news-recommendation", v);
}

/* top_k into *out: at most `most`, which is also its default. */
static bool top_k_get(json_t *body, int most, int *out, api_verdict *v)
{
    *out = most;
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
    if (k < most)
        *out = (int)k;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* RFC 3339 "2026-12-01T00:00:00Z", with optional fraction and an offset
 * ("+02:00") instead of Z, into unix ms. */
static bool rfc3339_ms(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
        return false;
    const char *p = s + 11;
    if (sscanf(p, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 || n != 8)
        return false;
    p += 8;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (digits == 0)
            return false;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
            return false;
        offset_min = (*p == '-' ? -1 : 1) * (oh * 60 + om);
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    int64_t secs =
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)offset_min * 60;
    *out = secs * 1000 + ms;
    return true;
}

/* The catalog-wide options: exclude_history and since (only without candidates). */
static bool catalog_options(json_t *body, bool catalog, bool *exclude, int64_t *since,
                            api_verdict *v)
{
    *exclude = true;
    *since = INT64_MIN;
    json_t *sn = json_object_get(body, "since");
    if (!catalog) {
        const char *key = sn                                         ? "since"
                          : json_object_get(body, "exclude_history") ? "exclude_history"
                                                                     : NULL;
        if (key)
            api_fail(v, 400, "%s: only for a catalog-wide recommend (without candidates)", key);
        return key == NULL;
    }
    if (!api_optional_bool(body, "exclude_history", "exclude_history", exclude, v))
        return false;
    if (sn && !json_is_null(sn)) {
        if (!api_expect(sn, API_KIND_STRING, "since", "a string", v))
            return false;
        if (!rfc3339_ms(json_string_value(sn), since)) {
            api_fail(v, 400,
                     "since: expected an RFC 3339 time such as 2026-12-01T00:00:00Z, got '%.64s'",
                     json_string_value(sn));
            return false;
        }
    }
    return true;
}

/* {"history": [...], "candidates": [...], "top_k": n, "truncate": bool}, or
 * without candidates (the whole catalog): "exclude_history", "since". */
static int recommend_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {"history",         "candidates", "top_k", "truncate",
                                       "exclude_history", "since",      NULL};
    api_verdict *v = &out->verdict;
    recommend_job *job = out->job;
    bool truncate = true, exclude;
    int64_t since;
    if (!api_keys_allowed(body, "", keys, v) ||
        !api_optional_bool(body, "truncate", "truncate", &truncate, v))
        return v->status;
    json_t *history = inputs_get(body, "history", true, v);
    if (!history)
        return v->status;
    job->catalog = json_object_get(body, "candidates") == NULL;
    if (!catalog_options(body, job->catalog, &exclude, &since, v))
        return v->status;
    int nh = (int)json_array_size(history);
    api_input_rules rules = {.truncate = truncate, .news = true};
    if (job->catalog) {
        if (!call->sm->catalog)
            return api_fail(v, 400,
                            "candidates: missing, and model '%s' has no news catalog to rank "
                            "(configure server.state_dir or models[].news_catalog)",
                            call->sm->name);
        json_t *tk = json_object_get(body, "top_k");
        job->top_k = 10;
        if (tk && !top_k_get(body, INT_MAX, &job->top_k, v))
            return v->status;
        if (job->top_k > NEWS_CATALOG_TOP_K_MAX)
            return api_fail(
                v, 400, "top_k: at most %d for a catalog-wide recommend, got %" JSON_INTEGER_FORMAT,
                NEWS_CATALOG_TOP_K_MAX, json_integer_value(tk));
        out->req = infer_request_new_catalog(call->sm, nh, job->top_k, since, exclude);
        if (!out->req)
            return api_fail(v, 503, "out of memory for %d inputs", nh);
        items_fill(call, out->req, 0, history, "history", &rules, v);
        return v->status;
    }
    json_t *cands = inputs_get(body, "candidates", false, v);
    if (!cands)
        return v->status;
    int nc = (int)json_array_size(cands);
    if (nh + nc > API_MAX_INPUTS)
        return api_fail(v, 413, "history and candidates: %d news, more than the limit of %d",
                        nh + nc, API_MAX_INPUTS);
    if (!top_k_get(body, nc, &job->top_k, v))
        return v->status;
    out->req = api_request_new(call, INFER_RECOMMEND, nh + nc, nh, v);
    if (!out->req)
        return v->status;
    if (items_fill(call, out->req, 0, history, "history", &rules, v))
        items_fill(call, out->req, nh, cands, "candidates", &rules, v);
    return v->status;
}

/* {"model", "recommendations": [{"news_id", "score"}, ...]}, best first. */
static void finish_catalog(http_request *r, infer_request *req)
{
    json_t *recs = json_array();
    for (int i = 0; recs && i < req->n_hits; i++)
        json_array_append_new(recs, json_pack("{s:s,s:o}", "news_id", req->hits[i].id, "score",
                                              api_json_float(req->hits[i].score)));
    http_request_respond_json(
        r, 200,
        recs ? json_pack("{s:s,s:o}", "model", req->sm->name, "recommendations", recs) : NULL);
}

static void finish_recommend(http_request *r, infer_request *req, void *vjob)
{
    recommend_job *job = vjob;
    if (job->catalog) {
        finish_catalog(r, req);
        return;
    }
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
