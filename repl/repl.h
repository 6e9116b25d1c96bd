/* repl/repl.h - replication: every node's store is a materialised prefix of a NATS JetStream log.
 */
#ifndef REPL_REPL_H
#define REPL_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "storage/store.h"

/*
 * The model. One JetStream stream per project is the source of truth: every write a node
 * accepts is validated there (store_wire_begin()), published as one message (repl_publish())
 * and acknowledged once JetStream has stored it; every node, the writer included, applies the
 * stream in order to its own store (store_apply_wire_async() with log_position = the stream
 * sequence, many messages per LMDB transaction, the position committed with them). Catalog
 * changes are messages of the same stream, so a write to a new view version is applied after
 * the version exists, on every node. Replicas that applied the same prefix hold the same
 * content (store_digest()).
 *
 * Subjects: "<prefix>.<view>" for writes (a view name is a NATS token), "<prefix>.$catalog" for
 * catalogs, "<prefix>.$gc" for sweeps (repl_publish_gc(), applied by every node at their place
 * like catalogs); the stream covers "<prefix>.>". Messages are repl_msg.c's versioned binary form.
 *
 * What the code defends against (cnats 3.4.1 with nats-server 2.9.10): an ordered push consumer
 * that silently stops delivering, or restarts from sequence 1, or skips what retention dropped;
 * elections that fail publishes for seconds. Every delivered sequence must be exactly
 * applied + 1 (lower: a replay, dropped; higher: a gap, resubscribe), a watchdog resubscribes
 * when nothing arrives while the stream has more, and the store refuses a position that is not
 * the next one (store option log_contiguous), so no failure can skip a message.
 *
 * Threads: cnats's own (connection, one delivery thread for the subscription), the store's
 * writer (apply completions), one watchdog, and --publish-threads publishers. Completions of
 * repl_publish() run on the store's writer thread or on the watchdog, never on the caller's.
 */

typedef struct repl repl_t;

typedef enum repl_state {
    REPL_CONNECTING = 0,     /* before repl_start() */
    REPL_CATCHING_UP = 1,    /* applying up to the stream's last sequence seen at start */
    REPL_READY = 2,          /* caught up once (within max_lag): serving */
    REPL_NEEDS_SNAPSHOT = 3, /* the stream no longer holds the next sequence (retention) */
    REPL_FAILED = 4,         /* the store refused to apply (disk full, I/O): see last_error */
} repl_state_t;

/* The name of a state ("ready", "needs_snapshot", ...). */
const char *repl_state_name(repl_state_t s);

typedef struct repl_options {
    const char *urls;           /* --replication: comma-separated nats:// URLs (required) */
    const char *stream;         /* --stream; NULL: "FSTORE_" + the project upper-cased */
    const char *subject_prefix; /* --subject-prefix; NULL: "fstore." + the project */
    /* The stream's configuration. When the stream exists, what is given must match it (an
     * option not given, 0 or -1 below, accepts the stream's); when it is created, what is not
     * given takes the default. */
    unsigned replicas;          /* --stream-replicas (0: not given; 1 at creation) */
    int64_t max_age_s;          /* --stream-max-age: retention by age (-1: not given; 0: none) */
    int64_t max_bytes;          /* --stream-max-bytes: retention by size (-1: not given; 0: none) */
    int64_t publish_timeout_ms; /* --publish-timeout: how long a write is retried (0 = 20000) */
    int64_t connect_timeout_ms; /* --connect-timeout: how long repl_open() waits for a first
                                   NATS server (0 = 30000) */
    size_t publish_threads;     /* --publish-threads: writes in flight to the log (0 = 8) */
    size_t max_pending;         /* --max-pending-writes: writes queued or in flight (0 = 1024) */
    size_t max_lag;             /* --max-lag: ready within this many messages (default 0) */
    size_t apply_window;        /* messages handed to the store, not yet committed (0 = 1024) */
    int64_t stall_ms;           /* watchdog: nothing delivered this long while the stream has
                                   more = a stalled consumer (0 = 3000) */
    const char *name;           /* the connection's name in NATS monitoring; NULL: "fstore" */
    /* TLS to NATS: tls_ca (--replication-tls-ca, PEM) verifies the servers and turns TLS on, as
     * a tls:// URL does (then against the system's CAs); tls_cert and tls_key (both or neither,
     * PEM) are this node's client certificate, for servers that require one (nats-server
     * --tlsverify). Read by repl_open() and again whenever one of them changes (checked every
     * 2 s, and at once after repl_reload_tls()): a new connection with the new files replaces
     * the old one once it is up, and a change that does not connect keeps the old one. */
    const char *tls_ca, *tls_cert, *tls_key;
    /* Called on the delivery thread after a catalog from the log was applied to the store, with
     * a reference the callee owns. */
    void (*on_catalog)(void *arg, catalog_t *c, uint64_t seq);
    void *on_catalog_arg;
} repl_options_t;

#define REPL_DEFAULT_PUBLISH_TIMEOUT_MS 20000
#define REPL_DEFAULT_PUBLISH_THREADS 8
#define REPL_DEFAULT_MAX_PENDING 1024
#define REPL_DEFAULT_APPLY_WINDOW 1024
#define REPL_DEFAULT_STALL_MS 3000
#define REPL_DEFAULT_CONNECT_TIMEOUT_MS 30000

/* Fills *o with the defaults (every stream option "not given"). */
void repl_options_init(repl_options_t *o);

/*
 * Connects to NATS and makes sure the stream exists: created with o's replicas and retention
 * when missing; an existing stream whose subjects, replicas or retention differ from o's is
 * refused (-EEXIST, err says which field), never reconfigured. store may be NULL for a client
 * that only publishes (`fstore apply` / `fstore ingest --replication`).
 * Returns: 0 and *out; -EINVAL (options), -ECONNREFUSED (no server answered), -EEXIST,
 *          -ETIMEDOUT, -EIO (another NATS error), -ENOMEM; err says what and where.
 * Ownership: the caller closes *out with repl_close() before closing store.
 */
int repl_open(const repl_options_t *o, const char *project, store_t *store, repl_t **out, char *err,
              size_t err_cap);
/* Stops the applier, waits for publishes in flight to finish (or time out) and disconnects.
 * Completions still parked are called with -ESHUTDOWN. Accepts NULL. */
void repl_close(repl_t *r);

/* The stream's name and its catalog subject, as opened. */
const char *repl_stream(const repl_t *r);

/*
 * The latest catalog in the log and its sequence. JetStream not answering (no quorum, an
 * election) is waited out: up to the publish timeout, or on a node opened with a store and not
 * yet started (a serve starting) up to the connect timeout when that is longer. Returns: 0,
 * *out (the caller's reference) and *seq; -ENOENT (the log holds no catalog); -EAGAIN (the log
 * did not answer); -EPROTO (a message that is not a catalog), -ENOMEM; err says why.
 */
int repl_log_catalog(repl_t *r, catalog_t **out, uint64_t *seq, char *err, size_t err_cap);

/*
 * Publishes catalog c, synchronously. expect_seq is the sequence of the log's catalog c was
 * planned against (0: the log must hold no catalog yet): a catalog published meanwhile by
 * someone else fails the call (-ESTALE) rather than being overwritten. A catalog equal to the
 * log's latest is not published again (*seq = its sequence).
 * Returns: 0 and *seq; -ESTALE; -EAGAIN (the log did not acknowledge within the publish
 *          timeout); -EMSGSIZE; -ENOMEM; err says why.
 */
int repl_publish_catalog(repl_t *r, const catalog_t *c, uint64_t expect_seq, uint64_t *seq,
                         char *err, size_t err_cap);

/*
 * Starts applying the log to the store from its recorded position + 1 (the store must have
 * been opened with log_contiguous, and STORE_SYNC_LOG: the watchdog flushes it every second).
 * Returns at once; repl_status() tells the progress.
 * Returns: 0; -EAGAIN (no stream info: NATS is down; the watchdog keeps trying); -ENOMEM.
 */
int repl_start(repl_t *r);

/*
 * A write's outcome: rc 0 and res (res->seq: the stream sequence that holds it, acknowledged by
 * JetStream; res->applied: this node's store applied it, with res->written and res->stale as
 * store_apply() counts them; not applied: the apply did not follow within the deadline, and the
 * write is in the log all the same); rc < 0 with msg (-EAGAIN: the log did not acknowledge in
 * time, the write may or may not be in it: a retry with the same request id is applied once).
 */
typedef struct repl_result {
    uint64_t seq;
    bool applied;
    size_t written, stale;
} repl_result_t;
typedef void (*repl_done_fn)(void *arg, int rc, const repl_result_t *res, const char *msg);

/* Longest request id (Nats-Msg-Id): printable ASCII, no spaces. */
#define REPL_MAX_REQUEST_ID 128

/*
 * Publishes one write (w, all of its batches in one message) asynchronously. request_id (may be
 * NULL: a random one) is the message's Nats-Msg-Id: within the stream's duplicate window (2
 * minutes) a second publish with the same id is acknowledged with the first one's sequence and
 * applied once. The message is encoded before this returns: w may be ended at once.
 * deadline_us (base_mono_us(), 0 = none) bounds the retries besides the publish timeout.
 * Returns: 0 (done(arg, ...) follows, from another thread); -EINVAL (a malformed request id);
 *          -EMSGSIZE (the message is over the log's payload limit: split the write);
 *          -ENOBUFS (max_pending writes already waiting); -ENOMEM; err says why.
 */
int repl_publish(repl_t *r, const store_wire_t *w, const char *request_id, int64_t deadline_us,
                 repl_done_fn done, void *arg, char *err, size_t err_cap);

/*
 * Waits until this node's store has applied sequence seq, up to deadline_us (base_mono_us()).
 * Returns: 0; -ETIMEDOUT (still behind at the deadline); -EAGAIN (the replica cannot catch up:
 *          it needs a snapshot, or failed; or seq is past the stream's end).
 */
int repl_wait(repl_t *r, uint64_t seq, int64_t deadline_us);

typedef struct repl_status {
    repl_state_t state;
    bool connected;        /* the NATS connection is up */
    uint64_t applied;      /* the store's position */
    uint64_t stream_last;  /* the stream's last sequence, as last seen */
    uint64_t stream_first; /* its first retained sequence */
    uint64_t lag;          /* stream_last - applied */
    int64_t lag_ms;        /* now - the publish time of the message after applied; 0 if none */
    uint64_t target;       /* the last sequence seen at start: ready once applied reaches it */
    uint64_t resubscribes; /* watchdog restarts of the consumer */
    uint64_t skipped;      /* messages that could not be applied (logged) */
    uint64_t published;    /* writes acknowledged by the log */
    uint64_t publish_retries;
    uint64_t tls_reloads;          /* changed TLS files taken (a new connection) */
    uint64_t tls_reloads_rejected; /* new TLS files that did not load or connect */
    size_t pending;                /* writes queued or in flight */
    char stream[64];
    char last_error[256];
} repl_status_t;

/* Thread safety: any thread. */
void repl_status(repl_t *r, repl_status_t *out);

/* Asks for the TLS files (repl_options_t.tls_*) to be checked now rather than within 2 s (on
 * SIGHUP); the watchdog reconnects with them if they changed, logging nats_tls_reloaded or
 * nats_tls_reload_rejected. Returns at once. Thread safety: any thread. */
void repl_reload_tls(repl_t *r);

/* The replica's state alone, without a lock (a read's check). Thread safety: any thread. */
repl_state_t repl_state(const repl_t *r);

/*
 * Publishes a sweep (gc), synchronously: every node applies it at its place in the log
 * (store_gc_at()), deleting the online rows past their view's TTL at now_us and the tombstones
 * older than tombstone_retention_us, so all replicas sweep the same records whatever their
 * clocks and flags. On a started node it then waits, up to deadline_us (base_mono_us(); 0: the
 * publish timeout), for its own store to apply it. Nodes of a version before sweeps went through
 * the log pass the message without sweeping: upgrade every node first.
 * Returns: 0 and *res (res->seq: it is in the log; res->applied when this node applied it by
 *          the deadline, and res->written = the records it deleted, 0 when over 1024 messages
 *          came after it before the answer; not applied: the deadline came first, or this node
 *          is not applying the log, which repl_state() tells); -EAGAIN (the log did not
 *          acknowledge in time: it may still hold it); -ETIMEDOUT (deadline_us passed before
 *          it was published: nothing was); -EIO (the stream refused it); -EINVAL (now_us or
 *          the retention out of range: repl_msg_gc_valid()); -ENOMEM; err says why.
 */
int repl_publish_gc(repl_t *r, int64_t now_us, int64_t tombstone_retention_us, int64_t deadline_us,
                    repl_result_t *res, char *err, size_t err_cap);

/* A batch-less client of the log: publishes wire batches synchronously (fstore ingest
 * --replication). Returns: as repl_publish()'s done, *seq on success. */
int repl_publish_sync(repl_t *r, const store_wire_t *w, const char *request_id, uint64_t *seq,
                      char *err, size_t err_cap);

/* How many of cnats's connection callbacks arrived after repl_close() had closed their node, in
 * this process (cnats posts errors whenever their cause happens, after the connection's closed
 * callback too): they are dropped, never run against a freed node. For tests and diagnostics. */
uint64_t repl_late_callbacks(void);

/* Releases the NATS library's threads and memory once no repl_t is left (at process exit, so
 * leak checkers see a clean exit). */
void repl_library_close(void);

/* ------------------------------------------------------------------------------------------ */
/* Messages (repl/msg.c): the versioned binary form the log carries                            */

/*
 *   "FSR" 0x01                  magic and format version
 *   u8 kind                     1 = write, 2 = catalog, 3 = gc
 *   write:   u32 n_batches, then per batch:
 *            u8 op, u16 len + view name, u32 version, u32 n_features, n_features x (u16 len +
 *            feature name), u32 n_rows, n_rows x (u16 key len + key, i64 event time,
 *            n_features x (u32 len + value bytes))
 *   catalog: the canonical YAML (catalog_dump_yaml()), to the end
 *   gc:      i64 now (microseconds since the epoch), i64 tombstone retention (microseconds)
 * Little-endian. Features travel by name, so a replica maps them through its own catalog.
 */
#define REPL_MSG_WRITE 1
#define REPL_MSG_CATALOG 2
#define REPL_MSG_GC 3

/* Encodes a write. Returns: 0 and *out and *len (malloc'd: the caller frees); -ENOMEM; -EMSGSIZE
 * (over 4 GiB). */
int repl_msg_encode_write(const store_wire_t *w, uint8_t **out, size_t *len);
/* Encodes a catalog. Returns: 0 and *out and *len (malloc'd); -ENOMEM. */
int repl_msg_encode_catalog(const catalog_t *c, uint8_t **out, size_t *len);

/* Encodes a sweep at now_us keeping tombstones tombstone_retention_us (store_gc_at()).
 * Returns: 0 and *out and *len (malloc'd); -ENOMEM. */
int repl_msg_encode_gc(int64_t now_us, int64_t tombstone_retention_us, uint8_t **out, size_t *len);
/* Whether a sweep's fields are in range: now_us in [0, year 10000), a retention in [0, 100
 * years] (so their difference cannot overflow). */
bool repl_msg_gc_valid(int64_t now_us, int64_t tombstone_retention_us);
/* Decodes a sweep. Returns: 0, *now_us and *tombstone_retention_us; -EPROTO (malformed, or out
 * of range: repl_msg_gc_valid()). */
int repl_msg_decode_gc(const uint8_t *p, size_t len, int64_t *now_us,
                       int64_t *tombstone_retention_us);

/* A decoded write: wire batches pointing into the message's bytes and into this object. */
typedef struct repl_msg_write {
    size_t n_batches;
    store_wire_batch_t *batches;
    void *priv;
} repl_msg_write_t;

/*
 * The kind of a message. Returns: REPL_MSG_WRITE, REPL_MSG_CATALOG, REPL_MSG_GC, or -EPROTO (not
 * an fstore message, or a newer format).
 */
int repl_msg_kind(const uint8_t *p, size_t len);
/*
 * Decodes a write against catalog c (views by name and version, features by name).
 * Returns: 0 and *out (free with repl_msg_write_free(); it points into p, which must outlive
 *          it); -EPROTO (malformed); -ENOENT (a view or feature c does not have); -ENOMEM;
 *          err says what.
 */
int repl_msg_decode_write(const uint8_t *p, size_t len, const catalog_t *c, repl_msg_write_t *out,
                          char *err, size_t err_cap);
void repl_msg_write_free(repl_msg_write_t *m);
/* Decodes a catalog. Returns: 0 and *out (the caller's reference); -EPROTO; -EINVAL (the YAML
 * does not load: err has the first error); -ENOMEM. */
int repl_msg_decode_catalog(const uint8_t *p, size_t len, catalog_t **out, char *err,
                            size_t err_cap);

#endif /* REPL_REPL_H */
