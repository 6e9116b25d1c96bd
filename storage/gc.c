/* storage/gc.c - TTL and tombstone sweeps in small transactions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

/*
 * A sweep walks each view version with a TTL in key order, a chunk at a time: each chunk is one
 * short write transaction on the writer thread (at most GC_SCAN rows looked at, so store_apply()
 * callers queue behind it for a few milliseconds at most), and the next chunk resumes at the
 * first key not yet looked at. Rows written meanwhile are either seen or not; both are fine,
 * since a row is only deleted when it is expired at now_us. Tombstones (deleted rows) are
 * dropped once their event time is older than the store's tombstone retention, in every view.
 * A view's history (store_options_t.history) is swept the same way: entries, deletes included,
 * whose event time is older than the view's history retention go.
 */

#define GC_SCAN 4096

typedef struct gc_arg {
    store_t *s;
    char name[CATALOG_MAX_NAME + 1];
    uint32_t version;
    uint64_t gen;
    bool history;           /* sweeping the view's history database */
    int64_t cutoff_us;      /* live rows with an older event time are expired */
    int64_t tomb_cutoff_us; /* tombstones with an older event time are dropped */
    uint8_t resume[STORE_MAX_KEY];
    size_t resume_len; /* 0 = from the first key */
    /* this attempt's outcome, kept only when it commits */
    uint8_t next[STORE_MAX_KEY];
    size_t next_len;
    bool more;
    size_t deleted;
} gc_arg_t;

/*
 * A chunk of a view's history. An entry goes when its entity has a later entry at or before the
 * cutoff (that one holds the row as of every time the retention still covers), or when it is a
 * delete at or before the cutoff that is its entity's last entry (nothing older is left for it
 * to hide). So an entity written once long ago keeps that entry, and reads as of any time in
 * the retention find it, as its online row does.
 */
static int gc_history(gc_arg_t *a, MDB_txn *txn, MDB_dbi hdbi)
{
    MDB_cursor *cur;
    int rc = store__errno(mdb_cursor_open(txn, hdbi, &cur));
    if (rc < 0)
        return rc;
    uint8_t here[STORE_MAX_KEY];
    MDB_val k = {a->resume_len, a->resume}, d;
    int mrc = mdb_cursor_get(cur, &k, &d, a->resume_len > 0 ? MDB_SET_RANGE : MDB_FIRST);
    for (size_t scanned = 0; mrc == 0; scanned++) {
        if (k.mv_size <= STORE__HKEY_TS || k.mv_size > sizeof here) {
            mrc = MDB_CORRUPTED;
            break;
        }
        if (scanned == GC_SCAN) {
            memcpy(a->next, k.mv_data, k.mv_size);
            a->next_len = k.mv_size;
            a->more = true;
            break;
        }
        size_t klen = k.mv_size, elen = klen - STORE__HKEY_TS;
        int64_t ts = store__hkey_ts((const uint8_t *)k.mv_data + elen);
        /* A damaged entry is kept (nothing is decided on its word) and reported. */
        store__rec_t r;
        bool intact = store__rec_check(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &r) == 0;
        if (!intact)
            store__rec_damaged(a->s, a->name, a->version, true, k.mv_data, k.mv_size);
        bool tomb = intact && r.tombstone;
        if (ts >= a->cutoff_us) {
            mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
            continue;
        }
        memcpy(here, k.mv_data, klen);
        mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
        if (mrc != 0 && mrc != MDB_NOTFOUND)
            break;
        bool same = mrc == 0 && k.mv_size == klen && memcmp(k.mv_data, here, elen) == 0;
        bool later_in = same && store__hkey_ts((const uint8_t *)k.mv_data + elen) <= a->cutoff_us;
        if (!later_in && !(tomb && !same))
            continue; /* kept; the cursor is on the next entry already */
        /* Back onto it, and delete: the cursor then yields the following entry on MDB_NEXT. */
        k.mv_size = klen;
        k.mv_data = here;
        if ((mrc = mdb_cursor_get(cur, &k, &d, MDB_SET)) != 0 ||
            (mrc = mdb_cursor_del(cur, 0)) != 0)
            break;
        a->deleted++;
        mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : store__errno(mrc);
}

static int gc_chunk(store_t *s, MDB_txn *txn, void *p)
{
    gc_arg_t *a = p;
    a->s = s;
    a->deleted = 0;
    a->more = false;
    const store__view_t *e = store__views_find(s->views, a->name, a->version);
    if (e == NULL || e->gen != a->gen)
        return 0; /* torn down meanwhile: nothing left to sweep */
    if (a->history)
        return e->hdbi == 0 ? 0 : gc_history(a, txn, e->hdbi);
    MDB_cursor *cur;
    int rc = store__errno(mdb_cursor_open(txn, e->dbi, &cur));
    if (rc < 0)
        return rc;
    MDB_val k = {a->resume_len, a->resume}, d;
    int mrc = mdb_cursor_get(cur, &k, &d, a->resume_len > 0 ? MDB_SET_RANGE : MDB_FIRST);
    for (size_t scanned = 0; mrc == 0; scanned++) {
        if (scanned == GC_SCAN) {
            if (k.mv_size > sizeof a->next) {
                mrc = MDB_CORRUPTED;
                break;
            }
            memcpy(a->next, k.mv_data, k.mv_size);
            a->next_len = k.mv_size;
            a->more = true;
            break;
        }
        /* A damaged record is kept (its time cannot be trusted) and reported. */
        store__rec_t r;
        bool intact = store__rec_check(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &r) == 0;
        if (!intact)
            store__rec_damaged(s, a->name, a->version, false, k.mv_data, k.mv_size);
        if (intact && r.event_ts_us < (r.tombstone ? a->tomb_cutoff_us : a->cutoff_us)) {
            mrc = mdb_cursor_del(cur, 0);
            if (mrc != 0)
                break;
            a->deleted++;
        }
        /* After a delete LMDB leaves the cursor so that MDB_NEXT yields the following row. */
        mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : store__errno(mrc);
}

/* The change feed (store_changes()): an entry goes once it was written longer ago than its
 * view's history retention (the entries it names are going too); an entry of a view that keeps
 * no history now, or is gone from the catalog, at the tombstone retention. */
typedef struct gc_changes {
    const catalog_t *cat;
    int64_t now_us, tomb_cutoff_us;
    uint8_t resume[STORE__CHANGE_KEY], next[STORE__CHANGE_KEY]; /* next: kept on commit */
    bool started, more;
    size_t deleted;
} gc_changes_t;

static int gc_changes_chunk(store_t *s, MDB_txn *txn, void *p)
{
    gc_changes_t *a = p;
    a->deleted = 0;
    a->more = false;
    if (s->changes == 0)
        return 0;
    MDB_cursor *cur;
    int rc = store__errno(mdb_cursor_open(txn, s->changes, &cur));
    if (rc < 0)
        return rc;
    MDB_val k = {sizeof a->resume, a->resume}, d;
    int mrc = mdb_cursor_get(cur, &k, &d, a->started ? MDB_SET_RANGE : MDB_FIRST);
    for (size_t scanned = 0; mrc == 0; scanned++) {
        if (scanned == GC_SCAN) {
            if (k.mv_size == sizeof a->next) {
                memcpy(a->next, k.mv_data, sizeof a->next);
                a->more = true;
            }
            break;
        }
        store__change_t ch;
        if (store__change_parse(d.mv_data, d.mv_size, &ch) == 0) {
            const catalog_view_t *cv = NULL;
            if (catalog_find_view(a->cat, ch.view, ch.version, &cv) < 0)
                cv = NULL;
            int64_t cutoff = cv != NULL && cv->history ? store__history_cutoff(cv, a->now_us)
                                                       : a->tomb_cutoff_us;
            if (ch.write_ts_us < cutoff) {
                mrc = mdb_cursor_del(cur, 0);
                if (mrc != 0)
                    break;
                a->deleted++;
            }
        }
        mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND || mrc == 0 ? 0 : store__errno(mrc);
}

/* The sweep of store_gc_until() and store_gc_at(), with tombstones kept tomb_retention_us. */
static int sweep(store_t *s, int64_t now_us, int64_t tomb_retention_us, bool (*stop)(void *arg),
                 void *stop_arg, size_t *deleted)
{
    size_t total = 0;
    catalog_t *cat = NULL;
    store__views_t *t = NULL;
    gc_arg_t *a = NULL;
    int rc = store_applied_catalog(s, &cat);
    if (rc == -ENOENT) {
        rc = 0;
        goto out;
    }
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        goto out;
    t = store__views_get(s);
    rc = 0;
    for (size_t i = 0; i < catalog_view_count(cat) && rc == 0; i++) {
        const catalog_view_t *v = catalog_view_at(cat, i);
        if (!v->online)
            continue;
        const store__view_t *e = store__views_find(t, v->name, v->version);
        if (e == NULL)
            continue;
        bool history = e->hdbi != 0 && store__history_cutoff(v, now_us) != INT64_MIN;
        for (int pass = 0; pass < 1 + history && rc == 0; pass++) {
            memset(a, 0, sizeof *a);
            strncpy(a->name, v->name, sizeof a->name - 1);
            a->version = v->version;
            a->gen = e->gen;
            a->history = pass == 1;
            if (a->history) {
                a->cutoff_us = a->tomb_cutoff_us = store__history_cutoff(v, now_us);
            } else {
                a->cutoff_us = store__ttl_applies(v) ? store__ttl_cutoff(v, now_us) : INT64_MIN;
                a->tomb_cutoff_us = now_us - tomb_retention_us;
            }
            do {
                if (stop != NULL && stop(stop_arg)) {
                    rc = -ECANCELED;
                    break;
                }
                rc = store__run(s, gc_chunk, a, false, NULL);
                if (rc < 0)
                    break;
                total += a->deleted;
                memcpy(a->resume, a->next, a->next_len);
                a->resume_len = a->next_len;
            } while (a->more);
        }
    }
    if (rc == 0 && s->changes != 0) {
        gc_changes_t ca = {
            .cat = cat, .now_us = now_us, .tomb_cutoff_us = now_us - tomb_retention_us};
        do {
            if (stop != NULL && stop(stop_arg)) {
                rc = -ECANCELED;
                break;
            }
            rc = store__run(s, gc_changes_chunk, &ca, false, NULL);
            if (rc < 0)
                break;
            total += ca.deleted;
            memcpy(ca.resume, ca.next, sizeof ca.resume);
            ca.started = true;
        } while (ca.more);
    }
out:
    store__views_unref(t);
    catalog_unref(cat);
    free(a);
    if ((rc == 0 || rc == -ECANCELED) && deleted != NULL)
        *deleted = total;
    return rc;
}

int store_gc(store_t *s, int64_t now_us, size_t *deleted)
{
    return store_gc_until(s, now_us, NULL, NULL, deleted);
}

int store_gc_until(store_t *s, int64_t now_us, bool (*stop)(void *arg), void *stop_arg,
                   size_t *deleted)
{
    return sweep(s, now_us, s->tombstone_retention_us, stop, stop_arg, deleted);
}

/* The position a log's sweep may take: run on the writer, so behind every apply queued before. */
static int gc_position_check(store_t *s, MDB_txn *txn, void *p)
{
    return store__position_check(s, txn, *(const uint64_t *)p);
}

int store_gc_at(store_t *s, int64_t now_us, int64_t tombstone_retention_us, uint64_t log_position,
                bool (*stop)(void *arg), void *stop_arg, size_t *deleted)
{
    if (log_position == 0 || tombstone_retention_us < 0 || !s->log_contiguous)
        return -EINVAL;
    int rc = store__run(s, gc_position_check, &log_position, false, NULL);
    if (rc < 0)
        return rc;
    size_t n = 0;
    rc = sweep(s, now_us, tombstone_retention_us, stop, stop_arg, &n);
    if (rc < 0)
        return rc;
    /* The position last, on its own: a crash before it sweeps again from the same message, to
     * the same result (a record goes by its own time alone). */
    rc = store_apply(s, NULL, 0, log_position, NULL);
    if (rc == 0 && deleted != NULL)
        *deleted = n;
    return rc;
}
