/* api_fields: field checks with the API's wording (see api_fields.h). */
#include "api_fields.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "value_kind.h"

/* ---- jansson's allocations ---------------------------------------------------- */

static void *(*json_alloc_inner)(size_t) = malloc;
static _Thread_local bool json_alloc_failed; /* since api_body_json's last reset */

static void *json_alloc(size_t n)
{
    void *p = json_alloc_inner(n);
    if (!p)
        json_alloc_failed = true;
    return p;
}

void api_json_alloc_install(void *(*alloc)(size_t))
{
    json_alloc_inner = alloc ? alloc : malloc;
    json_set_alloc_funcs(json_alloc, free);
}

/* ---- verdicts and fields ------------------------------------------------------- */

int api_fail(api_verdict *v, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
    v->status = status;
    return status;
}

json_t *api_body_json(const char *body, size_t body_bytes, api_verdict *v)
{
    if (body_bytes == 0) {
        api_fail(v, 400, "request body is empty: expected a JSON object");
        return NULL;
    }
    json_error_t jerr;
    json_alloc_failed = false;
    json_t *j = json_loadb(body, body_bytes,
                           JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    /* jansson reports some failed allocations as syntax errors ("string or
     * '}' expected"), and its lexer drops a character it cannot save without
     * failing at all (a key can lose its last letter), so the allocator's own
     * note decides, whatever json_loadb returned. */
    if (json_alloc_failed) {
        json_decref(j);
        api_fail(v, 503, "out of memory");
        return NULL;
    }
    if (!j) {
        api_fail(v, 400, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        api_fail(v, 400, "request body: expected a JSON object, got %s", value_kind_name(j));
        json_decref(j);
        return NULL;
    }
    return j;
}

static bool key_listed(const char *key, const char *const *allowed)
{
    for (const char *const *a = allowed; *a; a++)
        if (strcmp(key, *a) == 0)
            return true;
    return false;
}

bool api_keys_allowed(json_t *obj, const char *where, const char *const *allowed, api_verdict *v)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        if (key_listed(key, allowed))
            continue;
        char list[160] = "";
        for (const char *const *a = allowed; *a; a++) {
            size_t n = strlen(list);
            snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *a);
        }
        api_fail(v, 400, "%s%sunknown key '%.64s' (allowed: %s)", where, where[0] ? ": " : "", key,
                 list);
        return false;
    }
    return true;
}

static bool kind_is(const json_t *value, api_kind kind)
{
    switch (kind) {
    case API_KIND_OBJECT:
        return json_is_object(value);
    case API_KIND_ARRAY:
        return json_is_array(value);
    case API_KIND_STRING:
        return json_is_string(value);
    case API_KIND_INTEGER:
        return json_is_integer(value);
    case API_KIND_BOOLEAN:
        return json_is_boolean(value);
    }
    return false;
}

bool api_expect(const json_t *value, api_kind kind, const char *path, const char *what,
                api_verdict *v)
{
    if (value && kind_is(value, kind))
        return true;
    api_fail(v, 400, "%s: expected %s, got %s", path, what,
             value ? value_kind_name(value) : "nothing");
    return false;
}

json_t *api_require(json_t *obj, const char *key, api_verdict *v)
{
    json_t *value = json_object_get(obj, key);
    if (!value)
        api_fail(v, 400, "missing key '%s'", key);
    return value;
}

bool api_optional_bool(json_t *obj, const char *key, const char *path, bool *out, api_verdict *v)
{
    json_t *value = json_object_get(obj, key);
    if (!value)
        return true;
    if (!api_expect(value, API_KIND_BOOLEAN, path, "a boolean", v))
        return false;
    *out = json_is_true(value);
    return true;
}
