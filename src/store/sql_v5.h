/*
 * sql_v5.h - schema step 4 -> 5: detector state and recommendations.
 *
 * THREAD: any (constants only). See sql.h for how migrations run.
 */
#ifndef TE_STORE_SQL_V5_H
#define TE_STORE_SQL_V5_H

#define TE_SQL_MIGRATION_5 "SELECT 1;"

#endif
