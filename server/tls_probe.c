/* tls_probe: see tls_probe.h. */
#include "tls_probe.h"

#include "tls_identity.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>

static bool is_address(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

ssize_t tls_probe_exchange(int fd, const char *host, const char *request, char *resp,
                           size_t resp_cap, char *err, size_t err_cap)
{
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_session_t session = NULL;
    const char *step = "TLS setup";
    ssize_t got = -1;
    int rc = gnutls_certificate_allocate_credentials(&cred);
    if (rc >= 0)
        rc = gnutls_init(&session, GNUTLS_CLIENT);
    if (rc >= 0)
        rc = gnutls_priority_set_direct(session, tls_priorities(TLS_MIN_1_2), NULL);
    if (rc >= 0)
        rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred);
    if (rc >= 0 && !is_address(host))
        rc = gnutls_server_name_set(session, GNUTLS_NAME_DNS, host, strlen(host));
    if (rc >= 0) {
        gnutls_transport_set_int(session, fd);
        gnutls_handshake_set_timeout(session, GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);
        step = "TLS handshake";
        do
            rc = gnutls_handshake(session);
        while (rc < 0 && !gnutls_error_is_fatal(rc));
    }
    size_t len = strlen(request);
    if (rc >= 0) {
        step = "TLS send";
        do
            rc = (int)gnutls_record_send(session, request, len);
        while (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED);
    }
    if (rc >= 0) {
        step = "TLS receive";
        ssize_t n;
        do
            n = gnutls_record_recv(session, resp, resp_cap - 1);
        while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
        rc = (int)n;
        if (n >= 0) {
            resp[n] = 0;
            got = n;
        }
    }
    if (got < 0)
        snprintf(err, err_cap, "%s: %s", step, gnutls_strerror(rc));
    else
        gnutls_bye(session, GNUTLS_SHUT_WR);
    if (session)
        gnutls_deinit(session);
    if (cred)
        gnutls_certificate_free_credentials(cred);
    return got;
}
