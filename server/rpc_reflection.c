/* server/rpc_reflection.c - gRPC server reflection, grpc.reflection.v1 and v1alpha. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "reflection_table.h"

/*
 * ServerReflectionInfo is a bidirectional stream: each request (list the services, a file by
 * name, the file defining a symbol) gets one response, from a table built at compile time
 * (protos/reflection_table.py: every file fstore serves, serialized, with its imports). v1alpha
 * and v1 have the same messages field for field, so one encoder answers both paths. Like
 * Health/Watch, streams run on the control thread, one request at a time each (receive, answer,
 * receive), and a stream's requests are bounded in size by the request limit. What a client can
 * make them hold is bounded as for Watch: one request is always outstanding per path, a stream
 * matched while bounds.max_streams are open is refused at once (RESOURCE_EXHAUSTED, a status
 * with its initial metadata), an answer not taken within bounds.max_send_ms ends its stream, and
 * so does a stream that waits longer than bounds.idle_s for its next request
 * (server__reflection_tick()).
 */

static const char *const services[] = {
    "feast.serving.ServingService",         "fstore.v1.OnlineFeatureService",
    "tensorflow.serving.PredictionService", "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",  "grpc.reflection.v1alpha.ServerReflection",
};

typedef struct refl refl_t;

typedef struct refl_tag {
    server_tag_t tag;
    refl_t *r;
} refl_tag_t;

struct refl {
    server_reflection_t *owner;
    refl_t *next;
    int path; /* which registered method */
    refl_tag_t t_new, t_recv, t_send, t_close, t_status;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *in, *out;
    int cancelled;
    int64_t t0_us;            /* when the call was matched, for its duration */
    int64_t op_t0_us;         /* when the receive or send in flight (busy) started */
    grpc_status_code outcome; /* the status finish() sent */
    bool active, closed, status_sent, status_done, busy;
    bool sending; /* busy with a send (else with a receive) */
    bool md_sent; /* the initial metadata went (with the first receive) */
    bool refused; /* matched past max_streams: it only gets its status */
    bool bounded; /* ended by a bound (idle, or an answer not taken) */
};

struct server_reflection {
    grpc_server *grpc;
    grpc_completion_queue *cq;
    void *handle[2];
    refl_t *head;
    size_t n_active, n_pending[2];
    size_t max_request;
    server__stream_bounds_t bounds; /* max_streams: SERVER_DEFAULT_MAX_REFLECTION_STREAMS for 0 */
    int64_t logged_us;              /* the last reply_not_taken line (at most one a minute) */
    int64_t ticked_us;              /* the last server__reflection_tick() sweep */
    method_stats_t *stats;          /* [2]: by path */
    bool draining;
};

static void on_new(server_tag_t *t, bool ok);
static void on_recv(server_tag_t *t, bool ok);
static void on_send(server_tag_t *t, bool ok);
static void on_close(server_tag_t *t, bool ok);
static void on_status(server_tag_t *t, bool ok);

int server__reflection_init(grpc_server *gs, grpc_completion_queue *cq, size_t max_request,
                            method_stats_t *stats, const server__stream_bounds_t *b,
                            server_reflection_t **out)
{
    server_reflection_t *rs = calloc(1, sizeof *rs);
    if (rs == NULL)
        return -ENOMEM;
    rs->stats = stats;
    rs->bounds = *b;
    if (rs->bounds.max_streams == 0)
        rs->bounds.max_streams = SERVER_DEFAULT_MAX_REFLECTION_STREAMS;
    rs->logged_us = INT64_MIN / 2;
    rs->grpc = gs;
    rs->cq = cq;
    rs->max_request = max_request;
    rs->handle[0] =
        grpc_server_register_method(gs, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                    NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    rs->handle[1] = grpc_server_register_method(
        gs, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", NULL,
        GRPC_SRM_PAYLOAD_NONE, 0);
    if (rs->handle[0] == NULL || rs->handle[1] == NULL) {
        free(rs);
        return -ENOMEM;
    }
    *out = rs;
    return 0;
}

static void request_one(server_reflection_t *rs, int path);

static void free_refl(refl_t *r)
{
    server_reflection_t *rs = r->owner;
    for (refl_t **pp = &rs->head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    if (r->in != NULL)
        grpc_byte_buffer_destroy(r->in);
    if (r->out != NULL)
        grpc_byte_buffer_destroy(r->out);
    if (r->call != NULL)
        grpc_call_unref(r->call);
    grpc_metadata_array_destroy(&r->md);
    bool was_active = r->active, was_matched = r->active || r->refused;
    int path = r->path;
    if (was_matched)
        server__count_handled(&rs->stats[path],
                              r->bounded || r->refused          ? GRPC_STATUS_RESOURCE_EXHAUSTED
                              : r->cancelled || !r->status_sent ? GRPC_STATUS_CANCELLED
                                                                : r->outcome,
                              base_mono_us() - r->t0_us);
    free(r);
    if (was_active)
        rs->n_active--;
    if (was_matched) { /* in case a request could not be made */
        request_one(rs, path);
        request_one(rs, 1 - path);
    }
}

static void request_one(server_reflection_t *rs, int path)
{
    if (rs->draining || rs->n_pending[path] > 0)
        return;
    refl_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return;
    r->owner = rs;
    r->path = path;
    r->t_new = (refl_tag_t){{on_new}, r};
    r->t_recv = (refl_tag_t){{on_recv}, r};
    r->t_send = (refl_tag_t){{on_send}, r};
    r->t_close = (refl_tag_t){{on_close}, r};
    r->t_status = (refl_tag_t){{on_status}, r};
    grpc_metadata_array_init(&r->md);
    r->next = rs->head;
    rs->head = r;
    if (grpc_server_request_registered_call(rs->grpc, rs->handle[path], &r->call, &r->deadline,
                                            &r->md, NULL, rs->cq, rs->cq,
                                            &r->t_new.tag) != GRPC_CALL_OK)
        free_refl(r);
    else
        rs->n_pending[path]++;
}

void server__reflection_start(server_reflection_t *rs)
{
    request_one(rs, 0);
    request_one(rs, 1);
}

static void finish(refl_t *r, grpc_status_code code, const char *msg)
{
    if (r->status_sent || r->busy)
        return;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    /* A status sent alone never reaches the client with gRPC 1.51 (rpc_unimplemented.c). */
    if (!r->md_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    grpc_slice details = grpc_slice_from_static_string(msg);
    grpc_op *op = &ops[n++];
    op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op->data.send_status_from_server.status = code;
    op->data.send_status_from_server.status_details = msg[0] != '\0' ? &details : NULL;
    r->status_sent = true;
    r->outcome = code;
    if (grpc_call_start_batch(r->call, ops, n, &r->t_status.tag, NULL) != GRPC_CALL_OK)
        r->status_done = true;
    if (r->status_done && r->closed)
        free_refl(r);
}

static void start_recv(refl_t *r)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &r->in;
    r->busy = true;
    r->sending = false;
    r->op_t0_us = base_mono_us();
    if (grpc_call_start_batch(r->call, &op, 1, &r->t_recv.tag, NULL) != GRPC_CALL_OK) {
        r->busy = false;
        finish(r, GRPC_STATUS_INTERNAL, "cannot receive");
    }
}

static void on_new(server_tag_t *t, bool ok)
{
    refl_t *r = ((refl_tag_t *)t)->r;
    server_reflection_t *rs = r->owner;
    rs->n_pending[r->path]--;
    if (!ok) {
        free_refl(r);
        return;
    }
    r->t0_us = base_mono_us();
    atomic_fetch_add_explicit(&rs->stats[r->path].started, 1, memory_order_relaxed);
    if (rs->n_active >= rs->bounds.max_streams) {
        r->refused = true;
    } else {
        r->active = true;
        rs->n_active++;
    }
    request_one(rs, r->path);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &r->cancelled;
    if (grpc_call_start_batch(r->call, ops, 1, &r->t_close.tag, NULL) != GRPC_CALL_OK)
        r->closed = true;
    if (r->refused) {
        finish(r, GRPC_STATUS_RESOURCE_EXHAUSTED,
               "too many reflection streams open on this server "
               "(--grpc-max-reflection-streams)");
        return;
    }
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &r->in;
    r->busy = true;
    r->sending = false;
    r->op_t0_us = base_mono_us();
    if (grpc_call_start_batch(r->call, ops, 2, &r->t_recv.tag, NULL) != GRPC_CALL_OK) {
        r->busy = false;
        finish(r, GRPC_STATUS_INTERNAL, "cannot receive");
        return;
    }
    r->md_sent = true;
}

/* Adds file i and, first, everything it imports (each file once per answer). */
static void add_file(size_t i, bool *seen, ProtobufCBinaryData *out, size_t *n)
{
    if (seen[i])
        return;
    seen[i] = true;
    const fstore_refl_file_t *f = &fstore_refl_files[i];
    for (size_t d = 0; d < f->n_deps; d++)
        add_file(f->deps[d], seen, out, n);
    out[(*n)++] = (ProtobufCBinaryData){f->len, (uint8_t *)f->proto};
}

static int cmp_symbol(const void *key, const void *elem)
{
    return strcmp(key, ((const fstore_refl_symbol_t *)elem)->name);
}

/* The answer to one request, packed. Returns: its bytes (malloc'd), or NULL. */
static uint8_t *answer(const Grpc__Reflection__V1__ServerReflectionRequest *rq, size_t *len)
{
    Grpc__Reflection__V1__ServerReflectionResponse resp =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    resp.valid_host = rq->host;
    resp.original_request = (Grpc__Reflection__V1__ServerReflectionRequest *)rq;
    Grpc__Reflection__V1__ListServiceResponse list =
        GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1__ServiceResponse svc[sizeof services / sizeof services[0]];
    Grpc__Reflection__V1__ServiceResponse *svcp[sizeof services / sizeof services[0]];
    Grpc__Reflection__V1__FileDescriptorResponse files =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ExtensionNumberResponse ext =
        GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
    Grpc__Reflection__V1__ErrorResponse err = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    char msg[320];
    bool *seen = calloc(fstore_refl_n_files + 1, sizeof *seen);
    ProtobufCBinaryData *fdp = calloc(fstore_refl_n_files + 1, sizeof *fdp);
    if (seen == NULL || fdp == NULL) {
        free(seen);
        free(fdp);
        return NULL;
    }
    long file = -1;
    const char *what = "";
    switch (rq->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
            grpc__reflection__v1__service_response__init(&svc[i]);
            svc[i].name = (char *)services[i];
            svcp[i] = &svc[i];
        }
        list.n_service = sizeof services / sizeof services[0];
        list.service = svcp;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &list;
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        what = rq->file_by_filename;
        for (size_t i = 0; i < fstore_refl_n_files; i++) {
            if (strcmp(fstore_refl_files[i].name, what) == 0)
                file = (long)i;
        }
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
        what = rq->file_containing_symbol;
        const fstore_refl_symbol_t *s = bsearch(what, fstore_refl_symbols, fstore_refl_n_symbols,
                                                sizeof *fstore_refl_symbols, cmp_symbol);
        if (s != NULL)
            file = s->file;
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        /* No served message declares extension ranges: a known type has none. */
        if (bsearch(rq->all_extension_numbers_of_type, fstore_refl_symbols, fstore_refl_n_symbols,
                    sizeof *fstore_refl_symbols, cmp_symbol) != NULL) {
            ext.base_type_name = rq->all_extension_numbers_of_type;
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
            resp.all_extension_numbers_response = &ext;
            break;
        }
        what = rq->all_extension_numbers_of_type;
        break;
    default:
        break;
    }
    if (file >= 0) {
        files.n_file_descriptor_proto = 0;
        add_file((size_t)file, seen, fdp, &files.n_file_descriptor_proto);
        files.file_descriptor_proto = fdp;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &files;
    } else if (resp.message_response_case ==
               GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET) {
        err.error_code = GRPC_STATUS_NOT_FOUND;
        if (rq->message_request_case ==
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION)
            snprintf(msg, sizeof msg, "extensions are not supported");
        else if (rq->message_request_case ==
                 GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__NOT_SET)
            snprintf(msg, sizeof msg, "no request");
        else
            snprintf(msg, sizeof msg, "not found: %.200s", what);
        err.error_message = msg;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &err;
    }
    size_t n = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
    uint8_t *buf = malloc(n + 1);
    if (buf != NULL)
        grpc__reflection__v1__server_reflection_response__pack(&resp, buf);
    *len = n;
    free(seen);
    free(fdp);
    return buf;
}

static void on_recv(server_tag_t *t, bool ok)
{
    refl_t *r = ((refl_tag_t *)t)->r;
    r->busy = false;
    if (r->owner->draining && ok && r->in != NULL && !r->closed) {
        finish(r, GRPC_STATUS_UNAVAILABLE, "the server is shutting down");
        return;
    }
    if (!ok || r->in == NULL || r->closed || r->owner->draining) {
        /* The client half-closed (or went away): the stream ends. */
        finish(r, GRPC_STATUS_OK, "");
        return;
    }
    grpc_byte_buffer_reader reader;
    grpc_slice all = grpc_empty_slice();
    if (grpc_byte_buffer_reader_init(&reader, r->in)) {
        all = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
    }
    grpc_byte_buffer_destroy(r->in);
    r->in = NULL;
    if (GRPC_SLICE_LENGTH(all) > r->owner->max_request) {
        grpc_slice_unref(all);
        finish(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "reflection request over --max-message-bytes");
        return;
    }
    Grpc__Reflection__V1__ServerReflectionRequest *rq =
        grpc__reflection__v1__server_reflection_request__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                                GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    if (rq == NULL) {
        finish(r, GRPC_STATUS_INVALID_ARGUMENT, "malformed ServerReflectionRequest");
        return;
    }
    size_t len = 0;
    uint8_t *buf = answer(rq, &len);
    grpc__reflection__v1__server_reflection_request__free_unpacked(rq, NULL);
    if (buf == NULL) {
        finish(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
    free(buf);
    r->out = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = r->out;
    r->busy = true;
    r->sending = true;
    r->op_t0_us = base_mono_us();
    if (grpc_call_start_batch(r->call, &op, 1, &r->t_send.tag, NULL) != GRPC_CALL_OK) {
        r->busy = false;
        finish(r, GRPC_STATUS_INTERNAL, "cannot send");
    }
}

static void on_send(server_tag_t *t, bool ok)
{
    refl_t *r = ((refl_tag_t *)t)->r;
    r->busy = false;
    if (r->out != NULL)
        grpc_byte_buffer_destroy(r->out);
    r->out = NULL;
    if (!ok || r->closed || r->owner->draining) {
        finish(r, GRPC_STATUS_OK, "");
        return;
    }
    start_recv(r);
}

static void on_close(server_tag_t *t, bool ok)
{
    (void)ok;
    refl_t *r = ((refl_tag_t *)t)->r;
    r->closed = true;
    if (r->status_done) {
        free_refl(r);
        return;
    }
    finish(r, GRPC_STATUS_CANCELLED, "");
}

static void on_status(server_tag_t *t, bool ok)
{
    (void)ok;
    refl_t *r = ((refl_tag_t *)t)->r;
    r->status_done = true;
    if (r->closed)
        free_refl(r);
}

/* Cancels r, held past a bound (why): the cancellation completes its receive or send and its
 * close, and those end it. */
static void end_bounded(refl_t *r, const char *why, int64_t now)
{
    server_reflection_t *rs = r->owner;
    r->bounded = true;
    if (r->sending) {
        server__stream_not_taken(&rs->bounds, "ServerReflectionInfo", &rs->logged_us, now);
    }
    grpc_call_cancel_with_status(r->call, GRPC_STATUS_RESOURCE_EXHAUSTED, why, NULL);
}

void server__reflection_tick(server_reflection_t *rs)
{
    int64_t now = base_mono_us();
    if (now - rs->ticked_us < 100000)
        return; /* the control loop runs after every event: a sweep every 100 ms is plenty */
    rs->ticked_us = now;
    request_one(rs, 0); /* again, if the last attempt could not be made (out of memory) */
    request_one(rs, 1);
    for (refl_t *r = rs->head, *next; r != NULL; r = next) {
        next = r->next;
        if (!r->active || !r->busy || r->bounded || r->closed || r->status_sent)
            continue;
        int64_t send_us = (int64_t)rs->bounds.max_send_ms * 1000;
        int64_t idle_us = (int64_t)rs->bounds.idle_s * 1000000;
        if (r->sending && send_us > 0 && now - r->op_t0_us > send_us)
            end_bounded(r, "reflection answer not taken within --grpc-max-send-ms", now);
        else if (!r->sending && idle_us > 0 && now - r->op_t0_us > idle_us)
            end_bounded(r, "reflection stream idle for over --grpc-reflection-idle-s", now);
    }
}

void server__reflection_drain(server_reflection_t *rs)
{
    rs->draining = true;
    for (refl_t *r = rs->head, *next; r != NULL; r = next) {
        next = r->next;
        if (!r->active || r->status_sent || r->closed)
            continue;
        if (r->busy && !r->sending) /* waiting for a request that may never come: end it */
            grpc_call_cancel_with_status(r->call, GRPC_STATUS_UNAVAILABLE,
                                         "the server is shutting down", NULL);
        else
            finish(r, GRPC_STATUS_UNAVAILABLE, "the server is shutting down");
    }
}

void server__reflection_free(server_reflection_t *rs)
{
    if (rs == NULL)
        return;
    rs->draining = true;
    for (refl_t *r = rs->head, *next; r != NULL; r = next) {
        next = r->next;
        free_refl(r);
    }
    free(rs);
}
