/* cli/verify.c - `fstore verify`: every record of a data directory checked against its
 * checksum. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: fstore verify --data-dir DIR [--json] [--max-keys N]\n"
               "\n"
               "Reads every record of the data directory in one read snapshot: each view\n"
               "version's rows and history against their checksums (which cover the entity key\n"
               "and every byte of the record), the change feed's entries for their layout; the\n"
               "store's metadata is walked, not checked (it has no checksums).\n"
               "Prints per database the records read and the damaged ones, with the first\n"
               "damaged keys (their join-key values when the applied catalog has the view).\n"
               "A server reads a damaged record as INVALID, never as a value; writing the row\n"
               "again repairs it, or rebuild the replica (a snapshot, a peer, the log). Safe\n"
               "while a server is serving DIR.\n"
               "\n"
               "flags:\n"
               "  -d, --data-dir DIR   data directory (env FSTORE_DATA_DIR)\n"
               "      --json           one JSON document\n"
               "      --max-keys N     damaged keys listed per database (default 10)\n"
               "  -h, --help           this help\n"
               "\n"
               "exit status: 0 every record intact, 1 damage found or the walk failed, 2 usage\n"
               "error\n");
}

typedef struct out {
    bool json;
    size_t max_keys;
    catalog_t *cat; /* the applied catalog, to name keys (NULL: hex only) */
    json_t *dbs;
    json_t *keys;  /* the current database's damaged keys, up to max_keys */
    size_t listed; /* the current database's damaged keys seen */
    uint64_t records, damaged, broken;
} out_t;

/* The join-key values of a damaged key, as "name=value, ..." (empty when they cannot be named). */
static void key_text(const out_t *o, const store_verify_db_t *db, const uint8_t *key, size_t len,
                     char *buf, size_t cap)
{
    buf[0] = '\0';
    const catalog_view_t *v = NULL;
    if (o->cat == NULL || db->view == NULL ||
        catalog_find_view(o->cat, db->view, db->version, &v) < 0 || v->n_join_keys > 16)
        return;
    catalog_value_t vals[16];
    if (store_decode_key(v, key, len, vals) < 0)
        return;
    size_t at = 0;
    for (size_t k = 0; k < v->n_join_keys && at < cap; k++) {
        json_t *j = cli__value_json(&vals[k]);
        char *t = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        at += (size_t)snprintf(buf + at, cap - at, "%s%s=%s", k ? ", " : "", v->join_keys[k].name,
                               t != NULL ? t : "?");
        free(t);
        json_decref(j);
    }
}

static void on_damaged(void *arg, const store_verify_db_t *db, const uint8_t *key, size_t len,
                       int64_t event_ts_us)
{
    out_t *o = arg;
    if (key == NULL || o->listed++ >= o->max_keys)
        return; /* (key NULL: the database's error, printed with its line) */
    char hex[2 * STORE_MAX_KEY + 1] = "", named[512], when[40] = "";
    for (size_t i = 0; i < len && i < STORE_MAX_KEY; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    key_text(o, db, key, len, named, sizeof named);
    if (event_ts_us != 0)
        base_format_time(event_ts_us, when, sizeof when);
    json_t *k = json_pack("{s:s}", "key_hex", hex);
    if (named[0])
        json_object_set_new(k, "key", json_string(named));
    if (when[0])
        json_object_set_new(k, "event_timestamp", json_string(when));
    json_array_append_new(o->keys, k);
}

static void on_db(void *arg, const store_verify_db_t *db)
{
    out_t *o = arg;
    o->records += db->records;
    o->damaged += db->damaged;
    o->broken += db->error != NULL;
    if (o->json) {
        json_t *d = json_pack("{s:s, s:I, s:I, s:o}", "database", db->name, "records",
                              (json_int_t)db->records, "damaged", (json_int_t)db->damaged,
                              "damaged_keys", o->keys);
        if (db->error != NULL)
            json_object_set_new(d, "error", json_string(db->error));
        json_array_append_new(o->dbs, d);
    } else {
        printf("%s records=%llu damaged=%llu%s%s\n", db->name, (unsigned long long)db->records,
               (unsigned long long)db->damaged, db->error != NULL ? " walk stopped: " : "",
               db->error != NULL ? db->error : "");
        size_t i;
        json_t *k;
        json_array_foreach(o->keys, i, k)
        {
            const char *named = json_string_value(json_object_get(k, "key"));
            const char *when = json_string_value(json_object_get(k, "event_timestamp"));
            printf("  damaged: key %s%s%s%s%s%s\n",
                   json_string_value(json_object_get(k, "key_hex")), named ? " (" : "",
                   named ? named : "", named ? ")" : "", when ? " at " : "", when ? when : "");
        }
        if (o->listed > o->max_keys)
            printf("  ... and %zu more\n", o->listed - o->max_keys);
        json_decref(o->keys);
    }
    o->keys = json_array(); /* the next database's (the document took this one) */
    o->listed = 0;
}

int cli_verify(int argc, char **argv)
{
    const char *dir = NULL;
    out_t o = {.max_keys = 10};
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &dir, CLI_ENV | CLI_REQUIRED},
        {"json", 0, CLI_FLAG, &o.json, 0},
        {"max-keys", 0, CLI_SIZE, &o.max_keys, 0, 0, 100000},
    };
    const cli_cmd_t cmd = {"verify", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    store_options_t so = {.dir = dir, .read_only = true};
    store_t *s = NULL;
    if (cli__open_store("verify", &so, false, &s) < 0)
        return 1;
    if (store_applied_catalog(s, &o.cat) < 0)
        o.cat = NULL;
    o.dbs = json_array();
    o.keys = json_array();
    int rc = store_verify(s, on_damaged, on_db, &o);
    catalog_unref(o.cat);
    store_close(s);
    json_decref(o.keys);
    if (rc < 0) {
        json_decref(o.dbs);
        fprintf(stderr, "fstore verify: %s: %s\n", dir, strerror(-rc));
        return 1;
    }
    bool sound = o.damaged == 0 && o.broken == 0;
    if (o.json) {
        cli__print_json(json_pack("{s:o, s:I, s:I, s:b}", "databases", o.dbs, "records",
                                  (json_int_t)o.records, "damaged", (json_int_t)o.damaged, "intact",
                                  sound));
    } else {
        json_decref(o.dbs);
        printf("%s: %llu records, %llu damaged%s\n", sound ? "intact" : "DAMAGED",
               (unsigned long long)o.records, (unsigned long long)o.damaged,
               o.broken ? "; LMDB could not walk some databases to their end" : "");
    }
    return sound ? 0 : 1;
}
