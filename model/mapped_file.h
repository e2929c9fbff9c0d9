/* mapped_file: a whole file mapped read-only into memory. */
#ifndef FF_MAPPED_FILE_H
#define FF_MAPPED_FILE_H

#include <stddef.h>

#include "compiler.h"

typedef struct {
    const void *data; /* read-only mapping, or NULL for an empty file */
    size_t n_bytes;
} mapped_file;

/* Maps `path`. On failure returns -1 with "PATH: strerror" in err. */
FF_MUST_CHECK int mapped_file_open(const char *path, mapped_file *out, char *err, size_t err_cap);
void mapped_file_close(mapped_file *f);

#endif
