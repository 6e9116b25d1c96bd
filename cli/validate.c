/* cli/validate.c - `fstore validate`: check a catalog, print a summary or every error. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "catalog/catalog.h"
#include "cli/cli_int.h"

static void usage(FILE *f)
{
    fprintf(
        f, "usage: fstore validate --catalog PATH [--json]\n"
           "\n"
           "Loads a catalog (a YAML file, or a directory whose *.yaml/*.yml files are merged)\n"
           "and checks all of it. Prints a one-line summary, or every mistake as\n"
           "file:line:col: key: message.\n"
           "\n"
           "flags:\n"
           "  -c, --catalog PATH  catalog file or directory (env FSTORE_CATALOG)\n"
           "      --json          print a JSON document instead: {\"ok\":true,...} or\n"
           "                      {\"ok\":false,\"errors\":[{file,line,column,key,message}]}\n"
           "  -h, --help          this help\n"
           "\n"
           "exit status: 0 the catalog is valid, 1 it is not (or cannot be read), 2 usage error\n");
}

int cli_validate(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    const cli_opt_t opts[] = {
        {"catalog", 'c', CLI_STRING, &path, CLI_ENV | CLI_REQUIRED},
        {"json", 0, CLI_FLAG, &json, 0},
    };
    const cli_cmd_t cmd = {"validate", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;

    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    int rc = catalog_load(path, &c, &errs);
    if (rc != 0) {
        cli__print_catalog_errors("validate", path, &errs, json);
        catalog_errors_clear(&errs);
        return 1;
    }

    /* Versions of one view sit next to each other (the catalog sorts them by name). */
    size_t n_views = 0, n_features = 0;
    for (size_t i = 0; i < catalog_view_count(c); i++) {
        const catalog_view_t *v = catalog_view_at(c, i);
        const catalog_view_t *prev = i > 0 ? catalog_view_at(c, i - 1) : NULL;
        if (prev == NULL || strcmp(prev->name, v->name) != 0)
            n_views++;
        n_features += v->n_features;
    }
    size_t n_on_demand = 0;
    for (size_t i = 0; i < catalog_on_demand_count(c); i++)
        n_on_demand += catalog_on_demand_at(c, i)->n_features;
    if (json) {
        cli__print_json(json_pack(
            "{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ok", 1, "project",
            catalog_project(c), "digest", catalog_digest(c), "entities",
            (json_int_t)catalog_entity_count(c), "feature_views", (json_int_t)n_views, "versions",
            (json_int_t)catalog_view_count(c), "features", (json_int_t)n_features,
            "on_demand_features", (json_int_t)n_on_demand, "services",
            (json_int_t)catalog_service_count(c), "models", (json_int_t)catalog_model_count(c)));
    } else {
        char od[64] = "";
        if (n_on_demand > 0)
            snprintf(od, sizeof od, ", %zu on-demand features", n_on_demand);
        printf("catalog ok: project %s, %zu entities, %zu feature views (%zu versions), %zu "
               "features%s, %zu services, %zu models\n",
               catalog_project(c), catalog_entity_count(c), n_views, catalog_view_count(c),
               n_features, od, catalog_service_count(c), catalog_model_count(c));
    }
    catalog_unref(c);
    return 0;
}
