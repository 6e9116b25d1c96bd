/* tests/catalog/test_lookup.c - version resolution, service expansion and the O(1) lookups. */
#include "tests/catalog/helpers.h"

static const char versions_yaml[] =
    "project: p\n"
    "entities:\n"
    "  - name: driver\n"
    "    join_keys: [{name: driver_id, type: INT64}]\n"
    "feature_views:\n"
    "  - name: marked\n"
    "    version: 3\n"
    "    entities: [driver]\n"
    "    features: [{name: a, dtype: INT64}]\n"
    "  - name: marked\n"
    "    version: 2\n"
    "    default: true\n"
    "    entities: [driver]\n"
    "    features: [{name: a, dtype: INT64}, {name: b, dtype: STRING}]\n"
    "  - name: plain\n"
    "    version: 1\n"
    "    entities: [driver]\n"
    "    features: [{name: x, dtype: INT64}]\n"
    "  - name: plain\n"
    "    version: 4\n"
    "    entities: [driver]\n"
    "    features: [{name: x, dtype: INT64}, {name: y, dtype: DOUBLE}, {name: z, dtype: BOOL}]\n"
    "  - name: global\n"
    "    features: [{name: g, dtype: DOUBLE, default: 1.0}]\n"
    "feature_services:\n"
    "  - name: mix\n"
    "    features:\n"
    "      - marked:b\n"
    "      - plain:*\n"
    "      - plain@v1:x\n"
    "      - global:g\n"
    "models:\n"
    "  - name: m\n"
    "    version: 1\n"
    "    feature_service: mix\n"
    "    entity_inputs: {driver_id: driver_id}\n"
    "  - name: m\n"
    "    version: 3\n"
    "    version_label: canary\n"
    "    feature_service: mix\n"
    "    entity_inputs: {driver_id: driver_id}\n"
    "  - name: m\n"
    "    version: 2\n"
    "    version_label: stable\n"
    "    feature_service: mix\n"
    "    entity_inputs: {driver_id: driver_id}\n";

Test(catalog_lookup, bare_reference_resolves_to_the_version_marked_default)
{
    catalog_t *c = load_ok(versions_yaml);
    const catalog_view_t *v;
    cr_assert_eq(catalog_find_view(c, "marked", 0, &v), 0);
    cr_expect_eq(v->version, 2);
    cr_expect(v->is_default);
    cr_assert_eq(catalog_find_view(c, "marked", 3, &v), 0);
    cr_expect_not(v->is_default);
    catalog_unref(c);
}

Test(catalog_lookup, bare_reference_resolves_to_the_highest_version_otherwise)
{
    catalog_t *c = load_ok(versions_yaml);
    const catalog_view_t *v;
    cr_assert_eq(catalog_find_view(c, "plain", 0, &v), 0);
    cr_expect_eq(v->version, 4);
    cr_assert_eq(catalog_find_view_ref(c, "plain", &v), 0);
    cr_expect_eq(v->version, 4);
    cr_assert_eq(catalog_find_view_ref(c, "plain@v1", &v), 0);
    cr_expect_eq(v->version, 1);
    cr_expect_eq(catalog_find_view_ref(c, "plain@v2", &v), -ENOENT);
    cr_expect_eq(catalog_find_view_ref(c, "plain@2", &v), -EINVAL);
    cr_expect_eq(catalog_find_view_ref(c, "plain@v", &v), -EINVAL);
    cr_expect_eq(catalog_find_view_ref(c, "", &v), -EINVAL);
    cr_expect_eq(catalog_find_view(c, "nope", 0, &v), -ENOENT);
    catalog_unref(c);
}

Test(catalog_lookup, views_are_ordered_by_name_and_version_with_dense_ids)
{
    catalog_t *c = load_ok(versions_yaml);
    cr_assert_eq(catalog_view_count(c), 5);
    const char *names[] = {"global", "marked", "marked", "plain", "plain"};
    uint32_t versions[] = {1, 2, 3, 1, 4};
    for (size_t i = 0; i < 5; i++) {
        const catalog_view_t *v = catalog_view_at(c, i);
        cr_expect_str_eq(v->name, names[i]);
        cr_expect_eq(v->version, versions[i]);
        cr_expect_eq(v->id, i);
    }
    cr_expect_null(catalog_view_at(c, 5));
    catalog_unref(c);
}

Test(catalog_lookup, feature_references_resolve_pinned_and_default_versions)
{
    catalog_t *c = load_ok(versions_yaml);
    catalog_feature_ref_t r;
    cr_assert_eq(catalog_find_feature(c, "plain:y", 7, &r), 0);
    cr_expect_eq(r.view->version, 4);
    cr_expect_str_eq(r.feature->name, "y");
    cr_expect_eq(r.feature->index, 1);
    cr_assert_eq(catalog_find_feature(c, "plain@v1:x", 10, &r), 0);
    cr_expect_eq(r.view->version, 1);
    cr_expect_eq(catalog_find_feature(c, "plain@v1:y", 10, &r), -ENOENT);
    cr_expect_eq(catalog_find_feature(c, "nope:y", 6, &r), -ENOENT);
    cr_expect_eq(catalog_find_feature(c, "plain", 5, &r), -EINVAL);
    cr_expect_eq(catalog_find_feature(c, "plain:*", 7, &r), -EINVAL);
    cr_expect_eq(catalog_find_feature(c, "plain:", 6, &r), -EINVAL);
    cr_expect_eq(catalog_find_feature(c, "pl ain:x", 8, &r), -EINVAL);
    /* Not NUL-terminated: only len bytes count. */
    cr_assert_eq(catalog_find_feature(c, "plain:xyz", 7, &r), 0);
    cr_expect_str_eq(r.feature->name, "x");
    catalog_unref(c);
}

Test(catalog_lookup, service_expands_star_in_catalog_order_and_resolves_versions)
{
    catalog_t *c = load_ok(versions_yaml);
    const catalog_service_t *s;
    cr_assert_eq(catalog_find_service(c, "mix", &s), 0);
    cr_assert_eq(s->n_features, 6);
    const char *want[][2] = {{"marked@v2", "b"}, {"plain@v4", "x"}, {"plain@v4", "y"},
                             {"plain@v4", "z"},  {"plain@v1", "x"}, {"global@v1", "g"}};
    for (size_t i = 0; i < 6; i++) {
        char got[64];
        snprintf(got, sizeof got, "%s@v%u", s->features[i].view->name,
                 (unsigned)s->features[i].view->version);
        cr_expect_str_eq(got, want[i][0], "ref %zu", i);
        cr_expect_str_eq(s->features[i].feature->name, want[i][1], "ref %zu", i);
    }
    cr_expect_eq(catalog_find_service(c, "nope", &s), -ENOENT);
    catalog_unref(c);
}

Test(catalog_lookup, entityless_view_has_no_entities_or_join_keys)
{
    catalog_t *c = load_ok(versions_yaml);
    const catalog_view_t *v;
    cr_assert_eq(catalog_find_view(c, "global", 0, &v), 0);
    cr_expect_eq(v->n_entities, 0);
    cr_expect_eq(v->n_join_keys, 0);
    cr_expect(v->online);
    cr_expect_eq(v->ttl_seconds, 0);
    cr_assert(v->features[0].has_default);
    cr_expect_eq(v->features[0].default_value.u.f64, 1.0);
    catalog_unref(c);
}

Test(catalog_lookup, service_of_only_entityless_views_needs_no_entity_inputs)
{
    catalog_t *c = load_ok("project: p\n"
                           "feature_views:\n"
                           "  - name: global\n"
                           "    features: [{name: g, dtype: DOUBLE}]\n"
                           "feature_services:\n"
                           "  - name: s\n"
                           "    features: [global:*]\n"
                           "models:\n"
                           "  - name: m\n"
                           "    version_label: prod\n"
                           "    feature_service: s\n");
    const catalog_model_t *m;
    cr_assert_eq(catalog_find_model(c, "m", 0, "prod", &m), 0);
    cr_expect_eq(m->n_entity_inputs, 0);
    cr_expect_eq(m->version, 1);
    catalog_unref(c);
}

Test(catalog_lookup, view_join_keys_flatten_every_entity_in_order)
{
    catalog_t *c =
        load_ok("project: p\n"
                "entities:\n"
                "  - name: driver\n"
                "    join_keys: [{name: driver_id, type: INT64}]\n"
                "  - name: trip\n"
                "    join_keys: [{name: city, type: STRING}, {name: trip_id, type: BYTES}]\n"
                "feature_views:\n"
                "  - name: v\n"
                "    entities: [trip, driver]\n"
                "    features: [{name: x, dtype: INT64}]\n");
    const catalog_view_t *v = catalog_view_at(c, 0);
    cr_assert_eq(v->n_entities, 2);
    cr_expect_str_eq(v->entities[0]->name, "trip");
    cr_assert_eq(v->n_join_keys, 3);
    cr_expect_str_eq(v->join_keys[0].name, "city");
    cr_expect_eq(v->join_keys[1].dtype, CATALOG_DTYPE_BYTES);
    cr_expect_str_eq(v->join_keys[2].name, "driver_id");
    const catalog_entity_t *e;
    cr_assert_eq(catalog_find_entity(c, "trip", &e), 0);
    cr_expect_eq(e->n_join_keys, 2);
    cr_expect_str_eq(e->description, "");
    cr_expect_eq(catalog_find_entity(c, "nope", &e), -ENOENT);
    cr_expect_eq(catalog_entity_at(c, 0)->name[0], 'd', "entities are sorted by name");
    cr_expect_null(catalog_entity_at(c, 2));
    catalog_unref(c);
}

Test(catalog_lookup, models_resolve_by_version_highest_and_label)
{
    catalog_t *c = load_ok(versions_yaml);
    const catalog_model_t *m;
    cr_assert_eq(catalog_find_model(c, "m", 0, NULL, &m), 0);
    cr_expect_eq(m->version, 3);
    cr_assert_eq(catalog_find_model(c, "m", 2, NULL, &m), 0);
    cr_expect_str_eq(m->version_label, "stable");
    cr_assert_eq(catalog_find_model(c, "m", 1, "canary", &m), 0);
    cr_expect_eq(m->version, 3, "the label wins over the version");
    cr_assert_eq(catalog_find_model(c, "m", 1, "", &m), 0);
    cr_expect_eq(m->version, 1);
    cr_expect_eq(catalog_find_model(c, "m", 9, NULL, &m), -ENOENT);
    cr_expect_eq(catalog_find_model(c, "m", 0, "beta", &m), -ENOENT);
    cr_expect_eq(catalog_find_model(c, "x", 0, NULL, &m), -ENOENT);
    cr_expect_eq(catalog_model_count(c), 3);
    cr_expect_eq(catalog_model_at(c, 0)->version, 1, "models are sorted by name and version");
    catalog_unref(c);
}

Test(catalog_lookup, references_keep_the_catalog_alive)
{
    catalog_t *c = load_ok(versions_yaml);
    cr_expect_eq(catalog_ref(c), c);
    catalog_unref(c);
    cr_expect_str_eq(catalog_project(c), "p");
    catalog_unref(c);
    catalog_unref(NULL);
}

#include <pthread.h>

/* Readers on many threads share one snapshot with no locks; the last unref frees it. */
static void *reader(void *arg)
{
    catalog_t *c = arg;
    for (int i = 0; i < 2000; i++) {
        catalog_feature_ref_t r;
        const catalog_model_t *m;
        if (catalog_find_feature(c, "plain@v4:z", 10, &r) != 0 || r.feature->index != 2 ||
            catalog_find_model(c, "m", 0, "stable", &m) != 0)
            return (void *)1;
    }
    catalog_unref(c);
    return NULL;
}

Test(catalog_lookup, concurrent_readers_share_one_snapshot)
{
    catalog_t *c = load_ok(versions_yaml);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, reader, catalog_ref(c)), 0);
    catalog_unref(c);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        cr_expect_null(rc);
    }
}

Test(catalog_lookup, a_missing_name_gets_the_closest_one_and_what_exists)
{
    catalog_t *c = load_ok(versions_yaml);
    char buf[512];
    /* A typo, a clipped word, nothing close; views listed once per name, in catalog order. */
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, "plian", buf, sizeof buf);
    cr_assert_str_eq(buf, " (did you mean 'plain'?); feature views: global, marked, plain");
    catalog_describe_missing(c, CATALOG_NAME_SERVICE, NULL, "mi", buf, sizeof buf);
    cr_assert_str_eq(buf, " (did you mean 'mix'?); feature services: mix");
    catalog_describe_missing(c, CATALOG_NAME_SERVICE, NULL, "ranking", buf, sizeof buf);
    cr_assert_str_eq(buf, "; feature services: mix");
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(c, "plain", 4, &v), 0);
    catalog_describe_missing(c, CATALOG_NAME_FEATURE, v, "yy", buf, sizeof buf);
    cr_assert_str_eq(buf, " (did you mean 'y'?); its features: x, y, z");
    /* A version that does not exist of a view that does: its versions; of one that does not:
     * as for a name. */
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, "plain@v9", buf, sizeof buf);
    cr_assert_str_eq(buf, "; its versions: v1, v4");
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, "plian@v1", buf, sizeof buf);
    cr_assert_str_eq(buf, " (did you mean 'plain'?); feature views: global, marked, plain");
    /* A name longer than any catalog name (a client's megabyte) is not compared, only told
     * what exists. */
    char *huge = malloc(1 << 20);
    memset(huge, 'p', (1 << 20) - 1);
    huge[(1 << 20) - 1] = '\0';
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, huge, buf, sizeof buf);
    cr_assert_str_eq(buf, "; feature views: global, marked, plain");
    free(huge);
    /* Truncated to the buffer, always terminated. */
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, "plian", buf, 12);
    cr_assert_str_eq(buf, " (did you m");
    catalog_unref(c);
}

Test(catalog_lookup, a_long_list_is_cut_after_twelve_names)
{
    char yaml[8192];
    size_t n = (size_t)snprintf(yaml, sizeof yaml, "project: p\nfeature_views:\n");
    for (int i = 0; i < 15; i++)
        n += (size_t)snprintf(yaml + n, sizeof yaml - n,
                              "  - name: view_%02d\n    features: [{name: f, dtype: INT64}]\n", i);
    n += (size_t)snprintf(yaml + n, sizeof yaml - n, "feature_services: []\n");
    catalog_t *c = load_ok(yaml);
    char buf[512];
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, "view_99", buf, sizeof buf);
    cr_assert(strstr(buf, "feature views: view_00, view_01,") != NULL, "%s", buf);
    cr_assert(strstr(buf, "view_11 and 3 more") != NULL, "%s", buf);
    cr_assert(strstr(buf, "view_12") == NULL, "%s", buf);
    catalog_describe_missing(c, CATALOG_NAME_SERVICE, NULL, "s", buf, sizeof buf);
    cr_assert_str_eq(buf, "; feature services: none");
    catalog_unref(c);
}
