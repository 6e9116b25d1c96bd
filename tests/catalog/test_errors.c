/* tests/catalog/test_errors.c - the error list: its cap, name rules and suggestions. */
#include "tests/catalog/helpers.h"

/* ------------------------------------------------------------------------------------------ */
/* The error list                                                                              */

Test(catalog_errors, a_load_stops_listing_after_a_thousand_errors_and_says_so)
{
    /* 1200 unknown top-level keys: the first 1000 are listed, then one line says the rest are
     * not, and nothing more is added (a huge broken file costs bounded memory). */
    size_t cap = 1200 * 16 + 32, off = 0;
    char *yaml = malloc(cap);
    cr_assert_not_null(yaml);
    off += (size_t)snprintf(yaml + off, cap - off, "project: p\n");
    for (int i = 0; i < 1200; i++)
        off += (size_t)snprintf(yaml + off, cap - off, "k%d: 1\n", i);
    catalog_errors_t errs = {NULL, 0};
    load_bad(yaml, &errs);
    cr_assert_eq(errs.count, 1001);
    size_t marks = 0, unknown = 0;
    for (size_t i = 0; i < errs.count; i++) {
        const catalog_error_t *e = &errs.items[i];
        if (strcmp(e->message, "too many errors; the rest are not shown") == 0) {
            marks++;
            cr_expect_eq(e->line, 0, "the marker is not tied to a place");
            cr_expect_str_eq(e->key, "");
            cr_expect_str_eq(e->file, "t.yaml");
        } else if (strstr(e->message, "unknown key 'k") != NULL) {
            unknown++;
        }
    }
    cr_expect_eq(marks, 1);
    cr_expect_eq(unknown, 1000);
    /* sorted by place: the marker (line 0) first, then k0 at line 2 ... k999 at line 1001 */
    cr_expect_eq(errs.items[0].line, 0);
    cr_expect_str_eq(errs.items[1].key, "k0");
    cr_expect_eq(errs.items[1].line, 2);
    cr_expect_str_eq(errs.items[1000].key, "k999");
    cr_expect_eq(errs.items[1000].line, 1001);
    catalog_errors_clear(&errs);
    cr_expect_null(errs.items);
    cr_expect_eq(errs.count, 0);
    catalog_errors_clear(NULL);
    free(yaml);
}

/* ------------------------------------------------------------------------------------------ */
/* Names and suggestions                                                                       */

Test(catalog_errors, an_empty_quoted_name_is_invalid_and_underscores_lead_fine)
{
    /* '' is an empty string, not a null: it is a name that breaks the rule, not a missing one */
    expect_only_error("project: ''\n", "project", 1, 10, "invalid name ''");
    catalog_t *c = load_ok("project: _p9\n");
    cr_expect_str_eq(catalog_project(c), "_p9");
    catalog_unref(c);
}

Test(catalog_errors, a_key_longer_than_64_characters_gets_no_suggestion)
{
    /* Distances are only computed for short strings; a long key lists what is expected. */
    char key[80], yaml[512], msg[160];
    memset(key, 'x', 70);
    memcpy(key, "features", 8);
    key[70] = '\0';
    snprintf(yaml, sizeof yaml, BASE_YAML "    %s: 1\n", key);
    snprintf(msg, sizeof msg, "unknown key '%s'; expected one of: name, version", key);
    char path[120];
    snprintf(path, sizeof path, "feature_views[0].%s", key);
    catalog_errors_t errs = {NULL, 0};
    load_bad(yaml, &errs);
    cr_assert_eq(errs.count, 1);
    expect_error(&errs, path, 14, 5, msg);
    cr_expect_null(strstr(errs.items[0].message, "did you mean"), "%s", errs.items[0].message);
    catalog_errors_clear(&errs);
}

Test(catalog_errors, describe_missing_says_none_and_respects_its_buffer)
{
    catalog_t *c = load_ok(BASE_YAML "  - name: stats\n"
                                     "    version: 2\n"
                                     "    features: [{name: rate, dtype: FLOAT}]\n");
    char buf[128];
    catalog_describe_missing(c, CATALOG_NAME_SERVICE, NULL, "svc", buf, sizeof buf);
    cr_expect_str_eq(buf, "; feature services: none");
    catalog_describe_missing(c, CATALOG_NAME_FEATURE, NULL, "x", buf, sizeof buf);
    cr_expect_str_eq(buf, "; its features: none", "no view given: no features to list");
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, "stats@v7", buf, sizeof buf);
    cr_expect_str_eq(buf, "; its versions: v1, v2");
    /* a view name that does not exist with @vN falls back to the views there are */
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, "stat@v1", buf, sizeof buf);
    cr_expect_str_eq(buf, " (did you mean 'stats'?); feature views: stats");
    /* cap 0 writes nothing; a short buffer is cut and still terminated */
    memcpy(buf, "untouched", 10);
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, "x", buf, 0);
    cr_expect_str_eq(buf, "untouched");
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, "x", buf, 8);
    cr_expect_str_eq(buf, "; featu");
    catalog_describe_missing(c, CATALOG_NAME_VIEW, NULL, "stats@v9", buf, 8);
    cr_expect_str_eq(buf, "; its v");
    catalog_unref(c);
}
