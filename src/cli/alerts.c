/*
 * alerts.c - `telemetry-engine alerts list`: alert episodes from the
 * database (the rules of a running or stopped engine stored them).
 *
 * THREAD: main. Reads through a read-only store, so it works while serve
 * runs. `--format json` prints the object GET /v1/alerts answers.
 * ack, silence, unsilence, test, trigger and watch come with the
 * notification system (issue #4) and are refused with that message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../config/config.h"
#include "../core/time.h"
#include "../rules/alert.h"
#include "../store/alerts.h"
#include "../store/store.h"
#include "alerts_tools.h"
#include "cli.h"

static const te_cli_opt_t alerts_opts[] = {
    {"state", 0, TE_CLI_VALUE},   {"limit", 0, TE_CLI_VALUE},   {"format", 0, TE_CLI_VALUE},
    {"by", 0, TE_CLI_VALUE},      {"comment", 0, TE_CLI_VALUE}, {"match", 0, TE_CLI_LIST},
    {"for", 0, TE_CLI_VALUE},     {"group", 0, TE_CLI_LIST},    {"at", 0, TE_CLI_VALUE},
    {"status", 0, TE_CLI_VALUE},
};

void te_cli_help_alerts(FILE *f)
{
    fprintf(f,
            "usage: %s alerts list [--data DIR] [--state S] [--limit N] [--format table|json]\n\n"
            "Lists alert episodes stored by the engine's rules, most recently changed first,\n"
            "with their delivery status per notifier. Works while serve runs.\n\n"
            "options:\n"
            "  --state S   only alerts in state S: pending, firing, resolved, acked (active\n"
            "              and acknowledged) or silenced (active, matched by a silence)\n"
            "  --limit N   at most N alerts (default 100)\n"
            "  --format F  table (default) or json (the GET /v1/alerts object)\n"
            "  --config FILE, --data DIR as for every command\n\n"
            "example:\n"
            "  %s alerts list --state firing\n",
            TE_CLI_PROG, TE_CLI_PROG);
    /* ack / silence / unsilence / silences (alerts_ack.c) */
    fprintf(f,
            "\n"
            "       %s alerts ack ID [--by WHO] [--comment TEXT]\n"
            "  Acknowledges the active alert ID: its repeats stop until it resolves (the\n"
            "  resolution is still notified).\n\n"
            "       %s alerts silence --match TAG=VAL... --for D [--comment C] [--by WHO]\n"
            "  Silences every alert whose tags match all the matchers (TAG=VAL or\n"
            "  TAG!=VAL; TAG is a group tag, a label, rule or severity) for D: no\n"
            "  notifications, state and history kept. Prints the silence id.\n\n"
            "       %s alerts unsilence ID\n"
            "  Ends silence ID now.\n\n"
            "       %s alerts silences [--state active|all] [--format table|json]\n"
            "  Lists the silences (active by default).\n\n"
            "  These write the database directly; a running serve applies them within\n"
            "  about a second.\n",
            TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG);
    /* test / trigger / watch (alerts_tools.c) */
    fprintf(f,
            "\n"
            "       %s alerts test RULE [--at T] [--format table|json]\n"
            "  Evaluates RULE (from the scripts dir) against the stored events of its\n"
            "  window, as of now or T (RFC 3339, Unix seconds, or a duration ago), and\n"
            "  prints each group's state: firing, pending (and how long until it fires)\n"
            "  or ok, with value, severity and summary. Sends and stores nothing; exit 0\n"
            "  whether or not something would fire.\n\n"
            "       %s alerts trigger RULE [--group TAG=VAL]... [--status firing|resolved]\n"
            "  Sends one alert of RULE (constant severity, labels, summary rendered with\n"
            "  the --group values, no value; a fresh id) through the notifiers of\n"
            "  telemetry.lua that RULE names (all configured ones when it names none)\n"
            "  and waits for each delivery. Exit 1 when one failed.\n\n"
            "       %s alerts watch [--format table|json]\n"
            "  Prints alert transitions as they are stored (one line each, or NDJSON),\n"
            "  from now on, until Ctrl-C. Works while serve runs.\n\n"
            "examples:\n"
            "  %s alerts test llm-error-rate --format json\n"
            "  %s alerts trigger llm-error-rate --group provider=openai --group model=m\n"
            "  %s alerts watch --format json\n",
            TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG);
}

static const char *str_at(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : "-";
}

/* "hook:delivered slack:pending(2) mail:suppressed" from "deliveries" */
static void deliveries_text(const cJSON *o, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(o, "deliveries"))
    {
        const char *st = str_at(d, "state");
        int attempts = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "attempts"));
        int k = strcmp(st, "pending") == 0 && attempts > 0
                    ? snprintf(out + n, cap - n, "%s%s:pending(%d)", n ? " " : "",
                               str_at(d, "notifier"), attempts)
                    : snprintf(out + n, cap - n, "%s%s:%s", n ? " " : "", str_at(d, "notifier"),
                               st);
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
    if (!n)
        snprintf(out, cap, "-");
}

static void print_table(const cJSON *arr)
{
    printf("%-16s  %-8s  %-8s  %-24s  %-24s  %-30s  %-28s  %s\n", "id", "state", "severity",
           "rule", "starts_at", "group", "deliveries", "summary");
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        char group[256] = "", deliv[256];
        size_t n = 0;
        const cJSON *kv;
        cJSON_ArrayForEach(kv, cJSON_GetObjectItem(o, "group"))
        {
            int k = snprintf(group + n, sizeof(group) - n, "%s%s=%s", n ? " " : "", kv->string,
                             cJSON_GetStringValue(kv) ? cJSON_GetStringValue(kv) : "");
            if (k < 0 || (size_t)k >= sizeof(group) - n)
                break;
            n += (size_t)k;
        }
        deliveries_text(o, deliv, sizeof(deliv));
        char state[40];
        snprintf(state, sizeof(state), "%s%s%s", str_at(o, "state"),
                 cJSON_GetStringValue(cJSON_GetObjectItem(o, "acked_by")) ? "+ack" : "",
                 cJSON_IsTrue(cJSON_GetObjectItem(o, "flapping")) ? "+flap" : "");
        printf("%-16s  %-8s  %-8s  %-24s  %-24s  %-30s  %-28s  %s\n", str_at(o, "id"), state,
               str_at(o, "severity"), str_at(o, "rule"), str_at(o, "starts_at"), n ? group : "-",
               deliv, str_at(o, "summary"));
    }
}

int te_cli_alerts(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    cJSON *root = NULL;
    te_cli_format_t format;
    int64_t limit = 100;
    int rc;

    if (te_cli_parse(&a, alerts_opts, sizeof(alerts_opts) / sizeof(alerts_opts[0]), argc, argv,
                     &err) < 0)
        return te_cli_usage_error("alerts", "%s", err.msg);
    if (a.help) {
        te_cli_help_alerts(stdout);
        rc = TE_CLI_OK;
        goto out;
    }
    if (a.npos == 0) {
        rc = te_cli_usage_error("alerts", "missing sub-command (list)");
        goto out;
    }
    if (strcmp(a.pos[0], "list") != 0) {
        static const struct {
            const char *name;
            int (*fn)(const te_cli_args_t *a);
        } subs[] = {
            {"ack", te_cli_alerts_ack},       {"silence", te_cli_alerts_silence},
            {"unsilence", te_cli_alerts_unsilence}, {"silences", te_cli_alerts_silences},
            {"test", te_cli_alerts_test},     {"trigger", te_cli_alerts_trigger},
            {"watch", te_cli_alerts_watch},
        };
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
            if (strcmp(a.pos[0], subs[i].name) == 0) {
                rc = subs[i].fn(&a);
                goto out;
            }
        rc = te_cli_usage_error("alerts", "unknown sub-command \"%s\" (list, ack, silence, "
                                          "unsilence, silences, test, trigger, watch)",
                                a.pos[0]);
        goto out;
    }
    if (a.npos > 1) {
        rc = te_cli_usage_error("alerts", "unexpected argument \"%s\"", a.pos[1]);
        goto out;
    }
    const char *state = te_cli_get(&a, "state");
    if (state && te_store_alerts_state_check(state, &err) < 0) {
        rc = te_cli_usage_error("alerts", "--%s", err.msg);
        goto out;
    }
    const char *lim = te_cli_get(&a, "limit");
    if ((lim && te_cli_parse_int("limit", lim, 1, 100000, &limit, &err) < 0) ||
        te_cli_parse_format(te_cli_get(&a, "format"), &format, &err) < 0) {
        rc = te_cli_usage_error("alerts", "%s", err.msg);
        goto out;
    }
    if (format == TE_CLI_FMT_CSV) {
        rc = te_cli_usage_error("alerts", "--format must be table or json");
        goto out;
    }
    rc = te_cli_load_config("alerts", &a, &cfg);
    if (rc != 0)
        goto out;
    rc = te_cli_open_store_ro("alerts", cfg, &st);
    if (rc != 0)
        goto out;
    if (te_store_alerts_list_json(st, state, (size_t)limit, &root, &err) < 0) {
        rc = te_cli_fail("alerts", "%s", err.msg);
        goto out;
    }
    if (format == TE_CLI_FMT_JSON) {
        char *text = cJSON_PrintUnformatted(root);
        if (!text) {
            rc = te_cli_fail("alerts", "out of memory");
            goto out;
        }
        rc = te_cli_write(text, strlen(text)) < 0 || te_cli_write("\n", 1) < 0
                 ? te_cli_fail("alerts", "cannot write the output")
                 : TE_CLI_OK;
        free(text);
    } else {
        print_table(cJSON_GetObjectItem(root, "alerts"));
        rc = TE_CLI_OK;
    }
out:
    cJSON_Delete(root);
    te_store_close(st);
    te_config_free(cfg);
    te_cli_args_free(&a);
    return rc;
}
