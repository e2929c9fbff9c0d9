/* tls_probe: the client side of one HTTPS exchange on a connected socket,
 * for `fastformerd --healthcheck` against a TLS listener. It checks that the
 * daemon completes a handshake and answers; it does not verify the
 * certificate (a liveness probe of the local daemon sends no secret, and
 * must not fail because a renewed certificate on disk is not served yet). */
#ifndef FF_TLS_PROBE_H
#define FF_TLS_PROBE_H

#include <stddef.h>
#include <sys/types.h>

#include "compiler.h"

/* Handshakes over `fd` (TLS 1.2 or 1.3, server name `host` unless it is an
 * address), sends `request`, and reads the answer's first bytes into resp
 * (NUL-terminated). Returns the bytes read, or -1 with a message in err
 * (e.g. "TLS handshake: ..."). The caller closes fd. */
FF_MUST_CHECK ssize_t tls_probe_exchange(int fd, const char *host, const char *request, char *resp,
                                         size_t resp_cap, char *err, size_t err_cap);

#endif
