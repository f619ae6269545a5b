/*
 * silence.c - matchers and silences (see silence.h).
 *
 * THREAD: any.
 */
#include "alerts/silence.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/time.h"

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int matcher_set(te_matcher_t *out, const char *name, size_t nlen, const char *value,
                       bool negate, te_err_t *err)
{
    out->name = dup_n(name, nlen);
    out->value = dup_n(value, strlen(value));
    out->negate = negate;
    if (!out->name || !out->value) {
        free(out->name);
        free(out->value);
        out->name = out->value = NULL;
        return te_err_set(err, TE_ENOMEM, "out of memory");
    }
    return 0;
}

int te_matcher_parse(const char *text, te_matcher_t *out, te_err_t *err)
{
    memset(out, 0, sizeof(*out));
    const char *eq = strchr(text, '=');
    if (!eq)
        return te_err_set(err, TE_EINVAL, "matcher \"%s\": expected TAG=VALUE or TAG!=VALUE",
                          text);
    bool negate = eq > text && eq[-1] == '!';
    size_t nlen = (size_t)(eq - text) - (negate ? 1 : 0);
    while (nlen > 0 && text[nlen - 1] == ' ')
        nlen--;
    if (nlen == 0)
        return te_err_set(err, TE_EINVAL, "matcher \"%s\": the tag name is empty", text);
    return matcher_set(out, text, nlen, eq + 1, negate, err);
}

const char *te_alert_tag(const te_alert_t *a, const char *name)
{
    if (strcmp(name, "rule") == 0 || strcmp(name, "alertname") == 0)
        return a->rule ? a->rule : "";
    if (strcmp(name, "severity") == 0)
        return te_severity_name(a->severity);
    for (size_t i = 0; i < a->ngroup; i++)
        if (strcmp(a->group_keys[i], name) == 0)
            return a->group_values[i] ? a->group_values[i] : "";
    for (size_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->label_keys[i], name) == 0)
            return a->label_values[i] ? a->label_values[i] : "";
    return "";
}

bool te_matchers_match(const te_matcher_t *m, size_t n, const te_alert_t *a)
{
    for (size_t i = 0; i < n; i++) {
        bool eq = strcmp(te_alert_tag(a, m[i].name), m[i].value) == 0;
        if (eq == m[i].negate)
            return false;
    }
    return true;
}

bool te_silence_matches(const te_silence_t *s, const te_alert_t *a, int64_t now_ns)
{
    return now_ns >= s->starts_ns && now_ns < s->ends_ns && te_matchers_match(s->m, s->nm, a);
}

void te_matchers_free(te_matcher_t *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        free(m[i].name);
        free(m[i].value);
    }
    free(m);
}

void te_silence_clear(te_silence_t *s)
{
    if (!s)
        return;
    te_matchers_free(s->m, s->nm);
    free(s->comment);
    free(s->created_by);
    memset(s, 0, sizeof(*s));
}

static char *dup_opt(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = dup_n(s, strlen(s));
    if (!d)
        *oom = true;
    return d;
}

int te_silence_copy(te_silence_t *dst, const te_silence_t *src)
{
    bool oom = false;
    *dst = *src;
    dst->m = calloc(src->nm ? src->nm : 1, sizeof(*dst->m));
    dst->nm = 0;
    dst->comment = dup_opt(src->comment, &oom);
    dst->created_by = dup_opt(src->created_by, &oom);
    if (!dst->m)
        oom = true;
    for (size_t i = 0; !oom && i < src->nm; i++) {
        if (matcher_set(&dst->m[i], src->m[i].name, strlen(src->m[i].name), src->m[i].value,
                        src->m[i].negate, NULL) < 0)
            oom = true;
        else
            dst->nm++;
    }
    if (oom) {
        te_silence_clear(dst);
        return TE_ENOMEM;
    }
    return 0;
}

char *te_matchers_to_json(const te_matcher_t *m, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "name", m[i].name) ||
            !cJSON_AddStringToObject(o, "value", m[i].value) ||
            !cJSON_AddStringToObject(o, "op", m[i].negate ? "!=" : "=")) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, o);
    }
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

static int from_item(const cJSON *it, te_matcher_t *out, te_err_t *err)
{
    if (cJSON_IsString(it))
        return te_matcher_parse(it->valuestring, out, err);
    if (!cJSON_IsObject(it))
        return te_err_set(err, TE_EINVAL, "matchers: each matcher must be \"TAG=VALUE\" or "
                                          "{\"name\",\"value\"}");
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(it, "name"));
    const char *value = cJSON_GetStringValue(cJSON_GetObjectItem(it, "value"));
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItem(it, "op"));
    const cJSON *is_equal = cJSON_GetObjectItem(it, "isEqual");
    if (!name || !name[0] || !value)
        return te_err_set(err, TE_EINVAL, "matchers: a matcher object needs a non-empty "
                                          "\"name\" and a string \"value\"");
    bool negate = (op && strcmp(op, "!=") == 0) || cJSON_IsFalse(is_equal);
    if (op && strcmp(op, "=") != 0 && strcmp(op, "!=") != 0)
        return te_err_set(err, TE_EINVAL, "matchers: op must be \"=\" or \"!=\", got \"%s\"",
                          op);
    return matcher_set(out, name, strlen(name), value, negate, err);
}

int te_matchers_from_cjson(const cJSON *j, te_matcher_t **out, size_t *n, te_err_t *err)
{
    *out = NULL;
    *n = 0;
    if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
        return te_err_set(err, TE_EINVAL, "matchers: expected an object {\"tag\":\"value\"} or "
                                          "a list of \"tag=value\"");
    size_t cnt = (size_t)cJSON_GetArraySize(j);
    if (cnt == 0)
        return te_err_set(err, TE_EINVAL, "matchers: at least one matcher is required (a "
                                          "silence of everything is refused)");
    te_matcher_t *m = calloc(cnt, sizeof(*m));
    if (!m)
        return te_err_set(err, TE_ENOMEM, "out of memory");
    size_t k = 0;
    const cJSON *it;
    int rc = 0;
    cJSON_ArrayForEach(it, j)
    {
        if (cJSON_IsObject(j)) {
            if (!cJSON_IsString(it)) {
                rc = te_err_set(err, TE_EINVAL, "matchers: value of \"%s\" must be a string",
                                it->string);
                break;
            }
            if (!it->string[0]) {
                rc = te_err_set(err, TE_EINVAL, "matchers: the tag name is empty");
                break;
            }
            rc = matcher_set(&m[k], it->string, strlen(it->string), it->valuestring, false, err);
        } else {
            rc = from_item(it, &m[k], err);
        }
        if (rc < 0)
            break;
        k++;
    }
    if (rc < 0) {
        te_matchers_free(m, k);
        return rc;
    }
    *out = m;
    *n = k;
    return 0;
}

static bool add_time(cJSON *o, const char *key, int64_t ns)
{
    char buf[40];
    te_time_format_rfc3339(ns, buf, sizeof(buf));
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

static bool add_opt(cJSON *o, const char *key, const char *v)
{
    return (v ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key)) != NULL;
}

cJSON *te_silence_to_cjson(const te_silence_t *s, int64_t now_ns)
{
    cJSON *o = cJSON_CreateObject();
    char *mj = te_matchers_to_json(s->m, s->nm);
    cJSON *m = mj ? cJSON_Parse(mj) : NULL;
    cJSON_free(mj);
    const char *state = now_ns < s->starts_ns ? "pending" : now_ns < s->ends_ns ? "active"
                                                                              : "expired";
    if (!o || !m) {
        cJSON_Delete(o);
        cJSON_Delete(m);
        return NULL;
    }
    if (!cJSON_AddStringToObject(o, "id", s->id)) {
        cJSON_Delete(o);
        cJSON_Delete(m);
        return NULL;
    }
    cJSON_AddItemToObject(o, "matchers", m);
    if (!add_time(o, "starts_at", s->starts_ns) ||
        !add_time(o, "ends_at", s->ends_ns) || !add_opt(o, "comment", s->comment) ||
        !add_opt(o, "created_by", s->created_by) || !add_time(o, "created_at", s->created_ns) ||
        !cJSON_AddStringToObject(o, "state", state)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
