/*
 * sketch_key.c - the per-accuracy constants, the shared cell table and the
 * reference index (see sketch_key.h for the method and its error bound).
 *
 * THREAD: any. The table is the one piece of shared state: filled once
 * under pthread_once, constant afterwards.
 */
#include "rules/sketch_key.h"

#include <float.h>
#include <math.h>
#include <pthread.h>

struct te_sketch_key_cells te_sketch_key_cells;

static pthread_once_t cells_once = PTHREAD_ONCE_INIT;

static void fill_cells(void)
{
    for (int j = 0; j < TE_SKETCH_KEY_CELLS; j++) {
        double centre = 1.0 + (j + 0.5) / TE_SKETCH_KEY_CELLS;
        double inv = 1.0 / centre;
        te_sketch_key_cells.inv[j] = inv;
        te_sketch_key_cells.log2c[j] =
            -256.0 * log2(inv) - j - 256.0 * 1.5 * TE_SKETCH_KEY_LOG2E;
    }
}

void te_sketch_key_init(te_sketch_key_t *k, double a)
{
    double gamma = (1.0 + a) / (1.0 - a);
    pthread_once(&cells_once, fill_cells);
    k->inv_log_gamma = 1.0 / log(gamma);
    k->per_cell = 0.6931471805599453 /* ln 2 */ * k->inv_log_gamma / 256.0;
    k->snap = TE_SKETCH_KEY_SNAP - 256.0 * 1023.0 * k->per_cell;
    k->idx_min = (int64_t)floor(log(DBL_MIN) * k->inv_log_gamma) - 1;
    k->idx_max = (int64_t)ceil(log(DBL_MAX) * k->inv_log_gamma) + 1;
}

int64_t te_sketch_key_exact(const te_sketch_key_t *k, double m)
{
    /* 1.0 is the one exact boundary (gamma^0), and common in counts */
    if (m == 1.0)
        return 0;
    int64_t i = (int64_t)ceil(log(m) * k->inv_log_gamma);
    if (i < k->idx_min)
        i = k->idx_min;
    if (i > k->idx_max)
        i = k->idx_max;
    return i;
}
