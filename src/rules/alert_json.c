/*
 * alert_json.c - an alert back from its SPEC section 7 payload (see
 * te_alert_from_json in alert.h): the outbox keeps payloads, and a
 * restart re-sends them through notifiers that take a te_alert_t.
 *
 * THREAD: any.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/time.h"
#include "rules/alert.h"

static int kv(const cJSON *o, char ***keys, char ***values, size_t *n)
{
    size_t cnt = (size_t)cJSON_GetArraySize(o);
    *n = 0;
    if (!cJSON_IsObject(o) || cnt == 0)
        return 0;
    char **k = calloc(cnt, sizeof(char *)), **v = calloc(cnt, sizeof(char *));
    if (!k || !v) {
        free(k);
        free(v);
        return TE_ENOMEM;
    }
    const cJSON *it;
    size_t i = 0;
    cJSON_ArrayForEach(it, o)
    {
        k[i] = it->string;
        v[i] = cJSON_IsString(it) ? it->valuestring : "";
        i++;
    }
    *keys = k;
    *values = v;
    *n = i;
    return 0;
}

static int64_t time_of(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    int64_t ns = 0;
    if (s && te_time_parse_rfc3339(s, strlen(s), &ns, NULL) < 0)
        ns = 0;
    return ns;
}

int te_alert_from_json(const char *json, te_alert_t *out, char *status, size_t status_cap)
{
    te_alert_init(out);
    cJSON *root = cJSON_Parse(json ? json : "");
    const cJSON *al = cJSON_GetObjectItem(root, "alert");
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(al, "id"));
    const char *rule = cJSON_GetStringValue(cJSON_GetObjectItem(al, "rule"));
    const char *fp = cJSON_GetStringValue(cJSON_GetObjectItem(al, "fingerprint"));
    const char *sev = cJSON_GetStringValue(cJSON_GetObjectItem(al, "severity"));
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(root, "status"));
    if (!cJSON_IsObject(al) || !id || strlen(id) != TE_ALERT_ID_LEN || !rule || !fp ||
        strlen(fp) != TE_ALERT_ID_LEN) {
        cJSON_Delete(root);
        return TE_EPARSE;
    }
    char **gk = NULL, **gv = NULL, **lk = NULL, **lv = NULL;
    size_t ng = 0, nl = 0;
    int rc = kv(cJSON_GetObjectItem(al, "group"), &gk, &gv, &ng);
    if (!rc)
        rc = kv(cJSON_GetObjectItem(al, "labels"), &lk, &lv, &nl);
    if (!rc)
        rc = te_alert_set_identity(out, rule, (const char *const *)gk, (const char *const *)gv,
                                   ng);
    if (!rc)
        rc = te_alert_set_labels(out, lk, lv, nl);
    const char *summary = cJSON_GetStringValue(cJSON_GetObjectItem(al, "summary"));
    if (!rc && summary)
        rc = te_alert_set_summary(out, summary);
    free(gk);
    free(gv);
    free(lk);
    free(lv);
    if (rc) {
        te_alert_clear(out);
        cJSON_Delete(root);
        return rc;
    }
    memcpy(out->id, id, TE_ALERT_ID_LEN + 1);
    memcpy(out->fingerprint, fp, TE_ALERT_ID_LEN + 1);
    if (!sev || te_severity_parse(sev, &out->severity) != 0)
        out->severity = TE_SEV_WARNING;
    const cJSON *v = cJSON_GetObjectItem(al, "value");
    out->has_value = cJSON_IsNumber(v);
    out->value = out->has_value ? v->valuedouble : 0;
    out->starts_at_ns = out->active_at_ns = time_of(al, "starts_at");
    out->ends_at_ns = time_of(al, "ends_at");
    bool resolved = st && strcmp(st, "resolved") == 0;
    out->state = resolved ? TE_ALERT_RESOLVED : TE_ALERT_FIRING;
    if (status && status_cap)
        snprintf(status, status_cap, "%s", st ? st : "firing");
    cJSON_Delete(root);
    return 0;
}
