/* settings_api_key: where the API key comes from (the environment, a key
 * file or the config) and what a usable key looks like (settings.h). */
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest key, as for server.api_key in the table. */
#define API_KEY_MAX 4096

/* A key's bytes: 1..API_KEY_MAX, no control characters, not only white space. */
static int key_check(const char *source, const char *key, char *err, size_t err_cap)
{
    size_t n = strlen(key);
    if (n == 0 || n > API_KEY_MAX) {
        snprintf(err, err_cap, "%s: the API key must be 1 to %d bytes, got %zu", source,
                 API_KEY_MAX, n);
        return -1;
    }
    bool blank = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(err, err_cap, "%s: the API key has a control character (byte %zu)", source, i);
            return -1;
        }
        if (c != ' ')
            blank = false;
    }
    if (blank) {
        snprintf(err, err_cap, "%s: the API key is only white space", source);
        return -1;
    }
    return 0;
}

/* Reads the key file into a new string (one trailing "\n" or "\r\n" dropped). */
static char *key_file_read(const char *path, char *err, size_t err_cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, err_cap, "server.api_key_file: %s: cannot read: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_cap, "server.api_key_file: %s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_mode & (S_IRWXO | S_IWGRP)) {
        snprintf(err, err_cap,
                 "server.api_key_file: %s: mode %04o lets other users read or change the API "
                 "key; chmod 0600 or 0640",
                 path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return NULL;
    }
    char *buf = malloc(API_KEY_MAX + 3);
    ssize_t got = buf ? read(fd, buf, API_KEY_MAX + 2) : -1;
    int e = errno;
    close(fd);
    if (got < 0) {
        snprintf(err, err_cap, "server.api_key_file: %s: cannot read: %s", path,
                 buf ? strerror(e) : "out of memory");
        free(buf);
        return NULL;
    }
    size_t n = (size_t)got;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        snprintf(err, err_cap, "server.api_key_file: %s: the API key has a NUL byte", path);
        free(buf);
        return NULL;
    }
    return buf;
}

int settings_resolve_api_key(settings *s, const char *env_key, char *err, size_t err_cap)
{
    settings_server *sv = &s->server;
    if (sv->api_key && sv->api_key_file) {
        snprintf(err, err_cap, "server.api_key and server.api_key_file are both set: keep one");
        return -1;
    }
    const char *source = "server.api_key";
    if (env_key && *env_key) {
        char *copy = strdup(env_key);
        if (!copy) {
            snprintf(err, err_cap, "out of memory");
            return -1;
        }
        free(sv->api_key);
        sv->api_key = copy;
        source = "FASTFORMERD_API_KEY";
    } else if (sv->api_key_file) {
        char *key = key_file_read(sv->api_key_file, err, err_cap);
        if (!key)
            return -1;
        free(sv->api_key);
        sv->api_key = key;
        source = "server.api_key_file";
    }
    if (sv->api_key && key_check(source, sv->api_key, err, err_cap) != 0)
        return -1;
    return 0;
}
