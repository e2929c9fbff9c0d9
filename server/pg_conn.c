/* pg_conn: libpq with bounded waits (see pg_conn.h). */
#include "pg_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
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
    /* What the DSN leaves out, libpq takes from PGHOST, PGPORT, PGDATABASE
     * and PGUSER (e.g. from a Kubernetes Secret), then its defaults: a Unix
     * socket, 5432, dbname = user name. */
    if (!host && !hostaddr)
        host = getenv("PGHOST");
    if (!host)
        host = hostaddr ? hostaddr : "localhost";
    if (!port)
        port = getenv("PGPORT");
    if (!db)
        db = getenv("PGDATABASE");
    if (!user)
        user = getenv("PGUSER");
    if (!db)
        db = user ? user : "(user name)";
    snprintf(out, cap, "postgresql://%s:%s/%s", host, port ? port : "5432", db);
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
    static const char *const keys[] = {
        "connect_timeout",     "keepalives",       "keepalives_idle",
        "keepalives_interval", "keepalives_count", "application_name",
        "client_encoding",     "dbname",           NULL};
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
 * statement) or, for a script (n < 0), as a simple query; then flushes it
 * (libpq buffers a large statement) within the deadline. Returns 0, or -1
 * with the failure. */
static int send_statement(PGconn *c, const pg_conn_statement *st, bool single_row,
                          int64_t deadline_us, pg_conn_failure *fail, char *err, size_t err_cap)
{
    int sent = st->n < 0 ? PQsendQuery(c, st->sql)
                         : PQsendQueryParams(c, st->sql, st->n, NULL, st->values, st->lengths,
                                             st->formats, st->result_format);
    if (PQstatus(c) != CONNECTION_OK || !sent) {
        fail->lost = PQstatus(c) != CONNECTION_OK;
        set_first_line(err, err_cap, "", PQerrorMessage(c));
        return -1;
    }
    if (single_row)
        PQsetSingleRowMode(c);
    int flushed;
    while ((flushed = PQflush(c)) == 1) {
        if (wait_socket(c, POLLOUT | POLLIN, deadline_us) <= 0) {
            fail->lost = true;
            error_message_set(err, err_cap, "no answer from the database within %d ms",
                              st->timeout_ms);
            return -1;
        }
        if (!PQconsumeInput(c))
            break;
    }
    if (flushed != 0) {
        fail->lost = true;
        set_first_line(err, err_cap, "", PQerrorMessage(c));
        return -1;
    }
    return 0;
}

/* The next result of the statement in flight into *out (NULL after the
 * last). Returns 0, or -1 when the deadline passed or the connection broke
 * (fail->lost). */
static int next_result(PGconn *c, int64_t deadline_us, int timeout_ms, PGresult **out,
                       pg_conn_failure *fail, char *err, size_t err_cap)
{
    *out = NULL;
    while (PQisBusy(c)) {
        int w = wait_socket(c, POLLIN, deadline_us);
        if (w <= 0) {
            fail->lost = true;
            error_message_set(err, err_cap, "no answer from the database within %d ms", timeout_ms);
            return -1;
        }
        if (!PQconsumeInput(c)) {
            fail->lost = true;
            set_first_line(err, err_cap, "", PQerrorMessage(c));
            return -1;
        }
    }
    *out = PQgetResult(c);
    return 0;
}

/* A failed result's message and SQLSTATE. */
static void result_failure(PGconn *c, const PGresult *r, pg_conn_failure *fail, char *err,
                           size_t err_cap)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(fail->sqlstate, sizeof fail->sqlstate, "%s", state ? state : "");
    set_first_line(err, err_cap, "", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    fail->lost = PQstatus(c) != CONNECTION_OK;
}

PGresult *pg_conn_exec(PGconn *c, const pg_conn_statement *st, pg_conn_failure *fail, char *err,
                       size_t err_cap)
{
    memset(fail, 0, sizeof *fail);
    int64_t deadline_us = mono_clock_us() + (int64_t)st->timeout_ms * 1000;
    if (send_statement(c, st, false, deadline_us, fail, err, err_cap) != 0)
        return NULL;
    PGresult *last = NULL;
    for (;;) {
        PGresult *r;
        if (next_result(c, deadline_us, st->timeout_ms, &r, fail, err, err_cap) != 0) {
            PQclear(last);
            return NULL;
        }
        if (!r)
            break;
        /* A script stops at its first error: keep that one. */
        if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
            PQclear(r);
            continue;
        }
        PQclear(last);
        last = r;
    }
    ExecStatusType status = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
        return last;
    result_failure(c, last, fail, err, err_cap);
    PQclear(last);
    return NULL;
}

int pg_conn_each_row(PGconn *c, const pg_conn_statement *st, pg_conn_row_fn fn, void *user,
                     pg_conn_failure *fail, char *err, size_t err_cap)
{
    memset(fail, 0, sizeof *fail);
    int64_t deadline_us = mono_clock_us() + (int64_t)st->timeout_ms * 1000;
    if (send_statement(c, st, true, deadline_us, fail, err, err_cap) != 0)
        return -1;
    int rc = 0;
    bool stopped = false;
    for (;;) {
        PGresult *r;
        if (next_result(c, deadline_us, st->timeout_ms, &r, fail, err, err_cap) != 0)
            return -1;
        if (!r)
            break;
        deadline_us = mono_clock_us() + (int64_t)st->timeout_ms * 1000; /* per row */
        ExecStatusType status = PQresultStatus(r);
        if (status == PGRES_SINGLE_TUPLE) {
            if (!stopped && rc == 0 && fn(user, r) != 0)
                stopped = true; /* the rest is read and dropped: the connection stays usable */
        } else if (status != PGRES_TUPLES_OK && rc == 0) {
            result_failure(c, r, fail, err, err_cap);
            rc = -1;
        }
        PQclear(r);
    }
    return rc;
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
