/* tests/http/test_json.c - the JSON writer against jansson's parser, and JSON -> values. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http_int.h"

static json_t *parsed(http_buf_t *b)
{
    cr_assert(!b->oom);
    json_error_t err;
    json_t *j = json_loadb(b->p, b->len, JSON_DECODE_ANY, &err);
    cr_assert_not_null(j, "not JSON: %.*s (%s)", (int)b->len, b->p, err.text);
    return j;
}

Test(json, strings_with_every_byte_below_0x20_quotes_and_utf8_read_back_the_same)
{
    char s[64];
    size_t n = 0;
    for (int c = 1; c < 0x20; c++)
        s[n++] = (char)c;
    memcpy(s + n, "\"\\h\xc3\xa9", 5);
    n += 5;
    http_buf_t b = {0};
    http__json_str(&b, s, n);
    json_t *j = parsed(&b);
    cr_assert_eq(json_string_length(j), n);
    cr_assert_eq(memcmp(json_string_value(j), s, n), 0);
    json_decref(j);
    http__buf_free(&b);
}

Test(json, doubles_are_the_shortest_text_that_reads_back_as_python_prints_them)
{
    const struct {
        double v;
        const char *want;
    } cases[] = {{0.5, "0.5"},
                 {1.0, "1.0"},
                 {-2.0, "-2.0"},
                 {0.1, "0.1"},
                 {(double)0.456f, "0.4560000002384186"},
                 {1e20, "1e+20"},
                 {1.0 / 3, "0.3333333333333333"},
                 {NAN, "null"},
                 {INFINITY, "null"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_buf_t b = {0};
        http__json_double(&b, cases[i].v);
        http__putc(&b, '\0');
        cr_assert_str_eq(b.p, cases[i].want);
        http__buf_free(&b);
    }
    /* Every double of a sweep reads back exactly. */
    for (double v = 1e-9; v < 1e12; v *= 3.3) {
        http_buf_t b = {0};
        http__json_double(&b, v);
        json_t *j = parsed(&b);
        cr_assert_eq(json_real_value(j), v, "%.17g", v);
        json_decref(j);
        http__buf_free(&b);
    }
}

/* The old general path: the shortest of %.15g, %.16g, %.17g that reads back. */
static size_t printf_shortest_len(double v)
{
    char t[40];
    for (int p = 15; p <= 17; p++) {
        snprintf(t, sizeof t, "%.*g", p, v);
        if (p == 17 || strtod(t, NULL) == v)
            break;
    }
    return strlen(t) + (strpbrk(t, ".eninf") == NULL ? 2 : 0);
}

Test(json, the_fast_path_reads_back_exactly_and_is_never_longer_than_printf)
{
    srand(11);
    for (int i = 0; i < 200000; i++) {
        double v;
        switch (i % 5) {
        case 0:
            v = (double)(rand() % 100000000) / 10000.0; /* decimals */
            break;
        case 1:
            v = (double)((float)rand() / (float)RAND_MAX); /* float32 widened */
            break;
        case 2: {
            uint64_t bits = (uint64_t)rand() << 33 ^ (uint64_t)rand() << 11 ^ (uint64_t)rand();
            memcpy(&v, &bits, sizeof v); /* any bit pattern */
            break;
        }
        case 3:
            v = -(double)(rand() % 1000) * 1e-4; /* small, negative */
            break;
        default:
            v = (double)rand() * 1e5 + 0.5; /* near the fast path's upper bound */
            break;
        }
        http_buf_t b = {0};
        http__json_double(&b, v);
        http__putc(&b, '\0');
        if (!isfinite(v)) {
            cr_assert_str_eq(b.p, "null");
        } else {
            cr_assert_eq(strtod(b.p, NULL), v, "%s does not read back as %.17g", b.p, v);
            cr_assert_leq(strlen(b.p), printf_shortest_len(v), "%s for %.17g", b.p, v);
            cr_assert(strpbrk(b.p, ".e") != NULL, "%s is not a float", b.p);
        }
        http__buf_free(&b);
    }
}

Test(json, whole_numbers)
{
    const int64_t cases[] = {0, 7, -7, 1234567890123, INT64_MAX, INT64_MIN};
    const char *want[] = {
        "0", "7", "-7", "1234567890123", "9223372036854775807", "-9223372036854775808"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_buf_t b = {0};
        http__json_i64(&b, cases[i]);
        http__putc(&b, '\0');
        cr_assert_str_eq(b.p, want[i]);
        http__buf_free(&b);
    }
}

Test(json, tf_serving_numbers)
{
    const struct {
        double v;
        bool f;
        const char *want;
    } cases[] = {{3, false, "3.0"},
                 {999999, false, "999999.0"},
                 {9000000, false, "9e+06"},
                 {3e-5, false, "3e-05"},
                 {0.1f, true, "0.1"},
                 {NAN, false, "NaN"},
                 {-INFINITY, false, "-Infinity"},
                 {1.0 / 3, false, "0.33333333333333331"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_buf_t b = {0};
        http__tfs_number(&b, cases[i].v, cases[i].f);
        http__putc(&b, '\0');
        cr_assert_str_eq(b.p, cases[i].want, "case %zu", i);
        http__buf_free(&b);
    }
}

Test(json, base64_both_ways)
{
    uint8_t bytes[64], back[64];
    for (size_t n = 0; n < sizeof bytes; n++) {
        for (size_t i = 0; i < n; i++)
            bytes[i] = (uint8_t)(i * 37 + n);
        http_buf_t b = {0};
        http__json_base64(&b, bytes, n);
        json_t *j = parsed(&b);
        long m = base_base64_decode(json_string_value(j), json_string_length(j), back, 0);
        cr_assert_eq(m, (long)n);
        cr_assert_eq(memcmp(back, bytes, n), 0);
        json_decref(j);
        http__buf_free(&b);
    }
}

Test(json, csv_cells_quote_only_what_rfc_4180_needs)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"plain", "plain"},
        {"", ""},
        {"a,b", "\"a,b\""},
        {"say \"hi\"", "\"say \"\"hi\"\"\""},
        {"two\nlines", "\"two\nlines\""},
        {"cr\r", "\"cr\r\""},
        {"caf\xc3\xa9 {\"b64\"}", "\"caf\xc3\xa9 {\"\"b64\"\"}\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_buf_t b = {0};
        http__csv_text(&b, cases[i].in, strlen(cases[i].in));
        http__putc(&b, '\0');
        cr_assert_str_eq(b.p, cases[i].want, "case %zu", i);
        http__buf_free(&b);
    }
    http_buf_t b = {0};
    http__csv_base64(&b, (const uint8_t *)"\x00\x01\xff", 3);
    http__putc(&b, '\0');
    cr_assert_str_eq(b.p, "AAH/");
    http__buf_free(&b);
}

Test(json, timestamps_use_feasts_adaptive_fraction)
{
    const struct {
        int64_t us;
        const char *want;
    } cases[] = {{0, "\"1970-01-01T00:00:00Z\""},
                 {1700000000000000ll, "\"2023-11-14T22:13:20Z\""},
                 {1700000000500000ll, "\"2023-11-14T22:13:20.500Z\""},
                 {1700000000123456ll, "\"2023-11-14T22:13:20.123456Z\""}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_buf_t b = {0};
        http__json_timestamp(&b, cases[i].us);
        http__putc(&b, '\0');
        cr_assert_str_eq(b.p, cases[i].want);
        http__buf_free(&b);
    }
}

Test(json, timestamps_agree_with_gmtime_across_the_calendar)
{
    srand(5);
    for (int i = 0; i < 100000; i++) {
        /* 1970..9999, leap days and centuries included, then the same second again. */
        int64_t s = ((int64_t)rand() * 7919 + rand()) % 253402300799ll + 1;
        if (i % 3 == 1)
            s = 951782400 + rand() % 86400; /* 2000-02-29 */
        int64_t us = s * 1000000 + (i % 4 == 0 ? 0 : i % 4 == 1 ? 250000 : 123457);
        for (int rep = 0; rep < 2; rep++) {
            http_buf_t b = {0};
            http__json_timestamp(&b, us);
            http__putc(&b, '\0');
            time_t ts = (time_t)s;
            struct tm tm;
            gmtime_r(&ts, &tm);
            char want[64];
            size_t n = strftime(want, sizeof want, "\"%Y-%m-%dT%H:%M:%S", &tm);
            int64_t f = us % 1000000;
            snprintf(want + n, sizeof want - n,
                     f == 0          ? "Z\""
                     : f % 1000 == 0 ? ".%03lldZ\""
                                     : ".%06lldZ\"",
                     (long long)(f % 1000 == 0 ? f / 1000 : f));
            cr_assert_str_eq(b.p, want, "second %lld", (long long)s);
            http__buf_free(&b);
        }
    }
}
