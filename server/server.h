/* server/server.h - the gRPC transport: Feast, fstore, TF Serving and health on gRPC's C core. */
#ifndef SERVER_SERVER_H
#define SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The grpc.health.v1 service name that answers SERVING while the server runs, even while its
 * replica catches up (for liveness probes; every other name is readiness: core_health()). */
#define SERVER_HEALTH_LIVENESS "liveness"

#include <stdio.h>

#include "core/core.h"

/*
 * One server = one gRPC server (gRPC's C core) in front of a serving core (core/core.h). It
 * answers on one address:
 *   /feast.serving.ServingService/GetOnlineFeatures     (Feast's API, unchanged)
 *   /feast.serving.ServingService/GetFeastServingInfo
 *   /fstore.v1.OnlineFeatureService/GetOnlineFeatures  (the same method)
 *   /fstore.v1.OnlineFeatureService/WriteFeatures, DeleteEntities, GetCatalog,
 *       GetReplicationStatus, BeginSnapshot, ReadSnapshot, EndSnapshot, CollectGarbage
 *   /grpc.health.v1.Health/Check, Watch                 (readiness; service "liveness":
 *                                                        liveness)
 *   /tensorflow.serving.PredictionService/Predict       (TF Serving's API, for model bindings:
 *                                                        feature tensors, or features added on the
 *                                                        way to an upstream model server)
 * Each method is decode (codec/) -> core -> encode (codec/); this module adds the runtime: call
 * slots, completion queues, threads, signals' effects, drain.
 *
 * Threads: `workers` read workers and `write_workers` write workers, each with its own completion
 * queue and core worker, plus the thread that calls server_run() (the control thread: health
 * watches, catalog reloads, shutdown). Ordinary writes never make a read wait: the catalog is an
 * atomically swapped snapshot, each read worker owns its store reader, and the store's writer
 * commits beside open reads. Two rare, brief events do make reads wait (see storage/store.h): a
 * reload's catalog commit and a map resize (when the data file fills up and its map doubles).
 */

typedef struct server server_t;

#define SERVER_DEFAULT_LISTEN "0.0.0.0:6566" /* Feast's feature server port */
#define SERVER_DEFAULT_WRITE_WORKERS 4u
#define SERVER_DEFAULT_SHUTDOWN_GRACE_MS 10000u
#define SERVER_DEFAULT_MAX_STREAMS 100u
#define SERVER_DEFAULT_MAX_MEMORY ((size_t)512 << 20)
#define SERVER_DEFAULT_MAX_SEND_MS 10000u
#define SERVER_DEFAULT_MAX_WATCHES 4096u
#define SERVER_DEFAULT_MAX_REFLECTION_STREAMS 64u
#define SERVER_DEFAULT_REFLECTION_IDLE_S 60u
/* Reply messages shorter than this go plain even to a client with compression on: a few
 * hundred bytes gain less than zlib's header, trailer and time cost. */
#define SERVER_COMPRESS_MIN_BYTES 512u
#define SERVER_DEFAULT_MAX_AGE_GRACE_S 30u
/* How long an accepted connection may take to finish its TLS and HTTP/2 handshakes (gRPC's own
 * default is 120 s): a client that connects and sends nothing is closed after this. */
#define SERVER_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
/* gRPC's own: a client's keepalive pings closer than 5 minutes are strikes. */
#define SERVER_DEFAULT_MIN_PING_INTERVAL_MS 300000u

typedef struct server_options {
    const char *listen;     /* host:port; port 0 picks a free one (see server_port()) */
    unsigned workers;       /* read workers; 0 = the number of online CPUs */
    unsigned write_workers; /* threads that decode, validate and queue writes; 0 = 1 */
    /* On stop, health turns NOT_SERVING at once but calls keep being accepted for this long,
     * so that whatever routes by health (Kubernetes endpoints, hence new connections through a
     * Service; clients balancing with gRPC health checks) moves away before the listener closes;
     * 0 = close at once. Not applied when the stop came before the server ever reported SERVING.
     * When the listener closes, a call gRPC has received but not yet handed to a worker is
     * cancelled by gRPC (CANCELLED), and connections already open get GOAWAY only then. */
    unsigned drain_delay_ms;
    unsigned shutdown_grace_ms; /* how long in-flight calls may take to finish on stop */
    bool log_requests;          /* one log line per call (method, status, duration; no values) */
    /* Read workers' CPU slice in microseconds (Linux 6.12+ custom slices for normal tasks, 100
     * to 100000); 0 = the kernel's default. A short slice lets a worker woken by a request
     * preempt a busy neighbour instead of queueing behind its slice. */
    unsigned sched_slice_us;
    /* Bounds on what one client can make the server hold (0 = the default named): */
    unsigned max_streams;     /* --grpc-max-streams: concurrent streams per HTTP/2 connection
                                 (SETTINGS_MAX_CONCURRENT_STREAMS); SERVER_DEFAULT_MAX_STREAMS */
    size_t max_memory;        /* --grpc-max-memory: gRPC's resource quota, bytes, which the
                                 connections' buffers draw from (1.51 does not charge queued
                                 calls to it); SERVER_DEFAULT_MAX_MEMORY */
    unsigned max_send_ms;     /* --grpc-max-send-ms: a reply the client has not taken (its flow
                                 control window closed) within this is cancelled, freeing its
                                 call slot; SERVER_DEFAULT_MAX_SEND_MS */
    unsigned max_idle_s;      /* --grpc-max-connection-idle-s: GOAWAY after this long without a
                                 call; 0 = never */
    unsigned max_age_s;       /* --grpc-max-connection-age-s: GOAWAY after this long, so clients
                                 reconnect and rebalance across replicas; 0 = never */
    unsigned max_age_grace_s; /* --grpc-max-connection-age-grace-s: calls in flight get this long
                                 after the GOAWAY; SERVER_DEFAULT_MAX_AGE_GRACE_S */
    unsigned handshake_timeout_ms; /* --grpc-handshake-timeout-ms: an unfinished handshake is
                                      closed after this; SERVER_DEFAULT_HANDSHAKE_TIMEOUT_MS */
    unsigned min_ping_interval_ms; /* --grpc-min-ping-interval-ms: a client's pings closer than
                                      this with nothing sent to it in between (calls in flight or
                                      not) are strikes, and the third is GOAWAY too_many_pings;
                                      SERVER_DEFAULT_MIN_PING_INTERVAL_MS */
    /* --grpc-response-compression off: replies always plain. Otherwise (the default) a call
     * whose request came compressed (gzip or deflate: the client has compression on) gets its
     * reply messages of SERVER_COMPRESS_MIN_BYTES or more compressed the same way. */
    bool no_response_compression;
    unsigned max_watches; /* --grpc-max-watches: Health/Watch streams open at once; more are
                             refused RESOURCE_EXHAUSTED at once; 0: SERVER_DEFAULT_MAX_WATCHES */
    unsigned max_reflection_streams; /* --grpc-max-reflection-streams: reflection streams open
                                        at once, more refused likewise; 0: the default */
    unsigned reflection_idle_s;      /* --grpc-reflection-idle-s: a reflection stream waiting this
                                        long for its next request is ended; 0: never */
    /* TLS (all NULL: plaintext): PEM files, reloaded when they change (new connections get the
     * new certificate). With a client CA, client certificates are verified when presented, and
     * required with tls_require_client_cert (mTLS). */
    const char *tls_cert;         /* --tls-cert: the certificate chain */
    const char *tls_key;          /* --tls-key: its private key */
    const char *tls_client_ca;    /* --tls-client-ca: CAs that sign client certificates */
    bool tls_require_client_cert; /* --tls-require-client-cert */
    /* --tokens-file (NULL: every call is let through): bearer tokens and their scopes; each
     * method needs one (server_method_t.scope). Borrowed: outlives the server, which reads the
     * file again into it on server_request_reload() (core_tokens_reload()); the HTTP front door
     * may share it. */
    core_tokens_t *tokens;
    /* --upstream-tls-*: TLS to Predict's model servers whose binding says `tls: true`.
     * Borrowed (NULL: gRPC's default roots, no client certificate). */
    const struct upstream_tls *upstream_tls;
} server_options_t;

/* Fills *o with the documented defaults. */
void server_options_init(server_options_t *o);

/* Returns: how many core workers a server with these options takes (read + write workers), for
 * core_options_t.max_workers. */
size_t server_worker_count(const server_options_t *o);

/*
 * Creates the gRPC server in front of core (borrowed: it must outlive the server) and binds the
 * listening address; nothing is served until server_run(). Problems are logged.
 * Returns: 0 and *out; -EADDRINUSE when the address cannot be bound (SO_REUSEPORT is off, so a
 *          port held by another process fails here); -EINVAL when TLS is asked for and its files
 *          are unreadable or not a valid pair (logged as tls_failed); -EMFILE when core has too
 *          few worker slots; -ENOMEM; store_reader_new()'s errors.
 * Ownership: *out is the caller's, freed with server_free() after server_run() returns.
 */
int server_new(core_t *core, const server_options_t *o, server_t **out);

/* The bound TCP port (useful with port 0). */
int server_port(const server_t *s);

/*
 * Serves until server_request_stop(): health turns SERVING, and on stop NOT_SERVING; after
 * drain_delay_ms of serving as usual (none if the stop was requested before SERVING) the server
 * stops accepting calls, lets in-flight calls finish (up to shutdown_grace_ms, then cancels
 * them), and stops its workers. Catalog reloads requested with server_request_reload() run here
 * (core_reload()).
 * Returns: 0 after a clean stop; pthread_create()'s error as a negative errno when workers could
 *          not start.
 * Thread safety: call once, from one thread (it becomes the control thread).
 */
int server_run(server_t *s);

/* Asks server_run() to stop. Async-signal-safe (an atomic store) and callable from any thread;
 * may be called twice: the second call skips what is left of the drain delay and cancels
 * in-flight calls at once instead of waiting for the grace period. A stop requested before
 * server_run() is kept: it stops right after starting. */
void server_request_stop(server_t *s);

/* Asks the control thread to reload the catalog (core_reload()). Async-signal-safe (an atomic
 * store) and callable from any thread; `fstore serve` calls it on SIGHUP. */
void server_request_reload(server_t *s);

/* Frees the server (not the core). Accepts NULL. Call after server_run() returned (or instead of
 * it). */
void server_free(server_t *s);

/* ------------------------------------------------------------------------------------------ */
/* In-process calls: every method without a network, for fuzzers and tests                    */

typedef struct server_local server_local_t;

/* A call's outcome: the status gRPC would send, its message, and the response bytes. */
typedef struct server_local_result {
    int status; /* grpc_status_code */
    char msg[CORE_MSG_MAX];
    uint8_t *response; /* malloc'd, response_len bytes; NULL unless status is OK */
    size_t response_len;
} server_local_result_t;

/*
 * An in-process caller of core: one read worker's state (reader and, with cache, the caches of
 * resolved feature lists and output names a gRPC worker keeps) and one call slot, no sockets or
 * threads. A Predict passthrough (which needs a network) answers UNIMPLEMENTED.
 * Returns: 0 and *out; -EMFILE, -ENOMEM, store_reader_new()'s errors.
 * Ownership: *out is the caller's (server_local_free()), freed before core_close().
 * Thread safety: one thread at a time.
 */
int server_local_new(core_t *core, bool cache, server_local_t **out);
/*
 * Runs method (its gRPC path, e.g. "/fstore.v1.OnlineFeatureService/WriteFeatures") on req as a
 * gRPC worker would, waiting for a write's group commit.
 * Returns: 0 with *out filled (whatever the call's status); -ENOENT for a method fstore does not
 *          serve. Ownership: out->response is the caller's (free()).
 */
int server_local_call(server_local_t *l, const char *method, const uint8_t *req, size_t len,
                      server_local_result_t *out);
/* Accepts NULL. */
void server_local_free(server_local_t *l);

/* The gRPC methods' Prometheus families (go-grpc-prometheus' names and labels, every series
 * created at zero): grpc_server_started_total, grpc_server_handled_total{grpc_code},
 * grpc_server_handling_seconds. server is a server_t (an HTTP metrics source). Counted per worker,
 * summed here. Thread safety: any thread while the server runs. */
void server_metrics(void *server, FILE *out);

/* Whether the PEM chain's first certificate and the PEM private key belong together (the
 * listener's reload check, and serve's check of --upstream-tls-cert/-key). */
bool server_tls_pair_matches(const char *cert_pem, const char *key_pem);

#endif /* SERVER_SERVER_H */
