/* pg_conn: the daemon's few uses of libpq, with bounded waits. A connection
 * is opened with timeouts and TCP keepalives under the user's DSN (whose own
 * settings win), a statement runs with a deadline (a dead server or a cut
 * network costs at most that long, never a hung thread), and a DSN is shown
 * in logs and messages without its user or password.
 *
 * A PGconn is used by one thread at a time (the caller's lock). */
#ifndef FF_PG_CONN_H
#define FF_PG_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

/* Seconds a connection attempt may take, unless the DSN sets connect_timeout. */
#define PG_CONN_CONNECT_TIMEOUT_S 5

/* "postgresql://HOST:PORT/DBNAME" (what libpq would use: what the DSN
 * leaves out from PGHOST, PGPORT, PGDATABASE, PGUSER, then libpq's defaults;
 * no user, no password, no other options) into out[0..cap). A DSN that does
 * not parse gives "postgresql://(invalid DSN)". Reads the environment. */
void pg_conn_describe(const char *dsn, char *out, size_t cap);

/* Checks that dsn parses as a libpq connection string or URI. Returns 0, or
 * -1 with libpq's message ("missing \"=\" after \"x\" in connection info
 * string"). Does not connect. Pure. */
FF_MUST_CHECK int pg_conn_check_dsn(const char *dsn, char *err, size_t err_cap);

/* Opens a connection (blocking, at most connect_timeout). Returns a new
 * connection (PQfinish it), or NULL with libpq's message on one line
 * ("connection to server at \"127.0.0.1\", port 5432 failed: Connection
 * refused"). Any thread. */
PGconn *pg_conn_open(const char *dsn, char *err, size_t err_cap);

/* Why a statement failed. */
typedef struct {
    bool lost;        /* the connection cannot be used any more (the server went away, or
                         the deadline passed with the statement in flight): PQfinish it */
    char sqlstate[6]; /* the server's SQLSTATE, e.g. "53100"; "" when none */
} pg_conn_failure;

/* One statement: n parameters values[0..n) (NULL = SQL NULL; lengths and
 * formats as PQexecParams, may be NULL), or n = -1 for a script of several
 * statements without parameters (the simple query protocol). */
typedef struct {
    const char *sql;
    int n;
    const char *const *values;
    const int *lengths;
    const int *formats;
    int result_format; /* 0 text, 1 binary */
    int timeout_ms;    /* longest wait for the (next) answer */
} pg_conn_statement;

/* Runs st and waits at most st->timeout_ms for its result. Returns the
 * result (PQclear it) when it succeeded (a script: its last statement's),
 * or NULL with a one-line message and *fail. The calling thread must own c. */
PGresult *pg_conn_exec(PGconn *c, const pg_conn_statement *st, pg_conn_failure *fail, char *err,
                       size_t err_cap);

/* Called with a result holding one row (row 0). Return non-zero to skip the
 * rest of the rows. */
typedef int (*pg_conn_row_fn)(void *user, const PGresult *row);

/* Runs st in single-row mode: fn sees each row as it arrives (so a large
 * result is never held whole), with st->timeout_ms as the longest wait for
 * each. Returns 0, or -1 with a message and *fail. */
FF_MUST_CHECK int pg_conn_each_row(PGconn *c, const pg_conn_statement *st, pg_conn_row_fn fn,
                                   void *user, pg_conn_failure *fail, char *err, size_t err_cap);

/* Appends the PostgreSQL array literal element for s[0..len) (double-quoted,
 * with '"' and '\' escaped) to buf at *pos, with a leading ',' unless it is
 * the first. Returns 0, or -1 when buf (cap bytes, kept NUL-terminated) is
 * too small. Pure. */
FF_MUST_CHECK int pg_conn_array_append(char *buf, size_t cap, size_t *pos, const char *s,
                                       size_t len, bool first);

/* Bytes pg_conn_array_append needs for s of len bytes, at most. Pure. */
size_t pg_conn_array_bytes(size_t len);

#endif
