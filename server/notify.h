/* notify: the systemd service protocol (sd_notify from libsystemd) for a
 * Type=notify / Type=notify-reload unit: READY=1, RELOADING=1, STOPPING=1,
 * STATUS= and the watchdog.
 *
 * Without NOTIFY_SOCKET in the environment every call is a no-op returning 0.
 * Calls are stateless (sd_notify opens, sends and closes a datagram each
 * time) and may come from any thread. A failure to notify is never fatal for
 * the daemon: callers log the negative return and carry on.
 *
 * Return convention for the senders: 1 = sent, 0 = NOTIFY_SOCKET unset (no-op),
 * negative errno = the send failed. */
#ifndef FF_NOTIFY_H
#define FF_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

/* "READY=1": once listening and every model is loaded (and again after a reload). */
int notify_ready(void);

/* "RELOADING=1\nMONOTONIC_USEC=<now>": on SIGHUP, before re-reading the config.
 * Follow with notify_ready() when the reload ends (success or failure). */
int notify_reloading(void);

/* "STOPPING=1": on SIGTERM/SIGINT, before draining. */
int notify_stopping(void);

/* "STATUS=<text>": one short line of progress (printf-style; newlines are
 * replaced by spaces; truncated to 256 bytes). */
int notify_status(const char *fmt, ...) FF_PRINTF(1, 2);

/* "EXTEND_TIMEOUT_USEC=<usec>": asks systemd for more start-up (or stop) time,
 * e.g. while a large news catalog is encoded. */
int notify_extend_timeout(uint64_t usec);

/* "WATCHDOG=1": one ping. Prefer the notify_watchdog loop below. */
int notify_watchdog_ping(void);

/* ---- watchdog loop ------------------------------------------------------
 * The daemon drives it from its main loop (which waits on signals with a
 * timeout):
 *
 *     notify_watchdog wd;
 *     notify_watchdog_init(&wd, workers_alive, rt);
 *     for (;;) {
 *         int timeout_ms = notify_watchdog_tick(&wd, now_us());   // -1 = disabled
 *         wait_for_signal(timeout_ms);   ...
 *     }
 *
 * When WATCHDOG_USEC is set for this process (sd_watchdog_enabled), a tick
 * that is due sends WATCHDOG=1 only if the liveness callback returns true;
 * when it returns false no ping is sent (so systemd's watchdog fires and
 * restarts the service) and the failure is counted. Pings are due every
 * WATCHDOG_USEC / 2. */

/* Returns true when everything the ping vouches for is alive (e.g. every
 * worker thread made progress or is idle). Called on the thread that ticks;
 * must not block. */
typedef bool (*notify_liveness_fn)(void *ctx);

typedef struct {
    uint64_t interval_us;         /* ping period (WATCHDOG_USEC / 2); 0 = watchdog disabled */
    uint64_t next_due_us;         /* monotonic time of the next ping */
    notify_liveness_fn liveness;  /* may be NULL: always alive */
    void *ctx;                    /* borrowed, passed to liveness */
    uint64_t n_pings;             /* pings sent */
    uint64_t n_liveness_failures; /* due ticks where liveness returned false */
} notify_watchdog;

/* Reads WATCHDOG_USEC/WATCHDOG_PID (without unsetting them) and prepares *w.
 * The first tick pings at once. Returns true when the watchdog is enabled. */
bool notify_watchdog_init(notify_watchdog *w, notify_liveness_fn liveness, void *ctx);

/* If a ping is due at `now_us` (mono_clock_us()), checks
 * liveness and pings. Returns the milliseconds until the next tick is due
 * (at least 1, rounded up), or -1 when the watchdog is disabled. Call from
 * one thread only (the one that owns *w). */
int notify_watchdog_tick(notify_watchdog *w, uint64_t now_us);

#endif
