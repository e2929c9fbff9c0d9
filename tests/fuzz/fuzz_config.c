/* fuzz_config: model_config_parse (config.json) on arbitrary bytes. On
 * success the invariants the engine relies on must hold: positive dims, heads
 * dividing hidden_size, a label for every class id. */
#include <string.h>

#include "config.h"
#include "fuzz_common.h"

static void dims_check(const fastformer_dims *d, const char *what)
{
    FUZZ_CHECK(d->hidden_size > 0 && d->num_attention_heads > 0 && d->intermediate_size > 0 &&
                   d->num_hidden_layers > 0 && d->max_position_embeddings > 0,
               "%s: non-positive dims", what);
    FUZZ_CHECK(d->hidden_size % d->num_attention_heads == 0, "%s: heads do not divide hidden",
               what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf, "out of memory");
    memcpy(buf, data, size);
    model_config cfg;
    memset(&cfg, 0xa5, sizeof cfg); /* the parser must not rely on a zeroed struct */
    char err[256] = "";
    if (model_config_parse(buf, size, &cfg, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != 0, "failure without a message");
        free(buf);
        return 0;
    }
    dims_check(&cfg.encoder, "encoder");
    FUZZ_CHECK(cfg.vocab_size > 0, "vocab_size %d", cfg.vocab_size);
    FUZZ_CHECK(model_task_name(cfg.task) && model_task_architecture(cfg.task), "task");
    FUZZ_CHECK(tokenizer_kind_name(cfg.tokenizer), "tokenizer kind");
    if (cfg.task == MODEL_TASK_CLASSIFICATION) {
        FUZZ_CHECK(cfg.num_labels >= 1 && cfg.id2label, "classifier with %d labels",
                   cfg.num_labels);
        for (int i = 0; i < cfg.num_labels; i++)
            FUZZ_CHECK(cfg.id2label[i] && strlen(cfg.id2label[i]) < size, "label %d", i);
    } else {
        FUZZ_CHECK(cfg.task == MODEL_TASK_NEWS_RECOMMENDATION, "task %d", (int)cfg.task);
        FUZZ_CHECK(cfg.user_encoder.num_hidden_layers > 0 &&
                       cfg.user_encoder.max_position_embeddings > 0,
                   "user encoder dims");
    }
    model_config_free(&cfg);
    free(buf);
    return 0;
}
