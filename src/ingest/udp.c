/*
 * udp.c - events from datagrams, batched per loop iteration (see udp.h).
 *
 * THREAD: loop. The receive buffer is one 64 KiB block owned by the
 * listener: each datagram is parsed in its callback, before the next read.
 */
#include "udp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/time.h"
#include "../pipeline/writer.h"
#include "ndjson.h"
#include "stream.h"

struct te_udp_listener {
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_check_t check;
    int open_handles;
    bool closing;
    bool free_requested;
    te_writer_t *w;
    te_batch_done_cb done;
    void *done_ud;
    te_batch_t *batch;
    char addr[80];
    te_udp_stats_t stats;
    int64_t last_log_ns;
    uint64_t log_suppressed;
    char buf[TE_UDP_MAX_DATAGRAM];
};

static void log_reject(te_udp_listener_t *u, const char *msg)
{
    int64_t now = te_time_mono_ns();
    u->stats.rejected++;
    if (u->last_log_ns && now - u->last_log_ns < TE_NS_PER_SEC) {
        u->log_suppressed++;
        return;
    }
    if (u->log_suppressed)
        te_log(TE_LOG_WARN, "udp", "rejected event: %s (and %llu more rejected events)",
               msg, (unsigned long long)u->log_suppressed);
    else
        te_log(TE_LOG_WARN, "udp", "rejected event: %s", msg);
    u->last_log_ns = now;
    u->log_suppressed = 0;
}

static void flush(te_udp_listener_t *u)
{
    te_batch_t *b = u->batch;
    if (!b || b->n == 0)
        return;
    u->batch = NULL;
    b->done = u->done;
    b->ud = u->done_ud;
    size_t n = b->n;
    int rc = te_writer_submit(u->w, b);
    if (rc == 0) {
        u->stats.submitted += n;
        return;
    }
    u->stats.dropped += n;
    te_batch_free(b);
}

static void on_check(uv_check_t *h)
{
    flush(h->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    te_udp_listener_t *u = h->data;
    (void)suggested;
    buf->base = u->buf;
    buf->len = sizeof(u->buf);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    te_udp_listener_t *u = h->data;
    te_err_t err;
    if (nread < 0) {
        te_log(TE_LOG_WARN, "udp", "receive failed: %s", uv_strerror((int)nread));
        return;
    }
    if (nread == 0 && !addr)
        return;                   /* nothing more to read now */
    u->stats.datagrams++;
    if (flags & UV_UDP_PARTIAL) {
        log_reject(u, "datagram over 65536 bytes was truncated");
        return;
    }
    if (te_ndjson_blank(buf->base, (size_t)nread)) {
        log_reject(u, "empty datagram");
        return;
    }
    /* one event, or several NDJSON lines batched into one datagram */
    te_event_opts_t opts = {.recv_ts_ns = te_time_now_ns()};
    const char *p = buf->base, *end = buf->base + nread;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        size_t len = (size_t)(stop - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (!te_ndjson_blank(p, len)) {
            int rc = te_ndjson_add_event(&u->batch, TE_UDP_BATCH_EVENTS, p, len, &opts, &err);
            if (rc < 0)
                log_reject(u, err.msg);
            else if (u->batch->n >= TE_UDP_BATCH_EVENTS)
                flush(u);
        }
        p = nl ? nl + 1 : end;
    }
}

static void on_closed(uv_handle_t *h)
{
    te_udp_listener_t *u = h->data;
    if (--u->open_handles == 0 && u->free_requested)
        free(u);
}

int te_udp_listener_start(uv_loop_t *loop, const char *addr, te_writer_t *w,
                          te_batch_done_cb done, void *done_ud, te_udp_listener_t **out,
                          te_err_t *err)
{
    struct sockaddr_storage ss, bound;
    int namelen = sizeof(bound);
    int rc = te_addr_parse(addr, &ss, err);
    if (rc < 0)
        return rc;
    te_udp_listener_t *u = calloc(1, sizeof(*u));
    if (!u)
        return te_err_set(err, TE_ENOMEM, "udp: out of memory");
    u->loop = loop;
    u->w = w;
    u->done = done;
    u->done_ud = done_ud;
    uv_udp_init(loop, &u->udp);
    uv_check_init(loop, &u->check);
    u->udp.data = u;
    u->check.data = u;
    u->open_handles = 2;
    rc = uv_udp_bind(&u->udp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_udp_getsockname(&u->udp, (struct sockaddr *)&bound, &namelen);
    if (rc == 0)
        rc = uv_udp_recv_start(&u->udp, on_alloc, on_recv);
    if (rc == 0)
        rc = uv_check_start(&u->check, on_check);
    if (rc < 0) {
        te_addr_listen_error(err, "udp", addr, rc);
        u->closing = true;
        u->free_requested = true;
        uv_close((uv_handle_t *)&u->udp, on_closed);
        uv_close((uv_handle_t *)&u->check, on_closed);
        return TE_EIO;
    }
    uv_unref((uv_handle_t *)&u->check);
    te_addr_format((struct sockaddr *)&bound, u->addr, sizeof(u->addr));
    *out = u;
    return 0;
}

const char *te_udp_listener_address(const te_udp_listener_t *u)
{
    return u->addr;
}

size_t te_udp_listener_close(te_udp_listener_t *u)
{
    size_t n = 0;
    if (!u || u->closing)
        return 0;
    u->closing = true;
    uv_udp_recv_stop(&u->udp);
    if (u->batch && u->batch->n > 0) {
        te_batch_t *b = u->batch;
        u->batch = NULL;
        b->done = u->done;
        b->ud = u->done_ud;
        n = b->n;
        u->stats.submitted += n;
        if (te_writer_submit_wait(u->w, b) < 0)
            te_batch_free(b);
    }
    uv_close((uv_handle_t *)&u->udp, on_closed);
    uv_close((uv_handle_t *)&u->check, on_closed);
    return n;
}

void te_udp_listener_stats(const te_udp_listener_t *u, te_udp_stats_t *out)
{
    *out = u->stats;
}

void te_udp_listener_free(te_udp_listener_t *u)
{
    if (!u)
        return;
    if (u->open_handles == 0)
        free(u);
    else
        u->free_requested = true;
}
