/*
 * notify_webhook.c - the webhook, slack and email notifiers (SPEC section 7).
 *
 * THREAD: loop. All go through the curl-multi client (alerts/http_client.h):
 * webhook POSTs the stable SPEC 7 payload, slack an incoming-webhook
 * message with blocks and a colour by severity, email sends over SMTP a
 * multipart/alternative message (text and HTML, quoted-printable, every
 * value HTML-escaped in the HTML part; the subject an RFC 2047 encoded word
 * when it is not plain ASCII). A delivery that fails (no answer, timeout,
 * a non-2xx status, an SMTP error reply) is retried `retries` times
 * (default 3) after 0.5 s, 1 s, 2 s, ... ; `timeout` (default 5s, email
 * 10s) bounds each attempt; send_report delivers a scheduled report
 * (webhook: the report JSON, slack: title and link, email: multipart/mixed
 * with the HTML as a base64 attachment); send_group delivers a
 * notification group as one message (webhook: te_alert_group_json, slack:
 * one message, email: notify_email_group.c), through the same attempts;
 * the MIME pieces of the emails live in mime.c; `rate_limit` ("30/m", "2/s",
 * "100/h", or a bare number per minute) refuses sends past the rate with TE_EFULL so the
 * caller can retry later.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alerts/http_client.h"
#include "alerts/mime.h"
#include "alerts/notify_email_group.h"
#include "alerts/notify.h"
#include "alerts/template.h"
#include "core/buf.h"
#include "core/time.h"

#define MAX_HEADERS 32
#define MAIL_ROWS TE_MIME_ALERT_ROWS

typedef struct hook_impl {
    te_http_client_t *client;
    char *url;
    int64_t timeout_ms;
    int retries;
    bool slack;
    bool email;                     /* SMTP instead of HTTP (url is smtp[s]://) */
    char *from, *username, *password;
    bool require_tls;
    char *headers[MAX_HEADERS + 2]; /* HTTP: "Name: value"; email: recipients; NULL-terminated */
    double rate_per_s;              /* 0: no limit */
    double tokens;                  /* token bucket */
    int64_t refill_ns;
    struct attempt *pending;        /* deliveries in progress */
    char *tmpl;                     /* body template (webhook, slack) or NULL */
} hook_impl_t;

typedef struct attempt {
    te_notifier_t *n;
    char *body;
    size_t len;
    int tries;
    uv_timer_t backoff;
    bool waiting;                   /* between attempts (backoff armed) */
    te_notify_done_cb done;
    void *ud;
    struct attempt *next;
} attempt_t;

static void unlink_attempt(hook_impl_t *h, attempt_t *at)
{
    for (attempt_t **p = &h->pending; *p; p = &(*p)->next)
        if (*p == at) {
            *p = at->next;
            return;
        }
}

static void free_attempt(uv_handle_t *handle)
{
    attempt_t *at = handle->data;
    free(at->body);
    free(at);
}

static void finish(attempt_t *at, int rc, const char *msg)
{
    hook_impl_t *h = at->n->impl;
    unlink_attempt(h, at);
    at->done(rc, msg, at->ud);
    uv_close((uv_handle_t *)&at->backoff, free_attempt);
}

static void post(attempt_t *at);

static void on_backoff(uv_timer_t *t)
{
    attempt_t *at = t->data;
    at->waiting = false;
    post(at);
}

static void on_answer(void *ud, long status, const char *error, const char *body, size_t len)
{
    attempt_t *at = ud;
    hook_impl_t *h = at->n->impl;
    char msg[512];
    if (!error && (h->email || (status >= 200 && status < 300))) {
        finish(at, 0, NULL);
        return;
    }
    if (error && strcmp(error, "cancelled") == 0) {
        snprintf(msg, sizeof(msg), "notifier \"%s\": cancelled (engine stopping)", at->n->name);
        finish(at, TE_ECLOSED, msg);
        return;
    }
    if (error && h->email && len > 0)
        snprintf(msg, sizeof(msg), "notifier \"%s\": %s: %s (server said \"%.200s\")",
                 at->n->name, h->url, error, body);
    else if (error)
        snprintf(msg, sizeof(msg), "notifier \"%s\": %s: %s", at->n->name, h->url, error);
    else
        snprintf(msg, sizeof(msg), "notifier \"%s\": %s answered HTTP %ld: %.200s", at->n->name,
                 h->url, status, body);
    /* 4xx but 408/429 will not get better by retrying */
    bool retryable = error || status >= 500 || status == 408 || status == 429;
    if (!retryable || at->tries > h->retries) {
        char full[600];
        snprintf(full, sizeof(full), "%s (after %d attempt%s)", msg, at->tries,
                 at->tries == 1 ? "" : "s");
        finish(at, TE_EIO, full);
        return;
    }
    uint64_t delay_ms = 500u << (at->tries - 1 < 6 ? at->tries - 1 : 6);
    at->waiting = true;
    uv_timer_start(&at->backoff, on_backoff, delay_ms, 0);
}

static void post(attempt_t *at)
{
    hook_impl_t *h = at->n->impl;
    at->tries++;
    int rc;
    if (h->email) {
        te_mail_t m = {.url = h->url, .from = h->from, .to = (const char *const *)h->headers,
                       .username = h->username, .password = h->password,
                       .require_tls = h->require_tls};
        rc = te_http_client_mail(h->client, &m, at->body, at->len, h->timeout_ms, on_answer, at);
    } else {
        rc = te_http_client_post(h->client, h->url, (const char *const *)h->headers, at->body,
                                 at->len, h->timeout_ms, on_answer, at);
    }
    if (rc < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "notifier \"%s\": cannot start a request: %s", at->n->name,
                 te_strerror(rc));
        finish(at, rc, msg);
    }
}

static const char *colour(const te_alert_t *a, const char *status)
{
    if (status && strcmp(status, "resolved") == 0)
        return "#2eb67d";
    switch (a->severity) {
    case TE_SEV_CRITICAL:
        return "#d00000";
    case TE_SEV_WARNING:
        return "#e8a200";
    default:
        return "#2b7bb9";
    }
}

/* Slack incoming-webhook message: a headline, the summary, the group. */
static char *slack_body(const te_alert_t *a, const char *status)
{
    char head[1280], group[512] = "";
    size_t n = 0;
    for (size_t i = 0; i < a->ngroup && n < sizeof(group); i++) {
        int k = snprintf(group + n, sizeof(group) - n, "%s%s=%s", i ? " " : "", a->group_keys[i],
                         a->group_values[i]);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    char st[16];
    snprintf(st, sizeof(st), "%s", status);
    for (char *p = st; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    snprintf(head, sizeof(head), "*[%s] %s* `%s`%s%s", st, te_severity_name(a->severity),
             a->rule ? a->rule : "", n ? " " : "", group);
    cJSON *root = cJSON_CreateObject();
    cJSON *att = cJSON_AddArrayToObject(root, "attachments");
    cJSON *one = cJSON_CreateObject();
    cJSON_AddItemToArray(att, one);
    cJSON_AddStringToObject(root, "text", a->summary ? a->summary : head);
    cJSON_AddStringToObject(one, "color", colour(a, status));
    cJSON *blocks = cJSON_AddArrayToObject(one, "blocks");
    const char *texts[2] = {head, a->summary};
    for (int i = 0; i < 2; i++) {
        if (!texts[i])
            continue;
        cJSON *b = cJSON_CreateObject();
        cJSON *t = cJSON_AddObjectToObject(b, "text");
        cJSON_AddStringToObject(b, "type", "section");
        cJSON_AddStringToObject(t, "type", "mrkdwn");
        cJSON_AddStringToObject(t, "text", texts[i]);
        cJSON_AddItemToArray(blocks, b);
    }
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

/* --- email: an RFC 5322 / MIME message ----------------------------------- */

/* The whole message: headers, then multipart/alternative with a text/plain
 * and a text/html part, both UTF-8 quoted-printable (so every line is short
 * and 7-bit; libcurl dot-stuffs lines that start with '.'). NULL on ENOMEM. */
static char *mail_message(const hook_impl_t *h, const te_alert_t *a, const char *status)
{
    static unsigned counter;
    te_buf_t m = {0}, text = {0}, html = {0}, subject = {0}, vals[MAIL_ROWS] = {{0}};
    const char *labels[MAIL_ROWS];
    char st[16], domain[256], date[64];
    int64_t now = te_time_now_ns();
    te_mime_date(now, date, sizeof(date));
    te_mime_upper(status, st, sizeof(st));
    te_mime_domain(h->from, domain, sizeof(domain));
    te_mime_alert_rows(a, status, vals, labels);

    /* Subject: [FIRING] rule severity: summary (the group when no summary) */
    te_buf_addf(&subject, "[%s] %s %s: ", st, a->rule ? a->rule : "",
                te_severity_name(a->severity));
    te_buf_adds(&subject, a->summary ? a->summary : vals[3].p);

    te_buf_addf(&m, "Date: %s\r\nFrom: %s\r\n", date, h->from);
    te_mime_add_to(&m, (const char *const *)h->headers);
    te_mime_add_subject(&m, subject.p ? subject.p : "");
    unsigned uniq = ++counter;
    te_buf_addf(&m, "Message-ID: <%s.%s.%llx.%u@%s>\r\n", a->id[0] ? a->id : a->fingerprint,
                status, (unsigned long long)now, uniq, domain);
    te_buf_addf(&m, "X-TE-Alert-Id: %s\r\nX-TE-Fingerprint: %s\r\n", a->id, a->fingerprint);
    te_buf_adds(&m, "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");
    /* "=_" never occurs in quoted-printable text, so the boundary cannot */
    char boundary[64];
    snprintf(boundary, sizeof(boundary), "=_te_%llx_%u", (unsigned long long)now, uniq);
    te_buf_addf(&m, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary);
    te_buf_adds(&m, "This is a MIME message.\r\n");

    /* text/plain */
    te_buf_addf(&text, "[%s] %s (%s)\n\n", st, a->rule ? a->rule : "",
                te_severity_name(a->severity));
    if (a->summary)
        te_buf_addf(&text, "%s\n\n", a->summary);
    for (int i = 0; i < MAIL_ROWS; i++)
        te_buf_addf(&text, "%-10s %s\n", labels[i], vals[i].p ? vals[i].p : "");
    if (a->reason && strcmp(status, "resolved") == 0)
        te_buf_addf(&text, "%-10s %s\n", "Reason", a->reason);
    te_buf_addf(&m, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n", boundary);
    te_mime_add_qp(&m, text.p ? text.p : "");

    /* text/html: every value escaped */
    te_buf_adds(&html, "<!DOCTYPE html>\n<html><body>\n<h2>[");
    te_mime_add_html(&html, st);
    te_buf_adds(&html, "] ");
    te_mime_add_html(&html, a->rule);
    te_buf_adds(&html, " (");
    te_mime_add_html(&html, te_severity_name(a->severity));
    te_buf_adds(&html, ")</h2>\n");
    if (a->summary) {
        te_buf_adds(&html, "<p>");
        te_mime_add_html(&html, a->summary);
        te_buf_adds(&html, "</p>\n");
    }
    te_buf_adds(&html, "<table>\n");
    for (int i = 0; i < MAIL_ROWS; i++) {
        te_buf_adds(&html, "<tr><th align=\"left\">");
        te_mime_add_html(&html, labels[i]);
        te_buf_adds(&html, "</th><td>");
        te_mime_add_html(&html, vals[i].p);
        te_buf_adds(&html, "</td></tr>\n");
    }
    if (a->reason && strcmp(status, "resolved") == 0) {
        te_buf_adds(&html, "<tr><th align=\"left\">Reason</th><td>");
        te_mime_add_html(&html, a->reason);
        te_buf_adds(&html, "</td></tr>\n");
    }
    te_buf_adds(&html, "</table>\n</body></html>\n");
    te_buf_addf(&m, "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n", boundary);
    te_mime_add_qp(&m, html.p ? html.p : "");
    te_buf_addf(&m, "\r\n--%s--\r\n", boundary);

    bool oom = m.oom || text.oom || html.oom || subject.oom;
    for (int i = 0; i < MAIL_ROWS; i++) {
        oom = oom || vals[i].oom;
        te_buf_free(&vals[i]);
    }
    te_buf_free(&text);
    te_buf_free(&html);
    te_buf_free(&subject);
    if (oom) {
        te_buf_free(&m);
        return NULL;
    }
    return m.p;
}

static bool take_token(hook_impl_t *h)
{
    if (h->rate_per_s <= 0)
        return true;
    int64_t now = te_time_mono_ns();
    double cap = h->rate_per_s * 60.0 < 1.0 ? 1.0 : h->rate_per_s * 60.0;
    h->tokens += (double)(now - h->refill_ns) / 1e9 * h->rate_per_s;
    if (h->tokens > cap)
        h->tokens = cap;
    h->refill_ns = now;
    if (h->tokens < 1.0)
        return false;
    h->tokens -= 1.0;
    return true;
}

static void on_refused(uv_timer_t *t)
{
    attempt_t *at = t->data;
    char msg[200];
    snprintf(msg, sizeof(msg), "notifier \"%s\": rate limited (rate_limit)", at->n->name);
    finish(at, TE_EFULL, msg);
}

/* Starts one delivery of body (taken). */
static int start_attempt(te_notifier_t *n, char *body, te_notify_done_cb done, void *ud)
{
    hook_impl_t *h = n->impl;
    if (!body)
        return TE_ENOMEM;
    attempt_t *at = calloc(1, sizeof(*at));
    if (!at) {
        free(body);
        return TE_ENOMEM;
    }
    at->body = body;
    at->n = n;
    at->len = strlen(at->body);
    at->done = done;
    at->ud = ud;
    uv_timer_init(n->loop, &at->backoff);
    at->backoff.data = at;
    at->next = h->pending;
    h->pending = at;
    if (!take_token(h)) { /* answer on the next turn, never inside send */
        at->waiting = true;
        uv_timer_start(&at->backoff, on_refused, 0, 0);
        return 0;
    }
    post(at);
    return 0;
}

static int hook_send(te_notifier_t *n, const te_alert_t *a, const char *status,
                     te_notify_done_cb done, void *ud)
{
    hook_impl_t *h = n->impl;
    char *body = h->email   ? mail_message(h, a, status)
                 : h->tmpl  ? te_template_render(h->tmpl, a, status, NULL, 1, NULL)
                 : h->slack ? slack_body(a, status)
                            : te_alert_to_json(a, status);
    return start_attempt(n, body, done, ud);
}

/* --- scheduled reports (send_report) ------------------------------------ */

char *te_report_note_json(const te_report_note_t *r)
{
    char t[40];
    te_time_format_rfc3339(r->generated_at_ns, t, sizeof(t));
    cJSON *root = cJSON_CreateObject();
    bool ok = root && cJSON_AddNumberToObject(root, "version", 1) &&
              cJSON_AddStringToObject(root, "kind", "report") &&
              cJSON_AddStringToObject(root, "report", r->name) &&
              cJSON_AddStringToObject(root, "title", r->title ? r->title : r->name) &&
              cJSON_AddStringToObject(root, "file", r->path ? r->path : "") &&
              (r->url ? cJSON_AddStringToObject(root, "url", r->url) != NULL
                      : cJSON_AddNullToObject(root, "url") != NULL) &&
              cJSON_AddStringToObject(root, "generated_at", t);
    char *out = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return out;
}

/* Slack: the title and the link (or the file when HTTP is off). */
static char *slack_report_body(const te_report_note_t *r)
{
    te_buf_t b = {0};
    te_buf_addf(&b, "*Report: %s* `%s`\n", r->title ? r->title : r->name, r->name);
    if (r->url)
        te_buf_addf(&b, "<%s|Open the report>", r->url);
    else
        te_buf_addf(&b, "Written to %s", r->path ? r->path : "");
    cJSON *root = cJSON_CreateObject();
    char *out = NULL;
    if (root && !b.oom && cJSON_AddStringToObject(root, "text", b.p))
        out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    te_buf_free(&b);
    return out;
}

/* Email: multipart/mixed, a short text part and the report as a base64
 * text/html attachment (lines of 76 characters). NULL on ENOMEM. */
static char *mail_report_message(const hook_impl_t *h, const te_report_note_t *r)
{
    static unsigned counter;
    te_buf_t m = {0}, text = {0}, subject = {0};
    char date[64], t[40], file[300];
    int64_t now = te_time_now_ns();
    te_mime_date(now, date, sizeof(date));
    te_time_format_rfc3339(r->generated_at_ns, t, sizeof(t));
    const char *base = r->path ? strrchr(r->path, '/') : NULL;
    snprintf(file, sizeof(file), "%s", base ? base + 1 : r->path ? r->path : "report.html");
    for (char *p = file; *p; p++) /* a header value: no quotes or controls */
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '_';
    const char *title = r->title ? r->title : r->name;
    te_buf_addf(&subject, "[REPORT] %s", title);
    te_buf_addf(&m, "Date: %s\r\nFrom: %s\r\n", date, h->from);
    te_mime_add_to(&m, (const char *const *)h->headers);
    te_mime_add_subject(&m, subject.p ? subject.p : "");
    unsigned uniq = ++counter;
    char boundary[64];
    snprintf(boundary, sizeof(boundary), "=_te_r_%llx_%u", (unsigned long long)now, uniq);
    te_buf_addf(&m, "X-TE-Report: %s\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-generated"
                    "\r\nContent-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
                    "This is a MIME message.\r\n",
                r->name, boundary);
    te_buf_addf(&text, "%s (report %s, generated at %s)\n\n", title, r->name, t);
    if (r->url)
        te_buf_addf(&text, "Open it: %s\n", r->url);
    te_buf_addf(&text, "File: %s\nThe report is attached as %s.\n", r->path ? r->path : "-",
                file);
    te_buf_addf(&m, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n", boundary);
    te_mime_add_qp(&m, text.p ? text.p : "");
    te_buf_addf(&m, "\r\n--%s\r\nContent-Type: text/html; charset=utf-8; name=\"%s\"\r\n"
                    "Content-Disposition: attachment; filename=\"%s\"\r\n"
                    "Content-Transfer-Encoding: base64\r\n\r\n",
                boundary, file, file);
    for (size_t i = 0; i < r->html_len; i += 57) { /* 57 bytes -> 76 characters */
        size_t k = r->html_len - i < 57 ? r->html_len - i : 57;
        te_mime_add_b64(&m, (const unsigned char *)r->html + i, k);
        te_buf_adds(&m, "\r\n");
    }
    te_buf_addf(&m, "\r\n--%s--\r\n", boundary);
    bool oom = m.oom || text.oom || subject.oom;
    te_buf_free(&text);
    te_buf_free(&subject);
    if (oom) {
        te_buf_free(&m);
        return NULL;
    }
    return m.p;
}

static int hook_send_report(te_notifier_t *n, const te_report_note_t *r, te_notify_done_cb done,
                            void *ud)
{
    hook_impl_t *h = n->impl;
    char *body = h->email   ? mail_report_message(h, r)
                 : h->slack ? slack_report_body(r)
                            : te_report_note_json(r);
    return start_attempt(n, body, done, ud);
}

/* Slack message for a notification group: a headline with the counts and
 * one line per alert (at most 40 lines; the rest are counted). */
static char *slack_group_body(const te_alert_t *const *a, const char *const *status, size_t n)
{
    size_t firing = 0;
    for (size_t i = 0; i < n; i++)
        firing += strcmp(status[i], "resolved") != 0;
    te_buf_t lines = {0};
    char head[256];
    snprintf(head, sizeof(head), "*%zu alerts* (%zu firing, %zu resolved) `%s`", n, firing,
             n - firing, a[0]->rule ? a[0]->rule : "");
    for (size_t i = 0; i < n && i < 40; i++) {
        char st[16];
        snprintf(st, sizeof(st), "%s", status[i]);
        for (char *p = st; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        te_buf_addf(&lines, "[%s] %s %s", st, te_severity_name(a[i]->severity),
                    a[i]->rule ? a[i]->rule : "");
        for (size_t k = 0; k < a[i]->ngroup; k++)
            te_buf_addf(&lines, " %s=%s", a[i]->group_keys[k], a[i]->group_values[k]);
        if (a[i]->summary)
            te_buf_addf(&lines, ": %s", a[i]->summary);
        te_buf_adds(&lines, "\n");
    }
    if (n > 40)
        te_buf_addf(&lines, "... and %zu more\n", n - 40);
    cJSON *root = cJSON_CreateObject();
    cJSON *att = cJSON_AddArrayToObject(root, "attachments");
    cJSON *one = cJSON_CreateObject();
    cJSON_AddItemToArray(att, one);
    cJSON_AddStringToObject(root, "text", head);
    cJSON_AddStringToObject(one, "color", colour(a[0], firing ? "firing" : "resolved"));
    cJSON *blocks = cJSON_AddArrayToObject(one, "blocks");
    const char *texts[2] = {head, lines.p ? lines.p : ""};
    for (int i = 0; i < 2; i++) {
        cJSON *b = cJSON_CreateObject();
        cJSON *t = cJSON_AddObjectToObject(b, "text");
        cJSON_AddStringToObject(b, "type", "section");
        cJSON_AddStringToObject(t, "type", "mrkdwn");
        cJSON_AddStringToObject(t, "text", texts[i]);
        cJSON_AddItemToArray(blocks, b);
    }
    char *out = lines.oom ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    te_buf_free(&lines);
    return out;
}

/* A group: one delivery (webhook: te_alert_group_json; slack: one
 * message; email: one message listing them, notify_email_group.h), with
 * the same retries and timeouts as a single alert. */
static int hook_send_group(te_notifier_t *n, const te_alert_t *const *a,
                           const char *const *status, size_t count, te_notify_done_cb done,
                           void *ud)
{
    hook_impl_t *h = n->impl;
    char *body = NULL;
    if (h->email) {
        body = te_email_group_message(h->from, (const char *const *)h->headers, a, status,
                                      count);
    } else if (h->tmpl) { /* the template sees the first alert, {{count}} and the group payload */
        char *group = te_alert_group_json(a, status, count);
        bool firing = false;
        for (size_t i = 0; i < count; i++)
            firing |= strcmp(status[i], "resolved") != 0;
        if (group)
            body = te_template_render(h->tmpl, a[0], firing ? "firing" : "resolved", group,
                                      count, NULL);
        free(group);
    } else {
        body = h->slack ? slack_group_body(a, status, count)
                        : te_alert_group_json(a, status, count);
    }
    return start_attempt(n, body, done, ud);
}

static void hook_free(te_notifier_t *n)
{
    hook_impl_t *h = n->impl;
    if (h) {
        /* attempts waiting for a retry end now; those in flight end through
         * the client's "cancelled" callbacks */
        attempt_t *at = h->pending;
        while (at) {
            attempt_t *next = at->next;
            if (at->waiting) {
                uv_timer_stop(&at->backoff);
                char msg[200];
                snprintf(msg, sizeof(msg), "notifier \"%s\": cancelled (engine stopping)",
                         n->name);
                finish(at, TE_ECLOSED, msg);
            }
            at = next;
        }
        te_http_client_close(h->client);
        free(h->url);
        free(h->tmpl);
        free(h->from);
        free(h->username);
        free(h->password);
        for (size_t i = 0; i < MAX_HEADERS + 2; i++) /* NULL gaps after ENOMEM */
            free(h->headers[i]);
        free(h);
    }
    free(n->name);
    free(n->type);
    free(n);
}

/* "30/m", "2/s", "100/h" or "30" (per minute) -> events per second. */
static int parse_rate(const char *s, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || end == s || v <= 0)
        return TE_EINVAL;
    double per = 60.0;
    if (*end == '/') {
        if (strcmp(end + 1, "s") == 0)
            per = 1.0;
        else if (strcmp(end + 1, "m") == 0)
            per = 60.0;
        else if (strcmp(end + 1, "h") == 0)
            per = 3600.0;
        else
            return TE_EINVAL;
    } else if (*end) {
        return TE_EINVAL;
    }
    *out = v / per;
    return 0;
}

/* A notifier of type with an empty impl (defaults set); NULL on ENOMEM. */
static te_notifier_t *hook_alloc(uv_loop_t *loop, const char *name, const char *type,
                                 te_err_t *err)
{
    te_notifier_t *n = calloc(1, sizeof(*n));
    hook_impl_t *h = calloc(1, sizeof(*h));
    if (!n || !h || !(n->name = strdup(name)) || !(n->type = strdup(type))) {
        if (n) {
            free(n->name);
            free(n->type);
        }
        free(n);
        free(h);
        te_err_set(err, TE_ENOMEM, "out of memory");
        return NULL;
    }
    n->impl = h;
    n->loop = loop;
    n->send = hook_send;
    n->send_group = hook_send_group;
    n->send_report = hook_send_report;
    n->free = hook_free;
    h->timeout_ms = 5000;
    h->retries = 3;
    return n;
}

/* timeout, retries and rate_limit, shared by every type here. */
static int common_keys(hook_impl_t *h, const cJSON *root, const char *name, te_err_t *err)
{
    const char *timeout = cJSON_GetStringValue(cJSON_GetObjectItem(root, "timeout"));
    int64_t ns = 0;
    if (timeout && (te_duration_parse(timeout, &ns, NULL) < 0 || ns <= 0))
        return te_err_set(err, TE_ECONFIG, "notifier \"%s\": bad timeout \"%s\"", name, timeout);
    if (timeout)
        h->timeout_ms = ns / TE_NS_PER_MS > 0 ? ns / TE_NS_PER_MS : 1;
    const cJSON *retries = cJSON_GetObjectItem(root, "retries");
    if (retries) {
        if (!cJSON_IsNumber(retries) || retries->valuedouble < 0 || retries->valuedouble > 100)
            return te_err_set(err, TE_ECONFIG, "notifier \"%s\": retries must be 0 to 100",
                              name);
        h->retries = (int)retries->valuedouble;
    }
    const char *rate = cJSON_GetStringValue(cJSON_GetObjectItem(root, "rate_limit"));
    if (rate && parse_rate(rate, &h->rate_per_s) < 0)
        return te_err_set(err, TE_ECONFIG,
                          "notifier \"%s\": bad rate_limit \"%s\" (like \"30/m\", \"2/s\", "
                          "\"100/h\")",
                          name, rate);
    h->tokens = h->rate_per_s * 60.0 < 1.0 ? 1.0 : h->rate_per_s * 60.0;
    h->refill_ns = te_time_mono_ns();
    const char *tmpl = cJSON_GetStringValue(cJSON_GetObjectItem(root, "template"));
    if (tmpl && !h->email) {
        te_err_t e2 = {0};
        if (te_template_check(tmpl, &e2) < 0)
            return te_err_set(err, TE_ECONFIG, "notifier \"%s\": %s", name, e2.msg);
        if (!(h->tmpl = strdup(tmpl)))
            return te_err_set(err, TE_ENOMEM, "out of memory");
    }
    return 0;
}

te_notifier_t *te_notifier_webhook_new(uv_loop_t *loop, const char *name, const char *json,
                                       bool slack, te_err_t *err)
{
    te_notifier_t *n = hook_alloc(loop, name, slack ? "slack" : "webhook", err);
    cJSON *root = cJSON_Parse(json ? json : "");
    size_t nh = 0;
    if (!n)
        goto fail;
    hook_impl_t *h = n->impl;
    h->slack = slack;
    if (!cJSON_IsObject(root)) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": block is not a JSON object", name);
        goto fail;
    }
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(root, "url"));
    if (!url || strncmp(url, "http", 4) != 0) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": %s needs a \"url\" (http:// or https://)",
                   name, n->type);
        goto fail;
    }
    if (!(h->url = strdup(url))) {
        te_err_set(err, TE_ENOMEM, "out of memory");
        goto fail;
    }
    if (common_keys(h, root, name, err) < 0)
        goto fail;
    h->headers[nh++] = strdup("Content-Type: application/json");
    const cJSON *hdr;
    cJSON_ArrayForEach(hdr, cJSON_GetObjectItem(root, "headers"))
    {
        const char *v = cJSON_GetStringValue(hdr);
        if (!v || nh == MAX_HEADERS) {
            te_err_set(err, TE_ECONFIG, "notifier \"%s\": headers must map names to strings "
                                        "(at most %d)", name, MAX_HEADERS);
            goto fail;
        }
        size_t len = strlen(hdr->string) + strlen(v) + 3;
        h->headers[nh] = malloc(len);
        if (h->headers[nh])
            snprintf(h->headers[nh], len, "%s: %s", hdr->string, v);
        nh++;
    }
    for (size_t i = 0; i < nh; i++)
        if (!h->headers[i]) {
            te_err_set(err, TE_ENOMEM, "out of memory");
            goto fail;
        }
    if (te_http_client_new(loop, &h->client, err) < 0)
        goto fail;
    cJSON_Delete(root);
    return n;
fail:
    cJSON_Delete(root);
    if (n)
        hook_free(n);
    return NULL;
}

/* An address fit for a header and the SMTP envelope: non-empty, no
 * control characters (no header injection), an '@'. */
static bool good_address(const char *s)
{
    if (!s || !*s || !strchr(s, '@'))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

te_notifier_t *te_notifier_email_new(uv_loop_t *loop, const char *name, const char *json,
                                     te_err_t *err)
{
    te_notifier_t *n = hook_alloc(loop, name, "email", err);
    cJSON *root = cJSON_Parse(json ? json : "");
    size_t nto = 0;
    if (!n)
        goto fail;
    hook_impl_t *h = n->impl;
    h->email = true;
    h->timeout_ms = 10000;
    if (!cJSON_IsObject(root)) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": block is not a JSON object", name);
        goto fail;
    }
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(root, "smtp"));
    if (!url || (strncmp(url, "smtp://", 7) != 0 && strncmp(url, "smtps://", 8) != 0) ||
        !url[url[4] == 's' ? 8 : 7]) {
        te_err_set(err, TE_ECONFIG,
                   "notifier \"%s\": email needs \"smtp\" (smtp://host:port or smtps://host:port)",
                   name);
        goto fail;
    }
    const char *from = cJSON_GetStringValue(cJSON_GetObjectItem(root, "from"));
    if (!good_address(from)) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": email needs \"from\" (an address)", name);
        goto fail;
    }
    const cJSON *to = cJSON_GetObjectItem(root, "to"), *one;
    if (cJSON_IsString(to)) {
        if (good_address(to->valuestring))
            h->headers[nto++] = strdup(to->valuestring);
        else
            nto = MAX_HEADERS + 1;
    } else if (cJSON_IsArray(to)) {
        cJSON_ArrayForEach(one, to)
        {
            if (nto == MAX_HEADERS || !good_address(cJSON_GetStringValue(one))) {
                nto = MAX_HEADERS + 1;
                break;
            }
            h->headers[nto++] = strdup(one->valuestring);
        }
    }
    if (nto == 0 || nto > MAX_HEADERS) {
        te_err_set(err, TE_ECONFIG,
                   "notifier \"%s\": email needs \"to\" (an address or a list of 1 to %d "
                   "addresses)",
                   name, MAX_HEADERS);
        goto fail;
    }
    const char *tls = cJSON_GetStringValue(cJSON_GetObjectItem(root, "tls"));
    if (cJSON_GetObjectItem(root, "tls") &&
        (!tls || (strcmp(tls, "try") != 0 && strcmp(tls, "always") != 0))) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": tls must be \"try\" or \"always\"", name);
        goto fail;
    }
    h->require_tls = tls && strcmp(tls, "always") == 0;
    const char *user = cJSON_GetStringValue(cJSON_GetObjectItem(root, "username"));
    const char *pass = cJSON_GetStringValue(cJSON_GetObjectItem(root, "password"));
    h->url = strdup(url);
    h->from = strdup(from);
    h->username = user ? strdup(user) : NULL;
    h->password = pass ? strdup(pass) : NULL;
    bool oom = !h->url || !h->from || (user && !h->username) || (pass && !h->password);
    for (size_t i = 0; i < nto; i++)
        oom = oom || !h->headers[i];
    if (oom) {
        te_err_set(err, TE_ENOMEM, "out of memory");
        goto fail;
    }
    if (common_keys(h, root, name, err) < 0 || te_http_client_new(loop, &h->client, err) < 0)
        goto fail;
    cJSON_Delete(root);
    return n;
fail:
    cJSON_Delete(root);
    if (n)
        hook_free(n);
    return NULL;
}
