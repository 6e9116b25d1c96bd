/* server/status.c - the one place where a negative errno becomes a grpc_status_code. */
#include <errno.h>

#include "server/server_int.h"

/*
 * Modules below server/ speak errno; clients speak gRPC status. Keeping the table here means a
 * new errno from storage or catalog changes one line, and every RPC reports it the same way.
 */
grpc_status_code server__status_from_errno(int err)
{
    switch (err) {
    case 0:
        return GRPC_STATUS_OK;
    case -EINVAL:       /* a malformed or invalid request */
    case -ERANGE:       /* a value out of its type's range */
    case -ENAMETOOLONG: /* an entity key over STORE_MAX_KEY */
    case -E2BIG:        /* a request over one of our limits */
        return GRPC_STATUS_INVALID_ARGUMENT;
    case -ENOENT:
        return GRPC_STATUS_NOT_FOUND;
    case -EEXIST:
    case -EALREADY:
        return GRPC_STATUS_ALREADY_EXISTS;
    case -EPERM:
    case -EACCES:
        return GRPC_STATUS_PERMISSION_DENIED;
    case -ENOKEY:       /* no credentials */
    case -EKEYREJECTED: /* credentials this server does not know */
        return GRPC_STATUS_UNAUTHENTICATED;
    case -ENOMEM:
    case -ENOSPC:
    case -EMSGSIZE:
    case -EFBIG:   /* the store's map at its largest size */
    case -EMFILE:  /* more view versions than the store holds */
    case -ENOBUFS: /* a queue or slot bound (writes waiting for the log, snapshots) */
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case -EAGAIN:
    case -ESHUTDOWN:
    case -ECONNREFUSED:
        return GRPC_STATUS_UNAVAILABLE;
    case -ETIMEDOUT:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    case -ECANCELED:
        return GRPC_STATUS_CANCELLED;
    case -ENOSYS:
    case -EOPNOTSUPP:
        return GRPC_STATUS_UNIMPLEMENTED;
    case -EBUSY: /* fstore-min-seq on a node without replication */
    case -ESTALE:
    case -EROFS: /* a read-only store */
        return GRPC_STATUS_FAILED_PRECONDITION;
    case -EBADMSG: /* a damaged record: its checksum does not match */
        return GRPC_STATUS_DATA_LOSS;
    case -EPROTO:
    case -EIO:
    default:
        return GRPC_STATUS_INTERNAL;
    }
}
