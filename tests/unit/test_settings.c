/* test_settings: the YAML config parser (defaults, every key, every error
 * with its exact FILE:LINE message), path resolution, overrides and load. */
#include <setjmp.h>
#include <stdarg.h>
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
    assert_string_equal(s->server.listen, "127.0.0.1:8080");
    assert_string_equal(s->server.listen_host, "127.0.0.1");
    assert_int_equal(s->server.listen_port, 8080);
    assert_int_equal(s->server.max_connections, 256);
    assert_int_equal(s->server.max_body_bytes, 1048576);
    assert_int_equal(s->server.request_timeout_ms, 10000);
    assert_int_equal(s->server.connection_timeout_s, 30);
    assert_int_equal(s->server.drain_timeout_s, 30);
    assert_null(s->server.api_key);
    assert_int_equal(s->batching.max_batch_size, 32);
    assert_int_equal(s->batching.max_batch_tokens, 8192);
    assert_int_equal(s->batching.max_queue_delay_us, 2000);
    assert_int_equal(s->batching.max_queue, 1024);
    assert_int_equal(s->batching.workers, 2);
    assert_int_equal(s->batching.blas_threads, 1);
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
                                "  - name: imdb-sentiment\n"
                                "    path: ../models/imdb-sentiment\n"
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
    assert_string_equal(s.server.listen, "0.0.0.0:9090");
    assert_string_equal(s.server.listen_host, "0.0.0.0");
    assert_int_equal(s.server.listen_port, 9090);
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
    assert_string_equal(a->name, "imdb-sentiment");
    assert_string_equal(a->path, "conf/../models/imdb-sentiment");
    assert_int_equal(a->max_batch_size, 0);
    assert_int_equal(a->max_batch_tokens, 0);
    assert_null(a->news_catalog);
    assert_int_equal(a->news_cache_entries, SETTINGS_DEFAULT_NEWS_CACHE_ENTRIES);
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
        assert_string_equal(s.server.listen_host, ok[i].host);
        assert_int_equal(s.server.listen_port, ok[i].port);
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
    {"server:\n  max_connections: 0\n",
     "conf/x.yaml:2: server.max_connections: expected an integer in [1, 65536], got '0'"},
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
    assert_string_equal(s.server.listen, "[::]:7000");
    assert_string_equal(s.server.listen_host, "::");
    assert_int_equal(s.server.listen_port, 7000);
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
    assert_int_equal(s.models[2].news_cache_entries, SETTINGS_DEFAULT_NEWS_CACHE_ENTRIES);
    assert_int_equal(s.models[2].line, 0);
    settings_free(&s);
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
    const char *models[] = {"imdb=models/imdb-sentiment"};
    settings_overrides o = {.models = models, .n_models = 1};
    assert_int_equal(settings_apply_overrides(&s, &o, err, sizeof err), 0);
    assert_int_equal(s.n_models, 1);
    assert_string_equal(s.models[0].name, "imdb");
    assert_string_equal(s.models[0].path, "models/imdb-sentiment");
    assert_string_equal(s.server.listen, "127.0.0.1:8080");
    assert_int_equal(settings_check(&s, err, sizeof err), 0);
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
        assert_string_equal(s.server.listen, "127.0.0.1:8080"); /* a bad --listen changes nothing */
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
    assert_string_equal(s.server.listen, "127.0.0.1:8080");
    assert_int_equal(s.batching.max_batch_size, SETTINGS_DEFAULT_MAX_BATCH_SIZE);
    assert_int_equal(s.batching.workers, SETTINGS_DEFAULT_WORKERS);
    assert_true(s.n_models >= 3);
    assert_non_null(settings_find_model(&s, "imdb-sentiment"));
    assert_non_null(settings_find_model(&s, "agnews-topic"));
    assert_non_null(settings_find_model(&s, "movielens-rec"));
    assert_string_equal(settings_find_model(&s, "imdb-sentiment")->path,
                        "conf/../models/imdb-sentiment");
    settings_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_defaults),
        cmocka_unit_test(test_empty_and_comment_only_give_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_path_resolution),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_error_without_buffer_and_truncated_buffer),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_overrides_without_file),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_shipped_config_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
