/* tests/base/test_csv.c - CSV fields (base/csv.c, base_csv_field_len() in base/base.h). */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

Test(csv, field_lengths_match_a_byte_loop_at_every_offset_and_length)
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
                size_t got = base_csv_field_len(buf + start, n);
                if (got != want) /* (not cr_assert_eq: a million passing checks are slow) */
                    cr_assert_fail("round %d start %zu n %zu: %zu, want %zu", round, start, n, got,
                                   want);
            }
        }
    }
}

/* Every field of text, as "[field]" per field and "|" per record end. */
static void fields_of(const char *text, char *out, size_t cap, int *last)
{
    char buf[256];
    size_t n = strlen(text);
    memcpy(buf, text, n);
    base_csv_t c = {buf, buf + n, 1};
    size_t o = 0;
    out[0] = '\0';
    for (;;) {
        char *f;
        size_t len;
        int rc = base_csv_field(&c, &f, &len);
        *last = rc;
        if (rc < 0)
            return;
        o += (size_t)snprintf(out + o, cap - o, "[%.*s]%s", (int)len, f, rc == 0 ? "|" : "");
    }
}

Test(csv, quoted_fields_hold_commas_quotes_and_newlines)
{
    char out[256];
    int last;
    fields_of("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"0042\",\"x\ny\",\n", out, sizeof out, &last);
    cr_assert_str_eq(out, "[a][b,c][say \"hi\"]|[0042][x\ny][]|");
    cr_assert_eq(last, -1);
    fields_of("last,row", out, sizeof out, &last);
    cr_assert_str_eq(out, "[last][row]|");
}

Test(csv, a_quote_error_is_said)
{
    char out[256];
    int last;
    fields_of("\"open,1\n", out, sizeof out, &last);
    cr_assert_eq(last, -2, "unterminated");
    fields_of("\"a\"b,1\n", out, sizeof out, &last);
    cr_assert_eq(last, -2, "text after the closing quote");
}
