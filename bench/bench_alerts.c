/*
 * bench_alerts.c - alert delivery figures of issue #4 on the real binary.
 *
 *   bench_alerts --bin BUILD/telemetry-engine [--lat 200] [--burst 10000] [--keep]
 *
 * Starts `telemetry-engine serve` on a temp data folder with a
 * telemetry.lua that declares two webhook notifiers pointing at a
 * loopback HTTP receiver run by this program (a thread, plain sockets,
 * answers 200 at once, "100 Continue" when asked), and one rule file:
 *
 *   bench-lat   kind bench_lat, group_by g, every 1s, window 2s, fires
 *               when its group has an event, notify "hook" (no grouping)
 *   bench-burst kind bench_burst, group_by g, every 1s, window 1m,
 *               notify "grouped" (group_by rule, group_wait 1s,
 *               group_interval 5m), max_groups 20000
 *
 * 1. Latency: --lat events, each for a new group, posted 50 ms apart
 *    (about 20 groups fire per evaluation). Each group fires at the next
 *    evaluation and resolves when its event leaves the 2 s window: two
 *    transitions per group. The payload's starts_at (firing) and ends_at
 *    (resolved) are the evaluation time in ns precision, so
 *    "transition -> webhook" = arrival at the receiver (CLOCK_REALTIME)
 *    - that time: Lua evaluation of the tick, the history + outbox
 *    transaction, the dispatcher and libcurl. Also printed: "event acked
 *    -> firing webhook", which adds the wait for the next evaluation (up
 *    to one `every`, 1 s).
 * 2. Burst: just after an evaluation, --burst events for as many groups
 *    are posted (NDJSON, 1000 per request), so they all fire at the next
 *    evaluation. Counts the grouped notifier's messages and the alerts in
 *    them, the distinct starts_at (evaluations that fired them), the
 *    time from the firing to the first and last message, and serve's
 *    VmHWM (peak RSS) before and after.
 *
 * Output: "key=value" lines on stdout for bench/run.sh; progress on
 * stderr. Figures are printed, not asserted.
 * THREAD: main + the receiver thread (counters under one mutex).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/time.h"

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)
#define MAX_CONNS 128
#define MAX_STARTS 64

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {(time_t)(ns / SEC), (long)(ns % SEC)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ---- what the receiver saw (under mu) ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int nlat;              /* --lat */
    int64_t *acked_ns;     /* per lat group: when its event was acked */
    int64_t *fire_arr_ns;  /* per lat group: first firing webhook arrival (0: none) */
    double *lat_ms;        /* transition -> webhook, firing and resolved */
    size_t nlatv, caplat;
    long hook_firing, hook_resolved, hook_other, bad;
    long g_messages, g_alerts, g_max_per_msg;
    int64_t g_first_ns, g_last_ns;
    int64_t starts[MAX_STARTS]; /* distinct starts_at of grouped alerts */
    int nstarts;
    int64_t g_min_start, g_max_start;
} R;

static volatile int stop_rx;

static int64_t parse_time(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    int64_t ns = 0;
    te_err_t err;
    if (!cJSON_IsString(v) || te_time_parse_rfc3339(v->valuestring, strlen(v->valuestring), &ns, &err))
        return 0;
    return ns;
}

static void on_hook(const cJSON *root, int64_t arr)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "status");
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(root, "alert");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(al, "group"), "g");
    if (!cJSON_IsString(st) || !cJSON_IsObject(al)) {
        R.bad++;
        return;
    }
    bool firing = strcmp(st->valuestring, "firing") == 0;
    bool resolved = strcmp(st->valuestring, "resolved") == 0;
    int64_t t = firing ? parse_time(al, "starts_at") : resolved ? parse_time(al, "ends_at") : 0;
    if (!t) {
        R.hook_other++;
        return;
    }
    firing ? R.hook_firing++ : R.hook_resolved++;
    if (R.nlatv == R.caplat) {
        R.caplat = R.caplat ? R.caplat * 2 : 1024;
        R.lat_ms = realloc(R.lat_ms, R.caplat * sizeof(double));
        if (!R.lat_ms)
            abort();
    }
    R.lat_ms[R.nlatv++] = (double)(arr - t) / (double)MS;
    int gi = cJSON_IsString(g) && g->valuestring[0] == 'g' ? atoi(g->valuestring + 1) : -1;
    if (firing && gi >= 0 && gi < R.nlat && !R.fire_arr_ns[gi])
        R.fire_arr_ns[gi] = arr;
}

static void on_grouped(const cJSON *root, int64_t arr)
{
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(root, "alerts");
    if (!cJSON_IsArray(alerts)) {
        R.bad++;
        return;
    }
    long n = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, alerts)
    {
        n++;
        /* each element is the one-alert payload: {"version","status","alert"} */
        const cJSON *al = cJSON_GetObjectItemCaseSensitive(a, "alert");
        int64_t s = parse_time(al ? al : a, "starts_at");
        if (!s)
            continue;
        if (!R.g_min_start || s < R.g_min_start)
            R.g_min_start = s;
        if (s > R.g_max_start)
            R.g_max_start = s;
        int k = 0;
        while (k < R.nstarts && R.starts[k] != s)
            k++;
        if (k == R.nstarts && R.nstarts < MAX_STARTS)
            R.starts[R.nstarts++] = s;
    }
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(root, "count");
    if (!cJSON_IsNumber(count) || (long)count->valuedouble != n)
        R.bad++;
    R.g_messages++;
    R.g_alerts += n;
    if (n > R.g_max_per_msg)
        R.g_max_per_msg = n;
    if (!R.g_first_ns)
        R.g_first_ns = arr;
    R.g_last_ns = arr;
}

static void on_request(const char *path, const char *body, size_t len, int64_t arr)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    pthread_mutex_lock(&mu);
    if (!root)
        R.bad++;
    else if (strncmp(path, "/hook", 5) == 0)
        on_hook(root, arr);
    else if (strncmp(path, "/grouped", 8) == 0)
        on_grouped(root, arr);
    else
        R.bad++;
    pthread_mutex_unlock(&mu);
    cJSON_Delete(root);
}

/* ---- the receiver: one thread, poll over keep-alive connections ---- */

typedef struct rconn {
    int fd;
    char *buf;
    size_t len, cap;
    bool continued; /* "100 Continue" sent for the current request */
} rconn_t;

static void write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static const char *find_header(const char *head, size_t hlen, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = head; p && p < head + hlen; p = memchr(p, '\n', (size_t)(head + hlen - p))) {
        if (*p == '\n')
            p++;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return p + nl + 1;
    }
    return NULL;
}

/* Handles every complete request in c's buffer. Returns false to close. */
static bool serve_buf(rconn_t *c)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return c->len < 65536;
        size_t hlen = (size_t)(end - c->buf) + 4;
        const char *cl = find_header(c->buf, hlen, "Content-Length");
        size_t blen = cl ? strtoul(cl, NULL, 10) : 0;
        if (c->len < hlen + blen) {
            const char *ex = find_header(c->buf, hlen, "Expect");
            if (ex && !c->continued) {
                write_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                c->continued = true;
            }
            return true;
        }
        int64_t arr = wall_ns();
        char path[64] = "";
        const char *sp = memchr(c->buf, ' ', hlen);
        if (sp)
            sscanf(sp + 1, "%63s", path);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        write_all(c->fd, ok, sizeof(ok) - 1);
        on_request(path, c->buf + hlen, blen, arr);
        memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
        c->len -= hlen + blen;
        c->continued = false;
    }
}

static void *rx_main(void *arg)
{
    int lfd = *(int *)arg;
    rconn_t conns[MAX_CONNS];
    size_t n = 0;
    struct pollfd pfd[MAX_CONNS + 1];
    while (!stop_rx) {
        pfd[0] = (struct pollfd){lfd, POLLIN, 0};
        for (size_t i = 0; i < n; i++)
            pfd[i + 1] = (struct pollfd){conns[i].fd, POLLIN, 0};
        if (poll(pfd, n + 1, 100) <= 0)
            continue;
        for (size_t i = n; i-- > 0;) {
            if (!(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            rconn_t *c = &conns[i];
            if (c->cap - c->len < 65536) {
                c->cap = c->cap * 2 + 65536;
                c->buf = realloc(c->buf, c->cap);
                if (!c->buf)
                    abort();
            }
            ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
            if (r > 0)
                c->len += (size_t)r;
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN) || !serve_buf(c)) {
                close(c->fd);
                free(c->buf);
                conns[i] = conns[--n];
            }
        }
        if (pfd[0].revents & POLLIN) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0 && n < MAX_CONNS) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                conns[n++] = (rconn_t){fd, NULL, 0, 0, false};
            } else if (fd >= 0) {
                close(fd);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        close(conns[i].fd);
        free(conns[i].buf);
    }
    return NULL;
}

/* ---- client for POST /v1/events (blocking, keep-alive) ---- */

static int cfd = -1;

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Posts body (NDJSON); returns the HTTP status or -1. */
static int post_events(int port, const char *body, size_t len)
{
    if (cfd < 0 && (cfd = connect_port(port)) < 0)
        return -1;
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/x-ndjson\r\nContent-Length: %zu\r\n\r\n",
                      len);
    write_all(cfd, head, (size_t)hl);
    write_all(cfd, body, len);
    static char rb[65536];
    size_t rl = 0;
    for (;;) {
        ssize_t r = read(cfd, rb + rl, sizeof(rb) - 1 - rl);
        if (r <= 0) {
            close(cfd);
            cfd = -1;
            return -1;
        }
        rl += (size_t)r;
        rb[rl] = 0;
        char *end = strstr(rb, "\r\n\r\n");
        if (!end)
            continue;
        size_t hlen = (size_t)(end - rb) + 4;
        const char *cl = find_header(rb, hlen, "Content-Length");
        size_t blen = cl ? strtoul(cl, NULL, 10) : 0;
        if (rl < hlen + blen)
            continue;
        int status = 0;
        sscanf(rb, "HTTP/1.%*d %d", &status);
        if (status < 200 || status > 299)
            fprintf(stderr, "bench_alerts: POST /v1/events: %.*s\n", (int)(rl > 300 ? 300 : rl), rb);
        return status;
    }
}

/* ---- serve ---- */

static pid_t serve_pid;

static long hwm_kib(pid_t pid)
{
    char p[64], line[256];
    long v = 0;
    snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "bench_alerts: cannot write %s\n", path);
        exit(1);
    }
}

/* Starts serve; returns its HTTP port or -1. */
static int start_serve(const char *bin, const char *dir)
{
    char cfg[512], data[512], scripts[512], out[512], log[512];
    snprintf(cfg, sizeof(cfg), "%s/telemetry.lua", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(scripts, sizeof(scripts), "%s/scripts", dir);
    snprintf(out, sizeof(out), "%s/serve.out", dir);
    snprintf(log, sizeof(log), "%s/serve.log", dir);
    serve_pid = fork();
    if (serve_pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int l = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || l < 0)
            _exit(127);
        dup2(o, 1);
        dup2(l, 2);
        execl(bin, bin, "serve", "--config", cfg, "--data", data, "--scripts", scripts, "--http",
              "127.0.0.1:0", "--tcp", "off", "--udp", "off", "--unix", "off", (char *)NULL);
        _exit(127);
    }
    if (serve_pid < 0)
        return -1;
    int64_t deadline = wall_ns() + 20 * SEC;
    while (wall_ns() < deadline) {
        FILE *f = fopen(out, "r");
        char line[512];
        int port = -1;
        bool ready = false;
        while (f && fgets(line, sizeof(line), f)) {
            sscanf(line, "http listening on http://127.0.0.1:%d", &port);
            if (strcmp(line, "ready\n") == 0)
                ready = true;
        }
        if (f)
            fclose(f);
        if (ready && port > 0)
            return port;
        if (waitpid(serve_pid, NULL, WNOHANG) == serve_pid)
            break;
        sleep_ns(50 * MS);
    }
    fprintf(stderr, "bench_alerts: serve did not start; see %s\n", log);
    return -1;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)(q * (double)n + 0.5);
    return v[i >= n ? n - 1 : i > 0 ? i - 1 : 0];
}

int main(int argc, char **argv)
{
    const char *bin = NULL;
    int nlat = 200, nburst = 10000;
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bin") && i + 1 < argc)
            bin = argv[++i];
        else if (!strcmp(argv[i], "--lat") && i + 1 < argc)
            nlat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--burst") && i + 1 < argc)
            nburst = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep"))
            keep = true;
        else {
            fprintf(stderr, "usage: bench_alerts --bin PATH [--lat N] [--burst N] [--keep]\n");
            return 2;
        }
    }
    if (!bin || nlat < 1 || nburst < 1) {
        fprintf(stderr, "usage: bench_alerts --bin PATH [--lat N] [--burst N] [--keep]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    R.nlat = nlat;
    R.acked_ns = calloc((size_t)nlat, sizeof(int64_t));
    R.fire_arr_ns = calloc((size_t)nlat, sizeof(int64_t));
    if (!R.acked_ns || !R.fire_arr_ns)
        return 1;

    /* receiver */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
        perror("bench_alerts: receiver");
        return 1;
    }
    int rport = ntohs(sa.sin_port);
    pthread_t rx;
    pthread_create(&rx, NULL, rx_main, &lfd);

    /* folder, config, rules */
    char dir[] = "/tmp/te_bench_alerts_XXXXXX", p[600], text[2048];
    if (!mkdtemp(dir))
        return 1;
    snprintf(p, sizeof(p), "%s/data", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/scripts", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/scripts/rules", dir);
    mkdir(p, 0755);
    snprintf(text, sizeof(text),
             "log { level = \"warn\" }\n"
             "notifier \"hook\" { type = \"webhook\", url = \"http://127.0.0.1:%d/hook\" }\n"
             "notifier \"grouped\" { type = \"webhook\", url = \"http://127.0.0.1:%d/grouped\",\n"
             "  group_by = { \"rule\" }, group_wait = \"1s\", group_interval = \"5m\" }\n",
             rport, rport);
    snprintf(p, sizeof(p), "%s/telemetry.lua", dir);
    write_file(p, text);
    snprintf(p, sizeof(p), "%s/scripts/rules/bench.lua", dir);
    write_file(p, "local te = require \"te\"\n"
                  "te.rule { name = \"bench-lat\", kind = \"bench_lat\", group_by = { \"g\" },\n"
                  "  window = \"2s\", every = \"1s\", pending = \"0s\", aggs = { n = te.count() },\n"
                  "  condition = function(a) return a.n > 0 end, notify = { \"hook\" },\n"
                  "  summary = \"{{g}}\" }\n"
                  "te.rule { name = \"bench-burst\", kind = \"bench_burst\", group_by = { \"g\" },\n"
                  "  window = \"1m\", every = \"1s\", pending = \"0s\", aggs = { n = te.count() },\n"
                  "  condition = function(a) return a.n > 0 end, notify = { \"grouped\" },\n"
                  "  max_groups = 20000, summary = \"{{g}}\" }\n");

    int port = start_serve(bin, dir);
    if (port < 0)
        return 1;
    fprintf(stderr, "   serve pid %d on port %d, receiver on %d, folder %s\n", (int)serve_pid, port,
            rport, dir);

    /* 1. latency: one new group every 50 ms */
    int64_t t0 = wall_ns();
    for (int i = 0; i < nlat; i++) {
        sleep_ns(t0 + (int64_t)i * 50 * MS - wall_ns());
        char ev[128];
        int n = snprintf(ev, sizeof(ev), "{\"kind\":\"bench_lat\",\"tags\":{\"g\":\"g%d\"}}\n", i);
        int st = post_events(port, ev, (size_t)n);
        int64_t acked = wall_ns();
        pthread_mutex_lock(&mu);
        R.acked_ns[i] = st >= 200 && st < 300 ? acked : 0;
        pthread_mutex_unlock(&mu);
    }
    int64_t deadline = wall_ns() + 15 * SEC;
    for (;;) {
        pthread_mutex_lock(&mu);
        bool done = R.hook_firing >= nlat && R.hook_resolved >= nlat;
        pthread_mutex_unlock(&mu);
        if (done || wall_ns() > deadline)
            break;
        sleep_ns(20 * MS);
    }
    long hwm_before = hwm_kib(serve_pid);

    /* 2. burst: right after an evaluation (ticks at whole seconds), post
     * every group, so that the next evaluation fires them all */
    size_t cap = (size_t)nburst * 64 + 64;
    char *body = malloc(cap);
    if (!body)
        return 1;
    sleep_ns(SEC + 100 * MS - wall_ns() % SEC);
    int64_t b0 = wall_ns();
    for (int i = 0; i < nburst; i += 1000) {
        size_t len = 0;
        for (int k = i; k < nburst && k < i + 1000; k++)
            len += (size_t)snprintf(body + len, cap - len,
                                    "{\"kind\":\"bench_burst\",\"tags\":{\"g\":\"b%d\"}}\n", k);
        if (post_events(port, body, len) != 200)
            fprintf(stderr, "bench_alerts: burst post failed\n");
    }
    int64_t b1 = wall_ns();
    free(body);
    deadline = b1 + 60 * SEC;
    long peak = 0;
    for (;;) {
        long h = hwm_kib(serve_pid);
        if (h > peak)
            peak = h;
        pthread_mutex_lock(&mu);
        bool done = R.g_alerts >= nburst;
        pthread_mutex_unlock(&mu);
        if (done || wall_ns() > deadline)
            break;
        sleep_ns(20 * MS);
    }
    /* anything more (a duplicate, a late second message) within 2 s */
    sleep_ns(2 * SEC);
    long h = hwm_kib(serve_pid);
    if (h > peak)
        peak = h;

    kill(serve_pid, SIGTERM);
    int wst = 0;
    waitpid(serve_pid, &wst, 0);
    stop_rx = 1;
    pthread_join(rx, NULL);
    close(lfd);
    if (cfd >= 0)
        close(cfd);

    /* figures */
    qsort(R.lat_ms, R.nlatv, sizeof(double), cmp_d);
    double *e2e = calloc((size_t)nlat, sizeof(double));
    size_t ne = 0;
    for (int i = 0; i < nlat; i++)
        if (R.acked_ns[i] && R.fire_arr_ns[i])
            e2e[ne++] = (double)(R.fire_arr_ns[i] - R.acked_ns[i]) / (double)MS;
    qsort(e2e, ne, sizeof(double), cmp_d);
    fprintf(stderr,
            "   latency: %ld firing + %ld resolved webhooks of %d groups (%ld other, %ld bad)\n",
            R.hook_firing, R.hook_resolved, nlat, R.hook_other, R.bad);
    fprintf(stderr,
            "   burst: %d events posted in %.0f ms; %ld messages, %ld alerts (max %ld a message), "
            "%d distinct starts_at\n",
            nburst, (double)(b1 - b0) / (double)MS, R.g_messages, R.g_alerts, R.g_max_per_msg,
            R.nstarts);
    printf("lat_transitions=%zu\n", R.nlatv);
    printf("lat_p50_ms=%.1f\n", pct(R.lat_ms, R.nlatv, 0.50));
    printf("lat_p99_ms=%.1f\n", pct(R.lat_ms, R.nlatv, 0.99));
    printf("lat_max_ms=%.1f\n", R.nlatv ? R.lat_ms[R.nlatv - 1] : 0.0);
    printf("e2e_p50_ms=%.1f\n", pct(e2e, ne, 0.50));
    printf("e2e_p99_ms=%.1f\n", pct(e2e, ne, 0.99));
    printf("burst_groups=%d\n", nburst);
    printf("burst_messages=%ld\n", R.g_messages);
    printf("burst_alerts=%ld\n", R.g_alerts);
    printf("burst_max_per_msg=%ld\n", R.g_max_per_msg);
    printf("burst_evals=%d\n", R.nstarts);
    printf("burst_fire_first_ms=%.0f\n",
           R.g_first_ns ? (double)(R.g_first_ns - R.g_min_start) / (double)MS : -1.0);
    printf("burst_fire_last_ms=%.0f\n",
           R.g_last_ns ? (double)(R.g_last_ns - R.g_min_start) / (double)MS : -1.0);
    printf("burst_first_last_ms=%.0f\n",
           R.g_last_ns ? (double)(R.g_last_ns - R.g_first_ns) / (double)MS : -1.0);
    printf("serve_hwm_before_kib=%ld\n", hwm_before);
    printf("serve_hwm_kib=%ld\n", peak);
    printf("serve_exit=%d\n", WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst));
    free(e2e);
    free(R.lat_ms);
    free(R.acked_ns);
    free(R.fire_arr_ns);
    if (!keep) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_alerts: could not remove %s\n", dir);
    } else {
        fprintf(stderr, "   kept %s\n", dir);
    }
    return 0;
}
