/* cli/gc.c - `fstore gc`: delete rows past their view's TTL. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_int.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: fstore gc --data-dir DIR\n"
               "\n"
               "Deletes every row whose event time is older than its view's TTL (views without a\n"
               "TTL keep everything), in small transactions so a running server's writes are not\n"
               "held up.\n"
               "\n"
               "flags:\n"
               "  -d, --data-dir DIR   data directory (env FSTORE_DATA_DIR)\n"
               "  -h, --help           this help\n"
               "\n"
               "exit status: 0 done, 1 failed, 2 usage error\n");
}

int cli_gc(int argc, char **argv)
{
    const char *dir = NULL;
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &dir, CLI_ENV | CLI_REQUIRED},
    };
    const cli_cmd_t cmd = {"gc", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    store_options_t o = {.dir = dir};
    store_t *s = NULL;
    int rc = cli__open_store("gc", &o, false, &s);
    if (rc < 0) {
        return 1;
    }
    size_t deleted = 0;
    rc = store_gc(s, store_now_us(), &deleted);
    store_close(s);
    if (rc < 0) {
        fprintf(stderr, "fstore gc: %s\n", strerror(-rc));
        return 1;
    }
    printf("gc: deleted %zu expired row%s\n", deleted, deleted == 1 ? "" : "s");
    return 0;
}
