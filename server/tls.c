/* server/tls.c - the gRPC listener's TLS: certificate, key, client CA, reloaded when they change.
 */
#include <errno.h>
#include <grpc/grpc_security.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/server_int.h"

/*
 * gRPC asks the fetcher below for the certificate configuration at every new connection's
 * handshake. It stats the three files (following symlinks, so Kubernetes' swap of a mounted
 * secret's ..data counts) and reloads them when any changed: a rotated certificate is served
 * from the next connection on, with no restart and no failed call. A file that cannot be read
 * or a pair that does not load keeps the configuration in use (logged once per change).
 */

struct server_tls {
    char *paths[3]; /* cert, key, client CA (NULL: none) */
    struct stat seen[3];
    bool loaded;
    pthread_mutex_t mu;
};

/* No PEM bundle is a megabyte. */
#define PEM_MAX ((size_t)1 << 20)

bool server_tls_pair_matches(const char *cert_pem, const char *key_pem)
{
    BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
    X509 *x = cb != NULL ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    bool ok = x != NULL && k != NULL && X509_check_private_key(x, k) == 1;
    EVP_PKEY_free(k);
    X509_free(x);
    BIO_free(kb);
    BIO_free(cb);
    return ok;
}

/* Reads the files into a new gRPC configuration. Returns: it, or NULL with why set. */
static grpc_ssl_server_certificate_config *load(server_tls_t *t, struct stat now[3], char *why,
                                                size_t cap)
{
    char *pem[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        if (t->paths[i] == NULL)
            continue;
        int rc = stat(t->paths[i], &now[i]) < 0 ? -errno : 0;
        if (rc == 0)
            rc = base_read_file(t->paths[i], PEM_MAX, &pem[i], NULL);
        if (rc < 0) {
            snprintf(why, cap, "cannot read %s: %s", t->paths[i], strerror(-rc));
            for (int k = 0; k < 3; k++)
                free(pem[k]);
            return NULL;
        }
    }
    grpc_ssl_server_certificate_config *cfg = NULL;
    if (strstr(pem[0], "-----BEGIN CERTIFICATE") == NULL ||
        strstr(pem[1], "PRIVATE KEY-----") == NULL ||
        (pem[2] != NULL && strstr(pem[2], "-----BEGIN CERTIFICATE") == NULL)) {
        snprintf(why, cap, "%s",
                 "not PEM of the right kind (want --tls-cert a certificate "
                 "chain, --tls-key its private key, --tls-client-ca "
                 "certificates)");
    } else if (!server_tls_pair_matches(pem[0], pem[1])) {
        /* Also what a rotation that replaced one file and not yet the other looks like. */
        snprintf(why, cap, "the key in %s is not the certificate's in %s", t->paths[1],
                 t->paths[0]);
    } else {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = pem[1], .cert_chain = pem[0]};
        /* gRPC 1.51 asserts that a fetched configuration has root certificates even when no
         * client certificate is requested: without a client CA, the server's own chain stands
         * in (never used to verify anything). */
        cfg = grpc_ssl_server_certificate_config_create(pem[2] != NULL ? pem[2] : pem[0], &pair, 1);
        if (cfg == NULL)
            snprintf(why, cap, "gRPC refused the certificate configuration");
    }
    if (pem[1] != NULL)
        OPENSSL_cleanse(pem[1], strlen(pem[1]));
    for (int k = 0; k < 3; k++)
        free(pem[k]);
    return cfg;
}

static grpc_ssl_certificate_config_reload_status fetch(void *arg,
                                                       grpc_ssl_server_certificate_config **config)
{
    server_tls_t *t = arg;
    pthread_mutex_lock(&t->mu);
    bool changed = !t->loaded;
    struct stat now[3];
    memset(now, 0, sizeof now);
    for (int i = 0; i < 3 && !changed; i++) {
        if (t->paths[i] != NULL &&
            (stat(t->paths[i], &now[i]) < 0 || !base_same_file(&now[i], &t->seen[i])))
            changed = true;
    }
    grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    if (changed) {
        char why[512];
        grpc_ssl_server_certificate_config *cfg = load(t, now, why, sizeof why);
        if (cfg != NULL) {
            *config = cfg;
            st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
            if (t->loaded)
                base_log(BASE_LOG_INFO, "tls_reloaded", "{s:s}", "cert", t->paths[0]);
            t->loaded = true;
        } else if (!t->loaded) {
            st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
        } else {
            base_log(BASE_LOG_WARN, "tls_reload_failed", "{s:s, s:s}", "error", why, "note",
                     "the certificate in use stays");
        }
        /* Seen either way: a broken file is reported once, not at every connection. */
        memcpy(t->seen, now, sizeof now);
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

void server__tls_free(server_tls_t *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < 3; i++)
        free(t->paths[i]);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int server__tls_credentials(const server_options_t *o, server_tls_t **tls,
                            grpc_server_credentials **out)
{
    server_tls_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    const char *in[3] = {o->tls_cert, o->tls_key, o->tls_client_ca};
    for (int i = 0; i < 3; i++) {
        if (in[i] != NULL && in[i][0] != '\0' && (t->paths[i] = strdup(in[i])) == NULL) {
            server__tls_free(t);
            return -ENOMEM;
        }
    }
    /* Checked now, so that a bad file is a startup error rather than failed handshakes. */
    struct stat now[3];
    memset(now, 0, sizeof now);
    char why[512];
    grpc_ssl_server_certificate_config *cfg = load(t, now, why, sizeof why);
    if (cfg == NULL) {
        base_log(BASE_LOG_ERROR, "tls_failed", "{s:s}", "error", why);
        server__tls_free(t);
        return -EINVAL;
    }
    grpc_ssl_server_certificate_config_destroy(cfg);
    grpc_ssl_client_certificate_request_type req =
        t->paths[2] == NULL          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
        : o->tls_require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                     : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    grpc_ssl_server_credentials_options *opts =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(req, fetch, t);
    grpc_server_credentials *creds =
        opts != NULL ? grpc_ssl_server_credentials_create_with_options(opts) : NULL;
    if (creds == NULL) {
        base_log(BASE_LOG_ERROR, "tls_failed", "{s:s}", "error",
                 "gRPC refused the TLS credentials options");
        server__tls_free(t);
        return -EINVAL;
    }
    *tls = t;
    *out = creds;
    return 0;
}
