/*
 * fuzz_rollup_1m.c - libFuzzer target for the 1-minute rollup rows
 * (store/rollup_fmt.c): their bytes come back from SQLite, so a damaged or
 * hostile row must be refused with an error, never read past its end.
 * The input is walked as a row's data (te_rollup_1m_pack_next) and, whole,
 * as one series' hour without a row. Every series' hour that walks must
 * also rewrite (te_rollup_1m_expand) into one that walks alone to the
 * very same cells: the query cache keeps those copies.
 *
 * FUZZ_SOURCES: src/store/rollup_fmt.c
 * FUZZ_PKGS: sqlite3
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/rollup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The cells of a walk folded into a hash (FNV-1a over their text). */
static int fold(const te_rollup_cell_t *c, void *ud)
{
    uint64_t *h = ud;
    char line[128];
    int n = snprintf(line, sizeof(line), "%d|%.*s|%lld|%a|%a|%a|%d|%zu", c->minute,
                     (int)(c->field_len < 64 ? c->field_len : 64), c->field, (long long)c->n,
                     c->sum, c->min, c->max, c->nvals, c->sketch_len);
    for (int i = 0; i < n && i < (int)sizeof(line); i++)
        *h = (*h ^ (unsigned char)line[i]) * 0x100000001b3ull;
    for (int i = 0; i < c->nvals; i++) {
        uint64_t u;
        memcpy(&u, &c->vals[i], sizeof(u));
        *h = (*h ^ u) * 0x100000001b3ull;
    }
    for (size_t i = 0; i < c->field_len; i++) /* the name's bytes are readable */
        *h = (*h ^ (unsigned char)c->field[i]) * 0x100000001b3ull;
    return 0;
}

static void check_blob(const void *blob, size_t len, const te_rollup_pack_names_t *pn,
                       unsigned char **xb, size_t *xcap)
{
    te_err_t err;
    uint64_t h = 0xcbf29ce484222325ull, hx = 0xcbf29ce484222325ull;
    if (te_rollup_1m_each(blob, len, pn, fold, &h, &err) != 0)
        return;
    size_t xlen = 0;
    if (te_rollup_1m_expand(blob, len, pn, xb, xcap, &xlen, &err) != 0)
        abort(); /* a blob that walks must rewrite */
    if (te_rollup_1m_each(*xb, xlen, NULL, fold, &hx, &err) != 0 || hx != h)
        abort(); /* and walk alone to the same cells */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    te_rollup_pack_names_t *pn = malloc(sizeof(*pn));
    unsigned char *xb = NULL;
    size_t xcap = 0, pos = 0, blen;
    int64_t sid;
    const void *blob;
    te_err_t err;
    if (!pn)
        return 0;
    while (te_rollup_1m_pack_next(data, size, &pos, &sid, &blob, &blen, pn, &err) > 0)
        check_blob(blob, blen, pn, &xb, &xcap);
    check_blob(data, size, NULL, &xb, &xcap);
    free(xb);
    free(pn);
    return 0;
}
