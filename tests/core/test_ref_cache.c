/* tests/core/test_ref_cache.c - the per-worker cache of resolved feature lists. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"

static const char yaml[] = "project: t\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: id, type: INT64}]}\n"
                           "feature_views:\n"
                           "  - name: fv\n"
                           "    version: 1\n"
                           "    entities: [driver]\n"
                           "    features: [{name: a, dtype: INT64}, {name: b, dtype: DOUBLE}]\n";

static base_arena_t arena;
static catalog_t *cat1, *cat2;

static catalog_t *load(void)
{
    catalog_errors_t errs = {0};
    catalog_t *c = NULL;
    cr_assert_eq(catalog_load_string(yaml, sizeof yaml - 1, "t.yaml", &c, &errs), 0);
    catalog_errors_clear(&errs);
    return c;
}

static void setup(void)
{
    base_arena_init(&arena, 4096);
    cat1 = load();
    cat2 = load();
}

static void teardown(void)
{
    base_arena_free(&arena);
    catalog_unref(cat1);
    catalog_unref(cat2);
}

TestSuite(ref_cache, .init = setup, .fini = teardown);

/* A resolution of fv:a, fv:b named `a`, `b` (or as given). */
static core_resolved_t resolved(const catalog_t *cat, const char *n0, const char *n1)
{
    static catalog_feature_ref_t refs[2];
    static const char *names[2];
    static size_t lens[2];
    cr_assert_eq(catalog_find_feature(cat, "fv:a", 4, &refs[0]), 0);
    cr_assert_eq(catalog_find_feature(cat, "fv:b", 4, &refs[1]), 0);
    names[0] = n0;
    names[1] = n1;
    lens[0] = strlen(n0);
    lens[1] = strlen(n1);
    core_resolved_t r = {.n_refs = 2, .refs = refs, .names = names, .name_lens = lens};
    cr_assert_eq(core__resolved_index_names(&arena, &r), 0);
    return r;
}

/* A key as a feature list's bytes would be: "\n\x04fv:a\n\x04fv:b". */
static const uint8_t list_ab[] = "\n\x04"
                                 "fv:a\n\x04"
                                 "fv:b";
#define LIST_AB_LEN (sizeof list_ab - 1)

Test(ref_cache, a_stored_list_is_found_by_the_same_bytes_only)
{
    core__ref_cache_t *rc = NULL;
    cr_assert_eq(core__ref_cache_new(&rc), 0);
    core_resolved_t r = resolved(cat1, "a", "b");
    cr_assert(r.unique);
    cr_assert_null(core__ref_cache_get(rc, cat1, 2, list_ab, LIST_AB_LEN));
    core__ref_cache_put(rc, cat1, 2, list_ab, LIST_AB_LEN, &r);

    /* Another copy of the bytes: the cache kept its own. */
    uint8_t copy[LIST_AB_LEN];
    memcpy(copy, list_ab, LIST_AB_LEN);
    const core_resolved_t *hit = core__ref_cache_get(rc, cat1, 2, copy, LIST_AB_LEN);
    cr_assert_not_null(hit);
    cr_assert_eq(hit->n_refs, 2);
    cr_assert_eq(hit->refs[1].feature, r.refs[1].feature);
    cr_assert_str_eq(hit->names[1], "b");
    cr_assert(core__resolved_has_name(hit, "a"));
    cr_assert_not(core__resolved_has_name(hit, "id"));

    /* Other flags, a prefix, one more byte, any one byte changed: misses. */
    cr_assert_null(core__ref_cache_get(rc, cat1, 6, copy, LIST_AB_LEN));
    cr_assert_null(core__ref_cache_get(rc, cat1, 2, copy, LIST_AB_LEN - 1));
    cr_assert_null(core__ref_cache_get(rc, cat1, 2, list_ab, LIST_AB_LEN + 1));
    cr_assert_null(core__ref_cache_get(rc, cat1, 2, copy, 0));
    for (size_t i = 0; i < LIST_AB_LEN; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            copy[i] ^= (uint8_t)(1u << bit);
            cr_assert_null(core__ref_cache_get(rc, cat1, 2, copy, LIST_AB_LEN), "byte %zu bit %u",
                           i, bit);
            copy[i] ^= (uint8_t)(1u << bit);
        }
    }
    cr_assert_not_null(core__ref_cache_get(rc, cat1, 2, copy, LIST_AB_LEN));
    core__ref_cache_free(rc);
}

/* Long keys, of lengths that end in each stage of the hash (32 bytes a step, then 8, then the
 * tail): a change anywhere misses, whatever the length. (The bytes are compared on a hit, so
 * this holds even if the hash missed a byte; the collision test below pins that comparison.) */
Test(ref_cache, long_keys_differing_in_any_byte_miss)
{
    core__ref_cache_t *rc = NULL;
    cr_assert_eq(core__ref_cache_new(&rc), 0);
    core_resolved_t r = resolved(cat1, "a", "b");
    static uint8_t key[300];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)('a' + i % 26);
    for (size_t len = 1; len <= sizeof key; len += 37) {
        core__ref_cache_put(rc, cat1, 2, key, len, &r);
        cr_assert_not_null(core__ref_cache_get(rc, cat1, 2, key, len));
        for (size_t i = 0; i < len; i++) {
            key[i] ^= 0x20;
            cr_assert_null(core__ref_cache_get(rc, cat1, 2, key, len), "len %zu byte %zu", len, i);
            key[i] ^= 0x20;
        }
    }
    core__ref_cache_free(rc);
}

/* Lists that share a slot (there are far fewer slots than lists here) never answer for one
 * another: every hit is the resolution stored under exactly those bytes. */
Test(ref_cache, lists_sharing_a_slot_never_answer_for_each_other)
{
    core__ref_cache_t *rc = NULL;
    cr_assert_eq(core__ref_cache_new(&rc), 0);
    enum { N = 1000 };
    static char names[N][16];
    static uint8_t keys[N][16];
    size_t hits = 0;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "n%d", i);
        /* Keys one or two bytes apart: "\n\x04fv:a" with i written over its tail. */
        memcpy(keys[i], list_ab, LIST_AB_LEN);
        keys[i][LIST_AB_LEN - 1] = (uint8_t)i;
        keys[i][LIST_AB_LEN - 2] = (uint8_t)(i >> 8);
        core_resolved_t r = resolved(cat1, names[i], "b");
        core__ref_cache_put(rc, cat1, 2, keys[i], LIST_AB_LEN, &r);
        base_arena_reset(&arena);
    }
    for (int i = 0; i < N; i++) {
        const core_resolved_t *hit = core__ref_cache_get(rc, cat1, 2, keys[i], LIST_AB_LEN);
        if (hit == NULL)
            continue;
        hits++;
        cr_assert_str_eq(hit->names[0], names[i]);
    }
    /* The last lists put are still there; most of the others were replaced. */
    cr_assert_gt(hits, 0);
    cr_assert_leq(hits, 64);
    cr_assert_not_null(core__ref_cache_get(rc, cat1, 2, keys[N - 1], LIST_AB_LEN));
    core__ref_cache_free(rc);
}

/* With every hash equal, only the bytes tell lists apart: each lookup finds its own entry or
 * nothing, never the one that took the slot. */
Test(ref_cache, keys_with_the_same_hash_are_told_apart_by_their_bytes)
{
    core__ref_cache_t *rc = NULL;
    cr_assert_eq(core__ref_cache_new(&rc), 0);
    core__ref_cache_hash_mask(rc, 0);
    core_resolved_t r = resolved(cat1, "a", "b");
    core__ref_cache_put(rc, cat1, 2, list_ab, LIST_AB_LEN, &r);
    uint8_t other[LIST_AB_LEN];
    memcpy(other, list_ab, LIST_AB_LEN);
    other[LIST_AB_LEN - 1] = 'c';
    cr_assert_null(core__ref_cache_get(rc, cat1, 2, other, LIST_AB_LEN));
    cr_assert_null(core__ref_cache_get(rc, cat1, 2, list_ab, LIST_AB_LEN - 1));
    cr_assert_null(core__ref_cache_get(rc, cat1, 4, list_ab, LIST_AB_LEN));
    cr_assert_not_null(core__ref_cache_get(rc, cat1, 2, list_ab, LIST_AB_LEN));
    /* The other list takes the slot; the first is then a miss, not the other's entry. */
    core_resolved_t r2 = resolved(cat1, "c", "d");
    core__ref_cache_put(rc, cat1, 2, other, LIST_AB_LEN, &r2);
    cr_assert_null(core__ref_cache_get(rc, cat1, 2, list_ab, LIST_AB_LEN));
    const core_resolved_t *hit = core__ref_cache_get(rc, cat1, 2, other, LIST_AB_LEN);
    cr_assert_not_null(hit);
    cr_assert_str_eq(hit->names[0], "c");
    core__ref_cache_free(rc);
}

Test(ref_cache, another_catalog_empties_the_cache)
{
    core__ref_cache_t *rc = NULL;
    cr_assert_eq(core__ref_cache_new(&rc), 0);
    const uint8_t *svc = (const uint8_t *)"svc";
    core_resolved_t r = resolved(cat1, "a", "b");
    core__ref_cache_put(rc, cat1, 1, svc, 3, &r);
    cr_assert_not_null(core__ref_cache_get(rc, cat1, 1, svc, 3));
    /* The same bytes against the reloaded catalog: resolved again, never the old pointers. */
    cr_assert_null(core__ref_cache_get(rc, cat2, 1, svc, 3));
    cr_assert_null(core__ref_cache_get(rc, cat1, 1, svc, 3));
    /* The cache's reference keeps a catalog alive after its owner lets go. */
    core_resolved_t r2 = resolved(cat2, "a", "b");
    core__ref_cache_put(rc, cat2, 1, svc, 3, &r2);
    catalog_t *held = cat2;
    catalog_unref(cat2);
    cat2 = NULL;
    const core_resolved_t *hit = core__ref_cache_get(rc, held, 1, svc, 3);
    cr_assert_not_null(hit);
    cr_assert_eq(hit->refs[0].view, r2.refs[0].view);
    cr_assert_str_eq(hit->refs[0].view->name, "fv");
    core__ref_cache_free(rc); /* the last reference */
}

Test(ref_cache, a_put_against_another_catalog_forgets_the_old_entries)
{
    core__ref_cache_t *rc = NULL;
    cr_assert_eq(core__ref_cache_new(&rc), 0);
    core_resolved_t r = resolved(cat1, "a", "b");
    core__ref_cache_put(rc, cat1, 2, list_ab, LIST_AB_LEN, &r);
    core_resolved_t r2 = resolved(cat2, "a", "b");
    core__ref_cache_put(rc, cat2, 1, (const uint8_t *)"svc", 3, &r2);
    /* cat1's list is gone, though its slot was not reused. */
    cr_assert_null(core__ref_cache_get(rc, cat2, 2, list_ab, LIST_AB_LEN));
    cr_assert_not_null(core__ref_cache_get(rc, cat2, 1, (const uint8_t *)"svc", 3));
    core__ref_cache_free(rc);
}

Test(ref_cache, lists_with_repeated_names_are_not_stored)
{
    core__ref_cache_t *rc = NULL;
    cr_assert_eq(core__ref_cache_new(&rc), 0);
    core_resolved_t r = resolved(cat1, "x", "x");
    cr_assert_not(r.unique);
    core__ref_cache_put(rc, cat1, 2, list_ab, LIST_AB_LEN, &r);
    cr_assert_null(core__ref_cache_get(rc, cat1, 2, list_ab, LIST_AB_LEN));
    core__ref_cache_free(rc);
}

/* What a read needs besides names (the groups by view, the views for metadata) is copied into
 * the entry: a hit must not point into the arena of the request that filled it. */
Test(ref_cache, an_entry_keeps_its_own_groups_and_views)
{
    core__ref_cache_t *rc = NULL;
    cr_assert_eq(core__ref_cache_new(&rc), 0);
    core_resolved_t r = resolved(cat1, "a", "b");
    cr_assert_eq(core_group_refs(&arena, r.refs, r.n_refs, &r.groups), 0);
    core_view_md_t views[1] = {{r.refs[0].view->name, 1}};
    r.views = views;
    r.n_views = 1;
    core__ref_cache_put(rc, cat1, 2, list_ab, LIST_AB_LEN, &r);
    /* The arena is reused and scribbled over, as by the next request. */
    base_arena_reset(&arena);
    memset(base_arena_alloc(&arena, 4000), 0xee, 4000);
    views[0].name = NULL;
    const core_resolved_t *hit = core__ref_cache_get(rc, cat1, 2, list_ab, LIST_AB_LEN);
    cr_assert_not_null(hit);
    const core_ref_groups_t *g = &hit->groups;
    cr_assert_eq(g->n_groups, 1);
    cr_assert_eq(g->groups[0].view, hit->refs[0].view);
    cr_assert_eq(g->groups[0].first, 0);
    cr_assert_eq(g->groups[0].n_refs, 2);
    cr_assert_eq(g->n_refs, 2);
    cr_assert_eq(g->ref_idx[1], 1);
    cr_assert_eq(g->feature_idx[1], hit->refs[1].feature->index);
    cr_assert_eq(hit->n_views, 1);
    cr_assert_str_eq(hit->views[0].name, "fv");
    cr_assert_eq(hit->views[0].version, 1);
    core__ref_cache_free(rc);
}
