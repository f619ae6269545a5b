/*
 * engine_alerts.c - policy, outbox, dispatcher and operator actions of a
 * running engine (see engine_alerts.h).
 *
 * THREAD: loop; every job's apply runs on the writer thread and touches
 * only its own job.
 *
 * Everything that writes goes through one kind of object, a job: an
 * event-less writer batch whose apply hook does the SQL and whose done
 * callback continues on the loop. A job the writer has no room for waits
 * in a FIFO and is submitted again at the next transition or poll.
 */
#include "engine_alerts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alerts/notify.h"
#include "alerts/policy.h"
#include "core/log.h"
#include "core/time.h"
#include "engine_int.h"
#include "store/alerts.h"
#include "store/alerts_life.h"
#include "store/store.h"

#define MAX_SIL_ACTIONS 256

typedef struct job job_t;
typedef int (*job_apply_fn)(te_store_t *st, job_t *j, te_err_t *err);
typedef void (*job_done_fn)(te_engine_alerts_t *A, job_t *j, int rc, const char *msg);

typedef struct orow { /* one outbox row */
    int64_t id;
    char *notifier, *payload, *reason, *last_error;
    const char *status, *state; /* static */
} orow_t;

typedef struct upd {
    int64_t id, attempts;
    const char *state;
    char *last_error;
} upd_t;

typedef struct action {
    char kind[16];
    char target[TE_ALERT_ID_LEN + 1];
    char *by, *comment;
    int64_t at_ns;
    te_silence_t sil; /* kind "silence": the row, read in the same job */
    bool has_sil;
} action_t;

struct job {
    job_apply_fn apply;
    job_done_fn done;
    te_alert_t a;          /* transition / ack */
    te_alert_transition_t t;
    bool save_alert;
    orow_t *rows;
    size_t nrows;
    upd_t *upd;
    size_t nupd;
    action_t *act;         /* poll */
    size_t nact;
    int64_t after_seq, last_seq;
    te_silence_t sil;      /* silence */
    char id[TE_ALERT_ID_LEN + 1];
    char *by, *comment;
    int64_t at_ns;
    te_engine_action_cb cb;
    void *cb_ud;
    job_t **kids;          /* a chain: transitions of one loop turn, one batch */
    size_t nkids, capkids;
    job_t *next;
};

/* Transitions saved in one batch at most (a tick that fires 10,000 alerts
 * makes 40 batches, not 10,000). */
#define CHAIN_MAX 256

struct te_engine_alerts {
    te_engine_t *e;
    te_policy_t *policy;
    te_dispatch_t *disp;
    te_notifier_t **notifiers;
    te_group_opts_t *groups;
    size_t nnotifiers;
    char **broken, **broken_err; /* notifiers that could not be built */
    size_t nbroken;
    int64_t next_id;      /* outbox ids: unique and increasing */
    int64_t action_seq;   /* journal rows applied up to here */
    int64_t poll_ns;
    uv_timer_t poll, flush;
    uv_idle_t chain_idle; /* submits the open chain before the loop polls again */
    job_t *chain;           /* transitions of this loop turn, not yet submitted */
    bool timers_on, closed, polling;
    te_engine_done_t done;
    job_t *wait_head, *wait_tail;
    upd_t *upd;           /* outbox updates waiting for the flush timer */
    size_t nupd, capupd;
    orow_t *restore;      /* pending rows read at open */
    size_t nrestore;
    bool tty;
    uint64_t sent, failed, held, save_failed;
    size_t pending;
};

/* ---- jobs ---- */

static void orow_clear(orow_t *r)
{
    free(r->notifier);
    free(r->payload);
    free(r->reason);
    free(r->last_error);
}

static void action_clear(action_t *a)
{
    free(a->by);
    free(a->comment);
    if (a->has_sil)
        te_silence_clear(&a->sil);
}

static void job_free(job_t *j)
{
    if (!j)
        return;
    te_alert_clear(&j->a);
    for (size_t i = 0; i < j->nrows; i++)
        orow_clear(&j->rows[i]);
    free(j->rows);
    for (size_t i = 0; i < j->nupd; i++)
        free(j->upd[i].last_error);
    free(j->upd);
    for (size_t i = 0; i < j->nact; i++)
        action_clear(&j->act[i]);
    free(j->act);
    te_silence_clear(&j->sil);
    free(j->by);
    free(j->comment);
    for (size_t i = 0; i < j->nkids; i++)
        job_free(j->kids[i]);
    free(j->kids);
    free(j);
}

static job_t *job_new(job_apply_fn apply, job_done_fn done)
{
    job_t *j = calloc(1, sizeof(*j));
    if (j) {
        te_alert_init(&j->a);
        j->apply = apply;
        j->done = done;
    }
    return j;
}

static int job_apply(struct te_store *st, void *ud, te_err_t *err)
{
    job_t *j = ud;
    return j->apply(st, j, err);
}

static void job_batch_done(te_engine_t *e, te_batch_t *b, void *arg)
{
    te_engine_alerts_t *A = arg;
    (void)e;
    job_t *j = b->apply_ud;
    if (j->done)
        j->done(A, j, b->rc, b->rc < 0 ? b->err.msg : NULL);
    job_free(j);
    te_batch_free(b);
}

/* 0: taken by the writer; TE_EFULL: no room now; TE_ECLOSED: stopped. */
static int try_submit(te_engine_alerts_t *A, job_t *j)
{
    te_batch_t *b = te_batch_new(0);
    if (!b)
        return TE_EFULL;
    b->apply = job_apply;
    b->apply_ud = j;
    b->done = te_engine_batch_done;
    b->ud = &A->done;
    int rc = A->e->writer ? te_writer_submit(A->e->writer, b) : TE_ECLOSED;
    if (rc == 0)
        return 0;
    te_batch_free(b);
    return rc == TE_ECLOSED ? TE_ECLOSED : TE_EFULL;
}

static void closed_job(te_engine_alerts_t *A, job_t *j)
{
    if (j->done)
        j->done(A, j, TE_ECLOSED, "the engine is stopping");
    job_free(j);
}

static void flush_waiting(te_engine_alerts_t *A)
{
    while (A->wait_head) {
        job_t *j = A->wait_head;
        job_t *next = j->next;
        j->next = NULL;
        int rc = try_submit(A, j);
        if (rc == TE_EFULL) {
            j->next = next;
            return;
        }
        if (rc == TE_ECLOSED)
            closed_job(A, j);
        A->wait_head = next;
        if (!next)
            A->wait_tail = NULL;
    }
}

static void chain_close(te_engine_alerts_t *A);

static void submit(te_engine_alerts_t *A, job_t *j)
{
    chain_close(A); /* jobs reach the writer in the order they were made */
    flush_waiting(A);
    if (!A->wait_head) {
        int rc = try_submit(A, j);
        if (rc == 0)
            return;
        if (rc == TE_ECLOSED) {
            closed_job(A, j);
            return;
        }
    }
    if (A->wait_tail)
        A->wait_tail->next = j;
    else
        A->wait_head = j;
    A->wait_tail = j;
}

/* ---- chains: the transitions of one loop turn share a batch ---- */

static int chain_apply(te_store_t *st, job_t *j, te_err_t *err)
{
    for (size_t i = 0; i < j->nkids; i++) {
        int rc = j->kids[i]->apply(st, j->kids[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void chain_done(te_engine_alerts_t *A, job_t *j, int rc, const char *msg)
{
    for (size_t i = 0; i < j->nkids; i++) {
        if (j->kids[i]->done)
            j->kids[i]->done(A, j->kids[i], rc, msg);
        job_free(j->kids[i]);
    }
    j->nkids = 0;
}

/* Submits the open chain, if any. */
static void chain_close(te_engine_alerts_t *A)
{
    job_t *c = A->chain;
    if (!c)
        return;
    A->chain = NULL;
    uv_idle_stop(&A->chain_idle);
    submit(A, c);
}

static void on_chain_idle(uv_idle_t *h)
{
    chain_close(h->data);
}

/* Submits a transition's job: into the open chain (opened, and closed
 * after this loop turn, as needed) so a tick that changes many alerts
 * writes them in a few transactions and holds a few batches, not one
 * each. Order with other jobs is kept: submit() closes the chain first. */
static void submit_chained(te_engine_alerts_t *A, job_t *j)
{
    if (A->closed || !A->timers_on) {
        submit(A, j);
        return;
    }
    if (!A->chain) {
        A->chain = job_new(chain_apply, chain_done);
        if (!A->chain) {
            submit(A, j);
            return;
        }
        uv_idle_start(&A->chain_idle, on_chain_idle);
    }
    job_t *c = A->chain;
    if (c->nkids == c->capkids) {
        size_t cap = c->capkids ? c->capkids * 2 : 16;
        job_t **k = realloc(c->kids, cap * sizeof(*k));
        if (!k) {
            submit(A, j); /* closes the chain, then j alone */
            return;
        }
        c->kids = k;
        c->capkids = cap;
    }
    c->kids[c->nkids++] = j;
    if (c->nkids >= CHAIN_MAX)
        chain_close(A);
}

/* ---- the stdout notifier ---- */

static bool names_notifier(const te_alert_t *a, const char *name)
{
    for (size_t i = 0; i < a->nnotify; i++)
        if (strcmp(a->notify[i], name) == 0)
            return true;
    return false;
}

static void print_stdout(te_engine_alerts_t *A, const te_alert_t *a, const char *word_lc)
{
    static const char *const colour[] = {"\033[36m", "\033[33m", "\033[31m"};
    char line[4096], word[16];
    size_t n = 0, k = 0;
    const char *sev = te_severity_name(a->severity);
    for (; word_lc[k] && k + 1 < sizeof(word); k++)
        word[k] = (char)(word_lc[k] >= 'a' && word_lc[k] <= 'z' ? word_lc[k] - 'a' + 'A'
                                                                : word_lc[k]);
    word[k] = '\0';
    bool resolved = strcmp(word_lc, "resolved") == 0;
#define ADD(...)                                                                          \
    do {                                                                                  \
        int w_ = snprintf(line + n, sizeof(line) - n, __VA_ARGS__);                       \
        if (w_ > 0)                                                                       \
            n = n + (size_t)w_ < sizeof(line) ? n + (size_t)w_ : sizeof(line) - 1;        \
    } while (0)
    if (A->tty && (unsigned)a->severity < 3 && !resolved)
        ADD("%s[%s]\033[0m %s%s\033[0m %s", colour[a->severity], word, colour[a->severity], sev,
            a->rule);
    else if (A->tty)
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

/* ---- transitions and notifications ---- */

static int save_apply(te_store_t *st, job_t *j, te_err_t *err)
{
    if (j->save_alert) {
        int rc = te_store_alerts_save(st, &j->a, j->t, err);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < j->nrows; i++) {
        const orow_t *r = &j->rows[i];
        te_outbox_row_t row = {
            .id = r->id, .alert_id = j->a.id, .notifier = r->notifier, .status = r->status,
            .payload = r->payload, .state = r->state, .reason = r->reason,
            .created_ns = j->at_ns, .updated_ns = j->at_ns, .last_error = r->last_error};
        int rc = te_store_outbox_add(st, &row, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void save_done(te_engine_alerts_t *A, job_t *j, int rc, const char *msg)
{
    if (rc < 0) {
        A->save_failed++;
        te_log(TE_LOG_ERROR, "alerts", "alert %s (%s) not saved: %s", j->a.id, j->a.rule,
               msg ? msg : te_strerror(rc));
    }
    /* committed (or not: deliver anyway rather than lose it) */
    for (size_t i = 0; i < j->nrows; i++) {
        orow_t *r = &j->rows[i];
        if (strcmp(r->state, "pending") != 0 || !A->disp || A->closed)
            continue;
        int qrc = te_dispatch_enqueue(A->disp, r->id, r->notifier, &j->a, r->status, j->at_ns, 0);
        if (qrc == 0)
            A->pending++;
    }
}

static int64_t next_id(te_engine_alerts_t *A)
{
    return ++A->next_id;
}

/* Builds the outbox rows of a notification (or of a held one) of a. */
static int add_rows(te_engine_alerts_t *A, job_t *j, const char *status, bool held,
                    const char *reason)
{
    const te_alert_t *a = &j->a;
    size_t n = 0;
    for (size_t i = 0; i < a->nnotify; i++)
        n += strcmp(a->notify[i], "stdout") != 0;
    if (n == 0)
        return 0;
    j->rows = calloc(n, sizeof(*j->rows));
    if (!j->rows)
        return TE_ENOMEM;
    char *payload = te_alert_to_json(a, status);
    if (!payload)
        return TE_ENOMEM;
    for (size_t i = 0; i < a->nnotify; i++) {
        const char *name = a->notify[i];
        if (strcmp(name, "stdout") == 0)
            continue;
        orow_t *r = &j->rows[j->nrows++];
        r->id = next_id(A);
        r->notifier = strdup(name);
        r->payload = strdup(payload);
        r->status = strcmp(status, "resolved") == 0   ? "resolved"
                    : strcmp(status, "flapping") == 0 ? "flapping"
                                                      : "firing";
        r->state = held ? "suppressed" : "pending";
        if (held)
            r->reason = strdup(reason);
        bool known = false;
        for (size_t k = 0; k < A->nnotifiers; k++)
            known |= strcmp(A->notifiers[k]->name, name) == 0;
        if (!held && !known) {
            r->state = "failed";
            const char *why = "no notifier of that name in telemetry.lua";
            for (size_t k = 0; k < A->nbroken; k++)
                if (strcmp(A->broken[k], name) == 0)
                    why = A->broken_err[k];
            char msg[600];
            snprintf(msg, sizeof(msg), "notifier \"%s\": %s", name, why);
            r->last_error = strdup(msg);
            te_log(TE_LOG_WARN, "notify", "rule \"%s\": %s", a->rule, msg);
            A->failed++;
        }
        if (!r->notifier || !r->payload || (held && !r->reason)) {
            free(payload);
            return TE_ENOMEM;
        }
    }
    free(payload);
    return 0;
}

static void notify(te_engine_alerts_t *A, const te_alert_t *a, te_alert_transition_t t,
                   bool save_alert, const char *status, bool held, const char *reason)
{
    job_t *j = job_new(save_apply, save_done);
    if (!j || te_alert_copy(&j->a, a) < 0) {
        job_free(j);
        A->save_failed++;
        te_log(TE_LOG_ERROR, "alerts", "alert %s (%s) not saved: out of memory", a->id, a->rule);
        return;
    }
    j->t = t;
    j->save_alert = save_alert;
    j->at_ns = a->updated_ns ? a->updated_ns : te_time_now_ns();
    if (status && add_rows(A, j, status, held, reason) < 0)
        te_log(TE_LOG_ERROR, "alerts", "alert %s (%s): out of memory queueing notifications",
               a->id, a->rule);
    if (status && !held && (a->nnotify == 0 || names_notifier(a, "stdout")))
        print_stdout(A, a, status);
    submit_chained(A, j);
}

void te_engine_alerts_transition(te_engine_alerts_t *A, const te_alert_t *a,
                                 te_alert_transition_t t)
{
    if (!a->id[0])
        return;
    te_alert_t copy;
    te_alert_init(&copy);
    if (te_alert_copy(&copy, a) < 0) {
        notify(A, a, t, true, NULL, false, NULL);
        return;
    }
    te_verdict_t v = te_policy_decide(A->policy, &copy, t, a->updated_ns ? a->updated_ns
                                                                          : te_time_now_ns());
    if (t == TE_ALERT_T_PENDING && (copy.nnotify == 0 || names_notifier(&copy, "stdout")))
        print_stdout(A, &copy, "pending");
    if (v.held) {
        A->held++;
        te_log(TE_LOG_DEBUG, "notify", "alert %s (%s %s): held, %s", copy.id, copy.rule,
               te_alert_transition_name(t), v.reason);
    }
    notify(A, &copy, t, true, v.notify || v.held ? v.status : NULL, v.held, v.reason);
    te_alert_clear(&copy);
}

static void on_recheck(void *ud, te_alert_t *a, const char *status)
{
    te_engine_alerts_t *A = ud;
    notify(A, a, TE_ALERT_T_NONE, true, status, false, NULL);
}

void te_engine_alerts_restored(te_engine_alerts_t *A, const te_alert_t *a)
{
    if (te_policy_restore(A->policy, a) < 0)
        te_log(TE_LOG_WARN, "alerts", "alert %s: out of memory tracking it", a->id);
}

/* ---- delivery results -> outbox rows ---- */

static int upd_apply(te_store_t *st, job_t *j, te_err_t *err)
{
    int64_t now = te_time_now_ns();
    for (size_t i = 0; i < j->nupd; i++) {
        int rc = te_store_outbox_update(st, j->upd[i].id, j->upd[i].state, j->upd[i].attempts,
                                        j->upd[i].last_error, now, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void upd_done(te_engine_alerts_t *A, job_t *j, int rc, const char *msg)
{
    (void)A;
    if (rc < 0 && rc != TE_ECLOSED)
        te_log(TE_LOG_WARN, "notify", "%zu delivery results not saved: %s (those notifications "
               "may be sent again after a restart)", j->nupd, msg ? msg : te_strerror(rc));
}

static void flush_updates(uv_timer_t *t)
{
    te_engine_alerts_t *A = t->data;
    if (!A->nupd)
        return;
    job_t *j = job_new(upd_apply, upd_done);
    if (!j)
        return;
    j->upd = A->upd;
    j->nupd = A->nupd;
    A->upd = NULL;
    A->nupd = A->capupd = 0;
    submit(A, j);
}

static void on_result(void *ud, int64_t id, int rc, const char *msg, int64_t attempts,
                      bool final)
{
    te_engine_alerts_t *A = ud;
    if (rc == 0)
        A->sent++;
    else
        A->failed++;
    if (final && A->pending)
        A->pending--;
    if (A->nupd == A->capupd) {
        size_t cap = A->capupd ? A->capupd * 2 : 64;
        upd_t *v = realloc(A->upd, cap * sizeof(*v));
        if (!v)
            return; /* the row stays pending: sent again after a restart */
        A->upd = v;
        A->capupd = cap;
    }
    upd_t *u = &A->upd[A->nupd++];
    u->id = id;
    u->attempts = attempts;
    u->state = rc == 0 ? "delivered" : final ? "failed" : "pending";
    u->last_error = rc == 0 || !msg ? NULL : strdup(msg);
    if (!A->closed && !uv_is_active((uv_handle_t *)&A->flush))
        uv_timer_start(&A->flush, flush_updates, 20, 0);
}

/* ---- the journal poll ---- */

static int poll_apply(te_store_t *st, job_t *j, te_err_t *err);

static int collect_action(void *ud, const te_alert_action_t *x)
{
    job_t *j = ud;
    j->last_seq = x->seq;
    if (j->nact >= MAX_SIL_ACTIONS)
        return 1; /* the rest next time */
    action_t *v = realloc(j->act, (j->nact + 1) * sizeof(*v));
    if (!v)
        return TE_ENOMEM;
    j->act = v;
    action_t *a = &v[j->nact++];
    memset(a, 0, sizeof(*a));
    snprintf(a->kind, sizeof(a->kind), "%s", x->kind);
    snprintf(a->target, sizeof(a->target), "%s", x->target);
    a->by = x->by ? strdup(x->by) : NULL;
    a->comment = x->comment ? strdup(x->comment) : NULL;
    a->at_ns = x->at_ns;
    return 0;
}

static int poll_apply(te_store_t *st, job_t *j, te_err_t *err)
{
    int rc = te_store_actions_since(st, j->after_seq, collect_action, j, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < j->nact; i++) {
        action_t *a = &j->act[i];
        if (strcmp(a->kind, "silence") != 0)
            continue;
        te_err_t e2;
        te_err_clear(&e2);
        if (te_store_silence_get(st, a->target, &a->sil, &e2) == 0)
            a->has_sil = true;
    }
    return 0;
}

static void poll_done(te_engine_alerts_t *A, job_t *j, int rc, const char *msg)
{
    A->polling = false;
    if (rc < 0) {
        if (rc != TE_ECLOSED)
            te_log(TE_LOG_WARN, "alerts", "cannot read the action journal: %s",
                   msg ? msg : te_strerror(rc));
        return;
    }
    for (size_t i = 0; i < j->nact; i++) {
        action_t *a = &j->act[i];
        if (strcmp(a->kind, "ack") == 0)
            te_policy_ack(A->policy, a->target, a->by, a->comment, a->at_ns, NULL);
        else if (strcmp(a->kind, "silence") == 0 && a->has_sil)
            te_policy_silence_add(A->policy, &a->sil);
        else if (strcmp(a->kind, "unsilence") == 0)
            te_policy_silence_end(A->policy, a->target, a->at_ns);
    }
    if (j->last_seq > A->action_seq)
        A->action_seq = j->last_seq;
    if (j->nact)
        te_policy_recheck(A->policy, te_time_now_ns(), on_recheck, A);
}

static void on_poll(uv_timer_t *t)
{
    te_engine_alerts_t *A = t->data;
    if (A->closed)
        return;
    flush_waiting(A);
    te_policy_recheck(A->policy, te_time_now_ns(), on_recheck, A);
    if (A->polling)
        return;
    job_t *j = job_new(poll_apply, poll_done);
    if (!j)
        return;
    j->after_seq = A->action_seq;
    A->polling = true;
    submit(A, j);
}

/* ---- operator actions ---- */

static void answer(job_t *j, int rc, const char *msg, cJSON *obj)
{
    if (!j->cb) {
        cJSON_Delete(obj);
        return;
    }
    char *json = rc == 0 && obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (rc == 0 && !json) {
        j->cb(j->cb_ud, TE_ENOMEM, "out of memory", NULL);
        return;
    }
    j->cb(j->cb_ud, rc, msg, json);
}

static int ack_apply(te_store_t *st, job_t *j, te_err_t *err)
{
    return te_store_alert_ack(st, j->id, j->by, j->comment, j->at_ns, err);
}

static void ack_done(te_engine_alerts_t *A, job_t *j, int rc, const char *msg)
{
    (void)A;
    answer(j, rc, msg, rc == 0 ? te_alert_to_cjson(&j->a) : NULL);
}

int te_engine_alerts_ack(te_engine_alerts_t *A, const char *id, const char *by,
                         const char *comment, te_engine_action_cb cb, void *ud)
{
    if (A->closed)
        return TE_ECLOSED;
    int64_t now = te_time_now_ns();
    const te_alert_t *a = NULL;
    int rc = te_policy_ack(A->policy, id, by, comment, now, &a);
    if (rc < 0)
        return rc;
    job_t *j = job_new(ack_apply, ack_done);
    if (!j || te_alert_copy(&j->a, a) < 0) {
        job_free(j);
        return TE_ENOMEM;
    }
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->by = strdup(by ? by : "unknown");
    j->comment = comment ? strdup(comment) : NULL;
    j->at_ns = now;
    j->cb = cb;
    j->cb_ud = ud;
    submit(A, j);
    return 0;
}

static int sil_apply(te_store_t *st, job_t *j, te_err_t *err)
{
    return te_store_silence_add(st, &j->sil, err);
}

static void sil_done(te_engine_alerts_t *A, job_t *j, int rc, const char *msg)
{
    (void)A;
    answer(j, rc, msg, rc == 0 ? te_silence_to_cjson(&j->sil, te_time_now_ns()) : NULL);
}

int te_engine_alerts_silence(te_engine_alerts_t *A, te_silence_t *s, te_engine_action_cb cb,
                             void *ud)
{
    if (A->closed) {
        te_silence_clear(s);
        return TE_ECLOSED;
    }
    job_t *j = job_new(sil_apply, sil_done);
    if (!j || te_policy_silence_add(A->policy, s) < 0) {
        job_free(j);
        te_silence_clear(s);
        return TE_ENOMEM;
    }
    j->sil = *s;
    memset(s, 0, sizeof(*s));
    j->cb = cb;
    j->cb_ud = ud;
    submit(A, j);
    return 0;
}

static int unsil_apply(te_store_t *st, job_t *j, te_err_t *err)
{
    int rc = te_store_silence_expire(st, j->id, j->by, j->at_ns, err);
    if (rc == 0)
        rc = te_store_silence_get(st, j->id, &j->sil, err);
    return rc;
}

static void unsil_done(te_engine_alerts_t *A, job_t *j, int rc, const char *msg)
{
    if (rc == 0) {
        te_policy_silence_end(A->policy, j->id, j->at_ns);
        te_policy_recheck(A->policy, te_time_now_ns(), on_recheck, A);
    }
    answer(j, rc, msg, rc == 0 ? te_silence_to_cjson(&j->sil, te_time_now_ns()) : NULL);
}

int te_engine_alerts_unsilence(te_engine_alerts_t *A, const char *id, const char *by,
                               te_engine_action_cb cb, void *ud)
{
    if (A->closed)
        return TE_ECLOSED;
    job_t *j = job_new(unsil_apply, unsil_done);
    if (!j)
        return TE_ENOMEM;
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->by = by ? strdup(by) : NULL;
    j->at_ns = te_time_now_ns();
    j->cb = cb;
    j->cb_ud = ud;
    submit(A, j);
    return 0;
}

/* ---- start and stop ---- */

static int collect_silence(void *ud, const te_silence_t *s)
{
    return te_policy_silence_add(ud, s);
}

static int collect_row(void *ud, const te_outbox_row_t *r)
{
    te_engine_alerts_t *A = ud;
    orow_t *v = realloc(A->restore, (A->nrestore + 1) * sizeof(*v));
    if (!v)
        return TE_ENOMEM;
    A->restore = v;
    orow_t *o = &v[A->nrestore];
    memset(o, 0, sizeof(*o));
    o->id = r->id;
    o->notifier = strdup(r->notifier);
    o->payload = strdup(r->payload);
    o->status = r->status; /* re-read from the payload at start */
    o->state = "pending";
    /* attempts ride in reason's slot as text to keep orow_t small */
    char buf[64];
    snprintf(buf, sizeof(buf), "%lld %lld", (long long)r->attempts, (long long)r->created_ns);
    o->reason = strdup(buf);
    A->nrestore++;
    if (!o->notifier || !o->payload || !o->reason)
        return TE_ENOMEM;
    return 0;
}

/* Reads the alerts block: flap detection, inhibit rules, poll interval. */
static int read_config(te_engine_alerts_t *A, te_policy_opts_t *po, te_inhibit_t **inh,
                       te_err_t *err)
{
    const char *json = A->e->cfg->alerts_json;
    po->flap_changes = 8;
    po->flap_window_ns = 3600 * TE_NS_PER_SEC;
    A->poll_ns = TE_NS_PER_SEC;
    if (!json)
        return 0;
    cJSON *root = cJSON_Parse(json);
    int rc = 0;
    const cJSON *flap = cJSON_GetObjectItem(root, "flap");
    const cJSON *ch = cJSON_GetObjectItem(flap, "changes");
    if (cJSON_IsNumber(ch))
        po->flap_changes = (int)ch->valuedouble;
    const char *w = cJSON_GetStringValue(cJSON_GetObjectItem(flap, "window"));
    if (w && te_duration_parse(w, &po->flap_window_ns, err) < 0)
        rc = TE_ECONFIG;
    const char *poll = cJSON_GetStringValue(cJSON_GetObjectItem(root, "poll"));
    if (!rc && poll && (te_duration_parse(poll, &A->poll_ns, err) < 0 || A->poll_ns <= 0))
        rc = te_err_set(err, TE_ECONFIG, "alerts: poll must be a positive duration");
    const cJSON *list = cJSON_GetObjectItem(root, "inhibit");
    size_t n = (size_t)cJSON_GetArraySize(list);
    if (!rc && n) {
        *inh = calloc(n, sizeof(**inh));
        if (!*inh)
            rc = TE_ENOMEM;
        const cJSON *r;
        size_t i = 0;
        cJSON_ArrayForEach(r, list)
        {
            if (rc)
                break;
            te_inhibit_t *in = &(*inh)[i++];
            po->ninhibit = i;
            const cJSON *src = cJSON_GetObjectItem(r, "source");
            const cJSON *dst = cJSON_GetObjectItem(r, "target");
            if (!src || !dst) {
                rc = te_err_set(err, TE_ECONFIG, "alerts: inhibit rule %zu needs source and "
                                "target matchers", i);
                break;
            }
            if (te_matchers_from_cjson(src, &in->src, &in->nsrc, err) < 0 ||
                te_matchers_from_cjson(dst, &in->dst, &in->ndst, err) < 0) {
                rc = TE_ECONFIG;
                break;
            }
            const cJSON *eq = cJSON_GetObjectItem(r, "equal");
            size_t ne = (size_t)cJSON_GetArraySize(eq);
            in->equal = calloc(ne ? ne : 1, sizeof(char *));
            if (!in->equal) {
                rc = TE_ENOMEM;
                break;
            }
            const cJSON *k;
            cJSON_ArrayForEach(k, eq)
            {
                if (cJSON_IsString(k) && (in->equal[in->nequal] = strdup(k->valuestring)))
                    in->nequal++;
            }
        }
        po->inhibit = *inh;
    }
    cJSON_Delete(root);
    if (rc == TE_ECONFIG && err && strncmp(err->msg, "alerts", 6) != 0) {
        char msg[TE_ERR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        te_err_set(err, TE_ECONFIG, "alerts: %s", msg);
    }
    return rc;
}

static void free_inhibit(te_inhibit_t *inh, size_t n)
{
    for (size_t i = 0; inh && i < n; i++) {
        te_matchers_free(inh[i].src, inh[i].nsrc);
        te_matchers_free(inh[i].dst, inh[i].ndst);
        for (size_t k = 0; k < inh[i].nequal; k++)
            free(inh[i].equal[k]);
        free(inh[i].equal);
    }
    free(inh);
}

int te_engine_alerts_open(te_engine_t *e, te_store_t *st, te_engine_alerts_t **out,
                          te_err_t *err)
{
    te_engine_alerts_t *A = calloc(1, sizeof(*A));
    if (!A)
        return te_err_set(err, TE_ENOMEM, "alerts: out of memory");
    A->e = e;
    A->done.e = e;
    A->done.cb = job_batch_done;
    A->done.arg = A;
    A->tty = isatty(STDOUT_FILENO) == 1;
    te_policy_opts_t po = {0};
    te_inhibit_t *inh = NULL;
    int rc = read_config(A, &po, &inh, err);
    if (!rc) {
        A->policy = te_policy_new(&po);
        if (!A->policy)
            rc = te_err_set(err, TE_ENOMEM, "alerts: out of memory");
    }
    free_inhibit(inh, po.ninhibit);
    if (!rc)
        rc = te_store_silences_list(st, te_time_now_ns(), false, collect_silence, A->policy, err);
    if (!rc)
        rc = te_store_outbox_pending(st, collect_row, A, err);
    if (!rc)
        rc = te_store_outbox_last(st, &A->next_id, err);
    if (!rc)
        rc = te_store_actions_last(st, &A->action_seq, err);
    if (rc) {
        te_engine_alerts_free(A);
        return rc;
    }
    /* ids stay increasing even if the clock of a restored copy ran ahead */
    *out = A;
    return 0;
}

/* The notifier block without the dispatcher's keys, and those keys. */
static int split_group(const te_config_notifier_t *c, te_config_notifier_t *rest,
                       te_group_opts_t *g, te_err_t *err)
{
    *rest = *c;
    memset(g, 0, sizeof(*g));
    cJSON *o = cJSON_Parse(c->json ? c->json : "{}");
    if (!o)
        return te_err_set(err, TE_ENOMEM, "notifier \"%s\": cannot read its block", c->name);
    static const char *const durs[] = {"group_wait", "group_interval"};
    int64_t *outs[] = {&g->wait_ns, &g->interval_ns};
    for (int i = 0; i < 2; i++) {
        const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(o, durs[i]));
        if (d && te_duration_parse(d, outs[i], err) < 0) {
            cJSON_Delete(o);
            return TE_ECONFIG;
        }
        cJSON_DeleteItemFromObject(o, durs[i]);
    }
    const cJSON *by = cJSON_GetObjectItem(o, "group_by");
    size_t n = (size_t)cJSON_GetArraySize(by);
    if (n) {
        g->group_by = calloc(n, sizeof(char *));
        const cJSON *k;
        cJSON_ArrayForEach(k, by)
        {
            if (g->group_by && cJSON_IsString(k))
                g->group_by[g->ngroup_by++] = strdup(k->valuestring);
        }
    }
    cJSON_DeleteItemFromObject(o, "group_by");
    rest->json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return rest->json ? 0 : te_err_set(err, TE_ENOMEM, "out of memory");
}

static void group_opts_clear(te_group_opts_t *g)
{
    for (size_t k = 0; k < g->ngroup_by; k++)
        free(g->group_by[k]);
    free(g->group_by);
}

static void add_broken(te_engine_alerts_t *A, const char *name, const char *msg)
{
    char **b = realloc(A->broken, (A->nbroken + 1) * sizeof(char *));
    if (b)
        A->broken = b;
    char **m = realloc(A->broken_err, (A->nbroken + 1) * sizeof(char *));
    if (m)
        A->broken_err = m;
    if (!b || !m)
        return;
    A->broken[A->nbroken] = strdup(name);
    A->broken_err[A->nbroken] = strdup(msg);
    A->nbroken++;
}

int te_engine_alerts_start(te_engine_alerts_t *A, te_err_t *err)
{
    const te_config_t *cfg = A->e->cfg;
    size_t n = cfg->nnotifiers ? cfg->nnotifiers : 1;
    A->notifiers = calloc(n, sizeof(*A->notifiers));
    A->groups = calloc(n, sizeof(*A->groups));
    if (!A->notifiers || !A->groups)
        return te_err_set(err, TE_ENOMEM, "alerts: out of memory");
    for (size_t i = 0; i < cfg->nnotifiers; i++) {
        const te_config_notifier_t *c = &cfg->notifiers[i];
        if (c->type && strcmp(c->type, "stdout") == 0)
            continue;
        te_err_t e2;
        te_err_clear(&e2);
        te_config_notifier_t rest;
        te_group_opts_t g;
        te_notifier_t *nt = NULL;
        if (split_group(c, &rest, &g, &e2) == 0)
            nt = te_notifier_new(&A->e->loop, &rest, &e2);
        if (rest.json != c->json)
            cJSON_free((char *)rest.json);
        if (!nt) {
            group_opts_clear(&g);
            te_log(TE_LOG_WARN, "notify", "%s; alerts for it are not delivered", e2.msg);
            add_broken(A, c->name, e2.msg);
            continue;
        }
        A->groups[A->nnotifiers] = g;
        A->notifiers[A->nnotifiers++] = nt;
    }
    A->disp = te_dispatch_new(&A->e->loop, A->notifiers, A->groups, A->nnotifiers, 0, on_result,
                              A);
    if (!A->disp)
        return te_err_set(err, TE_ENOMEM, "alerts: out of memory");
    uv_timer_init(&A->e->loop, &A->poll);
    uv_timer_init(&A->e->loop, &A->flush);
    uv_idle_init(&A->e->loop, &A->chain_idle);
    A->poll.data = A->flush.data = A->chain_idle.data = A;
    uv_unref((uv_handle_t *)&A->chain_idle);
    uv_unref((uv_handle_t *)&A->poll);
    uv_unref((uv_handle_t *)&A->flush);
    A->timers_on = true;
    uint64_t ms = (uint64_t)(A->poll_ns / TE_NS_PER_MS);
    uv_timer_start(&A->poll, on_poll, ms ? ms : 1, ms ? ms : 1);

    /* what a previous run left undelivered */
    size_t requeued = 0;
    for (size_t i = 0; i < A->nrestore; i++) {
        orow_t *r = &A->restore[i];
        te_alert_t a;
        char status[16];
        long long attempts = 0, created = 0;
        sscanf(r->reason, "%lld %lld", &attempts, &created);
        if (te_alert_from_json(r->payload, &a, status, sizeof(status)) == 0) {
            int qrc = te_dispatch_enqueue(A->disp, r->id, r->notifier, &a, status, created,
                                          attempts);
            if (qrc == 0) {
                requeued++;
                A->pending++;
            } else {
                on_result(A, r->id, qrc, "the notifier is no longer configured", attempts, true);
            }
        } else {
            on_result(A, r->id, TE_EPARSE, "the queued payload is unreadable", attempts, true);
        }
        te_alert_clear(&a);
    }
    if (A->nrestore)
        te_log(TE_LOG_INFO, "notify", "%zu undelivered notifications from the last run queued "
               "again", requeued);
    for (size_t i = 0; i < A->nrestore; i++)
        orow_clear(&A->restore[i]);
    free(A->restore);
    A->restore = NULL;
    A->nrestore = 0;
    return 0;
}

void te_engine_alerts_close(te_engine_alerts_t *A)
{
    if (!A || A->closed)
        return;
    chain_close(A);
    flush_updates(&A->flush); /* results so far still reach the writer */
    flush_waiting(A);
    A->closed = true;
    te_dispatch_close(A->disp);
    if (A->timers_on) {
        uv_close((uv_handle_t *)&A->poll, NULL);
        uv_close((uv_handle_t *)&A->flush, NULL);
        uv_close((uv_handle_t *)&A->chain_idle, NULL);
    }
    for (size_t i = 0; i < A->nnotifiers; i++)
        te_notifier_free(A->notifiers[i]);
    A->nnotifiers = 0;
}

te_notifier_t *te_engine_alerts_notifier(te_engine_alerts_t *A, const char *name)
{
    if (!A || A->closed || !name)
        return NULL;
    for (size_t i = 0; i < A->nnotifiers; i++)
        if (A->notifiers[i] && strcmp(A->notifiers[i]->name, name) == 0)
            return A->notifiers[i];
    return NULL;
}

void te_engine_alerts_free(te_engine_alerts_t *A)
{
    if (!A)
        return;
    job_free(A->chain); /* close was never called */
    while (A->wait_head) {
        job_t *next = A->wait_head->next;
        job_free(A->wait_head);
        A->wait_head = next;
    }
    for (size_t i = 0; i < A->nnotifiers; i++) /* close was never called */
        te_notifier_free(A->notifiers[i]);
    te_dispatch_free(A->disp);
    free(A->notifiers);
    if (A->groups) {
        size_t n = A->e->cfg->nnotifiers;
        for (size_t i = 0; i < n; i++)
            group_opts_clear(&A->groups[i]);
    }
    free(A->groups);
    for (size_t i = 0; i < A->nbroken; i++) {
        free(A->broken[i]);
        free(A->broken_err[i]);
    }
    free(A->broken);
    free(A->broken_err);
    for (size_t i = 0; i < A->nupd; i++)
        free(A->upd[i].last_error);
    free(A->upd);
    for (size_t i = 0; i < A->nrestore; i++)
        orow_clear(&A->restore[i]);
    free(A->restore);
    te_policy_free(A->policy);
    free(A);
}

void te_engine_alerts_counts(const te_engine_alerts_t *A, te_engine_alerts_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!A)
        return;
    out->notify_sent = A->sent;
    out->notify_failed = A->failed;
    out->notify_held = A->held;
    out->save_failed = A->save_failed;
    out->outbox_pending = A->pending;
}

size_t te_engine_alerts_health(const te_engine_alerts_t *A, te_notifier_health_t *out,
                               size_t cap)
{
    return A && A->disp ? te_dispatch_health(A->disp, out, cap) : 0;
}
