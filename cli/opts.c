/* cli/opts.c - the one flag parser: command line and FSTORE_* environment, table-driven. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "cli/cli_int.h"

/*
 * Every subcommand describes its flags in a table and gets the same behaviour: long and short
 * forms, values from the environment where the table says so (the command line wins), numbers
 * checked against their range, choices named, and the same messages for the same mistakes.
 */

#define MAX_OPTS 96

/* FSTORE_<NAME>, upper case, '-' as '_'. */
static void env_name(const char *flag, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "FSTORE_");
    for (const char *p = flag; *p != '\0' && n + 1 < cap; p++)
        buf[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    buf[n] = '\0';
}

/* Stores one value of o. Returns: 0, -EINVAL after saying why on stderr. */
static int apply(const cli_cmd_t *cmd, const cli_opt_t *o, const char *val)
{
    switch (o->kind) {
    case CLI_STRING:
        if (o->choices != NULL) {
            size_t n = strlen(val);
            const char *p = o->choices;
            bool ok = false;
            while (!ok && *p != '\0') {
                size_t len = strcspn(p, "|");
                ok = len == n && strncmp(p, val, n) == 0;
                p += len + (p[len] == '|');
            }
            if (!ok) {
                char want[128];
                snprintf(want, sizeof want, "%s", o->choices);
                for (char *q = strchr(want, '|'); q != NULL; q = strchr(q, '|'))
                    *q = '/';
                fprintf(stderr, "fstore %s: --%s wants %s, got '%s'\n", cmd->name, o->name, want,
                        val);
                return -EINVAL;
            }
        }
        *(const char **)o->dest = val;
        return 0;
    case CLI_FLAG:
        *(bool *)o->dest = val[0] != '\0' && strcmp(val, "0") != 0 && strcmp(val, "false") != 0;
        return 0;
    case CLI_LIST: {
        cli_list_t *l = o->dest;
        if (l->n == l->cap) {
            fprintf(stderr, "fstore %s: at most %zu --%s flags\n", cmd->name, l->cap, o->name);
            return -EINVAL;
        }
        l->items[l->n++] = val;
        return 0;
    }
    case CLI_SIZE:
    case CLI_UNSIGNED: {
        unsigned long long max = o->max != 0           ? o->max
                                 : o->kind == CLI_SIZE ? (unsigned long long)SIZE_MAX
                                                       : 1000000;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (errno != 0 || end == val || *end != '\0' || val[0] == '-' || v < o->min || v > max) {
            fprintf(stderr, "fstore %s: --%s wants a whole number from %llu to %llu, got '%s'\n",
                    cmd->name, o->name, o->min, max, val);
            return -EINVAL;
        }
        if (o->kind == CLI_SIZE)
            *(size_t *)o->dest = (size_t)v;
        else
            *(unsigned *)o->dest = (unsigned)v;
        return 0;
    }
    case CLI_I64: {
        long long max = o->max != 0 ? (long long)o->max : INT64_MAX;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (errno != 0 || end == val || *end != '\0' || v < (long long)o->min || v > max) {
            fprintf(stderr, "fstore %s: --%s wants a whole number from %llu to %lld, got '%s'\n",
                    cmd->name, o->name, o->min, max, val);
            return -EINVAL;
        }
        *(int64_t *)o->dest = v;
        return 0;
    }
    case CLI_DURATION: {
        int64_t secs = 0;
        if (strcmp(val, "0") != 0 && catalog_parse_duration(val, &secs) < 0) {
            fprintf(stderr,
                    "fstore %s: --%s wants a duration such as 90s, 15m, 12h or 7d (0: none), "
                    "got '%s'\n",
                    cmd->name, o->name, val);
            return -EINVAL;
        }
        *(int64_t *)o->dest = secs;
        return 0;
    }
    case CLI_SYNC:
        if (strcmp(val, "full") == 0) {
            *(store_sync_t *)o->dest = STORE_SYNC_FULL;
        } else if (strcmp(val, "none") == 0) {
            *(store_sync_t *)o->dest = STORE_SYNC_NONE;
        } else {
            fprintf(stderr, "fstore %s: --%s wants full or none, got '%s'\n", cmd->name, o->name,
                    val);
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

static int usage_error(const cli_cmd_t *cmd)
{
    fprintf(stderr, "\n");
    cmd->usage(stderr);
    return 2;
}

int cli__parse(const cli_cmd_t *cmd, int argc, char **argv, int *first)
{
    bool seen[MAX_OPTS] = {false};
    if (cmd->n_opts > MAX_OPTS) {
        /* A subcommand's table outgrew the parser: a bug to see at once, not a silent exit. */
        fprintf(stderr, "fstore %s: %zu flags, the parser takes %d\n", cmd->name, cmd->n_opts,
                MAX_OPTS);
        return 2;
    }

    /* The environment first, so flags on the command line win. */
    for (size_t i = 0; i < cmd->n_opts; i++) {
        const cli_opt_t *o = &cmd->opts[i];
        if (!(o->flags & CLI_ENV))
            continue;
        char var[96];
        env_name(o->name, var, sizeof var);
        const char *v = getenv(var);
        if (v == NULL || v[0] == '\0')
            continue;
        if (apply(cmd, o, v) < 0) {
            fprintf(stderr, "fstore %s: (from the environment variable %s)\n", cmd->name, var);
            return usage_error(cmd);
        }
        seen[i] = true;
    }

    struct option lopts[MAX_OPTS + 2];
    char shorts[2 * MAX_OPTS + 4];
    size_t ns = 0;
    shorts[ns++] = ':'; /* a missing value is ':', told apart from an unknown flag */
    for (size_t i = 0; i < cmd->n_opts; i++) {
        const cli_opt_t *o = &cmd->opts[i];
        int has_arg = o->kind == CLI_FLAG ? no_argument : required_argument;
        lopts[i] = (struct option){o->name, has_arg, NULL, (int)(256 + i)};
        if (o->short_name != 0) {
            shorts[ns++] = o->short_name;
            if (has_arg == required_argument)
                shorts[ns++] = ':';
        }
    }
    lopts[cmd->n_opts] = (struct option){"help", no_argument, NULL, 'h'};
    lopts[cmd->n_opts + 1] = (struct option){NULL, 0, NULL, 0};
    shorts[ns++] = 'h';
    shorts[ns] = '\0';

    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, shorts, lopts, NULL)) != -1) {
        if (ch == 'h') {
            cmd->usage(stdout);
            return 1;
        }
        if (ch == '?' || ch == ':') {
            fprintf(stderr, "fstore %s: %s: %s\n", cmd->name,
                    ch == ':' ? "missing value for" : "unknown flag", argv[optind - 1]);
            return usage_error(cmd);
        }
        size_t i = 0;
        if (ch >= 256) {
            i = (size_t)(ch - 256);
        } else {
            while (i < cmd->n_opts && cmd->opts[i].short_name != ch)
                i++;
        }
        if (i >= cmd->n_opts)
            return usage_error(cmd);
        const cli_opt_t *o = &cmd->opts[i];
        if (apply(cmd, o, o->kind == CLI_FLAG ? "1" : optarg) < 0)
            return usage_error(cmd);
        seen[i] = true;
    }
    for (size_t i = 0; i < cmd->n_opts; i++) {
        if ((cmd->opts[i].flags & CLI_REQUIRED) && !seen[i]) {
            fprintf(stderr, "fstore %s: --%s is required\n", cmd->name, cmd->opts[i].name);
            return usage_error(cmd);
        }
    }
    int n_args = argc - optind;
    if (n_args > cmd->max_args) {
        fprintf(stderr, "fstore %s: unexpected argument '%s'\n", cmd->name,
                argv[optind + cmd->max_args]);
        return usage_error(cmd);
    }
    if (n_args < cmd->min_args) {
        fprintf(stderr, "fstore %s: %s is required\n", cmd->name,
                cmd->args_name != NULL ? cmd->args_name : "an argument");
        return usage_error(cmd);
    }
    *first = optind;
    return 0;
}

void cli__repl_usage(FILE *f)
{
    fprintf(f,
            "replication (NATS JetStream; see README, Scaling out):\n"
            "  --replication URLS       comma-separated nats:// URLs of the log (default: none,\n"
            "                           a single node)\n"
            "  --stream NAME            the JetStream stream (default FSTORE_<PROJECT>)\n"
            "  --subject-prefix P       its subjects, P.<view> (default fstore.<project>)\n"
            "  --stream-replicas N      stream replicas when created (default 1; an existing\n"
            "                           stream must match what is given)\n"
            "  --stream-max-age D       retention by age, e.g. 7d (default: none)\n"
            "  --stream-max-bytes N     retention by size (default: none)\n"
            "  --publish-timeout-ms N   how long a write is retried against the log before it\n"
            "                           fails UNAVAILABLE (default %d)\n"
            "  --connect-timeout-ms N   how long to wait for a first NATS server at start\n"
            "                           (default %d)\n"
            "  --replication-tls-ca F   TLS to NATS, the servers verified against this PEM CA\n"
            "                           (a tls:// URL turns TLS on against the system's CAs)\n"
            "  --replication-tls-cert F, --replication-tls-key F\n"
            "                           this node's client certificate and key (PEM), for\n"
            "                           servers that require one (serve reads all three again\n"
            "                           when they change, within 2 s or on SIGHUP)\n",
            REPL_DEFAULT_PUBLISH_TIMEOUT_MS, REPL_DEFAULT_CONNECT_TIMEOUT_MS);
}

bool cli__from_env(const char *flag, const char *value)
{
    char var[96];
    env_name(flag, var, sizeof var);
    return value != NULL && value == getenv(var);
}
