/* compiler: attributes shared by every module, and the error-message convention.
 *
 * Fallible functions return 0 on success and -1 on failure. On failure they
 * write a NUL-terminated message into the caller's buffer `err` of `err_cap`
 * bytes (which may be NULL/0), naming the file, key or tensor at fault. */
#ifndef FF_COMPILER_H
#define FF_COMPILER_H

#define FF_MUST_CHECK __attribute__((warn_unused_result))
#define FF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

#endif
