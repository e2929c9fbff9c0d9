/* tokenizer_impl: private to tokenizer*.c and their unit tests. The struct,
 * the bounded id sink that implements max_ids truncation, and the two
 * pipelines, which take text already checked by utf8_validate. */
#ifndef FF_TOKENIZER_IMPL_H
#define FF_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

struct tokenizer {
    tokenizer_kind kind;
    bool lowercase;
    const vocab *v; /* borrowed */
    int32_t unk_id;
};

/* Bytes of one `word` piece the word pipeline can hold; a longer piece maps
 * to [UNK] (no vocab token is that long). */
#define TOKENIZER_WORD_PIECE_BYTES 1024
/* BERT's max_input_chars_per_word: a longer word maps to one [UNK]. */
#define TOKENIZER_WORDPIECE_MAX_CHARS 100

/* Where the ids go: at most max_ids of them. */
typedef struct {
    int32_t *ids;
    size_t max_ids;
    size_t n_ids;
    bool truncated;
} tokenizer_sink;

/* Appends id; returns false (and sets truncated) when the sink is full, after
 * which the pipeline stops. */
static inline bool tokenizer_sink_push(tokenizer_sink *s, int32_t id)
{
    if (s->n_ids == s->max_ids) {
        s->truncated = true;
        return false;
    }
    s->ids[s->n_ids++] = id;
    return true;
}

/* The pipelines. `text` is valid UTF-8 (utf8_validate passed). */
void tokenizer_word_encode(const tokenizer *t, const unsigned char *text, size_t n,
                           tokenizer_sink *out);
void tokenizer_wordpiece_encode(const tokenizer *t, const unsigned char *text, size_t n,
                                tokenizer_sink *out);

/* Character classes of the word pipeline, exported for the unit tests:
 * Python 3 `re` \w (str.isalnum() or '_') and \s (str.isspace()). */
bool tokenizer_word_is_word(int32_t cp);
bool tokenizer_word_is_space(int32_t cp);
/* Python's str.lower() of the code point at text[i] (valid UTF-8 of n bytes):
 * writes 1 or 2 code points to out and returns how many. Context matters
 * only for U+03A3 (final sigma). */
size_t tokenizer_word_lower(const unsigned char *text, size_t n, size_t i, int32_t cp,
                            int32_t out[2]);

/* The FNV-1a hashes of the first (at most cap) pieces of text that are ASCII
 * only, lowercased when `lower`, in order; pieces with a byte >= 0x80 are
 * skipped. The word pipeline hints these to the vocabulary before it looks
 * its pieces up (vocab_prefetch); exported for the unit tests. */
size_t tokenizer_word_ascii_hashes(const unsigned char *text, size_t n, bool lower,
                                   uint64_t *hashes, size_t cap);

/* Character classes of the wordpiece pipeline (Hugging Face tokenizers'
 * BertNormalizer / BertPreTokenizer), exported for the unit tests. */
bool tokenizer_wordpiece_is_whitespace(int32_t cp);
bool tokenizer_wordpiece_is_control(int32_t cp);
bool tokenizer_wordpiece_is_punct(int32_t cp);
bool tokenizer_wordpiece_is_cjk(int32_t cp);

/* Longest output of tokenizer_wordpiece_normalize (no canonical
 * decomposition is longer than 4 code points). */
#define TOKENIZER_WORDPIECE_MAX_NORM 8
/* BertNormalizer on one code point: writes what it becomes to out and
 * returns the count (0 when clean_text drops it; a single ' ' for
 * whitespace). Sets *cjk when the result is to be padded with spaces. With
 * lowercase false, neither lowercases nor strips accents. */
size_t tokenizer_wordpiece_normalize(int32_t cp, bool lowercase,
                                     int32_t out[TOKENIZER_WORDPIECE_MAX_NORM], bool *cjk);

#endif
