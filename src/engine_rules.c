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

#include "alerts/notify.h"
#include "core/log.h"
#include "core/time.h"
#include "engine_int.h"
#include "rules/eval.h"
#include "script/reload.h"
#include "store/alerts.h"
#include "store/store.h"

typedef struct alert_rec {
    te_alert_t a;
    te_alert_transition_t t;
    struct alert_rec *next; /* in the retry list */
} alert_rec_t;

struct te_engine_rules {
    te_engine_t *e;
    te_ruleset_t *rs;
    te_reload_t *scripts;
    uv_timer_t timer;
    bool timer_on, closed;
    te_engine_done_t alert_done;   /* ud of alert batches */
    te_engine_done_t derived_done; /* ud of batches of ctx.emit events */
    te_batch_t *emitted;           /* events emitted during the current feed */
    bool feeding_derived;
    alert_rec_t *retry_head, *retry_tail; /* not yet queued (writer full) */
    te_alert_t *restore;           /* loaded at open, restored at start */
    size_t nrestore;
    bool tty;
    uint64_t emit_dropped, alert_save_failed;
    te_notifier_t **notifiers;     /* built from the config's notifier blocks */
    size_t nnotifiers;
    uint64_t notify_sent, notify_failed;
};

/* ---- alert persistence (the writer's transaction) ---- */

static int save_apply(struct te_store *st, void *ud, te_err_t *err)
{
    alert_rec_t *rec = ud;
    return te_store_alerts_save(st, &rec->a, rec->t, err);
}

static void rec_free(alert_rec_t *rec)
{
    te_alert_clear(&rec->a);
    free(rec);
}

static void alert_batch_done(te_engine_t *e, te_batch_t *b, void *arg)
{
    (void)arg;
    alert_rec_t *rec = b->apply_ud;
    if (b->rc < 0) {
        e->rules->alert_save_failed++;
        te_log(TE_LOG_ERROR, "alerts", "alert %s (%s) not saved: %s", rec->a.id, rec->a.rule,
               b->err.msg);
    }
    rec_free(rec);
    te_batch_free(b);
}

/* Queues rec in the writer; false when the writer has no room now. */
static bool submit_rec(struct te_engine_rules *R, alert_rec_t *rec)
{
    te_batch_t *b = te_batch_new(0);
    if (!b)
        return false;
    b->apply = save_apply;
    b->apply_ud = rec;
    b->done = te_engine_batch_done;
    b->ud = &R->alert_done;
    int rc = R->e->writer ? te_writer_submit(R->e->writer, b) : TE_ECLOSED;
    if (rc == 0)
        return true;
    te_batch_free(b);
    if (rc == TE_ECLOSED) {
        te_log(TE_LOG_WARN, "alerts", "alert %s (%s %s) not saved: the writer has stopped",
               rec->a.id, rec->a.rule, te_alert_transition_name(rec->t));
        rec_free(rec);
        return true; /* nothing to retry */
    }
    return false;
}

/* Submits what waited for room, in order. */
static void flush_retry(struct te_engine_rules *R)
{
    while (R->retry_head) {
        alert_rec_t *rec = R->retry_head;
        alert_rec_t *next = rec->next;
        rec->next = NULL;
        if (!submit_rec(R, rec)) {
            rec->next = next;
            return;
        }
        R->retry_head = next;
        if (!next)
            R->retry_tail = NULL;
    }
}

static void persist(struct te_engine_rules *R, const te_alert_t *a, te_alert_transition_t t)
{
    alert_rec_t *rec = calloc(1, sizeof(*rec));
    if (!rec || te_alert_copy(&rec->a, a) < 0) {
        free(rec);
        R->alert_save_failed++;
        te_log(TE_LOG_ERROR, "alerts", "alert %s (%s) not saved: out of memory", a->id, a->rule);
        return;
    }
    rec->t = t;
    flush_retry(R);
    if (!R->retry_head && submit_rec(R, rec))
        return;
    if (R->retry_tail)
        R->retry_tail->next = rec;
    else
        R->retry_head = rec;
    R->retry_tail = rec;
}

/* ---- the stdout notifier ---- */

static bool wants_stdout(const te_alert_t *a)
{
    if (a->nnotify == 0)
        return true;
    for (size_t i = 0; i < a->nnotify; i++)
        if (strcmp(a->notify[i], "stdout") == 0)
            return true;
    return false;
}

static void notify_stdout(struct te_engine_rules *R, const te_alert_t *a,
                          te_alert_transition_t t)
{
    static const char *const colour[] = {"\033[36m", "\033[33m", "\033[31m"};
    char line[4096];
    size_t n = 0;
    const char *sev = te_severity_name(a->severity);
    char word[16];
    const char *tn = te_alert_transition_name(t);
    size_t k = 0;
    for (; tn[k] && k + 1 < sizeof(word); k++)
        word[k] = (char)(tn[k] >= 'a' && tn[k] <= 'z' ? tn[k] - 'a' + 'A' : tn[k]);
    word[k] = '\0';

#define ADD(...)                                                                          \
    do {                                                                                  \
        int w_ = snprintf(line + n, sizeof(line) - n, __VA_ARGS__);                       \
        if (w_ > 0)                                                                       \
            n = n + (size_t)w_ < sizeof(line) ? n + (size_t)w_ : sizeof(line) - 1;        \
    } while (0)

    if (R->tty && (unsigned)a->severity < 3 && t != TE_ALERT_T_RESOLVED)
        ADD("%s[%s]\033[0m %s%s\033[0m %s", colour[a->severity], word, colour[a->severity], sev,
            a->rule);
    else if (R->tty)
        ADD("\033[32m[%s]\033[0m %s %s", word, sev, a->rule);
    else
        ADD("[%s] %s %s", word, sev, a->rule);
    for (size_t i = 0; i < a->ngroup; i++)
        ADD(" %s=%s", a->group_keys[i], a->group_values[i]);
    if (a->has_value)
        ADD(" value=%g", a->value);
    if (a->summary && a->summary[0])
        ADD(": %s", a->summary);
    if (a->reason && a->reason[0])
        ADD(" (%s)", a->reason);
#undef ADD
    line[n++] = '\n';
    fwrite(line, 1, n, stdout);
    fflush(stdout);
}

/* ---- configured notifiers (webhook, slack, file) ---- */

typedef struct notify_ctx {
    struct te_engine_rules *R;
    char name[64];
} notify_ctx_t;

static void notify_done(int rc, const char *msg, void *ud)
{
    notify_ctx_t *nc = ud;
    if (rc == 0) {
        nc->R->notify_sent++;
    } else {
        nc->R->notify_failed++;
        te_log(TE_LOG_WARN, "notify", "%s", msg ? msg : te_strerror(rc));
    }
    free(nc);
}

static te_notifier_t *find_notifier(struct te_engine_rules *R, const char *name)
{
    for (size_t i = 0; i < R->nnotifiers; i++)
        if (strcmp(R->notifiers[i]->name, name) == 0)
            return R->notifiers[i];
    return NULL;
}

/* Firing, repeats and resolutions go to every notifier the rule names
 * (pending does not page anyone, as in Alertmanager). */
static void notify_configured(struct te_engine_rules *R, const te_alert_t *a,
                              te_alert_transition_t t)
{
    if (t != TE_ALERT_T_FIRING && t != TE_ALERT_T_REPEAT && t != TE_ALERT_T_RESOLVED)
        return;
    const char *status = t == TE_ALERT_T_RESOLVED ? "resolved" : "firing";
    for (size_t i = 0; i < a->nnotify; i++) {
        if (strcmp(a->notify[i], "stdout") == 0)
            continue;
        te_notifier_t *n = find_notifier(R, a->notify[i]);
        if (!n) {
            te_log(TE_LOG_WARN, "notify", "rule \"%s\": no notifier \"%s\" (declare it in "
                   "telemetry.lua)", a->rule, a->notify[i]);
            continue;
        }
        notify_ctx_t *nc = calloc(1, sizeof(*nc));
        if (!nc) {
            R->notify_failed++;
            continue;
        }
        nc->R = R;
        snprintf(nc->name, sizeof(nc->name), "%s", n->name);
        if (n->send(n, a, status, notify_done, nc) < 0) {
            free(nc);
            R->notify_failed++;
            te_log(TE_LOG_WARN, "notify", "notifier \"%s\": cannot send", n->name);
        }
    }
}

static void open_notifiers(struct te_engine_rules *R)
{
    const te_config_t *cfg = R->e->cfg;
    R->notifiers = calloc(cfg->nnotifiers ? cfg->nnotifiers : 1, sizeof(*R->notifiers));
    if (!R->notifiers)
        return;
    for (size_t i = 0; i < cfg->nnotifiers; i++) {
        const te_config_notifier_t *c = &cfg->notifiers[i];
        if (c->type && strcmp(c->type, "stdout") == 0)
            continue;
        te_err_t err = {0};
        te_notifier_t *n = te_notifier_new(&R->e->loop, c, &err);
        if (!n) {
            te_log(TE_LOG_WARN, "notify", "%s; alerts for it are not delivered", err.msg);
            continue;
        }
        R->notifiers[R->nnotifiers++] = n;
    }
}

static void on_alert(void *ud, const te_alert_t *a, te_alert_transition_t t)
{
    struct te_engine_rules *R = ud;
    if (!a->id[0])
        return;
    persist(R, a, t);
    if (t != TE_ALERT_T_CLEARED && t != TE_ALERT_T_NONE && wants_stdout(a))
        notify_stdout(R, a, t);
    if (!R->closed)
        notify_configured(R, a, t);
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
    flush_retry(R);
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
    R->alert_done.e = R->derived_done.e = e;
    R->alert_done.cb = alert_batch_done;
    R->tty = isatty(STDOUT_FILENO) == 1;
    int rc = te_store_alerts_init(st, err);
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
    open_notifiers(R);
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
    int rc = te_reload_start(&e->loop, R->rs, &opts, &R->scripts, err);
    if (rc < 0)
        return rc;

    /* firing alerts survive a restart: re-attach them to their rules */
    size_t restored = 0;
    for (size_t i = 0; i < R->nrestore; i++) {
        te_alert_t *a = &R->restore[i];
        te_err_t e2;
        te_err_clear(&e2);
        if (te_ruleset_restore(R->rs, a, now, &e2) == 0) {
            restored++;
            continue;
        }
        te_log(TE_LOG_WARN, "alerts", "%s; resolving it", e2.msg);
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

struct te_reload *te_engine_rules_scripts(const te_engine_t *e)
{
    return e->rules ? e->rules->scripts : NULL;
}

void te_engine_rules_close(te_engine_t *e)
{
    struct te_engine_rules *R = e->rules;
    if (!R || R->closed)
        return;
    flush_retry(R);
    R->closed = true;
    te_reload_close(R->scripts);
    if (R->timer_on && !uv_is_closing((uv_handle_t *)&R->timer))
        uv_close((uv_handle_t *)&R->timer, NULL);
    te_batch_free(R->emitted);
    R->emitted = NULL;
    /* deliveries in flight end now ("cancelled", logged) */
    for (size_t i = 0; i < R->nnotifiers; i++)
        te_notifier_free(R->notifiers[i]);
    R->nnotifiers = 0;
}

void te_engine_rules_free(te_engine_t *e)
{
    struct te_engine_rules *R = e ? e->rules : NULL;
    if (!R)
        return;
    /* records the writer never took (it stopped) */
    while (R->retry_head) {
        alert_rec_t *next = R->retry_head->next;
        rec_free(R->retry_head);
        R->retry_head = next;
    }
    for (size_t i = 0; i < R->nnotifiers; i++) /* close was never called */
        te_notifier_free(R->notifiers[i]);
    free(R->notifiers);
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
    out->notify_sent = R->notify_sent;
    out->notify_failed = R->notify_failed;
    out->reloads = te_reload_count(R->scripts);
    out->load_failures = te_reload_failures(R->scripts);
}
