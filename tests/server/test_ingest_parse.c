/* tests/server/test_ingest_parse.c - ingest's number fast paths agree with strtoll / strtod. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ingest_int.h"

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
    int ra = server__ingest_parse_int(s, strlen(s), &a);
    int rb = ref_int(s, &b);
    cr_assert_eq(ra, rb, "'%s': rc %d, strtoll %d", s, ra, rb);
    if (ra == 0)
        cr_assert_eq(a, b, "'%s': %lld, strtoll %lld", s, (long long)a, (long long)b);
}

static void same_double(const char *s)
{
    double a = 0, b = 0;
    int ra = server__ingest_parse_double(s, strlen(s), &a);
    int rb = ref_double(s, &b);
    cr_assert_eq(ra, rb, "'%s': rc %d, strtod %d", s, ra, rb);
    if (ra == 0) {
        cr_assert(memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)),
                  "'%s': %.17g, strtod %.17g", s, a, b);
        float fa = (float)a, fb = (float)b;
        cr_assert(memcmp(&fa, &fb, sizeof fa) == 0 || (isnan(fa) && isnan(fb)), "'%s' as FLOAT", s);
    }
}

Test(ingest_parse, integers_match_strtoll_at_the_edges)
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
    cr_assert_eq(server__ingest_parse_int("", 0, &x), -EINVAL);
    cr_assert_eq(server__ingest_parse_int("12,34", 2, &x), 0, "the cell need not end in NUL");
    cr_assert_eq(x, 12);
}

Test(ingest_parse, random_integers_match_strtoll)
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

Test(ingest_parse, doubles_match_strtod_at_the_edges)
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
    cr_assert_eq(server__ingest_parse_double("2.5,7", 3, &d), 0, "the cell need not end in NUL");
    cr_assert_eq(d, 2.5);
}

Test(ingest_parse, random_doubles_match_strtod)
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
