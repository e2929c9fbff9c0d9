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

/* "postgresql://HOST:PORT/DBNAME" (what libpq would use, defaults filled
 * in; no user, no password, no other options) into out[0..cap). A DSN that
 * does not parse gives "postgresql://(invalid DSN)". Pure. */
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

/* Runs one statement with text parameters values[0..n) (NULL = SQL NULL;
 * lengths/formats as PQexecParams, may be NULL) and waits at most
 * timeout_ms for its result. Returns the result (PQclear it) when the
 * statement succeeded, or NULL with a one-line message. *lost (may be NULL)
 * is set when the connection cannot be used any more (the server went away,
 * or the deadline passed with the statement in flight): the caller must
 * PQfinish it. The calling thread must own c. */
PGresult *pg_conn_exec(PGconn *c, const char *sql, int n, const char *const *values,
                       const int *lengths, const int *formats, int result_format, int timeout_ms,
                       bool *lost, char *err, size_t err_cap);

/* Runs the statements of `sql` (no parameters; several statements allowed)
 * as pg_conn_exec does; returns the last one's result. */
PGresult *pg_conn_script(PGconn *c, const char *sql, int timeout_ms, bool *lost, char *err,
                         size_t err_cap);

/* Appends the PostgreSQL array literal element for s[0..len) (double-quoted,
 * with '"' and '\' escaped) to buf at *pos, with a leading ',' unless it is
 * the first. Returns 0, or -1 when buf (cap bytes, kept NUL-terminated) is
 * too small. Pure. */
FF_MUST_CHECK int pg_conn_array_append(char *buf, size_t cap, size_t *pos, const char *s,
                                       size_t len, bool first);

/* Bytes pg_conn_array_append needs for s of len bytes, at most. Pure. */
size_t pg_conn_array_bytes(size_t len);

#endif
