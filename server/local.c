/* server/local.c - in-process calls: every method on request bytes, no sockets or threads. */
#include <errno.h>
#include <stdio.h>
#include <grpc/grpc.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

/*
 * The same methods the workers run, on one call slot of our own: the fuzzers and unit tests
 * reach decode -> core -> encode through this public entry instead of faking a worker. A write
 * completes on the store's writer thread as it does under gRPC, so the caller waits for it here.
 */

struct server_local {
    core_t *core;
    core_worker_t *worker;
    server_call_t call;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    grpc_slice resp;
};

int server_local_new(core_t *core, bool cache, server_local_t **out)
{
    server_local_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return -ENOMEM;
    unsigned flags = CORE_WORKER_READS | (cache ? 0 : CORE_WORKER_NO_CACHE);
    int rc = core_worker_new(core, flags, base_wire_strings, &l->worker);
    if (rc < 0) {
        free(l);
        return rc;
    }
    grpc_init();
    l->core = core;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    base_arena_init(&l->call.arena, 64 * 1024);
    l->call.details = grpc_empty_slice();
    l->call.local = l;
    *out = l;
    return 0;
}

void server_local_free(server_local_t *l)
{
    if (l == NULL)
        return;
    base_arena_free(&l->call.arena);
    core_worker_free(l->worker);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    grpc_shutdown();
    free(l);
}

void server__local_complete(server_call_t *c, int rc, grpc_slice resp)
{
    server_local_t *l = c->local;
    pthread_mutex_lock(&l->mu);
    l->rc = rc;
    l->resp = resp;
    l->done = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

int server_local_call(server_local_t *l, const char *method, const uint8_t *req, size_t len,
                      server_local_result_t *out)
{
    const server_method_t *m = server__method_find(method);
    if (m == NULL)
        return -ENOENT;
    server_call_t *c = &l->call;
    c->method = m;
    c->relayed = false;
    l->done = false;
    grpc_slice resp = grpc_empty_slice();
    core_ctx_begin(&c->ctx, l->worker, &c->arena);
    size_t max_message = core_limits(l->core)->max_message_bytes;
    int rc = len > max_message
                 ? server__fail(c, -EMSGSIZE,
                                "request message of %zu bytes is over --max-message-bytes %zu", len,
                                max_message)
                 : m->fn(c, req, len, &resp);
    core_ctx_end(&c->ctx);
    if (rc == SERVER_DETACHED) {
        pthread_mutex_lock(&l->mu);
        while (!l->done)
            pthread_cond_wait(&l->cv, &l->mu);
        pthread_mutex_unlock(&l->mu);
        rc = l->rc;
        resp = l->resp;
    }
    memset(out, 0, sizeof *out);
    out->status = (int)(c->relayed ? c->relay_status : server__status_from_errno(rc));
    memcpy(out->msg, c->ctx.msg, sizeof out->msg);
    if (rc == 0) {
        size_t n = GRPC_SLICE_LENGTH(resp);
        out->response = malloc(n == 0 ? 1 : n);
        if (out->response != NULL) {
            if (n > 0)
                memcpy(out->response, GRPC_SLICE_START_PTR(resp), n);
            out->response_len = n;
        } else {
            out->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf(out->msg, sizeof out->msg, "out of memory");
        }
    }
    grpc_slice_unref(resp);
    base_arena_reset(&c->arena);
    return 0;
}
