/*
 * otlp_value.c - the readers of OTLP's JSON encoding (proto3 JSON mapping:
 * 64-bit integers as strings, enums as numbers or names, hex ids, AnyValue)
 * and the builder of one event object, shared by the walk in otlp.c.
 *
 * THREAD: any; no shared state.
 *
 * Every reader refuses what it cannot read exactly (a 64-bit integer that
 * is not one, a non-finite double, an id of the wrong length) with a
 * message naming the member, so otlp.c can reject the item and say why.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "../core/event.h"
#include "../core/time.h"
#include "otlp_int.h"

/* ---- small readers ---- */

const char *te_otlp_type_name(const cJSON *v)
{
    if (!v)
        return "nothing";
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "array";
    return "object";
}

/* A short, printable excerpt of s for messages (huge ids, junk values). */
const char *te_otlp_excerpt(const char *s, char *buf, size_t cap)
{
    size_t n = strlen(s);
    if (n < cap) {
        memcpy(buf, s, n + 1);
        return buf;
    }
    snprintf(buf, cap, "%.*s...", (int)(cap - 4), s);
    return buf;
}

/* A member that is absent or null counts as absent. */
const cJSON *te_otlp_member(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(v) ? NULL : v;
}

/* An unsigned 64-bit integer in proto3 JSON: a string of digits or a JSON
 * number. Absent gives *out = 0. Values above INT64_MAX are refused (they
 * are not times). */
int te_otlp_get_u64(const cJSON *obj, const char *key, int64_t *out, te_err_t *err)
{
    const cJSON *v = te_otlp_member(obj, key);
    char ex[48];
    *out = 0;
    if (!v)
        return 0;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d < 0 || d != floor(d) || d >= 9.2e18)
            return te_err_set(err, TE_EINVAL, "\"%s\": expected a non-negative integer, got %g",
                              key, d);
        *out = (int64_t)d;
        return 0;
    }
    if (!cJSON_IsString(v))
        return te_err_set(err, TE_EINVAL,
                          "\"%s\": expected an integer as a string of digits, "
                          "got %s",
                          key, te_otlp_type_name(v));
    const char *s = v->valuestring;
    uint64_t acc = 0;
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || acc > (uint64_t)INT64_MAX / 10)
            goto bad;
        acc = acc * 10 + (uint64_t)(*p - '0');
        if (acc > (uint64_t)INT64_MAX)
            goto bad;
    }
    *out = (int64_t)acc;
    return 0;
bad:
    return te_err_set(err, TE_EINVAL, "\"%s\": \"%s\" is not a non-negative 64-bit integer", key,
                      te_otlp_excerpt(s, ex, sizeof(ex)));
}

/* A signed 64-bit integer (intValue, asInt): a string or a JSON number. */
int te_otlp_parse_i64(const cJSON *v, const char *what, double *out, te_err_t *err)
{
    char ex[48];
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble != floor(v->valuedouble) || !isfinite(v->valuedouble))
            return te_err_set(err, TE_EINVAL, "%s: %g is not an integer", what, v->valuedouble);
        *out = v->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(v))
        return te_err_set(err, TE_EINVAL, "%s: expected an integer (string or number), got %s",
                          what, te_otlp_type_name(v));
    const char *s = v->valuestring;
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p || strlen(p) > 19)
        goto bad;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            goto bad;
    errno = 0;
    char *end;
    long long ll = strtoll(s, &end, 10);
    if (errno || *end)
        goto bad;
    *out = (double)ll;
    return 0;
bad:
    return te_err_set(err, TE_EINVAL, "%s: \"%s\" is not a 64-bit integer", what,
                      te_otlp_excerpt(s, ex, sizeof(ex)));
}

/* A double (doubleValue, asDouble, sum, ...): a JSON number or one of the
 * proto3 strings; a value that is not finite is refused (fields must be
 * finite numbers). */
int te_otlp_parse_double(const cJSON *v, const char *what, double *out, te_err_t *err)
{
    char ex[48];
    double d;
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v)) {
        char *end;
        const char *s = v->valuestring;
        if (!strcmp(s, "NaN") || !strcmp(s, "Infinity") || !strcmp(s, "-Infinity"))
            return te_err_set(err, TE_EINVAL, "%s: %s is not a finite number", what, s);
        errno = 0;
        d = strtod(s, &end);
        if (!*s || *end || errno || isspace((unsigned char)*s))
            return te_err_set(err, TE_EINVAL, "%s: \"%s\" is not a number", what,
                              te_otlp_excerpt(s, ex, sizeof(ex)));
    } else {
        return te_err_set(err, TE_EINVAL, "%s: expected a number, got %s", what,
                          te_otlp_type_name(v));
    }
    if (!isfinite(d))
        return te_err_set(err, TE_EINVAL, "%s: not a finite number", what);
    *out = d;
    return 0;
}

/* A hex id of want hex digits (32 for traceId, 16 for span ids), lowercased
 * into out (want + 1 bytes). Absent or "" gives out = "". */
int te_otlp_get_id(const cJSON *obj, const char *key, size_t want, char *out, te_err_t *err)
{
    const cJSON *v = te_otlp_member(obj, key);
    char ex[48];
    out[0] = '\0';
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return te_err_set(err, TE_EINVAL, "\"%s\": expected a hex string, got %s", key,
                          te_otlp_type_name(v));
    const char *s = v->valuestring;
    size_t n = strlen(s);
    if (n == 0)
        return 0;
    bool ok = n == want;
    for (size_t i = 0; ok && i < n; i++)
        ok = isxdigit((unsigned char)s[i]) != 0;
    if (!ok)
        return te_err_set(err, TE_EINVAL, "\"%s\": \"%s\" is not %zu hex digits", key,
                          te_otlp_excerpt(s, ex, sizeof(ex)), want);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return 0;
}

/* An enum: a JSON number, or its proto name (prefix + NAME). Returns the
 * value, or -1 with err set. Absent gives 0. */
int te_otlp_get_enum(const cJSON *obj, const char *key, const char *prefix,
                     const char *const *names, int nnames, te_err_t *err)
{
    const cJSON *v = te_otlp_member(obj, key);
    char ex[48];
    if (!v)
        return 0;
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
            v->valuedouble >= nnames) {
            te_err_set(err, TE_EINVAL, "\"%s\": %g is not a known value (0 to %d)", key,
                       v->valuedouble, nnames - 1);
            return -1;
        }
        return (int)v->valuedouble;
    }
    if (cJSON_IsString(v)) {
        size_t pl = strlen(prefix);
        const char *s = v->valuestring;
        if (!strncmp(s, prefix, pl))
            s += pl;
        for (int i = 0; i < nnames; i++)
            if (!strcasecmp(s, names[i]))
                return i;
        te_err_set(err, TE_EINVAL, "\"%s\": \"%s\" is not a known value", key,
                   te_otlp_excerpt(v->valuestring, ex, sizeof(ex)));
        return -1;
    }
    te_err_set(err, TE_EINVAL, "\"%s\": expected a number or a name, got %s", key,
               te_otlp_type_name(v));
    return -1;
}

/* ---- AnyValue ---- */

/* Converts an OTLP AnyValue ({"stringValue":..} | {"intValue":..} | ...)
 * to plain JSON: string, bool, number, array, object, or null for an empty
 * AnyValue. what names it in messages. */
int te_otlp_any_to_json(const cJSON *v, const char *what, int depth, cJSON **out, te_err_t *err)
{
    const cJSON *x;
    double d;
    *out = NULL;
    if (depth > TE_EVENT_MAX_DEPTH)
        return te_err_set(err, TE_EINVAL, "%s: nests deeper than %d levels", what,
                          TE_EVENT_MAX_DEPTH);
    if (!v || cJSON_IsNull(v)) {
        *out = cJSON_CreateNull();
        return *out ? 0 : TE_ENOMEM;
    }
    if (!cJSON_IsObject(v))
        return te_err_set(err, TE_EINVAL, "%s: expected an AnyValue object, got %s", what,
                          te_otlp_type_name(v));
    if ((x = te_otlp_member(v, "stringValue")) != NULL) {
        if (!cJSON_IsString(x))
            return te_err_set(err, TE_EINVAL, "%s: stringValue must be a string, got %s", what,
                              te_otlp_type_name(x));
        *out = cJSON_CreateString(x->valuestring);
    } else if ((x = te_otlp_member(v, "boolValue")) != NULL) {
        if (!cJSON_IsBool(x))
            return te_err_set(err, TE_EINVAL, "%s: boolValue must be true or false, got %s", what,
                              te_otlp_type_name(x));
        *out = cJSON_CreateBool(cJSON_IsTrue(x));
    } else if ((x = te_otlp_member(v, "intValue")) != NULL) {
        char w[300];
        snprintf(w, sizeof(w), "%s: intValue", what);
        if (te_otlp_parse_i64(x, w, &d, err) < 0)
            return err->code;
        *out = cJSON_CreateNumber(d);
    } else if ((x = te_otlp_member(v, "doubleValue")) != NULL) {
        char w[300];
        snprintf(w, sizeof(w), "%s: doubleValue", what);
        if (te_otlp_parse_double(x, w, &d, err) < 0)
            return err->code;
        *out = cJSON_CreateNumber(d);
    } else if ((x = te_otlp_member(v, "bytesValue")) != NULL) {
        if (!cJSON_IsString(x))
            return te_err_set(err, TE_EINVAL, "%s: bytesValue must be a base64 string, got %s",
                              what, te_otlp_type_name(x));
        *out = cJSON_CreateString(x->valuestring);
    } else if ((x = te_otlp_member(v, "arrayValue")) != NULL ||
               (x = te_otlp_member(v, "kvlistValue")) != NULL) {
        bool kv = te_otlp_member(v, "arrayValue") == NULL;
        const cJSON *vals = cJSON_IsObject(x) ? te_otlp_member(x, "values") : NULL;
        if (!cJSON_IsObject(x) || (vals && !cJSON_IsArray(vals)))
            return te_err_set(err, TE_EINVAL, "%s: %s must be {\"values\":[...]}", what,
                              kv ? "kvlistValue" : "arrayValue");
        cJSON *agg = kv ? cJSON_CreateObject() : cJSON_CreateArray();
        if (!agg)
            return TE_ENOMEM;
        const cJSON *el;
        size_t i = 0;
        cJSON_ArrayForEach (el, vals) {
            char w[300];
            cJSON *c = NULL;
            const cJSON *k = kv ? te_otlp_member(el, "key") : NULL;
            if (kv && (!cJSON_IsObject(el) || !cJSON_IsString(k))) {
                cJSON_Delete(agg);
                return te_err_set(err, TE_EINVAL,
                                  "%s: kvlistValue.values[%zu] needs a string "
                                  "\"key\"",
                                  what, i);
            }
            if (kv)
                snprintf(w, sizeof(w), "%s.%s", what, k->valuestring);
            else
                snprintf(w, sizeof(w), "%s[%zu]", what, i);
            int rc =
                te_otlp_any_to_json(kv ? te_otlp_member(el, "value") : el, w, depth + 1, &c, err);
            if (rc < 0) {
                cJSON_Delete(agg);
                return rc;
            }
            if (kv)
                cJSON_AddItemToObject(agg, k->valuestring, c);
            else
                cJSON_AddItemToArray(agg, c);
            i++;
        }
        *out = agg;
    } else {
        *out = cJSON_CreateNull();
    }
    return *out ? 0 : TE_ENOMEM;
}

/* ---- the event being built ---- */

int te_otlp_item_init(te_otlp_item_t *it, const char *kind, int64_t ts_ns, const char *source)
{
    char ts[40];
    memset(it, 0, sizeof(*it));
    it->obj = cJSON_CreateObject();
    if (!it->obj)
        return TE_ENOMEM;
    te_time_format_rfc3339(ts_ns, ts, sizeof(ts));
    if (!cJSON_AddStringToObject(it->obj, "kind", kind) ||
        !cJSON_AddStringToObject(it->obj, "ts", ts) ||
        (source && !cJSON_AddStringToObject(it->obj, "source", source)) ||
        !(it->tags = cJSON_AddObjectToObject(it->obj, "tags")) ||
        !(it->fields = cJSON_AddObjectToObject(it->obj, "fields")))
        return TE_ENOMEM;
    return 0;
}

void te_otlp_item_free(te_otlp_item_t *it)
{
    cJSON_Delete(it->obj);
    it->obj = NULL;
}

int te_otlp_item_str(te_otlp_item_t *it, const char *key, const char *s)
{
    if (!s || !*s)
        return 0;
    return cJSON_AddStringToObject(it->obj, key, s) ? 0 : TE_ENOMEM;
}

/* Sets a mapped tag (ours: set before the attributes). */
int te_otlp_item_tag(te_otlp_item_t *it, const char *key, const char *value)
{
    if (!value || cJSON_GetObjectItemCaseSensitive(it->tags, key))
        return 0;
    return cJSON_AddStringToObject(it->tags, key, value) ? 0 : TE_ENOMEM;
}

int te_otlp_item_field(te_otlp_item_t *it, const char *key, double v)
{
    if (cJSON_GetObjectItemCaseSensitive(it->fields, key))
        return 0;
    return cJSON_AddNumberToObject(it->fields, key, v) ? 0 : TE_ENOMEM;
}

/* An attribute's tag: when a mapped tag already has the key, the attribute
 * keeps its value under "attr.KEY" (unless it holds the same value). */
static int attr_tag(te_otlp_item_t *it, const char *key, const char *value, te_err_t *err)
{
    const cJSON *have = cJSON_GetObjectItemCaseSensitive(it->tags, key);
    char alt[TE_TAG_KEY_MAX + 8];
    if (!have)
        return cJSON_AddStringToObject(it->tags, key, value) ? 0 : TE_ENOMEM;
    if (!strcmp(have->valuestring, value))
        return 0;
    snprintf(alt, sizeof(alt), "attr.%.*s", TE_TAG_KEY_MAX, key);
    if (cJSON_GetObjectItemCaseSensitive(it->tags, alt))
        return te_err_set(err, TE_EINVAL, "attribute \"%s\" is given twice", key);
    return cJSON_AddStringToObject(it->tags, alt, value) ? 0 : TE_ENOMEM;
}

static int attr_field(te_otlp_item_t *it, const char *key, double v, te_err_t *err)
{
    char alt[TE_TAG_KEY_MAX + 8];
    if (!cJSON_GetObjectItemCaseSensitive(it->fields, key))
        return cJSON_AddNumberToObject(it->fields, key, v) ? 0 : TE_ENOMEM;
    snprintf(alt, sizeof(alt), "attr.%.*s", TE_TAG_KEY_MAX, key);
    if (cJSON_GetObjectItemCaseSensitive(it->fields, alt))
        return te_err_set(err, TE_EINVAL, "attribute \"%s\" is given twice", key);
    return cJSON_AddNumberToObject(it->fields, alt, v) ? 0 : TE_ENOMEM;
}

static bool consumed(const te_otlp_item_t *it, const char *key)
{
    for (size_t i = 0; i < it->nconsumed; i++)
        if (!strcmp(it->consumed[i], key))
            return true;
    return false;
}

/* Checks that attrs is absent or an array of {"key": string, "value":
 * AnyValue}. */
int te_otlp_check_attrs(const cJSON *attrs, te_err_t *err)
{
    const cJSON *a;
    size_t i = 0;
    if (!attrs)
        return 0;
    if (!cJSON_IsArray(attrs))
        return te_err_set(err, TE_EINVAL, "\"attributes\" must be an array, got %s",
                          te_otlp_type_name(attrs));
    cJSON_ArrayForEach (a, attrs) {
        const cJSON *k = cJSON_IsObject(a) ? te_otlp_member(a, "key") : NULL;
        if (!cJSON_IsString(k) || !k->valuestring[0])
            return te_err_set(err, TE_EINVAL,
                              "attributes[%zu] needs a non-empty string "
                              "\"key\"",
                              i);
        i++;
    }
    return 0;
}

/* The AnyValue of attribute key in attrs (checked), or NULL. */
const cJSON *te_otlp_find_attr(const cJSON *attrs, const char *key)
{
    const cJSON *a;
    cJSON_ArrayForEach (a, attrs) {
        if (!strcmp(te_otlp_member(a, "key")->valuestring, key))
            return te_otlp_member(a, "value");
    }
    return NULL;
}

/* attrs -> tags (strings, bools, and arrays/maps as compact JSON text) and
 * fields (numbers); keys in it->consumed are skipped. */
int te_otlp_add_attrs(te_otlp_item_t *it, const cJSON *attrs, te_err_t *err)
{
    const cJSON *a;
    cJSON_ArrayForEach (a, attrs) {
        const char *key = te_otlp_member(a, "key")->valuestring;
        char what[200];
        cJSON *v = NULL;
        int rc;
        if (consumed(it, key))
            continue;
        snprintf(what, sizeof(what), "attribute \"%.*s\"", 150, key);
        rc = te_otlp_any_to_json(te_otlp_member(a, "value"), what, 0, &v, err);
        if (rc < 0)
            return rc;
        if (cJSON_IsString(v)) {
            rc = attr_tag(it, key, v->valuestring, err);
        } else if (cJSON_IsBool(v)) {
            rc = attr_tag(it, key, cJSON_IsTrue(v) ? "true" : "false", err);
        } else if (cJSON_IsNumber(v)) {
            rc = attr_field(it, key, v->valuedouble, err);
        } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
            char *text = cJSON_PrintUnformatted(v);
            rc = text ? attr_tag(it, key, text, err) : TE_ENOMEM;
            cJSON_free(text);
        }
        cJSON_Delete(v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A string attribute (stringValue) or NULL; other types are an error. */
int te_otlp_attr_string(te_otlp_item_t *it, const cJSON *attrs, const char *key, const char **out,
                        te_err_t *err)
{
    const cJSON *v = te_otlp_find_attr(attrs, key);
    const cJSON *s = cJSON_IsObject(v) ? te_otlp_member(v, "stringValue") : NULL;
    *out = NULL;
    if (!v)
        return 0;
    if (!cJSON_IsString(s))
        return te_err_set(err, TE_EINVAL, "attribute \"%s\": expected a stringValue", key);
    *out = s->valuestring;
    if (it->nconsumed < TE_OTLP_MAX_CONSUMED)
        it->consumed[it->nconsumed++] = key;
    return 0;
}

/* A numeric attribute (intValue or doubleValue); *have false when absent. */
int te_otlp_attr_number(te_otlp_item_t *it, const cJSON *attrs, const char *key, double *out,
                        bool *have, te_err_t *err)
{
    const cJSON *v = te_otlp_find_attr(attrs, key);
    cJSON *j = NULL;
    char what[200];
    *have = false;
    if (!v)
        return 0;
    snprintf(what, sizeof(what), "attribute \"%s\"", key);
    int rc = te_otlp_any_to_json(v, what, 0, &j, err);
    if (rc < 0)
        return rc;
    if (!cJSON_IsNumber(j)) {
        cJSON_Delete(j);
        return te_err_set(err, TE_EINVAL,
                          "attribute \"%s\": expected an intValue or "
                          "doubleValue",
                          key);
    }
    *out = j->valuedouble;
    *have = true;
    cJSON_Delete(j);
    if (it->nconsumed < TE_OTLP_MAX_CONSUMED)
        it->consumed[it->nconsumed++] = key;
    return 0;
}
