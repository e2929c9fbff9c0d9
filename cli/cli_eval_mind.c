/* cli_eval_mind: `fastformer-cli eval-mind`: a news recommender (or a
 * popularity / random baseline) scored on MIND files the way the MIND
 * benchmark scores it: per impression AUC, MRR, nDCG@5 and nDCG@10, then the
 * mean over impressions.
 *
 * Every news title is encoded once, in batches. A user's vector comes from
 * the history ids found in news.tsv (the others are skipped and counted),
 * keeping the last max_history of them; candidates missing from news.tsv are
 * dropped and counted (the same for every scorer, so numbers compare). An
 * impression left without a clicked or an unclicked candidate has undefined
 * metrics; it is counted and left out of the means. */
#include <assert.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cli_batch.h"
#include "mapped_file.h"
#include "mind.h"
#include "ranking_metrics.h"

#define NEWS_BATCH 32
#define NEWS_BATCH_TOKENS 4096
#define USER_BATCH 64

static const char eval_mind_usage[] =
    "usage: fastformer-cli eval-mind --model DIR --news FILE --behaviors FILE [--json]\n"
    "       fastformer-cli eval-mind --baseline popularity --train-behaviors FILE\n"
    "                                --news FILE --behaviors FILE [--json]\n"
    "       fastformer-cli eval-mind --baseline random [--seed N] --news FILE --behaviors FILE\n"
    "\n"
    "Scores every impression of behaviors.tsv and prints the MIND benchmark's metrics\n"
    "(AUC, MRR, nDCG@5, nDCG@10: per impression, then averaged) with counts.\n"
    "The model's score is dot(user vector, news vector): titles are encoded once by the\n"
    "news encoder, a user by the user encoder over the history news found in news.tsv.\n"
    "History and candidate ids missing from news.tsv are skipped and counted.\n"
    "\n"
    "options:\n"
    "  --model DIR              news recommendation model directory (not with --baseline)\n"
    "  --news FILE              MIND news.tsv\n"
    "  --behaviors FILE         MIND behaviors.tsv to evaluate\n"
    "  --baseline NAME          score without a model: 'popularity' (clicks of the candidate\n"
    "                           in --train-behaviors: history entries plus clicked\n"
    "                           impressions) or 'random' (uniform, fixed seed)\n"
    "  --train-behaviors FILE   behaviors.tsv to count popularity on\n"
    "  --seed N                 seed of the random baseline (default 42)\n"
    "  --json                   print one JSON object\n"
    "  --help                   this text\n";

typedef enum { SCORER_MODEL, SCORER_POPULARITY, SCORER_RANDOM } scorer_kind;

typedef struct {
    const char *model_dir, *news_path, *behaviors_path, *train_path;
    scorer_kind scorer;
    uint64_t seed;
    bool as_json;
} eval_mind_args;

typedef struct {
    const eval_mind_args *args;
    const mind_news_table *news;
    const mind_behaviors *behaviors;
    const model *m;     /* SCORER_MODEL only */
    float *news_vecs;   /* (n_news, D), SCORER_MODEL only */
    double *popularity; /* (n_news), SCORER_POPULARITY only */
    uint64_t rng;       /* SCORER_RANDOM state */
    size_t n_history_ids, n_history_skipped;
    size_t n_candidates, n_candidates_skipped;
    size_t n_undefined;
    ranking_mean mean;
} eval_mind_state;

/* ---- inputs ---------------------------------------------------------------- */

static int load_news(const char *path, mind_news_table **out)
{
    mapped_file f;
    char err[512];
    if (mapped_file_open(path, &f, err, sizeof err) != 0) {
        cli_error("eval-mind", "%s", err);
        return -1;
    }
    int rc = mind_news_parse(f.data, f.n_bytes, path, out, err, sizeof err);
    mapped_file_close(&f);
    if (rc != 0)
        cli_error("eval-mind", "%s", err);
    return rc;
}

static int load_behaviors(const char *path, mind_behaviors **out)
{
    mapped_file f;
    char err[512];
    if (mapped_file_open(path, &f, err, sizeof err) != 0) {
        cli_error("eval-mind", "%s", err);
        return -1;
    }
    int rc = mind_behaviors_parse(f.data, f.n_bytes, path, out, err, sizeof err);
    mapped_file_close(&f);
    if (rc != 0)
        cli_error("eval-mind", "%s", err);
    return rc;
}

/* Encodes every title once into st->news_vecs. */
static int encode_news(eval_mind_state *st)
{
    const model *m = st->m;
    size_t n = st->news->n_news, D = (size_t)m->config.encoder.hidden_size;
    st->news_vecs = calloc(n ? n * D : 1, sizeof *st->news_vecs);
    cli_batch batch;
    if (!st->news_vecs || cli_batch_init(&batch, m, NEWS_BATCH, NEWS_BATCH_TOKENS) != 0) {
        cli_error("eval-mind", "out of memory for %zu news vectors", n);
        return -1;
    }
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        const mind_news *item = &st->news->news[i];
        size_t n_ids = 0;
        bool truncated;
        char err[256];
        if (model_tokenize(m, item->title, item->title_bytes, cli_batch_slot(&batch), &n_ids,
                           &truncated, err, sizeof err) != 0) {
            cli_error("eval-mind", "%s:%zu: title: %s", st->args->news_path, item->line, err);
            cli_batch_free(&batch);
            return -1;
        }
        cli_batch_push(&batch, (int32_t)n_ids);
        if (cli_batch_full(&batch) || i + 1 == n) {
            int n_seqs = 0;
            const float *pooled = cli_batch_run(&batch, &n_seqs);
            memcpy(st->news_vecs + done * D, pooled, (size_t)n_seqs * D * sizeof *pooled);
            done += (size_t)n_seqs;
        }
    }
    cli_batch_free(&batch);
    return 0;
}

/* Clicks per news of news.tsv in the training behaviors: history entries
 * plus clicked impressions. */
static int count_popularity(eval_mind_state *st, const mind_behaviors *train)
{
    st->popularity = calloc(st->news->n_news + 1, sizeof *st->popularity);
    if (!st->popularity) {
        cli_error("eval-mind", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < train->n_history_ids; i++) {
        const char *id = train->history_ids[i];
        ptrdiff_t k = mind_news_find(st->news, id, strlen(id));
        if (k >= 0)
            st->popularity[k] += 1.0;
    }
    for (size_t i = 0; i < train->n_candidates; i++) {
        const char *id = train->candidate_ids[i];
        ptrdiff_t k = train->labels[i] ? mind_news_find(st->news, id, strlen(id)) : -1;
        if (k >= 0)
            st->popularity[k] += 1.0;
    }
    return 0;
}

/* splitmix64: a fixed, portable sequence for the random baseline. */
static double next_uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

/* ---- scoring ------------------------------------------------------------------ */

/* Scratch for one impression and one batch of users, sized once. */
typedef struct {
    int32_t *cand_news; /* (max candidates) news index of each kept candidate */
    uint8_t *labels;    /* (max candidates) */
    double *scores;     /* (max candidates) */
    size_t *order;      /* (max candidates) */
    fastformer_workspace *ws;
    int max_history;
    float *hist_vecs;    /* (USER_BATCH * max_history, D) */
    int32_t *hist_start; /* (USER_BATCH + 1) */
    float *user_vecs;    /* (USER_BATCH, D) */
} eval_mind_scratch;

static void scratch_free(eval_mind_scratch *s)
{
    free(s->cand_news);
    free(s->labels);
    free(s->scores);
    free(s->order);
    if (s->ws)
        fastformer_workspace_free(s->ws);
    free(s->hist_vecs);
    free(s->hist_start);
    free(s->user_vecs);
}

static int scratch_init(eval_mind_scratch *s, const eval_mind_state *st)
{
    *s = (eval_mind_scratch){0};
    size_t max_cand = 1;
    for (size_t i = 0; i < st->behaviors->n_impressions; i++)
        if (st->behaviors->impressions[i].n_candidates > max_cand)
            max_cand = st->behaviors->impressions[i].n_candidates;
    s->cand_news = calloc(max_cand, sizeof *s->cand_news);
    s->labels = calloc(max_cand, sizeof *s->labels);
    s->scores = calloc(max_cand, sizeof *s->scores);
    s->order = calloc(max_cand, sizeof *s->order);
    bool ok = s->cand_news && s->labels && s->scores && s->order;
    if (ok && st->m) {
        size_t D = (size_t)st->m->config.encoder.hidden_size;
        s->max_history = st->m->config.user_encoder.max_position_embeddings;
        size_t rows = (size_t)USER_BATCH * (size_t)s->max_history;
        s->ws = model_workspace_new(st->m, (int)rows, USER_BATCH);
        s->hist_vecs = calloc(rows * D, sizeof *s->hist_vecs);
        s->hist_start = calloc(USER_BATCH + 1, sizeof *s->hist_start);
        s->user_vecs = calloc(USER_BATCH * D, sizeof *s->user_vecs);
        ok = s->ws && s->hist_vecs && s->hist_start && s->user_vecs;
    }
    if (!ok) {
        cli_error("eval-mind", "out of memory sizing the scoring buffers");
        scratch_free(s);
        return -1;
    }
    return 0;
}

/* Appends impression `imp`'s history vectors (found ids, last max_history)
 * to the batch as user u. */
static void gather_history(eval_mind_state *st, eval_mind_scratch *s, const mind_impression *imp,
                           int u)
{
    size_t D = (size_t)st->m->config.encoder.hidden_size;
    const mind_behaviors *b = st->behaviors;
    int32_t row = s->hist_start[u];
    /* Walk backwards so the most recent found items are the ones kept. */
    int32_t kept = 0;
    for (size_t h = imp->n_history; h-- > 0;) {
        const char *id = b->history_ids[imp->history_start + h];
        ptrdiff_t k = mind_news_find(st->news, id, strlen(id));
        if (k < 0) {
            st->n_history_skipped++;
            continue;
        }
        if (kept < s->max_history) {
            /* filled from the end of this user's slot range, then moved */
            kept++;
            memcpy(s->hist_vecs + ((size_t)row + (size_t)s->max_history - (size_t)kept) * D,
                   st->news_vecs + (size_t)k * D, D * sizeof(float));
        }
    }
    st->n_history_ids += imp->n_history;
    if (kept < s->max_history && kept > 0)
        memmove(s->hist_vecs + (size_t)row * D,
                s->hist_vecs + ((size_t)row + (size_t)s->max_history - (size_t)kept) * D,
                (size_t)kept * D * sizeof(float));
    s->hist_start[u + 1] = row + kept;
}

/* Counts a baseline's history ids (found or skipped) as gather_history
 * does, so that every scorer reports the same counts. */
static void count_history(eval_mind_state *st, const mind_impression *imp)
{
    for (size_t h = 0; h < imp->n_history; h++) {
        const char *id = st->behaviors->history_ids[imp->history_start + h];
        st->n_history_skipped += mind_news_find(st->news, id, strlen(id)) < 0;
    }
    st->n_history_ids += imp->n_history;
}

/* Scores impression `imp` (model m and user vector `user`, both NULL for the
 * baselines) and adds its metrics. */
static void score_impression(eval_mind_state *st, eval_mind_scratch *s, const mind_impression *imp,
                             const model *m, const float *user)
{
    const mind_behaviors *b = st->behaviors;
    size_t n = 0;
    for (size_t c = 0; c < imp->n_candidates; c++) {
        const char *id = b->candidate_ids[imp->candidate_start + c];
        ptrdiff_t k = mind_news_find(st->news, id, strlen(id));
        st->n_candidates++;
        if (k < 0) {
            st->n_candidates_skipped++;
            continue;
        }
        s->cand_news[n] = (int32_t)k;
        s->labels[n] = b->labels[imp->candidate_start + c];
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        switch (st->args->scorer) {
        case SCORER_MODEL: {
            assert(m != NULL);
            size_t D = (size_t)m->config.encoder.hidden_size;
            float score;
            model_score(m, user, st->news_vecs + (size_t)s->cand_news[i] * D, 1, &score);
            s->scores[i] = score;
            break;
        }
        case SCORER_POPULARITY:
            s->scores[i] = st->popularity[s->cand_news[i]];
            break;
        case SCORER_RANDOM:
            s->scores[i] = next_uniform(&st->rng);
            break;
        }
    }
    ranking_scores r;
    if (ranking_impression(s->scores, s->labels, n, s->order, &r, NULL, 0) != 0) {
        st->n_undefined++;
        return;
    }
    ranking_mean_add(&st->mean, &r);
}

static int score_all(eval_mind_state *st)
{
    eval_mind_scratch s;
    if (scratch_init(&s, st) != 0)
        return -1;
    const mind_behaviors *b = st->behaviors;
    /* A local, not st->m: the calls below take the address of st's fields. */
    const model *m = st->m;
    size_t D = m ? (size_t)m->config.encoder.hidden_size : 0;
    for (size_t first = 0; first < b->n_impressions; first += USER_BATCH) {
        size_t n_users = b->n_impressions - first;
        n_users = n_users > USER_BATCH ? USER_BATCH : n_users;
        if (m) {
            s.hist_start[0] = 0;
            for (size_t u = 0; u < n_users; u++) {
                s.hist_start[u + 1] = s.hist_start[u]; /* gather_history appends */
                gather_history(st, &s, &b->impressions[first + u], (int)u);
            }
            model_encode_users(m, s.ws, s.hist_vecs, s.hist_start, (int)n_users, s.user_vecs);
        } else {
            for (size_t u = 0; u < n_users; u++)
                count_history(st, &b->impressions[first + u]);
        }
        for (size_t u = 0; u < n_users; u++)
            score_impression(st, &s, &b->impressions[first + u], m, m ? s.user_vecs + u * D : NULL);
    }
    scratch_free(&s);
    return 0;
}

/* ---- report -------------------------------------------------------------------- */

static const char *scorer_name(scorer_kind k)
{
    return k == SCORER_MODEL ? "model" : k == SCORER_POPULARITY ? "popularity" : "random";
}

static void report(const eval_mind_state *st)
{
    ranking_scores r = ranking_mean_result(&st->mean);
    const eval_mind_args *a = st->args;
    size_t n_imp = st->behaviors->n_impressions;
    if (a->as_json) {
        json_t *out =
            json_pack("{s:s, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "scorer",
                      scorer_name(a->scorer), "auc", r.auc, "mrr", r.mrr, "ndcg5", r.ndcg5,
                      "ndcg10", r.ndcg10, "impressions", (json_int_t)n_imp, "evaluated",
                      (json_int_t)st->mean.n_impressions, "undefined", (json_int_t)st->n_undefined,
                      "history_ids", (json_int_t)st->n_history_ids, "history_skipped",
                      (json_int_t)st->n_history_skipped, "candidates", (json_int_t)st->n_candidates,
                      "candidates_skipped", (json_int_t)st->n_candidates_skipped);
        char *s = json_dumps(out, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        if (s)
            puts(s);
        free(s);
        json_decref(out);
        return;
    }
    if (a->scorer == SCORER_MODEL)
        printf("scorer: model %s\n", a->model_dir);
    else if (a->scorer == SCORER_POPULARITY)
        printf("scorer: popularity baseline (clicks in %s)\n", a->train_path);
    else
        printf("scorer: random baseline (seed %llu)\n", (unsigned long long)a->seed);
    printf("impressions: %zu (evaluated %zu, undefined %zu: no clicked or no unclicked "
           "candidate left)\n",
           n_imp, st->mean.n_impressions, st->n_undefined);
    printf("history ids skipped (not in news.tsv): %zu of %zu\n", st->n_history_skipped,
           st->n_history_ids);
    printf("candidates skipped (not in news.tsv): %zu of %zu\n", st->n_candidates_skipped,
           st->n_candidates);
    printf("AUC:     %.4f\nMRR:     %.4f\nnDCG@5:  %.4f\nnDCG@10: %.4f\n", r.auc, r.mrr, r.ndcg5,
           r.ndcg10);
}

/* ---- command ------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, eval_mind_args *a)
{
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},
        {"news", required_argument, NULL, 'n'},
        {"behaviors", required_argument, NULL, 'b'},
        {"baseline", required_argument, NULL, 'B'},
        {"train-behaviors", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *a = (eval_mind_args){.scorer = SCORER_MODEL, .seed = 42};
    const char *seed = NULL;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:m:n:b:B:t:s:jh", options, NULL)) != -1) {
        switch (c) {
        case 'm':
            a->model_dir = optarg;
            break;
        case 'n':
            a->news_path = optarg;
            break;
        case 'b':
            a->behaviors_path = optarg;
            break;
        case 'B':
            if (strcmp(optarg, "popularity") == 0) {
                a->scorer = SCORER_POPULARITY;
            } else if (strcmp(optarg, "random") == 0) {
                a->scorer = SCORER_RANDOM;
            } else {
                cli_error("eval-mind", "--baseline: expected 'popularity' or 'random', got '%s'",
                          optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 't':
            a->train_path = optarg;
            break;
        case 's':
            seed = optarg;
            break;
        case 'j':
            a->as_json = true;
            break;
        case 'h':
            fputs(eval_mind_usage, stdout);
            return -1;
        default:
            return cli_bad_option("eval-mind", c, argv);
        }
    }
    const char *problem = NULL;
    if (optind < argc) {
        cli_error("eval-mind", "unexpected argument '%s' (see eval-mind --help)", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!a->news_path)
        problem = "missing --news FILE";
    else if (!a->behaviors_path)
        problem = "missing --behaviors FILE";
    else if (a->scorer == SCORER_MODEL && !a->model_dir)
        problem = "missing --model DIR (or --baseline popularity|random)";
    else if (a->scorer != SCORER_MODEL && a->model_dir)
        problem = "--model and --baseline exclude each other";
    else if (a->scorer == SCORER_POPULARITY && !a->train_path)
        problem = "--baseline popularity needs --train-behaviors FILE";
    else if (a->scorer != SCORER_POPULARITY && a->train_path)
        problem = "--train-behaviors is only used by --baseline popularity";
    else if (seed && a->scorer != SCORER_RANDOM)
        problem = "--seed is only used by --baseline random";
    if (problem) {
        cli_error("eval-mind", "%s (see eval-mind --help)", problem);
        return CLI_EXIT_USAGE;
    }
    if (seed) {
        char *end = NULL;
        unsigned long long v = strtoull(seed, &end, 10);
        if (end == seed || *end != '\0' || seed[0] == '-') {
            cli_error("eval-mind", "--seed: expected a non-negative integer, got '%s'", seed);
            return CLI_EXIT_USAGE;
        }
        a->seed = v;
    }
    return 0;
}

static int eval_mind_run(eval_mind_state *st)
{
    const eval_mind_args *a = st->args;
    if (a->scorer == SCORER_MODEL && encode_news(st) != 0)
        return CLI_EXIT_FAILURE;
    if (a->scorer == SCORER_POPULARITY) {
        mind_behaviors *train = NULL;
        if (load_behaviors(a->train_path, &train) != 0)
            return CLI_EXIT_FAILURE;
        int rc = count_popularity(st, train);
        mind_behaviors_free(train);
        if (rc != 0)
            return CLI_EXIT_FAILURE;
    }
    st->rng = a->seed;
    if (score_all(st) != 0)
        return CLI_EXIT_FAILURE;
    report(st);
    if (st->mean.n_impressions == 0) {
        cli_error("eval-mind", "no impression could be evaluated");
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

int cli_eval_mind(int argc, char **argv)
{
    eval_mind_args args;
    int rc = parse_args(argc, argv, &args);
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc; /* -1: --help printed */

    eval_mind_state st = {.args = &args};
    model *m = NULL;
    mind_news_table *news = NULL;
    mind_behaviors *behaviors = NULL;
    rc = CLI_EXIT_FAILURE;
    if (args.scorer == SCORER_MODEL) {
        if (cli_model_load("eval-mind", args.model_dir, &m) != 0)
            goto done;
        if (!model_has_user_encoder(m)) {
            cli_error("eval-mind", "%s is a %s model; eval-mind needs a news recommendation model",
                      args.model_dir, model_task_name(m->config.task));
            goto done;
        }
    }
    if (load_news(args.news_path, &news) != 0 || load_behaviors(args.behaviors_path, &behaviors))
        goto done;
    st.m = m;
    st.news = news;
    st.behaviors = behaviors;
    rc = eval_mind_run(&st);
done:
    free(st.news_vecs);
    free(st.popularity);
    mind_behaviors_free(behaviors);
    mind_news_free(news);
    model_free(m);
    return rc;
}
