#!/usr/bin/env bash
# tests/server/run-fuzz-requests.sh - builds the read/write request fuzzer (fuzz_requests.c) with
# clang's libFuzzer (tests/fuzz-lib.sh) and runs it for FUZZ_SECONDS (default 20); it needs no
# build tree. Seeds are serialized with protoc's text format,
# each behind the byte that picks its handler, and the kept corpus (tests/server/corpus/,
# tests/fuzz-lib.sh) runs with them. The fuzzer's LMDB store lives in the work directory;
# crashes are kept in a printed directory, never in the source tree.
set -euo pipefail
root=${FSTORE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
seconds=${FUZZ_SECONDS:-20}
. "$root/tests/fuzz-lib.sh"
fuzz_workdir fstore-fuzz-requests

fuzz_build "$work" fuzz_requests "$root/tests/server/fuzz_requests.c" base catalog storage repl core \
  codec upstream server

# Seeds: the handler byte (0 read, 1 write, 2 delete, 3 value, 4 read decoder), then the message.
mkdir -p "$work/corpus"
seed() {
  local name=$1 byte=$2 type=$3 proto=$4 text=$5
  { printf "\\x$byte"; printf '%s' "$text" |
      protoc -I"$root/protos" -I/usr/include --encode="$type" "$proto"; } >"$work/corpus/$name"
}
rq=feast.serving.GetOnlineFeaturesRequest
sv=feast/serving/ServingService.proto
seed read_refs 00 $rq $sv 'features { val: ["fv:i64", "fv:s", "fv:il", "fv@v2:c"] } entities { key: "driver_id" value { val: [{int64_val: 1}, {int64_val: 3}, {int64_val: 9}] } }'
seed read_full 00 $rq $sv 'features { val: ["fv:i64", "fv@v2:i64", "g:total"] } full_feature_names: true include_feature_view_version_metadata: true entities { key: "driver_id" value { val: [{int32_val: 2}] } }'
seed read_service 00 $rq $sv 'feature_service: "svc" entities { key: "driver_id" value { val: [{int64_val: 1}] } } entities { key: "customer_id" value { val: [{string_val: "alice"}] } } entities { key: "dev" value { val: [{bytes_val: "\001\002"}] } } entities { key: "slot" value { val: [{int32_val: 7}] } }'
seed read_all 00 $rq $sv 'feature_service: "all" entities { key: "driver_id" value { val: [{int64_val: 2}, {int64_val: 1}] } }'
seed read_global 00 $rq $sv 'features { val: ["g:total"] }'
# One row over the fuzzer's limit of 8 (fuzz_requests.c), for reads and writes alike.
nine='{int64_val: 1}, {int64_val: 2}, {int64_val: 3}, {int64_val: 4}, {int64_val: 5}, {int64_val: 6}, {int64_val: 7}, {int64_val: 8}, {int64_val: 9}'
seed decode_refs 04 $rq $sv 'features { val: ["fv:i64", "fv@v2:c"] } full_feature_names: true entities { key: "driver_id" value { val: [{int64_val: -1}, {int32_val: -7}] } } entities { key: "customer_id" value { val: [{string_val: "h\303\251"}, {bytes_val: ""}] } }'
# A feature list given twice, around the entities, and a list Value given twice: the merge.
{ printf '\x04'
  printf '%s' 'features { val: ["fv:i64"] } entities { key: "driver_id" value { val: [{int64_val: 1}] } }' |
    protoc -I"$root/protos" -I/usr/include --encode=$rq $sv
  printf '%s' 'features { val: ["fv:il"] }' | protoc -I"$root/protos" -I/usr/include --encode=$rq $sv
} >"$work/corpus/decode_merge"
seed read_nine 00 $rq $sv "features { val: [\"fv:i64\"] } entities { key: \"driver_id\" value { val: [$nine] } }"
wr=fstore.v1.WriteFeaturesRequest
fs=fstore/v1/fstore.proto
seed write_scalars 01 $wr $fs 'feature_view: "fv" columns { key: "driver_id" value { val: [{int64_val: 4}, {int64_val: 5}] } } columns { key: "i64" value { val: [{int64_val: 1}, {null_val: NULL}] } } columns { key: "s" value { val: [{string_val: "ab"}, {string_val: "z"}] } } columns { key: "f" value { val: [{float_val: 0.5}, {float_val: 1}] } } event_timestamps: [{seconds: 1700000000 nanos: 5000}, {}]'
seed write_lists 01 $wr $fs 'feature_view: "fv@v1" columns { key: "driver_id" value { val: [{int64_val: 6}] } } columns { key: "il" value { val: [{int64_list_val { val: [1, 2] }}] } } columns { key: "sl" value { val: [{string_list_val { val: ["a", ""] }}] } } columns { key: "bol" value { val: [{bool_list_val { val: [true, false] }}] } } columns { key: "fl" value { val: [{float_list_val { val: [1.5] }}] } } columns { key: "bl" value { val: [{bytes_list_val { val: ["\000"] }}] } }'
seed write_v2 01 $wr $fs 'feature_view: "fv@v2" columns { key: "driver_id" value { val: [{int64_val: 1}] } } columns { key: "c" value { val: [{string_val: "red"}] } }'
seed write_dev 01 $wr $fs 'feature_view: "dev" columns { key: "dev" value { val: [{bytes_val: "\001\002"}] } } columns { key: "slot" value { val: [{int32_val: 7}] } } columns { key: "v" value { val: [{double_val: 3.25}] } }'
seed write_global 01 $wr $fs 'feature_view: "g" columns { key: "total" value { val: [{double_val: 7}] } }'
seed write_nine 01 $wr $fs "feature_view: \"fv\" columns { key: \"driver_id\" value { val: [$nine] } } columns { key: \"i64\" value { val: [$nine] } }"
dl=fstore.v1.DeleteEntitiesRequest
seed delete_fv 02 $dl $fs 'feature_view: "fv" entities { key: "driver_id" value { val: [{int64_val: 4}, {int64_val: 99}] } }'
seed delete_pair 02 $dl $fs 'feature_view: "pair" entities { key: "driver_id" value { val: [{int64_val: 1}] } } entities { key: "customer_id" value { val: [{string_val: "alice"}] } }'
vt=feast.types.Value
vp=feast/types/Value.proto
seed value_i64 03 $vt $vp 'int64_val: -5'
seed value_strs 03 $vt $vp 'string_list_val { val: ["a", "bc"] }'
seed value_bools 03 $vt $vp 'bool_list_val { val: [true, false, true] }'
seed value_bytes 03 $vt $vp 'bytes_val: "\377\000"'
seed value_null 03 $vt $vp 'null_val: NULL'

export TMPDIR=$work
if ! fuzz_run "$work" fuzz_requests "$seconds" "$work/corpus" -max_len=4096 \
     -dict="$root/tests/server/requests.dict"; then
  keep=1
  exit 1
fi
