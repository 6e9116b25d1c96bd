#!/usr/bin/env bash
# scripts/test.sh - install dependencies, build the release and ASan/UBSan presets, run every test.
# This is the README's test command and exactly what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The release preset too: it is what the README's run command and bench/run.sh build, and -O2
# finds warnings (all errors here) that the ASan build does not.
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$(nproc)"
ctest --preset asan -j"$(nproc)"
