/*
 * http_client.c - libcurl multi on libuv (see http_client.h).
 *
 * The one idea: curl tells us which sockets to watch (socket_cb) and when
 * to call it back (timer_cb); libuv tells us when they are ready. Finished
 * transfers are collected after every curl_multi_socket_action call.
 */
#include "http_client.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/buf.h"

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    te_http_client_t *c;
    struct sock_ctx *next; /* every live one, so close can close them */
} sock_ctx_t;

typedef struct req {
    CURL *easy;
    struct curl_slist *headers; /* HTTP headers, or SMTP recipients */
    char *body;
    size_t body_len, body_off;  /* SMTP: the message, read by curl */
    te_buf_t answer;
    te_http_client_cb cb;
    void *ud;
    char errbuf[CURL_ERROR_SIZE];
    struct req *prev, *next;
} req_t;

struct te_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    sock_ctx_t *socks;
    req_t *reqs;
    bool closing;
};

static void req_free(req_t *r)
{
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    te_buf_free(&r->answer);
    free(r);
}

static void req_unlink(te_http_client_t *c, req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

/* Hands every finished transfer to its callback. */
static void collect(te_http_client_t *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        req_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode res = msg->data.result;
        long status = 0;
        if (res == CURLE_OK)
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(c->multi, msg->easy_handle);
        req_unlink(c, r);
        const char *error = NULL;
        if (res != CURLE_OK)
            error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(res);
        r->cb(r->ud, status, error, r->answer.p ? r->answer.p : "", r->answer.len);
        req_free(r);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx_t *ctx = h->data;
    te_http_client_t *c = ctx->c;
    int flags = 0, running = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, ctx->fd, flags, &running);
    collect(c);
}

static void on_timeout(uv_timer_t *t)
{
    te_http_client_t *c = t->data;
    int running = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(c);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    te_http_client_t *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else /* 0 means at once: the next loop turn, never from inside curl */
        uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static void free_sock(uv_handle_t *h)
{
    free(h->data);
}

static void drop_sock(te_http_client_t *c, sock_ctx_t *ctx)
{
    for (sock_ctx_t **p = &c->socks; *p; p = &(*p)->next)
        if (*p == ctx) {
            *p = ctx->next;
            break;
        }
    uv_poll_stop(&ctx->poll);
    uv_close((uv_handle_t *)&ctx->poll, free_sock);
}

static int socket_cb(CURL *easy, curl_socket_t s, int action, void *userp, void *socketp)
{
    (void)easy;
    te_http_client_t *c = userp;
    sock_ctx_t *ctx = socketp;
    if (action == CURL_POLL_REMOVE) {
        if (ctx) {
            curl_multi_assign(c->multi, s, NULL);
            drop_sock(c, ctx);
        }
        return 0;
    }
    if (!ctx) {
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return -1;
        if (uv_poll_init_socket(c->loop, &ctx->poll, s) < 0) {
            free(ctx);
            return -1;
        }
        ctx->fd = s;
        ctx->c = c;
        ctx->poll.data = ctx;
        ctx->next = c->socks;
        c->socks = ctx;
        curl_multi_assign(c->multi, s, ctx);
    }
    int events = 0;
    if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&ctx->poll, events, on_poll);
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    req_t *r = ud;
    size_t n = size * nmemb;
    if (r->answer.len + n > 64 * 1024) /* an answer is only kept for messages */
        n = r->answer.len < 64 * 1024 ? 64 * 1024 - r->answer.len : 0;
    te_buf_add(&r->answer, ptr, n);
    return size * nmemb;
}

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int te_http_client_new(uv_loop_t *loop, te_http_client_t **out, te_err_t *err)
{
    static uv_once_t once = UV_ONCE_INIT;
    uv_once(&once, global_init);
    te_http_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return te_err_set(err, TE_ENOMEM, "http client: out of memory");
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return te_err_set(err, TE_EIO, "http client: curl_multi_init failed");
    }
    c->loop = loop;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    *out = c;
    return 0;
}

/* A request with a copy of body and the list (headers or recipients). */
static req_t *req_new(const char *body, size_t len, const char *const *list, int64_t timeout_ms,
                      te_http_client_cb cb, void *ud)
{
    req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->easy = curl_easy_init();
    r->body = malloc(len + 1);
    if (!r->easy || !r->body) {
        req_free(r);
        return NULL;
    }
    memcpy(r->body, body, len);
    r->body[len] = '\0';
    r->body_len = len;
    for (size_t i = 0; list && list[i]; i++) {
        struct curl_slist *h = curl_slist_append(r->headers, list[i]);
        if (!h) {
            req_free(r);
            return NULL;
        }
        r->headers = h;
    }
    r->cb = cb;
    r->ud = ud;
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 5000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    return r;
}

static int req_start(te_http_client_t *c, req_t *r)
{
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        req_free(r);
        return TE_ENOMEM;
    }
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    return 0;
}

int te_http_client_post(te_http_client_t *c, const char *url, const char *const *headers,
                        const char *body, size_t len, int64_t timeout_ms, te_http_client_cb cb,
                        void *ud)
{
    if (c->closing)
        return TE_ECLOSED;
    if (!url || !cb)
        return TE_EINVAL;
    req_t *r = req_new(body, len, headers, timeout_ms, cb, ud);
    if (!r)
        return TE_ENOMEM;
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "telemetry-engine/" TE_VERSION);
    return req_start(c, r);
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    req_t *r = ud;
    size_t n = size * nitems, left = r->body_len - r->body_off;
    if (n > left)
        n = left;
    memcpy(buf, r->body + r->body_off, n);
    r->body_off += n;
    return n;
}

/* SMTP: keeps the server's last error reply line (4xx/5xx; else its last
 * line) as the answer, so a failure can quote it ("554 5.7.1 rejected")
 * rather than the "221 bye" to curl's QUIT; curl only reports the code. */
static int on_debug(CURL *e, curl_infotype type, char *data, size_t size, void *ud)
{
    (void)e;
    req_t *r = ud;
    if (type != CURLINFO_HEADER_IN)
        return 0;
    while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r'))
        size--;
    size_t start = size;
    while (start > 0 && data[start - 1] != '\n')
        start--;
    if (start == size)
        return 0;
    if (size - start > 300)
        size = start + 300;
    bool had_error = r->answer.len > 0 && (r->answer.p[0] == '4' || r->answer.p[0] == '5');
    if (had_error && data[start] != '4' && data[start] != '5')
        return 0;
    r->answer.len = 0;
    te_buf_add(&r->answer, data + start, size - start);
    return 0;
}

int te_http_client_mail(te_http_client_t *c, const te_mail_t *m, const char *message, size_t len,
                        int64_t timeout_ms, te_http_client_cb cb, void *ud)
{
    if (c->closing)
        return TE_ECLOSED;
    if (!m->url || !m->from || !m->to || !m->to[0] || !cb)
        return TE_EINVAL;
    req_t *r = req_new(message, len, m->to, timeout_ms, cb, ud);
    if (!r)
        return TE_ENOMEM;
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, m->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, m->from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, r->headers);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, r);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_USE_SSL,
                     m->require_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, r);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L); /* the debug function sees the replies */
    if (m->username)
        curl_easy_setopt(e, CURLOPT_USERNAME, m->username);
    if (m->password)
        curl_easy_setopt(e, CURLOPT_PASSWORD, m->password);
    return req_start(c, r);
}

static void free_client(uv_handle_t *h)
{
    free(h->data);
}

void te_http_client_close(te_http_client_t *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    while (c->reqs) {
        req_t *r = c->reqs;
        curl_multi_remove_handle(c->multi, r->easy);
        req_unlink(c, r);
        r->cb(r->ud, 0, "cancelled", "", 0);
        req_free(r);
    }
    curl_multi_cleanup(c->multi); /* closes cached connections: socket_cb REMOVE */
    c->multi = NULL;
    while (c->socks) /* any curl did not remove */
        drop_sock(c, c->socks);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, free_client);
}
