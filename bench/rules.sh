#!/bin/sh
# bench/rules.sh BUILD_DIR EVENTS_FILE TMPDIR - the cost of rules (issue #3),
# called by bench/run.sh. Prints figures as "key=value" lines on stdout:
#   rules_shipped=N http_shipped=EV/S     HTTP ingest with lua/rules loaded
#   http_100=EV/S                          with 100 generated rules
#   reload_p50_ms= reload_p99_ms=          file write -> new version in /v1/rules
#   reload_lost=N                          acked events missing after reloads under load
set -eu
BUILD=$1 FILE=$2 T=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$BUILD/telemetry-engine
EVENTS=${TE_BENCH_RULES_EVENTS:-1000000}
PID=

say() { printf '%s\n' "$*" >&2; }
kv() { printf '%s\n' "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
stop() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=; }
trap stop EXIT

# start DATA SCRIPTS: serve HTTP only; sets PID and PORT.
start() {
    rm -rf "$1"; mkdir -p "$1"
    "$BIN" serve --data "$1" --scripts "$2" --http 127.0.0.1:0 --tcp off --udp off --unix off \
        > "$1.out" 2> "$1.log" &
    PID=$!
    i=0
    until grep -q '^ready$' "$1.out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 400 ] || ! kill -0 "$PID" 2>/dev/null; then
            say "bench: serve did not start"; cat "$1.log" >&2; exit 1
        fi
        sleep 0.05
    done
    PORT=$(sed -n 's|^http listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$1.out")
}

nrules() { curl -s "http://127.0.0.1:$PORT/v1/rules" | grep -o '"type":' | wc -l; }

# 1. the shipped rules
start "$T/r-shipped" "$ROOT/lua"
N=$(nrules)
OUT=$("$BUILD/bench_http" --port "$PORT" --file "$FILE" --conns 2 --batch 1000 --total "$EVENTS")
say "   shipped rules ($N): $OUT"
echo "rules_shipped=$N"
echo "http_shipped=$(kv events_per_s "$OUT")"
stop

# 2. 100 rules over the five domains, 10 files of 10
mkdir -p "$T/r100/rules"
for f in 0 1 2 3 4 5 6 7 8 9; do
    cat > "$T/r100/rules/gen$f.lua" <<EOF
local te = require "te"
local kinds = { {"llm_call", {"provider","model"}, "latency_ms", "status", "error"},
                {"selector_op", {"strategy"}, "duration_ms", "outcome", "failed"},
                {"llm_call", {"workflow"}, "cost_usd", "status", "error"},
                {"host_sample", {"host"}, "cpu_pct", "region", "none"},
                {"agent_span", {"agent"}, "duration_ms", "status", "error"} }
for i = 1, 10 do
  local k = kinds[(i + $f) % #kinds + 1]
  te.rule {
    name = "gen-$f-" .. i, kind = k[1], group_by = k[2], window = "5m", every = "30s",
    aggs = { n = te.count(), bad = te.count{ [k[4]] = k[5] }, p95 = te.quantile(k[3], 0.95),
             avg = te.avg(k[3]) },
    condition = function(a) return a.n > 1e12 end,
  }
end
EOF
done
start "$T/r-100" "$T/r100"
N=$(nrules)
OUT=$("$BUILD/bench_http" --port "$PORT" --file "$FILE" --conns 2 --batch 1000 --total "$EVENTS")
say "   generated rules ($N): $OUT"
echo "http_100=$(kv events_per_s "$OUT")"
stop

# 3. reload latency and loss under full load: rewrite one rule file 20
# times while two clients post; each time wait until /v1/rules shows the
# new version.
mkdir -p "$T/rl/rules"
cp "$ROOT"/lua/rules/*.lua "$T/rl/rules/" 2>/dev/null || true
rm -f "$T"/rl/rules/*_test.lua
start "$T/r-reload" "$T/rl"
"$BUILD/bench_http" --port "$PORT" --file "$FILE" --conns 2 --batch 1000 --total "$EVENTS" \
    > "$T/rl-load.out" &
LOAD=$!
: > "$T/rl-ms"
for i in $(seq 1 20); do
    cat > "$T/rl/rules/zz_reload.lua" <<EOF
local te = require "te"
te.rule { name = "reload-probe", kind = "llm_call", aggs = { n = te.count() },
          condition = function(a) return a.n < 0 end, summary = "probe $i" }
EOF
    t0=$(date +%s%N)
    want=$(sha256sum "$T/rl/rules/zz_reload.lua" | cut -c1-8)
    while :; do
        body=$(curl -s "http://127.0.0.1:$PORT/v1/rules")
        v=$(printf '%s' "$body" | tr '{' '\n' | grep 'zz_reload.lua' | sed -n 's/.*"version":"\([0-9a-f]*\)".*/\1/p' | head -1)
        [ -n "$v" ] && [ "$v" != "$(cat "$T/rl-last" 2>/dev/null)" ] && break
        t=$(date +%s%N)
        [ $(( (t - t0) / 1000000 )) -gt 5000 ] && break
    done
    t1=$(date +%s%N)
    echo "$v" > "$T/rl-last"
    echo $(( (t1 - t0) / 1000 )) >> "$T/rl-ms"
    : "$want"
done
wait "$LOAD" || true
ACKED=$(kv events "$(cat "$T/rl-load.out")")
STORED=$("$BIN" query --data "$T/r-reload" --since 3650d --until 2100-01-01T00:00:00Z \
    --kind llm_call --agg count --format csv | tail -n 1 | tr -d '\r')
ALL=$("$BIN" db stats --data "$T/r-reload" | awk '$1 == "events" { print $2 }')
stop
sort -n "$T/rl-ms" > "$T/rl-sorted"
P50=$(awk '{ a[NR] = $1 } END { printf "%.1f", a[int(NR * 0.5 + 0.5)] / 1000 }' "$T/rl-sorted")
P99=$(awk '{ a[NR] = $1 } END { printf "%.1f", a[NR] / 1000 }' "$T/rl-sorted")
say "   reloads: p50 ${P50} ms, max ${P99} ms; acked $ACKED, stored $ALL (llm_call $STORED)"
echo "reload_p50_ms=$P50"
echo "reload_p99_ms=$P99"
echo "reload_lost=$((ACKED - ALL))"
