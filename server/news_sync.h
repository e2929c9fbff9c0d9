/* news_sync: the thread that brings into each served news catalog what other
 * replicas wrote to a store they share (PostgreSQL): every interval it asks
 * each catalog to apply its store's changes (news_catalog_sync), which costs
 * a lock and a flag check unless the store was notified of a change. An item
 * written under other weights (another digest, e.g. during a rolling
 * upgrade) is encoded here with the model's news encoder, in a workspace of
 * its own made for the occasion.
 *
 * Start after the registry, stop before freeing it. */
#ifndef FF_NEWS_SYNC_H
#define FF_NEWS_SYNC_H

#include <stddef.h>

#include "compiler.h"
#include "model_registry.h"

/* The interval between two rounds: with LISTEN/NOTIFY a change is in
 * memory at most this long (plus the encoding, if any) after its commit. */
#define NEWS_SYNC_INTERVAL_MS 50

typedef struct news_sync news_sync;

/* Starts the thread (borrowing reg). Returns it, or NULL with a message. */
news_sync *news_sync_start(model_registry *reg, int interval_ms, char *err, size_t err_cap);

/* Stops and joins the thread; NULL ok. */
void news_sync_stop(news_sync *s);

#endif
