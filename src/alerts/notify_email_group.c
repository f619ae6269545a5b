/*
 * notify_email_group.c - the email for a notification group (see
 * notify_email_group.h): one message listing every alert of the group,
 * like Alertmanager's, instead of one email per alert.
 *
 * THREAD: any. The message is the single-alert email (notify_webhook.c
 * mail_message) made plural: the same headers, the same
 * multipart/alternative text + HTML parts and the same rows per alert, so
 * a reader (or a mail filter) finds the same fields in both. The subject
 * names what the group has in common (rule, group pairs) and the counts,
 * so it stays the same while the group does and sorts into one thread.
 * Values may hold anything a tag or a summary can: the subject goes
 * through te_mime_add_subject (controls become spaces, non-ASCII becomes
 * encoded words), the body is quoted-printable and, unlike the
 * single-alert email, every value is flattened onto one line so a
 * summary cannot fake rows or alerts of its own. Delivery (retries,
 * timeouts, rate limit) is the notifier's: this file only builds text.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/mime.h"
#include "alerts/notify_email_group.h"
#include "core/time.h"

/* Appends s with every control character (CR, LF, TAB, ...) as a space. */
static void add_flat(te_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        te_buf_add(b, c < 0x20 || c == 0x7f ? " " : s, 1);
    }
}

static bool is_resolved(const char *status)
{
    return strcmp(status, "resolved") == 0;
}

/* The pairs of a[0]'s group that every alert has with the same value,
 * "k=v, k2=v2", flattened, into b (nothing when none). */
static void add_common_pairs(te_buf_t *b, const te_alert_t *const *a, size_t count)
{
    size_t shown = 0;
    for (size_t k = 0; k < a[0]->ngroup; k++) {
        const char *key = a[0]->group_keys[k], *val = a[0]->group_values[k];
        bool common = true;
        for (size_t j = 1; j < count && common; j++) {
            bool found = false;
            for (size_t i = 0; i < a[j]->ngroup && !found; i++)
                found = strcmp(a[j]->group_keys[i], key) == 0 &&
                        strcmp(a[j]->group_values[i], val) == 0;
            common = found;
        }
        if (!common)
            continue;
        te_buf_adds(b, shown++ ? ", " : "");
        add_flat(b, key);
        te_buf_adds(b, "=");
        add_flat(b, val);
    }
}

/* "[FIRING:2, RESOLVED:1] RULE (pairs)", flattened, into b. */
static void add_title(te_buf_t *b, const te_alert_t *const *a, size_t count, size_t firing)
{
    te_buf_adds(b, "[");
    if (firing)
        te_buf_addf(b, "FIRING:%zu", firing);
    if (count - firing)
        te_buf_addf(b, "%sRESOLVED:%zu", firing ? ", " : "", count - firing);
    te_buf_adds(b, "] ");
    size_t rules = 0; /* distinct rules */
    for (size_t i = 0; i < count; i++) {
        const char *r = a[i]->rule ? a[i]->rule : "";
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(a[j]->rule ? a[j]->rule : "", r) == 0;
        rules += !seen;
    }
    if (rules == 1)
        add_flat(b, a[0]->rule ? a[0]->rule : "");
    else
        te_buf_addf(b, "%zu rules", rules);
    te_buf_t pairs = {0};
    add_common_pairs(&pairs, a, count);
    if (pairs.oom)
        b->oom = true;
    if (pairs.len)
        te_buf_addf(b, " (%s)", pairs.p);
    te_buf_free(&pairs);
}

/* One alert into the text and HTML bodies: a heading and its rows. */
static void add_alert(te_buf_t *text, te_buf_t *html, size_t no, const te_alert_t *a,
                      const char *status)
{
    te_buf_t vals[TE_MIME_ALERT_ROWS] = {{0}};
    const char *labels[TE_MIME_ALERT_ROWS];
    char st[16];
    te_mime_upper(status, st, sizeof(st));
    te_mime_alert_rows(a, status, vals, labels);
    te_buf_t head = {0};
    te_buf_addf(&head, "#%zu [%s] ", no, st);
    add_flat(&head, a->rule ? a->rule : "");
    te_buf_addf(&head, " (%s)", te_severity_name(a->severity));

    te_buf_addf(text, "%s\n", head.p ? head.p : "");
    te_buf_adds(html, "<h4>");
    te_mime_add_html(html, head.p);
    te_buf_adds(html, "</h4>\n<table>\n");
    for (int i = 0; i < TE_MIME_ALERT_ROWS; i++) {
        te_buf_t flat = {0};
        add_flat(&flat, vals[i].p);
        te_buf_addf(text, "%-10s %s\n", labels[i], flat.p ? flat.p : "");
        te_buf_adds(html, "<tr><th align=\"left\">");
        te_mime_add_html(html, labels[i]);
        te_buf_adds(html, "</th><td>");
        te_mime_add_html(html, flat.p);
        te_buf_adds(html, "</td></tr>\n");
        text->oom = text->oom || flat.oom || vals[i].oom;
        te_buf_free(&flat);
        te_buf_free(&vals[i]);
    }
    if (a->reason && is_resolved(status)) {
        te_buf_t flat = {0};
        add_flat(&flat, a->reason);
        te_buf_addf(text, "%-10s %s\n", "Reason", flat.p ? flat.p : "");
        te_buf_adds(html, "<tr><th align=\"left\">Reason</th><td>");
        te_mime_add_html(html, flat.p);
        te_buf_adds(html, "</td></tr>\n");
        text->oom = text->oom || flat.oom;
        te_buf_free(&flat);
    }
    te_buf_adds(text, "\n");
    te_buf_adds(html, "</table>\n");
    text->oom = text->oom || head.oom;
    te_buf_free(&head);
}

char *te_email_group_message(const char *from, const char *const *to,
                             const te_alert_t *const *a, const char *const *status,
                             size_t count)
{
    static unsigned counter;
    if (count == 0)
        return NULL;
    te_buf_t m = {0}, text = {0}, html = {0}, title = {0};
    char domain[256], date[64];
    int64_t now = te_time_now_ns();
    te_mime_date(now, date, sizeof(date));
    te_mime_domain(from, domain, sizeof(domain));
    size_t firing = 0;
    for (size_t i = 0; i < count; i++)
        firing += !is_resolved(status[i]);
    add_title(&title, a, count, firing);

    te_buf_addf(&m, "Date: %s\r\nFrom: %s\r\n", date, from);
    te_mime_add_to(&m, to);
    te_mime_add_subject(&m, title.p ? title.p : "");
    unsigned uniq = ++counter;
    te_buf_addf(&m, "Message-ID: <group.%s.%llx.%u@%s>\r\n", firing ? "firing" : "resolved",
                (unsigned long long)now, uniq, domain);
    te_buf_addf(&m, "X-TE-Alert-Count: %zu\r\n", count);
    te_buf_adds(&m, "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");
    char boundary[64]; /* "=_" never occurs in quoted-printable text */
    snprintf(boundary, sizeof(boundary), "=_te_g_%llx_%u", (unsigned long long)now, uniq);
    te_buf_addf(&m, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary);
    te_buf_adds(&m, "This is a MIME message.\r\n");

    /* both bodies: headline, counts, firing alerts, then resolved ones */
    te_buf_addf(&text, "%s\n\n%zu alerts: %zu firing, %zu resolved\n\n", title.p ? title.p : "",
                count, firing, count - firing);
    te_buf_adds(&html, "<!DOCTYPE html>\n<html><body>\n<h2>");
    te_mime_add_html(&html, title.p);
    te_buf_addf(&html, "</h2>\n<p>%zu alerts: %zu firing, %zu resolved</p>\n", count, firing,
                count - firing);
    size_t no = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t n = pass == 0 ? firing : count - firing;
        if (n == 0)
            continue;
        te_buf_addf(&text, "%s (%zu)\n\n", pass == 0 ? "Firing" : "Resolved", n);
        te_buf_addf(&html, "<h3>%s (%zu)</h3>\n", pass == 0 ? "Firing" : "Resolved", n);
        for (size_t i = 0; i < count; i++)
            if (is_resolved(status[i]) == (pass == 1))
                add_alert(&text, &html, ++no, a[i], status[i]);
    }
    te_buf_adds(&html, "</body></html>\n");

    te_buf_addf(&m, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n", boundary);
    te_mime_add_qp(&m, text.p ? text.p : "");
    te_buf_addf(&m, "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n", boundary);
    te_mime_add_qp(&m, html.p ? html.p : "");
    te_buf_addf(&m, "\r\n--%s--\r\n", boundary);

    bool oom = m.oom || text.oom || html.oom || title.oom;
    te_buf_free(&text);
    te_buf_free(&html);
    te_buf_free(&title);
    if (oom) {
        te_buf_free(&m);
        return NULL;
    }
    return m.p;
}
