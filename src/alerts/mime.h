/* mime.h - the pieces every alert email is built from (RFC 5322 / MIME):
 * the Subject header (RFC 2047 encoded words when not plain ASCII),
 * quoted-printable and base64 bodies, HTML escaping, the Date header, the
 * domain for Message-IDs and the rows that describe one alert.
 * notify_webhook.c builds the single-alert and report messages from them,
 * notify_email_group.c the message for a notification group, so both look
 * and encode alike.
 * THREAD: any. Every function appends to a te_buf_t and never fails
 * loudly: on ENOMEM the buffer's oom is set (core/buf.h). */
#ifndef TE_ALERTS_MIME_H
#define TE_ALERTS_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "rules/alert.h"

/* Appends n bytes of s as base64 (no line breaks; the caller cuts lines:
 * 57 bytes make 76 characters). */
void te_mime_add_b64(te_buf_t *b, const unsigned char *s, size_t n);

/* Appends "Subject: s\r\n": as is when printable ASCII that fits a line,
 * else RFC 2047 encoded words of at most 75 characters, one per folded
 * line, never splitting a UTF-8 sequence. Control characters (CR, LF, ...)
 * become spaces, so no value can start a header of its own. */
void te_mime_add_subject(te_buf_t *b, const char *subject);

/* Appends text (lines end in "\n" or "\r\n") as quoted-printable (RFC 2045
 * 6.7): CRLF hard breaks, soft breaks keep every line within 76
 * characters; '=', non-ASCII, controls and a space before a line end are
 * encoded. '=' being encoded, a boundary that starts with "=_" can never
 * occur in the encoded text. */
void te_mime_add_qp(te_buf_t *b, const char *text);

/* Appends s (NULL: nothing) with & < > " ' escaped for HTML. */
void te_mime_add_html(te_buf_t *b, const char *s);

/* now_ns as an RFC 5322 date in UTC ("Mon, 23 Nov 2026 15:37:11 +0000"),
 * independent of the locale. */
void te_mime_date(int64_t now_ns, char *out, size_t cap);

/* The domain of the address in from ("Name <a@b.org>" or "a@b.org"), only
 * letters, digits, '.' and '-', for Message-IDs; "telemetry-engine.invalid"
 * when there is none. */
void te_mime_domain(const char *from, char *out, size_t cap);

/* Appends "To: a,\r\n b\r\n" for the NULL-terminated list to. */
void te_mime_add_to(te_buf_t *b, const char *const *to);

/* status upper-cased ("firing" -> "FIRING") into out. */
void te_mime_upper(const char *status, char *out, size_t cap);

/* The fields an alert email shows, as (label, value) rows: Status, Rule,
 * Severity, Group, Labels, Value, Summary, Starts at, Ends at, Alert id.
 * vals must be zeroed buffers; the caller frees them. */
#define TE_MIME_ALERT_ROWS 10
void te_mime_alert_rows(const te_alert_t *a, const char *status,
                        te_buf_t vals[TE_MIME_ALERT_ROWS],
                        const char *labels[TE_MIME_ALERT_ROWS]);

#endif
