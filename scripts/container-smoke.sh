#!/usr/bin/env bash
# scripts/container-smoke.sh - build the fstore image with podman and prove it runs: --help, the
# runtime stage's shared libraries (ldd), and `serve` answering grpc.health.v1.Health on loopback.
#
#   bash scripts/container-smoke.sh            # builds fstore:dev, checks it, removes the container
#
# Environment:
#   IMAGE=fstore:dev                 tag to build and check
#   BASE=localhost/debian:bookworm-slim   base image (build arg BASE). Without a registry, make it
#                                    from Debian's mirror: MAKE_BASE=1 runs debootstrap for it.
#   BUILD_JOBS=1                     compile jobs inside the image (build arg BUILD_JOBS)
#   PORT=16566                       loopback port for the serve check
#   PODMAN="podman --cgroup-manager=cgroupfs --runtime=runc"   podman and its global flags
#   RUN_FLAGS="--ulimit nofile=20000:20000 --ulimit nproc=4096:4096"   for build and run; podman's
#                                    default rlimits (nofile 1048576 ...) fail where the caller
#                                    cannot raise limits (no CAP_SYS_RESOURCE); "" elsewhere.
# Needs: podman (and runc), /usr/bin/python3 with grpcio (python3-grpcio) on the host.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-fstore:dev}
BASE=${BASE:-localhost/debian:bookworm-slim}
BUILD_JOBS=${BUILD_JOBS:-1}
PORT=${PORT:-16566}
PODMAN=${PODMAN:-podman --cgroup-manager=cgroupfs --runtime=runc}
RUN_FLAGS=${RUN_FLAGS---ulimit nofile=20000:20000 --ulimit nproc=4096:4096}
read -r -a pm <<<"$PODMAN"
read -r -a rf <<<"$RUN_FLAGS"

if [ "${MAKE_BASE:-0}" = 1 ]; then
  # A bookworm minbase rootfs from the mirror apt already uses, with the same apt sources.
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources \
    2>/dev/null | head -n1)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror"
  rm -f "$rootfs/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/" 2>/dev/null \
    || cp /etc/apt/sources.list "$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | "${pm[@]}" import --change 'CMD ["bash"]' - "$BASE"
  rm -rf "$rootfs"
fi

echo "== build $IMAGE (BASE=$BASE, BUILD_JOBS=$BUILD_JOBS)"
"${pm[@]}" build --network=host "${rf[@]}" --build-arg BASE="$BASE" \
  --build-arg BUILD_JOBS="$BUILD_JOBS" -t "$IMAGE" .

echo "== fstore --help"
"${pm[@]}" run --rm --network=host "${rf[@]}" "$IMAGE" --help >/dev/null

echo "== shared libraries (ldd in the runtime image)"
if "${pm[@]}" run --rm "${rf[@]}" --entrypoint ldd "$IMAGE" /usr/local/bin/fstore | grep 'not found'
then
  echo "FAIL: the runtime image lacks shared libraries" >&2
  exit 1
fi

echo "== serve on 127.0.0.1:$PORT"
cid=$("${pm[@]}" run -d --network=host "${rf[@]}" -e FSTORE_LISTEN="127.0.0.1:$PORT" "$IMAGE" serve)
cleanup() { "${pm[@]}" rm -f -v -t 10 "$cid" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# grpc.health.v1.Health/Check without generated stubs: the request is empty and the reply
# HealthCheckResponse{status: SERVING} is the two bytes 08 01.
if ! /usr/bin/python3 - "$PORT" <<'PY'; then
import sys, time, grpc
ch = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
check = ch.unary_unary("/grpc.health.v1.Health/Check")
deadline, last = time.time() + 30, None
while time.time() < deadline:
    try:
        reply = check(b"", timeout=2)
        if reply == b"\x08\x01":
            print("health: SERVING")
            sys.exit(0)
        last = f"reply {reply!r}"
    except grpc.RpcError as e:
        last = f"{e.code()}: {e.details()}"
    time.sleep(0.5)
print(f"health: not SERVING after 30s ({last})", file=sys.stderr)
sys.exit(1)
PY
  "${pm[@]}" logs "$cid" >&2 || true
  exit 1
fi
ss -ltn "sport = :$PORT" | grep -q ":$PORT" && echo "listening: 127.0.0.1:$PORT"

echo "== stop (SIGTERM drains and exits 0)"
"${pm[@]}" stop -t 30 "$cid" >/dev/null
rc=$("${pm[@]}" inspect -f '{{.State.ExitCode}}' "$cid")
"${pm[@]}" logs "$cid" 2>&1 | tail -n 5
[ "$rc" = 0 ] || { echo "FAIL: serve exited $rc" >&2; exit 1; }
echo "OK: $IMAGE builds, runs --help, links all libraries and serves gRPC health"
