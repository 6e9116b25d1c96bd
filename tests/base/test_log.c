/* tests/base/test_log.c - base_log's two formats: JSON lines, and text lines that split back into
 * their fields whatever the values hold. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

static char got[2 * BASE_LOG_TEXT_LINE_MAX];

/* Runs base_log with stderr sent to a temporary file; leaves the line(s) in got. */
#define CAPTURE(...)                                                                               \
    do {                                                                                           \
        FILE *f_ = tmpfile();                                                                      \
        cr_assert_not_null(f_);                                                                    \
        fflush(stderr);                                                                            \
        int saved_ = dup(STDERR_FILENO);                                                           \
        dup2(fileno(f_), STDERR_FILENO);                                                           \
        base_log(__VA_ARGS__);                                                                     \
        dup2(saved_, STDERR_FILENO);                                                               \
        close(saved_);                                                                             \
        rewind(f_);                                                                                \
        size_t n_ = fread(got, 1, sizeof got - 1, f_);                                             \
        got[n_] = '\0';                                                                            \
        fclose(f_);                                                                                \
    } while (0)

Test(log, text_values_are_quoted_and_escaped_so_the_line_splits_back)
{
    base_log_setup(BASE_LOG_TEXT);
    CAPTURE(BASE_LOG_WARN, "catalog_reload_rejected", "{s:s, s:s, s:s, s:i, s:[{s:s}], s:s, s:s}",
            "plain", "abc", "path", "/tmp/cat dir \"q\"", "multi", "a\nb\tc\\d\x01", "n", 3,
            "errors", "file", "x \"y\"", "empty", "", "bare", "a\"b\\c");
    base_log_setup(BASE_LOG_JSON);
    const char *fields = strstr(got, "catalog_reload_rejected ");
    cr_assert_not_null(fields, "%s", got);
    cr_assert(strstr(got, " warn  ") != NULL, "%s", got);
    cr_assert(strstr(fields, " plain=abc ") != NULL, "%s", got);
    cr_assert(strstr(fields, " path=\"/tmp/cat dir \\\"q\\\"\" ") != NULL, "%s", got);
    cr_assert(strstr(fields, " multi=\"a\\nb\\tc\\\\d\\x01\" ") != NULL, "%s", got);
    cr_assert(strstr(fields, " n=3 ") != NULL, "%s", got);
    cr_assert(strstr(fields, " errors=\"[{\\\"file\\\":\\\"x \\\\\\\"y\\\\\\\"\\\"}]\" ") != NULL,
              "%s", got);
    cr_assert(strstr(fields, " empty=\"\"") != NULL, "%s", got);
    cr_assert(strstr(fields, " bare=\"a\\\"b\\\\c\"\n") != NULL, "%s", got);
    /* One line: no raw newline inside it. */
    cr_assert_eq(strchr(got, '\n'), got + strlen(got) - 1, "%s", got);
}

Test(log, a_text_line_too_long_says_it_was_cut)
{
    size_t len = BASE_LOG_TEXT_LINE_MAX + 100;
    char *big = malloc(len + 1);
    memset(big, 'x', len);
    big[len] = '\0';
    base_log_setup(BASE_LOG_TEXT);
    CAPTURE(BASE_LOG_INFO, "big", "{s:s, s:s}", "value", big, "after", "never");
    base_log_setup(BASE_LOG_JSON);
    free(big);
    size_t n = strlen(got);
    cr_assert_leq(n, BASE_LOG_TEXT_LINE_MAX);
    cr_assert(n > 16 && strcmp(got + n - 16, " ...(truncated)\n") == 0, "%s", got + n - 40);
    cr_assert_null(strstr(got, "after="));
    /* The field that did not fit is left out whole: no half value, no unbalanced quote. */
    cr_assert_null(strstr(got, "value="), "%.80s", got);
}

Test(log, every_cut_keeps_the_line_whole_and_its_quotes_balanced)
{
    /* Values of every length around the line's end, quoted (with escapes) and not: the line is
     * text to its end (no NUL), its quotes pair up, and a cut comes after a whole field. */
    char *val = malloc(BASE_LOG_TEXT_LINE_MAX + 64);
    base_log_setup(BASE_LOG_TEXT);
    for (size_t len = BASE_LOG_TEXT_LINE_MAX - 120; len < BASE_LOG_TEXT_LINE_MAX; len += 7) {
        for (int quoted = 0; quoted < 2; quoted++) {
            memset(val, 'x', len);
            if (quoted)
                val[len / 2] = '"', val[len - 1] = ' ';
            val[len] = '\0';
            FILE *f = tmpfile();
            fflush(stderr);
            int saved = dup(STDERR_FILENO);
            dup2(fileno(f), STDERR_FILENO);
            base_log(BASE_LOG_INFO, "e", "{s:s, s:s}", "a", "1", "v", val);
            dup2(saved, STDERR_FILENO);
            close(saved);
            rewind(f);
            size_t n = fread(got, 1, sizeof got - 1, f);
            fclose(f);
            got[n] = '\0';
            cr_assert_eq(strlen(got), n, "a NUL inside the line (len %zu)", len);
            cr_assert_eq(got[n - 1], '\n');
            size_t quotes = 0;
            for (size_t i = 0; i < n; i++)
                quotes += got[i] == '"' && (i == 0 || got[i - 1] != '\\');
            cr_assert_eq(quotes % 2, 0, "unbalanced quotes (len %zu, quoted %d)", len, quoted);
            bool cut = n > 16 && strcmp(got + n - 16, " ...(truncated)\n") == 0;
            cr_assert(cut || strstr(got, " v=") != NULL, "len %zu", len);
            if (cut)
                cr_assert_null(strstr(got, " v="), "a cut field was written in part");
        }
    }
    base_log_setup(BASE_LOG_JSON);
    free(val);
}

Test(log, json_lines_parse_and_keep_every_field)
{
    base_log_setup(BASE_LOG_JSON);
    CAPTURE(BASE_LOG_ERROR, "ev", "{s:s, s:i}", "path", "a \"b\"\n", "n", 7);
    json_error_t err;
    json_t *j = json_loads(got, 0, &err);
    cr_assert_not_null(j, "%s: %s", err.text, got);
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "ev");
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "error");
    cr_assert_str_eq(json_string_value(json_object_get(j, "path")), "a \"b\"\n");
    cr_assert_eq(json_integer_value(json_object_get(j, "n")), 7);
    json_decref(j);
}
