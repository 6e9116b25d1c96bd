/* server/write.c - the tail WriteFeatures and DeleteEntities share: columns -> core_write(). */
#include <errno.h>

#include "server/server_int.h"

/*
 * The call does not hold its worker while the batch waits for the group commit: it is detached
 * before the batch goes to the store's writer, whose completion (done(), on the writer thread,
 * after the fsync) builds the reply and sends it.
 */

typedef struct write_call {
    server_call_t *c;
    server_write_reply_fn reply;
} write_call_t;

static void done(void *arg, int rc, const core_write_result_t *res)
{
    write_call_t *w = arg;
    grpc_slice resp = grpc_empty_slice();
    if (rc == 0)
        rc = w->reply(w->c, res, &resp);
    server__call_complete(w->c, rc, resp);
}

int server__write(server_call_t *c, const char *view_ref, const char *what, size_t n,
                  const char *const *keys, Feast__Types__RepeatedValue *const *vals,
                  const int64_t *event_ts_us, size_t n_ts, store_op_t op,
                  server_write_reply_fn reply, grpc_slice *resp)
{
    core_ctx_t *ctx = &c->ctx;
    const catalog_view_t *v = NULL;
    core_columns_limits_t lim;
    int rc = core_write_view(ctx, view_ref, &v, &lim);
    if (rc < 0)
        return rc;
    core_columns_t cols;
    rc = codec_columns_from_pb(ctx, what, n, keys, vals, &lim, &cols);
    if (rc < 0)
        return rc;
    write_call_t *w = base_arena_alloc(&c->arena, sizeof *w);
    if (w == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    w->c = c;
    w->reply = reply;
    server__call_detach(c);
    rc = core_write(ctx, v, &cols, event_ts_us, n_ts, op, done, w);
    if (rc == CORE_ASYNC)
        return SERVER_DETACHED;
    server__call_attach(c);
    if (rc < 0)
        return rc;
    /* Nothing to write: the reply says so at once. */
    core_write_result_t none = {0};
    return reply(c, &none, resp);
}
