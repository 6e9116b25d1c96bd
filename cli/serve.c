/* cli/serve.c - `fstore serve`: flags, the serving core, the gRPC server, signals. */
#include <errno.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli_int.h"
#include "core/core.h"
#include "http/http.h"
#include "server/server.h"
#include "upstream/upstream.h"

/*
 * Signals are not handled in a signal handler at all. SIGTERM, SIGINT and SIGHUP are blocked
 * before any thread exists (the store's writer starts in core_open(), gRPC's in server_new()), so
 * every thread inherits the mask and none of them is ever interrupted; one thread takes them
 * with sigwait() and calls the server's stop and reload entry points as ordinary code. That
 * thread gets the server as its argument and is joined before server_free(), so no signal can
 * reach a server that is not there yet or no longer (a handler reading a global could), and a
 * signal that arrives while the server is starting stays pending until the thread takes it.
 * Once server_run() has returned, signals stay blocked and pending: a late SIGTERM cannot turn a
 * clean exit into a kill.
 */

typedef struct signal_thread {
    pthread_t thread;
    sigset_t set;
    server_t *server;
    _Atomic bool done; /* set before waking the thread to make it return */
} signal_thread_t;

static void *signal_main(void *arg)
{
    signal_thread_t *st = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&st->set, &sig) != 0)
            continue;
        if (atomic_load(&st->done))
            return NULL;
        if (sig == SIGHUP)
            server_request_reload(st->server);
        else
            server_request_stop(st->server); /* a second one cancels in-flight calls */
    }
}

/*
 * Whether host:port can be bound now (port 0: any free one, which still tells whether the
 * address is this machine's). Tried before the data directory is touched, so that a `serve`
 * that cannot listen (a busy port, a port below 1024 without the right, an address not on this
 * machine, a name that does not resolve) fails before it applies its catalog; the listener
 * itself binds later (a port taken in between still fails loudly there). A name that resolves
 * to several addresses passes when one of them binds, as gRPC's listener does, unless one is
 * in use. numeric: the HTTP listeners' rules (an address, not a name; a host; no unix:).
 * gRPC's unix: addresses are left to gRPC.
 * Returns: 0; -EADDRINUSE; -EACCES, -EADDRNOTAVAIL or another bind error; -ENXIO (the name
 *          does not resolve) or -EINVAL (no port, or not a port): *why says how.
 */
static int probe_listen(const char *addr, bool numeric, const char **why)
{
    *why = NULL;
    if (addr == NULL || addr[0] == '\0')
        return 0;
    if (strncmp(addr, "unix:", 5) == 0 || strncmp(addr, "unix-abstract:", 14) == 0) {
        if (!numeric)
            return 0; /* gRPC's own */
        *why = "want host:port (this listener takes no unix: address)";
        return -EINVAL;
    }
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (numeric && colon == addr)) {
        *why = "want host:port";
        return -EINVAL;
    }
    /* getaddrinfo() takes 99999 and binds it modulo 65536: a port is refused here. */
    char *end = NULL;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 || port > 65535) {
        *why = "the port must be a number from 0 to 65535";
        return -EINVAL;
    }
    char host[256];
    size_t hn = (size_t)(colon - addr);
    if (hn >= sizeof host) {
        *why = "the host is too long";
        return -EINVAL;
    }
    memcpy(host, addr, hn);
    host[hn] = '\0';
    if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') {
        memmove(host, host + 1, hn - 2);
        host[hn - 2] = '\0';
    }
    struct addrinfo hints = {.ai_flags =
                                 AI_PASSIVE | AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0),
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host[0] != '\0' ? host : NULL, colon + 1, &hints, &ai);
    if (gai != 0 || ai == NULL) {
        *why = numeric && gai == EAI_NONAME
                   ? "want a numeric address (this listener does not resolve names)"
               : gai != 0 ? gai_strerror(gai)
                          : "no address";
        return -ENXIO;
    }
    /* Every address the name resolves to: the listeners bind them all. */
    int in_use = 0, first_err = 0, bound = 0;
    for (struct addrinfo *a = ai; a != NULL && in_use == 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            first_err = first_err != 0 ? first_err : -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* as the listeners do */
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0)
            bound++;
        else if (errno == EADDRINUSE)
            in_use = -EADDRINUSE;
        else if (first_err == 0)
            first_err = -errno;
        close(fd);
    }
    freeaddrinfo(ai);
    return in_use != 0 ? in_use : bound > 0 ? 0 : first_err;
}

/*
 * One serve per data directory: a second would apply its own catalog under the first and then
 * serve a stale one after the first reloads. The lock (flock on DIR/serve.lock, which holds the
 * holder's pid) lasts as long as the process. Other commands (get, gc, apply) still share the
 * directory, as LMDB allows.
 * Returns: 0; -EBUSY (held: *holder its pid, or 0); another -errno (cannot lock).
 */
static int lock_data_dir(const char *dir, long *holder)
{
    *holder = 0;
    char path[4096];
    /* The directory and its parents, as the store would make them. */
    if ((size_t)snprintf(path, sizeof path, "%s", dir) >= sizeof path)
        return -ENAMETOOLONG;
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = c;
        if (c == '\0')
            break;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/serve.lock", dir) >= sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0)
            *holder = strtol(buf, NULL, 10);
        close(fd);
        return e == EWOULDBLOCK ? -EBUSY : -e;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The lock holds without the pid: it only makes a message better. */
    }
    return 0; /* fd stays open (and locked) until exit */
}

/* The catalog watch's callback: as a SIGHUP. */
static void reload_from_watch(void *arg)
{
    server_request_reload(arg);
}

static core_tokens_t *loaded_tokens;

static void free_tokens(void)
{
    core_tokens_free(loaded_tokens);
    loaded_tokens = NULL;
}

/* --upstream-tls-*: the PEM files, checked at start; the listeners' upstream pools borrow the
 * paths and read the files themselves (again whenever they change: upstream/upstream.h). */
static upstream_tls_t upstream_tls;

/* Checks the files (a path NULL or "": not given): readable, and PEM of their kind.
 * Returns: 0, or 2 after saying why. */
static int load_upstream_tls(const char *const paths[3])
{
    static const char *const flags[3] = {"--upstream-tls-ca", "--upstream-tls-cert",
                                         "--upstream-tls-key"};
    static const char *const marks[3] = {"-----BEGIN CERTIFICATE", "-----BEGIN CERTIFICATE",
                                         "PRIVATE KEY-----"};
    bool given[3];
    for (int i = 0; i < 3; i++)
        given[i] = paths[i] != NULL && paths[i][0] != '\0';
    if (given[1] != given[2]) {
        fprintf(stderr, "fstore serve: --upstream-tls-cert and --upstream-tls-key go together\n");
        return 2;
    }
    char *pem[3] = {NULL, NULL, NULL};
    int status = 0;
    for (int i = 0; i < 3 && status == 0; i++) {
        if (!given[i])
            continue;
        int rc = base_read_file(paths[i], (size_t)1 << 20, &pem[i], NULL);
        if (rc < 0 || strstr(pem[i], marks[i]) == NULL) {
            fprintf(stderr, "fstore serve: %s %s: %s\n", flags[i], paths[i],
                    rc < 0 ? strerror(-rc) : "not a PEM file of that kind");
            status = 2;
        }
    }
    if (status == 0 && given[1] && !server_tls_pair_matches(pem[1], pem[2])) {
        fprintf(stderr,
                "fstore serve: the key in --upstream-tls-key %s is not the certificate's "
                "in --upstream-tls-cert %s\n",
                paths[2], paths[1]);
        status = 2;
    }
    for (int i = 0; i < 3; i++) {
        if (pem[i] != NULL)
            explicit_bzero(pem[i], strlen(pem[i])); /* the key, above all */
        free(pem[i]);
    }
    if (status != 0)
        return status;
    upstream_tls = (upstream_tls_t){given[0] ? paths[0] : NULL, given[1] ? paths[1] : NULL,
                                    given[2] ? paths[2] : NULL};
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fstore serve --data-dir DIR [--catalog PATH] [flags]\n"
            "\n"
            "Serves online features over gRPC: Feast's feast.serving.ServingService,\n"
            "fstore.v1.OnlineFeatureService (reads, writes, deletes, catalog),\n"
            "tensorflow.serving.PredictionService/Predict (a model binding's features as\n"
            "tensors, or sent on to its model server) and grpc.health.v1.Health (Check, Watch).\n"
            "SIGHUP reloads the catalog; SIGTERM/SIGINT drain and exit 0 (a second one\n"
            "cancels the calls still in flight).\n"
            "\n"
            "flags (each also FSTORE_<FLAG> in the environment, e.g. FSTORE_DATA_DIR):\n"
            "  --listen ADDR            host:port to listen on (default %s)\n"
            "  --catalog PATH           catalog YAML file or directory, applied at start and\n"
            "                           on SIGHUP (default: the catalog applied to --data-dir)\n"
            "  --data-dir DIR           the store's data directory (required)\n"
            "  --workers N              read worker threads (default: number of CPUs)\n"
            "  --write-workers N        write worker threads (default %u)\n"
            "  --max-message-bytes N    largest request message (default %u)\n"
            "  --max-response-bytes N   largest response, and largest request or response\n"
            "                           exchanged with a Predict upstream (default %u)\n"
            "  --max-entities N         entity rows per read request (default %u)\n"
            "  --max-features N         feature references per read request (default %u)\n"
            "  --max-write-rows N       rows per write or delete request (default %u)\n"
            "  --max-history-rows N     entity rows per GetHistoricalFeatures call (default %u;\n"
            "                           clients send larger tables in several calls)\n"
            "  --drain-delay-ms N       on stop, keep accepting calls this long after health\n"
            "                           turns NOT_SERVING (default 0; set it to the time your\n"
            "                           load balancer takes to notice, e.g. 5000 on Kubernetes)\n"
            "  --shutdown-grace-ms N    time in-flight calls get on stop (default %u)\n"
            "  --sync full|none         fsync every write batch (default full)\n"
            "  --log-format json|text   log line format (default json)\n"
            "  --log-requests           log every call and HTTP request (method, status,\n"
            "                           duration, sizes; no values)\n"
            "  --sched-slice-us N       read workers' CPU slice on Linux 6.12+ (100-100000;\n"
            "                           default 0: the kernel's): a worker woken by a request\n"
            "                           preempts a busy neighbour instead of waiting its turn\n"
            "  --grpc-max-streams N     concurrent streams per gRPC connection (default %u)\n"
            "  --grpc-max-memory N      gRPC's resource quota: bytes its connections' buffers\n"
            "                           share (default %zu)\n"
            "  --grpc-max-send-ms N     cancel a reply the client does not take within N ms,\n"
            "                           freeing its call slot (default %u; 0: never)\n"
            "  --grpc-max-connection-idle-s N  GOAWAY a connection idle this long (default 0:\n"
            "                           never)\n"
            "  --grpc-max-connection-age-s N   GOAWAY a connection this old, so clients\n"
            "                           rebalance across replicas (default 0: never)\n"
            "  --grpc-max-connection-age-grace-s N  calls in flight at that GOAWAY get N s\n"
            "                           (default %u)\n"
            "  --grpc-handshake-timeout-ms N  a connection that has not finished its TLS and\n"
            "                           HTTP/2 handshakes this long after it was accepted is\n"
            "                           closed (default %u)\n"
            "  --grpc-min-ping-interval-ms N  a client's HTTP/2 pings closer than N ms with\n"
            "                           nothing sent to it in between are strikes; the third\n"
            "                           closes its connection (GOAWAY too_many_pings;\n"
            "                           default %u)\n"
            "  --grpc-response-compression mirror|off  mirror (default): a call whose request\n"
            "                           came gzip or deflate gets its replies (of %u bytes or\n"
            "                           more) compressed the same way; off: always plain\n"
            "  --grpc-max-watches N     Health/Watch streams open at once; more are refused\n"
            "                           RESOURCE_EXHAUSTED (default %u)\n"
            "  --grpc-max-reflection-streams N  server reflection streams open at once; more\n"
            "                           are refused likewise (default %u)\n"
            "  --grpc-reflection-idle-s N  end a reflection stream that waits this long for\n"
            "                           its next request (default %u; 0: never)\n"
            "  --tls-cert FILE, --tls-key FILE  serve gRPC and HTTP over TLS with this PEM\n"
            "                           certificate chain and key (both reload them when they\n"
            "                           change)\n"
            "  --tls-client-ca FILE     verify client certificates (gRPC and HTTPS) against\n"
            "                           these CAs\n"
            "  --tls-require-client-cert  refuse clients without one (mTLS; over HTTPS,\n"
            "                           /health, /ping and /metrics stay open for probes)\n"
            "  --upstream-tls-ca FILE   for Predict bindings with `tls: true`: the CAs (PEM) the\n"
            "                           model server's certificate must chain to (default:\n"
            "                           gRPC's roots)\n"
            "  --upstream-tls-cert FILE, --upstream-tls-key FILE  this node's certificate and\n"
            "                           key, for model servers that require one (all three\n"
            "                           read again every few seconds: rotated files serve\n"
            "                           from the next connection)\n"
            "  --catalog-watch-ms N     reload the catalog once its directory has been quiet\n"
            "                           for N ms after a change (a ConfigMap update, an\n"
            "                           editor's save); 0: only on SIGHUP (default 500)\n"
            "  --tokens-file FILE       require credentials: one 'NAME SHA256 SCOPES' line per\n"
            "                           principal (scopes read, write, admin; 'cert:NAME' for a\n"
            "                           client certificate's SAN (CN without), 'jwt:SUBJECT' a\n"
            "                           JWT's sub in place of SHA256); health and /metrics stay\n"
            "                           open; read again on SIGHUP\n"
            "  --jwks-file FILE         also take bearer JWTs signed by this JWKS's keys (RS*,\n"
            "                           ES*), for --jwt-issuer ISS and --jwt-audience AUD (both\n"
            "                           required); read again on SIGHUP\n"
            "  --http-listen ADDR       the HTTP front door (Feast HTTP, SageMaker, TF Serving\n"
            "                           REST, /metrics): host:port, '' for none (default\n"
            "                           %s, or SAGEMAKER_BIND_TO_PORT's port)\n"
            "  --http-threads N         HTTP worker threads (default: number of CPUs)\n"
            "  --http-max-connections N open HTTP connections at most (default %u)\n"
            "  --http-connection-rate N new HTTP connections per second from one client\n"
            "                           address (IPv4, IPv6 /64); more are closed at accept,\n"
            "                           before a TLS handshake (default %u; 0: no bound,\n"
            "                           behind a proxy whose clients all share its address)\n"
            "  --http-idle-timeout-s N  close an idle HTTP keep-alive connection after N s\n"
            "                           (default %u)\n"
            "  --http-upstream-timeout-ms N  an HTTP Predict passthrough to a binding's model\n"
            "                           server ends after N ms (default %u; the binding's\n"
            "                           timeout_ms when sooner; 0: only the binding's)\n"
            "  --http-max-passthroughs N  HTTP Predict passthroughs in flight at once; more\n"
            "                           are answered 503 (default %u)\n"
            "  --http-max-writes N      HTTP writes (write-to-online-store, push) in flight at\n"
            "                           once, from their headers to their answer; more are\n"
            "                           answered 429 at their headers (default %u)\n"
            "  --http-response-compression gzip|off  gzip (default): bodies of %u bytes or\n"
            "                           more go gzip to clients whose Accept-Encoding takes it\n"
            "  --http-json-decoder fast|jansson  fast (default): Feast's usual read body is\n"
            "                           decoded by hand, anything else by jansson; jansson: all\n"
            "                           of them by jansson (same answers, slower)\n"
            "  --metrics-listen ADDR    also serve /metrics alone on this host:port (default:\n"
            "                           only on --http-listen)\n"
            "  --sagemaker-model NAME   the model binding of POST /invocations when the request\n"
            "                           names none (env FSTORE_SAGEMAKER_MODEL)\n"
            "  --tombstone-retention D  how long a delete's tombstone is kept, e.g. 7d (default\n"
            "                           7d): an upsert older than a kept tombstone is stale\n"
            "  --max-future-skew D      refuse event times more than D ahead of this node's\n"
            "                           clock (default 1d)\n"
            "  --history                keep the history of the views whose catalog entry has\n"
            "                           'offline:' (point-in-time reads, load_batch,\n"
            "                           GetHistoricalFeatures); off: this node serves online only\n"
            "  --help                   this text\n"
            "\n",
            SERVER_DEFAULT_LISTEN, SERVER_DEFAULT_WRITE_WORKERS, CORE_DEFAULT_MAX_MESSAGE_BYTES,
            CORE_DEFAULT_MAX_RESPONSE_BYTES, CORE_DEFAULT_MAX_ENTITIES, CORE_DEFAULT_MAX_FEATURES,
            CORE_DEFAULT_MAX_WRITE_ROWS, CORE_DEFAULT_MAX_HISTORY_ROWS,
            SERVER_DEFAULT_SHUTDOWN_GRACE_MS, SERVER_DEFAULT_MAX_STREAMS,
            (size_t)SERVER_DEFAULT_MAX_MEMORY, SERVER_DEFAULT_MAX_SEND_MS,
            SERVER_DEFAULT_MAX_AGE_GRACE_S, SERVER_DEFAULT_HANDSHAKE_TIMEOUT_MS,
            SERVER_DEFAULT_MIN_PING_INTERVAL_MS, SERVER_COMPRESS_MIN_BYTES,
            SERVER_DEFAULT_MAX_WATCHES, SERVER_DEFAULT_MAX_REFLECTION_STREAMS,
            SERVER_DEFAULT_REFLECTION_IDLE_S, HTTP_DEFAULT_LISTEN, HTTP_DEFAULT_MAX_CONNECTIONS,
            HTTP_DEFAULT_CONNECTION_RATE, HTTP_DEFAULT_IDLE_TIMEOUT_S,
            HTTP_DEFAULT_UPSTREAM_TIMEOUT_MS, HTTP_DEFAULT_MAX_PASSTHROUGHS,
            HTTP_DEFAULT_MAX_WRITES, HTTP_COMPRESS_MIN_BYTES);
    cli__repl_usage(f);
    fprintf(f,
            "  --publish-threads N      writes in flight to the log at once (default %d)\n"
            "  --max-pending-writes N   writes waiting for the log or this node's apply; more\n"
            "                           fail RESOURCE_EXHAUSTED (default %d)\n"
            "  --max-lag N              SERVING once within N messages of the stream's last\n"
            "                           sequence seen at start (default 0)\n"
            "  --max-read-wait-ms N     longest wait of a read carrying fstore-min-seq\n"
            "                           (default 5000)\n"
            "  --max-read-waiters N     reads waiting for fstore-min-seq at once; more fail\n"
            "                           UNAVAILABLE (default 16)\n"
            "  --bootstrap-from ADDR    a ready peer (host:port) to copy the store from when\n"
            "                           --data-dir is empty, before replaying the log\n"
            "  --bootstrap-wait-ms N    how long to wait for that peer to be SERVING; then the\n"
            "                           log is replayed from its start (default 30000)\n",
            REPL_DEFAULT_PUBLISH_THREADS, REPL_DEFAULT_MAX_PENDING);
}

int cli_serve(int argc, char **argv)
{
    server_options_t o;
    server_options_init(&o);
    core_options_t co;
    core_options_init(&co);
    const char *log_format = "json";
    const char *response_compression = "mirror";
    const char *http_response_compression = "gzip";
    const char *http_json_decoder = "fast";
    const char *tokens_file = NULL;
    core_jwt_options_t jwt = {NULL, NULL, NULL};
    unsigned watch_ms = 500;
    const char *bootstrap_from = NULL;
    int64_t bootstrap_wait_ms = 30000;
    repl_options_t ro;
    repl_options_init(&ro);
    http_options_t ho;
    http_options_init(&ho);
    const char *metrics_listen = NULL;
    int64_t conn_rate = HTTP_DEFAULT_CONNECTION_RATE;
    bool history = false;
    const char *upstream_tls_paths[3] = {NULL, NULL, NULL};
    const cli_opt_t opts[] = {
        {"listen", 0, CLI_STRING, &o.listen, CLI_ENV},
        {"catalog", 0, CLI_STRING, &co.catalog_path, CLI_ENV},
        {"data-dir", 0, CLI_STRING, &co.data_dir, CLI_ENV | CLI_REQUIRED},
        {"workers", 0, CLI_UNSIGNED, &o.workers, CLI_ENV},
        {"write-workers", 0, CLI_UNSIGNED, &o.write_workers, CLI_ENV, 1},
        {"max-message-bytes", 0, CLI_SIZE, &co.limits.max_message_bytes, CLI_ENV, 1024},
        {"max-response-bytes", 0, CLI_SIZE, &co.limits.max_response_bytes, CLI_ENV, 1024},
        {"max-entities", 0, CLI_SIZE, &co.limits.max_entities, CLI_ENV, 1},
        {"max-features", 0, CLI_SIZE, &co.limits.max_features, CLI_ENV, 1},
        {"max-write-rows", 0, CLI_SIZE, &co.limits.max_write_rows, CLI_ENV, 1},
        {"max-history-rows", 0, CLI_SIZE, &co.limits.max_history_rows, CLI_ENV, 1},
        {"drain-delay-ms", 0, CLI_UNSIGNED, &o.drain_delay_ms, CLI_ENV},
        {"shutdown-grace-ms", 0, CLI_UNSIGNED, &o.shutdown_grace_ms, CLI_ENV},
        {"sync", 0, CLI_SYNC, &co.sync, CLI_ENV},
        {"log-format", 0, CLI_STRING, &log_format, CLI_ENV, 0, 0, "json|text"},
        {"log-requests", 0, CLI_FLAG, &o.log_requests, CLI_ENV},
        {"sched-slice-us", 0, CLI_UNSIGNED, &o.sched_slice_us, CLI_ENV},
        {"tombstone-retention", 0, CLI_DURATION, &co.tombstone_retention_s, CLI_ENV},
        {"max-future-skew", 0, CLI_DURATION, &co.max_future_skew_s, CLI_ENV},
        {"history", 0, CLI_FLAG, &history, CLI_ENV},
        {"grpc-max-streams", 0, CLI_UNSIGNED, &o.max_streams, CLI_ENV, 1, 100000},
        {"grpc-max-memory", 0, CLI_SIZE, &o.max_memory, CLI_ENV, 1 << 20},
        {"grpc-max-send-ms", 0, CLI_UNSIGNED, &o.max_send_ms, CLI_ENV, 0, 3600000},
        {"grpc-max-connection-idle-s", 0, CLI_UNSIGNED, &o.max_idle_s, CLI_ENV, 0, 2000000},
        {"grpc-max-connection-age-s", 0, CLI_UNSIGNED, &o.max_age_s, CLI_ENV, 0, 2000000},
        {"grpc-handshake-timeout-ms", 0, CLI_UNSIGNED, &o.handshake_timeout_ms, CLI_ENV, 100,
         600000},
        {"grpc-min-ping-interval-ms", 0, CLI_UNSIGNED, &o.min_ping_interval_ms, CLI_ENV, 1,
         86400000},
        {"grpc-response-compression", 0, CLI_STRING, &response_compression, CLI_ENV, 0, 0,
         "mirror|off"},
        {"grpc-max-watches", 0, CLI_UNSIGNED, &o.max_watches, CLI_ENV, 1, 1000000},
        {"grpc-max-reflection-streams", 0, CLI_UNSIGNED, &o.max_reflection_streams, CLI_ENV, 1,
         100000},
        {"grpc-reflection-idle-s", 0, CLI_UNSIGNED, &o.reflection_idle_s, CLI_ENV, 0, 86400},
        {"http-response-compression", 0, CLI_STRING, &http_response_compression, CLI_ENV, 0, 0,
         "gzip|off"},
        {"http-json-decoder", 0, CLI_STRING, &http_json_decoder, CLI_ENV, 0, 0, "fast|jansson"},
        {"grpc-max-connection-age-grace-s", 0, CLI_UNSIGNED, &o.max_age_grace_s, CLI_ENV, 0,
         2000000},
        {"tokens-file", 0, CLI_STRING, &tokens_file, CLI_ENV},
        {"jwks-file", 0, CLI_STRING, &jwt.jwks_path, CLI_ENV},
        {"jwt-issuer", 0, CLI_STRING, &jwt.issuer, CLI_ENV},
        {"jwt-audience", 0, CLI_STRING, &jwt.audience, CLI_ENV},
        {"catalog-watch-ms", 0, CLI_UNSIGNED, &watch_ms, CLI_ENV, 0, 600000},
        {"tls-cert", 0, CLI_STRING, &o.tls_cert, CLI_ENV},
        {"tls-key", 0, CLI_STRING, &o.tls_key, CLI_ENV},
        {"tls-client-ca", 0, CLI_STRING, &o.tls_client_ca, CLI_ENV},
        {"tls-require-client-cert", 0, CLI_FLAG, &o.tls_require_client_cert, CLI_ENV},
        {"upstream-tls-ca", 0, CLI_STRING, &upstream_tls_paths[0], CLI_ENV},
        {"upstream-tls-cert", 0, CLI_STRING, &upstream_tls_paths[1], CLI_ENV},
        {"upstream-tls-key", 0, CLI_STRING, &upstream_tls_paths[2], CLI_ENV},
        {"http-listen", 0, CLI_STRING, &ho.listen, CLI_ENV},
        {"http-threads", 0, CLI_UNSIGNED, &ho.threads, CLI_ENV, 1, 256},
        {"http-max-connections", 0, CLI_UNSIGNED, &ho.max_connections, CLI_ENV, 1, 1000000},
        {"http-connection-rate", 0, CLI_I64, &conn_rate, CLI_ENV, 0, 10000000},
        {"http-idle-timeout-s", 0, CLI_UNSIGNED, &ho.idle_timeout_s, CLI_ENV, 1, 86400},
        {"http-upstream-timeout-ms", 0, CLI_UNSIGNED, &ho.upstream_timeout_ms, CLI_ENV, 0, 3600000},
        {"http-max-passthroughs", 0, CLI_UNSIGNED, &ho.max_passthroughs, CLI_ENV, 1, 100000},
        {"http-max-writes", 0, CLI_UNSIGNED, &ho.max_writes, CLI_ENV, 1, 100000},
        {"sagemaker-model", 0, CLI_STRING, &ho.sagemaker_model, CLI_ENV},
        {"metrics-listen", 0, CLI_STRING, &metrics_listen, CLI_ENV},
        CLI_REPL_OPTS(ro),
        {"publish-threads", 0, CLI_SIZE, &ro.publish_threads, CLI_ENV, 1, 256},
        {"max-pending-writes", 0, CLI_SIZE, &ro.max_pending, CLI_ENV, 1, 1000000},
        {"max-lag", 0, CLI_SIZE, &ro.max_lag, CLI_ENV},
        {"max-read-wait-ms", 0, CLI_I64, &co.max_read_wait_ms, CLI_ENV, 1, 600000},
        {"max-read-waiters", 0, CLI_SIZE, &co.max_read_waiters, CLI_ENV, 1, 100000},
        {"bootstrap-from", 0, CLI_STRING, &bootstrap_from, CLI_ENV},
        {"bootstrap-wait-ms", 0, CLI_I64, &bootstrap_wait_ms, CLI_ENV, 0, 3600000},
    };
    const cli_cmd_t cmd = {"serve", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    if (o.sched_slice_us != 0 && (o.sched_slice_us < 100 || o.sched_slice_us > 100000)) {
        fprintf(stderr, "fstore serve: --sched-slice-us wants 0 or 100 to 100000, got %u\n",
                o.sched_slice_us);
        return 2;
    }
    bool tls_cert = o.tls_cert != NULL && o.tls_cert[0] != '\0';
    bool tls_key = o.tls_key != NULL && o.tls_key[0] != '\0';
    bool tls_ca = o.tls_client_ca != NULL && o.tls_client_ca[0] != '\0';
    if (tls_cert != tls_key || (tls_ca && !tls_cert) || (o.tls_require_client_cert && !tls_ca)) {
        fprintf(stderr, "fstore serve: TLS wants --tls-cert and --tls-key together; "
                        "--tls-client-ca needs them, and --tls-require-client-cert needs "
                        "--tls-client-ca\n");
        return 2;
    }
    ho.connection_rate = conn_rate == 0 ? HTTP_CONNECTION_RATE_OFF : (unsigned)conn_rate;
    ho.tls_cert = o.tls_cert;
    ho.tls_key = o.tls_key;
    ho.tls_client_ca = o.tls_client_ca;
    ho.tls_require_client_cert = o.tls_require_client_cert;
    if (load_upstream_tls(upstream_tls_paths) != 0)
        return 2;
    o.upstream_tls = ho.upstream_tls = &upstream_tls;
    ho.log_requests = o.log_requests;
    core_tokens_t *tokens = NULL;
    bool jwks = jwt.jwks_path != NULL && jwt.jwks_path[0] != '\0';
    bool has_tokens = tokens_file != NULL && tokens_file[0] != '\0';
    if ((jwks && !has_tokens) || (!jwks && ((jwt.issuer != NULL && jwt.issuer[0] != '\0') ||
                                            (jwt.audience != NULL && jwt.audience[0] != '\0')))) {
        fprintf(stderr, "fstore serve: --jwks-file needs --tokens-file (its jwt:SUBJECT lines "
                        "give subjects their scopes); --jwt-issuer and --jwt-audience need "
                        "--jwks-file\n");
        return 2;
    }
    if (has_tokens) {
        char why[512];
        int trc = core_tokens_load(tokens_file, &tokens, why, sizeof why);
        if (trc < 0) {
            fprintf(stderr, "fstore serve: --tokens-file: %s\n",
                    trc == -ENOMEM ? "out of memory" : why);
            return 2;
        }
        if (jwks && (trc = core_tokens_use_jwks(tokens, &jwt, why, sizeof why)) < 0) {
            fprintf(stderr, "fstore serve: --jwks-file: %s\n", why);
            core_tokens_free(tokens);
            return 2;
        }
        o.tokens = tokens;
        ho.tokens = tokens;
        /* The listeners borrow them until the process ends, whichever way serve returns. */
        loaded_tokens = tokens;
        atexit(free_tokens);
    }
    base_log_setup(strcmp(log_format, "text") == 0 ? BASE_LOG_TEXT : BASE_LOG_JSON);
    o.no_response_compression = strcmp(response_compression, "off") == 0;
    ho.no_response_compression = strcmp(http_response_compression, "off") == 0;
    ho.jansson_only = strcmp(http_json_decoder, "jansson") == 0;
    if (ro.urls != NULL && ro.urls[0] != '\0') {
        co.replication = &ro;
    } else if (bootstrap_from != NULL) {
        fprintf(stderr, "fstore serve: --bootstrap-from needs --replication (a copy without the "
                        "log would never catch up)\n");
        return 2;
    }
    /* Ports first: a busy one must fail before the data directory is touched. */
    const char *const listens[] = {o.listen, ho.listen, metrics_listen};
    const char *const what[] = {"", " (HTTP)", " (metrics)"};
    for (int i = 0; i < 3; i++) {
        const char *why = NULL;
        int lrc = probe_listen(listens[i], i > 0, &why);
        if (lrc < 0) {
            fprintf(stderr, "fstore serve: cannot listen on %s%s: %s\n", listens[i], what[i],
                    lrc == -EADDRINUSE ? "address in use"
                    : why != NULL      ? why
                                       : strerror(-lrc));
            return 1;
        }
    }

    /* Nothing to serve: said before the directory is touched. */
    char mdb[4096];
    struct stat mst;
    snprintf(mdb, sizeof mdb, "%s/data.mdb", co.data_dir);
    if ((co.catalog_path == NULL || co.catalog_path[0] == '\0') && co.replication == NULL &&
        stat(mdb, &mst) < 0) {
        fprintf(stderr,
                "fstore serve: %s holds no store and no catalog was given: pass --catalog FILE "
                "(or --replication, to take the log's)\n",
                co.data_dir);
        return 1;
    }
    long holder = 0;
    int lrc = lock_data_dir(co.data_dir, &holder);
    if (lrc == -EBUSY) {
        fprintf(stderr,
                "fstore serve: %s is already served by another fstore serve (pid %ld): one "
                "serve per data directory\n",
                co.data_dir, holder);
        return 1;
    }
    if (lrc < 0) {
        fprintf(stderr, "fstore serve: cannot lock %s/serve.lock: %s\n", co.data_dir,
                strerror(-lrc));
        return 1;
    }
    /* Before the first thread starts (the bootstrap's gRPC client, then core_open()): they must
     * all inherit the mask, or a SIGTERM may land on a thread that kills the process instead of
     * draining it. A signal during a bootstrap waits for the signal thread. */
    signal_thread_t st = {.server = NULL};
    atomic_init(&st.done, false);
    sigemptyset(&st.set);
    sigaddset(&st.set, SIGTERM);
    sigaddset(&st.set, SIGINT);
    sigaddset(&st.set, SIGHUP);
    int e = pthread_sigmask(SIG_BLOCK, &st.set, NULL);
    if (e != 0) {
        fprintf(stderr, "fstore serve: cannot block signals: %s\n", strerror(e));
        return 1;
    }
    if (bootstrap_from != NULL && bootstrap_from[0] != '\0') {
        int brc = cli__bootstrap(co.data_dir, bootstrap_from, (int)bootstrap_wait_ms);
        if (brc < 0)
            return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    core_t *core = NULL;
    server_t *s = NULL;
    http_t *h = NULL, *hm = NULL;
    http_options_t mo = ho;
    mo.listen = metrics_listen;
    mo.metrics_only = true;
    mo.threads = 1;
    co.max_workers = server_worker_count(&o) + http_worker_count(&ho) + http_worker_count(&mo);
    /* The server decides for its data directory, either way (see store_history_t). */
    co.history = history ? STORE_HISTORY_ON : STORE_HISTORY_OFF;
    int rc = core_open(&co, &core);
    if (rc == 0)
        rc = server_new(core, &o, &s);
    if (rc == -EADDRINUSE) {
        fprintf(stderr, "fstore serve: cannot listen on %s: address in use or invalid\n", o.listen);
        server_free(s);
        core_close(core);
        return 1;
    }
    ho.metrics[ho.n_metrics] = core_metrics;
    ho.metrics_arg[ho.n_metrics++] = core;
    ho.metrics[ho.n_metrics] = server_metrics;
    ho.metrics_arg[ho.n_metrics++] = s;
    if (rc == 0 && ho.listen != NULL && ho.listen[0] != '\0') {
        rc = http_start(core, &ho, &h);
        if (rc < 0) {
            fprintf(stderr, "fstore serve: cannot listen on %s (HTTP): %s\n", ho.listen,
                    rc == -EINVAL ? "not a host:port address, or unreadable TLS files (see the log)"
                                  : "address in use or invalid");
            server_free(s);
            core_close(core);
            return 1;
        }
        base_log(BASE_LOG_INFO, "http_listening", "{s:s, s:i}", "address", ho.listen, "port",
                 http_port(h));
    }
    if (rc == 0 && mo.listen != NULL && mo.listen[0] != '\0') {
        /* The metrics listener reports the main listener's HTTP counters, not its own. */
        mo.n_metrics = 0;
        if (h != NULL) {
            mo.metrics[mo.n_metrics] = http_metrics;
            mo.metrics_arg[mo.n_metrics++] = h;
        }
        mo.metrics[mo.n_metrics] = core_metrics;
        mo.metrics_arg[mo.n_metrics++] = core;
        mo.metrics[mo.n_metrics] = server_metrics;
        mo.metrics_arg[mo.n_metrics++] = s;
        rc = http_start(core, &mo, &hm);
        if (rc < 0) {
            fprintf(stderr, "fstore serve: cannot listen on %s (metrics): %s\n", mo.listen,
                    rc == -EINVAL ? "not a host:port address, or unreadable TLS files (see the log)"
                                  : "address in use or invalid");
            http_stop(h);
            server_free(s);
            core_close(core);
            return 1;
        }
    }
    if (rc == -ENOENT && core == NULL && (co.catalog_path == NULL || co.catalog_path[0] == '\0') &&
        co.replication == NULL) {
        fprintf(stderr,
                "fstore serve: cannot start: no catalog is applied to %s and none was given: "
                "pass --catalog FILE\n",
                co.data_dir);
    } else if (rc < 0) {
        fprintf(stderr, "fstore serve: cannot start: %s (details in the log above)\n",
                strerror(-rc));
    }
    if (rc < 0) {
        core_close(core);
        if (co.replication != NULL)
            repl_library_close();
        return 1;
    }

    /* A signal that came while the server was being built is taken here, so that server_run()
     * sees the stop before it reports SERVING (and then skips the drain delay). */
    struct timespec no_wait = {0, 0};
    int pending;
    while ((pending = sigtimedwait(&st.set, NULL, &no_wait)) > 0) {
        if (pending == SIGHUP)
            server_request_reload(s);
        else
            server_request_stop(s);
    }

    st.server = s;
    e = pthread_create(&st.thread, NULL, signal_main, &st);
    if (e != 0) {
        fprintf(stderr, "fstore serve: cannot start the signal thread: %s\n", strerror(e));
        http_stop(h);
        server_free(s);
        core_close(core);
        return 1;
    }

    cli_watch_t *watch = NULL;
    if (watch_ms > 0 && co.catalog_path != NULL && co.catalog_path[0] != '\0') {
        int wrc = cli__watch_start(co.catalog_path, watch_ms, reload_from_watch, s, &watch);
        if (wrc < 0)
            base_log(BASE_LOG_WARN, "catalog_watch_failed", "{s:s, s:s}", "catalog",
                     co.catalog_path, "error", strerror(-wrc));
    }

    rc = server_run(s);

    cli__watch_stop(watch);
    /* The signal thread goes before the server does; a signal aimed at it wakes its sigwait(). */
    atomic_store(&st.done, true);
    pthread_kill(st.thread, SIGHUP);
    pthread_join(st.thread, NULL);
    http_stop(h);
    http_stop(hm);
    server_free(s);
    core_close(core);
    if (co.replication != NULL)
        repl_library_close();
    return rc < 0 ? 1 : 0;
}
