/* api_tei: Hugging Face Text Embeddings Inference's routes, one set per model
 * under /tei/{name}, so that TEI's clients and the Hugging Face Inference
 * clients work by pointing them at http://host:port/tei/{name}:
 *   POST /tei/{name}/embed   {"inputs": "text" | ["text", ...], "normalize": true,
 *                             "truncate": false, "truncation_direction": "right"}
 *                            -> [[floats], ...] (L2-normalised unless normalize is false)
 *   POST /tei/{name}/predict {"inputs": "text" | ["text", ...], "raw_scores": false,
 *                             "truncate": false}
 *                            -> [{"score", "label"}, ...] best first, for one text;
 *                               [[...], ...] for a list (scores: probabilities, or
 *                               logits with raw_scores)
 *   POST /tei/{name}         the Hugging Face Inference API's shape, which its
 *                            clients send to an endpoint URL: {"inputs": ...,
 *                            "parameters": {}} -> a classifier's
 *                            [[{"label", "score"}, ...], ...], any other model's
 *                            [[floats], ...]
 *   GET  /tei/{name}/info    TEI's /info: the model's type (classifier with its
 *                            labels, or embedding), limits and version
 *   GET  /tei/{name}/health  200 {} while the model serves (404, 503 otherwise)
 * As TEI, a text longer than the model's maximum is refused unless truncate
 * is true. Errors under /tei are in TEI's shape, {"error", "error_type"}
 * (api_errors.h). */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_fields.h"
#include "api_frame.h"
#include "api_inputs.h"

/* What the answer is. */
typedef enum {
    TEI_EMBED,       /* TEI's /embed */
    TEI_PREDICT,     /* TEI's /predict */
    TEI_HF_CLASSIFY, /* the Inference API's text-classification answer */
} tei_answer;

typedef struct {
    tei_answer answer;
    bool one_text;   /* "inputs" was a string, not a list */
    bool normalize;  /* embed: L2-normalise each vector */
    bool raw_scores; /* predict: logits instead of probabilities */
} tei_job;

/* ---- the request ---------------------------------------------------------------- */

static int classifier_check(const api_call *call, api_verdict *v)
{
    return api_model_needs(call, model_has_classifier(call->sm->model), "predict", "classification",
                           v);
}

/* "truncation_direction": only "right" (TEI also takes "left"). */
static bool direction_ok(json_t *body, api_verdict *v)
{
    json_t *d = json_object_get(body, "truncation_direction");
    if (!d)
        return true;
    const char *s = json_string_value(d);
    if (s && (strcmp(s, "right") == 0 || strcmp(s, "Right") == 0))
        return true;
    api_fail(v, 422,
             "truncation_direction: only \"right\" is supported (the model keeps a "
             "text's first tokens)");
    return false;
}

/* "parameters" of the Inference API: only an empty object. */
static bool parameters_ok(json_t *body, api_verdict *v)
{
    json_t *p = json_object_get(body, "parameters");
    if (!p || (json_is_object(p) && json_object_size(p) == 0))
        return true;
    api_fail(v, 400, "parameters: not supported; send {} or leave it out");
    return false;
}

/* "inputs" (a text or a non-empty list of texts) into a new request of `task`. */
static int texts_into_request(const api_call *call, json_t *body, infer_task task, bool truncate,
                              api_parsed *out)
{
    api_verdict *v = &out->verdict;
    tei_job *job = out->job;
    json_t *inputs = api_require(body, "inputs", v);
    if (!inputs)
        return v->status;
    job->one_text = json_is_string(inputs);
    if (!job->one_text && !json_is_array(inputs))
        return api_fail(v, 400, "inputs: expected a string or an array of strings");
    size_t n = job->one_text ? 1 : json_array_size(inputs);
    if (n == 0)
        return api_fail(v, 422, "inputs: must not be empty");
    if (n > API_MAX_INPUTS)
        return api_fail(v, 413, "inputs: %zu inputs, more than the limit of %d per request", n,
                        API_MAX_INPUTS);
    for (size_t i = 0; !job->one_text && i < n; i++) {
        json_t *x = json_array_get(inputs, i);
        if (json_is_array(x))
            return api_fail(v, 422,
                            "inputs[%zu]: pairs of texts are not supported: the model "
                            "takes one text",
                            i);
        if (!json_is_string(x))
            return api_fail(v, 400, "inputs[%zu]: expected a string", i);
    }
    out->req = api_request_new(call, task, (int)n, 0, v);
    api_input_rules rules = {.truncate = truncate, .news = false};
    for (size_t i = 0; out->req && i < n && v->status == 0; i++) {
        json_t *x = job->one_text ? inputs : json_array_get(inputs, i);
        char path[48];
        snprintf(path, sizeof path, job->one_text ? "inputs" : "inputs[%zu]", i);
        api_input_text(call->sm, out->req, (int)i, json_string_value(x), json_string_length(x),
                       &rules, path, v);
    }
    return v->status;
}

static int embed_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {
        "inputs",      "normalize",  "truncate", "truncation_direction",
        "prompt_name", "dimensions", NULL};
    api_verdict *v = &out->verdict;
    tei_job *job = out->job;
    bool truncate = false;
    job->answer = TEI_EMBED;
    job->normalize = true;
    if (!api_keys_allowed(body, "", keys, v) ||
        !api_optional_bool(body, "normalize", "normalize", &job->normalize, v) ||
        !api_optional_bool(body, "truncate", "truncate", &truncate, v) || !direction_ok(body, v))
        return v->status;
    json_t *prompt = json_object_get(body, "prompt_name");
    if (prompt && !json_is_null(prompt))
        return api_fail(v, 422, "prompt_name: the model has no prompts");
    json_t *dims = json_object_get(body, "dimensions");
    int d = call->sm->model->config.encoder.hidden_size;
    if (dims && !json_is_null(dims) && (!json_is_integer(dims) || json_integer_value(dims) != d))
        return api_fail(v, 422,
                        "dimensions: model '%s' gives %d dimensions; no other number is "
                        "supported",
                        call->sm->name, d);
    return texts_into_request(call, body, INFER_EMBED, truncate, out);
}

static int predict_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {"inputs", "raw_scores", "truncate", "truncation_direction",
                                       NULL};
    api_verdict *v = &out->verdict;
    tei_job *job = out->job;
    bool truncate = false;
    job->answer = TEI_PREDICT;
    if (!api_keys_allowed(body, "", keys, v) ||
        !api_optional_bool(body, "raw_scores", "raw_scores", &job->raw_scores, v) ||
        !api_optional_bool(body, "truncate", "truncate", &truncate, v) || !direction_ok(body, v))
        return v->status;
    return texts_into_request(call, body, INFER_CLASSIFY, truncate, out);
}

/* The Inference API's body: a classifier classifies, any other model embeds. */
static int hf_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {"inputs", "parameters", NULL};
    api_verdict *v = &out->verdict;
    tei_job *job = out->job;
    if (!api_keys_allowed(body, "", keys, v) || !parameters_ok(body, v))
        return v->status;
    bool classify = model_has_classifier(call->sm->model);
    job->answer = classify ? TEI_HF_CLASSIFY : TEI_EMBED;
    return texts_into_request(call, body, classify ? INFER_CLASSIFY : INFER_EMBED, false, out);
}

/* ---- the answer ----------------------------------------------------------------- */

/* One vector, L2-normalised when asked (a zero vector stays zero). */
static json_t *vector_json(const float *x, int d, bool normalize)
{
    double ss = 0;
    for (int i = 0; normalize && i < d; i++)
        ss += (double)x[i] * x[i];
    float scale = normalize && ss > 0 ? (float)(1.0 / sqrt(ss)) : 1.0f;
    json_t *a = json_array();
    for (int i = 0; a && i < d; i++)
        if (json_array_append_new(a, api_json_float(x[i] * scale)) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* One text's labels with their scores, best first ({"score", "label"} as
 * TEI orders the keys; the Inference API's clients read both by name). */
static json_t *scores_json(const model_config *cfg, const float *s, int n_labels)
{
    int *order = malloc((size_t)n_labels * sizeof *order);
    if (!order)
        return NULL;
    for (int k = 0; k < n_labels; k++)
        order[k] = k;
    for (int a = 1; a < n_labels; a++) /* insertion sort, stable: ties keep label order */
        for (int b = a; b > 0 && s[order[b]] > s[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    json_t *a = json_array();
    for (int k = 0; a && k < n_labels; k++)
        if (json_array_append_new(a, json_pack("{s:o,s:s}", "score", api_json_float(s[order[k]]),
                                               "label", cfg->id2label[order[k]])) != 0) {
            json_decref(a);
            a = NULL;
        }
    free(order);
    return a;
}

static void finish_tei(http_request *r, infer_request *req, void *vjob)
{
    const tei_job *job = vjob;
    const model_config *cfg = &req->sm->model->config;
    json_t *all = json_array();
    for (int i = 0; all && i < req->n_items; i++) {
        json_t *one;
        if (job->answer == TEI_EMBED)
            one =
                vector_json(req->vectors + (size_t)i * (size_t)req->dim, req->dim, job->normalize);
        else
            one = scores_json(cfg,
                              (job->raw_scores ? req->logits : req->probs) +
                                  (size_t)i * (size_t)req->n_labels,
                              req->n_labels);
        if (!one || json_array_append_new(all, one) != 0) {
            json_decref(all);
            all = NULL;
        }
    }
    if (all && job->answer == TEI_PREDICT && job->one_text) {
        json_t *first = json_incref(json_array_get(all, 0));
        json_decref(all);
        all = first;
    }
    http_request_respond_json(r, 200, all);
}

const api_model_route api_tei_embed = {
    .parse = embed_parse, .finish = finish_tei, .job_bytes = sizeof(tei_job)};

const api_model_route api_tei_predict = {.check = classifier_check,
                                         .parse = predict_parse,
                                         .finish = finish_tei,
                                         .job_bytes = sizeof(tei_job)};

const api_model_route api_tei_hf = {
    .parse = hf_parse, .finish = finish_tei, .job_bytes = sizeof(tei_job)};

/* ---- info and health -------------------------------------------------------------- */

/* TEI's model_type: {"classifier": {"id2label", "label2id"}} or
 * {"embedding": {"pooling"}} (the Fastformer's additive-attention pooling). */
static json_t *model_type_json(const model_config *cfg)
{
    if (cfg->num_labels == 0)
        return json_pack("{s:{s:s}}", "embedding", "pooling", "attention");
    json_t *id2label = json_object(), *label2id = json_object();
    for (int k = 0; id2label && label2id && k < cfg->num_labels; k++) {
        char id[16];
        snprintf(id, sizeof id, "%d", k);
        json_object_set_new(id2label, id, json_string(cfg->id2label[k]));
        json_object_set_new(label2id, cfg->id2label[k], json_integer(k));
    }
    if (!id2label || !label2id) {
        json_decref(id2label);
        json_decref(label2id);
        return NULL;
    }
    return json_pack("{s:{s:o,s:o}}", "classifier", "id2label", id2label, "label2id", label2id);
}

void api_tei_info(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    served_model *sm = api_model_get(ctx, r);
    if (!sm)
        return;
    const model *m = sm->model;
    json_t *type = model_type_json(&m->config);
    json_t *info =
        type ? json_pack("{s:s,s:s,s:s,s:o,s:i,s:i,s:i,s:i,s:b,s:s,s:n,s:n}", "model_id", sm->name,
                         "model_sha", m->weights_sha256, "model_dtype", "float32", "model_type",
                         type, "max_input_length", model_max_tokens(m), "max_batch_tokens",
                         sm->max_batch_tokens, "max_batch_requests", sm->max_batch_size,
                         "max_client_batch_size", API_MAX_INPUTS, "auto_truncate", 0, "version",
                         ctx->version ? ctx->version : "", "sha", "docker_label")
             : NULL;
    served_model_release(sm);
    http_request_respond_json(r, 200, info);
}

void api_tei_health(http_request *r, void *vctx)
{
    served_model *sm = api_model_get(vctx, r);
    if (!sm)
        return;
    served_model_release(sm);
    http_request_respond_json(r, 200, json_object());
}
