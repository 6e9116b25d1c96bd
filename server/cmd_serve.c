/* server/cmd_serve.c - `fstore serve`: flags and signals around server_new/run/free. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cli_int.h"
#include "server/server.h"

/*
 * Signals are not handled in a signal handler at all. SIGTERM, SIGINT and SIGHUP are blocked
 * before any thread exists (the store's writer and gRPC's threads start in server_new()), so
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
            "  --drain-delay-ms N       on stop, keep accepting calls this long after health\n"
            "                           turns NOT_SERVING (default 0; set it to the time your\n"
            "                           load balancer takes to notice, e.g. 5000 on Kubernetes)\n"
            "  --shutdown-grace-ms N    time in-flight calls get on stop (default %u)\n"
            "  --sync full|none         fsync every write batch (default full)\n"
            "  --log-format json|text   log line format (default json)\n"
            "  --log-requests           log every call (method, status, duration; no values)\n"
            "  --sched-slice-us N       read workers' CPU slice on Linux 6.12+ (100-100000;\n"
            "                           default 0: the kernel's): a worker woken by a request\n"
            "                           preempts a busy neighbour instead of waiting its turn\n"
            "  --help                   this text\n",
            SERVER_DEFAULT_LISTEN, SERVER_DEFAULT_WRITE_WORKERS, SERVER_DEFAULT_MAX_MESSAGE_BYTES,
            SERVER_DEFAULT_MAX_RESPONSE_BYTES, SERVER_DEFAULT_MAX_ENTITIES,
            SERVER_DEFAULT_MAX_FEATURES, SERVER_DEFAULT_MAX_WRITE_ROWS,
            SERVER_DEFAULT_SHUTDOWN_GRACE_MS);
}

static int parse_size(const char *flag, const char *s, size_t min, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > SIZE_MAX) {
        fprintf(stderr, "fstore serve: --%s wants a whole number >= %zu, got '%s'\n", flag, min, s);
        return -EINVAL;
    }
    *out = (size_t)v;
    return 0;
}

static int parse_unsigned(const char *flag, const char *s, size_t min, unsigned *out)
{
    size_t v = 0;
    int rc = parse_size(flag, s, min, &v);
    if (rc == 0 && v > 1000000) {
        fprintf(stderr, "fstore serve: --%s is too large: '%s'\n", flag, s);
        return -EINVAL;
    }
    if (rc == 0)
        *out = (unsigned)v;
    return rc;
}

enum {
    OPT_LISTEN = 1,
    OPT_CATALOG,
    OPT_DATA_DIR,
    OPT_WORKERS,
    OPT_WRITE_WORKERS,
    OPT_MAX_MESSAGE_BYTES,
    OPT_MAX_RESPONSE_BYTES,
    OPT_MAX_ENTITIES,
    OPT_MAX_FEATURES,
    OPT_MAX_WRITE_ROWS,
    OPT_DRAIN_DELAY,
    OPT_SHUTDOWN_GRACE,
    OPT_SYNC,
    OPT_LOG_FORMAT,
    OPT_LOG_REQUESTS,
    OPT_SCHED_SLICE,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"catalog", required_argument, NULL, OPT_CATALOG},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"write-workers", required_argument, NULL, OPT_WRITE_WORKERS},
    {"max-message-bytes", required_argument, NULL, OPT_MAX_MESSAGE_BYTES},
    {"max-response-bytes", required_argument, NULL, OPT_MAX_RESPONSE_BYTES},
    {"max-entities", required_argument, NULL, OPT_MAX_ENTITIES},
    {"max-features", required_argument, NULL, OPT_MAX_FEATURES},
    {"max-write-rows", required_argument, NULL, OPT_MAX_WRITE_ROWS},
    {"drain-delay-ms", required_argument, NULL, OPT_DRAIN_DELAY},
    {"shutdown-grace-ms", required_argument, NULL, OPT_SHUTDOWN_GRACE},
    {"sync", required_argument, NULL, OPT_SYNC},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-requests", no_argument, NULL, OPT_LOG_REQUESTS},
    {"sched-slice-us", required_argument, NULL, OPT_SCHED_SLICE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Applies one flag value (from the command line or FSTORE_*). Returns: 0, -EINVAL. */
static int apply_flag(int id, const char *val, server_options_t *o, server_log_format_t *fmt)
{
    switch (id) {
    case OPT_LISTEN:
        o->listen = val;
        return 0;
    case OPT_CATALOG:
        o->catalog_path = val;
        return 0;
    case OPT_DATA_DIR:
        o->data_dir = val;
        return 0;
    case OPT_WORKERS:
        return parse_unsigned("workers", val, 0, &o->workers);
    case OPT_WRITE_WORKERS:
        return parse_unsigned("write-workers", val, 1, &o->write_workers);
    case OPT_MAX_MESSAGE_BYTES:
        return parse_size("max-message-bytes", val, 1024, &o->limits.max_message_bytes);
    case OPT_MAX_RESPONSE_BYTES:
        return parse_size("max-response-bytes", val, 1024, &o->limits.max_response_bytes);
    case OPT_MAX_ENTITIES:
        return parse_size("max-entities", val, 1, &o->limits.max_entities);
    case OPT_MAX_FEATURES:
        return parse_size("max-features", val, 1, &o->limits.max_features);
    case OPT_MAX_WRITE_ROWS:
        return parse_size("max-write-rows", val, 1, &o->limits.max_write_rows);
    case OPT_DRAIN_DELAY:
        return parse_unsigned("drain-delay-ms", val, 0, &o->drain_delay_ms);
    case OPT_SHUTDOWN_GRACE:
        return parse_unsigned("shutdown-grace-ms", val, 0, &o->shutdown_grace_ms);
    case OPT_SYNC:
        if (server__parse_sync(val, &o->sync) < 0) {
            fprintf(stderr, "fstore serve: --sync wants full or none, got '%s'\n", val);
            return -EINVAL;
        }
        return 0;
    case OPT_LOG_FORMAT:
        if (strcmp(val, "json") == 0) {
            *fmt = SERVER_LOG_JSON;
        } else if (strcmp(val, "text") == 0) {
            *fmt = SERVER_LOG_TEXT;
        } else {
            fprintf(stderr, "fstore serve: --log-format wants json or text, got '%s'\n", val);
            return -EINVAL;
        }
        return 0;
    case OPT_SCHED_SLICE: {
        int rc = parse_unsigned("sched-slice-us", val, 0, &o->sched_slice_us);
        if (rc == 0 && o->sched_slice_us != 0 &&
            (o->sched_slice_us < 100 || o->sched_slice_us > 100000)) {
            fprintf(stderr, "fstore serve: --sched-slice-us wants 0 or 100 to 100000, got '%s'\n",
                    val);
            return -EINVAL;
        }
        return rc;
    }
    case OPT_LOG_REQUESTS:
        o->log_requests = val[0] != '\0' && strcmp(val, "0") != 0 && strcmp(val, "false") != 0;
        return 0;
    default:
        return -EINVAL;
    }
}

int server__cmd_serve(int argc, char **argv)
{
    server_options_t o;
    server_options_init(&o);
    server_log_format_t fmt = SERVER_LOG_JSON;

    /* Environment first, so flags on the command line win. */
    for (const struct option *lo = long_opts; lo->name != NULL; lo++) {
        if (lo->val == OPT_HELP)
            continue;
        const char *v = server__env_or(lo->name, NULL);
        if (v != NULL && apply_flag(lo->val, v, &o, &fmt) < 0) {
            fprintf(stderr, "fstore serve: (from the environment variable for --%s)\n", lo->name);
            return 2;
        }
    }
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (opt == OPT_HELP) {
            usage(stdout);
            return 0;
        }
        if (opt == '?' || opt == ':') {
            fprintf(stderr, "fstore serve: unknown flag or missing value: %s\n\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        if (apply_flag(opt, opt == OPT_LOG_REQUESTS ? "1" : optarg, &o, &fmt) < 0)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "fstore serve: unexpected argument '%s'\n\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (o.data_dir == NULL) {
        fprintf(stderr, "fstore serve: --data-dir is required\n\n");
        usage(stderr);
        return 2;
    }
    server_log_setup(fmt);

    /* Before server_new(), which starts the first threads: they must all inherit the mask. */
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
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    server_t *s = NULL;
    int rc = server_new(&o, &s);
    if (rc == -EADDRINUSE) {
        fprintf(stderr, "fstore serve: cannot listen on %s: address in use or invalid\n", o.listen);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "fstore serve: cannot start: %s (details in the log above)\n",
                strerror(-rc));
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
        server_free(s);
        return 1;
    }

    rc = server_run(s);

    /* The signal thread goes before the server does; a signal aimed at it wakes its sigwait(). */
    atomic_store(&st.done, true);
    pthread_kill(st.thread, SIGHUP);
    pthread_join(st.thread, NULL);
    server_free(s);
    return rc < 0 ? 1 : 0;
}
