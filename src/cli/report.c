/*
 * report.c - `telemetry-engine report NAME`: runs a report template
 * (a lua/reports/ file, SPEC 6.5) over the stored data and writes it as
 * Markdown, HTML, JSON or CSV.
 *
 * THREAD: main. Reads through a read-only store, so it works while serve
 * runs. The format defaults to the -o file's extension, else md. A
 * progress line on stderr (terminals only) names the read in flight.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../config/config.h"
#include "../core/time.h"
#include "../report/run.h"
#include "../store/store.h"
#include "cli.h"

#define MAX_PARAMS 64

static const te_cli_opt_t report_opts[] = {
    {"since", 0, TE_CLI_VALUE},  {"until", 0, TE_CLI_VALUE},  {"param", 0, TE_CLI_LIST},
    {"format", 0, TE_CLI_VALUE}, {"output", 'o', TE_CLI_VALUE}, {"scripts", 0, TE_CLI_VALUE},
    {"list", 0, TE_CLI_FLAG},
};

void te_cli_help_report(FILE *f)
{
    fprintf(f,
            "usage: %s report NAME [--since D] [--until T] [--param K=V]...\n"
            "                        [--format md|html|json|csv] [-o FILE]\n"
            "       %s report --list\n\n"
            "Runs the report template NAME (te.report{...} in <scripts>/reports/*.lua)\n"
            "over the stored data. Works while serve runs.\n\n"
            "options:\n"
            "  --since D      start of the range: a duration back from now (7d), an RFC 3339\n"
            "                 time or Unix seconds (default: the template's params.since,\n"
            "                 else 7d)\n"
            "  --until T      end of the range, exclusive (default now)\n"
            "  --param K=V    a template parameter (repeatable; see the template's params)\n"
            "  --format F     md (default), html (one self-contained file), json or csv;\n"
            "                 with -o the file's extension picks it when --format is absent\n"
            "  -o, --output FILE  write to FILE instead of stdout\n"
            "  --scripts DIR  scripts folder (default: scripts.dir of the config, else lua)\n"
            "  --list         list the reports the templates declare\n"
            "  --config FILE, --data DIR as for every command\n\n"
            "examples:\n"
            "  %s report overview --since 30d --format html -o overview.html\n"
            "  %s report runs --param limit=50\n",
            TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG);
}

typedef struct progress_state {
    te_cli_progress_t p;
    const char *name;
    int64_t start_ns;
    int reads;
} progress_state;

static void on_progress(void *ud, const char *what)
{
    progress_state *ps = ud;
    ps->reads++;
    double secs = (double)(te_time_mono_ns() - ps->start_ns) / 1e9;
    te_cli_progress_update(&ps->p, false, "report %s: %s (read %d, %.1f s)", ps->name, what,
                           ps->reads, secs);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *format_from_path(const char *path)
{
    if (ends_with(path, ".html") || ends_with(path, ".htm"))
        return "html";
    if (ends_with(path, ".json"))
        return "json";
    if (ends_with(path, ".csv"))
        return "csv";
    return "md";
}

/* Writes data to path through a temporary file and a rename, so that a
 * reader never sees half a report. */
static int write_file(const char *path, const char *data, size_t len)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return te_cli_fail("report", "cannot write %s: %s", path, strerror(errno));
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return te_cli_fail("report", "cannot write %s: %s", path, strerror(e));
    }
    return TE_CLI_OK;
}

static int list_reports(const char *scripts_dir)
{
    te_report_catalog_t cat;
    te_err_t err = {0};
    if (te_report_catalog_load(scripts_dir, &cat, &err) < 0)
        return te_cli_fail("report", "%s", err.msg);
    if (cat.n == 0)
        printf("no reports in %s/reports/\n", scripts_dir);
    for (size_t i = 0; i < cat.n; i++)
        printf("%-16s %s%s%s\n", cat.items[i].name, cat.items[i].title ? cat.items[i].title : "",
               cat.items[i].schedule ? "  [schedule: " : "",
               cat.items[i].schedule ? cat.items[i].schedule : "");
    for (size_t i = 0; i < cat.nerrors; i++)
        fprintf(stderr, "%s: report: %s\n", TE_CLI_PROG, cat.errors[i]);
    int rc = cat.nerrors ? TE_CLI_FAIL : TE_CLI_OK;
    te_report_catalog_free(&cat);
    return rc;
}

int te_cli_report(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    te_report_param_t params[MAX_PARAMS];
    char *copies[MAX_PARAMS] = {0};
    size_t nparams = 0;
    char *out = NULL;
    size_t len = 0;
    int rc;

    if (te_cli_parse(&a, report_opts, sizeof(report_opts) / sizeof(report_opts[0]), argc, argv,
                     &err) < 0)
        return te_cli_usage_error("report", "%s", err.msg);
    if (a.help) {
        te_cli_help_report(stdout);
        rc = TE_CLI_OK;
        goto out;
    }
    if (te_cli_load_config("report", &a, &cfg) != 0) {
        rc = TE_CLI_FAIL;
        goto out;
    }
    const char *scripts = te_cli_get(&a, "scripts");
    if (!scripts)
        scripts = cfg->scripts_dir && cfg->scripts_dir[0] ? cfg->scripts_dir : "lua";
    if (te_cli_has(&a, "list")) {
        rc = a.npos ? te_cli_usage_error("report", "--list takes no report name")
                    : list_reports(scripts);
        goto out;
    }
    if (a.npos != 1) {
        rc = a.npos ? te_cli_usage_error("report", "unexpected argument \"%s\"", a.pos[1])
                    : te_cli_usage_error("report",
                                         "which report? (give a NAME; '%s report --list' lists "
                                         "them)",
                                         TE_CLI_PROG);
        goto out;
    }
    const char *output = te_cli_get(&a, "output");
    const char *fmt_name = te_cli_get(&a, "format");
    te_report_format_t format;
    if (!fmt_name)
        fmt_name = output ? format_from_path(output) : "md";
    if (te_report_format_parse(fmt_name, &format, &err) < 0) {
        rc = te_cli_usage_error("report", "--format: %s", err.msg);
        goto out;
    }
    const char *const *items = NULL;
    size_t nitems = te_cli_list(&a, "param", &items);
    if (nitems > MAX_PARAMS) {
        rc = te_cli_usage_error("report", "at most %d --param options", MAX_PARAMS);
        goto out;
    }
    for (size_t i = 0; i < nitems; i++) {
        const char *eq = strchr(items[i], '=');
        if (!eq || eq == items[i]) {
            rc = te_cli_usage_error("report", "--param \"%s\": expected K=V (--param top=10)",
                                    items[i]);
            goto out;
        }
        copies[i] = strdup(items[i]);
        if (!copies[i]) {
            rc = te_cli_fail("report", "out of memory");
            goto out;
        }
        copies[i][eq - items[i]] = '\0';
        params[nparams].key = copies[i];
        params[nparams].value = copies[i] + (eq - items[i]) + 1;
        nparams++;
    }
    if (te_cli_open_store_ro("report", cfg, &st) != 0) {
        rc = TE_CLI_FAIL;
        goto out;
    }
    progress_state ps = {.name = a.pos[0], .start_ns = te_time_mono_ns()};
    te_cli_progress_init(&ps.p);
    te_report_run_opts_t ro = {.scripts_dir = scripts,
                               .name = a.pos[0],
                               .st = st,
                               .since = te_cli_get(&a, "since"),
                               .until = te_cli_get(&a, "until"),
                               .params = params,
                               .nparams = nparams,
                               .format = format,
                               .progress = on_progress,
                               .progress_ud = &ps};
    int r = te_report_run(&ro, &out, &len, &err);
    te_cli_progress_done(&ps.p);
    if (r == TE_ENOTFOUND || r == TE_EINVAL) {
        rc = te_cli_usage_error("report", "%s", err.msg);
        goto out;
    }
    if (r < 0) {
        rc = te_cli_fail("report", "%s", err.msg);
        goto out;
    }
    if (output)
        rc = write_file(output, out, len);
    else
        rc = te_cli_write(out, len) == 0 ? TE_CLI_OK
                                         : te_cli_fail("report", "cannot write to stdout");
out:
    free(out);
    for (size_t i = 0; i < nparams; i++)
        free(copies[i]);
    te_store_close(st);
    te_config_free(cfg);
    te_cli_args_free(&a);
    return rc;
}
