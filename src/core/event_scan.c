/*
 * event_scan.c - byte-level checks on raw event text that cJSON cannot do.
 *
 * THREAD: any. cJSON neither validates UTF-8 nor keeps a string past a
 * `\u0000` escape (it would silently cut it), and it accepts raw NUL bytes
 * as the end of input. So before parsing, one pass over the raw text looks
 * for NUL bytes (memchr), `\u0000` escapes (memchr for backslashes) and the
 * first invalid UTF-8 byte (eight ASCII bytes per step). These library
 * scans are what keeps the check at a few tens of ns for a typical event.
 */
#include <stdint.h>
#include <string.h>

#include "event_internal.h"
#include "json.h"

int te_event_prescan(const char *json, size_t len, size_t *bad_utf8_at, te_err_t *err)
{
    const unsigned char *s = (const unsigned char *)json;
    const char *nul = memchr(json, '\0', len);
    if (nul)
        return te_err_set(err, TE_EINVAL, "NUL byte at byte %zu: not allowed in events",
                          (size_t)(nul - json));
    for (const char *p = memchr(json, '\\', len); p; ) {
        size_t i = (size_t)(p - json);
        if (i + 5 < len && p[1] == 'u' && p[2] == '0' && p[3] == '0' && p[4] == '0' && p[5] == '0')
            return te_err_set(err, TE_EINVAL,
                              "\\u0000 (NUL) escape at byte %zu: not allowed in events", i);
        /* Skip the escaped character: "\\u0000" is a backslash, then text. */
        if (i + 2 >= len)
            break;
        p = memchr(p + 2, '\\', len - i - 2);
    }
    *bad_utf8_at = SIZE_MAX;
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & UINT64_C(0x8080808080808080))) {
                i += 8;
                continue;
            }
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = te_utf8_seq_len(s + i, len - i);
        if (n == 0) {
            *bad_utf8_at = i;
            break;
        }
        i += n;
    }
    return 0;
}

size_t te_event_nesting(const char *json, size_t len)
{
    size_t depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}
