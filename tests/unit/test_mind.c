/* test_mind: the news.tsv / behaviors.tsv parsers on real MIND rows
 * (../shared/data/mind-sample, beside the checkout; expected counts taken with
 * Python's str.split) and on malformed inputs, one per error path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mind.h"

#define SAMPLE_DIR "../shared/data/mind-sample"

/* Reads a whole file; fails the test when it cannot. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (tests run from the repository root)", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static mind_news_table *news_ok(const char *text)
{
    mind_news_table *t = NULL;
    char err[256] = "";
    if (mind_news_parse(text, strlen(text), NULL, &t, err, sizeof err) != 0)
        fail_msg("unexpected error: %s", err);
    return t;
}

static void news_fails(const char *text, size_t len, const char *want)
{
    mind_news_table *t = (mind_news_table *)1;
    char err[256] = "";
    assert_int_equal(mind_news_parse(text, len, NULL, &t, err, sizeof err), -1);
    assert_null(t);
    assert_string_equal(err, want);
}

static mind_behaviors *behaviors_ok(const char *text)
{
    mind_behaviors *b = NULL;
    char err[256] = "";
    if (mind_behaviors_parse(text, strlen(text), NULL, &b, err, sizeof err) != 0)
        fail_msg("unexpected error: %s", err);
    return b;
}

static void behaviors_fails(const char *text, const char *want)
{
    mind_behaviors *b = (mind_behaviors *)1;
    char err[256] = "";
    assert_int_equal(mind_behaviors_parse(text, strlen(text), NULL, &b, err, sizeof err), -1);
    assert_null(b);
    assert_string_equal(err, want);
}

/* ---- real rows ------------------------------------------------------------ */

static void test_sample_news(void **state)
{
    (void)state;
    size_t len;
    char *buf = read_all(SAMPLE_DIR "/news.tsv", &len);
    mind_news_table *t = NULL;
    char err[256];
    assert_int_equal(mind_news_parse(buf, len, "news.tsv", &t, err, sizeof err), 0);
    free(buf); /* the table owns a copy */
    assert_int_equal(t->n_news, 2000);
    assert_int_equal(t->n_duplicates, 0);

    const mind_news *first = &t->news[0];
    assert_string_equal(first->id, "N34700");
    assert_string_equal(first->category, "news");
    assert_string_equal(first->subcategory, "newspolitics");
    assert_string_equal(first->title,
                        "New Florida Majority celebrates grand opening of Fort Lauderdale office "
                        "| PHOTOS");
    assert_int_equal(first->title_bytes, strlen(first->title));
    assert_string_equal(first->url, "https://assets.msn.com/labs/mind/AAJte4f.html");
    assert_memory_equal(first->title_entities, "[{\"Label\": \"Fort Lauderdale, Florida\"", 36);
    assert_memory_equal(first->abstract_entities, "[{\"Label\": ", 11);
    assert_int_equal(first->line, 1);

    const mind_news *last = &t->news[1999];
    assert_string_equal(last->id, "N47171");
    assert_string_equal(last->subcategory, "football_nfl");
    assert_string_equal(last->title,
                        "49ers survive sloppy conditions to beat 'Skins, stay unbeaten");
    assert_int_equal(last->title_bytes, 61);
    assert_int_equal(last->line, 2000);

    assert_int_equal(mind_news_find(t, "N26620", 6), 1234);
    assert_string_equal(t->news[1234].title,
                        "Papadopoulos seeks California seat left vacant by Rep. Hill");
    for (size_t i = 0; i < t->n_news; i++)
        assert_int_equal(mind_news_find(t, t->news[i].id, strlen(t->news[i].id)), (ptrdiff_t)i);
    assert_int_equal(mind_news_find(t, "N0", 2), -1);
    assert_int_equal(mind_news_find(t, "N26620x", 6), 1234); /* id_len bounds the key */
    assert_int_equal(mind_news_find(t, "N2662", 5), -1);     /* a prefix is not a match */
    assert_int_equal(mind_news_find(t, "", 0), -1);
    mind_news_free(t);
}

static void test_sample_behaviors(void **state)
{
    (void)state;
    size_t len;
    char *buf = read_all(SAMPLE_DIR "/behaviors.tsv", &len);
    mind_behaviors *b = NULL;
    char err[256];
    assert_int_equal(mind_behaviors_parse(buf, len, "behaviors.tsv", &b, err, sizeof err), 0);
    free(buf);
    assert_int_equal(b->n_impressions, 5000);
    assert_int_equal(b->n_history_ids, 159802);
    assert_int_equal(b->n_candidates, 189359);
    size_t clicks = 0, empty_history = 0;
    for (size_t i = 0; i < b->n_candidates; i++)
        clicks += b->labels[i];
    for (size_t i = 0; i < b->n_impressions; i++)
        empty_history += b->impressions[i].n_history == 0;
    assert_int_equal(clicks, 7542);
    assert_int_equal(empty_history, 107);

    const mind_impression *imp = &b->impressions[0];
    assert_string_equal(imp->impression_id, "58376");
    assert_string_equal(imp->user_id, "U81994");
    assert_string_equal(imp->time, "11/12/2019 2:14:46 PM");
    assert_int_equal(imp->n_history, 97);
    assert_string_equal(b->history_ids[imp->history_start], "N138");
    assert_string_equal(b->history_ids[imp->history_start + 96], "N46057");
    assert_int_equal(imp->n_candidates, 17);
    assert_string_equal(b->candidate_ids[imp->candidate_start], "N43266");
    for (size_t i = 0; i < 17; i++)
        assert_int_equal(b->labels[imp->candidate_start + i], i == 2 || i == 5);
    assert_string_equal(b->candidate_ids[imp->candidate_start + 2], "N6975");

    imp = &b->impressions[24];
    assert_string_equal(imp->impression_id, "137805");
    assert_int_equal(imp->line, 25);
    assert_int_equal(imp->n_history, 0);
    assert_string_equal(b->candidate_ids[imp->candidate_start], "N33848");

    imp = &b->impressions[4999];
    assert_string_equal(imp->impression_id, "122246");
    assert_int_equal(imp->n_history, 58);
    assert_int_equal(imp->n_candidates, 9);
    assert_string_equal(b->candidate_ids[imp->candidate_start + 8], "N51398");
    assert_int_equal(imp->candidate_start + 9, b->n_candidates);
    mind_behaviors_free(b);
}

/* ---- news.tsv: liberal parts ---------------------------------------------- */

static void test_news_liberal(void **state)
{
    (void)state;
    /* CRLF, blank lines, missing trailing columns, no final newline */
    mind_news_table *t = news_ok("N1\tcat\tsub\tTitle one\r\n"
                                 "\n"
                                 "N2\t\t\tTitle two\tAbstract\r\n"
                                 "N3\tc\ts\tT3\ta\tu\t[]\t[]");
    assert_int_equal(t->n_news, 3);
    assert_string_equal(t->news[0].title, "Title one");
    assert_string_equal(t->news[0].abstract, "");
    assert_string_equal(t->news[0].title_entities, "");
    assert_string_equal(t->news[1].category, "");
    assert_string_equal(t->news[1].abstract, "Abstract");
    assert_int_equal(t->news[1].line, 3);
    assert_string_equal(t->news[2].abstract_entities, "[]");
    assert_int_equal(mind_news_find(t, "N2", 2), 1);
    mind_news_free(t);

    t = news_ok("");
    assert_int_equal(t->n_news, 0);
    assert_int_equal(mind_news_find(t, "N1", 2), -1);
    mind_news_free(t);

    /* a repeated id keeps the first row */
    t = news_ok("N1\tc\ts\tfirst\nN2\tc\ts\tsecond\nN1\tc\ts\tagain\n");
    assert_int_equal(t->n_news, 2);
    assert_int_equal(t->n_duplicates, 1);
    assert_string_equal(t->news[mind_news_find(t, "N1", 2)].title, "first");
    mind_news_free(t);
}

static void test_news_errors(void **state)
{
    (void)state;
    const char *s;
    s = "N1\tc\ts\tT\nN2\tc\ts\n";
    news_fails(s, strlen(s), "news.tsv:2: column 4 (title) is missing (the line has 3 columns)");
    s = "N1\n";
    news_fails(s, strlen(s), "news.tsv:1: column 4 (title) is missing (the line has 1 column)");
    s = "N1\tc\ts\tT\ta\tu\t[]\t[]\textra\n";
    news_fails(s, strlen(s), "news.tsv:1: has 9 columns, expected at most 8");
    s = "\n\n\tc\ts\tT\n";
    news_fails(s, strlen(s), "news.tsv:3: column 1 (id) is empty");
    s = "N 1\tc\ts\tT\n";
    news_fails(s, strlen(s), "news.tsv:1: column 1 (id): news id 'N 1' contains a space");
    s = "N1\tc\ts\t\tabstract\n";
    news_fails(s, strlen(s), "news.tsv:1: column 4 (title) is empty");
    static const char nul[] = "N1\tc\ts\tT\nN2\tc\ts\tT\nN3\tc\ts\tT\0x\n";
    news_fails(nul, sizeof nul - 1, "news.tsv:3: contains a NUL byte");

    /* the source name is used, and err may be NULL */
    mind_news_table *t = NULL;
    char err[128];
    assert_int_equal(mind_news_parse("N1\n", 3, "data/news.tsv", &t, err, sizeof err), -1);
    assert_string_equal(err,
                        "data/news.tsv:1: column 4 (title) is missing (the line has 1 column)");
    assert_int_equal(mind_news_parse("N1\n", 3, NULL, &t, NULL, 0), -1);
    assert_null(t);
}

/* ---- behaviors.tsv -------------------------------------------------------- */

static void test_behaviors_liberal(void **state)
{
    (void)state;
    /* empty history, runs of spaces, CRLF, blank lines, ids with dashes */
    mind_behaviors *b = behaviors_ok("1\tU1\t11/15/2019 8:55:22 AM\t\tN1-1 N2-0\r\n"
                                     "\r\n"
                                     "2\tU2\t\t N1  N2 \tN-3-0  N4-1 \n");
    assert_int_equal(b->n_impressions, 2);
    assert_int_equal(b->impressions[0].n_history, 0);
    assert_int_equal(b->impressions[0].n_candidates, 2);
    assert_string_equal(b->impressions[0].time, "11/15/2019 8:55:22 AM");
    const mind_impression *imp = &b->impressions[1];
    assert_int_equal(imp->line, 3);
    assert_string_equal(imp->time, "");
    assert_int_equal(imp->n_history, 2);
    assert_string_equal(b->history_ids[imp->history_start + 1], "N2");
    assert_int_equal(imp->n_candidates, 2);
    assert_string_equal(b->candidate_ids[imp->candidate_start], "N-3");
    assert_int_equal(b->labels[imp->candidate_start], 0);
    assert_string_equal(b->candidate_ids[imp->candidate_start + 1], "N4");
    assert_int_equal(b->labels[imp->candidate_start + 1], 1);
    assert_int_equal(b->n_history_ids, 2);
    assert_int_equal(b->n_candidates, 4);
    mind_behaviors_free(b);

    b = behaviors_ok("\n");
    assert_int_equal(b->n_impressions, 0);
    mind_behaviors_free(b);
}

static void test_behaviors_errors(void **state)
{
    (void)state;
    const char *ok = "1\tU1\tt\tN1\tN1-1\n";
    char text[512];

    snprintf(text, sizeof text, "%s%s", ok, "2\tU1\tt\tN1\tN5-1 N123-x\n");
    behaviors_fails(text, "behaviors.tsv:2: impression 'N123-x': label must be 0 or 1");
    behaviors_fails("1\tU1\tt\t\tN1-10\n",
                    "behaviors.tsv:1: impression 'N1-10': label must be 0 or 1");
    behaviors_fails("1\tU1\tt\t\tN1-\n", "behaviors.tsv:1: impression 'N1-': label must be 0 or 1");
    behaviors_fails("1\tU1\tt\t\tN1\n",
                    "behaviors.tsv:1: impression 'N1': expected '<news id>-<label>'");
    behaviors_fails("1\tU1\tt\t\t-1\n", "behaviors.tsv:1: impression '-1': empty news id");
    behaviors_fails("1\tU1\tt\tN1 N2\n",
                    "behaviors.tsv:1: column 5 (impressions) is missing (the line has 4 columns)");
    behaviors_fails("1\n",
                    "behaviors.tsv:1: column 2 (user id) is missing (the line has 1 column)");
    behaviors_fails("1\tU1\tt\tN1\tN1-1\textra\n", "behaviors.tsv:1: has 6 columns, expected 5");
    behaviors_fails("1\tU1\tt\tN1\t  \n", "behaviors.tsv:1: column 5 (impressions) is empty");
    behaviors_fails("\tU1\tt\tN1\tN1-1\n", "behaviors.tsv:1: column 1 (impression id) is empty");
    behaviors_fails("1\t\tt\tN1\tN1-1\n", "behaviors.tsv:1: column 2 (user id) is empty");

    /* long items are quoted up to 60 bytes */
    char long_item[200];
    memset(long_item, 'N', 100);
    strcpy(long_item + 100, "-2");
    snprintf(text, sizeof text, "1\tU1\tt\t\t%s\n", long_item);
    char want[256];
    snprintf(want, sizeof want, "behaviors.tsv:1: impression '%.60s': label must be 0 or 1",
             long_item);
    behaviors_fails(text, want);

    mind_behaviors *b = NULL;
    char err[128];
    assert_int_equal(mind_behaviors_parse("1\tU\tt\t\tN1-1\0", 13, "b.tsv", &b, err, sizeof err),
                     -1);
    assert_string_equal(err, "b.tsv:1: contains a NUL byte");
    assert_int_equal(mind_behaviors_parse("x\n", 2, NULL, &b, NULL, 0), -1);
    assert_null(b);
}

/* ---- mutated real rows: never crash, and either parse with the invariants
 * the header promises or fail with a message naming the source ------------------ */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The first `max_lines` lines of a sample file. */
static char *sample_head(const char *path, size_t max_lines, size_t *len)
{
    char *buf = read_all(path, len);
    size_t lines = 0;
    for (size_t i = 0; i < *len; i++) {
        if (buf[i] == '\n' && ++lines == max_lines) {
            *len = i + 1;
            break;
        }
    }
    return buf;
}

/* Overwrites a few random bytes with separators and label characters and
 * sometimes truncates. */
static size_t mutate(char *dst, const char *src, size_t len, uint64_t *rng)
{
    static const char alphabet[] = "\t\n\r -01xN\0";
    memcpy(dst, src, len);
    int n = 1 + (int)(xorshift(rng) % 4);
    for (int k = 0; k < n; k++) {
        size_t at = (size_t)(xorshift(rng) % len);
        uint64_t r = xorshift(rng);
        dst[at] = r % 4 == 0 ? (char)(r >> 8) : alphabet[(r >> 8) % (sizeof alphabet - 1)];
    }
    if (xorshift(rng) % 5 == 0)
        len = (size_t)(xorshift(rng) % len);
    return len;
}

static void check_news_table(const mind_news_table *t)
{
    for (size_t i = 0; i < t->n_news; i++) {
        const mind_news *n = &t->news[i];
        assert_true(n->id[0] != '\0' && strchr(n->id, ' ') == NULL && strchr(n->id, '\t') == NULL);
        assert_true(n->title[0] != '\0' && n->title_bytes == strlen(n->title));
        assert_int_equal(mind_news_find(t, n->id, strlen(n->id)), (ptrdiff_t)i);
    }
}

static void check_behaviors(const mind_behaviors *b)
{
    size_t n_hist = 0, n_cand = 0;
    for (size_t i = 0; i < b->n_impressions; i++) {
        const mind_impression *imp = &b->impressions[i];
        assert_true(imp->impression_id[0] && imp->user_id[0] && imp->n_candidates > 0);
        assert_int_equal(imp->history_start, n_hist);
        assert_int_equal(imp->candidate_start, n_cand);
        n_hist += imp->n_history;
        n_cand += imp->n_candidates;
    }
    assert_int_equal(n_hist, b->n_history_ids);
    assert_int_equal(n_cand, b->n_candidates);
    for (size_t i = 0; i < b->n_history_ids; i++)
        assert_true(b->history_ids[i][0] && !strchr(b->history_ids[i], ' '));
    for (size_t i = 0; i < b->n_candidates; i++)
        assert_true(b->candidate_ids[i][0] && b->labels[i] <= 1);
}

static void test_mutated_sample_rows(void **state)
{
    (void)state;
    size_t news_len, beh_len;
    char *news = sample_head(SAMPLE_DIR "/news.tsv", 4, &news_len);
    char *beh = sample_head(SAMPLE_DIR "/behaviors.tsv", 4, &beh_len);
    char *buf = malloc(news_len > beh_len ? news_len : beh_len);
    assert_non_null(buf);
    uint64_t rng = 0x2545f4914f6cdd1dull;
    size_t n_ok = 0, n_failed = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char err[256] = "";
        size_t len = mutate(buf, news, news_len, &rng);
        mind_news_table *t = NULL;
        if (mind_news_parse(buf, len, "n.tsv", &t, err, sizeof err) == 0) {
            check_news_table(t);
            mind_news_free(t);
            n_ok++;
        } else {
            assert_null(t);
            assert_memory_equal(err, "n.tsv:", 6);
            n_failed++;
        }
        len = mutate(buf, beh, beh_len, &rng);
        mind_behaviors *b = NULL;
        if (mind_behaviors_parse(buf, len, "b.tsv", &b, err, sizeof err) == 0) {
            check_behaviors(b);
            mind_behaviors_free(b);
            n_ok++;
        } else {
            assert_null(b);
            assert_memory_equal(err, "b.tsv:", 6);
            n_failed++;
        }
    }
    assert_true(n_ok > 100 && n_failed > 100); /* both outcomes were exercised */
    free(buf);
    free(news);
    free(beh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_news),         cmocka_unit_test(test_sample_behaviors),
        cmocka_unit_test(test_news_liberal),        cmocka_unit_test(test_news_errors),
        cmocka_unit_test(test_behaviors_liberal),   cmocka_unit_test(test_behaviors_errors),
        cmocka_unit_test(test_mutated_sample_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
