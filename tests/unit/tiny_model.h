/* tiny_model: writes a small classifier or news recommender model directory
 * (config.json + vocab.txt + model.safetensors) with deterministic
 * pseudo-random weights into a mkdtemp directory, for the runtime tests
 * (batcher, workers, registry, news catalog). The numbers do not matter:
 * these tests compare batched results with unbatched ones from the same
 * engine, never with golden values. Header-only (static), one binary each. */
#ifndef FF_TEST_TINY_MODEL_H
#define FF_TEST_TINY_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "st_builder.h"

/* D hidden, H heads, I intermediate, L layers, P positions, V vocab, C
 * classes; the recommender's user encoder has TINY_UL layers, TINY_UP positions. */
enum {
    TINY_D = 16,
    TINY_H = 2,
    TINY_I = 24,
    TINY_L = 2,
    TINY_P = 12,
    TINY_V = 40,
    TINY_C = 3,
    TINY_UL = 1,
    TINY_UP = 6
};

/* Words of the vocabulary: "[PAD]", "[UNK]", then w2 .. w39. */
static inline void tiny_write(const char *path, const char *text)
{
    st_write_file(path, text, strlen(text));
}

static inline float tiny_value(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return ((float)(*state >> 8) / (float)(1u << 24) - 0.5f) * 0.6f;
}

static inline void tiny_add(st_writer *w, uint32_t *state, const char *name, int64_t d0, int64_t d1,
                            float base)
{
    int64_t shape[2] = {d0, d1};
    size_t n = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    float *v = malloc(n * sizeof *v);
    for (size_t k = 0; k < n; k++)
        v[k] = base + tiny_value(state);
    st_writer_add(w, name, "F32", d1 > 0 ? 2 : 1, shape, v);
    free(v);
}

static inline void tiny_encoder(st_writer *w, uint32_t *st, const char *pre, int n_layers,
                                int n_pos)
{
    char n[256];
#define T(d0, d1, base, ...)                                                                       \
    do {                                                                                           \
        snprintf(n, sizeof n, __VA_ARGS__);                                                        \
        tiny_add(w, st, n, d0, d1, base);                                                          \
    } while (0)
    T(n_pos, TINY_D, 0.0f, "%sfastformer_model.position_embeddings.weight", pre);
    T(TINY_D, 0, 1.0f, "%sfastformer_model.LayerNorm.weight", pre);
    T(TINY_D, 0, 0.0f, "%sfastformer_model.LayerNorm.bias", pre);
    for (int i = 0; i < n_layers; i++) {
        const char *p = pre;
        T(TINY_D, TINY_D, 0.0f, "%sfastformer_model.encoders.%d.attention.self.query.weight", p, i);
        T(TINY_D, 0, 0.0f, "%sfastformer_model.encoders.%d.attention.self.query.bias", p, i);
        T(TINY_H, TINY_D, 0.0f, "%sfastformer_model.encoders.%d.attention.self.query_att.weight", p,
          i);
        T(TINY_H, 0, 0.0f, "%sfastformer_model.encoders.%d.attention.self.query_att.bias", p, i);
        T(TINY_D, TINY_D, 0.0f, "%sfastformer_model.encoders.%d.attention.self.key.weight", p, i);
        T(TINY_D, 0, 0.0f, "%sfastformer_model.encoders.%d.attention.self.key.bias", p, i);
        T(TINY_H, TINY_D, 0.0f, "%sfastformer_model.encoders.%d.attention.self.key_att.weight", p,
          i);
        T(TINY_H, 0, 0.0f, "%sfastformer_model.encoders.%d.attention.self.key_att.bias", p, i);
        T(TINY_D, TINY_D, 0.0f, "%sfastformer_model.encoders.%d.attention.self.transform.weight", p,
          i);
        T(TINY_D, 0, 0.0f, "%sfastformer_model.encoders.%d.attention.self.transform.bias", p, i);
        T(TINY_D, TINY_D, 0.0f, "%sfastformer_model.encoders.%d.attention.output.dense.weight", p,
          i);
        T(TINY_D, 0, 0.0f, "%sfastformer_model.encoders.%d.attention.output.dense.bias", p, i);
        T(TINY_D, 0, 1.0f, "%sfastformer_model.encoders.%d.attention.output.LayerNorm.weight", p,
          i);
        T(TINY_D, 0, 0.0f, "%sfastformer_model.encoders.%d.attention.output.LayerNorm.bias", p, i);
        T(TINY_I, TINY_D, 0.0f, "%sfastformer_model.encoders.%d.intermediate.dense.weight", p, i);
        T(TINY_I, 0, 0.0f, "%sfastformer_model.encoders.%d.intermediate.dense.bias", p, i);
        T(TINY_D, TINY_I, 0.0f, "%sfastformer_model.encoders.%d.output.dense.weight", p, i);
        T(TINY_D, 0, 0.0f, "%sfastformer_model.encoders.%d.output.dense.bias", p, i);
        T(TINY_D, 0, 1.0f, "%sfastformer_model.encoders.%d.output.LayerNorm.weight", p, i);
        T(TINY_D, 0, 0.0f, "%sfastformer_model.encoders.%d.output.LayerNorm.bias", p, i);
    }
    T(TINY_D, TINY_D, 0.0f, "%sfastformer_model.poolers.0.att_fc1.weight", pre);
    T(TINY_D, 0, 0.0f, "%sfastformer_model.poolers.0.att_fc1.bias", pre);
    T(1, TINY_D, 0.0f, "%sfastformer_model.poolers.0.att_fc2.weight", pre);
    T(1, 0, 0.0f, "%sfastformer_model.poolers.0.att_fc2.bias", pre);
#undef T
}

/* Writes a new model directory and returns its malloc'd path (tiny_remove).
 * `seed` varies the weights, so two directories can hold different models. */
static inline char *tiny_model_dir(bool recommender, uint32_t seed)
{
    char *dir = strdup("/tmp/ff_tiny_XXXXXX");
    if (!mkdtemp(dir))
        abort();
    char path[512], text[2048];
    int at = snprintf(text, sizeof text, "[PAD]\n[UNK]\n");
    for (int i = 2; i < TINY_V; i++)
        at += snprintf(text + at, sizeof text - (size_t)at, "w%d\n", i);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    tiny_write(path, text);

    if (recommender)
        snprintf(text, sizeof text,
                 "{\"architectures\":[\"FastformerForNewsRecommendation\"],\"hidden_size\":%d,"
                 "\"num_attention_heads\":%d,\"intermediate_size\":%d,\"num_hidden_layers\":%d,"
                 "\"max_position_embeddings\":%d,\"vocab_size\":%d,\"layer_norm_eps\":1e-12,"
                 "\"user_num_hidden_layers\":%d,\"max_history\":%d,"
                 "\"tokenizer\":{\"type\":\"word\",\"lowercase\":true}}",
                 TINY_D, TINY_H, TINY_I, TINY_L, TINY_P, TINY_V, TINY_UL, TINY_UP);
    else
        snprintf(text, sizeof text,
                 "{\"architectures\":[\"FastformerForSequenceClassification\"],\"hidden_size\":%d,"
                 "\"num_attention_heads\":%d,\"intermediate_size\":%d,\"num_hidden_layers\":%d,"
                 "\"max_position_embeddings\":%d,\"vocab_size\":%d,\"layer_norm_eps\":1e-12,"
                 "\"id2label\":{\"0\":\"a\",\"1\":\"b\",\"2\":\"c\"},"
                 "\"tokenizer\":{\"type\":\"word\",\"lowercase\":true}}",
                 TINY_D, TINY_H, TINY_I, TINY_L, TINY_P, TINY_V);
    snprintf(path, sizeof path, "%s/config.json", dir);
    tiny_write(path, text);

    st_writer w = {0};
    uint32_t st = seed * 2654435761u + 12345u;
    if (recommender) {
        tiny_add(&w, &st, "news_encoder.word_embedding.weight", TINY_V, TINY_D, 0.0f);
        tiny_encoder(&w, &st, "news_encoder.", TINY_L, TINY_P);
        tiny_encoder(&w, &st, "user_encoder.", TINY_UL, TINY_UP);
    } else {
        tiny_add(&w, &st, "word_embedding.weight", TINY_V, TINY_D, 0.0f);
        tiny_encoder(&w, &st, "", TINY_L, TINY_P);
        tiny_add(&w, &st, "dense_linear.weight", TINY_C, TINY_D, 0.0f);
        tiny_add(&w, &st, "dense_linear.bias", TINY_C, 0, 0.0f);
    }
    size_t len;
    unsigned char *img = st_writer_finish(&w, 0, &len);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_write_file(path, img, len);
    free(img);
    return dir;
}

/* Removes a directory written by tiny_model_dir (and an optional extra file). */
static inline void tiny_remove(char *dir)
{
    static const char *const files[] = {"config.json", "vocab.txt", "model.safetensors",
                                        "news.tsv"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    free(dir);
}

#endif
