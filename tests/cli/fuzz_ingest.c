/* tests/cli/fuzz_ingest.c - libFuzzer: `fstore ingest` of CSV and JSON Lines files, as the CLI
 * runs it, into a real store. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tests/fuzz_catalog.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte picks how the rest is loaded:
 *   bit 0     the format: CSV (0) or JSON Lines (1);
 *   bits 1-2  the view: fv (every dtype, validations), fv@v2, pair (two join keys), dev (BYTES
 *             and INT32 keys);
 *   bit 3     --to offline (fv keeps a history) instead of the default.
 * The rest is the file. cli_ingest() runs on it exactly as `fstore ingest --data-dir D --view V
 * --format F FILE` does (the store under $TMPDIR, tests/fuzz_catalog.h applied once), so its rows
 * either all land or none do; the fuzzer asks that it never crashes, leaks or trips UB, and that it
 * exits 0 (loaded) or 1 (bad rows), never 2 (a usage error: the arguments are always right).
 */

static char data_dir[512], input[512];

static void die(const char *what, int rc)
{
    fprintf(stderr, "fuzz_ingest: %s: %d\n", what, rc);
    abort();
}

/* Once per process: the store under $TMPDIR (run-fuzz-ingest.sh points it at its work
 * directory), the catalog applied to it by `fstore apply`. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    char dir[400];
    snprintf(dir, sizeof dir, "%s/fuzz-ingest.XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", -errno);
    char cat_path[512];
    snprintf(cat_path, sizeof cat_path, "%s/catalog.yaml", dir);
    snprintf(data_dir, sizeof data_dir, "%s/data", dir);
    snprintf(input, sizeof input, "%s/input", dir);
    FILE *f = fopen(cat_path, "w");
    if (f == NULL || fputs(fuzz_catalog_yaml, f) < 0 || fclose(f) != 0)
        die("catalog file", -errno);
    char *apply[] = {"apply", "--catalog", cat_path, "--data-dir", data_dir, NULL};
    int rc = cli_apply(5, apply);
    if (rc != 0)
        die("fstore apply", rc);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static char *const views[4] = {"fv", "fv@v2", "pair", "dev"};
    uint8_t how = data[0];
    FILE *f = fopen(input, "w");
    if (f == NULL || (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) || fclose(f) != 0)
        die("input file", -errno);
    char *args[16] = {"ingest",
                      "--data-dir",
                      data_dir,
                      "--view",
                      views[(how >> 1) & 3],
                      "--format",
                      (how & 1) ? "jsonl" : "csv",
                      "--sync",
                      "none",
                      "--max-errors",
                      "2"};
    int n = 11;
    if (how & 8) {
        args[n++] = "--to";
        args[n++] = "offline";
    }
    args[n++] = input;
    args[n] = NULL;
    int rc = cli_ingest(n, args);
    if (rc != 0 && rc != 1)
        die("fstore ingest exit status", rc);
    return 0;
}
