/* tests/storage/test_gc.c - TTL sweeps (storage/gc.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "tests/storage/helpers.h"

static char *dir;
static catalog_t *cat;
static const catalog_view_t *fv;

static void setup(void)
{
    th_fixture_open(&dir, &cat, NULL, &fv);
}

static void teardown(void)
{
    th_fixture_close(dir, cat, NULL);
}

TestSuite(gc, .init = setup, .fini = teardown);

/* 5000 rows of fv (more than one sweep chunk): ids first.., trips = i, even rows at ts_even and
 * odd ones at ts_odd, at log position pos (0: none). */
static void put_rows(store_t *s, int64_t first, int64_t ts_even, int64_t ts_odd, uint64_t pos)
{
    static catalog_value_t ids[5000], vals[5000];
    static int64_t ts[5000];
    for (int i = 0; i < 5000; i++) {
        ids[i] = th_i64(first + i);
        vals[i] = th_i64(i);
        ts[i] = i % 2 == 0 ? ts_even : ts_odd;
    }
    const catalog_value_t *keys[] = {ids}, *cols[] = {vals};
    uint32_t idx = 1;
    store_batch_t b = {.view = fv,
                       .n_rows = 5000,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = &idx,
                       .values = cols,
                       .event_ts_us = ts};
    cr_assert_eq(store_apply(s, &b, 1, pos, NULL), 0);
}

Test(gc, deletes_only_rows_past_their_ttl_across_several_chunks)
{
    store_t *s = th_open_applied(dir, cat);
    const int64_t now = 1700000000ll * 1000000, hour = 3600ll * 1000000;
    /* 5000 rows (more than one sweep chunk): even ids expired, odd ids fresh. */
    put_rows(s, 0, now - 2 * hour, now - hour / 2, 0);
    /* The TTL-less views are never swept. */
    const catalog_view_t *g = th_view(cat, "global", 1);
    catalog_value_t total = th_i64(1);
    const catalog_value_t *gv[] = {&total};
    int64_t old = 1;
    store_batch_t gb = {.view = g,
                        .n_rows = 1,
                        .n_features = 1,
                        .feature_idx = &(uint32_t){0},
                        .values = gv,
                        .event_ts_us = &old};
    cr_assert_eq(store_apply(s, &gb, 1, 0, NULL), 0);

    size_t deleted = 0;
    cr_assert_eq(store_gc(s, now, &deleted), 0);
    cr_assert_eq(deleted, 2500);
    cr_assert_eq(th_rows(s, fv), 2500);
    cr_assert_eq(th_rows(s, g), 1);
    catalog_value_t out;
    cr_assert_eq(th_get(s, fv, 1, 1, now, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(th_get(s, fv, 2, 1, now, &out, NULL), STORE_STATUS_NOT_FOUND);
    cr_assert_eq(store_gc(s, now, &deleted), 0);
    cr_assert_eq(deleted, 0);
    store_close(s);
}

Test(gc, a_store_without_a_catalog_has_nothing_to_sweep)
{
    store_t *s = th_open(dir, 0, STORE_SYNC_NONE);
    size_t deleted = 7;
    cr_assert_eq(store_gc(s, store_now_us(), &deleted), 0);
    cr_assert_eq(deleted, 0);
    store_close(s);
}

Test(gc, tombstones_are_dropped_after_the_retention_in_every_view)
{
    store_options_t o = {.dir = dir, .tombstone_retention_s = 3600};
    store_t *s = NULL;
    cr_assert_eq(store_open(&o, &s), 0);
    cr_assert_eq(store_apply_catalog(s, cat, NULL), 0);
    const int64_t now = 1700000000ll * 1000000, min = 60ll * 1000000;
    /* "global" has no TTL and no entities: its one row's tombstone is swept all the same. */
    const catalog_view_t *g = th_view(cat, "global", 1);
    int64_t gts = now - 90 * min;
    store_batch_t gd = {.view = g, .op = STORE_OP_DELETE, .n_rows = 1, .event_ts_us = &gts};
    cr_assert_eq(store_apply(s, &gd, 1, 0, NULL), 0);
    /* fv has a TTL of 1h: a fresh row, a tombstone inside the retention, one past it. */
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(1), now - min), 0);
    cr_assert_eq(th_put(s, fv, 2, 1, th_i64(2), now - 10 * min), 0);
    cr_assert_eq(th_del(s, fv, 2, now - 5 * min), 0);
    cr_assert_eq(th_del(s, fv, 3, now - 61 * min), 0);
    size_t deleted = 0;
    cr_assert_eq(store_gc(s, now, &deleted), 0);
    cr_assert_eq(deleted, 2, "only the tombstones past the retention go");
    cr_assert_eq(store_gc(s, now, &deleted), 0);
    cr_assert_eq(deleted, 0);
    /* The kept tombstone still wins over an older upsert; the dropped one no longer does. */
    cr_assert_eq(th_put(s, fv, 2, 1, th_i64(22), now - 6 * min), 0);
    cr_assert_eq(th_put(s, fv, 3, 1, th_i64(33), now - 62 * min + 2 * min), 0);
    catalog_value_t out;
    cr_assert_eq(th_get(s, fv, 2, 1, now, &out, NULL), STORE_STATUS_NOT_FOUND);
    cr_assert_eq(th_get(s, fv, 3, 1, now, &out, NULL), STORE_STATUS_PRESENT);
    store_close(s);
}

static bool stop_after_one(void *arg)
{
    int *calls = arg;
    return (*calls)++ >= 1; /* let the first transaction run, stop before the second */
}

Test(gc, a_stopped_sweep_keeps_what_it_deleted_and_the_next_one_finishes)
{
    store_t *s = th_open_applied(dir, cat);
    const int64_t now = 1700000000ll * 1000000, hour = 3600ll * 1000000;
    put_rows(s, 0, now - 2 * hour, now - 2 * hour, 0); /* all expired */
    int calls = 0;
    size_t deleted = 0;
    cr_assert_eq(store_gc_until(s, now, stop_after_one, &calls, &deleted), -ECANCELED);
    cr_assert_eq(deleted, 4096, "one transaction's worth (GC_SCAN rows looked at)");
    cr_assert_eq(th_rows(s, fv), 5000 - 4096);
    cr_assert_eq(store_gc(s, now, &deleted), 0);
    cr_assert_eq(deleted, 5000 - 4096);
    cr_assert_eq(th_rows(s, fv), 0);
    store_close(s);
}

static int count_change(void *arg, const store_change_t *ch)
{
    (void)ch;
    (*(size_t *)arg)++;
    return 0;
}

/* More history entries and change-feed entries than one scan takes (GC_SCAN, 4096): the sweep
 * resumes where each scan stopped, in the history and in the change feed, and deletes exactly
 * what is past the retention, with the rows past their TTL. Of an entity's history entries past
 * the retention the latest stays: a read as of the retention's edge still finds its value. */
Test(gc, history_and_the_change_feed_past_their_retention_go_in_several_scans)
{
    catalog_t *hc = th_catalog("project: p\n"
                               "entities: [{name: driver, join_keys: [{name: driver_id, "
                               "type: INT64}]}]\n"
                               "feature_views:\n"
                               "  - name: h\n"
                               "    entities: [driver]\n"
                               "    ttl: 1h\n"
                               "    offline: {retention: 1d}\n"
                               "    features: [{name: x, dtype: INT64}]\n");
    const catalog_view_t *hv = th_view(hc, "h", 1);
    char *hdir = th_tmpdir();
    store_t *hs = th_open_history_applied(hdir, hc);
    enum { N = 5000, BATCH = 500 };
    int64_t t0 = store_now_us() - 1800000000ll; /* half an hour ago: within the TTL now */
    static catalog_value_t keys[BATCH], vals[BATCH];
    static int64_t ts[BATCH];
    for (int64_t base = 0; base < 2 * N; base += BATCH) { /* every entity twice */
        for (int i = 0; i < BATCH; i++) {
            keys[i] = th_i64((base + i) % N);
            vals[i] = th_i64(base + i);
            ts[i] = t0 + base + i;
        }
        const catalog_value_t *kc[] = {keys}, *vc[] = {vals};
        uint32_t f0 = 0;
        store_batch_t b = {.view = hv,
                           .n_rows = BATCH,
                           .keys = kc,
                           .n_features = 1,
                           .feature_idx = &f0,
                           .values = vc,
                           .event_ts_us = ts};
        cr_assert_eq(store_apply(hs, &b, 1, 0, NULL), 0);
    }
    /* Now: nothing is past its TTL or retention. */
    size_t deleted = 99;
    cr_assert_eq(store_gc(hs, store_now_us(), &deleted), 0);
    cr_assert_eq(deleted, 0);
    /* Three days on: every online row (1 h TTL), each entity's older history entry and every
     * change entry (1 d). */
    cr_assert_eq(store_gc(hs, store_now_us() + 72 * 3600000000ll, &deleted), 0);
    cr_assert_eq(deleted, N + N + 2 * N, "rows, history entries and change entries: %zu", deleted);
    cr_assert_eq(th_rows(hs, hv), 0);
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(hs, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    size_t changes = 0;
    cr_assert_eq(store_changes(r, 0, 0, count_change, &changes), 0);
    cr_assert_eq(changes, 0);
    uint8_t key[STORE_MAX_KEY];
    catalog_value_t k = th_i64(N - 1);
    int n = store_encode_key(hv, &k, 1, key, sizeof key);
    store_row_t row;
    cr_assert_eq(store_history_row(r, hv, key, (size_t)n, store_now_us(), &row), 0);
    cr_assert(row.found, "the latest entry stays");
    const uint8_t *wire;
    size_t len;
    cr_assert_eq(store_row_feature(&row, hv, 0, row.event_ts_us, &wire, &len),
                 STORE_STATUS_PRESENT);
    catalog_value_t x;
    uint64_t scratch[4];
    cr_assert_eq(catalog_value_decode(wire, len, &x, scratch, sizeof scratch), 0);
    cr_assert_eq(x.u.i64, 2 * N - 1, "the second write's value");
    /* The older entry went: nothing as of its own time. */
    cr_assert_eq(store_history_row(r, hv, key, (size_t)n, t0 + N - 1, &row), 0);
    cr_assert_not(row.found);
    store_read_end(r);
    store_reader_free(r);
    store_close(hs);
    th_rmrf(hdir);
    free(hdir);
    catalog_unref(hc);
}

static void note_rc(void *arg, int rc, const store_apply_result_t *res)
{
    (void)res;
    *(int *)arg = rc;
}

/* A log's sweep: at its position only (behind nothing, ahead of nothing), with the message's
 * tombstone retention whatever the store's, and the position recorded only once it is whole. */
Test(gc, a_log_sweep_takes_its_position_and_the_messages_retention)
{
    store_options_t o = {.dir = dir,
                         .sync = STORE_SYNC_LOG,
                         .log_contiguous = true,
                         .tombstone_retention_s = 7 * 86400};
    store_t *s = NULL;
    cr_assert_eq(store_open(&o, &s), 0);
    cr_assert_eq(store_apply_catalog_at(s, cat, NULL, 1), 0);
    const int64_t now = 1700000000ll * 1000000, min = 60ll * 1000000;
    put_rows(s, 100, now - 2 * 60 * min, now - 2 * 60 * min, 2); /* past fv's TTL (1h) */
    /* A fresh row, and a tombstone two hours old: inside the store's 7 days, past the 1 h the
     * message keeps. */
    int64_t fresh = now - min, old = now - 2 * 60 * min;
    cr_assert_eq(th_put_at(s, fv, 1, 1, th_i64(1), fresh, 3), 0);
    cr_assert_eq(th_del_at(s, fv, 3, old, 4), 0);

    size_t deleted = 99;
    const int64_t hour = 60 * min;
    cr_assert_eq(store_gc_at(s, now, hour, 6, NULL, NULL, &deleted), -ESPIPE,
                 "position 5 was never applied");
    cr_assert_eq(store_gc_at(s, now, hour, 4, NULL, NULL, &deleted), -EALREADY);
    cr_assert_eq(store_gc_at(s, now, -1, 5, NULL, NULL, &deleted), -EINVAL);
    cr_assert_eq(deleted, 99, "nothing swept by a refused position");
    cr_assert_eq(th_rows(s, fv), 5001);

    /* Stopped after its first transaction: what it deleted stays, no position is recorded, and
     * the message applied again finishes the same sweep. */
    int calls = 0;
    cr_assert_eq(store_gc_at(s, now, hour, 5, stop_after_one, &calls, &deleted), -ECANCELED);
    uint64_t pos = 0;
    cr_assert_eq(store_last_position(s, &pos), 0);
    cr_assert_eq(pos, 4);
    size_t mid = th_rows(s, fv);
    cr_assert(mid > 1 && mid < 5001, "the first transaction's deletes stay: %zu rows", mid);
    cr_assert_eq(store_gc_at(s, now, hour, 5, NULL, NULL, &deleted), 0);
    cr_assert_eq(deleted, mid - 1, "the rest of the expired rows (the tombstone went first)");
    cr_assert_eq(store_last_position(s, &pos), 0);
    cr_assert_eq(pos, 5);
    cr_assert_eq(th_rows(s, fv), 1, "the fresh row alone is left");
    /* The tombstone went by the message's hour: an older upsert is a row again. */
    cr_assert_eq(th_put_at(s, fv, 3, 1, th_i64(1), old - min, 6), 0);
    catalog_value_t out;
    cr_assert_eq(th_get(s, fv, 3, 1, now - 2 * hour, &out, NULL), STORE_STATUS_PRESENT);

    /* Queued right behind an apply not yet committed: the position is checked behind it. */
    catalog_value_t one = th_i64(1);
    const catalog_value_t *k1[] = {&one}, *c1[] = {&one};
    uint32_t idx = 1;
    store_batch_t up = {.view = fv,
                        .n_rows = 1,
                        .keys = k1,
                        .n_features = 1,
                        .feature_idx = &idx,
                        .values = c1,
                        .event_ts_us = &fresh};
    int async_rc = 1;
    cr_assert_eq(store_apply_async(s, &up, 1, 7, NULL, note_rc, &async_rc), 0);
    cr_assert_eq(store_gc_at(s, now, hour, 8, NULL, NULL, &deleted), 0);
    cr_assert_eq(store_last_position(s, &pos), 0);
    cr_assert_eq(pos, 8);
    cr_assert_eq(async_rc, 0);
    store_close(s);

    /* Not a log's store: refused, nothing swept. */
    store_options_t plain = {.dir = dir};
    cr_assert_eq(store_open(&plain, &s), 0);
    cr_assert_eq(store_gc_at(s, now, hour, 9, NULL, NULL, &deleted), -EINVAL);
    store_close(s);
}
