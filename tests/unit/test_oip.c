/* test_oip: the Open Inference Protocol infer parser, called directly (no
 * HTTP), on tiny models: every error path with its exact status and message,
 * what an accepted request holds (task, items, outputs asked for, the echoed
 * id), and out of memory: with jansson's allocator failing at each of its
 * allocations in turn, a valid request is either built or refused with 503
 * "out of memory", never a 400 (data_flatten answered 400 before, and a
 * failure while the body was read could pass for a syntax error). Binary
 * tensor data (JSON, then raw bytes, with Inference-Header-Content-Length)
 * and the version check; the integration suite (test_oip_binary.py) has
 * every binary size error against the daemon. */
#include "api_parse_fixture.h"

#define TEXT_TENSOR "{\"name\": \"text\", \"datatype\": \"BYTES\", "
#define IDS_TENSOR "{\"name\": \"input_ids\", \"datatype\": \"INT64\", "

static void fails(served_model *sm, const char *body, int status, const char *message)
{
    parse_fails(&oip_infer, sm, NULL, body, status, message);
}

/* The body {"inputs": [<tensor>]}. */
static void tensor_fails(served_model *sm, const char *tensor, int status, const char *message)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"inputs\": [%s]}", tensor);
    fails(sm, body, status, message);
}

static void test_options_errors(void **state)
{
    parse_fixture *f = *state;
    const char *t = "\"inputs\": [" TEXT_TENSOR "\"shape\": [1], \"data\": [\"w2\"]}]";
    char body[512];
#define WITH(extra) (snprintf(body, sizeof body, "{%s, %s}", t, extra), body)
    fails(f->cls, WITH("\"model\": \"x\""), 400,
          "unknown key 'model' (allowed: id, parameters, inputs, outputs, model_name, "
          "model_version)");
    fails(f->cls, WITH("\"id\": 7"), 400, "id: expected a string, got integer");
    fails(f->cls, WITH("\"parameters\": []"), 400, "parameters: expected an object, got array");
    fails(f->cls, WITH("\"parameters\": {\"truncate\": \"yes\"}"), 400,
          "parameters.truncate: expected a boolean, got string");
    fails(f->cls, WITH("\"outputs\": {}"), 400, "outputs: expected an array, got object");
    fails(f->cls, WITH("\"outputs\": [{\"name\": \"embeddings\"}, \"probabilities\"]"), 400,
          "outputs[1]: expected an object with a string 'name'");
    fails(f->cls, WITH("\"outputs\": [{\"name\": 5}]"), 400,
          "outputs[0]: expected an object with a string 'name'");
    fails(f->cls, WITH("\"outputs\": [{\"name\": \"logits\"}]"), 400,
          "outputs[0].name: unknown output 'logits' (expected 'probabilities' or 'embeddings')");
    fails(f->rec, WITH("\"outputs\": [{\"name\": \"probabilities\"}]"), 400,
          "outputs[0].name: unknown output 'probabilities' (expected 'embeddings')");
    fails(f->cls, WITH("\"outputs\": [{\"name\": \"embeddings\", \"parameters\": []}]"), 400,
          "outputs[0].parameters: expected an object, got array");
    fails(f->cls,
          WITH("\"outputs\": [{\"name\": \"embeddings\", \"parameters\": {\"classification\": "
               "1}}]"),
          400,
          "outputs[0].parameters.classification: only 'probabilities' can be answered as "
          "classes");
    fails(f->cls,
          WITH("\"outputs\": [{\"name\": \"probabilities\", \"parameters\": "
               "{\"classification\": \"2\"}}]"),
          400, "outputs[0].parameters.classification: expected an integer >= 1 (how many classes)");
    fails(f->cls,
          WITH("\"outputs\": [{\"name\": \"probabilities\", \"parameters\": "
               "{\"classification\": 4294967296}}]"),
          400, "outputs[0].parameters.classification: expected an integer >= 1 (how many classes)");
    fails(f->cls,
          WITH("\"outputs\": [{\"name\": \"probabilities\", \"parameters\": {\"binary_data\": "
               "1}}]"),
          400, "outputs[0].parameters.binary_data: expected a boolean, got integer");
    fails(f->cls, WITH("\"parameters\": {\"binary_data_output\": \"yes\"}"), 400,
          "parameters.binary_data_output: expected a boolean, got string");
    fails(f->cls, WITH("\"model_version\": 1"), 400,
          "model_version: expected a string, got integer");
#undef WITH
}

static void test_tensor_errors(void **state)
{
    parse_fixture *f = *state;
    served_model *c = f->cls;
    fails(c, "{\"id\": \"a\"}", 400, "missing key 'inputs'");
    fails(c, "{\"inputs\": {}}", 400, "inputs: expected an array of tensors, got object");
    fails(c, "{\"inputs\": []}", 400,
          "inputs: expected exactly one tensor ('text' or 'input_ids'), got 0");
    fails(c, "{\"inputs\": [{}, {}]}", 400,
          "inputs: expected exactly one tensor ('text' or 'input_ids'), got 2");
    tensor_fails(c, "3", 400, "inputs[0]: expected a tensor object, got integer");
    tensor_fails(c, TEXT_TENSOR "\"shape\": [1], \"data\": [\"w2\"], \"x\": 1}", 400,
                 "inputs[0]: unknown key 'x' (allowed: name, shape, datatype, data, parameters)");
    tensor_fails(c, "{\"datatype\": \"BYTES\"}", 400,
                 "inputs[0].name: expected a string, got nothing");
    tensor_fails(c, "{\"name\": 1, \"datatype\": \"BYTES\"}", 400,
                 "inputs[0].name: expected a string, got integer");
    tensor_fails(c, "{\"name\": \"text\"}", 400,
                 "inputs[0].datatype: expected a string, got nothing");
    tensor_fails(c, "{\"name\": \"ids\", \"datatype\": \"INT64\"}", 400,
                 "inputs[0].name: unknown input 'ids' (expected 'text' or 'input_ids')");
    tensor_fails(c, "{\"name\": \"text\", \"datatype\": \"STRING\"}", 400,
                 "inputs[0].datatype: unknown datatype 'STRING'");
    tensor_fails(c, "{\"name\": \"text\", \"datatype\": \"INT64\"}", 400,
                 "inputs[0]: tensor 'text' must be BYTES, got INT64");
    tensor_fails(c, "{\"name\": \"input_ids\", \"datatype\": \"FP32\"}", 400,
                 "inputs[0]: tensor 'input_ids' must be INT64 or INT32, got FP32");
}

static void test_shape_and_data_errors(void **state)
{
    parse_fixture *f = *state;
    served_model *c = f->cls;
    tensor_fails(c, TEXT_TENSOR "\"data\": [\"w2\"]}", 400,
                 "inputs[0].shape: expected an array of integers, got nothing");
    tensor_fails(c, TEXT_TENSOR "\"shape\": 1, \"data\": [\"w2\"]}", 400,
                 "inputs[0].shape: expected an array of integers, got integer");
    tensor_fails(c, TEXT_TENSOR "\"shape\": [], \"data\": []}", 400,
                 "inputs[0].shape: expected 1 to 8 dimensions, got 0");
    tensor_fails(c, TEXT_TENSOR "\"shape\": [1,1,1,1,1,1,1,1,1], \"data\": []}", 400,
                 "inputs[0].shape: expected 1 to 8 dimensions, got 9");
    tensor_fails(c, IDS_TENSOR "\"shape\": [1, \"2\"], \"data\": []}", 400,
                 "inputs[0].shape[1]: expected an integer, got string");
    tensor_fails(c, IDS_TENSOR "\"shape\": [1, -2], \"data\": []}", 400,
                 "inputs[0].shape[1]: -2 is negative");
    tensor_fails(c, IDS_TENSOR "\"shape\": [65536, 65536], \"data\": []}", 400,
                 "inputs[0].shape: the element count overflows (more than 2147483647)");
    tensor_fails(c, TEXT_TENSOR "\"shape\": [1, 2], \"data\": [\"w2\", \"w3\"]}", 400,
                 "inputs[0].shape: 'text' needs [batch] or [batch, 1], got [1,2]");
    tensor_fails(c, IDS_TENSOR "\"shape\": [3], \"data\": [1, 2, 3]}", 400,
                 "inputs[0].shape: 'input_ids' needs [batch, len], got [3]");
    tensor_fails(c, TEXT_TENSOR "\"shape\": [1]}", 400,
                 "inputs[0].data: expected an array, got nothing");
    tensor_fails(c, TEXT_TENSOR "\"shape\": [1], \"data\": \"w2\"}", 400,
                 "inputs[0].data: expected an array, got string");
    tensor_fails(c, IDS_TENSOR "\"shape\": [1, 1], \"data\": [[2], [[3]]]}", 400,
                 "inputs[0].data[1][0]: nested more deeply than the shape allows");
    tensor_fails(c, IDS_TENSOR "\"shape\": [2, 3], \"data\": [1, 2, 3, 4, 5]}", 400,
                 "inputs[0]: shape [2,3] holds 6 elements but data has 5");
    tensor_fails(c, IDS_TENSOR "\"shape\": [0, 3], \"data\": []}", 400,
                 "inputs[0].shape[0]: the batch must not be empty");
    tensor_fails(c, TEXT_TENSOR "\"shape\": [2], \"data\": [\"w2\", 3]}", 400,
                 "inputs[0].data[1]: expected a string (BYTES), got integer");
    tensor_fails(c, IDS_TENSOR "\"shape\": [2, 2], \"data\": [2, 3, 4, 40]}", 400,
                 "inputs[0].data[3]: id 40 >= vocab_size 40");
    tensor_fails(c, IDS_TENSOR "\"shape\": [1, 2], \"data\": [2, \"3\"]}", 400,
                 "inputs[0].data[1]: expected an integer id, got string");

    char *big = parse_body_repeat("{\"inputs\": [" TEXT_TENSOR "\"shape\": [1025], \"data\": [",
                                  "\"w2\"", API_MAX_INPUTS + 1, "]}]}");
    fails(c, big, 413, "inputs[0]: batch of 1025, more than the limit of 1024 per request");
    free(big);
    fails(c,
          "{\"parameters\": {\"truncate\": false}, \"inputs\": [" IDS_TENSOR
          "\"shape\": [1, 13], \"data\": [2,2,2,2,2,2,2,2,2,2,2,2,2]}]}",
          422, "inputs[0].data: 13 ids, more than the model's maximum of 12 and truncate is false");
}

static void test_builds(void **state)
{
    parse_fixture *f = *state;
    /* The job: the echoed id, then which outputs were asked for. */
    typedef struct {
        char *id;
        bool want_probs, want_embeddings;
    } job_view;
    api_parsed out;
    infer_request *req = parse_ok(&oip_infer, f->cls, NULL,
                                  "{\"id\": \"r1\", \"inputs\": [" TEXT_TENSOR
                                  "\"shape\": [2, 1], \"data\": [[\"w2 w3\"], [\"w4\"]]}]}",
                                  &out);
    const job_view *job = out.job;
    assert_int_equal(req->task, INFER_CLASSIFY);
    assert_int_equal(req->n_items, 2);
    assert_int_equal(req->n_ids[0], 2);
    assert_string_equal(job->id, "r1");
    assert_true(job->want_probs);
    assert_false(job->want_embeddings);
    api_parsed_release(&oip_infer, &out);

    req = parse_ok(&oip_infer, f->cls, NULL,
                   "{\"outputs\": [{\"name\": \"embeddings\"}], \"parameters\": {\"other\": 1},"
                   " \"inputs\": [{\"name\": \"input_ids\", \"datatype\": \"INT32\", \"shape\": "
                   "[2, 3], \"data\": [[2, 3, 0], [4, 0, 0]], \"parameters\": {}}]}",
                   &out);
    job = out.job;
    assert_int_equal(req->n_ids[0], 2);
    assert_int_equal(req->n_ids[1], 1);
    assert_null(job->id);
    assert_false(job->want_probs);
    assert_true(job->want_embeddings);
    api_parsed_release(&oip_infer, &out);

    /* an encoder (a recommender here) answers embeddings by default */
    req = parse_ok(&oip_infer, f->rec, NULL,
                   "{\"inputs\": [" IDS_TENSOR "\"shape\": [1, 14], \"data\": "
                   "[2,2,2,2,2,2,2,2,2,2,2,2,2,2]}]}",
                   &out);
    job = out.job;
    assert_int_equal(req->task, INFER_EMBED);
    assert_int_equal(req->n_ids[0], TINY_P); /* truncated by default */
    assert_true(job->want_embeddings && !job->want_probs);
    api_parsed_release(&oip_infer, &out);
}

/* ---- binary tensor data ---------------------------------------------------------------- */

/* Parses `json` followed by `tail` (tail_bytes, may hold NULs) as a binary
 * request: Inference-Header-Content-Length is the JSON's length. */
static int parse_binary(served_model *sm, const char *json, const void *tail, size_t tail_bytes,
                        const char *content_type, api_parsed *out)
{
    size_t n = strlen(json);
    char *body = malloc(n + tail_bytes + 1);
    assert_non_null(body);
    memcpy(body, json, n);
    memcpy(body + n, tail, tail_bytes);
    char length[24];
    snprintf(length, sizeof length, "%zu", n);
    api_call call = {.sm = sm, .content_type = content_type, .inference_header_length = length};
    int status = api_route_parse(&oip_infer, &call, body, n + tail_bytes, out);
    free(body);
    return status;
}

static void test_binary(void **state)
{
    parse_fixture *f = *state;
    typedef struct {
        char *id;
        bool want_probs, want_embeddings, probs_binary, embeddings_binary;
    } job_view;
    api_parsed out;
    /* INT32 ids [2, 3], little-endian: 2 3 0 / 4 0 0 */
    const unsigned char ids32[] = {2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,
                                   4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(
        parse_binary(f->cls,
                     "{\"inputs\": [{\"name\": \"input_ids\", \"datatype\": \"INT32\", "
                     "\"shape\": [2, 3], \"parameters\": {\"binary_data_size\": 24}}], "
                     "\"parameters\": {\"binary_data_output\": true}}",
                     ids32, sizeof ids32, NULL, &out),
        0);
    const job_view *job = out.job;
    assert_int_equal(out.req->n_items, 2);
    assert_int_equal(out.req->n_ids[0], 2);
    assert_int_equal(out.req->n_ids[1], 1);
    assert_true(job->want_probs && job->probs_binary && !job->want_embeddings);
    api_parsed_release(&oip_infer, &out);

    /* BYTES [2]: "w2 w3" and "" */
    const unsigned char text[] = {5, 0, 0, 0, 'w', '2', ' ', 'w', '3', 0, 0, 0, 0};
    assert_int_equal(parse_binary(f->cls,
                                  "{\"inputs\": [{\"name\": \"text\", \"datatype\": \"BYTES\", "
                                  "\"shape\": [2], \"parameters\": {\"binary_data_size\": 13}}], "
                                  "\"outputs\": [{\"name\": \"embeddings\", \"parameters\": "
                                  "{\"binary_data\": true}}, {\"name\": \"probabilities\"}]}",
                                  text, sizeof text, "application/octet-stream", &out),
                     0);
    job = out.job;
    assert_int_equal(out.req->n_ids[0], 2);
    assert_int_equal(out.req->n_ids[1], 0);
    assert_true(job->embeddings_binary && !job->probs_binary && job->want_probs);
    api_parsed_release(&oip_infer, &out);

    /* the header is checked before the JSON: 415, then 400 */
    assert_int_equal(parse_binary(f->cls, "{}", "", 0, "text/plain", &out), 415);
    assert_string_equal(out.verdict.message, "Content-Type 'text/plain' is not allowed with binary "
                                             "tensor data (use application/octet-stream)");
    api_call call = {.sm = f->cls, .inference_header_length = "3"};
    assert_int_equal(api_route_parse(&oip_infer, &call, "{}", 2, &out), 400);
    assert_string_equal(
        out.verdict.message,
        "header Inference-Header-Content-Length: 3 is more than the body's 2 bytes");
    /* a version that is not "1" is 404 before anything else */
    call = (api_call){.sm = f->cls, .param = "2"};
    assert_int_equal(api_route_parse(&oip_infer, &call, "{", 1, &out), 404);
    assert_string_equal(out.verdict.message,
                        "model 'cls' has no version '2' (its only version is '1')");
    assert_null(out.req);
    assert_null(out.job);
}

/* ---- out of memory ------------------------------------------------------------------ */

/* jansson's allocator (through api_json_alloc_install), failing its
 * alloc_fail_at-th call from now on (-1: never). */
static long alloc_calls, alloc_fail_at = -1;

static void *failing_malloc(size_t n)
{
    if (alloc_fail_at >= 0 && alloc_calls++ == alloc_fail_at)
        return NULL;
    return malloc(n);
}

/* Runs `run` with the nth jansson allocation failing, for n = 0, 1, ...
 * until a run makes fewer than n allocations; each run's status must be 0
 * or 503 "out of memory". Returns how many runs refused with 503. */
static int every_failure(int (*run)(parse_fixture *f, api_parsed *out), parse_fixture *f)
{
    int n_503 = 0;
    for (long n = 0;; n++) {
        api_parsed out;
        alloc_calls = 0;
        alloc_fail_at = n;
        api_json_alloc_install(failing_malloc);
        int status = run(f, &out);
        bool reached = alloc_calls > n;
        alloc_fail_at = -1;
        api_json_alloc_install(NULL);
        if (status == 503) {
            assert_string_equal(out.verdict.message, "out of memory");
            n_503++;
        } else if (status != 0) {
            fail_msg("allocation %ld failing: %d '%s'", n, status, out.verdict.message);
        } else {
            api_parsed_release(&oip_infer, &out);
        }
        if (!reached)
            return n_503;
    }
}

static const char *const nested_body =
    "{\"inputs\": [" IDS_TENSOR "\"shape\": [2, 3], \"data\": [[2, 3, 0], [4, 5, 6]]}]}";
static const char *const text_body =
    "{\"id\": \"x\", \"inputs\": [" TEXT_TENSOR "\"shape\": [2], \"data\": [\"w2\", \"w3 w4\"]}]}";

/* The whole parse: the body's JSON, then the parser. */
static int parse_nested(parse_fixture *f, api_parsed *out)
{
    return parse_run(&oip_infer, f->cls, NULL, nested_body, out);
}

static int parse_text(parse_fixture *f, api_parsed *out)
{
    return parse_run(&oip_infer, f->rec, NULL, text_body, out);
}

/* The parser alone on a body parsed beforehand: its own allocations are
 * data_flatten's. */
static int parser_only(parse_fixture *f, api_parsed *out)
{
    api_json_alloc_install(NULL);
    json_t *body = json_loads(nested_body, 0, NULL);
    assert_non_null(body);
    api_json_alloc_install(failing_malloc);
    memset(out, 0, sizeof *out);
    out->job = calloc(1, oip_infer.job_bytes);
    assert_non_null(out->job);
    api_call call = {.sm = f->cls, .param = NULL};
    int status = oip_infer.parse(&call, body, out);
    json_decref(body);
    if (status != 0)
        api_parsed_release(&oip_infer, out);
    return status;
}

/* A binary BYTES request: its JSON part, then two elements. */
static int parse_binary_text(parse_fixture *f, api_parsed *out)
{
    const unsigned char text[] = {2, 0, 0, 0, 'w', '2', 3, 0, 0, 0, 'w', '3', ' '};
    return parse_binary(
        f->cls,
        "{\"id\": \"b\", \"inputs\": [{\"name\": \"text\", \"datatype\": "
        "\"BYTES\", \"shape\": [2, 1], \"parameters\": {\"binary_data_size\": 13}}]}",
        text, sizeof text, NULL, out);
}

static void test_out_of_memory_is_503(void **state)
{
    parse_fixture *f = *state;
    assert_true(every_failure(parse_binary_text, f) >= 3);
    /* data_flatten allocates the flat array and grows it: each failure is a 503 */
    assert_true(every_failure(parser_only, f) >= 2);
    /* and so is a failure while the body's JSON is read */
    assert_true(every_failure(parse_nested, f) > every_failure(parser_only, f));
    assert_true(every_failure(parse_text, f) >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_errors),
        cmocka_unit_test(test_tensor_errors),
        cmocka_unit_test(test_shape_and_data_errors),
        cmocka_unit_test(test_builds),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_out_of_memory_is_503),
    };
    return cmocka_run_group_tests(tests, parse_fixture_setup, parse_fixture_teardown);
}
