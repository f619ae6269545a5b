/*
 * group_json.c - the payload of a notification group (see notify.h).
 *
 * THREAD: any.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alerts/notify.h"

char *te_alert_group_json(const te_alert_t *const *a, const char *const *status, size_t count)
{
    bool firing = false;
    for (size_t i = 0; i < count; i++)
        firing |= strcmp(status[i], "resolved") != 0;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = NULL;
    if (!root || !cJSON_AddNumberToObject(root, "version", 1) ||
        !cJSON_AddStringToObject(root, "status", firing ? "firing" : "resolved") ||
        !cJSON_AddNumberToObject(root, "count", (double)count) ||
        !(arr = cJSON_AddArrayToObject(root, "alerts"))) {
        cJSON_Delete(root);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        char *one = te_alert_to_json(a[i], status[i]);
        cJSON *o = one ? cJSON_Parse(one) : NULL;
        free(one);
        if (!o) {
            cJSON_Delete(root);
            return NULL;
        }
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}
