/* test_api_inputs: one API input -> one infer_request item, on a tiny model
 * (vocab 40, 12 positions): texts, ids (padding trimmed, range checks,
 * truncation or 422), news ids, wrong shapes, every message exactly; and the
 * error shape of api_errors (types by status, invalid UTF-8 in a message). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api_errors.h"
#include "api_inputs.h"
#include "model_registry.h"
#include "tiny_model.h"

typedef struct {
    char *cls_dir, *rec_dir;
    model_registry *reg;
    served_model *cls, *rec;
} fix;

static int setup(void **state)
{
    fix *f = calloc(1, sizeof *f);
    f->cls_dir = tiny_model_dir(false, 1);
    f->rec_dir = tiny_model_dir(true, 2);
    f->reg = model_registry_new(1, NULL);
    model_spec specs[] = {
        {.name = "cls", .path = f->cls_dir, .max_batch_size = 8, .max_batch_tokens = 96},
        {.name = "rec", .path = f->rec_dir, .max_batch_size = 8, .max_batch_tokens = 96},
    };
    char err[512];
    if (model_registry_load(f->reg, specs, 2, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    f->cls = model_registry_get(f->reg, "cls");
    f->rec = model_registry_get(f->reg, "rec");
    *state = f;
    return f->cls && f->rec ? 0 : -1;
}

static int teardown(void **state)
{
    fix *f = *state;
    served_model_release(f->cls);
    served_model_release(f->rec);
    model_registry_free(f->reg);
    tiny_remove(f->cls_dir);
    tiny_remove(f->rec_dir);
    free(f);
    return 0;
}

/* Parses `json` as input 0 of a fresh one-item request; returns the status
 * and leaves the message in err and the request in *out (release it). */
static int parse(served_model *sm, infer_task task, const char *json, bool truncate, bool news,
                 char *err, size_t cap, infer_request **out)
{
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    assert_non_null(j);
    infer_request *req = infer_request_new(sm, task, news ? 2 : 1, news ? 1 : 0);
    assert_non_null(req);
    api_input_rules rules = {.truncate = truncate, .news = news};
    err[0] = 0;
    api_verdict v = {0};
    int status = api_input_parse(sm, req, 0, j, &rules, "inputs[0]", &v);
    assert_int_equal(status, v.status);
    snprintf(err, cap, "%s", v.message);
    json_decref(j);
    *out = req;
    return status;
}

static void expect(served_model *sm, const char *json, bool truncate, int status,
                   const char *message)
{
    char err[512];
    infer_request *req;
    assert_int_equal(parse(sm, INFER_CLASSIFY, json, truncate, false, err, sizeof err, &req),
                     status);
    assert_string_equal(err, message);
    infer_request_release(req);
}

static void test_text_is_tokenized(void **state)
{
    fix *f = *state;
    char err[256];
    infer_request *req;
    assert_int_equal(parse(f->cls, INFER_CLASSIFY, "\"w2 W3, w39 unknownword\"", true, false, err,
                           sizeof err, &req),
                     0);
    /* word tokenizer: w2 w3 , w39 [UNK] */
    assert_int_equal(req->n_ids[0], 5);
    const int32_t *ids = infer_request_item_ids(req, 0);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 1); /* "," is not in the vocab */
    assert_int_equal(ids[3], 39);
    assert_int_equal(ids[4], 1);
    infer_request_release(req);
}

static void test_long_text_truncates_or_422(void **state)
{
    fix *f = *state;
    const char *text = "\"w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2\""; /* 13 > 12 */
    char err[256];
    infer_request *req;
    assert_int_equal(parse(f->cls, INFER_CLASSIFY, text, true, false, err, sizeof err, &req), 0);
    assert_int_equal(req->n_ids[0], 12);
    infer_request_release(req);
    expect(f->cls, text, false, 422,
           "inputs[0]: text is longer than the model's maximum of 12 tokens and truncate is false");
    /* exactly the maximum is fine */
    expect(f->cls, "\"w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2\"", false, 0, "");
}

static void test_ids_are_validated(void **state)
{
    fix *f = *state;
    expect(f->cls, "{\"input_ids\": [2, 3, 40]}", true, 400,
           "inputs[0].input_ids[2]: id 40 >= vocab_size 40");
    expect(f->cls, "{\"input_ids\": [2, -7]}", true, 400,
           "inputs[0].input_ids[1]: id -7 is negative");
    expect(f->cls, "{\"input_ids\": [2, 3.0]}", true, 400,
           "inputs[0].input_ids[1]: expected an integer id, got number");
    expect(f->cls, "{\"input_ids\": [\"2\"]}", true, 400,
           "inputs[0].input_ids[0]: expected an integer id, got string");
    expect(f->cls, "{\"input_ids\": {\"a\": 1}}", true, 400,
           "inputs[0].input_ids: expected an array of integers, got object");
    expect(f->cls, "{\"input_ids\": [9223372036854775807]}", true, 400,
           "inputs[0].input_ids[0]: id 9223372036854775807 >= vocab_size 40");
}

static void test_ids_padding_and_length(void **state)
{
    fix *f = *state;
    char err[256];
    infer_request *req;
    /* trailing padding is dropped and does not count towards the maximum */
    assert_int_equal(parse(f->cls, INFER_CLASSIFY,
                           "{\"input_ids\": [0, 5, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}",
                           false, false, err, sizeof err, &req),
                     0);
    assert_int_equal(req->n_ids[0], 4);
    infer_request_release(req);
    /* empty is allowed (pools to the zero vector) */
    assert_int_equal(
        parse(f->cls, INFER_CLASSIFY, "{\"input_ids\": []}", false, false, err, sizeof err, &req),
        0);
    assert_int_equal(req->n_ids[0], 0);
    infer_request_release(req);
    const char *long_ids = "{\"input_ids\": [5,5,5,5,5,5,5,5,5,5,5,5,0,0]}"; /* 12 + padding */
    expect(f->cls, long_ids, false, 0, "");
    const char *too_long = "{\"input_ids\": [5,5,5,5,5,5,5,5,5,5,5,5,5,7]}"; /* 14 */
    expect(
        f->cls, too_long, false, 422,
        "inputs[0].input_ids: 14 ids, more than the model's maximum of 12 and truncate is false");
    assert_int_equal(parse(f->cls, INFER_CLASSIFY, too_long, true, false, err, sizeof err, &req),
                     0);
    assert_int_equal(req->n_ids[0], 12);
    infer_request_release(req);
}

static void test_wrong_shapes(void **state)
{
    fix *f = *state;
    expect(f->cls, "7", true, 400,
           "inputs[0]: expected a string or an object with 'input_ids', got integer");
    expect(f->cls, "[1, 2]", true, 400,
           "inputs[0]: expected a string or an object with 'input_ids', got array");
    expect(f->cls, "{}", true, 400, "inputs[0]: expected a key 'input_ids'");
    expect(f->cls, "{\"input_ids\": [1], \"x\": 1}", true, 400,
           "inputs[0]: unknown key 'x' (expected 'input_ids')");
    expect(f->cls, "{\"news_id\": \"N1\"}", true, 400,
           "inputs[0]: unknown key 'news_id' (expected 'input_ids')");
}

static void test_news_inputs(void **state)
{
    fix *f = *state;
    char err[256];
    infer_request *req;
    assert_int_equal(
        parse(f->rec, INFER_RECOMMEND, "{\"news_id\": \"N1\"}", true, true, err, sizeof err, &req),
        400);
    assert_string_equal(err, "inputs[0].news_id: model 'rec' has no news catalog");
    infer_request_release(req);
    assert_int_equal(
        parse(f->rec, INFER_RECOMMEND, "{\"news_id\": 5}", true, true, err, sizeof err, &req), 400);
    assert_string_equal(err, "inputs[0].news_id: expected a string, got integer");
    infer_request_release(req);
    assert_int_equal(parse(f->rec, INFER_RECOMMEND, "{\"news_id\": \"N1\", \"input_ids\": [2]}",
                           true, true, err, sizeof err, &req),
                     400);
    assert_string_equal(err, "inputs[0]: give either 'input_ids' or 'news_id', not both");
    infer_request_release(req);
    assert_int_equal(parse(f->rec, INFER_RECOMMEND, "{}", true, true, err, sizeof err, &req), 400);
    assert_string_equal(err, "inputs[0]: expected a key 'input_ids' or 'news_id'");
    infer_request_release(req);
    assert_int_equal(parse(f->rec, INFER_RECOMMEND, "\"w4 w5\"", true, true, err, sizeof err, &req),
                     0);
    assert_int_equal(req->n_ids[0], 2);
    infer_request_release(req);
}

static void test_error_shape(void **state)
{
    (void)state;
    const int codes[] = {400, 401, 404, 405, 413, 415, 422, 429, 500, 503, 504, 418};
    const char *types[] = {"invalid_argument",     "unauthenticated",    "not_found",
                           "method_not_allowed",   "payload_too_large",  "unsupported_media_type",
                           "unprocessable_entity", "resource_exhausted", "internal",
                           "unavailable",          "deadline_exceeded",  "error"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        json_t *e = api_error_json(codes[i], "m");
        char *s = json_dumps(e, JSON_COMPACT);
        char want[160];
        snprintf(want, sizeof want, "{\"error\":{\"code\":%d,\"type\":\"%s\",\"message\":\"m\"}}",
                 codes[i], types[i]);
        assert_string_equal(s, want);
        free(s);
        json_decref(e);
    }
    /* a message with invalid UTF-8 (e.g. a quoted path segment) is still sent */
    json_t *e = api_error_json(404, "model 'a\xff\xfe' not found");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "error"), "message")),
                        "model 'a?"
                        "?' not found");
    json_decref(e);

    /* Under /v2 the Open Inference Protocol's shape: "error" is the message. */
    static const char oip[] = "{\"error\":\"model 'a?' not found\",\"code\":404,"
                              "\"type\":\"not_found\"}";
    static const char api[] = "{\"error\":{\"code\":404,\"type\":\"not_found\",\"message\":"
                              "\"model 'a?' not found\"}}";
    const struct {
        const char *path, *want;
    } by_path[] = {{"/v2", oip},         {"/v2/", oip},       {"/v2/models/m/infer", oip},
                   {"/v2/nowhere", oip}, {"/v1/models", api}, {"/v2x", api},
                   {"/v20/models", api}, {"/", api},          {"", api},
                   {"/healthz", api},    {"v2", api}};
    static const char tei[] = "{\"error\":\"model 'a?' not found\",\"error_type\":"
                              "\"Validation\"}";
    const struct {
        const char *path, *want;
    } tei_paths[] = {
        {"/tei", tei}, {"/tei/m/embed", tei}, {"/tei/m", tei}, {"/teix", api}, {"/v1/tei", api}};
    for (size_t i = 0; i < sizeof tei_paths / sizeof tei_paths[0]; i++) {
        e = api_error_json_for_path(tei_paths[i].path, 404, "model 'a\xff' not found");
        char *s = json_dumps(e, JSON_COMPACT);
        assert_string_equal(s, tei_paths[i].want);
        free(s);
        json_decref(e);
    }
    static const char ts[] = "{\"code\":404,\"type\":\"ModelNotFoundException\",\"message\":"
                             "\"model 'a?' not found\"}";
    const struct {
        const char *path, *want;
    } ts_paths[] = {{"/predictions", ts}, {"/predictions/m", ts},  {"/predictions/m/1", ts},
                    {"/ping", ts},        {"/pings", api},         {"/predictionsx", api},
                    {"/ping/x", api},     {"/v1/predictions", api}};
    for (size_t i = 0; i < sizeof ts_paths / sizeof ts_paths[0]; i++) {
        e = api_error_json_for_path(ts_paths[i].path, 404, "model 'a\xff' not found");
        char *s = json_dumps(e, JSON_COMPACT);
        assert_string_equal(s, ts_paths[i].want);
        free(s);
        json_decref(e);
    }
    const struct {
        int status;
        const char *type;
    } ts_types[] = {{400, "BadRequestException"},         {401, "UnauthorizedException"},
                    {403, "UnauthorizedException"},       {404, "ModelNotFoundException"},
                    {405, "MethodNotAllowedException"},   {413, "BadRequestException"},
                    {429, "ServiceUnavailableException"}, {503, "ServiceUnavailableException"},
                    {504, "RequestTimeoutException"},     {500, "InternalServerException"},
                    {507, "InternalServerException"}};
    for (size_t i = 0; i < sizeof ts_types / sizeof ts_types[0]; i++)
        assert_string_equal(api_error_torchserve_type(ts_types[i].status), ts_types[i].type);
    assert_string_equal(api_error_tei_type(429), "Overloaded");
    assert_string_equal(api_error_tei_type(503), "Unhealthy");
    assert_string_equal(api_error_tei_type(500), "Backend");
    assert_string_equal(api_error_tei_type(413), "Validation");
    for (size_t i = 0; i < sizeof by_path / sizeof by_path[0]; i++) {
        assert_int_equal(api_error_path_is_oip(by_path[i].path), by_path[i].want == oip);
        e = api_error_json_for_path(by_path[i].path, 404, "model 'a\xff' not found");
        char *s = json_dumps(e, JSON_COMPACT);
        assert_string_equal(s, by_path[i].want);
        free(s);
        json_decref(e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_is_tokenized), cmocka_unit_test(test_long_text_truncates_or_422),
        cmocka_unit_test(test_ids_are_validated), cmocka_unit_test(test_ids_padding_and_length),
        cmocka_unit_test(test_wrong_shapes),      cmocka_unit_test(test_news_inputs),
        cmocka_unit_test(test_error_shape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
