/* news_store: the backend table and the thin wrappers over a store's vtable
 * (see news_store.h). */
#include "news_store.h"

#include <assert.h>
#include <stdio.h>

/* Backends in the order they are asked; the last one takes any location. */
static const news_store_backend *const backends[] = {
    &news_store_postgresql,
    &news_store_sqlite,
};

const char *news_store_status_name(news_store_status s)
{
    switch (s) {
    case NEWS_STORE_OK:
        return "ok";
    case NEWS_STORE_NOT_FOUND:
        return "not-found";
    case NEWS_STORE_FULL:
        return "full";
    case NEWS_STORE_READ_ONLY:
        return "read-only";
    case NEWS_STORE_UNAVAILABLE:
        return "unavailable";
    case NEWS_STORE_CORRUPT:
        return "corrupt";
    case NEWS_STORE_IO:
        return "io";
    case NEWS_STORE_NO_MEMORY:
        return "no-memory";
    }
    return "unknown";
}

news_store_status news_store_open(const news_store_config *cfg, news_store **out, char *err,
                                  size_t err_cap)
{
    assert(cfg && cfg->location && cfg->digest && cfg->dim >= 1 && out);
    *out = NULL;
    size_t n = sizeof backends / sizeof backends[0];
    for (size_t i = 0; i < n; i++)
        if (i == n - 1 || backends[i]->accepts(cfg->location))
            return backends[i]->open(cfg, out, err, err_cap);
    return NEWS_STORE_IO; /* unreachable: the last backend takes any location */
}

int news_store_path(const char *dir, const char *model_name, char *out, size_t out_cap)
{
    int n = snprintf(out, out_cap, "%s/%s.news.sqlite", dir, model_name);
    return n < 0 || (size_t)n >= out_cap ? -1 : 0;
}

news_store_status news_store_write(news_store *s, const news_store_op *ops, size_t n, int flags,
                                   bool *existed, char *err, size_t err_cap)
{
    assert(s && ops && n >= 1);
    return s->ops->write(s, ops, n, flags, existed, err, err_cap);
}

news_store_status news_store_put_vectors(news_store *s, const news_store_item *items, size_t n,
                                         char *err, size_t err_cap)
{
    assert(s && (items || n == 0));
    if (n == 0)
        return NEWS_STORE_OK;
    return s->ops->put_vectors(s, items, n, err, err_cap);
}

news_store_status news_store_scan(news_store *s, news_store_item_fn fn, void *user, char *err,
                                  size_t err_cap)
{
    assert(s && fn);
    return s->ops->scan(s, fn, user, err, err_cap);
}

news_store_status news_store_get(news_store *s, const char *id, size_t id_len,
                                 news_store_item_fn fn, void *user, char *err, size_t err_cap)
{
    assert(s && fn && (id || id_len == 0));
    return s->ops->get(s, id, id_len, fn, user, err, err_cap);
}

news_store_status news_store_info_get(news_store *s, news_store_info *out, char *err,
                                      size_t err_cap)
{
    assert(s && out);
    return s->ops->info(s, out, err, err_cap);
}

news_store_status news_store_poll(news_store *s, news_store_change_fn fn, void *user, char *err,
                                  size_t err_cap)
{
    assert(s && fn);
    if (!s->ops->poll)
        return NEWS_STORE_OK;
    return s->ops->poll(s, fn, user, err, err_cap);
}

int news_store_up(news_store *s)
{
    assert(s);
    if (!s->ops->reachable)
        return -1;
    return s->ops->reachable(s) ? 1 : 0;
}

void news_store_close(news_store *s)
{
    if (s)
        s->ops->close(s);
}
