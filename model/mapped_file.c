/* mapped_file: maps a whole file read-only with mmap, so the weights are paged
 * in on demand and shared between processes. An empty file has no mapping
 * (data = NULL, n_bytes = 0), because mmap of length 0 is an error. */
#include "mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int mapped_file_open(const char *path, mapped_file *out, char *err, size_t err_cap)
{
    out->data = NULL;
    out->n_bytes = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_cap, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > SIZE_MAX) {
        snprintf(err, err_cap, "%s: file too large to map", path);
        close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    if (n == 0) {
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    int saved = errno;
    close(fd); /* the mapping keeps the file open */
    if (p == MAP_FAILED) {
        snprintf(err, err_cap, "%s: mmap: %s", path, strerror(saved));
        return -1;
    }
    out->data = p;
    out->n_bytes = n;
    return 0;
}

void mapped_file_close(mapped_file *f)
{
    if (f == NULL)
        return;
    if (f->data != NULL)
        munmap((void *)f->data, f->n_bytes);
    f->data = NULL;
    f->n_bytes = 0;
}
