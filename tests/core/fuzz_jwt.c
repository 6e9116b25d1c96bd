/* tests/core/fuzz_jwt.c - libFuzzer: bearer JWTs (any client sends one) and JWKS files. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte picks the decoder: even, the rest is a bearer token checked against the keys of
 * $FUZZ_JWKS (run-fuzz-jwt.sh makes them, and seeds tokens they sign); odd, the rest is a JWKS
 * file's text. A token is accepted (0, a subject) or refused (-EKEYREJECTED, with a reason),
 * never anything else; a JWKS loads (0) or is refused (-EINVAL); no crash, leak or sanitizer
 * report either way.
 */

static core__jwks_t *keys;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *path = getenv("FUZZ_JWKS");
    char why[256];
    if (path == NULL || core__jwks_load(path, &keys, why, sizeof why) != 0) {
        fprintf(stderr, "fuzz_jwt: FUZZ_JWKS: %s\n", path == NULL ? "not set" : why);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 3 * CORE_JWT_MAX)
        return 0;
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char why[256] = "";
    if ((data[0] & 1) == 0) {
        char sub[CORE_JWT_SUB_MAX] = "";
        int64_t exp = 0;
        /* A fixed "now" inside the seeds' validity, so a run does not age them out. */
        int rc = core__jwt_verify(keys, text, "https://issuer.test", "fstore", 1900000000, sub,
                                  sizeof sub, &exp, why, sizeof why);
        if (rc == 0 && (sub[0] == '\0' || exp <= 1900000000 - CORE_JWT_LEEWAY_S))
            abort(); /* accepted without a subject, or expired */
        if (rc != 0 && (rc != -EKEYREJECTED || why[0] == '\0'))
            abort(); /* refused without a reason, or with another error */
    } else {
        core__jwks_t *ks = NULL;
        int rc = core__jwks_parse(text, size - 1, "fuzz", &ks, why, sizeof why);
        if ((rc == 0) != (ks != NULL) || (rc != 0 && rc != -EINVAL))
            abort();
        core__jwks_free(ks);
    }
    free(text);
    return 0;
}
