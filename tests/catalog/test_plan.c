/* tests/catalog/test_plan.c - plans: which changes are safe and which break stored data. */
#include "tests/catalog/helpers.h"

static catalog_plan_t plan_of(const char *from_yaml, const char *to_yaml)
{
    catalog_t *from = from_yaml != NULL ? load_ok(from_yaml) : NULL;
    catalog_t *to = load_ok(to_yaml);
    catalog_plan_t p;
    cr_assert_eq(catalog_plan(from, to, &p), 0);
    catalog_unref(from);
    catalog_unref(to);
    return p;
}

static const catalog_change_t *change(const catalog_plan_t *p, const char *object)
{
    for (size_t i = 0; i < p->count; i++) {
        if (strcmp(p->items[i].object, object) == 0)
            return &p->items[i];
    }
    for (size_t i = 0; i < p->count; i++)
        fprintf(stderr, "  %s: %s\n", p->items[i].object, p->items[i].detail);
    cr_assert_fail("no change for %s", object);
    return NULL;
}

static void expect_change(const catalog_plan_t *p, const char *object, catalog_change_kind_t kind,
                          bool breaking, const char *detail)
{
    const catalog_change_t *ch = change(p, object);
    cr_expect_eq(ch->kind, kind, "%s: kind", object);
    cr_expect_eq(ch->breaking, breaking, "%s: breaking", object);
    cr_expect_not_null(strstr(ch->detail, detail), "%s: '%s' lacks '%s'", object, ch->detail,
                       detail);
}

Test(catalog_plan, from_nothing_everything_is_added_and_safe)
{
    catalog_plan_t p = plan_of(NULL, BASE_YAML);
    cr_expect_eq(p.count, 2);
    cr_expect_eq(p.n_breaking, 0);
    expect_change(&p, "entity driver", CATALOG_CHANGE_ADDED, false, "new entity");
    expect_change(&p, "feature_view stats@v1", CATALOG_CHANGE_ADDED, false, "new feature view");
    catalog_plan_clear(&p);
}

Test(catalog_plan, identical_catalogs_have_no_changes)
{
    catalog_plan_t p = plan_of(BASE_YAML, BASE_YAML);
    cr_expect_eq(p.count, 0);
    catalog_plan_clear(&p);
}

Test(catalog_plan, new_version_appended_feature_and_metadata_are_safe)
{
    catalog_plan_t p = plan_of(BASE_YAML, BASE_YAML "        description: conversion\n"
                                                    "        validation: {min: 0}\n"
                                                    "      - name: trips\n"
                                                    "        dtype: INT64\n"
                                                    "    ttl: 1d\n"
                                                    "    owner: me\n"
                                                    "  - name: stats\n"
                                                    "    version: 2\n"
                                                    "    features: [{name: x, dtype: INT64}]\n");
    cr_expect_eq(p.n_breaking, 0);
    expect_change(&p, "feature_view stats@v2", CATALOG_CHANGE_ADDED, false,
                  "new version of an existing view");
    expect_change(&p, "feature stats@v1:trips", CATALOG_CHANGE_ADDED, false, "new INT64 feature");
    expect_change(&p, "feature_view stats@v1", CATALOG_CHANGE_CHANGED, false,
                  "ttl 0 -> 1d, owner, no longer the default version");
    catalog_plan_clear(&p);
}

Test(catalog_plan, keeping_history_or_not_and_its_retention_are_safe_changes)
{
    catalog_plan_t p = plan_of(BASE_YAML, BASE_YAML "    offline: {retention: 30d}\n");
    cr_expect_eq(p.n_breaking, 0);
    expect_change(&p, "feature_view stats@v1", CATALOG_CHANGE_CHANGED, false, "now keeps history");
    catalog_plan_clear(&p);
    p = plan_of(BASE_YAML "    offline: {retention: 30d}\n",
                BASE_YAML "    offline: {retention: 60d}\n");
    expect_change(&p, "feature_view stats@v1", CATALOG_CHANGE_CHANGED, false, "history retention");
    catalog_plan_clear(&p);
    p = plan_of(BASE_YAML "    offline: {retention: 30d}\n", BASE_YAML);
    expect_change(&p, "feature_view stats@v1", CATALOG_CHANGE_CHANGED, false,
                  "no longer keeps history");
    catalog_plan_clear(&p);
}

Test(catalog_plan, validation_changes_are_safe_and_say_whether_they_tighten)
{
    const char *old = BASE_YAML "        validation: {min: 0, max: 1}\n";
    catalog_plan_t p = plan_of(old, BASE_YAML "        validation: {min: 0, max: 2}\n");
    expect_change(&p, "feature stats@v1:rate", CATALOG_CHANGE_CHANGED, false, "widened");
    catalog_plan_clear(&p);
    p = plan_of(old, BASE_YAML "        validation: {min: 0, max: 1, not_null: true}\n");
    expect_change(&p, "feature stats@v1:rate", CATALOG_CHANGE_CHANGED, false,
                  "tightened: [min 0, max 1] -> [not_null, min 0, max 1]");
    cr_expect_eq(p.n_breaking, 0);
    catalog_plan_clear(&p);
}

Test(catalog_plan, changed_dtype_is_breaking)
{
    catalog_plan_t p = plan_of(BASE_YAML, "project: p\n"
                                          "entities:\n"
                                          "  - name: driver\n"
                                          "    join_keys: [{name: driver_id, type: INT64}]\n"
                                          "feature_views:\n"
                                          "  - name: stats\n"
                                          "    entities: [driver]\n"
                                          "    features: [{name: rate, dtype: DOUBLE}]\n");
    cr_expect_eq(p.n_breaking, 1);
    expect_change(&p, "feature stats@v1:rate", CATALOG_CHANGE_CHANGED, true,
                  "dtype changed from FLOAT to DOUBLE");
    catalog_plan_clear(&p);
}

Test(catalog_plan, removed_feature_inside_a_version_is_breaking)
{
    catalog_plan_t p = plan_of(BASE_YAML "      - {name: gone, dtype: INT64}\n", BASE_YAML);
    cr_expect_eq(p.n_breaking, 1);
    expect_change(&p, "feature stats@v1:gone", CATALOG_CHANGE_REMOVED, true,
                  "add a new view version");
    catalog_plan_clear(&p);
}

Test(catalog_plan, removed_view_version_is_breaking)
{
    catalog_plan_t p = plan_of(BASE_YAML "  - name: stats\n"
                                         "    version: 2\n"
                                         "    features: [{name: x, dtype: INT64}]\n",
                               BASE_YAML);
    expect_change(&p, "feature_view stats@v2", CATALOG_CHANGE_REMOVED, true, "dropped");
    expect_change(&p, "feature_view stats@v1", CATALOG_CHANGE_CHANGED, false,
                  "now the default version");
    cr_expect_eq(p.n_breaking, 1);
    catalog_plan_clear(&p);
}

Test(catalog_plan, changed_entity_key_is_breaking)
{
    const char *to = "project: p\n"
                     "entities:\n"
                     "  - name: driver\n"
                     "    join_keys: [{name: driver_id, type: STRING}]\n"
                     "feature_views:\n"
                     "  - name: stats\n"
                     "    entities: [driver]\n"
                     "    features: [{name: rate, dtype: FLOAT}]\n";
    catalog_plan_t p = plan_of(BASE_YAML, to);
    expect_change(&p, "entity driver", CATALOG_CHANGE_CHANGED, true,
                  "join keys changed from [driver_id INT64] to [driver_id STRING]");
    expect_change(&p, "feature_view stats@v1", CATALOG_CHANGE_CHANGED, true, "entities changed");
    cr_expect_eq(p.n_breaking, 2);
    catalog_plan_clear(&p);
}

Test(catalog_plan, services_and_models_added_or_changed_are_safe_removed_are_breaking)
{
    const char *svc = BASE_YAML "feature_services:\n"
                                "  - name: s\n"
                                "    features: [stats:rate]\n"
                                "models:\n"
                                "  - name: m\n"
                                "    version: 1\n"
                                "    feature_service: s\n"
                                "    entity_inputs: {driver_id: driver_id}\n";
    catalog_plan_t p = plan_of(BASE_YAML, svc);
    expect_change(&p, "feature_service s", CATALOG_CHANGE_ADDED, false, "new feature service");
    expect_change(&p, "model m@v1", CATALOG_CHANGE_ADDED, false, "new model binding");
    cr_expect_eq(p.n_breaking, 0);
    catalog_plan_clear(&p);

    p = plan_of(svc, BASE_YAML "feature_services:\n"
                               "  - name: s\n"
                               "    description: changed\n"
                               "    features: [stats:rate]\n"
                               "models:\n"
                               "  - name: m\n"
                               "    version: 1\n"
                               "    feature_service: s\n"
                               "    entity_inputs: {driver_id: driver_id}\n"
                               "    on_missing: zero\n");
    expect_change(&p, "feature_service s", CATALOG_CHANGE_CHANGED, false, "description");
    expect_change(&p, "model m@v1", CATALOG_CHANGE_CHANGED, false, "on_missing");
    cr_expect_eq(p.n_breaking, 0);
    catalog_plan_clear(&p);

    /* TLS to the upstream turned on: a change of the binding's upstream, safe. */
    const char *up = "    upstream: {target: '127.0.0.1:8500'}\n";
    char plain[2048], tls[2048];
    snprintf(plain, sizeof plain, "%s%s", svc, up);
    snprintf(tls, sizeof tls, "%s    upstream: {target: '127.0.0.1:8500', tls: true}\n", svc);
    p = plan_of(plain, tls);
    expect_change(&p, "model m@v1", CATALOG_CHANGE_CHANGED, false, "upstream");
    cr_expect_eq(p.n_breaking, 0);
    catalog_plan_clear(&p);

    p = plan_of(svc, BASE_YAML);
    expect_change(&p, "feature_service s", CATALOG_CHANGE_REMOVED, true, "NOT_FOUND");
    expect_change(&p, "model m@v1", CATALOG_CHANGE_REMOVED, true, "NOT_FOUND");
    cr_expect_eq(p.n_breaking, 2);
    catalog_plan_clear(&p);
}

Test(catalog_plan, renamed_project_is_breaking)
{
    catalog_plan_t p = plan_of("project: a\n", "project: b\n");
    expect_change(&p, "project", CATALOG_CHANGE_CHANGED, true, "renamed from 'a' to 'b'");
    catalog_plan_clear(&p);
}

Test(catalog_plan, example_v1_to_example_is_safe)
{
    char *path = source_path("examples/catalog");
    catalog_t *to = NULL;
    cr_assert_eq(catalog_load(path, &to, NULL), 0);
    catalog_plan_t p;
    cr_assert_eq(catalog_plan(NULL, to, &p), 0);
    cr_expect_eq(p.n_breaking, 0);
    cr_expect_eq(p.count, catalog_entity_count(to) + catalog_view_count(to) +
                              catalog_on_demand_count(to) + catalog_request_source_count(to) +
                              catalog_service_count(to) + catalog_model_count(to));
    catalog_plan_clear(&p);
    catalog_plan_clear(NULL);
    cr_expect_eq(catalog_plan(to, NULL, &p), -EINVAL);
    catalog_unref(to);
    free(path);
}

#define ODFV_BASE                                                                                  \
    BASE_YAML "request_sources:\n"                                                                 \
              "  - name: req\n"                                                                    \
              "    schema: [{name: x, dtype: INT64}]\n"                                            \
              "on_demand_feature_views:\n"                                                         \
              "  - name: adj\n"                                                                    \
              "    sources: [stats, req]\n"                                                        \
              "    features:\n"

Test(catalog_plan, on_demand_expression_change_inside_a_version_is_breaking_a_new_version_safe)
{
    const char *v1 = ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate + x'}\n"
                               "      - {name: b, dtype: DOUBLE, expression: 'rate * 2'}\n";
    /* the same version computing something else */
    catalog_plan_t p =
        plan_of(v1, ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate - x'}\n"
                              "      - {name: b, dtype: DOUBLE, expression: 'rate * 2'}\n");
    expect_change(&p, "feature adj@v1:a", CATALOG_CHANGE_CHANGED, true, "expression changed");
    cr_expect_eq(p.n_breaking, 1);
    catalog_plan_clear(&p);
    /* a dtype change and a removed feature inside the version: breaking too */
    p = plan_of(v1, ODFV_BASE "      - {name: a, dtype: INT64, expression: 'x'}\n");
    expect_change(&p, "feature adj@v1:a", CATALOG_CHANGE_CHANGED, true, "dtype changed");
    expect_change(&p, "feature adj@v1:b", CATALOG_CHANGE_REMOVED, true, "removed");
    catalog_plan_clear(&p);
    /* a new version beside it, an added feature: safe */
    p = plan_of(v1, ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate + x'}\n"
                              "      - {name: b, dtype: DOUBLE, expression: 'rate * 2'}\n"
                              "      - {name: c, dtype: BOOL, expression: 'x > 1'}\n"
                              "  - name: adj\n"
                              "    version: 2\n"
                              "    sources: [stats, req]\n"
                              "    features: [{name: a, dtype: DOUBLE, expression: 'rate - x'}]\n");
    cr_expect_eq(p.n_breaking, 0);
    expect_change(&p, "feature adj@v1:c", CATALOG_CHANGE_ADDED, false, "x > 1");
    expect_change(&p, "on_demand_feature_view adj@v2", CATALOG_CHANGE_ADDED, false, "1 feature");
    catalog_plan_clear(&p);
    /* a feature that stops reading the request, or the view removed: breaking */
    p = plan_of(v1, ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate + 1'}\n"
                              "      - {name: b, dtype: DOUBLE, expression: 'rate * 2'}\n");
    cr_expect_geq(p.n_breaking, 1);
    catalog_plan_clear(&p);
    p = plan_of(v1, BASE_YAML);
    expect_change(&p, "on_demand_feature_view adj@v1", CATALOG_CHANGE_REMOVED, true, "NOT_FOUND");
    expect_change(&p, "request_source req", CATALOG_CHANGE_REMOVED, false, "removed");
    catalog_plan_clear(&p);
}

Test(catalog_plan, on_demand_blanks_validation_and_request_field_types)
{
    const char *v1 = ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate + x'}\n";
    /* blanks outside strings are not a change */
    catalog_plan_t p =
        plan_of(v1, ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: ' rate+x '}\n");
    cr_expect_eq(p.count, 0);
    catalog_plan_clear(&p);
    /* a tightened rule inside a version is breaking for a view that stores nothing */
    p = plan_of(v1, ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate + x', "
                              "validation: {max: 1}}\n");
    expect_change(&p, "feature adj@v1:a", CATALOG_CHANGE_CHANGED, true, "read INVALID");
    catalog_plan_clear(&p);
    /* a request field's type change is breaking */
    const char *retyped = BASE_YAML "request_sources:\n"
                                    "  - name: req\n"
                                    "    schema: [{name: x, dtype: DOUBLE}]\n"
                                    "on_demand_feature_views:\n"
                                    "  - name: adj\n"
                                    "    sources: [stats, req]\n"
                                    "    features:\n"
                                    "      - {name: a, dtype: DOUBLE, expression: 'rate + x'}\n";
    p = plan_of(v1, retyped);
    expect_change(&p, "request_source req", CATALOG_CHANGE_CHANGED, true,
                  "field x changed from INT64 to DOUBLE");
    catalog_plan_clear(&p);
}

Test(catalog_plan, words_joined_by_removing_a_blank_are_another_expression)
{
    const char *base = "project: p\n"
                       "entities: [{name: d, join_keys: [{name: id, type: INT64}]}]\n"
                       "feature_views:\n"
                       "  - {name: s, entities: [d], features: [{name: flag, dtype: BOOL},\n"
                       "                                     {name: notflag, dtype: BOOL}]}\n"
                       "on_demand_feature_views:\n"
                       "  - name: o\n"
                       "    sources: [s]\n"
                       "    features:\n";
    char v1[1024], v2[1024], v3[1024];
    snprintf(v1, sizeof v1, "%s      - {name: f, dtype: BOOL, expression: 'not flag'}\n", base);
    snprintf(v2, sizeof v2, "%s      - {name: f, dtype: BOOL, expression: 'notflag'}\n", base);
    snprintf(v3, sizeof v3, "%s      - {name: f, dtype: BOOL, expression: ' not   flag '}\n", base);
    catalog_plan_t p = plan_of(v1, v2);
    expect_change(&p, "feature o@v1:f", CATALOG_CHANGE_CHANGED, true, "expression changed");
    catalog_plan_clear(&p);
    p = plan_of(v1, v3);
    cr_expect_eq(p.count, 0, "blanks that separate the same words are not a change");
    catalog_plan_clear(&p);
}

Test(catalog_plan, entity_metadata_changes_and_removals_are_safe)
{
    const char *two = "project: p\n"
                      "entities:\n"
                      "  - name: driver\n"
                      "    join_keys: [{name: driver_id, type: INT64}]\n"
                      "  - name: rider\n"
                      "    join_keys: [{name: rider_id, type: STRING}]\n"
                      "feature_views:\n"
                      "  - name: stats\n"
                      "    entities: [driver]\n"
                      "    features: [{name: rate, dtype: FLOAT}]\n";
    /* an entity no view uses may go; its description and tags may change */
    catalog_plan_t p = plan_of(two, "project: p\n"
                                    "entities:\n"
                                    "  - name: driver\n"
                                    "    description: who drives\n"
                                    "    tags: {team: ops}\n"
                                    "    join_keys: [{name: driver_id, type: INT64}]\n"
                                    "feature_views:\n"
                                    "  - name: stats\n"
                                    "    entities: [driver]\n"
                                    "    features: [{name: rate, dtype: FLOAT}]\n");
    cr_expect_eq(p.count, 2);
    cr_expect_eq(p.n_breaking, 0);
    expect_change(&p, "entity driver", CATALOG_CHANGE_CHANGED, false,
                  "metadata changed: description, tags");
    expect_change(&p, "entity rider", CATALOG_CHANGE_REMOVED, false,
                  "entity removed (no view uses it any more)");
    catalog_plan_clear(&p);
}

Test(catalog_plan, view_metadata_changes_are_listed_in_order_and_safe)
{
    catalog_plan_t p = plan_of(BASE_YAML, BASE_YAML "    online: false\n"
                                                    "    push_source: pushed\n"
                                                    "    tags: {a: b}\n"
                                                    "    lineage: {source: warehouse.t}\n");
    cr_expect_eq(p.count, 1);
    cr_expect_eq(p.n_breaking, 0);
    expect_change(&p, "feature_view stats@v1", CATALOG_CHANGE_CHANGED, false,
                  "changed: now offline, push_source, tags, lineage");
    catalog_plan_clear(&p);
    p = plan_of(BASE_YAML "    online: false\n", BASE_YAML);
    expect_change(&p, "feature_view stats@v1", CATALOG_CHANGE_CHANGED, false,
                  "changed: now online");
    catalog_plan_clear(&p);
    /* the same tags in another order are the same tags (they are kept sorted) */
    p = plan_of(BASE_YAML "    tags: {a: 1, b: 2}\n", BASE_YAML "    tags: {b: 2, a: 1}\n");
    cr_expect_eq(p.count, 0);
    catalog_plan_clear(&p);
    /* same keys, another value */
    p = plan_of(BASE_YAML "    tags: {a: 1, b: 2}\n", BASE_YAML "    tags: {a: 1, b: 3}\n");
    expect_change(&p, "feature_view stats@v1", CATALOG_CHANGE_CHANGED, false, "changed: tags");
    catalog_plan_clear(&p);
}

Test(catalog_plan, feature_default_and_tags_changes_are_safe)
{
    catalog_plan_t p =
        plan_of(BASE_YAML "        default: 1.5\n", BASE_YAML "        default: 2.5\n"
                                                              "        tags: {unit: pct}\n");
    cr_expect_eq(p.count, 1);
    cr_expect_eq(p.n_breaking, 0);
    expect_change(&p, "feature stats@v1:rate", CATALOG_CHANGE_CHANGED, false,
                  "changed: default, tags");
    catalog_plan_clear(&p);
    /* a default dropped is a change too */
    p = plan_of(BASE_YAML "        default: 1.5\n", BASE_YAML);
    expect_change(&p, "feature stats@v1:rate", CATALOG_CHANGE_CHANGED, false, "changed: default");
    catalog_plan_clear(&p);
}

#define STR_VIEW(rules)                                                                            \
    "project: p\n"                                                                                 \
    "feature_views:\n"                                                                             \
    "  - name: v\n"                                                                                \
    "    features:\n"                                                                              \
    "      - {name: s, dtype: STRING, validation: " rules "}\n"

Test(catalog_plan, string_rules_are_described_and_classified)
{
    /* allowed values: fewer tighten, more widen */
    catalog_plan_t p =
        plan_of(STR_VIEW("{allowed_values: [a, b]}"), STR_VIEW("{allowed_values: [a]}"));
    expect_change(&p, "feature v@v1:s", CATALOG_CHANGE_CHANGED, false,
                  "validation tightened: [2 allowed values] -> [1 allowed values]");
    catalog_plan_clear(&p);
    p = plan_of(STR_VIEW("{allowed_values: [a]}"), STR_VIEW("{allowed_values: [b, a]}"));
    expect_change(&p, "feature v@v1:s", CATALOG_CHANGE_CHANGED, false,
                  "validation widened: [1 allowed values] -> [2 allowed values]");
    catalog_plan_clear(&p);
    /* the same values in another order are the same rule */
    p = plan_of(STR_VIEW("{allowed_values: [a, b]}"), STR_VIEW("{allowed_values: [b, a]}"));
    cr_expect_eq(p.count, 0);
    catalog_plan_clear(&p);
    /* max_length: a smaller limit tightens, none at all widens */
    p = plan_of(STR_VIEW("{max_length: 8}"), STR_VIEW("{max_length: 4}"));
    expect_change(&p, "feature v@v1:s", CATALOG_CHANGE_CHANGED, false,
                  "validation tightened: [max_length 8] -> [max_length 4]");
    catalog_plan_clear(&p);
    p = plan_of(STR_VIEW("{max_length: 8}"), STR_VIEW("{}"));
    expect_change(&p, "feature v@v1:s", CATALOG_CHANGE_CHANGED, false,
                  "validation widened: [max_length 8] -> [none]");
    catalog_plan_clear(&p);
    /* any other pattern may refuse what the old one took */
    p = plan_of(STR_VIEW("{pattern: '[a-z]+'}"), STR_VIEW("{pattern: '[a-z0-9]+'}"));
    expect_change(&p, "feature v@v1:s", CATALOG_CHANGE_CHANGED, false,
                  "validation tightened: [pattern [a-z]+] -> [pattern [a-z0-9]+]");
    cr_expect_eq(p.n_breaking, 0, "stored views only ever get safe validation changes");
    catalog_plan_clear(&p);
}

Test(catalog_plan, model_service_and_entity_input_changes_are_safe)
{
    const char *base = BASE_YAML "feature_services:\n"
                                 "  - {name: s, features: [stats:rate]}\n"
                                 "  - {name: t, features: [stats:rate]}\n"
                                 "models:\n"
                                 "  - name: m\n"
                                 "    version: 1\n";
    char from[1024], to[1024];
    snprintf(from, sizeof from,
             "%s    feature_service: s\n    entity_inputs: {driver_id: driver_id}\n", base);
    snprintf(to, sizeof to, "%s    feature_service: t\n    entity_inputs: {drv: driver_id}\n",
             base);
    catalog_plan_t p = plan_of(from, to);
    cr_expect_eq(p.count, 1);
    cr_expect_eq(p.n_breaking, 0);
    expect_change(&p, "model m@v1", CATALOG_CHANGE_CHANGED, false,
                  "changed: feature_service, entity_inputs");
    catalog_plan_clear(&p);
    /* a label is part of the binding's identity: relabelled is one removed, one added */
    snprintf(to, sizeof to,
             "%s    version_label: canary\n    feature_service: s\n"
             "    entity_inputs: {driver_id: driver_id}\n",
             base);
    p = plan_of(from, to);
    expect_change(&p, "model m@v1 (canary)", CATALOG_CHANGE_ADDED, false, "new model binding");
    expect_change(&p, "model m@v1", CATALOG_CHANGE_REMOVED, true, "NOT_FOUND");
    catalog_plan_clear(&p);
    /* a service whose references changed */
    p = plan_of(BASE_YAML "feature_services: [{name: s, features: [stats:rate]}]\n",
                BASE_YAML "      - {name: n, dtype: INT64}\n"
                          "feature_services: [{name: s, features: [stats:n]}]\n");
    expect_change(&p, "feature_service s", CATALOG_CHANGE_CHANGED, false,
                  "changed: features (1 -> 1); callers get the new feature list");
    catalog_plan_clear(&p);
}

Test(catalog_plan, upstream_added_or_changed_is_an_upstream_change)
{
    const char *svc = BASE_YAML "feature_services: [{name: s, features: [stats:rate]}]\n"
                                "models:\n"
                                "  - name: m\n"
                                "    version: 1\n"
                                "    feature_service: s\n"
                                "    entity_inputs: {driver_id: driver_id}\n";
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s    upstream: {target: 'h:1'}\n", svc);
    catalog_plan_t p = plan_of(svc, a);
    expect_change(&p, "model m@v1", CATALOG_CHANGE_CHANGED, false, "changed: upstream");
    catalog_plan_clear(&p);
    snprintf(b, sizeof b, "%s    upstream: {target: 'h:1', timeout_ms: 5}\n", svc);
    p = plan_of(a, b);
    expect_change(&p, "model m@v1", CATALOG_CHANGE_CHANGED, false, "changed: upstream");
    catalog_plan_clear(&p);
    snprintf(b, sizeof b, "%s    upstream: {target: 'h:1', signature_name: x}\n", svc);
    p = plan_of(a, b);
    expect_change(&p, "model m@v1", CATALOG_CHANGE_CHANGED, false, "changed: upstream");
    catalog_plan_clear(&p);
    p = plan_of(a, a);
    cr_expect_eq(p.count, 0, "the same upstream is no change");
    catalog_plan_clear(&p);
}

Test(catalog_plan, on_demand_sources_changed_inside_a_version_are_breaking)
{
    const char *v1 = ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate'}\n";
    /* the request source dropped from the sources */
    catalog_plan_t p =
        plan_of(v1, BASE_YAML "request_sources:\n"
                              "  - name: req\n"
                              "    schema: [{name: x, dtype: INT64}]\n"
                              "on_demand_feature_views:\n"
                              "  - name: adj\n"
                              "    sources: [stats]\n"
                              "    features:\n"
                              "      - {name: a, dtype: DOUBLE, expression: 'rate'}\n");
    expect_change(&p, "on_demand_feature_view adj@v1", CATALOG_CHANGE_CHANGED, true,
                  "sources changed inside an existing version");
    cr_expect_eq(p.n_breaking, 1);
    catalog_plan_clear(&p);
    /* a bare source that now means another version of its view */
    const char *two = BASE_YAML "  - name: stats\n"
                                "    version: 2\n"
                                "    entities: [driver]\n"
                                "    features: [{name: rate, dtype: FLOAT}]\n"
                                "request_sources:\n"
                                "  - name: req\n"
                                "    schema: [{name: x, dtype: INT64}]\n"
                                "on_demand_feature_views:\n"
                                "  - name: adj\n"
                                "    sources: [stats, req]\n"
                                "    features:\n"
                                "      - {name: a, dtype: DOUBLE, expression: 'rate'}\n";
    p = plan_of(v1, two);
    expect_change(&p, "on_demand_feature_view adj@v1", CATALOG_CHANGE_CHANGED, true,
                  "another version of its view");
    catalog_plan_clear(&p);
}

Test(catalog_plan, on_demand_metadata_and_feature_metadata_are_safe)
{
    const char *v1 = ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate'}\n";
    catalog_plan_t p = plan_of(v1, ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate',"
                                             " description: scaled, default: 0.5}\n"
                                             "    owner: ml\n");
    cr_expect_eq(p.n_breaking, 0);
    expect_change(&p, "on_demand_feature_view adj@v1", CATALOG_CHANGE_CHANGED, false,
                  "changed: owner");
    expect_change(&p, "feature adj@v1:a", CATALOG_CHANGE_CHANGED, false,
                  "changed: default, description");
    catalog_plan_clear(&p);
    /* a widened rule inside a version is safe for an on-demand view too */
    p = plan_of(ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate', "
                          "validation: {max: 1}}\n",
                ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate', "
                          "validation: {max: 2}}\n");
    expect_change(&p, "feature adj@v1:a", CATALOG_CHANGE_CHANGED, false,
                  "validation widened: [max 1] -> [max 2]");
    cr_expect_eq(p.n_breaking, 0);
    catalog_plan_clear(&p);
}

Test(catalog_plan, request_fields_added_or_removed_are_a_safe_schema_change)
{
    const char *v1 = ODFV_BASE "      - {name: a, dtype: DOUBLE, expression: 'rate + x'}\n";
    catalog_plan_t p = plan_of(v1, BASE_YAML "request_sources:\n"
                                             "  - name: req\n"
                                             "    schema: [{name: x, dtype: INT64}, "
                                             "{name: y, dtype: STRING}]\n"
                                             "on_demand_feature_views:\n"
                                             "  - name: adj\n"
                                             "    sources: [stats, req]\n"
                                             "    features:\n"
                                             "      - {name: a, dtype: DOUBLE, expression: "
                                             "'rate + x'}\n");
    cr_expect_eq(p.count, 1);
    cr_expect_eq(p.n_breaking, 0);
    expect_change(&p, "request_source req", CATALOG_CHANGE_CHANGED, false,
                  "schema changed: callers send the new fields from their next request");
    catalog_plan_clear(&p);
}

Test(catalog_plan, blanks_inside_string_literals_are_part_of_the_expression)
{
    const char *base = "project: p\n"
                       "request_sources: [{name: r, schema: [{name: s, dtype: STRING}]}]\n"
                       "on_demand_feature_views:\n"
                       "  - name: o\n"
                       "    sources: [r]\n"
                       "    features:\n";
    char v1[1024], v2[1024], v3[1024], v4[1024];
    snprintf(v1, sizeof v1, "%s      - {name: f, dtype: STRING, expression: \"concat(s, ' a')\"}\n",
             base);
    snprintf(v2, sizeof v2,
             "%s      - {name: f, dtype: STRING, expression: \"concat(s, '  a')\"}\n", base);
    snprintf(v3, sizeof v3,
             "%s      - {name: f, dtype: STRING, expression: \"concat( s ,' a' )\"}\n", base);
    /* an escaped quote does not end the literal: the blanks after it are still inside */
    snprintf(v4, sizeof v4,
             "%s      - {name: f, dtype: STRING, expression: \"concat(s, ' \\\\'  a')\"}\n", base);
    catalog_plan_t p = plan_of(v1, v2);
    expect_change(&p, "feature o@v1:f", CATALOG_CHANGE_CHANGED, true, "expression changed");
    catalog_plan_clear(&p);
    p = plan_of(v1, v3);
    cr_expect_eq(p.count, 0, "blanks outside the literal are not a change");
    catalog_plan_clear(&p);
    char v5[1024];
    snprintf(v5, sizeof v5,
             "%s      - {name: f, dtype: STRING, expression: \"concat(s, ' \\\\' a')\"}\n", base);
    p = plan_of(v4, v5);
    expect_change(&p, "feature o@v1:f", CATALOG_CHANGE_CHANGED, true, "expression changed");
    catalog_plan_clear(&p);
}
