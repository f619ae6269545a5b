/*
 * events.c - `telemetry-engine events`: stored events, newest first.
 *
 * THREAD: main. Reads through a read-only store (works while serve runs).
 * The store hands out at most 1000 events per call; larger --limit values
 * page through its cursors. json and csv stream as they go; the table is
 * collected first because its column widths depend on every row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/config.h"
#include "../core/json.h"
#include "../core/result.h"
#include "../core/time.h"
#include "../store/store.h"
#include "../core/buf.h"
#include "cli.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 100000
#define PAGE 1000

static const te_cli_opt_t events_opts[] = {
    {"kind", 0, TE_CLI_VALUE},  {"since", 0, TE_CLI_VALUE},  {"until", 0, TE_CLI_VALUE},
    {"where", 0, TE_CLI_LIST},  {"limit", 0, TE_CLI_VALUE},  {"format", 0, TE_CLI_VALUE},
};

void te_cli_help_events(FILE *f)
{
    fprintf(f,
            "usage: %s events [--data DIR] [--kind K] [--since D] [--until T]\n"
            "                         [--where TAG=VAL]... [--limit N] [--format table|json|csv]\n\n"
            "Lists stored events, newest first (by event time).\n\n"
            "options:\n"
            "  --kind K         only events of kind K\n"
            "  --since D        a duration back from now (30s, 5m, 2h, 7d, 1w), an RFC 3339\n"
            "                   time or Unix seconds (default 24h)\n"
            "  --until T        end of the range, exclusive (default now)\n"
            "  --where TAG=VAL  only events whose tag TAG is VAL; repeat for more tags (AND);\n"
            "                   the same tag twice matches either value (OR)\n"
            "  --limit N        at most N events, 1 to %d (default %d)\n"
            "  --format F       table (default): ts, kind, source, tags, fields;\n"
            "                   json: {\"events\":[...],\"next\":cursor|null} as GET /v1/events;\n"
            "                   csv: ts,kind,source,id,tags,fields,body (tags/fields as JSON)\n"
            "  --config FILE, --data DIR as for every command\n\n"
            "example:\n"
            "  %s events --kind llm_call --since 1h --where provider=openai --limit 20\n",
            TE_CLI_PROG, MAX_LIMIT, DEFAULT_LIMIT, TE_CLI_PROG);
}

typedef struct listing {
    te_cli_format_t format;
    size_t count;
    te_result_t *table;     /* TE_CLI_FMT_TABLE */
    int rc;                 /* first output error */
} listing_t;

/* fields as {"k":v,...} */
static void fields_json(te_buf_t *b, const te_event_t *ev)
{
    char num[TE_JSON_NUM_MAX];
    te_buf_add(b, "{", 1);
    for (size_t i = 0; i < ev->nfields; i++) {
        if (i)
            te_buf_add(b, ",", 1);
        te_buf_add_json_str(b, ev->fields[i].key, strlen(ev->fields[i].key));
        te_buf_add(b, ":", 1);
        te_buf_add(b, num, te_json_number(ev->fields[i].value, num));
    }
    te_buf_add(b, "}", 1);
}

/* RFC 4180: quote when needed, double the quotes. */
static void csv_cell(te_buf_t *b, const char *s, size_t n)
{
    if (!s)
        return;
    if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\n', n) && !memchr(s, '\r', n)) {
        te_buf_add(b, s, n);
        return;
    }
    te_buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            te_buf_add(b, "\"", 1);
        te_buf_add(b, &s[i], 1);
    }
    te_buf_add(b, "\"", 1);
}

static int emit_table_row(listing_t *l, const te_event_t *ev)
{
    char ts[40], num[TE_JSON_NUM_MAX];
    te_buf_t tags = {0}, fields = {0};
    te_val_t *row = te_result_add_row(l->table);
    if (!row)
        return TE_ENOMEM;
    size_t n = te_time_format_rfc3339(ev->ts_ns, ts, sizeof(ts));
    for (size_t i = 0; i < ev->ntags; i++) {
        if (i)
            te_buf_add(&tags, " ", 1);
        te_buf_adds(&tags, ev->tags[i].key);
        te_buf_add(&tags, "=", 1);
        te_buf_adds(&tags, ev->tags[i].value);
    }
    for (size_t i = 0; i < ev->nfields; i++) {
        if (i)
            te_buf_add(&fields, " ", 1);
        te_buf_adds(&fields, ev->fields[i].key);
        te_buf_add(&fields, "=", 1);
        te_buf_add(&fields, num, te_json_number(ev->fields[i].value, num));
    }
    int rc = tags.oom || fields.oom ? TE_ENOMEM : 0;
    if (rc == 0)
        rc = te_val_set_str(&row[0], ts, n);
    if (rc == 0)
        rc = te_val_set_str(&row[1], ev->kind, strlen(ev->kind));
    if (rc == 0 && ev->source)
        rc = te_val_set_str(&row[2], ev->source, strlen(ev->source));
    if (rc == 0)
        rc = te_val_set_str(&row[3], tags.p ? tags.p : "", tags.len);
    if (rc == 0)
        rc = te_val_set_str(&row[4], fields.p ? fields.p : "", fields.len);
    te_buf_free(&tags);
    te_buf_free(&fields);
    return rc;
}

static int emit_csv_row(const te_event_t *ev)
{
    char ts[40];
    te_buf_t b = {0};
    size_t n = te_time_format_rfc3339(ev->ts_ns, ts, sizeof(ts));
    te_buf_t fj = {0};
    fields_json(&fj, ev);
    csv_cell(&b, ts, n);
    te_buf_add(&b, ",", 1);
    csv_cell(&b, ev->kind, strlen(ev->kind));
    te_buf_add(&b, ",", 1);
    csv_cell(&b, ev->source, ev->source ? strlen(ev->source) : 0);
    te_buf_add(&b, ",", 1);
    csv_cell(&b, ev->id, ev->id ? strlen(ev->id) : 0);
    te_buf_add(&b, ",", 1);
    csv_cell(&b, ev->tags_json, ev->tags_json_len);
    te_buf_add(&b, ",", 1);
    csv_cell(&b, fj.p, fj.len);
    te_buf_add(&b, ",", 1);
    csv_cell(&b, ev->body, ev->body_len);
    te_buf_add(&b, "\r\n", 2);
    int rc = b.oom || fj.oom ? TE_ENOMEM : 0;
    if (rc == 0)
        rc = te_cli_write(b.p, b.len);
    te_buf_free(&b);
    te_buf_free(&fj);
    return rc;
}

static int on_event(const te_event_t *ev, void *ud)
{
    listing_t *l = ud;
    int rc = 0;
    if (l->format == TE_CLI_FMT_TABLE) {
        rc = emit_table_row(l, ev);
    } else if (l->format == TE_CLI_FMT_CSV) {
        rc = emit_csv_row(ev);
    } else {
        size_t len = 0;
        char *json = te_event_to_json(ev, &len);
        if (!json)
            rc = TE_ENOMEM;
        if (rc == 0 && l->count > 0)
            rc = te_cli_write(",", 1);
        if (rc == 0)
            rc = te_cli_write(json, len);
        free(json);
    }
    l->count++;
    if (rc < 0) {
        l->rc = rc;
        return 1;
    }
    return 0;
}

int te_cli_events(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    te_tag_filter_t *where = NULL;
    const char *const *items = NULL;
    size_t nwhere = 0;
    int64_t limit = DEFAULT_LIMIT;
    listing_t l;
    char next[256] = "";
    int rc;

    memset(&l, 0, sizeof(l));
    if (te_cli_parse(&a, events_opts, sizeof(events_opts) / sizeof(events_opts[0]), argc, argv,
                     &err) < 0)
        return te_cli_usage_error("events", "%s", err.msg);
    if (a.help) {
        te_cli_help_events(stdout);
        rc = TE_CLI_OK;
        goto out;
    }
    if (a.npos > 0) {
        rc = te_cli_usage_error("events", "unexpected argument \"%s\"", a.pos[0]);
        goto out;
    }
    const char *kind = te_cli_get(&a, "kind");
    int64_t since_ns, until_ns;
    if (kind && !te_kind_valid(kind, strlen(kind))) {
        rc = te_cli_usage_error("events", "--kind \"%s\" must match [a-z][a-z0-9_.-]{0,63}",
                                kind);
        goto out;
    }
    if (te_cli_parse_format(te_cli_get(&a, "format"), &l.format, &err) < 0 ||
        (te_cli_has(&a, "limit") &&
         te_cli_parse_int("limit", te_cli_get(&a, "limit"), 1, MAX_LIMIT, &limit, &err) < 0) ||
        te_cli_parse_range(&a, &since_ns, &until_ns, &err) < 0) {
        rc = te_cli_usage_error("events", "%s", err.msg);
        goto out;
    }
    nwhere = te_cli_list(&a, "where", &items);
    if (te_cli_parse_where(items, nwhere, &where, &err) < 0) {
        rc = err.code == TE_ENOMEM ? te_cli_fail("events", "out of memory")
                                   : te_cli_usage_error("events", "%s", err.msg);
        goto out;
    }
    rc = te_cli_load_config("events", &a, &cfg);
    if (rc != 0)
        goto out;
    rc = te_cli_open_store_ro("events", cfg, &st);
    if (rc != 0)
        goto out;

    if (l.format == TE_CLI_FMT_TABLE) {
        static const char *const cols[] = {"ts", "kind", "source", "tags", "fields"};
        l.table = te_result_new(cols, 5);
        if (!l.table) {
            rc = te_cli_fail("events", "out of memory");
            goto out;
        }
    } else if (l.format == TE_CLI_FMT_JSON) {
        rc = te_cli_write("{\"events\":[", 11);
    } else {
        static const char header[] = "ts,kind,source,id,tags,fields,body\r\n";
        rc = te_cli_write(header, sizeof(header) - 1);
    }

    size_t remaining = (size_t)limit;
    const char *cursor = NULL;
    while (rc == 0 && remaining > 0) {
        te_events_query_t q = {.kind = kind,
                               .since_ns = since_ns,
                               .until_ns = until_ns,
                               .where = where,
                               .nwhere = nwhere,
                               .limit = remaining < PAGE ? remaining : PAGE,
                               .cursor = cursor};
        size_t before = l.count;
        char page_next[256] = "";
        if (te_store_events(st, &q, on_event, &l, page_next, sizeof(page_next), &err) < 0) {
            rc = te_cli_fail("events", "%s", err.msg);
            goto out;
        }
        if (l.rc < 0)
            break;
        remaining -= l.count - before;
        memcpy(next, page_next, sizeof(next));
        if (next[0] == '\0' || l.count == before)
            break;
        cursor = next;
    }
    if (rc == 0 && l.rc < 0)
        rc = l.rc;
    if (rc == 0 && l.format == TE_CLI_FMT_TABLE) {
        size_t len = 0;
        char *text = te_result_to_table(l.table, &len);
        rc = text ? te_cli_write(text, len) : TE_ENOMEM;
        free(text);
    } else if (rc == 0 && l.format == TE_CLI_FMT_JSON) {
        te_buf_t tail = {0};
        te_buf_adds(&tail, "],\"next\":");
        if (next[0])
            te_buf_add_json_str(&tail, next, strlen(next));
        else
            te_buf_adds(&tail, "null");
        te_buf_adds(&tail, "}\n");
        rc = tail.oom ? TE_ENOMEM : te_cli_write(tail.p, tail.len);
        te_buf_free(&tail);
    }
    if (rc < 0)
        rc = rc == TE_ENOMEM ? te_cli_fail("events", "out of memory")
                             : te_cli_fail("events", "cannot write the output");
out:
    te_result_free(l.table);
    te_store_close(st);
    te_cli_where_free(where, nwhere);
    te_config_free(cfg);
    te_cli_args_free(&a);
    return rc;
}
