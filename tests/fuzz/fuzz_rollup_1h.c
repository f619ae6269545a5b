/*
 * fuzz_rollup_1h.c - libFuzzer target for the 1-hour rollup rows
 * (store/rollup_1h.c): their bytes come back from SQLite, so a damaged or
 * hostile row must be refused with an error, never read past its end.
 * Input: u16 little-endian length L, the stats column (L bytes), the
 * sketches column (the rest; none when empty). A row that walks must
 * rebuild (te_rollup_1h_add) into one that walks to the same entries, and
 * merge with itself (te_rollup_1h_merge, what a late event's write does)
 * into twice its counts, or fail with an error (a damaged sketch).
 *
 * FUZZ_SOURCES: src/store/rollup_1h.c src/store/rollup_fmt.c src/rules/sketch.c src/rules/sketch_key.c
 * FUZZ_PKGS: sqlite3
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/rollup_1h.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 4096

static bool same_f64(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t L = (size_t)data[0] | (size_t)data[1] << 8;
    if (L > size - 2)
        L = size - 2;
    const uint8_t *st = data + 2, *sk = data + 2 + L;
    size_t sk_len = size - 2 - L;
    te_err_t err;
    te_rollup_1h_iter_t it;
    if (te_rollup_1h_iter_init(&it, 1, st, L, sk_len ? sk : NULL, sk_len, &err) != 0)
        return 0;
    te_rollup_1h_entry_t *e = malloc(MAX_ENTRIES * sizeof(*e));
    if (!e)
        return 0;
    size_t n = 0;
    int rc;
    while (n < MAX_ENTRIES && (rc = te_rollup_1h_next(&it, &e[n], &err)) > 0)
        n++;
    if (n == MAX_ENTRIES || rc < 0) {
        free(e);
        return 0;
    }
    /* rebuilt, the same entries */
    bool values = st[0] != 1;
    te_rollup_1h_row_t row = {0}, out = {0};
    te_rollup_1h_begin(&row, 1, values ? "x" : "", values ? 1 : 0, 0, 1);
    for (size_t i = 0; i < n; i++)
        te_rollup_1h_add(&row, &e[i], NULL);
    if (row.oom)
        abort();
    size_t blen;
    const unsigned char *b = te_rollup_1h_bytes(&row, &blen);
    if (te_rollup_1h_iter_init(&it, 1, b, blen, row.sk, row.sk_len, &err) != 0)
        abort();
    te_rollup_1h_entry_t x;
    for (size_t i = 0; i < n; i++) {
        if (te_rollup_1h_next(&it, &x, &err) != 1 || x.sid != e[i].sid || x.n != e[i].n)
            abort();
        if (values && !same_f64(x.sum, e[i].sum))
            abort();
        if (values && e[i].n != 1 && (!same_f64(x.min, e[i].min) || !same_f64(x.max, e[i].max)))
            abort();
        if (values && e[i].n > 2 &&
            (x.sketch_len != e[i].sketch_len ||
             (x.sketch_len && memcmp(x.sketch, e[i].sketch, x.sketch_len) != 0)))
            abort();
    }
    if (te_rollup_1h_next(&it, &x, &err) != 0)
        abort();
    /* merged with itself: twice the counts, or an error */
    te_rollup_1h_begin(&out, 1, row.field, row.field_len, 0, 1);
    if (te_rollup_1h_merge(&out, st, L, sk_len ? sk : NULL, sk_len, &row, &err) == 0 &&
        !out.oom && out.n != 2 * row.n && row.n < INT64_MAX / 2 && row.n > INT64_MIN / 2)
        abort();
    te_rollup_1h_free(&out);
    te_rollup_1h_free(&row);
    free(e);
    return 0;
}
