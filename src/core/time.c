/*
 * time.c - clocks, durations ("1h30m") and RFC 3339 timestamps.
 *
 * THREAD: any. No timegm/strptime: civil dates convert with the
 * days-from-civil arithmetic (proleptic Gregorian), which is exact, locale
 * and time-zone free, and cheap enough for the ingest path. Fractions and
 * Unix seconds are parsed digit by digit so no precision is lost to double.
 */
#include "time.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DURATION_UNITS "ns, us, ms, s, m, h, d, w"
/* int64 ns covers 1677-09-21 .. 2262-04-11; keep to whole safe seconds. */
#define MAX_SECS (INT64_MAX / TE_NS_PER_SEC - 1)
#define MIN_SECS (INT64_MIN / TE_NS_PER_SEC + 1)

int64_t te_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * TE_NS_PER_SEC + ts.tv_nsec;
}

int64_t te_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * TE_NS_PER_SEC + ts.tv_nsec;
}

/* Copies at most 64 bytes of user text for an error message. */
static const char *excerpt(const char *s, size_t len, char *buf, size_t cap)
{
    size_t n = len < cap - 4 ? len : cap - 4;
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (n < len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static int64_t unit_ns(const char *u, size_t n)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000}, /* µs */
        {"ms", TE_NS_PER_MS},
        {"s", TE_NS_PER_SEC},
        {"m", 60 * TE_NS_PER_SEC},
        {"h", 3600 * TE_NS_PER_SEC},
        {"d", 86400 * TE_NS_PER_SEC},
        {"w", 7 * 86400 * TE_NS_PER_SEC},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
            return units[i].ns;
    return 0;
}

int te_duration_parse(const char *s, int64_t *out_ns, te_err_t *err)
{
    char ex[80];
    if (!s || !*s)
        return te_err_set(err, TE_EINVAL,
                          "duration is empty (use e.g. 30s, 5m, 2h, 7d, 1w; units: %s)",
                          DURATION_UNITS);
    size_t len = strlen(s);
    const char *p = s;
    if (*p == '-')
        return te_err_set(err, TE_EINVAL, "duration \"%s\": negative durations are not allowed",
                          excerpt(s, len, ex, sizeof(ex)));
    if (strcmp(s, "0") == 0) {
        *out_ns = 0;
        return 0;
    }
    int64_t total = 0;
    while (*p) {
        if (*p < '0' || *p > '9')
            return te_err_set(err, TE_EINVAL,
                              "duration \"%s\": expected a number at \"%s\" (e.g. 30s, 1h30m)",
                              excerpt(s, len, ex, sizeof(ex)), p);
        /* Integer part, then an optional fraction ("1.5h"), kept exact. */
        int64_t whole = 0;
        while (*p >= '0' && *p <= '9') {
            if (whole > (INT64_MAX - 9) / 10)
                goto too_large;
            whole = whole * 10 + (*p++ - '0');
        }
        int64_t frac = 0, frac_div = 1;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return te_err_set(err, TE_EINVAL, "duration \"%s\": expected digits after '.'",
                                  excerpt(s, len, ex, sizeof(ex)));
            while (*p >= '0' && *p <= '9') {
                if (frac_div < TE_NS_PER_SEC) {
                    frac = frac * 10 + (*p - '0');
                    frac_div *= 10;
                }
                p++;
            }
        }
        const char *u = p;
        while (*p && !(*p >= '0' && *p <= '9') && *p != '.')
            p++;
        size_t ulen = (size_t)(p - u);
        if (ulen == 0)
            return te_err_set(err, TE_EINVAL, "duration \"%s\": missing unit (valid units: %s)",
                              excerpt(s, len, ex, sizeof(ex)), DURATION_UNITS);
        int64_t mult = unit_ns(u, ulen);
        if (mult == 0) {
            char ub[40];
            return te_err_set(err, TE_EINVAL,
                              "duration \"%s\": unknown unit \"%s\" (valid units: %s)",
                              excerpt(s, len, ex, sizeof(ex)), excerpt(u, ulen, ub, sizeof(ub)),
                              DURATION_UNITS);
        }
        if (whole > INT64_MAX / mult)
            goto too_large;
        int64_t part = whole * mult;
        /* frac < frac_div <= 1e9 and mult <= 6.048e14: split to avoid overflow. */
        part += (mult / frac_div) * frac + (mult % frac_div) * frac / frac_div;
        if (part < 0 || total > INT64_MAX - part)
            goto too_large;
        total += part;
    }
    *out_ns = total;
    return 0;
too_large:
    return te_err_set(err, TE_EINVAL, "duration \"%s\": too large (at most about 292 years)",
                      excerpt(s, len, ex, sizeof(ex)));
}

size_t te_duration_format(int64_t ns, char *buf, size_t cap)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"w", 604800000000000ull}, {"d", 86400000000000ull}, {"h", 3600000000000ull},
        {"m", 60000000000ull},     {"s", 1000000000ull},     {"ms", 1000000ull},
        {"us", 1000ull},           {"ns", 1ull},
    };
    char tmp[128];
    size_t n = 0;
    uint64_t v;
    if (cap == 0)
        return 0;
    if (ns < 0) {
        tmp[n++] = '-';
        v = (uint64_t)(-(ns + 1)) + 1;
    } else {
        v = (uint64_t)ns;
    }
    if (v == 0) {
        memcpy(tmp, "0s", 3);
        n = 2;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && v; i++) {
        uint64_t q = v / units[i].ns;
        if (q) {
            int w = snprintf(tmp + n, sizeof(tmp) - n, "%llu%s", (unsigned long long)q,
                             units[i].name);
            n += (size_t)w;
            v -= q * units[i].ns;
        }
    }
    tmp[n] = '\0';
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return n;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n digits at s[*i]; false when one is not a digit. */
static bool digits(const char *s, size_t len, size_t *i, int n, unsigned *out)
{
    unsigned v = 0;
    if (*i + (size_t)n > len)
        return false;
    for (int k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (unsigned)(c - '0');
    }
    *i += (size_t)n;
    *out = v;
    return true;
}

/* Parses date [+ time + offset]. date_only: accept "YYYY-MM-DD" as midnight UTC. */
static int parse_rfc3339(const char *s, size_t len, bool date_only_ok, int64_t *out_ns,
                         te_err_t *err)
{
    char ex[80];
    size_t i = 0;
    unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
    int64_t frac_ns = 0;
    int sign = 0;
    const char *what = "expected YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM)";

    if (!digits(s, len, &i, 4, &y) || i >= len || s[i++] != '-' || !digits(s, len, &i, 2, &mo) ||
        i >= len || s[i++] != '-' || !digits(s, len, &i, 2, &d))
        goto bad;
    if (mo < 1 || mo > 12) {
        return te_err_set(err, TE_EINVAL, "time \"%s\": month %02u is out of range (01-12)",
                          excerpt(s, len, ex, sizeof(ex)), mo);
    }
    if (d < 1 || d > days_in_month(y, mo)) {
        return te_err_set(err, TE_EINVAL,
                          "time \"%s\": day %02u is out of range for %04u-%02u (01-%02u)",
                          excerpt(s, len, ex, sizeof(ex)), d, y, mo, days_in_month(y, mo));
    }
    if (i == len && date_only_ok)
        goto done;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        goto bad;
    i++;
    if (!digits(s, len, &i, 2, &h) || i >= len || s[i++] != ':' || !digits(s, len, &i, 2, &mi) ||
        i >= len || s[i++] != ':' || !digits(s, len, &i, 2, &sec))
        goto bad;
    if (h > 23 || mi > 59 || sec > 60) {
        return te_err_set(err, TE_EINVAL,
                          "time \"%s\": %02u:%02u:%02u is not a valid time of day",
                          excerpt(s, len, ex, sizeof(ex)), h, mi, sec);
    }
    if (i < len && s[i] == '.') {
        int nd = 0;
        int64_t scale = TE_NS_PER_SEC;
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            /* Digits past nanoseconds are accepted and truncated. */
            if (nd < 9) {
                scale /= 10;
                frac_ns += (s[i] - '0') * scale;
            }
            nd++;
            i++;
        }
        if (nd == 0) {
            what = "expected digits after '.'";
            goto bad;
        }
    }
    if (i >= len) {
        what = "missing time zone (add Z or an offset such as +02:00)";
        goto bad;
    }
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        sign = s[i] == '+' ? 1 : -1;
        i++;
        if (!digits(s, len, &i, 2, &oh) || i >= len || s[i++] != ':' ||
            !digits(s, len, &i, 2, &om)) {
            what = "offset must be +HH:MM or -HH:MM";
            goto bad;
        }
        if (oh > 23 || om > 59) {
            what = "offset out of range";
            goto bad;
        }
    } else {
        what = "expected Z or an offset such as +02:00 after the time";
        goto bad;
    }
    if (i != len) {
        what = "unexpected text after the time zone";
        goto bad;
    }
done: {
    int64_t secs = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec;
    secs -= sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
    if (secs > MAX_SECS || secs < MIN_SECS)
        return te_err_set(err, TE_EINVAL,
                          "time \"%s\": out of range (supported: 1677-09-22 to 2262-04-10)",
                          excerpt(s, len, ex, sizeof(ex)));
    *out_ns = secs * TE_NS_PER_SEC + frac_ns;
    return 0;
}
bad:
    return te_err_set(err, TE_EINVAL, "time \"%s\": not RFC 3339: %s",
                      excerpt(s, len, ex, sizeof(ex)), what);
}

int te_time_parse_rfc3339(const char *s, size_t len, int64_t *out_ns, te_err_t *err)
{
    return parse_rfc3339(s, len, false, out_ns, err);
}

/* "[-]digits[.digits]" as Unix seconds, exactly. 1 = not a number, 0 ok, <0 error. */
static int parse_unix(const char *s, size_t len, int64_t *out_ns, te_err_t *err)
{
    char ex[80];
    size_t i = 0;
    int neg = 0;
    int64_t secs = 0, frac = 0, scale = TE_NS_PER_SEC;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    size_t start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (secs > MAX_SECS / 10 + 1)
            goto range;
        secs = secs * 10 + (s[i++] - '0');
    }
    if (i == start)
        return 1;
    if (i < len && s[i] == '.') {
        i++;
        size_t fs = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (scale > 1) {
                scale /= 10;
                frac += (s[i] - '0') * scale;
            }
            i++;
        }
        if (i == fs)
            return 1;
    }
    if (i != len)
        return 1;
    if (secs > MAX_SECS)
        goto range;
    *out_ns = neg ? -(secs * TE_NS_PER_SEC + frac) : secs * TE_NS_PER_SEC + frac;
    return 0;
range:
    return te_err_set(err, TE_EINVAL,
                      "time \"%s\": Unix seconds out of range (is it in milliseconds?)",
                      excerpt(s, len, ex, sizeof(ex)));
}

int te_time_parse(const char *s, int64_t *out_ns, te_err_t *err)
{
    char ex[80];
    if (!s || !*s)
        return te_err_set(err, TE_EINVAL,
                          "time is empty (use RFC 3339, e.g. 2026-11-20T10:00:00Z, or Unix "
                          "seconds)");
    size_t len = strlen(s);
    int rc = parse_unix(s, len, out_ns, err);
    if (rc <= 0)
        return rc;
    /* Not a number: RFC 3339 (a bare date means midnight UTC). */
    if (len >= 10 && s[4] == '-')
        return parse_rfc3339(s, len, true, out_ns, err);
    return te_err_set(err, TE_EINVAL,
                      "time \"%s\": expected RFC 3339 (e.g. 2026-11-20T10:00:00Z) or Unix seconds",
                      excerpt(s, len, ex, sizeof(ex)));
}

int te_time_parse_since(const char *s, int64_t now_ns, int64_t *out_ns, te_err_t *err)
{
    char ex[80];
    int64_t d;
    if (!s || !*s)
        return te_err_set(err, TE_EINVAL,
                          "time is empty (use a duration such as 24h, RFC 3339 or Unix seconds)");
    if (te_duration_parse(s, &d, NULL) == 0) {
        *out_ns = now_ns - d;
        return 0;
    }
    if (te_time_parse(s, out_ns, NULL) == 0)
        return 0;
    size_t len = strlen(s);
    /* Say which reading failed: a leading digit with a unit-like tail is a duration. */
    if (len >= 10 && s[4] == '-')
        return te_time_parse(s, out_ns, err);
    if (s[0] == '-')
        return te_err_set(err, TE_EINVAL,
                          "\"%s\": negative durations are not allowed (--since 24h means the "
                          "last 24 hours)",
                          excerpt(s, len, ex, sizeof(ex)));
    return te_err_set(err, TE_EINVAL,
                      "\"%s\": expected a duration (30s, 5m, 2h, 7d, 1w; units: %s), "
                      "RFC 3339 time or Unix seconds",
                      excerpt(s, len, ex, sizeof(ex)), DURATION_UNITS);
}

size_t te_time_format_rfc3339(int64_t ns, char *buf, size_t cap)
{
    char tmp[48];
    int64_t secs = ns / TE_NS_PER_SEC;
    int64_t sub = ns % TE_NS_PER_SEC;
    if (sub < 0) {
        sub += TE_NS_PER_SEC;
        secs -= 1;
    }
    int64_t days = secs / 86400;
    int64_t rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(tmp, sizeof(tmp), "%04lld-%02u-%02uT%02u:%02u:%02u", (long long)y, m, d,
                     (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
    if (sub != 0 && sub % TE_NS_PER_MS == 0)
        n += snprintf(tmp + n, sizeof(tmp) - (size_t)n, ".%03u", (unsigned)(sub / TE_NS_PER_MS));
    else if (sub != 0)
        n += snprintf(tmp + n, sizeof(tmp) - (size_t)n, ".%09u", (unsigned)sub);
    tmp[n++] = 'Z';
    tmp[n] = '\0';
    size_t len = (size_t)n;
    if (cap == 0)
        return 0;
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, tmp, len);
    buf[len] = '\0';
    return len;
}
