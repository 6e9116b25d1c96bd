/* tests/core/test_gc.c - core_gc(): a node's sweep of its rows past their TTL, one at a time. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"
#include "tests/tmpdir.h"

static const char yaml[] = "project: p\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                           "feature_views:\n"
                           "  - name: fv\n"
                           "    entities: [driver]\n"
                           "    ttl: 1h\n"
                           "    features: [{name: x, dtype: INT64}]\n";

static char dir[4096];
static core_t *core;

static void put(int64_t id, int64_t ts_us)
{
    const catalog_view_t *v = NULL;
    catalog_t *cat = NULL;
    cr_assert_eq(store_applied_catalog(core_store(core), &cat), 0);
    cr_assert_eq(catalog_find_view(cat, "fv", 0, &v), 0);
    catalog_value_t key = {.type = CATALOG_DTYPE_INT64, .u.i64 = id};
    catalog_value_t val = {.type = CATALOG_DTYPE_INT64, .u.i64 = id};
    const catalog_value_t *keys[1] = {&key}, *vals[1] = {&val};
    uint32_t idx[1] = {0};
    store_batch_t b = {.view = v,
                       .op = STORE_OP_UPSERT,
                       .n_rows = 1,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = idx,
                       .values = vals,
                       .event_ts_us = &ts_us};
    store_apply_result_t res;
    cr_assert_eq(store_apply(core_store(core), &b, 1, 0, &res), 0, "%s", res.error);
    catalog_unref(cat);
}

static void setup(void)
{
    cr_assert_not_null(test_tmpdir("test-gc", dir, sizeof dir));
    char path[4200];
    snprintf(path, sizeof path, "%s/catalog.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(yaml, f);
    fclose(f);
    char data[4200];
    snprintf(data, sizeof data, "%s/data", dir);
    core_options_t o;
    core_options_init(&o);
    o.data_dir = data;
    o.catalog_path = path;
    o.quiet = true;
    cr_assert_eq(core_open(&o, &core), 0);
}

static void teardown(void)
{
    core_close(core);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(core_gc, .init = setup, .fini = teardown, .timeout = 60);

Test(core_gc, deletes_the_rows_past_their_ttl_and_no_others)
{
    int64_t now = store_now_us();
    put(1, now - 2 * 3600 * 1000000LL);
    put(2, now - 3 * 3600 * 1000000LL);
    put(3, now - 60 * 1000000LL);
    size_t deleted = 99;
    char msg[256] = "";
    cr_assert_eq(core_gc(core, &deleted, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(deleted, 2);
    cr_assert_eq(core_gc(core, &deleted, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(deleted, 0);
}

Test(core_gc, a_second_sweep_while_one_runs_is_refused_at_once)
{
    put(1, store_now_us() - 2 * 3600 * 1000000LL);
    atomic_store(&core->gc_running, true); /* as while another call's sweep runs */
    size_t deleted = 99;
    char msg[256] = "";
    cr_assert_eq(core_gc(core, &deleted, msg, sizeof msg), -EALREADY);
    cr_assert_eq(deleted, 0);
    cr_assert(strstr(msg, "already running") != NULL, "%s", msg);
    atomic_store(&core->gc_running, false);
    cr_assert_eq(core_gc(core, &deleted, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(deleted, 1, "the refused call left the flag as it found it");
}
