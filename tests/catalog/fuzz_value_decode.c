/* tests/catalog/fuzz_value_decode.c - libFuzzer: feast.types.Value bytes from the network. */
#include <stdint.h>
#include <stdlib.h>

#include "catalog/catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A decoded value must encode to exactly its wire size and decode again to an equal value. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = 16 * size + 64;
    void *scratch = malloc(cap);
    catalog_value_t v;
    /* Half the runs get a scratch one byte short of the bound, to reach the -ENOSPC paths. */
    size_t use = size > 0 && (data[0] & 1) ? cap / 2 : cap;
    if (scratch != NULL && catalog_value_decode(data, size, &v, scratch, use) == 0) {
        size_t n = catalog_value_wire_size(&v);
        uint8_t *buf = malloc(n + 1);
        if (buf == NULL || catalog_value_encode(&v, buf, n) != (int)n)
            abort();
        void *scratch2 = malloc(16 * n + 64);
        catalog_value_t back;
        if (scratch2 == NULL || catalog_value_decode(buf, n, &back, scratch2, 16 * n + 64) != 0 ||
            !catalog_value_equal(&v, &back))
            abort();
        char text[64];
        catalog_value_format(&v, text, sizeof text);
        free(scratch2);
        free(buf);
    }
    free(scratch);
    return 0;
}
