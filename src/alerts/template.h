/*
 * template.h - body templates of the webhook and slack notifiers
 * (`template` key): the text is sent as the request body with each
 * {{NAME}} or {{NAME|FILTER}} replaced.
 *
 * THREAD: any.
 *
 * Names: status ("firing" | "resolved" | "flapping"), id, rule, severity,
 * fingerprint, summary, value, starts_at, ends_at (RFC 3339, "" while
 * firing), count (alerts in the message: 1, or the group's size), payload
 * (the SPEC section 7 JSON, or the group payload, inserted as is),
 * labels.NAME, group.NAME or a bare group tag NAME. A name the alert does
 * not have renders as "" (one notifier serves many rules).
 * Filters: json (the value as a quoted JSON string, or null when empty:
 * use it inside JSON bodies), pct and round (value only, as in summaries),
 * upper. So a Slack-like body is
 *   {"text": {{summary|json}}, "status": {{status|json}}}
 */
#ifndef TE_ALERTS_TEMPLATE_H
#define TE_ALERTS_TEMPLATE_H

#include <stddef.h>

#include "core/err.h"
#include "rules/alert.h"

/* Checks tmpl's syntax (closed braces, known filters). 0 or TE_EINVAL
 * with a message naming the offset or filter. */
int te_template_check(const char *tmpl, te_err_t *err);

/* Renders tmpl for alert a with status; payload is what {{payload}}
 * inserts (NULL: te_alert_to_json(a, status)); count fills {{count}}.
 * Returns malloc'd text or NULL (TE_EINVAL as te_template_check,
 * TE_ENOMEM). */
char *te_template_render(const char *tmpl, const te_alert_t *a, const char *status,
                         const char *payload, size_t count, te_err_t *err);

#endif
