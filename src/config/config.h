/*
 * config.h - telemetry.lua read into a te_config_t (SPEC section 6.0).
 *
 * THREAD: any (loaded once at start-up, read-only afterwards).
 * The file is Lua evaluated in a sandboxed, throwaway state: only the block
 * functions (storage, listen, scripts, notifier, source, auth, redact, env)
 * and base/string/table/math exist. An unknown key, a wrong type or a bad
 * duration is an error naming file, line and key:
 *   telemetry.lua:3: storage: unknown key "pth" (did you mean "path"?)
 * Relative paths resolve against the config file's folder. Command-line
 * flags override the file (te_config_* setters below), environment
 * TELEMETRY_DATA / TELEMETRY_CONFIG override the defaults.
 */
#ifndef TE_CONFIG_CONFIG_H
#define TE_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

typedef struct te_config_notifier {
    char *name;
    char *type;          /* webhook|slack|email|file|exec|stdout */
    char *json;          /* the whole block as JSON text, for the alerts issue */
} te_config_notifier_t;

typedef struct te_config_source {
    char *name;
    char *type;          /* tail|... */
    char *path;
    char *kind;
    char *json;
} te_config_source_t;

/* storage.retention.kinds: one kind's own ages. -1: not set here (the
 * global one applies); 0: "forever" (keep); else nanoseconds kept. */
typedef struct te_config_retention_kind {
    char *kind;
    int64_t raw_ns, m1_ns, h1_ns;
} te_config_retention_kind_t;

typedef struct te_config {
    char *file;            /* config file used, NULL when none */
    char *data_dir;        /* default "./data" */
    char *db_path;         /* default data_dir/telemetry.db */
    int durability;        /* te_durability_t */
    char *retention_raw, *retention_1m, *retention_1h; /* durations text, may be NULL */
    int64_t retention_raw_ns, retention_1m_ns, retention_1h_ns; /* 0: keep (unset/"forever") */
    te_config_retention_kind_t *retention_kinds; /* per-kind overrides, sorted by kind */
    size_t nretention_kinds;
    char *listen_http;     /* "127.0.0.1:4380"; "" disables */
    char *listen_tcp;      /* "127.0.0.1:4381"; "" disables */
    char *listen_udp;      /* "127.0.0.1:4382"; "" disables */
    char *listen_unix;     /* data_dir/telemetry.sock; "" disables */
    char *scripts_dir;     /* "lua" */
    size_t script_mem_bytes;  /* scripts.memory: cap per script; 0 = 64 MiB */
    int64_t script_max_steps; /* scripts.instructions: per call; 0 = 10,000,000 */
    int64_t script_call_ns;   /* scripts.call_timeout: wall time per call; 0 = 1 s */
    size_t max_body_bytes; /* HTTP body limit, default 16 MiB (listen.max_body) */
    size_t queue_events;   /* pipeline bound, default 65536 (storage.queue_events) */
    char *log_level;       /* "info" */
    te_config_notifier_t *notifiers;
    size_t nnotifiers;
    te_config_source_t *sources;
    size_t nsources;
    char *auth_json;       /* auth block as JSON or NULL */
    char *redact_json;     /* redact block as JSON or NULL */
    char *alerts_json;     /* alerts block (flap, inhibit, poll) as JSON or NULL */
} te_config_t;

/* Loads the configuration. path: an explicit --config (must exist), or NULL
 * to use $TELEMETRY_CONFIG, else ./telemetry.lua when present, else
 * defaults. data_dir_override: --data or NULL ($TELEMETRY_DATA applies when
 * NULL). On success the caller owns *out (te_config_free). */
int te_config_load(const char *path, const char *data_dir_override, te_config_t **out,
                   te_err_t *err);

/* Frees a config. NULL is a no-op. */
void te_config_free(te_config_t *cfg);

/* Replaces a string setting with a copy of value (flags override the file).
 * Returns 0 or TE_ENOMEM. */
int te_config_set(char **slot, const char *value);

/* Checks a listener address from the file or a flag (what: "http", "tcp",
 * "udp" names it in errors) and stores it in *slot: "HOST:PORT" (IPv6 as
 * "[::1]:PORT", port 0..65535) is kept as is, "off" or "" store "" (the
 * listener is disabled). Returns 0, TE_EINVAL with err ('--http must be
 * HOST:PORT or "off", got "x"' style, prefixed by what), or TE_ENOMEM. */
int te_config_set_listen(char **slot, const char *what, const char *value, te_err_t *err);

#endif
