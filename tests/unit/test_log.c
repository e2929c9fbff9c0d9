/* test_log: leveled logging in text and JSON: filtering, escaping (every
 * JSON line parses, whatever the message bytes), truncation of long lines,
 * the access-log event and its batch (every line arrives, in order, around
 * other lines), and whole lines under concurrent writers. */
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* Captures log output in an unlinked temporary file. */
static int capture_fd = -1;

static int setup(void **state)
{
    (void)state;
    char path[] = "/tmp/test_log_XXXXXX";
    capture_fd = mkstemp(path);
    if (capture_fd < 0)
        return -1;
    unlink(path);
    if (fcntl(capture_fd, F_SETFL, O_APPEND) != 0)
        return -1;
    log_set_fd(capture_fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_fd(2);
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    close(capture_fd);
    return 0;
}

/* What reached the fd since the last call, without flushing the access
 * batch (a new malloc'd string). */
static char *captured_unflushed(void)
{
    off_t end = lseek(capture_fd, 0, SEEK_END);
    assert_true(end >= 0);
    char *buf = malloc((size_t)end + 1);
    assert_non_null(buf);
    assert_int_equal(pread(capture_fd, buf, (size_t)end, 0), end);
    buf[end] = '\0';
    assert_int_equal(ftruncate(capture_fd, 0), 0);
    assert_int_equal(lseek(capture_fd, 0, SEEK_SET), 0);
    return buf;
}

/* Everything logged since the last call, the access batch included. */
static char *captured(void)
{
    log_flush();
    return captured_unflushed();
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Parses one JSON line (without its newline) and checks the common members. */
static json_t *parse_json_line(const char *line, size_t len, const char *level)
{
    json_error_t e;
    json_t *j = json_loadb(line, len, 0, &e);
    if (j == NULL)
        fail_msg("not JSON (%s): %.*s", e.text, (int)len, line);
    assert_true(json_is_object(j));
    const char *ts = json_string_value(json_object_get(j, "ts"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24); /* 2026-11-29T14:40:00.123Z */
    assert_true(ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
    assert_string_equal(json_string_value(json_object_get(j, "level")), level);
    return j;
}

static void test_levels_and_text_format(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_WARN);
    assert_false(log_enabled(LOG_LEVEL_INFO));
    assert_true(log_enabled(LOG_LEVEL_ERROR));
    log_debug("d");
    log_info("i");
    log_warn("w %d", 1);
    log_error("e %s", "x");
    log_write(LOG_LEVEL_WARN, "via %s", "log_write");
    char *out = captured();
    assert_int_equal(count_lines(out), 3);
    const char *line2 = strchr(out, '\n') + 1;
    /* 2026-11-29T14:40:00.123Z WARN w 1 */
    assert_int_equal(strchr(out, ' ') - out, 24);
    assert_memory_equal(out + 24, " WARN w 1\n", 10);
    assert_memory_equal(line2 + 24, " ERROR e x\n", 11);
    assert_non_null(strstr(out, " WARN via log_write\n"));
    free(out);

    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_DEBUG);
    log_debug("now visible");
    log_info("tab\there\nnewline");
    out = captured();
    assert_non_null(strstr(out, " DEBUG now visible\n"));
    assert_non_null(strstr(out, " INFO tab\\x09here\\x0anewline\n")); /* one event, one line */
    assert_int_equal(count_lines(out), 2);
    free(out);

    assert_string_equal(log_level_name(LOG_LEVEL_WARN), "warn");
    assert_string_equal(log_format_name(LOG_FORMAT_JSON), "json");
}

static void test_json_escaping(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_INFO);
    static const char *const messages[] = {
        "plain",
        "quote \" backslash \\ slash /",
        "controls \x01\x1f\x7f\t\r\n end",
        "utf-8 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "invalid \xff\xfe and overlong \xc0\xaf and surrogate \xed\xa0\x80 and cut \xe2\x82",
    };
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++)
        log_info("%s", messages[i]);
    char *out = captured();
    assert_int_equal(count_lines(out), 5);
    const char *p = out;
    for (size_t i = 0; i < 5; i++) {
        const char *nl = strchr(p, '\n');
        json_t *j = parse_json_line(p, (size_t)(nl - p), "info");
        const char *msg = json_string_value(json_object_get(j, "msg"));
        if (i < 4) {
            assert_string_equal(msg, messages[i]); /* valid text round-trips exactly */
        } else {
            /* invalid bytes become U+00XX, so the line is still valid JSON */
            assert_string_equal(msg, "invalid \xc3\xbf\xc3\xbe and overlong \xc3\x80\xc2\xaf "
                                     "and surrogate \xc3\xad\xc2\xa0\xc2\x80 and cut "
                                     "\xc3\xa2\xc2\x82");
        }
        json_decref(j);
        p = nl + 1;
    }
    free(out);
}

static void test_truncation(void **state)
{
    (void)state;
    size_t n = 3 * LOG_LINE_MAX;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i % 3 == 0 ? '"' : 'a'); /* escapes make it longer still */
    big[n] = '\0';

    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_INFO);
    log_error("%s", big);
    char *out = captured();
    size_t len = strlen(out);
    assert_true(len <= LOG_LINE_MAX);
    assert_int_equal(count_lines(out), 1);
    json_t *j = parse_json_line(out, len - 1, "error");
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_true(strlen(json_string_value(json_object_get(j, "msg"))) > LOG_LINE_MAX / 3);
    json_decref(j);
    free(out);

    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    log_error("%s", big);
    out = captured();
    len = strlen(out);
    assert_true(len <= LOG_LINE_MAX);
    assert_int_equal(count_lines(out), 1);
    assert_memory_equal(out + len - 5, " ...\n", 5);
    free(out);

    /* an access event whose path is cut, in JSON: still one valid object */
    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_INFO);
    log_access_entry e = {.request_id = "r1", .method = "GET", .path = big, .status = 404};
    log_access(&e);
    out = captured();
    len = strlen(out);
    assert_true(len <= LOG_LINE_MAX);
    j = parse_json_line(out, len - 1, "info");
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "r1");
    json_decref(j);
    free(out);
    free(big);
}

static void test_access_json(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_INFO);
    log_access_entry e = {
        .request_id = "abc-123",
        .method = "POST",
        .path = "/v1/models/imdb/classify",
        .route = "/v1/models/{name}/classify",
        .model = "imdb",
        .remote_addr = "127.0.0.1:5555",
        .status = 200,
        .latency_ns = 1234567,
        .queue_ns = 250000,
        .batch_size = 4,
        .n_items = 2,
    };
    log_access(&e);
    log_access_entry bad = {.request_id = "x\"y",
                            .method = "GET",
                            .path = "/nope",
                            .status = 404,
                            .latency_ns = 1000,
                            .error = "no route for GET /nope"};
    log_access(&bad);
    char *out = captured();
    assert_int_equal(count_lines(out), 2);
    const char *nl = strchr(out, '\n');
    json_t *j = parse_json_line(out, (size_t)(nl - out), "info");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "access");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "abc-123");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/v1/models/imdb/classify");
    assert_string_equal(json_string_value(json_object_get(j, "route")),
                        "/v1/models/{name}/classify");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "imdb");
    assert_string_equal(json_string_value(json_object_get(j, "remote_addr")), "127.0.0.1:5555");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_float_equal(json_real_value(json_object_get(j, "latency_ms")), 1.235, 1e-9);
    assert_float_equal(json_real_value(json_object_get(j, "queue_ms")), 0.25, 1e-9);
    assert_int_equal(json_integer_value(json_object_get(j, "batch_size")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "items")), 2);
    assert_null(json_object_get(j, "error"));
    json_decref(j);

    const char *l2 = nl + 1;
    j = parse_json_line(l2, strlen(l2) - 1, "info");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "x\"y");
    assert_null(json_object_get(j, "model")); /* NULL fields are omitted */
    assert_null(json_object_get(j, "route"));
    assert_string_equal(json_string_value(json_object_get(j, "error")), "no route for GET /nope");
    assert_int_equal(json_integer_value(json_object_get(j, "batch_size")), 0);
    json_decref(j);
    free(out);

    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_WARN); /* access events are info */
    log_access(&e);
    out = captured();
    assert_string_equal(out, "");
    free(out);
}

static void test_access_text(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    log_access_entry e = {.request_id = "abc",
                          .method = "POST",
                          .path = "/v1/models/imdb/classify",
                          .route = "/v1/models/{name}/classify",
                          .model = "imdb",
                          .status = 429,
                          .latency_ns = 2000000,
                          .error = "queue \"full\""};
    log_access(&e);
    char *out = captured();
    assert_string_equal(out + 24, " INFO access status=429 remote=- "
                                  "route=/v1/models/{name}/classify model=imdb "
                                  "latency_ms=2.000 queue_ms=0.000 batch_size=0 items=0 "
                                  "error=\"queue \\\"full\\\"\" id=abc method=POST "
                                  "path=\"/v1/models/imdb/classify\"\n");
    free(out);
}

/* A client's path can neither push the fixed fields off the line nor fake
 * one: it comes last, quoted, escaped, and only it is cut. */
static void test_access_long_or_spoofing_path(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    static char path[3 * LOG_LINE_MAX];
    memset(path, 'a', sizeof path - 1);
    memcpy(path, "/x\" status=200 \\", 16);
    path[sizeof path - 1] = 0;
    log_access_entry e = {.request_id = "abc",
                          .method = "GET",
                          .path = path,
                          .route = "other",
                          .remote_addr = "10.0.0.1:5",
                          .status = 401,
                          .error = "unauthorized"};
    log_access(&e);
    char *out = captured();
    assert_true(strlen(out) <= LOG_LINE_MAX);
    assert_non_null(strstr(out, " access status=401 remote=10.0.0.1:5 route=other "));
    assert_non_null(strstr(out, " path=\"/x\\\" status=200 \\\\aaa"));
    assert_true(strlen(out) > 9 && strcmp(out + strlen(out) - 9, "aaa\" ...\n") == 0);
    free(out);
    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_INFO);
    log_access(&e);
    out = captured();
    json_t *j = parse_json_line(out, strlen(out) - 1, "info");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 401);
    assert_string_equal(json_string_value(json_object_get(j, "remote_addr")), "10.0.0.1:5");
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_true(strncmp(json_string_value(json_object_get(j, "path")), path, 100) == 0);
    json_decref(j);
    free(out);
}

/* ---- the access batch ---------------------------------------------------- */

static void log_access_id(const char *id)
{
    log_access_entry e = {.request_id = id, .method = "GET", .path = "/healthz", .status = 200};
    log_access(&e);
}

/* The values of "id=" in the text access lines of s, and the "INFO" messages
 * of the other lines, in order, one per line: "a:ID" or "m:MSG". */
static char *line_sequence(const char *s)
{
    size_t cap = strlen(s) + 1, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = 0;
    for (const char *p = s; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        const char *id = strstr(p, " id=");
        const char *what = id && id < nl ? id + 4 : p + 30; /* "TS INFO " is 30 bytes */
        const char *end = what;
        while (end < nl && *end != ' ')
            end++;
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s;",
                              id && id < nl ? "a:" : "m:", (int)(end - what), what);
        p = nl + 1;
    }
    return out;
}

static void test_access_lines_keep_their_place_around_other_lines(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    log_access_id("a1");
    log_access_id("a2");
    log_info("m1");
    log_access_id("a3");
    log_warn("m2");
    log_access_id("a4");
    char *out = captured();
    char *seq = line_sequence(out);
    assert_string_equal(seq, "a:a1;a:a2;m:m1;a:a3;m:m2;a:a4;");
    free(seq);
    free(out);
}

static void test_access_lines_are_held_until_a_flush(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    /* One line: the batch is neither full nor old when it is appended. */
    log_access_id("held");
    char *out = captured_unflushed();
    assert_string_equal(out, "");
    free(out);
    log_flush();
    out = captured_unflushed();
    assert_non_null(strstr(out, " id=held "));
    assert_int_equal(count_lines(out), 1);
    free(out);
    log_flush(); /* nothing twice */
    out = captured_unflushed();
    assert_string_equal(out, "");
    free(out);
}

/* More lines than the batch holds: it writes itself out as it fills, every
 * line whole and in order. */
static void test_a_full_batch_writes_itself_in_order(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    enum { N = 3000 }; /* ~150 bytes each: several batches */
    char id[16];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "r%d", i);
        log_access_id(id);
    }
    char *early = captured_unflushed();
    int n_early = count_lines(early);
    assert_true(n_early >= N / 2); /* the batch is far smaller than N lines */
    char *rest = captured();
    size_t n1 = strlen(early), n2 = strlen(rest);
    char *all = malloc(n1 + n2 + 1);
    assert_non_null(all);
    memcpy(all, early, n1);
    memcpy(all + n1, rest, n2 + 1);
    assert_int_equal(count_lines(all), N);
    int i = 0;
    for (const char *p = all; *p; i++) {
        char want[24];
        snprintf(want, sizeof want, " id=r%d ", i);
        const char *nl = strchr(p, '\n');
        const char *hit = strstr(p, want);
        assert_true(hit && hit < nl);
        p = nl + 1;
    }
    free(all);
    free(rest);
    free(early);
}

/* A line older than the batch's age limit goes out with the next line. */
static void test_an_old_batch_goes_out_with_the_next_line(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    log_access_id("old");
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 150 * 1000000L}; /* > the 100 ms limit */
    nanosleep(&pause, NULL);
    log_access_id("new");
    char *out = captured_unflushed();
    char *seq = line_sequence(out);
    assert_string_equal(seq, "a:old;a:new;");
    free(seq);
    free(out);
}

/* log_set_fd sends what is in the batch to the old fd. */
static void test_set_fd_flushes_to_the_old_fd(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    log_access_id("to-old");
    log_set_fd(fds[1]);
    log_access_id("to-new");
    log_flush();
    log_set_fd(capture_fd);
    char *out = captured_unflushed();
    assert_non_null(strstr(out, " id=to-old "));
    assert_null(strstr(out, "to-new"));
    free(out);
    char buf[512];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = 0;
    assert_non_null(strstr(buf, " id=to-new "));
    assert_null(strstr(buf, "to-old"));
    close(fds[0]);
    close(fds[1]);
}

/* The hand-formatted numbers read as printf's would. */
static void test_access_numbers(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    static const uint64_t ns[] = {
        0, 499, 500, 999, 1000, 1234567, 999999, 1000000, 60123456789ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        log_access_entry e = {.request_id = "n",
                              .status = i % 2 ? 503 : -7,
                              .latency_ns = ns[i],
                              .queue_ns = ns[sizeof ns / sizeof ns[0] - 1 - i],
                              .batch_size = (uint32_t)(ns[i] & 0xffffffffu),
                              .n_items = UINT32_MAX};
        log_access(&e);
        char *out = captured();
        char want[256];
        uint64_t q = e.queue_ns;
        /* Microseconds, rounded half up, then "ms.uuu". */
        uint64_t lu = ns[i] / 1000 + (ns[i] % 1000 >= 500), qu = q / 1000 + (q % 1000 >= 500);
        snprintf(want, sizeof want,
                 " status=%d remote=- route=- model=- latency_ms=%llu.%03llu queue_ms=%llu.%03llu "
                 "batch_size=%u items=%u id=n ",
                 e.status, (unsigned long long)(lu / 1000), (unsigned long long)(lu % 1000),
                 (unsigned long long)(qu / 1000), (unsigned long long)(qu % 1000), e.batch_size,
                 e.n_items);
        if (!strstr(out, want))
            fail_msg("expected '%s' in '%s'", want, out);
        if (ns[i] == 1234567) {
            char f[32];
            snprintf(f, sizeof f, "latency_ms=%.3f ", (double)ns[i] / 1e6);
            assert_non_null(strstr(out, f));
        }
        free(out);
    }
}

/* The timestamp, formatted once a second, is the current UTC time. */
static void test_timestamp_is_now(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
    for (int round = 0; round < 3; round++) {
        time_t before = time(NULL);
        log_info("tick");
        time_t after = time(NULL);
        char *out = captured();
        bool match = false;
        for (time_t t = before; t <= after; t++) {
            struct tm tm;
            char want[32];
            gmtime_r(&t, &tm);
            strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S.", &tm);
            match = match || strncmp(out, want, 20) == 0;
        }
        if (!match)
            fail_msg("timestamp of '%s' is not between %ld and %ld", out, (long)before,
                     (long)after);
        assert_true(out[20] >= '0' && out[20] <= '9' && out[23] == 'Z' && out[24] == ' ');
        free(out);
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 400 * 1000000L}; /* cross a second */
        nanosleep(&pause, NULL);
    }
}

#define WRITERS 4
#define LINES_PER_WRITER 500

static void *writer(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < LINES_PER_WRITER; i++) {
        if (i % 3 == 1) { /* access lines in between: the batch keeps each writer's order */
            char msg[64];
            snprintf(msg, sizeof msg, "writer %ld line %d", id, i);
            log_access_entry e = {.request_id = msg, .status = 200};
            log_access(&e);
        } else {
            log_info("writer %ld line %d %s", id, i,
                     "padding padding padding padding padding padding padding padding");
        }
    }
    return NULL;
}

static void test_concurrent_writers_whole_lines(void **state)
{
    (void)state;
    log_configure(LOG_FORMAT_JSON, LOG_LEVEL_INFO);
    pthread_t th[WRITERS];
    for (long i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)i), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    char *out = captured();
    assert_int_equal(count_lines(out), WRITERS * LINES_PER_WRITER);
    int seen[WRITERS] = {0};
    for (const char *p = out; *p;) {
        const char *nl = strchr(p, '\n');
        json_t *j = parse_json_line(p, (size_t)(nl - p), "info");
        long w;
        int line;
        const char *msg = json_string_value(json_object_get(j, "msg"));
        if (!msg)
            msg = json_string_value(json_object_get(j, "request_id"));
        assert_non_null(msg);
        assert_int_equal(sscanf(msg, "writer %ld line %d", &w, &line), 2);
        assert_true(w >= 0 && w < WRITERS);
        assert_int_equal(line, seen[w]); /* each writer's lines in its order */
        seen[w]++;
        json_decref(j);
        p = nl + 1;
    }
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_levels_and_text_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_long_or_spoofing_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_lines_keep_their_place_around_other_lines,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_lines_are_held_until_a_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_batch_writes_itself_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_old_batch_goes_out_with_the_next_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_set_fd_flushes_to_the_old_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_is_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers_whole_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
