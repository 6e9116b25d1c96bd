/* cli/cli_int.h - shared inside cli/: the flag parser and the catalog printers. */
#ifndef CLI_CLI_INT_H
#define CLI_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "catalog/catalog.h"
#include "clients/c/fstore_client.h"
#include "cli/cli.h"
#include "repl/repl.h"
#include "storage/store.h"

/* ------------------------------------------------------------------------------------------ */
/* Flags: one parser for every subcommand (opts.c)                                             */

typedef enum cli_kind {
    CLI_STRING,   /* const char **: the value as given; with choices, one of them */
    CLI_FLAG,     /* bool *: no value on the command line; from the environment any value but
                     "", "0" and "false" sets it */
    CLI_LIST,     /* cli_list_t *: repeatable, each value appended */
    CLI_SIZE,     /* size_t *: a whole number in [min, max] (max 0: SIZE_MAX) */
    CLI_UNSIGNED, /* unsigned *: a whole number in [min, max] (max 0: 1000000) */
    CLI_SYNC,     /* store_sync_t *: full or none */
    CLI_I64,      /* int64_t *: a whole number in [min, max] (max 0: INT64_MAX) */
    CLI_DURATION, /* int64_t *: seconds, as the catalog writes them ("90s", "15m", "7d", "0") */
} cli_kind_t;

#define CLI_ENV 1u      /* FSTORE_<NAME> in the environment sets it too */
#define CLI_REQUIRED 2u /* absent (from both): a usage error naming it */

typedef struct cli_opt {
    const char *name; /* the long flag without its dashes: "data-dir" */
    char short_name;  /* 'd', or 0 */
    cli_kind_t kind;
    void *dest;
    unsigned flags;
    unsigned long long min, max;
    const char *choices; /* CLI_STRING: "csv|jsonl"; NULL = anything */
} cli_opt_t;

/* The values of a repeatable flag, in an array the caller provides (cap entries). */
typedef struct cli_list {
    const char **items;
    size_t n, cap;
} cli_list_t;

typedef struct cli_cmd {
    const char *name;       /* "ingest", for messages: "fstore ingest: ..." */
    void (*usage)(FILE *f); /* the help text */
    const cli_opt_t *opts;
    size_t n_opts;
    int min_args, max_args; /* positional arguments allowed */
    const char *args_name;  /* what they are, for messages: "FILE" */
} cli_cmd_t;

/*
 * Parses argv (argv[0] = the subcommand) against cmd: values from the environment first (flags
 * with CLI_ENV), then the command line, whose flags win. A bad value says which flag and what
 * it wants ("--workers wants a whole number from 0 to 1000000, got 'x'"; from the environment,
 * also which variable), an unknown flag or a missing value is named, and each ends with the
 * usage on stderr. *first gets the index of the first positional argument.
 * Returns: 0 parsed; 1 --help was printed on stdout (exit 0); 2 a usage error was printed (exit
 *          2).
 */
int cli__parse(const cli_cmd_t *cmd, int argc, char **argv, int *first);

/* Whether a CLI_STRING flag's value, after cli__parse(), came from the environment variable
 * FSTORE_<FLAG> rather than the command line (cli__parse() keeps the environment's own string:
 * this compares the pointers). For defaults a container image sets, such as FSTORE_DATA_DIR,
 * that a flag naming another destination should override. */
bool cli__from_env(const char *flag, const char *value);

/* The replication flags every subcommand that talks to the log takes (serve, apply, ingest), into
 * a repl_options_t; cli__repl_usage() prints their help. */
#define CLI_REPL_OPTS(ro)                                                                          \
    {"replication", 0, CLI_STRING, &(ro).urls, CLI_ENV},                                           \
        {"stream", 0, CLI_STRING, &(ro).stream, CLI_ENV},                                          \
        {"subject-prefix", 0, CLI_STRING, &(ro).subject_prefix, CLI_ENV},                          \
        {"stream-replicas", 0, CLI_UNSIGNED, &(ro).replicas, CLI_ENV, 1, 5},                       \
        {"stream-max-age", 0, CLI_DURATION, &(ro).max_age_s, CLI_ENV},                             \
        {"stream-max-bytes", 0, CLI_I64, &(ro).max_bytes, CLI_ENV},                                \
        {"publish-timeout-ms", 0, CLI_I64, &(ro).publish_timeout_ms, CLI_ENV, 100, 3600000},       \
        {"connect-timeout-ms", 0, CLI_I64, &(ro).connect_timeout_ms, CLI_ENV, 100, 3600000},       \
        {"replication-tls-ca", 0, CLI_STRING, &(ro).tls_ca, CLI_ENV},                              \
        {"replication-tls-cert", 0, CLI_STRING, &(ro).tls_cert, CLI_ENV},                          \
    {                                                                                              \
        "replication-tls-key", 0, CLI_STRING, &(ro).tls_key, CLI_ENV                               \
    }
void cli__repl_usage(FILE *f);

/* `fstore serve --bootstrap-from`: copies a ready peer's store into dir when dir has none
 * (bootstrap.c), waiting up to wait_ms for the peer to be SERVING. Returns: 0 (copied, dir had a
 * store, or no peer was ready: the log is replayed from its start), or a negative errno after
 * logging (the copy failed midway). */
int cli__bootstrap(const char *dir, const char *peer, int wait_ms);

/* serve's catalog watch (watch.c): fn(arg) once the directory holding catalog_path (the path
 * itself when a directory) has been quiet for quiet_ms after any change in it, on the watch's
 * own thread. Returns: 0 and *out (stop it with cli__watch_stop(), which joins the thread);
 * -errno (no such path, no inotify). */
typedef struct cli_watch cli_watch_t;
int cli__watch_start(const char *catalog_path, unsigned quiet_ms, void (*fn)(void *), void *arg,
                     cli_watch_t **out);
void cli__watch_stop(cli_watch_t *w);

/* ------------------------------------------------------------------------------------------ */
/* Output shared by the subcommands (print.c)                                                  */

/* store_open() for a subcommand: on failure prints "fstore CMD: cannot open DIR: why" on stderr.
 * create: false refuses a directory without a store (-ENOENT, saying `fstore apply` makes one)
 * before anything is created in it; only apply creates stores.
 * Returns: store_open()'s result. Ownership: *out as store_open(). */
int cli__open_store(const char *cmd, const store_options_t *o, bool create, store_t **out);

/* Refuses a store that is a replica of a replication log (it applied a log position, and was
 * never written without it since) for a command that would write it directly: a replica holds
 * only what the log holds. Prints
 * "fstore CMD: DIR is a replica ...; HOW" on stderr. Returns: 0; -EROFS (a replica); another
 * store error (printed). */
int cli__refuse_replica(const char *cmd, store_t *s, const char *dir, const char *how);

/* The authorization value for calls to a server: "Bearer TOKEN" from token_file (--token-file:
 * its first line, without blanks around it; printable ASCII), or "" without one. Returns: 0, or
 * -EINVAL having printed "fstore CMD: cannot read a token from FILE" (the token itself is never
 * printed). */
int cli__bearer(const char *cmd, const char *token_file, char *auth, size_t cap);
/* Room for "Bearer TOKEN": a token of up to 8 KiB (a Kubernetes service-account JWT is about
 * 1 KiB; the server refuses a JWT over 8 KiB). */
#define CLI_AUTH_MAX 8200

/* TLS to the server for a command's calls (--tls-ca, --tls-cert, --tls-key of a command with
 * --target; never from the environment, where a server's own FSTORE_TLS_CERT would be taken for
 * a client certificate). cli__call() and cli__connect() use it. */
extern fstore_client_tls_t cli__tls;
#define CLI_CLIENT_TLS_OPTS                                                                        \
    {"tls-ca", 0, CLI_STRING, &cli__tls.ca, 0}, {"tls-cert", 0, CLI_STRING, &cli__tls.cert, 0},    \
        {"tls-key", 0, CLI_STRING, &cli__tls.key, 0},                                              \
    {                                                                                              \
        "tls-server-name", 0, CLI_STRING, &cli__tls.server_name, 0                                 \
    }
/* The usage lines of CLI_CLIENT_TLS_OPTS. */
#define CLI_CLIENT_TLS_USAGE                                                                       \
    "      --tls-ca FILE      the server serves TLS: its certificate must chain to these PEM\n"    \
    "                         CAs (--tls-cert and --tls-key alone: gRPC's default roots)\n"        \
    "      --tls-cert FILE, --tls-key FILE  this client's certificate and key, for a server\n"     \
    "                         that asks for one (--tls-client-ca)\n"                               \
    "      --tls-server-name NAME  the name the server's certificate carries, when the\n"          \
    "                         target is another (a pod's address; default: the target)\n"
/* Whether any of CLI_CLIENT_TLS_OPTS was given (they go with --target only). */
bool cli__tls_given(void);
/* A client of target over cli__tls. Returns: 0 and *out; a negative errno, having printed
 * "fstore CMD: TARGET: why". */
int cli__connect(const char *cmd, const char *target, fstore_client_t **out);

/* A read status's FieldStatus name ("PRESENT", ...). */
const char *cli__status_name(store_status_t st);
/* A decoded value as JSON (strings that are not UTF-8, and bytes, as catalog_value_format()
 * prints them). Ownership: the caller's reference. */
json_t *cli__value_json(const catalog_value_t *v);
/* The type a join key called name has in the views of res (the first view that has it), or
 * STRING when none has it (a read ignores such a column). */
struct core_resolved;
catalog_dtype_t cli__key_type(const struct core_resolved *res, const char *name);
/* The serving core on dir, read-only and without request limits, and one reading worker: what
 * the reading subcommands (get, history) run on. Returns: 0 and *core, *w; a negative errno
 * after printing "fstore CMD: ..." (*core may then be open: the caller frees both either way,
 * core_worker_free() and core_close(), which accept NULL). */
struct core;
struct core_worker;
int cli__open_reader(const char *cmd, const char *dir, struct core **core, struct core_worker **w);

/* References at most, in a feature list of the CLI. */
#define CLI_MAX_FEATURES 4096
struct core_feature_list;
/* The feature list of --feature-service service (non-NULL) or of every --features argument,
 * as core_resolve() takes it (in a). Returns: 0; 1 after printing "fstore CMD: ..." (an
 * unknown view, too many references, out of memory). */
int cli__feature_list(const char *cmd, const catalog_t *cat, base_arena_t *a, const char *service,
                      const cli_list_t *features, bool full_names, struct core_feature_list *out);
/* "view:feature", or "view@vN:feature" for a version that is not the default. */
void cli__ref_name(const catalog_feature_ref_t *r, char *buf, size_t cap);
/* Appends the references of one comma-separated --features argument to refs (view:* for every
 * feature of a view), at most cap of them; the strings live in list or a. Returns: 0, or 1
 * after printing "fstore CMD: ..." (an unknown view, too many). */
int cli__add_refs(const char *cmd, const catalog_t *cat, base_arena_t *a, char *list,
                  const char **refs, size_t *lens, size_t cap, size_t *n);

/* One call to a running server (`fstore status`, `fstore gc --target`): connects to target,
 * calls method with req and, when auth is not "", its authorization metadata, and closes. On a
 * failure prints "fstore CMD: TARGET: why" (the server's message for a status) on stderr, and
 * sets *code (may be NULL) to the call's gRPC status (UNAVAILABLE for a server not reached), or
 * -1 for a failure before the call.
 * It initializes gRPC for the call and shuts it down after (grpc_init()'s count: a caller that
 * holds gRPC itself keeps it).
 * Returns: 0 with *resp (malloc'd, the caller frees it) and *resp_len; a negative errno. */
int cli__call(const char *cmd, const char *target, const char *auth, const char *method,
              const uint8_t *req, size_t len, int timeout_ms, uint8_t **resp, size_t *resp_len,
              int *code);
/* Prints doc, indented, on stdout and releases it. Accepts NULL. Ownership: takes doc. */
void cli__print_json(json_t *doc);
/*
 * Prints every error of a catalog that failed to load: as `file:line:col: key: message` lines
 * (the location is left out for an error without a line, the key for one without a key)
 * plus "fstore CMD: catalog PATH is not valid (N errors)" on stderr, or with json as one document
 * {"ok":false,"errors":[{file,line,column,key,message}...]} on stdout.
 */
void cli__print_catalog_errors(const char *cmd, const char *path, const catalog_errors_t *errs,
                               bool json);
/* Returns: "added", "removed" or "changed". */
const char *cli__change_kind_name(catalog_change_kind_t k);
/* Prints one line per change: mark, kind, SAFE or BREAKING, object: detail. */
void cli__print_plan_changes(const catalog_plan_t *plan);

#endif /* CLI_CLI_INT_H */
