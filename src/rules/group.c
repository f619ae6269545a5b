/*
 * group.c - the per-rule map of groups (see eval_int.h).
 *
 * THREAD: loop.
 *
 * Open addressing with linear probing over group pointers, at most half
 * full, with backward-shift deletion (no tombstones, so lookups on the hot
 * path never walk dead slots). A lookup hashes the items once and compares
 * the packed key only on a hash match: no allocation in steady state.
 */
#include <stdlib.h>
#include <string.h>

#include "rules/eval_int.h"

uint64_t te_group_hash(const char *const *items, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)(items[i] ? items[i] : ""); *p; p++) {
            h ^= *p;
            h *= 0x100000001b3ull;
        }
        h ^= 0xffu;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

static bool key_equal(const te_group_t *g, const char *const *items, size_t n)
{
    if (g->nitems != n)
        return false;
    const char *k = g->key;
    const char *end = g->key + g->keylen;
    for (size_t i = 0; i < n; i++) {
        const char *s = items[i] ? items[i] : "";
        size_t len = strlen(s);
        if ((size_t)(end - k) < len + 1 || memcmp(k, s, len) != 0 || k[len] != '\0')
            return false;
        k += len + 1;
    }
    return k == end;
}

te_group_t *te_group_find(const te_group_map_t *m, const char *const *items, size_t n,
                          uint64_t hash)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        te_group_t *g = m->slots[i];
        if (!g)
            return NULL;
        if (g->hash == hash && key_equal(g, items, n))
            return g;
    }
}

static void put_slot(te_group_t **slots, size_t cap, te_group_t *g)
{
    size_t mask = cap - 1;
    size_t i = (size_t)g->hash & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = g;
}

static int grow(te_group_map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    te_group_t **slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return TE_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i])
            put_slot(slots, cap, m->slots[i]);
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

static void group_free(te_group_t *g)
{
    for (size_t i = 0; i < g->nwin; i++)
        te_window_free(g->win[i]);
    te_alert_clear(&g->alert);
    te_group_det_free(g->det);
    free(g->key);
    free(g);
}

te_group_t *te_group_add(te_group_map_t *m, const char *const *items, size_t n, uint64_t hash,
                         const te_window_opts_t *wopts, size_t nwin, int64_t now_ns)
{
    if ((m->n + 1) * 2 > m->cap && grow(m))
        return NULL;
    te_group_t *g = calloc(1, sizeof(*g) + nwin * sizeof(g->win[0]));
    if (!g)
        return NULL;
    te_alert_init(&g->alert);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i] ? items[i] : "") + 1;
    g->key = malloc(len ? len : 1);
    if (!g->key)
        goto fail;
    char *k = g->key;
    for (size_t i = 0; i < n; i++) {
        const char *s = items[i] ? items[i] : "";
        size_t sl = strlen(s) + 1;
        memcpy(k, s, sl);
        k += sl;
    }
    g->keylen = len;
    g->nitems = n;
    g->hash = hash;
    g->last_event_ns = now_ns;
    g->nwin = nwin;
    for (size_t i = 0; i < nwin; i++) {
        g->win[i] = te_window_new(&wopts[i], now_ns, NULL);
        if (!g->win[i])
            goto fail;
    }
    put_slot(m->slots, m->cap, g);
    m->n++;
    return g;
fail:
    group_free(g);
    return NULL;
}

void te_group_remove(te_group_map_t *m, te_group_t *g)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)g->hash & mask;
    while (m->slots[i] != g)
        i = (i + 1) & mask;
    m->slots[i] = NULL;
    /* backward shift: move later entries of the run into the hole when
     * their home slot is not between the hole and them */
    for (size_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
        size_t home = (size_t)m->slots[j]->hash & mask;
        bool between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->slots[i] = m->slots[j];
            m->slots[j] = NULL;
            i = j;
        }
    }
    m->n--;
    group_free(g);
}

void te_group_map_free(te_group_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i])
            group_free(m->slots[i]);
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}
