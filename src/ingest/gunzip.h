/*
 * gunzip.h - inflating a gzip request body with a size limit (POST
 * /v1/events and the OTLP receivers).
 *
 * THREAD: any.
 */
#ifndef TE_INGEST_GUNZIP_H
#define TE_INGEST_GUNZIP_H

#include <stddef.h>

#include "core/err.h"

/* Inflates the gzip stream in[0..len) (concatenated members allowed) into
 * *out (malloc'd, NUL-terminated, caller frees) and *out_len, at most max
 * bytes. Returns 0, TE_EPARSE (a bad or truncated stream), TE_ETOOBIG
 * (over max) with msg[cap] saying which, or TE_ENOMEM. */
int te_gunzip(const char *in, size_t len, size_t max, char **out, size_t *out_len, char *msg,
              size_t cap);

#endif
