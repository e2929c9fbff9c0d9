/* error_message: see error_message.h. */
#include "error_message.h"

#include <stdarg.h>
#include <stdio.h>

void error_message_set(char *err, size_t err_cap, const char *fmt, ...)
{
    if (err == NULL || err_cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
}
