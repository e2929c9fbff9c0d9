/* trace_context: the W3C Trace Context `traceparent` header
 * (https://www.w3.org/TR/trace-context/): parsing what a caller sends and
 * making the daemon's own span. Pure except trace_ids_new's counter; any
 * thread.
 *
 *   traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
 *                version-trace_id(32 hex)-parent_id(16 hex)-flags(2 hex)
 *
 * The ids are lowercase hex and never all zero; version ff is invalid; a
 * later version may append "-..." fields, which are ignored (the spec's
 * forward compatibility rule). */
#ifndef FF_TRACE_CONTEXT_H
#define FF_TRACE_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

#define TRACE_ID_HEX 32
#define TRACE_SPAN_HEX 16
/* "00-" + 32 + "-" + 16 + "-" + 2 */
#define TRACEPARENT_LEN 55

typedef struct {
    char trace_id[TRACE_ID_HEX + 1];
    char parent_id[TRACE_SPAN_HEX + 1];
    uint8_t flags; /* trace-flags; bit 0 = sampled */
} trace_parent;

/* Parses a traceparent header value. False (and *out unspecified) for
 * anything malformed: wrong length or separators, upper-case or non-hex
 * digits, version ff, an all-zero id, or a version-00 header with trailing
 * data. */
FF_MUST_CHECK bool trace_parent_parse(const char *header, trace_parent *out);

/* A fresh span id (16 hex digits, never all zero) and, when trace_id is not
 * NULL, a fresh trace id (32 hex digits): from a per-process random seed and
 * an atomic counter, so two requests never share one. Any thread. */
void trace_ids_new(char trace_id[TRACE_ID_HEX + 1], char span_id[TRACE_SPAN_HEX + 1]);

/* Writes "00-TRACE-SPAN-FLAGS" (TRACEPARENT_LEN bytes and a NUL) into out.
 * Only the sampled bit of flags is kept (version 00 defines no other). */
void trace_parent_format(const char *trace_id, const char *span_id, uint8_t flags,
                         char out[TRACEPARENT_LEN + 1]);

#endif
