/* cli/history.c - `fstore history` (point-in-time training sets) and `fstore materialize`. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "catalog/catalog.h"
#include "cli/cli_int.h"
#include "core/core.h"
#include "storage/store.h"

#define MAX_COLUMNS 256
#define MAX_LINE (1 << 20)    /* bytes of one entity row */
#define MAX_CHUNK (64u << 20) /* bytes of rows per chunk: a chunk ends early past it */

static void history_usage(FILE *f)
{
    fprintf(f, "usage: fstore history --data-dir DIR (--features REFS | --feature-service NAME)\n"
               "                      [--format csv|jsonl] [--full-feature-names]\n"
               "                      [--timestamp-column NAME] [--chunk-rows N] [ENTITIES.csv]\n"
               "\n"
               "Feast's get_historical_features against DIR's history: for every row of the\n"
               "entity table (a CSV file with a header, or stdin), each feature as of that row's\n"
               "time, the latest value at or before it within the view's TTL, else empty. The\n"
               "table holds the join keys the features need, the time column (RFC 3339 or seconds\n"
               "since the epoch) and any other column, carried through. Output (stdout): the\n"
               "table's columns, then one per feature; written a chunk of rows at a time, so a\n"
               "table of any length runs in bounded memory. The views must keep history: their\n"
               "catalog entry has 'offline:' and DIR's server runs with --history.\n"
               "\n"
               "flags:\n"
               "  -d, --data-dir DIR           data directory (env FSTORE_DATA_DIR)\n"
               "  -f, --features REFS          view:feature, comma-separated; view:* for all\n"
               "  -s, --feature-service NAME   every feature of a feature service\n"
               "      --format csv|jsonl       output format (default csv)\n"
               "      --full-feature-names     name feature columns view__feature\n"
               "      --timestamp-column NAME  the table's time column (default event_timestamp)\n"
               "      --chunk-rows N           rows read per chunk (default 1000)\n"
               "  -h, --help                   this help\n"
               "\n"
               "exit status: 0 done, 1 failed, 2 usage error\n");
}

/* One CSV record of line (RFC 4180 quoting, within one line) into fields, in place. Returns:
 * the number of fields, or -EINVAL (an unterminated quote, more than cap fields). */
static int split_csv(char *line, char **fields, size_t cap)
{
    size_t n = 0, len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    char *p = line;
    for (;;) {
        if (n == cap)
            return -EINVAL;
        if (*p == '"') {
            char *out = ++p, *start = p;
            for (;;) {
                if (*p == '\0')
                    return -EINVAL;
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            if (*p != ',' && *p != '\0')
                return -EINVAL;
            char sep = *p;
            *out = '\0';
            fields[n++] = start;
            if (sep == '\0')
                return (int)n;
            p++;
        } else {
            fields[n++] = p;
            char *comma = strchr(p, ',');
            if (comma == NULL)
                return (int)n;
            *comma = '\0';
            p = comma + 1;
        }
    }
}

static void csv_field(FILE *out, const char *s, size_t n)
{
    if (strcspn(s, ",\"\n\r") >= n) {
        fwrite(s, 1, n, out);
        return;
    }
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            fputc('"', out);
        fputc(s[i], out);
    }
    fputc('"', out);
}

typedef struct hist_opts {
    const char *dir, *service, *format, *ts_column;
    cli_list_t feature_list;
    const char *features[64];
    bool full_names;
    size_t chunk_rows;
    const char *input;
} hist_opts_t;

/* Prints one cell: a value (decoded), or nothing / null for a missing one. */
static int print_cell(FILE *out, bool jsonl, json_t *obj, const char *name, const core_cell_t *c,
                      void *scratch, size_t scratch_cap)
{
    catalog_value_t v = {.type = CATALOG_DTYPE_NULL};
    if (c->len > 0 && c->status != STORE_STATUS_OUTSIDE_MAX_AGE &&
        catalog_value_decode(c->wire, c->len, &v, scratch, scratch_cap) < 0)
        return -EIO;
    if (jsonl) {
        json_object_set_new(obj, name, cli__value_json(&v));
        return 0;
    }
    if (v.type == CATALOG_DTYPE_NULL)
        return 0;
    if (v.type == CATALOG_DTYPE_STRING) {
        csv_field(out, (const char *)v.u.bytes.data, v.u.bytes.len);
        return 0;
    }
    char buf[512];
    size_t need = catalog_value_format(&v, buf, sizeof buf);
    char *text = need < sizeof buf ? buf : malloc(need + 1);
    if (text == NULL)
        return -ENOMEM;
    if (text != buf)
        catalog_value_format(&v, text, need + 1);
    csv_field(out, text, need);
    if (text != buf)
        free(text);
    return 0;
}

static int run_history(hist_opts_t *o)
{
    core_t *core = NULL;
    core_worker_t *w = NULL;
    base_arena_t arena, chunk;
    base_arena_init(&arena, 64 * 1024);
    base_arena_init(&chunk, 256 * 1024);
    core_ctx_t ctx = {0};
    bool begun = false;
    int status = 1;
    char *line = NULL;
    size_t line_cap = 0;
    bool jsonl = strcmp(o->format, "jsonl") == 0;
    size_t scratch_cap = 16 * STORE_MAX_VALUE + 64;
    void *scratch = malloc(scratch_cap);
    FILE *in = o->input == NULL || strcmp(o->input, "-") == 0 ? stdin : fopen(o->input, "r");
    if (in == NULL) {
        fprintf(stderr, "fstore history: cannot open %s: %s\n", o->input, strerror(errno));
        goto out;
    }
    if (scratch == NULL)
        goto out;
    int rc = cli__open_reader("history", o->dir, &core, &w);
    if (rc < 0)
        goto out;
    if (!store_keeps_history(core_store(core))) {
        fprintf(stderr,
                "fstore history: %s keeps no history (serve --history, or apply --history)\n",
                o->dir);
        goto out;
    }
    core_ctx_begin(&ctx, w, &arena);
    begun = true;
    core_feature_list_t list;
    if (cli__feature_list("history", ctx.catalog, &arena, o->service, &o->feature_list,
                          o->full_names, &list) != 0)
        goto out;
    const core_resolved_t *res = NULL;
    if (core_resolve(&ctx, &list, &res) != 0) {
        fprintf(stderr, "fstore history: %s\n", ctx.msg);
        goto out;
    }

    /* The header. */
    char *hdr[MAX_COLUMNS];
    if (getline(&line, &line_cap, in) < 0) {
        fprintf(stderr, "fstore history: the entity table is empty (a header is needed)\n");
        goto out;
    }
    int nh = split_csv(line, hdr, MAX_COLUMNS);
    if (nh <= 0) {
        fprintf(stderr, "fstore history: line 1: not a CSV header (at most %d columns)\n",
                MAX_COLUMNS);
        goto out;
    }
    size_t n_in = (size_t)nh, ts_col = SIZE_MAX;
    const char **names = base_arena_array(&arena, n_in, sizeof *names);
    catalog_dtype_t *types = base_arena_array(&arena, n_in, sizeof *types);
    if (names == NULL || types == NULL)
        goto out;
    for (size_t i = 0; i < n_in; i++) {
        names[i] = base_arena_strndup(&arena, hdr[i], strlen(hdr[i]));
        if (names[i] == NULL)
            goto out;
        if (strcmp(names[i], o->ts_column) == 0)
            ts_col = i;
        types[i] = cli__key_type(res, names[i]);
    }
    for (size_t f = 0; f < res->n_refs; f++) {
        for (size_t i = 0; i < n_in; i++) {
            if (strcmp(res->names[f], names[i]) == 0) {
                fprintf(stderr,
                        "fstore history: feature column '%s' is named like a column of the entity "
                        "table: use --full-feature-names\n",
                        names[i]);
                goto out;
            }
        }
    }
    if (ts_col == SIZE_MAX) {
        fprintf(stderr,
                "fstore history: the entity table has no '%s' column (--timestamp-column)\n",
                o->ts_column);
        goto out;
    }
    /* Output header: the table's columns as given, then the features. */
    if (!jsonl) {
        for (size_t i = 0; i < n_in; i++) {
            if (i > 0)
                fputc(',', stdout);
            csv_field(stdout, names[i], strlen(names[i]));
        }
        for (size_t f = 0; f < res->n_refs; f++) {
            fputc(',', stdout);
            csv_field(stdout, res->names[f], res->name_lens[f]);
        }
        fputc('\n', stdout);
    }
    core_ctx_end(&ctx);
    begun = false;

    size_t line_no = 1;
    bool eof = false;
    while (!eof) {
        base_arena_reset(&chunk);
        core_ctx_begin(&ctx, w, &chunk);
        begun = true;
        size_t cap = o->chunk_rows, n = 0;
        char ***rows = base_arena_array(&chunk, cap, sizeof *rows);
        int64_t *as_of = base_arena_array(&chunk, cap, sizeof *as_of);
        size_t *lines = base_arena_array(&chunk, cap, sizeof *lines);
        if (rows == NULL || as_of == NULL || lines == NULL)
            goto out;
        size_t chunk_bytes = 0;
        while (n < cap && chunk_bytes < MAX_CHUNK) {
            ssize_t got = getline(&line, &line_cap, in);
            if (got < 0) {
                eof = true;
                break;
            }
            line_no++;
            if ((size_t)got > MAX_LINE) {
                fprintf(stderr, "fstore history: line %zu: over %d bytes\n", line_no, MAX_LINE);
                goto out;
            }
            if (strspn(line, "\r\n") == (size_t)got)
                continue; /* a blank line */
            char *copy = base_arena_strndup(&chunk, line, strlen(line));
            char **f = base_arena_array(&chunk, n_in, sizeof *f);
            if (copy == NULL || f == NULL)
                goto out;
            char *tmp[MAX_COLUMNS];
            int nf = split_csv(copy, tmp, MAX_COLUMNS);
            if (nf < 0) {
                fprintf(stderr,
                        "fstore history: line %zu: not a CSV record (an unterminated quote, or "
                        "more than %d fields; a quoted field may not span lines)\n",
                        line_no, MAX_COLUMNS);
                goto out;
            }
            if (nf != (int)n_in) {
                fprintf(stderr, "fstore history: line %zu: %d fields, the header has %zu\n",
                        line_no, nf, n_in);
                goto out;
            }
            memcpy(f, tmp, n_in * sizeof *f);
            if (base_parse_time(f[ts_col], strlen(f[ts_col]), &as_of[n]) < 0) {
                fprintf(stderr,
                        "fstore history: line %zu: %s '%s' is not a time (RFC 3339 or seconds "
                        "since the epoch)\n",
                        line_no, o->ts_column, f[ts_col]);
                goto out;
            }
            lines[n] = line_no;
            rows[n++] = f;
            chunk_bytes += (size_t)got;
        }
        if (n == 0)
            break;
        /* Every column but the time, typed by the views' join keys (others as text). */
        const char **cnames = base_arena_array(&chunk, n_in, sizeof *cnames);
        const catalog_value_t **cols = base_arena_array(&chunk, n_in, sizeof *cols);
        if (cnames == NULL || cols == NULL)
            goto out;
        size_t nc = 0;
        for (size_t i = 0; i < n_in; i++) {
            if (i == ts_col)
                continue;
            catalog_value_t *col = base_arena_array(&chunk, n, sizeof *col);
            if (col == NULL)
                goto out;
            for (size_t r = 0; r < n; r++) {
                const char *text = rows[r][i];
                if (types[i] == CATALOG_DTYPE_INT64 || types[i] == CATALOG_DTYPE_INT32) {
                    int64_t x;
                    if (base_parse_int(text, strlen(text), &x) < 0) {
                        fprintf(stderr,
                                "fstore history: line %zu: join key %s: '%s' is not an "
                                "integer\n",
                                lines[r], names[i], text);
                        goto out;
                    }
                    col[r] = (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = x};
                } else {
                    col[r] = (catalog_value_t){.type = types[i]};
                    col[r].u.bytes.data = (const uint8_t *)text;
                    col[r].u.bytes.len = strlen(text);
                }
            }
            cnames[nc] = names[i];
            cols[nc++] = col;
        }
        core_columns_t ents = {.n_cols = nc, .n_rows = n, .names = cnames, .cols = cols};
        if (core_resolve(&ctx, &list, &res) != 0) {
            fprintf(stderr, "fstore history: %s\n", ctx.msg);
            goto out;
        }
        core_cell_t *cells = NULL;
        if (core_history_begin(&ctx, res, &ents, as_of, o->full_names, &cells) < 0) {
            fprintf(stderr, "fstore history: lines %zu-%zu: %s\n", lines[0], lines[n - 1], ctx.msg);
            goto out;
        }
        for (size_t r = 0; r < n; r++) {
            json_t *obj = jsonl ? json_object() : NULL;
            for (size_t i = 0; i < n_in; i++) {
                const char *text = rows[r][i];
                if (jsonl) {
                    json_t *j = NULL;
                    int64_t x;
                    if (i != ts_col &&
                        (types[i] == CATALOG_DTYPE_INT64 || types[i] == CATALOG_DTYPE_INT32) &&
                        base_parse_int(text, strlen(text), &x) == 0)
                        j = json_integer(x);
                    json_object_set_new(obj, names[i], j != NULL ? j : json_string(text));
                } else {
                    if (i > 0)
                        fputc(',', stdout);
                    csv_field(stdout, text, strlen(text));
                }
            }
            for (size_t f = 0; f < res->n_refs; f++) {
                if (!jsonl)
                    fputc(',', stdout);
                if (print_cell(stdout, jsonl, obj, res->names[f], &cells[f * n + r], scratch,
                               scratch_cap) < 0) {
                    fprintf(stderr, "fstore history: line %zu: a malformed stored value\n",
                            lines[r]);
                    json_decref(obj);
                    goto out;
                }
            }
            if (jsonl) {
                char *text = json_dumps(obj, JSON_COMPACT);
                if (text != NULL)
                    puts(text);
                free(text);
                json_decref(obj);
            } else {
                fputc('\n', stdout);
            }
        }
        core_ctx_end(&ctx);
        begun = false;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "fstore history: writing the output failed: %s\n", strerror(errno));
        goto out;
    }
    status = 0;
out:
    if (begun)
        core_ctx_end(&ctx);
    core_worker_free(w);
    core_close(core);
    base_arena_free(&arena);
    base_arena_free(&chunk);
    if (in != NULL && in != stdin)
        fclose(in);
    free(line);
    free(scratch);
    return status;
}

int cli_history(int argc, char **argv)
{
    hist_opts_t o = {.format = "csv", .ts_column = "event_timestamp", .chunk_rows = 1000};
    o.feature_list = (cli_list_t){o.features, 0, sizeof o.features / sizeof o.features[0]};
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &o.dir, CLI_ENV | CLI_REQUIRED},
        {"features", 'f', CLI_LIST, &o.feature_list, 0},
        {"feature-service", 's', CLI_STRING, &o.service, 0},
        {"format", 0, CLI_STRING, &o.format, 0, 0, 0, "csv|jsonl"},
        {"full-feature-names", 0, CLI_FLAG, &o.full_names, 0},
        {"timestamp-column", 0, CLI_STRING, &o.ts_column, 0},
        {"chunk-rows", 0, CLI_SIZE, &o.chunk_rows, 0, 1, 1000000},
    };
    const cli_cmd_t cmd = {"history", history_usage, opts, sizeof opts / sizeof opts[0], 0,
                           1,         "ENTITIES.csv"};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    if ((o.service == NULL) == (o.feature_list.n == 0)) {
        fprintf(stderr, "fstore history: give --features or --feature-service, one of them\n\n");
        history_usage(stderr);
        return 2;
    }
    o.input = first < argc ? argv[first] : NULL;
    return run_history(&o);
}

/* ------------------------------------------------------------------------------------------ */
/* materialize                                                                                 */

static void materialize_usage(FILE *f)
{
    fprintf(f,
            "usage: fstore materialize --data-dir DIR [--views NAMES] START END\n"
            "\n"
            "Feast's materialize: loads the history of DIR's views into their online rows.\n"
            "Each entity whose latest row at END (within the view's TTL there) has an event\n"
            "time at or after START gets that row online, with its event time (last write wins:\n"
            "an online row already newer stays). START and END: RFC 3339 or seconds since the\n"
            "epoch. Every view with 'offline:' in the catalog, or those --views names.\n"
            "\n"
            "flags:\n"
            "  -d, --data-dir DIR    data directory (env FSTORE_DATA_DIR)\n"
            "      --views NAMES     view or view@vN, comma-separated (default: all with history)\n"
            "  -h, --help            this help\n"
            "\n"
            "exit status: 0 done, 1 failed, 2 usage error\n");
}

int cli_materialize(int argc, char **argv)
{
    const char *dir = NULL, *views = NULL;
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &dir, CLI_ENV | CLI_REQUIRED},
        {"views", 0, CLI_STRING, &views, 0},
    };
    const cli_cmd_t cmd = {
        "materialize", materialize_usage, opts, sizeof opts / sizeof opts[0], 2, 2, "START END"};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    int64_t start, end;
    if (base_parse_time(argv[first], strlen(argv[first]), &start) < 0 ||
        base_parse_time(argv[first + 1], strlen(argv[first + 1]), &end) < 0) {
        fprintf(stderr, "fstore materialize: START and END: RFC 3339 or seconds since the epoch\n");
        return 2;
    }
    if (end < start) {
        fprintf(stderr, "fstore materialize: END is before START\n");
        return 2;
    }
    store_options_t so = {.dir = dir, .sync = STORE_SYNC_FULL};
    store_t *s = NULL;
    catalog_t *cat = NULL;
    int status = 1;
    if (cli__open_store("materialize", &so, false, &s) < 0)
        return 1;
    if (cli__refuse_replica("materialize", s, dir, "materialize on a node without --replication") <
        0)
        goto out;
    if (!store_keeps_history(s)) {
        fprintf(stderr,
                "fstore materialize: %s keeps no history (serve --history, or apply --history)\n",
                dir);
        goto out;
    }
    if (store_applied_catalog(s, &cat) < 0) {
        fprintf(stderr, "fstore materialize: no catalog applied to %s\n", dir);
        goto out;
    }
    /* Every name --views gives must be a view of the catalog. */
    for (const char *p = views; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ",");
        char ref[CATALOG_MAX_NAME + 16];
        const catalog_view_t *v;
        snprintf(ref, sizeof ref, "%.*s", (int)(n < sizeof ref ? n : sizeof ref - 1), p);
        if (catalog_find_view_ref(cat, ref, &v) != 0) {
            fprintf(stderr, "fstore materialize: --views: no feature view '%s' in the catalog\n",
                    ref);
            goto out;
        }
        p += n + (p[n] == ',');
    }
    size_t done = 0;
    for (size_t i = 0; i < catalog_view_count(cat); i++) {
        const catalog_view_t *v = catalog_view_at(cat, i);
        if (views != NULL) {
            /* name or name@vN, comma-separated */
            char ref[CATALOG_MAX_NAME + 16];
            snprintf(ref, sizeof ref, "%s@v%u", v->name, (unsigned)v->version);
            bool listed = false;
            for (const char *p = views; *p != '\0' && !listed;) {
                size_t n = strcspn(p, ",");
                listed = (n == strlen(ref) && strncmp(p, ref, n) == 0) ||
                         (v->is_default && n == strlen(v->name) && strncmp(p, v->name, n) == 0);
                p += n + (p[n] == ',');
            }
            if (!listed)
                continue;
            if (!v->history) {
                fprintf(stderr, "fstore materialize: view %s keeps no history\n", ref);
                goto out;
            }
        }
        if (!v->history)
            continue;
        size_t written = 0;
        int rc = store_materialize(s, v, start, end, &written);
        if (rc < 0) {
            fprintf(stderr, "fstore materialize: view %s@v%u: %s\n", v->name, (unsigned)v->version,
                    rc == -EPERM ? "a replica of a replication log: its online rows come from "
                                   "the log alone (materialize on a single node)"
                                 : store_strerror(rc));
            goto out;
        }
        printf("materialize: %s@v%u: %zu rows\n", v->name, (unsigned)v->version, written);
        done++;
    }
    if (done == 0) {
        fprintf(stderr, "fstore materialize: no view with history%s\n",
                views != NULL ? " among --views" : "");
        goto out;
    }
    status = 0;
out:
    catalog_unref(cat);
    store_close(s);
    return status;
}
