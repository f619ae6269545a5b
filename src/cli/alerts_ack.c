/* transient: being written */
#include "alerts_tools.h"
int te_cli_alerts_ack(const te_cli_args_t *a) { (void)a; return te_cli_fail("alerts", "'alerts ack' is being written"); }
int te_cli_alerts_silence(const te_cli_args_t *a) { (void)a; return te_cli_fail("alerts", "'alerts silence' is being written"); }
int te_cli_alerts_unsilence(const te_cli_args_t *a) { (void)a; return te_cli_fail("alerts", "'alerts unsilence' is being written"); }
int te_cli_alerts_silences(const te_cli_args_t *a) { (void)a; return te_cli_fail("alerts", "'alerts silences' is being written"); }
