/* fuzz_settings: settings_parse (the daemon's YAML config) on arbitrary
 * bytes. On failure *out must still hold the defaults and be safe to free; on
 * success every value must lie in its range in settings_specs[], model names must be
 * valid and unique, and the final checks and per-model lookups must work. */
#include <stdbool.h>
#include <string.h>

#include "cors.h"
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

/* Every integer of `base` (a settings, or a settings_model for "models")
 * lies in its row's range; an INHERIT row may also be 0. */
static void uint_ranges_check(const void *base, bool models, const char *what)
{
    for (size_t i = 0; i < settings_n_specs; i++) {
        const settings_spec *spec = &settings_specs[i];
        if (spec->type != SETTINGS_UINT || (strcmp(spec->section, "models") == 0) != models)
            continue;
        uint64_t v = 0;
        if (spec->size == sizeof(uint32_t)) {
            uint32_t v32;
            memcpy(&v32, (const char *)base + spec->offset, sizeof v32);
            v = v32;
        } else {
            memcpy(&v, (const char *)base + spec->offset, sizeof v);
        }
        bool inherited = (spec->flags & SETTINGS_INHERIT) && v == 0;
        FUZZ_CHECK(inherited || (v >= (uint64_t)spec->min && v <= (uint64_t)spec->max),
                   "%s%s.%s = %llu outside [%lld, %lld]", what, spec->section, spec->key,
                   (unsigned long long)v, (long long)spec->min, (long long)spec->max);
    }
}

static void ranges_check(const settings *s)
{
    const settings_server *sv = &s->server;
    FUZZ_CHECK(memchr(sv->listen.text, 0, sizeof sv->listen.text) &&
                   memchr(sv->listen.host, 0, sizeof sv->listen.host),
               "listen not terminated");
    uint_ranges_check(s, false, "");
    FUZZ_CHECK(s->logging.format == LOG_FORMAT_TEXT || s->logging.format == LOG_FORMAT_JSON,
               "logging.format");
    FUZZ_CHECK(s->logging.level >= LOG_LEVEL_DEBUG && s->logging.level <= LOG_LEVEL_ERROR,
               "logging.level");
    const settings_strings *origins = &sv->cors_allow_origins;
    FUZZ_CHECK(origins->n <= 64 && (origins->n == 0 || origins->items), "cors_allow_origins");
    for (size_t i = 0; i < origins->n; i++)
        FUZZ_CHECK(origins->items[i] &&
                       cors_origin_valid(origins->items[i], strlen(origins->items[i])),
                   "cors_allow_origins[%zu] is not an origin", i);
    FUZZ_CHECK(sv->model_control == 0 || sv->model_control == 1, "model_control");
    FUZZ_CHECK(s->n_models == 0 || s->models, "models");
    for (size_t i = 0; i < s->n_models; i++) {
        const settings_model *m = &s->models[i];
        FUZZ_CHECK(m->name && m->path, "model %zu without name or path", i);
        name_check(m->name);
        FUZZ_CHECK(settings_find_model(s, m->name) == m, "model '%s' given twice", m->name);
        uint_ranges_check(m, true, "model ");
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
