/* catalog/load.c - YAML (a file, a directory or a string) into drafts, reporting every mistake. */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "catalog/catalog_int.h"

/*
 * libyaml's event stream is turned into a small tree of our own rather than a yaml_document_t:
 * aliases are refused at the event (so `*a` repeated cannot blow up a walk), nesting depth is
 * capped, and every node keeps the 1-based mark that errors point at. The tree lives in the
 * draft's scratch arena and is walked once, schema-first: each mapping is checked against its
 * list of known keys before its values are read, so a typo is reported next to what it breaks.
 */

#define MAX_DEPTH 64
#define MAX_FILE_SIZE (64u * 1024u * 1024u)

typedef enum ykind { YN_SCALAR, YN_SEQ, YN_MAP } ykind_t;

typedef struct ynode ynode_t;
struct ynode {
    ykind_t kind;
    int line, col;
    const char *s; /* scalars: the text, NUL-terminated */
    size_t len;
    bool plain; /* an untagged plain scalar: subject to null/bool/number resolution */
    ynode_t *first, *last, *next;
    size_t n; /* children; a mapping's alternate key, value */
};

typedef struct loader {
    catalog_t *c;
    catalog__draft_t d;
    catalog_errors_t *errs;
    const char *file;
    bool syntax_failed;
    bool nomem;
    int io_error;
} loader_t;

/* ------------------------------------------------------------------------------------------ */
/* Errors and paths                                                                            */

static void err(loader_t *L, const ynode_t *n, const char *key, const char *fmt, ...)
    CATALOG__PRINTF(4, 5);

static void err(loader_t *L, const ynode_t *n, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    catalog__verror(L->errs, L->file, n != NULL ? n->line : 0, n != NULL ? n->col : 0, key, fmt,
                    ap);
    va_end(ap);
}

static const char *path(loader_t *L, const char *fmt, ...) CATALOG__PRINTF(2, 3);

static const char *path(loader_t *L, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    const char *p = base_arena_strndup(&L->d.scratch, buf, strlen(buf));
    if (p == NULL) {
        L->nomem = true;
        return "";
    }
    return p;
}

/* "parent.key", or "key" at the top. */
static const char *sub(loader_t *L, const char *parent, const char *key)
{
    return parent[0] != '\0' ? path(L, "%s.%s", parent, key) : path(L, "%s", key);
}

static catalog__pos_t pos_of(loader_t *L, const ynode_t *n, const char *key)
{
    catalog__pos_t p = {L->file, n != NULL ? n->line : 0, n != NULL ? n->col : 0, key};
    return p;
}

static const char *kind_name(const ynode_t *n)
{
    if (n->kind == YN_MAP)
        return "a mapping";
    if (n->kind == YN_SEQ)
        return "a sequence";
    return "a scalar";
}

/* ------------------------------------------------------------------------------------------ */
/* Scalars: YAML 1.2 core-schema resolution of plain scalars                                   */

static bool is_null(const ynode_t *n)
{
    if (n->kind != YN_SCALAR || !n->plain)
        return false;
    const char *s = n->s;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static bool parse_bool(const ynode_t *n, bool *out)
{
    if (n->kind != YN_SCALAR || !n->plain)
        return false;
    const char *s = n->s;
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
        *out = false;
        return true;
    }
    return false;
}

static bool parse_int(const ynode_t *n, int64_t *out)
{
    if (n->kind != YN_SCALAR || !n->plain || n->len == 0 || n->len != strlen(n->s))
        return false;
    const char *s = n->s;
    bool neg = false;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o') && !neg) {
        base = s[1] == 'x' ? 16 : 8;
        s += 2;
    }
    if (*s == '\0')
        return false;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s != '\0'; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            return false;
        if (d >= base || v > (limit - d) / base)
            return false;
        v = v * base + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE][-+]?[0-9]+ )? */
static bool looks_float(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    size_t digits = 0;
    while (*s >= '0' && *s <= '9') {
        s++;
        digits++;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            s++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static bool parse_float(const ynode_t *n, double *out)
{
    if (n->kind != YN_SCALAR || !n->plain || n->len != strlen(n->s))
        return false;
    const char *s = n->s;
    const char *t = (*s == '-' || *s == '+') ? s + 1 : s;
    if (strcmp(t, ".inf") == 0 || strcmp(t, ".Inf") == 0 || strcmp(t, ".INF") == 0) {
        *out = *s == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (strcmp(s, ".nan") == 0 || strcmp(s, ".NaN") == 0 || strcmp(s, ".NAN") == 0) {
        *out = NAN;
        return true;
    }
    if (looks_float(s)) {
        *out = strtod(s, NULL);
        return true;
    }
    int64_t i;
    if (parse_int(n, &i)) {
        *out = (double)i;
        return true;
    }
    return false;
}

/* A plain scalar that YAML would read as something other than a string. */
static bool plain_non_string(const ynode_t *n)
{
    int64_t i;
    double d;
    bool b;
    return is_null(n) || parse_bool(n, &b) || parse_int(n, &i) || parse_float(n, &d);
}

/* ------------------------------------------------------------------------------------------ */
/* Mappings                                                                                    */

static const ynode_t *get(const ynode_t *map, const char *key)
{
    if (map == NULL || map->kind != YN_MAP)
        return NULL;
    for (const ynode_t *k = map->first; k != NULL && k->next != NULL; k = k->next->next) {
        if (k->kind == YN_SCALAR && strcmp(k->s, key) == 0)
            return k->next;
    }
    return NULL;
}

/* Unknown keys (with the closest known one suggested), duplicate keys, non-scalar keys. */
static void check_keys(loader_t *L, const ynode_t *map, const char *at, const char *const *known,
                       size_t n_known)
{
    char expected[320];
    size_t off = 0;
    expected[0] = '\0';
    for (size_t i = 0; i < n_known && off < sizeof expected; i++)
        off += (size_t)snprintf(expected + off, sizeof expected - off, "%s%s", i > 0 ? ", " : "",
                                known[i]);
    for (const ynode_t *k = map->first; k != NULL && k->next != NULL; k = k->next->next) {
        if (k->kind != YN_SCALAR) {
            err(L, k, at[0] != '\0' ? at : "(top level)", "keys must be plain strings, not %s",
                kind_name(k));
            continue;
        }
        bool found = false;
        for (size_t i = 0; i < n_known && !found; i++)
            found = strcmp(k->s, known[i]) == 0;
        if (!found) {
            const char *close = catalog__closest(k->s, known, n_known);
            if (close != NULL)
                err(L, k, sub(L, at, k->s),
                    "unknown key '%s' (did you mean '%s'?); expected one of: %s", k->s, close,
                    expected);
            else
                err(L, k, sub(L, at, k->s), "unknown key '%s'; expected one of: %s", k->s,
                    expected);
            continue;
        }
        for (const ynode_t *e = map->first; e != k; e = e->next->next) {
            if (e->kind == YN_SCALAR && strcmp(e->s, k->s) == 0) {
                err(L, k, sub(L, at, k->s), "duplicate key '%s' (first at line %d)", k->s, e->line);
                break;
            }
        }
    }
}

static bool want(loader_t *L, const ynode_t *n, ykind_t kind, const char *at)
{
    if (n->kind == kind)
        return true;
    const char *what = kind == YN_MAP ? "a mapping" : kind == YN_SEQ ? "a sequence" : "a scalar";
    if (is_null(n))
        err(L, n, at, "expected %s, got nothing (null)", what);
    else
        err(L, n, at, "expected %s, got %s", what, kind_name(n));
    return false;
}

/*
 * A required, non-empty sequence: the value of `key` in map n, whose path is k. empty_msg says
 * what an empty one lacks ("an entity needs at least one join key").
 * Returns: the sequence, or NULL after reporting what is wrong.
 */
static const ynode_t *required_list(loader_t *L, const ynode_t *n, const char *key, const char *k,
                                    const char *empty_msg)
{
    const ynode_t *seq = get(n, key);
    if (seq == NULL) {
        err(L, n, k, "missing required key '%s'", key);
        return NULL;
    }
    if (!want(L, seq, YN_SEQ, k))
        return NULL;
    if (seq->n == 0) {
        err(L, seq, k, "%s", empty_msg);
        return NULL;
    }
    return seq;
}

/* Copies a scalar into the catalog arena. */
static const char *keep(loader_t *L, const ynode_t *n)
{
    const char *s = base_arena_strndup(&L->c->arena, n->s, n->len);
    if (s == NULL) {
        L->nomem = true;
        return "";
    }
    return s;
}

/* An optional free-text string ("" when absent or null). Returns false on a type error. */
static bool opt_string(loader_t *L, const ynode_t *map, const char *key, const char *at,
                       const char **out)
{
    const ynode_t *v = get(map, key);
    *out = "";
    if (v == NULL || is_null(v))
        return true;
    if (!want(L, v, YN_SCALAR, sub(L, at, key)))
        return false;
    *out = keep(L, v);
    return true;
}

/* A required name following the name rule. Returns the node (for positions) or NULL. */
static const ynode_t *req_name(loader_t *L, const ynode_t *map, const char *key, const char *at,
                               const char **out)
{
    const ynode_t *v = get(map, key);
    const char *k = sub(L, at, key);
    *out = NULL;
    if (v == NULL || is_null(v)) {
        err(L, v != NULL ? v : map, k, "missing required key '%s'", key);
        return NULL;
    }
    if (!want(L, v, YN_SCALAR, k))
        return NULL;
    *out = keep(L, v);
    if (!catalog__valid_name(*out))
        err(L, v, k,
            "invalid name '%s': expected letters, digits and '_', not starting with a digit, at "
            "most %d characters",
            *out, CATALOG_MAX_NAME - 1);
    return v;
}

/* Returns 1 when present and valid, 0 when absent, -1 on an error (reported). */
static int opt_int(loader_t *L, const ynode_t *map, const char *key, const char *at, int64_t lo,
                   int64_t hi, int64_t *out)
{
    const ynode_t *v = get(map, key);
    if (v == NULL || is_null(v))
        return 0;
    const char *k = sub(L, at, key);
    if (!want(L, v, YN_SCALAR, k))
        return -1;
    int64_t x;
    if (!parse_int(v, &x)) {
        err(L, v, k, "expected an integer, got '%s'", v->s);
        return -1;
    }
    if (x < lo || x > hi) {
        err(L, v, k, "%lld is out of range: expected %lld to %lld", (long long)x, (long long)lo,
            (long long)hi);
        return -1;
    }
    *out = x;
    return 1;
}

static int opt_bool(loader_t *L, const ynode_t *map, const char *key, const char *at, bool *out)
{
    const ynode_t *v = get(map, key);
    if (v == NULL || is_null(v))
        return 0;
    const char *k = sub(L, at, key);
    if (!want(L, v, YN_SCALAR, k))
        return -1;
    if (!parse_bool(v, out)) {
        err(L, v, k, "expected true or false, got '%s'", v->s);
        return -1;
    }
    return 1;
}

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const catalog_tag_t *)a)->key, ((const catalog_tag_t *)b)->key);
}

/* tags: a mapping of strings to strings, kept sorted by key (the canonical order). */
static void opt_tags(loader_t *L, const ynode_t *map, const char *at, const catalog_tag_t **out,
                     size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    const ynode_t *v = get(map, "tags");
    const char *k = sub(L, at, "tags");
    if (v == NULL || is_null(v) || !want(L, v, YN_MAP, k))
        return;
    catalog_tag_t *tags = catalog__alloc(&L->c->arena, (v->n / 2 + 1) * sizeof *tags);
    if (tags == NULL) {
        L->nomem = true;
        return;
    }
    size_t n = 0;
    for (const ynode_t *t = v->first; t != NULL && t->next != NULL; t = t->next->next) {
        const ynode_t *val = t->next;
        if (t->kind != YN_SCALAR || val->kind != YN_SCALAR) {
            err(L, t->kind != YN_SCALAR ? t : val, k, "tags must map strings to strings");
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(tags[i].key, t->s) == 0;
        if (dup) {
            err(L, t, sub(L, k, t->s), "duplicate tag '%s'", t->s);
            continue;
        }
        tags[n].key = keep(L, t);
        tags[n].value = is_null(val) ? "" : keep(L, val);
        n++;
    }
    qsort(tags, n, sizeof *tags, cmp_tag);
    *out = tags;
    *n_out = n;
}

/* ------------------------------------------------------------------------------------------ */
/* Typed values: defaults and allowed values                                                   */

static const char *expect_text(catalog_dtype_t t)
{
    switch (t) {
    case CATALOG_DTYPE_STRING:
        return "a string";
    case CATALOG_DTYPE_BYTES:
        return "a string (\"b64:...\" for binary)";
    case CATALOG_DTYPE_BOOL:
        return "true or false";
    case CATALOG_DTYPE_FLOAT:
    case CATALOG_DTYPE_DOUBLE:
        return "a number";
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        return "an integer (seconds since the epoch)";
    default:
        return "an integer";
    }
}

static bool parse_elem(loader_t *L, const ynode_t *n, catalog_dtype_t t, const char *at,
                       catalog_value_t *out)
{
    memset(out, 0, sizeof *out);
    out->type = t;
    if (n->kind != YN_SCALAR || is_null(n)) {
        err(L, n, at, "expected %s for %s, got %s", expect_text(t), catalog_dtype_name(t),
            is_null(n) ? "null" : kind_name(n));
        return false;
    }
    int64_t i = 0;
    double d = 0;
    bool ok = true;
    switch (t) {
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES:
        if (n->plain && plain_non_string(n)) {
            err(L, n, at, "expected %s for %s, got '%s'; quote it to make it a string",
                expect_text(t), catalog_dtype_name(t), n->s);
            return false;
        }
        if (t == CATALOG_DTYPE_BYTES && n->len >= 4 && memcmp(n->s, "b64:", 4) == 0) {
            uint8_t *buf = catalog__alloc(&L->c->arena, BASE_BASE64_DECODED_MAX(n->len));
            long len = buf != NULL ? base_base64_decode(n->s + 4, n->len - 4, buf, 0) : -ENOMEM;
            if (len < 0) {
                err(L, n, at, "invalid base64 after 'b64:'");
                return false;
            }
            out->u.bytes.data = buf;
            out->u.bytes.len = (size_t)len;
            return true;
        }
        out->u.bytes.data = (const uint8_t *)keep(L, n);
        out->u.bytes.len = n->len;
        return true;
    case CATALOG_DTYPE_BOOL:
        ok = parse_bool(n, &out->u.b);
        break;
    case CATALOG_DTYPE_INT32:
        ok = parse_int(n, &i) && i >= INT32_MIN && i <= INT32_MAX;
        out->u.i32 = ok ? (int32_t)i : 0;
        break;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        ok = parse_int(n, &out->u.i64);
        break;
    case CATALOG_DTYPE_DOUBLE:
        ok = parse_float(n, &out->u.f64);
        break;
    case CATALOG_DTYPE_FLOAT:
        ok = parse_float(n, &d) && catalog_double_fits_float(d);
        out->u.f32 = ok ? (float)d : 0.0f;
        break;
    default:
        ok = false;
        break;
    }
    if (!ok)
        err(L, n, at, "expected %s for %s, got '%s'", expect_text(t), catalog_dtype_name(t), n->s);
    return ok;
}

static bool parse_value(loader_t *L, const ynode_t *n, catalog_dtype_t t, const char *at,
                        catalog_value_t *out)
{
    if (!catalog_dtype_is_list(t))
        return parse_elem(L, n, t, at, out);
    memset(out, 0, sizeof *out);
    out->type = t;
    if (n->kind != YN_SEQ) {
        err(L, n, at, "expected a sequence for %s, got %s", catalog_dtype_name(t),
            is_null(n) ? "null" : kind_name(n));
        return false;
    }
    catalog_dtype_t et = catalog_dtype_element(t);
    size_t es = et == CATALOG_DTYPE_STRING || et == CATALOG_DTYPE_BYTES ? sizeof(catalog_bytes_t)
                : et == CATALOG_DTYPE_BOOL                              ? sizeof(bool)
                                                                        : 8;
    unsigned char *items = catalog__alloc(&L->c->arena, (n->n + 1) * es);
    if (items == NULL) {
        L->nomem = true;
        return false;
    }
    bool ok = true;
    size_t i = 0;
    for (const ynode_t *e = n->first; e != NULL; e = e->next, i++) {
        catalog_value_t v;
        if (!parse_elem(L, e, et, path(L, "%s[%zu]", at, i), &v)) {
            ok = false;
            continue;
        }
        switch (et) {
        case CATALOG_DTYPE_STRING:
        case CATALOG_DTYPE_BYTES:
            ((catalog_bytes_t *)(void *)items)[i] = v.u.bytes;
            break;
        case CATALOG_DTYPE_INT32:
            ((int32_t *)(void *)items)[i] = v.u.i32;
            break;
        case CATALOG_DTYPE_FLOAT:
            ((float *)(void *)items)[i] = v.u.f32;
            break;
        case CATALOG_DTYPE_DOUBLE:
            ((double *)(void *)items)[i] = v.u.f64;
            break;
        case CATALOG_DTYPE_BOOL:
            ((bool *)(void *)items)[i] = v.u.b;
            break;
        default:
            ((int64_t *)(void *)items)[i] = v.u.i64;
            break;
        }
    }
    out->u.list.n = n->n;
    out->u.list.v.i64 = (const int64_t *)(void *)items;
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* The schema                                                                                  */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const top_keys[] = {
    "project", "entities",        "feature_views",          "feature_services",
    "models",  "request_sources", "on_demand_feature_views"};
static const char *const entity_keys[] = {"name", "join_keys", "description", "tags"};
static const char *const join_key_keys[] = {"name", "type"};
static const char *const view_keys[] = {"name",    "version",     "entities",    "ttl",   "online",
                                        "default", "features",    "description", "owner", "tags",
                                        "lineage", "push_source", "offline"};
static const char *const offline_keys[] = {"retention"};
static const char *const lineage_keys[] = {"source", "transformation"};
static const char *const feature_keys[] = {"name",       "dtype",       "default",
                                           "validation", "description", "tags"};
static const char *const odfv_feature_keys[] = {"name",        "dtype", "default",   "validation",
                                                "description", "tags",  "expression"};
static const char *const request_keys[] = {"name", "description", "schema"};
static const char *const field_keys[] = {"name", "dtype"};
static const char *const odfv_keys[] = {"name",    "version",     "sources", "features",
                                        "default", "description", "owner",   "tags"};
static const char *const validation_keys[] = {"not_null",       "min",        "max",
                                              "allowed_values", "max_length", "pattern"};
static const char *const service_keys[] = {"name", "description", "features"};
static const char *const model_keys[] = {
    "name",          "version",    "version_label", "feature_service",
    "entity_inputs", "on_missing", "upstream"};
static const char *const upstream_keys[] = {"target",     "model_name",         "signature_name",
                                            "timeout_ms", "keep_entity_inputs", "tls"};

static const char *const dtype_names[] = {
    "BYTES",       "STRING",      "INT32",      "INT64",
    "DOUBLE",      "FLOAT",       "BOOL",       "UNIX_TIMESTAMP",
    "BYTES_LIST",  "STRING_LIST", "INT32_LIST", "INT64_LIST",
    "DOUBLE_LIST", "FLOAT_LIST",  "BOOL_LIST",  "UNIX_TIMESTAMP_LIST"};

static bool numeric(catalog_dtype_t t)
{
    catalog_dtype_t e = catalog_dtype_element(t);
    return e == CATALOG_DTYPE_INT32 || e == CATALOG_DTYPE_INT64 || e == CATALOG_DTYPE_FLOAT ||
           e == CATALOG_DTYPE_DOUBLE || e == CATALOG_DTYPE_UNIX_TIMESTAMP;
}

/* Rules that do not fit the dtype are reported; the rest are read into f->validation. */
static void load_validation(loader_t *L, const ynode_t *map, const char *at, catalog_feature_t *f)
{
    catalog_validation_t *r = &f->validation;
    check_keys(L, map, at, validation_keys, COUNT(validation_keys));
    bool b;
    if (opt_bool(L, map, "not_null", at, &b) > 0)
        r->not_null = b;

    const char *bound_keys[2] = {"min", "max"};
    const ynode_t *bound_nodes[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        const ynode_t *v = get(map, bound_keys[i]);
        if (v == NULL || is_null(v))
            continue;
        const char *k = sub(L, at, bound_keys[i]);
        double d;
        if (!want(L, v, YN_SCALAR, k))
            continue;
        if (!parse_float(v, &d) || isnan(d)) {
            err(L, v, k, "expected a number, got '%s'", v->s);
            continue;
        }
        if (!numeric(f->dtype)) {
            err(L, v, k,
                "%s applies to numeric dtypes (INT32, INT64, FLOAT, DOUBLE, UNIX_TIMESTAMP and "
                "their lists), not %s",
                bound_keys[i], catalog_dtype_name(f->dtype));
            continue;
        }
        bound_nodes[i] = v;
        if (i == 0) {
            r->has_min = true;
            r->min = d;
        } else {
            r->has_max = true;
            r->max = d;
        }
    }
    if (r->has_min && r->has_max && r->min > r->max) {
        char a[48], b2[48];
        catalog__format_double(r->min, a, sizeof a);
        catalog__format_double(r->max, b2, sizeof b2);
        err(L, bound_nodes[0], sub(L, at, "min"), "min %s is greater than max %s", a, b2);
    }

    catalog_dtype_t et = catalog_dtype_element(f->dtype);
    int64_t ml;
    const ynode_t *mln = get(map, "max_length");
    if (opt_int(L, map, "max_length", at, 0, INT64_MAX, &ml) > 0) {
        if (!catalog_dtype_is_list(f->dtype) && et != CATALOG_DTYPE_STRING &&
            et != CATALOG_DTYPE_BYTES)
            err(L, mln, sub(L, at, "max_length"),
                "max_length applies to STRING, BYTES and list dtypes, not %s",
                catalog_dtype_name(f->dtype));
        else
            r->max_length = ml;
    }

    const ynode_t *pn = get(map, "pattern");
    if (pn != NULL && !is_null(pn)) {
        const char *k = sub(L, at, "pattern");
        if (want(L, pn, YN_SCALAR, k)) {
            char why[200];
            catalog__pattern_t *p = NULL;
            if (et != CATALOG_DTYPE_STRING)
                err(L, pn, k, "pattern applies to STRING and STRING_LIST dtypes, not %s",
                    catalog_dtype_name(f->dtype));
            else if (strlen(pn->s) != pn->len)
                err(L, pn, k, "invalid regular expression: it contains a NUL byte");
            else if ((p = catalog__pattern_compile(L->c, pn->s, why, sizeof why)) == NULL)
                /* The pattern quoted in part (it can be 512 characters): the reason fits. */
                err(L, pn, k, "invalid regular expression '%.64s%s': %s", pn->s,
                    strlen(pn->s) > 64 ? "..." : "", why);
            else
                r->pattern = p->text;
        }
    }

    const ynode_t *av = get(map, "allowed_values");
    if (av != NULL && !is_null(av)) {
        const char *k = sub(L, at, "allowed_values");
        if (want(L, av, YN_SEQ, k)) {
            if (av->n == 0) {
                err(L, av, k, "allowed_values must not be empty");
                return;
            }
            catalog_value_t *vals = catalog__alloc(&L->c->arena, av->n * sizeof *vals);
            if (vals == NULL) {
                L->nomem = true;
                return;
            }
            size_t i = 0;
            bool ok = true;
            for (const ynode_t *e = av->first; e != NULL; e = e->next, i++)
                ok &= parse_elem(L, e, et, path(L, "%s[%zu]", k, i), &vals[i]);
            if (ok) {
                r->allowed_values = vals;
                r->n_allowed = av->n;
            }
        }
    }
}

static void load_feature(loader_t *L, const ynode_t *n, const char *at, catalog_feature_t *f,
                         bool on_demand)
{
    f->validation.max_length = -1;
    f->description = "";
    if (!want(L, n, YN_MAP, at))
        return;
    if (on_demand)
        check_keys(L, n, at, odfv_feature_keys, COUNT(odfv_feature_keys));
    else
        check_keys(L, n, at, feature_keys, COUNT(feature_keys));
    req_name(L, n, "name", at, &f->name);
    opt_string(L, n, "description", at, &f->description);
    opt_tags(L, n, at, &f->tags, &f->n_tags);

    const ynode_t *dt = get(n, "dtype");
    const char *k = sub(L, at, "dtype");
    if (dt == NULL || is_null(dt)) {
        err(L, dt != NULL ? dt : n, k, "missing required key 'dtype'");
        return;
    }
    if (!want(L, dt, YN_SCALAR, k))
        return;
    if (catalog_dtype_parse(dt->s, &f->dtype) != 0 || f->dtype == CATALOG_DTYPE_NULL) {
        f->dtype = CATALOG_DTYPE_INVALID;
        const char *close = catalog__closest(dt->s, dtype_names, COUNT(dtype_names));
        err(L, dt, k,
            "unknown dtype '%s'%s%s%s; expected one of BYTES, STRING, INT32, INT64, DOUBLE, FLOAT, "
            "BOOL, UNIX_TIMESTAMP or a *_LIST form of them",
            dt->s, close != NULL ? " (did you mean " : "", close != NULL ? close : "",
            close != NULL ? "?)" : "");
        return;
    }

    const ynode_t *vn = get(n, "validation");
    if (vn != NULL && !is_null(vn)) {
        const char *vk = sub(L, at, "validation");
        if (want(L, vn, YN_MAP, vk))
            load_validation(L, vn, vk, f);
    }

    const ynode_t *dn = get(n, "default");
    if (dn != NULL && !is_null(dn)) {
        const char *dk = sub(L, at, "default");
        if (parse_value(L, dn, f->dtype, dk, &f->default_value)) {
            char why[200];
            if (catalog__check_value(f, &f->default_value, why, sizeof why) != 0) {
                err(L, dn, dk, "the default breaks its own validation rule: %s", why);
            } else {
                f->has_default = true;
            }
        }
    }
}

static void *push(loader_t *L, void **array, size_t *n, size_t *cap, size_t elem)
{
    if (base_arena_grow(&L->d.scratch, array, cap, *n + 1, elem) != 0) {
        L->nomem = true;
        return NULL;
    }
    unsigned char *p = (unsigned char *)*array + *n * elem;
    memset(p, 0, elem);
    (*n)++;
    return p;
}

static void load_entity(loader_t *L, const ynode_t *n, const char *at)
{
    if (!want(L, n, YN_MAP, at))
        return;
    check_keys(L, n, at, entity_keys, COUNT(entity_keys));
    const char *name;
    const ynode_t *nn = req_name(L, n, "name", at, &name);
    catalog__draft_entity_t *de = NULL;
    if (name != NULL)
        de = push(L, (void **)&L->d.entities, &L->d.n_entities, &L->d.cap_entities, sizeof *de);
    catalog_entity_t scratch_e;
    catalog_entity_t *e = de != NULL ? &de->e : &scratch_e;
    memset(e, 0, sizeof *e);
    e->name = name;
    if (de != NULL) {
        de->pos = pos_of(L, n, at);
        de->name_pos = pos_of(L, nn, sub(L, at, "name"));
    }
    opt_string(L, n, "description", at, &e->description);
    opt_tags(L, n, at, &e->tags, &e->n_tags);

    const char *k = sub(L, at, "join_keys");
    const ynode_t *jk =
        required_list(L, n, "join_keys", k, "an entity needs at least one join key");
    if (jk == NULL)
        return;
    catalog_join_key_t *keys = catalog__alloc(&L->c->arena, jk->n * sizeof *keys);
    if (keys == NULL) {
        L->nomem = true;
        return;
    }
    size_t i = 0;
    for (const ynode_t *j = jk->first; j != NULL; j = j->next, i++) {
        const char *jat = path(L, "%s[%zu]", k, i);
        if (!want(L, j, YN_MAP, jat))
            continue;
        check_keys(L, j, jat, join_key_keys, COUNT(join_key_keys));
        const ynode_t *jn = req_name(L, j, "name", jat, &keys[i].name);
        for (size_t p = 0; jn != NULL && keys[i].name != NULL && p < i; p++) {
            if (keys[p].name != NULL && strcmp(keys[p].name, keys[i].name) == 0) {
                err(L, jn, sub(L, jat, "name"), "duplicate join key '%s' in entity '%s'",
                    keys[i].name, name != NULL ? name : "?");
                break; /* once per repeat, however many came before it */
            }
        }
        const ynode_t *tn = get(j, "type");
        const char *tk = sub(L, jat, "type");
        if (tn == NULL || is_null(tn)) {
            err(L, tn != NULL ? tn : j, tk, "missing required key 'type'");
            continue;
        }
        if (!want(L, tn, YN_SCALAR, tk))
            continue;
        catalog_dtype_t t = CATALOG_DTYPE_INVALID;
        if (catalog_dtype_parse(tn->s, &t) != 0 ||
            !(t == CATALOG_DTYPE_INT64 || t == CATALOG_DTYPE_INT32 || t == CATALOG_DTYPE_STRING ||
              t == CATALOG_DTYPE_BYTES)) {
            err(L, tn, tk, "unknown join key type '%s'; expected INT64, INT32, STRING or BYTES",
                tn->s);
            continue;
        }
        keys[i].dtype = t;
    }
    e->join_keys = keys;
    e->n_join_keys = jk->n;
}

/* What every view version says of itself, stored or on-demand: version, default, description,
 * owner, tags; and where they are, for later errors. */
static void load_view_head(loader_t *L, const ynode_t *n, const ynode_t *nn, const char *at,
                           catalog_view_t *v, catalog__pos_t *pos, catalog__pos_t *name_pos,
                           catalog__pos_t *version_pos, bool *marked_default,
                           catalog__pos_t *default_pos)
{
    v->version = 1;
    v->online = true;
    v->lineage_source = "";
    v->lineage_transformation = "";
    *pos = pos_of(L, n, at);
    *name_pos = pos_of(L, nn, sub(L, at, "name"));
    *version_pos = *name_pos;
    int64_t x;
    if (opt_int(L, n, "version", at, 1, CATALOG_MAX_VERSION, &x) > 0) {
        v->version = (uint32_t)x;
        *version_pos = pos_of(L, get(n, "version"), sub(L, at, "version"));
    }
    bool b;
    if (opt_bool(L, n, "default", at, &b) > 0 && b) {
        *marked_default = true;
        *default_pos = pos_of(L, get(n, "default"), sub(L, at, "default"));
    }
    opt_string(L, n, "description", at, &v->description);
    opt_string(L, n, "owner", at, &v->owner);
    opt_tags(L, n, at, &v->tags, &v->n_tags);
}

/* A view's features list (required, names unique) into v. Returns: the list's node, or NULL. */
static const ynode_t *load_features(loader_t *L, const ynode_t *n, const char *at,
                                    catalog_view_t *v, bool on_demand)
{
    const char *fk = sub(L, at, "features");
    const ynode_t *fn = required_list(L, n, "features", fk,
                                      on_demand ? "an on-demand feature view needs at least one "
                                                  "feature"
                                                : "a feature view needs at least one feature");
    if (fn == NULL)
        return NULL;
    catalog_feature_t *fs = catalog__alloc(&L->c->arena, fn->n * sizeof *fs);
    if (fs == NULL) {
        L->nomem = true;
        return NULL;
    }
    size_t i = 0;
    for (const ynode_t *f = fn->first; f != NULL; f = f->next, i++) {
        const char *fat = path(L, "%s[%zu]", fk, i);
        fs[i].index = (uint32_t)i;
        load_feature(L, f, fat, &fs[i], on_demand);
        for (size_t p = 0; fs[i].name != NULL && p < i; p++) {
            if (fs[p].name != NULL && strcmp(fs[p].name, fs[i].name) == 0) {
                err(L, get(f, "name"), sub(L, fat, "name"), "duplicate feature '%s' in %s '%s'",
                    fs[i].name, on_demand ? "on-demand feature view" : "feature view", v->name);
                break;
            }
        }
    }
    v->features = fs;
    v->n_features = fn->n;
    return fn;
}

static void load_view(loader_t *L, const ynode_t *n, const char *at)
{
    if (!want(L, n, YN_MAP, at))
        return;
    check_keys(L, n, at, view_keys, COUNT(view_keys));
    const char *name;
    const ynode_t *nn = req_name(L, n, "name", at, &name);
    if (name == NULL)
        return;
    catalog__draft_view_t *dv =
        push(L, (void **)&L->d.views, &L->d.n_views, &L->d.cap_views, sizeof *dv);
    if (dv == NULL)
        return;
    catalog_view_t *v = &dv->v;
    v->name = name;
    load_view_head(L, n, nn, at, v, &dv->pos, &dv->name_pos, &dv->version_pos, &dv->marked_default,
                   &dv->default_pos);
    bool b;
    if (opt_bool(L, n, "online", at, &b) > 0)
        v->online = b;
    opt_string(L, n, "push_source", at, &v->push_source);
    const ynode_t *ln = get(n, "lineage");
    if (ln != NULL && !is_null(ln)) {
        const char *lk = sub(L, at, "lineage");
        if (want(L, ln, YN_MAP, lk)) {
            check_keys(L, ln, lk, lineage_keys, COUNT(lineage_keys));
            opt_string(L, ln, "source", lk, &v->lineage_source);
            opt_string(L, ln, "transformation", lk, &v->lineage_transformation);
        }
    }

    const ynode_t *on = get(n, "offline");
    if (on != NULL && !is_null(on)) {
        const char *ok = sub(L, at, "offline");
        if (want(L, on, YN_MAP, ok)) {
            check_keys(L, on, ok, offline_keys, COUNT(offline_keys));
            v->history = true;
            const ynode_t *rn = get(on, "retention");
            const char *rk = sub(L, ok, "retention");
            if (rn != NULL && !is_null(rn) && want(L, rn, YN_SCALAR, rk) &&
                catalog_parse_duration(rn->s, &v->history_retention_s) != 0)
                err(L, rn, rk,
                    "bad duration '%s': expected a number and a unit (90s, 15m, 24h, 7d) or 0 "
                    "for forever",
                    rn->s);
            if (!v->online)
                err(L, on, ok,
                    "feature view '%s' keeps offline history but is not online: history is "
                    "written with the online rows (drop 'online: false')",
                    v->name);
        }
    }

    const ynode_t *tn = get(n, "ttl");
    if (tn != NULL && !is_null(tn)) {
        const char *tk = sub(L, at, "ttl");
        if (want(L, tn, YN_SCALAR, tk) && catalog_parse_duration(tn->s, &v->ttl_seconds) != 0)
            err(L, tn, tk,
                "bad duration '%s': expected a number and a unit (90s, 15m, 24h, 7d) or 0 for "
                "forever",
                tn->s);
    }

    const ynode_t *en = get(n, "entities");
    if (en != NULL && !is_null(en)) {
        const char *ek = sub(L, at, "entities");
        if (want(L, en, YN_SEQ, ek) && en->n > 0) {
            dv->entity_names = catalog__alloc(&L->d.scratch, en->n * sizeof *dv->entity_names);
            dv->entity_pos = catalog__alloc(&L->d.scratch, en->n * sizeof *dv->entity_pos);
            if (dv->entity_names == NULL || dv->entity_pos == NULL) {
                L->nomem = true;
                return;
            }
            size_t i = 0;
            for (const ynode_t *e = en->first; e != NULL; e = e->next, i++) {
                const char *eat = path(L, "%s[%zu]", ek, i);
                if (!want(L, e, YN_SCALAR, eat))
                    continue;
                dv->entity_names[dv->n_entity_names] = keep(L, e);
                dv->entity_pos[dv->n_entity_names++] = pos_of(L, e, eat);
            }
        }
    }

    load_features(L, n, at, v, false);
}

static void load_service(loader_t *L, const ynode_t *n, const char *at)
{
    if (!want(L, n, YN_MAP, at))
        return;
    check_keys(L, n, at, service_keys, COUNT(service_keys));
    const char *name;
    const ynode_t *nn = req_name(L, n, "name", at, &name);
    if (name == NULL)
        return;
    catalog__draft_service_t *ds =
        push(L, (void **)&L->d.services, &L->d.n_services, &L->d.cap_services, sizeof *ds);
    if (ds == NULL)
        return;
    ds->s.name = name;
    ds->pos = pos_of(L, n, at);
    ds->name_pos = pos_of(L, nn, sub(L, at, "name"));
    opt_string(L, n, "description", at, &ds->s.description);
    const char *fk = sub(L, at, "features");
    const ynode_t *fn = required_list(L, n, "features", fk,
                                      "a feature service needs at least one feature reference");
    if (fn == NULL)
        return;
    ds->features_pos = pos_of(L, fn, fk);
    ds->refs = catalog__alloc(&L->d.scratch, fn->n * sizeof *ds->refs);
    ds->ref_pos = catalog__alloc(&L->d.scratch, fn->n * sizeof *ds->ref_pos);
    if (ds->refs == NULL || ds->ref_pos == NULL) {
        L->nomem = true;
        return;
    }
    size_t i = 0;
    for (const ynode_t *r = fn->first; r != NULL; r = r->next, i++) {
        const char *rat = path(L, "%s[%zu]", fk, i);
        if (!want(L, r, YN_SCALAR, rat))
            continue;
        ds->refs[ds->n_refs] = base_arena_strndup(&L->d.scratch, r->s, r->len);
        ds->ref_pos[ds->n_refs++] = pos_of(L, r, rat);
    }
}

/* host:port, host a name, an IPv4 address or a bracketed IPv6 address; port 1-65535. */
static bool valid_target(const char *s)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close == s + 1 || close[1] != ':')
            return false;
        for (const char *p = s + 1; p < close; p++) {
            if (!(strchr("0123456789abcdefABCDEF:.", *p) != NULL))
                return false;
        }
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || colon == s)
            return false;
        for (const char *p = s; p < colon; p++) {
            char ch = *p;
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
            if (!ok)
                return false;
        }
    }
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return false;
    long port = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535;
}

static void load_upstream(loader_t *L, const ynode_t *n, const char *at, catalog_model_t *m)
{
    catalog_upstream_t *u = &m->upstream;
    check_keys(L, n, at, upstream_keys, COUNT(upstream_keys));
    u->keep_entity_inputs = true;
    u->target = "";
    const ynode_t *tn = get(n, "target");
    const char *tk = sub(L, at, "target");
    if (tn == NULL || is_null(tn))
        err(L, tn != NULL ? tn : n, tk, "missing required key 'target'");
    else if (want(L, tn, YN_SCALAR, tk)) {
        u->target = keep(L, tn);
        if (strlen(tn->s) != tn->len || !valid_target(tn->s))
            err(L, tn, tk, "bad target '%s': expected host:port with a port from 1 to 65535",
                tn->s);
    }
    opt_string(L, n, "model_name", at, &u->model_name);
    if (u->model_name[0] == '\0')
        u->model_name = m->name;
    opt_string(L, n, "signature_name", at, &u->signature_name);
    int64_t x;
    if (opt_int(L, n, "timeout_ms", at, 0, UINT32_MAX, &x) > 0)
        u->timeout_ms = (uint32_t)x;
    bool b;
    if (opt_bool(L, n, "keep_entity_inputs", at, &b) > 0)
        u->keep_entity_inputs = b;
    if (opt_bool(L, n, "tls", at, &b) > 0)
        u->tls = b;
    m->has_upstream = true;
}

static void load_model(loader_t *L, const ynode_t *n, const char *at)
{
    if (!want(L, n, YN_MAP, at))
        return;
    check_keys(L, n, at, model_keys, COUNT(model_keys));
    const char *name;
    const ynode_t *nn = req_name(L, n, "name", at, &name);
    if (name == NULL)
        return;
    catalog__draft_model_t *dm =
        push(L, (void **)&L->d.models, &L->d.n_models, &L->d.cap_models, sizeof *dm);
    if (dm == NULL)
        return;
    catalog_model_t *m = &dm->m;
    m->name = name;
    m->version = 1;
    dm->pos = pos_of(L, n, at);
    dm->name_pos = pos_of(L, nn, sub(L, at, "name"));
    int64_t x;
    int has = opt_int(L, n, "version", at, 1, INT64_MAX, &x);
    if (has > 0) {
        m->version = x;
        dm->has_version = true;
    }
    opt_string(L, n, "version_label", at, &m->version_label);
    if (has == 0 && m->version_label[0] == '\0')
        err(L, n, sub(L, at, "version"), "missing required key 'version' (or 'version_label')");

    const ynode_t *sn = req_name(L, n, "feature_service", at, &dm->service_name);
    if (sn != NULL)
        dm->service_pos = pos_of(L, sn, sub(L, at, "feature_service"));

    const ynode_t *on = get(n, "on_missing");
    if (on != NULL && !is_null(on)) {
        const char *ok = sub(L, at, "on_missing");
        if (want(L, on, YN_SCALAR, ok)) {
            if (strcmp(on->s, "error") == 0)
                m->on_missing = CATALOG_ON_MISSING_ERROR;
            else if (strcmp(on->s, "zero") == 0)
                m->on_missing = CATALOG_ON_MISSING_ZERO;
            else
                err(L, on, ok, "unknown on_missing '%s': expected error or zero", on->s);
        }
    }

    const ynode_t *ei = get(n, "entity_inputs");
    if (ei != NULL && !is_null(ei)) {
        const char *ek = sub(L, at, "entity_inputs");
        if (want(L, ei, YN_MAP, ek) && ei->n > 0) {
            size_t cap = ei->n / 2;
            catalog_entity_input_t *in = catalog__alloc(&L->c->arena, cap * sizeof *in);
            dm->input_pos = catalog__alloc(&L->d.scratch, cap * sizeof *dm->input_pos);
            if (in == NULL || dm->input_pos == NULL) {
                L->nomem = true;
                return;
            }
            size_t k = 0;
            for (const ynode_t *t = ei->first; t != NULL && t->next != NULL; t = t->next->next) {
                const ynode_t *val = t->next;
                if (t->kind != YN_SCALAR || is_null(t) || val->kind != YN_SCALAR || is_null(val)) {
                    err(L, t, ek,
                        "entity_inputs maps a Predict input name to a join key name (both "
                        "strings)");
                    continue;
                }
                const char *ik = path(L, "%s.%s", ek, t->s);
                bool dup = false;
                for (size_t p = 0; p < k && !dup; p++)
                    dup = strcmp(in[p].input, t->s) == 0;
                if (dup) {
                    err(L, t, ik, "duplicate entity input '%s'", t->s);
                    continue;
                }
                in[k].input = keep(L, t);
                in[k].join_key = keep(L, val);
                dm->input_pos[k++] = pos_of(L, val, ik);
            }
            m->entity_inputs = in;
            m->n_entity_inputs = k;
        }
    }

    const ynode_t *un = get(n, "upstream");
    if (un != NULL && !is_null(un)) {
        const char *uk = sub(L, at, "upstream");
        if (want(L, un, YN_MAP, uk))
            load_upstream(L, un, uk, m);
    }
}

typedef void (*item_fn)(loader_t *L, const ynode_t *n, const char *at);

static void load_request_source(loader_t *L, const ynode_t *n, const char *at)
{
    if (!want(L, n, YN_MAP, at))
        return;
    check_keys(L, n, at, request_keys, COUNT(request_keys));
    const char *name;
    const ynode_t *nn = req_name(L, n, "name", at, &name);
    if (name == NULL)
        return;
    catalog__draft_request_t *dr =
        push(L, (void **)&L->d.requests, &L->d.n_requests, &L->d.cap_requests, sizeof *dr);
    if (dr == NULL)
        return;
    dr->r.name = name;
    dr->r.description = "";
    dr->pos = pos_of(L, n, at);
    dr->name_pos = pos_of(L, nn, sub(L, at, "name"));
    opt_string(L, n, "description", at, &dr->r.description);
    const char *k = sub(L, at, "schema");
    const ynode_t *sn =
        required_list(L, n, "schema", k, "a request source needs at least one field");
    if (sn == NULL)
        return;
    catalog_request_field_t *fs = catalog__alloc(&L->c->arena, sn->n * sizeof *fs);
    if (fs == NULL) {
        L->nomem = true;
        return;
    }
    size_t i = 0;
    for (const ynode_t *f = sn->first; f != NULL; f = f->next, i++) {
        const char *fat = path(L, "%s[%zu]", k, i);
        if (!want(L, f, YN_MAP, fat))
            continue;
        check_keys(L, f, fat, field_keys, COUNT(field_keys));
        const ynode_t *fnn = req_name(L, f, "name", fat, &fs[i].name);
        for (size_t p = 0; fnn != NULL && fs[i].name != NULL && p < i; p++) {
            if (fs[p].name != NULL && strcmp(fs[p].name, fs[i].name) == 0) {
                err(L, fnn, sub(L, fat, "name"), "duplicate field '%s' in request source '%s'",
                    fs[i].name, name);
                break;
            }
        }
        const ynode_t *dt = get(f, "dtype");
        const char *dk = sub(L, fat, "dtype");
        if (dt == NULL || is_null(dt)) {
            err(L, dt != NULL ? dt : f, dk, "missing required key 'dtype'");
            continue;
        }
        if (!want(L, dt, YN_SCALAR, dk))
            continue;
        if (catalog_dtype_parse(dt->s, &fs[i].dtype) != 0 || fs[i].dtype == CATALOG_DTYPE_NULL) {
            fs[i].dtype = CATALOG_DTYPE_INVALID;
            err(L, dt, dk,
                "unknown dtype '%s'; expected one of BYTES, STRING, INT32, INT64, DOUBLE, FLOAT, "
                "BOOL, UNIX_TIMESTAMP or a *_LIST form of them",
                dt->s);
        }
    }
    if (i == sn->n) {
        dr->r.fields = fs;
        dr->r.n_fields = sn->n;
    }
}

static void load_odfv(loader_t *L, const ynode_t *n, const char *at)
{
    if (!want(L, n, YN_MAP, at))
        return;
    check_keys(L, n, at, odfv_keys, COUNT(odfv_keys));
    const char *name;
    const ynode_t *nn = req_name(L, n, "name", at, &name);
    if (name == NULL)
        return;
    catalog__draft_odfv_t *dv =
        push(L, (void **)&L->d.odfvs, &L->d.n_odfvs, &L->d.cap_odfvs, sizeof *dv);
    if (dv == NULL)
        return;
    catalog_view_t *v = &dv->v;
    v->name = name;
    v->push_source = "";
    load_view_head(L, n, nn, at, v, &dv->pos, &dv->name_pos, &dv->version_pos, &dv->marked_default,
                   &dv->default_pos);

    const char *sk = sub(L, at, "sources");
    const ynode_t *sn =
        required_list(L, n, "sources", sk, "an on-demand feature view needs at least one source");
    dv->sources_bad = sn == NULL;
    if (sn != NULL) {
        dv->sources_pos = pos_of(L, sn, sk);
        dv->sources = catalog__alloc(&L->d.scratch, sn->n * sizeof *dv->sources);
        dv->source_pos = catalog__alloc(&L->d.scratch, sn->n * sizeof *dv->source_pos);
        if (dv->sources == NULL || dv->source_pos == NULL) {
            L->nomem = true;
            return;
        }
        size_t i = 0;
        for (const ynode_t *e = sn->first; e != NULL; e = e->next, i++) {
            const char *eat = path(L, "%s[%zu]", sk, i);
            if (!want(L, e, YN_SCALAR, eat)) {
                dv->sources_bad = true;
                continue;
            }
            dv->sources[dv->n_sources] = keep(L, e);
            dv->source_pos[dv->n_sources++] = pos_of(L, e, eat);
        }
    }

    const char *fk = sub(L, at, "features");
    const ynode_t *fn = load_features(L, n, at, v, true);
    if (fn == NULL)
        return;
    catalog_feature_t *fs = (catalog_feature_t *)v->features;
    dv->expr_pos = catalog__alloc(&L->d.scratch, fn->n * sizeof *dv->expr_pos);
    if (dv->expr_pos == NULL) {
        L->nomem = true;
        return;
    }
    size_t i = 0;
    for (const ynode_t *f = fn->first; f != NULL; f = f->next, i++) {
        const char *fat = path(L, "%s[%zu]", fk, i);
        if (f->kind != YN_MAP)
            continue;
        const ynode_t *en = get(f, "expression");
        const char *ek = sub(L, fat, "expression");
        if (en == NULL || is_null(en)) {
            err(L, en != NULL ? en : f, ek,
                "missing required key 'expression' (what the feature is computed as)");
            continue;
        }
        if (!want(L, en, YN_SCALAR, ek))
            continue;
        fs[i].expression = keep(L, en);
        dv->expr_pos[i] = pos_of(L, en, ek);
    }
}

static void load_list(loader_t *L, const ynode_t *root, const char *key, item_fn fn)
{
    const ynode_t *v = get(root, key);
    if (v == NULL || is_null(v) || !want(L, v, YN_SEQ, key))
        return;
    size_t i = 0;
    for (const ynode_t *e = v->first; e != NULL && !L->nomem; e = e->next, i++)
        fn(L, e, path(L, "%s[%zu]", key, i));
}

static void load_document(loader_t *L, const ynode_t *root)
{
    if (root == NULL || is_null(root))
        return;
    if (root->kind != YN_MAP) {
        err(L, root, "(top level)",
            "expected a mapping with project, entities, feature_views, feature_services and "
            "models; got %s",
            kind_name(root));
        return;
    }
    check_keys(L, root, "", top_keys, COUNT(top_keys));
    const ynode_t *pn = get(root, "project");
    if (pn != NULL) {
        const char *project;
        const ynode_t *nn = req_name(L, root, "project", "", &project);
        if (nn != NULL && project != NULL) {
            if (L->d.project == NULL) {
                L->d.project = project;
                L->d.project_pos = pos_of(L, nn, "project");
            } else if (strcmp(L->d.project, project) != 0) {
                err(L, nn, "project", "project '%s' conflicts with project '%s' (%s:%d)", project,
                    L->d.project, L->d.project_pos.file, L->d.project_pos.line);
            }
        }
    }
    load_list(L, root, "entities", load_entity);
    load_list(L, root, "feature_views", load_view);
    load_list(L, root, "feature_services", load_service);
    load_list(L, root, "models", load_model);
    load_list(L, root, "request_sources", load_request_source);
    load_list(L, root, "on_demand_feature_views", load_odfv);
}

/* ------------------------------------------------------------------------------------------ */
/* Events to tree                                                                              */

static ynode_t *new_node(loader_t *L, ykind_t kind, const yaml_mark_t *mark)
{
    ynode_t *n = catalog__alloc(&L->d.scratch, sizeof *n);
    if (n == NULL) {
        L->nomem = true;
        return NULL;
    }
    n->kind = kind;
    n->line = (int)mark->line + 1;
    n->col = (int)mark->column + 1;
    n->s = "";
    return n;
}

static void attach(ynode_t **stack, int depth, ynode_t **root, ynode_t *n)
{
    if (depth == 0) {
        *root = n;
        return;
    }
    ynode_t *parent = stack[depth - 1];
    if (parent->last != NULL)
        parent->last->next = n;
    else
        parent->first = n;
    parent->last = n;
    parent->n++;
}

/* libyaml reader errors carry a byte offset, not a mark. */
static void offset_to_mark(const char *text, size_t len, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void parse_text(loader_t *L, const char *text, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        L->nomem = true;
        return;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    ynode_t *stack[MAX_DEPTH];
    int depth = 0;
    ynode_t *root = NULL;
    bool done = false;
    while (!done && !L->nomem) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            int line, col;
            if (p.error == YAML_READER_ERROR) {
                offset_to_mark(text, len, p.problem_offset, &line, &col);
            } else {
                line = (int)p.problem_mark.line + 1;
                col = (int)p.problem_mark.column + 1;
            }
            const char *problem = p.problem != NULL ? p.problem : "syntax error";
            if (p.context != NULL)
                catalog__error(L->errs, L->file, line, col, "(yaml)", "YAML syntax error: %s %s",
                               p.context, problem);
            else
                catalog__error(L->errs, L->file, line, col, "(yaml)", "YAML syntax error: %s",
                               problem);
            L->syntax_failed = true;
            break;
        }
        ynode_t *n = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            root = NULL;
            depth = 0;
            break;
        case YAML_DOCUMENT_END_EVENT:
            load_document(L, root);
            root = NULL;
            break;
        case YAML_ALIAS_EVENT:
            catalog__error(L->errs, L->file, (int)ev.start_mark.line + 1,
                           (int)ev.start_mark.column + 1, "(yaml)",
                           "aliases (*%s) are not supported; repeat the value instead",
                           (const char *)ev.data.alias.anchor);
            L->syntax_failed = true;
            done = true;
            break;
        case YAML_SCALAR_EVENT:
            n = new_node(L, YN_SCALAR, &ev.start_mark);
            if (n == NULL)
                break;
            n->len = ev.data.scalar.length;
            n->s = base_arena_strndup(&L->d.scratch, (const char *)ev.data.scalar.value, n->len);
            if (n->s == NULL) {
                L->nomem = true;
                break;
            }
            if (memchr(n->s, '\0', n->len) != NULL) {
                catalog__error(L->errs, L->file, n->line, n->col, "(yaml)",
                               "NUL characters are not allowed in catalog strings");
                L->syntax_failed = true;
            }
            n->plain =
                ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev.data.scalar.tag == NULL;
            attach(stack, depth, &root, n);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth == MAX_DEPTH) {
                catalog__error(L->errs, L->file, (int)ev.start_mark.line + 1,
                               (int)ev.start_mark.column + 1, "(yaml)",
                               "nesting deeper than %d levels", MAX_DEPTH);
                L->syntax_failed = true;
                done = true;
                break;
            }
            n = new_node(L, ev.type == YAML_MAPPING_START_EVENT ? YN_MAP : YN_SEQ, &ev.start_mark);
            if (n == NULL)
                break;
            attach(stack, depth, &root, n);
            stack[depth++] = n;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
}

/* ------------------------------------------------------------------------------------------ */
/* Entry points                                                                                */

static int loader_init(loader_t *L, catalog_errors_t *errs)
{
    memset(L, 0, sizeof *L);
    base_arena_init(&L->d.scratch, CATALOG__ARENA_CHUNK);
    L->errs = errs;
    L->c = catalog__new();
    return L->c != NULL ? 0 : -ENOMEM;
}

static void add_text(loader_t *L, const char *text, size_t len, const char *file)
{
    L->file = base_arena_strndup(&L->d.scratch, file, strlen(file));
    if (L->file == NULL) {
        L->nomem = true;
        return;
    }
    if (L->d.first_file == NULL)
        L->d.first_file = L->file;
    parse_text(L, text, len);
}

static int finish(loader_t *L, size_t first_err, catalog_t **out)
{
    int rc = 0;
    if (L->nomem)
        rc = -ENOMEM;
    else if (L->io_error != 0)
        rc = L->io_error;
    else if (L->syntax_failed)
        rc = -EINVAL; /* cross-file checks would only echo the missing parts */
    else
        rc = catalog__resolve(L->c, &L->d, L->errs);
    if (rc == 0 && L->errs->count > first_err)
        rc = -EINVAL;
    if (rc == 0)
        rc = catalog__finalize(L->c);
    catalog__errors_sort(L->errs, first_err);
    base_arena_free(&L->d.scratch);
    if (rc != 0) {
        catalog__free(L->c);
        return rc;
    }
    *out = L->c;
    return 0;
}

int catalog_load_string(const char *yaml, size_t len, const char *name, catalog_t **out,
                        catalog_errors_t *errs)
{
    catalog_errors_t local = {NULL, 0};
    catalog_errors_t *e = errs != NULL ? errs : &local;
    size_t first = e->count;
    loader_t L;
    int rc = loader_init(&L, e);
    if (rc == 0) {
        add_text(&L, yaml != NULL ? yaml : "", yaml != NULL ? len : 0,
                 name != NULL ? name : "<string>");
        rc = finish(&L, first, out);
    }
    catalog_errors_clear(&local);
    return rc;
}

static int errno_rc(int e)
{
    return e == ENOENT || e == ENOTDIR ? -ENOENT : e == EACCES || e == EPERM ? -EACCES : -EIO;
}

static int read_file(loader_t *L, const char *file)
{
    int rc = 0;
    char *buf = NULL;
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        rc = errno_rc(errno);
        catalog__error(L->errs, file, 0, 0, "", "cannot open: %s", strerror(errno));
        goto out;
    }
    size_t cap = 4096, len = 0;
    buf = malloc(cap);
    while (buf != NULL) {
        if (len == cap) {
            if (cap >= MAX_FILE_SIZE) {
                rc = -EIO;
                catalog__error(L->errs, file, 0, 0, "", "file larger than %u bytes", MAX_FILE_SIZE);
                goto out;
            }
            char *nbuf = realloc(buf, cap * 2);
            if (nbuf == NULL)
                break;
            buf = nbuf;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (buf == NULL || ferror(f)) {
        rc = buf == NULL ? -ENOMEM : -EIO;
        catalog__error(L->errs, file, 0, 0, "", "cannot read: %s",
                       buf == NULL ? "out of memory" : strerror(EIO));
        goto out;
    }
    add_text(L, buf, len, file);
out:
    if (f != NULL)
        fclose(f);
    free(buf);
    if (rc == -ENOMEM)
        L->nomem = true;
    else if (rc != 0 && L->io_error == 0)
        L->io_error = rc;
    return rc;
}

static bool yaml_name(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.')
        return false;
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void load_dir(loader_t *L, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        L->io_error = errno_rc(errno);
        catalog__error(L->errs, dir, 0, 0, "", "cannot open directory: %s", strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!yaml_name(de->d_name))
            continue;
        if (base_arena_grow(&L->d.scratch, (void **)&names, &cap, n + 1, sizeof *names) != 0) {
            L->nomem = true;
            break;
        }
        size_t need = strlen(dir) + strlen(de->d_name) + 2;
        char *full = catalog__alloc(&L->d.scratch, need);
        if (full == NULL) {
            L->nomem = true;
            break;
        }
        snprintf(full, need, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", de->d_name);
        struct stat st;
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        names[n++] = full;
    }
    closedir(d);
    if (n == 0 && !L->nomem) {
        L->io_error = -ENOENT;
        catalog__error(L->errs, dir, 0, 0, "", "no *.yaml or *.yml files in this directory");
        return;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && !L->nomem; i++)
        read_file(L, names[i]);
}

int catalog_load(const char *path_, catalog_t **out, catalog_errors_t *errs)
{
    catalog_errors_t local = {NULL, 0};
    catalog_errors_t *e = errs != NULL ? errs : &local;
    size_t first = e->count;
    loader_t L;
    int rc = loader_init(&L, e);
    if (rc != 0)
        goto out;
    struct stat st;
    if (path_ == NULL || path_[0] == '\0') {
        catalog__error(e, "", 0, 0, "", "no catalog path given");
        L.io_error = -ENOENT;
    } else if (stat(path_, &st) != 0) {
        L.io_error = errno_rc(errno);
        catalog__error(e, path_, 0, 0, "", "cannot read: %s", strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        load_dir(&L, path_);
    } else {
        read_file(&L, path_);
    }
    rc = finish(&L, first, out);
out:
    catalog_errors_clear(&local);
    return rc;
}
