/* tests/storage/test_cli.c - end to end: the real fstore binary's apply, ingest, get, teardown,
 * snapshot and gc against temporary data directories. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "tests/storage/helpers.h"

static char *dir;
static char bin[1024];

static void setup(void)
{
    const char *b = getenv("FSTORE_BINARY_DIR");
    cr_assert_not_null(b, "FSTORE_BINARY_DIR is not set (run through ctest)");
    snprintf(bin, sizeof bin, "%s/fstore", b);
    dir = th_tmpdir();
}

static void teardown(void)
{
    th_rmrf(dir);
    free(dir);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

static void write_file(const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* Runs `fstore ARGS` in dir (stdout and stderr captured together into out). Returns: the exit
 * status. */
static int run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t cap, const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", dir, bin, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    cr_assert(WIFEXITED(st), "fstore %s: killed", args);
    return WEXITSTATUS(st);
}

static const char catalog_yaml[] =
    "project: p\n"
    "entities:\n"
    "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
    "feature_views:\n"
    "  - name: fv\n"
    "    version: 1\n"
    "    entities: [driver]\n"
    "    ttl: 1h\n"
    "    features:\n"
    "      - {name: conv_rate, dtype: FLOAT, validation: {min: 0, max: 1}}\n"
    "      - {name: trips, dtype: INT64}\n"
    "      - {name: label, dtype: STRING}\n"
    "      - {name: hist, dtype: INT64_LIST}\n"
    "  - name: glob\n"
    "    version: 1\n"
    "    entities: []\n"
    "    features: [{name: total, dtype: INT64}]\n"
    "  - name: blobs\n"
    "    version: 1\n"
    "    entities: [driver]\n"
    "    features: [{name: payload, dtype: BYTES}]\n"
    "feature_services:\n"
    "  - {name: svc, features: [\"fv:conv_rate\", \"fv:trips\"]}\n";

static char out[65536];

static void apply_catalog(void)
{
    write_file("catalog.yaml", catalog_yaml);
    int rc = run(out, sizeof out, "apply --catalog catalog.yaml --data-dir data");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "feature_view fv@v1") != NULL, "%s", out);
}

Test(cli, every_storage_command_answers_help_with_its_flags)
{
    const char *cmds[] = {"apply", "teardown", "ingest", "get", "snapshot", "gc"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cr_assert_eq(run(out, sizeof out, "%s --help", cmds[i]), 0, "%s", cmds[i]);
        cr_assert(strstr(out, "--data-dir") != NULL, "%s --help: %s", cmds[i], out);
    }
    cr_assert_eq(run(out, sizeof out, "ingest --data-dir data"), 2, "no --view, no FILE");
}

Test(cli, ingested_csv_reads_back_through_get_as_a_table_and_as_json)
{
    apply_catalog();
    long now = (long)time(NULL);
    char csv[1024];
    snprintf(csv, sizeof csv,
             "driver_id,conv_rate,trips,label,hist,event_timestamp\n"
             "1001,0.5,10,\"gold, \"\"vip\"\"\",\"[1,2,3]\",%ld\n"
             "1002,0.25,,silver,[],2024-01-01T00:00:00Z\n"
             "1003,0.75,30,\"two\nlines\",[4],%ld.5\n",
             now, now);
    write_file("rows.csv", csv);
    int rc = run(out, sizeof out, "ingest --data-dir data --view fv rows.csv");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "3 rows") != NULL && strstr(out, "rows/s") != NULL, "%s", out);

    rc = run(out, sizeof out,
             "get --data-dir data --features fv:conv_rate,fv:trips,fv:label,fv:hist "
             "--entity driver_id=1001 --entity driver_id=1002 --entity driver_id=9");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "\"gold, \\\"vip\\\"\"") != NULL, "%s", out);
    cr_assert(strstr(out, "[1, 2, 3]") != NULL, "%s", out);
    cr_assert(strstr(out, "OUTSIDE_MAX_AGE") != NULL, "2024 is past the 1h TTL: %s", out);
    cr_assert(strstr(out, "2024-01-01T00:00:00Z") != NULL, "%s", out);
    cr_assert(strstr(out, "NULL_VALUE") != NULL, "the empty trips cell: %s", out);
    cr_assert(strstr(out, "NOT_FOUND") != NULL, "%s", out);

    rc = run(out, sizeof out,
             "get --data-dir data --feature-service svc --entity driver_id=1003 "
             "--json");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "\"fv:trips\"") != NULL && strstr(out, "30") != NULL, "%s", out);
    cr_assert(strstr(out, ".500000Z") != NULL, "fractional epoch seconds: %s", out);
}

Test(cli, jsonl_from_stdin_loads_an_entityless_view)
{
    apply_catalog();
    write_file("g.jsonl", "{\"total\": 41}\n{\"total\": 42}\n");
    int rc = run(out, sizeof out, "ingest --data-dir data --view glob --format jsonl - < g.jsonl");
    cr_assert_eq(rc, 0, "%s", out);
    rc = run(out, sizeof out, "get --data-dir data --features glob:total --json");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "42") != NULL, "the later row wins: %s", out);
}

Test(cli, bytes_cells_take_either_base64_alphabet_and_refuse_damaged_base64)
{
    apply_catalog();
    /* 00 01 02 ff: standard with padding, URL-safe without; then a raw string. */
    write_file("b.csv", "driver_id,payload\n"
                        "1,b64:AAEC/w==\n"
                        "2,b64:AAEC_w\n"
                        "3,plain text\n");
    int rc = run(out, sizeof out, "ingest --data-dir data --view blobs b.csv");
    cr_assert_eq(rc, 0, "%s", out);
    rc = run(out, sizeof out,
             "get --data-dir data --features blobs:payload --entity driver_id=1 --entity "
             "driver_id=2 --entity driver_id=3 --json");
    cr_assert_eq(rc, 0, "%s", out);
    char *a = strstr(out, "AAEC/w=="), *b = a != NULL ? strstr(a + 1, "AAEC/w==") : NULL;
    cr_assert(a != NULL && b != NULL, "both rows hold 00 01 02 ff: %s", out);
    /* Something after the padding, a lone trailing character, too much padding, a foreign
     * character: each is reported with its line, and nothing of the file is loaded. */
    write_file("bad.csv", "driver_id,payload\n"
                          "4,b64:QQ==x\n"
                          "5,b64:QUJDR\n"
                          "6,b64:QQ===\n"
                          "7,b64:QU*D\n"
                          "8,b64:QUI=\n");
    rc = run(out, sizeof out, "ingest --data-dir data --view blobs bad.csv");
    cr_assert_eq(rc, 1, "%s", out);
    for (int line = 2; line <= 5; line++) {
        char want[32];
        snprintf(want, sizeof want, "bad.csv:%d:", line);
        cr_assert(strstr(out, want) != NULL, "want %s: %s", want, out);
    }
    cr_assert(strstr(out, "bad.csv:6:") == NULL, "QUI= is whole base64: %s", out);
    cr_assert(strstr(out, "4 of 5 rows are bad") != NULL, "%s", out);
}

Test(cli, negative_fractional_epoch_seconds_keep_their_sign)
{
    apply_catalog();
    write_file("g.csv", "total,event_timestamp\n7,-0.5\n");
    int rc = run(out, sizeof out, "ingest --data-dir data --view glob g.csv");
    cr_assert_eq(rc, 0, "%s", out);
    rc = run(out, sizeof out, "get --data-dir data --features glob:total");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "1969-12-31T23:59:59.500000Z") != NULL, "-0.5 s is before the epoch: %s",
              out);
}

Test(cli, bad_rows_are_all_reported_with_their_lines_and_nothing_is_loaded)
{
    apply_catalog();
    write_file("bad.csv", "driver_id,conv_rate,trips\n"
                          "2001,0.5,1\n"
                          "2002,1.5,2\n"
                          "x,0.1,3\n"
                          "2004,0.2,many\n"
                          "2005,0.3\n");
    int rc = run(out, sizeof out, "ingest --data-dir data --view fv bad.csv");
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "bad.csv:3: conv_rate") != NULL, "%s", out);
    cr_assert(strstr(out, "bad.csv:4: driver_id") != NULL, "%s", out);
    cr_assert(strstr(out, "bad.csv:5: trips") != NULL, "%s", out);
    cr_assert(strstr(out, "bad.csv:6:") != NULL, "%s", out);
    cr_assert(strstr(out, "nothing was loaded") != NULL, "%s", out);
    rc = run(out, sizeof out, "get --data-dir data --features fv:trips --entity driver_id=2001");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "NOT_FOUND") != NULL, "the good row must not be loaded: %s", out);
}

/* Writes name: 3000 rows (driver_id 1..3000, trips = id) whose labels hold a quoted newline,
 * so lines and rows part ways; with bad_id, that row's conv_rate is out of range. Returns: the
 * bad row's line. */
static size_t write_quoted_rows(const char *name, int bad_id)
{
    size_t cap = 3000 * 64 + 128, n = 0, line = 2, bad_line = 0;
    char *csv = malloc(cap);
    cr_assert_not_null(csv);
    n += (size_t)snprintf(csv + n, cap - n, "driver_id,conv_rate,trips,label,event_timestamp\n");
    for (int id = 1; id <= 3000; id++) {
        if (id == bad_id)
            bad_line = line;
        n += (size_t)snprintf(csv + n, cap - n, "%d,%s,%d,\"l%d\nx\",2024-01-02T00:00:00Z\n", id,
                              id == bad_id ? "1.5" : "0.75", id, id);
        line += 2;
    }
    write_file(name, csv);
    free(csv);
    return bad_line;
}

Test(cli, a_bad_row_in_a_late_chunk_aborts_a_load_whose_early_chunks_were_streamed)
{
    apply_catalog();
    write_file("a.csv", "driver_id,conv_rate,trips,event_timestamp\n"
                        "1,0.25,10,2024-01-01T00:00:00Z\n"
                        "3000,0.25,30,2024-01-01T00:00:00Z\n");
    int rc = run(out, sizeof out, "ingest --data-dir data --view fv a.csv");
    cr_assert_eq(rc, 0, "%s", out);
    /* Chunks of 100 rows are streamed into the transaction as they are parsed; the one bad row
     * comes near the end. */
    size_t bad_line = write_quoted_rows("b.csv", 2950);
    rc = run(out, sizeof out, "ingest --data-dir data --view fv --batch-rows 100 b.csv");
    cr_assert_eq(rc, 1, "%s", out);
    char want[64];
    snprintf(want, sizeof want, "b.csv:%zu: conv_rate", bad_line);
    cr_assert(strstr(out, want) != NULL, "want %s: %s", want, out);
    cr_assert(strstr(out, "1 of 3000 rows are bad") != NULL, "%s", out);
    const char *get = "get --data-dir data --features fv:trips --entity driver_id=1 --entity "
                      "driver_id=2 --entity driver_id=3000 --json";
    rc = run(out, sizeof out, "%s", get);
    cr_assert_eq(rc, 0, "%s", out);
    char *one = strstr(out, "\"value\": 10,"), *three = strstr(out, "\"value\": 30,");
    cr_assert(one != NULL && three != NULL && one < three, "the stored rows must be as before: %s",
              out);
    cr_assert(strstr(out, "NOT_FOUND") != NULL, "driver 2 must not be loaded: %s", out);

    /* Without the bad row the same load goes through: merged over the stored rows. */
    write_quoted_rows("c.csv", 0);
    rc = run(out, sizeof out, "ingest --data-dir data --view fv --batch-rows 100 c.csv");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "3000 written, 0 stale") != NULL, "%s", out);
    rc = run(out, sizeof out, "%s", get);
    cr_assert_eq(rc, 0, "%s", out);
    one = strstr(out, "\"value\": 1,");
    char *two = strstr(out, "\"value\": 2,");
    three = strstr(out, "\"value\": 3000,");
    cr_assert(one != NULL && two != NULL && three != NULL && one < two && two < three, "%s", out);
}

/* Whether /proc/PID/maps shows path mapped. */
static bool maps_file(pid_t pid, const char *path)
{
    char name[64], line[2048];
    snprintf(name, sizeof name, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(name, "r");
    if (f == NULL)
        return false;
    bool seen = false;
    while (!seen && fgets(line, sizeof line, f) != NULL)
        seen = strstr(line, path) != NULL;
    fclose(f);
    return seen;
}

/* Writes big.csv (rows of fv, its size at least 64 bytes past a page boundary), starts
 * `fstore ingest` on it, cuts cut_by bytes off its end (a negative cut_by: everything) as soon as
 * ingest has mapped it, and returns ingest's exit status, with its output in out. */
static int ingest_while_truncating(off_t cut_by)
{
    char path[1024], log[1024];
    snprintf(path, sizeof path, "%s/big.csv", dir);
    snprintf(log, sizeof log, "%s/ingest.log", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("driver_id,conv_rate,trips,event_timestamp\n", f);
    /* A million rows (about 35 MB): still parsing long after the cut, even on a busy machine. */
    int i = 1;
    for (; i <= 1000000; i++)
        fprintf(f, "%d,0.5,%d,2024-01-01T00:00:00Z\n", i, i);
    while (ftell(f) % 4096 < 64)
        fprintf(f, "%d,0.5,%d,2024-01-01T00:00:00Z\n", i, i), i++;
    off_t size = (off_t)ftell(f);
    fclose(f);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || chdir(dir) != 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, bin, "ingest", "--data-dir", "data", "--view", "fv", "big.csv", (char *)NULL);
        _exit(127);
    }
    bool seen = false;
    for (int k = 0; k < 20000 && !seen; k++) {
        seen = maps_file(pid, path);
        if (!seen)
            usleep(500);
    }
    cr_assert(seen, "ingest never mapped %s", path);
    cr_assert_eq(truncate(path, cut_by < 0 ? 0 : size - cut_by), 0, "%s", strerror(errno));
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    FILE *lf = fopen(log, "r");
    cr_assert_not_null(lf);
    size_t n = fread(out, 1, sizeof out - 1, lf);
    out[n] = '\0';
    fclose(lf);
    cr_assert(WIFEXITED(st), "wait status %d: %s", st, out);
    return WEXITSTATUS(st);
}

static void assert_nothing_loaded_and_store_usable(void)
{
    char buf[4096];
    int rc =
        run(buf, sizeof buf, "get --data-dir data --features fv:trips --entity driver_id=1 --json");
    cr_assert_eq(rc, 0, "%s", buf);
    cr_assert(strstr(buf, "NOT_FOUND") != NULL, "%s", buf);
    write_file("small.csv", "driver_id,conv_rate,trips,event_timestamp\n"
                            "1,0.25,10,2024-01-01T00:00:00Z\n");
    rc = run(buf, sizeof buf, "ingest --data-dir data --view fv small.csv");
    cr_assert_eq(rc, 0, "%s", buf);
}

Test(cli, a_file_truncated_while_it_loads_fails_with_a_reason_and_loads_nothing)
{
    apply_catalog();
    /* Cut to nothing: the next page ingest reads is past the end (SIGBUS, caught). */
    int rc = ingest_while_truncating(-1);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "fstore ingest: big.csv shrank while it was being read") != NULL, "%s",
              out);
    assert_nothing_loaded_and_store_usable();
}

Test(cli, a_file_cut_within_its_last_page_while_it_loads_is_noticed_too)
{
    apply_catalog();
    /* 40 bytes off the end: that page reads as zeros instead of faulting, so no signal; the
     * size is checked again after the parse. */
    int rc = ingest_while_truncating(40);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "fstore ingest: big.csv changed while it was being read") != NULL, "%s",
              out);
    assert_nothing_loaded_and_store_usable();
}

Test(cli, bad_timestamps_are_reported_with_their_lines_even_after_good_repeats)
{
    apply_catalog();
    /* Lines 2-3 share a text (the parser's memo), line 4 repeats a bad one, 5 has no Feb 30,
     * 6 trailing junk, 7 an hour past 23, 8 a bad offset; 9 is good again after bad ones. */
    write_file("t.csv", "driver_id,trips,event_timestamp\n"
                        "1,1,2024-01-01T00:00:00Z\n"
                        "2,2,2024-01-01T00:00:00Z\n"
                        "3,3,2024-01-01T00:00:00Zx\n"
                        "4,4,2024-02-30T00:00:00Z\n"
                        "5,5,1714564800s\n"
                        "6,6,2024-01-01T24:00:00Z\n"
                        "7,7,2024-01-01T00:00:00+25:00\n"
                        "8,8,2024-01-01T00:00:00Z\n");
    int rc = run(out, sizeof out, "ingest --data-dir data --view fv t.csv");
    cr_assert_eq(rc, 1, "%s", out);
    for (int line = 4; line <= 8; line++) {
        char want[64];
        snprintf(want, sizeof want, "t.csv:%d: event_timestamp", line);
        cr_assert(strstr(out, want) != NULL, "line %d not reported: %s", line, out);
    }
    cr_assert(strstr(out, "t.csv:2:") == NULL && strstr(out, "t.csv:3:") == NULL &&
                  strstr(out, "t.csv:9:") == NULL,
              "a good row reported: %s", out);
    cr_assert(strstr(out, "5 of 8 rows are bad") != NULL, "%s", out);
}

Test(cli, older_rows_are_skipped_as_stale_within_a_file_and_against_stored_rows)
{
    apply_catalog();
    /* Into an empty view (the append path): entity 1's later line is older and loses. */
    write_file("a.csv", "driver_id,trips,event_timestamp\n"
                        "1,10,2024-01-01T00:00:02Z\n"
                        "2,20,2024-01-01T00:00:01Z\n"
                        "1,11,2024-01-01T00:00:01Z\n");
    int rc = run(out, sizeof out, "ingest --data-dir data --view fv --sync none a.csv");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "2 written, 1 stale") != NULL, "%s", out);
    /* Into a view that has rows (the merge path): older than stored is stale, newer wins. */
    write_file("b.csv", "driver_id,trips,event_timestamp\n"
                        "1,12,2024-01-01T00:00:01.5Z\n"
                        "2,21,2024-01-01T00:00:01.5Z\n");
    rc = run(out, sizeof out, "ingest --data-dir data --view fv --sync none b.csv");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "1 written, 1 stale") != NULL, "%s", out);
    rc = run(out, sizeof out,
             "get --data-dir data --features fv:trips --entity driver_id=1 --entity "
             "driver_id=2 --json");
    cr_assert_eq(rc, 0, "%s", out);
    char *one = strstr(out, "\"value\": 10,"), *two = strstr(out, "\"value\": 21,");
    cr_assert(one != NULL && two != NULL && one < two, "want 10 (entity 1), 21 (entity 2): %s",
              out);
}

Test(cli, apply_refuses_a_breaking_change_and_says_why)
{
    apply_catalog();
    char *changed = strdup(catalog_yaml);
    char *at = strstr(changed, "{name: trips, dtype: INT64}");
    memcpy(at, "{name: trips, dtype: BOOL} ", strlen("{name: trips, dtype: INT64}"));
    write_file("changed.yaml", changed);
    free(changed);
    int rc = run(out, sizeof out, "apply --catalog changed.yaml --data-dir data");
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "BREAKING") != NULL && strstr(out, "trips") != NULL, "%s", out);
    cr_assert(strstr(out, "refused") != NULL, "%s", out);
}

Test(cli, plan_against_a_data_dir_compares_with_what_it_has_applied)
{
    /* Before anything is applied (no store yet) everything is an addition. */
    write_file("catalog.yaml", catalog_yaml);
    int rc = run(out, sizeof out, "plan --catalog catalog.yaml --data-dir data");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "added") != NULL && strstr(out, "feature_view fv@v1") != NULL, "%s", out);
    apply_catalog();
    rc = run(out, sizeof out, "plan --catalog catalog.yaml --data-dir data");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "plan: no changes") != NULL, "%s", out);

    char *changed = strdup(catalog_yaml);
    char *at = strstr(changed, "{name: trips, dtype: INT64}");
    memcpy(at, "{name: trips, dtype: BOOL} ", strlen("{name: trips, dtype: INT64}"));
    write_file("changed.yaml", changed);
    free(changed);
    rc = run(out, sizeof out, "plan --catalog changed.yaml --data-dir data --json");
    cr_assert_eq(rc, 1, "a breaking plan exits 1: %s", out);
    cr_assert(strstr(out, "\"breaking\": true") != NULL && strstr(out, "trips") != NULL, "%s", out);
}

Test(cli, teardown_needs_yes_and_then_drops_the_view)
{
    apply_catalog();
    write_file("r.csv", "driver_id,trips\n1,5\n");
    cr_assert_eq(run(out, sizeof out, "ingest --data-dir data --view fv r.csv"), 0, "%s", out);
    cr_assert_eq(run(out, sizeof out, "teardown --data-dir data --view fv"), 2, "%s", out);
    cr_assert_eq(run(out, sizeof out,
                     "get --data-dir data --features fv:trips --entity "
                     "driver_id=1"),
                 0);
    cr_assert(strstr(out, "PRESENT") != NULL, "%s", out);
    cr_assert_eq(run(out, sizeof out, "teardown --data-dir data --view fv@v1 --yes"), 0, "%s", out);
    cr_assert_eq(run(out, sizeof out,
                     "get --data-dir data --features fv:trips --entity "
                     "driver_id=1"),
                 1, "%s", out);
    cr_assert_eq(run(out, sizeof out, "teardown --data-dir data --view fv@v1 --yes"), 1, "%s", out);
    cr_assert_eq(run(out, sizeof out, "apply --catalog catalog.yaml --data-dir data"), 0, "%s",
                 out);
    cr_assert_eq(run(out, sizeof out, "teardown --data-dir data --yes"), 0, "%s", out);
    cr_assert_eq(run(out, sizeof out,
                     "get --data-dir data --features fv:trips --entity "
                     "driver_id=1"),
                 1, "no catalog after a full teardown: %s", out);
}

Test(cli, snapshot_copies_the_data_and_gc_sweeps_expired_rows)
{
    apply_catalog();
    long now = (long)time(NULL);
    char csv[256];
    snprintf(csv, sizeof csv, "driver_id,trips,event_timestamp\n1,5,%ld\n2,6,1000\n", now);
    write_file("r.csv", csv);
    cr_assert_eq(run(out, sizeof out, "ingest --data-dir data --view fv --sync none r.csv"), 0,
                 "%s", out);
    cr_assert_eq(run(out, sizeof out, "snapshot --data-dir data --out snap"), 0, "%s", out);
    cr_assert_eq(run(out, sizeof out, "snapshot --data-dir data --out snap"), 1, "not empty");
    cr_assert_eq(run(out, sizeof out, "gc --data-dir data"), 0, "%s", out);
    cr_assert(strstr(out, "deleted 1 ") != NULL, "%s", out);
    cr_assert_eq(run(out, sizeof out,
                     "get --data-dir snap --features fv:trips --entity "
                     "driver_id=2 --entity driver_id=1"),
                 0, "%s", out);
    cr_assert(strstr(out, "OUTSIDE_MAX_AGE") != NULL, "the snapshot predates the gc: %s", out);
    cr_assert_eq(run(out, sizeof out,
                     "get --data-dir data --features fv:trips --entity "
                     "driver_id=2"),
                 0, "%s", out);
    cr_assert(strstr(out, "NOT_FOUND") != NULL, "%s", out);
}

Test(cli, get_names_what_is_missing_with_the_closest_name_and_what_exists)
{
    apply_catalog();
    int rc = run(out, sizeof out, "get --data-dir data --feature-service sv --entity driver_id=1");
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "feature service 'sv' not found (did you mean 'svc'?); feature "
                          "services: svc") != NULL,
              "%s", out);
    rc = run(out, sizeof out, "get --data-dir data --features fw:trips --entity driver_id=1");
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "(did you mean 'fv'?); feature views: blobs, fv, glob") != NULL, "%s",
              out);
    rc = run(out, sizeof out, "get --data-dir data --features fv:trip --entity driver_id=1");
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "(did you mean 'trips'?); its features: conv_rate, trips, label, hist") !=
                  NULL,
              "%s", out);
}

Test(cli, get_aligns_its_table_to_the_longest_name)
{
    apply_catalog();
    write_file("rows.csv", "driver_id,conv_rate,trips\n1,0.5,7\n1234567890123456789,0.25,8\n");
    int rc = run(out, sizeof out, "ingest --data-dir data --view fv rows.csv");
    cr_assert_eq(rc, 0, "%s", out);
    rc = run(out, sizeof out,
             "get --data-dir data --features fv:conv_rate,fv:trips --entity driver_id=1 "
             "--entity driver_id=1234567890123456789");
    cr_assert_eq(rc, 0, "%s", out);
    /* Every line's STATUS column starts at the same offset as the header's. */
    const char *line = out;
    long col = -1;
    int lines = 0;
    while (*line != '\0') {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)len, line);
        const char *at = strstr(buf, "STATUS");
        if (at == NULL)
            at = strstr(buf, "PRESENT");
        cr_assert_not_null(at, "%s", buf);
        if (col < 0)
            col = at - buf;
        cr_assert_eq(at - buf, col, "misaligned:\n%s", out);
        lines++;
        line = nl ? nl + 1 : line + len;
    }
    cr_assert_eq(lines, 5, "%s", out);
    cr_assert(strstr(out, "0.25 ") != NULL, "FLOAT printed shortest: %s", out);
}

Test(cli, only_apply_creates_a_store_the_others_say_so_and_leave_no_files)
{
    write_file("rows.csv", "driver_id,trips\n1,2\n");
    const char *cmds[] = {"ingest --data-dir nowhere --view fv rows.csv", "gc --data-dir nowhere",
                          "digest --data-dir nowhere", "teardown --data-dir nowhere --yes",
                          "snapshot --data-dir nowhere --out snap"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int rc = run(out, sizeof out, "%s", cmds[i]);
        cr_assert_eq(rc, 1, "%s: %s", cmds[i], out);
        cr_assert(strstr(out, "nowhere holds no store (fstore apply --catalog FILE --data-dir "
                              "nowhere creates one)") != NULL,
                  "%s: %s", cmds[i], out);
        char path[1024];
        snprintf(path, sizeof path, "%s/nowhere/data.mdb", dir);
        cr_assert(access(path, F_OK) != 0, "%s created %s", cmds[i], path);
    }
}
