/* cli_batch: collects token-id sequences for the CLI and encodes them
 * through model_encode_ids a batch at a time (up to max_seqs sequences and
 * max_tokens tokens), with one workspace sized once. */
#ifndef FF_CLI_BATCH_H
#define FF_CLI_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "model.h"

typedef struct {
    const model *m;
    fastformer_workspace *ws;
    int max_seqs;   /* sequences per batch */
    int max_tokens; /* tokens per batch (>= model_max_tokens) */
    int n_seqs;     /* sequences collected so far */
    int n_tokens;
    int32_t *ids;         /* (max_seqs, model_max_tokens) */
    int32_t *n_ids;       /* (max_seqs) */
    const int32_t **rows; /* (max_seqs) pointers into ids */
    float *pooled;        /* (max_seqs, D) */
} cli_batch;

/* Sizes a batcher of `m` (borrowed). Returns -1 when out of memory. Free
 * with cli_batch_free. max_tokens below model_max_tokens is raised to it. */
FF_MUST_CHECK int cli_batch_init(cli_batch *b, const model *m, int max_seqs, int max_tokens);
void cli_batch_free(cli_batch *b);

/* Room for the next sequence's ids (model_max_tokens of them). Only valid
 * while !cli_batch_full(b). */
int32_t *cli_batch_slot(cli_batch *b);
/* Adds the slot's first n_ids ids as the next sequence. */
void cli_batch_push(cli_batch *b, int32_t n_ids);
/* True when another sequence of the model's maximum length might not fit. */
bool cli_batch_full(const cli_batch *b);
/* Encodes the collected sequences; returns their pooled vectors (n_seqs, D),
 * valid until the next push. Then the batch is empty again. */
const float *cli_batch_run(cli_batch *b, int *n_seqs);

#endif
