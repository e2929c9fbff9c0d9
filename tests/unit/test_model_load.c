/* test_model_load: model_load on tiny model directories written here in C
 * (config.json + vocab.txt + model.safetensors in a mkdtemp directory), so
 * no PyTorch is needed. Covers binding by official name (every tensor's
 * values are checked at its bound pointer), F16/BF16/misaligned conversion,
 * the qk concatenation, the release of the mapping when no tensor is read in
 * place, the owned and mapped byte counts and model_workspace_bytes, every
 * directory-level error with its exact message, and the task heads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>

#include "model.h"
#include "sha256.h"
#include "st_builder.h"

/* The tiny model: D hidden, H heads, I intermediate, L layers, P positions,
 * V vocab, C classes; the recommender's user encoder has UL layers, UP positions. */
enum { D = 8, H = 2, I = 12, L = 2, P = 6, V = 7, C = 3, UL = 1, UP = 4 };

static const char vocab_text[] = "[PAD]\n[UNK]\nthe\ncat\nsat\n.\ndog\n";

/* ---- the expected tensor list, written independently of model.c ---------- */

typedef struct {
    char name[128];
    int n_dims;
    int64_t shape[2];
} spec;

static int add_spec(spec *s, int n, int n_dims, int64_t d0, int64_t d1, const char *fmt, ...)
    FF_PRINTF(6, 7);
static int add_spec(spec *s, int n, int n_dims, int64_t d0, int64_t d1, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s[n].name, sizeof s[n].name, fmt, ap);
    va_end(ap);
    s[n].n_dims = n_dims;
    s[n].shape[0] = d0;
    s[n].shape[1] = d1;
    return n + 1;
}

static int encoder_specs(spec *s, int n, const char *pre, int n_layers, int n_pos)
{
    n = add_spec(s, n, 2, n_pos, D, "%sfastformer_model.position_embeddings.weight", pre);
    n = add_spec(s, n, 1, D, 0, "%sfastformer_model.LayerNorm.weight", pre);
    n = add_spec(s, n, 1, D, 0, "%sfastformer_model.LayerNorm.bias", pre);
    for (int i = 0; i < n_layers; i++) {
        static const struct {
            const char *leaf;
            int n_dims;
            int64_t d0, d1;
        } leaves[] = {
            {"attention.self.query.weight", 2, D, D},
            {"attention.self.query.bias", 1, D, 0},
            {"attention.self.query_att.weight", 2, H, D},
            {"attention.self.query_att.bias", 1, H, 0},
            {"attention.self.key.weight", 2, D, D},
            {"attention.self.key.bias", 1, D, 0},
            {"attention.self.key_att.weight", 2, H, D},
            {"attention.self.key_att.bias", 1, H, 0},
            {"attention.self.transform.weight", 2, D, D},
            {"attention.self.transform.bias", 1, D, 0},
            {"attention.output.dense.weight", 2, D, D},
            {"attention.output.dense.bias", 1, D, 0},
            {"attention.output.LayerNorm.weight", 1, D, 0},
            {"attention.output.LayerNorm.bias", 1, D, 0},
            {"intermediate.dense.weight", 2, I, D},
            {"intermediate.dense.bias", 1, I, 0},
            {"output.dense.weight", 2, D, I},
            {"output.dense.bias", 1, D, 0},
            {"output.LayerNorm.weight", 1, D, 0},
            {"output.LayerNorm.bias", 1, D, 0},
        };
        for (size_t k = 0; k < sizeof leaves / sizeof leaves[0]; k++)
            n = add_spec(s, n, leaves[k].n_dims, leaves[k].d0, leaves[k].d1,
                         "%sfastformer_model.encoders.%d.%s", pre, i, leaves[k].leaf);
    }
    n = add_spec(s, n, 2, D, D, "%sfastformer_model.poolers.0.att_fc1.weight", pre);
    n = add_spec(s, n, 1, D, 0, "%sfastformer_model.poolers.0.att_fc1.bias", pre);
    n = add_spec(s, n, 2, 1, D, "%sfastformer_model.poolers.0.att_fc2.weight", pre);
    n = add_spec(s, n, 1, 1, 0, "%sfastformer_model.poolers.0.att_fc2.bias", pre);
    return n;
}

/* Fills s (room for 200) with the task's tensors; returns the count. */
static int model_specs(model_task task, spec *s)
{
    int n = 0;
    if (task == MODEL_TASK_CLASSIFICATION) {
        n = add_spec(s, n, 2, V, D, "word_embedding.weight");
        n = encoder_specs(s, n, "", L, P);
        n = add_spec(s, n, 2, C, D, "dense_linear.weight");
        n = add_spec(s, n, 1, C, 0, "dense_linear.bias");
    } else {
        n = add_spec(s, n, 2, V, D, "news_encoder.word_embedding.weight");
        n = encoder_specs(s, n, "news_encoder.", L, P);
        n = encoder_specs(s, n, "user_encoder.", UL, UP);
    }
    return n;
}

/* Element k of tensor `name`: a multiple of 1/16 in [-1, 1], exact in F16 and BF16. */
static float value_of(const char *name, size_t k)
{
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return (float)((int)((h + k * 37u) % 33u) - 16) / 16.0f;
}

/* ---- writing model directories ------------------------------------------- */

typedef struct {
    model_task task;
    const char *dtype;   /* dtype of every tensor (default F32) */
    const char *f32;     /* one tensor written as F32 whatever dtype says */
    size_t misalign;     /* data area offset mod 8 (0 = aligned) */
    const char *skip;    /* tensor left out */
    const char *reshape; /* tensor written with shape `shape` instead */
    int reshape_dims;
    int64_t shape[2];
    bool extra; /* add tensors the loader does not know */
    /* int8 word embedding: > 0 writes the table as I8 (q_of) with a [V,
     * i8_groups] F32 scale tensor (scale_of); the fields below spoil it */
    int i8_groups;
    bool i8_dequantized;     /* write the table as F32 q * scale instead (a reference) */
    const char *i8_tensor;   /* also write this tensor as I8 */
    const char *scale_dtype; /* the scale tensor's dtype (default F32) */
    int scale_dims;          /* > 0: the scale tensor's shape is scale_shape */
    int64_t scale_shape[2];
    bool scale_skip;    /* no scale tensor */
    bool scale_orphan;  /* a scale tensor next to an F32 table */
    bool bad_scale_set; /* scale element 5 is bad_scale */
    float bad_scale;
    /* factored int8 word embedding: > 0 writes the table as I8 [V, rank]
     * (q_of) with [V, i8_groups] scales and NAME_projection F32 [D, rank]
     * (projection_of); the fields below spoil it */
    int rank;
    const char *projection_dtype; /* the projection's dtype (default F32) */
    int projection_dims;          /* > 0: the projection's shape is projection_shape */
    int64_t projection_shape[2];
    bool projection_skip;    /* no projection: the I8 [V, rank] table on its own */
    bool bad_projection_set; /* projection element 5 is bad_projection */
    float bad_projection;
    const char *extra_projection; /* also write an F32 [D, 4] tensor of this name */
} gen_opts;

/* The int8 table's values and scales: q in [-16, 16], scales in (0, 5/64],
 * row 0 (padding) all zero with scale 0. */
static float q_of(const char *name, size_t k)
{
    return k < D ? 0.0f : value_of(name, k) * 16.0f;
}

static float scale_of(size_t i)
{
    return i == 0 ? 0.0f : (float)(1 + i % 5) / 64.0f;
}

/* The projection of a factored table: multiples of 1/16 in [-1, 1], so that
 * with q_of and scale_of every product and every sum of a row is exact in
 * float (multiples of 1/1024 below 2^14): rows read exactly as in double. */
static float projection_of(size_t i)
{
    return value_of("projection", i);
}

static const char *table_name(model_task task)
{
    return task == MODEL_TASK_CLASSIFICATION ? "word_embedding.weight"
                                             : "news_encoder.word_embedding.weight";
}

/* Element (r, j) of the factored table of rank K with `groups` scales a row,
 * in double (exact: see projection_of). */
static double factored_at(const char *name, int rank, int groups, int r, int j)
{
    double x = 0.0;
    for (int k = 0; k < rank; k++) {
        const size_t at = (size_t)r * (size_t)rank + (size_t)k;
        x += (double)projection_of((size_t)j * (size_t)rank + (size_t)k) * (double)q_of(name, at) *
             (double)scale_of(at / (size_t)(rank / groups));
    }
    return x;
}

/* Adds the factored table's projection [D, rank], as o says. */
static void write_projection(st_writer *w, const gen_opts *o, const char *name)
{
    float p[2 * D * D]; /* room for [D, 2D] */
    for (size_t i = 0; i < 2 * D * D; i++)
        p[i] = projection_of(i);
    if (o->bad_projection_set)
        p[5] = o->bad_projection;
    char projection_name[160];
    snprintf(projection_name, sizeof projection_name, "%s_projection", name);
    int64_t shape[2] = {D, o->rank};
    int dims = 2;
    if (o->projection_dims > 0) {
        dims = o->projection_dims;
        memcpy(shape, o->projection_shape, sizeof shape);
    }
    st_writer_add(w, projection_name, o->projection_dtype ? o->projection_dtype : "F32", dims,
                  shape, p);
}

/* Adds the word embedding table (and its scales, and projection) as o says;
 * i8_dequantized writes the table it stands for as F32 instead. */
static void write_i8_table(st_writer *w, const gen_opts *o)
{
    const char *name = table_name(o->task);
    const int groups = o->i8_groups > 0 ? o->i8_groups : 1;
    const int width = o->rank > 0 ? o->rank : D;
    float q[2 * V * D], scales[4 * V * D], deq[V * D]; /* q: room for [V, 2D] */
    assert_true(width <= 2 * D);
    for (size_t k = 0; k < (size_t)V * (size_t)width; k++)
        q[k] = q_of(name, k);
    for (size_t k = 0; k < V * D; k++)
        deq[k] = o->rank > 0 ? (float)factored_at(name, o->rank, groups, (int)(k / D), (int)(k % D))
                             : q[k] * scale_of(k / (D / (size_t)groups));
    for (size_t i = 0; i < 4 * V * D; i++)
        scales[i] = scale_of(i);
    if (o->bad_scale_set)
        scales[5] = o->bad_scale;
    int64_t shape[2] = {V, width};
    if (o->reshape && strcmp(o->reshape, name) == 0)
        memcpy(shape, o->shape, sizeof shape);
    if (o->i8_dequantized || o->scale_orphan) {
        const int64_t full[2] = {V, D};
        st_writer_add(w, name, "F32", 2, full, deq);
    } else {
        st_writer_add(w, name, "I8", 2, shape, q);
    }
    if (o->rank > 0 && !o->projection_skip && !o->i8_dequantized)
        write_projection(w, o, name);
    if (o->scale_skip || o->i8_dequantized)
        return;
    char scale_name[160];
    snprintf(scale_name, sizeof scale_name, "%s_scale", name);
    int64_t scale_shape[2] = {V, groups};
    int scale_dims = 2;
    if (o->scale_dims > 0) {
        scale_dims = o->scale_dims;
        memcpy(scale_shape, o->scale_shape, sizeof scale_shape);
    }
    st_writer_add(w, scale_name, o->scale_dtype ? o->scale_dtype : "F32", scale_dims, scale_shape,
                  scales);
}

static void write_text(const char *dir, const char *file, const char *text, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    st_write_file(path, text, len);
}

static json_t *base_config(model_task task)
{
    json_t *c =
        json_pack("{s:[s],s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:s,s:s,s:{s:s,s:b}}", "architectures",
                  model_task_architecture(task), "hidden_size", D, "num_attention_heads", H,
                  "intermediate_size", I, "num_hidden_layers", L, "max_position_embeddings", P,
                  "vocab_size", V, "layer_norm_eps", 1e-12, "hidden_act", "gelu", "pooler_type",
                  "weightpooler", "tokenizer", "type", "word", "lowercase", 1);
    assert_non_null(c);
    if (task == MODEL_TASK_CLASSIFICATION) {
        json_object_set_new(c, "id2label",
                            json_pack("{s:s,s:s,s:s}", "0", "neg", "1", "neu", "2", "pos"));
    } else {
        json_object_set_new(c, "user_num_hidden_layers", json_integer(UL));
        json_object_set_new(c, "max_history", json_integer(UP));
    }
    return c;
}

/* Takes cfg. */
static void write_config(const char *dir, json_t *cfg)
{
    char *text = json_dumps(cfg, JSON_INDENT(2));
    write_text(dir, "config.json", text, strlen(text));
    free(text);
    json_decref(cfg);
}

static void write_weights(const char *dir, const gen_opts *o)
{
    spec s[200];
    int n = model_specs(o->task, s);
    st_writer w = {0};
    const char *dtype = o->dtype ? o->dtype : "F32";
    float *vals = malloc(sizeof(float) * 1024);
    bool i8 = o->i8_groups > 0 || o->i8_dequantized || o->scale_orphan || o->rank > 0;
    for (int i = 0; i < n; i++) {
        if (o->skip && strcmp(s[i].name, o->skip) == 0)
            continue;
        if (i8 && strcmp(s[i].name, table_name(o->task)) == 0) {
            write_i8_table(&w, o);
            continue;
        }
        int n_dims = s[i].n_dims;
        int64_t shape[2] = {s[i].shape[0], s[i].shape[1]};
        if (o->reshape && strcmp(s[i].name, o->reshape) == 0) {
            n_dims = o->reshape_dims;
            shape[0] = o->shape[0];
            shape[1] = o->shape[1];
        }
        size_t count = (size_t)shape[0] * (n_dims == 2 ? (size_t)shape[1] : 1);
        assert_true(count <= 1024);
        for (size_t k = 0; k < count; k++)
            vals[k] = value_of(s[i].name, k);
        bool as_f32 = o->f32 && strcmp(s[i].name, o->f32) == 0;
        bool as_i8 = o->i8_tensor && strcmp(s[i].name, o->i8_tensor) == 0;
        st_writer_add(&w, s[i].name, as_i8 ? "I8" : as_f32 ? "F32" : dtype, n_dims, shape, vals);
    }
    if (o->extra) {
        int64_t shape[1] = {3};
        float x[3] = {1, 2, 3};
        st_writer_add(&w, "fastformer_model.encoders.0.attention.self.value.weight", "F32", 1,
                      shape, x);
        st_writer_add(&w, "optimizer.step", "F32", 1, shape, x);
    }
    if (o->extra_projection) {
        const int64_t shape[2] = {D, 4};
        static const float zeros[D * 4];
        st_writer_add(&w, o->extra_projection, "F32", 2, shape, zeros);
    }
    free(vals);
    size_t len;
    unsigned char *img = st_writer_finish(&w, o->misalign, &len);
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_write_file(path, img, len);
    free(img);
}

/* A fresh temporary model directory written per o. */
static char *make_dir(const gen_opts *o)
{
    char *dir = strdup("/tmp/ff_model_XXXXXX");
    assert_non_null(mkdtemp(dir));
    write_config(dir, base_config(o->task));
    write_text(dir, "vocab.txt", vocab_text, strlen(vocab_text));
    write_weights(dir, o);
    return dir;
}

static void remove_dir(char *dir)
{
    static const char *const files[] = {"config.json", "vocab.txt", "model.safetensors"};
    char path[512];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
        rmdir(path); /* some tests make a directory in a file's place */
    }
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

static model *load_ok(const char *dir)
{
    char err[1024] = "";
    model *m = NULL;
    if (model_load(dir, &m, err, sizeof err) != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(m);
    return m;
}

/* Asserts model_load(dir) fails with exactly "DIR/" + rest. */
static void expect_load_error(const char *dir, const char *rest)
{
    char err[1024] = "", want[1024];
    model *m = (model *)1;
    assert_int_equal(model_load(dir, &m, err, sizeof err), -1);
    assert_null(m);
    snprintf(want, sizeof want, "%s/%s", dir, rest);
    assert_string_equal(err, want);
}

/* ---- checking what was bound ---------------------------------------------- */

static void check_values(const float *p, const char *name, size_t n)
{
    assert_non_null(p);
    for (size_t k = 0; k < n; k++)
        if (p[k] != value_of(name, k))
            fail_msg("%s[%zu] = %g, expected %g", name, k, (double)p[k], (double)value_of(name, k));
}

static void check_encoder(const fastformer_encoder *e, const char *pre, int n_layers, int n_pos)
{
    char name[160];
#define CHECK(ptr, n, ...)                                                                         \
    do {                                                                                           \
        snprintf(name, sizeof name, __VA_ARGS__);                                                  \
        check_values(ptr, name, n);                                                                \
    } while (0)
    assert_int_equal(e->dims.hidden_size, D);
    assert_int_equal(e->dims.num_attention_heads, H);
    assert_int_equal(e->dims.intermediate_size, I);
    assert_int_equal(e->dims.num_hidden_layers, n_layers);
    assert_int_equal(e->dims.max_position_embeddings, n_pos);
    CHECK(e->position_embeddings, (size_t)n_pos * D,
          "%sfastformer_model.position_embeddings.weight", pre);
    CHECK(e->ln_weight, D, "%sfastformer_model.LayerNorm.weight", pre);
    CHECK(e->ln_bias, D, "%sfastformer_model.LayerNorm.bias", pre);
    for (int i = 0; i < n_layers; i++) {
        const fastformer_layer *l = &e->layers[i];
        char at[96];
        snprintf(at, sizeof at, "%sfastformer_model.encoders.%d.", pre, i);
        CHECK(l->qk_weight, D * D, "%sattention.self.query.weight", at);
        CHECK(l->qk_weight + D * D, D * D, "%sattention.self.key.weight", at);
        CHECK(l->qk_bias, D, "%sattention.self.query.bias", at);
        CHECK(l->qk_bias + D, D, "%sattention.self.key.bias", at);
        CHECK(l->query_att_weight, H * D, "%sattention.self.query_att.weight", at);
        CHECK(l->query_att_bias, H, "%sattention.self.query_att.bias", at);
        CHECK(l->key_att_weight, H * D, "%sattention.self.key_att.weight", at);
        CHECK(l->key_att_bias, H, "%sattention.self.key_att.bias", at);
        CHECK(l->transform_weight, D * D, "%sattention.self.transform.weight", at);
        CHECK(l->transform_bias, D, "%sattention.self.transform.bias", at);
        CHECK(l->attn_out_weight, D * D, "%sattention.output.dense.weight", at);
        CHECK(l->attn_out_bias, D, "%sattention.output.dense.bias", at);
        CHECK(l->attn_ln_weight, D, "%sattention.output.LayerNorm.weight", at);
        CHECK(l->attn_ln_bias, D, "%sattention.output.LayerNorm.bias", at);
        CHECK(l->inter_weight, I * D, "%sintermediate.dense.weight", at);
        CHECK(l->inter_bias, I, "%sintermediate.dense.bias", at);
        CHECK(l->out_weight, D * I, "%soutput.dense.weight", at);
        CHECK(l->out_bias, D, "%soutput.dense.bias", at);
        CHECK(l->out_ln_weight, D, "%soutput.LayerNorm.weight", at);
        CHECK(l->out_ln_bias, D, "%soutput.LayerNorm.bias", at);
    }
    CHECK(e->pool_fc1_weight, D * D, "%sfastformer_model.poolers.0.att_fc1.weight", pre);
    CHECK(e->pool_fc1_bias, D, "%sfastformer_model.poolers.0.att_fc1.bias", pre);
    CHECK(e->pool_fc2_weight, D, "%sfastformer_model.poolers.0.att_fc2.weight", pre);
    CHECK(e->pool_fc2_bias, 1, "%sfastformer_model.poolers.0.att_fc2.bias", pre);
#undef CHECK
}

static size_t spec_floats(model_task task)
{
    spec s[200];
    int n = model_specs(task, s);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)s[i].shape[0] * (s[i].n_dims == 2 ? (size_t)s[i].shape[1] : 1);
    return total;
}

static bool in_mapping(const model *m, const float *p)
{
    const char *base = m->file.data;
    return base != NULL && (const char *)p >= base && (const char *)p < base + m->file.n_bytes;
}

/* Floats of the q|k buffers: per layer (2D, D) weights and 2D biases. */
static size_t qk_floats(int n_layers)
{
    return (size_t)n_layers * (2 * D * D + 2 * D);
}

/* Reads DIR/model.safetensors from disk: its size, and its digest into hex. */
static size_t weights_file(const char *dir, char hex[65])
{
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    assert_int_equal(fgetc(f), EOF);
    fclose(f);
    sha256_hex(buf, (size_t)n, hex);
    free(buf);
    return (size_t)n;
}

/* A model whose tensors are all converted: the mapping is gone, and the owned
 * buffer holds every parameter once (q|k replaces query and key). */
static void check_released(const model *m, model_task task)
{
    assert_null(m->file.data);
    assert_int_equal(m->file.n_bytes, 0);
    assert_int_equal(m->mapped_bytes, 0);
    assert_int_equal(m->owned_bytes, spec_floats(task) * sizeof(float));
}

static void check_classifier(const model *m, const char *dir)
{
    assert_int_equal(m->config.task, MODEL_TASK_CLASSIFICATION);
    assert_int_equal(m->config.num_labels, C);
    assert_string_equal(m->config.id2label[2], "pos");
    assert_int_equal(vocab_size(m->vocab), V);
    check_values(m->word_embedding.f32, "word_embedding.weight", V * D);
    check_encoder(&m->encoder, "", L, P);
    check_values(m->classifier_weight, "dense_linear.weight", C * D);
    check_values(m->classifier_bias, "dense_linear.bias", C);
    assert_int_equal(m->f32_bytes, spec_floats(MODEL_TASK_CLASSIFICATION) * sizeof(float));
    assert_int_equal(model_max_tokens(m), P);

    /* digest and size of the file, also when its mapping was released */
    char hex[65];
    assert_int_equal(m->weights_bytes, weights_file(dir, hex));
    assert_string_equal(m->weights_sha256, hex);
}

/* ---- loading valid directories ---------------------------------------------- */

static void test_load_classifier_f32(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    check_classifier(m, dir);
    /* aligned F32 tensors are views into the mapping; qk is always owned */
    assert_true(in_mapping(m, m->word_embedding.f32));
    assert_true(in_mapping(m, m->encoder.layers[1].out_weight));
    assert_true(in_mapping(m, m->classifier_bias));
    assert_false(in_mapping(m, m->encoder.layers[0].qk_weight));
    /* so the whole file stays mapped, and only q|k is owned */
    char hex[65];
    assert_int_equal(m->mapped_bytes, weights_file(dir, hex));
    assert_int_equal(m->file.n_bytes, m->mapped_bytes);
    assert_int_equal(m->owned_bytes, qk_floats(L) * sizeof(float));
    assert_int_equal(strlen(m->weights_sha256), 64);
    model_free(m);
    remove_dir(dir);
}

static void test_load_classifier_f16_bf16_misaligned(void **state)
{
    (void)state;
    static const struct {
        const char *dtype;
        size_t misalign;
    } cases[] = {{"F16", 0}, {"BF16", 0}, {"F32", 2}, {"F32", 1}, {"F16", 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gen_opts o = {.task = MODEL_TASK_CLASSIFICATION,
                      .dtype = cases[c].dtype,
                      .misalign = cases[c].misalign};
        char *dir = make_dir(&o);
        model *m = load_ok(dir);
        /* nothing can be a view: every tensor was converted into the owned
         * buffer, and the mapping was released; the values checked here are
         * read after the release */
        check_released(m, MODEL_TASK_CLASSIFICATION);
        check_classifier(m, dir);
        model_free(m);
        remove_dir(dir);
    }
}

static void test_load_recommender(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_NEWS_RECOMMENDATION};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    assert_int_equal(m->config.task, MODEL_TASK_NEWS_RECOMMENDATION);
    check_values(m->word_embedding.f32, "news_encoder.word_embedding.weight", V * D);
    check_encoder(&m->encoder, "news_encoder.", L, P);
    check_encoder(&m->user_encoder, "user_encoder.", UL, UP);
    assert_null(m->classifier_weight);
    assert_int_equal(m->f32_bytes, spec_floats(MODEL_TASK_NEWS_RECOMMENDATION) * sizeof(float));
    char hex[65];
    assert_int_equal(m->mapped_bytes, weights_file(dir, hex));
    assert_int_equal(m->owned_bytes, qk_floats(L + UL) * sizeof(float));
    model_free(m);
    remove_dir(dir);

    o.dtype = "BF16";
    dir = make_dir(&o);
    m = load_ok(dir);
    check_released(m, MODEL_TASK_NEWS_RECOMMENDATION);
    check_encoder(&m->encoder, "news_encoder.", L, P);
    check_encoder(&m->user_encoder, "user_encoder.", UL, UP);
    assert_int_equal(m->weights_bytes, weights_file(dir, hex));
    assert_string_equal(m->weights_sha256, hex);
    model_free(m);
    remove_dir(dir);
}

/* One aligned F32 tensor in an F16 file is read in place, so the mapping
 * stays; every other tensor is converted. */
static void test_mapping_kept_for_one_view(void **state)
{
    (void)state;
    gen_opts o = {
        .task = MODEL_TASK_CLASSIFICATION, .dtype = "F16", .f32 = "word_embedding.weight"};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    check_classifier(m, dir);
    assert_true(in_mapping(m, m->word_embedding.f32));
    assert_false(in_mapping(m, m->classifier_weight));
    char hex[65];
    assert_int_equal(m->mapped_bytes, weights_file(dir, hex));
    assert_int_equal(m->owned_bytes,
                     (spec_floats(MODEL_TASK_CLASSIFICATION) - (size_t)V * D) * sizeof(float));
    model_free(m);
    remove_dir(dir);
}

static void test_unknown_tensors_ignored(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION, .extra = true};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    check_classifier(m, dir);
    model_free(m);
    remove_dir(dir);
}

/* ---- int8 word embeddings ------------------------------------------------------ */

/* Every row of the loaded int8 table, read as the engine reads it, is
 * q * scale (computed here from q_of/scale_of, in float). */
static void check_i8_table(const model *m, int groups)
{
    const embedding_table *t = &m->word_embedding;
    const char *name = table_name(m->config.task);
    assert_int_equal(t->dtype, EMBEDDING_I8);
    assert_int_equal(t->n_rows, V);
    assert_int_equal(t->dim, D);
    assert_int_equal(t->block, D / groups);
    assert_int_equal(embedding_row_bytes(t), D);
    assert_int_equal(embedding_table_bytes(t), (size_t)V * D + (size_t)V * groups * sizeof(float));
    for (int r = 0; r < V; r++) {
        float row[D];
        embedding_row_read(t, embedding_row(t, r), row);
        for (int j = 0; j < D; j++) {
            const size_t k = (size_t)r * D + (size_t)j;
            const float want = q_of(name, k) * scale_of(k / (size_t)(D / groups));
            if (row[j] != want)
                fail_msg("row %d [%d] = %g, expected %g", r, j, (double)row[j], (double)want);
        }
    }
    assert_true(m->word_embedding.scale != NULL && !in_mapping(m, m->word_embedding.scale));
    assert_int_equal(m->i8_bytes, (size_t)V * D);
}

/* Floats the model owns besides q|k: the converted tensors and the scales. */
static size_t floats_without_table(model_task task, int groups)
{
    return spec_floats(task) - (size_t)V * D + (size_t)V * groups;
}

static void test_load_i8_embedding(void **state)
{
    (void)state;
    char hex[65];
    /* F32 file, one scale per row: the int8 rows are read in place */
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION, .i8_groups = 1};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    check_i8_table(m, 1);
    check_encoder(&m->encoder, "", L, P);
    assert_true(in_mapping(m, (const float *)(const void *)m->word_embedding.i8));
    assert_null(m->owned_i8);
    assert_int_equal(m->mapped_bytes, weights_file(dir, hex));
    assert_int_equal(m->owned_bytes, (qk_floats(L) + V) * sizeof(float));
    assert_int_equal(m->f32_bytes, floats_without_table(MODEL_TASK_CLASSIFICATION, 1) * 4);
    model_free(m);
    remove_dir(dir);

    /* F16 and misaligned F32 files, blocks of 4: nothing else is read in
     * place, so the int8 table is copied and the mapping released */
    static const struct {
        const char *dtype;
        size_t misalign;
    } cases[] = {{"F16", 0}, {"F32", 1}};
    for (size_t c = 0; c < 2; c++) {
        gen_opts r = {.task = MODEL_TASK_CLASSIFICATION,
                      .i8_groups = 2,
                      .dtype = cases[c].dtype,
                      .misalign = cases[c].misalign};
        dir = make_dir(&r);
        m = load_ok(dir);
        assert_null(m->file.data);
        assert_int_equal(m->mapped_bytes, 0);
        assert_ptr_equal(m->word_embedding.i8, m->owned_i8);
        assert_int_equal(m->owned_bytes,
                         floats_without_table(MODEL_TASK_CLASSIFICATION, 2) * 4 + (size_t)V * D);
        check_i8_table(m, 2); /* read after the release */
        check_encoder(&m->encoder, "", L, P);
        check_values(m->classifier_weight, "dense_linear.weight", C * D);
        model_free(m);
        remove_dir(dir);
    }

    /* a recommender's news table, one scale per element (blocks of 1) */
    gen_opts n = {.task = MODEL_TASK_NEWS_RECOMMENDATION, .i8_groups = D};
    dir = make_dir(&n);
    m = load_ok(dir);
    check_i8_table(m, D);
    check_encoder(&m->user_encoder, "user_encoder.", UL, UP);
    assert_int_equal(m->owned_bytes, (qk_floats(L + UL) + (size_t)V * D) * sizeof(float));
    model_free(m);
    remove_dir(dir);
}

/* The engine reads an int8 table row by row: the pooled vectors equal,
 * bit for bit, those of an F32 file holding the dequantized table. */
static void test_i8_encodes_as_its_dequantized_table(void **state)
{
    (void)state;
    for (int task = 0; task < 2; task++) {
        gen_opts o = {.task =
                          task == 0 ? MODEL_TASK_CLASSIFICATION : MODEL_TASK_NEWS_RECOMMENDATION,
                      .i8_groups = 2};
        char *dir_q = make_dir(&o);
        o.i8_dequantized = true;
        char *dir_f = make_dir(&o);
        model *mq = load_ok(dir_q), *mf = load_ok(dir_f);
        assert_int_equal(mf->word_embedding.dtype, EMBEDDING_F32);
        fastformer_workspace *ws = model_workspace_new(mq, 4 * P, 4);
        const int32_t a[P] = {2, 3, 4, 0, 6, 1}, b[3] = {5, 5, 2}, pad[2] = {0, 0};
        const int32_t *batch[3] = {a, b, pad};
        const int32_t lens[3] = {P, 3, 2};
        float pq[3 * D], pf[3 * D];
        model_encode_ids(mq, ws, batch, lens, 3, pq);
        model_encode_ids(mf, ws, batch, lens, 3, pf);
        assert_memory_equal(pq, pf, sizeof pq);
        float norm = 0;
        for (int j = 0; j < D; j++)
            norm += fabsf(pq[j]) + fabsf(pq[D + j]);
        assert_true(norm > 0.1f); /* not trivially equal */
        fastformer_workspace_free(ws);
        model_free(mq);
        model_free(mf);
        remove_dir(dir_q);
        remove_dir(dir_f);
    }
}

#define SCALE_RULE                                                                                 \
    "; scales must be in [0, 2.65845583e+36] (finite, and q * scale finite for every int8 q)"

/* Every way an int8 table can be wrong, with its exact message. */
static void test_i8_malformed(void **state)
{
    (void)state;
    static const struct {
        gen_opts o;
        const char *want;
    } cases[] = {
        {{.i8_groups = 1, .scale_skip = true},
         "tensor 'word_embedding.weight' is I8, but its scales 'word_embedding.weight_scale' are "
         "missing"},
        {{.i8_groups = 1, .scale_dtype = "F16"},
         "tensor 'word_embedding.weight_scale' has dtype F16, expected F32"},
        {{.i8_groups = 1, .scale_dtype = "I8"},
         "tensor 'word_embedding.weight_scale' is I8, but only the word embedding table "
         "'word_embedding.weight' may be I8"},
        {{.i8_groups = 1, .scale_dims = 1, .scale_shape = {V}},
         "tensor 'word_embedding.weight_scale' has shape [7]: expected [7,G] with G dividing 8"},
        {{.i8_groups = 1, .scale_dims = 2, .scale_shape = {V + 1, 1}},
         "tensor 'word_embedding.weight_scale' has shape [8,1]: expected [7,G] with G dividing 8"},
        {{.i8_groups = 1, .scale_dims = 2, .scale_shape = {V, 3}},
         "tensor 'word_embedding.weight_scale' has shape [7,3]: expected [7,G] with G dividing 8"},
        {{.i8_groups = 1, .scale_dims = 2, .scale_shape = {V, 0}},
         "tensor 'word_embedding.weight_scale' has shape [7,0]: expected [7,G] with G dividing 8"},
        {{.i8_groups = 1, .scale_dims = 2, .scale_shape = {V, 16}},
         "tensor 'word_embedding.weight_scale' has shape [7,16]: expected [7,G] with G dividing 8"},
        {{.i8_groups = 1, .bad_scale_set = true, .bad_scale = -0.5f},
         "tensor 'word_embedding.weight_scale': scale [5,0] is -0.5" SCALE_RULE},
        {{.i8_groups = 2, .bad_scale_set = true, .bad_scale = NAN},
         "tensor 'word_embedding.weight_scale': scale [2,1] is nan" SCALE_RULE},
        {{.i8_groups = 1, .bad_scale_set = true, .bad_scale = -INFINITY},
         "tensor 'word_embedding.weight_scale': scale [5,0] is -inf" SCALE_RULE},
        {{.i8_groups = 1, .bad_scale_set = true, .bad_scale = INFINITY},
         "tensor 'word_embedding.weight_scale': scale [5,0] is inf" SCALE_RULE},
        /* the largest allowed scale is FLT_MAX / 128; the next float is not */
        {{.i8_groups = 1, .bad_scale_set = true, .bad_scale = 0x1p+121f},
         "tensor 'word_embedding.weight_scale': scale [5,0] is 2.65845599e+36" SCALE_RULE},
        {{.i8_tensor = "dense_linear.weight"},
         "tensor 'dense_linear.weight' is I8, but only the word embedding table "
         "'word_embedding.weight' may be I8"},
        {{.i8_groups = 1, .i8_tensor = "fastformer_model.position_embeddings.weight"},
         "tensor 'fastformer_model.position_embeddings.weight' is I8, but only the word "
         "embedding table 'word_embedding.weight' may be I8"},
        {{.scale_orphan = true},
         "tensor 'word_embedding.weight_scale' holds int8 scales, but 'word_embedding.weight' is "
         "F32, not I8"},
        {{.i8_groups = 1, .reshape = "word_embedding.weight", .reshape_dims = 2, .shape = {V, 4}},
         "tensor 'word_embedding.weight' has shape [7,4], expected [7,8]"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gen_opts o = cases[c].o;
        o.task = MODEL_TASK_CLASSIFICATION;
        char *dir = make_dir(&o);
        char want[512];
        snprintf(want, sizeof want, "model.safetensors: %s", cases[c].want);
        expect_load_error(dir, want);
        remove_dir(dir);
    }

    /* a recommender: the news table may be I8, the user encoder's tensors not */
    gen_opts r = {.task = MODEL_TASK_NEWS_RECOMMENDATION,
                  .i8_groups = 1,
                  .i8_tensor = "user_encoder.fastformer_model.poolers.0.att_fc1.weight"};
    char *dir = make_dir(&r);
    expect_load_error(dir, "model.safetensors: tensor "
                           "'user_encoder.fastformer_model.poolers.0.att_fc1.weight' is I8, but "
                           "only the word embedding table 'news_encoder.word_embedding.weight' "
                           "may be I8");
    remove_dir(dir);
    /* an unknown I8 tensor is rejected too (unknown F32 ones are ignored) */
    r.i8_tensor = NULL;
    r.extra = true;
    dir = make_dir(&r);
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t len;
    const unsigned char data[2] = {1, 2};
    unsigned char *img =
        st_image("{\"optimizer.state\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                 data, 2, &len);
    st_write_file(path, img, len);
    free(img);
    expect_load_error(dir, "model.safetensors: tensor 'optimizer.state' is I8, but only the word "
                           "embedding table 'news_encoder.word_embedding.weight' may be I8");
    remove_dir(dir);
}

/* ---- factored int8 word embeddings ------------------------------------------ */

/* Every row of the loaded factored table, read as the engine reads it, is
 * exactly the table it stands for (factored_at: exact, see projection_of). */
static void check_factored_table(const model *m, int rank, int groups)
{
    const embedding_table *t = &m->word_embedding;
    const char *name = table_name(m->config.task);
    assert_int_equal(t->dtype, EMBEDDING_I8);
    assert_int_equal(t->n_rows, V);
    assert_int_equal(t->dim, D);
    assert_int_equal(t->width, rank);
    assert_int_equal(t->block, rank / groups);
    assert_non_null(t->projection);
    assert_int_equal(embedding_row_bytes(t), rank);
    assert_int_equal(embedding_table_bytes(t),
                     (size_t)V * rank + (size_t)V * groups * 4 + (size_t)D * rank * 4);
    for (int r = 0; r < V; r++) {
        float row[D];
        embedding_row_read(t, embedding_row(t, r), row);
        for (int j = 0; j < D; j++) {
            const double want = factored_at(name, rank, groups, r, j);
            if ((double)row[j] != want)
                fail_msg("row %d [%d] = %g, expected %g", r, j, (double)row[j], want);
        }
    }
    for (size_t i = 0; i < (size_t)D * rank; i++)
        assert_true(t->projection[i] == projection_of(i));
    assert_false(in_mapping(m, t->projection) || in_mapping(m, t->scale));
    assert_int_equal(m->i8_bytes, (size_t)V * rank);
}

/* Floats the model owns besides q|k: converted tensors, scales, projection. */
static size_t floats_factored(model_task task, int rank, int groups)
{
    return spec_floats(task) - (size_t)V * D + (size_t)V * groups + (size_t)D * rank;
}

static void test_load_factored_embedding(void **state)
{
    (void)state;
    char hex[65];
    /* F32 file, rank 4 (V * 4 bytes keep the F32 tensors after it aligned),
     * one scale per row: the int8 rows are read in place, the scales and the
     * projection are owned */
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION, .i8_groups = 1, .rank = 4};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    check_factored_table(m, 4, 1);
    check_encoder(&m->encoder, "", L, P);
    assert_true(in_mapping(m, (const float *)(const void *)m->word_embedding.i8));
    assert_null(m->owned_i8);
    assert_int_equal(m->mapped_bytes, weights_file(dir, hex));
    assert_int_equal(m->owned_bytes, (qk_floats(L) + V + D * 4) * sizeof(float));
    assert_int_equal(m->f32_bytes, floats_factored(MODEL_TASK_CLASSIFICATION, 4, 1) * 4);
    model_free(m);
    remove_dir(dir);

    /* F16 and misaligned F32 files, rank 6 in blocks of 2: nothing else is
     * read in place, so the table is copied, the mapping released, and the
     * rows read afterwards */
    static const struct {
        const char *dtype;
        size_t misalign;
    } cases[] = {{"F16", 0}, {"F32", 1}};
    for (size_t c = 0; c < 2; c++) {
        gen_opts r = {.task = MODEL_TASK_CLASSIFICATION,
                      .i8_groups = 3,
                      .rank = 6,
                      .dtype = cases[c].dtype,
                      .misalign = cases[c].misalign};
        dir = make_dir(&r);
        m = load_ok(dir);
        assert_null(m->file.data);
        assert_int_equal(m->mapped_bytes, 0);
        assert_ptr_equal(m->word_embedding.i8, m->owned_i8);
        assert_int_equal(m->owned_bytes,
                         floats_factored(MODEL_TASK_CLASSIFICATION, 6, 3) * 4 + (size_t)V * 6);
        check_factored_table(m, 6, 3);
        check_values(m->classifier_weight, "dense_linear.weight", C * D);
        model_free(m);
        remove_dir(dir);
    }

    /* a recommender's news table at full rank K = D, one scale per element */
    gen_opts n = {.task = MODEL_TASK_NEWS_RECOMMENDATION, .i8_groups = D, .rank = D};
    dir = make_dir(&n);
    m = load_ok(dir);
    check_factored_table(m, D, D);
    check_encoder(&m->user_encoder, "user_encoder.", UL, UP);
    model_free(m);
    remove_dir(dir);
}

/* A factored table encodes as the F32 table it stands for, bit for bit (its
 * rows are exact here). */
static void test_factored_encodes_as_its_table(void **state)
{
    (void)state;
    for (int task = 0; task < 2; task++) {
        gen_opts o = {.task =
                          task == 0 ? MODEL_TASK_CLASSIFICATION : MODEL_TASK_NEWS_RECOMMENDATION,
                      .i8_groups = 1,
                      .rank = 5};
        char *dir_q = make_dir(&o);
        o.i8_dequantized = true;
        char *dir_f = make_dir(&o);
        model *mq = load_ok(dir_q), *mf = load_ok(dir_f);
        assert_non_null(mq->word_embedding.projection);
        assert_int_equal(mf->word_embedding.dtype, EMBEDDING_F32);
        fastformer_workspace *ws = model_workspace_new(mq, 4 * P, 4);
        const int32_t a[P] = {2, 3, 4, 0, 6, 1}, b[3] = {5, 5, 2}, pad[2] = {0, 0};
        const int32_t *batch[3] = {a, b, pad};
        const int32_t lens[3] = {P, 3, 2};
        float pq[3 * D], pf[3 * D];
        model_encode_ids(mq, ws, batch, lens, 3, pq);
        model_encode_ids(mf, ws, batch, lens, 3, pf);
        assert_memory_equal(pq, pf, sizeof pq);
        float norm = 0;
        for (int j = 0; j < D; j++)
            norm += fabsf(pq[j]) + fabsf(pq[D + j]);
        assert_true(norm > 0.1f); /* not trivially equal */
        fastformer_workspace_free(ws);
        model_free(mq);
        model_free(mf);
        remove_dir(dir_q);
        remove_dir(dir_f);
    }
}

/* Every way a factored table can be wrong, with its exact message. */
static void test_factored_malformed(void **state)
{
    (void)state;
    static const struct {
        gen_opts o;
        const char *want;
    } cases[] = {
        /* a projection next to a table that is not I8 */
        {{.extra_projection = "word_embedding.weight_projection"},
         "tensor 'word_embedding.weight_projection' is the projection of a factored int8 table, "
         "but 'word_embedding.weight' is F32, not I8"},
        {{.dtype = "F16", .extra_projection = "word_embedding.weight_projection"},
         "tensor 'word_embedding.weight_projection' is the projection of a factored int8 table, "
         "but 'word_embedding.weight' is F16, not I8"},
        /* ... or to no table at all */
        {{.skip = "word_embedding.weight", .extra_projection = "word_embedding.weight_projection"},
         "tensor 'word_embedding.weight_projection' is the projection of a factored int8 table, "
         "but 'word_embedding.weight' is missing"},
        /* a projection for any other tensor */
        {{.extra_projection = "dense_linear.weight_projection"},
         "tensor 'dense_linear.weight_projection' is named as the projection of a factored int8 "
         "table, but only the word embedding table's 'word_embedding.weight_projection' may be "
         "one"},
        {{.i8_groups = 1,
          .rank = 3,
          .extra_projection = "news_encoder.word_embedding.weight_projection"},
         "tensor 'news_encoder.word_embedding.weight_projection' is named as the projection of a "
         "factored int8 table, but only the word embedding table's "
         "'word_embedding.weight_projection' may be one"},
        /* the projection's dtype, shape and values */
        {{.i8_groups = 1, .rank = 3, .projection_dtype = "F16"},
         "tensor 'word_embedding.weight_projection' has dtype F16, expected F32"},
        {{.i8_groups = 1, .rank = 3, .projection_dtype = "BF16"},
         "tensor 'word_embedding.weight_projection' has dtype BF16, expected F32"},
        {{.i8_groups = 1, .rank = 3, .projection_dims = 2, .projection_shape = {3, D}},
         "tensor 'word_embedding.weight_projection' has shape [3,8], expected [8,3]"},
        {{.i8_groups = 1, .rank = 3, .projection_dims = 2, .projection_shape = {D, 4}},
         "tensor 'word_embedding.weight_projection' has shape [8,4], expected [8,3]"},
        {{.i8_groups = 1, .rank = 3, .projection_dims = 1, .projection_shape = {D * 3}},
         "tensor 'word_embedding.weight_projection' has shape [24], expected [8,3]"},
        {{.i8_groups = 1, .rank = 3, .bad_projection_set = true, .bad_projection = NAN},
         "tensor 'word_embedding.weight_projection': element [1,2] is nan; projection values "
         "must be finite"},
        {{.i8_groups = 1, .rank = 3, .bad_projection_set = true, .bad_projection = INFINITY},
         "tensor 'word_embedding.weight_projection': element [1,2] is inf; projection values "
         "must be finite"},
        /* the table's rank: K > D, and K = 0 */
        {{.i8_groups = 1, .rank = D + 1},
         "tensor 'word_embedding.weight' has shape [7,9]: with a projection it must be [7,K] "
         "with 1 <= K <= 8"},
        {{.i8_groups = 1,
          .rank = 3,
          .reshape = "word_embedding.weight",
          .reshape_dims = 2,
          .shape = {V, 0}},
         "tensor 'word_embedding.weight' has shape [7,0]: with a projection it must be [7,K] "
         "with 1 <= K <= 8"},
        {{.i8_groups = 1,
          .rank = 3,
          .reshape = "word_embedding.weight",
          .reshape_dims = 2,
          .shape = {V + 1, 3}},
         "tensor 'word_embedding.weight' has shape [8,3]: with a projection it must be [7,K] "
         "with 1 <= K <= 8"},
        /* an I8 table narrower than D with no projection: today's shape error */
        {{.i8_groups = 1, .rank = 3, .projection_skip = true},
         "tensor 'word_embedding.weight' has shape [7,3], expected [7,8]"},
        /* the scales, relative to K */
        {{.i8_groups = 2, .rank = 3},
         "tensor 'word_embedding.weight_scale' has shape [7,2]: expected [7,G] with G dividing 3"},
        {{.i8_groups = 1, .rank = 3, .scale_skip = true},
         "tensor 'word_embedding.weight' is I8, but its scales 'word_embedding.weight_scale' are "
         "missing"},
        /* a scale within FLT_MAX / 128 whose rows could still overflow */
        {{.i8_groups = 1, .rank = 3, .bad_scale_set = true, .bad_scale = 1e36f},
         "tensor 'word_embedding.weight_scale': scale [5,0] is 9.99999962e+35, above FLT_MAX / "
         "(256 * K * max|P|) = 4.43075972e+35 (K = 3, max|P| = 1 in "
         "'word_embedding.weight_projection'), so the table's rows could overflow"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gen_opts o = cases[c].o;
        o.task = MODEL_TASK_CLASSIFICATION;
        char *dir = make_dir(&o);
        char want[600];
        snprintf(want, sizeof want, "model.safetensors: %s", cases[c].want);
        expect_load_error(dir, want);
        remove_dir(dir);
    }

    /* a recommender: the projection must be the news table's */
    gen_opts r = {.task = MODEL_TASK_NEWS_RECOMMENDATION,
                  .i8_groups = 1,
                  .rank = 3,
                  .extra_projection = "word_embedding.weight_projection"};
    char *dir = make_dir(&r);
    expect_load_error(dir, "model.safetensors: tensor 'word_embedding.weight_projection' is named "
                           "as the projection of a factored int8 table, but only the word "
                           "embedding table's 'news_encoder.word_embedding.weight_projection' may "
                           "be one");
    remove_dir(dir);
}

/* ---- malformed directories ------------------------------------------------- */

static void test_missing_tensor(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION,
                  .skip = "fastformer_model.encoders.1.attention.self.key.weight"};
    char *dir = make_dir(&o);
    expect_load_error(dir, "model.safetensors: missing tensor "
                           "'fastformer_model.encoders.1.attention.self.key.weight'");
    remove_dir(dir);

    static const char *const others[] = {"word_embedding.weight", "dense_linear.bias",
                                         "fastformer_model.poolers.0.att_fc2.bias",
                                         "fastformer_model.encoders.0.attention.self.query.bias"};
    for (size_t i = 0; i < 4; i++) {
        o.skip = others[i];
        dir = make_dir(&o);
        char want[256];
        snprintf(want, sizeof want, "model.safetensors: missing tensor '%s'", others[i]);
        expect_load_error(dir, want);
        remove_dir(dir);
    }

    /* a recommender needs the user encoder (and the news_encoder. prefix) */
    gen_opts r = {.task = MODEL_TASK_NEWS_RECOMMENDATION,
                  .skip = "user_encoder.fastformer_model.encoders.0.output.LayerNorm.bias"};
    dir = make_dir(&r);
    expect_load_error(dir, "model.safetensors: missing tensor "
                           "'user_encoder.fastformer_model.encoders.0.output.LayerNorm.bias'");
    remove_dir(dir);
}

static void test_wrong_shape(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION,
                  .reshape = "fastformer_model.encoders.1.attention.self.key.weight",
                  .reshape_dims = 2,
                  .shape = {D, D / 2}};
    char *dir = make_dir(&o);
    expect_load_error(dir, "model.safetensors: tensor "
                           "'fastformer_model.encoders.1.attention.self.key.weight' has shape "
                           "[8,4], expected [8,8]");
    remove_dir(dir);

    o.reshape = "fastformer_model.LayerNorm.weight";
    o.shape[0] = D;
    o.shape[1] = 1;
    dir = make_dir(&o);
    expect_load_error(dir, "model.safetensors: tensor 'fastformer_model.LayerNorm.weight' has "
                           "shape [8,1], expected [8]");
    remove_dir(dir);

    o.reshape = "dense_linear.weight";
    o.shape[0] = C + 1;
    o.shape[1] = D;
    dir = make_dir(&o);
    expect_load_error(dir, "model.safetensors: tensor 'dense_linear.weight' has shape [4,8], "
                           "expected [3,8]");
    remove_dir(dir);

    o.reshape = "fastformer_model.encoders.0.intermediate.dense.weight"; /* transposed */
    o.shape[0] = D;
    o.shape[1] = I;
    dir = make_dir(&o);
    expect_load_error(dir, "model.safetensors: tensor "
                           "'fastformer_model.encoders.0.intermediate.dense.weight' has shape "
                           "[8,12], expected [12,8]");
    remove_dir(dir);

    /* the user encoder's positions are max_history, not max_position_embeddings */
    gen_opts r = {.task = MODEL_TASK_NEWS_RECOMMENDATION,
                  .reshape = "user_encoder.fastformer_model.position_embeddings.weight",
                  .reshape_dims = 2,
                  .shape = {P, D}};
    dir = make_dir(&r);
    expect_load_error(dir, "model.safetensors: tensor "
                           "'user_encoder.fastformer_model.position_embeddings.weight' has shape "
                           "[6,8], expected [4,8]");
    remove_dir(dir);
}

static void test_config_disagrees_with_tensors(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION};
    char *dir = make_dir(&o);
    json_t *cfg = base_config(o.task);
    json_object_set_new(cfg, "num_hidden_layers", json_integer(L + 1));
    write_config(dir, cfg);
    expect_load_error(dir, "model.safetensors: missing tensor "
                           "'fastformer_model.encoders.2.attention.self.query.weight'");

    cfg = base_config(o.task);
    json_object_set_new(cfg, "id2label", json_pack("{s:s,s:s}", "0", "a", "1", "b"));
    write_config(dir, cfg);
    expect_load_error(dir, "model.safetensors: tensor 'dense_linear.weight' has shape [3,8], "
                           "expected [2,8]");

    /* a classifier directory declared as a recommender */
    cfg = base_config(MODEL_TASK_NEWS_RECOMMENDATION);
    write_config(dir, cfg);
    expect_load_error(dir,
                      "model.safetensors: missing tensor 'news_encoder.word_embedding.weight'");
    remove_dir(dir);
}

static void test_bad_safetensors_file(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION};
    char *dir = make_dir(&o);
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);

    /* truncated: the last tensor's data runs past EOF */
    assert_int_equal(truncate(path, st.st_size - 4), 0);
    char err[1024] = "";
    model *m = NULL;
    assert_int_equal(model_load(dir, &m, err, sizeof err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s/model.safetensors: tensor '", dir);
    assert_memory_equal(err, want, strlen(want));
    assert_non_null(strstr(err, "out of range (data area is"));

    /* truncated inside the header */
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(model_load(dir, &m, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s/model.safetensors: header length ", dir);
    assert_memory_equal(err, want, strlen(want));
    assert_non_null(strstr(err, "exceeds the file (92 bytes after the length)"));

    /* empty */
    assert_int_equal(truncate(path, 0), 0);
    expect_load_error(dir, "model.safetensors: file is 0 bytes, too short for the 8-byte "
                           "header length");

    /* valid JSON, unknown dtype */
    size_t len;
    unsigned char data[8] = {0};
    unsigned char *img = st_image(
        "{\"word_embedding.weight\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
        data, 8, &len);
    st_write_file(path, img, len);
    free(img);
    expect_load_error(dir, "model.safetensors: tensor 'word_embedding.weight': unsupported dtype "
                           "'I64' (expected F32, F16, BF16 or I8)");

    /* bad JSON */
    img = st_image("{\"word_embedding.weight\":", data, 8, &len);
    st_write_file(path, img, len);
    free(img);
    assert_int_equal(model_load(dir, &m, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s/model.safetensors: header is not valid JSON", dir);
    assert_memory_equal(err, want, strlen(want));

    /* overlapping tensors */
    img = st_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   data, 8, &len);
    st_write_file(path, img, len);
    free(img);
    expect_load_error(dir, "model.safetensors: tensor 'b': data_offsets [4,8] overlap tensor 'a' "
                           "[0,8]");
    remove_dir(dir);
}

static void test_bad_config(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION};
    char *dir = make_dir(&o);

    json_t *cfg = base_config(o.task);
    json_object_del(cfg, "hidden_size");
    write_config(dir, cfg);
    expect_load_error(dir, "config.json: missing required key 'hidden_size'");

    cfg = base_config(o.task);
    json_object_set_new(cfg, "num_attention_heads", json_integer(3));
    write_config(dir, cfg);
    expect_load_error(dir, "config.json: 'num_attention_heads' 3 does not divide 'hidden_size' 8");

    cfg = base_config(o.task);
    json_object_set_new(cfg, "hidden_size", json_string("8"));
    write_config(dir, cfg);
    expect_load_error(dir, "config.json: 'hidden_size' must be an integer");

    cfg = base_config(o.task);
    json_object_set_new(cfg, "id2label", json_pack("{s:s,s:s}", "0", "a", "2", "b"));
    write_config(dir, cfg);
    expect_load_error(dir, "config.json: 'id2label' key '2' is not one of \"0\"..\"1\" (2 labels)");

    cfg = base_config(o.task);
    json_object_set_new(cfg, "tokenizer", json_pack("{s:s}", "type", "sentencepiece"));
    write_config(dir, cfg);
    expect_load_error(dir, "config.json: 'tokenizer.type' 'sentencepiece' is unknown (expected "
                           "'word' or 'wordpiece')");

    write_text(dir, "config.json", "{\"hidden_size\": 8,", 18);
    char err[1024] = "", want[600];
    model *m = NULL;
    assert_int_equal(model_load(dir, &m, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s/config.json: not valid JSON: ", dir);
    assert_memory_equal(err, want, strlen(want));

    write_text(dir, "config.json", "", 0);
    assert_int_equal(model_load(dir, &m, err, sizeof err), -1);
    assert_memory_equal(err, want, strlen(want));
    remove_dir(dir);
}

static void test_bad_vocab(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION};
    char *dir = make_dir(&o);
    static const char short_vocab[] = "[PAD]\n[UNK]\nthe\ncat\nsat\n.\n";
    write_text(dir, "vocab.txt", short_vocab, strlen(short_vocab));
    expect_load_error(dir, "vocab.txt: has 6 lines, but config.json 'vocab_size' is 7");

    static const char long_vocab[] = "[PAD]\n[UNK]\nthe\ncat\nsat\n.\ndog\nextra\n";
    write_text(dir, "vocab.txt", long_vocab, strlen(long_vocab));
    expect_load_error(dir, "vocab.txt: has 8 lines, but config.json 'vocab_size' is 7");

    write_text(dir, "vocab.txt", "", 0);
    expect_load_error(dir, "vocab.txt: empty (no tokens)");

    /* right size, CRLF and no final newline: fine */
    static const char crlf[] = "[PAD]\r\n[UNK]\r\nthe\r\ncat\r\nsat\r\n.\r\ndog";
    write_text(dir, "vocab.txt", crlf, strlen(crlf));
    model *m = load_ok(dir);
    assert_int_equal(vocab_lookup(m->vocab, "dog", 3), 6);
    model_free(m);

    /* the tokenizer needs [UNK] */
    static const char no_unk[] = "[PAD]\n[unk]\nthe\ncat\nsat\n.\ndog\n";
    write_text(dir, "vocab.txt", no_unk, strlen(no_unk));
    char err[1024] = "", want[600];
    assert_int_equal(model_load(dir, &m, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s/vocab.txt: ", dir);
    assert_memory_equal(err, want, strlen(want));
    assert_non_null(strstr(err, "[UNK]"));
    remove_dir(dir);
}

static void test_missing_files(void **state)
{
    (void)state;
    static const char *const files[] = {"config.json", "vocab.txt", "model.safetensors"};
    for (size_t i = 0; i < 3; i++) {
        gen_opts o = {.task = MODEL_TASK_CLASSIFICATION};
        char *dir = make_dir(&o);
        char path[600], want[600];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        assert_int_equal(unlink(path), 0);
        snprintf(want, sizeof want, "%s: No such file or directory", files[i]);
        expect_load_error(dir, want);
        /* a directory where the file should be */
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(want, sizeof want, "%s: not a regular file", files[i]);
        expect_load_error(dir, want);
        remove_dir(dir);
    }
    expect_load_error("/nonexistent/ff_model", "config.json: No such file or directory");

    char long_dir[5000];
    memset(long_dir, 'x', sizeof long_dir - 1);
    long_dir[sizeof long_dir - 1] = '\0';
    char err[8192];
    model *m = NULL;
    assert_int_equal(model_load(long_dir, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, ": model directory path too long"));
}

/* ---- heads and inference ---------------------------------------------------- */

static void test_classify(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    float pooled[2 * D];
    for (int j = 0; j < D; j++) {
        pooled[j] = (float)(j - 3) * 0.25f;
        pooled[D + j] = 0.0f;
    }
    float logits[2 * C], probs[2 * C], probs_only[2 * C];
    model_classify(m, pooled, 2, logits, probs);
    model_classify(m, pooled, 2, NULL, probs_only);
    assert_memory_equal(probs, probs_only, sizeof probs);
    double z[C], max = -1e30, sum = 0;
    for (int c = 0; c < C; c++) {
        z[c] = value_of("dense_linear.bias", (size_t)c);
        for (int j = 0; j < D; j++)
            z[c] += (double)pooled[j] * value_of("dense_linear.weight", (size_t)(c * D + j));
        assert_true(fabs(logits[c] - z[c]) < 1e-6);
        max = z[c] > max ? z[c] : max;
    }
    for (int c = 0; c < C; c++)
        sum += exp(z[c] - max);
    for (int c = 0; c < C; c++)
        assert_true(fabs(probs[c] - exp(z[c] - max) / sum) < 1e-6);
    /* a zero pooled vector (all padding) gives logits equal to the bias */
    for (int c = 0; c < C; c++)
        assert_true(logits[C + c] == value_of("dense_linear.bias", (size_t)c));
    float logits_only[2 * C];
    model_classify(m, pooled, 2, logits_only, NULL);
    assert_memory_equal(logits, logits_only, sizeof logits);
    model_free(m);
    remove_dir(dir);
}

static void test_score(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_NEWS_RECOMMENDATION};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    float user[D], cands[3 * D], scores[3];
    for (int j = 0; j < D; j++) {
        user[j] = (float)j;
        cands[j] = 1.0f;
        cands[D + j] = 0.0f;
        cands[2 * D + j] = (j % 2) ? -0.5f : 0.5f;
    }
    model_score(m, user, cands, 3, scores);
    assert_true(scores[0] == 28.0f);
    assert_true(scores[1] == 0.0f);
    assert_true(scores[2] == -2.0f);
    model_free(m);
    remove_dir(dir);
}

static void test_tokenize(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    int32_t ids[P];
    size_t n;
    bool truncated;
    char err[256];
    const char *text = "The cat sat.";
    assert_int_equal(model_tokenize(m, text, strlen(text), ids, &n, &truncated, err, sizeof err),
                     0);
    assert_int_equal(n, 4);
    assert_false(truncated);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 4);
    assert_int_equal(ids[3], 5);
    text = "the dog the cat the zebra the";
    assert_int_equal(model_tokenize(m, text, strlen(text), ids, &n, &truncated, err, sizeof err),
                     0);
    assert_int_equal(n, P);
    assert_true(truncated);
    assert_int_equal(ids[5], 1); /* zebra -> [UNK] */
    assert_int_equal(model_tokenize(m, "\xff", 1, ids, &n, &truncated, err, sizeof err), -1);
    model_free(m);
    remove_dir(dir);
}

/* Encoding is independent of trailing padding and of batch company. */
static void test_encode_ids_padding_and_batching(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_CLASSIFICATION};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    fastformer_workspace *ws = model_workspace_new(m, 4 * P, 4);
    assert_non_null(ws);

    const int32_t a[P] = {2, 3, 4, 0, 0, 0}, a_short[3] = {2, 3, 4};
    const int32_t b[P] = {6, 0, 5, 2, 3, 1}, pad[P] = {0, 0, 0, 0, 0, 0};
    const int32_t *batch[4] = {a, b, pad, a_short};
    const int32_t lens[4] = {P, P, P, 3};
    float pooled[4 * D], alone[D];
    model_encode_ids(m, ws, batch, lens, 4, pooled);
    for (int j = 0; j < D; j++) {
        assert_true(isfinite(pooled[j]) && isfinite(pooled[D + j]));
        assert_true(pooled[2 * D + j] == 0.0f); /* all padding pools to zero */
        /* trailing padding changes nothing (up to GEMM blocking across the batch) */
        assert_true(fabsf(pooled[j] - pooled[3 * D + j]) <= 1e-6f * (1.0f + fabsf(pooled[j])));
    }
    const int32_t *one[1] = {b};
    model_encode_ids(m, ws, one, lens, 1, alone);
    for (int j = 0; j < D; j++)
        assert_true(fabsf(alone[j] - pooled[D + j]) <= 1e-6f * (1.0f + fabsf(alone[j])));
    /* an interior 0 is padding that keeps its position: not the same as removing it */
    const int32_t b_removed[5] = {6, 5, 2, 3, 1};
    const int32_t *two[1] = {b_removed};
    const int32_t len5[1] = {5};
    model_encode_ids(m, ws, two, len5, 1, alone);
    float diff = 0;
    for (int j = 0; j < D; j++)
        diff += fabsf(alone[j] - pooled[D + j]);
    assert_true(diff > 1e-4f);
    /* zero sequences is fine */
    model_encode_ids(m, ws, NULL, NULL, 0, pooled);

    fastformer_workspace_free(ws);
    model_free(m);
    remove_dir(dir);
}

static void test_encode_users_history(void **state)
{
    (void)state;
    gen_opts o = {.task = MODEL_TASK_NEWS_RECOMMENDATION};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    fastformer_workspace *ws = model_workspace_new(m, 3 * P, 3);
    assert_non_null(ws);

    enum { N_NEWS = UP + 2 };
    float news[N_NEWS * D];
    for (int i = 0; i < N_NEWS * D; i++)
        news[i] = (float)((i * 7) % 11 - 5) / 8.0f;
    /* user 0: all N_NEWS (only the last UP count); user 1: empty; user 2: the last UP */
    int32_t hist_start[4] = {0, N_NEWS, N_NEWS, N_NEWS + UP};
    float all[(N_NEWS + UP) * D];
    memcpy(all, news, sizeof news);
    memcpy(all + N_NEWS * D, news + 2 * D, (size_t)UP * D * sizeof(float));
    float users[3 * D];
    model_encode_users(m, ws, all, hist_start, 3, users);
    for (int j = 0; j < D; j++) {
        assert_true(isfinite(users[j]));
        assert_true(users[D + j] == 0.0f);
        assert_true(fabsf(users[j] - users[2 * D + j]) <= 1e-6f * (1.0f + fabsf(users[j])));
    }
    /* a different (older) window gives a different user vector */
    int32_t hs2[2] = {0, UP};
    float older[D], diff = 0;
    model_encode_users(m, ws, news, hs2, 1, older);
    for (int j = 0; j < D; j++)
        diff += fabsf(older[j] - users[j]);
    assert_true(diff > 1e-4f);

    /* only empty histories: no news vectors needed at all */
    int32_t empty[3] = {0, 0, 0};
    model_encode_users(m, ws, NULL, empty, 2, users);
    for (int j = 0; j < 2 * D; j++)
        assert_true(users[j] == 0.0f);

    fastformer_workspace_free(ws);
    model_free(m);
    remove_dir(dir);
}

/* model_workspace_bytes is what model_workspace_new allocates: the engine's
 * workspace for the longer of the two encoders' sequences. */
static void test_workspace_bytes(void **state)
{
    (void)state;
    fastformer_dims text = {.hidden_size = D,
                            .num_attention_heads = H,
                            .intermediate_size = I,
                            .num_hidden_layers = L,
                            .max_position_embeddings = P,
                            .layer_norm_eps = 1e-12f};

    /* a loaded recommender whose titles (P = 6) are longer than its history (UP = 4) */
    gen_opts o = {.task = MODEL_TASK_NEWS_RECOMMENDATION};
    char *dir = make_dir(&o);
    model *m = load_ok(dir);
    assert_int_equal(model_workspace_bytes(m, 5 * P, 5),
                     fastformer_workspace_bytes(&text, 5 * P, 5));
    fastformer_workspace *ws = model_workspace_new(m, 5 * P, 5);
    assert_non_null(ws);
    assert_int_equal(ws->dims.max_position_embeddings, P);
    fastformer_workspace_free(ws);
    model_free(m);
    remove_dir(dir);

    /* a recommender whose history (600 clicks) is longer than its titles:
     * the workspace's scratch holds a whole history, so it is larger than
     * one sized from the news encoder */
    model big;
    memset(&big, 0, sizeof big);
    big.config.task = MODEL_TASK_NEWS_RECOMMENDATION;
    big.config.encoder = text;
    big.config.user_encoder = text;
    big.config.user_encoder.num_hidden_layers = UL;
    big.config.user_encoder.max_position_embeddings = 600;
    fastformer_dims history = text;
    history.max_position_embeddings = 600;
    size_t want = fastformer_workspace_bytes(&history, 1200, 2);
    assert_true(want != SIZE_MAX);
    assert_int_equal(model_workspace_bytes(&big, 1200, 2), want);
    assert_true(want > fastformer_workspace_bytes(&text, 1200, 2));
    ws = model_workspace_new(&big, 1200, 2);
    assert_non_null(ws);
    assert_int_equal(ws->dims.max_position_embeddings, 600);
    fastformer_workspace_free(ws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_classifier_f32),
        cmocka_unit_test(test_load_classifier_f16_bf16_misaligned),
        cmocka_unit_test(test_load_recommender),
        cmocka_unit_test(test_mapping_kept_for_one_view),
        cmocka_unit_test(test_load_i8_embedding),
        cmocka_unit_test(test_i8_encodes_as_its_dequantized_table),
        cmocka_unit_test(test_i8_malformed),
        cmocka_unit_test(test_load_factored_embedding),
        cmocka_unit_test(test_factored_encodes_as_its_table),
        cmocka_unit_test(test_factored_malformed),
        cmocka_unit_test(test_workspace_bytes),
        cmocka_unit_test(test_unknown_tensors_ignored),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_config_disagrees_with_tensors),
        cmocka_unit_test(test_bad_safetensors_file),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_bad_vocab),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_score),
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_encode_ids_padding_and_batching),
        cmocka_unit_test(test_encode_users_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
