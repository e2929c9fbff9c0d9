/* fuzz_tokenizer_word: the `word` tokenizer (tests/fixtures/tokenizer/word-vocab.txt)
 * on arbitrary bytes; see fuzz_tokenizer.h for what is checked. */
#include "fuzz_tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tok_init(TOKENIZER_WORD, "tokenizer/word-vocab.txt");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_tok_run(data, size);
}
