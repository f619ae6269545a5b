/*
 * detect.h - anomaly detection methods as small state machines (SPEC 6.3).
 *
 * THREAD: any (one owner per detector; no clock reads, no locks: every
 * instant is passed in, so a virtual clock drives it like the real one).
 *
 * A detector is one method's state for one series (one group of one
 * te.detector). te_detect_update feeds it the next value of the series at
 * time t and returns a verdict: anomalous or not, a score, the baseline the
 * value was compared with and the band [lower, upper] outside which a value
 * is anomalous. The state serialises to a blob (te_detect_save) and back
 * (te_detect_load), so baselines survive reloads and restarts.
 *
 * The arithmetic of each method (docs/detectors.md has the user's view):
 *
 *   ewma_zscore{alpha, threshold, warmup, drift}
 *     Exponentially weighted mean m and variance v (West/Finch update:
 *     d = x - m; m += alpha*d; v = (1 - alpha)*(v + alpha*d*d)), and a slow
 *     mean L (alpha/10) as the long-run level. sd = max(sqrt(v), sd_floor),
 *     sd_floor = 1e-9 + 1e-3*|m|; z = (x - m) / sd and the drift
 *     g = (m - L) / sd, both judged before x is folded in. Anomalous once
 *     warmup values were seen when |z| > threshold (a spike or a step) or
 *     |g| > drift (a slow drift the fast mean follows, default 3).
 *     score = max(|z|, |g| * threshold / drift). An anomalous value is
 *     folded in clipped to the band edge m +- thr*sd, so one spike cannot
 *     inflate the variance and hide the next one, while a level shift is
 *     still absorbed within a few dozen values.
 *
 *   mad{window, threshold, drift}
 *     The last `window` values (a ring). med = median, MAD = median of
 *     |x_i - med|, sigma = 1.4826*MAD (when MAD is 0: 1.2533 * mean
 *     absolute deviation, then the sd floor as above). z = (x - med) /
 *     sigma. Like ewma_zscore, a slow level L follows the median (EW,
 *     alpha 0.2/window) and g = (med - L) / sigma catches drifts the
 *     window's median follows: anomalous when |z| > threshold or
 *     |g| > drift (default 3); score = max(|z|, |g| * threshold / drift).
 *     Verdicts start once max(5, window/2) values were seen; x joins the
 *     ring afterwards (anomalous or not: the median shrugs off a minority
 *     of outliers).
 *
 *   seasonal{period, threshold, seasons}
 *     Values land in slots of length `step` (the detector's every):
 *     slot = (t / step) mod (period / step). The baseline of slot s is the
 *     median of slot s in up to `seasons` previous periods (default 3).
 *     The noise scale sigma starts as 1.4826 * MAD of the first period's
 *     successive differences / sqrt(2) and then follows the absolute
 *     residuals of non-anomalous values (EW, alpha 0.02, times 1.2533).
 *     z = (x - baseline) / sigma; no verdict until one full period was
 *     seen (warm-up) or while slot s has no previous value.
 *
 *   change{pct, window}
 *     c = 100 * (x - x_old) / max(|x_old|, 1e-9) where x_old is the value
 *     `window` updates ago. Anomalous when |c| >= pct; score = |c| (a
 *     percentage), baseline = x_old, band = x_old * (1 -+ pct/100).
 *
 *   absent{after}
 *     Dead man's switch. last = the latest time with value > 0 (or passed
 *     to te_detect_seen). Anomalous when t - last >= after; score =
 *     (t - last) / after; baseline = after in seconds.
 *
 *   multivariate{k, lag, smooth, train_window, train_every, models,
 *                percentile, threshold}
 *     In the spirit of Netdata's ML (defaults k 2, lag 2, smooth 1, windows
 *     of 120 trained every 240 updates, 5 models, p99, threshold 2): each
 *     value becomes a feature vector of the smoothed value s_t (mean of the
 *     last `smooth` values) and its difference s_t - s_(t-1), at lags
 *     0..lag (dimension 2*(lag+1)).
 *     Every train_every updates once train_window vectors exist, a model
 *     is trained on the latest train_window vectors: per-dimension
 *     standardisation, k-means (k-means++ seeding from a fixed seed, at most
 *     20 Lloyd rounds) and the `percentile` of the training points'
 *     distances to their nearest centroid as the model's radius. The last
 *     `models` models are kept. A point's score is the smallest of its
 *     distance/radius over the models (consensus: every model must find it
 *     far out); anomalous when score > threshold. anomaly_rate is an EW
 *     (alpha 0.05) of the anomalous bit: the stored per-series score.
 *
 * `direction` (up, down or both; default both) restricts ewma_zscore, mad,
 * seasonal and change to deviations on that side.
 */
#ifndef TE_DETECT_DETECT_H
#define TE_DETECT_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef enum {
    TE_DETECT_EWMA = 0,
    TE_DETECT_MAD,
    TE_DETECT_SEASONAL,
    TE_DETECT_CHANGE,
    TE_DETECT_ABSENT,
    TE_DETECT_MULTIVARIATE,
    TE_DETECT_NKINDS
} te_detect_kind_t;

typedef enum { TE_DETECT_BOTH = 0, TE_DETECT_UP, TE_DETECT_DOWN } te_detect_dir_t;

#define TE_DETECT_MAX_WINDOW 10000u   /* mad / change values, multivariate train_window */
#define TE_DETECT_MAX_SLOTS 10080u    /* seasonal period / step (1w at 1m) */
#define TE_DETECT_MAX_SEASONS 8u
#define TE_DETECT_MAX_K 16u
#define TE_DETECT_MAX_LAG 16u
#define TE_DETECT_MAX_MODELS 16u

/* A method and its parameters. Zero fields take the defaults of
 * te_detect_params_default (te_detect_params_check fills them in). Plain
 * data: copy with =, free with free() when heap allocated. */
typedef struct te_detect_params {
    te_detect_kind_t kind;
    te_detect_dir_t direction;
    double threshold;        /* ewma 4.2, mad 5, seasonal 4, multivariate 2 */
    double alpha;            /* ewma: 0.03 */
    double drift;            /* ewma, mad: 3 (sd units between the level and the slow level) */
    uint32_t warmup;         /* ewma: 30 values */
    uint32_t window;         /* mad: 60 values; change: 1 value back */
    int64_t period_ns;       /* seasonal: required (1d or 1w) */
    int64_t step_ns;         /* seasonal: slot length, the detector's every (required) */
    uint32_t seasons;        /* seasonal: 3 previous periods */
    double pct;              /* change: 50 (%) */
    int64_t after_ns;        /* absent: required */
    uint32_t k;              /* multivariate: 2 clusters */
    uint32_t lag;            /* multivariate: 2 */
    uint32_t smooth;         /* multivariate: 1 value */
    uint32_t train_window;   /* multivariate: 120 vectors */
    uint32_t train_every;    /* multivariate: 240 updates */
    uint32_t models;         /* multivariate: 5 */
    double percentile;       /* multivariate: 99 */
} te_detect_params_t;

/* What one update concluded. When ready is false (warm-up) the method had
 * too little history: anomalous is false and the numbers are 0. */
typedef struct te_detect_verdict {
    bool ready;
    bool anomalous;
    double score;
    double baseline;
    double lower, upper;
} te_detect_verdict_t;

typedef struct te_detector te_detector_t;

/* "ewma_zscore" "mad" "seasonal" "change" "absent" "multivariate". */
const char *te_detect_kind_name(te_detect_kind_t k);

/* Parses a kind name; returns 0 or TE_EINVAL. */
int te_detect_kind_parse(const char *s, te_detect_kind_t *out);

/* Sets *p to kind's defaults (required fields left 0). Cannot fail. */
void te_detect_params_default(te_detect_params_t *p, te_detect_kind_t kind);

/* Fills zero fields with defaults and validates every field. Returns 0 or
 * TE_EINVAL with err naming the parameter ("seasonal: period must be a
 * multiple of the step (every)"). */
int te_detect_params_check(te_detect_params_t *p, te_err_t *err);

/* True when a and b describe the same method (state stays meaningful). */
bool te_detect_params_equal(const te_detect_params_t *a, const te_detect_params_t *b);

/* A 64-bit signature of the parameters (persisted with the state; a
 * changed definition discards the old state). Cannot fail. */
uint64_t te_detect_params_hash(const te_detect_params_t *p);

/* Makes an empty detector for p (copied; it must have passed
 * te_detect_params_check). NULL with err set on TE_EINVAL / TE_ENOMEM. */
te_detector_t *te_detect_new(const te_detect_params_t *p, te_err_t *err);

/* Frees d. NULL is a no-op. */
void te_detect_free(te_detector_t *d);

/* The parameters d was made with (borrowed). */
const te_detect_params_t *te_detect_params(const te_detector_t *d);

/* Feeds value at t_ns and fills *out. Returns 0, or TE_EINVAL when value is
 * NaN or infinite (nothing changes, *out says not ready). Cannot fail
 * otherwise (no allocation after te_detect_new). */
int te_detect_update(te_detector_t *d, double value, int64_t t_ns, te_detect_verdict_t *out);

/* Records that the series had an event at t_ns (absent's heartbeat; the
 * other methods ignore it). Cannot fail. */
void te_detect_seen(te_detector_t *d, int64_t t_ns);

/* Updates fed so far, and the multivariate anomaly rate (0 for others). */
uint64_t te_detect_count(const te_detector_t *d);
double te_detect_anomaly_rate(const te_detector_t *d);

/* Serialises d's state into a malloc'd blob (*blob, *len; caller frees).
 * Returns 0 or TE_ENOMEM. The format is versioned, native-endian (the
 * database it goes to stays on one machine). */
int te_detect_save(const te_detector_t *d, unsigned char **blob, size_t *len);

/* Makes a detector for p from a blob of te_detect_save. NULL with err:
 * TE_EINVAL when the blob is truncated, of another version or made for
 * other parameters; TE_ENOMEM. */
te_detector_t *te_detect_load(const te_detect_params_t *p, const void *blob, size_t len,
                              te_err_t *err);

/* The median of v[0..n) (n > 0; the mean of the two middle values when n
 * is even), reordering v. O(n), no allocation. Cannot fail. */
double te_detect_median(double *v, size_t n);

#endif
