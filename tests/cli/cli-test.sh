#!/usr/bin/env bash
# tests/catalog/cli-test.sh - `fstore validate` and `fstore plan` against the example catalogs:
# exit statuses, the summary line, every error line, JSON output and plan verdicts.
set -euo pipefail
fstore=$1
root=${FSTORE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
work=$(mktemp -d "${TMPDIR:-/tmp}/fstore-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect STATUS CMD...: runs CMD, keeps stdout/stderr in $work/out and $work/err.
expect() {
  local want=$1 got=0
  shift
  "$@" >"$work/out" 2>"$work/err" || got=$?
  [ "$got" -eq "$want" ] || { cat "$work/out" "$work/err" >&2; fail "'$*' exited $got, want $want"; }
}

expect 0 "$fstore" validate --catalog "$root/examples/catalog"
grep -q '^catalog ok: project ride_hailing, 2 entities, 5 feature views (6 versions), 15 features, 4 on-demand features, 4 services, 3 models$' "$work/out" ||
  fail "summary line: $(cat "$work/out")"

FSTORE_CATALOG="$root/examples/catalog" expect 0 "$fstore" validate
expect 0 "$fstore" validate --catalog "$root/examples/catalog" --json
grep -q '"ok": true' "$work/out" || fail "validate --json ok"

expect 1 "$fstore" validate --catalog "$root/examples/catalog-bad.yaml"
[ "$(grep -c '^.*catalog-bad.yaml:[0-9]*:[0-9]*: ' "$work/err")" -ge 10 ] ||
  fail "every error as file:line:col: $(cat "$work/err")"
grep -q 'catalog-bad.yaml:17:5: feature_views\[0\].fetures: unknown key' "$work/err" ||
  fail "typo line: $(cat "$work/err")"

expect 1 "$fstore" validate --catalog "$root/examples/catalog-bad.yaml" --json
grep -q '"ok": false' "$work/out" || fail "validate --json not ok"
grep -q '"key": "feature_views\[0\].fetures"' "$work/out" || fail "validate --json errors"
if command -v python3 >/dev/null; then python3 -m json.tool "$work/out" >/dev/null || fail "bad JSON"; fi

expect 2 "$fstore" validate
expect 2 "$fstore" validate --catalog x extra
expect 2 "$fstore" validate --bogus
expect 0 "$fstore" validate --help
grep -q -- '--json' "$work/out" || fail "validate --help lists --json"
expect 1 "$fstore" validate --catalog "$work/missing.yaml"

# plan: from nothing, everything is added and safe.
expect 0 "$fstore" plan --catalog "$root/examples/catalog"
grep -q '^plan: 17 changes, 0 breaking, 17 safe$' "$work/out" || fail "plan summary: $(cat "$work/out")"

# A changed dtype is breaking; an appended feature is safe.
cp -rL "$root/examples/catalog" "$work/new"  # -L: examples/catalog is a symlink
python3 - "$work/new/driver_stats.yaml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("      - name: trips_today\n        dtype: INT64", "      - name: trips_today\n        dtype: INT32", 1)
s = s.replace("      - name: surge_multiplier", "      - name: new_gauge\n        dtype: INT64\n      - name: surge_multiplier", 1)
open(p, "w").write(s)
PY
expect 1 "$fstore" plan --from "$root/examples/catalog" --catalog "$work/new"
grep -q 'BREAKING feature driver_realtime_stats@v1:trips_today: dtype changed from INT64 to INT32' "$work/out" ||
  fail "breaking dtype: $(cat "$work/out")"
grep -q 'SAFE     feature platform_stats@v1:new_gauge' "$work/out" || fail "safe add: $(cat "$work/out")"
expect 1 "$fstore" plan --from "$root/examples/catalog" --catalog "$work/new" --json
grep -q '"breaking": 1' "$work/out" || fail "plan --json summary: $(cat "$work/out")"

expect 0 "$fstore" plan --from "$root/examples/catalog" --catalog "$root/examples/catalog"
grep -q '^plan: no changes$' "$work/out" || fail "no changes"
expect 1 "$fstore" plan --catalog "$root/examples/catalog-bad.yaml"
expect 2 "$fstore" plan
expect 0 "$fstore" plan --help
grep -q -- '--from' "$work/out" || fail "plan --help lists --from"
echo "cli: ok"
