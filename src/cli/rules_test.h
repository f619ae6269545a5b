/*
 * rules_test.h - `telemetry-engine rules test` (SPEC 6.6): rule unit tests
 * in Lua, run against an isolated in-memory ruleset with a virtual clock.
 *
 * THREAD: main (the CLI process). Nothing here reads the wall clock for
 * logic: the ruleset, the windows and te.now() in the rule scripts all see
 * the virtual clock of the test, so a test gives the same answer every run.
 *
 * Two halves: rules_test.c finds the test files, loads each one in its
 * own sandbox (te_script_load), turns the table the file returns into
 * cJSON (data only) and prints the summary; rules_test_run.c checks that
 * table against the format of docs/rules-testing.md and runs its tests.
 */
#ifndef TE_CLI_RULES_TEST_H
#define TE_CLI_RULES_TEST_H

#include <stdio.h>

#include "../script/script.h"

/* Counters of one `rules test` invocation. */
typedef struct te_rules_test_tally {
    int passed;
    int failed;
} te_rules_test_tally_t;

/* Runs every test of one test file. spec is the cJSON (const cJSON *) of
 * the table the file returned; path names the file in messages and
 * anchors its rule_files; lib_dir (may be NULL) is given to the rule
 * scripts' require; limits (may be NULL) are their budgets. Prints
 * "ok   PATH: name" or "FAIL PATH: name" plus indented reasons to out for
 * each test and adds to *tally. A spec that breaks the format prints one
 * "FAIL PATH: <problem>" line naming the key and counts one failure.
 * Cannot fail otherwise (out-of-memory is reported as a failed test). */
void te_rules_test_run_file(const char *path, const void *spec, const char *lib_dir,
                            const te_script_limits_t *limits, FILE *out,
                            te_rules_test_tally_t *tally);

#endif
