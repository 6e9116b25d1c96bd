/* server/arena.c - bump allocator per call slot, doubling as protobuf-c's allocator. */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

/*
 * A call's memory (the unpacked request, resolved references, cells, names) lives exactly as long
 * as the call, so a bump allocator that forgets everything at once fits, and after a reset it
 * keeps one chunk sized for the previous call: a steady workload stops calling malloc at all.
 */

#define ARENA_ALIGN alignof(max_align_t)
/* Chunks bigger than this are not kept across calls: one huge request should not pin memory
 * in every slot (there are dozens per worker) forever. */
#define ARENA_KEEP_MAX ((size_t)1 << 20)

struct server_arena_chunk {
    server_arena_chunk_t *next;
    size_t cap;
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

static void *pb_alloc(void *data, size_t size)
{
    return server__arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    /* Everything goes at the arena reset. */
    (void)data;
    (void)ptr;
}

void server__arena_init(server_arena_t *a, size_t first_size)
{
    memset(a, 0, sizeof *a);
    a->first_size = first_size < 1024 ? 1024 : first_size;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
}

static server_arena_chunk_t *chunk_new(size_t cap)
{
    server_arena_chunk_t *c = malloc(sizeof *c + cap);
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

void *server__arena_alloc(server_arena_t *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (need < n)
        return NULL;
    if (need == 0)
        need = ARENA_ALIGN;
    server_arena_chunk_t *c = a->head;
    if (c == NULL || c->cap - c->used < need) {
        size_t cap = c == NULL ? a->first_size : c->cap * 2;
        if (cap < need)
            cap = need;
        server_arena_chunk_t *fresh = chunk_new(cap);
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

void *server__arena_calloc(server_arena_t *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = server__arena_alloc(a, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void *server__arena_array(server_arena_t *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return server__arena_alloc(a, n * size);
}

char *server__arena_strndup(server_arena_t *a, const char *s, size_t len)
{
    char *p = server__arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void server__arena_reset(server_arena_t *a)
{
    server_arena_chunk_t *c = a->head;
    if (c == NULL)
        return;
    if (c->next == NULL && c->cap <= ARENA_KEEP_MAX) {
        c->used = 0;
        a->used_total = 0;
        return;
    }
    /* Several chunks, or one over the cap (a first allocation bigger than ARENA_KEEP_MAX gets a
     * chunk of its own size): replace them with one that holds everything the last call needed,
     * or with nothing when that is over the cap. */
    size_t want = a->used_total;
    server__arena_free(a);
    a->used_total = 0;
    if (want > ARENA_KEEP_MAX)
        return;
    if (want < a->first_size)
        want = a->first_size;
    a->head = chunk_new(want);
}

void server__arena_free(server_arena_t *a)
{
    if (a == NULL)
        return;
    server_arena_chunk_t *c = a->head;
    while (c != NULL) {
        server_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used_total = 0;
}

ProtobufCAllocator *server__arena_allocator(server_arena_t *a)
{
    return &a->pb;
}
