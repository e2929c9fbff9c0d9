/* settings: parses the YAML config with libyaml's document API (which keeps
 * every node's line) and walks it against settings_specs[], the one table of
 * keys, so an unknown key, a wrong type or an out-of-range value names its
 * file, line and key path. */
#include "settings.h"

#include "cors.h"
#include "error_message.h"
#include "whole_file.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Largest config file settings_load reads. */
#define SETTINGS_FILE_MAX ((size_t)16 << 20)

/* Longest key path in a message, e.g. "models[12].news_cache_entries". */
#define KEY_PATH_MAX 96

/* What a model name must look like, in messages (see model_name_valid). */
#define MODEL_NAME_RULE "[A-Za-z0-9_.-]{1,64}, not starting with '.'"

/* ---- the table ---------------------------------------------------------- */

static const char *const log_formats[] = {"text", "json", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const booleans[] = {"false", "true", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL}; /* tls_min_version's order */
_Static_assert(LOG_FORMAT_TEXT == 0 && LOG_FORMAT_JSON == 1, "log_formats[] follows log_format");
_Static_assert(LOG_LEVEL_DEBUG == 0 && LOG_LEVEL_INFO == 1 && LOG_LEVEL_WARN == 2 &&
                   LOG_LEVEL_ERROR == 3,
               "log_levels[] follows log_level");

/* Bounds shared by a batching key and its per-model override. */
#define MAX_BATCH_SIZE_MAX 4096
#define MAX_BATCH_TOKENS_MAX 1048576

/* The field's offset and size; _Generic refuses a field of another type. */
#define UINT_AT(st, f)                                                                             \
    .offset = offsetof(st, f), .size = _Generic(((st *)0)->f, uint32_t : 4u, uint64_t : 8u)
#define PTR_AT(st, f)                                                                              \
    .offset = offsetof(st, f), .size = _Generic(((st *)0)->f, char * : sizeof(char *))

#define UINT_ROW(sec, k, st, f, lo, hi, d, fl)                                                     \
    {                                                                                              \
        .section = (sec), .key = (k), .type = SETTINGS_UINT, UINT_AT(st, f), .min = (lo),          \
        .max = (hi), .def = (d), .flags = (fl)                                                     \
    }
#define STRING_ROW(sec, k, t, st, f, most, fl)                                                     \
    {                                                                                              \
        .section = (sec), .key = (k), .type = (t), PTR_AT(st, f), .max = (most), .flags = (fl)     \
    }
#define ENUM_ROW(sec, k, st, f, words, d)                                                          \
    {                                                                                              \
        .section = (sec), .key = (k), .type = SETTINGS_ENUM, .offset = offsetof(st, f),            \
        .size = sizeof(((st *)0)->f), .def = (d), .names = (words)                                 \
    }

const settings_spec settings_specs[] = {
    {.section = "server",
     .key = "listen",
     .type = SETTINGS_ADDRESS,
     .offset = offsetof(settings, server.listen),
     .size = _Generic(((settings *)0)->server.listen, settings_address
                      : sizeof(settings_address)),
     .min = 0,
     .max = 65535,
     .def_text = "127.0.0.1:8080"},
    UINT_ROW("server", "max_connections", settings, server.max_connections, 1, 65536, 256, 0),
    UINT_ROW("server", "max_body_bytes", settings, server.max_body_bytes, 1024, 1073741824, 1048576,
             0),
    UINT_ROW("server", "request_timeout_ms", settings, server.request_timeout_ms, 1, 3600000, 10000,
             0),
    UINT_ROW("server", "connection_timeout_s", settings, server.connection_timeout_s, 1, 3600, 30,
             0),
    UINT_ROW("server", "drain_timeout_s", settings, server.drain_timeout_s, 0, 3600, 30, 0),
    STRING_ROW("server", "api_key", SETTINGS_STRING, settings, server.api_key, 4096,
               SETTINGS_NULLABLE),
    STRING_ROW("server", "state_dir", SETTINGS_PATH, settings, server.state_dir, 0,
               SETTINGS_NULLABLE),
    UINT_ROW("server", "news_bulk_max_items", settings, server.news_bulk_max_items, 1, 10000, 1000,
             0),
    {.section = "server",
     .key = "cors_allow_origins",
     .type = SETTINGS_ORIGIN_LIST,
     .offset = offsetof(settings, server.cors_allow_origins),
     .size = _Generic(((settings *)0)->server.cors_allow_origins, settings_strings
                      : sizeof(settings_strings)),
     .max = 64},
    ENUM_ROW("server", "model_control", settings, server.model_control, booleans, 0),
    UINT_ROW("server", "header_timeout_s", settings, server.header_timeout_s, 1, 3600, 5, 0),
    UINT_ROW("server", "max_connections_per_ip", settings, server.max_connections_per_ip, 0, 65536,
             0, 0),
    {.section = "server",
     .key = "health_listen",
     .type = SETTINGS_ADDRESS,
     .offset = offsetof(settings, server.health_listen),
     .size = _Generic(((settings *)0)->server.health_listen, settings_address
                      : sizeof(settings_address)),
     .min = 0,
     .max = 65535,
     .flags = SETTINGS_NULLABLE},
    STRING_ROW("server", "allowed_hosts", SETTINGS_STRING, settings, server.allowed_hosts, 4096,
               SETTINGS_NULLABLE),
    STRING_ROW("server", "api_key_file", SETTINGS_PATH, settings, server.api_key_file, 0,
               SETTINGS_NULLABLE),
    UINT_ROW("server", "parse_threads", settings, server.parse_threads, 0, 64, 2, 0),
    UINT_ROW("server", "parse_threads_nice", settings, server.parse_threads_nice, 0, 19, 10, 0),
    STRING_ROW("server", "tls_cert_file", SETTINGS_PATH, settings, server.tls_cert_file, 0,
               SETTINGS_NULLABLE),
    STRING_ROW("server", "tls_key_file", SETTINGS_PATH, settings, server.tls_key_file, 0,
               SETTINGS_NULLABLE),
    ENUM_ROW("server", "tls_min_version", settings, server.tls_min_version, tls_versions, 0),

    UINT_ROW("batching", "max_batch_size", settings, batching.max_batch_size, 1, MAX_BATCH_SIZE_MAX,
             32, 0),
    UINT_ROW("batching", "max_batch_tokens", settings, batching.max_batch_tokens, 1,
             MAX_BATCH_TOKENS_MAX, 8192, 0),
    UINT_ROW("batching", "max_queue_delay_us", settings, batching.max_queue_delay_us, 0, 10000000,
             2000, 0),
    UINT_ROW("batching", "max_queue", settings, batching.max_queue, 1, 1000000, 1024, 0),
    UINT_ROW("batching", "workers", settings, batching.workers, 1, 256, 1, 0),
    UINT_ROW("batching", "blas_threads", settings, batching.blas_threads, 1, 256, 1, 0),
    UINT_ROW("batching", "engine_threads", settings, batching.engine_threads, 1, 256, 2, 0),

    ENUM_ROW("logging", "format", settings, logging.format, log_formats, LOG_FORMAT_TEXT),
    ENUM_ROW("logging", "level", settings, logging.level, log_levels, LOG_LEVEL_INFO),

    STRING_ROW("models", "name", SETTINGS_MODEL_NAME, settings_model, name, SETTINGS_MODEL_NAME_MAX,
               SETTINGS_REQUIRED),
    STRING_ROW("models", "path", SETTINGS_PATH, settings_model, path, 0, SETTINGS_REQUIRED),
    UINT_ROW("models", "max_batch_size", settings_model, max_batch_size, 1, MAX_BATCH_SIZE_MAX, 0,
             SETTINGS_INHERIT),
    UINT_ROW("models", "max_batch_tokens", settings_model, max_batch_tokens, 1,
             MAX_BATCH_TOKENS_MAX, 0, SETTINGS_INHERIT),
    STRING_ROW("models", "news_catalog", SETTINGS_PATH, settings_model, news_catalog, 0,
               SETTINGS_NULLABLE),
    UINT_ROW("models", "news_cache_entries", settings_model, news_cache_entries, 0, 10000000, 4096,
             0),
    UINT_ROW("models", "max_catalog_items", settings_model, max_catalog_items, 1, 100000000,
             1000000, 0),
    STRING_ROW("models", "news_store", SETTINGS_STRING, settings_model, news_store, 4096,
               SETTINGS_NULLABLE),
};
const size_t settings_n_specs = sizeof settings_specs / sizeof settings_specs[0];
/* A models entry records the keys it has seen in a 64-bit mask. */
_Static_assert(sizeof settings_specs / sizeof settings_specs[0] <= 64, "seen masks hold 64 rows");

const settings_spec *settings_spec_find(const char *section, const char *key)
{
    for (size_t i = 0; i < settings_n_specs; i++)
        if (strcmp(settings_specs[i].section, section) == 0 &&
            strcmp(settings_specs[i].key, key) == 0)
            return &settings_specs[i];
    return NULL;
}

static bool is_models(const settings_spec *spec)
{
    return strcmp(spec->section, "models") == 0;
}

/* The field of `spec` in `base` (a settings, or a settings_model for models). */
static void *field_of(const settings_spec *spec, void *base)
{
    return (char *)base + spec->offset;
}

static void uint_store(const settings_spec *spec, void *base, uint64_t v)
{
    if (spec->size == sizeof(uint32_t)) {
        uint32_t v32 = (uint32_t)v;
        memcpy(field_of(spec, base), &v32, sizeof v32);
    } else {
        assert(spec->size == sizeof(uint64_t));
        memcpy(field_of(spec, base), &v, sizeof v);
    }
}

static void enum_store(const settings_spec *spec, void *base, int index)
{
    assert(spec->size == sizeof(int));
    memcpy(field_of(spec, base), &index, sizeof index);
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---- value syntax shared by the file and the overrides ---------------- */

/* [A-Za-z0-9_.-]{1,64}, not starting with '.'. */
static bool model_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > SETTINGS_MODEL_NAME_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Splits "HOST:PORT" / "[V6]:PORT" into *out (text, host without brackets,
 * port); *out is untouched on failure. The whole string must be shorter than
 * SETTINGS_LISTEN_MAX. */
static bool address_parse(const char *s, size_t n, settings_address *out)
{
    if (n == 0 || n >= SETTINGS_LISTEN_MAX || memchr(s, '\0', n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    const char *host_start, *host_end, *port_start;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL || close + 1 >= s + n || close[1] != ':')
            return false;
        host_start = s + 1;
        host_end = close;
        port_start = close + 2;
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon == NULL || memchr(colon + 1, ':', (size_t)(s + n - colon - 1)))
            return false;
        host_start = s;
        host_end = colon;
        port_start = colon + 1;
    }
    size_t host_len = (size_t)(host_end - host_start);
    size_t port_len = (size_t)(s + n - port_start);
    if (host_len == 0 || port_len == 0 || port_len > 5)
        return false;
    unsigned long p = 0;
    for (size_t i = 0; i < port_len; i++) {
        if (port_start[i] < '0' || port_start[i] > '9')
            return false;
        p = p * 10 + (unsigned long)(port_start[i] - '0');
    }
    if (p > 65535)
        return false;
    memcpy(out->text, s, n);
    out->text[n] = '\0';
    memcpy(out->host, host_start, host_len);
    out->host[host_len] = '\0';
    out->port = (uint16_t)p;
    return true;
}

/* ---- defaults, lookup, free ------------------------------------------- */

/* Sets every field of `base` that belongs to the rows of `models` (true: a
 * models entry; false: the sections) to its default. */
static void defaults_apply(void *base, bool models)
{
    for (size_t i = 0; i < settings_n_specs; i++) {
        const settings_spec *spec = &settings_specs[i];
        if (is_models(spec) != models)
            continue;
        switch (spec->type) {
        case SETTINGS_UINT:
            uint_store(spec, base, (uint64_t)spec->def);
            break;
        case SETTINGS_ENUM:
            enum_store(spec, base, (int)spec->def);
            break;
        case SETTINGS_ADDRESS: {
            if (!spec->def_text) { /* nullable: unset is an empty text */
                memset(field_of(spec, base), 0, sizeof(settings_address));
                break;
            }
            bool ok = address_parse(spec->def_text, strlen(spec->def_text), field_of(spec, base));
            assert(ok); /* the table's own default */
            (void)ok;
            break;
        }
        case SETTINGS_STRING:
        case SETTINGS_PATH:
        case SETTINGS_MODEL_NAME:
            *(char **)field_of(spec, base) = NULL;
            break;
        case SETTINGS_ORIGIN_LIST:
            *(settings_strings *)field_of(spec, base) = (settings_strings){0};
            break;
        }
    }
}

static void strings_list_free(settings_strings *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    *l = (settings_strings){0};
}

/* Frees the owned strings of `base` (see defaults_apply). */
static void strings_free(void *base, bool models)
{
    for (size_t i = 0; i < settings_n_specs; i++) {
        const settings_spec *spec = &settings_specs[i];
        if (is_models(spec) != models)
            continue;
        switch (spec->type) {
        case SETTINGS_STRING:
        case SETTINGS_PATH:
        case SETTINGS_MODEL_NAME:
            free(*(char **)field_of(spec, base));
            *(char **)field_of(spec, base) = NULL;
            break;
        case SETTINGS_ORIGIN_LIST:
            strings_list_free(field_of(spec, base));
            break;
        case SETTINGS_UINT:
        case SETTINGS_ENUM:
        case SETTINGS_ADDRESS:
            break;
        }
    }
}

void settings_init(settings *s)
{
    assert(s);
    memset(s, 0, sizeof *s);
    defaults_apply(s, false);
}

void settings_model_init(settings_model *m)
{
    assert(m);
    memset(m, 0, sizeof *m);
    defaults_apply(m, true);
}

void settings_free(settings *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_models; i++)
        strings_free(&s->models[i], true);
    free(s->models);
    strings_free(s, false);
    free(s->source);
    settings_init(s);
}

const settings_model *settings_find_model(const settings *s, const char *name)
{
    for (size_t i = 0; i < s->n_models; i++)
        if (strcmp(s->models[i].name, name) == 0)
            return &s->models[i];
    return NULL;
}

uint32_t settings_model_max_batch_size(const settings *s, const settings_model *m)
{
    return m->max_batch_size ? m->max_batch_size : s->batching.max_batch_size;
}

uint32_t settings_model_max_batch_tokens(const settings *s, const settings_model *m)
{
    return m->max_batch_tokens ? m->max_batch_tokens : s->batching.max_batch_tokens;
}

int settings_check(const settings *s, char *err, size_t err_cap)
{
    if (s->n_models == 0) {
        error_message_set(err, err_cap,
                          "no models configured: give a config file with a models section or "
                          "--model NAME=DIR");
        return -1;
    }
    if ((s->server.tls_cert_file == NULL) != (s->server.tls_key_file == NULL)) {
        error_message_set(err, err_cap,
                          "server.tls_cert_file and server.tls_key_file go together: %s is set "
                          "and %s is not",
                          s->server.tls_cert_file ? "tls_cert_file" : "tls_key_file",
                          s->server.tls_cert_file ? "tls_key_file" : "tls_cert_file");
        return -1;
    }
    for (size_t i = 0; i < s->n_models; i++) {
        const char *store = s->models[i].news_store;
        /* The value may hold a password: the message never repeats it. */
        if (store && strncmp(store, "postgresql://", 13) != 0 &&
            strncmp(store, "postgres://", 11) != 0) {
            error_message_set(err, err_cap,
                              "model '%s': news_store: expected a postgresql:// or postgres:// "
                              "URI (a SQLite store goes under server.state_dir)",
                              s->models[i].name);
            return -1;
        }
    }
    return 0;
}

/* ---- YAML walking ------------------------------------------------------ */

typedef struct {
    yaml_document_t *doc;
    const char *filename;
    const char *base_dir; /* NULL: paths stay as written */
    size_t base_dir_len;
    char *err;
    size_t err_cap;
} parse_ctx;

static unsigned node_line(const yaml_node_t *n)
{
    return (unsigned)n->start_mark.line + 1;
}

/* "'text'" for a scalar (shortened, control bytes as \xNN), else "a mapping"
 * / "a sequence". Plain scalars that YAML reads as null say "null". */
static void describe(const yaml_node_t *n, char *out, size_t cap)
{
    if (n->type == YAML_MAPPING_NODE) {
        snprintf(out, cap, "a mapping");
        return;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        snprintf(out, cap, "a sequence");
        return;
    }
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    size_t o = 0;
    bool quoted = n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    const char *prefix = quoted ? "a quoted string '" : "'";
    o += (size_t)snprintf(out, cap, "%s", prefix);
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        if (i == 40) {
            o += (size_t)snprintf(out + o, cap - o, "...");
            break;
        }
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f || c == '\'')
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (o + 2 <= cap) {
        out[o++] = '\'';
        out[o] = '\0';
    } else {
        out[cap - 1] = '\0';
    }
}

/* Writes "FILE:LINE: KEYPATH: message" (or "FILE:LINE: message" when path is
 * NULL) and returns -1. */
static int fail(parse_ctx *c, unsigned line, const char *path, const char *fmt, ...)
    FF_PRINTF(4, 5);
static int fail(parse_ctx *c, unsigned line, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (path)
        error_message_set(c->err, c->err_cap, "%s:%u: %s: %s", c->filename, line, path, msg);
    else
        error_message_set(c->err, c->err_cap, "%s:%u: %s", c->filename, line, msg);
    return -1;
}

static int fail_expected(parse_ctx *c, const yaml_node_t *n, const char *path, const char *what)
{
    char got[160];
    describe(n, got, sizeof got);
    return fail(c, node_line(n), path, "expected %s, got %s", what, got);
}

static bool scalar_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    return len == 0 || (len == 1 && v[0] == '~') ||
           (len == 4 &&
            (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 || memcmp(v, "NULL", 4) == 0));
}

/* An integer in [lo, hi]: a plain scalar of decimal digits, optionally
 * signed (a sign or a value out of range fails with the same message). */
static int get_int(parse_ctx *c, const yaml_node_t *n, const char *path, int64_t lo, int64_t hi,
                   int64_t *out)
{
    char what[96];
    snprintf(what, sizeof what, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return fail_expected(c, n, path, what);
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    size_t i = 0;
    bool neg = false;
    if (i < len && (v[i] == '-' || v[i] == '+')) {
        neg = v[i] == '-';
        i++;
    }
    if (i == len)
        return fail_expected(c, n, path, what);
    int64_t value = 0;
    bool overflow = false;
    for (; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return fail_expected(c, n, path, what);
        if (value > (INT64_MAX - 9) / 10)
            overflow = true;
        else
            value = value * 10 + (v[i] - '0');
    }
    if (neg)
        value = -value;
    if (overflow || value < lo || value > hi)
        return fail_expected(c, n, path, what);
    *out = value;
    return 0;
}

/* A non-empty string scalar without NUL bytes, borrowed from the document. */
static int get_str(parse_ctx *c, const yaml_node_t *n, const char *path, const char **out,
                   size_t *out_len)
{
    *out = ""; /* defined outputs on every path, the failing ones included */
    *out_len = 0;
    if (n->type != YAML_SCALAR_NODE || scalar_is_null(n))
        return fail_expected(c, n, path, "a non-empty string");
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (len == 0)
        return fail_expected(c, n, path, "a non-empty string");
    if (memchr(v, '\0', len))
        return fail(c, node_line(n), path, "expected a string without NUL bytes");
    *out = v;
    *out_len = len;
    return 0;
}

/* One of `names` (n of them), as an index. */
static int get_enum(parse_ctx *c, const yaml_node_t *n, const char *path, const char *const *names,
                    size_t n_names, int *out)
{
    char what[128];
    size_t o = (size_t)snprintf(what, sizeof what, "one of");
    for (size_t i = 0; i < n_names && o < sizeof what; i++)
        o += (size_t)snprintf(what + o, sizeof what - o, "%s %s", i ? "," : "", names[i]);
    if (n->type == YAML_SCALAR_NODE) {
        const char *v = (const char *)n->data.scalar.value;
        size_t len = n->data.scalar.length;
        for (size_t i = 0; i < n_names; i++) {
            if (strlen(names[i]) == len && memcmp(names[i], v, len) == 0) {
                *out = (int)i;
                return 0;
            }
        }
    }
    return fail_expected(c, n, path, what);
}

/* A resolved, owned copy of a path string (see the top of settings.h). */
static char *resolve_path(parse_ctx *c, const char *p, size_t len)
{
    if (c->base_dir == NULL || p[0] == '/')
        return dup_bytes(p, len);
    char *r = malloc(c->base_dir_len + 1 + len + 1);
    if (r == NULL)
        return NULL;
    memcpy(r, c->base_dir, c->base_dir_len);
    r[c->base_dir_len] = '/';
    memcpy(r + c->base_dir_len + 1, p, len);
    r[c->base_dir_len + 1 + len] = '\0';
    return r;
}

static int fail_oom(parse_ctx *c, const yaml_node_t *n, const char *path)
{
    return fail(c, node_line(n), path, "out of memory");
}

/* Mapping iteration with the checks every section needs: `node` must be a
 * mapping (or null, read as empty); keys must be scalars, and unique. The
 * callback gets the key text and the value node. */
typedef int (*pair_fn)(parse_ctx *c, const char *key, const yaml_node_t *key_node,
                       const yaml_node_t *value, const char *path, void *ud);

static int walk_mapping(parse_ctx *c, const yaml_node_t *node, const char *path, pair_fn fn,
                        void *ud)
{
    if (scalar_is_null(node))
        return 0;
    if (node->type != YAML_MAPPING_NODE)
        return fail_expected(c, node, path && path[0] ? path : NULL, "a mapping");
    yaml_node_pair_t *begin = node->data.mapping.pairs.start;
    yaml_node_pair_t *end = node->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = begin; p < end; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        assert(k && v);
        if (k->type != YAML_SCALAR_NODE)
            return fail_expected(c, k, path && path[0] ? path : NULL, "a string key");
        const char *key = (const char *)k->data.scalar.value;
        size_t key_len = k->data.scalar.length;
        char key_path[KEY_PATH_MAX];
        char shown[64];
        describe(k, shown, sizeof shown);
        if (memchr(key, '\0', key_len) || key_len > 40) {
            return fail(c, node_line(k), path && path[0] ? path : NULL, "unknown key %s", shown);
        }
        int n = snprintf(key_path, sizeof key_path, "%s%s%s", path ? path : "",
                         path && path[0] ? "." : "", key);
        if (n < 0 || (size_t)n >= sizeof key_path)
            return fail(c, node_line(k), path && path[0] ? path : NULL, "unknown key %s", shown);
        for (yaml_node_pair_t *q = begin; q < p; q++) {
            const yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2->type == YAML_SCALAR_NODE && k2->data.scalar.length == key_len &&
                memcmp(k2->data.scalar.value, key, key_len) == 0)
                return fail(c, node_line(k), key_path, "duplicate key (first at line %u)",
                            node_line(k2));
        }
        if (fn(c, key, k, v, key_path, ud) != 0)
            return -1;
    }
    return 0;
}

static int fail_unknown(parse_ctx *c, const yaml_node_t *key_node, const char *key_path)
{
    return fail(c, node_line(key_node), key_path, "unknown key");
}

/* ---- values and sections --------------------------------------------- */

static int set_uint(parse_ctx *c, const settings_spec *spec, void *base, const yaml_node_t *v,
                    const char *path)
{
    int64_t x = 0;
    if (get_int(c, v, path, spec->min, spec->max, &x) != 0)
        return -1;
    uint_store(spec, base, (uint64_t)x);
    return 0;
}

static int set_enum(parse_ctx *c, const settings_spec *spec, void *base, const yaml_node_t *v,
                    const char *path)
{
    size_t n_names = 0;
    while (spec->names[n_names])
        n_names++;
    int index = 0;
    if (get_enum(c, v, path, spec->names, n_names, &index) != 0)
        return -1;
    enum_store(spec, base, index);
    return 0;
}

static int set_address(parse_ctx *c, const settings_spec *spec, void *base, const yaml_node_t *v,
                       const char *path)
{
    if ((spec->flags & SETTINGS_NULLABLE) && scalar_is_null(v))
        return 0;
    if (v->type != YAML_SCALAR_NODE || scalar_is_null(v) ||
        !address_parse((const char *)v->data.scalar.value, v->data.scalar.length,
                       field_of(spec, base)))
        return fail_expected(c, v, path, "HOST:PORT with PORT in [0, 65535]");
    return 0;
}

/* STRING, PATH and MODEL_NAME: an owned copy replaces the field. */
static int set_string(parse_ctx *c, const settings_spec *spec, void *base, const yaml_node_t *v,
                      const char *path)
{
    if ((spec->flags & SETTINGS_NULLABLE) && scalar_is_null(v))
        return 0;
    const char *str;
    size_t len;
    if (spec->type == SETTINGS_MODEL_NAME) {
        if (v->type != YAML_SCALAR_NODE || scalar_is_null(v) ||
            !model_name_valid((const char *)v->data.scalar.value, v->data.scalar.length))
            return fail_expected(c, v, path, "a model name matching " MODEL_NAME_RULE);
        str = (const char *)v->data.scalar.value;
        len = v->data.scalar.length;
    } else if (get_str(c, v, path, &str, &len) != 0) {
        return -1;
    }
    if (spec->max > 0 && len > (size_t)spec->max)
        return fail(c, node_line(v), path, "expected at most %lld bytes, got %zu",
                    (long long)spec->max, len);
    char *copy = spec->type == SETTINGS_PATH ? resolve_path(c, str, len) : dup_bytes(str, len);
    if (copy == NULL)
        return fail_oom(c, v, path);
    char **field = field_of(spec, base);
    free(*field);
    *field = copy;
    return 0;
}

/* A sequence of at most spec->max origins (cors_origin_valid); null or []
 * is the empty list. The new list replaces the field. */
static int set_origin_list(parse_ctx *c, const settings_spec *spec, void *base,
                           const yaml_node_t *v, const char *path)
{
    settings_strings *field = field_of(spec, base);
    if (scalar_is_null(v)) {
        strings_list_free(field);
        return 0;
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return fail_expected(c, v, path, "a sequence of origins");
    yaml_node_item_t *begin = v->data.sequence.items.start;
    size_t n = (size_t)(v->data.sequence.items.top - begin);
    if (n > (size_t)spec->max)
        return fail(c, node_line(v), path, "expected at most %lld origins, got %zu",
                    (long long)spec->max, n);
    settings_strings list = {.items = calloc(n ? n : 1, sizeof(char *))};
    if (!list.items)
        return fail_oom(c, v, path);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, begin[i]);
        char item_path[KEY_PATH_MAX];
        snprintf(item_path, sizeof item_path, "%s[%zu]", path, i);
        if (item->type != YAML_SCALAR_NODE || scalar_is_null(item) ||
            !cors_origin_valid((const char *)item->data.scalar.value, item->data.scalar.length)) {
            strings_list_free(&list);
            return fail_expected(c, item, item_path,
                                 "an origin such as https://app.example.com or "
                                 "http://localhost:3000 (scheme://host[:port], lower-case scheme, "
                                 "no path), or '*'");
        }
        list.items[i] = dup_bytes((const char *)item->data.scalar.value, item->data.scalar.length);
        list.n = i + 1;
        if (!list.items[i]) {
            strings_list_free(&list);
            return fail_oom(c, item, item_path);
        }
    }
    strings_list_free(field);
    *field = list;
    return 0;
}

static int set_value(parse_ctx *c, const settings_spec *spec, void *base, const yaml_node_t *v,
                     const char *path)
{
    switch (spec->type) {
    case SETTINGS_UINT:
        return set_uint(c, spec, base, v, path);
    case SETTINGS_ENUM:
        return set_enum(c, spec, base, v, path);
    case SETTINGS_ADDRESS:
        return set_address(c, spec, base, v, path);
    case SETTINGS_STRING:
    case SETTINGS_PATH:
    case SETTINGS_MODEL_NAME:
        return set_string(c, spec, base, v, path);
    case SETTINGS_ORIGIN_LIST:
        return set_origin_list(c, spec, base, v, path);
    }
    assert(!"unknown settings_type");
    return -1;
}

/* One section's mapping (or one models entry): each key is a row of
 * `section`, written into base; `seen` collects the rows given. */
typedef struct {
    const char *section;
    void *base;
    uint64_t seen;
} section_walk;

static int section_pair(parse_ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v,
                        const char *path, void *ud)
{
    section_walk *w = ud;
    const settings_spec *spec = settings_spec_find(w->section, key);
    if (spec == NULL)
        return fail_unknown(c, k, path);
    w->seen |= (uint64_t)1 << (spec - settings_specs);
    return set_value(c, spec, w->base, v, path);
}

/* Entry i of models: its keys, the required ones, a unique name. */
static int parse_model_entry(parse_ctx *c, const yaml_node_t *item, settings *s, size_t i)
{
    char path[KEY_PATH_MAX];
    snprintf(path, sizeof path, "models[%zu]", i);
    settings_model *m = &s->models[s->n_models++];
    settings_model_init(m);
    m->line = (int)node_line(item);
    if (item->type != YAML_MAPPING_NODE)
        return fail_expected(c, item, path, "a mapping with name and path");
    section_walk w = {.section = "models", .base = m};
    if (walk_mapping(c, item, path, section_pair, &w) != 0)
        return -1;
    for (size_t r = 0; r < settings_n_specs; r++) {
        const settings_spec *spec = &settings_specs[r];
        if (is_models(spec) && (spec->flags & SETTINGS_REQUIRED) && !(w.seen >> r & 1))
            return fail(c, node_line(item), path, "missing required key '%s'", spec->key);
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(s->models[j].name, m->name) == 0) {
            snprintf(path, sizeof path, "models[%zu].name", i);
            return fail(c, (unsigned)m->line, path, "duplicate model name '%s' (first at line %d)",
                        m->name, s->models[j].line);
        }
    }
    return 0;
}

static int parse_models(parse_ctx *c, const yaml_node_t *node, settings *s)
{
    if (scalar_is_null(node))
        return 0;
    if (node->type != YAML_SEQUENCE_NODE)
        return fail_expected(c, node, "models", "a sequence");
    yaml_node_item_t *begin = node->data.sequence.items.start;
    yaml_node_item_t *end = node->data.sequence.items.top;
    size_t n = (size_t)(end - begin);
    if (n == 0)
        return 0;
    s->models = calloc(n, sizeof *s->models);
    if (s->models == NULL)
        return fail_oom(c, node, "models");
    for (size_t i = 0; i < n; i++)
        if (parse_model_entry(c, yaml_document_get_node(c->doc, begin[i]), s, i) != 0)
            return -1;
    return 0;
}

/* A top-level key names a section of the table ("models" is a sequence). */
static bool section_known(const char *key)
{
    for (size_t i = 0; i < settings_n_specs; i++)
        if (!is_models(&settings_specs[i]) && strcmp(settings_specs[i].section, key) == 0)
            return true;
    return false;
}

static int top_pair(parse_ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v,
                    const char *path, void *ud)
{
    settings *s = ud;
    if (strcmp(key, "models") == 0)
        return parse_models(c, v, s);
    if (!section_known(key))
        return fail_unknown(c, k, path);
    section_walk w = {.section = key, .base = s};
    return walk_mapping(c, v, path, section_pair, &w);
}

/* ---- entry points ------------------------------------------------------ */

static int yaml_fail(parse_ctx *c, const yaml_parser_t *p)
{
    const yaml_mark_t *mark = &p->problem_mark;
    if (p->error == YAML_MEMORY_ERROR)
        return fail(c, (unsigned)mark->line + 1, NULL, "out of memory");
    return fail(c, (unsigned)mark->line + 1, NULL, "invalid YAML: %s%s%s",
                p->problem ? p->problem : "syntax error", p->context ? " " : "",
                p->context ? p->context : "");
}

int settings_parse(settings *out, const void *buf, size_t len, const char *filename, char *err,
                   size_t err_cap)
{
    assert(out && (buf || len == 0));
    if (filename == NULL)
        filename = "<config>";
    settings_init(out);

    settings s;
    settings_init(&s);
    parse_ctx c = {.filename = filename, .err = err, .err_cap = err_cap};
    const char *slash = strrchr(filename, '/');
    if (slash) {
        c.base_dir = filename;
        c.base_dir_len = slash == filename ? 0 : (size_t)(slash - filename);
    }
    s.source = strdup(filename);
    if (s.source == NULL) {
        error_message_set(err, err_cap, "%s: out of memory", filename);
        return -1;
    }

    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = -1;
    if (!yaml_parser_initialize(&parser)) {
        error_message_set(err, err_cap, "%s: out of memory", filename);
        settings_free(&s);
        return -1;
    }
    yaml_parser_set_input_string(&parser, buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_fail(&c, &parser);
        yaml_parser_delete(&parser);
        settings_free(&s);
        return -1;
    }
    c.doc = &doc;
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        rc = 0; /* an empty file: the defaults */
    } else if (root->type != YAML_MAPPING_NODE && !scalar_is_null(root)) {
        rc = fail_expected(&c, root, NULL, "a mapping at the top level");
    } else {
        rc = walk_mapping(&c, root, "", top_pair, &s);
    }
    if (rc == 0 && root != NULL) {
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next)) {
            rc = yaml_fail(&c, &parser);
        } else {
            const yaml_node_t *extra = yaml_document_get_root_node(&next);
            if (extra)
                rc = fail(&c, node_line(extra), NULL, "expected one YAML document, found another");
            yaml_document_delete(&next);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc != 0) {
        settings_free(&s);
        return -1;
    }
    *out = s;
    return 0;
}

int settings_load(settings *out, const char *path, char *err, size_t err_cap)
{
    settings_init(out);
    char *buf;
    size_t size;
    if (whole_file_read(path, SETTINGS_FILE_MAX, &buf, &size, err, err_cap) != 0)
        return -1;
    int rc = settings_parse(out, buf, size, path, err, err_cap);
    free(buf);
    return rc;
}

int settings_apply_overrides(settings *s, const settings_overrides *o, char *err, size_t err_cap)
{
    if (o->listen && !address_parse(o->listen, strlen(o->listen), &s->server.listen)) {
        error_message_set(err, err_cap, "--listen '%s': expected HOST:PORT with PORT in [0, 65535]",
                          o->listen);
        return -1;
    }
    if (o->state_dir) {
        if (o->state_dir[0] == '\0') {
            error_message_set(err, err_cap, "--state-dir '': expected a directory");
            return -1;
        }
        char *dir = strdup(o->state_dir);
        if (!dir) {
            error_message_set(err, err_cap, "--state-dir: out of memory");
            return -1;
        }
        free(s->server.state_dir);
        s->server.state_dir = dir;
    }
    for (size_t i = 0; i < o->n_models; i++) {
        const char *arg = o->models[i];
        const char *eq = strchr(arg, '=');
        if (eq == NULL || eq[1] == '\0') {
            error_message_set(err, err_cap, "--model '%s': expected NAME=DIR", arg);
            return -1;
        }
        size_t name_len = (size_t)(eq - arg);
        if (!model_name_valid(arg, name_len)) {
            error_message_set(err, err_cap,
                              "--model '%s': invalid model name '%.*s' (expected " MODEL_NAME_RULE
                              ")",
                              arg, (int)name_len, arg);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strncmp(o->models[j], arg, name_len + 1) == 0) {
                error_message_set(err, err_cap, "--model '%s': model '%.*s' given twice", arg,
                                  (int)name_len, arg);
                return -1;
            }
        }
        char *dir = strdup(eq + 1);
        char *name = dup_bytes(arg, name_len);
        if (dir == NULL || name == NULL) {
            free(dir);
            free(name);
            error_message_set(err, err_cap, "--model '%s': out of memory", arg);
            return -1;
        }
        settings_model *m = (settings_model *)settings_find_model(s, name);
        if (m) {
            free(m->path);
            m->path = dir;
            free(name);
            continue;
        }
        settings_model *grown = realloc(s->models, (s->n_models + 1) * sizeof *grown);
        if (grown == NULL) {
            free(dir);
            free(name);
            error_message_set(err, err_cap, "--model '%s': out of memory", arg);
            return -1;
        }
        s->models = grown;
        m = &s->models[s->n_models++];
        settings_model_init(m);
        m->name = name;
        m->path = dir;
    }
    return 0;
}
