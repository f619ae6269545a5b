/*
 * version.c - `telemetry-engine version`: our version and the libraries'.
 *
 * THREAD: main.
 */
#include <cjson/cJSON.h>
#include <lua.h>
#include <sqlite3.h>
#include <stdio.h>
#include <uv.h>

#include "cli.h"

#ifndef TE_VERSION
#define TE_VERSION "0.1.0"
#endif

void te_cli_help_version(FILE *f)
{
    fprintf(f, "usage: %s version\n\n"
               "Prints the engine's version and the versions of the libraries it runs on\n"
               "(libuv, SQLite, Lua, cJSON).\n",
            TE_CLI_PROG);
}

int te_cli_version(int argc, char **argv)
{
    te_cli_args_t a;
    te_err_t err = {0};

    if (te_cli_parse(&a, NULL, 0, argc, argv, &err) < 0)
        return te_cli_usage_error("version", "%s", err.msg);
    if (a.help) {
        te_cli_help_version(stdout);
        te_cli_args_free(&a);
        return TE_CLI_OK;
    }
    if (a.npos > 0) {
        int rc = te_cli_usage_error("version", "unexpected argument \"%s\"", a.pos[0]);
        te_cli_args_free(&a);
        return rc;
    }
    te_cli_args_free(&a);
    printf("%s %s\n", TE_CLI_PROG, TE_VERSION);
    printf("libuv %s\n", uv_version_string());
    printf("SQLite %s\n", sqlite3_libversion());
    /* LUA_RELEASE is "Lua 5.4.x" */
    printf("%s\n", LUA_RELEASE);
    printf("cJSON %s\n", cJSON_Version());
    return TE_CLI_OK;
}
