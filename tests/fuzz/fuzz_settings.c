/* fuzz_settings: settings_parse (the daemon's YAML config) on arbitrary
 * bytes. On failure *out must still hold the defaults and be safe to free; on
 * success every value must lie in its documented range, model names must be
 * valid and unique, and the final checks and per-model lookups must work. */
#include <string.h>

#include "fuzz_common.h"
#include "settings.h"

static void name_check(const char *name)
{
    size_t n = strlen(name);
    FUZZ_CHECK(n >= 1 && n <= SETTINGS_MODEL_NAME_MAX && name[0] != '.', "model name '%s'", name);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(
            strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", name[i]) &&
                name[i],
            "model name '%s'", name);
}

static void ranges_check(const settings *s)
{
    const settings_server *sv = &s->server;
    FUZZ_CHECK(memchr(sv->listen, 0, sizeof sv->listen) &&
                   memchr(sv->listen_host, 0, sizeof sv->listen_host),
               "listen not terminated");
    FUZZ_CHECK(sv->max_connections >= 1 && sv->max_connections <= 65536, "max_connections");
    FUZZ_CHECK(sv->max_body_bytes >= 1024 && sv->max_body_bytes <= 1073741824, "max_body_bytes");
    FUZZ_CHECK(sv->request_timeout_ms >= 1 && sv->request_timeout_ms <= 3600000,
               "request_timeout_ms");
    FUZZ_CHECK(sv->connection_timeout_s >= 1 && sv->connection_timeout_s <= 3600,
               "connection_timeout_s");
    FUZZ_CHECK(sv->drain_timeout_s <= 3600, "drain_timeout_s");
    const settings_batching *b = &s->batching;
    FUZZ_CHECK(b->max_batch_size >= 1 && b->max_batch_size <= 4096, "max_batch_size");
    FUZZ_CHECK(b->max_batch_tokens >= 1 && b->max_batch_tokens <= 1048576, "max_batch_tokens");
    FUZZ_CHECK(b->max_queue_delay_us <= 10000000, "max_queue_delay_us");
    FUZZ_CHECK(b->max_queue >= 1 && b->max_queue <= 1000000, "max_queue");
    FUZZ_CHECK(b->workers >= 1 && b->workers <= 256, "workers");
    FUZZ_CHECK(b->blas_threads >= 1 && b->blas_threads <= 256, "blas_threads");
    FUZZ_CHECK(s->n_models == 0 || s->models, "models");
    for (size_t i = 0; i < s->n_models; i++) {
        const settings_model *m = &s->models[i];
        FUZZ_CHECK(m->name && m->path, "model %zu without name or path", i);
        name_check(m->name);
        FUZZ_CHECK(settings_find_model(s, m->name) == m, "model '%s' given twice", m->name);
        FUZZ_CHECK(m->max_batch_size <= 4096 && m->max_batch_tokens <= 1048576, "model limits");
        FUZZ_CHECK(m->news_cache_entries <= 10000000, "news_cache_entries");
        FUZZ_CHECK(settings_model_max_batch_size(s, m) >= 1 &&
                       settings_model_max_batch_tokens(s, m) >= 1,
                   "effective limits");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf, "out of memory");
    memcpy(buf, data, size);
    settings s;
    memset(&s, 0xa5, sizeof s);
    char err[512] = "";
    if (settings_parse(&s, buf, size, "conf/fuzz.yaml", err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != 0, "failure without a message");
        FUZZ_CHECK(s.n_models == 0 && s.server.api_key == NULL, "failure left non-defaults");
        ranges_check(&s);
        settings_free(&s);
        free(buf);
        return 0;
    }
    ranges_check(&s);
    char err2[512];
    if (settings_check(&s, err2, sizeof err2) != 0)
        FUZZ_CHECK(s.n_models == 0, "settings_check failed with %zu models: %s", s.n_models, err2);
    /* An override on top of whatever was parsed. */
    const char *const models[] = {"fuzz=some/dir"};
    settings_overrides o = {.listen = "127.0.0.1:0", .models = models, .n_models = 1};
    FUZZ_CHECK(settings_apply_overrides(&s, &o, err2, sizeof err2) == 0, "override: %s", err2);
    ranges_check(&s);
    FUZZ_CHECK(settings_find_model(&s, "fuzz") != NULL, "override lost");
    settings_free(&s);
    free(buf);
    return 0;
}
