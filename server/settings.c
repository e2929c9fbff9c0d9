/* settings: parses the YAML config with libyaml's document API (which keeps
 * every node's line) and walks it against a fixed schema, so an unknown key,
 * a wrong type or an out-of-range value names its file, line and key path. */
#include "settings.h"

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

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---- defaults, lookup, free ------------------------------------------- */

void settings_init(settings *s)
{
    assert(s);
    memset(s, 0, sizeof *s);
    snprintf(s->server.listen, sizeof s->server.listen, "%s", SETTINGS_DEFAULT_LISTEN);
    snprintf(s->server.listen_host, sizeof s->server.listen_host, "127.0.0.1");
    s->server.listen_port = 8080;
    s->server.max_connections = SETTINGS_DEFAULT_MAX_CONNECTIONS;
    s->server.max_body_bytes = SETTINGS_DEFAULT_MAX_BODY_BYTES;
    s->server.request_timeout_ms = SETTINGS_DEFAULT_REQUEST_TIMEOUT_MS;
    s->server.connection_timeout_s = SETTINGS_DEFAULT_CONNECTION_TIMEOUT_S;
    s->server.drain_timeout_s = SETTINGS_DEFAULT_DRAIN_TIMEOUT_S;
    s->server.api_key = NULL;
    s->batching.max_batch_size = SETTINGS_DEFAULT_MAX_BATCH_SIZE;
    s->batching.max_batch_tokens = SETTINGS_DEFAULT_MAX_BATCH_TOKENS;
    s->batching.max_queue_delay_us = SETTINGS_DEFAULT_MAX_QUEUE_DELAY_US;
    s->batching.max_queue = SETTINGS_DEFAULT_MAX_QUEUE;
    s->batching.workers = SETTINGS_DEFAULT_WORKERS;
    s->batching.blas_threads = SETTINGS_DEFAULT_BLAS_THREADS;
    s->logging.format = LOG_FORMAT_TEXT;
    s->logging.level = LOG_LEVEL_INFO;
}

static void model_free_fields(settings_model *m)
{
    free(m->name);
    free(m->path);
    free(m->news_catalog);
}

void settings_free(settings *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_models; i++)
        model_free_fields(&s->models[i]);
    free(s->models);
    free(s->server.api_key);
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
    return 0;
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

/* Splits "HOST:PORT" / "[V6]:PORT" into host (without brackets) and port.
 * The whole string must be shorter than SETTINGS_LISTEN_MAX. */
static bool listen_parse(const char *s, size_t n, char host[SETTINGS_LISTEN_MAX], uint16_t *port)
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
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    *port = (uint16_t)p;
    return true;
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

static int get_u32(parse_ctx *c, const yaml_node_t *n, const char *path, int64_t lo, int64_t hi,
                   uint32_t *out)
{
    int64_t v = 0;
    assert(lo >= 0 && hi <= UINT32_MAX);
    if (get_int(c, n, path, lo, hi, &v) != 0)
        return -1;
    *out = (uint32_t)v;
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

/* ---- sections ---------------------------------------------------------- */

static int server_pair(parse_ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v,
                       const char *path, void *ud)
{
    settings_server *s = ud;
    uint32_t u32;
    int64_t i64;
    if (strcmp(key, "listen") == 0) {
        const char *str;
        size_t len;
        char host[SETTINGS_LISTEN_MAX];
        uint16_t port;
        if (v->type != YAML_SCALAR_NODE || scalar_is_null(v) ||
            !listen_parse((const char *)v->data.scalar.value, v->data.scalar.length, host, &port))
            return fail_expected(c, v, path, "HOST:PORT with PORT in [0, 65535]");
        str = (const char *)v->data.scalar.value;
        len = v->data.scalar.length;
        memcpy(s->listen, str, len);
        s->listen[len] = '\0';
        memcpy(s->listen_host, host, sizeof host);
        s->listen_port = port;
    } else if (strcmp(key, "max_connections") == 0) {
        if (get_u32(c, v, path, 1, 65536, &u32))
            return -1;
        s->max_connections = u32;
    } else if (strcmp(key, "max_body_bytes") == 0) {
        if (get_int(c, v, path, 1024, (int64_t)1 << 30, &i64))
            return -1;
        s->max_body_bytes = (uint64_t)i64;
    } else if (strcmp(key, "request_timeout_ms") == 0) {
        if (get_u32(c, v, path, 1, 3600000, &u32))
            return -1;
        s->request_timeout_ms = u32;
    } else if (strcmp(key, "connection_timeout_s") == 0) {
        if (get_u32(c, v, path, 1, 3600, &u32))
            return -1;
        s->connection_timeout_s = u32;
    } else if (strcmp(key, "drain_timeout_s") == 0) {
        if (get_u32(c, v, path, 0, 3600, &u32))
            return -1;
        s->drain_timeout_s = u32;
    } else if (strcmp(key, "api_key") == 0) {
        if (scalar_is_null(v))
            return 0;
        const char *str;
        size_t len;
        if (get_str(c, v, path, &str, &len))
            return -1;
        if (len > 4096)
            return fail(c, node_line(v), path, "expected at most 4096 bytes, got %zu", len);
        free(s->api_key);
        s->api_key = dup_bytes(str, len);
        if (s->api_key == NULL)
            return fail_oom(c, v, path);
    } else {
        return fail_unknown(c, k, path);
    }
    return 0;
}

static int batching_pair(parse_ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v,
                         const char *path, void *ud)
{
    settings_batching *b = ud;
    if (strcmp(key, "max_batch_size") == 0)
        return get_u32(c, v, path, 1, 4096, &b->max_batch_size);
    if (strcmp(key, "max_batch_tokens") == 0)
        return get_u32(c, v, path, 1, 1048576, &b->max_batch_tokens);
    if (strcmp(key, "max_queue_delay_us") == 0)
        return get_u32(c, v, path, 0, 10000000, &b->max_queue_delay_us);
    if (strcmp(key, "max_queue") == 0)
        return get_u32(c, v, path, 1, 1000000, &b->max_queue);
    if (strcmp(key, "workers") == 0)
        return get_u32(c, v, path, 1, 256, &b->workers);
    if (strcmp(key, "blas_threads") == 0)
        return get_u32(c, v, path, 1, 256, &b->blas_threads);
    return fail_unknown(c, k, path);
}

static int logging_pair(parse_ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v,
                        const char *path, void *ud)
{
    static const char *const formats[] = {"text", "json"};
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    settings_logging *l = ud;
    int idx = 0;
    if (strcmp(key, "format") == 0) {
        if (get_enum(c, v, path, formats, 2, &idx))
            return -1;
        l->format = idx == 1 ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
        return 0;
    }
    if (strcmp(key, "level") == 0) {
        if (get_enum(c, v, path, levels, 4, &idx))
            return -1;
        l->level = (log_level)idx;
        return 0;
    }
    return fail_unknown(c, k, path);
}

typedef struct {
    settings_model *m;
    bool has_name, has_path;
} model_entry;

static int model_pair(parse_ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v,
                      const char *path, void *ud)
{
    model_entry *e = ud;
    settings_model *m = e->m;
    const char *str;
    size_t len;
    if (strcmp(key, "name") == 0) {
        if (v->type != YAML_SCALAR_NODE || scalar_is_null(v) ||
            !model_name_valid((const char *)v->data.scalar.value, v->data.scalar.length))
            return fail_expected(c, v, path,
                                 "a model name matching [A-Za-z0-9_.-]{1,64}, not starting "
                                 "with '.'");
        m->name = dup_bytes((const char *)v->data.scalar.value, v->data.scalar.length);
        if (m->name == NULL)
            return fail_oom(c, v, path);
        e->has_name = true;
    } else if (strcmp(key, "path") == 0) {
        if (get_str(c, v, path, &str, &len))
            return -1;
        m->path = resolve_path(c, str, len);
        if (m->path == NULL)
            return fail_oom(c, v, path);
        e->has_path = true;
    } else if (strcmp(key, "max_batch_size") == 0) {
        return get_u32(c, v, path, 1, 4096, &m->max_batch_size);
    } else if (strcmp(key, "max_batch_tokens") == 0) {
        return get_u32(c, v, path, 1, 1048576, &m->max_batch_tokens);
    } else if (strcmp(key, "news_catalog") == 0) {
        if (scalar_is_null(v))
            return 0;
        if (get_str(c, v, path, &str, &len))
            return -1;
        m->news_catalog = resolve_path(c, str, len);
        if (m->news_catalog == NULL)
            return fail_oom(c, v, path);
    } else if (strcmp(key, "news_cache_entries") == 0) {
        return get_u32(c, v, path, 0, 10000000, &m->news_cache_entries);
    } else {
        return fail_unknown(c, k, path);
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
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, begin[i]);
        char path[KEY_PATH_MAX];
        snprintf(path, sizeof path, "models[%zu]", i);
        settings_model *m = &s->models[s->n_models++];
        m->news_cache_entries = SETTINGS_DEFAULT_NEWS_CACHE_ENTRIES;
        m->line = (int)node_line(item);
        if (item->type != YAML_MAPPING_NODE)
            return fail_expected(c, item, path, "a mapping with name and path");
        model_entry e = {.m = m};
        if (walk_mapping(c, item, path, model_pair, &e) != 0)
            return -1;
        if (!e.has_name)
            return fail(c, node_line(item), path, "missing required key 'name'");
        if (!e.has_path)
            return fail(c, node_line(item), path, "missing required key 'path'");
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->models[j].name, m->name) == 0) {
                snprintf(path, sizeof path, "models[%zu].name", i);
                return fail(c, (unsigned)m->line, path,
                            "duplicate model name '%s' (first at line %d)", m->name,
                            s->models[j].line);
            }
        }
    }
    return 0;
}

static int top_pair(parse_ctx *c, const char *key, const yaml_node_t *k, const yaml_node_t *v,
                    const char *path, void *ud)
{
    settings *s = ud;
    if (strcmp(key, "server") == 0)
        return walk_mapping(c, v, path, server_pair, &s->server);
    if (strcmp(key, "batching") == 0)
        return walk_mapping(c, v, path, batching_pair, &s->batching);
    if (strcmp(key, "logging") == 0)
        return walk_mapping(c, v, path, logging_pair, &s->logging);
    if (strcmp(key, "models") == 0)
        return parse_models(c, v, s);
    return fail_unknown(c, k, path);
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
    if (o->listen) {
        char host[SETTINGS_LISTEN_MAX];
        uint16_t port;
        if (!listen_parse(o->listen, strlen(o->listen), host, &port)) {
            error_message_set(err, err_cap,
                              "--listen '%s': expected HOST:PORT with PORT in [0, 65535]",
                              o->listen);
            return -1;
        }
        snprintf(s->server.listen, sizeof s->server.listen, "%s", o->listen);
        memcpy(s->server.listen_host, host, sizeof host);
        s->server.listen_port = port;
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
            error_message_set(
                err, err_cap,
                "--model '%s': invalid model name '%.*s' (expected [A-Za-z0-9_.-]{1,64}, "
                "not starting with '.')",
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
        memset(m, 0, sizeof *m);
        m->name = name;
        m->path = dir;
        m->news_cache_entries = SETTINGS_DEFAULT_NEWS_CACHE_ENTRIES;
    }
    return 0;
}
