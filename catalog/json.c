/* catalog/json.c - typed values from JSON (jansson): HTTP bodies and ingest's JSONL and lists. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "catalog/catalog_int.h"

/*
 * One conversion for every JSON a value arrives in: Feast's HTTP bodies (numbers as numbers,
 * BYTES as standard base64) and, with CATALOG_JSON_TEXT, the files `fstore ingest` reads, where
 * exported data writes numbers and times as strings and bytes as raw text or "b64:" base64 of
 * either alphabet. The same checks, the same messages.
 */

static int bad(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static const char *kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

int catalog_bytes_from_text(const char *s, size_t n, base_arena_t *a, catalog_bytes_t *out)
{
    if (n < 4 || memcmp(s, "b64:", 4) != 0) {
        out->data = (const uint8_t *)s;
        out->len = n;
        return 0;
    }
    uint8_t *p = base_arena_alloc(a, BASE_BASE64_DECODED_MAX(n - 4));
    if (p == NULL)
        return -ENOMEM;
    long m = base_base64_decode(s + 4, n - 4, p, BASE_BASE64_LENIENT);
    if (m < 0)
        return -EINVAL;
    out->data = p;
    out->len = (size_t)m;
    return 0;
}

/* BYTES from a JSON string: standard base64, or (text) catalog_bytes_from_text(). */
static int bytes(const json_t *j, unsigned flags, base_arena_t *a, catalog_bytes_t *out, char *why,
                 size_t cap)
{
    if (!json_is_string(j))
        return bad(why, cap, "want a %sstring for BYTES, got %s",
                   flags & CATALOG_JSON_TEXT ? "" : "base64 ", kind(j));
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (flags & CATALOG_JSON_TEXT) {
        int rc = catalog_bytes_from_text(s, n, a, out);
        return rc == -EINVAL ? bad(why, cap, "bad base64 after 'b64:'") : rc;
    }
    uint8_t *p = base_arena_alloc(a, BASE_BASE64_DECODED_MAX(n));
    if (p == NULL)
        return -ENOMEM;
    long m = base_base64_decode(s, n, p, 0);
    if (m < 0)
        return bad(why, cap, "want standard base64 for BYTES");
    out->data = p;
    out->len = (size_t)m;
    return 0;
}

/* One scalar of type t from j. */
static int scalar(const json_t *j, catalog_dtype_t t, unsigned flags, base_arena_t *a,
                  catalog_value_t *out, char *why, size_t cap)
{
    bool text = (flags & CATALOG_JSON_TEXT) != 0 && json_is_string(j);
    const char *s = json_is_string(j) ? json_string_value(j) : NULL;
    size_t n = s != NULL ? json_string_length(j) : 0;
    out->type = t;
    switch (t) {
    case CATALOG_DTYPE_INT32:
    case CATALOG_DTYPE_INT64: {
        int64_t x;
        if (json_is_integer(j)) {
            x = json_integer_value(j);
        } else if (json_is_real(j) && json_real_value(j) == floor(json_real_value(j)) &&
                   fabs(json_real_value(j)) < 9.0e15) {
            x = (int64_t)json_real_value(j);
        } else if (!text || base_parse_int(s, n, &x) != 0) {
            return bad(why, cap, "want a whole number for %s, got %s", catalog_dtype_name(t),
                       kind(j));
        }
        if (t == CATALOG_DTYPE_INT32 && (x < INT32_MIN || x > INT32_MAX))
            return bad(why, cap, "%" PRId64 " is out of range for INT32", x);
        if (t == CATALOG_DTYPE_INT32)
            out->u.i32 = (int32_t)x;
        else
            out->u.i64 = x;
        return 0;
    }
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        if (s != NULL) {
            int64_t us;
            if (text && base_parse_int(s, n, &out->u.i64) == 0)
                return 0;
            if (base_parse_time(s, n, &us) < 0)
                return bad(why, cap,
                           "want an RFC 3339 time or seconds since the epoch, got "
                           "'%.40s'",
                           s);
            out->u.i64 = us / 1000000;
            return 0;
        }
        if (!json_is_number(j))
            return bad(why, cap, "want seconds since the epoch or an RFC 3339 string, got %s",
                       kind(j));
        if (json_is_real(j) && !(fabs(json_real_value(j)) < 9.2e18))
            return bad(why, cap, "%g seconds since the epoch is out of range", json_real_value(j));
        out->u.i64 = json_is_integer(j) ? json_integer_value(j) : (int64_t)json_real_value(j);
        return 0;
    case CATALOG_DTYPE_DOUBLE:
    case CATALOG_DTYPE_FLOAT: {
        double d;
        if (json_is_number(j))
            d = json_number_value(j);
        else if (!text || base_parse_double(s, n, &d) != 0)
            return bad(why, cap, "want a number for %s, got %s", catalog_dtype_name(t), kind(j));
        if (t == CATALOG_DTYPE_DOUBLE) {
            out->u.f64 = d;
        } else if (!catalog_double_fits_float(d)) {
            return bad(why, cap, "%g is out of range for FLOAT", d);
        } else {
            out->u.f32 = (float)d;
        }
        return 0;
    }
    case CATALOG_DTYPE_BOOL:
        if (!json_is_boolean(j))
            return bad(why, cap, "want true or false, got %s", kind(j));
        out->u.b = json_is_true(j);
        return 0;
    case CATALOG_DTYPE_STRING:
        if (s == NULL)
            return bad(why, cap, "want a string, got %s", kind(j));
        out->u.bytes.data = (const uint8_t *)s;
        out->u.bytes.len = n;
        return 0;
    case CATALOG_DTYPE_BYTES:
        return bytes(j, flags, a, &out->u.bytes, why, cap);
    default:
        return bad(why, cap, "values of type %s are not supported", catalog_dtype_name(t));
    }
}

int catalog_value_from_json(const json_t *j, catalog_dtype_t want, unsigned flags, base_arena_t *a,
                            catalog_value_t *out, char *why, size_t why_cap)
{
    memset(out, 0, sizeof *out);
    if (json_is_null(j)) {
        out->type = CATALOG_DTYPE_NULL;
        return 0;
    }
    if (want == CATALOG_DTYPE_INVALID) {
        /* Entity values: the JSON type decides, as Feast's server types them. */
        if (json_is_integer(j))
            want = CATALOG_DTYPE_INT64;
        else if (json_is_real(j))
            want = CATALOG_DTYPE_DOUBLE;
        else if (json_is_string(j))
            want = CATALOG_DTYPE_STRING;
        else if (json_is_boolean(j))
            want = CATALOG_DTYPE_BOOL;
        else
            return bad(why, why_cap, "entity values are numbers, strings or booleans, got %s",
                       kind(j));
    }
    if (!catalog_dtype_is_list(want))
        return scalar(j, want, flags, a, out, why, why_cap);
    if (!json_is_array(j))
        return bad(why, why_cap, "want an array for %s, got %s", catalog_dtype_name(want), kind(j));
    catalog_dtype_t et = catalog_dtype_element(want);
    size_t n = json_array_size(j);
    size_t size = et == CATALOG_DTYPE_INT32   ? sizeof(int32_t)
                  : et == CATALOG_DTYPE_FLOAT ? sizeof(float)
                  : et == CATALOG_DTYPE_BOOL  ? sizeof(bool)
                  : et == CATALOG_DTYPE_STRING || et == CATALOG_DTYPE_BYTES
                      ? sizeof(catalog_bytes_t)
                      : sizeof(int64_t);
    void *items = base_arena_alloc(a, (n + 1) * size);
    if (items == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        catalog_value_t e;
        const json_t *ji = json_array_get(j, i);
        if (json_is_null(ji))
            return bad(why, why_cap, "item %zu: lists cannot hold null", i);
        int rc = scalar(ji, et, flags, a, &e, why, why_cap);
        if (rc < 0) {
            if (rc == -EINVAL) {
                char inner[200];
                snprintf(inner, sizeof inner, "%s", why);
                snprintf(why, why_cap, "item %zu: %s", i, inner);
            }
            return rc;
        }
        switch (et) {
        case CATALOG_DTYPE_INT32:
            ((int32_t *)items)[i] = e.u.i32;
            break;
        case CATALOG_DTYPE_FLOAT:
            ((float *)items)[i] = e.u.f32;
            break;
        case CATALOG_DTYPE_DOUBLE:
            ((double *)items)[i] = e.u.f64;
            break;
        case CATALOG_DTYPE_BOOL:
            ((bool *)items)[i] = e.u.b;
            break;
        case CATALOG_DTYPE_STRING:
        case CATALOG_DTYPE_BYTES:
            ((catalog_bytes_t *)items)[i] = e.u.bytes;
            break;
        default:
            ((int64_t *)items)[i] = e.u.i64;
            break;
        }
    }
    out->type = want;
    out->u.list.n = n;
    out->u.list.v.i64 = items; /* the union's members share the address */
    return 0;
}
