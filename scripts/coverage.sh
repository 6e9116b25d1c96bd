#!/usr/bin/env bash
# scripts/coverage.sh - line and branch coverage per module, from the whole suite (not in CI:
# about ten minutes on two cores). Builds build/coverage with gcc --coverage (no sanitizers),
# runs ctest there (the fuzzers and the benchmark smoke test left out), and prints gcovr's
# summary for each module folder, then the total.
#   scripts/coverage.sh            # build, test, report
#   scripts/coverage.sh --report   # report from the last run only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/coverage"
if ! command -v gcovr >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends gcovr >/dev/null
fi
if [ "${1:-}" != "--report" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS="--coverage -fprofile-update=atomic -O0 -g" \
    -DCMAKE_EXE_LINKER_FLAGS="--coverage" >/dev/null
  cmake --build "$build" -j"$(nproc)" >/dev/null
  find "$build" -name '*.gcda' -delete
  (cd "$build" && ctest -j"$(nproc)" -E '^(fuzz_|bench_|format$)' --output-on-failure) || {
    echo "coverage: some tests failed (figures below still count what ran)" >&2; }
fi
# Threads update counters at once: atomic updates (above) keep them exact; a count gcov still
# cannot parse is skipped rather than failing the report.
# The per-file report goes to a file of our own: gcovr checks that it can write its -o path by
# creating it and then unlinks it, so "-o /dev/null" deleted the machine's /dev/null.
report=$(mktemp)
trap 'rm -f "$report"' EXIT
summary() {
  gcovr -r "$root" --object-directory "$build" --gcov-ignore-parse-errors "$@" --print-summary \
    -o "$report" 2>/dev/null || true
}
modules=(base catalog storage core codec server http upstream repl cli)
printf '%-10s %8s %8s\n' module lines branches
for m in "${modules[@]}"; do
  out=$(summary --filter "$root/$m/")
  l=$(echo "$out" | awk '/^lines:/ {print $2}')
  b=$(echo "$out" | awk '/^branches:/ {print $2}')
  printf '%-10s %8s %8s\n' "$m" "${l:--}" "${b:--}"
done
filters=()
for m in "${modules[@]}"; do filters+=(--filter "$root/$m/"); done
out=$(summary "${filters[@]}")
printf '%-10s %8s %8s\n' total "$(echo "$out" | awk '/^lines:/ {print $2}')" \
  "$(echo "$out" | awk '/^branches:/ {print $2}')"
