/* error_message: the one formatter of the error convention (compiler.h):
 * fallible functions write a NUL-terminated message into the caller's `err`
 * of `err_cap` bytes, which may be NULL/0 when the caller does not want it. */
#ifndef FF_ERROR_MESSAGE_H
#define FF_ERROR_MESSAGE_H

#include <stddef.h>

#include "compiler.h"

/* printf into err[0..err_cap), truncated, always terminated; nothing when
 * err is NULL or err_cap is 0. Any thread. */
void error_message_set(char *err, size_t err_cap, const char *fmt, ...) FF_PRINTF(3, 4);

#endif
