/* test_notify: sd-notify messages as systemd would receive them, through a
 * unix datagram socket named by NOTIFY_SOCKET; the watchdog tick against a
 * fake clock; and the no-op behaviour without NOTIFY_SOCKET. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "mono_clock.h"
#include "notify.h"

typedef struct {
    int fd;
    char path[108];
} listener;

/* Binds a datagram socket (a file in /tmp, or an abstract one when
 * `abstract`) and points NOTIFY_SOCKET at it. */
static void listener_open(listener *l, bool abstract)
{
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(l->fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t len;
    if (abstract) {
        snprintf(l->path, sizeof l->path, "@fastformerd-test-notify-%d", (int)getpid());
        memcpy(sa.sun_path + 1, l->path + 1, strlen(l->path) - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(l->path));
    } else {
        snprintf(l->path, sizeof l->path, "/tmp/fastformerd-test-notify-%d.sock", (int)getpid());
        unlink(l->path);
        memcpy(sa.sun_path, l->path, strlen(l->path) + 1);
        len = sizeof sa;
    }
    assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", l->path, 1), 0);
}

static void listener_close(listener *l)
{
    close(l->fd);
    if (l->path[0] == '/')
        unlink(l->path);
    unsetenv("NOTIFY_SOCKET");
}

/* The next datagram, or "" when none is waiting (sd_notify has returned, so
 * anything sent is already queued). */
static const char *next_message(listener *l)
{
    static char buf[4096];
    ssize_t n = recv(l->fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (n < 0) {
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        n = 0;
    }
    buf[n] = '\0';
    return buf;
}

static void test_state_messages(void **state)
{
    (void)state;
    listener l;
    listener_open(&l, false);
    assert_int_equal(notify_status("loading model %s (%d/%d)", "imdb", 1, 3), 1);
    assert_string_equal(next_message(&l), "STATUS=loading model imdb (1/3)");
    assert_int_equal(notify_ready(), 1);
    assert_string_equal(next_message(&l), "READY=1");

    uint64_t before = (uint64_t)mono_clock_us();
    assert_int_equal(notify_reloading(), 1);
    uint64_t after = (uint64_t)mono_clock_us();
    const char *msg = next_message(&l);
    assert_memory_equal(msg, "RELOADING=1\nMONOTONIC_USEC=", 27);
    unsigned long long t = strtoull(msg + 27, NULL, 10);
    assert_true(t >= before && t <= after);

    assert_int_equal(notify_ready(), 1);
    assert_string_equal(next_message(&l), "READY=1");
    assert_int_equal(notify_stopping(), 1);
    assert_string_equal(next_message(&l), "STOPPING=1");
    assert_int_equal(notify_extend_timeout(30000000), 1);
    assert_string_equal(next_message(&l), "EXTEND_TIMEOUT_USEC=30000000");
    assert_int_equal(notify_watchdog_ping(), 1);
    assert_string_equal(next_message(&l), "WATCHDOG=1");
    assert_string_equal(next_message(&l), "");
    listener_close(&l);
}

static void test_status_is_one_line_and_bounded(void **state)
{
    (void)state;
    listener l;
    listener_open(&l, true); /* abstract socket, as some containers use */
    assert_int_equal(notify_status("two\nlines\r"), 1);
    assert_string_equal(next_message(&l), "STATUS=two lines ");
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(notify_status("%s", big), 1);
    const char *msg = next_message(&l);
    assert_int_equal(strlen(msg), 7 + 256);
    listener_close(&l);
}

static void test_noop_without_socket(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(notify_ready(), 0);
    assert_int_equal(notify_reloading(), 0);
    assert_int_equal(notify_stopping(), 0);
    assert_int_equal(notify_status("x"), 0);
    assert_int_equal(notify_watchdog_ping(), 0);
}

static void test_send_failure_is_reported(void **state)
{
    (void)state;
    /* a socket path nobody listens on: a negative errno, not a crash */
    setenv("NOTIFY_SOCKET", "/tmp/fastformerd-test-notify-nobody.sock", 1);
    unlink("/tmp/fastformerd-test-notify-nobody.sock");
    assert_true(notify_ready() < 0);
    unsetenv("NOTIFY_SOCKET");
}

static bool alive_flag;
static int liveness_calls;
static bool fake_liveness(void *ctx)
{
    assert_ptr_equal(ctx, &alive_flag);
    liveness_calls++;
    return alive_flag;
}

static void test_watchdog_disabled(void **state)
{
    (void)state;
    notify_watchdog w;
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_false(notify_watchdog_init(&w, NULL, NULL));
    assert_int_equal(notify_watchdog_tick(&w, 123), -1);

    /* WATCHDOG_USEC meant for another process */
    setenv("WATCHDOG_USEC", "2000000", 1);
    setenv("WATCHDOG_PID", "1", 1);
    assert_false(notify_watchdog_init(&w, NULL, NULL));
    assert_int_equal(notify_watchdog_tick(&w, 123), -1);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

static void test_watchdog_ticks(void **state)
{
    (void)state;
    listener l;
    listener_open(&l, false);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_USEC", "2000000", 1);
    setenv("WATCHDOG_PID", pid, 1);

    notify_watchdog w;
    alive_flag = true;
    liveness_calls = 0;
    assert_true(notify_watchdog_init(&w, fake_liveness, &alive_flag));
    assert_int_equal(w.interval_us, 1000000);

    uint64_t t0 = 5000000;
    assert_int_equal(notify_watchdog_tick(&w, t0), 1000); /* first tick pings at once */
    assert_string_equal(next_message(&l), "WATCHDOG=1");
    assert_int_equal(notify_watchdog_tick(&w, t0 + 400000), 600); /* not due */
    assert_string_equal(next_message(&l), "");
    assert_int_equal(notify_watchdog_tick(&w, t0 + 999999), 1); /* rounds up to 1 ms */
    assert_string_equal(next_message(&l), "");
    assert_int_equal(liveness_calls, 1); /* liveness is checked only when a ping is due */

    alive_flag = false; /* a stuck worker: no ping, so systemd's watchdog fires */
    assert_int_equal(notify_watchdog_tick(&w, t0 + 1000000), 1000);
    assert_string_equal(next_message(&l), "");
    assert_int_equal(w.n_liveness_failures, 1);

    alive_flag = true;
    assert_int_equal(notify_watchdog_tick(&w, t0 + 2500000), 1000);
    assert_string_equal(next_message(&l), "WATCHDOG=1");
    assert_int_equal(w.n_pings, 2);
    assert_int_equal(liveness_calls, 3);

    /* the environment is left for children and re-inits */
    assert_non_null(getenv("WATCHDOG_USEC"));
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    listener_close(&l);
}

static void test_watchdog_without_liveness(void **state)
{
    (void)state;
    listener l;
    listener_open(&l, false);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_USEC", "3000", 1); /* tiny: 1.5 ms period */
    setenv("WATCHDOG_PID", pid, 1);
    notify_watchdog w;
    assert_true(notify_watchdog_init(&w, NULL, NULL));
    assert_int_equal(w.interval_us, 1500);
    assert_int_equal(notify_watchdog_tick(&w, 10), 2); /* 1.5 ms rounds up */
    assert_string_equal(next_message(&l), "WATCHDOG=1");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    listener_close(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_messages),
        cmocka_unit_test(test_status_is_one_line_and_bounded),
        cmocka_unit_test(test_noop_without_socket),
        cmocka_unit_test(test_send_failure_is_reported),
        cmocka_unit_test(test_watchdog_disabled),
        cmocka_unit_test(test_watchdog_ticks),
        cmocka_unit_test(test_watchdog_without_liveness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
