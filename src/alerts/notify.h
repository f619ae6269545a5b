/* notify.h - notifiers: deliver an alert (SPEC §7 JSON) to a destination.
 * THREAD: loop thread only. send() is asynchronous: done_cb runs later on
 * the loop (never inside send) with 0 or a negative TE_E* and a message.
 * Implemented types so far: file, webhook, slack, email, exec. Others are rejected by
 * te_notifier_new. */
#ifndef TE_ALERTS_NOTIFY_H
#define TE_ALERTS_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include "core/err.h"
#include "config/config.h"
#include "rules/alert.h"

typedef void (*te_notify_done_cb)(int rc, const char *msg, void *ud);

/* A scheduled report that was written (engine_reports.c), for
 * send_report. Everything is borrowed for the duration of the call. */
typedef struct te_report_note {
    const char *name;          /* the report (te.report name) */
    const char *title;         /* its title (the name when none) */
    const char *path;          /* the file written: DATA/reports/NAME-YYYYmmddTHHMM.html */
    const char *url;           /* GET link that renders the same range as HTML, or NULL
                                * (HTTP off):
                                * http://ADDR/v1/reports/NAME?since=&until=&format=html */
    const char *html;          /* the report itself */
    size_t html_len;
    int64_t generated_at_ns;   /* the schedule instant the report was run for */
} te_report_note_t;

/* The JSON every send_report implementation that sends JSON uses:
 * {"version":1,"kind":"report","report":NAME,"title":T,"file":PATH,
 *  "url":URL or null,"generated_at":RFC3339}. Malloc'd (caller frees) or
 * NULL on ENOMEM. */
char *te_report_note_json(const te_report_note_t *r);

typedef struct te_notifier te_notifier_t;
struct te_notifier {
    char *name;
    char *type;
    uv_loop_t *loop;
    int (*send)(te_notifier_t *n, const te_alert_t *a, const char *status,
                te_notify_done_cb done, void *ud);
    /* Optional (NULL: the dispatcher sends a group alert by alert): one
     * message for n alerts of a notification group, status[i] for a[i]. */
    int (*send_group)(te_notifier_t *n, const te_alert_t *const *a, const char *const *status,
                      size_t count, te_notify_done_cb done, void *ud);
    /* Optional (NULL: the type cannot deliver reports): delivers a written
     * report. webhook POSTs te_report_note_json, slack a message with the
     * title and the link, email a multipart/mixed message with the HTML as
     * an attachment, exec the JSON on stdin, file the JSON as one line.
     * Same contract as send: 0 and done later, or an error and no done. */
    int (*send_report)(te_notifier_t *n, const te_report_note_t *r, te_notify_done_cb done,
                       void *ud);
    void (*free)(te_notifier_t *n);
    void *impl;
};

/* Build a notifier from its config block (cfg->json is validated). Returns
 * NULL and fills err (naming the notifier) on a bad block or unknown type. */
te_notifier_t *te_notifier_new(uv_loop_t *loop, const te_config_notifier_t *cfg,
                               te_err_t *err);

/* Create a "file" notifier: keys path (required), fsync (bool, default false).
 * Used by te_notifier_new. */
te_notifier_t *te_notifier_file_new(uv_loop_t *loop, const char *name,
                                    const char *json, te_err_t *err);

/* Create a "webhook" (SPEC 7 payload) or, with slack, a "slack" notifier:
 * keys url (required), timeout (default 5s per attempt), retries (default
 * 3, exponential backoff from 0.5 s), headers (webhook), rate_limit
 * ("30/m", "2/s", "100/h"). Used by te_notifier_new. */
te_notifier_t *te_notifier_webhook_new(uv_loop_t *loop, const char *name, const char *json,
                                       bool slack, te_err_t *err);

/* Create an "email" notifier (SMTP through libcurl): keys smtp (required,
 * "smtp://host:port" or "smtps://host:port" = TLS from the start), from
 * (required), to (an address or a list, required), username, password,
 * tls ("try" = STARTTLS when offered, the default; "always" = refuse to
 * send without it), timeout (default 10s per attempt), retries (default 3)
 * and rate_limit as the webhook. The message is multipart/alternative
 * (text and HTML); a group (send_group) is one message listing its alerts
 * (alerts/notify_email_group.h). Used by te_notifier_new. */
te_notifier_t *te_notifier_email_new(uv_loop_t *loop, const char *name, const char *json,
                                     te_err_t *err);

/* Create an "exec" notifier: command (argv list or one path; no shell),
 * timeout (default 10s, then SIGKILL). The alert JSON goes to the
 * command's stdin; exit status 0 is a delivery. */
te_notifier_t *te_notifier_exec_new(uv_loop_t *loop, const char *name, const char *json,
                                    te_err_t *err);

/* The payload of a notification group (webhook and exec bodies):
 * {"version":1,"status":S,"count":N,"alerts":[P1,...]} where each Pi is
 * the SPEC section 7 payload of a[i] with status[i], and S is "firing"
 * when any of them fires (or flaps), else "resolved". Malloc'd text
 * (caller frees) or NULL on ENOMEM. */
char *te_alert_group_json(const te_alert_t *const *a, const char *const *status, size_t count);

/* Free a notifier (NULL ok). */
void te_notifier_free(te_notifier_t *n);

#endif
