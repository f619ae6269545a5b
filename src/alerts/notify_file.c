/* notify_file.c - "file" notifier: append one SPEC §7 JSON line per
 * notification (O_APPEND, optional fsync); a scheduled report is one line
 * of te_report_note_json. THREAD: loop thread; the write is
 * a small local append done inline; done_cb is deferred to the next loop
 * iteration with a zero-delay uv_timer per send. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "alerts/notify.h"

typedef struct { char *path; int fsync; } file_impl_t;

typedef struct {
    uv_timer_t t;
    te_notify_done_cb done;
    void *ud;
    int rc;
    char msg[256];
} pending_t;

static void on_closed(uv_handle_t *h) { free(h->data); }

static void on_fire(uv_timer_t *t)
{
    pending_t *p = t->data;
    if (p->done) p->done(p->rc, p->rc ? p->msg : NULL, p->ud);
    uv_close((uv_handle_t *)t, on_closed);
}

/* Appends js (taken) as one line; done on the next loop turn. */
static int file_append(te_notifier_t *n, char *js, te_notify_done_cb done, void *ud)
{
    file_impl_t *fi = n->impl;
    if (!js) return TE_ENOMEM;
    pending_t *p = calloc(1, sizeof *p);
    if (!p) { free(js); return TE_ENOMEM; }
    p->done = done;
    p->ud = ud;
    size_t len = strlen(js);
    int fd = open(fi->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        p->rc = TE_EIO;
        snprintf(p->msg, sizeof p->msg, "notifier \"%s\": open %s: %s", n->name,
                 fi->path, strerror(errno));
    } else {
        char *line = malloc(len + 2);
        if (line) {
            memcpy(line, js, len);
            line[len] = '\n';
            ssize_t w = write(fd, line, len + 1);
            if (w != (ssize_t)(len + 1)) {
                p->rc = TE_EIO;
                snprintf(p->msg, sizeof p->msg, "notifier \"%s\": write %s: %s",
                         n->name, fi->path, w < 0 ? strerror(errno) : "short write");
            } else if (fi->fsync && fsync(fd) != 0) {
                p->rc = TE_EIO;
                snprintf(p->msg, sizeof p->msg, "notifier \"%s\": fsync %s: %s",
                         n->name, fi->path, strerror(errno));
            }
            free(line);
        } else {
            p->rc = TE_ENOMEM;
            snprintf(p->msg, sizeof p->msg, "out of memory");
        }
        close(fd);
    }
    free(js);
    uv_timer_init(n->loop, &p->t);
    p->t.data = p;
    uv_timer_start(&p->t, on_fire, 0, 0);
    return 0;
}

static int file_send(te_notifier_t *n, const te_alert_t *a, const char *status,
                     te_notify_done_cb done, void *ud)
{
    return file_append(n, te_alert_to_json(a, status), done, ud);
}

/* A scheduled report: te_report_note_json as one line. */
static int file_send_report(te_notifier_t *n, const te_report_note_t *r,
                            te_notify_done_cb done, void *ud)
{
    return file_append(n, te_report_note_json(r), done, ud);
}

static void file_free(te_notifier_t *n)
{
    file_impl_t *fi = n->impl;
    if (fi) free(fi->path);
    free(fi);
    free(n->name);
    free(n->type);
    free(n);
}

te_notifier_t *te_notifier_file_new(uv_loop_t *loop, const char *name,
                                    const char *json, te_err_t *err)
{
    te_notifier_t *n = NULL;
    cJSON *root = cJSON_Parse(json ? json : "");
    if (!cJSON_IsObject(root)) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": block is not a JSON object", name);
        goto fail;
    }
    cJSON *it;
    cJSON_ArrayForEach(it, root) {
        const char *k = it->string;
        if (strcmp(k, "name") && strcmp(k, "type") && strcmp(k, "path") &&
            strcmp(k, "fsync")) {
            te_err_set(err, TE_ECONFIG, "notifier \"%s\": unknown key \"%s\"", name, k);
            goto fail;
        }
    }
    cJSON *path = cJSON_GetObjectItemCaseSensitive(root, "path");
    if (!cJSON_IsString(path) || !path->valuestring[0]) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": file needs a \"path\" string", name);
        goto fail;
    }
    cJSON *fs = cJSON_GetObjectItemCaseSensitive(root, "fsync");
    if (fs && !cJSON_IsBool(fs)) {
        te_err_set(err, TE_ECONFIG, "notifier \"%s\": \"fsync\" must be a boolean", name);
        goto fail;
    }
    n = calloc(1, sizeof *n);
    file_impl_t *fi = calloc(1, sizeof *fi);
    if (!n || !fi) { free(fi); te_err_set(err, TE_ENOMEM, "out of memory"); goto fail; }
    n->impl = fi;
    n->loop = loop;
    n->name = strdup(name);
    n->type = strdup("file");
    fi->path = strdup(path->valuestring);
    fi->fsync = cJSON_IsTrue(fs);
    n->send = file_send;
    n->send_report = file_send_report;
    n->free = file_free;
    if (!n->name || !n->type || !fi->path) {
        te_err_set(err, TE_ENOMEM, "out of memory");
        file_free(n);
        n = NULL;
    }
    cJSON_Delete(root);
    return n;
fail:
    free(n);
    cJSON_Delete(root);
    return NULL;
}
