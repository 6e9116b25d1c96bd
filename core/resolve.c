/* core/resolve.c - a read's feature list against the catalog: references, checks, column names. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"

/*
 * Feast's semantics and messages live here: which references and services exist, which views
 * are online, and what the response columns are called. Clients send the same list with every
 * request, and resolving it was most of a small read's cost, so each worker keeps the lists it
 * resolved (ref_cache.c), keyed by the list's bytes; a hit skips every check below, which all
 * depend on the list alone.
 */

static int fail_not_found(core_ctx_t *ctx, const catalog_t *cat, const char *ref)
{
    const char *colon = strchr(ref, ':');
    if (colon == NULL)
        return core_fail(ctx, -EINVAL,
                         "malformed feature reference '%.200s' (want view:feature or "
                         "view@vN:feature)",
                         ref);
    char view[CATALOG_MAX_NAME + 32];
    snprintf(view, sizeof view, "%.*s", (int)(colon - ref), ref);
    const catalog_view_t *v = NULL;
    char help[512];
    if (catalog_find_view_ref(cat, view, &v) < 0) {
        catalog_describe_missing(cat, CATALOG_NAME_VIEW, NULL, view, help, sizeof help);
        return core_fail(ctx, -ENOENT, "feature view '%s' not found (in reference '%.200s')%s",
                         view, ref, help);
    }
    char feature[CATALOG_MAX_NAME + 1];
    snprintf(feature, sizeof feature, "%s", colon + 1);
    catalog_describe_missing(cat, CATALOG_NAME_FEATURE, v, feature, help, sizeof help);
    return core_fail(ctx, -ENOENT, "feature '%.128s' not found in feature view '%s@v%u'%s",
                     colon + 1, v->name, (unsigned)v->version, help);
}

static int resolve_ref(core_ctx_t *ctx, const catalog_t *cat, const char *ref,
                       catalog_feature_ref_t *out)
{
    int rc = catalog_find_feature(cat, ref, strlen(ref), out);
    if (rc == 0)
        return 0;
    if (rc == -ENOENT)
        return fail_not_found(ctx, cat, ref);
    return core_fail(ctx, -EINVAL,
                     "malformed feature reference '%.200s' (want view:feature or "
                     "view@vN:feature)",
                     ref);
}

/* Response column names: `feature`, or with full_feature_names `view__feature` (`view@vN__feature`
 * when the reference named a version, so two versions side by side stay apart). Written by hand:
 * snprintf costs more than the rest of a name's bookkeeping. */
static char *column_name(base_arena_t *a, const catalog_feature_ref_t *ref, bool versioned,
                         bool full, size_t *len)
{
    const char *f = ref->feature->name;
    size_t fl = strlen(f);
    if (!full) {
        *len = fl;
        return base_arena_strndup(a, f, fl);
    }
    char ver[16];
    size_t verl = 0;
    if (versioned) {
        char digits[12];
        size_t nd = 0;
        uint32_t v = ref->view->version;
        do {
            digits[nd++] = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        ver[verl++] = '@';
        ver[verl++] = 'v';
        while (nd > 0)
            ver[verl++] = digits[--nd];
    }
    const char *vn = ref->view->name;
    size_t vl = strlen(vn);
    size_t n = vl + verl + 2 + fl;
    char *p = base_arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, vn, vl);
    memcpy(p + vl, ver, verl);
    p[vl + verl] = '_';
    p[vl + verl + 1] = '_';
    memcpy(p + vl + verl + 2, f, fl + 1);
    *len = n;
    return p;
}

static int resolve(core_ctx_t *ctx, core_feature_list_t *list, const core_resolved_t **out);

int core_resolve(core_ctx_t *ctx, core_feature_list_t *list, const core_resolved_t **out)
{
    return core__unknown(ctx, resolve(ctx, list, out));
}

static int resolve(core_ctx_t *ctx, core_feature_list_t *list, const core_resolved_t **out)
{
    base_arena_t *a = ctx->arena;
    const core_limits_t *lim = ctx->limits;
    const catalog_t *cat = ctx->catalog;
    core__ref_cache_t *cache = ctx->worker->ref_cache;
    unsigned flags = list->full_names ? CORE__LIST_FULL_NAMES : 0;
    const uint8_t *key = NULL;
    size_t key_len = 0;

    if (list->kind == CORE_LIST_SERVICE) {
        flags |= CORE__LIST_SERVICE;
        key = (const uint8_t *)list->service;
        key_len = list->service_len;
    } else if (list->kind == CORE_LIST_FEATURES) {
        flags |= CORE__LIST_FEATURES;
        key = list->key;
        key_len = list->key_len;
    }
    if (flags & (CORE__LIST_SERVICE | CORE__LIST_FEATURES)) {
        const core_resolved_t *hit = core__ref_cache_get(cache, cat, flags, key, key_len);
        /* A feature list's references are as many as its strings. */
        if (hit != NULL && (flags & CORE__LIST_FEATURES) && hit->n_refs > lim->max_features)
            return core_fail(ctx, -E2BIG,
                             "request asks for %zu features; the limit is %zu "
                             "(--max-features)",
                             hit->n_refs, lim->max_features);
        if (hit != NULL) {
            *out = hit;
            return core__allow_read(ctx, list, hit);
        }
    }
    if (flags & CORE__LIST_FEATURES) {
        if (list->refs == NULL) {
            int rc = list->parse != NULL ? list->parse(a, list) : CORE_DECLINED;
            if (rc < 0)
                return core_fail(ctx, -ENOMEM, "out of memory");
            if (rc > 0)
                return CORE_DECLINED;
        }
        if (list->n_refs > lim->max_features)
            return core_fail(ctx, -E2BIG,
                             "request asks for %zu features; the limit is %zu "
                             "(--max-features)",
                             list->n_refs, lim->max_features);
    }

    const catalog_feature_ref_t *refs = NULL;
    bool *versioned = NULL;
    size_t n_refs = 0;
    if (flags & CORE__LIST_SERVICE) {
        const catalog_service_t *svc = NULL;
        if (catalog_find_service(cat, list->service, &svc) < 0) {
            char help[512];
            catalog_describe_missing(cat, CATALOG_NAME_SERVICE, NULL, list->service, help,
                                     sizeof help);
            return core_fail(ctx, -ENOENT, "feature service '%.200s' not found%s", list->service,
                             help);
        }
        refs = svc->features;
        n_refs = svc->n_features;
        if (n_refs > lim->max_features)
            return core_fail(ctx, -E2BIG,
                             "feature service '%s' has %zu features; the limit is %zu "
                             "(--max-features)",
                             svc->name, n_refs, lim->max_features);
        versioned = base_arena_calloc(a, n_refs == 0 ? 1 : n_refs, sizeof *versioned);
        if (versioned == NULL)
            return core_fail(ctx, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_refs; i++)
            versioned[i] = !refs[i].view->is_default;
    } else if (flags & CORE__LIST_FEATURES) {
        n_refs = list->n_refs;
        catalog_feature_ref_t *r = base_arena_calloc(a, n_refs == 0 ? 1 : n_refs, sizeof *r);
        versioned = base_arena_calloc(a, n_refs == 0 ? 1 : n_refs, sizeof *versioned);
        if (r == NULL || versioned == NULL)
            return core_fail(ctx, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_refs; i++) {
            /* The references are not NUL-terminated; messages need them to be. */
            const char *ref = base_arena_strndup(a, list->refs[i], list->ref_lens[i]);
            if (ref == NULL)
                return core_fail(ctx, -ENOMEM, "out of memory");
            int rc = resolve_ref(ctx, cat, ref, &r[i]);
            if (rc < 0)
                return rc;
            const char *colon = strchr(ref, ':');
            versioned[i] = memchr(ref, '@', (size_t)(colon - ref)) != NULL;
        }
        refs = r;
    }
    if (n_refs == 0)
        return core_fail(ctx, -EINVAL, "no features requested: set features or feature_service");
    for (size_t i = 0; i < n_refs; i++) {
        if (!refs[i].view->online)
            return core_fail(ctx, -EINVAL, "feature view '%s@v%u' is not online",
                             refs[i].view->name, (unsigned)refs[i].view->version);
    }

    core_resolved_t *res = base_arena_calloc(a, 1, sizeof *res);
    const char **names = base_arena_calloc(a, n_refs, sizeof *names);
    size_t *lens = base_arena_calloc(a, n_refs, sizeof *lens);
    if (res == NULL || names == NULL || lens == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n_refs; i++) {
        names[i] = column_name(a, &refs[i], versioned[i], list->full_names, &lens[i]);
        if (names[i] == NULL)
            return core_fail(ctx, -ENOMEM, "out of memory");
    }
    res->n_refs = n_refs;
    res->refs = refs;
    res->names = names;
    res->name_lens = lens;
    if (core__resolved_index_names(a, res) < 0)
        return core_fail(ctx, -ENOMEM, "out of memory");
    core_names_fn encode = ctx->worker->names;
    if (encode != NULL && encode(a, names, lens, n_refs, &res->names_enc, &res->names_enc_len) < 0)
        return core_fail(ctx, -ENOMEM, "out of memory");
    if (core_group_refs(a, refs, n_refs, &res->groups) < 0)
        return core_fail(ctx, -ENOMEM, "out of memory");
    /* The views for metadata are the groups' views (each once, in order of first appearance; one
     * catalog has one view per name and version), kept so a hit has them. */
    const core_ref_groups_t *gs = &res->groups;
    core_view_md_t *views =
        base_arena_array(a, gs->n_groups == 0 ? 1 : gs->n_groups, sizeof *views);
    if (views == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t g = 0; g < gs->n_groups; g++)
        views[g] = (core_view_md_t){gs->groups[g].view->name, (int32_t)gs->groups[g].view->version};
    res->views = views;
    res->n_views = gs->n_groups;
    core__ref_cache_put(cache, cat, flags, key, key_len, res);
    *out = res;
    /* A principal granted only some views or services: checked on every call (a cached list
     * too), before anything is read. */
    return core__allow_read(ctx, list, res);
}
