/* fuzz_tokenizer: the body shared by fuzz_tokenizer_word and
 * fuzz_tokenizer_wordpiece. The first input byte picks lowercase on/off and
 * the id limit; the rest is the text. Checks: every id is in the vocab; the
 * encoding with a limit is a prefix of the full one and `truncated` says
 * exactly whether ids were cut; a rejection names invalid UTF-8 and happens
 * for both limits alike. The text is an exact-size heap copy (not
 * NUL-terminated), so ASan sees any read past its end. */
#ifndef FF_FUZZ_TOKENIZER_H
#define FF_FUZZ_TOKENIZER_H

#include <string.h>

#include "fuzz_common.h"
#include "tokenizer.h"
#include "vocab.h"

#define FUZZ_TOK_MAX_IDS 8192

static vocab *fuzz_tok_vocab;
static tokenizer *fuzz_tok[2]; /* [lowercase] */
static int32_t fuzz_tok_full[FUZZ_TOK_MAX_IDS];
static int32_t fuzz_tok_cut[FUZZ_TOK_MAX_IDS];

static inline void fuzz_tok_init(tokenizer_kind kind, const char *vocab_fixture)
{
    size_t len;
    char *text = fuzz_fixture_read(vocab_fixture, &len);
    char err[256];
    if (vocab_parse(text, len, &fuzz_tok_vocab, err, sizeof err) != 0 ||
        tokenizer_new(kind, false, fuzz_tok_vocab, &fuzz_tok[0], err, sizeof err) != 0 ||
        tokenizer_new(kind, true, fuzz_tok_vocab, &fuzz_tok[1], err, sizeof err) != 0) {
        fprintf(stderr, "fuzz: %s: %s\n", vocab_fixture, err);
        exit(2);
    }
    free(text);
}

static inline int fuzz_tok_run(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const tokenizer *t = fuzz_tok[data[0] & 1];
    size_t limit = (size_t)(data[0] >> 1); /* 0..127 ids */
    size_t text_bytes = size - 1;
    char *text = malloc(text_bytes ? text_bytes : 1);
    FUZZ_CHECK(text, "out of memory");
    memcpy(text, data + 1, text_bytes);

    size_t n_full = 0, n_cut = 0;
    bool trunc_full = false, trunc_cut = false;
    char err_full[128] = "", err_cut[128] = "";
    int rc_full = tokenizer_encode(t, text, text_bytes, fuzz_tok_full, FUZZ_TOK_MAX_IDS, &n_full,
                                   &trunc_full, err_full, sizeof err_full);
    int rc_cut = tokenizer_encode(t, text, text_bytes, fuzz_tok_cut, limit, &n_cut, &trunc_cut,
                                  err_cut, sizeof err_cut);
    FUZZ_CHECK(rc_full == rc_cut, "limit %zu changed the result (%d vs %d)", limit, rc_full,
               rc_cut);
    if (rc_full != 0) {
        FUZZ_CHECK(rc_full == -1 && strstr(err_full, "UTF-8") && strcmp(err_full, err_cut) == 0,
                   "rejection: '%s' / '%s'", err_full, err_cut);
        free(text);
        return 0;
    }
    size_t vsize = vocab_size(fuzz_tok_vocab);
    FUZZ_CHECK(n_full <= FUZZ_TOK_MAX_IDS && n_cut <= limit, "n_ids over the limit");
    for (size_t i = 0; i < n_full; i++)
        FUZZ_CHECK(fuzz_tok_full[i] >= 0 && (size_t)fuzz_tok_full[i] < vsize, "id %d",
                   (int)fuzz_tok_full[i]);
    if (!trunc_full) {
        size_t expect = n_full < limit ? n_full : limit;
        FUZZ_CHECK(n_cut == expect, "%zu ids with limit %zu, %zu without", n_cut, limit, n_full);
        FUZZ_CHECK(trunc_cut == (n_full > limit), "truncated flag %d with %zu of %zu ids",
                   (int)trunc_cut, n_cut, n_full);
    } else {
        FUZZ_CHECK(n_full == FUZZ_TOK_MAX_IDS && n_cut == limit && trunc_cut,
                   "truncation of a long text");
    }
    FUZZ_CHECK(memcmp(fuzz_tok_cut, fuzz_tok_full, n_cut * sizeof(int32_t)) == 0,
               "the limited encoding is not a prefix of the full one");
    free(text);
    return 0;
}

#endif
