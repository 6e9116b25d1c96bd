/* tests/core/test_core.c - the instance (core/core.c): core_open()'s options and errors, reloads,
 * workers, health and fstore-min-seq without replication. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"
#include "tests/core/fixture.h"

static const char yaml[] = "project: p\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                           "feature_views:\n"
                           "  - name: fv\n"
                           "    entities: [driver]\n"
                           "    features: [{name: x, dtype: INT64}]\n";

/* yaml and one more view: a safe change. */
static const char yaml_more[] = "project: p\n"
                                "entities:\n"
                                "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                                "feature_views:\n"
                                "  - name: fv\n"
                                "    entities: [driver]\n"
                                "    features: [{name: x, dtype: INT64}]\n"
                                "  - name: extra\n"
                                "    entities: [driver]\n"
                                "    features: [{name: y, dtype: STRING}]\n";

/* fv@v1's feature x changes its type in place: breaking against the applied catalog. */
static const char yaml_breaking[] = "project: p\n"
                                    "entities:\n"
                                    "  - {name: driver, join_keys: [{name: driver_id, type: "
                                    "INT64}]}\n"
                                    "feature_views:\n"
                                    "  - name: fv\n"
                                    "    entities: [driver]\n"
                                    "    features: [{name: x, dtype: STRING}]\n";

static fx_t f;

static void teardown(void)
{
    fx_close(&f);
}

TestSuite(core_open, .fini = teardown);

/* Whether cat has a view called name (the default version). */
static bool has_view(const catalog_t *cat, const char *name)
{
    const catalog_view_t *v = NULL;
    return catalog_find_view(cat, name, 0, &v) == 0;
}

Test(core_open, a_missing_data_dir_is_invalid_whether_quiet_or_not)
{
    fx_init(&f, yaml);
    core_options_t o;
    fx_options(&f, &o);
    o.data_dir = NULL;
    core_t *c = (core_t *)&f; /* must stay untouched on failure */
    cr_assert_eq(core_open(&o, &c), -EINVAL);
    cr_assert_eq(c, (core_t *)&f, "*out is set on success only");
    o.quiet = false; /* logs bad_options, same result */
    cr_assert_eq(core_open(&o, &c), -EINVAL);
    cr_assert_eq(c, (core_t *)&f);
}

Test(core_open, a_data_dir_that_is_a_file_fails_with_the_stores_error)
{
    fx_init(&f, yaml);
    core_options_t o;
    fx_options(&f, &o);
    o.data_dir = f.catalog; /* a regular file, not a directory */
    core_t *c = NULL;
    cr_assert_eq(core_open(&o, &c), -ENOTDIR);
    cr_assert_null(c);
    o.quiet = false; /* logs store_open_failed with the same error */
    cr_assert_eq(core_open(&o, &c), -ENOTDIR);
    cr_assert_null(c);
}

Test(core_open, without_a_catalog_a_fresh_data_dir_has_none_to_serve)
{
    fx_init(&f, NULL);
    core_options_t o;
    fx_options(&f, &o);
    o.catalog_path = NULL;
    core_t *c = NULL;
    cr_assert_eq(core_open(&o, &c), -ENOENT);
    o.quiet = false; /* logs no_catalog naming the data directory */
    cr_assert_eq(core_open(&o, &c), -ENOENT);
    cr_assert_null(c);
}

Test(core_open, an_invalid_catalog_is_refused)
{
    fx_init(&f, "project: p\nfeature_views:\n  - {name: fv, entities: [nobody], features: []}\n");
    core_options_t o;
    fx_options(&f, &o);
    core_t *c = NULL;
    cr_assert_eq(core_open(&o, &c), -EINVAL);
    cr_assert_null(c);
}

Test(core_open, oversized_limits_are_clamped_and_a_zero_history_limit_takes_the_default)
{
    fx_init(&f, yaml);
    core_options_t o;
    fx_options(&f, &o);
    o.limits.max_message_bytes = (size_t)INT32_MAX + 1;
    o.limits.max_response_bytes = SIZE_MAX;
    o.limits.max_history_rows = 0;
    o.limits.max_entities = 7;
    o.limits.max_features = 8;
    o.limits.max_write_rows = 9;
    cr_assert_eq(fx_open(&f, &o), 0);
    const core_limits_t *l = core_limits(f.core);
    /* gRPC takes message sizes as int */
    cr_assert_eq(l->max_message_bytes, (size_t)INT32_MAX);
    cr_assert_eq(l->max_response_bytes, (size_t)INT32_MAX);
    cr_assert_eq(l->max_history_rows, CORE_DEFAULT_MAX_HISTORY_ROWS);
    /* the others as given */
    cr_assert_eq(l->max_entities, 7);
    cr_assert_eq(l->max_features, 8);
    cr_assert_eq(l->max_write_rows, 9);
    cr_assert_str_eq(core_data_dir(f.core), f.data);
    /* zero read-wait settings take their defaults */
    cr_assert_eq(f.core->max_read_wait_ms, 5000);
    cr_assert_eq(f.core->max_read_waiters, 16);
}

Test(core_open, limits_within_range_are_kept_as_given)
{
    fx_init(&f, yaml);
    core_options_t o;
    fx_options(&f, &o);
    o.limits.max_message_bytes = 1000;
    o.limits.max_response_bytes = 2000;
    o.limits.max_history_rows = 3;
    o.max_read_wait_ms = 250;
    o.max_read_waiters = 2;
    cr_assert_eq(fx_open(&f, &o), 0);
    const core_limits_t *l = core_limits(f.core);
    cr_assert_eq(l->max_message_bytes, 1000);
    cr_assert_eq(l->max_response_bytes, 2000);
    cr_assert_eq(l->max_history_rows, 3);
    cr_assert_eq(f.core->max_read_wait_ms, 250);
    cr_assert_eq(f.core->max_read_waiters, 2);
}

/* max_workers 0 still leaves one pin slot: one worker, the next refused until it is freed. */
Test(core_open, workers_past_max_workers_are_refused_and_a_freed_slot_is_reused)
{
    fx_init(&f, yaml);
    core_options_t o;
    fx_options(&f, &o);
    o.max_workers = 0;
    cr_assert_eq(fx_open(&f, &o), 0);
    core_worker_t *a = NULL, *b = NULL;
    cr_assert_eq(core_worker_new(f.core, 0, NULL, &a), 0);
    cr_assert_null(a->reader, "no CORE_WORKER_READS: no store reader");
    cr_assert_eq(core_worker_new(f.core, CORE_WORKER_READS, NULL, &b), -EMFILE);
    cr_assert_null(b);
    core_worker_free(a);
    cr_assert_eq(core_worker_new(f.core, CORE_WORKER_READS | CORE_WORKER_NO_CACHE, NULL, &b), 0);
    cr_assert_eq(b->pin, 0);
    cr_assert_not_null(b->reader);
    cr_assert_null(b->ref_cache, "NO_CACHE: no feature-list cache");
    cr_assert_null(b->predict_cache, "NO_CACHE: no output-name cache");
    core_worker_free(b);
    core_worker_free(NULL); /* accepted */
}

Test(core_open, the_applied_catalog_serves_without_a_catalog_path_and_cannot_be_reloaded)
{
    fx_setup_reopened(&f, yaml, false, false);
    catalog_t *cat = core_catalog_ref(f.core);
    cr_assert(has_view(cat, "fv"));
    catalog_unref(cat);
    cr_assert_eq(core_reload(f.core), -ENOENT);
    uint64_t applied = 9, rejected = 9;
    core_reload_counts(f.core, &applied, &rejected);
    cr_assert_eq(applied, 0);
    cr_assert_eq(rejected, 1);
}

Test(core_open, a_read_only_core_serves_the_applied_catalog)
{
    fx_setup_reopened(&f, yaml, true, true);
    fx_begin(&f);
    const catalog_view_t *v = fx_view(&f, "fv");
    cr_assert_eq(v->version, 1);
}

TestSuite(core_reload, .fini = teardown);

Test(core_reload, a_safe_change_is_swapped_in_and_counted)
{
    fx_setup(&f, yaml);
    catalog_t *before = core_catalog_ref(f.core);
    cr_assert_not(has_view(before, "extra"));
    fx_write_catalog(&f, yaml_more);
    cr_assert_eq(core_reload(f.core), 0);
    catalog_t *after = core_catalog_ref(f.core);
    cr_assert(has_view(after, "extra"));
    cr_assert_neq(after, before);
    uint64_t applied = 9, rejected = 9;
    core_reload_counts(f.core, &applied, &rejected);
    cr_assert_eq(applied, 1);
    cr_assert_eq(rejected, 0);
    catalog_unref(after);
    catalog_unref(before);
    /* no worker pins the old catalog: collected at once */
    cr_assert_eq(core_collect(f.core), 0);
}

Test(core_reload, a_breaking_or_invalid_catalog_is_rejected_and_the_old_one_keeps_serving)
{
    fx_setup(&f, yaml);
    catalog_t *before = core_catalog_ref(f.core);
    fx_write_catalog(&f, yaml_breaking);
    cr_assert_eq(core_reload(f.core), -EPERM);
    fx_write_catalog(&f, "project: p\nfeature_views: [{name: fv, entities: [nobody]}]\n");
    cr_assert_eq(core_reload(f.core), -EINVAL);
    catalog_t *after = core_catalog_ref(f.core);
    cr_assert_eq(after, before, "the old catalog keeps serving");
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(after, "fv", 0, &v), 0);
    cr_assert_eq(v->features[0].dtype, CATALOG_DTYPE_INT64);
    uint64_t applied = 9, rejected = 9;
    core_reload_counts(f.core, &applied, &rejected);
    cr_assert_eq(applied, 0);
    cr_assert_eq(rejected, 2);
    catalog_unref(after);
    catalog_unref(before);
}

/* A worker still in a request on the old catalog keeps it alive past the reload. */
Test(core_reload, a_pinned_catalog_waits_for_its_request_to_end)
{
    fx_setup(&f, yaml);
    fx_begin(&f);
    const catalog_t *pinned = f.ctx.catalog;
    fx_write_catalog(&f, yaml_more);
    cr_assert_eq(core_reload(f.core), 0);
    cr_assert_eq(f.ctx.catalog, pinned, "the request keeps its catalog");
    cr_assert_eq(core_collect(f.core), 1, "the old catalog waits for the request");
    core_ctx_end(&f.ctx);
    f.begun = false;
    cr_assert_eq(core_collect(f.core), 0);
    core_ctx_begin(&f.ctx, f.worker, &f.arena);
    f.begun = true;
    cr_assert(has_view(f.ctx.catalog, "extra"), "the next request sees the new catalog");
}

TestSuite(core_health, .fini = teardown);

Test(core_health, not_serving_until_a_transport_says_so_and_again_once_it_drains)
{
    fx_setup(&f, yaml);
    cr_assert_eq(core_health(f.core), CORE_NOT_SERVING);
    cr_assert_eq(core_live(f.core), CORE_NOT_SERVING);
    cr_assert_null(core_repl(f.core), "a single node");
    core_set_health(f.core, CORE_SERVING);
    cr_assert_eq(core_health(f.core), CORE_SERVING);
    cr_assert_eq(core_live(f.core), CORE_SERVING);
    core_set_health(f.core, CORE_NOT_SERVING);
    cr_assert_eq(core_health(f.core), CORE_NOT_SERVING);
    cr_assert(atomic_load(&f.core->served), "it served once: draining now");
}

/* fstore-min-seq asks a replica to wait; a single node has no sequence to wait for. */
Test(core_health, a_read_waiting_for_a_sequence_on_a_single_node_is_refused)
{
    fx_setup(&f, yaml);
    fx_begin(&f);
    f.ctx.min_seq = 42;
    cr_assert_eq(core__wait_min_seq(&f.ctx), -EBUSY);
    cr_assert_str_eq(f.ctx.msg, "fstore-min-seq 42: this server does not replicate (started "
                                "without --replication), so there is no sequence to wait for");
}

Test(core_health, core_fail_formats_the_message_and_returns_the_error)
{
    core_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    cr_assert_eq(core_fail(&ctx, -E2BIG, "limit %d of %s", 3, "rows"), -E2BIG);
    cr_assert_str_eq(ctx.msg, "limit 3 of rows");
    /* a message longer than CORE_MSG_MAX is cut, still terminated */
    char long_arg[2 * CORE_MSG_MAX];
    memset(long_arg, 'a', sizeof long_arg - 1);
    long_arg[sizeof long_arg - 1] = '\0';
    cr_assert_eq(core_fail(&ctx, -EINVAL, "%s", long_arg), -EINVAL);
    cr_assert_eq(strlen(ctx.msg), CORE_MSG_MAX - 1);
}
