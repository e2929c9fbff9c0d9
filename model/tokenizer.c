/* tokenizer: the public API. Checks the UTF-8 once, up front, then hands the
 * text to the word or wordpiece pipeline (tokenizer_word.c,
 * tokenizer_wordpiece.c), which trust it. */
#include "tokenizer.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "error_message.h"
#include "tokenizer_impl.h"
#include "utf8.h"

int tokenizer_new(tokenizer_kind kind, bool lowercase, const vocab *v, tokenizer **out, char *err,
                  size_t err_cap)
{
    assert(v != NULL && out != NULL);
    assert(kind == TOKENIZER_WORD || kind == TOKENIZER_WORDPIECE);
    *out = NULL;
    int32_t unk = vocab_lookup(v, "[UNK]", 5);
    if (unk < 0) {
        error_message_set(err, err_cap, "vocab has no \"[UNK]\" token");
        return -1;
    }
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        error_message_set(err, err_cap, "tokenizer: out of memory");
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
    assert(text != NULL || text_bytes == 0);
    assert(ids != NULL || max_ids == 0);
    *n_ids = 0;
    *truncated = false;
    size_t bad;
    if (utf8_validate(text, text_bytes, &bad) != 0) {
        error_message_set(err, err_cap, "invalid UTF-8 at byte %zu", bad);
        return -1;
    }
    tokenizer_sink sink = {.ids = ids, .max_ids = max_ids};
    const unsigned char *s = (const unsigned char *)text;
    switch (t->kind) {
    case TOKENIZER_WORD:
        tokenizer_word_encode(t, s, text_bytes, &sink);
        break;
    case TOKENIZER_WORDPIECE:
        tokenizer_wordpiece_encode(t, s, text_bytes, &sink);
        break;
    }
    *n_ids = sink.n_ids;
    *truncated = sink.truncated;
    return 0;
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
