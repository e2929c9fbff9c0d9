/* api_inputs: one API input -> one item of an infer_request. An input is a
 * string (tokenized with the model's tokenizer), {"input_ids": [ints]}, or,
 * where news is expected, {"news_id": "N123"}. Every rejection names the
 * input's place in the request, e.g.
 *   inputs[3].input_ids[7]: id 99999 >= vocab_size 30000
 * and says whether it is a 400 (malformed) or a 422 (too long with
 * "truncate": false). HTTP thread (or any thread: nothing here is shared). */
#ifndef FF_API_INPUTS_H
#define FF_API_INPUTS_H

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>

#include "api_fields.h"
#include "infer_request.h"
#include "model_registry.h"

typedef struct {
    bool truncate; /* cut long inputs at the model's maximum (else 422) */
    bool news;     /* a recommender's news item: news_id allowed, news-cache rule applies */
} api_input_rules;

/* Fills item i of req from `input`. Returns 0, or the HTTP status (400 or
 * 422) with a message starting with `path` in the verdict. */
int api_input_parse(const served_model *sm, infer_request *req, int i, json_t *input,
                    const api_input_rules *rules, const char *path, api_verdict *v);

/* Item i from the text s[0..len). Returns 0, 400 (invalid UTF-8) or 422. */
int api_input_text(const served_model *sm, infer_request *req, int i, const char *s, size_t len,
                   const api_input_rules *rules, const char *path, api_verdict *v);

/* Item i from the ids arr[off .. off+n) (JSON integers; 0 = padding, trailing
 * padding dropped). Messages name elements as path[index_base + k]. Returns
 * 0, 400 (not an integer, negative, >= vocab_size) or 422 (too long). */
int api_input_ids(const served_model *sm, infer_request *req, int i, json_t *arr, size_t off,
                  size_t n, const api_input_rules *rules, const char *path, size_t index_base,
                  api_verdict *v);

/* The same from n ids stored little-endian, `width` bytes each (4: INT32,
 * 8: INT64), at raw (binary tensor data; input_ids_from_le). */
int api_input_ids_le(const served_model *sm, infer_request *req, int i, const unsigned char *raw,
                     int width, size_t n, const api_input_rules *rules, const char *path,
                     size_t index_base, api_verdict *v);

#endif
