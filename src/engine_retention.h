/*
 * engine_retention.h - the retention pass of a running engine (SPEC 9,
 * 6.0 storage.retention): hourly, raw events older than retention.raw are
 * archived to gzip NDJSON under DATA/archive and deleted; rollup rows older
 * than retention["1m"] / retention["1h"] are deleted. A kind listed in
 * retention.kinds uses its own ages for the resolutions it names, the
 * global ones otherwise; "forever" (or nothing) keeps (store/retention.h).
 *
 * THREAD: loop; the pass itself runs on libuv's pool (see engine_retention.c).
 */
#ifndef TE_ENGINE_RETENTION_H
#define TE_ENGINE_RETENTION_H

#include <stdint.h>

#include "core/err.h"

struct te_engine;

/* Reads the retention settings and starts the hourly timer (first pass
 * shortly after start-up). Nothing runs when no retention is configured.
 * Allocates e->retention. Returns 0, TE_ECONFIG for a bad duration, or
 * TE_ENOMEM. */
int te_engine_retention_start(struct te_engine *e, te_err_t *err);

/* Stops the timer and asks a pass in flight to stop after its current
 * chunk (before the writer stops). Idempotent, NULL-safe. */
void te_engine_retention_close(struct te_engine *e);

/* Frees everything, after the loop ran its close callbacks and its pool
 * work. NULL-safe. */
void te_engine_retention_free(struct te_engine *e);

#endif
