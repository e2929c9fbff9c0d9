/* test_api_v1: the /v1 model routes' parsers, called directly (no HTTP):
 * classify, embed, recommend and PUT news on tiny models. Every error path
 * with its exact status and message, the check-before-body order, and what
 * an accepted request holds (task, items, history, top_k, the news id).
 * Per-input messages (ids, texts, news ids) are test_api_inputs'. */
#include "api_parse_fixture.h"

/* ---- the body as a whole (api_body_json through every route) ------------------ */

static void test_body_errors(void **state)
{
    parse_fixture *f = *state;
    const api_model_route *routes[] = {&api_v1_classify, &api_v1_embed, &api_v1_recommend,
                                       &api_v1_news_put};
    served_model *models[] = {f->cls, f->cls, f->rec, f->rec};
    for (size_t i = 0; i < 4; i++) {
        parse_fails(routes[i], models[i], "N9", "", 400,
                    "request body is empty: expected a JSON object");
        parse_fails(routes[i], models[i], "N9", "[1]", 400,
                    "request body: expected a JSON object, got array");
        parse_fails(routes[i], models[i], "N9", "\"x\"", 400,
                    "request body: expected a JSON object, got string");
        parse_fails(routes[i], models[i], "N9", "{\"a\": 1, \"a\": 2}", 400,
                    "invalid JSON at line 1, column 12: duplicate object key near '\"a\"'");
        api_parsed out;
        assert_int_equal(parse_run(routes[i], models[i], "N9", "{\"inputs\": [", &out), 400);
        assert_memory_equal(out.verdict.message, "invalid JSON at line 1, column 12: ", 35);
    }
}

/* ---- classify and embed ------------------------------------------------------------ */

static void test_classify_errors(void **state)
{
    parse_fixture *f = *state;
    const api_model_route *c = &api_v1_classify;
    /* the task is checked before the body is read */
    parse_fails(c, f->rec, NULL, "not json", 400,
                "model 'rec' is a news-recommendation model; classify needs a classification "
                "model");
    parse_fails(c, f->cls, NULL, "{\"inputs\": [\"w2\"], \"x\": 1}", 400,
                "unknown key 'x' (allowed: inputs, truncate)");
    parse_fails(c, f->cls, NULL, "{\"inputs\": [\"w2\"], \"truncate\": \"no\"}", 400,
                "truncate: expected a boolean, got string");
    parse_fails(c, f->cls, NULL, "{\"truncate\": true}", 400, "missing key 'inputs'");
    parse_fails(c, f->cls, NULL, "{\"inputs\": 3}", 400, "inputs: expected an array, got integer");
    parse_fails(c, f->cls, NULL, "{\"inputs\": null}", 400, "inputs: expected an array, got null");
    parse_fails(c, f->cls, NULL, "{\"inputs\": []}", 400, "inputs: must not be empty");
    parse_fails(c, f->cls, NULL, "{\"inputs\": [\"w2\", 5]}", 400,
                "inputs[1]: expected a string or an object with 'input_ids', got integer");
    parse_fails(c, f->cls, NULL, "{\"inputs\": [\"w2\", {\"news_id\": \"N1\"}]}", 400,
                "inputs[1]: unknown key 'news_id' (expected 'input_ids')");
    parse_fails(c, f->cls, NULL, "{\"inputs\": [{\"input_ids\": [2, 40]}]}", 400,
                "inputs[0].input_ids[1]: id 40 >= vocab_size 40");
    parse_fails(c, f->cls, NULL,
                "{\"inputs\": [\"w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2\"], \"truncate\": false}",
                422,
                "inputs[0]: text is longer than the model's maximum of 12 tokens and truncate is "
                "false");
    char *big = parse_body_repeat("{\"inputs\": [", "\"w2\"", API_MAX_INPUTS + 1, "]}");
    parse_fails(c, f->cls, NULL, big, 413,
                "inputs: 1025 inputs, more than the limit of 1024 per request");
    free(big);
}

static void test_classify_and_embed_build(void **state)
{
    parse_fixture *f = *state;
    api_parsed out;
    infer_request *req = parse_ok(&api_v1_classify, f->cls, NULL,
                                  "{\"inputs\": [\"w2 w3\", {\"input_ids\": [4, 5, 6, 0]}]}", &out);
    assert_int_equal(req->task, INFER_CLASSIFY);
    assert_int_equal(req->n_items, 2);
    assert_int_equal(req->n_ids[0], 2);
    assert_int_equal(req->n_ids[1], 3);
    assert_int_equal(req->n_labels, TINY_C);
    assert_null(out.job);
    api_parsed_release(&api_v1_classify, &out);
    assert_null(out.req);

    /* the maximum count is accepted; long texts are cut by default */
    char *max = parse_body_repeat("{\"inputs\": [", "\"w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2\"",
                                  API_MAX_INPUTS, "]}");
    req = parse_ok(&api_v1_embed, f->cls, NULL, max, &out);
    assert_int_equal(req->n_items, API_MAX_INPUTS);
    assert_int_equal(req->n_ids[API_MAX_INPUTS - 1], TINY_P);
    api_parsed_release(&api_v1_embed, &out);
    free(max);

    /* embed takes any model; a recommender embeds news */
    req =
        parse_ok(&api_v1_embed, f->rec, NULL, "{\"inputs\": [\"w2\"], \"truncate\": false}", &out);
    assert_int_equal(req->task, INFER_EMBED);
    assert_int_equal(req->n_labels, 0);
    api_parsed_release(&api_v1_embed, &out);
    parse_fails(&api_v1_embed, f->rec, NULL, "{\"inputs\": [{\"news_id\": \"N1\"}]}", 400,
                "inputs[0]: unknown key 'news_id' (expected 'input_ids')");
}

/* ---- recommend ------------------------------------------------------------------------- */

static void test_recommend_errors(void **state)
{
    parse_fixture *f = *state;
    const api_model_route *r = &api_v1_recommend;
    parse_fails(r, f->cls, NULL, "", 400,
                "model 'cls' is a classification model; recommend needs a news-recommendation "
                "model");
    parse_fails(r, f->rec, NULL, "{\"history\": [], \"candidates\": [\"w2\"], \"k\": 1}", 400,
                "unknown key 'k' (allowed: history, candidates, top_k, truncate, exclude_history, "
                "since)");
    parse_fails(r, f->rec, NULL, "{\"history\": [], \"candidates\": [\"w2\"], \"truncate\": 1}",
                400, "truncate: expected a boolean, got integer");
    parse_fails(r, f->rec, NULL, "{\"candidates\": [\"w2\"]}", 400, "missing key 'history'");
    parse_fails(r, f->rec, NULL, "{\"history\": {}, \"candidates\": [\"w2\"]}", 400,
                "history: expected an array, got object");
    /* Without candidates: the whole catalog. */
    parse_fails(r, f->bare, NULL, "{\"history\": []}", 400,
                "candidates: missing, and model 'bare' has no news catalog to rank (configure "
                "server.state_dir or models[].news_catalog)");
    parse_fails(r, f->rec, NULL, "{\"history\": [], \"top_k\": 1001}", 400,
                "top_k: at most 1000 for a catalog-wide recommend, got 1001");
    parse_fails(r, f->rec, NULL, "{\"history\": [], \"top_k\": 0}", 400,
                "top_k: expected an integer >= 1, got 0");
    parse_fails(r, f->rec, NULL, "{\"history\": [], \"exclude_history\": 1}", 400,
                "exclude_history: expected a boolean, got integer");
    parse_fails(r, f->rec, NULL, "{\"history\": [], \"since\": 5}", 400,
                "since: expected a string, got integer");
    static const char *const bad_times[] = {"yesterday",
                                            "2026-12-01",
                                            "2026-12-01T00:00:00",
                                            "2026-13-01T00:00:00Z",
                                            "2026-12-01T00:00:00.Z",
                                            "2026-12-01T00:00:00+1:00",
                                            "2026-12-01T24:00:00Z"};
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
        char body[128], msg[200];
        snprintf(body, sizeof body, "{\"history\": [], \"since\": \"%s\"}", bad_times[i]);
        snprintf(msg, sizeof msg,
                 "since: expected an RFC 3339 time such as 2026-12-01T00:00:00Z, got '%s'",
                 bad_times[i]);
        parse_fails(r, f->rec, NULL, body, 400, msg);
    }
    parse_fails(r, f->rec, NULL,
                "{\"history\": [], \"candidates\": [\"w2\"], \"since\": \"2026-12-01T00:00:00Z\"}",
                400, "since: only for a catalog-wide recommend (without candidates)");
    parse_fails(r, f->rec, NULL,
                "{\"history\": [], \"candidates\": [\"w2\"], \"exclude_history\": false}", 400,
                "exclude_history: only for a catalog-wide recommend (without candidates)");
    parse_fails(r, f->rec, NULL, "{\"history\": [], \"candidates\": []}", 400,
                "candidates: must not be empty");
    parse_fails(r, f->rec, NULL, "{\"history\": [], \"candidates\": [\"w2\"], \"top_k\": \"3\"}",
                400, "top_k: expected an integer >= 1, got string");
    parse_fails(r, f->rec, NULL, "{\"history\": [], \"candidates\": [\"w2\"], \"top_k\": 1.5}", 400,
                "top_k: expected an integer >= 1, got number");
    parse_fails(r, f->rec, NULL, "{\"history\": [], \"candidates\": [\"w2\"], \"top_k\": 0}", 400,
                "top_k: expected an integer >= 1, got 0");
    parse_fails(r, f->rec, NULL, "{\"history\": [{\"news_id\": \"N9\"}], \"candidates\": [\"w2\"]}",
                400, "history[0].news_id: unknown news_id 'N9'");
    parse_fails(r, f->rec, NULL,
                "{\"history\": [\"w2\"], \"candidates\": [{\"news_id\": \"N1\"}, 7]}", 400,
                "candidates[1]: expected a string or an object with 'input_ids' or 'news_id', "
                "got integer");
    parse_fails(r, f->bare, NULL,
                "{\"history\": [{\"news_id\": \"N1\"}], \"candidates\": [\"w2\"]}", 400,
                "history[0].news_id: model 'bare' has no news catalog");

    char *body = parse_body_repeat("{\"candidates\": [\"w2\"], \"history\": [", "\"w3\"",
                                   API_MAX_INPUTS + 1, "]}");
    parse_fails(r, f->rec, NULL, body, 413,
                "history: 1025 inputs, more than the limit of 1024 per request");
    free(body);
    body = parse_body_repeat("{\"candidates\": [\"w2\"], \"history\": [", "\"w3\"", API_MAX_INPUTS,
                             "]}");
    parse_fails(r, f->rec, NULL, body, 413,
                "history and candidates: 1025 news, more than the limit of 1024");
    free(body);
}

static int top_k_of(served_model *sm, const char *body)
{
    api_parsed out;
    parse_ok(&api_v1_recommend, sm, NULL, body, &out);
    int k = ((const int *)out.job)[0]; /* recommend's job is {int top_k} */
    api_parsed_release(&api_v1_recommend, &out);
    return k;
}

static void test_recommend_builds(void **state)
{
    parse_fixture *f = *state;
    api_parsed out;
    infer_request *req =
        parse_ok(&api_v1_recommend, f->rec, NULL,
                 "{\"history\": [{\"news_id\": \"N1\"}, \"w2 w3\"], \"candidates\": [{\"news_id\": "
                 "\"N2\"}, {\"input_ids\": [4]}, \"w9\"], \"top_k\": 2}",
                 &out);
    assert_int_equal(req->task, INFER_RECOMMEND);
    assert_int_equal(req->n_items, 5);
    assert_int_equal(req->n_history, 2);
    assert_true(req->item_ready[0]); /* from the catalog */
    assert_true(req->item_ready[2]);
    assert_false(req->item_ready[4]);
    assert_non_null(out.job);
    api_parsed_release(&api_v1_recommend, &out);

    /* an empty history is allowed; top_k defaults to, and is capped at, the candidates */
    const char *two = "{\"history\": [], \"candidates\": [\"w2\", \"w3\"]";
    char body[200];
    snprintf(body, sizeof body, "%s}", two);
    assert_int_equal(top_k_of(f->rec, body), 2);
    snprintf(body, sizeof body, "%s, \"top_k\": 1}", two);
    assert_int_equal(top_k_of(f->rec, body), 1);
    snprintf(body, sizeof body, "%s, \"top_k\": 99999999999}", two);
    assert_int_equal(top_k_of(f->rec, body), 2);
    /* a recommender without catalog takes texts and ids */
    snprintf(body, sizeof body, "%s}", two);
    assert_int_equal(top_k_of(f->bare, body), 2);
}

/* ---- PUT news ---------------------------------------------------------------------------- */

static void test_catalog_recommend_builds(void **state)
{
    parse_fixture *f = *state;
    api_parsed out;
    infer_request *req = parse_ok(&api_v1_recommend, f->rec, NULL,
                                  "{\"history\": [{\"news_id\": \"N1\"}, \"w2 w3\"], \"top_k\": 7, "
                                  "\"since\": \"2026-12-01T01:30:00.5+01:30\"}",
                                  &out);
    assert_int_equal(req->task, INFER_RECOMMEND);
    assert_int_equal(req->n_items, 2);
    assert_int_equal(req->n_history, 2);
    assert_int_equal(req->catalog_k, 7);
    assert_int_equal(req->since_ms, 1796083200500LL);
    assert_true(req->exclude_history);
    assert_int_equal(req->history_id_len[0], 2); /* the catalog id is kept to exclude it */
    assert_memory_equal(req->history_ids, "N1", 2);
    assert_int_equal(req->history_id_len[1], 0); /* a text is no catalog item */
    api_parsed_release(&api_v1_recommend, &out);
    /* Defaults: top 10, history excluded, no time filter; an empty history is fine. */
    req = parse_ok(&api_v1_recommend, f->rec, NULL, "{\"history\": [], \"exclude_history\": false}",
                   &out);
    assert_int_equal(req->n_items, 0);
    assert_int_equal(req->catalog_k, 10);
    assert_false(req->exclude_history);
    assert_true(req->since_ms == INT64_MIN);
    api_parsed_release(&api_v1_recommend, &out);
}

static void test_news_put_errors(void **state)
{
    parse_fixture *f = *state;
    const api_model_route *p = &api_v1_news_put;
    /* the model and the id are checked before the body is read */
    parse_fails(p, f->cls, "N1", "", 400,
                "model 'cls' is a classification model; news needs a news-recommendation model");
    parse_fails(p, f->bare, "N1", "", 400,
                "model 'bare' has no news catalog (configure server.state_dir or "
                "models[].news_catalog)");
    char id[NEWS_CATALOG_ID_MAX + 2];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = 0;
    parse_fails(p, f->rec, id, "", 400, "news id: expected 1 to 128 bytes, got 129");
    parse_fails(p, f->rec, NULL, "", 400, "news id: expected 1 to 128 bytes, got 0");
    parse_fails(p, f->rec, "", "", 400, "news id: expected 1 to 128 bytes, got 0");
    parse_fails(p, f->rec, "N1", "{\"title\": \"w2\", \"abstract\": \"c\"}", 400,
                "unknown key 'abstract' (allowed: title, category)");
    parse_fails(p, f->rec, "N1", "{\"title\": \"w2\", \"category\": 3}", 400,
                "category: expected a string, got integer");
    parse_fails(p, f->rec, "N1", "{\"title\": \"w2\\u0000\"}", 400, "title: contains a NUL byte");
    parse_fails(p, f->rec, "N1", "{}", 400, "missing key 'title'");
    parse_fails(p, f->rec, "N1", "{\"title\": [\"w2\"]}", 400,
                "title: expected a string, got array");
}

static void test_news_put_builds(void **state)
{
    parse_fixture *f = *state;
    api_parsed out;
    char id[NEWS_CATALOG_ID_MAX + 1];
    memset(id, 'y', sizeof id - 1);
    id[sizeof id - 1] = 0;
    infer_request *req =
        parse_ok(&api_v1_news_put, f->rec, id,
                 "{\"title\": \"w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2 w2\"}", &out);
    assert_int_equal(req->task, INFER_EMBED);
    assert_int_equal(req->n_items, 1);
    assert_int_equal(req->n_ids[0], TINY_P);        /* a long title is cut, never refused */
    assert_string_equal((const char *)out.job, id); /* the job starts with the id */
    api_parsed_release(&api_v1_news_put, &out);
}

/* ---- where the frame parses ----------------------------------------------------- */

static void test_frame_parses_small_bodies_on_the_http_thread(void **state)
{
    (void)state;
    static api_context ctx; /* zeroed: no parse pool */
    assert_true(api_frame_parses_here(&ctx, 0));
    assert_true(api_frame_parses_here(&ctx, (size_t)1 << 20)); /* no pool: every body here */
    ctx.parse_pool = (struct task_pool *)&ctx;                 /* only compared with NULL */
    assert_true(api_frame_parses_here(&ctx, 0));
    assert_true(api_frame_parses_here(&ctx, API_PARSE_HERE_MAX_BYTES));
    assert_false(api_frame_parses_here(&ctx, API_PARSE_HERE_MAX_BYTES + 1));
    assert_false(api_frame_parses_here(&ctx, (size_t)1 << 20));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_classify_errors),
        cmocka_unit_test(test_classify_and_embed_build),
        cmocka_unit_test(test_recommend_errors),
        cmocka_unit_test(test_recommend_builds),
        cmocka_unit_test(test_catalog_recommend_builds),
        cmocka_unit_test(test_news_put_errors),
        cmocka_unit_test(test_news_put_builds),
        cmocka_unit_test(test_frame_parses_small_bodies_on_the_http_thread),
    };
    return cmocka_run_group_tests(tests, parse_fixture_setup, parse_fixture_teardown);
}
