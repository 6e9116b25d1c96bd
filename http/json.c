/* http/json.c - the JSON writer (Feast's and TF Serving's renderings) and JSON -> values. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http_int.h"

/*
 * Responses are written straight into a buffer rather than built as a jansson tree and dumped:
 * a read of 100 entities x 50 features is 5,000 values, and a tree costs an allocation per
 * value. What the writer produces is checked against jansson's parser in tests/http. Requests
 * are parsed with jansson.
 */

/* ------------------------------------------------------------------------------------------ */
/* Buffer                                                                                      */

static bool grow(http_buf_t *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->len < n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void http__put(http_buf_t *b, const void *p, size_t n)
{
    if (n > 0 && grow(b, n)) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
    }
}

void http__puts(http_buf_t *b, const char *s)
{
    http__put(b, s, strlen(s));
}

void http__putc(http_buf_t *b, char c)
{
    if (grow(b, 1))
        b->p[b->len++] = c;
}

void http__printf(http_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !grow(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void http__buf_free(http_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------------------------------ */
/* JSON scalars                                                                                */

void http__json_str(http_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case six bytes per byte, plus the quotes. */
    if (!grow(b, 6 * n + 2))
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            *o++ = '\\';
            switch (c) {
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

/* Decimal digits of u into t (no terminator). Returns: their count. */
static size_t put_u64(char *t, uint64_t u)
{
    char r[20];
    size_t n = 0;
    do {
        r[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    for (size_t i = 0; i < n; i++)
        t[i] = r[n - 1 - i];
    return n;
}

void http__json_i64(http_buf_t *b, int64_t v)
{
    char t[24];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        t[n++] = '-';
        u = 0 - u;
    }
    n += put_u64(t + n, u);
    http__put(b, t, n);
}

/*
 * The positional fast path: the fewest decimals k for which a = m / 10^k with m a whole number
 * below 2^53. m and 10^k (k <= 22) are exact doubles, so m / 10^k is correctly rounded, as
 * strtod() of the text "m e-k" is: when it equals a, the text reads back as a. Most feature
 * values (prices, rates, float32s widened to double) take this path, which costs a handful of
 * multiplications instead of printf's and strtod's big-number arithmetic.
 * Returns: the text's length in t, or 0 when a needs the general path.
 */
static size_t fixed_shortest(double a, char *t)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    static const uint64_t u10[] = {1ull,
                                   10ull,
                                   100ull,
                                   1000ull,
                                   10000ull,
                                   100000ull,
                                   1000000ull,
                                   10000000ull,
                                   100000000ull,
                                   1000000000ull,
                                   10000000000ull,
                                   100000000000ull,
                                   1000000000000ull,
                                   10000000000000ull,
                                   100000000000000ull,
                                   1000000000000000ull,
                                   10000000000000000ull,
                                   100000000000000000ull,
                                   1000000000000000000ull};
    /* Python writes 1e-4 <= |v| < 1e16 positionally; 2^53 bounds m. */
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (int k = 0; k <= 18; k++) {
        double s = a * p10[k];
        if (s >= 9007199254740992.0)
            return 0;
        double m = nearbyint(s);
        if (m / p10[k] != a)
            continue;
        uint64_t u = (uint64_t)m, ip = u / u10[k], fp = u % u10[k];
        size_t n = put_u64(t, ip);
        t[n++] = '.';
        if (k == 0) {
            t[n++] = '0';
            return n;
        }
        char f[20];
        size_t fn = put_u64(f, fp);
        for (size_t z = fn; z < (size_t)k; z++)
            t[n++] = '0';
        memcpy(t + n, f, fn);
        n += fn;
        while (t[n - 1] == '0' && t[n - 2] != '.')
            n--;
        return n;
    }
    return 0;
}

void http__json_double(http_buf_t *b, double v)
{
    if (!isfinite(v)) {
        http__puts(b, "null");
        return;
    }
    char t[40];
    size_t n = 0;
    if (signbit(v) && v != 0)
        t[n++] = '-';
    size_t m = fixed_shortest(fabs(v), t + n);
    if (m > 0) {
        http__put(b, t, n + m);
        return;
    }
    /* The shortest of 15, 16 or 17 significant digits that reads back as v (values the fast
     * path took need no more than 15 digits, so it only leaves 16 and 17 inside its range). */
    for (int p = fabs(v) >= 1e-4 && fabs(v) < 1e15 ? 16 : 15; p <= 17; p++) {
        snprintf(t, sizeof t, "%.*g", p, v);
        if (p == 17 || strtod(t, NULL) == v)
            break;
    }
    /* Python prints a whole float with ".0" (1.0, not 1); "1e+20" stays as it is. */
    if (strpbrk(t, ".eninf") == NULL)
        strcat(t, ".0");
    http__puts(b, t);
}

void http__tfs_number(http_buf_t *b, double v, bool is_float)
{
    char t[40];
    if (isnan(v)) {
        http__puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        http__puts(b, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    snprintf(t, sizeof t, "%.6g", v);
    bool round_trips = is_float ? (float)strtod(t, NULL) == (float)v : strtod(t, NULL) == v;
    if (!round_trips)
        snprintf(t, sizeof t, is_float ? "%.9g" : "%.17g", v);
    if (strpbrk(t, ".e") == NULL)
        strcat(t, ".0");
    http__puts(b, t);
}

void http__json_base64(http_buf_t *b, const uint8_t *p, size_t n)
{
    if (!grow(b, BASE_BASE64_LEN(n) + 2))
        return;
    b->p[b->len++] = '"';
    b->len += base_base64_encode(p, n, b->p + b->len);
    b->p[b->len++] = '"';
}

void http__csv_text(http_buf_t *b, const char *s, size_t n)
{
    bool quote = false;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        http__put(b, s, n);
        return;
    }
    http__putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            http__putc(b, '"');
        http__putc(b, s[i]);
    }
    http__putc(b, '"');
}

void http__csv_base64(http_buf_t *b, const uint8_t *p, size_t n)
{
    if (!grow(b, BASE_BASE64_LEN(n)))
        return;
    b->len += base_base64_encode(p, n, b->p + b->len);
}

/* n digits of v, zero-padded, at t. */
static void put_digits(char *t, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        t[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void http__json_timestamp(http_buf_t *b, int64_t us)
{
    /* A response repeats the same few event times (one per view and row), so the text of the
     * last second written on this thread is kept; the calendar comes from the day number
     * (Howard Hinnant's days_from_civil, inverted), without gmtime's locks and tables. */
    static _Thread_local int64_t last_s = INT64_MIN;
    static _Thread_local char last[20]; /* "YYYY-MM-DDTHH:MM:SS" */
    if (us <= 0) {
        http__puts(b, "\"1970-01-01T00:00:00Z\"");
        return;
    }
    int64_t s = us / 1000000, f = us % 1000000;
    if (s != last_s) {
        int64_t days = s / 86400, sod = s % 86400;
        int64_t z = days + 719468, era = z / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
        int64_t m = mp < 10 ? mp + 3 : mp - 9;
        y += m <= 2;
        if (y > 9999) {
            /* Past what four digits hold: the general path. */
            time_t ts = (time_t)s;
            struct tm tm;
            gmtime_r(&ts, &tm);
            char t[48];
            size_t n = strftime(t, sizeof t, "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
            http__put(b, t, n);
            return;
        }
        put_digits(last, (unsigned)y, 4);
        last[4] = '-';
        put_digits(last + 5, (unsigned)m, 2);
        last[7] = '-';
        put_digits(last + 8, (unsigned)d, 2);
        last[10] = 'T';
        put_digits(last + 11, (unsigned)(sod / 3600), 2);
        last[13] = ':';
        put_digits(last + 14, (unsigned)(sod / 60 % 60), 2);
        last[16] = ':';
        put_digits(last + 17, (unsigned)(sod % 60), 2);
        last_s = s;
    }
    char t[32];
    size_t n = 0;
    t[n++] = '"';
    memcpy(t + n, last, 19);
    n += 19;
    if (f != 0 && f % 1000 == 0) {
        t[n++] = '.';
        put_digits(t + n, (unsigned)(f / 1000), 3);
        n += 3;
    } else if (f != 0) {
        t[n++] = '.';
        put_digits(t + n, (unsigned)f, 6);
        n += 6;
    }
    t[n++] = 'Z';
    t[n++] = '"';
    http__put(b, t, n);
}

void http__json_value(http_buf_t *b, const catalog_value_t *v)
{
    switch (v->type) {
    case CATALOG_DTYPE_INT32:
        http__json_i64(b, v->u.i32);
        return;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        http__json_i64(b, v->u.i64);
        return;
    case CATALOG_DTYPE_DOUBLE:
        http__json_double(b, v->u.f64);
        return;
    case CATALOG_DTYPE_FLOAT:
        http__json_double(b, (double)v->u.f32);
        return;
    case CATALOG_DTYPE_BOOL:
        http__puts(b, v->u.b ? "true" : "false");
        return;
    case CATALOG_DTYPE_STRING:
        http__json_str(b, (const char *)v->u.bytes.data, v->u.bytes.len);
        return;
    case CATALOG_DTYPE_BYTES:
        http__json_base64(b, v->u.bytes.data, v->u.bytes.len);
        return;
    default:
        break;
    }
    if (!catalog_dtype_is_list(v->type)) {
        http__puts(b, "null");
        return;
    }
    http__putc(b, '[');
    for (size_t i = 0; i < v->u.list.n; i++) {
        if (i > 0)
            http__putc(b, ',');
        catalog_value_t e;
        catalog_list_item(v, i, &e);
        http__json_value(b, &e);
    }
    http__putc(b, ']');
}

/* ------------------------------------------------------------------------------------------ */
/* Times                                                                                       */

int http__parse_time(const char *s, int64_t *us)
{
    return base_parse_time(s, strlen(s), us);
}
