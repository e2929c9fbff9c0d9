/* openapi: the daemon's OpenAPI 3 document (server/openapi.json), embedded
 * into the binary at build time so GET /openapi.json needs no file. */
#ifndef FF_OPENAPI_H
#define FF_OPENAPI_H

#include <stddef.h>

/* The document's bytes, followed by a NUL that is not counted in
 * openapi_json_bytes. Static, read-only; any thread. Content-Type:
 * application/json. */
extern const char openapi_json[];
extern const size_t openapi_json_bytes;

#endif
