/*
 * rollup_1h_db.c - the 1-hour rollup rows in SQLite (rollup_1h.h): writing
 * a row over or merged with the stored one, and the conversion from schema
 * 5's one row per series.
 *
 * THREAD: see rollup_1h.h (the read-write store's thread).
 */
#include <stdlib.h>
#include <string.h>

#include "rollup_1h.h"
#include "rollup_int.h"
#include "sql.h"

/* ---------- writing ---------- */

int te_rollup_1h_prepare(te_store_t *st, te_rollup_1h_stmts_t *s, te_err_t *err)
{
    const char *sql[] = {TE_SQL_ROLLUP_1H_INS, TE_SQL_ROLLUP_1H_GET, TE_SQL_ROLLUP_1H_UPD};
    sqlite3_stmt **slot[] = {&s->ins, &s->get, &s->upd};
    for (size_t i = 0; i < 3; i++) {
        int rc = sqlite3_prepare_v3(st->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, slot[i], NULL);
        if (rc != SQLITE_OK)
            return te_store_sqlerr(st, rc, err, "prepare 1-hour rollup statement");
    }
    return 0;
}

void te_rollup_1h_finalize(te_rollup_1h_stmts_t *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->get);
    sqlite3_finalize(s->upd);
    *s = (te_rollup_1h_stmts_t){0};
}

static void bind_blobs(sqlite3_stmt *q, int at, const void *st, size_t st_len, const void *sk,
                       size_t sk_len)
{
    sqlite3_bind_blob(q, at, st, (int)st_len, SQLITE_STATIC);
    if (sk_len)
        sqlite3_bind_blob(q, at + 1, sk, (int)sk_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, at + 1);
}

/* The row with row's key is stored: read it, merge, write the merge. */
static int merge_stored(te_store_t *st, te_rollup_1h_stmts_t *s, te_rollup_1h_row_t *row,
                        te_err_t *err)
{
    sqlite3_stmt *g = s->get;
    sqlite3_bind_int64(g, 1, row->kid);
    sqlite3_bind_text(g, 2, row->field, (int)row->field_len, SQLITE_STATIC);
    sqlite3_bind_int64(g, 3, row->bucket);
    sqlite3_bind_int64(g, 4, row->chunk);
    int src = sqlite3_step(g);
    if (src != SQLITE_ROW) {
        sqlite3_reset(g);
        return src == SQLITE_DONE
                   ? te_err_set(err, TE_ESQLITE, "rollup: a 1-hour row vanished while written")
                   : te_store_sqlerr(st, src, err, "read 1-hour rollup");
    }
    te_rollup_1h_row_t out = {0};
    te_rollup_1h_begin(&out, row->kid, row->field, row->field_len, row->bucket, row->chunk);
    int64_t id = sqlite3_column_int64(g, 0);
    int rc = te_rollup_1h_merge(&out, sqlite3_column_blob(g, 1), (size_t)sqlite3_column_bytes(g, 1),
                        sqlite3_column_blob(g, 2), (size_t)sqlite3_column_bytes(g, 2), row, err);
    sqlite3_reset(g);
    if (rc == 0 && out.oom)
        rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    if (rc == 0) {
        size_t len;
        const unsigned char *p = te_rollup_1h_bytes(&out, &len);
        sqlite3_stmt *u = s->upd;
        sqlite3_bind_int64(u, 1, id);
        sqlite3_bind_int64(u, 2, out.n);
        bind_blobs(u, 3, p, len, out.sk, out.sk_len);
        src = sqlite3_step(u);
        sqlite3_reset(u);
        sqlite3_clear_bindings(u);
        if (src != SQLITE_DONE)
            rc = te_store_sqlerr(st, src, err, "write 1-hour rollup");
    }
    te_rollup_1h_free(&out);
    return rc;
}

int te_rollup_1h_write(te_store_t *st, te_rollup_1h_stmts_t *s, te_rollup_1h_row_t *row,
                       te_err_t *err)
{
    if (row->oom)
        return te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    if (row->entries == 0)
        return 0;
    size_t len;
    const unsigned char *p = te_rollup_1h_bytes(row, &len);
    if (len > INT32_MAX || row->sk_len > INT32_MAX)
        return te_err_set(err, TE_ETOOBIG, "rollup: a 1-hour row of %zu bytes", len + row->sk_len);
    sqlite3_stmt *q = s->ins;
    sqlite3_bind_int64(q, 1, row->kid);
    sqlite3_bind_text(q, 2, row->field, (int)row->field_len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, row->bucket);
    sqlite3_bind_int64(q, 4, row->chunk);
    sqlite3_bind_int64(q, 5, row->n);
    bind_blobs(q, 6, p, len, row->sk, row->sk_len);
    int src = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (src != SQLITE_DONE)
        return te_store_sqlerr(st, src, err, "write 1-hour rollup");
    /* DO NOTHING: a row with this key was there (late events, an hour
     * written in parts) */
    return sqlite3_changes(st->db) > 0 ? 0 : merge_stored(st, s, row, err);
}

/* ---------- schema 5 -> 6 ---------- */

int te_rollup_1h_convert(te_store_t *st, te_err_t *err)
{
    te_rollup_1h_stmts_t s = {0};
    te_rollup_1h_row_t row = {0};
    sqlite3_stmt *q = NULL;
    char *field = calloc(1, 1); /* "" */
    size_t flen = 0;
    bool open = false;
    int rc = field ? te_rollup_1h_prepare(st, &s, err)
                   : te_err_set(err, TE_ENOMEM, "rollup: out of memory");
    int src = SQLITE_OK;
    if (rc == 0 && (src = sqlite3_prepare_v2(st->db, TE_SQL_ROLLUP_1H_V5_READ, -1, &q, NULL)) !=
                       SQLITE_OK)
        rc = te_store_sqlerr(st, src, err, "read schema-5 1-hour rollups");
    while (rc == 0 && (src = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t kid = sqlite3_column_int64(q, 0), bucket = sqlite3_column_int64(q, 2);
        const char *f = (const char *)sqlite3_column_text(q, 1);
        size_t fl = f ? (size_t)sqlite3_column_bytes(q, 1) : 0;
        f = f ? f : "";
        int64_t sid = sqlite3_column_int64(q, 3);
        if (!open || kid != row.kid || bucket != row.bucket ||
            te_rollup_1h_chunk(sid) != row.chunk || fl != flen || memcmp(f, field, fl)) {
            if (open && (rc = te_rollup_1h_write(st, &s, &row, err)) < 0)
                break;
            if (fl != flen || memcmp(f, field, fl)) {
                char *nf = realloc(field, fl + 1);
                if (!nf) {
                    rc = te_err_set(err, TE_ENOMEM, "rollup: out of memory");
                    break;
                }
                field = nf;
                memcpy(field, f, fl);
                field[fl] = '\0';
                flen = fl;
            }
            te_rollup_1h_begin(&row, kid, field, flen, bucket, te_rollup_1h_chunk(sid));
            open = true;
        }
        te_rollup_1h_entry_t e = {.sid = sid,
                                  .n = sqlite3_column_int64(q, 4),
                                  .sum = sqlite3_column_double(q, 5),
                                  .min = sqlite3_column_double(q, 6),
                                  .max = sqlite3_column_double(q, 7),
                                  .sketch = sqlite3_column_blob(q, 8),
                                  .sketch_len = (size_t)sqlite3_column_bytes(q, 8)};
        if (flen > 0 && e.n > 2 && !e.sketch)
            rc = te_err_set(err, TE_EPARSE,
                            "rollup: a schema-5 1-hour row of %lld values has no sketch",
                            (long long)e.n);
        else
            te_rollup_1h_add(&row, &e, NULL);
        src = SQLITE_OK;
    }
    if (rc == 0 && src != SQLITE_DONE && src != SQLITE_OK)
        rc = te_store_sqlerr(st, src, err, "read schema-5 1-hour rollups");
    if (rc == 0 && open)
        rc = te_rollup_1h_write(st, &s, &row, err);
    sqlite3_finalize(q);
    te_rollup_1h_finalize(&s);
    te_rollup_1h_free(&row);
    free(field);
    if (rc == 0 && (src = sqlite3_exec(st->db, TE_SQL_ROLLUP_1H_V5_DROP, NULL, NULL, NULL)) !=
                       SQLITE_OK)
        rc = te_store_sqlerr(st, src, err, "drop schema-5 1-hour rollups");
    return rc;
}
