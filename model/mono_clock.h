/* mono_clock: the one monotonic clock (CLOCK_MONOTONIC) in microseconds, for
 * the daemon and the CLI alike. Request acceptance, queueing, deadlines,
 * worker heartbeats, the systemd watchdog and benchmark timings are all
 * measured on it, so their differences are meaningful. Thread-safe. */
#ifndef FF_MONO_CLOCK_H
#define FF_MONO_CLOCK_H

#include <stdint.h>

int64_t mono_clock_us(void);

#endif
