/* repl/apply.c - the log into the store: the ordered consumer, the applier, the watchdog. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repl/repl_int.h"

/*
 * Delivery. An ordered push consumer (1 s heartbeats) delivers the stream from the last applied
 * sequence (not the one after: cnats 3.4.1 restarts a consumer reset before its first message
 * from sequence 1, and the known first message proves the start). Each message must be exactly
 * the next sequence: lower is a replay and is dropped, higher is a gap (a client-side drop, a
 * retention hole) and makes the watchdog subscribe again from the store's position.
 *
 * Apply. A write message is decoded against the catalog the store applied last and handed to
 * the store's writer (store_apply_wire_async() at its sequence), up to --apply-window messages
 * ahead of the commits, so the writer commits many messages per transaction. A catalog message
 * waits for the writes before it (store_apply_catalog_at() queues behind them) and is applied
 * in its place. A sweep (gc) message is applied the same way, alone: the delivery thread waits
 * for it (store_gc_at() takes several transactions, which nothing later may come between), so
 * every replica deletes the same records at the same place in the log. A message that cannot
 * apply here (malformed, a view this catalog lacks, a catalog this store refuses) is logged and
 * passed: its position is recorded with nothing else.
 * The store itself refuses any position but the next (log_contiguous), so an apply that failed
 * (disk full, I/O) fails every later one too, and the watchdog starts again from the store's
 * position: nothing is ever skipped.
 *
 * Watchdog (every 250 ms; stream info every second): completes writes whose apply did not
 * follow in time, notices a consumer that delivers nothing while the stream has more (a stall
 * cnats does not report) and one the error handler flagged, notices retention past the next
 * sequence (the replica then needs a snapshot and stops), and declares the replica ready once
 * it reached the stream's last sequence seen at start (within --max-lag).
 */

#define TICK_MS 250

typedef struct apply_job {
    repl_t *r;
    uint64_t seq;
    int64_t time_ns; /* the message's publish time */
} apply_job_t;

/* Catching up is over once the applied sequence reached the target (within --max-lag). */
static void ready_locked(repl_t *r)
{
    if (r->state == REPL_CATCHING_UP && r->applied + r->o.max_lag >= r->target) {
        r->state = REPL_READY;
        base_log(BASE_LOG_INFO, "replica_ready", "{s:s, s:I, s:I}", "stream", r->stream, "applied",
                 (json_int_t)r->applied, "target", (json_int_t)r->target);
        pthread_cond_broadcast(&r->cv);
    }
}

/* On the store's writer thread, once a message's group committed (or failed). */
static void apply_done(void *arg, int rc, const store_apply_result_t *res)
{
    apply_job_t *j = arg;
    repl_t *r = j->r;
    pthread_mutex_lock(&r->mu);
    r->in_flight--;
    if (rc == 0 || rc == -EALREADY) {
        size_t x = j->seq % (sizeof r->recent / sizeof r->recent[0]);
        r->recent[x].seq = j->seq;
        r->recent[x].written = res != NULL ? res->written : 0;
        r->recent[x].stale = res != NULL ? res->stale : 0;
    }
    /* A write of this node's own, waiting for this: it learns what the store did. */
    for (repl__pub_t *p = r->wait_head; p != NULL && p->res.seq <= j->seq; p = p->next) {
        if (p->res.seq == j->seq && (rc == 0 || rc == -EALREADY)) {
            p->res.applied = true;
            p->res.written = res != NULL ? res->written : 0;
            p->res.stale = res != NULL ? res->stale : 0;
        }
    }
    if (rc == 0 || rc == -EALREADY || rc == -ENOENT) {
        if (rc == -ENOENT)
            r->skipped++;
        if (j->seq > r->applied) {
            r->applied = j->seq;
            r->applied_time_ns = j->time_ns;
        }
        if (r->applied + 1 >= r->next)
            r->next_time_ns = 0;
        if (r->state == REPL_FAILED) {
            /* Applying again (space freed): serving again once caught up with what the stream
             * holds now, not with its end at start (which one apply may already pass). */
            r->state = REPL_CATCHING_UP;
            if (r->stream_last > r->target)
                r->target = r->stream_last;
            base_log(BASE_LOG_INFO, "replica_apply_resumed", "{s:s, s:I}", "stream", r->stream,
                     "sequence", (json_int_t)j->seq);
        }
        ready_locked(r);
    } else if (!r->halted) {
        r->halted = true;
        /* The store refused (disk full, I/O): not serving, and reads refused, until a retry
         * applies. A position gap (-ESPIPE) is only a resubscription. */
        if (rc != -ESPIPE && r->state != REPL_NEEDS_SNAPSHOT)
            r->state = REPL_FAILED;
        snprintf(r->last_error, sizeof r->last_error, "applying sequence %llu: %s",
                 (unsigned long long)j->seq, strerror(-rc));
        if (rc != -ESPIPE)
            base_log(BASE_LOG_ERROR, "replica_apply_failed", "{s:s, s:I, s:s}", "stream", r->stream,
                     "sequence", (json_int_t)j->seq, "error", strerror(-rc));
    }
    repl__pub_t *done = repl__release_locked(r, false, 0);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    repl__complete(done, 0, NULL);
    free(j);
}

/* Records seq's position with nothing applied: a message this node cannot apply. */
static void pass(repl_t *r, apply_job_t *j, const char *why)
{
    pthread_mutex_lock(&r->mu);
    r->skipped++;
    snprintf(r->last_error, sizeof r->last_error, "sequence %llu passed: %s",
             (unsigned long long)j->seq, why);
    pthread_mutex_unlock(&r->mu);
    base_log(BASE_LOG_ERROR, "replica_message_passed", "{s:s, s:I, s:s}", "stream", r->stream,
             "sequence", (json_int_t)j->seq, "error", why);
    int rc = store_apply_wire_async(r->store, NULL, 0, j->seq, NULL, apply_done, j);
    if (rc < 0)
        apply_done(j, rc, NULL);
}

static void apply_catalog(repl_t *r, apply_job_t *j, const uint8_t *data, size_t len)
{
    char err[256] = "";
    catalog_t *cat = NULL;
    int rc = repl_msg_decode_catalog(data, len, &cat, err, sizeof err);
    if (rc < 0) {
        pass(r, j, err[0] ? err : strerror(-rc));
        return;
    }
    catalog_plan_t plan = {0};
    rc = store_apply_catalog_at(r->store, cat, &plan, j->seq);
    catalog_plan_clear(&plan);
    if (rc == 0) {
        base_log(BASE_LOG_INFO, "catalog_applied_from_log", "{s:s, s:s, s:I}", "stream", r->stream,
                 "digest", catalog_digest(cat), "sequence", (json_int_t)j->seq);
        pthread_mutex_lock(&r->mu);
        catalog_t *old = r->catalog;
        r->catalog = catalog_ref(cat);
        pthread_mutex_unlock(&r->mu);
        catalog_unref(old);
        if (r->o.on_catalog != NULL)
            r->o.on_catalog(r->o.on_catalog_arg, catalog_ref(cat), j->seq);
    }
    if (rc == -EPERM || rc == -EINVAL || rc == -EMFILE) {
        snprintf(err, sizeof err,
                 "the log's catalog %s has changes this store refuses (%s): it keeps serving "
                 "its catalog",
                 catalog_digest(cat), rc == -EPERM ? "breaking" : strerror(-rc));
        catalog_unref(cat);
        pass(r, j, err);
        return;
    }
    catalog_unref(cat);
    apply_done(j, rc, NULL);
}

static bool gc_stop(void *arg)
{
    repl_t *r = arg;
    pthread_mutex_lock(&r->mu);
    bool stop = r->closing;
    pthread_mutex_unlock(&r->mu);
    return stop;
}

static void apply_gc(repl_t *r, apply_job_t *j, const uint8_t *data, size_t len)
{
    int64_t now_us = 0, keep_us = 0;
    if (repl_msg_decode_gc(data, len, &now_us, &keep_us) < 0) {
        pass(r, j, "malformed gc message");
        return;
    }
    int64_t t0 = base_mono_us();
    size_t deleted = 0;
    int rc = store_gc_at(r->store, now_us, keep_us, j->seq, gc_stop, r, &deleted);
    pthread_mutex_lock(&r->mu);
    r->last_delivery_us = base_mono_us(); /* the sweep's time is not a stalled consumer's */
    pthread_mutex_unlock(&r->mu);
    if (rc == -ECANCELED) {
        /* Closing: no position recorded; the next start sweeps from this message again. */
        pthread_mutex_lock(&r->mu);
        r->in_flight--;
        r->halted = true;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        free(j);
        return;
    }
    if (rc == 0)
        base_log(BASE_LOG_INFO, "gc_applied_from_log", "{s:s, s:I, s:I, s:I}", "stream", r->stream,
                 "sequence", (json_int_t)j->seq, "deleted", (json_int_t)deleted, "ms",
                 (json_int_t)((base_mono_us() - t0) / 1000));
    store_apply_result_t res = {.written = deleted};
    apply_done(j, rc, &res);
}

static void apply_write(repl_t *r, apply_job_t *j, const uint8_t *data, size_t len)
{
    char err[256] = "";
    pthread_mutex_lock(&r->mu);
    catalog_t *cat = catalog_ref(r->catalog);
    pthread_mutex_unlock(&r->mu);
    if (cat == NULL) {
        pass(r, j, "a write before any catalog");
        return;
    }
    repl_msg_write_t m;
    int rc = repl_msg_decode_write(data, len, cat, &m, err, sizeof err);
    if (rc < 0) {
        catalog_unref(cat);
        pass(r, j, err[0] ? err : strerror(-rc));
        return;
    }
    store_apply_result_t res;
    rc = store_apply_wire_async(r->store, m.batches, m.n_batches, j->seq, &res, apply_done, j);
    repl_msg_write_free(&m);
    catalog_unref(cat);
    if (rc == -EINVAL || rc == -ENOENT) {
        char why[800];
        snprintf(why, sizeof why, "batch %zu row %zu %s: %s", res.bad_batch, res.bad_row,
                 res.bad_field, res.error);
        pass(r, j, why);
    } else if (rc < 0) {
        apply_done(j, rc, NULL);
    }
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    repl__sub_t *c = closure;
    repl_t *r = c->r;
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
        natsMsg_Destroy(msg);
        return;
    }
    uint64_t seq = meta->Sequence.Stream;
    int64_t time_ns = meta->Timestamp;
    jsMsgMetaData_Destroy(meta);

    pthread_mutex_lock(&r->mu);
    r->last_delivery_us = base_mono_us();
    if (seq > r->stream_last)
        r->stream_last = seq;
    bool drop = c->gen != r->sub_gen || r->closing || r->halted ||
                r->state == REPL_NEEDS_SNAPSHOT || seq < r->next;
    if (!drop && seq > r->next) {
        /* A gap: a message the client dropped, or one retention took. */
        if (!r->resubscribe)
            base_log(BASE_LOG_WARN, "replica_gap", "{s:s, s:I, s:I}", "stream", r->stream,
                     "expected", (json_int_t)r->next, "delivered", (json_int_t)seq);
        r->resubscribe = true;
        drop = true;
    }
    /* Keep at most --apply-window messages ahead of the commits. */
    while (!drop && r->in_flight >= r->o.apply_window) {
        int64_t until = base_mono_us() + 100000;
        struct timespec ts = {until / 1000000, (until % 1000000) * 1000};
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        drop = c->gen != r->sub_gen || r->closing || r->halted;
    }
    apply_job_t *j = drop ? NULL : malloc(sizeof *j);
    if (j != NULL) {
        r->next = seq + 1;
        r->in_flight++;
        if (r->next_time_ns == 0)
            r->next_time_ns = time_ns;
    }
    pthread_mutex_unlock(&r->mu);
    if (j == NULL) {
        natsMsg_Destroy(msg);
        return;
    }
    j->r = r;
    j->seq = seq;
    j->time_ns = time_ns;
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    int kind = repl_msg_kind(data, len);
    if (kind == REPL_MSG_CATALOG)
        apply_catalog(r, j, data, len);
    else if (kind == REPL_MSG_WRITE)
        apply_write(r, j, data, len);
    else if (kind == REPL_MSG_GC)
        apply_gc(r, j, data, len);
    else
        pass(r, j, "not an fstore message (or a newer format)");
    natsMsg_Destroy(msg);
}

static void on_complete(void *closure)
{
    repl__sub_t *c = closure;
    repl_t *r = c->r;
    pthread_mutex_lock(&r->mu);
    r->live_subs--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    free(c);
}

/* Drops the current subscription, if any (its OnComplete frees its closure later). */
void repl__unsubscribe(repl_t *r)
{
    pthread_mutex_lock(&r->mu);
    natsSubscription *old = r->sub;
    r->sub = NULL;
    r->sub_gen++;
    pthread_mutex_unlock(&r->mu);
    if (old != NULL)
        natsSubscription_Destroy(old);
}

/* (Re)creates the consumer at the store's next sequence. Returns: 0, -EAGAIN. */
int repl__subscribe(repl_t *r, const char *reason)
{
    repl__unsubscribe(r);
    repl__sub_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -EAGAIN;
    pthread_mutex_lock(&r->mu);
    uint64_t start = r->next > 1 ? r->next - 1 : 1;
    c->r = r;
    c->gen = r->sub_gen;
    r->resubscribe = false;
    pthread_mutex_unlock(&r->mu);

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = r->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = start;
    so.Config.Heartbeat = 1000000000ll;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    jsCtx *js = repl__conn_begin(r);
    natsStatus s = js_Subscribe(&sub, js, r->filter, on_msg, c, NULL, &so, &jerr);
    repl__conn_end(r);
    if (s == NATS_OK && natsSubscription_SetOnCompleteCB(sub, on_complete, c) != NATS_OK) {
        /* Closed already: no callback will come, none is running. */
        natsSubscription_Destroy(sub);
        s = NATS_INVALID_SUBSCRIPTION;
        sub = NULL;
    }
    if (s != NATS_OK) {
        char why[200];
        repl__nats_text(s, jerr, why, sizeof why);
        pthread_mutex_lock(&r->mu);
        r->resubscribe = true;
        snprintf(r->last_error, sizeof r->last_error, "subscribing at %llu: %s",
                 (unsigned long long)start, why);
        pthread_mutex_unlock(&r->mu);
        if (sub == NULL)
            free(c);
        return -EAGAIN;
    }
    pthread_mutex_lock(&r->mu);
    r->live_subs++;
    bool stale = c->gen != r->sub_gen || r->closing;
    if (!stale) {
        r->sub = sub;
        r->last_delivery_us = base_mono_us();
        if (reason != NULL)
            r->resubscribes++;
    }
    pthread_mutex_unlock(&r->mu);
    if (stale)
        natsSubscription_Destroy(sub);
    else if (reason != NULL)
        base_log(BASE_LOG_WARN, "replica_resubscribed", "{s:s, s:I, s:s}", "stream", r->stream,
                 "from", (json_int_t)start, "reason", reason);
    return 0;
}

/* Stream info into the state. Returns: 0, -EAGAIN. */
static int poll_stream(repl_t *r)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    jsCtx *js = repl__conn_begin(r);
    natsStatus s = js_GetStreamInfo(&si, js, r->stream, &jo, &jerr);
    repl__conn_end(r);
    if (s != NATS_OK)
        return -EAGAIN;
    pthread_mutex_lock(&r->mu);
    r->stream_first = si->State.FirstSeq;
    if (si->State.LastSeq > r->stream_last)
        r->stream_last = si->State.LastSeq;
    pthread_mutex_unlock(&r->mu);
    jsStreamInfo_Destroy(si);
    return 0;
}

/* Retention took the next sequence: the replica cannot catch up from the log. Lock held. */
static bool needs_snapshot_locked(repl_t *r)
{
    return r->stream_first > r->applied + 1 && r->stream_last >= r->stream_first &&
           r->in_flight == 0;
}

static void set_needs_snapshot_locked(repl_t *r)
{
    r->state = REPL_NEEDS_SNAPSHOT;
    snprintf(r->last_error, sizeof r->last_error,
             "the stream's first sequence is %llu but this replica needs %llu next (retention "
             "dropped it): it needs a snapshot (start it with an empty --data-dir and "
             "--bootstrap-from a ready peer)",
             (unsigned long long)r->stream_first, (unsigned long long)(r->applied + 1));
    base_log(BASE_LOG_ERROR, "replica_needs_snapshot", "{s:s, s:I, s:I, s:s}", "stream", r->stream,
             "applied", (json_int_t)r->applied, "first", (json_int_t)r->stream_first, "error",
             r->last_error);
    pthread_cond_broadcast(&r->cv);
}

static void *watchdog(void *arg)
{
    repl_t *r = arg;
    int64_t last_poll = 0, last_resync = 0, last_flush = 0;
    uint64_t flushed = 0;
    bool flush_failed = false;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int64_t until = base_mono_us() + TICK_MS * 1000;
        struct timespec ts = {until / 1000000, (until % 1000000) * 1000};
        if (!r->closing)
            pthread_cond_timedwait(&r->wd_cv, &r->mu, &ts);
        if (r->closing) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        int64_t now = base_mono_us();
        repl__pub_t *due = repl__release_locked(r, false, now);
        const char *why = r->resubscribe ? "the consumer reported trouble or a gap" : NULL;
        if (r->halted && r->in_flight == 0 && now - last_resync > 1000000) {
            /* Start again from what the store holds. */
            last_resync = now;
            uint64_t pos = r->applied;
            pthread_mutex_unlock(&r->mu);
            int rc = store_last_position(r->store, &pos);
            pthread_mutex_lock(&r->mu);
            if (rc == 0) {
                r->applied = pos;
                r->next = pos + 1;
                r->next_time_ns = 0;
                r->halted = false;
                why = "an apply failed";
            }
        }
        bool poll = now - last_poll >= 1000000;
        uint64_t applied = r->applied;
        bool state_ready = r->state == REPL_READY;
        pthread_mutex_unlock(&r->mu);
        repl__complete(due, 0, NULL);
        /* The store commits without fsync (STORE_SYNC_LOG): once ready, at most a second of it
         * is left to the page cache, so a machine crash costs at most that much replay. While
         * catching up, every ten seconds: a flush stalls the apply, and what it would save is
         * replayed from the log anyway. */
        int64_t every = state_ready ? 1000000 : 10000000;
        if (applied != flushed && now - last_flush >= every) {
            int frc = store_flush(r->store);
            if (frc == 0) {
                if (flush_failed)
                    base_log(BASE_LOG_INFO, "store_flush_resumed", "{s:s}", "stream", r->stream);
                flushed = applied;
            } else if (!flush_failed) {
                /* Applying goes on (the log holds it all); a machine crash now costs more
                 * replay. Said once per episode. */
                base_log(BASE_LOG_ERROR, "store_flush_failed", "{s:s, s:s}", "stream", r->stream,
                         "error", store_strerror(frc));
            }
            flush_failed = frc != 0;
            last_flush = now;
        }
        if (poll && poll_stream(r) == 0)
            last_poll = now;
        repl__tls_tick(r, now);

        pthread_mutex_lock(&r->mu);
        if (r->state == REPL_NEEDS_SNAPSHOT) {
            pthread_mutex_unlock(&r->mu);
            continue;
        }
        if (needs_snapshot_locked(r)) {
            set_needs_snapshot_locked(r);
            pthread_mutex_unlock(&r->mu);
            repl__unsubscribe(r);
            continue;
        }
        if (why == NULL && r->stream_last >= r->next && r->in_flight == 0 && !r->halted &&
            now - r->last_delivery_us > r->o.stall_ms * 1000)
            why = "nothing delivered while the stream has more";
        if (why == NULL && r->sub == NULL && !r->halted)
            why = "no consumer";
        ready_locked(r);
        bool connected = atomic_load(&r->connected);
        pthread_mutex_unlock(&r->mu);
        if (why != NULL && connected)
            repl__subscribe(r, why);
    }
    return NULL;
}

int repl_start(repl_t *r)
{
    if (r->store == NULL)
        return -EINVAL;
    int rc;
    int64_t until = base_mono_us() + r->o.connect_timeout_ms * 1000;
    while ((rc = poll_stream(r)) < 0 && base_mono_us() < until) {
        struct timespec ts = {0, 250 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&r->mu);
    r->target = r->stream_last;
    r->started = true;
    r->state = r->applied + r->o.max_lag >= r->target ? REPL_READY : REPL_CATCHING_UP;
    bool gap = needs_snapshot_locked(r);
    if (gap)
        set_needs_snapshot_locked(r);
    base_log(BASE_LOG_INFO, "replica_starting", "{s:s, s:I, s:I, s:I, s:s}", "stream", r->stream,
             "applied", (json_int_t)r->applied, "first", (json_int_t)r->stream_first, "last",
             (json_int_t)r->stream_last, "state", repl_state_name(r->state));
    pthread_mutex_unlock(&r->mu);
    if (!gap)
        repl__subscribe(r, NULL);
    if (pthread_create(&r->watchdog, NULL, watchdog, r) != 0)
        return -ENOMEM;
    r->watchdog_started = true;
    return 0;
}

void repl__applier_stop(repl_t *r)
{
    if (r->watchdog_started) {
        pthread_join(r->watchdog, NULL);
        r->watchdog_started = false;
    }
    repl__unsubscribe(r);
    pthread_mutex_lock(&r->mu);
    /* The delivery thread's last callback, and the store's completions of what it handed on,
     * use r: wait for both (the writer always completes what it was given). */
    int64_t until = base_mono_us() + 10 * 1000000ll;
    while ((r->live_subs > 0 && base_mono_us() < until) || r->in_flight > 0) {
        int64_t t = base_mono_us() + 100000;
        struct timespec ts = {t / 1000000, (t % 1000000) * 1000};
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
}
