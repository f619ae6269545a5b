/*
 * fuzz_otlp.c - libFuzzer target for te_otlp_convert (outside input: the
 * bodies of POST /v1/traces, /v1/logs, /v1/metrics).
 *
 * FUZZ_SOURCES: src/ingest/otlp.c src/ingest/otlp_value.c src/ingest/redact.c
 * FUZZ_PKGS: libpcre2-8
 *
 * THREAD: main only. The same bytes go through all three signals. Beyond
 * "never crash, never leak": a refused request and every rejected item
 * carry a reason, and every event produced renders (te_event_to_json) to a
 * text that te_event_parse accepts again - what the store relies on. A
 * violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "ingest/otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    te_event_opts_t opts = {NULL, NULL, 1234};
    for (int sig = TE_OTLP_TRACES; sig <= TE_OTLP_METRICS; sig++) {
        te_otlp_result_t r;
        te_err_t err;
        int rc = te_otlp_convert((te_otlp_signal_t)sig, (const char *)data, size, 1234, &r, &err);
        if (rc < 0 && err.msg[0] == '\0')
            abort();
        if (rc == 0 && r.rejected > 0 && r.error[0] == '\0')
            abort();
        for (size_t i = 0; i < r.n; i++) {
            size_t len;
            te_event_t *again = NULL;
            char *js = te_event_to_json(r.events[i], &len);
            if (!js || te_event_parse(js, len, &opts, &again, &err) < 0)
                abort();
            te_event_free(again);
            free(js);
        }
        te_otlp_result_free(&r);
    }
    return 0;
}
