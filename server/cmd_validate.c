/* server/cmd_validate.c - `fstore validate`: check a catalog, print a summary or every error. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "catalog/catalog.h"
#include "server/cli_int.h"

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

static void print_errors_text(const catalog_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        const catalog_error_t *e = &errs->items[i];
        if (e->line > 0)
            fprintf(stderr, "%s:%d:%d: ", e->file, e->line, e->column);
        else if (e->file[0] != '\0')
            fprintf(stderr, "%s: ", e->file);
        if (e->key[0] != '\0')
            fprintf(stderr, "%s: ", e->key);
        fprintf(stderr, "%s\n", e->message);
    }
}

static json_t *errors_json(const catalog_errors_t *errs)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < errs->count; i++) {
        const catalog_error_t *e = &errs->items[i];
        json_array_append_new(arr, json_pack("{s:s, s:i, s:i, s:s, s:s}", "file", e->file, "line",
                                             e->line, "column", e->column, "key", e->key, "message",
                                             e->message));
    }
    return arr;
}

static void print_json(json_t *doc)
{
    if (doc == NULL)
        return;
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(doc);
}

int server__cmd_validate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"catalog", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = server__env_or("catalog", NULL);
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || path == NULL) {
        fprintf(stderr, "fstore validate: %s\n\n",
                path == NULL ? "--catalog is required" : "unexpected argument");
        usage(stderr);
        return 2;
    }

    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    int rc = catalog_load(path, &c, &errs);
    if (rc != 0) {
        if (json) {
            print_json(json_pack("{s:b, s:o}", "ok", 0, "errors", errors_json(&errs)));
        } else {
            print_errors_text(&errs);
            fprintf(stderr, "catalog %s: %zu error%s\n", path, errs.count,
                    errs.count == 1 ? "" : "s");
        }
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
    if (json) {
        print_json(json_pack(
            "{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "ok", 1, "project", catalog_project(c),
            "digest", catalog_digest(c), "entities", (json_int_t)catalog_entity_count(c),
            "feature_views", (json_int_t)n_views, "versions", (json_int_t)catalog_view_count(c),
            "features", (json_int_t)n_features, "services", (json_int_t)catalog_service_count(c),
            "models", (json_int_t)catalog_model_count(c)));
    } else {
        printf("catalog ok: project %s, %zu entities, %zu feature views (%zu versions), %zu "
               "features, %zu services, %zu models\n",
               catalog_project(c), catalog_entity_count(c), n_views, catalog_view_count(c),
               n_features, catalog_service_count(c), catalog_model_count(c));
    }
    catalog_unref(c);
    return 0;
}
