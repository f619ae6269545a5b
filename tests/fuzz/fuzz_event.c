/*
 * fuzz_event.c - libFuzzer target for te_event_parse (outside input).
 *
 * THREAD: main only. Beyond "never crash, never leak", every accepted event
 * must render (te_event_to_json), that rendering must parse again to the
 * very same rendering, and te_event_build from the stored parts must agree:
 * the invariants the store and the API rely on. A violation aborts. The
 * array splitter (te_json_array_next) and te_event_build's readers of
 * stored tags_json and fields blobs run on the same bytes.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    te_event_opts_t opts = {size & 1 ? "fuzz" : NULL, size & 2 ? "src" : NULL, 1234};
    te_event_t *ev = NULL, *again = NULL, *built = NULL;
    te_err_t err;
    if (te_event_parse((const char *)data, size, &opts, &ev, &err) < 0) {
        if (err.msg[0] == '\0')
            abort(); /* every rejection carries a reason */
    } else {
        size_t len;
        char *js = te_event_to_json(ev, &len);
        if (!js)
            abort();
        if (te_event_parse(js, len, &opts, &again, &err) < 0)
            abort();
        char *js2 = te_event_to_json(again, NULL);
        if (!js2 || strcmp(js, js2) != 0)
            abort();
        if (te_event_build(ev->ts_ns, ev->kind, ev->source, ev->id, ev->trace_id, ev->span_id,
                           ev->parent_span_id, ev->correlation_id, ev->tags_json,
                           ev->tags_json_len, ev->fields_blob, ev->fields_blob_len, ev->body,
                           ev->body_len, &built, &err) < 0)
            abort();
        char *js3 = te_event_to_json(built, NULL);
        if (!js3 || strcmp(js, js3) != 0)
            abort();
        for (size_t i = 0; i < ev->ntags; i++)
            if (te_event_tag(ev, ev->tags[i].key) != ev->tags[i].value)
                abort();
        free(js);
        free(js2);
        free(js3);
        te_event_free(again);
        te_event_free(built);
        te_event_free(ev);
    }
    /* An array body is split into elements, each parsed on its own. */
    size_t pos = 0, start, elen, n = 0;
    while (te_json_array_next((const char *)data, size, &pos, &start, &elen) == 1) {
        if (start + elen > size || elen == 0 || ++n > size)
            abort();
        if (te_event_parse((const char *)data + start, elen, &opts, &ev, &err) == 0)
            te_event_free(ev);
    }
    /* Stored parts are read back defensively: the same bytes as tags_json,
     * then as a fields blob, must give a clean event or a clean error. */
    if (te_event_build(1, "k", NULL, NULL, NULL, NULL, NULL, NULL, (const char *)data, size, NULL,
                       0, NULL, 0, &built, &err) == 0) {
        for (size_t i = 1; i < built->ntags; i++)
            if (strcmp(built->tags[i - 1].key, built->tags[i].key) >= 0)
                abort();
        te_event_free(built);
    }
    if (te_event_build(1, "k", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, data, size, NULL, 0,
                       &built, &err) == 0) {
        char *js = te_event_to_json(built, NULL);
        free(js);
        te_event_free(built);
    }
    /* The pre-parsed path must not crash either. */
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (root) {
        ev = NULL;
        if (te_event_from_cjson(root, size, &opts, &ev, &err) == 0)
            te_event_free(ev);
        cJSON_Delete(root);
    }
    return 0;
}
