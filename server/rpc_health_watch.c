/* server/rpc_health_watch.c - grpc.health.v1.Health/Watch: a status stream per watcher. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

#include "grpc/health/v1/health.pb-c.h"

/*
 * Watch is server streaming and lives as long as the client wants, so it cannot hold a worker's
 * call slot. Watches run on the control thread instead: every state change below happens on that
 * thread, so the list needs no lock. Each watch has up to three operations in flight, each with
 * its own tag: a send of the current status, RECV_CLOSE_ON_SERVER (completes when the client
 * cancels or the call ends), and at the end SEND_STATUS_FROM_SERVER. The watch is freed once the
 * close and the final status have both completed.
 *
 * What a client can make it hold is bounded: one request is always outstanding, and a watcher
 * matched while max_watches are open is refused at once (RESOURCE_EXHAUSTED: initial metadata
 * and the status, no message, so no flow-control window is needed), so
 * watchers past the bound neither wait nor pile up; a watcher that stops reading (its window at
 * 0) has its update outstanding, and is ended once that has waited max_send_ms.
 */

#define SERVICE_MAX 256

typedef struct watch watch_t;

typedef struct watch_tag {
    server_tag_t tag;
    watch_t *w;
} watch_tag_t;

struct watch {
    server_watches_t *owner;
    watch_t *prev, *next;
    watch_tag_t t_new, t_send, t_close, t_status;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *out;
    char service[SERVICE_MAX];
    int64_t t0_us;      /* when the call was matched, for its duration */
    int64_t send_t0_us; /* when the update in flight was started */
    int last_sent;      /* -1 = nothing sent yet */
    int cancelled;
    bool active;  /* a call was matched and counts in n_active */
    bool refused; /* a call was matched past max_watches: it only gets its status */
    bool stalled; /* its update was not taken within max_send_ms: cancelled */
    bool sending;
    bool closed;      /* RECV_CLOSE_ON_SERVER completed */
    bool status_sent; /* SEND_STATUS_FROM_SERVER started */
    bool status_done;
};

struct server_watches {
    core_t *core;
    grpc_server *grpc;
    grpc_completion_queue *cq;
    void *handle;
    method_stats_t *stats;
    server__stream_bounds_t bounds; /* max_streams: SERVER_DEFAULT_MAX_WATCHES for 0 */
    int64_t logged_us;              /* the last reply_not_taken line (at most one a minute) */
    watch_t *head;                  /* every watch, active, refused or pending */
    size_t n_active;
    size_t n_pending;
    bool draining;
};

static void on_new(server_tag_t *t, bool ok);
static void on_send(server_tag_t *t, bool ok);
static void on_close(server_tag_t *t, bool ok);
static void on_status(server_tag_t *t, bool ok);

int server__watch_init(core_t *core, grpc_server *gs, grpc_completion_queue *cq,
                       method_stats_t *stats, const server__stream_bounds_t *b,
                       server_watches_t **out)
{
    server_watches_t *ws = calloc(1, sizeof *ws);
    if (ws == NULL)
        return -ENOMEM;
    ws->core = core;
    ws->stats = stats;
    ws->bounds = *b;
    if (ws->bounds.max_streams == 0)
        ws->bounds.max_streams = SERVER_DEFAULT_MAX_WATCHES;
    ws->logged_us = INT64_MIN / 2;
    ws->grpc = gs;
    ws->cq = cq;
    ws->handle = grpc_server_register_method(gs, "/grpc.health.v1.Health/Watch", NULL,
                                             GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    if (ws->handle == NULL) {
        free(ws);
        return -ENOMEM;
    }
    *out = ws;
    return 0;
}

static void unlink_watch(watch_t *w)
{
    server_watches_t *ws = w->owner;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        ws->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
}

static void request_one(server_watches_t *ws);

static void free_watch(watch_t *w)
{
    server_watches_t *ws = w->owner;
    unlink_watch(w);
    if (w->payload != NULL)
        grpc_byte_buffer_destroy(w->payload);
    if (w->out != NULL)
        grpc_byte_buffer_destroy(w->out);
    if (w->call != NULL)
        grpc_call_unref(w->call);
    grpc_metadata_array_destroy(&w->md);
    bool was_active = w->active;
    if (was_active || w->refused) {
        grpc_status_code code = w->refused || w->stalled ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                : w->cancelled           ? GRPC_STATUS_CANCELLED
                                                         : GRPC_STATUS_OK;
        server__count_handled(ws->stats, code, base_mono_us() - w->t0_us);
    }
    bool was_matched = was_active || w->refused;
    free(w);
    if (was_active)
        ws->n_active--;
    if (was_matched)
        request_one(ws); /* in case the last request could not be made */
}

/* Keeps one request outstanding so the next watcher is matched at once (and, past
 * max_watches, refused at once). */
static void request_one(server_watches_t *ws)
{
    if (ws->draining || ws->n_pending > 0)
        return;
    watch_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        base_log(BASE_LOG_ERROR, "watch_request_failed", "{s:s}", "error", "out of memory");
        return;
    }
    w->owner = ws;
    w->last_sent = -1;
    w->t_new = (watch_tag_t){{on_new}, w};
    w->t_send = (watch_tag_t){{on_send}, w};
    w->t_close = (watch_tag_t){{on_close}, w};
    w->t_status = (watch_tag_t){{on_status}, w};
    grpc_metadata_array_init(&w->md);
    w->next = ws->head;
    if (ws->head != NULL)
        ws->head->prev = w;
    ws->head = w;
    grpc_call_error e =
        grpc_server_request_registered_call(ws->grpc, ws->handle, &w->call, &w->deadline, &w->md,
                                            &w->payload, ws->cq, ws->cq, &w->t_new.tag);
    if (e != GRPC_CALL_OK)
        free_watch(w);
    else
        ws->n_pending++;
}

void server__watch_start(server_watches_t *ws)
{
    request_one(ws);
}

static void parse_service(watch_t *w)
{
    w->service[0] = '\0';
    if (w->payload == NULL)
        return;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, w->payload))
        return;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    Grpc__Health__V1__HealthCheckRequest *req = grpc__health__v1__health_check_request__unpack(
        NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    if (req == NULL)
        return;
    snprintf(w->service, sizeof w->service, "%s", req->service);
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
}

static void send_status_update(watch_t *w)
{
    int st = server__health_status(w->owner->core, w->service);
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
    /* A status is one enum field: a few bytes, packed on the stack (this is no server call, so
     * it has no response limit to check against). */
    uint8_t buf[16];
    size_t n_buf = grpc__health__v1__health_check_response__pack(&resp, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, n_buf);
    w->out = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);

    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (w->last_sent < 0)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = w->out;
    w->last_sent = st;
    w->sending = true;
    w->send_t0_us = base_mono_us();
    if (grpc_call_start_batch(w->call, ops, n, &w->t_send.tag, NULL) != GRPC_CALL_OK) {
        w->sending = false;
        grpc_byte_buffer_destroy(w->out);
        w->out = NULL;
    }
}

static void maybe_finish(watch_t *w)
{
    if (w->sending || w->status_sent)
        return;
    if (!w->closed && !w->owner->draining && !w->refused)
        return;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    /* A refused watch's status goes with initial metadata: with gRPC 1.51 a status sent alone
     * never reaches the client (as rpc_unimplemented.c found). */
    if (w->last_sent < 0)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    grpc_op *op = &ops[n++];
    op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op->data.send_status_from_server.status = GRPC_STATUS_OK;
    grpc_slice details;
    if (w->refused) {
        details = grpc_slice_from_static_string(
            "too many Health/Watch streams open on this server (--grpc-max-watches)");
        op->data.send_status_from_server.status = GRPC_STATUS_RESOURCE_EXHAUSTED;
        op->data.send_status_from_server.status_details = &details;
    }
    w->status_sent = true;
    if (grpc_call_start_batch(w->call, ops, n, &w->t_status.tag, NULL) != GRPC_CALL_OK)
        w->status_done = true;
    if (w->status_done && w->closed)
        free_watch(w);
}

static void on_new(server_tag_t *t, bool ok)
{
    watch_t *w = ((watch_tag_t *)t)->w;
    server_watches_t *ws = w->owner;
    ws->n_pending--;
    if (!ok) {
        /* Shutdown: the pending request is over. */
        free_watch(w);
        return;
    }
    w->t0_us = base_mono_us();
    atomic_fetch_add_explicit(&ws->stats->started, 1, memory_order_relaxed);
    if (ws->n_active >= ws->bounds.max_streams)
        w->refused = true;
    else {
        w->active = true;
        ws->n_active++;
    }
    request_one(ws);

    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &w->cancelled;
    if (grpc_call_start_batch(w->call, &op, 1, &w->t_close.tag, NULL) != GRPC_CALL_OK)
        w->closed = true;
    if (w->refused) {
        maybe_finish(w); /* metadata and status, no message: no flow-control window needed */
        return;
    }
    parse_service(w);
    send_status_update(w);
    maybe_finish(w);
}

static void on_send(server_tag_t *t, bool ok)
{
    watch_t *w = ((watch_tag_t *)t)->w;
    w->sending = false;
    if (w->out != NULL)
        grpc_byte_buffer_destroy(w->out);
    w->out = NULL;
    if (ok && !w->closed && server__health_status(w->owner->core, w->service) != w->last_sent) {
        send_status_update(w);
        return;
    }
    maybe_finish(w);
}

static void on_close(server_tag_t *t, bool ok)
{
    (void)ok;
    watch_t *w = ((watch_tag_t *)t)->w;
    w->closed = true;
    if (w->status_done) {
        free_watch(w);
        return;
    }
    maybe_finish(w);
}

static void on_status(server_tag_t *t, bool ok)
{
    (void)ok;
    watch_t *w = ((watch_tag_t *)t)->w;
    w->status_done = true;
    if (w->closed)
        free_watch(w);
}

/* Cancels w, whose update the client has not taken within max_send_ms (its window stays at 0):
 * the cancellation completes the send and the close, and those free it. */
static void end_stalled(watch_t *w, int64_t now)
{
    server_watches_t *ws = w->owner;
    w->stalled = true;
    server__stream_not_taken(&ws->bounds, "/grpc.health.v1.Health/Watch", &ws->logged_us, now);
    grpc_call_cancel_with_status(w->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                 "Health/Watch update not taken within --grpc-max-send-ms", NULL);
}

void server__watch_notify(server_watches_t *ws)
{
    request_one(ws); /* again, if the last attempt could not be made (out of memory) */
    int64_t now = base_mono_us();
    watch_t *w = ws->head;
    while (w != NULL) {
        watch_t *next = w->next;
        if (w->active && w->sending && !w->stalled && !w->closed && ws->bounds.max_send_ms > 0 &&
            now - w->send_t0_us > (int64_t)ws->bounds.max_send_ms * 1000)
            end_stalled(w, now);
        else if (w->active && !w->sending && !w->closed && !w->status_sent && !w->stalled &&
                 server__health_status(ws->core, w->service) != w->last_sent)
            send_status_update(w);
        w = next;
    }
}

void server__watch_drain(server_watches_t *ws)
{
    if (ws->draining)
        return;
    ws->draining = true;
    /* A last NOT_SERVING first (health is already NOT_SERVING), then the end of the stream. */
    server__watch_notify(ws);
    watch_t *w = ws->head;
    while (w != NULL) {
        watch_t *next = w->next;
        if (w->active)
            maybe_finish(w);
        w = next;
    }
}

void server__watch_free(server_watches_t *ws)
{
    if (ws == NULL)
        return;
    /* Only pending requests can remain (their calls were never matched); free them. */
    watch_t *w = ws->head;
    while (w != NULL) {
        watch_t *next = w->next;
        free_watch(w);
        w = next;
    }
    free(ws);
}
