/*
 * bench_ceiling.c - the raw ceiling: the least work any engine must do to
 * store these events, in one C loop without threads, network or checks.
 *
 *   bench_ceiling --file EVENTS.ndjson --db PATH [--total N]
 *
 * For each NDJSON line: cJSON_Parse, read "ts" and "kind", insert
 * (ts, kind, the JSON text) into one SQLite table through a prepared
 * statement; WAL, synchronous=NORMAL, 10,000 rows per transaction. The file
 * is read into memory first and cycled until --total lines are stored.
 * Prints "events=N seconds=S events_per_s=R". telemetry-engine's figures
 * are printed as a ratio of this one by bench/run.sh.
 *
 * THREAD: main only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_ceiling: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *dbpath = NULL;
    long total = 1000000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--file"))
            file = argv[i + 1];
        else if (!strcmp(argv[i], "--db"))
            dbpath = argv[i + 1];
        else if (!strcmp(argv[i], "--total"))
            total = atol(argv[i + 1]);
        else {
            fprintf(stderr, "bench_ceiling: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!file || !dbpath || total <= 0) {
        fprintf(stderr, "usage: bench_ceiling --file F --db PATH [--total N]\n");
        return 2;
    }
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "bench_ceiling: cannot open %s: %s\n", file, strerror(errno));
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *all = malloc((size_t)size + 1);
    if (!all || fread(all, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        return 1;
    }
    fclose(f);
    all[size] = '\0';

    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    if (sqlite3_open(dbpath, &db) != SQLITE_OK) {
        fprintf(stderr, "bench_ceiling: open %s: %s\n", dbpath, sqlite3_errmsg(db));
        return 1;
    }
    if (exec(db, "PRAGMA journal_mode=WAL") || exec(db, "PRAGMA synchronous=NORMAL") ||
        exec(db, "CREATE TABLE IF NOT EXISTS ev(ts TEXT, kind TEXT, json TEXT)"))
        return 1;
    if (sqlite3_prepare_v2(db, "INSERT INTO ev(ts, kind, json) VALUES (?, ?, ?)", -1, &ins,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_ceiling: prepare: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    double t0 = now_s();
    long n = 0, in_txn = 0;
    char *p = all, *end = all + size;
    exec(db, "BEGIN");
    while (n < total) {
        if (p >= end)
            p = all;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        *le = '\0';
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(le - p));
        if (j) {
            cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "ts");
            cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
            sqlite3_bind_text(ins, 1, cJSON_IsString(ts) ? ts->valuestring : "", -1,
                              SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, cJSON_IsString(kind) ? kind->valuestring : "", -1,
                              SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 3, p, (int)(le - p), SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE) {
                fprintf(stderr, "bench_ceiling: insert: %s\n", sqlite3_errmsg(db));
                return 1;
            }
            sqlite3_reset(ins);
            cJSON_Delete(j);
            n++;
            if (++in_txn == 10000) {
                exec(db, "COMMIT");
                exec(db, "BEGIN");
                in_txn = 0;
            }
        }
        if (nl)
            *nl = '\n';
        p = le + 1;
    }
    exec(db, "COMMIT");
    double secs = now_s() - t0;
    printf("events=%ld seconds=%.3f events_per_s=%.0f\n", n, secs, (double)n / secs);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    free(all);
    return 0;
}
