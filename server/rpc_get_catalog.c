/* server/rpc_get_catalog.c - fstore.v1.OnlineFeatureService/GetCatalog. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

/* The catalog the call pinned, in structured form (for tools) and as canonical YAML (for people
 * and for round trips through fstore validate). */
int server__rpc_get_catalog(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    Fstore__V1__GetCatalogRequest *rq = NULL;
    int rc = codec_unpack(&c->ctx, &fstore__v1__get_catalog_request__descriptor, req, len,
                          (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    Fstore__V1__GetCatalogResponse out = FSTORE__V1__GET_CATALOG_RESPONSE__INIT;
    if (codec_catalog_to_pb(c->ctx.catalog, &c->arena, &out) < 0)
        return server__fail(c, -ENOMEM, "out of memory");
    char *yaml = NULL;
    size_t yaml_len = 0;
    rc = catalog_dump_yaml(c->ctx.catalog, &yaml, &yaml_len);
    if (rc < 0)
        return server__fail(c, rc, "cannot render the catalog: %s", strerror(-rc));
    out.yaml = yaml;
    rc = server__pack_slice(c, &out.base, resp);
    free(yaml);
    return rc;
}
