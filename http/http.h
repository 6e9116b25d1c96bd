/* http/http.h - the HTTP front door: Feast's HTTP feature server, SageMaker, TF Serving REST. */
#ifndef HTTP_HTTP_H
#define HTTP_HTTP_H

#include <stdbool.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#include "core/core.h"

/*
 * One HTTP/1.1 listener (libmicrohttpd: epoll, a thread pool, keep-alive and pipelining) in
 * front of the same serving core as gRPC: decode JSON (or CSV) -> core -> encode. Routes:
 *
 *   Feast's HTTP feature server (feast serve; its Python SDK's remote online store):
 *     POST /get-online-features      features or feature_service, entities as columns
 *     POST /write-to-online-store    feature_view_name, df (columns, event_timestamp)
 *     POST /push                     push_source_name, df, to
 *     GET  /health                   200 when SERVING, else 503; empty body
 *   SageMaker's container contract:
 *     GET  /ping                     200 when SERVING, else 503; empty body
 *     POST /invocations              rows (JSON or CSV) with the binding's features appended
 *   TensorFlow Serving REST:
 *     POST /v1/models/NAME[/versions/N|/labels/L]:predict   instances or inputs (a binding with
 *                                    an upstream answers the model server's outputs)
 *     GET  /v1/models/NAME[/versions/N|/labels/L]           model status
 *   GET  /metrics                    Prometheus text format 0.0.4 (http_options_t.metrics)
 *
 * Errors: Feast routes answer Feast's error body (a JSON string holding {"module","class",
 * "message"}) with Feast's status codes, so Feast's client raises its own exception classes;
 * TF Serving routes answer {"error": "..."} with TF Serving's status mapping; SageMaker routes
 * answer {"error": "..."}. Every request is bounded like a gRPC one: the body by
 * --max-message-bytes (refused from its Content-Length before it is read), entities, features
 * and write rows by the core's limits, and a 4xx names the limit.
 *
 * Threads: the listener's thread pool (each with its own core worker, made on first use); a
 * write is handed to the store (or the replication log) and its connection suspended, not its
 * thread, until the write completes; so is a Predict passthrough while the model server thinks
 * (its call runs on the upstream pool's thread).
 */

typedef struct http http_t;

/* Writes Prometheus text (complete families) to out; called on a scrape. */
typedef void (*http_metrics_fn)(void *arg, FILE *out);

typedef struct http_options {
    const char *listen;           /* --http-listen "host:port"; NULL or "" = no HTTP listener */
    unsigned threads;             /* --http-threads (0: CPUs) */
    unsigned max_connections;     /* --http-max-connections (0: 1024) */
    unsigned connection_rate;     /* --http-connection-rate: new connections per second from one
                                     client address (an IPv4 address, an IPv6 /64), a second's
                                     worth at once; past it a connection is closed at accept,
                                     before any TLS handshake (0: HTTP_DEFAULT_CONNECTION_RATE;
                                     HTTP_CONNECTION_RATE_OFF: no bound) */
    unsigned idle_timeout_s;      /* --http-idle-timeout-s: an idle keep-alive connection is
                                     closed after this long (0: 60) */
    unsigned upstream_timeout_ms; /* --http-upstream-timeout-ms: a passthrough to a binding's
                                     upstream ends by then (the binding's timeout_ms when
                                     sooner; HTTP_DEFAULT_UPSTREAM_TIMEOUT_MS; 0: no
                                     bound but the binding's) */
    unsigned max_passthroughs;    /* --http-max-passthroughs: upstream calls in flight at once;
                                 more are 503 (0: HTTP_DEFAULT_MAX_PASSTHROUGHS) */
    unsigned max_writes;  /* --http-max-writes: write requests (a write scope's routes) from their
                             headers to their answer, body buffering and the store's apply
                             included; more are 429 at their headers (0: HTTP_DEFAULT_MAX_WRITES) */
    const char *tls_cert; /* --tls-cert, --tls-key: HTTPS with this PEM certificate chain
                             and key (reloaded when they change: http/tls.c); NULL: plain HTTP */
    const char *tls_key;
    /* --tls-client-ca (with HTTPS): client certificates are asked for and, when given, must
     * chain to these CAs and be for client authentication; with tls_require_client_cert
     * (--tls-require-client-cert) every route but /health, /ping and /metrics needs one:
     * without, 401; with another, 401 (checked once per connection) */
    const char *tls_client_ca;
    bool tls_require_client_cert;
    core_tokens_t *tokens; /* --tokens-file: Authorization: Bearer checked per route (NULL:
                                   open); borrowed */
    const struct upstream_tls *upstream_tls; /* as server_options_t's (borrowed) */
    const char *sagemaker_model; /* FSTORE_SAGEMAKER_MODEL: /invocations' binding, when the
                                    request's custom attributes name none */
    http_metrics_fn metrics[4];  /* /metrics: each adds its families (after the listener's own) */
    void *metrics_arg[4];
    size_t n_metrics;
    bool metrics_only; /* serve /metrics alone (--metrics-listen) */
    bool log_requests; /* --log-requests: one "http_request" line per answered request (method,
                          route or "other", status, time, sizes; never the URL's query, a body
                          or an error message) */
    /* --http-response-compression off: bodies always plain. Otherwise (the default) a body of
     * HTTP_COMPRESS_MIN_BYTES or more goes gzip to a client whose Accept-Encoding takes gzip
     * (Content-Encoding: gzip; Vary: Accept-Encoding on every such body). */
    bool no_response_compression;
    /* --http-json-decoder jansson: every /get-online-features body goes to jansson. Otherwise
     * (fast, the default) the usual body is decoded by hand (http/feast_json.c, held against
     * jansson) and anything else by jansson; the answers are the same, only faster. */
    bool jansson_only;
} http_options_t;

#define HTTP_DEFAULT_LISTEN "0.0.0.0:8080"
#define HTTP_DEFAULT_MAX_CONNECTIONS 1024
#define HTTP_DEFAULT_CONNECTION_RATE 1000
#define HTTP_CONNECTION_RATE_OFF UINT_MAX
#define HTTP_DEFAULT_IDLE_TIMEOUT_S 60
#define HTTP_DEFAULT_MAX_PASSTHROUGHS 64
/* Writes in flight: with --max-message-bytes, what writes can hold at once (64 x 4 MiB). */
#define HTTP_DEFAULT_MAX_WRITES 64
#define HTTP_DEFAULT_UPSTREAM_TIMEOUT_MS 60000 /* SageMaker's own limit on an invocation */
/* Bodies shorter than this go plain: a small JSON answer gains less than gzip's time. */
#define HTTP_COMPRESS_MIN_BYTES 1024u

/* Fills *o with the defaults (HTTP_DEFAULT_LISTEN, or $SAGEMAKER_BIND_TO_PORT's port on all
 * addresses when it is set; $FSTORE_SAGEMAKER_MODEL). */
void http_options_init(http_options_t *o);

/* Core workers the listener needs (one per thread): add it to core_options_t.max_workers. */
unsigned http_worker_count(const http_options_t *o);

/*
 * Binds o->listen and starts serving on core. Returns: 0 and *out; -EADDRINUSE (cannot listen:
 * in use or not an address, or libmicrohttpd refused the TLS pair), -EINVAL (a malformed
 * address, or --tls-cert/--tls-key unreadable: logged as tls_failed), -ENOMEM.
 * Ownership: *out is the caller's, stopped with http_stop() before core_close().
 */
int http_start(core_t *core, const http_options_t *o, http_t **out);
/* The port it listens on (for an address given with port 0). */
int http_port(const http_t *h);
/* Stops listening and refuses new requests (503), finishes the requests in flight (writes
 * included, however long the core takes to complete them; Predict passthroughs are cancelled
 * and answered 503), frees. Accepts NULL. */
void http_stop(http_t *h);

/*
 * One request through its route without a listener, in this thread (a write waits for its
 * completion): for fuzzers and tests. headers: name, value, ..., NULL (or NULL). *out is the
 * response body (malloc'd, NULL when empty; the caller frees it).
 * Returns: 0 and *status; -ENOMEM, or core_worker_new()'s errors.
 */
int http_local_call(core_t *core, const http_options_t *o, const char *method, const char *path,
                    const char *const *headers, const void *body, size_t len, int *status,
                    char **out, size_t *out_len);

/* Per-route request counters and latency, as Prometheus families (http_requests_total,
 * http_request_duration_seconds). */
void http_metrics(void *h, FILE *out);

#endif /* HTTP_HTTP_H */
