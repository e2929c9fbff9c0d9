/* mono_clock: see mono_clock.h. */
#include "mono_clock.h"

#include <time.h>

int64_t mono_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
