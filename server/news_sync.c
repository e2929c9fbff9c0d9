/* news_sync: other replicas' news writes into the served catalogs (see news_sync.h). */
#include "news_sync.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error_message.h"
#include "fastformer.h"
#include "log.h"
#include "news_catalog.h"
#include "news_catalog_load.h"

/* Models synced per round (as many as the metrics can name). */
#define NEWS_SYNC_MAX_MODELS 64

struct news_sync {
    model_registry *reg;
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping; /* under mu */
    /* The last sync error per model slot, logged once until it changes. */
    char last_error[NEWS_SYNC_MAX_MODELS][256];
};

/* The encoder of one model for one round: its workspace is made at the
 * first title and freed after the round. */
typedef struct {
    const served_model *sm;
    fastformer_workspace *ws;
} sync_encoder;

static int encode_title(void *user, const char *title, size_t title_len, float *out, char *err,
                        size_t err_cap)
{
    sync_encoder *e = user;
    const model *m = e->sm->model;
    int P = model_max_tokens(m);
    if (!e->ws && !(e->ws = model_workspace_new(m, P, 1))) {
        error_message_set(err, err_cap, "out of memory for a workspace");
        return -1;
    }
    news_catalog_source src = {
        .m = m, .ws = e->ws, .max_batch_size = 1, .max_batch_tokens = P, .model_name = e->sm->name};
    const char *titles[1] = {title};
    size_t lens[1] = {title_len}, bad = 0;
    return news_encode_titles(&src, titles, lens, 1, out, &bad, err, err_cap);
}

static void sync_model(news_sync *s, int slot, served_model *sm)
{
    sync_encoder enc = {.sm = sm};
    news_sync_result res;
    char err[256] = "";
    news_store_status st =
        news_catalog_sync(sm->catalog, encode_title, &enc, &res, err, sizeof err);
    fastformer_workspace_free(enc.ws);
    if (res.skipped)
        log_warn("model '%s': %zu news item%s written by another replica not applied here; %s",
                 sm->name, res.skipped, res.skipped == 1 ? "" : "s", res.first_skip);
    if (slot >= NEWS_SYNC_MAX_MODELS)
        return;
    /* A store that cannot be reached logs that itself, once; other
     * failures are logged here once until they change. */
    if (st == NEWS_STORE_OK || st == NEWS_STORE_UNAVAILABLE) {
        s->last_error[slot][0] = '\0';
    } else if (strcmp(s->last_error[slot], err) != 0) {
        snprintf(s->last_error[slot], sizeof s->last_error[slot], "%s", err);
        log_warn("model '%s': reading other replicas' news writes: %s", sm->name, err);
    }
}

static void *sync_main(void *arg)
{
    news_sync *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long ns = until.tv_nsec + (long)s->interval_ms * 1000000L;
        until.tv_sec += ns / 1000000000L;
        until.tv_nsec = ns % 1000000000L;
        int rc = 0;
        while (!s->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->mu);
        served_model *list[NEWS_SYNC_MAX_MODELS];
        int n = model_registry_list(s->reg, list, NEWS_SYNC_MAX_MODELS);
        if (n > NEWS_SYNC_MAX_MODELS)
            n = NEWS_SYNC_MAX_MODELS;
        for (int i = 0; i < n; i++) {
            if (list[i]->catalog)
                sync_model(s, i, list[i]);
            served_model_release(list[i]);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

news_sync *news_sync_start(model_registry *reg, int interval_ms, char *err, size_t err_cap)
{
    news_sync *s = calloc(1, sizeof *s);
    if (!s) {
        error_message_set(err, err_cap, "news sync: out of memory");
        return NULL;
    }
    s->reg = reg;
    s->interval_ms = interval_ms > 0 ? interval_ms : NEWS_SYNC_INTERVAL_MS;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, sync_main, s) != 0) {
        error_message_set(err, err_cap, "news sync: cannot start its thread");
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

void news_sync_stop(news_sync *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
