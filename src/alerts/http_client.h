/*
 * http_client.h - outbound HTTP and SMTP on the libuv loop through
 * libcurl's multi interface (webhooks, Slack, email).
 *
 * THREAD: loop. curl_multi_socket_action is driven by one uv_poll_t per
 * socket curl opens and one uv_timer_t for curl's timeouts, so a slow or
 * silent receiver never blocks the loop. Each request has its own total
 * timeout. Results come back through a callback on the loop, never from
 * inside te_http_client_post.
 */
#ifndef TE_ALERTS_HTTP_CLIENT_H
#define TE_ALERTS_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"

typedef struct te_http_client te_http_client_t;

/* status: the HTTP status (0 when no answer came); error: NULL on an
 * answer (any status), else curl's message ("Operation timed out after
 * 200 milliseconds ...", "Couldn't connect to server", "cancelled"); body:
 * the answer body (NUL-terminated, may be empty), borrowed for the call. */
typedef void (*te_http_client_cb)(void *ud, long status, const char *error, const char *body,
                                  size_t body_len);

/* Makes a client on loop. Returns 0 and *out, or TE_ENOMEM/TE_EIO. */
int te_http_client_new(uv_loop_t *loop, te_http_client_t **out, te_err_t *err);

/* POSTs body (copied) to url with the given "Name: value" headers
 * (NULL-terminated, may be NULL), failing after timeout_ms in total.
 * Returns 0 (cb runs later, exactly once) or TE_ENOMEM/TE_EINVAL/
 * TE_ECLOSED (cb never runs). */
int te_http_client_post(te_http_client_t *c, const char *url, const char *const *headers,
                        const char *body, size_t len, int64_t timeout_ms, te_http_client_cb cb,
                        void *ud);

/* An SMTP delivery (the email notifier): url "smtp://host:port" (STARTTLS
 * when the server offers it, required with require_tls) or
 * "smtps://host:port" (TLS from the start). */
typedef struct te_mail {
    const char *url;
    const char *from;
    const char *const *to;   /* NULL-terminated, at least one */
    const char *username, *password; /* may be NULL */
    int require_tls;
} te_mail_t;

/* Sends message (a whole RFC 5322 message with CRLF line ends, copied)
 * through SMTP; libcurl dot-stuffs lines that start with '.'. Same
 * callback contract as te_http_client_post; status is the last SMTP reply
 * code (250 on success) and body the server's last error reply line
 * ("554 5.7.1 no thanks"; else its last line), also on an error ("DATA
 * failed: 554"). */
int te_http_client_mail(te_http_client_t *c, const te_mail_t *m, const char *message, size_t len,
                        int64_t timeout_ms, te_http_client_cb cb, void *ud);

/* Cancels every request (their callbacks run now with error "cancelled"),
 * closes the handles and frees the client once libuv has closed them (run
 * the loop). NULL is a no-op. */
void te_http_client_close(te_http_client_t *c);

#endif
