/*
 * engine.h - te_engine_t: the serving process's state, from one place.
 *
 * THREAD: loop. The engine owns the libuv loop, the configuration, the
 * writer (and through it the write connection), a read-only store for API
 * queries, the listeners (HTTP, TCP, Unix, UDP) and the engine's counters.
 * Only engine.c, cli/ and api/ include this header.
 */
#ifndef TE_ENGINE_H
#define TE_ENGINE_H

#include <stdint.h>

#include "core/err.h"

struct te_config;
typedef struct te_engine te_engine_t;

/* Opens the store, starts the writer and every configured listener, prints
 * the addresses it listens on to stdout ("http listening on
 * http://127.0.0.1:4380"), and runs until SIGTERM/SIGINT, when it stops
 * accepting, drains the queue, commits and returns 0. Returns a negative code
 * with err set when start-up fails (address in use, database unusable). */
int te_engine_serve(const struct te_config *cfg, te_err_t *err);

#endif
