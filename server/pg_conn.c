/* pg_conn: libpq with bounded waits (see pg_conn.h). */
#include "pg_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "error_message.h"
#include "log.h"
#include "mono_clock.h"

/* libpq's messages end with a newline and may have several lines (a
 * DETAIL, or one "connection ... failed" per address tried): the first
 * non-empty line names the problem. */
static void set_first_line(char *err, size_t err_cap, const char *prefix, const char *msg)
{
    if (!msg)
        msg = "";
    while (*msg == '\n')
        msg++;
    size_t len = strcspn(msg, "\n");
    if (len == 0)
        error_message_set(err, err_cap, "%sunknown libpq error", prefix);
    else
        error_message_set(err, err_cap, "%s%.*s", prefix, (int)len, msg);
}

void pg_conn_describe(const char *dsn, char *out, size_t cap)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
    PQfreemem(perr);
    if (!opts) {
        snprintf(out, cap, "postgresql://(invalid DSN)");
        return;
    }
    const char *host = NULL, *hostaddr = NULL, *port = NULL, *db = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (!strcmp(o->keyword, "host"))
            host = o->val;
        else if (!strcmp(o->keyword, "hostaddr"))
            hostaddr = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            db = o->val;
        else if (!strcmp(o->keyword, "user"))
            user = o->val;
    }
    /* libpq's defaults: a Unix socket, 5432, dbname = user name. */
    snprintf(out, cap, "postgresql://%s:%s/%s", host ? host : hostaddr ? hostaddr : "localhost",
             port ? port : "5432", db ? db : user ? user : "(user name)");
    PQconninfoFree(opts);
}

int pg_conn_check_dsn(const char *dsn, char *err, size_t err_cap)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
    if (!opts) {
        set_first_line(err, err_cap, "", perr ? perr : "out of memory");
        PQfreemem(perr);
        return -1;
    }
    PQconninfoFree(opts);
    return 0;
}

/* The server's notices (NOTICE: relation ... already exists, skipping; the
 * FATAL sent before a shutdown closes the connection) go to the debug log
 * instead of libpq's default, stderr. */
static void log_notice(void *arg, const char *message)
{
    (void)arg;
    log_debug("postgresql: %.*s", (int)strcspn(message, "\n"), message);
}

PGconn *pg_conn_open(const char *dsn, char *err, size_t err_cap)
{
    /* Defaults first: the DSN (expanded from dbname, last) overrides them.
     * Keepalives find a server that vanished without closing the socket. */
    static const char *const keys[] = {"connect_timeout", "keepalives",        "keepalives_idle",
                                       "keepalives_interval", "keepalives_count", "application_name",
                                       "client_encoding",  "dbname",            NULL};
    const char *vals[] = {"5", "1", "10", "5", "3", "fastformerd", "UTF8", dsn, NULL};
    _Static_assert(PG_CONN_CONNECT_TIMEOUT_S == 5, "keep the literal above in step");
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        error_message_set(err, err_cap, "out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        set_first_line(err, err_cap, "", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, log_notice, NULL);
    return c;
}

/* Waits until c's socket is ready for `events` or the deadline passes.
 * Returns 1 ready, 0 timed out, -1 poll failed. */
static int wait_socket(PGconn *c, short events, int64_t deadline_us)
{
    for (;;) {
        int64_t left_us = deadline_us - mono_clock_us();
        if (left_us <= 0)
            return 0;
        struct pollfd p = {.fd = PQsocket(c), .events = events};
        int rc = poll(&p, 1, (int)((left_us + 999) / 1000));
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* Sends the statement: with parameters (the extended protocol, one
 * statement) or, for a script (n < 0), as a simple query. */
static int send_statement(PGconn *c, const char *sql, int n, const char *const *values,
                          const int *lengths, const int *formats, int result_format)
{
    if (n < 0)
        return PQsendQuery(c, sql);
    return PQsendQueryParams(c, sql, n, NULL, values, lengths, formats, result_format);
}

PGresult *pg_conn_script(PGconn *c, const char *sql, int timeout_ms, bool *lost, char *err,
                         size_t err_cap)
{
    return pg_conn_exec(c, sql, -1, NULL, NULL, NULL, 0, timeout_ms, lost, err, err_cap);
}

PGresult *pg_conn_exec(PGconn *c, const char *sql, int n, const char *const *values,
                       const int *lengths, const int *formats, int result_format, int timeout_ms,
                       bool *lost, char *err, size_t err_cap)
{
    bool lost_local = false;
    if (!lost)
        lost = &lost_local;
    *lost = false;
    int64_t deadline_us = mono_clock_us() + (int64_t)timeout_ms * 1000;
    if (PQstatus(c) != CONNECTION_OK ||
        !send_statement(c, sql, n, values, lengths, formats, result_format)) {
        *lost = PQstatus(c) != CONNECTION_OK;
        set_first_line(err, err_cap, "", PQerrorMessage(c));
        return NULL;
    }
    /* Send everything (libpq buffers a large statement), then read until
     * the last result; a wait past the deadline abandons the connection. */
    int flushed;
    while ((flushed = PQflush(c)) == 1) {
        int w = wait_socket(c, POLLOUT | POLLIN, deadline_us);
        if (w <= 0)
            goto timed_out;
        if (!PQconsumeInput(c))
            goto failed;
    }
    if (flushed < 0)
        goto failed;
    PGresult *last = NULL;
    for (;;) {
        while (PQisBusy(c)) {
            int w = wait_socket(c, POLLIN, deadline_us);
            if (w <= 0) {
                PQclear(last);
                goto timed_out;
            }
            if (!PQconsumeInput(c)) {
                PQclear(last);
                goto failed;
            }
        }
        PGresult *r = PQgetResult(c);
        if (!r)
            break;
        PQclear(last);
        last = r;
    }
    ExecStatusType st = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return last;
    set_first_line(err, err_cap, "", last ? PQresultErrorMessage(last) : PQerrorMessage(c));
    PQclear(last);
    *lost = PQstatus(c) != CONNECTION_OK;
    return NULL;

timed_out:
    *lost = true;
    error_message_set(err, err_cap, "no answer from the database within %d ms", timeout_ms);
    return NULL;
failed:
    *lost = true;
    set_first_line(err, err_cap, "", PQerrorMessage(c));
    return NULL;
}

size_t pg_conn_array_bytes(size_t len)
{
    return 2 * len + 3; /* ',' '"' escaped bytes '"' */
}

int pg_conn_array_append(char *buf, size_t cap, size_t *pos, const char *s, size_t len, bool first)
{
    size_t p = *pos;
    if (cap == 0 || p + pg_conn_array_bytes(len) + 1 > cap)
        return -1;
    if (!first)
        buf[p++] = ',';
    buf[p++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            buf[p++] = '\\';
        buf[p++] = s[i];
    }
    buf[p++] = '"';
    buf[p] = '\0';
    *pos = p;
    return 0;
}
