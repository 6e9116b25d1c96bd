/* core/slots.c - the table both per-worker caches keep: slots of entries for one catalog. */
#include <stdint.h>
#include <stdlib.h>

#include "core/core_int.h"

void core__slots_clear(core__slots_t *t)
{
    for (size_t i = 0; i < CORE__SLOTS; i++) {
        free(t->slot[i]);
        t->slot[i] = NULL;
    }
    catalog_unref(t->catalog);
    t->catalog = NULL;
}

void core__slots_use(core__slots_t *t, const catalog_t *cat)
{
    if (t->catalog == cat)
        return;
    core__slots_clear(t);
    /* A request only holds the catalog pinned; the table needs it to outlive the request. */
    t->catalog = catalog_ref((catalog_t *)(uintptr_t)cat);
}

void core__slots_put(core__slots_t *t, size_t i, void *e)
{
    free(t->slot[i]);
    t->slot[i] = e;
}
