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

static int gc_chunk(store_t *s, MDB_txn *txn, void *p)
{
    gc_arg_t *a = p;
    a->deleted = 0;
    a->more = false;
    const store__view_t *e = store__views_find(s->views, a->name, a->version);
    if (e == NULL || e->gen != a->gen)
        return 0; /* torn down meanwhile: nothing left to sweep */
    if (a->history && e->hdbi == 0)
        return 0;
    MDB_cursor *cur;
    int rc = store__errno(mdb_cursor_open(txn, a->history ? e->hdbi : e->dbi, &cur));
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
        store__rec_t r;
        if (store__rec_parse(d.mv_data, d.mv_size, &r) == 0 &&
            r.event_ts_us < (r.tombstone ? a->tomb_cutoff_us : a->cutoff_us)) {
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

/* The change feed (store_changes()): an entry goes with its history entry's retention (the
 * view's history retention by write time; an entry of a view that keeps no history, or is gone
 * from the catalog, at the tombstone retention). */
typedef struct gc_changes {
    const catalog_t *cat;
    int64_t now_us, tomb_cutoff_us;
    uint8_t resume[12];
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
            if (k.mv_size == sizeof a->resume) {
                memcpy(a->resume, k.mv_data, sizeof a->resume);
                a->started = a->more = true;
            }
            break;
        }
        const uint8_t *v = d.mv_data;
        int64_t cutoff = a->tomb_cutoff_us;
        if (d.mv_size >= STORE__CHANGE_HEAD && d.mv_size >= STORE__CHANGE_HEAD + (size_t)v[18]) {
            char key[STORE__VIEW_KEY_MAX];
            size_t n = v[18] < sizeof key ? v[18] : 0;
            memcpy(key, v + STORE__CHANGE_HEAD, n);
            key[n] = '\0';
            char *at = strrchr(key, '@');
            const catalog_view_t *cv = NULL;
            if (at != NULL && at[1] == 'v') {
                *at = '\0';
                if (catalog_find_view(a->cat, key, (uint32_t)strtoul(at + 2, NULL, 10), &cv) < 0)
                    cv = NULL;
            }
            if (cv != NULL && cv->history)
                cutoff =
                    cv->history_retention_s > 0 && cv->history_retention_s < INT64_MAX / 2000000
                        ? a->now_us - cv->history_retention_s * 1000000
                        : INT64_MIN;
            if ((int64_t)store__le64(v + 10) < cutoff) {
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

int store_gc(store_t *s, int64_t now_us, size_t *deleted)
{
    return store_gc_until(s, now_us, NULL, NULL, deleted);
}

int store_gc_until(store_t *s, int64_t now_us, bool (*stop)(void *arg), void *stop_arg,
                   size_t *deleted)
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
        bool history = e->hdbi != 0 && v->history_retention_s > 0 &&
                       v->history_retention_s < INT64_MAX / 2000000;
        for (int pass = 0; pass < 1 + history && rc == 0; pass++) {
            memset(a, 0, sizeof *a);
            strncpy(a->name, v->name, sizeof a->name - 1);
            a->version = v->version;
            a->gen = e->gen;
            a->history = pass == 1;
            if (a->history) {
                a->cutoff_us = a->tomb_cutoff_us = now_us - v->history_retention_s * 1000000;
            } else {
                a->cutoff_us = store__ttl_applies(v) ? store__ttl_cutoff(v, now_us) : INT64_MIN;
                a->tomb_cutoff_us = now_us - s->tombstone_retention_us;
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
            .cat = cat, .now_us = now_us, .tomb_cutoff_us = now_us - s->tombstone_retention_us};
        do {
            if (stop != NULL && stop(stop_arg)) {
                rc = -ECANCELED;
                break;
            }
            rc = store__run(s, gc_changes_chunk, &ca, false, NULL);
            if (rc < 0)
                break;
            total += ca.deleted;
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
