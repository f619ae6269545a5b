/* notify_email_group.h - the email for a notification group (one message
 * listing every alert of the group, as Alertmanager sends).
 * THREAD: any. */
#ifndef TE_ALERTS_NOTIFY_EMAIL_GROUP_H
#define TE_ALERTS_NOTIFY_EMAIL_GROUP_H

#include <stddef.h>

#include "rules/alert.h"

/* The whole RFC 5322 message for count alerts (a[i] with status[i]) from
 * `from` to the NULL-terminated list `to` (both checked by the notifier:
 * no control characters):
 *
 *   Subject: [FIRING:2, RESOLVED:1] RULE (k=v, k2=v2)
 *
 * with the counts of firing (any status but "resolved", so "flapping"
 * counts as firing) and resolved alerts, only the non-zero ones; RULE is
 * the rule when all alerts share it, else "N rules"; the parentheses hold
 * the group pairs every alert has with the same value (left out when
 * none). Then multipart/alternative: a text/plain part (a headline, the
 * counts, then the firing alerts and then the resolved ones, each as the
 * rows of the single-alert email, values on one line) and a text/html
 * part with the same content (every value escaped), both UTF-8
 * quoted-printable. Headers X-TE-Alert-Count: N and a Message-ID
 * <group.STATUS.HEX.N@DOMAIN>. Malloc'd text (caller frees) or NULL on
 * ENOMEM. count should be at least 1 (the dispatcher sends a group of one
 * as a single-alert email). */
char *te_email_group_message(const char *from, const char *const *to,
                             const te_alert_t *const *a, const char *const *status,
                             size_t count);

#endif
