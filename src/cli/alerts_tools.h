/*
 * alerts_tools.h - the sub-commands of `telemetry-engine alerts` besides
 * list (alerts.c parses the command line once with every option of the
 * command and hands the parsed words over; a.pos[0] is the sub-command).
 *
 * THREAD: main. Each returns TE_CLI_OK, TE_CLI_FAIL or TE_CLI_USAGE and
 * prints its own errors (te_cli_fail / te_cli_usage_error).
 *
 *   ack ID [--by W] [--comment C]          alerts_ack.c
 *   silence --match TAG=VAL... --for D [--comment C] [--by W]
 *   unsilence ID
 *   silences [--format table|json]         the active silences
 *   test RULE [--at T]                     alerts_tools.c: evaluate now, send nothing
 *   trigger RULE [--group TAG=VAL]... [--status firing|resolved]
 *                                          alerts_tools.c: through the real notifiers
 *   watch [--format table|json]            alerts_tools.c: live transitions
 */
#ifndef TE_CLI_ALERTS_TOOLS_H
#define TE_CLI_ALERTS_TOOLS_H

#include "cli.h"

int te_cli_alerts_ack(const te_cli_args_t *a);
int te_cli_alerts_silence(const te_cli_args_t *a);
int te_cli_alerts_unsilence(const te_cli_args_t *a);
int te_cli_alerts_silences(const te_cli_args_t *a);
int te_cli_alerts_test(const te_cli_args_t *a);
int te_cli_alerts_trigger(const te_cli_args_t *a);
int te_cli_alerts_watch(const te_cli_args_t *a);

#endif
