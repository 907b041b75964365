#!/usr/bin/env bash
# Benchmark of the release binary with real MQTT publishers on loopback. Prints three tables.
#
#   scripts/bench.sh                      # everything (about 45 minutes)
#   BENCH_QUICK=1 scripts/bench.sh        # shorter runs, for a smoke check of the script
#   BENCH_ONLY=memory scripts/bench.sh    # only the memory-after-bursts table
#   BENCH_ONLY=storage scripts/bench.sh   # only the storage table (about 35 minutes)
#
# Measures: sustained persisted readings/s with 20 QoS 1 publishers (and loss), the same
# publishers relayed by Debian's Mosquitto to one subscriber (ratio), publish→WebSocket
# latency, resident memory idle/peak, disk bytes written per stored reading at 10 msg/s with
# the default commit interval, binary size and time from start to healthy.
#
# Second table: resident memory after bursts, for the glibc release binary and the static musl
# build (x86_64-unknown-linux-musl here; the Raspberry Pi's aarch64 musl build has the same
# allocator): idle, then after 200 logins (argon2, 4 clients), 20 pages of the largest size
# (10 000 readings with 32 extra channels) and 10 reports. BENCH_GLIBC_BIN / BENCH_MUSL_BIN
# measure other binaries instead of building them (e.g. an older release, for comparison).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${BENCH_QUICK:-0}
PUBLISHERS=${BENCH_PUBLISHERS:-20}
LOAD_SECONDS=${BENCH_LOAD_SECONDS:-30}
FIELD_SECONDS=${BENCH_FIELD_SECONDS:-120}
if [ "$QUICK" = 1 ]; then LOAD_SECONDS=5; FIELD_SECONDS=15; fi

for tool in mosquitto_sub curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing (apt-get install mosquitto-clients curl)"; exit 1; }
done
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQUITTO" ] || { echo "bench: mosquitto missing (apt-get install mosquitto)"; exit 1; }

# BENCH_BIN_DIR: take biogestor and the bench_* helpers from that folder instead of building
# them (e.g. a copy of an earlier build, to compare, or to keep measuring while rebuilding).
if [ -n "${BENCH_BIN_DIR:-}" ]; then
  BIN=$BENCH_BIN_DIR/biogestor
  LAT=$BENCH_BIN_DIR/bench_latency
  PROD=$BENCH_BIN_DIR/bench_production
  MEM=$BENCH_BIN_DIR/bench_memory
else
  cargo build --release --locked --bin biogestor --example bench_latency --example bench_production \
    --example bench_memory >/dev/null
  BIN=target/release/biogestor
  LAT=target/release/examples/bench_latency
  PROD=target/release/examples/bench_production
  MEM=target/release/examples/bench_memory
fi
ADMIN_PASS=Bench-Admin-2026
MUSL_TARGET=x86_64-unknown-linux-musl
GLIBC_BIN=${BENCH_GLIBC_BIN:-$BIN}
MUSL_BIN=${BENCH_MUSL_BIN:-}
if [ -z "$MUSL_BIN" ] && [ "${BENCH_ONLY:-}" != storage ]; then
  if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$MUSL_TARGET"; then
    rustup target add "$MUSL_TARGET" >/dev/null
  fi
  # ring (TLS) compiles a little C: the host's gcc builds it for the musl target too, as
  # cross-build.sh does for the Raspberry Pi's musl build.
  CC_x86_64_unknown_linux_musl=${CC_x86_64_unknown_linux_musl:-gcc} \
    cargo build --release --locked --target "$MUSL_TARGET" --bin biogestor >/dev/null
  MUSL_BIN=target/$MUSL_TARGET/release/biogestor
fi
MEM_LOGINS=${BENCH_MEM_LOGINS:-200}
MEM_PAGES=${BENCH_MEM_PAGES:-20}
MEM_REPORTS=${BENCH_MEM_REPORTS:-10}
MEM_PAGE_LIMIT=10000   # the largest page /api/dashboard/readings/ serves
MEM_EXTRA=32           # the most extra channels a reading keeps

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do stop_pid "$p" KILL; done
  rm -rf "$WORK"
}
# ours PID: whether PID is still a running child of this shell (not exited, not a process that
# took a freed pid since), so it is never signalled by mistake.
ours() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  set -- $stat
  [ "$1" != Z ] && [ "$2" = "$BASHPID" ]
}
# stop_pid PID [SIGNAL]: sends SIGNAL (TERM by default) to a child and waits at most 30 s for
# it to end (then SIGKILL), then reaps it. `wait` is only reached once the child is gone or
# killed, so it cannot block (a bare `wait`, or one on a pid that is no longer ours, could).
stop_pid() {
  local pid=$1 i
  if ours "$pid"; then kill -"${2:-TERM}" "$pid" 2>/dev/null || true; fi
  for i in $(seq 1 300); do ours "$pid" || break; sleep 0.1; done
  if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
  local kept=()
  for i in "${PIDS[@]}"; do [ "$i" = "$pid" ] || kept+=("$i"); done
  PIDS=("${kept[@]}")
}
stop_server() { stop_pid "$SERVER" TERM; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
write_bytes() { awk '/^write_bytes/ {print $2}' "/proc/$1/io"; }
# settled_kb PID: resident memory once it stops moving (two samples 250 ms apart within
# 512 KiB; at most 5 s), so freed memory on its way back is not counted.
settled_kb() {
  local last cur i
  last=$(rss_kb "$1")
  for i in $(seq 1 20); do
    sleep 0.25
    cur=$(rss_kb "$1")
    [ $((cur > last ? cur - last : last - cur)) -lt 512 ] && break
    last=$cur
  done
  echo "$cur"
}
mb() { python3 -c "print(round($1/1024,1))"; }
stat_json() { curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP/api/dashboard/stats/" | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }

# start_server DATA_DIR: starts $BIN with default commit interval, anonymous MQTT, an
# administrator (created before start when missing) and TOKEN set to its access token.
start_server() {
  HTTP=$(free_port); MQTT=$(free_port)
  while [ "$MQTT" = "$HTTP" ]; do MQTT=$(free_port); done
  BIOGESTOR_STORAGE__DATA_DIR="$1" "$BIN" user add --username bench --password "$ADMIN_PASS" \
    --email bench@biogestor.example --admin --config config.toml >/dev/null 2>&1 || true
  local t0; t0=$(now)
  # The publishers are all anonymous, which the per-user connection cap counts as one user.
  BIOGESTOR_HTTP__BIND=127.0.0.1:$HTTP BIOGESTOR_MQTT__BIND=127.0.0.1:$MQTT \
  BIOGESTOR_STORAGE__DATA_DIR="$1" BIOGESTOR_MQTT__ALLOW_ANONYMOUS=true \
  BIOGESTOR_MQTT__MAX_CONNECTIONS_PER_USER=$((PUBLISHERS + 8)) \
  BIOGESTOR_LOG__LEVEL=warn "$BIN" serve --config config.toml >>"$WORK/serve.log" 2>&1 &
  SERVER=$!; PIDS+=("$SERVER")
  local deadline=$(( $(date +%s) + 120 ))
  until curl -fsS -o /dev/null "http://127.0.0.1:$HTTP/healthz" 2>/dev/null; do
    if ! kill -0 "$SERVER" 2>/dev/null || [ "$(date +%s)" -gt "$deadline" ]; then
      echo "bench: the service did not become healthy; its log:" >&2; tail -20 "$WORK/serve.log" >&2; exit 1
    fi
    sleep 0.005
  done
  STARTUP_MS=$(python3 -c "print(round(($(now)-$t0)*1000))")
  TOKEN=$(curl -fsS -H 'Content-Type: application/json' \
    -d "{\"username\":\"bench\",\"password\":\"$ADMIN_PASS\"}" \
    "http://127.0.0.1:$HTTP/api/iniciar-sesion/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')
}

# publishers PORT SECONDS OUTDIR [INTERVAL]: PUBLISHERS simulate processes at QoS 1, each
# sending one message per INTERVAL seconds (0 = as fast as acknowledged).
publishers() {
  local pids=() interval=${4:-0}
  rm -f "$3"/pub-*.out
  for i in $(seq 1 "$PUBLISHERS"); do
    "$BIN" simulate --port "$1" --interval "$interval" --duration "$2" --qos 1 --mode both \
      --seed "$i" --client-id "bench-$i" >"$3/pub-$i.out" 2>&1 &
    pids+=($!)
  done
  local fail=0
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  # To stderr: this runs inside $(...).
  [ "$fail" = 0 ] || { { echo "bench: a publisher failed:"; cat "$3"/pub-*.out; } >&2; exit 1; }
  cat "$3"/pub-*.out | awk '/^published/ {s+=$2} END {print s}'
}

# load_run PER_PUBLISHER_RATE SECONDS: offered load against the running server; sets
# RUN_PUBLISHED RUN_STORED RUN_DROPPED, RUN_RATE (persisted readings/s from the first publish
# to the last commit) and RUN_DRAIN (seconds the store needed after the publishers finished).
load_run() {
  local interval; interval=$(python3 -c "print(0 if $1 == 0 else 1/$1)")
  local s0 d0 t0 tp
  s0=$(stat_json lecturas_total); d0=$(stat_json mensajes_perdidos); t0=$(now)
  RUN_PUBLISHED=$(publishers "$MQTT" "$2" "$WORK/pub" "$interval")
  tp=$(now)
  local target=$((s0 + d0 + RUN_PUBLISHED)) waited=0
  while [ $(( $(stat_json lecturas_total) + $(stat_json mensajes_perdidos) )) -lt "$target" ] && [ "$waited" -lt 600 ]; do
    sleep 0.05; waited=$((waited + 1))
  done
  local td; td=$(now)
  RUN_STORED=$(( $(stat_json lecturas_total) - s0 ))
  RUN_DROPPED=$(( $(stat_json mensajes_perdidos) - d0 ))
  RUN_RATE=$(python3 -c "print(round($RUN_STORED/($td-$t0)))")
  RUN_DRAIN=$(python3 -c "print(round($td-$tp, 2))")
}

# memory_row LABEL BINARY: one row of the memory table, on a fresh copy of the seeded store.
memory_row() {
  local label=$1 dir idle logins pages reports peak page_info
  dir=$(mktemp -d "$WORK/data-mem-XXXX")
  cp -a "$WORK/data-mem-seed/." "$dir/"
  local saved=$BIN
  BIN=$2
  start_server "$dir"
  BIN=$saved
  idle=$(settled_kb "$SERVER")
  "$MEM" logins "$HTTP" bench "$ADMIN_PASS" "$MEM_LOGINS" 4 >/dev/null
  logins=$(settled_kb "$SERVER")
  page_info=$("$MEM" pages "$HTTP" "$TOKEN" "$MEM_PAGES" "$MEM_PAGE_LIMIT")
  pages=$(settled_kb "$SERVER")
  "$PROD" report "$HTTP" "$TOKEN" "$MEM_REPORTS" >/dev/null
  reports=$(settled_kb "$SERVER")
  peak=$(hwm_kb "$SERVER")
  stop_server
  rm -rf "$dir"
  MEM_PAGE_BYTES=$(sed -n 's/.*bytes_per_page=\([0-9]*\).*/\1/p' <<<"$page_info")
  MEM_ROWS+="| $label | $(mb "$idle") | $(mb "$logins") | $(mb "$pages") | $(mb "$reports") | $(mb "$peak") |"$'\n'
}

memory_bursts() {
  echo "== memory after bursts: $MEM_LOGINS logins, $MEM_PAGES pages of $MEM_PAGE_LIMIT readings ($MEM_EXTRA extra channels), $MEM_REPORTS reports"
  "$PROD" seed "$WORK/data-mem-seed" $((2 * MEM_PAGE_LIMIT)) 2 "$MEM_EXTRA" >/dev/null
  MEM_ROWS=""
  memory_row "glibc ($GLIBC_BIN)" "$GLIBC_BIN"
  memory_row "musl static ($MUSL_BIN)" "$MUSL_BIN"
  rm -rf "$WORK/data-mem-seed"
}

print_memory_table() {
  printf '\ncommand: %s (BENCH_MEM_LOGINS=%s BENCH_MEM_PAGES=%s BENCH_MEM_REPORTS=%s), %s cores\n' \
    "$0" "$MEM_LOGINS" "$MEM_PAGES" "$MEM_REPORTS" "$(nproc)"
  printf '| resident memory, MB | idle | after %s logins | after %s pages of %s readings (%s B each) | after %s reports | peak |\n' \
    "$MEM_LOGINS" "$MEM_PAGES" "$MEM_PAGE_LIMIT" "${MEM_PAGE_BYTES:-?}" "$MEM_REPORTS"
  printf '|---|---|---|---|---|---|\n'
  printf '%s' "$MEM_ROWS"
  printf '| goal | | ≤ idle + 40 | ≤ idle + 40 | ≤ idle + 40 | < 256 (MemoryMax) |\n'
}

# ---------------------------------------------------------------------------------------------
# Storage: what the store writes to the card and keeps, with JSON readings of 5 channels.

# five_channels RATE SECONDS: prints one JSON reading of 5 channels per line, RATE lines a
# second for SECONDS (0 = no pause), for `mosquitto_pub -l`.
five_channels() {
  python3 - "$1" "$2" <<'PY'
import json, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
n = int(rate * seconds) if rate > 0 else int(seconds)
start, gas = time.monotonic(), 0.0
for i in range(n):
    gas += 0.0042
    print(json.dumps({"presion": round(1006 + (i % 17) * 0.1, 2), "temperatura": round(35 + (i % 11) * 0.1, 2),
                      "humedad": round(60 + (i % 13) * 0.5, 2), "calidad": round(60 + (i % 7) * 0.3, 2),
                      "gas_total_m3": round(gas, 6)}), flush=rate > 0)
    if rate > 0:
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
PY
}

store_bytes() { stat -c %s "$1/biogestor.redb"; }

# storage_rate RATE COMMIT_MS SECONDS OUT: a fresh service with that commit interval receives
# RATE readings/s from one QoS 1 publisher; after STORAGE_WARMUP s (start-up excluded) the
# bytes it writes (/proc/PID/io write_bytes) are counted for SECONDS. Writes `key=value` lines
# to OUT. Runs in a subshell of its own (several at once).
storage_rate() (
  local rate=$1 commit_ms=$2 seconds=$3 out=$4 dir gen w0 w1 r0 r1 t0 t1 f0 f1
  dir=$(mktemp -d "$WORK/data-rate-XXXX")
  BIOGESTOR_STORAGE__COMMIT_INTERVAL_MS=$commit_ms start_server "$dir"
  trap 'kill $SERVER ${gen:-} 2>/dev/null || true' EXIT
  five_channels "$rate" $((STORAGE_WARMUP + seconds + 5)) |
    mosquitto_pub -h 127.0.0.1 -p "$MQTT" -t Prueba -q 1 -i "bench-storage-$rate-$commit_ms" -l &
  gen=$!
  sleep "$STORAGE_WARMUP"
  w0=$(write_bytes "$SERVER"); r0=$(stat_json lecturas_total); f0=$(store_bytes "$dir"); t0=$(now)
  sleep "$seconds"
  w1=$(write_bytes "$SERVER"); r1=$(stat_json lecturas_total); f1=$(store_bytes "$dir"); t1=$(now)
  wait "$gen" 2>/dev/null || true
  stop_server
  python3 - "$rate" "$w0" "$w1" "$t0" "$t1" "$r0" "$r1" "$f0" "$f1" >"$out" <<'PY'
import sys
rate, w0, w1, t0, t1, r0, r1, f0, f1 = map(float, sys.argv[1:])
bps = (w1 - w0) / (t1 - t0)
print(f"bps={bps:.0f}")
print(f"kbs={bps / 1000:.2f}")
print(f"gbday={bps * 86400 / 1e9:.2f}")
print(f"per_reading={bps / rate / 1000:.2f}")
print(f"stored={r1 - r0:.0f}")
print(f"grew={f1 - f0:.0f}")
PY
  rm -rf "$dir"
)

storage_bench() {
  local q=$QUICK
  # A full run measures 1800 s, the default checkpoint interval, so the durable database
  # commit every 30 minutes is counted along with the journal's appends.
  local fast=${BENCH_STORAGE_SECONDS:-$([ "$q" = 1 ] && echo 20 || echo 1800)}
  local slow=${BENCH_STORAGE_SLOW_SECONDS:-$([ "$q" = 1 ] && echo 60 || echo 1800)}
  STORAGE_WARMUP=${BENCH_STORAGE_WARMUP:-$([ "$q" = 1 ] && echo 5 || echo 10)}
  local n=${BENCH_STORAGE_READINGS:-$([ "$q" = 1 ] && echo 20000 || echo 100000)}
  local big=${BENCH_CHART_READINGS:-$([ "$q" = 1 ] && echo 500000 || echo 5000000)}
  echo "== storage: bytes written at 1 and 10 readings/s, commit interval 1 s (${fast}s) and 60 s (${slow}s), 4 services at once"
  local jobs=() rate ms secs goal
  for ms in 1000 60000; do
    for rate in 1 10; do
      secs=$([ "$ms" = 1000 ] && echo "$fast" || echo "$slow")
      storage_rate "$rate" "$ms" "$secs" "$WORK/storage-$rate-$ms" &
      jobs+=($!)
    done
  done
  for p in "${jobs[@]}"; do wait "$p" || { echo "bench: a storage run failed" >&2; exit 1; }; done
  STORAGE_ROWS=""
  for ms in 1000 60000; do
    for rate in 1 10; do
      # shellcheck disable=SC1090
      . "$WORK/storage-$rate-$ms"
      secs=$([ "$ms" = 1000 ] && echo "$fast" || echo "$slow")
      case "$rate/$ms" in 10/1000) goal='≤ 8 kB/s' ;; 10/60000) goal='≤ 0.4 kB/s' ;; *) goal='' ;; esac
      STORAGE_ROWS+="| written, $rate reading/s, commit interval $((ms / 1000)) s (${secs} s steady, $((secs / 1800)) checkpoint) | $kbs kB/s ($gbday GB/day), $per_reading kB per reading ($stored stored) | $goal |"$'\n'
    done
  done

  echo "== storage: $n readings from 4 QoS 1 publishers as fast as acknowledged (file growth, ingest rate)"
  local dir f0 f1 t0 t1 w0 w1
  dir=$(mktemp -d "$WORK/data-grow-XXXX")
  five_channels 0 "$n" >"$WORK/five.jsonl"
  start_server "$dir"
  f0=$(store_bytes "$dir"); w0=$(write_bytes "$SERVER"); t0=$(now)
  # Four publishers, a quarter of the lines each.
  split -n l/4 "$WORK/five.jsonl" "$WORK/five-part-"
  local pubs=() part
  for part in "$WORK"/five-part-*; do
    mosquitto_pub -h 127.0.0.1 -p "$MQTT" -t Prueba -q 1 -i "bench-bulk-${part##*-}" -l <"$part" &
    pubs+=($!)
  done
  for part in "${pubs[@]}"; do wait "$part"; done
  local waited=0
  while [ "$(stat_json lecturas_total)" -lt "$n" ] && [ "$waited" -lt 6000 ]; do sleep 0.05; waited=$((waited + 1)); done
  t1=$(now); w1=$(write_bytes "$SERVER")
  local stored; stored=$(stat_json lecturas_total)
  stop_server
  f1=$(store_bytes "$dir")
  STORAGE_ROWS+="| stored per reading: file growth over $stored readings (default window) | $(python3 -c "print(f'{($f1-$f0)/max(1,$stored):.1f} B ({($f1-$f0)/1e6:.1f} MB)')") | |"$'\n'
  STORAGE_ROWS+="| burst ingest: $n readings from 4 QoS 1 publishers unthrottled, persisted/s from first publish to last commit; written per reading | $(python3 -c "print(f'{$stored/($t1-$t0):.0f}/s; {($w1-$w0)/max(1,$stored):.0f} B')") | unchanged |"$'\n'
  rm -rf "$dir" "$WORK"/five*

  echo "== storage: stage with $big readings over 60 days: 30-day chart and production/current"
  local seed chart
  seed=$("$PROD" seed "$WORK/data-chart" "$big" 60)
  start_server "$WORK/data-chart"
  local from to
  # On an hour boundary the answer comes from the 10-minute rollups; a second later it has to
  # scan the raw readings (both are measured).
  from=$(date -u -d '30 days ago' +%Y-%m-%dT%H:00:00Z); to=$(date -u -d '+1 hour' +%Y-%m-%dT%H:00:00Z)
  chart_calls() {
    for i in $(seq 1 "${BENCH_CHART_CALLS:-10}"); do
      curl -fsS -o "$WORK/chart.json" -w '%{time_total} %{size_download}\n' -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$HTTP/api/dashboard/readings/?from=$1&to=$to&bucket=3600"
    done | python3 -c '
import sys
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
t = sorted(r[0] * 1000 for r in rows)
print(f"median {t[len(t)//2]:.0f} ms, max {t[-1]:.0f} ms, {rows[-1][1]/1000:.0f} kB, n={len(t)}")'
  }
  local raw_chart; raw_chart=$(chart_calls "${from%00Z}01Z")
  chart=$(chart_calls "$from")
  local buckets; buckets=$(python3 -c "import json; print(len(json.load(open('$WORK/chart.json'))['buckets']))")
  local prod; prod=$("$PROD" http "$HTTP" "$TOKEN" 200)
  stop_server
  STORAGE_ROWS+="| 30-day chart (readings?bucket=3600, $buckets buckets), $big readings over 60 days: from the rollups (from on the hour) | $chart | |"$'\n'
  STORAGE_ROWS+="| the same chart from the raw readings (from one second past the hour) | $raw_chart | |"$'\n'
  STORAGE_ROWS+="| production/current, $big readings (200 calls) | $prod | unchanged |"$'\n'
  STORAGE_ROWS+="| seeding $big readings (batch writer) | $seed | |"$'\n'
  rm -rf "$WORK/data-chart"
  STORAGE_CMD="BENCH_STORAGE_SECONDS=$fast BENCH_STORAGE_SLOW_SECONDS=$slow BENCH_STORAGE_WARMUP=$STORAGE_WARMUP BENCH_STORAGE_READINGS=$n BENCH_CHART_READINGS=$big"
}

print_storage_table() {
  printf '\ncommand: %s (%s), %s cores; JSON readings of 5 channels, QoS 1, /proc/PID/io write_bytes\n' \
    "$0" "$STORAGE_CMD" "$(nproc)"
  printf '| storage | value | goal |\n|---|---|---|\n'
  printf '%s' "$STORAGE_ROWS"
}

if [ "${BENCH_ONLY:-}" = storage ]; then
  storage_bench
  print_storage_table
  exit 0
fi

if [ "${BENCH_ONLY:-}" = memory ]; then
  memory_bursts
  print_memory_table
  exit 0
fi

echo "== biogestor: $PUBLISHERS publishers at QoS 1, stepping the offered load (${LOAD_SECONDS}s per step)"
start_server "$WORK/data-load"
EMPTY_STARTUP_MS=$STARTUP_MS
IDLE_KB=$(sleep 2; rss_kb "$SERVER")
mkdir -p "$WORK/pub"
BEST_PER_PUB=0
STEP_LOG=""
# Each step runs the full LOAD_SECONDS: shorter steps are absorbed by the queues and overstate
# what the store sustains. A step passes when nothing is lost, the store kept up (drained
# within 2 s) and it persisted at least 90 % of the offered rate; the best passing step is the
# sustained figure.
for per_pub in ${BENCH_STEPS:-1000 1500 2000}; do
  load_run "$per_pub" "$LOAD_SECONDS"
  lost=$((RUN_PUBLISHED - RUN_STORED))
  offered=$((per_pub * PUBLISHERS))
  STEP_LOG+="${offered}/s: ${RUN_RATE}/s persisted, lost ${lost}, drain ${RUN_DRAIN}s; "
  echo "   offered ${offered}/s: published $RUN_PUBLISHED, stored $RUN_STORED, dropped $RUN_DROPPED, persisted ${RUN_RATE}/s, drain ${RUN_DRAIN}s"
  if [ "$lost" -eq 0 ] && python3 -c "import sys; sys.exit(0 if $RUN_DRAIN <= 2 and $RUN_RATE >= 0.9 * $offered else 1)"; then
    BEST_PER_PUB=$per_pub
    PUBLISHED=$RUN_PUBLISHED; STORED=$RUN_STORED; LOSS=$lost
    INGEST_RATE=$RUN_RATE; SUSTAINED_DRAIN=$RUN_DRAIN
  else
    break
  fi
done
if [ "$BEST_PER_PUB" = 0 ]; then
  PUBLISHED=$RUN_PUBLISHED; STORED=$RUN_STORED; LOSS=$((RUN_PUBLISHED - RUN_STORED))
  INGEST_RATE=0; SUSTAINED_DRAIN=$RUN_DRAIN
fi
PEAK_SUSTAINED_KB=$(hwm_kb "$SERVER")
# Goodput against offered load beyond what the store sustains: the broker must slow the
# publishers (back-pressure) rather than acknowledge and drop; persisted/s should stay within
# 90 % of the sustained rate and nothing acknowledged may be lost.
GOODPUT_ROWS=""
SUSTAINED_OFFERED=$((BEST_PER_PUB * PUBLISHERS))
for factor in 1.5 3; do
  per_pub=$(python3 -c "print(round(max($BEST_PER_PUB, 500) * $factor))")
  offered=$((per_pub * PUBLISHERS))
  echo "== offered ${factor}× (${offered}/s) for ${LOAD_SECONDS}s"
  load_run "$per_pub" "$LOAD_SECONDS"
  share=$(python3 -c "print(round(100 * $RUN_RATE / max(1, $INGEST_RATE)))")
  GOODPUT_ROWS+="| offered ${factor}× sustained (${offered}/s): persisted/s (share of sustained), acknowledged / stored / lost, dropped by broker | ${RUN_RATE}/s (${share} %), ${RUN_PUBLISHED} / ${RUN_STORED} / $((RUN_PUBLISHED - RUN_STORED)), ${RUN_DROPPED} | ≥ 90 %, loss 0 |"$'\n'
done
echo "== overload: unthrottled publishers for 10s (the broker accepts faster than 2 cores persist)"
load_run 0 "$([ "$QUICK" = 1 ] && echo 3 || echo 10)"
share=$(python3 -c "print(round(100 * $RUN_RATE / max(1, $INGEST_RATE)))")
OVER="${RUN_RATE}/s (${share} %), acknowledged ${RUN_PUBLISHED}, stored ${RUN_STORED}, lost $((RUN_PUBLISHED - RUN_STORED)), dropped by the broker ${RUN_DROPPED}"
PEAK_KB=$(hwm_kb "$SERVER")

echo "== publish → WebSocket latency (1000 msgs at 100/s)"
LATENCY=$(BENCH_TOKEN=$TOKEN "$LAT" "$HTTP" "$MQTT" 1000 100 | tail -1)
stop_server

echo "== mosquitto relay: same publishers, one QoS 1 subscriber, no persistence"
MPORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\n' "$MPORT" >"$WORK/mosq.conf"
"$MOSQUITTO" -c "$WORK/mosq.conf" >"$WORK/mosq.log" 2>&1 &
MOSQ=$!; PIDS+=("$MOSQ")
sleep 0.5
mosquitto_sub -p "$MPORT" -t Prueba -q 1 >"$WORK/sub.out" &
SUB=$!; PIDS+=("$SUB")
sleep 0.5
mkdir -p "$WORK/pub-mosq"
M0=$(now)
MPUBLISHED=$(publishers "$MPORT" "$LOAD_SECONDS" "$WORK/pub-mosq")
prev=-1
while :; do
  cur=$(wc -l <"$WORK/sub.out")
  [ "$cur" -ge "$MPUBLISHED" ] && break
  [ "$cur" = "$prev" ] && break
  prev=$cur; sleep 1
done
M1=$(now)
RECEIVED=$(wc -l <"$WORK/sub.out")
MOSQ_RATE=$(python3 -c "print(round($RECEIVED/($M1-$M0)))")
RATIO=$(python3 -c "print(round($INGEST_RATE/$MOSQ_RATE, 2))")
stop_pid "$SUB"
stop_pid "$MOSQ"

echo "== field rate: 10 msg/s for ${FIELD_SECONDS}s, default commit interval"
start_server "$WORK/data-field"
sleep 1
W0=$(write_bytes "$SERVER"); R0=$(stat_json lecturas_total)
"$BIN" simulate --port "$MQTT" --interval 0.1 --duration "$FIELD_SECONDS" --qos 1 >/dev/null
sleep 2
W1=$(write_bytes "$SERVER"); R1=$(stat_json lecturas_total)
BYTES_PER_READING=$(python3 -c "print(round(($W1-$W0)/max(1,$R1-$R0)))")
stop_server

PROD_ROWS=""
for n in ${BENCH_PRODUCTION_SIZES:-1000000 5000000}; do
  [ "$QUICK" = 1 ] && n=$((n / 10))
  echo "== production query: stage with $n readings over 60 days"
  SEED=$("$PROD" seed "$WORK/data-prod-$n" "$n" 60)
  SCAN=$("$PROD" scan "$WORK/data-prod-$n")
  start_server "$WORK/data-prod-$n"
  HTTPT=$("$PROD" http "$HTTP" "$TOKEN" 200)
  stop_server
  PROD_ROWS+="| production/current over HTTP, $n readings (200 calls) | $HTTPT | p50 ≤ 5 ms |"$'\n'
  PROD_ROWS+="| same answer: daily table vs raw scan, $n readings | $SCAN | |"$'\n'
  PROD_ROWS+="| seeding ($n readings via the batch writer); start → healthy | $SEED; ${STARTUP_MS} ms | |"$'\n'
  rm -rf "$WORK/data-prod-$n"
done

REPORT_N=${BENCH_REPORT_READINGS:-5000000}
[ "$QUICK" = 1 ] && REPORT_N=$((REPORT_N / 10))
echo "== report/create: 120-day stage with $REPORT_N readings"
"$PROD" seed "$WORK/data-report" "$REPORT_N" 120 >/dev/null
start_server "$WORK/data-report"
REPORT_T=$("$PROD" report "$HTTP" "$TOKEN" 7)
RID=$(sed -n 's/.*last_id=\([0-9]*\).*/\1/p' <<<"$REPORT_T")
REPORT_SIZES=$(for k in pdf/reporte_$RID.pdf excel/reporte_$RID.xlsx csv/reporte_$RID.csv; do
  printf '%s %s B; ' "${k##*.}" "$(stat -c %s "$WORK/data-report/reports/$k")"; done)
PAGES=$(pdfinfo "$WORK/data-report/reports/pdf/reporte_$RID.pdf" 2>/dev/null | awk '/^Pages/ {print $2}')
stop_server
rm -rf "$WORK/data-report"

memory_bursts
storage_bench

strip -o "$WORK/stripped" "$BIN"
SIZE_MB=$(python3 -c "import os; print(round(os.path.getsize('$WORK/stripped')/1e6, 2))")

printf '\ncommand: %s (PUBLISHERS=%s LOAD_SECONDS=%s FIELD_SECONDS=%s), %s cores\n' \
  "$0" "$PUBLISHERS" "$LOAD_SECONDS" "$FIELD_SECONDS" "$(nproc)"
printf '| metric | value | goal |\n|---|---|---|\n'
printf '| sustained persisted readings/s (%s pubs × %s/s, QoS 1, %ss) | %s | ≥ 20000 |\n' "$PUBLISHERS" "$BEST_PER_PUB" "$LOAD_SECONDS" "$INGEST_RATE"
printf '| readings published / stored / lost in that run (drain after last publish) | %s / %s / %s (%ss) | loss 0 |\n' "$PUBLISHED" "$STORED" "$LOSS" "$SUSTAINED_DRAIN"
printf '| load steps (%s s each) | %s | |\n' "$LOAD_SECONDS" "$STEP_LOG"
printf '%s' "$GOODPUT_ROWS"
printf '| overload (unthrottled, 10 s): persisted/s (share), acknowledged / stored / lost, dropped | %s | loss 0 |\n' "$OVER"
printf '| mosquitto relay msgs/s (same %s pubs unthrottled, 1 sub, no persistence) | %s (%s/%s received) | |\n' "$PUBLISHERS" "$MOSQ_RATE" "$RECEIVED" "$MPUBLISHED"
printf '| ratio biogestor / mosquitto | %s | ≥ 0.5 |\n' "$RATIO"
printf '| publish→WebSocket | %s | |\n' "$LATENCY"
printf '| resident memory idle / peak sustained / peak incl. overload | %s / %s / %s MB | idle ≤ 20 MB |\n' \
  "$(python3 -c "print(round($IDLE_KB/1024,1))")" "$(python3 -c "print(round($PEAK_SUSTAINED_KB/1024,1))")" \
  "$(python3 -c "print(round($PEAK_KB/1024,1))")"
printf '| disk bytes written per reading (10 msg/s, %ss) | %s | |\n' "$FIELD_SECONDS" "$BYTES_PER_READING"
printf '| binary size (x86_64 release, stripped) | %s MB | |\n' "$SIZE_MB"
printf '| start → healthy (empty store) | %s ms | |\n' "$EMPTY_STARTUP_MS"
printf '%s' "$PROD_ROWS"
printf '| report/create, 120-day stage, %s readings (7 runs) | %s; files: %s PDF pages %s | ≤ 300 ms |\n' \
  "$REPORT_N" "$REPORT_T" "$REPORT_SIZES" "$PAGES"
print_memory_table
print_storage_table
