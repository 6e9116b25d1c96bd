/* cdc/cdc.c - following a store's change feed into PostgreSQL (libpq). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/base.h"
#include "cdc/cdc.h"
#include "storage/store.h"

#define POSITIONS "fstore_cdc_positions"
#define PG_NAME_MAX 63 /* NAMEDATALEN - 1 */
#define COPY_CHUNK (1 << 20)
#define MAX_VALUE_SCRATCH (16 * (size_t)STORE_MAX_VALUE + 64)

/* One view version's table and the batch's rows for it, in COPY text. */
typedef struct cdc_table {
    const catalog_view_t *v;
    char name[CATALOG_MAX_NAME + 16]; /* <view>_v<version> */
    char *ident;                      /* name, quoted for SQL (PQescapeIdentifier) */
    char *stage;                      /* its staging table's name, quoted */
    char *columns;                    /* every column, quoted, in COPY's order */
    char *keys;                       /* the primary key's columns, quoted */
    char *copy;                       /* the batch's rows (open_memstream) */
    size_t copy_len;
    FILE *f;
    size_t rows;
    bool staged; /* its staging table exists in this session */
} cdc_table_t;

struct cdc {
    store_t *store;
    bool own_store; /* opened here (else borrowed) */
    store_reader_t *reader;
    catalog_t *cat;
    PGconn *pg;
    char *source;
    size_t batch_rows;
    cdc_table_t *tables;
    size_t n_tables;
    uint64_t pos;
    uint32_t idx;
    uint64_t catalog_hash; /* the store's catalog when opened (store_read_catalog_hash()) */
    void *scratch;
};

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return rc;
}

/* PostgreSQL's message without its trailing newline. */
static const char *pg_error(PGconn *pg)
{
    static _Thread_local char buf[512];
    snprintf(buf, sizeof buf, "%s", PQerrorMessage(pg));
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/* A failed result's errno: -EINVAL for what retrying cannot fix (SQLSTATE classes 22 data,
 * 23 integrity, 42 syntax or a missing object), -EIO for the rest (the connection, a restart:
 * worth trying again). */
static int pg_rc(const PGresult *r)
{
    const char *st = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (st != NULL &&
        (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 || strncmp(st, "42", 2) == 0))
        return -EINVAL;
    return -EIO;
}

/* Checks a result against the status it must have, and clears it. Returns: 0, or as pg_rc()
 * with err set. */
static int check(cdc_t *c, PGresult *r, ExecStatusType ok, char *err, size_t cap)
{
    int rc = PQresultStatus(r) == ok ? 0 : pg_rc(r);
    if (rc < 0)
        fail(err, cap, rc, "PostgreSQL: %s", pg_error(c->pg));
    PQclear(r);
    return rc;
}

/* Runs sql; ok is the status it must end with. Returns: as check(). */
static int exec(cdc_t *c, const char *sql, ExecStatusType ok, char *err, size_t cap)
{
    return check(c, PQexec(c->pg, sql), ok, err, cap);
}

/* s quoted as an identifier, appended to f. Returns: 0, -ENOMEM. */
static int put_ident(cdc_t *c, FILE *f, const char *s)
{
    char *q = PQescapeIdentifier(c->pg, s, strlen(s));
    if (q == NULL)
        return -ENOMEM;
    fputs(q, f);
    PQfreemem(q);
    return 0;
}

/* A table's column lists, in the order COPY text gives them. Returns: 0, -ENOMEM. */
static int table_columns(cdc_t *c, cdc_table_t *t)
{
    const catalog_view_t *v = t->v;
    size_t len;
    FILE *f = open_memstream(&t->keys, &len);
    if (f == NULL)
        return -ENOMEM;
    int rc = 0;
    for (size_t k = 0; k < v->n_join_keys && rc == 0; k++) {
        rc = put_ident(c, f, v->join_keys[k].name);
        fputs(", ", f);
    }
    fputs("event_timestamp", f);
    if (fclose(f) != 0 || rc < 0)
        return -ENOMEM;
    if ((f = open_memstream(&t->columns, &len)) == NULL)
        return -ENOMEM;
    fprintf(f, "%s, deleted", t->keys);
    for (size_t i = 0; i < v->n_features && rc == 0; i++) {
        fputs(", ", f);
        rc = put_ident(c, f, v->features[i].name);
    }
    fputs(", fstore_position, fstore_position_index, fstore_written_at", f);
    return fclose(f) != 0 || rc < 0 ? -ENOMEM : 0;
}

void cdc_position(const cdc_t *c, uint64_t *position, uint32_t *index)
{
    *position = c->pos;
    *index = c->idx;
}

void cdc_close(cdc_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_tables; i++) {
        if (c->tables[i].f != NULL)
            fclose(c->tables[i].f);
        free(c->tables[i].copy);
        PQfreemem(c->tables[i].ident);
        PQfreemem(c->tables[i].stage);
        free(c->tables[i].columns);
        free(c->tables[i].keys);
    }
    free(c->tables);
    if (c->pg != NULL)
        PQfinish(c->pg);
    store_reader_free(c->reader);
    catalog_unref(c->cat);
    if (c->own_store)
        store_close(c->store);
    free(c->source);
    free(c->scratch);
    free(c);
}

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

int cdc_open(const cdc_options_t *o, cdc_t **out, char *err, size_t cap)
{
    cdc_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return fail(err, cap, -ENOMEM, "out of memory");
    c->batch_rows = o->batch_rows > 0 ? o->batch_rows : CDC_DEFAULT_BATCH_ROWS;
    c->source = strdup(o->source != NULL ? o->source : "fstore");
    c->scratch = malloc(MAX_VALUE_SCRATCH);
    int rc = -ENOMEM;
    if (c->source == NULL || c->scratch == NULL) {
        fail(err, cap, rc, "out of memory");
        goto out;
    }
    const char *where = o->store != NULL ? "the replica" : o->data_dir;
    if (o->store != NULL) {
        c->store = o->store;
    } else {
        store_options_t so = {.dir = o->data_dir, .read_only = true};
        if ((rc = store_open(&so, &c->store)) < 0) {
            fail(err, cap, rc, "cannot open %s: %s", o->data_dir, store_strerror(rc));
            goto out;
        }
        c->own_store = true;
    }
    if (!store_keeps_history(c->store)) {
        rc = fail(err, cap, -ENOTSUP,
                  "%s keeps no history: start its server with --history (or fstore apply "
                  "--history)",
                  where);
        goto out;
    }
    if ((rc = store_applied_catalog(c->store, &c->cat)) < 0) {
        fail(err, cap, rc, "no catalog applied to %s", where);
        goto out;
    }
    if ((rc = store_reader_new(c->store, &c->reader)) < 0) {
        fail(err, cap, rc, "store reader: %s", strerror(-rc));
        goto out;
    }
    c->pg = PQconnectdb(o->conninfo);
    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
        rc = fail(err, cap, -ECONNREFUSED, "cannot connect to PostgreSQL: %s",
                  c->pg != NULL ? pg_error(c->pg) : "out of memory");
        goto out;
    }
    /* PostgreSQL's notices ("... already exists, skipping") are not ours to print. */
    PQsetNoticeProcessor(c->pg, quiet, NULL);
    /* Times go in and come out in UTC, text in UTF-8, whatever the server's defaults. */
    if ((rc = exec(c, "SET TIME ZONE 'UTC'", PGRES_COMMAND_OK, err, cap)) < 0 ||
        (rc = exec(c, "SET client_encoding = 'UTF8'", PGRES_COMMAND_OK, err, cap)) < 0)
        goto out;
    /* One follower per source: two would write the same position from different places. */
    const char *lock_params[1] = {c->source};
    PGresult *lr = PQexecParams(c->pg, "SELECT pg_try_advisory_lock(hashtext('fstore_cdc:' || $1))",
                                1, NULL, lock_params, NULL, NULL, 0);
    bool locked = PQresultStatus(lr) == PGRES_TUPLES_OK && PQntuples(lr) == 1 &&
                  strcmp(PQgetvalue(lr, 0, 0), "t") == 0;
    if (PQresultStatus(lr) != PGRES_TUPLES_OK)
        rc = fail(err, cap, -EIO, "PostgreSQL: %s", pg_error(c->pg));
    else if (!locked)
        rc = fail(err, cap, -EBUSY,
                  "another follower with source '%s' is connected to this database "
                  "(--source names each follower)",
                  c->source);
    PQclear(lr);
    if (rc < 0)
        goto out;
    /* The hash of the catalog we follow, as the store records it: its canonical dump's, which
     * is catalog_digest() (the dump of the parsed catalog reproduces the recorded text). A
     * catalog applied since store_open() parsed ours then differs at the first cdc_step(). */
    c->catalog_hash = strtoull(catalog_digest(c->cat), NULL, 16);
    size_t n = 0;
    for (size_t i = 0; i < catalog_view_count(c->cat); i++)
        n += catalog_view_at(c->cat, i)->history;
    c->tables = calloc(n + 1, sizeof *c->tables);
    if (c->tables == NULL) {
        rc = fail(err, cap, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < catalog_view_count(c->cat); i++) {
        const catalog_view_t *v = catalog_view_at(c->cat, i);
        if (!v->history)
            continue;
        cdc_table_t *t = &c->tables[c->n_tables++];
        t->v = v;
        snprintf(t->name, sizeof t->name, "%s_v%u", v->name, (unsigned)v->version);
        char stage[32];
        snprintf(stage, sizeof stage, "fstore_stage_%zu", c->n_tables);
        t->ident = PQescapeIdentifier(c->pg, t->name, strlen(t->name));
        t->stage = PQescapeIdentifier(c->pg, stage, strlen(stage));
        if (t->ident == NULL || t->stage == NULL || table_columns(c, t) < 0) {
            rc = fail(err, cap, -ENOMEM, "out of memory");
            goto out;
        }
    }
    *out = c;
    return 0;
out:
    cdc_close(c);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Tables                                                                                      */

static const char *const reserved[] = {"event_timestamp", "deleted", "fstore_position",
                                       "fstore_position_index", "fstore_written_at"};

/* A column's name quoted for SQL, into buf. */
static const char *quoted(cdc_t *c, const char *name, char *buf, size_t cap)
{
    char *q = PQescapeIdentifier(c->pg, name, strlen(name));
    snprintf(buf, cap, "%s", q != NULL ? q : "\"?\"");
    PQfreemem(q);
    return buf;
}

/* The CREATE TABLE of t, into f. */
static void create_sql(cdc_t *c, const cdc_table_t *t, FILE *f)
{
    char q[2 * CATALOG_MAX_NAME + 8];
    const catalog_view_t *v = t->v;
    fprintf(f, "CREATE TABLE %s (", t->ident);
    for (size_t k = 0; k < v->n_join_keys; k++)
        fprintf(f, "%s %s NOT NULL, ", quoted(c, v->join_keys[k].name, q, sizeof q),
                cdc_pg_type(v->join_keys[k].dtype));
    fputs("event_timestamp timestamptz NOT NULL, deleted boolean NOT NULL", f);
    for (size_t i = 0; i < v->n_features; i++)
        fprintf(f, ", %s %s", quoted(c, v->features[i].name, q, sizeof q),
                cdc_pg_type(v->features[i].dtype));
    fprintf(f,
            ", fstore_position bigint NOT NULL, fstore_position_index integer NOT NULL, "
            "fstore_written_at timestamptz NOT NULL, PRIMARY KEY (%s))",
            t->keys);
}

/* The table's columns as PostgreSQL has them: name -> format_type(). Returns: the result (the
 * caller clears it), NULL on an error. */
static PGresult *columns_of(cdc_t *c, const cdc_table_t *t)
{
    const char *params[1] = {t->name};
    return PQexecParams(c->pg,
                        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
                        "FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid "
                        "WHERE r.relname = $1 AND r.relnamespace = current_schema()::regnamespace "
                        "AND a.attnum > 0 AND NOT a.attisdropped",
                        1, NULL, params, NULL, NULL, 0);
}

static const char *column_type(PGresult *r, const char *name)
{
    for (int i = 0; i < PQntuples(r); i++) {
        if (strcmp(PQgetvalue(r, i, 0), name) == 0)
            return PQgetvalue(r, i, 1);
    }
    return NULL;
}

int cdc_plan(cdc_t *c, bool apply, FILE *out, char *err, size_t cap)
{
    char *sql = NULL;
    size_t sql_len = 0;
    FILE *f = open_memstream(&sql, &sql_len);
    if (f == NULL)
        return fail(err, cap, -ENOMEM, "out of memory");
    fprintf(f, "CREATE TABLE IF NOT EXISTS " POSITIONS
               " (source text PRIMARY KEY, position bigint NOT NULL, position_index integer "
               "NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());\n");
    size_t breaking = 0, changes = 0;
    int rc = 0;
    for (size_t i = 0; i < c->n_tables && rc == 0; i++) {
        cdc_table_t *t = &c->tables[i];
        const catalog_view_t *v = t->v;
        /* PostgreSQL cuts identifiers at 63 bytes: two long names would become one. */
        if (strlen(t->name) > PG_NAME_MAX) {
            fprintf(out, "! %s: a table name over %d bytes (PostgreSQL's limit)\n", t->name,
                    PG_NAME_MAX);
            breaking++;
        }
        for (size_t k = 0; k < v->n_join_keys; k++) {
            if (strlen(v->join_keys[k].name) > PG_NAME_MAX) {
                fprintf(out, "! %s: join key %s: a column name over %d bytes\n", t->name,
                        v->join_keys[k].name, PG_NAME_MAX);
                breaking++;
            }
        }
        for (size_t f2 = 0; f2 < v->n_features; f2++) {
            if (strlen(v->features[f2].name) > PG_NAME_MAX) {
                fprintf(out, "! %s: feature %s: a column name over %d bytes\n", t->name,
                        v->features[f2].name, PG_NAME_MAX);
                breaking++;
            }
            for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++) {
                if (strcmp(v->features[f2].name, reserved[r]) == 0) {
                    fprintf(out, "! %s: feature '%s' has a name the table keeps for itself\n",
                            t->name, reserved[r]);
                    breaking++;
                }
            }
        }
        PGresult *cols = columns_of(c, t);
        if (PQresultStatus(cols) != PGRES_TUPLES_OK) {
            rc = fail(err, cap, -EIO, "PostgreSQL: %s", pg_error(c->pg));
            PQclear(cols);
            break;
        }
        char q[2 * CATALOG_MAX_NAME + 8];
        if (PQntuples(cols) == 0) {
            fprintf(out, "+ create table %s (%zu join keys, %zu features)\n", t->name,
                    v->n_join_keys, v->n_features);
            create_sql(c, t, f);
            fputs(";\n", f);
            changes++;
        } else if (column_type(cols, "fstore_position") == NULL ||
                   column_type(cols, "event_timestamp") == NULL) {
            fprintf(out, "! %s exists and is not fstore's (no fstore_position, event_timestamp)\n",
                    t->name);
            breaking++;
        } else {
            for (size_t k = 0; k < v->n_join_keys; k++) {
                const char *have = column_type(cols, v->join_keys[k].name);
                const char *want = cdc_pg_type_formatted(v->join_keys[k].dtype);
                if (have == NULL || strcmp(have, want) != 0) {
                    fprintf(out, "! %s: join key %s is %s there, the catalog wants %s\n", t->name,
                            v->join_keys[k].name, have != NULL ? have : "missing", want);
                    breaking++;
                }
            }
            for (size_t x = 0; x < v->n_features; x++) {
                const catalog_feature_t *ft = &v->features[x];
                const char *have = column_type(cols, ft->name);
                const char *want = cdc_pg_type_formatted(ft->dtype);
                if (have == NULL) {
                    fprintf(out, "~ %s: add column %s %s\n", t->name, ft->name, want);
                    fprintf(f, "ALTER TABLE %s ADD COLUMN %s %s;\n", t->ident,
                            quoted(c, ft->name, q, sizeof q), cdc_pg_type(ft->dtype));
                    changes++;
                } else if (strcmp(have, want) != 0) {
                    fprintf(out, "! %s: column %s is %s there, the catalog wants %s\n", t->name,
                            ft->name, have, want);
                    breaking++;
                }
            }
        }
        PQclear(cols);
    }
    fclose(f);
    if (rc == 0 && changes == 0 && breaking == 0)
        fprintf(out, "cdc: tables match the catalog (%zu)\n", c->n_tables);
    if (rc == 0 && breaking > 0)
        rc = fail(err, cap, -EPERM,
                  "%zu breaking difference%s between the catalog and PostgreSQL's tables "
                  "(nothing applied): drop or rename the tables, or add a view version",
                  breaking, breaking == 1 ? "" : "s");
    if (rc == 0 && apply) {
        rc = exec(c, "BEGIN", PGRES_COMMAND_OK, err, cap);
        if (rc == 0)
            rc = exec(c, sql, PGRES_COMMAND_OK, err, cap);
        if (rc == 0)
            rc = exec(c, "COMMIT", PGRES_COMMAND_OK, err, cap);
        else {
            char ignore[8];
            exec(c, "ROLLBACK", PGRES_COMMAND_OK, ignore, sizeof ignore);
        }
    }
    free(sql);
    if (rc == 0 && apply) {
        /* Where the last run left off. */
        const char *params[1] = {c->source};
        PGresult *r = PQexecParams(
            c->pg, "SELECT position, position_index FROM " POSITIONS " WHERE source = $1", 1, NULL,
            params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            rc = fail(err, cap, -EIO, "PostgreSQL: %s", pg_error(c->pg));
        else if (PQntuples(r) == 1) {
            c->pos = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
            c->idx = (uint32_t)strtoul(PQgetvalue(r, 0, 1), NULL, 10);
        }
        PQclear(r);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Batches                                                                                     */

typedef struct step {
    cdc_t *c;
    size_t n;
    uint64_t pos;
    uint32_t idx;
    int rc;
    char *err;
    size_t cap;
} step_t;

static cdc_table_t *table_of(cdc_t *c, const char *name, uint32_t version)
{
    for (size_t i = 0; i < c->n_tables; i++) {
        const catalog_view_t *v = c->tables[i].v;
        if (v->version == version && strcmp(v->name, name) == 0)
            return &c->tables[i];
    }
    return NULL;
}

static int on_change(void *arg, const store_change_t *ch)
{
    step_t *s = arg;
    cdc_t *c = s->c;
    if (s->n == c->batch_rows)
        return 1;
    cdc_table_t *t = table_of(c, ch->view, ch->version);
    if (t == NULL) {
        /* Not a view with history in the applied catalog (cdc_step() checked that it is the
         * one we have): torn down, or no longer keeping history. Its change has no table. */
        s->pos = ch->position;
        s->idx = ch->index;
        return 0;
    }
    const catalog_view_t *v = t->v;
    store_row_t row;
    int rc = store_history_row(c->reader, v, ch->key, ch->key_len, ch->event_ts_us, &row);
    if (rc < 0) {
        s->rc = fail(s->err, s->cap, rc, "history read of %s: %s", t->name, store_strerror(rc));
        return 1;
    }
    bool live = row.found && row.event_ts_us == ch->event_ts_us;
    bool gone = row.deleted && row.event_ts_us == ch->event_ts_us;
    s->pos = ch->position;
    s->idx = ch->index;
    if (!live && !gone)
        return 0; /* the entry went to the retention since */
    if (t->f == NULL && (t->f = open_memstream(&t->copy, &t->copy_len)) == NULL) {
        s->rc = fail(s->err, s->cap, -ENOMEM, "out of memory");
        return 1;
    }
    catalog_value_t *keys = c->scratch;
    if (store_decode_key(v, ch->key, ch->key_len, keys) < 0) {
        s->rc =
            fail(s->err, s->cap, -EIO, "%s: a malformed entity key in the change feed", t->name);
        return 1;
    }
    for (size_t k = 0; k < v->n_join_keys; k++) {
        cdc_copy_value(t->f, &keys[k]);
        fputc('\t', t->f);
    }
    cdc_copy_time(t->f, ch->event_ts_us);
    fputs(gone ? "\tt" : "\tf", t->f);
    for (size_t i = 0; i < v->n_features; i++) {
        fputc('\t', t->f);
        const uint8_t *wire = NULL;
        size_t len = 0;
        if (live)
            store_row_feature(&row, v, (uint32_t)i, ch->event_ts_us, &wire, &len);
        catalog_value_t val = {.type = CATALOG_DTYPE_NULL};
        if (len > 0 && catalog_value_decode(wire, len, &val, c->scratch, MAX_VALUE_SCRATCH) < 0) {
            s->rc = fail(s->err, s->cap, -EIO, "%s: a malformed value of feature %s", t->name,
                         v->features[i].name);
            return 1;
        }
        cdc_copy_value(t->f, &val);
    }
    fprintf(t->f, "\t%" PRIu64 "\t%" PRIu32 "\t", ch->position, ch->index);
    cdc_copy_time(t->f, ch->write_ts_us);
    fputc('\n', t->f);
    t->rows++;
    s->n++;
    return 0;
}

/* The batch's rows of t: COPY into a staging table, then upserted by the primary key (the last
 * change of a key in the batch wins). Columns are named everywhere: a column the plan added
 * sits last in the table, wherever the feature is in the catalog. Returns: 0, -EIO, -EINVAL. */
static int flush_table(cdc_t *c, cdc_table_t *t, char *err, size_t cap)
{
    const catalog_view_t *v = t->v;
    char *sql = NULL;
    size_t len = 0;
    int rc = 0;
    if (!t->staged) {
        /* Temporary, emptied at each commit; its own name, never the table's. */
        FILE *f = open_memstream(&sql, &len);
        if (f == NULL)
            return fail(err, cap, -ENOMEM, "out of memory");
        fprintf(f, "CREATE TEMP TABLE IF NOT EXISTS %s (LIKE %s) ON COMMIT DELETE ROWS", t->stage,
                t->ident);
        fclose(f);
        rc = exec(c, sql, PGRES_COMMAND_OK, err, cap);
        free(sql);
        sql = NULL;
        if (rc < 0)
            return rc;
        t->staged = true;
    }
    FILE *f = open_memstream(&sql, &len);
    if (f == NULL)
        return fail(err, cap, -ENOMEM, "out of memory");
    fprintf(f, "COPY %s (%s) FROM STDIN", t->stage, t->columns);
    fclose(f);
    PGresult *r = PQexec(c->pg, sql);
    free(sql);
    sql = NULL;
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return check(c, r, PGRES_COPY_IN, err, cap);
    PQclear(r);
    if (fflush(t->f) != 0)
        return fail(err, cap, -ENOMEM, "out of memory");
    for (size_t off = 0; off < t->copy_len;) {
        size_t n = t->copy_len - off < COPY_CHUNK ? t->copy_len - off : COPY_CHUNK;
        if (PQputCopyData(c->pg, t->copy + off, (int)n) != 1)
            return fail(err, cap, -EIO, "PostgreSQL: %s", pg_error(c->pg));
        off += n;
    }
    if (PQputCopyEnd(c->pg, NULL) != 1)
        return fail(err, cap, -EIO, "PostgreSQL: %s", pg_error(c->pg));
    r = PQgetResult(c->pg);
    rc = check(c, r, PGRES_COMMAND_OK, err, cap);
    while ((r = PQgetResult(c->pg)) != NULL)
        PQclear(r);
    if (rc < 0)
        return rc;
    if ((f = open_memstream(&sql, &len)) == NULL)
        return fail(err, cap, -ENOMEM, "out of memory");
    fprintf(f,
            "INSERT INTO %s (%s) SELECT DISTINCT ON (%s) %s FROM %s ORDER BY %s, "
            "fstore_position DESC, fstore_position_index DESC ON CONFLICT (%s) DO UPDATE SET "
            "deleted = EXCLUDED.deleted",
            t->ident, t->columns, t->keys, t->columns, t->stage, t->keys, t->keys);
    char q[2 * CATALOG_MAX_NAME + 8];
    for (size_t i = 0; i < v->n_features; i++) {
        quoted(c, v->features[i].name, q, sizeof q);
        fprintf(f, ", %s = EXCLUDED.%s", q, q);
    }
    fputs(", fstore_position = EXCLUDED.fstore_position, fstore_position_index = "
          "EXCLUDED.fstore_position_index, fstore_written_at = EXCLUDED.fstore_written_at",
          f);
    fclose(f);
    rc = exec(c, sql, PGRES_COMMAND_OK, err, cap);
    free(sql);
    return rc;
}

static void reset_tables(cdc_t *c)
{
    for (size_t i = 0; i < c->n_tables; i++) {
        cdc_table_t *t = &c->tables[i];
        if (t->f != NULL)
            fclose(t->f);
        free(t->copy);
        t->f = NULL;
        t->copy = NULL;
        t->copy_len = 0;
        t->rows = 0;
    }
}

int cdc_step(cdc_t *c, size_t *rows, bool *reopen, char *err, size_t cap)
{
    *rows = 0;
    *reopen = false;
    step_t s = {.c = c, .pos = c->pos, .idx = c->idx, .err = err, .cap = cap};
    int rc = store_read_begin(c->reader);
    if (rc < 0)
        return fail(err, cap, rc, "store read: %s", strerror(-rc));
    /* A catalog applied since we opened (new views, features, history turned on): open again
     * before reading a change of it. */
    uint64_t hash = 0;
    rc = store_read_catalog_hash(c->reader, &hash);
    if (rc == 0 && hash != c->catalog_hash) {
        store_read_end(c->reader);
        *reopen = true;
        return 0;
    }
    if (rc == 0)
        rc = store_changes(c->reader, c->pos, c->idx, on_change, &s);
    store_read_end(c->reader);
    if (s.rc < 0) {
        reset_tables(c);
        return s.rc;
    }
    if (rc < 0) {
        reset_tables(c);
        return fail(err, cap, rc, "change feed: %s", strerror(-rc));
    }
    if (s.pos == c->pos && s.idx == c->idx) {
        reset_tables(c);
        return 0; /* caught up */
    }
    rc = exec(c, "BEGIN", PGRES_COMMAND_OK, err, cap);
    for (size_t i = 0; i < c->n_tables && rc == 0; i++) {
        if (c->tables[i].rows > 0)
            rc = flush_table(c, &c->tables[i], err, cap);
    }
    if (rc == 0) {
        char p[32], x[16];
        snprintf(p, sizeof p, "%" PRIu64, s.pos);
        snprintf(x, sizeof x, "%" PRIu32, s.idx);
        const char *params[3] = {c->source, p, x};
        PGresult *r = PQexecParams(c->pg,
                                   "INSERT INTO " POSITIONS
                                   " (source, position, position_index) VALUES ($1, $2, $3) "
                                   "ON CONFLICT (source) DO UPDATE SET position = "
                                   "EXCLUDED.position, position_index = EXCLUDED.position_index, "
                                   "updated_at = now() WHERE (" POSITIONS ".position, " POSITIONS
                                   ".position_index) < (EXCLUDED.position, "
                                   "EXCLUDED.position_index)",
                                   3, NULL, params, NULL, NULL, 0);
        rc = check(c, r, PGRES_COMMAND_OK, err, cap);
    }
    if (rc == 0)
        rc = exec(c, "COMMIT", PGRES_COMMAND_OK, err, cap);
    if (rc < 0) {
        char ignore[8];
        exec(c, "ROLLBACK", PGRES_COMMAND_OK, ignore, sizeof ignore);
        for (size_t i = 0; i < c->n_tables; i++)
            c->tables[i].staged = false; /* created in the transaction rolled back */
    }
    reset_tables(c);
    if (rc < 0)
        return rc;
    c->pos = s.pos;
    c->idx = s.idx;
    *rows = s.n;
    return 0;
}
