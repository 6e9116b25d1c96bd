/* cli/main.c - the fstore binary: dispatches to one subcommand per file (cli/<name>.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#ifndef FSTORE_VERSION
#define FSTORE_VERSION "0.0.0"
#endif

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"validate", cli_validate, "check a catalog and print a summary or every error"},
    {"plan", cli_plan, "show safe and breaking changes between catalogs or a data dir"},
    {"apply", cli_apply, "apply a catalog's safe changes to a data directory"},
    {"teardown", cli_teardown, "drop a view version, or a whole store"},
    {"ingest", cli_ingest, "load CSV or JSON Lines rows into a view"},
    {"get", cli_get, "read online features from a data directory"},
    {"history", cli_history, "point-in-time join of an entity table (training sets)"},
    {"materialize", cli_materialize, "load history rows of a time range into the online store"},
    {"cdc", cli_cdc, "follow a data directory's history into PostgreSQL tables"},
    {"snapshot", cli_snapshot, "write a compacted copy of a data directory"},
    {"gc", cli_gc, "delete rows past their view's TTL"},
    {"serve", cli_serve, "run the gRPC server"},
    {"status", cli_status, "a running server's health and replica (lag, state)"},
    {"digest", cli_digest, "content hashes per view version, to compare replicas"},
    {"verify", cli_verify, "check every record of a data directory against its checksum"},
};

static void usage(FILE *f)
{
    fprintf(f, "fstore %s - an online feature store\n\n", FSTORE_VERSION);
    fprintf(f, "usage: fstore COMMAND [FLAGS]   (fstore COMMAND --help for its flags)\n\n");
    fprintf(f, "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(
        f, "\nFlags from the environment, as FSTORE_<FLAG> (e.g. FSTORE_DATA_DIR=/var/lib/fstore;\n"
           "a flag on the command line wins): every flag of serve; --data-dir, --catalog and\n"
           "--sync of the other commands, plan's --from and snapshot's --out.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("fstore %s\n", FSTORE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "fstore: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}
