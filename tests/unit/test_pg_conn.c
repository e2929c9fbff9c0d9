/* test_pg_conn: the pure parts of pg_conn: a DSN shown without credentials
 * (URI and key=value forms, libpq's environment variables filling what the
 * DSN leaves out, an invalid DSN), the DSN check's message, and the array
 * literal elements (quotes and backslashes escaped, a buffer too small
 * refused). Statements against a real server: test_news_store_postgresql. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pg_conn.h"

static void clear_env(void)
{
    unsetenv("PGHOST");
    unsetenv("PGPORT");
    unsetenv("PGDATABASE");
    unsetenv("PGUSER");
}

static void test_describe(void **state)
{
    (void)state;
    clear_env();
    char out[256];
    pg_conn_describe("postgresql://app:s3cret@db.example:6543/news?sslmode=require", out,
                     sizeof out);
    assert_string_equal(out, "postgresql://db.example:6543/news");
    pg_conn_describe("host=10.0.0.5 user=app password=s3cret dbname=cat", out, sizeof out);
    assert_string_equal(out, "postgresql://10.0.0.5:5432/cat");
    pg_conn_describe("postgresql://app@/", out, sizeof out);
    assert_string_equal(out, "postgresql://localhost:5432/app");
    pg_conn_describe("postgresql://nobody@127.0.0.1/x?bogus=1", out, sizeof out);
    assert_string_equal(out, "postgresql://(invalid DSN)");

    setenv("PGHOST", "pg.svc", 1);
    setenv("PGPORT", "5433", 1);
    setenv("PGDATABASE", "fromenv", 1);
    pg_conn_describe("postgresql://", out, sizeof out);
    assert_string_equal(out, "postgresql://pg.svc:5433/fromenv");
    pg_conn_describe("postgresql://other/db", out, sizeof out); /* the DSN wins */
    assert_string_equal(out, "postgresql://other:5433/db");
    clear_env();
}

static void test_check_dsn(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(pg_conn_check_dsn("postgresql://u:p@h:1/d", err, sizeof err), 0);
    assert_int_equal(pg_conn_check_dsn("postgresql://h/d?nosuch=1", err, sizeof err), -1);
    assert_string_equal(err, "invalid URI query parameter: \"nosuch\"");
    assert_int_equal(pg_conn_check_dsn("host", err, sizeof err), -1);
    assert_non_null(strstr(err, "missing \"=\" after \"host\""));
    assert_null(strchr(err, '\n'));
}

static void test_array_elements(void **state)
{
    (void)state;
    char buf[64];
    size_t pos = 0;
    assert_int_equal(pg_conn_array_append(buf, sizeof buf, &pos, "a\"b", 3, true), 0);
    assert_int_equal(pg_conn_array_append(buf, sizeof buf, &pos, "c\\d,{}", 6, false), 0);
    assert_int_equal(pg_conn_array_append(buf, sizeof buf, &pos, "", 0, false), 0);
    assert_string_equal(buf, "\"a\\\"b\",\"c\\\\d,{}\",\"\"");
    assert_true(pos == strlen(buf));
    /* Too small for the worst case: refused, buffer unchanged. */
    char small[8] = "";
    size_t p2 = 0;
    assert_int_equal(pg_conn_array_append(small, sizeof small, &p2, "abcd", 4, true), -1);
    assert_int_equal(p2, 0);
    assert_true(pg_conn_array_bytes(4) == 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_check_dsn),
        cmocka_unit_test(test_array_elements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
