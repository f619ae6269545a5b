/*
 * http.h - a small HTTP/1.1 server on libuv + http_parser (SPEC section 5).
 *
 * THREAD: loop. Everything here runs on the loop thread, including
 * te_http_respond, which handlers call either at once or later (from an
 * async or after-work callback).
 *
 * The one idea: one request at a time per connection. When a request is
 * complete the parser is paused and reading stops; the answer is written and
 * only then is the next (pipelined) request parsed. Answers are therefore in
 * order, buffering is bounded by one body, and a slow handler applies
 * back-pressure to its client. A connection is reference-counted: it lives
 * while its socket is open or a request on it is unanswered, so a client
 * that disconnects while its batch commits does not free the request.
 *
 * Limits: request line + headers 64 KiB (431), body max_body_bytes (413;
 * when Content-Length says so, answered before the body is read, then the
 * connection is closed). Malformed requests get 400 and a close.
 */
#ifndef TE_INGEST_HTTP_H
#define TE_INGEST_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../core/buf.h"
#include "../core/err.h"

#define TE_HTTP_MAX_HEADER_BYTES (64u * 1024u)
#define TE_HTTP_MAX_PARAMS 64

typedef struct te_http_server te_http_server_t;
typedef struct te_http_conn te_http_conn_t;

typedef struct te_http_param {
    char *key;   /* percent-decoded, NUL-terminated */
    char *value;
} te_http_param_t;

/* One request. Valid from the handler call until te_http_respond. */
typedef struct te_http_req {
    /* read-only for handlers */
    int method;                   /* enum http_method */
    const char *path;             /* without the query, NUL-terminated */
    const char *content_encoding; /* NULL when absent */
    const char *authorization;    /* the Authorization header, NULL when absent */
    char *body;                   /* NULL when empty; NUL-terminated */
    size_t body_len;
    te_http_param_t params[TE_HTTP_MAX_PARAMS];
    size_t nparams;
    int64_t start_ns;             /* monotonic, when the request was complete */
    /* public: handler's own data */
    void *ud;
    /* private */
    te_http_conn_t *conn;
    char *url;
    size_t url_len, url_cap;
    bool keep_alive;
    char enc_buf[32];
    char auth_buf[512];
} te_http_req_t;

/* Called on the loop for every complete request. The handler must call
 * te_http_respond exactly once, now or later. */
typedef void (*te_http_handler_cb)(te_http_req_t *req, void *ud);

typedef struct te_http_opts {
    const char *addr;        /* "HOST:PORT" or "[v6]:PORT" */
    size_t max_body_bytes;   /* 0 means 16 MiB */
    te_http_handler_cb handler;
    void *ud;
} te_http_opts_t;

/* Binds and listens. On success *out is the server (te_http_server_free
 * after the loop stopped). Fails with TE_EINVAL (bad address) or TE_EIO and
 * a message naming the address, e.g. "http: cannot listen on 127.0.0.1:4380:
 * address already in use (...)"; *out is then untouched and the half-made
 * listener is freed by its close callback (the caller runs the loop to its
 * end before uv_loop_close). */
int te_http_server_start(uv_loop_t *loop, const te_http_opts_t *opts, te_http_server_t **out,
                         te_err_t *err);

/* Writes the bound address ("127.0.0.1:4380", "[::1]:4380") into buf. */
void te_http_server_address(const te_http_server_t *srv, char *buf, size_t cap);

/* Stops accepting and reading: the listener is closed, idle connections are
 * closed, connections with an unanswered request close once it is answered.
 * Idempotent. */
void te_http_server_close(te_http_server_t *srv);

/* Frees the server. Call after te_http_server_close, once the loop has run
 * every close callback (no connection left). NULL is a no-op. */
void te_http_server_free(te_http_server_t *srv);

/* Requests answered so far, by status code (index 100..599). */
uint64_t te_http_server_count(const te_http_server_t *srv, int status);

/* Connections open now. */
size_t te_http_server_connections(const te_http_server_t *srv);

/* Sends the answer and ends the request (req is invalid afterwards). body is
 * TAKEN (malloc'd, freed after the write; NULL when len is 0). ctype NULL
 * means application/json. extra_headers is NULL or complete header lines,
 * each ending "\r\n" ("Retry-After: 1\r\n"). If the client is gone the answer
 * is dropped. */
void te_http_respond_take(te_http_req_t *req, int status, const char *ctype,
                          const char *extra_headers, char *body, size_t len);

/* Like te_http_respond_take with a copy of body. */
void te_http_respond(te_http_req_t *req, int status, const char *ctype, const char *extra_headers,
                     const char *body, size_t len);

/* Answers {"error":"<message>"} (message printf-formatted, JSON-escaped). */
void te_http_respond_error(te_http_req_t *req, int status, const char *extra_headers,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* First value of query parameter name, or NULL. */
const char *te_http_param(const te_http_req_t *req, const char *name);

/* True when the client of req is still connected. */
bool te_http_req_connected(const te_http_req_t *req);

/* Splits req->url into path (NUL-terminated in place) and percent-decoded
 * params (http_text.c; used by http.c). Returns 0, TE_ETOOBIG (over
 * TE_HTTP_MAX_PARAMS) or TE_ENOMEM. */
int te_http_parse_url(te_http_req_t *req);


#endif
