/*
 * serve.c - `telemetry-engine serve`: configuration + flags -> the engine.
 *
 * THREAD: main (te_engine_serve runs the loop on this thread until
 * SIGTERM/SIGINT).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/config.h"
#include "../core/log.h"
#include "../engine.h"
#include "cli.h"

static const te_cli_opt_t serve_opts[] = {
    {"http", 0, TE_CLI_VALUE},
    {"tcp", 0, TE_CLI_VALUE},
    {"udp", 0, TE_CLI_VALUE},
    {"unix", 0, TE_CLI_VALUE},
    {"scripts", 0, TE_CLI_VALUE},
};

void te_cli_help_serve(FILE *f)
{
    fprintf(f,
            "usage: %s serve [--config FILE] [--data DIR] [--http ADDR] [--tcp ADDR]\n"
            "                        [--udp ADDR] [--unix PATH] [--scripts DIR]\n\n"
            "Runs the engine: opens (or creates) DIR/telemetry.db, starts the writer and the\n"
            "listeners, prints their addresses, and runs until SIGTERM or SIGINT (Ctrl-C),\n"
            "when it stops accepting, commits everything queued and exits 0.\n\n"
            "options:\n"
            "  --config FILE  configuration (default ./telemetry.lua when present)\n"
            "  --data DIR     data folder (default ./data)\n"
            "  --http ADDR    HTTP API, HOST:PORT (default 127.0.0.1:4380)\n"
            "  --tcp ADDR     NDJSON over TCP (default 127.0.0.1:4381)\n"
            "  --udp ADDR     one JSON event per datagram (default 127.0.0.1:4382)\n"
            "  --unix PATH    NDJSON over a Unix socket (default DIR/telemetry.sock)\n"
            "  --scripts DIR  Lua scripts: rules in DIR/rules, libraries in DIR/lib (default\n"
            "                 ./lua, or scripts.dir of the file); reloaded when they change\n"
            "  An ADDR or PATH of \"off\" disables that listener. Flags override the file.\n\n"
            "example:\n"
            "  %s serve --data ./data --udp off\n",
            TE_CLI_PROG, TE_CLI_PROG);
}

int te_cli_serve(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};
    te_config_t *cfg = NULL;
    int rc;
    static const char *const names[] = {"http", "tcp", "udp"};

    if (te_cli_parse(&a, serve_opts, sizeof(serve_opts) / sizeof(serve_opts[0]), argc, argv,
                     &err) < 0)
        return te_cli_usage_error("serve", "%s", err.msg);
    if (a.help) {
        te_cli_help_serve(stdout);
        rc = TE_CLI_OK;
        goto out;
    }
    if (a.npos > 0) {
        rc = te_cli_usage_error("serve", "unexpected argument \"%s\"", a.pos[0]);
        goto out;
    }
    /* check the flags before loading anything, so a typo is a usage error */
    for (int i = 0; i < 3; i++) {
        const char *v = te_cli_get(&a, names[i]);
        char *probe = NULL, what[16];
        snprintf(what, sizeof(what), "--%s", names[i]);
        if (v && te_config_set_listen(&probe, what, v, &err) < 0) {
            rc = te_cli_usage_error("serve", "%s", err.msg);
            goto out;
        }
        free(probe);
    }
    rc = te_cli_load_config("serve", &a, &cfg);
    if (rc != 0)
        goto out;
    char **slots[] = {&cfg->listen_http, &cfg->listen_tcp, &cfg->listen_udp};
    for (int i = 0; i < 3; i++) {
        const char *v = te_cli_get(&a, names[i]);
        if (v && te_config_set_listen(slots[i], names[i], v, &err) < 0) {
            rc = te_cli_fail("serve", "%s", err.msg);
            goto out;
        }
    }
    const char *u = te_cli_get(&a, "unix");
    if (u && te_config_set(&cfg->listen_unix, strcmp(u, "off") == 0 ? "" : u) < 0) {
        rc = te_cli_fail("serve", "out of memory");
        goto out;
    }
    const char *sd = te_cli_get(&a, "scripts");
    if (sd && te_config_set(&cfg->scripts_dir, sd) < 0) {
        rc = te_cli_fail("serve", "out of memory");
        goto out;
    }
    te_log_level_t level;
    if (te_log_level_parse(cfg->log_level, &level) == 0)
        te_log_set_level(level);
    if (te_engine_serve(cfg, &err) < 0) {
        rc = te_cli_fail("serve", "%s", err.msg[0] ? err.msg : te_strerror(err.code));
        goto out;
    }
    rc = TE_CLI_OK;
out:
    te_config_free(cfg);
    te_cli_args_free(&a);
    return rc;
}
