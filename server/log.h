/* log: leveled, thread-safe logging, one line per event, as text or JSON.
 *
 * Every call formats its whole line on the caller's stack. Access lines
 * (log_access, one per HTTP response) are collected in a batch and written
 * together, at most about 100 ms after they were logged; any other line is
 * written with a single write(2) to the log fd (stderr by default), after the
 * batch. So lines from different threads never interleave and keep the order
 * in which they were logged. Lines longer than LOG_LINE_MAX bytes are
 * truncated (a JSON line stays valid JSON). Logging never allocates, so it
 * may be called on the hot path and from any thread.
 *
 * Text:  2026-11-29T14:40:00.123Z INFO model 'imdb' loaded in 41 ms
 * JSON:  {"ts":"2026-11-29T14:40:00.123Z","level":"info","msg":"model 'imdb' loaded in 41 ms"}
 */
#ifndef FF_LOG_H
#define FF_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

/* Longest line emitted, including the trailing newline. */
#define LOG_LINE_MAX 4096

/* Ordered: a configured minimum level drops every event below it. Names
 * avoid <syslog.h>'s LOG_INFO etc. */
typedef enum {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
} log_level;

typedef enum {
    LOG_FORMAT_TEXT = 0,
    LOG_FORMAT_JSON = 1,
} log_format;

/* Sets the output format and the minimum level. Defaults before any call:
 * LOG_FORMAT_TEXT, LOG_LEVEL_INFO. Any thread may call it at any time (e.g.
 * after a SIGHUP reload); the change is atomic, and lines already being
 * formatted use the old values. */
void log_configure(log_format format, log_level min_level);

/* Redirects output to `fd` (not owned: never closed). Default 2 (stderr).
 * Access lines still in the batch go to the old fd first. Meant for tests;
 * any thread. */
void log_set_fd(int fd);

/* Writes the access lines waiting in the batch. While access lines keep
 * coming, each waits at most ~100 ms; when they stop, this is what writes the
 * last ones: the daemon's main thread calls it on its tick (every 100 ms or
 * less) and before it exits. Lines still in the batch are lost if the process
 * dies without it (a crash, SIGKILL). Any thread. */
void log_flush(void);

/* True when an event at `level` would be emitted: lets callers skip costly
 * argument preparation for debug lines. */
bool log_enabled(log_level level);

/* "debug", "info", "warn", "error"; and "text", "json". */
const char *log_level_name(log_level level);
const char *log_format_name(log_format format);

/* Emits one event. `fmt` is printf-style; the message may contain any bytes
 * (in JSON it is escaped; in text, control characters are escaped as \xNN so
 * one event is always one line). */
void log_write(log_level level, const char *fmt, ...) FF_PRINTF(2, 3);
void log_writev(log_level level, const char *fmt, va_list ap) FF_PRINTF(2, 0);

void log_debug(const char *fmt, ...) FF_PRINTF(1, 2);
void log_info(const char *fmt, ...) FF_PRINTF(1, 2);
void log_warn(const char *fmt, ...) FF_PRINTF(1, 2);
void log_error(const char *fmt, ...) FF_PRINTF(1, 2);

/* One access-log event per HTTP response. All strings are borrowed for the
 * call only and may be NULL (NULL fields are omitted in JSON and shown as
 * "-" in text); they are escaped, so request data is safe here. */
typedef struct {
    const char *request_id;  /* X-Request-Id sent back */
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* the request path as received */
    const char *route;       /* route template, e.g. metrics_route_name() */
    const char *model;       /* model name, NULL when the route has none */
    const char *remote_addr; /* client address "ip:port" */
    int status;              /* HTTP status sent */
    uint64_t latency_ns;     /* request received -> response queued */
    uint64_t queue_ns;       /* longest time one of its items waited in the queue; 0 if none */
    uint32_t batch_size;     /* largest batch that computed one of its items; 0 if none */
    uint32_t n_items;        /* sequences the request was split into; 0 if none */
    const char *error;       /* why it was rejected (reject_reason_name), NULL if it was not */
    const char *trace_id;    /* W3C trace context: the request's trace, NULL if none */
    const char *span_id;     /* the daemon's span for the request */
    const char *parent_id;   /* the caller's span (traceparent), NULL if it sent none */
} log_access_entry;

/* Emits `e` at LOG_LEVEL_INFO, through the batch (see the top of this file).
 * JSON: {"ts":...,"level":"info","event":"access","request_id":"...","method":"POST",
 *        "path":"...","route":"...","model":"...","remote_addr":"...","status":200,
 *        "latency_ms":1.234,"queue_ms":0.250,"batch_size":4,"items":1,"error":"...",
 *        "trace_id":"...","span_id":"...","parent_id":"..."}
 * Text: TS INFO access id=ID POST /path route=R model=M status=200 latency_ms=1.234
 *       queue_ms=0.250 batch_size=4 items=1 [error="..."] trace_id=T span_id=S [parent_id=P]
 * Any thread. */
void log_access(const log_access_entry *e);

#endif
