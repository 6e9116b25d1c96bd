/* tests/core/test_auth_identity.c - principals proved by a client certificate's names (cert:)
 * and by a bearer JWT's subject (jwt:, core/jwt.c). The JWKS files and tokens come from
 * tests/e2e/jwt_tool.py (PyJWT and cryptography), not from the code under test. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "core/core_int.h"
#include "tests/tmpdir.h"

static char dir[1024], path[1100], jwks[1100];

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    cr_assert_not_null(test_tmpdir("authid", dir, sizeof dir));
    snprintf(path, sizeof path, "%s/tokens", dir);
    snprintf(jwks, sizeof jwks, "%s/jwks.json", dir);
}

static void teardown(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(cert_identity, .init = setup, .fini = teardown);

static int check(core_tokens_t *ts, const char *bearer, const char *const *names, size_t n,
                 unsigned need, core_ctx_t *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    core_creds_t cr = {.authorization = bearer, .cert_names = names, .n_cert_names = n};
    return core_authorize(ctx, ts, &cr, need);
}

Test(cert_identity, a_verified_certificate_name_is_a_principal_and_a_token_decides_first)
{
    char text[512];
    /* A well-formed hash (of no token in particular). */
    snprintf(text, sizeof text,
             "ranker  cert:ranker.ml.svc  read\n"
             "spiffe  cert:spiffe://cluster.local/ns/ml/sa/trainer  read,write\n"
             "ops     cert:ops@example.com  admin\n"
             "reader  %s  read\n",
             "3b5a1b0b6e1d3f6a6c09f8b1f7c3ccd5c0a8d1a4f0e9f6b0b7d1c2e3f4a5b6c7");
    write_file(path, text);
    core_tokens_t *ts = NULL;
    char why[256];
    cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), 0, "%s", why);
    core_ctx_t ctx;
    /* Any of its names (the transport passes SANs, or the CN when there is none). */
    const char *cn[] = {"ranker.ml.svc"};
    cr_assert_eq(check(ts, NULL, cn, 1, CORE_SCOPE_READ, &ctx), 0, "%s", ctx.msg);
    cr_assert_str_eq(ctx.principal, "ranker");
    cr_assert_eq(check(ts, NULL, cn, 1, CORE_SCOPE_WRITE, &ctx), -EPERM);
    cr_assert(strstr(ctx.msg, "'ranker' lacks the 'write' scope") != NULL, "%s", ctx.msg);
    const char *sans[] = {"trainer", "10.0.0.7", "spiffe://cluster.local/ns/ml/sa/trainer"};
    cr_assert_eq(check(ts, NULL, sans, 3, CORE_SCOPE_WRITE, &ctx), 0, "%s", ctx.msg);
    cr_assert_str_eq(ctx.principal, "spiffe");
    const char *mail[] = {"ops@example.com"};
    cr_assert_eq(check(ts, NULL, mail, 1, CORE_SCOPE_ADMIN, &ctx), 0);
    /* Exact names only: no prefix, no case folding. */
    const char *near[] = {"ranker.ml.sv", "RANKER.ML.SVC", "ranker.ml.svc.evil"};
    cr_assert_eq(check(ts, NULL, near, 3, CORE_SCOPE_READ, &ctx), -EKEYREJECTED);
    cr_assert(strstr(ctx.msg, "'ranker.ml.sv'") != NULL, "%s", ctx.msg);
    cr_assert_null(ctx.principal);
    /* A bearer token decides when there is one: an unknown one is refused whatever the
     * certificate. */
    cr_assert_eq(check(ts, "Bearer not-a-known-token", cn, 1, CORE_SCOPE_READ, &ctx),
                 -EKEYREJECTED);
    /* Names that are two principals': neither. */
    const char *two[] = {"ranker.ml.svc", "ops@example.com"};
    cr_assert_eq(check(ts, NULL, two, 2, CORE_SCOPE_READ, &ctx), -EKEYREJECTED);
    cr_assert(strstr(ctx.msg, "those of two principals ('ranker', 'ops')") != NULL, "%s", ctx.msg);
    /* A non-Bearer authorization leaves the certificate to decide. */
    cr_assert_eq(check(ts, "Basic cmVhZGVy", cn, 1, CORE_SCOPE_READ, &ctx), 0, "%s", ctx.msg);
    /* No certificate and no token. */
    cr_assert_eq(check(ts, NULL, NULL, 0, CORE_SCOPE_READ, &ctx), -ENOKEY);
    /* A token's hash never matches a cert: line (their hash fields are empty). */
    const char *zero[] = {""};
    cr_assert_eq(check(ts, NULL, zero, 1, CORE_SCOPE_READ, &ctx), -EKEYREJECTED);
    core_tokens_free(ts);
}

Test(cert_identity, lines_that_could_name_two_principals_are_refused)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"a cert:x read\nb cert:x write\n", ":2: 'b' has the identity of 'a'"},
        {"a jwt:svc read\nb jwt:svc write\n", ":2: 'b' has the identity of 'a'"},
        {"a 3b5a1b0b6e1d3f6a6c09f8b1f7c3ccd5c0a8d1a4f0e9f6b0b7d1c2e3f4a5b6c7 read\n"
         "b 3B5A1B0B6E1D3F6A6C09F8B1F7C3CCD5C0A8D1A4F0E9F6B0B7D1C2E3F4A5B6C7 write\n",
         ":2: 'b' has the token hash of 'a'"},
        {"a cert: read\n", ":1: cert:: want 1 to 255 characters"},
        {"a jwt: read\n", ":1: jwt:: want 1 to 255 characters"},
        {"a certx:y read\n", ":1: the hash is not 64 hex digits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i].text);
        core_tokens_t *ts = NULL;
        char why[256] = "";
        cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), -EINVAL, "case %zu", i);
        cr_assert(strstr(why, cases[i].want) != NULL, "case %zu: %s", i, why);
    }
    /* The same identity as a certificate and as a JWT subject: two ways in, one each. */
    write_file(path, "a cert:svc read\nb jwt:svc write\n");
    core_tokens_t *ts = NULL;
    char why[256];
    cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), 0, "%s", why);
    core_tokens_free(ts);
}

/* ------------------------------------------------------------------------------------------ */
/* JWTs                                                                                        */

static void jwt_setup(void)
{
    setup();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/e2e/jwt_tool.py keys '%s' > /dev/null",
             FSTORE_TEST_SOURCE_DIR, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    write_file(path, "trainer jwt:system:serviceaccount:ml:trainer read,write\n"
                     "ranker  jwt:ranker  read:view/clicks\n");
}

TestSuite(jwt, .init = jwt_setup, .fini = teardown);

/* A token from jwt_tool.py (malloc'd). */
static char *token(const char *alg, const char *kid, const char *claims)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/e2e/jwt_tool.py sign '%s' %s %s '%s'",
             FSTORE_TEST_SOURCE_DIR, dir, alg, kid, claims);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char buf[CORE_JWT_MAX + 64];
    cr_assert_not_null(fgets(buf, sizeof buf, p), "%s", cmd);
    cr_assert_eq(pclose(p), 0, "%s", cmd);
    buf[strcspn(buf, "\n")] = '\0';
    size_t n = strlen(buf);
    char *t = malloc(n + 8);
    cr_assert_not_null(t);
    memcpy(t, "Bearer ", 7);
    memcpy(t + 7, buf, n + 1);
    return t;
}

static core_tokens_t *load_jwt(void)
{
    core_tokens_t *ts = NULL;
    char why[256];
    cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), 0, "%s", why);
    core_jwt_options_t o = {jwks, "https://issuer.test", "fstore"};
    cr_assert_eq(core_tokens_use_jwks(ts, &o, why, sizeof why), 0, "%s", why);
    return ts;
}

#define GOOD "\"iss\":\"https://issuer.test\",\"aud\":\"fstore\",\"exp\":\"+600\""

/* The check of one token: its result, and the message when refused. */
static int jwt_check(core_tokens_t *ts, const char *alg, const char *kid, const char *claims,
                     unsigned need, core_ctx_t *ctx)
{
    char *t = token(alg, kid, claims);
    memset(ctx, 0, sizeof *ctx);
    core_creds_t cr = {.authorization = t};
    int rc = core_authorize(ctx, ts, &cr, need);
    free(t);
    return rc;
}

Test(jwt, a_verified_subject_is_its_line_in_the_tokens_file)
{
    core_tokens_t *ts = load_jwt();
    core_ctx_t ctx;
    const char *sa = "{" GOOD ",\"sub\":\"system:serviceaccount:ml:trainer\"}";
    cr_assert_eq(jwt_check(ts, "RS256", "rsa1", sa, CORE_SCOPE_WRITE, &ctx), 0, "%s", ctx.msg);
    cr_assert_str_eq(ctx.principal, "trainer");
    cr_assert_eq(jwt_check(ts, "RS512", "rsa1", sa, CORE_SCOPE_READ, &ctx), 0, "%s", ctx.msg);
    cr_assert_eq(jwt_check(ts, "ES256", "ec1", sa, CORE_SCOPE_READ, &ctx), 0, "%s", ctx.msg);
    cr_assert_eq(jwt_check(ts, "RS256", "rsa1", sa, CORE_SCOPE_ADMIN, &ctx), -EPERM);
    cr_assert(strstr(ctx.msg, "'trainer' lacks the 'admin' scope") != NULL, "%s", ctx.msg);
    /* A limited scope, as for a token's line. */
    cr_assert_eq(
        jwt_check(ts, "RS256", "rsa1", "{" GOOD ",\"sub\":\"ranker\"}", CORE_SCOPE_READ, &ctx), 0);
    cr_assert_not_null(ctx.grants);
    /* aud as an array holding ours. */
    cr_assert_eq(jwt_check(ts, "RS256", "rsa1",
                           "{\"iss\":\"https://issuer.test\",\"aud\":[\"other\",\"fstore\"],"
                           "\"exp\":\"+60\",\"sub\":\"ranker\"}",
                           CORE_SCOPE_READ, &ctx),
                 0, "%s", ctx.msg);
    /* An access token of RFC 9068's type; another type is refused. */
    cr_assert_eq(jwt_check(ts, "RS256", "rsa1", "{" GOOD ",\"sub\":\"ranker\",\"_typ\":\"at+jwt\"}",
                           CORE_SCOPE_READ, &ctx),
                 0, "%s", ctx.msg);
    cr_assert_eq(jwt_check(ts, "RS256", "rsa1", "{" GOOD ",\"sub\":\"ranker\",\"_typ\":\"JOSE+X\"}",
                           CORE_SCOPE_READ, &ctx),
                 -EKEYREJECTED);
    cr_assert(strstr(ctx.msg, "type (typ) is not JWT or at+jwt") != NULL, "%s", ctx.msg);
    /* Verified, but the tokens file gives its subject nothing. */
    cr_assert_eq(
        jwt_check(ts, "RS256", "rsa1", "{" GOOD ",\"sub\":\"stranger\"}", CORE_SCOPE_READ, &ctx),
        -EPERM);
    cr_assert(strstr(ctx.msg, "subject 'stranger' holds no scope") != NULL, "%s", ctx.msg);
    core_tokens_free(ts);
}

Test(jwt, every_forgery_and_every_bad_claim_is_refused_naming_why)
{
    core_tokens_t *ts = load_jwt();
    static const struct {
        const char *alg, *kid, *claims, *want;
    } cases[] = {
        {"none", "rsa1", "{" GOOD ",\"sub\":\"ranker\"}", "algorithm 'none' is not accepted"},
        {"HS256-pub", "rsa1", "{" GOOD ",\"sub\":\"ranker\"}", "algorithm 'HS256' is not"},
        {"RS256", "nope", "{" GOOD ",\"sub\":\"ranker\"}", "key 'nope' is not in the JWKS"},
        {"RS256", "-", "{" GOOD ",\"sub\":\"ranker\"}", "names no key (kid) and the JWKS"},
        {"RS256", "ec1", "{" GOOD ",\"sub\":\"ranker\"}", "'RS256' is not its key's (ES256)"},
        {"ES256", "rsa1", "{" GOOD ",\"sub\":\"ranker\"}", "'ES256' is not its key's"},
        {"RS256", "rsa1",
         "{\"iss\":\"https://issuer.test\",\"aud\":\"fstore\",\"exp\":\"-120\",\"sub\":\"r\"}",
         "expired"},
        {"RS256", "rsa1", "{\"iss\":\"https://issuer.test\",\"aud\":\"fstore\",\"sub\":\"r\"}",
         "no expiry (exp)"},
        {"RS256", "rsa1", "{" GOOD ",\"nbf\":\"+3600\",\"sub\":\"ranker\"}", "(nbf)"},
        {"RS256", "rsa1", "{" GOOD ",\"iat\":\"+3600\",\"sub\":\"ranker\"}", "(iat)"},
        {"RS256", "rsa1",
         "{\"iss\":\"https://other.test\",\"aud\":\"fstore\",\"exp\":\"+60\",\"sub\":\"r\"}",
         "issuer is not 'https://issuer.test'"},
        {"RS256", "rsa1",
         "{\"iss\":\"https://issuer.test\",\"aud\":[\"a\",\"b\"],\"exp\":\"+60\",\"sub\":\"r\"}",
         "audience does not hold 'fstore'"},
        {"RS256", "rsa1", "{" GOOD "}", "no subject (sub)"},
        {"RS256", "rsa1", "{" GOOD ",\"nbf\":\"soon\",\"sub\":\"ranker\"}",
         "nbf or iat is not a NumericDate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        core_ctx_t ctx;
        cr_assert_eq(
            jwt_check(ts, cases[i].alg, cases[i].kid, cases[i].claims, CORE_SCOPE_READ, &ctx),
            -EKEYREJECTED, "case %zu", i);
        cr_assert(strstr(ctx.msg, cases[i].want) != NULL, "case %zu: %s", i, ctx.msg);
        cr_assert_null(ctx.principal, "case %zu", i);
    }
    /* A signature over other claims: one byte of the payload changed. */
    char *t = token("RS256", "rsa1", "{" GOOD ",\"sub\":\"ranker\"}");
    char *dot = strchr(t, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    core_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    core_creds_t cr = {.authorization = t};
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), -EKEYREJECTED);
    cr_assert(strstr(ctx.msg, "signature does not verify") != NULL, "%s", ctx.msg);
    free(t);
    /* The signature with anything after it (libjwt's decoder would stop there): another
     * string, the same signature; refused before any check. */
    t = token("RS256", "rsa1", "{" GOOD ",\"sub\":\"ranker\"}");
    char *junk = malloc(strlen(t) + 8);
    cr_assert_not_null(junk);
    sprintf(junk, "%s~x", t);
    cr.authorization = t;
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), 0, "%s", ctx.msg);
    cr.authorization = junk;
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), -EKEYREJECTED);
    cr_assert(strstr(ctx.msg, "signature does not verify") != NULL, "%s", ctx.msg);
    /* The same signature spelt with its last character's unused bits set (a 2048-bit
     * signature leaves four): refused, so one signature has one spelling. */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t tl = strlen(t);
    long v = strchr(b64, t[tl - 1]) - b64;
    cr_assert_eq(v & 0xf, 0);
    t[tl - 1] = b64[v | 1];
    cr.authorization = t;
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), -EKEYREJECTED);
    free(junk);
    free(t);
    /* Too long to be looked at. */
    size_t big = CORE_JWT_MAX + 100;
    char *huge = malloc(big + 1);
    cr_assert_not_null(huge);
    memcpy(huge, "Bearer ", 7);
    memset(huge + 7, 'a', big - 7);
    huge[20] = huge[40] = '.';
    huge[big] = '\0';
    cr.authorization = huge;
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), -EKEYREJECTED);
    cr_assert(strstr(ctx.msg, "not a JWT of at most 8192 bytes") != NULL, "%s", ctx.msg);
    free(huge);
    core_tokens_free(ts);
}

Test(jwt, a_reload_that_drops_a_key_refuses_its_tokens_even_those_seen_before)
{
    core_tokens_t *ts = load_jwt();
    char *t = token("RS256", "rsa1", "{" GOOD ",\"sub\":\"ranker\"}");
    core_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    core_creds_t cr = {.authorization = t};
    /* Twice: the second is answered from what the first verified. */
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), 0, "%s", ctx.msg);
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), 0, "%s", ctx.msg);
    /* The tokens file changes: the subject's scopes follow at once. */
    write_file(path, "trainer jwt:system:serviceaccount:ml:trainer read\n");
    size_t n = 0;
    char why[256];
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), 0, "%s", why);
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), -EPERM);
    write_file(path, "ranker jwt:ranker read\n");
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), 0, "%s", why);
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), 0, "%s", ctx.msg);
    /* The RSA key leaves the JWKS (only the EC one stays). */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
             "d['keys']=[k for k in d['keys'] if k['kid']!='rsa1']; "
             "json.dump(d,open(sys.argv[1],'w'))\" '%s'",
             jwks);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), 0, "%s", why);
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), -EKEYREJECTED);
    cr_assert(strstr(ctx.msg, "key 'rsa1' is not in the JWKS") != NULL, "%s", ctx.msg);
    /* A JWKS that does not load keeps the keys in use. */
    write_file(jwks, "{\"keys\": 3}");
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, "not a JWKS") != NULL, "%s", why);
    free(t);
    t = token("ES256", "ec1", "{" GOOD ",\"sub\":\"ranker\"}");
    cr.authorization = t;
    cr_assert_eq(core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ), 0, "%s", ctx.msg);
    free(t);
    core_tokens_free(ts);
}

Test(jwt, a_jwks_file_is_checked_whole_at_load)
{
    core_tokens_t *ts = NULL;
    char why[256];
    cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), 0, "%s", why);
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[]", "not a JWKS"},
        {"{\"keys\": []}", "no RSA or EC signing key"},
        {"{\"keys\": [{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", "no RSA or EC signing key"},
        {"{\"keys\": [{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"kid\":\"short\"}]}",
         "key 0 (RSA short): not a usable public key"},
        {"{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"}]}",
         "key 0 (EC): not a usable public key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(jwks, cases[i].text);
        core_jwt_options_t o = {jwks, "iss", "aud"};
        cr_assert_eq(core_tokens_use_jwks(ts, &o, why, sizeof why), -EINVAL, "case %zu", i);
        cr_assert(strstr(why, cases[i].want) != NULL, "case %zu: %s", i, why);
    }
    /* Two keys with one kid; an encryption key is passed over. */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/tests/e2e/jwt_tool.py keys '%s' > /dev/null && "
             "/usr/bin/python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
             "d['keys'][1]['kid']='rsa1'; json.dump(d,open(sys.argv[1],'w'))\" '%s'",
             FSTORE_TEST_SOURCE_DIR, dir, jwks);
    cr_assert_eq(system(cmd), 0);
    core_jwt_options_t o = {jwks, "iss", "aud"};
    cr_assert_eq(core_tokens_use_jwks(ts, &o, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, "two signing keys with kid 'rsa1'") != NULL, "%s", why);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
             "d['keys'][1]['use']='enc'; json.dump(d,open(sys.argv[1],'w'))\" '%s'",
             jwks);
    cr_assert_eq(system(cmd), 0);
    /* Issuer and audience are required. */
    core_jwt_options_t no_aud = {jwks, "iss", ""};
    cr_assert_eq(core_tokens_use_jwks(ts, &no_aud, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, "--jwt-audience") != NULL, "%s", why);
    cr_assert_eq(core_tokens_use_jwks(ts, &o, why, sizeof why), 0, "%s", why);
    core_tokens_free(ts);
}

/* The public key of one of jwt_tool.py's private keys as PEM, by openssl (malloc'd). */
static char *public_pem(const char *name)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "openssl pkey -in '%s/%s.pem' -pubout", dir, name);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *pem = calloc(1, 4096);
    cr_assert_not_null(pem);
    size_t n = fread(pem, 1, 4095, p);
    cr_assert_eq(pclose(p), 0, "%s", cmd);
    cr_assert(n > 0);
    return pem;
}

Test(jwt, every_verdict_on_a_signature_is_libjwts)
{
    /* core/jwt.c verifies with OpenSSL directly (libjwt parses the PEM at every call: too
     * slow for a forged token's cost); it must agree with libjwt on every token here. */
    core__jwks_t *ks = NULL;
    char why[256];
    cr_assert_eq(core__jwks_load(jwks, &ks, why, sizeof why), 0, "%s", why);
    static const struct {
        const char *alg, *kid;
    } algs[] = {{"RS256", "rsa1"}, {"RS384", "rsa1"},  {"RS512", "rsa1"},
                {"ES256", "ec1"},  {"ES384", "ec384"}, {"ES512", "ec521"}};
    int agreed = 0;
    for (size_t i = 0; i < sizeof algs / sizeof *algs; i++) {
        char *t = token(algs[i].alg, algs[i].kid, "{" GOOD ",\"sub\":\"ranker\"}");
        const char *tok = t + 7; /* past "Bearer " */
        size_t n = strlen(tok);
        char *dot2 = strrchr(tok, '.');
        /* The token, and forgeries: a signature character changed (at its start, middle and
         * end but one), a payload character changed, the signature of another token. */
        char *variants[5];
        for (int v = 0; v < 5; v++)
            variants[v] = strdup(tok);
        size_t sig_at = (size_t)(dot2 + 1 - tok), sig_n = n - sig_at;
        size_t at[3] = {sig_at, sig_at + sig_n / 2, n - 2};
        for (int v = 1; v <= 3; v++)
            variants[v][at[v - 1]] = variants[v][at[v - 1]] == 'A' ? 'B' : 'A';
        char *pay = strchr(variants[4], '.') + 2;
        *pay = *pay == 'A' ? 'B' : 'A';
        for (int v = 0; v < 5; v++) {
            char *pem = public_pem(algs[i].kid);
            jwt_t *j = NULL;
            bool lib =
                jwt_decode(&j, variants[v], (const unsigned char *)pem, (int)strlen(pem)) == 0;
            jwt_free(j);
            free(pem);
            char sub[CORE_JWT_SUB_MAX];
            int64_t exp;
            bool ours =
                core__jwt_verify(ks, variants[v], "https://issuer.test", "fstore",
                                 (int64_t)time(NULL), sub, sizeof sub, &exp, why, sizeof why) == 0;
            cr_assert_eq(ours, lib, "%s variant %d: ours %d, libjwt's %d (%s)", algs[i].alg, v,
                         ours, lib, why);
            cr_assert_eq(ours, v == 0, "%s variant %d", algs[i].alg, v);
            agreed++;
            free(variants[v]);
        }
        free(t);
    }
    cr_assert_eq(agreed, 30);
    core__jwks_free(ks);
}
