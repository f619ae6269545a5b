/*
 * harness.c - see harness.h. Processes are started with fork/exec; the
 * engine's stdout is read through a pipe until its "ready" line, its stderr
 * goes to a log file in the temp folder (printed when a test fails).
 *
 * THREAD: any (te_it_http is reentrant: one curl easy handle per call).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <zlib.h>

int64_t te_it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void te_it_rfc3339(int64_t offset_ms, char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + offset_ms;
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03dZ", buf, (int)(ms % 1000));
}

void te_it_str_addn(te_it_str_t *s, const void *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *q = realloc(s->p, cap);
        if (!q)
            abort();
        s->p = q;
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

void te_it_str_add(te_it_str_t *s, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if ((size_t)n < sizeof(small)) {
        te_it_str_addn(s, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        abort();
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    te_it_str_addn(s, big, (size_t)n);
    free(big);
}

void te_it_str_free(te_it_str_t *s)
{
    free(s->p);
    s->p = NULL;
    s->len = s->cap = 0;
}

unsigned char *te_it_gzip(const void *in, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static const char *te_bin(void)
{
    const char *b = getenv("TE_BIN");
    return b && *b ? b : "./telemetry-engine";
}

int te_it_init(te_it_srv_t *srv)
{
    static int curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_ALL);
        curl_ready = 1;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(srv, 0, sizeof(*srv));
    srv->out_fd = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(srv->root, sizeof(srv->root), "%s/te-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(srv->root)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", srv->root, strerror(errno));
        return -1;
    }
    snprintf(srv->data, sizeof(srv->data), "%s/data", srv->root);
    snprintf(srv->sock, sizeof(srv->sock), "%s/te.sock", srv->data);
    snprintf(srv->log, sizeof(srv->log), "%s/serve.log", srv->root);
    if (mkdir(srv->data, 0700) != 0) {
        fprintf(stderr, "harness: mkdir %s: %s\n", srv->data, strerror(errno));
        return -1;
    }
    return 0;
}

void te_it_dump_log(const te_it_srv_t *srv)
{
    FILE *f = fopen(srv->log, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > 4000 ? size - 4000 : 0, SEEK_SET);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "---- engine log (%s, tail) ----\n%s---- end of log ----\n", srv->log, buf);
}

static int parse_port(const char *line, const char *prefix)
{
    if (strncmp(line, prefix, strlen(prefix)) != 0)
        return -1;
    const char *colon = strrchr(line, ':');
    return colon ? atoi(colon + 1) : -1;
}

int te_it_start(te_it_srv_t *srv, const char *const *extra)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = te_bin();
    argv[argc++] = "serve";
    argv[argc++] = "--data";
    argv[argc++] = srv->data;
    argv[argc++] = "--http";
    argv[argc++] = "127.0.0.1:0";
    argv[argc++] = "--tcp";
    argv[argc++] = "127.0.0.1:0";
    argv[argc++] = "--udp";
    argv[argc++] = "127.0.0.1:0";
    argv[argc++] = "--unix";
    argv[argc++] = srv->sock;
    for (size_t i = 0; extra && extra[i] && argc < 62; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    int logfd = open(srv->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (logfd < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(logfd, 2);
        close(pfd[0]);
        close(pfd[1]);
        close(logfd);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    close(logfd);
    srv->pid = pid;
    srv->out_fd = pfd[0];
    srv->http_port = srv->tcp_port = srv->udp_port = 0;

    char line[1024];
    size_t used = 0;
    int64_t deadline = te_it_now_ms() + 10000;
    for (;;) {
        int64_t left = deadline - te_it_now_ms();
        if (left <= 0) {
            fprintf(stderr, "harness: no 'ready' from the engine within 10 s\n");
            goto fail;
        }
        struct pollfd p = {.fd = srv->out_fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = read(srv->out_fd, line + used, sizeof(line) - 1 - used);
        if (r <= 0) {
            fprintf(stderr, "harness: engine closed stdout before 'ready'\n");
            goto fail;
        }
        used += (size_t)r;
        line[used] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            int port;
            if ((port = parse_port(line, "http listening on ")) >= 0)
                srv->http_port = port;
            else if ((port = parse_port(line, "tcp listening on ")) >= 0)
                srv->tcp_port = port;
            else if ((port = parse_port(line, "udp listening on ")) >= 0)
                srv->udp_port = port;
            else if (strcmp(line, "ready") == 0) {
                /* the engine's stdout must never block it: stop reading, but
                 * keep the pipe open and drained by nobody: it prints
                 * nothing after "ready" at info level */
                return 0;
            }
            size_t rest = used - (size_t)(nl + 1 - line);
            memmove(line, nl + 1, rest);
            used = rest;
            line[used] = '\0';
        }
        if (used == sizeof(line) - 1)
            used = 0;
    }
fail:
    te_it_kill9(srv);
    te_it_dump_log(srv);
    return -1;
}

int te_it_start_fresh(te_it_srv_t *srv, const char *const *extra)
{
    if (te_it_init(srv) != 0)
        return -1;
    return te_it_start(srv, extra);
}

static int wait_exit(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = te_it_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (te_it_now_ms() >= deadline)
            return -1;
        struct timespec ts = {0, 5 * 1000000}; /* poll interval, not a guess */
        nanosleep(&ts, NULL);
    }
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int te_it_stop(te_it_srv_t *srv, int sig, int timeout_ms)
{
    if (srv->pid <= 0)
        return -1;
    int st = 0;
    kill(srv->pid, sig);
    int rc;
    if (wait_exit(srv->pid, timeout_ms, &st) != 0) {
        fprintf(stderr, "harness: engine did not exit within %d ms of signal %d\n", timeout_ms,
                sig);
        te_it_kill9(srv);
        rc = -1;
    } else {
        rc = decode_status(st);
        srv->pid = 0;
    }
    if (srv->out_fd >= 0) {
        close(srv->out_fd);
        srv->out_fd = -1;
    }
    return rc;
}

void te_it_kill9(te_it_srv_t *srv)
{
    if (srv->pid > 0) {
        int st;
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, &st, 0);
        srv->pid = 0;
    }
    if (srv->out_fd >= 0) {
        close(srv->out_fd);
        srv->out_fd = -1;
    }
}

static void rm_rf(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) {
        int st;
        waitpid(pid, &st, 0);
    }
}

void te_it_cleanup(te_it_srv_t *srv)
{
    te_it_kill9(srv);
    if (srv->root[0] && !getenv("TE_IT_KEEP"))
        rm_rf(srv->root);
    srv->root[0] = '\0';
}

int te_it_write_file(const te_it_srv_t *srv, const char *name, const char *content,
                     size_t len, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", srv->root, name);
    FILE *f = fopen(out, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(content, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

/* ---------- HTTP ---------- */

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    te_it_str_addn(ud, p, size * nmemb);
    return size * nmemb;
}

int te_it_http(const te_it_srv_t *srv, const char *method, const char *path, const void *body,
               size_t len, const char *const *headers, te_it_resp_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    char url[2048];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv->http_port, path);
    te_it_str_t b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        te_it_str_free(&b);
        te_it_str_free(&h);
        return -1;
    }
    if (!b.p)
        te_it_str_addn(&b, "", 0);
    if (!h.p)
        te_it_str_addn(&h, "", 0);
    resp->body = b.p;
    resp->len = b.len;
    resp->headers = h.p;
    return 0;
}

void te_it_resp_free(te_it_resp_t *resp)
{
    free(resp->body);
    free(resp->headers);
    memset(resp, 0, sizeof(*resp));
}

int te_it_post(const te_it_srv_t *srv, const char *body, size_t len, te_it_resp_t *resp)
{
    static const char *const h[] = {"Content-Type: application/x-ndjson", NULL};
    return te_it_http(srv, "POST", "/v1/events", body, len, h, resp);
}

cJSON *te_it_get_json(const te_it_srv_t *srv, const char *path)
{
    te_it_resp_t r;
    if (te_it_http(srv, "GET", path, NULL, 0, NULL, &r) != 0)
        return NULL;
    cJSON *j = NULL;
    if (r.status == 200)
        j = cJSON_Parse(r.body);
    else
        fprintf(stderr, "harness: GET %s -> %ld %s\n", path, r.status, r.body);
    te_it_resp_free(&r);
    return j;
}

long te_it_count(const te_it_srv_t *srv, const char *kind, const char *extra)
{
    char path[1024];
    snprintf(path, sizeof(path), "/v1/query?kind=%s&agg=count&since=30d%s%s", kind,
             extra ? "&" : "", extra ? extra : "");
    cJSON *j = te_it_get_json(srv, path);
    if (!j)
        return -1;
    long n = -1;
    cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "rows");
    cJSON *row = cJSON_GetArrayItem(rows, 0);
    cJSON *c = cJSON_GetObjectItemCaseSensitive(row, "count");
    if (cJSON_IsNumber(c))
        n = (long)c->valuedouble;
    else if (cJSON_IsArray(rows) && cJSON_GetArraySize(rows) == 0)
        n = 0;
    cJSON_Delete(j);
    return n;
}

long te_it_wait_count(const te_it_srv_t *srv, const char *kind, const char *extra, long want,
                      int timeout_ms)
{
    int64_t deadline = te_it_now_ms() + timeout_ms;
    long n;
    for (;;) {
        n = te_it_count(srv, kind, extra);
        if (n == want || te_it_now_ms() >= deadline)
            return n;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
}

double te_it_metric(const te_it_srv_t *srv, const char *name)
{
    te_it_resp_t r;
    if (te_it_http(srv, "GET", "/metrics", NULL, 0, NULL, &r) != 0 || r.status != 200) {
        te_it_resp_free(&r);
        return -1;
    }
    double sum = 0;
    int found = 0;
    size_t nl = strlen(name);
    for (char *line = r.body; line && *line;) {
        char *end = strchr(line, '\n');
        if (line[0] != '#' && strncmp(line, name, nl) == 0 &&
            (line[nl] == ' ' || line[nl] == '{')) {
            const char *v = line[nl] == '{' ? strchr(line + nl, '}') : line + nl;
            if (v) {
                v = strchr(v, ' ');
                if (v) {
                    sum += strtod(v + 1, NULL);
                    found = 1;
                }
            }
        }
        line = end ? end + 1 : NULL;
    }
    te_it_resp_free(&r);
    return found ? sum : -1;
}

/* ---------- CLI ---------- */

int te_it_run_cli(const char *const *args, const char *stdin_data, size_t stdin_len, char **out,
                  char **err)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = te_bin();
    for (size_t i = 0; args && args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    int in[2], o[2], e[2];
    if (pipe(in) || pipe(o) || pipe(e))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(in[0]);
        close(in[1]);
        close(o[0]);
        close(o[1]);
        close(e[0]);
        close(e[1]);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(o[1]);
    close(e[1]);
    if (!stdin_data) {
        close(in[1]);
        in[1] = -1;
    } else {
        fcntl(in[1], F_SETFL, O_NONBLOCK);
    }
    te_it_str_t so = {0}, se = {0};
    size_t sent = 0;
    int64_t deadline = te_it_now_ms() + 120000;
    int open_o = 1, open_e = 1;
    while (open_o || open_e) {
        struct pollfd p[3];
        int np = 0;
        p[np++] = (struct pollfd){.fd = open_o ? o[0] : -1, .events = POLLIN};
        p[np++] = (struct pollfd){.fd = open_e ? e[0] : -1, .events = POLLIN};
        p[np++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
        int64_t left = deadline - te_it_now_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        if (poll(p, (nfds_t)np, (int)left) < 0 && errno != EINTR)
            break;
        char buf[65536];
        if (p[0].revents) {
            ssize_t r = read(o[0], buf, sizeof(buf));
            if (r > 0)
                te_it_str_addn(&so, buf, (size_t)r);
            else
                open_o = 0;
        }
        if (p[1].revents) {
            ssize_t r = read(e[0], buf, sizeof(buf));
            if (r > 0)
                te_it_str_addn(&se, buf, (size_t)r);
            else
                open_e = 0;
        }
        if (in[1] >= 0 && p[2].revents) {
            ssize_t w = sent < stdin_len ? write(in[1], stdin_data + sent, stdin_len - sent) : 0;
            if (w > 0)
                sent += (size_t)w;
            if (w < 0 || sent >= stdin_len) {
                close(in[1]);
                in[1] = -1;
            }
        }
    }
    if (in[1] >= 0)
        close(in[1]);
    close(o[0]);
    close(e[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    te_it_str_addn(&so, "", 0);
    te_it_str_addn(&se, "", 0);
    if (out)
        *out = so.p;
    else
        free(so.p);
    if (err)
        *err = se.p;
    else
        free(se.p);
    return decode_status(st);
}

char *te_it_gen(const char *args, size_t *len)
{
    const char *src = getenv("TE_SOURCE_DIR");
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "lua5.4 %s/examples/gen.lua %s", src && *src ? src : ".", args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    te_it_str_t s = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        te_it_str_addn(&s, buf, n);
    int st = pclose(p);
    if (st != 0) {
        free(s.p);
        return NULL;
    }
    te_it_str_addn(&s, "", 0);
    if (len)
        *len = s.len;
    return s.p;
}
