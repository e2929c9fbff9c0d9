/* cli_eval: `fastformer-cli eval`: a classifier's accuracy, macro-F1 and
 * per-class precision/recall/F1 on labelled JSON lines. The metrics follow
 * sklearn: a class with no predictions (or no examples) has precision (or
 * recall) 0, and macro-F1 averages over the classes present in the labels or
 * the predictions. Any bad line stops the evaluation (exit 1). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_batch.h"
#include "cli_input.h"
#include "jsonl.h"
#include "value_kind.h"

#define EVAL_BATCH 32
#define EVAL_BATCH_TOKENS 4096

static const char eval_usage[] =
    "usage: fastformer-cli eval --model DIR --data FILE.jsonl [--json]\n"
    "\n"
    "Evaluates a classifier on JSON lines {\"text\": \"...\", \"label\": L} (or\n"
    "{\"input_ids\": [...], \"label\": L}), where L is a label id or a label name from\n"
    "the model's id2label. Prints the count, accuracy, macro-F1 and per-class\n"
    "precision, recall and F1 (as sklearn computes them).\n"
    "\n"
    "options:\n"
    "  --model DIR   classifier model directory\n"
    "  --data FILE   labelled JSON lines ('-': stdin)\n"
    "  --json        print one JSON object instead of the table\n"
    "  --help        this text\n";

typedef struct {
    const model *m;
    cli_batch batch;
    int batch_labels[EVAL_BATCH]; /* true label of each queued sequence */
    size_t *confusion;            /* (C, C): [true][predicted] */
    float *probs;                 /* (EVAL_BATCH, C) */
    size_t n_examples;
} eval_state;

/* Resolves the "label" of one example into [0, C). */
static int eval_label(const model *m, const json_t *obj, int *out, char *err, size_t err_cap)
{
    const json_t *label = json_is_object(obj) ? json_object_get(obj, "label") : NULL;
    int C = m->config.num_labels;
    if (!label) {
        snprintf(err, err_cap, "missing \"label\"");
        return -1;
    }
    if (json_is_integer(label)) {
        json_int_t v = json_integer_value(label);
        if (v < 0 || v >= C) {
            snprintf(err, err_cap, "label %lld is out of range: the model has labels 0..%d",
                     (long long)v, C - 1);
            return -1;
        }
        *out = (int)v;
        return 0;
    }
    if (json_is_string(label)) {
        for (int c = 0; c < C; c++) {
            if (strcmp(json_string_value(label), m->config.id2label[c]) == 0) {
                *out = c;
                return 0;
            }
        }
        int n = snprintf(err, err_cap, "label '%s' is not one of the model's labels (",
                         json_string_value(label));
        for (int c = 0; c < C && n >= 0 && (size_t)n < err_cap; c++)
            n += snprintf(err + n, err_cap - (size_t)n, "%s%s", c ? ", " : "",
                          m->config.id2label[c]);
        if (n >= 0 && (size_t)n < err_cap)
            snprintf(err + n, err_cap - (size_t)n, ")");
        return -1;
    }
    snprintf(err, err_cap, "label: expected an integer id or a label name, got %s",
             value_kind_name(label));
    return -1;
}

static void eval_flush(eval_state *st)
{
    int n = 0;
    const float *pooled = cli_batch_run(&st->batch, &n);
    if (n == 0)
        return;
    int C = st->m->config.num_labels;
    model_classify(st->m, pooled, n, NULL, st->probs);
    for (int s = 0; s < n; s++) {
        const float *p = st->probs + (size_t)s * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (p[c] > p[best])
                best = c;
        st->confusion[(size_t)st->batch_labels[s] * C + best]++;
    }
}

static int eval_read(eval_state *st, jsonl_reader *r)
{
    for (;;) {
        json_t *value = NULL;
        char err[512];
        jsonl_status s = jsonl_reader_next(r, &value, err, sizeof err);
        if (s == JSONL_EOF)
            break;
        if (s == JSONL_BLANK)
            continue;
        if (s == JSONL_IO_ERROR) {
            cli_error("eval", "%s", err);
            return -1;
        }
        if (s == JSONL_BAD) {
            cli_error("eval", "%s:%zu: %s", r->name, r->line, err);
            return -1;
        }
        int32_t n_ids = 0;
        bool truncated;
        int label = 0;
        int rc = cli_input_ids(st->m, value, cli_batch_slot(&st->batch), &n_ids, &truncated, err,
                               sizeof err);
        if (rc == 0)
            rc = eval_label(st->m, value, &label, err, sizeof err);
        json_decref(value);
        if (rc != 0) {
            cli_error("eval", "%s:%zu: %s", r->name, r->line, err);
            return -1;
        }
        st->batch_labels[st->batch.n_seqs] = label;
        cli_batch_push(&st->batch, n_ids);
        st->n_examples++;
        if (cli_batch_full(&st->batch))
            eval_flush(st);
    }
    eval_flush(st);
    return 0;
}

typedef struct {
    double precision, recall, f1;
    size_t support, predicted;
} class_scores;

static int eval_report(const eval_state *st, bool as_json)
{
    const model *m = st->m;
    int C = m->config.num_labels;
    class_scores *cs = calloc((size_t)C, sizeof *cs);
    if (!cs) {
        cli_error("eval", "out of memory");
        return -1;
    }
    size_t correct = 0;
    double f1_sum = 0.0;
    int n_present = 0;
    for (int c = 0; c < C; c++) {
        size_t tp = st->confusion[(size_t)c * C + c];
        correct += tp;
        for (int k = 0; k < C; k++) {
            cs[c].support += st->confusion[(size_t)c * C + k];
            cs[c].predicted += st->confusion[(size_t)k * C + c];
        }
        cs[c].precision = cs[c].predicted ? (double)tp / (double)cs[c].predicted : 0.0;
        cs[c].recall = cs[c].support ? (double)tp / (double)cs[c].support : 0.0;
        double pr = cs[c].precision + cs[c].recall;
        cs[c].f1 = pr > 0.0 ? 2.0 * cs[c].precision * cs[c].recall / pr : 0.0;
        if (cs[c].support || cs[c].predicted) {
            f1_sum += cs[c].f1;
            n_present++;
        }
    }
    double accuracy = (double)correct / (double)st->n_examples;
    double macro_f1 = n_present ? f1_sum / n_present : 0.0;

    if (as_json) {
        json_t *classes = json_array();
        for (int c = 0; c < C; c++) {
            json_array_append_new(classes,
                                  json_pack("{s:s, s:i, s:f, s:f, s:f, s:I}", "label",
                                            m->config.id2label[c], "label_id", c, "precision",
                                            cs[c].precision, "recall", cs[c].recall, "f1", cs[c].f1,
                                            "support", (json_int_t)cs[c].support));
        }
        json_t *out = json_pack("{s:I, s:f, s:f, s:o}", "count", (json_int_t)st->n_examples,
                                "accuracy", accuracy, "macro_f1", macro_f1, "classes", classes);
        char *s = json_dumps(out, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        if (s)
            puts(s);
        free(s);
        json_decref(out);
    } else {
        int width = 5;
        for (int c = 0; c < C; c++) {
            int len = (int)strlen(m->config.id2label[c]);
            width = len > width ? len : width;
        }
        printf("examples: %zu\naccuracy: %.6f\nmacro-F1: %.6f\n\n", st->n_examples, accuracy,
               macro_f1);
        printf("%-*s  %9s  %9s  %9s  %7s\n", width, "label", "precision", "recall", "f1",
               "support");
        for (int c = 0; c < C; c++)
            printf("%-*s  %9.6f  %9.6f  %9.6f  %7zu\n", width, m->config.id2label[c],
                   cs[c].precision, cs[c].recall, cs[c].f1, cs[c].support);
    }
    free(cs);
    return 0;
}

int cli_eval(int argc, char **argv)
{
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},
        {"data", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_dir = NULL, *data = NULL;
    bool as_json = false;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:m:d:jh", options, NULL)) != -1) {
        switch (c) {
        case 'm':
            model_dir = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            fputs(eval_usage, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("eval", c, argv);
        }
    }
    if (optind < argc) {
        cli_error("eval", "unexpected argument '%s' (see eval --help)", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!model_dir || !data) {
        cli_error("eval", "missing %s (see eval --help)",
                  !model_dir ? "--model DIR" : "--data FILE");
        return CLI_EXIT_USAGE;
    }

    model *m = NULL;
    if (cli_model_load("eval", model_dir, &m) != 0)
        return CLI_EXIT_FAILURE;
    if (!model_has_classifier(m)) {
        cli_error("eval", "%s is a %s model; eval needs a classifier (see eval-mind)", model_dir,
                  model_task_name(m->config.task));
        model_free(m);
        return CLI_EXIT_FAILURE;
    }
    jsonl_reader reader;
    char err[512];
    if (jsonl_reader_open(&reader, data, err, sizeof err) != 0) {
        cli_error("eval", "%s", err);
        model_free(m);
        return CLI_EXIT_FAILURE;
    }
    int rc = CLI_EXIT_FAILURE;
    size_t C = (size_t)m->config.num_labels;
    eval_state st = {.m = m};
    st.confusion = calloc(C * C, sizeof *st.confusion);
    st.probs = calloc(EVAL_BATCH * C, sizeof *st.probs);
    if (!st.confusion || !st.probs || cli_batch_init(&st.batch, m, EVAL_BATCH, EVAL_BATCH_TOKENS)) {
        cli_error("eval", "out of memory sizing a batch of %d", EVAL_BATCH);
    } else if (eval_read(&st, &reader) == 0) {
        if (st.n_examples == 0) {
            cli_error("eval", "%s: no examples", reader.name);
        } else {
            rc = eval_report(&st, as_json) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
        }
    }
    cli_batch_free(&st.batch);
    free(st.confusion);
    free(st.probs);
    jsonl_reader_close(&reader);
    model_free(m);
    return rc;
}
