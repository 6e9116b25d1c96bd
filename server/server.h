/* server/server.h - the fstore gRPC server: Feast-compatible reads, writes, health, hot reload. */
#ifndef SERVER_SERVER_H
#define SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

/*
 * One server = one gRPC server (gRPC's C core), one open store and the catalog it serves. It
 * answers on one address:
 *   /feast.serving.ServingService/GetOnlineFeatures     (Feast's API, unchanged)
 *   /feast.serving.ServingService/GetFeastServingInfo
 *   /fstore.v1.OnlineFeatureService/GetOnlineFeatures  (the same handler)
 *   /fstore.v1.OnlineFeatureService/WriteFeatures, DeleteEntities, GetCatalog
 *   /grpc.health.v1.Health/Check, Watch
 *   /tensorflow.serving.PredictionService/Predict       (TF Serving's API, for model bindings:
 *                                                        feature tensors, or features added on the
 *                                                        way to an upstream model server)
 *
 * Threads: `workers` read workers and `write_workers` write workers, each with its own completion
 * queue, plus the thread that calls server_run() (the control thread: health watches, catalog
 * reloads, shutdown). Ordinary writes never make a read wait: the catalog is an atomically
 * swapped snapshot whose old versions are freed only once every worker has passed a quiescent
 * point and each read worker's feature-list cache has let go of it (on its next read), each read
 * worker owns its store reader, and the store's writer commits beside open reads. Two rare, brief
 * events do make reads wait (see storage/store.h): a reload's catalog commit (store_apply_catalog()
 * on SIGHUP) and a map resize (when the data file fills up and its map doubles). Both take the
 * store's map lock exclusively: they wait for the reads already open to end, and new reads wait for
 * them.
 */

typedef struct server server_t;

typedef enum server_log_format {
    SERVER_LOG_JSON = 0, /* one JSON object per line (the default) */
    SERVER_LOG_TEXT = 1, /* "time LEVEL event key=value ..." for people */
} server_log_format_t;

/*
 * Request limits. A request over a limit fails with INVALID_ARGUMENT naming the limit and its
 * flag; a message over max_message_bytes is refused by gRPC with RESOURCE_EXHAUSTED. A response
 * over max_response_bytes (a read of many large values, a Predict batch, the catalog) fails with
 * RESOURCE_EXHAUSTED before it is allocated; the same cap applies to the request Predict sends
 * to an upstream model server and to the response it takes back.
 */
typedef struct server_limits {
    size_t max_message_bytes;  /* --max-message-bytes, default 4 MiB (gRPC's own default) */
    size_t max_response_bytes; /* --max-response-bytes: largest response, default 64 MiB */
    size_t max_entities;       /* --max-entities: entity rows per read, default 1000 */
    size_t max_features;       /* --max-features: feature references per read, default 1000 */
    size_t max_write_rows;     /* --max-write-rows: rows per write or delete, default 10000 */
} server_limits_t;

/* Entity columns (join keys) one read may carry; not a flag, since a read needs only the join
 * keys of its views. A write's columns are bounded by its view instead: its join keys plus its
 * features (a delete: its join keys). Both are checked before any value is converted. */
#define SERVER_MAX_ENTITY_COLUMNS 256u

#define SERVER_DEFAULT_LISTEN "0.0.0.0:6566" /* Feast's feature server port */
#define SERVER_DEFAULT_MAX_MESSAGE_BYTES (4u << 20)
#define SERVER_DEFAULT_MAX_RESPONSE_BYTES (64u << 20)
#define SERVER_DEFAULT_MAX_ENTITIES 1000u
#define SERVER_DEFAULT_MAX_FEATURES 1000u
#define SERVER_DEFAULT_MAX_WRITE_ROWS 10000u
#define SERVER_DEFAULT_WRITE_WORKERS 4u
#define SERVER_DEFAULT_SHUTDOWN_GRACE_MS 10000u

typedef struct server_options {
    const char *listen;       /* host:port; port 0 picks a free one (see server_port()) */
    const char *catalog_path; /* YAML file or directory, applied at start and on reload; NULL =
                                 serve the catalog already applied to the data directory */
    const char *data_dir;     /* the store's directory (created if missing) */
    unsigned workers;         /* read workers; 0 = the number of online CPUs */
    unsigned write_workers;   /* threads that decode, validate and queue writes; 0 = 1 */
    server_limits_t limits;
    /* On stop, health turns NOT_SERVING at once but calls keep being accepted for this long,
     * so that whatever routes by health (Kubernetes endpoints, hence new connections through a
     * Service; clients balancing with gRPC health checks) moves away before the listener closes;
     * 0 = close at once. Not applied when the stop came before the server ever reported SERVING.
     * When the listener closes, a call gRPC has received but not yet handed to a worker is
     * cancelled by gRPC (CANCELLED), and connections already open get GOAWAY only then. */
    unsigned drain_delay_ms;
    unsigned shutdown_grace_ms; /* how long in-flight calls may take to finish on stop */
    bool log_requests;          /* one log line per call (method, status, duration; no values) */
    store_sync_t sync;          /* the store's durability policy */
    /* Read workers' CPU slice in microseconds (Linux 6.12+ custom slices for normal tasks, 100
     * to 100000); 0 = the kernel's default. A short slice lets a worker woken by a request
     * preempt a busy neighbour instead of queueing behind its slice. */
    unsigned sched_slice_us;
} server_options_t;

/* Fills *o with the documented defaults (data_dir and catalog_path NULL). */
void server_options_init(server_options_t *o);

/* Sets the process-wide log format (default JSON). Call before server_new(). */
void server_log_setup(server_log_format_t format);

/*
 * Opens the store, applies the catalog (or takes the applied one), and binds the listening
 * address; nothing is served until server_run(). Problems are logged with their details.
 * Returns: 0 and *out; -EADDRINUSE when the address cannot be bound (SO_REUSEPORT is off, so a
 *          port held by another process fails here); -EINVAL for an invalid catalog or options;
 *          -EPERM when the catalog has breaking changes against the stored one; -ENOENT when no
 *          catalog was given and none is applied; the store's errors from store_open().
 * Ownership: *out is the caller's, freed with server_free() after server_run() returns.
 */
int server_new(const server_options_t *o, server_t **out);

/* The bound TCP port (useful with port 0). */
int server_port(const server_t *s);

/*
 * Serves until server_request_stop(): health turns SERVING, and on stop NOT_SERVING; after
 * drain_delay_ms of serving as usual (none if the stop was requested before SERVING) the server
 * stops accepting calls, lets in-flight calls
 * finish (up to shutdown_grace_ms, then cancels them), and stops its workers. Catalog reloads
 * requested with server_request_reload() run here. Returns: 0 after a clean stop; when workers
 * could not start, store_reader_new()'s error
 *          (-ENOMEM, ...) or pthread_create()'s as a negative errno (-EAGAIN, ...).
 * Thread safety: call once, from one thread (it becomes the control thread).
 */
int server_run(server_t *s);

/* Asks server_run() to stop. Async-signal-safe (an atomic store) and callable from any thread;
 * may be called twice: the second call skips what is left of the drain delay and cancels
 * in-flight calls at once instead of waiting for the grace period. A stop requested before
 * server_run() is kept: it stops right after starting. */
void server_request_stop(server_t *s);

/*
 * Asks the control thread to reload the catalog from catalog_path: it is loaded, checked,
 * applied to the store (breaking changes refused) and swapped in while requests keep flowing; an
 * invalid catalog is logged with every error and the old one keeps serving.
 * Async-signal-safe (an atomic store) and callable from any thread; `fstore serve` calls it from
 * its sigwait() thread on SIGHUP.
 */
void server_request_reload(server_t *s);

/* Counters for tests and logs: catalog reloads that succeeded and that were rejected. */
void server_reload_counts(const server_t *s, uint64_t *applied, uint64_t *rejected);

/* Closes the store and frees the server. Accepts NULL. Call after server_run() returned (or
 * instead of it). */
void server_free(server_t *s);

#endif /* SERVER_SERVER_H */
