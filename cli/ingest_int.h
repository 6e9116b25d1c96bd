/* cli/ingest_int.h - number and time parsing for `fstore ingest` (cli/ingest_parse.c). */
#ifndef CLI_INGEST_INT_H
#define CLI_INGEST_INT_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * The length of an unquoted CSV field: the offset of the first ',' or '\n' in p[0..n), or n.
 * Eight bytes at a time while there are eight (it never reads past p + n): most of a CSV file is
 * short unquoted fields, and a byte loop over them cost more than all the number parsing.
 * Thread safety: any thread.
 */
static inline size_t cli__ingest_field_len(const char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t a = w ^ (ones * ','), b = w ^ (ones * '\n');
        /* A zero byte of a or b is a match. The lowest flagged byte is a true one: a byte is
         * flagged falsely only above a true zero of the same word, by its borrow. */
        uint64_t hit = ((a - ones) & ~a & highs) | ((b - ones) & ~b & highs);
        if (hit != 0)
            return i + ((size_t)__builtin_ctzll(le64toh(hit)) >> 3);
    }
    while (i < n && p[i] != ',' && p[i] != '\n')
        i++;
    return i;
}

/*
 * A CSV or JSON-string cell as an integer: exactly what strtoll(s, &end, 10) accepts when it
 * consumes the whole cell (leading white space, an optional sign, decimal digits). s need not be
 * NUL-terminated; cells of 32 bytes or more are rejected.
 * Returns: 0 and *out; -ERANGE (out of int64 range); -EINVAL.
 * Thread safety: any thread.
 */
int cli__ingest_parse_int(const char *s, size_t n, int64_t *out);

/*
 * A cell as a double, bit for bit what strtod() returns when it consumes the whole cell (so a
 * FLOAT is (float) of the result, as before). Cells of 64 bytes or more are rejected.
 * Returns: 0 and *out; -EINVAL.
 * Thread safety: any thread.
 */
int cli__ingest_parse_double(const char *s, size_t n, double *out);

/*
 * A timestamp cell as microseconds since the epoch. Two forms:
 *   - RFC 3339: "YYYY-MM-DD" 'T' (or 't' or a space) "hh:mm:ss", an optional fraction of one
 *     or more digits (digits past microseconds are dropped), then 'Z' (or 'z') or an offset
 *     "+hh:mm" / "-hh:mm". Every field has exactly its two (four for the year) digits; the date
 *     must exist (no Feb 30, no Feb 29 outside leap years); hours 0..23, minutes 0..59, seconds
 *     0..60 (a leap second is the next minute's first, as timegm() has it); offsets up to
 *     23:59. Years 0000..9999, proleptic Gregorian, UTC.
 *   - Seconds since the epoch: an integer as cli__ingest_parse_int() takes it, then an
 *     optional '.' and zero or more fraction digits ("5." is 5 s); the sign applies to the
 *     fraction too ("-0.5").
 * Nothing may follow (no trailing junk, no NUL bytes). s need not be NUL-terminated; cells of
 * 64 bytes or more are rejected.
 * Returns: 0 and *us; -EINVAL (*us untouched).
 * Thread safety: any thread.
 */
int cli__ingest_parse_time(const char *s, size_t n, int64_t *us);

/* The last timestamp text parsed and its value (exports usually carry one per batch of rows).
 * Zero-initialise. */
typedef struct cli__ts_memo {
    size_t n; /* 0 = empty */
    char text[64];
    int64_t us;
} cli__ts_memo_t;

/*
 * cli__ingest_parse_time() behind a one-entry memo: text equal to the last successfully
 * parsed one returns its value without parsing again. Same results and errors.
 * Thread safety: one thread per memo.
 */
int cli__ingest_parse_time_memo(cli__ts_memo_t *m, const char *s, size_t n, int64_t *us);

#endif /* CLI_INGEST_INT_H */
