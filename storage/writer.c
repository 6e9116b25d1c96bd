/* storage/writer.c - the single writer thread: group commit, LWW merges, map growth. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "storage/store_int.h"

/*
 * Every write transaction of the store runs on this thread. Callers validate and encode in their
 * own threads (apply.c) and queue a job: store_apply() then sleeps on it, store_apply_async()
 * returns and its job (on the heap) is completed by a callback. The writer takes every apply job
 * queued at that moment, commits them in one transaction, fsyncs (sync=full) and only then wakes
 * the sleepers and runs the callbacks: while one group is being fsynced the next one queues up,
 * so under load the fsync cost is shared by as many callers as arrive during it, without any
 * timer. Asynchronous callers matter for that: a caller that parks a thread per call can only
 * have as many calls in a group as it has threads.
 *
 * Jobs in one group stay independent where it matters: a stale replication position (-EALREADY)
 * or a view torn down since validation (-ENOENT) is checked before any of that job's rows are
 * written, and validation is already done, so what can still fail is I/O-level (the commit, the
 * fsync, a malformed page) and it fails the whole group: nothing of that transaction is visible.
 *
 * A bulk load is the exception to "queue and sleep": its job (a stream, below) holds the writer
 * and one transaction from its first part until its caller commits or aborts, taking parts as
 * they come; other jobs queue behind it.
 *
 * MDB_MAP_FULL never reaches a caller: the transaction is aborted, the map doubled (see
 * store.c), and the whole group (or stream, from its first part) replayed from its encoded rows
 * or records, which the writer still holds.
 * Under STORE_SYNC_FULL the environment runs with MDB_NOMETASYNC (see store_open()): each commit
 * fdatasyncs its data pages before writing the meta page, and the mdb_env_sync() after it makes
 * that meta page durable before anyone of the group is acknowledged. Because commits only ever
 * happen here, the fsyncs of commit N also precede transaction N+1.
 */

#define MAX_GROUP_JOBS 1024
#define RETRY 1 /* internal: the transaction ran out of map and must be replayed */

typedef enum job_kind {
    JOB_APPLY,
    JOB_STREAM,
    JOB_FN,
} job_kind_t;

/* A job is one of three kinds, and holds only what its kind needs. */
struct store__job {
    store__job_t *next;
    job_kind_t kind;
    int rc;
    bool done;
    pthread_cond_t cv;
    size_t written, stale; /* JOB_APPLY and JOB_STREAM: the rows' outcome */
    union {
        struct {
            store__enc_t *enc;
            uint64_t log_position;
            /* Asynchronous jobs: the callback, and the encoded rows the job owns (enc points
             * at own). */
            store_apply_done_fn done_fn;
            void *done_arg;
            store__enc_t own;
        } apply;
        struct {
            store__stream_t *stream;
        } stream;
        struct {
            store__job_fn fn;
            void *arg;
            bool exclusive;
            void (*after)(store_t *s, int rc, void *arg);
        } fn;
    } u;
};

static void finish_async(store_t *s, store__job_t *job);

static int64_t write_time(store_t *s)
{
    int64_t now = store_now_us();
    if (now <= s->last_created_us)
        now = s->last_created_us + 1;
    return now;
}

/* Commits txn (consumed). Returns: 0, RETRY on map full, or a negative errno. */
static int commit(MDB_txn *txn)
{
    int rc = store__commit(txn);
    return rc == MDB_MAP_FULL ? RETRY : store__errno(rc);
}

static int lmdb_rc(int rc)
{
    return rc == MDB_MAP_FULL ? RETRY : store__errno(rc);
}

/* Grows the map ahead of need when it is three quarters full, so large loads rarely pay for a
 * replayed transaction. The writer holds no lock here. */
static void grow_early(store_t *s)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
        return;
    size_t used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    if (used > info.me_mapsize / 4 * 3)
        store__map_grow(s, true);
}

/* ------------------------------------------------------------------------------------------ */
/* Rows                                                                                        */

typedef struct apply_ctx {
    store_t *s;
    MDB_txn *txn;
    int64_t created;
    store__buf_t a, b; /* record scratch */
    /* The change feed's next position (store_changes()): a replica's rows are numbered by their
     * log position and index in the message; a single node's by its own counter, seq, read in
     * the transaction (change_seq_get(): seq0) and committed with it. */
    uint64_t log_pos;
    uint32_t log_idx;
    uint64_t seq, seq0;
    /* The transaction's cursor on the history database last written (hdbi), and that
     * database's last key: rows past it are appended (MDB_APPEND), as a backfill sorted by
     * entity and time is. Closed before the transaction ends (history_cursor_close()). */
    MDB_cursor *hcur;
    MDB_dbi hdbi;
    bool has_hlast;
    uint32_t hlast_len;
    uint8_t hlast[STORE_MAX_KEY];
} apply_ctx_t;

static void history_cursor_close(apply_ctx_t *c)
{
    if (c->hcur != NULL)
        mdb_cursor_close(c->hcur);
    c->hcur = NULL;
    c->hdbi = 0;
}

/* c->hcur on hdbi, with its last key. Returns: 0, RETRY, negative errno. */
static int history_cursor(apply_ctx_t *c, MDB_dbi hdbi)
{
    if (c->hcur != NULL && c->hdbi == hdbi)
        return 0;
    history_cursor_close(c);
    int rc = lmdb_rc(mdb_cursor_open(c->txn, hdbi, &c->hcur));
    if (rc != 0) {
        c->hcur = NULL;
        return rc;
    }
    c->hdbi = hdbi;
    MDB_val k, d;
    int mrc = mdb_cursor_get(c->hcur, &k, &d, MDB_LAST);
    c->has_hlast = mrc == 0 && k.mv_size <= STORE_MAX_KEY;
    if (c->has_hlast) {
        c->hlast_len = (uint32_t)k.mv_size;
        memcpy(c->hlast, k.mv_data, k.mv_size);
    } else if (mrc != MDB_NOTFOUND) {
        return mrc == 0 ? -EIO : lmdb_rc(mrc);
    }
    return 0;
}

/* Records a history entry in the change feed. Returns: 0, RETRY, negative errno. */
static int change_put(apply_ctx_t *c, const store__view_t *e, const store__row_t *row,
                      const uint8_t *arena)
{
    if (c->s->changes == 0)
        return 0;
    uint8_t k[STORE__CHANGE_KEY];
    if (c->log_pos > 0)
        store__change_key_put(k, c->log_pos, c->log_idx++);
    else
        store__change_key_put(k, ++c->seq, 0);
    size_t vlen = strlen(e->key);
    c->b.len = 0;
    int rc = store__buf_reserve(&c->b, STORE__CHANGE_HEAD + vlen + row->key_len);
    if (rc < 0)
        return rc;
    uint8_t *p = c->b.data;
    p[0] = STORE__CHANGE_FORMAT;
    p[STORE__CHANGE_FLAGS] = row->op == STORE_OP_DELETE ? STORE__REC_TOMBSTONE : 0;
    store__put_le64(p + STORE__CHANGE_EVENT_TS, (uint64_t)row->event_ts_us);
    store__put_le64(p + STORE__CHANGE_WRITE_TS, (uint64_t)c->created);
    p[STORE__CHANGE_VIEW_LEN] = (uint8_t)vlen;
    memcpy(p + STORE__CHANGE_HEAD, e->key, vlen);
    memcpy(p + STORE__CHANGE_HEAD + vlen, arena + row->key_off, row->key_len);
    MDB_val mk = {sizeof k, k}, d = {STORE__CHANGE_HEAD + vlen + row->key_len, c->b.data};
    /* Positions only grow, so entries append; a store whose numbering changed (a single node
     * that became a replica, a replica's log started over after a teardown) puts them in their
     * place instead. */
    int mrc = mdb_put(c->txn, c->s->changes, &mk, &d, MDB_APPEND);
    if (mrc == MDB_KEYEXIST)
        mrc = mdb_put(c->txn, c->s->changes, &mk, &d, 0);
    return lmdb_rc(mrc);
}

/* The change feed's counter as this write transaction finds it: another process writing to the
 * directory (`fstore ingest --data-dir` next to a serve) may have moved it since this one last
 * committed, and LMDB's write transactions are one at a time across processes, so the one in
 * the file is the one to count from (a copy kept in memory would number entries over the other
 * process's). Returns: 0, negative errno. */
static int change_seq_get(apply_ctx_t *c)
{
    c->seq = c->seq0 = 0;
    if (c->s->changes == 0)
        return 0;
    int rc = store__meta_u64(c->txn, c->s->meta, STORE__KEY_CHANGE_SEQ, &c->seq);
    c->seq0 = c->seq;
    return rc;
}

/* Marks the store as written without a log (STORE__KEY_LOCAL_ROWS), in the transaction, the
 * first time this process does so. Returns: 0, negative errno. */
static int local_rows_put(store_t *s, MDB_txn *txn)
{
    if (s->local_rows)
        return 0;
    /* As the other puts of a write: a full map is a retry after it grows. */
    MDB_val k = {strlen(STORE__KEY_LOCAL_ROWS), STORE__KEY_LOCAL_ROWS}, d = {1, "1"};
    return lmdb_rc(mdb_put(txn, s->meta, &k, &d, 0));
}

/* The change feed's counter into meta, with the transaction (when it moved). */
static int change_seq_put(apply_ctx_t *c)
{
    if (c->seq == c->seq0)
        return 0;
    uint8_t b[8];
    store__put_le64(b, c->seq);
    MDB_val k = {strlen(STORE__KEY_CHANGE_SEQ), STORE__KEY_CHANGE_SEQ}, d = {8, b};
    return lmdb_rc(mdb_put(c->txn, c->s->meta, &k, &d, 0));
}

/*
 * Adds a row to its entity's history (hdbi): under (entity key, event time), the row's values
 * merged over the entity's entry before it (the latest one with an earlier time, or the one of
 * the same time, which it replaces), so that each entry holds the whole row as of its time; a
 * delete is a tombstone entry, over which nothing is merged. As online, an upsert as old as a
 * delete does not bring the row back: its entry stays the tombstone.
 * Returns: 0, RETRY, negative errno.
 */
static int history_put(apply_ctx_t *c, const store__view_t *e, const store__row_t *row,
                       const uint8_t *arena)
{
    MDB_dbi hdbi = e->hdbi;
    uint8_t hk[STORE_MAX_KEY];
    if (row->key_len > STORE_MAX_HISTORY_KEY)
        return 0; /* refused at encoding; one from elsewhere (the log) has no history entry */
    memcpy(hk, arena + row->key_off, row->key_len);
    store__hkey_put_ts(hk + row->key_len, row->event_ts_us);
    size_t hlen = row->key_len + STORE__HKEY_TS;
    int rc = history_cursor(c, hdbi);
    if (rc != 0)
        return rc;
    MDB_cursor *cur = c->hcur;
    /* Past the database's last key: appended, after the entry before it (the last one, when
     * it is this entity's). Otherwise the entry before it is looked up. */
    bool append = !c->has_hlast || store__key_order(hk, hlen, c->hlast, c->hlast_len) > 0;
    MDB_val k = {hlen, hk}, d;
    store__rec_t old;
    bool have = false;
    int found;
    if (append) {
        int mrc = c->has_hlast ? mdb_cursor_get(cur, &k, &d, MDB_LAST) : MDB_NOTFOUND;
        if (mrc != 0 && mrc != MDB_NOTFOUND)
            return lmdb_rc(mrc);
        found = mrc == 0 && k.mv_size == hlen && memcmp(k.mv_data, hk, row->key_len) == 0;
    } else {
        uint8_t seek[STORE_MAX_KEY];
        found = store__history_seek(cur, hk, row->key_len, row->event_ts_us, seek, &k, &d);
        if (found < 0)
            return found;
    }
    if (found) {
        /* A damaged entry before this one is passed over (this entry then holds the row's
         * values only): the writer never merges what it cannot trust. */
        if (store__rec_check(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &old) < 0)
            store__rec_damaged(c->s, e->name, e->version, true, k.mv_data, k.mv_size);
        else
            have = !old.tombstone || old.event_ts_us == row->event_ts_us;
    }
    c->b.len = 0;
    if (row->op == STORE_OP_DELETE)
        rc = store__rec_tombstone(row->event_ts_us, c->created, &c->b);
    else if (have && old.tombstone)
        return 0; /* an upsert as old as the delete: no change */
    else
        rc = store__rec_merge(have ? &old : NULL, row, arena, c->created, &c->b);
    if (rc < 0)
        return rc;
    /* The record's event time is the entry's own, whatever the merge took over. */
    store__put_le64(c->b.data + STORE__REC_EVENT_TS, (uint64_t)row->event_ts_us);
    store__rec_seal(hk, hlen, c->b.data, c->b.len);
    k.mv_size = hlen;
    k.mv_data = hk;
    d.mv_size = c->b.len;
    d.mv_data = c->b.data;
    rc = lmdb_rc(mdb_cursor_put(cur, &k, &d, append ? MDB_APPEND : 0));
    if (rc != 0)
        return rc;
    if (append) {
        c->has_hlast = true;
        c->hlast_len = (uint32_t)hlen;
        memcpy(c->hlast, hk, hlen);
    }
    return change_put(c, e, row, arena);
}

/*
 * Applies one row over what the database holds, last write wins by event time: a row older than
 * the stored one (live or deleted) is stale; a tie goes to this, the later, write, except that an
 * upsert must be newer than a tombstone to bring a deleted row back. A delete leaves a tombstone
 * with its event time. Returns: 0, RETRY, negative errno.
 */
static int apply_row(apply_ctx_t *c, const store__view_t *e, const store__row_t *row,
                     const uint8_t *arena, store__job_t *job)
{
    MDB_dbi dbi = e->dbi, hdbi = e->hdbi;
    if (hdbi != 0 && row->op != STORE_OP_ONLINE) {
        int hrc = history_put(c, e, row, arena);
        if (hrc != 0)
            return hrc;
    }
    if (row->op == STORE_OP_HISTORY) {
        /* History only: passed over by a store that keeps none. */
        job->written += hdbi != 0;
        return 0;
    }
    MDB_val k = {row->key_len, (void *)(arena + row->key_off)}, d;
    store__rec_t old;
    bool have = false;
    int rc = mdb_get(c->txn, dbi, &k, &d);
    if (rc == 0) {
        /* A damaged record is replaced by this row's values alone (never merged, never
         * compared): writing a row again is how a damaged one is repaired. */
        have = store__rec_check(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &old) == 0;
        if (!have)
            store__rec_damaged(c->s, e->name, e->version, false, k.mv_data, k.mv_size);
    } else if (rc != MDB_NOTFOUND) {
        return lmdb_rc(rc);
    }
    bool live = have && !old.tombstone;
    if (have &&
        (row->event_ts_us < old.event_ts_us ||
         (old.tombstone && row->op != STORE_OP_DELETE && row->event_ts_us == old.event_ts_us))) {
        job->stale++;
        return 0;
    }
    c->a.len = 0;
    if (row->op == STORE_OP_DELETE)
        rc = store__rec_tombstone(row->event_ts_us, c->created, &c->a);
    else
        rc = store__rec_merge(live ? &old : NULL, row, arena, c->created, &c->a);
    if (rc < 0)
        return rc;
    store__rec_seal(k.mv_data, k.mv_size, c->a.data, c->a.len);
    d.mv_size = c->a.len;
    d.mv_data = c->a.data;
    rc = store__fault(STORE__FAULT_PUT);
    if (rc == 0)
        rc = mdb_put(c->txn, dbi, &k, &d, 0);
    if (rc != 0)
        return lmdb_rc(rc);
    /* A delete counts the rows it removed; deleting an absent row leaves a tombstone only. */
    if (row->op != STORE_OP_DELETE || live)
        job->written++;
    return 0;
}

/* Resolves a job's views to the view table's entries (ents[i]). Returns: 0, or -ENOENT when
 * one was torn down (or torn down and created again) since the job was encoded. */
static int resolve_views(store_t *s, const store__job_t *job, const store__view_t **ents)
{
    for (size_t i = 0; i < job->u.apply.enc->n_views; i++) {
        const store__enc_view_t *ev = &job->u.apply.enc->views[i];
        const store__view_t *e = store__views_find(s->views, ev->name, ev->version);
        if (e == NULL || e->gen != ev->gen)
            return -ENOENT;
        ents[i] = e;
    }
    return 0;
}

/* One attempt at committing a group. Returns: 0, RETRY, or a negative errno for the group. */
static int apply_group(store_t *s, store__job_t *group, apply_ctx_t *c, bool *any)
{
    MDB_txn *txn = NULL;
    const store__view_t **ents = NULL;
    *any = false;
    int rc = store__txn_begin(s, STORE__TXN_WRITE, &txn);
    if (rc < 0)
        return rc;
    c->txn = txn;
    c->created = write_time(s);
    c->s = s;
    rc = change_seq_get(c);
    if (rc < 0) {
        store__txn_end(s, txn, STORE__TXN_ABORT); /* the map lock too */
        return rc;
    }

    uint64_t pos = 0;
    bool pos_dirty = false, local = false;
    MDB_val v;
    rc = store__meta_get(txn, s->meta, STORE__KEY_POSITION, &v);
    if (rc == 0 && v.mv_size == 8)
        pos = store__le64(v.mv_data);
    else if (rc != -ENOENT)
        goto out;

    for (store__job_t *j = group; j != NULL; j = j->next) {
        j->rc = 0;
        j->written = j->stale = 0;
        uint64_t lp = j->u.apply.log_position;
        c->log_pos = lp;
        c->log_idx = 0;
        if (lp > 0 && lp <= pos) {
            j->rc = -EALREADY;
            continue;
        }
        if (lp > 0 && s->log_contiguous && lp != pos + 1) {
            j->rc = -ESPIPE; /* a message between them was lost: nothing may skip it */
            continue;
        }
        size_t nv = j->u.apply.enc->n_views;
        free(ents);
        ents = malloc((nv + 1) * sizeof *ents);
        rc = -ENOMEM;
        if (ents == NULL)
            goto out;
        rc = resolve_views(s, j, ents);
        if (rc == -ENOENT) {
            j->rc = rc;
            /* In a log, a message that cannot apply here is still passed (see log_contiguous). */
            if (lp > 0 && s->log_contiguous) {
                pos = lp;
                pos_dirty = true;
            }
            continue;
        }
        if (rc != 0)
            goto out;
        const uint8_t *arena = j->u.apply.enc->arena.data;
        for (size_t r = 0; r < j->u.apply.enc->n_rows && rc == 0; r++) {
            const store__row_t *row = &j->u.apply.enc->rows[r];
            rc = apply_row(c, ents[row->view], row, arena, j);
        }
        if (rc != 0)
            goto out;
        if (j->u.apply.log_position > 0) {
            pos = j->u.apply.log_position;
            pos_dirty = true;
        } else if (j->u.apply.enc->n_rows > 0) {
            local = true;
        }
        *any = true;
    }
    if (local && (rc = local_rows_put(s, txn)) != 0)
        goto out;
    if (pos_dirty) {
        uint8_t b[8];
        store__put_le64(b, pos);
        MDB_val k = {strlen(STORE__KEY_POSITION), STORE__KEY_POSITION}, d = {8, b};
        rc = lmdb_rc(mdb_put(txn, s->meta, &k, &d, 0));
        if (rc != 0)
            goto out;
    }
    rc = change_seq_put(c);
    if (rc != 0)
        goto out;
    history_cursor_close(c);
    rc = commit(txn);
    txn = NULL;
    if (rc == 0) {
        s->last_created_us = c->created;
        s->local_rows |= local;
    }
out:
    if (txn != NULL)
        history_cursor_close(c);
    store__txn_end(s, txn, STORE__TXN_ABORT);
    free(ents);
    return rc;
}

/* A committed job's rows into its views' counters (rows, newest event time). */
static void count_rows(store_t *s, const store__enc_t *enc)
{
    store__vstat_t *vs[8];
    size_t nv = enc->n_views < 8 ? enc->n_views : 8;
    for (size_t i = 0; i < nv; i++)
        vs[i] = store__vstat(s, enc->views[i].name, enc->views[i].version);
    for (size_t r = 0; r < enc->n_rows; r++) {
        const store__row_t *row = &enc->rows[r];
        store__vstat_t *v = row->view < nv ? vs[row->view]
                                           : store__vstat(s, enc->views[row->view].name,
                                                          enc->views[row->view].version);
        if (v == NULL)
            continue;
        atomic_fetch_add_explicit(&v->rows, 1, memory_order_relaxed);
        int64_t cur = atomic_load_explicit(&v->newest_event_us, memory_order_relaxed);
        if (row->event_ts_us > cur)
            atomic_store_explicit(&v->newest_event_us, row->event_ts_us, memory_order_relaxed);
    }
}

/* Below this much free space on the data directory's filesystem, a failed write is a full
 * disk (LMDB reports one as EIO when the flush or fsync fails, ENOSPC when a write does). */
#define DISK_LOW_BYTES ((uint64_t)4 << 20)

/* Whether the data directory's filesystem is (nearly) full for this process: root may also
 * write the blocks reserved for it. */
static bool disk_low(const store_t *s, uint64_t *free_bytes)
{
    struct statvfs vfs;
    if (statvfs(s->dir, &vfs) < 0)
        return false;
    uint64_t blocks = geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail;
    *free_bytes = blocks * vfs.f_frsize;
    return *free_bytes < DISK_LOW_BYTES;
}

/*
 * A failed commit, named and logged once per failing episode. Returns: -ENOSPC for a full disk;
 * -EFBIG for a map at its largest size (the map growth's -ENOSPC with the disk not full); else
 * rc.
 */
static int write_failed(store_t *s, int rc)
{
    uint64_t free_bytes = 0;
    bool first = !s->disk_full && !s->write_failing;
    if ((rc == -EIO || rc == -ENOSPC) && disk_low(s, &free_bytes)) {
        if (!s->disk_full)
            base_log(BASE_LOG_ERROR, "disk_full", "{s:s, s:I, s:s}", "data_dir", s->dir,
                     "free_bytes", (long long)free_bytes, "note",
                     "writes fail RESOURCE_EXHAUSTED until space is freed; they resume by "
                     "themselves, nothing acknowledged is lost");
        s->disk_full = true;
        return -ENOSPC;
    }
    if (rc == -ENOSPC) {
        rc = -EFBIG;
        if (first)
            base_log(BASE_LOG_ERROR, "store_map_full", "{s:s, s:s}", "data_dir", s->dir, "note",
                     "the store's map is at its largest size: writes fail until rows are "
                     "deleted (fstore gc) or the store is rebuilt");
    } else if (first) {
        base_log(BASE_LOG_ERROR, "store_write_failed", "{s:s, s:s}", "data_dir", s->dir, "error",
                 strerror(-rc));
    }
    s->write_failing = true;
    return rc;
}

/* A commit went through: the end of a failing episode, if one was going on. */
static void write_ok(store_t *s)
{
    if (s->disk_full || s->write_failing)
        base_log(BASE_LOG_INFO, "store_writes_resumed", "{s:s}", "data_dir", s->dir);
    s->disk_full = s->write_failing = false;
}

static void run_apply(store_t *s, store__job_t *group)
{
    apply_ctx_t c = {0};
    bool any = false;
    int rc;
    for (;;) {
        rc = apply_group(s, group, &c, &any);
        if (rc != RETRY)
            break;
        rc = store__map_grow(s, true);
        if (rc < 0)
            break;
    }
    if (rc == 0 && any && s->sync == STORE_SYNC_FULL)
        rc = store__sync(s);
    if (rc < 0) {
        rc = write_failed(s, rc);
        for (store__job_t *j = group; j != NULL; j = j->next)
            j->rc = rc;
    } else {
        if (any)
            write_ok(s);
        uint64_t n = 0;
        for (store__job_t *j = group; j != NULL; j = j->next) {
            n += j->rc == 0;
            if (j->rc == 0)
                count_rows(s, j->u.apply.enc);
        }
        if (any) {
            atomic_fetch_add(&s->commits, 1);
            atomic_fetch_add(&s->batches, n);
        }
        grow_early(s);
    }
    store__buf_free(&c.a);
    store__buf_free(&c.b);
}

static void run_fn(store_t *s, store__job_t *job)
{
    int rc;
    for (;;) {
        MDB_txn *txn = NULL;
        rc = store__txn_begin(
            s, job->u.fn.exclusive ? STORE__TXN_WRITE_EXCLUSIVE : STORE__TXN_WRITE, &txn);
        if (rc < 0)
            break;
        /* Inside a transaction -ENOSPC can only mean the map is full: the disk is only written
         * at commit, and MDB_DBS_FULL translates to -EMFILE. */
        rc = job->u.fn.fn(s, txn, job->u.fn.arg);
        if (rc < 0) {
            mdb_txn_abort(txn);
            rc = rc == -ENOSPC ? RETRY : rc;
        } else {
            rc = commit(txn);
        }
        /* after runs on every attempt that began: a replayed teardown needs its view table
         * rebuilt. */
        if (job->u.fn.after != NULL)
            job->u.fn.after(s, rc == RETRY ? -ENOSPC : rc, job->u.fn.arg);
        store__txn_end(s, NULL, STORE__TXN_ABORT);
        if (rc != RETRY)
            break;
        rc = store__map_grow(s, true);
        if (rc < 0)
            break;
    }
    if (rc == 0 && s->sync == STORE_SYNC_FULL)
        rc = store__sync(s);
    if (rc == 0) {
        write_ok(s);
        atomic_fetch_add(&s->commits, 1);
        grow_early(s);
    } else if (rc == -EIO || rc == -ENOSPC) {
        rc = write_failed(s, rc);
    }
    job->rc = rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Bulk streams                                                                                */

/*
 * A bulk load is one transaction that stays open on this thread while its caller parses: parts
 * arrive in the caller's order and are applied as they come, so the writing overlaps the
 * producing. A part's groups come folded into records; a group whose key sorts after every key
 * its database holds (at the start, or appended since) cannot have a stored row, so its record
 * is appended as it is (MDB_APPEND through one cursor, pages filled in order). Any other group
 * takes the row-by-row path (apply_row(), the store_apply() merge), so the outcome is the same
 * as applying every row in input order: last write wins, stale rows are skipped.
 * Nothing is visible before the commit; an abort or any failure leaves the store as it was.
 */

struct store__stream {
    store_t *s;
    store__job_t job;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    store__part_t *head, *tail; /* every part pushed, kept for a replay */
    bool queued;                /* the job is on the writer's queue */
    bool end, commit;
    int rc; /* a failure that ended the transaction early (sticky) */
    char error[320];
    char bad_field[CATALOG_MAX_NAME];
    store__enc_t spare[2]; /* see store__stream_take_spare() */
    int n_spare;
};

typedef struct stream_view {
    const store__view_t *e;
    MDB_cursor *cur; /* appends; NULL until needed, closed after a row-by-row apply */
    bool has_tail;
    uint32_t tail_len;
    uint8_t tail[STORE_MAX_KEY];
} stream_view_t;

typedef struct stream_txn {
    apply_ctx_t c;
    stream_view_t *views;
    size_t n_views, cap_views;
    uint32_t *map; /* the part's view index -> views[] */
    size_t cap_map;
    bool rows; /* this attempt applied a row (STORE__KEY_LOCAL_ROWS) */
} stream_txn_t;

/* LMDB's default order: memcmp over the common length, then the shorter first. */
/* The stream's entry for view e, with its database's last key. Returns: 0, RETRY, -errno. */
static int stream_view(stream_txn_t *t, const store__view_t *e, uint32_t *out)
{
    for (size_t i = 0; i < t->n_views; i++) {
        if (t->views[i].e == e) {
            *out = (uint32_t)i;
            return 0;
        }
    }
    if (store__grow((void **)&t->views, &t->cap_views, t->n_views, sizeof *t->views, 4) < 0)
        return -ENOMEM;
    stream_view_t *v = &t->views[t->n_views];
    memset(v, 0, offsetof(stream_view_t, tail));
    v->e = e;
    int rc = lmdb_rc(mdb_cursor_open(t->c.txn, e->dbi, &v->cur));
    if (rc != 0)
        return rc;
    MDB_val k, d;
    rc = mdb_cursor_get(v->cur, &k, &d, MDB_LAST);
    if (rc == 0) {
        if (k.mv_size > STORE_MAX_KEY) {
            mdb_cursor_close(v->cur);
            return -EIO;
        }
        v->has_tail = true;
        v->tail_len = (uint32_t)k.mv_size;
        memcpy(v->tail, k.mv_data, k.mv_size);
    } else if (rc != MDB_NOTFOUND) {
        mdb_cursor_close(v->cur);
        return lmdb_rc(rc);
    }
    *out = (uint32_t)t->n_views++;
    return 0;
}

static void stream_txn_reset(stream_txn_t *t)
{
    history_cursor_close(&t->c);
    for (size_t i = 0; i < t->n_views; i++) {
        if (t->views[i].cur != NULL)
            mdb_cursor_close(t->views[i].cur);
    }
    t->n_views = 0;
}

static int stream_fail(store__stream_t *st, int rc, const store__enc_view_t *v)
{
    if (rc == -ENOENT && v != NULL) {
        size_t n = strnlen(v->name, sizeof st->bad_field - 1);
        memcpy(st->bad_field, v->name, n);
        st->bad_field[n] = '\0';
        snprintf(st->error, sizeof st->error,
                 "feature view %s@v%u has no database (torn down or not applied)", v->name,
                 (unsigned)v->version);
    }
    return rc;
}

/* Applies one part inside the stream's transaction. Returns: 0, RETRY, or a negative errno. */
/* Hands a part's encoded rows back for reuse: every group was appended from its record, and a
 * replay, starting from the same state, would append them again. */
static void release_rows(store__stream_t *st, store__part_t *p)
{
    pthread_mutex_lock(&st->mu);
    if (st->n_spare < (int)(sizeof st->spare / sizeof st->spare[0])) {
        st->spare[st->n_spare++] = p->enc;
        memset(&p->enc, 0, sizeof p->enc);
    }
    pthread_mutex_unlock(&st->mu);
    store__enc_free(&p->enc);
}

/* Applies one part inside the stream's transaction. Returns: 0, RETRY, or a negative errno. */
static int apply_part(store_t *s, store__stream_t *st, stream_txn_t *t, store__part_t *p)
{
    if (t->cap_map < p->n_views) {
        uint32_t *m = realloc(t->map, p->n_views * sizeof *m);
        if (m == NULL)
            return -ENOMEM;
        t->map = m;
        t->cap_map = p->n_views;
    }
    for (size_t i = 0; i < p->n_views; i++) {
        const store__enc_view_t *ev = &p->views[i];
        const store__view_t *e = store__views_find(s->views, ev->name, ev->version);
        if (e == NULL || e->gen != ev->gen)
            return stream_fail(st, -ENOENT, ev);
        int rc = stream_view(t, e, &t->map[i]);
        if (rc != 0)
            return rc;
    }
    store__enc_t *enc = &p->enc;
    store__job_t *job = &st->job;
    bool all_appended = true;
    t->rows |= p->n_groups > 0;
    for (size_t gi = 0; gi < p->n_groups; gi++) {
        store__group_t *g = &p->groups[gi];
        stream_view_t *v = &t->views[t->map[g->view]];
        const uint8_t *key = p->recs.data + g->key_off;
        int rc;
        /* Every row of a group with history goes to the history: row by row. */
        bool history = g->history || v->e->hdbi != 0;
        if (!history &&
            (!v->has_tail || store__key_order(key, g->key_len, v->tail, v->tail_len) > 0)) {
            job->written += g->written;
            job->stale += g->stale;
            if (g->rec_len == 0)
                continue;
            if (v->cur == NULL) {
                rc = lmdb_rc(mdb_cursor_open(t->c.txn, v->e->dbi, &v->cur));
                if (rc != 0)
                    return rc;
            }
            uint8_t *rec = p->recs.data + g->rec_off;
            store__put_le64(rec + STORE__REC_CREATED_TS, (uint64_t)t->c.created);
            store__rec_seal(key, g->key_len, rec, g->rec_len);
            MDB_val k = {g->key_len, (void *)key}, d = {g->rec_len, rec};
            rc = lmdb_rc(mdb_cursor_put(v->cur, &k, &d, MDB_APPEND));
            if (rc != 0)
                return rc;
            v->has_tail = true;
            v->tail_len = g->key_len;
            memcpy(v->tail, key, g->key_len);
            continue;
        }
        /* The key may be stored (or the group has history): merge row by row. A put elsewhere
         * in the tree moves pages under the append cursor, so it is reopened (at the last leaf)
         * when next needed. */
        all_appended = false;
        if (enc->rows == NULL)
            return -EIO; /* released after appending it all: a replay cannot decide otherwise */
        if (v->cur != NULL) {
            mdb_cursor_close(v->cur);
            v->cur = NULL;
        }
        for (uint32_t x = g->first; x < g->first + g->n; x++) {
            rc = apply_row(&t->c, v->e, &enc->rows[enc->order[x]], enc->arena.data, job);
            if (rc != 0)
                return rc;
        }
        /* A group with history may have stored a key past the tail: appends must stay after
         * it (a tail past the last stored key only sends more groups this way). */
        if (!v->has_tail || store__key_order(key, g->key_len, v->tail, v->tail_len) > 0) {
            v->has_tail = true;
            v->tail_len = g->key_len;
            memcpy(v->tail, key, g->key_len);
        }
    }
    if (all_appended && enc->rows != NULL)
        release_rows(st, p);
    return 0;
}

/* One attempt at the whole stream: applies every part pushed so far and then each new one as it
 * comes, until told to end. Returns: 0 committed, 1 aborted as asked, RETRY, or a negative errno
 * (the transaction is gone either way). */
static int stream_attempt(store_t *s, store__stream_t *st, stream_txn_t *t)
{
    MDB_txn *txn = NULL;
    int rc = store__txn_begin(s, STORE__TXN_WRITE, &txn);
    if (rc < 0)
        return rc;
    t->c.txn = txn;
    t->c.s = s;
    rc = change_seq_get(&t->c);
    if (rc < 0) {
        store__txn_end(s, txn, STORE__TXN_ABORT); /* the map lock too */
        return rc;
    }
    t->rows = false;
    t->c.log_pos = 0;
    st->job.written = st->job.stale = 0;
    store__part_t *done = NULL;
    for (;;) {
        pthread_mutex_lock(&st->mu);
        store__part_t *next;
        while ((next = done != NULL ? done->next : st->head) == NULL && !st->end)
            pthread_cond_wait(&st->cv, &st->mu);
        bool commit_it = st->commit;
        pthread_mutex_unlock(&st->mu);
        if (next == NULL) {
            if (!commit_it) {
                rc = 1;
                break;
            }
            stream_txn_reset(t);
            rc = change_seq_put(&t->c);
            if (rc == 0 && t->rows)
                rc = local_rows_put(s, txn);
            if (rc != 0)
                break;
            rc = commit(txn);
            txn = NULL;
            if (rc == 0)
                s->local_rows |= t->rows;
            break;
        }
        rc = apply_part(s, st, t, next);
        if (rc != 0)
            break;
        done = next;
    }
    stream_txn_reset(t);
    store__txn_end(s, txn, STORE__TXN_ABORT);
    return rc;
}

static void run_stream(store_t *s, store__stream_t *st)
{
    stream_txn_t t = {0};
    /* One write time for the whole load, kept across replays. */
    t.c.created = write_time(s);
    int rc;
    for (;;) {
        rc = stream_attempt(s, st, &t);
        if (rc != RETRY)
            break;
        rc = store__map_grow(s, true);
        if (rc < 0)
            break;
    }
    if (rc == 0) {
        s->last_created_us = t.c.created;
        if (s->sync == STORE_SYNC_FULL)
            rc = store__sync(s);
    }
    if (rc == 0) {
        write_ok(s);
        atomic_fetch_add(&s->commits, 1);
        atomic_fetch_add(&s->batches, 1);
        grow_early(s);
    }
    if (rc == -EIO || rc == -ENOSPC)
        rc = write_failed(s, rc);
    if (rc < 0) {
        /* Failed before the end: refuse further parts, then wait for the caller to end it, so
         * the caller's commit sees the failure (and a push of theirs never waits on us). */
        pthread_mutex_lock(&st->mu);
        st->rc = rc;
        while (!st->end)
            pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
    }
    st->job.rc = rc == 1 ? 0 : rc;
    store__buf_free(&t.c.a);
    store__buf_free(&t.c.b);
    free(t.views);
    free(t.map);
}

static void *writer_main(void *arg)
{
    store_t *s = arg;
    pthread_mutex_lock(&s->q_mu);
    for (;;) {
        while (s->q_head == NULL && !s->closing)
            pthread_cond_wait(&s->q_cv, &s->q_mu);
        if (s->q_head == NULL)
            break;
        /* Group every apply job queued now; bulk streams and maintenance run alone. */
        store__job_t *group = s->q_head, *last = group;
        size_t n = 1;
        if (group->kind == JOB_APPLY) {
            while (last->next != NULL && last->next->kind == JOB_APPLY && n < MAX_GROUP_JOBS) {
                last = last->next;
                n++;
            }
        }
        s->q_head = last->next;
        if (s->q_head == NULL)
            s->q_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->q_mu);

        if (group->kind == JOB_FN)
            run_fn(s, group);
        else if (group->kind == JOB_STREAM)
            run_stream(s, group->u.stream.stream);
        else
            run_apply(s, group);

        pthread_mutex_lock(&s->q_mu);
        store__job_t *async = NULL, **tail = &async;
        for (store__job_t *j = group, *next; j != NULL; j = next) {
            next = j->next; /* j lives on its caller's stack: gone once done is seen */
            if (j->kind == JOB_APPLY && j->u.apply.done_fn != NULL) {
                *tail = j;
                tail = &j->next;
                continue;
            }
            j->done = true;
            pthread_cond_signal(&j->cv);
        }
        *tail = NULL;
        if (async != NULL) {
            /* Callbacks run without the queue lock, so callers can queue the next job. */
            pthread_mutex_unlock(&s->q_mu);
            for (store__job_t *j = async, *next; j != NULL; j = next) {
                next = j->next;
                finish_async(s, j);
            }
            pthread_mutex_lock(&s->q_mu);
        }
    }
    pthread_mutex_unlock(&s->q_mu);
    return NULL;
}

/* Queues job; called with q_mu held. Returns: 0, -ESHUTDOWN (not queued). */
static int enqueue_locked(store_t *s, store__job_t *job)
{
    if (s->closing)
        return -ESHUTDOWN;
    job->next = NULL;
    if (s->q_tail != NULL)
        s->q_tail->next = job;
    else
        s->q_head = job;
    s->q_tail = job;
    pthread_cond_signal(&s->q_cv);
    return 0;
}

/* Queues job for a caller that will wait_done() on it. Returns: 0, -EROFS, -ESHUTDOWN. */
static int enqueue(store_t *s, store__job_t *job)
{
    if (s->read_only)
        return -EROFS;
    pthread_cond_init(&job->cv, NULL);
    pthread_mutex_lock(&s->q_mu);
    int rc = enqueue_locked(s, job);
    pthread_mutex_unlock(&s->q_mu);
    if (rc < 0)
        pthread_cond_destroy(&job->cv);
    return rc;
}

/* Sleeps until the writer is done with a queued job. Returns: the job's result. */
static int wait_done(store_t *s, store__job_t *job)
{
    pthread_mutex_lock(&s->q_mu);
    while (!job->done)
        pthread_cond_wait(&job->cv, &s->q_mu);
    pthread_mutex_unlock(&s->q_mu);
    pthread_cond_destroy(&job->cv);
    return job->rc;
}

/* Queues job and sleeps until the writer is done with it. Returns: the job's result. */
static int submit(store_t *s, store__job_t *job)
{
    int rc = enqueue(s, job);
    return rc < 0 ? rc : wait_done(s, job);
}

int store__run(store_t *s, store__job_fn fn, void *arg, bool exclusive,
               void (*after)(store_t *s, int rc, void *arg))
{
    store__job_t job = {
        .kind = JOB_FN,
        .u.fn = {.fn = fn, .arg = arg, .exclusive = exclusive, .after = after},
    };
    return submit(s, &job);
}

/* Fills *res from a finished apply job with result rc. */
static void job_result(const store__job_t *job, int rc, store_apply_result_t *res)
{
    const store__enc_t *enc = job->u.apply.enc;
    res->written = job->written;
    res->stale = job->stale;
    /* The view was dropped between validation and commit (a teardown or catalog change raced
     * the write): name it, as the header promises for -ENOENT. */
    if (rc == -ENOENT && enc->n_views > 0) {
        const store__enc_view_t *v = &enc->views[0];
        size_t n = strnlen(v->name, sizeof res->bad_field - 1);
        memcpy(res->bad_field, v->name, n);
        res->bad_field[n] = '\0';
        snprintf(res->error, sizeof res->error,
                 "feature view %s@v%u%s has no database (torn down or not applied)", v->name,
                 (unsigned)v->version, enc->n_views > 1 ? " (or another of this call's)" : "");
    }
}

/* Runs an asynchronous job's callback (after its group's fsync) and frees the job. */
static void finish_async(store_t *s, store__job_t *job)
{
    (void)s;
    store_apply_result_t res;
    memset(&res, 0, sizeof res);
    job_result(job, job->rc, &res);
    job->u.apply.done_fn(job->u.apply.done_arg, job->rc, &res);
    store__enc_free(&job->u.apply.own);
    free(job);
}

int store__submit(store_t *s, store__enc_t *enc, uint64_t log_position, store_apply_result_t *res)
{
    store__job_t job = {.kind = JOB_APPLY, .u.apply = {.enc = enc, .log_position = log_position}};
    int rc = submit(s, &job);
    if (res != NULL)
        job_result(&job, rc, res);
    return rc;
}

int store__submit_async(store_t *s, store__enc_t *enc, uint64_t log_position,
                        store_apply_done_fn done, void *arg)
{
    if (s->read_only)
        return -EROFS;
    store__job_t *job = calloc(1, sizeof *job);
    if (job == NULL)
        return -ENOMEM;
    job->kind = JOB_APPLY;
    job->u.apply.log_position = log_position;
    job->u.apply.done_fn = done;
    job->u.apply.done_arg = arg;
    job->u.apply.own = *enc;
    job->u.apply.enc = &job->u.apply.own;
    pthread_mutex_lock(&s->q_mu);
    int rc = enqueue_locked(s, job);
    pthread_mutex_unlock(&s->q_mu);
    if (rc < 0) {
        free(job);
        return rc;
    }
    memset(enc, 0, sizeof *enc);
    return 0;
}

int store__stream_begin(store_t *s, store__stream_t **out)
{
    if (s->read_only)
        return -EROFS;
    store__stream_t *st = calloc(1, sizeof *st);
    if (st == NULL)
        return -ENOMEM;
    st->s = s;
    st->job.kind = JOB_STREAM;
    st->job.u.stream.stream = st;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    *out = st;
    return 0;
}

int store__stream_push(store__stream_t *st, store__part_t *p, store_apply_result_t *res)
{
    p->next = NULL;
    pthread_mutex_lock(&st->mu);
    int rc = st->rc;
    if (rc == 0 && !st->queued) {
        /* The transaction opens with the first part: a load that never adds a row never holds
         * up the writer. */
        rc = enqueue(st->s, &st->job);
        st->queued = rc == 0;
        if (rc < 0)
            st->rc = rc;
    }
    if (rc == 0) {
        if (st->tail != NULL)
            st->tail->next = p;
        else
            st->head = p;
        st->tail = p;
        pthread_cond_signal(&st->cv);
    } else if (res != NULL) {
        memcpy(res->error, st->error, sizeof res->error);
        memcpy(res->bad_field, st->bad_field, sizeof res->bad_field);
    }
    pthread_mutex_unlock(&st->mu);
    if (rc < 0)
        store__part_free(p);
    return rc;
}

bool store__stream_take_spare(store__stream_t *st, store__enc_t *enc)
{
    bool got = false;
    pthread_mutex_lock(&st->mu);
    if (st->n_spare > 0) {
        *enc = st->spare[--st->n_spare];
        enc->n_rows = 0;
        enc->n_views = 0;
        enc->arena.len = 0;
        got = true;
    }
    pthread_mutex_unlock(&st->mu);
    return got;
}

int store__stream_end(store__stream_t *st, bool commit_it, store_apply_result_t *res)
{
    if (st == NULL)
        return 0;
    pthread_mutex_lock(&st->mu);
    st->end = true;
    st->commit = commit_it;
    pthread_cond_signal(&st->cv);
    bool queued = st->queued;
    pthread_mutex_unlock(&st->mu);
    int rc = queued ? wait_done(st->s, &st->job) : st->rc;
    if (res != NULL) {
        res->written = st->job.written;
        res->stale = st->job.stale;
        memcpy(res->error, st->error, sizeof res->error);
        memcpy(res->bad_field, st->bad_field, sizeof res->bad_field);
    }
    for (store__part_t *p = st->head, *n; p != NULL; p = n) {
        n = p->next;
        store__part_free(p);
    }
    for (int i = 0; i < st->n_spare; i++)
        store__enc_free(&st->spare[i]);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
    return commit_it ? rc : 0;
}

int store__writer_start(store_t *s)
{
    int rc = pthread_create(&s->writer, NULL, writer_main, s);
    if (rc != 0)
        return -rc;
    s->writer_started = true;
    return 0;
}

void store__writer_stop(store_t *s)
{
    if (!s->writer_started)
        return;
    pthread_mutex_lock(&s->q_mu);
    s->closing = true;
    pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    pthread_join(s->writer, NULL);
    s->writer_started = false;
}
