/*
 * rules_test_spec.h - reads the table a rule test file returns (already
 * turned into cJSON) into checked C structs (format: docs/rules-testing.md).
 *
 * THREAD: main.
 *
 * Every key is checked: an unknown key gets a suggestion ("expect[2]:
 * unknown key \"stat\" (did you mean \"state\"?)"), durations and times
 * are parsed, fixture events are parsed with te_event_from_cjson exactly
 * like ingested ones. Strings in the structs borrow from the cJSON tree,
 * which must outlive them.
 */
#ifndef TE_CLI_RULES_TEST_SPEC_H
#define TE_CLI_RULES_TEST_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../core/err.h"
#include "../core/event.h"
#include "../rules/alert.h"

/* One fixture event occurrence: events[item] at offset ts (k-th repeat). */
typedef struct te_rules_test_occ {
    int64_t ts;            /* offset from the test's start, ns */
    size_t item;
    size_t k;
} te_rules_test_occ_t;

/* One expectation: the state of an alert as of `at` (expect), or a
 * transition at exactly `at` (expect_transitions). */
typedef struct te_rules_test_expect {
    size_t index;          /* 1-based position in its list */
    bool transition;
    int64_t at;            /* offset from start, ns */
    const char *rule;
    const cJSON *group;    /* object of string values, keys sorted; NULL = {} */
    te_alert_state_t state;
    te_alert_transition_t to;
    bool has_sev;
    te_severity_t sev;
    bool has_value, has_tol;
    double value, tol;
    const char *summary;   /* NULL: not checked */
} te_rules_test_expect_t;

/* One test, ready to run. rule_files is borrowed from the file. */
typedef struct te_rules_test {
    const char *name;
    char label[32];        /* "tests[N]" when the test has no usable name */
    char *const *rule_files;
    size_t nrule_files;
    te_event_t **items;    /* one parsed event per events[] entry (ts set when fed) */
    size_t nitems;
    te_rules_test_occ_t *occ;
    size_t nocc;
    te_rules_test_expect_t *expect;
    size_t nexpect;
} te_rules_test_t;

/* The top level of a test file. */
typedef struct te_rules_test_file {
    const cJSON *tests;    /* array */
    size_t ntests;
    char **rule_files;     /* resolved against the test file's folder (owned) */
    size_t nrule_files;
    int64_t start;         /* virtual clock start, ns since the epoch */
} te_rules_test_file_t;

/* Reads the top level (rule_files, start, tests) of spec (a const cJSON *)
 * for the test file at path. Returns 0 (free with
 * te_rules_test_spec_file_free), or TE_EINVAL / TE_ENOMEM with err naming
 * the key; then f holds nothing to free. */
int te_rules_test_spec_file(const char *path, const void *spec, te_rules_test_file_t *f,
                            te_err_t *err);
void te_rules_test_spec_file_free(te_rules_test_file_t *f);

/* Reads tests[i] of f into t. Returns 0, or TE_EINVAL / TE_ENOMEM with err
 * naming the key ("events[2].every: ..."). Either way t->name is set and
 * t must be freed with te_rules_test_spec_test_free. */
int te_rules_test_spec_test(const te_rules_test_file_t *f, size_t i, te_rules_test_t *t,
                            te_err_t *err);
void te_rules_test_spec_test_free(te_rules_test_t *t);

#endif
