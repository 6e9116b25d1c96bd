/* server/cli_catalog.c - catalog output shared by the CLI subcommands: errors, plans, JSON. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cli_int.h"

void server__print_json(json_t *doc)
{
    if (doc == NULL)
        return;
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(doc);
}

void server__print_catalog_errors(const char *cmd, const char *path, const catalog_errors_t *errs,
                                  bool json)
{
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < errs->count; i++) {
            const catalog_error_t *e = &errs->items[i];
            json_array_append_new(arr, json_pack("{s:s, s:i, s:i, s:s, s:s}", "file", e->file,
                                                 "line", e->line, "column", e->column, "key",
                                                 e->key, "message", e->message));
        }
        server__print_json(json_pack("{s:b, s:o}", "ok", 0, "errors", arr));
        return;
    }
    for (size_t i = 0; i < errs->count; i++) {
        const catalog_error_t *e = &errs->items[i];
        if (e->line > 0)
            fprintf(stderr, "%s:%d:%d: ", e->file, e->line, e->column);
        else if (e->file[0] != '\0')
            fprintf(stderr, "%s: ", e->file);
        fprintf(stderr, "%s%s%s\n", e->key, e->key[0] != '\0' ? ": " : "", e->message);
    }
    fprintf(stderr, "fstore %s: catalog %s is not valid (%zu error%s)\n", cmd, path, errs->count,
            errs->count == 1 ? "" : "s");
}

const char *server__change_kind_name(catalog_change_kind_t k)
{
    return k == CATALOG_CHANGE_ADDED     ? "added"
           : k == CATALOG_CHANGE_REMOVED ? "removed"
                                         : "changed";
}

void server__print_plan_changes(const catalog_plan_t *plan)
{
    static const char marks[] = {'+', '-', '~'};
    for (size_t i = 0; i < plan->count; i++) {
        const catalog_change_t *ch = &plan->items[i];
        printf("%c %-8s %-8s %s: %s\n", marks[ch->kind], server__change_kind_name(ch->kind),
               ch->breaking ? "BREAKING" : "SAFE", ch->object, ch->detail);
    }
}

int server__parse_sync(const char *s, store_sync_t *out)
{
    if (strcmp(s, "full") == 0)
        *out = STORE_SYNC_FULL;
    else if (strcmp(s, "none") == 0)
        *out = STORE_SYNC_NONE;
    else
        return -EINVAL;
    return 0;
}

int server__cli_open_store(const char *cmd, const store_options_t *o, store_t **out)
{
    int rc = store_open(o, out);
    if (rc < 0)
        fprintf(stderr, "fstore %s: cannot open %s: %s\n", cmd, o->dir, strerror(-rc));
    return rc;
}
