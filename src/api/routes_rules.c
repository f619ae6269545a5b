/*
 * routes_rules.c - GET /v1/rules and POST /v1/rules/reload (SPEC 5, 6.7).
 *
 * THREAD: loop. Everything shown lives in memory on the loop (the script
 * set and the ruleset), so both routes answer without the database; the
 * reload answers once the reload it asked for has been applied.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/time.h"
#include "engine_int.h"
#include "engine_rules.h"
#include "rules/eval.h"
#include "script/recommend.h"
#include "script/reload.h"

static void add_str_or_null(te_buf_t *b, const char *s)
{
    if (s && s[0])
        te_buf_add_json_str(b, s, strlen(s));
    else
        te_buf_adds(b, "null");
}

static void add_time_or_null(te_buf_t *b, int64_t ns)
{
    char t[48];
    if (ns <= 0) {
        te_buf_adds(b, "null");
        return;
    }
    te_time_format_rfc3339(ns, t, sizeof(t));
    te_buf_add_json_str(b, t, strlen(t));
}

static void add_rules(te_buf_t *b, const te_script_t *s, const te_ruleset_t *rs)
{
    te_rule_status_t one;
    size_t n = rs ? te_ruleset_status(rs, s, &one, 1) : 0;
    te_rule_status_t *st = n > 1 ? calloc(n, sizeof(*st)) : &one;
    if (!st) {
        b->oom = true;
        return;
    }
    if (n > 1)
        te_ruleset_status(rs, s, st, n);
    te_buf_adds(b, "[");
    for (size_t i = 0; i < n; i++) {
        const te_rule_status_t *r = &st[i];
        te_buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
        add_str_or_null(b, r->name);
        te_buf_adds(b, ",\"type\":");
        add_str_or_null(b, r->type);
        te_buf_adds(b, ",\"status\":");
        add_str_or_null(b, r->status);
        te_buf_adds(b, ",\"error\":");
        add_str_or_null(b, r->error);
        te_buf_adds(b, ",\"last_eval\":");
        add_time_or_null(b, r->last_eval_ns);
        te_buf_addf(b,
                         ",\"evals\":%llu,\"errors\":%llu,\"cpu_ns\":%llu,\"groups\":%zu,"
                         "\"groups_dropped\":%llu,\"warning\":",
                         (unsigned long long)r->evals, (unsigned long long)r->errors,
                         (unsigned long long)r->cpu_ns, r->groups,
                         (unsigned long long)r->groups_dropped);
        add_str_or_null(b, r->warning);
        te_buf_adds(b, "}");
    }
    /* recommenders live in the script, not in the ruleset (engine_recs.c runs them) */
    te_recommend_decl_t *d = NULL;
    size_t nd = 0;
    if (te_recommend_decls((te_script_t *)s, &d, &nd) == 0) {
        for (size_t i = 0; i < nd; i++) {
            te_buf_adds(b, n + i ? ",{\"name\":" : "{\"name\":");
            add_str_or_null(b, d[i].name);
            te_buf_adds(b, ",\"type\":\"recommend\",\"status\":");
            add_str_or_null(b, s->status == TE_SCRIPT_DISABLED ? "disabled" : "ok");
            te_buf_adds(b, ",\"error\":null,\"last_eval\":null,\"evals\":0,\"errors\":0,"
                           "\"cpu_ns\":0,\"groups\":0,\"groups_dropped\":0,\"warning\":null}");
        }
        free(d);
    }
    te_buf_adds(b, "]");
    if (st != &one)
        free(st);
}

void te_api_rules_json(te_buf_t *b, const te_reload_file_t *files, size_t n,
                       const te_ruleset_t *rs)
{
    te_buf_adds(b, "{\"scripts\":[");
    for (size_t i = 0; i < n; i++) {
        const te_reload_file_t *f = &files[i];
        const te_script_t *s = f->live;
        const char *status = "ok", *error = NULL;
        if (f->failed) {
            status = "error";
            error = f->error;
        } else if (s && s->status == TE_SCRIPT_DISABLED) {
            status = "disabled";
            error = s->error;
        } else if (s && s->status == TE_SCRIPT_ERROR) {
            status = "error";
            error = s->error;
        }
        te_buf_adds(b, i ? ",{\"file\":" : "{\"file\":");
        add_str_or_null(b, f->path);
        te_buf_adds(b, ",\"status\":");
        add_str_or_null(b, status);
        te_buf_adds(b, ",\"error\":");
        add_str_or_null(b, error);
        te_buf_adds(b, ",\"loaded_at\":");
        add_time_or_null(b, s ? s->loaded_at_ns : 0);
        te_buf_adds(b, ",\"version\":");
        if (s)
            te_buf_addf(b, "\"%016llx\"", (unsigned long long)s->version);
        else
            te_buf_adds(b, "null");
        /* a file that failed keeps its previous version: its rules still run */
        te_buf_addf(b, ",\"running\":%s,\"rules\":", s ? "true" : "false");
        if (s)
            add_rules(b, s, rs);
        else
            te_buf_adds(b, "[]");
        te_buf_adds(b, "}");
    }
    te_buf_adds(b, "]");
}

static void answer(te_engine_t *e, te_http_req_t *req)
{
    te_buf_t b = {0};
    const te_reload_t *r = te_engine_rules_scripts(e);
    size_t n = 0;
    const te_reload_file_t *files = r ? te_reload_files(r, &n) : NULL;
    te_api_rules_json(&b, files, n, te_engine_rules_set(e));
    if (r) {
        const char *dir = te_reload_rules_dir(r);
        te_buf_adds(&b, ",\"dir\":");
        te_buf_add_json_str(&b, dir, strlen(dir));
        te_buf_addf(&b, ",\"reloads\":%llu,\"load_failures\":%llu",
                         (unsigned long long)te_reload_count(r),
                         (unsigned long long)te_reload_failures(r));
    }
    te_buf_adds(&b, "}\n");
    if (b.oom) {
        te_buf_free(&b);
        te_http_respond_error(req, 500, NULL, "out of memory building the rules list");
        return;
    }
    te_http_respond_take(req, 200, NULL, NULL, b.p, b.len);
}

void te_api_rules_get(te_engine_t *e, te_http_req_t *req)
{
    answer(e, req);
}

typedef struct reload_wait {
    te_engine_t *e;
    te_http_req_t *req;
} reload_wait_t;

static void reload_done(void *ud)
{
    reload_wait_t *w = ud;
    answer(w->e, w->req);
    free(w);
}

void te_api_rules_reload(te_engine_t *e, te_http_req_t *req)
{
    reload_wait_t *w = calloc(1, sizeof(*w));
    if (!w) {
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    w->e = e;
    w->req = req;
    int rc = te_engine_rules_reload(e, reload_done, w);
    if (rc < 0) {
        free(w);
        te_http_respond_error(req, 503, NULL, "scripts cannot be reloaded now: %s",
                              rc == TE_ECLOSED ? "the engine is shutting down"
                                               : te_strerror(rc));
    }
}
