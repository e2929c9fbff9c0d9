/* oip_infer: inference on the KServe Open Inference Protocol v2 route
 * /v2/models/{name}[/versions/{version}]/infer, so that KServe and Triton
 * clients work unchanged. It takes one input tensor, either text as BYTES
 * "text" with shape [batch] or [batch, 1], or token ids as INT64 (or INT32)
 * "input_ids" with shape [batch, len] (0 = padding), and returns FP32
 * "probabilities" [batch, C] for classifiers and "embeddings" [batch, D]
 * for encoders (either may be asked for with "outputs"). The request "id" is
 * echoed. Tensors travel in JSON or as binary tensor data (oip_binary.h):
 * an input with "parameters": {"binary_data_size": N}, an output asked for
 * with "parameters": {"binary_data": true} (or every output with the
 * request's "binary_data_output": true). "probabilities" with "parameters":
 * {"classification": k} answers the top k classes instead (oip_classes.h).
 * "parameters" objects are accepted wherever the protocol allows them;
 * parameters we do not know are ignored.
 * A model route: a pure parser and an answer, run by the frame (api_frame.c). */
#include "api.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_fields.h"
#include "api_frame.h"
#include "api_inputs.h"
#include "oip_binary.h"
#include "oip_classes.h"
#include "oip_version.h"

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

/* ---- infer: the request's options ------------------------------------------------- */

typedef struct {
    char *id; /* owned; NULL when the request had none */
    bool want_probs;
    bool want_embeddings;
    bool probs_binary; /* sent as binary tensor data */
    bool embeddings_binary;
    int probs_classes; /* > 0: the top classes instead (the classification extension) */
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

/* The request's options besides its tensors. */
typedef struct {
    bool truncate;
    bool binary_output; /* "binary_data_output": every output in binary unless it says */
} infer_options;

/* The optional "parameters" object: "truncate" and "binary_data_output";
 * other parameters (Triton's "priority", "timeout", ...) are ignored. Also
 * "model_name" and "model_version", which Triton's examples put in the body:
 * strings, otherwise ignored (the path names the model). */
static bool options_get(json_t *body, infer_options *opt, api_verdict *v)
{
    json_t *name = json_object_get(body, "model_name");
    json_t *version = json_object_get(body, "model_version");
    if ((name && !api_expect(name, API_KIND_STRING, "model_name", "a string", v)) ||
        (version && !api_expect(version, API_KIND_STRING, "model_version", "a string", v)))
        return false;
    json_t *params = json_object_get(body, "parameters");
    if (!params)
        return true;
    return api_expect(params, API_KIND_OBJECT, "parameters", "an object", v) &&
           api_optional_bool(params, "truncate", "parameters.truncate", &opt->truncate, v) &&
           api_optional_bool(params, "binary_data_output", "parameters.binary_data_output",
                             &opt->binary_output, v);
}

/* Output k's "parameters": whether it goes in binary (*binary keeps the
 * request's default unless "binary_data" says) and, for probabilities, how
 * many top classes to answer instead of the raw tensor ("classification",
 * Triton's classification extension; *classes stays 0 without it). */
static bool output_parameters(json_t *o, size_t k, bool *binary, int *classes, api_verdict *v)
{
    json_t *params = json_object_get(o, "parameters");
    if (!params)
        return true;
    char path[64];
    snprintf(path, sizeof path, "outputs[%zu].parameters", k);
    if (!api_expect(params, API_KIND_OBJECT, path, "an object", v))
        return false;
    json_t *count = json_object_get(params, "classification");
    if (count && !classes) {
        api_fail(v, 400, "%s.classification: only 'probabilities' can be answered as classes",
                 path);
        return false;
    }
    if (count && (!json_is_integer(count) || json_integer_value(count) < 1 ||
                  json_integer_value(count) > INT32_MAX)) {
        api_fail(v, 400, "%s.classification: expected an integer >= 1 (how many classes)", path);
        return false;
    }
    if (count)
        *classes = (int)json_integer_value(count);
    char sub[96];
    snprintf(sub, sizeof sub, "%s.binary_data", path);
    return api_optional_bool(params, "binary_data", sub, binary, v);
}

/* The outputs asked for; by default probabilities (classifiers) or
 * embeddings (encoders), in binary when binary_output. */
static bool outputs_get(json_t *body, bool classifier, bool binary_output, oip_job *job,
                        api_verdict *v)
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
        bool binary = binary_output;
        if (strcmp(nm, "embeddings") == 0) {
            job->want_embeddings = true;
            if (!output_parameters(o, k, &binary, NULL, v))
                return false;
            job->embeddings_binary = binary;
        } else if (strcmp(nm, "probabilities") == 0 && classifier) {
            job->want_probs = true;
            if (!output_parameters(o, k, &binary, &job->probs_classes, v))
                return false;
            job->probs_binary = binary;
        } else {
            api_fail(v, 400, "outputs[%zu].name: unknown output '%.64s' (expected %s)", k, nm,
                     classifier ? "'probabilities' or 'embeddings'" : "'embeddings'");
            return false;
        }
    }
    if (!job->want_probs && !job->want_embeddings) {
        job->want_probs = classifier;
        job->want_embeddings = !classifier;
        job->probs_binary = job->embeddings_binary = binary_output;
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
 * and its data: flattened row-major from JSON, or the binary bytes. */
typedef struct {
    bool is_text;
    int width; /* input_ids: bytes per binary element (8 INT64, 4 INT32) */
    tensor_shape shape;
    char shape_str[128];      /* e.g. "[2,3]", for messages */
    json_t *flat;             /* owned: shape.elements JSON values, or NULL when binary */
    const unsigned char *raw; /* binary data (in the body), or NULL */
    size_t raw_bytes;
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
    out->width = out->is_text ? 0 : strcmp(dtype, "INT64") == 0 ? 8 : 4;
    return true;
}

/* The tensor's "parameters".binary_data_size into *size (-1 when absent). */
static bool binary_size_get(json_t *t, json_int_t *size, api_verdict *v)
{
    *size = -1;
    json_t *params = json_object_get(t, "parameters");
    if (!params)
        return true;
    if (!api_expect(params, API_KIND_OBJECT, "inputs[0].parameters", "an object", v))
        return false;
    json_t *n = json_object_get(params, "binary_data_size");
    if (!n)
        return true;
    if (!json_is_integer(n) || json_integer_value(n) < 0) {
        api_fail(v, 400, "inputs[0].parameters.binary_data_size: expected an integer >= 0");
        return false;
    }
    *size = json_integer_value(n);
    return true;
}

/* The tensor's data from the binary tail: binary_data_size bytes, which for
 * input_ids must be exactly the shape's elements (BYTES elements are
 * checked as they are read). */
static bool binary_data(json_t *t, json_int_t size, oip_binary_tail *tail, oip_tensor *out,
                        api_verdict *v)
{
    if (json_object_get(t, "data")) {
        api_fail(v, 400, "inputs[0]: give either 'data' or parameters.binary_data_size, not both");
        return false;
    }
    out->raw = oip_binary_take(tail, (size_t)size, "inputs[0]", v);
    if (!out->raw)
        return false;
    out->raw_bytes = (size_t)size;
    size_t need = out->shape.elements * (size_t)out->width;
    if (!out->is_text && out->raw_bytes != need) {
        api_fail(v, 400, "inputs[0]: shape %s of %s needs %zu bytes, but binary_data_size is %zu",
                 out->shape_str, out->width == 8 ? "INT64" : "INT32", need, out->raw_bytes);
        return false;
    }
    return true;
}

/* The tensor's data in JSON ("data", flat or nested). */
static bool json_data(json_t *t, oip_tensor *out, api_verdict *v)
{
    json_t *data = json_object_get(t, "data");
    if (!api_expect(data, API_KIND_ARRAY, "inputs[0].data", "an array", v))
        return false;
    out->flat = data_flatten(data, v);
    if (!out->flat)
        return false;
    if (json_array_size(out->flat) != out->shape.elements) {
        api_fail(v, 400, "inputs[0]: shape %s holds %zu elements but data has %zu", out->shape_str,
                 out->shape.elements, json_array_size(out->flat));
        return false;
    }
    return true;
}

/* The tensor's shape (of the right rank for its kind) and its data. */
static bool tensor_data(json_t *t, oip_binary_tail *tail, oip_tensor *out, api_verdict *v)
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
    json_int_t binary_size;
    if (!binary_size_get(t, &binary_size, v))
        return false;
    if (binary_size >= 0 ? !binary_data(t, binary_size, tail, out, v) : !json_data(t, out, v))
        return false;
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

/* "inputs": exactly one tensor. On success out->flat is a new reference (or
 * out->raw points into the tail); every byte of the tail is accounted for. */
static bool tensor_get(json_t *body, oip_binary_tail *tail, oip_tensor *out, api_verdict *v)
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
           tensor_data(t, tail, out, v) && oip_binary_all_taken(tail, v) == 0;
}

/* Item i of req from the text of row i: a JSON string, or the next BYTES
 * element of the binary data (rd). */
static void text_item(const api_call *call, infer_request *req, int i, const oip_tensor *t,
                      oip_bytes_reader *rd, const api_input_rules *rules, api_verdict *v)
{
    char path[48];
    snprintf(path, sizeof path, "inputs[0].data[%d]", i);
    if (t->raw) {
        const char *s;
        size_t len;
        if (oip_bytes_next(rd, &s, &len, "inputs[0]", v))
            api_input_text(call->sm, req, i, s, len, rules, path, v);
        return;
    }
    json_t *s = json_array_get(t->flat, (size_t)i);
    if (api_expect(s, API_KIND_STRING, path, "a string (BYTES)", v))
        api_input_text(call->sm, req, i, json_string_value(s), json_string_length(s), rules, path,
                       v);
}

/* Item i of req from row i of the tensor. */
static bool tensor_items_fill(const api_call *call, infer_request *req, const oip_tensor *t,
                              const api_input_rules *rules, api_verdict *v)
{
    oip_bytes_reader rd = {.data = t->raw, .size = t->raw_bytes};
    size_t len = t->is_text ? 0 : (size_t)t->shape.dims[1];
    for (int i = 0; i < req->n_items; i++) {
        if (t->is_text)
            text_item(call, req, i, t, &rd, rules, v);
        else if (t->raw)
            api_input_ids_le(call->sm, req, i, t->raw + (size_t)i * len * (size_t)t->width,
                             t->width, len, rules, "inputs[0].data", (size_t)i * len, v);
        else
            api_input_ids(call->sm, req, i, t->flat, (size_t)i * len, len, rules, "inputs[0].data",
                          (size_t)i * len, v);
        if (v->status != 0)
            return false;
    }
    return !(t->is_text && t->raw) || oip_bytes_all_read(&rd, "inputs[0]", v) == 0;
}

/* ---- infer -------------------------------------------------------------------------- */

/* The path's version, before the body is read. */
static int infer_check(const api_call *call, api_verdict *v)
{
    return oip_version_check(call->sm->name, call->param, v);
}

/* With Inference-Header-Content-Length the body is that much JSON, then
 * binary tensor data. */
static int infer_json_part(const api_call *call, size_t body_bytes, size_t *json_bytes,
                           api_verdict *v)
{
    if (!call->inference_header_length)
        return 0;
    if (oip_binary_content_type(call->content_type, v) != 0)
        return v->status;
    return oip_binary_header_length(call->inference_header_length, body_bytes, json_bytes, v);
}

/* {"id", "parameters", "inputs": [one tensor], "outputs"} (and Triton's
 * "model_name", "model_version"), binary tensor data in call->tail. */
static int infer_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {"id",         "parameters",    "inputs", "outputs",
                                       "model_name", "model_version", NULL};
    api_verdict *v = &out->verdict;
    oip_job *job = out->job;
    bool classifier = model_has_classifier(call->sm->model);
    infer_options opt = {.truncate = true};
    oip_binary_tail tail = {.data = (const unsigned char *)call->tail, .size = call->tail_bytes};
    oip_tensor tensor = {0};
    if (api_keys_allowed(body, "", keys, v) && id_get(body, job, v) && options_get(body, &opt, v) &&
        outputs_get(body, classifier, opt.binary_output, job, v) &&
        tensor_get(body, &tail, &tensor, v)) {
        int batch = (int)tensor.shape.dims[0];
        out->req = api_request_new(call, classifier ? INFER_CLASSIFY : INFER_EMBED, batch, 0, v);
        api_input_rules rules = {.truncate = opt.truncate, .news = false};
        if (out->req)
            tensor_items_fill(call, out->req, &tensor, &rules, v);
    }
    json_decref(tensor.flat);
    return v->status;
}

/* One output's JSON: its data inline (`strings` for BYTES), or its
 * binary_data_size. */
static json_t *output_json(const oip_output *o, json_t *strings)
{
    json_t *t = json_pack("{s:s,s:s,s:[i,i]}", "name", o->name, "datatype",
                          o->data ? "FP32" : "BYTES", "shape", o->rows, o->cols);
    json_t *extra = o->binary
                        ? json_pack("{s:I}", "binary_data_size", (json_int_t)oip_output_bytes(o))
                    : o->data ? api_json_floats(o->data, o->rows * o->cols)
                              : json_incref(strings);
    if (!t || !extra || json_object_set_new(t, o->binary ? "parameters" : "data", extra) != 0) {
        json_decref(t);
        return NULL;
    }
    return t;
}

/* The answer: JSON, or with binary outputs the JSON then their bytes. */
static void answer(http_request *r, json_t *resp, const oip_output *outputs, int n)
{
    bool binary = false;
    for (int k = 0; k < n; k++)
        binary = binary || outputs[k].binary;
    char *body = NULL;
    size_t body_bytes = 0, json_bytes = 0;
    if (!binary || !resp ||
        oip_binary_body(resp, outputs, n, &body, &body_bytes, &json_bytes) != 0) {
        http_request_respond_json(r, 200, binary ? NULL : resp); /* NULL: out of memory */
        if (binary)
            json_decref(resp);
        return;
    }
    json_decref(resp);
    char length[24];
    snprintf(length, sizeof length, "%zu", json_bytes);
    http_request_add_header(r, OIP_HEADER_LENGTH, length);
    http_request_respond_owned(r, 200, "application/octet-stream", body, body_bytes);
}

/* The probabilities output: the raw tensor, or with "classification" the
 * top classes as BYTES (their serialization in *bytes, to free, and their
 * strings in *strings). False when out of memory. */
static bool probs_output(const infer_request *req, const oip_job *job, oip_output *o, char **bytes,
                         json_t **strings)
{
    *o = (oip_output){.name = "probabilities",
                      .rows = req->n_items,
                      .cols = req->n_labels,
                      .binary = job->probs_binary,
                      .data = req->probs};
    if (job->probs_classes == 0)
        return true;
    int k = job->probs_classes < req->n_labels ? job->probs_classes : req->n_labels;
    o->data = NULL;
    o->cols = k;
    if (oip_classes(req->probs, req->n_items, req->n_labels, k, req->sm->model->config.id2label,
                    bytes, &o->bytes_size, strings) != 0)
        return false;
    o->bytes = *bytes;
    return true;
}

static void finish_infer(http_request *r, infer_request *req, void *vjob)
{
    oip_job *job = vjob;
    oip_output outputs[2];
    int n = 0;
    char *class_bytes = NULL;
    json_t *class_strings = NULL;
    bool ok = true;
    if (job->want_probs)
        ok = probs_output(req, job, &outputs[n++], &class_bytes, &class_strings);
    if (job->want_embeddings)
        outputs[n++] = (oip_output){.name = "embeddings",
                                    .rows = req->n_items,
                                    .cols = req->dim,
                                    .binary = job->embeddings_binary,
                                    .data = req->vectors};
    json_t *list = ok ? json_array() : NULL;
    for (int k = 0; k < n && list; k++) {
        if (json_array_append_new(list, output_json(&outputs[k], class_strings)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    json_t *resp = list ? json_pack("{s:s,s:s,s:o}", "model_name", req->sm->name, "model_version",
                                    OIP_MODEL_VERSION, "outputs", list)
                        : NULL;
    if (resp && job->id && json_object_set_new(resp, "id", json_string(job->id)) != 0) {
        json_decref(resp);
        resp = NULL;
    }
    if (!ok)
        n = 0; /* resp is NULL: a bare 500 */
    answer(r, resp, outputs, n);
    json_decref(class_strings);
    free(class_bytes);
}

const api_model_route oip_infer = {.check = infer_check,
                                   .json_part = infer_json_part,
                                   .parse = infer_parse,
                                   .finish = finish_infer,
                                   .job_bytes = sizeof(oip_job),
                                   .job_release = job_release};
