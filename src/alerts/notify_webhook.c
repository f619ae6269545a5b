/*
 * notify_webhook.c - the webhook and slack notifiers (SPEC section 7).
 *
 * THREAD: loop. Both POST JSON through the curl-multi client
 * (alerts/http_client.h): webhook the stable SPEC 7 payload, slack an
 * incoming-webhook message with blocks and a colour by severity. A
 * delivery that fails (no answer, timeout, a non-2xx status) is retried
 * `retries` times (default 3) after 0.5 s, 1 s, 2 s, ... ; `timeout`
 * (default 5s) bounds each attempt; `rate_limit` ("30/m", "2/s", "100/h",
 * or a bare number per minute) refuses sends past the rate with TE_EFULL
 * so the caller can retry later.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alerts/http_client.h"
#include "alerts/notify.h"
#include "core/time.h"

#define MAX_HEADERS 32

typedef struct hook_impl {
    te_http_client_t *client;
    char *url;
    int64_t timeout_ms;
    int retries;
    bool slack;
    char *headers[MAX_HEADERS + 2]; /* "Name: value", NULL-terminated */
    double rate_per_s;              /* 0: no limit */
    double tokens;                  /* token bucket */
    int64_t refill_ns;
    struct attempt *pending;        /* deliveries in progress */
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
    (void)len;
    if (!error && status >= 200 && status < 300) {
        finish(at, 0, NULL);
        return;
    }
    if (error && strcmp(error, "cancelled") == 0) {
        snprintf(msg, sizeof(msg), "notifier \"%s\": cancelled (engine stopping)", at->n->name);
        finish(at, TE_ECLOSED, msg);
        return;
    }
    if (error)
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
    int rc = te_http_client_post(h->client, h->url, (const char *const *)h->headers, at->body,
                                 at->len, h->timeout_ms, on_answer, at);
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

static int hook_send(te_notifier_t *n, const te_alert_t *a, const char *status,
                     te_notify_done_cb done, void *ud)
{
    hook_impl_t *h = n->impl;
    attempt_t *at = calloc(1, sizeof(*at));
    if (!at)
        return TE_ENOMEM;
    at->body = h->slack ? slack_body(a, status) : te_alert_to_json(a, status);
    if (!at->body) {
        free(at);
        return TE_ENOMEM;
    }
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
        for (size_t i = 0; h->headers[i]; i++)
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

te_notifier_t *te_notifier_webhook_new(uv_loop_t *loop, const char *name, const char *json,
                                       bool slack, te_err_t *err)
{
    te_notifier_t *n = calloc(1, sizeof(*n));
    hook_impl_t *h = calloc(1, sizeof(*h));
    cJSON *root = cJSON_Parse(json ? json : "");
    size_t nh = 0;
    if (!n || !h) {
        te_err_set(err, TE_ENOMEM, "out of memory");
        goto fail;
    }
    n->impl = h;
    n->loop = loop;
    n->name = strdup(name);
    n->type = strdup(slack ? "slack" : "webhook");
    n->send = hook_send;
    n->free = hook_free;
    h->slack = slack;
    h->timeout_ms = 5000;
    h->retries = 3;
    if (!cJSON_IsObject(root)) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": block is not a JSON object", name);
        goto fail;
    }
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(root, "url"));
    if (!url || strncmp(url, "http", 4) != 0) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": %s needs a \"url\" (http:// or https://)",
                   name, n->type ? n->type : "webhook");
        goto fail;
    }
    h->url = strdup(url);
    const char *timeout = cJSON_GetStringValue(cJSON_GetObjectItem(root, "timeout"));
    int64_t ns = 0;
    if (timeout && (te_duration_parse(timeout, &ns, NULL) < 0 || ns <= 0)) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": bad timeout \"%s\"", name, timeout);
        goto fail;
    }
    if (timeout)
        h->timeout_ms = ns / TE_NS_PER_MS > 0 ? ns / TE_NS_PER_MS : 1;
    const cJSON *retries = cJSON_GetObjectItem(root, "retries");
    if (retries) {
        if (!cJSON_IsNumber(retries) || retries->valuedouble < 0 || retries->valuedouble > 100) {
            te_err_set(err, TE_ECONFIG, "notifier \"%s\": retries must be 0 to 100", name);
            goto fail;
        }
        h->retries = (int)retries->valuedouble;
    }
    const char *rate = cJSON_GetStringValue(cJSON_GetObjectItem(root, "rate_limit"));
    if (rate && parse_rate(rate, &h->rate_per_s) < 0) {
        te_err_set(err, TE_ECONFIG,
                   "notifier \"%s\": bad rate_limit \"%s\" (like \"30/m\", \"2/s\", \"100/h\")",
                   name, rate);
        goto fail;
    }
    h->tokens = h->rate_per_s * 60.0 < 1.0 ? 1.0 : h->rate_per_s * 60.0;
    h->refill_ns = te_time_mono_ns();
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
    if (!n->name || !n->type || !h->url ||
        te_http_client_new(loop, &h->client, err) < 0) {
        if (err && !err->code)
            te_err_set(err, TE_ENOMEM, "out of memory");
        goto fail;
    }
    cJSON_Delete(root);
    return n;
fail:
    cJSON_Delete(root);
    if (n)
        hook_free(n);
    else
        free(h);
    return NULL;
}
