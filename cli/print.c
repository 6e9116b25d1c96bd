/* cli/print.c - output shared by the subcommands: catalog errors, plans, JSON, store opening. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <grpc/grpc.h>

#include "cli/cli_int.h"
#include "clients/c/fstore_client.h"

void cli__print_json(json_t *doc)
{
    if (doc == NULL)
        return;
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(doc);
}

void cli__print_catalog_errors(const char *cmd, const char *path, const catalog_errors_t *errs,
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
        cli__print_json(json_pack("{s:b, s:o}", "ok", 0, "errors", arr));
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

const char *cli__change_kind_name(catalog_change_kind_t k)
{
    return k == CATALOG_CHANGE_ADDED     ? "added"
           : k == CATALOG_CHANGE_REMOVED ? "removed"
                                         : "changed";
}

void cli__print_plan_changes(const catalog_plan_t *plan)
{
    static const char marks[] = {'+', '-', '~'};
    for (size_t i = 0; i < plan->count; i++) {
        const catalog_change_t *ch = &plan->items[i];
        printf("%c %-8s %-8s %s: %s\n", marks[ch->kind], cli__change_kind_name(ch->kind),
               ch->breaking ? "BREAKING" : "SAFE", ch->object, ch->detail);
    }
}

int cli__open_store(const char *cmd, const store_options_t *o, bool create, store_t **out)
{
    char mdb[4096];
    struct stat st;
    snprintf(mdb, sizeof mdb, "%s/data.mdb", o->dir);
    if (!create && stat(mdb, &st) < 0 && errno == ENOENT) {
        fprintf(stderr,
                "fstore %s: %s holds no store (fstore apply --catalog FILE --data-dir %s "
                "creates one)\n",
                cmd, o->dir, o->dir);
        return -ENOENT;
    }
    int rc = store_open(o, out);
    if (rc < 0)
        fprintf(stderr, "fstore %s: cannot open %s: %s\n", cmd, o->dir, strerror(-rc));
    return rc;
}

/* A secret's first line without the line end and blanks around it, into buf. Returns: 0;
 * -EINVAL (empty, longer than cap - 1, or not printable ASCII); -errno from fopen(). */
static int read_secret(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char line[4096];
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!got)
        return -EINVAL;
    char *p = line, *end = line + strlen(line);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - p);
    int rc = n == 0 || n >= cap ? -EINVAL : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (p[i] <= ' ' || p[i] > '~')
            rc = -EINVAL;
    }
    if (rc == 0) {
        memcpy(buf, p, n);
        buf[n] = '\0';
    }
    explicit_bzero(line, sizeof line);
    return rc;
}

int cli__bearer(const char *cmd, const char *token_file, char *auth, size_t cap)
{
    auth[0] = '\0';
    if (token_file == NULL || token_file[0] == '\0')
        return 0;
    char tok[512];
    if (read_secret(token_file, tok, sizeof tok) < 0) {
        fprintf(stderr, "fstore %s: cannot read a token from %s\n", cmd, token_file);
        return -EINVAL;
    }
    snprintf(auth, cap, "Bearer %s", tok);
    explicit_bzero(tok, sizeof tok);
    return 0;
}

int cli__call(const char *cmd, const char *target, const char *auth, const char *method,
              const uint8_t *req, size_t len, int timeout_ms, uint8_t **resp, size_t *resp_len)
{
    *resp = NULL;
    *resp_len = 0;
    fstore_grpc_init();
    fstore_client_t *cl = NULL;
    fstore_status_t st = {0};
    fstore_metadata_t md = {"authorization", auth};
    int rc = fstore_client_connect(target, &cl);
    if (rc == 0)
        rc = fstore_client_call_md(cl, method, &md, auth[0] != '\0' ? 1 : 0, req, len, timeout_ms,
                                   resp, resp_len, &st);
    fstore_client_close(cl);
    grpc_shutdown();
    if (rc < 0) {
        fprintf(stderr, "fstore %s: %s: %s\n", cmd, target,
                rc == -EREMOTEIO ? st.message : strerror(-rc));
        free(*resp);
        *resp = NULL;
    }
    return rc;
}
