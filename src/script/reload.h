/*
 * reload.h - the script set of a running engine: every .lua file in DIR/rules
 * (not *_test.lua) loaded into one ruleset, and hot reload (SPEC 6.7).
 *
 * THREAD: loop, except that script files are read and compiled on
 * libuv's pool (te_script_load in a fresh state never touches loop state);
 * the ruleset changes only in the after-work callback, on the loop, between
 * two ticks.
 *
 * The one idea: a reload never makes things worse. Each changed file is
 * compiled in a fresh sandbox; only when it loads is the running version
 * swapped (te_ruleset_replace: unchanged rules keep their windows and
 * alerts). A file that fails keeps its previous version running and shows
 * status "error" with "file:line: message" until it loads again.
 *
 * Triggers: uv_fs_event on DIR/rules and DIR/lib (debounced 30 ms), a
 * 500 ms periodic stat of the same folders (fs events are lost on some
 * file systems and editors that replace folders), and te_reload_request
 * (SIGHUP, POST /v1/rules/reload), which reloads every file. A change in
 * DIR/lib reloads every rule file (any of them may require it).
 */
#ifndef TE_SCRIPT_RELOAD_H
#define TE_SCRIPT_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "script/script.h"

struct te_ruleset;
typedef struct te_reload te_reload_t;

/* One rule file as the set knows it. Strings are owned by the set. */
typedef struct te_reload_file {
    char *path;               /* DIR/rules/x.lua */
    te_script_t *live;        /* the running version, NULL when none ever loaded */
    bool failed;              /* the last attempt failed (error below) */
    char error[TE_ERR_MSG_MAX]; /* "DIR/rules/x.lua:12: message" when failed */
    uint64_t hash;            /* content hash of the last attempt */
    int64_t mtime_ns;         /* of the last attempt, for the periodic stat */
    int64_t size;
} te_reload_file_t;

typedef struct te_reload_opts {
    const char *scripts_dir;          /* "lua": rules in DIR/rules, libs in DIR/lib */
    const te_script_limits_t *limits; /* NULL: script.h defaults */
    bool watch;                       /* false: load once, reload only on request */
    int debounce_ms;                  /* 0: 30 */
    int poll_ms;                      /* 0: 500; < 0: no periodic stat */
    bool no_fs_events;                /* periodic stat only (tests; odd file systems) */
    /* Called on the loop after every reload that changed the ruleset (and
     * after the first load), e.g. to re-arm the tick timer. May be NULL. */
    void (*on_change)(void *ud);
    void *ud;
} te_reload_opts_t;

/* Loads every rule file synchronously (start-up may block) into rs, logs
 * each failure, and starts watching when opts->watch. A missing rules
 * folder is not an error (nothing is loaded; it is picked up once created
 * when DIR exists). Returns 0 with *out set, or TE_ENOMEM / TE_EIO (a
 * watcher cannot start) with err. Files that fail to load are not errors
 * here: they show in te_reload_files. */
int te_reload_start(uv_loop_t *loop, struct te_ruleset *rs, const te_reload_opts_t *opts,
                    te_reload_t **out, te_err_t *err);

/* Called on the loop once a requested reload has been applied. */
typedef void (*te_reload_done_cb)(void *ud);

/* Reloads every file now (SIGHUP, POST /v1/rules/reload); cb (may be
 * NULL) runs once the reload is applied, or at te_reload_close. Requests
 * that arrive while a reload runs are served by one more reload after it.
 * Returns 0 or TE_ENOMEM (then cb is not called). */
int te_reload_request(te_reload_t *r, te_reload_done_cb cb, void *ud);

/* The files in path order and their count (borrowed, valid until the next
 * loop iteration that applies a reload). */
const te_reload_file_t *te_reload_files(const te_reload_t *r, size_t *n);

/* The rules folder (DIR/rules) and the lib folder (DIR/lib). */
const char *te_reload_rules_dir(const te_reload_t *r);
const char *te_reload_lib_dir(const te_reload_t *r);

/* Number of reloads applied (initial load included) and of failed loads. */
uint64_t te_reload_count(const te_reload_t *r);
uint64_t te_reload_failures(const te_reload_t *r);

/* Stops watching and closes the handles (call before the loop's final
 * run); requests still waiting get their cb. A reload in flight on the
 * pool finishes, its result is discarded. Scripts stay alive for
 * te_reload_free. NULL is a no-op. */
void te_reload_close(te_reload_t *r);

/* Frees the set and every script, after te_reload_close and after the
 * loop ran its close callbacks. The ruleset must not hold their rules any
 * more (free it first, or te_ruleset_remove each). NULL is a no-op. */
void te_reload_free(te_reload_t *r);

/* Lists DIR's *.lua files that are not *_test.lua, sorted, as malloc'd
 * paths "DIR/name" (te_reload_list_free). A missing folder gives 0 files.
 * Returns the count or TE_EIO / TE_ENOMEM with err. Used by the CLI too. */
int te_reload_list(const char *dir, char ***out, te_err_t *err);
void te_reload_list_free(char **paths, int n);

#endif
