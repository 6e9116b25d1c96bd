/* tests/base/test_base64.c - base64 both ways, strict and lenient, against fixed vectors. */
#include <criterion/criterion.h>
#include <string.h>

#include "base/base.h"

Test(base64, rfc_4648_vectors_encode_and_decode)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        size_t n = base_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out);
        cr_assert_eq(n, BASE_BASE64_LEN(strlen(plain[i])));
        cr_assert_eq(n, strlen(coded[i]));
        cr_assert_eq(memcmp(out, coded[i], n), 0);
        uint8_t back[16];
        cr_assert_eq(base_base64_decode(coded[i], n, back, 0), (long)strlen(plain[i]));
        cr_assert_eq(memcmp(back, plain[i], strlen(plain[i])), 0);
    }
}

Test(base64, every_length_and_byte_round_trips)
{
    uint8_t bytes[300], back[300];
    char text[BASE_BASE64_LEN(300)];
    for (size_t n = 0; n < sizeof bytes; n++) {
        for (size_t i = 0; i < n; i++)
            bytes[i] = (uint8_t)(i * 37 + n);
        size_t m = base_base64_encode(bytes, n, text);
        cr_assert_leq(BASE_BASE64_DECODED_MAX(m), sizeof back + 3);
        cr_assert_eq(base_base64_decode(text, m, back, 0), (long)n);
        cr_assert_eq(memcmp(back, bytes, n), 0);
    }
}

Test(base64, strict_refuses_what_is_not_padded_standard_base64)
{
    uint8_t back[16];
    cr_assert_eq(base_base64_decode("AAE", 3, back, 0), -1, "unpadded");
    cr_assert_eq(base_base64_decode("A=AA", 4, back, 0), -1, "data after padding");
    cr_assert_eq(base_base64_decode("AA*A", 4, back, 0), -1, "not in the alphabet");
    cr_assert_eq(base_base64_decode("AA==AAAA", 8, back, 0), -1, "padding inside");
    cr_assert_eq(base_base64_decode("AA-_", 4, back, 0), -1, "URL-safe alphabet");
    cr_assert_eq(base_base64_decode("A===", 4, back, 0), -1, "six bits make no byte");
}

Test(base64, lenient_takes_either_alphabet_and_optional_padding_but_not_damage)
{
    uint8_t back[16];
    cr_assert_eq(base_base64_decode("AAH-_w", 6, back, BASE_BASE64_LENIENT), 4);
    cr_assert_eq(memcmp(back, "\x00\x01\xfe\xff", 4), 0);
    cr_assert_eq(base_base64_decode("AAH+/w==", 8, back, BASE_BASE64_LENIENT), 4);
    cr_assert_eq(base_base64_decode("AAE", 3, back, BASE_BASE64_LENIENT), 2);
    cr_assert_eq(base_base64_decode("AAAAA", 5, back, BASE_BASE64_LENIENT), -1,
                 "a lone trailing character");
    cr_assert_eq(base_base64_decode("AA=A", 4, back, BASE_BASE64_LENIENT), -1);
    cr_assert_eq(base_base64_decode("AA===", 5, back, BASE_BASE64_LENIENT), -1, "three pads");
    /* Padding, when present, completes a quantum of four exactly. */
    cr_assert_eq(base_base64_decode("AA=", 3, back, BASE_BASE64_LENIENT), -1, "one pad short");
    cr_assert_eq(base_base64_decode("AAE==", 5, back, BASE_BASE64_LENIENT), -1, "a pad too many");
    cr_assert_eq(base_base64_decode("AAE=", 4, back, BASE_BASE64_LENIENT), 2);
    cr_assert_eq(base_base64_decode("%%", 2, back, BASE_BASE64_LENIENT), -1);
}
