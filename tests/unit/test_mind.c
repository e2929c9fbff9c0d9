/* test_mind: the news.tsv / behaviors.tsv parsers
 * - on tests/fixtures/mind-quirks (tools/make_mind_quirks.py: synthetic rows
 *   with the quirks of real MIND data; what the parser must find was computed
 *   by the generator with Python's str.split), as written and with CRLF line
 *   ends or no final newline, and mutated at random;
 * - on malformed inputs, one per error path;
 * - on the real MIND sample (2,000 news, 5,000 impressions of MINDsmall_train)
 *   when it is present in data/mind-sample or $DATA_SRC/mind-sample (`make
 *   data`); skipped otherwise, since MIND's licence keeps it out of the
 *   repository. Its expected counts were taken with Python's str.split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mind.h"
#include "sha256.h"
#include "third_party_data.h"

#define QUIRKS_DIR "tests/fixtures/mind-quirks"
#define NO_SAMPLE "no MIND sample: run make data or set DATA_SRC"

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

/* ---- tests/fixtures/mind-quirks ----------------------------------------------- */

static json_t *quirks_expected(void)
{
    json_error_t jerr;
    json_t *doc = json_load_file(QUIRKS_DIR "/expected.json", 0, &jerr);
    if (!doc)
        fail_msg("%s/expected.json:%d: %s", QUIRKS_DIR, jerr.line, jerr.text);
    return doc;
}

static const char *json_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s)
        fail_msg("expected.json: no string '%s'", key);
    return s;
}

static size_t json_count(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("expected.json: no integer '%s'", key);
    return (size_t)json_integer_value(v);
}

static void digest_value(sha256_ctx *ctx, const char *s)
{
    sha256_update(ctx, s, strlen(s));
    sha256_update(ctx, "\n", 1);
}

static void assert_digest(sha256_ctx *ctx, json_t *columns, const char *name)
{
    uint8_t d[SHA256_DIGEST_BYTES];
    char hex[2 * SHA256_DIGEST_BYTES + 1];
    sha256_final(ctx, d);
    for (size_t i = 0; i < SHA256_DIGEST_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    if (strcmp(hex, json_str(columns, name)) != 0)
        fail_msg("column %s: sha256 %s, expected %s", name, hex, json_str(columns, name));
}

/* The news.tsv columns by their names in expected.json. */
static const struct {
    const char *name;
    size_t offset;
} NEWS_COLUMNS[] = {
    {"id", offsetof(mind_news, id)},
    {"category", offsetof(mind_news, category)},
    {"subcategory", offsetof(mind_news, subcategory)},
    {"title", offsetof(mind_news, title)},
    {"abstract", offsetof(mind_news, abstract)},
    {"url", offsetof(mind_news, url)},
    {"title_entities", offsetof(mind_news, title_entities)},
    {"abstract_entities", offsetof(mind_news, abstract_entities)},
};
#define N_NEWS_COLUMNS (sizeof NEWS_COLUMNS / sizeof NEWS_COLUMNS[0])

static const char *news_column(const mind_news *n, size_t c)
{
    return *(const char *const *)((const char *)n + NEWS_COLUMNS[c].offset);
}

/* Compares a parsed news.tsv with the generator's expectations. */
static void check_quirks_news(const mind_news_table *t, json_t *exp)
{
    assert_int_equal(t->n_news, json_count(exp, "rows"));
    assert_int_equal(t->n_duplicates, json_count(exp, "duplicates"));
    size_t empty_abstracts = 0, empty_entities = 0;
    for (size_t i = 0; i < t->n_news; i++) {
        const mind_news *n = &t->news[i];
        empty_abstracts += n->abstract[0] == '\0';
        empty_entities += !strcmp(n->title_entities, "[]") + !strcmp(n->abstract_entities, "[]");
        assert_int_equal(n->title_bytes, strlen(n->title));
        assert_int_equal(mind_news_find(t, n->id, strlen(n->id)), (ptrdiff_t)i);
    }
    assert_int_equal(empty_abstracts, json_count(exp, "empty_abstracts"));
    assert_int_equal(empty_entities, json_count(exp, "empty_entity_lists"));

    json_t *columns = json_object_get(exp, "columns_sha256");
    assert_int_equal(json_object_size(columns), N_NEWS_COLUMNS);
    for (size_t c = 0; c < N_NEWS_COLUMNS; c++) {
        sha256_ctx ctx;
        sha256_init(&ctx);
        for (size_t i = 0; i < t->n_news; i++)
            digest_value(&ctx, news_column(&t->news[i], c));
        assert_digest(&ctx, columns, NEWS_COLUMNS[c].name);
    }

    size_t k;
    json_t *row;
    json_array_foreach(json_object_get(exp, "rows_in_full"), k, row)
    {
        size_t i = json_count(row, "index");
        assert_true(i < t->n_news);
        const mind_news *n = &t->news[i];
        for (size_t c = 0; c < N_NEWS_COLUMNS; c++)
            assert_string_equal(news_column(n, c), json_str(row, NEWS_COLUMNS[c].name));
        assert_int_equal(n->line, json_count(row, "line"));
        assert_int_equal(n->title_bytes, json_count(row, "title_bytes"));
    }
    json_t *longest = json_object_get(exp, "longest_abstract");
    assert_int_equal(strlen(t->news[json_count(longest, "index")].abstract),
                     json_count(longest, "bytes"));
    assert_true(json_count(longest, "line_bytes") > 65536); /* the fixture has a line over 64 KiB */
}

static void digest_ids(sha256_ctx *ctx, const char *const *ids, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (j)
            sha256_update(ctx, " ", 1);
        sha256_update(ctx, ids[j], strlen(ids[j]));
    }
    sha256_update(ctx, "\n", 1);
}

static void check_id_list(json_t *want, const char *const *ids, size_t n)
{
    assert_int_equal(json_array_size(want), n);
    for (size_t j = 0; j < n; j++)
        assert_string_equal(ids[j], json_string_value(json_array_get(want, j)));
}

/* Compares a parsed behaviors.tsv with the generator's expectations; `news`
 * resolves ids as eval-mind does. */
static void check_quirks_behaviors(const mind_behaviors *b, const mind_news_table *news,
                                   json_t *exp)
{
    assert_int_equal(b->n_impressions, json_count(exp, "impressions"));
    assert_int_equal(b->n_history_ids, json_count(exp, "history_ids"));
    assert_int_equal(b->n_candidates, json_count(exp, "candidates"));
    size_t clicks = 0, empty = 0, hist_found = 0, cand_found = 0;
    for (size_t i = 0; i < b->n_candidates; i++) {
        clicks += b->labels[i];
        cand_found += mind_news_find(news, b->candidate_ids[i], strlen(b->candidate_ids[i])) >= 0;
    }
    for (size_t i = 0; i < b->n_history_ids; i++)
        hist_found += mind_news_find(news, b->history_ids[i], strlen(b->history_ids[i])) >= 0;
    for (size_t i = 0; i < b->n_impressions; i++)
        empty += b->impressions[i].n_history == 0;
    assert_int_equal(clicks, json_count(exp, "clicks"));
    assert_int_equal(empty, json_count(exp, "empty_histories"));
    assert_int_equal(hist_found, json_count(exp, "history_ids_in_news"));
    assert_int_equal(cand_found, json_count(exp, "candidates_in_news"));

    json_t *columns = json_object_get(exp, "columns_sha256");
    sha256_ctx id, user, time, hist, cand, lab;
    sha256_init(&id);
    sha256_init(&user);
    sha256_init(&time);
    sha256_init(&hist);
    sha256_init(&cand);
    sha256_init(&lab);
    for (size_t i = 0; i < b->n_impressions; i++) {
        const mind_impression *imp = &b->impressions[i];
        digest_value(&id, imp->impression_id);
        digest_value(&user, imp->user_id);
        digest_value(&time, imp->time);
        digest_ids(&hist, b->history_ids + imp->history_start, imp->n_history);
        digest_ids(&cand, b->candidate_ids + imp->candidate_start, imp->n_candidates);
        for (size_t j = 0; j < imp->n_candidates; j++)
            sha256_update(&lab, b->labels[imp->candidate_start + j] ? "1" : "0", 1);
        sha256_update(&lab, "\n", 1);
    }
    assert_digest(&id, columns, "impression_id");
    assert_digest(&user, columns, "user_id");
    assert_digest(&time, columns, "time");
    assert_digest(&hist, columns, "history");
    assert_digest(&cand, columns, "candidates");
    assert_digest(&lab, columns, "labels");

    size_t k;
    json_t *want;
    json_array_foreach(json_object_get(exp, "impressions_in_full"), k, want)
    {
        size_t i = json_count(want, "index");
        assert_true(i < b->n_impressions);
        const mind_impression *imp = &b->impressions[i];
        assert_string_equal(imp->impression_id, json_str(want, "impression_id"));
        assert_string_equal(imp->user_id, json_str(want, "user_id"));
        assert_string_equal(imp->time, json_str(want, "time"));
        assert_int_equal(imp->line, json_count(want, "line"));
        check_id_list(json_object_get(want, "history"), b->history_ids + imp->history_start,
                      imp->n_history);
        check_id_list(json_object_get(want, "candidates"), b->candidate_ids + imp->candidate_start,
                      imp->n_candidates);
        json_t *labels = json_object_get(want, "labels");
        for (size_t j = 0; j < imp->n_candidates; j++)
            assert_int_equal(b->labels[imp->candidate_start + j],
                             json_integer_value(json_array_get(labels, j)));
    }
    json_array_foreach(json_object_get(exp, "long_impressions"), k, want)
    {
        const mind_impression *imp = &b->impressions[json_count(want, "index")];
        assert_int_equal(imp->n_history, json_count(want, "n_history"));
        assert_int_equal(imp->n_candidates, json_count(want, "n_candidates"));
    }
}

/* The file as the generator wrote it; checks its sha256 against expected.json
 * so that data and expectations come from the same run. */
static char *quirks_file(const char *name, json_t *exp, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", QUIRKS_DIR, name);
    char *buf = read_all(path, len);
    char hex[2 * SHA256_DIGEST_BYTES + 1];
    sha256_hex(buf, *len, hex);
    if (strcmp(hex, json_str(exp, "file_sha256")) != 0)
        fail_msg("%s changed since expected.json was written: run tools/make_mind_quirks.py", path);
    return buf;
}

/* Variants of a LF file that must parse to the same rows: 0 as written,
 * 1 CRLF line ends, 2 without the final newline. Returns a new buffer. */
static char *variant(const char *text, size_t len, int kind, size_t *out_len)
{
    char *out = malloc(2 * len + 1);
    assert_non_null(out);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (kind == 1 && text[i] == '\n')
            out[n++] = '\r';
        out[n++] = text[i];
    }
    if (kind == 2 && n > 0 && out[n - 1] == '\n')
        n--;
    *out_len = n;
    return out;
}

static void test_quirks(void **state)
{
    (void)state;
    json_t *exp = quirks_expected();
    json_t *news_exp = json_object_get(exp, "news"), *beh_exp = json_object_get(exp, "behaviors");
    size_t news_len, beh_len;
    char *news = quirks_file("news.tsv", news_exp, &news_len);
    char *beh = quirks_file("behaviors.tsv", beh_exp, &beh_len);
    for (int kind = 0; kind < 3; kind++) {
        size_t n_len, b_len;
        char *n_text = variant(news, news_len, kind, &n_len);
        char *b_text = variant(beh, beh_len, kind, &b_len);
        mind_news_table *t = NULL;
        mind_behaviors *b = NULL;
        char err[256] = "";
        if (mind_news_parse(n_text, n_len, "news.tsv", &t, err, sizeof err) != 0)
            fail_msg("variant %d: %s", kind, err);
        if (mind_behaviors_parse(b_text, b_len, "behaviors.tsv", &b, err, sizeof err) != 0)
            fail_msg("variant %d: %s", kind, err);
        free(n_text); /* the tables own copies */
        free(b_text);
        check_quirks_news(t, news_exp);
        check_quirks_behaviors(b, t, beh_exp);
        mind_behaviors_free(b);
        mind_news_free(t);
    }
    free(news);
    free(beh);
    json_decref(exp);
}

/* ---- the real MIND sample (optional) -------------------------------------- */

/* Writes the path of `file` in the MIND sample into path, or skips the test. */
static void sample_file(const char *file, char *path, size_t path_cap)
{
    char dir[4096];
    if (!third_party_data_find("mind-sample", dir, sizeof dir)) {
        third_party_data_skip_reason(NO_SAMPLE);
        skip();
    }
    assert_true((size_t)snprintf(path, path_cap, "%s/%s", dir, file) < path_cap);
}

static void test_sample_news(void **state)
{
    (void)state;
    size_t len;
    char path[4200];
    sample_file("news.tsv", path, sizeof path);
    char *buf = read_all(path, &len);
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
    char path[4200];
    sample_file("behaviors.tsv", path, sizeof path);
    char *buf = read_all(path, &len);
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

/* ---- mutated rows of the quirks fixture: never crash, and either parse with
 * the invariants the header promises or fail with a message naming the source ---- */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The first `max_lines` lines of a file. */
static char *file_head(const char *path, size_t max_lines, size_t *len)
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

static void test_mutated_rows(void **state)
{
    (void)state;
    size_t news_len, beh_len;
    char *news = file_head(QUIRKS_DIR "/news.tsv", 4, &news_len);
    char *beh = file_head(QUIRKS_DIR "/behaviors.tsv", 4, &beh_len);
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
        cmocka_unit_test(test_quirks),           cmocka_unit_test(test_news_liberal),
        cmocka_unit_test(test_news_errors),      cmocka_unit_test(test_behaviors_liberal),
        cmocka_unit_test(test_behaviors_errors), cmocka_unit_test(test_mutated_rows),
        cmocka_unit_test(test_sample_news),      cmocka_unit_test(test_sample_behaviors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
