/* server/cmd_get.c - `fstore get`: read online features from a data directory. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "catalog/catalog.h"
#include "server/cli_int.h"
#include "storage/store.h"

#define MAX_ENTITIES 1024
#define MAX_FEATURES 4096

static void usage(FILE *f)
{
    fprintf(
        f, "usage: fstore get --data-dir DIR (--features REFS | --feature-service NAME)\n"
           "                  [--entity KEY=VALUE[,KEY=VALUE...]]... [--json]\n"
           "\n"
           "Reads features of one or more entities from DIR with the catalog applied there,\n"
           "and prints one line per (entity, feature): value, status (PRESENT, NULL_VALUE,\n"
           "NOT_FOUND, OUTSIDE_MAX_AGE) and the row's event time.\n"
           "\n"
           "Each --entity is one entity (one row): KEY=VALUE pairs separated by commas give\n"
           "every join key the requested views need, e.g. --entity driver_id=1001 or\n"
           "--entity driver_id=1001,city=Paris. Repeat --entity for more entities. Values\n"
           "cannot contain commas. Entityless views need no --entity.\n"
           "\n"
           "flags:\n"
           "  -d, --data-dir DIR           data directory (env FSTORE_DATA_DIR)\n"
           "  -f, --features REFS          view:feature or view@vN:feature, comma-separated;\n"
           "                               view:* for every feature of a view; repeatable\n"
           "  -s, --feature-service NAME   every feature of a feature service\n"
           "  -e, --entity PAIRS           one entity's join keys (see above); repeatable\n"
           "      --json                   print JSON: {\"rows\":[{\"entity\":{...},\"features\":\n"
           "                               {REF:{\"value\",\"status\",\"event_timestamp\"}}}]}\n"
           "  -h, --help                   this help\n"
           "\n"
           "exit status: 0 read (missing rows are not errors), 1 failed, 2 usage error\n");
}

static const char *status_name(store_status_t st)
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

static void format_ts(int64_t us, char *buf, size_t cap)
{
    time_t sec = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
    int64_t frac = us - (int64_t)sec * 1000000;
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac != 0)
        snprintf(buf + n, cap - n, ".%06" PRId64 "Z", frac);
    else
        snprintf(buf + n, cap - n, "Z");
}

/* A decoded value as JSON (strings that are not UTF-8 and bytes print as catalog formats them). */
static json_t *value_json(const catalog_value_t *v)
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
                catalog_value_t e = {.type = catalog_dtype_element(v->type)};
                switch (e.type) {
                case CATALOG_DTYPE_INT32:
                    e.u.i32 = v->u.list.v.i32[i];
                    break;
                case CATALOG_DTYPE_INT64:
                case CATALOG_DTYPE_UNIX_TIMESTAMP:
                    e.u.i64 = v->u.list.v.i64[i];
                    break;
                case CATALOG_DTYPE_FLOAT:
                    e.u.f32 = v->u.list.v.f32[i];
                    break;
                case CATALOG_DTYPE_DOUBLE:
                    e.u.f64 = v->u.list.v.f64[i];
                    break;
                case CATALOG_DTYPE_BOOL:
                    e.u.b = v->u.list.v.b[i];
                    break;
                default:
                    e.u.bytes = v->u.list.v.bytes[i];
                    break;
                }
                json_array_append_new(arr, value_json(&e));
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

typedef struct pair {
    char *key;
    char *value;
} pair_t;

typedef struct entity {
    pair_t pairs[16];
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

/* The join key values view v needs, from entity e. Returns: 0, or -ENOENT / -EINVAL with a
 * message in err. */
static int entity_keys(const catalog_view_t *v, const entity_t *e, catalog_value_t *keys, char *err,
                       size_t cap)
{
    for (size_t k = 0; k < v->n_join_keys; k++) {
        const catalog_join_key_t *jk = &v->join_keys[k];
        const char *text = NULL;
        for (size_t i = 0; i < e->n && text == NULL; i++) {
            if (strcmp(e->pairs[i].key, jk->name) == 0)
                text = e->pairs[i].value;
        }
        if (text == NULL) {
            snprintf(err, cap, "view %s@v%u needs join key %s", v->name, v->version, jk->name);
            return -ENOENT;
        }
        if (jk->dtype == CATALOG_DTYPE_INT64 || jk->dtype == CATALOG_DTYPE_INT32) {
            char *end;
            errno = 0;
            long long x = strtoll(text, &end, 10);
            if (errno != 0 || end == text || *end != '\0') {
                snprintf(err, cap, "join key %s: '%s' is not an integer", jk->name, text);
                return -EINVAL;
            }
            keys[k].type = CATALOG_DTYPE_INT64;
            keys[k].u.i64 = x;
        } else {
            keys[k].type = jk->dtype;
            keys[k].u.bytes.data = (const uint8_t *)text;
            keys[k].u.bytes.len = strlen(text);
        }
    }
    return 0;
}

typedef struct want {
    catalog_feature_ref_t ref;
    char name[2 * CATALOG_MAX_NAME + 16];
} want_t;

static int add_ref(want_t *wants, size_t *n, const catalog_view_t *v, const catalog_feature_t *f)
{
    if (*n == MAX_FEATURES)
        return -E2BIG;
    want_t *w = &wants[(*n)++];
    w->ref.view = v;
    w->ref.feature = f;
    if (v->is_default)
        snprintf(w->name, sizeof w->name, "%s:%s", v->name, f->name);
    else
        snprintf(w->name, sizeof w->name, "%s@v%u:%s", v->name, v->version, f->name);
    return 0;
}

/* Resolves one comma-separated --features argument. Returns: 0, or 1 after printing why. */
static int resolve_refs(const catalog_t *cat, char *list, want_t *wants, size_t *n)
{
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        size_t len = strlen(tok);
        if (len > 2 && strcmp(tok + len - 2, ":*") == 0) {
            tok[len - 2] = '\0';
            const catalog_view_t *v;
            if (catalog_find_view_ref(cat, tok, &v) != 0) {
                fprintf(stderr, "fstore get: no feature view '%s' in the applied catalog\n", tok);
                return 1;
            }
            for (size_t i = 0; i < v->n_features; i++) {
                if (add_ref(wants, n, v, &v->features[i]) < 0)
                    return 1;
            }
            continue;
        }
        catalog_feature_ref_t ref;
        int rc = catalog_find_feature(cat, tok, len, &ref);
        if (rc != 0) {
            fprintf(stderr, "fstore get: %s '%s' (want view:feature or view@vN:feature)\n",
                    rc == -ENOENT ? "no such feature" : "malformed reference", tok);
            return 1;
        }
        if (add_ref(wants, n, ref.view, ref.feature) < 0)
            return 1;
    }
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
    char *features[64];
    size_t n_features;
    const char *service;
    char *entities[MAX_ENTITIES];
    size_t n_entities;
    bool json;
} opts_t;

static int run(const opts_t *o)
{
    store_t *s = NULL;
    store_reader_t *r = NULL;
    catalog_t *cat = NULL;
    want_t *wants = calloc(MAX_FEATURES, sizeof *wants);
    entity_t *ents = calloc(o->n_entities + 1, sizeof *ents);
    json_t *rows = o->json ? json_array() : NULL;
    size_t n_wants = 0, n_ents = o->n_entities;
    int status = 1;
    if (wants == NULL || ents == NULL)
        goto out;
    store_options_t so = {.dir = o->dir, .read_only = true};
    int rc = server__cli_open_store("get", &so, &s);
    if (rc < 0) {
        goto out;
    }
    if (store_applied_catalog(s, &cat) != 0) {
        fprintf(stderr, "fstore get: no catalog applied to %s (run fstore apply)\n", o->dir);
        goto out;
    }
    for (size_t i = 0; i < o->n_features; i++) {
        if (resolve_refs(cat, o->features[i], wants, &n_wants) != 0)
            goto out;
    }
    if (o->service != NULL) {
        const catalog_service_t *svc;
        if (catalog_find_service(cat, o->service, &svc) != 0) {
            fprintf(stderr, "fstore get: no feature service '%s'\n", o->service);
            goto out;
        }
        for (size_t i = 0; i < svc->n_features; i++) {
            if (add_ref(wants, &n_wants, svc->features[i].view, svc->features[i].feature) < 0)
                goto out;
        }
    }
    for (size_t i = 0; i < n_ents; i++) {
        if (parse_entity(o->entities[i], &ents[i]) != 0) {
            fprintf(stderr, "fstore get: --entity wants KEY=VALUE[,KEY=VALUE...]\n");
            status = 2;
            goto out;
        }
    }
    if (n_ents == 0)
        n_ents = 1; /* entityless views: one row without keys */

    rc = store_reader_new(s, &r);
    if (rc == 0)
        rc = store_read_begin(r);
    if (rc < 0) {
        fprintf(stderr, "fstore get: %s\n", strerror(-rc));
        goto out;
    }
    int64_t now = store_now_us();
    bool header = false;
    for (size_t e = 0; e < n_ents; e++) {
        char etext[512];
        entity_text(&ents[e], etext, sizeof etext);
        json_t *jfeat = o->json ? json_object() : NULL;
        const catalog_view_t *last = NULL;
        store_row_t row = {0};
        for (size_t i = 0; i < n_wants; i++) {
            const catalog_view_t *v = wants[i].ref.view;
            if (v != last) {
                /* One lookup per (entity, view), however many of its features are asked for. */
                catalog_value_t keys[64];
                uint8_t key[STORE_MAX_KEY];
                char err[256];
                if (v->n_join_keys > 64 || entity_keys(v, &ents[e], keys, err, sizeof err) != 0) {
                    fprintf(stderr, "fstore get: entity %s: %s\n", etext, err);
                    json_decref(jfeat);
                    goto out;
                }
                int n = store_encode_key(v, keys, v->n_join_keys, key, sizeof key);
                if (n < 0) {
                    fprintf(stderr, "fstore get: entity %s: %s for view %s\n", etext,
                            n == -ERANGE ? "key out of range" : "bad key", v->name);
                    json_decref(jfeat);
                    goto out;
                }
                rc = store_read_row(r, v, key, (size_t)n, &row);
                if (rc < 0) {
                    fprintf(stderr, "fstore get: view %s@v%u: %s\n", v->name, v->version,
                            rc == -ENOENT ? "no data here (offline, or not applied)"
                                          : strerror(-rc));
                    json_decref(jfeat);
                    goto out;
                }
                last = v;
            }
            const uint8_t *wire;
            size_t len;
            store_status_t st =
                store_row_feature(&row, v, wants[i].ref.feature->index, now, &wire, &len);
            catalog_value_t val = {.type = CATALOG_DTYPE_NULL};
            void *scratch = NULL;
            if (len > 0) {
                scratch = malloc(16 * len + 64);
                if (scratch == NULL ||
                    catalog_value_decode(wire, len, &val, scratch, 16 * len + 64) != 0)
                    val.type = CATALOG_DTYPE_NULL;
            }
            char ts[64] = "-";
            if (row.found)
                format_ts(row.event_ts_us, ts, sizeof ts);
            if (o->json) {
                json_t *jv =
                    json_pack("{s:o, s:s}", "value", value_json(&val), "status", status_name(st));
                if (row.found)
                    json_object_set_new(jv, "event_timestamp", json_string(ts));
                json_object_set_new(jfeat, wants[i].name, jv);
            } else {
                char text[4096];
                if (!header) {
                    printf("%-24s %-32s %-20s %-15s %s\n", "ENTITY", "FEATURE", "VALUE", "STATUS",
                           "EVENT_TIMESTAMP");
                    header = true;
                }
                if (len > 0)
                    catalog_value_format(&val, text, sizeof text);
                else
                    snprintf(text, sizeof text, "-");
                printf("%-24s %-32s %-20s %-15s %s\n", etext, wants[i].name, text, status_name(st),
                       ts);
            }
            free(scratch);
        }
        if (o->json) {
            json_t *jent = json_object();
            for (size_t i = 0; i < ents[e].n; i++) {
                /* Integer join keys print as numbers, like the values. */
                const char *text = ents[e].pairs[i].value;
                char *end;
                errno = 0;
                long long x = strtoll(text, &end, 10);
                bool is_int = text[0] != '\0' && *end == '\0' && errno == 0;
                json_object_set_new(jent, ents[e].pairs[i].key,
                                    is_int ? json_integer(x) : json_string(text));
            }
            json_array_append_new(rows, json_pack("{s:o, s:o}", "entity", jent, "features", jfeat));
        }
    }
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
    store_read_end(r);
    store_reader_free(r);
    store_close(s);
    catalog_unref(cat);
    json_decref(rows);
    free(wants);
    free(ents);
    return status;
}

int server__cmd_get(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"features", required_argument, NULL, 'f'},
        {"feature-service", required_argument, NULL, 's'},
        {"entity", required_argument, NULL, 'e'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts_t o = {.dir = server__env_or("data-dir", NULL)};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:f:s:e:h", lopts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            o.dir = optarg;
            break;
        case 'f':
            if (o.n_features == sizeof o.features / sizeof o.features[0]) {
                fprintf(stderr, "fstore get: too many --features flags\n");
                return 2;
            }
            o.features[o.n_features++] = optarg;
            break;
        case 's':
            o.service = optarg;
            break;
        case 'e':
            if (o.n_entities == MAX_ENTITIES) {
                fprintf(stderr, "fstore get: at most %d entities\n", MAX_ENTITIES);
                return 2;
            }
            o.entities[o.n_entities++] = optarg;
            break;
        case 'j':
            o.json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o.dir == NULL || optind != argc || (o.n_features == 0) == (o.service == NULL)) {
        usage(stderr);
        return 2;
    }
    return run(&o);
}
