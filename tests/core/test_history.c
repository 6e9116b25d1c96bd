/* tests/core/test_history.c - offline serving's load_batch (core/history.c): a view's rows as
 * of a time, in entity-key order, paged with an opaque token. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"
#include "tests/core/fixture.h"
#include "tests/storage/helpers.h"

static const char yaml[] = "project: p\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                           "  - {name: user, join_keys: [{name: user_id, type: STRING}]}\n"
                           "feature_views:\n"
                           "  - name: hv\n"
                           "    entities: [driver]\n"
                           "    ttl: 1h\n"
                           "    offline: {retention: 30d}\n"
                           "    features: [{name: a, dtype: INT64}, {name: b, dtype: STRING}]\n"
                           "  - name: users\n"
                           "    entities: [user]\n"
                           "    offline: {retention: 30d}\n"
                           "    features: [{name: n, dtype: INT64}]\n"
                           "  - name: plain\n"
                           "    entities: [driver]\n"
                           "    features: [{name: p, dtype: INT64}]\n"
                           "on_demand_feature_views:\n"
                           "  - name: od\n"
                           "    sources: [hv]\n"
                           "    features: [{name: d, dtype: INT64, expression: 'hv.a * 2'}]\n";

static fx_t f;
static int64_t t0; /* when the rows were written */

static void open_with(size_t max_entities, size_t max_response_bytes, store_history_t history)
{
    fx_init(&f, yaml);
    core_options_t o;
    fx_options(&f, &o);
    o.history = history;
    o.limits.max_entities = max_entities;
    o.limits.max_response_bytes = max_response_bytes;
    int rc = fx_open(&f, &o);
    cr_assert_eq(rc, 0, "core_open: %d", rc);
    fx_begin(&f);
}

/* Drivers 1..5 with a = 10 * id, written a minute ago. */
static void setup(void)
{
    open_with(3, CORE_DEFAULT_MAX_RESPONSE_BYTES, STORE_HISTORY_ON);
    t0 = store_now_us() - 60 * 1000000LL;
    for (int64_t id = 1; id <= 5; id++)
        fx_put(&f, "hv", id, 0, th_i64(10 * id), t0);
}

static void teardown(void)
{
    fx_close(&f);
}

TestSuite(load_batch, .init = setup, .fini = teardown);

static int64_t cell_i64(const core_cell_t *c)
{
    cr_assert_eq(c->status, STORE_STATUS_PRESENT, "status %u", c->status);
    catalog_value_t v;
    uint8_t scratch[64];
    cr_assert_eq(catalog_value_decode(c->wire, c->len, &v, scratch, sizeof scratch), 0);
    cr_assert_eq(v.type, CATALOG_DTYPE_INT64);
    return v.u.i64;
}

Test(load_batch, a_view_without_rows_or_history_is_refused_by_name)
{
    core_batch_page_t page;
    const catalog_view_t *od = fx_view(&f, "od");
    cr_assert_eq(core_load_batch(&f.ctx, od, store_now_us(), 0, NULL, 0, &page), -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "feature view 'od' is on-demand: it has no rows to load, only "
                                "features computed at read time");
    cr_assert_eq(core_load_batch(&f.ctx, fx_view(&f, "plain"), store_now_us(), 0, NULL, 0, &page),
                 -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "feature view 'plain' keeps no offline history (give it 'offline: "
                                "{retention: ...}' in the catalog)");
    cr_assert_eq(page.n_rows, 0);
    cr_assert_null(page.cells);
}

Test(load_batch, a_limit_over_max_entities_is_refused)
{
    core_batch_page_t page;
    cr_assert_eq(core_load_batch(&f.ctx, fx_view(&f, "hv"), store_now_us(), 4, NULL, 0, &page),
                 -E2BIG);
    cr_assert_str_eq(f.ctx.msg, "limit 4 is over the limit of 3 rows (--max-entities)");
}

/* No limit: 1000, or --max-entities when that is less (3 here); pages follow their tokens to
 * the end, in key order, and the last page has no token. */
Test(load_batch, pages_follow_their_tokens_to_the_end_in_key_order)
{
    const catalog_view_t *hv = fx_view(&f, "hv");
    core_batch_page_t page;
    cr_assert_eq(core_load_batch(&f.ctx, hv, store_now_us(), 0, NULL, 0, &page), 0, "%s",
                 f.ctx.msg);
    cr_assert_eq(page.n_rows, 3);
    cr_assert_eq(page.keys.n_cols, 1);
    cr_assert_str_eq(page.keys.names[0], "driver_id");
    for (size_t r = 0; r < 3; r++) {
        cr_assert_eq(page.keys.cols[0][r].u.i64, (int64_t)r + 1);
        cr_assert_eq(cell_i64(&page.cells[r]), 10 * ((int64_t)r + 1), "a of row %zu", r);
        cr_assert_eq(page.cells[r].event_ts_us, t0);
        /* b was never written: null */
        cr_assert_eq(page.cells[3 + r].status, STORE_STATUS_NULL_VALUE, "b of row %zu", r);
    }
    cr_assert_gt(page.next_len, 4, "a token: the version, then a key");
    uint8_t tok[64];
    memcpy(tok, page.next, page.next_len);
    size_t tok_len = page.next_len;
    core_read_end(&f.ctx);

    /* the rest: two rows, short of the limit, with b's column right after a's */
    cr_assert_eq(core_load_batch(&f.ctx, hv, store_now_us(), 3, tok, tok_len, &page), 0, "%s",
                 f.ctx.msg);
    cr_assert_eq(page.n_rows, 2);
    cr_assert_eq(page.keys.cols[0][0].u.i64, 4);
    cr_assert_eq(page.keys.cols[0][1].u.i64, 5);
    cr_assert_eq(cell_i64(&page.cells[0]), 40);
    cr_assert_eq(cell_i64(&page.cells[1]), 50);
    cr_assert_eq(page.cells[2].status, STORE_STATUS_NULL_VALUE);
    cr_assert_eq(page.cells[3].status, STORE_STATUS_NULL_VALUE);
    cr_assert_eq(page.next_len, 0, "the last page has no token");
    cr_assert_null(page.next);
}

Test(load_batch, a_time_before_every_row_loads_nothing)
{
    core_batch_page_t page;
    cr_assert_eq(core_load_batch(&f.ctx, fx_view(&f, "hv"), t0 - 1, 3, NULL, 0, &page), 0, "%s",
                 f.ctx.msg);
    cr_assert_eq(page.n_rows, 0);
    cr_assert_eq(page.keys.n_rows, 0);
    cr_assert_eq(page.next_len, 0);
}

Test(load_batch, malformed_tokens_are_refused)
{
    const catalog_view_t *hv = fx_view(&f, "hv");
    core_batch_page_t page;
    /* the version alone, no key */
    const uint8_t short_tok[4] = {0, 0, 0, 1};
    cr_assert_eq(core_load_batch(&f.ctx, hv, store_now_us(), 3, short_tok, 4, &page), -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "bad page token");
    /* longer than any key */
    static uint8_t long_tok[4 + STORE_MAX_HISTORY_KEY + 1];
    long_tok[3] = 1;
    cr_assert_eq(core_load_batch(&f.ctx, hv, store_now_us(), 3, long_tok, sizeof long_tok, &page),
                 -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "bad page token");
    /* the right version, then bytes that are no INT64 key */
    const uint8_t junk[7] = {0, 0, 0, 1, 0xff, 0xfe, 0xfd};
    cr_assert_eq(core_load_batch(&f.ctx, hv, store_now_us(), 3, junk, sizeof junk, &page), -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "bad page token: not one of feature view 'hv'");
}

/* A token names the version it pages through: "hv" may mean another version by now. */
Test(load_batch, a_token_of_another_version_is_stale)
{
    const catalog_view_t *hv = fx_view(&f, "hv");
    core_batch_page_t page;
    cr_assert_eq(core_load_batch(&f.ctx, hv, store_now_us(), 1, NULL, 0, &page), 0, "%s",
                 f.ctx.msg);
    cr_assert_gt(page.next_len, 4);
    uint8_t tok[64];
    memcpy(tok, page.next, page.next_len);
    cr_assert_eq(tok[3], 1, "version 1, big-endian");
    tok[3] = 2;
    core_read_end(&f.ctx);
    cr_assert_eq(core_load_batch(&f.ctx, hv, store_now_us(), 1, tok, page.next_len, &page),
                 -ESTALE);
    cr_assert_str_eq(f.ctx.msg, "the page token pages through 'hv@v2', and the request now means "
                                "v1: start again, or name the version");
}

/* String keys point into the map while it is read: a page copies them, so they outlive the
 * store read. */
Test(load_batch, string_keys_are_copied_out_of_the_store)
{
    const catalog_view_t *users = fx_view(&f, "users");
    const char *names[3] = {"carol", "alice", "bob"};
    for (int i = 0; i < 3; i++) {
        catalog_value_t key = th_str(names[i]);
        const catalog_value_t *keys[1] = {&key};
        catalog_value_t val = th_i64(i);
        const catalog_value_t *vals[1] = {&val};
        uint32_t idx[1] = {0};
        store_batch_t b = {.view = users,
                           .op = STORE_OP_UPSERT,
                           .n_rows = 1,
                           .keys = keys,
                           .n_features = 1,
                           .feature_idx = idx,
                           .values = vals,
                           .event_ts_us = &t0};
        store_apply_result_t res;
        cr_assert_eq(store_apply(core_store(f.core), &b, 1, 0, &res), 0, "%s", res.error);
    }
    core_batch_page_t page;
    cr_assert_eq(core_load_batch(&f.ctx, users, store_now_us(), 3, NULL, 0, &page), 0, "%s",
                 f.ctx.msg);
    core_read_end(&f.ctx);
    cr_assert_eq(page.n_rows, 3);
    cr_assert_str_eq(page.keys.names[0], "user_id");
    /* whatever the key order, every name once, with its own value */
    int64_t seen = 0;
    for (size_t r = 0; r < 3; r++) {
        const catalog_value_t *k = &page.keys.cols[0][r];
        cr_assert_eq(k->type, CATALOG_DTYPE_STRING);
        int which = -1;
        for (int i = 0; i < 3; i++) {
            if (k->u.bytes.len == strlen(names[i]) &&
                memcmp(k->u.bytes.data, names[i], k->u.bytes.len) == 0)
                which = i;
        }
        cr_assert_geq(which, 0, "row %zu: %.*s", r, (int)k->u.bytes.len, k->u.bytes.data);
        cr_assert_eq(cell_i64(&page.cells[r]), which);
        seen |= 1 << which;
    }
    cr_assert_eq(seen, 7);
}

TestSuite(load_batch_limits, .fini = teardown);

Test(load_batch_limits, a_page_over_max_response_bytes_is_refused)
{
    open_with(100, 20, STORE_HISTORY_ON);
    fx_put(&f, "hv", 1, 0, th_i64(10), store_now_us());
    core_batch_page_t page;
    cr_assert_eq(core_load_batch(&f.ctx, fx_view(&f, "hv"), store_now_us(), 10, NULL, 0, &page),
                 -EMSGSIZE);
    cr_assert_str_eq(f.ctx.msg, "the page of 1 rows is over --max-response-bytes 20: ask for "
                                "fewer (limit)");
}

Test(load_batch_limits, a_node_without_history_says_so)
{
    open_with(100, CORE_DEFAULT_MAX_RESPONSE_BYTES, STORE_HISTORY_OFF);
    core_batch_page_t page;
    cr_assert_eq(core_load_batch(&f.ctx, fx_view(&f, "hv"), store_now_us(), 10, NULL, 0, &page),
                 -ENOTSUP);
    cr_assert_str_eq(f.ctx.msg, "this node keeps no history (serve --history)");
}

/* A view of a catalog this store never applied has no history database here. */
Test(load_batch_limits, a_view_not_applied_here_has_no_history)
{
    open_with(100, CORE_DEFAULT_MAX_RESPONSE_BYTES, STORE_HISTORY_ON);
    catalog_t *other = th_catalog("project: p\n"
                                  "entities: [{name: driver, join_keys: [{name: driver_id, "
                                  "type: INT64}]}]\n"
                                  "feature_views:\n"
                                  "  - {name: elsewhere, version: 3, entities: [driver],\n"
                                  "     offline: {retention: 1d}, features: [{name: z, dtype: "
                                  "INT64}]}\n");
    core_batch_page_t page;
    int rc =
        core_load_batch(&f.ctx, th_view(other, "elsewhere", 3), store_now_us(), 10, NULL, 0, &page);
    cr_assert_eq(rc, -EINVAL);
    cr_assert_str_eq(
        f.ctx.msg, "feature view 'elsewhere@v3' has no history here (its catalog is not applied)");
    core_read_end(&f.ctx);
    catalog_unref(other);
}
