/*
 * engine_rules.c - the rules side of the engine (see engine_rules.h).
 *
 * THREAD: loop; save_apply runs on the writer thread and touches only its
 * own record.
 *
 * Alert transitions: each one is copied into a record and submitted as a
 * batch with no events whose apply hook saves the alert row and its
 * history row inside the writer's transaction (SQLite never runs on the
 * loop). The stdout notifier prints one line per notified transition.
 *
 * Duplicates: the writer frees an idempotent re-send's event and leaves
 * NULL in its slot, so rules count each stored event once, across restarts.
 */
#include "engine_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_alerts.h"
#include "core/log.h"
#include "core/time.h"
#include "engine_detect.h"
#include "engine_int.h"
#include "rules/eval.h"
#include "script/reload.h"
#include "store/alerts.h"
#include "store/store.h"

struct te_engine_rules {
    te_engine_t *e;
    te_ruleset_t *rs;
    te_reload_t *scripts;
    uv_timer_t timer;
    bool timer_on, closed;
    te_engine_done_t derived_done; /* ud of batches of ctx.emit events */
    te_batch_t *emitted;           /* events emitted during the current feed */
    bool feeding_derived;
    te_alert_t *restore;           /* loaded at open, restored at start */
    size_t nrestore;
    uint64_t emit_dropped;
    te_engine_alerts_t *alerts;    /* engine_alerts.c: policy, outbox, notifiers */
    te_engine_detect_t *detect;    /* engine_detect.c: detector state persistence */
};

static void on_alert(void *ud, const te_alert_t *a, te_alert_transition_t t)
{
    struct te_engine_rules *R = ud;
    te_engine_alerts_transition(R->alerts, a, t);
}

/* ---- derived events (ctx.emit) ---- */

static int on_emit(void *ud, te_event_t *ev)
{
    struct te_engine_rules *R = ud;
    /* one level only: an event derived from a derived event could loop */
    if (R->feeding_derived || R->closed || !R->e->writer) {
        R->emit_dropped++;
        te_event_free(ev);
        return 1;
    }
    if (!R->emitted && !(R->emitted = te_batch_new(16))) {
        te_event_free(ev);
        return 1;
    }
    return te_batch_take(R->emitted, ev) < 0 ? 1 : 0;
}

static void submit_emitted(struct te_engine_rules *R)
{
    te_batch_t *b = R->emitted;
    R->emitted = NULL;
    if (!b)
        return;
    b->done = te_engine_batch_done;
    b->ud = &R->derived_done;
    if (!R->e->writer || te_writer_submit(R->e->writer, b) < 0) {
        R->emit_dropped += b->n;
        te_log(TE_LOG_WARN, "rules", "%zu derived events dropped: the pipeline is full", b->n);
        te_batch_free(b);
    }
}

/* ---- the tick timer ---- */

static void on_timer(uv_timer_t *t);

static void rearm(struct te_engine_rules *R)
{
    if (!R->timer_on || R->closed)
        return;
    int64_t next = te_ruleset_next_tick(R->rs);
    if (next == INT64_MAX) {
        uv_timer_stop(&R->timer);
        return;
    }
    int64_t now = te_time_now_ns();
    uint64_t ms = next <= now ? 0 : (uint64_t)((next - now + TE_NS_PER_MS - 1) / TE_NS_PER_MS);
    uv_timer_start(&R->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct te_engine_rules *R = t->data;
    int64_t now = te_time_now_ns();
    te_ruleset_tick(R->rs, now);
    /* a timer that fired a hair early (loop time is cached) must not spin */
    int64_t next = te_ruleset_next_tick(R->rs);
    if (next != INT64_MAX && next <= now)
        uv_timer_start(&R->timer, on_timer, 1, 0);
    else
        rearm(R);
}

static void on_scripts_change(void *ud)
{
    rearm(ud);
}

/* ---- feeding committed events ---- */

void te_engine_rules_batch(te_engine_t *e, const te_batch_t *b)
{
    struct te_engine_rules *R = e->rules;
    if (!R || !R->rs || R->closed)
        return;
    if (b->rc != 0 || b->n == 0)
        return;
    int64_t now = te_time_now_ns();
    R->feeding_derived = b->ud == &R->derived_done;
    for (size_t i = 0; i < b->n; i++)
        if (b->events[i]) /* NULL: an idempotent re-send, already counted */
            te_ruleset_feed(R->rs, b->events[i], now);
    R->feeding_derived = false;
    submit_emitted(R);
    rearm(R);
}

/* ---- start and stop ---- */

static int collect_alert(void *ud, const te_alert_t *a)
{
    struct te_engine_rules *R = ud;
    te_alert_t *v = realloc(R->restore, (R->nrestore + 1) * sizeof(*v));
    if (!v)
        return TE_ENOMEM;
    R->restore = v;
    te_alert_init(&v[R->nrestore]);
    if (te_alert_copy(&v[R->nrestore], a) < 0)
        return TE_ENOMEM;
    R->nrestore++;
    return 0;
}

int te_engine_rules_open(te_engine_t *e, struct te_store *st, te_err_t *err)
{
    struct te_engine_rules *R = calloc(1, sizeof(*R));
    if (!R)
        return te_err_set(err, TE_ENOMEM, "rules: out of memory");
    e->rules = R;
    R->e = e;
    R->derived_done.e = e;
    int rc = te_store_alerts_init(st, err);
    if (rc == 0)
        rc = te_engine_alerts_open(e, st, &R->alerts, err);
    if (rc == 0)
        rc = te_engine_detect_open(e, st, &R->detect, err);
    if (rc < 0)
        return rc;
    return te_store_alerts_load_active(st, collect_alert, R, err);
}

int te_engine_rules_start(te_engine_t *e, te_err_t *err)
{
    struct te_engine_rules *R = e->rules;
    int64_t now = te_time_now_ns();
    te_ruleset_opts_t ro = {
        .id_seed = (uint64_t)now ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)R,
        .on_alert = on_alert,
        .alert_ud = R,
        .on_emit = on_emit,
        .emit_ud = R,
    };
    int rc = te_engine_alerts_start(R->alerts, err);
    if (rc < 0)
        return rc;
    R->rs = te_ruleset_new(&ro, err);
    if (!R->rs)
        return err ? err->code : TE_ENOMEM;
    uv_timer_init(&e->loop, &R->timer);
    R->timer.data = R;
    uv_unref((uv_handle_t *)&R->timer);
    R->timer_on = true;

    te_script_limits_t limits = {.mem_bytes = e->cfg->script_mem_bytes,
                                 .max_steps = (uint64_t)e->cfg->script_max_steps,
                                 .max_call_ns = e->cfg->script_call_ns};
    te_reload_opts_t opts = {.scripts_dir = e->cfg->scripts_dir,
                             .limits = &limits,
                             .watch = true,
                             .on_change = on_scripts_change,
                             .ud = R};
    rc = te_reload_start(&e->loop, R->rs, &opts, &R->scripts, err);
    if (rc < 0)
        return rc;

    /* firing alerts survive a restart: re-attach them to their rules */
    size_t restored = 0;
    for (size_t i = 0; i < R->nrestore; i++) {
        te_alert_t *a = &R->restore[i];
        te_err_t e2;
        te_err_clear(&e2);
        if (te_ruleset_restore(R->rs, a, now, &e2) == 0) {
            te_engine_alerts_restored(R->alerts, a);
            restored++;
            continue;
        }
        te_log(TE_LOG_WARN, "alerts", "%s; resolving it", e2.msg);
        te_engine_alerts_restored(R->alerts, a);
        te_alert_transition_t t = te_alert_force_resolve(a, "rule removed", now);
        if (t != TE_ALERT_T_NONE)
            on_alert(R, a, t);
    }
    if (R->nrestore)
        te_log(TE_LOG_INFO, "alerts", "restored %zu of %zu active alerts", restored,
               R->nrestore);
    for (size_t i = 0; i < R->nrestore; i++)
        te_alert_clear(&R->restore[i]);
    free(R->restore);
    R->restore = NULL;
    R->nrestore = 0;
    te_engine_detect_start(R->detect, R->rs);
    rearm(R);
    return 0;
}

int te_engine_rules_reload(te_engine_t *e, void (*cb)(void *ud), void *ud)
{
    struct te_engine_rules *R = e->rules;
    if (!R || !R->scripts || R->closed)
        return TE_ECLOSED;
    return te_reload_request(R->scripts, cb, ud);
}

struct te_ruleset *te_engine_rules_set(const te_engine_t *e)
{
    return e->rules ? e->rules->rs : NULL;
}

te_engine_alerts_t *te_engine_rules_alerts(const te_engine_t *e)
{
    return e->rules ? e->rules->alerts : NULL;
}

struct te_reload *te_engine_rules_scripts(const te_engine_t *e)
{
    return e->rules ? e->rules->scripts : NULL;
}

void te_engine_rules_close(te_engine_t *e)
{
    struct te_engine_rules *R = e->rules;
    if (!R || R->closed)
        return;
    R->closed = true;
    te_engine_detect_close(&R->detect); /* a last save, before the writer drains */
    te_reload_close(R->scripts);
    if (R->timer_on && !uv_is_closing((uv_handle_t *)&R->timer))
        uv_close((uv_handle_t *)&R->timer, NULL);
    te_batch_free(R->emitted);
    R->emitted = NULL;
    /* deliveries in flight end now; their rows stay pending for the next start */
    te_engine_alerts_close(R->alerts);
}

void te_engine_rules_free(te_engine_t *e)
{
    struct te_engine_rules *R = e ? e->rules : NULL;
    if (!R)
        return;
    te_engine_alerts_free(R->alerts);
    te_ruleset_free(R->rs);
    te_reload_free(R->scripts);
    for (size_t i = 0; i < R->nrestore; i++)
        te_alert_clear(&R->restore[i]);
    free(R->restore);
    free(R);
    e->rules = NULL;
}

void te_engine_rules_counts(const te_engine_t *e, te_engine_rules_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    const struct te_engine_rules *R = e->rules;
    if (!R || !R->rs || !R->scripts)
        return;
    size_t n = 0;
    const te_reload_file_t *files = te_reload_files(R->scripts, &n);
    out->files = n;
    for (size_t i = 0; i < n; i++) {
        if (files[i].failed)
            out->file_errors++;
        if (files[i].live && files[i].live->status == TE_SCRIPT_DISABLED)
            out->disabled++;
    }
    te_rule_status_t st[64];
    size_t total = te_ruleset_status(R->rs, NULL, st, 64);
    out->rules = total;
    if (total > 64) { /* rare: count errors over every rule */
        te_rule_status_t *all = malloc(total * sizeof(*all));
        if (all) {
            te_ruleset_status(R->rs, NULL, all, total);
            for (size_t i = 0; i < total; i++)
                out->rule_errors += all[i].errors;
            free(all);
        }
    } else {
        for (size_t i = 0; i < total; i++)
            out->rule_errors += st[i].errors;
    }
    out->groups_dropped = te_ruleset_groups_dropped(R->rs);
    te_engine_alerts_counts_t ac;
    te_engine_alerts_counts(R->alerts, &ac);
    out->notify_sent = ac.notify_sent;
    out->notify_failed = ac.notify_failed;
    out->reloads = te_reload_count(R->scripts);
    out->load_failures = te_reload_failures(R->scripts);
}
