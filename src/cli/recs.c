/*
 * recs.c - `telemetry-engine recommendations`: list the stored findings of
 * the te.recommend scripts, or run the recommenders now (SPEC 6.4).
 *
 * THREAD: main.
 *
 *   recommendations [list] [--state open|resolved|all] [--severity S]
 *                   [--name N] [--limit N] [--format table|json]
 *   recommendations run [NAME] [--scripts DIR] [--format table|json]
 *
 * list reads through a read-only store, so it works while serve runs;
 * `--format json` prints the object GET /v1/recommendations answers.
 * run loads every file of DIR/rules in its own sandbox exactly as serve
 * does, calls each recommender (or only NAME) against the stored data and
 * saves what it returns through a second write connection (WAL: it waits
 * its turn beside a running engine, busy timeout 5 s), so the findings are
 * de-duplicated with the engine's own runs; then it prints each one's open
 * findings. Exit 1 when a script fails to load or a recommender fails (the
 * others still ran and were saved), 2 on a usage error.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../config/config.h"
#include "../core/time.h"
#include "../script/recommend.h"
#include "../script/reload.h"
#include "../script/script.h"
#include "../store/recs.h"
#include "../store/store.h"
#include "cli.h"

#define CMD "recommendations"

static const te_cli_opt_t recs_opts[] = {
    {"state", 0, TE_CLI_VALUE},   {"severity", 0, TE_CLI_VALUE}, {"name", 0, TE_CLI_VALUE},
    {"limit", 0, TE_CLI_VALUE},   {"format", 0, TE_CLI_VALUE},   {"scripts", 0, TE_CLI_VALUE},
};

void te_cli_help_recs(FILE *f)
{
    fprintf(f,
            "usage: %s " CMD " [list] [--data DIR] [--state open|resolved|all]\n"
            "                        [--severity info|warning|critical] [--name N] [--limit N]\n"
            "                        [--format table|json]\n"
            "       %s " CMD " run [NAME] [--data DIR] [--scripts DIR] [--format table|json]\n\n"
            "list (the default) shows the findings that te.recommend scripts stored: open\n"
            "first, critical before warning before info, most recently seen first. A finding\n"
            "is stored once and counted each run that returns it; it is resolved when a\n"
            "later run no longer returns it. Works while serve runs.\n"
            "run calls every recommender of DIR/rules (or only NAME) now against the stored\n"
            "data, saves the findings (as serve does on schedule) and prints the open ones.\n\n"
            "options:\n"
            "  --state S      open (default), resolved or all\n"
            "  --severity S   only findings of severity S\n"
            "  --name N       only the findings of recommender N\n"
            "  --limit N      at most N findings (default 100)\n"
            "  --scripts DIR  run: scripts folder, rules in DIR/rules (default ./lua or\n"
            "                 scripts.dir of the config file)\n"
            "  --format F     table (default) or json (the GET /v1/recommendations object)\n"
            "  --config FILE, --data DIR as for every command\n\n"
            "exit status: 0 ok, 1 a script or recommender failed, 2 usage error\n\n"
            "examples:\n"
            "  %s " CMD " --severity critical\n"
            "  %s " CMD " run premium-downgrade\n",
            TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG);
}

/* ---- printing ---- */

static const char *str_at(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : "-";
}

static void print_table(const cJSON *arr)
{
    printf("%-5s  %-8s  %-8s  %-24s  %-5s  %-20s  %s\n", "id", "state", "severity",
           "recommender", "count", "last_seen", "title");
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        char seen[32]; /* to the second: "2026-11-20T10:00:00Z" */
        snprintf(seen, sizeof(seen), "%.19sZ", str_at(o, "last_seen"));
        printf("%-5.0f  %-8s  %-8s  %-24s  %-5.0f  %-20s  %s\n",
               cJSON_GetNumberValue(cJSON_GetObjectItem(o, "id")), str_at(o, "state"),
               str_at(o, "severity"), str_at(o, "name"),
               cJSON_GetNumberValue(cJSON_GetObjectItem(o, "count")), seen,
               str_at(o, "title"));
        const char *action = cJSON_GetStringValue(cJSON_GetObjectItem(o, "action"));
        if (action && action[0])
            printf("%-5s  -> %s\n", "", action);
    }
}

static int print_json(const cJSON *root)
{
    char *text = cJSON_PrintUnformatted(root);
    if (!text)
        return te_cli_fail(CMD, "out of memory");
    int rc = te_cli_write(text, strlen(text)) < 0 || te_cli_write("\n", 1) < 0
                 ? te_cli_fail(CMD, "cannot write the output")
                 : TE_CLI_OK;
    free(text);
    return rc;
}

/* ---- list ---- */

static int cmd_list(const te_cli_args_t *a, te_cli_format_t format, const char *state,
                    const char *severity, int64_t limit)
{
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    cJSON *root = NULL;
    te_err_t err = {0};
    te_recs_filter_t f = {.state = state ? state : "open",
                          .severity = severity,
                          .name = te_cli_get(a, "name")};
    int rc = te_cli_load_config(CMD, a, &cfg);
    if (rc == 0)
        rc = te_cli_open_store_ro(CMD, cfg, &st);
    if (rc != 0)
        goto out;
    if (te_store_recs_list_json(st, &f, (size_t)limit, &root, &err) < 0) {
        rc = te_cli_fail(CMD, "%s", err.msg);
        goto out;
    }
    if (format == TE_CLI_FMT_JSON)
        rc = print_json(root);
    else
        print_table(cJSON_GetObjectItem(root, "recommendations"));
out:
    cJSON_Delete(root);
    te_store_close(st);
    te_config_free(cfg);
    return rc;
}

/* ---- run ---- */

typedef struct run_result {
    char name[128];
    char path[1024];
    te_recs_run_stats_t stats;
    size_t findings;
    char error[TE_ERR_MSG_MAX];
} run_result_t;

typedef struct runner {
    te_store_t *st;
    const char *only;          /* NAME or NULL */
    te_script_limits_t limits;
    int64_t now_ns;
    run_result_t *v;
    size_t n, cap;
    bool failed;
} runner_t;

static run_result_t *find_result(runner_t *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return &r->v[i];
    return NULL;
}

static run_result_t *add_result(runner_t *r, const char *name, const char *path)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        run_result_t *v = realloc(r->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        r->v = v;
        r->cap = cap;
    }
    run_result_t *res = &r->v[r->n++];
    memset(res, 0, sizeof(*res));
    snprintf(res->name, sizeof(res->name), "%s", name);
    snprintf(res->path, sizeof(res->path), "%s", path);
    return res;
}

/* Runs the recommenders of one loaded script and saves their findings. */
static void run_script(runner_t *r, te_script_t *s)
{
    te_recommend_decl_t *d = NULL;
    size_t nd = 0;
    if (te_recommend_decls(s, &d, &nd) < 0) {
        fprintf(stderr, "%s " CMD ": %s: out of memory\n", TE_CLI_PROG, s->path);
        r->failed = true;
        return;
    }
    for (size_t i = 0; i < nd; i++) {
        if (r->only && strcmp(r->only, d[i].name) != 0)
            continue;
        run_result_t *prev = find_result(r, d[i].name);
        if (prev) {
            fprintf(stderr, "%s " CMD ": %s:%d: te.recommend \"%s\" is already declared in %s; "
                    "this one does not run (rename it)\n", TE_CLI_PROG, s->path, d[i].line,
                    d[i].name, prev->path);
            continue;
        }
        run_result_t *res = add_result(r, d[i].name, s->path);
        if (!res) {
            r->failed = true;
            break;
        }
        te_err_t err = {0};
        te_rec_t *v = NULL;
        size_t n = 0;
        te_recommend_run_opts_t ro = {.st = r->st, .now_ns = r->now_ns};
        int rc = te_recommend_run(s, d[i].name, &ro, &v, &n, &err);
        if (rc == 0)
            rc = te_store_recs_save_run(r->st, d[i].name, v, n, r->now_ns, &res->stats, &err);
        te_recommend_findings_free(v, n);
        if (rc < 0) {
            snprintf(res->error, sizeof(res->error), "%s",
                     err.msg[0] ? err.msg : te_strerror(rc));
            fprintf(stderr, "%s " CMD ": \"%s\" failed: %s\n", TE_CLI_PROG, d[i].name,
                    res->error);
            r->failed = true;
            continue;
        }
        res->findings = n;
    }
    free(d);
}

static int run_all(runner_t *r, const char *scripts_dir)
{
    char rules[1024], lib[1024];
    te_err_t err = {0};
    char **paths = NULL;
    snprintf(rules, sizeof(rules), "%s/rules", scripts_dir);
    snprintf(lib, sizeof(lib), "%s/lib", scripts_dir);
    int np = te_reload_list(rules, &paths, &err);
    if (np < 0)
        return te_cli_fail(CMD, "%s", err.msg);
    for (int i = 0; i < np; i++) {
        te_script_t *s = NULL;
        te_err_clear(&err);
        if (te_script_load(paths[i], lib, &r->limits, &s, &err) < 0) {
            fprintf(stderr, "%s " CMD ": %s\n", TE_CLI_PROG,
                    err.msg[0] ? err.msg : te_strerror(err.code));
            r->failed = true;
            continue;
        }
        run_script(r, s);
        te_script_free(s);
    }
    te_reload_list_free(paths, np);
    return 0;
}

static cJSON *runs_json(const runner_t *r)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < r->n; i++) {
        const run_result_t *x = &r->v[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "name", x->name) ||
            !cJSON_AddNumberToObject(o, "findings", (double)x->findings) ||
            !cJSON_AddNumberToObject(o, "new", (double)x->stats.opened) ||
            !cJSON_AddNumberToObject(o, "again", (double)x->stats.seen) ||
            !cJSON_AddNumberToObject(o, "reopened", (double)x->stats.reopened) ||
            !cJSON_AddNumberToObject(o, "resolved", (double)x->stats.resolved) ||
            !(x->error[0] ? cJSON_AddStringToObject(o, "error", x->error)
                          : cJSON_AddNullToObject(o, "error"))) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static int cmd_run(const te_cli_args_t *a, te_cli_format_t format)
{
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    cJSON *root = NULL;
    te_err_t err = {0};
    runner_t r;
    memset(&r, 0, sizeof(r));
    r.only = a->npos > 1 ? a->pos[1] : NULL;
    int rc = te_cli_load_config(CMD, a, &cfg);
    if (rc == 0) /* the read-only open prints the "no database" hint */
        rc = te_cli_open_store_ro(CMD, cfg, &st);
    if (rc != 0)
        goto out;
    te_store_close(st);
    st = NULL;
    te_store_opts_t so = {.path = cfg->db_path,
                          .durability = (te_durability_t)cfg->durability,
                          .busy_timeout_ms = 5000};
    if (te_store_open(&so, &st, &err) < 0 || te_store_recs_init(st, &err) < 0) {
        rc = te_cli_fail(CMD, "%s", err.msg);
        goto out;
    }
    r.st = st;
    r.now_ns = te_time_now_ns();
    r.limits = (te_script_limits_t){.mem_bytes = cfg->script_mem_bytes,
                                    .max_steps = (uint64_t)cfg->script_max_steps,
                                    .max_call_ns = cfg->script_call_ns};
    if (r.limits.max_call_ns < TE_RECOMMEND_MIN_CALL_NS)
        r.limits.max_call_ns = TE_RECOMMEND_MIN_CALL_NS;
    const char *dir = te_cli_get(a, "scripts");
    if (!dir)
        dir = cfg->scripts_dir && cfg->scripts_dir[0] ? cfg->scripts_dir : "lua";
    rc = run_all(&r, dir);
    if (rc != 0)
        goto out;
    if (r.only && r.n == 0) {
        rc = te_cli_fail(CMD, "no recommender \"%s\" in %s/rules (see '%s " CMD " run' for "
                         "all of them, or pass --scripts DIR)", r.only, dir, TE_CLI_PROG);
        goto out;
    }

    /* what each one has open now, from the store (ids and counts included) */
    root = cJSON_CreateObject();
    cJSON *all = root ? cJSON_AddArrayToObject(root, "recommendations") : NULL;
    if (!all) {
        rc = te_cli_fail(CMD, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r.n; i++) {
        if (r.v[i].error[0])
            continue;
        cJSON *one = NULL;
        te_recs_filter_t f = {.state = "open", .name = r.v[i].name};
        if (te_store_recs_list_json(st, &f, 0, &one, &err) < 0) {
            rc = te_cli_fail(CMD, "%s", err.msg);
            goto out;
        }
        cJSON *item;
        cJSON *arr = cJSON_GetObjectItem(one, "recommendations");
        while ((item = cJSON_DetachItemFromArray(arr, 0)) != NULL)
            cJSON_AddItemToArray(all, item);
        cJSON_Delete(one);
    }
    cJSON *runs = runs_json(&r);
    if (!runs) {
        rc = te_cli_fail(CMD, "out of memory");
        goto out;
    }
    cJSON_AddItemToObject(root, "runs", runs);
    if (format == TE_CLI_FMT_JSON) {
        rc = print_json(root);
    } else {
        print_table(all);
        for (size_t i = 0; i < r.n; i++) {
            const run_result_t *x = &r.v[i];
            if (x->error[0])
                printf("%s: failed (see above)\n", x->name);
            else
                printf("%s: %zu finding(s): %zu new, %zu again, %zu reopened, %zu resolved\n",
                       x->name, x->findings, x->stats.opened, x->stats.seen, x->stats.reopened,
                       x->stats.resolved);
        }
        if (r.n == 0)
            printf("no recommenders in %s/rules\n", dir);
        rc = TE_CLI_OK;
    }
    if (rc == TE_CLI_OK && r.failed)
        rc = TE_CLI_FAIL;
out:
    cJSON_Delete(root);
    free(r.v);
    te_store_close(st);
    te_config_free(cfg);
    return rc;
}

int te_cli_recs(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};
    te_cli_format_t format;
    int64_t limit = 100;
    int rc;

    if (te_cli_parse(&a, recs_opts, sizeof(recs_opts) / sizeof(recs_opts[0]), argc, argv,
                     &err) < 0)
        return te_cli_usage_error(CMD, "%s", err.msg);
    if (a.help) {
        te_cli_help_recs(stdout);
        rc = TE_CLI_OK;
        goto out;
    }
    const char *sub = a.npos ? a.pos[0] : "list";
    bool run = strcmp(sub, "run") == 0;
    if (!run && strcmp(sub, "list") != 0) {
        rc = te_cli_usage_error(CMD, "unknown sub-command \"%s\" (list, run)", sub);
        goto out;
    }
    if (a.npos > (run ? 2u : 1u)) {
        rc = te_cli_usage_error(CMD, "unexpected argument \"%s\"", a.pos[run ? 2 : 1]);
        goto out;
    }
    if (te_cli_parse_format(te_cli_get(&a, "format"), &format, &err) < 0) {
        rc = te_cli_usage_error(CMD, "%s", err.msg);
        goto out;
    }
    if (format == TE_CLI_FMT_CSV) {
        rc = te_cli_usage_error(CMD, "--format must be table or json");
        goto out;
    }
    if (run) {
        static const char *const list_only[] = {"state", "severity", "name", "limit"};
        for (size_t i = 0; i < sizeof(list_only) / sizeof(list_only[0]); i++)
            if (te_cli_has(&a, list_only[i])) {
                rc = te_cli_usage_error(CMD, "--%s belongs to 'list' (run takes NAME, "
                                        "--scripts and --format)", list_only[i]);
                goto out;
            }
        rc = cmd_run(&a, format);
        goto out;
    }
    if (te_cli_has(&a, "scripts")) {
        rc = te_cli_usage_error(CMD, "--scripts belongs to 'run'");
        goto out;
    }
    const char *state = te_cli_get(&a, "state");
    const char *severity = te_cli_get(&a, "severity");
    const char *lim = te_cli_get(&a, "limit");
    if (te_store_recs_filter_check(state, severity, &err) < 0) {
        rc = te_cli_usage_error(CMD, "--%s", err.msg);
        goto out;
    }
    if (lim && te_cli_parse_int("limit", lim, 1, 100000, &limit, &err) < 0) {
        rc = te_cli_usage_error(CMD, "%s", err.msg);
        goto out;
    }
    rc = cmd_list(&a, format, state, severity, limit);
out:
    te_cli_args_free(&a);
    return rc;
}
