/* cdc/cdc.h - change data capture: a store's history, as it changes, into PostgreSQL tables. */
#ifndef CDC_CDC_H
#define CDC_CDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "catalog/catalog.h"
#include "storage/store.h"

/*
 * `fstore cdc` follows the change feed of a data directory that keeps history (store_changes():
 * every history entry written, with a position that only grows; on a replica of the
 * replication log the position is the log's sequence, so any replica with history can feed
 * the same tables; `fstore cdc --replication` keeps such a replica itself and follows the
 * stream) and writes the entries into PostgreSQL, one table per view version:
 *
 *   <view>_v<version> (<join keys>, event_timestamp timestamptz, deleted boolean, <features>,
 *                      fstore_position bigint, fstore_position_index integer,
 *                      fstore_written_at timestamptz,
 *                      PRIMARY KEY (<join keys>, event_timestamp))
 *
 * typed from the catalog (INT64 bigint, INT32 integer, FLOAT real, DOUBLE double precision,
 * BOOL boolean, STRING text, BYTES bytea, UNIX_TIMESTAMP timestamptz, lists as arrays), and the
 * position reached in fstore_cdc_positions (source, position, position_index), updated in the
 * same PostgreSQL transaction as the rows (and only ever forward): a follower killed at any
 * point resumes where the last commit left, and rows are upserted by their primary key, so
 * nothing is missing or doubled. One follower per source name (an advisory lock). A follower
 * that falls behind by more than a view's history retention misses what gc dropped meanwhile,
 * as the store does. A row holds the entry as it stands when read (an entry rewritten at the same
 * time is written again, over itself); a delete is a row with deleted = true and null features.
 */

typedef struct cdc cdc_t;

#define CDC_DEFAULT_BATCH_ROWS 10000u

typedef struct cdc_options {
    const char *data_dir; /* a data directory that keeps history (serve --history) */
    store_t *store;       /* or a store this process has open (borrowed; data_dir unused): the
                             replica `fstore cdc --replication` keeps of the log */
    const char *conninfo; /* libpq's: postgresql://user@host:port/db or key=value pairs */
    const char *source;   /* this follower's name in fstore_cdc_positions; NULL: "fstore" */
    size_t batch_rows;    /* changes per PostgreSQL transaction; 0: CDC_DEFAULT_BATCH_ROWS */
} cdc_options_t;

/*
 * Opens the data directory (read-only: the server keeps running), or takes o->store, and
 * connects.
 * Returns: 0 and *out; -ENOENT (no store, or no catalog applied yet), -ENOTSUP (the store keeps
 *          no history), -ECONNREFUSED (PostgreSQL refused or is unreachable), -EBUSY (another
 *          follower with this source holds its advisory lock), -ENOMEM, store errors; err says
 *          why.
 * Ownership: *out is closed with cdc_close().
 */
int cdc_open(const cdc_options_t *o, cdc_t **out, char *err, size_t cap);
/* Disconnects and closes the store. Accepts NULL. */
void cdc_close(cdc_t *c);

/*
 * Plans the tables against PostgreSQL's, like `fstore apply`: a table for every view version
 * with history that has none, a column for every feature added since; a column whose type
 * differs, or a table that is not fstore's, is breaking. Prints one line per change on out
 * ("+ create table ...", "~ add column ...", "! ..."). With apply, runs the safe plan (in one
 * transaction) when nothing is breaking.
 * Returns: 0; -EPERM (breaking changes: nothing applied); -EIO (a PostgreSQL error); err says
 *          why.
 */
int cdc_plan(cdc_t *c, bool apply, FILE *out, char *err, size_t cap);

/*
 * One batch: at most batch_rows changes after the recorded position, written with the new
 * position in one PostgreSQL transaction. Call cdc_plan() with apply first. When the store's
 * catalog changed since cdc_open(), nothing is read and *reopen is set: close and open again
 * (and plan) to follow it. A change of a view version without history in the catalog (torn
 * down, or no longer keeping it) is passed over.
 * Returns: 0 and *rows (0: caught up); -EIO (PostgreSQL failed or went away: nothing of the
 *          batch was written; try again, after reconnecting); -EINVAL (PostgreSQL refused the
 *          data or the table: trying again will not help); store errors; err says why.
 */
int cdc_step(cdc_t *c, size_t *rows, bool *reopen, char *err, size_t cap);

/* The position recorded in PostgreSQL (0, 0 before the first batch). */
void cdc_position(const cdc_t *c, uint64_t *position, uint32_t *index);

/* ------------------------------------------------------------------------------------------ */
/* PostgreSQL text forms (pg_text.c), for COPY ... FROM STDIN (text format)                     */

/* The column type of a catalog type ("bigint", "double precision[]", ...). */
const char *cdc_pg_type(catalog_dtype_t t);
/* The same as PostgreSQL's format_type() prints it ("timestamp with time zone[]"). */
const char *cdc_pg_type_formatted(catalog_dtype_t t);
/* Writes v in COPY's text format (escaped; \N for a null) to f. Returns: 0, -EINVAL (a type
 * with no column form). */
int cdc_copy_value(FILE *f, const catalog_value_t *v);
/* Writes microseconds since the epoch as a timestamptz literal (base_format_time()'s RFC 3339;
 * \N outside years 1 to 9999, as for UNIX_TIMESTAMP values out of that range). */
void cdc_copy_time(FILE *f, int64_t us);

#endif /* CDC_CDC_H */
