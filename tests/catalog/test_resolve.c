/* tests/catalog/test_resolve.c - resolution: names across the whole catalog, with their places. */
#include "tests/catalog/helpers.h"

/* Two entities; lines 1-7. Views and on-demand views below them start at line 8. */
#define TWO_ENTITIES                                                                               \
    "project: p\n"                                           /* 1 */                               \
    "entities:\n"                                            /* 2 */                               \
    "  - {name: a, join_keys: [{name: id, type: INT64}]}\n"  /* 3 */                               \
    "  - {name: b, join_keys: [{name: id, type: INT64}]}\n"  /* 4 */                               \
    "  - {name: s, join_keys: [{name: id, type: STRING}]}\n" /* 5 */                               \
    "  - {name: k, join_keys: [{name: key, type: INT64}]}\n" /* 6 */                               \
    "feature_views:\n"                                       /* 7 */

Test(catalog_resolve, an_entity_listed_twice_in_a_view_is_reported_at_the_repeat)
{
    expect_only_error(TWO_ENTITIES "  - {name: v, entities: [a, k, a], features: [{name: x, dtype: "
                                   "INT64}]}\n", /* 8 */
                      "feature_views[0].entities[2]", 8, 32, "entity 'a' is listed twice");
}

Test(catalog_resolve, two_entities_with_one_join_key_make_the_key_ambiguous)
{
    /* Same name, same type: not a type mismatch, but the key would not say which entity. */
    expect_only_error(TWO_ENTITIES "  - {name: v, entities: [k, a, b], features: [{name: x, dtype: "
                                   "INT64}]}\n", /* 8 */
                      "feature_views[0].entities[2]", 8, 32,
                      "join key 'id' comes from both entity 'a' and entity 'b'");
}

Test(catalog_resolve, a_view_keeps_its_entities_and_their_keys_in_order)
{
    catalog_t *c = load_ok(TWO_ENTITIES "  - {name: v, entities: [k, s], features: [{name: x, "
                                        "dtype: INT64}]}\n");
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(c, "v", 0, &v), 0);
    cr_assert_eq(v->n_entities, 2);
    cr_expect_str_eq(v->entities[0]->name, "k");
    cr_expect_str_eq(v->entities[1]->name, "s");
    cr_assert_eq(v->n_join_keys, 2);
    cr_expect_str_eq(v->join_keys[0].name, "key");
    cr_expect_eq(v->join_keys[1].dtype, CATALOG_DTYPE_STRING);
    catalog_unref(c);
}

Test(catalog_resolve, a_missing_version_lists_the_versions_there_are)
{
    expect_only_error(BASE_YAML
                      "  - {name: stats, version: 3, entities: [driver], features: [{name: "
                      "rate, dtype: FLOAT}]}\n"                                  /* 14 */
                      "  - {name: other, features: [{name: y, dtype: INT64}]}\n" /* 15 */
                      "feature_services:\n"                                      /* 16 */
                      "  - {name: svc, features: ['stats@v2:rate']}\n",          /* 17 */
                      "feature_services[0].features[0]", 17, 28,
                      "feature view 'stats' has no version 2 (it has v1, v3)");
}

Test(catalog_resolve, a_join_key_typed_two_ways_in_a_service_is_reported_once)
{
    /* Three views, one INT64 'id' against two STRING ones: one mistake, one error. */
    catalog_errors_t errs = {NULL, 0};
    load_bad(TWO_ENTITIES "  - {name: va, entities: [a], features: [{name: x, dtype: INT64}]}\n"
                          "  - {name: vb, entities: [s], features: [{name: x, dtype: INT64}]}\n"
                          "  - {name: vc, entities: [s], features: [{name: y, dtype: INT64}]}\n"
                          "feature_services:\n"                                    /* 11 */
                          "  - {name: svc, features: ['va:x', 'vb:x', 'vc:y']}\n", /* 12 */
             &errs);
    if (errs.count != 1)
        print_errors(&errs);
    cr_expect_eq(errs.count, 1);
    expect_error(&errs, "feature_services[0].name", 12, 12,
                 "entity type mismatch: join key 'id' is INT64 in feature view 'va@v1' but STRING "
                 "in 'vb@v1'");
    catalog_errors_clear(&errs);
}

Test(catalog_resolve, label_only_bindings_are_version_1_and_ordered_by_label)
{
    /* A binding with only a label is version 1; two of them differ by label alone, so the
     * label orders them (a version and a label together may not repeat either). */
    catalog_t *c = load_ok(BASE_YAML "feature_services: [{name: s, features: [stats:rate]}]\n"
                                     "models:\n"
                                     "  - {name: m, version_label: zeta, feature_service: s, "
                                     "entity_inputs: {driver_id: driver_id}}\n"
                                     "  - {name: m, version: 2, feature_service: s, "
                                     "entity_inputs: {driver_id: driver_id}}\n"
                                     "  - {name: m, version_label: alpha, feature_service: s, "
                                     "entity_inputs: {driver_id: driver_id}}\n");
    cr_assert_eq(catalog_model_count(c), 3);
    cr_expect_str_eq(catalog_model_at(c, 0)->version_label, "alpha");
    cr_expect_eq(catalog_model_at(c, 0)->version, 1);
    cr_expect_str_eq(catalog_model_at(c, 1)->version_label, "zeta");
    cr_expect_eq(catalog_model_at(c, 2)->version, 2);
    cr_expect_str_eq(catalog_model_at(c, 2)->version_label, "");
    const catalog_model_t *m = NULL;
    cr_assert_eq(catalog_find_model(c, "m", 0, "zeta", &m), 0);
    cr_expect_eq(m, catalog_model_at(c, 1), "a label wins over the version");
    cr_assert_eq(catalog_find_model(c, "m", 0, NULL, &m), 0);
    cr_expect_eq(m->version, 2, "no label: the highest version");
    cr_expect_eq(catalog_find_model(c, "m", 0, "beta", &m), -ENOENT);
    catalog_unref(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Request sources and on-demand views                                                         */

Test(catalog_resolve, a_duplicate_request_source_names_the_first)
{
    expect_only_error("project: p\n"
                      "request_sources:\n"
                      "  - {name: r, schema: [{name: x, dtype: INT64}]}\n"
                      "  - {name: r, schema: [{name: y, dtype: INT64}]}\n",
                      "request_sources[1].name", 4, 12,
                      "duplicate request source 'r' (first defined at t.yaml:3)");
}

#define ODFV_SOURCES                                                                               \
    TWO_ENTITIES "  - {name: va, entities: [a], features: [{name: x, dtype: INT64}]}\n" /* 8 */    \
                 "  - {name: vs, entities: [s], features: [{name: y, dtype: INT64}]}\n" /* 9 */    \
                 "request_sources: [{name: r, schema: [{name: z, dtype: INT64}]}]\n"    /* 10 */   \
                 "on_demand_feature_views:\n"                                           /* 11 */

Test(catalog_resolve, on_demand_sources_with_one_key_of_two_types_are_refused)
{
    expect_only_error(ODFV_SOURCES "  - name: o\n"           /* 12 */
                                   "    sources: [va, vs]\n" /* 13 */
                                   "    features: [{name: f, dtype: INT64, expression: 'x'}]\n",
                      "on_demand_feature_views[0].sources", 13, 14,
                      "entity type mismatch: join key 'id' is INT64 in one source and STRING in "
                      "feature view 'vs@v1'");
}

Test(catalog_resolve, malformed_and_repeated_sources_are_refused)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad(ODFV_SOURCES "  - name: o\n"                           /* 12 */
                          "    sources: ['va@v', va, 'va@v1', r]\n" /* 13 */
                          "    features: [{name: f, dtype: INT64, expression: 'nope'}]\n",
             &errs);
    expect_error(&errs, "on_demand_feature_views[0].sources[0]", 13, 15,
                 "malformed source 'va@v': expected a feature view (name or name@vN) or a request "
                 "source");
    expect_error(&errs, "on_demand_feature_views[0].sources[2]", 13, 27,
                 "source 'va' is listed twice (expressions name sources without @vN)");
    /* the expression is not compiled: it would only repeat what is said above */
    cr_expect_eq(errs.count, 2);
    catalog_errors_clear(&errs);
}

Test(catalog_resolve, a_duplicate_on_demand_version_names_the_first)
{
    expect_only_error(ODFV_SOURCES "  - {name: o, sources: [r], features: [{name: f, dtype: INT64, "
                                   "expression: 'z'}]}\n" /* 12 */
                                   "  - name: o\n"        /* 13 */
                                   "    version: 1\n"     /* 14 */
                                   "    sources: [r]\n"
                                   "    features: [{name: f, dtype: INT64, expression: 'z'}]\n",
                      "on_demand_feature_views[1].version", 14, 14,
                      "duplicate on-demand feature view 'o' version 1 (first defined at "
                      "t.yaml:12)");
}

Test(catalog_resolve, an_on_demand_view_joins_its_sources_keys_once)
{
    catalog_t *c = load_ok(ODFV_SOURCES "  - name: o\n"
                                        "    sources: [va, r]\n"
                                        "    features: [{name: f, dtype: INT64, expression: 'x + "
                                        "z'}]\n");
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(c, "o", 0, &v), 0);
    cr_assert_not_null(v->on_demand);
    cr_expect_eq(v->on_demand->n_views, 1);
    cr_expect_eq(v->on_demand->n_requests, 1);
    cr_expect_str_eq(v->on_demand->requests[0]->name, "r");
    cr_assert_eq(v->n_join_keys, 1);
    cr_expect_str_eq(v->join_keys[0].name, "id");
    cr_assert_eq(v->n_entities, 1);
    cr_expect_str_eq(v->entities[0]->name, "a");
    catalog_unref(c);
}
