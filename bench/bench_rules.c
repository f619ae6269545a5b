/*
 * bench_rules.c - ns per event of te_ruleset_feed with 10 rules shaped like
 * SPEC 6.1 (where on provider, group_by provider+model, count x2 +
 * quantile), plus the cost of one tick over their groups.
 *
 * Usage: bench_rules [events]   (figures are printed, not asserted)
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/event.h"
#include "rules/eval.h"
#include "script/script.h"

#define S INT64_C(1000000000)

static int64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * S + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    char dir[] = "/tmp/te_bench_rules_XXXXXX", path[128];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/r.lua", dir);
    FILE *f = fopen(path, "w");
    fputs("local te = require 'te'\nfor i = 1, 10 do te.rule {\n"
          "  name = 'r' .. i, kind = 'llm_call', where = { provider = {'openai','anthropic'} },\n"
          "  group_by = { 'provider', 'model' }, window = '5m', every = '30s',\n"
          "  aggs = { errors = te.count{ status = 'error' }, total = te.count(),\n"
          "           p95 = te.quantile('latency_ms', 0.95) },\n"
          "  condition = function(a) return a.total >= 20 and a.errors / a.total > 0.05 end,\n"
          "  value = function(a) return a.errors / a.total end,\n"
          "  summary = '{{provider}}/{{model}} {{value|pct}}' } end\n", f);
    fclose(f);
    te_err_t err;
    te_script_t *s = NULL;
    if (te_script_load(path, NULL, NULL, &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int64_t t0 = INT64_C(1800000000) * S;
    te_ruleset_t *rs = te_ruleset_new(NULL, &err);
    te_ruleset_add(rs, s, t0, &err);
    enum { NEV = 4096 };
    te_event_t *evs[NEV];
    const char *prov[] = {"openai", "anthropic", "mistral"};
    for (int i = 0; i < NEV; i++) {
        char js[256];
        snprintf(js, sizeof(js),
                 "{\"kind\":\"llm_call\",\"provider\":\"%s\",\"model\":\"m%d\",\"status\":\"%s\","
                 "\"latency_ms\":%d}",
                 prov[i % 3], i % 20, i % 17 == 0 ? "error" : "ok", 100 + (i * 37) % 2000);
        te_event_opts_t o = {NULL, NULL, 0};
        if (te_event_parse(js, strlen(js), &o, &evs[i], &err))
            return 1;
    }
    /* 250k events/s of virtual time */
    int64_t start = mono();
    for (long i = 0; i < n; i++) {
        int64_t now = t0 + i * 4000;
        te_event_t *ev = evs[i % NEV];
        ev->ts_ns = now;
        te_ruleset_feed(rs, ev, now);
    }
    int64_t el = mono() - start;
    printf("feed: %ld events, 10 rules (2/3 of events match): %.1f ns/event, %.1f ns/event/rule\n",
           n, (double)el / (double)n, (double)el / (double)n / 10.0);
    start = mono();
    int ev = te_ruleset_tick(rs, t0 + n * 4000 + 30 * S);
    printf("tick: %d rules, %.1f us\n", ev, (double)(mono() - start) / 1000.0);
    te_ruleset_free(rs);
    te_script_free(s);
    for (int i = 0; i < NEV; i++)
        te_event_free(evs[i]);
    unlink(path);
    rmdir(dir);
    return 0;
}
