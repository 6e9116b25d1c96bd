#!/usr/bin/env bash
# tests/cli/run-fuzz-ingest.sh - builds the ingest fuzzer (fuzz_ingest.c: `fstore ingest` of CSV
# and JSON Lines into a real store) with clang's libFuzzer (tests/fuzz-lib.sh) and runs it for
# FUZZ_SECONDS (default 20) from the seeds below and its kept corpus (tests/cli/corpus/); it needs
# no build tree. The store lives in the work directory; crashes are kept in a printed directory,
# never in the source tree.
set -euo pipefail
root=${FSTORE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
seconds=${FUZZ_SECONDS:-20}
. "$root/tests/fuzz-lib.sh"
fuzz_workdir fstore-fuzz-ingest

FUZZ_EXTRA_CFLAGS="-I$(pg_config --includedir)" FUZZ_EXTRA_LIBS="-lmicrohttpd -lgnutls -lpq" fuzz_build "$work" fuzz_ingest \
  "$root/tests/cli/fuzz_ingest.c" base catalog storage repl core codec upstream server http cdc \
  clients/c cli

# Seeds: the byte that picks format, view and --to (fuzz_ingest.c), then the file.
mkdir -p "$work/corpus"
seed() { printf "\\x$2" >"$work/corpus/$1"; printf '%s' "$3" >>"$work/corpus/$1"; }
seed csv_fv 00 $'driver_id,i64,f,s,by,b,ts,il,sl,bol,event_timestamp\n1,5,0.5,abc,b64:AAE=,true,1700000000,"[1, -2]","[""a"", """"]","[true]",2024-05-01T12:00:00.5Z\n2,,1,"x,y",raw,0,,[],[],[],1714564800.25\n'
seed csv_quoted 00 $'driver_id,s,d\n"3","multi\nline",1e300\n4,"a""b",-0\n'
seed jsonl_fv 01 $'{"driver_id": 1, "i64": 7, "f": 0.25, "il": [1, 2], "fl": [1.5], "tsl": [1700000000], "event_timestamp": "2024-05-01 12:00:00+02:00"}\n{"driver_id": 2, "s": null, "bl": ["AA=="], "event_timestamp": 1714564800}\n'
seed csv_v2 02 $'driver_id,i64,c\n1,1,red\n2,2,blue\n'
seed jsonl_pair 05 $'{"driver_id": 1, "customer_id": "alice", "n": 3, "s": "x"}\n'
seed csv_dev 06 $'dev,slot,v\nb64:AQI=,7,3.25\nraw,-1,\n'
seed offline_csv 08 $'driver_id,i64,f,event_timestamp\n1,9,0.5,2024-01-01T00:00:00Z\n1,8,0.5,2023-12-31T23:59:59Z\n'

export TMPDIR=$work
if ! fuzz_run "$work" fuzz_ingest "$seconds" "$work/corpus" -max_len=4096 -close_fd_mask=1; then
  keep=1
  exit 1
fi
