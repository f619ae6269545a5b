/*
 * harness_recv.h - a loopback HTTP receiver for the notifier tests: a
 * thread that accepts one request per connection, answers 200 (or 500 in
 * fail mode) and keeps the bodies it answered 200 to.
 *
 * THREAD: the receiver's own thread serves; every call below is safe from
 * the test's thread.
 */
#ifndef TE_IT_HARNESS_RECV_H
#define TE_IT_HARNESS_RECV_H

#include <stdbool.h>

typedef struct te_it_recv te_it_recv_t;

/* Listens on 127.0.0.1 on an ephemeral port and starts serving; fail
 * answers 500 to everything until te_it_recv_set_fail(r, false). NULL on
 * failure. */
te_it_recv_t *te_it_recv_start(bool fail);

/* The port it listens on. */
int te_it_recv_port(const te_it_recv_t *r);

void te_it_recv_set_fail(te_it_recv_t *r, bool fail);

/* Requests so far (all), and into *ok (may be NULL) those answered 200. */
int te_it_recv_count(te_it_recv_t *r, int *ok);

/* A malloc'd copy of body i (0-based) of those answered 200, or NULL. */
char *te_it_recv_body(te_it_recv_t *r, int i);

/* Every body answered 200 so far, each followed by "\n" (malloc'd). */
char *te_it_recv_bodies(te_it_recv_t *r);

/* Waits up to timeout_ms for at least n bodies answered 200. Returns the
 * number seen. */
int te_it_recv_wait(te_it_recv_t *r, int n, int timeout_ms);

/* Stops the thread and frees. NULL-safe. */
void te_it_recv_stop(te_it_recv_t *r);

#endif
