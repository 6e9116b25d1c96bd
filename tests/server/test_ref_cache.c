/* tests/server/test_ref_cache.c - the per-worker cache of resolved feature lists. */
#include <criterion/criterion.h>
#include <string.h>

#include "server/server_int.h"

static const char yaml[] = "project: t\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: id, type: INT64}]}\n"
                           "feature_views:\n"
                           "  - name: fv\n"
                           "    version: 1\n"
                           "    entities: [driver]\n"
                           "    features: [{name: a, dtype: INT64}, {name: b, dtype: DOUBLE}]\n";

static server_arena_t arena;
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
    server__arena_init(&arena, 4096);
    cat1 = load();
    cat2 = load();
}

static void teardown(void)
{
    server__arena_free(&arena);
    catalog_unref(cat1);
    catalog_unref(cat2);
}

TestSuite(ref_cache, .init = setup, .fini = teardown);

/* A resolution of fv:a, fv:b named `a`, `b` (or as given). */
static server_resolved_t resolved(const catalog_t *cat, const char *n0, const char *n1)
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
    server_resolved_t r = {.n_refs = 2, .refs = refs, .names = names, .name_lens = lens};
    cr_assert_eq(server__resolved_index_names(&arena, &r), 0);
    return r;
}

Test(ref_cache, a_stored_list_is_found_by_the_same_strings_only)
{
    server_ref_cache_t *rc = NULL;
    cr_assert_eq(server__ref_cache_new(&rc), 0);
    /* Not NUL-terminated: the cache reads lens[i] bytes. */
    const char *strs[2] = {"fv:aXX", "fv:bYY"};
    size_t lens[2] = {4, 4};
    server_resolved_t r = resolved(cat1, "a", "b");
    cr_assert(r.unique);
    cr_assert_null(server__ref_cache_get(rc, cat1, 2, strs, lens, 2));
    server__ref_cache_put(rc, cat1, 2, strs, lens, 2, &r);

    const server_resolved_t *hit = server__ref_cache_get(rc, cat1, 2, strs, lens, 2);
    cr_assert_not_null(hit);
    cr_assert_eq(hit->n_refs, 2);
    cr_assert_eq(hit->refs[1].feature, r.refs[1].feature);
    cr_assert_str_eq(hit->names[1], "b");
    cr_assert(server__resolved_has_name(hit, "a"));
    cr_assert_not(server__resolved_has_name(hit, "id"));

    /* Other flags, other splits of the same bytes, fewer strings: misses. */
    cr_assert_null(server__ref_cache_get(rc, cat1, 6, strs, lens, 2));
    const char *split[2] = {"fv:", "afv:b"};
    size_t split_lens[2] = {3, 5};
    cr_assert_null(server__ref_cache_get(rc, cat1, 2, split, split_lens, 2));
    cr_assert_null(server__ref_cache_get(rc, cat1, 2, strs, lens, 1));
    server__ref_cache_free(rc);
}

Test(ref_cache, another_catalog_empties_the_cache)
{
    server_ref_cache_t *rc = NULL;
    cr_assert_eq(server__ref_cache_new(&rc), 0);
    const char *strs[1] = {"svc"};
    size_t lens[1] = {3};
    server_resolved_t r = resolved(cat1, "a", "b");
    server__ref_cache_put(rc, cat1, 1, strs, lens, 1, &r);
    cr_assert_not_null(server__ref_cache_get(rc, cat1, 1, strs, lens, 1));
    /* The same strings against the reloaded catalog: resolved again, never the old pointers. */
    cr_assert_null(server__ref_cache_get(rc, cat2, 1, strs, lens, 1));
    cr_assert_null(server__ref_cache_get(rc, cat1, 1, strs, lens, 1));
    /* The cache's reference keeps a catalog alive after its owner lets go. */
    server_resolved_t r2 = resolved(cat2, "a", "b");
    server__ref_cache_put(rc, cat2, 1, strs, lens, 1, &r2);
    catalog_t *held = cat2;
    catalog_unref(cat2);
    cat2 = NULL;
    const server_resolved_t *hit = server__ref_cache_get(rc, held, 1, strs, lens, 1);
    cr_assert_not_null(hit);
    cr_assert_str_eq(hit->refs[0].view->name, "fv");
    server__ref_cache_free(rc); /* the last reference */
}

Test(ref_cache, lists_with_repeated_names_are_not_stored)
{
    server_ref_cache_t *rc = NULL;
    cr_assert_eq(server__ref_cache_new(&rc), 0);
    const char *strs[2] = {"fv:a", "fv:b"};
    size_t lens[2] = {4, 4};
    server_resolved_t r = resolved(cat1, "x", "x");
    cr_assert_not(r.unique);
    server__ref_cache_put(rc, cat1, 2, strs, lens, 2, &r);
    cr_assert_null(server__ref_cache_get(rc, cat1, 2, strs, lens, 2));
    server__ref_cache_free(rc);
}
