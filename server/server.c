/* server/server.c - gRPC server lifecycle: workers and their queues, calls, reload, shutdown. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients/c/fstore_client.h"
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
    unsigned index; /* also this thread's pin slot in the catalog holder */
    server_pool_t pool;
    pthread_t thread;
    bool started;
    grpc_completion_queue *cq;
    store_reader_t *reader;                /* read workers only */
    server_ref_cache_t *ref_cache;         /* read workers only: resolved feature lists */
    server_predict_cache_t *predict_cache; /* read workers only: Predict's output names */
    server_call_t *calls;
    size_t n_calls;
};

static const server_method_t methods[] = {
    {"/feast.serving.ServingService/GetOnlineFeatures", "GetOnlineFeatures",
     server__rpc_get_online_features, SERVER_POOL_READ, 32},
    {"/fstore.v1.OnlineFeatureService/GetOnlineFeatures", "GetOnlineFeatures",
     server__rpc_get_online_features, SERVER_POOL_READ, 32},
    {"/feast.serving.ServingService/GetFeastServingInfo", "GetFeastServingInfo",
     server__rpc_get_feast_serving_info, SERVER_POOL_READ, 1},
    /* Writes wait for the group commit in their slot, not in a thread: the slots bound how
     * many share one fsync. */
    {"/fstore.v1.OnlineFeatureService/WriteFeatures", "WriteFeatures", server__rpc_write_features,
     SERVER_POOL_WRITE, 16},
    {"/fstore.v1.OnlineFeatureService/DeleteEntities", "DeleteEntities",
     server__rpc_delete_entities, SERVER_POOL_WRITE, 2},
    {"/fstore.v1.OnlineFeatureService/GetCatalog", "GetCatalog", server__rpc_get_catalog,
     SERVER_POOL_READ, 1},
    {"/grpc.health.v1.Health/Check", "Health.Check", server__rpc_health_check, SERVER_POOL_READ, 2},
    /* A passthrough holds its slot for the upstream's whole round trip. */
    {"/tensorflow.serving.PredictionService/Predict", "Predict", server__rpc_predict,
     SERVER_POOL_READ, 32},
};
#define N_METHODS (sizeof methods / sizeof methods[0])

/* Services a health check may name; everything else is SERVICE_UNKNOWN. */
static const char *const health_services[] = {
    "",
    "feast.serving.ServingService",
    "fstore.v1.OnlineFeatureService",
    "grpc.health.v1.Health",
    "tensorflow.serving.PredictionService",
};

enum health {
    HEALTH_SERVING = 1,
    HEALTH_NOT_SERVING = 2,
    HEALTH_SERVICE_UNKNOWN = 3,
};

struct server {
    char *listen;
    char *catalog_path;
    char *data_dir;
    server_options_t opts;
    store_t *store;
    server_holder_t holder;
    bool holder_ready;
    grpc_server *grpc;
    bool grpc_started;
    bool grpc_shutdown_done;
    grpc_completion_queue *ctl_cq;
    int port;
    unsigned n_workers; /* read + write */
    server_worker_t *workers;
    void *handles[N_METHODS];
    server_watches_t *watches;
    server_unknown_t *unknown;
    server_upstreams_t *upstreams;
    server_tag_t shutdown_tag;
    _Atomic int stop_requested;
    _Atomic int reload_requested;
    _Atomic int health;
    _Atomic uint64_t reloads_applied;
    _Atomic uint64_t reloads_rejected;
    _Atomic bool draining;
    _Atomic int pending_calls; /* calls between SERVER_PENDING and their reply's start_batch */
    bool grpc_inited;
};

void server_options_init(server_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->listen = SERVER_DEFAULT_LISTEN;
    o->workers = 0;
    o->write_workers = SERVER_DEFAULT_WRITE_WORKERS;
    o->limits.max_message_bytes = SERVER_DEFAULT_MAX_MESSAGE_BYTES;
    o->limits.max_response_bytes = SERVER_DEFAULT_MAX_RESPONSE_BYTES;
    o->limits.max_entities = SERVER_DEFAULT_MAX_ENTITIES;
    o->limits.max_features = SERVER_DEFAULT_MAX_FEATURES;
    o->limits.max_write_rows = SERVER_DEFAULT_MAX_WRITE_ROWS;
    o->shutdown_grace_ms = SERVER_DEFAULT_SHUTDOWN_GRACE_MS;
    o->sync = STORE_SYNC_FULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Call helpers for handlers                                                                   */

server_t *server__call_server(const server_call_t *c)
{
    return c->worker->srv;
}

store_t *server__call_store(const server_call_t *c)
{
    return c->worker->srv->store;
}

store_reader_t *server__call_reader(const server_call_t *c)
{
    return c->worker->reader;
}

const server_limits_t *server__call_limits(const server_call_t *c)
{
    return &c->worker->srv->opts.limits;
}

grpc_completion_queue *server__call_cq(const server_call_t *c)
{
    return c->worker->cq;
}

server_ref_cache_t *server__call_ref_cache(const server_call_t *c)
{
    return c->worker->ref_cache;
}

server_predict_cache_t *server__call_predict_cache(const server_call_t *c)
{
    return c->worker->predict_cache;
}

server_upstreams_t *server__call_upstreams(const server_call_t *c)
{
    return c->worker->srv->upstreams;
}

int server__health_status(const server_t *s, const char *service)
{
    for (size_t i = 0; i < sizeof health_services / sizeof health_services[0]; i++) {
        if (strcmp(service, health_services[i]) == 0)
            return atomic_load(&((server_t *)s)->health);
    }
    return HEALTH_SERVICE_UNKNOWN;
}

/* ------------------------------------------------------------------------------------------ */
/* Unary calls on workers                                                                      */

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void call_request(server_call_t *c)
{
    server_t *s = c->worker->srv;
    c->state = CALL_REQUESTED;
    grpc_call_error e =
        grpc_server_request_registered_call(s->grpc, c->registered, &c->call, &c->deadline, &c->md,
                                            &c->payload, c->worker->cq, c->worker->cq, c);
    if (e != GRPC_CALL_OK) {
        c->state = CALL_IDLE;
        server__log(SERVER_LOG_ERROR, "request_call_failed", "{s:s, s:s}", "method",
                    c->method->path, "error", grpc_call_error_to_string(e));
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
    grpc_slice_unref(c->details);
    c->details = grpc_empty_slice();
    if (c->call != NULL)
        grpc_call_unref(c->call);
    c->call = NULL;
    grpc_metadata_array_destroy(&c->md);
    grpc_metadata_array_init(&c->md);
    server__arena_reset(&c->arena);
    c->resume = NULL;
    c->resume_arg = NULL;
    c->relayed = false;
    c->close_started = false;
    c->close_pending = false;
    c->state = CALL_IDLE;
}

/* The request bytes, contiguous: the payload's own slice when it is one plain slice (the usual
 * case), else a copy in the arena. */
static int call_payload(server_call_t *c, const uint8_t **data, size_t *len)
{
    grpc_byte_buffer *bb = c->payload;
    if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
        bb->data.raw.slice_buffer.count == 1) {
        grpc_slice s = bb->data.raw.slice_buffer.slices[0];
        *data = GRPC_SLICE_START_PTR(s);
        *len = GRPC_SLICE_LENGTH(s);
        return 0;
    }
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return -EINVAL;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    size_t n = GRPC_SLICE_LENGTH(all);
    uint8_t *copy = server__arena_alloc(&c->arena, n);
    if (copy != NULL && n > 0)
        memcpy(copy, GRPC_SLICE_START_PTR(all), n);
    grpc_slice_unref(all);
    if (copy == NULL)
        return -ENOMEM;
    *data = copy;
    *len = n;
    return 0;
}

/* Sends the reply for handler result rc (resp on success; the slice is released here). */
static void call_reply(server_call_t *c, int rc, grpc_slice resp)
{
    server_t *s = c->worker->srv;
    /* A status relayed from an upstream is not an errno: it passes through untouched. */
    grpc_status_code code = c->relayed ? c->relay_status : server__status_from_errno(rc);
    size_t resp_len = 0;
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (rc == 0) {
        resp_len = GRPC_SLICE_LENGTH(resp);
        c->response = grpc_raw_byte_buffer_create(&resp, 1);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->response;
    }
    grpc_slice_unref(resp);
    if (c->msg[0] != '\0')
        c->details = grpc_slice_from_copied_string(c->msg);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = c->msg[0] != '\0' ? &c->details : NULL;
    if (!c->close_started) {
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    }

    /* Read before the batch starts: a detached call's reply is sent from the store's writer
     * thread, and once the batch is started the worker may complete and reuse the slot. */
    const char *path = c->method->path;
    int64_t us = s->opts.log_requests ? mono_us() - c->t0_us : 0;
    size_t req_len = c->req_len;
    c->state = CALL_SENDING;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
    if (e != GRPC_CALL_OK) {
        server__log(SERVER_LOG_ERROR, "start_batch_failed", "{s:s, s:s}", "method", c->method->path,
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
        server__log(code == GRPC_STATUS_OK ? SERVER_LOG_INFO : SERVER_LOG_WARN, "call",
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
        server__log(SERVER_LOG_ERROR, "start_batch_failed", "{s:s, s:s}", "method", c->method->path,
                    "error", grpc_call_error_to_string(e));
        return;
    }
    c->close_started = true;
    c->close_pending = true;
}

static void call_handle(server_call_t *c)
{
    server_worker_t *w = c->worker;
    server_t *s = w->srv;
    grpc_slice resp = grpc_empty_slice();
    const uint8_t *req = NULL;
    size_t req_len = 0;
    int rc;

    c->t0_us = s->opts.log_requests ? mono_us() : 0;
    c->msg[0] = '\0';
    c->req_len = 0;
    if (c->payload == NULL) {
        rc = server__fail(c, -EINVAL, "request message missing");
    } else if ((req_len = grpc_byte_buffer_length(c->payload)) > s->opts.limits.max_message_bytes) {
        /* gRPC's message-size filter is not in the minimal stack (see server_new()). */
        rc = server__fail(c, -EMSGSIZE,
                          "request message of %zu bytes is over --max-message-bytes %zu", req_len,
                          s->opts.limits.max_message_bytes);
    } else if ((rc = call_payload(c, &req, &req_len)) < 0) {
        rc = server__fail(c, rc, "cannot read the request message");
    } else {
        c->req_len = req_len;
        c->catalog = server__holder_enter(&s->holder, w->index);
        rc = c->method->fn(c, req, req_len, &resp);
        /* A detached call may already be finished, even requested again, by another thread:
         * it is not ours to touch any more (its catalog pointer is simply left stale). */
        if (rc != SERVER_DETACHED)
            c->catalog = NULL;
        server__holder_exit(&s->holder, w->index);
        if (rc == SERVER_DETACHED)
            return;
    }
    if (rc == SERVER_PENDING) {
        /* The reply waits for the client call's completion on this queue (call_event). */
        atomic_fetch_add(&s->pending_calls, 1);
        c->state = CALL_PENDING;
        call_watch_close(c);
        return;
    }
    call_reply(c, rc, resp);
}

void server__call_detach(server_call_t *c)
{
    atomic_fetch_add(&c->worker->srv->pending_calls, 1);
    c->state = CALL_PENDING;
}

void server__call_attach(server_call_t *c)
{
    c->state = CALL_REQUESTED;
    atomic_fetch_sub(&c->worker->srv->pending_calls, 1);
}

void server__call_complete(server_call_t *c, int rc, grpc_slice resp)
{
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
        int rc = c->resume(c, ok, &resp);
        call_reply(c, rc, resp);
        atomic_fetch_sub(&s->pending_calls, 1);
        return;
    }
    case CALL_SENDING:
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

static void *worker_main(void *arg)
{
    server_worker_t *w = arg;
    unsigned slice = w->srv->opts.sched_slice_us;
    if (slice != 0 && w->pool == SERVER_POOL_READ) {
        int rc = fstore_sched_slice(slice);
        if (rc < 0 && w->index == 0)
            server__log(SERVER_LOG_WARN, "sched_slice_unsupported", "{s:i, s:s}", "slice_us",
                        (int)slice, "error", strerror(-rc));
    }
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
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
/* Catalog: load, apply, swap                                                                  */

static void log_catalog_errors(const char *event, const char *path, int rc,
                               const catalog_errors_t *errs)
{
    json_t *arr = json_array();
    for (size_t i = 0; errs != NULL && i < errs->count && arr != NULL; i++) {
        const catalog_error_t *e = &errs->items[i];
        json_array_append_new(arr, json_pack("{s:s, s:i, s:i, s:s, s:s}", "file", e->file, "line",
                                             e->line, "column", e->column, "key", e->key, "message",
                                             e->message));
    }
    server__log(SERVER_LOG_ERROR, event, "{s:s, s:s, s:o*}", "catalog", path, "error",
                strerror(-rc), "errors", arr);
}

static void log_breaking(const char *event, const char *path, const catalog_plan_t *plan)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < plan->count && arr != NULL; i++) {
        const catalog_change_t *ch = &plan->items[i];
        if (!ch->breaking)
            continue;
        json_array_append_new(arr,
                              json_pack("{s:s, s:s}", "object", ch->object, "detail", ch->detail));
    }
    server__log(SERVER_LOG_ERROR, event, "{s:s, s:s, s:o*}", "catalog", path, "error",
                "breaking changes against the applied catalog (run fstore plan)", "breaking", arr);
}

/* Loads catalog_path and applies it to the store. Returns: 0 and *out, or a negative errno after
 * logging why under `event`. */
static int load_and_apply(server_t *s, const char *event, catalog_t **out)
{
    catalog_errors_t errs = {0};
    catalog_plan_t plan = {0};
    catalog_t *c = NULL;
    int rc = catalog_load(s->catalog_path, &c, &errs);
    if (rc < 0) {
        log_catalog_errors(event, s->catalog_path, rc, &errs);
        goto out;
    }
    rc = store_apply_catalog(s->store, c, &plan);
    if (rc == -EPERM) {
        log_breaking(event, s->catalog_path, &plan);
        goto out;
    }
    if (rc < 0) {
        server__log(SERVER_LOG_ERROR, event, "{s:s, s:s}", "catalog", s->catalog_path, "error",
                    strerror(-rc));
        goto out;
    }
    server__log(SERVER_LOG_INFO, "catalog_applied", "{s:s, s:s, s:s, s:I, s:I}", "catalog",
                s->catalog_path, "project", catalog_project(c), "digest", catalog_digest(c),
                "changes", (json_int_t)plan.count, "views", (json_int_t)catalog_view_count(c));
    *out = c;
    c = NULL;
out:
    catalog_unref(c);
    catalog_plan_clear(&plan);
    catalog_errors_clear(&errs);
    return rc;
}

static void reload(server_t *s)
{
    if (s->catalog_path == NULL) {
        server__log(SERVER_LOG_WARN, "catalog_reload_rejected", "{s:s}", "error",
                    "no --catalog to reload from; the applied catalog keeps serving");
        atomic_fetch_add(&s->reloads_rejected, 1);
        return;
    }
    catalog_t *c = NULL;
    if (load_and_apply(s, "catalog_reload_rejected", &c) < 0) {
        atomic_fetch_add(&s->reloads_rejected, 1);
        return;
    }
    if (server__holder_swap(&s->holder, c) < 0) {
        server__log(SERVER_LOG_ERROR, "catalog_reload_rejected", "{s:s}", "error", "out of memory");
        atomic_fetch_add(&s->reloads_rejected, 1);
        return;
    }
    atomic_fetch_add(&s->reloads_applied, 1);
    server__log(SERVER_LOG_INFO, "catalog_reloaded", "{s:s}", "catalog", s->catalog_path);
}

void server_reload_counts(const server_t *s, uint64_t *applied, uint64_t *rejected)
{
    server_t *m = (server_t *)s;
    *applied = atomic_load(&m->reloads_applied);
    *rejected = atomic_load(&m->reloads_rejected);
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
    unsigned n_read = s->opts.workers;
    if (n_read == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n_read = cpus > 0 ? (unsigned)cpus : 1;
    }
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
        if (w->pool == SERVER_POOL_READ && (server__ref_cache_new(&w->ref_cache) < 0 ||
                                            server__predict_cache_new(&w->predict_cache) < 0))
            return -ENOMEM;
        grpc_server_register_completion_queue(s->grpc, w->cq, NULL);
        size_t n_calls = 0;
        for (size_t m = 0; m < N_METHODS; m++) {
            if (methods[m].pool == w->pool)
                n_calls += methods[m].slots;
        }
        w->calls = calloc(n_calls, sizeof *w->calls);
        if (w->calls == NULL)
            return -ENOMEM;
        w->n_calls = n_calls;
        size_t k = 0;
        for (size_t m = 0; m < N_METHODS; m++) {
            if (methods[m].pool != w->pool)
                continue;
            for (unsigned j = 0; j < methods[m].slots; j++, k++) {
                server_call_t *c = &w->calls[k];
                c->worker = w;
                c->method = &methods[m];
                c->registered = s->handles[m];
                c->details = grpc_empty_slice();
                grpc_metadata_array_init(&c->md);
                /* Reads of many rows need room; writes and small calls start small. */
                bool big = methods[m].fn == server__rpc_get_online_features ||
                           methods[m].fn == server__rpc_predict;
                server__arena_init(&c->arena, big ? 64 * 1024 : 16 * 1024);
            }
        }
    }
    return 0;
}

static int open_catalog(server_t *s, catalog_t **out)
{
    if (s->catalog_path != NULL)
        return load_and_apply(s, "catalog_rejected", out);
    int rc = store_applied_catalog(s->store, out);
    if (rc == -ENOENT) {
        server__log(SERVER_LOG_ERROR, "no_catalog", "{s:s, s:s}", "data_dir", s->data_dir, "error",
                    "no catalog applied to this data directory: pass --catalog");
    } else if (rc < 0) {
        server__log(SERVER_LOG_ERROR, "no_catalog", "{s:s, s:s}", "data_dir", s->data_dir, "error",
                    strerror(-rc));
    }
    return rc;
}

int server_new(const server_options_t *o, server_t **out)
{
    int rc = 0;
    catalog_t *cat = NULL;
    server_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->opts = *o;
    s->listen = dup_or_null(o->listen != NULL ? o->listen : SERVER_DEFAULT_LISTEN);
    s->catalog_path = dup_or_null(o->catalog_path);
    s->data_dir = dup_or_null(o->data_dir);
    s->shutdown_tag.fn = on_shutdown;
    atomic_init(&s->health, HEALTH_NOT_SERVING);
    if (s->listen == NULL || (o->catalog_path != NULL && s->catalog_path == NULL) ||
        (o->data_dir != NULL && s->data_dir == NULL)) {
        rc = -ENOMEM;
        goto out;
    }
    if (s->data_dir == NULL) {
        server__log(SERVER_LOG_ERROR, "bad_options", "{s:s}", "error", "--data-dir is required");
        rc = -EINVAL;
        goto out;
    }

    store_options_t so = {.dir = s->data_dir, .sync = o->sync};
    rc = store_open(&so, &s->store);
    if (rc < 0) {
        server__log(SERVER_LOG_ERROR, "store_open_failed", "{s:s, s:s}", "data_dir", s->data_dir,
                    "error", strerror(-rc));
        goto out;
    }
    rc = open_catalog(s, &cat);
    if (rc < 0)
        goto out;

    /* gRPC takes message limits as int (the Predict upstream channel gets max_response_bytes):
     * larger settings mean "as large as gRPC allows", and our own checks use the same numbers. */
    if (s->opts.limits.max_message_bytes > (size_t)INT32_MAX)
        s->opts.limits.max_message_bytes = INT32_MAX;
    if (s->opts.limits.max_response_bytes > (size_t)INT32_MAX)
        s->opts.limits.max_response_bytes = INT32_MAX;

    bool lean_mutexes = fstore_grpc_init();
    s->grpc_inited = true;
    if (!lean_mutexes)
        server__log(SERVER_LOG_INFO, "absl_deadlock_detection", "{s:s}", "note",
                    "abseil mutex deadlock detection stays on (FSTORE_ABSL_DEADLOCK_DETECTION=1, "
                    "or not found in the abseil gRPC links against)");
    grpc_arg args[3];
    memset(args, 0, sizeof args);
    /* gRPC sets SO_REUSEPORT by default, which lets a second server bind a port that is already
     * serving and silently split its traffic. A busy port must fail loudly instead. */
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[0].value.integer = 0;
    /* Nothing here serves channelz, and it counts every call on shared atomics. */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_ENABLE_CHANNELZ;
    args[1].value.integer = 0;
    /* The minimal filter stack: no server-side deadline timer per call (handlers answer at once,
     * and a Predict passthrough carries the caller's deadline to its upstream) and no
     * message-size filter, so gRPC's max message length arguments would not be enforced:
     * call_handle() refuses requests over --max-message-bytes (naming the flag) and
     * server__response_slice() bounds responses. About 2.7k fewer instructions per 1 x 50 read
     * (callgrind). Compressed requests still decompress (the call surface does it). */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MINIMAL_STACK;
    args[2].value.integer = 1;
    grpc_channel_args ch_args = {.num_args = 3, .args = args};
    s->grpc = grpc_server_create(&ch_args, NULL);
    s->ctl_cq = queue_new(false);
    if (s->grpc == NULL || s->ctl_cq == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    grpc_server_register_completion_queue(s->grpc, s->ctl_cq, NULL);
    for (size_t m = 0; m < N_METHODS; m++) {
        s->handles[m] = grpc_server_register_method(s->grpc, methods[m].path, NULL,
                                                    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (s->handles[m] == NULL) {
            rc = -ENOMEM;
            goto out;
        }
    }
    rc = server__watch_init(s, s->grpc, s->ctl_cq, &s->watches);
    if (rc < 0)
        goto out;
    rc = server__unknown_init(s->grpc, s->ctl_cq, &s->unknown);
    if (rc < 0)
        goto out;
    rc = server__upstreams_new(s->opts.limits.max_response_bytes, &s->upstreams);
    if (rc < 0)
        goto out;
    rc = setup_workers(s);
    if (rc < 0)
        goto out;
    rc = server__holder_init(&s->holder, cat, s->n_workers);
    if (rc < 0)
        goto out;
    cat = NULL;
    s->holder_ready = true;

    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    s->port = grpc_server_add_http2_port(s->grpc, s->listen, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        server__log(SERVER_LOG_ERROR, "listen_failed", "{s:s, s:s}", "address", s->listen, "error",
                    "cannot bind the address (in use by another process, or invalid)");
        rc = -EADDRINUSE;
        goto out;
    }
    *out = s;
    s = NULL;
out:
    catalog_unref(cat);
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
    for (unsigned i = 0; i < s->opts.workers; i++) {
        rc = store_reader_new(s->store, &s->workers[i].reader);
        if (rc < 0) {
            server__log(SERVER_LOG_ERROR, "reader_failed", "{s:s}", "error", strerror(-rc));
            return rc;
        }
    }
    grpc_server_start(s->grpc);
    s->grpc_started = true;
    for (unsigned i = 0; i < s->n_workers; i++) {
        server_worker_t *w = &s->workers[i];
        for (size_t k = 0; k < w->n_calls; k++)
            call_request(&w->calls[k]);
    }
    server__watch_start(s->watches);
    server__unknown_start(s->unknown);
    for (unsigned i = 0; i < s->n_workers; i++) {
        server_worker_t *w = &s->workers[i];
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e != 0) {
            server__log(SERVER_LOG_ERROR, "worker_failed", "{s:s}", "error", strerror(e));
            rc = -e;
            server_request_stop(s);
            break;
        }
        w->started = true;
    }

    /* A stop that came while starting: never SERVING, so no load balancer needs the delay. */
    bool served = rc == 0 && atomic_load(&s->stop_requested) == 0;
    if (served) {
        atomic_store(&s->health, HEALTH_SERVING);
        server__watch_notify(s->watches);
        catalog_t *c = server__holder_ref(&s->holder);
        server__log(SERVER_LOG_INFO, "serving", "{s:s, s:i, s:s, s:s, s:i, s:i, s:s}", "address",
                    s->listen, "port", s->port, "data_dir", s->data_dir, "digest",
                    catalog_digest(c), "workers", (int)s->opts.workers, "write_workers",
                    (int)s->opts.write_workers, "version", FSTORE_VERSION);
        catalog_unref(c);
    }

    bool cancelled = false;
    bool stopping = false;
    int64_t delay_end = 0;
    int64_t grace_end = 0;
    while (!s->grpc_shutdown_done) {
        ctl_poll(s, stopping && !atomic_load(&s->draining) ? 10 : 100);
        int stop = atomic_load(&s->stop_requested);
        if (stop > 0 && !stopping) {
            /* Health first, so load balancers move away while calls are still accepted. */
            stopping = true;
            atomic_store(&s->health, HEALTH_NOT_SERVING);
            server__watch_notify(s->watches);
            delay_end = mono_us() + (served ? (int64_t)s->opts.drain_delay_ms * 1000 : 0);
            if (served && s->opts.drain_delay_ms > 0)
                server__log(SERVER_LOG_INFO, "drain_delay", "{s:i}", "delay_ms",
                            (int)s->opts.drain_delay_ms);
        }
        if (stopping && !atomic_load(&s->draining) && (stop > 1 || mono_us() >= delay_end)) {
            atomic_store(&s->draining, true);
            server__log(SERVER_LOG_INFO, "draining", "{s:i}", "grace_ms",
                        (int)s->opts.shutdown_grace_ms);
            server__watch_drain(s->watches);
            grpc_server_shutdown_and_notify(s->grpc, s->ctl_cq, &s->shutdown_tag);
            grace_end = mono_us() + (int64_t)s->opts.shutdown_grace_ms * 1000;
        }
        if (atomic_load(&s->draining) && !cancelled && (stop > 1 || mono_us() > grace_end)) {
            server__log(SERVER_LOG_WARN, "cancelling_calls", "{s:s}", "reason",
                        stop > 1 ? "second stop request" : "shutdown grace period over");
            grpc_server_cancel_all_calls(s->grpc);
            cancelled = true;
        }
        if (!stopping && atomic_exchange(&s->reload_requested, 0))
            reload(s);
        server__holder_collect(&s->holder);
    }
    stop_workers(s);
    /* The writer's counters: batches / commits is the group-commit factor of this run. */
    store_stats_t st = {0};
    if (store_stat(s->store, &st) == 0)
        server__log(SERVER_LOG_INFO, "stopped", "{s:I, s:I}", "commits", (json_int_t)st.commits,
                    "write_batches", (json_int_t)st.batches);
    else
        server__log(SERVER_LOG_INFO, "stopped", NULL);
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
    server__unknown_free(s->unknown);
    /* After stop_workers(): every server call has ended, so no client call is left. */
    server__upstreams_free(s->upstreams);
    for (unsigned i = 0; s->workers != NULL && i < s->n_workers; i++) {
        server_worker_t *w = &s->workers[i];
        if (w->cq != NULL)
            grpc_completion_queue_destroy(w->cq);
        for (size_t k = 0; k < w->n_calls; k++) {
            grpc_metadata_array_destroy(&w->calls[k].md);
            grpc_slice_unref(w->calls[k].details);
            server__arena_free(&w->calls[k].arena);
        }
        free(w->calls);
        store_reader_free(w->reader);
        server__ref_cache_free(w->ref_cache);
        server__predict_cache_free(w->predict_cache);
    }
    free(s->workers);
    if (s->holder_ready)
        server__holder_destroy(&s->holder);
    store_close(s->store);
    if (s->grpc_inited)
        grpc_shutdown();
    free(s->listen);
    free(s->catalog_path);
    free(s->data_dir);
    free(s);
}
