/*
 * test_tail.c - following JSONL files (ingest/tail.c) on a real loop,
 * writer and store: complete lines only (a partial line waits for its
 * newline), the block's kind/source as defaults, a leading UTF-8 BOM, bad and over-long lines
 * rejected without stopping, a file that appears late, truncation,
 * rotation (the old file finished first), and the positions file: a second
 * tail resumes exactly where the first one's commits ended.
 *
 * THREAD: main (the loop) and the writer thread (done callbacks, which
 * only queue the batch and wake the loop, as the engine does).
 * Nothing sleeps for a guessed time: run_until turns the loop until a
 * condition holds or a deadline passes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "core/event.h"
#include "core/time.h"
#include "ingest/tail.h"
#include "ingest/tail_pos.h"
#include "pipeline/writer.h"
#include "store/store.h"

#define MAX_SEEN 256

typedef struct fx {
    char dir[64];
    char db[128];
    char file[128];
    char positions[160];
    uv_loop_t loop;
    uv_async_t async;
    te_writer_t *w;
    te_tail_t *tail;
    pthread_mutex_t lock;
    te_batch_t *done_head;      /* guarded by lock */
    char *seen[MAX_SEEN];       /* "kind|source|model" of each committed event */
    size_t nseen;
} fx_t;

/* writer thread: hand the batch to the loop */
static void on_done(te_batch_t *b)
{
    fx_t *f = b->ud;
    pthread_mutex_lock(&f->lock);
    b->next = f->done_head;
    f->done_head = b;
    pthread_mutex_unlock(&f->lock);
    uv_async_send(&f->async);
}

static void on_async(uv_async_t *h)
{
    fx_t *f = h->data;
    pthread_mutex_lock(&f->lock);
    te_batch_t *b = f->done_head, *rev = NULL;
    f->done_head = NULL;
    pthread_mutex_unlock(&f->lock);
    while (b) { /* back to submission order */
        te_batch_t *n = b->next;
        b->next = rev;
        rev = b;
        b = n;
    }
    while (rev) {
        te_batch_t *n = rev->next;
        te_tail_committed(f->tail, rev);
        for (size_t i = 0; rev->rc == 0 && i < rev->n; i++) {
            const te_event_t *ev = rev->events[i];
            char s[256];
            if (!ev || f->nseen >= MAX_SEEN)
                continue;
            const char *model = te_event_tag(ev, "model");
            snprintf(s, sizeof(s), "%s|%s|%s", ev->kind, ev->source ? ev->source : "-",
                     model ? model : "-");
            f->seen[f->nseen++] = strdup(s);
        }
        te_batch_free(rev);
        rev = n;
    }
}

static int fx_setup(void **state)
{
    te_err_t err;
    te_store_t *st = NULL;
    fx_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/te-tail-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/telemetry.db", f->dir);
    snprintf(f->file, sizeof(f->file), "%s/calls.jsonl", f->dir);
    snprintf(f->positions, sizeof(f->positions), "%s/telemetry.db.tail-positions", f->dir);
    pthread_mutex_init(&f->lock, NULL);
    uv_loop_init(&f->loop);
    uv_async_init(&f->loop, &f->async, on_async);
    f->async.data = f;
    te_store_opts_t so = {.path = f->db, .durability = 0};
    if (te_store_open(&so, &st, &err) < 0 || te_writer_start(st, NULL, &f->w, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    te_writer_stop(f->w);
    on_async(&f->async);
    uv_close((uv_handle_t *)&f->async, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (size_t i = 0; i < f->nseen; i++)
        free(f->seen[i]);
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)) != NULL) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(f->dir);
    pthread_mutex_destroy(&f->lock);
    free(f);
    return 0;
}

static void append(const char *path, const char *text)
{
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static void start_tail(fx_t *f, size_t max_line)
{
    te_err_t err;
    te_tail_source_t src = {.name = "calls", .path = f->file, .kind = "llm_call",
                            .source = "empathy"};
    te_tail_opts_t o = {.sources = &src, .nsources = 1, .positions_path = f->positions,
                        .max_line_bytes = max_line, .poll_ms = 10, .rotate_wait_ms = 30,
                        .w = f->w, .done = on_done, .done_ud = f};
    assert_int_equal(te_tail_start(&f->loop, &o, &f->tail, &err), 0);
}

static te_tail_source_stats_t stats(fx_t *f)
{
    te_tail_source_stats_t s;
    te_tail_source_stats(f->tail, 0, &s);
    return s;
}

typedef bool (*cond_fn)(fx_t *f, uint64_t want);

static bool seen_at_least(fx_t *f, uint64_t want)
{
    return f->nseen >= want;
}

static bool rejected_at_least(fx_t *f, uint64_t want)
{
    return stats(f).rejected >= want;
}

static bool all_committed(fx_t *f, uint64_t want)
{
    (void)want;
    te_tail_source_stats_t s = stats(f);
    return s.committed == s.submitted;
}

static void run_until(fx_t *f, cond_fn cond, uint64_t want, const char *what)
{
    int64_t deadline = te_time_mono_ns() + 5 * TE_NS_PER_SEC;
    while (!cond(f, want)) {
        if (te_time_mono_ns() > deadline)
            fail_msg("timed out waiting for %s (%llu); seen %zu events", what,
                     (unsigned long long)want, f->nseen);
        uv_run(&f->loop, UV_RUN_ONCE); /* the tail's 10 ms timer wakes it */
    }
}

/* Closes the tail once every batch is back; its handles close on the loop. */
static void stop_tail(fx_t *f)
{
    te_tail_close(f->tail);
    run_until(f, all_committed, 0, "commits");
    te_tail_free(f->tail);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    f->tail = NULL;
}

static void test_lines_defaults_and_rejects(void **state)
{
    fx_t *f = *state;
    append(f->file, "\xEF\xBB\xBF{\"model\":\"a\",\"latency_ms\":1}\n" /* BOM skipped */
                    "{\"kind\":\"run\",\"source\":\"ci\",\"model\":\"b\"}\n"
                    "{\"model\":\"broken\"\n"
                    "\n"
                    "{\"kind\":\"llm_call\",\"fields\":{\"latency_ms\":\"slow\"}}\r\n"
                    "{\"model\":\"c\",\"lat");
    start_tail(f, 0);
    run_until(f, seen_at_least, 2, "the first two events");
    run_until(f, rejected_at_least, 2, "two rejections");
    assert_string_equal(f->seen[0], "llm_call|empathy|a");
    assert_string_equal(f->seen[1], "run|ci|b");
    te_tail_source_stats_t s = stats(f);
    assert_int_equal(s.lines, 5);           /* the partial line is not a line yet */
    assert_string_equal(s.state, "following");
    append(f->file, "ency_ms\":5}\n");
    run_until(f, seen_at_least, 3, "the completed line");
    assert_string_equal(f->seen[2], "llm_call|empathy|c");
    stop_tail(f);
    assert_int_equal(f->nseen, 3);
}

static void test_long_lines(void **state)
{
    fx_t *f = *state;
    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char line[512];
    snprintf(line, sizeof(line), "{\"model\":\"%s\"}\n{\"model\":\"ok1\"}\n", big);
    append(f->file, line);
    start_tail(f, 100);
    run_until(f, seen_at_least, 1, "the line after the long one");
    assert_int_equal(stats(f).rejected, 1);
    /* an over-long line split across reads: dropped until its newline */
    append(f->file, "{\"model\":\"");
    append(f->file, big);
    run_until(f, all_committed, 0, "idle");
    uv_run(&f->loop, UV_RUN_ONCE);
    append(f->file, big);
    append(f->file, "\"}\n{\"model\":\"ok2\"}\n");
    run_until(f, seen_at_least, 2, "the line after the second long one");
    assert_int_equal(stats(f).rejected, 2);
    assert_string_equal(f->seen[1], "llm_call|empathy|ok2");
    stop_tail(f);
}

static void test_late_file_truncate_rotate(void **state)
{
    fx_t *f = *state;
    char old[160];
    start_tail(f, 0);
    run_until(f, all_committed, 0, "start");
    uv_run(&f->loop, UV_RUN_ONCE);
    assert_string_equal(stats(f).state, "waiting");
    append(f->file, "{\"model\":\"m1\"}\n{\"model\":\"m2\"}\n");
    run_until(f, seen_at_least, 2, "the file that appeared");

    /* copytruncate: shorter than the offset, read again from byte 0 */
    assert_int_equal(truncate(f->file, 0), 0);
    append(f->file, "{\"model\":\"t1\"}\n");
    run_until(f, seen_at_least, 3, "the line after truncation");
    assert_int_equal(stats(f).truncations, 1);
    assert_string_equal(f->seen[2], "llm_call|empathy|t1");

    /* rename + create: the old file's late line comes first */
    snprintf(old, sizeof(old), "%s.1", f->file);
    assert_int_equal(rename(f->file, old), 0);
    append(old, "{\"model\":\"late-old\"}\n");
    append(f->file, "{\"model\":\"n1\"}\n{\"model\":\"n2\"}\n");
    run_until(f, seen_at_least, 6, "the new file");
    assert_string_equal(f->seen[3], "llm_call|empathy|late-old");
    assert_string_equal(f->seen[4], "llm_call|empathy|n1");
    assert_string_equal(f->seen[5], "llm_call|empathy|n2");
    assert_int_equal(stats(f).rotations, 1);
    stop_tail(f);
    unlink(old);
}

static bool is_waiting(fx_t *f, uint64_t want)
{
    (void)want;
    return strcmp(stats(f).state, "waiting") == 0;
}

/* removed (not replaced): the old file is closed after its quiet time and
 * the path waited for again */
static void test_removed_then_recreated(void **state)
{
    fx_t *f = *state;
    append(f->file, "{\"model\":\"g1\"}\n{\"model\":\"g2\"}\n");
    start_tail(f, 0);
    run_until(f, seen_at_least, 2, "two events");
    assert_int_equal(unlink(f->file), 0);
    run_until(f, is_waiting, 0, "the tail to wait for the path again");
    append(f->file, "{\"model\":\"g3\"}\n");
    run_until(f, seen_at_least, 3, "the re-created file");
    assert_string_equal(f->seen[2], "llm_call|empathy|g3");
    assert_int_equal(stats(f).rotations, 0);
    stop_tail(f);
}

static void test_resume_from_positions(void **state)
{
    fx_t *f = *state;
    append(f->file, "{\"model\":\"r1\"}\n{\"model\":\"r2\"}\n{\"model\":\"r3\"}\n{\"model\":\"par");
    start_tail(f, 0);
    run_until(f, seen_at_least, 3, "three events");
    stop_tail(f);

    /* the positions file names the byte just past line 3 */
    FILE *fp = fopen(f->positions, "rb");
    assert_non_null(fp);
    char text[1024] = {0};
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    assert_true(n > 0);
    assert_non_null(strstr(text, "\"offset\":\t45"));
    assert_non_null(strstr(text, "\"line\":\t3"));

    append(f->file, "tial\"}\n{\"model\":\"r5\"}\n");
    start_tail(f, 0);
    run_until(f, seen_at_least, 5, "the lines after the saved position");
    stop_tail(f);
    assert_int_equal(f->nseen, 5);
    assert_string_equal(f->seen[3], "llm_call|empathy|partial");
    assert_string_equal(f->seen[4], "llm_call|empathy|r5");

    /* a third start with nothing new reads nothing */
    start_tail(f, 0);
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    te_tail_source_stats_t s = stats(f);
    assert_int_equal(s.read_offset, 45 + 20 + 15);
    assert_int_equal(s.lines, 0);
    stop_tail(f);
    assert_int_equal(f->nseen, 5);
}

static void on_pos(void *ud, const char *name, const char *path, const te_tail_pos_t *pos)
{
    te_tail_pos_entry_t *got = ud;
    got->name = strdup(name);
    got->path = strdup(path);
    got->pos = *pos;
}

/* round trip with numbers past 2^53; a corrupt file is an error the tail
 * logs, then reads from byte 0 */
static void test_positions_file(void **state)
{
    fx_t *f = *state;
    te_err_t err;
    te_tail_pos_entry_t e = {.name = "a \"b\"", .path = "/x/y.jsonl",
                             .pos = {true, UINT64_C(18446744073709551557),
                                     UINT64_C(9007199254740993), 12345, 67}};
    te_tail_pos_entry_t got = {0};
    assert_int_equal(te_tail_pos_write(f->positions, &e, 1, &err), 0);
    assert_int_equal(te_tail_pos_read(f->positions, on_pos, &got, &err), 0);
    assert_string_equal(got.name, e.name);
    assert_string_equal(got.path, e.path);
    assert_true(got.pos.dev == e.pos.dev && got.pos.ino == e.pos.ino);
    assert_true(got.pos.off == 12345 && got.pos.line == 67);
    free((char *)got.name);
    free((char *)got.path);

    append(f->positions, "garbage");
    assert_int_equal(te_tail_pos_read(f->positions, on_pos, &got, &err), TE_EPARSE);
    assert_int_equal(truncate(f->positions, 10), 0);
    assert_int_equal(te_tail_pos_read(f->positions, on_pos, &got, &err), TE_EPARSE);
    assert_non_null(strstr(err.msg, "is not a positions file"));
    append(f->file, "{\"model\":\"p1\"}\n");
    start_tail(f, 0);
    run_until(f, seen_at_least, 1, "the line, read from byte 0");
    stop_tail(f);
    /* rewritten whole: valid again */
    assert_int_equal(te_tail_pos_read(f->positions, on_pos, &got, &err), 0);
    assert_string_equal(got.name, "calls");
    assert_true(got.pos.off == 15 && got.pos.line == 1);
    free((char *)got.name);
    free((char *)got.path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lines_defaults_and_rejects, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_long_lines, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_late_file_truncate_rotate, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_removed_then_recreated, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_resume_from_positions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_positions_file, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
