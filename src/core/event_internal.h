/*
 * event_internal.h - what event.c and event_build.c share (not for other
 * modules: use event.h).
 *
 * THREAD: any.
 */
#ifndef TE_CORE_EVENT_INTERNAL_H
#define TE_CORE_EVENT_INTERNAL_H

#include <stddef.h>

#include "err.h"
#include "event.h"

/* Bytes of the fields blob for n fields whose keys total key_bytes. */
#define TE_FIELDS_BLOB_LEN(n, key_bytes) (1 + (n) * 9 + (key_bytes))

/* Writes the blob of n (<= 255) fields, already sorted by key and with keys
 * of at most 255 bytes, at dst (TE_FIELDS_BLOB_LEN bytes). Cannot fail. */
void te_fields_blob_write(unsigned char *dst, const te_field_t *fields, size_t n);

/* Checks raw event text before cJSON sees it: a NUL byte or a `\u0000`
 * escape anywhere is TE_EINVAL (cJSON would cut the string there). Sets
 * *bad_utf8_at to the offset of the first byte that is not valid UTF-8, or
 * SIZE_MAX when all are. Returns 0 or TE_EINVAL. */
int te_event_prescan(const char *json, size_t len, size_t *bad_utf8_at, te_err_t *err);

/* Deepest nesting of objects/arrays in json, strings skipped; used to explain
 * why cJSON refused a text. Cannot fail. */
size_t te_event_nesting(const char *json, size_t len);

#endif
