/* storage/store.c - LMDB environment lifecycle, error translation, map growth, stats, snapshots. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/store_int.h"

#define DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define MAX_MAP_SIZE ((size_t)1 << 44)
/* Named databases: meta plus one per online view version (see STORE_MAX_VIEWS) and one more for
 * each one's history. */
#define MAX_DBS (2 * STORE_MAX_VIEWS + 2) /* + the change feed */

int store__buf_reserve(store__buf_t *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (d == NULL)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int store__buf_append(store__buf_t *b, const void *p, size_t n)
{
    int rc = store__buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void store__buf_free(store__buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* The one place LMDB's codes become errno values. */
int store__errno(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_MAP_FULL:
        return -ENOSPC;
    case MDB_DBS_FULL:
        return -EMFILE;
    case MDB_READERS_FULL:
    case MDB_TLS_FULL:
    case MDB_MAP_RESIZED:
        return -EAGAIN;
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return -E2BIG;
    case MDB_BAD_VALSIZE:
        return -EINVAL;
    case MDB_INCOMPATIBLE:
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID:
        return -EPROTO;
    case MDB_PAGE_NOTFOUND:
    case MDB_CORRUPTED:
    case MDB_PANIC:
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_BAD_DBI:
        return -EIO;
    default:
        /* LMDB passes system errors through as positive errno values. */
        return rc > 0 ? -rc : -EIO;
    }
}

bool store__log_due(store__lograte_t *l, uint64_t *unlogged)
{
    int64_t now = base_mono_us();
    pthread_mutex_lock(&l->mu);
    bool due = l->logged_us == 0 || now - l->logged_us >= 1000000;
    *unlogged = l->unlogged;
    if (due) {
        l->logged_us = now;
        l->unlogged = 0;
    } else {
        l->unlogged++;
    }
    pthread_mutex_unlock(&l->mu);
    return due;
}

void store__read_failed(store_t *s, const char *view, uint32_t version, int rc)
{
    atomic_fetch_add(&s->read_errors, 1);
    uint64_t unlogged;
    if (!store__log_due(&s->read_error_log, &unlogged))
        return;
    base_log(BASE_LOG_ERROR, "store_read_failed", "{s:s, s:s, s:I, s:s, s:I}", "data_dir", s->dir,
             "view", view != NULL ? view : "", "version", (long long)version, "error",
             strerror(-rc), "unlogged_since_last", (long long)unlogged);
}

int store__commit(MDB_txn *txn)
{
    int rc = store__fault(STORE__FAULT_COMMIT);
    if (rc == 0)
        return mdb_txn_commit(txn);
    mdb_txn_abort(txn);
    return rc;
}

int store__sync(store_t *s)
{
    int rc = store__fault(STORE__FAULT_SYNC);
    return store__errno(rc != 0 ? rc : mdb_env_sync(s->env, 1));
}

int store__meta_get(MDB_txn *txn, MDB_dbi meta, const char *key, MDB_val *val)
{
    MDB_val k = {strlen(key), (void *)key};
    return store__errno(mdb_get(txn, meta, &k, val));
}

int store__meta_u64(MDB_txn *txn, MDB_dbi meta, const char *key, uint64_t *out)
{
    MDB_val v;
    int rc = store__meta_get(txn, meta, key, &v);
    *out = 0;
    if (rc == -ENOENT)
        return 0;
    if (rc == 0 && v.mv_size != 8)
        return -EIO;
    if (rc == 0)
        *out = store__le64(v.mv_data);
    return rc;
}

int store__position_check(store_t *s, MDB_txn *txn, uint64_t position)
{
    uint64_t pos = 0;
    int rc = store__meta_u64(txn, s->meta, STORE__KEY_POSITION, &pos);
    if (rc < 0)
        return rc;
    if (position <= pos)
        return -EALREADY;
    if (s->log_contiguous && position != pos + 1)
        return -ESPIPE;
    return 0;
}

int store__meta_put(MDB_txn *txn, MDB_dbi meta, const char *key, const void *p, size_t n)
{
    MDB_val k = {strlen(key), (void *)key}, v = {n, (void *)p};
    return store__errno(mdb_put(txn, meta, &k, &v, 0));
}

int store__meta_del(MDB_txn *txn, MDB_dbi meta, const char *key)
{
    MDB_val k = {strlen(key), (void *)key};
    int rc = mdb_del(txn, meta, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : store__errno(rc);
}

int64_t store_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/*
 * Map growth. mdb_env_set_mapsize() remaps the file, so no transaction of this process may be
 * live: the caller takes the map lock exclusively, which waits for readers to reach
 * store_read_end() and for the writer to leave its transaction (readers in the reset state hold
 * no pointers). seen is the size the caller ran out of: when another thread already grew past
 * it, there is nothing to do. seen == 0 adopts a size another process set (MDB_MAP_RESIZED).
 */
static int map_resize(store_t *s, size_t seen)
{
    pthread_rwlock_wrlock(&s->map_lock);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    int rc = 0;
    if (seen == 0) {
        rc = store__errno(mdb_env_set_mapsize(s->env, 0));
    } else if (info.me_mapsize <= seen) {
        size_t size = info.me_mapsize * 2;
        int frc = size > MAX_MAP_SIZE ? 0 : store__fault(STORE__FAULT_MAP_GROW);
        rc = size > MAX_MAP_SIZE ? -ENOSPC
             : frc != 0          ? store__errno(frc)
                                 : store__errno(mdb_env_set_mapsize(s->env, size));
    }
    pthread_rwlock_unlock(&s->map_lock);
    return rc;
}

int store__map_grow(store_t *s, bool grow)
{
    if (!grow)
        return map_resize(s, 0);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    return map_resize(s, info.me_mapsize);
}

int store__txn_begin(store_t *s, store__txn_mode_t mode, MDB_txn **txn)
{
    for (;;) {
        if (mode == STORE__TXN_WRITE_EXCLUSIVE)
            pthread_rwlock_wrlock(&s->map_lock);
        else
            pthread_rwlock_rdlock(&s->map_lock);
        bool read = mode == STORE__TXN_READ || mode == STORE__TXN_RENEW;
        /* A reader's snapshot, not its creation (a worker's first request makes one). */
        int rc = mode == STORE__TXN_READ
                     ? 0
                     : store__fault(read ? STORE__FAULT_READ_BEGIN : STORE__FAULT_WRITE_BEGIN);
        if (rc == 0)
            rc = mode == STORE__TXN_RENEW ? mdb_txn_renew(*txn)
                                          : mdb_txn_begin(s->env, NULL, read ? MDB_RDONLY : 0, txn);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&s->map_lock);
        if (rc != MDB_MAP_RESIZED)
            return store__errno(rc);
        /* Adopting the new size needs the lock exclusively, so it was released above. */
        rc = store__map_grow(s, false);
        if (rc < 0)
            return rc;
    }
}

void store__txn_end(store_t *s, MDB_txn *txn, store__txn_end_t how)
{
    if (txn != NULL) {
        if (how == STORE__TXN_RESET)
            mdb_txn_reset(txn);
        else
            mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&s->map_lock);
}

static int open_meta(store_t *s, const store_options_t *opts, bool *upgrade)
{
    MDB_txn *txn = NULL;
    store__views_t *t = NULL;
    int rc = store__errno(mdb_txn_begin(s->env, NULL, opts->read_only ? MDB_RDONLY : 0, &txn));
    if (rc < 0)
        goto out;
    int mrc = mdb_dbi_open(txn, STORE__META_DB, opts->read_only ? 0 : MDB_CREATE, &s->meta);
    if (mrc == MDB_NOTFOUND) {
        rc = -ENOENT; /* read-only, and nothing was ever written here */
        goto out;
    }
    rc = store__errno(mrc);
    if (rc < 0)
        goto out;
    MDB_val v;
    rc = store__meta_get(txn, s->meta, STORE__KEY_FORMAT, &v);
    if (rc == -ENOENT && !opts->read_only) {
        uint8_t b[4];
        store__put_le32(b, STORE_FORMAT_VERSION);
        rc = store__meta_put(txn, s->meta, STORE__KEY_FORMAT, b, sizeof b);
    } else if (rc == 0) {
        if (v.mv_size != 4)
            rc = -EIO;
        else if (store__le32(v.mv_data) > STORE_FORMAT_VERSION)
            rc = -EPROTO;
        else if (store__le32(v.mv_data) < STORE_FORMAT_VERSION && opts->read_only)
            rc = -ENOEXEC; /* records without checksums: upgraded by a writable open */
        else if (store__le32(v.mv_data) < STORE_FORMAT_VERSION)
            *upgrade = true; /* store__upgrade_records(), which records the version */
    } else if (rc == -ENOENT) {
        rc = 0;
    }
    if (rc < 0)
        goto out;
    rc = store__meta_get(txn, s->meta, STORE__KEY_CATALOG, &v);
    if (rc == 0) {
        /* The recorded catalog was dumped by catalog_dump_yaml(), so it loads unless the catalog
         * module's format moved on; the data stays readable either way (slot tables are ours). */
        catalog_t *cat = NULL;
        if (catalog_load_string(v.mv_data, v.mv_size, "applied catalog", &cat, NULL) == 0)
            s->catalog = cat;
    } else if (rc != -ENOENT) {
        goto out;
    }
    /* History: the node's choice, remembered by the data directory for the tools that open it
     * after (fstore ingest, gc, apply follow the server that last ran here). */
    if (opts->history == STORE_HISTORY_AUTO) {
        rc = store__meta_get(txn, s->meta, STORE__KEY_HISTORY, &v);
        s->history = rc == 0;
        rc = rc == -ENOENT ? 0 : rc;
    } else {
        s->history = opts->history == STORE_HISTORY_ON;
        if (!opts->read_only)
            rc = s->history ? store__meta_put(txn, s->meta, STORE__KEY_HISTORY, "1", 1)
                            : store__meta_del(txn, s->meta, STORE__KEY_HISTORY);
    }
    if (rc == 0 && s->history) {
        /* The change feed (store_changes()). Its counter is read by each write transaction
         * (a misread one fails that write, never numbers from 0): not here. */
        int crc =
            mdb_dbi_open(txn, STORE__CHANGES_DB, opts->read_only ? 0 : MDB_CREATE, &s->changes);
        if (crc == MDB_NOTFOUND)
            s->changes = 0;
        else
            rc = store__errno(crc);
        /* History turned on for a directory whose catalog is already applied: the history
         * databases the catalog asks for, now (a catalog apply makes them too). */
        for (size_t i = 0; rc == 0 && !opts->read_only && s->catalog != NULL &&
                           i < catalog_view_count(s->catalog);
             i++) {
            const catalog_view_t *cv = catalog_view_at(s->catalog, i);
            char db[STORE__VIEW_KEY_MAX + 8] = STORE__PREFIX_HISTORY;
            char slots[STORE__VIEW_KEY_MAX + 16] = STORE__PREFIX_SLOTS;
            MDB_dbi hdbi;
            MDB_val sv;
            if (!cv->online || !cv->history ||
                store__view_key(db + strlen(db), sizeof db - strlen(db), cv->name, cv->version) <
                    0 ||
                store__view_key(slots + strlen(slots), sizeof slots - strlen(slots), cv->name,
                                cv->version) < 0)
                continue;
            /* Only for a view version with a database: one torn down since stays without. */
            int src = store__meta_get(txn, s->meta, slots, &sv);
            if (src == -ENOENT)
                continue;
            rc = src;
            if (rc < 0)
                break;
            rc = store__errno(mdb_dbi_open(txn, db, MDB_CREATE, &hdbi));
            if (rc == 0)
                rc = store__errno(mdb_set_compare(txn, hdbi, store__key_cmp));
        }
    }
    if (rc < 0)
        goto out;
    rc = store__views_build(txn, s->meta, s->catalog, s->history, ++s->views_gen, &t);
    if (rc < 0)
        goto out;
    if (opts->read_only) {
        /* Committing, not aborting: an aborted transaction closes the handles it opened. */
        rc = store__errno(mdb_txn_commit(txn));
        txn = NULL;
        if (rc < 0)
            goto out;
    } else {
        rc = store__errno(store__commit(txn));
        txn = NULL;
        if (rc < 0)
            goto out;
        rc = store__sync(s);
        if (rc < 0)
            goto out;
    }
    store__views_publish(s, t);
    t = NULL;
out:
    if (txn != NULL)
        mdb_txn_abort(txn);
    store__views_unref(t);
    return rc;
}

static bool crashed_open(store_t *s);
static int verify(store_t *s);
static int write_marker(store_t *s);

int store_open(const store_options_t *opts, store_t **out)
{
    store_t *s = NULL;
    int rc = -EINVAL;
    if (opts == NULL || opts->dir == NULL || out == NULL)
        goto fail;
    if (opts->read_only) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", opts->dir) >= sizeof path) {
            rc = -ENAMETOOLONG;
            goto fail;
        }
        if (access(path, R_OK) < 0) {
            rc = errno == ENOENT ? -ENOENT : -errno;
            goto fail;
        }
    } else {
        rc = mkdir_p(opts->dir);
        if (rc < 0)
            goto fail;
    }
    rc = -ENOMEM;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto fail;
    s->read_only = opts->read_only;
    s->sync = opts->sync;
    s->log_contiguous = opts->log_contiguous;

    s->tombstone_retention_us = (opts->tombstone_retention_s > 0 ? opts->tombstone_retention_s
                                                                 : STORE_TOMBSTONE_RETENTION_S) *
                                1000000;
    s->max_future_skew_us = store_future_skew_us(opts->max_future_skew_s);
    s->dir = strdup(opts->dir);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->map_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&s->views_mu, NULL);
    pthread_mutex_init(&s->vstats_mu, NULL);
    pthread_mutex_init(&s->damaged_log.mu, NULL);
    pthread_mutex_init(&s->read_error_log.mu, NULL);
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_cond_init(&s->q_cv, NULL);
    if (s->dir == NULL)
        goto fail;

    rc = store__errno(mdb_env_create(&s->env));
    if (rc < 0)
        goto fail;
    mdb_env_set_maxreaders(s->env, opts->max_readers ? opts->max_readers : 512);
    mdb_env_set_maxdbs(s->env, MAX_DBS);
    /*
     * STORE_SYNC_FULL, MDB_NOMETASYNC: a commit writes its data pages and fdatasyncs them before
     * it writes the meta page that makes them live, without syncing that meta page; the writer
     * then fsyncs once more (mdb_env_sync()) before anyone of the group is acknowledged. Two
     * fsyncs per group commit, in the order that keeps the file consistent through a power loss:
     * the meta page can never reach the disk ahead of the pages it points to. (MDB_NOSYNC plus
     * one fsync per group would be cheaper but write both in one unordered flush: a power loss
     * during it could leave a meta page pointing at pages that never made it.)
     * STORE_SYNC_LOG, MDB_NOSYNC and a store_flush() now and then (the replication watchdog,
     * every second): a replica's every acknowledged write is in the log, so a commit need not
     * wait for the disk; a machine crash is detected at the next open (the marker) and the
     * file verified.
     * STORE_SYNC_NONE, MDB_NOSYNC: no fsync at all until store_close() (bulk loads).
     * MDB_NOTLS: a reader's transaction is reset and renewed, possibly on another thread.
     * MDB_NORDAHEAD: reads are random point lookups; readahead only evicts useful pages.
     */
    unsigned flags =
        (opts->sync == STORE_SYNC_FULL ? MDB_NOMETASYNC : MDB_NOSYNC) | MDB_NOTLS | MDB_NORDAHEAD;
    if (opts->read_only)
        flags |= MDB_RDONLY;
    /* A new environment starts at the requested size; an existing one at its recorded size,
     * grown to the requested one if that is larger (never shrunk). */
    size_t want = opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", opts->dir);
    bool existed = stat(path, &st) == 0;
    if (!opts->read_only && !existed) {
        rc = store__errno(mdb_env_set_mapsize(s->env, want));
        if (rc < 0)
            goto fail;
    }
    rc = store__errno(mdb_env_open(s->env, opts->dir, flags, 0644));
    if (rc < 0)
        goto fail;
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    /* A file shorter than its meta page says (truncated by a copy, an operator, a full disk)
     * would be a SIGBUS at the first read of a page past its end: refused here, by name. */
    MDB_stat ms;
    if (stat(path, &st) == 0 && mdb_env_stat(s->env, &ms) == MDB_SUCCESS &&
        (uint64_t)st.st_size < ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize) {
        base_log(BASE_LOG_ERROR, "store_truncated", "{s:s, s:I, s:I, s:s}", "file", path, "bytes",
                 (long long)st.st_size, "meta_page_says",
                 (long long)(((uint64_t)info.me_last_pgno + 1) * ms.ms_psize), "note",
                 "the data file is shorter than its own meta page says (truncated): restore it "
                 "from a snapshot or a peer");
        rc = -EUCLEAN;
        goto fail;
    }
    /* A file with data but no meta database of ours is damaged (or not ours): it is refused
     * before a write transaction could try to create one in it, which LMDB does by writing
     * through whatever the damaged pages say (a heap overflow inside liblmdb, seen under
     * valgrind with pages overwritten). */
    if (existed && info.me_last_pgno > 1) {
        MDB_txn *probe = NULL;
        MDB_dbi dbi;
        int prc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &probe);
        if (prc == MDB_SUCCESS) {
            prc = mdb_dbi_open(probe, STORE__META_DB, 0, &dbi);
            mdb_txn_abort(probe);
        }
        /* Only what says the pages are wrong is damage: an I/O error or no free reader slot
         * is the open's failure, as it would be anywhere else (found by failing each LMDB
         * call of an open in turn, tests/storage/test_lmdb_faults.c). */
        bool damaged = prc == MDB_NOTFOUND || prc == MDB_CORRUPTED || prc == MDB_PAGE_NOTFOUND ||
                       prc == MDB_INVALID || prc == MDB_INCOMPATIBLE || prc == MDB_BAD_DBI;
        if (prc != MDB_SUCCESS && !damaged) {
            rc = store__errno(prc);
            goto fail;
        }
        if (prc != MDB_SUCCESS) {
            base_log(BASE_LOG_ERROR, "store_damaged", "{s:s, s:s, s:s}", "data_dir", s->dir,
                     "error", prc == MDB_NOTFOUND ? "no meta database" : mdb_strerror(prc), "note",
                     "the data file has data but not fstore's meta database: damaged, or not "
                     "fstore's; restore it from a snapshot or a peer");
            rc = -EUCLEAN;
            goto fail;
        }
    }
    if (!opts->read_only && info.me_mapsize < want) {
        rc = store__errno(mdb_env_set_mapsize(s->env, want));
        if (rc < 0)
            goto fail;
    }
    bool crashed = opts->sync == STORE_SYNC_LOG && !opts->read_only && crashed_open(s);
    bool upgrade = false;
    rc = open_meta(s, opts, &upgrade);
    /* Versions 1 (no tombstones) and 2 (no checksums): their records gain their checksums;
     * an older fstore refuses the store from then on. */
    if (rc == 0 && upgrade)
        rc = store__upgrade_records(s);
    if (rc == 0 && crashed)
        rc = verify(s);
    if (rc < 0 && crashed) {
        base_log(BASE_LOG_ERROR, "store_damaged", "{s:s, s:s, s:s}", "data_dir", s->dir, "error",
                 strerror(-rc), "note",
                 "the machine went down with this replica open and its file is damaged: remove "
                 "the data directory and start the node again (it bootstraps from a peer, or "
                 "replays the log)");
        rc = -EUCLEAN;
    }
    if (rc < 0)
        goto fail;
    if (opts->sync == STORE_SYNC_LOG && !opts->read_only) {
        rc = write_marker(s);
        if (rc < 0)
            goto fail;
    }
    if (!opts->read_only) {
        rc = store__writer_start(s);
        if (rc < 0)
            goto fail;
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return rc;
}

void store_close(store_t *s)
{
    if (s == NULL)
        return;
    store__writer_stop(s);
    store__views_publish(s, NULL);
    if (s->env != NULL) {
        /* One last fsync makes everything committed under STORE_SYNC_NONE durable too. */
        if (!s->read_only && mdb_env_sync(s->env, 1) == 0 && s->marker) {
            /* Flushed and closing: no crash to suspect at the next open. */
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", s->dir, STORE_OPEN_MARKER);
            unlink(path);
        }
        mdb_env_close(s->env);
    }
    catalog_unref(s->catalog);
    for (store__vstat_t *v = s->vstats, *next; v != NULL; v = next) {
        next = v->next;
        free(v);
    }
    pthread_mutex_destroy(&s->vstats_mu);
    pthread_mutex_destroy(&s->damaged_log.mu);
    pthread_mutex_destroy(&s->read_error_log.mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_mutex_destroy(&s->q_mu);
    pthread_mutex_destroy(&s->views_mu);
    pthread_rwlock_destroy(&s->map_lock);
    free(s->dir);
    free(s);
}

store__vstat_t *store__vstat(store_t *s, const char *name, uint32_t version)
{
    pthread_mutex_lock(&s->vstats_mu);
    store__vstat_t *v = s->vstats;
    while (v != NULL && (v->version != version || strcmp(v->name, name) != 0))
        v = v->next;
    if (v == NULL && (v = calloc(1, sizeof *v)) != NULL) {
        snprintf(v->name, sizeof v->name, "%s", name);
        v->version = version;
        v->next = s->vstats;
        s->vstats = v;
    }
    pthread_mutex_unlock(&s->vstats_mu);
    return v;
}

int store_view_stats(store_t *s, store_view_stats_fn fn, void *arg)
{
    pthread_mutex_lock(&s->vstats_mu);
    int rc = 0;
    for (store__vstat_t *v = s->vstats; v != NULL && rc == 0; v = v->next)
        rc = fn(arg, v->name, v->version, atomic_load_explicit(&v->rows, memory_order_relaxed),
                atomic_load_explicit(&v->newest_event_us, memory_order_relaxed));
    pthread_mutex_unlock(&s->vstats_mu);
    return rc;
}

int store_flush(store_t *s)
{
    return store__sync(s);
}

/* This boot's id (Linux): a marker with another one was left by an earlier boot. */
static void boot_id(char *out, size_t cap)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f == NULL || fgets(out, (int)cap, f) == NULL)
        snprintf(out, cap, "unknown");
    if (f != NULL)
        fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

static void marker_path(const store_t *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", s->dir, STORE_OPEN_MARKER);
}

/* STORE_SYNC_LOG: a marker left by another boot means the machine went down with the store open
 * (see store_open()). */
static bool crashed_open(store_t *s)
{
    char path[4200], now[64], then[64] = "";
    marker_path(s, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    if (fgets(then, sizeof then, f) == NULL)
        then[0] = '\0';
    fclose(f);
    then[strcspn(then, "\n")] = '\0';
    boot_id(now, sizeof now);
    return strcmp(then, now) != 0;
}

static void count_damage(void *arg, const store_verify_db_t *db)
{
    uint64_t *bad = arg;
    *bad += db->damaged + (db->error != NULL);
}

/* Reads every record back. Returns: 0, -EIO (a damaged record or page), or the first error. */
static int verify(store_t *s)
{
    uint64_t bad = 0;
    int rc = store_verify(s, NULL, count_damage, &bad);
    if (rc == 0 && bad > 0)
        rc = -EIO;
    if (rc == 0)
        base_log(BASE_LOG_WARN, "store_verified", "{s:s, s:s}", "data_dir", s->dir, "note",
                 "the machine went down with this replica open: every record was read back "
                 "intact; the log replays what the last second may have lost");
    return rc;
}

static int write_marker(store_t *s)
{
    char path[4200], now[64];
    marker_path(s, path, sizeof path);
    boot_id(now, sizeof now);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (write(fd, now, strlen(now)) < 0 || fsync(fd) < 0)
        rc = -errno;
    close(fd);
    s->marker = rc == 0;
    return rc;
}

int store_applied_catalog(store_t *s, catalog_t **out)
{
    pthread_mutex_lock(&s->views_mu);
    catalog_t *c = s->catalog != NULL ? catalog_ref(s->catalog) : NULL;
    pthread_mutex_unlock(&s->views_mu);
    if (c == NULL)
        return -ENOENT;
    *out = c;
    return 0;
}

/* A short read transaction under the map lock, for the maintenance getters below. */
static int read_txn(store_t *s, MDB_txn **txn)
{
    return store__txn_begin(s, STORE__TXN_READ, txn);
}

static void read_txn_end(store_t *s, MDB_txn *txn)
{
    store__txn_end(s, txn, STORE__TXN_ABORT);
}

int store_last_position(store_t *s, uint64_t *pos)
{
    MDB_txn *txn;
    int rc = read_txn(s, &txn);
    if (rc < 0)
        return rc;
    rc = store__meta_u64(txn, s->meta, STORE__KEY_POSITION, pos);
    read_txn_end(s, txn);
    return rc;
}

int store_written_locally(store_t *s, bool *out)
{
    *out = false;
    MDB_txn *txn;
    int rc = read_txn(s, &txn);
    if (rc < 0)
        return rc;
    MDB_val v;
    rc = store__meta_get(txn, s->meta, STORE__KEY_LOCAL_ROWS, &v);
    *out = rc == 0;
    if (rc == -ENOENT)
        rc = 0;
    read_txn_end(s, txn);
    return rc;
}

int store_holds_rows(store_t *s, bool *any)
{
    *any = false;
    MDB_txn *txn;
    int rc = read_txn(s, &txn);
    if (rc < 0)
        return rc;
    store__views_t *t = store__views_get(s);
    for (size_t i = 0; t != NULL && i < t->n && rc == 0 && !*any; i++) {
        MDB_stat st;
        rc = store__errno(mdb_stat(txn, t->items[i].dbi, &st));
        *any = rc == 0 && st.ms_entries > 0;
        if (rc == 0 && !*any && t->items[i].hdbi != 0) {
            rc = store__errno(mdb_stat(txn, t->items[i].hdbi, &st));
            *any = rc == 0 && st.ms_entries > 0;
        }
    }
    store__views_unref(t);
    read_txn_end(s, txn);
    return rc;
}

int store_stat(store_t *s, store_stats_t *out)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = store__errno(mdb_env_info(s->env, &info));
    if (rc == 0)
        rc = store__errno(mdb_env_stat(s->env, &st));
    if (rc == 0)
        rc = store_last_position(s, &out->last_position);
    if (rc < 0)
        return rc;
    out->map_size = info.me_mapsize;
    out->used_bytes = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    store__views_t *t = store__views_get(s);
    out->n_views = t != NULL ? t->n : 0;
    store__views_unref(t);
    out->commits = atomic_load(&s->commits);
    out->batches = atomic_load(&s->batches);
    out->damaged = atomic_load(&s->damaged);
    out->read_errors = atomic_load(&s->read_errors);
    return 0;
}

int store_count_rows(store_t *s, const catalog_view_t *v, size_t *rows)
{
    MDB_txn *txn;
    int rc = read_txn(s, &txn);
    if (rc < 0)
        return rc;
    /* Under the map lock the published table cannot change. Tombstones are not rows: the
     * records are walked (this is for the CLI and tests, not for requests). */
    const store__view_t *e = store__views_find(s->views, v->name, v->version);
    MDB_cursor *cur = NULL;
    size_t n = 0;
    if (e == NULL)
        rc = -ENOENT;
    else
        rc = store__errno(mdb_cursor_open(txn, e->dbi, &cur));
    if (rc == 0) {
        MDB_val k, d;
        int mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
        for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
            /* A damaged record is a row whose content is unknown: counted (fstore verify and
             * the reads report it), never a reason to fail the count. */
            store__rec_t r;
            n += store__rec_check(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &r) < 0 ||
                 !r.tombstone;
        }
        rc = mrc == MDB_NOTFOUND ? 0 : store__errno(mrc);
        mdb_cursor_close(cur);
    }
    if (rc == 0)
        *rows = n;
    read_txn_end(s, txn);
    return rc;
}

static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    int rc = 1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            rc = 0;
            break;
        }
    }
    closedir(d);
    return rc;
}

int store_snapshot(store_t *s, const char *out_dir)
{
    int rc = mkdir_p(out_dir);
    if (rc < 0)
        return rc;
    rc = dir_is_empty(out_dir);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return -EEXIST;
    /*
     * mdb_env_copy2() reads through its own read transaction, so writers carry on; holding the
     * map lock shared keeps a map resize from pulling the pages out from under it (a resize
     * waits for the copy to finish).
     */
    pthread_rwlock_rdlock(&s->map_lock);
    rc = store__errno(mdb_env_copy2(s->env, out_dir, MDB_CP_COMPACT));
    pthread_rwlock_unlock(&s->map_lock);
    return rc;
}

/* One record into a digest: key, whether deleted, event time, and every feature of v by name
 * (slot numbers differ between stores that applied different catalog histories). */
static int digest_record(const store__view_t *e, const catalog_view_t *v, const MDB_val *k,
                         const MDB_val *d, uint64_t *h, bool *tombstone)
{
    store__rec_t r;
    if (store__rec_check(k->mv_data, k->mv_size, d->mv_data, d->mv_size, &r) < 0)
        return -EBADMSG;
    uint8_t b[9];
    store__put_le32(b, (uint32_t)k->mv_size);
    *h = base_fnv1a(b, 4, *h);
    *h = base_fnv1a(k->mv_data, k->mv_size, *h);
    b[0] = r.tombstone;
    store__put_le64(b + 1, (uint64_t)r.event_ts_us);
    *h = base_fnv1a(b, 9, *h);
    *tombstone = r.tombstone;
    for (size_t f = 0; f < v->n_features && !r.tombstone; f++) {
        uint32_t slot = store__slot_of(e, v, (uint32_t)f);
        const uint8_t *p = NULL;
        size_t n = 0;
        if (slot != UINT32_MAX && store__rec_slot(&r, slot, &p, &n) < 0)
            return -EIO;
        /* absent (never written) and an explicit null (empty) hash differently */
        b[0] = p == NULL ? 0 : 1;
        store__put_le32(b + 1, (uint32_t)n);
        *h = base_fnv1a(b, 5, *h);
        *h = base_fnv1a(p, n, *h);
    }
    return 0;
}

int store_digest(store_t *s, store_digest_fn fn, void *arg)
{
    catalog_t *cat = NULL;
    int rc = store_applied_catalog(s, &cat);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < catalog_view_count(cat) && rc == 0; i++) {
        const catalog_view_t *v = catalog_view_at(cat, i);
        MDB_txn *txn;
        rc = read_txn(s, &txn);
        if (rc < 0)
            break;
        /* Under the map lock the published table cannot change. */
        const store__view_t *e = store__views_find(s->views, v->name, v->version);
        if (e == NULL) {
            read_txn_end(s, txn);
            continue;
        }
        MDB_cursor *cur = NULL;
        uint64_t h = BASE_FNV_OFFSET;
        size_t rows = 0, tombs = 0;
        rc = store__errno(mdb_cursor_open(txn, e->dbi, &cur));
        if (rc == 0) {
            MDB_val k, d;
            int mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
            for (; mrc == 0 && rc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
                bool tomb = false;
                rc = digest_record(e, v, &k, &d, &h, &tomb);
                tombs += tomb;
                rows += !tomb;
            }
            if (rc == 0 && mrc != MDB_NOTFOUND)
                rc = store__errno(mrc);
            mdb_cursor_close(cur);
        }
        read_txn_end(s, txn);
        if (rc == 0)
            rc = fn(arg, v, h, rows, tombs);
    }
    catalog_unref(cat);
    return rc;
}

const char *store_strerror(int rc)
{
    switch (rc) {
    case -EBADMSG:
        return "a damaged record (its checksum does not match): run fstore verify";
    case -ENOEXEC:
        return "written by an older fstore, its records without checksums yet: a command that "
               "writes (fstore serve, gc, apply) upgrades it once";
    case -EPROTO:
        return "written by a newer fstore (or not a store): use that fstore";
    case -EBUSY:
        return "its records need their checksums and another process (an older fstore) has it "
               "open: stop that process first";
    case -EUCLEAN:
        return "the data file is damaged (see the log line before this): restore it from a "
               "snapshot, a peer or the log";
    default:
        return strerror(-rc);
    }
}
