/* server/rpc_write_features.c - fstore.v1.OnlineFeatureService/WriteFeatures. */
#include <errno.h>

#include "server/server_int.h"

#include "fstore/v1/fstore.pb-c.h"

static int reply(server_call_t *c, const core_write_result_t *res, grpc_slice *resp)
{
    Fstore__V1__WriteFeaturesResponse out = FSTORE__V1__WRITE_FEATURES_RESPONSE__INIT;
    out.rows_written = res->written;
    out.rows_stale = res->stale;
    out.sequence = res->sequence;
    return server__pack_slice(c, &out.base, resp);
}

int server__rpc_write_features(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    base_arena_t *a = &c->arena;
    Fstore__V1__WriteFeaturesRequest *rq = NULL;
    int urc = codec_unpack(&c->ctx, &fstore__v1__write_features_request__descriptor, req, len,
                           (ProtobufCMessage **)&rq);
    if (urc < 0)
        return urc;

    size_t n = rq->n_columns;
    const char **keys = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *keys);
    Feast__Types__RepeatedValue **vals = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *vals);
    int64_t *ts = base_arena_calloc(a, rq->n_event_timestamps + 1, sizeof *ts);
    if (keys == NULL || vals == NULL || ts == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        keys[i] = rq->columns[i]->key;
        vals[i] = rq->columns[i]->value;
    }
    /* A zero Timestamp means "now", like an absent list: one clock reading for the request. */
    int64_t now = rq->n_event_timestamps > 0 ? store_now_us() : 0;
    int rc = codec_ts_from_pb(&c->ctx, "event_timestamps", rq->event_timestamps,
                              rq->n_event_timestamps, true, now, ts);
    if (rc < 0)
        return rc;
    if (rq->to != FSTORE__V1__WRITE_TARGET__WRITE_TARGET_ONLINE &&
        rq->to != FSTORE__V1__WRITE_TARGET__WRITE_TARGET_OFFLINE)
        return server__fail(c, -EINVAL,
                            "to: unknown target %d (WRITE_TARGET_ONLINE or WRITE_TARGET_OFFLINE)",
                            (int)rq->to);

    /* The response is built by reply() once the rows are durable (SERVER_DETACHED). */
    if (rq->request_id != NULL && rq->request_id[0] != '\0')
        c->ctx.request_id = rq->request_id;
    return server__write(c, rq->feature_view, "write", n, keys, vals, ts, rq->n_event_timestamps,
                         rq->to == FSTORE__V1__WRITE_TARGET__WRITE_TARGET_OFFLINE ? STORE_OP_HISTORY
                                                                                  : STORE_OP_UPSERT,
                         reply, resp);
}
