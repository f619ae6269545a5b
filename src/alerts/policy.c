/*
 * policy.c - silences, inhibition, acks and flap detection (see policy.h).
 *
 * THREAD: one thread.
 *
 * Entries live in an array indexed by an open-addressing hash of the
 * fingerprint (64 bits of hex), so a transition costs O(1) even with ten
 * thousand alerts; the index is rebuilt when recheck forgets entries.
 * Inhibition scans the firing alerts, and only when inhibit rules exist.
 */
#include "alerts/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* State-change times kept per fingerprint: flap detection needs the last
 * flap_changes + 1. The ring grows with the changes an alert really makes
 * (most make one or two), so 10,000 quiet alerts do not carry 10,000 full
 * rings. */
typedef struct entry {
    te_alert_t a;              /* latest copy */
    bool notified;             /* this episode's firing went out */
    const char *last_status;   /* last status sent: "firing" | "resolved" | NULL */
    int64_t *changes;          /* ring of change times */
    uint32_t nchanges, head, cap;
} entry_t;

static void entry_free(entry_t *e)
{
    te_alert_clear(&e->a);
    free(e->changes);
    free(e);
}

struct te_policy {
    te_policy_opts_t o;
    te_inhibit_t *inhibit;
    entry_t **e;
    size_t n, cap;
    size_t *index; /* slot -> entry index + 1; 0 empty */
    size_t icap;   /* power of two */
    te_silence_t *sil;
    size_t nsil;
};

/* ---- the index ---- */

static uint64_t fp_key(const char *fp)
{
    return strtoull(fp, NULL, 16) * 0x9e3779b97f4a7c15ull;
}

static bool index_rebuild(te_policy_t *p, size_t want)
{
    size_t cap = 64;
    while (cap < want * 2)
        cap <<= 1;
    size_t *idx = calloc(cap, sizeof(*idx));
    if (!idx)
        return false;
    for (size_t i = 0; i < p->n; i++) {
        size_t s = (size_t)(fp_key(p->e[i]->a.fingerprint) >> 32) & (cap - 1);
        while (idx[s])
            s = (s + 1) & (cap - 1);
        idx[s] = i + 1;
    }
    free(p->index);
    p->index = idx;
    p->icap = cap;
    return true;
}

static entry_t *find(const te_policy_t *p, const char *fp)
{
    if (!p->icap)
        return NULL;
    size_t s = (size_t)(fp_key(fp) >> 32) & (p->icap - 1);
    while (p->index[s]) {
        entry_t *e = p->e[p->index[s] - 1];
        if (strcmp(e->a.fingerprint, fp) == 0)
            return e;
        s = (s + 1) & (p->icap - 1);
    }
    return NULL;
}

static entry_t *get(te_policy_t *p, const te_alert_t *a)
{
    entry_t *e = find(p, a->fingerprint);
    if (e)
        return e;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        entry_t **v = realloc(p->e, cap * sizeof(*v));
        if (!v)
            return NULL;
        p->e = v;
        p->cap = cap;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    te_alert_init(&e->a);
    if (te_alert_copy(&e->a, a) < 0) {
        entry_free(e);
        return NULL;
    }
    p->e[p->n++] = e;
    if (p->n * 2 > p->icap) { /* the rebuild indexes the new entry too */
        if (!index_rebuild(p, p->n)) {
            p->n--;
            entry_free(e);
            return NULL;
        }
        return e;
    }
    size_t s = (size_t)(fp_key(a->fingerprint) >> 32) & (p->icap - 1);
    while (p->index[s])
        s = (s + 1) & (p->icap - 1);
    p->index[s] = p->n;
    return e;
}

/* ---- set-up ---- */

static void inhibit_free(te_inhibit_t *r)
{
    te_matchers_free(r->src, r->nsrc);
    te_matchers_free(r->dst, r->ndst);
    for (size_t i = 0; i < r->nequal; i++)
        free(r->equal[i]);
    free(r->equal);
}

static te_matcher_t *copy_matchers(const te_matcher_t *m, size_t n, bool *oom)
{
    te_matcher_t *d = calloc(n ? n : 1, sizeof(*d));
    if (!d) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        d[i].name = strdup(m[i].name);
        d[i].value = strdup(m[i].value);
        d[i].negate = m[i].negate;
        if (!d[i].name || !d[i].value)
            *oom = true;
    }
    return d;
}

te_policy_t *te_policy_new(const te_policy_opts_t *opts)
{
    te_policy_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (opts)
        p->o = *opts;
    p->o.inhibit = NULL;
    p->o.ninhibit = 0;
    bool oom = false;
    if (opts && opts->ninhibit) {
        p->inhibit = calloc(opts->ninhibit, sizeof(*p->inhibit));
        if (!p->inhibit)
            oom = true;
        for (size_t i = 0; !oom && i < opts->ninhibit; i++) {
            const te_inhibit_t *r = &opts->inhibit[i];
            te_inhibit_t *d = &p->inhibit[i];
            p->o.ninhibit++;
            d->src = copy_matchers(r->src, r->nsrc, &oom);
            d->nsrc = d->src ? r->nsrc : 0;
            d->dst = copy_matchers(r->dst, r->ndst, &oom);
            d->ndst = d->dst ? r->ndst : 0;
            d->equal = calloc(r->nequal ? r->nequal : 1, sizeof(char *));
            if (!d->equal) {
                oom = true;
                break;
            }
            for (size_t k = 0; k < r->nequal; k++) {
                d->equal[k] = strdup(r->equal[k]);
                d->nequal++;
                if (!d->equal[k])
                    oom = true;
            }
        }
    }
    if (oom) {
        te_policy_free(p);
        return NULL;
    }
    return p;
}

void te_policy_free(te_policy_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        entry_free(p->e[i]);
    free(p->e);
    free(p->index);
    for (size_t i = 0; i < p->o.ninhibit; i++)
        inhibit_free(&p->inhibit[i]);
    free(p->inhibit);
    for (size_t i = 0; i < p->nsil; i++)
        te_silence_clear(&p->sil[i]);
    free(p->sil);
    free(p);
}

size_t te_policy_size(const te_policy_t *p)
{
    return p->n;
}

/* ---- the checks ---- */

const char *te_policy_silenced_by(const te_policy_t *p, const te_alert_t *a, int64_t now_ns)
{
    for (size_t i = 0; i < p->nsil; i++)
        if (te_silence_matches(&p->sil[i], a, now_ns))
            return p->sil[i].id;
    return NULL;
}

/* The firing alert that inhibits a, or NULL. */
static const te_alert_t *inhibitor(const te_policy_t *p, const te_alert_t *a)
{
    for (size_t r = 0; r < p->o.ninhibit; r++) {
        const te_inhibit_t *in = &p->inhibit[r];
        if (!te_matchers_match(in->dst, in->ndst, a))
            continue;
        for (size_t i = 0; i < p->n; i++) {
            const te_alert_t *b = &p->e[i]->a;
            if (b->state != TE_ALERT_FIRING || strcmp(b->fingerprint, a->fingerprint) == 0 ||
                !te_matchers_match(in->src, in->nsrc, b))
                continue;
            bool equal = true;
            for (size_t k = 0; equal && k < in->nequal; k++)
                equal = strcmp(te_alert_tag(a, in->equal[k]), te_alert_tag(b, in->equal[k])) == 0;
            if (equal)
                return b;
        }
    }
    return NULL;
}

static size_t changes_within(const te_policy_t *p, const entry_t *e, int64_t now_ns)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nchanges; i++)
        if (now_ns - e->changes[i] < p->o.flap_window_ns)
            n++;
    return n;
}

/* Records a state change at now_ns, keeping the last keep (>= 1) times:
 * the ring doubles up to keep, then the oldest time is overwritten. Out of
 * memory, the oldest is overwritten early (flapping is noticed later). */
static void record_change(entry_t *e, int64_t now_ns, uint32_t keep)
{
    if (e->nchanges == e->cap && e->cap < keep) {
        uint32_t cap = e->cap ? e->cap * 2 : 2;
        cap = cap < keep ? cap : keep;
        int64_t *nc = malloc(cap * sizeof(*nc));
        if (nc) { /* oldest first: the ring is full, its oldest at head */
            for (uint32_t i = 0; i < e->nchanges; i++)
                nc[i] = e->changes[(e->head + i) % e->cap];
            free(e->changes);
            e->changes = nc;
            e->head = e->nchanges;
            e->cap = cap;
        }
    }
    if (e->cap == 0)
        return;
    e->changes[e->head % e->cap] = now_ns;
    e->head = (e->head % e->cap + 1) % e->cap;
    if (e->nchanges < e->cap)
        e->nchanges++;
}

/* Why a is held back now (reason filled), or false. */
static bool held(const te_policy_t *p, const te_alert_t *a, int64_t now_ns, bool resolving,
                 char *reason, size_t cap)
{
    const char *sil = te_policy_silenced_by(p, a, now_ns);
    if (sil) {
        snprintf(reason, cap, "silenced by %s", sil);
        return true;
    }
    const te_alert_t *b = resolving ? NULL : inhibitor(p, a);
    if (b) {
        snprintf(reason, cap, "inhibited by %s %s", b->rule, b->id);
        return true;
    }
    return false;
}

static void drop_ack(te_alert_t *a)
{
    free(a->acked_by);
    free(a->ack_comment);
    a->acked_by = a->ack_comment = NULL;
    a->acked_at_ns = 0;
}

static void sync_alert(te_alert_t *a, const entry_t *e)
{
    a->flapping = e->a.flapping;
    if (e->a.acked_by && strcmp(e->a.id, a->id) == 0 && !a->acked_by)
        te_alert_set_ack(a, e->a.acked_by, e->a.ack_comment, e->a.acked_at_ns);
    /* FIX (ptest): the policy's view wins: an ack a carries that the policy
     * does not hold (an earlier episode's) is cleared, so it is not saved
     * on the new episode. */
    if (!e->a.acked_by && a->acked_by)
        drop_ack(a);
}

te_verdict_t te_policy_decide(te_policy_t *p, te_alert_t *a, te_alert_transition_t t,
                              int64_t now_ns)
{
    te_verdict_t v = {0};
    entry_t *e = get(p, a);
    bool notifiable = t == TE_ALERT_T_FIRING || t == TE_ALERT_T_REPEAT ||
                      t == TE_ALERT_T_RESOLVED;
    if (!e) { /* out of memory: deliver rather than lose */
        v.notify = notifiable;
        v.status = t == TE_ALERT_T_RESOLVED ? "resolved" : "firing";
        return v;
    }
    /* keep the ack of this episode; a new episode starts unacknowledged */
    char *by = NULL, *comment = NULL;
    int64_t acked_at = 0;
    if (e->a.acked_by && strcmp(e->a.id, a->id) == 0) {
        by = e->a.acked_by;
        comment = e->a.ack_comment;
        acked_at = e->a.acked_at_ns;
        e->a.acked_by = e->a.ack_comment = NULL;
    }
    if (strcmp(e->a.id, a->id) != 0)
        e->notified = false;
    bool flapping = e->a.flapping;
    te_alert_t copy;
    te_alert_init(&copy);
    if (te_alert_copy(&copy, a) == 0) {
        /* FIX (ptest): te_alert_step never clears acked_* at a new episode,
         * so an alert restored with an ack (or a caller's alert that this
         * function synced earlier) carries the previous episode's ack into
         * the next one, which then had its repeats held as acknowledged.
         * An ack made before the episode became active is not this one's. */
        if (copy.acked_by && copy.acked_at_ns < copy.active_at_ns)
            drop_ack(&copy);
        te_alert_clear(&e->a);
        e->a = copy;
    }
    e->a.flapping = flapping;
    if (by) {
        te_alert_set_ack(&e->a, by, comment, acked_at);
        free(by);
        free(comment);
    }
    if (!notifiable) {
        sync_alert(a, e);
        return v;
    }
    v.status = t == TE_ALERT_T_RESOLVED ? "resolved" : "firing";

    /* 1. flapping */
    bool newly_flapping = false;
    if (p->o.flap_changes > 0 && t != TE_ALERT_T_REPEAT) {
        record_change(e, now_ns, (uint32_t)p->o.flap_changes + 1);
        if (!e->a.flapping && changes_within(p, e, now_ns) > (size_t)p->o.flap_changes) {
            e->a.flapping = true;
            newly_flapping = true;
        }
    }
    if (e->a.flapping && !newly_flapping) {
        v.held = true;
        snprintf(v.reason, sizeof(v.reason), "flapping");
    } else if (held(p, a, now_ns, t == TE_ALERT_T_RESOLVED, v.reason, sizeof(v.reason))) {
        v.held = true; /* 2, 3 */
    } else if (t == TE_ALERT_T_REPEAT && e->a.acked_by) {
        v.held = true; /* 4 */
        snprintf(v.reason, sizeof(v.reason), "acknowledged by %s", e->a.acked_by);
    } else if (t == TE_ALERT_T_RESOLVED && !e->notified && !newly_flapping) {
        v.held = true; /* 5 */
        snprintf(v.reason, sizeof(v.reason), "never notified as firing");
    } else {
        v.notify = true;
        if (newly_flapping)
            v.status = "flapping";
    }
    if (v.notify) {
        e->notified = t != TE_ALERT_T_RESOLVED;
        /* FIX (ptest): "flapping" counts as the last status sent (policy.h:
         * on calming, "its current state is notified if it differs from the
         * last one sent"). Keeping the pre-flap status instead meant an
         * alert that was resolved before flapping and calmed down resolved
         * never sent "resolved": the receiver's last word stayed
         * "flapping" (which group payloads count as firing). */
        e->last_status = v.status;
    }
    if (t == TE_ALERT_T_RESOLVED)
        e->notified = false;
    sync_alert(a, e);
    return v;
}

int te_policy_restore(te_policy_t *p, const te_alert_t *a)
{
    entry_t *e = get(p, a);
    if (!e)
        return TE_ENOMEM;
    e->notified = a->state == TE_ALERT_FIRING;
    e->last_status = e->notified ? "firing" : NULL;
    return 0;
}

int te_policy_ack(te_policy_t *p, const char *id, const char *by, const char *comment,
                  int64_t now_ns, const te_alert_t **out)
{
    for (size_t i = 0; i < p->n; i++) {
        te_alert_t *a = &p->e[i]->a;
        if (strcmp(a->id, id) != 0)
            continue;
        if (a->state != TE_ALERT_PENDING && a->state != TE_ALERT_FIRING)
            return TE_ENOTFOUND;
        if (te_alert_set_ack(a, by, comment, now_ns) < 0)
            return TE_ENOMEM;
        if (out)
            *out = a;
        return 0;
    }
    return TE_ENOTFOUND;
}

/* ---- silences ---- */

int te_policy_silence_add(te_policy_t *p, const te_silence_t *s)
{
    for (size_t i = 0; i < p->nsil; i++)
        if (strcmp(p->sil[i].id, s->id) == 0) {
            te_silence_t c;
            if (te_silence_copy(&c, s) < 0)
                return TE_ENOMEM;
            te_silence_clear(&p->sil[i]);
            p->sil[i] = c;
            return 0;
        }
    te_silence_t *v = realloc(p->sil, (p->nsil + 1) * sizeof(*v));
    if (!v)
        return TE_ENOMEM;
    p->sil = v;
    if (te_silence_copy(&v[p->nsil], s) < 0)
        return TE_ENOMEM;
    p->nsil++;
    return 0;
}

int te_policy_silence_end(te_policy_t *p, const char *id, int64_t now_ns)
{
    for (size_t i = 0; i < p->nsil; i++)
        if (strcmp(p->sil[i].id, id) == 0) {
            if (p->sil[i].ends_ns > now_ns)
                p->sil[i].ends_ns = now_ns;
            return 0;
        }
    return TE_ENOTFOUND;
}

/* ---- recheck ---- */

size_t te_policy_recheck(te_policy_t *p, int64_t now_ns, te_policy_cb cb, void *ud)
{
    size_t sent = 0;
    char reason[128];
    for (size_t i = 0; i < p->n; i++) {
        entry_t *e = p->e[i];
        te_alert_t *a = &e->a;
        if (a->flapping) {
            if (changes_within(p, e, now_ns) > (size_t)p->o.flap_changes / 2)
                continue;
            a->flapping = false;
            const char *now_status = a->state == TE_ALERT_FIRING ? "firing"
                                     : a->state == TE_ALERT_RESOLVED ? "resolved"
                                                                     : NULL;
            if (!now_status || (e->last_status && strcmp(e->last_status, now_status) == 0))
                continue;
            if (held(p, a, now_ns, a->state == TE_ALERT_RESOLVED, reason, sizeof(reason))) {
                /* calmed down while silenced or inhibited: a firing alert is
                 * notified once the hold ends (the branch below) */
                e->notified = false;
                continue;
            }
            e->last_status = now_status;
            e->notified = a->state == TE_ALERT_FIRING;
            cb(ud, a, now_status);
            sent++;
            continue;
        }
        if (a->state != TE_ALERT_FIRING || e->notified ||
            held(p, a, now_ns, false, reason, sizeof(reason)))
            continue;
        e->notified = true;
        e->last_status = "firing";
        cb(ud, a, "firing");
        sent++;
    }
    /* forget what is over: resolved entries past their flap window */
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        entry_t *e = p->e[i];
        bool over = (e->a.state == TE_ALERT_RESOLVED || e->a.state == TE_ALERT_INACTIVE) &&
                    !e->a.flapping &&
                    (p->o.flap_changes == 0 || changes_within(p, e, now_ns) == 0);
        if (over) {
            entry_free(e);
        } else {
            p->e[k++] = e;
        }
    }
    if (k != p->n) {
        p->n = k;
        index_rebuild(p, p->n ? p->n : 1);
    }
    k = 0;
    for (size_t i = 0; i < p->nsil; i++) {
        if (p->sil[i].ends_ns <= now_ns)
            te_silence_clear(&p->sil[i]);
        else
            p->sil[k++] = p->sil[i];
    }
    p->nsil = k;
    return sent;
}
