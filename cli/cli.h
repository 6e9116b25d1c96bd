/* cli/cli.h - the fstore command line: one function per subcommand, one file each. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

/*
 * Each subcommand takes argv with argv[0] = the subcommand's name and returns the process exit
 * status: 0 success, 1 the operation failed (errors printed to stderr), 2 usage error. Every
 * subcommand answers --help with every flag it takes; flags marked so in its help can also come
 * from the environment as FSTORE_<FLAG> ('-' as '_'), and a flag on the command line wins.
 */

int cli_validate(int argc, char **argv);    /* validate.c: check a catalog */
int cli_plan(int argc, char **argv);        /* plan.c: safe and breaking changes */
int cli_apply(int argc, char **argv);       /* apply.c: apply a catalog's safe changes */
int cli_teardown(int argc, char **argv);    /* teardown.c: drop a view version or a store */
int cli_ingest(int argc, char **argv);      /* ingest.c: bulk-load CSV or JSON Lines */
int cli_get(int argc, char **argv);         /* get.c: read features through the serving core */
int cli_history(int argc, char **argv);     /* history.c: point-in-time join (training sets) */
int cli_materialize(int argc, char **argv); /* history.c: history -> online rows */
int cli_cdc(int argc, char **argv);         /* cdc.c: history -> PostgreSQL */
int cli_snapshot(int argc, char **argv);    /* snapshot.c: a compacted copy of a data directory */
int cli_gc(int argc, char **argv);          /* gc.c: delete rows past their TTL */
int cli_serve(int argc, char **argv);       /* serve.c: run the server */
int cli_status(int argc, char **argv);      /* status.c: a running node's replica and health */
int cli_digest(int argc, char **argv);      /* digest.c: content hashes to compare replicas */
int cli_verify(int argc, char **argv);      /* verify.c: every record against its checksum */

#endif /* CLI_CLI_H */
