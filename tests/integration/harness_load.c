/*
 * harness_load.c - background poster threads for the durability and
 * shutdown tests (te_it_load_*, see harness.h): each batch carries unique
 * ids and a tag b=THREAD-BATCH, so a query grouped by b after a restart
 * shows which acknowledged batches survived, whole and once.
 *
 * THREAD: the caller's + one thread per poster.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------- load ---------- */


#define LOAD_MAX_THREADS 8
#define LOAD_MAX_BATCHES 100000

typedef struct load_thread {
    te_it_load_t *l;
    int t;
    pthread_t th;
    int nbatches;                 /* batches sent (acked or not) */
    unsigned char *acked;         /* per batch: 1 when acknowledged */
} load_thread_t;

struct te_it_load {
    te_it_srv_t srv;              /* copy: ports only */
    char kind[64];
    int nthreads, batch_events;
    atomic_int stop;
    atomic_int acked;
    load_thread_t th[LOAD_MAX_THREADS];
};

static void *load_main(void *arg)
{
    load_thread_t *lt = arg;
    te_it_load_t *l = lt->l;
    te_it_str_t b = {0};
    while (!atomic_load(&l->stop) && lt->nbatches < LOAD_MAX_BATCHES) {
        int bi = lt->nbatches++;
        b.len = 0;
        for (int i = 0; i < l->batch_events; i++)
            te_it_str_add(&b,
                          "{\"kind\":\"%s\",\"source\":\"load\",\"id\":\"%s-%d-%d-%d\","
                          "\"tags\":{\"b\":\"%d-%d\"},\"fields\":{\"i\":%d}}\n",
                          l->kind, l->kind, lt->t, bi, i, lt->t, bi, i);
        te_it_resp_t r;
        if (te_it_post(&l->srv, b.p, b.len, &r) != 0)
            break; /* engine gone */
        if (r.status == 200) {
            cJSON *j = cJSON_Parse(r.body);
            cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "accepted");
            if (cJSON_IsNumber(a) && (int)a->valuedouble == l->batch_events) {
                lt->acked[bi] = 1;
                atomic_fetch_add(&l->acked, 1);
            }
            cJSON_Delete(j);
        }
        te_it_resp_free(&r);
    }
    te_it_str_free(&b);
    return NULL;
}

te_it_load_t *te_it_load_start(const te_it_srv_t *srv, const char *kind, int nthreads,
                               int batch_events)
{
    te_it_load_t *l = calloc(1, sizeof(*l));
    if (!l || nthreads > LOAD_MAX_THREADS)
        abort();
    l->srv = *srv;
    snprintf(l->kind, sizeof(l->kind), "%s", kind);
    l->nthreads = nthreads;
    l->batch_events = batch_events;
    for (int t = 0; t < nthreads; t++) {
        l->th[t].l = l;
        l->th[t].t = t;
        l->th[t].acked = calloc(LOAD_MAX_BATCHES, 1);
        if (!l->th[t].acked)
            abort();
        pthread_create(&l->th[t].th, NULL, load_main, &l->th[t]);
    }
    return l;
}

int te_it_load_acked(te_it_load_t *l)
{
    return atomic_load(&l->acked);
}

int te_it_load_wait_acked(te_it_load_t *l, int n, int timeout_ms)
{
    int64_t deadline = te_it_now_ms() + timeout_ms;
    while (atomic_load(&l->acked) < n && te_it_now_ms() < deadline) {
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&l->acked);
}

void te_it_load_stop(te_it_load_t *l)
{
    atomic_store(&l->stop, 1);
    for (int t = 0; t < l->nthreads; t++)
        if (l->th[t].acked) {
            pthread_join(l->th[t].th, NULL);
        }
}

int te_it_load_verify(te_it_load_t *l, const te_it_srv_t *srv)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/query?kind=%s&since=30d&group_by=b&agg=count", l->kind);
    cJSON *j = te_it_get_json(srv, path);
    if (!j) {
        fprintf(stderr, "load: query failed\n");
        return 1;
    }
    int bad = 0;
    long stored_batches = 0;
    cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(j, "rows"))
    {
        cJSON *b = cJSON_GetObjectItemCaseSensitive(row, "b");
        cJSON *c = cJSON_GetObjectItemCaseSensitive(row, "count");
        int t, bi;
        if (!cJSON_IsString(b) || sscanf(b->valuestring, "%d-%d", &t, &bi) != 2 || t < 0 ||
            t >= l->nthreads || bi < 0 || bi >= l->th[t].nbatches || !cJSON_IsNumber(c)) {
            fprintf(stderr, "load: unexpected row %s\n", cJSON_PrintUnformatted(row));
            bad++;
            continue;
        }
        stored_batches++;
        int n = (int)c->valuedouble;
        if (n > l->batch_events) {
            fprintf(stderr, "load: batch %s stored %d times %d events (duplicates)\n",
                    b->valuestring, n, l->batch_events);
            bad++;
        }
        if (l->th[t].acked[bi] == 1) {
            l->th[t].acked[bi] = 2; /* seen */
            if (n != l->batch_events) {
                fprintf(stderr, "load: acked batch %s has %d of %d events\n", b->valuestring, n,
                        l->batch_events);
                bad++;
            }
        }
    }
    for (int t = 0; t < l->nthreads; t++)
        for (int bi = 0; bi < l->th[t].nbatches; bi++) {
            if (l->th[t].acked[bi] == 1) {
                fprintf(stderr, "load: acked batch %d-%d is missing\n", t, bi);
                bad++;
            }
            if (l->th[t].acked[bi] == 2)
                l->th[t].acked[bi] = 1;
        }
    fprintf(stderr, "load: %d batches acked, %ld stored (of %d events each), %d bad\n",
            te_it_load_acked(l), stored_batches, l->batch_events, bad);
    cJSON_Delete(j);
    return bad;
}

void te_it_load_free(te_it_load_t *l)
{
    if (!l)
        return;
    for (int t = 0; t < l->nthreads; t++)
        free(l->th[t].acked);
    free(l);
}
