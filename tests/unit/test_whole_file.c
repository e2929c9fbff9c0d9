/* test_whole_file: the one whole-file reader, on a regular file, an empty
 * file, a /proc file (stat size 0), the size limit and every error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "whole_file.h"

static char dir[] = "/tmp/test_whole_file_XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

static void write_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
}

static void test_reads_bytes_and_terminates(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    write_file(path, "ab\0cd", 5);
    char *buf = NULL;
    size_t len = 0;
    char err[256] = "";
    assert_int_equal(whole_file_read(path, 1024, &buf, &len, err, sizeof err), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "ab\0cd", 6); /* and the NUL after */
    free(buf);

    /* exactly at the limit is accepted, one byte over is not */
    assert_int_equal(whole_file_read(path, 5, &buf, &len, err, sizeof err), 0);
    assert_int_equal(len, 5);
    free(buf);
    assert_int_equal(whole_file_read(path, 4, &buf, &len, err, sizeof err), -1);
    assert_null(buf);
    assert_int_equal(len, 0);
    char expect[256];
    snprintf(expect, sizeof expect, "%s: cannot read: larger than 4 bytes", path);
    assert_string_equal(err, expect);
    unlink(path);
}

static void test_empty_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/empty", dir);
    write_file(path, "", 0);
    char *buf = NULL;
    size_t len = 7;
    assert_int_equal(whole_file_read(path, 16, &buf, &len, NULL, 0), 0);
    assert_int_equal(len, 0);
    assert_non_null(buf);
    assert_int_equal(buf[0], '\0');
    free(buf);
    unlink(path);
}

/* /proc files report size 0: the reader goes to the end, not to st_size. */
static void test_proc_file_read_to_its_end(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    char err[256] = "";
    assert_int_equal(whole_file_read("/proc/self/stat", 1 << 20, &buf, &len, err, sizeof err), 0);
    assert_true(len > 10);
    assert_int_equal(strlen(buf), len);
    assert_non_null(strchr(buf, ')'));
    free(buf);
    /* a limit that cuts the file: an error, never a silent cut */
    assert_int_equal(whole_file_read("/proc/self/stat", 8, &buf, &len, err, sizeof err), -1);
    assert_string_equal(err, "/proc/self/stat: cannot read: larger than 8 bytes");
}

/* A file that needs the buffer to grow several times (stat size 0 start). */
static void test_large_file_grows(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/big", dir);
    size_t n = 100000;
    char *text = malloc(n);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    write_file(path, text, n);
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(whole_file_read(path, SIZE_MAX, &buf, &len, NULL, 0), 0);
    assert_int_equal(len, n);
    assert_memory_equal(buf, text, n);
    free(buf);
    free(text);
    unlink(path);
}

static void test_errors(void **state)
{
    (void)state;
    char *buf = (char *)1;
    size_t len = 9;
    char err[256] = "";
    char path[128], expect[256];
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(whole_file_read(path, 16, &buf, &len, err, sizeof err), -1);
    assert_null(buf);
    assert_int_equal(len, 0);
    snprintf(expect, sizeof expect, "%s: cannot read: No such file or directory", path);
    assert_string_equal(err, expect);
    assert_int_equal(whole_file_read(dir, 16, &buf, &len, err, sizeof err), -1);
    snprintf(expect, sizeof expect, "%s: cannot read: not a regular file", dir);
    assert_string_equal(err, expect);
    /* no message buffer: still fails cleanly */
    assert_int_equal(whole_file_read(dir, 16, &buf, &len, NULL, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_bytes_and_terminates),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_proc_file_read_to_its_end),
        cmocka_unit_test(test_large_file_grows),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
