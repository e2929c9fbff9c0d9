/* api_news: the routes of a recommender's news catalog under
 * /v1/models/{name}/news: PUT one item, GET it, DELETE it, and POST a bulk
 * upsert. A write is durable when it is answered (news_catalog_write commits
 * to the model's store first); its errors map to HTTP here:
 *   400 a bad id, title or body          404 unknown model or news id
 *   409 max_catalog_items reached        413 more items than news_bulk_max_items
 *   503 + Retry-After: a reload is replacing the catalog, the store is
 *       read-only, unreachable or failing
 *   507 the store's disk (or database) is full
 * Nothing is changed by a write that is not answered 200/201. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_fields.h"
#include "api_frame.h"
#include "api_inputs.h"

/* Seconds a client should wait after a 503 from the store. */
#define STORE_RETRY_AFTER "5"

/* ---- shared ------------------------------------------------------------------------ */

/* 400 unless the model is a recommender with a catalog and id fits one. */
static int news_check(const served_model *sm, const char *id, api_verdict *v)
{
    if (!model_has_user_encoder(sm->model))
        return api_fail(v, 400, "model '%s' is a %s model; news needs a news-recommendation model",
                        sm->name, model_task_name(sm->model->config.task));
    if (!sm->catalog)
        return api_fail(v, 400,
                        "model '%s' has no news catalog (configure server.state_dir or "
                        "models[].news_catalog)",
                        sm->name);
    size_t id_len = id ? strlen(id) : 0;
    if (id && (id_len == 0 || id_len > NEWS_CATALOG_ID_MAX))
        return api_fail(v, 400, "news id: expected 1 to %d bytes, got %zu", NEWS_CATALOG_ID_MAX,
                        id_len);
    return 0;
}

/* Answers a write the catalog refused. */
static void write_error_respond(http_request *r, const served_model *sm,
                                const news_write_result *res)
{
    switch (res->status) {
    case NEWS_WRITE_OK:
        break;
    case NEWS_WRITE_INVALID:
        http_request_respond_error(r, 400, "%s", res->message);
        return;
    case NEWS_WRITE_LIMIT:
        http_request_respond_error(r, 409, "model '%s': %s", sm->name, res->message);
        return;
    case NEWS_WRITE_RETIRED:
        http_request_add_header(r, "Retry-After", "1");
        http_request_respond_error(r, 503, "model '%s': %s; retry", sm->name, res->message);
        return;
    case NEWS_WRITE_NO_MEMORY:
        http_request_respond_error(r, 503, "model '%s': %s", sm->name, res->message);
        return;
    case NEWS_WRITE_STORE:
        if (res->store == NEWS_STORE_FULL) {
            http_request_respond_error(r, 507, "model '%s': news store full, nothing written: %s",
                                       sm->name, res->message);
            return;
        }
        http_request_add_header(r, "Retry-After", STORE_RETRY_AFTER);
        http_request_respond_error(r, 503, "model '%s': news store %s, nothing written: %s",
                                   sm->name, news_store_status_name(res->store), res->message);
        return;
    }
    http_request_respond_error(r, 500, "model '%s': news write failed", sm->name);
}

/* A string field (NUL bytes refused: the catalog's text is C strings). */
static bool text_field(json_t *obj, const char *key, const char *path, bool required,
                       const char **out, size_t *len, api_verdict *v)
{
    *out = "";
    *len = 0;
    json_t *x = json_object_get(obj, key);
    if (!x || (!required && json_is_null(x))) {
        if (required && path[0])
            api_fail(v, 400, "%s: missing key '%s'", path, key);
        else if (required)
            api_fail(v, 400, "missing key '%s'", key);
        return !required;
    }
    char where[96];
    snprintf(where, sizeof where, "%s%s%s", path, path[0] ? "." : "", key);
    if (!api_expect(x, API_KIND_STRING, where, "a string", v))
        return false;
    *out = json_string_value(x);
    *len = json_string_length(x);
    if (memchr(*out, '\0', *len)) {
        api_fail(v, 400, "%s: contains a NUL byte", where);
        return false;
    }
    return true;
}

/* "2026-12-03T07:21:05.123Z" */
static void iso_time(int64_t unix_ms, char *out, size_t cap)
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    out[0] = '\0';
    if (!gmtime_r(&secs, &tm))
        return;
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(unix_ms % 1000));
}

/* ---- PUT one item -------------------------------------------------------------------- */

typedef struct {
    char id[NEWS_CATALOG_ID_MAX + 1];
    size_t id_len;
    char *title; /* owned */
    size_t title_len;
    char *category; /* owned */
    size_t category_len;
} news_put_job;

static void news_put_job_release(void *vjob)
{
    news_put_job *job = vjob;
    free(job->title);
    free(job->category);
}

static int news_put_check(const api_call *call, api_verdict *v)
{
    return news_check(call->sm, call->param ? call->param : "", v);
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* {"title": "...", "category": "..."}: one item to embed, stored under the path's id. */
static int news_put_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {"title", "category", NULL};
    api_verdict *v = &out->verdict;
    news_put_job *job = out->job;
    const char *title, *category;
    size_t title_len, category_len;
    if (!api_keys_allowed(body, "", keys, v) ||
        !text_field(body, "title", "", true, &title, &title_len, v) ||
        !text_field(body, "category", "", false, &category, &category_len, v))
        return v->status;
    job->id_len = strlen(call->param); /* news_put_check bounded it */
    memcpy(job->id, call->param, job->id_len + 1);
    job->title = dup_n(title, title_len);
    job->category = dup_n(category, category_len);
    job->title_len = title_len;
    job->category_len = category_len;
    if (!job->title || !job->category)
        return api_fail(v, 503, "out of memory");
    out->req = api_request_new(call, INFER_EMBED, 1, 0, v);
    if (!out->req)
        return v->status;
    api_input_rules rules = {.truncate = true, .news = false};
    return api_input_text(call->sm, out->req, 0, title, title_len, &rules, "title", v);
}

static void finish_news_put(http_request *r, infer_request *req, void *vjob)
{
    news_put_job *job = vjob;
    news_store_op op = {.kind = NEWS_STORE_UPSERT,
                        .item = {.id = job->id,
                                 .id_len = job->id_len,
                                 .title = job->title,
                                 .title_len = job->title_len,
                                 .category = job->category,
                                 .category_len = job->category_len,
                                 .vector = req->vectors}};
    bool existed = false;
    news_write_result res;
    if (news_catalog_write(req->sm->catalog, &op, 1, &existed, &res) != NEWS_WRITE_OK) {
        write_error_respond(r, req->sm, &res);
        return;
    }
    http_request_respond_json(r, existed ? 200 : 201,
                              json_pack("{s:s,s:s,s:b}", "model", req->sm->name, "news_id", job->id,
                                        "replaced", existed));
}

const api_model_route api_v1_news_put = {.check = news_put_check,
                                         .parse = news_put_parse,
                                         .finish = finish_news_put,
                                         .job_bytes = sizeof(news_put_job),
                                         .job_release = news_put_job_release};

/* ---- POST: bulk upsert ------------------------------------------------------------------ */

typedef struct {
    int n;
    char **ids; /* (n) owned */
    char **titles;
    char **categories;
} news_bulk_job;

static void news_bulk_job_release(void *vjob)
{
    news_bulk_job *job = vjob;
    for (int i = 0; i < job->n; i++) {
        if (job->ids)
            free(job->ids[i]);
        if (job->titles)
            free(job->titles[i]);
        if (job->categories)
            free(job->categories[i]);
    }
    free(job->ids);
    free(job->titles);
    free(job->categories);
}

static int news_bulk_check(const api_call *call, api_verdict *v)
{
    return news_check(call->sm, NULL, v);
}

/* {"items": [{"news_id": "N1", "title": "...", "category": "..."}, ...]} */
static int news_bulk_parse(const api_call *call, json_t *body, api_parsed *out)
{
    static const char *const keys[] = {"items", NULL};
    static const char *const item_keys[] = {"news_id", "title", "category", NULL};
    api_verdict *v = &out->verdict;
    news_bulk_job *job = out->job;
    if (!api_keys_allowed(body, "", keys, v))
        return v->status;
    json_t *items = api_require(body, "items", v);
    if (!items || !api_expect(items, API_KIND_ARRAY, "items", "an array", v))
        return v->status;
    size_t n = json_array_size(items);
    if (n == 0)
        return api_fail(v, 400, "items: must not be empty");
    int most = call->sm->news_bulk_max_items;
    if (n > (size_t)most)
        return api_fail(v, 413, "items: %zu items, more than news_bulk_max_items (%d)", n, most);
    job->ids = calloc(n, sizeof *job->ids);
    job->titles = calloc(n, sizeof *job->titles);
    job->categories = calloc(n, sizeof *job->categories);
    if (!job->ids || !job->titles || !job->categories)
        return api_fail(v, 503, "out of memory for %zu items", n);
    job->n = (int)n;
    out->req = api_request_new(call, INFER_EMBED, (int)n, 0, v);
    if (!out->req)
        return v->status;
    /* Duplicate ids are refused: the set of ids seen so far. */
    json_t *seen = json_object();
    if (!seen)
        return api_fail(v, 503, "out of memory");
    api_input_rules rules = {.truncate = true, .news = false};
    for (size_t i = 0; i < n && v->status == 0; i++) {
        char path[48];
        snprintf(path, sizeof path, "items[%zu]", i);
        json_t *it = json_array_get(items, i);
        if (!api_expect(it, API_KIND_OBJECT, path, "an object", v) ||
            !api_keys_allowed(it, path, item_keys, v))
            break;
        const char *id, *title, *category;
        size_t id_len, title_len, category_len;
        if (!text_field(it, "news_id", path, true, &id, &id_len, v) ||
            !text_field(it, "title", path, true, &title, &title_len, v) ||
            !text_field(it, "category", path, false, &category, &category_len, v))
            break;
        if (id_len == 0 || id_len > NEWS_CATALOG_ID_MAX) {
            api_fail(v, 400, "%s.news_id: expected 1 to %d bytes, got %zu", path,
                     NEWS_CATALOG_ID_MAX, id_len);
            break;
        }
        json_t *first = json_object_get(seen, id);
        if (first) {
            api_fail(v, 400, "%s.news_id: '%s' is also items[%" JSON_INTEGER_FORMAT "]", path, id,
                     json_integer_value(first));
            break;
        }
        json_object_set_new(seen, id, json_integer((json_int_t)i));
        job->ids[i] = dup_n(id, id_len);
        job->titles[i] = dup_n(title, title_len);
        job->categories[i] = dup_n(category, category_len);
        if (!job->ids[i] || !job->titles[i] || !job->categories[i]) {
            api_fail(v, 503, "out of memory");
            break;
        }
        char tpath[64];
        snprintf(tpath, sizeof tpath, "%s.title", path);
        api_input_text(call->sm, out->req, (int)i, title, title_len, &rules, tpath, v);
    }
    json_decref(seen);
    return v->status;
}

static void finish_news_bulk(http_request *r, infer_request *req, void *vjob)
{
    news_bulk_job *job = vjob;
    size_t n = (size_t)job->n;
    news_store_op *ops = calloc(n, sizeof *ops);
    bool *existed = calloc(n, sizeof *existed);
    if (!ops || !existed) {
        free(ops);
        free(existed);
        http_request_respond_error(r, 503, "out of memory for %zu items", n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        ops[i] = (news_store_op){.kind = NEWS_STORE_UPSERT,
                                 .item = {.id = job->ids[i],
                                          .id_len = strlen(job->ids[i]),
                                          .title = job->titles[i],
                                          .title_len = strlen(job->titles[i]),
                                          .category = job->categories[i],
                                          .category_len = strlen(job->categories[i]),
                                          .vector = req->vectors + i * (size_t)req->dim}};
    news_write_result res;
    if (news_catalog_write(req->sm->catalog, ops, n, existed, &res) != NEWS_WRITE_OK) {
        write_error_respond(r, req->sm, &res);
    } else {
        int replaced = 0;
        for (size_t i = 0; i < n; i++)
            replaced += existed[i];
        http_request_respond_json(r, 200,
                                  json_pack("{s:s,s:i,s:i}", "model", req->sm->name, "created",
                                            (int)n - replaced, "replaced", replaced));
    }
    free(ops);
    free(existed);
}

const api_model_route api_v1_news_bulk = {.check = news_bulk_check,
                                          .parse = news_bulk_parse,
                                          .finish = finish_news_bulk,
                                          .job_bytes = sizeof(news_bulk_job),
                                          .job_release = news_bulk_job_release};

/* ---- GET and DELETE one item ------------------------------------------------------------- */

/* The model and id of a GET or DELETE, or NULL after answering. */
static served_model *news_target(api_context *ctx, http_request *r, const char **id)
{
    served_model *sm = api_model_get(ctx, r);
    if (!sm)
        return NULL;
    *id = http_request_param(r, 1);
    api_verdict v = {0};
    if (news_check(sm, *id ? *id : "", &v) != 0) {
        api_verdict_respond(r, &v);
        served_model_release(sm);
        return NULL;
    }
    return sm;
}

void api_v1_news_get(http_request *r, void *vctx)
{
    const char *id;
    served_model *sm = news_target(vctx, r, &id);
    if (!sm)
        return;
    news_catalog_entry e;
    int found = news_catalog_describe(sm->catalog, id, strlen(id), &e);
    if (found == 0) {
        http_request_respond_error(r, 404, "model '%s': unknown news_id '%.64s'", sm->name, id);
    } else if (found < 0) {
        http_request_respond_error(r, 503, "out of memory");
    } else {
        char when[40];
        iso_time(e.updated_ms, when, sizeof when);
        http_request_respond_json(r, 200,
                                  json_pack("{s:s,s:s,s:s,s:s,s:s}", "model", sm->name, "news_id",
                                            id, "title", e.title, "category", e.category, "updated",
                                            when));
        free(e.title);
        free(e.category);
    }
    served_model_release(sm);
}

void api_v1_news_delete(http_request *r, void *vctx)
{
    const char *id;
    served_model *sm = news_target(vctx, r, &id);
    if (!sm)
        return;
    news_store_op op = {.kind = NEWS_STORE_DELETE, .item = {.id = id, .id_len = strlen(id)}};
    bool existed = false;
    news_write_result res;
    if (news_catalog_write(sm->catalog, &op, 1, &existed, &res) != NEWS_WRITE_OK)
        write_error_respond(r, sm, &res);
    else if (!existed)
        http_request_respond_error(r, 404, "model '%s': unknown news_id '%.64s'", sm->name, id);
    else
        http_request_respond_json(
            r, 200, json_pack("{s:s,s:s,s:b}", "model", sm->name, "news_id", id, "deleted", 1));
    served_model_release(sm);
}
