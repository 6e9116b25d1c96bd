/* catalog/lookup.c - the snapshot's lifetime (reference counts) and its O(1) lookups. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"

catalog_t *catalog__new(void)
{
    catalog_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    atomic_init(&c->refs, 1);
    base_arena_init(&c->arena, CATALOG__ARENA_CHUNK);
    c->project = "";
    return c;
}

void catalog__free(catalog_t *c)
{
    if (c == NULL)
        return;
    for (catalog__pattern_t *p = c->patterns; p != NULL; p = p->next)
        regfree(&p->re);
    base_arena_free(&c->arena);
    free(c);
}

catalog_t *catalog_ref(catalog_t *c)
{
    /* Taking a reference needs no ordering: the caller already holds one. */
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void catalog_unref(catalog_t *c)
{
    if (c == NULL)
        return;
    /* Release on every drop, acquire before freeing: all readers' accesses happen before. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        catalog__free(c);
}

const char *catalog_project(const catalog_t *c)
{
    return c->project;
}

const char *catalog_digest(const catalog_t *c)
{
    return c->digest;
}

size_t catalog_entity_count(const catalog_t *c)
{
    return c->n_entities;
}

const catalog_entity_t *catalog_entity_at(const catalog_t *c, size_t i)
{
    return i < c->n_entities ? &c->entities[i] : NULL;
}

size_t catalog_view_count(const catalog_t *c)
{
    return c->n_views;
}

const catalog_view_t *catalog_view_at(const catalog_t *c, size_t i)
{
    return i < c->n_views ? &c->views[i] : NULL;
}

size_t catalog_service_count(const catalog_t *c)
{
    return c->n_services;
}

const catalog_service_t *catalog_service_at(const catalog_t *c, size_t i)
{
    return i < c->n_services ? &c->services[i] : NULL;
}

size_t catalog_model_count(const catalog_t *c)
{
    return c->n_models;
}

const catalog_model_t *catalog_model_at(const catalog_t *c, size_t i)
{
    return i < c->n_models ? &c->models[i] : NULL;
}

static bool name_chars(const char *s, size_t len)
{
    if (len == 0 || len >= CATALOG_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' ||
                  (i > 0 && ch >= '0' && ch <= '9');
        if (!ok)
            return false;
    }
    return true;
}

int catalog__parse_view_ref(const char *ref, size_t len, const char **name, size_t *name_len,
                            uint32_t *version)
{
    const char *at = memchr(ref, '@', len);
    size_t nl = at != NULL ? (size_t)(at - ref) : len;
    if (!name_chars(ref, nl))
        return -EINVAL;
    uint32_t v = 0;
    if (at != NULL) {
        const char *p = at + 1, *end = ref + len;
        if (p == end || *p != 'v' || ++p == end)
            return -EINVAL;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9' || v > CATALOG_MAX_VERSION)
                return -EINVAL;
            v = v * 10 + (uint32_t)(*p - '0');
        }
        if (v == 0 || v > CATALOG_MAX_VERSION)
            return -EINVAL;
    }
    *name = ref;
    *name_len = nl;
    *version = v;
    return 0;
}

int catalog__parse_ref(const char *ref, size_t len, catalog__ref_t *out)
{
    if (ref == NULL)
        return -EINVAL;
    const char *colon = memchr(ref, ':', len);
    if (colon == NULL)
        return -EINVAL;
    catalog__ref_t r;
    if (catalog__parse_view_ref(ref, (size_t)(colon - ref), &r.view, &r.view_len, &r.version) != 0)
        return -EINVAL;
    r.feature = colon + 1;
    r.feature_len = len - (size_t)(colon - ref) - 1;
    if (!(r.feature_len == 1 && r.feature[0] == '*') && !name_chars(r.feature, r.feature_len))
        return -EINVAL;
    *out = r;
    return 0;
}

/* Builds "name" or "name@vN" in buf (names are bounded, so buf always fits). */
static size_t view_key(char *buf, size_t cap, const char *name, size_t len, uint32_t version)
{
    int n = version == 0 ? snprintf(buf, cap, "%.*s", (int)len, name)
                         : snprintf(buf, cap, "%.*s@v%" PRIu32, (int)len, name, version);
    return n > 0 ? (size_t)n : 0;
}

int catalog_find_view(const catalog_t *c, const char *name, uint32_t version,
                      const catalog_view_t **out)
{
    if (name == NULL)
        return -ENOENT;
    size_t len = strlen(name);
    if (len >= CATALOG_MAX_NAME)
        return -ENOENT;
    char key[CATALOG_MAX_NAME + 16];
    size_t kl = view_key(key, sizeof key, name, len, version);
    const catalog_view_t *v = catalog__index_get(&c->ix_views, key, kl);
    if (v == NULL)
        return -ENOENT;
    *out = v;
    return 0;
}

int catalog_find_view_ref(const catalog_t *c, const char *ref, const catalog_view_t **out)
{
    const char *name;
    size_t len;
    uint32_t version;
    if (ref == NULL || catalog__parse_view_ref(ref, strlen(ref), &name, &len, &version) != 0)
        return -EINVAL;
    char key[CATALOG_MAX_NAME + 16];
    size_t kl = view_key(key, sizeof key, name, len, version);
    const catalog_view_t *v = catalog__index_get(&c->ix_views, key, kl);
    if (v == NULL)
        return -ENOENT;
    *out = v;
    return 0;
}

int catalog_find_feature(const catalog_t *c, const char *ref, size_t len,
                         catalog_feature_ref_t *out)
{
    catalog__ref_t r;
    if (catalog__parse_ref(ref, len, &r) != 0 || (r.feature_len == 1 && r.feature[0] == '*'))
        return -EINVAL;
    char key[2 * CATALOG_MAX_NAME + 16];
    size_t kl = view_key(key, sizeof key, r.view, r.view_len, r.version);
    const catalog_view_t *v = catalog__index_get(&c->ix_views, key, kl);
    if (v == NULL)
        return -ENOENT;
    /* The feature index is keyed on the same spelling the reference used. */
    int n = snprintf(key + kl, sizeof key - kl, ":%.*s", (int)r.feature_len, r.feature);
    const catalog_feature_t *f = catalog__index_get(&c->ix_features, key, kl + (size_t)n);
    if (f == NULL)
        return -ENOENT;
    out->view = v;
    out->feature = f;
    return 0;
}

int catalog_find_service(const catalog_t *c, const char *name, const catalog_service_t **out)
{
    const catalog_service_t *s =
        name != NULL ? catalog__index_get(&c->ix_services, name, strlen(name)) : NULL;
    if (s == NULL)
        return -ENOENT;
    *out = s;
    return 0;
}

int catalog_find_entity(const catalog_t *c, const char *name, const catalog_entity_t **out)
{
    const catalog_entity_t *e =
        name != NULL ? catalog__index_get(&c->ix_entities, name, strlen(name)) : NULL;
    if (e == NULL)
        return -ENOENT;
    *out = e;
    return 0;
}

int catalog_find_model(const catalog_t *c, const char *name, int64_t version, const char *label,
                       const catalog_model_t **out)
{
    if (name == NULL || strlen(name) >= CATALOG_MAX_NAME)
        return -ENOENT;
    char key[CATALOG_MAX_NAME + 300];
    int n;
    if (label != NULL && label[0] != '\0')
        n = snprintf(key, sizeof key, "%s#%s", name, label);
    else if (version > 0)
        n = snprintf(key, sizeof key, "%s@v%" PRId64, name, version);
    else
        n = snprintf(key, sizeof key, "%s", name);
    if (n < 0 || (size_t)n >= sizeof key)
        return -ENOENT;
    const catalog_model_t *m = catalog__index_get(&c->ix_models, key, (size_t)n);
    if (m == NULL)
        return -ENOENT;
    *out = m;
    return 0;
}

size_t catalog_on_demand_count(const catalog_t *c)
{
    return c->n_odfvs;
}

const catalog_view_t *catalog_on_demand_at(const catalog_t *c, size_t i)
{
    return i < c->n_odfvs ? &c->odfvs[i] : NULL;
}

size_t catalog_request_source_count(const catalog_t *c)
{
    return c->n_requests;
}

const catalog_request_source_t *catalog_request_source_at(const catalog_t *c, size_t i)
{
    return i < c->n_requests ? &c->requests[i] : NULL;
}
