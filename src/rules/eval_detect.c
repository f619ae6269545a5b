/*
 * eval_detect.c - te.detector on ticks: per group, the window's stat feeds
 * the method, whose verdict drives the group's alert (SPEC 6.3, 6.7).
 *
 * THREAD: loop.
 *
 * The one idea: a detector is a rule with one aggregate ("value", from
 * stat and field) and a method instead of a condition. Feeding is the
 * rule path unchanged (eval.c feed_rule); at each `every` a group's value
 * goes to its method state (a C detector, or a Lua function with a state
 * table), and "anomalous" is the condition of the alert state machine
 * (te_alert_step), so pending, keep_firing, repeats, notifiers and
 * persistence behave exactly as for rules. The alert's value is the stat
 * value that was judged (absent: the seconds of silence); its labels gain
 * method, score and baseline.
 *
 * State survives reloads (an unchanged detector keeps its groups, as
 * rules do; a Lua method's table is encoded from the old lua_State and
 * decoded in the new one) and restarts (te_ruleset_detect_snapshot /
 * _restore, persisted by engine_detect.c). Lua tables are encoded as
 * numbers, integers, strings, booleans and nested tables (depth <= 16);
 * other values are dropped.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "detect/detect.h"
#include "rules/eval_int.h"

#define DAY_NS (INT64_C(86400) * 1000000000)
#define LUA_STATE_MAX_DEPTH 16
#define LUA_STATE_MAX_BYTES (1u << 20)

/* --- definitions --- */

static const char *method_name(const te_rule_def_t *d)
{
    return d->method ? te_detect_kind_name(d->method->kind) : "lua";
}

int te_detect_def_check(const te_rule_def_t *d, const char *path, te_err_t *err)
{
    (void)path;
    if (d->naggs != 1)
        return te_err_set(err, TE_EINVAL, "a detector has exactly one stat");
    if (d->method) {
        te_detect_params_t p = *d->method;
        te_err_t e2;
        te_err_clear(&e2);
        if (te_detect_params_check(&p, &e2))
            return te_err_set(err, TE_EINVAL, "method %s", e2.msg);
    }
    if (!d->summary)
        return 0;
    /* the summary may use the labels every detector alert carries */
    char *keys[64 + 4], *vals[64 + 4];
    size_t n = 0;
    for (size_t i = 0; i < d->nlabels && n < 64; i++, n++) {
        keys[n] = d->label_keys[i];
        vals[n] = d->label_values[i];
    }
    keys[n] = "anomaly_rate", vals[n++] = "x";
    keys[n] = "method", vals[n++] = "x";
    keys[n] = "score", vals[n++] = "x";
    keys[n] = "baseline", vals[n++] = "x";
    te_alert_t a;
    te_alert_init(&a);
    a.ngroup = d->ngroup;
    a.group_keys = d->group_by;
    a.group_values = d->group_by;
    a.nlabels = n;
    a.label_keys = keys;
    a.label_values = vals;
    a.rule = d->name;
    char *s = te_alert_render(d->summary, &a, err);
    if (!s)
        return err ? err->code : TE_EINVAL;
    free(s);
    return 0;
}

bool te_detect_def_same(const te_rule_def_t *a, const te_rule_def_t *b)
{
    if (a->every_ns != b->every_ns || (a->method == NULL) != (b->method == NULL))
        return false;
    if (a->method && !te_detect_params_equal(a->method, b->method))
        return false;
    return (!a->stat && !b->stat) || (a->stat && b->stat && strcmp(a->stat, b->stat) == 0);
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    h ^= 0xffu;
    return h * 0x100000001b3ull;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)v);
    return fnv(h, buf);
}

/* What a persisted state must match: everything that shapes the series
 * (kind, where, group_by, stat, field, window, every) and the method. */
static uint64_t def_sig(const te_rule_def_t *d)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, d->kind);
    for (size_t i = 0; i < d->nwhere; i++) {
        h = fnv(h, d->where[i].key);
        h = fnv(h, d->where[i].pattern);
        for (size_t j = 0; j < d->where[i].nvalues; j++)
            h = fnv(h, d->where[i].values[j]);
    }
    for (size_t i = 0; i < d->ngroup; i++)
        h = fnv(h, d->group_by[i]);
    h = fnv(h, d->stat);
    h = fnv(h, d->naggs ? d->aggs[0].field : NULL);
    h = fnv_u64(h, (uint64_t)d->window_ns);
    h = fnv_u64(h, (uint64_t)d->every_ns);
    h = d->method ? fnv_u64(h, te_detect_params_hash(d->method)) : fnv(h, "lua");
    return h;
}

/* --- Lua method state tables <-> blobs --- */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    bool bad;
} lbuf_t;

static void lput(lbuf_t *b, const void *src, size_t n)
{
    if (b->bad)
        return;
    if (b->len + n > LUA_STATE_MAX_BYTES) {
        b->bad = true;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 128;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->bad = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

/* Encodes the value at idx (absolute). Returns false for a type it skips. */
static bool encode_value(lua_State *L, int idx, lbuf_t *b, int depth);

static void encode_table(lua_State *L, int idx, lbuf_t *b, int depth)
{
    unsigned char tag = 't';
    lput(b, &tag, 1);
    lua_pushnil(L);
    while (!b->bad && lua_next(L, idx)) { /* [.., k, v] */
        int top = lua_gettop(L);
        int t = lua_type(L, top);
        int kt = lua_type(L, top - 1);
        if ((kt == LUA_TNUMBER || kt == LUA_TSTRING) &&
            (t == LUA_TNUMBER || t == LUA_TSTRING || t == LUA_TBOOLEAN ||
             (t == LUA_TTABLE && depth < LUA_STATE_MAX_DEPTH))) {
            encode_value(L, top - 1, b, depth + 1);
            encode_value(L, top, b, depth + 1);
        }
        lua_pop(L, 1);
    }
    tag = 'e';
    lput(b, &tag, 1);
}

static bool encode_value(lua_State *L, int idx, lbuf_t *b, int depth)
{
    unsigned char tag;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            lua_Integer i = lua_tointeger(L, idx);
            tag = 'i';
            lput(b, &tag, 1);
            lput(b, &i, sizeof(i));
        } else {
            lua_Number v = lua_tonumber(L, idx);
            tag = 'n';
            lput(b, &tag, 1);
            lput(b, &v, sizeof(v));
        }
        return true;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        uint32_t n32 = (uint32_t)n;
        tag = 's';
        lput(b, &tag, 1);
        lput(b, &n32, sizeof(n32));
        lput(b, s, n);
        return true;
    }
    case LUA_TBOOLEAN:
        tag = lua_toboolean(L, idx) ? 'T' : 'F';
        lput(b, &tag, 1);
        return true;
    case LUA_TTABLE:
        encode_table(L, idx, b, depth);
        return true;
    default:
        return false;
    }
}

typedef struct {
    const unsigned char *p;
    size_t len, off;
} lrd_t;

static bool lget(lrd_t *r, void *dst, size_t n)
{
    if (r->len - r->off < n)
        return false;
    memcpy(dst, r->p + r->off, n);
    r->off += n;
    return true;
}

/* Pushes the decoded value; false (nothing pushed) on a bad blob. */
static bool decode_value(lua_State *L, lrd_t *r, int depth)
{
    unsigned char tag;
    if (depth > LUA_STATE_MAX_DEPTH + 1 || !lget(r, &tag, 1) || !lua_checkstack(L, 3))
        return false;
    switch (tag) {
    case 'i': {
        lua_Integer i;
        if (!lget(r, &i, sizeof(i)))
            return false;
        lua_pushinteger(L, i);
        return true;
    }
    case 'n': {
        lua_Number v;
        if (!lget(r, &v, sizeof(v)))
            return false;
        lua_pushnumber(L, v);
        return true;
    }
    case 's': {
        uint32_t n;
        if (!lget(r, &n, sizeof(n)) || r->len - r->off < n)
            return false;
        lua_pushlstring(L, (const char *)r->p + r->off, n);
        r->off += n;
        return true;
    }
    case 'T':
    case 'F':
        lua_pushboolean(L, tag == 'T');
        return true;
    case 't':
        lua_newtable(L);
        for (;;) {
            if (r->off < r->len && r->p[r->off] == 'e') {
                r->off++;
                return true;
            }
            if (!decode_value(L, r, depth + 1))
                break;
            if (lua_isnil(L, -1) || !decode_value(L, r, depth + 1)) {
                lua_pop(L, 1);
                break;
            }
            lua_rawset(L, -3);
        }
        lua_pop(L, 1);
        return false;
    default:
        return false;
    }
}

/* Encodes the table of ref in L into a malloc'd blob. */
static int encode_ref(lua_State *L, int ref, unsigned char **blob, size_t *len)
{
    lbuf_t b = {0};
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    if (lua_istable(L, -1))
        encode_table(L, lua_gettop(L), &b, 0);
    lua_pop(L, 1);
    if (b.bad) {
        free(b.p);
        return TE_ENOMEM;
    }
    *blob = b.p;
    *len = b.len;
    return 0;
}

/* --- evaluation --- */

void te_group_det_free(te_group_det_t *gd)
{
    if (!gd)
        return;
    te_detect_free(gd->det);
    free(gd->blob);
    free(gd);
}

static te_group_det_t *group_det(te_group_t *g)
{
    if (!g->det) {
        g->det = calloc(1, sizeof(*g->det));
        if (!g->det)
            return NULL;
        g->det->lua_ref = LUA_NOREF;
        g->det->seen_ns = g->last_event_ns;
    }
    return g->det;
}

/* The stat of the group's window; false when there is no value. */
static bool stat_value(const te_rule_def_t *d, te_window_t *w, double *v)
{
    uint64_t c;
    bool capped;
    switch (d->aggs[0].op) {
    case TE_RAGG_COUNT: *v = (double)te_window_count(w); return true;
    case TE_RAGG_RATE: *v = te_window_rate(w); return true;
    case TE_RAGG_SUM: *v = te_window_sum(w); return true; /* an empty hour cost 0 */
    case TE_RAGG_DISTINCT:
        te_window_distinct(w, &c, &capped);
        *v = (double)c;
        return true;
    case TE_RAGG_AVG: return te_window_avg(w, v) == 0;
    case TE_RAGG_MIN: return te_window_min(w, v) == 0;
    case TE_RAGG_MAX: return te_window_max(w, v) == 0;
    case TE_RAGG_LAST: return te_window_last(w, v, NULL) == 0;
    case TE_RAGG_QUANTILE: return te_window_quantile(w, d->aggs[0].q, v) == 0;
    }
    return false;
}

/* Runs the Lua method on v; fills out. False when Lua raised (message on
 * the stack of L). */
static bool lua_method(te_live_rule_t *r, te_group_det_t *gd, double v, int64_t now_ns,
                       te_detect_verdict_t *out)
{
    te_script_t *s = r->script;
    lua_State *L = s->L;
    if (gd->lua_ref == LUA_NOREF || gd->lua_ref == LUA_REFNIL) {
        lrd_t rd = {gd->blob, gd->bloblen, 0};
        if (!gd->blob || !decode_value(L, &rd, 0) || !lua_istable(L, -1)) {
            if (gd->blob)
                te_log(TE_LOG_WARN, "rules", "rule=%s: a saved Lua method state could not be "
                       "decoded; starting empty", r->def->name);
            lua_newtable(L);
        }
        free(gd->blob);
        gd->blob = NULL;
        gd->bloblen = 0;
        gd->lua_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->def->method_ref);
    lua_pushnumber(L, v);
    lua_rawgeti(L, LUA_REGISTRYINDEX, gd->lua_ref);
    lua_pushnumber(L, (lua_Number)now_ns / 1e9);
    if (te_script_pcall(s, 3, 3) != LUA_OK)
        return false;
    out->ready = true;
    out->anomalous = lua_toboolean(L, -3);
    out->score = lua_isnumber(L, -2) ? lua_tonumber(L, -2) : (out->anomalous ? 1 : 0);
    out->baseline = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : NAN;
    out->lower = out->upper = NAN;
    lua_pop(L, 3);
    return true;
}

static void fmt_num(char *buf, size_t n, double v)
{
    if (isfinite(v))
        snprintf(buf, n, "%.6g", v);
    else
        snprintf(buf, n, "%s", "");
}

/* The def's labels plus method, score and baseline (multivariate: and
 * the series' anomaly rate, its stored anomaly score). */
static void set_labels(te_alert_t *a, const te_rule_def_t *d, const te_group_det_t *gd)
{
    char *keys[64 + 4], *vals[64 + 4];
    char score[32], base[32], method[16], rate[32];
    size_t n = 0;
    for (size_t i = 0; i < d->nlabels && n < 64; i++, n++) {
        keys[n] = d->label_keys[i];
        vals[n] = d->label_values[i];
    }
    fmt_num(score, sizeof(score), gd->score);
    fmt_num(base, sizeof(base), gd->baseline);
    snprintf(method, sizeof(method), "%s", method_name(d));
    keys[n] = "method", vals[n++] = method;
    keys[n] = "score", vals[n++] = score;
    keys[n] = "baseline", vals[n++] = base;
    if (gd->det && d->method && d->method->kind == TE_DETECT_MULTIVARIATE) {
        fmt_num(rate, sizeof(rate), te_detect_anomaly_rate(gd->det));
        keys[n] = "anomaly_rate", vals[n++] = rate;
    }
    te_alert_set_labels(a, keys, vals, n);
}

/* Evaluates one group; false when a Lua method raised (error recorded). */
static bool eval_group(te_ruleset_t *rs, te_live_rule_t *r, te_group_t *g, int64_t now_ns)
{
    const te_rule_def_t *d = r->def;
    te_window_advance(g->win[0], now_ns);
    double v = 0;
    bool have = stat_value(d, g->win[0], &v);
    te_group_det_t *gd = group_det(g);
    if (!gd)
        return true; /* ENOMEM: try again next time */
    te_detect_verdict_t vd;
    memset(&vd, 0, sizeof(vd));
    if (d->method) {
        if (!gd->det && gd->blob) {
            te_err_t e2;
            te_err_clear(&e2);
            gd->det = te_detect_load(d->method, gd->blob, gd->bloblen, &e2);
            if (!gd->det)
                te_log(TE_LOG_WARN, "rules", "rule=%s: saved state dropped: %s", d->name,
                       e2.msg);
            free(gd->blob);
            gd->blob = NULL;
            gd->bloblen = 0;
        }
        if (!gd->det && !(gd->det = te_detect_new(d->method, NULL)))
            return true;
        if (d->method->kind == TE_DETECT_ABSENT) {
            if (gd->seen_ns)
                te_detect_seen(gd->det, gd->seen_ns);
            te_detect_update(gd->det, 0, now_ns, &vd);
            v = vd.score * (double)d->method->after_ns / 1e9; /* seconds of silence */
            have = true;
        } else if (have) {
            te_detect_update(gd->det, v, now_ns, &vd);
        }
    } else if (have && r->script->status != TE_SCRIPT_DISABLED) {
        lua_State *L = r->script->L;
        int top = lua_gettop(L);
        if (!lua_method(r, gd, v, now_ns, &vd)) {
            te_eval_lua_error(r, L, now_ns);
            lua_settop(L, top);
            return false;
        }
        lua_settop(L, top);
    }
    gd->has_verdict = vd.ready;
    if (vd.ready) {
        gd->score = vd.score;
        gd->baseline = vd.baseline;
    }
    bool cond = vd.ready && vd.anomalous;
    te_alert_t *a = &g->alert;
    if (cond) {
        a->has_value = have && isfinite(v);
        a->value = v;
        a->severity = d->severity;
    }
    te_alert_policy_t p = {d->pending_ns, d->keep_firing_ns, d->repeat_every_ns};
    te_alert_transition_t t = te_alert_step(a, &p, cond, now_ns, &rs->rng);
    if (t != TE_ALERT_T_NONE)
        te_alert_set_notify(a, d->notify, d->nnotify);
    if (cond || t != TE_ALERT_T_NONE) {
        if (cond || t == TE_ALERT_T_FIRING || t == TE_ALERT_T_PENDING)
            set_labels(a, d, gd);
        if (d->summary) {
            char *sum = te_alert_render(d->summary, a, NULL);
            if (sum) {
                free(a->summary);
                a->summary = sum;
            }
        }
    }
    te_ruleset_notify(rs, a, t);
    return true;
}

/* How long an idle group's state is worth keeping. */
static int64_t horizon_ns(const te_rule_def_t *d)
{
    int64_t h = 2 * d->window_ns;
    int64_t keep = 7 * DAY_NS;
    if (d->method && d->method->kind == TE_DETECT_ABSENT)
        keep = d->method->after_ns + 2 * d->every_ns + d->window_ns;
    else if (d->method && d->method->kind == TE_DETECT_SEASONAL)
        keep = 2 * d->method->period_ns > keep ? 2 * d->method->period_ns : keep;
    return h > keep ? h : keep;
}

static void unref_state(te_live_rule_t *r, te_group_det_t *gd)
{
    if (gd && gd->lua_ref != LUA_NOREF && gd->lua_ref != LUA_REFNIL) {
        luaL_unref(r->script->L, LUA_REGISTRYINDEX, gd->lua_ref);
        gd->lua_ref = LUA_NOREF;
    }
}

void te_detect_eval(te_ruleset_t *rs, te_live_rule_t *r, int64_t now_ns)
{
    uint64_t c0 = te_eval_cpu_ns();
    bool ok = true;
    for (size_t i = 0; i < r->groups.cap && r->script->status != TE_SCRIPT_DISABLED; i++) {
        te_group_t *g = r->groups.slots[i];
        if (g && !eval_group(rs, r, g, now_ns))
            ok = false;
    }
    if (ok && r->script->status != TE_SCRIPT_DISABLED)
        r->failed = false;
    r->evals++;
    r->last_eval_ns = now_ns;
    r->cpu_ns += te_eval_cpu_ns() - c0;
    int64_t h = horizon_ns(r->def);
    for (size_t i = 0; i < r->groups.cap;) {
        te_group_t *g = r->groups.slots[i];
        if (g && g->alert.state != TE_ALERT_PENDING && g->alert.state != TE_ALERT_FIRING &&
            now_ns - g->last_event_ns >= h) {
            unref_state(r, g->det);
            te_group_remove(&r->groups, g);
            continue; /* a later entry may have shifted into slot i */
        }
        i++;
    }
}

void te_detect_rebind(te_live_rule_t *r)
{
    for (size_t i = 0; i < r->groups.cap; i++) {
        te_group_t *g = r->groups.slots[i];
        te_group_det_t *gd = g ? g->det : NULL;
        if (!gd || gd->lua_ref == LUA_NOREF || gd->lua_ref == LUA_REFNIL)
            continue;
        unsigned char *blob = NULL;
        size_t len = 0;
        if (encode_ref(r->script->L, gd->lua_ref, &blob, &len) == 0) {
            free(gd->blob);
            gd->blob = blob;
            gd->bloblen = len;
        }
        unref_state(r, gd);
    }
}

/* --- persistence --- */

int te_ruleset_detect_snapshot(te_ruleset_t *rs, int (*cb)(void *ud, const te_detect_state_t *st),
                               void *ud)
{
    for (size_t i = 0; i < rs->n; i++) {
        te_live_rule_t *r = rs->rules[i];
        if (r->def->type != TE_DEF_DETECTOR)
            continue;
        uint64_t sig = def_sig(r->def);
        for (size_t j = 0; j < r->groups.cap; j++) {
            te_group_t *g = r->groups.slots[j];
            te_group_det_t *gd = g ? g->det : NULL;
            if (!gd)
                continue;
            unsigned char *blob = NULL;
            size_t len = 0;
            int rc = 0;
            if (gd->det)
                rc = te_detect_save(gd->det, &blob, &len);
            else if (gd->lua_ref != LUA_NOREF && gd->lua_ref != LUA_REFNIL)
                rc = encode_ref(r->script->L, gd->lua_ref, &blob, &len);
            if (rc)
                return rc;
            te_detect_state_t st = {.rule = r->def->name,
                                    .key = g->key,
                                    .keylen = g->keylen,
                                    .sig = sig,
                                    .seen_ns = gd->seen_ns,
                                    .blob = blob ? blob : gd->blob,
                                    .bloblen = blob ? len : gd->bloblen};
            rc = st.blob ? cb(ud, &st) : 0;
            free(blob);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int te_ruleset_detect_restore(te_ruleset_t *rs, const te_detect_state_t *st, int64_t now_ns,
                              te_err_t *err)
{
    te_live_rule_t *r = te_ruleset_find(rs, st->rule);
    if (!r || r->def->type != TE_DEF_DETECTOR || def_sig(r->def) != st->sig)
        return te_err_set(err, TE_ENOTFOUND, "rules: no detector \"%s\" with this definition",
                          st->rule);
    const te_rule_def_t *d = r->def;
    const char *items[TE_GROUP_MAX_ITEMS];
    size_t n = 0;
    const char *k = st->key, *end = st->key + st->keylen;
    while (k < end && n < d->ngroup) {
        const char *z = memchr(k, '\0', (size_t)(end - k));
        if (!z)
            break;
        items[n++] = k;
        k = z + 1;
    }
    if (n != d->ngroup || k != end)
        return te_err_set(err, TE_ENOTFOUND, "rules: detector \"%s\": group keys differ",
                          st->rule);
    uint64_t h = te_group_hash(items, n);
    te_group_t *g = te_group_find(&r->groups, items, n, h);
    if (!g) {
        g = te_group_add(&r->groups, items, n, h, r->wopts, d->naggs, now_ns);
        if (g && te_alert_set_identity(&g->alert, d->name, (const char *const *)d->group_by,
                                       items, n)) {
            te_group_remove(&r->groups, g);
            g = NULL;
        }
    }
    te_group_det_t *gd = g ? group_det(g) : NULL;
    unsigned char *blob = malloc(st->bloblen ? st->bloblen : 1);
    if (!gd || !blob) {
        free(blob);
        return te_err_set(err, TE_ENOMEM, "rules: cannot restore detector \"%s\"", st->rule);
    }
    memcpy(blob, st->blob, st->bloblen);
    unref_state(r, gd);
    te_detect_free(gd->det);
    gd->det = NULL;
    free(gd->blob);
    gd->blob = blob;
    gd->bloblen = st->bloblen;
    gd->seen_ns = 0; /* the state knows the last event; none since */
    return 0;
}
