/* log: leveled one-line-per-event logging, text or JSON, to one fd.
 *
 * Each event is built in a stack buffer (a `line`) and written with one
 * write(2); the configuration lives in atomics, so there is no lock. */
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_cfg_format = LOG_FORMAT_TEXT;
static _Atomic int log_cfg_level = LOG_LEVEL_INFO;
static _Atomic int log_cfg_fd = 2;

void log_configure(log_format format, log_level min_level)
{
    atomic_store_explicit(&log_cfg_format, (int)format, memory_order_relaxed);
    atomic_store_explicit(&log_cfg_level, (int)min_level, memory_order_relaxed);
}

void log_set_fd(int fd)
{
    atomic_store_explicit(&log_cfg_fd, fd, memory_order_relaxed);
}

bool log_enabled(log_level level)
{
    return (int)level >= atomic_load_explicit(&log_cfg_level, memory_order_relaxed);
}

const char *log_level_name(log_level level)
{
    switch (level) {
    case LOG_LEVEL_DEBUG:
        return "debug";
    case LOG_LEVEL_INFO:
        return "info";
    case LOG_LEVEL_WARN:
        return "warn";
    case LOG_LEVEL_ERROR:
        return "error";
    }
    return "info";
}

const char *log_format_name(log_format format)
{
    return format == LOG_FORMAT_JSON ? "json" : "text";
}

static const char *log_level_upper(log_level level)
{
    switch (level) {
    case LOG_LEVEL_DEBUG:
        return "DEBUG";
    case LOG_LEVEL_INFO:
        return "INFO";
    case LOG_LEVEL_WARN:
        return "WARN";
    case LOG_LEVEL_ERROR:
        return "ERROR";
    }
    return "INFO";
}

/* ---- line buffer ----------------------------------------------------------
 * Appends stop at `cap - LINE_RESERVE` so the closing `"}` and newline always
 * fit; an append that does not fit whole is dropped and marks the line
 * truncated, so an escape sequence or UTF-8 character is never cut. */

#define LINE_RESERVE 32

typedef struct {
    char buf[LOG_LINE_MAX];
    size_t len;
    bool truncated;
    bool in_string; /* inside a JSON string value when the line was cut */
} line;

static void line_put(line *l, const char *s, size_t n)
{
    if (l->truncated || l->len + n > sizeof l->buf - LINE_RESERVE) {
        l->truncated = true;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_puts(line *l, const char *s)
{
    line_put(l, s, strlen(s));
}

/* Appends into the reserve (only line_emit does, for its closing marks). */
static void line_put_reserved(line *l, const char *s)
{
    size_t n = strlen(s);
    assert(l->len + n < sizeof l->buf);
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_printf(line *l, const char *fmt, ...) FF_PRINTF(2, 3);
static void line_printf(line *l, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    line_put(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* JSON string body and its closing quote (the opening one is the caller's):
 * quotes, backslashes and controls escaped; invalid UTF-8 bytes become
 * \u00XX so the line stays valid JSON. */
static void line_json_str(line *l, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    if (l->truncated)
        return;
    l->in_string = true;
    while (i < n) {
        unsigned char c = u[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            line_put(l, esc, 2);
            i++;
        } else if (c == '\n') {
            line_put(l, "\\n", 2);
            i++;
        } else if (c == '\t') {
            line_put(l, "\\t", 2);
            i++;
        } else if (c == '\r') {
            line_put(l, "\\r", 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            line_put(l, esc, 6);
            i++;
        } else {
            size_t k = utf8_seq_len(u + i, n - i);
            if (k == 0) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                line_put(l, esc, 6);
                i++;
            } else {
                line_put(l, s + i, k);
                i += k;
            }
        }
        if (l->truncated)
            return;
    }
    line_put(l, "\"", 1);
    if (!l->truncated)
        l->in_string = false;
}

/* Text: control bytes (and, inside quotes, '"' and '\\') escaped so one
 * event stays one line. */
static void line_text_str(line *l, const char *s, size_t n, bool quoted)
{
    for (size_t i = 0; i < n && !l->truncated; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\x%02x", c);
            line_put(l, esc, 4);
        } else if (quoted && (c == '"' || c == '\\')) {
            char esc[2] = {'\\', (char)c};
            line_put(l, esc, 2);
        } else {
            line_put(l, s + i, 1);
        }
    }
}

static void line_timestamp(line *l)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    line_printf(l, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* Starts a line: the timestamp and level, in either format. */
static void line_begin(line *l, bool json, log_level level)
{
    l->len = 0;
    l->truncated = false;
    l->in_string = false;
    if (json) {
        line_puts(l, "{\"ts\":\"");
        line_timestamp(l);
        line_puts(l, "\",\"level\":\"");
        line_puts(l, log_level_name(level));
        line_puts(l, "\"");
    } else {
        line_timestamp(l);
        line_puts(l, " ");
        line_puts(l, log_level_upper(level));
        line_puts(l, " ");
    }
}

/* Finishes and writes a line. A line cut short (see line_put) may have
 * stopped inside a JSON string value: that string is closed, and the cut is
 * marked with a "truncated":true member in JSON and " ..." in text. */
static void line_emit(line *l, bool json)
{
    bool cut = l->truncated;
    l->truncated = false; /* the reserve is now ours */
    if (json) {
        if (cut && l->in_string)
            l->buf[l->len++] = '"';
        if (cut)
            line_put_reserved(l, ",\"truncated\":true");
        l->buf[l->len++] = '}';
    } else if (cut) {
        line_put_reserved(l, " ...");
    }
    l->buf[l->len++] = '\n';
    int fd = atomic_load_explicit(&log_cfg_fd, memory_order_relaxed);
    const char *p = l->buf;
    size_t left = l->len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report a failing log fd */
        p += w;
        left -= (size_t)w;
    }
}

/* Appends a JSON member ,"key":"value" (escaped; nothing when value is
 * NULL), or for text " key=value" ("-" when NULL). */
static void line_field_str(line *l, bool json, const char *key, const char *value)
{
    char head[64];
    if (json) {
        if (value == NULL)
            return;
        int n = snprintf(head, sizeof head, ",\"%s\":\"", key);
        line_put(l, head, (size_t)n);
        line_json_str(l, value, strlen(value));
    } else {
        int n = snprintf(head, sizeof head, " %s=", key);
        line_put(l, head, (size_t)n);
        line_text_str(l, value ? value : "-", value ? strlen(value) : 1, false);
    }
}

/* ---- public API ------------------------------------------------------- */

void log_writev(log_level level, const char *fmt, va_list ap)
{
    if (!log_enabled(level))
        return;
    bool json = atomic_load_explicit(&log_cfg_format, memory_order_relaxed) == LOG_FORMAT_JSON;
    char msg[LOG_LINE_MAX];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        n = 0;
    size_t msg_len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;

    line l;
    line_begin(&l, json, level);
    if (json) {
        line_puts(&l, ",\"msg\":\"");
        line_json_str(&l, msg, msg_len);
    } else {
        line_text_str(&l, msg, msg_len, false);
    }
    line_emit(&l, json);
}

void log_write(log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_writev(level, fmt, ap);
    va_end(ap);
}

#define LOG_LEVEL_FN(fn, level)                                                                    \
    void fn(const char *fmt, ...)                                                                  \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_writev(level, fmt, ap);                                                                \
        va_end(ap);                                                                                \
    }

LOG_LEVEL_FN(log_debug, LOG_LEVEL_DEBUG)
LOG_LEVEL_FN(log_info, LOG_LEVEL_INFO)
LOG_LEVEL_FN(log_warn, LOG_LEVEL_WARN)
LOG_LEVEL_FN(log_error, LOG_LEVEL_ERROR)

void log_access(const log_access_entry *e)
{
    if (!log_enabled(LOG_LEVEL_INFO))
        return;
    bool json = atomic_load_explicit(&log_cfg_format, memory_order_relaxed) == LOG_FORMAT_JSON;
    double latency_ms = (double)e->latency_ns / 1e6;
    double queue_ms = (double)e->queue_ns / 1e6;
    line l;
    line_begin(&l, json, LOG_LEVEL_INFO);
    if (json) {
        line_puts(&l, ",\"event\":\"access\"");
        line_field_str(&l, true, "request_id", e->request_id);
        line_field_str(&l, true, "method", e->method);
        line_field_str(&l, true, "path", e->path);
        line_field_str(&l, true, "route", e->route);
        line_field_str(&l, true, "model", e->model);
        line_field_str(&l, true, "remote_addr", e->remote_addr);
        line_printf(&l, ",\"status\":%d,\"latency_ms\":%.3f,\"queue_ms\":%.3f", e->status,
                    latency_ms, queue_ms);
        line_printf(&l, ",\"batch_size\":%u,\"items\":%u", e->batch_size, e->n_items);
        line_field_str(&l, true, "error", e->error);
        line_field_str(&l, true, "trace_id", e->trace_id);
        line_field_str(&l, true, "span_id", e->span_id);
        line_field_str(&l, true, "parent_id", e->parent_id);
    } else {
        line_puts(&l, "access");
        line_field_str(&l, false, "id", e->request_id);
        line_puts(&l, " ");
        line_text_str(&l, e->method ? e->method : "-", e->method ? strlen(e->method) : 1, false);
        line_puts(&l, " ");
        line_text_str(&l, e->path ? e->path : "-", e->path ? strlen(e->path) : 1, false);
        line_field_str(&l, false, "route", e->route);
        line_field_str(&l, false, "model", e->model);
        line_field_str(&l, false, "remote", e->remote_addr);
        line_printf(&l, " status=%d latency_ms=%.3f queue_ms=%.3f batch_size=%u items=%u",
                    e->status, latency_ms, queue_ms, e->batch_size, e->n_items);
        if (e->error) {
            line_puts(&l, " error=\"");
            line_text_str(&l, e->error, strlen(e->error), true);
            line_puts(&l, "\"");
        }
        if (e->trace_id) {
            line_field_str(&l, false, "trace_id", e->trace_id);
            line_field_str(&l, false, "span_id", e->span_id);
        }
        if (e->parent_id)
            line_field_str(&l, false, "parent_id", e->parent_id);
    }
    line_emit(&l, json);
}
