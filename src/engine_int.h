/*
 * engine_int.h - the inside of te_engine_t, shared by engine.c and api/.
 *
 * THREAD: loop, except te_engine_batch_done (writer thread).
 *
 * The one idea: the writer thread never touches engine state. A finished
 * batch is pushed onto the done list under done_lock and the loop is woken with
 * uv_async_send; on_async drains the WHOLE list (sends coalesce), updates the
 * counters, calls each batch's te_engine_done_t callback (HTTP answers) and
 * resumes paused streams.
 */
#ifndef TE_ENGINE_INT_H
#define TE_ENGINE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "config/config.h"
#include "engine.h"
#include "ingest/http.h"
#include "ingest/stream.h"
#include "ingest/tail.h"
#include "ingest/udp.h"
#include "pipeline/writer.h"

#define TE_ENGINE_RATE_SAMPLES 11  /* 10 one-second intervals */

/* Called on the loop when a batch submitted with ud = this struct is done;
 * the callee owns b (te_batch_free). */
typedef void (*te_engine_batch_cb)(te_engine_t *e, te_batch_t *b, void *arg);

/* Every batch's ud points to one of these. cb NULL: counters only. */
typedef struct te_engine_done {
    te_engine_t *e;
    te_engine_batch_cb cb;
    void *arg;
} te_engine_done_t;

struct te_engine {
    uv_loop_t loop;
    const te_config_t *cfg;
    struct te_auth *auth;          /* NULL: no tokens configured, every request allowed */
    te_writer_t *writer;
    size_t queue_capacity;
    size_t max_body_bytes;
    te_http_server_t *http;
    te_stream_listener_t *tcp;
    te_stream_listener_t *unix_l;
    te_udp_listener_t *udp;
    te_tail_t *tail;                /* source blocks of type "tail"; NULL when none */
    char http_addr[80];
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_async_t async;
    uv_timer_t tick;
    bool handles_open;
    bool serving;                   /* start-up completed */
    bool shutting_down;
    te_engine_done_t stream_done;   /* ud of TCP/Unix/UDP batches */
    te_engine_done_t tail_done;     /* ud of tailed-file batches (positions advance) */
    pthread_mutex_t done_lock;
    te_batch_t *done_head, *done_tail; /* guarded by done_lock, linked by b->next */
    int64_t start_mono_ns;
    /* counters, loop thread only */
    uint64_t accepted;              /* stored + duplicates */
    uint64_t duplicates;
    uint64_t failed;                /* events in batches whose commit failed */
    uint64_t http_rejected;
    struct te_engine_rules *rules;  /* engine_rules.c: ruleset, scripts, tick timer */
    struct te_engine_recs *recs;    /* engine_recs.c: recommendations on their schedule */
    struct te_engine_reports *reports; /* engine_reports.c: scheduled reports */
    struct te_engine_retention *retention; /* engine_retention.c: hourly retention pass */
    uint64_t rate_samples[TE_ENGINE_RATE_SAMPLES];
    int64_t rate_times[TE_ENGINE_RATE_SAMPLES];
    size_t rate_pos, rate_count;
};

/* The writer's done callback for every batch the engine submits (writer
 * thread): hands b to the loop. Cannot fail. */
void te_engine_batch_done(te_batch_t *b);

/* Events accepted per second over the last 10 s (loop thread). */
double te_engine_rate(const te_engine_t *e);

#endif
