/* fuzz_mind_behaviors: mind_behaviors_parse (MIND behaviors.tsv) on arbitrary
 * bytes. On success every impression's history and candidate ranges lie
 * inside the shared arrays, tile them in file order, hold non-empty ids
 * without spaces, labels are 0 or 1, and there is at least one candidate. */
#include <string.h>

#include "fuzz_common.h"
#include "mind.h"

static void id_check(const char *id, const char *what, size_t row)
{
    FUZZ_CHECK(id && id[0] && !strchr(id, ' '), "impression %zu: %s id", row, what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf, "out of memory");
    memcpy(buf, data, size);
    mind_behaviors *b = NULL;
    char err[256] = "";
    if (mind_behaviors_parse(buf, size, NULL, &b, err, sizeof err) != 0) {
        FUZZ_CHECK(b == NULL && strncmp(err, "behaviors.tsv", 13) == 0, "failure: '%s'", err);
        free(buf);
        return 0;
    }
    memset(buf, 0, size);
    size_t next_h = 0, next_c = 0, prev_line = 0;
    for (size_t i = 0; i < b->n_impressions; i++) {
        const mind_impression *m = &b->impressions[i];
        FUZZ_CHECK(m->impression_id && m->impression_id[0] && m->user_id && m->user_id[0] &&
                       m->time,
                   "impression %zu: columns", i);
        FUZZ_CHECK(m->line > prev_line, "impression %zu: line", i);
        prev_line = m->line;
        FUZZ_CHECK(m->history_start == next_h && m->n_history <= b->n_history_ids - next_h,
                   "impression %zu: history range", i);
        FUZZ_CHECK(m->candidate_start == next_c && m->n_candidates >= 1 &&
                       m->n_candidates <= b->n_candidates - next_c,
                   "impression %zu: candidate range", i);
        for (size_t k = 0; k < m->n_history; k++)
            id_check(b->history_ids[m->history_start + k], "history", i);
        for (size_t k = 0; k < m->n_candidates; k++) {
            id_check(b->candidate_ids[m->candidate_start + k], "candidate", i);
            FUZZ_CHECK(b->labels[m->candidate_start + k] <= 1, "impression %zu: label", i);
        }
        next_h += m->n_history;
        next_c += m->n_candidates;
    }
    FUZZ_CHECK(next_h == b->n_history_ids && next_c == b->n_candidates,
               "ranges do not tile the arrays");
    mind_behaviors_free(b);
    free(buf);
    return 0;
}
