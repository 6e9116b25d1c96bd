/* server/cli_int.h - the fstore command-line subcommands, one file each (cmd_*.c). */
#ifndef SERVER_CLI_INT_H
#define SERVER_CLI_INT_H

#include <stdbool.h>

#include <jansson.h>

#include "catalog/catalog.h"
#include "storage/store.h"

/*
 * Each subcommand takes argv with argv[0] = the subcommand's name and returns the process exit
 * status: 0 success, 1 the operation failed (errors printed to stderr), 2 usage error.
 * Every subcommand answers --help with every flag it takes.
 */
int server__cmd_validate(int argc, char **argv);
int server__cmd_plan(int argc, char **argv);
int server__cmd_apply(int argc, char **argv);
int server__cmd_teardown(int argc, char **argv);
int server__cmd_ingest(int argc, char **argv);
int server__cmd_get(int argc, char **argv);
int server__cmd_snapshot(int argc, char **argv);
int server__cmd_gc(int argc, char **argv);
int server__cmd_serve(int argc, char **argv);

/* Environment fallback for a flag: FSTORE_<NAME> (upper case, '-' -> '_'), or def. */
const char *server__env_or(const char *flag_name, const char *def);

/* Catalog output shared by the subcommands (cli_catalog.c). */

/* --sync's value: "full" or "none" into *out. Returns: 0, -EINVAL for anything else. */
int server__parse_sync(const char *s, store_sync_t *out);

/* store_open() for a subcommand: on failure prints "fstore CMD: cannot open DIR: why" on stderr.
 * Returns: store_open()'s result. Ownership: *out as store_open(). */
int server__cli_open_store(const char *cmd, const store_options_t *o, store_t **out);
/* Prints doc, indented, on stdout and releases it. Accepts NULL. Ownership: takes doc. */
void server__print_json(json_t *doc);
/*
 * Prints every error of a catalog that failed to load: as `file:line:col: key: message` lines
 * (the location is left out for an error without a line, the key for one without a key)
 * plus "fstore CMD: catalog PATH is not valid (N errors)" on stderr, or with json as one document
 * {"ok":false,"errors":[{file,line,column,key,message}...]} on stdout.
 */
void server__print_catalog_errors(const char *cmd, const char *path, const catalog_errors_t *errs,
                                  bool json);
/* Returns: "added", "removed" or "changed". */
const char *server__change_kind_name(catalog_change_kind_t k);
/* Prints one line per change: mark, kind, SAFE or BREAKING, object: detail. */
void server__print_plan_changes(const catalog_plan_t *plan);

#endif /* SERVER_CLI_INT_H */
