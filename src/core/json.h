/*
 * json.h - small JSON text helpers shared by event.c and result.c: string
 * escaping, shortest round-trip numbers, strict UTF-8 checks and safe
 * excerpts of user text for error messages.
 *
 * THREAD: any. Pure functions, no allocation.
 */
#ifndef TE_CORE_JSON_H
#define TE_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Room te_json_number needs (sign, 17 digits, point, exponent, NUL). */
#define TE_JSON_NUM_MAX 32

/* Length of s (len bytes) once escaped as JSON string content (no quotes):
 * `"` and `\` get a backslash, control bytes become \n, \t, ... or \u00XX;
 * other bytes (UTF-8 included) are kept. Cannot fail. */
size_t te_json_escaped_len(const char *s, size_t len);

/* Writes s escaped as above (exactly te_json_escaped_len bytes, no quotes,
 * no NUL) at dst and returns the end. Cannot fail. */
char *te_json_escape(char *dst, const char *s, size_t len);

/* Formats a finite double as the shortest text that reads back as the same
 * double ("%.15g", else "%.16g", else "%.17g"); integral values below 2^53
 * print as integers ("3", not "3.0"). Non-finite values print "null".
 * buf needs TE_JSON_NUM_MAX bytes. Returns the length. */
size_t te_json_number(double v, char *buf);

/* Length of the valid UTF-8 sequence starting s[0] (1-4), or 0 when it is
 * not valid (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
 * avail > 0 is the number of readable bytes. */
size_t te_utf8_seq_len(const unsigned char *s, size_t avail);

/* Offset of the first byte that is not valid UTF-8, or len when all is. */
size_t te_utf8_check(const char *s, size_t len);

/* Copies at most cap-1 bytes of user text into buf for an error message:
 * whole UTF-8 characters only, control and invalid bytes as '?', "..." when
 * cut. Returns buf. cap must be at least 8. */
const char *te_json_excerpt(const char *s, size_t len, char *buf, size_t cap);

/* Walks the elements of a JSON array text without parsing them, so that a
 * request body holding an array can hand each element's own bytes to
 * te_event_parse (exact size limit, `\u0000` and UTF-8 checks per event).
 * Call with *pos = 0. Returns 1 and sets *start and *elen to the next
 * element (surrounding blanks trimmed), 0 after the closing ']' (only
 * blanks may follow; 0 again on later calls), or -1 when the text is not an
 * array or its structure is broken (an empty element, a missing comma,
 * unbalanced brackets). Elements
 * themselves are not validated. Cannot fail otherwise. */
int te_json_array_next(const char *s, size_t len, size_t *pos, size_t *start, size_t *elen);

#endif
