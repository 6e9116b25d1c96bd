/* cli/print.c - output shared by the subcommands: catalog errors, plans, JSON, store opening. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#include <grpc/grpc.h>

#include "cli/cli_int.h"
#include "clients/c/fstore_client.h"
#include "core/core.h"

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
        fprintf(stderr, "fstore %s: cannot open %s: %s\n", cmd, o->dir, store_strerror(rc));
    return rc;
}

int cli__refuse_replica(const char *cmd, store_t *s, const char *dir, const char *how)
{
    uint64_t pos = 0;
    int rc = store_last_position(s, &pos);
    if (rc < 0) {
        fprintf(stderr, "fstore %s: cannot read %s: %s\n", cmd, dir, store_strerror(rc));
        return rc;
    }
    bool local = false;
    if (pos > 0 && (rc = store_written_locally(s, &local)) < 0) {
        fprintf(stderr, "fstore %s: cannot read %s: %s\n", cmd, dir, store_strerror(rc));
        return rc;
    }
    /* Once written without the log (served alone since), it is a single node's again. */
    if (pos == 0 || local)
        return 0;
    fprintf(stderr,
            "fstore %s: %s is a replica of a replication log (it applied sequence %llu): its "
            "rows come from the log alone; %s\n",
            cmd, dir, (unsigned long long)pos, how);
    return -EROFS;
}

/* A secret's first line without the line end and blanks around it, into buf. Returns: 0;
 * -EINVAL (empty, longer than cap - 1, or not printable ASCII); -errno from fopen(). */
static int read_secret(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char line[CLI_AUTH_MAX];
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
    char tok[CLI_AUTH_MAX - 8];
    if (read_secret(token_file, tok, sizeof tok) < 0) {
        fprintf(stderr, "fstore %s: cannot read a token from %s\n", cmd, token_file);
        return -EINVAL;
    }
    snprintf(auth, cap, "Bearer %s", tok);
    explicit_bzero(tok, sizeof tok);
    return 0;
}

fstore_client_tls_t cli__tls;

bool cli__tls_given(void)
{
    return cli__tls.ca != NULL || cli__tls.cert != NULL || cli__tls.key != NULL ||
           cli__tls.server_name != NULL;
}

int cli__connect(const char *cmd, const char *target, fstore_client_t **out)
{
    char why[600] = "";
    int rc = fstore_client_connect_tls(target, &cli__tls, out, why, sizeof why);
    if (rc < 0)
        fprintf(stderr, "fstore %s: %s: %s\n", cmd, target, rc == -EINVAL ? why : strerror(-rc));
    return rc;
}

int cli__call(const char *cmd, const char *target, const char *auth, const char *method,
              const uint8_t *req, size_t len, int timeout_ms, uint8_t **resp, size_t *resp_len,
              int *code)
{
    *resp = NULL;
    *resp_len = 0;
    if (code != NULL)
        *code = -1;
    fstore_grpc_init();
    fstore_client_t *cl = NULL;
    fstore_status_t st = {0};
    fstore_metadata_t md = {"authorization", auth};
    int rc = cli__connect(cmd, target, &cl);
    if (rc < 0) {
        grpc_shutdown();
        return rc;
    }
    rc = fstore_client_call_md(cl, method, &md, auth[0] != '\0' ? 1 : 0, req, len, timeout_ms, resp,
                               resp_len, &st);
    fstore_client_close(cl);
    grpc_shutdown();
    if (rc == -EREMOTEIO && code != NULL)
        *code = st.code;
    if (rc < 0) {
        fprintf(stderr, "fstore %s: %s: %s\n", cmd, target,
                rc == -EREMOTEIO ? st.message : strerror(-rc));
        free(*resp);
        *resp = NULL;
    }
    return rc;
}

const char *cli__status_name(store_status_t st)
{
    switch (st) {
    case STORE_STATUS_PRESENT:
        return "PRESENT";
    case STORE_STATUS_NULL_VALUE:
        return "NULL_VALUE";
    case STORE_STATUS_NOT_FOUND:
        return "NOT_FOUND";
    case STORE_STATUS_OUTSIDE_MAX_AGE:
        return "OUTSIDE_MAX_AGE";
    default:
        return "INVALID";
    }
}

json_t *cli__value_json(const catalog_value_t *v)
{
    char buf[256];
    switch (v->type) {
    case CATALOG_DTYPE_NULL:
        return json_null();
    case CATALOG_DTYPE_INT32:
        return json_integer(v->u.i32);
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        return json_integer(v->u.i64);
    case CATALOG_DTYPE_FLOAT:
        return json_real(v->u.f32);
    case CATALOG_DTYPE_DOUBLE:
        return json_real(v->u.f64);
    case CATALOG_DTYPE_BOOL:
        return json_boolean(v->u.b);
    case CATALOG_DTYPE_STRING: {
        json_t *s = json_stringn((const char *)v->u.bytes.data, v->u.bytes.len);
        if (s != NULL)
            return s;
        break;
    }
    default:
        if (catalog_dtype_is_list(v->type)) {
            json_t *arr = json_array();
            for (size_t i = 0; i < v->u.list.n; i++) {
                catalog_value_t e;
                catalog_list_item(v, i, &e);
                json_array_append_new(arr, cli__value_json(&e));
            }
            return arr;
        }
        break;
    }
    size_t need = catalog_value_format(v, buf, sizeof buf);
    if (need < sizeof buf)
        return json_string(buf);
    char *big = malloc(need + 1);
    if (big == NULL)
        return json_null();
    catalog_value_format(v, big, need + 1);
    json_t *s = json_string(big);
    free(big);
    return s;
}

catalog_dtype_t cli__key_type(const core_resolved_t *res, const char *name)
{
    for (size_t g = 0; g < res->groups.n_groups; g++) {
        const catalog_view_t *v = res->groups.groups[g].view;
        for (size_t k = 0; k < v->n_join_keys; k++) {
            if (strcmp(v->join_keys[k].name, name) == 0)
                return v->join_keys[k].dtype;
        }
    }
    return CATALOG_DTYPE_STRING;
}

/* "view:feature", or "view@vN:feature" for a version that is not the default. */
void cli__ref_name(const catalog_feature_ref_t *r, char *buf, size_t cap)
{
    if (r->view->is_default)
        snprintf(buf, cap, "%s:%s", r->view->name, r->feature->name);
    else
        snprintf(buf, cap, "%s@v%u:%s", r->view->name, r->view->version, r->feature->name);
}

int cli__add_refs(const char *cmd, const catalog_t *cat, base_arena_t *a, char *list,
                  const char **refs, size_t *lens, size_t cap, size_t *n)
{
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        size_t len = strlen(tok);
        if (len > 2 && strcmp(tok + len - 2, ":*") == 0) {
            tok[len - 2] = '\0';
            const catalog_view_t *v;
            if (catalog_find_view_ref(cat, tok, &v) != 0) {
                fprintf(stderr, "fstore %s: no feature view '%s' in the applied catalog\n", cmd,
                        tok);
                return 1;
            }
            for (size_t i = 0; i < v->n_features; i++) {
                if (*n == cap)
                    goto too_many;
                char buf[2 * CATALOG_MAX_NAME + 16];
                catalog_feature_ref_t r = {v, &v->features[i]};
                cli__ref_name(&r, buf, sizeof buf);
                refs[*n] = base_arena_strndup(a, buf, strlen(buf));
                if (refs[*n] == NULL) {
                    fprintf(stderr, "fstore %s: out of memory\n", cmd);
                    return 1;
                }
                lens[*n] = strlen(buf);
                (*n)++;
            }
            continue;
        }
        if (*n == cap)
            goto too_many;
        refs[*n] = tok;
        lens[*n] = len;
        (*n)++;
    }
    return 0;
too_many:
    fprintf(stderr, "fstore %s: more than %zu feature references\n", cmd, cap);
    return 1;
}

int cli__feature_list(const char *cmd, const catalog_t *cat, base_arena_t *a, const char *service,
                      const cli_list_t *features, bool full_names, core_feature_list_t *out)
{
    memset(out, 0, sizeof *out);
    out->full_names = full_names;
    if (service != NULL) {
        out->kind = CORE_LIST_SERVICE;
        out->service = service;
        out->service_len = strlen(service);
        return 0;
    }
    const char **refs = base_arena_array(a, CLI_MAX_FEATURES, sizeof *refs);
    size_t *lens = base_arena_array(a, CLI_MAX_FEATURES, sizeof *lens);
    if (refs == NULL || lens == NULL)
        goto oom;
    size_t n = 0;
    for (size_t i = 0; i < features->n; i++) {
        char *copy = base_arena_strndup(a, features->items[i], strlen(features->items[i]));
        if (copy == NULL)
            goto oom;
        if (cli__add_refs(cmd, cat, a, copy, refs, lens, CLI_MAX_FEATURES, &n) != 0)
            return 1;
    }
    out->kind = CORE_LIST_FEATURES;
    out->refs = refs;
    out->ref_lens = lens;
    out->n_refs = n;
    if (base_wire_strings(a, refs, lens, n, &out->key, &out->key_len) < 0)
        goto oom;
    return 0;
oom:
    fprintf(stderr, "fstore %s: out of memory\n", cmd);
    return 1;
}

int cli__open_reader(const char *cmd, const char *dir, core_t **core, core_worker_t **w)
{
    core_options_t co;
    core_options_init(&co);
    co.data_dir = dir;
    co.read_only = true;
    co.quiet = true;
    co.max_workers = 1;
    /* Anything this process asks for is the reader's own business: no request limits. */
    co.limits.max_entities = co.limits.max_features = co.limits.max_response_bytes = SIZE_MAX;
    int rc = core_open(&co, core);
    if (rc < 0) {
        fprintf(stderr, "fstore %s: cannot open %s: %s\n", cmd, dir,
                rc == -ENOENT ? "no catalog applied (run fstore apply)" : store_strerror(rc));
        return rc;
    }
    rc = core_worker_new(*core, CORE_WORKER_READS, base_wire_strings, w);
    if (rc < 0)
        fprintf(stderr, "fstore %s: %s\n", cmd, strerror(-rc));
    return rc;
}
