/* base/parse.c - integers, doubles and timestamps from text cells, without libc's
 * scanners on the common shapes. */
#include <errno.h>
#include <inttypes.h>
#include <float.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

/*
 * Bulk ingest spends most of its parse time in strtoll/strtod, which also need a NUL-terminated
 * copy of every cell. The common shapes ("-123", "12.5", "1e-3") are parsed here directly; any
 * other shape (white space, hex, inf/nan, long mantissas, large exponents, overflow) falls back
 * to the libc call on a copy, so the accepted syntax and the results never change.
 */

static int slow_int(const char *s, size_t n, int64_t *out)
{
    char buf[32];
    if (memchr(s, '\0', n) != NULL)
        return -EINVAL; /* strtoll would stop at it and call the cell whole */
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

int base_parse_int(const char *s, size_t n, int64_t *out)
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
    if (memchr(s, '\0', n) != NULL)
        return -EINVAL;
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

int base_parse_double(const char *s, size_t n, double *out)
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

/* ------------------------------------------------------------------------------------------ */
/* Timestamps                                                                                  */

/*
 * Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil): eras of
 * 400 years repeat exactly, so this is plain integer arithmetic, exact for every year 0..9999,
 * with none of mktime's time-zone work or timegm's normalisation (which would turn Feb 30 into
 * March 2 instead of refusing it).
 */
static int64_t days_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, unsigned m)
{
    static const unsigned char days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* n decimal digits at s as a number, or -1 if one of them is not a digit. */
static int digits(const char *s, size_t n)
{
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return -1;
        x = x * 10 + (int)d;
    }
    return x;
}

/* The digits of a fraction (at least one) as microseconds: digits past the sixth are dropped,
 * as before. Returns: 0, -EINVAL. */
static int fraction_us(const char *s, size_t n, int64_t *out)
{
    if (n == 0)
        return -EINVAL;
    int64_t f = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return -EINVAL;
        if (i < 6)
            f = f * 10 + d;
    }
    for (size_t i = n; i < 6; i++)
        f *= 10;
    *out = f;
    return 0;
}

/* Seconds since the epoch, "[-+]S[.F]": the integer part is what base_parse_int()
 * takes (so the accepted syntax is the one ingest always had), the fraction is digits. */
static int parse_epoch(const char *s, size_t n, int64_t *us)
{
    const char *dot = memchr(s, '.', n);
    size_t ni = dot != NULL ? (size_t)(dot - s) : n;
    int64_t sec, frac = 0;
    if (base_parse_int(s, ni, &sec) != 0)
        return -EINVAL;
    if (dot != NULL && ni + 1 < n && fraction_us(dot + 1, n - ni - 1, &frac) != 0)
        return -EINVAL;
    if (sec > INT64_MAX / 1000000 - 1 || sec < INT64_MIN / 1000000 + 1)
        return -EINVAL;
    /* The sign comes from the text: "-0.5" has an integer part of 0. Leading white space is
     * what strtoll skips, so the sign is the first other character. */
    size_t i = 0;
    while (i < ni && s[i] != '-' && s[i] != '+' && (unsigned)(s[i] - '0') > 9)
        i++;
    *us = sec * 1000000 + (i < ni && s[i] == '-' ? -frac : frac);
    return 0;
}

int base_parse_time(const char *s, size_t n, int64_t *us)
{
    if (n == 0 || n >= 64)
        return -EINVAL;
    /* A date has a '-' after its four-digit year; epoch seconds have one only as their sign. */
    if (n < 5 || s[4] != '-')
        return parse_epoch(s, n, us);
    /* "YYYY-MM-DD" then 'T', 't' or ' ' then "hh:mm:ss": 19 bytes at fixed places. */
    if (n < 20 || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
        s[16] != ':')
        return -EINVAL;
    int year = digits(s, 4), mon = digits(s + 5, 2), day = digits(s + 8, 2);
    int hh = digits(s + 11, 2), mm = digits(s + 14, 2), ss = digits(s + 17, 2);
    if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, (unsigned)mon) ||
        hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
        return -EINVAL;
    size_t i = 19;
    int64_t frac = 0;
    if (s[i] == '.') {
        size_t j = ++i;
        while (i < n && (unsigned)(s[i] - '0') <= 9)
            i++;
        if (fraction_us(s + j, i - j, &frac) != 0)
            return -EINVAL;
    }
    int64_t offset = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        if (n - i < 6 || s[i + 3] != ':')
            return -EINVAL;
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -EINVAL;
        offset = (int64_t)(oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
        i += 6;
    } else {
        return -EINVAL;
    }
    if (i != n)
        return -EINVAL;
    /* A leap second (ss == 60) counts as the first second of the next minute, as timegm() has
     * it. */
    int64_t t = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 + mm * 60 +
                ss - offset;
    *us = t * 1000000 + frac;
    return 0;
}

int base_parse_time_memo(base_ts_memo_t *m, const char *s, size_t n, int64_t *us)
{
    if (m->n == n && n > 0 && memcmp(m->text, s, n) == 0) {
        *us = m->us;
        return 0;
    }
    int rc = base_parse_time(s, n, us);
    /* Only successes are kept: a bad cell is reported again on every row that has it. */
    if (rc == 0 && n <= sizeof m->text) {
        memcpy(m->text, s, n);
        m->n = n;
        m->us = *us;
    }
    return rc;
}

int base_format_time(int64_t us, char *buf, size_t cap)
{
    int64_t sec = us / 1000000 - (us % 1000000 < 0);
    int64_t frac = us - sec * 1000000;
    time_t t = (time_t)sec;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return snprintf(buf, cap, "invalid");
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t)n >= cap)
        return n;
    return n + (frac != 0 ? snprintf(buf + n, cap - (size_t)n, ".%06" PRId64 "Z", frac)
                          : snprintf(buf + n, cap - (size_t)n, "Z"));
}
