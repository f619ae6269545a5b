/*
 * alerts_tools.c - `telemetry-engine alerts test | trigger | watch`
 * (SPEC 4, 7; see alerts_tools.h for the words each takes).
 *
 * THREAD: main. trigger runs a private libuv loop on this thread for the
 * notifiers (they are loop-thread objects) until every delivery is done.
 *
 * test RULE [--at T]: a replay, like `rules test`, but of stored events.
 *   The script that declares RULE is loaded alone in a fresh ruleset with a
 *   virtual clock; the stored events of RULE's kind from T - (window +
 *   pending + keep_firing + every) to T are read from a read-only store
 *   (newest first, in pages), replayed oldest first with the clock
 *   following event times and the ruleset's ticks, and the groups are
 *   reported as of T. Nothing is sent and nothing is stored: the ruleset's
 *   alert callback only records, and ctx.emit is refused (derived events
 *   are stored already, so re-deriving them would count them twice).
 *   The one idea: a rule evaluates at multiples of its `every`, so the
 *   whole replay is shifted by less than one `every` to make T itself an
 *   evaluation instant; the answer is then "what an evaluation at T says",
 *   not "what the last scheduled one before T said".
 *
 * trigger RULE: one alert built from the rule's declaration (constant
 *   severity, labels, notify list, summary rendered with the --group
 *   values, no value), with a fresh id and the rule+group fingerprint,
 *   sent through the notifiers of telemetry.lua that the rule names (every
 *   configured one when it names none); `stdout` prints as serve does.
 *
 * watch: polls alert_history (store/alerts_history.h) every 200 ms from a
 *   read-only store, from the current end, and prints each new transition
 *   as a line (flushed), until SIGINT or SIGTERM.
 */
#include "alerts_tools.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "../alerts/notify.h"
#include "../config/config.h"
#include "../core/suggest.h"
#include "../core/time.h"
#include "../rules/eval.h"
#include "../script/reload.h"
#include "../script/script.h"
#include "../store/alerts_history.h"
#include "../store/store.h"

#define CMD "alerts"
#define PAGE 1000
#define WATCH_POLL_MS 200

static char *dup_str(const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s ? s : "", n);
    return p;
}

/* Refuses options that the sub-command does not take (alerts.c parses
 * every option of the command at once). allowed ends with NULL. */
static int only_opts(const te_cli_args_t *a, const char *sub, const char *const *allowed)
{
    for (size_t i = 0; i < a->nopts; i++) {
        if (!a->value[i] && a->nlist[i] == 0)
            continue;
        const char *name = a->opts[i]->name;
        if (strcmp(name, "config") == 0 || strcmp(name, "data") == 0 ||
            strcmp(name, "help") == 0)
            continue;
        const char *const *k = allowed;
        while (*k && strcmp(*k, name) != 0)
            k++;
        if (!*k)
            return te_cli_usage_error(CMD, "option --%s does not apply to 'alerts %s'", name,
                                      sub);
    }
    return 0;
}

/* --- finding a rule in the scripts dir --- */

typedef struct rules_src {
    te_script_t **scripts;       /* every file of DIR/rules that loaded */
    size_t n;
    char *failed;                /* "  FILE: error\n" per file that did not load */
    size_t failed_len;
    te_script_t *s;              /* the script declaring the rule */
    const te_rule_def_t *def;
} rules_src_t;

static void rules_src_free(rules_src_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        te_script_free(r->scripts[i]);
    free(r->scripts);
    free(r->failed);
    memset(r, 0, sizeof(*r));
}

static te_script_limits_t limits_of(const te_config_t *cfg)
{
    te_script_limits_t l = {.mem_bytes = cfg->script_mem_bytes,
                            .max_steps = (uint64_t)cfg->script_max_steps,
                            .max_call_ns = cfg->script_call_ns};
    return l;
}

static void add_failed(rules_src_t *r, const char *msg)
{
    size_t n = strlen(msg);
    char *p = realloc(r->failed, r->failed_len + n + 5);
    if (!p)
        return;
    r->failed = p;
    memcpy(p + r->failed_len, "  ", 2);
    memcpy(p + r->failed_len + 2, msg, n);
    p[r->failed_len + 2 + n] = '\n';
    r->failed_len += n + 3;
    p[r->failed_len] = '\0';
}

/* Loads every rule file of the configured scripts dir (as serve does) and
 * finds the declaration named name. Prints the error (unknown rule: the
 * known names and a "did you mean") and returns TE_CLI_FAIL, or 0. */
static int find_rule(const te_config_t *cfg, const char *name, rules_src_t *r)
{
    char rules_dir[1024], lib_dir[1024];
    te_err_t err;
    const char *dir = cfg->scripts_dir && cfg->scripts_dir[0] ? cfg->scripts_dir : "lua";
    te_script_limits_t lim = limits_of(cfg);
    snprintf(rules_dir, sizeof(rules_dir), "%s/rules", dir);
    snprintf(lib_dir, sizeof(lib_dir), "%s/lib", dir);
    memset(r, 0, sizeof(*r));
    char **files = NULL;
    te_err_clear(&err);
    int nf = te_reload_list(rules_dir, &files, &err);
    if (nf < 0)
        return te_cli_fail(CMD, "%s", err.msg);
    r->scripts = calloc(nf > 0 ? (size_t)nf : 1, sizeof(*r->scripts));
    if (!r->scripts) {
        te_reload_list_free(files, nf);
        return te_cli_fail(CMD, "out of memory");
    }
    for (int i = 0; i < nf; i++) {
        te_script_t *s = NULL;
        te_err_clear(&err);
        if (te_script_load(files[i], lib_dir, &lim, &s, &err) < 0) {
            add_failed(r, err.msg);
            continue;
        }
        r->scripts[r->n++] = s;
        for (size_t j = 0; j < s->ndefs && !r->def; j++)
            if (strcmp(s->defs[j]->name, name) == 0) {
                r->s = s;
                r->def = s->defs[j];
            }
    }
    te_reload_list_free(files, nf);
    if (r->def)
        return 0;

    /* unknown: list what is there, nearest first */
    const char *best = NULL;
    size_t bestd = 4, total = 0;
    char known[2048];
    size_t kn = 0;
    known[0] = '\0';
    for (size_t i = 0; i < r->n; i++)
        for (size_t j = 0; j < r->scripts[i]->ndefs; j++) {
            const char *k = r->scripts[i]->defs[j]->name;
            size_t d = te_edit_distance(name, k);
            if (d < bestd) {
                bestd = d;
                best = k;
            }
            if (kn < sizeof(known) - 1) {
                int w = snprintf(known + kn, sizeof(known) - kn, "%s%s", total ? ", " : "", k);
                kn = w < 0 ? kn : kn + (size_t)w >= sizeof(known) ? sizeof(known) - 1 : kn + (size_t)w;
            }
            total++;
        }
    char hint[300] = "";
    if (best)
        snprintf(hint, sizeof(hint), " (did you mean \"%s\"?)", best);
    if (total == 0)
        te_cli_fail(CMD, "unknown rule \"%s\": %s has no rules (set scripts { dir = ... } in "
                         "telemetry.lua or pass --config)",
                    name, rules_dir);
    else
        te_cli_fail(CMD, "unknown rule \"%s\"%s; the rules in %s are: %s", name, hint, rules_dir,
                    known);
    if (r->failed)
        fprintf(stderr, "these rule files did not load:\n%s", r->failed);
    return TE_CLI_FAIL;
}

/* --- alerts test --- */

typedef struct inst {
    char fp[TE_ALERT_ID_LEN + 1];
    te_alert_t a;               /* copy at its last transition */
} inst_t;

typedef struct gref {
    char fp[TE_ALERT_ID_LEN + 1];
    size_t ev;                  /* event giving the group values, or SIZE_MAX */
    size_t inst;                /* instance index, or SIZE_MAX */
} gref_t;

typedef struct replay {
    const char *rule;
    int64_t now;                /* the virtual clock */
    te_script_clock_t clock;
    te_event_t **ev;            /* oldest first after the read */
    size_t nev, evcap;
    inst_t *inst;
    size_t ninst, instcap;
    bool oom;
} replay_t;

static int64_t clock_now(void *arg)
{
    return ((const replay_t *)arg)->now;
}

static void on_alert(void *ud, const te_alert_t *a, te_alert_transition_t t)
{
    (void)t;
    replay_t *r = ud;
    if (strcmp(a->rule, r->rule) != 0)
        return;
    inst_t *in = NULL;
    for (size_t i = 0; i < r->ninst && !in; i++)
        if (strcmp(r->inst[i].fp, a->fingerprint) == 0)
            in = &r->inst[i];
    if (!in) {
        if (r->ninst == r->instcap) {
            size_t cap = r->instcap ? r->instcap * 2 : 16;
            inst_t *p = realloc(r->inst, cap * sizeof(*p));
            if (!p) {
                r->oom = true;
                return;
            }
            r->inst = p;
            r->instcap = cap;
        }
        in = &r->inst[r->ninst++];
        memcpy(in->fp, a->fingerprint, sizeof(in->fp));
        te_alert_init(&in->a);
    }
    if (te_alert_copy(&in->a, a) < 0)
        r->oom = true;
}

/* Derived events are stored with the events they came from: refuse them. */
static int on_emit(void *ud, te_event_t *ev)
{
    (void)ud;
    te_event_free(ev);
    return 1;
}

static int collect(const te_event_t *ev, void *ud)
{
    replay_t *r = ud;
    if (r->nev == r->evcap) {
        size_t cap = r->evcap ? r->evcap * 2 : 1024;
        te_event_t **p = realloc(r->ev, cap * sizeof(*p));
        if (!p)
            return TE_ENOMEM;
        r->ev = p;
        r->evcap = cap;
    }
    te_event_t *c = NULL;
    te_err_t err;
    if (te_event_build(ev->ts_ns, ev->kind, ev->source, ev->id, ev->trace_id, ev->span_id,
                       ev->parent_span_id, ev->correlation_id, ev->tags_json, ev->tags_json_len,
                       ev->fields_blob, ev->fields_blob_len, ev->body, ev->body_len, &c,
                       &err) < 0)
        return TE_ENOMEM;
    r->ev[r->nev++] = c;
    return 0;
}

/* Reads the events of kind (NULL: every kind) in [since, until), oldest
 * first, into r->ev. */
static int read_events(te_store_t *st, const char *kind, int64_t since, int64_t until,
                       replay_t *r, te_err_t *err)
{
    char cursor[256] = "", next[256];
    for (;;) {
        te_events_query_t q = {.kind = kind, .since_ns = since, .until_ns = until, .limit = PAGE,
                               .cursor = cursor[0] ? cursor : NULL};
        next[0] = '\0';
        int rc = te_store_events(st, &q, collect, r, next, sizeof(next), err);
        if (rc == TE_ENOMEM)
            return te_err_set(err, TE_ENOMEM, "out of memory reading %zu events", r->nev);
        if (rc < 0)
            return rc;
        if (!next[0])
            break;
        memcpy(cursor, next, sizeof(cursor));
    }
    for (size_t i = 0, j = r->nev ? r->nev - 1 : 0; i < j; i++, j--) { /* newest first -> oldest */
        te_event_t *t = r->ev[i];
        r->ev[i] = r->ev[j];
        r->ev[j] = t;
    }
    return 0;
}

static int cmp_gref(const void *a, const void *b)
{
    return strcmp(((const gref_t *)a)->fp, ((const gref_t *)b)->fp);
}

/* One reported group. */
typedef struct row {
    const char *const *keys;
    const char **values;
    size_t n;
    int rank;                   /* 0 firing, 1 pending, 2 ok */
    const te_alert_t *a;        /* NULL: ok and never active */
    int64_t fires_in;           /* pending: time left */
    char group[512];            /* k=v k2=v2 */
} row_t;

static int cmp_row(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    return strcmp(x->group, y->group);
}

static const char *rank_name(int rank)
{
    return rank == 0 ? "firing" : rank == 1 ? "pending" : "ok";
}

static cJSON *row_json(const row_t *w)
{
    cJSON *o = cJSON_CreateObject(), *g = cJSON_AddObjectToObject(o, "group");
    for (size_t i = 0; g && i < w->n; i++)
        cJSON_AddStringToObject(g, w->keys[i], w->values[i]);
    cJSON_AddStringToObject(o, "state", rank_name(w->rank));
    const te_alert_t *a = w->rank < 2 ? w->a : NULL;
    if (a && a->has_value)
        cJSON_AddNumberToObject(o, "value", a->value);
    else
        cJSON_AddNullToObject(o, "value");
    if (a)
        cJSON_AddStringToObject(o, "severity", te_severity_name(a->severity));
    else
        cJSON_AddNullToObject(o, "severity");
    if (a && a->summary)
        cJSON_AddStringToObject(o, "summary", a->summary);
    else
        cJSON_AddNullToObject(o, "summary");
    if (w->rank == 1) {
        char d[32];
        te_duration_format(w->fires_in, d, sizeof(d));
        cJSON_AddStringToObject(o, "fires_in", d);
    }
    return o;
}

static int report(const replay_t *r, const rules_src_t *src, te_ruleset_t *rs, int64_t at,
                  int64_t at_v, int64_t since, te_cli_format_t format)
{
    const te_rule_def_t *d = src->def;
    bool is_rule = d->type == TE_DEF_RULE;
    gref_t *refs = calloc(r->nev + r->ninst + 1, sizeof(*refs));
    const char **vals = calloc(d->ngroup + 1, sizeof(*vals));
    row_t *rows = NULL;
    size_t nref = 0, nrow = 0;
    int rc = TE_CLI_FAIL;
    if (!refs || !vals) {
        te_cli_fail(CMD, "out of memory");
        goto out;
    }
    for (size_t i = 0; is_rule && i < r->nev; i++) { /* groups that got events */
        const te_event_t *ev = r->ev[i];
        if ((d->kind && strcmp(d->kind, ev->kind) != 0) ||
            !te_where_match(d->where, d->nwhere, ev))
            continue;
        for (size_t k = 0; k < d->ngroup; k++)
            vals[k] = te_event_tag(ev, d->group_by[k]);
        te_alert_fingerprint(d->name, vals, d->ngroup, refs[nref].fp);
        refs[nref].ev = i;
        refs[nref++].inst = SIZE_MAX;
    }
    for (size_t i = 0; i < r->ninst; i++) { /* groups that changed state */
        memcpy(refs[nref].fp, r->inst[i].fp, sizeof(refs[nref].fp));
        refs[nref].ev = SIZE_MAX;
        refs[nref++].inst = i;
    }
    if (nref)
        qsort(refs, nref, sizeof(*refs), cmp_gref);
    rows = calloc(nref + 1, sizeof(*rows));
    if (!rows) {
        te_cli_fail(CMD, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nref;) {
        size_t j = i, ev = SIZE_MAX, in = SIZE_MAX;
        for (; j < nref && strcmp(refs[j].fp, refs[i].fp) == 0; j++) {
            if (refs[j].ev != SIZE_MAX)
                ev = refs[j].ev;
            if (refs[j].inst != SIZE_MAX)
                in = refs[j].inst;
        }
        row_t *w = &rows[nrow++];
        const te_alert_t *live = te_ruleset_alert(rs, d->name, refs[i].fp);
        const te_alert_t *rec = in != SIZE_MAX ? &r->inst[in].a : NULL;
        w->a = live ? live : rec;
        if (w->a) {
            w->keys = (const char *const *)w->a->group_keys;
            w->values = (const char **)w->a->group_values;
            w->n = w->a->ngroup;
        } else {
            w->keys = (const char *const *)d->group_by;
            w->n = d->ngroup;
            w->values = calloc(d->ngroup + 1, sizeof(char *));
            for (size_t k = 0; w->values && k < d->ngroup; k++) {
                const char *v = te_event_tag(r->ev[ev], d->group_by[k]);
                w->values[k] = v ? v : "";
            }
            if (!w->values) {
                te_cli_fail(CMD, "out of memory");
                goto out;
            }
        }
        te_alert_state_t st = w->a ? w->a->state : TE_ALERT_INACTIVE;
        w->rank = st == TE_ALERT_FIRING ? 0 : st == TE_ALERT_PENDING ? 1 : 2;
        if (w->rank == 1) {
            w->fires_in = d->pending_ns - (at_v - w->a->active_at_ns);
            if (w->fires_in < 0)
                w->fires_in = 0;
        }
        size_t gn = 0;
        w->group[0] = '\0';
        for (size_t k = 0; k < w->n && gn < sizeof(w->group) - 1; k++) {
            int x = snprintf(w->group + gn, sizeof(w->group) - gn, "%s%s=%s", k ? " " : "",
                             w->keys[k], w->values[k]);
            gn = x < 0 ? gn : gn + (size_t)x;
        }
        i = j;
    }
    if (nrow)
        qsort(rows, nrow, sizeof(*rows), cmp_row);

    char at_s[40], since_s[40];
    te_time_format_rfc3339(at, at_s, sizeof(at_s));
    te_time_format_rfc3339(since, since_s, sizeof(since_s));
    size_t count[3] = {0, 0, 0};
    for (size_t i = 0; i < nrow; i++)
        count[rows[i].rank]++;
    if (format == TE_CLI_FMT_JSON) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "rule", d->name);
        cJSON_AddStringToObject(root, "at", at_s);
        cJSON_AddNumberToObject(root, "events", (double)r->nev);
        cJSON *arr = cJSON_AddArrayToObject(root, "alerts");
        for (size_t i = 0; arr && i < nrow; i++)
            cJSON_AddItemToArray(arr, row_json(&rows[i]));
        char *text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        if (!text) {
            te_cli_fail(CMD, "out of memory");
            goto out;
        }
        rc = te_cli_write(text, strlen(text)) < 0 || te_cli_write("\n", 1) < 0
                 ? te_cli_fail(CMD, "cannot write the output")
                 : TE_CLI_OK;
        free(text);
        goto out;
    }
    printf("rule %s at %s: %zu events of %s since %s replayed\n", d->name, at_s, r->nev,
           d->kind ? d->kind : "every kind", since_s);
    if (nrow > 0) {
        printf("%-24s  %-8s  %-12s  %-30s  %s\n", "state", "severity", "value", "group",
               "summary");
        for (size_t i = 0; i < nrow; i++) {
            const row_t *w = &rows[i];
            const te_alert_t *a = w->rank < 2 ? w->a : NULL;
            char state[64], value[32] = "-";
            if (w->rank == 1) {
                char d2[32];
                te_duration_format(w->fires_in, d2, sizeof(d2));
                snprintf(state, sizeof(state), "pending (fires in %s)", d2);
            } else {
                snprintf(state, sizeof(state), "%s", rank_name(w->rank));
            }
            if (a && a->has_value)
                snprintf(value, sizeof(value), "%g", a->value);
            printf("%-24s  %-8s  %-12s  %-30s  %s\n", state,
                   a ? te_severity_name(a->severity) : "-", value, w->n ? w->group : "-",
                   a && a->summary ? a->summary : "-");
        }
    }
    printf("%zu firing, %zu pending, %zu ok (nothing was sent or stored)\n", count[0], count[1],
           count[2]);
    fflush(stdout);
    rc = TE_CLI_OK;
out:
    for (size_t i = 0; rows && i < nrow; i++)
        if (!rows[i].a)
            free(rows[i].values);
    free(rows);
    free(refs);
    free(vals);
    return rc;
}

static int64_t align_up(int64_t t, int64_t every)
{
    int64_t q = t / every, r = t % every;
    if (r < 0) {
        r += every;
        q--;
    }
    return r ? (q + 1) * every : t;
}

int te_cli_alerts_test(const te_cli_args_t *a)
{
    static const char *const allowed[] = {"at", "format", NULL};
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    te_ruleset_t *rs = NULL;
    rules_src_t src = {0};
    replay_t r;
    te_cli_format_t format;
    int rc;
    memset(&r, 0, sizeof(r));
    if ((rc = only_opts(a, "test", allowed)) != 0)
        return rc;
    if (a->npos < 2)
        return te_cli_usage_error(CMD, "alerts test needs the name of a rule");
    if (a->npos > 2)
        return te_cli_usage_error(CMD, "unexpected argument \"%s\"", a->pos[2]);
    if (te_cli_parse_format(te_cli_get(a, "format"), &format, &err) < 0)
        return te_cli_usage_error(CMD, "%s", err.msg);
    if (format == TE_CLI_FMT_CSV)
        return te_cli_usage_error(CMD, "--format must be table or json");
    int64_t at = te_time_now_ns();
    at -= at % TE_NS_PER_MS; /* printed as RFC 3339 with milliseconds */
    const char *at_s = te_cli_get(a, "at");
    if (at_s && te_time_parse_since(at_s, at, &at, &err) < 0)
        return te_cli_usage_error(CMD, "--at must be a time (RFC 3339 or Unix seconds) or a "
                                       "duration ago, got \"%s\"",
                                  at_s);
    r.rule = a->pos[1];
    if ((rc = te_cli_load_config(CMD, a, &cfg)) != 0)
        goto out;
    if ((rc = find_rule(cfg, r.rule, &src)) != 0)
        goto out;
    if ((rc = te_cli_open_store_ro(CMD, cfg, &st)) != 0)
        goto out;

    const te_rule_def_t *d = src.def;
    int64_t span, shift = 0;
    if (d->type == TE_DEF_RULE) {
        span = d->window_ns + d->pending_ns + d->keep_firing_ns + d->every_ns;
        if (d->every_ns > 0)
            shift = align_up(at, d->every_ns) - at;
    } else {
        span = 5 * 60 * TE_NS_PER_SEC; /* lifetime of a ctx.alert without re-raise */
    }
    int64_t since = at - span;
    te_err_clear(&err);
    if (read_events(st, d->kind, since, at + 1, &r, &err) < 0) {
        rc = te_cli_fail(CMD, "%s", err.msg);
        goto out;
    }

    /* the replay, shifted so that `at` is an evaluation instant */
    int64_t at_v = at + shift;
    r.now = since + shift;
    r.clock.now_ns = clock_now;
    r.clock.arg = &r;
    te_ruleset_opts_t o = {.id_seed = 1, .on_alert = on_alert, .alert_ud = &r,
                           .on_emit = on_emit, .emit_ud = &r};
    te_err_clear(&err);
    if (!(rs = te_ruleset_new(&o, &err)) || te_script_set_clock(src.s, &r.clock) < 0) {
        rc = te_cli_fail(CMD, "out of memory");
        goto out;
    }
    te_err_clear(&err);
    if (te_ruleset_add(rs, src.s, r.now, &err) < 0) {
        rc = te_cli_fail(CMD, "%s: %s", src.s->path, err.msg);
        goto out;
    }
    size_t oi = 0;
    while (!r.oom) {
        int64_t t_ev = oi < r.nev ? r.ev[oi]->ts_ns + shift : INT64_MAX;
        int64_t t_tick = te_ruleset_next_tick(rs);
        int64_t t = t_ev < t_tick ? t_ev : t_tick;
        if (t > at_v)
            break;
        if (t > r.now)
            r.now = t;
        while (oi < r.nev && r.ev[oi]->ts_ns + shift <= r.now) {
            r.ev[oi]->ts_ns += shift;
            te_ruleset_feed(rs, r.ev[oi], r.now);
            oi++;
        }
        if (t_tick <= r.now) {
            te_ruleset_tick(rs, r.now);
            if (te_ruleset_next_tick(rs) <= r.now) {
                rc = te_cli_fail(CMD, "rule \"%s\": the ruleset did not schedule a tick", r.rule);
                goto out;
            }
        }
    }
    if (r.oom) {
        rc = te_cli_fail(CMD, "out of memory while recording alerts");
        goto out;
    }
    rc = report(&r, &src, rs, at, at_v, since, format);

    /* a rule that raised during the replay makes the answer doubtful */
    te_rule_status_t stv[64];
    size_t ns = te_ruleset_status(rs, src.s, stv, 64);
    for (size_t i = 0; i < ns && i < 64; i++)
        if (strcmp(stv[i].name, r.rule) == 0 && (stv[i].errors > 0 || strcmp(stv[i].status, "ok")))
            rc = te_cli_fail(CMD, "rule \"%s\" raised during the evaluation (%" PRIu64
                                  " errors): %s",
                             r.rule, stv[i].errors, stv[i].error);
out:
    te_ruleset_free(rs); /* before the scripts: it holds their refs */
    rules_src_free(&src);
    for (size_t i = 0; i < r.nev; i++)
        te_event_free(r.ev[i]);
    free(r.ev);
    for (size_t i = 0; i < r.ninst; i++)
        te_alert_clear(&r.inst[i].a);
    free(r.inst);
    te_store_close(st);
    te_config_free(cfg);
    return rc;
}

/* --- alerts trigger --- */

/* The line serve's stdout notifier prints (engine_rules.c). */
static void print_stdout_line(const te_alert_t *a, bool resolved)
{
    static const char *const colour[] = {"\033[36m", "\033[33m", "\033[31m"};
    bool tty = isatty(STDOUT_FILENO) == 1;
    const char *word = resolved ? "RESOLVED" : "FIRING";
    const char *sev = te_severity_name(a->severity);
    if (tty && (unsigned)a->severity < 3 && !resolved)
        printf("%s[%s]\033[0m %s%s\033[0m %s", colour[a->severity], word, colour[a->severity],
               sev, a->rule);
    else if (tty)
        printf("\033[32m[%s]\033[0m %s %s", word, sev, a->rule);
    else
        printf("[%s] %s %s", word, sev, a->rule);
    for (size_t i = 0; i < a->ngroup; i++)
        printf(" %s=%s", a->group_keys[i], a->group_values[i]);
    if (a->has_value)
        printf(" value=%g", a->value);
    if (a->summary && a->summary[0])
        printf(": %s", a->summary);
    printf("\n");
    fflush(stdout);
}

typedef struct target {
    const char *name;
    const char *type;
    te_notifier_t *n;
    bool pending;
    int rc;
    char msg[TE_ERR_MSG_MAX];
} target_t;

static void trigger_done(int rc, const char *msg, void *ud)
{
    target_t *t = ud;
    t->pending = false;
    t->rc = rc;
    if (rc < 0)
        snprintf(t->msg, sizeof(t->msg), "%s", msg && msg[0] ? msg : te_strerror(rc));
}

static const te_config_notifier_t *find_notifier(const te_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nnotifiers; i++)
        if (cfg->notifiers[i].name && strcmp(cfg->notifiers[i].name, name) == 0)
            return &cfg->notifiers[i];
    return NULL;
}

/* Builds the alert of a trigger. Prints and returns an exit code on error. */
static int build_alert(const te_rule_def_t *d, const char *const *groups, size_t ngroups,
                       bool resolved, te_alert_t *al)
{
    const char **keys = calloc(ngroups + d->ngroup + 1, sizeof(char *));
    const char **vals = calloc(ngroups + d->ngroup + 1, sizeof(char *));
    char **owned = calloc(ngroups + 1, sizeof(char *));
    size_t n = 0;
    int rc = TE_CLI_FAIL;
    te_err_t err = {0};
    if (!keys || !vals || !owned) {
        te_cli_fail(CMD, "out of memory");
        goto out;
    }
    if (d->type == TE_DEF_RULE) {
        n = d->ngroup;
        for (size_t k = 0; k < n; k++) {
            keys[k] = d->group_by[k];
            vals[k] = "";
        }
    }
    for (size_t i = 0; i < ngroups; i++) {
        const char *eq = strchr(groups[i], '=');
        if (!eq || eq == groups[i]) {
            rc = te_cli_usage_error(CMD, "--group must be TAG=VALUE, got \"%s\"", groups[i]);
            goto out;
        }
        if (!(owned[i] = dup_str(groups[i]))) {
            te_cli_fail(CMD, "out of memory");
            goto out;
        }
        owned[i][eq - groups[i]] = '\0';
        const char *key = owned[i], *val = owned[i] + (eq - groups[i]) + 1;
        size_t k = 0;
        while (k < n && strcmp(keys[k], key) != 0)
            k++;
        if (k == n && d->type == TE_DEF_RULE) {
            char list[512] = "";
            size_t ln = 0;
            const char *best = NULL;
            size_t bestd = 3;
            for (size_t j = 0; j < d->ngroup && ln < sizeof(list) - 1; j++) {
                int w = snprintf(list + ln, sizeof(list) - ln, "%s%s", j ? ", " : "",
                                 d->group_by[j]);
                ln = w < 0 ? ln : ln + (size_t)w;
                size_t dist = te_edit_distance(key, d->group_by[j]);
                if (dist < bestd) {
                    bestd = dist;
                    best = d->group_by[j];
                }
            }
            char hint[200] = "";
            if (best)
                snprintf(hint, sizeof(hint), " (did you mean \"%s\"?)", best);
            if (d->ngroup == 0)
                rc = te_cli_usage_error(CMD, "--group %s: rule \"%s\" has no group_by", key,
                                        d->name);
            else
                rc = te_cli_usage_error(CMD, "--group %s: rule \"%s\" groups by %s%s", key,
                                        d->name, list, hint);
            goto out;
        }
        keys[k] = key;
        vals[k] = val;
        if (k == n)
            n++;
    }
    for (size_t k = 0; d->type == TE_DEF_RULE && k < d->ngroup; k++)
        if (keys[k] == d->group_by[k])
            fprintf(stderr, "note: no --group %s=VALUE: the alert's %s is \"\"\n", keys[k],
                    keys[k]);
    int64_t now = te_time_now_ns();
    now -= now % TE_NS_PER_MS;
    uint64_t rng = (uint64_t)now ^ ((uint64_t)getpid() << 32) ^ (uint64_t)te_time_mono_ns();
    te_alert_init(al);
    if (te_alert_set_identity(al, d->name, keys, vals, n) < 0 ||
        te_alert_set_labels(al, d->label_keys, d->label_values, d->nlabels) < 0 ||
        te_alert_set_notify(al, d->notify, d->nnotify) < 0) {
        te_cli_fail(CMD, "out of memory");
        goto out;
    }
    te_alert_new_id(&rng, al->id);
    al->severity = d->type == TE_DEF_RULE ? d->severity : TE_SEV_WARNING;
    al->state = resolved ? TE_ALERT_RESOLVED : TE_ALERT_FIRING;
    al->active_at_ns = al->starts_at_ns = al->updated_ns = al->last_notified_ns = now;
    al->ends_at_ns = resolved ? now : 0;
    if (d->summary) {
        char *s = te_alert_render(d->summary, al, &err);
        if (!s) {
            te_cli_fail(CMD, "rule \"%s\": %s", d->name, err.msg);
            goto out;
        }
        int e = te_alert_set_summary(al, s);
        free(s);
        if (e < 0) {
            te_cli_fail(CMD, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    for (size_t i = 0; owned && i < ngroups; i++)
        free(owned[i]);
    free(owned);
    free(keys);
    free(vals);
    return rc;
}

int te_cli_alerts_trigger(const te_cli_args_t *a)
{
    static const char *const allowed[] = {"group", "status", NULL};
    te_config_t *cfg = NULL;
    rules_src_t src = {0};
    te_alert_t al;
    target_t *tg = NULL;
    size_t ntg = 0;
    uv_loop_t loop;
    bool loop_on = false;
    int rc;
    te_alert_init(&al);
    if ((rc = only_opts(a, "trigger", allowed)) != 0)
        return rc;
    if (a->npos < 2)
        return te_cli_usage_error(CMD, "alerts trigger needs the name of a rule");
    if (a->npos > 2)
        return te_cli_usage_error(CMD, "unexpected argument \"%s\"", a->pos[2]);
    const char *status = te_cli_get(a, "status");
    if (!status)
        status = "firing";
    if (strcmp(status, "firing") != 0 && strcmp(status, "resolved") != 0)
        return te_cli_usage_error(CMD, "--status must be firing or resolved, got \"%s\"",
                                  status);
    bool resolved = strcmp(status, "resolved") == 0;
    const char *const *groups = NULL;
    size_t ngroups = te_cli_list(a, "group", &groups);
    if ((rc = te_cli_load_config(CMD, a, &cfg)) != 0)
        goto out;
    if ((rc = find_rule(cfg, a->pos[1], &src)) != 0)
        goto out;
    if ((rc = build_alert(src.def, groups, ngroups, resolved, &al)) != 0)
        goto out;

    /* the notifiers: those the rule names, every configured one when none */
    size_t cap = al.nnotify ? al.nnotify : cfg->nnotifiers + 1;
    tg = calloc(cap, sizeof(*tg));
    if (!tg) {
        rc = te_cli_fail(CMD, "out of memory");
        goto out;
    }
    if (al.nnotify) {
        for (size_t i = 0; i < al.nnotify; i++)
            tg[ntg++].name = al.notify[i];
    } else {
        for (size_t i = 0; i < cfg->nnotifiers; i++)
            tg[ntg++].name = cfg->notifiers[i].name;
        if (ntg == 0)
            tg[ntg++].name = "stdout";
    }
    if (uv_loop_init(&loop) != 0) {
        rc = te_cli_fail(CMD, "cannot start an event loop");
        goto out;
    }
    loop_on = true;
    printf("triggering %s alert %s of rule %s (fingerprint %s)\n", status, al.id, al.rule,
           al.fingerprint);
    fflush(stdout);
    for (size_t i = 0; i < ntg; i++) {
        target_t *t = &tg[i];
        const te_config_notifier_t *c = find_notifier(cfg, t->name);
        t->type = c && c->type ? c->type : "stdout";
        if (strcmp(t->name, "stdout") == 0 || (c && c->type && strcmp(c->type, "stdout") == 0)) {
            print_stdout_line(&al, resolved);
            continue;
        }
        if (!c) {
            const char *best = NULL;
            size_t bestd = 3;
            for (size_t k = 0; k < cfg->nnotifiers; k++) {
                size_t dist = te_edit_distance(t->name, cfg->notifiers[k].name);
                if (dist < bestd) {
                    bestd = dist;
                    best = cfg->notifiers[k].name;
                }
            }
            t->rc = TE_ENOTFOUND;
            t->type = "?";
            snprintf(t->msg, sizeof(t->msg), "no notifier \"%s\" in %s%s%s%s (declare it: "
                     "notifier \"%s\" { type = ... })",
                     t->name, cfg->file ? cfg->file : "the configuration (no telemetry.lua)",
                     best ? " (did you mean \"" : "", best ? best : "", best ? "\"?)" : "",
                     t->name);
            continue;
        }
        te_err_t err = {0};
        if (!(t->n = te_notifier_new(&loop, c, &err))) {
            t->rc = err.code < 0 ? err.code : TE_ECONFIG;
            snprintf(t->msg, sizeof(t->msg), "%s", err.msg);
            continue;
        }
        t->pending = true;
        int e = t->n->send(t->n, &al, status, trigger_done, t);
        if (e < 0) {
            t->pending = false;
            t->rc = e;
            snprintf(t->msg, sizeof(t->msg), "cannot send: %s", te_strerror(e));
        }
    }
    for (;;) { /* until every delivery is done (retries included) */
        bool waiting = false;
        for (size_t i = 0; i < ntg; i++)
            waiting = waiting || tg[i].pending;
        if (!waiting)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    size_t failed = 0;
    for (size_t i = 0; i < ntg; i++) {
        if (tg[i].rc < 0) {
            failed++;
            printf("%s (%s): failed: %s\n", tg[i].name, tg[i].type, tg[i].msg);
        } else {
            printf("%s (%s): delivered\n", tg[i].name, tg[i].type);
        }
    }
    fflush(stdout);
    rc = failed ? TE_CLI_FAIL : TE_CLI_OK;
out:
    for (size_t i = 0; tg && i < ntg; i++)
        te_notifier_free(tg[i].n);
    if (loop_on) {
        uv_run(&loop, UV_RUN_DEFAULT); /* let the notifiers' handles close */
        uv_loop_close(&loop);
    }
    free(tg);
    te_alert_clear(&al);
    rules_src_free(&src);
    te_config_free(cfg);
    return rc;
}

/* --- alerts watch --- */

static volatile sig_atomic_t watch_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    watch_stop = 1;
}

typedef struct watch {
    te_cli_format_t format;
    int64_t seq;
    bool write_failed;
} watch_t;

static int print_transition(void *ud, const te_alert_history_row_t *h)
{
    watch_t *w = ud;
    char at[40];
    /* the table shows milliseconds (a fixed width); json the stored instant */
    te_time_format_rfc3339(w->format == TE_CLI_FMT_JSON ? h->at_ns
                                                        : h->at_ns - h->at_ns % TE_NS_PER_MS,
                           at, sizeof(at));
    w->seq = h->seq;
    cJSON *group = cJSON_Parse(h->group_json);
    if (!group || !cJSON_IsObject(group)) {
        cJSON_Delete(group);
        group = cJSON_CreateObject();
    }
    char *text = NULL;
    if (w->format == TE_CLI_FMT_JSON) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "seq", (double)h->seq);
        cJSON_AddStringToObject(o, "at", at);
        cJSON_AddStringToObject(o, "transition", h->transition);
        cJSON_AddStringToObject(o, "state", h->state);
        cJSON_AddStringToObject(o, "severity", h->severity);
        cJSON_AddStringToObject(o, "rule", h->rule);
        cJSON_AddStringToObject(o, "id", h->alert_id);
        cJSON_AddStringToObject(o, "fingerprint", h->fingerprint);
        cJSON_AddItemToObject(o, "group", group);
        group = NULL;
        if (h->has_value && isfinite(h->value))
            cJSON_AddNumberToObject(o, "value", h->value);
        else
            cJSON_AddNullToObject(o, "value");
        if (h->summary)
            cJSON_AddStringToObject(o, "summary", h->summary);
        else
            cJSON_AddNullToObject(o, "summary");
        if (h->reason)
            cJSON_AddStringToObject(o, "reason", h->reason);
        else
            cJSON_AddNullToObject(o, "reason");
        char *j = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (j && (text = malloc(strlen(j) + 2)) != NULL)
            sprintf(text, "%s\n", j);
        free(j);
    } else {
        char g[512] = "", value[32] = "-";
        size_t gn = 0;
        const cJSON *kv;
        cJSON_ArrayForEach(kv, group)
        {
            const char *v = cJSON_GetStringValue(kv);
            int x = snprintf(g + gn, sizeof(g) - gn, "%s%s=%s", gn ? " " : "", kv->string,
                             v ? v : "");
            if (x < 0 || (size_t)x >= sizeof(g) - gn)
                break;
            gn += (size_t)x;
        }
        if (h->has_value)
            snprintf(value, sizeof(value), "%g", h->value);
        char *line = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&line, &len);
        if (f) {
            fprintf(f, "%-24s  %-10s  %-8s  %-24s  %-30s  %-10s  %s", at, h->transition,
                    h->severity, h->rule, gn ? g : "-", value,
                    h->summary && h->summary[0] ? h->summary : "-");
            if (h->reason && h->reason[0])
                fprintf(f, " (%s)", h->reason);
            fputc('\n', f);
            fclose(f);
            text = line;
        }
    }
    cJSON_Delete(group);
    if (!text)
        return TE_ENOMEM;
    int rc = te_cli_write(text, strlen(text));
    free(text);
    fflush(stdout);
    if (rc < 0) {
        w->write_failed = true;
        return rc;
    }
    return 0;
}

int te_cli_alerts_watch(const te_cli_args_t *a)
{
    static const char *const allowed[] = {"format", NULL};
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    watch_t w = {0};
    int rc;
    if ((rc = only_opts(a, "watch", allowed)) != 0)
        return rc;
    if (a->npos > 1)
        return te_cli_usage_error(CMD, "unexpected argument \"%s\"", a->pos[1]);
    if (te_cli_parse_format(te_cli_get(a, "format"), &w.format, &err) < 0)
        return te_cli_usage_error(CMD, "%s", err.msg);
    if (w.format == TE_CLI_FMT_CSV)
        return te_cli_usage_error(CMD, "--format must be table or json");
    if ((rc = te_cli_load_config(CMD, a, &cfg)) != 0)
        goto out;
    if ((rc = te_cli_open_store_ro(CMD, cfg, &st)) != 0)
        goto out;
    if (te_store_alerts_history_last_seq(st, &w.seq, &err) < 0) {
        rc = te_cli_fail(CMD, "%s", err.msg);
        goto out;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: the sleep wakes up */
    sigemptyset(&sa.sa_mask);
    watch_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    fprintf(stderr, "watching alert transitions in %s (Ctrl-C to stop)\n", cfg->db_path);
    fflush(stderr);
    if (w.format != TE_CLI_FMT_JSON) {
        printf("%-24s  %-10s  %-8s  %-24s  %-30s  %-10s  %s\n", "time", "transition",
               "severity", "rule", "group", "value", "summary");
        fflush(stdout);
    }
    rc = TE_CLI_OK;
    while (!watch_stop) {
        te_err_clear(&err);
        int e = te_store_alerts_history_since(st, w.seq, print_transition, &w, &err);
        if (e < 0) {
            rc = w.write_failed ? TE_CLI_OK /* the reader went away (a closed pipe) */
                                : te_cli_fail(CMD, "%s", err.msg[0] ? err.msg : te_strerror(e));
            break;
        }
        struct timespec ts = {0, WATCH_POLL_MS * 1000000L};
        while (!watch_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
out:
    te_store_close(st);
    te_config_free(cfg);
    return rc;
}
