#!/usr/bin/env bash
# tests/server/run-fuzz-predict.sh - builds the Predict request fuzzer with clang's libFuzzer and
# runs it for FUZZ_SECONDS (default 20). The TF Serving protos are compiled here with protoc-c, so
# the script needs no build tree; crashes are kept in a printed directory, never in the source tree.
set -euo pipefail
root=${FSTORE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cc=${CC:-clang}
seconds=${FUZZ_SECONDS:-20}
work=$(mktemp -d "${TMPDIR:-/tmp}/fstore-fuzz-predict.XXXXXX")
keep=0
cleanup() { if [ "$keep" -eq 0 ]; then rm -rf "$work"; else echo "fuzz artifacts kept in $work"; fi; }
trap cleanup EXIT

protos=(tensorflow/core/framework/types.proto tensorflow/core/framework/tensor_shape.proto
        tensorflow/core/framework/tensor.proto tensorflow_serving/apis/model.proto
        tensorflow_serving/apis/predict.proto feast/types/Value.proto)
mkdir -p "$work/gen"
(cd "$root/protos" && protoc-c -I. -I/usr/include --c_out="$work/gen" "${protos[@]}" \
  google/protobuf/wrappers.proto)
gen=()
for p in "${protos[@]}" google/protobuf/wrappers.proto; do gen+=("$work/gen/${p%.proto}.pb-c.c"); done

flags=(-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -fno-omit-frame-pointer -I "$root" -isystem "$work/gen" -w)
"$cc" "${flags[@]}" "$root"/catalog/*.c "$root/server/arena.c" "$root/server/predict_tensor.c" \
  "$root/server/predict_encode.c" \
  "${gen[@]}" "$root/tests/server/fuzz_predict.c" -lyaml -lprotobuf-c -lm -o "$work/fuzz_predict"

# Seeds: one entity input of each accepted form, built with protoc's text format.
mkdir -p "$work/corpus"
seed() {
  printf '%s' "$2" | protoc -I"$root/protos" -I/usr/include \
    --encode=tensorflow.serving.PredictRequest tensorflow_serving/apis/predict.proto \
    >"$work/corpus/$1"
}
seed int64 'model_spec { name: "m" } inputs { key: "id" value { dtype: DT_INT64 tensor_shape { dim { size: 2 } } int64_val: [1, 2] } }'
seed int32_col 'inputs { key: "id" value { dtype: DT_INT32 tensor_shape { dim { size: 2 } dim { size: 1 } } int_val: [1, 2] } }'
seed content 'inputs { key: "id" value { dtype: DT_INT64 tensor_shape { dim { size: 1 } } tensor_content: "\001\000\000\000\000\000\000\000" } }'
seed strings 'inputs { key: "c" value { dtype: DT_STRING tensor_shape { dim { size: 2 } } string_val: ["a", "bc"] } }'

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1
echo "fuzzing fuzz_predict for ${seconds}s"
if ! "$work/fuzz_predict" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
     -artifact_prefix="$work/" -print_final_stats=1 "$work/corpus" 2>&1 | tail -n 40; then
  keep=1
  exit 1
fi
