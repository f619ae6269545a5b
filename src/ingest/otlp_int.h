/*
 * otlp_int.h - the inside of the OTLP conversion, shared by otlp.c (the
 * walk and the mapping) and otlp_value.c (readers and the event builder)
 * only.
 *
 * THREAD: any; no shared state.
 *
 * Readers take a cJSON node of the request and return 0 or TE_EINVAL with
 * err naming the member ("\"traceId\": \"abc\" is not 32 hex digits"); a
 * member that is absent or JSON null counts as absent. The builder
 * (te_otlp_item_t) holds one canonical event object under construction.
 */
#ifndef TE_INGEST_OTLP_INT_H
#define TE_INGEST_OTLP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../core/err.h"

#define TE_OTLP_MAX_CONSUMED 8

/* One event object being built: {"kind","ts","source",...,"tags":{},
 * "fields":{}}. consumed lists attribute keys already mapped to other names
 * (gen_ai.*), which te_otlp_add_attrs skips. */
typedef struct te_otlp_item {
    cJSON *obj, *tags, *fields;
    const char *consumed[TE_OTLP_MAX_CONSUMED];
    size_t nconsumed;
} te_otlp_item_t;

/* ---- readers ---- */

/* "string", "number", ... for messages; "nothing" for NULL. */
const char *te_otlp_type_name(const cJSON *v);

/* A short, printable excerpt of s for messages (huge ids, junk values):
 * s itself when it fits buf (cap bytes), else its start and "...". */
const char *te_otlp_excerpt(const char *s, char *buf, size_t cap);

/* obj's member key, NULL when absent or JSON null. */
const cJSON *te_otlp_member(const cJSON *obj, const char *key);

/* An unsigned 64-bit integer member (times, counts): a string of digits or
 * a JSON number. Absent gives *out = 0. Values above INT64_MAX are
 * refused. Returns 0 or TE_EINVAL. */
int te_otlp_get_u64(const cJSON *obj, const char *key, int64_t *out, te_err_t *err);

/* A signed 64-bit integer (intValue, asInt): a string or a JSON number;
 * what names it in messages. Returns 0 or TE_EINVAL. */
int te_otlp_parse_i64(const cJSON *v, const char *what, double *out, te_err_t *err);

/* A finite double (doubleValue, asDouble, sum, ...): a JSON number or a
 * numeric string; "NaN"/"Infinity" are refused. Returns 0 or TE_EINVAL. */
int te_otlp_parse_double(const cJSON *v, const char *what, double *out, te_err_t *err);

/* A hex id member of exactly want hex digits (32 traceId, 16 span ids),
 * lowercased into out (want + 1 bytes). Absent or "" gives out = "".
 * Returns 0 or TE_EINVAL. */
int te_otlp_get_id(const cJSON *obj, const char *key, size_t want, char *out, te_err_t *err);

/* An enum member: a number below nnames, or a name (with or without
 * prefix, case-insensitive) from names. Returns the value (0 when absent),
 * or -1 with err set. */
int te_otlp_get_enum(const cJSON *obj, const char *key, const char *prefix,
                     const char *const *names, int nnames, te_err_t *err);

/* Converts an OTLP AnyValue ({"stringValue":..} | {"intValue":..} | ...)
 * to plain JSON in *out (caller owns it): string, bool, number, array,
 * object, or null for an empty AnyValue. what names it in messages; depth
 * counts nesting (refused past TE_EVENT_MAX_DEPTH). Returns 0, TE_EINVAL
 * or TE_ENOMEM; *out is NULL on failure. */
int te_otlp_any_to_json(const cJSON *v, const char *what, int depth, cJSON **out, te_err_t *err);

/* ---- attributes ---- */

/* Checks that attrs is absent or an array of {"key": non-empty string,
 * "value": AnyValue}. Returns 0 or TE_EINVAL. */
int te_otlp_check_attrs(const cJSON *attrs, te_err_t *err);

/* The AnyValue of attribute key in attrs (checked), or NULL. */
const cJSON *te_otlp_find_attr(const cJSON *attrs, const char *key);

/* The stringValue of attribute key in *out (NULL when absent), marked
 * consumed in it; another type is TE_EINVAL. */
int te_otlp_attr_string(te_otlp_item_t *it, const cJSON *attrs, const char *key, const char **out,
                        te_err_t *err);

/* The intValue/doubleValue of attribute key in *out, *have false when
 * absent, marked consumed in it; another type is TE_EINVAL. */
int te_otlp_attr_number(te_otlp_item_t *it, const cJSON *attrs, const char *key, double *out,
                        bool *have, te_err_t *err);

/* attrs (checked) -> tags (strings, bools "true"/"false", arrays and maps
 * as compact JSON text) and fields (numbers), skipping consumed keys; a key
 * a mapped tag/field already holds with another value goes to "attr.KEY".
 * Returns 0, TE_EINVAL or TE_ENOMEM. */
int te_otlp_add_attrs(te_otlp_item_t *it, const cJSON *attrs, te_err_t *err);

/* ---- the event object ---- */

/* Starts it as {"kind","ts" (RFC 3339 with ns),"source" (when not NULL),
 * "tags":{},"fields":{}}. Returns 0 or TE_ENOMEM (te_otlp_item_free
 * either way). */
int te_otlp_item_init(te_otlp_item_t *it, const char *kind, int64_t ts_ns, const char *source);

/* Frees the object; it may be zeroed or half-built. */
void te_otlp_item_free(te_otlp_item_t *it);

/* Sets a top-level string member (trace_id, id, ...); NULL or "" is a
 * no-op. Returns 0 or TE_ENOMEM. */
int te_otlp_item_str(te_otlp_item_t *it, const char *key, const char *s);

/* Sets a mapped tag unless value is NULL or key is set. Returns 0 or
 * TE_ENOMEM. */
int te_otlp_item_tag(te_otlp_item_t *it, const char *key, const char *value);

/* Sets a mapped field unless key is set. Returns 0 or TE_ENOMEM. */
int te_otlp_item_field(te_otlp_item_t *it, const char *key, double v);

#endif
