/* tests/core/test_write.c - writes (core/write.c): the store's refusals as a client reads them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"
#include "tests/core/fixture.h"
#include "tests/storage/helpers.h"

static const char yaml[] = "project: p\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                           "feature_views:\n"
                           "  - name: fv\n"
                           "    entities: [driver]\n"
                           "    features: [{name: x, dtype: INT64}, {name: y, dtype: STRING}]\n";

static fx_t f;

static void teardown(void)
{
    fx_close(&f);
}

TestSuite(write, .fini = teardown);

static int calls;
static void done(void *arg, int rc, const core_write_result_t *res)
{
    (void)arg;
    (void)rc;
    (void)res;
    calls++;
}

/* One row: driver_id = 1 and the columns names[1..n) = vals. */
static int write_row(const catalog_view_t *v, const char **names, const catalog_value_t *vals,
                     size_t n, store_op_t op)
{
    const catalog_value_t *cols[4];
    for (size_t i = 0; i < n; i++)
        cols[i] = &vals[i];
    core_columns_t c = {.n_cols = n, .n_rows = 1, .names = names, .cols = cols};
    calls = 0;
    int rc = core_write(&f.ctx, v, &c, NULL, 0, op, done, NULL);
    cr_assert_eq(calls, 0, "done is not called when core_write() fails");
    return rc;
}

/* A column named twice reaches the store as the same feature twice: refused by name. */
Test(write, a_feature_written_twice_in_one_row_is_refused_by_name)
{
    fx_setup(&f, yaml);
    fx_begin(&f);
    const char *names[3] = {"driver_id", "x", "x"};
    catalog_value_t vals[3] = {th_i64(1), th_i64(2), th_i64(3)};
    cr_assert_eq(write_row(fx_view(&f, "fv"), names, vals, 3, STORE_OP_UPSERT), -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "row 0, feature 'x': feature listed twice in one batch");
}

/* A refusal that names no field is worded with the row alone. */
Test(write, a_refusal_without_a_field_names_the_row)
{
    fx_setup(&f, yaml);
    fx_begin(&f);
    const char *names[2] = {"driver_id", "x"};
    catalog_value_t vals[2] = {th_i64(1), th_i64(2)};
    cr_assert_eq(write_row(fx_view(&f, "fv"), names, vals, 2, (store_op_t)99), -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "row 0: unknown op 99");
}

/* A view of a catalog this store never applied has no database to write into. */
Test(write, a_view_not_applied_here_has_no_data)
{
    fx_setup(&f, yaml);
    fx_begin(&f);
    catalog_t *other = th_catalog("project: p\n"
                                  "entities: [{name: driver, join_keys: [{name: driver_id, "
                                  "type: INT64}]}]\n"
                                  "feature_views:\n"
                                  "  - {name: gone, version: 2, entities: [driver],\n"
                                  "     features: [{name: x, dtype: INT64}]}\n");
    const char *names[2] = {"driver_id", "x"};
    catalog_value_t vals[2] = {th_i64(1), th_i64(2)};
    cr_assert_eq(write_row(th_view(other, "gone", 2), names, vals, 2, STORE_OP_UPSERT), -ENOENT);
    cr_assert_str_eq(f.ctx.msg, "feature view 'gone@v2' has no data in this store (not applied, "
                                "or torn down)");
    catalog_unref(other);
}

/* A read-only node takes no write, whoever asks (an authenticated caller too). */
Test(write, a_read_only_node_refuses_writes_and_gc)
{
    fx_setup_reopened(&f, yaml, true, true);
    fx_begin(&f);
    f.ctx.principal = "pipeline";
    const char *names[2] = {"driver_id", "y"};
    catalog_value_t vals[2] = {th_i64(1), th_str("v")};
    cr_assert_eq(write_row(fx_view(&f, "fv"), names, vals, 2, STORE_OP_UPSERT), -EROFS);
    char want[128];
    snprintf(want, sizeof want, "write failed: %s", strerror(EROFS));
    cr_assert_str_eq(f.ctx.msg, want);
    const char *keys[1] = {"driver_id"};
    cr_assert_eq(write_row(fx_view(&f, "fv"), keys, vals, 1, STORE_OP_DELETE), -EROFS);
    size_t deleted = 99;
    char msg[256] = "";
    int rc = core_gc(f.core, 0, &deleted, msg, sizeof msg);
    cr_assert_eq(rc, -EROFS, "%d %s", rc, msg);
    snprintf(want, sizeof want, "gc failed: %s", strerror(EROFS));
    cr_assert_str_eq(msg, want);
    cr_assert_eq(deleted, 0);
    cr_assert_not(atomic_load(&f.core->gc_running), "the failed sweep let go of its flag");
}
