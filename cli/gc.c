/* cli/gc.c - `fstore gc`: delete rows past their view's TTL, in a data directory or on a running
 * server (CollectGarbage). */
#include <errno.h>
#include <grpc/status.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"
#include "clients/c/fstore_client.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: fstore gc --data-dir DIR\n"
               "       fstore gc --target HOST:PORT [--token-file F] [--timeout-ms N]\n"
               "\n"
               "Deletes every row whose event time is older than its view's TTL (views without a\n"
               "TTL keep everything), in small transactions so a running server's writes are not\n"
               "held up. With --target, the running server at HOST:PORT does it to its own store\n"
               "(CollectGarbage, admin scope): how a Kubernetes CronJob reaches pods whose\n"
               "volumes it cannot mount. A replicated node publishes the sweep to the log, and\n"
               "every node applies it at the same place (by the called node's clock and\n"
               "--tombstone-retention): call one node, not each, and another only when one\n"
               "exits 3. A replica's directory takes no local sweep.\n"
               "\n"
               "flags:\n"
               "  -d, --data-dir DIR     data directory (env FSTORE_DATA_DIR)\n"
               "      --target HOST:PORT a running server's gRPC address (env FSTORE_TARGET)\n"
               "      --token-file F     with --target: a file holding a bearer token with the\n"
               "                         admin scope (env FSTORE_TOKEN_FILE)\n"
               "      --timeout-ms N     with --target: how long the sweep may take (default\n"
               "                         3600000)\n" CLI_CLIENT_TLS_USAGE
               "  -h, --help             this help\n"
               "\n"
               "FSTORE_DATA_DIR in the environment yields to --target.\n"
               "exit status: 0 done, 1 failed, 2 usage error, 3 the server was unavailable (not\n"
               "reached, draining, or no acknowledgement from its replication log, which may\n"
               "still have taken the sweep): another node may be tried\n");
}

static int gc_remote(const char *target, const char *token_file, long timeout_ms)
{
    char auth[CLI_AUTH_MAX];
    if (cli__bearer("gc", token_file, auth, sizeof auth) < 0)
        return 1;
    uint8_t *resp = NULL;
    size_t len = 0;
    int code = -1;
    int rc = cli__call("gc", target, auth, FSTORE_PATH_COLLECT_GARBAGE, (const uint8_t *)"", 0,
                       (int)timeout_ms, &resp, &len, &code);
    explicit_bzero(auth, sizeof auth);
    if (rc < 0)
        return code == GRPC_STATUS_UNAVAILABLE ? 3 : 1;
    Fstore__V1__CollectGarbageResponse *r =
        fstore__v1__collect_garbage_response__unpack(NULL, len, resp);
    free(resp);
    if (r == NULL) {
        fprintf(stderr, "fstore gc: %s: malformed response\n", target);
        return 1;
    }
    printf("gc: %s deleted %llu expired row%s\n", target, (unsigned long long)r->rows_deleted,
           r->rows_deleted == 1 ? "" : "s");
    fstore__v1__collect_garbage_response__free_unpacked(r, NULL);
    return 0;
}

int cli_gc(int argc, char **argv)
{
    const char *dir = NULL, *target = NULL, *token_file = NULL;
    int64_t timeout_ms = 3600000;
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &dir, CLI_ENV},
        {"target", 0, CLI_STRING, &target, CLI_ENV},
        {"token-file", 0, CLI_STRING, &token_file, CLI_ENV},
        {"timeout-ms", 0, CLI_I64, &timeout_ms, 0, 1000, 86400000},
        CLI_CLIENT_TLS_OPTS,
    };
    const cli_cmd_t cmd = {"gc", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    bool remote = target != NULL && target[0] != '\0';
    if (cli__from_env("data-dir", dir) && remote)
        dir = NULL; /* the image's FSTORE_DATA_DIR yields to --target */
    bool tls = cli__tls_given();
    if (remote == (dir != NULL) || ((token_file != NULL || tls) && !remote)) {
        fprintf(stderr, "fstore gc: give --data-dir (a local store) or --target (a running "
                        "server), one of them; --token-file and --tls-* go with --target\n\n");
        usage(stderr);
        return 2;
    }
    if (remote)
        return gc_remote(target, token_file, (long)timeout_ms);
    store_options_t o = {.dir = dir};
    store_t *s = NULL;
    int rc = cli__open_store("gc", &o, false, &s);
    if (rc < 0)
        return 1;
    if (cli__refuse_replica("gc", s, dir,
                            "sweep it through the log (fstore gc --target HOST:PORT of any node: "
                            "every node applies the sweep at the same place)") < 0) {
        store_close(s);
        return 1;
    }
    size_t deleted = 0;
    rc = store_gc(s, store_now_us(), &deleted);
    store_close(s);
    if (rc < 0) {
        fprintf(stderr, "fstore gc: %s\n", strerror(-rc));
        return 1;
    }
    printf("gc: deleted %zu expired row%s\n", deleted, deleted == 1 ? "" : "s");
    return 0;
}
