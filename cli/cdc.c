/* cli/cdc.c - `fstore cdc`: a data directory's history, as it changes, into PostgreSQL. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdc/cdc.h"
#include "cli/cli_int.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fstore cdc --data-dir DIR --to POSTGRES_URL [--plan] [--once]\n"
            "                  [--poll-ms N] [--batch-rows N] [--source NAME]\n"
            "\n"
            "Change data capture: follows the history of DIR (a node with --history, while it\n"
            "serves) into PostgreSQL, one table per view version with history (<view>_v<N>:\n"
            "join keys, event_timestamp, deleted, the features, the feed position), creating\n"
            "tables and adding feature columns as `fstore apply` would (breaking differences\n"
            "are refused). The position reached is kept in fstore_cdc_positions, written with\n"
            "the rows in one transaction: a follower stopped at any point resumes there, with\n"
            "no row missing or doubled.\n"
            "\n"
            "flags:\n"
            "  -d, --data-dir DIR     data directory (env FSTORE_DATA_DIR)\n"
            "      --to URL           libpq connection string, e.g.\n"
            "                         postgresql://fstore@127.0.0.1:5432/features\n"
            "                         (env FSTORE_TO; a password from PGPASSWORD or ~/.pgpass)\n"
            "      --plan             print the table plan and exit\n"
            "      --once             copy what is there, then exit\n"
            "      --poll-ms N        when caught up, look again after N ms (default 1000)\n"
            "      --batch-rows N     changes per PostgreSQL transaction (default %u)\n"
            "      --source NAME      this follower's name in fstore_cdc_positions (default\n"
            "                         fstore): followers of different nodes keep apart\n"
            "  -h, --help             this help\n"
            "\n"
            "exit status: 0 done (--plan, --once, or stopped by SIGTERM/SIGINT), 1 failed,\n"
            "2 usage error\n",
            CDC_DEFAULT_BATCH_ROWS);
}

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (!stopping && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int cli_cdc(int argc, char **argv)
{
    cdc_options_t o = {.batch_rows = CDC_DEFAULT_BATCH_ROWS};
    bool plan_only = false, once = false;
    unsigned poll_ms = 1000;
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &o.data_dir, CLI_ENV | CLI_REQUIRED},
        {"to", 0, CLI_STRING, &o.conninfo, CLI_ENV | CLI_REQUIRED},
        {"plan", 0, CLI_FLAG, &plan_only, 0},
        {"once", 0, CLI_FLAG, &once, 0},
        {"poll-ms", 0, CLI_UNSIGNED, &poll_ms, CLI_ENV, 10, 3600000},
        {"batch-rows", 0, CLI_SIZE, &o.batch_rows, CLI_ENV, 1, 10000000},
        {"source", 0, CLI_STRING, &o.source, CLI_ENV},
    };
    const cli_cmd_t cmd = {"cdc", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    char err[512];
    cdc_t *c = NULL;
    int status = 1;
    uint64_t total = 0;
    while (!stopping) {
        if (c == NULL) {
            int rc = cdc_open(&o, &c, err, sizeof err);
            if (rc == 0)
                rc = cdc_plan(c, !plan_only, stdout, err, sizeof err);
            if (rc < 0 || plan_only) {
                if (rc < 0)
                    fprintf(stderr, "fstore cdc: %s\n", err);
                /* PostgreSQL away (or still holding the lock of our own dead connection, until
                 * it notices): a follower keeps trying; anything else is for a person. */
                if ((rc == -ECONNREFUSED || rc == -EBUSY || rc == -EIO) && !once && !plan_only) {
                    cdc_close(c);
                    c = NULL;
                    sleep_ms(poll_ms);
                    continue;
                }
                status = rc < 0 ? 1 : 0;
                goto out;
            }
            uint64_t pos;
            uint32_t idx;
            cdc_position(c, &pos, &idx);
            printf("cdc: following %s from position %" PRIu64 ".%" PRIu32 "\n", o.data_dir, pos,
                   idx);
            fflush(stdout);
        }
        size_t rows = 0;
        bool reopen = false;
        int rc = cdc_step(c, &rows, &reopen, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "fstore cdc: %s\n", err);
            /* PostgreSQL refusing the data or the table: trying again would not help. */
            if (once || rc != -EIO)
                goto out;
            cdc_close(c); /* reconnects, and reads the position again */
            c = NULL;
            sleep_ms(poll_ms);
            continue;
        }
        total += rows;
        if (rows > 0) {
            uint64_t pos;
            uint32_t idx;
            cdc_position(c, &pos, &idx);
            printf("cdc: %zu rows, position %" PRIu64 ".%" PRIu32 "\n", rows, pos, idx);
            fflush(stdout);
        }
        if (reopen) {
            /* A newer catalog: open again to follow it (new tables planned and created). */
            cdc_close(c);
            c = NULL;
            continue;
        }
        if (rows == 0) {
            if (once)
                break;
            sleep_ms(poll_ms);
        }
    }
    printf("cdc: done, %" PRIu64 " rows\n", total);
    status = 0;
out:
    cdc_close(c);
    return status;
}
