#!/usr/bin/env bash
# scripts/container-smoke.sh - build the fstore image with podman and prove it runs: --help, the
# runtime stage's shared libraries (ldd), `serve` answering grpc.health.v1.Health on loopback,
# and the rendered single-node Kubernetes manifests run by `podman kube play` (restricted
# security context and all): the server pod answering a health check, a write and a read, the
# example loading Job's pod loading rows into it, the gc CronJob's pod sweeping it.
#
#   MAKE_BASE=1 bash scripts/container-smoke.sh   # no registry: debootstrap a bookworm base first
#   bash scripts/container-smoke.sh               # base image already there (or from a registry)
#
# Environment:
#   IMAGE=fstore:dev                 tag to build and check
#   BASE=localhost/debian:bookworm-slim   base image (build arg BASE). Without a registry, make it
#                                    from Debian's mirror: MAKE_BASE=1 runs debootstrap for it,
#                                    MAKE_BASE=auto only when BASE is not there yet.
#   BUILD_JOBS=$(nproc)              compile jobs inside the image (build arg BUILD_JOBS)
#   PODMAN="podman --cgroup-manager=cgroupfs --runtime=runc"   podman and its global flags
#   RUN_FLAGS="--ulimit nofile=20000:20000 --ulimit nproc=4096:4096"   for build and run; podman's
#                                    default rlimits (nofile 1048576 ...) fail where the caller
#                                    cannot raise limits (no CAP_SYS_RESOURCE); "" elsewhere.
# Needs: podman (and runc), /usr/bin/python3 with grpcio and yaml, curl; kubectl for the kube
# play part (skipped with a message without it). Exit status 77: podman cannot run containers
# here (the test suite reports that as skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-fstore:dev}
BASE=${BASE:-localhost/debian:bookworm-slim}
BUILD_JOBS=${BUILD_JOBS:-$(nproc)}
PODMAN=${PODMAN:-podman --cgroup-manager=cgroupfs --runtime=runc}
RUN_FLAGS=${RUN_FLAGS---ulimit nofile=20000:20000 --ulimit nproc=4096:4096}
read -r -a pm <<<"$PODMAN"
read -r -a rf <<<"$RUN_FLAGS"
free_port() { /usr/bin/python3 tests/e2e/free_port.py; }

if ! command -v "${pm[0]}" >/dev/null 2>&1; then
  echo "SKIP: ${pm[0]} is not installed (bash scripts/install-deps.sh installs it)"
  exit 77
fi
if ! "${pm[@]}" info >/dev/null 2>&1; then
  echo "SKIP: podman cannot run here:" && "${pm[@]}" info 2>&1 | tail -n 3
  exit 77
fi
if [ "${MAKE_BASE:-0}" = auto ]; then
  if "${pm[@]}" image exists "$BASE"; then MAKE_BASE=0; else MAKE_BASE=1; fi
fi

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

PORT=$(free_port)
HTTP_PORT=$(free_port)
echo "== serve on 127.0.0.1:$PORT"
cid=$("${pm[@]}" run -d --network=host "${rf[@]}" -e FSTORE_LISTEN="127.0.0.1:$PORT" \
  -e FSTORE_HTTP_LISTEN="127.0.0.1:$HTTP_PORT" "$IMAGE" serve)
play=""
cleanup() {
  "${pm[@]}" rm -f -v -t 10 "$cid" >/dev/null 2>&1 || true
  if [ -n "$play" ]; then
    "${pm[@]}" kube down "$play/load.yaml" >/dev/null 2>&1 || true
    "${pm[@]}" kube down "$play/gc.yaml" >/dev/null 2>&1 || true
    "${pm[@]}" kube down "$play/pod.yaml" >/dev/null 2>&1 || true
    "${pm[@]}" volume rm -f fstore-smoke-data fstore-catalog >/dev/null 2>&1 || true
    "${pm[@]}" volume ls -q | grep '^fstore-example-data' | xargs -r "${pm[@]}" volume rm -f \
      >/dev/null 2>&1 || true
    rm -rf "$play"
  fi
}
trap cleanup EXIT

# grpc.health.v1.Health/Check without generated stubs: the request is empty and the reply
# HealthCheckResponse{status: SERVING} is the two bytes 08 01.
health() {
  /usr/bin/python3 - "$1" <<'PY'

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
}
if ! health "$PORT"; then
  "${pm[@]}" logs "$cid" >&2 || true
  exit 1
fi
ss -ltn "sport = :$PORT" | grep -q ":$PORT" && echo "listening: 127.0.0.1:$PORT"

echo "== stop (SIGTERM drains and exits 0)"
"${pm[@]}" stop -t 30 "$cid" >/dev/null
rc=$("${pm[@]}" inspect -f '{{.State.ExitCode}}' "$cid")
"${pm[@]}" logs "$cid" 2>&1 | tail -n 5
[ "$rc" = 0 ] || { echo "FAIL: serve exited $rc" >&2; exit 1; }
"${pm[@]}" rm -v "$cid" >/dev/null
echo "OK: $IMAGE builds, runs --help, links all libraries and serves gRPC health"

echo "== podman kube play of the rendered single-node manifests (deploy/kubernetes)"
if ! command -v kubectl >/dev/null 2>&1; then
  echo "SKIP: kubectl is not installed: the manifests were not rendered nor played"
  exit 0
fi
play=$(mktemp -d "${TMPDIR:-/tmp}/fstore-kube-play.XXXXXX")
kubectl kustomize deploy/kubernetes >"$play/rendered.yaml"
PORT=$(free_port)
HTTP_PORT=$(free_port)
# podman 4.3 plays Pods, not StatefulSets: the StatefulSet's pod template becomes pod fstore-0 as
# written (security contexts, env, mounts, the catalog ConfigMap), with what a host needs
# instead of a cluster: its volume claim a named volume, this build's image, loopback ports on
# the host network (no private-range pod network), workers for this machine.
/usr/bin/python3 - "$play" "$IMAGE" "$PORT" "$HTTP_PORT" <<'PY'
import sys, yaml
play, image, port, http_port = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(play + "/rendered.yaml")) if d]
out = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "fstore-catalog"]
sts = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "fstore"][0]
spec = sts["spec"]["template"]["spec"]
for claim in sts["spec"]["volumeClaimTemplates"]:
    spec["volumes"].append({"name": claim["metadata"]["name"],
                            "persistentVolumeClaim": {"claimName": "fstore-smoke-data"}})
c = spec["containers"][0]
c["image"] = image
c.pop("ports")
env = {"FSTORE_LISTEN": "127.0.0.1:" + port, "FSTORE_HTTP_LISTEN": "127.0.0.1:" + http_port,
       "FSTORE_WORKERS": "2"}
c["env"] = [e for e in c["env"] if e["name"] not in env] + [
    {"name": k, "value": v} for k, v in env.items()]
out.append({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "fstore-0", "labels": sts["spec"]["template"]["metadata"]["labels"]},
            "spec": spec})
yaml.safe_dump_all(out, open(play + "/pod.yaml", "w"))
PY
CONTAINERS_CONF="$play/containers.conf"
printf '[containers]\ndefault_ulimits = [%s]\n' \
  "$(sed 's/--ulimit \([^ ]*\)/"\1"/g; s/" "/", "/g' <<<"$RUN_FLAGS")" >"$CONTAINERS_CONF"
export CONTAINERS_CONF
"${pm[@]}" kube play --network=host "$play/pod.yaml" >/dev/null
ctr=fstore-0-fstore
inspect=$("${pm[@]}" inspect "$ctr" --format \
  '{{.HostConfig.ReadonlyRootfs}} {{.Config.User}} {{len .EffectiveCaps}} {{.HostConfig.SecurityOpt}}')
echo "security: read-only root, user, capabilities, options = $inspect"
case "$inspect" in
  "true 10001:10001 0 "*no-new-privileges*) ;;
  *) echo "FAIL: the pod's security context was not applied: $inspect" >&2; exit 1 ;;
esac
if ! health "$PORT"; then
  "${pm[@]}" logs "$ctr" >&2 || true
  exit 1
fi
now=$(date -u +%Y-%m-%dT%H:%M:%SZ) # within the view's TTL
curl -sSf -X POST "http://127.0.0.1:$HTTP_PORT/write-to-online-store" -d '{"feature_view_name":
  "driver_hourly_stats", "df": {"driver_id": [7001], "conv_rate": [0.5], "acc_rate": [0.25],
  "avg_daily_trips": [3], "event_timestamp": ["'"$now"'"]}}' >/dev/null
got=$(curl -sSf -X POST "http://127.0.0.1:$HTTP_PORT/get-online-features" \
  -d '{"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [7001]}}')
echo "read: $got"
case "$got" in
  *'"values":[0.5],"statuses":["PRESENT"]'*) ;;
  *) echo "FAIL: the written row did not read back" >&2; "${pm[@]}" logs "$ctr" >&2; exit 1 ;;
esac

echo "== the example loading Job (deploy/kubernetes/load-example) against that pod"
kubectl kustomize deploy/kubernetes/load-example >"$play/load-rendered.yaml"
# The Job's pod template as pod fstore-load, as written, but for this build's image and the
# server's loopback address instead of the Service's name.
/usr/bin/python3 - "$play" "$IMAGE" "$PORT" <<'PY'
import sys, yaml
play, image, port = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(play + "/load-rendered.yaml")) if d]
catalog = [d for d in yaml.safe_load_all(open(play + "/rendered.yaml"))
           if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] == "fstore-catalog"]
out = catalog + [d for d in docs if d["kind"] == "ConfigMap"]
job = [d for d in docs if d["kind"] == "Job"][0]
spec = job["spec"]["template"]["spec"]
spec["restartPolicy"] = "Never"
c = spec["containers"][0]
c["image"] = image
for e in c["env"]:
    if e["name"] == "FSTORE_TARGET":
        e["value"] = "127.0.0.1:" + port
out.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fstore-load"}, "spec": spec})
yaml.safe_dump_all(out, open(play + "/load.yaml", "w"))
PY
"${pm[@]}" kube play --network=host "$play/load.yaml" >/dev/null
rc=$("${pm[@]}" wait fstore-load-load)
"${pm[@]}" logs fstore-load-load
[ "$rc" = 0 ] || { echo "FAIL: the loading Job's pod exited $rc" >&2; exit 1; }
got=$(curl -sSf -X POST "http://127.0.0.1:$HTTP_PORT/get-online-features" -d '{"features":
  ["driver_realtime_stats:recent_ratings", "driver_realtime_stats:last_city"],
  "entities": {"driver_id": [1001]}}')
echo "read: $got"
case "$got" in
  *'"values":[[5.0,5.0,3.0]],"statuses":["PRESENT"]'*'"values":["Lisbon"],"statuses":["PRESENT"]'*) ;;
  *) echo "FAIL: the Job's rows did not read back" >&2; exit 1 ;;
esac
"${pm[@]}" kube down "$play/load.yaml" >/dev/null

echo "== the gc CronJob's pod against that pod"
old=$(date -u -d '8 days ago' +%Y-%m-%dT%H:%M:%SZ) # past driver_hourly_stats' 7 day TTL
curl -sSf -X POST "http://127.0.0.1:$HTTP_PORT/write-to-online-store" -d '{"feature_view_name":
  "driver_hourly_stats", "df": {"driver_id": [7002], "conv_rate": [0.5], "acc_rate": [0.25],
  "avg_daily_trips": [3], "event_timestamp": ["'"$old"'"]}}' >/dev/null
/usr/bin/python3 - "$play" "$IMAGE" "$PORT" <<'PY'
import sys, yaml
play, image, port = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(play + "/rendered.yaml")) if d]
cron = [d for d in docs if d["kind"] == "CronJob" and d["metadata"]["name"] == "fstore-gc"][0]
spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
spec["restartPolicy"] = "Never"
c = spec["containers"][0]
c["image"] = image
env = {"FSTORE_GC_SERVICE": "127.0.0.1", "FSTORE_GC_PORT": port}
c["env"] = [e for e in c["env"] if e["name"] not in env] + [
    {"name": k, "value": v} for k, v in env.items()]
yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fstore-gc"},
                "spec": spec}, open(play + "/gc.yaml", "w"))
PY
"${pm[@]}" kube play --network=host "$play/gc.yaml" >/dev/null
rc=$("${pm[@]}" wait fstore-gc-gc)
out=$("${pm[@]}" logs fstore-gc-gc 2>&1)
echo "$out"
"${pm[@]}" kube down "$play/gc.yaml" >/dev/null
[ "$rc" = 0 ] || { echo "FAIL: the gc CronJob's pod exited $rc" >&2; exit 1; }
case "$out" in
  *"deleted 1 expired row"*) ;;
  *) echo "FAIL: the gc pod did not delete the one expired row" >&2; exit 1 ;;
esac
"${pm[@]}" kube down "$play/pod.yaml" >/dev/null
echo "OK: the rendered pod runs under its restricted security context, serves health, writes and reads; the loading Job loads the example rows into it; the gc CronJob sweeps it"
