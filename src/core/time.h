/*
 * time.h - clocks, durations and RFC 3339 timestamps.
 *
 * THREAD: any. Pure functions except the clock reads. All instants are
 * int64 nanoseconds since the Unix epoch (UTC); durations are int64 ns.
 */
#ifndef TE_CORE_TIME_H
#define TE_CORE_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define TE_NS_PER_SEC INT64_C(1000000000)
#define TE_NS_PER_MS INT64_C(1000000)

/* Wall clock now (CLOCK_REALTIME) in ns. Cannot fail. */
int64_t te_time_now_ns(void);

/* Monotonic clock (CLOCK_MONOTONIC) in ns. Cannot fail. */
int64_t te_time_mono_ns(void);

/* Parses a duration "30s", "5m", "2h", "7d", "1w", "250ms", also sums such
 * as "1h30m"; "0" and "0s" are zero. Returns 0 and sets *out_ns, or TE_EINVAL
 * with a message naming the text. */
int te_duration_parse(const char *s, int64_t *out_ns, te_err_t *err);

/* Formats a duration compactly ("90s" -> "1m30s", 0 -> "0s") into buf.
 * Returns the length written (truncated to cap-1). */
size_t te_duration_format(int64_t ns, char *buf, size_t cap);

/* Parses RFC 3339 ("2026-11-20T10:00:00.123Z", "2026-11-20T12:00:00+02:00",
 * fraction up to 9 digits, 't'/'z'/' ' accepted as by RFC 3339 5.6 notes).
 * Returns 0 and sets *out_ns, or TE_EINVAL. */
int te_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ns, te_err_t *err);

/* Parses a CLI/API time: RFC 3339 or Unix seconds (integer or float).
 * Returns 0 and sets *out_ns, or TE_EINVAL. */
int te_time_parse(const char *s, int64_t *out_ns, te_err_t *err);

/* Parses a --since style value: a duration D means now - D, otherwise a time
 * as te_time_parse. now_ns is the reference instant. */
int te_time_parse_since(const char *s, int64_t now_ns, int64_t *out_ns, te_err_t *err);

/* Formats ns as RFC 3339 UTC with millisecond precision when the sub-second
 * part is a whole number of ms, else nanosecond precision:
 * "2026-11-20T10:00:00.123Z", "2026-11-20T10:00:00Z" (no fraction when 0).
 * buf needs 36 bytes. Returns the length. */
size_t te_time_format_rfc3339(int64_t ns, char *buf, size_t cap);

#endif
