/* repl/publish.c - writes to the log: publisher threads, retries, completion after apply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repl/repl_int.h"

/*
 * A write is encoded in the caller's thread and queued; one of --publish-threads publishers
 * sends it with a synchronous js_Publish (a bounded MaxWait, the same Nats-Msg-Id on every
 * retry) until JetStream acknowledges it or its time is up. Several publishers keep several
 * writes in flight without an async-ack bookkeeping of their own, and a transport's thread
 * never waits on the log. An acknowledged write then waits, without a thread, in a list
 * ordered by sequence until this node's store has applied it (so a client reading from the
 * node it wrote to sees its write), and is completed by whoever moves the store's position:
 * the applier, or the watchdog once its deadline passes (the write is in the log either way).
 */

static bool valid_id(const char *id)
{
    size_t n = 0;
    for (const char *p = id; *p != '\0'; p++, n++) {
        if (*p <= ' ' || *p > '~')
            return false;
    }
    return n > 0 && n <= REPL_MAX_REQUEST_ID;
}

static void random_id(char *out, size_t cap)
{
    uint8_t b[16];
    base_random(b, sizeof b);
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < sizeof b && n + 2 < cap; i++) {
        out[n++] = hex[b[i] >> 4];
        out[n++] = hex[b[i] & 15];
    }
    out[n] = '\0';
}

/* The subject of a write: its first batch's view. */
static void write_subject(const repl_t *r, const store_wire_t *w, char *out, size_t cap)
{
    snprintf(out, cap, "%s.%s", r->prefix,
             w->n_batches > 0 && w->batches[0].view != NULL ? w->batches[0].view->name : "_");
}

static int prepare(repl_t *r, const store_wire_t *w, const char *request_id, repl__pub_t **out,
                   char *err, size_t err_cap)
{
    if (request_id != NULL && !valid_id(request_id))
        return repl__fail(err, err_cap, -EINVAL,
                          "request id: want 1 to %d printable ASCII characters without spaces",
                          REPL_MAX_REQUEST_ID);
    repl__pub_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    int rc = repl_msg_encode_write(w, &p->data, &p->len);
    if (rc < 0) {
        free(p);
        return rc == -EMSGSIZE ? repl__fail(err, err_cap, rc, "the write is over 4 GiB encoded")
                               : rc;
    }
    repl__conn_begin(r);
    int64_t max = natsConnection_GetMaxPayload(r->nc);
    repl__conn_end(r);
    if (max > 0 && (int64_t)p->len + 256 > max) {
        rc = repl__fail(err, err_cap, -EMSGSIZE,
                        "the write is %zu bytes encoded, over the replication log's %lld-byte "
                        "message limit (NATS max_payload): split it into smaller writes",
                        p->len, (long long)max);
        free(p->data);
        free(p);
        return rc;
    }
    write_subject(r, w, p->subject, sizeof p->subject);
    if (request_id != NULL)
        snprintf(p->msg_id, sizeof p->msg_id, "%s", request_id);
    else
        random_id(p->msg_id, sizeof p->msg_id);
    *out = p;
    return 0;
}

static void pub_free(repl__pub_t *p)
{
    free(p->data);
    free(p);
}

void repl__complete(repl__pub_t *list, int rc, const char *msg)
{
    while (list != NULL) {
        repl__pub_t *next = list->next;
        list->done(list->arg, rc, &list->res, msg);
        pub_free(list);
        list = next;
    }
}

repl__pub_t *repl__release_locked(repl_t *r, bool force, int64_t now_us)
{
    repl__pub_t *out = NULL, **tail = &out, **pp = &r->wait_head;
    bool give_up = r->state == REPL_NEEDS_SNAPSHOT || r->state == REPL_FAILED;
    while (*pp != NULL) {
        repl__pub_t *p = *pp;
        bool due = force || give_up || p->res.seq <= r->applied ||
                   (now_us > 0 && now_us >= p->deadline_us);
        if (!due) {
            /* Ordered by sequence: the rest are due only by their deadline. */
            if (now_us == 0)
                break;
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        p->next = NULL;
        *tail = p;
        tail = &p->next;
        r->pending--;
    }
    return out;
}

/* What this node's store did with sequence seq, into res (written, stale), when it is still among
 * the recent ones. Returns: whether it was. Lock held. */
static bool recent_locked(const repl_t *r, uint64_t seq, repl_result_t *res)
{
    size_t x = seq % (sizeof r->recent / sizeof r->recent[0]);
    if (r->recent[x].seq != seq)
        return false;
    res->written = r->recent[x].written;
    res->stale = r->recent[x].stale;
    return true;
}

/* Parks an acknowledged write until the store applies it. Lock held. */
static void park_locked(repl_t *r, repl__pub_t *p)
{
    /* Acknowledgements arrive almost in sequence order: search from the head is short when
     * the list is, and it is bounded by --max-pending-writes. */
    repl__pub_t **pp = &r->wait_head;
    while (*pp != NULL && (*pp)->res.seq < p->res.seq)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
}

static void *publisher(void *arg)
{
    repl_t *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->q_head == NULL && !r->closing)
            pthread_cond_wait(&r->q_cv, &r->mu);
        if (r->q_head == NULL)
            break; /* closing and nothing left to send */
        repl__pub_t *p = r->q_head;
        r->q_head = p->next;
        if (r->q_head == NULL)
            r->q_tail = NULL;
        p->next = NULL;
        pthread_mutex_unlock(&r->mu);

        char err[320] = "";
        uint64_t seq = 0;
        int rc = repl__publish_sync_raw(r, "write", p->subject, p->data, p->len, p->msg_id,
                                        p->deadline_us, &seq, err, sizeof err);
        pthread_mutex_lock(&r->mu);
        if (rc < 0) {
            r->pending--;
            pthread_mutex_unlock(&r->mu);
            repl__complete(p, rc, err);
            pthread_mutex_lock(&r->mu);
            continue;
        }
        r->published++;
        p->res.seq = seq;
        if (r->started && seq <= r->applied) {
            /* Applied before its acknowledgement came back. */
            p->res.applied = recent_locked(r, seq, &p->res);
        }
        if (r->store == NULL || !r->started || seq <= r->applied) {
            r->pending--;
            pthread_mutex_unlock(&r->mu);
            repl__complete(p, 0, NULL);
            pthread_mutex_lock(&r->mu);
            continue;
        }
        /* Wait for the apply at most until the write's deadline, and never more than the
         * publish timeout after the acknowledgement. */
        int64_t cap = base_mono_us() + r->o.publish_timeout_ms * 1000;
        if (p->deadline_us == 0 || p->deadline_us > cap)
            p->deadline_us = cap;
        park_locked(r, p);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int repl__publishers_start(repl_t *r)
{
    r->publishers = calloc(r->o.publish_threads, sizeof *r->publishers);
    if (r->publishers == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < r->o.publish_threads; i++) {
        if (pthread_create(&r->publishers[i], NULL, publisher, r) != 0)
            return -ENOMEM;
        r->n_publishers++;
    }
    return 0;
}

void repl__publishers_stop(repl_t *r)
{
    /* closing is set: they finish what is queued (each bounded by the publish timeout, cut
     * short by closing between retries) and exit. */
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->q_cv);
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < r->n_publishers; i++)
        pthread_join(r->publishers[i], NULL);
    free(r->publishers);
    r->publishers = NULL;
    r->n_publishers = 0;
}

int repl_publish(repl_t *r, const store_wire_t *w, const char *request_id, int64_t deadline_us,
                 repl_done_fn done, void *arg, char *err, size_t err_cap)
{
    repl__pub_t *p = NULL;
    int rc = prepare(r, w, request_id, &p, err, err_cap);
    if (rc < 0)
        return rc;
    p->deadline_us = deadline_us;
    p->done = done;
    p->arg = arg;
    pthread_mutex_lock(&r->mu);
    if (r->closing) {
        rc = repl__fail(err, err_cap, -ESHUTDOWN, "the server is shutting down");
    } else if (r->pending >= r->o.max_pending) {
        rc = repl__fail(err, err_cap, -ENOBUFS,
                        "%zu writes are already waiting for the replication log "
                        "(--max-pending-writes): retry later",
                        r->pending);
    } else {
        r->pending++;
        if (r->q_tail != NULL)
            r->q_tail->next = p;
        else
            r->q_head = p;
        r->q_tail = p;
        pthread_cond_signal(&r->q_cv);
    }
    pthread_mutex_unlock(&r->mu);
    if (rc < 0)
        pub_free(p);
    return rc;
}

int repl_publish_sync(repl_t *r, const store_wire_t *w, const char *request_id, uint64_t *seq,
                      char *err, size_t err_cap)
{
    repl__pub_t *p = NULL;
    int rc = prepare(r, w, request_id, &p, err, err_cap);
    if (rc < 0)
        return rc;
    rc = repl__publish_sync_raw(r, "write", p->subject, p->data, p->len, p->msg_id, 0, seq, err,
                                err_cap);
    if (rc == 0) {
        pthread_mutex_lock(&r->mu);
        r->published++;
        pthread_mutex_unlock(&r->mu);
    }
    pub_free(p);
    return rc;
}

int repl_publish_gc(repl_t *r, int64_t now_us, int64_t tombstone_retention_us, int64_t deadline_us,
                    repl_result_t *res, char *err, size_t err_cap)
{
    memset(res, 0, sizeof *res);
    if (!repl_msg_gc_valid(now_us, tombstone_retention_us))
        return repl__fail(err, err_cap, -EINVAL,
                          "a sweep at %lld us keeping tombstones %lld us is out of range",
                          (long long)now_us, (long long)tombstone_retention_us);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = repl_msg_encode_gc(now_us, tombstone_retention_us, &data, &len);
    if (rc < 0)
        return repl__fail(err, err_cap, rc, "the sweep's message: %s", strerror(-rc));
    char subject[sizeof r->prefix + 8], id[40];
    snprintf(subject, sizeof subject, "%s.$gc", r->prefix);
    random_id(id, sizeof id);
    rc = repl__publish_sync_raw(r, "sweep", subject, data, len, id, deadline_us, &res->seq, err,
                                err_cap);
    free(data);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&r->mu);
    r->published++;
    bool wait = r->store != NULL && r->started;
    pthread_mutex_unlock(&r->mu);
    if (!wait)
        return 0;
    int64_t until = deadline_us > 0 ? deadline_us : base_mono_us() + r->o.publish_timeout_ms * 1000;
    if (repl_wait(r, res->seq, until) < 0)
        return 0; /* not applied here (by the deadline, or not applying): res->applied false */
    res->applied = true;
    pthread_mutex_lock(&r->mu);
    recent_locked(r, res->seq, res); /* else 0: over 1024 messages came after it meanwhile */
    pthread_mutex_unlock(&r->mu);
    return 0;
}
