/* server/cmd_gc.c - `fstore gc`: delete rows past their view's TTL. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "server/cli_int.h"
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

int server__cmd_gc(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = server__env_or("data-dir", NULL);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (dir == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    store_options_t o = {.dir = dir};
    store_t *s = NULL;
    int rc = server__cli_open_store("gc", &o, &s);
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
