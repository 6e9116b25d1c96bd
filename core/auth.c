/* core/auth.c - who is calling (a bearer token's hash, a JWT's subject, a client certificate's
 * name) checked against the tokens file, and the scopes it holds there. */
#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core_int.h"

/*
 * The tokens file holds no token, only its SHA-256: one line per principal,
 *     NAME  SHA256-HEX  SCOPES        # SCOPES: comma-separated, see core_tokens_load()
 *     NAME  cert:IDENTITY  SCOPES     # a verified client certificate's SAN (CN without one)
 *     NAME  jwt:SUBJECT  SCOPES       # a verified JWT's sub (jwt.c)
 * with '#' comments and blank lines. A call's token is hashed and compared with every hash
 * entry in constant time (CRYPTO_memcmp, no early exit), so neither the hashes nor the timing
 * tell which entry came close. Messages name the principal and the scope, never the token.
 *
 * A scope is whole (read, write, admin) or limited to named resources (read:view/NAME,
 * read:service/NAME, read:model/NAME, write:view/NAME). The transports check the scope a call
 * needs at its headers (a limited one passes there); the core checks the resources once it
 * knows them (core__allow_*), so a limited principal is refused before any data is read.
 */

#define MAX_GRANTS 64 /* resources named on one line */
#define IDENT_MAX 255 /* characters of a cert: or jwt: identity */
#define JWT_SEEN 64   /* verified JWTs remembered (direct-mapped by their hash) */

/* One resource a limited scope names. */
typedef struct core_grant {
    unsigned scope; /* CORE_SCOPE_READ or CORE_SCOPE_WRITE */
    char kind;      /* 'v' view, 's' feature service, 'm' model */
    char name[CATALOG_MAX_NAME + 1];
} core_grant_t;

struct core_grants {
    size_t n;
    core_grant_t g[];
};

struct core_token {
    char name[64];
    char kind; /* 'h' a token's hash, 'c' a certificate identity, 'j' a JWT subject */
    uint8_t hash[SHA256_DIGEST_LENGTH];
    char ident[IDENT_MAX + 1]; /* 'c', 'j' */
    unsigned scopes;           /* whole scopes */
    unsigned limited;          /* scopes held for named resources only (grants) */
    core_grants_t *grants;
    const char *principal;         /* name, interned in the core_tokens_t: outlives reloads */
    const core_grants_t *interned; /* grants, likewise */
};

/* A principal once seen (its name and grants), kept until core_tokens_free(): calls keep them
 * past the check (logs, audit lines, the core's resource checks), so a reload must not free
 * them. */
typedef struct interned {
    struct interned *next;
    core_grants_t *grants; /* NULL: none */
    char name[];
} interned_t;

static bool same_grants(const core_grants_t *a, const core_grants_t *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return a->n == b->n && memcmp(a->g, b->g, a->n * sizeof *a->g) == 0;
}

/* A JWT whose signature and claims verified, until it expires. */
typedef struct jwt_seen {
    uint8_t hash[SHA256_DIGEST_LENGTH]; /* all zero: an empty slot */
    int64_t exp_s;
    char sub[CORE_JWT_SUB_MAX];
} jwt_seen_t;

/* The table (and the JWKS) is swapped whole by core_tokens_reload() under the write lock; every
 * check reads it under the read lock (uncontended but for a reload: an operator's SIGHUP). */
struct core_tokens {
    pthread_rwlock_t lock;
    core_token_t *t;
    size_t n;
    char *path;
    interned_t *names;  /* every principal name any load of the file had */
    core__jwks_t *jwks; /* NULL: JWTs are not accepted */
    char *jwks_path, *issuer, *audience;
    pthread_mutex_t seen_mu;
    jwt_seen_t seen[JWT_SEEN];
};

/* Points each entry's principal at its interned name and grants (added when new).
 * Returns: 0, -ENOMEM. */
static int intern_names(core_tokens_t *ts, core_token_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        interned_t *in = ts->names;
        while (in != NULL &&
               (strcmp(in->name, t[i].name) != 0 || !same_grants(in->grants, t[i].grants)))
            in = in->next;
        if (in == NULL) {
            size_t len = strlen(t[i].name);
            in = malloc(sizeof *in + len + 1);
            if (in == NULL)
                return -ENOMEM;
            memcpy(in->name, t[i].name, len + 1);
            in->grants = t[i].grants; /* the table's copy moves here */
            t[i].grants = NULL;
            in->next = ts->names;
            ts->names = in;
        }
        t[i].principal = in->name;
        t[i].interned = in->grants;
    }
    return 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* One line's fields. Returns: 1 (an entry), 0 (blank or comment), -EINVAL with why. */
static int parse_line(char *line, core_token_t *t, char *why, size_t cap)
{
    char *hash = line + strcspn(line, "#");
    *hash = '\0';
    char *save = NULL;
    char *name = strtok_r(line, " \t\r\n", &save);
    if (name == NULL)
        return 0;
    char *hex = strtok_r(NULL, " \t\r\n", &save);
    char *scopes = strtok_r(NULL, " \t\r\n", &save);
    if (hex == NULL || scopes == NULL || strtok_r(NULL, " \t\r\n", &save) != NULL)
        return snprintf(why, cap,
                        "want NAME SHA256-HEX SCOPES (or NAME cert:IDENTITY SCOPES, "
                        "NAME jwt:SUBJECT SCOPES)"),
               -EINVAL;
    if (strlen(name) >= sizeof t->name)
        return snprintf(why, cap, "name over %zu characters", sizeof t->name - 1), -EINVAL;
    memset(t->hash, 0, sizeof t->hash);
    t->ident[0] = '\0';
    if (strncmp(hex, "cert:", 5) == 0 || strncmp(hex, "jwt:", 4) == 0) {
        t->kind = hex[0] == 'c' ? 'c' : 'j';
        const char *id = hex + (t->kind == 'c' ? 5 : 4);
        if (id[0] == '\0' || strlen(id) > IDENT_MAX)
            return snprintf(why, cap, "%s: want 1 to %d characters after it",
                            t->kind == 'c' ? "cert:" : "jwt:", IDENT_MAX),
                   -EINVAL;
        snprintf(t->ident, sizeof t->ident, "%s", id);
    } else {
        t->kind = 'h';
        if (strlen(hex) != 2 * SHA256_DIGEST_LENGTH)
            return snprintf(why, cap,
                            "the hash is not 64 hex digits (sha256sum of the token; or "
                            "cert:IDENTITY, jwt:SUBJECT)"),
                   -EINVAL;
        for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return snprintf(why, cap, "the hash is not 64 hex digits"), -EINVAL;
            t->hash[i] = (uint8_t)(hi << 4 | lo);
        }
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->scopes = t->limited = 0;
    t->grants = NULL;
    core_grant_t g[MAX_GRANTS];
    size_t ng = 0;
    char *s2 = NULL;
    for (char *sc = strtok_r(scopes, ",", &s2); sc != NULL; sc = strtok_r(NULL, ",", &s2)) {
        if (strcmp(sc, "read") == 0) {
            t->scopes |= CORE_SCOPE_READ;
            continue;
        }
        if (strcmp(sc, "write") == 0) {
            t->scopes |= CORE_SCOPE_WRITE;
            continue;
        }
        if (strcmp(sc, "admin") == 0) {
            t->scopes |= CORE_SCOPE_READ | CORE_SCOPE_WRITE | CORE_SCOPE_ADMIN;
            continue;
        }
        /* scope:kind/NAME (cut apart in place: the message quotes what was written) */
        char said[80];
        snprintf(said, sizeof said, "%s", sc);
        char *colon = strchr(sc, ':'), *slash = colon != NULL ? strchr(colon, '/') : NULL;
        unsigned scope = 0;
        if (colon != NULL) {
            *colon = '\0';
            scope = strcmp(sc, "read") == 0    ? CORE_SCOPE_READ
                    : strcmp(sc, "write") == 0 ? CORE_SCOPE_WRITE
                                               : 0;
        }
        char kind = 0;
        if (slash != NULL) {
            *slash = '\0';
            const char *k = colon + 1;
            kind = strcmp(k, "view") == 0      ? 'v'
                   : strcmp(k, "service") == 0 ? 's'
                   : strcmp(k, "model") == 0   ? 'm'
                                               : 0;
        }
        const char *res = slash != NULL ? slash + 1 : "";
        /* A name as the catalog spells them ([A-Za-z_][A-Za-z0-9_]*): anything else could
         * never match, and a typo would only show as a refusal later. */
        bool name_ok =
            (isalpha((unsigned char)res[0]) || res[0] == '_') && strlen(res) < CATALOG_MAX_NAME;
        for (const char *q = res; name_ok && *q != '\0'; q++)
            name_ok = isalnum((unsigned char)*q) || *q == '_';
        if (scope == 0 || kind == 0 || !name_ok || (scope == CORE_SCOPE_WRITE && kind != 'v'))
            return snprintf(why, cap,
                            "unknown scope '%.64s' (read, write, admin; or limited: "
                            "read:view/NAME, read:service/NAME, read:model/NAME, write:view/NAME)",
                            said),
                   -EINVAL;
        if (ng == MAX_GRANTS)
            return snprintf(why, cap, "more than %d limited scopes", MAX_GRANTS), -EINVAL;
        memset(&g[ng], 0, sizeof g[ng]);
        g[ng].scope = scope;
        g[ng].kind = kind;
        snprintf(g[ng].name, sizeof g[ng].name, "%s", res);
        ng++;
        t->limited |= scope;
    }
    if (ng > 0) {
        t->grants = malloc(sizeof *t->grants + ng * sizeof *g);
        if (t->grants == NULL)
            return snprintf(why, cap, "out of memory"), -ENOMEM;
        t->grants->n = ng;
        memcpy(t->grants->g, g, ng * sizeof *g);
    }
    return 1;
}

static void table_free(core_token_t *t, size_t n)
{
    for (size_t i = 0; t != NULL && i < n; i++)
        free(t[i].grants); /* those not interned */
    if (t != NULL)
        OPENSSL_cleanse(t, n * sizeof *t);
    free(t);
}

/* Frees the interned principal names (only when no check can still hold one). */
static void names_free(core_tokens_t *ts)
{
    for (interned_t *in = ts->names, *next; in != NULL; in = next) {
        next = in->next;
        free(in->grants);
        free(in);
    }
    ts->names = NULL;
}

/* Reads path's entries into *t, *n. Returns: 0; -EINVAL or fopen()'s -errno with why; -ENOMEM. */
static int read_table(const char *path, core_token_t **out, size_t *out_n, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int e = errno; /* before snprintf, which may change it */
        snprintf(why, cap, "%s: %s", path, strerror(e));
        return -e;
    }
    core_token_t *tab = NULL;
    size_t n = 0;
    char line[16384]; /* 64 limited scopes of the longest names fit */
    int rc = 0;
    for (unsigned lineno = 1; fgets(line, sizeof line, f) != NULL; lineno++) {
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(why, cap, "%s:%u: line over %zu bytes", path, lineno, sizeof line - 2);
            rc = -EINVAL;
            break;
        }
        core_token_t t;
        char inner[320];
        int r = parse_line(line, &t, inner, sizeof inner);
        if (r < 0) {
            snprintf(why, cap, "%s:%u: %s", path, lineno, inner);
            rc = r;
            break;
        }
        if (r == 0)
            continue;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (strcmp(tab[i].name, t.name) == 0) {
                snprintf(why, cap, "%s:%u: '%s' is named twice", path, lineno, t.name);
                rc = -EINVAL;
            } else if (tab[i].kind == t.kind &&
                       (t.kind == 'h' ? memcmp(tab[i].hash, t.hash, sizeof t.hash) == 0
                                      : strcmp(tab[i].ident, t.ident) == 0)) {
                /* Which principal would it be? Neither: refused. */
                snprintf(why, cap, "%s:%u: '%s' has the %s of '%s'", path, lineno, t.name,
                         t.kind == 'h' ? "token hash" : "identity", tab[i].name);
                rc = -EINVAL;
            }
        }
        core_token_t *grown = rc < 0 ? NULL : realloc(tab, (n + 1) * sizeof *grown);
        if (grown == NULL) {
            free(t.grants);
            rc = rc < 0 ? rc : -ENOMEM;
            break;
        }
        tab = grown;
        tab[n++] = t;
    }
    fclose(f);
    if (rc == 0 && n == 0) {
        snprintf(why, cap, "%s: no tokens (every call would be refused)", path);
        rc = -EINVAL;
    }
    if (rc < 0) {
        table_free(tab, n);
        return rc;
    }
    *out = tab;
    *out_n = n;
    return 0;
}

int core_tokens_load(const char *path, core_tokens_t **out, char *why, size_t cap)
{
    core_tokens_t *ts = calloc(1, sizeof *ts);
    if (ts == NULL || (ts->path = strdup(path)) == NULL) {
        free(ts);
        return -ENOMEM;
    }
    int rc = read_table(path, &ts->t, &ts->n, why, cap);
    if (rc == 0)
        rc = intern_names(ts, ts->t, ts->n);
    /* Writers first: a steady stream of checks (JWT signature checks are tens of microseconds)
     * must not keep a reload, which may be taking a compromised key out, waiting for good. */
    pthread_rwlockattr_t attr;
    if (rc == 0 && pthread_rwlockattr_init(&attr) != 0)
        rc = -ENOMEM;
    if (rc == 0) {
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        if (pthread_rwlock_init(&ts->lock, &attr) != 0)
            rc = -ENOMEM;
        pthread_rwlockattr_destroy(&attr);
    }
    if (rc == 0 && pthread_mutex_init(&ts->seen_mu, NULL) != 0) {
        pthread_rwlock_destroy(&ts->lock);
        rc = -ENOMEM;
    }
    if (rc < 0) {
        table_free(ts->t, ts->n);
        names_free(ts);
        free(ts->path);
        free(ts);
        return rc;
    }
    *out = ts;
    return 0;
}

int core_tokens_use_jwks(core_tokens_t *ts, const core_jwt_options_t *o, char *why, size_t cap)
{
    if (o->jwks_path == NULL || o->issuer == NULL || o->audience == NULL || o->issuer[0] == '\0' ||
        o->audience[0] == '\0')
        return snprintf(why, cap,
                        "a JWKS file needs the issuer and the audience its tokens "
                        "must carry (--jwt-issuer, --jwt-audience)"),
               -EINVAL;
    core__jwks_t *ks = NULL;
    int rc = core__jwks_load(o->jwks_path, &ks, why, cap);
    if (rc < 0)
        return rc;
    char *path = strdup(o->jwks_path), *iss = strdup(o->issuer), *aud = strdup(o->audience);
    if (path == NULL || iss == NULL || aud == NULL) {
        free(path);
        free(iss);
        free(aud);
        core__jwks_free(ks);
        return snprintf(why, cap, "out of memory"), -ENOMEM;
    }
    ts->jwks_path = path;
    ts->issuer = iss;
    ts->audience = aud;
    ts->jwks = ks;
    return 0;
}

int core_tokens_reload(core_tokens_t *ts, size_t *n, char *why, size_t cap)
{
    core_token_t *t = NULL;
    size_t tn = 0;
    core__jwks_t *ks = NULL;
    int rc = read_table(ts->path, &t, &tn, why, cap);
    if (rc == 0 && ts->jwks_path != NULL &&
        (rc = core__jwks_load(ts->jwks_path, &ks, why, cap)) < 0)
        table_free(t, tn);
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&ts->lock);
    rc = intern_names(ts, t, tn);
    if (rc < 0) {
        pthread_rwlock_unlock(&ts->lock);
        table_free(t, tn);
        core__jwks_free(ks);
        snprintf(why, cap, "out of memory");
        return rc;
    }
    core_token_t *old = ts->t;
    size_t old_n = ts->n;
    core__jwks_t *old_ks = ts->jwks;
    ts->t = t;
    ts->n = tn;
    if (ks != NULL) {
        ts->jwks = ks;
        /* A key taken out of the file is trusted no more: nothing it verified is kept. */
        pthread_mutex_lock(&ts->seen_mu);
        memset(ts->seen, 0, sizeof ts->seen);
        pthread_mutex_unlock(&ts->seen_mu);
    }
    pthread_rwlock_unlock(&ts->lock);
    table_free(old, old_n);
    if (ks != NULL)
        core__jwks_free(old_ks);
    *n = tn;
    return 0;
}

void core_tokens_free(core_tokens_t *ts)
{
    if (ts == NULL)
        return;
    table_free(ts->t, ts->n);
    names_free(ts);
    pthread_rwlock_destroy(&ts->lock);
    pthread_mutex_destroy(&ts->seen_mu);
    core__jwks_free(ts->jwks);
    free(ts->jwks_path);
    free(ts->issuer);
    free(ts->audience);
    free(ts->path);
    free(ts);
}

static const char *scope_name(unsigned need)
{
    return need & CORE_SCOPE_ADMIN ? "admin" : need & CORE_SCOPE_WRITE ? "write" : "read";
}

/* The principal a check found, copied out of the table under its lock: the names and grants
 * are interned, so they outlive a reload. */
typedef struct found {
    const char *principal;
    unsigned scopes, limited;
    const core_grants_t *grants;
} found_t;

static void take(found_t *f, const core_token_t *t)
{
    f->principal = t->principal;
    f->scopes = t->scopes;
    f->limited = t->limited;
    f->grants = t->interned;
}

/* A bearer token by its hash (constant time over every hash entry). Under the read lock. */
static bool find_hash(const core_tokens_t *ts, const uint8_t h[SHA256_DIGEST_LENGTH], found_t *f)
{
    const core_token_t *hit = NULL;
    for (size_t i = 0; i < ts->n; i++) {
        /* Every entry compared in full: the time does not depend on which one matches. */
        bool eq = CRYPTO_memcmp(h, ts->t[i].hash, SHA256_DIGEST_LENGTH) == 0;
        if (eq && hit == NULL && ts->t[i].kind == 'h')
            hit = &ts->t[i];
    }
    if (hit != NULL)
        take(f, hit);
    return hit != NULL;
}

/* The line of a verified identity of kind ('c', 'j'). Under the read lock. */
static bool find_ident(const core_tokens_t *ts, char kind, const char *id, found_t *f)
{
    for (size_t i = 0; i < ts->n; i++) {
        if (ts->t[i].kind == kind && strcmp(ts->t[i].ident, id) == 0) {
            take(f, &ts->t[i]);
            return true;
        }
    }
    return false;
}

/* A bearer JWT's subject into sub: remembered, or verified now (and then remembered). Under the
 * read lock. Returns: 0; -EKEYREJECTED with ctx's message set. */
static int jwt_subject(core_ctx_t *ctx, core_tokens_t *ts, const char *tok,
                       const uint8_t h[SHA256_DIGEST_LENGTH], char sub[CORE_JWT_SUB_MAX])
{
    int64_t now = (int64_t)time(NULL);
    jwt_seen_t *slot = &ts->seen[h[0] % JWT_SEEN];
    pthread_mutex_lock(&ts->seen_mu);
    bool hit = CRYPTO_memcmp(slot->hash, h, SHA256_DIGEST_LENGTH) == 0 && slot->exp_s > now;
    if (hit)
        memcpy(sub, slot->sub, CORE_JWT_SUB_MAX);
    pthread_mutex_unlock(&ts->seen_mu);
    if (hit)
        return 0;
    char why[200];
    int64_t exp = 0;
    if (core__jwt_verify(ts->jwks, tok, ts->issuer, ts->audience, now, sub, CORE_JWT_SUB_MAX, &exp,
                         why, sizeof why) < 0)
        return core_fail(ctx, -EKEYREJECTED, "%s", why);
    pthread_mutex_lock(&ts->seen_mu);
    memcpy(slot->hash, h, SHA256_DIGEST_LENGTH);
    slot->exp_s = exp;
    memcpy(slot->sub, sub, CORE_JWT_SUB_MAX);
    pthread_mutex_unlock(&ts->seen_mu);
    return 0;
}

const char *core_bearer(const char *authorization)
{
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    return *tok != '\0' ? tok : NULL;
}

/* Who a call is, from its credentials. Under the read lock. Returns: 0 and *f; -ENOKEY,
 * -EKEYREJECTED or -EPERM with ctx's message set. */
static int identify(core_ctx_t *ctx, core_tokens_t *ts, const core_creds_t *cr, unsigned need,
                    found_t *f)
{
    const char *tok = cr != NULL ? core_bearer(cr->authorization) : NULL;
    if (tok != NULL) {
        uint8_t h[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)tok, strlen(tok), h);
        bool hit = find_hash(ts, h, f);
        int rc = 0;
        if (!hit && ts->jwks != NULL && strchr(tok, '.') != NULL) {
            char sub[CORE_JWT_SUB_MAX];
            rc = jwt_subject(ctx, ts, tok, h, sub);
            if (rc == 0 && !find_ident(ts, 'j', sub, f))
                rc = core_fail(ctx, -EPERM,
                               "the JWT's subject '%.255s' holds no scope here (no 'jwt:' line "
                               "of the tokens file names it)",
                               sub);
            hit = rc == 0;
        }
        OPENSSL_cleanse(h, sizeof h);
        if (rc < 0)
            return rc;
        if (!hit)
            return core_fail(ctx, -EKEYREJECTED, "the bearer token is not one this server knows");
        return 0;
    }
    if (cr != NULL && cr->n_cert_names > 0) {
        /* Every name is looked up: a certificate whose names are two principals' is neither. */
        bool hit = false;
        for (size_t i = 0; i < cr->n_cert_names; i++) {
            found_t g;
            if (!find_ident(ts, 'c', cr->cert_names[i], &g))
                continue;
            if (hit && g.principal != f->principal)
                return core_fail(ctx, -EKEYREJECTED,
                                 "the client certificate's names are those of two principals "
                                 "('%s', '%s'): refused",
                                 f->principal, g.principal);
            *f = g;
            hit = true;
        }
        if (hit)
            return 0;
        return core_fail(ctx, -EKEYREJECTED,
                         "the client certificate ('%.255s') is named by no 'cert:' line of the "
                         "tokens file, and the call sent no bearer token",
                         cr->cert_names[0]);
    }
    return core_fail(ctx, -ENOKEY,
                     "no credentials: send 'authorization: Bearer <token>' (this call needs "
                     "the '%s' scope)",
                     scope_name(need));
}

int core_authorize(core_ctx_t *ctx, core_tokens_t *ts, const core_creds_t *cr, unsigned need)
{
    ctx->principal = NULL;
    ctx->grants = NULL;
    ctx->grant_scope = 0;
    if (ts == NULL || need == 0)
        return 0; /* no tokens file: open; a probe's method: open */
    found_t f = {0};
    pthread_rwlock_rdlock(&ts->lock);
    int rc = identify(ctx, ts, cr, need, &f);
    pthread_rwlock_unlock(&ts->lock);
    if (rc < 0)
        return rc;
    ctx->principal = f.principal;
    if ((f.scopes & need) == need)
        return 0; /* whole: every resource */
    if (((f.scopes | f.limited) & need) != need)
        return core_fail(ctx, -EPERM, "principal '%s' lacks the '%s' scope this call needs",
                         f.principal, scope_name(need));
    /* Held for named resources only: the core checks those it meets (core__allow_*). */
    ctx->grants = f.grants;
    ctx->grant_scope = need & ~f.scopes;
    return 0;
}

/* Whether the call's limited scope covers resource (kind, name). */
static bool granted(const core_ctx_t *ctx, unsigned scope, char kind, const char *name)
{
    if (ctx->grants == NULL || (ctx->grant_scope & scope) == 0)
        return true; /* a whole scope */
    for (size_t i = 0; i < ctx->grants->n; i++) {
        const core_grant_t *g = &ctx->grants->g[i];
        if (g->scope == scope && g->kind == kind && strcmp(g->name, name) == 0)
            return true;
    }
    return false;
}

static const char *kind_name(char kind)
{
    return kind == 'v' ? "feature view" : kind == 's' ? "feature service" : "model";
}

static int refuse(core_ctx_t *ctx, unsigned scope, char kind, const char *name)
{
    return core_fail(ctx, -EPERM,
                     "principal '%s' may not %s %s '%.128s' (its '%s' scope names "
                     "other resources: %s:%s/NAME)",
                     ctx->principal, scope == CORE_SCOPE_WRITE ? "write" : "read", kind_name(kind),
                     name, scope_name(scope), scope == CORE_SCOPE_WRITE ? "write" : "read",
                     kind == 'v'   ? "view"
                     : kind == 's' ? "service"
                                   : "model");
}

int core__allow_view(core_ctx_t *ctx, unsigned scope, const catalog_view_t *v)
{
    return granted(ctx, scope, 'v', v->name) ? 0 : refuse(ctx, scope, 'v', v->name);
}

int core__allow_read(core_ctx_t *ctx, const core_feature_list_t *list, const core_resolved_t *res)
{
    if (ctx->grants == NULL || (ctx->grant_scope & CORE_SCOPE_READ) == 0)
        return 0;
    /* A granted service covers its features; otherwise every view read must be granted. */
    if (list->kind == CORE_LIST_SERVICE && granted(ctx, CORE_SCOPE_READ, 's', list->service))
        return 0;
    for (size_t i = 0; i < res->n_views; i++) {
        const char *name = res->views[i].name;
        const char *missing = granted(ctx, CORE_SCOPE_READ, 'v', name) ? NULL : name;
        /* An on-demand view computes from its stored sources (and the caller's own request
         * data, which could undo the computation): those must be granted too. */
        const catalog_view_t *v = NULL;
        if (missing == NULL && ctx->catalog != NULL &&
            catalog_find_view(ctx->catalog, name, (uint32_t)res->views[i].version, &v) == 0 &&
            v->on_demand != NULL) {
            for (size_t k = 0; k < v->on_demand->n_views && missing == NULL; k++) {
                const char *src = v->on_demand->views[k]->name;
                if (!granted(ctx, CORE_SCOPE_READ, 'v', src))
                    missing = src;
            }
        }
        if (missing != NULL)
            return list->kind == CORE_LIST_SERVICE
                       ? refuse(ctx, CORE_SCOPE_READ, 's', list->service)
                       : refuse(ctx, CORE_SCOPE_READ, 'v', missing);
    }
    return 0;
}

int core_authorize_model(core_ctx_t *ctx, const char *name)
{
    return granted(ctx, CORE_SCOPE_READ, 'm', name) ? 0 : refuse(ctx, CORE_SCOPE_READ, 'm', name);
}

int core__unknown(core_ctx_t *ctx, int rc)
{
    if (rc != -ENOENT || ctx->grants == NULL)
        return rc;
    return core_fail(ctx, -EPERM,
                     "principal '%s' may not use what it asked for, or it does not exist (a "
                     "limited scope is not told which)",
                     ctx->principal);
}

void core_audit(const core_ctx_t *ctx, const char *op, long long count, int rc)
{
    if (ctx->principal == NULL)
        return;
    base_log(BASE_LOG_INFO, "audit", "{s:s, s:s, s:I, s:s}", "principal", ctx->principal, "op", op,
             "count", count, "result", rc < 0 ? strerror(-rc) : "ok");
}
