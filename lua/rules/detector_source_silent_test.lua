-- Tests of detector_source_silent.lua (format: docs/rules-testing.md).
local function from(source, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "llm_call", source = source,
                     tags = { provider = "openai", model = "gpt-4o", status = "ok" },
                     fields = { latency_ms = 500 } } }
end

return {
  rule_files = { "detector_source_silent.lua" },
  start = "2026-11-20T10:00:00Z",
  tests = {
    {
      name = "a source silent for 15 minutes fires, a live one does not, events resolve it",
      events = {
        from("svc-a", "5s", "10s", 180),           -- until 29m55s, then silence
        from("svc-b", "5s", "10s", 360),           -- an hour
        from("svc-a", "50m5s", "10s", 6),          -- back after 20 minutes
      },
      expect = {
        { at = "44m", rule = "source-silent", group = { source = "svc-a" }, state = "inactive" },
        { at = "45m", rule = "source-silent", group = { source = "svc-a" }, state = "firing",
          value = 905, summary = "source svc-a silent for 905 s" },
        { at = "46m", rule = "source-silent", group = { source = "svc-b" }, state = "inactive" },
        { at = "51m", rule = "source-silent", group = { source = "svc-a" }, state = "resolved" },
      },
    },
  },
}
