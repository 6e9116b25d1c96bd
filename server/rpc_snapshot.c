/* server/rpc_snapshot.c - fstore.v1.OnlineFeatureService/{Begin,Read,End}Snapshot: one copy's
 * begin/read/end, thin adapters over core_snapshot_*(); and CollectGarbage over core_gc(), the
 * other store maintenance call. */
#include <errno.h>

#include "server/server_int.h"

#include "fstore/v1/fstore.pb-c.h"

#define MAX_CHUNK (4u << 20)

int server__rpc_begin_snapshot(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    Fstore__V1__BeginSnapshotRequest *rq = NULL;
    int rc = codec_unpack(&c->ctx, &fstore__v1__begin_snapshot_request__descriptor, req, len,
                          (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    core_snapshot_t snap;
    rc = core_snapshot_begin(c->ctx.core, &snap, c->ctx.msg, sizeof c->ctx.msg);
    /* A copy of the whole store: said, with who asked, as writes are. */
    core_audit(&c->ctx, "snapshot", rc == 0 ? (long long)snap.size : 0, rc);
    if (rc < 0)
        return rc;
    Fstore__V1__BeginSnapshotResponse out = FSTORE__V1__BEGIN_SNAPSHOT_RESPONSE__INIT;
    out.snapshot_id = snap.id;
    out.size_bytes = snap.size;
    out.sequence = snap.sequence;
    return server__pack_slice(c, &out.base, resp);
}

int server__rpc_read_snapshot(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    Fstore__V1__ReadSnapshotRequest *rq = NULL;
    int rc = codec_unpack(&c->ctx, &fstore__v1__read_snapshot_request__descriptor, req, len,
                          (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    size_t cap = rq->max_bytes == 0 || rq->max_bytes > MAX_CHUNK ? MAX_CHUNK : rq->max_bytes;
    uint8_t *buf = base_arena_alloc(&c->arena, cap);
    if (buf == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    size_t n = 0;
    rc = core_snapshot_read(c->ctx.core, rq->snapshot_id, rq->offset, buf, cap, &n, c->ctx.msg,
                            sizeof c->ctx.msg);
    if (rc < 0)
        return rc;
    Fstore__V1__ReadSnapshotResponse out = FSTORE__V1__READ_SNAPSHOT_RESPONSE__INIT;
    out.data.data = buf;
    out.data.len = n;
    return server__pack_slice(c, &out.base, resp);
}

int server__rpc_end_snapshot(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    Fstore__V1__EndSnapshotRequest *rq = NULL;
    int rc = codec_unpack(&c->ctx, &fstore__v1__end_snapshot_request__descriptor, req, len,
                          (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    if (core_snapshot_end(c->ctx.core, rq->snapshot_id) < 0)
        return server__fail(c, -ENOENT, "no snapshot '%.40s' on this node", rq->snapshot_id);
    Fstore__V1__EndSnapshotResponse out = FSTORE__V1__END_SNAPSHOT_RESPONSE__INIT;
    return server__pack_slice(c, &out.base, resp);
}

/* CollectGarbage: on a write worker, like a snapshot (a large store's sweep takes seconds, which
 * reads must not wait behind); one sweep per node at a time (core_gc() refuses a second:
 * ALREADY_EXISTS); it ends early at the call's deadline (DEADLINE_EXCEEDED) or when the server
 * drains (UNAVAILABLE), keeping what it deleted. On a replica core_gc() publishes the sweep to
 * the log and waits for this node's apply of it (every node applies it at the same place). */
int server__rpc_collect_garbage(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    Fstore__V1__CollectGarbageRequest *rq = NULL;
    int rc = codec_unpack(&c->ctx, &fstore__v1__collect_garbage_request__descriptor, req, len,
                          (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    size_t deleted = 0;
    rc = core_gc(c->ctx.core, c->ctx.deadline_us, &deleted, c->ctx.msg, sizeof c->ctx.msg);
    core_audit(&c->ctx, "collect_garbage", (long long)deleted, rc);
    if (rc < 0)
        return rc;
    Fstore__V1__CollectGarbageResponse out = FSTORE__V1__COLLECT_GARBAGE_RESPONSE__INIT;
    out.rows_deleted = deleted;
    return server__pack_slice(c, &out.base, resp);
}
