/* oip: the KServe Open Inference Protocol v2 REST routes, so that KServe and
 * Triton clients work unchanged. Inference takes one input tensor, either
 * text as BYTES "text" with shape [batch] or [batch, 1], or token ids as
 * INT64 (or INT32) "input_ids" with shape [batch, len] (0 = padding), and
 * returns FP32 "probabilities" [batch, C] for classifiers and "embeddings"
 * [batch, D] for encoders (either may be asked for with "outputs"). The
 * request "id" is echoed. Errors use the API's one error shape. Inference is
 * a model route: a pure parser and an answer, run by the frame (api_frame.c). */
#include "api.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_fields.h"
#include "api_frame.h"
#include "api_inputs.h"

/* The datatypes of the protocol; anything else is "unknown". */
static const char *const oip_datatypes[] = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64",
                                            "INT8", "INT16", "INT32",  "INT64",  "FP16",
                                            "FP32", "FP64",  "BYTES",  "BF16",   NULL};

static bool datatype_known(const char *dt)
{
    for (const char *const *d = oip_datatypes; *d; d++)
        if (strcmp(*d, dt) == 0)
            return true;
    return false;
}

/* ---- health and metadata -------------------------------------------------------- */

void oip_server_metadata(http_request *r, void *vctx)
{
    api_context *ctx = vctx;
    /* "model_repository": /v2/repository/... (api_repository.c), when on */
    http_request_respond_json(r, 200,
                              ctx->model_control
                                  ? json_pack("{s:s,s:s,s:[s]}", "name", "fastformerd", "version",
                                              ctx->version ? ctx->version : "", "extensions",
                                              "model_repository")
                                  : json_pack("{s:s,s:s,s:[]}", "name", "fastformerd", "version",
                                              ctx->version ? ctx->version : "", "extensions"));
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
                                            "1", "platform", "fastformer", "inputs", inputs,
                                            "outputs", outputs));
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
    bool ready = sm != NULL;
    served_model_release(sm);
    http_request_respond_json(r, ready ? 200 : 503,
                              json_pack("{s:s,s:b}", "name", name, "ready", ready));
}

/* ---- infer: the request's options ------------------------------------------------- */

typedef struct {
    char *id; /* owned; NULL when the request had none */
    bool want_probs;
    bool want_embeddings;
} oip_job;

static void job_release(void *p)
{
    oip_job *job = p;
    free(job->id);
}

/* The optional string "id", copied into the job to be echoed. */
static bool id_get(json_t *body, oip_job *job, api_verdict *v)
{
    json_t *id = json_object_get(body, "id");
    if (!id)
        return true;
    if (!api_expect(id, API_KIND_STRING, "id", "a string", v))
        return false;
    job->id = strdup(json_string_value(id));
    if (!job->id) {
        api_fail(v, 503, "out of memory");
        return false;
    }
    return true;
}

/* The optional "parameters" object; "truncate" is its only parameter. */
static bool parameters_get(json_t *body, bool *truncate, api_verdict *v)
{
    json_t *params = json_object_get(body, "parameters");
    if (!params)
        return true;
    return api_expect(params, API_KIND_OBJECT, "parameters", "an object", v) &&
           api_optional_bool(params, "truncate", "parameters.truncate", truncate, v);
}

/* The outputs asked for; by default probabilities (classifiers) or
 * embeddings (encoders). */
static bool outputs_get(json_t *body, bool classifier, oip_job *job, api_verdict *v)
{
    json_t *outputs = json_object_get(body, "outputs");
    if (outputs && !api_expect(outputs, API_KIND_ARRAY, "outputs", "an array", v))
        return false;
    size_t k;
    json_t *o;
    json_array_foreach(outputs, k, o)
    {
        json_t *name = json_is_object(o) ? json_object_get(o, "name") : NULL;
        if (!json_is_string(name)) {
            api_fail(v, 400, "outputs[%zu]: expected an object with a string 'name'", k);
            return false;
        }
        const char *nm = json_string_value(name);
        if (strcmp(nm, "embeddings") == 0) {
            job->want_embeddings = true;
        } else if (strcmp(nm, "probabilities") == 0 && classifier) {
            job->want_probs = true;
        } else {
            api_fail(v, 400, "outputs[%zu].name: unknown output '%.64s' (expected %s)", k, nm,
                     classifier ? "'probabilities' or 'embeddings'" : "'embeddings'");
            return false;
        }
    }
    if (!job->want_probs && !job->want_embeddings) {
        job->want_probs = classifier;
        job->want_embeddings = !classifier;
    }
    return true;
}

/* ---- infer: the input tensor ------------------------------------------------------ */

typedef struct {
    json_int_t dims[8];
    int n;
    size_t elements;
} tensor_shape;

/* One input tensor: "text" (BYTES) or "input_ids" (INT64/INT32), its shape
 * and its data flattened row-major. */
typedef struct {
    bool is_text;
    tensor_shape shape;
    char shape_str[128]; /* e.g. "[2,3]", for messages */
    json_t *flat;        /* owned: shape.elements values */
} oip_tensor;

static bool shape_parse(json_t *shape, tensor_shape *out, api_verdict *v)
{
    if (!api_expect(shape, API_KIND_ARRAY, "inputs[0].shape", "an array of integers", v))
        return false;
    size_t n = json_array_size(shape);
    if (n == 0 || n > 8) {
        api_fail(v, 400, "inputs[0].shape: expected 1 to 8 dimensions, got %zu", n);
        return false;
    }
    out->n = (int)n;
    out->elements = 1;
    bool overflow = false;
    for (size_t k = 0; k < n; k++) {
        json_t *d = json_array_get(shape, k);
        char path[40];
        snprintf(path, sizeof path, "inputs[0].shape[%zu]", k);
        if (!api_expect(d, API_KIND_INTEGER, path, "an integer", v))
            return false;
        json_int_t dim = json_integer_value(d);
        if (dim < 0) {
            api_fail(v, 400, "%s: %" JSON_INTEGER_FORMAT " is negative", path, dim);
            return false;
        }
        out->dims[k] = dim;
        /* Elements are counted in size_t and must stay below 2^31: anything
         * larger cannot match a body within the limit. */
        if (dim != 0 && out->elements > (size_t)INT32_MAX / (uint64_t)dim)
            overflow = true;
        else
            out->elements *= (size_t)dim;
    }
    if (overflow) {
        api_fail(v, 400, "inputs[0].shape: the element count overflows (more than %d)", INT32_MAX);
        return false;
    }
    return true;
}

static void shape_format(const tensor_shape *s, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; k < s->n && len < cap; k++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" JSON_INTEGER_FORMAT, k ? "," : "[",
                                s->dims[k]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

/* Flattens `data` (row-major, nested lists allowed one level deep) into a new
 * array. Returns a new reference, or NULL with the verdict: 400 when nested
 * too deeply, 503 when out of memory. */
static json_t *data_flatten(json_t *data, api_verdict *v)
{
    json_t *flat = json_array();
    if (!flat) {
        api_fail(v, 503, "out of memory");
        return NULL;
    }
    size_t i, j;
    json_t *e, *f;
    json_array_foreach(data, i, e)
    {
        int appended = 0;
        if (!json_is_array(e)) {
            appended = json_array_append(flat, e);
        } else {
            json_array_foreach(e, j, f)
            {
                if (json_is_array(f)) {
                    api_fail(v, 400,
                             "inputs[0].data[%zu][%zu]: nested more deeply than the shape allows",
                             i, j);
                    json_decref(flat);
                    return NULL;
                }
                if (json_array_append(flat, f) != 0)
                    appended = -1;
            }
        }
        if (appended != 0) {
            api_fail(v, 503, "out of memory");
            json_decref(flat);
            return NULL;
        }
    }
    return flat;
}

/* The tensor's name and datatype: which input it is. */
static bool tensor_kind(json_t *t, oip_tensor *out, api_verdict *v)
{
    json_t *jname = json_object_get(t, "name");
    json_t *jtype = json_object_get(t, "datatype");
    if (!api_expect(jname, API_KIND_STRING, "inputs[0].name", "a string", v) ||
        !api_expect(jtype, API_KIND_STRING, "inputs[0].datatype", "a string", v))
        return false;
    const char *name = json_string_value(jname), *dtype = json_string_value(jtype);
    out->is_text = strcmp(name, "text") == 0;
    if (!out->is_text && strcmp(name, "input_ids") != 0) {
        api_fail(v, 400, "inputs[0].name: unknown input '%.64s' (expected 'text' or 'input_ids')",
                 name);
        return false;
    }
    if (!datatype_known(dtype)) {
        api_fail(v, 400, "inputs[0].datatype: unknown datatype '%.32s'", dtype);
        return false;
    }
    if (out->is_text && strcmp(dtype, "BYTES") != 0) {
        api_fail(v, 400, "inputs[0]: tensor 'text' must be BYTES, got %s", dtype);
        return false;
    }
    if (!out->is_text && strcmp(dtype, "INT64") != 0 && strcmp(dtype, "INT32") != 0) {
        api_fail(v, 400, "inputs[0]: tensor 'input_ids' must be INT64 or INT32, got %s", dtype);
        return false;
    }
    return true;
}

/* The tensor's shape (of the right rank for its kind) and its data. */
static bool tensor_data(json_t *t, oip_tensor *out, api_verdict *v)
{
    tensor_shape *shape = &out->shape;
    if (!shape_parse(json_object_get(t, "shape"), shape, v))
        return false;
    shape_format(shape, out->shape_str, sizeof out->shape_str);
    if (out->is_text && !(shape->n == 1 || (shape->n == 2 && shape->dims[1] == 1))) {
        api_fail(v, 400, "inputs[0].shape: 'text' needs [batch] or [batch, 1], got %s",
                 out->shape_str);
        return false;
    }
    if (!out->is_text && shape->n != 2) {
        api_fail(v, 400, "inputs[0].shape: 'input_ids' needs [batch, len], got %s", out->shape_str);
        return false;
    }
    json_t *data = json_object_get(t, "data");
    if (!api_expect(data, API_KIND_ARRAY, "inputs[0].data", "an array", v))
        return false;
    out->flat = data_flatten(data, v);
    if (!out->flat)
        return false;
    if (json_array_size(out->flat) != shape->elements) {
        api_fail(v, 400, "inputs[0]: shape %s holds %zu elements but data has %zu", out->shape_str,
                 shape->elements, json_array_size(out->flat));
        return false;
    }
    if (shape->dims[0] == 0) {
        api_fail(v, 400, "inputs[0].shape[0]: the batch must not be empty");
        return false;
    }
    if (shape->dims[0] > API_MAX_INPUTS) {
        api_fail(v, 413,
                 "inputs[0]: batch of %" JSON_INTEGER_FORMAT
                 ", more than the limit of %d per request",
                 shape->dims[0], API_MAX_INPUTS);
        return false;
    }
    return true;
}

/* "inputs": exactly one tensor. On success out->flat is a new reference. */
static bool tensor_get(json_t *body, oip_tensor *out, api_verdict *v)
{
    static const char *const tensor_keys[] = {"name", "shape",      "datatype",
                                              "data", "parameters", NULL};
    json_t *inputs = api_require(body, "inputs", v);
    if (!inputs || !api_expect(inputs, API_KIND_ARRAY, "inputs", "an array of tensors", v))
        return false;
    if (json_array_size(inputs) != 1) {
        api_fail(v, 400, "inputs: expected exactly one tensor ('text' or 'input_ids'), got %zu",
                 json_array_size(inputs));
        return false;
    }
    json_t *t = json_array_get(inputs, 0);
    return api_expect(t, API_KIND_OBJECT, "inputs[0]", "a tensor object", v) &&
           api_keys_allowed(t, "inputs[0]", tensor_keys, v) && tensor_kind(t, out, v) &&
           tensor_data(t, out, v);
}

/* Item i of req from row i of the tensor. */
static bool tensor_items_fill(const api_call *call, infer_request *req, const oip_tensor *t,
                              const api_input_rules *rules, api_verdict *v)
{
    for (int i = 0; i < req->n_items; i++) {
        if (t->is_text) {
            json_t *s = json_array_get(t->flat, (size_t)i);
            char path[48];
            snprintf(path, sizeof path, "inputs[0].data[%d]", i);
            if (!api_expect(s, API_KIND_STRING, path, "a string (BYTES)", v))
                return false;
            api_input_text(call->sm, req, i, json_string_value(s), json_string_length(s), rules,
                           path, v);
        } else {
            size_t len = (size_t)t->shape.dims[1];
            api_input_ids(call->sm, req, i, t->flat, (size_t)i * len, len, rules, "inputs[0].data",
                          (size_t)i * len, v);
        }
        if (v->status != 0)
            return false;
    }
    return true;
}

/* ---- infer -------------------------------------------------------------------------- */

/* {"id", "parameters", "inputs": [one tensor], "outputs"} */
static int infer_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {"id", "parameters", "inputs", "outputs", NULL};
    api_verdict *v = &out->verdict;
    oip_job *job = out->job;
    bool classifier = model_has_classifier(call->sm->model);
    bool truncate = true;
    oip_tensor tensor = {0};
    if (api_keys_allowed(body, "", keys, v) && id_get(body, job, v) &&
        parameters_get(body, &truncate, v) && outputs_get(body, classifier, job, v) &&
        tensor_get(body, &tensor, v)) {
        int batch = (int)tensor.shape.dims[0];
        out->req = api_request_new(call, classifier ? INFER_CLASSIFY : INFER_EMBED, batch, 0, v);
        api_input_rules rules = {.truncate = truncate, .news = false};
        if (out->req)
            tensor_items_fill(call, out->req, &tensor, &rules, v);
    }
    json_decref(tensor.flat);
    return v->status;
}

static json_t *output_json(const char *name, const float *data, int rows, int cols)
{
    json_t *d = api_json_floats(data, rows * cols);
    if (!d)
        return NULL;
    return json_pack("{s:s,s:s,s:[i,i],s:o}", "name", name, "datatype", "FP32", "shape", rows, cols,
                     "data", d);
}

static void finish_infer(http_request *r, infer_request *req, void *vjob)
{
    oip_job *job = vjob;
    json_t *outputs = json_array();
    if (outputs && job->want_probs)
        json_array_append_new(
            outputs, output_json("probabilities", req->probs, req->n_items, req->n_labels));
    if (outputs && job->want_embeddings)
        json_array_append_new(outputs,
                              output_json("embeddings", req->vectors, req->n_items, req->dim));
    json_t *resp = outputs ? json_pack("{s:s,s:s,s:o}", "model_name", req->sm->name,
                                       "model_version", "1", "outputs", outputs)
                           : NULL;
    if (resp && job->id)
        json_object_set_new(resp, "id", json_string(job->id));
    http_request_respond_json(r, 200, resp);
}

const api_model_route oip_infer = {.parse = infer_parse,
                                   .finish = finish_infer,
                                   .job_bytes = sizeof(oip_job),
                                   .job_release = job_release};
