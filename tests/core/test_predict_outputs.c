/* tests/core/test_predict_outputs.c - Predict's output names and their per-worker cache. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"

/*
 * Service `mix` has every kind of collision: `x` in three view versions (two versions of `plain`
 * and `other`), `y` in two views, and `b`, `z`, `g` alone.
 */
static const char yaml[] = "project: t\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: id, type: INT64}]}\n"
                           "feature_views:\n"
                           "  - name: marked\n"
                           "    version: 2\n"
                           "    entities: [driver]\n"
                           "    features: [{name: b, dtype: STRING}, {name: y, dtype: INT64}]\n"
                           "  - name: plain\n"
                           "    version: 1\n"
                           "    entities: [driver]\n"
                           "    features: [{name: x, dtype: INT64}]\n"
                           "  - name: plain\n"
                           "    version: 4\n"
                           "    entities: [driver]\n"
                           "    features: [{name: x, dtype: INT64}, {name: y, dtype: DOUBLE},\n"
                           "               {name: z, dtype: BOOL}]\n"
                           "  - name: other\n"
                           "    version: 1\n"
                           "    entities: [driver]\n"
                           "    features: [{name: x, dtype: FLOAT}]\n"
                           "  - name: cold\n"
                           "    version: 1\n"
                           "    online: false\n"
                           "    entities: [driver]\n"
                           "    features: [{name: c, dtype: FLOAT}]\n"
                           "  - name: global\n"
                           "    features: [{name: g, dtype: DOUBLE, default: 1.0}]\n"
                           "feature_services:\n"
                           "  - name: mix\n"
                           "    features: [marked:b, plain@v4:x, plain@v4:y, plain@v4:z,\n"
                           "               plain@v1:x, other:x, global:g, marked:y]\n"
                           "  - name: plain\n"
                           "    features: [marked:b, global:g]\n"
                           "  - name: chilly\n"
                           "    features: [global:g, cold:c]\n";

/* The same service names with other features: `mix` is now collision-free. */
static const char yaml2[] = "project: t\n"
                            "entities:\n"
                            "  - {name: driver, join_keys: [{name: id, type: INT64}]}\n"
                            "feature_views:\n"
                            "  - name: marked\n"
                            "    version: 2\n"
                            "    entities: [driver]\n"
                            "    features: [{name: b, dtype: STRING}, {name: y, dtype: INT64}]\n"
                            "  - name: global\n"
                            "    features: [{name: g, dtype: DOUBLE, default: 1.0}]\n"
                            "feature_services:\n"
                            "  - name: mix\n"
                            "    features: [marked:y, global:g]\n"
                            "  - name: plain\n"
                            "    features: [marked:b, marked:y, global:g]\n";

static base_arena_t arena;

static catalog_t *load(const char *src)
{
    catalog_errors_t errs = {0};
    catalog_t *c = NULL;
    int rc = catalog_load_string(src, strlen(src), "t.yaml", &c, &errs);
    for (size_t i = 0; i < errs.count; i++)
        cr_log_error("%s:%d:%d %s", errs.items[i].file, errs.items[i].line, errs.items[i].column,
                     errs.items[i].message);
    catalog_errors_clear(&errs);
    cr_assert_eq(rc, 0);
    return c;
}

static const catalog_service_t *service(const catalog_t *cat, const char *name)
{
    const catalog_service_t *svc = NULL;
    cr_assert_eq(catalog_find_service(cat, name, &svc), 0, "service %s", name);
    return svc;
}

static void expect_names(const core_outputs_t *o, const char *const *want, size_t n)
{
    cr_assert_eq(o->n, n);
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(o->names[i], want[i], "output %zu", i);
        cr_expect_eq(o->name_lens[i], strlen(want[i]), "output %zu", i);
    }
}

static void setup(void)
{
    base_arena_init(&arena, 4096);
}

static void teardown(void)
{
    base_arena_free(&arena);
}

TestSuite(predict_outputs, .init = setup, .fini = teardown);

static const char *const mix_names[] = {"b",           "plain@v4__x", "plain__y", "z",
                                        "plain@v1__x", "other__x",    "g",        "marked__y"};

Test(predict_outputs, colliding_names_take_the_view_then_the_version)
{
    catalog_t *cat = load(yaml);
    core_outputs_t o;
    cr_assert_eq(core__outputs_build(&arena, service(cat, "mix"), &o), 0);
    expect_names(&o, mix_names, 8);
    cr_expect_eq(o.offline, 8);
    for (size_t i = 0; i < 8; i++)
        cr_expect_eq(core__outputs_find(&o, mix_names[i], strlen(mix_names[i])), (long)i);
    cr_expect_eq(core__outputs_find(&o, "x", 1), -1);
    cr_expect_eq(core__outputs_find(&o, "y", 1), -1);
    cr_expect_eq(core__outputs_find(&o, "plain__x", 8), -1);
    cr_expect_eq(core__outputs_find(&o, "", 0), -1);
    catalog_unref(cat);
}

Test(predict_outputs, the_first_offline_view_is_named)
{
    catalog_t *cat = load(yaml);
    core_outputs_t o;
    cr_assert_eq(core__outputs_build(&arena, service(cat, "chilly"), &o), 0);
    cr_expect_eq(o.offline, 1);
    cr_expect_str_eq(o.names[1], "c");
    catalog_unref(cat);
}

Test(predict_outputs, a_cache_hit_is_the_same_entry_and_equals_a_fresh_build)
{
    catalog_t *cat = load(yaml);
    core__predict_cache_t *pc = NULL;
    cr_assert_eq(core__predict_cache_new(&pc), 0);
    const core_outputs_t *first = NULL, *hit = NULL, *other = NULL;
    cr_assert_eq(core__outputs_get(pc, &arena, cat, service(cat, "mix"), &first), 0);
    expect_names(first, mix_names, 8);
    /* The miss was served from the arena; the cache keeps its own copy. */
    base_arena_reset(&arena);
    cr_assert_eq(core__outputs_get(pc, &arena, cat, service(cat, "mix"), &hit), 0);
    expect_names(hit, mix_names, 8);
    cr_expect_eq(hit->service, service(cat, "mix"));
    for (size_t i = 0; i < 8; i++)
        cr_expect_eq(core__outputs_find(hit, mix_names[i], strlen(mix_names[i])), (long)i);
    const core_outputs_t *again = NULL;
    cr_assert_eq(core__outputs_get(pc, &arena, cat, service(cat, "mix"), &again), 0);
    cr_expect_eq(again, hit);

    cr_assert_eq(core__outputs_get(pc, &arena, cat, service(cat, "plain"), &other), 0);
    static const char *const plain[] = {"b", "g"};
    expect_names(other, plain, 2);
    core__predict_cache_free(pc);
    catalog_unref(cat);
}

Test(predict_outputs, every_service_of_a_catalog_gets_its_own_names)
{
    /* More services than the cache has slots, walked twice: hits and replacements both happen,
     * and each answer must equal a fresh build of its own service. */
    static const char *const picks[] = {"marked:b", "plain@v4:x", "plain@v1:x", "other:x",
                                        "marked:y", "plain@v4:y", "global:g"};
    static char big[sizeof yaml + 200 * 160];
    size_t len = (size_t)snprintf(big, sizeof big, "%s", yaml);
    for (unsigned k = 0; k < 200; k++) {
        len += (size_t)snprintf(big + len, sizeof big - len, "  - name: s%u\n    features: [", k);
        bool first = true;
        for (unsigned j = 0; j < 7; j++) {
            if ((k + 1) >> (j % 4) & 1 || j == k % 7) {
                len += (size_t)snprintf(big + len, sizeof big - len, "%s%s", first ? "" : ", ",
                                        picks[j]);
                first = false;
            }
        }
        len += (size_t)snprintf(big + len, sizeof big - len, "]\n");
    }
    cr_assert_lt(len, sizeof big - 1);
    catalog_t *cat = load(big);
    core__predict_cache_t *pc = NULL;
    cr_assert_eq(core__predict_cache_new(&pc), 0);
    size_t n = catalog_service_count(cat);
    cr_assert_gt(n, 200);
    for (int round = 0; round < 2; round++) {
        for (size_t s = 0; s < n; s++) {
            const catalog_service_t *svc = catalog_service_at(cat, s);
            const core_outputs_t *got = NULL;
            core_outputs_t fresh;
            cr_assert_eq(core__outputs_get(pc, &arena, cat, svc, &got), 0);
            cr_assert_eq(core__outputs_build(&arena, svc, &fresh), 0);
            cr_expect_eq(got->service, svc);
            cr_expect_eq(got->offline, fresh.offline);
            expect_names(got, (const char *const *)fresh.names, fresh.n);
            for (size_t i = 0; i < fresh.n; i++)
                cr_expect_eq(core__outputs_find(got, fresh.names[i], strlen(fresh.names[i])),
                             (long)i);
        }
        base_arena_reset(&arena);
    }
    core__predict_cache_free(pc);
    catalog_unref(cat);
}

/* Entries are found by service address: a service of a new catalog at the very address of an
 * old one (which an allocator may well hand out again) must not get the old names. The address
 * is forced here, as the test build's allocator would not reuse it. */
Test(predict_outputs, a_new_catalog_at_an_old_services_address_gets_its_own_names)
{
    core__predict_cache_t *pc = NULL;
    cr_assert_eq(core__predict_cache_new(&pc), 0);
    catalog_t *cat1 = load(yaml), *cat2 = load(yaml2);
    static catalog_service_t same;
    const core_outputs_t *o = NULL;
    same = *service(cat1, "mix");
    cr_assert_eq(core__outputs_get(pc, &arena, cat1, &same, &o), 0);
    expect_names(o, mix_names, 8);
    same = *service(cat2, "mix");
    cr_assert_eq(core__outputs_get(pc, &arena, cat2, &same, &o), 0);
    static const char *const mix2[] = {"y", "g"};
    expect_names(o, mix2, 2);
    core__predict_cache_free(pc);
    catalog_unref(cat1);
    catalog_unref(cat2);
}

Test(predict_outputs, a_catalog_swap_never_serves_stale_names)
{
    core__predict_cache_t *pc = NULL;
    cr_assert_eq(core__predict_cache_new(&pc), 0);
    catalog_t *cat1 = load(yaml);
    const core_outputs_t *o = NULL;
    cr_assert_eq(core__outputs_get(pc, &arena, cat1, service(cat1, "mix"), &o), 0);
    cr_assert_eq(core__outputs_get(pc, &arena, cat1, service(cat1, "mix"), &o), 0);
    expect_names(o, mix_names, 8);
    cr_assert_eq(core__outputs_get(pc, &arena, cat1, service(cat1, "plain"), &o), 0);

    /* The holder drops the old catalog; the cache's reference keeps it (and its address) alive,
     * so a new catalog cannot be mistaken for it. */
    catalog_unref(cat1);
    catalog_t *cat2 = load(yaml2);
    cr_assert_eq(core__outputs_get(pc, &arena, cat2, service(cat2, "mix"), &o), 0);
    static const char *const mix2[] = {"y", "g"};
    expect_names(o, mix2, 2);
    cr_expect_eq(o->service, service(cat2, "mix"));
    cr_assert_eq(core__outputs_get(pc, &arena, cat2, service(cat2, "plain"), &o), 0);
    static const char *const plain2[] = {"b", "y", "g"};
    expect_names(o, plain2, 3);

    /* And back: a third snapshot with the first catalog's text. */
    catalog_t *cat3 = load(yaml);
    cr_assert_eq(core__outputs_get(pc, &arena, cat3, service(cat3, "plain"), &o), 0);
    static const char *const plain3[] = {"b", "g"};
    expect_names(o, plain3, 2);
    cr_assert_eq(core__outputs_get(pc, &arena, cat3, service(cat3, "mix"), &o), 0);
    expect_names(o, mix_names, 8);
    core__predict_cache_free(pc);
    catalog_unref(cat2);
    catalog_unref(cat3);
}

Test(predict_outputs, without_a_cache_names_are_built_every_time)
{
    catalog_t *cat = load(yaml);
    const core_outputs_t *o = NULL;
    cr_assert_eq(core__outputs_get(NULL, &arena, cat, service(cat, "mix"), &o), 0);
    expect_names(o, mix_names, 8);
    core__predict_cache_free(NULL);
    catalog_unref(cat);
}
