/*
 * bind_report.h - te.report (SPEC 6.5) and the report builder `r`.
 *
 * THREAD: the thread owning the lua_State.
 *
 * te.report{ name, title, description, params, schedule, notify, render }
 * checks its spec (notify: a list of notifier names that get the report
 * each time its schedule writes it) and appends a normalised copy to the
 * list in the registry under TE_LUA_REPORTS_KEY: { name, title,
 * description, params = {..}, schedule, notify = {..}, render = function,
 * line }. The host (report/run.c) reads that
 * list after the script's top level ran. In standalone te.so the
 * description also joins te.declarations() (type = "report") and is
 * returned.
 *
 * te.report_builder{ name, title } makes a builder outside a report run
 * (tests, tools); the host makes one per run with te_lua_push_builder.
 * Builder methods (each returns the builder, so calls chain):
 *   r:heading(text [, level = 2])   r:text(s)
 *   r:stat{ label, value, unit, delta, format }
 *   r:table(rows [, columns [, title]])  columns: { "key", ... } or
 *       { { key = "cost", label = "Cost", format = "usd" }, ... }
 *   r:chart{ type = "line"|"bar"|"stacked"|"pie", title, x = {..},
 *            series = { { name = "..", values = {..} }, .. }, format }
 *   r:list(items)   r:alert_list(alerts)   (alerts as q.alerts returns)
 *   r:render(format) -> text ("md", "html", "json", "csv")
 *   r:document() -> the document as a Lua table, nulls as te.null
 *       (see report/report.h)
 * Formats: number, int, usd, pct, ms, s, duration, bytes, time, text.
 */
#ifndef TE_SCRIPT_BIND_REPORT_H
#define TE_SCRIPT_BIND_REPORT_H

#include <stdbool.h>

typedef struct lua_State lua_State;
struct cJSON;

/* Registry key of the list of declared reports. */
#define TE_LUA_REPORTS_KEY "te.reports"

/* Adds te.report and te.report_builder to the table at the top of the
 * stack, with the mode as first upvalue (see luaopen_te.h). Leaves the
 * stack as found; may raise (memory). */
void te_bind_report(lua_State *L, bool standalone);

/* Pushes a builder that owns doc (TAKEN once this returns: freed with the
 * builder); blocks are appended to doc's "blocks" array (created when
 * missing). May raise (memory) before taking doc: then doc is still the
 * caller's. */
void te_lua_push_builder(lua_State *L, struct cJSON *doc);

/* The document of the builder at idx (still owned by the builder), or
 * NULL when idx is not a builder. Cannot fail. */
struct cJSON *te_lua_builder_doc(lua_State *L, int idx);

/* Converts the Lua value at idx into new cJSON (tables with 1..n as
 * arrays, te.null and nil as null, functions and userdata as null,
 * nesting over 32 levels as null). NULL on ENOMEM. Does not raise. */
struct cJSON *te_lua_to_cjson(lua_State *L, int idx);

#endif
