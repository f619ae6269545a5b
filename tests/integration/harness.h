/*
 * harness.h - integration-test harness: runs the real telemetry-engine
 * binary ($TE_BIN) on ephemeral loopback ports with a temporary data dir,
 * and talks to it over HTTP (libcurl), sockets and its CLI.
 *
 * THREAD: any; one te_it_srv_t per test, te_it_http is safe from several
 * threads at once (one curl easy handle per call).
 * Nothing here sleeps for a fixed time: every wait polls a condition with a
 * deadline and fails the test with a message when the deadline passes.
 */
#ifndef TE_TESTS_HARNESS_H
#define TE_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

typedef struct te_it_srv {
    pid_t pid;           /* 0 when not running */
    char root[256];      /* temp folder, removed by te_it_cleanup */
    char data[300];      /* root/data: the --data folder */
    char sock[320];      /* root/data/te.sock */
    char log[320];       /* root/serve.log: the engine's stderr (appended on restart) */
    int http_port, tcp_port, udp_port;
    int out_fd;          /* read end of the engine's stdout */
} te_it_srv_t;

typedef struct te_it_resp {
    long status;
    char *body;          /* NUL-terminated, malloc'd (te_it_resp_free) */
    size_t len;
    char *headers;       /* raw response header block, NUL-terminated */
} te_it_resp_t;

/* Creates the temp folder (mkdtemp) with its data/ subfolder. Returns 0 or -1. */
int te_it_init(te_it_srv_t *srv);

/* Starts `TE_BIN serve --data DATA --http 127.0.0.1:0 --tcp 127.0.0.1:0 --udp
 * 127.0.0.1:0 --unix SOCK` plus extra (NULL-terminated, may be NULL), reads
 * its stdout until "ready" (deadline 10 s) and fills the ports. Returns 0, or
 * -1 after printing why (the engine log is printed too). */
int te_it_start(te_it_srv_t *srv, const char *const *extra);

/* te_it_init + te_it_start. */
int te_it_start_fresh(te_it_srv_t *srv, const char *const *extra);

/* Sends sig, waits up to timeout_ms for the exit. Returns the exit status
 * (0..255), 128+N when killed by signal N, or -1 on timeout (then the engine
 * is killed with SIGKILL). */
int te_it_stop(te_it_srv_t *srv, int sig, int timeout_ms);

/* SIGKILL and reap. */
void te_it_kill9(te_it_srv_t *srv);

/* Stops the engine if still running (SIGKILL) and removes the temp folder. */
void te_it_cleanup(te_it_srv_t *srv);

/* Prints the last part of the engine log to stderr (for failures). */
void te_it_dump_log(const te_it_srv_t *srv);

/* Writes a file root/name with content; returns its path in a static-free
 * buffer out (size n). Returns 0 or -1. */
int te_it_write_file(const te_it_srv_t *srv, const char *name, const char *content,
                     size_t len, char *out, size_t n);

/* One HTTP request to 127.0.0.1:http_port. headers: NULL-terminated list of
 * "Name: value" (may be NULL). body may be NULL (len 0). Fills resp (caller
 * frees with te_it_resp_free). Returns 0 or -1 on a transport error. */
int te_it_http(const te_it_srv_t *srv, const char *method, const char *path, const void *body,
               size_t len, const char *const *headers, te_it_resp_t *resp);
void te_it_resp_free(te_it_resp_t *resp);

/* POST /v1/events with an NDJSON body. */
int te_it_post(const te_it_srv_t *srv, const char *body, size_t len, te_it_resp_t *resp);

/* GET path and parse the JSON answer; NULL when not 200 or not JSON. */
cJSON *te_it_get_json(const te_it_srv_t *srv, const char *path);

/* GET /v1/query?kind=K&agg=count&since=7d[&extra] -> count, or -1. extra is
 * appended after "&" (may be NULL). */
long te_it_count(const te_it_srv_t *srv, const char *kind, const char *extra);

/* Polls te_it_count until it equals want or timeout_ms passes. Returns the
 * last count seen. */
long te_it_wait_count(const te_it_srv_t *srv, const char *kind, const char *extra, long want,
                      int timeout_ms);

/* Sum of the samples of a metric in /metrics (name followed by ' ' or '{').
 * Returns -1 when the metric is absent. */
double te_it_metric(const te_it_srv_t *srv, const char *name);

/* Runs `TE_BIN args...` (NULL-terminated) with stdin_data (may be NULL: then
 * /dev/null) and collects stdout and stderr (malloc'd, NUL-terminated; either
 * pointer may be NULL). Returns the exit status (128+N if signaled) or -1. */
int te_it_run_cli(const char *const *args, const char *stdin_data, size_t stdin_len, char **out,
                  char **err);

/* Runs `lua5.4 $TE_SOURCE_DIR/examples/gen.lua args` and returns its stdout
 * (malloc'd), or NULL. */
char *te_it_gen(const char *args, size_t *len);

/* Milliseconds on the monotonic clock. */
int64_t te_it_now_ms(void);

/* Current wall time as RFC 3339 UTC with milliseconds, offset by
 * offset_ms, into out (>= 32 bytes). */
void te_it_rfc3339(int64_t offset_ms, char *out, size_t n);

/* Dynamic string helpers for building bodies. */
typedef struct te_it_str {
    char *p;
    size_t len, cap;
} te_it_str_t;
void te_it_str_add(te_it_str_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void te_it_str_addn(te_it_str_t *s, const void *p, size_t n);
void te_it_str_free(te_it_str_t *s);

/* gzip-compresses in (deflate + gzip header) into a malloc'd buffer. */
unsigned char *te_it_gzip(const void *in, size_t len, size_t *out_len);

#endif

/* ---------- load: client threads posting acknowledged batches ---------- */

/* Background posters: nthreads threads each POST batches of batch_events
 * events of kind `kind`, every event with a unique id and the tag b=T-B
 * (thread T, batch B), until te_it_load_stop. A batch counts as acked only
 * on 200 with accepted == batch_events. A thread stops on its own after a
 * transport error (engine gone). */
typedef struct te_it_load te_it_load_t;
te_it_load_t *te_it_load_start(const te_it_srv_t *srv, const char *kind, int nthreads,
                               int batch_events);
/* Number of acked batches so far (all threads). */
int te_it_load_acked(te_it_load_t *l);
/* Waits until at least n batches are acked or timeout_ms passes; returns acked. */
int te_it_load_wait_acked(te_it_load_t *l, int n, int timeout_ms);
/* Stops and joins the threads (they finish their request in flight). */
void te_it_load_stop(te_it_load_t *l);
/* After a restart: checks through GET /v1/query?group_by=b that every acked
 * batch is stored whole (exactly batch_events events) and no batch holds more.
 * Prints what is missing. Returns the number of bad batches (0 = good). */
int te_it_load_verify(te_it_load_t *l, const te_it_srv_t *srv);
void te_it_load_free(te_it_load_t *l);
