/* tokenizer: text -> token ids, by the official `word` pipeline or BERT's `wordpiece`.
 *
 * word:      lowercase (Unicode), split by the Python regex \w+|[^\w\s]+ with
 *            Unicode \w and \s, map each piece through the vocab (unknown -> [UNK]).
 * wordpiece: BERT uncased BasicTokenizer (clean text, lowercase, strip accents,
 *            split punctuation and CJK) then greedy longest-match WordPiece
 *            with "##" continuations; words over 100 chars -> [UNK]. No
 *            [CLS]/[SEP] are added (Hugging Face add_special_tokens=False).
 *
 * Decisions (tests/unit/test_tokenizer.c checks each against Python or
 * Hugging Face tokenizers; Unicode data comes from utf8proc):
 * - word is Python's str.lower() exactly: U+0130 becomes "i" + U+0307 (so
 *   "İstanbul" gives the pieces "i", U+0307, "stanbul"), and capital sigma
 *   becomes final sigma by Python's context rule. \w is L*, N* and '_'
 *   (combining marks are not \w); \s is str.isspace(). lowercase=false
 *   skips lowercasing. A piece longer than 1024 bytes of UTF-8 maps to [UNK]
 *   without a lookup (a vocab token that long never matches). Code points
 *   that Python's or utf8proc's Unicode version does not know may differ.
 * - wordpiece follows Hugging Face tokenizers (BertTokenizerFast) where it
 *   differs from Python's BertTokenizer: unassigned code points are kept, not
 *   dropped; CJK Extension E is padded from U+2B920; lowercasing is per code
 *   point (no final sigma) after NFD and dropping Mn. lowercase=false turns
 *   off both lowercasing and accent stripping (strip_accents follows
 *   lowercase). "[CLS]", "[SEP]" etc. in the text are plain text, never
 *   special ids. Hugging Face's category tables are Unicode 8.0, utf8proc's
 *   are newer: characters assigned since, and six whose category changed,
 *   may split differently.
 * - Truncation: the ids are the first max_ids ids of the full encoding (a
 *   wordpiece word may be cut between its pieces); *truncated is set when at
 *   least one more id would have followed.
 * - The whole text is validated before any id is produced; the offset in
 *   "invalid UTF-8 at byte N" is the start of the first invalid sequence. */
#ifndef FF_TOKENIZER_H
#define FF_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "vocab.h"

typedef enum {
    TOKENIZER_WORD,
    TOKENIZER_WORDPIECE,
} tokenizer_kind;

typedef struct tokenizer tokenizer;

/* Borrows `v`, which must outlive the tokenizer. Fails (-1) when the vocab
 * has no "[UNK]" token. */
FF_MUST_CHECK int tokenizer_new(tokenizer_kind kind, bool lowercase, const vocab *v,
                                tokenizer **out, char *err, size_t err_cap);
void tokenizer_free(tokenizer *t);

/* Encodes UTF-8 `text` of `text_bytes` bytes (need not be NUL-terminated;
 * embedded NULs are treated as control characters) into at most `max_ids`
 * ids. Sets *n_ids to the ids written and *truncated when more would have
 * followed. Returns 0, or -1 when the text is not valid UTF-8 (overlong forms
 * and surrogates included), with the byte offset of the first bad byte in
 * err. Allocates nothing; reentrant: any thread may call it concurrently. */
FF_MUST_CHECK int tokenizer_encode(const tokenizer *t, const char *text, size_t text_bytes,
                                   int32_t *ids, size_t max_ids, size_t *n_ids, bool *truncated,
                                   char *err, size_t err_cap);

/* "word" / "wordpiece" <-> kind; parse returns -1 for an unknown name. */
const char *tokenizer_kind_name(tokenizer_kind kind);
FF_MUST_CHECK int tokenizer_kind_parse(const char *name, tokenizer_kind *out);

#endif
