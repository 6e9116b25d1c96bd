/* tests/catalog/test_load.c - loading: every error class with its place, merging, resolution. */
#include <dirent.h>
#include <sys/stat.h>
#include <math.h>
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
                      "repetitions expand past");
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

/* ------------------------------------------------------------------------------------------ */
/* YAML 1.2 core-schema scalars                                                                */

/* A feature's default by name, asserting the view and feature exist. */
static const catalog_feature_t *feature_of(catalog_t *c, const char *view, const char *name)
{
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(c, view, 0, &v), 0, "no view %s", view);
    for (size_t i = 0; i < v->n_features; i++) {
        if (strcmp(v->features[i].name, name) == 0)
            return &v->features[i];
    }
    cr_assert_fail("no feature %s in %s", name, view);
    return NULL;
}

Test(catalog_load, core_schema_spellings_of_numbers_booleans_and_null_resolve)
{
    /* Every spelling the core schema gives a plain scalar: hex with either case of digit, octal,
     * an explicit sign, exponents, the three .inf and .nan spellings, and an integer where a
     * float is wanted. A wrong base or sign would give another value, not an error. */
    catalog_t *c = load_ok("project: p\n"
                           "feature_views:\n"
                           "  - name: v\n"
                           "    online: TRUE\n"
                           "    description: Null\n"
                           "    features:\n"
                           "      - {name: hex, dtype: INT64, default: 0xfF}\n"
                           "      - {name: oct, dtype: INT64, default: 0o17}\n"
                           "      - {name: plus, dtype: INT64, default: +42}\n"
                           "      - {name: minus, dtype: INT64, default: -9223372036854775808}\n"
                           "      - {name: max, dtype: INT64, default: 9223372036854775807}\n"
                           "      - {name: i32, dtype: INT32, default: -2147483648}\n"
                           "      - {name: exp, dtype: DOUBLE, default: -1.5E+3}\n"
                           "      - {name: dot, dtype: DOUBLE, default: .5e-1}\n"
                           "      - {name: whole, dtype: DOUBLE, default: 7}\n"
                           "      - {name: ninf, dtype: DOUBLE, default: -.Inf}\n"
                           "      - {name: pinf, dtype: FLOAT, default: +.INF}\n"
                           "      - {name: nan, dtype: DOUBLE, default: .NaN}\n"
                           "      - {name: t, dtype: BOOL, default: True}\n"
                           "      - {name: f, dtype: BOOL, default: FALSE}\n"
                           "      - {name: nul, dtype: STRING, default: NULL}\n"
                           "      - {name: tilde, dtype: STRING, default: ~}\n"
                           "      - {name: ts, dtype: UNIX_TIMESTAMP, default: 1700000000}\n");
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(c, "v", 0, &v), 0);
    cr_expect(v->online);
    cr_expect_str_eq(v->description, "", "Null is no description");
    cr_expect_eq(feature_of(c, "v", "hex")->default_value.u.i64, 255);
    cr_expect_eq(feature_of(c, "v", "oct")->default_value.u.i64, 15);
    cr_expect_eq(feature_of(c, "v", "plus")->default_value.u.i64, 42);
    cr_expect_eq(feature_of(c, "v", "minus")->default_value.u.i64, INT64_MIN);
    cr_expect_eq(feature_of(c, "v", "max")->default_value.u.i64, INT64_MAX);
    cr_expect_eq(feature_of(c, "v", "i32")->default_value.u.i32, INT32_MIN);
    cr_expect_eq(feature_of(c, "v", "exp")->default_value.u.f64, -1500.0);
    cr_expect_eq(feature_of(c, "v", "dot")->default_value.u.f64, 0.05);
    cr_expect_eq(feature_of(c, "v", "whole")->default_value.u.f64, 7.0);
    cr_expect(isinf(feature_of(c, "v", "ninf")->default_value.u.f64) &&
              feature_of(c, "v", "ninf")->default_value.u.f64 < 0);
    cr_expect(isinf(feature_of(c, "v", "pinf")->default_value.u.f32) &&
              feature_of(c, "v", "pinf")->default_value.u.f32 > 0);
    cr_expect(isnan(feature_of(c, "v", "nan")->default_value.u.f64));
    cr_expect(feature_of(c, "v", "t")->default_value.u.b);
    cr_expect(feature_of(c, "v", "f")->has_default);
    cr_expect_not(feature_of(c, "v", "f")->default_value.u.b);
    cr_expect_not(feature_of(c, "v", "nul")->has_default, "NULL is no default");
    cr_expect_not(feature_of(c, "v", "tilde")->has_default, "~ is no default");
    cr_expect_eq(feature_of(c, "v", "ts")->default_value.u.i64, 1700000000);
    catalog_unref(c);
}

Test(catalog_load, integers_outside_the_core_schema_or_int64_are_not_integers)
{
    /* A sign before 0x, an octal 8, a bare prefix, one past INT64_MAX and a quoted number are
     * all strings to YAML, so a version must refuse them rather than read some number. */
    static const char *const bad[] = {"-0x10", "0o8", "0x", "0xg", "9223372036854775808",
                                      "'2'",   "+",   "1_0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[256], msg[64];
        snprintf(yaml, sizeof yaml,
                 "project: p\n"
                 "feature_views:\n"
                 "  - name: v\n"
                 "    version: %s\n"
                 "    features: [{name: x, dtype: INT64}]\n",
                 bad[i]);
        /* the message quotes the scalar's text, without YAML's quotes */
        snprintf(msg, sizeof msg, "expected an integer, got '%s'",
                 bad[i][0] == '\'' ? "2" : bad[i]);
        expect_only_error(yaml, "feature_views[0].version", 4, 14, msg);
    }
    /* -9223372036854775809 is one below INT64_MIN: no INT64 default */
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    features: [{name: x, dtype: INT64, default: -9223372036854775809}]\n",
                      "feature_views[0].features[0].default", 4, 49,
                      "expected an integer for INT64, got '-9223372036854775809'");
}

Test(catalog_load, a_version_above_65535_is_out_of_range)
{
    expect_only_error("project: p\n"
                      "feature_views:\n"
                      "  - name: v\n"
                      "    version: 0x10000\n"
                      "    features: [{name: x, dtype: INT64}]\n",
                      "feature_views[0].version", 4, 14,
                      "65536 is out of range: expected 1 to 65535");
}

Test(catalog_load, malformed_numbers_are_not_validation_bounds)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad(BASE_YAML "        validation: {min: 1e, max: .nan}\n", &errs);
    expect_error(&errs, "feature_views[0].features[0].validation.min", 14, 27,
                 "expected a number, got '1e'");
    expect_error(&errs, "feature_views[0].features[0].validation.max", 14, 36,
                 "expected a number, got '.nan'");
    cr_expect_eq(errs.count, 2);
    catalog_errors_clear(&errs);
}

/* ------------------------------------------------------------------------------------------ */
/* Keys, nulls, empty lists and tags                                                           */

Test(catalog_load, keys_that_are_not_scalars_are_reported)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"     /* 1 */
             "? [a, b]\n"       /* 2 */
             ": 1\n"            /* 3 */
             "feature_views:\n" /* 4 */
             "  - name: v\n"    /* 5 */
             "    ? {k: 1}\n"   /* 6 */
             "    : 2\n"        /* 7 */
             "    features: [{name: x, dtype: INT64}]\n",
             &errs);
    expect_error(&errs, "(top level)", 2, 3, "keys must be plain strings, not a sequence");
    expect_error(&errs, "feature_views[0]", 6, 7, "keys must be plain strings, not a mapping");
    cr_expect_eq(errs.count, 2);
    catalog_errors_clear(&errs);
}

Test(catalog_load, null_where_a_mapping_belongs_says_it_got_nothing)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"                                  /* 1 */
             "entities:\n"                                   /* 2 */
             "  -\n"                                         /* 3 */
             "feature_views:\n"                              /* 4 */
             "  - name: v\n"                                 /* 5 */
             "    features: [~, {name: x, dtype: INT64}]\n", /* 6 */
             &errs);
    /* an empty entry is a null at the end of its dash */
    expect_error(&errs, "entities[0]", 3, 4, "expected a mapping, got nothing (null)");
    expect_error(&errs, "feature_views[0].features[0]", 6, 16,
                 "expected a mapping, got nothing (null)");
    cr_expect_eq(errs.count, 2);
    catalog_errors_clear(&errs);
}

Test(catalog_load, empty_required_lists_say_what_they_lack)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"                                /* 1 */
             "entities:\n"                                 /* 2 */
             "  - {name: e, join_keys: []}\n"              /* 3 */
             "feature_views:\n"                            /* 4 */
             "  - {name: v, features: []}\n"               /* 5 */
             "feature_services:\n"                         /* 6 */
             "  - {name: s, features: []}\n"               /* 7 */
             "request_sources:\n"                          /* 8 */
             "  - {name: r, schema: []}\n"                 /* 9 */
             "on_demand_feature_views:\n"                  /* 10 */
             "  - {name: o, sources: [], features: []}\n", /* 11 */
             &errs);
    expect_error(&errs, "entities[0].join_keys", 3, 26, "an entity needs at least one join key");
    expect_error(&errs, "feature_views[0].features", 5, 25,
                 "a feature view needs at least one feature");
    expect_error(&errs, "feature_services[0].features", 7, 25,
                 "a feature service needs at least one feature reference");
    expect_error(&errs, "request_sources[0].schema", 9, 23,
                 "a request source needs at least one field");
    expect_error(&errs, "on_demand_feature_views[0].sources", 11, 24,
                 "an on-demand feature view needs at least one source");
    expect_error(&errs, "on_demand_feature_views[0].features", 11, 38,
                 "an on-demand feature view needs at least one feature");
    cr_expect_eq(errs.count, 6);
    catalog_errors_clear(&errs);
}

Test(catalog_load, tags_are_sorted_null_values_are_empty_and_duplicates_refused)
{
    catalog_t *c = load_ok(BASE_YAML "    tags: {team: ml, area: ~, tier: 1}\n");
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(c, "stats", 0, &v), 0);
    cr_assert_eq(v->n_tags, 3);
    cr_expect_str_eq(v->tags[0].key, "area");
    cr_expect_str_eq(v->tags[0].value, "", "a null tag value is empty");
    cr_expect_str_eq(v->tags[1].key, "team");
    cr_expect_str_eq(v->tags[1].value, "ml");
    cr_expect_str_eq(v->tags[2].key, "tier");
    cr_expect_str_eq(v->tags[2].value, "1", "a number is kept as written");
    catalog_unref(c);

    catalog_errors_t errs = {NULL, 0};
    load_bad(BASE_YAML "    tags: {a: x, b: [1], a: y, ? [k] : v}\n", &errs);
    expect_error(&errs, "feature_views[0].tags", 14, 21, "tags must map strings to strings");
    expect_error(&errs, "feature_views[0].tags.a", 14, 26, "duplicate tag 'a'");
    cr_assert_eq(errs.count, 3);
    /* the non-scalar key is reported at the key itself (errors are sorted by place) */
    cr_expect_str_eq(errs.items[2].key, "feature_views[0].tags");
    cr_expect_eq(errs.items[2].column, 34);
    cr_expect_str_eq(errs.items[2].message, "tags must map strings to strings");
    catalog_errors_clear(&errs);
}

/* ------------------------------------------------------------------------------------------ */
/* Defaults and validation of every dtype                                                      */

Test(catalog_load, defaults_of_bytes_timestamps_and_lists_are_typed)
{
    catalog_t *c = load_ok("project: p\n"
                           "feature_views:\n"
                           "  - name: v\n"
                           "    features:\n"
                           "      - {name: raw, dtype: BYTES, default: 'ab'}\n"
                           "      - {name: bin, dtype: BYTES, default: 'b64:AAH/'}\n"
                           "      - {name: il, dtype: INT32_LIST, default: [1, -2]}\n"
                           "      - {name: dl, dtype: DOUBLE_LIST, default: [0.5, 2]}\n"
                           "      - {name: bl, dtype: BOOL_LIST, default: [true, false]}\n"
                           "      - {name: sl, dtype: STRING_LIST, default: [a, 'b']}\n"
                           "      - {name: fl, dtype: FLOAT_LIST, default: []}\n");
    const catalog_feature_t *f = feature_of(c, "v", "raw");
    cr_expect_eq(f->default_value.u.bytes.len, 2);
    cr_expect_eq(memcmp(f->default_value.u.bytes.data, "ab", 2), 0);
    f = feature_of(c, "v", "bin");
    cr_assert_eq(f->default_value.u.bytes.len, 3, "b64: is decoded");
    cr_expect_eq(memcmp(f->default_value.u.bytes.data, "\x00\x01\xff", 3), 0);
    f = feature_of(c, "v", "il");
    cr_assert_eq(f->default_value.u.list.n, 2);
    cr_expect_eq(f->default_value.u.list.v.i32[1], -2);
    f = feature_of(c, "v", "dl");
    cr_assert_eq(f->default_value.u.list.n, 2);
    cr_expect_eq(f->default_value.u.list.v.f64[0], 0.5);
    cr_expect_eq(f->default_value.u.list.v.f64[1], 2.0);
    f = feature_of(c, "v", "bl");
    cr_assert_eq(f->default_value.u.list.n, 2);
    cr_expect(f->default_value.u.list.v.b[0] && !f->default_value.u.list.v.b[1]);
    f = feature_of(c, "v", "sl");
    cr_assert_eq(f->default_value.u.list.n, 2);
    cr_expect_eq(f->default_value.u.list.v.bytes[1].len, 1);
    cr_expect_eq(f->default_value.u.list.v.bytes[1].data[0], 'b');
    f = feature_of(c, "v", "fl");
    cr_expect(f->has_default);
    cr_expect_eq(f->default_value.u.list.n, 0, "an empty list is a default too");
    catalog_unref(c);
}

Test(catalog_load, defaults_of_the_wrong_shape_name_what_each_dtype_expects)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"                                                /* 1 */
             "feature_views:\n"                                            /* 2 */
             "  - name: v\n"                                               /* 3 */
             "    features:\n"                                             /* 4 */
             "      - {name: a, dtype: BYTES, default: {x: 1}}\n"          /* 5 */
             "      - {name: b, dtype: UNIX_TIMESTAMP, default: 'soon'}\n" /* 6 */
             "      - {name: c, dtype: INT64_LIST, default: [1, ~]}\n"     /* 7 */
             "      - {name: d, dtype: STRING_LIST, default: {x: 1}}\n"    /* 8 */
             "      - {name: e, dtype: DOUBLE, default: [1]}\n",           /* 9 */
             &errs);
    expect_error(&errs, "feature_views[0].features[0].default", 5, 42,
                 "expected a string (\"b64:...\" for binary) for BYTES, got a mapping");
    expect_error(&errs, "feature_views[0].features[1].default", 6, 51,
                 "expected an integer (seconds since the epoch) for UNIX_TIMESTAMP, got 'soon'");
    expect_error(&errs, "feature_views[0].features[2].default[1]", 7, 51,
                 "expected an integer for INT64, got null");
    expect_error(&errs, "feature_views[0].features[3].default", 8, 48,
                 "expected a sequence for STRING_LIST, got a mapping");
    expect_error(&errs, "feature_views[0].features[4].default", 9, 43,
                 "expected a number for DOUBLE, got a sequence");
    cr_expect_eq(errs.count, 5);
    catalog_errors_clear(&errs);
}

Test(catalog_load, empty_allowed_values_are_refused)
{
    expect_only_error(BASE_YAML "        validation: {allowed_values: []}\n",
                      "feature_views[0].features[0].validation.allowed_values", 14, 38,
                      "allowed_values must not be empty");
}

Test(catalog_load, join_key_without_a_type_is_reported_where_it_is)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"                        /* 1 */
             "entities:\n"                         /* 2 */
             "  - name: e\n"                       /* 3 */
             "    join_keys:\n"                    /* 4 */
             "      - {name: a}\n"                 /* 5 */
             "      - {name: b, type: ~}\n"        /* 6 */
             "      - {name: c, type: [INT64]}\n", /* 7 */
             &errs);
    /* absent: at the join key's mapping; null: at the null itself */
    expect_error(&errs, "entities[0].join_keys[0].type", 5, 9, "missing required key 'type'");
    expect_error(&errs, "entities[0].join_keys[1].type", 6, 25, "missing required key 'type'");
    expect_error(&errs, "entities[0].join_keys[2].type", 7, 25,
                 "expected a scalar, got a sequence");
    cr_expect_eq(errs.count, 3);
    catalog_errors_clear(&errs);
}

/* The duplicate check over earlier join keys once had no break: the third 'id' was reported
 * twice (once against each earlier one), three errors with two of them identical. */
Test(catalog_load, a_join_key_repeated_three_times_is_reported_once_per_repeat)
{
    /* The second and the third 'id' are each one mistake; features and request fields report a
     * repeat once, whatever came before it. */
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"
             "entities:\n"
             "  - name: e\n"
             "    join_keys:\n"
             "      - {name: id, type: INT64}\n"
             "      - {name: id, type: INT64}\n"
             "      - {name: id, type: INT64}\n",
             &errs);
    if (errs.count != 2)
        print_errors(&errs);
    cr_expect_eq(errs.count, 2);
    expect_error(&errs, "entities[0].join_keys[1].name", 6, 16, "duplicate join key 'id'");
    expect_error(&errs, "entities[0].join_keys[2].name", 7, 16, "duplicate join key 'id'");
    catalog_errors_clear(&errs);
}

/* ------------------------------------------------------------------------------------------ */
/* Models, request sources and on-demand views                                                 */

#define MODEL_YAML                                                                                 \
    BASE_YAML "feature_services:\n"          /* 14 */                                              \
              "  - name: s\n"                /* 15 */                                              \
              "    features: [stats:rate]\n" /* 16 */                                              \
              "models:\n"                    /* 17 */                                              \
              "  - name: m\n"                /* 18 */                                              \
              "    version: 1\n"             /* 19 */                                              \
              "    feature_service: s\n"     /* 20 */

Test(catalog_load, upstream_without_a_target_is_reported)
{
    expect_only_error(MODEL_YAML "    entity_inputs: {driver_id: driver_id}\n" /* 21 */
                                 "    upstream: {timeout_ms: 5}\n",            /* 22 */
                      "models[0].upstream.target", 22, 15, "missing required key 'target'");
    expect_only_error(MODEL_YAML "    entity_inputs: {driver_id: driver_id}\n" /* 21 */
                                 "    upstream: {target: ~}\n",                /* 22 */
                      "models[0].upstream.target", 22, 24, "missing required key 'target'");
}

Test(catalog_load, upstream_options_are_read)
{
    catalog_t *c = load_ok(MODEL_YAML "    version_label: canary\n"
                                      "    entity_inputs: {driver_id: driver_id}\n"
                                      "    upstream:\n"
                                      "      target: 'svc:9000'\n"
                                      "      model_name: ranker\n"
                                      "      signature_name: serving\n"
                                      "      timeout_ms: 4294967295\n"
                                      "      keep_entity_inputs: false\n"
                                      "      tls: true\n");
    const catalog_model_t *m = NULL;
    cr_assert_eq(catalog_find_model(c, "m", 0, "canary", &m), 0);
    cr_expect_str_eq(m->upstream.model_name, "ranker");
    cr_expect_str_eq(m->upstream.signature_name, "serving");
    cr_expect_eq(m->upstream.timeout_ms, UINT32_MAX);
    cr_expect_not(m->upstream.keep_entity_inputs);
    cr_expect(m->upstream.tls);
    catalog_unref(c);
    expect_only_error(MODEL_YAML "    entity_inputs: {driver_id: driver_id}\n"
                                 "    upstream: {target: 'h:1', timeout_ms: 4294967296}\n",
                      "models[0].upstream.timeout_ms", 22, 43,
                      "4294967296 is out of range: expected 0 to 4294967295");
}

Test(catalog_load, more_upstream_targets_that_are_not_host_and_port)
{
    /* brackets without an address, a non-hex IPv6, an unclosed bracket, a six-digit port */
    static const char *const bad[] = {"[]:1", "[::g]:1", "[::1:1", "h:000080", "h/x:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 MODEL_YAML "    entity_inputs: {driver_id: driver_id}\n" /* 21 */
                            "    upstream: {target: '%s'}\n",             /* 22 */
                 bad[i]);
        expect_only_error(yaml, "models[0].upstream.target", 22, 24,
                          "expected host:port with a port from 1 to 65535");
    }
    catalog_t *c = load_ok(MODEL_YAML "    entity_inputs: {driver_id: driver_id}\n"
                                      "    upstream: {target: 'A-Z_0.9:00080'}\n");
    cr_expect_str_eq(catalog_model_at(c, 0)->upstream.target, "A-Z_0.9:00080",
                     "five port digits with leading zeros are port 80");
    catalog_unref(c);
}

Test(catalog_load, entity_inputs_must_map_strings_once_each)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad(MODEL_YAML "    entity_inputs: {d: driver_id, x: [a], d: driver_id, ~: y}\n", &errs);
    expect_error(&errs, "models[0].entity_inputs", 21, 35,
                 "entity_inputs maps a Predict input name to a join key name (both strings)");
    expect_error(&errs, "models[0].entity_inputs.d", 21, 43, "duplicate entity input 'd'");
    cr_expect_eq(errs.count, 3, "the null key is the third");
    catalog_errors_clear(&errs);
}

Test(catalog_load, request_source_fields_are_named_once_and_typed)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"                        /* 1 */
             "request_sources:\n"                  /* 2 */
             "  - name: r\n"                       /* 3 */
             "    schema:\n"                       /* 4 */
             "      - {name: a, dtype: INT64}\n"   /* 5 */
             "      - {name: a, dtype: INT64}\n"   /* 6 */
             "      - {name: b}\n"                 /* 7 */
             "      - {name: c, dtype: 'NULL'}\n"  /* 8 */
             "      - {name: d, dtype: INT}\n"     /* 9 */
             "      - {name: e, dtype: [INT64]}\n" /* 10 */
             "      - x\n",                        /* 11 */
             &errs);
    expect_error(&errs, "request_sources[0].schema[1].name", 6, 16,
                 "duplicate field 'a' in request source 'r'");
    expect_error(&errs, "request_sources[0].schema[2].dtype", 7, 9, "missing required key 'dtype'");
    expect_error(&errs, "request_sources[0].schema[3].dtype", 8, 26, "unknown dtype 'NULL'");
    expect_error(&errs, "request_sources[0].schema[4].dtype", 9, 26, "unknown dtype 'INT'");
    expect_error(&errs, "request_sources[0].schema[5].dtype", 10, 26,
                 "expected a scalar, got a sequence");
    expect_error(&errs, "request_sources[0].schema[6]", 11, 9, "expected a mapping, got a scalar");
    cr_expect_eq(errs.count, 6);
    catalog_errors_clear(&errs);
}

/* A field repeated three times: each repeat once (the check once went on past the first match
 * and reported the third twice). */
Test(catalog_load, a_request_field_repeated_three_times_is_reported_once_per_repeat)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"
             "request_sources:\n"
             "  - name: r\n"
             "    schema:\n"
             "      - {name: a, dtype: INT64}\n"
             "      - {name: a, dtype: INT64}\n"
             "      - {name: a, dtype: INT64}\n",
             &errs);
    cr_expect_eq(errs.count, 2);
    expect_error(&errs, "request_sources[0].schema[1].name", 6, 16,
                 "duplicate field 'a' in request source 'r'");
    expect_error(&errs, "request_sources[0].schema[2].name", 7, 16,
                 "duplicate field 'a' in request source 'r'");
    catalog_errors_clear(&errs);
}

Test(catalog_load, on_demand_sources_and_expressions_must_be_scalars)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad(BASE_YAML "on_demand_feature_views:\n"                             /* 14 */
                       "  - name: o\n"                                          /* 15 */
                       "    sources: [stats, [x]]\n"                            /* 16 */
                       "    features:\n"                                        /* 17 */
                       "      - {name: a, dtype: DOUBLE, expression: [rate]}\n" /* 18 */
                       "      - {name: b, dtype: DOUBLE, expression: ~}\n"      /* 19 */
                       "      - 3\n",                                           /* 20 */
             &errs);
    expect_error(&errs, "on_demand_feature_views[0].sources[1]", 16, 22,
                 "expected a scalar, got a sequence");
    expect_error(&errs, "on_demand_feature_views[0].features[0].expression", 18, 46,
                 "expected a scalar, got a sequence");
    expect_error(&errs, "on_demand_feature_views[0].features[1].expression", 19, 46,
                 "missing required key 'expression'");
    expect_error(&errs, "on_demand_feature_views[0].features[2]", 20, 9,
                 "expected a mapping, got a scalar");
    cr_expect_eq(errs.count, 4);
    catalog_errors_clear(&errs);
}

/* ------------------------------------------------------------------------------------------ */
/* Bytes that are not text, and paths that are not catalogs                                    */

Test(catalog_load, invalid_utf8_is_reported_at_its_byte)
{
    /* libyaml gives reader errors as a byte offset; the loader turns it into line:column. */
    catalog_errors_t errs = {NULL, 0};
    load_bad("project: p\n"
             "x: a\xff\n",
             &errs);
    cr_assert_eq(errs.count, 1);
    cr_expect_str_eq(errs.items[0].key, "(yaml)");
    cr_expect_eq(errs.items[0].line, 2);
    cr_expect_eq(errs.items[0].column, 5);
    cr_expect_not_null(strstr(errs.items[0].message, "YAML syntax error: invalid"), "%s",
                       errs.items[0].message);
    catalog_errors_clear(&errs);
}

Test(catalog_load, no_path_is_enoent_and_described)
{
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    cr_expect_eq(catalog_load(NULL, &c, &errs), -ENOENT);
    cr_expect_eq(catalog_load("", &c, &errs), -ENOENT);
    cr_expect_null(c);
    cr_assert_eq(errs.count, 2);
    cr_expect_str_eq(errs.items[0].message, "no catalog path given");
    cr_expect_str_eq(errs.items[1].message, "no catalog path given");
    catalog_errors_clear(&errs);
}

Test(catalog_load, a_path_through_a_file_is_enoent)
{
    char dir[1024], path[1100];
    cr_assert_not_null(test_tmpdir("catalog", dir, sizeof dir));
    char *f = write_file(dir, "c.yaml", "project: p\n");
    snprintf(path, sizeof path, "%s/sub.yaml", f);
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    cr_expect_eq(catalog_load(path, &c, &errs), -ENOENT, "ENOTDIR reads as not found");
    cr_assert_eq(errs.count, 1);
    cr_expect_str_eq(errs.items[0].file, path);
    cr_expect_str_eq(errs.items[0].message, "cannot read: Not a directory");
    catalog_errors_clear(&errs);
    free(f);
    remove_dir(dir);
}

Test(catalog_load, directories_hidden_files_and_other_names_are_not_read)
{
    /* Only regular *.yaml / *.yml files that do not start with '.' are part of the catalog. */
    char dir[1024], sub[1100];
    cr_assert_not_null(test_tmpdir("catalog", dir, sizeof dir));
    free(write_file(dir, "main.yaml", "project: p\n"));
    free(write_file(dir, ".hidden.yaml", "project: [\n"));
    free(write_file(dir, "notes.txt", "project: [\n"));
    free(write_file(dir, "yml", "project: [\n"));
    snprintf(sub, sizeof sub, "%s/sub.yaml", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    char slash[1100];
    snprintf(slash, sizeof slash, "%s/", dir);
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    int rc = catalog_load(slash, &c, &errs);
    if (rc != 0)
        print_errors(&errs);
    cr_assert_eq(rc, 0);
    cr_expect_str_eq(catalog_project(c), "p");
    catalog_unref(c);
    catalog_errors_clear(&errs);
    remove_dir(dir);
}

/* A catalog whose one feature has pattern p, into yaml (cap bytes). */
static void pattern_catalog(char *yaml, size_t cap, const char *p)
{
    snprintf(yaml, cap,
             "project: p\n"
             "feature_views:\n"
             "  - name: v\n"
             "    features:\n"
             "      - name: s\n"
             "        dtype: STRING\n"
             "        validation: {pattern: '%s'}\n",
             p);
}

/* Found by fuzz_catalog_load: 41 stacked '+' (POSIX leaves them undefined; glibc nests them,
 * each doubling the tree) took regcomp past 2 GB. Nested '+' groups and long alternations of
 * bounded repetitions are refused likewise, and so are long repetitions of what can match
 * nothing (each measured at 0.3 to 4 GB in glibc 2.36); ordinary patterns, many repetitions
 * side by side included, are not. */
#define A26 "abcdefghijklmnopqrstuvwxyz"

Test(catalog_load, stacked_and_nested_repetitions_are_refused_before_regcomp)
{
    static const char *const bad[] = {
        "a+++++++++++++++++++++++++++++++++++++++++",
        "a++++++++++)++++++++++++++++++++++++", /* found next: glibc takes ')' as 'a' */
        "((((((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+",
        "(a{1000}|b{1000}){200}",
        "x{1000}{1000}",
        /* A long one (410 characters): the message quotes its start, so that the reason
         * still fits in it. */
        A26 A26 A26 A26 A26 A26 A26 A26 A26 A26 A26 A26 A26 A26 A26 "++++++++++++++++++++",
    };
    static const char *const empty_runs[] = {
        "(a?){2000}",   "(a*){5000}",       "(^){5000}", "(()){9999}",
        "(a|b?){5000}", "((a?){100}){100}", "($){200}",  "a?b*(c?){600}",
    };
    for (size_t i = 0; i < sizeof empty_runs / sizeof empty_runs[0]; i++) {
        char yaml[1024];
        pattern_catalog(yaml, sizeof yaml, empty_runs[i]);
        expect_only_error(yaml, "feature_views[0].features[0].validation.pattern", 7, 31,
                          "repeats what can match nothing too often");
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[1024];
        pattern_catalog(yaml, sizeof yaml, bad[i]);
        expect_only_error(yaml, "feature_views[0].features[0].validation.pattern", 7, 31,
                          "repetitions expand past");
    }
    static const char *const good[] = {
        "[a-z]+@[a-z]+(\\.[a-z]+)+",
        "a{100}b{200}c{300}d{400}e{500}",
        "[0-9]{3}-[0-9]{4}(-[0-9]{1,5})?",
        "(ab|cd)*[[:alpha:]]{2,64}",
        "x{1000}",
        "(ab?){9999}",
        "(a?){100}",
        "^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$",
        "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        "^(https?://)?([a-z0-9-]+\\.)+[a-z]{2,63}(/[^ ]*)?$",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char yaml[1024];
        pattern_catalog(yaml, sizeof yaml, good[i]);
        catalog_unref(load_ok(yaml));
    }
}
