/* server/ingest_parse.c - integers and doubles from CSV cells, fast paths beside libc. */
#include <errno.h>
#include <float.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "server/ingest_int.h"

/*
 * Bulk ingest spends most of its parse time in strtoll/strtod, which also need a NUL-terminated
 * copy of every cell. The common shapes ("-123", "12.5", "1e-3") are parsed here directly; any
 * other shape (white space, hex, inf/nan, long mantissas, large exponents, overflow) falls back
 * to the libc call on a copy, so the accepted syntax and the results never change.
 */

static int slow_int(const char *s, size_t n, int64_t *out)
{
    char buf[32];
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0')
        return errno == ERANGE ? -ERANGE : -EINVAL;
    *out = x;
    return 0;
}

int server__ingest_parse_int(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n >= 32)
        return -EINVAL;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
    }
    /* Up to 19 digits cannot overflow a uint64_t; longer cells (leading zeros) go to strtoll. */
    if (i == n || n - i > 19)
        return slow_int(s, n, out);
    uint64_t x = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return slow_int(s, n, out);
        x = x * 10 + d;
    }
    if (x > (uint64_t)INT64_MAX + neg)
        return slow_int(s, n, out); /* strtoll's -ERANGE, exactly */
    *out = neg ? (int64_t)(0 - x) : (int64_t)x;
    return 0;
}

static int slow_double(const char *s, size_t n, double *out)
{
    char buf[64];
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (*end != '\0')
        return -EINVAL;
    *out = d;
    return 0;
}

/* Powers of ten that a double holds exactly. */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

int server__ingest_parse_double(const char *s, size_t n, double *out)
{
    if (n == 0 || n >= 64)
        return -EINVAL;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
    }
    /* Mantissa digits as one integer w and a decimal exponent e: value = w * 10^e. */
    uint64_t w = 0;
    int digits = 0, e = 0, seen = 0;
    for (; i < n && (unsigned)(s[i] - '0') <= 9; i++, seen++) {
        if (w == 0 && s[i] == '0')
            continue; /* leading zeros are not significant */
        if (++digits > 19)
            return slow_double(s, n, out);
        w = w * 10 + (unsigned)(s[i] - '0');
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && (unsigned)(s[i] - '0') <= 9; i++, seen++) {
            e--;
            if (w == 0 && s[i] == '0')
                continue;
            if (++digits > 19)
                return slow_double(s, n, out);
            w = w * 10 + (unsigned)(s[i] - '0');
        }
    }
    if (seen == 0)
        return slow_double(s, n, out);
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        bool eneg = false;
        if (j < n && (s[j] == '-' || s[j] == '+')) {
            eneg = s[j] == '-';
            j++;
        }
        if (j == n || n - j > 4)
            return slow_double(s, n, out);
        int x = 0;
        for (; j < n; j++) {
            unsigned d = (unsigned char)s[j] - '0';
            if (d > 9)
                return slow_double(s, n, out);
            x = x * 10 + (int)d;
        }
        e += eneg ? -x : x;
        i = n;
    }
    if (i != n)
        return slow_double(s, n, out);
    /*
     * Clinger's fast path: w and 10^|e| are both exact doubles, so one IEEE multiplication or
     * division rounds the exact value once, correctly, as strtod does. It needs w <= 2^53 and
     * |e| <= 22 (and double arithmetic without excess precision, as on x86-64 and AArch64).
     */
    double d;
    if (w == 0) {
        d = 0.0;
    } else {
        if (FLT_EVAL_METHOD != 0 || w > (uint64_t)1 << 53 || e < -22 || e > 22)
            return slow_double(s, n, out);
        d = (double)w;
        d = e < 0 ? d / exact_pow10[-e] : d * exact_pow10[e];
    }
    *out = neg ? -d : d;
    return 0;
}
