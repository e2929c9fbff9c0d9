/* tls_identity: see tls_identity.h. */
#include "tls_identity.h"

#include "whole_file.h"

#include <gnutls/x509.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Largest PEM file read (a chain of a few certificates is a few KiB). */
#define TLS_PEM_FILE_MAX ((size_t)1 << 20)
/* Longest certificate chain accepted (leaf, intermediates). */
#define TLS_CHAIN_MAX 16

struct tls_identity {
    gnutls_pcert_st chain[TLS_CHAIN_MAX];
    unsigned n_chain;
    gnutls_privkey_t key;
    char *pem; /* owned: the cert file's bytes then the key file's, to tell renewals apart */
    size_t pem_bytes;
    char subject[256];
    char serial[2 * 40 + 1]; /* hex, as `openssl x509 -serial` prints it */
    time_t not_after;
    struct tls_identity *next_retired;
};

/* The served identity (read by the HTTP thread's handshakes) and the retired
 * ones (main thread only). */
static _Atomic(tls_identity *) served;
static tls_identity *retired;

const char *tls_priorities(tls_min_version min)
{
    return min == TLS_MIN_1_3 ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                              : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
}

void tls_identity_free(tls_identity *id)
{
    if (!id)
        return;
    for (unsigned i = 0; i < id->n_chain; i++)
        gnutls_pcert_deinit(&id->chain[i]);
    if (id->key)
        gnutls_privkey_deinit(id->key);
    if (id->pem)
        explicit_bzero(id->pem, id->pem_bytes); /* holds the key's bytes */
    free(id->pem);
    free(id);
}

/* The subject, serial and expiry of the leaf, for the log and the metric. */
static int leaf_facts(tls_identity *id, char *err, size_t err_cap, const char *cert_file)
{
    gnutls_x509_crt_t crt;
    int rc = gnutls_pcert_export_x509(&id->chain[0], &crt);
    if (rc < 0) {
        snprintf(err, err_cap, "tls_cert_file %s: %s", cert_file, gnutls_strerror(rc));
        return -1;
    }
    size_t subject_cap = sizeof id->subject;
    if (gnutls_x509_crt_get_dn(crt, id->subject, &subject_cap) < 0)
        snprintf(id->subject, sizeof id->subject, "(no subject)");
    unsigned char serial[40];
    size_t serial_bytes = sizeof serial;
    id->serial[0] = 0;
    if (gnutls_x509_crt_get_serial(crt, serial, &serial_bytes) >= 0)
        for (size_t i = 0; i < serial_bytes; i++)
            snprintf(id->serial + 2 * i, 3, "%02X", serial[i]);
    id->not_after = gnutls_x509_crt_get_expiration_time(crt);
    gnutls_x509_crt_deinit(crt);
    return 0;
}

/* True when the private key's public half is the leaf's public key. */
static bool key_matches_leaf(tls_identity *id)
{
    gnutls_pubkey_t from_key;
    if (gnutls_pubkey_init(&from_key) < 0)
        return false;
    gnutls_datum_t a = {0}, b = {0};
    bool same = gnutls_pubkey_import_privkey(from_key, id->key, 0, 0) >= 0 &&
                gnutls_pubkey_export2(from_key, GNUTLS_X509_FMT_DER, &a) >= 0 &&
                gnutls_pubkey_export2(id->chain[0].pubkey, GNUTLS_X509_FMT_DER, &b) >= 0 &&
                a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
    gnutls_free(a.data);
    gnutls_free(b.data);
    gnutls_pubkey_deinit(from_key);
    return same;
}

static int import_chain(tls_identity *id, const char *cert_file, char *pem, size_t bytes, char *err,
                        size_t err_cap)
{
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----")) {
        snprintf(err, err_cap, "tls_cert_file %s: no PEM certificate in it", cert_file);
        return -1;
    }
    gnutls_datum_t d = {.data = (unsigned char *)pem, .size = (unsigned)bytes};
    unsigned n = TLS_CHAIN_MAX;
    int rc = gnutls_pcert_list_import_x509_raw(id->chain, &n, &d, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0) {
        snprintf(err, err_cap, "tls_cert_file %s: not a PEM certificate chain (%s)", cert_file,
                 gnutls_strerror(rc));
        return -1;
    }
    id->n_chain = n;
    return 0;
}

static int import_key(tls_identity *id, const char *key_file, char *pem, size_t bytes, char *err,
                      size_t err_cap)
{
    int rc = gnutls_privkey_init(&id->key);
    if (rc >= 0) {
        gnutls_datum_t d = {.data = (unsigned char *)pem, .size = (unsigned)bytes};
        rc = gnutls_privkey_import_x509_raw(id->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    }
    if (rc < 0) {
        snprintf(err, err_cap, "tls_key_file %s: not a PEM private key (%s)", key_file,
                 gnutls_strerror(rc));
        return -1;
    }
    return 0;
}

int tls_identity_load(const char *cert_file, const char *key_file, tls_identity **out, char *err,
                      size_t err_cap)
{
    *out = NULL;
    char *cert_pem = NULL, *key_pem = NULL;
    size_t cert_bytes = 0, key_bytes = 0;
    char why[512];
    if (whole_file_read(cert_file, TLS_PEM_FILE_MAX, &cert_pem, &cert_bytes, why, sizeof why) !=
        0) {
        snprintf(err, err_cap, "tls_cert_file %s", why);
        return -1;
    }
    if (whole_file_read(key_file, TLS_PEM_FILE_MAX, &key_pem, &key_bytes, why, sizeof why) != 0) {
        snprintf(err, err_cap, "tls_key_file %s", why);
        free(cert_pem);
        return -1;
    }
    tls_identity *id = calloc(1, sizeof *id);
    char *pem = malloc(cert_bytes + key_bytes + 1);
    int rc = -1;
    if (!id || !pem) {
        snprintf(err, err_cap, "TLS certificate: out of memory");
    } else if (import_chain(id, cert_file, cert_pem, cert_bytes, err, err_cap) == 0 &&
               import_key(id, key_file, key_pem, key_bytes, err, err_cap) == 0) {
        if (!key_matches_leaf(id))
            snprintf(err, err_cap, "tls_key_file %s does not match the certificate in %s", key_file,
                     cert_file);
        else
            rc = leaf_facts(id, err, err_cap, cert_file);
    }
    if (rc == 0) {
        memcpy(pem, cert_pem, cert_bytes);
        memcpy(pem + cert_bytes, key_pem, key_bytes);
        id->pem = pem;
        id->pem_bytes = cert_bytes + key_bytes;
        *out = id;
    } else {
        free(pem);
        tls_identity_free(id);
    }
    /* The key's bytes are a secret: wipe the copy that is not kept. */
    explicit_bzero(key_pem, key_bytes);
    free(key_pem);
    free(cert_pem);
    return rc;
}

bool tls_identity_same(const tls_identity *a, const tls_identity *b)
{
    return a && b && a->pem_bytes == b->pem_bytes && memcmp(a->pem, b->pem, a->pem_bytes) == 0;
}

void tls_identity_describe(const tls_identity *id, char *buf, size_t cap)
{
    struct tm tm;
    char when[32] = "?";
    if (gmtime_r(&id->not_after, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    snprintf(buf, cap, "%s, serial %s, expires %s", id->subject, id->serial, when);
}

long long tls_identity_not_after(const tls_identity *id)
{
    return (long long)id->not_after;
}

void tls_identity_serve(tls_identity *id)
{
    tls_identity *old = atomic_exchange(&served, id);
    if (old) {
        old->next_retired = retired;
        retired = old;
    }
}

const tls_identity *tls_identity_served(void)
{
    return atomic_load(&served);
}

int tls_identity_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                          const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                          gnutls_pcert_st **pcert, unsigned int *pcert_length,
                          gnutls_privkey_t *privkey)
{
    (void)session;
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    tls_identity *id = atomic_load(&served);
    if (!id)
        return -1; /* the handshake fails: no certificate */
    *pcert = id->chain;
    *pcert_length = id->n_chain;
    *privkey = id->key;
    return 0;
}

void tls_identity_shutdown(void)
{
    tls_identity_free(atomic_exchange(&served, NULL));
    while (retired) {
        tls_identity *next = retired->next_retired;
        tls_identity_free(retired);
        retired = next;
    }
}
