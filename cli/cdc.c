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
#include "core/core.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fstore cdc --data-dir DIR --to POSTGRES_URL [--plan] [--once]\n"
            "                  [--poll-ms N] [--batch-rows N] [--source NAME]\n"
            "       fstore cdc --replication URLS --data-dir DIR [--catalog PATH] --to URL ...\n"
            "\n"
            "Change data capture: follows the history of DIR (a node with --history, while it\n"
            "serves) into PostgreSQL, one table per view version with history (<view>_v<N>:\n"
            "join keys, event_timestamp, deleted, the features, the feed position), creating\n"
            "tables and adding feature columns as `fstore apply` would (breaking differences\n"
            "are refused). The position reached is kept in fstore_cdc_positions, written with\n"
            "the rows in one transaction: a follower stopped at any point resumes there, with\n"
            "no row missing or doubled.\n"
            "With --replication, the follower reads the JetStream stream itself: it keeps its\n"
            "own history replica of the log in DIR (a directory of its own, replayed from the\n"
            "stream's start the first time; --catalog names the project then) and follows that,\n"
            "so it needs no serving node; positions are the stream's sequences.\n"
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
            "      --catalog PATH     with --replication, a first start: the catalog whose\n"
            "                         project names the stream\n"
            "      --catch-up-ms N    with --replication and --once: how long to wait for the\n"
            "                         replica to reach the stream's end (default 60000)\n"
            "  -h, --help             this help\n"
            "\n"
            "exit status: 0 done (--plan, --once, or stopped by SIGTERM/SIGINT), 1 failed,\n"
            "2 usage error\n",
            CDC_DEFAULT_BATCH_ROWS);
    cli__repl_usage(f);
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

/* --replication: this process's replica of the log caught up with the stream as it was when
 * it started, within wait_ms. Returns: 0, -ETIMEDOUT (with the status printed). */
static int wait_caught_up(core_t *core, unsigned wait_ms)
{
    for (unsigned waited = 0;; waited += 50) {
        repl_status_t st;
        repl_status(core_repl(core), &st);
        if (st.applied >= st.target && st.target > 0)
            return 0;
        if (stopping || waited >= wait_ms) {
            fprintf(stderr,
                    "fstore cdc: the replica did not catch up with %s in %u ms (applied %llu of "
                    "%llu%s%s)\n",
                    st.stream, wait_ms, (unsigned long long)st.applied,
                    (unsigned long long)st.target, st.last_error[0] ? "; " : "", st.last_error);
            return -ETIMEDOUT;
        }
        sleep_ms(50);
    }
}

int cli_cdc(int argc, char **argv)
{
    cdc_options_t o = {.batch_rows = CDC_DEFAULT_BATCH_ROWS};
    bool plan_only = false, once = false;
    unsigned poll_ms = 1000, catch_up_ms = 60000;
    const char *catalog_path = NULL;
    repl_options_t ro;
    repl_options_init(&ro);
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &o.data_dir, CLI_ENV | CLI_REQUIRED},
        {"to", 0, CLI_STRING, &o.conninfo, CLI_ENV | CLI_REQUIRED},
        {"plan", 0, CLI_FLAG, &plan_only, 0},
        {"once", 0, CLI_FLAG, &once, 0},
        {"poll-ms", 0, CLI_UNSIGNED, &poll_ms, CLI_ENV, 10, 3600000},
        {"batch-rows", 0, CLI_SIZE, &o.batch_rows, CLI_ENV, 1, 10000000},
        {"source", 0, CLI_STRING, &o.source, CLI_ENV},
        {"catalog", 'c', CLI_STRING, &catalog_path, 0},
        {"catch-up-ms", 0, CLI_UNSIGNED, &catch_up_ms, 0, 0, 86400000},
        CLI_REPL_OPTS(ro),
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
    core_t *core = NULL;
    int status = 1;
    uint64_t total = 0;
    if (ro.urls != NULL && ro.urls[0] != '\0') {
        /* Its own replica of the log, with history: the stream is the change feed. */
        core_options_t co;
        core_options_init(&co);
        co.data_dir = o.data_dir;
        co.catalog_path = catalog_path;
        co.replication = &ro;
        co.history = STORE_HISTORY_ON;
        co.max_workers = 1;
        int rc = core_open(&co, &core);
        if (rc < 0) {
            fprintf(stderr, "fstore cdc: cannot follow the log in %s: %s (see the log above)\n",
                    o.data_dir, strerror(-rc));
            goto out;
        }
        o.store = core_store(core);
        if (once && wait_caught_up(core, catch_up_ms) < 0)
            goto out;
    }
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
    core_close(core);
    if (core != NULL)
        repl_library_close();
    return status;
}
