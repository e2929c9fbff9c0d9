/* api_tokenize: POST /v1/models/{name}/tokenize, the model's own tokenizer
 * and truncation rule, so that a client can count tokens and see what the
 * model is given:
 *   {"inputs": ["great film", ...], "truncate": true}
 *   -> {"model": NAME, "tokens": [[{"id": 12, "text": "great"}, ...], ...],
 *       "truncated": [false, ...]}
 * `inputs` may also be one string (Hugging Face TEI's habit). The tokens are
 * the ones the model sees: at most its max_tokens, the first ones when a text
 * is longer (truncated: true); with "truncate": false such a text is a 422,
 * as on classify and embed. An id's text is its vocabulary entry (an unknown
 * word is "[UNK]"; a wordpiece continuation keeps its "##"). Nothing is
 * queued: the HTTP thread tokenizes, bounded by the body limit and
 * API_MAX_INPUTS. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>

#include "api_fields.h"
#include "api_frame.h"

/* One text's tokens as [{"id", "text"}], or NULL with the verdict. */
static json_t *text_tokens(const model *m, json_t *text, const char *path, int32_t *ids,
                           bool truncate, bool *truncated, api_verdict *v)
{
    if (!api_expect(text, API_KIND_STRING, path, "a string", v))
        return NULL;
    size_t n = 0;
    char terr[160];
    if (model_tokenize(m, json_string_value(text), json_string_length(text), ids, &n, truncated,
                       terr, sizeof terr) != 0) {
        api_fail(v, 400, "%s: %s", path, terr);
        return NULL;
    }
    if (*truncated && !truncate) {
        api_fail(v, 422,
                 "%s: text is longer than the model's maximum of %d tokens and truncate is false",
                 path, model_max_tokens(m));
        return NULL;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        const char *word = vocab_token(m->vocab, ids[i]);
        if (json_array_append_new(
                list, json_pack("{s:i,s:s}", "id", (int)ids[i], "text", word ? word : "")) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (!list)
        api_fail(v, 503, "out of memory");
    return list;
}

/* The answer for `body` (a JSON object), or NULL with the verdict. Pure. */
static json_t *tokenize_answer(const served_model *sm, json_t *body, api_verdict *v)
{
    static const char *const keys[] = {"inputs", "truncate", NULL};
    bool truncate = true;
    if (!api_keys_allowed(body, "", keys, v) ||
        !api_optional_bool(body, "truncate", "truncate", &truncate, v))
        return NULL;
    json_t *inputs = api_require(body, "inputs", v);
    if (!inputs)
        return NULL;
    json_t *one = json_is_string(inputs) ? json_pack("[O]", inputs) : json_incref(inputs);
    if (!one) {
        api_fail(v, 503, "out of memory");
        return NULL;
    }
    json_t *tokens = NULL, *flags = NULL, *answer = NULL;
    int32_t *ids = NULL;
    size_t n = json_array_size(one);
    if (!api_expect(one, API_KIND_ARRAY, "inputs", "a string or an array of strings", v))
        goto done;
    if (n == 0) {
        api_fail(v, 400, "inputs: must not be empty");
        goto done;
    }
    if (n > API_MAX_INPUTS) {
        api_fail(v, 413, "inputs: %zu inputs, more than the limit of %d per request", n,
                 API_MAX_INPUTS);
        goto done;
    }
    ids = malloc(sizeof *ids * (size_t)model_max_tokens(sm->model));
    tokens = json_array();
    flags = json_array();
    if (!ids || !tokens || !flags) {
        api_fail(v, 503, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        char path[48];
        snprintf(path, sizeof path, "inputs[%zu]", i);
        bool truncated = false;
        json_t *list =
            text_tokens(sm->model, json_array_get(one, i), path, ids, truncate, &truncated, v);
        if (!list)
            goto done;
        json_array_append_new(tokens, list);
        json_array_append_new(flags, json_boolean(truncated));
    }
    answer = json_pack("{s:s,s:O,s:O}", "model", sm->name, "tokens", tokens, "truncated", flags);
    if (!answer)
        api_fail(v, 503, "out of memory");
done:
    free(ids);
    json_decref(tokens);
    json_decref(flags);
    json_decref(one);
    return answer;
}

void api_v1_tokenize(http_request *r, void *vctx)
{
    served_model *sm = api_model_get(vctx, r);
    if (!sm)
        return;
    size_t body_bytes;
    const char *body = http_request_body(r, &body_bytes);
    api_verdict v = {0};
    json_t *json = api_body_json(body, body_bytes, &v);
    json_t *answer = json ? tokenize_answer(sm, json, &v) : NULL;
    json_decref(json);
    if (answer)
        http_request_respond_json(r, 200, answer);
    else
        api_verdict_respond(r, &v);
    served_model_release(sm);
}
