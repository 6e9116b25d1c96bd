/* tests/storage/helpers.h - temp dirs, inline catalogs and one-row helpers for storage tests. */
#ifndef TESTS_STORAGE_HELPERS_H
#define TESTS_STORAGE_HELPERS_H

#include "storage/store.h"

/*
 * The test catalog: view "fv" (driver, INT64 key, TTL 1h) with features conv_rate FLOAT in [0,1]
 * (index 0), trips INT64 (1), label STRING (2), hist INT64_LIST (3); view "stats" versions 1
 * and 2 keyed by (driver_id, city); view "global" without entities and without TTL.
 */
extern const char th_yaml[];

/* A fresh directory under /tmp (malloc'd) and its recursive removal. */
char *th_tmpdir(void);
void th_rmrf(const char *path);

catalog_t *th_catalog(const char *yaml);
const catalog_view_t *th_view(const catalog_t *c, const char *name, uint32_t version);
store_t *th_open(const char *dir, size_t map_size, store_sync_t sync);
/* Opens dir and applies c (asserting success). */
store_t *th_open_applied(const char *dir, const catalog_t *c);
/* The same with history kept (serve --history), for views with `offline:`. */
store_t *th_open_history_applied(const char *dir, const catalog_t *c);

/* The usual suite fixture: a fresh directory with th_yaml applied, and its view "fv" v1 (s
 * NULL: the directory and catalog only, no store opened).
 * Ownership: th_fixture_close() releases all of it (store if any, catalog, directory). */
void th_fixture_open(char **dir, catalog_t **cat, store_t **s, const catalog_view_t **fv);
void th_fixture_close(char *dir, catalog_t *cat, store_t *s);

catalog_value_t th_i64(int64_t x);
catalog_value_t th_f32(float x);
catalog_value_t th_str(const char *s);
catalog_value_t th_null(void);

/* Upserts one feature of one driver row of a single-INT64-key view. */
int th_put(store_t *s, const catalog_view_t *v, int64_t id, uint32_t feature, catalog_value_t val,
           int64_t event_ts_us);
/* As th_put(), at log position pos (0: none). */
int th_put_at(store_t *s, const catalog_view_t *v, int64_t id, uint32_t feature,
              catalog_value_t val, int64_t event_ts_us, uint64_t pos);
/* Deletes one driver row of a single-INT64-key view at event time event_ts_us. */
int th_del(store_t *s, const catalog_view_t *v, int64_t id, int64_t event_ts_us);
/* As th_del(), at log position pos (0: none). */
int th_del_at(store_t *s, const catalog_view_t *v, int64_t id, int64_t event_ts_us, uint64_t pos);
/* Reads one feature of one driver row; *out is decoded (scalars only), *ts the row's time. */
store_status_t th_get(store_t *s, const catalog_view_t *v, int64_t id, uint32_t feature,
                      int64_t now_us, catalog_value_t *out, int64_t *ts);
size_t th_rows(store_t *s, const catalog_view_t *v);

#endif /* TESTS_STORAGE_HELPERS_H */
