/* fuzz_vocab: vocab_parse (vocab.txt) on arbitrary bytes. On success the
 * table must agree with an independent split of the input into lines (LF
 * ends a line, one CR before it is dropped, a final line without LF counts):
 * one id per line, token(id) is the line's bytes, and looking a line up gives
 * the first id with the same bytes. The vocab must not borrow the input. */
#include <string.h>

#include "fuzz_common.h"
#include "vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf, "out of memory");
    memcpy(buf, data, size);
    vocab *v = NULL;
    char err[256] = "";
    if (vocab_parse(buf, size, &v, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != 0, "failure without a message");
        free(buf);
        return 0;
    }
    memset(buf, 'x', size); /* a borrowed buffer would now disagree */
    const char *s = (const char *)data;
    size_t n = vocab_size(v), id = 0, start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && s[i] != '\n')
            continue;
        if (i == size && start == size)
            break;
        size_t len = i - start;
        if (len > 0 && s[start + len - 1] == '\r')
            len--;
        FUZZ_CHECK(id < n, "more lines than the %zu tokens", n);
        const char *tok = vocab_token(v, (int32_t)id);
        FUZZ_CHECK(tok && memcmp(tok, s + start, len) == 0 && tok[len] == 0,
                   "token %zu differs from its line", id);
        int32_t first = vocab_lookup(v, s + start, len);
        FUZZ_CHECK(first >= 0 && (size_t)first <= id, "line %zu looks up as %d", id, (int)first);
        FUZZ_CHECK(memcmp(vocab_token(v, first), s + start, len) == 0 &&
                       vocab_token(v, first)[len] == 0,
                   "line %zu looks up as id %d with other text", id, (int)first);
        id++;
        start = i + 1;
    }
    FUZZ_CHECK(id == n, "%zu lines but %zu tokens", id, n);
    FUZZ_CHECK(vocab_token(v, -1) == NULL && vocab_token(v, (int32_t)n) == NULL,
               "an out-of-range id gave a token");
    vocab_free(v);
    free(buf);
    return 0;
}
