/* tests/core/test_gc.c - core_gc(): a node's sweep of its rows past their TTL, one at a time. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"
#include "tests/storage/helpers.h"

static const char yaml[] = "project: p\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                           "feature_views:\n"
                           "  - name: fv\n"
                           "    entities: [driver]\n"
                           "    ttl: 1h\n"
                           "    features: [{name: x, dtype: INT64}]\n";

static char *dir;
static core_t *core;
static catalog_t *cat;
static const catalog_view_t *fv;

static void put(int64_t id, int64_t ts_us)
{
    cr_assert_eq(th_put(core_store(core), fv, id, 0, th_i64(id), ts_us), 0);
}

static void setup(void)
{
    dir = th_tmpdir();
    char path[4200], data[4200];
    snprintf(path, sizeof path, "%s/catalog.yaml", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(yaml, f);
    fclose(f);
    core_options_t o;
    core_options_init(&o);
    o.data_dir = data;
    o.catalog_path = path;
    o.quiet = true;
    o.sync = STORE_SYNC_NONE;
    cr_assert_eq(core_open(&o, &core), 0);
    cr_assert_eq(store_applied_catalog(core_store(core), &cat), 0);
    fv = th_view(cat, "fv", 0);
}

static void teardown(void)
{
    catalog_unref(cat);
    core_close(core);
    th_rmrf(dir);
    free(dir);
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
    cr_assert_eq(core_gc(core, 0, &deleted, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(deleted, 2);
    cr_assert_eq(core_gc(core, 0, &deleted, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(deleted, 0);
}

Test(core_gc, a_second_sweep_while_one_runs_is_refused_at_once)
{
    put(1, store_now_us() - 2 * 3600 * 1000000LL);
    atomic_store(&core->gc_running, true); /* as while another call's sweep runs */
    size_t deleted = 99;
    char msg[256] = "";
    cr_assert_eq(core_gc(core, 0, &deleted, msg, sizeof msg), -EALREADY);
    cr_assert_eq(deleted, 0);
    cr_assert(strstr(msg, "already running") != NULL, "%s", msg);
    atomic_store(&core->gc_running, false);
    cr_assert_eq(core_gc(core, 0, &deleted, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(deleted, 1, "the refused call left the flag as it found it");
}

Test(core_gc, a_sweep_stops_at_its_deadline_or_when_the_node_drains_and_keeps_what_it_deleted)
{
    /* more rows than one transaction of the sweep looks at (storage/gc.c's GC_SCAN, 4096) */
    int64_t old = store_now_us() - 2 * 3600 * 1000000LL;
    for (int64_t id = 0; id < 5000; id++)
        put(id, old);
    size_t deleted = 99;
    char msg[256] = "";
    /* a deadline already past: the sweep stops before its first transaction */
    cr_assert_eq(core_gc(core, base_mono_us() - 1, &deleted, msg, sizeof msg), -ETIMEDOUT);
    cr_assert_eq(deleted, 0);
    cr_assert(strstr(msg, "the call's deadline passed") != NULL, "%s", msg);
    /* a node that served and drains: the same, with its own error */
    core_set_health(core, CORE_SERVING);
    core_set_health(core, CORE_NOT_SERVING);
    cr_assert_eq(core_gc(core, 0, &deleted, msg, sizeof msg), -ESHUTDOWN);
    cr_assert(strstr(msg, "the server is stopping") != NULL, "%s", msg);
    core_set_health(core, CORE_SERVING);
    /* no bound: everything, and the refused calls left the sweep's flag clear */
    cr_assert_eq(core_gc(core, 0, &deleted, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(deleted, 5000);
}
