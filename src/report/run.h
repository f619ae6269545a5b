/*
 * run.h - finding report templates and running one (CLI `report`,
 * GET /v1/reports/{name}, scheduled reports).
 *
 * THREAD: the caller's (a CLI main thread or a pool worker); each run
 * makes its own sandboxed lua_State (script/vm.c) and uses the read-only
 * store it is given, so runs on different threads share nothing.
 *
 * Templates are the *.lua files (not *_test.lua) of <scripts dir>/reports,
 * read from disk on every call: an edited template applies to the next
 * run without a restart. A file declares reports with te.report{...}
 * (script/bind_report.h); any file may declare any name, but the file
 * called NAME.lua is tried first.
 */
#ifndef TE_REPORT_RUN_H
#define TE_REPORT_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "report/report.h"

struct te_store;

typedef struct te_report_info {
    char *name, *title, *description, *schedule; /* schedule NULL when none */
    char **notify;             /* notifier names for scheduled runs (te.report notify) */
    size_t nnotify;
    char *file;
    int line;
} te_report_info_t;

typedef struct te_report_catalog {
    te_report_info_t *items;   /* sorted by name, unique names */
    size_t n;
    char **errors;             /* "file:line: message" per template that failed to load */
    size_t nerrors;
} te_report_catalog_t;

/* Loads every template of scripts_dir/reports (NULL: "lua") to list the
 * reports they declare. A template that fails to load is listed in
 * errors, not fatal; a missing folder gives an empty catalog. Returns 0 or
 * TE_ENOMEM / TE_EIO (then *out is empty). Free with
 * te_report_catalog_free. */
int te_report_catalog_load(const char *scripts_dir, te_report_catalog_t *out, te_err_t *err);

/* Frees what te_report_catalog_load filled. Safe on a zeroed catalog. */
void te_report_catalog_free(te_report_catalog_t *c);

typedef struct te_report_param {
    const char *key, *value;
} te_report_param_t;

typedef struct te_report_run_opts {
    const char *scripts_dir;        /* NULL: "lua" */
    const char *name;               /* required */
    struct te_store *st;            /* read-only store, borrowed; required */
    int64_t now_ns;                 /* reference instant; 0: the wall clock */
    const char *since, *until;      /* NULL: params.since (else "7d") / params.until (else now) */
    const te_report_param_t *params;/* --param K=V; K must be a declared param */
    size_t nparams;
    te_report_format_t format;
    int64_t max_ns;                 /* wall-time budget of render(); 0: 120 s */
    void (*progress)(void *ud, const char *what); /* optional, before each store read */
    void *progress_ud;
    int64_t *since_ns_out, *until_ns_out; /* optional: the range the run used */
} te_report_run_opts_t;

/* Runs report o->name and renders it. On success *out is the malloc'd
 * text (caller frees) of *len bytes. Errors, with err saying what and how
 * to fix it:
 *   TE_ENOTFOUND  no such report ('unknown report "ovrview" (did you mean
 *                 "overview"?); available: alerts, overview, ...')
 *   TE_EINVAL     a bad since/until or parameter ('unknown parameter
 *                 "tpo" (did you mean "top"?)')
 *   TE_ESCRIPT    the template failed to load or raised in render
 *                 ("lua/reports/x.lua:12: attempt to index a nil value")
 *   TE_ENOMEM, TE_EIO. */
int te_report_run(const te_report_run_opts_t *o, char **out, size_t *len, te_err_t *err);

/* Writes "NAME-YYYYmmddTHHMM.EXT" for instant ns (UTC) into buf.
 * Returns the length (truncated to cap - 1). */
size_t te_report_file_name(const char *name, int64_t ns, te_report_format_t f, char *buf,
                           size_t cap);

#endif
