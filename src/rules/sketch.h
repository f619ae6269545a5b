/*
 * sketch.h - a mergeable relative-error quantile sketch (DDSketch style).
 *
 * THREAD: any (one owner; no internal locking).
 *
 * Values are mapped to logarithmic buckets: with relative accuracy a and
 * gamma = (1 + a) / (1 - a), a positive value v >= DBL_MIN goes to bucket
 * i = ceil(log_gamma(v)), which covers (gamma^(i-1), gamma^i]; the bucket is
 * read back as 2 * gamma^i / (gamma + 1). Negative values use a second set of
 * buckets on |v|; exact zeros (and subnormals, |v| < DBL_MIN) are counted in
 * a zero bucket.
 *
 * Error bound: for a rank-q quantile, let v be the true value of rank
 * floor(q * (n - 1)) in the sorted input (0-based, "lower nearest rank").
 * The estimate v' satisfies |v' - v| <= a * |v| (up to double rounding,
 * ~1e-12 relative), as long as no bucket was collapsed (see below).
 * q = 0 and q = 1 return the exact min and max. Count, sum, min and max
 * are kept exactly (sum is a double running sum).
 *
 * Memory bound: each sign keeps a dense array covering at most max_buckets
 * consecutive bucket indices (default 2048: with a = 1% that spans a ratio
 * of gamma^2048 ~ 1e17 between the smallest and largest magnitude, enough
 * for nanoseconds to years). When a value would stretch a side past
 * max_buckets, the lowest-magnitude buckets of that side are collapsed into
 * the lowest kept bucket (te_sketch_collapsed() turns true): quantiles that
 * fall in the collapsed magnitudes are overestimated in magnitude, all
 * others keep the bound. Worst case memory is ~ 2 * 8 * max_buckets bytes.
 *
 * Sketches merge exactly (bucket counts add) when they share the relative
 * accuracy, which is what 1-minute and 1-hour rollups need; they serialise
 * to a compact, versioned, little-endian blob (te_sketch_encode), and
 * te_sketch_decode validates every field, so a hostile blob gets an error,
 * never a crash or an unbounded allocation.
 */
#ifndef TE_RULES_SKETCH_H
#define TE_RULES_SKETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define TE_SKETCH_DEFAULT_ACCURACY 0.01
#define TE_SKETCH_MIN_ACCURACY 0.0001
#define TE_SKETCH_MAX_ACCURACY 0.5
#define TE_SKETCH_DEFAULT_MAX_BUCKETS 2048u
#define TE_SKETCH_MIN_BUCKETS 16u
#define TE_SKETCH_MAX_BUCKETS 65536u
/* Format version written by te_sketch_encode. */
#define TE_SKETCH_FORMAT_VERSION 1

typedef struct te_sketch te_sketch_t;

/* Makes an empty sketch. rel_accuracy must lie in [TE_SKETCH_MIN_ACCURACY,
 * TE_SKETCH_MAX_ACCURACY] (0 picks TE_SKETCH_DEFAULT_ACCURACY); max_buckets
 * in [TE_SKETCH_MIN_BUCKETS, TE_SKETCH_MAX_BUCKETS] (0 picks the default).
 * Returns the sketch (caller frees with te_sketch_free), or NULL with err
 * set: TE_EINVAL for a parameter out of range, TE_ENOMEM. */
te_sketch_t *te_sketch_new(double rel_accuracy, uint32_t max_buckets, te_err_t *err);

/* Frees s and its buckets. NULL is a no-op. */
void te_sketch_free(te_sketch_t *s);

/* Adds one value. Returns 0; TE_EINVAL when v is NaN or infinite; TE_ENOMEM
 * when the bucket array cannot grow. On failure nothing changes. */
int te_sketch_add(te_sketch_t *s, double v);

/* Adds the finite values of v[0, n) (others are skipped), as n calls of
 * te_sketch_add would, in one loop: the rollups' bulk path. Returns 0 or
 * TE_ENOMEM (the values before the failing one are in). */
int te_sketch_add_all(te_sketch_t *s, const double *v, size_t n);

/* Adds every value of src into dst (bucket counts add; count, sum, min, max
 * combine). src is unchanged; dst keeps its own max_buckets. Returns 0;
 * TE_EINVAL (err says why) when the two relative accuracies differ or
 * dst == src, and
 * then dst is unchanged; TE_ENOMEM, and then dst still holds exactly its
 * own values (its buckets may have been regrouped by a collapse). */
int te_sketch_merge(te_sketch_t *dst, const te_sketch_t *src, te_err_t *err);

/* Estimates the q-quantile, q in [0, 1], into *out (see the bound above).
 * Returns 0; TE_EINVAL when q is outside [0, 1] or NaN; TE_ENOTFOUND when
 * the sketch is empty. *out is untouched on failure. */
int te_sketch_quantile(const te_sketch_t *s, double q, double *out);

/* Empties s, keeping its parameters and its bucket memory for reuse.
 * Cannot fail. */
void te_sketch_reset(te_sketch_t *s);

/* Number of values added (and merged). Cannot fail. */
uint64_t te_sketch_count(const te_sketch_t *s);

/* Sum of the values; 0 when empty. Cannot fail. */
double te_sketch_sum(const te_sketch_t *s);

/* Exact minimum / maximum; +INFINITY / -INFINITY when empty. */
double te_sketch_min(const te_sketch_t *s);
double te_sketch_max(const te_sketch_t *s);

/* The relative accuracy a the sketch was made with. */
double te_sketch_accuracy(const te_sketch_t *s);

/* True once any bucket was collapsed because of max_buckets (the bound no
 * longer holds for the lowest magnitudes). Reset clears it. */
bool te_sketch_collapsed(const te_sketch_t *s);

/* Serialises s into a malloc'd blob (*out, *out_len; caller frees). The
 * format (version 1, all integers little-endian or LEB128 varints):
 *   "TESK" | u8 version | u8 flags (bit0 = collapsed) | f64 accuracy |
 *   u32 max_buckets | varint count | varint zero_count | f64 sum | f64 min |
 *   f64 max | store negative | store positive
 * where a store is varint n (non-empty buckets), then n pairs
 * (index, count): the first index zigzag-encoded, later ones as the varint
 * gap to the previous index (>= 1), counts as varints (>= 1).
 * Returns 0 or TE_ENOMEM (then *out is untouched). */
int te_sketch_encode(const te_sketch_t *s, unsigned char **out, size_t *out_len);

/* Parses a blob made by te_sketch_encode. Every field is checked (magic,
 * version, flags, parameter ranges, index range, bucket span <=
 * max_buckets, counts adding up, no trailing bytes), so arbitrary bytes give
 * NULL with err set (TE_EPARSE, naming the problem and byte offset), never
 * a crash. Returns a new sketch (caller frees) or NULL (TE_EPARSE,
 * TE_ENOMEM). */
te_sketch_t *te_sketch_decode(const void *blob, size_t len, te_err_t *err);

#endif
