/* config: a model directory's config.json (the official BertConfig names plus
 * architectures, id2label, tokenizer, and for recommenders
 * user_num_hidden_layers and max_history). Unknown keys are ignored. */
#ifndef FF_CONFIG_H
#define FF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"
#include "fastformer.h"
#include "tokenizer.h"

typedef enum {
    MODEL_TASK_CLASSIFICATION,      /* "FastformerForSequenceClassification" */
    MODEL_TASK_NEWS_RECOMMENDATION, /* "FastformerForNewsRecommendation" */
} model_task;

typedef struct {
    model_task task;
    fastformer_dims encoder;      /* classifier text encoder, or recommender news encoder */
    fastformer_dims user_encoder; /* recommender only: D, H, I as encoder; L =
                                     user_num_hidden_layers; P = max_history */
    int vocab_size;
    int num_labels;  /* classifier: number of id2label entries (ids 0..n-1, all present) */
    char **id2label; /* (num_labels) owned strings */
    tokenizer_kind tokenizer;
    bool lowercase;
} model_config;

/* Parses config.json from a buffer. Required: hidden_size, num_attention_heads
 * (dividing hidden_size), intermediate_size, num_hidden_layers,
 * max_position_embeddings, vocab_size, architectures; classifiers need
 * id2label; recommenders need user_num_hidden_layers and max_history.
 * Optional: layer_norm_eps (1e-12), hidden_act ("gelu" only), pooler_type
 * ("weightpooler" only), tokenizer ({"type":"word","lowercase":true}).
 * On failure returns -1 with a message naming the key, e.g.
 * "config.json: num_attention_heads 7 does not divide hidden_size 256".
 * On success the caller owns *out's contents (model_config_free). */
FF_MUST_CHECK int model_config_parse(const void *buf, size_t len, model_config *out, char *err,
                                     size_t err_cap);
void model_config_free(model_config *cfg);

const char *model_task_name(model_task task); /* "classification" | "news-recommendation" */
const char *model_task_architecture(model_task task);

/* What a task's model has. Code that differs by task asks one of these (or
 * switches on the task with no default:), so that adding a task makes -Wswitch
 * list every place that must decide. */
bool model_task_has_classifier(model_task task);   /* a label head: id2label, logits, probs */
bool model_task_has_user_encoder(model_task task); /* a user encoder over clicked news, and
                                                      dot-product scores of candidates */

#endif
