/* repl/repl_int.h - shared inside repl/: the instance, its publisher and its applier. */
#ifndef REPL_REPL_INT_H
#define REPL_REPL_INT_H

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "base/base.h"
#include "repl/repl.h"

/* A write waiting for the publishers, or (once acknowledged) for this node's apply. */
typedef struct repl__pub {
    struct repl__pub *next;
    uint8_t *data;
    size_t len;
    char subject[256];
    char msg_id[REPL_MAX_REQUEST_ID + 1];
    int64_t deadline_us; /* base_mono_us(): the last moment a retry may start */
    repl_result_t res;   /* res.seq once acknowledged; the rest once applied here */
    repl_done_fn done;
    void *arg;
} repl__pub_t;

/* One subscription's closure, freed by its OnComplete callback (after its last delivery). */
typedef struct repl__sub {
    struct repl *r;
    uint64_t gen;
} repl__sub_t;

struct repl {
    /* Options, with defaults filled in and strings copied. */
    repl_options_t o;
    char *urls, *name;
    char stream[64];
    char prefix[200];
    char filter[210];          /* prefix + ".>" */
    char catalog_subject[220]; /* prefix + ".$catalog" */

    /* The connection. Every use of nc or js read-holds conn_rw (repl__conn_begin()), for one
     * NATS call at most; a TLS reload (repl__tls_tick()) write-holds it to put a new connection
     * in their place (under mu too, which the connection callbacks read nc under). */
    pthread_rwlock_t conn_rw;
    natsOptions *nopts;
    natsConnection *nc;
    jsCtx *js;
    char *tls_ca, *tls_cert, *tls_key; /* the options' paths, owned */
    /* TLS reloads (the watchdog's): the files as last loaded, and a check asked for (SIGHUP). */
    struct repl__file_id {
        unsigned long long dev, ino, size;
        long long mtime_ns, ctime_ns;
        bool exists;
    } tls_seen[3];
    int64_t tls_checked_us;
    int64_t tls_retry_us; /* a reload that could not connect is tried again from then */
    atomic_bool tls_check_now;
    uint64_t tls_reloads, tls_reloads_rejected; /* (mu) */
    bool old_nc_closed; /* a replaced connection's closed callback ran (mu) */
    store_t *store;
    atomic_bool connected;
    bool nc_closed;   /* the connection's closed callback ran (mu) */
    uintptr_t ticket; /* what cnats's callbacks get instead of r (repl.c's live table) */

    pthread_mutex_t mu;
    pthread_cond_t cv;    /* applied moved, in_flight fell, a state changed, closing */
    pthread_cond_t q_cv;  /* a write was queued for the publishers, closing */
    pthread_cond_t wd_cv; /* the watchdog's sleep: closing */
    bool closing;

    /* Publishing (publish.c). */
    repl__pub_t *q_head, *q_tail; /* waiting for a publisher */
    size_t pending;               /* queued + in flight + awaiting apply */
    pthread_t *publishers;
    size_t n_publishers;
    repl__pub_t *wait_head; /* acknowledged, awaiting this node's apply, by sequence */
    uint64_t published, publish_retries;

    /* Applying (apply.c). */
    _Atomic repl_state_t state; /* written under mu; repl_state() reads it without */
    bool started;
    catalog_t *catalog; /* what decodes writes: the catalog the store applied last */
    uint64_t applied;   /* the store's committed position */
    uint64_t next;      /* the sequence the consumer must deliver next */
    uint64_t target;    /* the stream's last sequence at start */
    uint64_t stream_last, stream_first;
    int64_t applied_time_ns; /* publish time of the message at `applied` */
    int64_t next_time_ns;    /* publish time of the first message not yet applied, 0 = none */
    size_t in_flight;        /* messages handed to the store, not yet committed */
    bool halted;             /* an apply failed: resynchronise from the store's position */
    bool resubscribe;        /* the consumer must be created again */
    natsSubscription *sub;
    uint64_t sub_gen;
    size_t live_subs; /* subscriptions whose OnComplete has not run yet */
    int64_t last_delivery_us;
    uint64_t resubscribes, skipped;
    /* What the store did with recent sequences, for writes acknowledged after their apply. */
    struct {
        uint64_t seq;
        size_t written, stale;
    } recent[1024];
    char last_error[256];
    pthread_t watchdog;
    bool watchdog_started;
};

/* Formats into err (cap bytes) and returns rc. */
int repl__fail(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records the last error for repl_status() (and logs it as event). Lock not held. */
void repl__error(struct repl *r, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The text of a NATS failure: its status and the library's last error when it has one. */
void repl__nats_text(natsStatus s, jsErrCode jerr, char *buf, size_t cap);

/* The connection for one NATS call: read-holds conn_rw until repl__conn_end(). */
jsCtx *repl__conn_begin(struct repl *r);
void repl__conn_end(struct repl *r);
/* The watchdog's TLS check (every 2 s, or at once after repl_reload_tls()): when a TLS file
 * changed, connects anew with the files as they are now and moves every user to the new
 * connection (the consumer is created again on it); a new connection that fails keeps the old
 * one. Lock not held. */
void repl__tls_tick(struct repl *r, int64_t now_us);
/* Drops the current subscription, if any; (re)creates the consumer at the store's next
 * sequence, reason NULL for the first (apply.c). Returns: 0, -EAGAIN. */
void repl__unsubscribe(struct repl *r);
int repl__subscribe(struct repl *r, const char *reason);

/* publish.c */
/* One message published (repl.c): retried with its id for --publish-timeout-ms, or until
 * deadline_us (base_mono_us(); 0 = none) when sooner. Returns: 0 and *seq; -EAGAIN (not
 * acknowledged in time), -EIO / -ESTALE (refused), -EMSGSIZE; err says why. */
int repl__publish_sync_raw(struct repl *r, const char *what, const char *subject,
                           const uint8_t *data, size_t len, const char *msg_id, int64_t deadline_us,
                           uint64_t *seq, char *err, size_t err_cap);
int repl__publishers_start(struct repl *r);
void repl__publishers_stop(struct repl *r);
/* Releases writes awaiting apply up to r->applied (and, with force, all of them, with rc).
 * Called with r->mu held; the completions run after it is released, from the list returned. */
repl__pub_t *repl__release_locked(struct repl *r, bool force, int64_t now_us);
void repl__complete(repl__pub_t *list, int rc, const char *msg);

/* apply.c */
void repl__applier_stop(struct repl *r);

/* The connection's callbacks (repl.c), which cnats calls on its own thread with r->ticket, not
 * r: after repl_close() they find no node and return, counted by repl_late_callbacks(). */
void repl__on_disconnected(natsConnection *nc, void *ticket);
void repl__on_reconnected(natsConnection *nc, void *ticket);
void repl__on_closed(natsConnection *nc, void *ticket);
void repl__on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *ticket);

#endif /* REPL_REPL_INT_H */
