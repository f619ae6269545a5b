-- telemetry.lua - example configuration for telemetry-engine.
--
-- Use it with:   telemetry-engine serve --config examples/telemetry.lua
-- Every block is optional; what is left out keeps its default (shown here).
-- Relative paths are taken from this file's folder; command-line flags
-- (--data, --http, ...) override what is written here.
-- Reference: docs/configuration.md

storage {
  path       = "../data/telemetry.db",   -- the SQLite database (one file, WAL)
  durability = "process",                -- "process" (survives a crash) or "power" (fsync)
  retention  = { raw = "30d", ["1m"] = "90d", ["1h"] = "400d" },
  queue_events = 65536,                  -- bound of the ingest queue (back-pressure)
}

listen {
  http = "127.0.0.1:4380",               -- "off" disables a listener
  tcp  = "127.0.0.1:4381",
  udp  = "127.0.0.1:4382",
  unix = "../data/telemetry.sock",
  max_body = "16MiB",
}

scripts { dir = "../lua" }

log { level = "info" }

-- Notifiers for alerts ("stdout" always exists).
notifier "log"  { type = "file", path = "../data/alerts.jsonl" }
notifier "hook" { type = "webhook", url = "http://127.0.0.1:9000/alerts", timeout = "5s", retries = 3 }
notifier "slack-ops" { type = "slack", url = env "SLACK_WEBHOOK_URL" }
-- notifier "mail" { type = "email", smtp = "smtp://127.0.0.1:2525",
--                   from = "te@example.org", to = { "oncall@example.org" } }
-- notifier "page" { type = "exec", command = { "/usr/local/bin/page", "--team", "llm" } }

-- Tail a JSONL file written by another tool (one event per line).
-- source "llm-calls" { type = "tail", path = "../.empathy/llm_calls.jsonl", kind = "llm_call" }

-- Bearer tokens (store the SHA-256 of the token, never the token):
--   printf %s "$TOKEN" | sha256sum
-- auth { tokens = { { name = "ci", sha256 = "<64 hex digits>", scopes = { "ingest" } } } }

-- Redaction at ingest: matches in tag values and body strings are stored as
-- "[REDACTED:email]", "[REDACTED:card]", ... (docs/redaction.md).
redact { builtin = { "email", "card", "api_key" }, patterns = { "secret-[0-9a-f]{16}" } }
