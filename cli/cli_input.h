/* cli_input: one input object of `fastformer-cli predict` / `eval`
 * ({"text": "..."} or {"input_ids": [...]}) turned into token ids. */
#ifndef FF_CLI_INPUT_H
#define FF_CLI_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "compiler.h"
#include "model.h"

/* Writes the ids of `obj` into ids (room for model_max_tokens(m)) and their
 * count into *n_ids. "text" is tokenized with the model's tokenizer and
 * truncated at model_max_tokens (*truncated tells); "input_ids" are checked
 * (integers in [0, vocab_size), at most model_max_tokens of them) and never
 * truncated. Returns -1 with a message naming the field, e.g.
 * "input_ids[7]: id 99999 >= vocab_size 30000". Borrows obj. */
FF_MUST_CHECK int cli_input_ids(const model *m, const json_t *obj, int32_t *ids, int32_t *n_ids,
                                bool *truncated, char *err, size_t err_cap);

#endif
