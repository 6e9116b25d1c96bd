/* tests/storage/helpers.c - shared fixtures of the storage tests. */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/storage/helpers.h"
#include "tests/tmpdir.h"

const char th_yaml[] = "project: p\n"
                       "entities:\n"
                       "  - name: driver\n"
                       "    join_keys: [{name: driver_id, type: INT64}]\n"
                       "  - name: city\n"
                       "    join_keys: [{name: city, type: STRING}]\n"
                       "feature_views:\n"
                       "  - name: fv\n"
                       "    version: 1\n"
                       "    entities: [driver]\n"
                       "    ttl: 1h\n"
                       "    features:\n"
                       "      - {name: conv_rate, dtype: FLOAT, validation: {min: 0, max: 1}}\n"
                       "      - {name: trips, dtype: INT64}\n"
                       "      - {name: label, dtype: STRING}\n"
                       "      - {name: hist, dtype: INT64_LIST}\n"
                       "  - name: stats\n"
                       "    version: 1\n"
                       "    entities: [driver, city]\n"
                       "    ttl: 0\n"
                       "    features:\n"
                       "      - {name: avg, dtype: DOUBLE}\n"
                       "  - name: stats\n"
                       "    version: 2\n"
                       "    entities: [driver, city]\n"
                       "    ttl: 0\n"
                       "    features:\n"
                       "      - {name: avg, dtype: DOUBLE}\n"
                       "      - {name: n, dtype: INT32}\n"
                       "  - name: global\n"
                       "    version: 1\n"
                       "    entities: []\n"
                       "    ttl: 0\n"
                       "    features:\n"
                       "      - {name: total, dtype: INT64}\n";

char *th_tmpdir(void)
{
    char path[4096];
    cr_assert_not_null(test_tmpdir("storage", path, sizeof path), "mkdtemp: %s", strerror(errno));
    char *d = strdup(path);
    cr_assert_not_null(d);
    return d;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void th_rmrf(const char *path)
{
    if (path != NULL)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

catalog_t *th_catalog(const char *yaml)
{
    catalog_t *c = NULL;
    catalog_errors_t errs = {0};
    int rc = catalog_load_string(yaml, strlen(yaml), "test.yaml", &c, &errs);
    if (rc != 0) {
        for (size_t i = 0; i < errs.count; i++)
            cr_log_error("%d:%d %s: %s", errs.items[i].line, errs.items[i].column,
                         errs.items[i].key, errs.items[i].message);
    }
    catalog_errors_clear(&errs);
    cr_assert_eq(rc, 0, "catalog_load_string: %d", rc);
    return c;
}

const catalog_view_t *th_view(const catalog_t *c, const char *name, uint32_t version)
{
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(c, name, version, &v), 0, "no view %s@v%u", name, version);
    return v;
}

store_t *th_open(const char *dir, size_t map_size, store_sync_t sync)
{
    store_options_t o = {.dir = dir, .map_size = map_size, .sync = sync};
    store_t *s = NULL;
    int rc = store_open(&o, &s);
    cr_assert_eq(rc, 0, "store_open: %d", rc);
    return s;
}

store_t *th_open_applied(const char *dir, const catalog_t *c)
{
    store_t *s = th_open(dir, 0, STORE_SYNC_NONE);
    catalog_plan_t plan;
    int rc = store_apply_catalog(s, c, &plan);
    catalog_plan_clear(&plan);
    cr_assert_eq(rc, 0, "store_apply_catalog: %d", rc);
    return s;
}

store_t *th_open_history_applied(const char *dir, const catalog_t *c)
{
    store_options_t o = {.dir = dir, .sync = STORE_SYNC_NONE, .history = STORE_HISTORY_ON};
    store_t *s = NULL;
    int rc = store_open(&o, &s);
    cr_assert_eq(rc, 0, "store_open: %d", rc);
    catalog_plan_t plan;
    rc = store_apply_catalog(s, c, &plan);
    catalog_plan_clear(&plan);
    cr_assert_eq(rc, 0, "store_apply_catalog: %d", rc);
    return s;
}

catalog_value_t th_i64(int64_t x)
{
    return (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = x};
}

catalog_value_t th_f32(float x)
{
    return (catalog_value_t){.type = CATALOG_DTYPE_FLOAT, .u.f32 = x};
}

catalog_value_t th_str(const char *s)
{
    return (catalog_value_t){.type = CATALOG_DTYPE_STRING,
                             .u.bytes = {(const uint8_t *)s, strlen(s)}};
}

catalog_value_t th_null(void)
{
    return (catalog_value_t){.type = CATALOG_DTYPE_NULL};
}

int th_put(store_t *s, const catalog_view_t *v, int64_t id, uint32_t feature, catalog_value_t val,
           int64_t event_ts_us)
{
    return th_put_at(s, v, id, feature, val, event_ts_us, 0);
}

int th_put_at(store_t *s, const catalog_view_t *v, int64_t id, uint32_t feature,
              catalog_value_t val, int64_t event_ts_us, uint64_t pos)
{
    catalog_value_t key = th_i64(id);
    const catalog_value_t *keys[] = {&key};
    const catalog_value_t *vals[] = {&val};
    store_batch_t b = {.view = v,
                       .n_rows = 1,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = &feature,
                       .values = vals,
                       .event_ts_us = &event_ts_us};
    store_apply_result_t res;
    return store_apply(s, &b, 1, pos, &res);
}

int th_del(store_t *s, const catalog_view_t *v, int64_t id, int64_t event_ts_us)
{
    return th_del_at(s, v, id, event_ts_us, 0);
}

int th_del_at(store_t *s, const catalog_view_t *v, int64_t id, int64_t event_ts_us, uint64_t pos)
{
    catalog_value_t key = th_i64(id);
    const catalog_value_t *keys[] = {&key};
    store_batch_t b = {
        .view = v, .op = STORE_OP_DELETE, .n_rows = 1, .keys = keys, .event_ts_us = &event_ts_us};
    return store_apply(s, &b, 1, pos, NULL);
}

store_status_t th_get(store_t *s, const catalog_view_t *v, int64_t id, uint32_t feature,
                      int64_t now_us, catalog_value_t *out, int64_t *ts)
{
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    uint8_t key[STORE_MAX_KEY];
    catalog_value_t k = th_i64(id);
    int n = store_encode_key(v, &k, 1, key, sizeof key);
    cr_assert_gt(n, 0);
    store_row_t row;
    cr_assert_eq(store_read_row(r, v, key, (size_t)n, &row), 0);
    const uint8_t *wire;
    size_t len;
    store_status_t st = store_row_feature(&row, v, feature, now_us, &wire, &len);
    memset(out, 0, sizeof *out);
    if (len > 0) {
        static _Thread_local uint64_t scratch[1024];
        cr_assert_eq(catalog_value_decode(wire, len, out, scratch, sizeof scratch), 0);
        /* Bytes point into the map, valid only until store_read_end(): keep a copy. */
        static _Thread_local uint8_t copy[4096];
        if ((out->type == CATALOG_DTYPE_STRING || out->type == CATALOG_DTYPE_BYTES) &&
            out->u.bytes.len <= sizeof copy) {
            memcpy(copy, out->u.bytes.data, out->u.bytes.len);
            out->u.bytes.data = copy;
        }
    }
    if (ts != NULL)
        *ts = row.found ? row.event_ts_us : 0;
    store_read_end(r);
    store_reader_free(r);
    return st;
}

size_t th_rows(store_t *s, const catalog_view_t *v)
{
    size_t n = 0;
    int rc = store_count_rows(s, v, &n);
    cr_assert_eq(rc, 0, "store_count_rows: %d", rc);
    return n;
}

void th_fixture_open(char **dir, catalog_t **cat, store_t **s, const catalog_view_t **fv)
{
    *dir = th_tmpdir();
    *cat = th_catalog(th_yaml);
    if (s != NULL)
        *s = th_open_applied(*dir, *cat);
    *fv = th_view(*cat, "fv", 1);
}

void th_fixture_close(char *dir, catalog_t *cat, store_t *s)
{
    if (s != NULL)
        store_close(s);
    catalog_unref(cat);
    th_rmrf(dir);
    free(dir);
}
