/*
 * policy.h - who hears about an alert transition: silences, inhibition,
 * acknowledgements and flap detection (SPEC section 7, issue 4).
 *
 * THREAD: one thread (the loop in serve; the test's in unit tests). No
 * clock reads: every call takes now_ns, so a virtual clock drives it.
 *
 * The one idea: alert state is the rules' business and is never changed
 * here; the policy only decides, per transition, whether a notification
 * goes out and with which status, or why it is held back. It keeps one
 * entry per fingerprint (the rule's group) with a copy of the alert, its
 * acknowledgement, whether this episode's firing was notified, and the
 * times of its recent state changes.
 *
 * Decisions, in order, for FIRING, REPEAT and RESOLVED transitions:
 *   1. flap detection: FIRING and RESOLVED are state changes; more than
 *      flap_changes of them within flap_window marks the alert flapping:
 *      one notification with status "flapping", then nothing until it
 *      calms down (at most flap_changes / 2 changes in the window), when
 *      its current state is notified if it differs from the last one sent.
 *   2. an active silence matching the alert holds it ("silenced by ID");
 *   3. an inhibit rule holds it while a firing alert matching the rule's
 *      source, with equal values of the `equal` tags, exists ("inhibited
 *      by RULE ID");
 *   4. an acknowledged alert's repeats are held ("acknowledged"); its
 *      resolution is notified;
 *   5. a resolution whose firing was never notified (held throughout) is
 *      held too ("never notified as firing").
 * te_policy_recheck notifies, as "firing", firing alerts that were held
 * and are no longer held (a silence ended, an inhibiting alert resolved).
 */
#ifndef TE_ALERTS_POLICY_H
#define TE_ALERTS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/silence.h"
#include "core/err.h"
#include "rules/alert.h"

typedef struct te_inhibit {
    te_matcher_t *src, *dst; /* owned by the caller of te_policy_new (copied) */
    size_t nsrc, ndst;
    char **equal;
    size_t nequal;
} te_inhibit_t;

typedef struct te_policy_opts {
    int flap_changes;       /* 0: flap detection off */
    int64_t flap_window_ns;
    const te_inhibit_t *inhibit;
    size_t ninhibit;
} te_policy_opts_t;

typedef struct te_verdict {
    bool notify;       /* a notification is due now, with status */
    bool held;         /* a notification was due but is held back: reason */
    const char *status; /* "firing" | "resolved" | "flapping" (static) */
    char reason[128];
} te_verdict_t;

typedef struct te_policy te_policy_t;

/* Creates a policy (opts copied; NULL: defaults, flap detection off).
 * NULL on ENOMEM. */
te_policy_t *te_policy_new(const te_policy_opts_t *opts);
void te_policy_free(te_policy_t *p);

/* Decides for transition t of a at now (see the top). Records a's state,
 * and sets a->flapping and a->acked_* from what the policy knows, so that
 * the caller saves them. Cannot fail (on ENOMEM it decides without
 * keeping history: notify). */
te_verdict_t te_policy_decide(te_policy_t *p, te_alert_t *a, te_alert_transition_t t,
                              int64_t now_ns);

/* Registers an alert restored at start-up (its firing is taken as
 * notified). 0 or TE_ENOMEM. */
int te_policy_restore(te_policy_t *p, const te_alert_t *a);

/* Acknowledges the active episode id. Returns 0, TE_ENOTFOUND (no active
 * alert has that id) or TE_ENOMEM. *out (may be NULL) gets a borrowed
 * pointer to the policy's copy of the alert, valid until the next call. */
int te_policy_ack(te_policy_t *p, const char *id, const char *by, const char *comment,
                  int64_t now_ns, const te_alert_t **out);

/* Adds (or replaces, same id) a silence (copied). 0 or TE_ENOMEM. */
int te_policy_silence_add(te_policy_t *p, const te_silence_t *s);

/* Ends silence id at now. Returns 0 or TE_ENOTFOUND. */
int te_policy_silence_end(te_policy_t *p, const char *id, int64_t now_ns);

/* The id of the first active silence matching a, or NULL. */
const char *te_policy_silenced_by(const te_policy_t *p, const te_alert_t *a, int64_t now_ns);

/* Calls cb for each alert due a notification now that was held: firing
 * alerts no longer silenced or inhibited and never notified ("firing"),
 * and alerts that stopped flapping (their current state). Forgets
 * resolved entries whose flap window has passed and expired silences.
 * Returns the number of notifications. */
typedef void (*te_policy_cb)(void *ud, te_alert_t *a, const char *status);
size_t te_policy_recheck(te_policy_t *p, int64_t now_ns, te_policy_cb cb, void *ud);

/* Number of alerts the policy tracks (active plus recently resolved). */
size_t te_policy_size(const te_policy_t *p);

#endif
