/* http/feast.c - Feast's HTTP feature server: /get-online-features, /write-to-online-store,
 * /push. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"

/*
 * The shapes are those of Feast's feature_server.py (and of its remote online store client):
 * requests name features ("view:feature", "view@v2:feature") or a feature service and carry
 * entities as columns; the response is column-major, one result per name in
 * metadata.feature_names, join keys first (in the request's order), then the features, each
 * with its values, statuses by name and RFC 3339 event timestamps. Writes take a columnar "df".
 * A write answers what Feast answers (200 and `null`, or an empty 200 for /push) plus the headers
 * fstore-rows-written and, with replication, fstore-sequence (for fstore-min-seq).
 */

#define FEAST_TOO_MANY_FEATURES "%zu features requested, over --max-features %zu"

static const char *const status_names[] = {"INVALID", "PRESENT", "NULL_VALUE", "NOT_FOUND",
                                           "OUTSIDE_MAX_AGE"};

/* A JSON object's member that must be of one kind, or absent (NULL). */
static int member(http_req_t *r, const json_t *o, const char *name, json_type type, bool required,
                  const json_t **out)
{
    const json_t *j = json_object_get(o, name);
    if (j == NULL || (json_is_null(j) && !required)) {
        *out = NULL;
        if (required)
            return core_fail(&r->ctx, -EINVAL, "field required: %s", name);
        return 0;
    }
    if (json_typeof(j) != type && !(type == JSON_TRUE && json_is_boolean(j))) {
        static const char *const kinds[] = {"an object", "an array",  "a string",  "an integer",
                                            "a number",  "a boolean", "a boolean", "null"};
        return core_fail(&r->ctx, -EINVAL, "%s: want %s", name, kinds[type]);
    }
    *out = j;
    return 0;
}

/* A columnar object (entities or df) as columns of typed values; type_of gives each column's
 * dtype (CATALOG_DTYPE_INVALID: by JSON type), skip drops columns. */
typedef catalog_dtype_t (*type_of_fn)(void *arg, const char *column, bool *skip);

static int columns(http_req_t *r, const json_t *obj, const char *what,
                   const core_columns_limits_t *lim, type_of_fn type_of, void *arg,
                   core_columns_t *out)
{
    base_arena_t *a = &r->arena;
    size_t n = json_object_size(obj);
    const char **keys = base_arena_calloc(a, n + 1, sizeof *keys);
    size_t *lens = base_arena_calloc(a, n + 1, sizeof *lens);
    const json_t **vals = base_arena_calloc(a, n + 1, sizeof *vals);
    catalog_dtype_t *types = base_arena_calloc(a, n + 1, sizeof *types);
    if (keys == NULL || lens == NULL || vals == NULL || types == NULL)
        return core_fail(&r->ctx, -ENOMEM, "out of memory");
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        bool skip = false;
        catalog_dtype_t t = type_of != NULL ? type_of(arg, key, &skip) : CATALOG_DTYPE_INVALID;
        if (skip)
            continue;
        if (!json_is_array(val))
            return core_fail(&r->ctx, -EINVAL, "%s column '%.128s': want an array of values", what,
                             key);
        keys[k] = key;
        lens[k] = json_array_size(val);
        vals[k] = val;
        types[k] = t;
        k++;
    }
    size_t rows = 0;
    int rc = core_columns_shape(&r->ctx, what, k, keys, lens, lim, &rows);
    if (rc < 0)
        return rc;
    const catalog_value_t **cols = base_arena_calloc(a, k + 1, sizeof *cols);
    if (cols == NULL)
        return core_fail(&r->ctx, -ENOMEM, "out of memory");
    char why[256];
    for (size_t c = 0; c < k; c++) {
        catalog_value_t *col = base_arena_array(a, rows + 1, sizeof *col);
        if (col == NULL)
            return core_fail(&r->ctx, -ENOMEM, "out of memory");
        for (size_t i = 0; i < rows; i++) {
            rc = catalog_value_from_json(json_array_get(vals[c], i), types[c], 0, a, &col[i], why,
                                         sizeof why);
            if (rc == -ENOMEM)
                return core_fail(&r->ctx, rc, "out of memory");
            if (rc < 0)
                return core_fail(&r->ctx, rc, "%s column '%.128s', row %zu: %s", what, keys[c], i,
                                 why);
        }
        cols[c] = col;
    }
    *out = (core_columns_t){.n_cols = k, .n_rows = rows, .names = keys, .cols = cols};
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* /get-online-features                                                                        */

/* Is name a join key of a view the read touches? */
static bool join_key_of(const core_resolved_t *res, const char *name)
{
    for (size_t g = 0; g < res->groups.n_groups; g++) {
        const catalog_view_t *v = res->groups.groups[g].view;
        for (size_t k = 0; k < v->n_join_keys; k++) {
            if (strcmp(v->join_keys[k].name, name) == 0)
                return true;
        }
    }
    return false;
}

static void write_response(http_req_t *r, const core_resolved_t *res, const core_columns_t *ents,
                           const core_cell_t *cells)
{
    http_buf_t *b = &r->out;
    size_t n_rows = ents->n_rows;
    /* Join keys first, as the request gave them: values echoed, PRESENT, no event time. */
    bool first = true;
    http__puts(b, "{\"results\":[");
    for (size_t c = 0; c < ents->n_cols; c++) {
        if (!join_key_of(res, ents->names[c]))
            continue;
        http__puts(b, first ? "{\"values\":[" : ",{\"values\":[");
        first = false;
        for (size_t i = 0; i < n_rows; i++) {
            if (i > 0)
                http__putc(b, ',');
            http__json_value(b, &ents->cols[c][i]);
        }
        http__puts(b, "],\"statuses\":[");
        for (size_t i = 0; i < n_rows; i++)
            http__puts(b, i > 0 ? ",\"PRESENT\"" : "\"PRESENT\"");
        http__puts(b, "],\"event_timestamps\":[");
        for (size_t i = 0; i < n_rows; i++)
            http__puts(b, i > 0 ? ",\"1970-01-01T00:00:00Z\"" : "\"1970-01-01T00:00:00Z\"");
        http__puts(b, "]}");
    }
    /* Then one result per feature. */
    uint8_t scratch[4096];
    for (size_t f = 0; f < res->n_refs; f++) {
        http__puts(b, first ? "{\"values\":[" : ",{\"values\":[");
        first = false;
        const core_cell_t *row = &cells[f * n_rows];
        for (size_t i = 0; i < n_rows; i++) {
            if (i > 0)
                http__putc(b, ',');
            catalog_value_t v;
            const core_cell_t *cell = &row[i];
            void *sc = scratch;
            size_t cap = sizeof scratch;
            void *big = NULL;
            if (16 * (size_t)cell->len + 64 > cap) {
                cap = 16 * (size_t)cell->len + 64;
                big = malloc(cap);
                sc = big;
            }
            if (cell->len == 0 || sc == NULL ||
                catalog_value_decode(cell->wire, cell->len, &v, sc, cap) < 0)
                http__puts(b, "null");
            else
                http__json_value(b, &v);
            free(big);
        }
        http__puts(b, "],\"statuses\":[");
        for (size_t i = 0; i < n_rows; i++) {
            if (i > 0)
                http__putc(b, ',');
            unsigned st = row[i].status < 5 ? row[i].status : 0;
            http__putc(b, '"');
            http__puts(b, status_names[st]);
            http__putc(b, '"');
        }
        http__puts(b, "],\"event_timestamps\":[");
        for (size_t i = 0; i < n_rows; i++) {
            if (i > 0)
                http__putc(b, ',');
            http__json_timestamp(b, row[i].event_ts_us);
        }
        http__puts(b, "]}");
    }
    http__puts(b, "],\"metadata\":{\"feature_names\":[");
    first = true;
    for (size_t c = 0; c < ents->n_cols; c++) {
        if (!join_key_of(res, ents->names[c]))
            continue;
        if (!first)
            http__putc(b, ',');
        first = false;
        http__json_str(b, ents->names[c], strlen(ents->names[c]));
    }
    for (size_t f = 0; f < res->n_refs; f++) {
        if (!first)
            http__putc(b, ',');
        first = false;
        http__json_str(b, res->names[f], res->name_lens[f]);
    }
    http__puts(b, "]}}");
}

typedef struct entity_types {
    const core_resolved_t *res;
    const catalog_t *cat;
} entity_types_t;

static catalog_dtype_t request_field_type(void *arg, const char *column, bool *skip);

/* An entity column's type: a join key's as its JSON says (as before there were request
 * fields), a request field's as the catalog says. */
static catalog_dtype_t entity_field_type(void *arg, const char *column, bool *skip)
{
    const entity_types_t *et = arg;
    *skip = false;
    if (join_key_of(et->res, column))
        return CATALOG_DTYPE_INVALID;
    return request_field_type((void *)et->cat, column, skip);
}

/* A request_context column's type: its field's in the catalog's request sources (the first
 * that has it), else as its JSON says. */
static catalog_dtype_t request_field_type(void *arg, const char *column, bool *skip)
{
    const catalog_t *cat = arg;
    *skip = false;
    for (size_t i = 0; i < catalog_request_source_count(cat); i++) {
        const catalog_request_source_t *rs = catalog_request_source_at(cat, i);
        for (size_t f = 0; f < rs->n_fields; f++) {
            if (strcmp(rs->fields[f].name, column) == 0)
                return rs->fields[f].dtype;
        }
    }
    return CATALOG_DTYPE_INVALID;
}

/* The read and its answer, whichever way the request was decoded. */
static int read_and_answer(http_req_t *r, const core_resolved_t *res, core_columns_t *ents,
                           core_columns_t *request, bool full_names)
{
    core_cell_t *cells = NULL;
    int rc = core_read_begin(&r->ctx, res, ents, request, full_names, &cells);
    if (rc == 0) {
        write_response(r, res, ents, cells);
        http__respond(r, 200, "application/json");
    }
    core_read_end(&r->ctx);
    return rc;
}

/* A body http__feast_read_decode() took. Returns: as the route; CORE_DECLINED when an entity
 * column is a request field (typed by the catalog: jansson's path does that), or when the core
 * could not parse the list (it never happens: the decoder checked it). */
static int read_decoded(http_req_t *r, http__feast_read_t *fr)
{
    core_ctx_t *ctx = &r->ctx;
    /* Request data among the entities (Feast's SDK, on-demand views): typed by the catalog on
     * jansson's path; declined before anything is resolved twice. */
    for (size_t c = 0; c < fr->entities.n_cols; c++) {
        bool skip = false;
        if (request_field_type((void *)ctx->catalog, fr->entities.names[c], &skip) !=
            CATALOG_DTYPE_INVALID)
            return CORE_DECLINED;
    }
    /* As jansson's path says it, before the list is resolved. */
    if (fr->list.kind == CORE_LIST_FEATURES && fr->n_features > ctx->limits->max_features)
        return core_fail(ctx, -E2BIG, FEAST_TOO_MANY_FEATURES, fr->n_features,
                         ctx->limits->max_features);
    if (fr->list.kind == CORE_LIST_SERVICE)
        r->feast_class = "FeatureServiceNotFoundException";
    const core_resolved_t *res = NULL;
    int rc = core_resolve(ctx, &fr->list, &res);
    if (rc != 0)
        return rc;
    r->feast_class = NULL;
    core_columns_limits_t lim = core_entity_limits(ctx);
    rc = core_columns_shape(ctx, "entity", fr->entities.n_cols, fr->entities.names, fr->entity_rows,
                            &lim, &fr->entities.n_rows);
    if (rc < 0)
        return rc;
    core_columns_t request = {0};
    return read_and_answer(r, res, &fr->entities, &request, fr->list.full_names);
}

static int read_json(http_req_t *r);

int http__feast_get_online_features(http_req_t *r)
{
    if (r->h->o.jansson_only)
        return read_json(r);
    http__feast_read_t fr;
    int rc = http__feast_read_decode(&r->arena, (const uint8_t *)r->body, r->len, &fr);
    if (rc < 0)
        return core_fail(&r->ctx, rc, "out of memory");
    if (rc == 0 && (rc = read_decoded(r, &fr)) != CORE_DECLINED)
        return rc;
    return read_json(r);
}

/* Any other body: jansson's tree. */
static int read_json(http_req_t *r)
{
    core_ctx_t *ctx = &r->ctx;
    base_arena_t *a = &r->arena;
    json_t *body = NULL;
    int rc = http__parse_json(r, &body);
    if (rc < 0)
        return rc;
    const json_t *ents_j = NULL, *feats = NULL, *svc = NULL, *full = NULL, *req_j = NULL;
    if ((rc = member(r, body, "entities", JSON_OBJECT, true, &ents_j)) < 0 ||
        (rc = member(r, body, "request_context", JSON_OBJECT, false, &req_j)) < 0 ||
        (rc = member(r, body, "features", JSON_ARRAY, false, &feats)) < 0 ||
        (rc = member(r, body, "feature_service", JSON_STRING, false, &svc)) < 0 ||
        (rc = member(r, body, "full_feature_names", JSON_TRUE, false, &full)) < 0)
        goto out;

    core_feature_list_t list = {.kind = CORE_LIST_NONE,
                                .full_names = full != NULL && json_is_true(full)};
    if (svc != NULL) {
        /* The service wins over features, as in Feast. */
        list.kind = CORE_LIST_SERVICE;
        list.service = json_string_value(svc);
        list.service_len = json_string_length(svc);
        r->feast_class = "FeatureServiceNotFoundException";
    } else if (feats != NULL) {
        size_t n = json_array_size(feats);
        if (n > ctx->limits->max_features) {
            rc = core_fail(ctx, -E2BIG, FEAST_TOO_MANY_FEATURES, n, ctx->limits->max_features);
            goto out;
        }
        const char **refs = base_arena_calloc(a, n + 1, sizeof *refs);
        size_t *lens = base_arena_calloc(a, n + 1, sizeof *lens);
        if (refs == NULL || lens == NULL) {
            rc = core_fail(ctx, -ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *s = json_array_get(feats, i);
            if (!json_is_string(s)) {
                rc = core_fail(ctx, -EINVAL, "features[%zu]: want a \"view:feature\" string", i);
                goto out;
            }
            refs[i] = json_string_value(s);
            lens[i] = json_string_length(s);
        }
        list.kind = CORE_LIST_FEATURES;
        list.n_refs = n;
        list.refs = refs;
        list.ref_lens = lens;
        if (base_wire_strings(a, refs, lens, n, &list.key, &list.key_len) < 0) {
            rc = core_fail(ctx, -ENOMEM, "out of memory");
            goto out;
        }
    }
    const core_resolved_t *res = NULL;
    rc = core_resolve(ctx, &list, &res);
    if (rc < 0)
        goto out;
    r->feast_class = NULL;
    core_columns_limits_t lim = core_entity_limits(ctx);
    core_columns_t ents;
    /* Feast's SDK sends request data among the entities: such a column (not a join key of the
     * read) is typed as its request field, as in request_context. */
    entity_types_t et = {res, ctx->catalog};
    rc = columns(r, ents_j, "entity", &lim, entity_field_type, &et, &ents);
    if (rc < 0)
        goto out;
    core_columns_t request = {0};
    if (req_j != NULL && (rc = columns(r, req_j, "request_context", &lim, request_field_type,
                                       (void *)ctx->catalog, &request)) < 0)
        goto out;
    rc = read_and_answer(r, res, &ents, &request, list.full_names);
out:
    json_decref(body);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Writes                                                                                      */

/* The event_timestamp column of a df, one per row (absent: now). Feast's remote client also
 * sends "created" (ignored). Returns: 0 and *ts (NULL when absent); -EINVAL. */
static int event_times(http_req_t *r, const json_t *df, size_t rows, int64_t **ts)
{
    const json_t *col = json_object_get(df, "event_timestamp");
    *ts = NULL;
    if (col == NULL)
        return 0;
    if (!json_is_array(col) || json_array_size(col) != rows)
        return core_fail(&r->ctx, -EINVAL,
                         "df column 'event_timestamp': want one time per row (%zu)", rows);
    int64_t *t = base_arena_array(&r->arena, rows + 1, sizeof *t);
    if (t == NULL)
        return core_fail(&r->ctx, -ENOMEM, "out of memory");
    int64_t now = store_now_us();
    for (size_t i = 0; i < rows; i++) {
        const json_t *j = json_array_get(col, i);
        if (json_is_null(j)) {
            t[i] = now;
        } else if (json_is_number(j)) {
            /* Seconds since the epoch; beyond int64 microseconds (about 292,000 years) is no
             * time at all. */
            double sec = json_number_value(j);
            if (!(fabs(sec) < 9.2e12))
                return core_fail(&r->ctx, -EINVAL,
                                 "df column 'event_timestamp' row %zu: %g seconds is out of range",
                                 i, sec);
            t[i] = (int64_t)(sec * 1e6);
        } else if (!json_is_string(j) ||
                   base_parse_time(json_string_value(j), json_string_length(j), &t[i]) < 0) {
            /* Feast's client sends naive ISO times ("2024-05-01T12:00:00.123456"): UTC. */
            char buf[64];
            const char *s = json_is_string(j) ? json_string_value(j) : "";
            size_t n = strlen(s);
            if (n == 0 || n + 1 >= sizeof buf)
                return core_fail(&r->ctx, -EINVAL,
                                 "df column 'event_timestamp', row %zu: want an RFC 3339 time", i);
            snprintf(buf, sizeof buf, "%sZ", s);
            if (base_parse_time(buf, n + 1, &t[i]) < 0)
                return core_fail(&r->ctx, -EINVAL,
                                 "df column 'event_timestamp', row %zu: want an RFC 3339 time, "
                                 "got '%.40s'",
                                 i, s);
        }
        if (t[i] == 0)
            t[i] = now;
    }
    *ts = t;
    return 0;
}

/* A df column's dtype for view v: its join key's or feature's; the timestamps are skipped;
 * others keep their JSON type (the core then names the column it does not know). */
static catalog_dtype_t df_type(void *arg, const char *column, bool *skip)
{
    const catalog_view_t *v = arg;
    if (strcmp(column, "event_timestamp") == 0 || strcmp(column, "created") == 0 ||
        strcmp(column, "created_timestamp") == 0) {
        *skip = true;
        return CATALOG_DTYPE_INVALID;
    }
    for (size_t k = 0; k < v->n_join_keys; k++) {
        if (strcmp(v->join_keys[k].name, column) == 0)
            return v->join_keys[k].dtype;
    }
    for (size_t f = 0; f < v->n_features; f++) {
        if (strcmp(v->features[f].name, column) == 0)
            return v->features[f].dtype;
    }
    return CATALOG_DTYPE_INVALID;
}

/* A push writes only what each view has: other df columns are left out for it. */
static catalog_dtype_t push_type(void *arg, const char *column, bool *skip)
{
    catalog_dtype_t t = df_type(arg, column, skip);
    if (!*skip && t == CATALOG_DTYPE_INVALID)
        *skip = true;
    return t;
}

typedef struct write_req {
    http_req_t *r;
} write_req_t;

static void write_done(void *arg, int rc, const core_write_result_t *res)
{
    write_req_t *w = arg;
    http_req_t *r = w->r;
    if (rc == 0) {
        char n[32];
        snprintf(n, sizeof n, "%llu", (unsigned long long)res->written);
        http__header(r, "fstore-rows-written", n);
        if (res->sequence > 0) {
            snprintf(n, sizeof n, "%llu", (unsigned long long)res->sequence);
            http__header(r, "fstore-sequence", n);
        }
        /* Feast's handlers return None: FastAPI answers JSON null. */
        http__puts(&r->out, "null");
        http__respond(r, 200, "application/json");
    }
    http__complete(r, rc);
}

int http__feast_write(http_req_t *r)
{
    core_ctx_t *ctx = &r->ctx;
    json_t *body = NULL;
    int rc = http__parse_json(r, &body);
    if (rc < 0)
        return rc;
    const json_t *name = NULL, *df = NULL;
    if ((rc = member(r, body, "feature_view_name", JSON_STRING, true, &name)) < 0 ||
        (rc = member(r, body, "df", JSON_OBJECT, true, &df)) < 0)
        goto out;
    const catalog_view_t *v = NULL;
    core_columns_limits_t lim;
    rc = core_write_view(ctx, json_string_value(name), &v, &lim);
    if (rc < 0) {
        /* As Feast's get_feature_view() says it. */
        if (rc == -ENOENT) {
            r->feast_class = "FeatureViewNotFoundException";
            core_fail(ctx, rc, "Feature view %.200s does not exist in project %.200s",
                      json_string_value(name), catalog_project(ctx->catalog));
        }
        goto out;
    }
    core_columns_t cols;
    rc = columns(r, df, "df", &lim, df_type, (void *)v, &cols);
    int64_t *ts = NULL;
    if (rc == 0)
        rc = event_times(r, df, cols.n_rows, &ts);
    write_req_t *w = base_arena_alloc(&r->arena, sizeof *w);
    if (rc == 0 && w == NULL)
        rc = core_fail(ctx, -ENOMEM, "out of memory");
    if (rc < 0)
        goto out;
    w->r = r;
    rc =
        core_write(ctx, v, &cols, ts, ts != NULL ? cols.n_rows : 0, STORE_OP_UPSERT, write_done, w);
    if (rc == CORE_ASYNC) {
        rc = HTTP_SUSPENDED;
    } else if (rc == 0) {
        http__puts(&r->out, "null");
        http__respond(r, 200, "application/json");
    }
out:
    json_decref(body);
    return rc;
}

int http__feast_push(http_req_t *r)
{
    core_ctx_t *ctx = &r->ctx;
    base_arena_t *a = &r->arena;
    json_t *body = NULL;
    int rc = http__parse_json(r, &body);
    if (rc < 0)
        return rc;
    const json_t *name = NULL, *df = NULL, *to = NULL;
    if ((rc = member(r, body, "push_source_name", JSON_STRING, true, &name)) < 0 ||
        (rc = member(r, body, "df", JSON_OBJECT, true, &df)) < 0 ||
        (rc = member(r, body, "to", JSON_STRING, false, &to)) < 0)
        goto out;
    /* "online" and "online_and_offline" are one write: a view that keeps history records
     * every online write in it. "offline": its history only (serve --history). */
    const char *dest = to != NULL ? json_string_value(to) : "online";
    bool offline = strcmp(dest, "offline") == 0;
    if (strcmp(dest, "online") != 0 && strcmp(dest, "online_and_offline") != 0 && !offline) {
        /* Feast raises a ValueError here, which its server answers 500 with the message alone
         * as a JSON string (an exception that is not a FeastError has no class body). */
        char msg[200];
        snprintf(msg, sizeof msg,
                 "%.40s is not a supported push format. Please specify one of these ['online', "
                 "'offline', 'online_and_offline'].",
                 dest);
        http__json_str(&r->out, msg, strlen(msg));
        http__respond(r, 500, "application/json");
        rc = 0;
        goto out;
    }
    /* Every online view version fed by this push source ("" is a view's "none": no source
     * has that name). */
    const char *src = json_string_value(name);
    size_t n_views = 0;
    for (size_t i = 0; src[0] != '\0' && i < catalog_view_count(ctx->catalog); i++) {
        const catalog_view_t *v = catalog_view_at(ctx->catalog, i);
        n_views += v->online && strcmp(v->push_source, src) == 0;
    }
    if (n_views == 0) {
        r->feast_class = "PushSourceNotFoundException";
        rc = core_fail(ctx, -EINVAL, "Unable to find push source '%.200s'.", src);
        goto out;
    }
    const catalog_view_t **views = base_arena_calloc(a, n_views, sizeof *views);
    core_columns_t *cols = base_arena_calloc(a, n_views, sizeof *cols);
    if (views == NULL || cols == NULL) {
        rc = core_fail(ctx, -ENOMEM, "out of memory");
        goto out;
    }
    size_t k = 0;
    int64_t *ts = NULL;
    for (size_t i = 0; i < catalog_view_count(ctx->catalog) && rc == 0; i++) {
        const catalog_view_t *v = catalog_view_at(ctx->catalog, i);
        if (!v->online || strcmp(v->push_source, src) != 0)
            continue;
        core_columns_limits_t lim;
        char ref[CATALOG_MAX_NAME + 16];
        snprintf(ref, sizeof ref, "%s@v%u", v->name, (unsigned)v->version);
        rc = core_write_view(ctx, ref, &views[k], &lim);
        if (rc == 0)
            rc = columns(r, df, "df", &lim, push_type, (void *)v, &cols[k]);
        if (rc == 0 && ts == NULL)
            rc = event_times(r, df, cols[k].n_rows, &ts);
        k++;
    }
    write_req_t *w = base_arena_alloc(a, sizeof *w);
    if (rc == 0 && w == NULL)
        rc = core_fail(ctx, -ENOMEM, "out of memory");
    if (rc < 0)
        goto out;
    w->r = r;
    rc = core_write_views(ctx, views, cols, n_views, ts, ts != NULL ? cols[0].n_rows : 0,
                          offline ? STORE_OP_HISTORY : STORE_OP_UPSERT, write_done, w);
    if (rc == CORE_ASYNC) {
        rc = HTTP_SUSPENDED;
    } else if (rc == 0) {
        http__puts(&r->out, "null");
        http__respond(r, 200, "application/json");
    }
out:
    json_decref(body);
    return rc;
}
