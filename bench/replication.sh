#!/usr/bin/env bash
# bench/replication.sh - replication's benchmark rows (bench/run.sh --replication runs it).
#
# Every figure is measured in this run, next to the baseline it is compared with:
#   W1  acknowledged WriteFeatures rows/s, 100-row batches x 10 features, closed loop, one node
#       on one nats-server (R1) -- against the same load on a single node without replication
#       (sync full, today's path), measured right before it
#   W3  the same on a three-server NATS cluster with an R3 stream
#   V   write on node A -> visible on node B (a read on B carrying fstore-min-seq), open loop at
#       half of W1b's rate (W1 with node B following on the same cores), p50/p99 -- next to A's
#       own acknowledgement latency in the same calls
#   A   apply throughput: a fresh node replays a preloaded stream (APPLY_ROWS rows in 100-row
#       messages, random ids) -- against raw LMDB putting the same ids in the same batches
#       (sorted, 50k-row transactions, no sync): fstore-repl-bench floor
#   B   bootstrap: a node with an empty data directory copies a BOOT_ROWS x 10-feature replica
#       from a peer and replays the log: seconds from start to SERVING
#   G   gc through the log on A's replica: a sweep deleting its APPLY_ROWS rows (w0 keeps 30
#       days; they are of 2024) holds that node's apply for as long as it takes: milliseconds
#       (gc_applied_from_log), next to A's own replay time of the same rows
# Everything runs on 127.0.0.1 and everything started here is stopped on exit.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/replication.sh [--quick] [--no-build] [--keep] [--work DIR] [--duration S]
  --quick        100k entities, 200k rows replayed, 1M rows bootstrapped, 3 s per row
  --entities N   ids written (default 1000000)
  --apply-rows N rows in the preloaded stream (default 1000000)
  --boot-rows N  rows of the bootstrapped replica (default 10000000)
  --duration S   measured seconds per write row (default 10)
  --connections N --inflight M   closed loop (default 4 x 8)
USAGE
}

QUICK=0 BUILD=1 KEEP=0 WORK="" DURATION=10 WARMUP=2 CONNS=4 INFLIGHT=8
ENTITIES=1000000 APPLY_ROWS=1000000 BOOT_ROWS=10000000 SET_E=0 SET_A=0 SET_B=0 SET_D=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    --work) WORK=$2; shift ;;
    --duration) DURATION=$2; SET_D=1; shift ;;
    --entities) ENTITIES=$2; SET_E=1; shift ;;
    --apply-rows) APPLY_ROWS=$2; SET_A=1; shift ;;
    --boot-rows) BOOT_ROWS=$2; SET_B=1; shift ;;
    --connections) CONNS=$2; shift ;;
    --inflight) INFLIGHT=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "replication.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ $QUICK -eq 1 ]; then
  [ $SET_E -eq 1 ] || ENTITIES=100000
  [ $SET_A -eq 1 ] || APPLY_ROWS=200000
  [ $SET_B -eq 1 ] || BOOT_ROWS=1000000
  [ $SET_D -eq 1 ] || DURATION=3
  WARMUP=1
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=${WORK:-$ROOT/build/release/bench-repl}
FSTORE=$ROOT/build/release/fstore
BENCH=$ROOT/build/release/bench/loadgen/fstore-bench
RBENCH=$ROOT/build/release/bench/replication/fstore-repl-bench
PY=$(command -v python3)
for v in $(env | sed -n 's/^\(FSTORE_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

log() { echo "replication.sh: $*" >&2; }
die() { log "$*"; exit 1; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  [ $KEEP -eq 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ $BUILD -eq 1 ]; then
  log "building release"
  cmake --preset release >/dev/null && cmake --build --preset release -j"$(nproc)" >/dev/null ||
    die "build failed"
fi
rm -rf "$WORK"
mkdir -p "$WORK/res"
RES=$WORK/res
"$BENCH" gen catalog --views 1 --features 10 |
  "$PY" -c 'import sys; print(sys.stdin.read().replace("  - name: w0\n    version: 1\n", "  - name: w0\n    version: 1\n    ttl: 30d\n"), end="")' \
  >"$WORK/catalog.yaml"
grep -q "ttl: 30d" "$WORK/catalog.yaml" || die "no TTL on w0 in the generated catalog"

nats_up() { # nats_up NAME PORT [CLUSTER_PORT ROUTES]: one nats-server -js, pid in LAST_PID
  local args=(-js -a 127.0.0.1 -p "$2" -sd "$WORK/nats/$1" --server_name "$1")
  [ $# -lt 4 ] || args+=(--cluster_name fsb --cluster "nats://127.0.0.1:$3" --routes "$4")
  mkdir -p "$WORK/nats/$1"
  nats-server "${args[@]}" >"$WORK/nats/$1.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; die "port $1 did not open"; }
serve() { # serve NAME DATA_DIR ARGS...: fstore serve, target in LAST_TARGET, pid in LAST_PID
  local name=$1 dir=$2 port; shift 2
  port=$(free_port)
  LAST_TARGET=127.0.0.1:$port
  "$FSTORE" serve --listen "$LAST_TARGET" --http-listen '' --data-dir "$dir" \
    --catalog "$WORK/catalog.yaml" "$@" \
    >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
wait_serving() { # wait_serving TARGET LOG [TIMEOUT_S]
  local until=$(( $(date +%s) + ${3:-300} ))
  until "$FSTORE" status --listen "$1" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$until" ] || { tail -20 "$2"; die "$1 did not report SERVING"; }
    sleep 0.1
  done
}
stop() { kill -TERM "$1" 2>/dev/null || true; for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; kill -KILL "$1" 2>/dev/null || true; }
write_bench() { # write_bench NAME TARGET
  log "$1: acknowledged writes, 100 rows x 10 features, ${CONNS}x${INFLIGHT} closed loop"
  "$BENCH" run --target "$2" --json --label "$1" --scenario write --view w0 --rows 100 \
    --write-features 10 --keys "$ENTITIES" --check -c "$CONNS" -m "$INFLIGHT" -d "$DURATION" \
    -w "$WARMUP" >"$RES/$1.json" 2>"$RES/$1.err" || { cat "$RES/$1.err" >&2; die "$1 failed"; }
}
rps() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["rps"])' "$1"; }

# --- Baseline: one node, no log, sync full (today's write path) --------------------------------
serve local "$WORK/local" --sync full
LOCAL_PID=$LAST_PID
wait_serving "$LAST_TARGET" "$WORK/local.log"
write_bench local_write "$LAST_TARGET"
stop "$LOCAL_PID"

# --- W1 and V: one nats-server, nodes A and B ----------------------------------------------------
N1=$(free_port)
nats_up r1 "$N1"
wait_port "$N1"
serve a "$WORK/a" --replication "nats://127.0.0.1:$N1" --stream BENCH_W1 --subject-prefix bench.w1
A_PID=$LAST_PID A=$LAST_TARGET
wait_serving "$A" "$WORK/a.log"
write_bench r1_write "$A"
serve b "$WORK/b" --replication "nats://127.0.0.1:$N1" --stream BENCH_W1 --subject-prefix bench.w1
B_PID=$LAST_PID B=$LAST_TARGET
wait_serving "$B" "$WORK/b.log"
# With B applying too, both nodes share this machine's cores: the load V runs at is half of
# what A takes while B follows (W1b), not half of W1.
write_bench r1b_write "$A"
RATE=$("$PY" -c 'import sys; print(max(1.0, float(sys.argv[1]) / 2))' "$(rps "$RES/r1b_write.json")")
log "V: write on A -> visible on B, open loop at $RATE writes/s (half of W1b)"
"$RBENCH" visible --writer "$A" --reader "$B" --rate "$RATE" --duration "$DURATION" \
  --warmup "$WARMUP" --keys "$ENTITIES" >"$RES/visible.json" 2>"$RES/visible.err" ||
  { cat "$RES/visible.err" "$RES/visible.json" >&2; die "visibility run failed"; }
stop "$B_PID"
stop "$A_PID"

# --- A: apply throughput from a preloaded stream, and its raw LMDB floor -----------------------
log "A: preloading $APPLY_ROWS rows in 100-row messages (random ids)"
"$BENCH" gen csv --view-index 0 --features 10 --rows "$APPLY_ROWS" >"$WORK/apply.csv"
{ head -1 "$WORK/apply.csv"; tail -n +2 "$WORK/apply.csv" | shuf --random-source=<(yes); } \
  >"$WORK/apply-shuf.csv"
rm -f "$WORK/apply.csv"
LOGARGS=(--replication "nats://127.0.0.1:$N1" --stream BENCH_APPLY --subject-prefix bench.apply)
"$FSTORE" apply --catalog "$WORK/catalog.yaml" "${LOGARGS[@]}" >"$WORK/apply-cat.log" 2>&1 ||
  { cat "$WORK/apply-cat.log"; die "catalog publish failed"; }
"$FSTORE" ingest "${LOGARGS[@]}" --project bench --view w0 --batch-rows 100 \
  "$WORK/apply-shuf.csv" >"$WORK/apply-ingest.log" 2>&1 ||
  { cat "$WORK/apply-ingest.log"; die "preload failed"; }
serve c "$WORK/c" "${LOGARGS[@]}"
C_PID=$LAST_PID
wait_serving "$LAST_TARGET" "$WORK/c.log" 600
log "G: gc through the log of the replayed rows"
"$FSTORE" gc --target "$LAST_TARGET" >"$WORK/gc.out" 2>&1 || { cat "$WORK/gc.out"; die "gc failed"; }
stop "$C_PID"
"$PY" - "$WORK/c.log" "$APPLY_ROWS" >"$RES/apply.json" <<'PYEOF'
import json, sys, datetime
ev = {}
for line in open(sys.argv[1]):
    if line.startswith("{"):
        d = json.loads(line)
        ev.setdefault(d["event"], d)
t = lambda e: datetime.datetime.strptime(ev[e]["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
secs = t("replica_ready") - t("replica_starting")
rows = int(sys.argv[2])
g = ev["gc_applied_from_log"]
print(json.dumps({"rows": rows, "messages": ev["replica_ready"]["applied"], "seconds": secs,
                  "rows_per_s": rows / secs if secs > 0 else 0,
                  "gc_deleted": g["deleted"], "gc_ms": g["ms"]}))
PYEOF
log "A: the raw LMDB floor on the same ids"
"$RBENCH" floor --ids-csv "$WORK/apply-shuf.csv" --dir "$WORK/floor" --batch 100 \
  --txn-rows 50000 >"$RES/floor.json" || die "floor failed"
rm -rf "$WORK/floor" "$WORK/c" "$WORK/apply-shuf.csv"

# --- W3: a three-server cluster, R3 stream ------------------------------------------------------
P=($(free_port) $(free_port) $(free_port)) C=($(free_port) $(free_port) $(free_port))
ROUTES="nats://127.0.0.1:${C[0]},nats://127.0.0.1:${C[1]},nats://127.0.0.1:${C[2]}"
for i in 0 1 2; do nats_up "c$i" "${P[$i]}" "${C[$i]}" "$ROUTES"; done
for i in 0 1 2; do wait_port "${P[$i]}"; done
URLS="nats://127.0.0.1:${P[0]},nats://127.0.0.1:${P[1]},nats://127.0.0.1:${P[2]}"
serve d "$WORK/d" --replication "$URLS" --stream BENCH_W3 --subject-prefix bench.w3 --stream-replicas 3
D_PID=$LAST_PID
wait_serving "$LAST_TARGET" "$WORK/d.log"
write_bench r3_write "$LAST_TARGET"
stop "$D_PID"

# --- B: bootstrap of a BOOT_ROWS x 10 replica from a peer ---------------------------------------
# The peer is a replica like any other (a replica holds only what the log holds): its rows go
# through the log, in 5000-row messages, and it applies them before the clock starts.
log "B: loading $BOOT_ROWS rows x 10 features into the peer through the log"
BOOTARGS=(--replication "nats://127.0.0.1:$N1" --stream BENCH_BOOT --subject-prefix bench.boot)
"$FSTORE" apply --catalog "$WORK/catalog.yaml" "${BOOTARGS[@]}" >"$WORK/boot-cat.log" 2>&1 ||
  { cat "$WORK/boot-cat.log"; die "catalog publish failed"; }
"$BENCH" gen csv --view-index 0 --features 10 --rows "$BOOT_ROWS" |
  "$FSTORE" ingest "${BOOTARGS[@]}" --project bench --view v0 --batch-rows 5000 --format csv - \
    >"$WORK/e-ingest.log" 2>&1 || { cat "$WORK/e-ingest.log"; die "bootstrap load failed"; }
serve e "$WORK/e" "${BOOTARGS[@]}"
E_PID=$LAST_PID E=$LAST_TARGET
wait_serving "$E" "$WORK/e.log" 1200
T0=$(now_ns)
serve f "$WORK/f" "${BOOTARGS[@]}" --bootstrap-from "$E"
F_PID=$LAST_PID
wait_serving "$LAST_TARGET" "$WORK/f.log" 600
T1=$(now_ns)
BYTES=$(du -sb "$WORK/f" | cut -f1)
"$FSTORE" digest --data-dir "$WORK/e" >"$WORK/e.digest"
"$FSTORE" digest --data-dir "$WORK/f" >"$WORK/f.digest"
SAME=$(cmp -s "$WORK/e.digest" "$WORK/f.digest" && echo true || echo false)
echo "{\"rows\": $BOOT_ROWS, \"bytes\": $BYTES, \"seconds\": $("$PY" -c "print(($T1 - $T0) / 1e9)"), \"same_digest\": $SAME}" >"$RES/boot.json"
stop "$F_PID"
stop "$E_PID"

# --- The table ----------------------------------------------------------------------------------
"$PY" - "$RES" <<'PYEOF'
import json, os, sys
d = sys.argv[1]
L = lambda n: json.load(open(os.path.join(d, n + ".json")))
lw, r1, r1b, r3, vis, ap, fl, bo = (L(n) for n in ("local_write", "r1_write", "r1b_write", "r3_write",
                                                   "visible", "apply", "floor", "boot"))
rows = lambda r: r["rps"] * 100
def verdict(ok):
    return "pass" if ok else "MISS"
print("Replication (bench/replication.sh; every baseline measured in this run)")
print("%-58s %14s %12s %8s" % ("row", "figure", "ratio", "target"))
print("%-58s %14.0f %12s %8s" % ("local writes, no log, sync full (baseline), rows/s", rows(lw), "1.00x", ""))
print("%-58s %14.0f %11.2fx %8s" % ("W1 acknowledged writes, R1, rows/s (target >= 150k)", rows(r1),
                                    rows(r1) / rows(lw), verdict(rows(r1) >= 150000)))
print("%-58s %14.0f %11.2fx %8s" % ("W1b the same with node B following on this machine", rows(r1b), rows(r1b) / rows(lw), ""))
print("%-58s %14.0f %11.2fx %8s" % ("W3 acknowledged writes, R3, rows/s", rows(r3), rows(r3) / rows(lw), ""))
print("%-58s %14s %12s %8s" % ("V write on A -> visible on B at %.0f writes/s, p50/p99 ms" % vis["rate"],
                               "%.2f / %.2f" % (vis["visible_p50_us"] / 1e3, vis["visible_p99_us"] / 1e3),
                               "", verdict(vis["visible_p99_us"] <= 5000)))
print("%-58s %14s %12s %8s" % ("  A's own acknowledgement in the same calls, p50/p99 ms",
                               "%.2f / %.2f" % (vis["write_p50_us"] / 1e3, vis["write_p99_us"] / 1e3), "", ""))
print("%-58s %14.0f %12s %8s" % ("A raw LMDB floor, same ids, 100-row sorted batches, rows/s", fl["rows_per_s"], "1.00x", ""))
print("%-58s %14.0f %11.2fx %8s" % ("A apply from a preloaded stream (%d rows), rows/s" % ap["rows"],
                                    ap["rows_per_s"], ap["rows_per_s"] / fl["rows_per_s"],
                                    verdict(ap["rows_per_s"] >= 0.8 * fl["rows_per_s"])))
print("%-58s %14.1f %12s %8s" % ("B bootstrap %d rows x 10 (%.0f MB) to SERVING, s" % (bo["rows"], bo["bytes"] / 1e6),
                                 bo["seconds"], "same digest" if bo["same_digest"] else "DIGEST DIFFERS",
                                 verdict(bo["seconds"] <= 30 and bo["same_digest"])))
print("%-58s %14s %12s %8s" % ("G gc through the log: %d rows deleted, apply held, ms" % ap["gc_deleted"],
                               "%d" % ap["gc_ms"], "%.2fx replay" % (ap["gc_ms"] / 1e3 / ap["seconds"]),
                               "" if ap["gc_deleted"] == ap["rows"] else "COUNT"))
print("errors: writes %d/%d/%d failed, visibility %d errors %d wrong values" % (
    lw["failed"], r1["failed"] + r1b["failed"], r3["failed"], vis["errors"], vis["wrong"]))
PYEOF
