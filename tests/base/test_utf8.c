/* tests/base/test_utf8.c - UTF-8 validation as RFC 3629 has it. */
#include <criterion/criterion.h>
#include <string.h>

#include "base/base.h"

static size_t bad_at(const char *s, size_t n)
{
    return base_utf8_bad_at((const uint8_t *)s, n);
}

Test(utf8, accepts_ascii_and_every_sequence_length)
{
    const char *ok[] = {
        "", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert(base_utf8_valid((const uint8_t *)ok[i], strlen(ok[i])), "case %zu", i);
}

Test(utf8, names_the_first_bad_byte)
{
    cr_assert_eq(bad_at("ab\xc3\x28", 4), 2, "a bad continuation byte");
    cr_assert_eq(bad_at("ab\xc0\xaf", 4), 2, "an overlong '/'");
    cr_assert_eq(bad_at("\xed\xa0\x80", 3), 0, "a surrogate");
    cr_assert_eq(bad_at("x\xf4\x90\x80\x80", 5), 1, "above U+10FFFF");
    cr_assert_eq(bad_at("xy\xe2\x82", 4), 2, "a truncated sequence");
    cr_assert_eq(bad_at("\xff", 1), 0, "a byte that never starts a sequence");
    cr_assert_eq(bad_at("a\x80", 2), 1, "a lone continuation byte");
}
