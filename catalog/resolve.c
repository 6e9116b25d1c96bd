/* catalog/resolve.c - cross-object checks and the immutable snapshot with its hash indexes. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "catalog/expr_int.h"

/*
 * Resolution runs in dependency order (entities, views, services, models) and keeps going past
 * errors: the final arrays are built even for a catalog with mistakes, because later checks
 * (a service's references, a model's join keys) need them, and every mistake must come out in
 * one run. Only a catalog without errors is handed to the caller.
 */

typedef struct resolver {
    catalog_t *c;
    catalog__draft_t *d;
    catalog_errors_t *errs;
    catalog__index_t broken; /* services with unresolved references: models skip their checks */
    bool nomem;
} resolver_t;

static void err_at(resolver_t *R, const catalog__pos_t *p, const char *fmt, ...)
    CATALOG__PRINTF(3, 4);

static void err_at(resolver_t *R, const catalog__pos_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    catalog__verror(R->errs, p->file, p->line, p->col, p->key, fmt, ap);
    va_end(ap);
}

static void *alloc(resolver_t *R, base_arena_t *a, size_t n)
{
    void *p = catalog__alloc(a, n);
    if (p == NULL)
        R->nomem = true;
    return p;
}

static const char *keyf(resolver_t *R, const char *fmt, ...) CATALOG__PRINTF(2, 3);

/* Index keys live in the catalog arena: they must outlive resolution. */
static const char *keyf(resolver_t *R, const char *fmt, ...)
{
    char buf[CATALOG_MAX_NAME * 2 + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    const char *k = base_arena_strndup(&R->c->arena, buf, strlen(buf));
    if (k == NULL) {
        R->nomem = true;
        return "";
    }
    return k;
}

static void put(catalog__index_t *ix, const char *key, const void *val)
{
    if (key[0] != '\0')
        (void)catalog__index_put(ix, key, strlen(key), val);
}

static const void *lookup(const catalog__index_t *ix, const char *key)
{
    return catalog__index_get(ix, key, strlen(key));
}

/* ------------------------------------------------------------------------------------------ */
/* Entities                                                                                    */

static int cmp_entity(const void *a, const void *b)
{
    return strcmp(((const catalog_entity_t *)a)->name, ((const catalog_entity_t *)b)->name);
}

static void resolve_entities(resolver_t *R)
{
    catalog__draft_t *d = R->d;
    catalog_t *c = R->c;
    catalog__index_t seen = {0};
    if (catalog__index_init(&d->scratch, &seen, d->n_entities) != 0) {
        R->nomem = true;
        return;
    }
    c->entities = alloc(R, &c->arena, (d->n_entities + 1) * sizeof *c->entities);
    if (c->entities == NULL)
        return;
    for (size_t i = 0; i < d->n_entities; i++) {
        catalog__draft_entity_t *de = &d->entities[i];
        const catalog__draft_entity_t *first = lookup(&seen, de->e.name);
        if (first != NULL) {
            err_at(R, &de->name_pos, "duplicate entity '%s' (first defined at %s:%d)", de->e.name,
                   first->name_pos.file, first->name_pos.line);
            continue;
        }
        put(&seen, de->e.name, de);
        c->entities[c->n_entities++] = de->e;
    }
    qsort(c->entities, c->n_entities, sizeof *c->entities, cmp_entity);
    if (catalog__index_init(&c->arena, &c->ix_entities, c->n_entities) != 0) {
        R->nomem = true;
        return;
    }
    for (size_t i = 0; i < c->n_entities; i++)
        put(&c->ix_entities, c->entities[i].name, &c->entities[i]);
}

/* ------------------------------------------------------------------------------------------ */
/* Feature views                                                                               */

/* Views by name, then version. */
static int cmp_view(const catalog_view_t *x, const catalog_view_t *y)
{
    int r = strcmp(x->name, y->name);
    if (r != 0)
        return r;
    return x->version < y->version ? -1 : x->version > y->version;
}

static int cmp_draft_view(const void *a, const void *b)
{
    return cmp_view(&(*(const catalog__draft_view_t *const *)a)->v,
                    &(*(const catalog__draft_view_t *const *)b)->v);
}

static int cmp_draft_odfv(const void *a, const void *b)
{
    return cmp_view(&(*(const catalog__draft_odfv_t *const *)a)->v,
                    &(*(const catalog__draft_odfv_t *const *)b)->v);
}

/* Fills v's entity pointers and flattened join keys; reports unknown and clashing entities. */
static void view_entities(resolver_t *R, catalog__draft_view_t *dv, catalog_view_t *v,
                          const char *const *entity_names)
{
    catalog_t *c = R->c;
    size_t n = dv->n_entity_names, n_keys = 0;
    v->entities = NULL;
    v->n_entities = 0;
    v->join_keys = NULL;
    v->n_join_keys = 0;
    if (n == 0)
        return;
    const catalog_entity_t **ents = alloc(R, &c->arena, n * sizeof *ents);
    const catalog__pos_t **at = alloc(R, &R->d->scratch, n * sizeof *at);
    if (ents == NULL || at == NULL)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = dv->entity_names[i];
        const catalog_entity_t *e = lookup(&c->ix_entities, name);
        if (e == NULL) {
            char hint[160];
            catalog__suggest(name, entity_names, c->n_entities, hint, sizeof hint);
            err_at(R, &dv->entity_pos[i], "unknown entity '%s'%s", name, hint);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = ents[j] == e;
        if (dup) {
            err_at(R, &dv->entity_pos[i], "entity '%s' is listed twice", name);
            continue;
        }
        at[k] = &dv->entity_pos[i];
        ents[k++] = e;
        n_keys += e->n_join_keys;
    }
    catalog_join_key_t *keys = alloc(R, &c->arena, (n_keys + 1) * sizeof *keys);
    if (keys == NULL)
        return;
    size_t nk = 0;
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; j < ents[i]->n_join_keys; j++) {
            const catalog_join_key_t *jk = &ents[i]->join_keys[j];
            if (jk->name == NULL)
                continue;
            /* Two entities sharing a join key would make the entity key ambiguous. */
            for (size_t p = 0; p < nk; p++) {
                if (strcmp(keys[p].name, jk->name) != 0)
                    continue;
                const catalog_entity_t *other = NULL;
                for (size_t q = 0; q < i && other == NULL; q++) {
                    for (size_t r = 0; r < ents[q]->n_join_keys; r++) {
                        if (ents[q]->join_keys[r].name != NULL &&
                            strcmp(ents[q]->join_keys[r].name, jk->name) == 0)
                            other = ents[q];
                    }
                }
                if (keys[p].dtype != jk->dtype)
                    err_at(R, at[i],
                           "entity type mismatch: join key '%s' is %s in entity '%s' but %s in "
                           "entity '%s'",
                           jk->name, catalog_dtype_name(keys[p].dtype),
                           other != NULL ? other->name : "?", catalog_dtype_name(jk->dtype),
                           ents[i]->name);
                else
                    err_at(R, at[i], "join key '%s' comes from both entity '%s' and entity '%s'",
                           jk->name, other != NULL ? other->name : "?", ents[i]->name);
            }
            keys[nk++] = *jk;
        }
    }
    v->entities = ents;
    v->n_entities = k;
    v->join_keys = keys;
    v->n_join_keys = nk;
}

/* Runs of one name in vs (sorted by name, then version): at most one marked default (marked[i],
 * at dpos[i]); otherwise the highest version is the default. what: "feature view" or
 * "on-demand feature view", for the error. */
static void mark_defaults(resolver_t *R, catalog_view_t *vs, size_t m, const bool *marked,
                          const catalog__pos_t *const *dpos, const char *what)
{
    for (size_t i = 0; i < m;) {
        size_t j = i, mk = SIZE_MAX;
        while (j < m && strcmp(vs[j].name, vs[i].name) == 0) {
            if (marked[j]) {
                if (mk != SIZE_MAX)
                    err_at(R, dpos[j],
                           "more than one version of %s '%s' is marked default: true (v%" PRIu32
                           " and v%" PRIu32 ")",
                           what, vs[j].name, vs[mk].version, vs[j].version);
                else
                    mk = j;
            }
            j++;
        }
        vs[mk != SIZE_MAX ? mk : j - 1].is_default = true;
        i = j;
    }
}

/* Puts each view version (and each default version by its bare name) and its features into the
 * catalog's view and feature indexes. */
static void index_views(resolver_t *R, const catalog_view_t *vs, size_t m)
{
    catalog_t *c = R->c;
    for (size_t i = 0; i < m; i++) {
        const catalog_view_t *v = &vs[i];
        put(&c->ix_views, keyf(R, "%s@v%" PRIu32, v->name, v->version), v);
        if (v->is_default)
            put(&c->ix_views, v->name, v);
        for (size_t f = 0; f < v->n_features; f++) {
            if (v->features[f].name == NULL)
                continue;
            put(&c->ix_features,
                keyf(R, "%s@v%" PRIu32 ":%s", v->name, v->version, v->features[f].name),
                &v->features[f]);
            if (v->is_default)
                put(&c->ix_features, keyf(R, "%s:%s", v->name, v->features[f].name),
                    &v->features[f]);
        }
    }
}

static void resolve_views(resolver_t *R)
{
    catalog__draft_t *d = R->d;
    catalog_t *c = R->c;
    size_t n = d->n_views;
    catalog__draft_view_t **order = alloc(R, &d->scratch, (n + 1) * sizeof *order);
    const char **entity_names = alloc(R, &d->scratch, (c->n_entities + 1) * sizeof *entity_names);
    catalog__index_t seen = {0};
    if (order == NULL || entity_names == NULL || catalog__index_init(&d->scratch, &seen, n) != 0) {
        R->nomem = true;
        return;
    }
    for (size_t i = 0; i < c->n_entities; i++)
        entity_names[i] = c->entities[i].name;

    /* Duplicates first, in source order, so "first defined at" points at the earlier one. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        catalog__draft_view_t *dv = &d->views[i];
        const char *key = keyf(R, "%s@v%" PRIu32, dv->v.name, dv->v.version);
        const catalog__draft_view_t *first = lookup(&seen, key);
        if (first != NULL) {
            err_at(R, &dv->version_pos,
                   "duplicate feature view '%s' version %" PRIu32 " (first defined at %s:%d)",
                   dv->v.name, dv->v.version, first->name_pos.file, first->name_pos.line);
            continue;
        }
        put(&seen, key, dv);
        order[m++] = dv;
    }
    qsort(order, m, sizeof *order, cmp_draft_view);

    c->views = alloc(R, &c->arena, (m + 1) * sizeof *c->views);
    if (c->views == NULL)
        return;
    c->n_views = m;
    for (size_t i = 0; i < m; i++) {
        c->views[i] = order[i]->v;
        c->views[i].id = (uint32_t)i;
        if (c->views[i].description == NULL)
            c->views[i].description = "";
        if (c->views[i].owner == NULL)
            c->views[i].owner = "";
        if (c->views[i].push_source == NULL)
            c->views[i].push_source = "";
        view_entities(R, order[i], &c->views[i], entity_names);
    }

    bool *marked = alloc(R, &d->scratch, (m + 1) * sizeof *marked);
    const catalog__pos_t **dpos = alloc(R, &d->scratch, (m + 1) * sizeof *dpos);
    if (marked == NULL || dpos == NULL)
        return;
    for (size_t i = 0; i < m; i++) {
        marked[i] = order[i]->marked_default;
        dpos[i] = &order[i]->default_pos;
    }
    mark_defaults(R, c->views, m, marked, dpos, "feature view");

    /* On-demand views join the same indexes (resolve_odfvs()). */
    size_t n_feat = 0, n_all = m + d->n_odfvs;
    for (size_t i = 0; i < m; i++)
        n_feat += c->views[i].n_features;
    for (size_t i = 0; i < d->n_odfvs; i++)
        n_feat += d->odfvs[i].v.n_features;
    if (catalog__index_init(&c->arena, &c->ix_views, 2 * n_all) != 0 ||
        catalog__index_init(&c->arena, &c->ix_features, 2 * n_feat) != 0) {
        R->nomem = true;
        return;
    }
    index_views(R, c->views, m);
}

/* ------------------------------------------------------------------------------------------ */
/* Request sources and on-demand feature views                                                 */

static int cmp_request(const void *a, const void *b)
{
    return strcmp(((const catalog_request_source_t *)a)->name,
                  ((const catalog_request_source_t *)b)->name);
}

static void resolve_requests(resolver_t *R)
{
    catalog__draft_t *d = R->d;
    catalog_t *c = R->c;
    catalog__index_t seen = {0};
    c->requests = alloc(R, &c->arena, (d->n_requests + 1) * sizeof *c->requests);
    if (c->requests == NULL || catalog__index_init(&d->scratch, &seen, d->n_requests) != 0) {
        R->nomem = true;
        return;
    }
    for (size_t i = 0; i < d->n_requests; i++) {
        catalog__draft_request_t *dr = &d->requests[i];
        const catalog__draft_request_t *first = lookup(&seen, dr->r.name);
        if (first != NULL) {
            err_at(R, &dr->name_pos, "duplicate request source '%s' (first defined at %s:%d)",
                   dr->r.name, first->name_pos.file, first->name_pos.line);
            continue;
        }
        put(&seen, dr->r.name, dr);
        if (lookup(&c->ix_views, dr->r.name) != NULL) {
            err_at(R, &dr->name_pos,
                   "request source '%s' has the name of a feature view: sources are named "
                   "without a version, so names must differ",
                   dr->r.name);
            continue;
        }
        /* A request carries its data as one flat map (Feast's request_context): a field
         * name means one thing, whichever source declares it. */
        for (size_t f = 0; f < dr->r.n_fields; f++) {
            const catalog_request_field_t *fl = &dr->r.fields[f];
            for (size_t o = 0; fl->name != NULL && o < c->n_requests; o++) {
                for (size_t g = 0; g < c->requests[o].n_fields; g++) {
                    const catalog_request_field_t *og = &c->requests[o].fields[g];
                    if (og->name != NULL && strcmp(og->name, fl->name) == 0 &&
                        og->dtype != fl->dtype)
                        err_at(R, &dr->name_pos,
                               "request field '%s' is %s here but %s in request source '%s': "
                               "requests send one value per name, so the types must agree",
                               fl->name, catalog_dtype_name(fl->dtype),
                               catalog_dtype_name(og->dtype), c->requests[o].name);
                }
            }
        }
        c->requests[c->n_requests++] = dr->r;
    }
    qsort(c->requests, c->n_requests, sizeof *c->requests, cmp_request);
    if (catalog__index_init(&c->arena, &c->ix_requests, c->n_requests) != 0) {
        R->nomem = true;
        return;
    }
    for (size_t i = 0; i < c->n_requests; i++)
        put(&c->ix_requests, c->requests[i].name, &c->requests[i]);
}

typedef struct expr_err_ctx {
    resolver_t *R;
    const catalog__pos_t *pos;
} expr_err_ctx_t;

static void expr_err(void *arg, size_t col, const char *msg)
{
    expr_err_ctx_t *x = arg;
    err_at(x->R, x->pos, "column %zu of the expression: %s", col, msg);
}

/* The join keys of an on-demand view: its feature view sources' together, each name once. */
static void odfv_keys(resolver_t *R, catalog__draft_odfv_t *dv, catalog_view_t *v,
                      const catalog_view_t *const *views, size_t n_views)
{
    catalog_t *c = R->c;
    size_t n_keys = 0, n_ents = 0;
    for (size_t i = 0; i < n_views; i++) {
        n_keys += views[i]->n_join_keys;
        n_ents += views[i]->n_entities;
    }
    catalog_join_key_t *keys = alloc(R, &c->arena, (n_keys + 1) * sizeof *keys);
    const catalog_entity_t **ents = alloc(R, &c->arena, (n_ents + 1) * sizeof *ents);
    if (keys == NULL || ents == NULL)
        return;
    size_t nk = 0, ne = 0;
    for (size_t i = 0; i < n_views; i++) {
        for (size_t e = 0; e < views[i]->n_entities; e++) {
            bool have = false;
            for (size_t j = 0; j < ne && !have; j++)
                have = ents[j] == views[i]->entities[e];
            if (!have)
                ents[ne++] = views[i]->entities[e];
        }
        for (size_t k = 0; k < views[i]->n_join_keys; k++) {
            const catalog_join_key_t *jk = &views[i]->join_keys[k];
            bool have = false;
            for (size_t j = 0; j < nk && !have; j++) {
                if (strcmp(keys[j].name, jk->name) != 0)
                    continue;
                have = true;
                if (keys[j].dtype != jk->dtype)
                    err_at(R, &dv->sources_pos,
                           "entity type mismatch: join key '%s' is %s in one source and %s in "
                           "feature view '%s@v%" PRIu32 "'",
                           jk->name, catalog_dtype_name(keys[j].dtype),
                           catalog_dtype_name(jk->dtype), views[i]->name, views[i]->version);
            }
            if (!have)
                keys[nk++] = *jk;
        }
    }
    v->join_keys = keys;
    v->n_join_keys = nk;
    v->entities = ents;
    v->n_entities = ne;
}

/* Resolves one on-demand view's sources and compiles its features into v. */
static void resolve_odfv(resolver_t *R, catalog__draft_odfv_t *dv, catalog_view_t *v)
{
    catalog__draft_t *d = R->d;
    catalog_t *c = R->c;
    size_t n = dv->n_sources;
    catalog__scope_src_t *srcs = alloc(R, &d->scratch, (n + 1) * sizeof *srcs);
    const catalog_view_t **views = alloc(R, &c->arena, (n + 1) * sizeof *views);
    const catalog_request_source_t **reqs = alloc(R, &c->arena, (n + 1) * sizeof *reqs);
    catalog_on_demand_t *od = alloc(R, &c->arena, sizeof *od);
    if (srcs == NULL || views == NULL || reqs == NULL || od == NULL)
        return;
    size_t ns = 0, nv = 0, nr = 0;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const char *ref = dv->sources[i];
        const catalog__pos_t *pos = &dv->source_pos[i];
        const char *name = NULL;
        size_t name_len = 0;
        uint32_t version = 0;
        if (catalog__parse_view_ref(ref, strlen(ref), &name, &name_len, &version) != 0) {
            err_at(R, pos,
                   "malformed source '%s': expected a feature view (name or name@vN) or "
                   "a request source",
                   ref);
            ok = false;
            continue;
        }
        char nm[CATALOG_MAX_NAME + 1];
        snprintf(nm, sizeof nm, "%.*s", (int)name_len, name);
        const catalog_view_t *sv = NULL;
        if (catalog_find_view(c, nm, version, &sv) != 0)
            sv = NULL;
        const catalog_request_source_t *rq = version == 0 ? lookup(&c->ix_requests, nm) : NULL;
        if (sv != NULL && sv->on_demand != NULL)
            sv = NULL;
        if (sv == NULL && rq == NULL) {
            const catalog_view_t *odv = NULL;
            for (size_t j = 0; j < d->n_odfvs && odv == NULL; j++)
                odv = strcmp(d->odfvs[j].v.name, nm) == 0 ? &d->odfvs[j].v : NULL;
            if (odv != NULL)
                err_at(R, pos,
                       "source '%s' is an on-demand feature view: sources are stored feature "
                       "views and request sources",
                       ref);
            else
                err_at(R, pos, "unknown source '%s': no feature view or request source has it",
                       ref);
            ok = false;
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < ns && !dup; j++)
            dup = strcmp(srcs[j].name, nm) == 0;
        if (dup) {
            err_at(R, pos, "source '%s' is listed twice (expressions name sources without @vN)",
                   nm);
            ok = false;
            continue;
        }
        if (sv != NULL && !sv->online) {
            err_at(R, pos,
                   "source '%s' is not online: an on-demand view reads its sources with the "
                   "online features",
                   ref);
            ok = false;
            continue;
        }
        srcs[ns].name = sv != NULL ? sv->name : rq->name;
        srcs[ns].view = sv;
        srcs[ns].req = rq;
        ns++;
        if (sv != NULL)
            views[nv++] = sv;
        else
            reqs[nr++] = rq;
    }
    od->views = views;
    od->n_views = nv;
    od->requests = reqs;
    od->n_requests = nr;
    v->on_demand = od;
    odfv_keys(R, dv, v, views, nv);
    if (!ok || dv->sources_bad)
        return; /* expressions would only repeat what is said above */

    catalog__scope_t scope = {.srcs = srcs, .n_srcs = ns, .scratch = &d->scratch};
    catalog_feature_t *fs = (catalog_feature_t *)v->features;
    for (size_t i = 0; i < v->n_features; i++) {
        if (fs[i].expression == NULL || fs[i].dtype == CATALOG_DTYPE_INVALID)
            continue;
        expr_err_ctx_t x = {R, &dv->expr_pos[i]};
        int rc = catalog__expr_compile(&c->arena, fs[i].expression, &scope, fs[i].dtype, expr_err,
                                       &x, &fs[i].expr);
        if (rc == -ENOMEM)
            R->nomem = true;
    }
    catalog_input_t *inputs = alloc(R, &c->arena, (scope.n_inputs + 1) * sizeof *inputs);
    if (inputs == NULL)
        return;
    if (scope.n_inputs > 0)
        memcpy(inputs, scope.inputs, scope.n_inputs * sizeof *inputs);
    od->inputs = inputs;
    od->n_inputs = scope.n_inputs;
}

static void resolve_odfvs(resolver_t *R)
{
    catalog__draft_t *d = R->d;
    catalog_t *c = R->c;
    size_t n = d->n_odfvs;
    catalog__draft_odfv_t **order = alloc(R, &d->scratch, (n + 1) * sizeof *order);
    catalog__index_t seen = {0};
    if (order == NULL || catalog__index_init(&d->scratch, &seen, n) != 0) {
        R->nomem = true;
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        catalog__draft_odfv_t *dv = &d->odfvs[i];
        const char *key = keyf(R, "%s@v%" PRIu32, dv->v.name, dv->v.version);
        const catalog__draft_odfv_t *first = lookup(&seen, key);
        if (first != NULL) {
            err_at(R, &dv->version_pos,
                   "duplicate on-demand feature view '%s' version %" PRIu32
                   " (first defined at %s:%d)",
                   dv->v.name, dv->v.version, first->name_pos.file, first->name_pos.line);
            continue;
        }
        if (lookup(&c->ix_views, dv->v.name) != NULL) {
            err_at(R, &dv->name_pos,
                   "on-demand feature view '%s' has the name of a feature view: the two share "
                   "references (view:feature), so names must differ",
                   dv->v.name);
            continue;
        }
        put(&seen, key, dv);
        order[m++] = dv;
    }
    qsort(order, m, sizeof *order, cmp_draft_odfv);
    c->odfvs = alloc(R, &c->arena, (m + 1) * sizeof *c->odfvs);
    if (c->odfvs == NULL)
        return;
    c->n_odfvs = m;
    for (size_t i = 0; i < m; i++) {
        catalog_view_t *v = &c->odfvs[i];
        *v = order[i]->v;
        v->id = (uint32_t)(c->n_views + i);
    }
    bool *marked = alloc(R, &d->scratch, (m + 1) * sizeof *marked);
    const catalog__pos_t **dpos = alloc(R, &d->scratch, (m + 1) * sizeof *dpos);
    if (marked == NULL || dpos == NULL)
        return;
    for (size_t i = 0; i < m; i++) {
        marked[i] = order[i]->marked_default;
        dpos[i] = &order[i]->default_pos;
    }
    mark_defaults(R, c->odfvs, m, marked, dpos, "on-demand feature view");
    for (size_t i = 0; i < m && !R->nomem; i++)
        resolve_odfv(R, order[i], &c->odfvs[i]);
    index_views(R, c->odfvs, m);
}

/* ------------------------------------------------------------------------------------------ */
/* Feature services                                                                            */

static int cmp_service(const void *a, const void *b)
{
    return strcmp(((const catalog_service_t *)a)->name, ((const catalog_service_t *)b)->name);
}

/* Resolves one reference into refs (growing in scratch). Returns false on an error. */
static bool resolve_ref(resolver_t *R, const char *ref, const catalog__pos_t *pos,
                        const char *const *view_names, size_t n_names, catalog_feature_ref_t **refs,
                        size_t *n, size_t *cap)
{
    catalog_t *c = R->c;
    catalog__ref_t r;
    if (catalog__parse_ref(ref, strlen(ref), &r) != 0) {
        err_at(R, pos,
               "malformed feature reference '%s': expected view:feature, view@vN:feature or "
               "view:*",
               ref);
        return false;
    }
    char name[CATALOG_MAX_NAME + 1];
    snprintf(name, sizeof name, "%.*s", (int)r.view_len, r.view);
    const catalog_view_t *v = NULL;
    if (r.version == 0) {
        v = lookup(&c->ix_views, name);
    } else {
        char key[CATALOG_MAX_NAME + 16];
        snprintf(key, sizeof key, "%s@v%" PRIu32, name, r.version);
        v = lookup(&c->ix_views, key);
    }
    if (v == NULL) {
        const catalog_view_t *any = lookup(&c->ix_views, name);
        if (any == NULL) {
            char hint[160];
            catalog__suggest(name, view_names, n_names, hint, sizeof hint);
            err_at(R, pos, "unknown feature view '%s' in '%s'%s", name, ref, hint);
        } else {
            char have[160];
            size_t off = 0;
            have[0] = '\0';
            for (size_t i = 0; i < c->n_views && off < sizeof have; i++) {
                if (strcmp(c->views[i].name, name) == 0)
                    off += (size_t)snprintf(have + off, sizeof have - off, "%sv%" PRIu32,
                                            off > 0 ? ", " : "", c->views[i].version);
            }
            err_at(R, pos, "feature view '%s' has no version %" PRIu32 " (it has %s)", name,
                   r.version, have);
        }
        return false;
    }
    size_t from = 0, to = v->n_features;
    if (!(r.feature_len == 1 && r.feature[0] == '*')) {
        from = to;
        for (size_t i = 0; i < v->n_features; i++) {
            const char *fname = v->features[i].name;
            if (fname != NULL && strlen(fname) == r.feature_len &&
                memcmp(fname, r.feature, r.feature_len) == 0) {
                from = i;
                to = i + 1;
            }
        }
        if (from == to) {
            const char *names[256];
            size_t nn = 0;
            for (size_t i = 0; i < v->n_features && nn < 256; i++) {
                if (v->features[i].name != NULL)
                    names[nn++] = v->features[i].name;
            }
            char fname[CATALOG_MAX_NAME + 1], hint[160];
            snprintf(fname, sizeof fname, "%.*s", (int)r.feature_len, r.feature);
            catalog__suggest(fname, names, nn, hint, sizeof hint);
            err_at(R, pos, "feature view '%s@v%" PRIu32 "' has no feature '%s'%s", v->name,
                   v->version, fname, hint);
            return false;
        }
    }
    bool ok = true;
    for (size_t i = from; i < to; i++) {
        const catalog_feature_t *f = &v->features[i];
        bool dup = false;
        for (size_t j = 0; j < *n && !dup; j++)
            dup = (*refs)[j].view == v && (*refs)[j].feature == f;
        if (dup) {
            err_at(R, pos, "feature '%s@v%" PRIu32 ":%s' is referenced twice", v->name, v->version,
                   f->name);
            ok = false;
            continue;
        }
        if (base_arena_grow(&R->d->scratch, (void **)refs, cap, *n + 1, sizeof **refs) != 0) {
            R->nomem = true;
            return false;
        }
        (*refs)[*n].view = v;
        (*refs)[*n].feature = f;
        (*n)++;
    }
    return ok;
}

/* Join keys with one name and two types cannot be looked up together: one error per key name. */
static void service_join_keys(resolver_t *R, const catalog__draft_service_t *ds,
                              const catalog_service_t *s)
{
    const catalog_view_t **vs = alloc(R, &R->d->scratch, (s->n_features + 1) * sizeof *vs);
    const char **reported = alloc(R, &R->d->scratch, (s->n_features + 1) * 8 * sizeof(char *));
    if (vs == NULL || reported == NULL)
        return;
    size_t nv = 0, nr = 0;
    for (size_t i = 0; i < s->n_features; i++) {
        bool dup = false;
        for (size_t j = 0; j < nv && !dup; j++)
            dup = vs[j] == s->features[i].view;
        if (!dup)
            vs[nv++] = s->features[i].view;
    }
    for (size_t i = 0; i < nv; i++) {
        for (size_t j = 0; j < i; j++) {
            const catalog_view_t *a = vs[j], *b = vs[i];
            for (size_t x = 0; x < a->n_join_keys; x++) {
                for (size_t y = 0; y < b->n_join_keys; y++) {
                    const char *name = a->join_keys[x].name;
                    if (strcmp(name, b->join_keys[y].name) != 0 ||
                        a->join_keys[x].dtype == b->join_keys[y].dtype)
                        continue;
                    bool again = false;
                    for (size_t r = 0; r < nr && !again; r++)
                        again = strcmp(reported[r], name) == 0;
                    if (again || nr >= (s->n_features + 1) * 8)
                        continue;
                    reported[nr++] = name;
                    err_at(R, &ds->name_pos,
                           "entity type mismatch: join key '%s' is %s in feature view "
                           "'%s@v%" PRIu32 "' but %s in '%s@v%" PRIu32 "'",
                           name, catalog_dtype_name(a->join_keys[x].dtype), a->name, a->version,
                           catalog_dtype_name(b->join_keys[y].dtype), b->name, b->version);
                }
            }
        }
    }
}

static void resolve_services(resolver_t *R)
{
    catalog__draft_t *d = R->d;
    catalog_t *c = R->c;
    size_t n = d->n_services;
    catalog__index_t seen = {0};
    const char **view_names = alloc(R, &d->scratch, (c->n_views + 1) * sizeof *view_names);
    c->services = alloc(R, &c->arena, (n + 1) * sizeof *c->services);
    if (view_names == NULL || c->services == NULL ||
        catalog__index_init(&d->scratch, &seen, n) != 0 ||
        catalog__index_init(&d->scratch, &R->broken, n) != 0) {
        R->nomem = true;
        return;
    }
    size_t n_names = 0;
    for (size_t i = 0; i < c->n_views; i++) {
        if (n_names == 0 || strcmp(view_names[n_names - 1], c->views[i].name) != 0)
            view_names[n_names++] = c->views[i].name;
    }
    for (size_t i = 0; i < n; i++) {
        catalog__draft_service_t *ds = &d->services[i];
        const catalog__draft_service_t *first = lookup(&seen, ds->s.name);
        if (first != NULL) {
            err_at(R, &ds->name_pos, "duplicate feature service '%s' (first defined at %s:%d)",
                   ds->s.name, first->name_pos.file, first->name_pos.line);
            continue;
        }
        put(&seen, ds->s.name, ds);
        catalog_feature_ref_t *refs = NULL;
        size_t nr = 0, cap = 0;
        bool ok = true;
        for (size_t r = 0; r < ds->n_refs && !R->nomem; r++)
            ok &=
                resolve_ref(R, ds->refs[r], &ds->ref_pos[r], view_names, n_names, &refs, &nr, &cap);
        if (!ok || ds->n_refs == 0)
            put(&R->broken, ds->s.name, ds);
        catalog_service_t *s = &c->services[c->n_services++];
        *s = ds->s;
        if (s->description == NULL)
            s->description = "";
        catalog_feature_ref_t *kept = alloc(R, &c->arena, (nr + 1) * sizeof *kept);
        if (kept == NULL)
            return;
        if (nr > 0)
            memcpy(kept, refs, nr * sizeof *kept);
        s->features = kept;
        s->n_features = nr;
        service_join_keys(R, ds, s);
    }
    /* Models point at services, so the array is sorted before anything takes an address. */
    qsort(c->services, c->n_services, sizeof *c->services, cmp_service);
    if (catalog__index_init(&c->arena, &c->ix_services, c->n_services) != 0) {
        R->nomem = true;
        return;
    }
    for (size_t i = 0; i < c->n_services; i++)
        put(&c->ix_services, c->services[i].name, &c->services[i]);
}

/* ------------------------------------------------------------------------------------------ */
/* Models                                                                                      */

static int cmp_model(const void *a, const void *b)
{
    const catalog_model_t *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r != 0)
        return r;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->version_label, y->version_label);
}

/* Whether a service's views carry join key `name`. */
static bool service_has_key(const catalog_service_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_features; i++) {
        const catalog_view_t *v = s->features[i].view;
        for (size_t k = 0; k < v->n_join_keys; k++) {
            if (strcmp(v->join_keys[k].name, name) == 0)
                return true;
        }
    }
    return false;
}

static void model_inputs(resolver_t *R, const catalog__draft_model_t *dm,
                         const catalog_service_t *s)
{
    const catalog_model_t *m = &dm->m;
    for (size_t i = 0; i < m->n_entity_inputs; i++) {
        const char *jk = m->entity_inputs[i].join_key;
        if (!service_has_key(s, jk))
            err_at(R, &dm->input_pos[i], "join key '%s' is not a join key of feature service '%s'",
                   jk, s->name);
    }
    /* Every join key the service needs must arrive in some input, or no row can be found. */
    for (size_t i = 0; i < s->n_features; i++) {
        const catalog_view_t *v = s->features[i].view;
        for (size_t k = 0; k < v->n_join_keys; k++) {
            const char *need = v->join_keys[k].name;
            bool reported = false;
            for (size_t p = 0; p < i && !reported; p++) {
                const catalog_view_t *pv = s->features[p].view;
                for (size_t q = 0; q < pv->n_join_keys; q++)
                    reported |= strcmp(pv->join_keys[q].name, need) == 0;
            }
            for (size_t q = 0; q < k; q++)
                reported |= strcmp(v->join_keys[q].name, need) == 0;
            if (reported)
                continue;
            bool found = false;
            for (size_t j = 0; j < m->n_entity_inputs && !found; j++)
                found = strcmp(m->entity_inputs[j].join_key, need) == 0;
            if (!found)
                err_at(R, &dm->service_pos,
                       "feature service '%s' needs join key '%s', but no entity_inputs entry "
                       "carries it",
                       s->name, need);
        }
    }
}

static void resolve_models(resolver_t *R)
{
    catalog__draft_t *d = R->d;
    catalog_t *c = R->c;
    size_t n = d->n_models;
    catalog__index_t seen = {0};
    const char **service_names = alloc(R, &d->scratch, (c->n_services + 1) * sizeof(char *));
    c->models = alloc(R, &c->arena, (n + 1) * sizeof *c->models);
    if (service_names == NULL || c->models == NULL ||
        catalog__index_init(&d->scratch, &seen, 2 * n) != 0) {
        R->nomem = true;
        return;
    }
    for (size_t i = 0; i < c->n_services; i++)
        service_names[i] = c->services[i].name;
    for (size_t i = 0; i < n; i++) {
        catalog__draft_model_t *dm = &d->models[i];
        catalog_model_t *m = &dm->m;
        if (m->version_label == NULL)
            m->version_label = "";
        const char *vkey = dm->has_version ? keyf(R, "%s@v%" PRId64, m->name, m->version) : "";
        const char *lkey =
            m->version_label[0] != '\0' ? keyf(R, "%s#%s", m->name, m->version_label) : "";
        const catalog__draft_model_t *first = vkey[0] != '\0' ? lookup(&seen, vkey) : NULL;
        if (first == NULL && lkey[0] != '\0')
            first = lookup(&seen, lkey);
        if (first != NULL) {
            err_at(R, &dm->name_pos,
                   "duplicate model binding '%s' (same version or label as the one at %s:%d)",
                   m->name, first->name_pos.file, first->name_pos.line);
            continue;
        }
        put(&seen, vkey, dm);
        put(&seen, lkey, dm);

        const catalog_service_t *s = NULL;
        if (dm->service_name != NULL) {
            s = lookup(&c->ix_services, dm->service_name);
            if (s == NULL) {
                char hint[160];
                catalog__suggest(dm->service_name, service_names, c->n_services, hint, sizeof hint);
                err_at(R, &dm->service_pos, "unknown feature service '%s'%s", dm->service_name,
                       hint);
            } else if (lookup(&R->broken, s->name) == NULL) {
                model_inputs(R, dm, s);
            }
        }
        m->service = s;
        if (m->has_upstream && m->upstream.signature_name == NULL)
            m->upstream.signature_name = "";
        c->models[c->n_models++] = *m;
    }
    qsort(c->models, c->n_models, sizeof *c->models, cmp_model);
    if (catalog__index_init(&c->arena, &c->ix_models, 3 * c->n_models) != 0) {
        R->nomem = true;
        return;
    }
    for (size_t i = 0; i < c->n_models; i++) {
        const catalog_model_t *m = &c->models[i];
        put(&c->ix_models, keyf(R, "%s@v%" PRId64, m->name, m->version), m);
        if (m->version_label[0] != '\0')
            put(&c->ix_models, keyf(R, "%s#%s", m->name, m->version_label), m);
        /* Sorted by version, so the last binding of a name is its highest. */
        if (i + 1 == c->n_models || strcmp(c->models[i + 1].name, m->name) != 0)
            put(&c->ix_models, m->name, m);
    }
}

int catalog__resolve(catalog_t *c, catalog__draft_t *d, catalog_errors_t *errs)
{
    resolver_t R = {.c = c, .d = d, .errs = errs};
    size_t first = errs->count;
    if (d->project == NULL) {
        catalog__error(errs, d->first_file, 0, 0, "project",
                       "missing required key 'project' (the project's name, in any one file)");
        c->project = "";
    } else {
        c->project = d->project;
    }
    resolve_entities(&R);
    if (!R.nomem)
        resolve_views(&R);
    if (!R.nomem)
        resolve_requests(&R);
    if (!R.nomem)
        resolve_odfvs(&R);
    if (!R.nomem)
        resolve_services(&R);
    if (!R.nomem)
        resolve_models(&R);
    if (R.nomem)
        return -ENOMEM;
    if (errs->count > first)
        return -EINVAL;

    return 0;
}

int catalog__finalize(catalog_t *c)
{
    char *yaml = NULL;
    size_t len = 0;
    if (catalog__dump(c, &yaml, &len) != 0)
        return -ENOMEM;
    uint64_t h = base_fnv1a(yaml, len, BASE_FNV_OFFSET);
    free(yaml);
    snprintf(c->digest, sizeof c->digest, "%016" PRIx64, h);
    return 0;
}
