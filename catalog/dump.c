/* catalog/dump.c - canonical YAML: one document that loads back into an equal catalog. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"

/*
 * Canonical means: a fixed key order, every string double-quoted and escaped, numbers in their
 * shortest round-trip form, optional keys left out when they hold their default, and service
 * references written pinned (view@vN:feature), so the digest of a dump only changes when the
 * catalog's meaning does. Reloading a dump must give back the same dump, byte for byte.
 */

typedef struct buf {
    char *p;
    size_t len, cap;
    bool nomem;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->nomem)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap < 4096 ? 4096 : b->cap;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->nomem = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(buf_t *b, const char *fmt, ...) CATALOG__PRINTF(2, 3);

static void putf(buf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void indent(buf_t *b, int level)
{
    for (int i = 0; i < level; i++)
        put(b, "  ", 2);
}

/* A YAML double-quoted scalar. Bytes >= 0x80 pass through: catalog strings are UTF-8. */
static void quoted(buf_t *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"':
            put(b, "\\\"", 2);
            break;
        case '\\':
            put(b, "\\\\", 2);
            break;
        case '\n':
            put(b, "\\n", 2);
            break;
        case '\t':
            put(b, "\\t", 2);
            break;
        case '\r':
            put(b, "\\r", 2);
            break;
        default:
            if (ch < 0x20 || ch == 0x7f) {
                putf(b, "\\x%02x", ch);
            } else if (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] == 0x85) {
                /* YAML reads NEL, LS and PS as line breaks even inside quotes: escape them. */
                puts_(b, "\\N");
                i += 1;
            } else if (ch == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                       ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
                puts_(b, (unsigned char)s[i + 2] == 0xa8 ? "\\L" : "\\P");
                i += 2;
            } else if (ch == 0xef && i + 2 < n && (unsigned char)s[i + 1] == 0xbb &&
                       (unsigned char)s[i + 2] == 0xbf) {
                puts_(b, "\\uFEFF");
                i += 2;
            } else {
                put(b, (const char *)&ch, 1);
            }
        }
    }
    put(b, "\"", 1);
}

static void qstr(buf_t *b, const char *s)
{
    quoted(b, s, strlen(s));
}

/* "key: "value"" on its own line, left out when empty. */
static void str_line(buf_t *b, int level, const char *key, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return;
    indent(b, level);
    putf(b, "%s: ", key);
    qstr(b, s);
    put(b, "\n", 1);
}

static void tags(buf_t *b, int level, const catalog_tag_t *t, size_t n)
{
    if (n == 0)
        return;
    indent(b, level);
    puts_(b, "tags:\n");
    for (size_t i = 0; i < n; i++) {
        indent(b, level + 1);
        qstr(b, t[i].key);
        puts_(b, ": ");
        qstr(b, t[i].value);
        put(b, "\n", 1);
    }
}

static void number(buf_t *b, double d)
{
    if (isnan(d))
        puts_(b, ".nan");
    else if (isinf(d))
        puts_(b, d < 0 ? "-.inf" : ".inf");
    else {
        char tmp[48];
        catalog__format_double(d, tmp, sizeof tmp);
        puts_(b, tmp);
    }
}

static void scalar(buf_t *b, const catalog_value_t *v)
{
    switch (v->type) {
    case CATALOG_DTYPE_STRING:
        quoted(b, (const char *)v->u.bytes.data, v->u.bytes.len);
        break;
    case CATALOG_DTYPE_BYTES: {
        size_t need = BASE_BASE64_LEN(v->u.bytes.len) + 1;
        char *enc = malloc(need);
        if (enc == NULL) {
            b->nomem = true;
            return;
        }
        enc[base_base64_encode(v->u.bytes.data, v->u.bytes.len, enc)] = '\0';
        puts_(b, "\"b64:");
        puts_(b, enc);
        puts_(b, "\"");
        free(enc);
        break;
    }
    case CATALOG_DTYPE_INT32:
        putf(b, "%" PRId32, v->u.i32);
        break;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        putf(b, "%" PRId64, v->u.i64);
        break;
    case CATALOG_DTYPE_DOUBLE:
        number(b, v->u.f64);
        break;
    case CATALOG_DTYPE_FLOAT: {
        if (isnan(v->u.f32) || isinf(v->u.f32)) {
            number(b, (double)v->u.f32);
        } else {
            char tmp[48];
            catalog__format_float(v->u.f32, tmp, sizeof tmp);
            puts_(b, tmp);
        }
        break;
    }
    case CATALOG_DTYPE_BOOL:
        puts_(b, v->u.b ? "true" : "false");
        break;
    default:
        puts_(b, "null");
        break;
    }
}

/* Values as flow: a scalar, or [a, b] for lists. */
static void value(buf_t *b, const catalog_value_t *v)
{
    if (!catalog_dtype_is_list(v->type)) {
        scalar(b, v);
        return;
    }
    put(b, "[", 1);
    for (size_t i = 0; i < v->u.list.n; i++) {
        catalog_value_t item;
        catalog_list_item(v, i, &item);
        if (i > 0)
            put(b, ", ", 2);
        scalar(b, &item);
    }
    put(b, "]", 1);
}

static void validation(buf_t *b, int level, const catalog_feature_t *f)
{
    const catalog_validation_t *r = &f->validation;
    if (!r->not_null && !r->has_min && !r->has_max && r->n_allowed == 0 && r->max_length < 0 &&
        r->pattern == NULL)
        return;
    indent(b, level);
    puts_(b, "validation:\n");
    if (r->not_null) {
        indent(b, level + 1);
        puts_(b, "not_null: true\n");
    }
    if (r->has_min) {
        indent(b, level + 1);
        puts_(b, "min: ");
        number(b, r->min);
        put(b, "\n", 1);
    }
    if (r->has_max) {
        indent(b, level + 1);
        puts_(b, "max: ");
        number(b, r->max);
        put(b, "\n", 1);
    }
    if (r->n_allowed > 0) {
        indent(b, level + 1);
        puts_(b, "allowed_values: [");
        for (size_t i = 0; i < r->n_allowed; i++) {
            if (i > 0)
                put(b, ", ", 2);
            scalar(b, &r->allowed_values[i]);
        }
        puts_(b, "]\n");
    }
    if (r->max_length >= 0) {
        indent(b, level + 1);
        putf(b, "max_length: %lld\n", (long long)r->max_length);
    }
    if (r->pattern != NULL) {
        indent(b, level + 1);
        puts_(b, "pattern: ");
        qstr(b, r->pattern);
        put(b, "\n", 1);
    }
}

static void dump_features(buf_t *b, const catalog_view_t *v);

static void dump_view(buf_t *b, const catalog_t *c, size_t i)
{
    const catalog_view_t *v = &c->views[i];
    bool highest = i + 1 == c->n_views || strcmp(c->views[i + 1].name, v->name) != 0;
    puts_(b, "  - name: ");
    qstr(b, v->name);
    putf(b, "\n    version: %" PRIu32 "\n", v->version);
    /* Only a default that differs from "the highest" needs saying. */
    if (v->is_default && !highest)
        puts_(b, "    default: true\n");
    if (v->n_entities > 0) {
        puts_(b, "    entities: [");
        for (size_t e = 0; e < v->n_entities; e++) {
            if (e > 0)
                put(b, ", ", 2);
            qstr(b, v->entities[e]->name);
        }
        puts_(b, "]\n");
    }
    if (v->ttl_seconds > 0) {
        char ttl[32];
        catalog__format_duration(v->ttl_seconds, ttl, sizeof ttl);
        putf(b, "    ttl: %s\n", ttl);
    }
    if (!v->online)
        puts_(b, "    online: false\n");
    if (v->history) {
        char ret[32];
        catalog__format_duration(v->history_retention_s, ret, sizeof ret);
        putf(b, "    offline:\n      retention: %s\n", ret);
    }
    str_line(b, 2, "description", v->description);
    str_line(b, 2, "owner", v->owner);
    str_line(b, 2, "push_source", v->push_source);
    tags(b, 2, v->tags, v->n_tags);
    if (v->lineage_source[0] != '\0' || v->lineage_transformation[0] != '\0') {
        puts_(b, "    lineage:\n");
        str_line(b, 3, "source", v->lineage_source);
        str_line(b, 3, "transformation", v->lineage_transformation);
    }
    dump_features(b, v);
}

static void dump_features(buf_t *b, const catalog_view_t *v)
{
    puts_(b, "    features:\n");
    for (size_t f = 0; f < v->n_features; f++) {
        const catalog_feature_t *ft = &v->features[f];
        puts_(b, "      - name: ");
        qstr(b, ft->name);
        putf(b, "\n        dtype: %s\n", catalog_dtype_name(ft->dtype));
        if (ft->expression != NULL)
            str_line(b, 4, "expression", ft->expression);
        if (ft->has_default) {
            puts_(b, "        default: ");
            value(b, &ft->default_value);
            put(b, "\n", 1);
        }
        validation(b, 4, ft);
        str_line(b, 4, "description", ft->description);
        tags(b, 4, ft->tags, ft->n_tags);
    }
}

static void dump_odfv(buf_t *b, const catalog_t *c, size_t i)
{
    const catalog_view_t *v = &c->odfvs[i];
    const catalog_on_demand_t *od = v->on_demand;
    bool highest = i + 1 == c->n_odfvs || strcmp(c->odfvs[i + 1].name, v->name) != 0;
    puts_(b, "  - name: ");
    qstr(b, v->name);
    putf(b, "\n    version: %" PRIu32 "\n", v->version);
    if (v->is_default && !highest)
        puts_(b, "    default: true\n");
    puts_(b, "    sources: [");
    for (size_t k = 0; k < od->n_views; k++) {
        if (k > 0)
            put(b, ", ", 2);
        putf(b, "\"%s@v%" PRIu32 "\"", od->views[k]->name, od->views[k]->version);
    }
    for (size_t k = 0; k < od->n_requests; k++) {
        if (k > 0 || od->n_views > 0)
            put(b, ", ", 2);
        qstr(b, od->requests[k]->name);
    }
    puts_(b, "]\n");
    str_line(b, 2, "description", v->description);
    str_line(b, 2, "owner", v->owner);
    tags(b, 2, v->tags, v->n_tags);
    dump_features(b, v);
}

static void dump_model(buf_t *b, const catalog_model_t *m)
{
    puts_(b, "  - name: ");
    qstr(b, m->name);
    putf(b, "\n    version: %" PRId64 "\n", m->version);
    str_line(b, 2, "version_label", m->version_label);
    str_line(b, 2, "feature_service", m->service->name);
    if (m->n_entity_inputs > 0) {
        puts_(b, "    entity_inputs:\n");
        for (size_t i = 0; i < m->n_entity_inputs; i++) {
            puts_(b, "      ");
            qstr(b, m->entity_inputs[i].input);
            puts_(b, ": ");
            qstr(b, m->entity_inputs[i].join_key);
            put(b, "\n", 1);
        }
    }
    putf(b, "    on_missing: %s\n", m->on_missing == CATALOG_ON_MISSING_ZERO ? "zero" : "error");
    if (m->has_upstream) {
        const catalog_upstream_t *u = &m->upstream;
        puts_(b, "    upstream:\n");
        str_line(b, 3, "target", u->target);
        str_line(b, 3, "model_name", u->model_name);
        str_line(b, 3, "signature_name", u->signature_name);
        if (u->timeout_ms > 0)
            putf(b, "      timeout_ms: %" PRIu32 "\n", u->timeout_ms);
        putf(b, "      keep_entity_inputs: %s\n", u->keep_entity_inputs ? "true" : "false");
        if (u->tls)
            puts_(b, "      tls: true\n");
    }
}

int catalog__dump(const catalog_t *c, char **out, size_t *len)
{
    buf_t b = {NULL, 0, 0, false};
    puts_(&b, "# fstore canonical catalog\nproject: ");
    qstr(&b, c->project);
    put(&b, "\n", 1);
    if (c->n_entities > 0)
        puts_(&b, "entities:\n");
    for (size_t i = 0; i < c->n_entities; i++) {
        const catalog_entity_t *e = &c->entities[i];
        puts_(&b, "  - name: ");
        qstr(&b, e->name);
        put(&b, "\n", 1);
        str_line(&b, 2, "description", e->description);
        puts_(&b, "    join_keys:\n");
        for (size_t k = 0; k < e->n_join_keys; k++) {
            puts_(&b, "      - name: ");
            qstr(&b, e->join_keys[k].name);
            putf(&b, "\n        type: %s\n", catalog_dtype_name(e->join_keys[k].dtype));
        }
        tags(&b, 2, e->tags, e->n_tags);
    }
    if (c->n_views > 0)
        puts_(&b, "feature_views:\n");
    for (size_t i = 0; i < c->n_views; i++)
        dump_view(&b, c, i);
    if (c->n_requests > 0)
        puts_(&b, "request_sources:\n");
    for (size_t i = 0; i < c->n_requests; i++) {
        const catalog_request_source_t *r = &c->requests[i];
        puts_(&b, "  - name: ");
        qstr(&b, r->name);
        put(&b, "\n", 1);
        str_line(&b, 2, "description", r->description);
        puts_(&b, "    schema:\n");
        for (size_t f = 0; f < r->n_fields; f++) {
            puts_(&b, "      - name: ");
            qstr(&b, r->fields[f].name);
            putf(&b, "\n        dtype: %s\n", catalog_dtype_name(r->fields[f].dtype));
        }
    }
    if (c->n_odfvs > 0)
        puts_(&b, "on_demand_feature_views:\n");
    for (size_t i = 0; i < c->n_odfvs; i++)
        dump_odfv(&b, c, i);
    if (c->n_services > 0)
        puts_(&b, "feature_services:\n");
    for (size_t i = 0; i < c->n_services; i++) {
        const catalog_service_t *s = &c->services[i];
        puts_(&b, "  - name: ");
        qstr(&b, s->name);
        put(&b, "\n", 1);
        str_line(&b, 2, "description", s->description);
        puts_(&b, "    features:\n");
        for (size_t f = 0; f < s->n_features; f++) {
            const catalog_feature_ref_t *r = &s->features[f];
            putf(&b, "      - \"%s@v%" PRIu32 ":%s\"\n", r->view->name, r->view->version,
                 r->feature->name);
        }
    }
    if (c->n_models > 0)
        puts_(&b, "models:\n");
    for (size_t i = 0; i < c->n_models; i++)
        dump_model(&b, &c->models[i]);
    if (b.nomem || b.p == NULL) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int catalog_dump_yaml(const catalog_t *c, char **out, size_t *len)
{
    return catalog__dump(c, out, len);
}
