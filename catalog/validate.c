/* catalog/validate.c - validation rules applied to values, and the compiled patterns they use. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "catalog/catalog_int.h"

/*
 * What glibc's regcomp builds grows with the pattern in two ways a 512-character pattern can
 * abuse (measured with glibc 2.36):
 *  - repetitions are expanded into copies of what they repeat: `x{m,n}` into n copies, `x+`
 *    into x and x*, so nested or stacked ones multiply (`((a{255}){255}){255}`, `a+++...`);
 *  - every node keeps the set of nodes it reaches without reading a character (its epsilon
 *    closure), so a run of N copies that can each match nothing costs N^2: `(a?){2000}` took
 *    314 MB, `(a*){5000}` 1.9 GB, `(^){5000}` and `(()){9999}` gigabytes.
 * A catalog is configuration rather than network input, but one bad pattern must not take the
 * server (or every node of a replicated one) down at load: the length, the expanded tree and
 * the sum of the squares of its runs of such copies are capped (estimated below; `(a?){330}`,
 * just under the bound, takes about 10 MB: `(a?){350}` took 11).
 */
#define MAX_PATTERN 512
#define MAX_EXPANDED 100000
#define MAX_EPSILON 1000000

/* Returns: the ']' that ends the bracket expression whose '[' is at p, or NULL. "]" first
 * (after an optional "^") is a member, not its end; classes ([:alpha:]) are skipped whole. */
static const char *bracket_end(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    while (*p != '\0' && *p != ']') {
        if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            char close[3] = {p[1], ']', '\0'};
            const char *e = strstr(p + 2, close);
            if (e == NULL)
                return NULL; /* regcomp reports it */
            p = e + 2;
            continue;
        }
        p++;
    }
    return *p == ']' ? p : NULL;
}

/*
 * Backreferences (\1 to \9, a glibc extension to EREs) are the one construct that makes glibc's
 * matcher backtrack: `(a*)*\1b` against 1000 characters ran for minutes. Without them it
 * matches by automaton, in time polynomial in the value (whose length validation and
 * --max-message-bytes bound), so they are refused. Inside a bracket expression a backslash is
 * an ordinary character, so brackets are skipped.
 * Returns: the offset of the first backreference in t, or -1.
 */
static long backreference_at(const char *t)
{
    for (const char *p = t; *p != '\0'; p++) {
        if (*p == '\\') {
            if (p[1] >= '1' && p[1] <= '9')
                return p - t;
            if (p[1] != '\0')
                p++;
            continue;
        }
        if (*p == '[' && (p = bracket_end(p)) == NULL)
            return -1;
    }
    return -1;
}

/* The estimated cost of part of a pattern: its nodes once expanded, the squares of its runs of
 * nodes that can match nothing (epsilon), and whether all of it can match nothing. */
typedef struct re_cost {
    double nodes;
    double epsilon;
    bool nullable;
} re_cost_t;

/* Adds item to a branch: a run of nullable items grows; one that is not ends the run, whose
 * square goes to the branch's epsilon cost. */
static void re_commit(re_cost_t *branch, double *run, re_cost_t item, bool *all_nullable)
{
    branch->nodes += item.nodes;
    branch->epsilon += item.epsilon;
    if (item.nullable) {
        *run += item.nodes;
    } else {
        branch->epsilon += *run * *run;
        *run = 0;
        *all_nullable = false;
    }
}

/*
 * The cost of the branches at *pp up to the ')' that closes them (nested) or the end, every
 * repetition expanded as glibc expands it; *pp is left at that ')'. Outside any group a ')' is
 * an ordinary character, as glibc takes it (so `)+++...` multiplies like `a+++...`). An item
 * is held until the next one comes, so that a quantifier after it changes it first (`b*` can
 * match nothing, `b` cannot). An estimate within a small factor, which is all a bound needs;
 * it stops counting once past the bounds, so it never overflows.
 */
static re_cost_t re_cost(const char **pp, bool nested)
{
    const char *p = *pp;
    re_cost_t all = {0, 0, false}, branch = {0, 0, true}, item = {0, 0, false};
    double run = 0;
    bool held = false, branch_nullable = true;
    while (*p != '\0' && !(nested && *p == ')') && all.nodes + branch.nodes <= MAX_EXPANDED &&
           all.epsilon + branch.epsilon <= MAX_EPSILON) {
        if (*p == '|') {
            if (held)
                re_commit(&branch, &run, item, &branch_nullable);
            branch.epsilon += run * run;
            all.nodes += branch.nodes + 1;
            all.epsilon += branch.epsilon;
            all.nullable |= branch_nullable;
            branch = (re_cost_t){0, 0, true};
            run = 0;
            held = false;
            branch_nullable = true;
            p++;
            continue;
        }
        if (*p == '*' || *p == '?' || *p == '+' || *p == '{') {
            double copies = 1, least = 0; /* '*' and '?' wrap their item once: no copy */
            if (*p == '+') {
                copies = 2;
                least = 1;
            }
            if (*p == '{') {
                double bound = 0, n = 0;
                bool first = true;
                for (p++; *p != '\0' && *p != '}'; p++) {
                    if (*p >= '0' && *p <= '9') {
                        n = n * 10 + (*p - '0');
                        if (n > 32768)
                            n = 32768; /* glibc refuses more than 32767 */
                    } else {
                        if (first)
                            least = n;
                        first = false;
                        n = 0;
                    }
                    if (n > bound)
                        bound = n;
                }
                if (first)
                    least = n;
                copies = bound + 1;
            }
            if (*p != '\0')
                p++;
            if (held) { /* else glibc refuses it, or takes it literally: nothing to expand */
                item.nodes = item.nodes * copies + 1;
                item.epsilon *= copies;
                item.nullable = item.nullable || least == 0;
            }
            continue;
        }
        if (held)
            re_commit(&branch, &run, item, &branch_nullable);
        held = true;
        item = (re_cost_t){1, 0, false};
        if (*p == '(') {
            p++;
            re_cost_t group = re_cost(&p, true);
            item = (re_cost_t){group.nodes + 1, group.epsilon, group.nullable};
            if (*p == ')')
                p++;
        } else if (*p == '[') {
            const char *e = bracket_end(p);
            p = e != NULL ? e + 1 : p + strlen(p);
        } else if (*p == '\\' && p[1] != '\0') {
            p += 2;
        } else if (*p == '^' || *p == '$') {
            /* An anchor matches no character, and repeated ones cost glibc far more than other
             * such nodes (cubic: `(^){400}` took 766 MB): counted as 16 nodes. */
            item = (re_cost_t){16, 0, true};
            p++;
        } else {
            p++;
        }
    }
    if (held)
        re_commit(&branch, &run, item, &branch_nullable);
    branch.epsilon += run * run;
    all.nodes += branch.nodes;
    all.epsilon += branch.epsilon;
    all.nullable |= branch_nullable;
    *pp = p;
    return all;
}

static bool pattern_size_ok(const char *text, char *why, size_t why_cap)
{
    if (strlen(text) > MAX_PATTERN) {
        snprintf(why, why_cap, "longer than %d characters", MAX_PATTERN);
        return false;
    }
    const char *p = text;
    re_cost_t c = re_cost(&p, false);
    if (c.nodes > MAX_EXPANDED) {
        snprintf(why, why_cap,
                 "its repetitions expand past %d nodes (nested or stacked repetitions multiply)",
                 MAX_EXPANDED);
        return false;
    }
    if (c.epsilon > MAX_EPSILON) {
        snprintf(why, why_cap,
                 "it repeats what can match nothing too often: compiling it would take "
                 "gigabytes (keep repetitions of optional parts under a few hundred)");
        return false;
    }
    return true;
}

catalog__pattern_t *catalog__pattern_compile(catalog_t *c, const char *text, char *why,
                                             size_t why_cap)
{
    if (!pattern_size_ok(text, why, why_cap))
        return NULL;
    long br = backreference_at(text);
    if (br >= 0) {
        snprintf(why, why_cap,
                 "backreference '\\%c' at offset %ld: backreferences make matching take "
                 "exponential time and are not allowed",
                 text[br + 1], br);
        return NULL;
    }
    size_t len = strlen(text);
    catalog__pattern_t *p = catalog__alloc(&c->arena, sizeof *p + len + 1);
    if (p == NULL) {
        snprintf(why, why_cap, "out of memory");
        return NULL;
    }
    memcpy(p->text, text, len + 1);
    /* No REG_NOSUB: matching reads the span of the match to insist on the whole string. */
    int rc = regcomp(&p->re, text, REG_EXTENDED);
    if (rc != 0) {
        regerror(rc, &p->re, why, why_cap);
        regfree(&p->re);
        return NULL;
    }
    p->next = c->patterns;
    c->patterns = p;
    return p;
}

bool catalog__pattern_match(const catalog__pattern_t *p, const uint8_t *s, size_t len)
{
    /*
     * REG_STARTEND lets the value be matched in place (values are not NUL-terminated). POSIX
     * picks the longest of the leftmost matches, so a whole-string match exists exactly when
     * the match found spans the whole string.
     */
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)len;
    static const char empty[1] = "";
    const char *str = len > 0 ? (const char *)s : empty;
    if (regexec(&p->re, str, 1, m, REG_STARTEND) != 0)
        return false;
    return m[0].rm_so == 0 && (size_t)m[0].rm_eo == len;
}

static const catalog__pattern_t *pattern_of(const catalog_validation_t *rules)
{
    if (rules->pattern == NULL)
        return NULL;
    return (const catalog__pattern_t *)(const void *)(rules->pattern -
                                                      offsetof(catalog__pattern_t, text));
}

static bool is_numeric(catalog_dtype_t elem)
{
    return elem == CATALOG_DTYPE_INT32 || elem == CATALOG_DTYPE_INT64 ||
           elem == CATALOG_DTYPE_FLOAT || elem == CATALOG_DTYPE_DOUBLE ||
           elem == CATALOG_DTYPE_UNIX_TIMESTAMP;
}

static double as_double(const catalog_value_t *v)
{
    switch (v->type) {
    case CATALOG_DTYPE_INT32:
        return v->u.i32;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        return (double)v->u.i64;
    case CATALOG_DTYPE_FLOAT:
        return v->u.f32;
    default:
        return v->u.f64;
    }
}

/* An INT32 value checked against an INT64 feature is compared as the INT64 it becomes. */
static void widen(catalog_value_t *v, catalog_dtype_t want)
{
    if (v->type == CATALOG_DTYPE_INT32 && want == CATALOG_DTYPE_INT64) {
        int64_t x = v->u.i32;
        v->type = CATALOG_DTYPE_INT64;
        v->u.i64 = x;
    }
}

static int failf(char *why, size_t cap, const char *fmt, ...) CATALOG__PRINTF(3, 4);

static int failf(char *why, size_t cap, const char *fmt, ...)
{
    if (why != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int check_elem(const catalog_feature_t *f, catalog_value_t e, char *why, size_t cap)
{
    const catalog_validation_t *r = &f->validation;
    catalog_dtype_t elem = catalog_dtype_element(f->dtype);
    widen(&e, elem);
    /* The value is only formatted on failure: this runs on every write. */
    char val[96], lim[48];
    if (elem == CATALOG_DTYPE_STRING && !base_utf8_valid(e.u.bytes.data, e.u.bytes.len))
        return failf(why, cap, "dtype: STRING value is not valid UTF-8");
    if (is_numeric(elem) && (r->has_min || r->has_max)) {
        /* NaN fails both bounds: a NaN is never "between" anything. */
        double d = as_double(&e);
        if (r->has_min && !(d >= r->min)) {
            catalog__format_double(r->min, lim, sizeof lim);
            catalog_value_format(&e, val, sizeof val);
            return failf(why, cap, "min: %s < %s", val, lim);
        }
        if (r->has_max && !(d <= r->max)) {
            catalog__format_double(r->max, lim, sizeof lim);
            catalog_value_format(&e, val, sizeof val);
            return failf(why, cap, "max: %s > %s", val, lim);
        }
    }
    if (!catalog_dtype_is_list(f->dtype) && r->max_length >= 0 &&
        (elem == CATALOG_DTYPE_STRING || elem == CATALOG_DTYPE_BYTES) &&
        e.u.bytes.len > (uint64_t)r->max_length)
        return failf(why, cap, "max_length: %zu bytes > %lld", e.u.bytes.len,
                     (long long)r->max_length);
    if (r->n_allowed > 0) {
        bool found = false;
        for (size_t i = 0; i < r->n_allowed && !found; i++)
            found = catalog_value_equal(&e, &r->allowed_values[i]);
        if (!found && catalog_value_format(&e, val, sizeof val) > 0)
            return failf(why, cap, "allowed_values: %s is not one of the allowed values", val);
    }
    const catalog__pattern_t *pat = pattern_of(r);
    if (pat != NULL && elem == CATALOG_DTYPE_STRING &&
        !catalog__pattern_match(pat, e.u.bytes.data, e.u.bytes.len) &&
        catalog_value_format(&e, val, sizeof val) > 0)
        return failf(why, cap, "pattern: %s does not match %s", val, r->pattern);
    return 0;
}

bool catalog_feature_has_rules(const catalog_feature_t *f)
{
    const catalog_validation_t *r = &f->validation;
    return catalog_dtype_is_list(f->dtype) || f->dtype == CATALOG_DTYPE_STRING ||
           f->dtype == CATALOG_DTYPE_BYTES || r->has_min || r->has_max || r->n_allowed > 0;
}

int catalog__check_value(const catalog_feature_t *f, const catalog_value_t *v, char *why,
                         size_t why_cap)
{
    if (why != NULL && why_cap > 0)
        why[0] = '\0';
    if (v->type == CATALOG_DTYPE_NULL) {
        if (f->validation.not_null)
            return failf(why, why_cap, "not_null: the value is null");
        return 0;
    }
    bool widened = v->type == CATALOG_DTYPE_INT32 && f->dtype == CATALOG_DTYPE_INT64;
    if (v->type != f->dtype && !widened)
        return failf(why, why_cap, "dtype: got %s, want %s", catalog_dtype_name(v->type),
                     catalog_dtype_name(f->dtype));
    if (!catalog_dtype_is_list(f->dtype)) {
        /* Most features are plain numbers without rules; this runs for every value written. */
        if (!catalog_feature_has_rules(f))
            return 0;
        return check_elem(f, *v, why, why_cap);
    }
    if (f->validation.max_length >= 0 && v->u.list.n > (uint64_t)f->validation.max_length)
        return failf(why, why_cap, "max_length: %zu items > %lld", v->u.list.n,
                     (long long)f->validation.max_length);
    for (size_t i = 0; i < v->u.list.n; i++) {
        catalog_value_t item;
        catalog_list_item(v, i, &item);
        int rc = check_elem(f, item, why, why_cap);
        if (rc != 0) {
            if (why != NULL && why_cap > 0) {
                char inner[256];
                snprintf(inner, sizeof inner, "%s", why);
                snprintf(why, why_cap, "%s (item %zu)", inner, i);
            }
            return rc;
        }
    }
    return 0;
}

int catalog_validate_value(const catalog_feature_t *f, const catalog_value_t *v, char *why,
                           size_t why_cap)
{
    if (f == NULL || v == NULL) {
        if (why != NULL && why_cap > 0)
            snprintf(why, why_cap, "no feature or value");
        return -EINVAL;
    }
    return catalog__check_value(f, v, why, why_cap);
}
