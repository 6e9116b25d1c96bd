/* cli/status.c - `fstore status`: a running node's replica against the log. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"
#include "clients/c/fstore_client.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: fstore status [--listen ADDR] [--token-file F] [--tls-ca F] [--json]\n"
               "\n"
               "Asks a running server (GetReplicationStatus) for its health and its replica:\n"
               "state (catching_up, ready, needs_snapshot, failed), the applied and the\n"
               "stream's last sequence, the lag in messages and in milliseconds, the NATS\n"
               "connection, writes waiting, the last error.\n"
               "\n"
               "flags:\n"
               "  -l, --listen ADDR   the server's host:port (default 127.0.0.1:6566; env\n"
               "                      FSTORE_LISTEN)\n"
               "      --token-file F  a file holding a bearer token with the admin scope, for a\n"
               "                      server run with --tokens-file (env FSTORE_TOKEN_FILE)\n"
               "      --json          one JSON document\n" CLI_CLIENT_TLS_USAGE
               "  -h, --help          this help\n"
               "\n"
               "exit status: 0 SERVING, 1 not serving or unreachable, 2 usage error\n");
}

int cli_status(int argc, char **argv)
{
    const char *listen = "127.0.0.1:6566";
    bool json = false;
    const char *token_file = NULL;
    const cli_opt_t opts[] = {
        {"listen", 'l', CLI_STRING, &listen, CLI_ENV},
        {"json", 0, CLI_FLAG, &json, 0},
        {"token-file", 0, CLI_STRING, &token_file, CLI_ENV},
        CLI_CLIENT_TLS_OPTS,
    };
    const cli_cmd_t cmd = {"status", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    char auth[CLI_AUTH_MAX];
    if (cli__bearer("status", token_file, auth, sizeof auth) < 0)
        return 2;
    uint8_t *resp = NULL;
    size_t len = 0;
    int crc = cli__call("status", listen, auth, FSTORE_PATH_GET_REPLICATION_STATUS,
                        (const uint8_t *)"", 0, 5000, &resp, &len, NULL);
    explicit_bzero(auth, sizeof auth);
    if (crc < 0)
        return 1;
    Fstore__V1__GetReplicationStatusResponse *r =
        fstore__v1__get_replication_status_response__unpack(NULL, len, resp);
    free(resp);
    if (r == NULL) {
        fprintf(stderr, "fstore status: %s: malformed response\n", listen);
        return 1;
    }
    bool serving = strcmp(r->health, "SERVING") == 0;
    if (json) {
        cli__print_json(json_pack(
            "{s:s, s:b, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}",
            "health", r->health, "replicated", r->replicated, "state", r->state, "stream",
            r->stream, "connected", r->connected, "applied_sequence",
            (json_int_t)r->applied_sequence, "stream_sequence", (json_int_t)r->stream_sequence,
            "first_sequence", (json_int_t)r->first_sequence, "lag_messages",
            (json_int_t)r->lag_messages, "lag_ms", (json_int_t)r->lag_ms, "target_sequence",
            (json_int_t)r->target_sequence, "resubscribes", (json_int_t)r->resubscribes, "skipped",
            (json_int_t)r->skipped, "published", (json_int_t)r->published, "pending_writes",
            (json_int_t)r->pending_writes, "last_error", r->last_error));
    } else if (!r->replicated) {
        printf("health     %s\nreplicated no (a single node)\n", r->health);
    } else {
        printf("health     %s\n"
               "state      %s\n"
               "stream     %s (%s)\n"
               "applied    %llu\n"
               "stream     %llu (first retained %llu)\n"
               "lag        %llu messages, %lld ms\n"
               "target     %llu (SERVING once applied reaches it)\n"
               "writes     %llu published, %llu retries, %llu waiting\n"
               "consumer   %llu resubscribes, %llu messages passed\n",
               r->health, r->state, r->stream, r->connected ? "connected" : "NATS unreachable",
               (unsigned long long)r->applied_sequence, (unsigned long long)r->stream_sequence,
               (unsigned long long)r->first_sequence, (unsigned long long)r->lag_messages,
               (long long)r->lag_ms, (unsigned long long)r->target_sequence,
               (unsigned long long)r->published, (unsigned long long)r->publish_retries,
               (unsigned long long)r->pending_writes, (unsigned long long)r->resubscribes,
               (unsigned long long)r->skipped);
        if (r->last_error[0] != '\0')
            printf("last error %s\n", r->last_error);
    }
    fstore__v1__get_replication_status_response__free_unpacked(r, NULL);
    return serving ? 0 : 1;
}
