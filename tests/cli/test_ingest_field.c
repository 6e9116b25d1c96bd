/* tests/cli/test_ingest_field.c - CSV field scanning of `fstore ingest` (cli/ingest_int.h). */
#include <criterion/criterion.h>
#include <stddef.h>

#include "cli/ingest_int.h"

Test(ingest_field, field_lengths_match_a_byte_loop_at_every_offset_and_length)
{
    /* Separators at every position of a word, next to bytes whose borrow could mislead (',' - 1,
     * '\n' + 1, 0x80, 0x00), and none at all; every start and length, so the tail loop and the
     * bound are covered too. */
    static const char alphabet[] = {'a', ',', '\n', ',' - 1, '\n' + 1, (char)0x80, '\0', '"'};
    char buf[64];
    unsigned seed = 12345;
    for (int round = 0; round < 500; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) % 16;
            buf[i] = r < 8 ? 'x' : alphabet[r - 8];
        }
        for (size_t start = 0; start < 9; start++) {
            for (size_t n = 0; start + n <= sizeof buf; n++) {
                size_t want = 0;
                while (want < n && buf[start + want] != ',' && buf[start + want] != '\n')
                    want++;
                size_t got = cli__ingest_field_len(buf + start, n);
                if (got != want) /* (not cr_assert_eq: a million passing checks are slow) */
                    cr_assert_fail("round %d start %zu n %zu: %zu, want %zu", round, start, n, got,
                                   want);
            }
        }
    }
}
