/* server/rpc_get_feast_serving_info.c - feast.serving.ServingService/GetFeastServingInfo. */
#include <errno.h>

#include "server/server_int.h"

#include "feast/serving/ServingService.pb-c.h"

#ifndef FSTORE_VERSION
#define FSTORE_VERSION "0.0.0"
#endif

/* Feast clients call this to check they talk to a feature server; the version is fstore's. */
int server__rpc_get_feast_serving_info(server_call_t *c, const uint8_t *req, size_t len,
                                       grpc_slice *resp)
{
    Feast__Serving__GetFeastServingInfoRequest *rq = NULL;
    int rc = codec_unpack(&c->ctx, &feast__serving__get_feast_serving_info_request__descriptor, req,
                          len, (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    Feast__Serving__GetFeastServingInfoResponse out =
        FEAST__SERVING__GET_FEAST_SERVING_INFO_RESPONSE__INIT;
    out.version = (char *)FSTORE_VERSION;
    return server__pack_slice(c, &out.base, resp);
}
