/* server/cmd_apply.c - `fstore apply`: apply a catalog's safe changes to a data directory. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "server/cli_int.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fstore apply --catalog PATH --data-dir DIR [--sync full|none]\n"
            "\n"
            "Plans catalog PATH against the catalog last applied to DIR, prints the plan, and\n"
            "applies it when every change is safe: databases for new online view versions, new\n"
            "features appended to slot tables, and the catalog itself, in one transaction.\n"
            "Breaking changes (a changed dtype or entity, a removed feature or view version) are\n"
            "refused with the reason; tear the view version down first to redefine it.\n"
            "\n"
            "flags:\n"
            "  -c, --catalog PATH   catalog file or directory (env FSTORE_CATALOG)\n"
            "  -d, --data-dir DIR   data directory, created if missing (env FSTORE_DATA_DIR)\n"
            "      --sync MODE      full (fsync, the default) or none (env FSTORE_SYNC)\n"
            "  -h, --help           this help\n"
            "\n"
            "exit status: 0 applied (or nothing to do), 1 refused or failed, 2 usage error\n");
}

int server__cmd_apply(int argc, char **argv)
{
    static const struct option opts[] = {
        {"catalog", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"sync", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = server__env_or("catalog", NULL);
    const char *dir = server__env_or("data-dir", NULL);
    const char *sync = server__env_or("sync", "full");
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:d:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 's':
            sync = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    store_sync_t sync_mode = STORE_SYNC_FULL;
    if (path == NULL || dir == NULL || optind != argc || server__parse_sync(sync, &sync_mode) < 0) {
        usage(stderr);
        return 2;
    }

    catalog_t *c = NULL;
    store_t *s = NULL;
    catalog_plan_t plan = {0};
    catalog_errors_t errs = {0};
    int status = 1;
    if (catalog_load(path, &c, &errs) != 0) {
        server__print_catalog_errors("apply", path, &errs, false);
        goto out;
    }
    store_options_t o = {.dir = dir, .sync = sync_mode};
    int rc = server__cli_open_store("apply", &o, &s);
    if (rc < 0) {
        goto out;
    }
    rc = store_apply_catalog(s, c, &plan);
    server__print_plan_changes(&plan);
    if (rc == -EPERM) {
        fprintf(stderr,
                "fstore apply: refused: %zu breaking change%s (nothing applied); tear the view "
                "version down or add a new version instead\n",
                plan.n_breaking, plan.n_breaking == 1 ? "" : "s");
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "fstore apply: %s\n", strerror(-rc));
        goto out;
    }
    if (plan.count == 0)
        printf("apply: no changes (catalog %s)\n", catalog_digest(c));
    else
        printf("apply: applied %zu change%s to %s (catalog %s)\n", plan.count,
               plan.count == 1 ? "" : "s", dir, catalog_digest(c));
    status = 0;
out:
    catalog_plan_clear(&plan);
    catalog_errors_clear(&errs);
    store_close(s);
    catalog_unref(c);
    return status;
}
