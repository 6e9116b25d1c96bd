/* tests/catalog/fuzz_catalog_load.c - libFuzzer: catalog YAML in, and dumps that must reload. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Any input may fail to load, but nothing may crash or leak, and a catalog that loads must dump
 * to YAML that loads back into the same catalog (same digest, same dump): the data directory
 * depends on that round trip.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    if (catalog_load_string((const char *)data, size, "fuzz.yaml", &c, &errs) != 0) {
        catalog_errors_clear(&errs);
        return 0;
    }
    char *yaml = NULL;
    size_t len = 0;
    if (catalog_dump_yaml(c, &yaml, &len) != 0)
        abort();
    catalog_t *again = NULL;
    if (catalog_load_string(yaml, len, "dump.yaml", &again, &errs) != 0) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%d:%d: %s: %s\n", errs.items[i].line, errs.items[i].column,
                    errs.items[i].key, errs.items[i].message);
        fprintf(stderr, "dump does not reload:\n%s\n", yaml);
        abort();
    }
    if (strcmp(catalog_digest(c), catalog_digest(again)) != 0) {
        fprintf(stderr, "digest changed across a dump:\n%s\n", yaml);
        abort();
    }
    catalog_unref(again);
    free(yaml);
    catalog_unref(c);
    return 0;
}
