#!/usr/bin/env bash
# tests/codec/run-fuzz-predict.sh - builds the Predict request fuzzer with clang's libFuzzer and
# runs it for FUZZ_SECONDS (default 20) over the seeds below and its kept corpus
# (tests/codec/corpus/, tests/fuzz-lib.sh builds and runs it; no build tree needed); crashes are
# kept in a printed directory, never in the source tree.
set -euo pipefail
root=${FSTORE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
seconds=${FUZZ_SECONDS:-20}
. "$root/tests/fuzz-lib.sh"
fuzz_workdir fstore-fuzz-predict

fuzz_build "$work" fuzz_predict "$root/tests/codec/fuzz_predict.c" base catalog storage repl core codec

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

if ! fuzz_run "$work" fuzz_predict "$seconds" "$work/corpus" -max_len=4096; then
  keep=1
  exit 1
fi
