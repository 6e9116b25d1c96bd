/* cli/digest.c - `fstore digest`: a content hash per view version, to compare replicas. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_int.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: fstore digest --data-dir DIR [--json]\n"
               "\n"
               "Prints, per view version with data, a 64-bit hash of its content (every row's\n"
               "entity key, event time and values by feature name, deleted rows as tombstones\n"
               "with their event time), its rows and its tombstones, then the replication log\n"
               "position. Two replicas that applied the same prefix of the log print the same\n"
               "lines, whatever their write times or page layout. Safe while a server is\n"
               "serving DIR (a read-only, consistent walk per view).\n"
               "\n"
               "flags:\n"
               "  -d, --data-dir DIR   data directory (env FSTORE_DATA_DIR)\n"
               "      --json           one JSON document\n"
               "  -h, --help           this help\n"
               "\n"
               "exit status: 0 printed, 1 failed, 2 usage error\n");
}

typedef struct out {
    bool json;
    json_t *views;
} out_t;

static int print_view(void *arg, const catalog_view_t *v, uint64_t hash, size_t rows,
                      size_t tombstones)
{
    out_t *o = arg;
    char h[17];
    snprintf(h, sizeof h, "%016llx", (unsigned long long)hash);
    if (o->json)
        json_array_append_new(o->views,
                              json_pack("{s:s, s:i, s:s, s:I, s:I}", "view", v->name, "version",
                                        (int)v->version, "digest", h, "rows", (json_int_t)rows,
                                        "tombstones", (json_int_t)tombstones));
    else
        printf("%s@v%u %s rows=%zu tombstones=%zu\n", v->name, (unsigned)v->version, h, rows,
               tombstones);
    return 0;
}

int cli_digest(int argc, char **argv)
{
    const char *dir = NULL;
    out_t o = {0};
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &dir, CLI_ENV | CLI_REQUIRED},
        {"json", 0, CLI_FLAG, &o.json, 0},
    };
    const cli_cmd_t cmd = {"digest", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    store_options_t so = {.dir = dir, .read_only = true};
    store_t *s = NULL;
    if (cli__open_store("digest", &so, false, &s) < 0)
        return 1;
    o.views = json_array();
    uint64_t pos = 0;
    int rc = store_digest(s, print_view, &o);
    if (rc == 0)
        rc = store_last_position(s, &pos);
    store_close(s);
    if (rc < 0) {
        json_decref(o.views);
        fprintf(stderr, "fstore digest: %s: %s\n", dir, store_strerror(rc));
        return 1;
    }
    if (o.json)
        cli__print_json(json_pack("{s:o, s:I}", "views", o.views, "position", (json_int_t)pos));
    else {
        json_decref(o.views);
        printf("position %llu\n", (unsigned long long)pos);
    }
    return 0;
}
