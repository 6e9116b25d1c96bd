/* cli/snapshot.c - `fstore snapshot`: a compacted copy of a data directory. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_int.h"
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

int cli_snapshot(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &dir, CLI_ENV | CLI_REQUIRED},
        {"out", 'o', CLI_STRING, &out, CLI_ENV | CLI_REQUIRED},
    };
    const cli_cmd_t cmd = {"snapshot", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    store_options_t o = {.dir = dir, .read_only = true};
    store_t *s = NULL;
    int rc = cli__open_store("snapshot", &o, false, &s);
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
