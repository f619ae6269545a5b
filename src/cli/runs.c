/*
 * runs.c - `telemetry-engine runs`: pipeline runs (SPEC 8) computed from
 * the stored run / run_step events (store/runs.h has the model and the ETA
 * estimator).
 *
 * THREAD: main.
 *
 *   runs [list] [--status S] [--since D] [--limit N] [--stale-after D] [--format table|json]
 *   runs show ID [--stale-after D] [--format table|json]
 *   runs watch ID [--stale-after D]
 *   runs export ID [--format md|json]
 *
 * Everything reads through a read-only store, so it works while serve
 * runs. `list --format json` prints the GET /v1/runs object and `show
 * --format json` / `export --format json` the GET /v1/runs/{id} one.
 * watch re-reads the run every second: on a terminal it redraws one line
 * in place, piped it prints a line whenever the line changes; it stops
 * when the run finishes (exit 0 when it succeeded, 1 when it failed or was
 * aborted) or on Ctrl-C (exit 0).
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../config/config.h"
#include "../core/time.h"
#include "../store/runs.h"
#include "../store/store.h"
#include "cli.h"

#define CMD "runs"

static const te_cli_opt_t runs_opts[] = {
    {"status", 0, TE_CLI_VALUE}, {"since", 0, TE_CLI_VALUE},       {"limit", 0, TE_CLI_VALUE},
    {"format", 0, TE_CLI_VALUE}, {"stale-after", 0, TE_CLI_VALUE},
};

void te_cli_help_runs(FILE *f)
{
    fprintf(f,
            "usage: %s " CMD " [list] [--data DIR] [--status S] [--since D] [--limit N]\n"
            "                     [--stale-after D] [--format table|json]\n"
            "       %s " CMD " show ID [--data DIR] [--stale-after D] [--format table|json]\n"
            "       %s " CMD " watch ID [--data DIR] [--stale-after D]\n"
            "       %s " CMD " export ID [--data DIR] [--format md|json]\n\n"
            "Pipeline runs, computed from the stored events of kind run (tags run_id,\n"
            "pipeline, status; field steps_total) and run_step (tags run_id, step, status;\n"
            "fields step_ordinal, duration_s): status, step X/Y, current step, elapsed\n"
            "time and ETA (from this run's finished steps and the same pipeline's past\n"
            "runs). A running run that was silent for longer than --stale-after is stale.\n"
            "Works while serve runs.\n\n"
            "list (the default) shows runs newest first; show one run with its steps;\n"
            "watch redraws a run's progress every second until it ends or Ctrl-C; export\n"
            "prints a Markdown report of a run (or its JSON object).\n\n"
            "options:\n"
            "  --status S       list: only runs in status S: running, stale, succeeded,\n"
            "                   failed or aborted\n"
            "  --since D        list: only runs with an event in the last D (7d) or since\n"
            "                   a time (RFC 3339 or Unix seconds); default: every run\n"
            "  --limit N        list: at most N runs (1 to 1000, default 20)\n"
            "  --stale-after D  heartbeat timeout (default 10m)\n"
            "  --format F       list, show: table (default) or json (the GET /v1/runs\n"
            "                   objects); export: md (default) or json\n"
            "  --config FILE, --data DIR as for every command\n\n"
            "exit status: 0 ok (watch: the run succeeded, or Ctrl-C), 1 failure, an\n"
            "unknown run, or (watch) a run that failed or was aborted, 2 usage error\n\n"
            "examples:\n"
            "  %s " CMD " list --status running\n"
            "  %s " CMD " watch r-42\n"
            "  %s " CMD " export r-42 --format md > r-42.md\n",
            TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG,
            TE_CLI_PROG);
}

/* ---- formatting ---- */

static void fmt_secs(double s, char *buf, size_t cap)
{
    if (isnan(s) || s < 0) {
        snprintf(buf, cap, "-");
        return;
    }
    te_duration_format((int64_t)llround(s) * TE_NS_PER_SEC, buf, cap);
}

static void fmt_time(int64_t ns, char *buf, size_t cap)
{
    char t[40];
    if (!ns) {
        snprintf(buf, cap, "-");
        return;
    }
    te_time_format_rfc3339(ns, t, sizeof(t));
    snprintf(buf, cap, "%.19sZ", t); /* to the second */
}

static void fmt_progress(const te_run_t *r, char *buf, size_t cap)
{
    if (r->steps_total >= 0)
        snprintf(buf, cap, "%lld/%lld", (long long)r->steps_done, (long long)r->steps_total);
    else
        snprintf(buf, cap, "%lld/?", (long long)r->steps_done);
}

static void fmt_current(const te_run_t *r, char *buf, size_t cap)
{
    if (r->current_ordinal && r->current_step)
        snprintf(buf, cap, "%lld %s", (long long)r->current_ordinal, r->current_step);
    else if (r->current_ordinal)
        snprintf(buf, cap, "%lld", (long long)r->current_ordinal);
    else
        snprintf(buf, cap, "-");
}

static int print_json(void *obj)
{
    cJSON *root = obj;
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return te_cli_fail(CMD, "out of memory");
    int rc = te_cli_write(text, strlen(text)) < 0 || te_cli_write("\n", 1) < 0
                 ? te_cli_fail(CMD, "cannot write the output")
                 : TE_CLI_OK;
    free(text);
    return rc;
}

static void print_table(const te_run_t *v, size_t n)
{
    printf("%-20s  %-18s  %-9s  %-7s  %-20s  %-20s  %-9s  %s\n", "id", "pipeline", "status",
           "steps", "current", "started", "elapsed", "eta");
    for (size_t i = 0; i < n; i++) {
        char prog[48], cur[160], start[40], el[32], eta[32];
        fmt_progress(&v[i], prog, sizeof(prog));
        fmt_current(&v[i], cur, sizeof(cur));
        fmt_time(v[i].started_ns, start, sizeof(start));
        fmt_secs(v[i].elapsed_s, el, sizeof(el));
        fmt_secs(v[i].eta_s, eta, sizeof(eta));
        printf("%-20s  %-18s  %-9s  %-7s  %-20s  %-20s  %-9s  %s\n", v[i].id,
               v[i].pipeline[0] ? v[i].pipeline : "-", v[i].status, prog, cur, start, el, eta);
    }
}

static void print_show(const te_run_t *r)
{
    char prog[48], cur[160], t1[40], t2[40], t3[40], el[32], eta[32];
    fmt_progress(r, prog, sizeof(prog));
    fmt_current(r, cur, sizeof(cur));
    fmt_time(r->started_ns, t1, sizeof(t1));
    fmt_time(r->last_event_ns, t2, sizeof(t2));
    fmt_time(r->ended_ns, t3, sizeof(t3));
    fmt_secs(r->elapsed_s, el, sizeof(el));
    fmt_secs(r->eta_s, eta, sizeof(eta));
    printf("run         %s\n"
           "pipeline    %s\n"
           "status      %s\n"
           "steps       %s\n"
           "current     %s\n"
           "started     %s\n"
           "last event  %s\n"
           "ended       %s\n"
           "elapsed     %s\n"
           "eta         %s\n\n",
           r->id, r->pipeline[0] ? r->pipeline : "-", r->status, prog, cur, t1, t2, t3, el, eta);
    printf("%4s  %-28s  %-9s  %s\n", "#", "step", "status", "duration");
    for (size_t i = 0; i < r->nsteps; i++) {
        char d[32];
        fmt_secs(r->steps[i].duration_s, d, sizeof(d));
        printf("%4lld  %-28s  %-9s  %s\n", (long long)r->steps[i].ordinal, r->steps[i].name,
               r->steps[i].status, d);
    }
}

/* Markdown: table cells escape '|' and drop newlines. */
static void md_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

static void print_md(const te_run_t *r, int64_t now_ns)
{
    char prog[48], cur[160], t1[40], t2[40], t3[40], el[32], eta[32];
    fmt_progress(r, prog, sizeof(prog));
    fmt_current(r, cur, sizeof(cur));
    fmt_time(r->started_ns, t1, sizeof(t1));
    fmt_time(r->last_event_ns, t2, sizeof(t2));
    fmt_time(r->ended_ns, t3, sizeof(t3));
    fmt_secs(r->elapsed_s, el, sizeof(el));
    fmt_secs(r->eta_s, eta, sizeof(eta));
    printf("# Run ");
    md_cell(stdout, r->id);
    printf("\n\n| | |\n|---|---|\n| Pipeline | ");
    md_cell(stdout, r->pipeline[0] ? r->pipeline : "-");
    printf(" |\n| Status | %s |\n| Steps | %s |\n| Current step | ", r->status, prog);
    md_cell(stdout, cur);
    printf(" |\n| Started | %s |\n| Last event | %s |\n| Ended | %s |\n| Elapsed | %s |\n"
           "| ETA | %s |\n",
           t1, t2, t3, el, eta);
    printf("\n## Steps\n\n");
    if (!r->nsteps) {
        printf("No step events.\n");
    } else {
        printf("| # | Step | Status | Duration (s) |\n|---:|---|---|---:|\n");
        for (size_t i = 0; i < r->nsteps; i++) {
            printf("| %lld | ", (long long)r->steps[i].ordinal);
            md_cell(stdout, r->steps[i].name);
            if (isnan(r->steps[i].duration_s))
                printf(" | %s | - |\n", r->steps[i].status);
            else
                printf(" | %s | %.2f |\n", r->steps[i].status, r->steps[i].duration_s);
        }
    }
    char gen[40];
    fmt_time(now_ns, gen, sizeof(gen));
    printf("\n_Generated %s by telemetry-engine._\n", gen);
}

/* ---- reading ---- */

typedef struct opts {
    const char *status;
    int64_t since_ns;
    int64_t limit;
    int64_t stale_ns;
    te_cli_format_t format; /* table / json (list, show) */
    bool md;                /* export */
} opts_t;

static int read_one(te_store_t *st, const char *id, const opts_t *o, int64_t now_ns,
                    te_run_t **out, size_t *n)
{
    te_err_t err = {0};
    te_runs_query_t q = {.id = id, .now_ns = now_ns, .stale_after_ns = o->stale_ns};
    if (te_store_runs(st, &q, out, n, &err) < 0)
        return te_cli_fail(CMD, "%s", err.msg);
    if (*n == 0) {
        te_runs_free(*out, 0);
        *out = NULL;
        return te_cli_fail(CMD, "no run \"%s\" (see '%s " CMD " list')", id, TE_CLI_PROG);
    }
    return 0;
}

static int cmd_list(te_store_t *st, const opts_t *o)
{
    te_err_t err = {0};
    te_run_t *v = NULL;
    size_t n = 0;
    int64_t now = te_time_now_ns();
    te_runs_query_t q = {.status = o->status,
                         .since_ns = o->since_ns,
                         .limit = (size_t)o->limit,
                         .now_ns = now,
                         .stale_after_ns = o->stale_ns};
    if (te_store_runs(st, &q, &v, &n, &err) < 0)
        return te_cli_fail(CMD, "%s", err.msg);
    int rc = TE_CLI_OK;
    if (o->format == TE_CLI_FMT_JSON)
        rc = print_json(te_runs_list_json(v, n, now));
    else
        print_table(v, n);
    te_runs_free(v, n);
    return rc;
}

static int cmd_show(te_store_t *st, const char *id, const opts_t *o, bool export)
{
    te_run_t *v = NULL;
    size_t n = 0;
    int64_t now = te_time_now_ns();
    int rc = read_one(st, id, o, now, &v, &n);
    if (rc != 0)
        return rc;
    bool json = export ? !o->md : o->format == TE_CLI_FMT_JSON;
    if (json)
        rc = print_json(te_run_json(&v[0], true, now));
    else if (export)
        print_md(&v[0], now);
    else
        print_show(&v[0]);
    te_runs_free(v, n);
    if (rc == 0 && fflush(stdout) != 0)
        rc = te_cli_fail(CMD, "cannot write the output");
    return rc;
}

static volatile sig_atomic_t watch_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    watch_stop = 1;
}

static void watch_line(const te_run_t *r, char *buf, size_t cap)
{
    char prog[48], cur[160], el[32], eta[32];
    fmt_progress(r, prog, sizeof(prog));
    fmt_current(r, cur, sizeof(cur));
    fmt_secs(r->elapsed_s, el, sizeof(el));
    fmt_secs(r->eta_s, eta, sizeof(eta));
    snprintf(buf, cap, "%s %s %s step %s (%s) elapsed %s eta %s", r->id,
             r->pipeline[0] ? r->pipeline : "-", r->status, prog, cur, el, eta);
}

static int cmd_watch(te_store_t *st, const char *id, const opts_t *o)
{
    bool tty = isatty(STDOUT_FILENO) == 1;
    char line[512], last[512] = "";
    int rc = TE_CLI_OK;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: the sleep wakes up */
    sigemptyset(&sa.sa_mask);
    watch_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    while (!watch_stop) {
        te_run_t *v = NULL;
        size_t n = 0;
        rc = read_one(st, id, o, te_time_now_ns(), &v, &n);
        if (rc != 0)
            break;
        watch_line(&v[0], line, sizeof(line));
        bool ended = strcmp(v[0].status, "succeeded") == 0 || strcmp(v[0].status, "failed") == 0 ||
                     strcmp(v[0].status, "aborted") == 0;
        if (ended)
            rc = strcmp(v[0].status, "succeeded") == 0 ? TE_CLI_OK : TE_CLI_FAIL;
        te_runs_free(v, n);
        if (tty) {
            printf("\r\033[K%s", line);
        } else if (strcmp(line, last) != 0) {
            printf("%s\n", line);
            snprintf(last, sizeof(last), "%s", line);
        }
        fflush(stdout);
        if (ended)
            break;
        struct timespec ts = {1, 0};
        while (!watch_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    if (tty)
        printf("\n");
    fflush(stdout);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}

/* ---- entry ---- */

static int parse_opts(const te_cli_args_t *a, const char *sub, opts_t *o)
{
    te_err_t err = {0};
    const char *s;
    memset(o, 0, sizeof(*o));
    o->limit = TE_RUNS_LIMIT_DEFAULT;
    o->status = te_cli_get(a, "status");
    if (o->status && te_runs_status_check(o->status, &err) < 0)
        return te_cli_usage_error(CMD, "--status: %s", err.msg);
    s = te_cli_get(a, "since");
    if (s && te_time_parse_since(s, te_time_now_ns(), &o->since_ns, &err) < 0)
        return te_cli_usage_error(CMD, "--since: %s", err.msg);
    s = te_cli_get(a, "limit");
    if (s && te_cli_parse_int("limit", s, 1, TE_RUNS_LIMIT_MAX, &o->limit, &err) < 0)
        return te_cli_usage_error(CMD, "%s", err.msg);
    s = te_cli_get(a, "stale-after");
    if (s && (te_duration_parse(s, &o->stale_ns, &err) < 0 || o->stale_ns <= 0))
        return te_cli_usage_error(CMD, "--stale-after: %s",
                                  err.msg[0] ? err.msg : "must be more than 0 (e.g. 10m)");
    s = te_cli_get(a, "format");
    if (strcmp(sub, "export") == 0) {
        o->md = !s || strcmp(s, "md") == 0;
        if (s && !o->md && strcmp(s, "json") != 0)
            return te_cli_usage_error(CMD, "export: --format must be md or json, got \"%s\"", s);
    } else if (s && strcmp(sub, "watch") == 0) {
        return te_cli_usage_error(CMD, "watch takes no --format");
    } else if (te_cli_parse_format(s, &o->format, &err) < 0 || o->format == TE_CLI_FMT_CSV) {
        return te_cli_usage_error(CMD, "--format must be table or json, got \"%s\"", s);
    }
    return 0;
}

int te_cli_runs(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    opts_t o;
    int rc;
    if (te_cli_parse(&a, runs_opts, sizeof(runs_opts) / sizeof(runs_opts[0]), argc, argv,
                     &err) < 0)
        return te_cli_usage_error(CMD, "%s", err.msg);
    if (a.help) {
        te_cli_help_runs(stdout);
        rc = TE_CLI_OK;
        goto out;
    }
    const char *sub = a.npos ? a.pos[0] : "list";
    bool list = strcmp(sub, "list") == 0;
    if (!list && strcmp(sub, "show") != 0 && strcmp(sub, "watch") != 0 &&
        strcmp(sub, "export") != 0) {
        rc = te_cli_usage_error(CMD, "unknown sub-command \"%s\" (list, show, watch, export)",
                                sub);
        goto out;
    }
    if (!list && a.npos < 2) {
        rc = te_cli_usage_error(CMD, "%s needs a run id", sub);
        goto out;
    }
    if (a.npos > (list ? 1u : 2u)) {
        rc = te_cli_usage_error(CMD, "unexpected argument \"%s\"", a.pos[list ? 1 : 2]);
        goto out;
    }
    rc = parse_opts(&a, sub, &o);
    if (rc != 0)
        goto out;
    rc = te_cli_load_config(CMD, &a, &cfg);
    if (rc == 0)
        rc = te_cli_open_store_ro(CMD, cfg, &st);
    if (rc != 0)
        goto out;
    if (list)
        rc = cmd_list(st, &o);
    else if (strcmp(sub, "watch") == 0)
        rc = cmd_watch(st, a.pos[1], &o);
    else
        rc = cmd_show(st, a.pos[1], &o, strcmp(sub, "export") == 0);
out:
    te_store_close(st);
    te_config_free(cfg);
    te_cli_args_free(&a);
    return rc;
}
