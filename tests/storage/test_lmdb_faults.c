/* tests/storage/test_lmdb_faults.c - every LMDB call a store operation makes, failed in turn.
 *
 * The LMDB functions the store calls are interposed below (this executable defines them, so the
 * store's calls reach these first; the real ones are found with dlsym(RTLD_NEXT)). A sweep runs
 * an operation once to count its calls, then once per call k with the k-th failing (EIO, then
 * MDB_MAP_FULL), and checks what a disk or LMDB failure there must leave, as SQLite's I/O error
 * tests do:
 *   - the operation returns 0 or a documented negative errno, and never crashes or leaks (ASan);
 *   - an atomic operation (a write, a catalog change, a teardown, a bulk load) left the store's
 *     content exactly as before (it failed) or exactly as after a clean run (it succeeded):
 *     never half of it;
 *   - a read or a walk either fails or gives the right answer, never a wrong one;
 *   - the store, closed and opened again, verifies clean, and the operation run again without
 *     a fault reaches the state of a clean run.
 * storage/fault.c injects failures at a few chosen points of a test build; this reaches the
 * error branch after every LMDB call, in every build.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/storage/helpers.h"

/* ---- the interposed LMDB calls ---- */

static atomic_bool active;                 /* counting (and maybe failing) */
static atomic_long calls;                  /* LMDB calls made while active */
static atomic_long fail_at;                /* the call to fail (1-based; 0: none) */
static atomic_int fail_err;                /* what it returns */
static atomic_long failed;                 /* calls failed */
static const char *_Atomic failed_fn = ""; /* the function of the call failed */

static int fault_in(const char *fn)
{
    if (!atomic_load(&active))
        return 0;
    long n = atomic_fetch_add(&calls, 1) + 1;
    if (n != atomic_load(&fail_at))
        return 0;
    atomic_fetch_add(&failed, 1);
    atomic_store(&failed_fn, fn);
    return atomic_load(&fail_err);
}
#define fault() fault_in(__func__)

/* The real functions, found once before any test runs (no thread races to set them). */
static __typeof__(&mdb_txn_begin) real_mdb_txn_begin;
static __typeof__(&mdb_txn_commit) real_mdb_txn_commit;
static __typeof__(&mdb_txn_renew) real_mdb_txn_renew;
static __typeof__(&mdb_dbi_open) real_mdb_dbi_open;
static __typeof__(&mdb_get) real_mdb_get;
static __typeof__(&mdb_put) real_mdb_put;
static __typeof__(&mdb_del) real_mdb_del;
static __typeof__(&mdb_drop) real_mdb_drop;
static __typeof__(&mdb_cursor_open) real_mdb_cursor_open;
static __typeof__(&mdb_cursor_get) real_mdb_cursor_get;
static __typeof__(&mdb_cursor_put) real_mdb_cursor_put;
static __typeof__(&mdb_cursor_del) real_mdb_cursor_del;
static __typeof__(&mdb_env_copy2) real_mdb_env_copy2;
static __typeof__(&mdb_env_sync) real_mdb_env_sync;

#define LOAD(name)                                                                                 \
    if ((real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)) == NULL)                        \
    abort()

__attribute__((constructor)) static void load_real(void)
{
    LOAD(mdb_txn_begin);
    LOAD(mdb_txn_commit);
    LOAD(mdb_txn_renew);
    LOAD(mdb_dbi_open);
    LOAD(mdb_get);
    LOAD(mdb_put);
    LOAD(mdb_del);
    LOAD(mdb_drop);
    LOAD(mdb_cursor_open);
    LOAD(mdb_cursor_get);
    LOAD(mdb_cursor_put);
    LOAD(mdb_cursor_del);
    LOAD(mdb_env_copy2);
    LOAD(mdb_env_sync);
}

int mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned int flags, MDB_txn **txn)
{
    int rc = fault();
    return rc ? rc : real_mdb_txn_begin(env, parent, flags, txn);
}

int mdb_txn_commit(MDB_txn *txn)
{
    int rc = fault();
    if (rc != 0) {
        /* As LMDB's own failed commit: the transaction is gone either way. */
        mdb_txn_abort(txn);
        return rc;
    }
    return real_mdb_txn_commit(txn);
}

int mdb_txn_renew(MDB_txn *txn)
{
    int rc = fault();
    return rc ? rc : real_mdb_txn_renew(txn);
}

int mdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags, MDB_dbi *dbi)
{
    int rc = fault();
    return rc ? rc : real_mdb_dbi_open(txn, name, flags, dbi);
}

int mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    int rc = fault();
    return rc ? rc : real_mdb_get(txn, dbi, key, data);
}

int mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned int flags)
{
    int rc = fault();
    return rc ? rc : real_mdb_put(txn, dbi, key, data, flags);
}

int mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    int rc = fault();
    return rc ? rc : real_mdb_del(txn, dbi, key, data);
}

int mdb_drop(MDB_txn *txn, MDB_dbi dbi, int del)
{
    int rc = fault();
    return rc ? rc : real_mdb_drop(txn, dbi, del);
}

int mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor)
{
    int rc = fault();
    return rc ? rc : real_mdb_cursor_open(txn, dbi, cursor);
}

int mdb_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *data, MDB_cursor_op op)
{
    int rc = fault();
    return rc ? rc : real_mdb_cursor_get(cursor, key, data, op);
}

int mdb_cursor_put(MDB_cursor *cursor, MDB_val *key, MDB_val *data, unsigned int flags)
{
    int rc = fault();
    return rc ? rc : real_mdb_cursor_put(cursor, key, data, flags);
}

int mdb_cursor_del(MDB_cursor *cursor, unsigned int flags)
{
    int rc = fault();
    return rc ? rc : real_mdb_cursor_del(cursor, flags);
}

int mdb_env_copy2(MDB_env *env, const char *path, unsigned int flags)
{
    int rc = fault();
    return rc ? rc : real_mdb_env_copy2(env, path, flags);
}

int mdb_env_sync(MDB_env *env, int force)
{
    int rc = fault();
    return rc ? rc : real_mdb_env_sync(env, force);
}

/* ---- the store's state, as a fingerprint ---- */

/* fv@v1's head, the rest of the catalog, and the change of the catalog sweep (a feature
 * appended to fv@v1, a view version added). */
#define CAT_HEAD                                                                                   \
    "project: p\n"                                                                                 \
    "entities:\n"                                                                                  \
    "  - name: driver\n"                                                                           \
    "    join_keys: [{name: driver_id, type: INT64}]\n"                                            \
    "feature_views:\n"                                                                             \
    "  - name: fv\n"                                                                               \
    "    version: 1\n"                                                                             \
    "    entities: [driver]\n"                                                                     \
    "    ttl: 1h\n"                                                                                \
    "    features:\n"                                                                              \
    "      - {name: trips, dtype: INT64}\n"                                                        \
    "      - {name: label, dtype: STRING}\n"
#define CAT_REST                                                                                   \
    "  - name: fv\n"                                                                               \
    "    version: 2\n"                                                                             \
    "    entities: [driver]\n"                                                                     \
    "    ttl: 0\n"                                                                                 \
    "    features:\n"                                                                              \
    "      - {name: trips, dtype: INT64}\n"                                                        \
    "  - name: hist\n"                                                                             \
    "    version: 1\n"                                                                             \
    "    entities: [driver]\n"                                                                     \
    "    ttl: 1h\n"                                                                                \
    "    offline: {retention: 1d}\n"                                                               \
    "    features:\n"                                                                              \
    "      - {name: x, dtype: DOUBLE}\n"

static const char yaml[] = CAT_HEAD CAT_REST;
static const char yaml_next[] =
    CAT_HEAD "      - {name: extra, dtype: INT64}\n" CAT_REST "  - name: added\n"
             "    version: 1\n"
             "    entities: [driver]\n"
             "    features:\n"
             "      - {name: y, dtype: INT64}\n";

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static int on_digest(void *arg, const catalog_view_t *v, uint64_t hash, size_t rows,
                     size_t tombstones)
{
    uint64_t *h = arg;
    for (const char *p = v->name; *p; p++)
        *h = mix(*h, (uint8_t)*p);
    *h = mix(mix(mix(mix(*h, v->version), hash), rows), tombstones);
    return 0;
}

typedef struct fp_walk {
    uint64_t h;
    uint64_t damaged;
    bool error;
} fp_walk_t;

static void on_db(void *arg, const store_verify_db_t *db)
{
    fp_walk_t *w = arg;
    for (const char *p = db->name; *p; p++)
        w->h = mix(w->h, (uint8_t)*p);
    w->h = mix(w->h, db->records);
    w->damaged += db->damaged;
    w->error |= db->error != NULL;
}

static int on_change_fp(void *arg, const store_change_t *ch)
{
    uint64_t *h = arg;
    for (const char *p = ch->view; *p; p++)
        *h = mix(*h, (uint8_t)*p);
    for (size_t i = 0; i < ch->key_len; i++)
        *h = mix(*h, ch->key[i]);
    *h = mix(mix(mix(mix(*h, ch->version), ch->position), ch->index), (uint64_t)ch->event_ts_us);
    *h = mix(*h, ch->deleted); /* not write_ts_us: a wall-clock time */
    return 0;
}

typedef struct fp_scan {
    uint64_t *h;
    const catalog_view_t *v;
} fp_scan_t;

static int on_history_fp(void *arg, const uint8_t *key, size_t key_len, const store_row_t *row)
{
    fp_scan_t *a = arg;
    for (size_t i = 0; i < key_len; i++)
        *a->h = mix(*a->h, key[i]);
    if (row == NULL)
        return 0;
    *a->h = mix(*a->h, (uint64_t)row->event_ts_us);
    for (uint32_t f = 0; f < a->v->n_features; f++) {
        const uint8_t *wire = NULL;
        size_t len = 0;
        *a->h = mix(*a->h, store_row_feature(row, a->v, f, row->event_ts_us, &wire, &len));
        for (size_t i = 0; i < len; i++)
            *a->h = mix(*a->h, wire[i]);
    }
    return 0;
}

/* The history's content and the change feed's entries (not just their counts). */
static uint64_t offline_fingerprint(store_t *s)
{
    uint64_t h = 0;
    catalog_t *c = NULL;
    if (!store_keeps_history(s) || store_applied_catalog(s, &c) != 0)
        return h;
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    int rc = store_changes(r, 0, 0, on_change_fp, &h);
    cr_assert(rc == 0 || rc == -ENOTSUP, "store_changes: %d", rc);
    for (size_t i = 0; i < catalog_view_count(c); i++) {
        const catalog_view_t *v = catalog_view_at(c, i);
        if (!v->online || !v->history)
            continue;
        fp_scan_t a = {&h, v};
        /* As of two times: between the fixture's writes, and after them all. */
        static const int64_t times[] = {1700000000000000ll + 1800000000ll, 1800000000000000ll};
        for (size_t t = 0; t < 2; t++) {
            rc = store_history_scan(r, v, times[t], NULL, 0, on_history_fp, &a);
            cr_assert(rc == 0 || rc == -ENOENT, "store_history_scan: %d", rc);
            h = mix(h, (uint64_t)rc);
        }
    }
    store_read_end(r);
    store_reader_free(r);
    catalog_unref(c);
    return h;
}

/* The content of s (faults off): the online digest, every database's record count (history,
 * change feed, meta), the history's and change feed's content, the position and the applied
 * catalog. Asserts the store verifies clean. */
static uint64_t fingerprint(store_t *s)
{
    bool was = atomic_exchange(&active, false);
    uint64_t h = offline_fingerprint(s);
    cr_assert_eq(store_digest(s, on_digest, &h), 0);
    fp_walk_t w = {0};
    cr_assert_eq(store_verify(s, NULL, on_db, &w), 0);
    cr_assert_eq(w.damaged, 0, "damaged records after a failed call");
    cr_assert_not(w.error, "a database LMDB would not walk after a failed call");
    uint64_t pos = 0;
    cr_assert_eq(store_last_position(s, &pos), 0);
    h = mix(h, pos);
    catalog_t *c = NULL;
    if (store_applied_catalog(s, &c) == 0) {
        for (const char *p = catalog_digest(c); *p; p++)
            h = mix(h, (uint8_t)*p);
        catalog_unref(c);
    }
    atomic_store(&active, was);
    return mix(h, w.h);
}

/* ---- the sweep ---- */

#define T0 1700000000000000ll /* event times, fixed: fingerprints are equal across runs */
#define HOUR 3600000000ll

typedef struct sweep {
    const char *name;
    store_history_t history;
    store_sync_t sync;
    void (*prepare)(store_t *s, catalog_t *c); /* faults off: the state before */
    /* Under faults; a read puts what it found in *answer (a fingerprint of it). */
    int (*op)(store_t *s, catalog_t *c, uint64_t *answer);
    bool atomic;        /* a failure leaves the state before, exactly */
    const int *allowed; /* the errors op may return, 0-terminated */
} sweep_t;

static const int write_errors[] = {-EIO, -ENOSPC, -EFBIG, 0};
/* A read meets what LMDB said (MDB_MAP_FULL, which a read never gets, reads as -ENOSPC). */
static const int read_errors[] = {-EIO, -ENOSPC, 0};

static store_sync_t sync_mode = STORE_SYNC_NONE; /* the sweep's */

static store_t *open_store(const char *dir, store_history_t history)
{
    store_options_t o = {.dir = dir, .sync = sync_mode, .history = history};
    store_t *s = NULL;
    int rc = store_open(&o, &s);
    cr_assert_eq(rc, 0, "store_open: %d", rc);
    return s;
}

/* A fresh store with yaml applied and sw's state before, in a new directory (*dir). */
static store_t *fresh(const sweep_t *sw, catalog_t *c, char **dir)
{
    *dir = th_tmpdir();
    store_t *s = open_store(*dir, sw->history);
    catalog_plan_t plan;
    cr_assert_eq(store_apply_catalog(s, c, &plan), 0);
    catalog_plan_clear(&plan);
    if (sw->prepare != NULL)
        sw->prepare(s, c);
    return s;
}

static bool allowed(const sweep_t *sw, int rc)
{
    for (const int *e = sw->allowed; *e != 0; e++)
        if (rc == *e)
            return true;
    return false;
}

/* Runs sw with each of its LMDB calls failing in turn with err. Returns the calls it swept. */
static long sweep_with(const sweep_t *sw, int err)
{
    sync_mode = sw->sync;
    catalog_t *c = th_catalog(yaml);
    /* A clean run: the calls to sweep, and the state after. */
    char *dir;
    store_t *s = fresh(sw, c, &dir);
    uint64_t before = fingerprint(s);
    atomic_store(&calls, 0);
    atomic_store(&fail_at, 0);
    uint64_t answer = 0;
    atomic_store(&active, true);
    int rc = sw->op(s, c, &answer);
    atomic_store(&active, false);
    long n = atomic_load(&calls);
    cr_assert_eq(rc, 0, "%s: the clean run failed: %d", sw->name, rc);
    uint64_t after = fingerprint(s);
    store_close(s);
    th_rmrf(dir);
    free(dir);
    cr_assert_gt(n, 0, "%s made no LMDB call", sw->name);

    for (long k = 1; k <= n; k++) {
        s = fresh(sw, c, &dir);
        cr_assert_eq(fingerprint(s), before, "%s: the state before is not reproducible", sw->name);
        atomic_store(&calls, 0);
        atomic_store(&failed, 0);
        atomic_store(&fail_err, err);
        atomic_store(&fail_at, k);
        uint64_t got_answer = 0;
        atomic_store(&active, true);
        rc = sw->op(s, c, &got_answer);
        atomic_store(&active, false);
        atomic_store(&fail_at, 0);
        cr_assert_eq(atomic_load(&failed), 1,
                     "%s: call %ld of %ld was never made: the calls "
                     "of a run are not the same each time",
                     sw->name, k, n);
        cr_assert(rc == 0 || allowed(sw, rc), "%s, call %ld of %ld failing (%d): returned %d",
                  sw->name, k, n, err, rc);
        if (rc == 0)
            cr_assert_eq(got_answer, answer, "%s, call %ld failing: a wrong answer", sw->name, k);
        uint64_t got = fingerprint(s);
        if (rc == 0)
            cr_assert_eq(got, after, "%s, call %ld failing: succeeded with another result",
                         sw->name, k);
        else if (sw->atomic)
            cr_assert_eq(got, before, "%s, call %ld failing: failed but changed the store",
                         sw->name, k);
        else if (sw->sync == STORE_SYNC_FULL)
            /* Atomic too, but for the fsync after the commit: the write failed and stays. */
            cr_assert(got == before ||
                          (got == after && strcmp(atomic_load(&failed_fn), "mdb_env_sync") == 0),
                      "%s, call %ld failing (%s): half a write", sw->name, k,
                      atomic_load(&failed_fn));
        /* Closed and opened again: the same content, clean. */
        store_close(s);
        s = open_store(dir, sw->history);
        uint64_t reopened = fingerprint(s);
        cr_assert_eq(reopened, got,
                     "%s, call %ld failing (%s, %d): returned %d; the reopened store differs "
                     "(it is %s)",
                     sw->name, k, atomic_load(&failed_fn), err, rc,
                     reopened == before  ? "the state before"
                     : reopened == after ? "the state after"
                                         : "neither");
        /* And the operation again, without a fault, reaches a clean run's state (unless the
         * failure came after it took effect: an fsync after its commit). */
        if (rc != 0 && got != after) {
            uint64_t again_answer = 0;
            int again = sw->op(s, c, &again_answer);
            cr_assert_eq(again_answer, answer, "%s, call %ld failing: the retry's answer differs",
                         sw->name, k);
            cr_assert_eq(again, 0, "%s, call %ld failing: the retry failed: %d", sw->name, k,
                         again);
            cr_assert_eq(fingerprint(s), after, "%s, call %ld failing: the retry differs", sw->name,
                         k);
        }
        store_close(s);
        th_rmrf(dir);
        free(dir);
    }
    catalog_unref(c);
    sync_mode = STORE_SYNC_NONE;
    return n;
}

static void sweep(const sweep_t *sw)
{
    long n = sweep_with(sw, EIO);
    /* A full map is grown and the call retried (storage/store.c), or it fails -EFBIG. */
    long m = sweep_with(sw, MDB_MAP_FULL);
    /* What LMDB says of a bad page. */
    long b = sweep_with(sw, MDB_CORRUPTED);
    cr_log_info("%s: %ld LMDB calls swept with EIO, %ld with MDB_MAP_FULL, %ld with MDB_CORRUPTED",
                sw->name, n, m, b);
}

/* ---- the operations ---- */

static int put_i64(store_t *s, const catalog_view_t *v, const int64_t *ids, size_t n,
                   uint32_t feature, int64_t value, int64_t ts, store_op_t op)
{
    catalog_value_t keys[8], vals[8];
    const catalog_value_t *kcol[] = {keys};
    const catalog_value_t *vcol[] = {vals};
    int64_t tss[8];
    for (size_t i = 0; i < n; i++) {
        keys[i] = th_i64(ids[i]);
        vals[i] = th_i64(value + (int64_t)i);
        tss[i] = ts;
    }
    store_batch_t b = {.view = v,
                       .op = op,
                       .n_rows = n,
                       .keys = kcol,
                       .n_features = op == STORE_OP_DELETE ? 0 : 1,
                       .feature_idx = &feature,
                       .values = vcol,
                       .event_ts_us = tss};
    return store_apply(s, &b, 1, 0, NULL);
}

static int put_hist(store_t *s, const catalog_t *c, const int64_t *ids, size_t n, double x,
                    int64_t ts)
{
    catalog_value_t keys[8], vals[8];
    const catalog_value_t *kcol[] = {keys};
    const catalog_value_t *vcol[] = {vals};
    int64_t tss[8];
    for (size_t i = 0; i < n; i++) {
        keys[i] = th_i64(ids[i]);
        vals[i] = (catalog_value_t){.type = CATALOG_DTYPE_DOUBLE, .u.f64 = x + (double)i};
        tss[i] = ts;
    }
    uint32_t f = 0;
    store_batch_t b = {.view = th_view(c, "hist", 1),
                       .n_rows = n,
                       .keys = kcol,
                       .n_features = 1,
                       .feature_idx = &f,
                       .values = vcol,
                       .event_ts_us = tss};
    return store_apply(s, &b, 1, 0, NULL);
}

static void prepare_rows(store_t *s, catalog_t *c)
{
    static const int64_t ids[] = {1, 2, 3, 4};
    const catalog_view_t *v1 = th_view(c, "fv", 1);
    cr_assert_eq(put_i64(s, v1, ids, 4, 0, 10, T0, STORE_OP_UPSERT), 0);
    cr_assert_eq(put_i64(s, th_view(c, "fv", 2), ids, 2, 0, 20, T0, STORE_OP_UPSERT), 0);
    cr_assert_eq(put_hist(s, c, ids, 3, 0.5, T0), 0);
    cr_assert_eq(put_hist(s, c, ids, 2, 1.5, T0 + HOUR), 0);
}

/* One call, four batches over three views: upserts (new rows and newer values), a delete, and
 * history rows. */
static int op_write(store_t *s, catalog_t *c, uint64_t *ctx)
{
    (void)ctx;
    const catalog_view_t *v1 = th_view(c, "fv", 1), *v2 = th_view(c, "fv", 2),
                         *h = th_view(c, "hist", 1);
    catalog_value_t k[4] = {th_i64(2), th_i64(5), th_i64(6), th_i64(3)};
    catalog_value_t t[3] = {th_i64(200), th_i64(500), th_i64(600)};
    catalog_value_t x[2] = {{.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 9.5},
                            {.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 8.5}};
    const catalog_value_t *kc[] = {k}, *kd[] = {&k[3]}, *tc[] = {t}, *xc[] = {x};
    int64_t ts[3] = {T0 + 2 * HOUR, T0 + 2 * HOUR, T0 + 2 * HOUR};
    uint32_t f0 = 0;
    store_batch_t b[] = {
        {.view = v1,
         .n_rows = 3,
         .keys = kc,
         .n_features = 1,
         .feature_idx = &f0,
         .values = tc,
         .event_ts_us = ts},
        {.view = v2,
         .n_rows = 3,
         .keys = kc,
         .n_features = 1,
         .feature_idx = &f0,
         .values = tc,
         .event_ts_us = ts},
        {.view = v1, .op = STORE_OP_DELETE, .n_rows = 1, .keys = kd, .event_ts_us = ts},
        {.view = h,
         .n_rows = 2,
         .keys = kc,
         .n_features = 1,
         .feature_idx = &f0,
         .values = xc,
         .event_ts_us = ts},
    };
    return store_apply(s, b, 4, *ctx == 1 ? 10 : 0, NULL);
}

/* The same write as a replica applies it: at a log position, recorded with it. */
static int op_write_at(store_t *s, catalog_t *c, uint64_t *ctx)
{
    *ctx = 1;
    int rc = op_write(s, c, ctx);
    *ctx = 0;
    return rc;
}

/* A catalog change from the log, at its position. */
static int op_catalog_at(store_t *s, catalog_t *c, uint64_t *ctx)
{
    (void)c;
    (void)ctx;
    catalog_t *next = th_catalog(yaml_next);
    catalog_plan_t plan;
    int rc = store_apply_catalog_at(s, next, &plan, 10);
    catalog_plan_clear(&plan);
    catalog_unref(next);
    return rc;
}

static void on_done(void *arg, int rc, const store_apply_result_t *res)
{
    (void)res;
    int *out = arg;
    __atomic_store_n(out, rc, __ATOMIC_RELEASE);
}

/* The write a replica takes from the log: the wire form, applied asynchronously at a position. */
static int op_wire(store_t *s, catalog_t *c, uint64_t *ctx)
{
    (void)ctx;
    const catalog_view_t *v1 = th_view(c, "fv", 1), *h = th_view(c, "hist", 1);
    catalog_value_t k[2] = {th_i64(2), th_i64(9)};
    catalog_value_t t[2] = {th_i64(900), th_i64(901)};
    catalog_value_t x[2] = {{.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 4.5},
                            {.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 5.5}};
    const catalog_value_t *kc[] = {k}, *tc[] = {t}, *xc[] = {x};
    int64_t ts[2] = {T0 + 3 * HOUR, T0 + 3 * HOUR};
    uint32_t f0 = 0;
    store_batch_t b[] = {
        {.view = v1,
         .n_rows = 2,
         .keys = kc,
         .n_features = 1,
         .feature_idx = &f0,
         .values = tc,
         .event_ts_us = ts},
        {.view = h,
         .op = STORE_OP_HISTORY,
         .n_rows = 2,
         .keys = kc,
         .n_features = 1,
         .feature_idx = &f0,
         .values = xc,
         .event_ts_us = ts},
    };
    store_wire_t *w = NULL;
    store_apply_result_t res;
    int rc = store_wire_begin(s, 0, b, 2, &w, &res);
    if (rc < 0)
        return rc;
    int done = 1; /* 1: not yet */
    rc = store_apply_wire_async(s, w->batches, w->n_batches, 20, &res, on_done, &done);
    while (rc == 0 && __atomic_load_n(&done, __ATOMIC_ACQUIRE) == 1) {
        struct timespec ts1 = {0, 1000000};
        nanosleep(&ts1, NULL);
    }
    store_wire_end(w);
    return rc < 0 ? rc : done;
}

/* The same rows through the bulk path (fstore ingest's). */
static int op_bulk(store_t *s, catalog_t *c, uint64_t *ctx)
{
    (void)ctx;
    store_bulk_t *b = NULL;
    int rc = store_bulk_begin(s, &b);
    if (rc < 0)
        return rc;
    catalog_value_t k[3] = {th_i64(7), th_i64(2), th_i64(8)};
    catalog_value_t t[3] = {th_i64(70), th_i64(71), th_i64(72)};
    const catalog_value_t *kc[] = {k}, *tc[] = {t};
    int64_t ts[3] = {T0 + HOUR, T0 + HOUR, T0 + HOUR};
    uint32_t f0 = 0;
    store_batch_t batch = {.view = th_view(c, "fv", 1),
                           .n_rows = 3,
                           .keys = kc,
                           .n_features = 1,
                           .feature_idx = &f0,
                           .values = tc,
                           .event_ts_us = ts};
    store_apply_result_t res;
    rc = store_bulk_add(b, &batch, 1, &res);
    if (rc == 0)
        rc = store_bulk_commit(b, &res);
    store_bulk_free(b);
    return rc;
}

static int op_catalog(store_t *s, catalog_t *c, uint64_t *ctx)
{
    (void)c;
    (void)ctx;
    catalog_t *next = th_catalog(yaml_next);
    catalog_plan_t plan;
    int rc = store_apply_catalog(s, next, &plan);
    catalog_plan_clear(&plan);
    catalog_unref(next);
    return rc;
}

static int op_teardown(store_t *s, catalog_t *c, uint64_t *ctx)
{
    (void)c;
    (void)ctx;
    return store_teardown(s, "fv", 1);
}

/* Every version of a view that keeps history (its history and change feed entries go too). */
static int op_teardown_history(store_t *s, catalog_t *c, uint64_t *ctx)
{
    (void)c;
    (void)ctx;
    return store_teardown(s, "hist", 0);
}

/* The whole store's data, catalog and position. */
static int op_teardown_all(store_t *s, catalog_t *c, uint64_t *ctx)
{
    (void)c;
    (void)ctx;
    return store_teardown(s, NULL, 0);
}

/* Rows past their TTL, tombstones and history past their retention: deleted in several small
 * transactions, so a failure may leave some deleted (not atomic); the next sweep ends it. */
static void prepare_gc(store_t *s, catalog_t *c)
{
    prepare_rows(s, c);
    static const int64_t ids[] = {3};
    cr_assert_eq(put_i64(s, th_view(c, "fv", 2), ids, 1, 0, 0, T0, STORE_OP_DELETE), 0);
}

static int op_gc(store_t *s, catalog_t *c, uint64_t *ctx)
{
    (void)c;
    (void)ctx;
    /* Three days on: fv@v1's rows (1 h TTL) expired, the tombstone and hist's entries (1 d
     * retention) too. */
    size_t deleted = 0;
    return store_gc(s, T0 + 72 * HOUR, &deleted);
}

static int op_materialize(store_t *s, catalog_t *c, uint64_t *ctx)
{
    (void)ctx;
    size_t written = 0;
    return store_materialize(s, th_view(c, "hist", 1), T0, T0 + 2 * HOUR, &written);
}

/* Reads: online rows (present, deleted, expired, absent) and history rows as of two times. */
static int op_read(store_t *s, catalog_t *c, uint64_t *answer)
{
    store_reader_t *r = NULL;
    int rc = store_reader_new(s, &r);
    if (rc < 0)
        return rc;
    rc = store_read_begin(r);
    const catalog_view_t *v1 = th_view(c, "fv", 1), *h = th_view(c, "hist", 1);
    for (int64_t id = 1; rc == 0 && id <= 5; id++) {
        uint8_t key[STORE_MAX_KEY];
        catalog_value_t k = th_i64(id);
        int n = store_encode_key(v1, &k, 1, key, sizeof key);
        cr_assert_gt(n, 0);
        store_row_t row;
        rc = store_read_row(r, v1, key, (size_t)n, &row);
        if (rc == 0) {
            const uint8_t *wire = NULL;
            size_t len = 0;
            store_status_t st = store_row_feature(&row, v1, 0, T0 + 1, &wire, &len);
            *answer = mix(mix(mix(*answer, (uint64_t)row.found), (uint64_t)st), len);
            for (size_t i = 0; i < len; i++)
                *answer = mix(*answer, wire[i]);
        }
        for (int64_t at = T0; rc == 0 && at <= T0 + HOUR; at += HOUR) {
            n = store_encode_key(h, &k, 1, key, sizeof key);
            rc = store_history_row(r, h, key, (size_t)n, at, &row);
            if (rc == 0)
                *answer = mix(mix(*answer, (uint64_t)row.found), (uint64_t)row.event_ts_us);
        }
    }
    store_read_end(r); /* also when the begin failed */
    store_reader_free(r);
    return rc;
}

static int on_scan(void *arg, const uint8_t *key, size_t key_len, const store_row_t *row)
{
    uint64_t *a = arg;
    for (size_t i = 0; i < key_len; i++)
        *a = mix(*a, key[i]);
    *a = mix(*a, row != NULL ? (uint64_t)row->event_ts_us : 7);
    return 0;
}

static int on_change(void *arg, const store_change_t *ch)
{
    uint64_t *a = arg;
    *a = mix(mix(mix(*a, ch->position), ch->index), (uint64_t)ch->event_ts_us);
    *a = mix(*a, ch->deleted);
    return 0;
}

/* Walks: load_batch's scan as of a time, and the change feed (fstore cdc's). */
static int op_walks(store_t *s, catalog_t *c, uint64_t *answer)
{
    store_reader_t *r = NULL;
    int rc = store_reader_new(s, &r);
    if (rc < 0)
        return rc;
    rc = store_read_begin(r);
    if (rc == 0)
        rc = store_history_scan(r, th_view(c, "hist", 1), T0 + HOUR, NULL, 0, on_scan, answer);
    if (rc == 0)
        rc = store_changes(r, 0, 0, on_change, answer);
    store_read_end(r); /* also when the begin failed */
    store_reader_free(r);
    return rc;
}

/* The store's own walks: the digest, the row count, the stats. */
static int op_digest(store_t *s, catalog_t *c, uint64_t *answer)
{
    int rc = store_digest(s, on_digest, answer);
    size_t rows = 0;
    if (rc == 0)
        rc = store_count_rows(s, th_view(c, "fv", 1), &rows);
    *answer = mix(*answer, rows);
    store_stats_t st;
    if (rc == 0 && (rc = store_stat(s, &st)) == 0)
        *answer = mix(mix(*answer, st.last_position), st.n_views);
    return rc;
}

/* A snapshot into a new directory: it fails, or it opens with the store's content. */
static int op_snapshot(store_t *s, catalog_t *c, uint64_t *answer)
{
    (void)c;
    char *dir = th_tmpdir();
    char out[4200];
    snprintf(out, sizeof out, "%s/snap", dir);
    int rc = store_snapshot(s, out);
    if (rc == 0) {
        bool was = atomic_exchange(&active, false);
        store_t *copy = open_store(out, STORE_HISTORY_ON);
        *answer = fingerprint(copy);
        store_close(copy);
        atomic_store(&active, was);
    }
    th_rmrf(dir);
    free(dir);
    return rc;
}

static const sweep_t sweeps[] = {
    {"write", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_rows, op_write, true, write_errors},
    /* With fsync, a failed fsync comes after the commit: the write fails but stays. */
    {"write, sync full", STORE_HISTORY_ON, STORE_SYNC_FULL, prepare_rows, op_write, false,
     write_errors},
    {"write from the log", STORE_HISTORY_ON, STORE_SYNC_LOG, prepare_rows, op_wire, true,
     write_errors},
    {"bulk", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_rows, op_bulk, true, write_errors},
    {"catalog", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_rows, op_catalog, true, write_errors},
    {"teardown", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_rows, op_teardown, true, write_errors},
    {"teardown of a view with history", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_rows,
     op_teardown_history, true, write_errors},
    {"teardown of everything", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_rows, op_teardown_all,
     true, write_errors},
    {"gc", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_gc, op_gc, false, write_errors},
    {"materialize", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_rows, op_materialize, false,
     write_errors},
    {"read", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_gc, op_read, true, read_errors},
    {"write at a log position", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_rows, op_write_at, true,
     write_errors},
    {"catalog at a log position", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_rows, op_catalog_at,
     true, write_errors},
    {"walks", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_gc, op_walks, true, read_errors},
    {"digest", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_gc, op_digest, true, read_errors},
    {"snapshot", STORE_HISTORY_ON, STORE_SYNC_NONE, prepare_gc, op_snapshot, true, read_errors},
};

static void sweep_named(const char *name)
{
    for (size_t i = 0; i < sizeof sweeps / sizeof sweeps[0]; i++)
        if (strcmp(sweeps[i].name, name) == 0) {
            sweep(&sweeps[i]);
            return;
        }
    cr_assert_fail("no sweep %s", name);
}

Test(lmdb_faults, a_write_is_all_or_nothing, .timeout = 300)
{
    sweep_named("write");
}

Test(lmdb_faults, a_write_with_fsync_fails_cleanly_and_a_retry_finishes, .timeout = 300)
{
    sweep_named("write, sync full");
}

Test(lmdb_faults, a_write_from_the_log_is_all_or_nothing, .timeout = 300)
{
    sweep_named("write from the log");
}

Test(lmdb_faults, a_write_at_a_log_position_is_all_or_nothing_position_included, .timeout = 300)
{
    sweep_named("write at a log position");
}

Test(lmdb_faults, a_bulk_load_is_all_or_nothing, .timeout = 300)
{
    sweep_named("bulk");
}

Test(lmdb_faults, a_catalog_change_is_all_or_nothing, .timeout = 300)
{
    sweep_named("catalog");
}

Test(lmdb_faults, a_catalog_change_at_a_log_position_is_all_or_nothing, .timeout = 300)
{
    sweep_named("catalog at a log position");
}

Test(lmdb_faults, a_teardown_is_all_or_nothing, .timeout = 300)
{
    sweep_named("teardown");
}

Test(lmdb_faults, a_teardown_of_a_view_with_history_is_all_or_nothing, .timeout = 300)
{
    sweep_named("teardown of a view with history");
}

Test(lmdb_faults, a_teardown_of_everything_is_all_or_nothing, .timeout = 300)
{
    sweep_named("teardown of everything");
}

Test(lmdb_faults, gc_fails_cleanly_and_the_next_sweep_finishes, .timeout = 300)
{
    sweep_named("gc");
}

Test(lmdb_faults, materialize_fails_cleanly_and_a_retry_finishes, .timeout = 300)
{
    sweep_named("materialize");
}

Test(lmdb_faults, a_read_fails_or_answers_right, .timeout = 300)
{
    sweep_named("read");
}

Test(lmdb_faults, a_scan_or_the_change_feed_fails_or_answers_right, .timeout = 300)
{
    sweep_named("walks");
}

Test(lmdb_faults, the_digest_count_and_stats_fail_or_answer_right, .timeout = 300)
{
    sweep_named("digest");
}

Test(lmdb_faults, a_snapshot_fails_or_holds_the_store, .timeout = 300)
{
    sweep_named("snapshot");
}

/* A store holding prepare_gc()'s state, closed, in a new directory (the caller's). */
static char *prepared(catalog_t *c)
{
    char *dir = th_tmpdir();
    store_t *s = open_store(dir, STORE_HISTORY_ON);
    catalog_plan_t plan;
    cr_assert_eq(store_apply_catalog(s, c, &plan), 0);
    catalog_plan_clear(&plan);
    prepare_gc(s, c);
    store_close(s);
    return dir;
}

/* Opening an existing store (its meta, catalog, views, history and change feed read back):
 * each LMDB call of the open failed in turn fails the open, or it opens with the content and
 * takes the next write as a clean open does (the write reads the change-feed counter itself). */
Test(lmdb_faults, an_open_fails_cleanly_or_opens_the_content, .timeout = 300)
{
    catalog_t *c = th_catalog(yaml);
    char *dir = prepared(c);
    atomic_store(&calls, 0);
    atomic_store(&fail_at, 0);
    atomic_store(&active, true);
    store_t *s = open_store(dir, STORE_HISTORY_ON);
    atomic_store(&active, false);
    long n = atomic_load(&calls);
    cr_assert_gt(n, 0);
    uint64_t before = fingerprint(s), zero = 0;
    cr_assert_eq(op_write(s, c, &zero), 0);
    uint64_t written = fingerprint(s);
    store_close(s);
    th_rmrf(dir);
    free(dir);
    static const int errs[] = {EIO, MDB_MAP_FULL, MDB_CORRUPTED};
    for (size_t pass = 0; pass < 3; pass++) {
        for (long k = 1; k <= n; k++) {
            dir = prepared(c);
            store_options_t o = {.dir = dir, .sync = STORE_SYNC_NONE, .history = STORE_HISTORY_ON};
            atomic_store(&calls, 0);
            atomic_store(&failed, 0);
            atomic_store(&fail_err, errs[pass]);
            atomic_store(&fail_at, k);
            atomic_store(&active, true);
            s = NULL;
            int rc = store_open(&o, &s);
            atomic_store(&active, false);
            atomic_store(&fail_at, 0);
            cr_assert_eq(atomic_load(&failed), 1, "open: call %ld of %ld was never made", k, n);
            /* A bad page where the open looks for its meta database is damage, said so. */
            cr_assert(rc == 0 || rc == -EIO || rc == -ENOSPC || rc == -EFBIG ||
                          (rc == -EUCLEAN && errs[pass] == MDB_CORRUPTED),
                      "open, call %ld of %ld failing (%s, %d): %d", k, n, atomic_load(&failed_fn),
                      errs[pass], rc);
            if (rc == 0) {
                cr_assert_eq(fingerprint(s), before, "open, call %ld failing: other content", k);
                zero = 0;
                cr_assert_eq(op_write(s, c, &zero), 0);
                cr_assert_eq(fingerprint(s), written,
                             "open, call %ld failing (%s): the next write lands differently", k,
                             atomic_load(&failed_fn));
                store_close(s);
            } else {
                cr_assert_null(s);
                s = open_store(dir, STORE_HISTORY_ON);
                cr_assert_eq(fingerprint(s), before, "open, call %ld failing: changed the store",
                             k);
                store_close(s);
            }
            th_rmrf(dir);
            free(dir);
        }
    }
    catalog_unref(c);
}
