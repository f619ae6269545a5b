/*
 * detect_int.h - the inside of te_detector_t, shared by detect.c,
 * detect_robust.c and detect_mv.c only.
 *
 * THREAD: any (one owner).
 *
 * One struct for every method: each uses its own fields and arrays, all
 * allocated once by te_detect_new from the parameters, so an update never
 * allocates and te_detect_save / te_detect_load walk one fixed layout.
 */
#ifndef TE_DETECT_DETECT_INT_H
#define TE_DETECT_DETECT_INT_H

#include "detect/detect.h"

struct te_detector {
    te_detect_params_t p;
    uint64_t n;              /* updates with a finite value */
    /* ewma_zscore */
    double mean, var, slow;
    /* mad, change: the last `cap` values; multivariate: the last `smooth` raw values */
    double *ring;
    uint32_t cap, len, head; /* head: the next slot written */
    double *scratch;         /* mad: the window sorted (cap values) */
    /* seasonal */
    double *cells;           /* seasons rows x nslots */
    int64_t *cell_period;    /* period index of each cell; INT64_MIN: empty */
    uint32_t nslots;
    int64_t first_ns;        /* time of the first update */
    double sigma;            /* residual scale; 0 while warming up */
    double dsum, prev;       /* warm-up: sum of |successive differences|, last value */
    uint64_t dn;
    /* absent */
    int64_t last_seen_ns;    /* 0: never */
    /* multivariate */
    uint32_t dim;
    double *pairs;           /* (s, ds) of the last lag+1 points, ring of (lag+1) x 2 */
    uint32_t npairs, phead;
    double s_prev;
    bool have_s;
    double *feat;            /* train_window x dim feature vectors, ring */
    uint32_t nfeat, fhead;
    double *models;          /* models x model_size; see detect_mv.c */
    uint32_t nmodels, mhead, since_train;
    uint64_t trained;        /* models trained so far (seeds k-means) */
    double rate;             /* EW anomaly rate */
    double *work;            /* training scratch */
};

/* Growable byte buffer for te_detect_save; oom sticks. */
typedef struct te_detect_wbuf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
} te_detect_wbuf_t;

/* Reader over a blob; bad sticks when a read runs past the end. */
typedef struct te_detect_rbuf {
    const unsigned char *p;
    size_t len, off;
    bool bad;
} te_detect_rbuf_t;

void te_detect_put(te_detect_wbuf_t *w, const void *src, size_t n);
void te_detect_get(te_detect_rbuf_t *r, void *dst, size_t n);

/* mad: rebuilds the sorted copy of the window from the ring (after load). */
void te_detect_mad_rebuild(te_detector_t *d);

/* Per-method updates (value finite; out zeroed by the caller). */
void te_detect_mad_update(te_detector_t *d, double x, te_detect_verdict_t *out);
void te_detect_seasonal_update(te_detector_t *d, double x, int64_t t_ns,
                               te_detect_verdict_t *out);
void te_detect_mv_update(te_detector_t *d, double x, te_detect_verdict_t *out);

/* Multivariate: size of one model in doubles; allocation of its arrays. */
size_t te_detect_mv_model_size(const te_detect_params_t *p);
int te_detect_mv_alloc(te_detector_t *d);

/* Applies direction to a signed deviation z: the magnitude that counts. */
double te_detect_directed(te_detect_dir_t dir, double z);

#endif
