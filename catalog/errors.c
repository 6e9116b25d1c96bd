/* catalog/errors.c - the error list, name rules and "did you mean" suggestions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"

void catalog_errors_clear(catalog_errors_t *errs)
{
    if (errs == NULL)
        return;
    free(errs->items);
    errs->items = NULL;
    errs->count = 0;
}

/* A new item with its place filled in, or NULL when memory ran out (the error is dropped). */
static catalog_error_t *slot(catalog_errors_t *errs, const char *file, int line, int col,
                             const char *key)
{
    /* Growth is by powers of two, so a count that is a power of two means the array is full. */
    size_t n = errs->count;
    if (n == 0 || (n & (n - 1)) == 0) {
        size_t cap = n == 0 ? 4 : n * 2;
        catalog_error_t *items = realloc(errs->items, cap * sizeof *items);
        if (items == NULL)
            return NULL;
        errs->items = items;
    }
    catalog_error_t *e = &errs->items[n];
    memset(e, 0, sizeof *e);
    snprintf(e->file, sizeof e->file, "%s", file != NULL ? file : "");
    e->line = line;
    e->column = col;
    snprintf(e->key, sizeof e->key, "%s", key != NULL ? key : "");
    errs->count = n + 1;
    return e;
}

void catalog__verror(catalog_errors_t *errs, const char *file, int line, int col, const char *key,
                     const char *fmt, va_list ap)
{
    if (errs == NULL || errs->count > CATALOG__MAX_ERRORS)
        return;
    if (errs->count == CATALOG__MAX_ERRORS) {
        catalog_error_t *e = slot(errs, file, 0, 0, "");
        if (e != NULL)
            snprintf(e->message, sizeof e->message, "too many errors; the rest are not shown");
        return;
    }
    catalog_error_t *e = slot(errs, file, line, col, key);
    if (e != NULL)
        vsnprintf(e->message, sizeof e->message, fmt, ap);
}

void catalog__error(catalog_errors_t *errs, const char *file, int line, int col, const char *key,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    catalog__verror(errs, file, line, col, key, fmt, ap);
    va_end(ap);
}

/* Errors of one load keep their discovery order among equals, hence the index tie-break. */
typedef struct sortable {
    catalog_error_t e;
    size_t seq;
} sortable_t;

static int cmp_err(const void *pa, const void *pb)
{
    const sortable_t *a = pa, *b = pb;
    int r = strcmp(a->e.file, b->e.file);
    if (r != 0)
        return r;
    if (a->e.line != b->e.line)
        return a->e.line < b->e.line ? -1 : 1;
    if (a->e.column != b->e.column)
        return a->e.column < b->e.column ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void catalog__errors_sort(catalog_errors_t *errs, size_t from)
{
    if (errs == NULL || errs->count <= from + 1)
        return;
    size_t n = errs->count - from;
    sortable_t *tmp = malloc(n * sizeof *tmp);
    if (tmp == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        tmp[i].e = errs->items[from + i];
        tmp[i].seq = i;
    }
    qsort(tmp, n, sizeof *tmp, cmp_err);
    for (size_t i = 0; i < n; i++)
        errs->items[from + i] = tmp[i].e;
    free(tmp);
}

bool catalog__valid_name(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    size_t n = 0;
    for (const char *p = s; *p != '\0'; p++, n++) {
        char ch = *p;
        bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
        bool digit = ch >= '0' && ch <= '9';
        if (!(alpha || (digit && p != s)))
            return false;
    }
    return n < CATALOG_MAX_NAME;
}

size_t catalog__distance(const char *a, const char *b)
{
    /*
     * Optimal string alignment (Levenshtein plus adjacent transpositions), so "mni" is one edit
     * from "min". Keys and names are short; longer strings are never a typo of each other.
     */
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t rows[3][65];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *catalog__closest(const char *s, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t len = strlen(s);
    for (size_t i = 0; i < n; i++) {
        /* A clipped word ("timeout" for "timeout_ms") is as likely a slip as a typo. */
        size_t lc = strlen(cands[i]);
        if (len >= 3 && lc > len && strncmp(s, cands[i], len) == 0)
            return cands[i];
        size_t d = catalog__distance(s, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    /* One edit in three characters still reads as a typo; more than that is a different word. */
    size_t limit = len / 3 > 1 ? len / 3 : 1;
    if (len >= 4 && limit < 2)
        limit = 2;
    return best != NULL && best_d <= limit ? best : NULL;
}

/* The i-th name of a kind for catalog_describe_missing (views: once per name, at its first
 * version; catalog_view_at() keeps a view's versions together). NULL to skip i. */
static const char *nth_name(const catalog_t *c, catalog_name_kind_t kind, const catalog_view_t *v,
                            size_t i)
{
    switch (kind) {
    case CATALOG_NAME_VIEW: {
        const catalog_view_t *cur = catalog_view_at(c, i);
        if (i > 0 && strcmp(catalog_view_at(c, i - 1)->name, cur->name) == 0)
            return NULL;
        return cur->name;
    }
    case CATALOG_NAME_FEATURE:
        return v->features[i].name;
    case CATALOG_NAME_SERVICE:
        return catalog_service_at(c, i)->name;
    }
    return NULL;
}

void catalog_describe_missing(const catalog_t *c, catalog_name_kind_t kind,
                              const catalog_view_t *view, const char *name, char *buf, size_t cap)
{
    enum { LISTED = 12 };
    if (cap == 0)
        return;
    buf[0] = '\0';
    char base[CATALOG_MAX_NAME + 1];
    if (kind == CATALOG_NAME_VIEW && strchr(name, '@') != NULL) {
        /* "view@vN": a view that exists without that version lists its versions. */
        snprintf(base, sizeof base, "%.*s", (int)strcspn(name, "@"), name);
        name = base;
        size_t used = 0, count = catalog_view_count(c);
        for (size_t i = 0; i < count && used < cap; i++) {
            const catalog_view_t *v = catalog_view_at(c, i);
            if (strcmp(v->name, name) != 0)
                continue;
            int w = snprintf(buf + used, cap - used, "%sv%u", used == 0 ? "; its versions: " : ", ",
                             (unsigned)v->version);
            used += w > 0 ? (size_t)w : 0;
        }
        if (used > 0)
            return;
    }
    size_t n = kind == CATALOG_NAME_VIEW      ? catalog_view_count(c)
               : kind == CATALOG_NAME_SERVICE ? catalog_service_count(c)
               : view != NULL                 ? view->n_features
                                              : 0;
    /* The names as a list for catalog__closest (none suggested if memory ran out, or for a
     * name longer than any catalog name can be: a client's megabyte name costs no distances). */
    const char **names = n > 0 ? malloc(n * sizeof *names) : NULL;
    size_t n_names = 0;
    for (size_t i = 0; names != NULL && i < n; i++) {
        const char *cand = nth_name(c, kind, view, i);
        if (cand != NULL)
            names[n_names++] = cand;
    }
    const char *best = names != NULL && strnlen(name, CATALOG_MAX_NAME + 1) <= CATALOG_MAX_NAME
                           ? catalog__closest(name, names, n_names)
                           : NULL;
    free(names);
    size_t used = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (used < cap) {                                                                          \
            int w_ = snprintf(buf + used, cap - used, __VA_ARGS__);                                \
            used += w_ > 0 ? (size_t)w_ : 0;                                                       \
        }                                                                                          \
    } while (0)
    if (best != NULL)
        PUT(" (did you mean '%s'?)", best);
    const char *lead = kind == CATALOG_NAME_VIEW      ? "; feature views: "
                       : kind == CATALOG_NAME_SERVICE ? "; feature services: "
                                                      : "; its features: ";
    size_t listed = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *cand = nth_name(c, kind, view, i);
        if (cand == NULL)
            continue;
        if (listed < LISTED) {
            PUT("%s%s", listed == 0 ? lead : ", ", cand);
            listed++;
        }
        total++;
    }
    if (total == 0)
        PUT("%snone", lead);
    else if (total > listed)
        PUT(" and %zu more", total - listed);
#undef PUT
}

void catalog__suggest(const char *s, const char *const *cands, size_t n, char *buf, size_t cap)
{
    const char *close = catalog__closest(s, cands, n);
    if (close != NULL)
        snprintf(buf, cap, " (did you mean '%s'?)", close);
    else if (cap > 0)
        buf[0] = '\0';
}
