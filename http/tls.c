/* http/tls.c - the HTTPS certificate and key, served fresh when their files change. */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "http/http_int.h"

/*
 * libmicrohttpd hands GnuTLS a certificate callback instead of a fixed pair: at every TLS
 * handshake the files are stat()ed, and a changed pair (a rotated Kubernetes secret) is loaded
 * and served from that handshake on, with no restart and no failed request, as the gRPC port
 * does (server/tls.c). A broken new pair (unreadable, not PEM, or a key that is not the
 * certificate's, which is also what a rotation looks like between its two renames) is logged
 * once (tls_reload_failed) and the pair in use stays.
 *
 * GnuTLS's callback has no closure, so the pair lives here, once per process: every HTTPS
 * listener of the process (the front door and --metrics-listen) serves the same files. GnuTLS
 * keeps using a session's pair until the session ends, so each connection holds the pair its
 * handshake got (http__conn_t, found through the session's pointer, which libmicrohttpd sets
 * to the connection) and a pair a rotation replaced is freed when its last connection closes;
 * a connection without that state (its allocation failed) pins its pair until the last
 * listener stops. A file that cannot be read is logged once, and looked at again when it
 * changes.
 */

#define PEM_MAX ((size_t)1 << 20)
#define MAX_CHAIN 16

typedef struct http__tls_pair tls_pair_t;
struct http__tls_pair {
    gnutls_pcert_st pcerts[MAX_CHAIN];
    unsigned n;
    gnutls_privkey_t key;
    unsigned holders; /* connections whose handshake got it (under pair.mu) */
    bool pinned;      /* handed to a connection that cannot hold it: kept to the end */
    tls_pair_t *older;
};

static struct {
    pthread_mutex_t mu;
    unsigned users;
    char *paths[2]; /* --tls-cert, --tls-key */
    struct stat seen[2];
    bool missing[2]; /* seen: the stat failed */
    tls_pair_t *cur; /* and, through ->older, the replaced pairs some connection still holds */
} pair = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void pair_free_one(tls_pair_t *p)
{
    for (unsigned i = 0; i < p->n; i++)
        gnutls_pcert_deinit(&p->pcerts[i]);
    if (p->key != NULL)
        gnutls_privkey_deinit(p->key);
    free(p);
}

static void pair_free(tls_pair_t *p)
{
    while (p != NULL) {
        tls_pair_t *older = p->older;
        pair_free_one(p);
        p = older;
    }
}

/* Under pair.mu: frees the replaced pairs no connection holds any more. */
static void pair_reap(void)
{
    if (pair.cur == NULL)
        return;
    for (tls_pair_t **pp = &pair.cur->older; *pp != NULL;) {
        tls_pair_t *p = *pp;
        if (p->holders == 0 && !p->pinned) {
            *pp = p->older;
            pair_free_one(p);
        } else {
            pp = &p->older;
        }
    }
}

void http__tls_unhold(tls_pair_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&pair.mu);
    p->holders--;
    pair_reap();
    pthread_mutex_unlock(&pair.mu);
}

/* Whether key is the private key of cert's public key. */
static bool key_matches(gnutls_privkey_t key, gnutls_pubkey_t cert_key)
{
    gnutls_pubkey_t pk = NULL;
    gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
    bool same = gnutls_pubkey_init(&pk) == 0 && gnutls_pubkey_import_privkey(pk, key, 0, 0) == 0 &&
                gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &a) == 0 &&
                gnutls_pubkey_export2(cert_key, GNUTLS_X509_FMT_DER, &b) == 0 && a.size == b.size &&
                memcmp(a.data, b.data, a.size) == 0;
    gnutls_free(a.data);
    gnutls_free(b.data);
    if (pk != NULL)
        gnutls_pubkey_deinit(pk);
    return same;
}

/* Loads the pair at pair.paths, stat()ed into now. Returns: the pair, or NULL with why set. */
static tls_pair_t *load(struct stat now[2], char *why, size_t cap)
{
    char *pem[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    tls_pair_t *p = NULL;
    for (int i = 0; i < 2; i++) {
        int rc = stat(pair.paths[i], &now[i]) < 0 ? -errno : 0;
        if (rc == 0)
            rc = base_read_file(pair.paths[i], PEM_MAX, &pem[i], &len[i]);
        if (rc < 0) {
            snprintf(why, cap, "cannot read %s: %s", pair.paths[i], strerror(-rc));
            goto out;
        }
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(why, cap, "out of memory");
        goto out;
    }
    gnutls_datum_t cd = {(unsigned char *)pem[0], (unsigned)len[0]};
    gnutls_datum_t kd = {(unsigned char *)pem[1], (unsigned)len[1]};
    p->n = MAX_CHAIN;
    /* As gnutls_certificate_set_x509_key_mem() (libmicrohttpd's own loading) takes a chain:
     * in any order, but never silently cut. */
    int grc = gnutls_pcert_list_import_x509_raw(p->pcerts, &p->n, &cd, GNUTLS_X509_FMT_PEM,
                                                GNUTLS_X509_CRT_LIST_SORT |
                                                    GNUTLS_X509_CRT_LIST_IMPORT_FAIL_IF_EXCEED);
    if (grc < 0 || p->n == 0) {
        p->n = 0;
        snprintf(why, cap, "%s: not a PEM certificate chain of at most %d (%s)", pair.paths[0],
                 MAX_CHAIN, gnutls_strerror(grc));
    } else if ((grc = gnutls_privkey_init(&p->key)) < 0 ||
               (grc = gnutls_privkey_import_x509_raw(p->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) <
                   0) {
        snprintf(why, cap, "%s: not a PEM private key (%s)", pair.paths[1], gnutls_strerror(grc));
    } else if (!key_matches(p->key, p->pcerts[0].pubkey)) {
        snprintf(why, cap, "the key in %s is not the certificate's in %s", pair.paths[1],
                 pair.paths[0]);
    } else {
        goto out;
    }
    pair_free(p);
    p = NULL;
out:
    if (pem[1] != NULL)
        explicit_bzero(pem[1], len[1]);
    free(pem[0]);
    free(pem[1]);
    return p;
}

/* Whether the file at path changed since it was seen (seen, was_missing), stat()ed into *now and
 * *missing. A file still missing is no change: it was reported when it went. */
static bool file_changed(const char *path, const struct stat *seen, bool was_missing,
                         struct stat *now, bool *missing)
{
    *missing = stat(path, now) < 0;
    if (*missing)
        memset(now, 0, sizeof *now);
    return *missing != was_missing || (!*missing && !base_same_file(now, seen));
}

/* GnuTLS's certificate callback (gnutls_certificate_retrieve_function2), per handshake. */
static int retrieve(gnutls_session_t s, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *algos, int n_algos, gnutls_pcert_st **pcert,
                    unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
    (void)req_ca_rdn;
    (void)nreqs;
    (void)algos;
    (void)n_algos;
    /* The certificate request names no CA: the client CAs can change while serving (see
     * http__tls_ca_verify()), and a client that picks its certificate by the names (Go's)
     * would send none after a change. Any client then sends the one it has. */
    gnutls_certificate_send_x509_rdn_sequence(s, 1);
    pthread_mutex_lock(&pair.mu);
    struct stat now[2];
    bool changed = false, missing[2];
    for (int i = 0; i < 2; i++)
        changed |=
            file_changed(pair.paths[i], &pair.seen[i], pair.missing[i], &now[i], &missing[i]);
    if (changed) {
        char why[512];
        tls_pair_t *p = missing[0] || missing[1] ? NULL : load(now, why, sizeof why);
        if (p == NULL && (missing[0] || missing[1]))
            snprintf(why, sizeof why, "%s is missing", pair.paths[missing[0] ? 0 : 1]);
        if (p != NULL) {
            p->older = pair.cur;
            pair.cur = p;
            base_log(BASE_LOG_INFO, "tls_reloaded", "{s:s, s:s}", "cert", pair.paths[0], "listener",
                     "https");
        } else {
            base_log(BASE_LOG_WARN, "tls_reload_failed", "{s:s, s:s, s:s}", "error", why,
                     "listener", "https", "note", "the certificate in use stays");
        }
        /* Seen either way: a broken file is reported once, not at every handshake. */
        memcpy(pair.seen, now, sizeof now);
        memcpy(pair.missing, missing, sizeof missing);
    }
    tls_pair_t *cur = pair.cur;
    /* The connection holds the pair its session uses (libmicrohttpd's session pointer is the
     * connection); a handshake again on one connection moves its hold. */
    struct MHD_Connection *conn = gnutls_session_get_ptr(s);
    const union MHD_ConnectionInfo *ci =
        conn != NULL ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    http__conn_t *c = ci != NULL ? ci->socket_context : NULL;
    if (c == NULL) {
        cur->pinned = true;
    } else if (c->pair != cur) {
        if (c->pair != NULL)
            c->pair->holders--;
        c->pair = cur;
        cur->holders++;
    }
    pair_reap();
    *pcert = cur->pcerts;
    *pcert_length = cur->n;
    *privkey = cur->key;
    pthread_mutex_unlock(&pair.mu);
    return 0;
}

int http__tls_acquire(const char *cert, const char *key, void **callback, char *why, size_t cap)
{
    int rc = 0;
    pthread_mutex_lock(&pair.mu);
    if (pair.users > 0) {
        if (strcmp(pair.paths[0], cert) != 0 || strcmp(pair.paths[1], key) != 0) {
            snprintf(why, cap, "one HTTPS certificate per process: %s is already served",
                     pair.paths[0]);
            rc = -EINVAL;
        }
    } else {
        pair.paths[0] = strdup(cert);
        pair.paths[1] = strdup(key);
        struct stat now[2];
        memset(now, 0, sizeof now);
        pair.cur = pair.paths[0] != NULL && pair.paths[1] != NULL ? load(now, why, cap) : NULL;
        if (pair.cur == NULL) {
            if (pair.paths[0] == NULL || pair.paths[1] == NULL)
                snprintf(why, cap, "out of memory");
            free(pair.paths[0]);
            free(pair.paths[1]);
            pair.paths[0] = pair.paths[1] = NULL;
            rc = -EINVAL;
        } else {
            memcpy(pair.seen, now, sizeof now);
        }
    }
    if (rc == 0) {
        pair.users++;
        *callback = (void *)retrieve;
    }
    pthread_mutex_unlock(&pair.mu);
    return rc;
}

void http__tls_release(void)
{
    pthread_mutex_lock(&pair.mu);
    if (pair.users > 0 && --pair.users == 0) {
        pair_free(pair.cur);
        pair.cur = NULL;
        free(pair.paths[0]);
        free(pair.paths[1]);
        pair.paths[0] = pair.paths[1] = NULL;
        pair.missing[0] = pair.missing[1] = false;
    }
    pthread_mutex_unlock(&pair.mu);
}

/* ------------------------------------------------------------------------------------------ */
/* The client CAs (--tls-client-ca), looked at again when their file changes                   */

/*
 * A listener's client CAs are a GnuTLS trust list of its own, checked for a change of the file
 * at each connection's first request that needs a certificate (its verdict is the connection's
 * from then on), and verified against here rather than through the session's credentials, which
 * libmicrohttpd fixes at start. A rotated CA file is served from the next connection on; a
 * broken one is logged once and the CAs in use stay. A verification in progress holds the list
 * it started with (refs), so a reload never frees one under it.
 */

typedef struct ca_list {
    gnutls_x509_trust_list_t tl;
    unsigned refs; /* under the owner's mu: the owner's one, and one per verification */
} ca_list_t;

struct http__tls_ca {
    pthread_mutex_t mu;
    char *path;
    struct stat seen;
    bool missing;
    ca_list_t *cur;
};

static void ca_unref(ca_list_t *l)
{
    if (l != NULL && --l->refs == 0) {
        gnutls_x509_trust_list_deinit(l->tl, 1);
        free(l);
    }
}

/* Loads the CAs at path, stat()ed into now; with pem, hands the file's text over too.
 * Returns: 0 and *out (one ref); -EINVAL (unreadable, no PEM CA in it) or -ENOMEM, why set. */
static int ca_load(const char *path, struct stat *now, ca_list_t **out, char **pem_out, char *why,
                   size_t cap)
{
    char *pem = NULL;
    size_t len = 0;
    int rc = stat(path, now) < 0 ? -errno : 0;
    if (rc == 0)
        rc = base_read_file(path, PEM_MAX, &pem, &len);
    if (rc < 0) {
        snprintf(why, cap, "cannot read %s: %s", path, strerror(-rc));
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    ca_list_t *l = calloc(1, sizeof *l);
    if (l == NULL || gnutls_x509_trust_list_init(&l->tl, 0) < 0) {
        free(l);
        free(pem);
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len};
    int grc = gnutls_x509_trust_list_add_trust_mem(l->tl, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
    if (grc <= 0) {
        snprintf(why, cap, "%s: no PEM CA certificate in it (%s)", path,
                 grc < 0 ? gnutls_strerror(grc) : "none found");
        gnutls_x509_trust_list_deinit(l->tl, 1);
        free(l);
        free(pem);
        return grc == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
    }
    l->refs = 1;
    *out = l;
    if (pem_out != NULL)
        *pem_out = pem;
    else
        free(pem);
    return 0;
}

int http__tls_ca_open(const char *path, http__tls_ca_t **out, char **pem, char *why, size_t cap)
{
    http__tls_ca_t *ca = calloc(1, sizeof *ca);
    if (ca == NULL || (ca->path = strdup(path)) == NULL) {
        free(ca);
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    int rc = ca_load(path, &ca->seen, &ca->cur, pem, why, cap);
    if (rc < 0) {
        free(ca->path);
        free(ca);
        return rc;
    }
    pthread_mutex_init(&ca->mu, NULL);
    *out = ca;
    return 0;
}

void http__tls_ca_close(http__tls_ca_t *ca)
{
    if (ca == NULL)
        return;
    ca_unref(ca->cur);
    pthread_mutex_destroy(&ca->mu);
    free(ca->path);
    free(ca);
}

/* Under ca->mu: the file again, when it changed since it was last seen. */
static void ca_refresh(http__tls_ca_t *ca)
{
    struct stat now;
    bool missing;
    if (!file_changed(ca->path, &ca->seen, ca->missing, &now, &missing))
        return;
    char why[512];
    ca_list_t *l = NULL;
    if (missing)
        snprintf(why, sizeof why, "%s is missing", ca->path);
    else
        ca_load(ca->path, &now, &l, NULL, why, sizeof why);
    if (l != NULL) {
        ca_unref(ca->cur);
        ca->cur = l;
        base_log(BASE_LOG_INFO, "tls_reloaded", "{s:s, s:s}", "client_ca", ca->path, "listener",
                 "https");
    } else {
        base_log(BASE_LOG_WARN, "tls_reload_failed", "{s:s, s:s, s:s}", "error", why, "listener",
                 "https", "note", "the client CAs in use stay");
    }
    /* Seen either way: a broken file is reported once, not at every connection. */
    ca->seen = now;
    ca->missing = missing;
}

int http__tls_ca_verify(http__tls_ca_t *ca, gnutls_session_t s)
{
    unsigned n = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(s, &n);
    if (raw == NULL || n == 0)
        return 0;
    if (n > MAX_CHAIN)
        return -1;
    pthread_mutex_lock(&ca->mu);
    ca_refresh(ca);
    ca_list_t *l = ca->cur;
    l->refs++;
    pthread_mutex_unlock(&ca->mu);
    gnutls_x509_crt_t crts[MAX_CHAIN];
    unsigned inited = 0;
    bool ok = true;
    for (unsigned i = 0; ok && i < n; i++) {
        ok = gnutls_x509_crt_init(&crts[i]) == 0;
        if (ok) {
            inited++;
            ok = gnutls_x509_crt_import(crts[i], &raw[i], GNUTLS_X509_FMT_DER) == 0;
        }
    }
    /* From these CAs, within its validity, and for client authentication. */
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                     .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
    unsigned status = 0;
    ok = ok &&
         gnutls_x509_trust_list_verify_crt2(l->tl, crts, n, &purpose, 1, 0, &status, NULL) == 0 &&
         status == 0;
    for (unsigned i = 0; i < inited; i++)
        gnutls_x509_crt_deinit(crts[i]);
    pthread_mutex_lock(&ca->mu);
    ca_unref(l);
    pthread_mutex_unlock(&ca->mu);
    return ok ? 1 : -1;
}

/* One name into out[*n] (a copy), if it is text and there is room. */
static void add_name(char **out, size_t *n, size_t cap, const char *p, size_t len)
{
    if (*n == cap || len == 0 || memchr(p, '\0', len) != NULL)
        return;
    char *v = malloc(len + 1);
    if (v == NULL)
        return;
    memcpy(v, p, len);
    v[len] = '\0';
    out[(*n)++] = v;
}

size_t http__tls_peer_names(gnutls_session_t s, char **out, size_t cap)
{
    unsigned nc = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(s, &nc);
    gnutls_x509_crt_t crt;
    if (raw == NULL || nc == 0 || gnutls_x509_crt_init(&crt) != 0)
        return 0;
    size_t n = 0;
    if (gnutls_x509_crt_import(crt, &raw[0], GNUTLS_X509_FMT_DER) == 0) {
        char buf[1024];
        size_t len = sizeof buf;
        bool any_san = false;
        for (unsigned i = 0; n < cap && i < 64; i++) {
            len = sizeof buf;
            int t = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &len, NULL);
            if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                break;
            /* The kinds gRPC's auth context carries, so both ports pick the same names. */
            any_san = any_san || t == GNUTLS_SAN_DNSNAME || t == GNUTLS_SAN_URI ||
                      t == GNUTLS_SAN_RFC822NAME || t == GNUTLS_SAN_IPADDRESS;
            if (t == GNUTLS_SAN_DNSNAME || t == GNUTLS_SAN_URI || t == GNUTLS_SAN_RFC822NAME) {
                add_name(out, &n, cap, buf, len);
            } else if (t == GNUTLS_SAN_IPADDRESS && (len == 4 || len == 16)) {
                char ip[INET6_ADDRSTRLEN];
                if (inet_ntop(len == 4 ? AF_INET : AF_INET6, buf, ip, sizeof ip) != NULL)
                    add_name(out, &n, cap, ip, strlen(ip));
            }
            /* Other kinds (and a name too long for buf) are passed over. */
        }
        /* The common name only when there is no subject alternative name (RFC 6125). */
        len = sizeof buf;
        if (!any_san &&
            gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &len) == 0)
            add_name(out, &n, cap, buf, len);
    }
    gnutls_x509_crt_deinit(crt);
    return n;
}
