/*
 * retention.h - one retention pass over a store with ages per kind and
 * resolution (SPEC 9 "Retention per kind and resolution", 6.0
 * storage.retention): raw events past their kind's raw age are archived to
 * gzip NDJSON and deleted, 1m / 1h rollup rows past their kind's age are
 * deleted.
 *
 * THREAD: one thread at a time per te_store_t (see retention.c).
 *
 * A kind listed in the policy uses its own age for each resolution it sets
 * and the global age for the others; every other kind uses the global ages.
 * An age of 0 keeps that data forever.
 */
#ifndef TE_STORE_RETENTION_H
#define TE_STORE_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* One kind's ages: -1 = not set (the global one applies), 0 = keep
 * forever, else nanoseconds kept. */
typedef struct te_retention_kind {
    const char *kind;
    int64_t raw_ns, m1_ns, h1_ns;
} te_retention_kind_t;

typedef struct te_retention_policy {
    int64_t raw_ns, m1_ns, h1_ns;     /* global ages; 0: keep forever */
    const te_retention_kind_t *kinds; /* per-kind overrides (may be NULL) */
    size_t nkinds;
    const char *archive_dir;          /* where raw events go; NULL: delete without archiving */
    const int *stop;                  /* NULL, or non-zero (read atomically): stop between chunks */
} te_retention_policy_t;

typedef struct te_retention_stats {
    int64_t events;      /* raw events archived and deleted */
    int64_t files;       /* archive day files written or appended to */
    int64_t rollup_rows; /* rollup rows deleted */
} te_retention_stats_t;

/* Applies policy to every kind of the store at time now_ns: per kind,
 * te_store_archive's work for raw events older than now_ns - raw age, then
 * te_store_rollup_expire's for 1m and 1h rows older than now_ns - age.
 * Read-write store, outside a transaction. *out (may be NULL) gets the
 * totals, also on failure (what was done stays done). Returns 0 or TE_E*. */
int te_store_retention(te_store_t *st, const te_retention_policy_t *policy, int64_t now_ns,
                       te_retention_stats_t *out, te_err_t *err);

#endif
