/* server/rpc_delete_entities.c - fstore.v1.OnlineFeatureService/DeleteEntities. */
#include <errno.h>

#include "server/server_int.h"

#include "fstore/v1/fstore.pb-c.h"

static int reply(server_call_t *c, const core_write_result_t *res, grpc_slice *resp)
{
    Fstore__V1__DeleteEntitiesResponse out = FSTORE__V1__DELETE_ENTITIES_RESPONSE__INIT;
    out.rows_deleted = res->written;
    out.sequence = res->sequence;
    return server__pack_slice(c, &out.base, resp);
}

/* Deletes go through the same apply path as writes (STORE_OP_DELETE), so they are ordered with
 * writes and replicated the same way. */
int server__rpc_delete_entities(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    base_arena_t *a = &c->arena;
    Fstore__V1__DeleteEntitiesRequest *rq = NULL;
    int urc = codec_unpack(&c->ctx, &fstore__v1__delete_entities_request__descriptor, req, len,
                           (ProtobufCMessage **)&rq);
    if (urc < 0)
        return urc;

    size_t n = rq->n_entities;
    const char **keys = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *keys);
    Feast__Types__RepeatedValue **vals = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *vals);
    if (keys == NULL || vals == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        keys[i] = rq->entities[i]->key;
        vals[i] = rq->entities[i]->value;
    }
    /* The response is built by reply() once the deletes are durable (SERVER_DETACHED). */
    if (rq->request_id != NULL && rq->request_id[0] != '\0')
        c->ctx.request_id = rq->request_id;
    return server__write(c, rq->feature_view, "delete", n, keys, vals, NULL, 0, STORE_OP_DELETE,
                         reply, resp);
}
