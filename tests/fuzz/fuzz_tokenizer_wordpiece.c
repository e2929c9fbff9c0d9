/* fuzz_tokenizer_wordpiece: the BERT `wordpiece` tokenizer with the real
 * bert-base-uncased vocabulary (tests/fixtures/tokenizer/) on arbitrary
 * bytes; see fuzz_tokenizer.h for what is checked. */
#include "fuzz_tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tok_init(TOKENIZER_WORDPIECE, "tokenizer/bert-base-uncased-vocab.txt");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_tok_run(data, size);
}
