/*
 * http.c - HTTP/1.1 on libuv + http_parser: one request at a time per
 * connection (see http.h for the design).
 *
 * THREAD: loop.
 *
 * Flow of a connection: read_cb parses straight from the read buffer; when
 * a message completes, on_message_complete pauses the parser, the unparsed
 * rest is copied aside (c->in) and the request is dispatched. A handler that
 * answers at once lets pump() parse the rest; one that answers later (after
 * commit, after a worker job) leaves the connection not reading until then.
 * Answers that end the connection (413, 400, "Connection: close", shutdown)
 * are followed by a lingering close: FIN, discard input for up to 1 s, close,
 * so the client reads the answer instead of a reset.
 */
#include "http.h"

#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/time.h"
#include "stream.h"

#define READ_BUF_BYTES (64u * 1024u)
#define LINGER_MS 1000
#define IDLE_MS 60000     /* no byte for this long while waiting for a request: close */

struct te_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool closing;
    size_t max_body;
    te_http_handler_cb handler;
    void *ud;
    http_parser_settings settings;
    te_http_conn_t *conns;
    size_t nconns;
    uint64_t codes[600];
    char addr[80];
};

struct te_http_conn {
    te_http_server_t *srv;
    uv_tcp_t tcp;
    uv_timer_t linger;
    uv_shutdown_t shutdown;
    http_parser parser;
    int refs;                 /* tcp + timer handles, + 1 while a request is handled */
    te_http_conn_t *prev, *next;
    te_http_req_t *req;       /* being parsed or handled */
    bool ready;               /* req complete, not yet dispatched */
    bool handling;            /* req with the handler, unanswered */
    bool in_dispatch;
    bool closing;             /* uv_close called */
    bool close_after_write;   /* no more requests: linger-close after the writes */
    bool lingering;
    bool reading;
    int fatal_status;
    char fatal_msg[200];
    size_t header_bytes;
    bool in_value;            /* header parsing: last callback was a value */
    char hname[32];
    size_t hname_len;
    char hval[512];   /* long enough for "Authorization: Bearer <token>" */
    size_t hval_len;
    bool expect_continue;
    size_t body_cap;          /* bytes allocated for req->body */
    char *in;                 /* unparsed bytes after a paused request */
    size_t in_off, in_len, in_cap;
    size_t writes;            /* uv_write in flight */
    char *rbuf;
};

typedef struct wreq {
    uv_write_t w;
    te_http_conn_t *conn;
    char *body;
    char head[];
} wreq_t;

/* ---- connection lifetime ---- */

static void req_free(te_http_req_t *req)
{
    if (!req)
        return;
    for (size_t i = 0; i < req->nparams; i++) {
        free(req->params[i].key);
        free(req->params[i].value);
    }
    free(req->body);
    free(req->url);
    free(req);
}

static void conn_unref(te_http_conn_t *c)
{
    if (--c->refs > 0)
        return;
    te_http_server_t *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    req_free(c->req);
    free(c->in);
    free(c->rbuf);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void conn_close(te_http_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reading = false;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->linger, on_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    te_http_conn_t *c = h->data;
    (void)suggested;
    if (!c->rbuf)
        c->rbuf = malloc(READ_BUF_BYTES);
    buf->base = c->rbuf;
    buf->len = c->rbuf ? READ_BUF_BYTES : 0;
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

/* The same timer serves as the idle timeout while a connection waits for
 * (the rest of) a request, and as the linger timeout at the end. */
static void arm_idle(te_http_conn_t *c)
{
    if (!c->closing && !c->lingering)
        uv_timer_start(&c->linger, on_linger_timeout, IDLE_MS, 0);
}

static void on_discard(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        conn_close(s->data);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    te_http_conn_t *c = sr->data;
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_discard) < 0 ||
        uv_timer_start(&c->linger, on_linger_timeout, LINGER_MS, 0) < 0)
        conn_close(c);
}

/* FIN after the last answer, then drain input briefly (see top comment). */
static void conn_linger(te_http_conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    c->lingering = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        conn_close(c);
}

static void on_write(uv_write_t *w, int status)
{
    wreq_t *wr = (wreq_t *)w;
    te_http_conn_t *c = wr->conn;
    free(wr->body);
    free(wr);
    c->writes--;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->writes == 0 && c->close_after_write && !c->handling)
        conn_linger(c);
}

static void write_raw(te_http_conn_t *c, const char *head, size_t head_len, char *body,
                      size_t body_len)
{
    wreq_t *wr = malloc(sizeof(*wr) + head_len);
    if (!wr) {
        free(body);
        conn_close(c);
        return;
    }
    memcpy(wr->head, head, head_len);
    wr->conn = c;
    wr->body = body;
    uv_buf_t bufs[2] = {uv_buf_init(wr->head, (unsigned)head_len),
                        uv_buf_init(body, (unsigned)body_len)};
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, bufs, body_len ? 2 : 1, on_write) < 0) {
        free(body);
        free(wr);
        conn_close(c);
        return;
    }
    c->writes++;
}

static void write_response(te_http_conn_t *c, int status, const char *ctype, const char *extra,
                           char *body, size_t len, bool keep)
{
    char head[1024];
    const char *reason = http_status_str((enum http_status)status);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n%s\r\n",
                     status, reason, ctype ? ctype : "application/json", len,
                     keep ? "keep-alive" : "close", extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof(head)) {
        free(body);
        conn_close(c);
        return;
    }
    if (!keep)
        c->close_after_write = true;
    write_raw(c, head, (size_t)n, body, len);
}

/* ---- answering ---- */

static void pump(te_http_conn_t *c);

void te_http_respond_take(te_http_req_t *req, int status, const char *ctype,
                          const char *extra_headers, char *body, size_t len)
{
    te_http_conn_t *c = req->conn;
    te_http_server_t *srv = c->srv;
    bool keep = req->keep_alive && !srv->closing && !c->closing && !c->close_after_write;

    if (status >= 100 && status < 600)
        srv->codes[status]++;
    if (!c->closing)
        write_response(c, status, ctype, extra_headers, body, len, keep);
    else
        free(body);
    req_free(req);
    c->req = NULL;
    c->handling = false;
    if (!c->closing && c->close_after_write && c->writes == 0)
        conn_linger(c);
    else if (keep && !c->in_dispatch && !c->closing)
        pump(c);
    conn_unref(c);
}

void te_http_respond(te_http_req_t *req, int status, const char *ctype, const char *extra_headers,
                     const char *body, size_t len)
{
    char *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            te_http_respond_take(req, 500, NULL, NULL, NULL, 0);
            return;
        }
        memcpy(copy, body, len);
    }
    te_http_respond_take(req, status, ctype, extra_headers, copy, len);
}

static char *error_json(size_t *len, const char *fmt, va_list ap)
{
    char msg[1024];
    te_buf_t b = {0};
    vsnprintf(msg, sizeof(msg), fmt, ap);
    te_buf_adds(&b, "{\"error\":");
    te_buf_add_json_str(&b, msg, strlen(msg));
    te_buf_adds(&b, "}\n");
    if (b.oom) {
        te_buf_free(&b);
        *len = 0;
        return NULL;
    }
    *len = b.len;
    return b.p;
}

void te_http_respond_error(te_http_req_t *req, int status, const char *extra_headers,
                           const char *fmt, ...)
{
    size_t len;
    va_list ap;
    va_start(ap, fmt);
    char *body = error_json(&len, fmt, ap);
    va_end(ap);
    te_http_respond_take(req, status, NULL, extra_headers, body, len);
}

/* An answer the parser itself gives (400, 413, 431): always closes. */
static void respond_fatal(te_http_conn_t *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void respond_fatal(te_http_conn_t *c, int status, const char *fmt, ...)
{
    size_t len;
    va_list ap;
    va_start(ap, fmt);
    char *body = error_json(&len, fmt, ap);
    va_end(ap);
    c->srv->codes[status]++;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    req_free(c->req);
    c->req = NULL;
    c->ready = false;
    c->in_off = c->in_len = 0;
    write_response(c, status, NULL, NULL, body, len, false);
}

const char *te_http_param(const te_http_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++) {
        if (strcmp(req->params[i].key, name) == 0)
            return req->params[i].value;
    }
    return NULL;
}

bool te_http_req_connected(const te_http_req_t *req)
{
    return !req->conn->closing;
}

/* ---- parsing ---- */

static void fatal(te_http_conn_t *c, int status, const char *msg)
{
    if (c->fatal_status)
        return;
    c->fatal_status = status;
    snprintf(c->fatal_msg, sizeof(c->fatal_msg), "%s", msg);
    http_parser_pause(&c->parser, 1);
}

static bool count_header_bytes(te_http_conn_t *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes <= TE_HTTP_MAX_HEADER_BYTES)
        return true;
    fatal(c, 431, "request line and headers are over the 65536-byte limit");
    return false;
}

static int on_message_begin(http_parser *p)
{
    te_http_conn_t *c = p->data;
    req_free(c->req);
    c->req = calloc(1, sizeof(*c->req));
    if (!c->req) {
        fatal(c, 500, "out of memory");
        return 0;
    }
    c->req->conn = c;
    c->header_bytes = 0;
    c->in_value = false;
    c->hname_len = c->hval_len = 0;
    c->expect_continue = false;
    c->body_cap = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    te_http_conn_t *c = p->data;
    te_http_req_t *req = c->req;
    if (!req || !count_header_bytes(c, len))
        return 0;
    if (req->url_len + len + 1 > req->url_cap) {
        size_t cap = req->url_cap ? req->url_cap * 2 : 256;
        while (cap < req->url_len + len + 1)
            cap *= 2;
        char *u = realloc(req->url, cap);
        if (!u) {
            fatal(c, 500, "out of memory");
            return 0;
        }
        req->url = u;
        req->url_cap = cap;
    }
    memcpy(req->url + req->url_len, at, len);
    req->url_len += len;
    req->url[req->url_len] = '\0';
    return 0;
}

/* Only Content-Encoding and Expect matter here; longer names/values are
 * truncated into the small buffers, which cannot match then. */
static void header_done(te_http_conn_t *c)
{
    if (!c->in_value || !c->req)
        return;
    c->hname[c->hname_len] = '\0';
    c->hval[c->hval_len] = '\0';
    if (strcasecmp(c->hname, "content-encoding") == 0) {
        /* an encoding name too long to be one we know stays unknown (415) */
        size_t n = strlen(c->hval);
        if (n >= sizeof(c->req->enc_buf))
            n = sizeof(c->req->enc_buf) - 1;
        memcpy(c->req->enc_buf, c->hval, n);
        c->req->enc_buf[n] = '\0';
    } else if (strcasecmp(c->hname, "authorization") == 0) {
        memcpy(c->req->auth_buf, c->hval, c->hval_len + 1); /* both hold 512 */
    }
    else if (strcasecmp(c->hname, "expect") == 0 && strcasecmp(c->hval, "100-continue") == 0)
        c->expect_continue = true;
    c->in_value = false;
    c->hname_len = c->hval_len = 0;
}

static void append_small(char *buf, size_t *len, size_t cap, const char *at, size_t n)
{
    size_t room = cap - 1 - *len;
    if (n > room) {
        n = room;
        *len = cap - 1;      /* mark as overflowed: name/value cannot match */
        buf[0] = '\x01';
        return;
    }
    memcpy(buf + *len, at, n);
    *len += n;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    te_http_conn_t *c = p->data;
    if (!count_header_bytes(c, len))
        return 0;
    header_done(c);
    append_small(c->hname, &c->hname_len, sizeof(c->hname), at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    te_http_conn_t *c = p->data;
    if (!count_header_bytes(c, len))
        return 0;
    c->in_value = true;
    append_small(c->hval, &c->hval_len, sizeof(c->hval), at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    te_http_conn_t *c = p->data;
    te_http_req_t *req = c->req;
    char msg[200];

    header_done(c);
    if (!req || c->fatal_status)
        return 0;
    if (!req->url)
        on_url(p, "/", 1);
    if (!req->url)
        return 0;
    if (te_http_parse_url(req) < 0) {
        fatal(c, 400, "bad query string: more than 64 parameters or out of memory");
        return 0;
    }
    if (req->enc_buf[0])
        req->content_encoding = req->enc_buf;
    if (req->auth_buf[0])
        req->authorization = req->auth_buf;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0) {
        if (p->content_length > c->srv->max_body) {
            snprintf(msg, sizeof(msg),
                     "request body is %llu bytes, over the %zu-byte limit (listen.max_body)",
                     (unsigned long long)p->content_length, c->srv->max_body);
            fatal(c, 413, msg);
            return 0;
        }
        req->body = malloc((size_t)p->content_length + 1);
        if (!req->body) {
            fatal(c, 500, "out of memory");
            return 0;
        }
        c->body_cap = (size_t)p->content_length + 1;
    }
    if (c->expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        write_raw(c, cont, sizeof(cont) - 1, NULL, 0);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    te_http_conn_t *c = p->data;
    te_http_req_t *req = c->req;
    char msg[200];
    if (!req || c->fatal_status)
        return 0;
    if (req->body_len + len > c->srv->max_body) {
        snprintf(msg, sizeof(msg), "request body is over the %zu-byte limit (listen.max_body)",
                 c->srv->max_body);
        fatal(c, 413, msg);
        return 0;
    }
    if (req->body_len + len + 1 > c->body_cap) {
        /* chunked (or a short Content-Length buffer): grow geometrically */
        size_t cap = c->body_cap ? c->body_cap : 16384;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        char *nb = realloc(req->body, cap);
        if (!nb) {
            fatal(c, 500, "out of memory");
            return 0;
        }
        req->body = nb;
        c->body_cap = cap;
    }
    memcpy(req->body + req->body_len, at, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    te_http_conn_t *c = p->data;
    if (!c->req || c->fatal_status)
        return 0;
    c->req->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    c->req->method = (int)p->method;
    c->ready = true;
    http_parser_pause(p, 1);
    return 0;
}

/* Hands a complete request to the handler. Returns true when it was
 * answered at once (the caller may parse on). */
static bool dispatch(te_http_conn_t *c)
{
    te_http_req_t *req = c->req;
    c->ready = false;
    c->handling = true;
    c->refs++;
    uv_timer_stop(&c->linger);
    req->start_ns = te_time_mono_ns();
    if (!req->path)
        req->path = "/";
    c->in_dispatch = true;
    c->srv->handler(req, c->srv->ud);
    c->in_dispatch = false;
    return !c->handling;
}

/* Looks at the parser after http_parser_execute. Returns true when parsing
 * may go on with the next bytes. */
static bool after_execute(te_http_conn_t *c)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->fatal_status) {
        respond_fatal(c, c->fatal_status, "%s", c->fatal_msg);
        return false;
    }
    if (e == HPE_PAUSED) {
        http_parser_pause(&c->parser, 0);
        if (c->ready)
            return dispatch(c) && !c->close_after_write && !c->closing;
        return true;
    }
    if (e != HPE_OK) {
        respond_fatal(c, 400, "bad request: %s", http_errno_description(e));
        return false;
    }
    return true;
}

static void start_reading(te_http_conn_t *c);

/* Parses what is left in c->in, one request at a time. */
static void pump(te_http_conn_t *c)
{
    while (!c->closing && !c->handling && !c->close_after_write) {
        if (c->in_off >= c->in_len) {
            c->in_off = c->in_len = 0;
            start_reading(c);
            return;
        }
        size_t n = c->in_len - c->in_off;
        size_t used = http_parser_execute(&c->parser, &c->srv->settings, c->in + c->in_off, n);
        c->in_off += used;
        if (!after_execute(c))
            return;
        if (used == 0 && !c->handling && c->in_off < c->in_len) {
            respond_fatal(c, 400, "bad request: parser made no progress");
            return;
        }
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    te_http_conn_t *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or error: a request being handled keeps the conn referenced */
        conn_close(c);
        return;
    }
    size_t n = (size_t)nread;
    arm_idle(c);
    size_t used = http_parser_execute(&c->parser, &c->srv->settings, buf->base, n);
    if (used < n && HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED && !c->fatal_status) {
        size_t rest = n - used;
        if (rest > c->in_cap) {
            char *p = realloc(c->in, rest);
            if (!p) {
                conn_close(c);
                return;
            }
            c->in = p;
            c->in_cap = rest;
        }
        memcpy(c->in, buf->base + used, rest);
        c->in_off = 0;
        c->in_len = rest;
    }
    if (c->ready || c->fatal_status || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
        uv_read_stop(s);
        c->reading = false;
        if (after_execute(c))
            pump(c);
    }
}

static void start_reading(te_http_conn_t *c)
{
    if (c->reading || c->closing || c->srv->closing)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
    arm_idle(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    te_http_server_t *srv = server->data;
    if (status < 0 || srv->closing)
        return;
    te_http_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->linger);
    c->tcp.data = c;
    c->linger.data = c;
    c->refs = 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    start_reading(c);
}

/* ---- server ---- */

static void free_on_close(uv_handle_t *h)
{
    free(h->data);
}

int te_http_server_start(uv_loop_t *loop, const te_http_opts_t *opts, te_http_server_t **out,
                         te_err_t *err)
{
    struct sockaddr_storage ss;
    struct sockaddr_storage bound;
    int namelen = sizeof(bound);
    int rc = te_addr_parse(opts->addr, &ss, err);
    if (rc < 0)
        return rc;
    te_http_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return te_err_set(err, TE_ENOMEM, "http: out of memory");
    srv->loop = loop;
    srv->max_body = opts->max_body_bytes ? opts->max_body_bytes : 16u * 1024u * 1024u;
    srv->handler = opts->handler;
    srv->ud = opts->ud;
    srv->settings.on_message_begin = on_message_begin;
    srv->settings.on_url = on_url;
    srv->settings.on_header_field = on_header_field;
    srv->settings.on_header_value = on_header_value;
    srv->settings.on_headers_complete = on_headers_complete;
    srv->settings.on_body = on_body;
    srv->settings.on_message_complete = on_message_complete;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &namelen);
    if (rc < 0) {
        te_addr_listen_error(err, "http", opts->addr, rc);
        /* freed by the close callback: the caller runs the loop to its end */
        uv_close((uv_handle_t *)&srv->listener, free_on_close);
        return TE_EIO;
    }
    te_addr_format((struct sockaddr *)&bound, srv->addr, sizeof(srv->addr));
    *out = srv;
    return 0;
}

void te_http_server_address(const te_http_server_t *srv, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", srv->addr);
}

void te_http_server_close(te_http_server_t *srv)
{
    if (!srv || srv->closing)
        return;
    srv->closing = true;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    te_http_conn_t *c = srv->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
        c->close_after_write = true;
        if (c->handling)
            continue;         /* closes after its answer */
        if (c->writes > 0)
            continue;         /* on_write lingers */
        conn_close(c);
    }
}

void te_http_server_free(te_http_server_t *srv)
{
    free(srv);
}

uint64_t te_http_server_count(const te_http_server_t *srv, int status)
{
    return status >= 100 && status < 600 ? srv->codes[status] : 0;
}

size_t te_http_server_connections(const te_http_server_t *srv)
{
    return srv->nconns;
}
