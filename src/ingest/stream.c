/*
 * stream.c - NDJSON over TCP and Unix sockets, plus listen addresses.
 *
 * THREAD: loop.
 *
 * A connection owns a line splitter and at most one pending batch. Every
 * read callback parses its lines into the batch and submits it at the end
 * (or each TE_STREAM_BATCH_EVENTS events). TE_EFULL means: keep the batch,
 * stop reading, wait on the listener's paused list. The engine calls
 * te_stream_listener_resume whenever batches complete; paused connections
 * retry in arrival order and read again once their batch is queued. So a
 * slow disk slows the senders (TCP windows fill) and nothing is dropped.
 */
#include "stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/time.h"
#include "../pipeline/writer.h"
#include "ndjson.h"

#define READ_BUF_BYTES (64u * 1024u)

typedef union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
} any_stream_t;

typedef struct sconn sconn_t;

struct te_stream_listener {
    uv_loop_t *loop;
    te_stream_type_t type;
    const char *name;           /* "tcp" | "unix" */
    any_stream_t h;
    bool closing;
    te_writer_t *w;
    te_batch_done_cb done;
    void *done_ud;
    sconn_t *conns;
    sconn_t *paused_head, *paused_tail;
    char addr[256];
    bool unlink_on_free;
    te_stream_stats_t stats;
    int64_t last_log_ns;
    uint64_t log_suppressed;
};

struct sconn {
    te_stream_listener_t *l;
    any_stream_t h;
    te_ndjson_t nd;
    te_batch_t *batch;
    te_event_opts_t opts;
    bool paused, eof, closing;
    sconn_t *prev, *next, *pnext;
    char *rbuf;
};

/* ---- addresses ---- */

int te_addr_parse(const char *text, struct sockaddr_storage *out, te_err_t *err)
{
    char host[128];
    const char *colon, *port_s;
    char *end;
    int rc;

    memset(out, 0, sizeof(*out));
    if (text[0] == '[') {
        const char *rb = strchr(text, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - text - 1) >= sizeof(host))
            goto bad;
        memcpy(host, text + 1, (size_t)(rb - text - 1));
        host[rb - text - 1] = '\0';
        port_s = rb + 2;
    } else {
        colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof(host))
            goto bad;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port_s = colon + 1;
    }
    errno = 0;
    long port = strtol(port_s, &end, 10);
    if (!*port_s || *end || errno || port < 0 || port > 65535)
        goto bad;
    if (text[0] == '[') {
        rc = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out);
    } else {
        if (strcmp(host, "localhost") == 0)
            strcpy(host, "127.0.0.1");
        else if (host[0] == '\0' || strcmp(host, "*") == 0)
            strcpy(host, "0.0.0.0");
        rc = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out);
    }
    if (rc < 0)
        goto bad;
    return 0;
bad:
    return te_err_set(err, TE_EINVAL,
                      "bad address \"%s\": expected HOST:PORT or [IPv6]:PORT with an IP "
                      "address and a port 0-65535",
                      text);
}

void te_addr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
    char ip[64] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(s6, ip, sizeof(ip));
        snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        uv_ip4_name(s4, ip, sizeof(ip));
        snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    }
}

int te_addr_listen_error(te_err_t *err, const char *name, const char *addr, int uv_rc)
{
    const char *what = strcmp(name, "unix") == 0 ? "PATH" : "ADDR";
    if (uv_rc == UV_EADDRINUSE)
        return te_err_set(err, TE_EIO,
                          "%s: cannot listen on %s: %s (is another telemetry-engine running? "
                          "use --%s %s)",
                          name, addr, uv_strerror(uv_rc), name, what);
    return te_err_set(err, TE_EIO, "%s: cannot listen on %s: %s (use --%s %s)", name, addr,
                      uv_strerror(uv_rc), name, what);
}

/* ---- connections ---- */

static void log_reject(te_stream_listener_t *l, uint64_t line_no, const char *msg)
{
    int64_t now = te_time_mono_ns();
    l->stats.rejected++;
    if (l->last_log_ns && now - l->last_log_ns < TE_NS_PER_SEC) {
        l->log_suppressed++;
        return;
    }
    if (l->log_suppressed)
        te_log(TE_LOG_WARN, l->name, "rejected line %llu: %s (and %llu more rejected lines)",
               (unsigned long long)line_no, msg, (unsigned long long)l->log_suppressed);
    else
        te_log(TE_LOG_WARN, l->name, "rejected line %llu: %s", (unsigned long long)line_no, msg);
    l->last_log_ns = now;
    l->log_suppressed = 0;
}

/* Queues c's batch. Returns 0 (queued or nothing to queue) or TE_EFULL. */
static int submit(sconn_t *c)
{
    te_batch_t *b = c->batch;
    if (!b || b->n == 0)
        return 0;
    b->done = c->l->done;
    b->ud = c->l->done_ud;
    size_t n = b->n;
    int rc = te_writer_submit(c->l->w, b);
    if (rc == TE_EFULL)
        return rc;
    c->batch = NULL;
    if (rc < 0) {
        te_log(TE_LOG_ERROR, c->l->name, "writer refused a batch of %zu events: %s", n,
               te_strerror(rc));
        te_batch_free(b);
        return 0;
    }
    c->l->stats.submitted += n;
    return 0;
}

static int on_line(void *ud, const char *line, size_t len, uint64_t line_no, const char *error)
{
    sconn_t *c = ud;
    te_err_t err;
    if (error) {
        log_reject(c->l, line_no, error);
        return 0;
    }
    int rc = te_ndjson_add_event(&c->batch, TE_STREAM_BATCH_EVENTS, line, len, &c->opts, &err);
    if (rc == TE_ENOMEM)
        return rc;
    if (rc < 0) {
        log_reject(c->l, line_no, err.msg);
        return 0;
    }
    if (c->batch->n >= TE_STREAM_BATCH_EVENTS)
        submit(c);          /* on TE_EFULL the batch grows until the read ends */
    return 0;
}

static void sconn_closed(uv_handle_t *h)
{
    sconn_t *c = h->data;
    te_stream_listener_t *l = c->l;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->stats.connections--;
    te_ndjson_close(&c->nd);
    te_batch_free(c->batch);
    free(c->rbuf);
    free(c);
}

static void sconn_close(sconn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close(&c->h.handle, sconn_closed);
}

static void pause_conn(sconn_t *c)
{
    te_stream_listener_t *l = c->l;
    uv_read_stop(&c->h.stream);
    if (c->paused)
        return;
    c->paused = true;
    c->pnext = NULL;
    if (l->paused_tail)
        l->paused_tail->pnext = c;
    else
        l->paused_head = c;
    l->paused_tail = c;
    l->stats.paused++;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sconn_t *c = h->data;
    (void)suggested;
    if (!c->rbuf)
        c->rbuf = malloc(READ_BUF_BYTES);
    buf->base = c->rbuf;
    buf->len = c->rbuf ? READ_BUF_BYTES : 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sconn_t *c = s->data;
    int rc = 0;
    if (nread == 0)
        return;
    c->opts.recv_ts_ns = te_time_now_ns();
    if (nread > 0) {
        rc = te_ndjson_feed(&c->nd, buf->base, (size_t)nread);
    } else {
        uv_read_stop(s);
        c->eof = true;
        if (nread == UV_EOF)
            rc = te_ndjson_finish(&c->nd);
    }
    if (rc == TE_ENOMEM) {
        te_log(TE_LOG_ERROR, c->l->name, "out of memory; closing a connection");
        sconn_close(c);
        return;
    }
    if (submit(c) == TE_EFULL) {
        pause_conn(c);
        return;
    }
    if (c->eof)
        sconn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    te_stream_listener_t *l = server->data;
    int rc;
    if (status < 0 || l->closing)
        return;
    sconn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->l = l;
    if (l->type == TE_STREAM_TCP)
        rc = uv_tcp_init(l->loop, &c->h.tcp);
    else
        rc = uv_pipe_init(l->loop, &c->h.pipe, 0);
    if (rc < 0) {
        free(c);
        return;
    }
    c->h.handle.data = c;
    te_ndjson_init(&c->nd, 0, on_line, c);
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->stats.connections++;
    if (uv_accept(server, &c->h.stream) < 0 ||
        uv_read_start(&c->h.stream, on_alloc, on_read) < 0)
        sconn_close(c);
}

/* ---- listener ---- */

static int mkdir_parents(const char *path)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash || slash == tmp)
        return 0;
    *slash = '\0';
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Removes a socket file nobody listens on; refuses to remove other files. */
static int remove_stale_socket(const char *path, te_err_t *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return te_err_set(err, TE_EIO,
                          "unix: cannot listen on %s: a file that is not a socket is there "
                          "(remove it or use --unix PATH)",
                          path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0) {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        int in_use = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (in_use)
            return te_addr_listen_error(err, "unix", path, UV_EADDRINUSE);
    }
    unlink(path);
    return 0;
}

static void free_on_close(uv_handle_t *h)
{
    free(h->data);
}

int te_stream_listener_start(uv_loop_t *loop, te_stream_type_t type, const char *addr,
                             te_writer_t *w, te_batch_done_cb done, void *done_ud,
                             te_stream_listener_t **out, te_err_t *err)
{
    struct sockaddr_storage ss, bound;
    int namelen = sizeof(bound);
    int rc;
    te_stream_listener_t *l;

    if (type == TE_STREAM_TCP) {
        rc = te_addr_parse(addr, &ss, err);
        if (rc < 0)
            return rc;
    } else {
        struct sockaddr_un sun;
        if (strlen(addr) >= sizeof(sun.sun_path))
            return te_err_set(err, TE_EINVAL,
                              "unix: socket path %s is longer than %zu bytes (use a shorter "
                              "--unix PATH)",
                              addr, sizeof(sun.sun_path) - 1);
        rc = mkdir_parents(addr);
        if (rc < 0)
            return te_err_set(err, TE_EIO, "unix: cannot create the folder of %s: %s", addr,
                              strerror(-rc));
        rc = remove_stale_socket(addr, err);
        if (rc < 0)
            return rc;
    }
    l = calloc(1, sizeof(*l));
    if (!l)
        return te_err_set(err, TE_ENOMEM, "listen: out of memory");
    l->loop = loop;
    l->type = type;
    l->name = type == TE_STREAM_TCP ? "tcp" : "unix";
    l->w = w;
    l->done = done;
    l->done_ud = done_ud;
    if (type == TE_STREAM_TCP) {
        uv_tcp_init(loop, &l->h.tcp);
        l->h.handle.data = l;
        rc = uv_tcp_bind(&l->h.tcp, (const struct sockaddr *)&ss, 0);
        if (rc == 0)
            rc = uv_listen(&l->h.stream, 511, on_connection);
        if (rc == 0)
            rc = uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&bound, &namelen);
        if (rc == 0)
            te_addr_format((struct sockaddr *)&bound, l->addr, sizeof(l->addr));
    } else {
        uv_pipe_init(loop, &l->h.pipe, 0);
        l->h.handle.data = l;
        rc = uv_pipe_bind(&l->h.pipe, addr);
        if (rc == 0) {
            l->unlink_on_free = true;
            rc = uv_listen(&l->h.stream, 511, on_connection);
        }
        snprintf(l->addr, sizeof(l->addr), "%s", addr);
    }
    if (rc < 0) {
        te_addr_listen_error(err, l->name, addr, rc);
        if (l->unlink_on_free)
            unlink(addr);
        uv_close(&l->h.handle, free_on_close);
        return TE_EIO;
    }
    *out = l;
    return 0;
}

const char *te_stream_listener_address(const te_stream_listener_t *l)
{
    return l->addr;
}

void te_stream_listener_resume(te_stream_listener_t *l)
{
    while (l->paused_head) {
        sconn_t *c = l->paused_head;
        if (submit(c) == TE_EFULL)
            return;                 /* still full: keep order, try again later */
        l->paused_head = c->pnext;
        if (!l->paused_head)
            l->paused_tail = NULL;
        c->paused = false;
        c->pnext = NULL;
        l->stats.paused--;
        if (c->eof || l->closing)
            sconn_close(c);
        else if (uv_read_start(&c->h.stream, on_alloc, on_read) < 0)
            sconn_close(c);
    }
}

size_t te_stream_listener_close(te_stream_listener_t *l)
{
    size_t n = 0;
    if (!l || l->closing)
        return 0;
    l->closing = true;
    uv_close(&l->h.handle, NULL);
    for (sconn_t *c = l->conns; c; c = c->next) {
        if (c->closing)
            continue;
        uv_read_stop(&c->h.stream);
        if (!c->eof && te_ndjson_finish(&c->nd) == TE_ENOMEM)
            te_log(TE_LOG_ERROR, l->name, "out of memory at shutdown");
        if (c->batch && c->batch->n > 0) {
            te_batch_t *b = c->batch;
            b->done = l->done;
            b->ud = l->done_ud;
            c->batch = NULL;
            n += b->n;
            l->stats.submitted += b->n;
            if (te_writer_submit_wait(l->w, b) < 0)
                te_batch_free(b);
        }
        sconn_close(c);
    }
    l->paused_head = l->paused_tail = NULL;
    l->stats.paused = 0;
    return n;
}

void te_stream_listener_stats(const te_stream_listener_t *l, te_stream_stats_t *out)
{
    *out = l->stats;
}

void te_stream_listener_free(te_stream_listener_t *l)
{
    if (!l)
        return;
    if (l->unlink_on_free)
        unlink(l->addr);
    free(l);
}
