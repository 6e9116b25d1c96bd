/* tests/core/test_auth.c - tokens files and core_authorize() (core/auth.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "tests/tmpdir.h"

/* A well-formed hash for the parsing cases (of no token in particular). The hashes of real
 * tokens come from coreutils' sha256sum (hash_of()), not from the code under test. */
#define READER "8f2f9a5d2bb9a4bf9c0bd4f74bba7c0f1d7f1a8dc3c7b8e6f7d3cb5fa3e1b0a4"

static char dir[1024], path[1100];

static void write_tokens(const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    cr_assert_not_null(test_tmpdir("auth", dir, sizeof dir));
    snprintf(path, sizeof path, "%s/tokens", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

TestSuite(auth, .init = setup, .fini = teardown);

/* A hash line for a token, made with sha256sum. */
static void hash_of(const char *token, char out[65])
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "printf %%s '%s' | sha256sum", token);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(out, 65, p));
    pclose(p);
    cr_assert_eq(strlen(out), 64);
}

Test(auth, scopes_are_checked_and_messages_name_the_principal_never_the_token)
{
    char r[65], w[65], a[65], text[1024];
    hash_of("reader-secret", r);
    hash_of("writer-secret", w);
    hash_of("admin-secret", a);
    snprintf(text, sizeof text,
             "# name  sha256  scopes\n"
             "dashboards %s read\n"
             "\n"
             "pipeline   %s read,write   # the feature pipeline\n"
             "ops        %s admin\n",
             r, w, a);
    write_tokens(text);
    core_tokens_t *ts = NULL;
    char why[256];
    cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), 0, "%s", why);
    size_t n = 0;
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), 0, "%s", why);
    cr_assert_eq(n, 3); /* the file's three principals (reloading the same file keeps them) */

    core_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer reader-secret", CORE_SCOPE_READ), 0);
    cr_assert_str_eq(ctx.principal, "dashboards");
    cr_assert_eq(core_authorize(&ctx, ts, "bearer  reader-secret", CORE_SCOPE_READ), 0,
                 "the scheme is case-insensitive");
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer reader-secret", CORE_SCOPE_WRITE), -EPERM);
    cr_assert(strstr(ctx.msg, "'dashboards' lacks the 'write' scope") != NULL, "%s", ctx.msg);
    cr_assert(strstr(ctx.msg, "secret") == NULL, "the token never appears: %s", ctx.msg);
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer writer-secret", CORE_SCOPE_WRITE), 0);
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer writer-secret", CORE_SCOPE_ADMIN), -EPERM);
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer admin-secret", CORE_SCOPE_ADMIN), 0);
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer admin-secret", CORE_SCOPE_WRITE), 0,
                 "admin implies write");
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer reader-secreT", CORE_SCOPE_READ), -EKEYREJECTED);
    cr_assert_null(ctx.principal, "a refused call names nobody");
    cr_assert(strstr(ctx.msg, "secre") == NULL, "%s", ctx.msg);
    cr_assert_eq(core_authorize(&ctx, ts, NULL, CORE_SCOPE_READ), -ENOKEY);
    cr_assert(strstr(ctx.msg, "'read' scope") != NULL, "%s", ctx.msg);
    cr_assert_eq(core_authorize(&ctx, ts, "Basic cmVhZGVy", CORE_SCOPE_READ), -ENOKEY);
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer ", CORE_SCOPE_READ), -ENOKEY);
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer admin-secret", CORE_SCOPE_READ), 0);
    cr_assert_eq(core_authorize(&ctx, ts, NULL, 0), 0, "probes need no scope");
    cr_assert_null(ctx.principal, "not the previous call's principal");
    cr_assert_eq(core_authorize(&ctx, NULL, NULL, CORE_SCOPE_ADMIN), 0, "no tokens file: open");
    core_tokens_free(ts);
}

Test(auth, a_bad_file_names_its_line)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"a 1234 read\n", ":1: the hash is not 64 hex digits"},
        {"# c\na " READER " fly\n", ":2: unknown scope 'fly'"},
        {"a " READER "\n", ":1: want NAME SHA256-HEX SCOPES"},
        {"a " READER " read\na " READER " write\n", ":2: 'a' is named twice"},
        {"# only comments\n\n", "no tokens"},
        {"a zz2f9a5d2bb9a4bf9c0bd4f74bba7c0f1d7f1a8dc3c7b8e6f7d3cb5fa3e1b0a4 read\n",
         ":1: the hash is not 64 hex digits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_tokens(cases[i].text);
        core_tokens_t *ts = NULL;
        char why[256] = "";
        cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), -EINVAL, "case %zu", i);
        cr_assert(strstr(why, cases[i].want) != NULL, "case %zu: %s", i, why);
        cr_assert_null(ts);
    }
    core_tokens_t *ts = NULL;
    char why[256];
    cr_assert_eq(core_tokens_load("/nonexistent/tokens", &ts, why, sizeof why), -ENOENT);
}

Test(auth, a_reload_swaps_the_principals_and_a_bad_file_keeps_the_old_ones)
{
    char r[65], w[65], text[512];
    hash_of("old-secret", r);
    hash_of("new-secret", w);
    snprintf(text, sizeof text, "alice %s read\n", r);
    write_tokens(text);
    core_tokens_t *ts = NULL;
    char why[256];
    cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), 0, "%s", why);
    core_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer old-secret", CORE_SCOPE_READ), 0);
    const char *was = ctx.principal;

    /* rotated: alice's token replaced, bob added */
    snprintf(text, sizeof text, "alice %s read\nbob %s read,write\n", w, r);
    write_tokens(text);
    size_t n = 0;
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), 0, "%s", why);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(was, "alice", "a principal a call holds outlives the reload");
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer new-secret", CORE_SCOPE_READ), 0);
    cr_assert_str_eq(ctx.principal, "alice");
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer old-secret", CORE_SCOPE_WRITE), 0);
    cr_assert_str_eq(ctx.principal, "bob");

    /* a file that does not load: refused, the table as it was */
    write_tokens("carol not-a-hash read\n");
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, ":1:") != NULL, "%s", why);
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer new-secret", CORE_SCOPE_READ), 0);
    unlink(path);
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), -ENOENT);
    cr_assert_eq(core_authorize(&ctx, ts, "Bearer old-secret", CORE_SCOPE_READ), 0);
    core_tokens_free(ts);
}
