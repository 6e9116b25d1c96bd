/* server/rpc_write_features.c - fstore.v1.OnlineFeatureService/WriteFeatures. */
#include <errno.h>

#include "server/server_int.h"

#include "fstore/v1/fstore.pb-c.h"

int server__rpc_write_features(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    server_arena_t *a = &c->arena;
    Fstore__V1__WriteFeaturesRequest *rq =
        fstore__v1__write_features_request__unpack(server__arena_allocator(a), len, req);
    if (rq == NULL)
        return server__fail(c, -EINVAL, "malformed WriteFeaturesRequest");

    size_t n = rq->n_columns;
    char **keys = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *keys);
    Feast__Types__RepeatedValue **vals = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *vals);
    int64_t *ts = server__arena_calloc(a, rq->n_event_timestamps + 1, sizeof *ts);
    if (keys == NULL || vals == NULL || ts == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        keys[i] = rq->columns[i]->key;
        vals[i] = rq->columns[i]->value;
    }
    /* A zero Timestamp means "now", like an absent list: one clock reading for the request. */
    int64_t now = rq->n_event_timestamps > 0 ? store_now_us() : 0;
    for (size_t i = 0; i < rq->n_event_timestamps; i++) {
        const Google__Protobuf__Timestamp *t = rq->event_timestamps[i];
        if (t->nanos < 0 || t->nanos > 999999999)
            return server__fail(c, -EINVAL, "event_timestamps[%zu]: nanos out of range", i);
        ts[i] = t->seconds == 0 && t->nanos == 0 ? now : t->seconds * 1000000 + t->nanos / 1000;
    }

    store_apply_result_t res;
    int rc = server__apply_columns(c, rq->feature_view, n, keys, vals, ts, rq->n_event_timestamps,
                                   STORE_OP_UPSERT, &res);
    if (rc < 0)
        return rc;
    Fstore__V1__WriteFeaturesResponse out = FSTORE__V1__WRITE_FEATURES_RESPONSE__INIT;
    out.rows_written = res.written;
    out.rows_stale = res.stale;
    return server__pack_slice(&out.base, resp);
}
