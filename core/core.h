/* core/core.h - the serving core: what a read, a write or a Predict means, whatever the wire. */
#ifndef CORE_CORE_H
#define CORE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/base.h"
#include "catalog/catalog.h"
#include "repl/repl.h"
#include "storage/store.h"

/*
 * Every transport (gRPC in server/, HTTP beside it) decodes its request into the plain types
 * below, calls the core, and encodes what comes back: decode -> core -> encode. The core holds
 * the semantics and the messages a client sees (Feast's naming rules, the limits, which
 * reference or row is at fault), and it answers with an errno and a message, never with a
 * protocol's status: a transport maps the errno in one place of its own. Nothing here includes
 * gRPC, protobuf-c or an HTTP library.
 *
 *   core_t        one serving instance: the store, the current catalog (swapped atomically on
 *                 reload, read without locks), limits and health
 *   core_worker_t one per transport thread: its pin on the catalog, its store reader, its
 *                 caches (resolved feature lists, Predict's output names)
 *   core_ctx_t    one per request: the pinned catalog, the call's arena, deadline, principal,
 *                 and the message of its error
 *
 * Ownership: everything a request function returns lives in the request's arena or in the
 * worker's caches, and is valid until the request ends (core_ctx_end()) unless said otherwise.
 */

/* ------------------------------------------------------------------------------------------ */
/* Limits                                                                                      */

/*
 * Request limits, the same for every transport. A request over one fails with
 * INVALID_ARGUMENT (-E2BIG) naming the limit and its flag; a response over max_response_bytes
 * fails with RESOURCE_EXHAUSTED (-EMSGSIZE) before it is built.
 */
typedef struct core_limits {
    /* Sizes are at most INT32_MAX (larger settings mean that much): gRPC takes message limits
     * as int, and the same numbers bound every transport. */
    size_t max_message_bytes;  /* --max-message-bytes: largest request (checked by transports) */
    size_t max_response_bytes; /* --max-response-bytes: largest response */
    size_t max_entities;       /* --max-entities: entity rows per read */
    size_t max_features;       /* --max-features: feature references per read */
    size_t max_write_rows;     /* --max-write-rows: rows per write or delete */
    size_t max_history_rows;   /* --max-history-rows: entity rows per GetHistoricalFeatures */
} core_limits_t;

#define CORE_DEFAULT_MAX_MESSAGE_BYTES (4u << 20)
#define CORE_DEFAULT_MAX_RESPONSE_BYTES (64u << 20)
#define CORE_DEFAULT_MAX_ENTITIES 1000u
#define CORE_DEFAULT_MAX_FEATURES 1000u
#define CORE_DEFAULT_MAX_WRITE_ROWS 10000u
#define CORE_DEFAULT_MAX_HISTORY_ROWS 100000u

/* Entity columns (join keys) one read may carry; not a flag, since a read needs only the join
 * keys of its views. A write's columns are bounded by its view instead: its join keys plus its
 * features (a delete: its join keys). Both are checked before any value is converted. */
#define CORE_MAX_ENTITY_COLUMNS 256u

/* Results besides 0 and a negative errno. */
#define CORE_DECLINED 1 /* core_resolve(): the list's bytes are not in the usual shape */
#define CORE_ASYNC 2    /* core_write(): the batch went to the writer; done() will follow */

/* ------------------------------------------------------------------------------------------ */
/* The instance                                                                                */

typedef struct core core_t;

typedef struct core_options {
    const char *data_dir;     /* the store's directory (created if missing, unless read_only) */
    const char *catalog_path; /* YAML file or directory, applied at open and on reload; NULL =
                                 serve the catalog already applied to the data directory */
    store_sync_t sync;        /* the store's durability policy */
    bool read_only;           /* open the store read-only (no catalog is applied then) */
    core_limits_t limits;
    size_t max_workers; /* threads that will each hold a core_worker_t (default 64) */
    bool quiet;         /* log nothing at open: the caller reports errors itself (the CLI) */
    /*
     * Replication (NULL: one node, no log). Then the store is a replica of the log (sync
     * policy STORE_SYNC_LOG: the log holds every acknowledged write), writes are published to
     * the log and applied from it, the catalog is the log's (catalog_path is published when
     * the log has none yet, ignored with a warning when it differs from the log's, published
     * by core_reload()), and the health is SERVING only once the replica caught up.
     */
    const repl_options_t *replication;
    int64_t max_read_wait_ms;      /* --max-read-wait: longest wait of a read for fstore-min-seq
                                      (default 5000) */
    size_t max_read_waiters;       /* --max-read-waiters: reads waiting at once (default 16) */
    int64_t tombstone_retention_s; /* --tombstone-retention (0: STORE_TOMBSTONE_RETENTION_S) */
    int64_t max_future_skew_s;     /* --max-future-skew (0: STORE_MAX_FUTURE_SKEW_S) */
    store_history_t history;       /* --history: keep the history of views that ask for it (offline
                                  serving); AUTO (the default): as the data directory says */
} core_options_t;

/* Fills *o with the documented defaults (no data_dir, no catalog_path). */
void core_options_init(core_options_t *o);

/*
 * Opens the store and applies the catalog (catalog_path), or takes the one applied to the data
 * directory. Problems are logged with their details (event store_open_failed, catalog_rejected,
 * no_catalog) unless quiet.
 * Returns: 0 and *out; -EINVAL (no data_dir, or an invalid catalog); -EPERM (breaking changes
 *          against the applied catalog); -ENOENT (no catalog given and none applied); -ENOMEM;
 *          store_open()'s errors.
 * Ownership: *out is the caller's, closed with core_close() once no worker is left.
 */
int core_open(const core_options_t *o, core_t **out);
/* Frees every worker's leftovers, the catalogs and the store. Accepts NULL. */
void core_close(core_t *c);

/* The store (for a transport's own counters and maintenance). Valid until core_close(). */
store_t *core_store(core_t *c);
/* The data directory, as given. Valid until core_close(). */
const char *core_data_dir(const core_t *c);
/* The limits, for transports' own checks (message sizes). Valid until core_close(). */
const core_limits_t *core_limits(const core_t *c);
/* A new reference to the current catalog, for threads without a worker (catalog_unref()). */
catalog_t *core_catalog_ref(core_t *c);

/*
 * Loads catalog_path again, applies it to the store (breaking changes refused) and swaps it in
 * while requests keep flowing; an invalid catalog is logged with every error
 * (catalog_reload_rejected) and the old one keeps serving.
 * Returns: 0; -ENOENT (opened without catalog_path), -EINVAL, -EPERM, -ENOMEM, store errors.
 * On a replica it also asks for the NATS TLS files to be checked now (repl_reload_tls()),
 * whatever the catalog's outcome.
 * Thread safety: one thread at a time (the transport's control thread).
 */
int core_reload(core_t *c);
/* Counters for tests and logs: reloads that succeeded and that were rejected. */
void core_reload_counts(const core_t *c, uint64_t *applied, uint64_t *rejected);
/* Frees catalogs no worker can still see. Call now and then from the control thread.
 * Returns: how many are still waiting for a worker to move on. */
size_t core_collect(core_t *c);

/* Health, as grpc.health.v1 numbers it (the HTTP front door maps it to /health and /ping). */
typedef enum core_health {
    CORE_SERVING = 1,
    CORE_NOT_SERVING = 2,
} core_health_t;

/* Returns: the instance's health: NOT_SERVING until a transport says it serves, and again once
 * it drains; with replication also until the replica caught up with the log, and while it
 * cannot (it needs a snapshot, or its store failed). Thread safety: any thread. */
core_health_t core_health(const core_t *c);
/* Returns: the transport's health alone (SERVING from listening until draining), whatever the
 * replica's state: liveness, as against core_health()'s readiness. */
core_health_t core_live(const core_t *c);
/* Sets the health (transports: SERVING once listening, NOT_SERVING when draining). */
void core_set_health(core_t *c, core_health_t h);
/*
 * The core's Prometheus families (text format 0.0.4) into out: fstore_up, the catalog (info,
 * load time, reloads), the store (map size and use, commits, log position), per view version
 * rows read, rows applied, newest event time and refused writes, replication (state, lag,
 * sequences) when on, and the process (CPU, memory, descriptors). core is a core_t (the
 * signature of an HTTP metrics source). Thread safety: any thread.
 */
void core_metrics(void *core, FILE *out);

/* The replication client, or NULL on a single node. Valid until core_close(). */
repl_t *core_repl(core_t *c);

/*
 * Snapshots: a consistent copy of the store for a new node to start from. At most
 * CORE_MAX_SNAPSHOTS at a time, taken only while SERVING; one without a read for
 * CORE_SNAPSHOT_IDLE_S is removed. The copy lies beside the data directory
 * ("<data-dir>.snapshot-<id>") and costs its size on that disk until it ends.
 * Thread safety: any thread.
 */
#define CORE_MAX_SNAPSHOTS 1
#define CORE_SNAPSHOT_IDLE_S 60
typedef struct core_snapshot {
    char id[17];
    uint64_t size;     /* bytes of the copy (an LMDB data.mdb) */
    uint64_t sequence; /* the log position the copy holds everything up to */
} core_snapshot_t;
/* Returns: 0 and *out; -EAGAIN (not serving), -ENOBUFS (one is being taken), store errors; msg
 * says why. */
int core_snapshot_begin(core_t *c, core_snapshot_t *out, char *msg, size_t cap);
/* Up to cap bytes at offset into buf (*n = 0 at the end). Returns: 0, -ENOENT (no such
 * snapshot), -EINVAL (offset past the end), -EIO; msg says why. */
int core_snapshot_read(core_t *c, const char *id, uint64_t offset, uint8_t *buf, size_t cap,
                       size_t *n, char *msg, size_t msg_cap);
/* Removes the copy. Returns: 0, -ENOENT. */
int core_snapshot_end(core_t *c, const char *id);

/* Deletes this node's rows past their view's TTL (store_gc(), small transactions through the
 * writer: writes go on beside it), and logs a "gc" line with the count. One sweep per node at a
 * time: a call while one runs is refused at once (-EALREADY), so callers cannot stack sweeps
 * that hold the writer up. Between transactions the sweep stops once deadline_us
 * (base_mono_us(); 0: none) has passed (-ETIMEDOUT) or the node has begun to drain (it served
 * and is NOT_SERVING again: -ESHUTDOWN); what it deleted stays deleted, the rest waits for the
 * next sweep. With replication the sweep goes through the log instead (repl_publish_gc(), by
 * this node's clock and --tombstone-retention): every node applies it whole at its place in the
 * log, and *deleted counts what this node deleted; -ETIMEDOUT when this node had not applied it by
 * deadline_us (msg has the sequence), or when the deadline passed before it was published (msg
 * says nothing was); -ESTALE when it is in the log and this node is not applying the log
 * (failed, needs a snapshot); -EAGAIN when the log did not acknowledge it (it may hold it);
 * -EIO when the stream refused it. Call it from any thread but the store's writer.
 * Returns: 0 with *deleted; -EALREADY; -ETIMEDOUT or -ESHUTDOWN with *deleted (the count so
 * far) and msg set; another negative errno with msg set. */
int core_gc(core_t *c, int64_t deadline_us, size_t *deleted, char *msg, size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* Workers and requests                                                                        */

typedef struct core_worker core_worker_t;

/* What a worker's requests may do. */
#define CORE_WORKER_READS 1u    /* reads: a store reader and the read caches */
#define CORE_WORKER_NO_CACHE 2u /* with READS: no caches; every request resolves afresh */

/*
 * A transport's way to encode a list's column names for its own responses, once per list: the
 * result is kept with the resolved list in the worker's cache (core_resolved_t.names_enc).
 * Returns: 0 and *out (in the arena, *len bytes); -ENOMEM.
 */
typedef int (*core_names_fn)(base_arena_t *a, const char *const *names, const size_t *lens,
                             size_t n, const uint8_t **out, size_t *len);

/*
 * A worker for one thread: a pin slot on the catalog and, with CORE_WORKER_READS, a store reader
 * and caches. names may be NULL.
 * Returns: 0 and *out; -EMFILE (more workers than max_workers); -ENOMEM; store_reader_new()'s
 *          errors.
 * Ownership: *out is the caller's (core_worker_free()), freed before core_close().
 * Thread safety: create and free from any thread; use from one thread at a time.
 */
int core_worker_new(core_t *c, unsigned flags, core_names_fn names, core_worker_t **out);
/* Releases the reader, the caches and the pin slot. Accepts NULL. */
void core_worker_free(core_worker_t *w);

#define CORE_MSG_MAX 1024

/*
 * One request. The transport begins it on its worker with the request's arena, and ends it
 * when the handler returns (for a write handed to the writer, before its completion arrives:
 * the completion uses only msg and the arena).
 */
typedef struct core_ctx {
    core_t *core;
    core_worker_t *worker;
    base_arena_t *arena;
    const catalog_t *catalog; /* pinned from core_ctx_begin() to core_ctx_end() */
    const core_limits_t *limits;
    int64_t deadline_us;   /* CLOCK_MONOTONIC (base_mono_us()) deadline; 0 = none */
    const char *principal; /* who is calling, when a transport authenticated it; NULL = anyone */
    /* The principal's named resources when it holds the call's scope for those only
     * (grant_scope: which scopes); NULL = every resource. Set by core_authorize(). */
    const struct core_grants *grants;
    unsigned grant_scope;
    const char *request_id; /* a write's idempotency key (fstore-request-id); NULL = none */
    uint64_t min_seq;       /* a read waits for the replica to apply this (fstore-min-seq) */
    bool reading;           /* a store read is open (core_read_begin() .. core_read_end()) */
    char msg[CORE_MSG_MAX];
} core_ctx_t;

/* ------------------------------------------------------------------------------------------ */
/* Authentication and authorization (auth.c): every transport asks here, once per call        */

/* Scopes a call may need (0: none, a probe's). admin implies the others. */
#define CORE_SCOPE_READ 1u
#define CORE_SCOPE_WRITE 2u
#define CORE_SCOPE_ADMIN 4u

typedef struct core_token core_token_t;
/* A principal's limited scopes: the resources they name (auth.c). */
typedef struct core_grants core_grants_t;
/* The principals of a tokens file (core_tokens_load()), reloadable in place. */
typedef struct core_tokens core_tokens_t;

/*
 * Loads a tokens file: one principal per line, "NAME CREDENTIAL SCOPES", '#' comments.
 * CREDENTIAL is how the caller proves it is NAME:
 *   - 64 hex digits: a bearer token's SHA-256 as sha256sum prints it (the file holds no token);
 *   - cert:IDENTITY: a client certificate the transport verified against its client CAs one of
 *     whose subject alternative names (DNS, URI such as a SPIFFE ID, e-mail, IP address), or
 *     its subject common name when it has none, is IDENTITY (core_creds_t's cert_names);
 *   - jwt:SUBJECT: a bearer JWT that verifies against the JWKS (core_tokens_use_jwks()) with
 *     this subject (sub).
 * SCOPES are comma-separated from read, write, admin, and scopes limited to named resources:
 * read:view/NAME, read:service/NAME (its features, whatever their views), read:model/NAME
 * (Predict and its REST forms), write:view/NAME. A limited scope passes core_authorize() and is
 * checked against the resources once the core knows them: PERMISSION_DENIED naming the first one
 * not granted.
 * Returns: 0 and *out (free with core_tokens_free()); -EINVAL with why ("path:line: ..."; a
 *          name, hash or identity given twice included), fopen()'s -errno (-ENOENT, -EACCES,
 *          ...) with why, -ENOMEM.
 */
int core_tokens_load(const char *path, core_tokens_t **out, char *why, size_t cap);
/* Where bearer JWTs are checked: the public keys of a JWKS file, and the issuer (iss) and
 * audience (aud) every token must carry. */
typedef struct core_jwt_options {
    const char *jwks_path;
    const char *issuer;
    const char *audience;
} core_jwt_options_t;
/*
 * Accepts bearer JWTs from now on: signed (RS256/384/512, ES256/384/512) by a key of the JWKS
 * file, unexpired, for o's issuer and audience; the caller is the tokens file's jwt:SUBJECT
 * line for the token's sub. A verified token is remembered until it expires (or another token
 * takes its slot of 64), so a client that sends the same token again costs one hash, not one
 * signature check. core_tokens_reload() reads the JWKS file again too. Call once, before any
 * check.
 * Returns: 0; -EINVAL with why (o incomplete, a JWKS that does not load), the read's -errno.
 */
int core_tokens_use_jwks(core_tokens_t *ts, const core_jwt_options_t *o, char *why, size_t cap);
/*
 * Reads the files ts was loaded from again (the tokens file and, if any, the JWKS file) and
 * swaps them in whole, while calls go on (each check sees the old table or the new one). A file
 * that does not load leaves ts as it was. Returns: 0 and *n principals; as core_tokens_load()
 * or core_tokens_use_jwks() otherwise, with why.
 * Thread safety: any thread; checks wait only for the swap itself.
 */
int core_tokens_reload(core_tokens_t *ts, size_t *n, char *why, size_t cap);
void core_tokens_free(core_tokens_t *ts);

/* The most names of one client certificate a transport passes on (later ones are not
 * looked at: a certificate naming more than this many is unusual). */
#define CORE_MAX_CERT_NAMES 16

/* The token of an authorization value "Bearer <token>" (the scheme in any case, blanks after
 * it skipped), or NULL when it is none or empty: a token there decides over a certificate, so a
 * transport need not collect the certificate's names. Returns: a pointer into authorization. */
const char *core_bearer(const char *authorization);

/* A call's credentials, as its transport received them (every member may be NULL / 0). */
typedef struct core_creds {
    const char *authorization; /* the "Bearer <token>" header or metadata */
    /* The names of the client certificate the transport verified against its client CAs: its
     * subject alternative names, or its subject common name when it has none (RFC 6125). */
    const char *const *cert_names;
    size_t n_cert_names;
} core_creds_t;

/*
 * With a tokens file (ctx->principal set), an audit line for a call that is not a write (those
 * leave theirs in core_write*()): op ("collect_garbage", "snapshot"), a count (rows deleted,
 * bytes copied) and how it ended. Never a value. Thread safety: any thread.
 */
void core_audit(const core_ctx_t *ctx, const char *op, long long count, int rc);

/*
 * Checks a call's credentials (cr, NULL for none) against ts for the scopes in need. A bearer
 * token decides when there is one: its hash, else (with a JWKS) a JWT's subject; without one,
 * the verified client certificate's names. Sets ctx->principal to the principal's name once
 * known (on -EPERM too: the refusal names who was refused), and ctx->grants when it holds the
 * scope for named resources only (the core then checks those it meets). ts NULL (no tokens
 * file) or need 0 lets everything through. Tokens are compared by hash in constant time;
 * messages name the principal and the scope, never the token.
 * Returns: 0; -ENOKEY (no credentials) or -EKEYREJECTED (an unknown token, a JWT that does not
 *          verify, a certificate no line names): UNAUTHENTICATED, HTTP 401; -EPERM (the
 *          principal lacks a scope, a verified JWT's subject has no line): PERMISSION_DENIED,
 *          HTTP 403.
 */
int core_authorize(core_ctx_t *ctx, core_tokens_t *ts, const core_creds_t *cr, unsigned need);
/* For a caller whose read scope is limited to named resources (core_tokens_load()): whether
 * model binding `name` is one of them (core_predict_begin() asks too; a transport that looks a
 * binding up by itself asks first, so that a refused caller learns nothing of it).
 * Returns: 0; -EPERM with the message naming the principal and the model. */
int core_authorize_model(core_ctx_t *ctx, const char *name);

/* Pins the current catalog for the request and clears its message. Lock-free. */
void core_ctx_begin(core_ctx_t *ctx, core_worker_t *w, base_arena_t *arena);
/* Ends a store read still open, and unpins the catalog. */
void core_ctx_end(core_ctx_t *ctx);

/* Formats the request's error message and returns err: `return core_fail(ctx, -EINVAL, ...)`. */
int core_fail(core_ctx_t *ctx, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------------------------ */
/* Columns: the entities of a read, the rows of a write                                        */

/* n_cols columns of n_rows values each, named. */
typedef struct core_columns {
    size_t n_cols;
    size_t n_rows;
    const char **names;           /* NUL-terminated */
    const catalog_value_t **cols; /* [n_cols][n_rows] */
} core_columns_t;

/* The shape columns may have, and what sets each bound (for messages). */
typedef struct core_columns_limits {
    size_t max_cols;
    const char *max_cols_why; /* "entity columns per read" */
    size_t max_rows;
    const char *max_rows_why; /* "--max-entities" */
} core_columns_limits_t;

/*
 * The shape checks every transport makes before it converts a value: n columns named keys[i]
 * with lens[i] values each. In order: at most lim->max_cols columns; non-empty names and equal
 * lengths, column by column; at most lim->max_rows rows; then unique names (linear time). `what`
 * names the columns in messages ("entity", "write", "delete").
 * Returns: 0 and *rows; -E2BIG, -EINVAL or -ENOMEM with the message set.
 */
int core_columns_shape(core_ctx_t *ctx, const char *what, size_t n, const char *const *keys,
                       const size_t *lens, const core_columns_limits_t *lim, size_t *rows);
/* Returns: the index of the column called name, or -1. */
int core_columns_find(const core_columns_t *cols, const char *name);
/* The limits of a read's entity columns under ctx's limits. */
core_columns_limits_t core_entity_limits(const core_ctx_t *ctx);

/* ------------------------------------------------------------------------------------------ */
/* Reads                                                                                       */

/* One feature of one entity row, as stored. */
typedef struct core_cell {
    const uint8_t *wire; /* feast.types.Value body; borrowed until core_read_end() */
    uint32_t len;        /* 0 for NOT_FOUND and NULL_VALUE */
    uint8_t status;      /* store_status_t (Feast's FieldStatus) */
    int64_t event_ts_us; /* the row's event time; 0 when NOT_FOUND */
} core_cell_t;

/* refs grouped by view, in order of first appearance: one store lookup per view and row. */
typedef struct core_ref_group {
    const catalog_view_t *view;
    uint32_t first;  /* its refs are ref_idx[first .. first + n_refs) */
    uint32_t n_refs; /* at least 1 */
    bool same_keys;  /* the view's join keys are named as the previous group's, in order */
} core_ref_group_t;

typedef struct core_ref_groups {
    size_t n_groups;
    const core_ref_group_t *groups;
    size_t n_refs;
    const uint32_t *ref_idx;     /* [n_refs]: indexes into refs, group after group */
    const uint32_t *feature_idx; /* [n_refs]: refs[ref_idx[k]].feature->index */
    size_t n_keys;               /* join keys of all groups' views */
    size_t max_keys, max_refs;   /* the most of any one group, at least 1 */
} core_ref_groups_t;

/* One view of a read's feature list, for responses that list them (Feast's metadata). */
typedef struct core_view_md {
    const char *name;
    int32_t version;
} core_view_md_t;

/* A feature list resolved against one catalog: references, response column names, and what
 * else about a read depends on the list alone. */
typedef struct core_resolved {
    size_t n_refs;
    const catalog_feature_ref_t *refs;
    const char *const *names; /* response column names, NUL-terminated */
    const size_t *name_lens;
    bool unique;              /* no two names are equal */
    base_name_index_t set;    /* over names */
    const uint8_t *names_enc; /* the worker's core_names_fn of names, or NULL */
    size_t names_enc_len;
    core_ref_groups_t groups; /* core_group_refs() of refs */
    /* the refs' views, each (name, version) once, in order of first appearance */
    size_t n_views;
    const core_view_md_t *views;
} core_resolved_t;

enum {
    CORE_LIST_NONE = 0,     /* neither a service nor features */
    CORE_LIST_SERVICE = 1,  /* a feature service by name */
    CORE_LIST_FEATURES = 2, /* feature references */
};

/*
 * What a read asks for. A list of references is known to the worker's cache by its key: the
 * references as base_wire_strings() encodes them (a protobuf transport has those bytes as sent,
 * Feast's RepeatedString), or the JSON array they came in (HTTP's usual body, without escapes:
 * http/feast_json.c). The two forms never collide (a wire key is empty or starts with 0x0A, a
 * JSON key with '['), and one key always means one list; one list may have several keys (other
 * whitespace), which only costs cache slots. A transport that can read the references lazily
 * leaves refs NULL and gives parse, which the core calls only when the cache does not know the
 * key.
 */
typedef struct core_feature_list {
    int kind;
    const char *service; /* CORE_LIST_SERVICE: NUL-terminated */
    size_t service_len;
    const uint8_t *key; /* CORE_LIST_FEATURES: the list's key (see above) */
    size_t key_len;
    size_t n_refs; /* CORE_LIST_FEATURES: references, not NUL-terminated; NULL until parsed */
    const char *const *refs;
    const size_t *ref_lens;
    /* Parses key into n_refs/refs/ref_lens. Returns: 0; CORE_DECLINED when the bytes are not
     * the transport's usual shape (it must decode the request another way); -ENOMEM. */
    int (*parse)(base_arena_t *a, struct core_feature_list *l);
    bool full_names; /* columns named view__feature (view@vN__feature for pinned references) */
} core_feature_list_t;

/*
 * Resolves a read's feature list against the pinned catalog with every check that depends on
 * the list alone (unknown features, views or services: NOT_FOUND naming them; --max-features;
 * offline views; no features), and names the response columns: `feature`, or with full_names
 * `view__feature` (`view@vN__feature` when the reference named a version). A list the worker
 * resolved before is recognised by its key and costs one hash and one comparison.
 * Returns: 0 and *out (the arena's or the worker's cache's, valid for the request);
 *          CORE_DECLINED (list->parse declined; nothing else was checked); a negative errno
 *          with the message set.
 */
int core_resolve(core_ctx_t *ctx, core_feature_list_t *list, const core_resolved_t **out);

/*
 * The checks that depend on the list and the entities together, then the read: names (an
 * entity column and a feature column may not share a name: INVALID_ARGUMENT, as in Feast, with
 * the advice for full_names), then one store snapshot opened for the request, and every cell
 * of res's refs x ents's rows read into *cells (cells[ref * n_rows + row]). An entityless read
 * (no columns) has one row, or as many as request's columns: ents->n_rows is set so. request
 * (NULL: none) holds the request data on-demand features read (Feast's request_context), one
 * column per field, as many rows as the entities.
 * Returns: 0 and *cells (in the arena); -EINVAL (a missing join key, a key value of the wrong
 *          type or out of range, a key over STORE_MAX_KEY, a name clash, a request field
 *          missing, of the wrong type or of another length), -EMSGSIZE (on-demand features
 *          over --max-response-bytes), -ENOMEM, -EIO, with the message set. The store read stays
 * open on any result: end it with core_read_end() (or core_ctx_end()) once the cells are encoded.
 */
int core_read_begin(core_ctx_t *ctx, const core_resolved_t *res, core_columns_t *ents,
                    const core_columns_t *request, bool full_names, core_cell_t **cells);
/* Ends the store read of the request (the cells' bytes go with it). Idempotent. */
void core_read_end(core_ctx_t *ctx);

/* ------------------------------------------------------------------------------------------ */
/* Offline serving: point-in-time reads of the views' history (--history)                    */

/*
 * core_read_begin() as of a time per row: row r as its views' history held it at as_of[r]
 * (core_read_features_as_of()): the point-in-time join of Feast's get_historical_features. The
 * cells' event times are the entries' own. Extra entity columns (no view's join key) are
 * allowed and ignored, as online. ents->n_rows is the number of rows (and of times) even
 * without columns (entityless views). One store snapshot, open until core_read_end().
 * Returns: as core_read_begin(); -ENOTSUP when this node keeps no history (--history); -EINVAL
 *          naming a view that keeps none.
 */
int core_history_begin(core_ctx_t *ctx, const core_resolved_t *res, core_columns_t *ents,
                       const int64_t *as_of, bool full_names, core_cell_t **cells);

/* One page of core_load_batch(): entities in key order, each one's row as of the time. */
typedef struct core_batch_page {
    size_t n_rows;
    core_columns_t keys; /* the view's join keys, one column each (values in the arena) */
    core_cell_t *cells;  /* [n_features * n_rows]: feature f of row r at f * n_rows + r */
    const uint8_t *next; /* the page token of the next page (empty: this was the last) */
    size_t next_len;
} core_batch_page_t;

/*
 * Feast's load of a feature view as of a time (the product's load_batch): every entity of v's
 * history whose latest row at or before at_us is live and within v's TTL there, in entity-key
 * order, at most limit rows (0: 1000; at most --max-entities) after the page token after
 * (NULL/empty: from the start; the token is opaque, a previous page's next). Every feature of
 * v, in catalog order. One store snapshot, open until core_read_end(). A page ends short (with
 * a token) after passing over 100000 entities with nothing live, so that a sparse view costs
 * bounded work per call.
 * Returns: 0 and *page (in the arena); -EINVAL (a bad token; a view that keeps no history);
 *          -ESTALE (the token pages through another version than v: the default changed);
 *          -ENOTSUP (no --history); -E2BIG (limit over --max-entities); -EMSGSIZE (the page over
 *          --max-response-bytes); -ENOMEM; -EIO; each with the message set.
 */
int core_load_batch(core_ctx_t *ctx, const catalog_view_t *v, int64_t at_us, size_t limit,
                    const uint8_t *after, size_t after_len, core_batch_page_t *page);

/* Groups refs (resolved against one catalog) by view into *out, in the arena; it depends on refs
 * alone. Returns: 0, -ENOMEM. */
int core_group_refs(base_arena_t *a, const catalog_feature_ref_t *refs, size_t n_refs,
                    core_ref_groups_t *out);
/*
 * The read itself, for callers that manage the store read: refs x rows into
 * cells[ref * ents->n_rows + row], every one of them on success (cells need not be zeroed).
 * groups is core_group_refs() of refs, or NULL to have it computed here. Each distinct view of
 * refs is looked up once per row (an on-demand view's inputs that refs do not hold are looked
 * up once more, as hidden refs); its join keys are taken from the entity columns by name (extra
 * columns are ignored). On-demand features are computed from their inputs (read in the same
 * snapshot) and request's fields (NULL: none; a field not there is looked for among the entity
 * columns); their cells are encoded into a, and what computing them holds is bounded by
 * max_bytes (0: no bound). Bracket it with store_read_begin()/store_read_end() on r.
 * Returns: 0; -EINVAL (a missing join key, a key value of the wrong type, a key over
 *          STORE_MAX_KEY, a missing or mistyped request field) with a message in err;
 *          -EMSGSIZE (on-demand features over max_bytes); -ENOMEM; -EIO.
 */
int core_read_features(store_reader_t *r, base_arena_t *a, const catalog_feature_ref_t *refs,
                       size_t n_refs, const core_ref_groups_t *groups, const core_columns_t *ents,
                       const core_columns_t *request, int64_t now_us, size_t max_bytes,
                       core_cell_t *cells, char *err, size_t err_cap);
/*
 * core_read_features() as of a time per row (as_of NULL: the online read above): row r is read
 * from the views' history (store_history_row()) as it stood at as_of[r], TTLs and on-demand
 * expressions' now() taken at as_of[r]: Feast's point-in-time join. A value older than its
 * view's TTL at that time has no bytes (status OUTSIDE_MAX_AGE, as Feast's join gives null). Every
 * stored view read must keep history. Returns: as core_read_features(); -EINVAL also for a view
 * that keeps no history here, -ENOTSUP for a store that keeps none (serve --history), each with err
 * set.
 */
int core_read_features_as_of(store_reader_t *r, base_arena_t *a, const catalog_feature_ref_t *refs,
                             size_t n_refs, const core_ref_groups_t *groups,
                             const core_columns_t *ents, const core_columns_t *request,
                             int64_t now_us, const int64_t *as_of, size_t max_bytes,
                             core_cell_t *cells, char *err, size_t err_cap);

/* ------------------------------------------------------------------------------------------ */
/* Writes                                                                                      */

/* A view by reference: "name" (the default version) or "name@vN", stored or on-demand.
 * Returns: 0 and *out; -ENOENT (listing the views there are), -EINVAL (malformed), with the
 * message set. */
int core_find_view(core_ctx_t *ctx, const char *view_ref, const catalog_view_t **out);

/*
 * A write's view: view_ref is "name" (the default version) or "name@vN"; it must be online.
 * *lim gets the shape a write's columns may have: at most the view's join keys and features,
 * at most --max-write-rows rows (for core_columns_shape(), before any value is converted).
 * Returns: 0 and *out; -ENOENT, -EINVAL with the message set.
 */
int core_write_view(core_ctx_t *ctx, const char *view_ref, const catalog_view_t **out,
                    core_columns_limits_t *lim);

/* What a write did: rows stored and rows stale (last write wins), as the store counted them, and
 * with replication the log's sequence that holds the write (0 on a single node). Replicated
 * rows whose apply did not follow in time are counted as written. */
typedef struct core_write_result {
    uint64_t written, stale;
    uint64_t sequence;
} core_write_result_t;

/* A write's outcome, on the store's writer thread or a replication thread (or the caller's when
 * nothing was written): rc 0 and res, or a negative errno with ctx's message set. */
typedef void (*core_write_done_fn)(void *arg, int rc, const core_write_result_t *res);

/*
 * Checks cols against view v (every join key present; for upserts every other column a feature
 * of v; for deletes join keys only; n_ts 0 or one event time per row, 0 meaning "now") and
 * hands one batch to the store, which validates and encodes it in this thread and applies it
 * with group commit. A refused value fails the whole batch: "row R, feature F: rule".
 * With replication the validated batch is published to the log instead (ctx->request_id its
 * idempotency key), and done follows JetStream's acknowledgement and this node's apply; the
 * log unreachable for the publish timeout fails it with -EAGAIN naming the stream.
 * Returns: CORE_ASYNC (done(arg, ...) will be called once the batch is durable or failed, maybe
 *          before this returns); 0 when there is no row to write (done is not called; nothing
 *          was written); a negative errno with the message set (done is not called).
 */
int core_write(core_ctx_t *ctx, const catalog_view_t *v, const core_columns_t *cols,
               const int64_t *event_ts_us, size_t n_ts, store_op_t op, core_write_done_fn done,
               void *arg);
/* core_write() of several views at once (cols[i] for views[i], one event time column for all):
 * one store batch each, applied (or published) together, all or nothing. Feast's /push writes
 * every view its push source feeds this way. Returns: as core_write(). */
int core_write_views(core_ctx_t *ctx, const catalog_view_t *const *views,
                     const core_columns_t *cols, size_t n_views, const int64_t *event_ts_us,
                     size_t n_ts, store_op_t op, core_write_done_fn done, void *arg);

/* ------------------------------------------------------------------------------------------ */
/* Predict (TensorFlow Serving's API): a model binding's features as dense tensors              */

/* Which binding: model_spec's name and its version or version label. */
typedef struct core_model_spec {
    const char *name;
    bool has_version;
    int64_t version;
    const char *label; /* NULL: none */
} core_model_spec_t;

/*
 * One output: a feature over n_rows entity rows, dense. Shape [n_rows] for scalars, [n_rows,
 * width] for lists (every row the same width). elem is the element type (FLOAT, DOUBLE, INT64,
 * UNIX_TIMESTAMP, INT32, BOOL, STRING or BYTES); v holds n values of it. Strings and bytes
 * point into the cells and the catalog: encode before core_read_end().
 */
typedef struct core_tensor {
    catalog_dtype_t elem;
    bool list;
    size_t n_rows, width, n;
    union {
        float *f32;
        double *f64;
        int64_t *i64; /* INT64, UNIX_TIMESTAMP */
        int32_t *i32;
        bool *b;
        catalog_bytes_t *bytes; /* STRING, BYTES */
    } v;
} core_tensor_t;

/* A service's outputs: one name per feature, the feature's name or, where names collide,
 * `view__feature`, then `view@vN__feature`; and an index over the names. */
typedef struct core_outputs {
    const catalog_service_t *service;
    size_t n;                 /* svc->n_features */
    const char *const *names; /* [n], NUL-terminated */
    const size_t *name_lens;  /* [n] */
    base_name_index_t set;    /* over names */
    size_t offline;           /* the first feature whose view is not online, or n */
} core_outputs_t;

/* A Predict in progress (core_predict_*() fill it in order). */
typedef struct core_predict {
    const catalog_model_t *model;
    const core_outputs_t *outs;
    core_columns_t ents; /* entity inputs as join-key columns */
    /* request data its on-demand features read: the fields (core_predict_begin()), then their
     * inputs as columns (core_predict_entities()) */
    const catalog_input_t *const *request_fields;
    size_t n_request_fields;
    core_columns_t request;
    /* the outputs read: all of outs, or those output_filter names (in service order) */
    size_t n_out;
    const catalog_feature_ref_t *refs;
    const char *const *names;
    const size_t *name_lens;
    core_cell_t *cells;     /* [n_out * ents.n_rows] */
    core_tensor_t *tensors; /* [n_out] */
} core_predict_t;

/*
 * Finds the binding (NOT_FOUND listing the bindings there are), checks its service against
 * --max-features and that every view is online, takes its output names (once per catalog and
 * service per worker) and the request fields its on-demand outputs read (p->request_fields).
 * Returns: 0; -ENOENT, -E2BIG, -EINVAL, -ENOMEM with the message set.
 */
int core_predict_begin(core_ctx_t *ctx, const core_model_spec_t *spec, core_predict_t *p);

/*
 * Reads one input for core_predict_entities(), the transport's decoding of its own tensors: an
 * entity input as join-key values of type want (INT64, INT32, STRING or BYTES), or a request
 * field's input for a field of type want, whose values may come in another type the core then
 * converts (a transport whose values carry their own type reads them as they are).
 * Returns: 0, *vals (batch values, in a) and *batch; -ENOENT when the request has no such
 *          input; -EINVAL with the reason in why ("has shape [] ..."); -ENOMEM.
 */
typedef int (*core_input_fn)(void *arg, const char *input, catalog_dtype_t want, base_arena_t *a,
                             catalog_value_t **vals, size_t *batch, char *why, size_t why_cap);

/* Reads the binding's entity inputs through input (n_inputs: how many the request has, for
 * messages) into p->ents: every one present, of a type its join key takes, all with one batch
 * size, at most --max-entities rows; then the request data of its on-demand features into
 * p->request, from inputs named like the fields (want: the field's type; a transport whose
 * values carry their own type may give any, which the core converts). Returns: 0; -EINVAL,
 * -E2BIG, -ENOMEM with the message set. */
int core_predict_entities(core_ctx_t *ctx, core_predict_t *p, core_input_fn input, void *arg,
                          size_t n_inputs);

/* The outputs to read: all of them (a passthrough, or no filter), or those filter names, in
 * service order; the request fields are then those the selected outputs read (call it before
 * core_predict_entities() for that). Returns: 0; -EINVAL naming an unknown output and listing
 * the outputs; -ENOMEM. */
int core_predict_select(core_ctx_t *ctx, core_predict_t *p, const char *const *filter,
                        size_t n_filter);

/*
 * Opens the store read (end it with core_read_end() after encoding), reads the selected outputs
 * for every row, and builds one tensor per output: a missing value (no row, null, or past the
 * view's TTL) takes the feature's default, else zeros when the binding says on_missing: zero,
 * else fails; lists must have one length across the batch.
 * Returns: 0 (p->cells, p->tensors); -ENOENT (a missing value), -EINVAL (ragged lists, a key
 *          error), -EIO (a stored value of the wrong type), -EMSGSIZE (the values alone are over
 *          --max-response-bytes), -ENOMEM; each with the message naming the entity and feature.
 */
int core_predict_read(core_ctx_t *ctx, core_predict_t *p);

/* Returns: the index of the output called name (len bytes) among p->outs, or -1. */
long core_predict_output(const core_predict_t *p, const char *name, size_t len);

#endif /* CORE_CORE_H */
