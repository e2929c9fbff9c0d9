/* whole_file: the one reader of a whole file into memory, for small text
 * files parsed as a buffer (the YAML config, a news catalog, /proc files).
 * The model weights are mapped instead (mapped_file.h). */
#ifndef FF_WHOLE_FILE_H
#define FF_WHOLE_FILE_H

#include <stddef.h>

#include "compiler.h"

/* Reads the regular file `path` to its end (not to its stat size, so /proc
 * files work) into a new buffer *buf of *len bytes plus a terminating NUL;
 * the caller frees it. At most max_bytes are accepted. On failure returns -1
 * with *buf NULL, *len 0 and one of
 *   "PATH: cannot read: <strerror>"
 *   "PATH: cannot read: not a regular file"
 *   "PATH: cannot read: larger than MAX bytes"
 *   "PATH: out of memory"
 * in err. Any thread. */
FF_MUST_CHECK int whole_file_read(const char *path, size_t max_bytes, char **buf, size_t *len,
                                  char *err, size_t err_cap);

#endif
