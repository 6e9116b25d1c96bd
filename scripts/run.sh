#!/usr/bin/env bash
# scripts/run.sh - the README's run command: install, build, load the example catalog and sample
# data into an embedded store, show a read, then serve gRPC on $FSTORE_LISTEN (default :6566) and
# HTTP on $FSTORE_HTTP_LISTEN (default :8080).
# For tests (tests/e2e/test_readme.py): FSTORE_RUN_PRESET picks the CMake preset (default
# release); FSTORE_RUN_SKIP_DEPS=1 skips the package installation the suite has already done.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
preset=${FSTORE_RUN_PRESET:-release}

[ "${FSTORE_RUN_SKIP_DEPS:-0}" = 1 ] || bash scripts/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j"$(nproc)"
fstore=$root/build/$preset/fstore

catalog=${FSTORE_CATALOG:-$root/examples/catalog}
data=${FSTORE_DATA_DIR:-$root/.fstore/data}
listen=${FSTORE_LISTEN:-0.0.0.0:6566}

"$fstore" validate --catalog "$catalog"
fresh=1
[ -e "$data/data.mdb" ] && fresh=0
"$fstore" plan --catalog "$catalog" --data-dir "$data" || true
"$fstore" apply --catalog "$catalog" --data-dir "$data" --history

# Sample rows: examples/data/<view>@v<N>.csv, loaded into a new data directory only. They carry no
# event_timestamp (so they stay within the views' TTLs): each load stamps them "now", which would
# overwrite whatever was written since the last start.
if [ "$fresh" = 1 ]; then
  for f in "$root"/examples/data/*.csv; do
    view=$(basename "$f" .csv)
    "$fstore" ingest --data-dir "$data" --view "$view" --sync none "$f"
  done
else
  echo "run.sh: $data already holds data: sample rows not loaded again (remove it to start over)"
fi

"$fstore" get --data-dir "$data" --feature-service driver_activity_v1 \
  --entity driver_id=1001 --entity driver_id=1002

http=${FSTORE_HTTP_LISTEN-0.0.0.0:8080}
cat <<MSG

fstore is serving the example catalog: gRPC on $listen, HTTP on ${http:-(off)} (Ctrl-C stops it).
From another shell:
  /usr/bin/python3 examples/python/get_features.py 127.0.0.1:${listen##*:}
  curl -s -X POST http://127.0.0.1:${http##*:}/get-online-features \\
    -d '{"feature_service": "driver_activity_v1", "entities": {"driver_id": [1001]}}'
MSG
exec "$fstore" serve --listen "$listen" --catalog "$catalog" --data-dir "$data" --history
