/* bench/loadgen/bench_int.h - fstore-bench's subcommands, one file each. */
#ifndef BENCH_LOADGEN_BENCH_INT_H
#define BENCH_LOADGEN_BENCH_INT_H

/*
 * Each takes argv with argv[0] = the subcommand's name and returns the process exit status:
 * 0 success, 1 failure (or, for run --check, a failed check), 2 usage error.
 */
int bench__cmd_run(int argc, char **argv);
int bench__cmd_gen(int argc, char **argv);

#endif /* BENCH_LOADGEN_BENCH_INT_H */
