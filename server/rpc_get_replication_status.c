/* server/rpc_get_replication_status.c - fstore.v1.OnlineFeatureService/GetReplicationStatus. */
#include <errno.h>

#include "server/server_int.h"

#include "fstore/v1/fstore.pb-c.h"

int server__rpc_get_replication_status(server_call_t *c, const uint8_t *req, size_t len,
                                       grpc_slice *resp)
{
    Fstore__V1__GetReplicationStatusRequest *rq = NULL;
    int rc = codec_unpack(&c->ctx, &fstore__v1__get_replication_status_request__descriptor, req,
                          len, (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    Fstore__V1__GetReplicationStatusResponse out =
        FSTORE__V1__GET_REPLICATION_STATUS_RESPONSE__INIT;
    repl_t *r = core_repl(c->ctx.core);
    repl_status_t st;
    out.health = core_health(c->ctx.core) == CORE_SERVING ? "SERVING" : "NOT_SERVING";
    if (r != NULL) {
        repl_status(r, &st);
        out.replicated = true;
        out.state = (char *)repl_state_name(st.state);
        out.stream = st.stream;
        out.connected = st.connected;
        out.applied_sequence = st.applied;
        out.stream_sequence = st.stream_last;
        out.first_sequence = st.stream_first;
        out.lag_messages = st.lag;
        out.lag_ms = st.lag_ms;
        out.target_sequence = st.target;
        out.resubscribes = st.resubscribes;
        out.skipped = st.skipped;
        out.published = st.published;
        out.publish_retries = st.publish_retries;
        out.pending_writes = st.pending;
        out.last_error = st.last_error;
    }
    return server__pack_slice(c, &out.base, resp);
}
