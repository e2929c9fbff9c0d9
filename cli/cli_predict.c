/* cli_predict: `fastformer-cli predict`: JSON lines in, one JSON line out per
 * input, encoded a batch at a time. A bad line yields an error line and the
 * rest go on; the exit code is 1 if any line failed. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_batch.h"
#include "cli_input.h"
#include "jsonl.h"

#define PREDICT_BATCH 32
#define PREDICT_BATCH_TOKENS 4096
#define OUTPUT_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

static const char predict_usage[] =
    "usage: fastformer-cli predict --model DIR [--input FILE]\n"
    "\n"
    "Reads JSON lines from FILE (default stdin), each {\"text\": \"...\"} or\n"
    "{\"input_ids\": [ids]} (an optional \"id\" is echoed back), and writes one JSON\n"
    "line per input:\n"
    "  classifier:  {\"label\": \"...\", \"label_id\": k, \"probabilities\": [...], \"logits\": "
    "[...]}\n"
    "  recommender: {\"embedding\": [...]}  (the news encoder's pooled vector)\n"
    "Texts longer than the model's max_position_embeddings are truncated (\"truncated\": true).\n"
    "A bad line gives {\"line\": N, \"error\": \"...\"}; the others still run, and the exit\n"
    "code is then 1.\n"
    "\n"
    "options:\n"
    "  --model DIR    model directory (config.json, model.safetensors, vocab.txt)\n"
    "  --input FILE   JSON lines to read; '-' or absent: stdin\n"
    "  --help         this text\n";

/* One input line of the current batch: its result row, or its error. */
typedef struct {
    size_t line;
    json_t *id; /* the input's "id", new reference or NULL */
    bool truncated;
    int seq; /* row in the batch's output, or -1 for an error */
    char err[256];
} pending_line;

typedef struct {
    const model *m;
    cli_batch batch;
    pending_line pending[PREDICT_BATCH];
    int n_pending;
    float *logits; /* (PREDICT_BATCH, C) classifier only */
    float *probs;
    size_t n_lines, n_failed;
} predict_state;

static json_t *float_array(const float *x, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real((double)x[i]));
    return a;
}

static void print_json_line(json_t *obj)
{
    char *s = json_dumps(obj, OUTPUT_FLAGS);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    json_decref(obj);
}

static json_t *result_object(const predict_state *st, const pending_line *p, const float *pooled)
{
    const model *m = st->m;
    json_t *out = json_object();
    if (p->id)
        json_object_set(out, "id", p->id);
    if (model_has_classifier(m)) {
        int C = m->config.num_labels;
        const float *z = st->logits + (size_t)p->seq * C, *pr = st->probs + (size_t)p->seq * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (pr[c] > pr[best])
                best = c;
        json_object_set_new(out, "label", json_string(m->config.id2label[best]));
        json_object_set_new(out, "label_id", json_integer(best));
        json_object_set_new(out, "probabilities", float_array(pr, C));
        json_object_set_new(out, "logits", float_array(z, C));
    } else {
        int D = m->config.encoder.hidden_size;
        json_object_set_new(out, "embedding", float_array(pooled + (size_t)p->seq * D, D));
    }
    if (p->truncated)
        json_object_set_new(out, "truncated", json_true());
    return out;
}

/* Encodes the batch and prints every pending line in input order. */
static void predict_flush(predict_state *st)
{
    int n = 0;
    const float *pooled = cli_batch_run(&st->batch, &n);
    if (n > 0 && model_has_classifier(st->m))
        model_classify(st->m, pooled, n, st->logits, st->probs);
    for (int i = 0; i < st->n_pending; i++) {
        pending_line *p = &st->pending[i];
        if (p->seq >= 0) {
            print_json_line(result_object(st, p, pooled));
        } else {
            json_t *out = json_object();
            json_object_set_new(out, "line", json_integer((json_int_t)p->line));
            if (p->id)
                json_object_set(out, "id", p->id);
            json_object_set_new(out, "error", json_string(p->err));
            print_json_line(out);
        }
        json_decref(p->id);
    }
    st->n_pending = 0;
    fflush(stdout);
}

/* Queues one parsed line (or the error of an unparsable one). */
static void predict_add(predict_state *st, size_t line, json_t *value, const char *parse_err)
{
    pending_line *p = &st->pending[st->n_pending++];
    *p = (pending_line){.line = line, .seq = -1};
    st->n_lines++;
    if (parse_err) {
        snprintf(p->err, sizeof p->err, "%s", parse_err);
        st->n_failed++;
        return;
    }
    json_t *id = json_is_object(value) ? json_object_get(value, "id") : NULL;
    p->id = json_incref(id);
    int32_t n_ids = 0;
    if (cli_input_ids(st->m, value, cli_batch_slot(&st->batch), &n_ids, &p->truncated, p->err,
                      sizeof p->err) != 0) {
        st->n_failed++;
        return;
    }
    p->seq = st->batch.n_seqs;
    cli_batch_push(&st->batch, n_ids);
}

static int predict_run(predict_state *st, jsonl_reader *r)
{
    for (;;) {
        json_t *value = NULL;
        char err[256];
        jsonl_status s = jsonl_reader_next(r, &value, err, sizeof err);
        if (s == JSONL_EOF)
            break;
        if (s == JSONL_IO_ERROR) {
            predict_flush(st);
            cli_error("predict", "%s", err);
            return CLI_EXIT_FAILURE;
        }
        if (s == JSONL_BLANK)
            continue;
        predict_add(st, r->line, value, s == JSONL_BAD ? err : NULL);
        json_decref(value);
        if (st->n_pending == PREDICT_BATCH || cli_batch_full(&st->batch))
            predict_flush(st);
    }
    predict_flush(st);
    if (st->n_failed > 0) {
        cli_error("predict", "%zu of %zu input lines failed", st->n_failed, st->n_lines);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

int cli_predict(int argc, char **argv)
{
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},
        {"input", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_dir = NULL, *input = NULL;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:m:i:h", options, NULL)) != -1) {
        switch (c) {
        case 'm':
            model_dir = optarg;
            break;
        case 'i':
            input = optarg;
            break;
        case 'h':
            fputs(predict_usage, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("predict", c, argv);
        }
    }
    if (optind < argc) {
        cli_error("predict", "unexpected argument '%s' (see predict --help)", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!model_dir) {
        cli_error("predict", "missing --model DIR (see predict --help)");
        return CLI_EXIT_USAGE;
    }

    predict_state st = {0};
    jsonl_reader reader;
    char err[512];
    int rc = CLI_EXIT_FAILURE;
    model *m = NULL;
    if (cli_model_load("predict", model_dir, &m) != 0)
        return CLI_EXIT_FAILURE;
    st.m = m;
    if (jsonl_reader_open(&reader, input, err, sizeof err) != 0) {
        cli_error("predict", "%s", err);
        model_free(m);
        return CLI_EXIT_FAILURE;
    }
    size_t C = model_has_classifier(m) ? (size_t)m->config.num_labels : 0;
    st.logits = calloc(PREDICT_BATCH * C + 1, sizeof *st.logits);
    st.probs = calloc(PREDICT_BATCH * C + 1, sizeof *st.probs);
    if (!st.logits || !st.probs ||
        cli_batch_init(&st.batch, m, PREDICT_BATCH, PREDICT_BATCH_TOKENS) != 0) {
        cli_error("predict", "out of memory sizing a batch of %d", PREDICT_BATCH);
    } else {
        rc = predict_run(&st, &reader);
    }
    cli_batch_free(&st.batch);
    free(st.logits);
    free(st.probs);
    jsonl_reader_close(&reader);
    model_free(m);
    return rc;
}
