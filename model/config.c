/* config: config.json -> model_config. Every key the engine depends on is
 * checked for presence, JSON type and range, and the bounds below keep every
 * later size computation (V*D, P*D, I*D floats, ...) far from overflow.
 * Messages start with "config.json: " and quote the key at fault. */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sanity bounds: far above any real Fastformer, small enough that products of
 * two of them fit easily in size_t and in the int arithmetic of callers. */
#define CONFIG_MAX_HIDDEN (1 << 16)
#define CONFIG_MAX_INTERMEDIATE (1 << 18)
#define CONFIG_MAX_LAYERS 256
#define CONFIG_MAX_POSITIONS (1 << 16)
#define CONFIG_MAX_VOCAB (1 << 24)
#define CONFIG_MAX_LABELS (1 << 16)

/* The architecture name of each task: the list config.json is matched against. */
static const char *const config_architectures[] = {
    [MODEL_TASK_CLASSIFICATION] = "FastformerForSequenceClassification",
    [MODEL_TASK_NEWS_RECOMMENDATION] = "FastformerForNewsRecommendation",
};

const char *model_task_name(model_task task)
{
    switch (task) {
    case MODEL_TASK_CLASSIFICATION:
        return "classification";
    case MODEL_TASK_NEWS_RECOMMENDATION:
        return "news-recommendation";
    }
    return "unknown"; /* not a model_task */
}

bool model_task_has_classifier(model_task task)
{
    switch (task) {
    case MODEL_TASK_CLASSIFICATION:
        return true;
    case MODEL_TASK_NEWS_RECOMMENDATION:
        return false;
    }
    return false;
}

bool model_task_has_user_encoder(model_task task)
{
    switch (task) {
    case MODEL_TASK_CLASSIFICATION:
        return false;
    case MODEL_TASK_NEWS_RECOMMENDATION:
        return true;
    }
    return false;
}

const char *model_task_architecture(model_task task)
{
    return config_architectures[task];
}

/* Reads the integer `key` into *out. A missing key is an error when
 * `required`, and otherwise leaves *out untouched. */
static int config_int(json_t *root, const char *key, bool required, long long lo, long long hi,
                      int *out, char *err, size_t err_cap)
{
    json_t *v = json_object_get(root, key);
    if (v == NULL) {
        if (!required)
            return 0;
        snprintf(err, err_cap, "config.json: missing required key '%s'", key);
        return -1;
    }
    if (!json_is_integer(v)) {
        snprintf(err, err_cap, "config.json: '%s' must be an integer", key);
        return -1;
    }
    long long x = json_integer_value(v);
    if (x < lo || x > hi) {
        snprintf(err, err_cap, "config.json: '%s' %lld is out of range [%lld, %lld]", key, x, lo,
                 hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* An optional string key that, when present, must equal `only`. */
static int config_fixed_string(json_t *root, const char *key, const char *only, char *err,
                               size_t err_cap)
{
    json_t *v = json_object_get(root, key);
    if (v == NULL)
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, err_cap, "config.json: '%s' must be a string", key);
        return -1;
    }
    if (strcmp(json_string_value(v), only) != 0) {
        snprintf(err, err_cap, "config.json: '%s' '%s' is not supported (only '%s')", key,
                 json_string_value(v), only);
        return -1;
    }
    return 0;
}

static int config_architecture(json_t *root, model_task *task, char *err, size_t err_cap)
{
    json_t *v = json_object_get(root, "architectures");
    if (v == NULL) {
        snprintf(err, err_cap, "config.json: missing required key 'architectures'");
        return -1;
    }
    if (!json_is_array(v) || json_array_size(v) != 1 || !json_is_string(json_array_get(v, 0))) {
        snprintf(err, err_cap, "config.json: 'architectures' must be an array of one string");
        return -1;
    }
    const char *name = json_string_value(json_array_get(v, 0));
    for (size_t t = 0; t < sizeof config_architectures / sizeof config_architectures[0]; t++) {
        if (strcmp(name, config_architectures[t]) == 0) {
            *task = (model_task)t;
            return 0;
        }
    }
    snprintf(err, err_cap, "config.json: 'architectures' '%s' is not %s or %s", name,
             config_architectures[0], config_architectures[1]);
    return -1;
}

/* Parses "0".."n-1" strictly: decimal digits, no sign, no leading zeros. */
static long config_label_index(const char *key, size_t n)
{
    size_t len = strlen(key);
    if (len == 0 || len > 6 || (len > 1 && key[0] == '0'))
        return -1;
    long x = 0;
    for (size_t i = 0; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return -1;
        x = x * 10 + (key[i] - '0');
    }
    return (size_t)x < n ? x : -1;
}

static int config_id2label(json_t *root, model_config *cfg, char *err, size_t err_cap)
{
    json_t *v = json_object_get(root, "id2label");
    if (v == NULL) {
        snprintf(err, err_cap, "config.json: missing required key 'id2label'");
        return -1;
    }
    if (!json_is_object(v)) {
        snprintf(err, err_cap, "config.json: 'id2label' must be an object");
        return -1;
    }
    size_t n = json_object_size(v);
    if (n < 1 || n > CONFIG_MAX_LABELS) {
        snprintf(err, err_cap, "config.json: 'id2label' has %zu labels, expected 1 to %d", n,
                 CONFIG_MAX_LABELS);
        return -1;
    }
    cfg->id2label = calloc(n, sizeof *cfg->id2label);
    if (cfg->id2label == NULL) {
        snprintf(err, err_cap, "config.json: out of memory");
        return -1;
    }
    cfg->num_labels = (int)n;
    /* n distinct keys, each a canonical index below n: so each id appears once. */
    const char *key;
    json_t *label;
    json_object_foreach(v, key, label)
    {
        long i = config_label_index(key, n);
        if (i < 0) {
            snprintf(err, err_cap,
                     "config.json: 'id2label' key '%s' is not one of \"0\"..\"%zu\" (%zu labels)",
                     key, n - 1, n);
            return -1;
        }
        if (!json_is_string(label)) {
            snprintf(err, err_cap, "config.json: 'id2label' value of '%s' must be a string", key);
            return -1;
        }
        cfg->id2label[i] = strdup(json_string_value(label));
        if (cfg->id2label[i] == NULL) {
            snprintf(err, err_cap, "config.json: out of memory");
            return -1;
        }
    }
    return 0;
}

static int config_tokenizer(json_t *root, model_config *cfg, char *err, size_t err_cap)
{
    cfg->tokenizer = TOKENIZER_WORD;
    cfg->lowercase = true;
    json_t *v = json_object_get(root, "tokenizer");
    if (v == NULL)
        return 0;
    if (!json_is_object(v)) {
        snprintf(err, err_cap, "config.json: 'tokenizer' must be an object");
        return -1;
    }
    json_t *type = json_object_get(v, "type");
    if (type != NULL) {
        if (!json_is_string(type)) {
            snprintf(err, err_cap, "config.json: 'tokenizer.type' must be a string");
            return -1;
        }
        const char *s = json_string_value(type);
        if (tokenizer_kind_parse(s, &cfg->tokenizer) != 0) {
            snprintf(err, err_cap,
                     "config.json: 'tokenizer.type' '%s' is unknown (expected 'word' or "
                     "'wordpiece')",
                     s);
            return -1;
        }
    }
    json_t *lower = json_object_get(v, "lowercase");
    if (lower != NULL) {
        if (!json_is_boolean(lower)) {
            snprintf(err, err_cap, "config.json: 'tokenizer.lowercase' must be true or false");
            return -1;
        }
        cfg->lowercase = json_is_true(lower);
    }
    return 0;
}

static int config_fields(json_t *root, model_config *cfg, char *err, size_t err_cap)
{
    fastformer_dims *d = &cfg->encoder;
    if (config_architecture(root, &cfg->task, err, err_cap) != 0 ||
        config_int(root, "hidden_size", true, 1, CONFIG_MAX_HIDDEN, &d->hidden_size, err,
                   err_cap) != 0 ||
        config_int(root, "num_attention_heads", true, 1, CONFIG_MAX_HIDDEN, &d->num_attention_heads,
                   err, err_cap) != 0 ||
        config_int(root, "intermediate_size", true, 1, CONFIG_MAX_INTERMEDIATE,
                   &d->intermediate_size, err, err_cap) != 0 ||
        config_int(root, "num_hidden_layers", true, 1, CONFIG_MAX_LAYERS, &d->num_hidden_layers,
                   err, err_cap) != 0 ||
        config_int(root, "max_position_embeddings", true, 1, CONFIG_MAX_POSITIONS,
                   &d->max_position_embeddings, err, err_cap) != 0 ||
        config_int(root, "vocab_size", true, 1, CONFIG_MAX_VOCAB, &cfg->vocab_size, err, err_cap) !=
            0)
        return -1;
    if (d->hidden_size % d->num_attention_heads != 0) {
        snprintf(err, err_cap,
                 "config.json: 'num_attention_heads' %d does not divide 'hidden_size' %d",
                 d->num_attention_heads, d->hidden_size);
        return -1;
    }

    d->layer_norm_eps = 1e-12f;
    json_t *eps = json_object_get(root, "layer_norm_eps");
    if (eps != NULL) {
        if (!json_is_number(eps)) {
            snprintf(err, err_cap, "config.json: 'layer_norm_eps' must be a number");
            return -1;
        }
        double x = json_number_value(eps);
        if (!(x >= 0.0 && x <= 1.0)) {
            snprintf(err, err_cap, "config.json: 'layer_norm_eps' %g is out of range [0, 1]", x);
            return -1;
        }
        d->layer_norm_eps = (float)x;
    }

    if (config_fixed_string(root, "hidden_act", "gelu", err, err_cap) != 0 ||
        config_fixed_string(root, "pooler_type", "weightpooler", err, err_cap) != 0 ||
        config_tokenizer(root, cfg, err, err_cap) != 0)
        return -1;

    if (model_task_has_classifier(cfg->task) && config_id2label(root, cfg, err, err_cap) != 0)
        return -1;
    if (!model_task_has_user_encoder(cfg->task))
        return 0;
    /* The user encoder shares D, H, I and eps with the news encoder. */
    cfg->user_encoder = *d;
    if (config_int(root, "user_num_hidden_layers", true, 1, CONFIG_MAX_LAYERS,
                   &cfg->user_encoder.num_hidden_layers, err, err_cap) != 0 ||
        config_int(root, "max_history", true, 1, CONFIG_MAX_POSITIONS,
                   &cfg->user_encoder.max_position_embeddings, err, err_cap) != 0)
        return -1;
    return 0;
}

int model_config_parse(const void *buf, size_t len, model_config *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, err_cap, "config.json: not valid JSON: %s at line %d column %d", jerr.text,
                 jerr.line, jerr.column);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root))
        snprintf(err, err_cap, "config.json: must be a JSON object");
    else
        rc = config_fields(root, out, err, err_cap);
    json_decref(root);
    if (rc != 0)
        model_config_free(out);
    return rc;
}

void model_config_free(model_config *cfg)
{
    if (cfg == NULL)
        return;
    if (cfg->id2label != NULL)
        for (int i = 0; i < cfg->num_labels; i++)
            free(cfg->id2label[i]);
    free(cfg->id2label);
    cfg->id2label = NULL;
    cfg->num_labels = 0;
}
