/* cli_input: validation of predict/eval input objects. */
#include "cli_input.h"
#include "input_ids.h"
#include "value_kind.h"

#include <assert.h>
#include <stdio.h>

static int ids_from_array(const model *m, const json_t *arr, int32_t *ids, int32_t *n_ids,
                          char *err, size_t err_cap)
{
    size_t n = json_array_size(arr);
    int max = model_max_tokens(m);
    if (n > (size_t)max) {
        snprintf(err, err_cap,
                 "input_ids has %zu ids, more than the model's max_position_embeddings %d", n, max);
        return -1;
    }
    size_t n_content = 0;
    if (input_ids_from_json(arr, 0, n, m->config.vocab_size, ids, n, &n_content, "input_ids", 0,
                            err, err_cap) != 0)
        return -1;
    *n_ids = (int32_t)n;
    return 0;
}

int cli_input_ids(const model *m, const json_t *obj, int32_t *ids, int32_t *n_ids, bool *truncated,
                  char *err, size_t err_cap)
{
    assert(m != NULL && obj != NULL && ids != NULL && n_ids != NULL && truncated != NULL);
    assert(err != NULL && err_cap > 0);
    *n_ids = 0;
    *truncated = false;
    if (!json_is_object(obj)) {
        snprintf(err, err_cap, "expected a JSON object, got %s", value_kind_name(obj));
        return -1;
    }
    const json_t *text = json_object_get(obj, "text");
    const json_t *arr = json_object_get(obj, "input_ids");
    if (text && arr) {
        snprintf(err, err_cap, "give \"text\" or \"input_ids\", not both");
        return -1;
    }
    if (arr) {
        if (!json_is_array(arr)) {
            snprintf(err, err_cap, "input_ids: expected an array of integers, got %s",
                     value_kind_name(arr));
            return -1;
        }
        return ids_from_array(m, arr, ids, n_ids, err, err_cap);
    }
    if (!text) {
        snprintf(err, err_cap, "expected a \"text\" string or an \"input_ids\" array");
        return -1;
    }
    if (!json_is_string(text)) {
        snprintf(err, err_cap, "text: expected a string, got %s", value_kind_name(text));
        return -1;
    }
    size_t n = 0;
    char tok_err[200];
    if (model_tokenize(m, json_string_value(text), json_string_length(text), ids, &n, truncated,
                       tok_err, sizeof tok_err) != 0) {
        snprintf(err, err_cap, "text: %s", tok_err);
        return -1;
    }
    *n_ids = (int32_t)n;
    return 0;
}
