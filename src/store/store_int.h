/*
 * store_int.h - the inside of te_store_t, shared by db.c, events.c,
 * maps.c, query*.c and rollup*.c only (nothing outside src/store includes it; the store
 * tests do, to reach st->db).
 *
 * THREAD: as store.h: one thread at a time per te_store_t.
 *
 * The one idea: the write path never asks SQLite for what it already knows.
 * Kind names and (kind_id, tags_json) series keys map to ids through
 * in-memory caches that only ever hold committed or current-transaction rows;
 * a rollback empties them (rows they name may no longer exist).
 */
#ifndef TE_STORE_STORE_INT_H
#define TE_STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"

/* One open-addressing slot: a key (kind_id, tags bytes) and its id. Also
 * reused by query_acc.c for group keys, interned values and (group, bucket). */
typedef struct te_series_slot {
    uint64_t hash;      /* 0: empty */
    int64_t kind_id;
    int64_t id;
    char *tags;         /* owned */
    size_t tags_len;
} te_series_slot_t;

/* A small string-keyed hash map (linear probing, power-of-two size). */
typedef struct te_series_map {
    te_series_slot_t *slots;
    size_t cap, n;
} te_series_map_t;

/* id -> text (kind names, series tags on the read path); id 0 = empty. */
typedef struct te_idstr_slot {
    int64_t id;
    char *s;            /* owned, NUL-terminated */
    size_t len;
} te_idstr_slot_t;

typedef struct te_idstr_map {
    te_idstr_slot_t *slots;
    size_t cap, n;
} te_idstr_map_t;

typedef struct te_kind_entry {
    char *name;         /* owned */
    size_t len;
    int64_t id;
} te_kind_entry_t;

struct te_store {
    sqlite3 *db;
    char *path;
    char *dir;                  /* folder of path, for error messages */
    bool readonly;
    bool in_txn;
    int busy_timeout_ms;
    int page_size;              /* of the database file (PRAGMA page_size) */
    /* write path (NULL on read-only stores) */
    sqlite3_stmt *st_begin, *st_commit, *st_rollback;
    sqlite3_stmt *st_kind_get, *st_kind_add, *st_series_get, *st_series_add, *st_event_add;
    te_kind_entry_t *kinds;     /* kind cache, small */
    size_t nkinds, cap_kinds;
    size_t last_kind;           /* index of the last hit */
    te_series_map_t series;     /* (kind_id, tags) -> series id */
    te_series_map_t series_old; /* the previous generation of it */
    /* read path: id -> kind name / series tags, filled on demand */
    te_idstr_map_t names;       /* kind id -> name */
    te_idstr_map_t tagsof;      /* series id -> tags_json */
    sqlite3_stmt *st_kind_name, *st_series_tags;
    void (*wal_fn)(void *ud, int frames); /* te_store_wal_notify */
    void *wal_ud;
    struct te_rollup *rollup;   /* write path: rollup accumulators (rollup.c) */
};

/* Entries above this are dropped (the map is emptied) to bound memory. */
#define TE_SERIES_CACHE_MAX (1u << 20)
/* Entries per generation of the writer's series cache (two are kept):
 * ~8 MiB with the tags, where 160,000 run-step series took 30 MiB. */
#define TE_WRITER_SERIES_MAX (1u << 15)

/* Sets err from the connection's last error: "store: WHAT: MESSAGE", with a
 * disk-full hint naming the folder for SQLITE_FULL. Returns TE_ESQLITE. */
int te_store_sqlerr(te_store_t *st, int sqlrc, te_err_t *err, const char *what);

/* Prepares the write statements (events.c). Returns 0 or TE_ESQLITE. */
int te_store_writer_prepare(te_store_t *st, te_err_t *err);

/* Finalises statements and frees the caches (events.c). Cannot fail. */
void te_store_caches_free(te_store_t *st);

/* Forgets cached kinds and series (after a rollback). Cannot fail. */
void te_store_caches_reset(te_store_t *st);

/* Looks up a kind id by name without creating it. Returns 0 and sets *id
 * (0 when the kind is unknown), or TE_ESQLITE. */
int te_store_kind_find(te_store_t *st, const char *name, int64_t *id, te_err_t *err);

/* 64-bit FNV-1a of len bytes, seeded with seed (never returns 0). */
uint64_t te_store_hash(const void *p, size_t len, uint64_t seed);

/* Finds key in map (NULL when absent). */
te_series_slot_t *te_series_map_find(te_series_map_t *m, int64_t kind_id, const char *tags,
                                     size_t len, uint64_t hash);

/* Inserts a copy of key -> id (key must be absent). Returns 0 or TE_ENOMEM. */
int te_series_map_put(te_series_map_t *m, int64_t kind_id, const char *tags, size_t len,
                      uint64_t hash, int64_t id);

/* Frees every entry; the map stays usable. Cannot fail. */
void te_series_map_clear(te_series_map_t *m);

/* Frees every entry and the table. Cannot fail. */
void te_series_map_free(te_series_map_t *m);

/* Finds id (> 0) in m; NULL when absent. */
te_idstr_slot_t *te_idstr_find(te_idstr_map_t *m, int64_t id);

/* Inserts a copy of s (len bytes) under id (> 0, absent). Returns the slot or
 * NULL on ENOMEM. */
te_idstr_slot_t *te_idstr_put(te_idstr_map_t *m, int64_t id, const char *s, size_t len);

/* Frees every entry and the table. Cannot fail. */
void te_idstr_free(te_idstr_map_t *m);

/* int64 id (> 0) -> int64 value, open addressing; id 0 = empty. */
typedef struct te_idmap {
    int64_t *keys, *vals;
    size_t cap, n;
} te_idmap_t;

/* Sets id -> val (replacing). Returns 0 or TE_ENOMEM. */
int te_idmap_put(te_idmap_t *m, int64_t id, int64_t val);

/* Returns true and sets *val when id is present. */
bool te_idmap_get(const te_idmap_t *m, int64_t id, int64_t *val);

/* Frees the table. Cannot fail. */
void te_idmap_free(te_idmap_t *m);

/* Called per series of a kind whose tags pass the filters; tags is the parsed
 * tags object (a const cJSON *). Non-zero return stops with that code. */
typedef int (*te_series_cb)(int64_t sid, const void *tags, void *ud);

/* Validates filters: keys non-empty, each with at least one value. */
int te_store_filters_check(const te_tag_filter_t *where, size_t nwhere, te_err_t *err);

/* Calls cb for every series of kind_id matching where (AND across keys, OR
 * within a key, repeated keys merged). Returns 0, cb's code or TE_E*. */
int te_store_series_scan(te_store_t *st, int64_t kind_id, const te_tag_filter_t *where,
                         size_t nwhere, te_series_cb cb, void *ud, te_err_t *err);

/* Kind name of id (read path, cached). NULL with err set on failure. */
const char *te_store_kind_name(te_store_t *st, int64_t id, te_err_t *err);

/* Canonical tags_json of series id (read path, cached); *len its length.
 * NULL with err set on failure. */
const char *te_store_series_tags(te_store_t *st, int64_t id, size_t *len, te_err_t *err);

#endif
