/* server/server_int.h - shared inside server/: call slots, methods, watches, upstreams, status. */
#ifndef SERVER_SERVER_INT_H
#define SERVER_SERVER_INT_H

#include <grpc/grpc.h>
#include <grpc/status.h>
#include <pthread.h>
#include <stdatomic.h>

#include "codec/codec.h"
#include "core/core.h"
#include "server/server.h"
#include "upstream/upstream.h"

/* ------------------------------------------------------------------------------------------ */
/* Status mapping: the one place where errno meets grpc_status_code.                            */

/* Returns: the gRPC status for a negative errno (0 -> OK). */
grpc_status_code server__status_from_errno(int err);

/* ------------------------------------------------------------------------------------------ */
/* Calls                                                                                       */

typedef struct server_worker server_worker_t;
typedef struct server_call server_call_t;

/*
 * A method: decodes req (len bytes) with codec/, runs the core, encodes the response into a
 * slice (server__response_slice()) the caller sends and releases. The core request (c->ctx) is
 * begun before and ended after the method.
 * Returns: 0, or a negative errno with the message set (core_fail(&c->ctx, ...)), or
 *          SERVER_PENDING / SERVER_DETACHED after handing the call to an asynchronous operation
 *          (see below).
 */
typedef int (*server_unary_fn)(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);

/* The control thread gives malloc's free memory back to the kernel when anonymous RSS is over
 * 64 MiB above the lowest it has seen (base_heap_trim_tick(), every 2 s at most): a burst of
 * calls leaves the process at its peak otherwise. */
#define SERVER_HEAP_TRIM_EVERY_US 2000000LL
#define SERVER_HEAP_TRIM_GROWTH ((size_t)64 << 20)

/*
 * Asynchronous completion (Predict passthrough). A method that must wait on another server
 * starts a client call whose completion is tagged with the server call and lands on the same
 * worker's queue, sets c->resume, and returns SERVER_PENDING. The worker goes back to its queue
 * at once, so a slow upstream holds a call slot, never a thread: reads keep being served. When
 * the completion arrives the worker calls c->resume(c, ok, &resp), whose return value is then
 * treated like a method's. The catalog is not pinned while pending, so whatever resume needs
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
 * Detached completion (writes). A method that hands the call to an operation completing on
 * another thread (the store's writer, after the group commit's fsync) first calls
 * server__call_detach(c), then starts the operation, and returns SERVER_DETACHED. From then on
 * the call belongs to the operation: the worker does not touch it again (but to end the core
 * request, whose catalog pin is the worker's), and the operation ends it with
 * server__call_complete(c, rc, resp) from whatever thread it runs on (rc and resp as a method's
 * result). If the operation could not be started, server__call_attach(c) takes the call back and
 * the method returns normally. The catalog is not pinned once the method has returned: what the
 * completion needs must live in the arena. Shutdown waits for detached calls as for pending
 * ones. Chosen over a worker sleeping per write: a write holds a call slot, never a thread, so
 * every write in flight can join the same group commit.
 */
#define SERVER_DETACHED 2
void server__call_detach(server_call_t *c);

/*
 * Server streaming. A streaming method sends each message with server__stream_send(), which
 * starts the send (with the initial metadata the first time) and returns SERVER_PENDING for the
 * method to return: the call stays pending, holding its slot, and once the message is sent (ok)
 * or the call failed (!ok: the client went away, or took no message for --grpc-max-send-ms)
 * the worker calls next(c, ok, &resp). next sends the following message the same way and
 * returns SERVER_PENDING, or ends the stream: 0 after setting c->stream_end (the status
 * alone), or a negative errno with the message set. Between messages the catalog is not
 * pinned: next pins it with server__call_begin_ctx() and ends it with core_ctx_end() before it
 * returns. Returns: SERVER_PENDING; -EOPNOTSUPP for an in-process call, -EIO, with the
 * message set. Ownership: msg is taken.
 */
int server__stream_send(server_call_t *c, grpc_slice msg, server_resume_fn next);
/* Begins c->ctx on the call's worker with arena (a streaming method's next message). */
void server__call_begin_ctx(server_call_t *c, base_arena_t *arena);
void server__call_attach(server_call_t *c);
/* Ends a detached call: sends the reply (resp on rc == 0; the slice is released here). */
void server__call_complete(server_call_t *c, int rc, grpc_slice resp);
/* server__call_complete() of an in-process call (local.c): hands the result to the waiting
 * server_local_call(). */
void server__local_complete(server_call_t *c, int rc, grpc_slice resp);

typedef enum server_pool {
    SERVER_POOL_READ = 0,  /* read workers: reads, catalog, health check, serving info */
    SERVER_POOL_WRITE = 1, /* write workers: decode, validate, encode, queue for the writer */
} server_pool_t;

/* Per method: what grpc_server_* families report. Unary methods: one per worker, summed on a
 * scrape; the control thread's streams (Watch, reflection): one each. */
#define METRIC_CODES 17
#define METRIC_BUCKETS 12 /* .0005 .001 .0025 .005 .01 .025 .05 .1 .25 .5 1 +Inf seconds */
typedef struct method_stats {
    _Atomic uint64_t started;
    _Atomic uint64_t handled[METRIC_CODES];
    _Atomic uint64_t buckets[METRIC_BUCKETS];
    _Atomic uint64_t sum_us;
} method_stats_t;

/* A call of m ended with code after us microseconds (a stream: its whole life). */
void server__count_handled(method_stats_t *m, grpc_status_code code, int64_t us);

/* The streams the control thread serves (rpc_health_watch.c, rpc_reflection.c), counted in
 * the server's stream_stats[] in this order. */
enum {
    SERVER_STREAM_WATCH,
    SERVER_STREAM_REFLECTION_V1,
    SERVER_STREAM_REFLECTION_V1ALPHA,
    SERVER_N_STREAMS
};

typedef struct server_method {
    const char *path;
    const char *name; /* for logs: "GetOnlineFeatures" */
    server_unary_fn fn;
    server_pool_t pool;
    unsigned slots;     /* calls each worker keeps requested */
    size_t arena_first; /* the first chunk of each slot's arena */
    unsigned scope;     /* CORE_SCOPE_* a caller needs (with --tokens-file); 0: open */
    bool streams;       /* server streaming (its metrics say grpc_type="server_stream") */
} server_method_t;

/* Every method fstore serves, and how many there are. */
extern const server_method_t server__methods[];
extern const size_t server__n_methods;
/* Returns: the method called path (its gRPC path), or NULL. */
const server_method_t *server__method_find(const char *path);

struct server_call {
    server_worker_t *worker; /* NULL for an in-process call (local.c) */
    const server_method_t *method;
    void *registered; /* gRPC's handle of the method */
    grpc_call *call;  /* NULL for an in-process call */
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *response;
    grpc_slice details;
    int cancelled;
    int state;
    bool close_started; /* RECV_CLOSE_ON_SERVER was started on its own (pending calls) */
    bool close_pending; /* ... and has not completed yet */
    base_arena_t arena;
    core_ctx_t ctx;          /* the core request: catalog pin, arena, limits, message */
    server_resume_fn resume; /* set by a method returning SERVER_PENDING */
    void *resume_arg;        /* the method's state for resume, in the arena */
    bool relayed;            /* the status comes from another server, not from an errno */
    bool streamed;           /* a server-streaming method sent a message (and the metadata) */
    bool stream_end;         /* ... and its final reply carries no message, only the status */
    grpc_status_code relay_status;
    int64_t t0_us;              /* when the method started, for the request log */
    _Atomic int64_t send_t0_us; /* when its reply batch started (0: none in flight): a reply
                                   the client does not take is cancelled after
                                   --grpc-max-send-ms (see worker_main()) */
    size_t req_len;             /* request bytes, for the request log */
    /* The encoding of its replies (server_options_t.no_response_compression): the request's,
     * or GRPC_COMPRESS_NONE; and the grpc-encoding header that says so, kept until the batch
     * that sends it completes. */
    grpc_compression_algorithm reply_alg;
    grpc_metadata reply_md;
    struct server_local *local; /* the in-process caller, for an in-process call */
};

/* The server's upstream channels, for Predict's passthrough (NULL for an in-process call). */
upstream_pool_t *server__call_upstreams(const server_call_t *c);
/* The worker's completion queue, for client calls whose completion resumes c. */
grpc_completion_queue *server__call_cq(const server_call_t *c);

/* The gRPC listener's TLS (tls.c): o->tls_cert and o->tls_key (and o->tls_client_ca) loaded
 * now and again whenever one of the files changes (checked at each new connection).
 * Returns: 0, *tls (free it with server__tls_free() after the server) and *out (release it once
 *          given to grpc_server_add_http2_port()); -EINVAL (a file unreadable or not a valid
 *          pair, logged as tls_failed); -ENOMEM. */
typedef struct server_tls server_tls_t;
int server__tls_credentials(const server_options_t *o, server_tls_t **tls,
                            grpc_server_credentials **out);
void server__tls_free(server_tls_t *t);

/* Formats the call's error message and returns err: `return server__fail(c, -EINVAL, ...)`. */
#define server__fail(c, ...) core_fail(&(c)->ctx, __VA_ARGS__)

/*
 * Allocates the slice for n bytes that c will send (what names them in the message: "response",
 * "upstream request"), first checking n against --max-response-bytes.
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

/* Health of a named service (grpc.health.v1 numbers: 1 SERVING, 2 NOT_SERVING, 3
 * SERVICE_UNKNOWN for names we do not serve). */
int server__health_status(core_t *core, const char *service);

/* The methods, one file each (server/rpc_<name>.c): decode -> core -> encode. */
int server__rpc_get_online_features(server_call_t *c, const uint8_t *req, size_t len,
                                    grpc_slice *resp);
int server__rpc_get_feast_serving_info(server_call_t *c, const uint8_t *req, size_t len,
                                       grpc_slice *resp);
int server__rpc_write_features(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_delete_entities(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_get_catalog(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_get_replication_status(server_call_t *c, const uint8_t *req, size_t len,
                                       grpc_slice *resp);
int server__rpc_begin_snapshot(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_read_snapshot(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_end_snapshot(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_collect_garbage(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_health_check(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_predict(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_load_batch(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp);
int server__rpc_get_historical_features(server_call_t *c, const uint8_t *req, size_t len,
                                        grpc_slice *resp);

/*
 * The tail shared by WriteFeatures and DeleteEntities: the view, its columns converted with its
 * limits, and the batch handed to the store's writer. reply builds the response from the store's
 * result (on the writer thread; the catalog is not pinned by then).
 * Returns: SERVER_DETACHED (the call now belongs to the writer); 0 and *resp (no row to write);
 *          a negative errno with the message set.
 */
typedef int (*server_write_reply_fn)(server_call_t *c, const core_write_result_t *res,
                                     grpc_slice *resp);
int server__write(server_call_t *c, const char *view_ref, const char *what, size_t n,
                  const char *const *keys, Feast__Types__RepeatedValue *const *vals,
                  const int64_t *event_ts_us, size_t n_ts, store_op_t op,
                  server_write_reply_fn reply, grpc_slice *resp);

/* ------------------------------------------------------------------------------------------ */
/* Control-thread completion-queue tags (health watches, shutdown).                            */

typedef struct server_tag server_tag_t;
struct server_tag {
    void (*fn)(server_tag_t *t, bool ok);
};

typedef struct server_watches server_watches_t;

/* The bounds on a control-thread stream kind (Health/Watch, reflection): streams open at once
 * (0: the kind's default; more are refused RESOURCE_EXHAUSTED at once), an answer not taken
 * within max_send_ms (0: no bound) ends its stream and is counted in *not_taken, a wait for
 * the client's next request over idle_s (0: no bound; reflection only) ends it too. */
typedef struct server__stream_bounds {
    unsigned max_streams;
    unsigned max_send_ms;
    unsigned idle_s;
    _Atomic uint64_t *not_taken;
} server__stream_bounds_t;

/* Counts an answer of method not taken within max_send_ms in *b->not_taken and logs
 * reply_not_taken at most once a minute (*logged_us: the last line, the caller's). Control
 * thread only. */
void server__stream_not_taken(const server__stream_bounds_t *b, const char *method,
                              int64_t *logged_us, int64_t now_us);

/* Health Watch (server streaming), driven by the control thread only (rpc_health_watch.c),
 * within b. */
int server__watch_init(core_t *core, grpc_server *gs, grpc_completion_queue *cq,
                       method_stats_t *stats, const server__stream_bounds_t *b,
                       server_watches_t **out);
/* Requests the first Watch call; call after grpc_server_start(). */
void server__watch_start(server_watches_t *w);
/* Sends the new status to every watcher whose last message is out of date, and ends those
 * whose update has waited over max_send_ms. Call often (the control loop does, every 100 ms). */
void server__watch_notify(server_watches_t *w);
/* Ends every stream (after a last NOT_SERVING) and stops requesting new ones. */
void server__watch_drain(server_watches_t *w);
/* Frees the bookkeeping; every call must have completed. */
void server__watch_free(server_watches_t *w);

/* gRPC server reflection (rpc_reflection.c): v1 and v1alpha streams on the control thread. */
typedef struct server_reflection server_reflection_t;
/* stats: [2], v1's and v1alpha's. */
int server__reflection_init(grpc_server *gs, grpc_completion_queue *cq, size_t max_request,
                            method_stats_t *stats, const server__stream_bounds_t *b,
                            server_reflection_t **out);
void server__reflection_start(server_reflection_t *rs);
/* Ends the streams held past their bounds; call often (the control loop does after every event
 * and at least every 100 ms; it sweeps at most every 100 ms). */
void server__reflection_tick(server_reflection_t *rs);
void server__reflection_drain(server_reflection_t *rs);
void server__reflection_free(server_reflection_t *rs);

/* Calls to methods fstore does not serve: answered UNIMPLEMENTED by the control thread
 * (rpc_unimplemented.c). Init before grpc_server_start(), start after it, free after the
 * control queue has been drained. */
typedef struct server_unknown server_unknown_t;
int server__unknown_init(grpc_server *gs, grpc_completion_queue *cq, server_unknown_t **out);
void server__unknown_start(server_unknown_t *u);
void server__unknown_free(server_unknown_t *u);

#endif /* SERVER_SERVER_INT_H */
