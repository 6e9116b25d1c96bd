/* cli/plan.c - `fstore plan`: the safe and breaking changes between two catalogs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "catalog/catalog.h"
#include "cli/cli_int.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fstore plan --catalog NEW [--from OLD | --data-dir DIR] [--json]\n"
            "\n"
            "Shows what applying catalog NEW would change, compared with catalog OLD, or with\n"
            "the catalog applied to data directory DIR (what `fstore apply` would do), or with\n"
            "nothing when neither is given (everything is added). Every change is marked SAFE\n"
            "or BREAKING with the reason: a changed dtype or entity, a feature removed from an\n"
            "existing version, a removed view version, service or model are breaking.\n"
            "\n"
            "flags:\n"
            "  -c, --catalog NEW  the catalog to apply: file or directory (env FSTORE_CATALOG)\n"
            "  -f, --from OLD     the catalog it replaces: file or directory (env FSTORE_FROM)\n"
            "  -d, --data-dir DIR compare with the catalog applied to DIR (env FSTORE_DATA_DIR;\n"
            "                     --from wins when both are set; a missing store = empty)\n"
            "      --json         print {\"ok\":bool,\"changes\":[{kind,breaking,object,detail}],\n"
            "                     \"summary\":{changes,breaking,safe}} instead of text\n"
            "  -h, --help         this help\n"
            "\n"
            "exit status: 0 no breaking changes, 1 some changes are breaking (or a catalog is\n"
            "invalid), 2 usage error\n");
}

/* Loads one side of the plan; on failure prints its errors as `validate` does. */
static int load(const char *path, bool json, catalog_t **out)
{
    catalog_errors_t errs = {NULL, 0};
    if (catalog_load(path, out, &errs) == 0)
        return 0;
    cli__print_catalog_errors("plan", path, &errs, json);
    catalog_errors_clear(&errs);
    return 1;
}

/*
 * The plan against a data directory: the store's own planner, so a view version torn down since
 * it was applied counts the way `fstore apply` will count it. A directory without a store plans
 * against nothing. Returns: 0, or the exit status after printing why.
 */
static int plan_data_dir(const char *dir, const catalog_t *to, catalog_plan_t *plan)
{
    store_options_t o = {.dir = dir, .read_only = true};
    store_t *s = NULL;
    int rc = store_open(&o, &s);
    if (rc == -ENOENT)
        rc = catalog_plan(NULL, to, plan);
    else if (rc == 0)
        rc = store_plan_catalog(s, to, plan);
    store_close(s);
    if (rc != 0) {
        fprintf(stderr, "fstore plan: data directory %s: %s\n", dir, store_strerror(rc));
        return 1;
    }
    return 0;
}

/* Prints plan (from whatever side to `to`), clears it, and returns the exit status. */
static int print_plan(catalog_plan_t *p, const catalog_t *to, bool json)
{
    size_t n_safe = p->count - p->n_breaking;
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < p->count; i++) {
            const catalog_change_t *ch = &p->items[i];
            json_array_append_new(arr, json_pack("{s:s, s:b, s:s, s:s}", "kind",
                                                 cli__change_kind_name(ch->kind), "breaking",
                                                 ch->breaking, "object", ch->object, "detail",
                                                 ch->detail));
        }
        json_t *doc = json_pack("{s:b, s:s, s:s, s:o, s:{s:I, s:I, s:I}}", "ok", p->n_breaking == 0,
                                "project", catalog_project(to), "digest", catalog_digest(to),
                                "changes", arr, "summary", "changes", (json_int_t)p->count,
                                "breaking", (json_int_t)p->n_breaking, "safe", (json_int_t)n_safe);
        cli__print_json(doc);
    } else {
        cli__print_plan_changes(p);
        if (p->count == 0)
            printf("plan: no changes\n");
        else
            printf("plan: %zu change%s, %zu breaking, %zu safe\n", p->count,
                   p->count == 1 ? "" : "s", p->n_breaking, n_safe);
    }
    int status = p->n_breaking > 0 ? 1 : 0;
    catalog_plan_clear(p);
    return status;
}

int cli_plan(int argc, char **argv)
{
    const char *to_path = NULL, *from_path = NULL, *data_dir = NULL;
    bool json = false;
    const cli_opt_t opts[] = {
        {"catalog", 'c', CLI_STRING, &to_path, CLI_ENV | CLI_REQUIRED},
        {"from", 'f', CLI_STRING, &from_path, CLI_ENV},
        {"data-dir", 'd', CLI_STRING, &data_dir, CLI_ENV},
        {"json", 0, CLI_FLAG, &json, 0},
    };
    const cli_cmd_t cmd = {"plan", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;

    catalog_t *from = NULL, *to = NULL;
    int status = 1;
    if (from_path != NULL && load(from_path, json, &from) != 0)
        goto out;
    if (load(to_path, json, &to) != 0)
        goto out;
    catalog_plan_t plan;
    if (from_path == NULL && data_dir != NULL) {
        if (plan_data_dir(data_dir, to, &plan) != 0)
            goto out;
    } else if (catalog_plan(from, to, &plan) != 0) {
        fprintf(stderr, "fstore plan: out of memory\n");
        goto out;
    }
    status = print_plan(&plan, to, json);
out:
    catalog_unref(from);
    catalog_unref(to);
    return status;
}
