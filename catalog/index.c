/* catalog/index.c - lookups by name: a base name index over keys, beside their values. */
#include <errno.h>

#include "catalog/catalog_int.h"

int catalog__index_init(base_arena_t *a, catalog__index_t *ix, size_t n)
{
    size_t cap = n == 0 ? 1 : n;
    ix->keys = base_arena_array(a, cap, sizeof *ix->keys);
    ix->lens = base_arena_array(a, cap, sizeof *ix->lens);
    ix->vals = base_arena_array(a, cap, sizeof *ix->vals);
    if (ix->keys == NULL || ix->lens == NULL || ix->vals == NULL ||
        base_name_index_init(a, &ix->ix, cap) < 0)
        return -ENOMEM;
    ix->n = 0;
    ix->cap = cap;
    return 0;
}

int catalog__index_put(catalog__index_t *ix, const char *key, size_t len, const void *val)
{
    if (ix->n == ix->cap)
        return -ENOSPC;
    size_t i = ix->n++;
    ix->keys[i] = key;
    ix->lens[i] = len;
    ix->vals[i] = val;
    /* An equal key added before is found first, so its value stays. */
    return base_name_index_add(&ix->ix, ix->keys, ix->lens, i) >= 0 ? -EEXIST : 0;
}

const void *catalog__index_get(const catalog__index_t *ix, const char *key, size_t len)
{
    if (ix->keys == NULL)
        return NULL;
    long i = base_name_index_find(&ix->ix, ix->keys, ix->lens, key, len);
    return i < 0 ? NULL : ix->vals[i];
}
