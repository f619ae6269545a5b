/*
 * bench_rollup.c - rollup figures (issue 5 part 5): ingest throughput with
 * and without rollup maintenance, database bytes per event with N realistic
 * llm_call events stored, and the latency of "p95 latency_ms by model per
 * hour over 30 days" answered by the planner (rollups) versus raw events.
 *
 * THREAD: main only. Built by cmake/bench.cmake; run by bench/rollup.sh.
 * Usage: bench_rollup --dir DIR [--events N] [--compare N] [--txn N]
 *   --events   events stored for the size and query figures (10000000)
 *   --compare  events per throughput run, with and without rollups (1000000)
 *   --txn      events per transaction (5000, the ingest CLI's batch)
 *   --compare-only  stop after the throughput runs (for profiling)
 *   --only on|off   with --compare-only: load only that store (profile one
 *                   side; the other side's figures are then meaningless)
 *   --ndjson FILE   only this: the events of FILE into two stores, with
 *                   and without rollups (compare_ndjson)
 * Prints "key=value" lines (bench/rollup.sh turns them into the table).
 *
 * Events go straight through the store API (te_store_insert, as the writer
 * thread does) from templates: one parsed event per series, copied with a
 * new ts and fields blob, so generation costs next to nothing. The data:
 * 6 models of 3 providers (tier by model), 8 workflows, ok/error (3%):
 * 96 series; latency log-normal around a per-model median, tokens and cost
 * to match; timestamps ascending over 30 days with nanosecond jitter.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "core/event.h"
#include "core/result.h"
#include "core/time.h"
#include "store/store.h"

#define DAY_NS INT64_C(86400000000000)
#define HOUR_NS INT64_C(3600000000000)
#define NMODELS 6
#define NFLOWS 8
#define NSERIES (NMODELS * NFLOWS * 2)

static const struct {
    const char *provider, *model, *tier;
    double median_ms, usd_per_ktok;
} MODELS[NMODELS] = {
    {"anthropic", "m-large", "capable", 1800, 0.015}, {"anthropic", "m-small", "fast", 450, 0.001},
    {"openai", "gpt-a", "capable", 1500, 0.010},      {"openai", "gpt-b", "fast", 380, 0.0006},
    {"google", "g-pro", "capable", 1300, 0.007},      {"google", "g-flash", "fast", 300, 0.0004},
};
static const char *const FLOWS[NFLOWS] = {"code-review", "summarize", "chat", "extract",
                                          "classify",    "plan",      "translate", "search"};

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double unif(void)
{
    return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
    return sqrt(-2 * log(unif())) * cos(6.283185307179586 * unif());
}

static te_event_t *tmpl[NSERIES];

static void make_templates(void)
{
    char js[512];
    te_err_t err = {0};
    for (int m = 0; m < NMODELS; m++)
        for (int w = 0; w < NFLOWS; w++)
            for (int s = 0; s < 2; s++) {
                snprintf(js, sizeof(js),
                         "{\"ts\":0,\"kind\":\"llm_call\",\"source\":\"svc-a\",\"tags\":{"
                         "\"provider\":\"%s\",\"model\":\"%s\",\"tier\":\"%s\","
                         "\"workflow\":\"%s\",\"status\":\"%s\"}}",
                         MODELS[m].provider, MODELS[m].model, MODELS[m].tier, FLOWS[w],
                         s ? "error" : "ok");
                te_event_opts_t o = {0};
                if (te_event_parse(js, strlen(js), &o, &tmpl[(m * NFLOWS + w) * 2 + s], &err)) {
                    fprintf(stderr, "bench_rollup: %s\n", err.msg);
                    exit(1);
                }
            }
}

/* Fields blob (see core/event.h): sorted keys. */
static size_t put_field(unsigned char *p, const char *k, double v)
{
    size_t kl = strlen(k);
    p[0] = (unsigned char)kl;
    memcpy(p + 1, k, kl);
    memcpy(p + 1 + kl, &v, 8); /* little-endian hosts only (x86-64, arm64) */
    return 1 + kl + 8;
}

/* The i-th of n events spread over [t0, t0 + 30 days). */
static void make_event(te_event_t *ev, unsigned char *blob, int64_t t0, int64_t i, int64_t n)
{
    int m = (int)(rnd() % NMODELS), w = (int)(rnd() % NFLOWS), s = rnd() % 100 < 3;
    *ev = *tmpl[(m * NFLOWS + w) * 2 + s];
    ev->ts_ns = t0 + (int64_t)((double)i / (double)n * 30.0 * (double)DAY_NS) +
                (int64_t)(rnd() % 1000000);
    double in_tok = floor(200 + unif() * 3000), out_tok = floor(20 + unif() * 800);
    double lat = MODELS[m].median_ms * exp(0.5 * gauss()) * (s ? 3 : 1);
    size_t p = 1;
    blob[0] = 4;
    p += put_field(blob + p, "cost_usd", (in_tok + out_tok) / 1000 * MODELS[m].usd_per_ktok);
    p += put_field(blob + p, "input_tokens", in_tok);
    p += put_field(blob + p, "latency_ms", floor(lat * 10) / 10);
    p += put_field(blob + p, "output_tokens", out_tok);
    ev->fields_blob = blob;
    ev->fields_blob_len = p;
}

static void die(const char *what, const te_err_t *err)
{
    fprintf(stderr, "bench_rollup: %s: %s\n", what, err->msg);
    exit(1);
}

/* CPU seconds (user + system) the calling thread has used: the throughput
 * figures on a shared machine are noisy, CPU time much less so. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the whole process: with the rollup builder's thread
 * (store/rollup_feed.c) part of the work leaves the calling thread. */
static double proc_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double load_cpu, load_pcpu; /* CPU seconds of the last load(): thread, process */

/* Inserts events [from, to) of n into st; returns seconds spent. */
static double load(te_store_t *st, int64_t t0, int64_t from, int64_t to, int64_t n, int txn)
{
    te_err_t err = {0};
    unsigned char blob[128];
    te_event_t ev;
    int64_t start = te_time_mono_ns();
    double c0 = cpu_s(), p0 = proc_cpu_s();
    for (int64_t i = from; i < to;) {
        if (te_store_begin(st, &err) < 0)
            die("begin", &err);
        for (int k = 0; k < txn && i < to; k++, i++) {
            make_event(&ev, blob, t0, i, n);
            if (te_store_insert(st, &ev, NULL, &err) < 0)
                die("insert", &err);
        }
        if (te_store_commit(st, &err) < 0)
            die("commit", &err);
    }
    load_cpu = cpu_s() - c0;
    load_pcpu = proc_cpu_s() - p0;
    return (double)(te_time_mono_ns() - start) / 1e9;
}

static te_store_t *open_rw(const char *path)
{
    te_store_opts_t o = {.path = path};
    te_store_t *st = NULL;
    te_err_t err = {0};
    if (te_store_open(&o, &st, &err) < 0)
        die("open", &err);
    return st;
}

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static double query_ms(te_store_t *st, te_query_plan_t plan, int64_t since, int64_t until,
                       te_result_t **keep)
{
    te_agg_t *aggs = NULL;
    size_t na = 0;
    te_err_t err = {0};
    if (te_aggs_parse("p95:latency_ms", &aggs, &na, &err) < 0)
        die("aggs", &err);
    const char *group[] = {"model"};
    te_query_t q = {.kind = "llm_call", .since_ns = since, .until_ns = until, .group_by = group,
                    .ngroup = 1, .aggs = aggs, .naggs = na, .every_ns = HOUR_NS, .plan = plan};
    te_result_t *r = NULL;
    int64_t t = te_time_mono_ns();
    if (te_store_query(st, &q, &r, &err) < 0)
        die("query", &err);
    double ms = (double)(te_time_mono_ns() - t) / 1e6;
    te_aggs_free(aggs, na);
    if (keep)
        *keep = r;
    else
        te_result_free(r);
    return ms;
}

/* --ndjson FILE: the events of an NDJSON file (examples/gen.lua's realistic
 * mix: six kinds, tens of thousands of series an hour) into two stores,
 * with and without rollups. Each transaction's events are parsed first
 * (not timed), then inserted into both stores, the first one alternating;
 * only the inserts and commits are timed. Returns the exit code. */
static int compare_ndjson(const char *dir, const char *file, int txn)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "bench_rollup: cannot open %s\n", file);
        return 1;
    }
    char off_db[1024], on_db[1024];
    snprintf(off_db, sizeof(off_db), "%s/nd_off.db", dir);
    snprintf(on_db, sizeof(on_db), "%s/nd_on.db", dir);
    te_store_t *st[2] = {open_rw(off_db), open_rw(on_db)};
    te_err_t err = {0};
    if (te_store_set_rollups(st[0], false, &err) < 0)
        die("rollups off", &err);
    te_event_t **evs = calloc((size_t)txn, sizeof(*evs));
    if (!evs)
        return 1;
    double wall[2] = {0, 0}, cpu[2] = {0, 0}, pcpu[2] = {0, 0};
    int64_t events = 0, rejected = 0;
    char *line = NULL;
    size_t cap = 0;
    for (int batch = 0;; batch++) {
        int n = 0;
        ssize_t len;
        while (n < txn && (len = getline(&line, &cap, f)) > 0) {
            te_event_opts_t o = {0};
            if (te_event_parse(line, (size_t)len, &o, &evs[n], &err) == 0)
                n++;
            else
                rejected++;
        }
        if (n == 0)
            break;
        for (int k = 0; k < 2; k++) {
            int which = (batch + k) % 2;
            int64_t t = te_time_mono_ns();
            double c = cpu_s(), pc = proc_cpu_s();
            if (te_store_begin(st[which], &err) < 0)
                die("begin", &err);
            for (int i = 0; i < n; i++)
                if (te_store_insert(st[which], evs[i], NULL, &err) < 0)
                    die("insert", &err);
            if (te_store_commit(st[which], &err) < 0)
                die("commit", &err);
            cpu[which] += cpu_s() - c;
            pcpu[which] += proc_cpu_s() - pc;
            wall[which] += (double)(te_time_mono_ns() - t) / 1e9;
        }
        for (int i = 0; i < n; i++)
            te_event_free(evs[i]);
        events += n;
    }
    free(line);
    free(evs);
    fclose(f);
    te_store_close(st[0]);
    te_store_close(st[1]);
    printf("ndjson_events=%" PRId64 "\n", events);
    printf("ndjson_rejected=%" PRId64 "\n", rejected);
    printf("ndjson_off_per_s=%.0f\n", (double)events / wall[0]);
    printf("ndjson_on_per_s=%.0f\n", (double)events / wall[1]);
    printf("ndjson_loss_pct=%.1f\n", (1.0 - wall[0] / wall[1]) * 100);
    printf("ndjson_loss_cpu_pct=%.1f\n", (1.0 - cpu[0] / cpu[1]) * 100);
    printf("ndjson_loss_proc_cpu_pct=%.1f\n", (1.0 - pcpu[0] / pcpu[1]) * 100);
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int64_t events = 10000000, compare = 1000000;
    int txn = 5000;
    bool compare_only = false;
    const char *only = NULL, *ndjson = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--compare-only") == 0) {
            compare_only = true;
            continue;
        }
        if (i + 1 == argc) {
            dir = NULL;
            break;
        }
        if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--events") == 0)
            events = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--compare") == 0)
            compare = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--txn") == 0)
            txn = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--only") == 0)
            only = argv[i + 1];
        else if (strcmp(argv[i], "--ndjson") == 0)
            ndjson = argv[i + 1];
        else {
            dir = NULL; /* unknown: the usage below */
            break;
        }
        i++;
    }
    if (!dir || events < compare || compare < txn || txn < 1) {
        fprintf(stderr, "usage: bench_rollup --dir DIR [--events N] [--compare N] [--txn N]"
                        " [--compare-only [--only on|off]] [--ndjson FILE]\n");
        return 2;
    }
    if (ndjson)
        return compare_ndjson(dir, ndjson, txn);
    make_templates();
    te_err_t err = {0};
    /* the data ends now (whole days ago + 30 days) */
    int64_t t0 = (te_time_now_ns() / DAY_NS - 30) * DAY_NS + 7 * HOUR_NS + 123456789;
    char off_db[1024], on_db[1024];
    snprintf(off_db, sizeof(off_db), "%s/off.db", dir);
    snprintf(on_db, sizeof(on_db), "%s/on.db", dir);

    /* 1. throughput: the same first `compare` events, alternating quarters
     * so that neither run gets the cooler machine */
    te_store_t *off = open_rw(off_db), *on = open_rw(on_db);
    if (te_store_set_rollups(off, false, &err) < 0)
        die("rollups off", &err);
    double t_off = 0, t_on = 0, c_off = 0, c_on = 0, p_off = 0, p_on = 0;
    uint64_t seed = rng;
    int64_t part = compare / 4;
    for (int round = 0; round < 4; round++) {
        int64_t a = round * part, b = round == 3 ? compare : a + part;
        uint64_t s0 = rng;
        if (!only || strcmp(only, "on") != 0)
            t_off += load(off, t0, a, b, events, txn);
        c_off += load_cpu;
        p_off += load_pcpu;
        uint64_t s1 = rng;
        rng = s0; /* the same events again */
        if (!only || strcmp(only, "off") != 0)
            t_on += load(on, t0, a, b, events, txn);
        c_on += load_cpu;
        p_on += load_pcpu;
        if (!only && rng != s1)
            return 1;
    }
    (void)seed;
    te_store_close(off);
    printf("compare_events=%" PRId64 "\n", compare);
    printf("ingest_off_per_s=%.0f\n", (double)compare / t_off);
    printf("ingest_on_per_s=%.0f\n", (double)compare / t_on);
    /* throughput lost to rollup maintenance: 1 - on/off */
    printf("rollup_loss_pct=%.1f\n", (1.0 - t_off / t_on) * 100);
    printf("ingest_off_per_cpu_s=%.0f\n", (double)compare / c_off);
    printf("ingest_on_per_cpu_s=%.0f\n", (double)compare / c_on);
    printf("rollup_loss_cpu_pct=%.1f\n", (1.0 - c_off / c_on) * 100);
    printf("rollup_loss_proc_cpu_pct=%.1f\n", (1.0 - p_off / p_on) * 100);
    fflush(stdout);
    if (compare_only) {
        te_store_close(on);
        for (int i = 0; i < NSERIES; i++)
            te_event_free(tmpl[i]);
        return 0;
    }

    /* 2. the rest of the events, with rollups */
    double t_rest = load(on, t0, compare, events, events, txn);
    printf("events=%" PRId64 "\n", events);
    printf("load_rest_per_s=%.0f\n", (double)(events - compare) / t_rest);
    te_store_close(on);
    {
        sqlite3 *db = NULL;
        sqlite3_open(on_db, &db);
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_stmt *s = NULL;
        const char *counts =
            "SELECT (SELECT count(*) FROM rollup_1m), (SELECT count(*) FROM rollup_1h)";
        if (sqlite3_prepare_v2(db, counts, -1, &s, NULL) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            printf("rollup_1m_rows=%lld\nrollup_1h_rows=%lld\n", sqlite3_column_int64(s, 0),
                   sqlite3_column_int64(s, 1));
        sqlite3_finalize(s);
        sqlite3_close(db);
    }
    int64_t bytes = file_size(on_db);
    printf("db_bytes=%" PRId64 "\n", bytes);
    printf("bytes_per_event=%.1f\n", (double)bytes / (double)events);

    /* 3. the query, on a read-only store as the API and CLI use */
    te_store_opts_t ro = {.path = on_db, .readonly = true};
    te_store_t *rs = NULL;
    if (te_store_open(&ro, &rs, &err) < 0)
        die("open ro", &err);
    int64_t until = te_time_now_ns(), since = until - 30 * DAY_NS;
    te_result_t *ru = NULL, *rr = NULL;
    double cold = query_ms(rs, TE_PLAN_AUTO, since, until, &ru);
    double ms[7];
    for (int i = 0; i < 7; i++)
        ms[i] = query_ms(rs, TE_PLAN_AUTO, since, until, NULL);
    qsort(ms, 7, sizeof(double), cmp_d);
    printf("query_rows=%zu\n", ru->nrows);
    printf("query_first_ms=%.1f\n", cold);
    printf("query_median_ms=%.1f\n", ms[3]);
    double raw = query_ms(rs, TE_PLAN_RAW, since, until, &rr);
    printf("query_raw_ms=%.1f\n", raw);
    /* accuracy of the rollup answer against the exact one */
    double worst = 0;
    if (rr->nrows == ru->nrows) {
        for (size_t i = 0; i < rr->nrows; i++) {
            const te_val_t *a = &rr->cells[i * rr->ncols + 2], *b = &ru->cells[i * ru->ncols + 2];
            if (a->type == TE_VAL_NUM && b->type == TE_VAL_NUM && a->u.num != 0) {
                double e = fabs(a->u.num - b->u.num) / fabs(a->u.num);
                if (e > worst)
                    worst = e;
            }
        }
        printf("query_max_rel_error_pct=%.3f\n", worst * 100);
    } else {
        printf("query_max_rel_error_pct=rows-differ(%zu,%zu)\n", rr->nrows, ru->nrows);
    }
    te_result_free(ru);
    te_result_free(rr);
    te_store_close(rs);
    for (int i = 0; i < NSERIES; i++)
        te_event_free(tmpl[i]);
    return 0;
}
