/* api_parse_fixture: three served tiny models for the tests of the model
 * routes' parsers (api_route_parse), and helpers that run one parse and
 * check its verdict. Models: "cls" (classifier, vocab 40, 12 positions),
 * "rec" (recommender with the catalog N1, N2, N3 and a 4-entry news cache)
 * and "bare" (recommender without catalog). Header-only (static), one binary
 * each. */
#ifndef FF_API_PARSE_FIXTURE_H
#define FF_API_PARSE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "api_frame.h"
#include "model_registry.h"
#include "tiny_model.h"

typedef struct {
    char *cls_dir, *rec_dir;
    model_registry *reg;
    served_model *cls, *rec, *bare;
} parse_fixture;

static inline int parse_fixture_setup(void **state)
{
    parse_fixture *f = calloc(1, sizeof *f);
    f->cls_dir = tiny_model_dir(false, 21);
    f->rec_dir = tiny_model_dir(true, 22);
    char tsv[600];
    snprintf(tsv, sizeof tsv, "%s/news.tsv", f->rec_dir);
    tiny_write(tsv, "N1\tc\ts\tw2 w3\nN2\tc\ts\tw4\nN3\tc\ts\tw5 w6 w7\n");
    f->reg = model_registry_new(1, NULL);
    model_spec specs[] = {
        {.name = "cls", .path = f->cls_dir, .max_batch_size = 8, .max_batch_tokens = 96},
        {.name = "rec",
         .path = f->rec_dir,
         .news_catalog = tsv,
         .news_cache_entries = 4,
         .max_batch_size = 8,
         .max_batch_tokens = 96},
        {.name = "bare", .path = f->rec_dir, .max_batch_size = 8, .max_batch_tokens = 96},
    };
    char err[512];
    if (model_registry_load(f->reg, specs, 3, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    f->cls = model_registry_get(f->reg, "cls");
    f->rec = model_registry_get(f->reg, "rec");
    f->bare = model_registry_get(f->reg, "bare");
    *state = f;
    return f->cls && f->rec && f->bare ? 0 : -1;
}

static inline int parse_fixture_teardown(void **state)
{
    parse_fixture *f = *state;
    served_model_release(f->cls);
    served_model_release(f->rec);
    served_model_release(f->bare);
    model_registry_free(f->reg);
    tiny_remove(f->cls_dir);
    tiny_remove(f->rec_dir);
    free(f);
    return 0;
}

/* Runs the route's parse of `body` on model sm (path capture `param`). */
static inline int parse_run(const api_model_route *route, served_model *sm, const char *param,
                            const char *body, api_parsed *out)
{
    api_call call = {.sm = sm, .param = param};
    return api_route_parse(route, &call, body, strlen(body), out);
}

/* The parse fails with exactly `status` and `message`, leaving nothing to release. */
static inline void parse_fails(const api_model_route *route, served_model *sm, const char *param,
                               const char *body, int status, const char *message)
{
    api_parsed out;
    int got = parse_run(route, sm, param, body, &out);
    if (got != status || strcmp(out.verdict.message, message) != 0)
        fail_msg("body %.200s\n  expected %d '%s'\n  got      %d '%s'", body, status, message, got,
                 out.verdict.message);
    assert_int_equal(out.verdict.status, status);
    assert_null(out.req);
    assert_null(out.job);
}

/* The parse succeeds; returns the built request (release with api_parsed_release). */
static inline infer_request *parse_ok(const api_model_route *route, served_model *sm,
                                      const char *param, const char *body, api_parsed *out)
{
    int got = parse_run(route, sm, param, body, out);
    if (got != 0)
        fail_msg("body %.200s\n  expected 0, got %d '%s'", body, got, out->verdict.message);
    assert_non_null(out->req);
    for (int i = 0; i < out->req->n_items; i++)
        assert_true(out->req->n_ids[i] >= 0); /* every item set */
    return out->req;
}

/* A body whose array `key` holds n copies of `item` (malloc'd; free it). */
static inline char *parse_body_repeat(const char *prefix, const char *item, int n,
                                      const char *suffix)
{
    size_t cap = strlen(prefix) + (size_t)n * (strlen(item) + 1) + strlen(suffix) + 1;
    char *b = malloc(cap);
    assert_non_null(b);
    size_t len = (size_t)snprintf(b, cap, "%s", prefix);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len, "%s%s", i ? "," : "", item);
    snprintf(b + len, cap - len, "%s", suffix);
    return b;
}

#endif
