/*
 * routes_silences.c - POST /v1/alerts/{id}/ack, GET/POST /v1/silences and
 * DELETE /v1/silences/{id} (SPEC section 5).
 *
 * THREAD: loop. Changes go through engine_alerts.c (the policy now, the
 * database through the writer) and are answered once committed; the list
 * is read on libuv's pool with its own read-only store, like the other
 * read routes.
 *
 * Bodies: ack {"by","comment"} (both optional; an empty body is fine).
 * A silence: {"matchers": {"tag":"value"} | ["tag=value", "tag!=value"] |
 * [{"name","value","op"}], "until": RFC 3339 or Unix seconds | "for":
 * "2h", "starts_at" (optional), "comment", "created_by" | "by"}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "../core/time.h"
#include "../engine_alerts.h"
#include "../engine_int.h"
#include "../engine_rules.h"
#include "../store/alerts_life.h"
#include "../store/store.h"
#include "api.h"

static void on_action(void *ud, int rc, const char *msg, char *json)
{
    te_http_req_t *req = ud;
    if (rc == 0) {
        size_t len = strlen(json);
        te_http_respond_take(req, 200, NULL, NULL, json, len);
        return;
    }
    free(json);
    int status = rc == TE_ENOTFOUND ? 404 : rc == TE_EINVAL || rc == TE_EEXISTS ? 409
                 : rc == TE_ECLOSED                                         ? 503
                                                                            : 500;
    te_http_respond_error(req, status, NULL, "%s", msg ? msg : te_strerror(rc));
}

static te_engine_alerts_t *alerts_of(te_engine_t *e, te_http_req_t *req)
{
    te_engine_alerts_t *A = te_engine_rules_alerts(e);
    if (!A)
        te_http_respond_error(req, 503, NULL, "the alert system is not running");
    return A;
}

/* Parses the body as a JSON object (an empty body is {}); answers 400. */
static cJSON *body_object(te_http_req_t *req, bool empty_ok)
{
    if (!req->body || req->body_len == 0) {
        if (empty_ok)
            return cJSON_CreateObject();
        te_http_respond_error(req, 400, NULL, "expected a JSON object body");
        return NULL;
    }
    cJSON *o = cJSON_ParseWithLength(req->body, req->body_len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        te_http_respond_error(req, 400, NULL, "the body is not a JSON object");
        return NULL;
    }
    return o;
}

static bool opt_string(te_http_req_t *req, const cJSON *o, const char *key, const char **out)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsString(v)) {
        te_http_respond_error(req, 400, NULL, "\"%s\" must be a string", key);
        return false;
    }
    *out = v->valuestring;
    return true;
}

/* POST /v1/alerts/{id}/ack */
void te_api_alert_post(te_engine_t *e, te_http_req_t *req)
{
    const char *rest = req->path + strlen("/v1/alerts/");
    const char *slash = strchr(rest, '/');
    if (!slash || strcmp(slash, "/ack") != 0 || slash == rest ||
        (size_t)(slash - rest) > TE_ALERT_ID_LEN) {
        te_http_respond_error(req, 404, NULL, "no route for POST %s (POST /v1/alerts/ID/ack)",
                              req->path);
        return;
    }
    char id[TE_ALERT_ID_LEN + 1];
    memcpy(id, rest, (size_t)(slash - rest));
    id[slash - rest] = '\0';
    te_engine_alerts_t *A = alerts_of(e, req);
    cJSON *body = A ? body_object(req, true) : NULL;
    if (!body)
        return;
    const char *by, *comment;
    if (opt_string(req, body, "by", &by) && opt_string(req, body, "comment", &comment)) {
        int rc = te_engine_alerts_ack(A, id, by ? by : "api", comment, on_action, req);
        if (rc == TE_ENOTFOUND)
            te_http_respond_error(req, 404, NULL, "no active alert with id \"%s\" (only pending "
                                  "or firing alerts can be acknowledged)", id);
        else if (rc < 0)
            on_action(req, rc, NULL, NULL);
    }
    cJSON_Delete(body);
}

static int parse_time_item(const cJSON *v, int64_t *out, te_err_t *err)
{
    if (cJSON_IsNumber(v)) {
        *out = (int64_t)(v->valuedouble * 1e9);
        return 0;
    }
    if (cJSON_IsString(v))
        return te_time_parse(v->valuestring, out, err);
    return te_err_set(err, TE_EINVAL, "expected RFC 3339 text or Unix seconds");
}

/* POST /v1/silences */
void te_api_silences_post(te_engine_t *e, te_http_req_t *req)
{
    te_engine_alerts_t *A = alerts_of(e, req);
    cJSON *body = A ? body_object(req, false) : NULL;
    if (!body)
        return;
    te_silence_t s;
    memset(&s, 0, sizeof(s));
    te_err_t err = {0};
    int64_t now = te_time_now_ns();
    const char *comment, *by, *by2, *dur;
    const cJSON *m = cJSON_GetObjectItem(body, "matchers");
    if (!m)
        m = cJSON_GetObjectItem(body, "match");
    if (!opt_string(req, body, "comment", &comment) || !opt_string(req, body, "by", &by) ||
        !opt_string(req, body, "created_by", &by2) || !opt_string(req, body, "for", &dur))
        goto out;
    if (te_matchers_from_cjson(m, &s.m, &s.nm, &err) < 0) {
        te_http_respond_error(req, 400, NULL, "%s", m ? err.msg : "\"matchers\" is required");
        goto out;
    }
    s.starts_ns = now;
    const cJSON *starts = cJSON_GetObjectItem(body, "starts_at");
    if (starts && parse_time_item(starts, &s.starts_ns, &err) < 0) {
        te_http_respond_error(req, 400, NULL, "bad \"starts_at\": %s", err.msg);
        goto out;
    }
    const cJSON *until = cJSON_GetObjectItem(body, "until");
    if (!until)
        until = cJSON_GetObjectItem(body, "ends_at");
    if (until) {
        if (parse_time_item(until, &s.ends_ns, &err) < 0) {
            te_http_respond_error(req, 400, NULL, "bad \"until\": %s", err.msg);
            goto out;
        }
    } else if (dur) {
        int64_t d = 0;
        if (te_duration_parse(dur, &d, &err) < 0 || d <= 0) {
            te_http_respond_error(req, 400, NULL, "bad \"for\": a positive duration such as "
                                  "\"2h\", got \"%s\"", dur);
            goto out;
        }
        s.ends_ns = s.starts_ns + d;
    } else {
        te_http_respond_error(req, 400, NULL, "a silence needs \"until\" (RFC 3339 or Unix "
                              "seconds) or \"for\" (a duration such as \"2h\")");
        goto out;
    }
    if (s.ends_ns <= now || s.ends_ns <= s.starts_ns) {
        te_http_respond_error(req, 400, NULL, "\"until\" must be in the future and after "
                              "\"starts_at\"");
        goto out;
    }
    uint64_t rng = (uint64_t)now ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)req;
    te_alert_new_id(&rng, s.id);
    s.created_ns = now;
    s.comment = comment ? strdup(comment) : NULL;
    s.created_by = strdup(by ? by : by2 ? by2 : "api");
    int rc = te_engine_alerts_silence(A, &s, on_action, req);
    if (rc < 0)
        on_action(req, rc, NULL, NULL);
out:
    te_silence_clear(&s);
    cJSON_Delete(body);
}

/* DELETE /v1/silences/{id} */
void te_api_silence_delete(te_engine_t *e, te_http_req_t *req)
{
    const char *id = req->path + strlen("/v1/silences/");
    size_t n = strlen(id);
    if (n && id[n - 1] == '/')
        n--;
    if (n == 0 || n > TE_ALERT_ID_LEN || memchr(id, '/', n)) {
        te_http_respond_error(req, 404, NULL, "no silence \"%.*s\"", (int)n, id);
        return;
    }
    char buf[TE_ALERT_ID_LEN + 1];
    memcpy(buf, id, n);
    buf[n] = '\0';
    te_engine_alerts_t *A = alerts_of(e, req);
    if (!A)
        return;
    const char *by = te_http_param(req, "by");
    int rc = te_engine_alerts_unsilence(A, buf, by ? by : "api", on_action, req);
    if (rc < 0)
        on_action(req, rc, NULL, NULL);
}

/* GET /v1/silences?state=active|all */
typedef struct sil_job {
    uv_work_t work;
    te_engine_t *e;
    te_http_req_t *req;
    bool all;
    int64_t now;
    cJSON *arr;
    te_err_t err;
    char *out;
} sil_job_t;

static int add_one(void *ud, const te_silence_t *s)
{
    sil_job_t *j = ud;
    cJSON *o = te_silence_to_cjson(s, j->now);
    if (!o)
        return TE_ENOMEM;
    cJSON_AddItemToArray(j->arr, o);
    return 0;
}

static void sil_work(uv_work_t *w)
{
    sil_job_t *j = w->data;
    te_store_t *st = NULL;
    te_store_opts_t so = {.path = j->e->cfg->db_path, .readonly = true};
    if (te_store_open(&so, &st, &j->err) < 0)
        return;
    cJSON *root = cJSON_CreateObject();
    j->arr = root ? cJSON_AddArrayToObject(root, "silences") : NULL;
    if (j->arr && te_store_silences_list(st, j->now, j->all, add_one, j, &j->err) == 0)
        j->out = cJSON_PrintUnformatted(root);
    else if (!j->arr)
        te_err_set(&j->err, TE_ENOMEM, "out of memory");
    cJSON_Delete(root);
    te_store_close(st);
}

static void sil_after(uv_work_t *w, int status)
{
    sil_job_t *j = w->data;
    (void)status;
    if (j->out)
        te_http_respond_take(j->req, 200, NULL, NULL, j->out, strlen(j->out));
    else
        te_http_respond_error(j->req, 500, NULL, "%s", j->err.msg[0] ? j->err.msg : "failed");
    free(j);
}

void te_api_silences_get(te_engine_t *e, te_http_req_t *req)
{
    const char *state = te_http_param(req, "state");
    if (state && state[0] && strcmp(state, "active") != 0 && strcmp(state, "all") != 0) {
        te_http_respond_error(req, 400, NULL, "bad \"state\" \"%s\": active (default) or all",
                              state);
        return;
    }
    sil_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        te_http_respond_error(req, 500, NULL, "out of memory");
        return;
    }
    j->e = e;
    j->req = req;
    j->all = state && strcmp(state, "all") == 0;
    j->now = te_time_now_ns();
    j->work.data = j;
    if (uv_queue_work(&e->loop, &j->work, sil_work, sil_after) < 0) {
        free(j);
        te_http_respond_error(req, 500, NULL, "cannot start the listing");
    }
}
