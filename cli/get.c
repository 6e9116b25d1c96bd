/* cli/get.c - `fstore get`: read online features through the serving core's read path. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "catalog/catalog.h"
#include "cli/cli_int.h"
#include "core/core.h"
#include "storage/store.h"

#define MAX_ENTITIES 1024

static void usage(FILE *f)
{
    fprintf(
        f, "usage: fstore get --data-dir DIR (--features REFS | --feature-service NAME)\n"
           "                  [--entity KEY=VALUE[,KEY=VALUE...]]... [--request FIELD=VALUE,...]\n"
           "                  [--json]\n"
           "\n"
           "Reads features of one or more entities from DIR with the catalog applied there,\n"
           "and prints one line per (entity, feature): value, status (PRESENT, NULL_VALUE,\n"
           "NOT_FOUND, OUTSIDE_MAX_AGE) and the row's event time.\n"
           "\n"
           "Each --entity is one entity (one row): KEY=VALUE pairs separated by commas give\n"
           "every join key the requested views need, e.g. --entity driver_id=1001 or\n"
           "--entity driver_id=1001,city=Paris. Repeat --entity for more entities. Values\n"
           "cannot contain commas. Entityless views need no --entity. On-demand features that\n"
           "read request data get it from --request, the same for every entity, e.g.\n"
           "--request val_to_add=1000,val_to_add_2=0.\n"
           "\n"
           "flags:\n"
           "  -d, --data-dir DIR           data directory (env FSTORE_DATA_DIR)\n"
           "  -f, --features REFS          view:feature or view@vN:feature, comma-separated;\n"
           "                               view:* for every feature of a view; repeatable\n"
           "  -s, --feature-service NAME   every feature of a feature service\n"
           "  -e, --entity PAIRS           one entity's join keys (see above); repeatable\n"
           "  -r, --request PAIRS          request data of on-demand features (see above)\n"
           "      --json                   print JSON: {\"rows\":[{\"entity\":{...},\"features\":\n"
           "                               {REF:{\"value\",\"status\",\"event_timestamp\"}}}]}\n"
           "  -h, --help                   this help\n"
           "\n"
           "exit status: 0 read (missing rows are not errors), 1 failed, 2 usage error\n");
}

typedef struct pair {
    char *key;
    char *value;
} pair_t;

#define MAX_PAIRS 16

typedef struct entity {
    pair_t pairs[MAX_PAIRS];
    size_t n;
} entity_t;

/* Parses "k=v,k2=v2" in place. Returns: 0, -EINVAL. */
static int parse_entity(char *text, entity_t *e)
{
    e->n = 0;
    for (char *save = NULL, *tok = strtok_r(text, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok || e->n == sizeof e->pairs / sizeof e->pairs[0])
            return -EINVAL;
        *eq = '\0';
        e->pairs[e->n].key = tok;
        e->pairs[e->n].value = eq + 1;
        e->n++;
    }
    return e->n > 0 ? 0 : -EINVAL;
}

/* Entity e as one row of columns typed by the views' join keys. Returns: 0, or -EINVAL with a
 * message in err. */
static int entity_columns(const core_resolved_t *res, const entity_t *e, catalog_value_t *vals,
                          const catalog_value_t **ptrs, const char **names, core_columns_t *cols,
                          char *err, size_t cap)
{
    for (size_t i = 0; i < e->n; i++) {
        const char *text = e->pairs[i].value;
        catalog_dtype_t t = cli__key_type(res, e->pairs[i].key);
        names[i] = e->pairs[i].key;
        if (t == CATALOG_DTYPE_INT64 || t == CATALOG_DTYPE_INT32) {
            char *end;
            errno = 0;
            long long x = strtoll(text, &end, 10);
            if (errno != 0 || end == text || *end != '\0') {
                snprintf(err, cap, "join key %s: '%s' is not an integer", e->pairs[i].key, text);
                return -EINVAL;
            }
            /* An INT64 value finds an INT32 entity too, when it fits. */
            vals[i] = (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = x};
        } else {
            vals[i] = (catalog_value_t){.type = t};
            vals[i].u.bytes.data = (const uint8_t *)text;
            vals[i].u.bytes.len = strlen(text);
        }
    }
    for (size_t i = 0; i < e->n; i++)
        ptrs[i] = &vals[i];
    *cols = (core_columns_t){.n_cols = e->n, .n_rows = 1, .names = names, .cols = ptrs};
    return 0;
}

/* --request's pairs as one row of columns typed by the catalog's request fields of that name
 * (a field no source has is kept as text: the read then names what it is missing). Returns: 0,
 * or -EINVAL with a message in err. */
static int request_columns(const catalog_t *cat, const entity_t *e, base_arena_t *a,
                           catalog_value_t *vals, const catalog_value_t **ptrs, const char **names,
                           core_columns_t *cols, char *err, size_t cap)
{
    for (size_t i = 0; i < e->n; i++) {
        catalog_dtype_t t = CATALOG_DTYPE_STRING;
        for (size_t r = 0; r < catalog_request_source_count(cat); r++) {
            const catalog_request_source_t *rs = catalog_request_source_at(cat, r);
            for (size_t f = 0; f < rs->n_fields; f++) {
                if (strcmp(rs->fields[f].name, e->pairs[i].key) == 0)
                    t = rs->fields[f].dtype;
            }
        }
        json_t *j = json_string(e->pairs[i].value);
        char why[160];
        int rc = j == NULL ? -ENOMEM
                           : catalog_value_from_json(j, t, CATALOG_JSON_TEXT, a, &vals[i], why,
                                                     sizeof why);
        if (rc == 0 &&
            (vals[i].type == CATALOG_DTYPE_STRING || vals[i].type == CATALOG_DTYPE_BYTES)) {
            /* the bytes may live in j: copy them out before it goes */
            const char *copy =
                base_arena_strndup(a, (const char *)vals[i].u.bytes.data, vals[i].u.bytes.len);
            rc = copy == NULL ? -ENOMEM : 0;
            vals[i].u.bytes.data = (const uint8_t *)copy;
        }
        json_decref(j);
        if (rc < 0) {
            snprintf(err, cap, "request field %s: %s", e->pairs[i].key,
                     rc == -ENOMEM ? "out of memory" : why);
            return rc;
        }
        names[i] = e->pairs[i].key;
        ptrs[i] = &vals[i];
    }
    *cols = (core_columns_t){.n_cols = e->n, .n_rows = 1, .names = names, .cols = ptrs};
    return 0;
}

static void entity_text(const entity_t *e, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < e->n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s=%s", i ? "," : "", e->pairs[i].key,
                                e->pairs[i].value);
    if (e->n == 0)
        snprintf(buf, cap, "-");
}

typedef struct opts {
    const char *dir;
    const char *features[64];
    cli_list_t feature_list;
    const char *service;
    const char *entities[MAX_ENTITIES];
    cli_list_t entity_list;
    const char *request;
    bool json;
} opts_t;

/* The text table: every line is kept (in the arena) until the widths of the columns are known,
 * so long feature names or values do not shift the columns after them. */
enum { COL_ENTITY, COL_FEATURE, COL_VALUE, COL_STATUS, COL_TS, N_COLS };
enum { VALUE_WIDTH_MAX = 40 }; /* a longer value (a list) overflows its own line only */
typedef struct table {
    base_arena_t *arena;
    const char **cells; /* N_COLS per line; line 0 is the header */
    size_t n, cap;
} table_t;

static int table_add(table_t *t, const char *const col[N_COLS])
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        const char **c = realloc(t->cells, cap * N_COLS * sizeof *c);
        if (c == NULL)
            return -ENOMEM;
        t->cells = c;
        t->cap = cap;
    }
    for (size_t i = 0; i < N_COLS; i++) {
        t->cells[t->n * N_COLS + i] = base_arena_strndup(t->arena, col[i], strlen(col[i]));
        if (t->cells[t->n * N_COLS + i] == NULL)
            return -ENOMEM;
    }
    t->n++;
    return 0;
}

static void table_print(const table_t *t)
{
    int w[N_COLS] = {0};
    for (size_t r = 0; r < t->n; r++) {
        for (size_t i = 0; i + 1 < N_COLS; i++) {
            int len = (int)strlen(t->cells[r * N_COLS + i]);
            if (len > w[i] && !(i == COL_VALUE && len > VALUE_WIDTH_MAX))
                w[i] = len;
        }
    }
    for (size_t r = 0; r < t->n; r++) {
        const char *const *c = &t->cells[r * N_COLS];
        printf("%-*s  %-*s  %-*s  %-*s  %s\n", w[0], c[0], w[1], c[1], w[2], c[2], w[3], c[3],
               c[4]);
    }
}

/* Adds the (entity, feature) lines of one entity row to the table, or its JSON object to rows. */
static int print_row(const opts_t *o, const core_resolved_t *res, const core_cell_t *cells,
                     const entity_t *ent, const char *etext, table_t *table, json_t *rows)
{
    int rc = 0;
    json_t *jfeat = o->json ? json_object() : NULL;
    for (size_t i = 0; i < res->n_refs; i++) {
        const core_cell_t *cell = &cells[i];
        char name[2 * CATALOG_MAX_NAME + 16];
        cli__ref_name(&res->refs[i], name, sizeof name);
        catalog_value_t val = {.type = CATALOG_DTYPE_NULL};
        void *scratch = NULL;
        if (cell->len > 0) {
            scratch = malloc(16 * (size_t)cell->len + 64);
            if (scratch == NULL || catalog_value_decode(cell->wire, cell->len, &val, scratch,
                                                        16 * (size_t)cell->len + 64) != 0)
                val.type = CATALOG_DTYPE_NULL;
        }
        bool found = cell->status != STORE_STATUS_NOT_FOUND;
        char ts[64] = "-";
        if (found)
            base_format_time(cell->event_ts_us, ts, sizeof ts);
        if (o->json) {
            json_t *jv = json_pack("{s:o, s:s}", "value", cli__value_json(&val), "status",
                                   cli__status_name((store_status_t)cell->status));
            if (found)
                json_object_set_new(jv, "event_timestamp", json_string(ts));
            json_object_set_new(jfeat, name, jv);
        } else {
            char text[4096];
            if (cell->len > 0)
                catalog_value_format(&val, text, sizeof text);
            else
                snprintf(text, sizeof text, "-");
            const char *line[N_COLS] = {etext, name, text,
                                        cli__status_name((store_status_t)cell->status), ts};
            if (rc == 0)
                rc = table_add(table, line);
        }
        free(scratch);
    }
    if (!o->json)
        return rc;
    json_t *jent = json_object();
    for (size_t i = 0; i < ent->n; i++) {
        /* Integer join keys print as numbers, like the values. */
        const char *text = ent->pairs[i].value;
        char *end;
        errno = 0;
        long long x = strtoll(text, &end, 10);
        bool is_int = text[0] != '\0' && *end == '\0' && errno == 0;
        json_object_set_new(jent, ent->pairs[i].key, is_int ? json_integer(x) : json_string(text));
    }
    json_array_append_new(rows, json_pack("{s:o, s:o}", "entity", jent, "features", jfeat));
    return 0;
}

static int run(opts_t *o)
{
    core_t *core = NULL;
    core_worker_t *w = NULL;
    base_arena_t arena;
    base_arena_init(&arena, 64 * 1024);
    table_t table = {.arena = &arena};
    core_ctx_t ctx = {0};
    bool begun = false;
    size_t n_ents = o->entity_list.n;
    entity_t *ents = calloc(n_ents + 1, sizeof *ents);
    json_t *rows = o->json ? json_array() : NULL;
    int status = 1;
    if (ents == NULL)
        goto out;
    int rc = cli__open_reader("get", o->dir, &core, &w);
    if (rc < 0)
        goto out;
    core_ctx_begin(&ctx, w, &arena);
    begun = true;

    core_feature_list_t list;
    if (cli__feature_list("get", ctx.catalog, &arena, o->service, &o->feature_list, true, &list) !=
        0)
        goto out;
    const core_resolved_t *res = NULL;
    rc = core_resolve(&ctx, &list, &res);
    if (rc != 0) {
        fprintf(stderr, "fstore get: %s\n", ctx.msg);
        goto out;
    }
    /* A view version in the catalog whose data was torn down reads as NOT_FOUND to a server's
     * clients; asked for by name here, it is an error that says so. */
    for (size_t g = 0; g < res->groups.n_groups; g++) {
        const catalog_view_t *v = res->groups.groups[g].view;
        if (v->on_demand != NULL)
            continue; /* nothing stored: computed from its sources */
        size_t n_rows = 0;
        rc = store_count_rows(core_store(core), v, &n_rows);
        if (rc < 0) {
            fprintf(stderr, "fstore get: view %s@v%u: %s\n", v->name, v->version,
                    rc == -ENOENT ? "no data here (offline, or not applied)" : strerror(-rc));
            goto out;
        }
    }
    for (size_t i = 0; i < n_ents; i++) {
        char *text =
            base_arena_strndup(&arena, o->entity_list.items[i], strlen(o->entity_list.items[i]));
        if (text == NULL || parse_entity(text, &ents[i]) != 0) {
            fprintf(stderr, "fstore get: --entity wants KEY=VALUE[,KEY=VALUE...]\n");
            status = 2;
            goto out;
        }
    }
    if (n_ents == 0)
        n_ents = 1; /* entityless views: one row without keys */
    entity_t req_pairs = {.n = 0};
    catalog_value_t req_vals[MAX_PAIRS];
    const catalog_value_t *req_ptrs[MAX_PAIRS];
    const char *req_names[MAX_PAIRS];
    core_columns_t request = {0};
    if (o->request != NULL) {
        char *text = base_arena_strndup(&arena, o->request, strlen(o->request));
        char err[256];
        if (text == NULL || parse_entity(text, &req_pairs) != 0) {
            fprintf(stderr, "fstore get: --request wants FIELD=VALUE[,FIELD=VALUE...]\n");
            status = 2;
            goto out;
        }
        if (request_columns(ctx.catalog, &req_pairs, &arena, req_vals, req_ptrs, req_names,
                            &request, err, sizeof err) < 0) {
            fprintf(stderr, "fstore get: %s\n", err);
            goto out;
        }
    }

    const char *header[N_COLS] = {"ENTITY", "FEATURE", "VALUE", "STATUS", "EVENT_TIMESTAMP"};
    if (table_add(&table, header) < 0) {
        fprintf(stderr, "fstore get: out of memory\n");
        goto out;
    }
    for (size_t e = 0; e < n_ents; e++) {
        char etext[512], err[256];
        entity_text(&ents[e], etext, sizeof etext);
        catalog_value_t vals[MAX_PAIRS];
        const catalog_value_t *ptrs[MAX_PAIRS];
        const char *names[MAX_PAIRS];
        core_columns_t cols;
        if (entity_columns(res, &ents[e], vals, ptrs, names, &cols, err, sizeof err) < 0) {
            fprintf(stderr, "fstore get: entity %s: %s\n", etext, err);
            goto out;
        }
        core_cell_t *cells = NULL;
        rc = core_read_begin(&ctx, res, &cols, &request, true, &cells);
        if (rc < 0) {
            fprintf(stderr, "fstore get: entity %s: %s\n", etext, ctx.msg);
            goto out;
        }
        rc = print_row(o, res, cells, &ents[e], etext, &table, rows);
        core_read_end(&ctx);
        if (rc < 0) {
            fprintf(stderr, "fstore get: %s\n", strerror(-rc));
            goto out;
        }
    }
    if (!o->json)
        table_print(&table);
    if (o->json) {
        json_t *doc = json_pack("{s:O}", "rows", rows);
        char *text = json_dumps(doc, JSON_INDENT(2));
        if (text != NULL)
            printf("%s\n", text);
        free(text);
        json_decref(doc);
    }
    status = 0;
out:
    if (begun)
        core_ctx_end(&ctx);
    core_worker_free(w);
    core_close(core);
    base_arena_free(&arena);
    json_decref(rows);
    free(table.cells);
    free(ents);
    return status;
}

int cli_get(int argc, char **argv)
{
    opts_t o = {0};
    o.feature_list = (cli_list_t){o.features, 0, sizeof o.features / sizeof o.features[0]};
    o.entity_list = (cli_list_t){o.entities, 0, MAX_ENTITIES};
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &o.dir, CLI_ENV | CLI_REQUIRED},
        {"features", 'f', CLI_LIST, &o.feature_list, 0},
        {"feature-service", 's', CLI_STRING, &o.service, 0},
        {"entity", 'e', CLI_LIST, &o.entity_list, 0},
        {"request", 'r', CLI_STRING, &o.request, 0},
        {"json", 0, CLI_FLAG, &o.json, 0},
    };
    const cli_cmd_t cmd = {"get", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    if ((o.feature_list.n == 0) == (o.service == NULL)) {
        fprintf(stderr, "fstore get: give --features or --feature-service (one of them)\n\n");
        usage(stderr);
        return 2;
    }
    return run(&o);
}
