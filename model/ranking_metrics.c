/* ranking_metrics: the MIND benchmark's per-impression metrics. One stable
 * ascending sort serves all four: AUC walks it in tie groups (midrank
 * Mann-Whitney, which is what sklearn's trapezoidal ROC area equals), and the
 * ranking metrics read it backwards, as evaluate.py's argsort(...)[::-1]. */
#include "ranking_metrics.h"

#include "error_message.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Ascending by score with NaN above every number, then by index: a total
 * order, so qsort's instability cannot show. */
static int compare_index(const void *a, const void *b, void *ctx)
{
    const double *scores = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    double x = scores[i], y = scores[j];
    int x_nan = isnan(x), y_nan = isnan(y);
    if (x_nan != y_nan)
        return x_nan - y_nan;
    if (!x_nan && x != y)
        return x < y ? -1 : 1;
    return (i > j) - (i < j);
}

void ranking_order_ascending(const double *scores, size_t n, size_t *order)
{
    assert(n == 0 || (scores != NULL && order != NULL));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, compare_index, (void *)scores);
}

double ranking_auc(const double *scores, const uint8_t *labels, const size_t *order, size_t n)
{
    double pairs = 0.0; /* positive-negative pairs won, ties counting 1/2 */
    size_t neg_below = 0, n_pos = 0, n_neg = 0;
    for (size_t g = 0; g < n;) {
        size_t pos = 0, neg = 0, e = g;
        double s = scores[order[g]];
        do { /* a tie group; a NaN (never equal to itself) stands alone */
            assert(labels[order[e]] <= 1);
            pos += labels[order[e]];
            neg += !labels[order[e]];
            e++;
        } while (e < n && scores[order[e]] == s);
        pairs += (double)pos * (double)neg_below + 0.5 * (double)pos * (double)neg;
        neg_below += neg;
        n_pos += pos;
        n_neg += neg;
        g = e;
    }
    assert(n_pos > 0 && n_neg > 0);
    return pairs / ((double)n_pos * (double)n_neg);
}

double ranking_mrr(const uint8_t *labels, const size_t *order, size_t n)
{
    double rr = 0.0;
    size_t n_pos = 0;
    for (size_t r = 0; r < n; r++) {
        uint8_t y = labels[order[n - 1 - r]];
        assert(y <= 1);
        rr += y / (double)(r + 1);
        n_pos += y;
    }
    assert(n_pos > 0);
    return rr / (double)n_pos;
}

double ranking_ndcg(const uint8_t *labels, const size_t *order, size_t n, size_t k)
{
    size_t n_pos = 0;
    for (size_t i = 0; i < n; i++) {
        assert(labels[i] <= 1);
        n_pos += labels[i];
    }
    assert(n_pos > 0);
    double dcg = 0.0, ideal = 0.0;
    size_t top = n < k ? n : k;
    for (size_t r = 0; r < top; r++) {
        double discount = log2((double)r + 2.0);
        dcg += labels[order[n - 1 - r]] / discount; /* gain 2^y - 1 = y for binary y */
        if (r < n_pos)
            ideal += 1.0 / discount;
    }
    return dcg / ideal;
}

int ranking_impression(const double *scores, const uint8_t *labels, size_t n, size_t *order,
                       ranking_scores *out, char *err, size_t err_cap)
{
    assert(out != NULL && (n == 0 || (scores != NULL && labels != NULL && order != NULL)));
    size_t n_pos = 0;
    for (size_t i = 0; i < n; i++) {
        assert(labels[i] <= 1);
        if (isnan(scores[i])) {
            error_message_set(err, err_cap, "candidate %zu has a NaN score", i);
            return -1;
        }
        n_pos += labels[i];
    }
    if (n_pos == 0) {
        error_message_set(err, err_cap, "no clicked candidate among %zu (metrics undefined)", n);
        return -1;
    }
    if (n_pos == n) {
        error_message_set(err, err_cap, "all %zu candidates clicked (AUC undefined)", n);
        return -1;
    }
    ranking_order_ascending(scores, n, order);
    out->auc = ranking_auc(scores, labels, order, n);
    out->mrr = ranking_mrr(labels, order, n);
    out->ndcg5 = ranking_ndcg(labels, order, n, 5);
    out->ndcg10 = ranking_ndcg(labels, order, n, 10);
    return 0;
}

void ranking_mean_add(ranking_mean *m, const ranking_scores *s)
{
    assert(m != NULL && s != NULL);
    m->sum.auc += s->auc;
    m->sum.mrr += s->mrr;
    m->sum.ndcg5 += s->ndcg5;
    m->sum.ndcg10 += s->ndcg10;
    m->n_impressions++;
}

ranking_scores ranking_mean_result(const ranking_mean *m)
{
    assert(m != NULL);
    ranking_scores r = {0};
    if (m->n_impressions == 0)
        return r;
    double n = (double)m->n_impressions;
    r.auc = m->sum.auc / n;
    r.mrr = m->sum.mrr / n;
    r.ndcg5 = m->sum.ndcg5 / n;
    r.ndcg10 = m->sum.ndcg10 / n;
    return r;
}
