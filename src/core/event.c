/*
 * event.c - JSON object -> normalised, validated te_event_t (SPEC section 2).
 *
 * THREAD: any. The one idea: parse once with cJSON, never re-print the whole
 * event. A raw pre-scan (event_scan.c) rejects NUL bytes and `\u0000`
 * escapes (cJSON would silently cut the string there) and notes whether any
 * byte is invalid UTF-8, so the per-string checks that name the culprit run
 * only when needed. Nesting is checked on the parsed tree (cJSON itself stops
 * at 1000 levels). The collected parts live in a stack-held `build_t`
 * (sorted insert, the last duplicate key wins), then one malloc holds the
 * struct, the tag and field arrays, every string, tags_json, fields_blob and
 * the body, which cJSON_PrintPreallocated prints straight into the
 * allocation's tail.
 */
#include "event.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "event_internal.h"
#include "json.h"
#include "time.h"

/* The blob's count byte holds at most 255 (see event.h). */
#define FIELDS_LIMIT (TE_EVENT_MAX_FIELDS < 255 ? TE_EVENT_MAX_FIELDS : 255)
#define KIND_RULE "[a-z][a-z0-9_.-]{0,63}"
#define BODY_PRINT_MAX (8u * TE_EVENT_MAX_BYTES)

enum { S_KIND, S_SOURCE, S_ID, S_TRACE, S_SPAN, S_PARENT, S_CORR, S_COUNT };
enum { R_NONE = -1, R_TS = S_COUNT, R_TAGS, R_FIELDS, R_BODY };

static const char *const s_names[S_COUNT] = {"kind",    "source",         "id",
                                             "trace_id", "span_id",       "parent_span_id",
                                             "correlation_id"};

typedef struct tag_ent {
    const char *k, *v; /* v NULL: value is num */
    size_t klen, vlen;
    char num[TE_JSON_NUM_MAX];
} tag_ent;

typedef struct field_ent {
    const char *k;
    size_t klen;
    double v;
} field_ent;

/* Everything collected from one object before the single allocation. */
typedef struct build {
    bool check_utf8; /* some byte of the input is invalid UTF-8 */
    bool have_ts;
    int64_t ts_ns;
    const char *s[S_COUNT];
    size_t slen[S_COUNT];
    char snum[S_COUNT][TE_JSON_NUM_MAX];
    tag_ent tags[TE_EVENT_MAX_TAGS];
    size_t ntags, tags_over;
    field_ent fields[FIELDS_LIMIT];
    size_t nfields, fields_over;
    const cJSON *body; /* canonical body */
    const cJSON *root;
    bool flat;
    size_t nnested; /* flat: objects/arrays that go to the body */
    const cJSON **win; /* flat: key -> last member with that key */
    bool has_dups;
    size_t win_mask;
    const cJSON *win_stack[256];
} build_t;

static const char *type_name(const cJSON *it)
{
    if (cJSON_IsString(it))
        return "string";
    if (cJSON_IsNumber(it))
        return "number";
    if (cJSON_IsBool(it))
        return "bool";
    if (cJSON_IsNull(it))
        return "null";
    if (cJSON_IsArray(it))
        return "array";
    if (cJSON_IsObject(it))
        return "object";
    return "invalid";
}

static const char *ex(const char *s, size_t len, char *buf, size_t cap)
{
    return te_json_excerpt(s, len, buf, cap);
}

bool te_kind_valid(const char *kind, size_t len)
{
    if (!kind || len == 0 || len > TE_KIND_MAX || kind[0] < 'a' || kind[0] > 'z')
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = kind[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return false;
    }
    return true;
}

static int reserved_key(const char *k, bool flat)
{
    switch (k[0]) {
    case 't':
        if (!strcmp(k, "ts") || !strcmp(k, "time") || !strcmp(k, "timestamp"))
            return R_TS;
        if (!strcmp(k, "type"))
            return S_KIND;
        if (!strcmp(k, "trace_id"))
            return S_TRACE;
        if (!strcmp(k, "tags"))
            return R_TAGS;
        break;
    case 'k':
        return strcmp(k, "kind") ? R_NONE : S_KIND;
    case 'e':
        return strcmp(k, "event") ? R_NONE : S_KIND;
    case 's':
        if (!strcmp(k, "source"))
            return S_SOURCE;
        return strcmp(k, "span_id") ? R_NONE : S_SPAN;
    case 'i':
        return strcmp(k, "id") ? R_NONE : S_ID;
    case 'p':
        return strcmp(k, "parent_span_id") ? R_NONE : S_PARENT;
    case 'c':
        return strcmp(k, "correlation_id") ? R_NONE : S_CORR;
    case 'f':
        return strcmp(k, "fields") ? R_NONE : R_FIELDS;
    case 'b':
        /* Flat form: `body` is an ordinary key (a nested value -> body.body). */
        return flat || strcmp(k, "body") ? R_NONE : R_BODY;
    default:
        break;
    }
    return R_NONE;
}

static int keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int add_tag(build_t *b, const char *k, const cJSON *it, te_err_t *err)
{
    char e1[80];
    size_t klen = strlen(k);
    const char *v = NULL;
    size_t vlen;
    char num[TE_JSON_NUM_MAX];

    if (cJSON_IsString(it)) {
        v = it->valuestring;
        vlen = strlen(v);
    } else if (cJSON_IsNumber(it)) {
        if (!isfinite(it->valuedouble))
            return te_err_set(err, TE_EINVAL, "tag \"%s\": number out of range",
                              ex(k, klen, e1, 64));
        vlen = te_json_number(it->valuedouble, num);
    } else if (cJSON_IsBool(it)) {
        v = cJSON_IsTrue(it) ? "true" : "false";
        vlen = strlen(v);
    } else if (cJSON_IsNull(it)) {
        return 0;
    } else {
        return te_err_set(err, TE_EINVAL, "tag \"%s\": expected a string, number or bool, got %s",
                          ex(k, klen, e1, 64), type_name(it));
    }
    if (klen == 0)
        return te_err_set(err, TE_EINVAL, "tag key is empty");
    if (b->check_utf8 && te_utf8_check(k, klen) != klen)
        return te_err_set(err, TE_EINVAL, "invalid UTF-8 in a tag key");
    if (klen > TE_TAG_KEY_MAX)
        return te_err_set(err, TE_EINVAL, "tag key \"%s\" is %zu bytes, over the %d-byte limit",
                          ex(k, klen, e1, 48), klen, TE_TAG_KEY_MAX);
    if (vlen > TE_TAG_VALUE_MAX)
        return te_err_set(err, TE_EINVAL, "tag \"%s\": value is %zu bytes, over the %d-byte limit",
                          ex(k, klen, e1, 64), vlen, TE_TAG_VALUE_MAX);
    if (v && b->check_utf8 && te_utf8_check(v, vlen) != vlen)
        return te_err_set(err, TE_EINVAL, "invalid UTF-8 in tag \"%s\"", ex(k, klen, e1, 64));

    /* Sorted insert; an equal key replaces (the last duplicate wins). */
    size_t lo = 0, hi = b->ntags;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = keycmp(b->tags[mid].k, b->tags[mid].klen, k, klen);
        if (c == 0) {
            lo = mid;
            goto store;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (b->ntags == TE_EVENT_MAX_TAGS) {
        b->tags_over++;
        return 0;
    }
    memmove(&b->tags[lo + 1], &b->tags[lo], (b->ntags - lo) * sizeof(tag_ent));
    b->ntags++;
store:
    b->tags[lo].k = k;
    b->tags[lo].klen = klen;
    b->tags[lo].v = v;
    b->tags[lo].vlen = vlen;
    if (!v)
        memcpy(b->tags[lo].num, num, vlen + 1);
    return 0;
}

static int add_field(build_t *b, const char *k, const cJSON *it, te_err_t *err)
{
    char e1[80];
    size_t klen = strlen(k);
    double v;
    if (cJSON_IsNumber(it))
        v = it->valuedouble;
    else if (cJSON_IsBool(it))
        v = cJSON_IsTrue(it) ? 1.0 : 0.0;
    else if (cJSON_IsNull(it))
        return 0;
    else
        return te_err_set(err, TE_EINVAL, "field \"%s\": expected a number, got %s",
                          ex(k, klen, e1, 64), type_name(it));
    if (!isfinite(v))
        return te_err_set(err, TE_EINVAL, "field \"%s\": number out of range",
                          ex(k, klen, e1, 64));
    if (klen == 0)
        return te_err_set(err, TE_EINVAL, "field key is empty");
    if (b->check_utf8 && te_utf8_check(k, klen) != klen)
        return te_err_set(err, TE_EINVAL, "invalid UTF-8 in a field key");
    if (klen > TE_TAG_KEY_MAX)
        return te_err_set(err, TE_EINVAL, "field key \"%s\" is %zu bytes, over the %d-byte limit",
                          ex(k, klen, e1, 48), klen, TE_TAG_KEY_MAX);
    size_t lo = 0, hi = b->nfields;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = keycmp(b->fields[mid].k, b->fields[mid].klen, k, klen);
        if (c == 0) {
            b->fields[mid].v = v;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (b->nfields == FIELDS_LIMIT) {
        b->fields_over++;
        return 0;
    }
    memmove(&b->fields[lo + 1], &b->fields[lo], (b->nfields - lo) * sizeof(field_ent));
    b->nfields++;
    b->fields[lo].k = k;
    b->fields[lo].klen = klen;
    b->fields[lo].v = v;
    return 0;
}

/* ts / kind / ids. Numbers under reserved keys are not fields. */
static int take_reserved(build_t *b, int r, const char *key, const cJSON *it, te_err_t *err)
{
    if (r == R_TS) {
        if (cJSON_IsNull(it)) {
            b->have_ts = false;
            return 0;
        }
        if (cJSON_IsString(it)) {
            te_err_t e;
            if (te_time_parse(it->valuestring, &b->ts_ns, &e) < 0)
                return te_err_set(err, TE_EINVAL, "%s: %s", key, e.msg);
            b->have_ts = true;
            return 0;
        }
        if (cJSON_IsNumber(it)) {
            double v = it->valuedouble;
            char num[TE_JSON_NUM_MAX];
            if (!isfinite(v) || fabs(v) >= 9.2e9)
                return te_err_set(err, TE_EINVAL,
                                  "%s: %s is out of range for Unix seconds (is it in "
                                  "milliseconds?)",
                                  key, (te_json_number(v, num), num));
            double secs = floor(v);
            int64_t ns = (int64_t)secs * TE_NS_PER_SEC + (int64_t)llround((v - secs) * 1e9);
            b->ts_ns = ns;
            b->have_ts = true;
            return 0;
        }
        return te_err_set(err, TE_EINVAL,
                          "%s: expected an RFC 3339 string or Unix seconds, got %s", key,
                          type_name(it));
    }
    if (cJSON_IsNull(it)) {
        b->s[r] = NULL;
        return 0;
    }
    if (cJSON_IsString(it)) {
        b->s[r] = it->valuestring;
        b->slen[r] = strlen(it->valuestring);
        return 0;
    }
    if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) {
        b->slen[r] = te_json_number(it->valuedouble, b->snum[r]);
        b->s[r] = b->snum[r];
        return 0;
    }
    return te_err_set(err, TE_EINVAL, "%s: expected a string, got %s", key, type_name(it));
}

static int collect_object(build_t *b, const cJSON *obj, bool tags, te_err_t *err)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *k = c->string ? c->string : "";
        int rc = tags ? add_tag(b, k, c, err) : add_field(b, k, c, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int collect_canonical(build_t *b, const cJSON *root, te_err_t *err)
{
    char e1[80];
    const cJSON *tags = NULL, *fields = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        const char *k = c->string ? c->string : "";
        int r = reserved_key(k, false);
        int rc = 0;
        switch (r) {
        case R_NONE:
            return te_err_set(err, TE_EINVAL,
                              "unknown top-level key \"%s\" (put it in tags, fields or body)",
                              ex(k, strlen(k), e1, 64));
        case R_TAGS:
        case R_FIELDS:
            if (!cJSON_IsNull(c) && !cJSON_IsObject(c))
                return te_err_set(err, TE_EINVAL, "%s: expected an object, got %s", k,
                                  type_name(c));
            if (r == R_TAGS)
                tags = cJSON_IsObject(c) ? c : NULL;
            else
                fields = cJSON_IsObject(c) ? c : NULL;
            break;
        case R_BODY:
            b->body = cJSON_IsNull(c) ? NULL : c;
            break;
        default:
            rc = take_reserved(b, r, k, c, err);
        }
        if (rc < 0)
            return rc;
    }
    int rc = tags ? collect_object(b, tags, true, err) : 0;
    if (rc == 0 && fields)
        rc = collect_object(b, fields, false, err);
    return rc;
}

static size_t key_hash(const char *k)
{
    size_t h = 2166136261u;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 16777619u;
    return h;
}

static size_t win_slot(const build_t *b, const char *k)
{
    size_t i = key_hash(k) & b->win_mask;
    while (b->win[i] && strcmp(b->win[i]->string, k) != 0)
        i = (i + 1) & b->win_mask;
    return i;
}

/* Flat form: the last member with a given key wins, across categories. */
static bool is_winner(const build_t *b, const cJSON *c)
{
    return !b->has_dups || b->win[win_slot(b, c->string)] == c;
}

static int collect_flat(build_t *b, const cJSON *root, te_err_t *err)
{
    size_t n = 0, cap = 16;
    for (const cJSON *c = root->child; c; c = c->next)
        n++;
    while (cap < 2 * n)
        cap *= 2;
    if (cap <= sizeof(b->win_stack) / sizeof(b->win_stack[0])) {
        b->win = b->win_stack;
    } else {
        b->win = malloc(cap * sizeof(*b->win));
        if (!b->win)
            return te_err_set(err, TE_ENOMEM, "event: out of memory");
    }
    memset((void *)b->win, 0, cap * sizeof(*b->win));
    b->win_mask = cap - 1;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (!c->string)
            continue;
        size_t slot = win_slot(b, c->string);
        b->has_dups |= b->win[slot] != NULL;
        b->win[slot] = c;
    }

    for (const cJSON *c = root->child; c; c = c->next) {
        if (!c->string || !is_winner(b, c))
            continue;
        int r = reserved_key(c->string, true);
        int rc = 0;
        if (r >= 0)
            rc = take_reserved(b, r, c->string, c, err);
        else if (cJSON_IsString(c) || cJSON_IsBool(c))
            rc = add_tag(b, c->string, c, err);
        else if (cJSON_IsNumber(c))
            rc = add_field(b, c->string, c, err);
        else if (cJSON_IsObject(c) || cJSON_IsArray(c))
            b->nnested++;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Depth-first check that every string and key of a body is valid UTF-8. */
static bool tree_utf8_ok(const cJSON *it)
{
    for (; it; it = it->next) {
        if (it->string && te_utf8_check(it->string, strlen(it->string)) != strlen(it->string))
            return false;
        if (cJSON_IsString(it) &&
            te_utf8_check(it->valuestring, strlen(it->valuestring)) != strlen(it->valuestring))
            return false;
        if (it->child && !tree_utf8_ok(it->child))
            return false;
    }
    return true;
}

/* Prints the body into dst (cap bytes). Returns its length, or SIZE_MAX when
 * cap is too small. */
static size_t print_body(const build_t *b, char *dst, size_t cap)
{
    if (cap > INT32_MAX)
        return SIZE_MAX;
    if (!b->flat) {
        if (!cJSON_PrintPreallocated((cJSON *)b->body, dst, (int)cap, 0))
            return SIZE_MAX;
        return strlen(dst);
    }
    char *p = dst, *end = dst + cap;
    *p++ = '{';
    for (const cJSON *c = b->root->child; c; c = c->next) {
        if (!(cJSON_IsObject(c) || cJSON_IsArray(c)) || !c->string || !is_winner(b, c))
            continue;
        size_t kl = strlen(c->string);
        if ((size_t)(end - p) < te_json_escaped_len(c->string, kl) + 8)
            return SIZE_MAX;
        if (p > dst + 1)
            *p++ = ',';
        *p++ = '"';
        p = te_json_escape(p, c->string, kl);
        *p++ = '"';
        *p++ = ':';
        if (!cJSON_PrintPreallocated((cJSON *)c, p, (int)(end - p), 0))
            return SIZE_MAX;
        p += strlen(p);
    }
    if (end - p < 2)
        return SIZE_MAX;
    *p++ = '}';
    *p = '\0';
    return (size_t)(p - dst);
}

static char *put_str(char **p, const char *s, size_t len)
{
    char *start = *p;
    memcpy(start, s, len);
    start[len] = '\0';
    *p += len + 1;
    return start;
}

/* Validates the collected parts and lays them out in one allocation. */
static int finish(build_t *b, size_t size_bytes, size_t body_hint, const te_event_opts_t *opts,
                  te_event_t **out, te_err_t *err)
{
    char e1[80];
    if (b->tags_over)
        return te_err_set(err, TE_EINVAL, "event has %zu tags, over the %d-tag limit",
                          b->ntags + b->tags_over, TE_EVENT_MAX_TAGS);
    if (b->fields_over)
        return te_err_set(err, TE_EINVAL, "event has %zu fields, over the %d-field limit",
                          b->nfields + b->fields_over, FIELDS_LIMIT);
    if (!b->s[S_KIND]) {
        if (!opts || !opts->default_kind)
            return te_err_set(err, TE_EINVAL,
                              "missing \"kind\" (set it in the event or pass --kind)");
        b->s[S_KIND] = opts->default_kind;
        b->slen[S_KIND] = strlen(opts->default_kind);
    }
    if (!te_kind_valid(b->s[S_KIND], b->slen[S_KIND]))
        return te_err_set(err, TE_EINVAL, "kind \"%s\": must match " KIND_RULE,
                          ex(b->s[S_KIND], b->slen[S_KIND], e1, 72));
    if ((!b->s[S_SOURCE] || b->slen[S_SOURCE] == 0) && opts && opts->default_source) {
        b->s[S_SOURCE] = opts->default_source;
        b->slen[S_SOURCE] = strlen(opts->default_source);
    }
    for (int i = S_SOURCE; i < S_COUNT; i++) {
        if (b->s[i] && b->slen[i] == 0)
            b->s[i] = NULL; /* "" means absent */
        if (!b->s[i])
            continue;
        if (b->slen[i] > TE_ID_MAX)
            return te_err_set(err, TE_EINVAL, "%s is %zu bytes, over the %d-byte limit",
                              s_names[i], b->slen[i], TE_ID_MAX);
        if (b->check_utf8 && te_utf8_check(b->s[i], b->slen[i]) != b->slen[i])
            return te_err_set(err, TE_EINVAL, "invalid UTF-8 in %s", s_names[i]);
    }
    bool has_body = b->flat ? b->nnested > 0 : b->body != NULL;
    if (has_body && b->check_utf8) {
        const cJSON *top = b->flat ? b->root->child : b->body;
        if (b->flat) {
            for (const cJSON *c = top; c; c = c->next)
                if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && c->string && is_winner(b, c) &&
                    !tree_utf8_ok(c->child))
                    return te_err_set(err, TE_EINVAL, "invalid UTF-8 in body.%s",
                                      ex(c->string, strlen(c->string), e1, 64));
        } else {
            bool ok = cJSON_IsString(top) ? te_utf8_check(top->valuestring,
                                                          strlen(top->valuestring)) ==
                                                strlen(top->valuestring)
                                          : tree_utf8_ok(top->child);
            if (!ok)
                return te_err_set(err, TE_EINVAL, "invalid UTF-8 in body");
        }
    }

    /* Sizes. */
    size_t nt = b->ntags, nf = b->nfields;
    size_t strbytes = 0, tj_len = nt ? 1 + nt - 1 + 1 : 2, blob_len = 1;
    for (int i = 0; i < S_COUNT; i++)
        if (b->s[i])
            strbytes += b->slen[i] + 1;
    for (size_t i = 0; i < nt; i++) {
        const tag_ent *t = &b->tags[i];
        const char *v = t->v ? t->v : t->num;
        strbytes += t->klen + t->vlen + 2;
        tj_len += te_json_escaped_len(t->k, t->klen) + te_json_escaped_len(v, t->vlen) + 5;
    }
    for (size_t i = 0; i < nf; i++) {
        strbytes += b->fields[i].klen + 1;
        blob_len += 1 + b->fields[i].klen + 8;
    }
    size_t off_tags = sizeof(te_event_t);
    size_t off_fields = off_tags + nt * sizeof(te_tag_t);
    size_t off_chars = off_fields + nf * sizeof(te_field_t);
    size_t fixed = off_chars + strbytes + tj_len + 1 + blob_len;
    size_t cap = has_body ? body_hint + 64 : 0, body_len = 0;
    char *base = malloc(fixed + cap);
    if (!base)
        return te_err_set(err, TE_ENOMEM, "event: out of memory");
    while (has_body) {
        body_len = print_body(b, base + fixed, cap);
        if (body_len != SIZE_MAX)
            break;
        if (cap > BODY_PRINT_MAX) {
            free(base);
            return te_err_set(err, TE_ETOOBIG, "event body is too large once printed");
        }
        cap *= 2;
        char *nb = realloc(base, fixed + cap);
        if (!nb) {
            free(base);
            return te_err_set(err, TE_ENOMEM, "event: out of memory");
        }
        base = nb;
    }
    if (has_body && cap - body_len > 1024) {
        char *nb = realloc(base, fixed + body_len + 1);
        if (nb)
            base = nb;
    }

    /* Layout: pointers are set only now that the block no longer moves. */
    te_event_t *ev = (te_event_t *)(void *)base;
    memset(ev, 0, sizeof(*ev));
    ev->ts_ns = b->have_ts ? b->ts_ns : (opts ? opts->recv_ts_ns : 0);
    ev->tags = nt ? (te_tag_t *)(void *)(base + off_tags) : NULL;
    ev->fields = nf ? (te_field_t *)(void *)(base + off_fields) : NULL;
    ev->ntags = nt;
    ev->nfields = nf;
    ev->size_bytes = size_bytes;
    char *p = base + off_chars;
    const char **dst[S_COUNT] = {&ev->kind,    &ev->source,         &ev->id,
                                 &ev->trace_id, &ev->span_id,       &ev->parent_span_id,
                                 &ev->correlation_id};
    for (int i = 0; i < S_COUNT; i++)
        if (b->s[i])
            *dst[i] = put_str(&p, b->s[i], b->slen[i]);
    for (size_t i = 0; i < nt; i++) {
        const tag_ent *t = &b->tags[i];
        ev->tags[i].key = put_str(&p, t->k, t->klen);
        ev->tags[i].value = put_str(&p, t->v ? t->v : t->num, t->vlen);
    }
    for (size_t i = 0; i < nf; i++) {
        ev->fields[i].key = put_str(&p, b->fields[i].k, b->fields[i].klen);
        ev->fields[i].value = b->fields[i].v;
    }
    char *tj = p;
    *p++ = '{';
    for (size_t i = 0; i < nt; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        p = te_json_escape(p, ev->tags[i].key, b->tags[i].klen);
        *p++ = '"';
        *p++ = ':';
        *p++ = '"';
        p = te_json_escape(p, ev->tags[i].value, b->tags[i].vlen);
        *p++ = '"';
    }
    *p++ = '}';
    *p++ = '\0';
    ev->tags_json = tj;
    ev->tags_json_len = tj_len;
    unsigned char *blob = (unsigned char *)p;
    te_fields_blob_write(blob, ev->fields, nf);
    ev->fields_blob = blob;
    ev->fields_blob_len = blob_len;
    if (has_body) {
        ev->body = base + fixed;
        ev->body_len = body_len;
    }
    *out = ev;
    return 0;
}

static int normalise(const cJSON *root, size_t size_bytes, size_t body_hint, bool bad_utf8,
                     size_t bad_at, const te_event_opts_t *opts, te_event_t **out, te_err_t *err)
{
    build_t local, *b = &local;
    te_event_t *ev = NULL;
    int rc;
    b->check_utf8 = bad_utf8;
    b->have_ts = false;
    b->ts_ns = 0;
    memset((void *)b->s, 0, sizeof(b->s));
    b->ntags = b->tags_over = b->nfields = b->fields_over = b->nnested = 0;
    b->body = NULL;
    b->root = root;
    b->win = NULL;
    b->has_dups = false;
    b->flat = true;
    for (const cJSON *c = root->child; c && b->flat; c = c->next)
        if (c->string && (c->string[0] == 't' || c->string[0] == 'f') &&
            (!strcmp(c->string, "tags") || !strcmp(c->string, "fields")))
            b->flat = false;
    rc = b->flat ? collect_flat(b, root, err) : collect_canonical(b, root, err);
    if (rc == 0)
        rc = finish(b, size_bytes, body_hint, opts, &ev, err);
    if (rc == 0 && bad_utf8) {
        /* Invalid bytes somewhere we do not keep (e.g. a key with a null value). */
        te_event_free(ev);
        if (bad_at != SIZE_MAX)
            rc = te_err_set(err, TE_EINVAL, "invalid UTF-8 in event at byte %zu", bad_at);
        else
            rc = te_err_set(err, TE_EINVAL, "invalid UTF-8 in event");
    } else if (rc == 0) {
        *out = ev;
    }
    if (b->win && b->win != b->win_stack)
        free((void *)b->win);
    return rc;
}

/* Nesting check of a parsed tree (the event object is level 1). */
static bool tree_depth_ok(const cJSON *it, int depth)
{
    if (depth > TE_EVENT_MAX_DEPTH)
        return false;
    for (; it; it = it->next)
        if (it->child && !tree_depth_ok(it->child, depth + 1))
            return false;
    return true;
}

int te_event_parse(const char *json, size_t len, const te_event_opts_t *opts, te_event_t **out,
                   te_err_t *err)
{
    char e1[80];
    size_t bad_at;
    const char *end = NULL;
    int rc;
    if (len > TE_EVENT_MAX_BYTES)
        return te_err_set(err, TE_ETOOBIG, "event is %zu bytes, over the %u-byte limit", len,
                          TE_EVENT_MAX_BYTES);
    rc = te_event_prescan(json, len, &bad_at, err);
    if (rc < 0)
        return rc;
    size_t i = 0;
    while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\r' || json[i] == '\n'))
        i++;
    if (i == len)
        return te_err_set(err, TE_EPARSE, "empty input: expected a JSON object");
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        if (te_event_nesting(json, len) > TE_EVENT_MAX_DEPTH)
            return te_err_set(err, TE_EINVAL, "event nests deeper than %d levels",
                              TE_EVENT_MAX_DEPTH);
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        return te_err_set(err, TE_EPARSE, "invalid JSON at byte %zu near \"%s\"", at,
                          ex(json + at, len - at, e1, 24));
    }
    i = (size_t)(end - json);
    while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\r' || json[i] == '\n'))
        i++;
    if (i != len)
        rc = te_err_set(err, TE_EPARSE, "unexpected text after the JSON object at byte %zu", i);
    else if (!cJSON_IsObject(root))
        rc = te_err_set(err, TE_EINVAL, "expected a JSON object, got %s", type_name(root));
    else if (!tree_depth_ok(root->child, 2))
        rc = te_err_set(err, TE_EINVAL, "event nests deeper than %d levels", TE_EVENT_MAX_DEPTH);
    else
        rc = normalise(root, len, len, bad_at != SIZE_MAX, bad_at, opts, out, err);
    cJSON_Delete(root);
    return rc;
}

int te_event_from_cjson(const void *obj, size_t size_bytes, const te_event_opts_t *opts,
                        te_event_t **out, te_err_t *err)
{
    const cJSON *root = obj;
    if (size_bytes > TE_EVENT_MAX_BYTES)
        return te_err_set(err, TE_ETOOBIG, "event is %zu bytes, over the %u-byte limit",
                          size_bytes, TE_EVENT_MAX_BYTES);
    if (!root || !cJSON_IsObject(root))
        return te_err_set(err, TE_EINVAL, "expected a JSON object, got %s",
                          root ? type_name(root) : "nothing");
    if (!tree_depth_ok(root->child, 2))
        return te_err_set(err, TE_EINVAL, "event nests deeper than %d levels",
                          TE_EVENT_MAX_DEPTH);
    bool bad_utf8 = !tree_utf8_ok(root->child);
    return normalise(root, size_bytes, size_bytes ? size_bytes : 4096, bad_utf8, SIZE_MAX, opts,
                     out, err);
}

void te_event_free(te_event_t *ev)
{
    free(ev);
}
