#!/usr/bin/env bash
# tests/http/run-fuzz-http.sh - builds the HTTP body fuzzer (fuzz_http.c) with clang's libFuzzer
# (tests/fuzz-lib.sh) and runs it for FUZZ_SECONDS (default 20), from seeds of every route and
# its kept corpus (tests/http/corpus/).
set -euo pipefail
root=${FSTORE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
seconds=${FUZZ_SECONDS:-20}
. "$root/tests/fuzz-lib.sh"
fuzz_workdir fstore-fuzz-http

FUZZ_EXTRA_LIBS="-lmicrohttpd -lgnutls" fuzz_build "$work" fuzz_http "$root/tests/http/fuzz_http.c" base \
  catalog storage repl core codec upstream http

mkdir -p "$work/corpus"
seed() { printf "\\x$2"; printf '%s' "$3"; }
seed x 00 '{"features":["fv:f","fv:s","fv:il"],"entities":{"driver_id":[1,2]}}' >"$work/corpus/read"
seed x 00 '{"feature_service":"svc","full_feature_names":true,"entities":{"driver_id":[1]}}' >"$work/corpus/svc"
seed x 00 '{"features":["od:x","fv:i"],"entities":{"driver_id":[1,2],"rv":[3,"4"]}}' >"$work/corpus/od"
seed x 01 '{"feature_view_name":"fv","df":{"driver_id":[1,2],"f":[0.5,null],"s":["a","b"],"il":[[1,2],[]],"by":["AAE="," "],"ts":["2024-01-01T00:00:00Z",5],"event_timestamp":["2024-05-01 12:00:00",null]}}' >"$work/corpus/write"
seed x 02 '{"push_source_name":"src","df":{"driver_id":[3],"b":[true],"sl":[["x"]]},"to":"online"}' >"$work/corpus/push"
seed x 03 '{"instances":[{"driver_id":1,"x":2},{"driver_id":2}]}' >"$work/corpus/inv_json"
seed x 04 $'1,a\n2,"b,c"\n' >"$work/corpus/inv_csv"
seed x 05 '{"instances":[1,2,3]}' >"$work/corpus/tfs_rows"
seed x 06 '{"signature_name":"x","inputs":{"driver_id":[{"b64":"AQ=="}]}}' >"$work/corpus/tfs_cols"
seed x 08 '{"instances":[{"driver_id":1,"x":[[1,2.5]],"s":{"b64":"AA=="}},{"driver_id":2,"x":[[3,4]],"s":"t"}]}' >"$work/corpus/up_rows"
seed x 08 '{"inputs":{"driver_id":[1],"y":[true],"z":[[["a"]]]},"signature_name":"s"}' >"$work/corpus/up_cols"

export TMPDIR=$work
if ! fuzz_run "$work" fuzz_http "$seconds" "$work/corpus" -max_len=4096; then
  keep=1
  exit 1
fi
