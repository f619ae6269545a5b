/*
 * recs.h - stored recommendations (SPEC 6.4): the findings that
 * te.recommend functions return, de-duplicated across runs.
 *
 * THREAD: the thread owning the store (the writer thread in the engine,
 * main in the CLI).
 *
 * Table (schema v5, store/sql_v5.h):
 *   recommendations(id INTEGER PRIMARY KEY, name, fingerprint UNIQUE,
 *          severity, title, detail, action, evidence_json, first_seen_ns,
 *          last_seen_ns, count, state, resolved_ns)
 *
 * The one idea: a finding's identity is its fingerprint, a hash of the
 * recommender's name and the finding's `key` (or its title when it has no
 * key), so a run that returns the same finding again only bumps count and
 * last_seen (and refreshes the texts: numbers in a detail may move). A run
 * of recommender R saves R's whole answer at once: what it returned is
 * open, what R had open and did not return any more is resolved; a resolved
 * finding that comes back is open again (same row, same id).
 */
#ifndef TE_STORE_RECS_H
#define TE_STORE_RECS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

/* One finding. Strings are malloc'd and owned by the struct (te_rec_clear);
 * detail, action and evidence_json may be NULL. */
typedef struct te_rec {
    int64_t id;              /* row id (0 before it is saved) */
    char *name;              /* recommender */
    char fingerprint[17];    /* te_rec_fingerprint, 16 hex digits */
    char severity[16];       /* "info" | "warning" | "critical" */
    char *title;
    char *detail;
    char *action;
    char *evidence_json;     /* JSON text (any value), or NULL */
    int64_t first_seen_ns, last_seen_ns;
    int64_t count;           /* runs that returned it */
    char state[16];          /* "open" | "resolved" */
    int64_t resolved_ns;     /* 0 while open */
} te_rec_t;

/* Frees the strings of r and zeroes it. NULL is a no-op. */
void te_rec_clear(te_rec_t *r);

/* The fingerprint of a finding of recommender name: FNV-1a over name and
 * key (the finding's `key` when it has one, otherwise its title), as 16 hex
 * digits. Cannot fail. */
void te_rec_fingerprint(const char *name, const char *key, char out[17]);

/* Checks that the table is there (te_store_open migrates any database to
 * schema v5). Returns 0 or TE_ESQLITE. */
int te_store_recs_init(te_store_t *st, te_err_t *err);

/* What a run changed. */
typedef struct te_recs_run_stats {
    size_t opened;    /* new fingerprints */
    size_t seen;      /* already open: count + 1 */
    size_t reopened;  /* resolved before, open again */
    size_t resolved;  /* open before, not returned by this run */
} te_recs_run_stats_t;

/* Saves one successful run of recommender name at now_ns: every finding in
 * recs (their name and fingerprint must be set; severity and title
 * non-empty) is upserted by fingerprint as open, and name's open findings
 * that this run did not return become resolved. A fingerprint given twice
 * counts once (the first wins). Both or neither (a savepoint: works inside
 * or outside a transaction). stats may be NULL. Returns 0, TE_EINVAL (a
 * finding without name/title/severity), TE_ENOMEM or TE_ESQLITE; on
 * failure nothing changes. */
int te_store_recs_save_run(te_store_t *st, const char *name, const te_rec_t *recs, size_t n,
                           int64_t now_ns, te_recs_run_stats_t *stats, te_err_t *err);

/* Filters of a listing; NULL fields match everything. */
typedef struct te_recs_filter {
    const char *state;       /* "open" | "resolved"; NULL or "all": both */
    const char *severity;    /* "info" | "warning" | "critical" */
    const char *name;        /* one recommender */
} te_recs_filter_t;

/* Checks state ("open", "resolved", "all") and severity ("info",
 * "warning", "critical"), either may be NULL. Returns 0 or TE_EINVAL with
 * err naming the bad value and the allowed ones. */
int te_store_recs_filter_check(const char *state, const char *severity, te_err_t *err);

/* Called per listed finding; r is borrowed for the call. Non-zero stops
 * the listing and becomes its return value. */
typedef int (*te_rec_cb)(void *ud, const te_rec_t *r);

/* Calls cb for the findings that pass f (NULL: all): open ones first, then
 * by severity (critical first), then most recently seen first; at most
 * limit (0: no limit). Works on read-only stores. Returns 0, cb's code,
 * TE_ENOMEM or TE_ESQLITE. */
int te_store_recs_list(te_store_t *st, const te_recs_filter_t *f, size_t limit, te_rec_cb cb,
                       void *ud, te_err_t *err);

/* The API object of one finding: {"id","name","fingerprint","severity",
 * "title","detail","action","evidence","first_seen","last_seen","count",
 * "state","resolved_at"} (times RFC 3339; evidence the parsed JSON, null when
 * none). NULL when out of memory. */
struct cJSON;
struct cJSON *te_rec_to_cjson(const te_rec_t *r);

/* {"recommendations":[te_rec_to_cjson...]} for te_store_recs_list's
 * arguments. On success the caller owns *out (cJSON_Delete). Returns 0,
 * TE_ENOMEM or TE_ESQLITE. */
int te_store_recs_list_json(te_store_t *st, const te_recs_filter_t *f, size_t limit,
                            struct cJSON **out, te_err_t *err);

#endif
