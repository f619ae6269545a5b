/*
 * engine_detect.h - detector state persistence of a running engine: the
 * detector_state rows are read at open, given to the live detectors once
 * the scripts are loaded, and saved through the writer every minute and
 * at shutdown (SPEC 6.7: baselines survive restarts).
 *
 * THREAD: loop, except te_engine_detect_open (start-up, before the writer
 * thread owns the store).
 */
#ifndef TE_ENGINE_DETECT_H
#define TE_ENGINE_DETECT_H

#include "core/err.h"

struct te_engine;
struct te_store;
struct te_ruleset;
typedef struct te_engine_detect te_engine_detect_t;

/* Reads every detector_state row of st into a new te_engine_detect_t
 * (*out; the caller keeps it for te_engine_detect_start and
 * te_engine_detect_close). Returns 0, TE_ESQLITE or TE_ENOMEM (then *out
 * is NULL). */
int te_engine_detect_open(struct te_engine *e, struct te_store *st, te_engine_detect_t **out,
                          te_err_t *err);

/* Gives the rows to the live detectors of rs (a row whose detector is gone
 * or changed is dropped, logged at info), frees them and starts the save
 * timer (every 60 s, unref'd). D NULL is a no-op. Cannot fail. */
void te_engine_detect_start(te_engine_detect_t *D, struct te_ruleset *rs);

/* Saves once more (the writer must still run: call before it drains),
 * stops the timer and frees D (in the timer's close callback when it was
 * started); sets *D to NULL. NULL or *D NULL is a no-op. */
void te_engine_detect_close(te_engine_detect_t **D);

#endif
