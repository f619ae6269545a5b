/*
 * db.c - `telemetry-engine db stats|check|backup FILE|restore FILE|
 *        archive --before D [--to DIR] [--kind K]|vacuum`.
 *
 * THREAD: main.
 *
 * stats, check and backup read through a read-only store, so they work
 * while serve runs (WAL readers; backup uses SQLite's online backup API).
 * vacuum and restore need the database itself: vacuum waits for the write
 * lock like any writer; restore refuses while a serve process answers on
 * the Unix socket, because a running engine's caches would not survive its
 * database being replaced underneath it. archive is a writer like ingest:
 * it works while serve runs, in short chunked transactions
 * (te_store_archive), so ingest never waits long for the write lock.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../config/config.h"
#include "../core/result.h"
#include "../core/time.h"
#include "../store/store.h"
#include "cli.h"

static const te_cli_opt_t db_opts[] = {
    {"format", 0, TE_CLI_VALUE},
    {"quick", 0, TE_CLI_FLAG},
    {"before", 0, TE_CLI_VALUE},
    {"to", 0, TE_CLI_VALUE},
    {"kind", 0, TE_CLI_VALUE},
};

void te_cli_help_db(FILE *f)
{
    fprintf(f,
            "usage: %s db stats [--format table|json]\n"
            "       %s db check [--quick]\n"
            "       %s db backup FILE\n"
            "       %s db restore FILE\n"
            "       %s db archive --before D [--to DIR] [--kind K]\n"
            "       %s db vacuum\n\n"
            "Database tools. Every form takes --config FILE and --data DIR, before or after\n"
            "its words (db --data d stats == db stats --data d).\n\n"
            "  stats          events, series, kinds, oldest/newest event, file and WAL size,\n"
            "                 schema version, then events and series per kind\n"
            "  check          integrity check: prints \"ok\" (exit 0) or the problems (exit 1);\n"
            "                 --quick runs the faster quick_check\n"
            "  backup FILE    consistent copy through SQLite's online backup API; works\n"
            "                 while serve runs\n"
            "  restore FILE   replaces the database with a backup (refused while serve runs)\n"
            "  archive        moves raw events older than D (a duration: 30d = older than\n"
            "                 30 days; or a time) to gzip NDJSON, one file per kind and UTC\n"
            "                 day, DIR/KIND/YYYY-MM-DD.ndjson.gz (default DIR: DATA/archive),\n"
            "                 then deletes them; rollups keep their aggregates. `ingest FILE`\n"
            "                 loads an archive back. Works while serve runs\n"
            "  vacuum         rebuilds the file to give free pages back to the disk\n\n"
            "example:\n"
            "  %s db backup /var/backups/telemetry-$(date +%%F).db\n"
            "  %s db archive --before 90d --to /srv/telemetry-archive\n",
            TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG, TE_CLI_PROG,
            TE_CLI_PROG, TE_CLI_PROG);
}

static void fmt_ts(int64_t ns, bool have, char *buf, size_t cap)
{
    if (have)
        te_time_format_rfc3339(ns, buf, cap);
    else
        snprintf(buf, cap, "-");
}

static int db_stats(te_store_t *st, te_cli_format_t format)
{
    te_store_stats_t s;
    te_result_t *kinds = NULL;
    te_err_t err = {0};
    char oldest[40], newest[40];
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (te_store_stats(st, &s, &err) < 0 || te_store_kind_stats(st, &kinds, &err) < 0)
        return te_cli_fail("db", "%s", err.msg);
    fmt_ts(s.oldest_ts_ns, s.events > 0, oldest, sizeof(oldest));
    fmt_ts(s.newest_ts_ns, s.events > 0, newest, sizeof(newest));
    if (format == TE_CLI_FMT_JSON) {
        char *kj = te_result_to_json(kinds, NULL);
        cJSON *o = cJSON_CreateObject();
        cJSON *k = kj ? cJSON_Parse(kj) : NULL;
        free(kj);
        if (!o || !k)
            goto nomem;
        cJSON_AddStringToObject(o, "path", te_store_path(st));
        cJSON_AddNumberToObject(o, "events", (double)s.events);
        cJSON_AddNumberToObject(o, "series", (double)s.series);
        cJSON_AddNumberToObject(o, "kinds", (double)s.kinds);
        if (s.events > 0) {
            cJSON_AddStringToObject(o, "oldest", oldest);
            cJSON_AddStringToObject(o, "newest", newest);
        } else {
            cJSON_AddNullToObject(o, "oldest");
            cJSON_AddNullToObject(o, "newest");
        }
        cJSON_AddNumberToObject(o, "file_bytes", (double)s.file_bytes);
        cJSON_AddNumberToObject(o, "wal_bytes", (double)s.wal_bytes);
        cJSON_AddNumberToObject(o, "schema_version", s.schema_version);
        cJSON *rows = cJSON_DetachItemFromObjectCaseSensitive(k, "rows");
        cJSON_Delete(k);
        if (!rows || !cJSON_AddItemToObject(o, "per_kind", rows)) {
            cJSON_Delete(rows);
            cJSON_Delete(o);
            goto nomem;
        }
        text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!text)
            goto nomem;
        rc = printf("%s\n", text) < 0 ? TE_EIO : 0;
    } else {
        printf("database        %s\n", te_store_path(st));
        printf("events          %lld\n", (long long)s.events);
        printf("series          %lld\n", (long long)s.series);
        printf("kinds           %lld\n", (long long)s.kinds);
        printf("oldest          %s\n", oldest);
        printf("newest          %s\n", newest);
        printf("file            %lld bytes\n", (long long)s.file_bytes);
        printf("wal             %lld bytes\n", (long long)s.wal_bytes);
        printf("schema version  %d\n\n", s.schema_version);
        text = te_result_to_table(kinds, &len);
        if (!text)
            goto nomem;
        rc = te_cli_write(text, len);
    }
    free(text);
    te_result_free(kinds);
    return rc < 0 ? te_cli_fail("db", "cannot write the output") : TE_CLI_OK;
nomem:
    te_result_free(kinds);
    return te_cli_fail("db", "out of memory");
}

static int db_check(te_store_t *st, bool quick)
{
    te_err_t err = {0};
    if (te_store_check(st, quick, &err) < 0) {
        printf("%s\n", err.msg);
        return TE_CLI_FAIL;
    }
    printf("ok\n");
    return TE_CLI_OK;
}

static void backup_progress(int remaining, int total, void *ud)
{
    te_cli_progress_t *p = ud;
    if (total > 0)
        te_cli_progress_update(p, remaining == 0, "backup: %d%% (%d of %d pages)",
                               (int)(100.0 * (total - remaining) / total), total - remaining,
                               total);
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int db_backup(te_store_t *st, const char *dest)
{
    te_cli_progress_t p;
    te_err_t err = {0};
    struct stat sb;

    if (same_file(dest, te_store_path(st)))
        return te_cli_fail("db", "backup: %s is the database itself (choose another FILE)", dest);
    te_cli_progress_init(&p);
    int rc = te_store_backup(st, dest, backup_progress, &p, &err);
    te_cli_progress_done(&p);
    if (rc < 0)
        return te_cli_fail("db", "backup: %s", err.msg);
    long long size = stat(dest, &sb) == 0 ? (long long)sb.st_size : 0;
    printf("backup written to %s (%lld bytes)\n", dest, size);
    return TE_CLI_OK;
}

/* True when something accepts connections on the Unix socket path. */
static bool serving(const char *sock_path)
{
    struct sockaddr_un sa;
    bool up = false;
    if (!sock_path || !sock_path[0] || strlen(sock_path) >= sizeof(sa.sun_path))
        return false;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return up;
}

static int open_raw(const char *path, int flags, sqlite3 **out, te_err_t *err)
{
    if (sqlite3_open_v2(path, out, flags, NULL) != SQLITE_OK) {
        te_err_set(err, TE_ESQLITE, "cannot open %s: %s", path,
                   *out ? sqlite3_errmsg(*out) : "out of memory");
        sqlite3_close(*out);
        *out = NULL;
        return TE_ESQLITE;
    }
    sqlite3_busy_timeout(*out, 5000);
    return 0;
}

static int db_restore(const te_config_t *cfg, const char *src_path)
{
    sqlite3 *src = NULL, *dst = NULL;
    sqlite3_backup *b = NULL;
    te_store_t *probe = NULL;
    te_err_t err = {0};
    te_store_opts_t po = {.path = src_path, .readonly = true};
    struct stat sb;
    int rc = TE_CLI_FAIL;

    if (access(src_path, R_OK) != 0)
        return te_cli_fail("db", "restore: cannot read %s: %s", src_path, strerror(errno));
    if (same_file(src_path, cfg->db_path))
        return te_cli_fail("db", "restore: %s is the database itself", src_path);
    if (serving(cfg->listen_unix))
        return te_cli_fail("db", "restore: refusing while 'serve' runs (it answers on %s); stop "
                                 "it first",
                           cfg->listen_unix);
    /* the backup must be a sound telemetry database before we overwrite anything */
    if (te_store_open(&po, &probe, &err) < 0 || te_store_check(probe, true, &err) < 0) {
        te_store_close(probe);
        return te_cli_fail("db", "restore: %s is not a usable telemetry database: %s", src_path,
                           err.msg);
    }
    te_store_close(probe);
    if (mkdir(cfg->data_dir, 0755) != 0 && errno != EEXIST)
        return te_cli_fail("db", "restore: cannot create %s: %s", cfg->data_dir, strerror(errno));
    if (open_raw(src_path, SQLITE_OPEN_READONLY, &src, &err) < 0 ||
        open_raw(cfg->db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &dst, &err) < 0) {
        te_cli_fail("db", "restore: %s", err.msg);
        goto out;
    }
    b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        te_cli_fail("db", "restore: %s", sqlite3_errmsg(dst));
        goto out;
    }
    int src_rc;
    do {
        src_rc = sqlite3_backup_step(b, 1024);
        if (src_rc == SQLITE_BUSY || src_rc == SQLITE_LOCKED)
            sqlite3_sleep(50);
    } while (src_rc == SQLITE_OK || src_rc == SQLITE_BUSY || src_rc == SQLITE_LOCKED);
    if (sqlite3_backup_finish(b) != SQLITE_OK || src_rc != SQLITE_DONE) {
        b = NULL;
        te_cli_fail("db", "restore: %s", sqlite3_errmsg(dst));
        goto out;
    }
    b = NULL;
    /* fold the WAL into the main file so the restored file stands alone */
    sqlite3_wal_checkpoint_v2(dst, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    printf("restored %s into %s (%lld bytes)\n", src_path, cfg->db_path,
           stat(cfg->db_path, &sb) == 0 ? (long long)sb.st_size : 0LL);
    rc = TE_CLI_OK;
out:
    if (b)
        sqlite3_backup_finish(b);
    sqlite3_close(src);
    sqlite3_close(dst);
    return rc;
}

typedef struct archive_ui {
    te_cli_progress_t p;
    int64_t before_kinds;   /* events of kinds finished earlier */
    const char *kind;
    int64_t kind_events;
} archive_ui_t;

static void archive_progress(const char *kind, int64_t events, const char *file, void *ud)
{
    archive_ui_t *u = ud;
    if (!u->kind || strcmp(u->kind, kind) != 0) {
        u->before_kinds += u->kind_events;
        u->kind = kind;
    }
    u->kind_events = events;
    te_cli_progress_update(&u->p, false, "archive: %lld events (%s -> %s)",
                           (long long)(u->before_kinds + events), kind, file ? file : "-");
}

static int db_archive(const te_config_t *cfg, const char *before_s, const char *to,
                      const char *kind)
{
    te_err_t err = {0};
    int64_t before = 0;
    char dir[4096];
    struct stat sb;

    if (te_time_parse_since(before_s, te_time_now_ns(), &before, &err) < 0)
        return te_cli_usage_error("db", "--before: %s (a duration like 30d, or a time)",
                                  err.msg);
    if (stat(cfg->db_path, &sb) != 0)
        return te_cli_fail("db",
                           "no database at %s (run '%s serve' or 'ingest' first, or pass "
                           "--data DIR)",
                           cfg->db_path, TE_CLI_PROG);
    if (to)
        snprintf(dir, sizeof(dir), "%s", to);
    else
        snprintf(dir, sizeof(dir), "%s/archive", cfg->data_dir);
    te_store_opts_t so = {.path = cfg->db_path, .durability = (te_durability_t)cfg->durability};
    te_store_t *st = NULL;
    if (te_store_open(&so, &st, &err) < 0)
        return te_cli_fail("db", "archive: %s", err.msg);
    archive_ui_t ui = {0};
    te_cli_progress_init(&ui.p);
    te_archive_opts_t ao = {.kind = kind, .before_ns = before, .dir = dir,
                            .progress = archive_progress, .ud = &ui};
    te_archive_stats_t as = {0};
    int rc = te_store_archive(st, &ao, &as, &err);
    te_cli_progress_done(&ui.p);
    te_store_close(st);
    char when[40];
    te_time_format_rfc3339(before, when, sizeof(when));
    if (rc < 0)
        return te_cli_fail("db", "archive: %s (%lld events archived and deleted before the "
                                 "error)",
                           err.msg, (long long)as.events);
    printf("archived %lld events older than %s to %s (%lld day files)\n",
           (long long)as.events, when, dir, (long long)as.files);
    return TE_CLI_OK;
}

static int db_vacuum(const te_config_t *cfg)
{
    sqlite3 *db = NULL;
    te_err_t err = {0};
    struct stat sb;
    char *msg = NULL;
    long long before, after;

    if (stat(cfg->db_path, &sb) != 0)
        return te_cli_fail("db",
                           "no database at %s (run '%s serve' or 'ingest' first, or pass "
                           "--data DIR)",
                           cfg->db_path, TE_CLI_PROG);
    before = (long long)sb.st_size;
    if (open_raw(cfg->db_path, SQLITE_OPEN_READWRITE, &db, &err) < 0)
        return te_cli_fail("db", "vacuum: %s", err.msg);
    if (sqlite3_exec(db, "VACUUM", NULL, NULL, &msg) != SQLITE_OK) {
        te_cli_fail("db", "vacuum: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_close(db);
        return TE_CLI_FAIL;
    }
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_close(db);
    after = stat(cfg->db_path, &sb) == 0 ? (long long)sb.st_size : 0;
    printf("vacuumed %s: %lld -> %lld bytes\n", cfg->db_path, before, after);
    return TE_CLI_OK;
}

int te_cli_db(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    te_cli_format_t format;
    int rc;

    if (te_cli_parse(&a, db_opts, sizeof(db_opts) / sizeof(db_opts[0]), argc, argv, &err) < 0)
        return te_cli_usage_error("db", "%s", err.msg);
    if (a.help) {
        te_cli_help_db(stdout);
        rc = TE_CLI_OK;
        goto out;
    }
    if (a.npos == 0) {
        rc = te_cli_usage_error("db", "missing sub-command (stats, check, backup FILE, restore "
                                      "FILE, archive --before D or vacuum)");
        goto out;
    }
    const char *sub = a.pos[0];
    bool with_file = strcmp(sub, "backup") == 0 || strcmp(sub, "restore") == 0;
    bool archive = strcmp(sub, "archive") == 0;
    if (!with_file && !archive && strcmp(sub, "stats") != 0 && strcmp(sub, "check") != 0 &&
        strcmp(sub, "vacuum") != 0) {
        rc = te_cli_usage_error("db", "unknown sub-command \"%s\" (stats, check, backup FILE, "
                                      "restore FILE, archive --before D or vacuum)",
                                sub);
        goto out;
    }
    if (!archive && (te_cli_has(&a, "before") || te_cli_has(&a, "to") || te_cli_has(&a, "kind"))) {
        rc = te_cli_usage_error("db", "--before, --to and --kind apply to db archive only");
        goto out;
    }
    if (archive && !te_cli_has(&a, "before")) {
        rc = te_cli_usage_error("db", "archive needs --before D (e.g. --before 30d: events "
                                      "older than 30 days)");
        goto out;
    }
    if (with_file && a.npos < 2) {
        rc = te_cli_usage_error("db", "%s needs a FILE (db %s FILE)", sub, sub);
        goto out;
    }
    if (a.npos > (with_file ? 2u : 1u)) {
        rc = te_cli_usage_error("db", "unexpected argument \"%s\"", a.pos[with_file ? 2 : 1]);
        goto out;
    }
    if (te_cli_parse_format(te_cli_get(&a, "format"), &format, &err) < 0) {
        rc = te_cli_usage_error("db", "%s", err.msg);
        goto out;
    }
    if (te_cli_has(&a, "format") && strcmp(sub, "stats") != 0) {
        rc = te_cli_usage_error("db", "--format applies to db stats only");
        goto out;
    }
    if (format == TE_CLI_FMT_CSV) {
        rc = te_cli_usage_error("db", "--format for db stats is table or json, got \"csv\"");
        goto out;
    }
    if (te_cli_has(&a, "quick") && strcmp(sub, "check") != 0) {
        rc = te_cli_usage_error("db", "--quick applies to db check only");
        goto out;
    }
    rc = te_cli_load_config("db", &a, &cfg);
    if (rc != 0)
        goto out;
    if (strcmp(sub, "restore") == 0) {
        rc = db_restore(cfg, a.pos[1]);
        goto out;
    }
    if (strcmp(sub, "vacuum") == 0) {
        rc = db_vacuum(cfg);
        goto out;
    }
    if (archive) {
        rc = db_archive(cfg, te_cli_get(&a, "before"), te_cli_get(&a, "to"),
                        te_cli_get(&a, "kind"));
        goto out;
    }
    rc = te_cli_open_store_ro("db", cfg, &st);
    if (rc != 0)
        goto out;
    if (strcmp(sub, "stats") == 0)
        rc = db_stats(st, format);
    else if (strcmp(sub, "check") == 0)
        rc = db_check(st, te_cli_has(&a, "quick"));
    else
        rc = db_backup(st, a.pos[1]);
out:
    te_store_close(st);
    te_config_free(cfg);
    te_cli_args_free(&a);
    return rc;
}
