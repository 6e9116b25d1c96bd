/* cdc/pg_text.c - catalog values in PostgreSQL's COPY text format and column types. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "cdc/cdc.h"

const char *cdc_pg_type(catalog_dtype_t t)
{
    switch (t) {
    case CATALOG_DTYPE_INT32:
        return "integer";
    case CATALOG_DTYPE_INT64:
        return "bigint";
    case CATALOG_DTYPE_FLOAT:
        return "real";
    case CATALOG_DTYPE_DOUBLE:
        return "double precision";
    case CATALOG_DTYPE_BOOL:
        return "boolean";
    case CATALOG_DTYPE_STRING:
        return "text";
    case CATALOG_DTYPE_BYTES:
        return "bytea";
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        return "timestamptz";
    case CATALOG_DTYPE_INT32_LIST:
        return "integer[]";
    case CATALOG_DTYPE_INT64_LIST:
        return "bigint[]";
    case CATALOG_DTYPE_FLOAT_LIST:
        return "real[]";
    case CATALOG_DTYPE_DOUBLE_LIST:
        return "double precision[]";
    case CATALOG_DTYPE_BOOL_LIST:
        return "boolean[]";
    case CATALOG_DTYPE_STRING_LIST:
        return "text[]";
    case CATALOG_DTYPE_BYTES_LIST:
        return "bytea[]";
    case CATALOG_DTYPE_UNIX_TIMESTAMP_LIST:
        return "timestamptz[]";
    default:
        return NULL;
    }
}

const char *cdc_pg_type_formatted(catalog_dtype_t t)
{
    switch (t) {
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        return "timestamp with time zone";
    case CATALOG_DTYPE_UNIX_TIMESTAMP_LIST:
        return "timestamp with time zone[]";
    default:
        return cdc_pg_type(t);
    }
}

/* Years 1 to 9999 (google.protobuf.Timestamp's range, which the store keeps event times in). */
#define MIN_SECONDS (-62135596800LL)
#define MAX_SECONDS 253402300799LL

void cdc_copy_time(FILE *f, int64_t us)
{
    int64_t sec = us / 1000000 - (us % 1000000 < 0);
    if (sec < MIN_SECONDS || sec > MAX_SECONDS) {
        fputs("\\N", f);
        return;
    }
    /* RFC 3339 with four-digit years (PostgreSQL would read "99-01-01" as 1999). */
    char buf[40];
    base_format_time(us, buf, sizeof buf);
    fputs(buf, f);
}

/* COPY text escapes: backslash, and the characters that end a field or a row. */
static void copy_escaped(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '\\':
            fputs("\\\\", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        default:
            fputc(ch, f);
        }
    }
}

static void put_float(FILE *f, double x, int digits)
{
    if (isnan(x))
        fputs("NaN", f);
    else if (isinf(x))
        fputs(x > 0 ? "Infinity" : "-Infinity", f);
    else
        fprintf(f, "%.*g", digits, x);
}

/* One scalar's literal (array elements need quoting on top: quoted). */
static void scalar(FILE *f, const catalog_value_t *v, bool in_array)
{
    switch (v->type) {
    case CATALOG_DTYPE_INT32:
        fprintf(f, "%" PRId32, v->u.i32);
        break;
    case CATALOG_DTYPE_INT64:
        fprintf(f, "%" PRId64, v->u.i64);
        break;
    case CATALOG_DTYPE_FLOAT:
        put_float(f, v->u.f32, 9);
        break;
    case CATALOG_DTYPE_DOUBLE:
        put_float(f, v->u.f64, 17);
        break;
    case CATALOG_DTYPE_BOOL:
        fputc(v->u.b ? 't' : 'f', f);
        break;
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        /* Feast's UNIX_TIMESTAMP counts seconds; outside years 1 to 9999, a null. */
        if (v->u.i64 < MIN_SECONDS || v->u.i64 > MAX_SECONDS) {
            fputs(in_array ? "NULL" : "\\N", f);
            break;
        }
        if (in_array)
            fputc('"', f);
        cdc_copy_time(f, v->u.i64 * 1000000);
        if (in_array)
            fputc('"', f);
        break;
    case CATALOG_DTYPE_STRING:
        if (!in_array) {
            copy_escaped(f, (const char *)v->u.bytes.data, v->u.bytes.len);
            break;
        }
        /* An array element: double-quoted, with " and \ backslashed, then COPY-escaped. */
        fputc('"', f);
        for (size_t i = 0; i < v->u.bytes.len; i++) {
            char ch = (char)v->u.bytes.data[i];
            if (ch == '"' || ch == '\\')
                copy_escaped(f, "\\", 1);
            copy_escaped(f, &ch, 1);
        }
        fputc('"', f);
        break;
    case CATALOG_DTYPE_BYTES:
        /* bytea's hex form, \x..., its backslash escaped for COPY (and quoted in an array,
         * where the backslash is escaped once more). */
        fputs(in_array ? "\"\\\\\\\\x" : "\\\\x", f);
        for (size_t i = 0; i < v->u.bytes.len; i++)
            fprintf(f, "%02x", v->u.bytes.data[i]);
        if (in_array)
            fputc('"', f);
        break;
    default:
        break;
    }
}

int cdc_copy_value(FILE *f, const catalog_value_t *v)
{
    if (v->type == CATALOG_DTYPE_NULL) {
        fputs("\\N", f);
        return 0;
    }
    if (cdc_pg_type(v->type) == NULL)
        return -EINVAL;
    if (!catalog_dtype_is_list(v->type)) {
        scalar(f, v, false);
        return 0;
    }
    fputc('{', f);
    for (size_t i = 0; i < v->u.list.n; i++) {
        catalog_value_t e;
        catalog_list_item(v, i, &e);
        if (i > 0)
            fputc(',', f);
        scalar(f, &e, true);
    }
    fputc('}', f);
    return 0;
}
