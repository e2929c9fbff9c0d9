/* fuzz_api: every model route's request parsing (JSON body -> items) and
 * answering, in-process: the real handlers of api_v1.c and oip.c with the
 * real registry (tiny fixture models), batcher and worker, behind the fake
 * transport of fake_http.c. The worker runs on this thread, so an accepted
 * request is computed and answered by its finish function too.
 *
 * Input: byte 0 picks the route (its low 4 bits; '@'..'O' are 0..15, see
 * fuzz_routes), the rest is the request body. Checks, besides ASan/UBSan:
 * the transport contract (fake_http.h), no 500 (nothing runs out of memory
 * here), every error is {"error": {"code": status, "type", "message"}}, a 200
 * holds no null (a NaN or infinite output), and the queue is empty after
 * every request. State carried between inputs: the PUT routes replace two
 * fixed news ids in the catalog, and the news cache holds 8 vectors. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "batcher.h"
#include "fake_http.h"
#include "fuzz_common.h"
#include "log.h"
#include "metrics.h"
#include "model_registry.h"
#include "worker.h"

typedef struct {
    http_method method;
    http_handler handler;
    const char *path;
    const char *model;
    const char *param1;
} fuzz_route;

static const fuzz_route fuzz_routes[16] = {
    /* @ */ {HTTP_POST, api_v1_classify, "/v1/models/cls/classify", "cls", NULL},
    /* A */ {HTTP_POST, api_v1_classify, "/v1/models/rec/classify", "rec", NULL},
    /* B */ {HTTP_POST, api_v1_embed, "/v1/models/cls/embed", "cls", NULL},
    /* C */ {HTTP_POST, api_v1_embed, "/v1/models/rec/embed", "rec", NULL},
    /* D */ {HTTP_POST, api_v1_recommend, "/v1/models/rec/recommend", "rec", NULL},
    /* E */ {HTTP_POST, api_v1_recommend, "/v1/models/cls/recommend", "cls", NULL},
    /* F */ {HTTP_PUT, api_v1_news_put, "/v1/models/rec/news/Nfz", "rec", "Nfz"},
    /* G */ {HTTP_PUT, api_v1_news_put, "/v1/models/rec/news/N101", "rec", "N101"},
    /* H */ {HTTP_POST, oip_infer, "/v2/models/cls/infer", "cls", NULL},
    /* I */ {HTTP_POST, oip_infer, "/v2/models/rec/infer", "rec", NULL},
    /* J */ {HTTP_POST, oip_infer, "/v2/models/nope/infer", "nope", NULL},
    /* K */ {HTTP_POST, api_v1_classify, "/v1/models/nope/classify", "nope", NULL},
    /* L */ {HTTP_PUT, api_v1_news_put, "/v1/models/bare/news/N1", "bare", "N1"},
    /* M */ {HTTP_GET, oip_model_metadata, "/v2/models/cls", "cls", NULL},
    /* N */ {HTTP_GET, api_v1_model, "/v1/models/rec", "rec", NULL},
    /* O */ {HTTP_POST, api_v1_recommend, "/v1/models/bare/recommend", "bare", NULL},
};

static model_registry *fuzz_registry;
static batcher *fuzz_batcher;
static batcher_work *fuzz_work;
static metrics *fuzz_metrics;
static api_context fuzz_ctx;
static bool fuzz_verbose; /* FUZZ_VERBOSE=1: print every answer (for checking seeds) */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_verbose = getenv("FUZZ_VERBOSE") != NULL;
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
        log_set_fd(devnull); /* the access log still formats every line */
    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_DEBUG);

    char cls[1024], rec[1024], news[1024], err[512];
    fuzz_fixture_path(cls, sizeof cls, "classifier_f32");
    fuzz_fixture_path(rec, sizeof rec, "newsrec");
    fuzz_fixture_path(news, sizeof news, "mind-tiny/news.tsv");
    model_spec specs[] = {
        {.name = "cls", .path = cls, .max_batch_size = 8, .max_batch_tokens = 64},
        {.name = "rec",
         .path = rec,
         .news_catalog = news,
         .news_cache_entries = 8,
         .max_batch_size = 8,
         .max_batch_tokens = 64},
        /* a recommender without catalog or cache */
        {.name = "bare", .path = rec, .max_batch_size = 3, .max_batch_tokens = 1},
    };
    fuzz_registry = model_registry_new(1, NULL);
    if (!fuzz_registry ||
        model_registry_load(fuzz_registry, specs, (int)(sizeof specs / sizeof specs[0]), err,
                            sizeof err) != 0) {
        fprintf(stderr, "fuzz_api: loading the fixture models: %s (set FUZZ_FIXTURES)\n", err);
        exit(2);
    }
    batcher_limits lim = {.max_queue = 4,
                          .max_queue_items = 2 * API_MAX_INPUTS,
                          .max_batch_size = 8,
                          .max_queue_delay_us = 0};
    fuzz_batcher = batcher_new(&lim);
    fuzz_work = fuzz_batcher ? batcher_work_new(fuzz_batcher) : NULL;
    fuzz_metrics = metrics_new();
    if (!fuzz_work || !fuzz_metrics) {
        fprintf(stderr, "fuzz_api: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        metrics_model_register(fuzz_metrics, specs[i].name);
    fuzz_ctx.registry = fuzz_registry;
    fuzz_ctx.batcher = fuzz_batcher;
    fuzz_ctx.metrics = fuzz_metrics;
    fuzz_ctx.version = "fuzz";
    atomic_init(&fuzz_ctx.draining, false);
    return 0;
}

/* A 200 answer must not hold null: api_json_float writes NaN and Inf as null. */
static void no_null_check(const json_t *j, const char *path)
{
    FUZZ_CHECK(!json_is_null(j), "%s: null in a 200 answer (NaN or Inf output?)", path);
    size_t i;
    const char *key;
    json_t *v;
    if (json_is_array(j)) {
        json_array_foreach((json_t *)j, i, v) no_null_check(v, path);
    } else if (json_is_object(j)) {
        json_object_foreach((json_t *)j, key, v) no_null_check(v, path);
    }
}

static void answer_check(const fuzz_route *rt, int status, const json_t *resp)
{
    FUZZ_CHECK(status != 500, "%s: 500", rt->path);
    FUZZ_CHECK(resp, "%s: status %d without a JSON body", rt->path, status);
    if (status >= 400) {
        json_t *e = json_object_get(resp, "error");
        FUZZ_CHECK(json_is_object(e) && json_object_size(resp) == 1, "%s: error shape", rt->path);
        json_t *code = json_object_get(e, "code");
        FUZZ_CHECK(json_is_integer(code) && json_integer_value(code) == status,
                   "%s: error code != status %d", rt->path, status);
        FUZZ_CHECK(json_is_string(json_object_get(e, "type")) &&
                       json_is_string(json_object_get(e, "message")),
                   "%s: error type/message", rt->path);
        return;
    }
    FUZZ_CHECK(status == 200 || status == 201, "%s: status %d", rt->path, status);
    no_null_check(resp, rt->path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const fuzz_route *rt = &fuzz_routes[data[0] & 15];
    http_request *r =
        fake_http_request_new(rt->method, rt->path, rt->model, rt->param1, data + 1, size - 1);
    rt->handler(r, &fuzz_ctx);
    while (fake_http_request_waiting(r)) {
        batcher_next_status st = batcher_try_next(fuzz_batcher, fuzz_work);
        FUZZ_CHECK(st == BATCHER_NEXT_WORK, "%s: parked, but the batcher has no work (%d)",
                   rt->path, (int)st);
        worker_run(0, fuzz_batcher, fuzz_work, NULL);
    }
    int status = fake_http_request_finish(r);
    api_on_complete(r, &fuzz_ctx);
    if (fuzz_verbose) {
        char *text = json_dumps(fake_http_request_response(r), JSON_COMPACT);
        fprintf(stderr, "%s -> %d %.300s\n", rt->path, status, text ? text : "(none)");
        free(text);
    }
    answer_check(rt, status, fake_http_request_response(r));
    fake_http_request_free(r);

    batcher_stats bs;
    batcher_stats_get(fuzz_batcher, &bs);
    FUZZ_CHECK(bs.queue_items == 0 && bs.queue_requests == 0 && bs.busy_workers == 0,
               "%s: the queue is not empty afterwards (%d items, %d requests, %d busy)", rt->path,
               bs.queue_items, bs.queue_requests, bs.busy_workers);
    return 0;
}
