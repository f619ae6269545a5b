/*
 * db.c - opening the SQLite store: pragmas, migrations, the te_field() SQL
 * function, stats, integrity check and online backup.
 *
 * THREAD: one thread at a time per te_store_t (see store.h).
 *
 * The one idea: one file in WAL mode. The writer holds the only read-write
 * connection; readers (API workers, CLI commands while `serve` runs) open
 * their own SQLITE_OPEN_READONLY connections and never block it. Durability
 * "process" is synchronous=NORMAL (a committed transaction survives a
 * process crash: it is in the WAL, fsynced at checkpoints), "power" is
 * synchronous=FULL (the WAL is fsynced at every commit).
 */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rollup_1h.h"
#include "rollup_int.h"
#include "sql.h"
#include "store_int.h"

int te_store_sqlerr(te_store_t *st, int sqlrc, te_err_t *err, const char *what)
{
    const char *msg = st && st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(sqlrc);
    int prim = sqlrc & 0xff;
    if (prim == SQLITE_FULL)
        return te_err_set(err, TE_ESQLITE, "store: disk full: %s: %s (free space in %s)", what,
                          msg, st && st->dir ? st->dir : ".");
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return te_err_set(err, TE_ESQLITE,
                          "store: %s: %s (another process holds the write lock on %s)", what, msg,
                          st && st->path ? st->path : "the database");
    if (prim == SQLITE_READONLY)
        return te_err_set(err, TE_ESQLITE, "store: %s: %s (is %s writable?)", what, msg,
                          st && st->dir ? st->dir : "the data folder");
    return te_err_set(err, TE_ESQLITE, "store: %s: %s", what, msg);
}

/* te_field(fields_blob, name): the named field of an event row, NULL when
 * absent, for ad-hoc SQL: SELECT te_field(fields, 'latency_ms') FROM events. */
static void sql_te_field(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) != SQLITE_BLOB || sqlite3_value_type(argv[1]) == SQLITE_NULL)
        return;
    const unsigned char *blob = sqlite3_value_blob(argv[0]);
    int len = sqlite3_value_bytes(argv[0]);
    const char *name = (const char *)sqlite3_value_text(argv[1]);
    double v;
    if (blob && name && te_fields_blob_get(blob, (size_t)len, name, &v))
        sqlite3_result_double(ctx, v);
}

static int exec_sql(te_store_t *st, const char *sql, te_err_t *err, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, what);
    return 0;
}

static int int_pragma(te_store_t *st, const char *sql, int64_t *out, te_err_t *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, sql);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    }
    if (rc != SQLITE_DONE) {
        int r = te_store_sqlerr(st, rc, err, sql);
        sqlite3_finalize(s);
        return r;
    }
    sqlite3_finalize(s);
    return 0;
}

/* mkdir -p of the parent folder of path. */
static int make_parent(const char *dir, te_err_t *err)
{
    char buf[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return te_err_set(err, TE_EIO, "store: cannot create folder %s: %s", buf,
                              strerror(errno));
        buf[i] = c;
    }
    return 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

static int migrate(te_store_t *st, te_err_t *err)
{
    int64_t ver = 0;
    int rc = int_pragma(st, TE_SQL_USER_VERSION, &ver, err);
    if (rc < 0)
        return rc;
    if (ver > TE_SQL_SCHEMA_VERSION)
        return te_err_set(err, TE_ESQLITE,
                          "store: %s has schema version %lld, newer than this build's %d "
                          "(upgrade telemetry-engine)",
                          st->path, (long long)ver, TE_SQL_SCHEMA_VERSION);
    if (st->readonly) {
        if (ver == 0)
            return te_err_set(err, TE_ESQLITE,
                              "store: %s has no telemetry schema (start `serve` or run `ingest` "
                              "once to create it)",
                              st->path);
        if (ver < TE_SQL_SCHEMA_VERSION)
            return te_err_set(err, TE_ESQLITE,
                              "store: %s has schema version %lld, older than this build's %d "
                              "(open it read-write once to migrate)",
                              st->path, (long long)ver, TE_SQL_SCHEMA_VERSION);
        return 0;
    }
    while (ver < TE_SQL_SCHEMA_VERSION) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %lld", (long long)ver + 1);
        rc = exec_sql(st, TE_SQL_BEGIN, err, "begin migration");
        if (rc < 0)
            return rc;
        /* re-read inside the write lock: another process may have migrated */
        int64_t now = 0;
        rc = int_pragma(st, TE_SQL_USER_VERSION, &now, err);
        if (rc == 0 && now != ver) {
            sqlite3_exec(st->db, TE_SQL_ROLLBACK, NULL, NULL, NULL);
            ver = now;
            continue;
        }
        if (rc == 0)
            rc = exec_sql(st, te_sql_migrations[ver], err, "migrate schema");
        /* the one step SQL cannot do alone: packing blobs (sql_v6.h) */
        if (rc == 0 && ver == 5)
            rc = te_rollup_1h_convert(st, err);
        if (rc == 0 && ver == 6)
            rc = te_rollup_1m_convert(st, err);
        if (rc == 0)
            rc = exec_sql(st, bump, err, "migrate schema");
        if (rc == 0)
            rc = exec_sql(st, TE_SQL_COMMIT, err, "commit migration");
        if (rc < 0) {
            sqlite3_exec(st->db, TE_SQL_ROLLBACK, NULL, NULL, NULL);
            return rc;
        }
        ver++;
    }
    return 0;
}

/* Pages of a database this build creates. SQLite's default of 4 KiB made
 * every WAL frame and checkpoint copy a system call per 4 KiB, and those
 * calls were the largest cost of an insert after SQLite's own code;
 * 16 KiB pages: `ingest` +10-20 %, the 30-day query -35 %, the same
 * bytes per event (docs/storage.md, "Page size"). A database keeps the
 * page size it was made with. */
#define TE_PAGE_SIZE 16384

static int apply_pragmas(te_store_t *st, te_durability_t dur, te_err_t *err)
{
    char sql[256];
    int rc;
    if (!st->readonly) {
        /* takes effect only on a new, empty database (before WAL mode) */
        snprintf(sql, sizeof(sql), "PRAGMA page_size = %d", TE_PAGE_SIZE);
        rc = exec_sql(st, sql, err, "set the page size");
        if (rc < 0)
            return rc;
        /* journal_mode answers with a row; sqlite3_exec ignores it */
        rc = exec_sql(st, "PRAGMA journal_mode = WAL", err, "set WAL mode");
        if (rc < 0)
            return rc;
        snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s",
                 dur == TE_DURABILITY_POWER ? "FULL" : "NORMAL");
        rc = exec_sql(st, sql, err, "set synchronous");
        if (rc < 0)
            return rc;
    }
    /* 8 MiB page cache: the B-tree pages inserts touch stay hot (series
     * lookups hit the writer's own cache); 16 MiB cost 8 MiB of peak RSS
     * in `ingest` for no throughput we could measure */
    rc = exec_sql(st,
                  "PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;"
                  " PRAGMA cache_size = -8192",
                  err, "set pragmas");
    int64_t ps = 0;
    if (rc == 0)
        rc = int_pragma(st, "PRAGMA page_size", &ps, err);
    st->page_size = ps > 0 ? (int)ps : 4096;
    return rc;
}

/* Process-wide SQLite settings, before its first use: no memory
 * statistics (nothing reads them, and keeping them takes a global mutex on
 * every allocation: ~2% of the insert path). Fails harmlessly (MISUSE)
 * when something else initialised SQLite first. */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int te_store_open(const te_store_opts_t *opts, te_store_t **out, te_err_t *err)
{
    int rc;
    if (!opts || !opts->path || !*opts->path)
        return te_err_set(err, TE_EINVAL, "store: no database path given");
    te_store_t *st = calloc(1, sizeof(*st));
    if (!st)
        return te_err_set(err, TE_ENOMEM, "store: cannot allocate");
    st->readonly = opts->readonly;
    st->busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    st->path = strdup(opts->path);
    st->dir = dir_of(opts->path);
    if (!st->path || !st->dir) {
        rc = te_err_set(err, TE_ENOMEM, "store: cannot allocate");
        goto fail;
    }
    if (!st->readonly) {
        rc = make_parent(st->dir, err);
        if (rc < 0)
            goto fail;
    }
    pthread_once(&sqlite_once, sqlite_setup);
    int flags = st->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    flags |= SQLITE_OPEN_NOMUTEX; /* one thread at a time by contract */
    int src = sqlite3_open_v2(st->path, &st->db, flags, NULL);
    if (src != SQLITE_OK) {
        rc = te_err_set(err, TE_ESQLITE, "store: cannot open %s: %s (%s)", st->path,
                        st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(src),
                        st->readonly ? "does the database exist? start `serve` or run `ingest`"
                                     : "is --data writable?");
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, st->busy_timeout_ms);
    rc = apply_pragmas(st, opts->durability, err);
    if (rc < 0)
        goto fail;
    src = sqlite3_create_function_v2(st->db, "te_field", 2,
                                     SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                     sql_te_field, NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = te_store_sqlerr(st, src, err, "register te_field()");
        goto fail;
    }
    rc = migrate(st, err);
    if (rc < 0)
        goto fail;
    if (!st->readonly) {
        rc = te_store_writer_prepare(st, err);
        if (rc < 0)
            goto fail;
    }
    *out = st;
    return 0;
fail:
    te_store_close(st);
    return rc;
}

void te_store_close(te_store_t *st)
{
    if (!st)
        return;
    if (st->db && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, TE_SQL_ROLLBACK, NULL, NULL, NULL);
    te_store_caches_free(st);
    sqlite3_close_v2(st->db);
    free(st->path);
    free(st->dir);
    free(st);
}

const char *te_store_path(const te_store_t *st)
{
    return st ? st->path : NULL;
}

int te_store_page_size(const te_store_t *st)
{
    return st->page_size;
}

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

int te_store_stats(te_store_t *st, te_store_stats_t *out, te_err_t *err)
{
    te_store_stats_t s;
    memset(&s, 0, sizeof(s));
    int64_t ver = 0;
    int rc = int_pragma(st, TE_SQL_COUNT_EVENTS, &s.events, err);
    if (rc == 0)
        rc = int_pragma(st, TE_SQL_COUNT_SERIES, &s.series, err);
    if (rc == 0)
        rc = int_pragma(st, TE_SQL_COUNT_KINDS, &s.kinds, err);
    if (rc == 0)
        rc = int_pragma(st, TE_SQL_USER_VERSION, &ver, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *q = NULL;
    int src = sqlite3_prepare_v2(st->db, TE_SQL_TS_RANGE, -1, &q, NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(q);
        if (src == SQLITE_ROW) {
            s.oldest_ts_ns = sqlite3_column_int64(q, 0);
            s.newest_ts_ns = sqlite3_column_int64(q, 1);
            src = SQLITE_DONE;
        }
    }
    if (src != SQLITE_DONE) {
        rc = te_store_sqlerr(st, src, err, "read time range");
        sqlite3_finalize(q);
        return rc;
    }
    sqlite3_finalize(q);
    s.schema_version = (int)ver;
    s.file_bytes = file_size(st->path);
    char wal[PATH_MAX];
    if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", st->path) < sizeof(wal))
        s.wal_bytes = file_size(wal);
    *out = s;
    return 0;
}

int te_store_kind_stats(te_store_t *st, te_result_t **out, te_err_t *err)
{
    static const char *const cols[] = {"kind", "events", "series"};
    te_result_t *r = te_result_new(cols, 3);
    if (!r)
        return te_err_set(err, TE_ENOMEM, "store: cannot allocate kind stats");
    sqlite3_stmt *q = NULL;
    int rc = 0;
    int src = sqlite3_prepare_v2(st->db, TE_SQL_KIND_STATS, -1, &q, NULL);
    while (src == SQLITE_OK && (src = sqlite3_step(q)) == SQLITE_ROW) {
        te_val_t *row = te_result_add_row(r);
        if (!row || te_val_set_str(&row[0], (const char *)sqlite3_column_text(q, 0),
                                   (size_t)sqlite3_column_bytes(q, 0)) < 0) {
            rc = te_err_set(err, TE_ENOMEM, "store: cannot allocate kind stats");
            goto fail;
        }
        row[1].type = TE_VAL_INT;
        row[1].u.i = sqlite3_column_int64(q, 1);
        row[2].type = TE_VAL_INT;
        row[2].u.i = sqlite3_column_int64(q, 2);
        src = SQLITE_OK;
    }
    if (src != SQLITE_DONE) {
        rc = te_store_sqlerr(st, src, err, "read kind stats");
        goto fail;
    }
    sqlite3_finalize(q);
    *out = r;
    return 0;
fail:
    sqlite3_finalize(q);
    te_result_free(r);
    return rc;
}

int te_store_check(te_store_t *st, bool quick, te_err_t *err)
{
    sqlite3_stmt *q = NULL;
    const char *sql = quick ? "PRAGMA quick_check(20)" : "PRAGMA integrity_check(20)";
    int src = sqlite3_prepare_v2(st->db, sql, -1, &q, NULL);
    char problems[TE_ERR_MSG_MAX - 64];
    size_t used = 0;
    int nrows = 0;
    bool ok = false;
    problems[0] = '\0';
    while (src == SQLITE_OK && (src = sqlite3_step(q)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(q, 0);
        nrows++;
        if (nrows == 1 && line && strcmp(line, "ok") == 0)
            ok = true;
        if (line && used + 3 < sizeof(problems)) {
            int n = snprintf(problems + used, sizeof(problems) - used, "%s%s",
                             used ? "; " : "", line);
            used = n > 0 ? used + (size_t)n : used;
            if (used >= sizeof(problems))
                used = sizeof(problems) - 1;
        }
        src = SQLITE_OK;
    }
    if (src != SQLITE_DONE && ((src & 0xff) == SQLITE_CORRUPT || (src & 0xff) == SQLITE_NOTADB)) {
        te_err_set(err, TE_ESQLITE, "store: %s is damaged: %s (restore from a backup)", st->path,
                   sqlite3_errmsg(st->db));
        sqlite3_finalize(q);
        return TE_ESQLITE;
    }
    if (src != SQLITE_DONE) {
        int rc = te_store_sqlerr(st, src, err, "integrity check");
        sqlite3_finalize(q);
        return rc;
    }
    sqlite3_finalize(q);
    if (ok && nrows == 1)
        return 0;
    return te_err_set(err, TE_ESQLITE, "store: %s is damaged: %s (restore from a backup)",
                      st->path, problems);
}

int te_store_backup(te_store_t *st, const char *dest_path,
                    void (*progress)(int remaining, int total, void *ud), void *ud,
                    te_err_t *err)
{
    if (!dest_path || !*dest_path)
        return te_err_set(err, TE_EINVAL, "store: backup: no destination file given");
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", dest_path, (long)getpid()) >=
        sizeof(tmp))
        return te_err_set(err, TE_EINVAL, "store: backup: destination path too long");
    int rc = 0;
    sqlite3 *dst = NULL;
    sqlite3_backup *bk = NULL;
    bool snapshot = false;
    unlink(tmp);
    int src = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (src != SQLITE_OK) {
        rc = te_err_set(err, TE_EIO, "store: backup: cannot create %s: %s", tmp,
                        dst ? sqlite3_errmsg(dst) : sqlite3_errstr(src));
        goto fail;
    }
    /* Hold one read transaction over the whole copy: steps then read one
     * snapshot and a concurrent writer (another connection) does not restart
     * the backup over and over. In WAL mode this never blocks the writer. */
    if (sqlite3_get_autocommit(st->db)) {
        src = sqlite3_exec(st->db, "BEGIN; " TE_SQL_READ_SNAPSHOT, NULL, NULL, NULL);
        if (src != SQLITE_OK) {
            rc = te_store_sqlerr(st, src, err, "backup: start read snapshot");
            goto fail;
        }
        snapshot = true;
    }
    bk = sqlite3_backup_init(dst, "main", st->db, "main");
    if (!bk) {
        rc = te_err_set(err, TE_ESQLITE, "store: backup: %s", sqlite3_errmsg(dst));
        goto fail;
    }
    int64_t waited_ms = 0;
    for (;;) {
        src = sqlite3_backup_step(bk, 256);
        if (progress)
            progress(sqlite3_backup_remaining(bk), sqlite3_backup_pagecount(bk), ud);
        if (src == SQLITE_DONE)
            break;
        if (src == SQLITE_OK)
            continue;
        if ((src == SQLITE_BUSY || src == SQLITE_LOCKED) && waited_ms < st->busy_timeout_ms) {
            sqlite3_sleep(10);
            waited_ms += 10;
            continue;
        }
        rc = te_store_sqlerr(st, src, err, "backup: copy pages");
        if ((src & 0xff) == SQLITE_FULL || (src & 0xff) == SQLITE_IOERR)
            rc = te_err_set(err, TE_EIO, "store: backup: cannot write %s: %s", tmp,
                            sqlite3_errstr(src));
        goto fail;
    }
    src = sqlite3_backup_finish(bk);
    bk = NULL;
    if (src != SQLITE_OK) {
        rc = te_err_set(err, TE_ESQLITE, "store: backup: %s", sqlite3_errmsg(dst));
        goto fail;
    }
    if (snapshot)
        sqlite3_exec(st->db, TE_SQL_COMMIT, NULL, NULL, NULL);
    snapshot = false;
    src = sqlite3_close(dst);
    dst = NULL;
    if (src != SQLITE_OK) {
        rc = te_err_set(err, TE_EIO, "store: backup: cannot close %s: %s", tmp,
                        sqlite3_errstr(src));
        goto fail;
    }
    if (rename(tmp, dest_path) < 0) {
        rc = te_err_set(err, TE_EIO, "store: backup: cannot rename %s to %s: %s", tmp, dest_path,
                        strerror(errno));
        goto fail;
    }
    return 0;
fail:
    if (bk)
        sqlite3_backup_finish(bk);
    if (snapshot)
        sqlite3_exec(st->db, TE_SQL_COMMIT, NULL, NULL, NULL);
    sqlite3_close(dst);
    unlink(tmp);
    return rc;
}

/* ---------- WAL checkpoints ---------- */

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    const te_store_t *st = arg;
    st->wal_fn(st->wal_ud, frames);
    return SQLITE_OK;
}

int te_store_wal_notify(te_store_t *st, void (*on_wal)(void *ud, int frames), void *ud,
                        te_err_t *err)
{
    if (st->readonly)
        return te_err_set(err, TE_EINVAL, "store: WAL notifications need a read-write store");
    /* The automatic checkpoint runs inside the COMMIT that crosses its
     * threshold: an fsync of the database file on the commit path, which is
     * what made the ack latency's tail. The writer checkpoints from its own
     * thread instead. */
    int rc = exec_sql(st, "PRAGMA wal_autocheckpoint = 0", err, "turn off autocheckpoint");
    if (rc < 0)
        return rc;
    st->wal_fn = on_wal;
    st->wal_ud = ud;
    sqlite3_wal_hook(st->db, wal_hook, st);
    return 0;
}

int te_store_checkpoint(te_store_t *st, te_err_t *err)
{
    int log_frames = 0, done_frames = 0;
    int src = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                        &done_frames);
    if (src != SQLITE_OK && src != SQLITE_BUSY)
        return te_store_sqlerr(st, src, err, "checkpoint");
    return 0;
}
