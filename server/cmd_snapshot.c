/* server/cmd_snapshot.c - `fstore snapshot`: a compacted copy of a data directory. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "server/cli_int.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: fstore snapshot --data-dir DIR --out DIR2\n"
               "\n"
               "Writes a compacted, consistent copy of data directory DIR into DIR2 (created;\n"
               "must be empty). DIR2 is a data directory of its own. Safe while a server is\n"
               "reading and writing DIR.\n"
               "\n"
               "flags:\n"
               "  -d, --data-dir DIR   data directory (env FSTORE_DATA_DIR)\n"
               "  -o, --out DIR2       where the copy goes (env FSTORE_OUT)\n"
               "  -h, --help           this help\n"
               "\n"
               "exit status: 0 written, 1 failed, 2 usage error\n");
}

int server__cmd_snapshot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = server__env_or("data-dir", NULL);
    const char *out = server__env_or("out", NULL);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (dir == NULL || out == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    store_options_t o = {.dir = dir, .read_only = true};
    store_t *s = NULL;
    int rc = server__cli_open_store("snapshot", &o, &s);
    if (rc < 0) {
        return 1;
    }
    rc = store_snapshot(s, out);
    store_stats_t st = {0};
    store_stat(s, &st);
    store_close(s);
    if (rc < 0) {
        fprintf(stderr, "fstore snapshot: %s: %s\n", out,
                rc == -EEXIST ? "not empty" : strerror(-rc));
        return 1;
    }
    printf("snapshot: %s -> %s (%zu view databases, last position %llu)\n", dir, out, st.n_views,
           (unsigned long long)st.last_position);
    return 0;
}
