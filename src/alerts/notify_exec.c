/*
 * notify_exec.c - the exec notifier: runs an operator-configured argv (no
 * shell) with the alert's SPEC 7 JSON on stdin (SPEC sections 7 and 10).
 *
 * THREAD: loop. uv_spawn with a pipe for stdin, the child's stdout and
 * stderr go to /dev/null; exit status 0 is a delivery. A child still
 * running after `timeout` (default 10s) is killed with SIGKILL and the
 * delivery fails. A scheduled report (send_report) goes the same way with
 * te_report_note_json on stdin.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alerts/notify.h"
#include "core/time.h"

#define MAX_ARGS 64

typedef struct exec_impl {
    char *argv[MAX_ARGS + 1];
    int64_t timeout_ms;
    struct run *running;
} exec_impl_t;

typedef struct run {
    te_notifier_t *n;
    uv_process_t proc;
    uv_pipe_t in;
    uv_timer_t timer;
    uv_write_t write;
    char *payload;
    int open_handles;
    bool exited, timed_out;
    int64_t status;
    int term_signal;
    char err[300];              /* set when the command could not start */
    char who[200];              /* 'notifier "name": argv0', kept past the notifier */
    te_notify_done_cb done;
    void *ud;
    struct run *next;
} run_t;

static void unlink_run(exec_impl_t *x, run_t *r)
{
    for (run_t **p = &x->running; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

/* The last handle closed: report and free. */
static void on_closed(uv_handle_t *h)
{
    run_t *r = h->data;
    if (--r->open_handles > 0)
        return;
    char msg[300];
    int rc = 0;
    if (r->err[0]) {
        snprintf(msg, sizeof(msg), "%s", r->err);
        rc = TE_EIO;
    } else if (r->timed_out) {
        snprintf(msg, sizeof(msg), "%s did not finish in time (killed)", r->who);
        rc = TE_EIO;
    } else if (r->status != 0 || r->term_signal != 0) {
        snprintf(msg, sizeof(msg), "%s exited with status %lld%s", r->who,
                 (long long)r->status, r->term_signal ? " (signal)" : "");
        rc = TE_EIO;
    }
    r->done(rc, rc ? msg : NULL, r->ud);
    free(r->payload);
    free(r);
}

static void close_all(run_t *r)
{
    if (r->n) /* NULL once the notifier is gone */
        unlink_run(r->n->impl, r);
    uv_close((uv_handle_t *)&r->timer, on_closed);
    uv_close((uv_handle_t *)&r->proc, on_closed);
    if (!uv_is_closing((uv_handle_t *)&r->in))
        uv_close((uv_handle_t *)&r->in, on_closed);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    run_t *r = p->data;
    r->exited = true;
    r->status = status;
    r->term_signal = term_signal;
    uv_timer_stop(&r->timer);
    close_all(r);
}

static void on_timeout(uv_timer_t *t)
{
    run_t *r = t->data;
    r->timed_out = true;
    uv_process_kill(&r->proc, SIGKILL); /* on_exit_cb follows */
}

static void on_written(uv_write_t *w, int status)
{
    run_t *r = w->data;
    (void)status; /* a child that does not read its stdin is its own business */
    if (!uv_is_closing((uv_handle_t *)&r->in))
        uv_close((uv_handle_t *)&r->in, on_closed);
}

/* Runs the command with payload (taken) on its stdin. */
static int exec_run(te_notifier_t *n, char *payload, te_notify_done_cb done, void *ud)
{
    exec_impl_t *x = n->impl;
    if (!payload)
        return TE_ENOMEM;
    run_t *r = calloc(1, sizeof(*r));
    if (!r) {
        free(payload);
        return TE_ENOMEM;
    }
    r->payload = payload;
    r->n = n;
    r->done = done;
    r->ud = ud;
    snprintf(r->who, sizeof(r->who), "notifier \"%s\": %s", n->name, x->argv[0]);
    uv_pipe_init(n->loop, &r->in, 0);
    uv_timer_init(n->loop, &r->timer);
    r->in.data = r->timer.data = r->proc.data = r->write.data = r;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&r->in},
        {.flags = UV_IGNORE},
        {.flags = UV_IGNORE},
    };
    uv_process_options_t o = {.exit_cb = on_exit_cb, .file = x->argv[0], .args = x->argv,
                              .stdio_count = 3, .stdio = stdio};
    int rc = uv_spawn(n->loop, &r->proc, &o);
    r->open_handles = 3;
    if (rc < 0) { /* reported through done, like any failed delivery */
        snprintf(r->err, sizeof(r->err), "notifier \"%s\": cannot run %s: %s", n->name,
                 x->argv[0], uv_strerror(rc));
        uv_close((uv_handle_t *)&r->timer, on_closed);
        uv_close((uv_handle_t *)&r->proc, on_closed);
        uv_close((uv_handle_t *)&r->in, on_closed);
        return 0;
    }
    r->next = x->running;
    x->running = r;
    uv_buf_t buf = uv_buf_init(r->payload, (unsigned)strlen(r->payload));
    if (uv_write(&r->write, (uv_stream_t *)&r->in, &buf, 1, on_written) < 0)
        uv_close((uv_handle_t *)&r->in, on_closed);
    uv_timer_start(&r->timer, on_timeout, (uint64_t)x->timeout_ms, 0);
    return 0;
}

static int exec_send(te_notifier_t *n, const te_alert_t *a, const char *status,
                     te_notify_done_cb done, void *ud)
{
    return exec_run(n, te_alert_to_json(a, status), done, ud);
}

/* A notification group: one run with the group payload on stdin. */
/* A scheduled report: te_report_note_json on stdin. */
static int exec_send_report(te_notifier_t *n, const te_report_note_t *r, te_notify_done_cb done,
                            void *ud)
{
    return exec_run(n, te_report_note_json(r), done, ud);
}

static int exec_send_group(te_notifier_t *n, const te_alert_t *const *a,
                           const char *const *status, size_t count, te_notify_done_cb done,
                           void *ud)
{
    return exec_run(n, te_alert_group_json(a, status, count), done, ud);
}

static void exec_free(te_notifier_t *n)
{
    exec_impl_t *x = n->impl;
    if (x) {
        for (run_t *r = x->running; r; r = r->next) {
            r->timed_out = true; /* reported as killed */
            uv_process_kill(&r->proc, SIGKILL);
            r->n = NULL;
        }
        for (size_t i = 0; x->argv[i]; i++)
            free(x->argv[i]);
        free(x);
    }
    free(n->name);
    free(n->type);
    free(n);
}

te_notifier_t *te_notifier_exec_new(uv_loop_t *loop, const char *name, const char *json,
                                    te_err_t *err)
{
    te_notifier_t *n = calloc(1, sizeof(*n));
    exec_impl_t *x = calloc(1, sizeof(*x));
    cJSON *root = cJSON_Parse(json ? json : "");
    if (!n || !x) {
        free(n);
        free(x);
        cJSON_Delete(root);
        te_err_set(err, TE_ENOMEM, "out of memory");
        return NULL;
    }
    n->impl = x;
    n->loop = loop;
    n->send = exec_send;
    n->send_group = exec_send_group;
    n->send_report = exec_send_report;
    n->free = exec_free;
    n->name = strdup(name);
    n->type = strdup("exec");
    x->timeout_ms = 10000;
    const cJSON *cmd = cJSON_GetObjectItem(root, "command");
    size_t argc = 0;
    if (cJSON_IsString(cmd)) {
        x->argv[argc++] = strdup(cmd->valuestring);
    } else if (cJSON_IsArray(cmd)) {
        const cJSON *w;
        cJSON_ArrayForEach(w, cmd)
        {
            if (!cJSON_IsString(w) || argc == MAX_ARGS) {
                te_err_set(err, TE_ECONFIG,
                           "notifier \"%s\": command must be a list of strings (at most %d)",
                           name, MAX_ARGS);
                goto fail;
            }
            x->argv[argc++] = strdup(w->valuestring);
        }
    }
    if (argc == 0 || !x->argv[0] || !x->argv[0][0]) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": exec needs a \"command\" (argv list)",
                   name);
        goto fail;
    }
    for (size_t i = 0; i < argc; i++)
        if (!x->argv[i]) {
            te_err_set(err, TE_ENOMEM, "out of memory");
            goto fail;
        }
    const char *timeout = cJSON_GetStringValue(cJSON_GetObjectItem(root, "timeout"));
    int64_t ns = 0;
    if (timeout && (te_duration_parse(timeout, &ns, NULL) < 0 || ns <= 0)) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": bad timeout \"%s\"", name, timeout);
        goto fail;
    }
    if (timeout)
        x->timeout_ms = ns / TE_NS_PER_MS > 0 ? ns / TE_NS_PER_MS : 1;
    if (!n->name || !n->type) {
        te_err_set(err, TE_ENOMEM, "out of memory");
        goto fail;
    }
    cJSON_Delete(root);
    return n;
fail:
    cJSON_Delete(root);
    exec_free(n);
    return NULL;
}
