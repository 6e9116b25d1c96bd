#!/usr/bin/env bash
# tests/format/check-python.sh - pyflakes3 over every tracked Python file: an unused import or
# name, or an undefined one, fails the suite.
set -euo pipefail
command -v pyflakes3 >/dev/null || { echo "pyflakes3 is not installed (scripts/install-deps.sh)"; exit 1; }
mapfile -t files < <(git ls-files '*.py' 2>/dev/null || find . -name '*.py' -not -path './build*')
[ "${#files[@]}" -gt 0 ] || { echo "no Python files found"; exit 1; }
pyflakes3 "${files[@]}"
echo "lint_python: ${#files[@]} files clean"
