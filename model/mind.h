/* mind: parsers for the two files of the MIND news recommendation dataset.
 *
 * news.tsv, one news per line, 8 tab-separated columns:
 *   id  category  subcategory  title  abstract  url  title_entities  abstract_entities
 * behaviors.tsv, one impression per line, 5 tab-separated columns:
 *   impression_id  user_id  time  history  impressions
 * where history is space-separated news ids (may be empty) and impressions is
 * space-separated "Nxxx-1" (clicked) / "Nxxx-0" (not clicked).
 *
 * Both parsers take (buf, len), accept LF or CRLF line ends and skip empty
 * lines. Memory: a parsed table owns one private copy of the text, cut into
 * NUL-terminated fields in place, plus arrays sized once from an upper bound
 * counted before parsing; every `const char *` below points into that copy
 * and lives until the table's free function. Nothing here is global; a
 * parsed table is read-only and may be shared by threads. */
#ifndef FF_MIND_H
#define FF_MIND_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

/* ---- news.tsv ------------------------------------------------------------ */

typedef struct {
    const char *id; /* "N12345": non-empty, no spaces */
    const char *category;
    const char *subcategory;
    const char *title; /* non-empty */
    const char *abstract;
    const char *url;
    const char *title_entities;    /* raw JSON text as in the file, "" when absent */
    const char *abstract_entities; /* raw JSON text as in the file, "" when absent */
    size_t title_bytes;            /* strlen(title) */
    size_t line;                   /* 1-based line in the source */
} mind_news;

typedef struct {
    mind_news *news; /* (n_news), in file order */
    size_t n_news;
    size_t n_duplicates; /* lines whose id was already seen (the first one is kept) */

    /* private */
    char *text;
    uint32_t *index; /* open addressing: news index + 1, 0 = empty */
    size_t index_cap;
} mind_news_table;

/* Parses news.tsv. `source_name` names the file in messages (NULL ->
 * "news.tsv"). Columns after the title may be missing (they read as ""); more
 * than 8 columns, a missing or empty id or title, an id with a space and a NUL
 * byte are errors. A repeated id keeps the first row and counts a duplicate.
 * On success returns 0 and a new table in *out (free with mind_news_free).
 * On failure returns -1 with a message naming the line and column, e.g.
 * "news.tsv:3: column 4 (title) is missing", and *out = NULL. */
FF_MUST_CHECK int mind_news_parse(const void *buf, size_t len, const char *source_name,
                                  mind_news_table **out, char *err, size_t err_cap);
void mind_news_free(mind_news_table *t);

/* Returns the index in t->news of the news with id [id, id+id_len), or -1. */
ptrdiff_t mind_news_find(const mind_news_table *t, const char *id, size_t id_len);

/* ---- behaviors.tsv -------------------------------------------------------- */

typedef struct {
    const char *impression_id; /* non-empty */
    const char *user_id;       /* non-empty */
    const char *time;          /* as in the file, e.g. "11/15/2019 8:55:22 AM" */
    size_t history_start;      /* history: history_ids[history_start .. + n_history) */
    size_t n_history;          /* oldest first, as in the file; may be 0 */
    size_t candidate_start;    /* candidates: candidate_ids / labels [candidate_start .. +
                                  n_candidates) */
    size_t n_candidates;       /* >= 1 */
    size_t line;               /* 1-based line in the source */
} mind_impression;

typedef struct {
    mind_impression *impressions; /* (n_impressions), in file order */
    size_t n_impressions;
    const char **history_ids; /* all histories back to back */
    size_t n_history_ids;
    const char **candidate_ids; /* all candidates back to back */
    uint8_t *labels;            /* (n_candidates) 1 clicked, 0 not */
    size_t n_candidates;

    /* private */
    char *text;
} mind_behaviors;

/* Parses behaviors.tsv. `source_name` names the file in messages (NULL ->
 * "behaviors.tsv"). Every line needs all 5 columns; history may be empty;
 * ids are separated by one or more spaces. Each impression must be
 * "<id>-0" or "<id>-1" with a non-empty id.
 * On success returns 0 and a new table in *out (free with mind_behaviors_free).
 * On failure returns -1 with a message naming the line and column or item, e.g.
 * "behaviors.tsv:17: impression 'N123-x': label must be 0 or 1", and *out = NULL. */
FF_MUST_CHECK int mind_behaviors_parse(const void *buf, size_t len, const char *source_name,
                                       mind_behaviors **out, char *err, size_t err_cap);
void mind_behaviors_free(mind_behaviors *b);

#endif
