/*
 * event.h - the event model of SPEC section 2: parse, normalise, validate.
 *
 * THREAD: any. One JSON object (canonical or flat form) becomes one
 * te_event_t held in a single allocation (the event and all its strings), so
 * freeing is one call and ownership moves between threads as one pointer.
 *
 * The one idea: we parse once (cJSON) and never re-print the whole event.
 * Tags are kept as a canonical, key-sorted JSON object text (tags_json: the
 * series identity), fields as a compact binary blob (fields_blob) that the
 * store writes as is, and only a present `body` is printed compactly.
 */
#ifndef TE_CORE_EVENT_H
#define TE_CORE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"

/* SPEC section 2 limits. */
#define TE_EVENT_MAX_BYTES (1024u * 1024u) /* whole event */
#define TE_EVENT_MAX_TAGS 64
#define TE_EVENT_MAX_FIELDS 255 /* the fields blob counts in one byte */
#define TE_TAG_KEY_MAX 128
#define TE_TAG_VALUE_MAX 1024
#define TE_KIND_MAX 64
#define TE_ID_MAX 256                      /* source, id, trace/span/correlation ids */
#define TE_EVENT_MAX_DEPTH 64              /* JSON nesting */

typedef struct te_tag {
    const char *key; /* NUL-terminated, inside the event's allocation */
    const char *value;
} te_tag_t;

typedef struct te_field {
    const char *key;
    double value;
} te_field_t;

/* A normalised event. All pointers point into the same allocation as the
 * struct itself; optional strings are NULL when absent. Read-only after
 * te_event_parse returns. */
typedef struct te_event {
    int64_t ts_ns;              /* event time; receive time when absent */
    const char *kind;           /* [a-z][a-z0-9_.-]{0,63} */
    const char *source;         /* may be NULL */
    const char *id;             /* client idempotency key, may be NULL */
    const char *trace_id;
    const char *span_id;
    const char *parent_span_id;
    const char *correlation_id;
    te_tag_t *tags;             /* sorted by key, unique keys */
    size_t ntags;
    te_field_t *fields;         /* sorted by key, unique keys */
    size_t nfields;
    const char *tags_json;      /* canonical {"k":"v",...} sorted; "{}" when none */
    size_t tags_json_len;
    const unsigned char *fields_blob; /* see te_fields_blob_* below */
    size_t fields_blob_len;
    const char *body;           /* compact JSON text of body, NULL when absent */
    size_t body_len;
    size_t size_bytes;          /* bytes of the input object (for limits/metrics) */
} te_event_t;

/* Parse-time options. */
typedef struct te_event_opts {
    const char *default_kind;   /* used when the event has no kind; may be NULL */
    const char *default_source; /* used when the event has no source; may be NULL */
    int64_t recv_ts_ns;         /* used when the event has no ts */
} te_event_opts_t;

/* Parses one JSON object text (json, len; need not be NUL-terminated) into a
 * normalised, validated event. Canonical form when the object has `tags` or
 * `fields`, flat form otherwise (SPEC section 2).
 * Returns 0 and sets *out (caller owns it: te_event_free), or a negative code
 * with err naming the problem, e.g. `field "latency_ms": expected a number,
 * got string`, `kind "Bad Kind": must match [a-z][a-z0-9_.-]{0,63}`,
 * `event is 1048577 bytes, over the 1048576-byte limit`. On failure *out is
 * untouched. Over-limit input is rejected, never truncated. */
int te_event_parse(const char *json, size_t len, const te_event_opts_t *opts, te_event_t **out,
                   te_err_t *err);

/* Parses from an already-parsed cJSON object (used when a request body is a
 * JSON array). obj is a `const cJSON *`; size_bytes is an estimate of the
 * object's size for the 1 MiB limit. Same contract as te_event_parse. */
int te_event_from_cjson(const void *obj, size_t size_bytes, const te_event_opts_t *opts,
                        te_event_t **out, te_err_t *err);

/* Builds an event from parts (used by the store to reconstruct rows and by
 * derived events). tags_json must be a canonical tags object as produced by
 * this module; fields_blob a valid blob; body may be NULL. Returns 0 or
 * TE_ENOMEM/TE_EINVAL. */
int te_event_build(int64_t ts_ns, const char *kind, const char *source, const char *id,
                   const char *trace_id, const char *span_id, const char *parent_span_id,
                   const char *correlation_id, const char *tags_json, size_t tags_json_len,
                   const unsigned char *fields_blob, size_t fields_blob_len, const char *body,
                   size_t body_len, te_event_t **out, te_err_t *err);

/* Frees an event. NULL is a no-op. */
void te_event_free(te_event_t *ev);

/* Looks up a tag value by key (binary search). Returns NULL when absent. */
const char *te_event_tag(const te_event_t *ev, const char *key);

/* Looks up a field by key. Returns true and sets *out when present. */
bool te_event_field(const te_event_t *ev, const char *key, double *out);

/* Writes the canonical JSON form of ev into a malloc'd, NUL-terminated string
 * (caller frees with free()): {"ts":"...","kind":...,"source":...,"id":...,
 * "trace_id":...,"tags":{...},"fields":{...},"body":...}; absent optional
 * members are omitted. Returns NULL on allocation failure. */
char *te_event_to_json(const te_event_t *ev, size_t *len_out);

/* True when kind matches [a-z][a-z0-9_.-]{0,63}. */
bool te_kind_valid(const char *kind, size_t len);

/*
 * Fields blob: the compact stored encoding of an event's fields.
 *   u8 count, then per field (sorted by key): u8 key_len, key bytes, 8 bytes
 *   IEEE-754 double little-endian.
 * Keys are at most 255 bytes (field keys share the tag-key limit of 128).
 */

/* Finds field key in blob; returns true and sets *out when present. */
bool te_fields_blob_get(const unsigned char *blob, size_t len, const char *key, double *out);

/* Iterates: call with *pos = 0; returns true and sets key/key_len/value for
 * each field, false at the end or on a malformed blob. Inline: the rollups
 * and raw queries call it for every stored value. */
static inline bool te_fields_blob_next(const unsigned char *blob, size_t len, size_t *pos,
                                       const char **key, size_t *key_len, double *value)
{
    size_t p = *pos;
    if (!blob || len == 0)
        return false;
    if (p == 0)
        p = 1; /* skip the count byte */
    if (p >= len)
        return false;
    size_t kl = blob[p];
    if (kl > len - p - 1 || 8 > len - p - 1 - kl)
        return false;
    *key = (const char *)blob + p + 1;
    *key_len = kl;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(value, blob + p + 1 + kl, 8);
#else
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)blob[p + 1 + kl + (size_t)i] << (8 * i);
    memcpy(value, &u, 8);
#endif
    *pos = p + 1 + kl + 8;
    return true;
}

#endif
