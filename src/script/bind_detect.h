/*
 * bind_detect.h - te.detector and te.methods (SPEC 6.3; see bind_detect.c).
 *
 * THREAD: the thread owning the lua_State.
 */
#ifndef TE_SCRIPT_BIND_DETECT_H
#define TE_SCRIPT_BIND_DETECT_H

#include <stdbool.h>

typedef struct lua_State lua_State;

/* Adds te.detector and te.methods to the te table on top of the stack
 * ([te] -> [te]). standalone: te.so for busted (te.detector returns a
 * description table); otherwise the engine's scripts (te.detector appends
 * a def to the running script). Cannot fail (raises on ENOMEM). */
void te_bind_detect(lua_State *L, bool standalone);

#endif
