/*
 * engine_detect.c - detector state persistence (see engine_detect.h).
 *
 * THREAD: loop; save_apply runs on the writer thread and touches only its
 * own job.
 *
 * A save is a snapshot: every detector group's state is copied into a job
 * on the loop (te_ruleset_detect_snapshot; Lua method tables are encoded
 * there, in their own state) and submitted as an event-less batch whose
 * apply hook upserts the rows inside the writer's transaction, like alert
 * transitions (engine_rules.c). One save is in flight at a time; a job owns
 * its own completion record, so it may outlive the te_engine_detect_t.
 */
#include "engine_detect.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/time.h"
#include "engine_int.h"
#include "rules/eval.h"
#include "store/detect_state.h"

#define SAVE_EVERY_MS 60000u
#define STALE_NS (INT64_C(8) * 86400 * 1000000000) /* rows not refreshed for 8 days */

typedef struct row {
    char *detector;
    char *key;
    size_t keylen;
    uint64_t sig;
    int64_t seen_ns;
    unsigned char *state;
    size_t len;
} row_t;

typedef struct rows {
    row_t *v;
    size_t n, cap;
} rows_t;

typedef struct save_job {
    te_engine_done_t done;   /* b->ud: outlives D */
    rows_t rows;
    int64_t now_ns;
    bool *in_flight;         /* D's flag, NULL once D is gone */
} save_job_t;

struct te_engine_detect {
    te_engine_t *e;
    te_ruleset_t *rs;
    uv_timer_t timer;
    bool timer_on;
    bool in_flight;
    save_job_t *job;         /* the save in flight, if any */
    rows_t loaded;           /* from open until start */
};

static void rows_free(rows_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].detector);
        free(r->v[i].key);
        free(r->v[i].state);
    }
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static int rows_add(rows_t *r, const char *detector, const char *key, size_t keylen, uint64_t sig,
                    int64_t seen_ns, const unsigned char *state, size_t len)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        row_t *v = realloc(r->v, cap * sizeof(*v));
        if (!v)
            return TE_ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    row_t *w = &r->v[r->n];
    size_t dl = strlen(detector) + 1;
    w->detector = malloc(dl);
    w->key = malloc(keylen ? keylen : 1);
    w->state = malloc(len ? len : 1);
    if (!w->detector || !w->key || !w->state) {
        free(w->detector);
        free(w->key);
        free(w->state);
        return TE_ENOMEM;
    }
    memcpy(w->detector, detector, dl);
    memcpy(w->key, key, keylen);
    memcpy(w->state, state, len);
    w->keylen = keylen;
    w->sig = sig;
    w->seen_ns = seen_ns;
    w->len = len;
    r->n++;
    return 0;
}

/* ---- open: read the table ---- */

static int collect(void *ud, const te_store_detect_row_t *row)
{
    return rows_add(ud, row->detector, row->group_key, row->group_key_len, row->sig,
                    row->seen_ns, row->state, row->state_len);
}

int te_engine_detect_open(te_engine_t *e, struct te_store *st, te_engine_detect_t **out,
                          te_err_t *err)
{
    *out = NULL;
    te_engine_detect_t *D = calloc(1, sizeof(*D));
    if (!D)
        return te_err_set(err, TE_ENOMEM, "detectors: out of memory");
    D->e = e;
    int rc = te_store_detect_load(st, collect, &D->loaded, err);
    if (rc) {
        if (rc == TE_ENOMEM)
            te_err_set(err, TE_ENOMEM, "detectors: out of memory loading their state");
        rows_free(&D->loaded);
        free(D);
        return rc;
    }
    *out = D;
    return 0;
}

/* ---- saving ---- */

static int save_apply(struct te_store *st, void *ud, te_err_t *err)
{
    save_job_t *job = ud;
    te_store_detect_row_t *rows = calloc(job->rows.n ? job->rows.n : 1, sizeof(*rows));
    if (!rows)
        return te_err_set(err, TE_ENOMEM, "detectors: out of memory saving their state");
    for (size_t i = 0; i < job->rows.n; i++) {
        const row_t *r = &job->rows.v[i];
        rows[i] = (te_store_detect_row_t){r->detector, r->key, r->keylen, r->sig, r->seen_ns,
                                          r->state, r->len};
    }
    int rc = te_store_detect_save(st, rows, job->rows.n, job->now_ns, job->now_ns - STALE_NS,
                                  err);
    free(rows);
    return rc;
}

static void save_done(te_engine_t *e, te_batch_t *b, void *arg)
{
    (void)e;
    save_job_t *job = arg;
    if (b->rc < 0)
        te_log(TE_LOG_ERROR, "rules", "detector state not saved: %s", b->err.msg);
    if (job->in_flight)
        *job->in_flight = false;
    rows_free(&job->rows);
    free(job);
    te_batch_free(b);
}

static int snap(void *ud, const te_detect_state_t *s)
{
    return rows_add(ud, s->rule, s->key, s->keylen, s->sig, s->seen_ns, s->blob, s->bloblen);
}

static void save_now(te_engine_detect_t *D)
{
    if (!D->rs || D->in_flight || !D->e->writer)
        return;
    save_job_t *job = calloc(1, sizeof(*job));
    te_batch_t *b = job ? te_batch_new(0) : NULL;
    if (!b || te_ruleset_detect_snapshot(D->rs, snap, &job->rows) != 0) {
        te_log(TE_LOG_WARN, "rules", "detector state not saved: out of memory");
        goto drop;
    }
    if (job->rows.n == 0)
        goto drop;
    job->now_ns = te_time_now_ns();
    job->done.e = D->e;
    job->done.cb = save_done;
    job->done.arg = job;
    job->in_flight = &D->in_flight;
    b->apply = save_apply;
    b->apply_ud = job;
    b->done = te_engine_batch_done;
    b->ud = &job->done;
    if (te_writer_submit(D->e->writer, b) != 0) /* full: the next tick tries again */
        goto drop;
    D->in_flight = true;
    D->job = job;
    return;
drop:
    if (job)
        rows_free(&job->rows);
    free(job);
    te_batch_free(b);
}

static void on_timer(uv_timer_t *t)
{
    te_engine_detect_t *D = t->data;
    if (!D->in_flight)
        D->job = NULL;
    save_now(D);
}

/* ---- start and close ---- */

void te_engine_detect_start(te_engine_detect_t *D, te_ruleset_t *rs)
{
    if (!D)
        return;
    D->rs = rs;
    int64_t now = te_time_now_ns();
    size_t restored = 0;
    for (size_t i = 0; i < D->loaded.n; i++) {
        const row_t *r = &D->loaded.v[i];
        te_detect_state_t s = {r->detector, r->key, r->keylen, r->sig, r->seen_ns, r->state,
                               r->len};
        te_err_t err;
        te_err_clear(&err);
        if (te_ruleset_detect_restore(rs, &s, now, &err) == 0)
            restored++;
    }
    if (D->loaded.n)
        te_log(TE_LOG_INFO, "rules", "restored the state of %zu of %zu detector groups", restored,
               D->loaded.n);
    rows_free(&D->loaded);
    uv_timer_init(&D->e->loop, &D->timer);
    D->timer.data = D;
    uv_unref((uv_handle_t *)&D->timer);
    uv_timer_start(&D->timer, on_timer, SAVE_EVERY_MS, SAVE_EVERY_MS);
    D->timer_on = true;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void te_engine_detect_close(te_engine_detect_t **pD)
{
    te_engine_detect_t *D = pD ? *pD : NULL;
    if (!D)
        return;
    *pD = NULL;
    if (D->in_flight && D->job) /* the last periodic save still runs: let it finish alone */
        D->job->in_flight = NULL;
    D->in_flight = false;
    save_now(D);
    if (D->in_flight && D->job)
        D->job->in_flight = NULL;
    rows_free(&D->loaded);
    if (D->timer_on) {
        uv_timer_stop(&D->timer);
        uv_close((uv_handle_t *)&D->timer, on_closed);
        return;
    }
    free(D);
}
