#!/usr/bin/env bash
# tests/format/check-format.sh - fails listing every tracked C file that clang-format would change.
set -euo pipefail
cf=${1:-clang-format}
bad=0
while IFS= read -r f; do
  if ! "$cf" --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "needs clang-format: $f"
    bad=1
  fi
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
if [ $bad -ne 0 ]; then
  echo "run: git ls-files '*.c' '*.h' | xargs $cf -i"
  exit 1
fi
echo "format: all files clean"
