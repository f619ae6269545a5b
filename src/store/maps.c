/*
 * maps.c - the store's small open-addressing hash maps: series keys
 * ((kind_id, tags_json) -> id), id -> text (kind names, series tags) and
 * id -> int64 (series sets of a listing or a query).
 *
 * THREAD: any; a map belongs to one store or one query at a time.
 *
 * The one idea: linear probing over power-of-two tables kept under 3/4 load,
 * hashed with FNV-1a plus a final avalanche (FNV's low bits alone cluster
 * badly for similar keys like {"host":"h1"}, {"host":"h2"}). Nothing is ever
 * deleted singly, so no tombstones: a map is only grown or emptied whole.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------- hash map ---------- */

uint64_t te_store_hash(const void *p, size_t len, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    /* final avalanche (FNV's low bits are weak for power-of-two tables) */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

te_series_slot_t *te_series_map_find(te_series_map_t *m, int64_t kind_id, const char *tags,
                                     size_t len, uint64_t hash)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        te_series_slot_t *s = &m->slots[i];
        if (!s->hash)
            return NULL;
        if (s->hash == hash && s->kind_id == kind_id && s->tags_len == len &&
            memcmp(s->tags, tags, len) == 0)
            return s;
    }
}

static void map_place(te_series_slot_t *slots, size_t cap, const te_series_slot_t *e)
{
    size_t mask = cap - 1;
    size_t i = e->hash & mask;
    while (slots[i].hash)
        i = (i + 1) & mask;
    slots[i] = *e;
}

int te_series_map_put(te_series_map_t *m, int64_t kind_id, const char *tags, size_t len,
                      uint64_t hash, int64_t id)
{
    if (m->n >= TE_SERIES_CACHE_MAX)
        te_series_map_clear(m);
    if ((m->n + 1) * 4 > m->cap * 3) { /* keep load under 3/4 */
        size_t ncap = m->cap ? m->cap * 2 : 64;
        te_series_slot_t *ns = calloc(ncap, sizeof(*ns));
        if (!ns)
            return TE_ENOMEM;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].hash)
                map_place(ns, ncap, &m->slots[i]);
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    te_series_slot_t e = {.hash = hash, .kind_id = kind_id, .id = id, .tags_len = len};
    e.tags = malloc(len + 1);
    if (!e.tags)
        return TE_ENOMEM;
    memcpy(e.tags, tags, len);
    e.tags[len] = '\0';
    map_place(m->slots, m->cap, &e);
    m->n++;
    return 0;
}

void te_series_map_clear(te_series_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].tags);
        m->slots[i].tags = NULL;
        m->slots[i].hash = 0;
    }
    m->n = 0;
}

void te_series_map_free(te_series_map_t *m)
{
    te_series_map_clear(m);
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
}

/* ---------- id -> text ---------- */

static size_t idstr_index(int64_t id, size_t mask)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 20) & mask;
}

te_idstr_slot_t *te_idstr_find(te_idstr_map_t *m, int64_t id)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = idstr_index(id, mask);; i = (i + 1) & mask) {
        if (m->slots[i].id == id)
            return &m->slots[i];
        if (!m->slots[i].id)
            return NULL;
    }
}

te_idstr_slot_t *te_idstr_put(te_idstr_map_t *m, int64_t id, const char *s, size_t len)
{
    if (m->n >= TE_SERIES_CACHE_MAX)
        te_idstr_free(m);
    if ((m->n + 1) * 4 > m->cap * 3) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        te_idstr_slot_t *ns = calloc(ncap, sizeof(*ns));
        if (!ns)
            return NULL;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].id)
                continue;
            size_t j = idstr_index(m->slots[i].id, ncap - 1);
            while (ns[j].id)
                j = (j + 1) & (ncap - 1);
            ns[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    size_t mask = m->cap - 1;
    size_t i = idstr_index(id, mask);
    while (m->slots[i].id)
        i = (i + 1) & mask;
    m->slots[i] = (te_idstr_slot_t){.id = id, .s = copy, .len = len};
    m->n++;
    return &m->slots[i];
}

void te_idstr_free(te_idstr_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].s);
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

/* ---------- id map ---------- */

static size_t id_slot(int64_t id, size_t mask)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ull;
    return (size_t)(x ^ (x >> 29)) & mask;
}

int te_idmap_put(te_idmap_t *m, int64_t id, int64_t val)
{
    if ((m->n + 1) * 4 > m->cap * 3) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        int64_t *nk = calloc(ncap, sizeof(*nk));
        int64_t *nv = calloc(ncap, sizeof(*nv));
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return TE_ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t j = id_slot(m->keys[i], ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
    }
    size_t mask = m->cap - 1;
    size_t i = id_slot(id, mask);
    while (m->keys[i] && m->keys[i] != id)
        i = (i + 1) & mask;
    if (!m->keys[i])
        m->n++;
    m->keys[i] = id;
    m->vals[i] = val;
    return 0;
}

bool te_idmap_get(const te_idmap_t *m, int64_t id, int64_t *val)
{
    if (!m->cap)
        return false;
    size_t mask = m->cap - 1;
    for (size_t i = id_slot(id, mask); m->keys[i]; i = (i + 1) & mask) {
        if (m->keys[i] == id) {
            if (val)
                *val = m->vals[i];
            return true;
        }
    }
    return false;
}

void te_idmap_free(te_idmap_t *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = m->vals = NULL;
    m->cap = m->n = 0;
}

