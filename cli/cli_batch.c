/* cli_batch: fixed buffers for batch-at-a-time encoding in the CLI. */
#include "cli_batch.h"

#include <assert.h>
#include <stdlib.h>

int cli_batch_init(cli_batch *b, const model *m, int max_seqs, int max_tokens)
{
    assert(b != NULL && m != NULL && max_seqs > 0);
    *b = (cli_batch){.m = m, .max_seqs = max_seqs};
    int per_seq = model_max_tokens(m);
    b->max_tokens = max_tokens < per_seq ? per_seq : max_tokens;
    size_t D = (size_t)m->config.encoder.hidden_size;
    b->ws = model_workspace_new(m, b->max_tokens, max_seqs);
    b->ids = calloc((size_t)max_seqs * (size_t)per_seq, sizeof *b->ids);
    b->n_ids = calloc((size_t)max_seqs, sizeof *b->n_ids);
    b->rows = calloc((size_t)max_seqs, sizeof *b->rows);
    b->pooled = calloc((size_t)max_seqs * D, sizeof *b->pooled);
    if (!b->ws || !b->ids || !b->n_ids || !b->rows || !b->pooled) {
        cli_batch_free(b);
        return -1;
    }
    for (int s = 0; s < max_seqs; s++)
        b->rows[s] = b->ids + (size_t)s * (size_t)per_seq;
    return 0;
}

void cli_batch_free(cli_batch *b)
{
    if (!b)
        return;
    if (b->ws)
        fastformer_workspace_free(b->ws);
    free(b->ids);
    free(b->n_ids);
    free(b->rows);
    free(b->pooled);
    *b = (cli_batch){0};
}

int32_t *cli_batch_slot(cli_batch *b)
{
    assert(!cli_batch_full(b));
    return b->ids + (size_t)b->n_seqs * (size_t)model_max_tokens(b->m);
}

void cli_batch_push(cli_batch *b, int32_t n_ids)
{
    assert(!cli_batch_full(b) && n_ids >= 0 && n_ids <= model_max_tokens(b->m));
    b->n_ids[b->n_seqs++] = n_ids;
    b->n_tokens += n_ids;
}

bool cli_batch_full(const cli_batch *b)
{
    return b->n_seqs == b->max_seqs || b->n_tokens + model_max_tokens(b->m) > b->max_tokens;
}

const float *cli_batch_run(cli_batch *b, int *n_seqs)
{
    *n_seqs = b->n_seqs;
    if (b->n_seqs > 0)
        model_encode_ids(b->m, b->ws, b->rows, b->n_ids, b->n_seqs, b->pooled);
    b->n_seqs = 0;
    b->n_tokens = 0;
    return b->pooled;
}
