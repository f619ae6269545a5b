/*
 * detect_state.h - the detector_state table: one row per (detector, group)
 * holding the method's state blob, so baselines survive restarts (SPEC
 * 6.7; schema v5, store/sql_v5.h).
 *
 * THREAD: the connection's owner: the writer (te_store_detect_save inside
 * a batch's apply hook) or the engine at open, before the writer starts
 * (te_store_detect_load).
 */
#ifndef TE_STORE_DETECT_STATE_H
#define TE_STORE_DETECT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct te_store;

/* One row; every pointer is borrowed for the call that hands it over. */
typedef struct te_store_detect_row {
    const char *detector;
    const char *group_key;   /* packed group values, group_key_len bytes */
    size_t group_key_len;
    uint64_t sig;            /* signature of the detector's definition */
    int64_t seen_ns;
    const unsigned char *state;
    size_t state_len;
} te_store_detect_row_t;

/* Upserts rows (updated_ns = now_ns) and deletes rows not updated since
 * stale_before_ns (0: none), in the caller's transaction. Returns 0 or
 * TE_ESQLITE with err set (the caller's transaction then rolls back). */
int te_store_detect_save(struct te_store *st, const te_store_detect_row_t *rows, size_t n,
                         int64_t now_ns, int64_t stale_before_ns, te_err_t *err);

/* Calls cb for every row (borrowed for the call); a non-zero return stops
 * and is returned. Returns 0, TE_ESQLITE or cb's value. */
int te_store_detect_load(struct te_store *st,
                         int (*cb)(void *ud, const te_store_detect_row_t *row), void *ud,
                         te_err_t *err);

#endif
