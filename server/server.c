/* server/server.c - the gRPC runtime: workers and their queues, call slots, drain, shutdown. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/server_int.h"

#ifndef FSTORE_VERSION
#define FSTORE_VERSION "0.0.0"
#endif

/*
 * Threads and queues. Every worker owns a completion queue and keeps a few calls of each of its
 * methods requested on it, with the request message read up front (registered methods with
 * GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER), so a unary call is one event in and one batch out
 * on the same thread: no hand-off, no lock. Slots are plentiful on purpose: a call gRPC has
 * received but not yet matched to a requested slot is cancelled by grpc_server_shutdown_and_notify,
 * while a matched one is ours and completes during the drain. Read workers each own a store reader.
 * Write workers are separate so that reads never queue behind decoding and validating writes.
 * A write does not hold its worker while it waits for the group commit: the worker queues the
 * encoded rows and the store's writer thread sends the reply after the fsync (SERVER_DETACHED in
 * server_int.h), so every write in flight, up to the write slots, can share one fsync.
 * Only read workers' queues poll the sockets (see queue_new()).
 *
 * Predict with an upstream model server does not hold its worker while the upstream thinks: the
 * handler starts a client call tagged with the server call on the worker's own queue and returns
 * SERVER_PENDING, and the completion resumes the call on that worker (see server_int.h). Predict
 * has its own call slots, so passthroughs in flight never take a GetOnlineFeatures slot.
 *
 * The thread in server_run() is the control thread: it owns health watches, catalog reloads,
 * retired-catalog collection and shutdown, all driven by its own queue with a short timeout so
 * signal flags are noticed promptly.
 */

enum call_state {
    CALL_IDLE = 0,
    CALL_REQUESTED = 1, /* waiting for gRPC to hand us a call */
    CALL_SENDING = 2,   /* the reply batch is in flight */
    CALL_PENDING = 3,   /* the handler waits on a client call (Predict passthrough) */
    CALL_CLOSING = 4,   /* the reply is sent; waiting for the early RECV_CLOSE_ON_SERVER */
};

/*
 * Worker queue tags are calls. The RECV_CLOSE_ON_SERVER a pending call starts early completes on
 * its own, so it is tagged with the call's address plus one (calls are aligned, the low bit is
 * free) and one queue event still names one call.
 */
#define CLOSE_TAG(c) ((void *)((uintptr_t)(c) | 1u))
#define IS_CLOSE_TAG(t) ((uintptr_t)(t) % 2 != 0)
#define CALL_OF_TAG(t) ((server_call_t *)((uintptr_t)(t) & ~(uintptr_t)1u))

struct server_worker {
    server_t *srv;
    unsigned index;
    server_pool_t pool;
    pthread_t thread;
    bool started;
    grpc_completion_queue *cq;
    core_worker_t *core; /* its catalog pin; read workers: its store reader and caches */
    server_call_t *calls;
    size_t n_calls;
    int64_t stuck_logged_us; /* the last reply_not_taken log line */
    method_stats_t *stats;   /* [server__n_methods] */
};

/* Read methods get a larger first arena chunk: reads of many rows need room. */
#define ARENA_BIG (64 * 1024)
#define ARENA_SMALL (16 * 1024)

const server_method_t server__methods[] = {
    {"/feast.serving.ServingService/GetOnlineFeatures", "GetOnlineFeatures",
     server__rpc_get_online_features, SERVER_POOL_READ, 32, ARENA_BIG, CORE_SCOPE_READ},
    {"/fstore.v1.OnlineFeatureService/GetOnlineFeatures", "GetOnlineFeatures",
     server__rpc_get_online_features, SERVER_POOL_READ, 32, ARENA_BIG, CORE_SCOPE_READ},
    {"/feast.serving.ServingService/GetFeastServingInfo", "GetFeastServingInfo",
     server__rpc_get_feast_serving_info, SERVER_POOL_READ, 1, ARENA_SMALL, CORE_SCOPE_READ},
    /* Writes wait for the group commit in their slot, not in a thread: the slots bound how
     * many share one fsync. */
    {"/fstore.v1.OnlineFeatureService/WriteFeatures", "WriteFeatures", server__rpc_write_features,
     SERVER_POOL_WRITE, 16, ARENA_SMALL, CORE_SCOPE_WRITE},
    {"/fstore.v1.OnlineFeatureService/DeleteEntities", "DeleteEntities",
     server__rpc_delete_entities, SERVER_POOL_WRITE, 2, ARENA_SMALL, CORE_SCOPE_WRITE},
    {"/fstore.v1.OnlineFeatureService/GetCatalog", "GetCatalog", server__rpc_get_catalog,
     SERVER_POOL_READ, 1, ARENA_SMALL, CORE_SCOPE_ADMIN},
    {"/fstore.v1.OnlineFeatureService/GetReplicationStatus", "GetReplicationStatus",
     server__rpc_get_replication_status, SERVER_POOL_READ, 1, ARENA_SMALL, CORE_SCOPE_ADMIN},
    /* A snapshot is made and read on a write worker: a copy of a large store takes seconds,
     * which reads must not wait behind. */
    {"/fstore.v1.OnlineFeatureService/BeginSnapshot", "BeginSnapshot", server__rpc_begin_snapshot,
     SERVER_POOL_WRITE, 1, ARENA_SMALL, CORE_SCOPE_ADMIN},
    {"/fstore.v1.OnlineFeatureService/ReadSnapshot", "ReadSnapshot", server__rpc_read_snapshot,
     SERVER_POOL_WRITE, 1, ARENA_SMALL, CORE_SCOPE_ADMIN},
    {"/fstore.v1.OnlineFeatureService/EndSnapshot", "EndSnapshot", server__rpc_end_snapshot,
     SERVER_POOL_WRITE, 1, ARENA_SMALL, CORE_SCOPE_ADMIN},
    {"/fstore.v1.OnlineFeatureService/CollectGarbage", "CollectGarbage",
     server__rpc_collect_garbage, SERVER_POOL_WRITE, 1, ARENA_SMALL, CORE_SCOPE_ADMIN},
    {"/grpc.health.v1.Health/Check", "Health.Check", server__rpc_health_check, SERVER_POOL_READ, 2,
     ARENA_SMALL, 0},
    /* Offline serving runs on write workers: a page or a stream's message takes milliseconds,
     * which online reads must not wait behind. A stream holds its slot to its end. */
    {"/fstore.v1.OnlineFeatureService/LoadBatch", "LoadBatch", server__rpc_load_batch,
     SERVER_POOL_WRITE, 1, ARENA_BIG, CORE_SCOPE_READ},
    {"/fstore.v1.OnlineFeatureService/GetHistoricalFeatures", "GetHistoricalFeatures",
     server__rpc_get_historical_features, SERVER_POOL_WRITE, 1, ARENA_BIG, CORE_SCOPE_READ, true},
    /* A passthrough holds its slot for the upstream's whole round trip. */
    {"/tensorflow.serving.PredictionService/Predict", "Predict", server__rpc_predict,
     SERVER_POOL_READ, 32, ARENA_BIG, CORE_SCOPE_READ},
};
#define N_METHODS (sizeof server__methods / sizeof server__methods[0])
const size_t server__n_methods = N_METHODS;

const server_method_t *server__method_find(const char *path)
{
    for (size_t m = 0; m < N_METHODS; m++) {
        if (strcmp(server__methods[m].path, path) == 0)
            return &server__methods[m];
    }
    return NULL;
}

/* Services a health check may name; everything else is SERVICE_UNKNOWN. */
static const char *const health_services[] = {
    "",
    "feast.serving.ServingService",
    "fstore.v1.OnlineFeatureService",
    "grpc.health.v1.Health",
    "tensorflow.serving.PredictionService",
};

/* grpc.health.v1's number for a service we do not serve. */
#define HEALTH_SERVICE_UNKNOWN 3

#define STALLED_PEERS 64
#define STALLED_FOR_US (30 * 1000000LL)

struct server {
    char *listen;
    server_options_t opts;
    core_t *core; /* borrowed */
    grpc_server *grpc;
    server_tls_t *tls; /* --tls-cert: the certificate fetcher's state (freed after grpc) */
    bool grpc_started;
    bool grpc_shutdown_done;
    grpc_completion_queue *ctl_cq;
    int port;
    unsigned n_workers; /* read + write */
    server_worker_t *workers;
    void *handles[N_METHODS];
    server_watches_t *watches;
    method_stats_t stream_stats[SERVER_N_STREAMS]; /* the control thread's streams */
    server_reflection_t *reflection;
    server_unknown_t *unknown;
    upstream_pool_t *upstreams;
    server_tag_t shutdown_tag;
    _Atomic int stop_requested;
    _Atomic int reload_requested;
    _Atomic bool draining;
    _Atomic int pending_calls;      /* calls between SERVER_PENDING and their reply's start_batch */
    _Atomic uint64_t stuck_replies; /* replies (and Health/Watch updates) cancelled after
                                       --grpc-max-send-ms */
    /* Connections that left a reply untaken: their next calls are refused at once, with a
     * status alone (which needs no flow-control window), so their queued calls drain in
     * microseconds instead of each holding a slot for --grpc-max-send-ms. */
    pthread_mutex_t stalled_mu;
    struct {
        char peer[96];
        int64_t until_us;
    } stalled[STALLED_PEERS];
    _Atomic int n_stalled;
    bool grpc_inited;
};

void server_options_init(server_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->listen = SERVER_DEFAULT_LISTEN;
    o->workers = 0;
    o->write_workers = SERVER_DEFAULT_WRITE_WORKERS;
    o->shutdown_grace_ms = SERVER_DEFAULT_SHUTDOWN_GRACE_MS;
    o->max_streams = SERVER_DEFAULT_MAX_STREAMS;
    o->max_memory = SERVER_DEFAULT_MAX_MEMORY;
    o->max_send_ms = SERVER_DEFAULT_MAX_SEND_MS;
    o->max_watches = SERVER_DEFAULT_MAX_WATCHES;
    o->max_reflection_streams = SERVER_DEFAULT_MAX_REFLECTION_STREAMS;
    o->reflection_idle_s = SERVER_DEFAULT_REFLECTION_IDLE_S;
    o->max_age_grace_s = SERVER_DEFAULT_MAX_AGE_GRACE_S;
    o->handshake_timeout_ms = SERVER_DEFAULT_HANDSHAKE_TIMEOUT_MS;
}

/* The read workers a server with these options runs (0 = one per online CPU). */
static unsigned read_workers(const server_options_t *o)
{
    if (o->workers != 0)
        return o->workers;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? (unsigned)cpus : 1;
}

size_t server_worker_count(const server_options_t *o)
{
    return (size_t)read_workers(o) + (o->write_workers == 0 ? 1 : o->write_workers);
}

/* ------------------------------------------------------------------------------------------ */
/* Call helpers for methods                                                                    */

grpc_completion_queue *server__call_cq(const server_call_t *c)
{
    return c->worker != NULL ? c->worker->cq : NULL;
}

upstream_pool_t *server__call_upstreams(const server_call_t *c)
{
    return c->worker != NULL ? c->worker->srv->upstreams : NULL;
}

int server__health_status(core_t *core, const char *service)
{
    /* "liveness": the process serves its transport, whether or not its replica is ready (a
     * Kubernetes liveness probe must not restart a node that is catching up). */
    if (strcmp(service, SERVER_HEALTH_LIVENESS) == 0)
        return (int)core_live(core);
    for (size_t i = 0; i < sizeof health_services / sizeof health_services[0]; i++) {
        if (strcmp(service, health_services[i]) == 0)
            return (int)core_health(core);
    }
    return HEALTH_SERVICE_UNKNOWN;
}

/* ------------------------------------------------------------------------------------------ */
/* Unary calls on workers                                                                      */

static void call_request(server_call_t *c)
{
    server_t *s = c->worker->srv;
    c->state = CALL_REQUESTED;
    grpc_call_error e =
        grpc_server_request_registered_call(s->grpc, c->registered, &c->call, &c->deadline, &c->md,
                                            &c->payload, c->worker->cq, c->worker->cq, c);
    if (e != GRPC_CALL_OK) {
        c->state = CALL_IDLE;
        base_log(BASE_LOG_ERROR, "request_call_failed", "{s:s, s:s}", "method", c->method->path,
                 "error", grpc_call_error_to_string(e));
    }
}

static void call_finish(server_call_t *c)
{
    if (c->response != NULL)
        grpc_byte_buffer_destroy(c->response);
    if (c->payload != NULL)
        grpc_byte_buffer_destroy(c->payload);
    c->response = NULL;
    c->payload = NULL;
    c->reply_alg = GRPC_COMPRESS_NONE;
    grpc_slice_unref(c->details);
    c->details = grpc_empty_slice();
    if (c->call != NULL)
        grpc_call_unref(c->call);
    c->call = NULL;
    grpc_metadata_array_destroy(&c->md);
    grpc_metadata_array_init(&c->md);
    base_arena_reset(&c->arena);
    c->resume = NULL;
    c->resume_arg = NULL;
    c->relayed = false;
    c->close_started = false;
    c->close_pending = false;
    c->streamed = false;
    c->stream_end = false;
    atomic_store_explicit(&c->send_t0_us, 0, memory_order_relaxed);
    c->state = CALL_IDLE;
}

/* The request bytes, contiguous: the payload's own slice when it is one plain slice (the usual
 * case), else a copy in the arena; a compressed message (grpc-encoding gzip or deflate, the
 * frame's compressed flag set) decompressed into the arena, at most max bytes of it (gRPC's
 * reader hands out the compressed bytes as they came). Returns: 0; -EMSGSIZE (decompressed
 * over max), -EINVAL (corrupt), -EOPNOTSUPP (another encoding), -ENOMEM with the message set. */
static int call_payload(server_call_t *c, size_t max, const uint8_t **data, size_t *len)
{
    grpc_byte_buffer *bb = c->payload;
    grpc_compression_algorithm alg =
        bb->type == GRPC_BB_RAW ? bb->data.raw.compression : GRPC_COMPRESS_NONE;
    if (alg != GRPC_COMPRESS_NONE && alg != GRPC_COMPRESS_GZIP && alg != GRPC_COMPRESS_DEFLATE)
        return server__fail(c, -EOPNOTSUPP,
                            "request compressed with an encoding this server does not take "
                            "(it takes gzip and deflate)");
    if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
        bb->data.raw.slice_buffer.count == 1) {
        /* The slice where it lives, not a copy: a short one (up to 23 bytes) keeps its bytes
         * inside the grpc_slice itself, and a copy's would go with this frame. */
        const grpc_slice *s = &bb->data.raw.slice_buffer.slices[0];
        *data = GRPC_SLICE_START_PTR(*s);
        *len = GRPC_SLICE_LENGTH(*s);
        return 0;
    }
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return server__fail(c, -EINVAL, "cannot read the request message");
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    size_t n = GRPC_SLICE_LENGTH(all);
    if (alg != GRPC_COMPRESS_NONE) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        int rc = base_inflate(GRPC_SLICE_START_PTR(all), n,
                              alg == GRPC_COMPRESS_GZIP ? BASE_INFLATE_GZIP : BASE_INFLATE_ZLIB,
                              max, &c->arena, &out, &out_len);
        grpc_slice_unref(all);
        if (rc == -EMSGSIZE)
            return server__fail(c, rc,
                                "request message of %zu bytes decompresses to over "
                                "--max-message-bytes %zu",
                                n, max);
        if (rc == -EINVAL)
            return server__fail(c, rc, "request message: corrupt %s stream",
                                alg == GRPC_COMPRESS_GZIP ? "gzip" : "deflate");
        if (rc < 0)
            return server__fail(c, rc, "out of memory");
        *data = out;
        *len = out_len;
        if (!c->worker->srv->opts.no_response_compression)
            c->reply_alg = alg; /* the client has compression on: so have its replies */
        return 0;
    }
    uint8_t *copy = base_arena_alloc(&c->arena, n);
    if (copy != NULL && n > 0)
        memcpy(copy, GRPC_SLICE_START_PTR(all), n);
    grpc_slice_unref(all);
    if (copy == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    *data = copy;
    *len = n;
    return 0;
}

void server__stream_not_taken(const server__stream_bounds_t *b, const char *method,
                              int64_t *logged_us, int64_t now_us)
{
    atomic_fetch_add_explicit(b->not_taken, 1, memory_order_relaxed);
    if (now_us - *logged_us >= 60 * 1000000LL) {
        *logged_us = now_us;
        base_log(BASE_LOG_WARN, "reply_not_taken", "{s:s, s:I, s:s}", "method", method,
                 "max_send_ms", (json_int_t)b->max_send_ms, "note", "at most one line a minute");
    }
}

void server__count_handled(method_stats_t *m, grpc_status_code code, int64_t us)
{
    static const int64_t bounds_us[METRIC_BUCKETS - 1] = {
        500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};
    atomic_fetch_add_explicit(&m->handled[(unsigned)code < METRIC_CODES ? code : 2], 1,
                              memory_order_relaxed);
    size_t b = 0;
    while (b < METRIC_BUCKETS - 1 && us > bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&m->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us, (uint64_t)(us > 0 ? us : 0), memory_order_relaxed);
}

static void count_handled(server_call_t *c, grpc_status_code code, int64_t us)
{
    server__count_handled(&c->worker->stats[c->method - server__methods], code, us);
}

/* The reply's initial metadata into op: with grpc-encoding when its messages may come
 * compressed (a message may still go plain: its frame says which). */
static void reply_metadata(server_call_t *c, grpc_op *op)
{
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    if (c->reply_alg == GRPC_COMPRESS_NONE)
        return;
    c->reply_md.key = grpc_slice_from_static_string("grpc-encoding");
    c->reply_md.value =
        grpc_slice_from_static_string(c->reply_alg == GRPC_COMPRESS_GZIP ? "gzip" : "deflate");
    op->data.send_initial_metadata.count = 1;
    op->data.send_initial_metadata.metadata = &c->reply_md;
}

/* A reply message as gRPC sends it (takes msg): compressed with the call's reply encoding when
 * it has one, the message is long enough to gain, and the result is smaller; else plain. */
static grpc_byte_buffer *reply_buffer(server_call_t *c, grpc_slice msg)
{
    size_t n = GRPC_SLICE_LENGTH(msg);
    if (c->reply_alg != GRPC_COMPRESS_NONE && n >= SERVER_COMPRESS_MIN_BYTES) {
        uint8_t *z = NULL;
        size_t z_len = 0;
        if (base_deflate(GRPC_SLICE_START_PTR(msg), n,
                         c->reply_alg == GRPC_COMPRESS_GZIP ? BASE_INFLATE_GZIP : BASE_INFLATE_ZLIB,
                         &z, &z_len) == 0) {
            if (z_len < n) {
                grpc_slice zs = grpc_slice_new(z, z_len, free);
                grpc_byte_buffer *bb = grpc_raw_compressed_byte_buffer_create(&zs, 1, c->reply_alg);
                grpc_slice_unref(zs);
                grpc_slice_unref(msg);
                return bb;
            }
            free(z);
        }
    }
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&msg, 1);
    grpc_slice_unref(msg);
    return bb;
}

static void call_reply(server_call_t *c, int rc, grpc_slice resp)
{
    server_t *s = c->worker->srv;
    /* A status relayed from an upstream is not an errno: it passes through untouched. */
    grpc_status_code code = c->relayed ? c->relay_status : server__status_from_errno(rc);
    size_t resp_len = 0;
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!c->streamed)
        reply_metadata(c, &ops[n++]);
    if (rc == 0 && !c->stream_end) {
        resp_len = GRPC_SLICE_LENGTH(resp);
        c->response = reply_buffer(c, resp);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->response;
    } else {
        grpc_slice_unref(resp);
    }
    const char *msg = c->ctx.msg;
    if (msg[0] != '\0')
        c->details = grpc_slice_from_copied_string(msg);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = msg[0] != '\0' ? &c->details : NULL;
    if (!c->close_started) {
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    }

    /* Read before the batch starts: a detached call's reply is sent from the store's writer
     * thread, and once the batch is started the worker may complete and reuse the slot. */
    const char *path = c->method->path;
    int64_t us = base_mono_us() - c->t0_us;
    count_handled(c, code, us);
    size_t req_len = c->req_len;
    c->state = CALL_SENDING;
    atomic_store_explicit(&c->send_t0_us, base_mono_us(), memory_order_relaxed);
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
    if (e != GRPC_CALL_OK) {
        atomic_store_explicit(&c->send_t0_us, 0, memory_order_relaxed);
        base_log(BASE_LOG_ERROR, "start_batch_failed", "{s:s, s:s}", "method", c->method->path,
                 "error", grpc_call_error_to_string(e));
        if (c->close_pending) {
            /* The early close op must complete before the slot is reused; cancelling ends it. */
            grpc_call_cancel(c->call, NULL);
            c->state = CALL_CLOSING;
            return;
        }
        call_finish(c);
        if (!atomic_load(&s->draining))
            call_request(c);
        return;
    }
    if (s->opts.log_requests) {
        /* Method, code, sizes and time only: bodies carry feature values, and so can error
         * messages ("max: 12.5 > 10"), which go to the client and never to the log. */
        base_log(code == GRPC_STATUS_OK ? BASE_LOG_INFO : BASE_LOG_WARN, "call",
                 "{s:s, s:i, s:I, s:I, s:I}", "method", path, "code", (int)code, "us",
                 (json_int_t)us, "request_bytes", (json_int_t)req_len, "response_bytes",
                 (json_int_t)resp_len);
    }
}

/* Starts RECV_CLOSE_ON_SERVER on its own, so a cancelled caller is noticed while pending. */
static void call_watch_close(server_call_t *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    grpc_call_error e = grpc_call_start_batch(c->call, &op, 1, CLOSE_TAG(c), NULL);
    if (e != GRPC_CALL_OK) {
        /* Not fatal: the reply batch then carries the op, as for every other call. */
        base_log(BASE_LOG_ERROR, "start_batch_failed", "{s:s, s:s}", "method", c->method->path,
                 "error", grpc_call_error_to_string(e));
        return;
    }
    c->close_started = true;
    c->close_pending = true;
}

/* The names of the client certificate gRPC verified against --tls-client-ca (its subject
 * alternative names; its subject CN when it has none, as RFC 6125 has it), copied into c's
 * arena: at most cap.
 * Returns: how many (0: no certificate), -ENOMEM. */
static int cert_names(server_call_t *c, const char **out, size_t cap)
{
    grpc_auth_context *ac = grpc_call_auth_context(c->call);
    if (ac == NULL)
        return 0;
    int n = 0;
    bool any_san = false;
    static const char *const props[] = {GRPC_X509_SAN_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME};
    for (size_t k = 0; k < 2 && n == 0 && !any_san; k++) { /* the CN only when there is no SAN */
        grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ac, props[k]);
        for (const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
             p != NULL && n >= 0 && (size_t)n < cap; p = grpc_auth_property_iterator_next(&it)) {
            any_san = any_san || k == 0;
            if (p->value_length == 0 || memchr(p->value, '\0', p->value_length) != NULL)
                continue;
            char *v = base_arena_strndup(&c->arena, p->value, p->value_length);
            if (v == NULL)
                n = -ENOMEM;
            else
                out[n++] = v;
        }
    }
    grpc_auth_context_release(ac);
    return n;
}

/*
 * What a call says in its metadata and its deadline, for the core: fstore-min-seq (a read waits
 * for this node's replica to apply that sequence), fstore-request-id (a replicated write's
 * idempotency key). Returns: 0, or -EINVAL with the message set.
 */
static int call_context(server_call_t *c)
{
    core_ctx_t *ctx = &c->ctx;
    gpr_timespec dl = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    ctx->deadline_us = 0;
    if (gpr_time_cmp(dl, gpr_inf_future(GPR_CLOCK_MONOTONIC)) != 0) {
        /* In microseconds from the timespec itself: gpr_time_to_millis() is an int32 of
         * milliseconds, and times 1000 it overflowed for deadlines past 35 minutes. A deadline
         * further than a year is as good as none. */
        gpr_timespec left = gpr_time_sub(dl, now);
        int64_t left_us = 0;
        if (left.tv_sec > 365LL * 86400)
            left_us = 365LL * 86400 * 1000000;
        else if (left.tv_sec >= 0)
            left_us = left.tv_sec * 1000000 + left.tv_nsec / 1000;
        ctx->deadline_us = base_mono_us() + left_us;
    }
    const char *authorization = NULL;
    for (size_t i = 0; i < c->md.count; i++) {
        const grpc_metadata *m = &c->md.metadata[i];
        const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);
        size_t n = GRPC_SLICE_LENGTH(m->value);
        if (grpc_slice_str_cmp(m->key, "fstore-min-seq") == 0) {
            uint64_t seq = 0;
            bool ok = n > 0 && n <= 20;
            for (size_t k = 0; ok && k < n; k++) {
                ok = v[k] >= '0' && v[k] <= '9' && seq <= (UINT64_MAX - 9) / 10;
                seq = seq * 10 + (uint64_t)(v[k] - '0');
            }
            if (!ok)
                return server__fail(c, -EINVAL,
                                    "fstore-min-seq metadata: want a decimal sequence (a write's "
                                    "sequence), got '%.*s'",
                                    (int)(n < 40 ? n : 40), v);
            ctx->min_seq = seq;
        } else if (grpc_slice_str_cmp(m->key, "authorization") == 0) {
            /* One, and text: two could be read differently by a proxy and by us. */
            if (authorization != NULL || memchr(v, '\0', n) != NULL)
                return server__fail(c, -EKEYREJECTED,
                                    "authorization metadata: want one 'Bearer <token>' entry");
            authorization = base_arena_strndup(&c->arena, v, n);
            if (authorization == NULL)
                return server__fail(c, -ENOMEM, "out of memory");
        } else if (grpc_slice_str_cmp(m->key, "fstore-request-id") == 0) {
            ctx->request_id = base_arena_strndup(&c->arena, v, n);
            if (ctx->request_id == NULL)
                return server__fail(c, -ENOMEM, "out of memory");
        }
    }
    /* Who is calling, and may they (the one check every method passes). */
    const server_options_t *o = &c->worker->srv->opts;
    core_creds_t cr = {.authorization = authorization};
    const char *names[CORE_MAX_CERT_NAMES];
    /* The certificate's names only where they can decide: no bearer token (which would). */
    if (o->tokens != NULL && c->method->scope != 0 && core_bearer(authorization) == NULL &&
        o->tls_client_ca != NULL && o->tls_client_ca[0] != '\0' && c->call != NULL) {
        int n = cert_names(c, names, CORE_MAX_CERT_NAMES);
        if (n < 0)
            return server__fail(c, -ENOMEM, "out of memory");
        cr.cert_names = names;
        cr.n_cert_names = (size_t)n;
    }
    return core_authorize(ctx, o->tokens, &cr, c->method->scope);
}

/* Marks c's connection as one that leaves replies untaken, for STALLED_FOR_US. */
static void stalled_add(server_t *s, grpc_call *call, int64_t now_us)
{
    char *peer = grpc_call_get_peer(call);
    if (peer == NULL)
        return;
    pthread_mutex_lock(&s->stalled_mu);
    int slot = 0;
    for (int i = 0; i < STALLED_PEERS; i++) {
        if (strcmp(s->stalled[i].peer, peer) == 0 || s->stalled[i].until_us < now_us) {
            slot = i; /* the same peer again, or a free (expired) entry */
            break;
        }
        if (s->stalled[i].until_us < s->stalled[slot].until_us)
            slot = i; /* else the one that expires first */
    }
    snprintf(s->stalled[slot].peer, sizeof s->stalled[slot].peer, "%s", peer);
    s->stalled[slot].until_us = now_us + STALLED_FOR_US;
    int n = 0;
    for (int i = 0; i < STALLED_PEERS; i++)
        n += s->stalled[i].until_us >= now_us;
    atomic_store(&s->n_stalled, n);
    pthread_mutex_unlock(&s->stalled_mu);
    gpr_free(peer);
}

/* Whether c's connection left a reply untaken lately (no cost while none has). */
static bool stalled_peer(server_t *s, grpc_call *call)
{
    if (atomic_load_explicit(&s->n_stalled, memory_order_relaxed) == 0 || call == NULL)
        return false;
    char *peer = grpc_call_get_peer(call);
    if (peer == NULL)
        return false;
    int64_t now = base_mono_us();
    bool found = false;
    int n = 0;
    pthread_mutex_lock(&s->stalled_mu);
    for (int i = 0; i < STALLED_PEERS; i++) {
        if (s->stalled[i].until_us < now)
            continue;
        n++;
        found |= strcmp(s->stalled[i].peer, peer) == 0;
    }
    atomic_store(&s->n_stalled, n);
    pthread_mutex_unlock(&s->stalled_mu);
    gpr_free(peer);
    return found;
}

static void call_handle(server_call_t *c)
{
    server_worker_t *w = c->worker;
    server_t *s = w->srv;
    grpc_slice resp = grpc_empty_slice();
    const uint8_t *req = NULL;
    size_t req_len = 0;
    size_t max_message = core_limits(s->core)->max_message_bytes;
    int rc;

    c->t0_us = base_mono_us();
    atomic_fetch_add_explicit(&w->stats[c->method - server__methods].started, 1,
                              memory_order_relaxed);
    c->req_len = 0;
    core_ctx_begin(&c->ctx, w->core, &c->arena);
    if (stalled_peer(s, c->call)) {
        rc = server__fail(c, -ENOBUFS,
                          "this connection left a reply untaken for over --grpc-max-send-ms: "
                          "its calls are refused for %lld s",
                          STALLED_FOR_US / 1000000);
    } else if (c->payload == NULL) {
        rc = server__fail(c, -EINVAL, "request message missing");
    } else if ((req_len = grpc_byte_buffer_length(c->payload)) > max_message) {
        /* gRPC's message-size filter is not in the minimal stack (see server_new()). */
        rc = server__fail(c, -EMSGSIZE,
                          "request message of %zu bytes is over --max-message-bytes %zu", req_len,
                          max_message);
    } else if ((rc = call_context(c)) < 0) {
        /* refused (credentials, metadata) before its message is read or inflated */
    } else if ((rc = call_payload(c, max_message, &req, &req_len)) == 0) {
        c->req_len = req_len;
        rc = c->method->fn(c, req, req_len, &resp);
    }
    /* The catalog pin is this worker's, so the request ends here even for a detached call,
     * whose completion (on the writer thread) uses only the message and the arena. */
    core_ctx_end(&c->ctx);
    if (rc == SERVER_DETACHED)
        return;
    if (rc == SERVER_PENDING) {
        /* The reply waits for the client call's completion on this queue (call_event). */
        atomic_fetch_add(&s->pending_calls, 1);
        c->state = CALL_PENDING;
        call_watch_close(c);
        return;
    }
    call_reply(c, rc, resp);
}

int server__stream_send(server_call_t *c, grpc_slice msg, server_resume_fn next)
{
    if (c->worker == NULL) {
        grpc_slice_unref(msg);
        return server__fail(c, -EOPNOTSUPP, "a streaming method cannot be called in-process");
    }
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!c->streamed)
        reply_metadata(c, &ops[n++]);
    c->response = reply_buffer(c, msg);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->response;
    c->resume = next;
    /* A client that stops taking messages is cancelled like one that leaves a reply untaken
     * (sweep_stuck_replies()). */
    atomic_store_explicit(&c->send_t0_us, base_mono_us(), memory_order_relaxed);
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
    if (e != GRPC_CALL_OK) {
        atomic_store_explicit(&c->send_t0_us, 0, memory_order_relaxed);
        grpc_byte_buffer_destroy(c->response);
        c->response = NULL;
        return server__fail(c, -EIO, "stream send failed: %s", grpc_call_error_to_string(e));
    }
    c->streamed = true;
    return SERVER_PENDING;
}

void server__call_begin_ctx(server_call_t *c, base_arena_t *arena)
{
    /* Who the call is stays who it was authorized as (a stream's later messages begin again). */
    const char *principal = c->ctx.principal;
    const struct core_grants *grants = c->ctx.grants;
    unsigned grant_scope = c->ctx.grant_scope;
    core_ctx_begin(&c->ctx, c->worker->core, arena);
    c->ctx.principal = principal;
    c->ctx.grants = grants;
    c->ctx.grant_scope = grant_scope;
}

void server__call_detach(server_call_t *c)
{
    if (c->worker == NULL)
        return; /* in-process: server_local_call() waits for the completion */
    atomic_fetch_add(&c->worker->srv->pending_calls, 1);
    c->state = CALL_PENDING;
}

void server__call_attach(server_call_t *c)
{
    if (c->worker == NULL)
        return;
    c->state = CALL_REQUESTED;
    atomic_fetch_sub(&c->worker->srv->pending_calls, 1);
}

void server__call_complete(server_call_t *c, int rc, grpc_slice resp)
{
    if (c->worker == NULL) {
        server__local_complete(c, rc, resp);
        return;
    }
    server_t *s = c->worker->srv;
    call_reply(c, rc, resp);
    /* After the reply batch has started: shutdown may shut the worker queues down once this
     * reaches zero, and the batch's completion must still find its queue. */
    atomic_fetch_sub(&s->pending_calls, 1);
}

/* Completion of a pending call's early RECV_CLOSE_ON_SERVER: the caller went away (gRPC has
 * cancelled the child call by now), or the reply was sent. */
static void call_closed(server_call_t *c)
{
    server_t *s = c->worker->srv;
    c->close_pending = false;
    if (c->state != CALL_CLOSING)
        return; /* still pending or sending: the send's completion finishes the call */
    call_finish(c);
    if (!atomic_load(&s->draining))
        call_request(c);
}

static void call_event(server_call_t *c, bool ok)
{
    server_t *s = c->worker->srv;
    switch (c->state) {
    case CALL_REQUESTED:
        if (!ok) {
            /* The server is shutting down: this request will never be matched. */
            c->state = CALL_IDLE;
            return;
        }
        call_handle(c);
        return;
    case CALL_PENDING: {
        grpc_slice resp = grpc_empty_slice();
        atomic_store_explicit(&c->send_t0_us, 0, memory_order_relaxed);
        if (c->response != NULL) {
            /* A streamed message went out (or failed): its buffer is done with. */
            grpc_byte_buffer_destroy(c->response);
            c->response = NULL;
        }
        int rc = c->resume(c, ok, &resp);
        if (rc == SERVER_PENDING)
            return; /* the next streamed message is on its way */
        call_reply(c, rc, resp);
        atomic_fetch_sub(&s->pending_calls, 1);
        return;
    }
    case CALL_SENDING:
        atomic_store_explicit(&c->send_t0_us, 0, memory_order_relaxed);
        if (c->close_pending) {
            c->state = CALL_CLOSING;
            return;
        }
        call_finish(c);
        /* Once draining, the queue may be shut down at any moment: no new requests. */
        if (!atomic_load(&s->draining))
            call_request(c);
        return;
    default:
        return;
    }
}

/*
 * A client that stops reading (its HTTP/2 window at 0) leaves a reply batch in flight, and the
 * call holds its slot until the batch completes. Every call of this worker whose reply has
 * waited longer than --grpc-max-send-ms is cancelled (the batch then fails and frees the slot).
 * Runs on the worker's own thread, which alone completes its calls' batches, so a slot seen
 * with a reply in flight cannot be recycled under it.
 */
static void sweep_stuck_replies(server_worker_t *w, int64_t now_us, int64_t max_us)
{
    for (size_t i = 0; i < w->n_calls; i++) {
        server_call_t *c = &w->calls[i];
        int64_t t0 = atomic_load_explicit(&c->send_t0_us, memory_order_relaxed);
        if (t0 == 0 || now_us - t0 <= max_us || c->call == NULL)
            continue;
        atomic_store_explicit(&c->send_t0_us, 0, memory_order_relaxed);
        stalled_add(w->srv, c->call, now_us); /* first: a cancelled call forgets its peer */
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                     "reply not taken by the client within --grpc-max-send-ms",
                                     NULL);
        atomic_fetch_add_explicit(&w->srv->stuck_replies, 1, memory_order_relaxed);
        if (now_us - w->stuck_logged_us > 60 * 1000000LL) {
            w->stuck_logged_us = now_us;
            base_log(BASE_LOG_WARN, "reply_not_taken", "{s:s, s:I}", "method", c->method->path,
                     "max_send_ms", (json_int_t)(max_us / 1000));
        }
    }
}

static void *worker_main(void *arg)
{
    server_worker_t *w = arg;
    int64_t max_send_us = (int64_t)w->srv->opts.max_send_ms * 1000;
    int64_t next_sweep = base_mono_us() + max_send_us / 4;
    unsigned slice = w->srv->opts.sched_slice_us;
    if (slice != 0 && w->pool == SERVER_POOL_READ) {
        int rc = base_sched_slice(slice);
        if (rc < 0 && w->index == 0)
            base_log(BASE_LOG_WARN, "sched_slice_unsupported", "{s:i, s:s}", "slice_us", (int)slice,
                     "error", strerror(-rc));
    }
    for (;;) {
        gpr_timespec until = gpr_inf_future(GPR_CLOCK_REALTIME);
        if (max_send_us > 0)
            until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                 gpr_time_from_micros(max_send_us / 4 + 1, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(w->cq, until, NULL);
        if (max_send_us > 0) {
            int64_t now = base_mono_us();
            if (now >= next_sweep) {
                sweep_stuck_replies(w, now, max_send_us);
                next_sweep = now + max_send_us / 4;
            }
        }
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (IS_CLOSE_TAG(ev.tag))
            call_closed(CALL_OF_TAG(ev.tag));
        else
            call_event(ev.tag, ev.success != 0);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Setup                                                                                       */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void on_shutdown(server_tag_t *t, bool ok)
{
    (void)ok;
    server_t *s = (server_t *)((char *)t - offsetof(server_t, shutdown_tag));
    s->grpc_shutdown_done = true;
}

/* Appends the integer channel argument key = value to args (n: how many so far). */
static void arg_int(grpc_arg *args, size_t *n, const char *key, int value)
{
    args[*n] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = (char *)key, .value.integer = value};
    (*n)++;
}

/*
 * Only read workers poll. In gRPC's epoll engine every thread waiting on a polling queue takes
 * turns at epoll_wait for all connections, and the thread that reads a call's bytes must then wake
 * the thread whose queue the call belongs to: with the control thread and four idle write workers
 * in the rotation, most reads were handed across threads (about 2.4 futex calls per Health/Check
 * with one read worker). A non-polling queue only waits for its own completions, so I/O is read
 * by a read worker, where most calls are answered. The server needs one polling queue for its
 * listener: the read workers' (there is always at least one).
 */
static grpc_completion_queue *queue_new(bool polls)
{
    grpc_completion_queue_attributes attr = {
        .version = GRPC_CQ_CURRENT_VERSION,
        .cq_completion_type = GRPC_CQ_NEXT,
        .cq_polling_type = polls ? GRPC_CQ_DEFAULT_POLLING : GRPC_CQ_NON_POLLING,
        .cq_shutdown_cb = NULL,
    };
    return grpc_completion_queue_create(grpc_completion_queue_factory_lookup(&attr), &attr, NULL);
}

static int setup_workers(server_t *s)
{
    unsigned n_read = read_workers(&s->opts);
    unsigned n_write = s->opts.write_workers == 0 ? 1 : s->opts.write_workers;
    s->opts.workers = n_read;
    s->opts.write_workers = n_write;
    s->n_workers = n_read + n_write;
    s->workers = calloc(s->n_workers, sizeof *s->workers);
    if (s->workers == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < s->n_workers; i++) {
        server_worker_t *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        w->pool = i < n_read ? SERVER_POOL_READ : SERVER_POOL_WRITE;
        w->cq = queue_new(w->pool == SERVER_POOL_READ);
        if (w->cq == NULL)
            return -ENOMEM;
        /* Responses name their columns in Feast's RepeatedString form, encoded once per
         * feature list and cached with it. Write workers read too: offline serving (LoadBatch,
         * GetHistoricalFeatures) runs there. */
        int rc = core_worker_new(s->core, CORE_WORKER_READS, base_wire_strings, &w->core);
        if (rc < 0) {
            base_log(BASE_LOG_ERROR, "worker_failed", "{s:s}", "error", strerror(-rc));
            return rc;
        }
        grpc_server_register_completion_queue(s->grpc, w->cq, NULL);
        size_t n_calls = 0;
        for (size_t m = 0; m < N_METHODS; m++) {
            if (server__methods[m].pool == w->pool)
                n_calls += server__methods[m].slots;
        }
        w->calls = calloc(n_calls, sizeof *w->calls);
        w->stats = calloc(N_METHODS, sizeof *w->stats);
        if (w->calls == NULL || w->stats == NULL)
            return -ENOMEM;
        w->n_calls = n_calls;
        size_t k = 0;
        for (size_t m = 0; m < N_METHODS; m++) {
            if (server__methods[m].pool != w->pool)
                continue;
            for (unsigned j = 0; j < server__methods[m].slots; j++, k++) {
                server_call_t *c = &w->calls[k];
                c->worker = w;
                c->method = &server__methods[m];
                c->registered = s->handles[m];
                c->details = grpc_empty_slice();
                grpc_metadata_array_init(&c->md);
                base_arena_init(&c->arena, server__methods[m].arena_first);
            }
        }
    }
    return 0;
}

int server_new(core_t *core, const server_options_t *o, server_t **out)
{
    int rc = 0;
    server_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->opts = *o;
    s->core = core;
    pthread_mutex_init(&s->stalled_mu, NULL);
    s->listen = dup_or_null(o->listen != NULL ? o->listen : SERVER_DEFAULT_LISTEN);
    s->shutdown_tag.fn = on_shutdown;
    if (s->listen == NULL) {
        rc = -ENOMEM;
        goto out;
    }

    bool lean_mutexes = base_lean_mutexes();
    grpc_init();
    s->grpc_inited = true;
    if (!lean_mutexes)
        base_log(BASE_LOG_INFO, "absl_deadlock_detection", "{s:s}", "note",
                 "abseil mutex deadlock detection stays on (FSTORE_ABSL_DEADLOCK_DETECTION=1, "
                 "or not found in the abseil gRPC links against)");
    grpc_arg args[17];
    size_t n_args = 0;
    /* gRPC sets SO_REUSEPORT by default, which lets a second server bind a port that is already
     * serving and silently split its traffic. A busy port must fail loudly instead. */
    arg_int(args, &n_args, GRPC_ARG_ALLOW_REUSEPORT, 0);
    /* Nothing here serves channelz, and it counts every call on shared atomics. */
    arg_int(args, &n_args, GRPC_ARG_ENABLE_CHANNELZ, 0);
    /* The minimal filter stack: no server-side deadline timer per call (methods answer at once,
     * and a Predict passthrough carries the caller's deadline to its upstream) and no
     * message-size filter, so gRPC's max message length arguments would not be enforced:
     * call_handle() refuses requests over --max-message-bytes (naming the flag) and
     * server__response_slice() bounds responses. Compressed requests are decompressed by
     * call_payload() (the minimal stack has no decompression filter).
     * ... except that connection idle and age limits live in a filter (max_age) the minimal
     * stack leaves out: with either set, the full stack, gRPC's receive limit at
     * --max-message-bytes, its decompression off and its send limit lifted (responses are
     * bounded by --max-response-bytes). */
    bool full_stack = s->opts.max_idle_s > 0 || s->opts.max_age_s > 0;
    arg_int(args, &n_args, GRPC_ARG_MINIMAL_STACK, full_stack ? 0 : 1);
    if (full_stack) {
        size_t max_msg = core_limits(core)->max_message_bytes;
        arg_int(args, &n_args, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                max_msg > INT_MAX ? INT_MAX : (int)max_msg);
        /* gRPC's decompression filter inflates a message whole before any size check: off, so
         * that compressed requests reach call_payload() and its bounded inflate as they do on
         * the minimal stack. */
        arg_int(args, &n_args, GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, 0);
        arg_int(args, &n_args, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1);
    }
    /* What one client can make the server hold: streams per connection (a client opening
     * more gets them refused), and one memory quota for every connection's buffers and calls
     * (past it, gRPC refuses new streams and reads less instead of growing). */
    arg_int(args, &n_args, GRPC_ARG_MAX_CONCURRENT_STREAMS,
            (int)(o->max_streams ? o->max_streams : SERVER_DEFAULT_MAX_STREAMS));
    grpc_resource_quota *quota = grpc_resource_quota_create("fstore");
    grpc_resource_quota_resize(quota, o->max_memory ? o->max_memory : SERVER_DEFAULT_MAX_MEMORY);
    args[n_args].type = GRPC_ARG_POINTER;
    args[n_args].key = GRPC_ARG_RESOURCE_QUOTA;
    args[n_args].value.pointer.p = quota;
    args[n_args++].value.pointer.vtable = grpc_resource_quota_arg_vtable();
    /* A connection that never finishes its handshakes (a TLS or HTTP/2 slowloris) is closed. */
    arg_int(args, &n_args, GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
            (int)(o->handshake_timeout_ms ? o->handshake_timeout_ms
                                          : SERVER_DEFAULT_HANDSHAKE_TIMEOUT_MS));
    /* Keepalive enforcement: a ping flood (CPU for nothing) ends in GOAWAY too_many_pings.
     * The interval holds with calls in flight or not (gRPC's own policy for a connection
     * without calls is one ping in two hours, whatever the interval). */
    arg_int(args, &n_args, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    arg_int(args, &n_args, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
            (int)(o->min_ping_interval_ms ? o->min_ping_interval_ms
                                          : SERVER_DEFAULT_MIN_PING_INTERVAL_MS));
    arg_int(args, &n_args, GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
    /* Connections that rebalance: GOAWAY after an idle time or an age, with a grace for the
     * calls in flight. */
    if (o->max_idle_s > 0)
        arg_int(args, &n_args, GRPC_ARG_MAX_CONNECTION_IDLE_MS, (int)(o->max_idle_s * 1000u));
    if (o->max_age_s > 0) {
        arg_int(args, &n_args, GRPC_ARG_MAX_CONNECTION_AGE_MS, (int)(o->max_age_s * 1000u));
        arg_int(args, &n_args, GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                (int)(o->max_age_grace_s * 1000u));
    }
    grpc_channel_args ch_args = {.num_args = n_args, .args = args};
    s->grpc = grpc_server_create(&ch_args, NULL);
    grpc_resource_quota_unref(quota); /* the server's channel arguments hold their own */
    s->ctl_cq = queue_new(false);
    if (s->grpc == NULL || s->ctl_cq == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    grpc_server_register_completion_queue(s->grpc, s->ctl_cq, NULL);
    for (size_t m = 0; m < N_METHODS; m++) {
        s->handles[m] = grpc_server_register_method(s->grpc, server__methods[m].path, NULL,
                                                    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (s->handles[m] == NULL) {
            rc = -ENOMEM;
            goto out;
        }
    }
    server__stream_bounds_t watch_bounds = {s->opts.max_watches, s->opts.max_send_ms, 0,
                                            &s->stuck_replies};
    rc = server__watch_init(core, s->grpc, s->ctl_cq, &s->stream_stats[SERVER_STREAM_WATCH],
                            &watch_bounds, &s->watches);
    if (rc < 0)
        goto out;
    server__stream_bounds_t refl_bounds = {s->opts.max_reflection_streams, s->opts.max_send_ms,
                                           s->opts.reflection_idle_s, &s->stuck_replies};
    rc = server__reflection_init(s->grpc, s->ctl_cq, core_limits(core)->max_message_bytes,
                                 &s->stream_stats[SERVER_STREAM_REFLECTION_V1], &refl_bounds,
                                 &s->reflection);
    if (rc < 0)
        goto out;
    rc = server__unknown_init(s->grpc, s->ctl_cq, &s->unknown);
    if (rc < 0)
        goto out;
    rc = upstream_pool_new(core_limits(core)->max_response_bytes, o->upstream_tls, &s->upstreams);
    if (rc < 0)
        goto out;
    rc = setup_workers(s);
    if (rc < 0)
        goto out;

    grpc_server_credentials *creds = NULL;
    if (o->tls_cert != NULL && o->tls_cert[0] != '\0') {
        rc = server__tls_credentials(o, &s->tls, &creds);
        if (rc < 0)
            goto out;
    } else {
        creds = grpc_insecure_server_credentials_create();
    }
    s->port = grpc_server_add_http2_port(s->grpc, s->listen, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0 && s->tls != NULL) {
        /* The port was free a moment ago (serve probes it first): gRPC refused the pair. */
        base_log(BASE_LOG_ERROR, "tls_failed", "{s:s}", "error",
                 "gRPC could not load --tls-cert and --tls-key (a key that is not the "
                 "certificate's, or an unreadable chain; gRPC's own line above says which)");
        rc = -EINVAL;
        goto out;
    }
    if (s->port == 0) {
        base_log(BASE_LOG_ERROR, "listen_failed", "{s:s, s:s}", "address", s->listen, "error",
                 "cannot bind the address (in use by another process, or invalid)");
        rc = -EADDRINUSE;
        goto out;
    }
    *out = s;
    s = NULL;
out:
    server_free(s);
    return rc;
}

int server_port(const server_t *s)
{
    return s->port;
}

/* ------------------------------------------------------------------------------------------ */
/* Running and stopping                                                                        */

void server_request_stop(server_t *s)
{
    atomic_fetch_add(&s->stop_requested, 1);
}

/* SIGHUP also reads --tokens-file again: tokens rotate without a restart, and a file that does
 * not load leaves the old principals in place (logged). The HTTP front door shares the table. */
static void reload_tokens(server_t *s)
{
    if (s->opts.tokens == NULL)
        return;
    char why[512];
    size_t n = 0;
    if (core_tokens_reload(s->opts.tokens, &n, why, sizeof why) < 0)
        base_log(BASE_LOG_ERROR, "tokens_reload_rejected", "{s:s}", "error", why);
    else
        base_log(BASE_LOG_INFO, "tokens_reloaded", "{s:I}", "principals", (json_int_t)n);
}

void server_request_reload(server_t *s)
{
    atomic_store(&s->reload_requested, 1);
}

static void stop_workers(server_t *s)
{
    /* A pending call still has to start its reply batch on its worker's queue; gRPC may report
     * the server shut down before that (cancelled calls count as done). Their client calls end
     * soon: cancelling the server calls cancelled them too. */
    while (atomic_load(&s->pending_calls) > 0) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        if (s->workers[i].cq != NULL)
            grpc_completion_queue_shutdown(s->workers[i].cq);
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        server_worker_t *w = &s->workers[i];
        if (w->started) {
            pthread_join(w->thread, NULL);
            w->started = false;
        } else if (w->cq != NULL) {
            /* Never ran: drain the queue here so it can be destroyed. */
            while (
                grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
                GRPC_QUEUE_SHUTDOWN) {
            }
        }
    }
}

/* Dispatches control-queue events until `deadline`. */
static void ctl_poll(server_t *s, int64_t timeout_ms)
{
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(s->ctl_cq, deadline, NULL);
    if (ev.type == GRPC_OP_COMPLETE) {
        server_tag_t *t = ev.tag;
        t->fn(t, ev.success != 0);
    }
}

int server_run(server_t *s)
{
    int rc = 0;
    grpc_server_start(s->grpc);
    s->grpc_started = true;
    for (unsigned i = 0; i < s->n_workers; i++) {
        server_worker_t *w = &s->workers[i];
        for (size_t k = 0; k < w->n_calls; k++)
            call_request(&w->calls[k]);
    }
    server__watch_start(s->watches);
    server__reflection_start(s->reflection);
    server__unknown_start(s->unknown);
    for (unsigned i = 0; i < s->n_workers; i++) {
        server_worker_t *w = &s->workers[i];
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e != 0) {
            base_log(BASE_LOG_ERROR, "worker_failed", "{s:s}", "error", strerror(e));
            rc = -e;
            server_request_stop(s);
            break;
        }
        w->started = true;
    }

    /* A stop that came while starting: never SERVING, so no load balancer needs the delay. */
    bool served = rc == 0 && atomic_load(&s->stop_requested) == 0;
    if (served) {
        core_set_health(s->core, CORE_SERVING);
        server__watch_notify(s->watches);
        catalog_t *c = core_catalog_ref(s->core);
        base_log(BASE_LOG_INFO, "serving", "{s:s, s:i, s:s, s:s, s:i, s:i, s:s}", "address",
                 s->listen, "port", s->port, "data_dir", core_data_dir(s->core), "digest",
                 catalog_digest(c), "workers", (int)s->opts.workers, "write_workers",
                 (int)s->opts.write_workers, "version", FSTORE_VERSION);
        catalog_unref(c);
    }

    bool cancelled = false;
    bool stopping = false;
    int64_t delay_end = 0;
    int64_t grace_end = 0;
    base_heap_trimmer_t trim = {.growth = SERVER_HEAP_TRIM_GROWTH,
                                .every_us = SERVER_HEAP_TRIM_EVERY_US};
    int64_t trim_logged = INT64_MIN / 2;
    while (!s->grpc_shutdown_done) {
        ctl_poll(s, stopping && !atomic_load(&s->draining) ? 10 : 100);
        int stop = atomic_load(&s->stop_requested);
        if (stop > 0 && !stopping) {
            /* Health first, so load balancers move away while calls are still accepted. */
            stopping = true;
            core_set_health(s->core, CORE_NOT_SERVING);
            server__watch_notify(s->watches);
            delay_end = base_mono_us() + (served ? (int64_t)s->opts.drain_delay_ms * 1000 : 0);
            if (served && s->opts.drain_delay_ms > 0)
                base_log(BASE_LOG_INFO, "drain_delay", "{s:i}", "delay_ms",
                         (int)s->opts.drain_delay_ms);
        }
        if (stopping && !atomic_load(&s->draining) && (stop > 1 || base_mono_us() >= delay_end)) {
            atomic_store(&s->draining, true);
            base_log(BASE_LOG_INFO, "draining", "{s:i}", "grace_ms",
                     (int)s->opts.shutdown_grace_ms);
            server__watch_drain(s->watches);
            server__reflection_drain(s->reflection);
            grpc_server_shutdown_and_notify(s->grpc, s->ctl_cq, &s->shutdown_tag);
            grace_end = base_mono_us() + (int64_t)s->opts.shutdown_grace_ms * 1000;
        }
        if (atomic_load(&s->draining) && !cancelled && (stop > 1 || base_mono_us() > grace_end)) {
            base_log(BASE_LOG_WARN, "cancelling_calls", "{s:s}", "reason",
                     stop > 1 ? "second stop request" : "shutdown grace period over");
            grpc_server_cancel_all_calls(s->grpc);
            cancelled = true;
        }
        if (!stopping && atomic_exchange(&s->reload_requested, 0)) {
            core_reload(s->core);
            reload_tokens(s);
        }
        core_collect(s->core);
        /* Memory a burst left free in malloc's arenas goes back to the kernel: a flood of reset
         * streams (rapid reset, which gRPC 1.51 cannot refuse) queues a call for each, and glibc
         * would keep their pages at the flood's peak for good. */
        int64_t now = base_mono_us();
        size_t back = base_heap_trim_tick(&trim, now);
        if (back > 0 && now - trim_logged >= 60 * 1000000LL) {
            trim_logged = now;
            base_log(BASE_LOG_INFO, "heap_returned", "{s:I, s:s}", "returned_mb",
                     (json_int_t)(back >> 20), "note", "at most one line a minute");
        }
        /* The health can change by itself (a replica catching up): watchers follow. */
        if (!stopping)
            server__watch_notify(s->watches);
        server__reflection_tick(s->reflection);
    }
    stop_workers(s);
    /* The writer's counters: batches / commits is the group-commit factor of this run. */
    store_stats_t st = {0};
    if (store_stat(core_store(s->core), &st) == 0)
        base_log(BASE_LOG_INFO, "stopped", "{s:I, s:I}", "commits", (json_int_t)st.commits,
                 "write_batches", (json_int_t)st.batches);
    else
        base_log(BASE_LOG_INFO, "stopped", NULL);
    return rc;
}

void server_free(server_t *s)
{
    if (s == NULL)
        return;
    if (s->grpc != NULL) {
        if (!s->grpc_shutdown_done) {
            atomic_store(&s->draining, true);
            if (s->watches != NULL)
                server__watch_drain(s->watches);
            if (s->reflection != NULL)
                server__reflection_drain(s->reflection);
            grpc_server_shutdown_and_notify(s->grpc, s->ctl_cq, &s->shutdown_tag);
            grpc_server_cancel_all_calls(s->grpc);
            while (!s->grpc_shutdown_done)
                ctl_poll(s, 1000);
        }
        stop_workers(s);
        grpc_server_destroy(s->grpc);
        s->grpc = NULL;
    }
    if (s->ctl_cq != NULL) {
        grpc_completion_queue_shutdown(s->ctl_cq);
        for (;;) {
            grpc_event ev =
                grpc_completion_queue_next(s->ctl_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
            if (ev.type == GRPC_QUEUE_SHUTDOWN)
                break;
            if (ev.type == GRPC_OP_COMPLETE) {
                server_tag_t *t = ev.tag;
                t->fn(t, ev.success != 0);
            }
        }
        grpc_completion_queue_destroy(s->ctl_cq);
    }
    server__watch_free(s->watches);
    server__reflection_free(s->reflection);
    server__unknown_free(s->unknown);
    /* After stop_workers(): every server call has ended, so no client call is left. */
    upstream_pool_free(s->upstreams);
    for (unsigned i = 0; s->workers != NULL && i < s->n_workers; i++) {
        server_worker_t *w = &s->workers[i];
        if (w->cq != NULL)
            grpc_completion_queue_destroy(w->cq);
        for (size_t k = 0; k < w->n_calls; k++) {
            grpc_metadata_array_destroy(&w->calls[k].md);
            grpc_slice_unref(w->calls[k].details);
            base_arena_free(&w->calls[k].arena);
        }
        free(w->calls);
        free(w->stats);
        core_worker_free(w->core);
    }
    free(s->workers);
    if (s->grpc_inited)
        grpc_shutdown();
    free(s->listen);
    server__tls_free(s->tls);
    pthread_mutex_destroy(&s->stalled_mu);
    free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Metrics                                                                                     */

/* "/pkg.Service/Method" -> service and method labels. */
static void split_path(const char *path, char *svc, size_t svc_cap, const char **method)
{
    const char *slash = strrchr(path, '/');
    size_t n = (size_t)(slash - path - 1);
    snprintf(svc, svc_cap, "%.*s", (int)(n < svc_cap ? n : svc_cap - 1), path + 1);
    *method = slash + 1;
}

void server_metrics(void *arg, FILE *out)
{
    static const char *const codes[METRIC_CODES] = {
        "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
        "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
        "DataLoss", "Unauthenticated"};
    static const char *const le[METRIC_BUCKETS] = {"0.0005", "0.001", "0.0025", "0.005",
                                                   "0.01",   "0.025", "0.05",   "0.1",
                                                   "0.25",   "0.5",   "1",      "+Inf"};
    server_t *s = arg;
    method_stats_t *sum = calloc(N_METHODS, sizeof *sum);
    if (sum == NULL)
        return;
    for (unsigned i = 0; i < s->n_workers; i++) {
        const method_stats_t *ws = s->workers[i].stats;
        for (size_t m = 0; ws != NULL && m < N_METHODS; m++) {
            sum[m].started += atomic_load_explicit(&ws[m].started, memory_order_relaxed);
            sum[m].sum_us += atomic_load_explicit(&ws[m].sum_us, memory_order_relaxed);
            for (int k = 0; k < METRIC_CODES; k++)
                sum[m].handled[k] += atomic_load_explicit(&ws[m].handled[k], memory_order_relaxed);
            for (int b = 0; b < METRIC_BUCKETS; b++)
                sum[m].buckets[b] += atomic_load_explicit(&ws[m].buckets[b], memory_order_relaxed);
        }
    }
    /* The unary table's methods, then the control thread's streams: one list. */
    static const struct {
        const char *path, *type;
    } streams[SERVER_N_STREAMS] = {
        [SERVER_STREAM_WATCH] = {"/grpc.health.v1.Health/Watch", "server_stream"},
        [SERVER_STREAM_REFLECTION_V1] =
            {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "bidi_stream"},
        [SERVER_STREAM_REFLECTION_V1ALPHA] =
            {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "bidi_stream"},
    };
    enum { N_SERIES = N_METHODS + SERVER_N_STREAMS };
    const char *paths[N_SERIES], *types[N_SERIES];
    const method_stats_t *stats[N_SERIES];
    for (size_t m = 0; m < N_METHODS; m++) {
        paths[m] = server__methods[m].path;
        types[m] = server__methods[m].streams ? "server_stream" : "unary";
        stats[m] = &sum[m];
    }
    for (size_t k = 0; k < SERVER_N_STREAMS; k++) {
        paths[N_METHODS + k] = streams[k].path;
        types[N_METHODS + k] = streams[k].type;
        stats[N_METHODS + k] = &s->stream_stats[k];
    }
    char svc[128];
    const char *method;
    /* Every series exists from the start, at zero, as go-grpc-prometheus creates them. */
    fputs("# HELP grpc_server_started_total Total number of RPCs started on the server.\n"
          "# TYPE grpc_server_started_total counter\n",
          out);
    for (size_t m = 0; m < N_SERIES; m++) {
        split_path(paths[m], svc, sizeof svc, &method);
        fprintf(out,
                "grpc_server_started_total{grpc_method=\"%s\",grpc_service=\"%s\","
                "grpc_type=\"%s\"} %llu\n",
                method, svc, types[m],
                (unsigned long long)atomic_load_explicit(&stats[m]->started, memory_order_relaxed));
    }
    fputs("# HELP grpc_server_handled_total Total number of RPCs completed on the server, "
          "regardless of success or failure.\n"
          "# TYPE grpc_server_handled_total counter\n",
          out);
    for (size_t m = 0; m < N_SERIES; m++) {
        split_path(paths[m], svc, sizeof svc, &method);
        for (int k = 0; k < METRIC_CODES; k++)
            fprintf(out,
                    "grpc_server_handled_total{grpc_code=\"%s\",grpc_method=\"%s\","
                    "grpc_service=\"%s\",grpc_type=\"%s\"} %llu\n",
                    codes[k], method, svc, types[m],
                    (unsigned long long)atomic_load_explicit(&stats[m]->handled[k],
                                                             memory_order_relaxed));
    }
    fputs("# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of gRPC "
          "that had been application-level handled by the server.\n"
          "# TYPE grpc_server_handling_seconds histogram\n",
          out);
    for (size_t m = 0; m < N_SERIES; m++) {
        split_path(paths[m], svc, sizeof svc, &method);
        uint64_t cum = 0;
        for (int b = 0; b < METRIC_BUCKETS; b++) {
            cum += atomic_load_explicit(&stats[m]->buckets[b], memory_order_relaxed);
            fprintf(out,
                    "grpc_server_handling_seconds_bucket{grpc_method=\"%s\",grpc_service=\"%s\","
                    "grpc_type=\"%s\",le=\"%s\"} %llu\n",
                    method, svc, types[m], le[b], (unsigned long long)cum);
        }
        fprintf(out,
                "grpc_server_handling_seconds_sum{grpc_method=\"%s\",grpc_service=\"%s\","
                "grpc_type=\"%s\"} %.6f\n",
                method, svc, types[m],
                (double)atomic_load_explicit(&stats[m]->sum_us, memory_order_relaxed) / 1e6);
        fprintf(out,
                "grpc_server_handling_seconds_count{grpc_method=\"%s\",grpc_service=\"%s\","
                "grpc_type=\"%s\"} %llu\n",
                method, svc, types[m], (unsigned long long)cum);
    }
    fprintf(out,
            "# HELP fstore_grpc_replies_not_taken_total Replies cancelled because the client did "
            "not take them within --grpc-max-send-ms (its flow-control window stayed closed).\n"
            "# TYPE fstore_grpc_replies_not_taken_total counter\n"
            "fstore_grpc_replies_not_taken_total %llu\n",
            (unsigned long long)atomic_load(&s->stuck_replies));
    free(sum);
}
