/* jsonl: reads a JSON Lines stream one line at a time, counting lines, for
 * the CLI's predict and eval inputs. Each line is parsed on its own, so a
 * bad line is reported by number and the rest can still be read. */
#ifndef FF_JSONL_H
#define FF_JSONL_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "compiler.h"

typedef struct {
    FILE *file;
    const char *name; /* for messages: the path, or "stdin" */
    size_t line;      /* 1-based number of the line last read */
    char *buf;        /* owned line buffer (getline) */
    size_t buf_cap;
    bool owns_file;
} jsonl_reader;

/* Opens `path` for reading, or stdin when path is NULL or "-". On failure
 * returns -1 with "PATH: strerror" in err. Close with jsonl_reader_close. */
FF_MUST_CHECK int jsonl_reader_open(jsonl_reader *r, const char *path, char *err, size_t err_cap);
void jsonl_reader_close(jsonl_reader *r);

typedef enum {
    JSONL_VALUE, /* *out is a new reference to the line's JSON value */
    JSONL_BLANK, /* a line of only whitespace: skip it */
    JSONL_BAD,   /* the line is not valid JSON: err says where and why */
    JSONL_EOF,
    JSONL_IO_ERROR, /* reading failed: err has strerror */
} jsonl_status;

/* Reads and parses the next line (r->line is its number). The caller owns
 * *out for JSONL_VALUE and must json_decref it. */
jsonl_status jsonl_reader_next(jsonl_reader *r, json_t **out, char *err, size_t err_cap);

#endif
