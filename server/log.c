/* log: leveled one-line-per-event logging, text or JSON, to one fd.
 *
 * Each event is built in a stack buffer (a `line`). Access lines are
 * appended to one batch, written when it fills, when it is LOG_BATCH_MAX_AGE_NS
 * old, on log_flush and before any other line; other lines are written with
 * one write(2) each. The configuration lives in atomics; only the fd and the
 * batch are under a lock. */
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ascii_digits.h"

static _Atomic int log_cfg_format = LOG_FORMAT_TEXT;
static _Atomic int log_cfg_level = LOG_LEVEL_INFO;
static _Atomic int log_cfg_fd = 2;

void log_configure(log_format format, log_level min_level)
{
    atomic_store_explicit(&log_cfg_format, (int)format, memory_order_relaxed);
    atomic_store_explicit(&log_cfg_level, (int)min_level, memory_order_relaxed);
}

/* ---- the access-line batch -----------------------------------------------
 * At a few thousand requests per second, one write(2) per access line was a
 * syscall per request on the HTTP thread. The batch holds whole lines only,
 * in the order they were logged; log_batch_lock orders them with every other
 * line, so a reader sees the same sequence as without the batch. */

#define LOG_BATCH_BYTES (64 * 1024)
/* An access line waits at most this long while lines keep coming; when they
 * stop, the main thread's tick (log_flush) writes the rest. */
#define LOG_BATCH_MAX_AGE_NS (100 * 1000000LL)

static pthread_mutex_t log_batch_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_batch_buf[LOG_BATCH_BYTES];
static size_t log_batch_len;       /* guarded by log_batch_lock */
static int64_t log_batch_first_ns; /* CLOCK_MONOTONIC of its oldest line; guarded */

static int64_t log_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Writes n bytes to fd, retrying short writes and EINTR. A failing log fd
 * drops the bytes: there is nowhere to report it. */
static void fd_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Writes the batch out. Under log_batch_lock. */
static void log_batch_flush_locked(void)
{
    if (log_batch_len == 0)
        return;
    fd_write_all(atomic_load_explicit(&log_cfg_fd, memory_order_relaxed), log_batch_buf,
                 log_batch_len);
    log_batch_len = 0;
}

void log_flush(void)
{
    pthread_mutex_lock(&log_batch_lock);
    log_batch_flush_locked();
    pthread_mutex_unlock(&log_batch_lock);
}

void log_set_fd(int fd)
{
    pthread_mutex_lock(&log_batch_lock);
    log_batch_flush_locked(); /* what was logged before goes where it was meant to */
    atomic_store_explicit(&log_cfg_fd, fd, memory_order_relaxed);
    pthread_mutex_unlock(&log_batch_lock);
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
        size_t run = 0; /* bytes from i on that need no escape, appended at once */
        for (; i + run < n; run++) {
            unsigned char b = (unsigned char)s[i + run];
            if (b < 0x20 || b == 0x7f || (quoted && (b == '"' || b == '\\')))
                break;
        }
        if (run > 0) {
            /* As byte-by-byte appends would: what fits goes in, then the cut. */
            size_t room = sizeof l->buf - LINE_RESERVE - l->len;
            line_put(l, s + i, run < room ? run : room);
            if (run > room)
                l->truncated = true;
            i += run - 1;
        } else if (c < 0x20 || c == 0x7f) {
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

/* Appends v in decimal. */
static void line_put_u64(line *l, uint64_t v)
{
    char digits[ASCII_DECIMAL_MAX];
    line_put(l, digits, ascii_decimal(digits, v));
}

static void line_put_int(line *l, int v)
{
    if (v < 0) {
        line_put(l, "-", 1);
        line_put_u64(l, (uint64_t)0 - (uint64_t)(int64_t)v);
    } else {
        line_put_u64(l, (uint64_t)v);
    }
}

/* Appends ns as milliseconds with 3 decimals, rounded to the microsecond
 * ("1.235" for 1234567 ns), as "%.3f" of ns / 1e6 would. */
static void line_put_ms3(line *l, uint64_t ns)
{
    uint64_t us = ns / 1000 + (ns % 1000 >= 500);
    char frac[4] = {(char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10),
                    0};
    line_put_u64(l, us / 1000);
    line_put(l, ".", 1);
    line_put(l, frac, 3);
}

/* The "2026-11-29T14:40:00" part of a timestamp is formatted once per
 * second per thread (gmtime_r and printf cost more than the rest of an
 * access line). */
static _Thread_local time_t log_ts_sec = (time_t)-1;
static _Thread_local char log_ts_text[32];

static void line_timestamp(line *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != log_ts_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        if (strftime(log_ts_text, sizeof log_ts_text, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            log_ts_text[0] = 0;
        log_ts_sec = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000;
    char frac[6] = {
        '.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z', 0};
    line_puts(l, log_ts_text);
    line_put(l, frac, 5);
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

/* Finishes a line. A line cut short (see line_put) may have stopped inside
 * a JSON string value: that string is closed, and the cut is marked with a
 * "truncated":true member in JSON and " ..." in text. */
static void line_finish(line *l, bool json)
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
}

/* Finishes and writes a line, after the access lines waiting in the batch. */
static void line_emit(line *l, bool json)
{
    line_finish(l, json);
    pthread_mutex_lock(&log_batch_lock);
    log_batch_flush_locked();
    fd_write_all(atomic_load_explicit(&log_cfg_fd, memory_order_relaxed), l->buf, l->len);
    pthread_mutex_unlock(&log_batch_lock);
}

/* Finishes an access line and appends it to the batch, which is written
 * first when the line does not fit, and after it when its oldest line is
 * LOG_BATCH_MAX_AGE_NS old. */
static void line_emit_batched(line *l, bool json)
{
    line_finish(l, json);
    _Static_assert(LOG_LINE_MAX <= LOG_BATCH_BYTES, "a line fits an empty batch");
    int64_t now = log_mono_ns();
    pthread_mutex_lock(&log_batch_lock);
    if (log_batch_len + l->len > sizeof log_batch_buf)
        log_batch_flush_locked();
    if (log_batch_len == 0)
        log_batch_first_ns = now;
    memcpy(log_batch_buf + log_batch_len, l->buf, l->len);
    log_batch_len += l->len;
    if (now - log_batch_first_ns >= LOG_BATCH_MAX_AGE_NS)
        log_batch_flush_locked();
    pthread_mutex_unlock(&log_batch_lock);
}

/* Appends pre, key[0..k) and post, all or none (marking the line cut). */
static void line_put_head(line *l, const char *pre, const char *key, size_t k, const char *post)
{
    size_t npre = strlen(pre), npost = strlen(post);
    if (l->truncated || l->len + npre + k + npost > sizeof l->buf - LINE_RESERVE) {
        l->truncated = true;
        return;
    }
    line_put(l, pre, npre);
    line_put(l, key, k);
    line_put(l, post, npost);
}

/* Appends a JSON member ,"key":"value" (escaped; nothing when value is
 * NULL), or for text " key=value" ("-" when NULL). */
static void line_field_str(line *l, bool json, const char *key, const char *value)
{
    /* The head goes in whole or not at all, so that a cut line never ends
     * inside a key. */
    size_t k = strlen(key);
    if (json) {
        if (value == NULL)
            return;
        line_put_head(l, ",\"", key, k, "\":\"");
        line_json_str(l, value, strlen(value));
    } else {
        line_put_head(l, " ", key, k, "=");
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

/* Text: ` path="..."` with quotes and backslashes escaped, cut (whole
 * characters or escapes only) where the line's room ends, so that the fixed
 * fields before it always survive; a cut path is marked by line_emit. */
static void line_text_path(line *l, const char *s, size_t n)
{
    line_puts(l, " path=\"");
    size_t room = sizeof l->buf - LINE_RESERVE - 1; /* keeps 1 for the closing quote */
    for (size_t i = 0; i < n && !l->truncated; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        size_t k = 1;
        if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            k = 4;
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            k = 2;
        } else {
            esc[0] = (char)c;
        }
        if (l->len + k > room) {
            l->truncated = true;
            break;
        }
        memcpy(l->buf + l->len, esc, k);
        l->len += k;
    }
    bool cut = l->truncated;
    l->truncated = false;
    line_puts(l, "\"");
    l->truncated = cut;
}

void log_access(const log_access_entry *e)
{
    if (!log_enabled(LOG_LEVEL_INFO))
        return;
    bool json = atomic_load_explicit(&log_cfg_format, memory_order_relaxed) == LOG_FORMAT_JSON;
    line l;
    line_begin(&l, json, LOG_LEVEL_INFO);
    /* The fixed-size fields first and the client's path last, so that a
     * long path can only cut itself. */
    if (json) {
        line_puts(&l, ",\"event\":\"access\",\"status\":");
        line_put_int(&l, e->status);
        line_field_str(&l, true, "remote_addr", e->remote_addr);
        line_field_str(&l, true, "route", e->route);
        line_field_str(&l, true, "model", e->model);
        line_puts(&l, ",\"latency_ms\":");
        line_put_ms3(&l, e->latency_ns);
        line_puts(&l, ",\"queue_ms\":");
        line_put_ms3(&l, e->queue_ns);
        line_puts(&l, ",\"batch_size\":");
        line_put_u64(&l, e->batch_size);
        line_puts(&l, ",\"items\":");
        line_put_u64(&l, e->n_items);
        line_field_str(&l, true, "error", e->error);
        line_field_str(&l, true, "trace_id", e->trace_id);
        line_field_str(&l, true, "span_id", e->span_id);
        line_field_str(&l, true, "parent_id", e->parent_id);
        line_field_str(&l, true, "request_id", e->request_id);
        line_field_str(&l, true, "method", e->method);
        line_field_str(&l, true, "path", e->path);
    } else {
        line_puts(&l, "access status=");
        line_put_int(&l, e->status);
        line_field_str(&l, false, "remote", e->remote_addr);
        line_field_str(&l, false, "route", e->route);
        line_field_str(&l, false, "model", e->model);
        line_puts(&l, " latency_ms=");
        line_put_ms3(&l, e->latency_ns);
        line_puts(&l, " queue_ms=");
        line_put_ms3(&l, e->queue_ns);
        line_puts(&l, " batch_size=");
        line_put_u64(&l, e->batch_size);
        line_puts(&l, " items=");
        line_put_u64(&l, e->n_items);
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
        line_field_str(&l, false, "id", e->request_id);
        line_field_str(&l, false, "method", e->method);
        line_text_path(&l, e->path ? e->path : "-", e->path ? strlen(e->path) : 1);
    }
    line_emit_batched(&l, json);
}
