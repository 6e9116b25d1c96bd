/* cli/ingest_int.h - CSV scanning for `fstore ingest` (numbers and times: base/base.h). */
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

#endif /* CLI_INGEST_INT_H */
