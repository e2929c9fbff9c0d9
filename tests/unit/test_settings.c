/* test_settings: the YAML config parser (defaults, every key, every error
 * with its exact FILE:LINE message), path resolution, overrides and load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "settings.h"

static int parse(settings *s, const char *yaml, const char *filename, char *err, size_t cap)
{
    return settings_parse(s, yaml, strlen(yaml), filename, err, cap);
}

static void assert_defaults(const settings *s)
{
    assert_string_equal(s->server.listen.text, "127.0.0.1:8080");
    assert_string_equal(s->server.listen.host, "127.0.0.1");
    assert_int_equal(s->server.listen.port, 8080);
    assert_int_equal(s->server.max_connections, 256);
    assert_int_equal(s->server.max_body_bytes, 1048576);
    assert_int_equal(s->server.request_timeout_ms, 10000);
    assert_int_equal(s->server.connection_timeout_s, 30);
    assert_int_equal(s->server.drain_timeout_s, 30);
    assert_int_equal(s->server.parse_threads, 2);
    assert_int_equal(s->server.parse_threads_nice, 10);
    assert_null(s->server.api_key);
    assert_int_equal(s->batching.max_batch_size, 32);
    assert_int_equal(s->batching.max_batch_tokens, 8192);
    assert_int_equal(s->batching.max_queue_delay_us, 2000);
    assert_int_equal(s->batching.max_queue, 1024);
    assert_int_equal(s->batching.workers, 1);
    assert_int_equal(s->batching.blas_threads, 1);
    assert_int_equal(s->batching.engine_threads, 2);
    assert_int_equal(s->logging.format, LOG_FORMAT_TEXT);
    assert_int_equal(s->logging.level, LOG_LEVEL_INFO);
    assert_int_equal(s->n_models, 0);
    assert_null(s->models);
}

static void test_init_defaults(void **state)
{
    (void)state;
    settings s;
    settings_init(&s);
    assert_defaults(&s);
    settings_free(&s);
    assert_defaults(&s);
}

static void test_empty_and_comment_only_give_defaults(void **state)
{
    (void)state;
    const char *docs[] = {"",
                          "# just a comment\n\n",
                          "---\n",
                          "null\n",
                          "server:\nbatching:\nlogging:\nmodels:\n",
                          "server: {}\nmodels: []\n"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        settings s;
        char err[256] = "";
        assert_int_equal(parse(&s, docs[i], "x.yaml", err, sizeof err), 0);
        assert_defaults(&s);
        assert_string_equal(s.source, "x.yaml");
        settings_free(&s);
    }
}

static const char every_key[] = "# every key, none at its default\n"
                                "server:\n"
                                "  listen: 0.0.0.0:9090\n"
                                "  max_connections: 10\n"
                                "  max_body_bytes: 4096\n"
                                "  request_timeout_ms: 1500\n"
                                "  connection_timeout_s: 5\n"
                                "  drain_timeout_s: 0\n"
                                "  api_key: \"s3cret key\"\n"
                                "batching:\n"
                                "  max_batch_size: 64\n"
                                "  max_batch_tokens: 16384\n"
                                "  max_queue_delay_us: 0\n"
                                "  max_queue: 7\n"
                                "  workers: 1\n"
                                "  blas_threads: 2\n"
                                "logging:\n"
                                "  format: json\n"
                                "  level: debug\n"
                                "models:\n"
                                "  - name: review-sentiment\n"
                                "    path: ../models/review-sentiment\n"
                                "  - name: mind_rec.v2\n"
                                "    path: /abs/models/rec\n"
                                "    max_batch_size: 8\n"
                                "    max_batch_tokens: 512\n"
                                "    news_catalog: data/news.tsv\n"
                                "    news_cache_entries: 0\n";

static void test_every_key(void **state)
{
    (void)state;
    settings s;
    char err[256] = "";
    int rc = parse(&s, every_key, "conf/x.yaml", err, sizeof err);
    assert_string_equal(err, "");
    assert_int_equal(rc, 0);
    assert_string_equal(s.server.listen.text, "0.0.0.0:9090");
    assert_string_equal(s.server.listen.host, "0.0.0.0");
    assert_int_equal(s.server.listen.port, 9090);
    assert_int_equal(s.server.max_connections, 10);
    assert_int_equal(s.server.max_body_bytes, 4096);
    assert_int_equal(s.server.request_timeout_ms, 1500);
    assert_int_equal(s.server.connection_timeout_s, 5);
    assert_int_equal(s.server.drain_timeout_s, 0);
    assert_string_equal(s.server.api_key, "s3cret key");
    assert_int_equal(s.batching.max_batch_size, 64);
    assert_int_equal(s.batching.max_batch_tokens, 16384);
    assert_int_equal(s.batching.max_queue_delay_us, 0);
    assert_int_equal(s.batching.max_queue, 7);
    assert_int_equal(s.batching.workers, 1);
    assert_int_equal(s.batching.blas_threads, 2);
    assert_int_equal(s.logging.format, LOG_FORMAT_JSON);
    assert_int_equal(s.logging.level, LOG_LEVEL_DEBUG);
    assert_int_equal(s.n_models, 2);

    const settings_model *a = &s.models[0];
    assert_string_equal(a->name, "review-sentiment");
    assert_string_equal(a->path, "conf/../models/review-sentiment");
    assert_int_equal(a->max_batch_size, 0);
    assert_int_equal(a->max_batch_tokens, 0);
    assert_null(a->news_catalog);
    assert_int_equal(a->news_cache_entries, 4096);
    assert_int_equal(a->line, 21);
    assert_int_equal(settings_model_max_batch_size(&s, a), 64);
    assert_int_equal(settings_model_max_batch_tokens(&s, a), 16384);

    const settings_model *b = &s.models[1];
    assert_string_equal(b->name, "mind_rec.v2");
    assert_string_equal(b->path, "/abs/models/rec");
    assert_int_equal(b->max_batch_size, 8);
    assert_int_equal(b->max_batch_tokens, 512);
    assert_string_equal(b->news_catalog, "conf/data/news.tsv");
    assert_int_equal(b->news_cache_entries, 0);
    assert_int_equal(b->line, 23);
    assert_int_equal(settings_model_max_batch_size(&s, b), 8);
    assert_int_equal(settings_model_max_batch_tokens(&s, b), 512);

    assert_ptr_equal(settings_find_model(&s, "mind_rec.v2"), b);
    assert_null(settings_find_model(&s, "nope"));
    assert_int_equal(settings_check(&s, err, sizeof err), 0);
    settings_free(&s);
    assert_defaults(&s);
}

static void test_path_resolution(void **state)
{
    (void)state;
    const char *yaml = "models:\n  - {name: a, path: m/a, news_catalog: n.tsv}\n";
    struct {
        const char *filename, *path, *catalog;
    } cases[] = {
        {"fastformerd.yaml", "m/a", "n.tsv"}, /* no directory: relative to the CWD */
        {"/etc/ff/ff.yaml", "/etc/ff/m/a", "/etc/ff/n.tsv"},
        {"/ff.yaml", "/m/a", "/n.tsv"}, /* a file in the root directory */
        {"a/b/c.yaml", "a/b/m/a", "a/b/n.tsv"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        settings s;
        char err[256] = "";
        assert_int_equal(parse(&s, yaml, cases[i].filename, err, sizeof err), 0);
        assert_string_equal(s.models[0].path, cases[i].path);
        assert_string_equal(s.models[0].news_catalog, cases[i].catalog);
        settings_free(&s);
    }
}

static void test_listen_forms(void **state)
{
    (void)state;
    struct {
        const char *yaml, *host;
        int port;
    } ok[] = {
        {"server: {listen: \"[::1]:8443\"}\n", "::1", 8443},
        {"server: {listen: localhost:0}\n", "localhost", 0},
        {"server: {listen: '127.0.0.1:65535'}\n", "127.0.0.1", 65535},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        settings s;
        char err[256] = "";
        assert_int_equal(parse(&s, ok[i].yaml, "x.yaml", err, sizeof err), 0);
        assert_string_equal(s.server.listen.host, ok[i].host);
        assert_int_equal(s.server.listen.port, ok[i].port);
        settings_free(&s);
    }
}

/* Each bad document with its exact message. */
static const struct {
    const char *yaml;
    const char *message;
} bad_cases[] = {
    /* the example from the issue */
    {"batching:\n  max_batch_size: lots\n",
     "conf/x.yaml:2: batching.max_batch_size: expected an integer in [1, 4096], got 'lots'"},
    /* ranges: below, above, negative, overflowing */
    {"batching:\n  max_batch_size: 0\n",
     "conf/x.yaml:2: batching.max_batch_size: expected an integer in [1, 4096], got '0'"},
    {"batching:\n  max_batch_size: 4097\n",
     "conf/x.yaml:2: batching.max_batch_size: expected an integer in [1, 4096], got '4097'"},
    {"batching:\n  max_batch_tokens: 1048577\n",
     "conf/x.yaml:2: batching.max_batch_tokens: expected an integer in [1, 1048576], got "
     "'1048577'"},
    {"batching:\n  max_queue_delay_us: -1\n",
     "conf/x.yaml:2: batching.max_queue_delay_us: expected an integer in [0, 10000000], got '-1'"},
    {"batching:\n  max_queue: 99999999999999999999999\n",
     "conf/x.yaml:2: batching.max_queue: expected an integer in [1, 1000000], got "
     "'99999999999999999999999'"},
    {"batching:\n  workers: 257\n",
     "conf/x.yaml:2: batching.workers: expected an integer in [1, 256], got '257'"},
    {"batching:\n  blas_threads: 0\n",
     "conf/x.yaml:2: batching.blas_threads: expected an integer in [1, 256], got '0'"},
    {"batching:\n  engine_threads: 0\n",
     "conf/x.yaml:2: batching.engine_threads: expected an integer in [1, 256], got '0'"},
    {"server:\n  max_connections: 0\n",
     "conf/x.yaml:2: server.max_connections: expected an integer in [1, 65536], got '0'"},
    {"server:\n  parse_threads_nice: 20\n",
     "conf/x.yaml:2: server.parse_threads_nice: expected an integer in [0, 19], got '20'"},
    {"server:\n  parse_threads_nice: -1\n",
     "conf/x.yaml:2: server.parse_threads_nice: expected an integer in [0, 19], got '-1'"},
    {"server:\n  max_body_bytes: 1023\n",
     "conf/x.yaml:2: server.max_body_bytes: expected an integer in [1024, 1073741824], got "
     "'1023'"},
    {"server:\n  request_timeout_ms: 0\n",
     "conf/x.yaml:2: server.request_timeout_ms: expected an integer in [1, 3600000], got '0'"},
    {"server:\n  connection_timeout_s: 3601\n",
     "conf/x.yaml:2: server.connection_timeout_s: expected an integer in [1, 3600], got '3601'"},
    {"server:\n  drain_timeout_s: 1.5\n",
     "conf/x.yaml:2: server.drain_timeout_s: expected an integer in [0, 3600], got '1.5'"},
    /* wrong types */
    {"batching:\n  workers: \"2\"\n",
     "conf/x.yaml:2: batching.workers: expected an integer in [1, 256], got a quoted string '2'"},
    {"batching:\n  workers: [1, 2]\n",
     "conf/x.yaml:2: batching.workers: expected an integer in [1, 256], got a sequence"},
    {"batching:\n  workers:\n", /* null is not an integer */
     "conf/x.yaml:2: batching.workers: expected an integer in [1, 256], got ''"},
    {"batching: 5\n", "conf/x.yaml:1: batching: expected a mapping, got '5'"},
    {"server: [a]\n", "conf/x.yaml:1: server: expected a mapping, got a sequence"},
    {"logging: text\n", "conf/x.yaml:1: logging: expected a mapping, got 'text'"},
    {"- a\n- b\n", "conf/x.yaml:1: expected a mapping at the top level, got a sequence"},
    {"just words\n", "conf/x.yaml:1: expected a mapping at the top level, got 'just words'"},
    {"server:\n  listen: {host: a}\n",
     "conf/x.yaml:2: server.listen: expected HOST:PORT with PORT in [0, 65535], got a mapping"},
    {"server:\n  listen: 8080\n",
     "conf/x.yaml:2: server.listen: expected HOST:PORT with PORT in [0, 65535], got '8080'"},
    {"server:\n  listen: localhost:65536\n",
     "conf/x.yaml:2: server.listen: expected HOST:PORT with PORT in [0, 65535], got "
     "'localhost:65536'"},
    {"server:\n  listen: ':80'\n",
     "conf/x.yaml:2: server.listen: expected HOST:PORT with PORT in [0, 65535], got a quoted "
     "string ':80'"},
    {"server:\n  listen: ::1:80\n",
     "conf/x.yaml:2: server.listen: expected HOST:PORT with PORT in [0, 65535], got '::1:80'"},
    {"server:\n  listen: \"a b:80\"\n",
     "conf/x.yaml:2: server.listen: expected HOST:PORT with PORT in [0, 65535], got a quoted "
     "string 'a b:80'"},
    {"server:\n  api_key: [x]\n",
     "conf/x.yaml:2: server.api_key: expected a non-empty string, got a sequence"},
    {"server:\n  api_key: \"\"\n",
     "conf/x.yaml:2: server.api_key: expected a non-empty string, got a quoted string ''"},
    {"server:\n  api_key: \"a\\0b\"\n",
     "conf/x.yaml:2: server.api_key: expected a string without NUL bytes"},
    {"logging:\n  format: xml\n",
     "conf/x.yaml:2: logging.format: expected one of text, json, got 'xml'"},
    {"logging:\n  level: loud\n",
     "conf/x.yaml:2: logging.level: expected one of debug, info, warn, error, got 'loud'"},
    {"logging:\n  level: [info]\n",
     "conf/x.yaml:2: logging.level: expected one of debug, info, warn, error, got a sequence"},
    {"server:\n  cors_allow_origins: https://a.example\n",
     "conf/x.yaml:2: server.cors_allow_origins: expected a sequence of origins, got "
     "'https://a.example'"},
    {"server:\n  cors_allow_origins: [\"https://a.example/\"]\n",
     "conf/x.yaml:2: server.cors_allow_origins[0]: expected an origin such as "
     "https://app.example.com or http://localhost:3000 (scheme://host[:port], lower-case scheme, "
     "no path), or '*', got a quoted string 'https://a.example/'"},
    {"server:\n  cors_allow_origins:\n    - http://ok.example\n    - [x]\n",
     "conf/x.yaml:4: server.cors_allow_origins[1]: expected an origin such as "
     "https://app.example.com or http://localhost:3000 (scheme://host[:port], lower-case scheme, "
     "no path), or '*', got a sequence"},
    {"server:\n  model_control: yes\n",
     "conf/x.yaml:2: server.model_control: expected one of false, true, got 'yes'"},
    {"server:\n  tls_min_version: \"1.1\"\n",
     "conf/x.yaml:2: server.tls_min_version: expected one of 1.2, 1.3, got a quoted string '1.1'"},
    {"server:\n  tls_cert_file: [a]\n",
     "conf/x.yaml:2: server.tls_cert_file: expected a non-empty string, got a sequence"},
    /* unknown keys at every level */
    {"# comment\nserverr:\n  listen: a:1\n", "conf/x.yaml:2: serverr: unknown key"},
    {"server:\n  listen: a:1\n  port: 80\n", "conf/x.yaml:3: server.port: unknown key"},
    {"batching:\n  max_batchsize: 3\n", "conf/x.yaml:2: batching.max_batchsize: unknown key"},
    {"logging:\n  color: true\n", "conf/x.yaml:2: logging.color: unknown key"},
    {"models:\n  - name: a\n    path: p\n    device: gpu\n",
     "conf/x.yaml:4: models[0].device: unknown key"},
    {"server:\n  [a]: 1\n", "conf/x.yaml:2: server: expected a string key, got a sequence"},
    /* duplicate keys */
    {"server:\n  listen: a:1\n  listen: b:2\n",
     "conf/x.yaml:3: server.listen: duplicate key (first at line 2)"},
    {"batching: {}\nbatching: {}\n", "conf/x.yaml:2: batching: duplicate key (first at line 1)"},
    /* models */
    {"models: a\n", "conf/x.yaml:1: models: expected a sequence, got 'a'"},
    {"models:\n  a: b\n", "conf/x.yaml:2: models: expected a sequence, got a mapping"},
    {"models:\n  - a\n",
     "conf/x.yaml:2: models[0]: expected a mapping with name and path, got 'a'"},
    {"models:\n  - name: a\n", "conf/x.yaml:2: models[0]: missing required key 'path'"},
    {"models:\n  - name: a\n    path: p\n  - path: q\n",
     "conf/x.yaml:4: models[1]: missing required key 'name'"},
    {"models:\n  - name: a/b\n    path: p\n",
     "conf/x.yaml:2: models[0].name: expected a model name matching [A-Za-z0-9_.-]{1,64}, not "
     "starting with '.', got 'a/b'"},
    {"models:\n  - name: .hidden\n    path: p\n",
     "conf/x.yaml:2: models[0].name: expected a model name matching [A-Za-z0-9_.-]{1,64}, not "
     "starting with '.', got '.hidden'"},
    {"models:\n  - name: "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    path: p\n",
     "conf/x.yaml:2: models[0].name: expected a model name matching [A-Za-z0-9_.-]{1,64}, not "
     "starting with '.', got 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'"},
    {"models:\n  - name: a\n    path:\n",
     "conf/x.yaml:3: models[0].path: expected a non-empty string, got ''"},
    {"models:\n  - name: a\n    path: [p]\n",
     "conf/x.yaml:3: models[0].path: expected a non-empty string, got a sequence"},
    {"models:\n  - name: a\n    path: p\n    max_batch_size: 0\n",
     "conf/x.yaml:4: models[0].max_batch_size: expected an integer in [1, 4096], got '0'"},
    {"models:\n  - name: a\n    path: p\n    max_batch_tokens: big\n",
     "conf/x.yaml:4: models[0].max_batch_tokens: expected an integer in [1, 1048576], got 'big'"},
    {"models:\n  - name: a\n    path: p\n    news_catalog: {}\n",
     "conf/x.yaml:4: models[0].news_catalog: expected a non-empty string, got a mapping"},
    {"models:\n  - name: a\n    path: p\n    news_cache_entries: 10000001\n",
     "conf/x.yaml:4: models[0].news_cache_entries: expected an integer in [0, 10000000], got "
     "'10000001'"},
    {"models:\n  - name: imdb\n    path: p\n  - name: agnews\n    path: q\n"
     "  - name: imdb\n    path: r\n",
     "conf/x.yaml:6: models[2].name: duplicate model name 'imdb' (first at line 2)"},
    /* YAML itself */
    {"server:\n  listen: [a\n", "conf/x.yaml:3: invalid YAML: did not find expected ',' or ']' "
                                "while parsing a flow sequence"},
    {"a: b\n c: d\n", "conf/x.yaml:2: invalid YAML: mapping values are not allowed in this "
                      "context"},
    {"server: *nope\n", "conf/x.yaml:1: invalid YAML: found undefined alias"},
    {"server: {}\n---\nserver: {}\n", "conf/x.yaml:3: expected one YAML document, found another"},
};

/* server.cors_allow_origins: a list of origins or "*", null or [] for none,
 * at most 64; server.model_control: false or true. */
static void test_cors_origins_and_model_control(void **state)
{
    (void)state;
    settings s;
    char err[512] = "";
    assert_int_equal(parse(&s,
                           "server:\n  cors_allow_origins: [\"https://app.example.com\", "
                           "\"http://localhost:3000\", \"*\", \"http://[::1]:8080\"]\n"
                           "  model_control: true\n",
                           "conf/x.yaml", err, sizeof err),
                     0);
    assert_int_equal(s.server.cors_allow_origins.n, 4);
    assert_string_equal(s.server.cors_allow_origins.items[0], "https://app.example.com");
    assert_string_equal(s.server.cors_allow_origins.items[2], "*");
    assert_string_equal(s.server.cors_allow_origins.items[3], "http://[::1]:8080");
    assert_int_equal(s.server.model_control, 1);
    settings_free(&s);
    assert_int_equal(
        parse(&s, "server:\n  cors_allow_origins: []\n", "conf/x.yaml", err, sizeof err), 0);
    assert_int_equal(s.server.cors_allow_origins.n, 0);
    assert_int_equal(s.server.model_control, 0);
    settings_free(&s);
    assert_int_equal(parse(&s, "server:\n  cors_allow_origins:\n", "conf/x.yaml", err, sizeof err),
                     0);
    assert_int_equal(s.server.cors_allow_origins.n, 0);
    settings_free(&s);
    char many[4096] = "server:\n  cors_allow_origins:\n";
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "    - http://h%d.example\n", i);
    assert_int_equal(parse(&s, many, "conf/x.yaml", err, sizeof err), -1);
    assert_string_equal(err, "conf/x.yaml:3: server.cors_allow_origins: expected at most 64 "
                             "origins, got 65");
    settings_free(&s);
}

static void test_bad_documents(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        settings s;
        char err[512] = "";
        int rc = parse(&s, bad_cases[i].yaml, "conf/x.yaml", err, sizeof err);
        if (rc != -1 || strcmp(err, bad_cases[i].message) != 0)
            fail_msg("case %zu:\n%s\n  rc %d\n  got      \"%s\"\n  expected \"%s\"", i,
                     bad_cases[i].yaml, rc, err, bad_cases[i].message);
        assert_defaults(&s); /* *out is left at the defaults */
        settings_free(&s);
    }
}

static void test_error_without_buffer_and_truncated_buffer(void **state)
{
    (void)state;
    settings s;
    assert_int_equal(parse(&s, "bogus: 1\n", "x.yaml", NULL, 0), -1);
    char err[8];
    assert_int_equal(parse(&s, "bogus: 1\n", "x.yaml", err, sizeof err), -1);
    assert_string_equal(err, "x.yaml:");
    settings_free(&s);
}

static void test_overrides(void **state)
{
    (void)state;
    settings s;
    char err[256] = "";
    assert_int_equal(parse(&s, every_key, "conf/x.yaml", err, sizeof err), 0);
    const char *models[] = {"mind_rec.v2=/tmp/rec2", "extra=models/extra"};
    settings_overrides o = {.listen = "[::]:7000", .models = models, .n_models = 2};
    assert_int_equal(settings_apply_overrides(&s, &o, err, sizeof err), 0);
    assert_string_equal(s.server.listen.text, "[::]:7000");
    assert_string_equal(s.server.listen.host, "::");
    assert_int_equal(s.server.listen.port, 7000);
    assert_int_equal(s.n_models, 3);
    /* replaced path, kept limits */
    assert_string_equal(s.models[1].name, "mind_rec.v2");
    assert_string_equal(s.models[1].path, "/tmp/rec2");
    assert_int_equal(s.models[1].max_batch_size, 8);
    assert_string_equal(s.models[1].news_catalog, "conf/data/news.tsv");
    /* appended, as given, default limits */
    assert_string_equal(s.models[2].name, "extra");
    assert_string_equal(s.models[2].path, "models/extra");
    assert_int_equal(s.models[2].max_batch_size, 0);
    assert_null(s.models[2].news_catalog);
    assert_int_equal(s.models[2].news_cache_entries, 4096);
    assert_int_equal(s.models[2].line, 0);
    settings_free(&s);
}

/* models[].news_store is a PostgreSQL URI and nothing else; the refusal
 * names the model, never the value (it may hold a password). */
static void test_news_store_must_be_postgresql(void **state)
{
    (void)state;
    static const char *const ok[] = {"postgresql://u:pw@db:5432/news", "postgres://db/news",
                                     "postgresql://"};
    static const char *const bad[] = {"/var/lib/pw-in-path.sqlite", "mysql://u:pw@db/news",
                                      "POSTGRESQL://db/news"};
    char yaml[256], err[256];
    settings s;
    for (size_t i = 0; i < 6; i++) {
        const char *v = i < 3 ? ok[i] : bad[i - 3];
        snprintf(yaml, sizeof yaml, "models:\n  - {name: rec, path: m, news_store: \"%s\"}\n", v);
        assert_int_equal(parse(&s, yaml, "c.yaml", err, sizeof err), 0);
        assert_string_equal(s.models[0].news_store, v);
        int rc = settings_check(&s, err, sizeof err);
        if (i < 3) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err,
                                "model 'rec': news_store: expected a postgresql:// or "
                                "postgres:// URI (a SQLite store goes under server.state_dir)");
        }
        settings_free(&s);
    }
}

static void test_overrides_without_file(void **state)
{
    (void)state;
    settings s;
    char err[256] = "";
    settings_init(&s);
    assert_int_equal(settings_check(&s, err, sizeof err), -1);
    assert_string_equal(err, "no models configured: give a config file with a models section "
                             "or --model NAME=DIR");
    const char *models[] = {"imdb=models/review-sentiment"};
    settings_overrides o = {.models = models, .n_models = 1};
    assert_int_equal(settings_apply_overrides(&s, &o, err, sizeof err), 0);
    assert_int_equal(s.n_models, 1);
    assert_string_equal(s.models[0].name, "imdb");
    assert_string_equal(s.models[0].path, "models/review-sentiment");
    assert_string_equal(s.server.listen.text, "127.0.0.1:8080");
    assert_int_equal(settings_check(&s, err, sizeof err), 0);
    settings_free(&s);
}

/* TLS: the pair's paths resolve like other paths, the version is an enum,
 * and settings_check wants both files or neither. */
static void test_tls_keys(void **state)
{
    (void)state;
    settings s;
    char err[256] = "";
    assert_int_equal(parse(&s,
                           "server:\n  tls_cert_file: tls/c.pem\n  tls_key_file: /k.pem\n"
                           "  tls_min_version: 1.3\nmodels: [{name: a, path: m}]\n",
                           "/etc/ff/x.yaml", err, sizeof err),
                     0);
    assert_string_equal(s.server.tls_cert_file, "/etc/ff/tls/c.pem");
    assert_string_equal(s.server.tls_key_file, "/k.pem");
    assert_int_equal(s.server.tls_min_version, 1);
    assert_int_equal(settings_check(&s, err, sizeof err), 0);
    settings_free(&s);
    assert_int_equal(parse(&s, "server: {tls_cert_file: c.pem}\nmodels: [{name: a, path: m}]\n",
                           "x.yaml", err, sizeof err),
                     0);
    assert_int_equal(s.server.tls_min_version, 0); /* default: TLS 1.2 */
    assert_int_equal(settings_check(&s, err, sizeof err), -1);
    assert_string_equal(err, "server.tls_cert_file and server.tls_key_file go together: "
                             "tls_cert_file is set and tls_key_file is not");
    settings_free(&s);
    assert_int_equal(parse(&s, "server: {tls_key_file: k.pem}\nmodels: [{name: a, path: m}]\n",
                           "x.yaml", err, sizeof err),
                     0);
    assert_int_equal(settings_check(&s, err, sizeof err), -1);
    assert_string_equal(err, "server.tls_cert_file and server.tls_key_file go together: "
                             "tls_key_file is set and tls_cert_file is not");
    settings_free(&s);
}

static void test_override_errors(void **state)
{
    (void)state;
    static const struct {
        const char *listen;
        const char *model1, *model2;
        const char *message;
    } cases[] = {
        {"8080", NULL, NULL, "--listen '8080': expected HOST:PORT with PORT in [0, 65535]"},
        {"host:", NULL, NULL, "--listen 'host:': expected HOST:PORT with PORT in [0, 65535]"},
        {"[::1]80", NULL, NULL, "--listen '[::1]80': expected HOST:PORT with PORT in [0, 65535]"},
        {"[]:80", NULL, NULL, "--listen '[]:80': expected HOST:PORT with PORT in [0, 65535]"},
        {"h:123456", NULL, NULL, "--listen 'h:123456': expected HOST:PORT with PORT in [0, 65535]"},
        {"h:8a", NULL, NULL, "--listen 'h:8a': expected HOST:PORT with PORT in [0, 65535]"},
        {NULL, "imdb", NULL, "--model 'imdb': expected NAME=DIR"},
        {NULL, "imdb=", NULL, "--model 'imdb=': expected NAME=DIR"},
        {NULL, "=dir", NULL,
         "--model '=dir': invalid model name '' (expected [A-Za-z0-9_.-]{1,64}, not starting "
         "with '.')"},
        {NULL, "a b=dir", NULL,
         "--model 'a b=dir': invalid model name 'a b' (expected [A-Za-z0-9_.-]{1,64}, not "
         "starting with '.')"},
        {NULL, "a=d1", "a=d2", "--model 'a=d2': model 'a' given twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        settings s;
        settings_init(&s);
        const char *models[2] = {cases[i].model1, cases[i].model2};
        settings_overrides o = {.listen = cases[i].listen,
                                .models = models,
                                .n_models = cases[i].model2   ? 2
                                            : cases[i].model1 ? 1
                                                              : 0};
        char err[256] = "";
        int rc = settings_apply_overrides(&s, &o, err, sizeof err);
        if (rc != -1 || strcmp(err, cases[i].message) != 0)
            fail_msg("case %zu: rc %d\n  got      \"%s\"\n  expected \"%s\"", i, rc, err,
                     cases[i].message);
        assert_string_equal(s.server.listen.text,
                            "127.0.0.1:8080"); /* a bad --listen changes nothing */
        settings_free(&s);
    }
}

static void test_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_settings_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/ff.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("models:\n  - name: a\n    path: models/a\nlogging:\n  level: warn\n", f);
    fclose(f);

    settings s;
    char err[512] = "";
    assert_int_equal(settings_load(&s, path, err, sizeof err), 0);
    char expect[600];
    snprintf(expect, sizeof expect, "%s/models/a", dir);
    assert_string_equal(s.models[0].path, expect);
    assert_string_equal(s.source, path);
    assert_int_equal(s.logging.level, LOG_LEVEL_WARN);
    settings_free(&s);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("\n\nlogging:\n  level: verbose\n", f);
    fclose(f);
    assert_int_equal(settings_load(&s, path, err, sizeof err), -1);
    snprintf(expect, sizeof expect,
             "%s:4: logging.level: expected one of debug, info, warn, error, got 'verbose'", path);
    assert_string_equal(err, expect);
    settings_free(&s);
    unlink(path);

    assert_int_equal(settings_load(&s, path, err, sizeof err), -1);
    snprintf(expect, sizeof expect, "%s: cannot read: No such file or directory", path);
    assert_string_equal(err, expect);
    assert_int_equal(settings_load(&s, dir, err, sizeof err), -1);
    snprintf(expect, sizeof expect, "%s: cannot read: not a regular file", dir);
    assert_string_equal(err, expect);
    settings_free(&s);
    rmdir(dir);
}

static void test_shipped_config_parses(void **state)
{
    (void)state;
    /* conf/fastformerd.yaml must stay valid; its documented defaults are the
     * real ones except where the file says otherwise. Tests run from the
     * repository root (tests/run_tests.sh cds there). */
    settings s;
    char err[512] = "";
    if (access("conf/fastformerd.yaml", R_OK) != 0)
        skip();
    int rc = settings_load(&s, "conf/fastformerd.yaml", err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(s.server.listen.text, "127.0.0.1:8080");
    assert_int_equal(s.batching.max_batch_size, 32);
    assert_int_equal(s.batching.workers, 1);
    assert_int_equal(s.batching.engine_threads, 2);
    assert_true(s.n_models >= 3);
    assert_non_null(settings_find_model(&s, "review-sentiment"));
    assert_non_null(settings_find_model(&s, "agnews-topic"));
    assert_non_null(settings_find_model(&s, "movielens-rec"));
    assert_string_equal(settings_find_model(&s, "review-sentiment")->path,
                        "conf/../models/review-sentiment");
    settings_free(&s);
}

/* ---- the table, and the documentation that restates it ------------------ */

static bool spec_is_string(const settings_spec *spec)
{
    switch (spec->type) {
    case SETTINGS_STRING:
    case SETTINGS_PATH:
    case SETTINGS_MODEL_NAME:
        return true;
    case SETTINGS_UINT:
    case SETTINGS_ENUM:
    case SETTINGS_ADDRESS:
    case SETTINGS_ORIGIN_LIST:
        return false;
    }
    return false;
}

/* Every row is well formed: a known section, its default in its range, a
 * field that fits the range, unique keys, and settings_init applying it. */
static void test_table_is_consistent(void **state)
{
    (void)state;
    settings s;
    settings_init(&s);
    settings_model m;
    settings_model_init(&m);
    for (size_t i = 0; i < settings_n_specs; i++) {
        const settings_spec *spec = &settings_specs[i];
        bool models = strcmp(spec->section, "models") == 0;
        const char *base = models ? (const char *)&m : (const char *)&s;
        assert_true(spec->offset + spec->size <= (models ? sizeof m : sizeof s));
        for (size_t j = 0; j < i; j++)
            if (strcmp(settings_specs[j].section, spec->section) == 0 &&
                strcmp(settings_specs[j].key, spec->key) == 0)
                fail_msg("%s.%s is in the table twice", spec->section, spec->key);
        assert_ptr_equal(settings_spec_find(spec->section, spec->key), spec);
        switch (spec->type) {
        case SETTINGS_UINT: {
            assert_true(spec->size == 4 || spec->size == 8);
            assert_true(spec->min >= 0 && spec->min <= spec->max);
            assert_true(spec->size == 8 || spec->max <= (int64_t)UINT32_MAX);
            if (spec->flags & SETTINGS_INHERIT)
                assert_int_equal(spec->def, 0);
            else if (spec->def < spec->min || spec->def > spec->max)
                fail_msg("%s.%s: default %lld outside [%lld, %lld]", spec->section, spec->key,
                         (long long)spec->def, (long long)spec->min, (long long)spec->max);
            uint64_t v = 0;
            if (spec->size == 4) {
                uint32_t v32;
                memcpy(&v32, base + spec->offset, 4);
                v = v32;
            } else {
                memcpy(&v, base + spec->offset, 8);
            }
            assert_int_equal(v, (uint64_t)spec->def);
            break;
        }
        case SETTINGS_ENUM: {
            assert_non_null(spec->names);
            int64_t n = 0;
            while (spec->names[n])
                n++;
            assert_true(spec->def >= 0 && spec->def < n);
            int v;
            assert_int_equal(spec->size, sizeof v);
            memcpy(&v, base + spec->offset, sizeof v);
            assert_int_equal(v, spec->def);
            break;
        }
        case SETTINGS_ADDRESS:
            /* Without a default the address is optional: unset is "". */
            assert_true(spec->def_text != NULL || (spec->flags & SETTINGS_NULLABLE));
            assert_string_equal(((const settings_address *)(base + spec->offset))->text,
                                spec->def_text ? spec->def_text : "");
            break;
        case SETTINGS_STRING:
        case SETTINGS_PATH:
        case SETTINGS_MODEL_NAME:
            assert_int_equal(spec->size, sizeof(char *));
            assert_null(*(char *const *)(base + spec->offset));
            assert_false((spec->flags & SETTINGS_REQUIRED) && (spec->flags & SETTINGS_NULLABLE));
            break;
        case SETTINGS_ORIGIN_LIST:
            assert_int_equal(spec->size, sizeof(settings_strings));
            assert_int_equal(((const settings_strings *)(base + spec->offset))->n, 0);
            assert_true(spec->max >= 1);
            break;
        }
    }
    assert_null(settings_spec_find("server", "no_such_key"));
    assert_null(settings_spec_find("models", "listen"));
    settings_free(&s);
}

static char *read_repo_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("%s: cannot open (tests run from the repository root)", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    assert_true(n < sizeof buf - 1);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* One documented key of conf/fastformerd.yaml and the text of its comment. */
typedef struct {
    char section[32];
    char key[48];
    char doc[1024];
} yaml_doc;

#define YAML_DOCS_MAX 64

static void doc_append(char *doc, const char *text, size_t n)
{
    size_t len = strlen(doc);
    if (len > 0 && len + 1 < 1024)
        doc[len++] = ' ';
    while (n > 0 && *text == ' ') {
        text++;
        n--;
    }
    snprintf(doc + len, 1024 - len, "%.*s", (int)n, text);
}

static yaml_doc *doc_add(yaml_doc *docs, size_t *n, const char *section, const char *key,
                         size_t key_len)
{
    assert_true(*n < YAML_DOCS_MAX);
    yaml_doc *d = &docs[(*n)++];
    memset(d, 0, sizeof *d);
    snprintf(d->section, sizeof d->section, "%s", section);
    snprintf(d->key, sizeof d->key, "%.*s", (int)key_len, key);
    return d;
}

static size_t word_len(const char *p)
{
    size_t n = 0;
    while ((p[n] >= 'a' && p[n] <= 'z') || p[n] == '_')
        n++;
    return n;
}

/* The "Each entry:" block above `models:`: "  key   text" starts a key's
 * documentation, a deeper-indented line continues it. */
static void models_docs(char comment[][160], size_t n_comment, yaml_doc *docs, size_t *n)
{
    bool in_entries = false;
    yaml_doc *cur = NULL;
    for (size_t i = 0; i < n_comment; i++) {
        const char *l = comment[i];
        if (strstr(l, "Each entry:")) {
            in_entries = true;
            continue;
        }
        if (!in_entries)
            continue;
        size_t k = word_len(l + 2);
        if (l[0] == ' ' && l[1] == ' ' && k > 0 && l[2 + k] == ' ' && l[3 + k] == ' ') {
            cur = doc_add(docs, n, "models", l + 2, k);
            doc_append(cur->doc, l + 2 + k, strlen(l + 2 + k));
        } else if (cur && strncmp(l, "    ", 4) == 0) {
            doc_append(cur->doc, l, strlen(l));
        }
    }
}

/* Collects the documentation of every key: the comment lines right above
 * "  key:" (or a commented-out "  # key: example") in a section. */
static size_t yaml_docs_read(const char *text, yaml_doc *docs)
{
    static char comment[64][160];
    size_t n_comment = 0, n = 0;
    char section[32] = "";
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        size_t indent = 0;
        while (indent < len && line[indent] == ' ')
            indent++;
        const char *body = line + indent;
        size_t k = word_len(indent < len && body[0] == '#' ? body + 2 : body);
        bool is_comment = indent < len && body[0] == '#';
        bool commented_key = is_comment && indent == 2 && k > 0 && body[2 + k] == ':' &&
                             body[3 + k] == ' ' && section[0] && strcmp(section, "models") != 0;
        if (is_comment && !commented_key) {
            assert_true(n_comment < 64);
            const char *t = body[1] == ' ' ? body + 2 : body + 1;
            snprintf(comment[n_comment++], 160, "%.*s", (int)(line + len - t), t);
        } else if (indent == 0 && k > 0 && body[k] == ':') {
            snprintf(section, sizeof section, "%.*s", (int)k, body);
            if (strcmp(section, "models") == 0)
                models_docs(comment, n_comment, docs, &n);
            n_comment = 0;
        } else if (commented_key || (indent == 2 && k > 0 && body[k] == ':')) {
            yaml_doc *d = doc_add(docs, &n, section, commented_key ? body + 2 : body, k);
            for (size_t i = 0; i < n_comment; i++)
                doc_append(d->doc, comment[i], strlen(comment[i]));
            n_comment = 0;
        } else {
            n_comment = 0;
        }
        line = end ? end + 1 : line + len;
    }
    return n;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* What the documentation of `spec` must say, and say once. */
static void doc_expect(const settings_spec *spec, const char *doc)
{
    char want[256];
    if (spec->flags & SETTINGS_REQUIRED)
        snprintf(want, sizeof want, "(required)");
    else if (spec->type == SETTINGS_UINT && (spec->flags & SETTINGS_INHERIT))
        snprintf(want, sizeof want, "(default inherit)");
    else if (spec->type == SETTINGS_UINT)
        snprintf(want, sizeof want, "(default %lld)", (long long)spec->def);
    else if (spec->type == SETTINGS_ENUM)
        snprintf(want, sizeof want, "(default %s)", spec->names[spec->def]);
    else if (spec->type == SETTINGS_ADDRESS && spec->def_text)
        snprintf(want, sizeof want, "(default %s)", spec->def_text);
    else
        snprintf(want, sizeof want, "(default none");
    if (count_of(doc, want) != 1 || count_of(doc, "(default") + count_of(doc, "(required)") != 1)
        fail_msg("conf/fastformerd.yaml: %s.%s: expected \"%s\" once in: %s", spec->section,
                 spec->key, want, doc);
    want[0] = '\0';
    if (spec->type == SETTINGS_UINT) {
        snprintf(want, sizeof want, "[%lld, %lld]", (long long)spec->min, (long long)spec->max);
        if (count_of(doc, "[") != 1)
            fail_msg("conf/fastformerd.yaml: %s.%s: expected one range in: %s", spec->section,
                     spec->key, doc);
    } else if (spec->type == SETTINGS_ENUM) {
        size_t o = (size_t)snprintf(want, sizeof want, "one of ");
        for (size_t i = 0; spec->names[i]; i++)
            o += (size_t)snprintf(want + o, sizeof want - o, "%s%s", i ? ", " : "", spec->names[i]);
    } else if (spec_is_string(spec) && spec->max > 0) {
        snprintf(want, sizeof want, "up to %lld bytes", (long long)spec->max);
    } else if (spec->type == SETTINGS_ORIGIN_LIST) {
        snprintf(want, sizeof want, "up to %lld origins", (long long)spec->max);
    }
    if (want[0] && !strcasestr(doc, want))
        fail_msg("conf/fastformerd.yaml: %s.%s: expected \"%s\" in: %s", spec->section, spec->key,
                 want, doc);
}

/* conf/fastformerd.yaml documents every row of the table, with its range and
 * default, and documents nothing else. */
static void test_yaml_documents_the_table(void **state)
{
    (void)state;
    static yaml_doc docs[YAML_DOCS_MAX];
    size_t n = yaml_docs_read(read_repo_file("conf/fastformerd.yaml"), docs);
    for (size_t i = 0; i < settings_n_specs; i++) {
        const settings_spec *spec = &settings_specs[i];
        const yaml_doc *d = NULL;
        for (size_t j = 0; j < n && !d; j++)
            if (strcmp(docs[j].section, spec->section) == 0 && strcmp(docs[j].key, spec->key) == 0)
                d = &docs[j];
        if (d == NULL)
            fail_msg("conf/fastformerd.yaml does not document %s.%s", spec->section, spec->key);
        doc_expect(spec, d->doc);
    }
    for (size_t j = 0; j < n; j++)
        if (settings_spec_find(docs[j].section, docs[j].key) == NULL)
            fail_msg("conf/fastformerd.yaml documents %s.%s, which the daemon does not know",
                     docs[j].section, docs[j].key);
}

/* "1024", "1 GiB" -> bytes; the end of the number in *end. */
static long long doc_number(const char *p, const char **end)
{
    char *e;
    long long v = strtoll(p, &e, 10);
    if (strncmp(e, " KiB", 4) == 0 || strncmp(e, " MiB", 4) == 0 || strncmp(e, " GiB", 4) == 0) {
        v <<= e[1] == 'K' ? 10 : e[1] == 'M' ? 20 : 30;
        e += 4;
    }
    *end = e;
    return v;
}

/* SECURITY.md's table of configured limits states each key's default and
 * range as the table has them. */
static void test_security_md_limits_match_the_table(void **state)
{
    (void)state;
    const char *text = read_repo_file("SECURITY.md");
    const char *start = strstr(text, "## Limits and their defaults");
    assert_non_null(start);
    const char *stop = strstr(start + 1, "\n## ");
    size_t n_rows = 0;
    for (const char *row = strstr(start, "\n| "); row && (!stop || row < stop);
         row = strstr(row + 1, "\n| ")) {
        char cells[5][512];
        const char *p = row + 3;
        size_t c = 0;
        for (; c < 5; c++) {
            const char *bar = strstr(p, " | ");
            const char *eol = strchr(p, '\n');
            if (bar == NULL || (eol && bar > eol))
                break;
            snprintf(cells[c], sizeof cells[c], "%.*s", (int)(bar - p), p);
            p = bar + 3;
        }
        char section[32], key[48];
        if (c < 4 || sscanf(cells[1], "`%31[a-z_].%47[a-z_]`", section, key) != 2)
            continue;
        const settings_spec *spec = settings_spec_find(section, key);
        if (spec == NULL)
            fail_msg("SECURITY.md: unknown key %s.%s", section, key);
        n_rows++;
        if (spec->type == SETTINGS_UINT) {
            const char *e;
            long long def = doc_number(cells[2], &e);
            long long lo = doc_number(cells[3], &e);
            assert_true(strncmp(e, " .. ", 4) == 0);
            long long hi = doc_number(e + 4, &e);
            if (def != spec->def || lo != spec->min || hi != spec->max)
                fail_msg("SECURITY.md: %s.%s says default %s, range %s; the table has %lld, "
                         "[%lld, %lld]",
                         section, key, cells[2], cells[3], (long long)spec->def,
                         (long long)spec->min, (long long)spec->max);
        } else if (spec_is_string(spec) && spec->max > 0) {
            char want[64];
            snprintf(want, sizeof want, "up to %lld bytes", (long long)spec->max);
            assert_string_equal(cells[3], want);
            assert_string_equal(cells[2], "unset");
        }
    }
    assert_true(n_rows >= 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_defaults),
        cmocka_unit_test(test_cors_origins_and_model_control),
        cmocka_unit_test(test_empty_and_comment_only_give_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_path_resolution),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_error_without_buffer_and_truncated_buffer),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_news_store_must_be_postgresql),
        cmocka_unit_test(test_overrides_without_file),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_tls_keys),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_shipped_config_parses),
        cmocka_unit_test(test_table_is_consistent),
        cmocka_unit_test(test_yaml_documents_the_table),
        cmocka_unit_test(test_security_md_limits_match_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
