/* tls_identity: the daemon's TLS certificate chain and private key, read
 * from PEM files and handed to GnuTLS through libmicrohttpd's certificate
 * callback (MHD_OPTION_HTTPS_CERT_CALLBACK), so that a SIGHUP can put a
 * renewed pair in service without a restart: new handshakes get the new
 * pair, connections already open keep theirs.
 *
 * Ownership: the process serves one identity at a time (the callback has no
 * context pointer, so the served identity is process-wide). An identity
 * handed to tls_identity_serve belongs to this module; one it replaces is
 * retired, not freed, because sessions that picked it may still point at it
 * (GnuTLS does not copy what the callback returns), and is freed by
 * tls_identity_shutdown once the listener is stopped. Only a renewal that
 * changes the files' bytes retires one (see tls_identity_same). */
#ifndef FF_TLS_IDENTITY_H
#define FF_TLS_IDENTITY_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

typedef struct tls_identity tls_identity;

/* The accepted values of server.tls_min_version, by index. */
typedef enum { TLS_MIN_1_2 = 0, TLS_MIN_1_3 = 1 } tls_min_version;

/* The GnuTLS priority string for a minimum protocol version: GnuTLS's NORMAL
 * cipher suites, and only TLS 1.2 and 1.3 (or only 1.3). Static. */
const char *tls_priorities(tls_min_version min);

/* Reads the PEM certificate chain (leaf first) and the PEM private key, and
 * checks that the key belongs to the leaf. Returns 0 with *out, or -1 with a
 * message naming the file and the problem, e.g.
 *   "tls_cert_file /etc/x.pem: no PEM certificate in it"
 *   "tls_key_file /etc/k.pem: not a PEM private key (...)"
 *   "tls_key_file /etc/k.pem does not match the certificate in /etc/x.pem"
 * Any thread. */
FF_MUST_CHECK int tls_identity_load(const char *cert_file, const char *key_file, tls_identity **out,
                                    char *err, size_t err_cap);

/* True when a and b were read from the same bytes (a SIGHUP with unchanged
 * files keeps the served identity). */
bool tls_identity_same(const tls_identity *a, const tls_identity *b);

/* A one-line description for the log: the leaf's subject, serial (hex) and
 * expiry, e.g. "CN=localhost, serial 1a2b, expires 2027-01-02 03:04:05 UTC". */
void tls_identity_describe(const tls_identity *id, char *buf, size_t cap);

/* When the leaf expires (notAfter, Unix seconds). */
long long tls_identity_not_after(const tls_identity *id);

void tls_identity_free(tls_identity *id);

/* Makes `id` (taken) the served identity; the previous one is retired.
 * Main thread. */
void tls_identity_serve(tls_identity *id);

/* The served identity (NULL before the first tls_identity_serve). Any thread;
 * valid until tls_identity_shutdown. */
const tls_identity *tls_identity_served(void);

/* GnuTLS's certificate retrieve function (gnutls_certificate_retrieve_function2)
 * answering with the served identity; for MHD_OPTION_HTTPS_CERT_CALLBACK.
 * Runs on the HTTP thread during handshakes. */
int tls_identity_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                          const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                          gnutls_pcert_st **pcert, unsigned int *pcert_length,
                          gnutls_privkey_t *privkey);

/* Frees the served and the retired identities. Call after the TLS listener
 * is stopped. Main thread. */
void tls_identity_shutdown(void);

#endif
