/*
 * window.h - a time-sliced ring holding one windowed aggregate of one group.
 *
 * THREAD: any (one owner; no internal locking, no clock reads: every
 * instant is passed in, so a virtual clock drives it like a real one).
 *
 * Time is cut into slices of S ns aligned on the epoch: slice k holds the
 * events with k*S <= ts < (k+1)*S. The ring has n = ceil(W/S) slots, each
 * with count, sum, min, max, last (value, ts) and, when asked for, a
 * quantile sketch (rules/sketch.h). A slot is recycled lazily when a newer
 * slice lands on it, so te_window_advance is O(1) whatever the time jump.
 * The slots are allocated as live slices need them (2, 4, ... up to n): a
 * group seen once in a long window holds two, not n.
 *
 * The window "as of now" is [now - W, now) at slice granularity: it holds
 * the slices k with now - W <= k*S < now. When now and W are multiples of
 * S (the usual case: ticks every 30 s, auto slices dividing W) that is
 * exactly [now - W, now). Otherwise the oldest partial slice is left out,
 * so the window never counts an event older than now - W but may miss up
 * to one slice of the oldest ones (the rate still divides by W).
 *
 * Slice length: explicit, or auto = W/60 rounded to the nearest whole
 * second (at least 1 s), then lowered to the nearest whole-second divisor
 * of W when W is whole seconds (so windows are exact: 5m -> 5 s x 60,
 * 90s -> 2 s x 45, 70s -> 1 s x 70, 1h -> 60 s x 60, 7s -> 1 s x 7). When
 * no divisor keeps n <= TE_WINDOW_MAX_SLICES (a prime 4099s) or W is not
 * whole seconds, the rounded value is kept (4099s -> 68 s x 61).
 *
 * Late and future events: the window judges ts against its own now (the
 * latest te_window_advance). An event whose slice starts before now - W is
 * late: dropped and counted (te_window_late). An event at or after now, up
 * to now + future tolerance, counts in the newest slice (the one holding
 * now - 1), so it is visible at once; beyond the tolerance it is dropped
 * and counted (te_window_future). The ingest path advances the window to
 * the engine clock before adding.
 *
 * Distinct: exact, over 64-bit keys (te_window_key_hash of a tag value;
 * two values collide with probability ~ n^2 / 2^65), up to distinct_cap
 * keys live in the window (default 10,000). A key beyond the cap is not
 * stored; te_window_distinct then reports the cap count with capped = true
 * until the slice where a key was dropped has left the window.
 *
 * Memory bound: n slots of 64 bytes; with TE_WINDOW_QUANTILE one sketch
 * per used slot plus one scratch sketch (each <= 2 * 8 * 2048 bytes, a few
 * KiB in practice); with TE_WINDOW_DISTINCT a hash table of at most
 * 2 * next_pow2(distinct_cap) entries of 16 bytes (512 KiB at 10,000).
 */
#ifndef TE_RULES_WINDOW_H
#define TE_RULES_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define TE_WINDOW_MAX_SLICES 4096
#define TE_WINDOW_MIN_SLICE_NS INT64_C(1000000)                  /* 1 ms */
#define TE_WINDOW_MAX_NS (INT64_C(400) * 86400 * 1000000000)      /* 400 days */
#define TE_WINDOW_DEFAULT_FUTURE_NS (INT64_C(60) * 1000000000)    /* 60 s */
#define TE_WINDOW_DEFAULT_DISTINCT_CAP 10000u
#define TE_WINDOW_MAX_DISTINCT_CAP 1000000u
/* The clock is clamped to [-2^62, 2^62] ns (about 1824 to 2116); event
 * timestamps may be any int64. */
#define TE_WINDOW_MAX_NOW_NS (INT64_C(1) << 62)

/* Optional parts, OR-ed into te_window_opts_t.flags. */
#define TE_WINDOW_QUANTILE 1u /* keep a sketch per slice: te_window_quantile */
#define TE_WINDOW_DISTINCT 2u /* keep the distinct-key set: te_window_distinct */

/* Creation options; zero fields take the documented defaults. */
typedef struct te_window_opts {
    int64_t window_ns; /* W: required, (0, TE_WINDOW_MAX_NS]; >= 1 s when slice_ns is 0 */
    int64_t slice_ns;  /* 0 = auto (see top); else [1 ms, W] and ceil(W/S) <= max slices */
    int64_t future_ns; /* future tolerance; 0 = 60 s; negative is invalid */
    unsigned flags;    /* TE_WINDOW_QUANTILE | TE_WINDOW_DISTINCT */
    double accuracy;   /* sketch relative accuracy; 0 = 1% (see sketch.h) */
    uint32_t distinct_cap; /* 0 = 10,000; at most TE_WINDOW_MAX_DISTINCT_CAP */
} te_window_opts_t;

typedef struct te_window te_window_t;

/* Makes an empty window whose clock starts at now_ns. Returns it (caller
 * frees with te_window_free) or NULL with err set: TE_EINVAL naming the bad
 * option, TE_ENOMEM. */
te_window_t *te_window_new(const te_window_opts_t *opts, int64_t now_ns, te_err_t *err);

/* Frees w and everything it holds. NULL is a no-op. */
void te_window_free(te_window_t *w);

/* Moves the window's clock to now_ns, expiring the slices that fall out.
 * A now_ns earlier than the current clock is ignored (time never goes back
 * for a window). O(1) for any jump. Cannot fail. */
void te_window_advance(te_window_t *w, int64_t now_ns);

/* The window's clock (the latest now passed in). */
int64_t te_window_now(const te_window_t *w);

/* Adds value v observed at ts_ns (see the late/future rules at the top).
 * Returns 0 when the event was counted or dropped as late/future (the
 * counters say which); TE_EINVAL when v is NaN or infinite; TE_ENOMEM when
 * the ring of slots cannot grow (nothing counted) or the slice sketch
 * cannot (the basic aggregates were still counted). */
int te_window_add(te_window_t *w, int64_t ts_ns, double v);

/* Adds a distinct key observed at ts_ns (same late/future rules; only the
 * distinct set is touched). Returns 0; TE_EINVAL when the window was made
 * without TE_WINDOW_DISTINCT; TE_ENOMEM when the table cannot grow (then
 * the key is not stored and the count reports capped). */
int te_window_add_key(te_window_t *w, int64_t ts_ns, uint64_t key);

/* A 64-bit hash of n bytes for te_window_add_key (FNV-1a then a 64-bit
 * finaliser). Cannot fail. */
uint64_t te_window_key_hash(const void *p, size_t n);

/* Readers, all as of the window's clock over [now - W, now). */

/* Number of values in the window. */
uint64_t te_window_count(const te_window_t *w);

/* Sum of the values in the window; 0 when empty. */
double te_window_sum(const te_window_t *w);

/* Events per second over W: count / (W in seconds). 0 when empty. */
double te_window_rate(const te_window_t *w);

/* Mean / minimum / maximum into *out. Return 0, or TE_ENOTFOUND when the
 * window is empty (*out untouched). */
int te_window_avg(const te_window_t *w, double *out);
int te_window_min(const te_window_t *w, double *out);
int te_window_max(const te_window_t *w, double *out);

/* The value with the greatest timestamp (within a slice the later add wins
 * a tie; across slices the newer slice) into
 * *value and, when ts_ns is not NULL, its timestamp. 0 or TE_ENOTFOUND. */
int te_window_last(const te_window_t *w, double *value, int64_t *ts_ns);

/* Estimates the q-quantile (within the sketch bound, see sketch.h) by
 * merging the live slices' sketches into a scratch sketch (so not const).
 * Returns 0; TE_EINVAL when q is outside [0, 1] or the window was made
 * without TE_WINDOW_QUANTILE; TE_ENOTFOUND when empty; TE_ENOMEM. */
int te_window_quantile(te_window_t *w, double q, double *out);

/* Number of distinct keys in the window into *count; *capped is true when
 * keys were dropped at the cap (then *count is a lower bound). Returns 0,
 * or TE_EINVAL when the window was made without TE_WINDOW_DISTINCT. */
int te_window_distinct(const te_window_t *w, uint64_t *count, bool *capped);

/* Events dropped since creation: older than the window / beyond the future
 * tolerance. Cannot fail. */
uint64_t te_window_late(const te_window_t *w);
uint64_t te_window_future(const te_window_t *w);

/* The slice length S and the number of slots n chosen at creation. */
int64_t te_window_slice_ns(const te_window_t *w);
int64_t te_window_slices(const te_window_t *w);

#endif
