#!/usr/bin/env lua5.4
--[[
gen.lua - realistic telemetry events as NDJSON on stdout (SPEC section 2).

  lua5.4 examples/gen.lua [--count N] [--seed S] [--kinds K1,K2,...]
                          [--start RFC3339|UNIX] [--rate EVENTS_PER_S]
                          [--format ndjson|flat] [--ids]

  --count N     events to write (default 1000)
  --seed S      PRNG seed (default 1). Same seed + same --start => same bytes.
  --kinds L     subset of llm_call,selector_op,run,run_step,agent_span,host_sample
                (default: all, mixed like a busy agentic product)
  --start T     timestamp of the first event, RFC 3339 (UTC, "Z") or Unix
                seconds. Default: now - count/rate, so the last event is "now"
                (then only --seed fixed output is NOT byte-identical: pass --start).
  --rate R      events per second of event time (spacing of ts; default 1000)
  --format F    ndjson: canonical form with tags/fields (default);
                flat: one flat object per line (reserved keys, strings, numbers)
  --ids         add a unique "id" (idempotency key) to every event

Plain Lua 5.4, no modules. Fast enough to feed benchmarks: every constant
string is precomputed and output goes out in large table.concat chunks.
]]

local floor, sqrt, log, exp, cos, pi = math.floor, math.sqrt, math.log, math.exp, math.cos, math.pi
local fmt, concat = string.format, table.concat
local random = math.random

local ALL_KINDS = { "llm_call", "selector_op", "run", "run_step", "agent_span", "host_sample" }
local KIND_WEIGHT = { llm_call = 35, selector_op = 25, run = 3, run_step = 12, agent_span = 15,
                      host_sample = 10 }

local function usage(msg)
  io.stderr:write("gen.lua: ", msg, "\n",
    "usage: lua5.4 examples/gen.lua [--count N] [--seed S] [--kinds LIST] [--start T]",
    " [--rate R] [--format ndjson|flat] [--ids]\n")
  os.exit(2)
end

-- RFC 3339 (UTC or with offset, optional fraction) or Unix seconds -> seconds.
local function parse_time(s)
  local n = tonumber(s)
  if n then return n end
  local y, mo, d, h, mi, sec, frac, tz = s:match(
    "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then usage("--start: expected RFC 3339 or Unix seconds, got '" .. s .. "'") end
  -- days from civil (Howard Hinnant), independent of the local time zone
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  local t = days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
  if frac ~= "" and frac ~= "." then t = t + tonumber("0" .. frac) end
  if tz == "" or tz == "Z" or tz == "z" then return t end
  local sign, oh, om = tz:match("^([+-])(%d%d):?(%d%d)$")
  if not sign then usage("--start: bad time zone '" .. tz .. "'") end
  local off = tonumber(oh) * 3600 + tonumber(om) * 60
  return sign == "+" and t - off or t + off
end

-- ---------------------------------------------------------------- options
local opt = { count = 1000, seed = 1, rate = 1000, format = "ndjson", ids = false }
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    local function val()
      i = i + 1
      if arg[i] == nil then usage(a .. " needs a value") end
      return arg[i]
    end
    if a == "--count" then opt.count = tonumber(val()) or usage("--count: not a number")
    elseif a == "--seed" then opt.seed = tonumber(val()) or usage("--seed: not a number")
    elseif a == "--kinds" then opt.kinds = val()
    elseif a == "--start" then opt.start = parse_time(val())
    elseif a == "--rate" then opt.rate = tonumber(val()) or usage("--rate: not a number")
    elseif a == "--format" then opt.format = val()
    elseif a == "--ids" then opt.ids = true
    elseif a == "-h" or a == "--help" then
      io.stdout:write("usage: lua5.4 examples/gen.lua [--count N] [--seed S] [--kinds LIST]",
        " [--start T] [--rate R] [--format ndjson|flat] [--ids]\n",
        "kinds: llm_call,selector_op,run,run_step,agent_span,host_sample\n")
      os.exit(0)
    else usage("unknown option '" .. a .. "'") end
    i = i + 1
  end
end
if opt.count < 0 or opt.count ~= floor(opt.count) then usage("--count must be an integer >= 0") end
if opt.rate <= 0 then usage("--rate must be > 0") end
if opt.format ~= "ndjson" and opt.format ~= "flat" then usage("--format must be ndjson or flat") end
local enabled = {}
local kinds = {}
if opt.kinds then
  for k in opt.kinds:gmatch("[^,]+") do
    if not KIND_WEIGHT[k] then usage("--kinds: unknown kind '" .. k .. "'") end
    if not enabled[k] then enabled[k] = true; kinds[#kinds + 1] = k end
  end
  if #kinds == 0 then usage("--kinds: empty list") end
else
  for _, k in ipairs(ALL_KINDS) do enabled[k] = true; kinds[#kinds + 1] = k end
end
if not opt.start then opt.start = floor(os.time() - opt.count / opt.rate) end
math.randomseed(floor(opt.seed))
local flat = opt.format == "flat"

-- ---------------------------------------------------------------- helpers
local function pick(list) return list[random(#list)] end
local function gauss()
  local u = random()
  if u < 1e-12 then u = 1e-12 end
  return sqrt(-2 * log(u)) * cos(2 * pi * random())
end
local function lognormal(median, sigma) return median * exp(sigma * gauss()) end
local function clamp(x, lo, hi) if x < lo then return lo elseif x > hi then return hi end return x end
local HEX = {}
for i = 0, 255 do HEX[i] = fmt("%02x", i) end
local function hexid(nbytes)
  local t = {}
  for i = 1, nbytes do t[i] = HEX[random(0, 255)] end
  return concat(t)
end
-- weighted picker: {{value, weight}, ...} -> function
local function weighted(list)
  local total, acc = 0, {}
  for i, e in ipairs(list) do total = total + e[2]; acc[i] = total end
  return function()
    local r = random() * total
    for i = 1, #acc do if r < acc[i] then return list[i][1] end end
    return list[#list][1]
  end
end

-- ---------------------------------------------------------------- domain data
-- price per 1M tokens (input, output), latency median ms per output token
local MODELS = {
  { "openai", "gpt-4o-mini", "fast", 0.15, 0.60, 350, 6 },
  { "openai", "gpt-4o", "capable", 2.50, 10.0, 700, 12 },
  { "openai", "o1", "premium", 15.0, 60.0, 4000, 30 },
  { "anthropic", "claude-3-5-haiku", "fast", 0.80, 4.0, 400, 7 },
  { "anthropic", "claude-3-5-sonnet", "capable", 3.0, 15.0, 800, 14 },
  { "anthropic", "claude-3-opus", "premium", 15.0, 75.0, 2500, 28 },
  { "google", "gemini-1.5-flash", "fast", 0.075, 0.30, 300, 5 },
  { "google", "gemini-1.5-pro", "capable", 1.25, 5.0, 900, 13 },
  { "mistral", "mistral-small", "fast", 0.20, 0.60, 320, 6 },
  { "mistral", "mistral-large", "capable", 2.0, 6.0, 850, 15 },
}
local pick_model = weighted({
  { 1, 14 }, { 2, 12 }, { 3, 2 }, { 4, 12 }, { 5, 16 }, { 6, 2 }, { 7, 10 }, { 8, 5 },
  { 9, 5 }, { 10, 3 } })
local WORKFLOWS = { "code-review", "summarize-doc", "triage-ticket", "extract-invoice",
  "chat-support", "translate", "classify-intent", "write-tests", "refactor", "sql-gen",
  "rag-answer", "plan-task", "email-draft", "meeting-notes", "risk-score", "label-data",
  "search-rerank", "contract-review", "release-notes", "incident-summary" }
local SERVICES = { "svc-api", "svc-worker", "svc-batch", "svc-agent" }
local STRATEGIES = weighted({ { "css", 40 }, { "xpath", 20 }, { "text", 15 }, { "aria", 18 },
  { "visual", 7 } })
local SELECTORS = {}
do
  local pages = { "login", "checkout", "search", "profile", "cart", "settings", "dashboard",
    "invoice", "signup", "orders" }
  local elems = { "submit-btn", "email-input", "password-input", "nav-menu", "search-box",
    "next-page", "price-label", "modal-close", "table-row", "user-avatar", "save-btn",
    "cancel-link", "filter-dropdown", "date-picker", "toast", "tab-header", "breadcrumb",
    "checkbox-terms", "file-upload", "pagination" }
  for _, p in ipairs(pages) do
    for _, e in ipairs(elems) do SELECTORS[#SELECTORS + 1] = { p, "#" .. p .. "-" .. e } end
  end
end
local APPS = { "web-shop", "backoffice", "crm", "mobile-web" }
local PIPELINES = {
  { "train-classifier", { "fetch-data", "validate", "split", "featurize", "train", "evaluate",
    "calibrate", "register", "deploy-canary" } },
  { "nightly-etl", { "extract", "dedupe", "transform", "load", "verify" } },
  { "embed-corpus", { "list-docs", "chunk", "embed", "index", "smoke-test", "publish" } },
  { "finetune-llm", { "download-base", "tokenize", "prepare-shards", "train-epoch-1",
    "train-epoch-2", "train-epoch-3", "eval", "quantize", "export", "upload", "register",
    "announce" } },
  { "eval-suite", { "load-models", "run-benchmarks", "score", "compare", "report",
    "archive", "notify" } },
}
local AGENTS = { "planner", "researcher", "coder", "reviewer", "executor", "critic" }
local TOOLS = { "web_search", "read_file", "write_file", "run_tests", "sql_query", "http_get",
  "browser", "calculator", "vector_search", "none" }
local HOSTS = {}
for i = 1, 24 do
  HOSTS[i] = { fmt("node-%02d", i), (i <= 12) and "eu-west-1" or "us-east-1", i % 3 == 0 }
end

-- ---------------------------------------------------------------- event writers
-- Each returns kind, source, extra top-level (string, may be ""), tags list, fields list.
-- tags: { k1, v1, k2, v2, ... } (strings); fields: { k1, "num-text", ... }

local function llm_call()
  local m = MODELS[pick_model()]
  local r = random()
  local status = r < 0.022 and "error" or (r < 0.03 and "timeout" or "ok")
  local in_tok = floor(lognormal(1200, 0.8)) + 20
  local out_tok = status == "ok" and floor(lognormal(300, 0.7)) + 1 or 0
  local lat = lognormal(m[6] + m[7] * out_tok, 0.35)
  if status == "timeout" then lat = 30000 + random() * 500 end
  local cost = (in_tok * m[4] + out_tok * m[5]) / 1e6
  local tags = { "provider", m[1], "model", m[2], "tier", m[3], "workflow", pick(WORKFLOWS),
    "status", status }
  local fields = { "latency_ms", fmt("%.1f", lat), "cost_usd", fmt("%.6f", cost),
    "input_tokens", tostring(in_tok), "output_tokens", tostring(out_tok) }
  return "llm_call", pick(SERVICES), tags, fields
end

local function selector_op()
  local s = SELECTORS[random(#SELECTORS)]
  local strat = STRATEGIES()
  local r = random()
  local outcome = r < 0.04 and "failed" or (r < 0.14 and "fallback" or "found")
  local retries = outcome == "found" and (random() < 0.1 and 1 or 0) or random(1, 4)
  local conf = outcome == "failed" and random() * 0.4 or clamp(0.97 - 0.25 * random() ^ 3, 0, 1)
  local dur = lognormal(strat == "visual" and 420 or 45, 0.6) * (1 + retries)
  local tags = { "strategy", strat, "selector", s[2], "page", s[1], "app", pick(APPS),
    "outcome", outcome }
  local fields = { "duration_ms", fmt("%.1f", dur), "confidence", fmt("%.3f", conf),
    "retries", tostring(retries) }
  return "selector_op", "ui-bot", tags, fields
end

local function agent_span()
  local trace = hexid(16)
  local agent = pick(AGENTS)
  local tool = pick(TOOLS)
  local status = random() < 0.04 and "error" or "ok"
  local tags = { "agent", agent, "tool", tool, "status", status, "framework", "crew" }
  local fields = { "duration_ms", fmt("%.1f", lognormal(tool == "none" and 900 or 250, 0.7)),
    "input_tokens", tostring(floor(lognormal(800, 0.6))),
    "output_tokens", tostring(floor(lognormal(150, 0.6))) }
  return "agent_span", "agents", tags, fields, trace, hexid(8)
end

local function host_sample()
  local h = HOSTS[random(#HOSTS)]
  local tags = { "host", h[1], "region", h[2] }
  local fields = { "cpu_pct", fmt("%.1f", clamp(lognormal(35, 0.5), 0, 100)),
    "mem_pct", fmt("%.1f", clamp(55 + 12 * gauss(), 0, 100)),
    "disk_used_pct", fmt("%.1f", clamp(60 + 8 * gauss(), 0, 100)),
    "net_rx_mb_s", fmt("%.2f", lognormal(12, 0.8)),
    "net_tx_mb_s", fmt("%.2f", lognormal(6, 0.8)) }
  if h[3] then
    fields[#fields + 1] = "gpu_util_pct"
    fields[#fields + 1] = fmt("%.1f", clamp(lognormal(70, 0.3), 0, 100))
  end
  return "host_sample", "node-exporter", tags, fields
end

-- Runs: a sequence "run started, step 1..N, run finished" advanced one event at a time.
local run_seq = { n = 0 }
local run_counter = 0
local function new_run()
  run_counter = run_counter + 1
  local p = PIPELINES[random(#PIPELINES)]
  local seq = {}
  local run_id = fmt("r-%d-%06d", floor(opt.seed), run_counter)
  local steps = p[2]
  local fail_at = random() < 0.08 and random(#steps) or nil
  local last = fail_at or #steps
  local total_s = 0
  seq[1] = { "run", { "run_id", run_id, "pipeline", p[1], "status", "started" },
    { "steps_total", tostring(#steps) } }
  for i = 1, last do
    local d = lognormal(20, 1.0)
    total_s = total_s + d
    local st = (i == fail_at) and "failed" or "succeeded"
    seq[#seq + 1] = { "run_step", { "run_id", run_id, "pipeline", p[1], "step", steps[i],
      "status", st }, { "step_ordinal", tostring(i), "steps_total", tostring(#steps),
      "duration_s", fmt("%.2f", d) } }
  end
  seq[#seq + 1] = { "run", { "run_id", run_id, "pipeline", p[1], "status",
    fail_at and "failed" or "succeeded" }, { "steps_total", tostring(#steps),
    "duration_s", fmt("%.2f", total_s) } }
  run_seq = { n = 1, seq = seq }
end
local function run_family()
  while true do
    if not run_seq.seq or run_seq.n > #run_seq.seq then new_run() end
    local e = run_seq.seq[run_seq.n]
    run_seq.n = run_seq.n + 1
    if enabled[e[1]] then return e[1], "ml-runner", e[2], e[3] end
  end
end

local WRITERS = { llm_call = llm_call, selector_op = selector_op, agent_span = agent_span,
  host_sample = host_sample, run = run_family, run_step = run_family }
local pick_kind
do
  local wl = {}
  for _, k in ipairs(kinds) do
    -- run + run_step are one family: its weight goes to whichever is listed first
    wl[#wl + 1] = { k, KIND_WEIGHT[k] }
  end
  pick_kind = weighted(wl)
end

-- ---------------------------------------------------------------- timestamps
local day_cache_sec, day_cache_str = nil, nil
local function rfc3339(t)
  local sec = floor(t)
  if sec ~= day_cache_sec then
    day_cache_sec = sec
    day_cache_str = os.date("!%Y-%m-%dT%H:%M:%S", sec)
  end
  local ms = floor((t - sec) * 1000)
  return fmt("%s.%03dZ", day_cache_str, ms)
end

-- ---------------------------------------------------------------- output
local out = {}
local nout = 0
local step = 1 / opt.rate
local t0 = opt.start
local seed_tag = floor(opt.seed)

for i = 0, opt.count - 1 do
  local kind, source, tags, fields, trace, span = WRITERS[pick_kind()]()
  -- jitter inside the slot keeps ts increasing but not perfectly regular
  local ts = rfc3339(t0 + (i + random() * 0.5) * step)
  local p = { '{"ts":"', ts, '","kind":"', kind, '","source":"', source, '"' }
  local n = #p
  if opt.ids then
    p[n + 1] = fmt(',"id":"%s-%d-%d"', kind, seed_tag, i); n = n + 1
  end
  if trace then
    p[n + 1] = ',"trace_id":"'; p[n + 2] = trace; p[n + 3] = '","span_id":"'; p[n + 4] = span
    p[n + 5] = '"'; n = n + 5
  end
  if flat then
    for j = 1, #tags, 2 do
      p[n + 1] = ',"'; p[n + 2] = tags[j]; p[n + 3] = '":"'; p[n + 4] = tags[j + 1]
      p[n + 5] = '"'; n = n + 5
    end
    for j = 1, #fields, 2 do
      p[n + 1] = ',"'; p[n + 2] = fields[j]; p[n + 3] = '":'; p[n + 4] = fields[j + 1]; n = n + 4
    end
    p[n + 1] = "}"
  else
    p[n + 1] = ',"tags":{'; n = n + 1
    for j = 1, #tags, 2 do
      p[n + 1] = j == 1 and '"' or ',"'; p[n + 2] = tags[j]; p[n + 3] = '":"'
      p[n + 4] = tags[j + 1]; p[n + 5] = '"'; n = n + 5
    end
    p[n + 1] = '},"fields":{'; n = n + 1
    for j = 1, #fields, 2 do
      p[n + 1] = j == 1 and '"' or ',"'; p[n + 2] = fields[j]; p[n + 3] = '":'
      p[n + 4] = fields[j + 1]; n = n + 4
    end
    p[n + 1] = "}}"
  end
  nout = nout + 1
  out[nout] = concat(p)
  if nout == 4096 then
    out[nout + 1] = ""
    io.stdout:write(concat(out, "\n"))
    out = {}
    nout = 0
  end
end
if nout > 0 then
  out[nout + 1] = ""
  io.stdout:write(concat(out, "\n"))
end
