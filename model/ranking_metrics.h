/* ranking_metrics: AUC, MRR, nDCG@5 and nDCG@10 of one impression, exactly as
 * the MIND benchmark's evaluate.py computes them, and their mean over
 * impressions (the benchmark's reported numbers).
 *
 *   auc     = sklearn.metrics.roc_auc_score(y_true, y_score): the probability
 *             that a random positive outscores a random negative, a tie
 *             counting 1/2 (identical to sklearn's trapezoidal ROC area)
 *   mrr     = sum(y_true[order] / (rank)) / sum(y_true), rank = 1, 2, ...
 *   ndcg@k  = dcg@k(order) / dcg@k(ideal order), gains 2^y - 1, discounts
 *             log2(rank + 1), over the first k ranks
 * where order = np.argsort(y_score)[::-1]: scores descending, and among equal
 * scores the later candidate first (numpy's argsort is stable for the <= 16
 * elements of a typical impression; we are stable at every size). Labels are
 * binary (0/1), as in MIND. Pure functions; nothing is allocated. */
#ifndef FF_RANKING_METRICS_H
#define FF_RANKING_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

typedef struct {
    double auc;
    double mrr;
    double ndcg5;
    double ndcg10;
} ranking_scores;

/* Writes to order[0..n) the candidate indices by score ascending, ties by
 * index ascending (np.argsort(kind="stable")); NaN sorts above everything,
 * as in numpy. The MIND ranking order is this array read backwards. */
void ranking_order_ascending(const double *scores, size_t n, size_t *order);

/* The single metrics, given `order` from ranking_order_ascending. labels[i]
 * is 0 or 1 (asserted). They need at least one positive (and AUC one
 * negative too); the caller checks this, ranking_impression does. */
double ranking_auc(const double *scores, const uint8_t *labels, const size_t *order, size_t n);
double ranking_mrr(const uint8_t *labels, const size_t *order, size_t n);
double ranking_ndcg(const uint8_t *labels, const size_t *order, size_t n, size_t k);

/* All four metrics of one impression of n candidates. `order` is scratch
 * for n indices (caller-owned). Returns 0, or -1 when the metrics are
 * undefined for this impression (no positive, no negative, or a NaN score;
 * sklearn raises on the same inputs), with the reason in err. */
FF_MUST_CHECK int ranking_impression(const double *scores, const uint8_t *labels, size_t n,
                                     size_t *order, ranking_scores *out, char *err, size_t err_cap);

/* Running mean over impressions: zero-initialise, add, then read. */
typedef struct {
    ranking_scores sum;
    size_t n_impressions;
} ranking_mean;

void ranking_mean_add(ranking_mean *m, const ranking_scores *s);
/* The means; all zero when nothing was added. */
ranking_scores ranking_mean_result(const ranking_mean *m);

#endif
