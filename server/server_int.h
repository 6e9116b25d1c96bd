/* server/server_int.h - shared inside server/: arena, catalog holder, calls, read path, encoder. */
#ifndef SERVER_SERVER_INT_H
#define SERVER_SERVER_INT_H

#include <grpc/grpc.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "catalog/catalog.h"
#include "server/server.h"
#include "storage/store.h"

#include "feast/types/Value.pb-c.h"
#include "tensorflow/core/framework/tensor.pb-c.h"

/* ------------------------------------------------------------------------------------------ */
/* Arena: one per call slot, reset between calls, so a request costs no mallocs once warm.    */

/* FNV-1a over n bytes, for the small hash sets of names inside server/. */
#define SERVER_FNV_OFFSET 1469598103934665603ull
static inline uint64_t server__fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = SERVER_FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Reads a protobuf varint of at most 10 bytes (64 bits) at *p, not past end, and moves *p past
 * it. Returns: false when it is truncated or too long (then *p is undefined). A one-byte fast
 * path: tags and lengths are nearly all one byte. */
static inline bool server__get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *q = *p;
    if (q < end && *q < 0x80) {
        *out = *q;
        *p = q + 1;
        return true;
    }
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70 && q < end; shift += 7) {
        uint8_t b = *q++;
        if (shift == 63 && b > 1)
            return false;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *out = v;
            *p = q;
            return true;
        }
    }
    return false;
}

/* The bytes a protobuf varint of v takes (1 for most lengths and tags, checked first). */
static inline size_t server__varint_size(uint64_t v)
{
    if (v < 0x80)
        return 1;
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Protobuf wire types, and a field's tag when it fits one byte (fields 1-15). */
#define SERVER_WT_VARINT 0
#define SERVER_WT_LEN 2
#define SERVER_TAG(field, wt) ((uint8_t)(((field) << 3) | (wt)))

/* Writes v as a protobuf varint at p. Returns: the byte after it. */
static inline uint8_t *server__put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* The bytes of a length-delimited field with a one-byte tag and a body of len bytes. */
static inline size_t server__len_field_size(size_t len)
{
    return 1 + server__varint_size(len) + len;
}

typedef struct server_arena_chunk server_arena_chunk_t;

typedef struct server_arena {
    server_arena_chunk_t *head; /* newest chunk first */
    size_t first_size;          /* size of the first chunk */
    size_t used_total;          /* bytes handed out since the last reset, for resizing */
    ProtobufCAllocator pb;      /* protobuf-c allocator drawing from this arena */
} server_arena_t;

/* Prepares an empty arena; nothing is allocated until the first use. */
void server__arena_init(server_arena_t *a, size_t first_size);
/* Returns: n bytes aligned for any type, or NULL on out of memory. Valid until reset/free. */
void *server__arena_alloc(server_arena_t *a, size_t n);
/* As server__arena_alloc, zeroed, for n * size bytes (NULL on overflow). */
void *server__arena_calloc(server_arena_t *a, size_t n, size_t size);
/* As server__arena_calloc, not zeroed: for arrays the caller fills completely. */
void *server__arena_array(server_arena_t *a, size_t n, size_t size);
/* Copies len bytes and a NUL. Returns: the copy, or NULL. */
char *server__arena_strndup(server_arena_t *a, const char *s, size_t len);
/* Forgets every allocation. Keeps one chunk sized for what the last use needed, or none when
 * that exceeded ARENA_KEEP_MAX, so a steady workload stops calling malloc. */
void server__arena_reset(server_arena_t *a);
/* Frees every chunk. Accepts NULL. */
void server__arena_free(server_arena_t *a);
/* A protobuf-c allocator for __unpack: its free is a no-op, the arena reset frees everything. */
ProtobufCAllocator *server__arena_allocator(server_arena_t *a);

/* ------------------------------------------------------------------------------------------ */
/* Status mapping: the one place where errno meets grpc_status_code.                            */

/* Returns: the gRPC status for a negative errno (0 -> OK). */
grpc_status_code server__status_from_errno(int err);

/* ------------------------------------------------------------------------------------------ */
/* Logging: structured (jansson), one line per event, never feature values.                     */

typedef enum server_log_level {
    SERVER_LOG_DEBUG = 0,
    SERVER_LOG_INFO = 1,
    SERVER_LOG_WARN = 2,
    SERVER_LOG_ERROR = 3,
} server_log_level_t;

/*
 * Logs one event. fields is a json_pack() format for an object of extra fields (NULL = none),
 * e.g. server__log(SERVER_LOG_INFO, "listening", "{s:s, s:i}", "address", a, "port", p).
 * Thread safety: any thread; a line is written with one write().
 */
void server__log(server_log_level_t level, const char *event, const char *fields, ...);

/* ------------------------------------------------------------------------------------------ */
/* Catalog holder: the current catalog, swapped atomically, pinned without locks.              */

/* One reader slot, on its own cache line: 0 when the thread is outside a request, else the
 * global epoch it saw when it entered. */
typedef struct server_pin {
    _Alignas(64) _Atomic uint64_t active;
} server_pin_t;

typedef struct server_retired server_retired_t;

typedef struct server_holder {
    _Atomic(catalog_t *) current;
    _Atomic uint64_t epoch;
    server_pin_t *pins;
    size_t n_pins;
    pthread_mutex_t write_lock; /* swap and collect only; readers never take it */
    server_retired_t *retired;  /* old catalogs waiting for readers to move on */
} server_holder_t;

/* On success takes ownership of initial (one reference); on -ENOMEM the caller keeps it.
 * Returns: 0, -ENOMEM. */
int server__holder_init(server_holder_t *h, catalog_t *initial, size_t n_pins);
/* Unrefs the current and every retired catalog. Every reader must have exited. */
void server__holder_destroy(server_holder_t *h);
/*
 * Enters a read-side critical section on pin slot `pin` (one slot per thread) and returns the
 * current catalog, valid until server__holder_exit(). Lock-free: two atomic stores and loads.
 */
const catalog_t *server__holder_enter(server_holder_t *h, size_t pin);
void server__holder_exit(server_holder_t *h, size_t pin);
/* A new reference to the current catalog, for threads without a pin (the control thread). */
catalog_t *server__holder_ref(server_holder_t *h);
/* Publishes next (takes its reference) and retires the old catalog. Returns: 0, -ENOMEM (next
 * is then released and the old catalog stays). */
int server__holder_swap(server_holder_t *h, catalog_t *next);
/* Frees retired catalogs no reader can still see. Returns: how many are still waiting. */
size_t server__holder_collect(server_holder_t *h);

/* ------------------------------------------------------------------------------------------ */
/* Calls                                                                                       */

typedef struct server_worker server_worker_t;
typedef struct server_call server_call_t;

/*
 * A unary handler: decodes req (len bytes), does the work, and on success sets *resp to the
 * encoded response (a slice the caller sends and releases).
 * Returns: 0, or a negative errno with the call's message set by server__fail(), or
 *          SERVER_PENDING after handing the call to an asynchronous operation (see below).
 */
typedef int (*server_unary_fn)(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);

/*
 * Asynchronous completion (Predict passthrough). A handler that must wait on another server
 * starts a client call whose completion is tagged with the server call and lands on the same
 * worker's queue, sets c->resume, and returns SERVER_PENDING. The worker goes back to its queue
 * at once, so a slow upstream holds a call slot, never a thread: reads keep being served. When
 * the completion arrives the worker calls c->resume(c, ok, &resp), whose return value is then
 * treated like a handler's. The catalog is not pinned while pending, so whatever resume needs
 * must live in the call's arena. While pending, the server call keeps RECV_CLOSE_ON_SERVER
 * outstanding: without an op in flight gRPC would not notice that the caller cancelled, and it is
 * that op's completion which cancels the child call (GRPC_PROPAGATE_CANCELLATION). Shutdown waits
 * for every pending call to have sent its reply before the worker queues go away.
 * Chosen over a separate thread pool for passthroughs: no hand-off between threads, no second
 * set of queues, and the number of calls in flight is bounded by Predict's slots, not threads.
 */
#define SERVER_PENDING 1
typedef int (*server_resume_fn)(server_call_t *c, bool ok, grpc_slice *resp);

/*
 * Detached completion (writes). A handler that hands the call to an operation completing on
 * another thread (the store's writer, after the group commit's fsync) first calls
 * server__call_detach(c), then starts the operation, and returns SERVER_DETACHED. From then on
 * the call belongs to the operation: the worker does not touch it again, and the operation ends
 * it with server__call_complete(c, rc, resp) from whatever thread it runs on (rc and resp as a
 * handler's result). If the operation could not be started, server__call_attach(c) takes the
 * call back and the handler returns normally. The catalog is not pinned once the handler has
 * returned: what the completion needs must live in the arena. Shutdown waits for detached calls
 * as for pending ones. Chosen over a worker sleeping per write: a write holds a call slot, never
 * a thread, so every write in flight can join the same group commit.
 */
#define SERVER_DETACHED 2
void server__call_detach(server_call_t *c);
void server__call_attach(server_call_t *c);
/* Ends a detached call: sends the reply (resp on rc == 0; the slice is released here). */
void server__call_complete(server_call_t *c, int rc, grpc_slice resp);

typedef enum server_pool {
    SERVER_POOL_READ = 0,  /* read workers: reads, catalog, health check, serving info */
    SERVER_POOL_WRITE = 1, /* write workers: decode, validate, encode, queue for the writer */
} server_pool_t;

typedef struct server_method {
    const char *path;
    const char *name; /* for logs: "GetOnlineFeatures" */
    server_unary_fn fn;
    server_pool_t pool;
    unsigned slots; /* calls each worker keeps requested */
} server_method_t;

#define SERVER_MSG_MAX 1024

struct server_call {
    server_worker_t *worker;
    const server_method_t *method;
    void *registered; /* gRPC's handle of the method */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *response;
    grpc_slice details;
    int cancelled;
    int state;
    bool close_started; /* RECV_CLOSE_ON_SERVER was started on its own (pending calls) */
    bool close_pending; /* ... and has not completed yet */
    server_arena_t arena;
    const catalog_t *catalog; /* pinned for the handler's duration */
    server_resume_fn resume;  /* set by a handler returning SERVER_PENDING */
    void *resume_arg;         /* the handler's state for resume, in the arena */
    bool relayed;             /* the status comes from another server, not from an errno */
    grpc_status_code relay_status;
    int64_t t0_us;  /* when the handler started, for the request log */
    size_t req_len; /* request bytes, for the request log */
    char msg[SERVER_MSG_MAX];
};

/* The server, the store and this worker's reader (NULL on write workers) for a handler. */
server_t *server__call_server(const server_call_t *c);
store_t *server__call_store(const server_call_t *c);
store_reader_t *server__call_reader(const server_call_t *c);
const server_limits_t *server__call_limits(const server_call_t *c);
/* The worker's completion queue, for client calls whose completion resumes c. */
grpc_completion_queue *server__call_cq(const server_call_t *c);

/* Formats the call's error message and returns err, for `return server__fail(c, -EINVAL, ...)`. */
int server__fail(server_call_t *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Allocates the slice for n bytes that c will send (what names them in the message: "response",
 * "upstream request"), first checking n against the server's max_response_bytes.
 * Returns: 0 and *out; -EMSGSIZE (RESOURCE_EXHAUSTED) with the call's message set ("response
 *          would be N bytes; the limit is M (--max-response-bytes)"), nothing allocated.
 *          There is no -ENOMEM: grpc_slice_malloc() aborts the process when malloc fails, which
 *          is why every size a request can drive goes through this check first.
 * Ownership: *out is the caller's (grpc_slice_unref(), or hand it to gRPC).
 */
int server__response_slice(server_call_t *c, const char *what, size_t n, grpc_slice *out);
/* Packs a protobuf-c message into a new slice through server__response_slice(c, "response").
 * Returns: 0 and *out; -EMSGSIZE with the call's message set. */
int server__pack_slice(server_call_t *c, const ProtobufCMessage *m, grpc_slice *out);

/*
 * Every handler's first step: unpacks a request of type d from buf into the call's arena, then
 * checks its strings with server__pb_check_strings().
 * Returns: 0 and *out (in the arena); -EINVAL with the call's message set ("malformed
 *          <Message>" or "malformed <Message>: <why>").
 */
int server__unpack(server_call_t *c, const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                   size_t len, ProtobufCMessage **out);

/*
 * Checks every string field of the message d encoded in buf (len bytes), at any depth: it must be
 * UTF-8 without a NUL byte. protobuf-c checks neither and hands strings over NUL-terminated, so a
 * NUL inside would silently shorten the string (another entity's key, a cut value). Call it on a
 * request that unpacked as d.
 * Returns: 0; -EINVAL with the field named in why ("feast.types.Value.string_val contains a NUL
 *          byte").
 */
int server__pb_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                             char *why, size_t why_cap);

/* Health: the server's overall serving status (grpc.health.v1 numbers: 1 SERVING, 2 NOT_SERVING)
 * and the serving status of a named service (3 SERVICE_UNKNOWN for names we do not serve). */
int server__health_status(const server_t *s, const char *service);

/* The unary handlers, one file each (server/rpc_<name>.c). */
int server__rpc_get_online_features(server_call_t *c, const uint8_t *req, size_t len,
                                    grpc_slice *resp);
int server__rpc_get_feast_serving_info(server_call_t *c, const uint8_t *req, size_t len,
                                       grpc_slice *resp);
int server__rpc_write_features(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_delete_entities(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_get_catalog(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_health_check(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_predict(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);

/* ------------------------------------------------------------------------------------------ */
/* Control-thread completion-queue tags (health watches, shutdown).                            */

typedef struct server_tag server_tag_t;
struct server_tag {
    void (*fn)(server_tag_t *t, bool ok);
};

typedef struct server_watches server_watches_t;

/* Health Watch (server streaming), driven by the control thread only (rpc_health_watch.c). */
int server__watch_init(server_t *s, grpc_server *gs, grpc_completion_queue *cq,
                       server_watches_t **out);
/* Requests the first Watch call; call after grpc_server_start(). */
void server__watch_start(server_watches_t *w);
/* Sends the new status to every watcher whose last message is out of date. */
void server__watch_notify(server_watches_t *w);
/* Ends every stream (after a last NOT_SERVING) and stops requesting new ones. */
void server__watch_drain(server_watches_t *w);
/* Frees the bookkeeping; every call must have completed. */
void server__watch_free(server_watches_t *w);

/* Calls to methods fstore does not serve: answered UNIMPLEMENTED by the control thread
 * (rpc_unimplemented.c). Init before grpc_server_start(), start after it, free after the
 * control queue has been drained. */
typedef struct server_unknown server_unknown_t;
int server__unknown_init(grpc_server *gs, grpc_completion_queue *cq, server_unknown_t **out);
void server__unknown_start(server_unknown_t *u);
void server__unknown_free(server_unknown_t *u);

/* ------------------------------------------------------------------------------------------ */
/* Values                                                                                      */

/*
 * Converts an unpacked feast.types.Value into a catalog value (NOT_SET and null_val give a NULL
 * value). Lists are copied into the arena where the layouts differ (bool, bytes, strings).
 * Returns: 0; -EINVAL for a Value of a type fstore does not know (Feast fields 20 and up), with
 *          a description in why; -ENOMEM.
 */
int server__value_from_pb(const Feast__Types__Value *pb, server_arena_t *a, catalog_value_t *out,
                          char *why, size_t why_cap);
/* The reverse, for catalog defaults and allowed values: *out points into v and the arena.
 * Returns: 0, -ENOMEM. */
int server__value_to_pb(const catalog_value_t *v, server_arena_t *a, Feast__Types__Value *out);

/*
 * Column-wise input (entities of a read, columns of a write): n_cols names, each with n_rows
 * values. Built by server__columns_from_pb from a protobuf map.
 */
typedef struct server_columns {
    size_t n_cols;
    size_t n_rows;
    const char **names;
    const catalog_value_t **cols;           /* [n_cols][n_rows] */
    const Feast__Types__RepeatedValue **pb; /* the unpacked columns, for echoing values back */
} server_columns_t;

/* The shape a request's columns may have, and what sets each bound (for messages). */
typedef struct server_columns_limits {
    size_t max_cols;
    const char *max_cols_why; /* "entity columns per read" */
    size_t max_rows;
    const char *max_rows_why; /* "--max-entities" */
} server_columns_limits_t;

/*
 * Converts map entries (keys[i] -> vals[i]) into columns. The shape is checked first, by
 * server__columns_shape() (see there for the order), before any value is looked at, so an
 * oversized request costs no more than its unpack. Then every value must have a known type.
 * `what` names the columns in messages ("entity", "write").
 * Returns: 0; -E2BIG (a limit), -EINVAL or -ENOMEM, with the call's message set.
 */
int server__columns_from_pb(server_call_t *c, const char *what, size_t n, char *const *keys,
                            Feast__Types__RepeatedValue *const *vals,
                            const server_columns_limits_t *lim, server_columns_t *out);

/*
 * Looks for two equal strings among names[0..n) in linear time (a hash set in the arena).
 * Returns: 1 with *first < *second the indexes of the first repeat found; 0 when all differ;
 *          -ENOMEM.
 */
int server__find_duplicate(server_arena_t *a, const char *const *names, size_t n, size_t *first,
                           size_t *second);

/*
 * A hash index over names[0..n) (lens[i] bytes each, NUL-free), built once and looked up by
 * name: open addressing at most half full, each slot the index + 1 of a name (0 = empty). Every
 * name has a slot, and of equal names the first is met first on a lookup.
 */
typedef struct server_name_index {
    uint32_t *slots;
    uint32_t mask; /* slots - 1 */
} server_name_index_t;
/* Builds *ix in the arena. dup, when not NULL, gets dup[i] = the index of the first earlier name
 * equal to names[i], or -1. Returns: how many names equal an earlier one (0: all differ);
 * -ENOMEM. */
long server__name_index_build(server_arena_t *a, const char *const *names, const size_t *lens,
                              size_t n, server_name_index_t *ix, long *dup);
/* Returns: the index of the first of names (those ix was built over) equal to name (len bytes),
 * or -1. */
long server__name_index_find(const server_name_index_t *ix, const char *const *names,
                             const size_t *lens, const char *name, size_t len);
/* Returns: the index of the column called name, or -1. */
int server__columns_find(const server_columns_t *cols, const char *name);

/* Builds a write call's response from the store's result (on any thread; the catalog is not
 * pinned). Returns: as a handler. */
typedef int (*server_write_reply_fn)(server_call_t *c, const store_apply_result_t *res,
                                     grpc_slice *resp);

/*
 * The write path shared by WriteFeatures and DeleteEntities: resolves view_ref ("name" or
 * "name@vN") against the call's catalog, checks the columns (every join key present; for upserts
 * every other column a feature of the view; for deletes join keys only), and hands one batch to
 * store_apply_async(), which validates and encodes it in this thread. n_ts == 0: every row is
 * stamped now; otherwise event_ts_us holds n_ts timestamps, one per row (n_ts other than the row
 * count is -EINVAL). Once the batch is durable (or failed in the writer), the writer thread calls
 * reply(c, res, ...) and completes the call (see SERVER_DETACHED).
 * Returns: SERVER_DETACHED (the call now belongs to the store's writer); 0 and *resp built by
 *          reply when there is no row to write; a negative errno with the call's message set
 *          ("row R, feature F: rule") when the request or a value is refused.
 */
int server__apply_columns(server_call_t *c, const char *view_ref, size_t n, char *const *keys,
                          Feast__Types__RepeatedValue *const *vals, const int64_t *event_ts_us,
                          size_t n_ts, store_op_t op, server_write_reply_fn reply,
                          grpc_slice *resp);

/* ------------------------------------------------------------------------------------------ */
/* The read path, shared by GetOnlineFeatures and (later) Predict and HTTP front doors.        */

/* One feature of one entity row. */
typedef struct server_cell {
    const uint8_t *wire; /* feast.types.Value body; borrowed until store_read_end() */
    uint32_t len;        /* 0 for NOT_FOUND and NULL_VALUE */
    uint8_t status;      /* store_status_t (Feast's FieldStatus) */
    int64_t event_ts_us; /* the row's event time; 0 when NOT_FOUND */
} server_cell_t;

/* refs grouped by view, in order of first appearance: one store lookup per view and row. */
typedef struct server_ref_group {
    const catalog_view_t *view;
    uint32_t first;  /* its refs are ref_idx[first .. first + n_refs) */
    uint32_t n_refs; /* at least 1 */
    bool same_keys;  /* the view's join keys are named as the previous group's, in order */
} server_ref_group_t;

typedef struct server_ref_groups {
    size_t n_groups;
    const server_ref_group_t *groups;
    size_t n_refs;
    const uint32_t *ref_idx;     /* [n_refs]: indexes into refs, group after group */
    const uint32_t *feature_idx; /* [n_refs]: refs[ref_idx[k]].feature->index */
    size_t n_keys;               /* join keys of all groups' views */
    size_t max_keys, max_refs;   /* the most of any one group, at least 1 */
} server_ref_groups_t;

/* Groups refs (resolved against one catalog) by view into *out, in the arena; it depends on refs
 * alone. Returns: 0, -ENOMEM. */
int server__group_refs(server_arena_t *a, const catalog_feature_ref_t *refs, size_t n_refs,
                       server_ref_groups_t *out);

/*
 * Reads refs (resolved against one catalog snapshot) for every entity row of ents into
 * cells[ref * ents->n_rows + row], every one of them on success (cells need not be zeroed).
 * groups is server__group_refs() of refs, or NULL to have it computed here. Each distinct view
 * is looked up once per row; its join keys are taken from the entity columns by name (extra
 * columns are ignored). The caller brackets the call with store_read_begin()/store_read_end()
 * on r, so a request sees one snapshot, and encodes the cells before ending the read.
 * Returns: 0; -EINVAL (a missing join key, a key value of the wrong type, a key over
 *          STORE_MAX_KEY) with a message in err; -ENOMEM; -EIO.
 */
int server__read_features(store_reader_t *r, server_arena_t *a, const catalog_feature_ref_t *refs,
                          size_t n_refs, const server_ref_groups_t *groups,
                          const server_columns_t *ents, int64_t now_us, server_cell_t *cells,
                          char *err, size_t err_cap);

/* ------------------------------------------------------------------------------------------ */
/* GetOnlineFeaturesRequest, decoded by hand in its usual shape (feast_decode.c).              */

typedef struct server_wire {
    const uint8_t *data;
    size_t len;
} server_wire_t;

/* One entity column of a read as sent: a map entry of the request. */
typedef struct server_read_column {
    const char *name; /* NUL-terminated, in the arena */
    size_t n_vals;
    const catalog_value_t *vals; /* [n_vals]; strings and bytes point into the request */
    const server_wire_t *wire;   /* [n_vals]: each feast.types.Value body as sent */
} server_read_column_t;

enum {
    SERVER_READ_NONE = 0,     /* neither feature_service nor features */
    SERVER_READ_SERVICE = 1,  /* feature_service */
    SERVER_READ_FEATURES = 2, /* features */
};

typedef struct server_read_request {
    int kind;
    const char *service; /* SERVER_READ_SERVICE: NUL-terminated, in the arena */
    size_t service_len;
    /* SERVER_READ_FEATURES: the list as the repeated-string field's body (tag, length and bytes
     * of each reference), the key of the worker's cache of resolved lists. Valid for the call: it
     * points into the request (hand decoder) or the arena (re-encoded from protobuf-c's parse).
     * Only the protobuf-c form is checked when it is set; the hand decoder's bytes are checked,
     * and shown minimal (the one form a list has), by server__feast_decode_features(). */
    const uint8_t *features_pb;
    size_t features_pb_len;
    /* SERVER_READ_FEATURES, once parsed (NULL before server__feast_decode_features()): the
     * references, pointing into the request, not NUL-terminated. */
    size_t n_features;
    const char *const *features;
    const size_t *feature_lens;
    size_t n_entities;
    server_read_column_t *entities; /* map entries in request order (repeats kept) */
    bool full_feature_names;
    bool include_md; /* include_feature_view_version_metadata */
} server_read_request_t;

/*
 * Decodes a GetOnlineFeaturesRequest when it has the usual shape: at most one of
 * feature_service and features, entity values of type INT64, INT32, STRING or BYTES, nothing
 * else but the two flags, every string NUL-free UTF-8 and every encoding minimal. Such a request
 * decodes exactly as protobuf-c decodes it, and each Value body packs back to the bytes sent.
 * In two steps: server__feast_decode_read() reads everything but the references of a feature
 * list, of which it only notes the bytes (features_pb), and server__feast_decode_features()
 * reads those, when the caller needs them (a list it has resolved before it can recognise by
 * its bytes, which one accepted list has exactly one of). The request has the usual shape when
 * both accept it.
 * Returns: 0 and *out (pointing into buf and the arena); 1 when the request is anything else
 *          (decode it with protobuf-c: it may still be valid); -ENOMEM. On 1 and -ENOMEM *out
 *          is left partly written: discard it. The two bool flags may be non-minimal varints
 *          (they are not echoed back).
 */
int server__feast_decode_read(server_arena_t *a, const uint8_t *buf, size_t len,
                              server_read_request_t *out);
/* The second step, for rr->kind == SERVER_READ_FEATURES: reads rr->features_pb into
 * rr->n_features, features and feature_lens (pointing into rr->features_pb, so valid as long as
 * it is).
 * Returns: 0; 1 when the list is not of the usual shape (decode the whole request with
 *          protobuf-c); -ENOMEM. */
int server__feast_decode_features(server_arena_t *a, server_read_request_t *rr);

/* Returns: whether s (len bytes) is UTF-8 (RFC 3629: no overlong forms, no surrogates). */
bool server__utf8_valid(const uint8_t *s, size_t len);

/*
 * The shape checks, shared by server__columns_from_pb() and the hand-decoded read path: n
 * columns named keys[i] with lens[i] values each. In order: at most lim->max_cols columns;
 * non-empty names and equal lengths, column by column; at most lim->max_rows rows; then unique
 * names (a hash set, linear time).
 * Returns: 0 and *rows; -E2BIG, -EINVAL or -ENOMEM with the call's message set.
 */
int server__columns_shape(server_call_t *c, const char *what, size_t n, char *const *keys,
                          const size_t *lens, const server_columns_limits_t *lim, size_t *rows);

/* ------------------------------------------------------------------------------------------ */
/* Resolved feature lists, and the per-worker cache of them (ref_cache.c).                     */

/* One entry of a response's metadata.feature_view_metadata. */
typedef struct server_feast_view_md {
    const char *name;
    int32_t version;
} server_feast_view_md_t;

/* A request's feature list resolved against one catalog: references and response column names,
 * and what else about a read depends on the list alone. */
typedef struct server_resolved {
    size_t n_refs;
    const catalog_feature_ref_t *refs;
    const char *const *names; /* response column names, NUL-terminated */
    const size_t *name_lens;
    bool unique;             /* no two names are equal (set by server__resolved_index_names) */
    server_name_index_t set; /* over names */
    /* names as metadata.feature_names entries (server__feast_encode_names()), or NULL */
    const uint8_t *names_pb;
    size_t names_pb_len;
    server_ref_groups_t groups; /* server__group_refs() of refs */
    /* the refs' views, each (name, version) once in order of first appearance: what
     * include_feature_view_version_metadata lists */
    size_t n_views;
    const server_feast_view_md_t *views;
} server_resolved_t;

/* Builds r->set over r->names in the arena and sets r->unique. Returns: 0, -ENOMEM. */
int server__resolved_index_names(server_arena_t *a, server_resolved_t *r);
/* Returns: whether one of r's names equals name (r->set must be built). */
bool server__resolved_has_name(const server_resolved_t *r, const char *name);

/*
 * A cache of resolved feature lists for one thread, keyed by the catalog, flags (the kind of
 * list and the naming options) and key_len bytes from the request that name the list (the
 * caller sees to it that one list has one key: a feature list's canonical encoding, a service's
 * name). Holds a reference to the catalog of its entries; meeting another catalog empties it.
 * Thread safety: none; one cache per worker thread.
 */
typedef struct server_ref_cache server_ref_cache_t;
/* Returns: 0, -ENOMEM. Ownership: *out is the caller's (server__ref_cache_free()). */
int server__ref_cache_new(server_ref_cache_t **out);
/* Frees the entries and drops the catalog reference. Accepts NULL. */
void server__ref_cache_free(server_ref_cache_t *rc);
/* Returns: the cached resolution (valid until the next put or a call with another catalog), or
 * NULL. rc may be NULL (no cache). */
const server_resolved_t *server__ref_cache_get(server_ref_cache_t *rc, const catalog_t *cat,
                                               unsigned flags, const uint8_t *key, size_t key_len);
/* Copies r (which must be unique, else nothing happens) into the cache. Out of memory is not an
 * error: the list is just not remembered. rc may be NULL. */
void server__ref_cache_put(server_ref_cache_t *rc, const catalog_t *cat, unsigned flags,
                           const uint8_t *key, size_t key_len, const server_resolved_t *r);
/* For tests: keeps only the bits of mask of every key's hash, so that keys can be made to
 * collide (mask 0: all of them share one hash and one slot). */
void server__ref_cache_hash_mask(server_ref_cache_t *rc, uint64_t mask);
/* This worker's cache, or NULL when it has none. */
server_ref_cache_t *server__call_ref_cache(const server_call_t *c);

/* ------------------------------------------------------------------------------------------ */
/* Feast encoding of a read: GetOnlineFeaturesResponse, written by hand.                       */

typedef struct server_feast_column {
    const char *name;
    size_t name_len;
    const server_cell_t *cells; /* [n_rows] */
} server_feast_column_t;

typedef struct server_feast_response {
    size_t n_rows;
    size_t n_cols;
    const server_feast_column_t *cols; /* join keys first, then features */
    size_t n_views;                    /* feature_view_metadata; 0 = none */
    const server_feast_view_md_t *views;
    bool status;
    /* Optional: the metadata.feature_names entries of the last n_names_pre columns, already
     * encoded by server__feast_encode_names() (those columns' names are then not read). */
    const uint8_t *names_pre;
    size_t names_pre_len;
    size_t n_names_pre;
} server_feast_response_t;

/* What the measuring pass found about one column (one FeatureVector), for the writing pass. */
typedef struct server_feast_vec {
    size_t size;    /* the FeatureVector's body */
    size_t ts_len;  /* its event_timestamps entries */
    bool ts_repeat; /* the same timestamps as the previous column, row by row */
} server_feast_vec_t;

/*
 * Two passes: server__feast_size() measures (filling vecs[n_cols]) and server__feast_write()
 * writes exactly that many bytes into out, given the same r and vecs. Cell values are copied as
 * they are, never decoded.
 * Returns: the encoded size / the number of bytes written.
 */
size_t server__feast_size(const server_feast_response_t *r, server_feast_vec_t *vecs);
size_t server__feast_write(const server_feast_response_t *r, const server_feast_vec_t *vecs,
                           uint8_t *out);

/*
 * Encodes n column names as metadata.feature_names entries, for server_feast_response_t.names_pre
 * (a response's feature names depend on its feature list alone, so they can be encoded once per
 * list and cached). Returns: the bytes (in the arena; *len of them), or NULL when out of memory.
 */
uint8_t *server__feast_encode_names(server_arena_t *a, const char *const *names, const size_t *lens,
                                    size_t n, size_t *len);

/* ------------------------------------------------------------------------------------------ */
/* Predict: TensorFlow tensors (predict_tensor.c) and upstream model servers (upstream.c).      */

/* Returns: the TensorFlow DataType of a feature of type t (of its element for lists), or
 * TENSORFLOW__DATA_TYPE__DT_INVALID for a type with no tensor form (NULL, INVALID). */
Tensorflow__DataType server__tensor_dtype(catalog_dtype_t t);

/*
 * Reads an entity input tensor as join-key values of type want (INT64, INT32, STRING or BYTES).
 * Accepted: shape [batch] or [batch, 1]; DT_INT64 or DT_INT32 for integer keys, DT_STRING for
 * string and bytes keys; typed values (packed or not) or little-endian tensor_content for the
 * integer types. Exactly batch values are required.
 * Returns: 0, *vals (batch values in the arena, strings borrowed from t) and *batch; -EINVAL with
 *          the reason in why; -ENOMEM.
 */
int server__tensor_to_keys(const Tensorflow__TensorProto *t, catalog_dtype_t want,
                           server_arena_t *a, catalog_value_t **vals, size_t *batch, char *why,
                           size_t why_cap);

/*
 * Builds the tensor of feature f over n_rows entity rows from its cells: shape [n_rows] for
 * scalars, [n_rows, width] for lists, every row's list the same width. A row without a value
 * (NOT_FOUND, NULL_VALUE, OUTSIDE_MAX_AGE or a null) takes f's default, else zeros when
 * zero_missing, else fails. Strings point into the cells and the catalog: pack the tensor before
 * store_read_end() and while the catalog is pinned.
 * Returns: 0 and *out; -ENOENT (a row with no value and no default), -EINVAL (lists of different
 *          lengths across the batch) and -EIO (a stored value that does not decode as f's type),
 *          each with *bad_row and the reason in why; -ENOMEM.
 */
int server__tensor_from_cells(const catalog_feature_t *f, const server_cell_t *cells, size_t n_rows,
                              bool zero_missing, server_arena_t *a, Tensorflow__TensorProto *out,
                              size_t *bad_row, char *why, size_t why_cap);

/*
 * Predict's response without an upstream, written by hand (predict_encode.c): the outputs map in
 * the order given, then model_spec. The bytes are those protobuf-c packs for the same
 * PredictResponse (tests/server/test_predict_encode.c holds them to it).
 */
typedef struct server_predict_response {
    size_t n_outputs;
    const char *const *names;               /* [n_outputs] map keys */
    const size_t *name_lens;                /* [n_outputs] */
    const Tensorflow__TensorProto *tensors; /* [n_outputs] map values */
    const char *model_name;                 /* model_spec.name; "" leaves it out */
    bool has_version;                       /* model_spec.version is set ... */
    int64_t version;                        /* ... to this value */
    const char *signature_name;             /* model_spec.signature_name; "" leaves it out */
} server_predict_response_t;

/* What the measuring pass found about one tensor, for the writing pass. */
typedef struct server_predict_sizes {
    size_t tensor; /* the TensorProto's body */
    size_t shape;  /* its tensor_shape's body */
    size_t ints;   /* the packed int_val, int64_val and half_val payloads */
    size_t int64s;
    size_t half;
} server_predict_sizes_t;

/*
 * Two passes: server__predict_size() measures (filling sizes[n_outputs]) and
 * server__predict_write() writes exactly that many bytes into out, given the same r and sizes.
 * Returns: the encoded size / the number of bytes written.
 */
size_t server__predict_size(const server_predict_response_t *r, server_predict_sizes_t *sizes);
size_t server__predict_write(const server_predict_response_t *r,
                             const server_predict_sizes_t *sizes, uint8_t *out);

/*
 * Predict's outputs of one feature service (predict_outputs.c): one name per feature, the
 * feature's name or, where names collide, `view__feature`, then `view@vN__feature`; and an index
 * over the names for output_filter. They depend on the service alone.
 */
typedef struct server_predict_outputs {
    const catalog_service_t *service;
    size_t n;                 /* svc->n_features */
    const char *const *names; /* [n], NUL-terminated */
    const size_t *name_lens;  /* [n] */
    server_name_index_t set;  /* over names */
    size_t offline;           /* the first feature whose view is not online, or n */
} server_predict_outputs_t;

/* Computes svc's outputs into *out, everything in the arena. Returns: 0, -ENOMEM. */
int server__predict_outputs_build(server_arena_t *a, const catalog_service_t *svc,
                                  server_predict_outputs_t *out);
/* Returns: the index of the output called name (the first, should two share it), or -1. */
long server__predict_outputs_find(const server_predict_outputs_t *o, const char *name);

/*
 * A cache of outputs for one thread, keyed by the catalog and the service. Holds a reference to
 * the catalog of its entries; meeting another catalog empties it. So after a reload a worker
 * keeps the old catalog alive until its next Predict (or until freed), as the feature-list cache
 * does until its next GetOnlineFeatures: memory only, nothing waits for it. Thread safety: none;
 * one cache per read worker.
 */
typedef struct server_predict_cache server_predict_cache_t;
/* Returns: 0, -ENOMEM. Ownership: *out is the caller's (server__predict_cache_free()). */
int server__predict_cache_new(server_predict_cache_t **out);
/* Frees the entries and drops the catalog reference. Accepts NULL. */
void server__predict_cache_free(server_predict_cache_t *pc);
/*
 * The outputs of svc (a service of cat), from pc or built (then remembered in pc, if it can
 * grow). pc may be NULL (no cache: built every time). a holds what is built for this call.
 * Returns: 0 and *out, borrowed until the next call on pc or the reset of a; -ENOMEM.
 */
int server__predict_outputs_get(server_predict_cache_t *pc, server_arena_t *a, const catalog_t *cat,
                                const catalog_service_t *svc, const server_predict_outputs_t **out);
/* This worker's cache, or NULL when it has none. */
server_predict_cache_t *server__call_predict_cache(const server_call_t *c);

/* Upstreams: one long-lived client channel per target, shared by every worker (channels are
 * thread-safe); created on first use, destroyed with the server after every call has ended. */
typedef struct server_upstreams server_upstreams_t;

/* Returns: 0 and *out, -ENOMEM. Requests and responses over max_bytes (the server's
 * max_response_bytes: the upstream's answer becomes ours) are refused by gRPC. */
int server__upstreams_new(size_t max_bytes, server_upstreams_t **out);
/* Destroys every channel. No call may be in flight. Accepts NULL. */
void server__upstreams_free(server_upstreams_t *u);
/* The server's upstreams, for handlers. */
server_upstreams_t *server__call_upstreams(const server_call_t *c);

/* One Predict in flight to an upstream; lives in the server call's arena. */
typedef struct server_upstream_call {
    grpc_call *call;
    grpc_byte_buffer *send;
    grpc_byte_buffer *recv;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
    const char *target; /* copied into the arena, for messages after the catalog is unpinned */
    const char *model;
    uint32_t timeout_ms;
    bool timeout_first; /* the binding's timeout_ms ends before the caller's deadline */
} server_upstream_call_t;

/*
 * Sends request (a packed PredictRequest; the reference is taken) to up->target as a child of
 * the server call c: its deadline is the smaller of c's and up->timeout_ms, and cancelling c
 * cancels it. The completion arrives on c's worker queue tagged c; pass it to
 * server__upstream_finish() from c->resume.
 * Returns: 0 (a completion will come); -ENOMEM or -EIO with the call's message set (nothing
 *          in flight).
 */
int server__upstream_start(server_call_t *c, const catalog_upstream_t *up, grpc_slice request,
                           server_upstream_call_t *uc);
/*
 * Ends uc after its completion and releases what it holds.
 * Returns: 0 and *resp (the upstream's response bytes, as sent); -EREMOTEIO when the upstream
 *          answered with an error, with c->relayed and c->relay_status set to its status
 *          (UNAVAILABLE when it could not be reached, DEADLINE_EXCEEDED when it was too slow) and
 *          a message naming the upstream; -EPROTO when it answered OK without a readable
 *          response; -EIO when the batch itself failed. Every error sets the call's message.
 */
int server__upstream_finish(server_call_t *c, server_upstream_call_t *uc, bool ok,
                            grpc_slice *resp);

#endif /* SERVER_SERVER_INT_H */
