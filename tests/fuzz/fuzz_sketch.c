/*
 * fuzz_sketch.c - libFuzzer target for te_sketch_decode: sketches come back
 * from SQLite rollups and rule state, so a hostile or damaged blob must be
 * refused cleanly. A blob that decodes must answer quantiles, re-encode to
 * a blob that decodes again, and merge.
 *
 * FUZZ_SOURCES: src/rules/sketch.c src/rules/sketch_key.c
 */
#include <stdint.h>
#include <stdlib.h>

#include "rules/sketch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    te_err_t err;
    te_sketch_t *s = te_sketch_decode(data, size, &err);
    if (!s)
        return 0;
    double v;
    te_sketch_quantile(s, 0.5, &v);
    te_sketch_quantile(s, 0.99, &v);
    unsigned char *blob = NULL;
    size_t len = 0;
    if (te_sketch_encode(s, &blob, &len) == 0) {
        te_sketch_t *t = te_sketch_decode(blob, len, &err);
        if (!t)
            abort(); /* our own encoding must decode */
        te_sketch_merge(t, s, NULL);
        te_sketch_add(t, 3.5);
        te_sketch_add(t, -1e300);
        te_sketch_free(t);
        free(blob);
    }
    te_sketch_free(s);
    return 0;
}
