#!/bin/sh
# examples/quickstart.sh - telemetry-engine in one minute.
#
#   sh examples/quickstart.sh [BUILD_DIR]
#
# Builds the engine if needed, starts `serve` on a temporary data folder
# (HTTP on a free loopback port, other listeners off), posts 5,000
# realistic events made by examples/gen.lua, asks a few questions over
# HTTP and with the CLI, then stops the engine with SIGTERM (it drains and
# commits). Needs curl and lua5.4. Set KEEP=1 to keep the data folder.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
BIN=$BUILD/telemetry-engine

if [ ! -x "$BIN" ]; then
    echo "== building into $BUILD"
    cmake -S "$ROOT" -B "$BUILD" >/dev/null
    cmake --build "$BUILD" --target telemetry-engine >/dev/null
fi

DATA=$(mktemp -d "${TMPDIR:-/tmp}/te-quickstart-XXXXXX")
PID=
finish() {
    [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null && kill -TERM "$PID" && wait "$PID" || true
    if [ "${KEEP:-0}" = 1 ]; then echo "data kept in $DATA"; else rm -rf "$DATA"; fi
}
trap finish EXIT INT TERM

echo "== starting: telemetry-engine serve --data $DATA --http 127.0.0.1:0"
"$BIN" serve --data "$DATA" --http 127.0.0.1:0 --tcp off --udp off --unix off \
    > "$DATA/serve.out" 2> "$DATA/serve.log" &
PID=$!
i=0
until grep -q '^ready$' "$DATA/serve.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 200 ] && kill -0 "$PID" 2>/dev/null || { cat "$DATA/serve.log"; exit 1; }
    sleep 0.05
done
URL=$(sed -n 's|^http listening on \(http://[^ ]*\).*|\1|p' "$DATA/serve.out")
echo "   listening on $URL"

echo "== posting 5000 events (llm_call, selector_op, runs, agent spans, host samples)"
lua5.4 "$ROOT/examples/gen.lua" --count 5000 --seed 42 --rate 5 |
    curl -sS -X POST -H 'Content-Type: application/x-ndjson' --data-binary @- "$URL/v1/events"
echo

echo "== a bad event is rejected with its index, the good one is stored"
printf '%s\n' '{"kind":"demo","fields":{"latency_ms":"slow"}}' '{"kind":"demo","fields":{"latency_ms":12}}' |
    curl -sS -X POST --data-binary @- "$URL/v1/events"
echo

echo "== LLM cost and p95 latency per provider, last 24 h (GET /v1/query)"
curl -sS "$URL/v1/query?kind=llm_call&group_by=provider&agg=count,sum:cost_usd,p95:latency_ms"
echo

echo "== the same question with the CLI (reads the database while serve runs)"
"$BIN" query --data "$DATA" --kind llm_call --group-by provider --agg count,sum:cost_usd,p95:latency_ms

echo "== selector failures by strategy"
"$BIN" query --data "$DATA" --kind selector_op --where outcome=failed --group-by strategy --agg count

echo "== the 3 newest host samples"
"$BIN" events --data "$DATA" --kind host_sample --limit 3

echo "== database"
"$BIN" db stats --data "$DATA"

echo "== stopping (SIGTERM: drain, commit, exit 0)"
kill -TERM "$PID"
wait "$PID"
PID=
echo "   done"
