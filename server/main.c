/* server/main.c - the fstore binary: dispatches to one subcommand per file (cmd_*.c). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cli_int.h"

#ifndef FSTORE_VERSION
#define FSTORE_VERSION "0.0.0"
#endif

/*
 * Subcommands land one issue at a time; a weak reference lets the binary link while a module's
 * commands are still being written, and says so instead of crashing.
 */
#pragma weak server__cmd_validate
#pragma weak server__cmd_plan
#pragma weak server__cmd_apply
#pragma weak server__cmd_teardown
#pragma weak server__cmd_ingest
#pragma weak server__cmd_get
#pragma weak server__cmd_snapshot
#pragma weak server__cmd_gc
#pragma weak server__cmd_serve

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"validate", server__cmd_validate, "check a catalog and print a summary or every error"},
    {"plan", server__cmd_plan, "show safe and breaking changes between catalogs or a data dir"},
    {"apply", server__cmd_apply, "apply a catalog's safe changes to a data directory"},
    {"teardown", server__cmd_teardown, "drop a view version, or a whole store"},
    {"ingest", server__cmd_ingest, "load CSV or JSON Lines rows into a view"},
    {"get", server__cmd_get, "read online features from a data directory"},
    {"snapshot", server__cmd_snapshot, "write a compacted copy of a data directory"},
    {"gc", server__cmd_gc, "delete rows past their view's TTL"},
    {"serve", server__cmd_serve, "run the gRPC server"},
};

static void usage(FILE *f)
{
    fprintf(f, "fstore %s - an online feature store\n\n", FSTORE_VERSION);
    fprintf(f, "usage: fstore COMMAND [FLAGS]   (fstore COMMAND --help for its flags)\n\n");
    fprintf(f, "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (commands[i].run != NULL)
            fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(
        f, "\nFlags from the environment, as FSTORE_<FLAG> (e.g. FSTORE_DATA_DIR=/var/lib/fstore;\n"
           "a flag on the command line wins): every flag of serve; --data-dir, --catalog and\n"
           "--sync of the other commands, plan's --from and snapshot's --out.\n");
}

const char *server__env_or(const char *flag_name, const char *def)
{
    char var[96] = "FSTORE_";
    size_t n = strlen(var);
    for (const char *p = flag_name; *p != '\0' && n + 1 < sizeof var; p++)
        var[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    var[n] = '\0';
    const char *v = getenv(var);
    return v != NULL && v[0] != '\0' ? v : def;
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
        if (strcmp(commands[i].name, name) != 0)
            continue;
        if (commands[i].run == NULL) {
            fprintf(stderr, "fstore: '%s' is not built into this binary\n", name);
            return 2;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "fstore: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}
