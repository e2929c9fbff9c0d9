/* whole_file: read(2) to the end of file into a buffer that grows by
 * doubling from the file's stat size (see whole_file.h). */
#include "whole_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error_message.h"

/* Reads fd to its end into *buf (capacity *cap, grown as needed, always
 * with room for a NUL). Returns 0, -1 with errno set, -2 when the file has
 * more than max_bytes, -3 when out of memory. */
static int read_to_end(int fd, size_t max_bytes, char **buf, size_t *cap, size_t *len)
{
    size_t limit = max_bytes > SIZE_MAX - 2 ? SIZE_MAX : max_bytes + 2;
    size_t got = 0; /* <= max_bytes at the top of the loop */
    for (;;) {
        if (*cap - got < 2) { /* room for one more byte and the NUL */
            size_t want = *cap > SIZE_MAX / 2 ? SIZE_MAX : *cap * 2;
            if (want > limit)
                want = limit;
            char *grown = realloc(*buf, want);
            if (grown == NULL)
                return -3;
            *buf = grown;
            *cap = want;
        }
        ssize_t r = read(fd, *buf + got, *cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > max_bytes)
            return -2;
    }
    *len = got;
    return 0;
}

int whole_file_read(const char *path, size_t max_bytes, char **buf, size_t *len, char *err,
                    size_t err_cap)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error_message_set(err, err_cap, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        error_message_set(err, err_cap, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        error_message_set(err, err_cap, "%s: cannot read: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size > 0 && (uint64_t)st.st_size > max_bytes) {
        error_message_set(err, err_cap, "%s: cannot read: larger than %zu bytes", path, max_bytes);
        close(fd);
        return -1;
    }
    /* Room for the stat size, one byte to see the end, and the NUL. */
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 2 : 4096;
    char *b = malloc(cap);
    int rc = b ? read_to_end(fd, max_bytes, &b, &cap, len) : -3;
    int saved = errno;
    close(fd);
    if (rc != 0) {
        free(b);
        *len = 0;
        if (rc == -1)
            error_message_set(err, err_cap, "%s: cannot read: %s", path, strerror(saved));
        else if (rc == -2)
            error_message_set(err, err_cap, "%s: cannot read: larger than %zu bytes", path,
                              max_bytes);
        else
            error_message_set(err, err_cap, "%s: out of memory", path);
        return -1;
    }
    b[*len] = '\0';
    *buf = b;
    return 0;
}
