/* http/http.c - the listener: libmicrohttpd, routing, bodies, suspended writes, errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "http/http_int.h"

/*
 * libmicrohttpd runs an epoll listener with a thread pool; each pool thread calls on_request()
 * for the requests of its connections, and gets a core worker of its own the first time (a
 * thread-specific key frees it when the pool stops). A body is collected, up to
 * --max-message-bytes (a Content-Length over it is refused before anything is read), and the
 * route runs once it is complete. A write suspends its connection (not the thread) while the
 * store or the replication log completes it, and resumes it from the completing thread.
 */

static const http_route_t routes[] = {
    {"POST", "/get-online-features", ROUTE_GET_ONLINE_FEATURES, DIALECT_FEAST,
     http__feast_get_online_features, "/get-online-features", CORE_SCOPE_READ},
    {"POST", "/write-to-online-store", ROUTE_WRITE_TO_ONLINE_STORE, DIALECT_FEAST,
     http__feast_write, "/write-to-online-store", CORE_SCOPE_WRITE},
    {"POST", "/push", ROUTE_PUSH, DIALECT_FEAST, http__feast_push, "/push", CORE_SCOPE_WRITE},
    {"GET", "/health", ROUTE_HEALTH, DIALECT_FEAST, http__health, "/health", 0},
    {"GET", "/ping", ROUTE_PING, DIALECT_PLAIN, http__health, "/ping", 0},
    {"POST", "/invocations", ROUTE_INVOCATIONS, DIALECT_PLAIN, http__invocations, "/invocations",
     CORE_SCOPE_READ},
    {"POST", "/v1/models/", ROUTE_TFS_PREDICT, DIALECT_TFS, http__tfs, "/v1/models:predict",
     CORE_SCOPE_READ},
    {"GET", "/v1/models/", ROUTE_TFS_STATUS, DIALECT_TFS, http__tfs, "/v1/models", CORE_SCOPE_READ},
    {"GET", "/metrics", ROUTE_METRICS, DIALECT_PLAIN, http__metrics_route, "/metrics", 0},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

static const char *const route_names[ROUTE_COUNT] = {
    [ROUTE_GET_ONLINE_FEATURES] = "/get-online-features",
    [ROUTE_WRITE_TO_ONLINE_STORE] = "/write-to-online-store",
    [ROUTE_PUSH] = "/push",
    [ROUTE_HEALTH] = "/health",
    [ROUTE_PING] = "/ping",
    [ROUTE_INVOCATIONS] = "/invocations",
    [ROUTE_TFS_PREDICT] = "/v1/models:predict",
    [ROUTE_TFS_STATUS] = "/v1/models",
    [ROUTE_METRICS] = "/metrics",
    [ROUTE_OTHER] = "other",
};

static void json_alloc_setup(void);
static pthread_once_t json_alloc_once = PTHREAD_ONCE_INIT;

void http_options_init(http_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->listen = HTTP_DEFAULT_LISTEN;
    /* SageMaker's inference pipelines give each container its port. */
    const char *port = getenv("SAGEMAKER_BIND_TO_PORT");
    if (port != NULL && port[0] != '\0') {
        static char addr[64];
        snprintf(addr, sizeof addr, "0.0.0.0:%.10s", port);
        o->listen = addr;
    }
    o->sagemaker_model = getenv("FSTORE_SAGEMAKER_MODEL");
    /* Before any thread logs through jansson: its allocator is process-wide. */
    pthread_once(&json_alloc_once, json_alloc_setup);
    o->upstream_timeout_ms = HTTP_DEFAULT_UPSTREAM_TIMEOUT_MS;
}

static unsigned threads_of(const http_options_t *o)
{
    if (o->threads > 0)
        return o->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

unsigned http_worker_count(const http_options_t *o)
{
    return o->listen != NULL && o->listen[0] != '\0' ? threads_of(o) : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Responses                                                                                   */

void http__respond(http_req_t *r, int status, const char *content_type)
{
    r->status = status;
    r->content_type = content_type;
}

void http__header(http_req_t *r, const char *name, const char *value)
{
    if (r->n_headers >= 2)
        return;
    snprintf(r->headers[r->n_headers][0], sizeof r->headers[0][0], "%s", name);
    snprintf(r->headers[r->n_headers][1], sizeof r->headers[0][1], "%s", value);
    r->n_headers++;
}

int http__status_of(int rc)
{
    switch (rc) {
    case -EINVAL:
    case -ERANGE:
    case -ENAMETOOLONG:
    case -E2BIG:
    case -EBUSY:
    case -EROFS:
    case -ESTALE:
        return 400;
    case -ENOENT:
        return 404;
    case -EEXIST:
    case -EALREADY:
        return 409;
    case -EPERM:
    case -EACCES:
        return 403;
    case -ENOKEY:
    case -EKEYREJECTED:
        return 401;
    case -ENOSPC: /* the data directory's disk is full */
        return 507;
    case -ENOMEM:
    case -EMSGSIZE:
    case -EMFILE:
    case -ENOBUFS:
        return 429;
    case -EAGAIN:
    case -ESHUTDOWN:
    case -ECONNREFUSED:
        return 503;
    case -ETIMEDOUT:
        return 504;
    case -EOVERFLOW: /* a JSON body too dense */
        return 413;
    case -EFBIG: /* the store's map at its largest size */
        return 507;
    case -ECANCELED: /* the server is stopping */
        return 503;
    case -ENOSYS:
    case -EOPNOTSUPP:
        return 501;
    default:
        return 500;
    }
}

/* Feast's error body: a JSON string holding {"module", "class", "message"} (what
 * FeastError.to_error_detail() returns, encoded again by the response). */
static void feast_error(http_buf_t *b, const char *cls, const char *msg)
{
    http_buf_t inner = {0};
    http__puts(&inner, "{\"module\": \"feast.errors\", \"class\": ");
    http__json_str(&inner, cls, strlen(cls));
    http__puts(&inner, ", \"message\": ");
    http__json_str(&inner, msg, strlen(msg));
    http__putc(&inner, '}');
    if (inner.oom)
        b->oom = true;
    else
        http__json_str(b, inner.p, inner.len);
    http__buf_free(&inner);
}

void http__respond_error(http_req_t *r, int rc)
{
    const char *msg = r->ctx.msg[0] != '\0' ? r->ctx.msg : strerror(-rc);
    int status = http__status_of(rc);
    r->out.len = 0;
    r->out.oom = false;
    r->n_headers = 0;
    if (r->route != NULL && r->route->dialect == DIALECT_FEAST) {
        /* Feast: unknown objects are 404, a request it cannot take 422 (FastAPI's validation
         * status), the rest as the errno says. */
        const char *cls = r->feast_class;
        if (rc == -ENOENT) {
            status = 404;
            if (cls == NULL)
                cls = "FeatureViewNotFoundException";
        } else if (rc == -EINVAL || rc == -ERANGE || rc == -E2BIG || rc == -ENAMETOOLONG) {
            status = 422;
        } else if (rc == -EPERM || rc == -ENOKEY || rc == -EKEYREJECTED) {
            cls = "FeastPermissionError"; /* 403 or 401, as Feast's server answers */
        }
        if (cls == NULL)
            cls = "FeastError";
        feast_error(&r->out, cls, msg);
    } else {
        http__puts(&r->out, "{\"error\": ");
        http__json_str(&r->out, msg, strlen(msg));
        http__putc(&r->out, '}');
    }
    http__respond(r, status, "application/json");
}

const char *http__header_in(http_req_t *r, const char *name)
{
    if (r->conn == NULL) {
        for (const char *const *h = r->local_headers; h != NULL && h[0] != NULL; h += 2) {
            if (strcasecmp(h[0], name) == 0)
                return h[1];
        }
        return NULL;
    }
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/*
 * A JSON body's parsed tree is bounded too: jansson's values take tens of bytes each, so a body
 * of "[{},{},...]" becomes a tree 60-100 times its size. While a body is parsed, this thread's
 * jansson allocations count against HTTP_JSON_AMPLIFICATION times its size (plus a floor), and
 * the parse fails past it. Other jansson users (and other threads) are not counted.
 */
static _Thread_local size_t json_budget; /* 0: not counting */
static _Thread_local size_t json_used;
static _Thread_local bool json_over;

static void *json_counted_malloc(size_t n)
{
    if (json_budget == 0)
        return malloc(n);
    if (json_used >= json_budget || n > json_budget - json_used) {
        json_over = true;
        return NULL;
    }
    void *p = malloc(n);
    if (p != NULL)
        json_used += malloc_usable_size(p);
    return p;
}

static void json_counted_free(void *p)
{
    if (json_budget != 0 && p != NULL) {
        size_t u = malloc_usable_size(p);
        json_used -= u < json_used ? u : json_used;
    }
    free(p);
}

static void json_alloc_setup(void)
{
    json_set_alloc_funcs(json_counted_malloc, json_counted_free);
}

int http__parse_json(http_req_t *r, json_t **out)
{
    json_error_t err;
    json_budget = HTTP_JSON_AMPLIFICATION * r->len + HTTP_JSON_FLOOR;
    json_used = 0;
    json_over = false;
    json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &err);
    json_budget = 0;
    if (j == NULL && json_over)
        return core_fail(&r->ctx, -EOVERFLOW,
                         "the body's JSON is too dense: parsed, it would take over %d times "
                         "its %zu bytes (an array or object per few bytes)",
                         HTTP_JSON_AMPLIFICATION, r->len);
    if (j == NULL)
        return core_fail(&r->ctx, -EINVAL, "the body is not JSON: %s (line %d, column %d)",
                         err.text, err.line, err.column);
    if (!json_is_object(j)) {
        json_decref(j);
        return core_fail(&r->ctx, -EINVAL, "the body must be a JSON object");
    }
    *out = j;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */

static void worker_free(void *w)
{
    core_worker_free(w);
}

/* This pool thread's core worker, made on first use. */
static core_worker_t *worker(http_t *h)
{
    core_worker_t *w = pthread_getspecific(h->worker_key);
    if (w == NULL && core_worker_new(h->core, CORE_WORKER_READS, NULL, &w) == 0) {
        pthread_setspecific(h->worker_key, w);
        atomic_fetch_add(&h->n_workers, 1);
    }
    return w;
}

/* The route of method and url; NULL with *allow set to the path's method when only the method is
 * wrong (else NULL). */
static const http_route_t *route_of(const char *method, const char *url, const char **allow)
{
    *allow = NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        const http_route_t *rt = &routes[i];
        size_t n = strlen(rt->path);
        bool match =
            rt->path[n - 1] == '/' ? strncmp(url, rt->path, n) == 0 : strcmp(url, rt->path) == 0;
        if (!match)
            continue;
        if (strcmp(method, rt->method) == 0)
            return rt;
        *allow = rt->method;
    }
    return NULL;
}

/* Every status code fstore's routes answer with (the HTTP layer, Feast's, SageMaker's and TF
 * Serving's mappings, a passthrough's), each a series of its own. */
static const int http_codes[HTTP_N_CODES] = {200, 400, 401, 403, 404, 405, 406, 408, 409, 411, 413,
                                             415, 422, 429, 431, 499, 500, 501, 502, 503, 504, 507};

/* This thread's counters (its slot, handed out at its first count). */
static http_route_stats_t *route_stats(http_t *h, http_route_id_t id)
{
    static _Thread_local int slot = -1;
    if (slot < 0)
        slot = (int)(atomic_fetch_add_explicit(&h->next_stat_slot, 1, memory_order_relaxed) %
                     HTTP_STAT_SLOTS);
    return &h->stats[slot].routes[id];
}

static void stats(http_t *h, http_route_id_t id, int status, int64_t us)
{
    static const int64_t bounds_us[HTTP_BUCKETS - 1] = {
        500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};
    http_route_stats_t *s = route_stats(h, id);
    size_t c = 0;
    while (c < HTTP_N_CODES && http_codes[c] != status)
        c++;
    atomic_fetch_add_explicit(&s->by_code[c], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < HTTP_BUCKETS - 1 && us > bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, (uint64_t)(us > 0 ? us : 0), memory_order_relaxed);
}

double http__item_q(const char *p, size_t n)
{
    const char *end = p + n;
    for (const char *semi = memchr(p, ';', n); semi != NULL;
         semi = memchr(semi + 1, ';', (size_t)(end - semi - 1))) {
        const char *k = semi + 1;
        while (k < end && (*k == ' ' || *k == '\t'))
            k++;
        if (end - k >= 2 && (k[0] == 'q' || k[0] == 'Q') && k[1] == '=') {
            /* RFC 9110's qvalue is 0 to 1: anything else (negative, NaN, junk) refuses. */
            double q = strtod(k + 2, NULL);
            return q > 0.0 ? (q < 1.0 ? q : 1.0) : 0.0;
        }
    }
    return 1.0;
}

/* The q Accept-Encoding value ae gives coding ("gzip"): its own item's, else "*"'s; 0 when
 * neither is listed, or there is no header (RFC 9110 12.5.3: then only identity is sure). */
static double coding_q(const char *ae, const char *coding)
{
    if (ae == NULL)
        return 0.0;
    size_t cl = strlen(coding);
    double own = -1.0, any = -1.0;
    for (const char *p = ae; *p != '\0';) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t tl = strcspn(p, ";, \t");
        if (tl == cl && strncasecmp(p, coding, cl) == 0)
            own = http__item_q(p, n);
        else if (tl == 1 && p[0] == '*')
            any = http__item_q(p, n);
        p += n;
    }
    return own >= 0.0 ? own : any > 0.0 ? any : 0.0;
}

/* Compresses r's body with gzip when the client takes it (Accept-Encoding) and the body is
 * long enough to gain, and it shrinks. Returns: whether it did (the body is replaced). */
static bool gzip_body(http_req_t *r)
{
    if (r->out.len < HTTP_COMPRESS_MIN_BYTES || r->h->o.no_response_compression ||
        coding_q(http__header_in(r, MHD_HTTP_HEADER_ACCEPT_ENCODING), "gzip") <= 0.0)
        return false;
    uint8_t *z = NULL;
    size_t z_len = 0;
    if (base_deflate(r->out.p, r->out.len, BASE_INFLATE_GZIP, &z, &z_len) < 0)
        return false;
    if (z_len >= r->out.len) {
        free(z);
        return false;
    }
    http__buf_free(&r->out);
    r->out.p = (char *)z;
    r->out.len = r->out.cap = z_len;
    return true;
}

static enum MHD_Result send_response(http_req_t *r)
{
    struct MHD_Response *resp;
    if (r->out.oom) {
        http__buf_free(&r->out);
        r->status = 500;
        r->content_type = "application/json";
        http__puts(&r->out, "{\"error\": \"out of memory\"}");
    }
    size_t out_len = r->out.len;
    bool gzipped = gzip_body(r);
    if (r->out.len > 0) {
        resp = MHD_create_response_from_buffer_with_free_callback(r->out.len, r->out.p, free);
        if (resp != NULL) {
            r->out.p = NULL; /* the response owns it now */
            r->out.len = r->out.cap = 0;
        }
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL)
        return MHD_NO;
    if (r->content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    for (int i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->headers[i][0], r->headers[i][1]);
    if (out_len >= HTTP_COMPRESS_MIN_BYTES && !r->h->o.no_response_compression)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    if (gzipped)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    int64_t us = base_mono_us() - r->t0_us;
    stats(r->h, r->route != NULL ? r->route->id : ROUTE_OTHER, r->status, us);
    if (r->h->o.log_requests) {
        /* As gRPC's "call" lines: the route, not the URL (a path can carry anything a client
         * typed), and no body or message (they can carry feature values). */
        base_log(r->status < 400 ? BASE_LOG_INFO : BASE_LOG_WARN, "http_request",
                 "{s:s, s:s, s:i, s:I, s:I, s:I}", "method", r->method != NULL ? r->method : "?",
                 "route", r->route != NULL ? r->route->name : "other", "status", r->status, "us",
                 (json_int_t)us, "request_bytes", (json_int_t)r->len, "response_bytes",
                 (json_int_t)out_len);
    }
    return ok;
}

void http__complete(http_req_t *r, int rc)
{
    if (rc < 0)
        http__respond_error(r, rc);
    /* Under the request's lock: either the handler has not suspended the connection yet (it
     * will see done and answer at once), or it has, and it is resumed here, after the unlock:
     * once resumed, the listener may answer and free r at any moment. */
    http_t *h = r->h;
    pthread_mutex_lock(&r->mu);
    r->done = true;
    struct MHD_Connection *conn = r->suspended ? r->conn : NULL;
    if (r->conn == NULL)
        pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (conn != NULL) {
        MHD_resume_connection(conn);
        atomic_fetch_sub(&h->suspended, 1);
    }
}

/* What a completion left for the listener's thread (a passthrough's answer to write). */
static void finish(http_req_t *r)
{
    void (*fn)(http_req_t *) = r->finish;
    r->finish = NULL;
    if (fn != NULL)
        fn(r);
}

/* The headers the core reads, as gRPC's metadata carries them: fstore-min-seq (a read waits for
 * this node to apply that sequence of the replication log) and fstore-request-id (a replicated
 * write's idempotency key). Returns: 0, or -EINVAL with the message set. */
static int request_context(http_req_t *r)
{
    const char *seq = http__header_in(r, "fstore-min-seq");
    if (seq != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(seq, &end, 10);
        if (seq[0] < '0' || seq[0] > '9' || *end != '\0' || errno != 0)
            return core_fail(&r->ctx, -EINVAL,
                             "fstore-min-seq header: want a decimal sequence (a write's "
                             "fstore-sequence), got '%.40s'",
                             seq);
        r->ctx.min_seq = v;
    }
    const char *id = http__header_in(r, "fstore-request-id");
    if (id != NULL)
        r->ctx.request_id = id;
    /* Who is calling, and may they (the core's one check, as for gRPC): done at the headers
     * for the listener's requests (the context is begun after it), here for in-process ones. */
    if (r->authorized) {
        r->ctx.principal = r->principal;
        r->ctx.grants = r->grants;
        r->ctx.grant_scope = r->grant_scope;
        return 0;
    }
    core_creds_t cr = {.authorization = http__header_in(r, "Authorization")};
    return core_authorize(&r->ctx, r->h->o.tokens, &cr, r->route->scope);
}

static enum MHD_Result run_route(http_t *h, http_req_t *r);

/* The answer to a request that arrives while the listener stops: 503, and the connection
 * closed. */
static void refuse_stopping(http_req_t *r)
{
    core_fail(&r->ctx, -ESHUTDOWN, "the server is stopping: try another node");
    http__respond_error(r, -ESHUTDOWN);
    http__header(r, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Runs the route on a complete request. */
static enum MHD_Result run(http_t *h, http_req_t *r)
{
    /* Counted before stopping is read, which http_stop() sets before it reads the count: a
     * request either sees the stop and is refused, or the stop waits for it. */
    atomic_fetch_add(&h->running, 1);
    if (atomic_load(&h->stopping)) {
        atomic_fetch_sub(&h->running, 1);
        refuse_stopping(r);
        return send_response(r);
    }
    enum MHD_Result res = run_route(h, r);
    atomic_fetch_sub(&h->running, 1);
    return res;
}

static enum MHD_Result run_route(http_t *h, http_req_t *r)
{
    core_worker_t *w = worker(h);
    if (w == NULL) {
        http__puts(&r->out, "{\"error\": \"no core worker for this thread (too many threads)\"}");
        http__respond(r, 503, "application/json");
        return send_response(r);
    }
    core_ctx_begin(&r->ctx, w, &r->arena);
    int rc = request_context(r);
    if (rc == 0)
        rc = r->route->fn(r);
    /* The catalog pin is this thread's: the request ends here even when it was suspended
     * (the completion uses only the message, the arena and the buffer). */
    core_ctx_end(&r->ctx);
    if (rc == HTTP_SUSPENDED) {
        pthread_mutex_lock(&r->mu);
        bool done = r->done;
        if (!done) {
            MHD_suspend_connection(r->conn);
            r->suspended = true;
            atomic_fetch_add(&h->suspended, 1);
        }
        pthread_mutex_unlock(&r->mu);
        if (!done)
            return MHD_YES;
        finish(r);
        return send_response(r);
    }
    if (rc < 0)
        http__respond_error(r, rc);
    return send_response(r);
}

static void req_free(http_req_t *r)
{
    if (r == NULL)
        return;
    free(r->body);
    http__buf_free(&r->out);
    base_arena_free(&r->arena);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_t *h = cls;
    (void)conn;
    (void)toe;
    http_req_t *r = *req_cls;
    if (r != NULL) {
        atomic_fetch_sub(&h->active, 1);
        if (r->counted_write)
            atomic_fetch_sub(&h->writes, 1);
    }
    req_free(*req_cls);
    *req_cls = NULL;
}

/* Counts r among the writes in flight, unless that would pass --http-max-writes. */
static bool count_write(http_t *h, http_req_t *r)
{
    unsigned max = h->o.max_writes ? h->o.max_writes : HTTP_DEFAULT_MAX_WRITES;
    if (atomic_fetch_add(&h->writes, 1) >= max) {
        atomic_fetch_sub(&h->writes, 1);
        return false;
    }
    r->counted_write = true;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Client certificates (--tls-client-ca)                                                       */

/* A connection's verdict on its client certificate, found at its first request. */
typedef enum { CERT_UNKNOWN = 0, CERT_OK, CERT_NONE, CERT_BAD } cert_state_t;

/* With HTTPS: each connection gets an http__conn_t (its socket context). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        /* NULL: the certificate checked every request, the pair held for good (tls.c). */
        *socket_context = calloc(1, sizeof(http__conn_t));
    } else {
        http__conn_t *c = *socket_context;
        if (c != NULL) {
            http__tls_unhold(c->pair);
            for (size_t i = 0; i < c->n_names; i++)
                free(c->names[i]);
        }
        free(c);
        *socket_context = NULL;
    }
}

/* The client's certificate checked against --tls-client-ca, for client authentication; a
 * verified one's names kept in cs (NULL: not kept), for the tokens file's cert: lines. */
static cert_state_t verify_peer(http_t *h, struct MHD_Connection *conn, http__conn_t *cs)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL)
        return CERT_BAD;
    int v = http__tls_ca_verify(h->client_ca, (gnutls_session_t)ci->tls_session);
    if (v > 0 && cs != NULL && h->o.tokens != NULL)
        cs->n_names =
            http__tls_peer_names((gnutls_session_t)ci->tls_session, cs->names, CORE_MAX_CERT_NAMES);
    return v > 0 ? CERT_OK : v == 0 ? CERT_NONE : CERT_BAD;
}

/* The connection's own state (NULL: none, as for plain HTTP). */
static http__conn_t *conn_state(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

/* Returns: 0 (let through), or -ENOKEY / -EKEYREJECTED with r's message set. */
static int client_cert(http_t *h, http_req_t *r)
{
    http__conn_t *cs = conn_state(r->conn);
    cert_state_t st = cs != NULL ? (cert_state_t)cs->cert : CERT_UNKNOWN;
    if (st == CERT_UNKNOWN) {
        st = verify_peer(h, r->conn, cs);
        if (cs != NULL)
            cs->cert = st;
    }
    if (st == CERT_OK || (st == CERT_NONE && !h->o.tls_require_client_cert))
        return 0;
    if (st == CERT_NONE)
        return core_fail(&r->ctx, -ENOKEY,
                         "this server requires a client certificate from its --tls-client-ca");
    return core_fail(&r->ctx, -EKEYREJECTED,
                     "the client certificate is not one this server accepts (not from its "
                     "--tls-client-ca, expired, or not for client authentication)");
}

/* The core's check of r's credentials at its headers: its bearer token, else the names of the
 * client certificate client_cert() verified on its connection. */
static int authorize(http_t *h, http_req_t *r)
{
    core_creds_t cr = {.authorization = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                                    MHD_HTTP_HEADER_AUTHORIZATION)};
    http__conn_t *cs = h->client_ca != NULL ? conn_state(r->conn) : NULL;
    if (cs != NULL && cs->cert == CERT_OK) {
        cr.cert_names = (const char *const *)cs->names;
        cr.n_cert_names = cs->n_names;
    }
    return core_authorize(&r->ctx, h->o.tokens, &cr, r->route->scope);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)version;
    http_t *h = cls;
    http_req_t *r = *req_cls;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        atomic_fetch_add(&h->active, 1);
        r->h = h;
        r->conn = conn;
        r->url = url;
        r->method = method;
        r->t0_us = base_mono_us();
        pthread_mutex_init(&r->mu, NULL);
        *req_cls = r;
        const char *allow = NULL;
        r->route = route_of(method, url, &allow);
        if (h->o.metrics_only && r->route != NULL && r->route->id != ROUTE_METRICS)
            r->route = NULL;
        atomic_fetch_add_explicit(
            &route_stats(h, r->route != NULL ? r->route->id : ROUTE_OTHER)->started, 1,
            memory_order_relaxed);
        size_t max = core_limits(h->core)->max_message_bytes;
        int denied = 0;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (atomic_load(&h->stopping)) {
            /* Nothing new once stopping: the stop waits for what is in flight to finish. */
            refuse_stopping(r);
            r->refused = true;
        } else if (r->route == NULL) {
            http__puts(&r->out, allow != NULL ? "{\"detail\":\"Method Not Allowed\"}"
                                              : "{\"detail\":\"Not Found\"}");
            http__respond(r, allow != NULL ? 405 : 404, "application/json");
            if (allow != NULL)
                http__header(r, MHD_HTTP_HEADER_ALLOW, allow);
            r->refused = true;
        } else if (h->client_ca != NULL && r->route->scope != 0 &&
                   (denied = client_cert(h, r)) < 0) {
            /* Before the token: a connection without the right certificate gets nothing. */
            http__respond_error(r, denied);
            r->refused = true;
        } else if ((denied = authorize(h, r)) < 0) {
            /* Refused at its headers: nobody without the scope gets a body buffered. */
            http__respond_error(r, denied);
            r->refused = true;
        } else if ((r->route->scope & CORE_SCOPE_WRITE) && !count_write(h, r)) {
            /* Bounded at its headers, before its body is buffered: what writes can hold is
             * --http-max-writes x --max-message-bytes. */
            unsigned mw = h->o.max_writes ? h->o.max_writes : HTTP_DEFAULT_MAX_WRITES;
            core_fail(&r->ctx, -ENOBUFS,
                      "%u HTTP writes are in flight, the most this server takes "
                      "(--http-max-writes); retry",
                      mw);
            http__respond_error(r, -ENOBUFS);
            r->refused = true;
        } else if (cl != NULL && strtoull(cl, NULL, 10) > max) {
            /* Refused from its length, before any of it is read. */
            core_fail(&r->ctx, -E2BIG, "request body of %s bytes is over --max-message-bytes %zu",
                      cl, max);
            http__respond_error(r, -E2BIG);
            r->status = 413;
            r->refused = true;
        }
        /* The check is not made again when the route runs (request_context()). */
        r->authorized = !r->refused;
        r->principal = r->ctx.principal;
        r->grants = r->ctx.grants;
        r->grant_scope = r->ctx.grant_scope;
        /* Refused at its headers: answered before any of its body is read (the connection then
         * closes instead of reading a body nobody wants). */
        return r->refused ? send_response(r) : MHD_YES;
    }
    if (r->suspended) {
        /* Resumed: the completion set the response, or left its writing to this thread. */
        finish(r);
        return send_response(r);
    }
    if (*upload_data_size > 0) {
        if (!r->refused) {
            size_t max = core_limits(h->core)->max_message_bytes;
            if (r->len + *upload_data_size > max) {
                /* No length announced (chunked), or a lying one. */
                core_fail(&r->ctx, -E2BIG, "request body over --max-message-bytes %zu", max);
                http__respond_error(r, -E2BIG);
                r->status = 413;
                r->refused = true;
                free(r->body);
                r->body = NULL;
                r->len = r->cap = 0;
            } else {
                if (r->cap - r->len < *upload_data_size + 1) {
                    size_t cap = r->cap ? r->cap : 4096;
                    while (cap - r->len < *upload_data_size + 1)
                        cap *= 2;
                    char *p = realloc(r->body, cap);
                    if (p == NULL)
                        return MHD_NO;
                    r->body = p;
                    r->cap = cap;
                }
                memcpy(r->body + r->len, upload_data, *upload_data_size);
                r->len += *upload_data_size;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->refused)
        return send_response(r);
    if (r->body == NULL) {
        r->body = malloc(1);
        if (r->body == NULL)
            return MHD_NO;
    }
    r->body[r->len] = '\0';
    return run(h, r);
}

/* ------------------------------------------------------------------------------------------ */
/* Start and stop                                                                              */

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen)
        return -EINVAL;
    char host[256];
    size_t hn = (size_t)(colon - listen);
    if (hn >= sizeof host)
        return -EINVAL;
    memcpy(host, listen, hn);
    host[hn] = '\0';
    if (host[0] == '[' && hn > 2 && host[hn - 1] == ']') {
        memmove(host, host + 1, hn - 2);
        host[hn - 2] = '\0';
    }
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL)
        return -EINVAL;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

struct http__rate_slot {
    double tokens;
    int64_t last_us;
};

/* The part of a client's address that is one client: an IPv4 address (a v4-mapped IPv6 one
 * too), or an IPv6 /64 (a host's privacy addresses all share theirs). */
static uint64_t client_key(const http_t *h, const struct sockaddr *addr, socklen_t len)
{
    uint8_t b[16] = {0}; /* b[0]: the family, so no IPv6 prefix is an IPv4 address's key */
    if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        b[0] = 4;
        memcpy(b + 8, &((const struct sockaddr_in *)addr)->sin_addr, 4);
    } else if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const uint8_t *a = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            b[0] = 4;
            memcpy(b + 8, a + 12, 4);
        } else {
            b[0] = 6;
            memcpy(b + 8, a, 8);
        }
    }
    /* Seeded at random per start: nobody can work out in advance which addresses share a
     * bucket with someone else's. */
    return base_hash_words(b, sizeof b, h->rate_seed);
}

/* libmicrohttpd's accept policy: a client address past --http-connection-rate is closed at
 * once, before its TLS handshake (the expensive part of a new HTTPS connection). */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
    http_t *h = cls;
    if (h->o.connection_rate == HTTP_CONNECTION_RATE_OFF)
        return MHD_YES;
    double rate = h->o.connection_rate ? h->o.connection_rate : HTTP_DEFAULT_CONNECTION_RATE;
    struct http__rate_slot *s = &h->rate[client_key(h, addr, len) % HTTP_RATE_SLOTS];
    bool ok, log = false;
    pthread_mutex_lock(&h->rate_mu);
    int64_t now = base_mono_us(); /* under the lock: a slot's time never goes back */
    double t = s->tokens + (double)(now > s->last_us ? now - s->last_us : 0) * rate / 1e6;
    s->tokens = t > rate ? rate : t;
    s->last_us = now;
    ok = s->tokens >= 1.0;
    if (ok)
        s->tokens -= 1.0;
    else if (now - h->rate_logged_us >= 60 * 1000000LL) {
        h->rate_logged_us = now;
        log = true;
    }
    pthread_mutex_unlock(&h->rate_mu);
    if (ok)
        return MHD_YES;
    atomic_fetch_add(&h->rate_refused, 1);
    if (log) {
        char ip[INET6_ADDRSTRLEN] = "?";
        const void *a = addr->sa_family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)addr)->sin_addr
                            : (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr;
        inet_ntop(addr->sa_family, a, ip, sizeof ip);
        base_log(BASE_LOG_WARN, "connection_rate_exceeded", "{s:s, s:i, s:s}", "client", ip,
                 "per_s", (int)rate, "note",
                 "connections closed at accept (--http-connection-rate); at most one line a "
                 "minute");
    }
    return MHD_NO;
}

int http_start(core_t *core, const http_options_t *o, http_t **out)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (parse_listen(o->listen, &ss, &sl) < 0)
        return -EINVAL;
    /* Its counter slots are cache-line aligned: aligned_alloc, not calloc (16 bytes). */
    http_t *h = aligned_alloc(_Alignof(http_t), sizeof *h); /* a multiple of its alignment */
    if (h == NULL)
        return -ENOMEM;
    memset(h, 0, sizeof *h);
    h->core = core;
    h->o = *o;
    pthread_mutex_init(&h->pt_mu, NULL);
    pthread_cond_init(&h->pt_cv, NULL);
    pthread_mutex_init(&h->rate_mu, NULL);
    h->rate = calloc(HTTP_RATE_SLOTS, sizeof *h->rate);
    if (h->rate == NULL) {
        free(h);
        return -ENOMEM;
    }
    h->rate_logged_us = -60 * 1000000LL;
    base_random(&h->rate_seed, sizeof h->rate_seed);
    pthread_once(&json_alloc_once, json_alloc_setup);
    if (pthread_key_create(&h->worker_key, worker_free) != 0) {
        free(h->rate);
        free(h);
        return -ENOMEM;
    }
    if (!o->metrics_only && upstream_pool_new(core_limits(core)->max_response_bytes,
                                              o->upstream_tls, &h->upstreams) < 0) {
        pthread_key_delete(h->worker_key);
        free(h->rate);
        free(h);
        return -ENOMEM;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    bool tls = o->tls_cert != NULL && o->tls_cert[0] != '\0';
    bool client_ca = tls && o->tls_client_ca != NULL && o->tls_client_ca[0] != '\0';
    void *cert_callback = NULL;
    if (tls) {
        char why[512] = "";
        int rc = http__tls_acquire(o->tls_cert, o->tls_key, &cert_callback, why, sizeof why);
        if (rc == 0 && client_ca &&
            (rc = http__tls_ca_open(o->tls_client_ca, &h->client_ca, &h->tls_client_ca, why,
                                    sizeof why)) < 0)
            http__tls_release();
        if (rc < 0) {
            base_log(BASE_LOG_ERROR, "tls_failed", "{s:s, s:s}", "error", why, "listener",
                     o->listen);
            upstream_pool_free(h->upstreams);
            pthread_key_delete(h->worker_key);
            free(h->rate);
            free(h);
            return -EINVAL;
        }
        h->tls = true;
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem tls_opts[] = {
        /* The pair is http/tls.c's, looked at every handshake (reloaded when it changes). */
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, cert_callback},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
        /* Asks for a client certificate (GnuTLS: requested, not required); checked per
         * connection in client_cert(). */
        {MHD_OPTION_HTTPS_MEM_TRUST, 0, h->tls_client_ca},
        {MHD_OPTION_END, 0, NULL},
    };
    if (!client_ca)
        tls_opts[2].option = MHD_OPTION_END;
    h->daemon = MHD_start_daemon(
        flags, 0, accept_policy, h, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads_of(o), MHD_OPTION_CONNECTION_LIMIT,
        o->max_connections ? o->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT,
        o->idle_timeout_s ? o->idle_timeout_s : HTTP_DEFAULT_IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, tls ? MHD_OPTION_ARRAY : MHD_OPTION_END,
        tls_opts, MHD_OPTION_END);
    if (h->daemon == NULL) {
        http__tls_ca_close(h->client_ca);
        free(h->tls_client_ca);
        if (h->tls)
            http__tls_release();
        upstream_pool_free(h->upstreams);
        pthread_key_delete(h->worker_key);
        free(h->rate);
        free(h);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di != NULL ? di->port : 0;
    *out = h;
    return 0;
}

int http_port(const http_t *h)
{
    return h->port;
}

/* How long a stop waits for requests in progress to be answered. */
#define HTTP_STOP_FLUSH_MS 2000

void http_stop(http_t *h)
{
    if (h == NULL)
        return;
    /* No new connections. Passthroughs in flight are cancelled and answered (their connections
     * resumed), later ones refused; writes in flight complete (the core bounds them); then the
     * listener gets a moment to send what is answered before it stops. */
    atomic_store(&h->stopping, true);
    MHD_socket listen_fd = MHD_quiesce_daemon(h->daemon);
    upstream_pool_close(h->upstreams);
    /* libmicrohttpd must not stop with a connection suspended: wait for the routes running and
     * the completions (the core bounds every write's wait). */
    int64_t t0 = base_mono_us(), said = t0;
    while (atomic_load(&h->running) > 0 || atomic_load(&h->suspended) > 0) {
        usleep(10000);
        if (base_mono_us() - said > 10 * 1000000LL) {
            said = base_mono_us();
            base_log(BASE_LOG_WARN, "http_stop_waiting", "{s:i, s:i, s:I}", "running",
                     (int)atomic_load(&h->running), "suspended", (int)atomic_load(&h->suspended),
                     "waited_ms", (long long)((said - t0) / 1000));
        }
    }
    for (int i = 0; i < HTTP_STOP_FLUSH_MS / 10 && atomic_load(&h->active) > 0; i++)
        usleep(10000);
    /* Joins the pool: each thread's worker is freed by the key's destructor as it exits. */
    MHD_stop_daemon(h->daemon);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    http__passthrough_watch_stop(h);
    upstream_pool_free(h->upstreams);
    pthread_key_delete(h->worker_key);
    pthread_cond_destroy(&h->pt_cv);
    pthread_mutex_destroy(&h->pt_mu);
    pthread_mutex_destroy(&h->rate_mu);
    http__tls_ca_close(h->client_ca);
    free(h->tls_client_ca);
    if (h->tls)
        http__tls_release();
    free(h->rate);
    free(h);
}

/* ------------------------------------------------------------------------------------------ */
/* Health and metrics                                                                          */

int http__health(http_req_t *r)
{
    /* Feast's /health and SageMaker's /ping: empty bodies, 200 or 503. */
    http__respond(r, core_health(r->h->core) == CORE_SERVING ? 200 : 503, NULL);
    return 0;
}

void http_metrics(void *arg, FILE *out)
{
    http_t *h = arg;
    static const char *const le[HTTP_BUCKETS] = {"0.0005", "0.001", "0.0025", "0.005",
                                                 "0.01",   "0.025", "0.05",   "0.1",
                                                 "0.25",   "0.5",   "1",      "+Inf"};
    /* Every slot's counters summed, once per route. */
    http_route_stats_t *sum = calloc(ROUTE_COUNT, sizeof *sum);
    if (sum == NULL)
        return;
    for (int k = 0; k < HTTP_STAT_SLOTS; k++) {
        for (int i = 0; i < ROUTE_COUNT; i++) {
            const http_route_stats_t *s = &h->stats[k].routes[i];
            sum[i].started += atomic_load_explicit(&s->started, memory_order_relaxed);
            for (int c = 0; c <= HTTP_N_CODES; c++)
                sum[i].by_code[c] += atomic_load_explicit(&s->by_code[c], memory_order_relaxed);
            for (int b = 0; b < HTTP_BUCKETS; b++)
                sum[i].buckets[b] += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
            sum[i].sum_us += atomic_load_explicit(&s->sum_us, memory_order_relaxed);
        }
    }
    fputs("# HELP http_requests_started_total HTTP requests started, by route.\n"
          "# TYPE http_requests_started_total counter\n",
          out);
    for (int i = 0; i < ROUTE_COUNT; i++)
        fprintf(out, "http_requests_started_total{route=\"%s\"} %llu\n", route_names[i],
                (unsigned long long)sum[i].started);
    fputs("# HELP http_requests_total HTTP requests answered, by route and status code.\n"
          "# TYPE http_requests_total counter\n",
          out);
    for (int i = 0; i < ROUTE_COUNT; i++) {
        for (int c = 0; c <= HTTP_N_CODES; c++) {
            char code[8];
            if (c < HTTP_N_CODES)
                snprintf(code, sizeof code, "%d", http_codes[c]);
            else
                snprintf(code, sizeof code, "other");
            fprintf(out, "http_requests_total{route=\"%s\",code=\"%s\"} %llu\n", route_names[i],
                    code, (unsigned long long)sum[i].by_code[c]);
        }
    }
    fputs("# HELP http_request_duration_seconds Time from a request's first byte to its "
          "response, by route.\n"
          "# TYPE http_request_duration_seconds histogram\n",
          out);
    for (int i = 0; i < ROUTE_COUNT; i++) {
        const http_route_stats_t *s = &sum[i];
        uint64_t cum = 0;
        for (int b = 0; b < HTTP_BUCKETS; b++) {
            cum += s->buckets[b];
            fprintf(out, "http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %llu\n",
                    route_names[i], le[b], (unsigned long long)cum);
        }
        fprintf(out, "http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_names[i],
                (double)s->sum_us / 1e6);
        fprintf(out, "http_request_duration_seconds_count{route=\"%s\"} %llu\n", route_names[i],
                (unsigned long long)cum);
    }
    free(sum);
    fprintf(out,
            "# HELP http_writes_in_flight HTTP writes from their headers to their answer "
            "(--http-max-writes).\n# TYPE http_writes_in_flight gauge\nhttp_writes_in_flight "
            "%u\n",
            atomic_load(&h->writes));
    fprintf(out,
            "# HELP http_connections_rate_limited_total Connections closed at accept: their "
            "client address was past --http-connection-rate.\n"
            "# TYPE http_connections_rate_limited_total counter\n"
            "http_connections_rate_limited_total %llu\n",
            (unsigned long long)atomic_load(&h->rate_refused));
    fprintf(out,
            "# HELP http_passthroughs_in_flight Predict passthroughs waiting on their model "
            "server.\n# TYPE http_passthroughs_in_flight gauge\nhttp_passthroughs_in_flight %u\n",
            atomic_load(&h->passthroughs));
    fprintf(out,
            "# HELP http_passthroughs_abandoned_total Predict passthroughs whose client hung up "
            "before the model answered: their upstream calls were cancelled.\n"
            "# TYPE http_passthroughs_abandoned_total counter\n"
            "http_passthroughs_abandoned_total %llu\n",
            (unsigned long long)atomic_load(&h->pt_abandoned));
}

int http__metrics_route(http_req_t *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return core_fail(&r->ctx, -ENOMEM, "out of memory");
    if (!r->h->o.metrics_only)
        http_metrics(r->h, f);
    for (size_t i = 0; i < r->h->o.n_metrics; i++)
        r->h->o.metrics[i](r->h->o.metrics_arg[i], f);
    fclose(f);
    http__put(&r->out, text, len);
    free(text);
    http__respond(r, 200, "text/plain; version=0.0.4; charset=utf-8");
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* In-process calls (fuzzers, tests)                                                           */

int http_local_call(core_t *core, const http_options_t *o, const char *method, const char *path,
                    const char *const *headers, const void *body, size_t len, int *status,
                    char **out, size_t *out_len)
{
    http_t h = {.core = core, .o = *o};
    pthread_once(&json_alloc_once, json_alloc_setup);
    const char *allow = NULL;
    const http_route_t *rt = route_of(method, path, &allow);
    if (rt == NULL) {
        *status = allow != NULL ? 405 : 404;
        *out = NULL;
        *out_len = 0;
        return 0;
    }
    if (len > core_limits(core)->max_message_bytes) {
        *status = 413;
        *out = NULL;
        *out_len = 0;
        return 0;
    }
    core_worker_t *w = NULL;
    int rc = core_worker_new(core, CORE_WORKER_READS, NULL, &w);
    if (rc < 0)
        return rc;
    http_req_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        core_worker_free(w);
        return -ENOMEM;
    }
    r->h = &h;
    r->route = rt;
    r->url = path;
    r->local_headers = headers;
    r->body = malloc(len + 1);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (r->body == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(r->body, body, len);
    r->body[len] = '\0';
    r->len = len;
    core_ctx_begin(&r->ctx, w, &r->arena);
    rc = request_context(r);
    if (rc == 0)
        rc = rt->fn(r);
    core_ctx_end(&r->ctx);
    if (rc == HTTP_SUSPENDED) {
        pthread_mutex_lock(&r->mu);
        while (!r->done)
            pthread_cond_wait(&r->cv, &r->mu);
        pthread_mutex_unlock(&r->mu);
        finish(r);
    } else if (rc < 0) {
        http__respond_error(r, rc);
    }
    if (r->out.oom) {
        rc = -ENOMEM;
        goto out;
    }
    *status = r->status;
    *out = r->out.p;
    *out_len = r->out.len;
    r->out.p = NULL;
    rc = 0;
out:
    pthread_cond_destroy(&r->cv);
    req_free(r);
    core_worker_free(w);
    return rc;
}
