#!/usr/bin/env bash
# scripts/run.sh - the README's run command: install, build, load the example catalog and sample
# data into an embedded store, show a read, then serve gRPC on $FSTORE_LISTEN (default :6566).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"
fstore=$root/build/release/fstore

catalog=${FSTORE_CATALOG:-$root/examples/catalog}
data=${FSTORE_DATA_DIR:-$root/.fstore/data}
listen=${FSTORE_LISTEN:-0.0.0.0:6566}

"$fstore" validate --catalog "$catalog"
"$fstore" plan --catalog "$catalog" --data-dir "$data" || true
"$fstore" apply --catalog "$catalog" --data-dir "$data"

# Sample rows: examples/data/<view>@v<N>.csv. Re-ingesting is harmless: last write wins by event
# time, so the same rows again change nothing.
for f in "$root"/examples/data/*.csv; do
  view=$(basename "$f" .csv)
  "$fstore" ingest --data-dir "$data" --view "$view" --sync none "$f"
done

"$fstore" get --data-dir "$data" --feature-service driver_activity_v1 \
  --entity driver_id=1001 --entity driver_id=1002

cat <<MSG

fstore is serving the example catalog on $listen (Ctrl-C stops it). From another shell:
  /usr/bin/python3 examples/python/get_features.py 127.0.0.1:${listen##*:}
MSG
exec "$fstore" serve --listen "$listen" --catalog "$catalog" --data-dir "$data"
