/* tests/catalog/test_dump.c - canonical YAML: load, dump, load again gives the same catalog. */
#include "tests/catalog/helpers.h"

static void expect_round_trip(catalog_t *c)
{
    char *yaml = NULL;
    size_t len = 0;
    cr_assert_eq(catalog_dump_yaml(c, &yaml, &len), 0);
    cr_assert_eq(strlen(yaml), len);
    catalog_t *again = NULL;
    catalog_errors_t errs = {NULL, 0};
    int rc = catalog_load_string(yaml, len, "dump.yaml", &again, &errs);
    if (rc != 0) {
        fprintf(stderr, "%s\n", yaml);
        print_errors(&errs);
    }
    cr_assert_eq(rc, 0);
    cr_expect_str_eq(catalog_digest(again), catalog_digest(c));
    char *yaml2 = NULL;
    size_t len2 = 0;
    cr_assert_eq(catalog_dump_yaml(again, &yaml2, &len2), 0);
    cr_expect_str_eq(yaml2, yaml, "the dump of a dump is the same text");
    catalog_plan_t plan;
    cr_assert_eq(catalog_plan(c, again, &plan), 0);
    cr_expect_eq(plan.count, 0, "a reloaded dump plans no changes");
    catalog_plan_clear(&plan);
    free(yaml2);
    free(yaml);
    catalog_unref(again);
    catalog_errors_clear(&errs);
}

Test(catalog_dump, example_catalog_round_trips_with_an_equal_digest)
{
    char *path = source_path("examples/catalog");
    catalog_t *c = NULL;
    cr_assert_eq(catalog_load(path, &c, NULL), 0);
    expect_round_trip(c);
    catalog_unref(c);
    free(path);
}

Test(catalog_dump, every_dtype_default_and_rule_round_trips)
{
    catalog_t *c = load_ok(
        "project: p\n"
        "entities:\n"
        "  - name: e\n"
        "    description: \"quote \\\" backslash \\\\ tab \\t nl \\n nel \\x85 ls \\u2028 \\x01\"\n"
        "    join_keys: [{name: k, type: BYTES}, {name: k2, type: INT32}]\n"
        "    tags: {z: '1', a: '', 'odd key': \"v: x\"}\n"
        "feature_views:\n"
        "  - name: v\n"
        "    version: 7\n"
        "    entities: [e]\n"
        "    ttl: 2w\n"
        "    online: false\n"
        "    owner: 'o@example.com'\n"
        "    lineage: {transformation: 'select 1'}\n"
        "    features:\n"
        "      - {name: a, dtype: BYTES, default: 'b64:AAEC/w=='}\n"
        "      - {name: b, dtype: STRING, default: 'true', validation: {pattern: "
        "'\"[a-z]*\"|true'}}\n"
        "      - {name: c, dtype: INT32, default: -2147483648}\n"
        "      - {name: d, dtype: INT64, default: 9223372036854775807}\n"
        "      - {name: e, dtype: DOUBLE, default: -0.0, validation: {min: -1e300, max: .inf}}\n"
        "      - {name: f, dtype: FLOAT, default: 0.1, validation: {allowed_values: [0.1, .nan]}}\n"
        "      - {name: g, dtype: BOOL, default: false}\n"
        "      - {name: h, dtype: UNIX_TIMESTAMP, default: 1700000000}\n"
        "      - {name: i, dtype: BYTES_LIST, default: ['b64:', raw]}\n"
        "      - {name: j, dtype: STRING_LIST, default: [x, 'y z'], validation: {max_length: 4}}\n"
        "      - {name: k, dtype: INT32_LIST, default: [1, -1]}\n"
        "      - {name: l, dtype: INT64_LIST, default: []}\n"
        "      - {name: m, dtype: DOUBLE_LIST, default: [1.5, 1e-300]}\n"
        "      - {name: n, dtype: FLOAT_LIST, default: [3.4028235e38]}\n"
        "      - {name: o, dtype: BOOL_LIST, default: [true]}\n"
        "      - {name: q, dtype: UNIX_TIMESTAMP_LIST, default: [0], validation: {not_null: "
        "true}}\n"
        "  - name: v\n"
        "    version: 8\n"
        "    features: [{name: x, dtype: INT64}]\n"
        "  - name: w\n"
        "    version: 1\n"
        "    default: true\n"
        "    features: [{name: x, dtype: INT64}]\n"
        "  - name: w\n"
        "    version: 2\n"
        "    features: [{name: x, dtype: INT64}]\n"
        "feature_services:\n"
        "  - name: s\n"
        "    description: all\n"
        "    features: ['v@v7:*', 'w:x']\n"
        "models:\n"
        "  - name: m\n"
        "    version_label: beta\n"
        "    feature_service: s\n"
        "    entity_inputs: {'in/k': k, in_k2: k2}\n"
        "    on_missing: zero\n"
        "    upstream: {target: '[::1]:9000', keep_entity_inputs: false, tls: true}\n");
    const catalog_view_t *w;
    cr_assert_eq(catalog_find_view(c, "w", 0, &w), 0);
    cr_expect_eq(w->version, 1);
    cr_expect(catalog_model_at(c, 0)->upstream.tls);
    expect_round_trip(c);
    catalog_unref(c);
}

Test(catalog_dump, digest_ignores_layout_but_not_meaning)
{
    catalog_t *a = load_ok(BASE_YAML);
    catalog_t *b =
        load_ok("# same catalog, different layout\n"
                "feature_views: [{name: stats, version: 1, entities: [driver],\n"
                "                 features: [{dtype: FLOAT, name: rate}]}]\n"
                "entities: [{name: driver, join_keys: [{type: INT64, name: driver_id}]}]\n"
                "project: \"p\"\n");
    catalog_t *c = load_ok(BASE_YAML "        description: now documented\n");
    cr_expect_str_eq(catalog_digest(a), catalog_digest(b));
    cr_expect_str_neq(catalog_digest(a), catalog_digest(c));
    catalog_unref(a);
    catalog_unref(b);
    catalog_unref(c);
}
