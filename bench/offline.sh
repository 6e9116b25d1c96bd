#!/usr/bin/env bash
# bench/offline.sh - offline serving's benchmark rows (#17), each next to its peer of the same run:
#   insert  history rows/s through the apply path, time-major (a daily backfill) and
#           entity-major (a backfill sorted by key), 10 features (bench_offline)
#   join    point-in-time join of 1M entity rows x 10 features against 10M history rows: seconds,
#           against the online read of the same rows; peak and anonymous RSS (bench_offline)
#   cdc     `fstore cdc --once` of a 50k-entity x 10-time history into PostgreSQL: rows/s (the
#           whole command: open, plan, every batch), against PostgreSQL's own COPY of the same
#           rows from a client over TCP (psql's \copy of the table's export into a copy of it)
# PostgreSQL is a throwaway cluster under the work directory, on 127.0.0.1. Release build.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/offline.sh [--quick] [--no-build] [--cdc-only] [--work DIR]
  --quick     100k entities (1M history rows), 100k joined rows, 20k-entity CDC
  --cdc-only  the CDC row alone
USAGE
}

QUICK=0 BUILD=1 WORK="" CDC_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --cdc-only) CDC_ONLY=1 ;;
    --work) WORK=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
root=$(pwd)
[ "$BUILD" = 1 ] && { cmake --preset release >/dev/null; cmake --build --preset release -j"$(nproc)" >/dev/null; }
bin=$root/build/release
ENTITIES=1000000 QUERIES=1000000 CDC_ENTITIES=50000
[ "$QUICK" = 1 ] && ENTITIES=100000 QUERIES=100000 CDC_ENTITIES=20000
WORK=${WORK:-$(mktemp -d /tmp/fstore-bench-offline-XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK"  # the postgres user reaches its cluster under it
pgdir=$WORK/pg
cleanup() {
  if [ -d "$pgdir/data" ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$CDC_ONLY" = 0 ]; then
  echo "== insert and join (bench_offline, $ENTITIES entities x 10 times, $QUERIES joined rows)"
  "$bin/bench/offline/bench_offline" --entities "$ENTITIES" --queries "$QUERIES" | tee "$WORK/time-major.txt"
  "$bin/bench/offline/bench_offline" --entities "$ENTITIES" --queries "$QUERIES" --entity-major \
    | grep -E '^insert' | tee "$WORK/entity-major.txt"
fi

echo "== cdc into PostgreSQL ($CDC_ENTITIES entities x 10 times)"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mkdir -p "$pgdir"
chown postgres "$pgdir"
runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust --no-sync -E UTF8 >/dev/null
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -w -l "$pgdir/log" \
  -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" start >/dev/null
url=postgresql://postgres@127.0.0.1:$port/postgres
psql() { command psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
data=$WORK/cdc-data
"$bin/bench/offline/bench_offline" --entities "$CDC_ENTITIES" --queries 1000 --dir "$data" >/dev/null
rows=$((CDC_ENTITIES * 10 + CDC_ENTITIES))  # 10 times, and the last time once more online
t0=$(date +%s.%N)
"$bin/fstore" cdc --data-dir "$data" --to "$url" --once >/dev/null
t1=$(date +%s.%N)
copied=$(psql -At -c 'SELECT count(*) FROM h_v1')
psql -c "\\copy h_v1 TO '$WORK/h.copy'"
psql -c 'CREATE TABLE h_copy (LIKE h_v1 INCLUDING ALL)'
t2=$(date +%s.%N)
psql -c "\\copy h_copy FROM '$WORK/h.copy'"
t3=$(date +%s.%N)
/usr/bin/python3 - "$t0" "$t1" "$t2" "$t3" "$rows" "$copied" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
changes, copied = int(sys.argv[5]), int(sys.argv[6])
cdc, copy = t1 - t0, t3 - t2
print("cdc     %d changes -> %d rows in PostgreSQL: %.2f s, %.0f rows/s" % (changes, copied, cdc, copied / cdc))
print("copy    psql \\copy of the same %d rows over TCP into a copy of the table: %.2f s, %.0f rows/s" % (copied, copy, copied / copy))
print("ratio   cdc / COPY throughput: %.2fx" % ((copied / cdc) / (copied / copy)))
PY
