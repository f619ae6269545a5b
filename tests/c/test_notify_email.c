#define _GNU_SOURCE /* strcasestr */
/*
 * test_notify_email.c - the email notifier against a real SMTP sink on
 * loopback (threads of this test speaking plain SMTP: 220, EHLO, MAIL,
 * RCPT, DATA, QUIT): the envelope, the headers, both MIME parts with HTML
 * escaping of hostile values, an RFC 2047 subject, dot-stuffing, a sink
 * that rejects DATA (retried, then failed naming the reply), an
 * unreachable server (fails at once, the loop keeps turning), bad blocks;
 * a notification group as one message listing every alert (counts in the
 * subject, CR/LF in values kept out of the headers, non-ASCII, the
 * 1000-alert cap, the same retries as a single email).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "alerts/dispatch.h"
#include "alerts/notify.h"
#include "alerts/notify_email_group.h"
#include "core/time.h"

/* --- the SMTP sink ------------------------------------------------------ */

typedef enum { SINK_OK, SINK_REJECT_DATA } sink_mode_t;

#define MAX_CONNS 16

typedef struct sink {
    int lfd, port;
    sink_mode_t mode;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_t conn_threads[MAX_CONNS];
    int conn_fds[MAX_CONNS];
    int nconns;
    int messages, data_refused;
    char from[256];
    char rcpt[4][256];
    int nrcpt;
    char msg[65536]; /* the last message, dot-stuffing undone */
    volatile int stop;
} sink_t;

typedef struct conn {
    sink_t *s;
    int fd;
    char buf[8192];
    size_t len;
    char msg[65536];
} conn_t;

/* One line without its CRLF into out; -1 when the peer went away. */
static int read_line(conn_t *c, char *out, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf) + 1, k = n;
            while (k > 0 && (c->buf[k - 1] == '\n' || c->buf[k - 1] == '\r'))
                k--;
            snprintf(out, cap, "%.*s", (int)k, c->buf);
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            return (int)k;
        }
        if (c->len == sizeof(c->buf))
            return -1;
        ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

static void say(conn_t *c, const char *s)
{
    ssize_t w = write(c->fd, s, strlen(s));
    (void)w;
}

static void *serve_conn(void *arg)
{
    conn_t *c = arg;
    sink_t *s = c->s;
    char line[2048];
    say(c, "220 sink.test ESMTP\r\n");
    while (read_line(c, line, sizeof(line)) >= 0) {
        if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0) {
            say(c, "250-sink.test\r\n250 8BITMIME\r\n");
        } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
            pthread_mutex_lock(&s->lock);
            snprintf(s->from, sizeof(s->from), "%.255s", line + 10);
            s->nrcpt = 0;
            pthread_mutex_unlock(&s->lock);
            say(c, "250 2.1.0 ok\r\n");
        } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
            pthread_mutex_lock(&s->lock);
            if (s->nrcpt < 4)
                snprintf(s->rcpt[s->nrcpt++], sizeof(s->rcpt[0]), "%.255s", line + 8);
            pthread_mutex_unlock(&s->lock);
            say(c, "250 2.1.5 ok\r\n");
        } else if (strcasecmp(line, "DATA") == 0) {
            if (s->mode == SINK_REJECT_DATA) {
                pthread_mutex_lock(&s->lock);
                s->data_refused++;
                pthread_mutex_unlock(&s->lock);
                say(c, "554 5.7.1 no thanks\r\n");
                continue;
            }
            say(c, "354 go ahead\r\n");
            char *msg = c->msg;
            size_t n = 0;
            int k;
            bool long_line = false;
            while ((k = read_line(c, line, sizeof(line))) >= 0 && strcmp(line, ".") != 0) {
                const char *p = line[0] == '.' ? line + 1 : line; /* undo dot-stuffing */
                long_line = long_line || k > 998;
                n += (size_t)snprintf(msg + n, sizeof(c->msg) - n, "%s\r\n", p);
                if (n >= sizeof(c->msg))
                    n = sizeof(c->msg) - 1;
            }
            if (k < 0)
                break;
            pthread_mutex_lock(&s->lock);
            snprintf(s->msg, sizeof(s->msg), "%s", long_line ? "LINE TOO LONG" : msg);
            s->messages++;
            pthread_mutex_unlock(&s->lock);
            say(c, "250 2.0.0 queued\r\n");
        } else if (strcasecmp(line, "QUIT") == 0) {
            say(c, "221 2.0.0 bye\r\n");
            break;
        } else if (strcasecmp(line, "RSET") == 0 || strcasecmp(line, "NOOP") == 0) {
            say(c, "250 2.0.0 ok\r\n");
        } else {
            say(c, "500 5.5.1 what?\r\n");
        }
    }
    shutdown(c->fd, SHUT_RDWR);
    free(c);
    return NULL;
}

static void *serve(void *arg)
{
    sink_t *s = arg;
    while (!s->stop) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        conn_t *c = calloc(1, sizeof(*c));
        pthread_mutex_lock(&s->lock);
        if (!c || s->nconns == MAX_CONNS) {
            pthread_mutex_unlock(&s->lock);
            free(c);
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        s->conn_fds[s->nconns] = fd;
        pthread_create(&s->conn_threads[s->nconns++], NULL, serve_conn, c);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

static void sink_start(sink_t *s, sink_mode_t mode)
{
    memset(s, 0, sizeof(*s));
    s->mode = mode;
    pthread_mutex_init(&s->lock, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t alen = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &alen);
    s->port = ntohs(a.sin_port);
    assert_int_equal(listen(s->lfd, 16), 0);
    pthread_create(&s->thread, NULL, serve, s);
}

static void sink_stop(sink_t *s)
{
    s->stop = 1;
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    for (int i = 0; i < s->nconns; i++) {
        shutdown(s->conn_fds[i], SHUT_RDWR);
        pthread_join(s->conn_threads[i], NULL);
        close(s->conn_fds[i]);
    }
    pthread_mutex_destroy(&s->lock);
}

/* --- decoding what arrived ---------------------------------------------- */

/* Quoted-printable body (up to end) decoded into a new string. */
static char *qp_decode(const char *p, const char *end)
{
    char *out = malloc((size_t)(end - p) + 1), *o = out;
    while (p < end) {
        if (p[0] == '=' && p + 2 < end + 1 && p[1] == '\r' && p[2] == '\n') {
            p += 3;
        } else if (p[0] == '=' && p + 2 < end) {
            char hex[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

/* The decoded body of the part whose Content-Type starts with type. */
static char *part(const char *msg, const char *boundary, const char *type)
{
    char delim[128], head[160];
    snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
    snprintf(head, sizeof(head), "\r\n--%s\r\nContent-Type: %s", boundary, type);
    const char *start = strstr(msg, head);
    assert_non_null(start);
    const char *body = strstr(start + 1, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    const char *end = strstr(body, delim);
    assert_non_null(end);
    assert_non_null(strstr(start, "Content-Transfer-Encoding: quoted-printable\r\n"));
    return qp_decode(body, end);
}

static void b64_decode(const char *s, size_t n, char *out, size_t *olen)
{
    static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *c = strchr(d, s[i]);
        assert_non_null(c);
        v = v << 6 | (unsigned)(c - d);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[(*olen)++] = (char)(v >> bits & 0xff);
        }
    }
    out[*olen] = '\0';
}

/* The Subject header, unfolded and RFC 2047 (=?UTF-8?B?...?=) decoded. */
static void subject_of(const char *msg, char *out, size_t cap)
{
    const char *s = strstr(msg, "\r\nSubject: ");
    assert_non_null(s);
    s += 11;
    size_t olen = 0;
    out[0] = '\0';
    for (;;) {
        const char *eol = strstr(s, "\r\n");
        assert_non_null(eol);
        if (strncmp(s, "=?UTF-8?B?", 10) == 0) {
            const char *q = strstr(s + 10, "?=");
            assert_true(q && q < eol);
            assert_true(eol - s <= 75); /* one encoded word a line */
            b64_decode(s + 10, (size_t)(q - s - 10), out, &olen);
        } else {
            olen += (size_t)snprintf(out + olen, cap - olen, "%.*s", (int)(eol - s), s);
        }
        if (eol[2] != ' ')
            break;
        s = eol + 3;
    }
}

/* Every line ends in CRLF and is at most 998 characters (RFC 5322 2.1.1). */
static void assert_lines_ok(const char *msg)
{
    assert_string_not_equal(msg, "LINE TOO LONG");
    size_t col = 0;
    for (const char *p = msg; *p; p++) {
        if (*p == '\n') {
            assert_true(p > msg && p[-1] == '\r');
            col = 0;
        } else {
            assert_true(++col <= 999);
        }
    }
}

/* --- the fixture -------------------------------------------------------- */

typedef struct outcome {
    int calls, rc;
    char msg[600];
} outcome_t;

static void on_done(int rc, const char *msg, void *ud)
{
    outcome_t *o = ud;
    o->calls++;
    o->rc = rc;
    snprintf(o->msg, sizeof(o->msg), "%s", msg ? msg : "");
}

static void make_alert_of(te_alert_t *a, const char *provider, const char *hostile_model,
                          const char *summary)
{
    const char *keys[] = {"provider", "model"}, *vals[] = {provider, hostile_model};
    te_alert_init(a);
    assert_int_equal(te_alert_set_identity(a, "llm-error-rate", keys, vals, 2), 0);
    snprintf(a->id, sizeof(a->id), "%s", "0123456789abcdef");
    a->state = TE_ALERT_FIRING;
    a->severity = TE_SEV_WARNING;
    a->has_value = true;
    a->value = 0.083;
    a->summary = strdup(summary);
    a->starts_at_ns = INT64_C(1795423800) * 1000000000;
    char *lk[] = {"team"}, *lv[] = {"llm-platform"};
    assert_int_equal(te_alert_set_labels(a, lk, lv, 1), 0);
}

static void make_alert(te_alert_t *a, const char *hostile_model, const char *summary)
{
    make_alert_of(a, "openai", hostile_model, summary);
}

typedef struct fx {
    sink_t s;
    uv_loop_t loop;
    te_notifier_t *n;
    te_alert_t a;
} fx_t;

static void fx_open(fx_t *f, sink_mode_t mode, const char *extra)
{
    char json[512];
    sink_start(&f->s, mode);
    uv_loop_init(&f->loop);
    snprintf(json, sizeof(json),
             "{\"type\":\"email\",\"smtp\":\"smtp://127.0.0.1:%d\",\"from\":\"te@example.org\","
             "\"to\":[\"a@example.org\",\"b@example.org\"]%s}",
             f->s.port, extra);
    te_config_notifier_t cfg = {.name = (char *)"mail", .type = (char *)"email", .json = json};
    te_err_t err = {0};
    f->n = te_notifier_new(&f->loop, &cfg, &err);
    if (!f->n)
        fail_msg("notifier: %s", err.msg);
    assert_string_equal(f->n->type, "email");
}

static void fx_send(fx_t *f, const char *status, outcome_t *o)
{
    assert_int_equal(f->n->send(f->n, &f->a, status, on_done, o), 0);
    assert_int_equal(o->calls, 0); /* never inside send */
    while (o->calls == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void fx_close(fx_t *f)
{
    te_alert_clear(&f->a);
    te_notifier_free(f->n);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sink_stop(&f->s);
}

static const char HOSTILE[] = "<script>alert(\"x\")</script> & 'q'";

/* --- tests -------------------------------------------------------------- */

static void email_delivers_a_multipart_message(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o = {0};
    fx_open(&f, SINK_OK, "");
    make_alert(&f.a, HOSTILE, "openai/m error rate 8.3% (5m)");
    fx_send(&f, "firing", &o);
    assert_int_equal(o.rc, 0);
    pthread_mutex_lock(&f.s.lock);
    assert_int_equal(f.s.messages, 1);
    assert_string_equal(f.s.from, "<te@example.org>");
    assert_int_equal(f.s.nrcpt, 2);
    assert_string_equal(f.s.rcpt[0], "<a@example.org>");
    assert_string_equal(f.s.rcpt[1], "<b@example.org>");
    const char *m = f.s.msg;
    assert_lines_ok(m);
    /* headers, before the first blank line */
    const char *blank = strstr(m, "\r\n\r\n");
    assert_non_null(blank);
    assert_true(strncmp(m, "Date: ", 6) == 0);
    assert_true(m[9] == ',' && m[10] == ' ' && strstr(m, " +0000\r\n") < blank);
    assert_non_null(strstr(m, "\r\nFrom: te@example.org\r\n"));
    assert_non_null(strstr(m, "\r\nTo: a@example.org,\r\n b@example.org\r\n"));
    char subject[512];
    subject_of(m, subject, sizeof(subject));
    assert_string_equal(subject, "[FIRING] llm-error-rate warning: openai/m error rate 8.3% (5m)");
    const char *mid = strstr(m, "\r\nMessage-ID: <0123456789abcdef.firing.");
    assert_true(mid && mid < blank && strstr(mid, "@example.org>\r\n"));
    assert_non_null(strstr(m, "\r\nMIME-Version: 1.0\r\n"));
    const char *ct = strstr(m, "\r\nContent-Type: multipart/alternative; boundary=\"");
    assert_true(ct && ct < blank);
    char boundary[100];
    assert_int_equal(sscanf(ct, "\r\nContent-Type: multipart/alternative; boundary=\"%99[^\"]",
                            boundary),
                     1);
    char closing[128];
    snprintf(closing, sizeof(closing), "\r\n--%s--\r\n", boundary);
    assert_non_null(strstr(m, closing));

    char *text = part(m, boundary, "text/plain; charset=utf-8");
    assert_non_null(strstr(text, "[FIRING] llm-error-rate (warning)\r\n"));
    assert_non_null(strstr(text, "Status     firing\r\n"));
    assert_non_null(strstr(text, "Severity   warning\r\n"));
    assert_non_null(strstr(text, "Group      provider=openai, model=<script>alert(\"x\")</script> "
                                 "& 'q'\r\n"));
    assert_non_null(strstr(text, "Labels     team=llm-platform\r\n"));
    assert_non_null(strstr(text, "Value      0.083\r\n"));
    assert_non_null(strstr(text, "Starts at  2026-11-23T"));
    assert_non_null(strstr(text, "Ends at    -\r\n"));
    assert_non_null(strstr(text, "Alert id   0123456789abcdef (fingerprint "));
    free(text);

    char *html = part(m, boundary, "text/html; charset=utf-8");
    assert_null(strstr(html, "<script>"));
    assert_non_null(strstr(html, "<td>provider=openai, model=&lt;script&gt;alert(&quot;x&quot;)"
                                 "&lt;/script&gt; &amp; &#39;q&#39;</td>"));
    assert_non_null(strstr(html, "<td>openai/m error rate 8.3% (5m)</td>"));
    assert_non_null(strstr(html, "<td>firing</td>"));
    assert_non_null(strstr(html, "<td>0123456789abcdef (fingerprint "));
    free(html);
    pthread_mutex_unlock(&f.s.lock);
    fx_close(&f);
}

/* A scheduled report: multipart/mixed, a text part with the link and the
 * HTML as a base64 attachment that decodes to the report. */
static void email_sends_a_report_as_an_attachment(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o = {0};
    fx_open(&f, SINK_OK, "");
    te_alert_init(&f.a);
    char html[3000];
    int hl = snprintf(html, sizeof(html), "<!DOCTYPE html>\n<html><title>Daily cost</title>\n");
    while (hl < 2900) /* long enough for many base64 lines */
        hl += snprintf(html + hl, sizeof(html) - (size_t)hl, "<p>.row %d</p>\n", hl);
    te_report_note_t r = {.name = "cost",
                          .title = "Daily cost",
                          .path = "/data/reports/cost-20261123T0800.html",
                          .url = "http://127.0.0.1:8080/v1/reports/cost?format=html",
                          .html = html,
                          .html_len = (size_t)hl,
                          .generated_at_ns = INT64_C(1795420800) * 1000000000};
    assert_non_null(f.n->send_report);
    assert_int_equal(f.n->send_report(f.n, &r, on_done, &o), 0);
    assert_int_equal(o.calls, 0);
    while (o.calls == 0)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_int_equal(o.rc, 0);
    pthread_mutex_lock(&f.s.lock);
    assert_int_equal(f.s.messages, 1);
    const char *m = f.s.msg;
    assert_lines_ok(m);
    char subject[512];
    subject_of(m, subject, sizeof(subject));
    assert_string_equal(subject, "[REPORT] Daily cost");
    const char *ct = strstr(m, "\r\nContent-Type: multipart/mixed; boundary=\"");
    assert_non_null(ct);
    char boundary[100];
    assert_int_equal(sscanf(ct, "\r\nContent-Type: multipart/mixed; boundary=\"%99[^\"]",
                            boundary), 1);
    char *text = part(m, boundary, "text/plain; charset=utf-8");
    assert_non_null(strstr(text, "http://127.0.0.1:8080/v1/reports/cost?format=html"));
    assert_non_null(strstr(text, "cost-20261123T0800.html"));
    free(text);
    const char *att = strstr(m, "Content-Disposition: attachment; "
                                "filename=\"cost-20261123T0800.html\"\r\n"
                                "Content-Transfer-Encoding: base64\r\n\r\n");
    assert_non_null(att);
    att = strstr(att, "\r\n\r\n") + 4;
    char delim[128];
    snprintf(delim, sizeof(delim), "\r\n--%s--\r\n", boundary);
    const char *end = strstr(att, delim);
    assert_non_null(end);
    char b64[8192], out[8192];
    size_t bn = 0, olen = 0;
    for (const char *p = att; p < end && bn < sizeof(b64) - 1; p++)
        if (*p != '\r' && *p != '\n')
            b64[bn++] = *p;
    b64_decode(b64, bn, out, &olen);
    assert_int_equal(olen, (size_t)hl);
    assert_memory_equal(out, html, (size_t)hl);
    pthread_mutex_unlock(&f.s.lock);
    fx_close(&f);
}

static void email_resolved_utf8_subject_and_dot_lines(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o = {0};
    fx_open(&f, SINK_OK, ",\"tls\":\"try\"");
    /* a lone "." line would end DATA early unless libcurl dot-stuffs it */
    make_alert(&f.a, "m", "température élevée\n.\n..x");
    f.a.state = TE_ALERT_RESOLVED;
    f.a.ends_at_ns = INT64_C(1795424100) * 1000000000;
    fx_send(&f, "resolved", &o);
    assert_int_equal(o.rc, 0);
    pthread_mutex_lock(&f.s.lock);
    const char *m = f.s.msg;
    assert_lines_ok(m);
    assert_non_null(strstr(m, "\r\nSubject: =?UTF-8?B?"));
    char subject[512];
    subject_of(m, subject, sizeof(subject));
    assert_string_equal(subject, "[RESOLVED] llm-error-rate warning: température élevée . ..x");
    assert_non_null(strstr(m, "\r\nMessage-ID: <0123456789abcdef.resolved."));
    const char *ct = strstr(m, "boundary=\"");
    char boundary[100];
    assert_int_equal(sscanf(ct, "boundary=\"%99[^\"]", boundary), 1);
    char *text = part(m, boundary, "text/plain");
    assert_non_null(strstr(text, "[RESOLVED] llm-error-rate (warning)\r\n\r\n"
                                 "température élevée\r\n.\r\n..x\r\n"));
    assert_non_null(strstr(text, "Status     resolved\r\n"));
    assert_non_null(strstr(text, "Ends at    2026-11-23T"));
    free(text);
    char *html = part(m, boundary, "text/html");
    assert_non_null(strstr(html, "<td>resolved</td>"));
    assert_non_null(strstr(html, "température élevée"));
    free(html);
    pthread_mutex_unlock(&f.s.lock);
    fx_close(&f);
}

/* --- notification groups (send_group) ----------------------------------- */

/* Three alerts of one group: a provider with CR/LF and non-ASCII common to
 * all, a summary trying to start a header, an HTML-hostile model. */
#define GROUP_PROVIDER "openai\xc3\xaf\r\nBcc: evil@example.org"
static void make_group(te_alert_t g[3], const char *st[3])
{
    make_alert_of(&g[0], GROUP_PROVIDER, "gpt-4o", "error rate 8% \xc3\xa9t\xc3\xa9\r\nX-Injected: yes");
    make_alert_of(&g[1], GROUP_PROVIDER, "gpt-4o-mini", "back to normal");
    make_alert_of(&g[2], GROUP_PROVIDER, HOSTILE, "third\n.\nline");
    snprintf(g[0].id, sizeof(g[0].id), "%s", "aaaaaaaaaaaaaaa0");
    snprintf(g[1].id, sizeof(g[1].id), "%s", "bbbbbbbbbbbbbbb1");
    snprintf(g[2].id, sizeof(g[2].id), "%s", "ccccccccccccccc2");
    g[1].state = TE_ALERT_RESOLVED;
    g[1].ends_at_ns = INT64_C(1795424100) * 1000000000;
    g[1].reason = strdup("condition cleared\r\nX-Reason: forged");
    g[2].severity = TE_SEV_CRITICAL;
    st[0] = "firing";
    st[1] = "resolved";
    st[2] = "flapping";
}

static void email_group_is_one_message_listing_every_alert(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o = {0};
    fx_open(&f, SINK_OK, "");
    te_alert_init(&f.a);
    te_alert_t g[3];
    const char *st[3];
    make_group(g, st);
    const te_alert_t *as[3] = {&g[0], &g[1], &g[2]};
    assert_non_null(f.n->send_group);
    assert_int_equal(f.n->send_group(f.n, as, st, 3, on_done, &o), 0);
    assert_int_equal(o.calls, 0); /* never inside send_group */
    while (o.calls == 0)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_int_equal(o.rc, 0);
    pthread_mutex_lock(&f.s.lock);
    assert_int_equal(f.s.messages, 1); /* one email for the whole group */
    assert_int_equal(f.s.nrcpt, 2);
    const char *m = f.s.msg;
    assert_lines_ok(m);
    const char *blank = strstr(m, "\r\n\r\n");
    assert_non_null(blank);
    /* no value reached the headers as a header of its own */
    char *head = strndup(m, (size_t)(blank - m));
    assert_null(strstr(head, "\r\nBcc:"));
    assert_null(strstr(head, "\r\nX-Injected"));
    assert_null(strstr(head, "\r\nX-Reason"));
    assert_null(strstr(head, "X-TE-Alert-Id:"));
    assert_non_null(strstr(head, "\r\nX-TE-Alert-Count: 3\r\n"));
    assert_non_null(strstr(head, "\r\nTo: a@example.org,\r\n b@example.org\r\n"));
    assert_non_null(strstr(head, "\r\nMessage-ID: <group.firing."));
    assert_non_null(strstr(head, "\r\nSubject: =?UTF-8?B?")); /* non-ASCII: encoded */
    free(head);
    char subject[512];
    subject_of(m, subject, sizeof(subject));
    assert_string_equal(subject, "[FIRING:2, RESOLVED:1] llm-error-rate "
                                 "(provider=openai\xc3\xaf  Bcc: evil@example.org)");
    const char *ct = strstr(m, "\r\nContent-Type: multipart/alternative; boundary=\"");
    assert_true(ct && ct < blank);
    char boundary[100];
    assert_int_equal(sscanf(ct, "\r\nContent-Type: multipart/alternative; boundary=\"%99[^\"]",
                            boundary), 1);

    char *text = part(m, boundary, "text/plain; charset=utf-8");
    assert_true(strncmp(text, "[FIRING:2, RESOLVED:1] llm-error-rate (provider=openai\xc3\xaf  "
                              "Bcc: evil@example.org)\r\n\r\n3 alerts: 2 firing, 1 resolved\r\n",
                        strlen("[FIRING:2, RESOLVED:1] llm-error-rate (provider=openai\xc3\xaf  "
                               "Bcc: evil@example.org)\r\n\r\n3 alerts: 2 firing, 1 resolved\r\n")) == 0);
    /* firing first (input order), then resolved; values on one line */
    const char *f1 = strstr(text, "Firing (2)\r\n\r\n#1 [FIRING] llm-error-rate (warning)\r\n"
                                  "Status     firing\r\n");
    const char *f2 = strstr(text, "#2 [FLAPPING] llm-error-rate (critical)\r\n");
    const char *r1 = strstr(text, "Resolved (1)\r\n\r\n#3 [RESOLVED] llm-error-rate (warning)\r\n");
    assert_true(f1 && f2 && r1 && f1 < f2 && f2 < r1);
    assert_non_null(strstr(text, "Summary    error rate 8% \xc3\xa9t\xc3\xa9  X-Injected: yes\r\n"));
    assert_non_null(strstr(text, "Summary    third . line\r\n"));
    assert_non_null(strstr(text, "Group      provider=openai\xc3\xaf  Bcc: evil@example.org, "
                                 "model=gpt-4o-mini\r\n"));
    assert_non_null(strstr(text, "Ends at    2026-11-23T"));
    assert_non_null(strstr(text, "Reason     condition cleared  X-Reason: forged\r\n"));
    assert_non_null(strstr(text, "Value      0.083\r\n"));
    assert_non_null(strstr(text, "Labels     team=llm-platform\r\n"));
    assert_non_null(strstr(text, "Alert id   aaaaaaaaaaaaaaa0 (fingerprint "));
    assert_non_null(strstr(text, "Alert id   bbbbbbbbbbbbbbb1 (fingerprint "));
    assert_non_null(strstr(text, "Alert id   ccccccccccccccc2 (fingerprint "));
    assert_null(strstr(text, "#4 "));
    free(text);

    char *html = part(m, boundary, "text/html; charset=utf-8");
    assert_null(strstr(html, "<script>"));
    assert_non_null(strstr(html, "<h3>Firing (2)</h3>"));
    assert_non_null(strstr(html, "<h3>Resolved (1)</h3>"));
    assert_non_null(strstr(html, "<td>provider=openai\xc3\xaf  Bcc: evil@example.org, "
                                 "model=&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; "
                                 "&amp; &#39;q&#39;</td>"));
    assert_non_null(strstr(html, "<td>ccccccccccccccc2 (fingerprint "));
    free(html);
    pthread_mutex_unlock(&f.s.lock);
    for (int i = 0; i < 3; i++)
        te_alert_clear(&g[i]);
    fx_close(&f);
}

/* Only resolved alerts, no common pair, two rules: the subject says so. */
static void email_group_subject_without_common_pairs(void **state)
{
    (void)state;
    te_alert_t g[2];
    make_alert_of(&g[0], "openai", "m1", "s");
    make_alert_of(&g[1], "anthropic", "m2", "s");
    free(g[1].rule);
    g[1].rule = strdup("llm-latency");
    const te_alert_t *as[2] = {&g[0], &g[1]};
    const char *st[2] = {"resolved", "resolved"}, *to[] = {"a@example.org", NULL};
    char *m = te_email_group_message("Te <te@example.org>", to, as, st, 2);
    assert_non_null(m);
    assert_non_null(strstr(m, "\r\nSubject: [RESOLVED:2] 2 rules\r\n"));
    assert_non_null(strstr(m, "\r\nMessage-ID: <group.resolved."));
    assert_non_null(strstr(m, "@example.org>\r\n"));
    assert_null(strstr(m, "Firing ("));
    free(m);
    for (int i = 0; i < 2; i++)
        te_alert_clear(&g[i]);
}

/* The largest group the dispatcher sends (1000 alerts): every line short,
 * every alert listed. */
static void email_group_of_1000_alerts(void **state)
{
    (void)state;
    enum { N = 1000 };
    te_alert_t *g = calloc(N, sizeof(*g));
    const te_alert_t **as = calloc(N, sizeof(*as));
    const char **st = calloc(N, sizeof(*st));
    char model[32];
    for (int i = 0; i < N; i++) {
        snprintf(model, sizeof(model), "model-%d", i);
        make_alert(&g[i], model, "a fairly long summary that goes on and on so that the "
                             "quoted-printable encoder has to break its line somewhere");
        as[i] = &g[i];
        st[i] = i % 10 == 9 ? "resolved" : "firing";
    }
    const char *to[] = {"a@example.org", NULL};
    char *m = te_email_group_message("te@example.org", to, as, st, N);
    assert_non_null(m);
    assert_non_null(strstr(m, "\r\nSubject: [FIRING:900, RESOLVED:100] llm-error-rate "
                              "(provider=openai)\r\n"));
    assert_non_null(strstr(m, "\r\nX-TE-Alert-Count: 1000\r\n"));
    size_t col = 0;
    const char *body = strstr(m, "\r\n\r\n");
    assert_non_null(body);
    for (const char *p = body; *p; p++) { /* quoted-printable: at most 76 a line */
        if (*p == '\n') {
            assert_true(p[-1] == '\r');
            col = 0;
        } else if (*p != '\r') {
            assert_true(++col <= 76);
        }
    }
    assert_non_null(strstr(m, "#1000 [RESOLVED]"));
    free(m);
    for (int i = 0; i < N; i++)
        te_alert_clear(&g[i]);
    free(g);
    free(as);
    free(st);
}

/* Through the dispatcher, as the engine sends: a grouped email notifier
 * gets three alerts of one group as one email, then a group of one as the
 * single-alert email. */
typedef struct results {
    int ok, failed;
} results_t;

static void on_result(void *ud, int64_t id, int rc, const char *msg, int64_t attempts,
                      bool final)
{
    (void)id, (void)msg, (void)attempts, (void)final;
    results_t *r = ud;
    if (rc == 0)
        r->ok++;
    else
        r->failed++;
}

static void on_idle_tick(uv_timer_t *t)
{
    (void)t;
}

/* Turns the loop until want deliveries succeeded. The dispatcher's timer
 * does not keep a loop alive (the engine's handles do), so a ticking
 * timer stands in for them. */
static void run_until_ok(uv_loop_t *loop, results_t *r, int want)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_idle_tick, 5, 5);
    uint64_t t0 = uv_hrtime();
    while (r->ok < want && r->failed == 0 && uv_hrtime() - t0 < UINT64_C(10000000000))
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(r->failed, 0);
    assert_int_equal(r->ok, want);
}

static void email_group_through_the_dispatcher(void **state)
{
    (void)state;
    fx_t f;
    results_t r = {0};
    fx_open(&f, SINK_OK, "");
    te_alert_init(&f.a);
    char *by[] = {"model"};
    te_group_opts_t g = {.group_by = by, .ngroup_by = 1, .wait_ns = 50 * TE_NS_PER_MS,
                         .interval_ns = 50 * TE_NS_PER_MS};
    te_dispatch_t *d = te_dispatch_new(&f.loop, &f.n, &g, 1, 0, on_result, &r);
    assert_non_null(d);
    for (int i = 0; i < 3; i++) {
        te_alert_t a;
        char summary[32];
        snprintf(summary, sizeof(summary), "alert number %d", i);
        make_alert_of(&a, i == 1 ? "anthropic" : "openai", "shared-model", summary);
        snprintf(a.id, sizeof(a.id), "%015d%d", 0, i);
        assert_int_equal(te_dispatch_enqueue(d, i + 1, "mail", &a, "firing", te_time_now_ns(),
                                             0), 0);
        te_alert_clear(&a);
    }
    run_until_ok(&f.loop, &r, 3);
    pthread_mutex_lock(&f.s.lock);
    assert_int_equal(f.s.messages, 1);
    char subject[512];
    subject_of(f.s.msg, subject, sizeof(subject));
    assert_string_equal(subject, "[FIRING:3] llm-error-rate (model=shared-model)");
    assert_non_null(strstr(f.s.msg, "\r\nX-TE-Alert-Count: 3\r\n"));
    assert_non_null(strstr(f.s.msg, "alert number 0"));
    assert_non_null(strstr(f.s.msg, "alert number 1"));
    assert_non_null(strstr(f.s.msg, "alert number 2"));
    pthread_mutex_unlock(&f.s.lock);

    te_alert_t a; /* a group of one: the single-alert email */
    make_alert_of(&a, "openai", "solo-model", "alone");
    assert_int_equal(te_dispatch_enqueue(d, 4, "mail", &a, "firing", te_time_now_ns(), 0), 0);
    te_alert_clear(&a);
    run_until_ok(&f.loop, &r, 4);
    pthread_mutex_lock(&f.s.lock);
    assert_int_equal(f.s.messages, 2);
    subject_of(f.s.msg, subject, sizeof(subject));
    assert_string_equal(subject, "[FIRING] llm-error-rate warning: alone");
    assert_non_null(strstr(f.s.msg, "\r\nX-TE-Alert-Id: 0123456789abcdef\r\n"));
    assert_null(strstr(f.s.msg, "X-TE-Alert-Count"));
    pthread_mutex_unlock(&f.s.lock);

    te_dispatch_close(d);
    te_alert_clear(&f.a);
    te_notifier_free(f.n);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    te_dispatch_free(d);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    sink_stop(&f.s);
}

/* A group is one delivery with the retries of a single email. */
static void email_group_rejected_is_retried_then_failed(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o = {0};
    fx_open(&f, SINK_REJECT_DATA, ",\"retries\":1");
    te_alert_init(&f.a);
    te_alert_t g[3];
    const char *st[3];
    make_group(g, st);
    const te_alert_t *as[3] = {&g[0], &g[1], &g[2]};
    assert_int_equal(f.n->send_group(f.n, as, st, 3, on_done, &o), 0);
    while (o.calls == 0)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.rc, TE_EIO);
    assert_non_null(strstr(o.msg, "554"));
    assert_non_null(strstr(o.msg, "after 2 attempts"));
    pthread_mutex_lock(&f.s.lock);
    assert_int_equal(f.s.data_refused, 2);
    assert_int_equal(f.s.messages, 0);
    pthread_mutex_unlock(&f.s.lock);
    for (int i = 0; i < 3; i++)
        te_alert_clear(&g[i]);
    fx_close(&f);
}

static void email_rejected_data_is_retried_then_failed(void **state)
{
    (void)state;
    fx_t f;
    outcome_t o = {0};
    fx_open(&f, SINK_REJECT_DATA, ",\"retries\":1");
    make_alert(&f.a, "m", "s");
    fx_send(&f, "firing", &o);
    assert_int_equal(o.rc, TE_EIO);
    assert_non_null(strstr(o.msg, "notifier \"mail\""));
    assert_non_null(strstr(o.msg, "554"));
    assert_non_null(strstr(o.msg, "no thanks"));
    assert_non_null(strstr(o.msg, "after 2 attempts"));
    pthread_mutex_lock(&f.s.lock);
    assert_int_equal(f.s.data_refused, 2);
    assert_int_equal(f.s.messages, 0);
    pthread_mutex_unlock(&f.s.lock);
    fx_close(&f);
}

static void on_tick(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

static void email_unreachable_server_fails_without_blocking(void **state)
{
    (void)state;
    /* a port nobody listens on: bound, then closed */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t alen = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);
    char json[256];
    snprintf(json, sizeof(json),
             "{\"smtp\":\"smtp://127.0.0.1:%d\",\"from\":\"te@example.org\",\"to\":\"a@example.org\","
             "\"retries\":1,\"timeout\":\"2s\"}",
             ntohs(a.sin_port));
    uv_loop_t loop;
    uv_loop_init(&loop);
    te_config_notifier_t cfg = {.name = (char *)"mail", .type = (char *)"email", .json = json};
    te_err_t err = {0};
    te_notifier_t *n = te_notifier_new(&loop, &cfg, &err);
    assert_non_null(n);
    te_alert_t al;
    make_alert(&al, "m", "s");
    int ticks = 0;
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    tick.data = &ticks;
    uv_timer_start(&tick, on_tick, 10, 10);
    outcome_t o = {0};
    uint64_t t0 = uv_hrtime();
    assert_int_equal(n->send(n, &al, "firing", on_done, &o), 0);
    assert_true(uv_hrtime() - t0 < 100u * 1000000u); /* send only starts it */
    while (o.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(ticks >= 10); /* the loop kept turning through the 0.5 s backoff */
    assert_int_equal(o.rc, TE_EIO);
    assert_non_null(strstr(o.msg, "notifier \"mail\": smtp://127.0.0.1:"));
    assert_non_null(strcasestr(o.msg, "connect"));
    assert_non_null(strstr(o.msg, "after 2 attempts"));
    uv_close((uv_handle_t *)&tick, NULL);
    te_alert_clear(&al);
    te_notifier_free(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void email_bad_blocks_are_named(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *bad[][2] = {
        {"{}", "notifier \"mail\": email needs \"smtp\" (smtp://host:port or smtps://host:port)"},
        {"{\"smtp\":\"http://x\",\"from\":\"a@b\",\"to\":\"c@d\"}",
         "notifier \"mail\": email needs \"smtp\" (smtp://host:port or smtps://host:port)"},
        {"{\"smtp\":\"smtp://x\",\"to\":\"c@d\"}",
         "notifier \"mail\": email needs \"from\" (an address)"},
        {"{\"smtp\":\"smtp://x\",\"from\":\"a@b\"}",
         "notifier \"mail\": email needs \"to\" (an address or a list of 1 to 32 addresses)"},
        {"{\"smtp\":\"smtp://x\",\"from\":\"a@b\",\"to\":{}}",
         "notifier \"mail\": email needs \"to\" (an address or a list of 1 to 32 addresses)"},
        {"{\"smtp\":\"smtp://x\",\"from\":\"a@b\",\"to\":[\"c@d\\r\\nBcc: e@f\"]}",
         "notifier \"mail\": email needs \"to\" (an address or a list of 1 to 32 addresses)"},
        {"{\"smtp\":\"smtp://x\",\"from\":\"a@b\",\"to\":\"c@d\",\"tls\":\"maybe\"}",
         "notifier \"mail\": tls must be \"try\" or \"always\""},
        {"{\"smtp\":\"smtp://x\",\"from\":\"a@b\",\"to\":\"c@d\",\"timeout\":\"soon\"}",
         "notifier \"mail\": bad timeout \"soon\""},
        {"{\"smtp\":\"smtp://x\",\"from\":\"a@b\",\"to\":\"c@d\",\"rate_limit\":\"lots\"}",
         "notifier \"mail\": bad rate_limit \"lots\" (like \"30/m\", \"2/s\", \"100/h\")"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        te_config_notifier_t cfg = {.name = (char *)"mail", .type = (char *)"email",
                                    .json = (char *)bad[i][0]};
        te_err_t err = {0};
        assert_null(te_notifier_new(&loop, &cfg, &err));
        assert_int_equal(err.code, TE_ECONFIG);
        assert_string_equal(err.msg, bad[i][1]);
    }
    /* smtps:// with credentials and tls = "always" is a valid block */
    te_config_notifier_t ok = {
        .name = (char *)"mail", .type = (char *)"email",
        .json = (char *)"{\"smtp\":\"smtps://mail.example.org:465\",\"from\":\"Te <te@x.org>\","
                        "\"to\":\"c@d\",\"username\":\"u\",\"password\":\"p\",\"tls\":\"always\"}"};
    te_err_t err = {0};
    te_notifier_t *n = te_notifier_new(&loop, &ok, &err);
    assert_non_null(n);
    te_notifier_free(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(email_delivers_a_multipart_message),
        cmocka_unit_test(email_sends_a_report_as_an_attachment),
        cmocka_unit_test(email_resolved_utf8_subject_and_dot_lines),
        cmocka_unit_test(email_rejected_data_is_retried_then_failed),
        cmocka_unit_test(email_unreachable_server_fails_without_blocking),
        cmocka_unit_test(email_bad_blocks_are_named),
        cmocka_unit_test(email_group_is_one_message_listing_every_alert),
        cmocka_unit_test(email_group_subject_without_common_pairs),
        cmocka_unit_test(email_group_of_1000_alerts),
        cmocka_unit_test(email_group_rejected_is_retried_then_failed),
        cmocka_unit_test(email_group_through_the_dispatcher),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
