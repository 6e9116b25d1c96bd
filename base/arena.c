/* base/arena.c - the bump allocator: many small allocations, one release. */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/*
 * Chunks double as an arena grows, so a call that needs a lot costs a few mallocs, not one per
 * chunk size; a reset keeps a single chunk sized for everything the last use took, so the next
 * call of the same shape allocates nothing.
 */

#define ARENA_ALIGN alignof(max_align_t)

struct base_arena_chunk {
    base_arena_chunk_t *next;
    size_t cap;
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

void base_arena_init(base_arena_t *a, size_t first_size)
{
    memset(a, 0, sizeof *a);
    a->first_size = first_size < 1024 ? 1024 : first_size;
}

static base_arena_chunk_t *chunk_new(size_t cap)
{
    base_arena_chunk_t *c = malloc(sizeof *c + cap);
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

void *base_arena_alloc(base_arena_t *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (need < n)
        return NULL;
    if (need == 0)
        need = ARENA_ALIGN;
    base_arena_chunk_t *c = a->head;
    if (c == NULL || c->cap - c->used < need) {
        size_t cap = c != NULL ? c->cap * 2 : a->first_size != 0 ? a->first_size : 4096;
        if (cap < need)
            cap = need;
        base_arena_chunk_t *fresh = chunk_new(cap);
        if (fresh == NULL)
            return NULL;
        fresh->next = c;
        a->head = fresh;
        c = fresh;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used_total += need;
    return p;
}

void *base_arena_calloc(base_arena_t *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = base_arena_alloc(a, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void *base_arena_array(base_arena_t *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return base_arena_alloc(a, n * size);
}

char *base_arena_strndup(base_arena_t *a, const char *s, size_t len)
{
    char *p = base_arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    if (len > 0)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

int base_arena_grow(base_arena_t *a, void **array, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap < 8 ? 8 : *cap * 2;
    while (ncap < need)
        ncap *= 2;
    void *p = base_arena_array(a, ncap, elem);
    if (p == NULL)
        return -ENOMEM;
    if (*cap > 0)
        memcpy(p, *array, *cap * elem);
    memset((unsigned char *)p + *cap * elem, 0, (ncap - *cap) * elem);
    *array = p;
    *cap = ncap;
    return 0;
}

void base_arena_reset(base_arena_t *a)
{
    base_arena_chunk_t *c = a->head;
    if (c == NULL)
        return;
    if (c->next == NULL && c->cap <= BASE_ARENA_KEEP_MAX) {
        c->used = 0;
        a->used_total = 0;
        return;
    }
    /* Several chunks, or one over the cap (a first allocation bigger than BASE_ARENA_KEEP_MAX
     * gets a chunk of its own size): replace them with one that holds everything the last use
     * needed, or with nothing when that is over the cap. */
    size_t want = a->used_total;
    base_arena_free(a);
    if (want > BASE_ARENA_KEEP_MAX)
        return;
    if (want < a->first_size)
        want = a->first_size;
    a->head = chunk_new(want);
}

void base_arena_free(base_arena_t *a)
{
    if (a == NULL)
        return;
    base_arena_chunk_t *c = a->head;
    while (c != NULL) {
        base_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used_total = 0;
}
