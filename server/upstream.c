/* server/upstream.c - client channels to upstream model servers, and one Predict call on them. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

/*
 * A channel is expensive to build (resolver, subchannels, a connection) and cheap to share, so
 * there is one per target for the server's life, created the first time a binding names it. A
 * catalog reload that changes a target simply starts using another entry; old entries stay until
 * the server stops, which bounds the table by the targets a deployment ever names.
 *
 * Calls are children of the server call (GRPC_PROPAGATE_DEFAULTS): the caller's deadline and a
 * cancellation reach the upstream without any code here.
 */

#define PREDICT_METHOD "/tensorflow.serving.PredictionService/Predict"

typedef struct upstream_channel {
    char *target;
    grpc_channel *channel;
    void *method; /* PREDICT_METHOD registered on channel */
} upstream_channel_t;

struct server_upstreams {
    pthread_mutex_t lock; /* the table only; calls never hold it */
    upstream_channel_t *items;
    size_t n, cap;
    int max_bytes; /* both ways: the request is ours, the response becomes ours */
};

int server__upstreams_new(size_t max_bytes, server_upstreams_t **out)
{
    server_upstreams_t *u = calloc(1, sizeof *u);
    if (u == NULL)
        return -ENOMEM;
    pthread_mutex_init(&u->lock, NULL);
    u->max_bytes = max_bytes > (size_t)INT32_MAX ? INT32_MAX : (int)max_bytes;
    *out = u;
    return 0;
}

void server__upstreams_free(server_upstreams_t *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n; i++) {
        grpc_channel_destroy(u->items[i].channel);
        free(u->items[i].target);
    }
    free(u->items);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

static grpc_channel *channel_create(const server_upstreams_t *u, const char *target)
{
    grpc_arg args[4];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = u->max_bytes;
    /* gRPC backs off up to two minutes between reconnects by default; an upstream that restarts
     * would then fail Predict calls long after it is back. A second is plenty for a handful of
     * targets. */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args[1].value.integer = 100;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[2].value.integer = 1000;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[3].value.integer = u->max_bytes;
    grpc_channel_args ch_args = {.num_args = 4, .args = args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, &ch_args);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* Returns: 0 and the channel for target (created on first use) with its registered method;
 * -ENOMEM. */
static int channel_get(server_upstreams_t *u, const char *target, grpc_channel **ch, void **method)
{
    int rc = 0;
    pthread_mutex_lock(&u->lock);
    for (size_t i = 0; i < u->n; i++) {
        if (strcmp(u->items[i].target, target) == 0) {
            *ch = u->items[i].channel;
            *method = u->items[i].method;
            goto out;
        }
    }
    if (u->n == u->cap) {
        size_t cap = u->cap == 0 ? 4 : 2 * u->cap;
        upstream_channel_t *items = realloc(u->items, cap * sizeof *items);
        if (items == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        u->items = items;
        u->cap = cap;
    }
    upstream_channel_t *e = &u->items[u->n];
    e->target = strdup(target);
    if (e->target == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    /* grpc_channel_create() never fails: a bad target gives a channel whose calls fail. */
    e->channel = channel_create(u, target);
    e->method = grpc_channel_register_call(e->channel, PREDICT_METHOD, NULL, NULL);
    u->n++;
    *ch = e->channel;
    *method = e->method;
    base_log(BASE_LOG_INFO, "upstream_channel", "{s:s}", "target", target);
out:
    pthread_mutex_unlock(&u->lock);
    return rc;
}

/* Releases everything uc holds; safe on a call that never started. */
static void upstream_release(server_upstream_call_t *uc)
{
    if (uc->call != NULL)
        grpc_call_unref(uc->call);
    uc->call = NULL;
    if (uc->send != NULL)
        grpc_byte_buffer_destroy(uc->send);
    uc->send = NULL;
    if (uc->recv != NULL)
        grpc_byte_buffer_destroy(uc->recv);
    uc->recv = NULL;
    grpc_metadata_array_destroy(&uc->initial_md);
    grpc_metadata_array_destroy(&uc->trailing_md);
    grpc_slice_unref(uc->details);
    uc->details = grpc_empty_slice();
    if (uc->error_string != NULL)
        gpr_free((void *)uc->error_string);
    uc->error_string = NULL;
}

int server__upstream_start(server_call_t *c, const catalog_upstream_t *up, grpc_slice request,
                           server_upstream_call_t *uc)
{
    base_arena_t *a = &c->arena;
    memset(uc, 0, sizeof *uc);
    grpc_metadata_array_init(&uc->initial_md);
    grpc_metadata_array_init(&uc->trailing_md);
    uc->details = grpc_empty_slice();
    uc->timeout_ms = up->timeout_ms;
    uc->target = base_arena_strndup(a, up->target, strlen(up->target));
    uc->model = base_arena_strndup(a, up->model_name, strlen(up->model_name));
    uc->send = grpc_raw_byte_buffer_create(&request, 1);
    grpc_slice_unref(request);
    if (uc->target == NULL || uc->model == NULL) {
        upstream_release(uc);
        return server__fail(c, -ENOMEM, "out of memory");
    }

    grpc_channel *ch = NULL;
    void *method = NULL;
    int rc = channel_get(server__call_upstreams(c), up->target, &ch, &method);
    if (rc < 0) {
        upstream_release(uc);
        return server__fail(c, rc, "out of memory");
    }

    /* The child's deadline is the earlier of this and the caller's (propagated by gRPC). */
    gpr_timespec deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    if (up->timeout_ms > 0) {
        deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                gpr_time_from_millis(up->timeout_ms, GPR_TIMESPAN));
        uc->timeout_first =
            gpr_time_cmp(deadline, gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC)) < 0;
    }
    uc->call = grpc_channel_create_registered_call(ch, c->call, GRPC_PROPAGATE_DEFAULTS,
                                                   server__call_cq(c), method, deadline, NULL);
    if (uc->call == NULL) {
        upstream_release(uc);
        return server__fail(c, -EIO, "upstream %s: cannot create a call", uc->target);
    }

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = uc->send;
    ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &uc->initial_md;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &uc->recv;
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &uc->trailing_md;
    ops[n].data.recv_status_on_client.status = &uc->status;
    ops[n].data.recv_status_on_client.status_details = &uc->details;
    ops[n++].data.recv_status_on_client.error_string = &uc->error_string;
    grpc_call_error e = grpc_call_start_batch(uc->call, ops, n, c, NULL);
    if (e != GRPC_CALL_OK) {
        upstream_release(uc);
        return server__fail(c, -EIO, "upstream %s: cannot start the call (%s)", uc->target,
                            grpc_call_error_to_string(e));
    }
    return 0;
}

int server__upstream_finish(server_call_t *c, server_upstream_call_t *uc, bool ok, grpc_slice *resp)
{
    int rc = 0;
    if (!ok) {
        /* A client batch with RECV_STATUS fails only when the call could not run at all. */
        rc = server__fail(c, -EIO, "upstream %s (model '%s'): the call failed", uc->target,
                          uc->model);
        goto out;
    }
    if (uc->status != GRPC_STATUS_OK) {
        const char *why = "";
        if (uc->status == GRPC_STATUS_UNAVAILABLE)
            why = " (cannot reach it)";
        else if (uc->status == GRPC_STATUS_DEADLINE_EXCEEDED)
            why = uc->timeout_first ? " (no answer within the binding's timeout_ms)"
                                    : " (no answer within the caller's deadline)";
        c->relayed = true;
        c->relay_status = uc->status;
        rc = server__fail(c, -EREMOTEIO, "upstream %s (model '%s') failed%s: %.*s", uc->target,
                          uc->model, why, (int)GRPC_SLICE_LENGTH(uc->details),
                          (const char *)GRPC_SLICE_START_PTR(uc->details));
        goto out;
    }
    if (uc->recv == NULL) {
        rc = server__fail(c, -EPROTO, "upstream %s (model '%s') returned OK without a response",
                          uc->target, uc->model);
        goto out;
    }
    /* The response goes back as the upstream sent it; the reader only undoes compression. */
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, uc->recv)) {
        rc = server__fail(c, -EPROTO, "upstream %s (model '%s'): cannot read its response",
                          uc->target, uc->model);
        goto out;
    }
    *resp = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
out:
    upstream_release(uc);
    return rc;
}
