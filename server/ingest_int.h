/* server/ingest_int.h - number parsing for `fstore ingest` (server/ingest_parse.c). */
#ifndef SERVER_INGEST_INT_H
#define SERVER_INGEST_INT_H

#include <stddef.h>
#include <stdint.h>

/*
 * A CSV or JSON-string cell as an integer: exactly what strtoll(s, &end, 10) accepts when it
 * consumes the whole cell (leading white space, an optional sign, decimal digits). s need not be
 * NUL-terminated; cells of 32 bytes or more are rejected.
 * Returns: 0 and *out; -ERANGE (out of int64 range); -EINVAL.
 * Thread safety: any thread.
 */
int server__ingest_parse_int(const char *s, size_t n, int64_t *out);

/*
 * A cell as a double, bit for bit what strtod() returns when it consumes the whole cell (so a
 * FLOAT is (float) of the result, as before). Cells of 64 bytes or more are rejected.
 * Returns: 0 and *out; -EINVAL.
 * Thread safety: any thread.
 */
int server__ingest_parse_double(const char *s, size_t n, double *out);

#endif /* SERVER_INGEST_INT_H */
