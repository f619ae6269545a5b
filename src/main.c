/*
 * main.c - the telemetry-engine binary: argv -> cli/ dispatch, nothing else.
 *
 * THREAD: main.
 */
#include <signal.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
    /* a closed pipe (`events | head`) must surface as a write error, not kill us */
    signal(SIGPIPE, SIG_IGN);
    return te_cli_main(argc, argv);
}
