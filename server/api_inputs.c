/* api_inputs: validates one input and writes it into its infer_request item. */
#include "api_inputs.h"
#include "input_ids.h"
#include "value_kind.h"

#include <string.h>

/* Commits n ids already in the item's buffer, with the news-cache rule for news. */
static void item_commit(infer_request *req, int i, int n, const api_input_rules *rules)
{
    if (rules->news)
        infer_request_set_item_text_news(req, i, n);
    else
        infer_request_set_item_len(req, i, n);
}

int api_input_text(const served_model *sm, infer_request *req, int i, const char *s, size_t len,
                   const api_input_rules *rules, const char *path, api_verdict *v)
{
    int32_t *ids = infer_request_item_ids(req, i);
    size_t n_ids = 0;
    bool truncated = false;
    char terr[160];
    if (model_tokenize(sm->model, s, len, ids, &n_ids, &truncated, terr, sizeof terr) != 0)
        return api_fail(v, 400, "%s: %s", path, terr);
    if (truncated && !rules->truncate)
        return api_fail(
            v, 422,
            "%s: text is longer than the model's maximum of %d tokens and truncate is false", path,
            model_max_tokens(sm->model));
    item_commit(req, i, (int)n_ids, rules);
    return 0;
}

/* Commits the `used` ids (without trailing padding) an ids input left in
 * item i: cut at the model's maximum when truncating, else 422. */
static int ids_commit(const served_model *sm, infer_request *req, int i, size_t used,
                      const api_input_rules *rules, const char *path, api_verdict *v)
{
    int max_ids = model_max_tokens(sm->model);
    int32_t *ids = infer_request_item_ids(req, i);
    if (used > (size_t)max_ids) {
        if (!rules->truncate)
            return api_fail(
                v, 422, "%s: %zu ids, more than the model's maximum of %d and truncate is false",
                path, used, max_ids);
        used = (size_t)max_ids;
        /* Cutting may leave trailing padding again; it is harmless (dropped
         * before compute) but keep the length honest. */
    }
    while (used > 0 && ids[used - 1] == 0)
        used--;
    item_commit(req, i, (int)used, rules);
    return 0;
}

int api_input_ids(const served_model *sm, infer_request *req, int i, json_t *arr, size_t off,
                  size_t n, const api_input_rules *rules, const char *path, size_t index_base,
                  api_verdict *v)
{
    int max_ids = model_max_tokens(sm->model);
    int32_t *ids = infer_request_item_ids(req, i);
    size_t used = 0; /* length without trailing padding */
    if (input_ids_from_json(arr, off, n, sm->model->config.vocab_size, ids, (size_t)max_ids, &used,
                            path, index_base, v->message, sizeof v->message) != 0) {
        v->status = 400;
        return 400;
    }
    return ids_commit(sm, req, i, used, rules, path, v);
}

int api_input_ids_le(const served_model *sm, infer_request *req, int i, const unsigned char *raw,
                     int width, size_t n, const api_input_rules *rules, const char *path,
                     size_t index_base, api_verdict *v)
{
    int max_ids = model_max_tokens(sm->model);
    int32_t *ids = infer_request_item_ids(req, i);
    size_t used = 0;
    if (input_ids_from_le(raw, width, n, sm->model->config.vocab_size, ids, (size_t)max_ids, &used,
                          path, index_base, v->message, sizeof v->message) != 0) {
        v->status = 400;
        return 400;
    }
    return ids_commit(sm, req, i, used, rules, path, v);
}

/* The news `news_id` names: its vector from the model's catalog. */
static int news_input(infer_request *req, int i, json_t *news_id, const char *path, api_verdict *v)
{
    char sub[96], nerr[200];
    snprintf(sub, sizeof sub, "%s.news_id", path);
    if (!api_expect(news_id, API_KIND_STRING, sub, "a string", v))
        return v->status;
    if (infer_request_set_item_news_id(req, i, json_string_value(news_id),
                                       json_string_length(news_id), nerr, sizeof nerr) != 0)
        return api_fail(v, 400, "%s: %s", sub, nerr);
    return 0;
}

/* {"input_ids": [...]} or, for news, {"news_id": "..."}. */
static int object_input(const served_model *sm, infer_request *req, int i, json_t *input,
                        const api_input_rules *rules, const char *path, api_verdict *v)
{
    const char *expected = rules->news ? "'input_ids' or 'news_id'" : "'input_ids'";
    const char *key;
    json_t *value;
    json_object_foreach(input, key, value)
    {
        if (strcmp(key, "input_ids") != 0 && !(rules->news && strcmp(key, "news_id") == 0))
            return api_fail(v, 400, "%s: unknown key '%.64s' (expected %s)", path, key, expected);
    }
    json_t *ids = json_object_get(input, "input_ids");
    json_t *news_id = json_object_get(input, "news_id");
    if (ids && news_id)
        return api_fail(v, 400, "%s: give either 'input_ids' or 'news_id', not both", path);
    if (news_id)
        return news_input(req, i, news_id, path, v);
    if (!ids)
        return api_fail(v, 400, "%s: expected a key %s", path, expected);
    char sub[96];
    snprintf(sub, sizeof sub, "%s.input_ids", path);
    if (!api_expect(ids, API_KIND_ARRAY, sub, "an array of integers", v))
        return v->status;
    return api_input_ids(sm, req, i, ids, 0, json_array_size(ids), rules, sub, 0, v);
}

int api_input_parse(const served_model *sm, infer_request *req, int i, json_t *input,
                    const api_input_rules *rules, const char *path, api_verdict *v)
{
    if (json_is_string(input))
        return api_input_text(sm, req, i, json_string_value(input), json_string_length(input),
                              rules, path, v);
    if (json_is_object(input))
        return object_input(sm, req, i, input, rules, path, v);
    return api_fail(v, 400, "%s: expected a string or an object with %s, got %s", path,
                    rules->news ? "'input_ids' or 'news_id'" : "'input_ids'",
                    value_kind_name(input));
}
