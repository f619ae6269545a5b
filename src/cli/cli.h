/*
 * cli.h - the command line (SPEC section 4): dispatch, option parsing and
 * the helpers every command shares.
 *
 * THREAD: main (the CLI process's only thread, besides a writer it starts).
 *
 * The one idea: options may come before or after a command's words
 * (`db --data d stats` == `db stats --data d`), so each command parses its
 * whole argv at once against a table of the options it knows, plus the
 * three every command takes: --config FILE, --data DIR and --help/-h.
 * Exit codes: 0 ok, 1 runtime failure, 2 usage error. A usage error prints
 * "telemetry-engine CMD: <problem>" and "see 'telemetry-engine CMD --help'"
 * to stderr.
 */
#ifndef TE_CLI_CLI_H
#define TE_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/err.h"

#define TE_CLI_OK 0
#define TE_CLI_FAIL 1
#define TE_CLI_USAGE 2

#define TE_CLI_PROG "telemetry-engine"
#define TE_CLI_MAX_OPTS 24

typedef enum {
    TE_CLI_FLAG = 0, /* no value: --help */
    TE_CLI_VALUE,    /* one value, the last one given wins: --data DIR */
    TE_CLI_LIST      /* repeatable, every value kept: --where TAG=VAL */
} te_cli_opt_kind_t;

/* One option a command accepts. name is the long name without "--". */
typedef struct te_cli_opt {
    const char *name;
    char short_name; /* 0 when none */
    te_cli_opt_kind_t kind;
} te_cli_opt_t;

/* The parsed command line of one command. Fields are read-only for callers;
 * use the accessors below. */
typedef struct te_cli_args {
    const te_cli_opt_t *opts[TE_CLI_MAX_OPTS]; /* the command's options + common ones */
    size_t nopts;
    const char *value[TE_CLI_MAX_OPTS];        /* VALUE: last given; FLAG: "" when given */
    const char **list[TE_CLI_MAX_OPTS];        /* LIST values (malloc'd array) */
    size_t nlist[TE_CLI_MAX_OPTS];
    const char **pos;                          /* positional words in order (malloc'd) */
    size_t npos;
    bool help;                                 /* --help or -h was given */
} te_cli_args_t;

/* Parses argv[0..argc) (the words after the command name) against opts
 * (nopts entries) plus the common --config, --data and --help/-h. Accepts
 * "--name value", "--name=value", "-x value"; "--" ends options; a lone "-"
 * is a positional word (stdin). Values point into argv (not copied).
 * Returns 0, TE_EUSAGE with err naming the problem ('unknown option
 * "--foo"', 'option --limit needs a value'), or TE_ENOMEM. On failure *a
 * holds nothing to free. Otherwise free with te_cli_args_free. */
int te_cli_parse(te_cli_args_t *a, const te_cli_opt_t *opts, size_t nopts, int argc,
                 char **argv, te_err_t *err);

/* Frees what te_cli_parse allocated. Safe on a zeroed struct. */
void te_cli_args_free(te_cli_args_t *a);

/* Value of VALUE option name, or NULL when not given. */
const char *te_cli_get(const te_cli_args_t *a, const char *name);

/* True when FLAG (or VALUE) option name was given. */
bool te_cli_has(const te_cli_args_t *a, const char *name);

/* Values of LIST option name: sets *out (may be NULL) and returns count. */
size_t te_cli_list(const te_cli_args_t *a, const char *name, const char *const **out);

/* Prints "telemetry-engine CMD: <fmt...>" and "see 'telemetry-engine CMD
 * --help'" to stderr and returns TE_CLI_USAGE. */
int te_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "telemetry-engine CMD: <fmt...>" to stderr and returns TE_CLI_FAIL. */
int te_cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a decimal integer in [min, max] for option name. Returns 0 and sets
 * *out, or TE_EUSAGE with err: "--limit must be an integer from 1 to 1000,
 * got \"x\"". */
int te_cli_parse_int(const char *name, const char *s, int64_t min, int64_t max, int64_t *out,
                     te_err_t *err);

struct te_config;
struct te_store;

/* Loads the configuration from --config / --data (te_config_load). On
 * failure prints "telemetry-engine CMD: <error>" and returns TE_CLI_FAIL;
 * otherwise 0 and the caller owns *out. */
int te_cli_load_config(const char *cmd, const te_cli_args_t *a, struct te_config **out);

/* Opens cfg's database read-only for a read command. A missing file gives
 * "no database at data/telemetry.db (run 'telemetry-engine serve' or
 * 'ingest' first, or pass --data DIR)". On failure prints the error and
 * returns TE_CLI_FAIL; otherwise 0 and the caller owns *out. */
int te_cli_open_store_ro(const char *cmd, const struct te_config *cfg, struct te_store **out);

/* A progress line on stderr, shown only when stderr is a terminal, redrawn
 * in place ("\r") at most 10 times a second. */
typedef struct te_cli_progress {
    bool tty;
    bool shown;
    int64_t last_ns;
} te_cli_progress_t;

/* Prepares a progress line (checks isatty(stderr)). Cannot fail. */
void te_cli_progress_init(te_cli_progress_t *p);

/* Redraws the line with fmt when 100 ms passed since the last draw (or
 * force). No-op when stderr is not a terminal. */
void te_cli_progress_update(te_cli_progress_t *p, bool force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears the line (if one was drawn) so that the next output starts clean. */
void te_cli_progress_done(te_cli_progress_t *p);

/* Output formats of events/query/db stats. */
typedef enum { TE_CLI_FMT_TABLE = 0, TE_CLI_FMT_JSON, TE_CLI_FMT_CSV } te_cli_format_t;

/* Parses --format (NULL means table). Returns 0 or TE_EUSAGE with err. */
int te_cli_parse_format(const char *s, te_cli_format_t *out, te_err_t *err);

struct te_tag_filter;

/* Turns --where TAG=VAL items (split on the first '=') into n filters, one
 * per item (the store merges repeated keys into an OR list). Returns 0 and
 * sets *out (te_cli_where_free), or TE_EUSAGE naming the bad item. */
int te_cli_parse_where(const char *const *items, size_t n, struct te_tag_filter **out,
                       te_err_t *err);

/* Frees filters made by te_cli_parse_where. NULL is a no-op. */
void te_cli_where_free(struct te_tag_filter *f, size_t n);

/* Reads --since (default "24h": now - 24 h) and --until (default now,
 * exclusive) into ns. Returns 0 or TE_EUSAGE naming the option. */
int te_cli_parse_range(const te_cli_args_t *a, int64_t *since_ns, int64_t *until_ns,
                       te_err_t *err);

/* Writes len bytes to stdout; returns 0 or TE_EIO (e.g. a closed pipe). */
int te_cli_write(const char *s, size_t len);

/* The commands, each given the words after its name. Return an exit code. */
int te_cli_main(int argc, char **argv);
int te_cli_serve(int argc, char **argv);
int te_cli_ingest(int argc, char **argv);
int te_cli_events(int argc, char **argv);
int te_cli_query(int argc, char **argv);
int te_cli_db(int argc, char **argv);
int te_cli_version(int argc, char **argv);
int te_cli_rules(int argc, char **argv);      /* rules.c: list, check; test -> below */
int te_cli_alerts(int argc, char **argv);     /* alerts.c: list */
int te_cli_report(int argc, char **argv);     /* report.c: run a report template */
int te_cli_recs(int argc, char **argv);       /* recs.c: recommendations list, run */
int te_cli_runs(int argc, char **argv);       /* runs.c: pipeline runs (SPEC 8) */
int te_cli_rules_test(int argc, char **argv); /* rules_test.c: the words after "test" */

/* Prints the help text of a command (its usage) to f. */
void te_cli_help_serve(FILE *f);
void te_cli_help_ingest(FILE *f);
void te_cli_help_events(FILE *f);
void te_cli_help_query(FILE *f);
void te_cli_help_db(FILE *f);
void te_cli_help_version(FILE *f);
void te_cli_help_rules(FILE *f);
void te_cli_help_alerts(FILE *f);
void te_cli_help_report(FILE *f);
void te_cli_help_recs(FILE *f);
void te_cli_help_runs(FILE *f);

/* Help of `rules test` (rules_test.c). te_cli_rules_test (declared above)
 * prints "N passed, M failed" last and returns 0 when every test passed, 1
 * when one failed (or a file could not be loaded), 2 on a usage error. */
void te_cli_help_rules_test(FILE *f);

#endif
