/*
 * query.c - `telemetry-engine query`: aggregates over stored events.
 *
 * THREAD: main. Reads through a read-only store. `--format json` prints
 * exactly the object GET /v1/query answers (te_result_to_json).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/config.h"
#include "../core/result.h"
#include "../core/time.h"
#include "../store/store.h"
#include "cli.h"

#define MAX_GROUP_TAGS 16

static const te_cli_opt_t query_opts[] = {
    {"kind", 0, TE_CLI_VALUE},  {"since", 0, TE_CLI_VALUE},    {"until", 0, TE_CLI_VALUE},
    {"where", 0, TE_CLI_LIST},  {"group-by", 0, TE_CLI_VALUE}, {"agg", 0, TE_CLI_VALUE},
    {"every", 0, TE_CLI_VALUE}, {"format", 0, TE_CLI_VALUE},
};

void te_cli_help_query(FILE *f)
{
    fprintf(f,
            "usage: %s query [--data DIR] --kind K [--since D] [--until T] [--where TAG=VAL]...\n"
            "                        [--group-by T1,T2] [--agg AGGS] [--every D]\n"
            "                        [--format table|json|csv]\n\n"
            "Aggregates events of one kind, per group of tag values and per time bucket.\n\n"
            "options:\n"
            "  --kind K         the kind to aggregate (required)\n"
            "  --since D        a duration back from now (30s, 5m, 2h, 7d, 1w), an RFC 3339\n"
            "                   time or Unix seconds (default 24h)\n"
            "  --until T        end of the range, exclusive (default now)\n"
            "  --where TAG=VAL  only events whose tag TAG is VAL (repeatable)\n"
            "  --group-by T1,T2 one row per combination of these tags' values\n"
            "  --agg AGGS       comma-separated: count, sum:F, avg:F, min:F, max:F, p50:F,\n"
            "                   p95:F, p99:F, rate (events/s), distinct:TAG (default count)\n"
            "  --every D        one row per time bucket of D (adds a \"time\" column)\n"
            "  --format F       table (default), json (the GET /v1/query object) or csv\n"
            "  --config FILE, --data DIR as for every command\n\n"
            "example:\n"
            "  %s query --kind llm_call --since 7d --group-by provider \\\n"
            "      --agg count,sum:cost_usd,p95:latency_ms\n",
            TE_CLI_PROG, TE_CLI_PROG);
}

/* Splits "a,b" into at most MAX_GROUP_TAGS names inside copy. */
static int split_group(char *copy, const char **names, size_t *n, te_err_t *err)
{
    *n = 0;
    char *p = copy;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*p == '\0')
            return te_err_set(err, TE_EUSAGE, "--group-by has an empty tag name (write T1,T2)");
        if (*n == MAX_GROUP_TAGS)
            return te_err_set(err, TE_EUSAGE, "--group-by takes at most %d tags",
                              MAX_GROUP_TAGS);
        names[(*n)++] = p;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int te_cli_query(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    te_tag_filter_t *where = NULL;
    te_agg_t *aggs = NULL;
    te_result_t *res = NULL;
    char *group_copy = NULL;
    const char *group[MAX_GROUP_TAGS];
    const char *const *items = NULL;
    size_t nwhere = 0, naggs = 0, ngroup = 0;
    int64_t since_ns, until_ns, every_ns = 0;
    te_cli_format_t format;
    int rc;

    if (te_cli_parse(&a, query_opts, sizeof(query_opts) / sizeof(query_opts[0]), argc, argv,
                     &err) < 0)
        return te_cli_usage_error("query", "%s", err.msg);
    if (a.help) {
        te_cli_help_query(stdout);
        rc = TE_CLI_OK;
        goto out;
    }
    if (a.npos > 0) {
        rc = te_cli_usage_error("query", "unexpected argument \"%s\"", a.pos[0]);
        goto out;
    }
    const char *kind = te_cli_get(&a, "kind");
    if (!kind) {
        rc = te_cli_usage_error("query", "--kind is required (e.g. --kind llm_call)");
        goto out;
    }
    if (!te_kind_valid(kind, strlen(kind))) {
        rc = te_cli_usage_error("query", "--kind \"%s\" must match [a-z][a-z0-9_.-]{0,63}", kind);
        goto out;
    }
    if (te_cli_parse_format(te_cli_get(&a, "format"), &format, &err) < 0 ||
        te_cli_parse_range(&a, &since_ns, &until_ns, &err) < 0) {
        rc = te_cli_usage_error("query", "%s", err.msg);
        goto out;
    }
    const char *every = te_cli_get(&a, "every");
    if (every && (te_duration_parse(every, &every_ns, &err) < 0 || every_ns <= 0)) {
        rc = te_cli_usage_error("query", "--every: bad duration \"%s\" (use 30s, 5m, 2h, 7d, 1w)",
                                every);
        goto out;
    }
    const char *gb = te_cli_get(&a, "group-by");
    if (gb) {
        group_copy = malloc(strlen(gb) + 1);
        if (!group_copy) {
            rc = te_cli_fail("query", "out of memory");
            goto out;
        }
        memcpy(group_copy, gb, strlen(gb) + 1);
        if (split_group(group_copy, group, &ngroup, &err) < 0) {
            rc = te_cli_usage_error("query", "%s", err.msg);
            goto out;
        }
    }
    const char *agg = te_cli_get(&a, "agg");
    if (te_aggs_parse(agg ? agg : "count", &aggs, &naggs, &err) < 0) {
        rc = err.code == TE_ENOMEM ? te_cli_fail("query", "out of memory")
                                   : te_cli_usage_error("query", "--agg: %s", err.msg);
        goto out;
    }
    nwhere = te_cli_list(&a, "where", &items);
    if (te_cli_parse_where(items, nwhere, &where, &err) < 0) {
        rc = err.code == TE_ENOMEM ? te_cli_fail("query", "out of memory")
                                   : te_cli_usage_error("query", "%s", err.msg);
        goto out;
    }
    rc = te_cli_load_config("query", &a, &cfg);
    if (rc != 0)
        goto out;
    rc = te_cli_open_store_ro("query", cfg, &st);
    if (rc != 0)
        goto out;

    te_query_t q = {.kind = kind,
                    .since_ns = since_ns,
                    .until_ns = until_ns,
                    .where = where,
                    .nwhere = nwhere,
                    .group_by = group,
                    .ngroup = ngroup,
                    .aggs = aggs,
                    .naggs = naggs,
                    .every_ns = every_ns};
    if (te_store_query(st, &q, &res, &err) < 0) {
        rc = te_cli_fail("query", "%s", err.msg);
        goto out;
    }
    size_t len = 0;
    char *text = format == TE_CLI_FMT_JSON  ? te_result_to_json(res, &len)
                 : format == TE_CLI_FMT_CSV ? te_result_to_csv(res, &len)
                                            : te_result_to_table(res, &len);
    if (!text) {
        rc = te_cli_fail("query", "out of memory");
        goto out;
    }
    rc = te_cli_write(text, len);
    if (rc == 0 && format == TE_CLI_FMT_JSON)
        rc = te_cli_write("\n", 1);
    free(text);
    rc = rc < 0 ? te_cli_fail("query", "cannot write the output") : TE_CLI_OK;
out:
    te_result_free(res);
    te_aggs_free(aggs, naggs);
    te_cli_where_free(where, nwhere);
    free(group_copy);
    te_store_close(st);
    te_config_free(cfg);
    te_cli_args_free(&a);
    return rc;
}
