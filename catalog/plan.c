/* catalog/plan.c - what changes between two catalogs, and which changes break stored data. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"

/*
 * The rule behind every verdict: stored rows are keyed by a view version's entity key and hold
 * values typed by its features' dtypes, mapped by feature name. Anything that keeps old rows
 * readable as they are is safe (new objects, appended features, metadata, TTL, validation,
 * defaults); anything that makes them unreadable or drops them is breaking (a changed dtype or
 * entity key, a removed feature or view version). Removing a service, model or the project name
 * is breaking for callers rather than data, and reported so for the same reason: someone who
 * relies on it gets NOT_FOUND after the apply.
 */

typedef struct planner {
    catalog_plan_t *plan;
    size_t cap;
    bool nomem;
} planner_t;

static void add(planner_t *P, catalog_change_kind_t kind, bool breaking, const char *object,
                const char *fmt, ...) CATALOG__PRINTF(5, 6);

static void add(planner_t *P, catalog_change_kind_t kind, bool breaking, const char *object,
                const char *fmt, ...)
{
    catalog_plan_t *p = P->plan;
    if (P->nomem)
        return;
    if (p->count == P->cap) {
        size_t cap = P->cap == 0 ? 16 : P->cap * 2;
        catalog_change_t *items = realloc(p->items, cap * sizeof *items);
        if (items == NULL) {
            P->nomem = true;
            return;
        }
        p->items = items;
        P->cap = cap;
    }
    catalog_change_t *ch = &p->items[p->count++];
    memset(ch, 0, sizeof *ch);
    ch->kind = kind;
    ch->breaking = breaking;
    snprintf(ch->object, sizeof ch->object, "%s", object);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ch->detail, sizeof ch->detail, fmt, ap);
    va_end(ap);
    if (breaking)
        p->n_breaking++;
}

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

static bool tags_eq(const catalog_tag_t *a, size_t na, const catalog_tag_t *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (!str_eq(a[i].key, b[i].key) || !str_eq(a[i].value, b[i].value))
            return false;
    }
    return true;
}

/* Appends ", what" (or "what" first) to a bounded list of changed fields. */
static void note(char *buf, size_t cap, const char *what)
{
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s%s", len > 0 ? ", " : "", what);
}

static void join_keys_text(const catalog_join_key_t *k, size_t n, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s %s", i > 0 ? ", " : "", k[i].name,
                                catalog_dtype_name(k[i].dtype));
}

static bool join_keys_eq(const catalog_join_key_t *a, size_t na, const catalog_join_key_t *b,
                         size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i].name, b[i].name) != 0 || a[i].dtype != b[i].dtype)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */

static void diff_entities(planner_t *P, const catalog_t *from, const catalog_t *to)
{
    char obj[200], a[160], b[160];
    for (size_t i = 0; i < to->n_entities; i++) {
        const catalog_entity_t *e = &to->entities[i], *old = NULL;
        snprintf(obj, sizeof obj, "entity %s", e->name);
        if (from == NULL || catalog_find_entity(from, e->name, &old) != 0) {
            join_keys_text(e->join_keys, e->n_join_keys, a, sizeof a);
            add(P, CATALOG_CHANGE_ADDED, false, obj, "new entity (join keys: %s)", a);
            continue;
        }
        if (!join_keys_eq(old->join_keys, old->n_join_keys, e->join_keys, e->n_join_keys)) {
            join_keys_text(old->join_keys, old->n_join_keys, a, sizeof a);
            join_keys_text(e->join_keys, e->n_join_keys, b, sizeof b);
            add(P, CATALOG_CHANGE_CHANGED, true, obj,
                "join keys changed from [%s] to [%s]: rows stored under the old key cannot be "
                "found; define a new entity and a new view version instead",
                a, b);
        }
        char what[160] = "";
        if (!str_eq(old->description, e->description))
            note(what, sizeof what, "description");
        if (!tags_eq(old->tags, old->n_tags, e->tags, e->n_tags))
            note(what, sizeof what, "tags");
        if (what[0] != '\0')
            add(P, CATALOG_CHANGE_CHANGED, false, obj, "metadata changed: %s", what);
    }
    for (size_t i = 0; from != NULL && i < from->n_entities; i++) {
        const catalog_entity_t *e = &from->entities[i], *now = NULL;
        if (catalog_find_entity(to, e->name, &now) == 0)
            continue;
        snprintf(obj, sizeof obj, "entity %s", e->name);
        add(P, CATALOG_CHANGE_REMOVED, false, obj, "entity removed (no view uses it any more)");
    }
}

static void rules_text(const catalog_validation_t *r, char *buf, size_t cap)
{
    char num[48], item[160];
    buf[0] = '\0';
    if (r->not_null)
        note(buf, cap, "not_null");
    if (r->has_min) {
        catalog__format_double(r->min, num, sizeof num);
        snprintf(item, sizeof item, "min %s", num);
        note(buf, cap, item);
    }
    if (r->has_max) {
        catalog__format_double(r->max, num, sizeof num);
        snprintf(item, sizeof item, "max %s", num);
        note(buf, cap, item);
    }
    if (r->n_allowed > 0) {
        snprintf(item, sizeof item, "%zu allowed values", r->n_allowed);
        note(buf, cap, item);
    }
    if (r->max_length >= 0) {
        snprintf(item, sizeof item, "max_length %lld", (long long)r->max_length);
        note(buf, cap, item);
    }
    if (r->pattern != NULL) {
        snprintf(item, sizeof item, "pattern %.120s", r->pattern);
        note(buf, cap, item);
    }
    if (buf[0] == '\0')
        snprintf(buf, cap, "none");
}

static bool allowed_subset(const catalog_validation_t *small, const catalog_validation_t *big)
{
    for (size_t i = 0; i < small->n_allowed; i++) {
        bool found = false;
        for (size_t j = 0; j < big->n_allowed && !found; j++)
            found = catalog_value_equal(&small->allowed_values[i], &big->allowed_values[j]);
        if (!found)
            return false;
    }
    return true;
}

/* Whether new rules could refuse a value the old ones accepted. */
static bool tightened(const catalog_validation_t *o, const catalog_validation_t *n)
{
    if (n->not_null && !o->not_null)
        return true;
    if (n->has_min && (!o->has_min || n->min > o->min))
        return true;
    if (n->has_max && (!o->has_max || n->max < o->max))
        return true;
    if (n->n_allowed > 0 && (o->n_allowed == 0 || !allowed_subset(o, n)))
        return true;
    if (n->max_length >= 0 && (o->max_length < 0 || n->max_length < o->max_length))
        return true;
    if (n->pattern != NULL && !str_eq(o->pattern, n->pattern))
        return true;
    return false;
}

static bool rules_eq(const catalog_validation_t *a, const catalog_validation_t *b)
{
    return a->not_null == b->not_null && a->has_min == b->has_min &&
           (!a->has_min || a->min == b->min) && a->has_max == b->has_max &&
           (!a->has_max || a->max == b->max) && a->n_allowed == b->n_allowed &&
           allowed_subset(a, b) && a->max_length == b->max_length && str_eq(a->pattern, b->pattern);
}

/* Notes a view version's metadata changes (description, owner, push source, tags, lineage,
 * default version) into what, in that order. */
static void view_meta(const catalog_view_t *o, const catalog_view_t *n, char *what, size_t cap)
{
    if (!str_eq(o->description, n->description))
        note(what, cap, "description");
    if (!str_eq(o->owner, n->owner))
        note(what, cap, "owner");
    if (!str_eq(o->push_source, n->push_source))
        note(what, cap, "push_source");
    if (!tags_eq(o->tags, o->n_tags, n->tags, n->n_tags))
        note(what, cap, "tags");
    if (!str_eq(o->lineage_source, n->lineage_source) ||
        !str_eq(o->lineage_transformation, n->lineage_transformation))
        note(what, cap, "lineage");
    if (o->is_default != n->is_default)
        note(what, cap,
             n->is_default ? "now the default version" : "no longer the default version");
}

/* Notes a feature's metadata changes (default, description, tags) into what. */
static void feature_meta(const catalog_feature_t *o, const catalog_feature_t *n, char *what,
                         size_t cap)
{
    if (o->has_default != n->has_default ||
        (o->has_default && !catalog_value_equal(&o->default_value, &n->default_value)))
        note(what, cap, "default");
    if (!str_eq(o->description, n->description))
        note(what, cap, "description");
    if (!tags_eq(o->tags, o->n_tags, n->tags, n->n_tags))
        note(what, cap, "tags");
}

static void diff_feature(planner_t *P, const catalog_view_t *v, const catalog_feature_t *o,
                         const catalog_feature_t *n)
{
    char obj[200];
    snprintf(obj, sizeof obj, "feature %s@v%" PRIu32 ":%s", v->name, v->version, n->name);
    if (o->dtype != n->dtype) {
        add(P, CATALOG_CHANGE_CHANGED, true, obj,
            "dtype changed from %s to %s: stored values keep the old type; add a new view "
            "version with the new dtype instead",
            catalog_dtype_name(o->dtype), catalog_dtype_name(n->dtype));
        return;
    }
    if (!rules_eq(&o->validation, &n->validation)) {
        char a[140], b[140];
        rules_text(&o->validation, a, sizeof a);
        rules_text(&n->validation, b, sizeof b);
        bool tight = tightened(&o->validation, &n->validation);
        add(P, CATALOG_CHANGE_CHANGED, false, obj, "validation %s: [%s] -> [%s]%s",
            tight ? "tightened" : "widened", a, b,
            tight ? "; stored rows are not re-checked, new writes must pass" : "");
    }
    char what[160] = "";
    feature_meta(o, n, what, sizeof what);
    if (o->index != n->index) {
        char moved[64];
        snprintf(moved, sizeof moved, "position %" PRIu32 " -> %" PRIu32, o->index, n->index);
        note(what, sizeof what, moved);
    }
    if (what[0] != '\0')
        add(P, CATALOG_CHANGE_CHANGED, false, obj, "changed: %s (stored rows are unaffected)",
            what);
}

static const catalog_feature_t *feature_named(const catalog_view_t *v, const char *name)
{
    for (size_t i = 0; i < v->n_features; i++) {
        if (strcmp(v->features[i].name, name) == 0)
            return &v->features[i];
    }
    return NULL;
}

static void entities_text(const catalog_view_t *v, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < v->n_entities && off < cap; i++)
        off +=
            (size_t)snprintf(buf + off, cap - off, "%s%s", i > 0 ? ", " : "", v->entities[i]->name);
}

static void diff_view(planner_t *P, const catalog_view_t *o, const catalog_view_t *n)
{
    char obj[200], a[160], b[160];
    snprintf(obj, sizeof obj, "feature_view %s@v%" PRIu32, n->name, n->version);
    if (!join_keys_eq(o->join_keys, o->n_join_keys, n->join_keys, n->n_join_keys) ||
        o->n_entities != n->n_entities) {
        entities_text(o, a, sizeof a);
        entities_text(n, b, sizeof b);
        add(P, CATALOG_CHANGE_CHANGED, true, obj,
            "entities changed from [%s] to [%s]: every stored row is keyed by the old entity "
            "key; add a new view version instead",
            a, b);
    }
    char what[200] = "";
    if (o->ttl_seconds != n->ttl_seconds) {
        char x[32], y[32], t[80];
        catalog__format_duration(o->ttl_seconds, x, sizeof x);
        catalog__format_duration(n->ttl_seconds, y, sizeof y);
        snprintf(t, sizeof t, "ttl %s -> %s", x, y);
        note(what, sizeof what, t);
    }
    if (o->online != n->online)
        note(what, sizeof what, n->online ? "now online" : "now offline");
    if (o->history != n->history)
        note(what, sizeof what, n->history ? "now keeps history" : "no longer keeps history");
    else if (o->history_retention_s != n->history_retention_s)
        note(what, sizeof what, "history retention");
    view_meta(o, n, what, sizeof what);
    if (what[0] != '\0')
        add(P, CATALOG_CHANGE_CHANGED, false, obj, "changed: %s", what);

    for (size_t i = 0; i < o->n_features; i++) {
        const catalog_feature_t *f = &o->features[i];
        const catalog_feature_t *nf = feature_named(n, f->name);
        if (nf != NULL) {
            diff_feature(P, n, f, nf);
            continue;
        }
        char fobj[200];
        snprintf(fobj, sizeof fobj, "feature %s@v%" PRIu32 ":%s", o->name, o->version, f->name);
        add(P, CATALOG_CHANGE_REMOVED, true, fobj,
            "feature removed from an existing version: its stored values are dropped and "
            "readers of it fail; add a new view version without it instead");
    }
    for (size_t i = 0; i < n->n_features; i++) {
        const catalog_feature_t *f = &n->features[i];
        if (feature_named(o, f->name) != NULL)
            continue;
        char fobj[200];
        snprintf(fobj, sizeof fobj, "feature %s@v%" PRIu32 ":%s", n->name, n->version, f->name);
        add(P, CATALOG_CHANGE_ADDED, false, fobj,
            "new %s feature in an existing version: stored rows read it as %s until written",
            catalog_dtype_name(f->dtype), f->has_default ? "its default" : "missing");
    }
}

static void diff_views(planner_t *P, const catalog_t *from, const catalog_t *to)
{
    char obj[200];
    for (size_t i = 0; i < to->n_views; i++) {
        const catalog_view_t *v = &to->views[i], *old = NULL;
        if (from != NULL && catalog_find_view(from, v->name, v->version, &old) == 0 &&
            old->on_demand == NULL) {
            diff_view(P, old, v);
            continue;
        }
        const catalog_view_t *any = NULL;
        bool known = from != NULL && catalog_find_view(from, v->name, 0, &any) == 0;
        snprintf(obj, sizeof obj, "feature_view %s@v%" PRIu32, v->name, v->version);
        add(P, CATALOG_CHANGE_ADDED, false, obj, "%s with %zu feature%s%s",
            known ? "new version of an existing view" : "new feature view", v->n_features,
            v->n_features == 1 ? "" : "s",
            v->is_default && known ? "; it becomes the default" : "");
    }
    for (size_t i = 0; from != NULL && i < from->n_views; i++) {
        const catalog_view_t *v = &from->views[i], *now = NULL;
        if (catalog_find_view(to, v->name, v->version, &now) == 0 && now->on_demand == NULL)
            continue;
        snprintf(obj, sizeof obj, "feature_view %s@v%" PRIu32, v->name, v->version);
        add(P, CATALOG_CHANGE_REMOVED, true, obj,
            "view version removed: its stored data is dropped; keep it in the catalog until "
            "no reader needs it, then tear it down explicitly");
    }
}

static bool sources_eq(const catalog_on_demand_t *a, const catalog_on_demand_t *b)
{
    if (a->n_views != b->n_views || a->n_requests != b->n_requests)
        return false;
    for (size_t i = 0; i < a->n_views; i++) {
        if (strcmp(a->views[i]->name, b->views[i]->name) != 0 ||
            a->views[i]->version != b->views[i]->version)
            return false;
    }
    for (size_t i = 0; i < a->n_requests; i++) {
        if (strcmp(a->requests[i]->name, b->requests[i]->name) != 0)
            return false;
    }
    return true;
}

static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.';
}

/* s with blanks outside string literals dropped, but for one space where it separates two
 * words ("not x" stays apart from "notx"). Returns: malloc'd, or NULL on OOM. */
static char *expr_norm(const char *s)
{
    char *out = malloc(strlen(s) + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    char q = 0;
    for (const char *p = s; *p != '\0'; p++) {
        bool blank = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';
        if (q == 0 && blank) {
            while (p[1] == ' ' || p[1] == '\t' || p[1] == '\n' || p[1] == '\r')
                p++;
            if (n > 0 && word_char(out[n - 1]) && word_char(p[1]))
                out[n++] = ' ';
            continue;
        }
        out[n++] = *p;
        if (q == 0 && (*p == '\'' || *p == '"'))
            q = *p;
        else if (q != 0 && *p == '\\' && p[1] != '\0')
            out[n++] = *++p;
        else if (q != 0 && *p == q)
            q = 0;
    }
    out[n] = '\0';
    return out;
}

/* Whether two expressions are the same but for blanks that separate nothing. */
static bool expr_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    char *x = expr_norm(a), *y = expr_norm(b);
    /* Out of memory: say they differ (the plan then asks for a new version; nothing breaks). */
    bool eq = x != NULL && y != NULL && strcmp(x, y) == 0;
    free(x);
    free(y);
    return eq;
}

/* On-demand views hold no data, but a version is a contract with its readers: what a version
 * computes may not change under them (a new version may compute anything). */
static void diff_odfv(planner_t *P, const catalog_view_t *o, const catalog_view_t *n)
{
    char obj[200];
    snprintf(obj, sizeof obj, "on_demand_feature_view %s@v%" PRIu32, n->name, n->version);
    if (!sources_eq(o->on_demand, n->on_demand))
        add(P, CATALOG_CHANGE_CHANGED, true, obj,
            "sources changed inside an existing version (or a source without @vN now means "
            "another version of its view): its readers would get other values; pin sources "
            "with @vN, or add a new version instead");
    char what[200] = "";
    view_meta(o, n, what, sizeof what);
    if (what[0] != '\0')
        add(P, CATALOG_CHANGE_CHANGED, false, obj, "changed: %s", what);
    for (size_t i = 0; i < o->n_features; i++) {
        const catalog_feature_t *f = &o->features[i];
        const catalog_feature_t *nf = feature_named(n, f->name);
        char fobj[200];
        snprintf(fobj, sizeof fobj, "feature %s@v%" PRIu32 ":%s", n->name, n->version, f->name);
        if (nf == NULL) {
            add(P, CATALOG_CHANGE_REMOVED, true, fobj,
                "on-demand feature removed from an existing version: readers of it fail; add a "
                "new version without it instead");
        } else if (f->dtype != nf->dtype) {
            add(P, CATALOG_CHANGE_CHANGED, true, fobj,
                "dtype changed from %s to %s inside an existing version; add a new version "
                "instead",
                catalog_dtype_name(f->dtype), catalog_dtype_name(nf->dtype));
        } else if (!expr_eq(f->expression, nf->expression)) {
            add(P, CATALOG_CHANGE_CHANGED, true, fobj,
                "expression changed inside an existing version ('%.80s' -> '%.80s'): readers "
                "of this version would get other values; add a new version instead",
                f->expression, nf->expression);
        } else if (!rules_eq(&f->validation, &nf->validation)) {
            char a[140], b[140];
            rules_text(&f->validation, a, sizeof a);
            rules_text(&nf->validation, b, sizeof b);
            bool tight = tightened(&f->validation, &nf->validation);
            add(P, CATALOG_CHANGE_CHANGED, tight, fobj, "validation %s: [%s] -> [%s]%s",
                tight ? "tightened" : "widened", a, b,
                tight ? ": values its readers get now would read INVALID; add a new version "
                        "instead"
                      : "");
        } else {
            char meta[160] = "";
            feature_meta(f, nf, meta, sizeof meta);
            if (meta[0] != '\0')
                add(P, CATALOG_CHANGE_CHANGED, false, fobj, "changed: %s", meta);
        }
    }
    for (size_t i = 0; i < n->n_features; i++) {
        const catalog_feature_t *f = &n->features[i];
        if (feature_named(o, f->name) != NULL)
            continue;
        char fobj[200];
        snprintf(fobj, sizeof fobj, "feature %s@v%" PRIu32 ":%s", n->name, n->version, f->name);
        add(P, CATALOG_CHANGE_ADDED, false, fobj, "new on-demand %s feature: %.120s",
            catalog_dtype_name(f->dtype), f->expression);
    }
}

static void diff_odfvs(planner_t *P, const catalog_t *from, const catalog_t *to)
{
    char obj[200];
    for (size_t i = 0; i < to->n_odfvs; i++) {
        const catalog_view_t *v = &to->odfvs[i], *old = NULL;
        if (from != NULL && catalog_find_view(from, v->name, v->version, &old) == 0 &&
            old->on_demand != NULL) {
            diff_odfv(P, old, v);
            continue;
        }
        snprintf(obj, sizeof obj, "on_demand_feature_view %s@v%" PRIu32, v->name, v->version);
        add(P, CATALOG_CHANGE_ADDED, false, obj, "new on-demand feature view with %zu feature%s",
            v->n_features, v->n_features == 1 ? "" : "s");
    }
    for (size_t i = 0; from != NULL && i < from->n_odfvs; i++) {
        const catalog_view_t *v = &from->odfvs[i], *now = NULL;
        if (catalog_find_view(to, v->name, v->version, &now) == 0 && now->on_demand != NULL)
            continue;
        snprintf(obj, sizeof obj, "on_demand_feature_view %s@v%" PRIu32, v->name, v->version);
        add(P, CATALOG_CHANGE_REMOVED, true, obj,
            "on-demand view version removed: callers requesting it get NOT_FOUND");
    }
    for (size_t i = 0; from != NULL && i < from->n_requests; i++) {
        bool kept = false;
        for (size_t j = 0; j < to->n_requests && !kept; j++)
            kept = strcmp(to->requests[j].name, from->requests[i].name) == 0;
        if (!kept) {
            snprintf(obj, sizeof obj, "request_source %s", from->requests[i].name);
            add(P, CATALOG_CHANGE_REMOVED, false, obj, "request source removed");
        }
    }
    for (size_t i = 0; i < to->n_requests; i++) {
        const catalog_request_source_t *r = &to->requests[i], *o = NULL;
        for (size_t j = 0; from != NULL && j < from->n_requests && o == NULL; j++)
            o = strcmp(from->requests[j].name, r->name) == 0 ? &from->requests[j] : NULL;
        snprintf(obj, sizeof obj, "request_source %s", r->name);
        if (o == NULL) {
            add(P, CATALOG_CHANGE_ADDED, false, obj, "new request source with %zu field%s",
                r->n_fields, r->n_fields == 1 ? "" : "s");
            continue;
        }
        /* A field whose type changed changes what its readers compute (and what callers
         * must send); new or removed fields only change what may be sent. */
        bool same = o->n_fields == r->n_fields, retyped = false;
        for (size_t k = 0; k < r->n_fields; k++) {
            bool found = false;
            for (size_t j = 0; j < o->n_fields && !found; j++) {
                if (strcmp(o->fields[j].name, r->fields[k].name) != 0)
                    continue;
                found = true;
                if (o->fields[j].dtype != r->fields[k].dtype) {
                    retyped = true;
                    add(P, CATALOG_CHANGE_CHANGED, true, obj,
                        "field %s changed from %s to %s: callers and the on-demand views that "
                        "read it would compute other values; add a new field instead",
                        r->fields[k].name, catalog_dtype_name(o->fields[j].dtype),
                        catalog_dtype_name(r->fields[k].dtype));
                }
            }
            same = same && found;
        }
        if (!same && !retyped)
            add(P, CATALOG_CHANGE_CHANGED, false, obj,
                "schema changed: callers send the new fields from their next request");
    }
}

static bool refs_eq(const catalog_service_t *a, const catalog_service_t *b)
{
    if (a->n_features != b->n_features)
        return false;
    for (size_t i = 0; i < a->n_features; i++) {
        const catalog_feature_ref_t *x = &a->features[i], *y = &b->features[i];
        if (strcmp(x->view->name, y->view->name) != 0 || x->view->version != y->view->version ||
            strcmp(x->feature->name, y->feature->name) != 0)
            return false;
    }
    return true;
}

static void diff_services(planner_t *P, const catalog_t *from, const catalog_t *to)
{
    char obj[200];
    for (size_t i = 0; i < to->n_services; i++) {
        const catalog_service_t *s = &to->services[i], *old = NULL;
        snprintf(obj, sizeof obj, "feature_service %s", s->name);
        if (from == NULL || catalog_find_service(from, s->name, &old) != 0) {
            add(P, CATALOG_CHANGE_ADDED, false, obj, "new feature service with %zu feature%s",
                s->n_features, s->n_features == 1 ? "" : "s");
            continue;
        }
        char what[160] = "";
        if (!refs_eq(old, s)) {
            char t[80];
            snprintf(t, sizeof t, "features (%zu -> %zu)", old->n_features, s->n_features);
            note(what, sizeof what, t);
        }
        if (!str_eq(old->description, s->description))
            note(what, sizeof what, "description");
        if (what[0] != '\0')
            add(P, CATALOG_CHANGE_CHANGED, false, obj,
                "changed: %s; callers get the new feature list on their next request", what);
    }
    for (size_t i = 0; from != NULL && i < from->n_services; i++) {
        const catalog_service_t *s = &from->services[i], *now = NULL;
        if (catalog_find_service(to, s->name, &now) == 0)
            continue;
        snprintf(obj, sizeof obj, "feature_service %s", s->name);
        add(P, CATALOG_CHANGE_REMOVED, true, obj,
            "feature service removed: callers requesting it get NOT_FOUND");
    }
}

static bool upstream_eq(const catalog_model_t *a, const catalog_model_t *b)
{
    if (a->has_upstream != b->has_upstream)
        return false;
    if (!a->has_upstream)
        return true;
    const catalog_upstream_t *x = &a->upstream, *y = &b->upstream;
    return str_eq(x->target, y->target) && str_eq(x->model_name, y->model_name) &&
           str_eq(x->signature_name, y->signature_name) && x->timeout_ms == y->timeout_ms &&
           x->keep_entity_inputs == y->keep_entity_inputs && x->tls == y->tls;
}

static bool inputs_eq(const catalog_model_t *a, const catalog_model_t *b)
{
    if (a->n_entity_inputs != b->n_entity_inputs)
        return false;
    for (size_t i = 0; i < a->n_entity_inputs; i++) {
        if (!str_eq(a->entity_inputs[i].input, b->entity_inputs[i].input) ||
            !str_eq(a->entity_inputs[i].join_key, b->entity_inputs[i].join_key))
            return false;
    }
    return true;
}

static const catalog_model_t *same_model(const catalog_t *c, const catalog_model_t *m)
{
    for (size_t i = 0; c != NULL && i < c->n_models; i++) {
        const catalog_model_t *x = &c->models[i];
        if (strcmp(x->name, m->name) == 0 && x->version == m->version &&
            str_eq(x->version_label, m->version_label))
            return x;
    }
    return NULL;
}

static void model_obj(const catalog_model_t *m, char *buf, size_t cap)
{
    if (m->version_label[0] != '\0')
        snprintf(buf, cap, "model %s@v%" PRId64 " (%s)", m->name, m->version, m->version_label);
    else
        snprintf(buf, cap, "model %s@v%" PRId64, m->name, m->version);
}

static void diff_models(planner_t *P, const catalog_t *from, const catalog_t *to)
{
    char obj[200];
    for (size_t i = 0; i < to->n_models; i++) {
        const catalog_model_t *m = &to->models[i];
        const catalog_model_t *old = same_model(from, m);
        model_obj(m, obj, sizeof obj);
        if (old == NULL) {
            add(P, CATALOG_CHANGE_ADDED, false, obj, "new model binding to feature service %s",
                m->service->name);
            continue;
        }
        char what[160] = "";
        if (strcmp(old->service->name, m->service->name) != 0)
            note(what, sizeof what, "feature_service");
        if (!inputs_eq(old, m))
            note(what, sizeof what, "entity_inputs");
        if (old->on_missing != m->on_missing)
            note(what, sizeof what, "on_missing");
        if (!upstream_eq(old, m))
            note(what, sizeof what, "upstream");
        if (what[0] != '\0')
            add(P, CATALOG_CHANGE_CHANGED, false, obj, "changed: %s", what);
    }
    for (size_t i = 0; from != NULL && i < from->n_models; i++) {
        const catalog_model_t *m = &from->models[i];
        if (same_model(to, m) != NULL)
            continue;
        model_obj(m, obj, sizeof obj);
        add(P, CATALOG_CHANGE_REMOVED, true, obj,
            "model binding removed: Predict calls for it get NOT_FOUND");
    }
}

int catalog_plan(const catalog_t *from, const catalog_t *to, catalog_plan_t *out)
{
    catalog_plan_t plan = {NULL, 0, 0};
    planner_t P = {&plan, 0, false};
    if (to == NULL)
        return -EINVAL;
    if (from != NULL && strcmp(from->project, to->project) != 0)
        add(&P, CATALOG_CHANGE_CHANGED, true, "project",
            "project renamed from '%s' to '%s': a data directory belongs to one project",
            from->project, to->project);
    diff_entities(&P, from, to);
    diff_views(&P, from, to);
    diff_odfvs(&P, from, to);
    diff_services(&P, from, to);
    diff_models(&P, from, to);
    if (P.nomem) {
        catalog_plan_clear(&plan);
        return -ENOMEM;
    }
    *out = plan;
    return 0;
}

void catalog_plan_clear(catalog_plan_t *plan)
{
    if (plan == NULL)
        return;
    free(plan->items);
    plan->items = NULL;
    plan->count = 0;
    plan->n_breaking = 0;
}
