/* tests/base/test_parse.c - the number fast paths agree with strtoll / strtod, and times parse
 * timestamp parser with timegm(). */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

/* The reference: what cmd_ingest did before the fast paths. */
static int ref_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || *s == '\0' || strlen(s) >= 32)
        return errno == ERANGE && strlen(s) < 32 && *s ? -ERANGE : -EINVAL;
    *out = x;
    return 0;
}

static int ref_double(const char *s, double *out)
{
    char *end;
    if (*s == '\0' || strlen(s) >= 64)
        return -EINVAL;
    *out = strtod(s, &end);
    return *end == '\0' ? 0 : -EINVAL;
}

static void same_int(const char *s)
{
    int64_t a = 0, b = 0;
    int ra = base_parse_int(s, strlen(s), &a);
    int rb = ref_int(s, &b);
    cr_assert_eq(ra, rb, "'%s': rc %d, strtoll %d", s, ra, rb);
    if (ra == 0)
        cr_assert_eq(a, b, "'%s': %lld, strtoll %lld", s, (long long)a, (long long)b);
}

static void same_double(const char *s)
{
    double a = 0, b = 0;
    int ra = base_parse_double(s, strlen(s), &a);
    int rb = ref_double(s, &b);
    cr_assert_eq(ra, rb, "'%s': rc %d, strtod %d", s, ra, rb);
    if (ra == 0) {
        cr_assert(memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)),
                  "'%s': %.17g, strtod %.17g", s, a, b);
        float fa = (float)a, fb = (float)b;
        cr_assert(memcmp(&fa, &fb, sizeof fa) == 0 || (isnan(fa) && isnan(fb)), "'%s' as FLOAT", s);
    }
}

Test(parse, integers_match_strtoll_at_the_edges)
{
    static const char *const cases[] = {"0",
                                        "-0",
                                        "+0",
                                        "7",
                                        "-7",
                                        "+7",
                                        "00012",
                                        "-00012",
                                        "9223372036854775807",
                                        "9223372036854775808",
                                        "-9223372036854775808",
                                        "-9223372036854775809",
                                        "99999999999999999999",
                                        "18446744073709551615",
                                        "18446744073709551616",
                                        "00000000000000000000000042",
                                        "-",
                                        "+",
                                        "--1",
                                        "+-1",
                                        "1-",
                                        " 12",
                                        "12 ",
                                        "\t-3",
                                        "1.0",
                                        "1e3",
                                        "0x10",
                                        "abc",
                                        "12a",
                                        "1,2",
                                        "4294967296",
                                        "-2147483649",
                                        "1234567890123456789012345678901",
                                        "12345678901234567890123456789012"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        same_int(cases[i]);
    int64_t x;
    cr_assert_eq(base_parse_int("", 0, &x), -EINVAL);
    cr_assert_eq(base_parse_int("12,34", 2, &x), 0, "the cell need not end in NUL");
    cr_assert_eq(x, 12);
}

Test(parse, random_integers_match_strtoll)
{
    srand(1);
    char digits[24], buf[40];
    for (int i = 0; i < 200000; i++) {
        uint64_t u = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
        snprintf(digits, sizeof digits, "%020llu", (unsigned long long)u);
        int len = 1 + rand() % 20; /* 20 digits cover both sides of the int64 limits */
        const char *sign = rand() % 3 == 0 ? "-" : rand() % 7 == 0 ? "+" : "";
        snprintf(buf, sizeof buf, "%s%s", sign, digits + 20 - len);
        same_int(buf);
    }
}

Test(parse, doubles_match_strtod_at_the_edges)
{
    static const char *const cases[] = {
        "0",
        "-0",
        "+0",
        "0.0",
        "-0.0",
        ".5",
        "5.",
        ".",
        "-.",
        "+.5",
        "1e5",
        "1E5",
        "1e+5",
        "1e-5",
        "1e",
        "1e+",
        "1e-",
        "e5",
        "1.5e308",
        "1e309",
        "1e-400",
        "-1e-400",
        "1e22",
        "1e23",
        "1e-22",
        "1e-23",
        "9007199254740992",
        "9007199254740993",
        "9007199254740993.0",
        "18014398509481985",
        "0.1",
        "0.2",
        "0.3",
        "3.14159265358979323846",
        "2.2250738585072014e-308",
        "4.9e-324",
        "1.7976931348623157e308",
        "123456789012345678901234567890",
        "0x1p3",
        "inf",
        "-inf",
        "nan",
        "NAN",
        "infinity",
        " 1.5",
        "1.5 ",
        "1.5x",
        "1..5",
        "1.5.",
        "--1",
        "1e0005",
        "1e00000000005",
        "0e999999",
        "0.000000000000000000000000000001",
        "100000000000000000000000",
        "39.4383",
        "79.8440",
        "55.3970",
        "1,5",
        "1_000",
        "0.0000000000000000000000000000000000000000000000000000000000001",
        "1234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        same_double(cases[i]);
    double d;
    cr_assert_eq(base_parse_double("2.5,7", 3, &d), 0, "the cell need not end in NUL");
    cr_assert_eq(d, 2.5);
}

Test(parse, random_doubles_match_strtod)
{
    srand(2);
    char buf[80];
    for (int i = 0; i < 300000; i++) {
        int kind = rand() % 4;
        if (kind == 0) {
            /* Decimal text of the CSV kind: a few integer and fraction digits. */
            snprintf(buf, sizeof buf, "%s%d.%0*d", rand() % 4 == 0 ? "-" : "", rand() % 100000,
                     1 + rand() % 8, rand() % 100000000);
        } else if (kind == 1) {
            /* Shortest round-trip of a random double, any magnitude. */
            uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
            double x;
            memcpy(&x, &bits, sizeof x);
            snprintf(buf, sizeof buf, "%.*g", 1 + rand() % 17, x);
        } else if (kind == 2) {
            /* Mantissas around 2^53 and exponents around +-22. */
            snprintf(buf, sizeof buf, "%llue%d",
                     (unsigned long long)(9007199254740992ULL - 50 + (unsigned)(rand() % 100)),
                     rand() % 60 - 30);
        } else {
            snprintf(buf, sizeof buf, "%d.%de%d", rand() % 1000, rand(), rand() % 50 - 25);
        }
        same_double(buf);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Timestamps against timegm()                                                                 */

static int64_t ref_time(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000000;
}

static int64_t parse_ok(const char *s)
{
    int64_t us = 0;
    int rc = base_parse_time(s, strlen(s), &us);
    cr_assert_eq(rc, 0, "'%s': rc %d", s, rc);
    return us;
}

static void parse_bad(const char *s, size_t n)
{
    int64_t us = 12345;
    int rc = base_parse_time(s, n, &us);
    cr_assert_eq(rc, -EINVAL, "'%.*s' was accepted (%lld)", (int)n, s, (long long)us);
    cr_assert_eq(us, 12345, "*us written on failure");
}

static bool leap(int y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

Test(parse, every_day_of_many_years_matches_timegm)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    /* Around 0, the 1900 and 2000 century rules, both sides of 1970, 2038, the far end. */
    static const int ranges[][2] = {{0, 5},       {396, 404},   {1599, 1601}, {1896, 1904},
                                    {1965, 2040}, {2096, 2104}, {2399, 2401}, {9995, 9999}};
    char buf[64];
    for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++) {
        for (int y = ranges[r][0]; y <= ranges[r][1]; y++) {
            for (int m = 1; m <= 12; m++) {
                int last = mdays[m - 1] + (m == 2 && leap(y));
                for (int d = 1; d <= last; d++) {
                    int h = (y + m + d) % 24, mi = (y * 7 + d) % 60, s = (m * 13 + d) % 60;
                    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, h, mi, s);
                    cr_assert_eq(parse_ok(buf), ref_time(y, m, d, h, mi, s), "%s", buf);
                }
            }
        }
    }
}

Test(parse, random_instants_with_offsets_and_fractions_match_timegm)
{
    srand(2);
    char buf[64];
    for (int i = 0; i < 200000; i++) {
        int y = rand() % 10000, m = 1 + rand() % 12, d = 1 + rand() % 28;
        int h = rand() % 24, mi = rand() % 60, s = rand() % 61;
        int oh = rand() % 24, om = rand() % 60, sign = rand() % 3; /* Z, +, - */
        int frac_digits = rand() % 10, frac = rand() % 1000000000;
        char fbuf[16] = "";
        if (frac_digits > 0)
            snprintf(fbuf, sizeof fbuf, ".%09d", frac);
        fbuf[frac_digits > 0 ? frac_digits + 1 : 0] = '\0';
        char off[16] = "Z";
        if (sign > 0)
            snprintf(off, sizeof off, "%c%02d:%02d", sign == 1 ? '+' : '-', oh, om);
        const char sep = "Tt "[rand() % 3];
        snprintf(buf, sizeof buf, "%04d-%02d-%02d%c%02d:%02d:%02d%s%s", y, m, d, sep, h, mi, s,
                 fbuf, off);
        int64_t us_frac = 0;
        for (int k = 0; k < 6; k++)
            us_frac = us_frac * 10 + (k < frac_digits ? fbuf[1 + k] - '0' : 0);
        int64_t off_s = sign == 0 ? 0 : (sign == 1 ? 1 : -1) * (oh * 3600 + om * 60);
        int64_t want = ref_time(y, m, d, h, mi, s) - off_s * 1000000 + us_frac;
        cr_assert_eq(parse_ok(buf), want, "%s", buf);
    }
}

Test(parse, the_epoch_and_its_neighbours)
{
    cr_assert_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(parse_ok("1969-12-31T23:59:59Z"), -1000000);
    cr_assert_eq(parse_ok("1969-12-31T23:59:59.5Z"), -500000);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.000001Z"), 1);
    cr_assert_eq(parse_ok("1970-01-01T01:00:00+01:00"), 0);
    cr_assert_eq(parse_ok("1969-12-31T23:00:00-01:00"), 0);
    cr_assert_eq(parse_ok("1970-01-01 00:00:00z"), 0);
    cr_assert_eq(parse_ok("2024-02-29T00:00:00Z"), ref_time(2024, 2, 29, 0, 0, 0));
    cr_assert_eq(parse_ok("2000-02-29T00:00:00Z"), ref_time(2000, 2, 29, 0, 0, 0));
    cr_assert_eq(parse_ok("9999-12-31T23:59:59.999999Z"),
                 ref_time(9999, 12, 31, 23, 59, 59) + 999999);
    cr_assert_eq(parse_ok("0000-01-01T00:00:00Z"), ref_time(0, 1, 1, 0, 0, 0));
    /* A leap second is the next minute's first second, as timegm() normalises it. */
    cr_assert_eq(parse_ok("2016-12-31T23:59:60Z"), ref_time(2017, 1, 1, 0, 0, 0));
    /* Digits past microseconds are dropped, not rounded. */
    cr_assert_eq(parse_ok("2024-05-01T12:00:00.1234569Z"), ref_time(2024, 5, 1, 12, 0, 0) + 123456);
    /* The cell need not end in NUL. */
    int64_t us;
    cr_assert_eq(base_parse_time("1970-01-01T00:00:01Z,9", 20, &us), 0);
    cr_assert_eq(us, 1000000);
}

Test(parse, epoch_seconds_with_signs_and_fractions)
{
    cr_assert_eq(parse_ok("0"), 0);
    cr_assert_eq(parse_ok("1714564800"), INT64_C(1714564800000000));
    cr_assert_eq(parse_ok("1714564800.25"), INT64_C(1714564800250000));
    cr_assert_eq(parse_ok("1714564800.1234567"), INT64_C(1714564800123456));
    cr_assert_eq(parse_ok("+5"), 5000000);
    cr_assert_eq(parse_ok("-5"), -5000000);
    cr_assert_eq(parse_ok("-0.5"), -500000);
    cr_assert_eq(parse_ok("-1.5"), -1500000);
    cr_assert_eq(parse_ok(" -0.5"), -500000);
    cr_assert_eq(parse_ok("7."), 7000000);
    cr_assert_eq(parse_ok("00000000000000000000000042"), 42000000);
    cr_assert_eq(parse_ok("9223372036853"), INT64_C(9223372036853000000));
    cr_assert_eq(parse_ok("-9223372036853"), -INT64_C(9223372036853000000));
}

Test(parse, bad_timestamps_are_refused)
{
    static const char *const cases[] = {
        "",
        ".5",
        "-",
        "1.2.3",
        "1.5x",
        "12a",
        "1e9",
        "9223372036854",  /* microseconds would overflow */
        "-9223372036854", /* likewise */
        "9223372036854775808",
        "2024-02-30T00:00:00Z", /* no such day */
        "2023-02-29T00:00:00Z", /* not a leap year */
        "1900-02-29T00:00:00Z", /* century, not a leap year */
        "2024-04-31T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T23:60:00Z",
        "2024-01-01T23:59:61Z",
        "2024-01-01T00:00:00",        /* no zone */
        "2024-01-01T00:00:00+01",     /* short offset */
        "2024-01-01T00:00:00+0100",   /* offset without colon */
        "2024-01-01T00:00:00+24:00",  /* offset hours */
        "2024-01-01T00:00:00-01:60",  /* offset minutes */
        "2024-01-01T00:00:00+1a:00",  /* offset digits */
        "2024-01-01T00:00:00ZZ",      /* trailing junk */
        "2024-01-01T00:00:00Z ",      /* trailing space */
        "2024-01-01T00:00:00+01:00x", /* trailing junk after an offset */
        "2024-01-01T00:00:00.Z",      /* a dot without digits */
        "2024-01-01T00:00:00.5",      /* a fraction without a zone */
        "2024-01-01X00:00:00Z",       /* separator */
        "2024-01-01T00-00:00Z",
        "2024-1-01T00:00:00Z", /* every field has its digits */
        "2024-01-01T0:00:00Z",
        "24-01-01T00:00:00Z",
        "2024-01-01",
        " 2024-01-01T00:00:00Z",
        "+024-01-01T00:00:00Z",
        "2024- 1- 1T 0: 0: 0Z",
        "2024-01-01T00:00:00.1234567890123456789012345678901234567890123Z", /* 64 bytes or more */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        parse_bad(cases[i], strlen(cases[i]));
    /* NUL bytes (JSON "\u0000") are junk too, wherever they are. */
    parse_bad("12\0", 3);
    parse_bad(" 12\0", 4);
    parse_bad("12.5\0", 5);
    parse_bad("2024-01-01T00:00:00Z\0", 21);
    parse_bad("2024-01-01T00:00:00\0Z", 21);
    int64_t x;
    cr_assert_eq(base_parse_int(" 12\0", 4, &x), -EINVAL);
    double d;
    cr_assert_eq(base_parse_double(" 1.5\0", 5, &d), -EINVAL);
}

Test(parse, the_memo_returns_what_the_parser_would)
{
    base_ts_memo_t m = {0};
    int64_t us = 0;
    const char *a = "2024-05-01T12:00:00Z", *b = "2024-05-01T12:00:01Z";
    cr_assert_eq(base_parse_time_memo(&m, a, strlen(a), &us), 0);
    cr_assert_eq(us, ref_time(2024, 5, 1, 12, 0, 0));
    cr_assert_eq(base_parse_time_memo(&m, a, strlen(a), &us), 0);
    cr_assert_eq(us, ref_time(2024, 5, 1, 12, 0, 0));
    cr_assert_eq(base_parse_time_memo(&m, b, strlen(b), &us), 0);
    cr_assert_eq(us, ref_time(2024, 5, 1, 12, 0, 1));
    /* A prefix of the remembered text is not the remembered text. */
    cr_assert_eq(base_parse_time_memo(&m, b, 4, &us), 0);
    cr_assert_eq(us, 2024000000);
    /* Errors are not remembered, and a bad cell after a good one is still bad. */
    us = 7;
    cr_assert_eq(base_parse_time_memo(&m, "2023-02-29T00:00:00Z", 20, &us), -EINVAL);
    cr_assert_eq(base_parse_time_memo(&m, "2023-02-29T00:00:00Z", 20, &us), -EINVAL);
    cr_assert_eq(us, 7);
    cr_assert_eq(base_parse_time_memo(&m, "", 0, &us), -EINVAL);
}

Test(format_time, rfc3339_that_parse_time_reads_back)
{
    const int64_t cases[] = {0,
                             1,
                             -1,
                             1764583200LL * 1000000,
                             1764583200LL * 1000000 + 123456,
                             -62135596800LL * 1000000, /* 0001-01-01 */
                             253402300799LL * 1000000 + 999999};
    const char *want[] = {"1970-01-01T00:00:00Z",        "1970-01-01T00:00:00.000001Z",
                          "1969-12-31T23:59:59.999999Z", "2025-12-01T10:00:00Z",
                          "2025-12-01T10:00:00.123456Z", "0001-01-01T00:00:00Z",
                          "9999-12-31T23:59:59.999999Z"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[40];
        int n = base_format_time(cases[i], buf, sizeof buf);
        cr_assert_str_eq(buf, want[i]);
        cr_assert_eq((size_t)n, strlen(buf));
        int64_t back;
        cr_assert_eq(base_parse_time(buf, strlen(buf), &back), 0, "%s", buf);
        cr_assert_eq(back, cases[i], "%s", buf);
    }
}
