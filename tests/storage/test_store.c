/* tests/storage/test_store.c - open, reopen, format versions, snapshots and crash safety
 * (storage/store.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/store_int.h"
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

TestSuite(store, .init = setup, .fini = teardown);

Test(store, sync_full_lets_lmdb_order_data_before_meta_and_sync_none_never_syncs)
{
    /* MDB_NOSYNC under sync=full would flush data and meta pages in one unordered fsync: a power
     * loss could keep a meta page whose pages were lost. MDB_NOMETASYNC keeps LMDB's own order
     * (data synced, then meta written) and leaves the meta fsync to the writer. */
    store_t *s = th_open(dir, 0, STORE_SYNC_FULL);
    unsigned flags = 0;
    cr_assert_eq(mdb_env_get_flags(s->env, &flags), 0);
    cr_assert(flags & MDB_NOMETASYNC, "flags %#x", flags);
    cr_assert_not(flags & MDB_NOSYNC, "flags %#x", flags);
    store_close(s);

    s = th_open(dir, 0, STORE_SYNC_NONE);
    cr_assert_eq(mdb_env_get_flags(s->env, &flags), 0);
    cr_assert(flags & MDB_NOSYNC, "flags %#x", flags);
    store_close(s);
}

Test(store, reopening_keeps_data_catalog_and_position)
{
    store_t *s = th_open_applied(dir, cat);
    catalog_value_t key = th_i64(3), val = th_f32(0.75f);
    const catalog_value_t *keys[] = {&key}, *vals[] = {&val};
    uint32_t idx = 0;
    store_batch_t b = {.view = fv,
                       .n_rows = 1,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = &idx,
                       .values = vals};
    cr_assert_eq(store_apply(s, &b, 1, 41, NULL), 0);
    store_close(s);

    s = th_open(dir, 0, STORE_SYNC_FULL);
    catalog_t *applied = NULL;
    cr_assert_eq(store_applied_catalog(s, &applied), 0);
    /* Read through the catalog the store recorded, as a restarted server would. */
    catalog_value_t out;
    cr_assert_eq(th_get(s, th_view(applied, "fv", 1), 3, 0, 0, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_float_eq(out.u.f32, 0.75f, 1e-6);
    uint64_t pos;
    cr_assert_eq(store_last_position(s, &pos), 0);
    cr_assert_eq(pos, 41);
    catalog_unref(applied);
    store_close(s);
}

Test(store, a_new_store_has_no_catalog)
{
    store_t *s = th_open(dir, 0, STORE_SYNC_FULL);
    catalog_t *c = NULL;
    cr_assert_eq(store_applied_catalog(s, &c), -ENOENT);
    store_close(s);
}

Test(store, read_only_opening_of_an_empty_directory_is_enoent)
{
    store_options_t o = {.dir = dir, .read_only = true};
    store_t *s = NULL;
    cr_assert_eq(store_open(&o, &s), -ENOENT);
    cr_assert_null(s);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/missing", dir);
    o.dir = sub;
    cr_assert_eq(store_open(&o, &s), -ENOENT);
}

/* Records format version `version` behind the store's back; returns the one it replaced. */
static uint32_t set_format(uint32_t version)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val k = {6, "format"}, d;
    cr_assert_eq(mdb_get(txn, meta, &k, &d), 0);
    uint32_t was;
    memcpy(&was, d.mv_data, 4);
    uint8_t v[4] = {(uint8_t)version, 0, 0, 0};
    d = (MDB_val){4, v};
    cr_assert_eq(mdb_put(txn, meta, &k, &d, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    return was;
}

Test(store, a_store_of_format_1_is_upgraded_so_older_fstores_refuse_its_tombstones)
{
    store_close(th_open(dir, 0, STORE_SYNC_FULL));
    cr_assert_eq(set_format(1), STORE_FORMAT_VERSION);
    store_close(th_open(dir, 0, STORE_SYNC_FULL));
    cr_assert_eq(set_format(1), STORE_FORMAT_VERSION,
                 "opening a version 1 store for writes records the current version");
}

Test(store, a_store_from_a_newer_fstore_is_eproto)
{
    store_close(th_open(dir, 0, STORE_SYNC_FULL));
    set_format(STORE_FORMAT_VERSION + 1);

    store_options_t o = {.dir = dir};
    store_t *s = NULL;
    cr_assert_eq(store_open(&o, &s), -EPROTO);
    o.read_only = true;
    cr_assert_eq(store_open(&o, &s), -EPROTO);
}

Test(store, a_snapshot_is_a_compact_data_directory_with_everything)
{
    store_t *s = th_open_applied(dir, cat);
    for (int64_t id = 0; id < 500; id++)
        cr_assert_eq(th_put(s, fv, id, 1, th_i64(id * 2), 1), 0);
    catalog_value_t ids[250];
    for (int i = 0; i < 250; i++)
        ids[i] = th_i64(i);
    const catalog_value_t *keys[] = {ids};
    store_batch_t del = {.view = fv, .op = STORE_OP_DELETE, .n_rows = 250, .keys = keys};
    cr_assert_eq(store_apply(s, &del, 1, 7, NULL), 0);

    char out[512];
    snprintf(out, sizeof out, "%s-snap", dir);
    cr_assert_eq(store_snapshot(s, out), 0);
    cr_assert_eq(store_snapshot(s, out), -EEXIST, "a snapshot never overwrites");
    store_close(s);

    store_options_t o = {.dir = out, .read_only = true};
    store_t *snap = NULL;
    cr_assert_eq(store_open(&o, &snap), 0);
    cr_assert_eq(th_rows(snap, fv), 250);
    catalog_value_t v;
    cr_assert_eq(th_get(snap, fv, 499, 1, 0, &v, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(v.u.i64, 998);
    cr_assert_eq(th_get(snap, fv, 10, 1, 0, &v, NULL), STORE_STATUS_NOT_FOUND);
    uint64_t pos;
    cr_assert_eq(store_last_position(snap, &pos), 0);
    cr_assert_eq(pos, 7);
    catalog_t *c = NULL;
    cr_assert_eq(store_applied_catalog(snap, &c), 0);
    catalog_unref(c);
    store_close(snap);
    th_rmrf(out);
}

/* Map growth by another process ------------------------------------------------------------- */

enum { GROW_ROWS = 8000, GROW_BATCH = 500 };

/* The child: once told to on go_fd, opens the store at its recorded 1 MiB map (its own
 * environment: it was forked before the parent opened one), writes GROW_ROWS rows with a
 * 300-byte label each, which makes it double its map twice, and exits 0. */
static void grow_child(const char *d, int go_fd)
{
    char b;
    if (read(go_fd, &b, 1) != 1)
        _exit(2);
    store_t *s = NULL;
    store_options_t o = {.dir = d, .map_size = 1 << 20, .sync = STORE_SYNC_NONE};
    if (store_open(&o, &s) != 0)
        _exit(3);
    char label[301];
    memset(label, 'x', 300);
    label[300] = '\0';
    for (int64_t base = 0; base < GROW_ROWS; base += GROW_BATCH) {
        catalog_value_t ids[GROW_BATCH], vals[GROW_BATCH];
        for (int i = 0; i < GROW_BATCH; i++) {
            ids[i] = th_i64(base + i);
            vals[i] = th_str(label);
        }
        const catalog_value_t *keys[] = {ids}, *cols[] = {vals};
        uint32_t idx = 2;
        store_batch_t batch = {.view = fv,
                               .n_rows = GROW_BATCH,
                               .keys = keys,
                               .n_features = 1,
                               .feature_idx = &idx,
                               .values = cols};
        if (store_apply(s, &batch, 1, 0, NULL) != 0)
            _exit(4);
    }
    store_close(s);
    _exit(0);
}

/* Every way into a transaction (store__txn_begin's callers, one per case). */
enum {
    GROW_RENEW,      /* a reader that already read once: store_read_begin's mdb_txn_renew */
    GROW_NEW_READER, /* store_reader_new */
    GROW_COUNT,      /* store_count_rows: the maintenance getters' read_txn */
    GROW_PLAN,       /* store_plan_catalog */
    GROW_WRITE,      /* store_apply: the writer's group commit */
    GROW_BULK,       /* store_bulk_*: the writer's streamed transaction */
    GROW_CATALOG,    /* store_apply_catalog: an exclusive job */
    GROW_CASES
};

/* One case in a fresh directory: the store is open at a 1 MiB map when another process grows
 * the file past it; the operation must adopt the new size (LMDB's MDB_MAP_RESIZED) and succeed.
 * Only the first transaction after the growth sees it, so each case runs alone. */
static void grow_case(int which)
{
    char d[1024];
    snprintf(d, sizeof d, "%s/grow%d", dir, which);
    store_t *s = th_open(d, 1 << 20, STORE_SYNC_NONE);
    catalog_plan_t plan;
    cr_assert_eq(store_apply_catalog(s, cat, &plan), 0);
    catalog_plan_clear(&plan);
    store_close(s);

    int go[2];
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* No Criterion calls in the child: they talk to the runner, which only knows us. */
        close(go[1]);
        grow_child(d, go[0]);
    }
    close(go[0]);
    s = th_open(d, 1 << 20, STORE_SYNC_FULL);
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    store_read_end(r);
    store_stats_t before;
    cr_assert_eq(store_stat(s, &before), 0);
    cr_assert_eq(before.map_size, (size_t)1 << 20);
    cr_assert_eq(write(go[1], "g", 1), 1);
    close(go[1]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: wait status %d", status);

    int rc = 0;
    size_t rows = 0;
    store_reader_t *r2 = NULL;
    store_bulk_t *bulk = NULL;
    switch (which) {
    case GROW_RENEW:
        rc = store_read_begin(r);
        if (rc == 0)
            store_read_end(r);
        break;
    case GROW_NEW_READER:
        rc = store_reader_new(s, &r2);
        store_reader_free(r2);
        break;
    case GROW_COUNT:
        rc = store_count_rows(s, fv, &rows);
        cr_assert_eq(rows, (size_t)GROW_ROWS);
        break;
    case GROW_PLAN:
        rc = store_plan_catalog(s, cat, &plan);
        catalog_plan_clear(&plan);
        break;
    case GROW_WRITE:
        rc = th_put(s, fv, GROW_ROWS, 1, th_i64(7), 0);
        break;
    case GROW_BULK: {
        rc = store_bulk_begin(s, &bulk);
        cr_assert_eq(rc, 0);
        catalog_value_t id = th_i64(GROW_ROWS), val = th_i64(7);
        const catalog_value_t *keys[] = {&id}, *cols[] = {&val};
        uint32_t idx = 1;
        store_batch_t batch = {.view = fv,
                               .n_rows = 1,
                               .keys = keys,
                               .n_features = 1,
                               .feature_idx = &idx,
                               .values = cols};
        store_apply_result_t res;
        rc = store_bulk_add(bulk, &batch, 1, &res);
        if (rc == 0)
            rc = store_bulk_commit(bulk, &res);
        store_bulk_free(bulk);
        break;
    }
    case GROW_CATALOG:
        rc = store_apply_catalog(s, cat, &plan);
        catalog_plan_clear(&plan);
        break;
    }
    cr_assert_eq(rc, 0, "case %d: %d", which, rc);
    /* store_stat reads the size before its own transaction: what the case itself adopted. */
    store_stats_t after;
    cr_assert_eq(store_stat(s, &after), 0);
    cr_assert_gt(after.map_size, before.map_size, "case %d", which);
    /* And the data is whole. */
    cr_assert_eq(th_rows(s, fv), (size_t)GROW_ROWS + (which == GROW_WRITE || which == GROW_BULK));
    store_reader_free(r);
    store_close(s);
}

/* Another process grows the map while this one has the store open: every way into a transaction
 * adopts the new size instead of failing (store_plan_catalog used to fail). */
Test(store, a_map_grown_by_another_process_is_adopted_by_every_way_into_a_transaction)
{
    for (int which = 0; which < GROW_CASES; which++)
        grow_case(which);
}

/* Crash safety ------------------------------------------------------------------------------ */

/* The child: writes batches (16 rows each, ids batch*16 + i) and reports each acknowledged batch
 * id on the pipe, until killed. */
static void crash_child(int fd, store_sync_t sync)
{
    store_t *s = NULL;
    store_options_t o = {.dir = dir, .sync = sync};
    if (store_open(&o, &s) != 0)
        _exit(3);
    catalog_t *c = NULL;
    if (store_applied_catalog(s, &c) != 0)
        _exit(4);
    const catalog_view_t *v = NULL;
    catalog_find_view(c, "fv", 1, &v);
    for (uint32_t batch = 0;; batch++) {
        catalog_value_t ids[16], vals[16];
        for (int i = 0; i < 16; i++) {
            ids[i] = th_i64((int64_t)batch * 16 + i);
            vals[i] = th_i64(batch);
        }
        const catalog_value_t *keys[] = {ids}, *cols[] = {vals};
        uint32_t idx = 1;
        store_batch_t b = {.view = v,
                           .n_rows = 16,
                           .keys = keys,
                           .n_features = 1,
                           .feature_idx = &idx,
                           .values = cols};
        if (store_apply(s, &b, 1, 0, NULL) != 0)
            _exit(5);
        if (write(fd, &batch, sizeof batch) != sizeof batch)
            _exit(6);
    }
}

static void crash_test(store_sync_t sync)
{
    store_close(th_open_applied(dir, cat));
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* No Criterion calls in the child: they talk to the runner, which only knows us. */
        close(p[0]);
        crash_child(p[1], sync);
    }
    cr_assert_neq(pid, -1);
    close(p[1]);
    uint32_t acked = 0, got;
    bool any = false;
    /* Let it acknowledge a few hundred batches, then kill it mid-stream. */
    while (acked < 300 && read(p[0], &got, sizeof got) == sizeof got) {
        acked = got;
        any = true;
    }
    kill(pid, SIGKILL);
    /* Acknowledgements already in the pipe count too. */
    while (read(p[0], &got, sizeof got) == sizeof got) {
        acked = got;
        any = true;
    }
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child exited %d",
              WEXITSTATUS(status));
    cr_assert(any, "the child acknowledged nothing");

    store_t *s = th_open(dir, 0, STORE_SYNC_FULL);
    for (uint32_t batch = 0; batch <= acked; batch++) {
        for (int i = 0; i < 16; i += 5) {
            catalog_value_t out;
            store_status_t st = th_get(s, fv, (int64_t)batch * 16 + i, 1, 0, &out, NULL);
            cr_assert_eq(st, STORE_STATUS_PRESENT, "acknowledged batch %u lost", batch);
            cr_assert_eq(out.u.i64, batch);
        }
    }
    size_t rows = th_rows(s, fv);
    cr_assert_geq(rows, (size_t)(acked + 1) * 16);
    cr_assert_eq(rows % 16, 0, "a batch was half written");
    store_close(s);
}

Test(store, sigkill_mid_load_loses_no_acknowledged_batch_with_sync_full, .timeout = 120)
{
    crash_test(STORE_SYNC_FULL);
}

Test(store, sigkill_mid_load_loses_no_acknowledged_batch_with_sync_none, .timeout = 120)
{
    crash_test(STORE_SYNC_NONE);
}

/* Writes STORE_OPEN_MARKER with another boot's id, as a machine crash would leave it. */
static void fake_crash_marker(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, STORE_OPEN_MARKER);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("00000000-0000-0000-0000-000000000000\n", f);
    fclose(f);
}

Test(store, a_log_replica_left_open_by_a_machine_crash_is_verified_and_refused_when_damaged)
{
    store_options_t o = {.dir = dir, .sync = STORE_SYNC_LOG};
    store_t *s = NULL;
    cr_assert_eq(store_open(&o, &s), 0);
    cr_assert_eq(store_apply_catalog(s, cat, NULL), 0);
    for (int64_t id = 0; id < 3000; id++)
        cr_assert_eq(th_put(s, fv, id, 2, th_str("a label long enough to fill pages"), 1), 0);
    char marker[512];
    snprintf(marker, sizeof marker, "%s/%s", dir, STORE_OPEN_MARKER);
    cr_assert_eq(access(marker, F_OK), 0, "the marker is there while the store is open");
    cr_assert_eq(store_flush(s), 0);
    store_close(s);
    cr_assert_neq(access(marker, F_OK), 0, "a clean close removes it");

    /* A crash of another boot, the file intact: verified, then served. */
    fake_crash_marker();
    cr_assert_eq(store_open(&o, &s), 0);
    cr_assert_eq(th_rows(s, fv), 3000);
    store_close(s);

    /* The same with pages torn: refused. */
    char data[512];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    int fd = open(data, O_RDWR);
    cr_assert_geq(fd, 0);
    struct stat st;
    fstat(fd, &st);
    uint8_t junk[4096];
    memset(junk, 0x5a, sizeof junk);
    for (off_t off = 3 * 4096; off + 4096 <= st.st_size - 2 * 4096; off += 4096)
        cr_assert_eq(pwrite(fd, junk, sizeof junk, off), (ssize_t)sizeof junk);
    close(fd);
    fake_crash_marker();
    int rc = store_open(&o, &s);
    cr_assert_eq(rc, -EUCLEAN, "%d %s", rc, strerror(-rc));
}

Test(store, a_truncated_data_file_is_refused_by_name_not_a_sigbus)
{
    store_t *s = th_open_applied(dir, cat);
    /* Enough rows for many pages. */
    for (int64_t base = 0; base < 20000; base += 1000) {
        catalog_value_t keyv[1000], valv[1000];
        const catalog_value_t *keys[1000], *vals[1000];
        for (int i = 0; i < 1000; i++) {
            keyv[i] = th_i64(base + i);
            valv[i] = th_f32(0.5f);
            keys[i] = &keyv[i];
            vals[i] = &valv[i];
        }
        uint32_t idx = 0;
        store_batch_t b = {.view = fv,
                           .n_rows = 1000,
                           .keys = keys,
                           .n_features = 1,
                           .feature_idx = &idx,
                           .values = vals};
        cr_assert_eq(store_apply(s, &b, 1, (uint64_t)base + 1, NULL), 0);
    }
    store_close(s);
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_gt(st.st_size, 64 * 4096);
    cr_assert_eq(truncate(path, st.st_size / 2), 0);
    store_options_t o = {.dir = dir, .sync = STORE_SYNC_FULL};
    store_t *t = NULL;
    cr_assert_eq(store_open(&o, &t), -EUCLEAN);
    cr_assert_null(t);
    o.read_only = true;
    cr_assert_eq(store_open(&o, &t), -EUCLEAN, "read-only opens (fstore get) too");
}

/* What fstore's commands print for the store's own errors: what happened and what to do. */
Test(store, store_errors_read_as_what_to_do)
{
    cr_assert(strstr(store_strerror(-EBADMSG), "run fstore verify") != NULL);
    cr_assert(strstr(store_strerror(-ENOEXEC), "upgrades it once") != NULL);
    cr_assert(strstr(store_strerror(-EPROTO), "newer fstore") != NULL);
    cr_assert(strstr(store_strerror(-EBUSY), "stop that process first") != NULL);
    cr_assert(strstr(store_strerror(-EUCLEAN), "restore it from a snapshot") != NULL);
    cr_assert_str_eq(store_strerror(-EIO), strerror(EIO));
    cr_assert_str_eq(store_strerror(-ENOSPC), strerror(ENOSPC));
}

/* LMDB's codes as the errnos the header promises (what a client's status is chosen from): a
 * full map is -ENOSPC (the writer grows it), no free reader slot -EAGAIN (retry), a value or
 * transaction too big -E2BIG, another format -EPROTO, a damaged page -EIO, and a system error
 * passes through. */
Test(store, lmdb_codes_map_to_the_errnos_the_header_promises)
{
    static const struct {
        int mdb, want;
    } map[] = {
        {MDB_SUCCESS, 0},
        {MDB_NOTFOUND, -ENOENT},
        {MDB_KEYEXIST, -EEXIST},
        {MDB_MAP_FULL, -ENOSPC},
        {MDB_DBS_FULL, -EMFILE},
        {MDB_READERS_FULL, -EAGAIN},
        {MDB_TLS_FULL, -EAGAIN},
        {MDB_MAP_RESIZED, -EAGAIN},
        {MDB_TXN_FULL, -E2BIG},
        {MDB_CURSOR_FULL, -E2BIG},
        {MDB_PAGE_FULL, -E2BIG},
        {MDB_BAD_VALSIZE, -EINVAL},
        {MDB_INCOMPATIBLE, -EPROTO},
        {MDB_VERSION_MISMATCH, -EPROTO},
        {MDB_INVALID, -EPROTO},
        {MDB_PAGE_NOTFOUND, -EIO},
        {MDB_CORRUPTED, -EIO},
        {MDB_PANIC, -EIO},
        {MDB_BAD_RSLOT, -EIO},
        {MDB_BAD_TXN, -EIO},
        {MDB_BAD_DBI, -EIO},
        {ENOSPC, -ENOSPC},
        {EACCES, -EACCES},
        {-30000, -EIO}, /* a code this LMDB does not have */
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        cr_assert_eq(store__errno(map[i].mdb), map[i].want, "LMDB %d", map[i].mdb);
}
