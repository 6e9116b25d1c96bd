/* server/rpc_health_check.c - grpc.health.v1.Health/Check. */
#include <errno.h>

#include "server/server_int.h"

#include "grpc/health/v1/health.pb-c.h"

/* Per the gRPC health protocol an unknown service is NOT_FOUND for Check (Watch instead streams
 * SERVICE_UNKNOWN). SERVING once the store is open and the catalog applied, NOT_SERVING while
 * draining. */
int server__rpc_health_check(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    Grpc__Health__V1__HealthCheckRequest *rq = NULL;
    int rc = codec_unpack(&c->ctx, &grpc__health__v1__health_check_request__descriptor, req, len,
                          (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    int st = server__health_status(c->ctx.core, rq->service);
    if (st == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN)
        return server__fail(c, -ENOENT, "unknown service '%s'", rq->service);
    Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    out.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
    return server__pack_slice(c, &out.base, resp);
}
