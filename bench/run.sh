#!/usr/bin/env bash
# bench/run.sh - one command: build, load the dataset, run every scenario and its peers, one table.
#
# Scenarios (see BENCHMARKS.md): S0 Health/Check floor; S1 1x50 GetOnlineFeatures (closed loop
# for the maximum, then open loop at half of it for latency; and with 5 of the 50 on-demand); S2 10x50 and 100x50; S3 1x250;
# S4 WriteFeatures 100 rows x 10 features with sync=full, and bulk ingest; S5 Predict; peers:
# Redis HMGET-50 with redis-benchmark, plain and pipelined 100 deep, on a Redis started here and
# loaded with the same rows; the in-process mdb_get floor from bench_storage; the server's RSS at
# the end.
# Everything runs on 127.0.0.1 and everything started here is stopped on exit.
set -euo pipefail

# Replication's rows (several nodes, NATS JetStream) are a run of their own.
if [ "${1:-}" = "--replication" ]; then
  shift
  exec "$(dirname "$0")/replication.sh" "$@"
fi

usage() {
  cat <<'USAGE'
usage: bench/run.sh [--quick] [--json] [flags]
       bench/run.sh --replication [--quick] [flags]   (bench/replication.sh: writes through
                     the log, write -> visible on another node, apply, bootstrap)
  --quick            a short run: 100k entities, 3 s per scenario (about two minutes)
  --json             print the results as JSON instead of the table
  --entities N       entities in v0..v4 (S1, S2, Redis) (default 1000000)
  --extra-entities N entities in v5..v24 (S3 only) (default 100000)
  --connections N    gRPC connections (default 4)
  --inflight M       calls in flight per connection, closed loop (default 8); Redis runs with
                     N*M clients, so both sides have the same number of requests outstanding
  --duration S       measured seconds per scenario (default 10)
  --warmup S         warm-up seconds per scenario (default 2)
  --workers N        fstore serve --workers (default: the server's default, one per CPU; see
                     BENCHMARKS.md, "Server threads", for --workers 1)
  --sched-slice-us N the CPU slice the server's read workers and the open-loop generator ask
                     for (fstore serve --sched-slice-us; Linux 6.12+); 0 = the kernel's
                     default (default 100)
  --work DIR         scratch directory (default build/release/bench-run); the data is removed
                     at the end unless --keep
  --keep             keep the data directory and the CSVs ingested (WORK/data, WORK/csv)
  --no-build         use the existing release build
  --wait-quiet S     before measuring, wait up to S seconds for the rest of the machine to be
                     quiet (under 10% of all cores busy); the table reports the load either way
USAGE
}

ORIG_ARGS="$*"
QUICK=0 JSON=0 ENTITIES=1000000 EXTRA=100000 CONNS=4 INFLIGHT=8 DURATION=10 WARMUP=2
WORKERS="" KEEP=0 BUILD=1 WORK="" WAIT_QUIET=0 SLICE=100
ENTITIES_SET=0 EXTRA_SET=0 DURATION_SET=0 WARMUP_SET=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --json) JSON=1 ;;
    --entities) ENTITIES=$2; ENTITIES_SET=1; shift ;;
    --extra-entities) EXTRA=$2; EXTRA_SET=1; shift ;;
    --connections) CONNS=$2; shift ;;
    --inflight) INFLIGHT=$2; shift ;;
    --duration) DURATION=$2; DURATION_SET=1; shift ;;
    --warmup) WARMUP=$2; WARMUP_SET=1; shift ;;
    --workers) WORKERS=$2; shift ;;
    --sched-slice-us) SLICE=$2; shift ;;
    --work) WORK=$2; shift ;;
    --keep) KEEP=1 ;;
    --no-build) BUILD=0 ;;
    --wait-quiet) WAIT_QUIET=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ $QUICK -eq 1 ]; then
  [ $ENTITIES_SET -eq 1 ] || ENTITIES=100000
  [ $EXTRA_SET -eq 1 ] || EXTRA=20000
  [ $DURATION_SET -eq 1 ] || DURATION=3
  [ $WARMUP_SET -eq 1 ] || WARMUP=1
fi
CONC=$((CONNS * INFLIGHT))

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=${WORK:-$ROOT/build/release/bench-run}
FSTORE=$ROOT/build/release/fstore
BENCH=$ROOT/build/release/bench/loadgen/fstore-bench
STORAGE_BENCH=$ROOT/build/release/bench/storage/bench_storage
PREDICT_METHOD=${FSTORE_BENCH_PREDICT_METHOD:-/tensorflow.serving.PredictionService/Predict}
PY=$(command -v python3)
# fstore reads flags from FSTORE_* variables (fstore serve --help): one left in the environment
# (FSTORE_SYNC=none, FSTORE_WORKERS=1) would change what the table claims to measure.
for var in $(compgen -e); do
  case $var in
    FSTORE_BENCH_*) ;;
    FSTORE_*) echo "run.sh: ignoring $var from the environment" >&2; unset "$var" ;;
  esac
done

log() { echo "run.sh: $*" >&2; }
die() { log "$*"; exit 1; }
now_ns() { date +%s%N; }
free_port() { "$PY" "$ROOT/tests/e2e/free_port.py"; }

SERVER_PID="" REDIS_PID=""
# proc_cpu PID: the process's user + system CPU so far, in clock ticks.
proc_cpu() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# cpu_now VAR: sets VAR to "ALL OURS" in seconds: CPU the whole machine spent (every core, from
# /proc/stat) and the part this run spent (the servers it started, from /proc/PID/stat, and its
# finished children: fstore-bench and redis-benchmark, from `times`). Their difference over the
# measurements is what other processes took. It must run in this shell, not in $(...): `times`
# in a subshell sees only that subshell's children, and the load generator's CPU would then be
# counted as other processes' (which is what the BUSY flags of earlier runs mostly were).
CLK_TCK=$(getconf CLK_TCK)
cpu_now() {
  local all ours=0 pid t children
  all=$(awk -v hz="$CLK_TCK" '/^cpu /{print ($2+$3+$4+$7+$8+$9)/hz}' /proc/stat)
  for pid in $SERVER_PID $REDIS_PID; do
    t=$(awk -v hz="$CLK_TCK" '{sub(/^.*\) /, ""); print ($12+$13)/hz}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    ours=$("$PY" -c 'import sys; print(float(sys.argv[1]) + float(sys.argv[2]))' "$ours" "$t")
  done
  times >"$WORK/times.txt"
  children=$(tail -1 "$WORK/times.txt" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); s += p[1] * 60 + p[2] } print s }')
  printf -v "$1" '%s' "$("$PY" -c 'import sys; print(sys.argv[1], float(sys.argv[2]) + float(sys.argv[3]))' "$all" "$ours" "$children")"
}
wait_healthy() { # wait_healthy TARGET LOG
  for _ in $(seq 150); do
    "$BENCH" run --target "$1" --scenario health -n 1 -w 0 --timeout 1 --check >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$2"; die "fstore serve exited"; }
    sleep 0.2
  done
  cat "$2"; die "fstore serve did not become healthy"
}
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$SERVER_PID"
  stop_pid "$REDIS_PID"
  if [ $KEEP -eq 0 ] && [ -n "$WORK" ]; then rm -rf "$WORK/data" "$WORK/csv"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Build
if [ $BUILD -eq 1 ]; then
  log "building the release preset"
  mkdir -p "$ROOT/build"
  { cmake --preset release && cmake --build --preset release -j"$(nproc)"; } \
    >"$ROOT/build/bench-build.log" 2>&1 || { tail -30 "$ROOT/build/bench-build.log"; die "build failed"; }
fi
[ -x "$FSTORE" ] || die "$FSTORE not built"
[ -x "$BENCH" ] || die "$BENCH not built"

rm -rf "$WORK/data" "$WORK/csv" "$WORK/results"
mkdir -p "$WORK/csv" "$WORK/results"
RES=$WORK/results

# What else the machine is doing: the share of all cores busy over one second (from top's second
# sample, the first being since boot) and the three busiest processes then. The figures of a run
# on a busy machine are not comparable with a quiet one's, and the table says which it was.
machine_busy() {
  top -b -n 2 -d 1 -w 200 2>/dev/null | awk '
    /^top -/ { n++ }
    n == 2 && /^%Cpu/ && match($0, /[0-9.]+[ ]*id/) { idle = substr($0, RSTART, RLENGTH) + 0 }
    n == 2 && $1 ~ /^[0-9]+$/ && k < 3 && $9 + 0 >= 1 { top = top sprintf("%s%s %s%%", k ? ", " : "", $12, $9); k++ }
    END { printf "%.0f%% of all cores busy (%s)", 100 - idle, k ? top : "nothing above 1%" }'
}

# ---------------------------------------------------------------------------------------------
# Dataset: 25 views x 10 features (even INT64, odd DOUBLE); v0..v4 hold ENTITIES entities (S1,
# S2), v5..v24 hold EXTRA (S3 reads all 25 views, so its keys come from the first EXTRA ids).
log "dataset: v0..v4 x $ENTITIES entities, v5..v24 x $EXTRA entities, 10 features each"
"$BENCH" gen catalog --views 25 --features 10 >"$WORK/catalog.yaml"
INGEST_ROWS=0 INGEST_NS=0 V0_RATE="" INGEST_RATE="" INGEST_NOTE=""
view_rows() { if [ "$1" -lt 5 ]; then echo "$ENTITIES"; else echo "$EXTRA"; fi; }
"$FSTORE" apply --catalog "$WORK/catalog.yaml" --data-dir "$WORK/data" >"$WORK/apply.log" 2>&1 ||
  { cat "$WORK/apply.log"; die "fstore apply failed"; }
for v in $(seq 0 24); do
  rows=$(view_rows "$v")
  csv=$WORK/csv/v$v.csv
  "$BENCH" gen csv --view-index "$v" --features 10 --rows "$rows" >"$csv"
  t0=$(now_ns)
  "$FSTORE" ingest --data-dir "$WORK/data" --view "v$v" --sync none "$csv" >>"$WORK/ingest.log" 2>&1 ||
    { tail -20 "$WORK/ingest.log"; die "fstore ingest of v$v failed"; }
  t1=$(now_ns)
  INGEST_ROWS=$((INGEST_ROWS + rows))
  INGEST_NS=$((INGEST_NS + t1 - t0))
  [ "$v" -ne 0 ] || V0_RATE=$(( rows * 1000000000 / (t1 - t0) ))
  # The write target w0 (same columns) gets v0's rows too, untimed: S4 then updates entities
  # that exist, the steady state of online writes, rather than growing a new tree as it goes.
  if [ "$v" -eq 0 ]; then
    "$FSTORE" ingest --data-dir "$WORK/data" --view w0 --sync none "$csv" >>"$WORK/ingest.log" 2>&1 ||
      { tail -20 "$WORK/ingest.log"; die "fstore ingest of w0 failed"; }
  fi
  [ $KEEP -eq 1 ] || rm -f "$csv"
done
INGEST_RATE=$(( INGEST_ROWS * 1000000000 / INGEST_NS ))
INGEST_NOTE="$INGEST_ROWS rows with --sync none, wall time of fstore ingest (v0 alone: $V0_RATE rows/s)"
log "ingested $INGEST_ROWS rows at $INGEST_RATE rows/s (v0 alone: $V0_RATE rows/s)"

# ---------------------------------------------------------------------------------------------
# Peer: Redis with Feast's layout, the same rows of v0..v4, the same requests outstanding. It is
# started and loaded before the measurements, and measured between fstore's scenarios, next to
# the ones it is compared with, so both see the same machine.
REDIS_NOTE="" HAVE_REDIS=0
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
  RPORT=$(free_port)
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --protected-mode yes \
    >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  log "redis pid $REDIS_PID on 127.0.0.1:$RPORT: loading $ENTITIES hashes"
  "$BENCH" gen redis --views 5 --features 10 --rows "$ENTITIES" |
    redis-cli -h 127.0.0.1 -p "$RPORT" --pipe >"$WORK/redis-load.log" 2>&1
  FIELDS=()
  for v in 0 1 2 3 4; do for f in $(seq 0 9); do FIELDS+=("v$v:f$f"); done; done
  got=$(redis-cli -h 127.0.0.1 -p "$RPORT" hmget "e:$(printf %012d $((ENTITIES - 1)))" v4:f9 | wc -c)
  if [ "$got" -gt 1 ]; then HAVE_REDIS=1; else REDIS_NOTE="Redis load incomplete (last key missing)"; fi
else
  REDIS_NOTE="redis-server or redis-benchmark not installed"
fi
rb() { # rb NAME N [-P depth]: one redis-benchmark run, CSV in results/NAME.csv
  local name=$1 n=$2 c0; shift 2
  local TIMEFORMAT='%U %S'
  c0=$(proc_cpu "$REDIS_PID")
  # The client's CPU (user system seconds) goes beside the CSV, as fstore-bench reports its own.
  { time redis-benchmark -h 127.0.0.1 -p "$RPORT" -c "$CONC" -n "$n" -r "$ENTITIES" --csv "$@" \
    HMGET "e:__rand_int__" "${FIELDS[@]}" >"$RES/$name.csv" 2>>"$WORK/redis-bench.log"; } \
    2>"$RES/$name.cpu"
  echo "$n" >>"$RES/$name.cpu"
  # Redis's own CPU across the run, for its requests: ticks, ticks per second, requests.
  echo "$(( $(proc_cpu "$REDIS_PID") - c0 )) $CLK_TCK $n" >"$RES/$name.srv"
}
peer() { # peer NAME [-P depth]: a short calibration run sizes -n to about --duration seconds
  [ $HAVE_REDIS -eq 1 ] || return 0
  local name=$1 rps; shift
  log "$name: redis-benchmark -c $CONC $* HMGET of 50 fields"
  rb "$name" 20000 "$@"
  rps=$("$PY" -c 'import csv,sys; print(int(float(list(csv.DictReader(open(sys.argv[1])))[-1]["rps"])))' "$RES/$name.csv" 2>/dev/null || echo 50000)
  rb "$name" $(( rps * ${DURATION%.*} + 1000 )) "$@"
}

# ---------------------------------------------------------------------------------------------
# The server
PORT=$(free_port)
TARGET=127.0.0.1:$PORT
HTTP_PORT=$(free_port)
HTTP_TARGET=127.0.0.1:$HTTP_PORT
serve_args=(--listen "$TARGET" --http-listen "$HTTP_TARGET" --catalog "$WORK/catalog.yaml" --data-dir "$WORK/data" --sync full)
[ -z "$WORKERS" ] || serve_args+=(--workers "$WORKERS")
[ "$SLICE" = 0 ] || serve_args+=(--sched-slice-us "$SLICE")
"$FSTORE" serve "${serve_args[@]}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_healthy "$TARGET" "$WORK/server.log"
log "fstore serve pid $SERVER_PID on $TARGET"

# bench NAME ARGS...: one fstore-bench run, its JSON kept in results/NAME.json, and the server's
# CPU across it (warm-up included) in results/NAME.srv: ticks, ticks per second.
bench() {
  local name=$1 c0; shift
  log "$name: fstore-bench run $*"
  c0=$(proc_cpu "$SERVER_PID")
  "$BENCH" run --target "$TARGET" --json --label "$name" "$@" >"$RES/$name.json" 2>"$RES/$name.err" || true
  echo "$(( $(proc_cpu "$SERVER_PID") - c0 )) $CLK_TCK" >"$RES/$name.srv"
  [ -s "$RES/$name.json" ] || { cat "$RES/$name.err" >&2; log "$name produced no result"; }
}
json_field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@" 2>/dev/null || echo 0; }
half_rate() { "$PY" -c 'import sys; print(max(1.0, float(sys.argv[1]) / 2))' "$(json_field "$RES/$1.json" rps)"; }

LOADARGS=(-c "$CONNS" -m "$INFLIGHT" -d "$DURATION" -w "$WARMUP")
OPENARGS=(-c "$CONNS" -t 1 -d "$DURATION" -w "$WARMUP")
# Latency rows: the generator's threads take the same short CPU slice as the server's read
# workers, so a reply or a due send is not kept waiting behind a busy thread's slice.
[ "$SLICE" = 0 ] || OPENARGS+=(--sched-slice-us "$SLICE")
# One response in 16 is decoded and checked (every status PRESENT): enough to catch a wrong
# setup, cheap enough not to take CPU from the server. Errors are always all counted.
GET50=(--scenario get --views 5 --features-per-view 10 --keys "$ENTITIES" --check-every 16)

if [ "$WAIT_QUIET" -gt 0 ]; then
  waited=0
  until busy=$(machine_busy) && [ "${busy%%%*}" -lt 10 ]; do
    [ "$waited" -lt "$WAIT_QUIET" ] || { log "still busy after ${WAIT_QUIET}s: $busy"; break; }
    log "waiting for a quiet machine: $busy"
    sleep 10
    waited=$((waited + 11))
  done
fi
BUSY_START=$(machine_busy)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
cpu_now CPU_A
T_A=$(now_ns)
bench s0 --scenario health "${LOADARGS[@]}"
peer redis-hmget50
bench s1 "${GET50[@]}" --entities 1 "${LOADARGS[@]}"
# S1 with 5 of its 50 features on-demand (od:o_j = v_j.f0 * q.k + v_j.f1, over the other 45 and
# a request field), right after S1 on the same server: target >= 0.9x S1.
OD50=$(for v in 0 1 2 3 4; do for f in 0 1 2 3 4 5 6 7 8; do printf 'v%d:f%d,' "$v" "$f"; done; done
       printf 'od:o0,od:o1,od:o2,od:o3,od:o4')
bench s1_od --scenario get --features "$OD50" --request-field k=0.5 --keys "$ENTITIES" \
  --check-every 16 --entities 1 "${LOADARGS[@]}"
bench s1_open "${GET50[@]}" --entities 1 "${OPENARGS[@]}" --rate "$(half_rate s1)"
# The latency floor for the open-loop rows: an empty gRPC call at the same arrival rate, through
# the same client, server threads and machine.
bench s0_open_s1 --scenario health "${OPENARGS[@]}" --rate "$(half_rate s1)"
peer redis-hmget50-p10 -P 10
bench s2_10 "${GET50[@]}" --entities 10 "${LOADARGS[@]}"
peer redis-hmget50-p100 -P 100
bench s2_100 "${GET50[@]}" --entities 100 "${LOADARGS[@]}"
bench s2_100_open "${GET50[@]}" --entities 100 "${OPENARGS[@]}" --rate "$(half_rate s2_100)"
bench s0_open_s2 --scenario health "${OPENARGS[@]}" --rate "$(half_rate s2_100)"
bench s3 --scenario get --views 25 --features-per-view 10 --keys "$EXTRA" --check-every 16 --entities 1 "${LOADARGS[@]}"
# What the durable writes cost the disk: the bytes the block device under the data directory
# wrote across S4 (warm-up included), from /sys/class/block/DEV/stat (sectors of 512 bytes; the
# whole device, so other writers count too). Not the server's write_bytes from /proc/PID/io:
# Linux accounts that per page-cache folio dirtied, and after a bulk load the file's pages sit in
# large folios, so a 4 KiB page write was accounted as up to 4 times what reached the device.
# The device is found by the filesystem's major:minor (LVM and device-mapper included); on
# overlay, tmpfs and the like there is none, and the table says so.
DATA_DEV_STAT=/sys/dev/block/$(findmnt -no MAJ:MIN -T "$WORK" 2>/dev/null | head -1 | tr -d ' ')/stat
S4_DISK_NOTE=""
[ -r "$DATA_DEV_STAT" ] || S4_DISK_NOTE="n/a: no block device under $WORK ($(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || echo unknown))"
io_written() {
  awk '{printf "%.0f\n", $7 * 512}' "$DATA_DEV_STAT" 2>/dev/null || echo 0
}
sync
S4_IO_A=$(io_written)
S4_T_A=$(now_ns)
bench s4 --scenario write --view w0 --rows 100 --write-features 10 --keys "$ENTITIES" \
  --check "${LOADARGS[@]}"
sync
S4_IO_B=$(io_written)
S4_T_B=$(now_ns)

# HTTP front door (the same server's --http-listen): Feast's /get-online-features 1x50 and
# 100x50 over CONC keep-alive connections (one request in flight each, as gRPC's CONC calls),
# against GET /health on the same listener; then open loop at half of 1x50's rate against
# /health at that rate; then S1 again while something scrapes /metrics every second.
HBENCH=$ROOT/build/release/bench/http/fstore-http-bench
"$PY" - "$WORK" "$ENTITIES" <<'PYEOF'
import json, random, sys
work, n = sys.argv[1], int(sys.argv[2])
feats = ["v%d:f%d" % (v, f) for v in range(5) for f in range(10)]
rnd = random.Random(7)
for name, rows in (("h1", 1), ("h100", 100)):
    ids = [rnd.randrange(n) for _ in range(rows)]
    json.dump({"features": feats, "entities": {"id": ids}, "full_feature_names": True}, open("%s/%s.json" % (work, name), "w"))
PYEOF
hbench() { # hbench NAME ARGS...: one fstore-http-bench run, JSON in results/NAME.json, server CPU
  local name=$1 c0; shift
  log "$name: fstore-http-bench $*"
  c0=$(proc_cpu "$SERVER_PID")
  "$HBENCH" --target "$HTTP_TARGET" --label "$name" --duration "$DURATION" --warmup "$WARMUP" \
    "$@" >"$RES/$name.http.json" 2>"$RES/$name.err" || true
  echo "$(( $(proc_cpu "$SERVER_PID") - c0 )) $CLK_TCK" >"$RES/$name.http.srv"
  [ -s "$RES/$name.http.json" ] || { cat "$RES/$name.err" >&2; log "$name produced no result"; }
}
hjson() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$RES/$1.http.json" "$2" 2>/dev/null || echo 0; }
hbench h0 --path /health --connections "$CONC"
hbench h1 --path /get-online-features --body-file "$WORK/h1.json" --connections "$CONC"
hbench h100 --path /get-online-features --body-file "$WORK/h100.json" --connections "$CONC"
HRATE=$("$PY" -c 'import sys; print(max(1.0, float(sys.argv[1]) / 2))' "$(hjson h1 rps)")
hbench h1_open --path /get-online-features --body-file "$WORK/h1.json" --connections "$CONC" \
  --rate "$HRATE"
hbench h0_open --path /health --connections "$CONC" --rate "$HRATE"
# S1 again right before, as the reference: this VM drifts by 10-20% over a run.
bench s1_ref "${GET50[@]}" --entities 1 "${LOADARGS[@]}"
( while sleep 1; do curl -s "http://$HTTP_TARGET/metrics" >/dev/null; done ) &
SCRAPER_PID=$!
bench s1_scraped "${GET50[@]}" --entities 1 "${LOADARGS[@]}"
kill "$SCRAPER_PID" 2>/dev/null || true
wait "$SCRAPER_PID" 2>/dev/null || true
METRICS_BYTES=$(curl -s "http://$HTTP_TARGET/metrics" | wc -c)
export METRICS_BYTES
# What one scrape costs the server (CPU over 50 back-to-back scrapes), to set against S1's CPU:
# the throughput ratio above is at the mercy of this VM's drift, the CPU share is not.
c0=$(proc_cpu "$SERVER_PID")
for _ in $(seq 50); do curl -s "http://$HTTP_TARGET/metrics" >/dev/null; done
echo "$(( $(proc_cpu "$SERVER_PID") - c0 )) $CLK_TCK 50" >"$RES/scrape.srv"
# The JSON writer per value against jansson (in-process; the server is idle meanwhile).
log "json: fstore-json-bench"
"$ROOT/build/release/bench/http/fstore-json-bench" 0.5 >"$RES/json.json" 2>"$RES/json.err" || true

# S5: Predict, features only (binding m1 over s1: 50 features).
PREDICT_NOTE=""
PREDICT=(--scenario predict --method "$PREDICT_METHOD" --model m1 --views 5 --features-per-view 10
         --keys "$ENTITIES" --check-every 16)
bench s5_1 "${PREDICT[@]}" --entities 1 "${LOADARGS[@]}"
bench s5_100 "${PREDICT[@]}" --entities 100 "${LOADARGS[@]}"

# S0 again: if the machine's capacity changed during the run (other work started or stopped),
# the two S0 figures differ and the ratios of this run are not to be trusted.
bench s0_end --scenario health "${LOADARGS[@]}"
cpu_now CPU_B
T_B=$(now_ns)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
OTHER_CPU=$("$PY" -c '
import sys
a, b, wall, cores = sys.argv[1].split(), sys.argv[2].split(), float(sys.argv[3]) / 1e9, int(sys.argv[4])
busy, ours = float(b[0]) - float(a[0]), float(b[1]) - float(a[1])
print("%.0f%%" % max(0.0, 100 * (busy - ours) / (wall * cores)))' "$CPU_A" "$CPU_B" "$((T_B - T_A))" "$(nproc)")
log "other processes used $OTHER_CPU of the machine during the measurements"

# Server RSS: VmRSS includes the LMDB pages the reads touched (file-backed, RssFile); what the
# server itself holds is the rest.
read -r VMRSS RSSFILE RSSANON RSSSHMEM < <(awk '/^VmRSS/{a=$2} /^RssFile/{b=$2} /^RssAnon/{c=$2} /^RssShmem/{d=$2} END{print a, b, c, d}' "/proc/$SERVER_PID/status")
stop_pid "$SERVER_PID"
stop_pid "$REDIS_PID"
REDIS_PID=""
if grep -E "ERROR: AddressSanitizer|runtime error:" "$WORK/server.log" >/dev/null; then
  log "sanitizer report in the server log ($WORK/server.log)"
fi
SERVER_PID=""

# ---------------------------------------------------------------------------------------------
# Floor: the storage engineer's in-process benchmark (raw mdb_get vs store_read_row), if built.
FLOOR_FILE=$RES/storage-floor.txt
if [ -x "$STORAGE_BENCH" ]; then
  floor_args=(--entities "$ENTITIES" --dir "$WORK/floor")
  [ $QUICK -eq 0 ] || floor_args+=(--lookups 200000 --write-seconds 1)
  log "storage floor: bench_storage ${floor_args[*]}"
  rm -rf "$WORK/floor"
  "$STORAGE_BENCH" "${floor_args[@]}" >"$FLOOR_FILE" 2>&1 || log "bench_storage failed (see $FLOOR_FILE)"
  rm -rf "$WORK/floor"
fi

BUSY_END=$(machine_busy)
MACHINE="$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
export OTHER_CPU MACHINE LOAD_START LOAD_END BUSY_START BUSY_END INGEST_ROWS INGEST_RATE INGEST_NOTE VMRSS RSSFILE RSSANON \
  RSSSHMEM S4_IO_A S4_IO_B S4_T_A S4_T_B S4_DISK_NOTE PREDICT_NOTE REDIS_NOTE ENTITIES EXTRA CONNS INFLIGHT CONC DURATION WARMUP FLOOR_FILE SLICE \
  WORKERS \
  CMDLINE="bench/run.sh $ORIG_ARGS"
"$PY" - "$RES/facts.json" <<'PYEOF'
import json, os, sys
e = os.environ
facts = {
    "command": e["CMDLINE"],
    "machine": e["MACHINE"],
    "load": "other processes took %s of the machine during the measurements; before the "
            "run %s, load average %s; after it %s, load average %s" % (
        e["OTHER_CPU"], e["BUSY_START"], e["LOAD_START"], e["BUSY_END"], e["LOAD_END"]),
    "dataset": "25 views x 10 features (INT64/DOUBLE); v0..v4: %s entities, v5..v24: %s" % (
        e["ENTITIES"], e["EXTRA"]),
    "concurrency": "closed loop %s connections x %s in flight (= Redis -c %s); %s s measured "
                   "after %s s warm-up; open loop at half the closed-loop maximum; "
                   "fstore read workers: %s; %s" % (
        e["CONNS"], e["INFLIGHT"], e["CONC"], e["DURATION"], e["WARMUP"],
        e["WORKERS"] or "the server's default",
        "CPU slice of the server's read workers and the open-loop generator: %s us" % e["SLICE"]
        if e["SLICE"] != "0" else "kernel's default CPU slice"),
    "ingest_rows_per_s": float(e["INGEST_RATE"]) if e["INGEST_RATE"] else None,
    "ingest_note": e["INGEST_NOTE"],
    "rss": {"vmrss_kb": int(e["VMRSS"] or 0), "rssfile_kb": int(e["RSSFILE"] or 0),
            "rssanon_kb": int(e["RSSANON"] or 0), "rssshmem_kb": int(e["RSSSHMEM"] or 0),
            "outside_map_kb": int(e["VMRSS"] or 0) - int(e["RSSFILE"] or 0)},
    "other_cpu_pct": float(e["OTHER_CPU"].rstrip("%") or 0),
    "predict_note": e["PREDICT_NOTE"],
    "redis_note": e["REDIS_NOTE"],
    "s4_disk": {"write_bytes": int(e["S4_IO_B"] or 0) - int(e["S4_IO_A"] or 0),
                "seconds": (int(e["S4_T_B"]) - int(e["S4_T_A"])) / 1e9,
                "note": e["S4_DISK_NOTE"]},
}
p = e["FLOOR_FILE"]
if os.path.exists(p):
    import re
    lines = [l.strip() for l in open(p) if l.strip()]
    summary = [l[len("summary: "):] for l in lines if l.startswith("summary: read")]
    on_demand = [l[len("summary: "):] for l in lines if l.startswith("summary: on-demand")]
    checksum = [l[len("summary: "):] for l in lines if l.startswith("summary: checksum")]
    m = re.search(r"= ([0-9.]+)x; batched .* = ([0-9.]+)x", summary[0]) if summary else None
    if m:
        worst = max(float(m.group(1)), float(m.group(2)))
        facts["storage_floor"] = {"summary": summary[0], "ratio_single": float(m.group(1)),
                                  "ratio_batched": float(m.group(2)),
                                  "result": "pass" if worst <= 2.0 else "MISS",
                                  "on_demand": on_demand[0] if on_demand else "",
                                  "checksum": checksum[0] if checksum else ""}
    else:
        facts["storage_floor"] = {"summary": " | ".join(lines[-3:]), "result": "n/a"}
else:
    facts["storage_floor"] = {"summary": "bench_storage not built", "result": "n/a"}
json.dump(facts, open(sys.argv[1], "w"), indent=1)
PYEOF

if [ $JSON -eq 1 ]; then
  "$PY" "$ROOT/bench/scenarios/report.py" "$RES" --json
else
  "$PY" "$ROOT/bench/scenarios/report.py" "$RES" | tee "$WORK/table.txt"
  "$PY" "$ROOT/bench/scenarios/http_report.py" "$RES" | tee -a "$WORK/table.txt"
fi
