/* cli/apply.c - `fstore apply`: apply a catalog's safe changes to a data directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "cli/cli_int.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fstore apply --catalog PATH --data-dir DIR [--sync full|none] [--history]\n"
            "       fstore apply --catalog PATH --replication URLS [replication flags]\n"
            "\n"
            "Plans catalog PATH against the catalog last applied to DIR, prints the plan, and\n"
            "applies it when every change is safe: databases for new online view versions, new\n"
            "features appended to slot tables, and the catalog itself, in one transaction.\n"
            "Breaking changes (a changed dtype or entity, a removed feature or view version) are\n"
            "refused with the reason; tear the view version down first to redefine it.\n"
            "With --replication the catalog is planned against the replication log's and\n"
            "published to it: every node applies it in its place in the log (a write to a new\n"
            "view version is never applied before the version exists). A catalog published\n"
            "meanwhile by someone else makes it fail: plan again.\n"
            "\n"
            "flags:\n"
            "  -c, --catalog PATH   catalog file or directory (env FSTORE_CATALOG)\n"
            "  -d, --data-dir DIR   data directory, created if missing (env FSTORE_DATA_DIR)\n"
            "      --sync MODE      full (fsync, the default) or none (env FSTORE_SYNC)\n"
            "      --history        DIR keeps the history of views with 'offline:' from now on\n"
            "                       (what serve --history chooses; later tools follow it)\n"
            "  -h, --help           this help\n"
            "\n"
            "\n");
    cli__repl_usage(f);
    fprintf(f, "\nexit status: 0 applied (or nothing to do), 1 refused or failed, 2 usage error\n");
}

/* --replication: plan against the log's catalog, publish. Returns: the exit status. */
static int apply_to_log(const repl_options_t *ro, catalog_t *c)
{
    char err[512] = "";
    repl_t *r = NULL;
    catalog_t *cur = NULL;
    catalog_plan_t plan = {0};
    uint64_t cur_seq = 0, seq = 0;
    int status = 1;
    int rc = repl_open(ro, catalog_project(c), NULL, &r, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "fstore apply: %s\n", err);
        goto out;
    }
    rc = repl_log_catalog(r, &cur, &cur_seq, err, sizeof err);
    if (rc < 0 && rc != -ENOENT) {
        fprintf(stderr, "fstore apply: %s\n", err);
        goto out;
    }
    rc = catalog_plan(cur, c, &plan);
    if (rc < 0) {
        fprintf(stderr, "fstore apply: %s\n", strerror(-rc));
        goto out;
    }
    cli__print_plan_changes(&plan);
    if (plan.n_breaking > 0) {
        fprintf(stderr,
                "fstore apply: refused: %zu breaking change%s against the log's catalog "
                "(nothing published)\n",
                plan.n_breaking, plan.n_breaking == 1 ? "" : "s");
        goto out;
    }
    if (cur != NULL && plan.count == 0) {
        printf("apply: no changes (catalog %s, sequence %llu in %s)\n", catalog_digest(c),
               (unsigned long long)cur_seq, repl_stream(r));
        status = 0;
        goto out;
    }
    rc = repl_publish_catalog(r, c, cur_seq, &seq, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "fstore apply: %s\n", err[0] ? err : strerror(-rc));
        goto out;
    }
    printf("apply: published %zu change%s to %s at sequence %llu (catalog %s)\n", plan.count,
           plan.count == 1 ? "" : "s", repl_stream(r), (unsigned long long)seq, catalog_digest(c));
    status = 0;
out:
    catalog_plan_clear(&plan);
    catalog_unref(cur);
    repl_close(r);
    repl_library_close();
    return status;
}

int cli_apply(int argc, char **argv)
{
    const char *path = NULL, *dir = NULL;
    store_sync_t sync_mode = STORE_SYNC_FULL;
    bool history = false;
    repl_options_t ro;
    repl_options_init(&ro);
    const cli_opt_t opts[] = {
        {"catalog", 'c', CLI_STRING, &path, CLI_ENV | CLI_REQUIRED},
        {"data-dir", 'd', CLI_STRING, &dir, CLI_ENV},
        {"sync", 0, CLI_SYNC, &sync_mode, CLI_ENV},
        {"history", 0, CLI_FLAG, &history, 0},
        CLI_REPL_OPTS(ro),
    };
    const cli_cmd_t cmd = {"apply", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    bool replicated = ro.urls != NULL && ro.urls[0] != '\0';
    if (replicated == (dir != NULL)) {
        fprintf(stderr, "fstore apply: give --data-dir (a local store) or --replication (the "
                        "log every node applies), one of them\n\n");
        usage(stderr);
        return 2;
    }

    catalog_t *c = NULL;
    store_t *s = NULL;
    catalog_plan_t plan = {0};
    catalog_errors_t errs = {0};
    int status = 1;
    if (catalog_load(path, &c, &errs) != 0) {
        cli__print_catalog_errors("apply", path, &errs, false);
        goto out;
    }
    if (replicated) {
        status = apply_to_log(&ro, c);
        goto out;
    }
    store_options_t o = {
        .dir = dir, .sync = sync_mode, .history = history ? STORE_HISTORY_ON : STORE_HISTORY_AUTO};
    int rc = cli__open_store("apply", &o, true, &s);
    if (rc < 0 || cli__refuse_replica("apply", s, dir,
                                      "apply the catalog through the log (fstore apply "
                                      "--replication URL)") < 0) {
        goto out;
    }
    rc = store_apply_catalog(s, c, &plan);
    cli__print_plan_changes(&plan);
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
