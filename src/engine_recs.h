/*
 * engine_recs.h - recommendations in a running engine (SPEC 6.4): every
 * te.recommend of the loaded scripts runs on its `every` schedule and its
 * findings are saved through the writer.
 *
 * THREAD: loop; a run itself happens on libuv's pool (see engine_recs.c).
 *
 * The one idea: a recommender reads a lot (days of events) and must never
 * stall ingest, so it runs on a pool thread in a fresh load of its script
 * file (its own lua_State, the same budgets) against its own read-only
 * connection; only its findings come back to the loop, and they are saved
 * by the writer thread inside its transaction (store/recs.h).
 */
#ifndef TE_ENGINE_RECS_H
#define TE_ENGINE_RECS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct te_engine;

/* Starts the schedule (after te_engine_rules_start: it reads the script
 * set). The first run of each recommender is due at once, then every
 * `every`. Allocates e->recs. Returns 0, TE_ENOMEM or TE_ESQLITE (no
 * recommendations table). */
int te_engine_recs_start(struct te_engine *e, te_err_t *err);

/* Stops the schedule (before the writer stops); a run in flight finishes
 * and its findings are dropped. Idempotent, NULL-safe. */
void te_engine_recs_close(struct te_engine *e);

/* Frees everything, after the loop ran its close callbacks and its pool
 * work. NULL-safe. */
void te_engine_recs_free(struct te_engine *e);

/* Counters for /v1/status and /metrics. */
typedef struct te_engine_recs_counts {
    size_t recommenders;     /* known now */
    uint64_t runs, failures; /* since start */
} te_engine_recs_counts_t;

/* Fills out (zeros when not started). Cannot fail. */
void te_engine_recs_counts(const struct te_engine *e, te_engine_recs_counts_t *out);

#endif
