/* tests/tmpdir.h - a fresh temporary directory for a test, under $TMPDIR (else /tmp). */
#ifndef TESTS_TMPDIR_H
#define TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes $TMPDIR/fstore-<what>-XXXXXX (or under /tmp) into out (cap bytes).
 * Returns: out, or NULL (mkdtemp failed, or the path does not fit). */
static inline char *test_tmpdir(const char *what, char *out, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    int n = snprintf(out, cap, "%s/fstore-%s-XXXXXX", tmp, what);
    if (n < 0 || (size_t)n >= cap)
        return NULL;
    return mkdtemp(out);
}

#endif /* TESTS_TMPDIR_H */
