/* tests/storage/test_verify.c - record checksums on the read and write paths, store_verify(),
 * and the upgrade of a store written before checksums (storage/verify.c, storage/record.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/store_int.h"
#include "tests/storage/helpers.h"

/* "h": INT64 key, features a (0) and b (1), history kept. */
static const char yaml[] = "project: t\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                           "feature_views:\n"
                           "  - name: h\n"
                           "    entities: [driver]\n"
                           "    offline: {retention: 30d}\n"
                           "    features: [{name: a, dtype: INT64}, {name: b, dtype: INT64}]\n"
                           "  - name: big\n"
                           "    entities: [driver]\n"
                           "    features: [{name: blob, dtype: BYTES}]\n";

#define SEC 1000000ll
static const int64_t T0 = 1700000000ll * SEC;
#define N_IDS 50

static char *dir;
static catalog_t *cat;
static store_t *s;
static const catalog_view_t *h;

static store_t *open_store(bool read_only, int *rc)
{
    store_options_t o = {
        .dir = dir, .sync = STORE_SYNC_NONE, .read_only = read_only, .history = STORE_HISTORY_ON};
    store_t *st = NULL;
    *rc = store_open(&o, &st);
    return st;
}

static void reopen(void)
{
    store_close(s);
    int rc;
    s = open_store(false, &rc);
    cr_assert_eq(rc, 0, "%s", strerror(-rc));
}

/* One row of v (INT64 key id): features 0 .. n - 1 set to vals, at ts, as op. */
static void apply1(const catalog_view_t *v, store_op_t op, int64_t id, const catalog_value_t *vals,
                   uint32_t n, int64_t ts)
{
    catalog_value_t key = th_i64(id);
    const catalog_value_t *keys[] = {&key}, *cols[2];
    uint32_t idx[2];
    cr_assert_leq(n, 2);
    for (uint32_t i = 0; i < n; i++) {
        cols[i] = &vals[i];
        idx[i] = i;
    }
    store_batch_t bt = {.view = v,
                        .op = op,
                        .n_rows = 1,
                        .keys = keys,
                        .n_features = n,
                        .feature_idx = idx,
                        .values = cols,
                        .event_ts_us = &ts};
    cr_assert_eq(store_apply(s, &bt, 1, 0, NULL), 0);
}

static void put2(int64_t id, int64_t a, int64_t b, int64_t ts)
{
    catalog_value_t vals[] = {th_i64(a), th_i64(b)};
    apply1(h, STORE_OP_UPSERT, id, vals, 2, ts);
}

static void setup(void)
{
    dir = th_tmpdir();
    cat = th_catalog(yaml);
    h = th_view(cat, "h", 1);
    int rc;
    s = open_store(false, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(store_apply_catalog(s, cat, NULL), 0);
    for (int64_t id = 1; id <= N_IDS; id++) {
        put2(id, id, id * 10, T0);
        put2(id, id + 1000, id * 10 + 1000, T0 + 10 * SEC);
    }
}

static void teardown(void)
{
    store_close(s);
    catalog_unref(cat);
    th_rmrf(dir);
    free(dir);
}

TestSuite(verify, .init = setup, .fini = teardown);

static size_t encode(int64_t id, uint8_t *key)
{
    catalog_value_t k = th_i64(id);
    int n = store_encode_key(h, &k, 1, key, STORE_MAX_KEY);
    cr_assert_gt(n, 0);
    return (size_t)n;
}

/* Reads row id online (history: as of at): returns store_read_row()'s (store_history_row()'s)
 * result, with feature a in *a (-1: none). */
static int read_a(int64_t id, bool history, int64_t at, int64_t *a)
{
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    uint8_t key[STORE_MAX_KEY];
    size_t n = encode(id, key);
    store_row_t row;
    int rc =
        history ? store_history_row(r, h, key, n, at, &row) : store_read_row(r, h, key, n, &row);
    *a = -1;
    if (rc == 0 && row.found) {
        const uint8_t *wire;
        size_t len;
        if (store_row_feature(&row, h, 0, at, &wire, &len) == STORE_STATUS_PRESENT) {
            catalog_value_t v;
            uint64_t scratch[16];
            cr_assert_eq(catalog_value_decode(wire, len, &v, scratch, sizeof scratch), 0);
            *a = v.u.i64;
        }
    }
    store_read_end(r);
    store_reader_free(r);
    return rc;
}

/* The store's environment opened behind its back (the store closed): a transaction on it. */
static MDB_txn *raw_begin(MDB_env **env, unsigned flags)
{
    MDB_txn *txn;
    cr_assert_eq(mdb_env_create(env), 0);
    mdb_env_set_maxdbs(*env, 16);
    cr_assert_eq(mdb_env_open(*env, dir, flags, 0644), 0);
    cr_assert_eq(mdb_txn_begin(*env, NULL, flags, &txn), 0);
    return txn;
}

/* Behind the store's back (closed): fn edits the value of key in the named database. */
typedef void (*edit_fn)(uint8_t *val, size_t *len, void *arg);

static void raw_edit(const char *db, const uint8_t *key, size_t key_len, edit_fn fn, void *arg)
{
    store_close(s);
    s = NULL;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    txn = raw_begin(&env, 0);
    cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), 0, "%s", db);
    MDB_val k = {key_len, (void *)key}, d;
    cr_assert_eq(mdb_get(txn, dbi, &k, &d), 0);
    uint8_t buf[4096];
    size_t len = d.mv_size;
    cr_assert_leq(len, sizeof buf);
    memcpy(buf, d.mv_data, len);
    fn(buf, &len, arg);
    d = (MDB_val){len, buf};
    cr_assert_eq(mdb_put(txn, dbi, &k, &d, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    reopen();
}

static void flip_last_value_byte(uint8_t *val, size_t *len, void *arg)
{
    (void)arg;
    /* The last byte of the last value: an INT64's varint, so the damaged record would decode
     * to another number, PRESENT, without the checksum. */
    val[*len - STORE__REC_TRAILER - 1] ^= 0x01;
}

typedef struct found {
    int dbs;
    uint64_t records, damaged;
    char damaged_db[64];
    uint8_t key[STORE_MAX_KEY];
    size_t key_len;
    int64_t event_ts_us;
    uint64_t rows, history, changes;
} found_t;

static void on_damaged(void *arg, const store_verify_db_t *db, const uint8_t *key, size_t len,
                       int64_t event_ts_us)
{
    found_t *f = arg;
    f->event_ts_us = event_ts_us;
    cr_assert_str_eq(db->view, "h");
    cr_assert_eq(db->version, 1);
    cr_assert_not_null(key, "%s: %s", db->name, db->error);
    snprintf(f->damaged_db, sizeof f->damaged_db, "%s", db->name);
    memcpy(f->key, key, len);
    f->key_len = len;
}

static void on_db(void *arg, const store_verify_db_t *db)
{
    found_t *f = arg;
    f->dbs++;
    f->records += db->records;
    f->damaged += db->damaged;
    cr_assert_null(db->error, "%s: %s", db->name, db->error);
    if (strcmp(db->name, "h@v1") == 0)
        f->rows = db->records;
    else if (strcmp(db->name, "history h@v1") == 0)
        f->history = db->records;
    else if (strcmp(db->name, "changes") == 0)
        f->changes = db->records;
}

static found_t verify(void)
{
    found_t f = {0};
    cr_assert_eq(store_verify(s, on_damaged, on_db, &f), 0);
    return f;
}

Test(verify, a_sound_store_verifies_every_record_of_every_database)
{
    found_t f = verify();
    cr_assert_eq(f.damaged, 0);
    cr_assert_eq(f.rows, N_IDS);
    cr_assert_eq(f.history, 2 * N_IDS);
    cr_assert_eq(f.changes, 2 * N_IDS);
    cr_assert_eq(f.dbs, 5, "the rows of h and big, h's history, the change feed, meta");
    store_stats_t st;
    cr_assert_eq(store_stat(s, &st), 0);
    cr_assert_eq(st.damaged, 0);
}

Test(verify, a_damaged_row_is_ebadmsg_never_a_value_counted_found_by_verify_and_repaired_by_a_write)
{
    uint8_t key[STORE_MAX_KEY];
    size_t n = encode(7, key);
    raw_edit("fv:h@v1", key, n, flip_last_value_byte, NULL);
    int64_t a;
    cr_assert_eq(read_a(7, false, T0 + 20 * SEC, &a), -EBADMSG);
    cr_assert_eq(a, -1, "no value from a damaged record");
    /* Read again at once: counted, but within the second its log line is not written again
     * (a client looping over a damaged row cannot flood the log). */
    cr_assert_eq(read_a(7, false, T0 + 20 * SEC, &a), -EBADMSG);
    cr_assert_eq(s->damaged_log.unlogged, 1, "the second within a second is counted, not logged");
    cr_assert_eq(read_a(8, false, T0 + 20 * SEC, &a), 0);
    cr_assert_eq(a, 1008, "its neighbours read as ever");
    store_stats_t st;
    cr_assert_eq(store_stat(s, &st), 0);
    cr_assert_eq(st.damaged, 2, "both reads counted");

    /* gc decides nothing on a damaged record's word: it stays, reported, for verify. */
    size_t deleted = 0;
    cr_assert_eq(store_gc(s, T0 + 365 * 86400 * SEC, &deleted), 0);
    cr_assert_eq(store_stat(s, &st), 0);
    cr_assert_geq(st.damaged, 3, "gc met it too");

    found_t f = verify();
    cr_assert_eq(f.damaged, 1);
    cr_assert_str_eq(f.damaged_db, "h@v1");
    cr_assert_eq(f.key_len, n);
    cr_assert_arr_eq(f.key, key, n, "verify names the damaged row's key");
    cr_assert_eq(f.event_ts_us, 0);

    /* A write over it is not merged with what cannot be trusted: the row holds the write. */
    /* (Older than the damaged record's time: no comparison either.) */
    catalog_value_t a77 = th_i64(77);
    apply1(h, STORE_OP_ONLINE, 7, &a77, 1, T0 + 5 * SEC);
    cr_assert_eq(read_a(7, false, T0 + 20 * SEC, &a), 0);
    cr_assert_eq(a, 77);
    catalog_value_t b;
    cr_assert_eq(th_get(s, h, 7, 1, T0 + 20 * SEC, &b, NULL), STORE_STATUS_NULL_VALUE,
                 "the damaged record's other values are not carried over");
    cr_assert_eq(verify().damaged, 0);
}

Test(verify, a_record_found_under_another_key_is_damaged)
{
    /* A sound record of entity 5 stored as entity 6's: it parses, and only the key in its
     * checksum tells it from 6's own. */
    uint8_t k5[STORE_MAX_KEY], k6[STORE_MAX_KEY];
    size_t n5 = encode(5, k5), n6 = encode(6, k6);
    store_close(s);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    txn = raw_begin(&env, 0);
    cr_assert_eq(mdb_dbi_open(txn, "fv:h@v1", 0, &dbi), 0);
    MDB_val k = {n5, k5}, d;
    cr_assert_eq(mdb_get(txn, dbi, &k, &d), 0);
    uint8_t copy[512];
    memcpy(copy, d.mv_data, d.mv_size);
    MDB_val k2 = {n6, k6}, d2 = {d.mv_size, copy};
    cr_assert_eq(mdb_put(txn, dbi, &k2, &d2, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    s = NULL;
    reopen();
    int64_t a;
    cr_assert_eq(read_a(6, false, T0 + 20 * SEC, &a), -EBADMSG);
    cr_assert_eq(read_a(5, false, T0 + 20 * SEC, &a), 0);
    cr_assert_eq(a, 1005);
}

static int count_entity(void *arg, const uint8_t *key, size_t key_len, const store_row_t *row)
{
    (void)key;
    (void)key_len;
    (void)row;
    (*(int *)arg)++;
    return 0;
}

Test(verify, a_damaged_history_entry_fails_its_reads_and_the_scan_not_the_others)
{
    uint8_t key[STORE_MAX_KEY];
    size_t n = encode(3, key);
    store__hkey_put_ts(key + n, T0 + 10 * SEC);
    raw_edit("h:h@v1", key, n + STORE__HKEY_TS, flip_last_value_byte, NULL);
    int64_t a;
    cr_assert_eq(read_a(3, true, T0 + 20 * SEC, &a), -EBADMSG);
    cr_assert_eq(read_a(3, true, T0 + 5 * SEC, &a), 0);
    cr_assert_eq(a, 3, "the entry before it is sound");
    cr_assert_eq(read_a(4, true, T0 + 20 * SEC, &a), 0);
    cr_assert_eq(a, 1004);
    cr_assert_eq(read_a(3, false, T0 + 20 * SEC, &a), 0, "the online row is its own record");
    cr_assert_eq(a, 1003);

    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    int seen = 0;
    cr_assert_eq(store_history_scan(r, h, T0 + 20 * SEC, NULL, 0, count_entity, &seen), -EBADMSG,
                 "a scan (load_batch) stops at it rather than leave the entity out silently");
    cr_assert_eq(seen, 2, "entities 1 and 2, before it");
    store_read_end(r);
    store_reader_free(r);

    found_t f = verify();
    cr_assert_eq(f.damaged, 1);
    cr_assert_str_eq(f.damaged_db, "history h@v1");
    cr_assert_eq(f.key_len, n, "the entity's key");
    cr_assert_eq(f.event_ts_us, T0 + 10 * SEC, "and the entry's time");
}

/* Format 2 stored no checksums: every record without its last 8 bytes, format byte 1. */
static void strip(uint8_t *val, size_t *len, void *arg)
{
    (void)arg;
    val[0] = 1;
    *len -= STORE__REC_TRAILER;
}

static void downgrade_all(void)
{
    store_close(s);
    s = NULL;
    MDB_env *env;
    MDB_txn *txn;
    txn = raw_begin(&env, 0);
    const char *dbs[] = {"fv:h@v1", "h:h@v1", "fv:big@v1"};
    for (int i = 0; i < 3; i++) {
        MDB_dbi dbi;
        MDB_cursor *cur;
        cr_assert_eq(mdb_dbi_open(txn, dbs[i], 0, &dbi), 0);
        cr_assert_eq(mdb_cursor_open(txn, dbi, &cur), 0);
        MDB_val k, d;
        for (int rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
            static uint8_t buf[16384];
            uint8_t kb[STORE_MAX_KEY];
            size_t len = d.mv_size, klen = k.mv_size;
            memcpy(buf, d.mv_data, len);
            memcpy(kb, k.mv_data, klen);
            strip(buf, &len, NULL);
            MDB_val nk = {klen, kb}, nd = {len, buf};
            cr_assert_eq(mdb_cursor_put(cur, &nk, &nd, MDB_CURRENT), 0);
            /* A value of another size is a delete and an insert: back to where it went. */
            nk = (MDB_val){klen, kb};
            cr_assert_eq(mdb_cursor_get(cur, &nk, &d, MDB_SET_KEY), 0);
        }
        mdb_cursor_close(cur);
    }
    MDB_dbi meta;
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    uint8_t v[4] = {2, 0, 0, 0};
    MDB_val k = {6, "format"}, d = {4, v};
    cr_assert_eq(mdb_put(txn, meta, &k, &d, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static uint32_t recorded_format(void)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    txn = raw_begin(&env, MDB_RDONLY);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val k = {6, "format"}, d;
    cr_assert_eq(mdb_get(txn, meta, &k, &d), 0);
    uint32_t v = store__le32(d.mv_data);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return v;
}

/* A process of its own holding a read slot on the store (as an older fstore serving it does)
 * until told to go. Returns its pid; *go: write a byte to let it exit. */
static pid_t other_reader(int *go)
{
    int ready[2], wait_fd[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(wait_fd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* Its own ends only: when the test goes, the read below ends (no writer is left). */
        close(ready[0]);
        close(wait_fd[1]);
        MDB_env *env;
        MDB_txn *txn;
        char b = 0;
        if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 16) != 0 ||
            mdb_env_open(env, dir, MDB_NOTLS, 0644) != 0 ||
            mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
            _exit(1);
        mdb_txn_reset(txn); /* idle, its slot kept: a server between requests */
        if (write(ready[1], &b, 1) != 1 || read(wait_fd[0], &b, 1) < 0)
            _exit(1);
        _exit(0);
    }
    char b;
    cr_assert_eq(read(ready[0], &b, 1), 1);
    close(ready[0]);
    close(ready[1]);
    close(wait_fd[0]);
    *go = wait_fd[1];
    return pid;
}

/* Rows of "big", each a blob of n bytes (id repeated), past LMDB's overflow-page size when large.
 */
static void put_blob(int64_t id, size_t n)
{
    static uint8_t blob[12000];
    cr_assert_leq(n, sizeof blob);
    memset(blob, (int)(id & 0x7f), n);
    catalog_value_t v = {.type = CATALOG_DTYPE_BYTES, .u.bytes = {blob, n}};
    apply1(th_view(cat, "big", 1), STORE_OP_UPSERT, id, &v, 1, T0);
}

Test(verify, a_store_written_before_checksums_is_upgraded_when_opened_for_writing)
{
    /* Enough rows for many pages, and values on overflow pages (a longer value moves). */
    for (int64_t id = N_IDS + 1; id <= 3000; id++)
        put2(id, id, id, T0);
    for (int64_t id = 1; id <= 40; id++)
        put_blob(id, id % 4 == 0 ? 9000 + (size_t)id : 100 + (size_t)id);
    downgrade_all();
    int rc, go;
    pid_t older = other_reader(&go);
    store_t *busy = open_store(false, &rc);
    cr_assert_eq(rc, -EBUSY, "another process has it open: no upgrade under its feet");
    cr_assert_null(busy);
    cr_assert_eq(write(go, "x", 1), 1);
    int status;
    cr_assert_eq(waitpid(older, &status, 0), older);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(go);
    store_t *ro = open_store(true, &rc);
    cr_assert_eq(rc, -ENOEXEC, "read-only, records without checksums are refused, not misread");
    cr_assert_null(ro);
    s = open_store(false, &rc);
    cr_assert_eq(rc, 0, "%s", strerror(-rc));
    cr_assert_eq(recorded_format(), STORE_FORMAT_VERSION);
    found_t f = verify();
    cr_assert_eq(f.damaged, 0, "every record sealed (%llu damaged, the last in %s)",
                 (unsigned long long)f.damaged, f.damaged_db);
    cr_assert_eq(f.rows, 3000);
    cr_assert_eq(f.history, 2 * N_IDS + 3000 - N_IDS);
    for (int64_t id = 1; id <= N_IDS; id++) {
        int64_t a;
        cr_assert_eq(read_a(id, false, T0 + 20 * SEC, &a), 0);
        cr_assert_eq(a, id + 1000);
        cr_assert_eq(read_a(id, true, T0 + 5 * SEC, &a), 0);
        cr_assert_eq(a, id);
    }
    for (int64_t id = N_IDS + 1; id <= 3000; id += 97) {
        int64_t a;
        cr_assert_eq(read_a(id, false, T0, &a), 0);
        cr_assert_eq(a, id);
    }
    for (int64_t id = 1; id <= 40; id++) {
        catalog_value_t blob;
        cr_assert_eq(th_get(s, th_view(cat, "big", 1), id, 0, T0, &blob, NULL),
                     STORE_STATUS_PRESENT);
        size_t n = id % 4 == 0 ? 9000 + (size_t)id : 100 + (size_t)id;
        cr_assert_eq(blob.u.bytes.len, n, "blob %lld", (long long)id);
        cr_assert_eq(blob.u.bytes.data[n - 1], (uint8_t)(id & 0x7f));
    }
    /* Opened again: nothing left to upgrade, the same content. */
    reopen();
    cr_assert_eq(verify().damaged, 0);
}

static void collect_names(void *arg, const store_verify_db_t *db)
{
    char *names = arg;
    size_t n = strlen(names);
    snprintf(names + n, 512 - n, "%s;", db->name);
}

/* A named database that is not fstore's (put there by another tool) is neither walked nor
 * reported, and costs the walk of ours nothing. */
Test(verify, a_database_not_of_ours_is_passed_over)
{
    MDB_txn *txn = NULL;
    cr_assert_eq(mdb_txn_begin(s->env, NULL, 0, &txn), 0);
    MDB_dbi other;
    /* Its name sorts before all of ours: a walk that stopped at it would miss them. */
    cr_assert_eq(mdb_dbi_open(txn, "a_foreign_db", MDB_CREATE, &other), 0);
    MDB_val k = {3, "key"}, d = {5, "value"};
    cr_assert_eq(mdb_put(txn, other, &k, &d, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    reopen();
    char names[512] = "";
    cr_assert_eq(store_verify(s, NULL, collect_names, names), 0);
    cr_assert_str_eq(names, "changes;big@v1;h@v1;history h@v1;meta;"); /* LMDB's name order */
}
