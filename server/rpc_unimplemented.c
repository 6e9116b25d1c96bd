/* server/rpc_unimplemented.c - calls to methods fstore does not serve get UNIMPLEMENTED. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "server/server_int.h"

/*
 * gRPC's C core matches a call to an unregistered method only against grpc_server_request_call();
 * a server that never asks leaves such calls waiting until the client's deadline, which looks like
 * a hung server. The control thread keeps one such request outstanding and answers each call with
 * a trailers-only UNIMPLEMENTED naming the method, like every other gRPC server. One call at a
 * time is enough: unmatched calls queue inside gRPC, and this path carries no real traffic.
 */

enum unknown_state {
    UNKNOWN_IDLE = 0,      /* nothing in flight */
    UNKNOWN_REQUESTED = 1, /* waiting for the next call to an unknown method */
    UNKNOWN_REPLYING = 2,  /* status sent, waiting for the batch to complete */
};

struct server_unknown {
    server_tag_t tag; /* first: the control queue hands this pointer back */
    grpc_server *gs;
    grpc_completion_queue *cq;
    enum unknown_state state;
    bool stopped;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_slice message;
    int cancelled;
};

static void request_next(server_unknown_t *u);

static void reset_call(server_unknown_t *u)
{
    if (u->call != NULL)
        grpc_call_unref(u->call);
    u->call = NULL;
    grpc_call_details_destroy(&u->details);
    grpc_metadata_array_destroy(&u->md);
    grpc_slice_unref(u->message);
    u->message = grpc_empty_slice();
}

static void reply(server_unknown_t *u)
{
    char text[320];
    const char *method = (const char *)GRPC_SLICE_START_PTR(u->details.method);
    int mlen = (int)GRPC_SLICE_LENGTH(u->details.method);
    if (mlen > 200)
        mlen = 200;
    snprintf(text, sizeof text, "unknown method %.*s: fstore does not serve it", mlen, method);
    u->message = grpc_slice_from_copied_string(text);
    /* Initial metadata goes with the status, as gRPC C++'s unimplemented responder does: with
     * gRPC 1.51 a status sent alone never reached the client (tests/e2e/test_errors.py). */
    grpc_op ops[3] = {0};
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &u->cancelled;
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
    ops[2].data.send_status_from_server.status_details = &u->message;
    u->state = UNKNOWN_REPLYING;
    if (grpc_call_start_batch(u->call, ops, 3, &u->tag, NULL) != GRPC_CALL_OK) {
        /* Cannot happen with a fresh call; drop it and keep serving the next one. */
        u->state = UNKNOWN_IDLE;
        reset_call(u);
        request_next(u);
    }
}

static void on_event(server_tag_t *t, bool ok)
{
    server_unknown_t *u = (server_unknown_t *)t;
    if (u->state == UNKNOWN_REQUESTED) {
        if (!ok) {
            /* The server is shutting down: no more calls will come. */
            u->state = UNKNOWN_IDLE;
            u->stopped = true;
            reset_call(u);
            return;
        }
        reply(u);
        return;
    }
    u->state = UNKNOWN_IDLE;
    reset_call(u);
    request_next(u);
}

static void request_next(server_unknown_t *u)
{
    if (u->stopped)
        return;
    grpc_call_details_init(&u->details);
    grpc_metadata_array_init(&u->md);
    u->state = UNKNOWN_REQUESTED;
    if (grpc_server_request_call(u->gs, &u->call, &u->details, &u->md, u->cq, u->cq, &u->tag) !=
        GRPC_CALL_OK) {
        u->state = UNKNOWN_IDLE;
        u->stopped = true;
        reset_call(u);
    }
}

int server__unknown_init(grpc_server *gs, grpc_completion_queue *cq, server_unknown_t **out)
{
    server_unknown_t *u = calloc(1, sizeof *u);
    if (u == NULL)
        return -ENOMEM;
    u->tag.fn = on_event;
    u->gs = gs;
    u->cq = cq;
    u->message = grpc_empty_slice();
    grpc_call_details_init(&u->details);
    grpc_metadata_array_init(&u->md);
    *out = u;
    return 0;
}

void server__unknown_start(server_unknown_t *u)
{
    if (u != NULL && u->state == UNKNOWN_IDLE)
        request_next(u);
}

void server__unknown_free(server_unknown_t *u)
{
    if (u == NULL)
        return;
    reset_call(u);
    free(u);
}
