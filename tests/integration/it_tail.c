/*
 * it_tail.c - `source "x" { type = "tail" }` on the real binary (SPEC
 * sections 1 and 6.0): a file that appears after start-up (its relative path
 * taken from the config file's folder), appended lines, a malformed line
 * (counted in te_events_rejected_total{listener="tail"}), a partial line
 * completed later, truncation, rotation, and restarts: after SIGTERM and
 * after kill -9 the engine resumes from the saved position, losing nothing
 * and (after SIGTERM) storing nothing twice, with a backlog larger than the
 * ingest queue (the tail waits for room).
 *
 * THREAD: main. Every wait polls a condition with a deadline.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define CONFIG                                                                                  \
    "source \"llm\" { type = \"tail\", path = \"logs/calls.jsonl\", kind = \"llm_call\","      \
    " source = \"empathy\" }\n"

/* a queue smaller than the backlog: the tail must wait for room, not drop */
#define CONFIG_SMALL_QUEUE CONFIG "storage { queue_events = 2000 }\n"

typedef struct tail_fx {
    te_it_srv_t srv;
    char cfg[512];
    char file[700];
    char positions[700];
    const char *extra[3];
} tail_fx_t;

static void fx_init(tail_fx_t *t, const char *config)
{
    char logs[600];
    assert_int_equal(te_it_init(&t->srv), 0);
    assert_int_equal(te_it_write_file(&t->srv, "telemetry.lua", config, strlen(config), t->cfg,
                                      sizeof(t->cfg)),
                     0);
    snprintf(logs, sizeof(logs), "%s/logs", t->srv.root);
    snprintf(t->file, sizeof(t->file), "%s/calls.jsonl", logs);
    snprintf(t->positions, sizeof(t->positions), "%s/telemetry.db.tail-positions", t->srv.data);
    t->extra[0] = "--config";
    t->extra[1] = t->cfg;
    t->extra[2] = NULL;
}

static void append(const char *path, const char *text)
{
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

static void append_lines(const char *path, const char *prefix, int from, int to)
{
    te_it_str_t s = {0};
    for (int i = from; i < to; i++)
        te_it_str_add(&s, "{\"model\":\"%s-%d\",\"latency_ms\":%d}\n", prefix, i, i);
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    assert_int_equal(fwrite(s.p, 1, s.len, fp), s.len);
    assert_int_equal(fclose(fp), 0);
    te_it_str_free(&s);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The "offset" the positions file on disk names, or -1. */
static long saved_offset(const tail_fx_t *t)
{
    FILE *fp = fopen(t->positions, "rb");
    char text[4096];
    if (!fp)
        return -1;
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(files, 0), "offset");
    long v = cJSON_IsNumber(off) ? (long)off->valuedouble : -1;
    cJSON_Delete(root);
    return v;
}

/* Waits until the positions file on disk says the whole file is done. */
static void wait_saved(const tail_fx_t *t, int timeout_ms)
{
    int64_t deadline = te_it_now_ms() + timeout_ms;
    long want = file_size(t->file);
    while (saved_offset(t) != want) {
        if (te_it_now_ms() > deadline) {
            te_it_dump_log(&t->srv);
            fail_msg("positions file says %ld, want %ld", saved_offset(t), want);
        }
        usleep(10000);
    }
}

/* /v1/status "tail"[0] member as a string (state) or number. */
static cJSON *tail_status(const tail_fx_t *t)
{
    cJSON *st = te_it_get_json(&t->srv, "/v1/status");
    assert_non_null(st);
    return st;
}

static void expect_count(tail_fx_t *t, long want)
{
    long got = te_it_wait_count(&t->srv, "llm_call", NULL, want, 10000);
    if (got != want)
        te_it_dump_log(&t->srv);
    assert_int_equal(got, want);
}

static void follows_appends_rejects_truncation_and_rotation(void **state)
{
    tail_fx_t t;
    char logs[600], old[720];
    (void)state;
    fx_init(&t, CONFIG);
    assert_int_equal(te_it_start(&t.srv, t.extra), 0);

    /* no folder, no file yet: waited for */
    cJSON *st = tail_status(&t);
    const cJSON *tail0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st, "tail"), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(tail0, "state")->valuestring, "waiting");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(tail0, "name")->valuestring, "llm");
    cJSON_Delete(st);

    snprintf(logs, sizeof(logs), "%s/logs", t.srv.root);
    assert_int_equal(mkdir(logs, 0755), 0);
    append_lines(t.file, "a", 0, 3);
    append(t.file, "{\"model\":\"broken\"\n{\"model\":\"late\",\"lat");
    expect_count(&t, 3);
    int64_t deadline = te_it_now_ms() + 10000;
    while (te_it_metric(&t.srv, "te_events_rejected_total") < 1 && te_it_now_ms() < deadline)
        usleep(10000);
    assert_true(te_it_metric(&t.srv, "te_events_rejected_total") == 1);
    append(t.file, "ency_ms\":7}\n");
    expect_count(&t, 4);
    assert_int_equal(te_it_count(&t.srv, "llm_call", "where=model:late"), 1);

    /* copytruncate */
    assert_int_equal(truncate(t.file, 0), 0);
    append_lines(t.file, "t", 0, 1);
    expect_count(&t, 5);

    /* rename + create: the old file's last line is not lost */
    snprintf(old, sizeof(old), "%s.1", t.file);
    assert_int_equal(rename(t.file, old), 0);
    append_lines(old, "old", 0, 1);
    append_lines(t.file, "n", 0, 2);
    expect_count(&t, 8);
    assert_int_equal(te_it_count(&t.srv, "llm_call", "where=model:old-0"), 1);

    st = tail_status(&t);
    tail0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st, "tail"), 0);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(tail0, "truncations")->valuedouble, 1);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(tail0, "rotations")->valuedouble, 1);
    cJSON_Delete(st);
    assert_int_equal(te_it_stop(&t.srv, SIGTERM, 10000), 0);
    te_it_cleanup(&t.srv);
}

static void restarts_resume_without_loss_or_duplicates(void **state)
{
    tail_fx_t t;
    char logs[600];
    (void)state;
    fx_init(&t, CONFIG_SMALL_QUEUE);
    snprintf(logs, sizeof(logs), "%s/logs", t.srv.root);
    assert_int_equal(mkdir(logs, 0755), 0);
    append_lines(t.file, "r", 0, 5000); /* there before the first start */
    assert_int_equal(te_it_start(&t.srv, t.extra), 0);
    expect_count(&t, 5000);

    /* SIGTERM while lines keep coming, more written while stopped, a partial
     * line across the restart */
    append_lines(t.file, "r", 5000, 20000);
    assert_int_equal(te_it_stop(&t.srv, SIGTERM, 10000), 0);
    append_lines(t.file, "r", 20000, 20010);
    append(t.file, "{\"model\":\"across\",");
    assert_int_equal(te_it_start(&t.srv, t.extra), 0);
    expect_count(&t, 20010);
    append(t.file, "\"latency_ms\":1}\n");
    expect_count(&t, 20011);
    wait_saved(&t, 10000);
    assert_int_equal(te_it_count(&t.srv, "llm_call", "where=model:r-19999"), 1);

    /* kill -9 once the saved position is on disk: nothing read twice */
    append_lines(t.file, "k", 0, 100);
    expect_count(&t, 20111);
    wait_saved(&t, 10000);
    te_it_kill9(&t.srv);
    assert_int_equal(te_it_start(&t.srv, t.extra), 0);
    append_lines(t.file, "k", 100, 101); /* something new, to see the tail is past the rest */
    expect_count(&t, 20112);

    /* kill -9 in the middle of a big file: nothing lost; at most the batches
     * committed but not yet in the positions file come again */
    append_lines(t.file, "z", 0, 30000);
    int64_t deadline = te_it_now_ms() + 10000;
    while (te_it_count(&t.srv, "llm_call", NULL) < 25000 && te_it_now_ms() < deadline)
        usleep(5000);
    te_it_kill9(&t.srv);
    assert_int_equal(te_it_start(&t.srv, t.extra), 0);
    wait_saved(&t, 20000);
    long got = te_it_count(&t.srv, "llm_call", NULL);
    fprintf(stderr, "after kill -9 mid-file: %ld events for 50112 lines\n", got);
    assert_true(got >= 50112);
    assert_true(got <= 50112 + 1000);
    assert_int_equal(te_it_stop(&t.srv, SIGTERM, 10000), 0);
    te_it_cleanup(&t.srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(follows_appends_rejects_truncation_and_rotation),
        cmocka_unit_test(restarts_resume_without_loss_or_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
