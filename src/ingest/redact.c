/*
 * redact.c - compiling the `redact` block and redacting strings and events.
 *
 * THREAD: see redact.h (compiled state is read-only, counters are atomic,
 * each call makes its own PCRE2 match data).
 *
 * The one idea: a string goes through one table-driven pass (scan_t) that
 * counts digits, notes '@' and '.', and measures the longest run of token
 * characters; a detector runs only when that pass says it could match.
 * Detectors run as stages in a fixed order - the user's patterns, jwt,
 * api_key, email, card, ipv4 - each on the output of the one before, so a
 * later detector never sees what an earlier one replaced. The replacement
 * text "[REDACTED:<type>]" holds no digit, '@', '.' or long token run, so
 * the first pass stays a safe over-estimate for every later stage.
 */
#include "redact.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"

/* The shortest text an api_key or jwt match can span (xoxb- + 10, eyJ....
 * with two dots): a string without a token run this long skips both. */
#define TOKEN_RUN_MIN 14
#define CARD_MIN_DIGITS 13
#define CARD_MAX_DIGITS 19

static const char *const type_names[TE_REDACT_NTYPES] = {"email", "card", "api_key",
                                                         "ipv4",  "jwt",  "pattern"};
static const char *const replacements[TE_REDACT_NTYPES] = {
    "[REDACTED:email]", "[REDACTED:card]", "[REDACTED:api_key]",
    "[REDACTED:ipv4]",  "[REDACTED:jwt]",  "[REDACTED:pattern]"};

/* JWT: three base64url segments, the header starting eyJ ({"); the
 * signature may be empty (alg "none"). */
static const char jwt_re[] =
    "(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]*";

/* API-key shapes (docs/redaction.md lists them). \K keeps a "Bearer " or
 * "api_key=" prefix and replaces only the secret after it. */
static const char api_key_re[] =
    "(?<![A-Za-z0-9_-])sk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{20,}"
    "|(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])"
    "|(?<![A-Za-z0-9_])(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}"
    "|(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{22,}"
    "|(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}"
    "|(?<![A-Za-z0-9])[Bb]earer[ \\t]+\\K[A-Za-z0-9._~+/-]{16,}=*"
    "|(?i:api[_-]?key|access[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token"
    "|refresh[_-]?token|client[_-]?secret|token|secret|password|passwd)"
    "[\"']?[ \\t]*[=:][ \\t]*[\"']?\\K[A-Za-z0-9+/_.~-]{16,}={0,2}";

typedef enum { SK_REGEX, SK_EMAIL, SK_CARD, SK_IPV4 } stage_kind_t;

typedef struct stage {
    stage_kind_t kind;
    te_redact_type_t type;
    pcre2_code *re;    /* SK_REGEX */
    uint32_t match_opts;
} stage_t;

struct te_redact {
    stage_t *stages;
    size_t nstages;
    _Atomic uint64_t counts[TE_REDACT_NTYPES];
};

/* What one pass over a string found. */
typedef struct scan {
    size_t digits;
    size_t token_run; /* longest run of [A-Za-z0-9_+/.=~-] */
    bool at, dot;
} scan_t;

/* Per call: match data made on first need, counts added on success. */
typedef struct call {
    pcre2_match_data *md;
    uint64_t counts[TE_REDACT_NTYPES];
} call_t;

/* C_U8: a byte of a multi-byte UTF-8 sequence; only the email scanner
 * takes those (internationalised addresses), the others stay ASCII. */
enum { C_DIGIT = 1, C_ALPHA = 2, C_TOKEN = 4, C_LOCAL = 8, C_U8 = 16 };
static unsigned char ctab[256];
static atomic_bool ctab_ready;

static void ctab_init(void)
{
    if (atomic_load_explicit(&ctab_ready, memory_order_acquire))
        return;
    unsigned char t[256] = {0};
    for (int c = '0'; c <= '9'; c++)
        t[c] = C_DIGIT | C_TOKEN | C_LOCAL;
    for (int c = 'a'; c <= 'z'; c++) {
        t[c] = C_ALPHA | C_TOKEN | C_LOCAL;
        t[c - 'a' + 'A'] = C_ALPHA | C_TOKEN | C_LOCAL;
    }
    for (const char *p = "_+/.=~-"; *p; p++)
        t[(unsigned char)*p] |= C_TOKEN;
    for (const char *p = "._%+-"; *p; p++)
        t[(unsigned char)*p] |= C_LOCAL;
    for (int c = 0x80; c < 0x100; c++)
        t[c] = C_U8 | C_LOCAL;
    memcpy(ctab, t, sizeof(t));
    atomic_store_explicit(&ctab_ready, true, memory_order_release);
}

static inline bool is_digit(char c)
{
    return ctab[(unsigned char)c] & C_DIGIT;
}

static inline bool is_alnum(char c)
{
    return ctab[(unsigned char)c] & (C_DIGIT | C_ALPHA);
}

/* A letter or digit of a domain label (ASCII or UTF-8). */
static inline bool is_dchar(char c)
{
    return ctab[(unsigned char)c] & (C_DIGIT | C_ALPHA | C_U8);
}

static void scan(const char *s, size_t len, scan_t *out)
{
    size_t digits = 0, run = 0, best = 0;
    bool at = false, dot = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char f = ctab[(unsigned char)s[i]];
        digits += f & C_DIGIT;
        if (f & C_TOKEN) {
            if (++run > best)
                best = run;
        } else {
            run = 0;
        }
        at |= s[i] == '@';
        dot |= s[i] == '.';
    }
    out->digits = digits;
    out->token_run = best;
    out->at = at;
    out->dot = dot;
}

/* True when s holds "eyJ" (memmem is not POSIX). */
static bool has_eyj(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    while (end - p >= 3 && (p = memchr(p, 'e', (size_t)(end - p - 2))) != NULL) {
        if (p[1] == 'y' && p[2] == 'J')
            return true;
        p++;
    }
    return false;
}

static bool stage_possible(const stage_t *st, const scan_t *sc, const char *s, size_t len)
{
    switch (st->type) {
    case TE_REDACT_EMAIL:
        return sc->at && sc->dot;
    case TE_REDACT_CARD:
        return sc->digits >= CARD_MIN_DIGITS;
    case TE_REDACT_IPV4:
        return sc->dot && sc->digits >= 4;
    case TE_REDACT_API_KEY:
        return sc->token_run >= TOKEN_RUN_MIN;
    case TE_REDACT_JWT:
        return sc->token_run >= TOKEN_RUN_MIN && has_eyj(s, len);
    default:
        return true; /* user patterns: PCRE2's own start-of-match optimisations */
    }
}

/* ---- hand scanners: each finds the first match at or after from ---- */

static bool find_email(const char *s, size_t len, size_t from, size_t *ms, size_t *me)
{
    size_t floor = from;
    const char *p;
    while (from < len && (p = memchr(s + from, '@', len - from)) != NULL) {
        size_t a = (size_t)(p - s), l = a, q = a + 1;
        from = a + 1;
        while (l > floor && (ctab[(unsigned char)s[l - 1]] & C_LOCAL))
            l--;
        while (l < a && s[l] == '.')
            l++;
        if (l == a || q >= len || !is_dchar(s[q]))
            continue;
        /* domain: labels of [A-Za-z0-9-] or UTF-8 joined by single dots */
        size_t last_dot = 0;
        while (q < len) {
            if (is_dchar(s[q]) || s[q] == '-')
                q++;
            else if (s[q] == '.' && q + 1 < len && is_dchar(s[q + 1]))
                last_dot = q++;
            else
                break;
        }
        while (q > a + 1 && s[q - 1] == '-')
            q--;
        if (last_dot >= q)
            continue;
        /* the top-level label: 2+ letters; else cut back to a dot whose
         * label is (a@b.com.1 -> a@b.com) */
        while (last_dot > a) {
            bool ok = q - last_dot - 1 >= 2;
            for (size_t i = last_dot + 1; ok && i < q; i++)
                ok = (ctab[(unsigned char)s[i]] & (C_ALPHA | C_U8)) != 0;
            if (ok)
                break;
            q = last_dot;
            size_t d = last_dot;
            last_dot = 0;
            while (d > a + 1) {
                d--;
                if (s[d] == '.') {
                    last_dot = d;
                    break;
                }
            }
        }
        if (last_dot <= a)
            continue;
        *ms = l;
        *me = q;
        return true;
    }
    return false;
}

static bool luhn_ok(const char *s, size_t start, size_t end)
{
    int sum = 0;
    bool dbl = false;
    for (size_t i = end; i > start; i--) {
        char c = s[i - 1];
        if (!is_digit(c))
            continue;
        int d = c - '0';
        if (dbl) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        dbl = !dbl;
    }
    return sum % 10 == 0;
}

/* 13-19 digits in groups joined by one space or dash, not inside a longer
 * alphanumeric word, passing the Luhn check. Of a longer run of groups, the
 * longest leading part that qualifies is taken ("4111 1111 1111 1111 12/26"). */
static bool find_card(const char *s, size_t len, size_t from, size_t *ms, size_t *me)
{
    size_t i = from;
    while (i < len) {
        if (!is_digit(s[i]) || (i > 0 && is_alnum(s[i - 1]))) {
            i++;
            continue;
        }
        size_t ends[CARD_MAX_DIGITS + 1], counts[CARD_MAX_DIGITS + 1], ngroups = 0;
        size_t j = i, nd = 0;
        for (;;) {
            while (j < len && is_digit(s[j])) {
                nd++;
                j++;
            }
            if (ngroups <= CARD_MAX_DIGITS) {
                ends[ngroups] = j;
                counts[ngroups++] = nd;
            }
            if (nd < CARD_MAX_DIGITS && j + 1 < len && (s[j] == ' ' || s[j] == '-') &&
                is_digit(s[j + 1]))
                j++;
            else
                break;
        }
        for (size_t g = ngroups; g > 0; g--) {
            size_t e = ends[g - 1], n = counts[g - 1];
            if (n < CARD_MIN_DIGITS || n > CARD_MAX_DIGITS)
                continue;
            if (e < len && is_alnum(s[e]))
                continue;
            if (luhn_ok(s, i, e)) {
                *ms = i;
                *me = e;
                return true;
            }
        }
        i = j > i ? j : i + 1;
    }
    return false;
}

/* Four dotted decimal octets 0-255, not part of a longer dotted or
 * alphanumeric run (so 1.2.3.4.5 and v1.2.3.4 are left alone). */
static bool find_ipv4(const char *s, size_t len, size_t from, size_t *ms, size_t *me)
{
    size_t i = from;
    while (i < len) {
        if (!is_digit(s[i]) || (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '.'))) {
            i++;
            continue;
        }
        size_t j = i;
        bool ok = true;
        for (int oct = 0; ok && oct < 4; oct++) {
            if (oct) {
                if (j < len && s[j] == '.')
                    j++;
                else
                    ok = false;
            }
            size_t k = j;
            unsigned v = 0;
            while (ok && k < len && is_digit(s[k]) && k - j < 4) {
                v = v * 10 + (unsigned)(s[k] - '0');
                k++;
            }
            if (k == j || k - j > 3 || v > 255)
                ok = false;
            j = k;
        }
        if (ok && j < len &&
            (is_alnum(s[j]) || (s[j] == '.' && j + 1 < len && is_digit(s[j + 1]))))
            ok = false;
        if (ok) {
            *ms = i;
            *me = j;
            return true;
        }
        /* skip this run of digits and dots */
        while (i < len && (is_digit(s[i]) || s[i] == '.'))
            i++;
    }
    return false;
}

/* Returns 1 with [*ms, *me) set, 0 for no match, TE_ENOMEM. */
static int find(const stage_t *st, call_t *c, const char *s, size_t len, size_t from, size_t *ms,
                size_t *me)
{
    switch (st->kind) {
    case SK_EMAIL:
        return find_email(s, len, from, ms, me);
    case SK_CARD:
        return find_card(s, len, from, ms, me);
    case SK_IPV4:
        return find_ipv4(s, len, from, ms, me);
    case SK_REGEX:
        break;
    }
    if (!c->md && !(c->md = pcre2_match_data_create(1, NULL)))
        return TE_ENOMEM;
    int rc = pcre2_match(st->re, (PCRE2_SPTR)s, len, from, st->match_opts, c->md, NULL);
    if (rc < 0)
        return rc == PCRE2_ERROR_NOMEMORY ? TE_ENOMEM : 0; /* NOMATCH, or a limit: no match */
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
    if (ov[1] <= ov[0])
        return 0; /* empty (patterns that can match empty are refused at compile) */
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

typedef struct obuf {
    char *p;
    size_t len, cap;
} obuf_t;

static bool obuf_add(obuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return false;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

static int redact_str(const te_redact_t *r, call_t *c, const char *s, size_t len, char **out,
                      size_t *out_len)
{
    scan_t sc;
    const char *cur = s;
    size_t cur_len = len;
    char *owned = NULL;
    bool checked_utf8 = false;
    *out = NULL;
    scan(s, len, &sc);
    for (size_t k = 0; k < r->nstages; k++) {
        const stage_t *st = &r->stages[k];
        if (!stage_possible(st, &sc, cur, cur_len))
            continue;
        if ((st->match_opts & PCRE2_NO_UTF_CHECK) && !checked_utf8) {
            if (te_utf8_check(cur, cur_len) != cur_len)
                continue; /* events hold valid UTF-8 only; never match invalid text */
            checked_utf8 = true;
        }
        obuf_t b = {0};
        size_t from = 0, copied = 0, ms, me;
        int rc;
        while (from < cur_len && (rc = find(st, c, cur, cur_len, from, &ms, &me)) != 0) {
            const char *rep = replacements[st->type];
            if (rc < 0 || !obuf_add(&b, cur + copied, ms - copied) ||
                !obuf_add(&b, rep, strlen(rep))) {
                free(b.p);
                free(owned);
                return TE_ENOMEM;
            }
            c->counts[st->type]++;
            copied = from = me;
        }
        if (!b.p)
            continue;
        if (!obuf_add(&b, cur + copied, cur_len - copied)) {
            free(b.p);
            free(owned);
            return TE_ENOMEM;
        }
        free(owned);
        owned = b.p;
        cur = owned;
        cur_len = b.len;
    }
    *out = owned;
    if (out_len)
        *out_len = owned ? cur_len : 0;
    return 0;
}

static void call_finish(te_redact_t *r, call_t *c, bool ok)
{
    pcre2_match_data_free(c->md);
    c->md = NULL;
    if (!ok)
        return;
    for (int t = 0; t < TE_REDACT_NTYPES; t++)
        if (c->counts[t])
            atomic_fetch_add_explicit(&r->counts[t], c->counts[t], memory_order_relaxed);
}

int te_redact_string(te_redact_t *r, const char *s, size_t len, char **out, size_t *out_len)
{
    call_t c = {0};
    int rc = redact_str(r, &c, s, len, out, out_len);
    call_finish(r, &c, rc == 0);
    return rc;
}

/* ---- events ---- */

/* Redacts every string value under item; *changed set when one was. */
static int redact_json(const te_redact_t *r, call_t *c, cJSON *item, bool *changed)
{
    for (; item; item = item->next) {
        if (cJSON_IsString(item) && item->valuestring) {
            char *o = NULL;
            int rc = redact_str(r, c, item->valuestring, strlen(item->valuestring), &o, NULL);
            if (rc < 0)
                return rc;
            if (o) {
                free(item->valuestring); /* no cJSON hooks are installed: plain malloc */
                item->valuestring = o;
                *changed = true;
            }
        } else if (item->child) {
            int rc = redact_json(r, c, item->child, changed);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Could any string of the body text match? The text is cJSON's compact
 * print: escapes only add backslashes and hex digits, so a scan of the raw
 * text over-estimates every property the per-string scan looks at. */
static bool body_possible(const te_redact_t *r, const char *body, size_t len)
{
    scan_t sc;
    scan(body, len, &sc);
    for (size_t k = 0; k < r->nstages; k++)
        if (stage_possible(&r->stages[k], &sc, body, len))
            return true;
    return false;
}

static int redact_event(te_redact_t *r, call_t *c, te_event_t **evp, te_err_t *err)
{
    te_event_t *ev = *evp;
    size_t ntags = ev->ntags; /* ev is freed once replaced */
    char **vals = NULL;
    size_t *vlens = NULL;
    bool tags_changed = false, body_changed = false;
    char *body = NULL, *tj = NULL;
    cJSON *root = NULL;
    int rc = 0;

    for (size_t i = 0; i < ev->ntags; i++) {
        char *o = NULL;
        size_t olen = 0;
        rc = redact_str(r, c, ev->tags[i].value, strlen(ev->tags[i].value), &o, &olen);
        if (rc < 0)
            goto out;
        if (!o)
            continue;
        if (!vals) {
            vals = calloc(ev->ntags, sizeof(*vals));
            vlens = calloc(ev->ntags, sizeof(*vlens));
            if (!vals || !vlens) {
                free(o);
                rc = TE_ENOMEM;
                goto out;
            }
        }
        vals[i] = o;
        vlens[i] = olen;
        tags_changed = true;
    }
    if (ev->body && body_possible(r, ev->body, ev->body_len)) {
        root = cJSON_ParseWithLength(ev->body, ev->body_len);
        if (!root) {
            rc = TE_ENOMEM; /* our own printed body: only memory can fail */
            goto out;
        }
        rc = redact_json(r, c, root, &body_changed);
        if (rc < 0)
            goto out;
        if (body_changed && !(body = cJSON_PrintUnformatted(root))) {
            rc = TE_ENOMEM;
            goto out;
        }
    }
    if (!tags_changed && !body_changed)
        goto out;

    size_t tj_len = ev->tags_json_len;
    if (tags_changed) {
        size_t need = 3; /* {} NUL */
        for (size_t i = 0; i < ev->ntags; i++) {
            const char *v = vals[i] ? vals[i] : ev->tags[i].value;
            size_t vl = vals[i] ? vlens[i] : strlen(v);
            need += 6 + te_json_escaped_len(ev->tags[i].key, strlen(ev->tags[i].key)) +
                    te_json_escaped_len(v, vl);
        }
        if (!(tj = malloc(need))) {
            rc = TE_ENOMEM;
            goto out;
        }
        char *p = tj;
        *p++ = '{';
        for (size_t i = 0; i < ev->ntags; i++) {
            const char *v = vals[i] ? vals[i] : ev->tags[i].value;
            size_t vl = vals[i] ? vlens[i] : strlen(v);
            if (i)
                *p++ = ',';
            *p++ = '"';
            p = te_json_escape(p, ev->tags[i].key, strlen(ev->tags[i].key));
            *p++ = '"';
            *p++ = ':';
            *p++ = '"';
            p = te_json_escape(p, v, vl);
            *p++ = '"';
        }
        *p++ = '}';
        *p = '\0';
        tj_len = (size_t)(p - tj);
    }
    te_event_t *nev = NULL;
    rc = te_event_build(ev->ts_ns, ev->kind, ev->source, ev->id, ev->trace_id, ev->span_id,
                        ev->parent_span_id, ev->correlation_id, tj ? tj : ev->tags_json, tj_len,
                        ev->fields_blob, ev->fields_blob_len, body ? body : ev->body,
                        body ? strlen(body) : ev->body_len, &nev, err);
    if (rc < 0)
        goto out;
    nev->size_bytes = ev->size_bytes;
    te_event_free(ev);
    *evp = nev;
out:
    if (rc == TE_ENOMEM)
        te_err_set(err, TE_ENOMEM, "redact: out of memory");
    if (vals)
        for (size_t i = 0; i < ntags; i++)
            free(vals[i]);
    free(vals);
    free(vlens);
    free(tj);
    free(body); /* cJSON_PrintUnformatted uses plain malloc (no hooks) */
    cJSON_Delete(root);
    return rc;
}

int te_redact_event(te_redact_t *r, te_event_t **evp, te_err_t *err)
{
    if (!r || !evp || !*evp)
        return 0;
    call_t c = {0};
    int rc = redact_event(r, &c, evp, err);
    call_finish(r, &c, rc == 0);
    return rc;
}

void te_redact_counts(const te_redact_t *r, uint64_t out[TE_REDACT_NTYPES])
{
    for (int t = 0; t < TE_REDACT_NTYPES; t++)
        out[t] = r ? atomic_load_explicit(&r->counts[t], memory_order_relaxed) : 0;
}

const char *te_redact_type_name(int type)
{
    return type >= 0 && type < TE_REDACT_NTYPES ? type_names[type] : NULL;
}

/* ---- compiling ---- */

void te_redact_free(te_redact_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nstages; i++)
        pcre2_code_free(r->stages[i].re);
    free(r->stages);
    free(r);
}

/* Compiles re; a user pattern (user true) gets UTF mode and must not match
 * the empty string. what names it in errors. */
static int compile_re(stage_t *st, const char *re, bool user, const char *what, te_err_t *err)
{
    int ec = 0;
    PCRE2_SIZE off = 0;
    uint32_t opts = user ? PCRE2_UTF : 0;
    st->re = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
    if (!st->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        return te_err_set(err, TE_ECONFIG, "%s \"%s\": %s (at offset %zu)", what, re,
                          (const char *)msg, (size_t)off);
    }
    uint32_t minlen = 0;
    if (pcre2_pattern_info(st->re, PCRE2_INFO_MINLENGTH, &minlen) == 0 && minlen == 0) {
        /* MINLENGTH is a lower bound: make sure by matching the empty string */
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        int mrc = md ? pcre2_match(st->re, (PCRE2_SPTR) "", 0, 0, 0, md, NULL) : 0;
        pcre2_match_data_free(md);
        if (!md || mrc >= 0) {
            pcre2_code_free(st->re);
            st->re = NULL;
            if (!md)
                return te_err_set(err, TE_ENOMEM, "redact: out of memory");
            return te_err_set(err, TE_ECONFIG, "%s \"%s\": matches the empty string", what,
                              re);
        }
    }
    /* JIT where the platform has it; without it pcre2_match interprets */
    (void)pcre2_jit_compile(st->re, PCRE2_JIT_COMPLETE);
    st->match_opts = user ? PCRE2_NO_UTF_CHECK : 0;
    return 0;
}

static int add_builtin(te_redact_t *r, const char *name, te_err_t *err)
{
    stage_t st = {0};
    if (strcmp(name, "email") == 0) {
        st.kind = SK_EMAIL;
        st.type = TE_REDACT_EMAIL;
    } else if (strcmp(name, "card") == 0) {
        st.kind = SK_CARD;
        st.type = TE_REDACT_CARD;
    } else if (strcmp(name, "ipv4") == 0) {
        st.kind = SK_IPV4;
        st.type = TE_REDACT_IPV4;
    } else if (strcmp(name, "api_key") == 0 || strcmp(name, "jwt") == 0) {
        st.kind = SK_REGEX;
        st.type = name[0] == 'j' ? TE_REDACT_JWT : TE_REDACT_API_KEY;
        int rc = compile_re(&st, name[0] == 'j' ? jwt_re : api_key_re, false, name, err);
        if (rc < 0)
            return rc;
    } else {
        return te_err_set(err, TE_ECONFIG,
                          "builtin: unknown value \"%s\" (known: \"email\", \"card\", "
                          "\"api_key\", \"ipv4\", \"jwt\")",
                          name);
    }
    for (size_t i = 0; i < r->nstages; i++)
        if (r->stages[i].type == st.type) { /* listed twice: once is enough */
            pcre2_code_free(st.re);
            return 0;
        }
    r->stages[r->nstages++] = st;
    return 0;
}

static int stage_rank(const stage_t *st)
{
    static const int rank[TE_REDACT_NTYPES] = {
        [TE_REDACT_PATTERN] = 0, [TE_REDACT_JWT] = 1,  [TE_REDACT_API_KEY] = 2,
        [TE_REDACT_EMAIL] = 3,   [TE_REDACT_CARD] = 4, [TE_REDACT_IPV4] = 5};
    return rank[st->type];
}

static int compile_json(te_redact_t *r, const cJSON *root, te_err_t *err)
{
    const cJSON *builtin = cJSON_GetObjectItemCaseSensitive(root, "builtin");
    const cJSON *patterns = cJSON_GetObjectItemCaseSensitive(root, "patterns");
    if (!cJSON_IsObject(root) || (builtin && !cJSON_IsArray(builtin)) ||
        (patterns && !cJSON_IsArray(patterns)))
        return te_err_set(err, TE_ECONFIG,
                          "expected { builtin = { names... }, patterns = { regexes... } }");
    size_t n = (size_t)cJSON_GetArraySize(builtin) + (size_t)cJSON_GetArraySize(patterns);
    if (!(r->stages = calloc(n ? n : 1, sizeof(*r->stages))))
        return te_err_set(err, TE_ENOMEM, "redact: out of memory");
    const cJSON *it;
    cJSON_ArrayForEach(it, builtin)
    {
        if (!cJSON_IsString(it))
            return te_err_set(err, TE_ECONFIG, "builtin: expected a list of names");
        int rc = add_builtin(r, it->valuestring, err);
        if (rc < 0)
            return rc;
    }
    int i = 0;
    cJSON_ArrayForEach(it, patterns)
    {
        char what[32];
        snprintf(what, sizeof(what), "patterns[%d]", ++i);
        if (!cJSON_IsString(it))
            return te_err_set(err, TE_ECONFIG, "%s: expected a string", what);
        stage_t *st = &r->stages[r->nstages];
        st->kind = SK_REGEX;
        st->type = TE_REDACT_PATTERN;
        int rc = compile_re(st, it->valuestring, true, what, err);
        if (rc < 0)
            return rc;
        r->nstages++;
    }
    /* stable sort into stage order (n is tiny) */
    for (size_t a = 1; a < r->nstages; a++)
        for (size_t b = a; b > 0 && stage_rank(&r->stages[b - 1]) > stage_rank(&r->stages[b]);
             b--) {
            stage_t t = r->stages[b];
            r->stages[b] = r->stages[b - 1];
            r->stages[b - 1] = t;
        }
    return 0;
}

int te_redact_compile(const char *json, te_redact_t **out, te_err_t *err)
{
    *out = NULL;
    if (!json)
        return 0;
    ctab_init();
    te_redact_t *r = calloc(1, sizeof(*r));
    if (!r)
        return te_err_set(err, TE_ENOMEM, "redact: out of memory");
    cJSON *root = cJSON_Parse(json);
    int rc = root ? compile_json(r, root, err)
                  : te_err_set(err, TE_ECONFIG, "redact: the block is not valid JSON");
    cJSON_Delete(root);
    if (rc < 0) {
        te_redact_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- the process's ingest redactor ---- */

static te_redact_t *g_active;

int te_redact_install(const char *json, te_err_t *err)
{
    te_redact_t *r = NULL;
    int rc = te_redact_compile(json, &r, err);
    if (rc < 0)
        return rc;
    te_redact_uninstall();
    g_active = r;
    return 0;
}

void te_redact_uninstall(void)
{
    te_redact_free(g_active);
    g_active = NULL;
}

te_redact_t *te_redact_active(void)
{
    return g_active;
}
