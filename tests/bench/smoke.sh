#!/usr/bin/env bash
# tests/bench/smoke.sh - a few seconds of fstore-bench against a real `fstore serve`.
# Keeps the benchmark instrument working: asserts zero errors, every value PRESENT and equal to
# the generated dataset (every value seen verified), every written row acknowledged. Never
# asserts on speed.
# Usage: smoke.sh FSTORE FSTORE_BENCH
set -euo pipefail
fstore=$1
bench=$2
rows=2000

dir=$(mktemp -d "${TMPDIR:-/tmp}/fstore-bench-smoke.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 "$(dirname "$0")/../e2e/free_port.py"; }

"$bench" gen catalog --views 2 --features 10 >"$dir/catalog.yaml"
# v0 goes through `fstore apply` + `fstore ingest` of a generated CSV (the path bench/run.sh
# uses); v1 is loaded through WriteFeatures once the server is up.
grpc_views="v1"
"$fstore" apply --catalog "$dir/catalog.yaml" --data-dir "$dir/data"
"$bench" gen csv --view-index 0 --features 10 --rows $rows >"$dir/v0.csv"
"$fstore" ingest --data-dir "$dir/data" --view v0 --sync none "$dir/v0.csv"

port=$(free_port)
"$fstore" serve --listen 127.0.0.1:$port --http-listen '' --catalog "$dir/catalog.yaml" --data-dir "$dir/data" \
  --workers 2 >"$dir/server.out" 2>"$dir/server.err" &
server_pid=$!

# Ready when the health check answers (the bench's own connect wait covers the rest).
ready=0
for _ in $(seq 100); do
  if "$bench" run --target 127.0.0.1:$port --scenario health -n 1 -w 0 --timeout 1 --check \
      >/dev/null 2>&1; then
    ready=1
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
if [ $ready -ne 1 ]; then
  echo "bench_smoke: the server did not become healthy"
  cat "$dir/server.err"
  exit 1
fi

for v in $grpc_views; do
  "$bench" run --target 127.0.0.1:$port --scenario write --view $v --sequential --keys $rows \
    --rows 100 --pool $((rows / 100)) -n $((rows / 100)) -w 0 -c 2 -m 2 --check >/dev/null ||
    { echo "bench_smoke: loading $v through WriteFeatures failed"; exit 1; }
done

status=0
# run ARGS...: one checked run, its JSON in $dir/last.json. A --verify run must also have compared
# every value it saw (verified == values > 0): a check that verified nothing must not pass.
run() {
  echo "+ fstore-bench run $*"
  "$bench" run --target 127.0.0.1:$port --json "$@" >"$dir/last.json" || status=1
  cat "$dir/last.json"
  case " $* " in
    *" --verify "*)
      /usr/bin/python3 - "$dir/last.json" <<'PY' || status=1
import json, sys
c = json.load(open(sys.argv[1]))["check"]
if not (c["values"] > 0 and c["verified"] == c["values"]):
    sys.exit("bench_smoke: --verify compared %d of %d values" % (c["verified"], c["values"]))
PY
      ;;
  esac
}
run --label smoke-health --scenario health -c 2 -m 2 -d 1 -w 0.2 --check
run --label smoke-get-1x20 --scenario get --views 2 --features-per-view 10 --entities 1 \
  --keys $rows -c 2 -m 4 -d 2 -w 0.2 --verify
run --label smoke-get-100x20 --scenario get --views 2 --features-per-view 10 --entities 100 \
  --keys $rows -c 1 -m 2 -d 1 -w 0.2 --verify
# The pooled mode checks each response against the ids of the request it answers.
run --label smoke-get-pooled --scenario get --views 2 --features-per-view 10 --entities 10 \
  --keys $rows -c 1 -m 4 -d 1 -w 0.2 --verify --pooled --pool 64
run --label smoke-get-open --scenario get --views 2 --features-per-view 10 --entities 10 \
  --keys $rows -c 2 -t 2 --rate 200 -d 1 -w 0.2 --verify
# On-demand features with request data: every computed value PRESENT (od:o_j over v_j's f0, f1).
run --label smoke-get-on-demand --scenario get \
  --features v0:f0,v0:f1,v1:f2,od:o0,od:o1 --request-field k=0.5 --entities 10 \
  --keys $rows -c 2 -m 2 -d 1 -w 0.2 --check
/usr/bin/python3 - "$dir/last.json" <<'PY' || status=1
import json, sys
r = json.load(open(sys.argv[1]))
c = r["check"]
# 6 columns (the key and 5 features) x 10 rows per response, every one PRESENT
if r["failed"] or c["responses"] == 0 or c["present"] != c["responses"] * 60:
    sys.exit("bench_smoke: on-demand reads: %s" % json.dumps(c))
PY
run --label smoke-write --scenario write --view w0 --rows 100 --keys $rows -c 2 -m 2 -d 1 -w 0 \
  --check --pool 64

# Every call draws fresh ids, even with --pool given (as bench/run.sh does): 200 writes of 10
# random rows over 2000 ids outside the loaded range must land on about 2000 * (1 - 1/e) = 1264
# distinct rows, where a pool of 4 requests would write 40. Read them all back and count.
wfirst=100000
"$bench" run --target 127.0.0.1:$port --scenario write --view w0 --rows 10 --first-key $wfirst \
  --keys $rows --pool 4 -n 200 -w 0 -c 1 -m 2 --check >/dev/null ||
  { echo "bench_smoke: random writes into w0 failed"; status=1; }
echo "+ fstore-bench run --scenario get --features w0:f0 --sequential (count the rows written)"
"$bench" run --target 127.0.0.1:$port --scenario get --features w0:f0 --sequential \
  --first-key $wfirst --keys $rows --pool $rows -n $rows -w 0 -c 1 -m 4 --check --json \
  >"$dir/readback.json" || true
/usr/bin/python3 - "$dir/readback.json" <<'PY' || status=1
import json, sys
r = json.load(open(sys.argv[1]))
# One status per id in w0__f0 (the join-key column is PRESENT for every id): the ids never
# written are NOT_FOUND.
written = 2000 - r["check"]["not_found"]
print("bench_smoke: 200 x 10 random writes over 2000 ids wrote %d distinct rows" % written)
if r["failed"] != 0 or r["check"]["responses"] != 2000 or not 1000 < written < 1500:
    sys.exit("bench_smoke: expected about 1264 distinct rows (fresh ids every call)")
PY

# Failed calls count: a method the server does not have fails every call (UNIMPLEMENTED), in the
# warm-up and in the measured phase. Every failed measured call must be in the latency histogram
# ("all"; "ok" has none), the warm-up's failures must be reported, and --check must exit 1.
echo "+ fstore-bench run --scenario raw --method /fstore.v1.NoSuchService/Nothing (must fail)"
if "$bench" run --target 127.0.0.1:$port --scenario raw --method /fstore.v1.NoSuchService/Nothing \
    -n 20 -w 0.2 --check --json >"$dir/failing.json"; then
  echo "bench_smoke: --check passed a run whose calls all failed"
  status=1
fi
cat "$dir/failing.json"
/usr/bin/python3 - "$dir/failing.json" <<'PY' || status=1
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_us"]
problems = []
if not (r["failed"] == 20 and r["ok"] == 0):
    problems.append("expected 20 failed calls, got %d failed, %d ok" % (r["failed"], r["ok"]))
if lat["all"]["count"] != r["ok"] + r["failed"]:
    problems.append("latency all has %d calls, not ok + failed = %d"
                    % (lat["all"]["count"], r["ok"] + r["failed"]))
if lat["ok"]["count"] != r["ok"]:
    problems.append("latency ok has %d calls, not %d" % (lat["ok"]["count"], r["ok"]))
if not (r["warmup_failed"] > 0 and r["warmup_errors"].get("UNIMPLEMENTED") == r["warmup_failed"]):
    problems.append("warm-up failures not reported: %r, %r"
                    % (r.get("warmup_failed"), r.get("warmup_errors")))
if problems:
    sys.exit("bench_smoke: " + "; ".join(problems))
PY

# Predict (features only, binding m1 over s1) once the server has it: a probe with an empty
# request gets UNIMPLEMENTED (or no answer) from a server without it.
probe=$("$bench" run --target 127.0.0.1:$port --scenario raw \
  --method /tensorflow.serving.PredictionService/Predict -n 1 -w 0 --timeout 2 --json || true)
if echo "$probe" | grep -q -E 'UNIMPLEMENTED|DEADLINE_EXCEEDED'; then
  echo "bench_smoke: Predict not built, skipping its runs"
else
  run --label smoke-predict-10 --scenario predict --model m1 --views 2 --features-per-view 10 \
    --entities 10 --keys $rows -c 2 -m 2 -d 1 -w 0.2 --verify
fi

kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""
# The server's sanitizer reports go to its stderr, which ctest does not see: replay it.
cat "$dir/server.err"
if grep -E "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer" \
    "$dir/server.err" >/dev/null; then
  echo "bench_smoke: sanitizer report in the server's stderr"
  status=1
fi
[ $status -eq 0 ] && echo "bench_smoke: PASS" || echo "bench_smoke: FAIL"
exit $status
