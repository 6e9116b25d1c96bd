/* core/jwt.c - bearer JWTs: a JWKS file's public keys, and a token's signature and claims. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/ecdsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core_int.h"

/*
 * The keys are read from a local JWKS file (RFC 7517: {"keys": [...]}, as an identity provider
 * or Kubernetes' service-account issuer publishes it), never fetched: the server makes no
 * outbound call to authenticate one. Each RSA or EC signing key becomes an OpenSSL public key
 * once, at load.
 *
 * A token is checked in this order, and each step refuses what the next would trust:
 *   1. its header, decoded here: the algorithm must be one of the key's kind (RS* for an RSA
 *      key, ES* on the key's curve); "none" and the HMAC algorithms are refused, so a token
 *      can never get its signature checked with a public key taken for an HMAC secret; a
 *      "typ", when there is one, is JWT or RFC 9068's at+jwt;
 *   2. the key: the header's "kid", or the file's only key when it names none;
 *   3. the signature: base64url of exactly the key's length, one spelling per signature value
 *      (an ECDSA signature also verifies with n - s for s: a token has at most two forms),
 *      verified over "header.payload" with the key held since load (EVP_DigestVerify; ES*:
 *      JWS's R || S made DER first);
 *   4. the claims: "exp" required and in the future, "nbf" and "iat" not in the future (each
 *      with CORE_JWT_LEEWAY_S), "iss" equal to the expected issuer, "aud" (a string or an
 *      array) holding the expected audience, "sub" a non-empty string.
 * The subject is the caller's identity; its scopes come from the tokens file (jwt:SUBJECT).
 *
 * Why not libjwt's jwt_decode(): it takes the key as PEM and parses it at every call, and
 * OpenSSL 3's decoder makes that about 0.4 ms (bench/auth, fstore-auth-bench), which a forged
 * token with a known kid would cost the server each time; with the key parsed once, a check is
 * the signature's verification alone. tests/core/test_auth_identity.c holds this verification
 * to libjwt's on valid and forged tokens.
 */

#define MAX_KEYS 64
#define KID_MAX 128

typedef struct jwk {
    char kid[KID_MAX + 1]; /* "" when the key has none */
    char kind;             /* 'R' RSA, 'E' EC */
    char curve_alg[8];     /* EC: the algorithm its curve signs with (ES256, ES384, ES512) */
    size_t sig_len;        /* bytes of a signature by it: RSA the modulus', EC twice a coordinate */
    EVP_PKEY *pkey;        /* its public key */
} jwk_t;

struct core__jwks {
    size_t n;
    jwk_t k[MAX_KEYS];
};

void core__jwks_free(core__jwks_t *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->n; i++)
        EVP_PKEY_free(ks->k[i].pkey);
    free(ks);
}

/* A base64url member of a JWK as a big-endian number. Returns: its length, or -1. */
static long b64_member(json_t *key, const char *name, uint8_t *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(key, name));
    if (s == NULL || BASE_BASE64_DECODED_MAX(strlen(s)) > cap)
        return -1;
    long n = base_base64_decode(s, strlen(s), out, BASE_BASE64_LENIENT);
    return n > 0 ? n : -1;
}

/* The public key of kind type from OpenSSL parameters. Returns: it, or NULL. */
static EVP_PKEY *key_of(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;
    if (pc == NULL || EVP_PKEY_fromdata_init(pc) != 1 ||
        EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(pc);
    return pk;
}

/* An RSA key from its modulus and exponent. */
static EVP_PKEY *rsa_key(json_t *key, size_t *sig_len)
{
    uint8_t n[1100], e[16]; /* up to 8192-bit moduli (1024 bytes, a leading zero allowed) */
    long nl = b64_member(key, "n", n, sizeof n), el = b64_member(key, "e", e, sizeof e);
    long skip = 0;
    while (skip < nl && n[skip] == 0)
        skip++;
    if (nl - skip < 256 || nl - skip > 1024 || el < 1)
        return NULL; /* under 2048 bits (or over 8192): refused */
    *sig_len = (size_t)(nl - skip);
    BIGNUM *bn = BN_bin2bn(n + skip, (int)(nl - skip), NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pk = NULL;
    if (bn != NULL && be != NULL && bld != NULL &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1 &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL)
        pk = key_of("RSA", params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pk;
}

/* An EC key from its curve and point; *alg set to the algorithm of its curve. */
static EVP_PKEY *ec_key(json_t *key, char alg[8], size_t *sig_len)
{
    static const struct {
        const char *crv, *group, *alg;
        size_t len;
    } curves[] = {{"P-256", "P-256", "ES256", 32},
                  {"P-384", "P-384", "ES384", 48},
                  {"P-521", "P-521", "ES512", 66}};
    const char *crv = json_string_value(json_object_get(key, "crv"));
    for (size_t i = 0; crv != NULL && i < sizeof curves / sizeof *curves; i++) {
        if (strcmp(crv, curves[i].crv) != 0)
            continue;
        size_t len = curves[i].len;
        uint8_t x[72], y[72], pt[1 + 2 * 66];
        long xl = b64_member(key, "x", x, sizeof x), yl = b64_member(key, "y", y, sizeof y);
        /* RFC 7518 wants each coordinate at the curve's full length; some writers (PyJWT 2.6)
         * drop leading zero bytes, so a shorter one is padded back. */
        if (xl < 1 || yl < 1 || (size_t)xl > len || (size_t)yl > len)
            return NULL;
        memset(pt, 0, sizeof pt);
        pt[0] = 4; /* an uncompressed point: 04 || x || y */
        memcpy(pt + 1 + len - (size_t)xl, x, (size_t)xl);
        memcpy(pt + 1 + 2 * len - (size_t)yl, y, (size_t)yl);
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curves[i].group,
                                             0),
            OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * len),
            OSSL_PARAM_construct_end()};
        snprintf(alg, 8, "%s", curves[i].alg);
        *sig_len = 2 * curves[i].len;
        return key_of("EC", params);
    }
    return NULL;
}

int core__jwks_load(const char *path, core__jwks_t **out, char *why, size_t cap)
{
    char *text = NULL;
    size_t len = 0;
    int rc = base_read_file(path, (size_t)1 << 20, &text, &len);
    if (rc < 0)
        return snprintf(why, cap, "%s: %s", path, strerror(-rc)), rc;
    rc = core__jwks_parse(text, len, path, out, why, cap);
    free(text);
    return rc;
}

int core__jwks_parse(const char *text, size_t len, const char *path, core__jwks_t **out, char *why,
                     size_t cap)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    int rc;
    json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        snprintf(why, cap, "%s: not a JWKS (want {\"keys\": [...]}%s%s)", path,
                 doc == NULL ? ": " : "", doc == NULL ? jerr.text : "");
        json_decref(doc);
        return -EINVAL;
    }
    core__jwks_t *ks = calloc(1, sizeof *ks);
    if (ks == NULL) {
        json_decref(doc);
        return snprintf(why, cap, "out of memory"), -ENOMEM;
    }
    size_t i;
    json_t *key;
    rc = 0;
    json_array_foreach(keys, i, key)
    {
        const char *kty = json_string_value(json_object_get(key, "kty"));
        const char *use = json_string_value(json_object_get(key, "use"));
        const char *kid = json_string_value(json_object_get(key, "kid"));
        if (kty == NULL || (use != NULL && strcmp(use, "sig") != 0))
            continue; /* an encryption key, or not a key: not for signatures */
        if (strcmp(kty, "RSA") != 0 && strcmp(kty, "EC") != 0)
            continue; /* a kind with no public key (oct: an HMAC secret) */
        if (ks->n == MAX_KEYS) {
            snprintf(why, cap, "%s: more than %d signing keys", path, MAX_KEYS);
            rc = -EINVAL;
            break;
        }
        jwk_t *k = &ks->k[ks->n];
        if (kid != NULL && strlen(kid) > KID_MAX) {
            snprintf(why, cap, "%s: key %zu: a kid over %d characters", path, i, KID_MAX);
            rc = -EINVAL;
            break;
        }
        snprintf(k->kid, sizeof k->kid, "%s", kid != NULL ? kid : "");
        k->kind = kty[0];
        k->pkey =
            k->kind == 'R' ? rsa_key(key, &k->sig_len) : ec_key(key, k->curve_alg, &k->sig_len);
        if (k->pkey == NULL) {
            snprintf(why, cap,
                     "%s: key %zu (%s%s%s): not a usable public key (RSA: n of 2048 bits or more "
                     "and e; EC: crv P-256, P-384 or P-521 with x and y)",
                     path, i, kty, kid != NULL ? " " : "", kid != NULL ? k->kid : "");
            rc = -EINVAL;
            break;
        }
        for (size_t j = 0; j < ks->n && rc == 0; j++) {
            if (strcmp(ks->k[j].kid, k->kid) == 0) {
                snprintf(why, cap, "%s: two signing keys with kid '%s'", path, k->kid);
                rc = -EINVAL;
            }
        }
        ks->n++;
        if (rc < 0)
            break;
    }
    json_decref(doc);
    if (rc == 0 && ks->n == 0) {
        snprintf(why, cap, "%s: no RSA or EC signing key", path);
        rc = -EINVAL;
    }
    if (rc < 0) {
        core__jwks_free(ks);
        return rc;
    }
    *out = ks;
    return 0;
}

/* A base64url segment of a token decoded as JSON. Returns: it, or NULL. */
static json_t *segment_json(const char *s, size_t n)
{
    uint8_t buf[BASE_BASE64_DECODED_MAX(CORE_JWT_MAX)];
    if (n == 0 || BASE_BASE64_DECODED_MAX(n) > sizeof buf)
        return NULL;
    long len = base_base64_decode(s, n, buf, BASE_BASE64_LENIENT);
    return len > 0 ? json_loadb((const char *)buf, (size_t)len, JSON_REJECT_DUPLICATES, NULL)
                   : NULL;
}

static bool aud_has(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *a;
    json_array_foreach(aud, i, a)
    {
        if (json_is_string(a) && strcmp(json_string_value(a), want) == 0)
            return true;
    }
    return false;
}

/* A NumericDate claim (seconds; a fraction is allowed). Returns: true and *t, or false. */
static bool numeric_date(json_t *claims, const char *name, int64_t *t)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_number(v))
        return false;
    double d = json_number_value(v);
    if (!(d > -1e15 && d < 1e15))
        return false;
    *t = (int64_t)d;
    return true;
}

/* SHA-256, -384, -512, fetched once: EVP_sha256() and the like look the implementation up at
 * every use under OpenSSL 3 (a lock every check shares). Kept for the process's life. */
static pthread_once_t digests_once = PTHREAD_ONCE_INIT;
static EVP_MD *digests[3];

static void fetch_digests(void)
{
    digests[0] = EVP_MD_fetch(NULL, "SHA256", NULL);
    digests[1] = EVP_MD_fetch(NULL, "SHA384", NULL);
    digests[2] = EVP_MD_fetch(NULL, "SHA512", NULL);
}

/* Whether sig (base64url, sig_chars of them, its length and alphabet checked) is k's signature
 * under alg over the n bytes of signed_part. */
static bool signature_ok(const jwk_t *k, const char *alg, const char *signed_part, size_t n,
                         const char *sig, size_t sig_chars)
{
    uint8_t raw[1100], der[160];
    if (BASE_BASE64_DECODED_MAX(sig_chars) > sizeof raw)
        return false;
    long len = base_base64_decode(sig, sig_chars, raw, BASE_BASE64_LENIENT);
    if (len != (long)k->sig_len)
        return false;
    pthread_once(&digests_once, fetch_digests);
    const EVP_MD *md = strcmp(alg + 2, "256") == 0   ? digests[0]
                       : strcmp(alg + 2, "384") == 0 ? digests[1]
                                                     : digests[2];
    if (md == NULL)
        return false;
    const uint8_t *s = raw;
    size_t slen = (size_t)len;
    if (k->kind == 'E') {
        /* JWS gives R || S; OpenSSL verifies the DER of an ECDSA-Sig-Value. */
        size_t half = k->sig_len / 2;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(raw, (int)half, NULL), *t = BN_bin2bn(raw + half, (int)half, NULL);
        int dl = -1;
        if (es != NULL && r != NULL && t != NULL && ECDSA_SIG_set0(es, r, t) == 1) {
            r = t = NULL; /* es owns them now */
            if (i2d_ECDSA_SIG(es, NULL) <= (int)sizeof der) {
                uint8_t *q = der;
                dl = i2d_ECDSA_SIG(es, &q);
            }
        }
        BN_free(r);
        BN_free(t);
        ECDSA_SIG_free(es);
        if (dl <= 0)
            return false;
        s = der;
        slen = (size_t)dl;
    }
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    bool ok = mc != NULL && EVP_DigestVerifyInit(mc, NULL, md, NULL, k->pkey) == 1 &&
              EVP_DigestVerify(mc, s, slen, (const unsigned char *)signed_part, n) == 1;
    EVP_MD_CTX_free(mc);
    return ok;
}

int core__jwt_verify(const core__jwks_t *ks, const char *token, const char *issuer,
                     const char *audience, int64_t now_s, char *sub, size_t sub_cap, int64_t *exp_s,
                     char *why, size_t cap)
{
    size_t len = strlen(token);
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 != NULL ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (len > CORE_JWT_MAX || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return snprintf(why, cap, "the bearer token is not a JWT of at most %d bytes",
                        CORE_JWT_MAX),
               -EKEYREJECTED;
    /* 1. The header, before any key is used. */
    json_t *head = segment_json(token, (size_t)(d1 - token));
    const char *alg = json_string_value(json_object_get(head, "alg"));
    const char *kid = json_string_value(json_object_get(head, "kid"));
    const char *typ = json_string_value(json_object_get(head, "typ"));
    bool typ_ok = typ == NULL || strcasecmp(typ, "JWT") == 0 || strcasecmp(typ, "at+jwt") == 0 ||
                  strcasecmp(typ, "application/at+jwt") == 0;
    char alg_s[8] = "", kid_s[KID_MAX + 1] = "";
    bool has_kid = kid != NULL;
    if (alg != NULL)
        snprintf(alg_s, sizeof alg_s, "%s", alg);
    if (kid != NULL)
        snprintf(kid_s, sizeof kid_s, "%s", kid);
    bool kid_long = kid != NULL && strlen(kid) > KID_MAX;
    json_decref(head);
    if (alg == NULL)
        return snprintf(why, cap, "the JWT's header is not JSON with an \"alg\""), -EKEYREJECTED;
    if (!typ_ok)
        return snprintf(why, cap, "the JWT's type (typ) is not JWT or at+jwt"), -EKEYREJECTED;
    bool rs =
        strcmp(alg_s, "RS256") == 0 || strcmp(alg_s, "RS384") == 0 || strcmp(alg_s, "RS512") == 0;
    bool es =
        strcmp(alg_s, "ES256") == 0 || strcmp(alg_s, "ES384") == 0 || strcmp(alg_s, "ES512") == 0;
    if (!rs && !es)
        return snprintf(why, cap,
                        "the JWT's algorithm '%s' is not accepted (RS256, RS384, RS512, ES256, "
                        "ES384, ES512)",
                        alg_s),
               -EKEYREJECTED;
    /* 2. The key. */
    const jwk_t *k = NULL;
    for (size_t i = 0; i < ks->n && k == NULL && !kid_long; i++) {
        if (has_kid ? strcmp(ks->k[i].kid, kid_s) == 0 : ks->n == 1)
            k = &ks->k[i];
    }
    if (k == NULL)
        return has_kid ? (snprintf(why, cap, "the JWT's key '%s' is not in the JWKS file",
                                   kid_long ? "(over 128 characters)" : kid_s),
                          -EKEYREJECTED)
                       : (snprintf(why, cap,
                                   "the JWT names no key (kid) and the JWKS file holds %zu", ks->n),
                          -EKEYREJECTED);
    if ((k->kind == 'R' && !rs) || (k->kind == 'E' && strcmp(alg_s, k->curve_alg) != 0))
        return snprintf(why, cap, "the JWT's algorithm '%s' is not its key's (%s)", alg_s,
                        k->kind == 'R' ? "RS256, RS384 or RS512" : k->curve_alg),
               -EKEYREJECTED;
    /* 3. The signature: base64url of exactly the key's signature length, one spelling per
     * signature value (a lenient decoder would take "SIG~junk", or other low bits in the last
     * character, as SIG: one token made into many, each a new cache entry and a new check). */
    const char *sig = d2 + 1;
    size_t sig_chars = strlen(sig), want = (4 * k->sig_len + 2) / 3;
    bool sig_ok = sig_chars == want;
    for (size_t i = 0; sig_ok && i < sig_chars; i++)
        sig_ok = isalnum((unsigned char)sig[i]) || sig[i] == '-' || sig[i] == '_';
    if (sig_ok && k->sig_len % 3 != 0) {
        /* The last character's unused low bits must be zero: one spelling per signature. */
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        long v = strchr(b64, sig[sig_chars - 1]) - b64;
        sig_ok = (v & (k->sig_len % 3 == 1 ? 0xf : 0x3)) == 0;
    }
    if (!sig_ok)
        return snprintf(why, cap, "the JWT's signature does not verify with its key"),
               -EKEYREJECTED;
    if (!signature_ok(k, alg_s, token, (size_t)(d2 - token), sig, sig_chars))
        return snprintf(why, cap, "the JWT's signature does not verify with its key"),
               -EKEYREJECTED;
    /* 4. The claims, from the payload the signature covers. */
    json_t *claims = segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
    int64_t exp = 0, nbf = 0, iat = 0;
    bool has_nbf = json_object_get(claims, "nbf") != NULL;
    bool has_iat = json_object_get(claims, "iat") != NULL;
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    const char *s = json_string_value(json_object_get(claims, "sub"));
    int rc = -EKEYREJECTED;
    if (!json_is_object(claims))
        snprintf(why, cap, "the JWT's payload is not a JSON object");
    else if (!numeric_date(claims, "exp", &exp))
        snprintf(why, cap, "the JWT has no expiry (exp)");
    else if (exp + CORE_JWT_LEEWAY_S <= now_s)
        snprintf(why, cap, "the JWT expired %lld s ago", (long long)(now_s - exp));
    else if ((has_nbf && !numeric_date(claims, "nbf", &nbf)) ||
             (has_iat && !numeric_date(claims, "iat", &iat)))
        snprintf(why, cap, "the JWT's nbf or iat is not a NumericDate");
    else if (has_nbf && nbf - CORE_JWT_LEEWAY_S > now_s)
        snprintf(why, cap, "the JWT is not valid for another %lld s (nbf)",
                 (long long)(nbf - now_s));
    else if (has_iat && iat - CORE_JWT_LEEWAY_S > now_s)
        snprintf(why, cap, "the JWT was issued %lld s in the future (iat)",
                 (long long)(iat - now_s));
    else if (iss == NULL || strcmp(iss, issuer) != 0)
        snprintf(why, cap, "the JWT's issuer is not '%s' (--jwt-issuer)", issuer);
    else if (!aud_has(json_object_get(claims, "aud"), audience))
        snprintf(why, cap, "the JWT's audience does not hold '%s' (--jwt-audience)", audience);
    else if (s == NULL || s[0] == '\0' || strlen(s) >= sub_cap)
        snprintf(why, cap, "the JWT has no subject (sub) of under %zu characters", sub_cap);
    else {
        snprintf(sub, sub_cap, "%s", s);
        *exp_s = exp + CORE_JWT_LEEWAY_S;
        rc = 0;
    }
    json_decref(claims);
    return rc;
}
