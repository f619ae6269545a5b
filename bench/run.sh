#!/bin/sh
# bench/run.sh BUILD_DIR - telemetry-engine benchmarks (called by `make bench`).
#
# Prints figures, asserts nothing. See docs/benchmarks.md for what each
# figure means. Knobs (environment):
#   TE_BENCH_HTTP_EVENTS  events posted in the HTTP throughput run (2000000)
#   TE_BENCH_CLI_EVENTS   events bulk-loaded by `ingest` (1000000)
#   TE_BENCH_LAT_RATE     offered load of the latency run, events/s (50000)
#   TE_BENCH_LAT_SECONDS  length of the latency run (5)
#   TE_BENCH_KEEP=1       keep the temp folder
set -eu

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$BUILD/telemetry-engine
HTTP_EVENTS=${TE_BENCH_HTTP_EVENTS:-2000000}
CLI_EVENTS=${TE_BENCH_CLI_EVENTS:-1000000}
LAT_RATE=${TE_BENCH_LAT_RATE:-50000}
LAT_SECONDS=${TE_BENCH_LAT_SECONDS:-5}

if [ ! -x "$BIN" ]; then
    echo "bench: $BIN not found (build first: make build, or pass the build folder)" >&2
    exit 2
fi
cmake --build "$BUILD" --target bench_http bench_ceiling >/dev/null
command -v lua5.4 >/dev/null || { echo "bench: lua5.4 not found (make deps)" >&2; exit 2; }

T=$(mktemp -d "${TMPDIR:-/tmp}/te-bench-XXXXXX")
SERVE_PID=
cleanup() {
    if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
        kill -9 "$SERVE_PID" 2>/dev/null || true
    fi
    if [ "${TE_BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM

say() { printf '%s\n' "$*" >&2; }

# Peak RSS (VmHWM, KiB) of a live process.
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# Key from a "k=v k=v" line.
kv() { printf '%s\n' "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }

say "== generating $CLI_EVENTS realistic events (examples/gen.lua --seed 1)"
GEN_T0=$(date +%s.%N)
lua5.4 "$ROOT/examples/gen.lua" --count "$CLI_EVENTS" --seed 1 --rate 2000 > "$T/events.ndjson"
GEN_T1=$(date +%s.%N)
GEN_RATE=$(awk -v n="$CLI_EVENTS" -v a="$GEN_T0" -v b="$GEN_T1" 'BEGIN { printf "%.0f", n / (b - a) }')
SIZE_MB=$(awk -v s="$(wc -c < "$T/events.ndjson")" 'BEGIN { printf "%.1f", s / 1048576 }')
say "   $SIZE_MB MiB, gen.lua at $GEN_RATE lines/s"
head -n 200000 "$T/events.ndjson" > "$T/http.ndjson"

# ---------------------------------------------------------------- 1, 2, 4: HTTP
say "== serve (HTTP only, fresh data dir)"
mkdir "$T/serve" "$T/no-scripts"
"$BIN" serve --data "$T/serve" --scripts "$T/no-scripts" --http 127.0.0.1:0 --tcp off --udp off --unix off \
    > "$T/serve.out" 2> "$T/serve.log" &
SERVE_PID=$!
i=0
until grep -q '^ready$' "$T/serve.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$SERVE_PID" 2>/dev/null; then
        say "bench: serve did not start"; cat "$T/serve.log" >&2; exit 1
    fi
    sleep 0.05
done
PORT=$(sed -n 's|^http listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$T/serve.out")
say "   port $PORT"

say "== 1. HTTP ingest: $HTTP_EVENTS events, 2 connections, batches of 1000, durable ack"
OUT1=$("$BUILD/bench_http" --port "$PORT" --file "$T/http.ndjson" --conns 2 --batch 1000 \
        --total "$HTTP_EVENTS")
say "   $OUT1"
HTTP_RATE=$(kv events_per_s "$OUT1")
SERVE_RSS_KIB=$(hwm_kib "$SERVE_PID")

say "== 2. ack latency at $LAT_RATE events/s offered (2 connections, 100 events per request)"
OUT2=$("$BUILD/bench_http" --port "$PORT" --file "$T/http.ndjson" --conns 2 --batch 100 \
        --rate "$LAT_RATE" --seconds "$LAT_SECONDS")
say "   $OUT2"
P50=$(kv p50_ms "$OUT2")
P99=$(kv p99_ms "$OUT2")
ACHIEVED=$(kv achieved_per_s "$OUT2")

kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || say "bench: serve exited with $?"
SERVE_PID=

# ---------------------------------------------------------------- 3: CLI ingest
# The same events with event time from one minute into the previous hour:
# 1,000,000 at 2000/s stay inside it, so no hour closes during figure 3
# whatever the clock says (the events.ndjson of "now" closes one in about
# one run of ten; closing an hour of ~160,000 series is figure 3b).
HOUR0=$(( $(date +%s) / 3600 * 3600 - 3600 ))
lua5.4 "$ROOT/examples/gen.lua" --count "$CLI_EVENTS" --seed 1 --rate 2000 --start $((HOUR0 + 60)) \
    > "$T/cli.ndjson"
# `ingest` of $T/NAME.ndjson into a fresh $T/NAME: sets RUN_RATE (events/s,
# wall) and RUN_RSS_KIB (peak RSS, polled every 50 ms)
ingest_run() {
    mkdir "$T/$1"
    r0=$(date +%s.%N)
    "$BIN" ingest --data "$T/$1" "$T/$1.ndjson" > "$T/$1.out" 2> "$T/$1.err" &
    ING_PID=$!
    RUN_RSS_KIB=0
    while kill -0 "$ING_PID" 2>/dev/null; do
        h=$(hwm_kib "$ING_PID")
        [ -n "$h" ] && [ "$h" -gt "$RUN_RSS_KIB" ] && RUN_RSS_KIB=$h
        sleep 0.05
    done
    wait "$ING_PID" || say "bench: ingest exited with $? ($(tail -n 2 "$T/$1.err"))"
    r1=$(date +%s.%N)
    say "   $(cat "$T/$1.out")"
    RUN_RATE=$(awk -v n="$CLI_EVENTS" -v a="$r0" -v b="$r1" 'BEGIN { printf "%.0f", n / (b - a) }')
    rm -rf "$T/$1.ndjson" "$T/$1"
}

say "== 3. ingest CLI: $CLI_EVENTS events from a file into a fresh data dir"
ingest_run cli
CLI_RATE=$RUN_RATE
CLI_RSS_KIB=$RUN_RSS_KIB

# ---------------------------------------------------------------- 3b: across an hour
say "== 3b. ingest CLI: the same volume with event time across an hour boundary"
lua5.4 "$ROOT/examples/gen.lua" --count "$CLI_EVENTS" --seed 1 --rate 2000 --start $((HOUR0 - 250)) \
    > "$T/cross.ndjson"
ingest_run cross
CROSS_RSS_KIB=$RUN_RSS_KIB

# ---------------------------------------------------------------- 3c: 30 days
# The same volume spread over 30 days: ~1,400 events an hour among the
# month's ~162,000 series (runs, spans, hosts: most active once an hour),
# so every transaction closes hours of sparse series, the costliest case
# for rollup maintenance (storage.md, "Performance of rollups").
say "== 3c. ingest CLI: the same volume over 30 days"
DAY0=$(( $(date +%s) / 86400 * 86400 - 30 * 86400 ))
lua5.4 "$ROOT/examples/gen.lua" --count "$CLI_EVENTS" --seed 1 --rate 0.4 --start "$DAY0" \
    > "$T/month.ndjson"
ingest_run month
MONTH_RATE=$RUN_RATE

# ---------------------------------------------------------------- 5: ceiling
say "== 5. raw ceiling: cJSON parse + SQLite insert (WAL, 10k-row transactions)"
OUT5=$("$BUILD/bench_ceiling" --file "$T/events.ndjson" --db "$T/ceiling.db" --total "$CLI_EVENTS")
say "   $OUT5"
CEIL_RATE=$(kv events_per_s "$OUT5")

# ---------------------------------------------------------------- 6: rules
say "== 6. rules: HTTP ingest with the shipped and with 100 rules, reload latency under load"
OUT6=$(sh "$ROOT/bench/rules.sh" "$BUILD" "$T/http.ndjson" "$T")
R6() { printf '%s\n' "$OUT6" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# ---------------------------------------------------------------- table
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
NPROC=$(nproc 2>/dev/null || echo '?')
echo
echo "telemetry-engine benchmarks ($(uname -m), $NPROC cores, $(date -u +%Y-%m-%dT%H:%MZ))"
printf '%-44s %14s %14s %10s\n' "figure" "measured" "target" "x ceiling"
printf '%-44s %14s %14s %10s\n' "1. HTTP ingest (events/s, durable ack)" "$HTTP_RATE" ">= 250000" \
    "$(ratio "$HTTP_RATE" "$CEIL_RATE")"
printf '%-44s %14s %14s %10s\n' "2. ack latency p50 at ${LAT_RATE}/s (ms)" "$P50" "" ""
printf '%-44s %14s %14s %10s\n' "   ack latency p99 at ${LAT_RATE}/s (ms)" "$P99" "<= 5" ""
printf '%-44s %14s %14s %10s\n' "   achieved rate in that run (events/s)" "$ACHIEVED" "$LAT_RATE" ""
printf '%-44s %14s %14s %10s\n' "3. ingest CLI bulk load (events/s)" "$CLI_RATE" ">= 300000" \
    "$(ratio "$CLI_RATE" "$CEIL_RATE")"
printf '%-44s %14s %14s %10s\n' "   ingest CLI peak RSS (MiB)" "$(mib "$CLI_RSS_KIB")" "<= 64" ""
printf '%-44s %14s %14s %10s\n' "   same, event time across an hour (MiB)" "$(mib "$CROSS_RSS_KIB")" "<= 64" \
    "3b"
printf '%-44s %14s %14s %10s\n' "   same, over 30 days (events/s)" "$MONTH_RATE" "" \
    "3c $(ratio "$MONTH_RATE" "$CLI_RATE") x 3"
printf '%-44s %14s %14s %10s\n' "4. serve peak RSS during 1. (MiB)" "$(mib "$SERVE_RSS_KIB")" "<= 64" ""
printf '%-44s %14s %14s %10s\n' "5. raw ceiling cJSON+SQLite (events/s)" "$CEIL_RATE" "" "1.00"
printf '%-44s %14s %14s %10s\n' "6. HTTP ingest, $(R6 rules_shipped) shipped rules (events/s)" \
    "$(R6 http_shipped)" "" "$(ratio "$(R6 http_shipped)" "$HTTP_RATE") x 1."
printf '%-44s %14s %14s %10s\n' "   HTTP ingest, 100 rules (events/s)" "$(R6 http_100)" "" \
    "$(ratio "$(R6 http_100)" "$HTTP_RATE") x 1."
printf '%-44s %14s %14s %10s\n' "   reload latency p50 under load (ms)" "$(R6 reload_p50_ms)" "" ""
printf '%-44s %14s %14s %10s\n' "   reload latency max of 20 (ms)" "$(R6 reload_p99_ms)" "<= 200" ""
printf '%-44s %14s %14s %10s\n' "   events lost across 20 reloads" "$(R6 reload_lost)" "0" ""
printf '%-44s %14s\n' "   (gen.lua, lines/s)" "$GEN_RATE"

# ---------------------------------------------------------------- 7: detectors
# Quality on labelled data generated in bench/bench_detect.c (fixed seed).
# Targets: recall >= 0.9 spike/shift, >= 0.7 drift; <= 1 false alarm per
# series per week; <= 2000 ns per update.
if cmake --build "$BUILD" --target bench_detect >/dev/null 2>&1; then
    echo
    echo "7. anomaly detectors on labelled data (delay: mean minutes after the anomaly starts)"
    "$BUILD/bench_detect"
fi

# ---------------------------------------------------------------- 8: alerts
# Issue #4 on the real binary (bench/bench_alerts.c starts its own serve and
# loopback webhook receiver): transition -> webhook latency over 200 groups
# (firing + resolved), and 10,000 alerts firing in one evaluation delivered
# by a grouped webhook notifier.
if cmake --build "$BUILD" --target bench_alerts >/dev/null 2>&1; then
    say "== 8. alerts: webhook latency (200 groups), 10000 alerts grouped"
    OUT8=$("$BUILD/bench_alerts" --bin "$BIN" --lat 200 --burst 10000)
    R8() { printf '%s\n' "$OUT8" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
    echo
    echo "8. alerts (webhook to a loopback receiver that answers at once)"
    printf '%-44s %14s %14s %10s\n' "   transition->webhook p50, $(R8 lat_transitions) tr. (ms)" \
        "$(R8 lat_p50_ms)" "" ""
    printf '%-44s %14s %14s %10s\n' "   transition->webhook p99 (ms)" "$(R8 lat_p99_ms)" "<= 50" ""
    printf '%-44s %14s %14s %10s\n' "   event acked->webhook p50 (ms, every=1s)" "$(R8 e2e_p50_ms)" "" ""
    printf '%-44s %14s %14s %10s\n' "   event acked->webhook p99 (ms, every=1s)" "$(R8 e2e_p99_ms)" "" ""
    printf '%-44s %14s %14s %10s\n' "   $(R8 burst_groups) alerts at once: messages" "$(R8 burst_messages)" \
        "few" ""
    printf '%-44s %14s %14s %10s\n' "   alerts delivered in 60 s (max per message)" \
        "$(R8 burst_alerts) ($(R8 burst_max_per_msg))" "$(R8 burst_groups)" ""
    printf '%-44s %14s %14s %10s\n' "   evaluations that fired them" "$(R8 burst_evals)" "1" ""
    printf '%-44s %14s %14s %10s\n' "   firing->first message (ms, group_wait 1s)" \
        "$(R8 burst_fire_first_ms)" "" ""
    printf '%-44s %14s %14s %10s\n' "   first->last message (ms)" "$(R8 burst_first_last_ms)" "" ""
    printf '%-44s %14s %14s %10s\n' "   serve peak RSS before / after (MiB)" \
        "$(mib "$(R8 serve_hwm_before_kib)") / $(mib "$(R8 serve_hwm_kib)")" "<= 64" ""
fi

# ---------------------------------------------------------------- 9: rollups
# Issue #5: 10,000,000 llm_call events through the store API, then the p95
# query and the overview report over 30 days, rollup maintenance cost and
# bytes per event (bench/rollup.sh; TE_BENCH_ROLLUP_EVENTS to shrink it).
if [ "${TE_BENCH_SKIP_ROLLUP:-0}" != 1 ]; then
    say "== 9. rollups ($(printf '%s' "${TE_BENCH_ROLLUP_EVENTS:-10000000}") events)"
    echo
    sh "$(dirname "$0")/rollup.sh" "$BUILD" 2>/dev/null | sed -n '/^figure/,$p' | tail -n +2
fi
