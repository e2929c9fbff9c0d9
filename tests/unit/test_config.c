/* test_config: config.json parsing: a valid classifier and recommender, the
 * defaults, and one bad-config case per check, each asserting the message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"

static const char classifier_json[] =
    "{\"architectures\": [\"FastformerForSequenceClassification\"],"
    " \"hidden_size\": 256, \"num_attention_heads\": 16, \"intermediate_size\": 512,"
    " \"num_hidden_layers\": 2, \"max_position_embeddings\": 128, \"vocab_size\": 1000,"
    " \"layer_norm_eps\": 1e-05, \"hidden_act\": \"gelu\", \"pooler_type\": \"weightpooler\","
    " \"tokenizer\": {\"type\": \"wordpiece\", \"lowercase\": false},"
    " \"id2label\": {\"1\": \"positive\", \"0\": \"negative\", \"2\": \"neutral\"},"
    " \"hidden_dropout_prob\": 0.2, \"type_vocab_size\": 2}";

static const char recommender_json[] =
    "{\"architectures\": [\"FastformerForNewsRecommendation\"],"
    " \"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 64,"
    " \"num_hidden_layers\": 1, \"max_position_embeddings\": 32, \"vocab_size\": 50,"
    " \"user_num_hidden_layers\": 3, \"max_history\": 50}";

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *root = json_loads(text, 0, &e);
    assert_non_null(root);
    return root;
}

static void parse_ok(const char *text, model_config *cfg)
{
    char err[256] = "";
    if (model_config_parse(text, strlen(text), cfg, err, sizeof err) != 0)
        fail_msg("unexpected error: %s", err);
}

static void expect_error_text(const char *text, const char *want)
{
    char err[256] = "";
    model_config cfg;
    assert_int_equal(model_config_parse(text, strlen(text), &cfg, err, sizeof err), -1);
    assert_null(cfg.id2label);
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' does not contain '%s'", err, want);
}

/* Takes root: dumps it, expects the parse to fail with `want`, frees it. */
static void expect_error(json_t *root, const char *want)
{
    char *text = json_dumps(root, 0);
    expect_error_text(text, want);
    free(text);
    json_decref(root);
}

/* The classifier (or recommender) config with `key` set to the JSON `value`
 * (or removed when value is NULL). */
static json_t *with(const char *base, const char *key, const char *value)
{
    json_t *root = load(base);
    if (value == NULL) {
        json_object_del(root, key);
    } else {
        json_error_t e;
        json_t *v = json_loads(value, JSON_DECODE_ANY, &e);
        assert_non_null(v);
        json_object_set_new(root, key, v);
    }
    return root;
}

static void test_valid_classifier(void **state)
{
    (void)state;
    model_config cfg;
    parse_ok(classifier_json, &cfg);
    assert_int_equal(cfg.task, MODEL_TASK_CLASSIFICATION);
    assert_int_equal(cfg.encoder.hidden_size, 256);
    assert_int_equal(cfg.encoder.num_attention_heads, 16);
    assert_int_equal(cfg.encoder.intermediate_size, 512);
    assert_int_equal(cfg.encoder.num_hidden_layers, 2);
    assert_int_equal(cfg.encoder.max_position_embeddings, 128);
    assert_true(cfg.encoder.layer_norm_eps == 1e-5f);
    assert_int_equal(cfg.vocab_size, 1000);
    assert_int_equal(cfg.num_labels, 3);
    assert_string_equal(cfg.id2label[0], "negative");
    assert_string_equal(cfg.id2label[1], "positive");
    assert_string_equal(cfg.id2label[2], "neutral");
    assert_int_equal(cfg.tokenizer, TOKENIZER_WORDPIECE);
    assert_false(cfg.lowercase);
    model_config_free(&cfg);
    assert_null(cfg.id2label);
    model_config_free(&cfg); /* idempotent */
}

static void test_defaults(void **state)
{
    (void)state;
    json_t *root = load(classifier_json);
    json_object_del(root, "layer_norm_eps");
    json_object_del(root, "hidden_act");
    json_object_del(root, "pooler_type");
    json_object_del(root, "tokenizer");
    char *text = json_dumps(root, 0);
    model_config cfg;
    parse_ok(text, &cfg);
    assert_true(cfg.encoder.layer_norm_eps == 1e-12f);
    assert_int_equal(cfg.tokenizer, TOKENIZER_WORD);
    assert_true(cfg.lowercase);
    model_config_free(&cfg);
    free(text);
    json_decref(root);

    /* an empty tokenizer object keeps both defaults; eps may be an integer */
    root = with(classifier_json, "tokenizer", "{}");
    json_object_set_new(root, "layer_norm_eps", json_integer(0));
    text = json_dumps(root, 0);
    parse_ok(text, &cfg);
    assert_int_equal(cfg.tokenizer, TOKENIZER_WORD);
    assert_true(cfg.lowercase);
    assert_true(cfg.encoder.layer_norm_eps == 0.0f);
    model_config_free(&cfg);
    free(text);
    json_decref(root);
}

static void test_valid_recommender(void **state)
{
    (void)state;
    model_config cfg;
    parse_ok(recommender_json, &cfg);
    assert_int_equal(cfg.task, MODEL_TASK_NEWS_RECOMMENDATION);
    assert_int_equal(cfg.encoder.num_hidden_layers, 1);
    assert_int_equal(cfg.encoder.max_position_embeddings, 32);
    assert_int_equal(cfg.user_encoder.hidden_size, 64);
    assert_int_equal(cfg.user_encoder.num_attention_heads, 4);
    assert_int_equal(cfg.user_encoder.intermediate_size, 64);
    assert_int_equal(cfg.user_encoder.num_hidden_layers, 3);
    assert_int_equal(cfg.user_encoder.max_position_embeddings, 50);
    assert_true(cfg.user_encoder.layer_norm_eps == 1e-12f);
    assert_int_equal(cfg.num_labels, 0);
    assert_null(cfg.id2label);
    model_config_free(&cfg);

    /* a recommender ignores id2label (HF configs always carry one) */
    json_t *root = with(recommender_json, "id2label", "{\"0\": \"LABEL_0\", \"5\": \"x\"}");
    char *text = json_dumps(root, 0);
    parse_ok(text, &cfg);
    assert_int_equal(cfg.num_labels, 0);
    model_config_free(&cfg);
    free(text);
    json_decref(root);
}

static void test_task_names(void **state)
{
    (void)state;
    assert_string_equal(model_task_name(MODEL_TASK_CLASSIFICATION), "classification");
    assert_string_equal(model_task_name(MODEL_TASK_NEWS_RECOMMENDATION), "news-recommendation");
    assert_string_equal(model_task_architecture(MODEL_TASK_CLASSIFICATION),
                        "FastformerForSequenceClassification");
    assert_string_equal(model_task_architecture(MODEL_TASK_NEWS_RECOMMENDATION),
                        "FastformerForNewsRecommendation");
}

static void test_task_capabilities(void **state)
{
    (void)state;
    assert_true(model_task_has_classifier(MODEL_TASK_CLASSIFICATION));
    assert_false(model_task_has_user_encoder(MODEL_TASK_CLASSIFICATION));
    assert_false(model_task_has_classifier(MODEL_TASK_NEWS_RECOMMENDATION));
    assert_true(model_task_has_user_encoder(MODEL_TASK_NEWS_RECOMMENDATION));
}

static void test_missing_required_keys(void **state)
{
    (void)state;
    static const char *const keys[] = {"architectures",       "hidden_size",
                                       "num_attention_heads", "intermediate_size",
                                       "num_hidden_layers",   "max_position_embeddings",
                                       "vocab_size",          "id2label"};
    char want[128];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(want, sizeof want, "config.json: missing required key '%s'", keys[i]);
        expect_error(with(classifier_json, keys[i], NULL), want);
    }
    expect_error(with(recommender_json, "user_num_hidden_layers", NULL),
                 "config.json: missing required key 'user_num_hidden_layers'");
    expect_error(with(recommender_json, "max_history", NULL),
                 "config.json: missing required key 'max_history'");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error(with(classifier_json, "hidden_size", "\"256\""),
                 "config.json: 'hidden_size' must be an integer");
    expect_error(with(classifier_json, "hidden_size", "256.0"),
                 "config.json: 'hidden_size' must be an integer");
    expect_error(with(classifier_json, "num_hidden_layers", "true"),
                 "config.json: 'num_hidden_layers' must be an integer");
    expect_error(with(classifier_json, "vocab_size", "null"),
                 "config.json: 'vocab_size' must be an integer");
    expect_error(with(recommender_json, "max_history", "[50]"),
                 "config.json: 'max_history' must be an integer");
    expect_error(with(classifier_json, "layer_norm_eps", "\"1e-12\""),
                 "config.json: 'layer_norm_eps' must be a number");
}

static void test_ranges(void **state)
{
    (void)state;
    expect_error(with(classifier_json, "hidden_size", "0"),
                 "config.json: 'hidden_size' 0 is out of range [1, 65536]");
    expect_error(with(classifier_json, "hidden_size", "65537"),
                 "config.json: 'hidden_size' 65537 is out of range [1, 65536]");
    expect_error(with(classifier_json, "num_attention_heads", "-16"),
                 "config.json: 'num_attention_heads' -16 is out of range");
    expect_error(with(classifier_json, "intermediate_size", "9999999999"),
                 "config.json: 'intermediate_size' 9999999999 is out of range [1, 262144]");
    expect_error(with(classifier_json, "num_hidden_layers", "0"),
                 "config.json: 'num_hidden_layers' 0 is out of range [1, 256]");
    expect_error(with(classifier_json, "max_position_embeddings", "65537"),
                 "config.json: 'max_position_embeddings' 65537 is out of range [1, 65536]");
    expect_error(with(classifier_json, "vocab_size", "16777217"),
                 "config.json: 'vocab_size' 16777217 is out of range [1, 16777216]");
    expect_error(with(recommender_json, "user_num_hidden_layers", "257"),
                 "config.json: 'user_num_hidden_layers' 257 is out of range [1, 256]");
    expect_error(with(recommender_json, "max_history", "0"),
                 "config.json: 'max_history' 0 is out of range [1, 65536]");
    expect_error(with(classifier_json, "layer_norm_eps", "-1e-12"),
                 "config.json: 'layer_norm_eps' -1e-12 is out of range [0, 1]");
    expect_error(with(classifier_json, "layer_norm_eps", "2"),
                 "config.json: 'layer_norm_eps' 2 is out of range [0, 1]");
}

static void test_heads_must_divide_hidden(void **state)
{
    (void)state;
    expect_error(with(classifier_json, "num_attention_heads", "7"),
                 "config.json: 'num_attention_heads' 7 does not divide 'hidden_size' 256");
    expect_error(with(classifier_json, "num_attention_heads", "512"),
                 "config.json: 'num_attention_heads' 512 does not divide 'hidden_size' 256");
}

static void test_unsupported_act_and_pooler(void **state)
{
    (void)state;
    expect_error(with(classifier_json, "hidden_act", "\"relu\""),
                 "config.json: 'hidden_act' 'relu' is not supported (only 'gelu')");
    expect_error(with(classifier_json, "hidden_act", "\"gelu_new\""),
                 "config.json: 'hidden_act' 'gelu_new' is not supported");
    expect_error(with(classifier_json, "hidden_act", "1"),
                 "config.json: 'hidden_act' must be a string");
    expect_error(with(classifier_json, "pooler_type", "\"cls\""),
                 "config.json: 'pooler_type' 'cls' is not supported (only 'weightpooler')");
}

static void test_bad_tokenizer(void **state)
{
    (void)state;
    expect_error(with(classifier_json, "tokenizer", "\"word\""),
                 "config.json: 'tokenizer' must be an object");
    expect_error(with(classifier_json, "tokenizer", "{\"type\": \"bpe\"}"),
                 "config.json: 'tokenizer.type' 'bpe' is unknown (expected 'word' or 'wordpiece')");
    expect_error(with(classifier_json, "tokenizer", "{\"type\": 1}"),
                 "config.json: 'tokenizer.type' must be a string");
    expect_error(with(classifier_json, "tokenizer", "{\"type\": \"word\", \"lowercase\": 1}"),
                 "config.json: 'tokenizer.lowercase' must be true or false");
}

static void test_bad_architectures(void **state)
{
    (void)state;
    expect_error(with(classifier_json, "architectures", "\"FastformerForSequenceClassification\""),
                 "config.json: 'architectures' must be an array of one string");
    expect_error(with(classifier_json, "architectures", "[]"),
                 "config.json: 'architectures' must be an array of one string");
    expect_error(
        with(classifier_json, "architectures",
             "[\"FastformerForSequenceClassification\", \"FastformerForNewsRecommendation\"]"),
        "config.json: 'architectures' must be an array of one string");
    expect_error(
        with(classifier_json, "architectures", "[\"BertModel\"]"),
        "config.json: 'architectures' 'BertModel' is not FastformerForSequenceClassification "
        "or FastformerForNewsRecommendation");
}

static void test_bad_id2label(void **state)
{
    (void)state;
    expect_error(with(classifier_json, "id2label", "[\"a\", \"b\"]"),
                 "config.json: 'id2label' must be an object");
    expect_error(with(classifier_json, "id2label", "{}"),
                 "config.json: 'id2label' has 0 labels, expected 1 to 65536");
    expect_error(with(classifier_json, "id2label", "{\"1\": \"a\", \"2\": \"b\"}"),
                 "config.json: 'id2label' key '2' is not one of \"0\"..\"1\" (2 labels)");
    expect_error(with(classifier_json, "id2label", "{\"0\": \"a\", \"01\": \"b\"}"),
                 "config.json: 'id2label' key '01' is not one of");
    expect_error(with(classifier_json, "id2label", "{\"0\": \"a\", \"+1\": \"b\"}"),
                 "config.json: 'id2label' key '+1' is not one of");
    expect_error(with(classifier_json, "id2label", "{\"0\": \"a\", \"\": \"b\"}"),
                 "config.json: 'id2label' key '' is not one of");
    expect_error(with(classifier_json, "id2label", "{\"0\": \"a\", \"1x\": \"b\"}"),
                 "config.json: 'id2label' key '1x' is not one of");
    expect_error(with(classifier_json, "id2label", "{\"0\": \"a\", \"1\": 2}"),
                 "config.json: 'id2label' value of '1' must be a string");
}

static void test_bad_json(void **state)
{
    (void)state;
    expect_error_text("{\"hidden_size\": ", "config.json: not valid JSON:");
    expect_error_text("", "config.json: not valid JSON:");
    expect_error_text("[1]", "config.json: must be a JSON object");
    expect_error_text("{\"vocab_size\": 1, \"vocab_size\": 2}",
                      "config.json: not valid JSON: duplicate object key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_classifier),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_valid_recommender),
        cmocka_unit_test(test_task_names),
        cmocka_unit_test(test_task_capabilities),
        cmocka_unit_test(test_missing_required_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_heads_must_divide_hidden),
        cmocka_unit_test(test_unsupported_act_and_pooler),
        cmocka_unit_test(test_bad_tokenizer),
        cmocka_unit_test(test_bad_architectures),
        cmocka_unit_test(test_bad_id2label),
        cmocka_unit_test(test_bad_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
