/* clients/c/fstore_client.h - a small blocking C client for fstore on gRPC's C core. */
#ifndef CLIENTS_C_FSTORE_CLIENT_H
#define CLIENTS_C_FSTORE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "feast/serving/ServingService.pb-c.h"
#include "fstore/v1/fstore.pb-c.h"

/*
 * One client = one gRPC channel (insecure, HTTP/2) to one fstore server. Calls are blocking and
 * each uses its own completion queue, so any number of threads may share a client. Messages are
 * protobuf-c structs (generated into the build tree from protos/), or raw bytes with
 * fstore_client_call() for callers that encode requests themselves (the benchmark).
 *
 * Errors: functions return 0 when the call ended with gRPC status OK; -EREMOTEIO when it ended
 * with another status (code and message in *st); -EINVAL for a response that does not decode;
 * -ENOMEM. st may be NULL.
 */

#define FSTORE_PATH_FEAST_GET_ONLINE_FEATURES "/feast.serving.ServingService/GetOnlineFeatures"
#define FSTORE_PATH_FEAST_SERVING_INFO "/feast.serving.ServingService/GetFeastServingInfo"
#define FSTORE_PATH_GET_ONLINE_FEATURES "/fstore.v1.OnlineFeatureService/GetOnlineFeatures"
#define FSTORE_PATH_WRITE_FEATURES "/fstore.v1.OnlineFeatureService/WriteFeatures"
#define FSTORE_PATH_DELETE_ENTITIES "/fstore.v1.OnlineFeatureService/DeleteEntities"
#define FSTORE_PATH_GET_CATALOG "/fstore.v1.OnlineFeatureService/GetCatalog"
#define FSTORE_PATH_GET_REPLICATION_STATUS "/fstore.v1.OnlineFeatureService/GetReplicationStatus"
#define FSTORE_PATH_COLLECT_GARBAGE "/fstore.v1.OnlineFeatureService/CollectGarbage"
#define FSTORE_PATH_HEALTH_CHECK "/grpc.health.v1.Health/Check"

/*
 * grpc_init() for a client process: first base_lean_mutexes() (abseil's deadlock detection off,
 * unless FSTORE_ABSL_DEADLOCK_DETECTION=1), as the server does. Idempotent; pair each call with
 * grpc_shutdown().
 * Returns: true when deadlock detection is off.
 */
bool fstore_grpc_init(void);

typedef struct fstore_client fstore_client_t;

/* The outcome of a call: a grpc_status_code (0 = OK) and the server's message. */
typedef struct fstore_status {
    int code;
    char message[512];
} fstore_status_t;

/*
 * Creates a channel to target ("127.0.0.1:6566"); connecting happens on the first call.
 * Returns: 0, -ENOMEM. Ownership: *out is the caller's, freed with fstore_client_close().
 */
int fstore_client_connect(const char *target, fstore_client_t **out);
/* TLS to a server run with --tls-cert: PEM files, each NULL or "" for none. ca: the CAs the
 * server's certificate must chain to (none: gRPC's default roots); cert and key: this client's
 * certificate, for a server that asks for one (--tls-client-ca; both or neither). server_name:
 * the name the server's certificate must carry, when the target is another (a pod's address);
 * NULL: the target's host. */
typedef struct fstore_client_tls {
    const char *ca, *cert, *key, *server_name;
} fstore_client_tls_t;
/*
 * As fstore_client_connect(), over TLS when tls has a file (tls NULL, or every file none: the
 * insecure channel). The files are read now.
 * Returns: 0; -EINVAL with why (a file that cannot be read, a certificate without its key);
 *          -ENOMEM.
 */
int fstore_client_connect_tls(const char *target, const fstore_client_tls_t *tls,
                              fstore_client_t **out, char *why, size_t cap);
/* Closes the channel. Accepts NULL. Every call must have returned. */
void fstore_client_close(fstore_client_t *c);

/*
 * One unary call with raw message bytes. timeout_ms <= 0 means 30 s.
 * Returns: as above. Ownership: on 0, *resp is malloc'd (the caller frees it).
 */
int fstore_client_call(fstore_client_t *c, const char *method, const uint8_t *req, size_t req_len,
                       int timeout_ms, uint8_t **resp, size_t *resp_len, fstore_status_t *st);

/* One metadata entry sent with a call ("fstore-min-seq", "fstore-request-id"). */
typedef struct fstore_metadata {
    const char *key;
    const char *value;
} fstore_metadata_t;

/* fstore_client_call() with n_md metadata entries sent with the request. */
int fstore_client_call_md(fstore_client_t *c, const char *method, const fstore_metadata_t *md,
                          size_t n_md, const uint8_t *req, size_t req_len, int timeout_ms,
                          uint8_t **resp, size_t *resp_len, fstore_status_t *st);

/*
 * GetOnlineFeatures on the Feast path (feast_path != 0) or fstore's.
 * Ownership: on 0, *out is the caller's:
 * feast__serving__get_online_features_response__free_unpacked
 * (*out, NULL).
 */
int fstore_client_get_online_features(fstore_client_t *c,
                                      const Feast__Serving__GetOnlineFeaturesRequest *req,
                                      int feast_path, int timeout_ms,
                                      Feast__Serving__GetOnlineFeaturesResponse **out,
                                      fstore_status_t *st);

/* WriteFeatures. Ownership: *out freed with fstore__v1__write_features_response__free_unpacked. */
int fstore_client_write_features(fstore_client_t *c, const Fstore__V1__WriteFeaturesRequest *req,
                                 int timeout_ms, Fstore__V1__WriteFeaturesResponse **out,
                                 fstore_status_t *st);

/* DeleteEntities. Ownership: *out freed with fstore__v1__delete_entities_response__free_unpacked.
 */
int fstore_client_delete_entities(fstore_client_t *c, const Fstore__V1__DeleteEntitiesRequest *req,
                                  int timeout_ms, Fstore__V1__DeleteEntitiesResponse **out,
                                  fstore_status_t *st);

/* grpc.health.v1.Health/Check for service ("" = the server). *serving_status: 1 SERVING,
 * 2 NOT_SERVING. */
int fstore_client_health_check(fstore_client_t *c, const char *service, int timeout_ms,
                               int *serving_status, fstore_status_t *st);

/* Polls health until SERVING or timeout_ms passes (each check's deadline is within what is left
 * of timeout_ms). Returns: 0, -ETIMEDOUT (also for timeout_ms <= 0). */
int fstore_client_wait_serving(fstore_client_t *c, int timeout_ms);

#endif /* CLIENTS_C_FSTORE_CLIENT_H */
