/* settings_restart: the keys a SIGHUP cannot apply to a running daemon
 * (sockets, thread counts and the sizes of buffers allocated at start), and
 * how a reload tells them apart (settings.h). */
#include "settings.h"

#include <stdbool.h>
#include <string.h>

const char *const settings_restart_keys[] = {
    "server.listen",
    "server.health_listen",
    "server.max_connections",
    "server.max_connections_per_ip",
    "batching.workers",
    "batching.blas_threads",
    "batching.engine_threads",
    "batching.max_queue",
    "batching.max_queue_delay_us",
    "server.parse_threads",
    "server.parse_threads_nice",
    "server.cors_allow_origins",
    "server.model_control",
    "server.tls_min_version",
    "server.tls_cert_file", /* turning TLS on or off; a new path is re-read on SIGHUP */
    NULL,
};

static bool strings_equal(const settings_strings *a, const settings_strings *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            return false;
    return true;
}

unsigned settings_restart_diff(const settings *a, const settings *b)
{
    const settings_server *x = &a->server, *y = &b->server;
    bool changed[] = {
        strcmp(x->listen.text, y->listen.text) != 0,
        strcmp(x->health_listen.text, y->health_listen.text) != 0,
        x->max_connections != y->max_connections,
        x->max_connections_per_ip != y->max_connections_per_ip,
        a->batching.workers != b->batching.workers,
        a->batching.blas_threads != b->batching.blas_threads,
        a->batching.engine_threads != b->batching.engine_threads,
        a->batching.max_queue != b->batching.max_queue,
        a->batching.max_queue_delay_us != b->batching.max_queue_delay_us,
        x->parse_threads != y->parse_threads,
        x->parse_threads_nice != y->parse_threads_nice,
        !strings_equal(&x->cors_allow_origins, &y->cors_allow_origins),
        x->model_control != y->model_control,
        x->tls_min_version != y->tls_min_version,
        (x->tls_cert_file == NULL) != (y->tls_cert_file == NULL),
    };
    _Static_assert(sizeof changed / sizeof changed[0] ==
                       sizeof settings_restart_keys / sizeof settings_restart_keys[0] - 1,
                   "one comparison per restart key");
    unsigned mask = 0;
    for (unsigned i = 0; i < sizeof changed / sizeof changed[0]; i++)
        if (changed[i])
            mask |= 1u << i;
    return mask;
}

void settings_keep_restart_keys(settings *running, settings *fresh)
{
    /* Owned lists swap, so that what the daemon borrowed stays alive. */
    settings_strings origins = fresh->server.cors_allow_origins;
    fresh->server.cors_allow_origins = running->server.cors_allow_origins;
    running->server.cors_allow_origins = origins;
    fresh->server.model_control = running->server.model_control;
    fresh->server.listen = running->server.listen;
    fresh->server.health_listen = running->server.health_listen;
    fresh->server.max_connections = running->server.max_connections;
    fresh->server.max_connections_per_ip = running->server.max_connections_per_ip;
    fresh->batching.workers = running->batching.workers;
    fresh->batching.blas_threads = running->batching.blas_threads;
    fresh->batching.engine_threads = running->batching.engine_threads;
    fresh->batching.max_queue = running->batching.max_queue;
    fresh->batching.max_queue_delay_us = running->batching.max_queue_delay_us;
    fresh->server.parse_threads = running->server.parse_threads;
    fresh->server.parse_threads_nice = running->server.parse_threads_nice;
    fresh->server.tls_min_version = running->server.tls_min_version;
    if ((fresh->server.tls_cert_file == NULL) != (running->server.tls_cert_file == NULL)) {
        char *cert = fresh->server.tls_cert_file, *key = fresh->server.tls_key_file;
        fresh->server.tls_cert_file = running->server.tls_cert_file;
        fresh->server.tls_key_file = running->server.tls_key_file;
        running->server.tls_cert_file = cert;
        running->server.tls_key_file = key;
    }
}
