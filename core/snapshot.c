/* core/snapshot.c - a consistent copy of the store, handed out in chunks (node bootstrap). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core_int.h"

/*
 * One copy at a time (CORE_MAX_SNAPSHOTS): a compacted LMDB copy (store_snapshot(), which lets
 * writers carry on) in a directory beside the data directory, read by offset, removed by
 * core_snapshot_end() or after CORE_SNAPSHOT_IDLE_S without a read (a client that went away
 * cannot keep the disk space). The copy's log position is read from the copy itself.
 */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Frees the current copy. Lock held. */
static void drop_locked(core_t *c)
{
    if (c->snap_fd >= 0)
        close(c->snap_fd);
    c->snap_fd = -1;
    if (c->snap_dir[0] != '\0')
        nftw(c->snap_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    c->snap_dir[0] = '\0';
    c->snap_id[0] = '\0';
}

void core__snapshot_reap(core_t *c, bool all)
{
    pthread_mutex_lock(&c->snap_mu);
    if (c->snap_id[0] != '\0' &&
        (all || base_mono_us() - c->snap_used_us > CORE_SNAPSHOT_IDLE_S * 1000000ll)) {
        if (!all)
            base_log(BASE_LOG_WARN, "snapshot_expired", "{s:s}", "snapshot", c->snap_id);
        drop_locked(c);
    }
    pthread_mutex_unlock(&c->snap_mu);
}

int core_snapshot_begin(core_t *c, core_snapshot_t *out, char *msg, size_t cap)
{
    if (core_health(c) != CORE_SERVING) {
        snprintf(msg, cap,
                 "this node is not serving (not caught up with the log, or draining): "
                 "bootstrap from a ready node");
        return -EAGAIN;
    }
    core__snapshot_reap(c, false);
    pthread_mutex_lock(&c->snap_mu);
    int rc = 0;
    if (c->snap_id[0] != '\0') {
        snprintf(msg, cap,
                 "a snapshot is already being taken from this node (at most %d at a "
                 "time): retry in a minute",
                 CORE_MAX_SNAPSHOTS);
        rc = -ENOBUFS;
        goto out;
    }
    uint8_t r[8];
    base_random(r, sizeof r);
    snprintf(c->snap_id, sizeof c->snap_id, "%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
             r[3], r[4], r[5], r[6], r[7]);
    snprintf(c->snap_dir, sizeof c->snap_dir, "%s.snapshot-%s", c->data_dir, c->snap_id);
    rc = store_snapshot(c->store, c->snap_dir);
    if (rc == 0) {
        /* The copy's position: what it holds everything up to. */
        store_options_t so = {.dir = c->snap_dir, .read_only = true};
        store_t *copy = NULL;
        rc = store_open(&so, &copy);
        if (rc == 0)
            rc = store_last_position(copy, &out->sequence);
        store_close(copy);
    }
    char path[sizeof c->snap_dir + 16];
    snprintf(path, sizeof path, "%s/data.mdb", c->snap_dir);
    struct stat st;
    if (rc == 0) {
        c->snap_fd = open(path, O_RDONLY | O_CLOEXEC);
        rc = c->snap_fd < 0 || fstat(c->snap_fd, &st) < 0 ? -errno : 0;
    }
    if (rc < 0) {
        snprintf(msg, cap, "cannot copy the store to %s: %s", c->snap_dir, strerror(-rc));
        drop_locked(c);
        goto out;
    }
    c->snap_size = (uint64_t)st.st_size;
    c->snap_used_us = base_mono_us();
    snprintf(out->id, sizeof out->id, "%s", c->snap_id);
    out->size = c->snap_size;
    base_log(BASE_LOG_INFO, "snapshot_taken", "{s:s, s:I, s:I}", "snapshot", c->snap_id, "bytes",
             (json_int_t)c->snap_size, "sequence", (json_int_t)out->sequence);
out:
    pthread_mutex_unlock(&c->snap_mu);
    return rc;
}

int core_snapshot_read(core_t *c, const char *id, uint64_t offset, uint8_t *buf, size_t cap,
                       size_t *n, char *msg, size_t msg_cap)
{
    pthread_mutex_lock(&c->snap_mu);
    int rc = 0;
    if (c->snap_id[0] == '\0' || strcmp(id, c->snap_id) != 0) {
        snprintf(msg, msg_cap,
                 "no snapshot '%.40s' on this node (ended, or expired after %d s "
                 "without a read)",
                 id, CORE_SNAPSHOT_IDLE_S);
        rc = -ENOENT;
    } else if (offset > c->snap_size) {
        snprintf(msg, msg_cap, "offset %llu is past the snapshot's %llu bytes",
                 (unsigned long long)offset, (unsigned long long)c->snap_size);
        rc = -EINVAL;
    } else {
        size_t want = cap;
        if (offset + want > c->snap_size)
            want = (size_t)(c->snap_size - offset);
        ssize_t got = want > 0 ? pread(c->snap_fd, buf, want, (off_t)offset) : 0;
        if (got < 0) {
            rc = -errno;
            snprintf(msg, msg_cap, "reading the snapshot: %s", strerror(errno));
        } else {
            *n = (size_t)got;
            c->snap_used_us = base_mono_us();
        }
    }
    pthread_mutex_unlock(&c->snap_mu);
    return rc;
}

int core_snapshot_end(core_t *c, const char *id)
{
    pthread_mutex_lock(&c->snap_mu);
    int rc = -ENOENT;
    if (c->snap_id[0] != '\0' && strcmp(id, c->snap_id) == 0) {
        base_log(BASE_LOG_INFO, "snapshot_ended", "{s:s}", "snapshot", c->snap_id);
        drop_locked(c);
        rc = 0;
    }
    pthread_mutex_unlock(&c->snap_mu);
    return rc;
}

typedef struct gc_stop {
    core_t *core;
    int64_t deadline_us;
    int why; /* what stopped it: -ETIMEDOUT, -ESHUTDOWN */
} gc_stop_t;

static bool gc_should_stop(void *arg)
{
    gc_stop_t *g = arg;
    if (g->deadline_us > 0 && base_mono_us() >= g->deadline_us)
        g->why = -ETIMEDOUT;
    else if (atomic_load(&g->core->served) && atomic_load(&g->core->health) != CORE_SERVING)
        g->why = -ESHUTDOWN;
    return g->why != 0;
}

/* A replica sweeps through the log: every node at the same place, by this node's clock and
 * tombstone retention (repl_publish_gc()). */
static int gc_through_log(core_t *c, int64_t deadline_us, size_t *deleted, char *msg, size_t cap)
{
    repl_result_t res;
    int rc = repl_publish_gc(core_repl(c), store_now_us(), c->tombstone_retention_s * 1000000,
                             deadline_us, &res, msg, cap);
    if (rc < 0) {
        base_log(BASE_LOG_ERROR, "gc_failed", "{s:s}", "error", msg);
        return rc;
    }
    if (!res.applied) {
        repl_state_t st = repl_state(core_repl(c));
        bool stuck = st == REPL_NEEDS_SNAPSHOT || st == REPL_FAILED;
        if (stuck)
            snprintf(msg, cap,
                     "gc is in the replication log at sequence %llu, but this node is not "
                     "applying the log (%s): the other nodes apply it in its place",
                     (unsigned long long)res.seq, repl_state_name(st));
        else
            snprintf(msg, cap,
                     "gc is in the replication log at sequence %llu; this node had not applied "
                     "it by the deadline (every node applies it in its place)",
                     (unsigned long long)res.seq);
        base_log(BASE_LOG_INFO, "gc_published", "{s:I, s:b}", "sequence", (json_int_t)res.seq,
                 "applied", 0);
        return stuck ? -ESTALE : -ETIMEDOUT;
    }
    *deleted = res.written;
    base_log(BASE_LOG_INFO, "gc_published", "{s:I, s:b, s:I}", "sequence", (json_int_t)res.seq,
             "applied", 1, "deleted", (json_int_t)res.written);
    return 0;
}

int core_gc(core_t *c, int64_t deadline_us, size_t *deleted, char *msg, size_t cap)
{
    *deleted = 0;
    if (atomic_exchange(&c->gc_running, true)) {
        snprintf(msg, cap, "a gc is already running on this node: try again when it ends");
        return -EALREADY;
    }
    int64_t t0 = base_mono_us();
    if (core_repl(c) != NULL) {
        int rc = gc_through_log(c, deadline_us, deleted, msg, cap);
        atomic_store(&c->gc_running, false);
        return rc;
    }
    gc_stop_t g = {c, deadline_us, 0};
    int rc = store_gc_until(core_store(c), store_now_us(), gc_should_stop, &g, deleted);
    atomic_store(&c->gc_running, false);
    if (rc == -ECANCELED) {
        snprintf(msg, cap, "gc stopped after deleting %zu records: %s; the next gc sweeps the rest",
                 *deleted,
                 g.why == -ETIMEDOUT ? "the call's deadline passed" : "the server is stopping");
        base_log(BASE_LOG_INFO, "gc_stopped", "{s:I, s:s}", "deleted", (json_int_t)*deleted, "why",
                 g.why == -ETIMEDOUT ? "deadline" : "draining");
        return g.why;
    }
    if (rc < 0) {
        /* What it deleted before the failure stays deleted (store_gc() commits in small
         * transactions); the count is not known then. */
        snprintf(msg, cap, "gc failed: %s", strerror(-rc));
        base_log(BASE_LOG_ERROR, "gc_failed", "{s:s}", "error", strerror(-rc));
        return rc;
    }
    base_log(BASE_LOG_INFO, "gc", "{s:I, s:I}", "deleted", (json_int_t)*deleted, "ms",
             (json_int_t)((base_mono_us() - t0) / 1000));
    return 0;
}
