/* base/name_index.c - open addressing over an array of names, and duplicate detection. */
#include <errno.h>
#include <string.h>

#include "base/base.h"

/*
 * Slots hold index + 1 into the caller's arrays rather than pointers, so an index is a plain
 * array of uint32_t that can be copied into a cache block as it is (the names beside it are
 * copied with it). Linear probing at most half full.
 */

int base_name_index_init(base_arena_t *a, base_name_index_t *ix, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    if (cap > UINT32_MAX)
        return -ENOMEM;
    uint32_t *slots = base_arena_calloc(a, cap, sizeof *slots);
    if (slots == NULL)
        return -ENOMEM;
    *ix = (base_name_index_t){.slots = slots, .mask = (uint32_t)(cap - 1)};
    return 0;
}

long base_name_index_add(base_name_index_t *ix, const char *const *names, const size_t *lens,
                         size_t i)
{
    size_t h = (size_t)base_fnv1a(names[i], lens[i], BASE_FNV_OFFSET) & ix->mask;
    long first = -1;
    for (; ix->slots[h] != 0; h = (h + 1) & ix->mask) {
        size_t j = ix->slots[h] - 1;
        if (first < 0 && lens[j] == lens[i] && memcmp(names[j], names[i], lens[i]) == 0)
            first = (long)j;
    }
    ix->slots[h] = (uint32_t)i + 1;
    return first;
}

long base_name_index_build(base_arena_t *a, const char *const *names, const size_t *lens, size_t n,
                           base_name_index_t *ix, long *dup)
{
    if (base_name_index_init(a, ix, n) < 0)
        return -ENOMEM;
    long repeats = 0;
    for (size_t i = 0; i < n; i++) {
        long first = base_name_index_add(ix, names, lens, i);
        repeats += first >= 0;
        if (dup != NULL)
            dup[i] = first;
    }
    return repeats;
}

long base_name_index_find(const base_name_index_t *ix, const char *const *names, const size_t *lens,
                          const char *name, size_t len)
{
    size_t h = (size_t)base_fnv1a(name, len, BASE_FNV_OFFSET) & ix->mask;
    for (; ix->slots[h] != 0; h = (h + 1) & ix->mask) {
        size_t j = ix->slots[h] - 1;
        if (lens[j] == len && memcmp(names[j], name, len) == 0)
            return (long)j;
    }
    return -1;
}

int base_find_duplicate(base_arena_t *a, const char *const *names, size_t n, size_t *first,
                        size_t *second)
{
    size_t *lens = base_arena_array(a, n == 0 ? 1 : n, sizeof *lens);
    long *dup = base_arena_array(a, n == 0 ? 1 : n, sizeof *dup);
    if (lens == NULL || dup == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(names[i]);
    base_name_index_t ix;
    long repeats = base_name_index_build(a, names, lens, n, &ix, dup);
    if (repeats <= 0)
        return (int)repeats;
    for (size_t i = 0; i < n; i++) {
        if (dup[i] >= 0) {
            *first = (size_t)dup[i];
            *second = i;
            break;
        }
    }
    return 1;
}
