/* http/sagemaker.c - SageMaker's /invocations: rows in, the same rows with features out. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_int.h"

/*
 * fstore as the feature-enrichment container of a SageMaker inference pipeline: the request's
 * rows carry a model binding's entity inputs (and anything else the next container needs);
 * the answer is the same rows with the binding's features appended, in the Accept format, for
 * the next container. The binding comes from X-Amzn-SageMaker-Custom-Attributes (model=NAME,
 * optionally version=N or label=L, comma-separated) or FSTORE_SAGEMAKER_MODEL.
 *   application/json: {"instances": [{...}, ...]} -> {"instances": [{..., f1: v, ...}, ...]}
 *                     {"inputs": {k: [...], ...}} -> {"inputs": {k: [...], ..., f1: [...]}}
 *   text/csv:         one row per line, the entity inputs first in the binding's order, then
 *                     anything; each line comes back with the features appended (lists as JSON
 *                     arrays in quotes)
 * A binding with an upstream sends the enriched rows on to its model server, as Predict does,
 * and answers the model's outputs: TF Serving's {"predictions": [...]} (or {"outputs": ...} for
 * columns), or for CSV one line per row of the outputs' values.
 */

/* Does the media type at p (up to its end, ';' or ',') name type, case aside? "text/csv;
 * charset=utf-8" is text/csv; "application/jsonlines" is not application/json. */
static bool media_is(const char *p, const char *type)
{
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(type);
    if (strncasecmp(p, type, n) != 0)
        return false;
    p += n;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0' || *p == ';' || *p == ',';
}

static bool is_json(const char *ct)
{
    return ct == NULL || ct[0] == '\0' || media_is(ct, "application/json");
}

static bool is_csv(const char *ct)
{
    return ct != NULL && media_is(ct, "text/csv");
}

/* Does an Accept header take type ("text/csv")? As RFC 9110 says: the most specific of its
 * comma-separated ranges that matches decides (the type itself, then its major type with any
 * subtype, then any type), and q=0 there refuses; no header, or an empty one, takes anything. */
static bool accepts(const char *accept, const char *type)
{
    if (accept == NULL || accept[0] == '\0')
        return true;
    const char *slash = strchr(type, '/');
    size_t major = slash != NULL ? (size_t)(slash - type) : strlen(type);
    char any_minor[64];
    snprintf(any_minor, sizeof any_minor, "%.*s/*", (int)major, type);
    int best = -1;
    double q = 0.0;
    for (const char *p = accept; p != NULL && *p != '\0'; p = strchr(p, ',')) {
        if (*p == ',')
            p++;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        int spec = media_is(p, type) ? 2 : media_is(p, any_minor) ? 1 : media_is(p, "*/*") ? 0 : -1;
        if (spec > best) {
            best = spec;
            q = http__item_q(p, n);
        }
    }
    return best >= 0 && q > 0.0;
}

/* model=NAME[,version=N][,label=L] in the custom attributes. */
static void attributes(const char *attrs, char *name, size_t cap, core_model_spec_t *spec,
                       char *label, size_t label_cap)
{
    if (attrs == NULL)
        return;
    const char *p = attrs;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (eq != NULL) {
            size_t kl = (size_t)(eq - p), vl = n - kl - 1;
            if (kl == 5 && memcmp(p, "model", 5) == 0 && vl < cap) {
                memcpy(name, eq + 1, vl);
                name[vl] = '\0';
            } else if (kl == 7 && memcmp(p, "version", 7) == 0) {
                spec->has_version = true;
                spec->version = strtoll(eq + 1, NULL, 10);
            } else if (kl == 5 && memcmp(p, "label", 5) == 0 && vl < label_cap) {
                memcpy(label, eq + 1, vl);
                label[vl] = '\0';
                spec->label = label;
            }
        }
        p += n;
    }
}

/* The tensor row of the request's row i: a binding without entity inputs reads one row, which
 * every request row gets. */
static size_t row_of(const core_predict_t *p, size_t i)
{
    return p->model->n_entity_inputs == 0 ? 0 : i;
}

/* One row's features as JSON members ("f": value, ...), after others unless first. */
static void members(http_buf_t *b, const core_predict_t *p, size_t i, bool first)
{
    size_t r = row_of(p, i);
    for (size_t o = 0; o < p->n_out; o++) {
        if (!first || o > 0)
            http__puts(b, ", ");
        http__json_str(b, p->names[o], p->name_lens[o]);
        http__puts(b, ": ");
        http__tensor_row(b, &p->tensors[o], r, false);
    }
}

static int answer_json(http_req_t *r, const json_t *body, const core_predict_t *p)
{
    http_buf_t *b = &r->out;
    const json_t *inst = json_object_get(body, "instances");
    if (inst != NULL) {
        http__puts(b, "{\"instances\": [");
        for (size_t i = 0; i < json_array_size(inst); i++) {
            const json_t *row = json_array_get(inst, i);
            if (i > 0)
                http__puts(b, ", ");
            if (json_is_object(row)) {
                /* The row as it came, then the features. */
                char *s = json_dumps(row, JSON_COMPACT);
                if (s == NULL)
                    return core_fail(&r->ctx, -ENOMEM, "out of memory");
                http__put(b, s, strlen(s) - 1); /* without its closing brace */
                free(s);
                members(b, p, i, json_object_size(row) == 0);
                http__putc(b, '}');
            } else {
                /* A bare value of the one entity input (http__predict() refused it
                 * otherwise). */
                http__putc(b, '{');
                const char *in = p->model->entity_inputs[0].input;
                http__json_str(b, in, strlen(in));
                http__puts(b, ": ");
                char *s = json_dumps(row, JSON_COMPACT | JSON_ENCODE_ANY);
                if (s == NULL)
                    return core_fail(&r->ctx, -ENOMEM, "out of memory");
                http__puts(b, s);
                free(s);
                members(b, p, i, false);
                http__putc(b, '}');
            }
        }
        http__puts(b, "]}");
    } else {
        const json_t *inputs = json_object_get(body, "inputs");
        char *s = json_dumps(inputs, JSON_COMPACT);
        if (s == NULL)
            return core_fail(&r->ctx, -ENOMEM, "out of memory");
        http__puts(b, "{\"inputs\": ");
        size_t n = strlen(s);
        http__put(b, s, n - 1);
        free(s);
        for (size_t o = 0; o < p->n_out; o++) {
            if (o > 0 || json_object_size(inputs) > 0)
                http__puts(b, ", ");
            http__json_str(b, p->names[o], p->name_lens[o]);
            http__puts(b, ": [");
            for (size_t i = 0; i < p->ents.n_rows; i++) {
                if (i > 0)
                    http__puts(b, ", ");
                http__tensor_row(b, &p->tensors[o], row_of(p, i), false);
            }
            http__putc(b, ']');
        }
        http__puts(b, "}}");
    }
    http__respond(r, 200, "application/json");
    return 0;
}

/* A CSV cell for a value: numbers as they are, strings as their text, bytes as base64, lists
 * as JSON arrays; quoted when they must be. */
static void csv_cell(http_buf_t *b, const core_tensor_t *t, size_t r)
{
    if (!t->list && t->elem == CATALOG_DTYPE_STRING) {
        const catalog_bytes_t *v = &t->v.bytes[r];
        http__csv_text(b, (const char *)v->data, v->len);
        return;
    }
    if (!t->list && t->elem == CATALOG_DTYPE_BYTES) {
        http__csv_base64(b, t->v.bytes[r].data, t->v.bytes[r].len);
        return;
    }
    http_buf_t v = {0};
    http__tensor_row(&v, t, r, false);
    if (v.oom)
        b->oom = true;
    else
        http__csv_text(b, v.p, v.len);
    http__buf_free(&v);
}

/* The CSV body's records, as they came (echoed with the features appended). */
typedef struct csv_rows {
    size_t n, cap;
    const char **text; /* [n]: a record's bytes in the body, without its line end */
    size_t *len;       /* [n] */
} csv_rows_t;

/* The CSV body's records (RFC 4180: quoted fields may hold commas, quotes and newlines) and
 * their first fields (the entity inputs, unquoted), as JSON strings that the join keys' types
 * read (CATALOG_JSON_TEXT). Empty lines are skipped. */
static int csv_inputs(http_req_t *r, const catalog_model_t *m, json_t **inputs, csv_rows_t *rows)
{
    size_t k_n = m->n_entity_inputs;
    json_t *obj = json_object();
    json_t **cols = base_arena_calloc(&r->arena, k_n + 1, sizeof *cols);
    /* Fields are unquoted in place: a copy, so that each record is echoed as sent. */
    char *buf = base_arena_alloc(&r->arena, r->len + 1);
    if (obj == NULL || cols == NULL || buf == NULL) {
        json_decref(obj);
        return core_fail(&r->ctx, -ENOMEM, "out of memory");
    }
    memcpy(buf, r->body, r->len);
    for (size_t k = 0; k < k_n; k++) {
        cols[k] = json_array();
        json_object_set_new(obj, m->entity_inputs[k].input, cols[k]);
    }
    base_csv_t c = {buf, buf + r->len, 1};
    memset(rows, 0, sizeof *rows);
    int rc = 0;
    while (c.p < c.end) {
        if (*c.p == '\n' || (*c.p == '\r' && c.p + 1 < c.end && c.p[1] == '\n')) {
            c.p += *c.p == '\r' ? 2 : 1;
            c.line++;
            continue;
        }
        size_t line = c.line;
        const char *start = r->body + (c.p - buf);
        int more = 1;
        for (size_t k = 0; k < k_n; k++) {
            char *f = NULL;
            size_t len = 0;
            more = more == 1 ? base_csv_field(&c, &f, &len) : 0;
            if (more == -2) {
                rc = core_fail(&r->ctx, -EINVAL, "line %zu: unterminated or misplaced quote", line);
                goto fail;
            }
            if (more < 0 || len == 0 || (more == 0 && k + 1 < k_n)) {
                rc = core_fail(&r->ctx, -EINVAL,
                               "line %zu: want the %zu entity inputs (%s, ...) first, none empty",
                               line, k_n, m->entity_inputs[0].input);
                goto fail;
            }
            if (json_array_append_new(cols[k], json_stringn(f, len)) < 0) {
                rc = core_fail(&r->ctx, -EINVAL, "line %zu: entity input '%s' is not UTF-8 text",
                               line, m->entity_inputs[k].input);
                goto fail;
            }
        }
        /* The rest of the record: carried through as sent. */
        while (more == 1) {
            char *f;
            size_t len;
            more = base_csv_field(&c, &f, &len);
            if (more == -2) {
                rc = core_fail(&r->ctx, -EINVAL, "line %zu: unterminated or misplaced quote", line);
                goto fail;
            }
        }
        const char *stop = r->body + (c.p - buf);
        if (stop > start && stop[-1] == '\n')
            stop--;
        if (stop > start && stop[-1] == '\r')
            stop--;
        /* Refused while scanning: each record costs a JSON value per input. */
        if (rows->n >= r->ctx.limits->max_entities) {
            rc = core_fail(&r->ctx, -E2BIG,
                           "the CSV body has over %zu rows; the limit is %zu (--max-entities)",
                           r->ctx.limits->max_entities, r->ctx.limits->max_entities);
            goto fail;
        }
        if (rows->n == rows->cap) {
            size_t cap = rows->cap;
            if (base_arena_grow(&r->arena, (void **)&rows->text, &cap, rows->n + 1,
                                sizeof *rows->text) < 0 ||
                base_arena_grow(&r->arena, (void **)&rows->len, &rows->cap, rows->n + 1,
                                sizeof *rows->len) < 0) {
                rc = core_fail(&r->ctx, -ENOMEM, "out of memory");
                goto fail;
            }
        }
        rows->text[rows->n] = start;
        rows->len[rows->n] = (size_t)(stop - start);
        rows->n++;
    }
    if (rows->n == 0) {
        rc = core_fail(&r->ctx, -EINVAL, "the CSV body has no rows");
        goto fail;
    }
    *inputs = obj;
    return 0;
fail:
    json_decref(obj);
    return rc;
}

static int answer_csv(http_req_t *r, const core_predict_t *p, const csv_rows_t *rows)
{
    http_buf_t *b = &r->out;
    for (size_t row = 0; row < rows->n; row++) {
        http__put(b, rows->text[row], rows->len[row]);
        for (size_t o = 0; o < p->n_out; o++) {
            http__putc(b, ',');
            csv_cell(b, &p->tensors[o], row_of(p, row));
        }
        http__putc(b, '\n');
    }
    http__respond(r, 200, "text/csv");
    return 0;
}

/* A 415 or 406: {"error": message}. Returns 0 (answered). */
__attribute__((format(printf, 3, 4))) static int media_error(http_req_t *r, int status,
                                                             const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http__puts(&r->out, "{\"error\": ");
    http__json_str(&r->out, msg, strlen(msg));
    http__putc(&r->out, '}');
    http__respond(r, status, "application/json");
    return 0;
}

int http__invocations(http_req_t *r)
{
    core_ctx_t *ctx = &r->ctx;
    char name[CATALOG_MAX_NAME + 1] = "", label[64] = "";
    core_model_spec_t spec = {0};
    attributes(http__header_in(r, "X-Amzn-SageMaker-Custom-Attributes"), name, sizeof name, &spec,
               label, sizeof label);
    if (name[0] == '\0' && r->h->o.sagemaker_model != NULL)
        snprintf(name, sizeof name, "%s", r->h->o.sagemaker_model);
    if (name[0] == '\0')
        return core_fail(ctx, -EINVAL,
                         "no model binding: set FSTORE_SAGEMAKER_MODEL, or send "
                         "X-Amzn-SageMaker-Custom-Attributes: model=NAME");
    spec.name = name;
    const char *ct = http__header_in(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *accept = http__header_in(r, MHD_HTTP_HEADER_ACCEPT);
    bool csv_in = is_csv(ct);
    if (!csv_in && !is_json(ct))
        return media_error(r, 415,
                           "Unsupported Media Type: %.60s (send application/json or "
                           "text/csv)",
                           ct);
    /* The answer is the request's rows with features appended, so in the request's format:
     * an Accept that takes it (among others, or through a wildcard) is served. */
    const char *own = csv_in ? "text/csv" : "application/json";
    if (!accepts(accept, own)) {
        if (accepts(accept, csv_in ? "application/json" : "text/csv"))
            return media_error(r, 406,
                               "Not Acceptable: %.60s; the answer is the request's rows with "
                               "features appended: ask for the request's own format (Accept %s)",
                               accept, own);
        return media_error(r, 406, "Not Acceptable: %.60s (ask for application/json or text/csv)",
                           accept);
    }
    json_t *body = NULL, *csv = NULL;
    int rc;
    http_predict_in_t in = {0};
    core_predict_t p;
    csv_rows_t rows = {0};
    if (csv_in) {
        const catalog_model_t *m = NULL;
        if ((rc = core_authorize_model(ctx, spec.name)) < 0)
            return rc; /* before the binding is looked at: its inputs are not told */
        rc = catalog_find_model(ctx->catalog, spec.name, spec.has_version ? spec.version : 0,
                                spec.label, &m);
        if (rc < 0)
            return core_fail(ctx, -ENOENT, "model binding '%.128s' not found", spec.name);
        rc = csv_inputs(r, m, &csv, &rows);
        if (rc < 0)
            return rc;
        in.inputs = csv;
        in.text = true;
    } else {
        rc = http__parse_json(r, &body);
        if (rc < 0)
            return rc;
        in.instances = json_object_get(body, "instances");
        in.inputs = json_object_get(body, "inputs");
        if ((in.instances == NULL) == (in.inputs == NULL) ||
            (in.instances != NULL && !json_is_array(in.instances)) ||
            (in.inputs != NULL && !json_is_object(in.inputs))) {
            json_decref(body);
            return core_fail(ctx, -EINVAL,
                             "want {\"instances\": [rows]} or {\"inputs\": {column: [values]}}");
        }
    }
    /* A binding with an upstream answers the model server's outputs instead (passthrough.c). */
    in.output = csv_in                 ? HTTP_OUTPUT_CSV
                : in.instances != NULL ? HTTP_OUTPUT_ROWS
                                       : HTTP_OUTPUT_COLUMNS;
    rc = http__predict(r, &spec, &in, &p);
    if (rc == 0)
        rc = csv_in ? answer_csv(r, &p, &rows) : answer_json(r, body, &p);
    core_read_end(ctx);
    json_decref(body);
    json_decref(csv);
    return rc;
}
