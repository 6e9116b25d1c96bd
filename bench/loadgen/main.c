/* bench/loadgen/main.c - fstore-bench: a gRPC load generator and the benchmark's data tools. */
#include <stdio.h>
#include <string.h>

#include "bench/loadgen/bench_int.h"

static void usage(FILE *f)
{
    fprintf(f,
            "fstore-bench - load generator for fstore (gRPC C core client)\n\n"
            "usage: fstore-bench COMMAND [FLAGS]   (fstore-bench COMMAND --help)\n\n"
            "commands:\n"
            "  run   send load to one unary gRPC method, report throughput and latency\n"
            "  gen   write the benchmark dataset (csv for fstore ingest, redis for redis-cli)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "run") == 0)
        return bench__cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "gen") == 0)
        return bench__cmd_gen(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "fstore-bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
