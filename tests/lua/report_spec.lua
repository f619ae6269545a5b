-- report_spec.lua - te.report declarations and the report builder `r`
-- through te.so (standalone mode), and every shipped template rendered
-- against an empty q (a stand-in table: the real q needs a store, which
-- tests/integration/it_report.c drives). Run by ctest as
--   busted --lua=lua5.4 --cpath=BUILD/lua/?.so tests/lua/report_spec.lua

local te = require "te"

local root = os.getenv("TE_SOURCE_DIR") or "."

-- The error of f(...) without its "file:line: " prefix.
local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return (tostring(e):gsub("^[^\n]-:%d+: ", ""))
end

local function render_fn() end

describe("te.report", function()
  before_each(function() te._reset() end)

  it("returns a description with defaults filled in", function()
    local d = te.report { name = "weekly", params = { since = "30d", top = 5 },
                          schedule = "weekly mon 09:00", render = render_fn }
    assert.are.equal("report", d.type)
    assert.are.equal("weekly", d.name)
    assert.are.equal("weekly", d.title) -- title defaults to the name
    assert.are.equal("weekly mon 09:00", d.schedule)
    assert.are.equal(render_fn, d.render)
    assert.are.same({ since = "30d", top = 5 }, d.params)
    assert.is_true(d.line > 0)
    local decls = te.declarations()
    assert.are.equal(d, decls[#decls])
  end)

  it("names unknown keys with a suggestion", function()
    assert.are.equal('te.report: unknown key "rendr" (did you mean "render"?)',
      err_of(te.report, { name = "x", rendr = render_fn }))
    assert.are.equal('te.report: unknown key "shedule" (did you mean "schedule"?)',
      err_of(te.report, { name = "x", render = render_fn, shedule = "daily 08:00" }))
  end)

  it("requires a name and a render function", function()
    assert.are.equal('te.report: "name" is required (a string)',
      err_of(te.report, { render = render_fn }))
    assert.are.equal('te.report: "render" is required: function(q, r, params) ... end',
      err_of(te.report, { name = "x" }))
    assert.are.equal('te.report: "name" must match [a-zA-Z0-9_.-]+, got "a b"',
      err_of(te.report, { name = "a b", render = render_fn }))
  end)

  it("checks schedules and params", function()
    assert.are.equal('te.report: schedule "daily 8am": expected "daily HH:MM", ' ..
      '"weekly mon HH:MM" or "every 6h"',
      err_of(te.report, { name = "x", render = render_fn, schedule = "daily 8am" }))
    assert.are.equal('te.report: params.since must be a duration such as "7d" or a time',
      err_of(te.report, { name = "x", render = render_fn, params = { since = "soon" } }))
    assert.are.equal('te.report: params.top must be a string, number or boolean, got table',
      err_of(te.report, { name = "x", render = render_fn, params = { top = {} } }))
    te.report { name = "ok", render = render_fn, schedule = "every 6h" }
  end)

  it("refuses a duplicate name", function()
    te.report { name = "dup", render = render_fn }
    assert.matches('te.report: duplicate name "dup" %(already declared at line %d+%)',
      err_of(te.report, { name = "dup", render = render_fn }))
  end)
end)

describe("the builder", function()
  it("collects blocks in order and chains", function()
    local r = te.report_builder { name = "t", title = "Title" }
    assert.are.equal(r, r:heading("Cost", 2):text("hello"))
    r:stat { label = "Total", value = 12.5, format = "usd", delta = 0.1 }
    r:table({ { a = 1, b = "x" }, { a = 2 } }, { "a", { key = "b", label = "B", format = "text" } },
            "A table")
    r:chart { type = "bar", title = "c", x = { "a", "b" },
              series = { { name = "s", values = { 1, te.null } } } }
    r:list { "one", 2 }
    r:alert_list { { rule = "r", severity = "critical", state = "firing", extra = "dropped" } }
    local doc = r:document()
    assert.are.equal("Title", doc.title)
    local types = {}
    for i, b in ipairs(doc.blocks) do types[i] = b.type end
    assert.are.same({ "heading", "text", "stat", "table", "chart", "list", "alert_list" }, types)
    assert.are.equal(2, doc.blocks[1].level)
    assert.are.equal(0.1, doc.blocks[3].delta)
    assert.are.equal("A table", doc.blocks[4].title)
    assert.are.equal("B", doc.blocks[4].columns[2].label)
    assert.are.equal(te.null, doc.blocks[5].series[1].values[2]) -- null keeps its place
    assert.is_nil(doc.blocks[7].alerts[1].extra)
    assert.are.equal("r", doc.blocks[7].alerts[1].rule)
  end)

  it("renders every format", function()
    local r = te.report_builder { title = "T <x>" }
    r:table({ { name = "<script>alert(1)</script>", n = 3 } }, { "name", "n" })
    local md = r:render("md")
    assert.matches("^# T &lt;x&gt;", md)
    local html = r:render("html")
    assert.is_nil(html:find("<script>", 1, true))
    assert.truthy(html:find("&lt;script&gt;alert(1)&lt;/script&gt;", 1, true))
    assert.truthy(r:render("json"):find('"type":%s*"table"'))
    assert.truthy(r:render("csv"):find("name,n\n<script>alert(1)</script>,3\n", 1, true))
    assert.are.equal('r:render: bad format "pdf" (use md, html, json or csv)',
      err_of(r.render, r, "pdf"))
  end)

  it("checks arguments with clear messages", function()
    local r = te.report_builder()
    assert.are.equal('r:chart: "type" must be "line", "bar", "stacked" or "pie", got "area"',
      err_of(r.chart, r, { type = "area", x = {}, series = {} }))
    assert.are.equal("r:chart: series[1].values has 3 values for 2 x labels",
      err_of(r.chart, r, { x = { "a", "b" }, series = { { name = "s", values = { 1, 2, 3 } } } }))
    assert.are.equal("r:chart: a pie takes one series, got 2",
      err_of(r.chart, r, { type = "pie", x = { "a" },
        series = { { values = { 1 } }, { values = { 2 } } } }))
    assert.are.equal("r:chart: series[1].values[2] must be a number, got string",
      err_of(r.chart, r, { x = { "a", "b" }, series = { { values = { 1, "2" } } } }))
    assert.are.equal('r:stat: unknown key "lable" (did you mean "label"?)',
      err_of(r.stat, r, { lable = "x" }))
    assert.are.equal('r:stat: unknown format "usdd" (did you mean "usd"?)',
      err_of(r.stat, r, { label = "x", value = 1, format = "usdd" }))
    assert.are.equal("r:table: rows[2] must be a table, got number",
      err_of(r.table, r, { {}, 5 }))
    assert.are.equal("r:heading: level must be from 1 to 6, got 7",
      err_of(r.heading, r, "h", 7))
    assert.are.equal("r:text: call it with a colon (r:text(...))", err_of(r.text, "x"))
    -- nothing half-done was added by the failed calls
    assert.are.equal(0, #r:document().blocks)
  end)
end)

-- A q that has no data: every read returns nothing.
local function empty_q()
  local now = 1795168800 -- 2026-11-20T10:00:00Z
  return {
    since = now - 7 * 86400, ["until"] = now, now = now,
    query = function(a)
      -- without every and group_by the store answers one row of zero counts
      if not a.every and not a.group_by then
        local row = {}
        for name, spec in pairs(a.aggs or { count = "count" }) do
          if spec == "count" or spec:match("^distinct:") then row[name] = 0 end
        end
        return { row }
      end
      return {}
    end,
    events = function() return {} end,
    alerts = function() return {} end,
    recommendations = function() return {} end,
    stats = function() return { events = 0, series = 0, kinds = {}, db_bytes = 0 } end,
    time = function(s) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(s)) end,
  }
end

describe("shipped reports", function()
  before_each(function() te._reset() end)

  for _, name in ipairs({ "overview", "selectors", "runs", "health", "alerts" }) do
    it(name .. " renders on empty data in every format", function()
      local chunk = assert(loadfile(root .. "/lua/reports/" .. name .. ".lua"))
      chunk()
      local decl
      for _, d in ipairs(te.declarations()) do
        if d.type == "report" and d.name == name then decl = d end
      end
      assert.is_not_nil(decl, "declares " .. name)
      local r = te.report_builder { name = name, title = decl.title }
      local params = {}
      for k, v in pairs(decl.params) do params[k] = v end
      decl.render(empty_q(), r, params)
      assert.is_true(#r:document().blocks > 3)
      for _, f in ipairs({ "md", "html", "json", "csv" }) do
        assert.is_true(#r:render(f) > 0)
      end
      assert.truthy(r:render("md"):find(decl.title, 1, true))
    end)
  end
end)

-- q over a real database: fixture events loaded with the CLI (TE_BIN), read
-- back through te.report_q (te.so's own read-only connection).
describe("q", function()
  local bin = os.getenv("TE_BIN")
  local dir, q, has_sqlite3
  local day = "2026-11-20T"

  setup(function()
    assert(bin, "TE_BIN must name the telemetry-engine binary")
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local f = assert(io.open(dir .. "/fixture.ndjson", "w"))
    local function ev(ts, provider, status, fields)
      local parts = {}
      for k, v in pairs(fields) do parts[#parts + 1] = string.format('"%s":%s', k, v) end
      table.sort(parts)
      f:write(string.format('{"ts":"%s","kind":"llm_call","tags":{"provider":"%s",' ..
        '"status":"%s"},"fields":{%s}}\n', ts, provider, status, table.concat(parts, ",")))
    end
    ev(day .. "10:00:00Z", "openai", "ok", { cost_usd = 0.5, latency_ms = 100 })
    ev(day .. "10:30:00Z", "openai", "error", { cost_usd = 0.1, latency_ms = 300 })
    ev(day .. "11:00:00Z", "anthropic", "ok", { cost_usd = 1.0, latency_ms = 200 })
    ev(day .. "11:10:00Z", "anthropic", "ok", { cost_usd = 2.0, latency_ms = 400 })
    ev(day .. "12:00:00Z", "<google>", "ok", { latency_ms = 50 })
    ev("2026-11-19T10:00:00Z", "openai", "ok", { cost_usd = 9, latency_ms = 1 })
    f:close()
    assert(os.execute(string.format("%s ingest --data %s %s/fixture.ndjson >/dev/null", bin, dir,
      dir)))
    -- one stored recommendation (the row te.recommend's runs would write), when
    -- the sqlite3 shell is there to write it
    has_sqlite3 = os.execute("command -v sqlite3 >/dev/null")
    if has_sqlite3 then
      assert(os.execute(string.format([[sqlite3 %s/telemetry.db "INSERT INTO recommendations
        (name, fingerprint, severity, title, detail, action, evidence_json, first_seen_ns,
         last_seen_ns, count, state) VALUES ('cheaper-model', 'fp1', 'warning',
        'Use a smaller model', 'd', 'a', '{\"share\":0.5}', 1795168800000000000,
        1795172400000000000, 3, 'open')"]], dir)))
    end
    q = assert(te.report_q { db = dir .. "/telemetry.db", since = day .. "00:00:00Z",
                             ["until"] = "2026-11-21T00:00:00Z", now = "2026-11-21T00:00:00Z" })
  end)

  teardown(function()
    q = nil
    collectgarbage()
    os.execute("rm -rf " .. dir)
  end)

  it("aggregates over the run's range by default", function()
    local row = q.query { kind = "llm_call", aggs = { n = "count", cost = "sum:cost_usd",
                                                     p95 = "p95:latency_ms" } }
    assert.are.equal(1, #row)
    assert.are.equal(5, row[1].n)
    assert.is_near(3.6, row[1].cost, 1e-9)
    assert.is_near(380, row[1].p95, 1e-9) -- 50,100,200,300,400: rank 3.8
    assert.are.equal(1795132800, q.since)
    assert.are.equal(1795219200, q["until"])
  end)

  it("groups by tags, filters, buckets by time", function()
    local rows = q.query { kind = "llm_call", group_by = { "provider" },
                           aggs = { n = "count", cost = "sum:cost_usd" } }
    assert.are.equal(3, #rows)
    assert.are.same({ "<google>", "anthropic", "openai" },
      { rows[1].provider, rows[2].provider, rows[3].provider })
    assert.is_nil(rows[1].cost) -- no values: nil, not 0
    assert.are.equal(2, rows[3].n)
    local err = q.query { kind = "llm_call", where = { status = "error" } }
    assert.are.equal(1, err[1].count)
    local any = q.query { kind = "llm_call", where = { provider = { "openai", "anthropic" } } }
    assert.are.equal(4, any[1].count)
    local hourly = q.query { kind = "llm_call", every = "1h", aggs = { n = "count" } }
    assert.are.equal(3, #hourly)
    assert.are.equal(day .. "10:00:00Z", hourly[1].time)
    assert.are.equal(1795168800, hourly[1].t)
    assert.are.equal(2, hourly[1].n)
    local before = q.query { kind = "llm_call", since = "2026-11-19T00:00:00Z",
                             ["until"] = day .. "00:00:00Z", aggs = { cost = "sum:cost_usd" } }
    assert.are.equal(9, before[1].cost)
    local rel = q.query { kind = "llm_call", since = "13h" } -- back from `now`
    assert.are.equal(3, rel[1].count) -- 11:00, 11:10, 12:00
  end)

  it("lists events newest first", function()
    local evs = q.events { kind = "llm_call", limit = 2 }
    assert.are.equal(2, #evs)
    assert.are.equal(day .. "12:00:00Z", evs[1].ts)
    assert.are.equal("<google>", evs[1].tags.provider)
    assert.are.equal(400, evs[2].fields.latency_ms)
    assert.are.equal("llm_call", evs[2].kind)
    assert.are.equal(5, #q.events { limit = 100 })
    assert.are.equal(2, #q.events { where = { provider = "anthropic" } })
  end)

  it("reads alerts, recommendations and stats", function()
    assert.are.same({}, q.alerts {})
    assert.are.same({}, q.alerts { state = "firing" })
    local recs = q.recommendations {}
    if has_sqlite3 then
      assert.are.equal(1, #recs)
      assert.are.equal("Use a smaller model", recs[1].title)
      assert.are.equal(0.5, recs[1].evidence.share) -- evidence_json decoded
      assert.are.equal(day .. "11:00:00Z", recs[1].last_seen_at)
      assert.are.equal(1795172400, recs[1].last_seen_s)
      assert.are.same({}, q.recommendations { state = "resolved" })
      assert.are.same({}, q.recommendations { since = "2026-11-19T00:00:00Z",
                                              ["until"] = day .. "00:00:00Z" })
    else
      assert.are.same({}, recs)
    end
    local st = q.stats()
    assert.are.equal(6, st.events)
    assert.are.equal("llm_call", st.kinds[1].kind)
    assert.are.equal("2026-11-19T10:00:00Z", st.oldest)
    assert.are.equal("1970-01-01T00:00:00Z", q.time(0))
  end)

  it("checks its arguments", function()
    assert.are.equal('q.query: "kind" must be a string, got nil', err_of(q.query, {}))
    assert.are.equal('q.query: unknown key "agg" (did you mean "aggs"?)',
      err_of(q.query, { kind = "llm_call", agg = { n = "count" } }))
    assert.matches('^q.query: aggs.n: ', err_of(q.query, { kind = "llm_call",
      aggs = { n = "median:latency_ms" } }))
    assert.are.equal('q.query: "since": bad time "soon" (use a duration such as 7d, an RFC 3339 ' ..
      'time or Unix seconds)', err_of(q.query, { kind = "llm_call", since = "soon" }))
    assert.are.equal('q.query: "until" must be after "since"',
      err_of(q.query, { kind = "llm_call", since = day .. "12:00:00Z", ["until"] = day .. "11:00:00Z" }))
    assert.are.equal('q.events: "limit" must be from 1 to 10000, got 0',
      err_of(q.events, { limit = 0 }))
    assert.matches('^q.alerts: ', err_of(q.alerts, { state = "sleeping" }))
    local none, msg = te.report_q { db = dir .. "/missing/telemetry.db" }
    assert.is_nil(none)
    assert.matches("missing/telemetry.db", msg)
  end)

  it("runs a shipped report over it", function()
    te._reset()
    assert(loadfile(root .. "/lua/reports/overview.lua"))()
    local decl = te.declarations()[1]
    local r = te.report_builder { name = "overview", title = decl.title }
    decl.render(q, r, { since = "1d", top = 5, failures = 10 })
    local stats = {}
    for _, b in ipairs(r:document().blocks) do
      if b.type == "stat" then stats[b.label] = b.value end
    end
    assert.is_near(3.6, stats["Total cost"], 1e-9)
    assert.are.equal(5, stats["Calls"])
    assert.is_near(0.8, stats["Success rate"], 1e-9)
    local html = r:render("html")
    assert.is_nil(html:find("<google>", 1, true))
    assert.truthy(html:find("&lt;google&gt;", 1, true))
  end)
end)
