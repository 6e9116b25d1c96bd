/* storage/writer.c - the single writer thread: group commit, LWW merges, map growth. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

/*
 * Every write transaction of the store runs on this thread. Callers validate and encode in their
 * own threads (apply.c) and queue a job: store_apply() then sleeps on it, store_apply_async()
 * returns and its job (on the heap) is completed by a callback. The writer takes every apply job
 * queued at that moment, commits them in one transaction, then calls fsync once (sync=full) and
 * only then wakes the sleepers and runs the callbacks: while one group is being fsynced the next
 * one queues up, so under load the fsync cost is shared by as many callers as arrive during it,
 * without any timer. Asynchronous callers matter for that: a caller that parks a thread per call
 * can only have as many calls in a group as it has threads.
 *
 * Jobs in one group stay independent where it matters: a stale replication position (-EALREADY)
 * or a view torn down since validation (-ENOENT) is checked before any of that job's rows are
 * written, and validation is already done, so what can still fail is I/O-level (the commit, the
 * fsync, a malformed page) and it fails the whole group: nothing of that transaction is visible.
 *
 * MDB_MAP_FULL never reaches a caller: the transaction is aborted, the map doubled (see
 * store.c), and the whole group replayed from its encoded rows, which the writer still holds.
 * Under STORE_SYNC_FULL the environment runs with MDB_NOMETASYNC (see store_open()): each commit
 * fdatasyncs its data pages before writing the meta page, and the mdb_env_sync() after it makes
 * that meta page durable before anyone of the group is acknowledged. Because commits only ever
 * happen here, the fsyncs of commit N also precede transaction N+1.
 */

#define MAX_GROUP_JOBS 1024
#define RETRY 1 /* internal: the transaction ran out of map and must be replayed */

typedef enum job_kind {
    JOB_APPLY,
    JOB_BULK,
    JOB_FN,
} job_kind_t;

struct store__job {
    store__job_t *next;
    job_kind_t kind;
    store__enc_t *enc;
    /* Asynchronous jobs: the callback, and the encoded rows the job owns (enc points here). */
    store_apply_done_fn done_fn;
    void *done_arg;
    store__enc_t own;
    uint64_t log_position;
    size_t written, stale;
    store__job_fn fn;
    void *arg;
    bool exclusive;
    void (*after)(store_t *s, int rc, void *arg);
    int rc;
    bool done;
    pthread_cond_t cv;
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
    int rc = mdb_txn_commit(txn);
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
    MDB_txn *txn;
    int64_t created;
    store__buf_t a, b; /* record scratch */
} apply_ctx_t;

/* Applies one row over what the database holds. Returns: 0, RETRY, negative errno. */
static int apply_row(apply_ctx_t *c, MDB_dbi dbi, const store__row_t *row, const uint8_t *arena,
                     store__job_t *job)
{
    MDB_val k = {row->key_len, (void *)(arena + row->key_off)}, d;
    if (row->op == STORE_OP_DELETE) {
        int rc = mdb_del(c->txn, dbi, &k, NULL);
        if (rc == 0)
            job->written++;
        return rc == MDB_NOTFOUND ? 0 : lmdb_rc(rc);
    }
    store__rec_t old;
    int rc = mdb_get(c->txn, dbi, &k, &d);
    if (rc == 0) {
        if (store__rec_parse(d.mv_data, d.mv_size, &old) < 0)
            return -EIO;
        /* Last write wins by event time; on a tie the later write (this one) wins. */
        if (row->event_ts_us < old.event_ts_us) {
            job->stale++;
            return 0;
        }
        rc = store__rec_merge(&old, row, arena, c->created, &c->a);
    } else if (rc == MDB_NOTFOUND) {
        rc = store__rec_merge(NULL, row, arena, c->created, &c->a);
    } else {
        return lmdb_rc(rc);
    }
    if (rc < 0)
        return rc;
    d.mv_size = c->a.len;
    d.mv_data = c->a.data;
    rc = mdb_put(c->txn, dbi, &k, &d, 0);
    if (rc != 0)
        return lmdb_rc(rc);
    job->written++;
    return 0;
}

/*
 * Bulk rows arrive sorted by (view, key, input order). Into a database that was empty when the
 * transaction began, every key's rows are merged in memory and the result appended with
 * MDB_APPEND (no B-tree search, pages filled sequentially); otherwise each row takes the ordinary
 * path, whose merge is the same code, so bulk and online writes cannot disagree.
 */
static int apply_sorted(apply_ctx_t *c, const MDB_dbi *dbis, const bool *empty, store__job_t *job)
{
    const store__enc_t *enc = job->enc;
    const uint8_t *arena = enc->arena.data;
    /* Appends go through one cursor per database: mdb_put() opens a fresh cursor every time and
     * walks from the root (searching the transaction's dirty-page list at every level), while a
     * cursor left on the last leaf appends there directly. */
    MDB_cursor *cur = NULL;
    uint32_t cur_view = UINT32_MAX;
    int rc = 0;
    size_t i = 0;
    while (i < enc->n_rows) {
        const store__row_t *first = &enc->rows[enc->order[i]];
        size_t j = i + 1;
        while (j < enc->n_rows) {
            const store__row_t *r = &enc->rows[enc->order[j]];
            if (r->view != first->view || r->key_len != first->key_len ||
                memcmp(arena + r->key_off, arena + first->key_off, r->key_len) != 0)
                break;
            j++;
        }
        MDB_dbi dbi = dbis[first->view];
        if (!empty[first->view]) {
            for (size_t x = i; x < j && rc == 0; x++)
                rc = apply_row(c, dbi, &enc->rows[enc->order[x]], arena, job);
            if (rc != 0)
                break;
            i = j;
            continue;
        }
        bool have = false;
        for (size_t x = i; x < j; x++) {
            const store__row_t *r = &enc->rows[enc->order[x]];
            if (r->op == STORE_OP_DELETE) {
                have = false;
                continue;
            }
            store__rec_t old;
            if (have) {
                if (store__rec_parse(c->a.data, c->a.len, &old) < 0) {
                    rc = -EIO;
                    break;
                }
                if (r->event_ts_us < old.event_ts_us) {
                    job->stale++;
                    continue;
                }
            }
            rc = store__rec_merge(have ? &old : NULL, r, arena, c->created, &c->b);
            if (rc < 0)
                break;
            store__buf_t t = c->a;
            c->a = c->b;
            c->b = t;
            have = true;
            job->written++;
        }
        if (rc != 0)
            break;
        if (have) {
            if (cur_view != first->view) {
                if (cur != NULL)
                    mdb_cursor_close(cur);
                cur = NULL;
                rc = lmdb_rc(mdb_cursor_open(c->txn, dbi, &cur));
                if (rc != 0)
                    break;
                cur_view = first->view;
            }
            MDB_val k = {first->key_len, (void *)(arena + first->key_off)};
            MDB_val d = {c->a.len, c->a.data};
            rc = lmdb_rc(mdb_cursor_put(cur, &k, &d, MDB_APPEND));
            if (rc != 0)
                break;
        }
        i = j;
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    return rc;
}

/* Resolves a job's views to databases. Returns: 0, or -ENOENT when one was torn down (or torn
 * down and created again) since the job was encoded. */
static int resolve_views(store_t *s, MDB_txn *txn, const store__job_t *job, MDB_dbi *dbis,
                         bool *empty)
{
    for (size_t i = 0; i < job->enc->n_views; i++) {
        const store__enc_view_t *ev = &job->enc->views[i];
        const store__view_t *e = store__views_find(s->views, ev->name, ev->version);
        if (e == NULL || e->gen != ev->gen)
            return -ENOENT;
        dbis[i] = e->dbi;
        if (empty != NULL) {
            MDB_stat st;
            int rc = mdb_stat(txn, e->dbi, &st);
            if (rc != 0)
                return lmdb_rc(rc);
            empty[i] = st.ms_entries == 0;
        }
    }
    return 0;
}

/* One attempt at committing a group. Returns: 0, RETRY, or a negative errno for the group. */
static int apply_group(store_t *s, store__job_t *group, apply_ctx_t *c, bool *any)
{
    MDB_txn *txn = NULL;
    MDB_dbi *dbis = NULL;
    bool *empty = NULL;
    *any = false;
    pthread_rwlock_rdlock(&s->map_lock);
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
        pthread_rwlock_unlock(&s->map_lock);
        rc = store__map_grow(s, false);
        return rc < 0 ? rc : RETRY;
    }
    rc = lmdb_rc(rc);
    if (rc != 0)
        goto out;
    c->txn = txn;
    c->created = write_time(s);

    uint64_t pos = 0;
    bool pos_dirty = false;
    MDB_val v;
    rc = store__meta_get(txn, s->meta, STORE__KEY_POSITION, &v);
    if (rc == 0 && v.mv_size == 8)
        pos = store__le64(v.mv_data);
    else if (rc != -ENOENT)
        goto out;

    for (store__job_t *j = group; j != NULL; j = j->next) {
        j->rc = 0;
        j->written = j->stale = 0;
        if (j->log_position > 0 && j->log_position <= pos) {
            j->rc = -EALREADY;
            continue;
        }
        size_t nv = j->enc->n_views;
        free(dbis);
        free(empty);
        dbis = malloc((nv + 1) * sizeof *dbis);
        empty = malloc((nv + 1) * sizeof *empty);
        rc = -ENOMEM;
        if (dbis == NULL || empty == NULL)
            goto out;
        rc = resolve_views(s, txn, j, dbis, j->kind == JOB_BULK ? empty : NULL);
        if (rc == -ENOENT) {
            j->rc = rc;
            continue;
        }
        if (rc != 0)
            goto out;
        if (j->kind == JOB_BULK) {
            rc = apply_sorted(c, dbis, empty, j);
        } else {
            const uint8_t *arena = j->enc->arena.data;
            for (size_t r = 0; r < j->enc->n_rows && rc == 0; r++) {
                const store__row_t *row = &j->enc->rows[r];
                rc = apply_row(c, dbis[row->view], row, arena, j);
            }
        }
        if (rc != 0)
            goto out;
        if (j->log_position > 0) {
            pos = j->log_position;
            pos_dirty = true;
        }
        *any = true;
    }
    if (pos_dirty) {
        uint8_t b[8];
        store__put_le64(b, pos);
        MDB_val k = {strlen(STORE__KEY_POSITION), STORE__KEY_POSITION}, d = {8, b};
        rc = lmdb_rc(mdb_put(txn, s->meta, &k, &d, 0));
        if (rc != 0)
            goto out;
    }
    rc = commit(txn);
    txn = NULL;
    if (rc == 0)
        s->last_created_us = c->created;
out:
    if (txn != NULL)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->map_lock);
    free(dbis);
    free(empty);
    return rc;
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
        rc = store__errno(mdb_env_sync(s->env, 1));
    if (rc < 0) {
        for (store__job_t *j = group; j != NULL; j = j->next)
            j->rc = rc;
    } else {
        uint64_t n = 0;
        for (store__job_t *j = group; j != NULL; j = j->next)
            n += j->rc == 0;
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
        if (job->exclusive)
            pthread_rwlock_wrlock(&s->map_lock);
        else
            pthread_rwlock_rdlock(&s->map_lock);
        MDB_txn *txn = NULL;
        rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc == 0) {
            /* Inside a transaction -ENOSPC can only mean the map is full: the disk is only
             * written at commit, and MDB_DBS_FULL translates to -EMFILE. */
            rc = job->fn(s, txn, job->arg);
            if (rc < 0) {
                mdb_txn_abort(txn);
                rc = rc == -ENOSPC ? RETRY : rc;
            } else {
                rc = commit(txn);
            }
        } else if (rc == MDB_MAP_RESIZED) {
            pthread_rwlock_unlock(&s->map_lock);
            rc = store__map_grow(s, false);
            if (rc < 0)
                break;
            continue;
        } else {
            rc = store__errno(rc);
        }
        /* after runs on every attempt: a replayed teardown needs its view table rebuilt. */
        if (job->after != NULL)
            job->after(s, rc == RETRY ? -ENOSPC : rc, job->arg);
        pthread_rwlock_unlock(&s->map_lock);
        if (rc != RETRY)
            break;
        rc = store__map_grow(s, true);
        if (rc < 0)
            break;
    }
    if (rc == 0 && s->sync == STORE_SYNC_FULL)
        rc = store__errno(mdb_env_sync(s->env, 1));
    if (rc == 0) {
        atomic_fetch_add(&s->commits, 1);
        grow_early(s);
    }
    job->rc = rc;
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
        /* Group every apply job queued now; bulk loads and maintenance run alone. */
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
        else
            run_apply(s, group);

        pthread_mutex_lock(&s->q_mu);
        store__job_t *async = NULL, **tail = &async;
        for (store__job_t *j = group, *next; j != NULL; j = next) {
            next = j->next; /* j lives on its caller's stack: gone once done is seen */
            if (j->done_fn != NULL) {
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
static int enqueue(store_t *s, store__job_t *job)
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

/* Queues job and sleeps until the writer is done with it. Returns: the job's result. */
static int submit(store_t *s, store__job_t *job)
{
    if (s->read_only)
        return -EROFS;
    pthread_cond_init(&job->cv, NULL);
    pthread_mutex_lock(&s->q_mu);
    if (enqueue(s, job) < 0) {
        pthread_mutex_unlock(&s->q_mu);
        pthread_cond_destroy(&job->cv);
        return -ESHUTDOWN;
    }
    while (!job->done)
        pthread_cond_wait(&job->cv, &s->q_mu);
    pthread_mutex_unlock(&s->q_mu);
    pthread_cond_destroy(&job->cv);
    return job->rc;
}

int store__run(store_t *s, store__job_fn fn, void *arg, bool exclusive,
               void (*after)(store_t *s, int rc, void *arg))
{
    store__job_t job = {
        .kind = JOB_FN, .fn = fn, .arg = arg, .exclusive = exclusive, .after = after};
    return submit(s, &job);
}

/* Fills *res from a finished apply job with result rc. */
static void job_result(const store__job_t *job, int rc, store_apply_result_t *res)
{
    const store__enc_t *enc = job->enc;
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
    job->done_fn(job->done_arg, job->rc, &res);
    store__enc_free(&job->own);
    free(job);
}

int store__submit(store_t *s, store__enc_t *enc, uint64_t log_position, bool bulk,
                  store_apply_result_t *res)
{
    store__job_t job = {
        .kind = bulk ? JOB_BULK : JOB_APPLY, .enc = enc, .log_position = log_position};
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
    job->log_position = log_position;
    job->done_fn = done;
    job->done_arg = arg;
    job->own = *enc;
    job->enc = &job->own;
    pthread_mutex_lock(&s->q_mu);
    int rc = enqueue(s, job);
    pthread_mutex_unlock(&s->q_mu);
    if (rc < 0) {
        free(job);
        return rc;
    }
    memset(enc, 0, sizeof *enc);
    return 0;
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
