/* test_memory_estimate: the daemon's memory estimate term by term, against
 * numbers computed here from the fixtures' config.json shapes and file sizes
 * (tests/fixtures/classifier_f32, classifier_f16, newsrec + mind-tiny, and
 * the int8-embedding classifier_i8, newsrec_i8 and classifier_factored,
 * whose tables count as stored: one byte per element plus the scales, and
 * the projection of the factored one); the
 * workspace rows the registry gives each model (the smaller batching limit,
 * raised to a recommender's history), with a recommendation through such a
 * right-sized workspace; the runtime term; the log line; the metrics gauge.
 * The catalog and cache terms include their private structs, bounded here by
 * 256 bytes each. */
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

#include "memory_estimate.h"
#include "metrics.h"
#include "mind.h"
#include "model_registry.h"
#include "tiny_model.h"
#include "whole_file.h"

#define FIXTURES "tests/fixtures"
#define MIB (1024.0 * 1024.0)

/* The fixtures' shapes (tests/fixtures/{classifier_*,newsrec}/config.json). */
enum { FX_D = 32, FX_H = 4, FX_I = 48, FX_L = 2, FX_P = 16, FX_V = 60, FX_C = 3 };
enum { FX_USER_L = 1, FX_HISTORY = 6, FX_NEWS = 24 /* lines of mind-tiny/news.tsv */ };

static size_t file_bytes(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("cannot stat %s", path);
    return (size_t)st.st_size;
}

static size_t page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

/* Parameters of one fastformer_model.* (positions, LayerNorm, layers, pooler). */
static size_t encoder_params(size_t D, size_t H, size_t I, size_t L, size_t P)
{
    size_t layer = 4 * (D * D + D)              /* query, key, transform, attention.output.dense */
                   + 2 * (H * D + H)            /* query_att, key_att */
                   + 2 * D + 2 * D              /* two LayerNorms */
                   + (I * D + I) + (D * I + D); /* intermediate, output */
    return P * D + 2 * D + L * layer + (D * D + D) + (D + 1);
}

static served_model *load_one(model_registry *reg, const model_spec *spec)
{
    char err[512];
    if (model_registry_load(reg, spec, 1, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    served_model *sm = model_registry_get(reg, spec->name);
    assert_non_null(sm);
    return sm;
}

static size_t pooled_bytes(int max_batch_size)
{
    return ((size_t)max_batch_size + 1) * FX_D * sizeof(float);
}

/* vocab.txt of the fixtures: the token text with NULs takes the file's bytes
 * plus one; an offset per token; 128 slots (>= 2 x 60) of 16 bytes (tag, id,
 * length, offset). The vocab's own struct comes on top. */
static size_t vocab_expected(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    return file_bytes(path) + 1 + FX_V * sizeof(size_t) + 128 * 16;
}

static void assert_tables(size_t tables, const char *dir)
{
    const size_t want = vocab_expected(dir);
    if (tables < want || tables > want + 256)
        fail_msg("tables %zu, want %zu (+ at most 256 for the struct)", tables, want);
}

/* ==== weights ================================================================ */

/* The encoders' weights packed for the GEMM kernels are a further copy of
 * every product's weights (padded to whole panels, so at least these
 * floats); checked here and returned, so the terms below can name the rest. */
static size_t packed_term(const model *m)
{
    const size_t D = FX_D, H = FX_H, I = FX_I;
    size_t layers =
        (size_t)m->config.encoder.num_hidden_layers +
        (model_has_user_encoder(m) ? (size_t)m->config.user_encoder.num_hidden_layers : 0);
    size_t encoders = model_has_user_encoder(m) ? 2 : 1;
    size_t floats = layers * (2 * D * D + 2 * H * D + 2 * D * D + 2 * I * D) + encoders * D * D;
    assert_true(m->packed_bytes >= floats * sizeof(float));
    return m->packed_bytes;
}

/* F32 file: tensors are read in place from the mapping, which stays; only
 * the concatenated query|key projections (2D x D + 2D per layer) are copies. */
static void test_weights_f32_are_the_mapping_plus_qk(void **state)
{
    (void)state;
    const char *dir = FIXTURES "/classifier_f32";
    model_registry *reg = model_registry_new(1, NULL);
    model_spec spec = {.name = "c", .path = dir, .max_batch_size = 4, .max_batch_tokens = 64};
    served_model *sm = load_one(reg, &spec);
    memory_estimate e;
    memory_estimate_init(&e, 1, 1);
    memory_estimate_add_model(&e, sm);

    size_t mapping = page_round(file_bytes(FIXTURES "/classifier_f32/model.safetensors"));
    size_t qk = FX_L * (2 * FX_D * FX_D + 2 * FX_D) * sizeof(float);
    assert_int_equal(e.weights, mapping + qk + packed_term(sm->model));
    assert_tables(e.tables, dir);
    assert_int_equal(e.catalogs, 0);
    assert_int_equal(e.caches, 0);
    served_model_release(sm);
    model_registry_free(reg);
}

/* The weights term of the fixture directory `name`, served alone. */
static size_t weights_term(const char *name)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", FIXTURES, name);
    model_registry *reg = model_registry_new(1, NULL);
    model_spec spec = {.name = "m", .path = dir, .max_batch_size = 4, .max_batch_tokens = 64};
    served_model *sm = load_one(reg, &spec);
    memory_estimate e;
    memory_estimate_init(&e, 1, 1);
    memory_estimate_add_model(&e, sm);
    size_t packed = packed_term(sm->model);
    served_model_release(sm);
    model_registry_free(reg);
    return e.weights - packed;
}

/* F16 file: every tensor is converted to an owned F32 copy, and the mapping
 * is released after load, so only the copies count. */
static void test_weights_f16_are_every_param_as_f32(void **state)
{
    (void)state;
    size_t params = (size_t)FX_V * FX_D + encoder_params(FX_D, FX_H, FX_I, FX_L, FX_P) +
                    (size_t)FX_C * FX_D + FX_C;
    assert_int_equal(weights_term("classifier_f16"), params * sizeof(float));
}

/* An int8 word embedding table counts as stored: V*D (or V*K, factored)
 * bytes plus its F32 scales (and projection). */
static void test_weights_i8_table_counts_as_stored(void **state)
{
    (void)state;
    /* F16 file with an int8 table, one scale per row: nothing is read in
     * place, so the mapping is released; every other parameter is F32 */
    size_t other = encoder_params(FX_D, FX_H, FX_I, FX_L, FX_P) + (size_t)FX_C * FX_D + FX_C;
    assert_int_equal(weights_term("classifier_i8"),
                     (size_t)FX_V * FX_D + (FX_V + other) * sizeof(float));

    /* F32 file with an int8 news table in blocks of 8 (4 scales a row): the
     * mapping stays and holds the table; q|k and the scales are owned */
    size_t mapping = page_round(file_bytes(FIXTURES "/newsrec_i8/model.safetensors"));
    size_t qk = (FX_L + FX_USER_L) * (2 * FX_D * FX_D + 2 * FX_D) * sizeof(float);
    assert_int_equal(weights_term("newsrec_i8"), mapping + qk + (size_t)FX_V * 4 * sizeof(float));

    /* F32 file with a factored int8 table, rank 12 in blocks of 6: the mapping
     * stays and holds the V*12 int8 values; q|k, the 2 scales a row and the
     * [D, 12] projection are owned (embedding_table_bytes: V*K + 4*V*G + 4*D*K) */
    mapping = page_round(file_bytes(FIXTURES "/classifier_factored/model.safetensors"));
    qk = FX_L * (2 * FX_D * FX_D + 2 * FX_D) * sizeof(float);
    assert_int_equal(weights_term("classifier_factored"),
                     mapping + qk + ((size_t)FX_V * 2 + (size_t)FX_D * 12) * sizeof(float));
}

/* ==== workspaces ============================================================= */

static void test_workspaces_are_sized_from_the_smaller_limit(void **state)
{
    (void)state;
    model_registry *reg = model_registry_new(2, NULL);
    /* 4 texts of at most 16 tokens: 64 rows, not 8192 */
    model_spec spec = {.name = "c",
                       .path = FIXTURES "/classifier_f32",
                       .max_batch_size = 4,
                       .max_batch_tokens = 8192};
    served_model *sm = load_one(reg, &spec);
    assert_int_equal(sm->workspace_tokens, 64);
    assert_int_equal(sm->ws[0]->max_tokens, 64);
    assert_int_equal(sm->ws[1]->max_tokens, 64);
    assert_int_equal(sm->ws[0]->max_seqs, 4);
    assert_int_equal(model_registry_workspace_tokens(sm->model, 32, 100), 100); /* tokens bind */
    assert_int_equal(model_registry_workspace_tokens(sm->model, 1, FX_P), FX_P);

    memory_estimate e;
    memory_estimate_init(&e, 2, 1);
    memory_estimate_add_model(&e, sm);
    fastformer_dims dims = {.hidden_size = FX_D,
                            .num_attention_heads = FX_H,
                            .intermediate_size = FX_I,
                            .num_hidden_layers = FX_L,
                            .max_position_embeddings = FX_P,
                            .layer_norm_eps = 1e-12f};
    size_t one = fastformer_workspace_bytes(&dims, 64, 4);
    assert_true(one != SIZE_MAX && one >= 64 * FX_D * sizeof(float));
    assert_int_equal(e.workspaces, 2 * (one + pooled_bytes(4)));
    served_model_release(sm);
    model_registry_free(reg);
}

/* A recommender whose titles (4 tokens) are shorter than its history (6
 * clicks): with one title per batch the workspace still holds a whole
 * history, and recommending through it works (it would assert otherwise). */
static char *short_title_recommender(void)
{
    char *dir = strdup("/tmp/ff_memest_XXXXXX");
    if (!mkdtemp(dir))
        abort();
    char path[512], text[2048];
    int at = snprintf(text, sizeof text, "[PAD]\n[UNK]\n");
    for (int i = 2; i < TINY_V; i++)
        at += snprintf(text + at, sizeof text - (size_t)at, "w%d\n", i);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    tiny_write(path, text);
    snprintf(text, sizeof text,
             "{\"architectures\":[\"FastformerForNewsRecommendation\"],\"hidden_size\":%d,"
             "\"num_attention_heads\":%d,\"intermediate_size\":%d,\"num_hidden_layers\":%d,"
             "\"max_position_embeddings\":4,\"vocab_size\":%d,\"layer_norm_eps\":1e-12,"
             "\"user_num_hidden_layers\":%d,\"max_history\":%d,"
             "\"tokenizer\":{\"type\":\"word\",\"lowercase\":true}}",
             TINY_D, TINY_H, TINY_I, TINY_L, TINY_V, TINY_UL, TINY_UP);
    snprintf(path, sizeof path, "%s/config.json", dir);
    tiny_write(path, text);
    st_writer w = {0};
    uint32_t st = 7;
    tiny_add(&w, &st, "news_encoder.word_embedding.weight", TINY_V, TINY_D, 0.0f);
    tiny_encoder(&w, &st, "news_encoder.", TINY_L, 4);
    tiny_encoder(&w, &st, "user_encoder.", TINY_UL, TINY_UP);
    size_t len;
    unsigned char *img = st_writer_finish(&w, 0, &len);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_write_file(path, img, len);
    free(img);
    snprintf(path, sizeof path, "%s/news.tsv", dir);
    tiny_write(path, "N1\tc\ts\tw2 w3 w4 w5 w6\nN2\tc\ts\tw4\nN3\tc\ts\tw5 w6 w7\n");
    return dir;
}

static void test_recommender_workspace_holds_a_history(void **state)
{
    (void)state;
    char *dir = short_title_recommender();
    char tsv[600];
    snprintf(tsv, sizeof tsv, "%s/news.tsv", dir);
    model_registry *reg = model_registry_new(1, NULL);
    model_spec spec = {.name = "r",
                       .path = dir,
                       .news_catalog = tsv,
                       .news_cache_entries = 4,
                       .max_batch_size = 1,
                       .max_batch_tokens = 4};
    served_model *sm = load_one(reg, &spec);
    assert_int_equal(sm->workspace_tokens, TINY_UP); /* 1 x 4 raised to the 6 clicks */
    assert_int_equal(sm->ws[0]->max_tokens, TINY_UP);
    assert_int_equal(news_catalog_count(sm->catalog), 3);

    /* the workspace is model_workspace_new's: dims of the longer encoder (the
     * 6-click history; that only changes the size past 512 rows, which
     * test_model_load's test_workspace_bytes covers) */
    memory_estimate e;
    memory_estimate_init(&e, 1, 1);
    memory_estimate_add_model(&e, sm);
    fastformer_dims history = {.hidden_size = TINY_D,
                               .num_attention_heads = TINY_H,
                               .intermediate_size = TINY_I,
                               .num_hidden_layers = TINY_L,
                               .max_position_embeddings = TINY_UP,
                               .layer_norm_eps = 1e-12f};
    assert_int_equal(e.workspaces,
                     fastformer_workspace_bytes(&history, TINY_UP, 1) + 2 * TINY_D * sizeof(float));

    float news[TINY_UP * TINY_D], user[TINY_D], scores[TINY_UP];
    for (int i = 0; i < TINY_UP; i++)
        assert_true(news_catalog_get(sm->catalog, i % 2 ? "N1" : "N3", 2, news + i * TINY_D));
    int32_t hist[2] = {0, TINY_UP};
    model_encode_users(sm->model, sm->ws[0], news, hist, 1, user);
    model_score(sm->model, user, news, TINY_UP, scores);
    assert_true(scores[0] == scores[2] && scores[1] == scores[3]);
    served_model_release(sm);
    model_registry_free(reg);
    tiny_remove(dir);
}

/* ==== catalog, cache, tables, runtime, total ================================= */

/* The glibc chunks of the catalog's row texts for the news of a news.tsv. */
static size_t texts_bytes(const char *tsv)
{
    char *buf, err[256];
    size_t len, total = 0;
    assert_int_equal(whole_file_read(tsv, SIZE_MAX, &buf, &len, err, sizeof err), 0);
    mind_news_table *t;
    assert_int_equal(mind_news_parse(buf, len, tsv, &t, err, sizeof err), 0);
    for (size_t i = 0; i < t->n_news; i++) {
        size_t n = strlen(t->news[i].id) + t->news[i].title_bytes + strlen(t->news[i].category) + 3;
        size_t chunk = (n + 8 + 15) & ~(size_t)15;
        total += chunk < 32 ? 32 : chunk;
    }
    mind_news_free(t);
    free(buf);
    return total;
}

static void test_recommender_terms(void **state)
{
    (void)state;
    const char *dir = FIXTURES "/newsrec";
    model_registry *reg = model_registry_new(2, NULL);
    model_spec spec = {.name = "mind",
                       .path = dir,
                       .news_catalog = FIXTURES "/mind-tiny/news.tsv",
                       .news_cache_entries = 100,
                       .max_batch_size = 8,
                       .max_batch_tokens = 8192};
    served_model *sm = load_one(reg, &spec);
    assert_int_equal(sm->workspace_tokens, 8 * FX_P);
    assert_int_equal(news_catalog_count(sm->catalog), FX_NEWS);

    memory_estimate e;
    memory_estimate_init(&e, 2, 256);
    memory_estimate_add_model(&e, sm);

    /* 24 rows (room for exactly 24): D floats, their D int8 copy and its scale, their
     * (D + 1) / 2-byte int4 copy with its scale, residual and norm, a text pointer,
     * the id and title lengths and the updated time; each row's text (id, title and
     * category with a NUL each) as a glibc chunk; 64 uint32 slots (>= 2 x 24). */
    size_t catalog = FX_NEWS * (FX_D * 5 + 36 + (FX_D + 1) / 2 + 12) +
                     texts_bytes(FIXTURES "/mind-tiny/news.tsv") + 64 * 4;
    if (e.catalogs < catalog || e.catalogs > catalog + 512)
        fail_msg("catalogs %zu, expected %zu + at most 512 (the struct)", e.catalogs, catalog);
    /* 100 entries of D floats + 16 ids + 4 x uint32 + a uint64 hash; 256 buckets. */
    size_t cache = 100 * (FX_D * 4 + FX_P * 4 + 16 + 8) + 256 * 4;
    assert_true(e.caches >= cache && e.caches <= cache + 256);
    assert_tables(e.tables, dir);

    /* news and user encoders of F32 tensors: only the q|k copies are owned */
    size_t qk = (FX_L + FX_USER_L) * (2 * FX_D * FX_D + 2 * FX_D) * sizeof(float);
    size_t mapping = page_round(file_bytes(FIXTURES "/newsrec/model.safetensors"));
    assert_int_equal(e.weights, mapping + qk + packed_term(sm->model));

    size_t runtime = (12u << 20) + 2 * (1u << 20) + 256 * (40u << 10);
    assert_int_equal(e.runtime, runtime);
    assert_int_equal(memory_estimate_total_bytes(&e),
                     e.weights + e.workspaces + e.catalogs + e.caches + e.tables + runtime);

    /* A second model adds its terms. */
    memory_estimate two = e;
    memory_estimate_add_model(&two, sm);
    assert_int_equal(two.catalogs, 2 * e.catalogs);
    assert_int_equal(two.caches, 2 * e.caches);
    assert_int_equal(two.runtime, runtime);
    served_model_release(sm);
    model_registry_free(reg);
}

/* The log line: "memory estimate <total> MiB: weights ... + runtime ...",
 * the first number after "estimate" being the total (run_bench.py reads it). */
static void test_format(void **state)
{
    (void)state;
    memory_estimate e = {.weights = 30u << 20,
                         .workspaces = 60u << 20,
                         .catalogs = 1u << 20,
                         .caches = 3u << 20,
                         .tables = 1u << 19,
                         .runtime = 24u << 20};
    char line[300];
    memory_estimate_format(&e, line, sizeof line);
    assert_string_equal(line, "memory estimate 118.5 MiB: weights 30.0 + workspaces 60.0 + "
                              "catalogs 1.0 + caches 3.0 + tables 0.5 + runtime 24.0");
    double total;
    assert_int_equal(sscanf(line, "memory estimate %lf MiB", &total), 1);
    assert_true(total * MIB == (double)memory_estimate_total_bytes(&e));
    char small[20];
    memory_estimate_format(&e, small, sizeof small); /* truncated, terminated */
    assert_string_equal(small, "memory estimate 118");
}

static void test_metrics_gauge(void **state)
{
    (void)state;
    metrics *m = metrics_new(NULL, 0);
    char *text;
    size_t len;
    assert_int_equal(metrics_render(m, &text, &len), 0);
    assert_non_null(strstr(text, "# TYPE fastformerd_memory_estimate_bytes gauge\n"));
    assert_non_null(strstr(text, "# HELP fastformerd_memory_estimate_bytes "));
    assert_non_null(strstr(text, "\nfastformerd_memory_estimate_bytes 0\n"));
    free(text);
    metrics_memory_estimate_set(m, 111149056);
    assert_int_equal(metrics_render(m, &text, &len), 0);
    assert_non_null(strstr(text, "\nfastformerd_memory_estimate_bytes 111149056\n"));
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_f32_are_the_mapping_plus_qk),
        cmocka_unit_test(test_weights_f16_are_every_param_as_f32),
        cmocka_unit_test(test_weights_i8_table_counts_as_stored),
        cmocka_unit_test(test_workspaces_are_sized_from_the_smaller_limit),
        cmocka_unit_test(test_recommender_workspace_holds_a_history),
        cmocka_unit_test(test_recommender_terms),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_metrics_gauge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
