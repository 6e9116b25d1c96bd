/* http/http_int.h - shared inside http/: requests, routes, the JSON writer and converters. */
#ifndef HTTP_HTTP_INT_H
#define HTTP_HTTP_INT_H

#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "codec/codec.h"
#include "http/http.h"
#include "upstream/upstream.h"

/* ------------------------------------------------------------------------------------------ */
/* Output buffer and JSON writer (json.c)                                                      */

/* A growable byte buffer; out of memory is sticky (oom) and checked once at the end. */
typedef struct http_buf {
    char *p;
    size_t len, cap;
    bool oom;
} http_buf_t;

void http__put(http_buf_t *b, const void *p, size_t n);
void http__puts(http_buf_t *b, const char *s);
void http__putc(http_buf_t *b, char c);
void http__printf(http_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal of n bytes of UTF-8 (escaped as RFC 8259 asks). */
void http__json_str(http_buf_t *b, const char *s, size_t n);
/* A double as the shortest text that reads back as the same double (Python's repr); NaN and
 * infinities as null (Feast refuses them: allow_nan=False). */
void http__json_double(http_buf_t *b, double v);
/* A whole number. */
void http__json_i64(http_buf_t *b, int64_t v);
/* Standard base64 (RFC 4648, padded) of n bytes, as a JSON string. */
void http__json_base64(http_buf_t *b, const uint8_t *p, size_t n);
/* A catalog value as Feast's HTTP server renders it (null, numbers, strings, base64 bytes,
 * arrays). */
void http__json_value(http_buf_t *b, const catalog_value_t *v);
/* RFC 3339 UTC with Feast's adaptive fraction ("...:00Z", ".500Z", ".123456Z"). */
void http__json_timestamp(http_buf_t *b, int64_t us);
/* A double as TF Serving writes tensors: 6 significant digits when they round-trip, else 9
 * (float) or 17; ".0" appended to integral text. */
void http__tfs_number(http_buf_t *b, double v, bool is_float);
/* A CSV cell (RFC 4180) of n bytes of text: as it is, or in double quotes with its quotes
 * doubled when it holds a comma, a quote or a line break. */
void http__csv_text(http_buf_t *b, const char *s, size_t n);
/* A CSV cell of n bytes as standard base64 (never needs quotes). */
void http__csv_base64(http_buf_t *b, const uint8_t *p, size_t n);
void http__buf_free(http_buf_t *b);

/* RFC 3339 ("2024-05-01T12:00:00.5Z", "+02:00", a space for the T; no zone: UTC) to
 * microseconds since the epoch. Returns: 0, -EINVAL. */
int http__parse_time(const char *s, int64_t *us);

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */

typedef enum http_route_id {
    ROUTE_GET_ONLINE_FEATURES,
    ROUTE_WRITE_TO_ONLINE_STORE,
    ROUTE_PUSH,
    ROUTE_HEALTH,
    ROUTE_PING,
    ROUTE_INVOCATIONS,
    ROUTE_TFS_PREDICT,
    ROUTE_TFS_STATUS,
    ROUTE_METRICS,
    ROUTE_OTHER, /* unknown paths and methods */
    ROUTE_COUNT
} http_route_id_t;

/* How a route words its errors. */
typedef enum http_dialect {
    DIALECT_FEAST, /* a JSON string of {"module","class","message"} */
    DIALECT_TFS,   /* {"error": "..."} with TF Serving's status mapping */
    DIALECT_PLAIN, /* {"error": "..."} */
} http_dialect_t;

typedef struct http_req http_req_t;

/* A route's handler. Returns: 0 with the response set (http__respond*); HTTP_SUSPENDED (the
 * request completes later, from another thread, with http__complete()); or a negative errno
 * with the core context's message set (answered as an error in the route's dialect). */
typedef int (*http_handler_fn)(http_req_t *r);
#define HTTP_SUSPENDED 1

typedef struct http_route {
    const char *method;
    const char *path; /* exact, or a prefix ending with '/' for TF Serving's */
    http_route_id_t id;
    http_dialect_t dialect;
    http_handler_fn fn;
    const char *name; /* the route label in metrics */
    unsigned scope;   /* CORE_SCOPE_* a caller needs (with --tokens-file); 0: open */
} http_route_t;

struct http_req {
    http_t *h;
    struct MHD_Connection *conn;
    const http_route_t *route;
    const char *url;
    const char *method; /* libmicrohttpd's, valid for the request's life */
    char *body;         /* NUL-terminated */
    size_t len, cap;
    bool too_big, refused, suspended;
    /* the response (set by the handler or by the completion) */
    int status;
    http_buf_t out;
    const char *content_type;
    char headers[2][2][64]; /* up to two extra response headers: name, value */
    int n_headers;
    /* a failure's errno and the Feast class that goes with it (Feast routes) */
    const char *feast_class;
    base_arena_t arena;
    core_ctx_t ctx;
    int64_t t0_us;
    /* completion from another thread (writes) */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* in-process calls wait on it */
    bool done;
    /* work the completion left for the listener's thread once resumed (a passthrough writes
     * the upstream's answer there, not on the upstream pool's one thread); then cleared */
    void (*finish)(http_req_t *r);
    void *finish_arg;
    /* the caller, authorized at the headers (the listener's requests; an in-process call is
     * authorized in request_context()) */
    bool authorized;
    const char *principal;
    const struct core_grants *grants; /* with principal: its limited scopes (core_ctx_t) */
    unsigned grant_scope;
    bool counted_write; /* counted in h->writes until freed */
    /* in-process calls (local.c): no connection; their headers */
    const char *const *local_headers; /* name, value, ..., NULL */
};

/* Sets a JSON (or other) response. */
void http__respond(http_req_t *r, int status, const char *content_type);
/* An extra response header (at most two, short). */
void http__header(http_req_t *r, const char *name, const char *value);
/* Answers the failure rc (ctx.msg holds the message) in the route's dialect. */
void http__respond_error(http_req_t *r, int rc);
/* For a suspended request: the response is set (or rc < 0 with ctx.msg); resumes it. Any
 * thread. */
void http__complete(http_req_t *r, int rc);
/* The request header's value, or NULL. */
const char *http__header_in(http_req_t *r, const char *name);
/* The q of one item of a header list (the n bytes at p, e.g. "text/csv;q=0.5" or "gzip;q=0"):
 * its q parameter, any case, clamped to 0..1 (one that is not a number above 0 refuses: 0); 1
 * without one. */
double http__item_q(const char *p, size_t n);
/* Parses the body as a JSON object, its tree at most HTTP_JSON_AMPLIFICATION times the body's
 * size (plus HTTP_JSON_FLOOR). Returns: 0 and *out (decref it); -EINVAL (not a JSON object) or
 * -EOVERFLOW (too dense: 413) with the message set. */
#define HTTP_JSON_AMPLIFICATION 32
#define HTTP_JSON_FLOOR (256u << 10)
int http__parse_json(http_req_t *r, json_t **out);

/* /get-online-features's body as Feast's SDK sends it, decoded without a JSON tree
 * (feast_json.c): the feature list (CORE_LIST_FEATURES keyed by the features array's bytes and
 * parsed on demand by http__feast_read_features(), CORE_LIST_SERVICE, or CORE_LIST_NONE), and
 * the entity columns typed by their JSON (INT64, STRING, BOOL, NULL; strings point into the
 * body), each of entity_rows[i] values (entities.n_rows is left 0: core_columns_shape() decides
 * it). Everything is in a (and the body, which must outlive it). */
typedef struct http__feast_read {
    core_feature_list_t list;
    size_t n_features; /* CORE_LIST_FEATURES: the array's strings (before they are parsed) */
    core_columns_t entities;
    size_t *entity_rows;
} http__feast_read_t;
/* Returns: 0 and *out; CORE_DECLINED (not that shape, or not well-formed: jansson's path decides
 * it, errors included); -ENOMEM. */
int http__feast_read_decode(base_arena_t *a, const uint8_t *body, size_t len,
                            http__feast_read_t *out);
/* core_feature_list_t.parse for a list http__feast_read_decode() keyed. Returns: 0 (refs set);
 * CORE_DECLINED (bytes it did not check); -ENOMEM. */
int http__feast_read_features(base_arena_t *a, core_feature_list_t *l);

/* HTTP status for an errno, as TF Serving maps gRPC codes (400, 404, 429, 503, 504, ...). */
int http__status_of(int rc);

/* The routes (feast.c, sagemaker.c, tfs.c, http.c). */
int http__feast_get_online_features(http_req_t *r);
int http__feast_write(http_req_t *r);
int http__feast_push(http_req_t *r);
int http__health(http_req_t *r);
int http__invocations(http_req_t *r);
int http__tfs(http_req_t *r);
int http__metrics_route(http_req_t *r);

/* Predict's outputs as JSON (predict.c): the core Predict, the binding named by spec, entity
 * inputs from the instances (rows) or inputs (columns). */
/* How a passthrough's answer is written (the upstream's outputs): TF Serving's rows
 * ("predictions"), its columns ("outputs"), or CSV lines (SageMaker). */
typedef enum http_output { HTTP_OUTPUT_ROWS, HTTP_OUTPUT_COLUMNS, HTTP_OUTPUT_CSV } http_output_t;
typedef struct http_predict_in {
    const json_t *instances;    /* an array, or NULL */
    const json_t *inputs;       /* an object (or a single input's value), or NULL */
    const char *signature_name; /* the caller's, or NULL */
    bool text;                  /* values are text (CSV): typed by their join keys */
    http_output_t output;       /* a passthrough's answer */
} http_predict_in_t;
/* Returns: 0 with p's tensors read (end with core_read_end()); HTTP_SUSPENDED when the binding
 * has an upstream (http__passthrough() answers); a negative errno with the message set. */
int http__predict(http_req_t *r, const core_model_spec_t *spec, const http_predict_in_t *in,
                  core_predict_t *p);
/* A binding with an upstream (passthrough.c): the caller's JSON inputs and p's features go to
 * the model server; its answer is written as in->output says when it comes.
 * Returns: HTTP_SUSPENDED; a negative errno with the message set (nothing in flight). */
int http__passthrough(http_req_t *r, core_predict_t *p, const http_predict_in_t *in);
/* Row r of a tensor as TF Serving writes it: a scalar, or a list of the tensor's width; strings
 * as {"b64": ...} with b64 (tfs.c). */
void http__tensor_row(http_buf_t *b, const core_tensor_t *t, size_t r, bool b64);
/* Predict's tensors as {"predictions": ...} (rows) or {"outputs": ...} (columns) (tfs.c). */
void http__tensors_json(http_buf_t *b, const core_predict_t *p, bool rows);

/* ------------------------------------------------------------------------------------------ */
/* The listener                                                                                */

#define HTTP_BUCKETS                                                                               \
    12 /* latency buckets (seconds): .0005 .001 .0025 .005 .01 .025 .05 .1 .25 .5                  \
          1 +Inf */

/* The status codes counted one by one (http.c's http_codes[]); any other is counted as
 * code="other". */
#define HTTP_N_CODES 22

/* Per route counters: requests started, answered by status code, and a latency histogram. */
typedef struct http_route_stats {
    _Atomic uint64_t started;
    _Atomic uint64_t by_code[HTTP_N_CODES + 1]; /* [HTTP_N_CODES]: any other code */
    _Atomic uint64_t buckets[HTTP_BUCKETS];
    _Atomic uint64_t sum_us;
} http_route_stats_t;

/* The counters of one slot: a thread counts into its own (slots are handed out round-robin at a
 * thread's first count), and a scrape sums them, so up to HTTP_STAT_SLOTS threads share no
 * cache line (more share slots, still atomically). */
#define HTTP_STAT_SLOTS 16
typedef struct http_stat_slot {
    _Alignas(64) http_route_stats_t routes[ROUTE_COUNT];
} http_stat_slot_t;

struct http {
    core_t *core;
    http_options_t o;
    struct MHD_Daemon *daemon;
    int port;
    pthread_key_t worker_key;
    upstream_pool_t *upstreams;    /* model servers behind bindings (NULL in-process) */
    _Atomic unsigned active;       /* requests begun and not yet answered and freed */
    _Atomic unsigned suspended;    /* connections suspended and not yet resumed */
    _Atomic unsigned running;      /* requests inside run() */
    _Atomic unsigned passthroughs; /* upstream calls in flight (--http-max-passthroughs) */
    /* Passthroughs waiting on their upstream, watched for a client that hangs up (passthrough.c:
     * a suspended connection is not read, so libmicrohttpd would not notice). */
    pthread_mutex_t pt_mu;
    pthread_cond_t pt_cv;
    struct passthrough *pt_list; /* under pt_mu */
    uint64_t pt_ids;             /* under pt_mu */
    bool pt_stop, pt_watching;   /* under pt_mu */
    pthread_t pt_watcher;
    _Atomic uint64_t pt_abandoned; /* cancelled because their client hung up */
    _Atomic unsigned writes;       /* write requests from headers to answer (--http-max-writes) */
    _Atomic bool stopping;
    bool tls;            /* HTTPS: the pair is http/tls.c's (http__tls_acquire()) */
    char *tls_client_ca; /* their PEM at start: libmicrohttpd asks for client certificates */
    struct http__tls_ca *client_ca; /* --tls-client-ca, verified against (NULL: none asked) */
    _Atomic unsigned n_workers;
    http_stat_slot_t stats[HTTP_STAT_SLOTS];
    _Atomic unsigned next_stat_slot;
    /* --http-connection-rate: a token bucket per slot of client addresses (hashed: addresses
     * that share a slot share its rate, so memory stays fixed whatever the addresses). */
    pthread_mutex_t rate_mu;
    struct http__rate_slot *rate; /* HTTP_RATE_SLOTS */
    int64_t rate_logged_us;       /* under rate_mu: the last connection_rate_exceeded line */
    _Atomic uint64_t rate_refused;
    uint64_t rate_seed; /* the buckets' hash seed, random per start */
};
#define HTTP_RATE_SLOTS 4096

/* Stops the passthrough watcher (passthrough.c) once no passthrough can start; accepts a
 * listener that never started one. */
void http__passthrough_watch_stop(http_t *h);

/* An HTTPS connection's own state (its libmicrohttpd socket context, from its start to its
 * close): the verdict on its client certificate, and the certificate pair its handshake got,
 * held so that a pair a rotation replaced is freed once no connection uses it. */
typedef struct http__tls_pair http__tls_pair_t;
typedef struct http__conn {
    int cert; /* http.c's cert_state_t */
    http__tls_pair_t *pair;
    /* A verified certificate's names (http__tls_peer_names()), for the tokens file's cert:
     * lines; freed with the connection. */
    char *names[CORE_MAX_CERT_NAMES];
    size_t n_names;
} http__conn_t;

/* Lets go of conn's pair (NULL: none). Thread-safe. */
void http__tls_unhold(http__tls_pair_t *pair);

/* The HTTPS pair (http/tls.c), one per process, shared by every HTTPS listener: loaded from
 * cert and key (the same paths for every listener), then checked at each handshake and reloaded
 * when the files change. *callback is for MHD_OPTION_HTTPS_CERT_CALLBACK.
 * Returns: 0; -EINVAL with why set (unreadable, not PEM, a key that is not the certificate's,
 * other paths than the pair already served). Each success is ended by http__tls_release(). */
int http__tls_acquire(const char *cert, const char *key, void **callback, char *why, size_t cap);
void http__tls_release(void);

/* A listener's client CAs (--tls-client-ca, http/tls.c): loaded from path at open, then looked
 * at again when the file changes (a broken new file is logged, and the CAs in use stay).
 * *pem gets the file's text as loaded (the caller's, NUL-terminated: what libmicrohttpd is
 * given so that GnuTLS asks for client certificates). Returns: 0; -EINVAL with why set
 * (unreadable, no PEM CA in it); -ENOMEM. Ended by http__tls_ca_close() (NULL: nothing). */
typedef struct http__tls_ca http__tls_ca_t;
int http__tls_ca_open(const char *path, http__tls_ca_t **out, char **pem, char *why, size_t cap);
void http__tls_ca_close(http__tls_ca_t *ca);

/* The verdict on the client certificate of session s against ca's CAs as the file is now.
 * Returns: 1 (from them, within its validity, for client authentication); 0 (none given);
 * -1 (any other). Thread-safe. */
int http__tls_ca_verify(http__tls_ca_t *ca, gnutls_session_t s);
/* The names of session s's client certificate (verify it first): its subject alternative names
 * (DNS, URI, e-mail; IP addresses as text), or its subject's common name when it has none (RFC
 * 6125), at most cap,
 * each malloc'd into out (the caller frees them). Returns: how many; 0 when there is none. */
size_t http__tls_peer_names(gnutls_session_t s, char **out, size_t cap);

#endif /* HTTP_HTTP_INT_H */
