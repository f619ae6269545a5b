/* notify.c - notifier factory. THREAD: loop thread. */
#include <stdlib.h>
#include <string.h>
#include "alerts/notify.h"

te_notifier_t *te_notifier_new(uv_loop_t *loop, const te_config_notifier_t *cfg,
                               te_err_t *err)
{
    if (!cfg || !cfg->name || !cfg->type) {
        te_err_set(err, TE_ECONFIG, "notifier: missing name or type");
        return NULL;
    }
    if (strcmp(cfg->type, "file") == 0)
        return te_notifier_file_new(loop, cfg->name, cfg->json, err);
    if (strcmp(cfg->type, "exec") == 0)
        return te_notifier_exec_new(loop, cfg->name, cfg->json, err);
    if (strcmp(cfg->type, "email") == 0)
        return te_notifier_email_new(loop, cfg->name, cfg->json, err);
    if (strcmp(cfg->type, "webhook") == 0 || strcmp(cfg->type, "slack") == 0)
        return te_notifier_webhook_new(loop, cfg->name, cfg->json,
                                       strcmp(cfg->type, "slack") == 0, err);
    te_err_set(err, TE_ECONFIG, "notifier \"%s\": type \"%s\" is not supported yet",
               cfg->name, cfg->type);
    return NULL;
}

void te_notifier_free(te_notifier_t *n)
{
    if (n && n->free) n->free(n);
}
