/*
 * cli.c - command dispatch, option parsing and shared CLI helpers.
 *
 * THREAD: main. Options are matched against the command's table plus the
 * common ones wherever they appear among the words, so that a user never has
 * to remember whether `--data` goes before or after `stats`.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../config/config.h"
#include "../core/time.h"
#include "../store/store.h"

static const te_cli_opt_t common_opts[] = {
    {"config", 0, TE_CLI_VALUE},
    {"data", 0, TE_CLI_VALUE},
    {"help", 'h', TE_CLI_FLAG},
};

static int find_long(const te_cli_args_t *a, const char *name, size_t len)
{
    for (size_t i = 0; i < a->nopts; i++) {
        if (strlen(a->opts[i]->name) == len && memcmp(a->opts[i]->name, name, len) == 0)
            return (int)i;
    }
    return -1;
}

static int find_short(const te_cli_args_t *a, char c)
{
    for (size_t i = 0; i < a->nopts; i++) {
        if (a->opts[i]->short_name == c)
            return (int)i;
    }
    return -1;
}

static int store_value(te_cli_args_t *a, int i, const char *v, te_err_t *err)
{
    if (a->opts[i]->kind == TE_CLI_LIST) {
        const char **p = realloc(a->list[i], (a->nlist[i] + 1) * sizeof(*p));
        if (!p)
            return te_err_set(err, TE_ENOMEM, "out of memory");
        p[a->nlist[i]++] = v;
        a->list[i] = p;
    } else {
        a->value[i] = v;
    }
    return 0;
}

int te_cli_parse(te_cli_args_t *a, const te_cli_opt_t *opts, size_t nopts, int argc,
                 char **argv, te_err_t *err)
{
    int rc;
    bool only_pos = false;

    memset(a, 0, sizeof(*a));
    if (nopts + 3 > TE_CLI_MAX_OPTS)
        return te_err_set(err, TE_EINVAL, "too many options");
    for (size_t i = 0; i < nopts; i++)
        a->opts[a->nopts++] = &opts[i];
    for (size_t i = 0; i < 3; i++) {
        if (find_long(a, common_opts[i].name, strlen(common_opts[i].name)) < 0)
            a->opts[a->nopts++] = &common_opts[i];
    }
    a->pos = calloc((size_t)argc + 1, sizeof(*a->pos));
    if (!a->pos)
        return te_err_set(err, TE_ENOMEM, "out of memory");

    for (int k = 0; k < argc; k++) {
        const char *w = argv[k];
        int i;
        const char *val = NULL;

        if (only_pos || w[0] != '-' || w[1] == '\0') {
            a->pos[a->npos++] = w;
            continue;
        }
        if (strcmp(w, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (w[1] == '-') {
            const char *name = w + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            i = find_long(a, name, len);
            if (i < 0) {
                rc = te_err_set(err, TE_EUSAGE, "unknown option \"--%.*s\"", (int)len, name);
                goto fail;
            }
            if (eq) {
                if (a->opts[i]->kind == TE_CLI_FLAG) {
                    rc = te_err_set(err, TE_EUSAGE, "option --%s takes no value",
                                    a->opts[i]->name);
                    goto fail;
                }
                val = eq + 1;
            }
        } else {
            i = w[2] == '\0' ? find_short(a, w[1]) : -1;
            if (i < 0) {
                rc = te_err_set(err, TE_EUSAGE, "unknown option \"%s\"", w);
                goto fail;
            }
        }
        if (a->opts[i]->kind == TE_CLI_FLAG) {
            a->value[i] = "";
            if (strcmp(a->opts[i]->name, "help") == 0)
                a->help = true;
            continue;
        }
        if (!val) {
            if (k + 1 >= argc) {
                rc = te_err_set(err, TE_EUSAGE, "option --%s needs a value", a->opts[i]->name);
                goto fail;
            }
            val = argv[++k];
        }
        rc = store_value(a, i, val, err);
        if (rc < 0)
            goto fail;
    }
    return 0;
fail:
    te_cli_args_free(a);
    return rc;
}

void te_cli_args_free(te_cli_args_t *a)
{
    for (size_t i = 0; i < TE_CLI_MAX_OPTS; i++) {
        free(a->list[i]);
        a->list[i] = NULL;
        a->nlist[i] = 0;
    }
    free(a->pos);
    a->pos = NULL;
    a->npos = 0;
}

const char *te_cli_get(const te_cli_args_t *a, const char *name)
{
    int i = find_long(a, name, strlen(name));
    return i < 0 ? NULL : a->value[i];
}

bool te_cli_has(const te_cli_args_t *a, const char *name)
{
    return te_cli_get(a, name) != NULL;
}

size_t te_cli_list(const te_cli_args_t *a, const char *name, const char *const **out)
{
    int i = find_long(a, name, strlen(name));
    if (i < 0) {
        if (out)
            *out = NULL;
        return 0;
    }
    if (out)
        *out = a->list[i];
    return a->nlist[i];
}

int te_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s: %s\nsee '%s %s --help'\n", TE_CLI_PROG, cmd, msg, TE_CLI_PROG, cmd);
    return TE_CLI_USAGE;
}

int te_cli_fail(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s: %s\n", TE_CLI_PROG, cmd, msg);
    return TE_CLI_FAIL;
}

int te_cli_parse_int(const char *name, const char *s, int64_t min, int64_t max, int64_t *out,
                     te_err_t *err)
{
    char *end = NULL;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max)
        return te_err_set(err, TE_EUSAGE, "--%s must be an integer from %lld to %lld, got \"%s\"",
                          name, (long long)min, (long long)max, s);
    *out = v;
    return 0;
}

int te_cli_load_config(const char *cmd, const te_cli_args_t *a, te_config_t **out)
{
    te_err_t err = {0};
    int rc = te_config_load(te_cli_get(a, "config"), te_cli_get(a, "data"), out, &err);
    if (rc < 0)
        return te_cli_fail(cmd, "%s", err.msg[0] ? err.msg : te_strerror(rc));
    return 0;
}

/* "./data/telemetry.db" reads better as "data/telemetry.db" in messages. */
static const char *shown_path(const char *p)
{
    while (p[0] == '.' && p[1] == '/' && p[2] != '\0')
        p += 2;
    return p;
}

int te_cli_open_store_ro(const char *cmd, const te_config_t *cfg, te_store_t **out)
{
    struct stat sb;
    te_err_t err = {0};
    te_store_opts_t opts = {.path = cfg->db_path, .readonly = true};

    if (stat(cfg->db_path, &sb) != 0)
        return te_cli_fail(cmd,
                           "no database at %s (run '%s serve' or 'ingest' first, or pass --data "
                           "DIR)",
                           shown_path(cfg->db_path), TE_CLI_PROG);
    if (te_store_open(&opts, out, &err) < 0)
        return te_cli_fail(cmd, "%s", err.msg);
    return 0;
}

void te_cli_progress_init(te_cli_progress_t *p)
{
    p->tty = isatty(STDERR_FILENO) == 1;
    p->shown = false;
    p->last_ns = 0;
}

void te_cli_progress_update(te_cli_progress_t *p, bool force, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    int64_t now;

    if (!p->tty)
        return;
    now = te_time_mono_ns();
    if (!force && p->shown && now - p->last_ns < 100 * TE_NS_PER_MS)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* \033[K clears what a longer previous line left behind */
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->shown = true;
    p->last_ns = now;
}

void te_cli_progress_done(te_cli_progress_t *p)
{
    if (p->tty && p->shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->shown = false;
}

int te_cli_parse_format(const char *s, te_cli_format_t *out, te_err_t *err)
{
    if (!s || strcmp(s, "table") == 0)
        *out = TE_CLI_FMT_TABLE;
    else if (strcmp(s, "json") == 0)
        *out = TE_CLI_FMT_JSON;
    else if (strcmp(s, "csv") == 0)
        *out = TE_CLI_FMT_CSV;
    else
        return te_err_set(err, TE_EUSAGE, "--format must be table, json or csv, got \"%s\"", s);
    return 0;
}

int te_cli_parse_where(const char *const *items, size_t n, te_tag_filter_t **out, te_err_t *err)
{
    te_tag_filter_t *f;
    *out = NULL;
    if (n == 0)
        return 0;
    /* one block: n filters, then n value pointers, then the key strings */
    size_t keys = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        if (!eq || eq == items[i])
            return te_err_set(err, TE_EUSAGE, "--where must be TAG=VALUE, got \"%s\"", items[i]);
        keys += (size_t)(eq - items[i]) + 1;
    }
    f = malloc(n * (sizeof(*f) + sizeof(char *)) + keys);
    if (!f)
        return te_err_set(err, TE_ENOMEM, "out of memory");
    const char **vals = (const char **)(f + n);
    char *kp = (char *)(vals + n);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        size_t klen = (size_t)(eq - items[i]);
        memcpy(kp, items[i], klen);
        kp[klen] = '\0';
        vals[i] = eq + 1;
        f[i].key = kp;
        f[i].values = &vals[i];
        f[i].nvalues = 1;
        kp += klen + 1;
    }
    *out = f;
    return 0;
}

void te_cli_where_free(te_tag_filter_t *f, size_t n)
{
    (void)n;
    free(f);
}

int te_cli_parse_range(const te_cli_args_t *a, int64_t *since_ns, int64_t *until_ns,
                       te_err_t *err)
{
    int64_t now = te_time_now_ns();
    const char *since = te_cli_get(a, "since");
    const char *until = te_cli_get(a, "until");
    te_err_t e = {0};

    if (te_time_parse_since(since ? since : "24h", now, since_ns, &e) < 0)
        return te_err_set(err, TE_EUSAGE,
                          "--since: bad value \"%s\" (use a duration such as 30s, 5m, 2h, 7d, "
                          "1w, an RFC 3339 time or Unix seconds)",
                          since);
    *until_ns = now;
    if (until && te_time_parse_since(until, now, until_ns, &e) < 0)
        return te_err_set(err, TE_EUSAGE,
                          "--until: bad value \"%s\" (use an RFC 3339 time, Unix seconds or a "
                          "duration ago such as 1h)",
                          until);
    if (*until_ns <= *since_ns)
        return te_err_set(err, TE_EUSAGE, "--until must be after --since");
    return 0;
}

int te_cli_write(const char *s, size_t len)
{
    if (len && fwrite(s, 1, len, stdout) != len)
        return TE_EIO;
    return 0;
}

/* --- dispatch --- */

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *f);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"serve", te_cli_serve, te_cli_help_serve, "run the engine: listeners, writer, queries"},
    {"ingest", te_cli_ingest, te_cli_help_ingest, "bulk load NDJSON files (or stdin)"},
    {"events", te_cli_events, te_cli_help_events, "list stored events, newest first"},
    {"query", te_cli_query, te_cli_help_query, "aggregate events by tags and time"},
    {"rules", te_cli_rules, te_cli_help_rules, "rule scripts: list, check, test"},
    {"alerts", te_cli_alerts, te_cli_help_alerts, "alerts stored by the rules: list"},
    {"report", te_cli_report, te_cli_help_report, "run a report template: md, html, json, csv"},
    {"recommendations", te_cli_recs, te_cli_help_recs, "te.recommend findings: list, run"},
    {"runs", te_cli_runs, te_cli_help_runs, "pipeline runs: list, show, watch, export"},
    {"db", te_cli_db, te_cli_help_db, "database tools: stats, check, backup, restore, vacuum"},
    {"version", te_cli_version, te_cli_help_version, "print the version and library versions"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void main_help(FILE *f)
{
    fprintf(f, "usage: %s COMMAND [options]\n\n"
               "A telemetry engine: ingests events into SQLite and answers queries.\n\n"
               "commands:\n",
            TE_CLI_PROG);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-15s %s\n", "help", "this text, or 'help COMMAND' for a command's options");
    fprintf(f, "\n"
               "options every command takes (before or after its words):\n"
               "  --config FILE  configuration (default ./telemetry.lua when present,\n"
               "                 env TELEMETRY_CONFIG)\n"
               "  --data DIR     data folder, database DIR/telemetry.db (default ./data,\n"
               "                 env TELEMETRY_DATA)\n"
               "  -h, --help     print the command's usage\n\n"
               "exit codes: 0 ok, 1 runtime failure, 2 usage error\n"
               "Run '%s COMMAND --help' for a command's options.\n",
            TE_CLI_PROG);
}

static const command_t *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

int te_cli_main(int argc, char **argv)
{
    const command_t *c;

    if (argc < 2) {
        main_help(stderr);
        return TE_CLI_USAGE;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            c = find_command(argv[2]);
            if (!c) {
                fprintf(stderr, "%s: unknown command \"%s\"\nsee '%s --help'\n", TE_CLI_PROG,
                        argv[2], TE_CLI_PROG);
                return TE_CLI_USAGE;
            }
            c->help(stdout);
            return TE_CLI_OK;
        }
        main_help(stdout);
        return TE_CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return te_cli_version(0, argv + 2);
    c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "%s: unknown command \"%s\"\nsee '%s --help'\n", TE_CLI_PROG, argv[1],
                TE_CLI_PROG);
        return TE_CLI_USAGE;
    }
    int rc = c->run(argc - 2, argv + 2);
    if (fflush(stdout) != 0 && rc == TE_CLI_OK)
        rc = TE_CLI_FAIL;
    return rc;
}
