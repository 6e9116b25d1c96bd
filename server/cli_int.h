/* server/cli_int.h - the fstore command-line subcommands, one file each (cmd_*.c). */
#ifndef SERVER_CLI_INT_H
#define SERVER_CLI_INT_H

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

#endif /* SERVER_CLI_INT_H */
