/*
 * alerts_ack.c - `alerts ack`, `alerts silence`, `alerts unsilence` and
 * `alerts silences` (SPEC section 4).
 *
 * THREAD: main.
 *
 * These write the database directly, on a read-write store (SQLite's busy
 * timeout waits for a running engine's writer), and journal the action in
 * the same transaction; a running engine applies the journal within about
 * a second (engine_alerts.h). So they work the same whether or not serve
 * runs, and an ack made while the engine is down holds after it starts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../alerts/silence.h"
#include "../config/config.h"
#include "../core/time.h"
#include "../store/alerts_life.h"
#include "../store/store.h"
#include "alerts_tools.h"

#define CMD "alerts"

static const char *who(const te_cli_args_t *a)
{
    const char *by = te_cli_get(a, "by");
    if (by && by[0])
        return by;
    const char *user = getenv("USER");
    return user && user[0] ? user : "cli";
}

/* Loads the config and opens the database read-write. */
static int open_rw(const te_cli_args_t *a, te_config_t **cfg, te_store_t **st)
{
    int rc = te_cli_load_config(CMD, a, cfg);
    if (rc != 0)
        return rc;
    struct stat sb;
    if (stat((*cfg)->db_path, &sb) != 0)
        return te_cli_fail(CMD, "no database at %s (run '%s serve' first, or pass --data DIR)",
                           (*cfg)->db_path, TE_CLI_PROG);
    te_store_opts_t o = {.path = (*cfg)->db_path};
    te_err_t err = {0};
    if (te_store_open(&o, st, &err) < 0)
        return te_cli_fail(CMD, "%s", err.msg);
    return 0;
}

static int only_words(const te_cli_args_t *a, size_t want, const char *usage)
{
    if (a->npos < want)
        return te_cli_usage_error(CMD, "missing argument: %s", usage);
    if (a->npos > want)
        return te_cli_usage_error(CMD, "unexpected argument \"%s\" (%s)", a->pos[want], usage);
    return 0;
}

static int print_json(const cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    if (!text)
        return te_cli_fail(CMD, "out of memory");
    printf("%s\n", text);
    free(text);
    return TE_CLI_OK;
}

int te_cli_alerts_ack(const te_cli_args_t *a)
{
    int rc = only_words(a, 2, "alerts ack ID [--by WHO] [--comment TEXT]");
    if (rc)
        return rc;
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    if ((rc = open_rw(a, &cfg, &st)) == 0) {
        te_err_t err = {0};
        const char *id = a->pos[1];
        if (te_store_alert_ack(st, id, who(a), te_cli_get(a, "comment"), te_time_now_ns(),
                               &err) < 0)
            rc = te_cli_fail(CMD, "%s", err.msg);
        else
            printf("acknowledged %s by %s (repeats stop until it resolves)\n", id, who(a));
    }
    te_store_close(st);
    te_config_free(cfg);
    return rc;
}

static uint64_t seed(void)
{
    uint64_t s = (uint64_t)te_time_now_ns() ^ ((uint64_t)getpid() << 32);
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        uint64_t r;
        if (fread(&r, sizeof(r), 1, f) == 1)
            s ^= r;
        fclose(f);
    }
    return s;
}

int te_cli_alerts_silence(const te_cli_args_t *a)
{
    int rc = only_words(a, 1, "alerts silence --match TAG=VAL... --for D [--comment C]");
    if (rc)
        return rc;
    const char *const *match = NULL;
    size_t nm = te_cli_list(a, "match", &match);
    const char *dur = te_cli_get(a, "for");
    if (nm == 0)
        return te_cli_usage_error(CMD, "silence needs at least one --match TAG=VAL (e.g. "
                                       "--match provider=openai, or --match rule=NAME)");
    if (!dur)
        return te_cli_usage_error(CMD, "silence needs --for D (e.g. --for 2h)");
    te_err_t err = {0};
    int64_t for_ns = 0;
    if (te_duration_parse(dur, &for_ns, &err) < 0 || for_ns <= 0)
        return te_cli_usage_error(CMD, "--for must be a positive duration such as 30m or 2h, "
                                       "got \"%s\"", dur);
    te_silence_t s;
    memset(&s, 0, sizeof(s));
    s.m = calloc(nm, sizeof(*s.m));
    if (!s.m)
        return te_cli_fail(CMD, "out of memory");
    for (size_t i = 0; i < nm; i++) {
        if (te_matcher_parse(match[i], &s.m[i], &err) < 0) {
            te_silence_clear(&s);
            return te_cli_usage_error(CMD, "--match: %s", err.msg);
        }
        s.nm++;
    }
    uint64_t rng = seed();
    te_alert_new_id(&rng, s.id);
    s.created_ns = s.starts_ns = te_time_now_ns();
    s.ends_ns = s.starts_ns + for_ns;
    const char *comment = te_cli_get(a, "comment");
    s.comment = comment ? strdup(comment) : NULL;
    s.created_by = strdup(who(a));
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    if ((rc = open_rw(a, &cfg, &st)) == 0) {
        if (te_store_silence_add(st, &s, &err) < 0) {
            rc = te_cli_fail(CMD, "%s", err.msg);
        } else {
            char until[40];
            te_time_format_rfc3339(s.ends_ns, until, sizeof(until));
            printf("%s\n", s.id);
            fprintf(stderr, "silence %s active until %s ('%s alerts unsilence %s' ends it)\n",
                    s.id, until, TE_CLI_PROG, s.id);
        }
    }
    te_silence_clear(&s);
    te_store_close(st);
    te_config_free(cfg);
    return rc;
}

int te_cli_alerts_unsilence(const te_cli_args_t *a)
{
    int rc = only_words(a, 2, "alerts unsilence ID");
    if (rc)
        return rc;
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    if ((rc = open_rw(a, &cfg, &st)) == 0) {
        te_err_t err = {0};
        if (te_store_silence_expire(st, a->pos[1], who(a), te_time_now_ns(), &err) < 0)
            rc = te_cli_fail(CMD, "%s", err.msg);
        else
            printf("silence %s ended\n", a->pos[1]);
    }
    te_store_close(st);
    te_config_free(cfg);
    return rc;
}

typedef struct sil_list {
    cJSON *arr;
    int64_t now;
} sil_list_t;

static int add_silence(void *ud, const te_silence_t *s)
{
    sil_list_t *l = ud;
    cJSON *o = te_silence_to_cjson(s, l->now);
    if (!o)
        return TE_ENOMEM;
    cJSON_AddItemToArray(l->arr, o);
    return 0;
}

int te_cli_alerts_silences(const te_cli_args_t *a)
{
    int rc = only_words(a, 1, "alerts silences [--state all] [--format table|json]");
    if (rc)
        return rc;
    te_cli_format_t format;
    te_err_t err = {0};
    if (te_cli_parse_format(te_cli_get(a, "format"), &format, &err) < 0 ||
        format == TE_CLI_FMT_CSV)
        return te_cli_usage_error(CMD, "--format must be table or json");
    const char *state = te_cli_get(a, "state");
    bool all = state && strcmp(state, "all") == 0;
    if (state && !all && strcmp(state, "active") != 0)
        return te_cli_usage_error(CMD, "silences: --state must be active (default) or all");
    te_config_t *cfg = NULL;
    te_store_t *st = NULL;
    cJSON *root = cJSON_CreateObject();
    sil_list_t l = {.arr = root ? cJSON_AddArrayToObject(root, "silences") : NULL,
                    .now = te_time_now_ns()};
    if (!l.arr) {
        cJSON_Delete(root);
        return te_cli_fail(CMD, "out of memory");
    }
    if ((rc = te_cli_load_config(CMD, a, &cfg)) == 0 &&
        (rc = te_cli_open_store_ro(CMD, cfg, &st)) == 0) {
        if (te_store_silences_list(st, l.now, all, add_silence, &l, &err) < 0) {
            rc = te_cli_fail(CMD, "%s", err.msg);
        } else if (format == TE_CLI_FMT_JSON) {
            rc = print_json(root);
        } else {
            printf("%-16s  %-8s  %-24s  %-40s  %s\n", "id", "state", "ends_at", "matchers",
                   "comment");
            const cJSON *o;
            cJSON_ArrayForEach(o, l.arr)
            {
                char m[256] = "";
                size_t n = 0;
                const cJSON *x;
                cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, "matchers"))
                {
                    int k = snprintf(m + n, sizeof(m) - n, "%s%s%s%s", n ? " " : "",
                                     cJSON_GetStringValue(cJSON_GetObjectItem(x, "name")),
                                     cJSON_GetStringValue(cJSON_GetObjectItem(x, "op")),
                                     cJSON_GetStringValue(cJSON_GetObjectItem(x, "value")));
                    if (k < 0 || (size_t)k >= sizeof(m) - n)
                        break;
                    n += (size_t)k;
                }
                const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(o, "comment"));
                printf("%-16s  %-8s  %-24s  %-40s  %s\n",
                       cJSON_GetStringValue(cJSON_GetObjectItem(o, "id")),
                       cJSON_GetStringValue(cJSON_GetObjectItem(o, "state")),
                       cJSON_GetStringValue(cJSON_GetObjectItem(o, "ends_at")), m, c ? c : "");
            }
        }
    }
    cJSON_Delete(root);
    te_store_close(st);
    te_config_free(cfg);
    return rc;
}
