/* api_inputs: validates one input and writes it into its infer_request item. */
#include "api_inputs.h"
#include "input_ids.h"
#include "value_kind.h"

#include <stdio.h>
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
                   const api_input_rules *rules, const char *path, char *err, size_t err_cap)
{
    int32_t *ids = infer_request_item_ids(req, i);
    size_t n_ids = 0;
    bool truncated = false;
    char terr[160];
    if (model_tokenize(sm->model, s, len, ids, &n_ids, &truncated, terr, sizeof terr) != 0) {
        snprintf(err, err_cap, "%s: %s", path, terr);
        return 400;
    }
    if (truncated && !rules->truncate) {
        snprintf(err, err_cap,
                 "%s: text is longer than the model's maximum of %d tokens and truncate is false",
                 path, model_max_tokens(sm->model));
        return 422;
    }
    item_commit(req, i, (int)n_ids, rules);
    return 0;
}

int api_input_ids(const served_model *sm, infer_request *req, int i, json_t *arr, size_t off,
                  size_t n, const api_input_rules *rules, const char *path, size_t index_base,
                  char *err, size_t err_cap)
{
    int max_ids = model_max_tokens(sm->model);
    int32_t *ids = infer_request_item_ids(req, i);
    size_t used = 0; /* length without trailing padding */
    if (input_ids_from_json(arr, off, n, sm->model->config.vocab_size, ids, (size_t)max_ids, &used,
                            path, index_base, err, err_cap) != 0)
        return 400;
    if (used > (size_t)max_ids) {
        if (!rules->truncate) {
            snprintf(err, err_cap,
                     "%s: %zu ids, more than the model's maximum of %d and truncate is false", path,
                     used, max_ids);
            return 422;
        }
        used = (size_t)max_ids;
        /* Cutting may leave trailing padding again; it is harmless (dropped
         * before compute) but keep the length honest. */
    }
    while (used > 0 && ids[used - 1] == 0)
        used--;
    item_commit(req, i, (int)used, rules);
    return 0;
}

int api_input_parse(const served_model *sm, infer_request *req, int i, json_t *input,
                    const api_input_rules *rules, const char *path, char *err, size_t err_cap)
{
    if (json_is_string(input))
        return api_input_text(sm, req, i, json_string_value(input), json_string_length(input),
                              rules, path, err, err_cap);
    if (json_is_object(input)) {
        json_t *ids = json_object_get(input, "input_ids");
        json_t *news_id = json_object_get(input, "news_id");
        const char *key;
        json_t *value;
        json_object_foreach(input, key, value)
        {
            if (strcmp(key, "input_ids") != 0 && !(rules->news && strcmp(key, "news_id") == 0)) {
                snprintf(err, err_cap, "%s: unknown key '%.64s' (expected %s)", path, key,
                         rules->news ? "'input_ids' or 'news_id'" : "'input_ids'");
                return 400;
            }
        }
        if (ids && news_id) {
            snprintf(err, err_cap, "%s: give either 'input_ids' or 'news_id', not both", path);
            return 400;
        }
        if (ids) {
            char sub[96];
            snprintf(sub, sizeof sub, "%s.input_ids", path);
            if (!json_is_array(ids)) {
                snprintf(err, err_cap, "%s: expected an array of integers, got %s", sub,
                         value_kind_name(ids));
                return 400;
            }
            return api_input_ids(sm, req, i, ids, 0, json_array_size(ids), rules, sub, 0, err,
                                 err_cap);
        }
        if (news_id) {
            if (!json_is_string(news_id)) {
                snprintf(err, err_cap, "%s.news_id: expected a string, got %s", path,
                         value_kind_name(news_id));
                return 400;
            }
            char nerr[200];
            if (infer_request_set_item_news_id(req, i, json_string_value(news_id),
                                               json_string_length(news_id), nerr,
                                               sizeof nerr) != 0) {
                snprintf(err, err_cap, "%s.news_id: %s", path, nerr);
                return 400;
            }
            return 0;
        }
        snprintf(err, err_cap, "%s: expected %s", path,
                 rules->news ? "a key 'input_ids' or 'news_id'" : "a key 'input_ids'");
        return 400;
    }
    snprintf(err, err_cap, "%s: expected a string or an object with %s, got %s", path,
             rules->news ? "'input_ids' or 'news_id'" : "'input_ids'", value_kind_name(input));
    return 400;
}
