/*
 * sql_v5.h - schema step 4 -> 5: detector state and recommendations.
 *
 * THREAD: any (constants only). See sql.h for how migrations run.
 */
#ifndef TE_STORE_SQL_V5_H
#define TE_STORE_SQL_V5_H

/* detector_state (first): one row per (detector, group) with the method's
 * state blob (store/detect_state.h); group_key is the group's packed
 * values ("a\0b\0"), sig the signature of the detector's definition.
 * recommendations: one row per finding (fingerprint), de-duplicated across
 * runs (store/recs.h). */
#define TE_SQL_MIGRATION_5                                                                \
    "CREATE TABLE detector_state("                                                        \
    "  detector TEXT NOT NULL, group_key BLOB NOT NULL, sig INTEGER NOT NULL,"            \
    "  seen_ns INTEGER NOT NULL, state BLOB NOT NULL, updated_ns INTEGER NOT NULL,"       \
    "  PRIMARY KEY(detector, group_key)) WITHOUT ROWID;"                                  \
    "CREATE TABLE recommendations("                                                       \
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL, fingerprint TEXT NOT NULL UNIQUE,"     \
    "  severity TEXT NOT NULL, title TEXT NOT NULL, detail TEXT, action TEXT,"            \
    "  evidence_json TEXT, first_seen_ns INTEGER NOT NULL, last_seen_ns INTEGER NOT NULL," \
    "  count INTEGER NOT NULL, state TEXT NOT NULL, resolved_ns INTEGER);"                \
    "CREATE INDEX recommendations_name_state ON recommendations(name, state);"

#endif
