/*
 * sketch_key.h - a sketch's bucket index, ceil(ln m / ln gamma), without
 * calling log() per value.
 *
 * THREAD: any. A te_sketch_key_t is read-only after te_sketch_key_init; the
 * shared cell table is filled once (pthread_once) by the first init and
 * only read after that.
 *
 * Why: rollups add every value of an hour to sketches, and libm's log plus
 * ceil cost ~55 instructions a value; this costs ~23 (x86-64, -O2).
 *
 * The one idea: a cheap estimate of y = log_gamma(m), and the reference
 * formula only where the estimate could round the other way. With
 * m = 2^E * f, f in [1, 2), a 256-cell table gives log2 of the cell's
 * centre c (|f / c - 1| <= 1/512) and a quadratic the rest:
 *     y ~ (E + log2 c + log2(f / c)) * ln 2 / ln gamma.
 * Error of the estimate: at most 1.3e-5 buckets (the cubic term left out,
 * 3.6e-9 in log2, times at most 3466 buckets per doubling at the finest
 * accuracy 1e-4, plus ~1e-7 of rounding); measured 1.24e-5 at accuracy
 * 1e-4, 1.8e-7 at 0.01. The reference ceil(log(m) * inv_log_gamma) is
 * itself within ~1e-9 buckets of the true value. So when the estimate lies
 * more than 2^-12 (2.4e-4) buckets from an integer, no integer separates
 * it from the reference's y and both round up alike; the ~1 in 2000
 * values closer than that (and m = 1, the one exact boundary) take the
 * reference path. The result is therefore exactly the reference index, for
 * every accuracy, not only "within one near a boundary": stored sketches,
 * the planner's copy of the formula (store/rollup_qsketch.c) and new
 * sketches agree bucket for bucket, and the index is as monotone in m as
 * libm's log (the bulk add relies on that to size its array).
 */
#ifndef TE_RULES_SKETCH_KEY_H
#define TE_RULES_SKETCH_KEY_H

#include <stdint.h>
#include <string.h>

/* Per-accuracy constants (fields read-only after te_sketch_key_init). */
typedef struct te_sketch_key {
    double inv_log_gamma;     /* 1 / ln gamma: the reference formula */
    double per_cell;          /* ln 2 / ln gamma / 256: buckets per 1/256 doubling */
    double snap;              /* TE_SKETCH_KEY_SNAP - 256 * 1023 * per_cell */
    int64_t idx_min, idx_max; /* index range of [DBL_MIN, DBL_MAX], widened by one */
} te_sketch_key_t;

/* The shared table, in units of 1/256 of a doubling (see te_sketch_key):
 * cell j covers mantissas [1 + j/256, 1 + (j+1)/256); inv[j] ~ 1 / its
 * centre, and log2c[j] = 256 * -log2(inv[j]) (of the rounded inverse, so
 * no error comes from its rounding) - j - 256 * 1.5 / ln 2. Filled by
 * te_sketch_key_init. */
#define TE_SKETCH_KEY_CELLS 256
extern struct te_sketch_key_cells {
    double inv[TE_SKETCH_KEY_CELLS];
    double log2c[TE_SKETCH_KEY_CELLS];
} te_sketch_key_cells;

#define TE_SKETCH_KEY_LOG2E 1.4426950408889634 /* 1 / ln 2 */
/* Adding 1.5 * 2^(52-24) rounds y to 24 fraction bits and leaves
 * 2^51 + y * 2^24 in the low bits of the double: floor(y) and the
 * fraction come out with integer shifts and masks (|y| < 2^27; at the
 * finest accuracy |y| <= 3.6e6). */
#define TE_SKETCH_KEY_FRAC_BITS 24
#define TE_SKETCH_KEY_SNAP 402653184.0 /* 1.5 * 2^28 */
#define TE_SKETCH_KEY_SNAP_BITS UINT64_C(0x41b8000000000000)
/* Half-width of the band around a boundary that takes the reference path:
 * 2^-12 buckets, in units of 2^-24. */
#define TE_SKETCH_KEY_GUARD (UINT64_C(1) << 12)

/* Sets k up for relative accuracy a (gamma = (1 + a) / (1 - a)); a in
 * [TE_SKETCH_MIN_ACCURACY, TE_SKETCH_MAX_ACCURACY]. Cannot fail. */
void te_sketch_key_init(te_sketch_key_t *k, double a);

/* The reference: ceil(log(m) * inv_log_gamma), clamped to [idx_min,
 * idx_max]. Any m > 0. Cannot fail. */
int64_t te_sketch_key_exact(const te_sketch_key_t *k, double m);

/* The bucket index of a magnitude m >= DBL_MIN, finite (a normal double):
 * always equal to te_sketch_key_exact(k, m). Cannot fail.
 *
 * Working in 1/256 doublings: u >> 44 is 256 * biased exponent + cell, one
 * conversion for both; with q = f * inv[j] (|q - 1| <= 1/512),
 * 256 log2 q ~ 256 (q - 1 - (q - 1)^2 / 2) / ln 2
 *            = q (512 - 128 q) / ln 2 - 256 * 1.5 / ln 2,
 * the constant being folded into log2c[j]. */
static inline int64_t te_sketch_key(const te_sketch_key_t *k, double m)
{
    uint64_t u, t;
    double f, z;
    memcpy(&u, &m, sizeof(u));
    uint64_t e256 = u >> 44;
    unsigned j = (unsigned)e256 & (TE_SKETCH_KEY_CELLS - 1);
    uint64_t fb = (u & UINT64_C(0x000fffffffffffff)) | UINT64_C(0x3ff0000000000000);
    memcpy(&f, &fb, sizeof(f));
    double q = f * te_sketch_key_cells.inv[j];
    double l256 = (double)(int64_t)e256 + te_sketch_key_cells.log2c[j] +
                  q * (-128.0 * TE_SKETCH_KEY_LOG2E * q + 512.0 * TE_SKETCH_KEY_LOG2E);
    z = l256 * k->per_cell + k->snap;
    memcpy(&t, &z, sizeof(t));
    if (((t + TE_SKETCH_KEY_GUARD) & ((UINT64_C(1) << TE_SKETCH_KEY_FRAC_BITS) - 1)) <
        2 * TE_SKETCH_KEY_GUARD)
        return te_sketch_key_exact(k, m);
    return (int64_t)(t >> TE_SKETCH_KEY_FRAC_BITS) -
           (int64_t)(TE_SKETCH_KEY_SNAP_BITS >> TE_SKETCH_KEY_FRAC_BITS) + 1;
}

#endif
