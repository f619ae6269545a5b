/*
 * alert.c - alert instances: identity, state machine, summary templates and
 * the webhook JSON (see alert.h).
 *
 * THREAD: loop. No clock reads; ids come from a caller-held splitmix64
 * state so a seeded engine (tests, `rules test`) is deterministic.
 */
#include "rules/alert.h"

#include "core/buf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/time.h"
#include "rules/window.h"

void te_alert_init(te_alert_t *a)
{
    memset(a, 0, sizeof(*a));
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s ? s : "");
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s ? s : "", n + 1);
    return d;
}

/* Copies n strings (NULL -> ""); returns NULL on ENOMEM (and when n is 0). */
static char **dup_strv(const char *const *v, size_t n, int *rc)
{
    *rc = 0;
    if (n == 0)
        return NULL;
    char **d = calloc(n, sizeof(*d));
    if (!d)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        d[i] = dup_str(v[i]);
        if (!d[i])
            goto fail;
    }
    return d;
fail:
    free_strv(d, n);
    *rc = TE_ENOMEM;
    return NULL;
}

void te_alert_clear(te_alert_t *a)
{
    if (!a)
        return;
    free(a->rule);
    free_strv(a->group_keys, a->ngroup);
    free_strv(a->group_values, a->ngroup);
    free_strv(a->label_keys, a->nlabels);
    free_strv(a->label_values, a->nlabels);
    free_strv(a->notify, a->nnotify);
    free(a->summary);
    free(a->reason);
    free(a->acked_by);
    free(a->ack_comment);
    te_alert_init(a);
}

int te_alert_copy(te_alert_t *dst, const te_alert_t *src)
{
    te_alert_clear(dst);
    *dst = *src;
    dst->rule = NULL;
    dst->group_keys = dst->group_values = NULL;
    dst->ngroup = 0;
    dst->label_keys = dst->label_values = NULL;
    dst->nlabels = 0;
    dst->notify = NULL;
    dst->nnotify = 0;
    dst->summary = dst->reason = NULL;
    dst->acked_by = dst->ack_comment = NULL;
    dst->acked_at_ns = 0;
    if (src->acked_by && te_alert_set_ack(dst, src->acked_by, src->ack_comment,
                                          src->acked_at_ns) < 0)
        goto fail;
    if (te_alert_set_identity(dst, src->rule, (const char *const *)src->group_keys,
                              (const char *const *)src->group_values, src->ngroup) ||
        te_alert_set_labels(dst, src->label_keys, src->label_values, src->nlabels) ||
        te_alert_set_notify(dst, src->notify, src->nnotify) ||
        te_alert_set_summary(dst, src->summary))
        goto fail;
    if (src->reason) {
        dst->reason = dup_str(src->reason);
        if (!dst->reason)
            goto fail;
    }
    /* identity recomputed the fingerprint; keep the stored one verbatim */
    memcpy(dst->fingerprint, src->fingerprint, sizeof(dst->fingerprint));
    return 0;
fail:
    te_alert_clear(dst);
    return TE_ENOMEM;
}

int te_alert_set_ack(te_alert_t *a, const char *by, const char *comment, int64_t at_ns)
{
    char *b = dup_str(by ? by : "unknown");
    char *c = comment ? dup_str(comment) : NULL;
    if (!b || (comment && !c)) {
        free(b);
        free(c);
        return TE_ENOMEM;
    }
    free(a->acked_by);
    free(a->ack_comment);
    a->acked_by = b;
    a->ack_comment = c;
    a->acked_at_ns = at_ns;
    return 0;
}

void te_alert_fingerprint(const char *rule, const char *const *values, size_t n, char out[17])
{
    /* FNV-1a over rule \0 v1 \0 v2 ..., then the window module's finaliser
     * (via te_window_key_hash of the 8-byte state) */
    uint64_t h = 0xcbf29ce484222325ull;
    const char *s = rule ? rule : "";
    for (size_t i = 0;; i++) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
            h ^= *p;
            h *= 0x100000001b3ull;
        }
        h ^= 0xffu; /* separator that cannot occur in UTF-8 text */
        h *= 0x100000001b3ull;
        if (i >= n)
            break;
        s = values[i] ? values[i] : "";
    }
    h = te_window_key_hash(&h, sizeof(h));
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

int te_alert_set_identity(te_alert_t *a, const char *rule, const char *const *keys,
                          const char *const *values, size_t n)
{
    int rc;
    char *r = dup_str(rule);
    char **k = dup_strv(keys, n, &rc);
    char **v = rc ? NULL : dup_strv(values, n, &rc);
    if (!r || rc) {
        free(r);
        free_strv(k, n);
        free_strv(v, n);
        return TE_ENOMEM;
    }
    free(a->rule);
    free_strv(a->group_keys, a->ngroup);
    free_strv(a->group_values, a->ngroup);
    a->rule = r;
    a->group_keys = k;
    a->group_values = v;
    a->ngroup = n;
    te_alert_fingerprint(rule, values, n, a->fingerprint);
    return 0;
}

int te_alert_set_labels(te_alert_t *a, char *const *keys, char *const *values, size_t n)
{
    int rc;
    char **k = dup_strv((const char *const *)keys, n, &rc);
    char **v = rc ? NULL : dup_strv((const char *const *)values, n, &rc);
    if (rc) {
        free_strv(k, n);
        free_strv(v, n);
        return TE_ENOMEM;
    }
    free_strv(a->label_keys, a->nlabels);
    free_strv(a->label_values, a->nlabels);
    a->label_keys = k;
    a->label_values = v;
    a->nlabels = n;
    return 0;
}

int te_alert_set_notify(te_alert_t *a, char *const *names, size_t n)
{
    int rc;
    char **v = dup_strv((const char *const *)names, n, &rc);
    if (rc)
        return TE_ENOMEM;
    free_strv(a->notify, a->nnotify);
    a->notify = v;
    a->nnotify = n;
    return 0;
}

int te_alert_set_summary(te_alert_t *a, const char *summary)
{
    char *s = NULL;
    if (summary) {
        s = dup_str(summary);
        if (!s)
            return TE_ENOMEM;
    }
    free(a->summary);
    a->summary = s;
    return 0;
}

void te_alert_new_id(uint64_t *rng, char out[17])
{
    uint64_t z = (*rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    snprintf(out, 17, "%016llx", (unsigned long long)z);
}

static void new_episode(te_alert_t *a, int64_t now_ns, uint64_t *rng)
{
    te_alert_new_id(rng, a->id);
    free(a->reason);
    a->reason = NULL;
    a->active_at_ns = now_ns;
    a->starts_at_ns = now_ns;
    a->ends_at_ns = 0;
    a->false_since_ns = 0;
    a->last_notified_ns = 0;
}

static te_alert_transition_t fire(te_alert_t *a, int64_t now_ns)
{
    a->state = TE_ALERT_FIRING;
    a->starts_at_ns = now_ns;
    a->last_notified_ns = now_ns;
    a->false_since_ns = 0;
    a->updated_ns = now_ns;
    return TE_ALERT_T_FIRING;
}

te_alert_transition_t te_alert_step(te_alert_t *a, const te_alert_policy_t *p, bool cond,
                                    int64_t now_ns, uint64_t *rng)
{
    switch (a->state) {
    case TE_ALERT_INACTIVE:
    case TE_ALERT_RESOLVED:
        if (!cond)
            return TE_ALERT_T_NONE;
        new_episode(a, now_ns, rng);
        if (p->pending_ns <= 0)
            return fire(a, now_ns);
        a->state = TE_ALERT_PENDING;
        a->updated_ns = now_ns;
        return TE_ALERT_T_PENDING;
    case TE_ALERT_PENDING:
        if (!cond) {
            a->state = TE_ALERT_INACTIVE;
            a->ends_at_ns = now_ns;
            a->updated_ns = now_ns;
            return TE_ALERT_T_CLEARED;
        }
        if (now_ns - a->active_at_ns >= p->pending_ns)
            return fire(a, now_ns);
        return TE_ALERT_T_NONE;
    case TE_ALERT_FIRING:
        if (!cond) {
            if (a->false_since_ns == 0)
                a->false_since_ns = now_ns;
            if (now_ns - a->false_since_ns >= p->keep_firing_ns) {
                a->state = TE_ALERT_RESOLVED;
                a->ends_at_ns = now_ns;
                a->updated_ns = now_ns;
                return TE_ALERT_T_RESOLVED;
            }
        } else {
            a->false_since_ns = 0;
        }
        if (p->repeat_every_ns > 0 && now_ns - a->last_notified_ns >= p->repeat_every_ns) {
            a->last_notified_ns = now_ns;
            a->updated_ns = now_ns;
            return TE_ALERT_T_REPEAT;
        }
        return TE_ALERT_T_NONE;
    }
    return TE_ALERT_T_NONE;
}

te_alert_transition_t te_alert_force_resolve(te_alert_t *a, const char *reason, int64_t now_ns)
{
    te_alert_transition_t t;
    if (a->state == TE_ALERT_FIRING) {
        a->state = TE_ALERT_RESOLVED;
        t = TE_ALERT_T_RESOLVED;
    } else if (a->state == TE_ALERT_PENDING) {
        a->state = TE_ALERT_INACTIVE;
        t = TE_ALERT_T_CLEARED;
    } else {
        return TE_ALERT_T_NONE;
    }
    a->ends_at_ns = now_ns;
    a->updated_ns = now_ns;
    free(a->reason);
    a->reason = reason ? dup_str(reason) : NULL; /* ENOMEM: no reason, still resolved */
    return t;
}

/* --- templates --- */

static bool name_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static int render_var(te_buf_t *b, const char *name, size_t nlen, const char *filt, size_t flen,
                      const te_alert_t *a, te_err_t *err)
{
    char num[64];
    if (name_is(name, nlen, "value")) {
        if (flen == 0) {
            if (a->has_value) {
                snprintf(num, sizeof(num), "%g", a->value);
                te_buf_adds(b, num);
            }
        } else if (name_is(filt, flen, "pct")) {
            if (a->has_value) {
                snprintf(num, sizeof(num), "%.1f%%", a->value * 100.0);
                te_buf_adds(b, num);
            }
        } else if (name_is(filt, flen, "round")) {
            if (a->has_value) {
                snprintf(num, sizeof(num), "%.0f", round(a->value));
                te_buf_adds(b, num);
            }
        } else {
            return te_err_set(err, TE_EINVAL, "summary: unknown filter \"%.*s\" in {{%.*s|%.*s}}",
                              (int)flen, filt, (int)nlen, name, (int)flen, filt);
        }
        return 0;
    }
    if (flen > 0)
        return te_err_set(err, TE_EINVAL,
                          "summary: filter \"%.*s\" applies to value only, not {{%.*s}}",
                          (int)flen, filt, (int)nlen, name);
    if (name_is(name, nlen, "rule")) {
        te_buf_adds(b, a->rule ? a->rule : "");
        return 0;
    }
    if (name_is(name, nlen, "severity")) {
        te_buf_adds(b, te_severity_name(a->severity));
        return 0;
    }
    if (name_is(name, nlen, "fingerprint")) {
        te_buf_adds(b, a->fingerprint);
        return 0;
    }
    if (nlen > 7 && memcmp(name, "labels.", 7) == 0) {
        for (size_t i = 0; i < a->nlabels; i++)
            if (name_is(name + 7, nlen - 7, a->label_keys[i])) {
                te_buf_adds(b, a->label_values[i]);
                return 0;
            }
        return te_err_set(err, TE_EINVAL, "summary: unknown label {{%.*s}}", (int)nlen, name);
    }
    for (size_t i = 0; i < a->ngroup; i++)
        if (name_is(name, nlen, a->group_keys[i])) {
            te_buf_adds(b, a->group_values[i]);
            return 0;
        }
    return te_err_set(err, TE_EINVAL,
                      "summary: unknown name {{%.*s}} (use a group_by tag, value, rule, "
                      "severity or labels.NAME)",
                      (int)nlen, name);
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

char *te_alert_render(const char *tmpl, const te_alert_t *a, te_err_t *err)
{
    te_buf_t b = {0};
    const char *p = tmpl ? tmpl : "";
    te_buf_add(&b, "", 0);
    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            te_buf_adds(&b, p);
            break;
        }
        te_buf_add(&b, p, (size_t)(open - p));
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            te_err_set(err, TE_EINVAL, "summary: unclosed \"{{\" at offset %zu",
                       (size_t)(open - tmpl));
            goto fail;
        }
        const char *name = open + 2;
        size_t inner = (size_t)(close - name);
        const char *bar = memchr(name, '|', inner);
        size_t nlen = bar ? (size_t)(bar - name) : inner;
        const char *filt = bar ? bar + 1 : close;
        size_t flen = bar ? (size_t)(close - filt) : 0;
        trim(&name, &nlen);
        trim(&filt, &flen);
        if (render_var(&b, name, nlen, filt, flen, a, err))
            goto fail;
        p = close + 2;
    }
    if (b.oom) {
        te_err_set(err, TE_ENOMEM, "summary: out of memory");
        goto fail;
    }
    return b.p;
fail:
    free(b.p);
    return NULL;
}

static const char *const state_names[] = {"inactive", "pending", "firing", "resolved"};

const char *te_alert_state_name(te_alert_state_t s)
{
    return (unsigned)s < 4 ? state_names[s] : "inactive";
}

int te_alert_state_parse(const char *s, te_alert_state_t *out)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, state_names[i]) == 0) {
            *out = (te_alert_state_t)i;
            return 0;
        }
    return TE_EINVAL;
}

const char *te_alert_transition_name(te_alert_transition_t t)
{
    switch (t) {
    case TE_ALERT_T_PENDING: return "pending";
    case TE_ALERT_T_FIRING: return "firing";
    case TE_ALERT_T_REPEAT: return "repeat";
    case TE_ALERT_T_RESOLVED: return "resolved";
    case TE_ALERT_T_CLEARED: return "cleared";
    case TE_ALERT_T_NONE: break;
    }
    return "none";
}

static cJSON *add_time(cJSON *o, const char *key, int64_t ns, bool null_when_zero)
{
    char buf[40];
    if (null_when_zero && ns == 0)
        return cJSON_AddNullToObject(o, key);
    te_time_format_rfc3339(ns, buf, sizeof(buf));
    return cJSON_AddStringToObject(o, key, buf);
}

static cJSON *kv_object(char *const *keys, char *const *values, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++)
        if (!cJSON_AddStringToObject(o, keys[i], values[i])) {
            cJSON_Delete(o);
            return NULL;
        }
    return o;
}

/* The alert object of the SPEC 7 payload; NULL on ENOMEM. */
static cJSON *alert_object(const te_alert_t *a)
{
    cJSON *al = cJSON_CreateObject(), *g, *l;
    if (!al || !cJSON_AddStringToObject(al, "id", a->id) ||
        !cJSON_AddStringToObject(al, "rule", a->rule ? a->rule : "") ||
        !cJSON_AddStringToObject(al, "fingerprint", a->fingerprint) ||
        !cJSON_AddStringToObject(al, "severity", te_severity_name(a->severity)))
        goto fail;
    g = kv_object(a->group_keys, a->group_values, a->ngroup);
    if (!g)
        goto fail;
    cJSON_AddItemToObject(al, "group", g);
    l = kv_object(a->label_keys, a->label_values, a->nlabels);
    if (!l)
        goto fail;
    cJSON_AddItemToObject(al, "labels", l);
    if (!(a->has_value && isfinite(a->value) ? cJSON_AddNumberToObject(al, "value", a->value)
                                              : cJSON_AddNullToObject(al, "value")))
        goto fail;
    if (!(a->summary ? cJSON_AddStringToObject(al, "summary", a->summary)
                     : cJSON_AddNullToObject(al, "summary")))
        goto fail;
    if (!add_time(al, "starts_at", a->starts_at_ns, false) ||
        !add_time(al, "ends_at", a->ends_at_ns, true))
        goto fail;
    return al;
fail:
    cJSON_Delete(al);
    return NULL;
}

char *te_alert_to_json(const te_alert_t *a, const char *status)
{
    char *out = NULL;
    cJSON *root = cJSON_CreateObject(), *al;
    if (!root || !cJSON_AddNumberToObject(root, "version", 1) ||
        !cJSON_AddStringToObject(root, "status", status ? status : te_alert_state_name(a->state)))
        goto done;
    al = alert_object(a);
    if (!al)
        goto done;
    cJSON_AddItemToObject(root, "alert", al);
    out = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return out;
}

struct cJSON *te_alert_to_cjson(const te_alert_t *a)
{
    cJSON *al = alert_object(a);
    if (!al)
        return NULL;
    if (!cJSON_AddStringToObject(al, "state", te_alert_state_name(a->state)) ||
        !(a->reason ? cJSON_AddStringToObject(al, "reason", a->reason)
                    : cJSON_AddNullToObject(al, "reason")) ||
        !add_time(al, "active_at", a->active_at_ns, true) ||
        !add_time(al, "updated_at", a->updated_ns, true) ||
        !(a->acked_by ? cJSON_AddStringToObject(al, "acked_by", a->acked_by)
                      : cJSON_AddNullToObject(al, "acked_by")) ||
        !(a->ack_comment ? cJSON_AddStringToObject(al, "ack_comment", a->ack_comment)
                         : cJSON_AddNullToObject(al, "ack_comment")) ||
        !add_time(al, "acked_at", a->acked_at_ns, true) ||
        !cJSON_AddBoolToObject(al, "flapping", a->flapping)) {
        cJSON_Delete(al);
        return NULL;
    }
    return al;
}
