/* server/call.c - what every method does with its call: the response's slice within the limit. */
#include <errno.h>
#include <stdio.h>

#include "server/server_int.h"

/*
 * Kept apart from server.c (workers, queues, lifecycle) so that an in-process call (local.c)
 * links the same code.
 */

int server__response_slice(server_call_t *c, const char *what, size_t n, grpc_slice *out)
{
    size_t limit = c->ctx.limits->max_response_bytes;
    if (n > limit)
        return server__fail(c, -EMSGSIZE,
                            "%s would be %zu bytes; the limit is %zu (--max-response-bytes)", what,
                            n, limit);
    *out = grpc_slice_malloc(n);
    return 0;
}

int server__pack_slice(server_call_t *c, const ProtobufCMessage *m, grpc_slice *out)
{
    grpc_slice s;
    int rc = server__response_slice(c, "response", protobuf_c_message_get_packed_size(m), &s);
    if (rc < 0)
        return rc;
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
    *out = s;
    return 0;
}
