/* oip: the KServe Open Inference Protocol v2 REST routes other than
 * inference (oip_infer.c): server metadata, health, and each model's
 * metadata and readiness, unversioned and at /versions/{version}, where "1"
 * is every model's only version. Errors on every /v2 path take the
 * protocol's shape {"error": "message", ...} (api_errors.h). */
#include "api.h"

#include <string.h>

#include "api_frame.h"
#include "oip_version.h"

/* True when the path names no version or the served one; else answers 404. */
static bool version_served(http_request *r, const char *model_name)
{
    api_verdict v = {0};
    if (oip_version_check(model_name, http_request_param(r, 1), &v) == 0)
        return true;
    http_request_respond_error(r, v.status, "%s", v.message);
    return false;
}

/* ---- health and metadata -------------------------------------------------------- */

void oip_server_metadata(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    /* "model_repository": /v2/repository/... (api_repository.c), when on */
    http_request_respond_json(
        r, 200,
        ctx->model_control ? json_pack("{s:s,s:s,s:[s,s,s]}", "name", "fastformerd", "version",
                                       ctx->version ? ctx->version : "", "extensions",
                                       "binary_tensor_data", "classification", "model_repository")
                           : json_pack("{s:s,s:s,s:[s,s]}", "name", "fastformerd", "version",
                                       ctx->version ? ctx->version : "", "extensions",
                                       "binary_tensor_data", "classification"));
}

void oip_health_live(http_request *r, void *ctx)
{
    (void)ctx;
    http_request_respond_json(r, 200, json_pack("{s:b}", "live", 1));
}

void oip_health_ready(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    char reason[256];
    bool ready =
        !atomic_load(&ctx->draining) && model_registry_ready(ctx->registry, reason, sizeof reason);
    http_request_respond_json(r, ready ? 200 : 503, json_pack("{s:b}", "ready", ready));
}

static json_t *tensor_meta(const char *name, const char *datatype, json_int_t d0, json_int_t d1)
{
    return json_pack("{s:s,s:s,s:[I,I]}", "name", name, "datatype", datatype, "shape", d0, d1);
}

void oip_model_metadata(http_request *r, void *vctx)
{
    served_model *sm = api_model_get(vctx, r);
    if (!sm)
        return;
    if (!version_served(r, sm->name)) {
        served_model_release(sm);
        return;
    }
    const model_config *cfg = &sm->model->config;
    json_t *inputs = json_array();
    json_t *outputs = json_array();
    if (inputs && outputs) {
        json_array_append_new(
            inputs, json_pack("{s:s,s:s,s:[i]}", "name", "text", "datatype", "BYTES", "shape", -1));
        json_array_append_new(inputs, tensor_meta("input_ids", "INT64", -1, -1));
        if (model_has_classifier(sm->model))
            json_array_append_new(outputs,
                                  tensor_meta("probabilities", "FP32", -1, cfg->num_labels));
        json_array_append_new(outputs,
                              tensor_meta("embeddings", "FP32", -1, cfg->encoder.hidden_size));
    }
    if (!inputs || !outputs) {
        json_decref(inputs);
        json_decref(outputs);
        http_request_respond_json(r, 500, NULL);
    } else {
        http_request_respond_json(r, 200,
                                  json_pack("{s:s,s:[s],s:s,s:o,s:o}", "name", sm->name, "versions",
                                            OIP_MODEL_VERSION, "platform", "fastformer", "inputs",
                                            inputs, "outputs", outputs));
    }
    served_model_release(sm);
}

void oip_model_ready(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    const char *name = http_request_param(r, 0);
    served_model_state st = model_registry_state(ctx->registry, name);
    served_model *sm = model_registry_get(ctx->registry, name);
    if (!sm && st != SERVED_MODEL_LOADING && st != SERVED_MODEL_FAILED) {
        http_request_respond_error(r, 404, "model '%.64s' not found", name);
        return;
    }
    http_request_set_model(r, name);
    if (!version_served(r, name)) {
        served_model_release(sm);
        return;
    }
    bool ready = sm != NULL;
    served_model_release(sm);
    http_request_respond_json(r, ready ? 200 : 503,
                              json_pack("{s:s,s:b}", "name", name, "ready", ready));
}
