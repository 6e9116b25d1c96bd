/* http/feast_json.c - /get-online-features's usual body decoded without a JSON tree. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "http/http_int.h"

/*
 * Feast's SDK (and most callers) send one shape: an object with "features" (an array of plain
 * strings) or "feature_service", "entities" (an object of arrays of integers, strings, booleans
 * and nulls) and "full_feature_names". jansson builds a tree of that with a malloc per value and
 * a hash per key, which is most of what a one-entity read costs over HTTP beyond the read
 * itself. This reads the bytes once instead, into the arena, and declines (CORE_DECLINED)
 * anything else: escapes in strings, fractions and exponents, numbers past int64, keys it does
 * not know, nesting, duplicate keys, anything malformed. A declined body goes to jansson, which
 * decides it, errors included, so every error message stays jansson's path's. Whatever this
 * accepts, jansson's path would read to the same list and columns: tests/http/test_feast_json.c
 * and the fuzz_http target check that on generated and damaged bodies.
 *
 * The features array's bytes are the list's key (core_resolve() finds a list it resolved before
 * by them), parsed into references only when the worker has not seen them
 * (http__feast_read_features()).
 */

#define MAX_COLS 64 /* more entity columns than this: jansson's path */

typedef struct jp {
    const uint8_t *p, *end;
} jp_t;

static void ws(jp_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

/* Whether the next byte is c (after whitespace); takes it if so. */
static bool take(jp_t *j, uint8_t c)
{
    ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

/* A string without escapes or control characters, valid UTF-8: its bytes, unquoted. */
static bool str(jp_t *j, const uint8_t **s, size_t *n)
{
    if (!take(j, '"'))
        return false;
    const uint8_t *b = j->p;
    bool ascii = true;
    while (j->p < j->end && *j->p != '"') {
        if (*j->p == '\\' || *j->p < 0x20)
            return false;
        ascii &= *j->p < 0x80;
        j->p++;
    }
    if (j->p == j->end)
        return false;
    *s = b;
    *n = (size_t)(j->p - b);
    j->p++;
    return ascii || base_utf8_valid(b, *n);
}

/* What may follow a number or a literal: whitespace, a separator, or the end. */
static bool ends_token(const jp_t *j)
{
    if (j->p == j->end)
        return true;
    uint8_t c = *j->p;
    return c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool word(jp_t *j, const char *w, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
        return false;
    j->p += n;
    return ends_token(j);
}

/* true or false (the next byte must start one). */
static bool boolean(jp_t *j, bool *out)
{
    *out = *j->p == 't';
    return *out ? word(j, "true", 4) : word(j, "false", 5);
}

/* An integer as JSON writes one (no fraction, no exponent) that fits int64. */
static bool integer(jp_t *j, int64_t *out)
{
    bool neg = j->p < j->end && *j->p == '-';
    if (neg)
        j->p++;
    if (j->p == j->end || *j->p < '0' || *j->p > '9')
        return false;
    if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9')
        return false; /* a leading zero */
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        uint64_t d = (uint64_t)(*j->p - '0');
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
        j->p++;
    }
    if (!ends_token(j))
        return false; /* a fraction, an exponent, or garbage */
    *out = !neg ? (int64_t)v : v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    return true;
}

/* An entity value: an integer (INT64), a string, a boolean or null, as jansson's path types it
 * (catalog_value_from_json() with no declared type). v NULL: checked only. */
static bool value(jp_t *j, catalog_value_t *v)
{
    catalog_value_t x;
    memset(&x, 0, sizeof x);
    ws(j);
    if (j->p == j->end)
        return false;
    uint8_t c = *j->p;
    if (c == '"') {
        x.type = CATALOG_DTYPE_STRING;
        if (!str(j, &x.u.bytes.data, &x.u.bytes.len))
            return false;
    } else if (c == 't' || c == 'f') {
        x.type = CATALOG_DTYPE_BOOL;
        if (!boolean(j, &x.u.b))
            return false;
    } else if (c == 'n') {
        x.type = CATALOG_DTYPE_NULL;
        if (!word(j, "null", 4))
            return false;
    } else {
        x.type = CATALOG_DTYPE_INT64;
        if (!integer(j, &x.u.i64))
            return false;
    }
    if (v != NULL)
        *v = x;
    return true;
}

/* An entity column, '[' already taken: its values into the arena (counted first, so one
 * allocation holds them). */
static int column(jp_t *j, base_arena_t *a, const catalog_value_t **out, size_t *rows)
{
    jp_t count = *j;
    size_t n = 0;
    if (!take(&count, ']')) {
        do {
            if (!value(&count, NULL))
                return CORE_DECLINED;
            n++;
        } while (take(&count, ','));
        if (!take(&count, ']'))
            return CORE_DECLINED;
    }
    catalog_value_t *vals = base_arena_array(a, n + 1, sizeof *vals);
    if (vals == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            take(j, ',');
        value(j, &vals[i]);
    }
    *j = count;
    *out = vals;
    *rows = n;
    return 0;
}

static int entities(jp_t *j, base_arena_t *a, http__feast_read_t *out)
{
    if (!take(j, '{'))
        return CORE_DECLINED;
    const uint8_t *names[MAX_COLS];
    size_t name_lens[MAX_COLS], rows[MAX_COLS], n = 0;
    const catalog_value_t *cols[MAX_COLS];
    if (!take(j, '}')) {
        do {
            if (n == MAX_COLS || !str(j, &names[n], &name_lens[n]) || !take(j, ':') ||
                !take(j, '['))
                return CORE_DECLINED;
            for (size_t i = 0; i < n; i++) {
                if (name_lens[i] == name_lens[n] && memcmp(names[i], names[n], name_lens[n]) == 0)
                    return CORE_DECLINED; /* a duplicate key: jansson's error */
            }
            int rc = column(j, a, &cols[n], &rows[n]);
            if (rc != 0)
                return rc;
            n++;
        } while (take(j, ','));
        if (!take(j, '}'))
            return CORE_DECLINED;
    }
    const char **nm = base_arena_calloc(a, n + 1, sizeof *nm);
    size_t *rw = base_arena_calloc(a, n + 1, sizeof *rw);
    const catalog_value_t **cl = base_arena_calloc(a, n + 1, sizeof *cl);
    if (nm == NULL || rw == NULL || cl == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        /* str() took no NUL (nor any control character): the copy is the whole name. */
        nm[i] = base_arena_strndup(a, (const char *)names[i], name_lens[i]);
        if (nm[i] == NULL)
            return -ENOMEM;
        rw[i] = rows[i];
        cl[i] = cols[i];
    }
    out->entities = (core_columns_t){.n_cols = n, .names = nm, .cols = cl};
    out->entity_rows = rw;
    return 0;
}

/* The features array, '[' not yet taken: checked, and its bytes noted as the list's key. */
static int features(jp_t *j, http__feast_read_t *out)
{
    ws(j);
    const uint8_t *b = j->p;
    if (!take(j, '['))
        return CORE_DECLINED;
    size_t n = 0;
    if (!take(j, ']')) {
        do {
            const uint8_t *s;
            size_t len;
            if (!str(j, &s, &len))
                return CORE_DECLINED;
            n++;
        } while (take(j, ','));
        if (!take(j, ']'))
            return CORE_DECLINED;
    }
    out->list.kind = CORE_LIST_FEATURES;
    out->n_features = n;
    out->list.key = b;
    out->list.key_len = (size_t)(j->p - b);
    out->list.parse = http__feast_read_features;
    return 0;
}

int http__feast_read_features(base_arena_t *a, core_feature_list_t *l)
{
    jp_t j = {l->key, l->key + l->key_len};
    size_t n = 0;
    for (jp_t c = {j.p + 1, j.end}; !take(&c, ']');) {
        const uint8_t *s;
        size_t len;
        if (!str(&c, &s, &len))
            return CORE_DECLINED;
        n++;
        take(&c, ',');
    }
    const char **refs = base_arena_calloc(a, n + 1, sizeof *refs);
    size_t *lens = base_arena_calloc(a, n + 1, sizeof *lens);
    if (refs == NULL || lens == NULL)
        return -ENOMEM;
    j.p++;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s;
        str(&j, &s, &lens[i]);
        refs[i] = (const char *)s;
        take(&j, ',');
    }
    l->refs = refs;
    l->ref_lens = lens;
    l->n_refs = n;
    return 0;
}

static bool key_is(const uint8_t *k, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(k, name, n) == 0;
}

int http__feast_read_decode(base_arena_t *a, const uint8_t *body, size_t len,
                            http__feast_read_t *out)
{
    memset(out, 0, sizeof *out);
    out->list.kind = CORE_LIST_NONE;
    jp_t j = {body, body + len};
    if (!take(&j, '{'))
        return CORE_DECLINED;
    enum { F_FEATURES = 1, F_SERVICE = 2, F_ENTITIES = 4, F_FULL = 8 };
    unsigned seen = 0;
    const uint8_t *svc = NULL;
    size_t svc_len = 0;
    bool has_features = false;
    if (take(&j, '}'))
        return CORE_DECLINED; /* no entities: jansson's path says so */
    do {
        const uint8_t *k;
        size_t n;
        if (!str(&j, &k, &n) || !take(&j, ':'))
            return CORE_DECLINED;
        unsigned f = key_is(k, n, "features")             ? F_FEATURES
                     : key_is(k, n, "feature_service")    ? F_SERVICE
                     : key_is(k, n, "entities")           ? F_ENTITIES
                     : key_is(k, n, "full_feature_names") ? F_FULL
                                                          : 0;
        if (f == 0 || (seen & f))
            return CORE_DECLINED; /* unknown (jansson's path decides) or a duplicate */
        seen |= f;
        ws(&j);
        int rc = 0;
        if (f == F_ENTITIES) {
            rc = entities(&j, a, out);
        } else if (j.p < j.end && *j.p == 'n') {
            if (!word(&j, "null", 4))
                return CORE_DECLINED; /* null: as absent */
        } else if (f == F_FEATURES) {
            rc = features(&j, out);
            has_features = rc == 0;
        } else if (f == F_SERVICE) {
            if (!str(&j, &svc, &svc_len))
                return CORE_DECLINED;
        } else if (j.p < j.end && (*j.p == 't' || *j.p == 'f')) {
            if (!boolean(&j, &out->list.full_names))
                return CORE_DECLINED;
        } else {
            return CORE_DECLINED;
        }
        if (rc != 0)
            return rc;
    } while (take(&j, ','));
    if (!take(&j, '}') || !(seen & F_ENTITIES))
        return CORE_DECLINED;
    ws(&j);
    if (j.p != j.end)
        return CORE_DECLINED;
    if (svc != NULL) {
        /* The service wins over features, as in Feast. */
        char *s = base_arena_strndup(a, (const char *)svc, svc_len);
        if (s == NULL)
            return -ENOMEM;
        out->list.kind = CORE_LIST_SERVICE;
        out->list.service = s;
        out->list.service_len = svc_len;
        out->list.key = NULL;
        out->list.key_len = 0;
        out->list.parse = NULL;
    } else if (!has_features) {
        out->list.kind = CORE_LIST_NONE;
    }
    return 0;
}
