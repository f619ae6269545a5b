/*
 * suggest.h - "did you mean" for unknown keys and names.
 *
 * THREAD: any. Pure.
 */
#ifndef TE_CORE_SUGGEST_H
#define TE_CORE_SUGGEST_H

#include <stddef.h>

/* Levenshtein distance between a and b; strings over 64 bytes give 99
 * (too far to suggest). Cannot fail. */
size_t te_edit_distance(const char *a, const char *b);

#endif
