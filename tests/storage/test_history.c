/* tests/storage/test_history.c - views' history and point-in-time reads (storage/history.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/storage/helpers.h"

/* "h": INT64 key, TTL 1h, history kept 30 days, features a (0) and b (1). "pair": two join keys
 * (driver_id, city), TTL 10 min. "plain": no history. */
static const char yaml[] = "project: t\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                           "  - {name: city, join_keys: [{name: city, type: STRING}]}\n"
                           "feature_views:\n"
                           "  - name: h\n"
                           "    entities: [driver]\n"
                           "    ttl: 1h\n"
                           "    offline: {retention: 30d}\n"
                           "    features: [{name: a, dtype: INT64}, {name: b, dtype: INT64}]\n"
                           "  - name: pair\n"
                           "    entities: [driver, city]\n"
                           "    ttl: 10m\n"
                           "    offline: {retention: 0}\n"
                           "    features: [{name: x, dtype: INT64}]\n"
                           "  - name: plain\n"
                           "    entities: [driver]\n"
                           "    features: [{name: a, dtype: INT64}]\n";

static char *dir;
static catalog_t *cat;
static store_t *s;
static const catalog_view_t *h;

#define SEC 1000000ll
static const int64_t T0 = 1700000000ll * SEC;

static store_t *open_store(bool history)
{
    store_options_t o = {.dir = dir,
                         .sync = STORE_SYNC_NONE,
                         .history = history ? STORE_HISTORY_ON : STORE_HISTORY_OFF};
    store_t *st = NULL;
    cr_assert_eq(store_open(&o, &st), 0);
    cr_assert_eq(store_apply_catalog(st, cat, NULL), 0);
    return st;
}

static void setup(void)
{
    dir = th_tmpdir();
    cat = th_catalog(yaml);
    h = th_view(cat, "h", 1);
    s = open_store(true);
}

static void teardown(void)
{
    store_close(s);
    catalog_unref(cat);
    th_rmrf(dir);
    free(dir);
}

TestSuite(history, .init = setup, .fini = teardown);

/* Row `id` of h as of at: returns found, with a and b (-1 for a null) and the entry's time. */
typedef struct pit {
    bool found;
    int64_t a, b, ts;
    store_status_t sa;
} pit_t;

static pit_t as_of(const catalog_view_t *v, int64_t id, int64_t at)
{
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    uint8_t key[STORE_MAX_KEY];
    catalog_value_t k = th_i64(id);
    int n = store_encode_key(v, &k, 1, key, sizeof key);
    cr_assert_gt(n, 0);
    store_row_t row;
    cr_assert_eq(store_history_row(r, v, key, (size_t)n, at, &row), 0);
    pit_t p = {.found = row.found, .a = -1, .b = -1, .ts = row.found ? row.event_ts_us : 0};
    int64_t *out[2] = {&p.a, &p.b};
    for (uint32_t f = 0; f < 2 && f < v->n_features && row.found; f++) {
        const uint8_t *wire;
        size_t len;
        store_status_t st = store_row_feature(&row, v, f, at, &wire, &len);
        if (f == 0)
            p.sa = st;
        if (len > 0) {
            catalog_value_t val;
            uint64_t scratch[16];
            cr_assert_eq(catalog_value_decode(wire, len, &val, scratch, sizeof scratch), 0);
            *out[f] = val.u.i64;
        }
    }
    store_read_end(r);
    store_reader_free(r);
    return p;
}

static void put2(int64_t id, int64_t a, int64_t b, int64_t ts, store_op_t op)
{
    catalog_value_t key = th_i64(id), va = th_i64(a), vb = th_i64(b);
    const catalog_value_t *keys[] = {&key}, *vals[] = {&va, &vb};
    uint32_t idx[] = {0, 1};
    store_batch_t bt = {.view = h,
                        .op = op,
                        .n_rows = 1,
                        .keys = keys,
                        .n_features = 2,
                        .feature_idx = idx,
                        .values = vals,
                        .event_ts_us = &ts};
    cr_assert_eq(store_apply(s, &bt, 1, 0, NULL), 0);
}

Test(history, as_of_takes_the_latest_entry_at_or_before_the_time)
{
    put2(1, 10, 11, T0 + 100 * SEC, STORE_OP_UPSERT);
    put2(1, 20, 21, T0 + 200 * SEC, STORE_OP_UPSERT);
    put2(1, 30, 31, T0 + 300 * SEC, STORE_OP_UPSERT);
    cr_assert_not(as_of(h, 1, T0 + 99 * SEC).found, "before the first entry: nothing");
    pit_t p = as_of(h, 1, T0 + 100 * SEC);
    cr_assert(p.found && p.a == 10 && p.b == 11 && p.ts == T0 + 100 * SEC, "the exact time");
    p = as_of(h, 1, T0 + 200 * SEC - 1);
    cr_assert(p.a == 10, "one microsecond before the next entry");
    p = as_of(h, 1, T0 + 250 * SEC);
    cr_assert(p.a == 20 && p.sa == STORE_STATUS_PRESENT);
    p = as_of(h, 1, T0 + 300 * SEC + 3600 * SEC);
    cr_assert(p.a == 30 && p.sa == STORE_STATUS_PRESENT, "exactly the TTL later: still fresh");
    p = as_of(h, 1, T0 + 300 * SEC + 3600 * SEC + 1);
    cr_assert(p.found && p.sa == STORE_STATUS_OUTSIDE_MAX_AGE, "beyond the TTL at that time");
    cr_assert_not(as_of(h, 2, T0 + 300 * SEC).found, "another entity has nothing");
    /* The online row is the latest, as always. */
    catalog_value_t v;
    cr_assert_eq(th_get(s, h, 1, 0, T0 + 300 * SEC, &v, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(v.u.i64, 30);
}

Test(history, an_entry_holds_the_whole_row_as_of_its_time)
{
    cr_assert_eq(th_put(s, h, 1, 0, th_i64(5), T0 + 10 * SEC), 0);
    cr_assert_eq(th_put(s, h, 1, 1, th_i64(6), T0 + 20 * SEC), 0);
    pit_t p = as_of(h, 1, T0 + 15 * SEC);
    cr_assert(p.a == 5 && p.b == -1, "b was not written yet");
    p = as_of(h, 1, T0 + 20 * SEC);
    cr_assert(p.a == 5 && p.b == 6, "a carried over from the earlier entry");
    /* A write at the same time merges into that entry (last write wins on a tie). */
    cr_assert_eq(th_put(s, h, 1, 0, th_i64(7), T0 + 20 * SEC), 0);
    p = as_of(h, 1, T0 + 20 * SEC);
    cr_assert(p.a == 7 && p.b == 6);
}

Test(history, a_delete_hides_older_entries_until_a_newer_write)
{
    put2(1, 1, 1, T0 + 10 * SEC, STORE_OP_UPSERT);
    cr_assert_eq(th_del(s, h, 1, T0 + 20 * SEC), 0);
    cr_assert(as_of(h, 1, T0 + 19 * SEC).found);
    cr_assert_not(as_of(h, 1, T0 + 20 * SEC).found, "deleted at its own time");
    cr_assert_not(as_of(h, 1, T0 + 25 * SEC).found);
    /* An upsert as old as the delete does not bring the row back, as online. */
    put2(1, 9, 9, T0 + 20 * SEC, STORE_OP_UPSERT);
    cr_assert_not(as_of(h, 1, T0 + 20 * SEC).found);
    put2(1, 3, 3, T0 + 30 * SEC, STORE_OP_UPSERT);
    pit_t p = as_of(h, 1, T0 + 30 * SEC);
    cr_assert(p.found && p.a == 3, "a newer write after the delete");
    p = as_of(h, 1, T0 + 10 * SEC);
    cr_assert(p.found && p.a == 1, "history before the delete is still there");
}

Test(history, history_only_rows_leave_the_online_row_alone)
{
    put2(1, 50, 50, T0 + 500 * SEC, STORE_OP_UPSERT);
    put2(1, 5, 5, T0 + 50 * SEC, STORE_OP_HISTORY); /* late data, a backfill */
    put2(2, 7, 7, T0 + 70 * SEC, STORE_OP_HISTORY);
    pit_t p = as_of(h, 1, T0 + 60 * SEC);
    cr_assert(p.found && p.a == 5);
    cr_assert(as_of(h, 1, T0 + 500 * SEC).a == 50);
    catalog_value_t v;
    cr_assert_eq(th_get(s, h, 1, 0, T0 + 500 * SEC, &v, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(v.u.i64, 50, "online keeps the newest");
    cr_assert_eq(th_get(s, h, 2, 0, T0 + 500 * SEC, &v, NULL), STORE_STATUS_NOT_FOUND,
                 "history only: nothing online");
    cr_assert(as_of(h, 2, T0 + 70 * SEC).found);
}

Test(history, refused_for_a_view_without_history_and_passed_over_without_history)
{
    const catalog_view_t *plain = th_view(cat, "plain", 1);
    catalog_value_t key = th_i64(1), va = th_i64(1);
    const catalog_value_t *keys[] = {&key}, *vals[] = {&va};
    int64_t ts = T0;
    store_batch_t bt = {.view = plain,
                        .op = STORE_OP_HISTORY,
                        .n_rows = 1,
                        .keys = keys,
                        .n_features = 1,
                        .feature_idx = &(uint32_t){0},
                        .values = vals,
                        .event_ts_us = &ts};
    store_apply_result_t res;
    cr_assert_eq(store_apply(s, &bt, 1, 0, &res), -EINVAL);
    cr_assert(strstr(res.error, "keeps no offline history") != NULL, "%s", res.error);

    /* A node without --history: no history database, history rows passed over, reads refused. */
    store_close(s);
    s = open_store(false);
    put2(1, 1, 1, T0, STORE_OP_HISTORY);
    put2(1, 2, 2, T0, STORE_OP_UPSERT);
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    uint8_t k[STORE_MAX_KEY];
    int n = store_encode_key(h, &key, 1, k, sizeof k);
    store_row_t row;
    cr_assert_eq(store_history_row(r, h, k, (size_t)n, T0, &row), -ENOTSUP);
    store_read_end(r);
    store_reader_free(r);
    /* Opened with history again: what was written meanwhile is not in it. */
    store_close(s);
    s = open_store(true);
    cr_assert_not(as_of(h, 1, T0).found);
}

Test(history, entities_of_several_join_keys_are_kept_apart)
{
    /* ("a", 1) and ("a", 10) and ("ab", 1): prefixes of one another in text, not as keys. */
    const catalog_view_t *pair = th_view(cat, "pair", 1);
    const char *cities[] = {"a", "a", "ab"};
    int64_t ids[] = {1, 10, 1}, xs[] = {100, 200, 300};
    for (int i = 0; i < 3; i++) {
        catalog_value_t k1 = th_i64(ids[i]), k2 = th_str(cities[i]), x = th_i64(xs[i]);
        const catalog_value_t *keys[] = {&k1, &k2}, *vals[] = {&x};
        int64_t t = T0 + i * SEC;
        store_batch_t b = {.view = pair,
                           .n_rows = 1,
                           .keys = keys,
                           .n_features = 1,
                           .feature_idx = &(uint32_t){0},
                           .values = vals,
                           .event_ts_us = &t};
        cr_assert_eq(store_apply(s, &b, 1, 0, NULL), 0);
    }
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    for (int i = 0; i < 3; i++) {
        catalog_value_t k[2] = {th_i64(ids[i]), th_str(cities[i])};
        uint8_t key[STORE_MAX_KEY];
        int n = store_encode_key(pair, k, 2, key, sizeof key);
        store_row_t row;
        cr_assert_eq(store_history_row(r, pair, key, (size_t)n, T0 + 10 * SEC, &row), 0);
        cr_assert(row.found);
        const uint8_t *wire;
        size_t len;
        cr_assert_eq(store_row_feature(&row, pair, 0, T0 + 10 * SEC, &wire, &len),
                     STORE_STATUS_PRESENT);
        catalog_value_t v;
        uint64_t scratch[8];
        cr_assert_eq(catalog_value_decode(wire, len, &v, scratch, sizeof scratch), 0);
        cr_assert_eq(v.u.i64, xs[i], "entity %d", i);
        /* Before its own write: nothing, whatever its neighbours wrote. */
        cr_assert_eq(store_history_row(r, pair, key, (size_t)n, T0 + i * SEC - 1, &row), 0);
        cr_assert_not(row.found, "entity %d", i);
    }
    store_read_end(r);
    store_reader_free(r);
}

Test(history, keys_of_views_with_history_are_8_bytes_shorter)
{
    char big[STORE_MAX_KEY];
    memset(big, 'x', sizeof big);
    const catalog_view_t *pair = th_view(cat, "pair", 1);
    uint8_t out[STORE_MAX_KEY];
    /* 8 (INT64) + 2 (length) + 493 = 503: the longest a view with history takes. */
    catalog_value_t k[2] = {th_i64(1),
                            {.type = CATALOG_DTYPE_STRING,
                             .u.bytes = {(const uint8_t *)big, STORE_MAX_HISTORY_KEY - 10}}};
    cr_assert_eq(store_encode_key(pair, k, 2, out, sizeof out), STORE_MAX_HISTORY_KEY);
    catalog_value_t x = th_i64(1);
    const catalog_value_t *keys[] = {&k[0], &k[1]}, *vals[] = {&x};
    int64_t t = T0;
    store_batch_t b = {.view = pair,
                       .n_rows = 1,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = &(uint32_t){0},
                       .values = vals,
                       .event_ts_us = &t};
    cr_assert_eq(store_apply(s, &b, 1, 0, NULL), 0);
    k[1].u.bytes.len++;
    store_apply_result_t res;
    cr_assert_eq(store_apply(s, &b, 1, 0, &res), -EINVAL);
    cr_assert(strstr(res.error, "at most 503") != NULL, "%s", res.error);
    /* A delete of such a key (one written before the view kept history) still goes through. */
    store_batch_t del = {
        .view = pair, .op = STORE_OP_DELETE, .n_rows = 1, .keys = keys, .event_ts_us = &t};
    cr_assert_eq(store_apply(s, &del, 1, 0, &res), 0, "%s", res.error);
    /* And decode back. */
    k[1].u.bytes.len--;
    cr_assert_eq(store_encode_key(pair, k, 2, out, sizeof out), STORE_MAX_HISTORY_KEY);
    catalog_value_t back[2];
    cr_assert_eq(store_decode_key(pair, out, STORE_MAX_HISTORY_KEY, back), 0);
    cr_assert_eq(back[0].u.i64, 1);
    cr_assert_eq(back[1].u.bytes.len, STORE_MAX_HISTORY_KEY - 10);
    cr_assert_eq(store_decode_key(pair, out, STORE_MAX_HISTORY_KEY - 1, back), -EINVAL);
}

/* ------------------------------------------------------------------------------------------ */
/* Against a brute-force reference on random data                                             */

#define N_ENT 40
#define N_OPS 3000

typedef struct op {
    int64_t id, ts, a, b;
    int kind; /* 0 upsert a, 1 upsert b, 2 upsert both, 3 delete */
} op_t;

/* The row of id as of at, replaying every op of id with ts <= at in apply order with the store's
 * rules: last write wins by time, ties to the later write, an upsert must be newer than a
 * delete. */
static pit_t reference(const op_t *ops, size_t n, int64_t id, int64_t at, int64_t ttl)
{
    pit_t p = {.a = -1, .b = -1};
    bool live = false, deleted = false;
    int64_t ts = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        const op_t *o = &ops[i];
        if (o->id != id || o->ts > at)
            continue;
        if ((live || deleted) && (o->ts < ts || (deleted && o->kind != 3 && o->ts == ts)))
            continue;
        ts = o->ts;
        if (o->kind == 3) {
            live = false;
            deleted = true;
            p.a = p.b = -1;
            continue;
        }
        if (!live)
            p.a = p.b = -1;
        live = true;
        deleted = false;
        if (o->kind == 0 || o->kind == 2)
            p.a = o->a;
        if (o->kind == 1 || o->kind == 2)
            p.b = o->b;
    }
    p.found = live;
    p.ts = live ? ts : 0;
    if (!live)
        p.a = p.b = -1;
    p.sa = live ? (ts < at - ttl ? STORE_STATUS_OUTSIDE_MAX_AGE
                   : p.a >= 0    ? STORE_STATUS_PRESENT
                                 : STORE_STATUS_NULL_VALUE)
                : STORE_STATUS_NOT_FOUND;
    return p;
}

typedef struct scan_seen {
    int64_t ids[N_ENT + 1];
    int64_t a[N_ENT + 1];
    size_t n;
    size_t stop_after;
} scan_seen_t;

static int on_row(void *arg, const uint8_t *key, size_t key_len, const store_row_t *row)
{
    scan_seen_t *ss = arg;
    if (row == NULL)
        return 0; /* passed over */
    catalog_value_t id;
    cr_assert_eq(store_decode_key(h, key, key_len, &id), 0);
    const uint8_t *wire;
    size_t len;
    store_row_feature(row, h, 0, row->event_ts_us, &wire, &len);
    catalog_value_t val = {0};
    uint64_t scratch[16];
    if (len > 0)
        cr_assert_eq(catalog_value_decode(wire, len, &val, scratch, sizeof scratch), 0);
    ss->ids[ss->n] = id.u.i64;
    ss->a[ss->n++] = len > 0 ? val.u.i64 : -1;
    return ss->n == ss->stop_after ? 1 : 0;
}

Test(history, point_in_time_reads_and_scans_agree_with_a_brute_force_reference)
{
    srand(17);
    static op_t ops[N_OPS];
    int64_t clock[N_ENT] = {0};
    for (size_t i = 0; i < N_OPS; i++) {
        op_t *o = &ops[i];
        o->id = rand() % N_ENT;
        /* Forward in time per entity, with ties; late rows for a quarter of the entities. */
        int r = rand() % 10;
        clock[o->id] += r == 0 ? 0 : (rand() % 900) * SEC;
        o->ts = T0 + (r == 1 && o->id % 4 == 0 && clock[o->id] > 0 ? rand() % (clock[o->id] + 1)
                                                                   : clock[o->id]);
        o->kind = rand() % 9 == 0 ? 3 : rand() % 3;
        o->a = rand() % 1000;
        o->b = rand() % 1000;
        catalog_value_t key = th_i64(o->id), va = th_i64(o->a), vb = th_i64(o->b);
        const catalog_value_t *keys[] = {&key};
        const catalog_value_t *vals2[] = {&va, &vb};
        const catalog_value_t *valsb[] = {&vb};
        uint32_t idx2[] = {0, 1}, idxb[] = {1};
        store_batch_t bt = {.view = h,
                            .op = o->kind == 3 ? STORE_OP_DELETE : STORE_OP_UPSERT,
                            .n_rows = 1,
                            .keys = keys,
                            .n_features = o->kind == 2 ? 2 : 1,
                            .feature_idx = o->kind == 1 ? idxb : idx2,
                            .values = o->kind == 1 ? valsb : vals2,
                            .event_ts_us = &o->ts};
        cr_assert_eq(store_apply(s, &bt, 1, 0, NULL), 0);
    }
    /* Late rows make an entry's carried-over values those of the entry before it when it was
     * written (documented); compare only where no late row of that entity came before. */
    int64_t ttl = 3600 * SEC;
    size_t checked = 0;
    for (int id = 0; id < N_ENT; id++) {
        bool late = false;
        int64_t hi = INT64_MIN;
        for (size_t i = 0; i < N_OPS; i++) {
            if (ops[i].id != id)
                continue;
            if (ops[i].ts < hi)
                late = true;
            hi = ops[i].ts > hi ? ops[i].ts : hi;
        }
        if (late)
            continue;
        for (int q = 0; q < 60; q++) {
            int64_t at = T0 + (rand() % (clock[id] / SEC + 4000)) * SEC - 1000 * SEC;
            pit_t want = reference(ops, N_OPS, id, at, ttl);
            pit_t got = as_of(h, id, at);
            cr_assert_eq(got.found, want.found, "id %d at %lld", id, (long long)at);
            if (!want.found)
                continue;
            cr_assert_eq(got.ts, want.ts, "id %d at %lld", id, (long long)at);
            cr_assert_eq(got.a, want.sa == STORE_STATUS_NULL_VALUE ? -1 : want.a, "id %d", id);
            cr_assert_eq(got.b, want.b, "id %d", id);
            cr_assert_eq(got.sa, want.sa, "id %d at %lld", id, (long long)at);
            checked++;
        }
    }
    cr_assert_gt(checked, 200, "too few comparisons: %zu", checked);

    /* Scans: every entity found live within the TTL, in key order, in pages of 7. */
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    int64_t at = T0 + 20000 * SEC;
    scan_seen_t all = {0};
    uint8_t after[STORE_MAX_KEY];
    size_t after_len = 0;
    for (;;) {
        scan_seen_t page = {.stop_after = 7};
        cr_assert_eq(store_read_begin(r), 0);
        int rc = store_history_scan(r, h, at, after, after_len, on_row, &page);
        store_read_end(r);
        cr_assert(rc == 0 || rc == 1);
        for (size_t i = 0; i < page.n; i++) {
            all.ids[all.n] = page.ids[i];
            all.a[all.n++] = page.a[i];
        }
        if (rc == 0)
            break;
        catalog_value_t k = th_i64(page.ids[page.n - 1]);
        after_len = (size_t)store_encode_key(h, &k, 1, after, sizeof after);
    }
    store_reader_free(r);
    size_t want_n = 0;
    for (int id = 0; id < N_ENT; id++) {
        pit_t want = reference(ops, N_OPS, id, at, ttl);
        bool late = false;
        int64_t hi = INT64_MIN;
        for (size_t i = 0; i < N_OPS; i++) {
            if (ops[i].id == id) {
                late |= ops[i].ts < hi;
                hi = ops[i].ts > hi ? ops[i].ts : hi;
            }
        }
        bool listed = false;
        for (size_t i = 0; i < all.n; i++) {
            if (all.ids[i] == id) {
                listed = true;
                if (!late)
                    cr_assert_eq(all.a[i], want.a, "id %d", id);
            }
        }
        bool want_listed = want.found && want.sa != STORE_STATUS_OUTSIDE_MAX_AGE;
        if (!late)
            cr_assert_eq(listed, want_listed, "id %d listed %d", id, listed);
        want_n += listed;
    }
    for (size_t i = 1; i < all.n; i++)
        cr_assert_lt(all.ids[i - 1], all.ids[i], "key order, each entity once");
    cr_assert_eq(all.n, want_n);
}

Test(history, gc_drops_entries_past_the_retention_but_the_row_as_of_the_cutoff)
{
    int64_t now = T0 + 100 * 86400 * SEC, day = 86400 * SEC;
    /* 1: written 40 days ago, then 20: the older entry is still the row as of days 30..20
     * ago, so it stays. 3: 50 and 40 days ago: the older one goes (superseded before the
     * cutoff). 2: a delete 31 days ago, its last entry: it goes. */
    put2(1, 1, 1, now - 40 * day, STORE_OP_HISTORY);
    put2(1, 2, 2, now - 20 * day, STORE_OP_HISTORY);
    put2(3, 5, 5, now - 50 * day, STORE_OP_HISTORY);
    put2(3, 6, 6, now - 40 * day, STORE_OP_HISTORY);
    cr_assert_eq(th_del(s, h, 2, now - 31 * day), 0);
    size_t deleted = 0;
    cr_assert_eq(store_gc(s, now, &deleted), 0);
    /* 3's older entry, 2's history tombstone, 2's online tombstone (7 days). */
    cr_assert_eq(deleted, 3, "deleted %zu", deleted);
    cr_assert_eq(as_of(h, 1, now - 25 * day).a, 1, "kept: the row as of the retention's start");
    cr_assert_eq(as_of(h, 3, now - 35 * day).a, 6);
    cr_assert_not(as_of(h, 3, now - 45 * day).found, "superseded before the cutoff: gone");
    cr_assert_eq(store_gc(s, now, &deleted), 0);
    cr_assert_eq(deleted, 0, "a second sweep finds nothing more");
}

Test(history, materialize_loads_the_latest_rows_of_a_range_into_the_online_store)
{
    /* History only: nothing online yet. 1: two entries in the range (the later one wins); 2:
     * its latest entry by the end is before the range; 3: deleted by the end; 4: an entry after
     * the end only. 1100 more entities make more than one page. */
    put2(1, 1, 1, T0 + 10 * SEC, STORE_OP_HISTORY);
    put2(1, 2, 2, T0 + 20 * SEC, STORE_OP_HISTORY);
    put2(2, 3, 3, T0 - 100 * SEC, STORE_OP_HISTORY);
    put2(3, 4, 4, T0 + 10 * SEC, STORE_OP_HISTORY);
    put2(4, 5, 5, T0 + 100 * SEC, STORE_OP_HISTORY);
    for (int64_t id = 100; id < 1200; id++)
        put2(id, id, id, T0 + 15 * SEC, STORE_OP_HISTORY);
    cr_assert_eq(th_del(s, h, 3, T0 + 15 * SEC), 0); /* online and history: a tombstone */
    size_t written = 0;
    cr_assert_eq(store_materialize(s, h, T0, T0 + 30 * SEC, &written), 0);
    cr_assert_eq(written, 1 + 1100, "written %zu", written);
    catalog_value_t v;
    int64_t ts;
    cr_assert_eq(th_get(s, h, 1, 1, T0 + 30 * SEC, &v, &ts), STORE_STATUS_PRESENT);
    cr_assert(v.u.i64 == 2 && ts == T0 + 20 * SEC);
    cr_assert_eq(th_get(s, h, 2, 0, T0 + 30 * SEC, &v, NULL), STORE_STATUS_NOT_FOUND);
    cr_assert_eq(th_get(s, h, 3, 0, T0 + 30 * SEC, &v, NULL), STORE_STATUS_NOT_FOUND);
    cr_assert_eq(th_get(s, h, 4, 0, T0 + 30 * SEC, &v, NULL), STORE_STATUS_NOT_FOUND);
    cr_assert_eq(th_get(s, h, 1199, 0, T0 + 30 * SEC, &v, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(v.u.i64, 1199);
    /* Again: the same rows are stale now (last write wins, a tie to the later write: written
     * again, with the same content). An online row newer than the history stays. */
    put2(1, 9, 9, T0 + 25 * SEC, STORE_OP_UPSERT);
    cr_assert_eq(store_materialize(s, h, T0, T0 + 22 * SEC, &written), 0);
    cr_assert_eq(th_get(s, h, 1, 0, T0 + 30 * SEC, &v, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(v.u.i64, 9, "the newer online row stays");
    const catalog_view_t *plain = th_view(cat, "plain", 1);
    cr_assert_eq(store_materialize(s, plain, T0, T0, &written), -EINVAL);
}

Test(history, the_data_directory_remembers_the_servers_choice)
{
    store_close(s);
    store_options_t o = {.dir = dir, .sync = STORE_SYNC_NONE}; /* AUTO */
    cr_assert_eq(store_open(&o, &s), 0);
    cr_assert(store_keeps_history(s), "ON was recorded by the setup's open");
    store_close(s);
    o.history = STORE_HISTORY_OFF;
    cr_assert_eq(store_open(&o, &s), 0);
    cr_assert_not(store_keeps_history(s));
    store_close(s);
    o.history = STORE_HISTORY_AUTO;
    cr_assert_eq(store_open(&o, &s), 0);
    cr_assert_not(store_keeps_history(s), "OFF was recorded");
}

static int count_scan(void *arg, const uint8_t *key, size_t key_len, const store_row_t *row)
{
    (void)key;
    (void)key_len;
    (void)row;
    (*(int *)arg)++;
    return 0;
}

/* What the history reads refuse, and what a key too long to have a history gets: none. */
Test(history, a_read_with_a_key_of_no_length_or_too_long_is_refused_or_finds_nothing)
{
    put2(1, 10, 100, T0, STORE_OP_UPSERT);
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    static uint8_t key[STORE_MAX_KEY + 1];
    store_row_t row;
    cr_assert_eq(store_history_row(r, h, key, 0, T0, &row), -EINVAL);
    cr_assert_eq(store_history_row(r, h, key, STORE_MAX_KEY + 1, T0, &row), -EINVAL);
    /* Past the history's key limit, within the online one: no history, not an error. */
    cr_assert_eq(store_history_row(r, h, key, STORE_MAX_HISTORY_KEY + 1, T0, &row), 0);
    cr_assert_not(row.found);
    int n = 0;
    cr_assert_eq(store_history_scan(r, h, T0, key, STORE_MAX_HISTORY_KEY + 1, count_scan, &n),
                 -EINVAL);
    cr_assert_eq(n, 0);
    /* A page after entity 1 (its own key): nothing is after it. */
    catalog_value_t k = th_i64(1);
    int len = store_encode_key(h, &k, 1, key, sizeof key);
    cr_assert_eq(store_history_scan(r, h, T0, key, (size_t)len, count_scan, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(store_history_scan(r, h, T0, NULL, 0, count_scan, &n), 0);
    cr_assert_eq(n, 1);
    /* A view that keeps no history has none to read; outside a read, nothing is read. */
    cr_assert_eq(store_history_row(r, th_view(cat, "plain", 1), key, (size_t)len, T0, &row),
                 -ENOENT);
    store_read_end(r);
    cr_assert_eq(store_history_row(r, h, key, (size_t)len, T0, &row), -EINVAL);
    store_reader_free(r);
}
