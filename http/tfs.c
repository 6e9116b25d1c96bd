/* http/tfs.c - TensorFlow Serving REST: /v1/models/NAME[...]:predict and model status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"

/*
 * As TF Serving's http_rest_api_handler: POST /v1/models/NAME[/versions/N|/labels/L]:predict
 * with "instances" (rows) answers {"predictions": ...}, with "inputs" (columns) answers
 * {"outputs": ...}; GET /v1/models/NAME[/versions/N|/labels/L] answers the model status. Errors
 * are {"error": "..."} with TF Serving's mapping of status codes (400, 404, 429, 503, 504).
 * A binding with an upstream answers its model server's outputs (passthrough.c).
 */

/* One element of a tensor as TF Serving writes it. */
static void element(http_buf_t *b, const core_tensor_t *t, size_t i, bool b64)
{
    char n[32];
    switch (t->elem) {
    case CATALOG_DTYPE_FLOAT:
        http__tfs_number(b, (double)t->v.f32[i], true);
        break;
    case CATALOG_DTYPE_DOUBLE:
        http__tfs_number(b, t->v.f64[i], false);
        break;
    case CATALOG_DTYPE_INT32:
        snprintf(n, sizeof n, "%d", t->v.i32[i]);
        http__puts(b, n);
        break;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        snprintf(n, sizeof n, "%lld", (long long)t->v.i64[i]);
        http__puts(b, n);
        break;
    case CATALOG_DTYPE_BOOL:
        http__puts(b, t->v.b[i] ? "true" : "false");
        break;
    case CATALOG_DTYPE_BYTES:
        b64 = true;
        /* fallthrough */
    default:
        if (b64) {
            http__puts(b, "{\"b64\": ");
            http__json_base64(b, t->v.bytes[i].data, t->v.bytes[i].len);
            http__putc(b, '}');
        } else {
            http__json_str(b, (const char *)t->v.bytes[i].data, t->v.bytes[i].len);
        }
        break;
    }
}

void http__tensor_row(http_buf_t *b, const core_tensor_t *t, size_t r, bool b64)
{
    if (!t->list) {
        element(b, t, r, b64);
        return;
    }
    http__putc(b, '[');
    for (size_t k = 0; k < t->width; k++) {
        if (k > 0)
            http__puts(b, ", ");
        element(b, t, r * t->width + k, b64);
    }
    http__putc(b, ']');
}

/* Names ending in "_bytes" print their strings as {"b64": ...}, as TF Serving does. */
static bool bytes_alias(const char *name, size_t len)
{
    return len >= 6 && memcmp(name + len - 6, "_bytes", 6) == 0;
}

void http__tensors_json(http_buf_t *b, const core_predict_t *p, bool rows)
{
    size_t n_rows = p->ents.n_rows;
    if (rows) {
        http__puts(b, "{\"predictions\": [");
        for (size_t r = 0; r < n_rows; r++) {
            if (r > 0)
                http__puts(b, ", ");
            if (p->n_out == 1) {
                http__tensor_row(b, &p->tensors[0], r, bytes_alias(p->names[0], p->name_lens[0]));
                continue;
            }
            http__putc(b, '{');
            for (size_t o = 0; o < p->n_out; o++) {
                if (o > 0)
                    http__puts(b, ", ");
                http__json_str(b, p->names[o], p->name_lens[o]);
                http__puts(b, ": ");
                http__tensor_row(b, &p->tensors[o], r, bytes_alias(p->names[o], p->name_lens[o]));
            }
            http__putc(b, '}');
        }
        http__puts(b, "]}");
        return;
    }
    http__puts(b, "{\"outputs\": ");
    if (p->n_out != 1)
        http__putc(b, '{');
    for (size_t o = 0; o < p->n_out; o++) {
        if (p->n_out != 1) {
            if (o > 0)
                http__puts(b, ", ");
            http__json_str(b, p->names[o], p->name_lens[o]);
            http__puts(b, ": ");
        }
        http__putc(b, '[');
        for (size_t r = 0; r < n_rows; r++) {
            if (r > 0)
                http__puts(b, ", ");
            http__tensor_row(b, &p->tensors[o], r, bytes_alias(p->names[o], p->name_lens[o]));
        }
        http__putc(b, ']');
    }
    if (p->n_out != 1)
        http__putc(b, '}');
    http__putc(b, '}');
}

/* /v1/models/NAME[/versions/N|/labels/L][:verb]: *verb is "" without one. */
static int parse_path(http_req_t *r, char *path, core_model_spec_t *spec, const char **verb)
{
    core_ctx_t *ctx = &r->ctx;
    char *name = path + strlen("/v1/models/");
    char *colon = strchr(name, ':');
    *verb = "";
    if (colon != NULL) {
        *colon = '\0';
        *verb = colon + 1;
    }
    char *slash = strchr(name, '/');
    memset(spec, 0, sizeof *spec);
    if (slash != NULL) {
        *slash = '\0';
        char *kind = slash + 1, *val = strchr(kind, '/');
        if (val == NULL || strchr(val + 1, '/') != NULL)
            return core_fail(ctx, -EINVAL, "Malformed request: %.200s", r->url);
        *val++ = '\0';
        if (strcmp(kind, "versions") == 0) {
            char *end = NULL;
            long long v = strtoll(val, &end, 10);
            if (*val == '\0' || *end != '\0' || v < 0)
                return core_fail(ctx, -EINVAL, "Failed to convert version: %.40s", val);
            spec->has_version = true;
            spec->version = v;
        } else if (strcmp(kind, "labels") == 0 && *val != '\0') {
            spec->label = val;
        } else {
            return core_fail(ctx, -EINVAL, "Malformed request: %.200s", r->url);
        }
    }
    if (name[0] == '\0')
        return core_fail(ctx, -EINVAL, "Missing model name in request.");
    spec->name = name;
    return 0;
}

static int status(http_req_t *r, const core_model_spec_t *spec)
{
    const catalog_t *c = r->ctx.catalog;
    http_buf_t *b = &r->out;
    /* Every version of the name, newest first, as TF Serving lists them. */
    int64_t versions[64];
    size_t n = 0;
    for (size_t i = 0; i < catalog_model_count(c) && n < 64; i++) {
        const catalog_model_t *m = catalog_model_at(c, i);
        if (strcmp(m->name, spec->name) != 0)
            continue;
        if ((spec->has_version && m->version != spec->version) ||
            (spec->label != NULL && strcmp(m->version_label, spec->label) != 0))
            continue;
        size_t k = n++;
        while (k > 0 && versions[k - 1] < m->version) {
            versions[k] = versions[k - 1];
            k--;
        }
        versions[k] = m->version;
    }
    if (n == 0) {
        if (spec->label != NULL)
            return core_fail(&r->ctx, -EINVAL, "Unrecognized servable version label: %.80s",
                             spec->label);
        if (spec->has_version)
            return core_fail(&r->ctx, -ENOENT, "Could not find version %lld of model %.128s",
                             (long long)spec->version, spec->name);
        return core_fail(&r->ctx, -ENOENT, "Could not find any versions of model %.128s",
                         spec->name);
    }
    http__puts(b, "{\n \"model_version_status\": [");
    for (size_t i = 0; i < n; i++) {
        http__printf(b,
                     "%s\n  {\n   \"version\": \"%lld\",\n   \"state\": \"AVAILABLE\",\n"
                     "   \"status\": {\n    \"error_code\": \"OK\",\n    \"error_message\": \"\"\n"
                     "   }\n  }",
                     i > 0 ? "," : "", (long long)versions[i]);
    }
    http__puts(b, "\n ]\n}\n");
    http__respond(r, 200, "application/json");
    return 0;
}

int http__tfs(http_req_t *r)
{
    core_ctx_t *ctx = &r->ctx;
    char *path = base_arena_alloc(&r->arena, strlen(r->url) + 1);
    if (path == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    strcpy(path, r->url);
    core_model_spec_t spec;
    const char *verb;
    int rc = parse_path(r, path, &spec, &verb);
    if (rc < 0)
        return rc;
    if (r->route->id == ROUTE_TFS_STATUS) {
        if (verb[0] != '\0' || strstr(r->url, "/metadata") != NULL)
            return core_fail(ctx, -EINVAL, "Malformed request: GET %.200s", r->url);
        return core_authorize_model(&r->ctx, spec.name) < 0 ? -EPERM : status(r, &spec);
    }
    if (strcmp(verb, "predict") != 0)
        return core_fail(ctx,
                         strcmp(verb, "classify") == 0 || strcmp(verb, "regress") == 0 ? -EOPNOTSUPP
                                                                                       : -EINVAL,
                         "Malformed request: POST %.200s (fstore serves :predict)", r->url);
    json_t *body = NULL;
    rc = http__parse_json(r, &body);
    if (rc < 0) {
        /* TF Serving's words for the same failures. */
        if (r->len == 0)
            core_fail(ctx, rc, "JSON Parse error: The document is empty");
        return rc;
    }
    const json_t *inst = json_object_get(body, "instances");
    const json_t *inputs = json_object_get(body, "inputs");
    const json_t *sig = json_object_get(body, "signature_name");
    if (sig != NULL && !json_is_string(sig)) {
        rc = core_fail(ctx, -EINVAL, "'signature_name' key must be a string value.");
    } else if (inst != NULL && inputs != NULL) {
        rc = core_fail(ctx, -EINVAL,
                       "Not formatted correctly expecting only one of 'inputs' or 'instances' "
                       "keys to exist");
    } else if (inst == NULL && inputs == NULL) {
        rc = core_fail(ctx, -EINVAL, "Missing 'inputs' or 'instances' key");
    } else if (inst != NULL && !json_is_array(inst)) {
        rc = core_fail(ctx, -EINVAL, "Excepted 'instances' to be a list/array");
    }
    core_predict_t p;
    if (rc == 0) {
        http_predict_in_t in = {.instances = inst,
                                .inputs = inputs,
                                .signature_name = sig != NULL ? json_string_value(sig) : NULL,
                                .output = inst != NULL ? HTTP_OUTPUT_ROWS : HTTP_OUTPUT_COLUMNS};
        rc = http__predict(r, &spec, &in, &p);
    }
    if (rc == 0) {
        http__tensors_json(&r->out, &p, inst != NULL);
        http__respond(r, 200, "application/json");
    }
    core_read_end(ctx);
    json_decref(body);
    return rc;
}
