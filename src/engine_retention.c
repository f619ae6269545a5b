/*
 * engine_retention.c - the hourly retention pass of `serve`.
 *
 * THREAD: loop for the timer and the bookkeeping; the pass runs on a libuv
 * pool thread with its own read-write connection.
 *
 * The one idea: retention must never stall ingest. The pass opens its own
 * connection on a pool thread and works through te_store_archive and
 * te_store_rollup_expire, whose transactions are short chunks (a few
 * milliseconds of write lock each); the writer thread's BEGIN IMMEDIATE
 * simply waits that long at worst. One pass at a time: a tick that finds a
 * pass still running skips. On shutdown the pass is asked to stop after
 * its chunk (the stop flag), so the engine does not wait for a whole
 * archive to finish.
 *
 * Settings (SPEC 6.0): storage.retention.raw (archive to DATA/archive, then
 * delete), ["1m"] and ["1h"] (delete rollup rows whose bucket is older),
 * and kinds = { KIND = { raw = .., ["1m"] = .., ["1h"] = .. } }, whose ages
 * win for that kind (te_store_retention applies them kind by kind).
 * A setting left out or "forever" keeps that data; with none set no timer
 * runs.
 * The first pass runs one second after start-up, then every hour.
 */
#include "engine_retention.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/time.h"
#include "engine_int.h"
#include "store/retention.h"
#include "store/store.h"

#define FIRST_MS 1000
#define EVERY_MS (3600 * 1000)

typedef struct te_engine_retention {
    te_engine_t *e;
    uv_timer_t timer;
    bool timer_open;
    uv_work_t work;
    bool running;           /* a pass is on the pool */
    int stop;               /* atomically read by the pass */
    bool closed;
    te_retention_policy_t policy; /* its kinds[] and their names are owned here */
    char db_path[4096];
    char archive_dir[4096];
    /* result of the last pass (written by the pool thread, read after) */
    int rc;
    te_err_t err;
    te_retention_stats_t stats;
} te_engine_retention_t;

static void pass_work(uv_work_t *w)
{
    te_engine_retention_t *r = w->data;
    te_store_t *st = NULL;
    te_store_opts_t so = {.path = r->db_path,
                          .durability = (te_durability_t)r->e->cfg->durability};
    memset(&r->err, 0, sizeof(r->err));
    memset(&r->stats, 0, sizeof(r->stats));
    r->rc = te_store_open(&so, &st, &r->err);
    if (r->rc == 0)
        r->rc = te_store_retention(st, &r->policy, te_time_now_ns(), &r->stats, &r->err);
    te_store_close(st);
}

static void pass_after(uv_work_t *w, int status)
{
    te_engine_retention_t *r = w->data;
    r->running = false;
    if (status < 0)
        return; /* cancelled before it ran */
    if (r->rc < 0)
        te_log(TE_LOG_WARN, "retention", "pass failed: %s (retried in an hour)", r->err.msg);
    else if (r->stats.events > 0 || r->stats.rollup_rows > 0)
        te_log(TE_LOG_INFO, "retention",
               "archived and deleted %lld raw events to %s; deleted %lld rollup rows",
               (long long)r->stats.events, r->archive_dir, (long long)r->stats.rollup_rows);
}

static void on_timer(uv_timer_t *t)
{
    te_engine_retention_t *r = t->data;
    if (r->running || r->closed)
        return;
    r->running = true;
    r->work.data = r;
    if (uv_queue_work(&r->e->loop, &r->work, pass_work, pass_after) < 0) {
        r->running = false;
        te_log(TE_LOG_WARN, "retention", "cannot queue the retention pass");
    }
}


int te_engine_retention_start(te_engine_t *e, te_err_t *err)
{
    const te_config_t *cfg = e->cfg;
    te_engine_retention_t *r = calloc(1, sizeof(*r));
    if (!r)
        return te_err_set(err, TE_ENOMEM, "retention: out of memory");
    r->e = e;
    e->retention = r;
    te_retention_policy_t *p = &r->policy;
    p->raw_ns = cfg->retention_raw_ns;
    p->m1_ns = cfg->retention_1m_ns;
    p->h1_ns = cfg->retention_1h_ns;
    bool any = p->raw_ns > 0 || p->m1_ns > 0 || p->h1_ns > 0;
    if (cfg->nretention_kinds > 0) {
        te_retention_kind_t *k = calloc(cfg->nretention_kinds, sizeof(*k));
        if (!k)
            return te_err_set(err, TE_ENOMEM, "retention: out of memory");
        p->kinds = k;
        for (size_t i = 0; i < cfg->nretention_kinds; i++) {
            const te_config_retention_kind_t *c = &cfg->retention_kinds[i];
            k[i].kind = strdup(c->kind);
            if (!k[i].kind)
                return te_err_set(err, TE_ENOMEM, "retention: out of memory");
            p->nkinds = i + 1;
            k[i].raw_ns = c->raw_ns;
            k[i].m1_ns = c->m1_ns;
            k[i].h1_ns = c->h1_ns;
            any = any || c->raw_ns > 0 || c->m1_ns > 0 || c->h1_ns > 0;
        }
    }
    if (!any)
        return 0; /* keep everything */
    snprintf(r->db_path, sizeof(r->db_path), "%s", cfg->db_path);
    snprintf(r->archive_dir, sizeof(r->archive_dir), "%s/archive", cfg->data_dir);
    p->archive_dir = r->archive_dir;
    p->stop = &r->stop;
    int uvr = uv_timer_init(&e->loop, &r->timer);
    if (uvr == 0) {
        r->timer_open = true;
        r->timer.data = r;
        uvr = uv_timer_start(&r->timer, on_timer, FIRST_MS, EVERY_MS);
    }
    if (uvr < 0)
        return te_err_set(err, TE_EIO, "retention: cannot start the timer: %s", uv_strerror(uvr));
    te_log(TE_LOG_INFO, "retention",
           "raw %s, 1m %s, 1h %s, %zu kinds of their own (archive: %s)",
           cfg->retention_raw ? cfg->retention_raw : "forever",
           cfg->retention_1m ? cfg->retention_1m : "forever",
           cfg->retention_1h ? cfg->retention_1h : "forever", p->nkinds, r->archive_dir);
    return 0;
}

void te_engine_retention_close(te_engine_t *e)
{
    te_engine_retention_t *r = e ? e->retention : NULL;
    if (!r || r->closed)
        return;
    r->closed = true;
    __atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
    if (r->timer_open && !uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, NULL);
}

void te_engine_retention_free(te_engine_t *e)
{
    if (!e || !e->retention)
        return;
    te_retention_policy_t *p = &e->retention->policy;
    for (size_t i = 0; i < p->nkinds; i++)
        free((char *)p->kinds[i].kind);
    free((void *)p->kinds);
    free(e->retention);
    e->retention = NULL;
}
