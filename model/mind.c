/* mind: news.tsv and behaviors.tsv parsers. Each table copies the input once,
 * cuts it into NUL-terminated fields in place, and sizes its arrays once from
 * counts taken before parsing (lines, spaces), so parsing never reallocates. */
#include "mind.h"

#include "error_message.h"
#include "fnv1a.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEWS_COLUMNS 8
#define BEHAVIORS_COLUMNS 5
#define QUOTE_MAX 60 /* longest item quoted in a message */

static const char *const news_column_names[NEWS_COLUMNS] = {
    "id",       "category", "subcategory",    "title",
    "abstract", "url",      "title entities", "abstract entities",
};
static const char *const behaviors_column_names[BEHAVIORS_COLUMNS] = {
    "impression id", "user id", "time", "history", "impressions",
};

/* ---- shared helpers ------------------------------------------------------ */

/* Length of s to quote in a message: long items are cut at QUOTE_MAX bytes. */
static int quote_len(const char *s)
{
    size_t n = strlen(s);
    return n > QUOTE_MAX ? QUOTE_MAX : (int)n;
}

static size_t count_byte(const char *p, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += p[i] == c;
    return n;
}

/* Copies buf into a new NUL-terminated string after checking it has no NUL
 * byte (fields are NUL-terminated, so one would silently cut a field).
 * Returns NULL with a message on failure. */
static char *copy_text(const void *buf, size_t len, const char *name, char *err, size_t err_cap)
{
    const char *nul = memchr(buf, '\0', len);
    if (nul) {
        size_t line = 1 + count_byte(buf, (size_t)(nul - (const char *)buf), '\n');
        error_message_set(err, err_cap, "%s:%zu: contains a NUL byte", name, line);
        return NULL;
    }
    if (len == SIZE_MAX) {
        error_message_set(err, err_cap, "%s: input too large", name);
        return NULL;
    }
    char *text = malloc(len + 1);
    if (!text) {
        error_message_set(err, err_cap, "%s: out of memory copying %zu bytes", name, len);
        return NULL;
    }
    if (len)
        memcpy(text, buf, len);
    text[len] = '\0';
    return text;
}

/* Cuts the next line out of [*pos, end): NUL-terminates it (dropping a CR
 * before the LF) and advances *pos past it. Returns the line. */
static char *next_line(char **pos, char *end)
{
    char *line = *pos;
    char *nl = memchr(line, '\n', (size_t)(end - line));
    char *eol = nl ? nl : end;
    *pos = nl ? nl + 1 : end;
    if (eol > line && eol[-1] == '\r')
        eol--;
    *eol = '\0';
    return line;
}

/* Splits a line at tabs in place. Stores up to max_fields field starts and
 * returns the number of fields the line has (which may exceed max_fields). */
static size_t split_tabs(char *line, char **fields, size_t max_fields)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        if (n < max_fields)
            fields[n] = p;
        n++;
        char *tab = strchr(p, '\t');
        if (!tab)
            return n;
        *tab = '\0';
        p = tab + 1;
    }
}

/* Returns the next space-separated token of *s (NUL-terminated in place), or
 * NULL at the end. Runs of spaces count as one separator. */
static char *next_token(char **s)
{
    char *p = *s;
    while (*p == ' ')
        p++;
    if (!*p) {
        *s = p;
        return NULL;
    }
    char *tok = p;
    while (*p && *p != ' ')
        p++;
    if (*p)
        *p++ = '\0';
    *s = p;
    return tok;
}

/* ---- news.tsv ------------------------------------------------------------ */

void mind_news_free(mind_news_table *t)
{
    if (!t)
        return;
    free(t->news);
    free(t->index);
    free(t->text);
    free(t);
}

ptrdiff_t mind_news_find(const mind_news_table *t, const char *id, size_t id_len)
{
    assert(t != NULL && (id != NULL || id_len == 0));
    size_t mask = t->index_cap - 1;
    for (size_t slot = (size_t)fnv1a_64(id, id_len) & mask;; slot = (slot + 1) & mask) {
        uint32_t e = t->index[slot];
        if (e == 0)
            return -1;
        const mind_news *n = &t->news[e - 1];
        if (strncmp(n->id, id, id_len) == 0 && n->id[id_len] == '\0')
            return (ptrdiff_t)(e - 1);
    }
}

/* Adds news index i to the index unless its id is there already; returns
 * false for a duplicate. The table is at most half full by construction. */
static bool news_index_add(mind_news_table *t, size_t i)
{
    const char *id = t->news[i].id;
    size_t id_len = strlen(id);
    size_t mask = t->index_cap - 1;
    for (size_t slot = (size_t)fnv1a_64(id, id_len) & mask;; slot = (slot + 1) & mask) {
        uint32_t e = t->index[slot];
        if (e == 0) {
            t->index[slot] = (uint32_t)(i + 1);
            return true;
        }
        if (strcmp(t->news[e - 1].id, id) == 0)
            return false;
    }
}

/* Fills one news row from its fields; returns -1 with a message for a bad row. */
static int news_row(mind_news *row, char **fields, size_t n_fields, const char *name, size_t line,
                    char *err, size_t err_cap)
{
    if (n_fields > NEWS_COLUMNS) {
        error_message_set(err, err_cap, "%s:%zu: has %zu columns, expected at most %d", name, line,
                          n_fields, NEWS_COLUMNS);
        return -1;
    }
    if (n_fields < 4) {
        error_message_set(err, err_cap,
                          "%s:%zu: column 4 (%s) is missing (the line has %zu column%s)", name,
                          line, news_column_names[3], n_fields, n_fields == 1 ? "" : "s");
        return -1;
    }
    if (!fields[0][0]) {
        error_message_set(err, err_cap, "%s:%zu: column 1 (%s) is empty", name, line,
                          news_column_names[0]);
        return -1;
    }
    if (strchr(fields[0], ' ')) {
        error_message_set(err, err_cap, "%s:%zu: column 1 (id): news id '%.*s' contains a space",
                          name, line, quote_len(fields[0]), fields[0]);
        return -1;
    }
    if (!fields[3][0]) {
        error_message_set(err, err_cap, "%s:%zu: column 4 (%s) is empty", name, line,
                          news_column_names[3]);
        return -1;
    }
    static const char empty[] = "";
    const char *col[NEWS_COLUMNS];
    for (size_t c = 0; c < NEWS_COLUMNS; c++)
        col[c] = c < n_fields ? fields[c] : empty;
    *row = (mind_news){
        .id = col[0],
        .category = col[1],
        .subcategory = col[2],
        .title = col[3],
        .abstract = col[4],
        .url = col[5],
        .title_entities = col[6],
        .abstract_entities = col[7],
        .title_bytes = strlen(col[3]),
        .line = line,
    };
    return 0;
}

int mind_news_parse(const void *buf, size_t len, const char *source_name, mind_news_table **out,
                    char *err, size_t err_cap)
{
    assert(out != NULL && (buf != NULL || len == 0));
    *out = NULL;
    const char *name = source_name ? source_name : "news.tsv";

    mind_news_table *t = calloc(1, sizeof *t);
    if (!t) {
        error_message_set(err, err_cap, "%s: out of memory", name);
        return -1;
    }
    t->text = copy_text(buf, len, name, err, err_cap);
    if (!t->text)
        goto fail;

    size_t max_rows = count_byte(t->text, len, '\n') + 1;
    if (max_rows >= UINT32_MAX / 2) {
        error_message_set(err, err_cap, "%s: too many lines (%zu)", name, max_rows);
        goto fail;
    }
    t->index_cap = 16;
    while (t->index_cap < 2 * max_rows)
        t->index_cap *= 2;
    t->news = calloc(max_rows, sizeof *t->news);
    t->index = calloc(t->index_cap, sizeof *t->index);
    if (!t->news || !t->index) {
        error_message_set(err, err_cap, "%s: out of memory for %zu rows", name, max_rows);
        goto fail;
    }

    char *pos = t->text, *end = t->text + len;
    for (size_t line = 1; pos < end; line++) {
        char *text_line = next_line(&pos, end);
        if (!text_line[0])
            continue;
        char *fields[NEWS_COLUMNS];
        size_t n_fields = split_tabs(text_line, fields, NEWS_COLUMNS);
        mind_news *row = &t->news[t->n_news];
        if (news_row(row, fields, n_fields, name, line, err, err_cap) != 0)
            goto fail;
        if (news_index_add(t, t->n_news))
            t->n_news++;
        else
            t->n_duplicates++;
    }
    *out = t;
    return 0;

fail:
    mind_news_free(t);
    return -1;
}

/* ---- behaviors.tsv -------------------------------------------------------- */

void mind_behaviors_free(mind_behaviors *b)
{
    if (!b)
        return;
    free(b->impressions);
    free(b->history_ids);
    free(b->candidate_ids);
    free(b->labels);
    free(b->text);
    free(b);
}

/* Parses one "<id>-<label>" impression item into candidate slot i. */
static int parse_candidate(mind_behaviors *b, char *item, const char *name, size_t line, char *err,
                           size_t err_cap)
{
    char *dash = strrchr(item, '-');
    if (!dash) {
        error_message_set(err, err_cap, "%s:%zu: impression '%.*s': expected '<news id>-<label>'",
                          name, line, quote_len(item), item);
        return -1;
    }
    if (dash == item) {
        error_message_set(err, err_cap, "%s:%zu: impression '%.*s': empty news id", name, line,
                          quote_len(item), item);
        return -1;
    }
    if ((dash[1] != '0' && dash[1] != '1') || dash[2] != '\0') {
        error_message_set(err, err_cap, "%s:%zu: impression '%.*s': label must be 0 or 1", name,
                          line, quote_len(item), item);
        return -1;
    }
    b->labels[b->n_candidates] = (uint8_t)(dash[1] - '0');
    *dash = '\0';
    b->candidate_ids[b->n_candidates++] = item;
    return 0;
}

/* Parses one non-empty line into the next impression. */
static int behaviors_row(mind_behaviors *b, char *text_line, const char *name, size_t line,
                         char *err, size_t err_cap)
{
    char *f[BEHAVIORS_COLUMNS];
    size_t n_fields = split_tabs(text_line, f, BEHAVIORS_COLUMNS);
    if (n_fields > BEHAVIORS_COLUMNS) {
        error_message_set(err, err_cap, "%s:%zu: has %zu columns, expected %d", name, line,
                          n_fields, BEHAVIORS_COLUMNS);
        return -1;
    }
    if (n_fields < BEHAVIORS_COLUMNS) {
        error_message_set(err, err_cap,
                          "%s:%zu: column %zu (%s) is missing (the line has %zu column%s)", name,
                          line, n_fields + 1, behaviors_column_names[n_fields], n_fields,
                          n_fields == 1 ? "" : "s");
        return -1;
    }
    for (size_t c = 0; c < 2; c++) {
        if (!f[c][0]) {
            error_message_set(err, err_cap, "%s:%zu: column %zu (%s) is empty", name, line, c + 1,
                              behaviors_column_names[c]);
            return -1;
        }
    }
    mind_impression *imp = &b->impressions[b->n_impressions];
    *imp = (mind_impression){
        .impression_id = f[0],
        .user_id = f[1],
        .time = f[2],
        .history_start = b->n_history_ids,
        .candidate_start = b->n_candidates,
        .line = line,
    };
    char *s = f[3], *tok;
    while ((tok = next_token(&s)) != NULL)
        b->history_ids[b->n_history_ids++] = tok;
    s = f[4];
    while ((tok = next_token(&s)) != NULL) {
        if (parse_candidate(b, tok, name, line, err, err_cap) != 0)
            return -1;
    }
    imp->n_history = b->n_history_ids - imp->history_start;
    imp->n_candidates = b->n_candidates - imp->candidate_start;
    if (imp->n_candidates == 0) {
        error_message_set(err, err_cap, "%s:%zu: column 5 (impressions) is empty", name, line);
        return -1;
    }
    b->n_impressions++;
    return 0;
}

int mind_behaviors_parse(const void *buf, size_t len, const char *source_name, mind_behaviors **out,
                         char *err, size_t err_cap)
{
    assert(out != NULL && (buf != NULL || len == 0));
    *out = NULL;
    const char *name = source_name ? source_name : "behaviors.tsv";

    mind_behaviors *b = calloc(1, sizeof *b);
    if (!b) {
        error_message_set(err, err_cap, "%s: out of memory", name);
        return -1;
    }
    b->text = copy_text(buf, len, name, err, err_cap);
    if (!b->text)
        goto fail;

    /* Each line's history and impressions fields hold at most (their spaces
     * + 1) items, so spaces + lines bounds both arrays. */
    size_t max_rows = count_byte(b->text, len, '\n') + 1;
    size_t max_items = count_byte(b->text, len, ' ') + max_rows;
    if (max_items > SIZE_MAX / sizeof(char *)) {
        error_message_set(err, err_cap, "%s: input too large", name);
        goto fail;
    }
    b->impressions = calloc(max_rows, sizeof *b->impressions);
    b->history_ids = calloc(max_items, sizeof *b->history_ids);
    b->candidate_ids = calloc(max_items, sizeof *b->candidate_ids);
    b->labels = calloc(max_items, sizeof *b->labels);
    if (!b->impressions || !b->history_ids || !b->candidate_ids || !b->labels) {
        error_message_set(err, err_cap, "%s: out of memory for %zu lines", name, max_rows);
        goto fail;
    }

    char *pos = b->text, *end = b->text + len;
    for (size_t line = 1; pos < end; line++) {
        char *text_line = next_line(&pos, end);
        if (!text_line[0])
            continue;
        if (behaviors_row(b, text_line, name, line, err, err_cap) != 0)
            goto fail;
    }
    *out = b;
    return 0;

fail:
    mind_behaviors_free(b);
    return -1;
}
