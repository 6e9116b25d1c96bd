/* bench/auth/auth_bench.c - fstore-auth-bench: the cost of checking a call's credentials. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core_int.h"

#ifdef FSTORE_BENCH_LIBJWT
#include <jwt.h>
typedef struct {
    const char *token, *pem; /* the key as PEM (openssl pkey -pubout) */
} lib_arg_t;
static int lib_verify(void *arg)
{
    const lib_arg_t *a = arg;
    jwt_t *j = NULL;
    int rc = jwt_decode(&j, a->token, (const unsigned char *)a->pem, (int)strlen(a->pem));
    jwt_free(j);
    return rc == 0 ? 0 : -EKEYREJECTED;
}
static char *read_cmd(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    char *out = calloc(1, 8192);
    if (p == NULL || out == NULL || fread(out, 1, 8191, p) == 0 || pclose(p) != 0) {
        fprintf(stderr, "fstore-auth-bench: failed: %s\n", cmd);
        exit(1);
    }
    return out;
}
#endif

/*
 * Usage: fstore-auth-bench SOURCE_DIR [SECONDS_PER_ROW]
 * Makes RSA-2048 and EC P-256 keys and tokens with SOURCE_DIR/tests/e2e/jwt_tool.py (PyJWT),
 * then times, each for SECONDS_PER_ROW (default 1):
 *   hash      core_authorize() of a bearer token found by its SHA-256 (the tokens file's lines)
 *   jwt_seen  core_authorize() of a JWT verified before (remembered: a hash and a lookup)
 *   rs256     core__jwt_verify() of a valid RS256 JWT (what a new token costs once)
 *   es256     the same, ES256
 *   forged    core__jwt_verify() of an RS256 JWT with a changed signature (a known kid: the
 *             signature check runs and fails; what an attacker's call costs)
 *   bad_kid   core__jwt_verify() of a JWT naming a key the file does not have (refused first)
 *   libjwt_rs256, libjwt_es256, libjwt_forged  the baseline, same run: libjwt's jwt_decode() of
 *             the same tokens with the key as PEM (what core/jwt.c did before: libjwt parses
 *             the PEM at every call); built where libjwt-dev is installed
 * Prints one JSON object: ns per check for each row.
 */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char dir[256];

static void run(const char *cmd)
{
    if (system(cmd) != 0) {
        fprintf(stderr, "fstore-auth-bench: failed: %s\n", cmd);
        exit(1);
    }
}

/* A token signed by jwt_tool.py (malloc'd). */
static char *sign(const char *src, const char *alg, const char *kid, const char *sub)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/tests/e2e/jwt_tool.py sign %s %s %s "
             "'{\"iss\":\"iss\",\"aud\":\"fstore\",\"exp\":\"+3600\",\"sub\":\"%s\"}'",
             src, dir, alg, kid, sub);
    FILE *p = popen(cmd, "r");
    char buf[CORE_JWT_MAX];
    if (p == NULL || fgets(buf, sizeof buf, p) == NULL || pclose(p) != 0) {
        fprintf(stderr, "fstore-auth-bench: failed: %s\n", cmd);
        exit(1);
    }
    buf[strcspn(buf, "\n")] = '\0';
    return strdup(buf);
}

typedef int (*check_fn)(void *arg);

/* ns per call of fn over about secs seconds. */
static double time_it(check_fn fn, void *arg, double secs, int want)
{
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 64; i++) {
            if (fn(arg) != want) {
                fprintf(stderr, "fstore-auth-bench: a check gave an unexpected result\n");
                exit(1);
            }
        }
        n += 64;
        t = now_s();
    } while (t - t0 < secs);
    return (t - t0) * 1e9 / (double)n;
}

static core_tokens_t *ts;

static int authorize(void *arg)
{
    core_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    core_creds_t cr = {.authorization = arg};
    return core_authorize(&ctx, ts, &cr, CORE_SCOPE_READ);
}

static const core__jwks_t *keys;

static int verify(void *arg)
{
    char sub[CORE_JWT_SUB_MAX], why[200];
    int64_t exp;
    return core__jwt_verify(keys, arg, "iss", "fstore", (int64_t)time(NULL), sub, sizeof sub, &exp,
                            why, sizeof why);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fstore-auth-bench SOURCE_DIR [SECONDS_PER_ROW]\n");
        return 2;
    }
    const char *src = argv[1];
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    snprintf(dir, sizeof dir, "/tmp/fstore-auth-bench-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/e2e/jwt_tool.py keys %s >/dev/null", src,
             dir);
    run(cmd);
    snprintf(
        cmd, sizeof cmd,
        "{ printf 'reader '; printf %%s hash-secret | sha256sum | cut -d' ' -f1 | tr -d '\\n'; "
        "printf ' read\\nsvc jwt:svc read\\n'; } > %s/tokens",
        dir);
    run(cmd);
    char path[300], jwks[300], why[256];
    snprintf(path, sizeof path, "%s/tokens", dir);
    snprintf(jwks, sizeof jwks, "%s/jwks.json", dir);
    core_jwt_options_t o = {jwks, "iss", "fstore"};
    if (core_tokens_load(path, &ts, why, sizeof why) != 0 ||
        core_tokens_use_jwks(ts, &o, why, sizeof why) != 0) {
        fprintf(stderr, "fstore-auth-bench: %s\n", why);
        return 1;
    }
    core__jwks_t *ks = NULL;
    if (core__jwks_load(jwks, &ks, why, sizeof why) != 0)
        return 1;
    keys = ks;
    char *rs = sign(src, "RS256", "rsa1", "svc"), *es = sign(src, "ES256", "ec1", "svc");
    char *forged = strdup(rs), *bad_kid = sign(src, "RS256", "nope", "svc");
    char *sig = strrchr(forged, '.') + 10;
    *sig = *sig == 'A' ? 'B' : 'A';
    char bearer_rs[CORE_JWT_MAX + 8];
    snprintf(bearer_rs, sizeof bearer_rs, "Bearer %s", rs);
    double hash = time_it(authorize, "Bearer hash-secret", secs, 0);
    double seen = time_it(authorize, bearer_rs, secs, 0);
    double rs256 = time_it(verify, rs, secs, 0);
    double es256 = time_it(verify, es, secs, 0);
    double forg = time_it(verify, forged, secs, -EKEYREJECTED);
    double kid = time_it(verify, bad_kid, secs, -EKEYREJECTED);
    printf("{\"hash_ns\": %.0f, \"jwt_seen_ns\": %.0f, \"rs256_ns\": %.0f, \"es256_ns\": %.0f, "
           "\"forged_ns\": %.0f, \"bad_kid_ns\": %.0f",
           hash, seen, rs256, es256, forg, kid);
#ifdef FSTORE_BENCH_LIBJWT
    snprintf(cmd, sizeof cmd, "openssl pkey -in %s/rsa1.pem -pubout", dir);
    char *rsa_pem = read_cmd(cmd);
    snprintf(cmd, sizeof cmd, "openssl pkey -in %s/ec1.pem -pubout", dir);
    char *ec_pem = read_cmd(cmd);
    lib_arg_t a_rs = {rs, rsa_pem}, a_es = {es, ec_pem}, a_forged = {forged, rsa_pem};
    double lrs = time_it(lib_verify, &a_rs, secs, 0);
    double les = time_it(lib_verify, &a_es, secs, 0);
    double lforg = time_it(lib_verify, &a_forged, secs, -EKEYREJECTED);
    printf(", \"libjwt_rs256_ns\": %.0f, \"libjwt_es256_ns\": %.0f, \"libjwt_forged_ns\": %.0f, "
           "\"rs256_speedup\": %.1f, \"es256_speedup\": %.1f, \"forged_speedup\": %.1f",
           lrs, les, lforg, lrs / rs256, les / es256, lforg / forg);
    free(rsa_pem);
    free(ec_pem);
#endif
    printf("}\n");
    free(rs);
    free(es);
    free(forged);
    free(bad_kid);
    core__jwks_free(ks);
    core_tokens_free(ts);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run(cmd);
    return 0;
}
