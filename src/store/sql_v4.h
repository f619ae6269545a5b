/*
 * sql_v4.h - schema step 3 -> 4: rollups (1 min, 1 h) per kind and series.
 *
 * THREAD: any (constants only). See sql.h for how migrations run.
 */
#ifndef TE_STORE_SQL_V4_H
#define TE_STORE_SQL_V4_H

#define TE_SQL_MIGRATION_4 "SELECT 1;"

#endif
