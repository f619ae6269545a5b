/*
 * test_writer.c - the bounded queue and the writer thread
 * (pipeline/writer.c): group commit, the queue bound (TE_EFULL, has_room,
 * a batch larger than the queue), submit_wait, stop drains, duplicates, and
 * a failed transaction (disk full) storing nothing of its batches.
 *
 * Determinism: a "gate" batch whose done callback blocks on the writer
 * thread until the test opens the gate; everything submitted meanwhile
 * queues up, so what the next transaction holds is known exactly.
 *
 * THREAD: main (producer) and the writer thread (done callbacks).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/event.h"
#include "core/time.h"
#include "pipeline/writer.h"
#include "store/store.h"
#include "store/store_int.h" /* st->db: max_page_count to simulate a full disk */

#define SEC INT64_C(1000000000)

typedef struct fx {
    char dir[64];
    char db[128];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool gate_open;
    bool gate_reached;
    int done, failed;
    size_t stored, dups;
    char last_err[TE_ERR_MSG_MAX];
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/te-writer-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/telemetry.db", f->dir);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
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
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f);
    return 0;
}

static te_store_t *open_rw(fx_t *f)
{
    te_store_opts_t o = {.path = f->db};
    te_store_t *st = NULL;
    te_err_t err = {0};
    if (te_store_open(&o, &st, &err) != 0)
        fail_msg("open: %s", err.msg);
    return st;
}

static void on_done(te_batch_t *b)
{
    fx_t *f = b->ud;
    pthread_mutex_lock(&f->lock);
    f->done++;
    if (b->rc < 0) {
        f->failed++;
        snprintf(f->last_err, sizeof(f->last_err), "%s", b->err.msg);
    }
    f->stored += b->stored;
    f->dups += b->duplicates;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    te_batch_free(b);
}

static void on_done_gate(te_batch_t *b)
{
    fx_t *f = b->ud;
    pthread_mutex_lock(&f->lock);
    f->gate_reached = true;
    pthread_cond_broadcast(&f->cond);
    while (!f->gate_open)
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
    on_done(b);
}

/* n events "k" with ids base..base+n-1 (source s) and an optional body. */
static te_batch_t *batch(fx_t *f, int base, int n, bool gate, size_t body_bytes)
{
    te_batch_t *b = te_batch_new(2); /* small cap: exercises te_batch_take growth */
    assert_non_null(b);
    char *js = malloc(256 + body_bytes);
    for (int i = 0; i < n; i++) {
        int len = snprintf(js, 256, "{\"kind\":\"k\",\"source\":\"s\",\"id\":\"e%d\",\"ts\":%d,"
                                    "\"tags\":{\"h\":\"h%d\"},\"fields\":{\"n\":%d}",
                           base + i, 1700000000 + base + i, (base + i) % 5, base + i);
        if (body_bytes) {
            len += sprintf(js + len, ",\"body\":\"");
            memset(js + len, 'x', body_bytes);
            len += (int)body_bytes;
            len += sprintf(js + len, "\"");
        }
        strcpy(js + len, "}");
        te_event_opts_t o = {NULL, NULL, 0};
        te_event_t *ev = NULL;
        te_err_t err = {0};
        if (te_event_parse(js, strlen(js), &o, &ev, &err) != 0)
            fail_msg("parse: %s", err.msg);
        assert_int_equal(te_batch_take(b, ev), 0);
    }
    free(js);
    b->done = gate ? on_done_gate : on_done;
    b->ud = f;
    return b;
}

static void wait_done(fx_t *f, int n)
{
    int64_t deadline = te_time_mono_ns() + 30 * SEC;
    pthread_mutex_lock(&f->lock);
    while (f->done < n && te_time_mono_ns() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&f->cond, &f->lock, &ts);
    }
    int done = f->done;
    pthread_mutex_unlock(&f->lock);
    assert_int_equal(done, n);
}

static void wait_gate(fx_t *f)
{
    pthread_mutex_lock(&f->lock);
    while (!f->gate_reached)
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
}

static void open_gate(fx_t *f)
{
    pthread_mutex_lock(&f->lock);
    f->gate_open = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static int64_t stored_in(fx_t *f)
{
    te_store_opts_t o = {.path = f->db, .readonly = true};
    te_store_t *st = NULL;
    te_err_t err = {0};
    if (te_store_open(&o, &st, &err) != 0)
        fail_msg("open: %s", err.msg);
    te_store_stats_t s;
    assert_int_equal(te_store_stats(st, &s, &err), 0);
    te_store_close(st);
    return s.events;
}

static void writer_group_commits_queued_batches(void **state)
{
    fx_t *f = *state;
    te_writer_t *w = NULL;
    te_writer_opts_t o = {.max_queued_events = 100000, .max_txn_events = 5000};
    assert_int_equal(te_writer_start(open_rw(f), &o, &w, NULL), 0);
    assert_int_equal(te_writer_submit(w, batch(f, 0, 10, true, 0)), 0);
    wait_gate(f); /* first transaction committed; its done blocks the writer */
    for (int i = 0; i < 200; i++)
        assert_int_equal(te_writer_submit(w, batch(f, 10 + i * 50, 50, false, 0)), 0);
    te_writer_stats_t s;
    te_writer_get_stats(w, &s);
    assert_int_equal(s.queued_batches, 200);
    assert_int_equal(s.queued_events, 10000);
    assert_int_equal(s.commits, 1);
    open_gate(f);
    wait_done(f, 201);
    te_writer_get_stats(w, &s);
    /* 10000 queued events at 5000 per transaction: exactly two more commits */
    assert_int_equal(s.commits, 3);
    assert_int_equal(s.stored_events, 10010);
    assert_int_equal(s.committed_events, 10010);
    assert_int_equal(s.queued_events, 0);
    assert_int_equal(s.queued_batches, 0);
    assert_int_equal(s.commit_failures, 0);
    uint64_t hist = 0;
    for (int i = 0; i < 12; i++)
        hist += s.commit_hist[i];
    assert_int_equal(hist, 3);
    assert_true(s.commit_ns_max > 0 && s.commit_ns_total >= s.commit_ns_max);
    assert_true(te_writer_buckets[11] > 1e100);
    /* re-sending the same ids: accepted as duplicates, not stored */
    assert_int_equal(te_writer_submit(w, batch(f, 0, 30, false, 0)), 0);
    wait_done(f, 202);
    te_writer_get_stats(w, &s);
    assert_int_equal(s.duplicate_events, 30);
    assert_int_equal(f->dups, 30);
    te_writer_stop(w);
    assert_int_equal(stored_in(f), 10010);
}

static void writer_queue_bound_returns_efull(void **state)
{
    fx_t *f = *state;
    te_writer_t *w = NULL;
    te_writer_opts_t o = {.max_queued_events = 100};
    assert_int_equal(te_writer_start(open_rw(f), &o, &w, NULL), 0);
    /* larger than the whole queue, queue empty: accepted */
    assert_int_equal(te_writer_submit(w, batch(f, 0, 150, true, 0)), 0);
    wait_gate(f);
    assert_true(te_writer_has_room(w, 100));
    assert_true(te_writer_has_room(w, 1000)); /* empty: any size fits */
    assert_int_equal(te_writer_submit(w, batch(f, 1000, 60, false, 0)), 0);
    assert_true(te_writer_has_room(w, 40));
    assert_false(te_writer_has_room(w, 41));
    te_batch_t *big = batch(f, 2000, 41, false, 0);
    assert_int_equal(te_writer_submit(w, big), TE_EFULL); /* caller keeps it */
    assert_int_equal(te_writer_submit(w, batch(f, 3000, 40, false, 0)), 0);
    assert_false(te_writer_has_room(w, 1));
    assert_true(te_writer_has_room(w, 0));
    open_gate(f);
    /* submit_wait blocks until the writer frees room, then queues */
    assert_int_equal(te_writer_submit_wait(w, big), 0);
    wait_done(f, 4);
    te_writer_stop(w);
    assert_int_equal(stored_in(f), 150 + 60 + 40 + 41);
}

static void writer_stop_drains_everything(void **state)
{
    fx_t *f = *state;
    te_writer_t *w = NULL;
    te_writer_opts_t o = {.max_queued_events = 1000000, .max_txn_events = 700};
    assert_int_equal(te_writer_start(open_rw(f), &o, &w, NULL), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(te_writer_submit(w, batch(f, i * 100, 100, false, 0)), 0);
    te_writer_stop(w); /* returns only after every done ran */
    assert_int_equal(f->done, 100);
    assert_int_equal(f->failed, 0);
    assert_int_equal(f->stored, 10000);
    assert_int_equal(stored_in(f), 10000);
    te_writer_stop(NULL);
}

static void writer_disk_full_fails_whole_transaction(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    /* allow about 800 KiB more than the empty schema takes */
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(st->db, "PRAGMA page_count", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    long long pages = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
             pages + 800 * 1024 / te_store_page_size(st));
    assert_int_equal(sqlite3_exec(st->db, sql, NULL, NULL, NULL), SQLITE_OK);
    te_writer_t *w = NULL;
    te_writer_opts_t o = {.max_queued_events = 100000, .max_txn_events = 100000};
    assert_int_equal(te_writer_start(st, &o, &w, NULL), 0);
    assert_int_equal(te_writer_submit(w, batch(f, 0, 5, true, 0)), 0);
    wait_gate(f);
    /* two batches in one transaction; together ~2 MiB of bodies: too big */
    assert_int_equal(te_writer_submit(w, batch(f, 100, 10, false, 0)), 0);
    assert_int_equal(te_writer_submit(w, batch(f, 200, 500, false, 4000)), 0);
    open_gate(f);
    wait_done(f, 3);
    assert_int_equal(f->failed, 2);
    if (!strstr(f->last_err, "store: disk full:") || !strstr(f->last_err, f->dir))
        fail_msg("error: %s", f->last_err);
    te_writer_stats_t s;
    te_writer_get_stats(w, &s);
    assert_int_equal(s.commit_failures, 1);
    assert_int_equal(s.failed_events, 510);
    assert_int_equal(s.stored_events, 5);
    uint64_t hist = 0;
    for (int i = 0; i < 12; i++)
        hist += s.commit_hist[i];
    assert_int_equal(hist, s.commits + s.commit_failures); /* failed ones are timed too */
    /* the writer goes on: a small batch afterwards commits */
    assert_int_equal(te_writer_submit(w, batch(f, 100, 10, false, 0)), 0);
    wait_done(f, 4);
    assert_int_equal(f->failed, 2);
    te_writer_stop(w);
    assert_int_equal(stored_in(f), 15); /* nothing of the failed transaction */
}

static void writer_lock_held_elsewhere_fails_batch_then_recovers(void **state)
{
    fx_t *f = *state;
    te_store_opts_t so = {.path = f->db, .busy_timeout_ms = 50};
    te_store_t *st = NULL;
    assert_int_equal(te_store_open(&so, &st, NULL), 0);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    te_writer_t *w = NULL;
    assert_int_equal(te_writer_start(st, NULL, &w, NULL), 0);
    assert_int_equal(te_writer_submit(w, batch(f, 0, 3, false, 0)), 0);
    wait_done(f, 1);
    assert_int_equal(f->failed, 1);
    if (!strstr(f->last_err, "another process holds the write lock"))
        fail_msg("error: %s", f->last_err);
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(te_writer_submit(w, batch(f, 0, 3, false, 0)), 0);
    wait_done(f, 2);
    assert_int_equal(f->failed, 1);
    assert_int_equal(f->stored, 3);
    te_writer_stop(w);
    assert_int_equal(stored_in(f), 3);
}

static int apply_note(te_store_t *st, void *ud, te_err_t *err)
{
    const char *sql = ud;
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        te_err_set(err, TE_ESQLITE, "apply: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return TE_ESQLITE;
    }
    return 0;
}

static int64_t notes_in(fx_t *f)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t n = -1;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM notes", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static void writer_apply_commits_with_events_or_not_at_all(void **state)
{
    fx_t *f = *state;
    te_store_t *st = open_rw(f);
    assert_int_equal(sqlite3_exec(st->db, "CREATE TABLE notes(x)", NULL, NULL, NULL), SQLITE_OK);
    te_writer_t *w = NULL;
    assert_int_equal(te_writer_start(st, NULL, &w, NULL), 0);
    te_batch_t *b = batch(f, 0, 3, false, 0);
    b->apply = apply_note;
    b->apply_ud = (void *)"INSERT INTO notes VALUES (1)";
    assert_int_equal(te_writer_submit(w, b), 0);
    te_batch_t *empty = te_batch_new(0); /* no events: only the apply */
    empty->apply = apply_note;
    empty->apply_ud = (void *)"INSERT INTO notes VALUES (2)";
    empty->done = on_done;
    empty->ud = f;
    assert_int_equal(te_writer_submit(w, empty), 0);
    wait_done(f, 2);
    assert_int_equal(f->failed, 0);
    /* a failing apply fails its transaction: the events are not stored */
    b = batch(f, 100, 4, false, 0);
    b->apply = apply_note;
    b->apply_ud = (void *)"INSERT INTO no_such_table VALUES (1)";
    assert_int_equal(te_writer_submit(w, b), 0);
    wait_done(f, 3);
    assert_int_equal(f->failed, 1);
    if (!strstr(f->last_err, "no such table"))
        fail_msg("error: %s", f->last_err);
    te_writer_stop(w);
    assert_int_equal(stored_in(f), 3);
    assert_int_equal(notes_in(f), 2);
}

static void writer_checkpoints_keep_the_wal_bounded(void **state)
{
    fx_t *f = *state;
    te_writer_t *w = NULL;
    assert_int_equal(te_writer_start(open_rw(f), NULL, &w, NULL), 0);
    /* ~80 MiB of bodies through many commits: without checkpoints (autocheckpoint
     * is off on the writer's connection) the WAL would hold all of it */
    for (int i = 0; i < 80; i++) {
        assert_int_equal(te_writer_submit_wait(w, batch(f, i * 250, 250, false, 4000)), 0);
        wait_done(f, i + 1);
    }
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", f->db);
    struct stat sb;
    assert_int_equal(stat(wal, &sb), 0);
    te_writer_stop(w);
    assert_int_equal(stored_in(f), 20000);
    if (sb.st_size > 48 * 1024 * 1024)
        fail_msg("WAL is %lld bytes", (long long)sb.st_size);
}

static size_t null_slots;

static void on_done_count_null(te_batch_t *b)
{
    fx_t *f = b->ud;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < b->n; i++)
        if (!b->events[i])
            null_slots++;
    pthread_mutex_unlock(&f->lock);
    on_done(b);
}

static void writer_duplicates_leave_null_slots(void **state)
{
    fx_t *f = *state;
    te_writer_t *w = NULL;
    assert_int_equal(te_writer_start(open_rw(f), NULL, &w, NULL), 0);
    null_slots = 0;
    te_batch_t *b = batch(f, 0, 3, false, 0);
    b->done = on_done_count_null;
    assert_int_equal(te_writer_submit(w, b), 0);
    wait_done(f, 1);
    assert_int_equal(null_slots, 0);
    b = batch(f, 1, 4, false, 0); /* e1, e2 again, e3, e4 new */
    b->done = on_done_count_null;
    assert_int_equal(te_writer_submit(w, b), 0);
    wait_done(f, 2);
    assert_int_equal(null_slots, 2);
    assert_int_equal(f->dups, 2);
    assert_int_equal(f->stored, 5);
    te_writer_stop(w);
    assert_int_equal(stored_in(f), 5);
}

static void batch_new_take_free(void **state)
{
    (void)state;
    te_batch_t *b = te_batch_new(0);
    assert_non_null(b);
    for (int i = 0; i < 40; i++) {
        te_event_t *ev = NULL;
        assert_int_equal(te_event_parse("{\"kind\":\"a\"}", 12, NULL, &ev, NULL), 0);
        assert_int_equal(te_batch_take(b, ev), 0);
    }
    assert_int_equal(b->n, 40);
    assert_true(b->cap >= 40);
    te_batch_free(b);
    te_batch_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(writer_group_commits_queued_batches),
        T(writer_queue_bound_returns_efull),
        T(writer_stop_drains_everything),
        T(writer_disk_full_fails_whole_transaction),
        T(writer_lock_held_elsewhere_fails_batch_then_recovers),
        T(writer_apply_commits_with_events_or_not_at_all),
        T(writer_duplicates_leave_null_slots),
        T(writer_checkpoints_keep_the_wal_bounded),
        cmocka_unit_test(batch_new_take_free),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
