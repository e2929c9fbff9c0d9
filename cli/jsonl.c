/* jsonl: a getline loop plus json_loadb per line. */
#include "jsonl.h"

#include "error_message.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int jsonl_reader_open(jsonl_reader *r, const char *path, char *err, size_t err_cap)
{
    assert(r != NULL);
    *r = (jsonl_reader){0};
    if (path == NULL || strcmp(path, "-") == 0) {
        r->file = stdin;
        r->name = "stdin";
        return 0;
    }
    r->file = fopen(path, "r");
    if (!r->file) {
        error_message_set(err, err_cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    r->name = path;
    r->owns_file = true;
    return 0;
}

void jsonl_reader_close(jsonl_reader *r)
{
    if (!r)
        return;
    if (r->owns_file && r->file)
        fclose(r->file);
    free(r->buf);
    *r = (jsonl_reader){0};
}

jsonl_status jsonl_reader_next(jsonl_reader *r, json_t **out, char *err, size_t err_cap)
{
    assert(r != NULL && r->file != NULL && out != NULL);
    *out = NULL;
    errno = 0;
    ssize_t n = getline(&r->buf, &r->buf_cap, r->file);
    if (n < 0) {
        if (ferror(r->file)) {
            error_message_set(err, err_cap, "%s: %s", r->name, strerror(errno ? errno : EIO));
            return JSONL_IO_ERROR;
        }
        return JSONL_EOF;
    }
    r->line++;
    size_t len = (size_t)n;
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", r->buf[i]) && r->buf[i] != '\0')
        i++;
    if (i == len)
        return JSONL_BLANK;

    json_error_t jerr;
    json_t *v = json_loadb(r->buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!v) {
        error_message_set(err, err_cap, "invalid JSON at column %d: %s", jerr.column, jerr.text);
        return JSONL_BAD;
    }
    *out = v;
    return JSONL_VALUE;
}
