/*
 * bench_http.c - HTTP ingest load client for telemetry-engine.
 *
 *   bench_http --port P --file EVENTS.ndjson [--conns 2] [--batch 1000]
 *              [--total N] [--rate EVENTS_PER_S --seconds S]
 *
 * Cuts the NDJSON file into batches of --batch lines and pre-builds one
 * HTTP/1.1 request per batch. Each connection (one thread, one keep-alive
 * socket) posts batches and waits for the answer: 200 means committed
 * (durable ack), so the figure is acknowledged events per second.
 *
 * Throughput mode (no --rate): the connections post back to back until
 * --total events are acknowledged; prints events/s.
 * Latency mode (--rate): each connection sends one batch every
 * conns*batch/rate seconds on a fixed schedule (absolute deadlines, so a
 * slow answer does not lower the offered load) for --seconds; prints the
 * ack latency p50/p99/max (send of the request to the end of the answer).
 * A 503 is retried after 1 ms and counted.
 *
 * Output: one line of "key=value" pairs for bench/run.sh.
 * THREAD: main + one thread per connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct req {
    char *buf;
    size_t len;
    int events;
} req_t;

typedef struct conn {
    int id;
    pthread_t th;
    double *lat_ms;
    size_t nlat, caplat;
    long acked_events;
    long retries;
    int failed;
} conn_t;

static struct {
    int port, conns, batch;
    long total;
    double rate, seconds;
    req_t *reqs;
    size_t nreqs;
    atomic_long next;    /* throughput mode: next request index */
    atomic_long claimed; /* events claimed so far */
} g = {.conns = 2, .batch = 1000, .total = 1000000, .seconds = 5};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one HTTP answer; returns its status and sets *accepted (or -1). */
static int read_answer(int fd, char *buf, size_t cap, long *accepted)
{
    size_t used = 0;
    char *hend = NULL;
    while (!hend) {
        if (used == cap - 1)
            return -1;
        ssize_t r = recv(fd, buf + used, cap - 1 - used, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        used += (size_t)r;
        buf[used] = '\0';
        hend = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    const char *cl = strcasestr(buf, "\r\ncontent-length:");
    size_t blen = cl ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
    size_t have = used - (size_t)(hend + 4 - buf);
    while (have < blen) {
        if (used == cap - 1)
            return -1;
        ssize_t r = recv(fd, buf + used, cap - 1 - used, 0);
        if (r <= 0)
            return -1;
        used += (size_t)r;
        have += (size_t)r;
    }
    buf[used] = '\0';
    const char *acc = strstr(hend, "\"accepted\":");
    *accepted = acc ? strtol(acc + 11, NULL, 10) : -1;
    return status;
}

/* Posts r until it is answered 200 (503 is retried); returns accepted or -1. */
static long post(conn_t *c, int *fd, const req_t *r, char *buf, size_t cap)
{
    for (int attempt = 0; attempt < 10000; attempt++) {
        if (*fd < 0 && (*fd = dial()) < 0)
            return -1;
        long acc;
        int st = -1;
        if (send_all(*fd, r->buf, r->len) == 0)
            st = read_answer(*fd, buf, cap, &acc);
        if (st == 200)
            return acc;
        if (st < 0) { /* connection closed: reconnect once */
            close(*fd);
            *fd = -1;
            if (attempt > 2)
                return -1;
            continue;
        }
        if (st != 503) {
            fprintf(stderr, "bench_http: answer %d: %.200s\n", st, buf);
            return -1;
        }
        c->retries++;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void add_lat(conn_t *c, double ms)
{
    if (c->nlat == c->caplat) {
        c->caplat = c->caplat ? c->caplat * 2 : 4096;
        c->lat_ms = realloc(c->lat_ms, c->caplat * sizeof(double));
        if (!c->lat_ms)
            abort();
    }
    c->lat_ms[c->nlat++] = ms;
}

static void *conn_main(void *arg)
{
    conn_t *c = arg;
    int fd = -1;
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    if (g.rate <= 0) {
        for (;;) {
            long claimed = atomic_fetch_add(&g.claimed, g.batch);
            if (claimed >= g.total)
                break;
            long i = atomic_fetch_add(&g.next, 1);
            const req_t *r = &g.reqs[(size_t)i % g.nreqs];
            long acc = post(c, &fd, r, buf, cap);
            if (acc < 0) {
                c->failed = 1;
                break;
            }
            c->acked_events += acc;
        }
    } else {
        double interval = (double)g.conns * g.batch / g.rate;
        double start = now_s() + 0.01 + interval * c->id / g.conns; /* stagger the connections */
        long n = (long)(g.seconds / interval);
        for (long k = 0; k < n; k++) {
            double due = start + (double)k * interval;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            double wait = due - now_s();
            if (wait > 0) {
                ts.tv_sec = (time_t)due;
                ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            }
            const req_t *r = &g.reqs[(size_t)(k * g.conns + c->id) % g.nreqs];
            double t0 = now_s();
            long acc = post(c, &fd, r, buf, cap);
            if (acc < 0) {
                c->failed = 1;
                break;
            }
            /* latency from the scheduled send time: includes any queueing
             * behind a slow previous answer (no coordinated omission) */
            add_lat(c, (now_s() - (t0 > due ? due : t0)) * 1000.0);
            c->acked_events += acc;
        }
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static int load_requests(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bench_http: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *all = malloc((size_t)size + 1);
    if (!all || fread(all, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        return -1;
    }
    fclose(f);
    all[size] = '\0';
    size_t cap = 64;
    g.reqs = malloc(cap * sizeof(req_t));
    char *p = all, *end = all + size;
    while (p < end) {
        char *q = p;
        int n = 0;
        while (q < end && n < g.batch) {
            char *nl = memchr(q, '\n', (size_t)(end - q));
            q = nl ? nl + 1 : end;
            n++;
        }
        if (n < g.batch)
            break; /* only whole batches */
        size_t blen = (size_t)(q - p);
        char head[256];
        int hl = snprintf(head, sizeof(head),
                          "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: application/x-ndjson\r\nContent-Length: %zu\r\n\r\n",
                          blen);
        if (g.nreqs == cap) {
            cap *= 2;
            g.reqs = realloc(g.reqs, cap * sizeof(req_t));
        }
        req_t *r = &g.reqs[g.nreqs++];
        r->buf = malloc((size_t)hl + blen);
        memcpy(r->buf, head, (size_t)hl);
        memcpy(r->buf + hl, p, blen);
        r->len = (size_t)hl + blen;
        r->events = n;
        p = q;
    }
    free(all);
    if (g.nreqs == 0) {
        fprintf(stderr, "bench_http: %s holds fewer than %d lines\n", path, g.batch);
        return -1;
    }
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_http: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--port"))
            g.port = atoi(v);
        else if (!strcmp(a, "--file"))
            file = v;
        else if (!strcmp(a, "--conns"))
            g.conns = atoi(v);
        else if (!strcmp(a, "--batch"))
            g.batch = atoi(v);
        else if (!strcmp(a, "--total"))
            g.total = atol(v);
        else if (!strcmp(a, "--rate"))
            g.rate = atof(v);
        else if (!strcmp(a, "--seconds"))
            g.seconds = atof(v);
        else {
            fprintf(stderr, "bench_http: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (!file || g.port <= 0 || g.conns < 1 || g.conns > 64 || g.batch < 1) {
        fprintf(stderr, "usage: bench_http --port P --file F [--conns C] [--batch B] "
                        "[--total N] [--rate R --seconds S]\n");
        return 2;
    }
    if (load_requests(file) != 0)
        return 1;
    conn_t *cs = calloc((size_t)g.conns, sizeof(conn_t));
    double t0 = now_s();
    for (int i = 0; i < g.conns; i++) {
        cs[i].id = i;
        pthread_create(&cs[i].th, NULL, conn_main, &cs[i]);
    }
    long acked = 0, retries = 0;
    int failed = 0;
    size_t nlat = 0;
    for (int i = 0; i < g.conns; i++) {
        pthread_join(cs[i].th, NULL);
        acked += cs[i].acked_events;
        retries += cs[i].retries;
        failed |= cs[i].failed;
        nlat += cs[i].nlat;
    }
    double secs = now_s() - t0;
    if (g.rate <= 0) {
        printf("events=%ld seconds=%.3f events_per_s=%.0f retries_503=%ld failed=%d\n", acked,
               secs, (double)acked / secs, retries, failed);
    } else {
        double *all = malloc((nlat ? nlat : 1) * sizeof(double));
        size_t k = 0;
        for (int i = 0; i < g.conns; i++)
            for (size_t j = 0; j < cs[i].nlat; j++)
                all[k++] = cs[i].lat_ms[j];
        qsort(all, nlat, sizeof(double), cmp_d);
        double p50 = nlat ? all[nlat / 2] : 0, p99 = nlat ? all[(nlat * 99) / 100] : 0;
        double mx = nlat ? all[nlat - 1] : 0;
        printf("events=%ld seconds=%.3f offered_per_s=%.0f achieved_per_s=%.0f requests=%zu "
               "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f retries_503=%ld failed=%d\n",
               acked, secs, g.rate, (double)acked / secs, nlat, p50, p99, mx, retries, failed);
        free(all);
    }
    return failed ? 1 : 0;
}
