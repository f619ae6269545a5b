/*
 * reload.c - the engine's script set and hot reload (see reload.h).
 *
 * THREAD: loop; job_work runs on libuv's pool and touches only its job.
 *
 * A reload is one job: list DIR/rules, find what changed (stat, then the
 * content hash), compile each changed file with te_script_load in a fresh
 * state, and hand the results back to the loop, which swaps them into the
 * ruleset in job_after. One job at a time; triggers that arrive meanwhile
 * fold into one follow-up job. Three strengths of job:
 *   POLL   stat only: a file whose mtime and size are unchanged is skipped
 *   EVENT  read and hash every file (an fs event names a change; trust it)
 *   FORCE  load every file (SIGHUP, POST /v1/rules/reload, a lib change)
 */
#define _DEFAULT_SOURCE
#include "script/reload.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/time.h"
#include "rules/eval.h"
#include "rules/rule.h"

typedef enum { JOB_POLL = 0, JOB_EVENT, JOB_FORCE } job_mode_t;

typedef enum { RES_SAME = 0, RES_LOADED, RES_FAILED, RES_DELETED } res_kind_t;

typedef struct job_res {
    char *path;
    res_kind_t kind;
    te_script_t *script;       /* RES_LOADED */
    char error[TE_ERR_MSG_MAX]; /* RES_FAILED */
    uint64_t hash;
    int64_t mtime_ns, size;
} job_res_t;

typedef struct known {
    const char *path;          /* borrowed from the file entry (stable during the job) */
    uint64_t hash;
    int64_t mtime_ns, size;
    bool failed;
} known_t;

typedef struct waiter {
    te_reload_done_cb cb;
    void *ud;
    struct waiter *next;
} waiter_t;

typedef struct job {
    uv_work_t work;
    te_reload_t *r;
    job_mode_t mode;
    known_t *known;
    size_t nknown;
    uint64_t lib_sig_in, lib_sig_out;
    job_res_t *res;
    size_t nres;
    int list_rc;
    char list_err[TE_ERR_MSG_MAX];
    waiter_t *waiters;         /* answered once this job is applied */
} job_t;

struct te_reload {
    uv_loop_t *loop;
    te_ruleset_t *rs;
    char *rules_dir, *lib_dir;
    te_script_limits_t limits;
    bool watch, no_fs_events;
    int debounce_ms, poll_ms;
    void (*on_change)(void *ud);
    void *ud;
    te_reload_file_t *files;
    size_t nfiles;
    uint64_t lib_sig;
    uv_fs_event_t ev_rules, ev_lib;
    bool ev_rules_on, ev_lib_on;
    uv_timer_t debounce, poll;
    bool timers_on;
    bool closing;
    job_t *running;
    bool queued;               /* a follow-up job is wanted */
    job_mode_t queued_mode;
    waiter_t *waiters;         /* for the follow-up job */
    uint64_t reloads, failures;
};

static void start_job(te_reload_t *r, job_mode_t mode);

/* ---- listing and hashing (any thread) ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_rule_file(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.' || n < 5 || strcmp(name + n - 4, ".lua") != 0)
        return false;
    return !(n >= 9 && strcmp(name + n - 9, "_test.lua") == 0);
}

int te_reload_list(const char *dir, char ***out, te_err_t *err)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return te_err_set(err, TE_EIO, "rules: cannot read folder %s: %s", dir, strerror(errno));
    }
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_rule_file(de->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, (size_t)cap * sizeof(*v));
            if (!nv)
                goto nomem;
            v = nv;
        }
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        if (!(v[n] = malloc(len)))
            goto nomem;
        snprintf(v[n++], len, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(v, (size_t)n, sizeof(*v), cmp_str);
    *out = v;
    return n;
nomem:
    closedir(d);
    te_reload_list_free(v, n);
    return te_err_set(err, TE_ENOMEM, "rules: out of memory listing %s", dir);
}

void te_reload_list_free(char **paths, int n)
{
    for (int i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

#define FNV_SEED UINT64_C(14695981039346656037)

static int64_t mtime_of(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * TE_NS_PER_SEC + st->st_mtim.tv_nsec;
}

/* Hash of a file's content; false when it cannot be read. */
static bool hash_file(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    uint64_t h = FNV_SEED;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        h = fnv1a(h, buf, n);
    bool ok = !ferror(f);
    fclose(f);
    *out = h;
    return ok;
}

/* Names, sizes and mtimes of DIR/lib's files (one level of subfolders):
 * any change there reloads every rule file. */
static uint64_t lib_signature(const char *dir, int depth)
{
    uint64_t h = FNV_SEED;
    DIR *d = opendir(dir);
    if (!d)
        return h;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0)
            continue;
        uint64_t e = fnv1a(FNV_SEED, de->d_name, strlen(de->d_name));
        if (S_ISDIR(st.st_mode)) {
            if (depth > 0)
                e ^= lib_signature(path, depth - 1);
        } else {
            int64_t m = mtime_of(&st), sz = (int64_t)st.st_size;
            e = fnv1a(e, &m, sizeof(m));
            e = fnv1a(e, &sz, sizeof(sz));
        }
        h ^= e * UINT64_C(0x9E3779B97F4A7C15); /* order-independent */
    }
    closedir(d);
    return h;
}

/* ---- the job (pool thread) ---- */

static const known_t *find_known(const job_t *j, const char *path)
{
    for (size_t i = 0; i < j->nknown; i++)
        if (strcmp(j->known[i].path, path) == 0)
            return &j->known[i];
    return NULL;
}

static void job_work(uv_work_t *w)
{
    job_t *j = w->data;
    te_reload_t *r = j->r;
    te_err_t err;
    char **paths = NULL;

    te_err_clear(&err);
    j->lib_sig_out = lib_signature(r->lib_dir, 1);
    if (j->lib_sig_out != j->lib_sig_in)
        j->mode = JOB_FORCE;
    int n = te_reload_list(r->rules_dir, &paths, &err);
    if (n < 0) {
        j->list_rc = n;
        snprintf(j->list_err, sizeof(j->list_err), "%s", err.msg);
        return;
    }
    j->res = calloc((size_t)n + j->nknown + 1, sizeof(*j->res));
    if (!j->res) {
        j->list_rc = TE_ENOMEM;
        snprintf(j->list_err, sizeof(j->list_err), "rules: out of memory reloading");
        te_reload_list_free(paths, n);
        return;
    }
    for (int i = 0; i < n; i++) {
        job_res_t *res = &j->res[j->nres++];
        const known_t *k = find_known(j, paths[i]);
        struct stat st;
        res->path = paths[i];
        paths[i] = NULL;
        if (stat(res->path, &st) != 0) { /* vanished since the listing */
            res->kind = k ? RES_DELETED : RES_SAME;
            continue;
        }
        res->mtime_ns = mtime_of(&st);
        res->size = (int64_t)st.st_size;
        if (k && j->mode == JOB_POLL && k->mtime_ns == res->mtime_ns && k->size == res->size) {
            res->kind = RES_SAME;
            res->hash = k->hash;
            continue;
        }
        if (!hash_file(res->path, &res->hash)) {
            res->kind = RES_SAME;
            res->hash = k ? k->hash : 0;
            continue;
        }
        if (k && j->mode != JOB_FORCE && k->hash == res->hash) {
            res->kind = RES_SAME;
            continue;
        }
        te_err_clear(&err);
        if (te_script_load(res->path, r->lib_dir, &r->limits, &res->script, &err) == 0) {
            res->kind = RES_LOADED;
        } else {
            res->kind = RES_FAILED;
            snprintf(res->error, sizeof(res->error), "%s",
                     err.msg[0] ? err.msg : te_strerror(err.code));
        }
    }
    free(paths);
    /* files gone from the folder */
    for (size_t i = 0; i < j->nknown; i++) {
        bool seen = false;
        for (size_t k = 0; k < j->nres && !seen; k++)
            seen = strcmp(j->res[k].path, j->known[i].path) == 0;
        if (seen)
            continue;
        job_res_t *res = &j->res[j->nres++];
        res->kind = RES_DELETED;
        res->path = strdup(j->known[i].path);
        if (!res->path)
            j->nres--;
    }
}

/* ---- applying results (loop) ---- */

static te_reload_file_t *find_file(te_reload_t *r, const char *path)
{
    for (size_t i = 0; i < r->nfiles; i++)
        if (strcmp(r->files[i].path, path) == 0)
            return &r->files[i];
    return NULL;
}

/* Finds or inserts (sorted by path) the entry of path; NULL on ENOMEM. */
static te_reload_file_t *get_file(te_reload_t *r, const char *path)
{
    te_reload_file_t *f = find_file(r, path);
    if (f)
        return f;
    te_reload_file_t *nf = realloc(r->files, (r->nfiles + 1) * sizeof(*nf));
    if (!nf)
        return NULL;
    r->files = nf;
    size_t at = 0;
    while (at < r->nfiles && strcmp(r->files[at].path, path) < 0)
        at++;
    memmove(&r->files[at + 1], &r->files[at], (r->nfiles - at) * sizeof(*nf));
    memset(&r->files[at], 0, sizeof(*nf));
    if (!(r->files[at].path = strdup(path))) {
        memmove(&r->files[at], &r->files[at + 1], (r->nfiles - at) * sizeof(*nf));
        return NULL;
    }
    r->nfiles++;
    return &r->files[at];
}

static void drop_file(te_reload_t *r, te_reload_file_t *f)
{
    size_t at = (size_t)(f - r->files);
    free(f->path);
    memmove(&r->files[at], &r->files[at + 1], (r->nfiles - at - 1) * sizeof(*f));
    r->nfiles--;
}

static void set_failed(te_reload_t *r, te_reload_file_t *f, const char *msg)
{
    bool same = f->failed && strcmp(f->error, msg) == 0;
    f->failed = true;
    snprintf(f->error, sizeof(f->error), "%s", msg);
    r->failures++;
    if (!same)
        te_log(TE_LOG_ERROR, "rules", "%s%s", msg,
               f->live ? " (the previous version keeps running)" : "");
}

/* Swaps res's new script in; returns 0, or the ruleset's error code
 * (res->script is then still owned by res, err says why). */
static int swap_in(te_reload_t *r, job_res_t *res, int64_t now, te_err_t *err)
{
    te_reload_file_t *f = get_file(r, res->path);
    if (!f)
        return te_err_set(err, TE_ENOMEM, "%s: out of memory", res->path);
    f->hash = res->hash;
    f->mtime_ns = res->mtime_ns;
    f->size = res->size;
    int rc = f->live ? te_ruleset_replace(r->rs, f->live, res->script, now, err)
                     : te_ruleset_add(r->rs, res->script, now, err);
    if (rc < 0)
        return rc;
    bool was = f->live != NULL;
    te_script_free(f->live);
    f->live = res->script;
    res->script = NULL;
    f->failed = false;
    f->error[0] = '\0';
    te_log(TE_LOG_INFO, "rules", "%s %s (%zu rules)", was ? "reloaded" : "loaded", f->path,
           f->live->ndefs);
    return 0;
}

static bool apply(te_reload_t *r, job_t *j)
{
    int64_t now = te_time_now_ns();
    bool changed = false;
    te_err_t err;

    r->lib_sig = j->lib_sig_out;
    if (j->list_rc < 0) {
        te_log(TE_LOG_ERROR, "rules", "%s", j->list_err);
        return false;
    }
    /* deletions first, so that a rule moved to another file is free */
    for (size_t i = 0; i < j->nres; i++) {
        job_res_t *res = &j->res[i];
        te_reload_file_t *f = find_file(r, res->path);
        if (res->kind != RES_DELETED || !f)
            continue;
        if (f->live) {
            te_ruleset_remove(r->rs, f->live, now);
            te_script_free(f->live);
            changed = true;
        }
        te_log(TE_LOG_INFO, "rules", "removed %s", f->path);
        drop_file(r, f);
    }
    /* two passes: a swap refused for a name another changed file gives up
     * (TE_EEXISTS) may succeed once that file is swapped */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < j->nres; i++) {
            job_res_t *res = &j->res[i];
            if (res->kind != RES_LOADED || !res->script)
                continue;
            te_err_clear(&err);
            int rc = swap_in(r, res, now, &err);
            if (rc == 0) {
                changed = true;
                continue;
            }
            if (pass == 0 && rc == TE_EEXISTS)
                continue;
            te_reload_file_t *f = get_file(r, res->path);
            if (f)
                set_failed(r, f, err.msg);
            te_script_free(res->script);
            res->script = NULL;
        }
    }
    for (size_t i = 0; i < j->nres; i++) {
        job_res_t *res = &j->res[i];
        te_reload_file_t *f;
        if (res->kind == RES_FAILED && (f = get_file(r, res->path)) != NULL) {
            f->hash = res->hash;
            f->mtime_ns = res->mtime_ns;
            f->size = res->size;
            set_failed(r, f, res->error);
            changed = true;
        } else if (res->kind == RES_SAME && (f = find_file(r, res->path)) != NULL) {
            f->mtime_ns = res->mtime_ns;
            f->size = res->size;
        }
    }
    return changed;
}

static void job_free(job_t *j)
{
    for (size_t i = 0; i < j->nres; i++) {
        te_script_free(j->res[i].script);
        free(j->res[i].path);
    }
    free(j->res);
    free(j->known);
    free(j);
}

static void call_waiters(waiter_t *w)
{
    while (w) {
        waiter_t *next = w->next;
        if (w->cb)
            w->cb(w->ud);
        free(w);
        w = next;
    }
}

static void try_watch(te_reload_t *r);

static void job_after(uv_work_t *w, int status)
{
    job_t *j = w->data;
    te_reload_t *r = j->r;
    (void)status;
    r->running = NULL;
    if (!r->closing) {
        bool forced = j->mode == JOB_FORCE;
        bool changed = apply(r, j);
        if (changed || forced)
            r->reloads++;
        if (r->watch)
            try_watch(r);
        if (changed && r->on_change)
            r->on_change(r->ud);
    }
    waiter_t *ws = j->waiters;
    job_free(j);
    call_waiters(ws);
    if (!r->closing && r->queued) {
        r->queued = false;
        start_job(r, r->queued_mode);
    }
}

static job_t *job_new(te_reload_t *r, job_mode_t mode)
{
    job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->r = r;
    j->mode = mode;
    j->work.data = j;
    j->lib_sig_in = r->lib_sig;
    j->known = calloc(r->nfiles + 1, sizeof(*j->known));
    if (!j->known) {
        free(j);
        return NULL;
    }
    for (size_t i = 0; i < r->nfiles; i++) {
        j->known[i].path = r->files[i].path;
        j->known[i].hash = r->files[i].hash;
        j->known[i].mtime_ns = r->files[i].mtime_ns;
        j->known[i].size = r->files[i].size;
        j->known[i].failed = r->files[i].failed;
    }
    j->nknown = r->nfiles;
    return j;
}

static void start_job(te_reload_t *r, job_mode_t mode)
{
    if (r->closing)
        return;
    if (r->running) {
        if (!r->queued || mode > r->queued_mode)
            r->queued_mode = mode;
        r->queued = true;
        return;
    }
    job_t *j = job_new(r, mode);
    if (!j) {
        te_log(TE_LOG_ERROR, "rules", "out of memory: reload skipped");
        return;
    }
    j->waiters = r->waiters;
    r->waiters = NULL;
    int rc = uv_queue_work(r->loop, &j->work, job_work, job_after);
    if (rc < 0) {
        te_log(TE_LOG_ERROR, "rules", "cannot start a reload: %s", uv_strerror(rc));
        r->waiters = j->waiters;
        j->waiters = NULL;
        job_free(j);
        return;
    }
    r->running = j;
}

/* ---- triggers ---- */

static void on_debounce(uv_timer_t *t)
{
    start_job(t->data, JOB_EVENT);
}

static void on_poll(uv_timer_t *t)
{
    te_reload_t *r = t->data;
    if (!r->running && !r->queued)
        start_job(r, JOB_POLL);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    te_reload_t *r = h->data;
    (void)filename;
    (void)events;
    if (status < 0) {
        te_log(TE_LOG_WARN, "rules", "watching %s failed: %s (periodic checks go on)",
               h == &r->ev_lib ? r->lib_dir : r->rules_dir, uv_strerror(status));
        uv_fs_event_stop(h);
        if (h == &r->ev_rules)
            r->ev_rules_on = false;
        else
            r->ev_lib_on = false;
        return;
    }
    /* editors write a file in several steps: wait for the burst to end */
    uv_timer_start(&r->debounce, on_debounce, (uint64_t)r->debounce_ms, 0);
}

/* Starts the folder watchers that are not running yet (a folder created
 * after start-up is watched from the next reload on). */
static void try_watch(te_reload_t *r)
{
    if (r->no_fs_events)
        return;
    if (!r->ev_rules_on &&
        uv_fs_event_start(&r->ev_rules, on_fs_event, r->rules_dir, 0) == 0)
        r->ev_rules_on = true;
    if (!r->ev_lib_on && uv_fs_event_start(&r->ev_lib, on_fs_event, r->lib_dir, 0) == 0)
        r->ev_lib_on = true;
}

int te_reload_request(te_reload_t *r, te_reload_done_cb cb, void *ud)
{
    waiter_t *w = calloc(1, sizeof(*w));
    if (!w)
        return TE_ENOMEM;
    w->cb = cb;
    w->ud = ud;
    if (r->closing) {
        call_waiters(w);
        return 0;
    }
    w->next = r->waiters;
    r->waiters = w;
    start_job(r, JOB_FORCE);
    return 0;
}

/* ---- life cycle ---- */

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

int te_reload_start(uv_loop_t *loop, te_ruleset_t *rs, const te_reload_opts_t *opts,
                    te_reload_t **out, te_err_t *err)
{
    te_reload_t *r = calloc(1, sizeof(*r));
    const char *dir = opts && opts->scripts_dir ? opts->scripts_dir : "lua";
    if (!r)
        return te_err_set(err, TE_ENOMEM, "rules: out of memory");
    r->loop = loop;
    r->rs = rs;
    r->rules_dir = join(dir, "rules");
    r->lib_dir = join(dir, "lib");
    if (!r->rules_dir || !r->lib_dir) {
        te_reload_free(r);
        return te_err_set(err, TE_ENOMEM, "rules: out of memory");
    }
    if (opts && opts->limits)
        r->limits = *opts->limits;
    r->watch = opts ? opts->watch : false;
    r->no_fs_events = opts ? opts->no_fs_events : false;
    r->debounce_ms = opts && opts->debounce_ms > 0 ? opts->debounce_ms : 30;
    r->poll_ms = opts && opts->poll_ms ? opts->poll_ms : 500;
    r->on_change = opts ? opts->on_change : NULL;
    r->ud = opts ? opts->ud : NULL;

    /* the first load, synchronously: rules are live before "ready" */
    job_t *j = job_new(r, JOB_FORCE);
    if (!j) {
        te_reload_free(r);
        return te_err_set(err, TE_ENOMEM, "rules: out of memory");
    }
    job_work(&j->work);
    apply(r, j);
    r->reloads++;
    job_free(j);

    uv_timer_init(loop, &r->debounce);
    uv_timer_init(loop, &r->poll);
    uv_fs_event_init(loop, &r->ev_rules);
    uv_fs_event_init(loop, &r->ev_lib);
    r->debounce.data = r->poll.data = r->ev_rules.data = r->ev_lib.data = r;
    r->timers_on = true;
    if (r->watch) {
        try_watch(r);
        if (r->poll_ms > 0) {
            uv_timer_start(&r->poll, on_poll, (uint64_t)r->poll_ms, (uint64_t)r->poll_ms);
            uv_unref((uv_handle_t *)&r->poll);
        }
    }
    size_t nrules = 0, nbad = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        nrules += r->files[i].live ? r->files[i].live->ndefs : 0;
        nbad += r->files[i].failed;
    }
    te_log(TE_LOG_INFO, "rules", "%zu rules from %zu files in %s (%zu failed)%s", nrules,
           r->nfiles, r->rules_dir, nbad, r->watch ? ", watching for changes" : "");
    if (r->on_change)
        r->on_change(r->ud);
    *out = r;
    return 0;
}

const te_reload_file_t *te_reload_files(const te_reload_t *r, size_t *n)
{
    *n = r->nfiles;
    return r->files;
}

const char *te_reload_rules_dir(const te_reload_t *r)
{
    return r->rules_dir;
}

const char *te_reload_lib_dir(const te_reload_t *r)
{
    return r->lib_dir;
}

uint64_t te_reload_count(const te_reload_t *r)
{
    return r->reloads;
}

uint64_t te_reload_failures(const te_reload_t *r)
{
    return r->failures;
}

static void close_h(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void te_reload_close(te_reload_t *r)
{
    if (!r || r->closing)
        return;
    r->closing = true;
    if (r->timers_on) {
        close_h((uv_handle_t *)&r->debounce);
        close_h((uv_handle_t *)&r->poll);
        close_h((uv_handle_t *)&r->ev_rules);
        close_h((uv_handle_t *)&r->ev_lib);
    }
    waiter_t *w = r->waiters;
    r->waiters = NULL;
    call_waiters(w);
}

void te_reload_free(te_reload_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nfiles; i++) {
        te_script_free(r->files[i].live);
        free(r->files[i].path);
    }
    free(r->files);
    free(r->rules_dir);
    free(r->lib_dir);
    free(r);
}
