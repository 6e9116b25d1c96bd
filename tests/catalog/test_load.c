/* tests/catalog/test_load.c - loading: every error class with its place, merging, resolution. */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/catalog/helpers.h"
#include "tests/tmpdir.h"

/* ------------------------------------------------------------------------------------------ */
/* Keys and node kinds                                                                         */

Test(catalog_load, unknown_key_is_reported_with_line_and_column)
{
    expect_only_error(BASE_YAML "    fetures: []\n", "feature_views[0].fetures", 14, 5,
                      "unknown key 'fetures' (did you mean 'features'?)");
}

Test(catalog_load, unknown_top_level_key_suggests_the_closest_known_key)
{
    expect_only_error(BASE_YAML "entites: []\n", "entites", 14, 1, "did you mean 'entities'?");
}

Test(catalog_load, unknown_key_without_a_close_match_lists_the_expected_keys)
{
    expect_only_error(BASE_YAML "        colour: red\n", "feature_views[0].features[0].colour", 14,
                      9, "expected one of: name, dtype, default, validation, description, tags");
}

Test(catalog_load, unknown_key_inside_validation_is_reported)
{
    expect_only_error(BASE_YAML "        validation:\n"
                                "          mni: 0\n",
                      "feature_views[0].features[0].validation.mni", 15, 11, "did you mean 'min'?");
}

Test(catalog_load, unknown_keys_in_entities_join_keys_services_models_and_upstream_are_reported)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"                                      /* 1 */
             "entities:\n"                                       /* 2 */
             "  - name: driver\n"                                /* 3 */
             "    descripton: x\n"                               /* 4 */
             "    join_keys:\n"                                  /* 5 */
             "      - {name: driver_id, type: INT64, kind: 1}\n" /* 6 */
             "feature_views:\n"                                  /* 7 */
             "  - name: v\n"                                     /* 8 */
             "    entities: [driver]\n"                          /* 9 */
             "    lineage: {source: a, sink: b}\n"               /* 10 */
             "    features: [{name: x, dtype: INT64}]\n"         /* 11 */
             "feature_services:\n"                               /* 12 */
             "  - name: s\n"                                     /* 13 */
             "    features: [v:x]\n"                             /* 14 */
             "    owner: me\n"                                   /* 15 */
             "models:\n"                                         /* 16 */
             "  - name: m\n"                                     /* 17 */
             "    version: 1\n"                                  /* 18 */
             "    feature_service: s\n"                          /* 19 */
             "    entity_inputs: {driver_id: driver_id}\n"       /* 20 */
             "    upstream: {target: 'h:1', timeout: 5}\n",      /* 21 */
             &errs);
    expect_error(&errs, "entities[0].descripton", 4, 5, "did you mean 'description'?");
    expect_error(&errs, "entities[0].join_keys[0].kind", 6, 40, "unknown key 'kind'");
    expect_error(&errs, "feature_views[0].lineage.sink", 10, 26, "unknown key 'sink'");
    expect_error(&errs, "feature_services[0].owner", 15, 5, "unknown key 'owner'");
    expect_error(&errs, "models[0].upstream.timeout", 21, 31, "did you mean 'timeout_ms'?");
    cr_expect_eq(errs.count, 5);
    catalog_errors_clear(&errs);
}

Test(catalog_load, duplicate_key_in_a_mapping_is_reported)
{
    expect_only_error(BASE_YAML "    version: 2\n", "feature_views[0].version", 14, 5,
                      "duplicate key 'version' (first at line 9)");
}

Test(catalog_load, wrong_node_kind_is_reported)
{
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    features:\n"
                      "      name: x\n",
                      "feature_views[0].features", 5, 7, "expected a sequence, got a mapping");
}

Test(catalog_load, scalar_where_a_list_belongs_is_reported)
{
    expect_only_error(BASE_YAML "    tags: [a, b]\n", "feature_views[0].tags", 14, 11,
                      "expected a mapping, got a sequence");
}

Test(catalog_load, top_level_that_is_not_a_mapping_is_reported)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("- a\n- b\n", &errs);
    expect_error(&errs, "(top level)", 1, 1, "expected a mapping");
    catalog_errors_clear(&errs);
}

Test(catalog_load, non_integer_version_is_reported)
{
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    version: two\n"
                      "    features: [{name: x, dtype: INT64}]\n",
                      "feature_views[0].version", 4, 14, "expected an integer, got 'two'");
}

Test(catalog_load, version_zero_is_out_of_range)
{
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    version: 0\n"
                      "    features: [{name: x, dtype: INT64}]\n",
                      "feature_views[0].version", 4, 14, "out of range: expected 1 to 65535");
}

Test(catalog_load, non_boolean_flag_is_reported)
{
    expect_only_error(BASE_YAML "    online: yes\n", "feature_views[0].online", 14, 13,
                      "expected true or false, got 'yes'");
}

/* ------------------------------------------------------------------------------------------ */
/* Required keys and names                                                                     */

Test(catalog_load, missing_dtype_is_reported_at_the_feature)
{
    expect_only_error(BASE_YAML "      - name: other\n", "feature_views[0].features[1].dtype", 14,
                      9, "missing required key 'dtype'");
}

Test(catalog_load, missing_join_keys_is_reported_at_the_entity)
{
    expect_only_error("project: p\n"
                      "entities:\n"
                      "  - name: driver\n",
                      "entities[0].join_keys", 3, 5, "missing required key 'join_keys'");
}

Test(catalog_load, missing_name_is_reported)
{
    expect_only_error(BASE_YAML "  - version: 2\n"
                                "    features: [{name: x, dtype: INT64}]\n",
                      "feature_views[1].name", 14, 5, "missing required key 'name'");
}

Test(catalog_load, missing_features_is_reported)
{
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n",
                      "feature_views[0].features", 3, 5, "missing required key 'features'");
}

Test(catalog_load, missing_project_is_reported_without_a_place)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("entities: []\n", &errs);
    cr_assert_eq(errs.count, 1);
    cr_expect_str_eq(errs.items[0].key, "project");
    cr_expect_eq(errs.items[0].line, 0);
    cr_expect_str_eq(errs.items[0].file, "t.yaml");
    catalog_errors_clear(&errs);
}

Test(catalog_load, invalid_names_are_reported)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: my-project\n"                              /* 1 */
             "entities:\n"                                        /* 2 */
             "  - name: 1driver\n"                                /* 3 */
             "    join_keys: [{name: driver id, type: INT64}]\n"  /* 4 */
             "feature_views:\n"                                   /* 5 */
             "  - name: v\n"                                      /* 6 */
             "    features: [{name: conv.rate, dtype: FLOAT}]\n", /* 7 */
             &errs);
    expect_error(&errs, "project", 1, 10, "invalid name 'my-project'");
    expect_error(&errs, "entities[0].name", 3, 11, "invalid name '1driver'");
    expect_error(&errs, "entities[0].join_keys[0].name", 4, 24, "invalid name 'driver id'");
    expect_error(&errs, "feature_views[0].features[0].name", 7, 23, "invalid name 'conv.rate'");
    catalog_errors_clear(&errs);
}

Test(catalog_load, name_of_max_length_is_accepted_and_longer_is_refused)
{
    char ok[CATALOG_MAX_NAME], yaml[1024];
    memset(ok, 'a', sizeof ok - 1);
    ok[sizeof ok - 1] = '\0';
    snprintf(yaml, sizeof yaml, "project: %s\n", ok);
    catalog_t *c = load_ok(yaml);
    cr_expect_str_eq(catalog_project(c), ok);
    catalog_unref(c);
    snprintf(yaml, sizeof yaml, "project: %sa\n", ok);
    expect_only_error(yaml, "project", 1, 10, "at most 127 characters");
}

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                       */

Test(catalog_load, unknown_dtype_is_reported_with_a_suggestion)
{
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    features:\n"
                      "      - name: x\n"
                      "        dtype: FLAOT\n",
                      "feature_views[0].features[0].dtype", 6, 16,
                      "unknown dtype 'FLAOT' (did you mean FLOAT?)");
}

Test(catalog_load, null_is_not_a_feature_dtype)
{
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    features: [{name: x, dtype: 'NULL'}]\n",
                      "feature_views[0].features[0].dtype", 4, 33, "unknown dtype 'NULL'");
}

Test(catalog_load, unknown_join_key_type_is_reported)
{
    expect_only_error("project: p\n"
                      "entities:\n"
                      "  - name: driver\n"
                      "    join_keys:\n"
                      "      - name: id\n"
                      "        type: FLOAT\n",
                      "entities[0].join_keys[0].type", 6, 15,
                      "unknown join key type 'FLOAT'; expected INT64, INT32, STRING or BYTES");
}

/* ------------------------------------------------------------------------------------------ */
/* Duplicates                                                                                  */

Test(catalog_load, duplicate_entity_is_reported_at_the_second_one)
{
    expect_only_error(BASE_YAML "entities:\n", "entities", 14, 1, "duplicate key 'entities'");
    expect_only_error("project: p\n"
                      "entities:\n"
                      "  - name: driver\n"
                      "    join_keys: [{name: id, type: INT64}]\n"
                      "  - name: driver\n"
                      "    join_keys: [{name: id, type: INT64}]\n",
                      "entities[1].name", 5, 11,
                      "duplicate entity 'driver' (first defined at t.yaml:3)");
}

Test(catalog_load, duplicate_feature_within_a_view_is_reported)
{
    expect_only_error(BASE_YAML "      - name: rate\n"
                                "        dtype: INT64\n",
                      "feature_views[0].features[1].name", 14, 15,
                      "duplicate feature 'rate' in feature view 'stats'");
}

Test(catalog_load, duplicate_join_key_within_an_entity_is_reported)
{
    expect_only_error("project: p\n"
                      "entities:\n"
                      "  - name: e\n"
                      "    join_keys: [{name: id, type: INT64}, {name: id, type: STRING}]\n",
                      "entities[0].join_keys[1].name", 4, 49, "duplicate join key 'id'");
}

Test(catalog_load, duplicate_view_version_is_reported)
{
    expect_only_error(BASE_YAML "  - name: stats\n"
                                "    version: 1\n"
                                "    features: [{name: x, dtype: INT64}]\n",
                      "feature_views[1].version", 15, 14,
                      "duplicate feature view 'stats' version 1 (first defined at t.yaml:8)");
}

Test(catalog_load, duplicate_service_is_reported)
{
    expect_only_error(BASE_YAML "feature_services:\n"
                                "  - name: s\n"
                                "    features: [stats:rate]\n"
                                "  - name: s\n"
                                "    features: [stats:rate]\n",
                      "feature_services[1].name", 17, 11, "duplicate feature service 's'");
}

Test(catalog_load, duplicate_model_binding_is_reported)
{
    expect_only_error(BASE_YAML "feature_services:\n"                         /* 14 */
                                "  - name: s\n"                               /* 15 */
                                "    features: [stats:rate]\n"                /* 16 */
                                "models:\n"                                   /* 17 */
                                "  - name: m\n"                               /* 18 */
                                "    version: 1\n"                            /* 19 */
                                "    feature_service: s\n"                    /* 20 */
                                "    entity_inputs: {driver_id: driver_id}\n" /* 21 */
                                "  - name: m\n"                               /* 22 */
                                "    version: 1\n"                            /* 23 */
                                "    feature_service: s\n"                    /* 24 */
                                "    entity_inputs: {driver_id: driver_id}\n",
                      "models[1].name", 22, 11, "duplicate model binding 'm'");
}

Test(catalog_load, more_than_one_default_version_is_reported)
{
    expect_only_error("project: p\n"                               /* 1 */
                      "feature_views:\n"                           /* 2 */
                      "  - name: v\n"                              /* 3 */
                      "    version: 1\n"                           /* 4 */
                      "    default: true\n"                        /* 5 */
                      "    features: [{name: x, dtype: INT64}]\n"  /* 6 */
                      "  - name: v\n"                              /* 7 */
                      "    version: 2\n"                           /* 8 */
                      "    default: true\n"                        /* 9 */
                      "    features: [{name: x, dtype: INT64}]\n", /* 10 */
                      "feature_views[1].default", 9, 14,
                      "more than one version of feature view 'v' is marked default: true");
}

/* ------------------------------------------------------------------------------------------ */
/* References                                                                                  */

Test(catalog_load, unknown_entity_in_a_view_is_reported)
{
    expect_only_error(BASE_YAML "  - name: other\n"
                                "    entities: [drivr]\n"
                                "    features: [{name: x, dtype: INT64}]\n",
                      "feature_views[1].entities[0]", 15, 16,
                      "unknown entity 'drivr' (did you mean 'driver'?)");
}

Test(catalog_load, service_references_to_missing_views_versions_and_features_are_reported)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad(BASE_YAML "feature_services:\n"     /* 14 */
                       "  - name: s\n"           /* 15 */
                       "    features:\n"         /* 16 */
                       "      - stats:rate\n"    /* 17 */
                       "      - stat:rate\n"     /* 18 */
                       "      - stats@v2:rate\n" /* 19 */
                       "      - stats:rat\n"     /* 20 */
                       "      - stats\n"         /* 21 */
                       "      - stats@2:rate\n", /* 22 */
             &errs);
    expect_error(&errs, "feature_services[0].features[1]", 18, 9,
                 "unknown feature view 'stat' in 'stat:rate' (did you mean 'stats'?)");
    expect_error(&errs, "feature_services[0].features[2]", 19, 9,
                 "feature view 'stats' has no version 2 (it has v1)");
    expect_error(&errs, "feature_services[0].features[3]", 20, 9,
                 "feature view 'stats@v1' has no feature 'rat' (did you mean 'rate'?)");
    expect_error(&errs, "feature_services[0].features[4]", 21, 9, "malformed feature reference");
    expect_error(&errs, "feature_services[0].features[5]", 22, 9, "malformed feature reference");
    cr_expect_eq(errs.count, 5);
    catalog_errors_clear(&errs);
}

Test(catalog_load, duplicate_reference_in_a_service_is_reported)
{
    expect_only_error(BASE_YAML "feature_services:\n"
                                "  - name: s\n"
                                "    features: [stats:rate, stats:*]\n",
                      "feature_services[0].features[1]", 16, 28, "referenced twice");
}

Test(catalog_load, model_with_unknown_service_is_reported)
{
    expect_only_error(BASE_YAML "models:\n"
                                "  - name: m\n"
                                "    version: 1\n"
                                "    feature_service: nope\n",
                      "models[0].feature_service", 17, 22, "unknown feature service 'nope'");
}

Test(catalog_load, model_entity_input_that_is_not_a_service_join_key_is_reported)
{
    expect_only_error(BASE_YAML "feature_services:\n"          /* 14 */
                                "  - name: s\n"                /* 15 */
                                "    features: [stats:rate]\n" /* 16 */
                                "models:\n"                    /* 17 */
                                "  - name: m\n"                /* 18 */
                                "    version: 1\n"             /* 19 */
                                "    feature_service: s\n"     /* 20 */
                                "    entity_inputs:\n"         /* 21 */
                                "      driver_id: driver_id\n" /* 22 */
                                "      rider: rider_id\n",     /* 23 */
                      "models[0].entity_inputs.rider", 23, 14,
                      "join key 'rider_id' is not a join key of feature service 's'");
}

Test(catalog_load, model_missing_an_entity_input_for_a_needed_join_key_is_reported)
{
    expect_only_error(BASE_YAML "feature_services:\n"
                                "  - name: s\n"
                                "    features: [stats:rate]\n"
                                "models:\n"
                                "  - name: m\n"
                                "    version: 1\n"
                                "    feature_service: s\n",
                      "models[0].feature_service", 20, 22,
                      "needs join key 'driver_id', but no entity_inputs entry carries it");
}

Test(catalog_load, model_without_version_or_label_is_reported)
{
    expect_only_error(BASE_YAML "feature_services:\n"
                                "  - name: s\n"
                                "    features: [stats:rate]\n"
                                "models:\n"
                                "  - name: m\n"
                                "    feature_service: s\n"
                                "    entity_inputs: {driver_id: driver_id}\n",
                      "models[0].version", 18, 5, "missing required key 'version'");
}

Test(catalog_load, unknown_on_missing_is_reported)
{
    expect_only_error(BASE_YAML "feature_services:\n"
                                "  - name: s\n"
                                "    features: [stats:rate]\n"
                                "models:\n"
                                "  - name: m\n"
                                "    version: 1\n"
                                "    feature_service: s\n"
                                "    entity_inputs: {driver_id: driver_id}\n"
                                "    on_missing: skip\n",
                      "models[0].on_missing", 22, 17, "expected error or zero");
}

Test(catalog_load, entity_type_mismatch_within_a_view_is_reported)
{
    expect_only_error("project: p\n"                                /* 1 */
                      "entities:\n"                                 /* 2 */
                      "  - name: a\n"                               /* 3 */
                      "    join_keys: [{name: id, type: INT64}]\n"  /* 4 */
                      "  - name: b\n"                               /* 5 */
                      "    join_keys: [{name: id, type: STRING}]\n" /* 6 */
                      "feature_views:\n"                            /* 7 */
                      "  - name: v\n"                               /* 8 */
                      "    entities: [a, b]\n"                      /* 9 */
                      "    features: [{name: x, dtype: INT64}]\n",  /* 10 */
                      "feature_views[0].entities[1]", 9, 19,
                      "entity type mismatch: join key 'id' is INT64 in entity 'a' but STRING in "
                      "entity 'b'");
}

Test(catalog_load, entity_type_mismatch_across_a_services_views_is_reported)
{
    expect_only_error("project: p\n"                                /* 1 */
                      "entities:\n"                                 /* 2 */
                      "  - name: a\n"                               /* 3 */
                      "    join_keys: [{name: id, type: INT64}]\n"  /* 4 */
                      "  - name: b\n"                               /* 5 */
                      "    join_keys: [{name: id, type: STRING}]\n" /* 6 */
                      "feature_views:\n"                            /* 7 */
                      "  - name: va\n"                              /* 8 */
                      "    entities: [a]\n"                         /* 9 */
                      "    features: [{name: x, dtype: INT64}]\n"   /* 10 */
                      "  - name: vb\n"                              /* 11 */
                      "    entities: [b]\n"                         /* 12 */
                      "    features: [{name: y, dtype: INT64}]\n"   /* 13 */
                      "feature_services:\n"                         /* 14 */
                      "  - name: s\n"                               /* 15 */
                      "    features: [va:x, vb:y]\n",               /* 16 */
                      "feature_services[0].name", 15, 11,
                      "entity type mismatch: join key 'id' is INT64 in feature view 'va@v1' but "
                      "STRING in 'vb@v1'");
}

/* ------------------------------------------------------------------------------------------ */
/* Values, durations and rules                                                                 */

Test(catalog_load, bad_durations_are_reported)
{
    const char *bad[] = {"7days", "5", "-1h", "10y", "h", "99999999999999999999d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, BASE_YAML "    ttl: %s\n", bad[i]);
        expect_only_error(yaml, "feature_views[0].ttl", 14, 10, "bad duration");
    }
}

Test(catalog_load, durations_parse_into_seconds)
{
    const char *ttl[] = {"90s", "15m", "24h", "7d", "0", "1w"};
    int64_t want[] = {90, 900, 86400, 604800, 0, 604800};
    for (size_t i = 0; i < 6; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, BASE_YAML "    ttl: %s\n", ttl[i]);
        catalog_t *c = load_ok(yaml);
        cr_expect_eq(catalog_view_at(c, 0)->ttl_seconds, want[i], "%s", ttl[i]);
        catalog_unref(c);
    }
}

Test(catalog_load, min_greater_than_max_is_reported)
{
    expect_only_error(BASE_YAML "        validation: {min: 5, max: 1.5}\n",
                      "feature_views[0].features[0].validation.min", 14, 27,
                      "min 5 is greater than max 1.5");
}

Test(catalog_load, min_and_max_on_a_non_numeric_dtype_are_reported)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"
             "feature_views:\n"
             "  - name: v\n"
             "    features:\n"
             "      - name: s\n"
             "        dtype: STRING\n"
             "        validation:\n"
             "          min: 1\n"
             "          max: 2\n",
             &errs);
    expect_error(&errs, "feature_views[0].features[0].validation.min", 8, 16,
                 "min applies to numeric dtypes");
    expect_error(&errs, "feature_views[0].features[0].validation.max", 9, 16, "not STRING");
    catalog_errors_clear(&errs);
}

Test(catalog_load, non_numeric_bound_is_reported)
{
    expect_only_error(BASE_YAML "        validation: {max: high}\n",
                      "feature_views[0].features[0].validation.max", 14, 27,
                      "expected a number, got 'high'");
}

Test(catalog_load, max_length_and_pattern_on_the_wrong_dtype_are_reported)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad(BASE_YAML "        validation: {max_length: 3, pattern: 'a+'}\n", &errs);
    expect_error(&errs, "feature_views[0].features[0].validation.max_length", 14, 34,
                 "max_length applies to STRING, BYTES and list dtypes, not FLOAT");
    expect_error(&errs, "feature_views[0].features[0].validation.pattern", 14, 46,
                 "pattern applies to STRING and STRING_LIST dtypes, not FLOAT");
    cr_expect_eq(errs.count, 2);
    catalog_errors_clear(&errs);
}

Test(catalog_load, invalid_regex_is_reported)
{
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    features:\n"
                      "      - name: city\n"
                      "        dtype: STRING\n"
                      "        validation:\n"
                      "          pattern: '[A-Z'\n",
                      "feature_views[0].features[0].validation.pattern", 8, 20,
                      "invalid regular expression '[A-Z'");
}

Test(catalog_load, default_of_the_wrong_type_is_reported)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"                                            /* 1 */
             "feature_views:\n"                                        /* 2 */
             "  - name: v\n"                                           /* 3 */
             "    features:\n"                                         /* 4 */
             "      - {name: a, dtype: INT64, default: abc}\n"         /* 5 */
             "      - {name: b, dtype: STRING, default: 12}\n"         /* 6 */
             "      - {name: c, dtype: INT32, default: 3000000000}\n"  /* 7 */
             "      - {name: d, dtype: BOOL, default: yes}\n"          /* 8 */
             "      - {name: e, dtype: INT64_LIST, default: [1, x]}\n" /* 9 */
             "      - {name: f, dtype: FLOAT_LIST, default: 1.5}\n"    /* 10 */
             "      - {name: g, dtype: BYTES, default: 'b64:%%%'}\n"   /* 11 */
             "      - {name: h, dtype: FLOAT, default: 1e39}\n",       /* 12 */
             &errs);
    expect_error(&errs, "feature_views[0].features[0].default", 5, 42,
                 "expected an integer for INT64, got 'abc'");
    expect_error(&errs, "feature_views[0].features[1].default", 6, 43, "quote it");
    expect_error(&errs, "feature_views[0].features[2].default", 7, 42, "got '3000000000'");
    expect_error(&errs, "feature_views[0].features[3].default", 8, 41, "true or false");
    expect_error(&errs, "feature_views[0].features[4].default[1]", 9, 51, "got 'x'");
    expect_error(&errs, "feature_views[0].features[5].default", 10, 47,
                 "expected a sequence for FLOAT_LIST");
    expect_error(&errs, "feature_views[0].features[6].default", 11, 42, "invalid base64");
    expect_error(&errs, "feature_views[0].features[7].default", 12, 42, "got '1e39'");
    cr_expect_eq(errs.count, 8);
    catalog_errors_clear(&errs);
}

Test(catalog_load, default_that_breaks_its_own_validation_rule_is_reported)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad(
        "project: p\n"                                                         /* 1 */
        "feature_views:\n"                                                     /* 2 */
        "  - name: v\n"                                                        /* 3 */
        "    features:\n"                                                      /* 4 */
        "      - {name: a, dtype: DOUBLE, default: 5, validation: {max: 1}}\n" /* 5 */
        "      - {name: b, dtype: STRING, default: x1, validation: {pattern: '[a-z]+'}}\n"
        "      - {name: c, dtype: INT64_LIST, default: [1, 2, 3], validation: {max_length: 2}}\n"
        "      - {name: d, dtype: STRING, default: c, validation: {allowed_values: [a, b]}}\n",
        &errs);
    expect_error(&errs, "feature_views[0].features[0].default", 5, 43,
                 "the default breaks its own validation rule: max: 5 > 1");
    expect_error(&errs, "feature_views[0].features[1].default", 6, 43, "pattern");
    expect_error(&errs, "feature_views[0].features[2].default", 7, 47, "max_length: 3 items > 2");
    expect_error(&errs, "feature_views[0].features[3].default", 8, 43, "allowed_values");
    cr_expect_eq(errs.count, 4);
    catalog_errors_clear(&errs);
}

Test(catalog_load, allowed_values_of_the_wrong_type_are_reported)
{
    expect_only_error(BASE_YAML "        validation: {allowed_values: [0.5, big]}\n",
                      "feature_views[0].features[0].validation.allowed_values[1]", 14, 44,
                      "expected a number for FLOAT");
}

Test(catalog_load, upstream_target_must_be_host_and_port)
{
    const char *bad[] = {"localhost", "localhost:0", "localhost:65536", ":8500",
                         "host:80x",  "a b:1",       "[::1]8500",       "host:"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 BASE_YAML "feature_services:\n"                         /* 14 */
                           "  - name: s\n"                               /* 15 */
                           "    features: [stats:rate]\n"                /* 16 */
                           "models:\n"                                   /* 17 */
                           "  - name: m\n"                               /* 18 */
                           "    version: 1\n"                            /* 19 */
                           "    feature_service: s\n"                    /* 20 */
                           "    entity_inputs: {driver_id: driver_id}\n" /* 21 */
                           "    upstream:\n"                             /* 22 */
                           "      target: '%s'\n",                       /* 23 */
                 bad[i]);
        expect_only_error(yaml, "models[0].upstream.target", 23, 15, "expected host:port");
    }
    const char *good[] = {"localhost:8500", "127.0.0.1:1", "[::1]:65535", "model-server.svc:9000"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 BASE_YAML "feature_services:\n"
                           "  - name: s\n"
                           "    features: [stats:rate]\n"
                           "models:\n"
                           "  - name: m\n"
                           "    version: 1\n"
                           "    feature_service: s\n"
                           "    entity_inputs: {driver_id: driver_id}\n"
                           "    upstream:\n"
                           "      target: '%s'\n",
                 good[i]);
        catalog_t *c = load_ok(yaml);
        const catalog_model_t *m = catalog_model_at(c, 0);
        cr_expect(m->has_upstream);
        cr_expect_str_eq(m->upstream.target, good[i]);
        cr_expect_str_eq(m->upstream.model_name, "m", "model_name defaults to the binding's");
        cr_expect(m->upstream.keep_entity_inputs);
        cr_expect_not(m->upstream.tls, "plaintext unless the binding says tls: true");
        catalog_unref(c);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* YAML itself                                                                                 */

Test(catalog_load, yaml_syntax_error_is_reported_with_its_mark)
{
    expect_only_error("project: p\n"
                      "entities: [a, b\n"
                      "feature_views: []\n",
                      "(yaml)", 3, 14, "YAML syntax error");
}

Test(catalog_load, yaml_scanner_error_is_reported_with_its_mark)
{
    expect_only_error("project: p\n"
                      "  bad: x\n",
                      "(yaml)", 2, 6, "mapping values are not allowed");
}

Test(catalog_load, aliases_are_refused)
{
    expect_only_error("project: &p p\n"
                      "entities: *p\n",
                      "(yaml)", 2, 11, "aliases");
}

Test(catalog_load, empty_input_is_missing_its_project)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("", &errs);
    cr_expect_str_eq(errs.items[0].key, "project");
    catalog_errors_clear(&errs);
}

Test(catalog_load, errors_without_an_errs_list_still_fail)
{
    catalog_t *c = NULL;
    const char *yaml = "project: [\n";
    cr_expect_eq(catalog_load_string(yaml, strlen(yaml), NULL, &c, NULL), -EINVAL);
    cr_expect_null(c);
}

/* ------------------------------------------------------------------------------------------ */
/* All at once                                                                                 */

Test(catalog_load, every_error_of_the_bad_example_is_reported_at_once)
{
    char *path = source_path("examples/catalog-bad.yaml");
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    cr_assert_eq(catalog_load(path, &c, &errs), -EINVAL);
    cr_assert_null(c);
    const char *keys[] = {
        "feature_views[0].entities[1]",
        "feature_views[0].ttl",
        "feature_views[0].fetures",
        "feature_views[0].features[0].dtype",
        "feature_views[0].features[1].validation.min",
        "feature_views[0].features[2].validation.pattern",
        "feature_services[1].features[1]",
        "feature_services[1].features[2]",
        "models[0].entity_inputs.driver",
        "models[0].feature_service",
        "models[0].upstream.target",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect_not_null(find_error(&errs, keys[i]), "missing error for %s", keys[i]);
    /* Sorted by place, so the file reads top to bottom. */
    for (size_t i = 1; i < errs.count; i++)
        cr_expect(errs.items[i - 1].line <= errs.items[i].line);
    cr_expect_not_null(strstr(errs.items[0].file, "catalog-bad.yaml"));
    catalog_errors_clear(&errs);
    free(path);
}

Test(catalog_load, errors_are_appended_to_an_existing_list)
{
    catalog_errors_t errs = {NULL, 0};
    catalog_t *c = NULL;
    const char *a = "project: [\n", *b = "- x\n";
    catalog_load_string(a, strlen(a), "a.yaml", &c, &errs);
    size_t first = errs.count;
    catalog_load_string(b, strlen(b), "b.yaml", &c, &errs);
    cr_expect_gt(errs.count, first);
    cr_expect_str_eq(errs.items[errs.count - 1].file, "b.yaml");
    catalog_errors_clear(&errs);
    cr_expect_eq(errs.count, 0);
    cr_expect_null(errs.items);
    catalog_errors_clear(NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Files and directories                                                                       */

static char *write_file(const char *dir, const char *name, const char *text)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_dir(p);
        else
            unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

Test(catalog_load, directory_files_are_merged_in_name_order)
{
    char dir[1024];
    cr_assert_not_null(test_tmpdir("catalog", dir, sizeof dir));
    free(write_file(dir, "b_views.yml",
                    "feature_views:\n"
                    "  - name: stats\n"
                    "    entities: [driver]\n"
                    "    features: [{name: rate, dtype: FLOAT}]\n"));
    free(write_file(dir, "a_entities.yaml",
                    "project: p\n"
                    "entities:\n"
                    "  - name: driver\n"
                    "    join_keys: [{name: driver_id, type: INT64}]\n"));
    free(write_file(dir, "c_services.yaml",
                    "project: p\n"
                    "feature_services:\n"
                    "  - name: s\n"
                    "    features: [stats:*]\n"));
    free(write_file(dir, "notes.txt", "this: is not yaml: at all: [\n"));
    free(write_file(dir, ".hidden.yaml", "garbage: ["));
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/nested.yaml", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);

    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    int rc = catalog_load(dir, &c, &errs);
    if (rc != 0)
        print_errors(&errs);
    cr_assert_eq(rc, 0);
    cr_expect_str_eq(catalog_project(c), "p");
    cr_expect_eq(catalog_entity_count(c), 1);
    cr_expect_eq(catalog_view_count(c), 1);
    const catalog_service_t *s;
    cr_assert_eq(catalog_find_service(c, "s", &s), 0);
    cr_expect_eq(s->n_features, 1);
    catalog_unref(c);
    remove_dir(dir);
}

Test(catalog_load, directory_errors_name_their_file)
{
    char dir[1024];
    cr_assert_not_null(test_tmpdir("catalog", dir, sizeof dir));
    free(write_file(dir, "1.yaml", "project: p\n"));
    char *two = write_file(dir, "2.yaml",
                           "project: q\n"
                           "feature_views:\n"
                           "  - name: v\n"
                           "    fetures: []\n");
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    cr_assert_eq(catalog_load(dir, &c, &errs), -EINVAL);
    expect_error(&errs, "project", 1, 10, "project 'q' conflicts with project 'p'");
    const catalog_error_t *e = find_error(&errs, "feature_views[0].fetures");
    cr_assert_not_null(e);
    cr_expect_str_eq(e->file, two);
    cr_expect_eq(e->line, 4);
    catalog_errors_clear(&errs);
    free(two);
    remove_dir(dir);
}

Test(catalog_load, same_project_in_several_files_is_fine)
{
    char dir[1024];
    cr_assert_not_null(test_tmpdir("catalog", dir, sizeof dir));
    free(write_file(dir, "1.yaml", "project: p\n"));
    free(write_file(dir, "2.yaml", "project: p\n"));
    catalog_t *c = NULL;
    cr_assert_eq(catalog_load(dir, &c, NULL), 0);
    catalog_unref(c);
    remove_dir(dir);
}

Test(catalog_load, syntax_error_in_one_file_still_reports_the_others)
{
    char dir[1024];
    cr_assert_not_null(test_tmpdir("catalog", dir, sizeof dir));
    free(write_file(dir, "1.yaml", "project: [\n"));
    free(write_file(dir, "2.yaml", "projekt: p\n"));
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    cr_assert_eq(catalog_load(dir, &c, &errs), -EINVAL);
    cr_expect_not_null(find_error(&errs, "(yaml)"));
    expect_error(&errs, "projekt", 1, 1, "did you mean 'project'?");
    catalog_errors_clear(&errs);
    remove_dir(dir);
}

Test(catalog_load, empty_directory_is_enoent)
{
    char dir[1024];
    cr_assert_not_null(test_tmpdir("catalog", dir, sizeof dir));
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    cr_expect_eq(catalog_load(dir, &c, &errs), -ENOENT);
    cr_assert_eq(errs.count, 1);
    cr_expect_not_null(strstr(errs.items[0].message, "no *.yaml"));
    catalog_errors_clear(&errs);
    remove_dir(dir);
}

Test(catalog_load, missing_file_is_enoent_and_described)
{
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    cr_expect_eq(catalog_load("/nonexistent/catalog.yaml", &c, &errs), -ENOENT);
    cr_assert_eq(errs.count, 1);
    cr_expect_str_eq(errs.items[0].file, "/nonexistent/catalog.yaml");
    catalog_errors_clear(&errs);
}

Test(catalog_load, unreadable_file_is_eacces)
{
    if (geteuid() == 0)
        cr_skip_test("root reads everything");
    char dir[1024];
    cr_assert_not_null(test_tmpdir("catalog", dir, sizeof dir));
    char *p = write_file(dir, "c.yaml", "project: p\n");
    chmod(p, 0);
    catalog_t *c = NULL;
    cr_expect_eq(catalog_load(p, &c, NULL), -EACCES);
    free(p);
    remove_dir(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* The example                                                                                 */

Test(catalog_load, example_catalog_loads_cleanly)
{
    char *path = source_path("examples/catalog");
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    int rc = catalog_load(path, &c, &errs);
    if (rc != 0)
        print_errors(&errs);
    cr_assert_eq(rc, 0);
    cr_expect_str_eq(catalog_project(c), "ride_hailing");
    cr_expect_eq(catalog_entity_count(c), 2);
    cr_expect_eq(catalog_view_count(c), 6);
    cr_expect_eq(catalog_service_count(c), 4);
    cr_expect_eq(catalog_model_count(c), 3);
    cr_expect_eq(catalog_on_demand_count(c), 1);
    cr_expect_eq(catalog_request_source_count(c), 1);
    cr_expect_eq(strlen(catalog_digest(c)), 16);

    const catalog_view_t *v;
    cr_assert_eq(catalog_find_view(c, "driver_hourly_stats", 0, &v), 0);
    cr_expect_eq(v->version, 1, "v1 is marked default: true");
    cr_expect_eq(v->ttl_seconds, 7 * 86400);
    cr_expect_str_eq(v->lineage_source, "warehouse.trips_hourly");
    cr_expect_not(v->history);
    cr_assert_eq(catalog_find_view(c, "driver_trips", 0, &v), 0);
    cr_expect(v->history);
    cr_expect_eq(v->history_retention_s, 90 * 86400);

    const catalog_model_t *m;
    cr_assert_eq(catalog_find_model(c, "driver_ranker_enriched", 0, NULL, &m), 0);
    cr_expect(m->has_upstream);
    cr_expect_str_eq(m->upstream.target, "127.0.0.1:8500");
    cr_expect_eq(m->upstream.timeout_ms, 200);
    cr_assert_eq(catalog_find_model(c, "driver_ranker", 1, NULL, &m), 0);
    cr_expect_eq(m->on_missing, CATALOG_ON_MISSING_ZERO);
    cr_expect_str_eq(m->service->name, "driver_activity_v3");
    catalog_unref(c);
    catalog_errors_clear(&errs);
    free(path);
}

Test(catalog_load, patterns_that_would_explode_regcomp_are_refused)
{
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    features:\n"
                      "      - name: s\n"
                      "        dtype: STRING\n"
                      "        validation: {pattern: '((a{255}){255}){255}'}\n",
                      "feature_views[0].features[0].validation.pattern", 7, 31,
                      "repetition counts multiply past");
}

Test(catalog_load, backreferences_are_refused_with_where_they_are)
{
    /* The attack pattern: with it, one 1000-character write spun a worker for 40 s. */
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    features:\n"
                      "      - name: s\n"
                      "        dtype: STRING\n"
                      "        validation: {pattern: '(a*)*\\1b'}\n",
                      "feature_views[0].features[0].validation.pattern", 7, 31,
                      "backreference '\\1' at offset 5");
}

Test(catalog_load, a_backslash_digit_inside_brackets_is_a_character_not_a_backreference)
{
    catalog_t *c = load_ok("project: p\n"
                           "feature_views:\n"
                           "  - name: v\n"
                           "    features:\n"
                           "      - name: s\n"
                           "        dtype: STRING\n"
                           "        validation: {pattern: '[\\1[:digit:]]+x\\.'}\n");
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(c, "v", 0, &v), 0);
    char why[128];
    catalog_value_t ok = {.type = CATALOG_DTYPE_STRING, .u.bytes = {(const uint8_t *)"\\19x.", 5}};
    cr_assert_eq(catalog_validate_value(&v->features[0], &ok, why, sizeof why), 0, "%s", why);
    catalog_unref(c);
}

Test(catalog_load, nul_characters_in_strings_are_refused)
{
    expect_only_error("project: \"a\\0b\"\n", "(yaml)", 1, 10, "NUL characters");
}

Test(catalog_load, nesting_too_deep_is_refused)
{
    char yaml[400] = "project: p\nx: ";
    for (int i = 0; i < 100; i++)
        strcat(yaml, "[");
    catalog_errors_t errs = {NULL, 0};
    load_bad(yaml, &errs);
    cr_expect_not_null(strstr(errs.items[0].message, "nesting deeper than"));
    catalog_errors_clear(&errs);
}

/* ------------------------------------------------------------------------------------------ */
/* Offline history                                                                             */

Test(catalog_load, offline_takes_a_retention_and_only_on_an_online_view)
{
    catalog_t *c = load_ok("project: p\n"
                           "feature_views:\n"
                           "  - name: v\n"
                           "    offline: {retention: 30d}\n"
                           "    features: [{name: x, dtype: INT64}]\n"
                           "  - name: w\n"
                           "    offline: {}\n"
                           "    features: [{name: x, dtype: INT64}]\n");
    const catalog_view_t *v;
    cr_assert_eq(catalog_find_view(c, "v", 0, &v), 0);
    cr_expect(v->history);
    cr_expect_eq(v->history_retention_s, 30 * 86400);
    cr_assert_eq(catalog_find_view(c, "w", 0, &v), 0);
    cr_expect(v->history && v->history_retention_s == 0, "no retention: kept forever");
    catalog_unref(c);
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    offline: {retention: soon}\n"
                      "    features: [{name: x, dtype: INT64}]\n",
                      "feature_views[0].offline.retention", 4, 26, "bad duration 'soon'");
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    online: false\n"
                      "    offline: {retention: 1d}\n"
                      "    features: [{name: x, dtype: INT64}]\n",
                      "feature_views[0].offline", 5, 14, "is not online");
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    offline: {retain: 1d}\n"
                      "    features: [{name: x, dtype: INT64}]\n",
                      "feature_views[0].offline.retain", 4, 15, "expected one of: retention");
}
