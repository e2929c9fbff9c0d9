/* fuzz_mind_news: mind_news_parse (MIND news.tsv) on arbitrary bytes. On
 * success every row has a non-empty id without spaces and a non-empty title
 * of title_bytes bytes, lines increase, every id is found at its first row,
 * and the table owns its text (the input is overwritten before the checks). */
#include <string.h>

#include "fuzz_common.h"
#include "mind.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf, "out of memory");
    memcpy(buf, data, size);
    mind_news_table *t = NULL;
    char err[256] = "";
    if (mind_news_parse(buf, size, NULL, &t, err, sizeof err) != 0) {
        FUZZ_CHECK(t == NULL && strncmp(err, "news.tsv", 8) == 0, "failure: '%s'", err);
        free(buf);
        return 0;
    }
    memset(buf, 0, size);
    size_t prev_line = 0;
    for (size_t i = 0; i < t->n_news; i++) {
        const mind_news *n = &t->news[i];
        FUZZ_CHECK(n->id && n->id[0] && !strchr(n->id, ' '), "row %zu: id", i);
        FUZZ_CHECK(n->title && n->title[0] && strlen(n->title) == n->title_bytes, "row %zu: title",
                   i);
        FUZZ_CHECK(n->category && n->subcategory && n->abstract && n->url && n->title_entities &&
                       n->abstract_entities,
                   "row %zu: a NULL column", i);
        FUZZ_CHECK(n->line > prev_line, "row %zu: line %zu after %zu", i, n->line, prev_line);
        prev_line = n->line;
        ptrdiff_t at = mind_news_find(t, n->id, strlen(n->id));
        FUZZ_CHECK(at >= 0 && (size_t)at <= i && strcmp(t->news[at].id, n->id) == 0,
                   "row %zu: id '%s' found at %td", i, n->id, at);
    }
    FUZZ_CHECK(mind_news_find(t, "", 0) == -1, "the empty id was found");
    mind_news_free(t);
    free(buf);
    return 0;
}
