/* core/auth.c - who is calling: bearer tokens checked against a file of hashes, and scopes. */
#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core_int.h"

/*
 * The tokens file holds no token, only its SHA-256: one line per principal,
 *     NAME  SHA256-HEX  SCOPES        # SCOPES: read, write, admin, comma-separated
 * with '#' comments and blank lines. A call's token is hashed and compared with every entry in
 * constant time (CRYPTO_memcmp, no early exit), so neither the hashes nor the timing tell which
 * entry came close. Messages name the principal and the scope, never the token.
 */

struct core_token {
    char name[64];
    uint8_t hash[SHA256_DIGEST_LENGTH];
    unsigned scopes;
    const char *principal; /* name, interned in the core_tokens_t: outlives reloads */
};

/* A name once seen, kept until core_tokens_free(): calls keep their principal's name past the
 * check (logs, audit lines), so a reload must not free it. */
typedef struct interned {
    struct interned *next;
    char name[];
} interned_t;

/* The table is swapped whole by core_tokens_reload() under the write lock; every check reads it
 * under the read lock (uncontended but for a reload: an operator's SIGHUP). */
struct core_tokens {
    pthread_rwlock_t lock;
    core_token_t *t;
    size_t n;
    char *path;
    interned_t *names; /* every principal name any load of the file had */
};

/* Points each entry's principal at its interned name (added when new). Returns: 0, -ENOMEM. */
static int intern_names(core_tokens_t *ts, core_token_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        interned_t *in = ts->names;
        while (in != NULL && strcmp(in->name, t[i].name) != 0)
            in = in->next;
        if (in == NULL) {
            size_t len = strlen(t[i].name);
            in = malloc(sizeof *in + len + 1);
            if (in == NULL)
                return -ENOMEM;
            memcpy(in->name, t[i].name, len + 1);
            in->next = ts->names;
            ts->names = in;
        }
        t[i].principal = in->name;
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
        return snprintf(why, cap, "want NAME SHA256-HEX SCOPES"), -EINVAL;
    if (strlen(name) >= sizeof t->name)
        return snprintf(why, cap, "name over %zu characters", sizeof t->name - 1), -EINVAL;
    if (strlen(hex) != 2 * SHA256_DIGEST_LENGTH)
        return snprintf(why, cap, "the hash is not 64 hex digits (sha256sum of the token)"),
               -EINVAL;
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return snprintf(why, cap, "the hash is not 64 hex digits"), -EINVAL;
        t->hash[i] = (uint8_t)(hi << 4 | lo);
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->scopes = 0;
    char *s2 = NULL;
    for (char *sc = strtok_r(scopes, ",", &s2); sc != NULL; sc = strtok_r(NULL, ",", &s2)) {
        if (strcmp(sc, "read") == 0)
            t->scopes |= CORE_SCOPE_READ;
        else if (strcmp(sc, "write") == 0)
            t->scopes |= CORE_SCOPE_WRITE;
        else if (strcmp(sc, "admin") == 0)
            t->scopes |= CORE_SCOPE_READ | CORE_SCOPE_WRITE | CORE_SCOPE_ADMIN;
        else
            return snprintf(why, cap, "unknown scope '%.32s' (read, write, admin)", sc), -EINVAL;
    }
    return 1;
}

static void table_free(core_token_t *t, size_t n)
{
    if (t != NULL)
        OPENSSL_cleanse(t, n * sizeof *t);
    free(t);
}

/* Frees the interned principal names (only when no check can still hold one). */
static void names_free(core_tokens_t *ts)
{
    for (interned_t *in = ts->names, *next; in != NULL; in = next) {
        next = in->next;
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
    char line[1024];
    int rc = 0;
    for (unsigned lineno = 1; fgets(line, sizeof line, f) != NULL; lineno++) {
        core_token_t t;
        char inner[160];
        int r = parse_line(line, &t, inner, sizeof inner);
        if (r < 0) {
            snprintf(why, cap, "%s:%u: %s", path, lineno, inner);
            rc = r;
            break;
        }
        if (r == 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(tab[i].name, t.name) == 0) {
                snprintf(why, cap, "%s:%u: '%s' is named twice", path, lineno, t.name);
                rc = -EINVAL;
            }
        }
        if (rc < 0)
            break;
        core_token_t *grown = realloc(tab, (n + 1) * sizeof *grown);
        if (grown == NULL) {
            rc = -ENOMEM;
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
    if (rc == 0 && pthread_rwlock_init(&ts->lock, NULL) != 0)
        rc = -ENOMEM;
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

int core_tokens_reload(core_tokens_t *ts, size_t *n, char *why, size_t cap)
{
    core_token_t *t = NULL;
    size_t tn = 0;
    int rc = read_table(ts->path, &t, &tn, why, cap);
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&ts->lock);
    rc = intern_names(ts, t, tn);
    if (rc < 0) {
        pthread_rwlock_unlock(&ts->lock);
        table_free(t, tn);
        snprintf(why, cap, "out of memory");
        return rc;
    }
    core_token_t *old = ts->t;
    size_t old_n = ts->n;
    ts->t = t;
    ts->n = tn;
    pthread_rwlock_unlock(&ts->lock);
    table_free(old, old_n);
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
    free(ts->path);
    free(ts);
}

static const char *scope_name(unsigned need)
{
    return need & CORE_SCOPE_ADMIN ? "admin" : need & CORE_SCOPE_WRITE ? "write" : "read";
}

int core_authorize(core_ctx_t *ctx, core_tokens_t *ts, const char *authorization, unsigned need)
{
    ctx->principal = NULL;
    if (ts == NULL || need == 0)
        return 0; /* no tokens file: open; a probe's method: open */
    const char *tok = NULL;
    if (authorization != NULL && strncasecmp(authorization, "Bearer ", 7) == 0) {
        tok = authorization + 7;
        while (*tok == ' ')
            tok++;
    }
    if (tok == NULL || *tok == '\0')
        return core_fail(ctx, -ENOKEY,
                         "no credentials: send 'authorization: Bearer <token>' (this call needs "
                         "the '%s' scope)",
                         scope_name(need));
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, strlen(tok), h);
    const core_token_t *hit = NULL;
    const char *principal = NULL;
    unsigned scopes = 0;
    pthread_rwlock_rdlock(&ts->lock);
    for (size_t i = 0; i < ts->n; i++) {
        /* Every entry compared in full: the time does not depend on which one matches. */
        bool eq = CRYPTO_memcmp(h, ts->t[i].hash, sizeof h) == 0;
        if (eq && hit == NULL)
            hit = &ts->t[i];
    }
    /* What the call keeps outlives the table: a reload may free it once the lock goes. */
    if (hit != NULL) {
        principal = hit->principal;
        scopes = hit->scopes;
    }
    pthread_rwlock_unlock(&ts->lock);
    OPENSSL_cleanse(h, sizeof h);
    if (principal == NULL)
        return core_fail(ctx, -EKEYREJECTED, "the bearer token is not one this server knows");
    ctx->principal = principal;
    if ((scopes & need) != need)
        return core_fail(ctx, -EPERM, "principal '%s' lacks the '%s' scope this call needs",
                         principal, scope_name(need));
    return 0;
}
