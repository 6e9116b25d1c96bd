/* tests/core/test_auth.c - tokens files and core_authorize() (core/auth.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/core_int.h"
#include "tests/tmpdir.h"

/* A call that sends this authorization header (NULL: none). */
#define BEARER(s) (&(core_creds_t){.authorization = (s)})

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
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer reader-secret"), CORE_SCOPE_READ), 0);
    cr_assert_str_eq(ctx.principal, "dashboards");
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("bearer  reader-secret"), CORE_SCOPE_READ), 0,
                 "the scheme is case-insensitive");
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer reader-secret"), CORE_SCOPE_WRITE),
                 -EPERM);
    cr_assert(strstr(ctx.msg, "'dashboards' lacks the 'write' scope") != NULL, "%s", ctx.msg);
    cr_assert(strstr(ctx.msg, "secret") == NULL, "the token never appears: %s", ctx.msg);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer writer-secret"), CORE_SCOPE_WRITE), 0);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer writer-secret"), CORE_SCOPE_ADMIN),
                 -EPERM);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer admin-secret"), CORE_SCOPE_ADMIN), 0);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer admin-secret"), CORE_SCOPE_WRITE), 0,
                 "admin implies write");
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer reader-secreT"), CORE_SCOPE_READ),
                 -EKEYREJECTED);
    cr_assert_null(ctx.principal, "a refused call names nobody");
    cr_assert(strstr(ctx.msg, "secre") == NULL, "%s", ctx.msg);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER(NULL), CORE_SCOPE_READ), -ENOKEY);
    cr_assert(strstr(ctx.msg, "'read' scope") != NULL, "%s", ctx.msg);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Basic cmVhZGVy"), CORE_SCOPE_READ), -ENOKEY);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer "), CORE_SCOPE_READ), -ENOKEY);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer admin-secret"), CORE_SCOPE_READ), 0);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER(NULL), 0), 0, "probes need no scope");
    cr_assert_null(ctx.principal, "not the previous call's principal");
    cr_assert_eq(core_authorize(&ctx, NULL, BEARER(NULL), CORE_SCOPE_ADMIN), 0,
                 "no tokens file: open");
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
        {"a " READER " read:table/x\n", ":1: unknown scope 'read:table/x' (read, write, admin; "
                                        "or limited: read:view/NAME"},
        {"a " READER " write:service/s\n", ":1: unknown scope 'write:service/s'"},
        {"a " READER " read:view/\n", ":1: unknown scope 'read:view/'"},
        {"a " READER " read:view\n", ":1: unknown scope 'read:view'"},
        {"a " READER " admin:view/x\n", ":1: unknown scope 'admin:view/x'"},
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
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer old-secret"), CORE_SCOPE_READ), 0);
    const char *was = ctx.principal;

    /* rotated: alice's token replaced, bob added */
    snprintf(text, sizeof text, "alice %s read\nbob %s read,write\n", w, r);
    write_tokens(text);
    size_t n = 0;
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), 0, "%s", why);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(was, "alice", "a principal a call holds outlives the reload");
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer new-secret"), CORE_SCOPE_READ), 0);
    cr_assert_str_eq(ctx.principal, "alice");
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer old-secret"), CORE_SCOPE_WRITE), 0);
    cr_assert_str_eq(ctx.principal, "bob");

    /* a file that does not load: refused, the table as it was */
    write_tokens("carol not-a-hash read\n");
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, ":1:") != NULL, "%s", why);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer new-secret"), CORE_SCOPE_READ), 0);
    unlink(path);
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), -ENOENT);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer old-secret"), CORE_SCOPE_READ), 0);
    core_tokens_free(ts);
}

/* Scopes limited to named resources: they pass the header check of their scope, and the core's
 * checks of the resources the call meets (core__allow_*) let through only those named. */
Test(auth, a_limited_scope_passes_its_header_check_and_only_its_resources)
{
    char r[65], m[65], text[1024];
    hash_of("ranker-secret", r);
    hash_of("mixed-secret", m);
    snprintf(text, sizeof text,
             "ranker %s read:view/driver_stats,read:service/scoring,read:model/zone\n"
             "mixed  %s write,read:view/driver_stats\n",
             r, m);
    write_tokens(text);
    core_tokens_t *ts = NULL;
    char why[256];
    cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), 0, "%s", why);
    catalog_view_t driver = {.name = "driver_stats"}, customer = {.name = "customer_stats"};
    catalog_model_t zone = {.name = "zone"}, other = {.name = "driver_features"};

    core_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer ranker-secret"), CORE_SCOPE_READ), 0);
    cr_assert_not_null(ctx.grants, "held for named resources only");
    cr_assert_eq(core__allow_view(&ctx, CORE_SCOPE_READ, &driver), 0);
    cr_assert_eq(core__allow_view(&ctx, CORE_SCOPE_READ, &customer), -EPERM);
    cr_assert(strstr(ctx.msg, "principal 'ranker' may not read feature view 'customer_stats'") !=
                  NULL,
              "%s", ctx.msg);
    cr_assert_eq(core_authorize_model(&ctx, zone.name), 0);
    cr_assert_eq(core_authorize_model(&ctx, other.name), -EPERM);
    cr_assert(strstr(ctx.msg, "may not read model 'driver_features'") != NULL, "%s", ctx.msg);
    core_view_md_t views[] = {{"driver_stats", 1}, {"customer_stats", 1}};
    core_resolved_t res = {.n_views = 2, .views = views};
    core_feature_list_t by_service = {.kind = CORE_LIST_SERVICE, .service = "scoring"};
    core_feature_list_t other_service = {.kind = CORE_LIST_SERVICE, .service = "pair"};
    core_feature_list_t by_features = {.kind = CORE_LIST_FEATURES};
    cr_assert_eq(core__allow_read(&ctx, &by_service, &res), 0,
                 "a granted service covers its views");
    cr_assert_eq(core__allow_read(&ctx, &other_service, &res), -EPERM);
    cr_assert(strstr(ctx.msg, "may not read feature service 'pair'") != NULL, "%s", ctx.msg);
    cr_assert_eq(core__allow_read(&ctx, &by_features, &res), -EPERM);
    cr_assert(strstr(ctx.msg, "feature view 'customer_stats'") != NULL, "%s", ctx.msg);
    res.n_views = 1;
    cr_assert_eq(core__allow_read(&ctx, &by_features, &res), 0, "driver_stats alone");
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer ranker-secret"), CORE_SCOPE_WRITE), -EPERM,
                 "no write scope of any kind");
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer ranker-secret"), CORE_SCOPE_ADMIN),
                 -EPERM);

    /* Whole write, reads limited: a write call meets no limit, a read call does. */
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer mixed-secret"), CORE_SCOPE_WRITE), 0);
    cr_assert_null(ctx.grants);
    cr_assert_eq(core__allow_view(&ctx, CORE_SCOPE_WRITE, &customer), 0);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer mixed-secret"), CORE_SCOPE_READ), 0);
    cr_assert_eq(core__allow_view(&ctx, CORE_SCOPE_READ, &customer), -EPERM);
    /* A call without a tokens file, or a later call of a whole principal, is never limited. */
    cr_assert_eq(core_authorize(&ctx, NULL, BEARER(NULL), CORE_SCOPE_READ), 0);
    cr_assert_eq(core__allow_view(&ctx, CORE_SCOPE_READ, &customer), 0);
    /* A reload that changes a principal's grants, while a call still holds the old ones: the
     * call goes on with what it was authorized with (ASan: nothing freed under it). */
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer ranker-secret"), CORE_SCOPE_READ), 0);
    snprintf(text, sizeof text, "ranker %s read:view/customer_stats\n", r);
    write_tokens(text);
    size_t n;
    cr_assert_eq(core_tokens_reload(ts, &n, why, sizeof why), 0, "%s", why);
    cr_assert_eq(n, 1);
    cr_assert_eq(core__allow_view(&ctx, CORE_SCOPE_READ, &driver), 0, "the call's own grants");
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer ranker-secret"), CORE_SCOPE_READ), 0);
    cr_assert_eq(core__allow_view(&ctx, CORE_SCOPE_READ, &driver), -EPERM, "the next call's");
    cr_assert_eq(core__allow_view(&ctx, CORE_SCOPE_READ, &customer), 0);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer mixed-secret"), CORE_SCOPE_READ),
                 -EKEYREJECTED, "gone from the file");
    core_tokens_free(ts);
}

/* An on-demand view computes from its stored sources and the caller's own request data (which
 * can undo the computation): a grant of the on-demand view alone reads none of it. */
Test(auth, an_on_demand_view_needs_its_stored_sources_granted_too)
{
    static const char yaml[] =
        "project: t\n"
        "entities: [{name: driver, join_keys: [{name: driver_id, type: INT64}]}]\n"
        "feature_views:\n"
        "  - {name: stats, entities: [driver], features: [{name: rate, dtype: DOUBLE}]}\n"
        "request_sources:\n"
        "  - {name: req, schema: [{name: add, dtype: DOUBLE}]}\n"
        "on_demand_feature_views:\n"
        "  - name: adjusted\n"
        "    sources: [stats, req]\n"
        "    features: [{name: rate_plus, dtype: DOUBLE, expression: rate + add}]\n";
    catalog_t *cat = NULL;
    catalog_errors_t errs = {0};
    cr_assert_eq(catalog_load_string(yaml, strlen(yaml), "t.yaml", &cat, &errs), 0);
    char h1[65], h2[65], text[512];
    hash_of("od-only", h1);
    hash_of("od-and-source", h2);
    snprintf(text, sizeof text,
             "odonly %s read:view/adjusted\nboth %s read:view/adjusted,read:view/stats\n", h1, h2);
    write_tokens(text);
    core_tokens_t *ts = NULL;
    char why[256];
    cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), 0, "%s", why);
    core_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.catalog = cat;
    core_view_md_t views[] = {{"adjusted", 1}};
    core_resolved_t res = {.n_views = 1, .views = views};
    core_feature_list_t list = {.kind = CORE_LIST_FEATURES};
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer od-only"), CORE_SCOPE_READ), 0);
    ctx.catalog = cat;
    cr_assert_eq(core__allow_read(&ctx, &list, &res), -EPERM);
    cr_assert(strstr(ctx.msg, "may not read feature view 'stats'") != NULL, "%s", ctx.msg);
    cr_assert_eq(core_authorize(&ctx, ts, BEARER("Bearer od-and-source"), CORE_SCOPE_READ), 0);
    cr_assert_eq(core__allow_read(&ctx, &list, &res), 0);
    core_tokens_free(ts);
    catalog_unref(cat);
}

/* Names a catalog could never hold are refused in the file, not discovered as refusals later;
 * so are lines too long to read whole. */
Test(auth, limited_scopes_name_resources_as_the_catalog_spells_them)
{
    static const char *bad[] = {"read:view/a/b", "read:view/x:y", "read:view/driver-stats",
                                "read:view/x@v2", "read:view/9lives"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "a " READER " %s\n", bad[i]);
        write_tokens(text);
        core_tokens_t *ts = NULL;
        char why[256] = "";
        cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), -EINVAL, "%s", bad[i]);
        cr_assert(strstr(why, "unknown scope") != NULL, "%s: %s", bad[i], why);
    }
    /* A line over the reader's buffer, and a principal named twice after a limited scope (the
     * first one's grants freed: ASan would report a leak). */
    static char longline[40000];
    size_t n = (size_t)snprintf(longline, sizeof longline, "a " READER " read");
    while (n + 20 < sizeof longline)
        n += (size_t)snprintf(longline + n, sizeof longline - n, ",read:view/v%zu", n);
    longline[n++] = '\n';
    longline[n] = '\0';
    write_tokens(longline);
    core_tokens_t *ts = NULL;
    char why[256] = "";
    cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, ":1: line over") != NULL, "%s", why);
    write_tokens("a " READER " read:view/x\na " READER " read:view/y\n");
    cr_assert_eq(core_tokens_load(path, &ts, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, "named twice") != NULL, "%s", why);
}
