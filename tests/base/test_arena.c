/* tests/base/test_arena.c - the bump arena: alignment, growth, resets, zeroing. */
#include <criterion/criterion.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"

Test(arena, allocations_are_aligned_and_distinct)
{
    base_arena_t a;
    base_arena_init(&a, 1024);
    char *prev = NULL;
    for (size_t n = 1; n < 300; n += 7) {
        char *p = base_arena_alloc(&a, n);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % alignof(max_align_t), 0);
        memset(p, 0xab, n);
        cr_assert_neq(p, prev);
        prev = p;
    }
    base_arena_free(&a);
}

Test(arena, grows_past_its_first_chunk_and_keeps_old_memory_valid)
{
    base_arena_t a;
    base_arena_init(&a, 1024);
    char *first = base_arena_alloc(&a, 100);
    strcpy(first, "still here");
    void *big = base_arena_alloc(&a, 1 << 20);
    cr_assert_not_null(big);
    memset(big, 1, 1 << 20);
    cr_assert_str_eq(first, "still here");
    base_arena_free(&a);
}

Test(arena, reset_keeps_one_chunk_big_enough_for_the_last_use)
{
    base_arena_t a;
    base_arena_init(&a, 1024);
    for (int i = 0; i < 100; i++)
        cr_assert_not_null(base_arena_alloc(&a, 500));
    base_arena_reset(&a);
    cr_assert_not_null(a.head);
    /* The same workload now fits the one kept chunk: no new chunk appears. */
    void *head = a.head;
    for (int i = 0; i < 100; i++)
        cr_assert_not_null(base_arena_alloc(&a, 500));
    cr_assert_eq((void *)a.head, head);
    base_arena_free(&a);
    cr_assert_null(a.head);
}

Test(arena, calloc_zeroes_and_refuses_overflow)
{
    base_arena_t a;
    base_arena_init(&a, 1024);
    int *p = base_arena_calloc(&a, 64, sizeof *p);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(p[i], 0);
    cr_assert_null(base_arena_calloc(&a, SIZE_MAX / 2, 4));
    char *s = base_arena_strndup(&a, "abcdef", 3);
    cr_assert_str_eq(s, "abc");
    base_arena_free(&a);
}

Test(arena, reset_drops_a_single_chunk_over_the_keep_cap)
{
    /* One allocation bigger than the cap gets a chunk of its own as the arena's only chunk;
     * keeping it would pin a message-sized chunk in the call slot forever. */
    base_arena_t a;
    base_arena_init(&a, 1024);
    cr_assert_not_null(base_arena_alloc(&a, 4u << 20));
    base_arena_reset(&a);
    cr_assert_null(a.head);
    /* The arena still works, and a small workload's chunk is still kept. */
    cr_assert_not_null(base_arena_alloc(&a, 100));
    void *head = a.head;
    base_arena_reset(&a);
    cr_assert_eq((void *)a.head, head);
    base_arena_free(&a);
}
