/* test_ranking_metrics: the MIND metrics against golden values computed by
 * numpy + sklearn (tools/make_ranking_fixtures.py ->
 * tests/fixtures/ranking_cases.json), plus the undefined cases. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ranking_metrics.h"

#define FIXTURE "tests/fixtures/ranking_cases.json"
#define TOL 1e-12

static json_t *load_fixture(void)
{
    json_error_t jerr;
    json_t *doc = json_load_file(FIXTURE, 0, &jerr);
    if (!doc)
        fail_msg("%s:%d: %s (run from the repository root)", FIXTURE, jerr.line, jerr.text);
    return doc;
}

static void assert_close(double got, double want, const char *what, const char *name)
{
    if (!(fabs(got - want) <= TOL))
        fail_msg("%s: %s = %.17g, expected %.17g", name, what, got, want);
}

/* Runs one fixture case; returns its metrics. */
static ranking_scores run_case(json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *js = json_object_get(c, "scores"), *jl = json_object_get(c, "labels");
    size_t n = json_array_size(js);
    assert_int_equal(n, json_array_size(jl));
    double *scores = malloc(n * sizeof *scores);
    uint8_t *labels = malloc(n);
    size_t *order = malloc(n * sizeof *order);
    assert_non_null(scores);
    assert_non_null(labels);
    assert_non_null(order);
    for (size_t i = 0; i < n; i++) {
        scores[i] = json_number_value(json_array_get(js, i));
        labels[i] = (uint8_t)json_integer_value(json_array_get(jl, i));
    }
    ranking_scores got;
    char err[128];
    assert_int_equal(ranking_impression(scores, labels, n, order, &got, err, sizeof err), 0);
    assert_close(got.auc, json_number_value(json_object_get(c, "auc")), "auc", name);
    assert_close(got.mrr, json_number_value(json_object_get(c, "mrr")), "mrr", name);
    assert_close(got.ndcg5, json_number_value(json_object_get(c, "ndcg5")), "ndcg5", name);
    assert_close(got.ndcg10, json_number_value(json_object_get(c, "ndcg10")), "ndcg10", name);
    free(scores);
    free(labels);
    free(order);
    return got;
}

static void test_golden_cases_and_mean(void **state)
{
    (void)state;
    json_t *doc = load_fixture();
    json_t *cases = json_object_get(doc, "cases");
    assert_true(json_array_size(cases) >= 20);
    ranking_mean mean = {0};
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        ranking_scores s = run_case(c);
        ranking_mean_add(&mean, &s);
    }
    assert_int_equal(mean.n_impressions, json_array_size(cases));
    ranking_scores m = ranking_mean_result(&mean);
    json_t *want = json_object_get(doc, "mean");
    assert_close(m.auc, json_number_value(json_object_get(want, "auc")), "auc", "mean");
    assert_close(m.mrr, json_number_value(json_object_get(want, "mrr")), "mrr", "mean");
    assert_close(m.ndcg5, json_number_value(json_object_get(want, "ndcg5")), "ndcg5", "mean");
    assert_close(m.ndcg10, json_number_value(json_object_get(want, "ndcg10")), "ndcg10", "mean");
    json_decref(doc);
}

/* evaluate.py's argsort(...)[::-1]: among equal scores the later index ranks first. */
static void test_order_ties_later_first(void **state)
{
    (void)state;
    double scores[] = {0.5, 0.25, 0.5, NAN, 0.25, 0.5};
    size_t order[6];
    ranking_order_ascending(scores, 6, order);
    size_t want[] = {1, 4, 0, 2, 5, 3};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(order[i], want[i]);

    /* The one positive ties with the other two at the top: it is index 0,
     * so it ranks third. */
    uint8_t labels[] = {1, 0, 0, 0, 0, 0};
    double tied[] = {1, 0, 1, 0, 0, 1};
    ranking_order_ascending(tied, 6, order);
    assert_true(fabs(ranking_mrr(labels, order, 6) - 1.0 / 3.0) < TOL);
    assert_true(fabs(ranking_auc(tied, labels, order, 6) - (3.0 + 2 * 0.5) / 5.0) < TOL);
}

static void test_undefined_impressions(void **state)
{
    (void)state;
    char err[128];
    size_t order[3];
    ranking_scores s;
    double scores[] = {0.1, 0.2, 0.3};
    uint8_t none[] = {0, 0, 0}, all[] = {1, 1, 1}, one[] = {0, 1, 0};

    assert_int_equal(ranking_impression(scores, none, 3, order, &s, err, sizeof err), -1);
    assert_string_equal(err, "no clicked candidate among 3 (metrics undefined)");
    assert_int_equal(ranking_impression(scores, all, 3, order, &s, err, sizeof err), -1);
    assert_string_equal(err, "all 3 candidates clicked (AUC undefined)");
    assert_int_equal(ranking_impression(scores, none, 0, NULL, &s, err, sizeof err), -1);

    double with_nan[] = {0.1, NAN, 0.3};
    assert_int_equal(ranking_impression(with_nan, one, 3, order, &s, err, sizeof err), -1);
    assert_string_equal(err, "candidate 1 has a NaN score");
    /* err may be NULL */
    assert_int_equal(ranking_impression(with_nan, one, 3, order, &s, NULL, 0), -1);
}

static void test_mean_of_nothing_is_zero(void **state)
{
    (void)state;
    ranking_mean m = {0};
    ranking_scores r = ranking_mean_result(&m);
    assert_true(r.auc == 0.0 && r.mrr == 0.0 && r.ndcg5 == 0.0 && r.ndcg10 == 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases_and_mean),
        cmocka_unit_test(test_order_ties_later_first),
        cmocka_unit_test(test_undefined_impressions),
        cmocka_unit_test(test_mean_of_nothing_is_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
