/* core/predict_outputs.c - Predict's output names, once per catalog snapshot and service. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"

/*
 * Output names are feature names; when two features of the service share a name both become
 * `view__feature`, and `view@vN__feature` when that still collides (two versions of one view).
 *
 * They depend on the service alone, and a catalog is an immutable snapshot, so formatting them
 * (and indexing them for output_filter) on every request was most of a small Predict's cost.
 * Each read worker keeps them per service, with the ownership of ref_cache.c: the cache holds a
 * reference to the catalog its entries were built against, which makes comparing catalog
 * pointers sound (the address cannot be reused while the cache remembers it), and the first
 * Predict that sees another catalog (a reload) empties it and drops the reference. The cache
 * belongs to one thread, so it takes no lock. Direct-mapped on the service's address: a service
 * simply replaces whatever shared its slot.
 */

struct core__predict_cache {
    core__slots_t t; /* of core_outputs_t */
};

/* ------------------------------------------------------------------------------------------ */
/* Building                                                                                    */

/* Output names of the service's features (see the comment at the top), their lengths and the
 * index over them. */
static int output_names(base_arena_t *a, const catalog_service_t *svc, char **names, size_t *lens,
                        base_name_index_t *ix)
{
    size_t n = svc->n_features;
    uint8_t *level = base_arena_calloc(a, n == 0 ? 1 : n, 1);
    long *dup = base_arena_array(a, n == 0 ? 1 : n, sizeof *dup);
    if (level == NULL || dup == NULL)
        return -ENOMEM;
    char buf[2 * CATALOG_MAX_NAME + 32];
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < n; i++) {
            const catalog_feature_ref_t *r = &svc->features[i];
            int len;
            if (level[i] == 0)
                len = snprintf(buf, sizeof buf, "%s", r->feature->name);
            else if (level[i] == 1)
                len = snprintf(buf, sizeof buf, "%s__%s", r->view->name, r->feature->name);
            else
                len = snprintf(buf, sizeof buf, "%s@v%u__%s", r->view->name,
                               (unsigned)r->view->version, r->feature->name);
            names[i] = base_arena_strndup(a, buf, (size_t)len);
            if (names[i] == NULL)
                return -ENOMEM;
            lens[i] = (size_t)len;
        }
        if (base_name_index_build(a, (const char *const *)names, lens, n, ix, dup) < 0)
            return -ENOMEM;
        bool clash = false;
        for (size_t i = 0; i < n; i++) {
            long j = dup[i];
            if (j >= 0 && level[i] < 2) {
                level[i]++;
                level[j] = level[i];
                clash = true;
            }
        }
        if (!clash)
            break;
    }
    return 0;
}

int core__outputs_build(base_arena_t *a, const catalog_service_t *svc, core_outputs_t *out)
{
    size_t n = svc->n_features;
    size_t m = n == 0 ? 1 : n;
    char **names = base_arena_calloc(a, m, sizeof *names);
    size_t *lens = base_arena_array(a, m, sizeof *lens);
    base_name_index_t set;
    if (names == NULL || lens == NULL || output_names(a, svc, names, lens, &set) < 0)
        return -ENOMEM;
    /* The catalog refuses a feature referenced twice, so names are unique; were one repeated,
     * the first would keep it, as in the index output_filter used to build per request. */
    size_t offline = n;
    for (size_t i = 0; i < n && offline == n; i++)
        if (!svc->features[i].view->online)
            offline = i;
    *out = (core_outputs_t){.service = svc,
                            .n = n,
                            .names = (const char *const *)names,
                            .name_lens = lens,
                            .set = set,
                            .offline = offline};
    return 0;
}

long core__outputs_find(const core_outputs_t *o, const char *name, size_t len)
{
    return base_name_index_find(&o->set, o->names, o->name_lens, name, len);
}

/* ------------------------------------------------------------------------------------------ */
/* The per-worker cache                                                                        */

int core__predict_cache_new(core__predict_cache_t **out)
{
    core__predict_cache_t *pc = calloc(1, sizeof *pc);
    if (pc == NULL)
        return -ENOMEM;
    *out = pc;
    return 0;
}

void core__predict_cache_free(core__predict_cache_t *pc)
{
    if (pc == NULL)
        return;
    core__slots_clear(&pc->t);
    free(pc);
}

/* A copy of o in one malloc'd block (NULL when out of memory). */
static core_outputs_t *copy_outputs(const core_outputs_t *o)
{
    size_t chars = 0;
    for (size_t i = 0; i < o->n; i++)
        chars += o->name_lens[i] + 1;
    size_t set_slots = (size_t)o->set.mask + 1;
    size_t off_names = core__align_up(sizeof *o);
    size_t off_lens = off_names + core__align_up(o->n * sizeof *o->names);
    size_t off_set = off_lens + core__align_up(o->n * sizeof *o->name_lens);
    size_t off_chars = off_set + core__align_up(set_slots * sizeof *o->set.slots);
    char *block = malloc(off_chars + chars);
    if (block == NULL)
        return NULL;
    core_outputs_t *e = (core_outputs_t *)(void *)block;
    const char **names = (const char **)(void *)(block + off_names);
    size_t *lens = (size_t *)(void *)(block + off_lens);
    uint32_t *set = (uint32_t *)(void *)(block + off_set);
    char *p = block + off_chars;
    memcpy(lens, o->name_lens, o->n * sizeof *lens);
    memcpy(set, o->set.slots, set_slots * sizeof *set);
    for (size_t i = 0; i < o->n; i++) {
        memcpy(p, o->names[i], o->name_lens[i] + 1);
        names[i] = p;
        p += o->name_lens[i] + 1;
    }
    *e = *o;
    e->names = names;
    e->name_lens = lens;
    e->set.slots = set;
    return e;
}

int core__outputs_get(core__predict_cache_t *pc, base_arena_t *a, const catalog_t *cat,
                      const catalog_service_t *svc, const core_outputs_t **out)
{
    size_t slot = ((uintptr_t)svc / sizeof *svc) % CORE__SLOTS;
    if (pc != NULL) {
        core__slots_use(&pc->t, cat);
        const core_outputs_t *hit = pc->t.slot[slot];
        if (hit != NULL && hit->service == svc) {
            *out = hit;
            return 0;
        }
    }
    core_outputs_t *o = base_arena_alloc(a, sizeof *o);
    if (o == NULL)
        return -ENOMEM;
    int rc = core__outputs_build(a, svc, o);
    if (rc < 0)
        return rc;
    if (pc != NULL) {
        /* A cache that cannot grow is only slower: the arena's copy serves this call. */
        core_outputs_t *e = copy_outputs(o);
        if (e != NULL)
            core__slots_put(&pc->t, slot, e);
    }
    *out = o;
    return 0;
}
