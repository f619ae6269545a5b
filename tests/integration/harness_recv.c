/*
 * harness_recv.c - the loopback HTTP receiver of the notifier tests (see
 * harness_recv.h).
 */
#define _GNU_SOURCE /* strcasestr */
#include "harness_recv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAX_BODIES 64

struct te_it_recv {
    int lfd, port;
    pthread_t thread;
    pthread_mutex_t lock;
    bool fail;
    int requests, ok;
    char *bodies[MAX_BODIES];
};

static void *serve(void *arg)
{
    te_it_recv_t *r = arg;
    for (;;) {
        int fd = accept(r->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        size_t cap = 1 << 16, len = 0;
        char *buf = malloc(cap + 1);
        long want = -1;
        size_t body_off = 0;
        while (buf) {
            if (len == cap) {
                char *nb = realloc(buf, cap * 2 + 1);
                if (!nb)
                    break;
                buf = nb;
                cap *= 2;
            }
            ssize_t k = read(fd, buf + len, cap - len);
            if (k <= 0)
                break;
            len += (size_t)k;
            buf[len] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (end && want < 0) {
                char *cl = strcasestr(buf, "content-length:");
                want = cl ? strtol(cl + 15, NULL, 10) : 0;
                body_off = (size_t)(end + 4 - buf);
            }
            if (want >= 0 && (long)(len - body_off) >= want)
                break;
        }
        pthread_mutex_lock(&r->lock);
        bool fail = r->fail;
        r->requests++;
        if (!fail && buf && want >= 0) {
            if (r->ok < MAX_BODIES)
                r->bodies[r->ok] = strdup(buf + body_off);
            r->ok++;
        }
        pthread_mutex_unlock(&r->lock);
        free(buf);
        const char *ans = fail ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n"
                               : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ssize_t w = write(fd, ans, strlen(ans));
        (void)w;
        close(fd);
    }
}

te_it_recv_t *te_it_recv_start(bool fail)
{
    te_it_recv_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->fail = fail;
    r->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(r->lfd, (struct sockaddr *)&a, &alen) != 0 || listen(r->lfd, 64) != 0 ||
        pthread_create(&r->thread, NULL, serve, r) != 0) {
        if (r->lfd >= 0)
            close(r->lfd);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    r->port = ntohs(a.sin_port);
    return r;
}

int te_it_recv_port(const te_it_recv_t *r)
{
    return r->port;
}

void te_it_recv_set_fail(te_it_recv_t *r, bool fail)
{
    pthread_mutex_lock(&r->lock);
    r->fail = fail;
    pthread_mutex_unlock(&r->lock);
}

int te_it_recv_count(te_it_recv_t *r, int *ok)
{
    pthread_mutex_lock(&r->lock);
    int n = r->requests;
    if (ok)
        *ok = r->ok;
    pthread_mutex_unlock(&r->lock);
    return n;
}

char *te_it_recv_body(te_it_recv_t *r, int i)
{
    pthread_mutex_lock(&r->lock);
    char *s = i >= 0 && i < r->ok && i < MAX_BODIES && r->bodies[i] ? strdup(r->bodies[i]) : NULL;
    pthread_mutex_unlock(&r->lock);
    return s;
}

char *te_it_recv_bodies(te_it_recv_t *r)
{
    pthread_mutex_lock(&r->lock);
    size_t len = 1;
    for (int i = 0; i < r->ok && i < MAX_BODIES; i++)
        len += strlen(r->bodies[i] ? r->bodies[i] : "") + 1;
    char *s = malloc(len);
    if (s) {
        s[0] = '\0';
        for (int i = 0; i < r->ok && i < MAX_BODIES; i++) {
            strcat(s, r->bodies[i] ? r->bodies[i] : "");
            strcat(s, "\n");
        }
    }
    pthread_mutex_unlock(&r->lock);
    return s;
}

int te_it_recv_wait(te_it_recv_t *r, int n, int timeout_ms)
{
    int64_t deadline = te_it_now_ms() + timeout_ms;
    int ok = 0;
    for (;;) {
        te_it_recv_count(r, &ok);
        if (ok >= n || te_it_now_ms() >= deadline)
            return ok;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

void te_it_recv_stop(te_it_recv_t *r)
{
    if (!r)
        return;
    shutdown(r->lfd, SHUT_RDWR);
    close(r->lfd);
    pthread_join(r->thread, NULL);
    for (int i = 0; i < MAX_BODIES; i++)
        free(r->bodies[i]);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
