/* mono_clock: the daemon's one monotonic clock (CLOCK_MONOTONIC) in
 * microseconds. Request acceptance, queueing, deadlines and worker heartbeats
 * are all measured on it, so their differences are meaningful. Thread-safe. */
#ifndef FF_MONO_CLOCK_H
#define FF_MONO_CLOCK_H

#include <stdint.h>

int64_t mono_clock_us(void);

#endif
