/* notify: thin wrappers over sd_notify(3) and sd_watchdog_enabled(3), plus
 * the watchdog tick the daemon's main loop drives. */
#include "notify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "mono_clock.h"

int notify_ready(void)
{
    return sd_notify(0, "READY=1");
}

int notify_reloading(void)
{
    /* systemd >= 253 (Type=notify-reload) wants the time the reload began. */
    char msg[64];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, (uint64_t)mono_clock_us());
    return sd_notify(0, msg);
}

int notify_stopping(void)
{
    return sd_notify(0, "STOPPING=1");
}

int notify_status(const char *fmt, ...)
{
    char msg[7 + 256 + 1] = "STATUS=";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + 7, sizeof msg - 7, fmt, ap);
    va_end(ap);
    for (char *p = msg + 7; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return sd_notify(0, msg);
}

int notify_extend_timeout(uint64_t usec)
{
    char msg[64];
    snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=%" PRIu64, usec);
    return sd_notify(0, msg);
}

int notify_watchdog_ping(void)
{
    return sd_notify(0, "WATCHDOG=1");
}

bool notify_watchdog_init(notify_watchdog *w, notify_liveness_fn liveness, void *ctx)
{
    memset(w, 0, sizeof *w);
    w->liveness = liveness;
    w->ctx = ctx;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        w->interval_us = usec / 2 ? usec / 2 : 1;
        w->next_due_us = 0; /* the first tick pings at once */
    }
    return w->interval_us != 0;
}

int notify_watchdog_tick(notify_watchdog *w, uint64_t now_us)
{
    if (w->interval_us == 0)
        return -1;
    if (now_us >= w->next_due_us) {
        if (w->liveness == NULL || w->liveness(w->ctx)) {
            if (notify_watchdog_ping() > 0)
                w->n_pings++;
        } else {
            w->n_liveness_failures++;
        }
        w->next_due_us = now_us + w->interval_us;
    }
    uint64_t wait_us = w->next_due_us - now_us;
    uint64_t ms = (wait_us + 999) / 1000;
    if (ms < 1)
        ms = 1;
    if (ms > INT32_MAX)
        ms = INT32_MAX;
    return (int)ms;
}
