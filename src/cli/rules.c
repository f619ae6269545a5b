/*
 * rules.c - `telemetry-engine rules list|check|test [PATH...]` (SPEC 4, 6).
 *
 * THREAD: main. No engine and no database: each script is loaded in its
 * own sandbox exactly as `serve` loads it (te_script_load), and all of them
 * join one ruleset, so that what passes here loads in the engine too
 * (a rule name defined twice is caught). `rules test` is rules_test.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../api/api.h"
#include "../config/config.h"
#include "../core/time.h"
#include "../rules/eval.h"
#include "../script/reload.h"
#include "cli.h"

static const te_cli_opt_t rules_opts[] = {
    {"format", 0, TE_CLI_VALUE},
};

void te_cli_help_rules(FILE *f)
{
    fprintf(f,
            "usage: %s rules list  [PATH...] [--format table|json] [--config FILE]\n"
            "       %s rules check [PATH...] [--config FILE]\n"
            "       %s rules test  [PATH...] [--config FILE]\n\n"
            "Loads rule scripts in the same sandbox as 'serve', without an engine.\n"
            "PATH is a .lua file or a folder (its *.lua files but *_test.lua); the\n"
            "default is the rules folder of the scripts dir (DIR/rules, DIR from\n"
            "scripts.dir in the config, default ./lua). require() sees DIR/lib.\n\n"
            "  list   a table of file, status, rule, type and error; --format json\n"
            "         prints the object of GET /v1/rules\n"
            "  check  prints 'ok FILE (N rules)' or 'FILE:LINE: message' per file;\n"
            "         exits 1 when any file fails\n"
            "  test   runs rule unit tests (*_test.lua, see docs/rules-testing.md and\n"
            "         '%s rules test --help')\n\n"
            "examples:\n"
            "  %s rules check\n"
            "  %s rules list lua/rules/llm.lua --format json\n",
            TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG);
}

typedef struct loaded {
    te_reload_file_t *files;
    size_t n, cap;
    te_ruleset_t *rs;
    bool any_error;
} loaded_t;

static te_reload_file_t *add_file(loaded_t *l, const char *path)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        te_reload_file_t *v = realloc(l->files, cap * sizeof(*v));
        if (!v)
            return NULL;
        l->files = v;
        l->cap = cap;
    }
    te_reload_file_t *f = &l->files[l->n];
    memset(f, 0, sizeof(*f));
    if (!(f->path = strdup(path)))
        return NULL;
    l->n++;
    return f;
}

/* DIR/lib for a file in DIR/rules, else the configured lib folder. */
static void lib_for(const char *path, const char *dflt, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t dlen = (size_t)(slash - path);
        if (dlen >= 5 && strncmp(slash - 5, "rules", 5) == 0 &&
            (dlen == 5 || slash[-6] == '/')) {
            snprintf(out, cap, "%.*slib", (int)(dlen - 5), path);
            if (dlen == 5)
                snprintf(out, cap, "lib");
            return;
        }
    }
    snprintf(out, cap, "%s", dflt);
}

/* "FILE:LINE: message" for a ruleset refusal, from the def it names. */
static void locate(te_reload_file_t *f, const te_script_t *s, const char *msg)
{
    if (strncmp(msg, f->path, strlen(f->path)) == 0) {
        snprintf(f->error, sizeof(f->error), "%s", msg);
        return;
    }
    int line = 0;
    for (size_t i = 0; i < s->ndefs && !line; i++) {
        char quoted[300];
        snprintf(quoted, sizeof(quoted), "\"%s\"", s->defs[i]->name);
        if (strstr(msg, quoted))
            line = s->defs[i]->line;
    }
    const char *m = strncmp(msg, "rules: ", 7) == 0 ? msg + 7 : msg;
    te_err_t e; /* formats with truncation, into a buffer of f->error's size */
    if (line > 0)
        te_err_set(&e, TE_ESCRIPT, "%s:%d: %s", f->path, line, m);
    else
        te_err_set(&e, TE_ESCRIPT, "%s: %s", f->path, m);
    memcpy(f->error, e.msg, sizeof(f->error));
}

static int load_one(loaded_t *l, const char *path, const char *lib_dflt)
{
    char lib[1024];
    te_err_t err;
    te_err_clear(&err);
    te_reload_file_t *f = add_file(l, path);
    if (!f)
        return TE_ENOMEM;
    lib_for(path, lib_dflt, lib, sizeof(lib));
    te_script_t *s = NULL;
    if (te_script_load(path, lib, NULL, &s, &err) < 0) {
        f->failed = true;
        snprintf(f->error, sizeof(f->error), "%s", err.msg[0] ? err.msg : te_strerror(err.code));
        l->any_error = true;
        return 0;
    }
    te_err_clear(&err);
    if (te_ruleset_add(l->rs, s, te_time_now_ns(), &err) < 0) {
        f->failed = true;
        locate(f, s, err.msg);
        te_script_free(s);
        l->any_error = true;
        return 0;
    }
    f->live = s;
    return 0;
}

/* Loads every PATH (files and folders) or the default rules folder. */
static int load_all(const te_cli_args_t *a, const te_config_t *cfg, loaded_t *l, bool *none)
{
    char dflt_rules[1024], dflt_lib[1024];
    te_err_t err;
    const char *dir = cfg->scripts_dir && cfg->scripts_dir[0] ? cfg->scripts_dir : "lua";
    snprintf(dflt_rules, sizeof(dflt_rules), "%s/rules", dir);
    snprintf(dflt_lib, sizeof(dflt_lib), "%s/lib", dir);
    te_err_clear(&err);
    l->rs = te_ruleset_new(NULL, &err);
    if (!l->rs)
        return te_cli_fail("rules", "%s", err.msg);
    const char *one[1] = {dflt_rules};
    const char *const *paths = a->npos ? a->pos : one;
    size_t np = a->npos ? a->npos : 1;
    *none = true;
    for (size_t i = 0; i < np; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            if (!a->npos)
                return 0; /* no rules folder: nothing to load */
            te_reload_file_t *f = add_file(l, paths[i]);
            if (!f)
                return te_cli_fail("rules", "out of memory");
            f->failed = true;
            snprintf(f->error, sizeof(f->error), "%s: no such file or folder", paths[i]);
            l->any_error = true;
            *none = false;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            *none = false;
            if (load_one(l, paths[i], dflt_lib) < 0)
                return te_cli_fail("rules", "out of memory");
            continue;
        }
        char **list = NULL;
        te_err_clear(&err);
        int n = te_reload_list(paths[i], &list, &err);
        if (n < 0)
            return te_cli_fail("rules", "%s", err.msg);
        for (int k = 0; k < n; k++) {
            *none = false;
            if (load_one(l, list[k], dflt_lib) < 0) {
                te_reload_list_free(list, n);
                return te_cli_fail("rules", "out of memory");
            }
        }
        te_reload_list_free(list, n);
    }
    return 0;
}

static void loaded_free(loaded_t *l)
{
    te_ruleset_free(l->rs);
    for (size_t i = 0; i < l->n; i++) {
        te_script_free(l->files[i].live);
        free(l->files[i].path);
    }
    free(l->files);
}

/* One row per rule (one per file that runs none); widths fit the data. */
typedef struct row {
    const char *file, *status, *rule, *type, *error;
} row_t;

static int print_table(const loaded_t *l)
{
    te_buf_t b = {0};
    size_t nrows = 0, cap = l->n + 1;
    int rc = TE_CLI_OK;
    for (size_t i = 0; i < l->n; i++)
        cap += l->files[i].live ? te_ruleset_status(l->rs, l->files[i].live, NULL, 0) : 0;
    row_t *rows = calloc(cap, sizeof(*rows));
    te_rule_status_t *st = calloc(cap, sizeof(*st));
    if (!rows || !st) {
        rc = te_cli_fail("rules", "out of memory");
        goto out;
    }
    size_t used = 0;
    for (size_t i = 0; i < l->n; i++) {
        const te_reload_file_t *f = &l->files[i];
        size_t n = f->live ? te_ruleset_status(l->rs, f->live, st + used, cap - used) : 0;
        if (n == 0) {
            rows[nrows++] = (row_t){f->path, f->failed ? "error" : "ok", "-", "-",
                                    f->failed ? f->error : "(declares no rules)"};
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            const te_rule_status_t *r = &st[used + k];
            rows[nrows++] = (row_t){f->path, r->status, r->name, r->type,
                                    r->error[0] ? r->error : "-"};
        }
        used += n;
    }
    int w[4] = {4, 6, 4, 4};
    for (size_t i = 0; i < nrows; i++) {
        const char *c[4] = {rows[i].file, rows[i].status, rows[i].rule, rows[i].type};
        for (int k = 0; k < 4; k++)
            if ((int)strlen(c[k]) > w[k])
                w[k] = (int)strlen(c[k]);
    }
    te_buf_addf(&b, "%-*s  %-*s  %-*s  %-*s  %s\n", w[0], "FILE", w[1], "STATUS", w[2],
                     "RULE", w[3], "TYPE", "ERROR");
    for (size_t i = 0; i < nrows; i++)
        te_buf_addf(&b, "%-*s  %-*s  %-*s  %-*s  %s\n", w[0], rows[i].file, w[1],
                         rows[i].status, w[2], rows[i].rule, w[3], rows[i].type, rows[i].error);
    if (b.oom)
        rc = te_cli_fail("rules", "out of memory");
    else if (te_cli_write(b.p, b.len) < 0)
        rc = te_cli_fail("rules", "cannot write to stdout");
out:
    free(rows);
    free(st);
    te_buf_free(&b);
    return rc;
}

static int cmd_list(const te_cli_args_t *a, const te_config_t *cfg)
{
    loaded_t l = {0};
    bool none = false, json = false;
    const char *fmt = te_cli_get(a, "format");
    if (fmt && strcmp(fmt, "json") == 0)
        json = true;
    else if (fmt && strcmp(fmt, "table") != 0)
        return te_cli_usage_error("rules", "--format must be table or json, got \"%s\"", fmt);
    int rc = load_all(a, cfg, &l, &none);
    if (rc != 0)
        goto out;
    if (json) {
        te_buf_t b = {0};
        te_api_rules_json(&b, l.files, l.n, l.rs);
        te_buf_adds(&b, "}\n");
        rc = b.oom || te_cli_write(b.p, b.len) < 0 ? te_cli_fail("rules", "cannot write output")
                                                    : TE_CLI_OK;
        te_buf_free(&b);
    } else {
        if (none)
            fprintf(stderr, "%s rules: no rule files in %s/rules\n", TE_CLI_PROG,
                    cfg->scripts_dir ? cfg->scripts_dir : "lua");
        rc = print_table(&l);
    }
out:
    loaded_free(&l);
    return rc;
}

static int cmd_check(const te_cli_args_t *a, const te_config_t *cfg)
{
    loaded_t l = {0};
    bool none = false;
    if (te_cli_has(a, "format"))
        return te_cli_usage_error("rules", "--format applies to 'rules list' only");
    int rc = load_all(a, cfg, &l, &none);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < l.n; i++) {
        const te_reload_file_t *f = &l.files[i];
        if (f->failed)
            printf("%s\n", f->error);
        else
            printf("ok %s (%zu rules)\n", f->path, f->live ? f->live->ndefs : (size_t)0);
    }
    if (none)
        fprintf(stderr, "%s rules: no rule files in %s/rules\n", TE_CLI_PROG,
                cfg->scripts_dir ? cfg->scripts_dir : "lua");
    rc = l.any_error ? TE_CLI_FAIL : TE_CLI_OK;
out:
    loaded_free(&l);
    return rc;
}

int te_cli_rules(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    int rc;

    /* `rules test` has its own options: hand it every word but "test" */
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-') {
            /* skip the value of a valued option given as two words */
            if (!strchr(argv[i], '=') &&
                (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--data") == 0 ||
                 strcmp(argv[i], "--format") == 0))
                i++;
            continue;
        }
        if (strcmp(argv[i], "test") != 0)
            break;
        char **rest = malloc(((size_t)argc + 1) * sizeof(*rest));
        if (!rest)
            return te_cli_fail("rules", "out of memory");
        int n = 0;
        for (int k = 0; k < argc; k++)
            if (k != i)
                rest[n++] = argv[k];
        rest[n] = NULL;
        rc = te_cli_rules_test(n, rest);
        free(rest);
        return rc;
    }
    if (te_cli_parse(&a, rules_opts, sizeof(rules_opts) / sizeof(rules_opts[0]), argc, argv,
                     &err) < 0)
        return te_cli_usage_error("rules", "%s", err.msg);
    if (a.help) {
        te_cli_help_rules(stdout);
        rc = TE_CLI_OK;
        goto done;
    }
    if (a.npos == 0) {
        rc = te_cli_usage_error("rules", "missing sub-command: list, check or test");
        goto done;
    }
    const char *sub = a.pos[0];
    if (strcmp(sub, "list") != 0 && strcmp(sub, "check") != 0) {
        rc = te_cli_usage_error("rules", "unknown sub-command \"%s\" (expected list, check or test)",
                                sub);
        goto done;
    }
    a.pos++; /* the PATHs */
    a.npos--;
    rc = te_cli_load_config("rules", &a, &cfg);
    if (rc == 0)
        rc = strcmp(sub, "list") == 0 ? cmd_list(&a, cfg) : cmd_check(&a, cfg);
    a.pos--;
    a.npos++;
done:
    te_config_free(cfg);
    te_cli_args_free(&a);
    return rc;
}
