/* test_constructors: every constructor cleans up through its *_free when an
 * allocation fails part way. The link wraps the allocator (see the Makefile):
 * each test fails the 1st, 2nd, 3rd ... allocation of one constructor call in
 * turn until the call succeeds, and checks after each failure that it
 * returned the failure and that every block it allocated was freed (the
 * count of live wrapped blocks is back where it was; ASan/LSan also watch). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batcher.h"
#include "fastformer.h"
#include "mind.h"
#include "model.h"
#include "news_cache.h"
#include "news_catalog.h"
#include "settings.h"
#include "vocab.h"

/* ---- the wrapped allocator ---------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
char *__wrap_strdup(const char *s);
void __wrap_free(void *p);

static long fail_countdown = -1; /* fail the allocation this many from now; -1: none */
static bool failed;              /* an allocation was failed since arm() */
static long live;                /* wrapped blocks not freed yet */

static bool fail_now(void)
{
    if (fail_countdown < 0)
        return false;
    if (fail_countdown-- > 0)
        return false;
    failed = true;
    return true;
}

void *__wrap_malloc(size_t n)
{
    void *p = fail_now() ? NULL : __real_malloc(n);
    live += p != NULL;
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p = fail_now() ? NULL : __real_calloc(n, size);
    live += p != NULL;
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (fail_now())
        return NULL;
    void *q = __real_realloc(p, n);
    live += p == NULL && q != NULL;
    return q;
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    void *p = fail_now() ? NULL : __real_aligned_alloc(align, n);
    live += p != NULL;
    return p;
}

char *__wrap_strdup(const char *s)
{
    char *p = fail_now() ? NULL : __real_strdup(s);
    live += p != NULL;
    return p;
}

void __wrap_free(void *p)
{
    live -= p != NULL;
    __real_free(p);
}

static void arm(long nth)
{
    fail_countdown = nth;
    failed = false;
}

/* Runs `build` (0 on success, -1 on failure, freeing on its own) with
 * allocation 0, 1, 2, ... failing, until it succeeds without a failed
 * allocation; every failed run must return -1 and leave no block behind.
 * Returns how many allocations the successful run made. */
static long every_failure(const char *what, int (*build)(void *ctx), void *ctx)
{
    for (long nth = 0; nth < 100000; nth++) {
        long before = live;
        arm(nth);
        int rc = build(ctx);
        fail_countdown = -1; /* keeps `failed` */
        if (!failed) {
            if (rc != 0)
                fail_msg("%s failed without a failed allocation", what);
            return nth;
        }
        if (rc != -1)
            fail_msg("%s: allocation %ld failed, but it reported success", what, nth);
        if (live != before)
            fail_msg("%s: allocation %ld failed and %ld block(s) stayed allocated", what, nth,
                     live - before);
    }
    fail_msg("%s: no end to its allocations", what);
    return -1;
}

/* ---- the constructors --------------------------------------------------- */

static int build_batcher(void *ctx)
{
    (void)ctx;
    batcher_limits lim = {.max_queue = 4, .max_batch_size = 8, .max_queue_delay_us = 0};
    batcher *b = batcher_new(&lim);
    if (!b)
        return -1;
    batcher_work *w = batcher_work_new(b);
    if (!w) {
        batcher_free(b);
        return -1;
    }
    batcher_work_free(w);
    batcher_free(b);
    return 0;
}

static int build_news_cache(void *ctx)
{
    (void)ctx;
    news_cache *c = news_cache_new(8, 4, 6);
    if (!c)
        return -1;
    news_cache_free(c);
    return 0;
}

static int build_news_catalog(void *ctx)
{
    (void)ctx;
    news_catalog *c = news_catalog_new(4, 8);
    if (!c)
        return -1;
    news_catalog_release(c);
    return 0;
}

static int build_workspace(void *ctx)
{
    (void)ctx;
    fastformer_dims dims = {.hidden_size = 8,
                            .num_attention_heads = 2,
                            .intermediate_size = 16,
                            .num_hidden_layers = 1,
                            .max_position_embeddings = 4};
    fastformer_workspace *ws = fastformer_workspace_new(&dims, 8, 2);
    if (!ws)
        return -1;
    fastformer_workspace_free(ws);
    return 0;
}

static int build_vocab(void *ctx)
{
    (void)ctx;
    const char text[] = "[PAD]\n[UNK]\nhello\nworld\n";
    vocab *v = NULL;
    char err[128];
    if (vocab_parse(text, sizeof text - 1, &v, err, sizeof err) != 0)
        return -1;
    vocab_free(v);
    return 0;
}

static int build_mind(void *ctx)
{
    (void)ctx;
    const char news[] = "N1\tsports\tgolf\tA title\tAn abstract\thttp://x\t[]\t[]\n"
                        "N2\tnews\tworld\tAnother\t\t\t[]\t[]\n";
    const char behaviors[] = "1\tU1\t11/11/2019 9:05:58 AM\tN1 N2\tN1-1 N2-0\n";
    mind_news_table *t = NULL;
    mind_behaviors *b = NULL;
    char err[128];
    if (mind_news_parse(news, sizeof news - 1, NULL, &t, err, sizeof err) != 0)
        return -1;
    if (mind_behaviors_parse(behaviors, sizeof behaviors - 1, NULL, &b, err, sizeof err) != 0) {
        mind_news_free(t);
        return -1;
    }
    mind_behaviors_free(b);
    mind_news_free(t);
    return 0;
}

static int build_settings(void *ctx)
{
    (void)ctx;
    const char yaml[] = "server:\n  api_key: k\nmodels:\n  - name: a\n    path: p\n"
                        "    news_catalog: n.tsv\n  - name: b\n    path: q\n";
    settings s;
    char err[256];
    if (settings_parse(&s, yaml, sizeof yaml - 1, "conf/x.yaml", err, sizeof err) != 0) {
        settings_free(&s);
        return -1;
    }
    const char *const models[] = {"c=dir"};
    settings_overrides o = {.models = models, .n_models = 1};
    int rc = settings_apply_overrides(&s, &o, err, sizeof err);
    settings_free(&s);
    return rc;
}

static int build_model(void *ctx)
{
    model *m = NULL;
    char err[512];
    if (model_load((const char *)ctx, &m, err, sizeof err) != 0)
        return -1;
    model_free(m);
    return 0;
}

static void test_batcher(void **state)
{
    (void)state;
    assert_true(every_failure("batcher_new + batcher_work_new", build_batcher, NULL) >= 14);
}

static void test_news_cache(void **state)
{
    (void)state;
    assert_true(every_failure("news_cache_new", build_news_cache, NULL) >= 9);
}

static void test_news_catalog(void **state)
{
    (void)state;
    assert_true(every_failure("news_catalog_new", build_news_catalog, NULL) >= 5);
}

static void test_workspace(void **state)
{
    (void)state;
    assert_true(every_failure("fastformer_workspace_new", build_workspace, NULL) >= 2);
}

static void test_vocab(void **state)
{
    (void)state;
    assert_true(every_failure("vocab_parse", build_vocab, NULL) >= 4);
}

static void test_mind(void **state)
{
    (void)state;
    assert_true(every_failure("mind_news_parse + mind_behaviors_parse", build_mind, NULL) >= 4);
}

static void test_settings(void **state)
{
    (void)state;
    assert_true(every_failure("settings_parse + overrides", build_settings, NULL) >= 6);
}

static void test_model(void **state)
{
    (void)state;
    assert_true(every_failure("model_load", build_model, "tests/fixtures/classifier_f32") >= 4);
    assert_true(every_failure("model_load", build_model, "tests/fixtures/newsrec") >= 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batcher),      cmocka_unit_test(test_news_cache),
        cmocka_unit_test(test_news_catalog), cmocka_unit_test(test_workspace),
        cmocka_unit_test(test_vocab),        cmocka_unit_test(test_mind),
        cmocka_unit_test(test_settings),     cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
