#!/usr/bin/env bash
# bench/callgrind.sh - instructions per call, counted by callgrind: repeatable on a busy machine.
#
# Starts `fstore serve --workers 1` under callgrind on a generated dataset (25 views x 10
# features, 100k entities in v0..v4, 20k in v5..v24), and for each scenario zeroes the counters,
# sends --calls calls with fstore-bench (4 connections x 8 in flight) and dumps them. It prints,
# per scenario, the instructions per call of the read worker (the busiest thread) and of the
# whole process. Instruction counts do not depend on what else the machine is doing, so two
# binaries can be compared on any machine: --fstore and --bench pick them (default: the release
# build of this tree).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FSTORE=$ROOT/build/release/fstore
BENCH=$ROOT/build/release/bench/loadgen/fstore-bench
CALLS=2000
WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --fstore) FSTORE=$2; shift ;;
    --bench) BENCH=$2; shift ;;
    --calls) CALLS=$2; shift ;;
    --work) WORK=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "callgrind.sh: unknown flag $1" >&2; exit 2 ;;
  esac
  shift
done
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }
[ -x "$FSTORE" ] || { echo "callgrind.sh: $FSTORE not built (cmake --preset release)" >&2; exit 1; }
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
PID=""
cleanup() {
  [ -z "$PID" ] || { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  rm -rf "$WORK/data" "$WORK/csv"
}
trap cleanup EXIT

"$BENCH" gen catalog --views 25 --features 10 >"$WORK/catalog.yaml"
"$FSTORE" apply --catalog "$WORK/catalog.yaml" --data-dir "$WORK/data" >/dev/null
mkdir -p "$WORK/csv"
for v in $(seq 0 24); do
  rows=100000
  [ "$v" -lt 5 ] || rows=20000
  "$BENCH" gen csv --view-index "$v" --features 10 --rows "$rows" >"$WORK/csv/v$v.csv"
  "$FSTORE" ingest --data-dir "$WORK/data" --view "v$v" --sync none "$WORK/csv/v$v.csv" >/dev/null
  rm -f "$WORK/csv/v$v.csv"
done

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TARGET=127.0.0.1:$PORT
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/cg.out" \
  "$FSTORE" serve --listen "$TARGET" --http-listen '' --catalog "$WORK/catalog.yaml" --data-dir "$WORK/data" \
  --workers 1 >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 600); do
  "$BENCH" run --target "$TARGET" --scenario health -n 1 -w 0 --timeout 2 --check >/dev/null 2>&1 && break
  sleep 0.5
done

GET=(--scenario get --views 5 --features-per-view 10 --keys 100000)
PREDICT=(--scenario predict --model m1 --views 5 --features-per-view 10 --keys 100000)
measure() { # measure NAME CALLS ARGS...
  local name=$1 n=$2; shift 2
  "$BENCH" run --target "$TARGET" -c 4 -m 8 -n 200 -w 0 "$@" >/dev/null 2>&1 || true
  rm -f "$WORK"/cg.out*
  callgrind_control -z "$PID" >/dev/null
  "$BENCH" run --target "$TARGET" -c 4 -m 8 -n "$n" -w 0 --check "$@" >"$WORK/$name.txt" 2>&1 ||
    { cat "$WORK/$name.txt" >&2; echo "callgrind.sh: $name failed" >&2; exit 1; }
  callgrind_control -d "$PID" >/dev/null
  python3 - "$name" "$n" "$WORK" <<'PY'
import glob, re, sys
name, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
per = []
for f in glob.glob(work + "/cg.out*"):
    for line in open(f, errors="replace"):
        m = re.match(r"(?:summary|totals): (\d+)", line)
        if m:
            per.append(int(m.group(1)))
            break
print("%-14s %8d calls  worker %10.0f  process %10.0f  instructions per call"
      % (name, n, max(per) / n, sum(per) / n))
PY
}
measure s0_health "$CALLS" --scenario health
measure s1_1x50 "$CALLS" "${GET[@]}" --entities 1
measure s2_100x50 $((CALLS / 10)) "${GET[@]}" --entities 100
measure s3_1x250 "$CALLS" --scenario get --views 25 --features-per-view 10 --keys 20000 --entities 1
measure s5_1 "$CALLS" "${PREDICT[@]}" --entities 1
measure s5_100 $((CALLS / 10)) "${PREDICT[@]}" --entities 100
