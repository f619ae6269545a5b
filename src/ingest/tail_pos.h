/*
 * tail_pos.h - the positions file of followed files (<db>.tail-positions):
 * where each tail source resumes after a restart.
 *
 * THREAD: any; no state (every call reads or writes the whole file).
 *
 * The one idea: the file is small (one entry per source block) and always
 * replaced whole: written to PATH.tmp, then rename(2)d over PATH, so a crash
 * leaves either the old or the new version, never a mix. Format (JSON, for
 * people who look at it):
 *   {"files":[{"name":"llm-calls","path":"/p/calls.jsonl","dev":"2049",
 *              "inode":"1234","offset":5678,"line":42}],"version":1}
 * dev and inode are strings: they can exceed a double's 53 bits.
 */
#ifndef TE_INGEST_TAIL_POS_H
#define TE_INGEST_TAIL_POS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

/* A place in a file: just past line `line` (a 1-based count), at byte off,
 * in the file with that device and inode. */
typedef struct te_tail_pos {
    bool set;
    uint64_t dev, ino, off, line;
} te_tail_pos_t;

typedef struct te_tail_pos_entry {
    const char *name;    /* the source block's name */
    const char *path;    /* the file it follows */
    te_tail_pos_t pos;
} te_tail_pos_entry_t;

/* Replaces the file at path with these n entries (atomically, see above).
 * Returns 0, TE_ENOMEM, or TE_EIO with err naming the file and the cause. */
int te_tail_pos_write(const char *path, const te_tail_pos_entry_t *entries, size_t n,
                      te_err_t *err);

/* Called by te_tail_pos_read for each well-formed entry; strings are
 * borrowed for the call. */
typedef void (*te_tail_pos_cb)(void *ud, const char *name, const char *path,
                               const te_tail_pos_t *pos);

/* Reads the file at path and calls cb per entry. Returns 0 (also when the
 * file does not exist: no entries), TE_EIO when it cannot be read, or
 * TE_EPARSE when it is not a positions file; err says which. Entries with a
 * missing or malformed member are skipped. */
int te_tail_pos_read(const char *path, te_tail_pos_cb cb, void *ud, te_err_t *err);

#endif
