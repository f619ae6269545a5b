/*
 * bind_event.h - te.Event: a read-only, borrowed view of one event for
 * on_event hooks (SPEC 6.2; STYLE snippet B).
 *
 * THREAD: the thread owning the lua_State.
 *
 * A box holds a borrowed const te_event_t *. The hook runner creates a box
 * per call and expires it when the hook returns, so an `ev` kept by the
 * script (global, closure) raises "te.Event used after its hook returned
 * (copy the fields you need)" instead of reading freed memory.
 * Fields: ev.kind, ev.ts (seconds, float), ev.source, ev.id, ev.trace_id,
 * ev.span_id, ev.parent_span_id, ev.correlation_id (nil when absent),
 * ev.tags (table tag -> string), ev.fields (table field -> number); the
 * tables are fresh copies made on first access and cached in the box.
 * Writing any key raises "te.Event is read-only".
 */
#ifndef TE_SCRIPT_BIND_EVENT_H
#define TE_SCRIPT_BIND_EVENT_H

#include "core/event.h"

typedef struct lua_State lua_State;

#define TE_EVENT_MT "te.Event"

/* lua_CFunction: expects a light userdata (const te_event_t *) at index 1
 * and returns a new te.Event box viewing it. Call it through
 * te_script_pcall (it allocates, so it may raise a memory error). */
int te_bind_event_new(lua_State *L);

/* Ends the view of the te.Event box at idx (later use raises). A value
 * that is not a te.Event box is ignored. Cannot fail. */
void te_bind_event_expire(lua_State *L, int idx);

#endif
