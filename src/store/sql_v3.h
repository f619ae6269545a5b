/*
 * sql_v3.h - schema step 2 -> 3: alert lifecycle: acks, silences, the
 * notification outbox and the action journal.
 *
 * THREAD: any (constants only). See sql.h for how migrations run.
 *
 *   alerts + (acked_by, ack_comment, acked_at_ns, flapping)
 *       an ack belongs to one episode (id) and stops its repeats.
 *   silences(id, matchers_json, starts_at_ns, ends_at_ns, comment,
 *            created_by, created_at_ns)
 *       an "unsilence" sets ends_at_ns to the time it happened, so the
 *       row stays as a record.
 *   outbox(id, alert_id, notifier, status, payload, state, reason,
 *          attempts, created_ns, updated_ns, last_error)
 *       one row per (transition, notifier), written in the transaction of
 *       the transition; state pending -> delivered | failed, or
 *       suppressed (silenced, inhibited, acked, flapping) from the start.
 *       outbox_pending is a partial index: a restart reads only what is
 *       left to deliver.
 *   alert_actions(seq, kind, target, by, comment, at_ns)
 *       the journal of acks, silences and unsilences made by any process
 *       (the CLI writes it, a running engine polls it).
 */
#ifndef TE_STORE_SQL_V3_H
#define TE_STORE_SQL_V3_H

#define TE_SQL_MIGRATION_3                                                                   \
    "ALTER TABLE alerts ADD COLUMN acked_by TEXT;"                                           \
    "ALTER TABLE alerts ADD COLUMN ack_comment TEXT;"                                        \
    "ALTER TABLE alerts ADD COLUMN acked_at_ns INTEGER NOT NULL DEFAULT 0;"                  \
    "ALTER TABLE alerts ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;"                     \
    "CREATE TABLE silences("                                                                 \
    "  id TEXT PRIMARY KEY NOT NULL, matchers_json TEXT NOT NULL,"                           \
    "  starts_at_ns INTEGER NOT NULL, ends_at_ns INTEGER NOT NULL, comment TEXT,"            \
    "  created_by TEXT, created_at_ns INTEGER NOT NULL);"                                    \
    "CREATE TABLE outbox("                                                                   \
    "  id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, notifier TEXT NOT NULL,"              \
    "  status TEXT NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,"       \
    "  attempts INTEGER NOT NULL DEFAULT 0, created_ns INTEGER NOT NULL,"                    \
    "  updated_ns INTEGER NOT NULL, last_error TEXT);"                                       \
    "CREATE INDEX outbox_pending ON outbox(id) WHERE state = 'pending';"                     \
    "CREATE INDEX outbox_alert ON outbox(alert_id, notifier);"                               \
    "CREATE TABLE alert_actions("                                                            \
    "  seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, by TEXT,"          \
    "  comment TEXT, at_ns INTEGER NOT NULL);"

#endif
