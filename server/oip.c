/* oip: the KServe Open Inference Protocol v2 REST routes, so that KServe and
 * Triton clients work unchanged. Inference takes one input tensor, either
 * text as BYTES "text" with shape [batch] or [batch, 1], or token ids as
 * INT64 (or INT32) "input_ids" with shape [batch, len] (0 = padding), and
 * returns FP32 "probabilities" [batch, C] for classifiers and "embeddings"
 * [batch, D] for encoders (either may be asked for with "outputs"). The
 * request "id" is echoed. Errors use the API's one error shape. */
#include "api.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_inputs.h"
#include "value_kind.h"

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
    http_request_respond_json(r, 200,
                              json_pack("{s:s,s:s,s:[]}", "name", "fastformerd", "version",
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

/* ---- infer ------------------------------------------------------------------------ */

typedef struct {
    char *id; /* owned; NULL when the request had none */
    bool want_probs;
    bool want_embeddings;
} oip_job;

static void job_free(void *p)
{
    oip_job *job = p;
    if (job)
        free(job->id);
    free(job);
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

/* Flattens `data` (row-major, nested lists allowed one level deep) into a new
 * array. Returns a new reference, or NULL after writing the problem to err. */
static json_t *data_flatten(json_t *data, char *err, size_t err_cap)
{
    json_t *flat = json_array();
    if (!flat) {
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    size_t i, j;
    json_t *e, *f;
    json_array_foreach(data, i, e)
    {
        if (!json_is_array(e)) {
            json_array_append(flat, e);
            continue;
        }
        json_array_foreach(e, j, f)
        {
            if (json_is_array(f)) {
                snprintf(err, err_cap,
                         "inputs[0].data[%zu][%zu]: nested more deeply than the shape allows", i,
                         j);
                json_decref(flat);
                return NULL;
            }
            json_array_append(flat, f);
        }
    }
    return flat;
}

typedef struct {
    json_int_t dims[8];
    int n;
    size_t elements;
} tensor_shape;

/* Parses the shape; answers 400 and returns false on error. */
static bool shape_parse(http_request *r, json_t *shape, tensor_shape *out)
{
    if (!json_is_array(shape)) {
        http_request_respond_error(r, 400, "inputs[0].shape: expected an array of integers, got %s",
                                   shape ? value_kind_name(shape) : "nothing");
        return false;
    }
    size_t n = json_array_size(shape);
    if (n == 0 || n > 8) {
        http_request_respond_error(r, 400, "inputs[0].shape: expected 1 to 8 dimensions, got %zu",
                                   n);
        return false;
    }
    out->n = (int)n;
    out->elements = 1;
    bool overflow = false;
    for (size_t k = 0; k < n; k++) {
        json_t *d = json_array_get(shape, k);
        if (!json_is_integer(d)) {
            http_request_respond_error(r, 400, "inputs[0].shape[%zu]: expected an integer, got %s",
                                       k, value_kind_name(d));
            return false;
        }
        json_int_t v = json_integer_value(d);
        if (v < 0) {
            http_request_respond_error(
                r, 400, "inputs[0].shape[%zu]: %" JSON_INTEGER_FORMAT " is negative", k, v);
            return false;
        }
        out->dims[k] = v;
        /* Elements are counted in size_t and must stay below 2^31: anything
         * larger cannot match a body within the limit. */
        if (v != 0 && out->elements > (size_t)INT32_MAX / (uint64_t)v)
            overflow = true;
        else
            out->elements *= (size_t)v;
    }
    if (overflow) {
        http_request_respond_error(
            r, 400, "inputs[0].shape: the element count overflows (more than %d)", INT32_MAX);
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

void oip_infer(http_request *r, void *vctx)
{
    static const char *const keys[] = {"id", "parameters", "inputs", "outputs", NULL};
    static const char *const tensor_keys[] = {"name", "shape",      "datatype",
                                              "data", "parameters", NULL};
    api_context *ctx = vctx;
    served_model *sm = api_model_get(ctx, r);
    if (!sm)
        return;
    json_t *body = NULL, *flat = NULL;
    infer_request *req = NULL;
    oip_job *job = NULL;
    bool classifier = model_has_classifier(sm->model);
    char err[512];

    body = api_body_parse(r);
    if (!body || !api_keys_check(r, body, "", keys))
        goto out;
    job = calloc(1, sizeof *job);
    if (!job) {
        http_request_respond_error(r, 503, "out of memory");
        goto out;
    }
    json_t *id = json_object_get(body, "id");
    if (id) {
        if (!json_is_string(id)) {
            http_request_respond_error(r, 400, "id: expected a string, got %s",
                                       value_kind_name(id));
            goto out;
        }
        job->id = strdup(json_string_value(id));
        if (!job->id) {
            http_request_respond_error(r, 503, "out of memory");
            goto out;
        }
    }
    bool truncate = true;
    json_t *params = json_object_get(body, "parameters");
    if (params) {
        if (!json_is_object(params)) {
            http_request_respond_error(r, 400, "parameters: expected an object, got %s",
                                       value_kind_name(params));
            goto out;
        }
        json_t *t = json_object_get(params, "truncate");
        if (t && !json_is_boolean(t)) {
            http_request_respond_error(r, 400, "parameters.truncate: expected a boolean, got %s",
                                       value_kind_name(t));
            goto out;
        }
        if (t)
            truncate = json_is_true(t);
    }

    /* outputs: default probabilities (classifiers) or embeddings (encoders) */
    json_t *outputs = json_object_get(body, "outputs");
    if (outputs) {
        if (!json_is_array(outputs)) {
            http_request_respond_error(r, 400, "outputs: expected an array, got %s",
                                       value_kind_name(outputs));
            goto out;
        }
        size_t k;
        json_t *o;
        json_array_foreach(outputs, k, o)
        {
            json_t *name = json_is_object(o) ? json_object_get(o, "name") : NULL;
            if (!json_is_string(name)) {
                http_request_respond_error(
                    r, 400, "outputs[%zu]: expected an object with a string 'name'", k);
                goto out;
            }
            const char *nm = json_string_value(name);
            if (strcmp(nm, "embeddings") == 0) {
                job->want_embeddings = true;
            } else if (strcmp(nm, "probabilities") == 0 && classifier) {
                job->want_probs = true;
            } else {
                http_request_respond_error(
                    r, 400, "outputs[%zu].name: unknown output '%.64s' (expected %s)", k, nm,
                    classifier ? "'probabilities' or 'embeddings'" : "'embeddings'");
                goto out;
            }
        }
    }
    if (!job->want_probs && !job->want_embeddings) {
        job->want_probs = classifier;
        job->want_embeddings = !classifier;
    }

    json_t *inputs = json_object_get(body, "inputs");
    if (!inputs) {
        http_request_respond_error(r, 400, "missing key 'inputs'");
        goto out;
    }
    if (!json_is_array(inputs)) {
        http_request_respond_error(r, 400, "inputs: expected an array of tensors, got %s",
                                   value_kind_name(inputs));
        goto out;
    }
    if (json_array_size(inputs) != 1) {
        http_request_respond_error(
            r, 400, "inputs: expected exactly one tensor ('text' or 'input_ids'), got %zu",
            json_array_size(inputs));
        goto out;
    }
    json_t *t = json_array_get(inputs, 0);
    if (!json_is_object(t)) {
        http_request_respond_error(r, 400, "inputs[0]: expected a tensor object, got %s",
                                   value_kind_name(t));
        goto out;
    }
    if (!api_keys_check(r, t, "inputs[0]", tensor_keys))
        goto out;
    json_t *jname = json_object_get(t, "name");
    json_t *jtype = json_object_get(t, "datatype");
    json_t *jdata = json_object_get(t, "data");
    if (!json_is_string(jname)) {
        http_request_respond_error(r, 400, "inputs[0].name: expected a string, got %s",
                                   jname ? value_kind_name(jname) : "nothing");
        goto out;
    }
    if (!json_is_string(jtype)) {
        http_request_respond_error(r, 400, "inputs[0].datatype: expected a string, got %s",
                                   jtype ? value_kind_name(jtype) : "nothing");
        goto out;
    }
    const char *name = json_string_value(jname), *dtype = json_string_value(jtype);
    bool is_text = strcmp(name, "text") == 0;
    bool is_ids = strcmp(name, "input_ids") == 0;
    if (!is_text && !is_ids) {
        http_request_respond_error(
            r, 400, "inputs[0].name: unknown input '%.64s' (expected 'text' or 'input_ids')", name);
        goto out;
    }
    if (!datatype_known(dtype)) {
        http_request_respond_error(r, 400, "inputs[0].datatype: unknown datatype '%.32s'", dtype);
        goto out;
    }
    if (is_text && strcmp(dtype, "BYTES") != 0) {
        http_request_respond_error(r, 400, "inputs[0]: tensor 'text' must be BYTES, got %s", dtype);
        goto out;
    }
    if (is_ids && strcmp(dtype, "INT64") != 0 && strcmp(dtype, "INT32") != 0) {
        http_request_respond_error(
            r, 400, "inputs[0]: tensor 'input_ids' must be INT64 or INT32, got %s", dtype);
        goto out;
    }
    tensor_shape shape;
    if (!shape_parse(r, json_object_get(t, "shape"), &shape))
        goto out;
    char shape_str[128];
    shape_format(&shape, shape_str, sizeof shape_str);
    if (is_text && !(shape.n == 1 || (shape.n == 2 && shape.dims[1] == 1))) {
        http_request_respond_error(
            r, 400, "inputs[0].shape: 'text' needs [batch] or [batch, 1], got %s", shape_str);
        goto out;
    }
    if (is_ids && shape.n != 2) {
        http_request_respond_error(
            r, 400, "inputs[0].shape: 'input_ids' needs [batch, len], got %s", shape_str);
        goto out;
    }
    if (!json_is_array(jdata)) {
        http_request_respond_error(r, 400, "inputs[0].data: expected an array, got %s",
                                   jdata ? value_kind_name(jdata) : "nothing");
        goto out;
    }
    flat = data_flatten(jdata, err, sizeof err);
    if (!flat) {
        http_request_respond_error(r, 400, "%s", err);
        goto out;
    }
    if (json_array_size(flat) != shape.elements) {
        http_request_respond_error(r, 400,
                                   "inputs[0]: shape %s holds %zu elements but data has %zu",
                                   shape_str, shape.elements, json_array_size(flat));
        goto out;
    }
    json_int_t batch = shape.dims[0];
    if (batch == 0) {
        http_request_respond_error(r, 400, "inputs[0].shape[0]: the batch must not be empty");
        goto out;
    }
    if (batch > API_MAX_INPUTS) {
        http_request_stats_of(r)->reject = REJECT_TOO_LARGE;
        http_request_respond_error(r, 413,
                                   "inputs[0]: batch of %" JSON_INTEGER_FORMAT
                                   ", more than the limit of %d per request",
                                   batch, API_MAX_INPUTS);
        goto out;
    }
    req = infer_request_new(sm, classifier ? INFER_CLASSIFY : INFER_EMBED, (int)batch, 0);
    if (!req) {
        http_request_respond_error(r, 503, "out of memory for %d inputs", (int)batch);
        goto out;
    }
    api_input_rules rules = {.truncate = truncate, .news = false};
    for (int i = 0; i < (int)batch; i++) {
        int status;
        if (is_text) {
            json_t *s = json_array_get(flat, (size_t)i);
            char path[48];
            snprintf(path, sizeof path, "inputs[0].data[%d]", i);
            if (!json_is_string(s)) {
                http_request_respond_error(r, 400, "%s: expected a string (BYTES), got %s", path,
                                           value_kind_name(s));
                goto out;
            }
            status = api_input_text(sm, req, i, json_string_value(s), json_string_length(s), &rules,
                                    path, err, sizeof err);
        } else {
            size_t len = (size_t)shape.dims[1];
            status = api_input_ids(sm, req, i, flat, (size_t)i * len, len, &rules, "inputs[0].data",
                                   (size_t)i * len, err, sizeof err);
        }
        if (status != 0) {
            http_request_respond_error(r, status, "%s", err);
            goto out;
        }
    }
    api_submit(ctx, r, req, finish_infer, job, job_free);
    req = NULL;
    job = NULL;
out:
    job_free(job);
    infer_request_release(req);
    json_decref(flat);
    json_decref(body);
    served_model_release(sm);
}
