/* test_model_registry: loading a set (limits, workspaces, catalog), lookup
 * and per-model state, readiness reasons, the atomic swap on reload while an
 * old model is still referenced, a failed reload keeping the old set, load
 * errors naming the model, and the async loader with its events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "model_registry.h"
#include "tiny_model.h"

typedef struct {
    char *cls_dir, *cls2_dir, *rec_dir;
    char tsv[512];
} fix;

static int setup(void **state)
{
    fix *f = calloc(1, sizeof *f);
    f->cls_dir = tiny_model_dir(false, 11);
    f->cls2_dir = tiny_model_dir(false, 12);
    f->rec_dir = tiny_model_dir(true, 13);
    snprintf(f->tsv, sizeof f->tsv, "%s/news.tsv", f->rec_dir);
    tiny_write(f->tsv, "N1\tc\ts\tw2 w3\nN2\tc\ts\tw4\nN3\tc\ts\tw5 w6 w7\n");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    tiny_remove(f->cls_dir);
    tiny_remove(f->cls2_dir);
    tiny_remove(f->rec_dir);
    free(f);
    return 0;
}

static void encode_one(served_model *sm, float *out)
{
    int32_t ids[3] = {2, 3, 4}, n = 3;
    const int32_t *rows[1] = {ids};
    model_encode_ids(sm->model, sm->ws[0], rows, &n, 1, out);
}

static void test_load_and_lookup(void **state)
{
    fix *f = *state;
    model_registry *reg = model_registry_new(2, NULL);
    char reason[256], err[512];
    assert_false(model_registry_ready(reg, reason, sizeof reason));
    assert_string_equal(reason, "loading");
    assert_int_equal(model_registry_state(reg, "cls"), SERVED_MODEL_UNKNOWN);

    model_spec specs[2] = {
        {.name = "cls", .path = f->cls_dir, .max_batch_size = 8, .max_batch_tokens = 4},
        {.name = "rec",
         .path = f->rec_dir,
         .news_catalog = f->tsv,
         .news_cache_entries = 8,
         .max_batch_size = 8,
         .max_batch_tokens = 64},
    };
    if (model_registry_load(reg, specs, 2, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    assert_true(model_registry_ready(reg, reason, sizeof reason));
    assert_int_equal(model_registry_state(reg, "cls"), SERVED_MODEL_READY);
    assert_int_equal(model_registry_state(reg, "rec"), SERVED_MODEL_READY);
    assert_int_equal(model_registry_state(reg, "nope"), SERVED_MODEL_UNKNOWN);
    assert_null(model_registry_get(reg, "nope"));

    served_model *cls = model_registry_get(reg, "cls");
    assert_non_null(cls);
    assert_string_equal(cls->name, "cls");
    assert_string_equal(cls->path, f->cls_dir);
    assert_int_equal(cls->n_workers, 2);
    assert_non_null(cls->ws[0]);
    assert_non_null(cls->ws[1]);
    assert_int_equal(cls->max_batch_size, 8);
    assert_int_equal(cls->max_batch_tokens, TINY_P); /* raised: one whole text must fit */
    assert_null(cls->catalog);
    assert_null(cls->cache);
    assert_true(cls->load_time_unix_ms > 0 && cls->load_seconds >= 0.0);

    served_model *rec = model_registry_get(reg, "rec");
    assert_non_null(rec->catalog);
    assert_int_equal(news_catalog_count(rec->catalog), 3);
    assert_non_null(rec->cache);
    assert_true(rec->ws[0]->max_tokens >= TINY_UP);

    served_model *list[4];
    assert_int_equal(model_registry_list(reg, list, 4), 2);
    assert_ptr_equal(list[0], cls); /* configuration order */
    assert_ptr_equal(list[1], rec);
    served_model_release(list[0]);
    served_model_release(list[1]);
    assert_int_equal(model_registry_list(reg, list, 1), 2); /* only 1 filled */
    served_model_release(list[0]);

    model_registry_stats st;
    model_registry_stats_get(reg, &st);
    assert_int_equal(st.generation, 1);
    assert_int_equal(st.loads_ok, 1);
    assert_int_equal(st.loads_failed, 0);
    served_model_release(cls);
    served_model_release(rec);
    model_registry_free(reg);
}

/* A reload swaps the whole set; a model still referenced (a request in
 * flight) stays usable and is freed with its last reference. */
static void test_reload_swaps_and_keeps_old_alive(void **state)
{
    fix *f = *state;
    model_registry *reg = model_registry_new(1, NULL);
    char err[512];
    model_spec v1 = {.name = "m", .path = f->cls_dir, .max_batch_size = 4, .max_batch_tokens = 32};
    assert_int_equal(model_registry_load(reg, &v1, 1, err, sizeof err), 0);
    served_model *old = model_registry_get(reg, "m");
    float before[TINY_D], after[TINY_D], fresh[TINY_D];
    encode_one(old, before);

    model_spec v2 = {.name = "m", .path = f->cls2_dir, .max_batch_size = 4, .max_batch_tokens = 32};
    assert_int_equal(model_registry_load(reg, &v2, 1, err, sizeof err), 0);
    served_model *cur = model_registry_get(reg, "m");
    assert_ptr_not_equal(cur, old);
    assert_string_equal(cur->path, f->cls2_dir);
    encode_one(old, after); /* still alive: the registry dropped only its own reference */
    assert_memory_equal(before, after, sizeof before);
    encode_one(cur, fresh);
    assert_memory_not_equal(before, fresh, sizeof before); /* other weights */
    served_model_release(old);                             /* frees it (ASan checks) */

    model_registry_stats st;
    model_registry_stats_get(reg, &st);
    assert_int_equal(st.generation, 2);
    served_model_release(cur);
    model_registry_free(reg);
}

/* A reload with one bad model keeps the old set, counts the failure and
 * stays ready; the first load failing makes readiness report the error. */
static void test_failed_loads(void **state)
{
    fix *f = *state;
    model_registry *reg = model_registry_new(1, NULL);
    char err[512], reason[600], want[700];
    model_spec bad = {
        .name = "m", .path = "/nonexistent/dir", .max_batch_size = 4, .max_batch_tokens = 32};
    assert_int_equal(model_registry_load(reg, &bad, 1, err, sizeof err), -1);
    if (strncmp(err, "model 'm': /nonexistent/dir/", 28) != 0)
        fail_msg("unexpected error: %s", err);
    assert_false(model_registry_ready(reg, reason, sizeof reason));
    snprintf(want, sizeof want, "failed: %s", err);
    assert_string_equal(reason, want);
    assert_int_equal(model_registry_state(reg, "m"), SERVED_MODEL_FAILED);

    model_spec good[2] = {
        {.name = "m", .path = f->cls_dir, .max_batch_size = 4, .max_batch_tokens = 32},
        {.name = "r", .path = f->rec_dir, .max_batch_size = 4, .max_batch_tokens = 32},
    };
    assert_int_equal(model_registry_load(reg, good, 2, err, sizeof err), 0);
    assert_true(model_registry_ready(reg, reason, sizeof reason));
    served_model *m = model_registry_get(reg, "m");

    /* second model broken: nothing of the new set is served */
    model_spec half[2] = {
        {.name = "m", .path = f->cls2_dir, .max_batch_size = 4, .max_batch_tokens = 32},
        {.name = "x", .path = "/nonexistent/x", .max_batch_size = 4, .max_batch_tokens = 32},
    };
    assert_int_equal(model_registry_load(reg, half, 2, err, sizeof err), -1);
    assert_true(strncmp(err, "model 'x': ", 11) == 0);
    served_model *still = model_registry_get(reg, "m");
    assert_ptr_equal(still, m);
    served_model *r = model_registry_get(reg, "r");
    assert_non_null(r);
    served_model_release(r);
    assert_null(model_registry_get(reg, "x"));
    assert_int_equal(model_registry_state(reg, "m"), SERVED_MODEL_READY);
    assert_int_equal(model_registry_state(reg, "x"), SERVED_MODEL_FAILED);
    assert_true(model_registry_ready(reg, reason, sizeof reason));
    model_registry_stats st;
    model_registry_stats_get(reg, &st);
    assert_int_equal(st.generation, 1);
    assert_int_equal(st.loads_failed, 2);
    assert_int_equal(st.loads_ok, 1);
    served_model_release(still);
    served_model_release(m);
    model_registry_free(reg);
}

static void test_config_errors(void **state)
{
    fix *f = *state;
    model_registry *reg = model_registry_new(1, NULL);
    char err[512], want[800];
    model_spec cat = {.name = "c",
                      .path = f->cls_dir,
                      .news_catalog = f->tsv,
                      .max_batch_size = 4,
                      .max_batch_tokens = 32};
    assert_int_equal(model_registry_load(reg, &cat, 1, err, sizeof err), -1);
    assert_string_equal(err, "model 'c': news_catalog is only for news-recommendation models, "
                             "this one is a classification model");
    model_spec dup[2] = {
        {.name = "a", .path = f->cls_dir, .max_batch_size = 4, .max_batch_tokens = 32},
        {.name = "a", .path = f->cls2_dir, .max_batch_size = 4, .max_batch_tokens = 32},
    };
    assert_int_equal(model_registry_load(reg, dup, 2, err, sizeof err), -1);
    assert_string_equal(err, "model 'a' is configured twice");
    model_spec nocat = {.name = "r",
                        .path = f->rec_dir,
                        .news_catalog = "/nonexistent/news.tsv",
                        .max_batch_size = 4,
                        .max_batch_tokens = 32};
    assert_int_equal(model_registry_load(reg, &nocat, 1, err, sizeof err), -1);
    assert_string_equal(err, "model 'r': /nonexistent/news.tsv: cannot read: No such file or "
                             "directory");
    char badtsv[600];
    snprintf(badtsv, sizeof badtsv, "%s/config.json", f->rec_dir); /* not a TSV */
    model_spec wrong = {.name = "r",
                        .path = f->rec_dir,
                        .news_catalog = badtsv,
                        .max_batch_size = 4,
                        .max_batch_tokens = 32};
    assert_int_equal(model_registry_load(reg, &wrong, 1, err, sizeof err), -1);
    snprintf(want, sizeof want, "model 'r': %s:1: ", badtsv);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("unexpected error: %s", err);
    model_registry_free(reg);
}

/* ---- async ------------------------------------------------------------------------ */

typedef struct {
    model_registry *reg;
    int progress, loaded, ok;
    bool saw_catalog, saw_ready, saw_raised;
    char last[512];
    int reentry_rc;
    char reentry_err[128];
} events_log;

static void ev_progress(void *user, const char *msg)
{
    events_log *e = user;
    e->progress++;
    if (strstr(msg, "encoded 3/3 news titles"))
        e->saw_catalog = true;
    if (strncmp(msg, "model 'rec' (news-recommendation) ready in ", 43) == 0 &&
        strstr(msg, ": 1 workspace of 24 tokens / 2 sequences, ")) /* 2 texts x 12 < 32 */
        e->saw_ready = true;
    if (strcmp(msg, "model 'rec': max_batch_tokens 8 raised to 12, the model's longest text") == 0)
        e->saw_raised = true;
    /* a load while one runs is refused (here, from the loader itself) */
    if (e->progress == 1)
        e->reentry_rc = model_registry_load(e->reg, NULL, 0, e->reentry_err, sizeof e->reentry_err);
}

static void ev_loaded(void *user, bool ok, const char *msg)
{
    events_log *e = user;
    e->loaded++;
    e->ok = ok;
    snprintf(e->last, sizeof e->last, "%s", msg);
}

/* Announced names are listed as loading before any load runs; the load
 * that follows serves them. */
static void test_announce_lists_names_before_the_load(void **state)
{
    fix *f = *state;
    model_registry *reg = model_registry_new(1, NULL);
    char names[4][MODEL_REGISTRY_NAME_CAP];
    served_model_state states[4];
    assert_int_equal(model_registry_unserved(reg, names, states, 4), 0);
    model_spec specs[2] = {{.name = "cls", .path = f->cls_dir},
                           {.name = "cls2", .path = f->cls2_dir}};
    assert_int_equal(model_registry_announce(reg, specs, 2), 0);
    assert_int_equal(model_registry_unserved(reg, names, states, 4), 2);
    assert_string_equal(names[0], "cls");
    assert_string_equal(names[1], "cls2");
    assert_int_equal(states[0], SERVED_MODEL_LOADING);
    assert_int_equal(states[1], SERVED_MODEL_LOADING);
    assert_int_equal(model_registry_state(reg, "cls2"), SERVED_MODEL_LOADING);
    assert_int_equal(model_registry_state(reg, "other"), SERVED_MODEL_UNKNOWN);
    char reason[64], err[256];
    assert_false(model_registry_ready(reg, reason, sizeof reason));
    assert_string_equal(reason, "loading");
    assert_int_equal(model_registry_load_async(reg, specs, 2, err, sizeof err), 0);
    model_registry_join_loader(reg);
    assert_int_equal(model_registry_unserved(reg, names, states, 4), 0);
    assert_int_equal(model_registry_state(reg, "cls"), SERVED_MODEL_READY);
    model_registry_free(reg);
}

static void test_async_load_and_events(void **state)
{
    fix *f = *state;
    events_log e = {0};
    model_registry_events ev = {.user = &e, .on_progress = ev_progress, .on_loaded = ev_loaded};
    model_registry *reg = model_registry_new(1, &ev);
    e.reg = reg;
    model_spec specs[1] = {{.name = "rec",
                            .path = f->rec_dir,
                            .news_catalog = f->tsv,
                            .max_batch_size = 2,
                            .max_batch_tokens = 32}};
    char err[256];
    assert_int_equal(model_registry_load_async(reg, specs, 1, err, sizeof err), 0);
    model_registry_join_loader(reg);
    assert_false(model_registry_loading(reg));
    assert_int_equal(e.loaded, 1);
    assert_true(e.ok);
    if (strncmp(e.last, "loaded 1 model in ", 18) != 0)
        fail_msg("unexpected on_loaded message: %s", e.last);
    assert_true(e.saw_catalog);
    assert_true(e.saw_ready);
    assert_int_equal(e.reentry_rc, -1);
    assert_string_equal(e.reentry_err, "a model load is already running");
    assert_true(model_registry_ready(reg, NULL, 0));

    /* a token budget below one whole text is raised, and said so */
    model_spec small = {
        .name = "rec", .path = f->rec_dir, .max_batch_size = 2, .max_batch_tokens = 8};
    assert_int_equal(model_registry_load_async(reg, &small, 1, err, sizeof err), 0);
    model_registry_join_loader(reg);
    assert_true(e.saw_raised);
    served_model *small_sm = model_registry_get(reg, "rec");
    assert_int_equal(small_sm->max_batch_tokens, TINY_P);
    served_model_release(small_sm);

    /* a failing async reload reports through on_loaded and keeps the set */
    model_spec bad = {
        .name = "rec", .path = "/nonexistent", .max_batch_size = 2, .max_batch_tokens = 32};
    assert_int_equal(model_registry_load_async(reg, &bad, 1, err, sizeof err), 0);
    model_registry_join_loader(reg);
    assert_int_equal(e.loaded, 3);
    assert_false(e.ok);
    assert_true(strncmp(e.last, "model 'rec': /nonexistent/", 26) == 0);
    served_model *sm = model_registry_get(reg, "rec");
    assert_non_null(sm);
    assert_string_equal(sm->path, f->rec_dir);
    served_model_release(sm);
    model_registry_free(reg);
}

typedef struct {
    int calls;
    bool ok;
    char message[600];
} done_log;

static void on_done(void *user, bool ok, const char *message)
{
    done_log *d = user;
    d->calls++;
    d->ok = ok;
    snprintf(d->message, sizeof d->message, "%s", message);
}

/* One model loaded, replaced, failed and unloaded on its own while the
 * other keeps serving, with per-model states and the events. */
static void test_load_one_and_unload(void **state)
{
    fix *f = *state;
    events_log e = {0};
    model_registry_events ev = {.user = &e, .on_progress = ev_progress, .on_loaded = ev_loaded};
    model_registry *reg = model_registry_new(1, &ev);
    e.reg = reg;
    char err[256];
    model_spec cls = {
        .name = "cls", .path = f->cls_dir, .max_batch_size = 4, .max_batch_tokens = 64};
    model_spec rec = {
        .name = "rec", .path = f->rec_dir, .max_batch_size = 4, .max_batch_tokens = 64};
    if (model_registry_load(reg, &cls, 1, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    served_model *cls_before = model_registry_get(reg, "cls");

    /* a model the set does not have joins it */
    done_log d = {0};
    assert_int_equal(model_registry_load_one_async(reg, &rec, on_done, &d, err, sizeof err), 0);
    model_registry_join_loader(reg);
    assert_int_equal(d.calls, 1);
    assert_true(d.ok);
    if (strncmp(d.message, "loaded model 'rec' in ", 22) != 0)
        fail_msg("unexpected message: %s", d.message);
    assert_string_equal(e.last, d.message);
    assert_int_equal(model_registry_state(reg, "rec"), SERVED_MODEL_READY);
    served_model *cls_now = model_registry_get(reg, "cls");
    assert_ptr_equal(cls_now, cls_before); /* the other model was not touched */
    served_model_release(cls_now);
    served_model *list[4];
    assert_int_equal(model_registry_list(reg, list, 4), 2);
    served_model_release(list[0]);
    served_model_release(list[1]);

    /* loading it again replaces it; a request holding the old one keeps it */
    served_model *rec_old = model_registry_get(reg, "rec");
    assert_int_equal(model_registry_load_one_async(reg, &rec, on_done, &d, err, sizeof err), 0);
    model_registry_join_loader(reg);
    assert_true(d.ok);
    served_model *rec_new = model_registry_get(reg, "rec");
    assert_ptr_not_equal(rec_new, rec_old);
    assert_string_equal(rec_old->name, "rec"); /* still alive */
    served_model_release(rec_old);
    served_model_release(rec_new);
    assert_int_equal(model_registry_list(reg, list, 4), 2);
    served_model_release(list[0]);
    served_model_release(list[1]);

    /* a failing load keeps the served version; the state says FAILED only
     * while nothing of that name is served */
    model_spec bad = {
        .name = "rec", .path = "/nonexistent", .max_batch_size = 4, .max_batch_tokens = 64};
    assert_int_equal(model_registry_load_one_async(reg, &bad, on_done, &d, err, sizeof err), 0);
    model_registry_join_loader(reg);
    assert_false(d.ok);
    assert_true(strncmp(d.message, "model 'rec': /nonexistent/", 26) == 0);
    assert_false(e.ok);
    assert_int_equal(model_registry_state(reg, "rec"), SERVED_MODEL_READY);

    /* unload: gone from the set, UNLOADED, listed as unserved; twice is 0 */
    int loaded_before = e.loaded;
    assert_int_equal(model_registry_unload(reg, "rec", err, sizeof err), 1);
    assert_int_equal(e.loaded, loaded_before + 1);
    assert_string_equal(e.last, "unloaded model 'rec'");
    assert_null(model_registry_get(reg, "rec"));
    assert_int_equal(model_registry_state(reg, "rec"), SERVED_MODEL_UNLOADED);
    assert_int_equal(model_registry_unload(reg, "rec", err, sizeof err), 0);
    assert_int_equal(model_registry_unload(reg, "nope", err, sizeof err), 0);
    assert_int_equal(e.loaded, loaded_before + 1);
    char names[4][MODEL_REGISTRY_NAME_CAP];
    served_model_state states[4];
    assert_int_equal(model_registry_unserved(reg, names, states, 4), 1);
    assert_string_equal(names[0], "rec");
    assert_int_equal(states[0], SERVED_MODEL_UNLOADED);
    assert_true(model_registry_ready(reg, NULL, 0));

    /* a failed load of an unloaded model: FAILED; a good one serves it again */
    assert_int_equal(model_registry_load_one_async(reg, &bad, on_done, &d, err, sizeof err), 0);
    model_registry_join_loader(reg);
    assert_int_equal(model_registry_state(reg, "rec"), SERVED_MODEL_FAILED);
    assert_int_equal(model_registry_load_one_async(reg, &rec, on_done, &d, err, sizeof err), 0);
    model_registry_join_loader(reg);
    assert_int_equal(model_registry_state(reg, "rec"), SERVED_MODEL_READY);

    /* a whole-set load resets the per-model states */
    assert_int_equal(model_registry_unload(reg, "rec", err, sizeof err), 1);
    model_spec both[2] = {cls, rec};
    if (model_registry_load(reg, both, 2, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    assert_int_equal(model_registry_state(reg, "rec"), SERVED_MODEL_READY);
    assert_int_equal(model_registry_unserved(reg, names, states, 4), 0);
    served_model_release(cls_before);
    model_registry_free(reg);
}

/* While any load runs, a one-model load and an unload are refused. */
static void test_one_model_refused_while_loading(void **state)
{
    fix *f = *state;
    model_registry *reg = model_registry_new(1, NULL);
    char err[256];
    model_spec rec = {.name = "rec",
                      .path = f->rec_dir,
                      .news_catalog = f->tsv,
                      .max_batch_size = 4,
                      .max_batch_tokens = 64};
    assert_int_equal(model_registry_load_async(reg, &rec, 1, err, sizeof err), 0);
    /* the loader may finish at any moment: only a refusal while it runs is checked */
    int rc = model_registry_unload(reg, "rec", err, sizeof err);
    if (rc < 0)
        assert_string_equal(err, "a model load is running");
    done_log d = {0};
    rc = model_registry_load_one_async(reg, &rec, on_done, &d, err, sizeof err);
    if (rc < 0)
        assert_string_equal(err, "a model load is already running");
    model_registry_join_loader(reg);
    assert_int_equal(d.calls, rc == 0 ? 1 : 0);
    model_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_one_and_unload),
        cmocka_unit_test(test_one_model_refused_while_loading),
        cmocka_unit_test(test_load_and_lookup),
        cmocka_unit_test(test_reload_swaps_and_keeps_old_alive),
        cmocka_unit_test(test_failed_loads),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_async_load_and_events),
        cmocka_unit_test(test_announce_lists_names_before_the_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
