/* tokenizer: public API and dispatch to the word and wordpiece pipelines.
 * (Work in progress: encode is not implemented yet.) */
#include "tokenizer.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tokenizer {
    tokenizer_kind kind;
    bool lowercase;
    const vocab *v;
    int32_t unk_id;
};

int tokenizer_new(tokenizer_kind kind, bool lowercase, const vocab *v, tokenizer **out, char *err,
                  size_t err_cap)
{
    assert(v != NULL && out != NULL);
    *out = NULL;
    int32_t unk = vocab_lookup(v, "[UNK]", 5);
    if (unk < 0) {
        if (err && err_cap)
            snprintf(err, err_cap, "vocab has no \"[UNK]\" token");
        return -1;
    }
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        if (err && err_cap)
            snprintf(err, err_cap, "tokenizer: out of memory");
        return -1;
    }
    t->kind = kind;
    t->lowercase = lowercase;
    t->v = v;
    t->unk_id = unk;
    *out = t;
    return 0;
}

void tokenizer_free(tokenizer *t)
{
    free(t);
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t text_bytes, int32_t *ids,
                     size_t max_ids, size_t *n_ids, bool *truncated, char *err, size_t err_cap)
{
    assert(t != NULL && n_ids != NULL && truncated != NULL);
    (void)text;
    (void)text_bytes;
    (void)ids;
    (void)max_ids;
    *n_ids = 0;
    *truncated = false;
    if (err && err_cap)
        snprintf(err, err_cap, "tokenizer_encode: not implemented yet");
    return -1;
}

const char *tokenizer_kind_name(tokenizer_kind kind)
{
    switch (kind) {
    case TOKENIZER_WORD:
        return "word";
    case TOKENIZER_WORDPIECE:
        return "wordpiece";
    }
    return "unknown";
}

int tokenizer_kind_parse(const char *name, tokenizer_kind *out)
{
    assert(name != NULL && out != NULL);
    if (strcmp(name, "word") == 0) {
        *out = TOKENIZER_WORD;
        return 0;
    }
    if (strcmp(name, "wordpiece") == 0) {
        *out = TOKENIZER_WORDPIECE;
        return 0;
    }
    return -1;
}
