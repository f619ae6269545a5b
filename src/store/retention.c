/*
 * retention.c - archiving expired raw events to gzip NDJSON and deleting
 * them, and expiring old rollup rows (te_store_archive,
 * te_store_rollup_expire).
 *
 * THREAD: one thread at a time per te_store_t (a read-write store: the
 * `db archive` command's, or the retention pass's own connection in serve).
 *
 * The one idea: never hold the write lock for long. Work goes in chunks of
 * `chunk` events: read them (a plain read, no lock), append them to the day
 * file as one complete gzip member, fsync the file, then delete exactly
 * those rows by id in one short transaction (a few milliseconds for 5,000
 * rows), which also raises the kind's archive mark. A crash between the
 * fsync and the delete leaves the chunk both archived and stored, so the
 * next pass archives it again: the archive is at-least-once, never lossy.
 * Re-ingesting such a duplicate stores it twice unless it has an `id`.
 *
 * Before anything of a kind is deleted, its rollups are brought up to
 * `before` (te_rollup_materialize), so archived events stay counted there.
 *
 * Files: DIR/KIND/YYYY-MM-DD.ndjson.gz (UTC day of the event time), one
 * canonical JSON event per line (te_event_to_json, the API's form), so
 * `telemetry-engine ingest` reads them back (it recognises gzip by its magic
 * bytes and reads every member of a multi-member file).
 *
 * te_store_retention (the serve pass) resolves each kind's ages (its own
 * override, else the global age) and runs both of the above kind by kind.
 */
#include "retention.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "rollup.h"
#include "sql.h"
#include "store_int.h"

#define DAY_NS INT64_C(86400000000000)
#define DEFAULT_CHUNK 5000

static int mkdirs(const char *path, te_err_t *err)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf))
        return te_err_set(err, TE_EINVAL, "archive: folder path \"%.100s\" is empty or too long",
                          path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return te_err_set(err, TE_EIO, "archive: cannot create folder %s: %s", buf,
                              strerror(errno));
        buf[i] = c;
    }
    return 0;
}

typedef struct kinfo {
    int64_t id;
    char *name;
} kinfo_t;

static void kinds_free(kinfo_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i].name);
    free(k);
}

/* The kinds to work on: one by name, or all. */
static int list_kinds(te_store_t *st, const char *only, kinfo_t **out, size_t *n, te_err_t *err)
{
    sqlite3_stmt *s = NULL;
    kinfo_t *k = NULL;
    size_t nk = 0, cap = 0;
    int rc = sqlite3_prepare_v2(st->db, TE_SQL_KINDS_ALL, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "list kinds");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 1);
        if (!name || (only && strcmp(only, name) != 0))
            continue;
        if (nk == cap) {
            cap = cap ? cap * 2 : 8;
            kinfo_t *nkp = realloc(k, cap * sizeof(*nkp));
            if (!nkp)
                goto nomem;
            k = nkp;
        }
        k[nk].id = sqlite3_column_int64(s, 0);
        k[nk].name = strdup(name);
        if (!k[nk++].name)
            goto nomem;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        kinds_free(k, nk);
        return te_store_sqlerr(st, rc, err, "list kinds");
    }
    *out = k;
    *n = nk;
    return 0;
nomem:
    sqlite3_finalize(s);
    kinds_free(k, nk);
    return te_err_set(err, TE_ENOMEM, "archive: out of memory");
}

static int oldest(te_store_t *st, int64_t kid, int64_t *ts, bool *any, te_err_t *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, TE_SQL_RET_OLDEST, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return te_store_sqlerr(st, rc, err, "read oldest event");
    sqlite3_bind_int64(s, 1, kid);
    rc = sqlite3_step(s);
    *any = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
    if (*any)
        *ts = sqlite3_column_int64(s, 0);
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : te_store_sqlerr(st, rc, err, "read oldest event");
}

/* One open day file. */
typedef struct dayfile {
    int fd;
    gzFile gz;
    char path[PATH_MAX];
} dayfile_t;

static int day_open(dayfile_t *d, const char *dir, const char *kind, int64_t day, te_err_t *err)
{
    char folder[PATH_MAX];
    time_t t = (time_t)(day / INT64_C(1000000000));
    struct tm tm;
    gmtime_r(&t, &tm);
    int n = snprintf(folder, sizeof(folder), "%s/%s", dir, kind);
    if (n < 0 || (size_t)n >= sizeof(folder))
        return te_err_set(err, TE_EINVAL, "archive: folder path too long");
    int rc = mkdirs(folder, err);
    if (rc < 0)
        return rc;
    n = snprintf(d->path, sizeof(d->path), "%s/%04d-%02d-%02d.ndjson.gz", folder,
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (n < 0 || (size_t)n >= sizeof(d->path))
        return te_err_set(err, TE_EINVAL, "archive: file path too long");
    d->fd = open(d->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (d->fd < 0)
        return te_err_set(err, TE_EIO, "archive: cannot open %s: %s", d->path, strerror(errno));
    int fd2 = dup(d->fd);
    d->gz = fd2 >= 0 ? gzdopen(fd2, "ab6") : NULL;
    if (!d->gz) {
        if (fd2 >= 0)
            close(fd2);
        close(d->fd);
        d->fd = -1;
        return te_err_set(err, TE_ENOMEM, "archive: cannot start gzip stream for %s", d->path);
    }
    return 0;
}

/* Ends the current gzip member and makes it durable. */
static int day_sync(dayfile_t *d, te_err_t *err)
{
    if (gzflush(d->gz, Z_FINISH) != Z_OK || fsync(d->fd) < 0)
        return te_err_set(err, TE_EIO, "archive: cannot write %s: %s", d->path,
                          errno ? strerror(errno) : "gzip error");
    return 0;
}

static int day_close(dayfile_t *d, te_err_t *err)
{
    int rc = 0;
    if (d->gz && gzclose(d->gz) != Z_OK)
        rc = te_err_set(err, TE_EIO, "archive: cannot close %s", d->path);
    if (d->fd >= 0)
        close(d->fd);
    d->gz = NULL;
    d->fd = -1;
    return rc;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

/* Writes one event row (TE_SQL_RET_READ columns) as a JSON line. */
static int write_row(te_store_t *st, dayfile_t *d, const char *kind, sqlite3_stmt *s,
                     te_err_t *err)
{
    size_t tlen = 0;
    const char *tags = te_store_series_tags(st, sqlite3_column_int64(s, 2), &tlen, err);
    if (!tags)
        return err && err->code ? err->code : TE_ESQLITE;
    const unsigned char *fields = sqlite3_column_blob(s, 9);
    size_t flen = (size_t)sqlite3_column_bytes(s, 9);
    const char *body = col_text(s, 10);
    size_t blen = (size_t)sqlite3_column_bytes(s, 10);
    te_event_t *ev = NULL;
    int rc = te_event_build(sqlite3_column_int64(s, 1), kind, col_text(s, 3), col_text(s, 4),
                            col_text(s, 5), col_text(s, 6), col_text(s, 7), col_text(s, 8), tags,
                            tlen, fields, fields ? flen : 0, body, body ? blen : 0, &ev, err);
    if (rc < 0)
        return rc;
    size_t len = 0;
    char *json = te_event_to_json(ev, &len);
    te_event_free(ev);
    if (!json)
        return te_err_set(err, TE_ENOMEM, "archive: out of memory");
    json[len] = '\n'; /* replaces the NUL: written with its length */
    int w = gzwrite(d->gz, json, (unsigned)(len + 1));
    free(json);
    if (w != (int)(len + 1))
        return te_err_set(err, TE_EIO, "archive: cannot write %s", d->path);
    return 0;
}

/* Deletes the rows whose ids are listed and raises the kind's mark. */
static int delete_ids(te_store_t *st, int64_t kid, const int64_t *ids, size_t n, int64_t mark,
                      te_err_t *err)
{
    sqlite3_stmt *del = NULL, *mk = NULL;
    int rc = te_store_begin(st, err);
    if (rc < 0)
        return rc;
    int src = sqlite3_prepare_v2(st->db, "DELETE FROM events WHERE id = ?1", -1, &del, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(st->db, TE_SQL_ARCHIVE_MARK_SET, -1, &mk, NULL);
    for (size_t i = 0; src == SQLITE_OK && i < n; i++) {
        sqlite3_bind_int64(del, 1, ids[i]);
        src = sqlite3_step(del);
        sqlite3_reset(del);
        if (src == SQLITE_DONE)
            src = SQLITE_OK;
    }
    if (src == SQLITE_OK) {
        sqlite3_bind_int64(mk, 1, kid);
        sqlite3_bind_int64(mk, 2, mark);
        sqlite3_bind_int64(mk, 3, INT64_MIN);
        src = sqlite3_step(mk);
        if (src == SQLITE_DONE)
            src = SQLITE_OK;
    }
    if (src != SQLITE_OK)
        rc = te_store_sqlerr(st, src, err, "delete archived events");
    sqlite3_finalize(del);
    sqlite3_finalize(mk);
    if (rc < 0) {
        te_store_rollback(st);
        return rc;
    }
    return te_store_commit(st, err);
}

static int archive_kind(te_store_t *st, const te_archive_opts_t *o, const kinfo_t *k,
                        size_t chunk, te_archive_stats_t *stats, te_err_t *err)
{
    int64_t *ids = malloc(chunk * sizeof(*ids));
    if (!ids)
        return te_err_set(err, TE_ENOMEM, "archive: out of memory");
    sqlite3_stmt *rd = NULL;
    dayfile_t d = {.fd = -1};
    int rc = 0;
    int64_t done = 0;
    /* whatever is deleted must be rolled up first */
    rc = te_store_begin(st, err);
    if (rc == 0) {
        rc = te_rollup_materialize(st, k->id, o->before_ns, err);
        if (rc == 0)
            rc = te_store_commit(st, err);
        else
            te_store_rollback(st);
    }
    if (rc < 0)
        goto out;
    int src = sqlite3_prepare_v2(st->db, TE_SQL_RET_READ " LIMIT ?4", -1, &rd, NULL);
    if (src != SQLITE_OK) {
        rc = te_store_sqlerr(st, src, err, "read events to archive");
        goto out;
    }
    for (;;) {
        int64_t first = 0;
        bool any = false;
        rc = oldest(st, k->id, &first, &any, err);
        if (rc < 0 || !any || first >= o->before_ns)
            break;
        int64_t day = te_rollup_bucket(first, DAY_NS);
        int64_t end = day <= INT64_MAX - DAY_NS && day + DAY_NS < o->before_ns ? day + DAY_NS
                                                                                : o->before_ns;
        if (o->dir) {
            rc = day_open(&d, o->dir, k->name, day, err);
            if (rc < 0)
                break;
            stats->files++;
        }
        /* the day, chunk by chunk */
        for (;;) {
            size_t n = 0;
            sqlite3_bind_int64(rd, 1, k->id);
            sqlite3_bind_int64(rd, 2, day);
            sqlite3_bind_int64(rd, 3, end);
            sqlite3_bind_int64(rd, 4, (int64_t)chunk);
            while ((src = sqlite3_step(rd)) == SQLITE_ROW) {
                ids[n++] = sqlite3_column_int64(rd, 0);
                if (o->dir && (rc = write_row(st, &d, k->name, rd, err)) < 0)
                    break;
            }
            sqlite3_reset(rd);
            if (rc == 0 && src != SQLITE_DONE && src != SQLITE_ROW)
                rc = te_store_sqlerr(st, src, err, "read events to archive");
            if (rc == 0 && n > 0 && o->dir)
                rc = day_sync(&d, err);
            if (rc == 0 && n > 0)
                rc = delete_ids(st, k->id, ids, n, o->before_ns, err);
            if (rc < 0 || n == 0)
                break;
            done += (int64_t)n;
            stats->events += (int64_t)n;
            if (o->progress)
                o->progress(k->name, done, o->dir ? d.path : NULL, o->ud);
            if (n < chunk || (o->stop && __atomic_load_n(o->stop, __ATOMIC_RELAXED)))
                break;
        }
        if (o->dir) {
            int crc = day_close(&d, err);
            if (rc == 0)
                rc = crc;
        }
        if (rc < 0 || (o->stop && __atomic_load_n(o->stop, __ATOMIC_RELAXED)))
            break;
    }
out:
    if (d.gz)
        day_close(&d, NULL);
    sqlite3_finalize(rd);
    free(ids);
    return rc;
}

int te_store_archive(te_store_t *st, const te_archive_opts_t *opts, te_archive_stats_t *out,
                     te_err_t *err)
{
    te_archive_stats_t stats = {0};
    if (out)
        *out = stats;
    if (!st || !opts)
        return te_err_set(err, TE_EINVAL, "archive: bad arguments");
    if (st->readonly)
        return te_err_set(err, TE_EINVAL, "archive: %s is open read-only", st->path);
    if (st->in_txn)
        return te_err_set(err, TE_EINVAL, "archive: a transaction is open");
    size_t chunk = opts->chunk ? opts->chunk : DEFAULT_CHUNK;
    if (opts->dir) {
        int rc = mkdirs(opts->dir, err);
        if (rc < 0)
            return rc;
    }
    kinfo_t *kinds = NULL;
    size_t nk = 0;
    int rc = list_kinds(st, opts->kind, &kinds, &nk, err);
    for (size_t i = 0; rc == 0 && i < nk; i++)
        rc = archive_kind(st, opts, &kinds[i], chunk, &stats, err);
    kinds_free(kinds, nk);
    if (out)
        *out = stats;
    return rc;
}

/* ---------- rollup expiry ---------- */

/* Runs the chunked delete sql (?1 kind, ?2 field or unbound, ?3 cut, ?4
 * chunk) until a chunk deletes less than the chunk size. */
static int expire_rows(te_store_t *st, const char *sql, int64_t kid, const char *field,
                       int64_t before, int64_t *deleted, te_err_t *err)
{
    for (;;) {
        sqlite3_stmt *s = NULL;
        int rc = te_store_begin(st, err);
        if (rc < 0)
            return rc;
        int src = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
        if (src == SQLITE_OK) {
            sqlite3_bind_int64(s, 1, kid);
            if (field)
                sqlite3_bind_text(s, 2, field, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 3, before);
            sqlite3_bind_int64(s, 4, DEFAULT_CHUNK);
            src = sqlite3_step(s);
        }
        int changed = sqlite3_changes(st->db);
        sqlite3_finalize(s);
        if (src != SQLITE_DONE) {
            rc = te_store_sqlerr(st, src, err, "expire rollups");
            te_store_rollback(st);
            return rc;
        }
        rc = te_store_commit(st, err);
        if (rc < 0)
            return rc;
        *deleted += changed;
        if (changed < DEFAULT_CHUNK)
            return 0;
    }
}

int te_store_rollup_expire(te_store_t *st, const char *kind, int64_t res_ns, int64_t before_ns,
                           int64_t *deleted, te_err_t *err)
{
    int64_t del = 0;
    if (deleted)
        *deleted = 0;
    if (!st || st->readonly || st->in_txn)
        return te_err_set(err, TE_EINVAL, "rollup expiry needs a read-write store outside a "
                                          "transaction");
    if (res_ns != TE_ROLLUP_1M_NS && res_ns != TE_ROLLUP_1H_NS)
        return te_err_set(err, TE_EINVAL, "rollup expiry: no rollup of resolution %" PRId64 " ns",
                          res_ns);
    const char *table = "rollup_1h";
    kinfo_t *kinds = NULL;
    size_t nk = 0;
    int rc = list_kinds(st, kind, &kinds, &nk, err);
    if (res_ns == TE_ROLLUP_1M_NS) {
        /* a packed row holds an hour of minutes: it goes with its last one */
        int64_t cut = te_rollup_bucket(before_ns, TE_ROLLUP_1H_NS);
        for (size_t i = 0; rc == 0 && i < nk; i++)
            rc = expire_rows(st, "DELETE FROM rollup_1m WHERE id IN (SELECT id FROM rollup_1m"
                                 " WHERE kind_id = ?1 AND bucket < ?3 - 3600000000000 + 1"
                                 " LIMIT ?4)",
                             kinds[i].id, NULL, cut, &del, err);
        kinds_free(kinds, nk);
        if (deleted)
            *deleted = del;
        return rc;
    }
    /* walks the distinct fields with index seeks: '' (the count rows) is a
     * field too, so the first seek is >= '' and the next ones > last */
    char sql_ge[256], sql_gt[256];
    snprintf(sql_ge, sizeof(sql_ge),
             "SELECT field FROM %s WHERE kind_id = ?1 AND field >= ?2 ORDER BY field LIMIT 1",
             table);
    snprintf(sql_gt, sizeof(sql_gt),
             "SELECT field FROM %s WHERE kind_id = ?1 AND field > ?2 ORDER BY field LIMIT 1",
             table);
    for (size_t i = 0; rc == 0 && i < nk; i++) {
        char *last = strdup("");
        bool first = true;
        while (rc == 0 && last) {
            sqlite3_stmt *s = NULL;
            int src = sqlite3_prepare_v2(st->db, first ? sql_ge : sql_gt, -1, &s, NULL);
            char *next = NULL;
            if (src == SQLITE_OK) {
                sqlite3_bind_int64(s, 1, kinds[i].id);
                sqlite3_bind_text(s, 2, last, -1, SQLITE_STATIC);
                src = sqlite3_step(s);
                if (src == SQLITE_ROW) {
                    const char *f = (const char *)sqlite3_column_text(s, 0);
                    next = strdup(f ? f : "");
                    src = next ? SQLITE_DONE : SQLITE_NOMEM;
                } else if (src == SQLITE_DONE) {
                    src = SQLITE_OK; /* no more fields */
                }
            }
            sqlite3_finalize(s);
            if (src != SQLITE_DONE && src != SQLITE_OK) {
                rc = te_store_sqlerr(st, src, err, "list rollup fields");
                break;
            }
            first = false;
            free(last);
            last = next;
            if (!next)
                break;
            rc = expire_rows(st,
                             "DELETE FROM rollup_1h WHERE id IN (SELECT id FROM rollup_1h"
                             " WHERE kind_id = ?1 AND field = ?2 AND bucket < ?3 LIMIT ?4)",
                             kinds[i].id, next, before_ns, &del, err);
        }
        free(last);
    }
    kinds_free(kinds, nk);
    if (deleted)
        *deleted = del;
    return rc;
}

/* ---------- the retention pass: ages per kind ---------- */

static int64_t age_of(const te_retention_kind_t *own, int which, int64_t global)
{
    int64_t v = !own ? -1 : which == 0 ? own->raw_ns : which == 1 ? own->m1_ns : own->h1_ns;
    return v >= 0 ? v : global;
}

int te_store_retention(te_store_t *st, const te_retention_policy_t *p, int64_t now_ns,
                       te_retention_stats_t *out, te_err_t *err)
{
    te_retention_stats_t stats = {0};
    if (out)
        *out = stats;
    if (!st || !p)
        return te_err_set(err, TE_EINVAL, "retention: bad arguments");
    if (st->readonly || st->in_txn)
        return te_err_set(err, TE_EINVAL, "retention needs a read-write store outside a "
                                          "transaction");
    kinfo_t *kinds = NULL;
    size_t nk = 0;
    int rc = list_kinds(st, NULL, &kinds, &nk, err);
    for (size_t i = 0; rc == 0 && i < nk; i++) {
        if (p->stop && __atomic_load_n(p->stop, __ATOMIC_RELAXED))
            break;
        const te_retention_kind_t *own = NULL;
        for (size_t j = 0; j < p->nkinds && !own; j++) {
            if (p->kinds[j].kind && strcmp(p->kinds[j].kind, kinds[i].name) == 0)
                own = &p->kinds[j];
        }
        int64_t raw = age_of(own, 0, p->raw_ns), m1 = age_of(own, 1, p->m1_ns),
                h1 = age_of(own, 2, p->h1_ns);
        if (raw > 0) {
            te_archive_opts_t ao = {.before_ns = now_ns - raw, .dir = p->archive_dir,
                                    .stop = p->stop};
            te_archive_stats_t as = {0};
            if (p->archive_dir)
                rc = mkdirs(p->archive_dir, err);
            if (rc == 0)
                rc = archive_kind(st, &ao, &kinds[i], DEFAULT_CHUNK, &as, err);
            stats.events += as.events;
            stats.files += as.files;
        }
        int64_t n = 0;
        if (rc == 0 && m1 > 0) {
            rc = te_store_rollup_expire(st, kinds[i].name, TE_ROLLUP_1M_NS, now_ns - m1, &n, err);
            stats.rollup_rows += n;
        }
        n = 0;
        if (rc == 0 && h1 > 0) {
            rc = te_store_rollup_expire(st, kinds[i].name, TE_ROLLUP_1H_NS, now_ns - h1, &n, err);
            stats.rollup_rows += n;
        }
    }
    kinds_free(kinds, nk);
    if (out)
        *out = stats;
    return rc;
}
