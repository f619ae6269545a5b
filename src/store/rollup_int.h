/*
 * rollup_int.h - the inside of the rollup write path, shared by rollup.c
 * (watermarks, late events, catch-up), rollup_row.c (writing rows) and
 * rollup_hour.c (building whole hours). Nothing outside src/store
 * includes it.
 *
 * THREAD: as rollup.h: the thread that owns the read-write store.
 *
 * Two ways to hold values on their way to a row: the generic accumulator
 * (te_rollup_ent_t, keyed by series, bucket, field and resolution through
 * a hash: late events, and a database left half-way by an older version)
 * and the hour builder (rollup_hour.c: events as they are stored, or raw
 * events of whole hours read back in time order). Both end in the same
 * row writers: 1-minute pack rows (rollup_row.c), 1-hour chunk rows
 * (rollup_1h.c).
 */
#ifndef TE_STORE_ROLLUP_INT_H
#define TE_STORE_ROLLUP_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "rollup.h"
#include "rollup_1h.h"
#include "store_int.h"

/* An advance leaves the events this close to a kind's newest one (or to
 * now) raw for a while: in-order stragglers then are not late events. */
#define TE_ROLLUP_GRACE_NS (2 * TE_ROLLUP_1M_NS)

/* Most distinct field names one packed 1-minute row may hold. */
#define TE_ROLLUP_MAX_ROW_NAMES 4096
/* The generic accumulators are written (merged with the stored rows) once
 * they hold this many entries (~150 bytes each): their memory bound. */
#define TE_ROLLUP_FLUSH_EVERY 20000u

/* One accumulator: n values of one field (0: the event count, no values)
 * in one bucket of one series at one resolution. */
typedef struct te_rollup_ent {
    int64_t kid, sid, bucket;
    uint32_t field;     /* interned name index; 0 = '' (event count) */
    uint8_t res;        /* 0: 1m, 1: 1h */
    int64_t n;
    double sum, min, max;
    double v[TE_ROLLUP_VALS]; /* the values while n <= TE_ROLLUP_VALS */
    te_sketch_t *sk;    /* once n > TE_ROLLUP_VALS (or merged from a stored sketch) */
} te_rollup_ent_t;

/* Per kind, for the current transaction. */
typedef struct te_rollup_kstate {
    int64_t kid;
    int64_t w[2];           /* w1m, w1h */
    int64_t archived_before;
    int64_t max_ts;         /* newest event inserted in this transaction */
    bool touched;
} te_rollup_kstate_t;

/* One field of a slot: the hour's values and the minute of each, in the
 * order they came (sorted: in minute order too), and their n, sum, min
 * and max (summed value by value, as a 1-hour accumulator would). A dense
 * column (a value in every event of the slot so far: the usual case) has
 * no minutes of its own: value i is event i's, its minute the slot's
 * em[i]; it gets them (m) when an event comes without it. */
typedef struct te_rollup_col {
    uint32_t field;             /* interned name index */
    double *v;
    uint8_t *m;                 /* unused while dense */
    size_t n, cap, mcap;
    double sum, min, max;
    bool sorted, dense;
} te_rollup_col_t;

/* One (kind, series, hour) of the hour builder: each event's minute, the
 * count and rowid sum of its events (what the database must also hold
 * for the slot to be trusted), and one column per field. */
typedef struct te_rollup_slot {
    int64_t kid, sid, hour;
    int64_t nev, idsum;
    /* the first events of a slot are kept as they came (minute, fields
     * blob length, fields blob): most series of a busy hour have one or
     * two events, and columns cost ~500 bytes however few they hold. The
     * columns take over at the next event, or when the hour is written. */
    unsigned char *raw;
    uint32_t nraw, raw_len, raw_cap;
    uint8_t *em;                /* the minute of each event, as they came */
    size_t cap_em;
    te_rollup_col_t *cols;
    size_t ncols, cap_cols;
    uint32_t *order;            /* blob position -> column (the last event's layout) */
    size_t norder, cap_order;
} te_rollup_slot_t;

/* A growing byte buffer; oom latches the first allocation failure. */
typedef struct te_rollup_wbuf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
} te_rollup_wbuf_t;

/* A 1-minute pack row being filled (rollup_row.c): series' hours of one
 * (kind, hour). */
typedef struct te_rollup_pack {
    int64_t kid, hour, n;
    te_rollup_wbuf_t b;
    bool open;
    /* the field names this row defines (format 2): name i + 1 of the row
     * is field defs[i]; field f is defined when ref[f] < ndefs and
     * defs[ref[f]] == f (nothing to clear when a row begins) */
    uint32_t defs[TE_ROLLUP_PACK_NAMES];
    size_t ndefs;
    uint16_t *ref;
    size_t cap_ref;
} te_rollup_pack_t;

/* A 1-minute pack row prepared ahead (te_rollup_hour_prepare): n events,
 * the row's data. */
typedef struct te_rollup_prow {
    int64_t n;
    unsigned char *p;
    size_t len;
} te_rollup_prow_t;

/* One (kind, hour) the feed's thread wrote ahead (rollup_feed.c,
 * te_rollup_hour_prepare): the rows its slots made, the events and rowid
 * sum they held, and the bytes it takes (counted in hour_bytes). The
 * advance that passes its hour inserts the rows, or drops them when it
 * reads the hour back raw. */
typedef struct te_rollup_prep {
    int64_t kid, hour, nev, idsum;
    te_rollup_prow_t *prows;
    size_t nprows, cap_prows;
    te_rollup_1h_row_t *hrows;
    size_t nhrows, cap_hrows;
    size_t bytes;
    bool oom;
} te_rollup_prep_t;

/* A list of prepared hours. */
typedef struct te_rollup_preps {
    te_rollup_prep_t *v;
    size_t n, cap;
} te_rollup_preps_t;

struct te_rollup {
    /* interned field names; index 0 is "" */
    te_series_map_t fmap;
    char **fnames;
    size_t *flens;
    size_t nfields, cap_fields;
    /* accumulators: entries + open-addressing index (uint32 index + 1; 0 empty) */
    te_rollup_ent_t *ents;
    size_t nents, cap_ents;
    uint32_t *idx;
    size_t idx_cap;
    /* sketch pool */
    te_sketch_t **pool;
    size_t npool, cap_pool;
    /* per-kind state of this transaction */
    te_rollup_kstate_t *ks;
    size_t nks, cap_ks;
    /* hour builder (rollup_hour.c): slots in use [0, nslots), spare ones
     * (with their buffers) up to init_slots, room up to cap_slots; index
     * as for ents */
    te_rollup_slot_t *slots;
    size_t nslots, init_slots, cap_slots, hour_bytes;
    te_rollup_slot_t wslot;     /* sparse slots are written through its columns */
    bool hour_full;             /* over its bound: inserts stop feeding it until an advance */
    bool early;                 /* this transaction advanced at the bound already */
    /* hours before verify_upto may hold events the builder lacks (stored
     * before this process opened, by another connection, or dropped): an
     * advance into them checks the builder against the raw rows first */
    int64_t verify_upto, mem_max_ts;
    /* hours before lost_upto lost events at the bound (hour_full): read
     * back at their advance, so the builder is not fed them any more */
    int64_t lost_upto;
    /* the bytes the read-backs of hour need_hour took, its kinds added */
    int64_t need_hour;
    size_t need_bytes;
    int64_t data_version;       /* PRAGMA data_version at the last check */
    te_rollup_wbuf_t hbuf;      /* the 1-minute row being encoded */
    te_rollup_pack_t pack;      /* the 1-minute pack row being filled */
    /* the 1-hour rows being filled by a sweep (rollup_hour.c): one per
     * field of the (kind, hour, chunk) of hrow_key; written when the sweep
     * moves to another chunk or ends */
    te_rollup_1h_row_t *hrows;
    size_t nhrows, cap_hrows;
    int64_t hrow_key[3];
    te_rollup_1h_stmts_t h1;
    void *scratch;              /* col_sort's values and minutes */
    size_t cap_scratch;
    void *colbuf;               /* slot_write's per-column arrays */
    size_t cap_colbuf;
    uint32_t *sidx;
    size_t sidx_cap;
    /* hours written ahead (rollup_feed.c): those the advances may take
     * (shared with the feed's thread under its lock), those its thread is
     * making (its own), those an advance took (the owner's), the one a
     * sweep is filling (NULL: rows go to the database), and the bytes of
     * the first and the third */
    te_rollup_preps_t preps, staged, taken;
    te_rollup_prep_t *prep;
    _Atomic size_t prep_bytes;
    sqlite3_stmt *put1m, *state_st, *set_w, *raw_st, *sum_st, *dv_st;
    bool off;           /* te_store_set_rollups(false): no watermark moves */
    /* the builder's own thread (rollup_feed.c), NULL when the owner adds
     * events itself; feed_tried: started or refused once */
    struct te_rollup_feed *feed;
    bool feed_tried;
    bool sync;          /* te_store_rollup_sync's commit: advances wait for the thread */
    te_rollup_wbuf_t late; /* late events of this transaction, with a feed (rollup.c) */
    /* kinds whose last advance stopped short of its target (the thread
     * had not written those hours ahead yet): the next commit goes on */
    struct te_rollup_pend {
        int64_t kid, to;
    } *pend;
    size_t npend, cap_pend;
};

/* --- rollup.c: accumulators --- */

/* Interns a field name. Returns 0 or TE_ENOMEM. */
int te_rollup_field(struct te_rollup *r, const char *name, size_t len, uint32_t *out);

/* The accumulator for a key, made empty when new; NULL on ENOMEM. */
te_rollup_ent_t *te_rollup_ent(struct te_rollup *r, int64_t kid, int64_t sid, int64_t bucket,
                               uint32_t field, uint8_t res);

/* Adds one value (never NaN) to e. Returns 0 or TE_ENOMEM. */
int te_rollup_ent_add(struct te_rollup *r, te_rollup_ent_t *e, double v);

/* Moves the kept values of e into a sketch (a no-op once it has one).
 * Returns 0 or TE_ENOMEM. */
int te_rollup_ent_sketch(struct te_rollup *r, te_rollup_ent_t *e);

/* An empty sketch of TE_ROLLUP_ACCURACY from the pool; NULL on ENOMEM. */
te_sketch_t *te_rollup_sketch_take(struct te_rollup *r);

/* Returns a sketch to the pool (NULL-safe). */
void te_rollup_sketch_give(struct te_rollup *r, te_sketch_t *sk);

/* Writes every accumulator: 1-minute ones as new pack rows (readers add
 * them to what is there), 1-hour ones merged into their chunk rows.
 * Returns 0 or TE_E*. */
int te_rollup_flush_ents(te_store_t *st, te_err_t *err);

/* --- rollup_row.c: rows --- */

/* Makes room for n more bytes at b->p + b->len; false (b->oom set) on
 * ENOMEM. */
bool te_rollup_wb_reserve(te_rollup_wbuf_t *b, size_t n);

/* Writes v as a LEB128 varint (at most 10 bytes) / the n doubles of v as
 * little-endian f64 at p; returns the bytes written. */
size_t te_rollup_put_varint(unsigned char *p, uint64_t v);
size_t te_rollup_put_f64s(unsigned char *p, const double *v, size_t n);

/* Versions of a series' hour in the 1-minute rows (format in
 * rollup_row.c): the generic accumulators write 2, the hour builder 5
 * (4 when its names do not fit its pack row; 3 before); 1 to 5 read. */
#define TE_ROLLUP_1M_VERSION 2
#define TE_ROLLUP_1M_V3 3
#define TE_ROLLUP_1M_V4 4
/* TE_ROLLUP_1M_V5: rollup.h */

/* The largest k of a scale code 1 + k (values stored as v * 10^k:
 * microseconds in milliseconds, 6-digit fractions), and 10^k. */
#define TE_ROLLUP_MAX_SCALE 6

static inline double te_rollup_pow10(int k)
{
    static const double p[TE_ROLLUP_MAX_SCALE + 1] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    return p[k];
}

/* The pack format (first byte of a rollup_1m row's data) this build
 * writes; 1 and 2 read (rollup_fmt.c). */
#define TE_ROLLUP_PACK_FORMAT 2

/* The most values a small cell of a version-4 field of scale code e
 * holds (more: a big cell, with its sketch). */
static inline size_t te_rollup_v4_small(unsigned e)
{
    return e ? TE_ROLLUP_CELL_VALS : TE_ROLLUP_VALS;
}

/* Writes the n <= TE_ROLLUP_VALS values of a small 1-minute cell at p (at
 * most 1 + 10 n bytes: scaled integers where they read back exactly, else
 * f64; format in rollup_row.c); returns the bytes written. hint (NULL: none)
 * carries the scale from cell to cell of one column: start it at -1. */
size_t te_rollup_put_vals(unsigned char *p, const double *v, size_t n, int *hint);

/* The scale code (rollup_row.c: 0 for f64, 1 + k for v * 10^k) that
 * every one of v[0, n) takes, reading back bit for bit: the smallest k. */
int te_rollup_scale_of(const double *v, size_t n);

/* Writes v[0, n) under scale code e (from te_rollup_scale_of over values
 * that include them) at p, at most 10 n bytes; returns the bytes written. */
size_t te_rollup_put_scaled(unsigned char *p, const double *v, size_t n, int e);

/* Appends n bytes / a LEB128 varint / a little-endian f64 to b. The first
 * two are inline while b has room (names, minutes and counts of a series'
 * hour: some twenty calls per sparse series), else te_rollup_wb_grow_put. */
void te_rollup_wb_grow_put(te_rollup_wbuf_t *b, const void *src, size_t n);
void te_rollup_wb_f64(te_rollup_wbuf_t *b, double d);

static inline void te_rollup_wb_put(te_rollup_wbuf_t *b, const void *src, size_t n)
{
    if (b->len + n <= b->cap && !b->oom) {
        memcpy(b->p + b->len, src, n);
        b->len += n;
    } else {
        te_rollup_wb_grow_put(b, src, n);
    }
}

static inline void te_rollup_wb_varint(te_rollup_wbuf_t *b, uint64_t v)
{
    if (v < 0x80 && b->len < b->cap && !b->oom) {
        b->p[b->len++] = (unsigned char)v;
        return;
    }
    unsigned char t[10];
    te_rollup_wb_put(b, t, te_rollup_put_varint(t, v));
}

/* Adds a series' encoded hour (blob of len bytes, events in all, format
 * in rollup_row.c) to the 1-minute pack row being filled, writing that row
 * first when it is of another (kind, hour) and after when it is full.
 * te_rollup_put_1m_end writes what is left: every caller ends with it.
 * Returns 0 or TE_E*. */
int te_rollup_put_1m_blob(te_store_t *st, struct te_rollup *r, int64_t kid, int64_t sid,
                          int64_t hour, int64_t events, const void *blob, size_t len,
                          te_err_t *err);
int te_rollup_put_1m_end(te_store_t *st, struct te_rollup *r, te_err_t *err);

/* Begins the blob of a series' hour of (kid, hour) in b (emptied): its
 * version and names, '' then fields fids[0, n). Version 5 names them by
 * index into the pack row's names, defining the new ones there; the pack
 * row is opened for (kid, hour) first, writing the row open before (of
 * another kind or hour, or with too many names). Version 4 (names written
 * out) when they do not fit one row. The blob must go to
 * te_rollup_put_1m_blob before anything else is added to the pack.
 * Returns 0 or TE_E*. */
int te_rollup_1m_head(te_store_t *st, struct te_rollup *r, te_rollup_wbuf_t *b, int64_t kid,
                      int64_t hour, const uint32_t *fids, size_t n, te_err_t *err);

/* Appends a series' encoded hour to pack p (begun with kid and hour when
 * not open); failures latch in p->b.oom. */
void te_rollup_pack_add(te_rollup_pack_t *p, int64_t kid, int64_t hour, int64_t sid,
                        int64_t events, const void *blob, size_t len);

/* Inserts one 1-minute pack row (kind kid, hour, n events, data p of len
 * bytes) through ins (TE_SQL_ROLLUP_1M_INS). Returns 0 or TE_E*. */
int te_rollup_1m_insert(te_store_t *st, sqlite3_stmt *ins, int64_t kid, int64_t hour, int64_t n,
                        const void *p, size_t len, te_err_t *err);

/* Inserts pack p through ins (TE_SQL_ROLLUP_1M_INS) when open, and closes
 * it. Returns 0 or TE_E*. */
int te_rollup_pack_write(te_store_t *st, sqlite3_stmt *ins, te_rollup_pack_t *p, te_err_t *err);

/* Schema 6 -> 7: packs the rows of rollup_1m_v6 (renamed by the
 * migration's SQL) into rollup_1m, then drops it. Returns 0 or TE_E*. */
int te_rollup_1m_convert(te_store_t *st, te_err_t *err);

/* Encodes cells[0, n) (1-minute accumulators of one series and hour, in
 * (minute, field) order) as one series' hour and adds it to the pack row
 * being filled (te_rollup_put_1m_blob). Returns 0 or TE_E*. */
int te_rollup_put_1m(te_store_t *st, struct te_rollup *r, int64_t kid, int64_t sid, int64_t hour,
                     const te_rollup_ent_t *cells, size_t n, te_err_t *err);

/* Writes the 1-hour accumulators ents[0, n) (res 1, sorted by kind,
 * field, bucket and series) as chunk rows, each merged with the row
 * stored under its key (rollup_1h.h). Returns 0 or TE_E*. */
int te_rollup_put_1h_ents(te_store_t *st, struct te_rollup *r, te_rollup_ent_t *ents, size_t n,
                          te_err_t *err);

/* --- rollup_hour.c: the hour builder --- */

/* Adds one event (rowid, series sid of kind kid) to its (series, hour)
 * slot, in any time order. Returns 0 or TE_ENOMEM. */
int te_rollup_hour_add(struct te_rollup *r, int64_t kid, int64_t sid, int64_t ts, int64_t rowid,
                       const unsigned char *fields, size_t fields_len);

/* Events and rowid sum of kind kid's slots whose hour lies in [from, to). */
void te_rollup_hour_sum(const struct te_rollup *r, int64_t kid, int64_t from, int64_t to,
                        int64_t *nev, int64_t *idsum);

/* Writes the rows of kind kid's slots whose hour is before before_hour and
 * recycles them. An hour may already have rows (an earlier part of it, or
 * late events): 1-minute rows add up, 1-hour rows merge on their key.
 * Returns 0 or TE_E*. */
int te_rollup_hour_flush(te_store_t *st, int64_t kid, int64_t before_hour, te_err_t *err);

/* Drops kind kid's slots whose hour is before before_hour (kid 0: every
 * slot) without writing them. Cannot fail. */
void te_rollup_hour_drop(struct te_rollup *r, int64_t kid, int64_t before_hour);

/* Bytes the hour builder has allocated (slots in use and spare). */
size_t te_rollup_hour_bytes(const struct te_rollup *r);

/* Frees the buffers of spare slots (those dropped or written); the
 * slots themselves stay, for the next hour's series. */
void te_rollup_hour_trim(struct te_rollup *r);

/* te_rollup_hour_trim, and gives the spare slots and the room of the
 * slot array and its index back: after an hour of many series, the
 * hours after it would otherwise find the bound taken by slots they
 * never use (30,000 slots: 3.9 of its 4 MiB). */
void te_rollup_hour_shrink(struct te_rollup *r);

/* Frees the hour builder's memory. Cannot fail. */
void te_rollup_hour_free(struct te_rollup *r);

/* Writes the rows of kind kid's slots of hours before before_hour into
 * memory (r->preps, an entry per hour) instead of the database, and
 * recycles the slots: the feed's thread does it once an hour is over, so
 * that the advance only inserts them. te_rollup_hour_sum counts them,
 * te_rollup_hour_flush inserts them, te_rollup_hour_drop drops them.
 * Returns 0 or TE_E* (the hour that failed holds nothing: its slots are
 * gone, so the caller must have the builder checked against the raw
 * rows). */
int te_rollup_hour_prepare(struct te_rollup *r, int64_t kid, int64_t before_hour, te_err_t *err);

/* Moves the pack row r->pack (open) into r->prep and closes it. Returns 0
 * or TE_ENOMEM. */
int te_rollup_prep_pack(struct te_rollup *r, te_err_t *err);

/* A new zeroed entry at the end of l; NULL on ENOMEM. */
te_rollup_prep_t *te_rollup_preps_add(te_rollup_preps_t *l);

/* Removes l's entries of kind kid (0: any kind) and hours before
 * before_hour: inserts their rows when st is not NULL, frees them, and
 * uncounts their bytes from r->prep_bytes when counted. Returns the first
 * error; every such entry is removed anyway. */
int te_rollup_preps_out(te_store_t *st, struct te_rollup *r, te_rollup_preps_t *l, int64_t kid,
                        int64_t before_hour, bool counted, te_err_t *err);

/* --- rollup_feed.c: the hour builder's thread --- */

/* Whether te_rollup_add should feed the builder through a thread: on a
 * machine of more than one core, unless TE_ROLLUP_THREAD=0 says no
 * (TE_ROLLUP_THREAD=1: also on one core). */
bool te_rollup_feed_wanted(void);

/* Starts r's feed thread (r->feed). Returns 0 or TE_ENOMEM (no thread:
 * the owner goes on adding events itself). */
int te_rollup_feed_start(struct te_rollup *r);

/* Queues one event for te_rollup_hour_add on the feed's thread (its
 * fields blob copied); false when it is too big for a buffer: the caller
 * takes the builder back (te_rollup_feed_own) and adds it itself. */
bool te_rollup_feed_push(struct te_rollup *r, int64_t kid, int64_t sid, int64_t ts,
                         int64_t rowid, const unsigned char *fields, size_t fields_len);

/* The builder's bytes as the feed's thread last saw them (hour_bytes
 * when there is no feed); lags by the events queued. */
size_t te_rollup_feed_bytes(const struct te_rollup *r);

/* Takes kind kid's prepared hours before the returned hour out of
 * r->preps into out (appended; the caller inserts and frees them), without
 * waiting for the thread: the returned hour is the least of to, the hour
 * before which the thread has prepared every event of the kind it was
 * given, and the hour of the kind's oldest event not given yet. Every
 * event of kind kid of the hours before it that the owner queued is then
 * in out, or in an earlier advance's rows. INT64_MIN, nothing taken: the
 * thread prepares nothing of the kind (yet, or past FEED_KINDS kinds), or
 * ENOMEM; the caller takes the builder back and writes it itself. */
int64_t te_rollup_feed_take(struct te_rollup *r, int64_t kid, int64_t to, te_rollup_preps_t *out);

/* Waits until every queued event is added (and the hours over are
 * prepared) and gives the builder back to the calling (owner) thread,
 * until the next te_rollup_feed_push. Returns false when an add or a
 * prepare failed since the last call: events are then missing from the
 * builder. No feed: true at once. */
bool te_rollup_feed_own(struct te_rollup *r);

/* Hands the events queued so far to the thread if it is idle (never
 * waits): a commit's events are then ready for the next advance. */
void te_rollup_feed_kick(struct te_rollup *r);

/* Stops and frees the feed (queued events not handed over are dropped:
 * the store is closing). NULL-safe feed. */
void te_rollup_feed_stop(struct te_rollup *r);

#endif
