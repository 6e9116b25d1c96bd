#!/usr/bin/env bash
# scripts/install-deps.sh - every build, test and run dependency, from Debian bookworm's packages.
# Idempotent: a machine that already has everything only pays for the dpkg check.
#   bash scripts/install-deps.sh              everything (what scripts/test.sh and run.sh use)
#   bash scripts/install-deps.sh --build-only what `cmake --build --preset release --target fstore`
#                                             needs, and no more (the Dockerfile's build stage)
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev protobuf-compiler-grpc
  grpc-proto liblmdb-dev libjansson-dev libyaml-dev libmicrohttpd-dev libnats-dev zlib1g-dev libssl-dev
  libpq-dev
  libxxhash-dev     # XXH3: the checksum on every stored record (storage/record.c)
  libgnutls28-dev   # HTTPS client certificates (http/http.c; libmicrohttpd's TLS library)
  python3-protobuf  # protos/reflection_table.py builds gRPC reflection's descriptor table
)
# The test and benchmark build (ASan/UBSan with clang's runtime, Criterion), the servers the tests
# start (nats-server, prometheus, redis), the clients they call it with, and the container tools
# scripts/container-smoke.sh uses (podman with runc, debootstrap for a base image).
test_packages=(
  clang clang-format libclang-rt-14-dev lmdb-utils libcriterion-dev nats-server prometheus
  python3-grpcio python3-protobuf python3-yaml python3-h2 python3-pandas pyflakes3 curl openssl redis-server
  python3-jwt python3-cryptography  # JWKS files and JWTs for the auth tests (tests/e2e/jwt_tool.py)
  libjwt-dev        # the JWT tests hold core/jwt.c's verification to libjwt's
  postgresql
  redis-tools procps
  podman runc debootstrap catatonit  # catatonit: podman kube play's pause image
)
packages=("${build_packages[@]}")
case "${1:-}" in
  --build-only) ;;
  "") packages+=("${test_packages[@]}") ;;
  *) echo "usage: install-deps.sh [--build-only]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian redis-server package starts a system instance; fstore's benchmark runs its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  $SUDO systemctl stop redis-server || true
fi
echo "install-deps: done"
