/*
 * result.h - a table of query results and its renderers (json, csv, table).
 *
 * THREAD: any. Pure data: the store fills a te_result_t, the API and the CLI
 * render it. The JSON form is exactly SPEC section 5 `GET /v1/query`:
 * {"columns":[...],"rows":[{"col":value,...}]} with null for missing values.
 */
#ifndef TE_CORE_RESULT_H
#define TE_CORE_RESULT_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TE_VAL_NULL = 0, TE_VAL_STR, TE_VAL_NUM, TE_VAL_INT } te_val_type_t;

typedef struct te_val {
    te_val_type_t type;
    union {
        char *s;   /* owned by the result */
        double num;
        int64_t i;
    } u;
} te_val_t;

typedef struct te_result {
    char **columns;   /* owned */
    size_t ncols;
    te_val_t *cells;  /* nrows * ncols, row-major, owned */
    size_t nrows;
    size_t cap_rows;
} te_result_t;

/* Makes an empty result with the given column names (copied). NULL on ENOMEM. */
te_result_t *te_result_new(const char *const *columns, size_t ncols);

/* Frees the result and everything it owns. NULL is a no-op. */
void te_result_free(te_result_t *r);

/* Appends a row of NULL cells; returns a pointer to its ncols cells or NULL
 * on ENOMEM. The pointer is valid until the next append. */
te_val_t *te_result_add_row(te_result_t *r);

/* Sets a cell to a copy of s (NULL s sets NULL). Returns 0 or TE_ENOMEM. */
int te_val_set_str(te_val_t *v, const char *s, size_t len);

/* Renders as SPEC JSON: malloc'd NUL-terminated text (free()), NULL on ENOMEM.
 * Non-finite numbers render as null. */
char *te_result_to_json(const te_result_t *r, size_t *len_out);

/* Renders as RFC 4180 CSV with a header line. malloc'd; NULL on ENOMEM. */
char *te_result_to_csv(const te_result_t *r, size_t *len_out);

/* Renders as an aligned text table for terminals. malloc'd; NULL on ENOMEM. */
char *te_result_to_table(const te_result_t *r, size_t *len_out);

#endif
