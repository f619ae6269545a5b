/*
 * query_cache.c - the query cache (query_cache.h): a short list of
 * entries, each what one statement run read (rows with their blobs in one
 * arena, or partial aggregates with their sketches).
 *
 * THREAD: see query_cache.h.
 *
 * A report holds a handful of entries (one per field and range), so a
 * list searched linearly is enough. Bytes are counted by allocation size
 * (a sketch as a flat estimate), so the budget bounds what is really held.
 */
#include "query_cache.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ESTIMATES 16

typedef struct estimate {
    int64_t kid, lo, hi, est;
} estimate_t;

struct te_qcache {
    size_t max_bytes, bytes;
    bool stamped;
    int64_t data_version, changes;
    te_qcache_entry_t *head;
    estimate_t est[MAX_ESTIMATES];
    size_t nest, next_est;
};

te_qcache_t *te_qcache_new(size_t max_bytes)
{
    te_qcache_t *qc = calloc(1, sizeof(*qc));
    if (qc)
        qc->max_bytes = max_bytes;
    return qc;
}

void te_qcache_entry_free(te_qcache_entry_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; e->sk && i < e->nrows; i++)
        te_qsketch_free(e->sk[i]);
    free(e->sk);
    free(e->rows);
    free(e->arena);
    free(e->field);
    free(e);
}

static void clear(te_qcache_t *qc)
{
    while (qc->head) {
        te_qcache_entry_t *e = qc->head;
        qc->head = e->next;
        te_qcache_entry_free(e);
    }
    qc->bytes = 0;
    qc->nest = qc->next_est = 0;
}

void te_qcache_free(te_qcache_t *qc)
{
    if (!qc)
        return;
    clear(qc);
    free(qc);
}

void te_qcache_stamp(te_qcache_t *qc, int64_t data_version, int64_t changes)
{
    if (qc->stamped && qc->data_version == data_version && qc->changes == changes)
        return;
    clear(qc);
    qc->stamped = true;
    qc->data_version = data_version;
    qc->changes = changes;
}

static bool same_key(const te_qcache_entry_t *e, const te_qcache_entry_t *k)
{
    if (e->level != k->level || e->kid != k->kid || e->lo != k->lo || e->hi != k->hi ||
        e->every != k->every)
        return false;
    if (!k->field || !e->field)
        return k->field == e->field;
    return strcmp(k->field, e->field) == 0;
}

const te_qcache_entry_t *te_qcache_find(const te_qcache_t *qc, int level, int64_t kid,
                                        const char *field, int64_t lo, int64_t hi, int64_t every,
                                        bool need_sketch)
{
    te_qcache_entry_t k = {.level = level, .kid = kid, .lo = lo, .hi = hi, .every = every,
                           .field = (char *)field};
    for (const te_qcache_entry_t *e = qc ? qc->head : NULL; e; e = e->next)
        if (same_key(e, &k) && (e->sketch || !need_sketch))
            return e;
    return NULL;
}

size_t te_qcache_room(const te_qcache_t *qc)
{
    return qc && qc->bytes < qc->max_bytes ? qc->max_bytes - qc->bytes : 0;
}

te_qcache_entry_t *te_qcache_entry_new(int level, int64_t kid, const char *field, int64_t lo,
                                       int64_t hi, int64_t every, bool sketch)
{
    te_qcache_entry_t *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    *e = (te_qcache_entry_t){.level = level, .kid = kid, .lo = lo, .hi = hi, .every = every,
                             .sketch = sketch, .bytes = sizeof(*e)};
    if (field && !(e->field = strdup(field))) {
        free(e);
        return NULL;
    }
    if (field)
        e->bytes += strlen(field) + 1;
    return e;
}

static size_t next_cap(size_t cap, size_t need, size_t first)
{
    size_t ncap = cap ? cap * 2 : first;
    while (ncap < need)
        ncap *= 2;
    return ncap;
}

te_qcache_row_t *te_qcache_entry_add(te_qcache_entry_t *e, const te_qcache_row_t *row,
                                     const void *blob, size_t blob_len, size_t max_bytes)
{
    size_t per = sizeof(*row) + (e->sketch ? sizeof(te_qsketch_t *) : 0);
    size_t ncap = e->nrows < e->cap_rows ? e->cap_rows : next_cap(e->cap_rows, e->nrows + 1, 64);
    size_t need = e->alen + blob_len;
    size_t nacap = need <= e->acap ? e->acap : next_cap(e->acap, need, 4096);
    size_t more = (ncap - e->cap_rows) * per + (nacap - e->acap);
    if (e->bytes + more > max_bytes)
        return NULL;
    if (ncap != e->cap_rows) {
        te_qcache_row_t *nr = realloc(e->rows, ncap * sizeof(*nr));
        if (!nr)
            return NULL;
        e->rows = nr;
        if (e->sketch) {
            te_qsketch_t **ns = realloc(e->sk, ncap * sizeof(*ns));
            if (!ns)
                return NULL; /* rows grew, cap_rows did not: harmless */
            e->sk = ns;
        }
        e->bytes += (ncap - e->cap_rows) * per;
        e->cap_rows = ncap;
    }
    if (nacap != e->acap) {
        unsigned char *na = realloc(e->arena, nacap);
        if (!na)
            return NULL;
        e->arena = na;
        e->bytes += nacap - e->acap;
        e->acap = nacap;
    }
    te_qcache_row_t *r = &e->rows[e->nrows];
    *r = *row;
    r->off = e->alen;
    r->len = blob ? blob_len : 0;
    if (r->len)
        memcpy(e->arena + e->alen, blob, r->len);
    e->alen += r->len;
    if (e->sketch)
        e->sk[e->nrows] = NULL;
    e->nrows++;
    return r;
}

bool te_qcache_keep(te_qcache_t *qc, te_qcache_entry_t *e)
{
    if (!e || !qc || e->bytes > te_qcache_room(qc))
        return false;
    /* the new entry supersedes a same key kept without sketches */
    for (te_qcache_entry_t **pp = &qc->head; *pp;) {
        te_qcache_entry_t *o = *pp;
        if (same_key(o, e) && (e->sketch || !o->sketch)) {
            *pp = o->next;
            qc->bytes -= o->bytes;
            te_qcache_entry_free(o);
        } else {
            pp = &o->next;
        }
    }
    e->next = qc->head;
    qc->head = e;
    qc->bytes += e->bytes;
    return true;
}

bool te_qcache_estimate_get(const te_qcache_t *qc, int64_t kid, int64_t lo, int64_t hi,
                            int64_t *est)
{
    for (size_t i = 0; qc && i < qc->nest; i++) {
        const estimate_t *x = &qc->est[i];
        if (x->kid == kid && x->lo == lo && x->hi == hi) {
            *est = x->est;
            return true;
        }
    }
    return false;
}

void te_qcache_estimate_put(te_qcache_t *qc, int64_t kid, int64_t lo, int64_t hi, int64_t est)
{
    if (!qc)
        return;
    qc->est[qc->next_est] = (estimate_t){kid, lo, hi, est};
    qc->next_est = (qc->next_est + 1) % MAX_ESTIMATES;
    if (qc->nest < MAX_ESTIMATES)
        qc->nest++;
}
