/* api_torchserve: TorchServe's inference API, so that what users send to a
 * TorchServe text model works here unchanged:
 *   POST|PUT /predictions/{name}[/{version}]
 *       the body is one text: raw UTF-8 (sent without a Content-Type, as
 *       `curl -T file` and `requests.post(url, data=...)` do), or JSON (with
 *       Content-Type application/json): {"data": text} (TorchServe's key) or
 *       {"text": text}
 *       -> a classifier's {"label": probability, ...} in the model's label
 *          order (TorchServe's text_classifier answer); any other model's
 *          vector [floats]
 *   GET /ping -> {"status": "Healthy"} while every model serves, else 500
 *       {"status": "Unhealthy"} (TorchServe's health check)
 * A text longer than the model's maximum keeps its first tokens, as
 * TorchServe's text handlers truncate. The only version is "1" (oip_version.h).
 * Errors on these paths are in TorchServe's shape (api_errors.h). */
#include "api.h"

#include <stdatomic.h>
#include <string.h>

#include "api_fields.h"
#include "api_frame.h"
#include "api_inputs.h"
#include "media_type.h"
#include "oip_version.h"

typedef struct {
    bool classify; /* the model classifies; else it embeds */
} torchserve_job;

static int predictions_check(const api_call *call, api_verdict *v)
{
    return oip_version_check(call->sm->name, call->param, v);
}

/* A JSON body is all JSON; any other body is the text itself. */
static int predictions_json_part(const api_call *call, size_t body_bytes, size_t *json_bytes,
                                 api_verdict *v)
{
    (void)v;
    *json_bytes = media_type_is(call->content_type, "application/json") ? body_bytes : 0;
    return 0;
}

/* The text of a JSON body (an object): {"data": s} or {"text": s}. */
static const char *json_text(json_t *body, size_t *len, const char **path, api_verdict *v)
{
    static const char *const keys[] = {"data", "text", NULL};
    if (!api_keys_allowed(body, "", keys, v))
        return NULL;
    json_t *data = json_object_get(body, "data"), *text = json_object_get(body, "text");
    if (data && text) {
        api_fail(v, 400, "send the text as \"data\" or as \"text\", not both");
        return NULL;
    }
    *path = data ? "data" : "text";
    json_t *x = data ? data : text;
    if (!x) {
        api_fail(v, 400, "data: required (the text to score), or send the text as the body");
        return NULL;
    }
    if (!json_is_string(x)) {
        api_fail(v, 400, "%s: expected a string (the text to score)", *path);
        return NULL;
    }
    *len = json_string_length(x);
    return json_string_value(x);
}

static int predictions_parse(const api_call *call, json_t *body, api_parsed *out)
{
    api_verdict *v = &out->verdict;
    torchserve_job *job = out->job;
    const char *text = call->tail, *path = "body";
    size_t len = call->tail_bytes;
    if (media_type_is(call->content_type, "application/json")) {
        text = json_text(body, &len, &path, v);
        if (!text)
            return v->status;
    } else if (len == 0) {
        return api_fail(v, 400,
                        "request body is empty: expected the text to score (raw UTF-8, or JSON "
                        "{\"data\": text} with Content-Type application/json)");
    }
    job->classify = model_has_classifier(call->sm->model);
    out->req = api_request_new(call, job->classify ? INFER_CLASSIFY : INFER_EMBED, 1, 0, v);
    if (!out->req)
        return v->status;
    api_input_rules rules = {.truncate = true, .news = false};
    return api_input_text(call->sm, out->req, 0, text, len, &rules, path, v);
}

static void finish_predictions(http_request *r, infer_request *req, void *vjob)
{
    const torchserve_job *job = vjob;
    json_t *answer;
    if (job->classify) {
        const model_config *cfg = &req->sm->model->config;
        answer = json_object();
        for (int k = 0; answer && k < req->n_labels; k++)
            if (json_object_set_new(answer, cfg->id2label[k], api_json_float(req->probs[k])) != 0) {
                json_decref(answer);
                answer = NULL;
            }
    } else {
        answer = json_array();
        for (int k = 0; answer && k < req->dim; k++)
            if (json_array_append_new(answer, api_json_float(req->vectors[k])) != 0) {
                json_decref(answer);
                answer = NULL;
            }
    }
    http_request_respond_json(r, 200, answer);
}

const api_model_route api_torchserve_predictions = {.check = predictions_check,
                                                    .json_part = predictions_json_part,
                                                    .raw_body = true,
                                                    .parse = predictions_parse,
                                                    .finish = finish_predictions,
                                                    .job_bytes = sizeof(torchserve_job)};

void api_torchserve_ping(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    char reason[256];
    bool healthy =
        !atomic_load(&ctx->draining) && model_registry_ready(ctx->registry, reason, sizeof reason);
    http_request_respond_json(r, healthy ? 200 : 500,
                              json_pack("{s:s}", "status", healthy ? "Healthy" : "Unhealthy"));
}
