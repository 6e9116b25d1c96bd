#!/usr/bin/env bash
# scripts/fuzz-all.sh - every libFuzzer target for a given time each: the catalog YAML loader and
# value decoder, the PredictRequest decoder (against protobuf-c), every gRPC method's request
# decoder (server_local_call), every HTTP route's JSON and CSV bodies (http_local_call), bearer
# JWTs and JWKS files (core/jwt.c), and `fstore ingest`'s CSV and JSON Lines files.
#   scripts/fuzz-all.sh [SECONDS]     (default 600 per target; ctest runs each for about 20)
# Each starts from its kept corpus (tests/<module>/corpus/<target>/, tests/fuzz-lib.sh).
# Crashes are kept in the directory each runner prints. FUZZ_UPDATE_CORPUS=1 merges what the
# runs found into the kept corpora (only inputs that reach new code): commit them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
failed=()
for runner in tests/catalog/run-fuzz.sh tests/codec/run-fuzz-predict.sh \
              tests/server/run-fuzz-requests.sh tests/http/run-fuzz-http.sh \
              tests/core/run-fuzz-jwt.sh tests/cli/run-fuzz-ingest.sh; do
  echo "== $runner (${seconds}s)"
  if ! FUZZ_SECONDS=$seconds FSTORE_SOURCE_DIR=$root bash "$root/$runner"; then
    failed+=("$runner")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-all: FOUND PROBLEMS in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz-all: every target ran ${seconds}s without a finding"
