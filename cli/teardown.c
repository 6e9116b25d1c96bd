/* cli/teardown.c - `fstore teardown`: drop a view version's data, or a whole store's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: fstore teardown --data-dir DIR [--view NAME[@vN]] --yes\n"
        "\n"
        "Deletes data for good: the view version NAME@vN (every version of NAME without\n"
        "@vN), or without --view everything in DIR (data, applied catalog, replication\n"
        "position). A torn-down version may then be removed from or redefined in the\n"
        "catalog; applying a catalog that still has it creates it again, empty.\n"
        "\n"
        "flags:\n"
        "  -d, --data-dir DIR   data directory (env FSTORE_DATA_DIR)\n"
        "  -v, --view REF       NAME or NAME@vN\n"
        "      --yes            required: confirms that data is deleted\n"
        "  -h, --help           this help\n"
        "\n"
        "exit status: 0 done, 1 failed (e.g. no such view version), 2 usage error or no --yes\n");
}

/* "name" or "name@vN". Returns: 0, -EINVAL. */
static int parse_ref(const char *ref, char *name, size_t cap, uint32_t *version)
{
    const char *at = strrchr(ref, '@');
    size_t n = at != NULL ? (size_t)(at - ref) : strlen(ref);
    *version = 0;
    if (n == 0 || n >= cap)
        return -EINVAL;
    if (at != NULL) {
        char *end;
        if (at[1] != 'v' || at[2] < '1' || at[2] > '9')
            return -EINVAL;
        unsigned long v = strtoul(at + 2, &end, 10);
        if (*end != '\0' || v > 65535)
            return -EINVAL;
        *version = (uint32_t)v;
    }
    memcpy(name, ref, n);
    name[n] = '\0';
    return 0;
}

int cli_teardown(int argc, char **argv)
{
    const char *dir = NULL, *view = NULL;
    bool yes = false;
    const cli_opt_t opts[] = {
        {"data-dir", 'd', CLI_STRING, &dir, CLI_ENV | CLI_REQUIRED},
        {"view", 'v', CLI_STRING, &view, 0},
        {"yes", 0, CLI_FLAG, &yes, 0},
    };
    const cli_cmd_t cmd = {"teardown", usage, opts, sizeof opts / sizeof opts[0], 0, 0, NULL};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    char name[256];
    uint32_t version = 0;
    if (view != NULL && parse_ref(view, name, sizeof name, &version) < 0) {
        fprintf(stderr, "fstore teardown: --view wants NAME or NAME@vN, got '%s'\n", view);
        return 2;
    }
    if (!yes) {
        fprintf(stderr, "fstore teardown: this deletes %s for good; add --yes to confirm\n",
                view != NULL ? view : "every view's data and the applied catalog");
        return 2;
    }
    store_options_t o = {.dir = dir};
    store_t *s = NULL;
    int rc = cli__open_store("teardown", &o, false, &s);
    if (rc < 0) {
        return 1;
    }
    rc = store_teardown(s, view != NULL ? name : NULL, version);
    store_close(s);
    if (rc == -ENOENT) {
        fprintf(stderr, "fstore teardown: %s has no data in %s\n", view, dir);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "fstore teardown: %s\n", strerror(-rc));
        return 1;
    }
    printf("teardown: dropped %s\n", view != NULL ? view : "everything");
    return 0;
}
