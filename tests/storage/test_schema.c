/* tests/storage/test_schema.c - applying catalogs, plans and teardown (storage/schema.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/storage/helpers.h"

static char *dir;
static catalog_t *cat;
static store_t *s;
static const catalog_view_t *fv;

static void setup(void)
{
    th_fixture_open(&dir, &cat, &s, &fv);
}

static void teardown(void)
{
    th_fixture_close(dir, cat, s);
}

TestSuite(schema, .init = setup, .fini = teardown);

/* th_yaml with one substitution applied (asserting it matched). */
static catalog_t *variant(const char *from, const char *to)
{
    const char *at = strstr(th_yaml, from);
    cr_assert_not_null(at, "'%s' not in th_yaml", from);
    size_t n = strlen(th_yaml) - strlen(from) + strlen(to) + 1;
    char *y = malloc(n);
    snprintf(y, n, "%.*s%s%s", (int)(at - th_yaml), th_yaml, to, at + strlen(from));
    catalog_t *c = th_catalog(y);
    free(y);
    return c;
}

static const char *const fv_block = "  - name: fv\n"
                                    "    version: 1\n"
                                    "    entities: [driver]\n"
                                    "    ttl: 1h\n"
                                    "    features:\n"
                                    "      - {name: conv_rate, dtype: FLOAT, validation: {min: "
                                    "0, max: 1}}\n"
                                    "      - {name: trips, dtype: INT64}\n"
                                    "      - {name: label, dtype: STRING}\n"
                                    "      - {name: hist, dtype: INT64_LIST}\n";

static void assert_applied_is(const catalog_t *want)
{
    catalog_t *got = NULL;
    cr_assert_eq(store_applied_catalog(s, &got), 0);
    cr_assert_str_eq(catalog_digest(got), catalog_digest(want));
    catalog_unref(got);
}

Test(schema, apply_creates_one_database_per_online_view_version_and_records_the_catalog)
{
    store_stats_t st;
    cr_assert_eq(store_stat(s, &st), 0);
    cr_assert_eq(st.n_views, 4);
    assert_applied_is(cat);
    store_close(s);
    s = th_open(dir, 0, STORE_SYNC_NONE);
    assert_applied_is(cat);
    cr_assert_eq(th_rows(s, fv), 0);
}

Test(schema, reapplying_the_same_catalog_changes_nothing)
{
    cr_assert_eq(th_put(s, fv, 1, 0, th_f32(0.5f), 1), 0);
    catalog_plan_t plan;
    cr_assert_eq(store_apply_catalog(s, cat, &plan), 0);
    cr_assert_eq(plan.count, 0);
    catalog_plan_clear(&plan);
    cr_assert_eq(th_rows(s, fv), 1);
}

Test(schema, a_breaking_change_is_refused_with_its_plan_and_nothing_is_applied)
{
    catalog_t *bad = variant("{name: trips, dtype: INT64}", "{name: trips, dtype: STRING}");
    catalog_plan_t plan;
    cr_assert_eq(store_apply_catalog(s, bad, &plan), -EPERM);
    cr_assert_gt(plan.n_breaking, 0);
    bool named = false;
    for (size_t i = 0; i < plan.count; i++)
        named |= plan.items[i].breaking && strstr(plan.items[i].object, "trips") != NULL;
    cr_assert(named, "the plan must say which feature breaks");
    catalog_plan_clear(&plan);
    assert_applied_is(cat);
    catalog_unref(bad);
}

Test(schema, an_appended_feature_is_safe_and_old_rows_read_it_as_null)
{
    cr_assert_eq(th_put(s, fv, 1, 0, th_f32(0.5f), 1), 0);
    catalog_t *more = variant("      - {name: hist, dtype: INT64_LIST}\n",
                              "      - {name: hist, dtype: INT64_LIST}\n"
                              "      - {name: extra, dtype: INT64}\n");
    catalog_plan_t plan;
    cr_assert_eq(store_plan_catalog(s, more, &plan), 0);
    cr_assert_gt(plan.count, 0);
    cr_assert_eq(plan.n_breaking, 0);
    catalog_plan_clear(&plan);
    cr_assert_eq(store_apply_catalog(s, more, NULL), 0);
    const catalog_view_t *v = th_view(more, "fv", 1);
    catalog_value_t out;
    cr_assert_eq(th_get(s, v, 1, 4, 1, &out, NULL), STORE_STATUS_NULL_VALUE);
    cr_assert_eq(th_get(s, v, 1, 0, 1, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(th_put(s, v, 1, 4, th_i64(3), 2), 0);
    cr_assert_eq(th_get(s, v, 1, 4, 2, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.i64, 3);
    /* The old catalog's view still reads what it knows. */
    cr_assert_eq(th_get(s, fv, 1, 0, 2, &out, NULL), STORE_STATUS_PRESENT);
    catalog_unref(more);
}

Test(schema, removing_a_view_with_data_is_breaking_until_it_is_torn_down)
{
    cr_assert_eq(th_put(s, fv, 1, 0, th_f32(0.5f), 1), 0);
    catalog_t *without = variant(fv_block, "");
    catalog_plan_t plan;
    cr_assert_eq(store_apply_catalog(s, without, &plan), -EPERM);
    catalog_plan_clear(&plan);

    cr_assert_eq(store_teardown(s, "fv", 1), 0);
    size_t n;
    cr_assert_eq(store_count_rows(s, fv, &n), -ENOENT);
    catalog_value_t out;
    store_reader_t *r;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    store_row_t row;
    uint8_t k[8] = {0};
    cr_assert_eq(store_read_row(r, fv, k, 8, &row), -ENOENT);
    store_read_end(r);
    store_reader_free(r);
    cr_assert_eq(th_put(s, fv, 1, 0, th_f32(0.5f), 1), -ENOENT);

    cr_assert_eq(store_plan_catalog(s, without, &plan), 0);
    cr_assert_eq(plan.n_breaking, 0);
    catalog_plan_clear(&plan);
    cr_assert_eq(store_apply_catalog(s, without, &plan), 0);
    catalog_plan_clear(&plan);
    assert_applied_is(without);
    (void)out;
    catalog_unref(without);
}

Test(schema, reapplying_a_torn_down_view_creates_it_again_empty)
{
    cr_assert_eq(th_put(s, fv, 1, 0, th_f32(0.5f), 1), 0);
    cr_assert_eq(store_teardown(s, "fv", 0), 0);
    /* Redefining a torn-down version, even incompatibly, is safe: no data is left. */
    catalog_t *redef = variant("{name: trips, dtype: INT64}", "{name: trips, dtype: STRING}");
    cr_assert_eq(store_apply_catalog(s, redef, NULL), 0);
    const catalog_view_t *v = th_view(redef, "fv", 1);
    cr_assert_eq(th_rows(s, v), 0);
    cr_assert_eq(th_put(s, v, 1, 1, th_str("many"), 1), 0);
    cr_assert_eq(th_rows(s, v), 1);
    catalog_unref(redef);
}

Test(schema, version_zero_tears_down_every_version_of_a_view)
{
    cr_assert_eq(store_teardown(s, "stats", 0), 0);
    store_stats_t st;
    cr_assert_eq(store_stat(s, &st), 0);
    cr_assert_eq(st.n_views, 2);
    size_t n;
    cr_assert_eq(store_count_rows(s, th_view(cat, "stats", 2), &n), -ENOENT);
    cr_assert_eq(store_teardown(s, "stats", 0), -ENOENT);
    cr_assert_eq(store_teardown(s, "nope", 1), -ENOENT);
}

Test(schema, tearing_everything_down_forgets_catalog_position_and_data)
{
    catalog_value_t key = th_i64(1), val = th_f32(0.1f);
    const catalog_value_t *keys[] = {&key}, *vals[] = {&val};
    uint32_t idx = 0;
    store_batch_t b = {.view = fv,
                       .n_rows = 1,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = &idx,
                       .values = vals};
    cr_assert_eq(store_apply(s, &b, 1, 12, NULL), 0);
    cr_assert_eq(store_teardown(s, NULL, 0), 0);
    catalog_t *c = NULL;
    cr_assert_eq(store_applied_catalog(s, &c), -ENOENT);
    uint64_t pos = 1;
    cr_assert_eq(store_last_position(s, &pos), 0);
    cr_assert_eq(pos, 0);
    store_stats_t st;
    cr_assert_eq(store_stat(s, &st), 0);
    cr_assert_eq(st.n_views, 0);
    /* And it starts over cleanly. */
    cr_assert_eq(store_apply_catalog(s, cat, NULL), 0);
    cr_assert_eq(th_rows(s, fv), 0);
}

Test(schema, a_catalog_applied_at_a_log_position_records_it_and_a_replay_is_ealready)
{
    char both[1024];
    snprintf(both, sizeof both,
             "%s  - name: fv\n"
             "    version: 2\n"
             "    entities: [driver]\n"
             "    features:\n"
             "      - {name: trips, dtype: INT64}\n",
             fv_block);
    catalog_t *v2 = variant(fv_block, both);
    cr_assert_eq(store_apply_catalog_at(s, v2, NULL, 7), 0);
    uint64_t pos = 0;
    cr_assert_eq(store_last_position(s, &pos), 0);
    cr_assert_eq(pos, 7);
    cr_assert_not_null(th_view(v2, "fv", 2));
    cr_assert_eq(store_apply_catalog_at(s, cat, NULL, 7), -EALREADY);
    cr_assert_eq(store_apply_catalog_at(s, cat, NULL, 3), -EALREADY);
    assert_applied_is(v2);
    /* A write logged after it lands at its own position. */
    cr_assert_eq(store_apply(s, NULL, 0, 8, NULL), 0);
    cr_assert_eq(store_last_position(s, &pos), 0);
    cr_assert_eq(pos, 8);
    catalog_unref(v2);
}

static void history_dbs(void *arg, const store_verify_db_t *db)
{
    int *n = arg;
    if (strncmp(db->name, "history ", 8) == 0)
        (*n)++;
}

/* A view version that kept history, torn down: its history went with it, and an open of the
 * store (history on) does not bring an empty one back (it once did, for every view of the
 * applied catalog that keeps history, torn down or not). */
Test(schema, a_torn_down_history_stays_gone_across_a_reopen)
{
    static const char yaml[] = "project: p\n"
                               "entities:\n"
                               "  - name: driver\n"
                               "    join_keys: [{name: driver_id, type: INT64}]\n"
                               "feature_views:\n"
                               "  - name: hist\n"
                               "    version: 1\n"
                               "    entities: [driver]\n"
                               "    offline: {retention: 1d}\n"
                               "    features:\n"
                               "      - {name: x, dtype: DOUBLE}\n";
    catalog_t *c = th_catalog(yaml);
    char *d = th_tmpdir();
    store_options_t o = {.dir = d, .sync = STORE_SYNC_NONE, .history = STORE_HISTORY_ON};
    store_t *st = NULL;
    cr_assert_eq(store_open(&o, &st), 0);
    catalog_plan_t plan;
    cr_assert_eq(store_apply_catalog(st, c, &plan), 0);
    catalog_plan_clear(&plan);
    int n = 0;
    cr_assert_eq(store_verify(st, NULL, history_dbs, &n), 0);
    cr_assert_eq(n, 1, "the view's history database");
    cr_assert_eq(store_teardown(st, "hist", 1), 0);
    n = 0;
    cr_assert_eq(store_verify(st, NULL, history_dbs, &n), 0);
    cr_assert_eq(n, 0);
    store_close(st);
    cr_assert_eq(store_open(&o, &st), 0);
    n = 0;
    cr_assert_eq(store_verify(st, NULL, history_dbs, &n), 0);
    cr_assert_eq(n, 0, "an open created the torn-down view's history again");
    /* Applied again, the view has its history again, empty. */
    store_close(st);
    cr_assert_eq(store_open(&o, &st), 0);
    catalog_t *again = th_catalog(yaml);
    cr_assert_eq(store_apply_catalog(st, again, &plan), 0);
    catalog_plan_clear(&plan);
    n = 0;
    cr_assert_eq(store_verify(st, NULL, history_dbs, &n), 0);
    cr_assert_eq(n, 1, "applied again, the view version has its history again");
    store_close(st);
    catalog_unref(again);
    catalog_unref(c);
    th_rmrf(d);
    free(d);
}
