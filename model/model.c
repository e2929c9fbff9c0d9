/* model: loads a model directory and binds its tensors to the engine.
 *
 * Loading reads config.json and vocab.txt, maps model.safetensors and
 * validates it, then binds every tensor the engine needs by its official
 * PyTorch name and exact shape. Binding walks the same code twice: a sizing
 * pass that validates everything and counts the floats that must be owned
 * (F16/BF16 tensors, misaligned F32 tensors, and the concatenated query+key
 * projections), then a binding pass that fills that one owned buffer. Aligned
 * F32 tensors stay zero-copy views into the mapping; when no tensor is a view
 * (F16/BF16 files), the mapping is released once the tensors are converted,
 * so the file stops counting in the process's resident memory. An int8 word
 * embedding table follows the mapping: read in place when it stays, copied
 * into an owned int8 buffer when it goes; its scales (and the projection of
 * a factored table) are always converted into the owned F32 buffer. */
#include "model.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sha256.h"

/* Tensors are viewed in place as floats: the file's little-endian data must
 * be the host's order. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "fastformerd needs a little-endian host");

/* ---- tensor binding ---------------------------------------------------------- */

typedef struct {
    const char *path; /* DIR/model.safetensors, for messages */
    const safetensors *st;
    float *owned;        /* NULL during the sizing pass */
    size_t owned_floats; /* floats of owned handed out so far */
    size_t f32_bytes;    /* bytes of F32 data the engine will read */
    size_t n_views;      /* F32 tensors read in place from the mapping */
    int8_t *owned_i8;    /* where int8 tables are copied; NULL: read in place (or sizing) */
    size_t i8_bytes;     /* bytes of int8 tables bound so far */
    char *err;
    size_t err_cap;
} binder;

static void format_dims(const int64_t *shape, int n_dims, char *buf, size_t cap)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n_dims && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (at < cap)
        snprintf(buf + at, cap - at, "]");
}

/* Finds `name` and checks its shape is exactly (d0) or (d0, d1). */
static const safetensors_tensor *binder_find(binder *b, const char *name, int n_dims, int64_t d0,
                                             int64_t d1)
{
    const safetensors_tensor *t = safetensors_find(b->st, name);
    if (t == NULL) {
        snprintf(b->err, b->err_cap, "%s: missing tensor '%s'", b->path, name);
        return NULL;
    }
    int64_t want[2] = {d0, d1};
    bool ok = t->n_dims == n_dims;
    for (int i = 0; ok && i < n_dims; i++)
        ok = t->shape[i] == want[i];
    if (!ok) {
        char have_s[200], want_s[64];
        format_dims(t->shape, t->n_dims, have_s, sizeof have_s);
        format_dims(want, n_dims, want_s, sizeof want_s);
        snprintf(b->err, b->err_cap, "%s: tensor '%s' has shape %s, expected %s", b->path, name,
                 have_s, want_s);
        return NULL;
    }
    return t;
}

/* Hands out n floats of the owned buffer; *out is NULL in the sizing pass.
 * The overflow check is defensive: config.json's bounds keep every model far
 * below SIZE_MAX on 64-bit hosts. */
static int binder_reserve(binder *b, size_t n, float **out)
{
    *out = NULL;
    if (n > SIZE_MAX / sizeof(float) - b->owned_floats ||
        b->f32_bytes > SIZE_MAX - n * sizeof(float)) {
        snprintf(b->err, b->err_cap, "%s: tensors too large for memory", b->path);
        return -1;
    }
    if (b->owned != NULL)
        *out = b->owned + b->owned_floats;
    b->owned_floats += n;
    b->f32_bytes += n * sizeof(float);
    return 0;
}

/* Binds a tensor for reading: a view into the mapping when it is aligned F32,
 * otherwise an owned F32 copy. */
static int bind_tensor(binder *b, const char *name, int n_dims, int64_t d0, int64_t d1,
                       const float **out)
{
    const safetensors_tensor *t = binder_find(b, name, n_dims, d0, d1);
    if (t == NULL)
        return -1;
    if (t->dtype == SAFETENSORS_F32 && (uintptr_t)t->data % _Alignof(float) == 0) {
        if (b->f32_bytes > SIZE_MAX - t->n_bytes) {
            snprintf(b->err, b->err_cap, "%s: tensors too large for memory", b->path);
            return -1;
        }
        b->f32_bytes += t->n_bytes;
        b->n_views++;
        *out = t->data;
        return 0;
    }
    float *dst;
    if (binder_reserve(b, t->n_elements, &dst) != 0)
        return -1;
    if (dst != NULL)
        safetensors_to_f32(t, dst);
    *out = dst;
    return 0;
}

/* Converts a tensor into dst (n_elements floats), which the caller reserved;
 * dst is NULL in the sizing pass. */
static int bind_copy(binder *b, const char *name, int n_dims, int64_t d0, int64_t d1, float *dst)
{
    const safetensors_tensor *t = binder_find(b, name, n_dims, d0, d1);
    if (t == NULL)
        return -1;
    if (dst != NULL)
        safetensors_to_f32(t, dst);
    return 0;
}

#define NAME_CAP 256

/* Binds the word embedding table `name` (V, D): an F32, F16 or BF16 tensor
 * like any other, or an I8 one whose NAME_scale tensor embedding_check_i8
 * validates; with NAME_projection the I8 tensor is the factored table (V, K)
 * and its projection (D, K) is checked by embedding_check_projection
 * (check_i8_tensors has made sure NAME is then I8). The scales and the
 * projection are converted into the owned F32 buffer; the int8 rows are read
 * in place, or copied into owned_i8 when the binding pass has one (the
 * mapping is then released). */
static int bind_embedding(binder *b, const char *name, int64_t V, int64_t D, embedding_table *out)
{
    char scale_name[NAME_CAP], projection_name[NAME_CAP], msg[512];
    snprintf(projection_name, sizeof projection_name, "%s%s", name, EMBEDDING_PROJECTION_SUFFIX);
    const safetensors_tensor *projection = safetensors_find(b->st, projection_name);
    const safetensors_tensor *t;
    int width = (int)D;
    if (projection == NULL) {
        t = binder_find(b, name, 2, V, D);
        if (t == NULL)
            return -1;
    } else {
        t = safetensors_find(b->st, name);
        assert(t != NULL && t->dtype == SAFETENSORS_I8); /* check_i8_tensors */
        if (embedding_check_rank(t, V, D, &width, msg, sizeof msg) != 0) {
            snprintf(b->err, b->err_cap, "%s: %s", b->path, msg);
            return -1;
        }
    }
    *out = (embedding_table){
        .dtype = EMBEDDING_F32, .n_rows = (int)V, .dim = (int)D, .width = (int)D, .block = (int)D};
    if (t->dtype != SAFETENSORS_I8)
        return bind_tensor(b, name, 2, V, D, &out->f32);

    snprintf(scale_name, sizeof scale_name, "%s%s", name, EMBEDDING_SCALE_SUFFIX);
    const safetensors_tensor *scale = safetensors_find(b->st, scale_name);
    int groups;
    if (embedding_check_i8(t, scale, V, width, &groups, msg, sizeof msg) != 0 ||
        (projection != NULL &&
         embedding_check_projection(projection, scale, D, width, msg, sizeof msg) != 0)) {
        snprintf(b->err, b->err_cap, "%s: %s", b->path, msg);
        return -1;
    }
    float *scale_dst; /* V * groups <= V * width: counted by t's size check already */
    if (binder_reserve(b, scale->n_elements, &scale_dst) != 0)
        return -1;
    if (scale_dst != NULL)
        safetensors_to_f32(scale, scale_dst);
    if (projection != NULL) {
        float *projection_dst; /* D * K <= D * EMBEDDING_MAX_RANK floats */
        if (binder_reserve(b, projection->n_elements, &projection_dst) != 0)
            return -1;
        if (projection_dst != NULL)
            safetensors_to_f32(projection, projection_dst);
        out->projection = projection_dst;
    }
    if (b->i8_bytes > SIZE_MAX - t->n_bytes) { /* defensive: one table per model */
        snprintf(b->err, b->err_cap, "%s: tensors too large for memory", b->path);
        return -1;
    }
    out->dtype = EMBEDDING_I8;
    out->width = width;
    out->block = width / groups;
    out->scale = scale_dst;
    out->i8 = t->data;
    if (b->owned_i8 != NULL) {
        out->i8 = b->owned_i8 + b->i8_bytes;
        memcpy(b->owned_i8 + b->i8_bytes, t->data, t->n_bytes);
    }
    b->i8_bytes += t->n_bytes;
    return 0;
}

/* The task's word embedding table: the one tensor that may be I8. */
static const char *embedding_name(model_task task)
{
    switch (task) {
    case MODEL_TASK_CLASSIFICATION:
        return "word_embedding.weight";
    case MODEL_TASK_NEWS_RECOMMENDATION:
        return "news_encoder.word_embedding.weight";
    }
    return "";
}

/* True when `name` ends with `suffix`. */
static bool has_suffix(const char *name, const char *suffix)
{
    const size_t n = strlen(name), k = strlen(suffix);
    return n >= k && strcmp(name + n - k, suffix) == 0;
}

/* Rejects I8 anywhere but the task's word embedding table; a scale tensor
 * for that table when the table is not I8 (a writer that meant the scales to
 * apply would get unscaled values); and a projection tensor (a name ending
 * in EMBEDDING_PROJECTION_SUFFIX) unless it is the table's and the table is
 * I8 (one meant for another tensor, or for a table stored whole, would be
 * silently ignored). */
static int check_i8_tensors(const char *path, const safetensors *st, model_task task, char *err,
                            size_t err_cap)
{
    const char *allowed = embedding_name(task);
    char scale_name[NAME_CAP], projection_name[NAME_CAP];
    snprintf(scale_name, sizeof scale_name, "%s%s", allowed, EMBEDDING_SCALE_SUFFIX);
    snprintf(projection_name, sizeof projection_name, "%s%s", allowed, EMBEDDING_PROJECTION_SUFFIX);
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const safetensors_tensor *t = safetensors_at(st, i);
        if (t->dtype == SAFETENSORS_I8 && strcmp(t->name, allowed) != 0) {
            snprintf(err, err_cap,
                     "%s: tensor '%s' is I8, but only the word embedding table '%s' may be I8",
                     path, t->name, allowed);
            return -1;
        }
        if (has_suffix(t->name, EMBEDDING_PROJECTION_SUFFIX) &&
            strcmp(t->name, projection_name) != 0) {
            snprintf(err, err_cap,
                     "%s: tensor '%s' is named as the projection of a factored int8 table, but "
                     "only the word embedding table's '%s' may be one",
                     path, t->name, projection_name);
            return -1;
        }
    }
    const safetensors_tensor *table = safetensors_find(st, allowed);
    if (safetensors_find(st, scale_name) != NULL && table != NULL &&
        table->dtype != SAFETENSORS_I8) {
        snprintf(err, err_cap, "%s: tensor '%s' holds int8 scales, but '%s' is %s, not I8", path,
                 scale_name, allowed, safetensors_dtype_name(table->dtype));
        return -1;
    }
    if (safetensors_find(st, projection_name) != NULL &&
        (table == NULL || table->dtype != SAFETENSORS_I8)) {
        snprintf(err, err_cap,
                 "%s: tensor '%s' is the projection of a factored int8 table, but '%s' is %s%s",
                 path, projection_name, allowed,
                 table == NULL ? "missing" : safetensors_dtype_name(table->dtype),
                 table == NULL ? "" : ", not I8");
        return -1;
    }
    return 0;
}

/* Binds fastformer_model.* under `prefix` ("", "news_encoder.", "user_encoder.")
 * for dims d: positions, embedding LayerNorm, d->num_hidden_layers layers
 * (into `layers`) and poolers.0. */
static int bind_encoder(binder *b, const char *prefix, const fastformer_dims *d,
                        fastformer_encoder *enc, fastformer_layer *layers)
{
    const int64_t D = d->hidden_size, H = d->num_attention_heads, I = d->intermediate_size;
    const int64_t P = d->max_position_embeddings;
    char name[NAME_CAP];
#define BIND(dst, n_dims, d0, d1, ...)                                                             \
    do {                                                                                           \
        snprintf(name, sizeof name, __VA_ARGS__);                                                  \
        if (bind_tensor(b, name, n_dims, d0, d1, &(dst)) != 0)                                     \
            return -1;                                                                             \
    } while (0)

    enc->dims = *d;
    enc->layers = layers;
    BIND(enc->position_embeddings, 2, P, D, "%sfastformer_model.position_embeddings.weight",
         prefix);
    BIND(enc->ln_weight, 1, D, 0, "%sfastformer_model.LayerNorm.weight", prefix);
    BIND(enc->ln_bias, 1, D, 0, "%sfastformer_model.LayerNorm.bias", prefix);

    for (int i = 0; i < d->num_hidden_layers; i++) {
        fastformer_layer *l = &layers[i];
        char at[96]; /* "PREFIXfastformer_model.encoders.I." */
        snprintf(at, sizeof at, "%sfastformer_model.encoders.%d.", prefix, i);

        /* query and key share their input: one (2D, D) GEMM. */
        float *qk_w, *qk_b;
        if (binder_reserve(b, (size_t)(2 * D * D), &qk_w) != 0 ||
            binder_reserve(b, (size_t)(2 * D), &qk_b) != 0)
            return -1;
        snprintf(name, sizeof name, "%sattention.self.query.weight", at);
        if (bind_copy(b, name, 2, D, D, qk_w) != 0)
            return -1;
        snprintf(name, sizeof name, "%sattention.self.key.weight", at);
        if (bind_copy(b, name, 2, D, D, qk_w ? qk_w + D * D : NULL) != 0)
            return -1;
        snprintf(name, sizeof name, "%sattention.self.query.bias", at);
        if (bind_copy(b, name, 1, D, 0, qk_b) != 0)
            return -1;
        snprintf(name, sizeof name, "%sattention.self.key.bias", at);
        if (bind_copy(b, name, 1, D, 0, qk_b ? qk_b + D : NULL) != 0)
            return -1;
        l->qk_weight = qk_w;
        l->qk_bias = qk_b;

        BIND(l->query_att_weight, 2, H, D, "%sattention.self.query_att.weight", at);
        BIND(l->query_att_bias, 1, H, 0, "%sattention.self.query_att.bias", at);
        BIND(l->key_att_weight, 2, H, D, "%sattention.self.key_att.weight", at);
        BIND(l->key_att_bias, 1, H, 0, "%sattention.self.key_att.bias", at);
        BIND(l->transform_weight, 2, D, D, "%sattention.self.transform.weight", at);
        BIND(l->transform_bias, 1, D, 0, "%sattention.self.transform.bias", at);
        BIND(l->attn_out_weight, 2, D, D, "%sattention.output.dense.weight", at);
        BIND(l->attn_out_bias, 1, D, 0, "%sattention.output.dense.bias", at);
        BIND(l->attn_ln_weight, 1, D, 0, "%sattention.output.LayerNorm.weight", at);
        BIND(l->attn_ln_bias, 1, D, 0, "%sattention.output.LayerNorm.bias", at);
        BIND(l->inter_weight, 2, I, D, "%sintermediate.dense.weight", at);
        BIND(l->inter_bias, 1, I, 0, "%sintermediate.dense.bias", at);
        BIND(l->out_weight, 2, D, I, "%soutput.dense.weight", at);
        BIND(l->out_bias, 1, D, 0, "%soutput.dense.bias", at);
        BIND(l->out_ln_weight, 1, D, 0, "%soutput.LayerNorm.weight", at);
        BIND(l->out_ln_bias, 1, D, 0, "%soutput.LayerNorm.bias", at);
    }

    BIND(enc->pool_fc1_weight, 2, D, D, "%sfastformer_model.poolers.0.att_fc1.weight", prefix);
    BIND(enc->pool_fc1_bias, 1, D, 0, "%sfastformer_model.poolers.0.att_fc1.bias", prefix);
    BIND(enc->pool_fc2_weight, 2, 1, D, "%sfastformer_model.poolers.0.att_fc2.weight", prefix);
    BIND(enc->pool_fc2_bias, 1, 1, 0, "%sfastformer_model.poolers.0.att_fc2.bias", prefix);
    return 0;
}

/* One binding pass over every tensor the task needs. */
static int bind_model(binder *b, model *m)
{
    const model_config *c = &m->config;
    const int64_t V = c->vocab_size, D = c->encoder.hidden_size;
    if (bind_embedding(b, embedding_name(c->task), V, D, &m->word_embedding) != 0)
        return -1;
    switch (c->task) {
    case MODEL_TASK_CLASSIFICATION:
        if (bind_encoder(b, "", &c->encoder, &m->encoder, m->owned_layers) != 0 ||
            bind_tensor(b, "dense_linear.weight", 2, c->num_labels, D, &m->classifier_weight) !=
                0 ||
            bind_tensor(b, "dense_linear.bias", 1, c->num_labels, 0, &m->classifier_bias) != 0)
            return -1;
        return 0;
    case MODEL_TASK_NEWS_RECOMMENDATION:
        if (bind_encoder(b, "news_encoder.", &c->encoder, &m->encoder, m->owned_layers) != 0 ||
            bind_encoder(b, "user_encoder.", &c->user_encoder, &m->user_encoder,
                         m->owned_layers + c->encoder.num_hidden_layers) != 0)
            return -1;
        return 0;
    }
    return -1; /* not a model_task: config_architecture accepts none other */
}

/* ---- loading ------------------------------------------------------------------ */

/* Maps DIR/NAME into *f; on failure err gets "DIR/NAME: reason". */
static int map_in_dir(const char *dir, const char *name, mapped_file *f, char *path,
                      size_t path_cap, char *err, size_t err_cap)
{
    int n = snprintf(path, path_cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= path_cap) {
        snprintf(err, err_cap, "%s: model directory path too long", dir);
        f->data = NULL;
        f->n_bytes = 0;
        return -1;
    }
    return mapped_file_open(path, f, err, err_cap);
}

static int load_config_and_vocab(const char *dir, model *m, char *err, size_t err_cap)
{
    char path[PATH_MAX], msg[1024];
    mapped_file f;
    if (map_in_dir(dir, "config.json", &f, path, sizeof path, err, err_cap) != 0)
        return -1;
    int rc = model_config_parse(f.data, f.n_bytes, &m->config, msg, sizeof msg);
    mapped_file_close(&f);
    if (rc != 0) {
        snprintf(err, err_cap, "%s/%s", dir, msg); /* msg starts with "config.json: " */
        return -1;
    }

    if (map_in_dir(dir, "vocab.txt", &f, path, sizeof path, err, err_cap) != 0)
        return -1;
    rc = vocab_parse(f.data, f.n_bytes, &m->vocab, msg, sizeof msg);
    mapped_file_close(&f);
    if (rc != 0) {
        snprintf(err, err_cap, "%s/%s", dir, msg); /* msg starts with "vocab.txt: " */
        return -1;
    }
    if (vocab_size(m->vocab) != (size_t)m->config.vocab_size) {
        snprintf(err, err_cap, "%s: has %zu lines, but config.json 'vocab_size' is %d", path,
                 vocab_size(m->vocab), m->config.vocab_size);
        return -1;
    }
    if (tokenizer_new(m->config.tokenizer, m->config.lowercase, m->vocab, &m->tokenizer, msg,
                      sizeof msg) != 0) {
        snprintf(err, err_cap, "%s: %s", path, msg);
        return -1;
    }
    return 0;
}

/* Binds m's tensors from st: the sizing pass, the owned buffers, the binding
 * pass. Returns the number of tensors bound as views into the mapping in
 * *n_views; an int8 table is copied (not a view) when there are none. */
static int bind_weights(const char *path, const safetensors *st, model *m, size_t *n_views,
                        char *err, size_t err_cap)
{
    if (check_i8_tensors(path, st, m->config.task, err, err_cap) != 0)
        return -1;
    size_t n_layers = (size_t)m->config.encoder.num_hidden_layers;
    if (model_has_user_encoder(m))
        n_layers += (size_t)m->config.user_encoder.num_hidden_layers;
    m->owned_layers = calloc(n_layers, sizeof *m->owned_layers);
    if (m->owned_layers == NULL) {
        snprintf(err, err_cap, "%s: out of memory", path);
        return -1;
    }

    binder b = {.path = path, .st = st, .err = err, .err_cap = err_cap};
    if (bind_model(&b, m) != 0) /* sizing pass: validates names, shapes and scales */
        return -1;
    size_t owned_floats = b.owned_floats, i8_bytes = b.i8_bytes;
    if (owned_floats > 0) {
        m->owned = malloc(owned_floats * sizeof(float));
        if (m->owned == NULL) {
            snprintf(err, err_cap, "%s: out of memory for %zu converted floats", path,
                     owned_floats);
            return -1;
        }
        m->owned_bytes = owned_floats * sizeof(float);
    }
    /* No F32 view keeps the mapping: the int8 table moves out of it too. */
    if (b.n_views == 0 && i8_bytes > 0) {
        m->owned_i8 = malloc(i8_bytes);
        if (m->owned_i8 == NULL) {
            snprintf(err, err_cap, "%s: out of memory for %zu int8 weights", path, i8_bytes);
            return -1;
        }
        m->owned_bytes += i8_bytes; /* cannot wrap: both are sizes of live allocations */
    }
    b.owned = m->owned;
    b.owned_i8 = m->owned_i8;
    b.owned_floats = 0;
    b.f32_bytes = 0;
    b.n_views = 0;
    b.i8_bytes = 0;
    /* The binding pass cannot fail where the sizing pass succeeded. */
    int rc = bind_model(&b, m);
    assert(rc == 0 && b.owned_floats == owned_floats && b.i8_bytes == i8_bytes);
    (void)rc;
    m->f32_bytes = b.f32_bytes;
    m->i8_bytes = b.i8_bytes;
    *n_views = b.n_views;
    return 0;
}

static int load_weights(const char *dir, model *m, char *err, size_t err_cap)
{
    char path[PATH_MAX], msg[1024];
    if (map_in_dir(dir, "model.safetensors", &m->file, path, sizeof path, err, err_cap) != 0)
        return -1;
    safetensors *st = NULL;
    if (safetensors_parse(m->file.data, m->file.n_bytes, &st, msg, sizeof msg) != 0) {
        snprintf(err, err_cap, "%s: %s", path, msg);
        return -1;
    }
    m->weights_bytes = m->file.n_bytes;
    /* The digest names the weights (GET /v1/models/{name}), so it is taken
     * here, before the mapping may be released. */
    sha256_hex(m->file.data, m->file.n_bytes, m->weights_sha256);

    size_t n_views = 0;
    int rc = bind_weights(path, st, m, &n_views, err, err_cap);
    /* Its tensors point into the mapping; nothing reads them after binding. */
    safetensors_free(st);
    if (rc != 0)
        return -1;
    /* Every tensor was converted into the owned buffer: the mapping is never
     * read again, and unmapping it drops its pages from our resident set. */
    if (n_views == 0)
        mapped_file_close(&m->file);
    m->mapped_bytes = m->file.n_bytes;
    return 0;
}

/* The kernel path: FASTFORMER_KERNELS when set (it must name a path this
 * CPU supports), else the best one. */
static int choose_kernel_path(gemm_path *out, char *err, size_t err_cap)
{
    const char *forced = getenv("FASTFORMER_KERNELS");
    if (forced == NULL || forced[0] == '\0') {
        *out = gemm_path_best();
        return 0;
    }
    if (!gemm_path_parse(forced, out)) {
        snprintf(err, err_cap, "FASTFORMER_KERNELS=%.40s: expected plain, avx2 or avx512", forced);
        return -1;
    }
    if (!gemm_path_supported(*out)) {
        snprintf(err, err_cap, "FASTFORMER_KERNELS=%s: this CPU cannot run the %s kernels", forced,
                 forced);
        return -1;
    }
    return 0;
}

/* Packed weights of at least this many bytes are allocated in 2 MiB pages
 * where the kernel allows (madvise, transparent huge pages in "madvise"
 * mode): every forward streams them, and with 4 KiB pages each page of a
 * weight panel is a TLB miss (a nested page walk in a VM) that the hardware
 * prefetchers do not cross. Smaller ones keep 64-byte alignment (a huge
 * page would cost them up to 2 MiB of memory). */
#define MODEL_HUGE_PAGE_BYTES ((size_t)2 << 20)
#define MODEL_HUGE_MIN_BYTES ((size_t)4 << 20)

/* An owned buffer of at least `bytes` bytes, 64-byte aligned (free()), or
 * NULL when out of memory. */
static float *packed_alloc(size_t bytes)
{
    if (bytes < MODEL_HUGE_MIN_BYTES)
        return aligned_alloc(64, (bytes + 63) / 64 * 64);
    const size_t rounded =
        (bytes + MODEL_HUGE_PAGE_BYTES - 1) / MODEL_HUGE_PAGE_BYTES * MODEL_HUGE_PAGE_BYTES;
    float *p = aligned_alloc(MODEL_HUGE_PAGE_BYTES, rounded);
#ifdef MADV_HUGEPAGE
    /* A hint: where it fails (no THP), the buffer keeps 4 KiB pages. */
    if (p)
        (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

/* Packs both encoders' weights for m->kernel_path into one owned buffer. */
static int pack_encoders(const char *dir, model *m, char *err, size_t err_cap)
{
    const bool users = model_has_user_encoder(m);
    const size_t news = fastformer_packed_floats(&m->config.encoder, m->kernel_path);
    const size_t user =
        users ? fastformer_packed_floats(&m->config.user_encoder, m->kernel_path) : 0;
    if (news > SIZE_MAX / sizeof(float) - user) {
        snprintf(err, err_cap, "%s: packed weights overflow", dir);
        return -1;
    }
    const size_t bytes = (news + user) * sizeof(float);
    m->packed = packed_alloc(bytes);
    if (m->packed == NULL) {
        snprintf(err, err_cap, "%s: out of memory for %zu bytes of packed weights", dir, bytes);
        return -1;
    }
    m->packed_bytes = bytes;
    fastformer_pack(&m->encoder, m->owned_layers, m->kernel_path, m->packed);
    if (users)
        fastformer_pack(&m->user_encoder, m->owned_layers + m->config.encoder.num_hidden_layers,
                        m->kernel_path, m->packed + news);
    return 0;
}

int model_load(const char *dir, model **out, char *err, size_t err_cap)
{
    *out = NULL;
    model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, err_cap, "%s: out of memory", dir);
        return -1;
    }
    if (choose_kernel_path(&m->kernel_path, err, err_cap) != 0 ||
        load_config_and_vocab(dir, m, err, err_cap) != 0 ||
        load_weights(dir, m, err, err_cap) != 0 || pack_encoders(dir, m, err, err_cap) != 0) {
        model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

void model_free(model *m)
{
    if (m == NULL)
        return;
    tokenizer_free(m->tokenizer);
    vocab_free(m->vocab);
    mapped_file_close(&m->file);
    free(m->owned);
    free(m->owned_i8);
    free(m->owned_layers);
    free(m->packed);
    model_config_free(&m->config);
    free(m);
}

/* ---- inference ------------------------------------------------------------------ */

/* The dims of a workspace that serves both encoders: they share D, H and I,
 * and the scratch also holds one whole sequence of either encoder's longest
 * length. */
static fastformer_dims workspace_dims(const model *m)
{
    fastformer_dims dims = m->config.encoder;
    if (m->config.user_encoder.max_position_embeddings > dims.max_position_embeddings)
        dims.max_position_embeddings = m->config.user_encoder.max_position_embeddings;
    return dims;
}

fastformer_workspace *model_workspace_new(const model *m, int max_tokens, int max_seqs)
{
    fastformer_dims dims = workspace_dims(m);
    return fastformer_workspace_new(&dims, max_tokens, max_seqs);
}

size_t model_workspace_bytes(const model *m, int max_tokens, int max_seqs)
{
    fastformer_dims dims = workspace_dims(m);
    return fastformer_workspace_bytes(&dims, max_tokens, max_seqs);
}

fastformer_workspace *model_workspace_new_lanes(const model *m, int max_tokens, int max_seqs,
                                                int n_lanes)
{
    fastformer_dims dims = workspace_dims(m);
    return fastformer_workspace_new_lanes(&dims, max_tokens, max_seqs, n_lanes);
}

size_t model_workspace_bytes_lanes(const model *m, int max_tokens, int max_seqs, int n_lanes)
{
    fastformer_dims dims = workspace_dims(m);
    return fastformer_workspace_bytes_lanes(&dims, max_tokens, max_seqs, n_lanes);
}

int model_max_tokens(const model *m)
{
    return m->config.encoder.max_position_embeddings;
}

bool model_has_classifier(const model *m)
{
    return model_task_has_classifier(m->config.task);
}

bool model_has_user_encoder(const model *m)
{
    return model_task_has_user_encoder(m->config.task);
}

int model_tokenize(const model *m, const char *text, size_t text_bytes, int32_t *ids, size_t *n_ids,
                   bool *truncated, char *err, size_t err_cap)
{
    return tokenizer_encode(m->tokenizer, text, text_bytes, ids, (size_t)model_max_tokens(m), n_ids,
                            truncated, err, err_cap);
}

void model_encode_ids(const model *m, fastformer_workspace *ws, const int32_t *const *ids,
                      const int32_t *n_ids, int n, float *pooled)
{
    assert(n >= 0 && n <= ws->max_seqs);
    assert(ws->dims.hidden_size == m->config.encoder.hidden_size);
    int row = 0;
    ws->seq_start[0] = 0;
    for (int s = 0; s < n; s++) {
        int32_t len = n_ids[s];
        assert(len >= 0 && len <= model_max_tokens(m));
        /* Trailing padding cannot change the pooled vector (docs/fastformer.md §5). */
        while (len > 0 && ids[s][len - 1] == 0)
            len--;
        for (int32_t i = 0; i < len; i++)
            assert(ids[s][i] >= 0 && ids[s][i] < m->config.vocab_size);
        assert(len <= ws->max_tokens - row);
        fastformer_gather(ws, row, &m->word_embedding, ids[s], len);
        row += len;
        ws->seq_start[s + 1] = row;
    }
    fastformer_encode(&m->encoder, ws, n, pooled);
}

void model_classify(const model *m, const float *pooled, int n, float *logits, float *probs)
{
    assert(model_has_classifier(m));
    const int C = m->config.num_labels, D = m->config.encoder.hidden_size;
    for (int s = 0; s < n; s++) {
        const float *x = pooled + (size_t)s * D;
        /* Without a logits buffer the logits are computed in probs. */
        float *z = logits != NULL ? logits + (size_t)s * C : probs + (size_t)s * C;
        if (z == NULL)
            return;
        for (int c = 0; c < C; c++) {
            const float *w = m->classifier_weight + (size_t)c * D;
            float acc = 0.0f;
            for (int j = 0; j < D; j++)
                acc += x[j] * w[j];
            z[c] = acc + m->classifier_bias[c];
        }
        if (probs == NULL)
            continue;
        float *p = probs + (size_t)s * C;
        float max = z[0];
        for (int c = 1; c < C; c++)
            if (z[c] > max)
                max = z[c];
        float sum = 0.0f;
        for (int c = 0; c < C; c++) {
            p[c] = expf(z[c] - max);
            sum += p[c];
        }
        for (int c = 0; c < C; c++)
            p[c] /= sum;
    }
}

void model_encode_users(const model *m, fastformer_workspace *ws, const float *news_vecs,
                        const int32_t *hist_start, int n_users, float *user_vecs)
{
    assert(model_has_user_encoder(m));
    assert(n_users >= 0 && n_users <= ws->max_seqs);
    const int D = m->config.encoder.hidden_size;
    const int max_history = m->config.user_encoder.max_position_embeddings;
    assert(ws->dims.hidden_size == D);
    int row = 0;
    ws->seq_start[0] = 0;
    for (int u = 0; u < n_users; u++) {
        int32_t begin = hist_start[u], end = hist_start[u + 1];
        assert(begin >= 0 && begin <= end);
        if (end - begin > max_history)
            begin = end - max_history; /* keep the most recent */
        int32_t keep = end - begin;
        assert(keep <= ws->max_tokens - row);
        if (keep > 0) /* news_vecs may be NULL when every history is empty */
            fastformer_set_rows(ws, row, news_vecs + (size_t)begin * D, keep);
        row += keep;
        ws->seq_start[u + 1] = row;
    }
    fastformer_encode(&m->user_encoder, ws, n_users, user_vecs);
}

void model_score(const model *m, const float *user_vec, const float *cand_vecs, int n,
                 float *scores)
{
    const int D = m->config.encoder.hidden_size;
    for (int i = 0; i < n; i++) {
        const float *c = cand_vecs + (size_t)i * D;
        float acc = 0.0f;
        for (int j = 0; j < D; j++)
            acc += user_vec[j] * c[j];
        scores[i] = acc;
    }
}
