/* tests/core/fuzz_jwt.c - libFuzzer: bearer JWTs (any client sends one) and JWKS files. */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte picks the decoder (its value modulo 3):
 *   0  the rest is a bearer token checked against the keys of $FUZZ_JWKS (run-fuzz-jwt.sh makes
 *      them, and seeds tokens they sign);
 *   1  the rest is a JWKS file's text;
 *   2  the rest is a token's claims (any bytes), signed here with $FUZZ_JWT_KEY (the JWKS's
 *      rsa1) so that they reach the claim checks a fuzzed signature never passes; an accepted
 *      token's claims are checked again here, independently: a JSON object whose iss is the
 *      issuer, whose aud is or holds the audience, with a numeric exp still valid and a
 *      non-empty string sub.
 * A token is accepted (0, a subject) or refused (-EKEYREJECTED, with a reason), never anything
 * else; a JWKS loads (0) or is refused (-EINVAL); no crash, leak or sanitizer report either way.
 */

#define NOW 1900000000

static core__jwks_t *keys;
static EVP_PKEY *signer;

static size_t b64url(const uint8_t *in, size_t n, char *out)
{
    size_t m = base_base64_encode(in, n, out);
    while (m > 0 && out[m - 1] == '=')
        m--;
    for (size_t i = 0; i < m; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return m;
}

/* What the claims must be for the token to be accepted, checked here without core/jwt.c. */
static bool claims_ok(const uint8_t *p, size_t n)
{
    json_t *c = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
    json_t *aud = json_object_get(c, "aud"), *exp = json_object_get(c, "exp");
    const char *iss = json_string_value(json_object_get(c, "iss"));
    const char *sub = json_string_value(json_object_get(c, "sub"));
    bool aud_ok = json_is_string(aud) && strcmp(json_string_value(aud), "fstore") == 0;
    size_t i;
    json_t *a;
    json_array_foreach(aud, i, a)
    {
        aud_ok = aud_ok || (json_is_string(a) && strcmp(json_string_value(a), "fstore") == 0);
    }
    /* A NumericDate as the server reads one: whole seconds, within +-1e15. */
    double e = json_is_number(exp) ? json_number_value(exp) : 0;
    bool exp_ok =
        json_is_number(exp) && e > -1e15 && e < 1e15 && (int64_t)e + CORE_JWT_LEEWAY_S > NOW;
    bool ok = json_is_object(c) && iss != NULL && strcmp(iss, "https://issuer.test") == 0 &&
              aud_ok && exp_ok && sub != NULL && sub[0] != '\0';
    json_decref(c);
    return ok;
}

/* The claims p[0..n) as an RS256 token signed with rsa1 (malloc'd), or NULL. */
static char *signed_token(const uint8_t *p, size_t n)
{
    static const char head[] = "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}";
    char *t = malloc(BASE_BASE64_LEN(sizeof head) + BASE_BASE64_LEN(n) + 400);
    if (t == NULL)
        return NULL;
    size_t k = b64url((const uint8_t *)head, sizeof head - 1, t);
    t[k++] = '.';
    k += b64url(p, n, t + k);
    uint8_t sig[512];
    size_t sl = sizeof sig;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    bool ok = mc != NULL && EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, signer) == 1 &&
              EVP_DigestSign(mc, sig, &sl, (const uint8_t *)t, k) == 1;
    EVP_MD_CTX_free(mc);
    if (!ok) {
        free(t);
        return NULL;
    }
    t[k++] = '.';
    k += b64url(sig, sl, t + k);
    t[k] = '\0';
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *path = getenv("FUZZ_JWKS");
    char why[256];
    if (path == NULL || core__jwks_load(path, &keys, why, sizeof why) != 0) {
        fprintf(stderr, "fuzz_jwt: FUZZ_JWKS: %s\n", path == NULL ? "not set" : why);
        abort();
    }
    const char *key = getenv("FUZZ_JWT_KEY");
    FILE *f = key != NULL ? fopen(key, "r") : NULL;
    signer = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    if (signer == NULL) {
        fprintf(stderr, "fuzz_jwt: FUZZ_JWT_KEY: not a private key\n");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 3 * CORE_JWT_MAX)
        return 0;
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char why[256] = "";
    if (data[0] % 3 == 2) {
        char *t = signed_token(data + 1, size - 1);
        if (t != NULL) {
            char sub[CORE_JWT_SUB_MAX] = "";
            int64_t exp = 0;
            int rc = core__jwt_verify(keys, t, "https://issuer.test", "fstore", NOW, sub,
                                      sizeof sub, &exp, why, sizeof why);
            bool fits = strlen(t) <= CORE_JWT_MAX;
            if (rc == 0 && (!claims_ok(data + 1, size - 1) || sub[0] == '\0'))
                abort(); /* accepted claims that are not valid */
            if (rc != 0 && rc != -EKEYREJECTED)
                abort();
            if (rc != 0 && fits && claims_ok(data + 1, size - 1) && strstr(why, "nbf") == NULL &&
                strstr(why, "iat") == NULL && strstr(why, "subject") == NULL)
                abort(); /* valid claims refused for no reason the claims give */
            free(t);
        }
    } else if (data[0] % 3 == 0) {
        char sub[CORE_JWT_SUB_MAX] = "";
        int64_t exp = 0;
        /* A fixed "now" inside the seeds' validity, so a run does not age them out. */
        int rc = core__jwt_verify(keys, text, "https://issuer.test", "fstore", NOW, sub, sizeof sub,
                                  &exp, why, sizeof why);
        if (rc == 0 && (sub[0] == '\0' || exp <= NOW - CORE_JWT_LEEWAY_S))
            abort(); /* accepted without a subject, or expired */
        if (rc != 0 && (rc != -EKEYREJECTED || why[0] == '\0'))
            abort(); /* refused without a reason, or with another error */
    } else {
        core__jwks_t *ks = NULL;
        int rc = core__jwks_parse(text, size - 1, "fuzz", &ks, why, sizeof why);
        if ((rc == 0) != (ks != NULL) || (rc != 0 && rc != -EINVAL))
            abort();
        core__jwks_free(ks);
    }
    free(text);
    return 0;
}
